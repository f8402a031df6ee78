/*
 * hypernet.c — the hypernetwork; see hypernet.h.
 *
 * The trunk (embedding, L1, L2) is recomputed for each call: it is a few
 * hundred multiply-adds, far below the heads it feeds.
 */
#include "hypernet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rng.h"

#define MAXW 512 /* trunk widths handled on the stack */

static size_t item_params(const tt_hn_config *c, const tt_hn_item *t)
{
	switch (t->kind) {
	case TT_HN_CONV:
		return (size_t)t->out * c->ce + (size_t)t->fan * (c->u + c->ce) + t->fan;
	case TT_HN_DENSE:
		return (size_t)t->out * c->u + t->out;
	default:
		return (size_t)c->tasks * t->out;
	}
}

static size_t trunk_params(const tt_hn_config *c)
{
	return (size_t)c->tasks * c->emb + (size_t)c->hidden * c->emb + c->hidden +
	       (size_t)c->u * c->hidden + c->u;
}

size_t tt_hn_nparams(const tt_hn_config *c, const tt_hn_item *it, int n)
{
	size_t s = trunk_params(c);
	for (int i = 0; i < n; i++)
		s += item_params(c, &it[i]);
	return s;
}

size_t tt_hn_span(const tt_hn_item *it, int n)
{
	size_t s = 0;
	for (int i = 0; i < n; i++) {
		size_t e = it[i].dst + (it[i].kind == TT_HN_CONV ? (size_t)it[i].out * it[i].fan
		                                               : (size_t)it[i].out);
		if (e > s)
			s = e;
	}
	return s;
}

static void fill(float *p, size_t n, float bound, tt_rng *r)
{
	for (size_t i = 0; i < n; i++)
		p[i] = bound * (2 * tt_rng_uniform(r) - 1);
}

void tt_hn_init(const tt_hn_config *c, const tt_hn_item *it, int n, float *psi,
                uint64_t seed)
{
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_HYPERNET);
	float *p = psi;
	for (int i = 0; i < c->tasks * c->emb; i++)
		*p++ = tt_rng_normal(&r);
	fill(p, (size_t)c->hidden * (c->emb + 1), 1 / sqrtf((float)c->emb), &r);
	p += (size_t)c->hidden * (c->emb + 1);
	fill(p, (size_t)c->u * (c->hidden + 1), 1 / sqrtf((float)c->hidden), &r);
	p += (size_t)c->u * (c->hidden + 1);
	for (int i = 0; i < n; i++) {
		const tt_hn_item *t = &it[i];
		if (t->kind == TT_HN_CONV) {
			for (int k = 0; k < t->out * c->ce; k++)
				*p++ = tt_rng_normal(&r);
			/* the head's scale makes the generated filters start near
			 * a usual initialisation's: fan-in of the generated layer */
			float b = 1 / sqrtf((float)(c->u + c->ce)) / sqrtf((float)t->fan);
			fill(p, (size_t)t->fan * (c->u + c->ce + 1), b, &r);
			p += (size_t)t->fan * (c->u + c->ce + 1);
		} else if (t->kind == TT_HN_DENSE) {
			fill(p, (size_t)t->out * (c->u + 1), 1 / sqrtf((float)c->u) * 0.1f, &r);
			p += (size_t)t->out * (c->u + 1);
		} else {
			for (int k = 0; k < c->tasks * t->out; k++)
				*p++ = t->init;
		}
	}
}

/* The trunk for task: h (hidden, post-ReLU) and u (post-ReLU). */
static void trunk(const tt_hn_config *c, const float *psi, int task, double *h, double *u)
{
	TT_ASSERT(c->hidden <= MAXW && c->u + c->ce <= 2 * MAXW && c->u <= MAXW);
	TT_ASSERT(task >= 0 && task < c->tasks);
	const float *e = psi + (size_t)task * c->emb;
	const float *W1 = psi + (size_t)c->tasks * c->emb, *b1 = W1 + (size_t)c->hidden * c->emb;
	const float *W2 = b1 + c->hidden, *b2 = W2 + (size_t)c->u * c->hidden;
	for (int j = 0; j < c->hidden; j++) {
		double s = b1[j];
		for (int k = 0; k < c->emb; k++)
			s += (double)W1[(size_t)j * c->emb + k] * e[k];
		h[j] = s > 0 ? s : 0;
	}
	for (int j = 0; j < c->u; j++) {
		double s = b2[j];
		for (int k = 0; k < c->hidden; k++)
			s += (double)W2[(size_t)j * c->hidden + k] * h[k];
		u[j] = s > 0 ? s : 0;
	}
}

void tt_hn_generate(const tt_hn_config *c, const tt_hn_item *it, int n, const float *psi,
                    int task, float *dst)
{
	double h[MAXW], u[MAXW], in[2 * MAXW];
	trunk(c, psi, task, h, u);
	const float *p = psi + trunk_params(c);
	for (int i = 0; i < n; i++) {
		const tt_hn_item *t = &it[i];
		float *o = dst + t->dst;
		if (t->kind == TT_HN_CONV) {
			int w = c->u + c->ce;
			const float *ce = p, *W = p + (size_t)t->out * c->ce, *b = W + (size_t)t->fan * w;
			memcpy(in, u, (size_t)c->u * sizeof *in);
			for (int ch = 0; ch < t->out; ch++) {
				for (int k = 0; k < c->ce; k++)
					in[c->u + k] = ce[(size_t)ch * c->ce + k];
				for (int f = 0; f < t->fan; f++) {
					double s = b[f];
					const float *wr = W + (size_t)f * w;
					for (int k = 0; k < w; k++)
						s += (double)wr[k] * in[k];
					o[(size_t)ch * t->fan + f] = (float)s;
				}
			}
		} else if (t->kind == TT_HN_DENSE) {
			const float *W = p, *b = p + (size_t)t->out * c->u;
			for (int j = 0; j < t->out; j++) {
				double s = b[j];
				for (int k = 0; k < c->u; k++)
					s += (double)W[(size_t)j * c->u + k] * u[k];
				o[j] = (float)s;
			}
		} else {
			memcpy(o, p + (size_t)task * t->out, (size_t)t->out * sizeof *o);
		}
		p += item_params(c, t);
	}
}

void tt_hn_backward(const tt_hn_config *c, const tt_hn_item *it, int n, const float *psi,
                    int task, const float *grad, float *dpsi)
{
	double h[MAXW], u[MAXW], du[MAXW] = {0}, in[2 * MAXW];
	trunk(c, psi, task, h, u);
	const float *p = psi + trunk_params(c);
	float *dp = dpsi + trunk_params(c);
	for (int i = 0; i < n; i++) {
		const tt_hn_item *t = &it[i];
		const float *g = grad + t->dst;
		if (t->kind == TT_HN_CONV) {
			int w = c->u + c->ce;
			const float *ce = p, *W = p + (size_t)t->out * c->ce;
			float *dce = dp, *dW = dp + (size_t)t->out * c->ce, *db = dW + (size_t)t->fan * w;
			memcpy(in, u, (size_t)c->u * sizeof *in);
			for (int ch = 0; ch < t->out; ch++) {
				for (int k = 0; k < c->ce; k++)
					in[c->u + k] = ce[(size_t)ch * c->ce + k];
				for (int f = 0; f < t->fan; f++) {
					double gf = g[(size_t)ch * t->fan + f];
					if (gf == 0)
						continue;
					db[f] += (float)gf;
					const float *wr = W + (size_t)f * w;
					float *dwr = dW + (size_t)f * w;
					for (int k = 0; k < w; k++)
						dwr[k] += (float)(gf * in[k]);
					for (int k = 0; k < c->u; k++)
						du[k] += gf * wr[k];
					for (int k = 0; k < c->ce; k++)
						dce[(size_t)ch * c->ce + k] += (float)(gf * wr[c->u + k]);
				}
			}
		} else if (t->kind == TT_HN_DENSE) {
			const float *W = p;
			float *dW = dp, *db = dp + (size_t)t->out * c->u;
			for (int j = 0; j < t->out; j++) {
				double gj = g[j];
				if (gj == 0)
					continue;
				db[j] += (float)gj;
				for (int k = 0; k < c->u; k++) {
					dW[(size_t)j * c->u + k] += (float)(gj * u[k]);
					du[k] += gj * W[(size_t)j * c->u + k];
				}
			}
		} else {
			float *row = dp + (size_t)task * t->out;
			for (int j = 0; j < t->out; j++)
				row[j] += g[j];
		}
		size_t np = item_params(c, t);
		p += np;
		dp += np;
	}
	/* the trunk: u = ReLU(L2 h), h = ReLU(L1 e) */
	const float *W1 = psi + (size_t)c->tasks * c->emb, *W2 = W1 + (size_t)c->hidden * c->emb + c->hidden;
	float *de = dpsi + (size_t)task * c->emb;
	float *dW1 = dpsi + (size_t)c->tasks * c->emb, *db1 = dW1 + (size_t)c->hidden * c->emb;
	float *dW2 = db1 + c->hidden, *db2 = dW2 + (size_t)c->u * c->hidden;
	const float *e = psi + (size_t)task * c->emb;
	double dh[MAXW] = {0};
	for (int j = 0; j < c->u; j++) {
		if (u[j] <= 0)
			continue;
		db2[j] += (float)du[j];
		for (int k = 0; k < c->hidden; k++) {
			dW2[(size_t)j * c->hidden + k] += (float)(du[j] * h[k]);
			dh[k] += du[j] * W2[(size_t)j * c->hidden + k];
		}
	}
	for (int j = 0; j < c->hidden; j++) {
		if (h[j] <= 0)
			continue;
		db1[j] += (float)dh[j];
		for (int k = 0; k < c->emb; k++) {
			dW1[(size_t)j * c->emb + k] += (float)(dh[j] * e[k]);
			de[k] += (float)(dh[j] * W1[(size_t)j * c->emb + k]);
		}
	}
}

double tt_hn_reg(const tt_hn_config *c, const tt_hn_item *it, int n, const float *snap,
                 const float *psi, const int *tasks, int nt, float *dpsi, float *scratch)
{
	size_t span = tt_hn_span(it, n);
	float *a = scratch, *b = scratch + span;
	double L = 0;
	for (int q = 0; q < nt; q++) {
		memset(a, 0, span * sizeof *a);
		memset(b, 0, span * sizeof *b);
		tt_hn_generate(c, it, n, snap, tasks[q], a);
		tt_hn_generate(c, it, n, psi, tasks[q], b);
		/* b becomes the gradient 2 (H_psi - H_snap) on generated entries
		 * (entries between items stay 0 in both) */
		for (size_t k = 0; k < span; k++) {
			double d = (double)b[k] - a[k];
			L += d * d;
			b[k] = (float)(2 * d);
		}
		tt_hn_backward(c, it, n, psi, tasks[q], b, dpsi);
	}
	return L;
}
