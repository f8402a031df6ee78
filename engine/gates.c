/*
 * gates.c — the expected cost of gated networks and the probabilities'
 * update; see gates.h and methods.md section 4.
 */
#include "gates.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tt_gate_defaults(tt_gate_config *c)
{
	memset(c, 0, sizeof *c);
	c->strength = 0;
	c->balance = 0.5;
	c->flops_share = 0.5;
	c->lr = 0.03;
	c->lam_on = 5e-4;
	c->lam_off = 5e-3;
	c->prune_t = 0.05;
	c->prune_w = 0.1;
	c->prune_every = 100;
	c->warmup_epochs = 1;
	c->layer_hold_epochs = 2;
	c->ramp = 0.5;
	c->dual_rate = 2;
	c->lambda0 = 0.05;
	c->polar_sum = 8;
}

double tt_gate_target(double strength)
{
	return 1 / (1 + (strength > 0 ? strength : 0));
}

double tt_gate_schedule(double cstar, double p)
{
	p = p < 0 ? 0 : p > 1 ? 1 : p;
	double q = 1 - p;
	return cstar + (1 - cstar) * q * q * q;
}

double tt_gate_dual(double lambda, double cost, double target, double rate)
{
	double x = lambda * exp(rate * (cost - target));
	return x < 1e-4 ? 1e-4 : x > 1e4 ? 1e4 : x == x ? x : lambda;
}

int tt_gate_parse(const char *s, tt_gate_config *c, tt_err *err)
{
	static const char *const names[3] = { "strength", "balance", "flops share" };
	static const double hi[3] = { 1000, 1, 1 };
	double v[3] = { c->strength, c->balance, c->flops_share };
	const char *p = s;
	int i = 0;
	if (!s || !*s)
		return tt_err_set(err, TT_EINPUT, "--gates: empty value; expected "
		                  "STRENGTH[,BALANCE[,FLOPS_SHARE]]");
	for (;;) {
		char *end;
		errno = 0;
		double x = strtod(p, &end);
		if (end == p || errno || !isfinite(x) || (*end && *end != ','))
			return tt_err_set(err, TT_EINPUT, "--gates '%s': %s '%.*s' is not a "
			                  "number; expected STRENGTH[,BALANCE[,FLOPS_SHARE]]",
			                  s, names[i], (int)strcspn(p, ","), p);
		if (x < 0 || x > hi[i])
			return tt_err_set(err, TT_EINPUT, "--gates '%s': %s %g is out of "
			                  "range, expected 0..%g", s, names[i], x, hi[i]);
		v[i++] = x;
		if (!*end)
			break;
		if (i == 3)
			return tt_err_set(err, TT_EINPUT, "--gates '%s': more than three "
			                  "values; expected STRENGTH[,BALANCE[,FLOPS_SHARE]]", s);
		p = end + 1;
	}
	c->strength = v[0];
	c->balance = v[1];
	c->flops_share = v[2];
	return TT_OK;
}

/* S(g): the sum of a group's probabilities; 1 for an absent factor. */
static double group_sum(const tt_gate_cost *c, const float *t, int g)
{
	if (g < 0)
		return 1.0;
	const tt_gate_group *gr = &c->group[g];
	double s = 0;
	for (int i = 0; i < gr->count; i++)
		s += t[gr->first + i];
	return s;
}

/* The probabilities' sums of every group, into sums[ngroups]. */
static void group_sums(const tt_gate_cost *c, const float *t, double *sums)
{
	for (int g = 0; g < c->ngroups; g++)
		sums[g] = group_sum(c, t, g);
}

static double factor(const double *sums, int g)
{
	return g < 0 ? 1.0 : sums[g];
}

void tt_gate_cost_init(tt_gate_cost *c)
{
	c->macs_full = c->params_full = 0;
	for (int k = 0; k < c->nterms; k++) {
		const tt_gate_term *tm = &c->term[k];
		double prod = 1;
		if (tm->a >= 0)
			prod *= c->group[tm->a].count;
		if (tm->b >= 0)
			prod *= c->group[tm->b].count;
		c->macs_full += tm->macs * prod;
		c->params_full += tm->params * prod;
	}
}

/* Up to this many groups the sums live on the stack. */
#define SUMS_STACK 256

void tt_gate_expected(const tt_gate_cost *c, const float *t, double *macs,
                      double *params)
{
	double stack[SUMS_STACK];
	double *sums = c->ngroups <= SUMS_STACK ? stack : malloc(c->ngroups * sizeof *sums);
	TT_ASSERT(sums);
	group_sums(c, t, sums);
	double mc = 0, pc = 0;
	for (int k = 0; k < c->nterms; k++) {
		const tt_gate_term *tm = &c->term[k];
		double prod = factor(sums, tm->layer) * factor(sums, tm->a) *
		              factor(sums, tm->b);
		mc += tm->macs * prod;
		pc += tm->params * prod;
	}
	*macs = mc;
	*params = pc;
	if (sums != stack)
		free(sums);
}

double tt_gate_complexity(const tt_gate_cost *c, const float *t, double a,
                          double *dcdt)
{
	double stack[2 * SUMS_STACK];
	int big = c->ngroups > SUMS_STACK;
	double *sums = big ? malloc(2 * c->ngroups * sizeof *sums) : stack;
	TT_ASSERT(sums);
	double *dg = sums + (big ? c->ngroups : SUMS_STACK); /* dC/dS(g) */
	group_sums(c, t, sums);
	memset(dg, 0, c->ngroups * sizeof *dg);
	double wm = c->macs_full > 0 ? a / c->macs_full : 0;
	double wp = c->params_full > 0 ? (1 - a) / c->params_full : 0;
	double cost = 0;
	for (int k = 0; k < c->nterms; k++) {
		const tt_gate_term *tm = &c->term[k];
		double w = wm * tm->macs + wp * tm->params;
		double fl = factor(sums, tm->layer), fa = factor(sums, tm->a),
		       fb = factor(sums, tm->b);
		cost += w * fl * fa * fb;
		/* the term is linear in each factor, and d S(g) / d t[i] = 1 */
		if (tm->layer >= 0)
			dg[tm->layer] += w * fa * fb;
		if (tm->a >= 0)
			dg[tm->a] += w * fl * fb;
		if (tm->b >= 0)
			dg[tm->b] += w * fl * fa;
	}
	if (dcdt)
		for (int g = 0; g < c->ngroups; g++)
			for (int i = 0; i < c->group[g].count; i++)
				dcdt[c->group[g].first + i] = dg[g];
	if (big)
		free(sums);
	return cost;
}

/* The data term's weight of gate i of group gr (tt_gate_update). */
static double data_weight(const tt_gate_group *gr, const float *t, const float *mask, int i)
{
	if (mask && gr->offscore) {
		double p = mask[i] != 0 ? t[i] : 1 - t[i];
		return p > 0.025 ? 0.5 / p : 20;
	}
	double w = t[i] > 0.05f ? 1.0 / t[i] : 20;
	return w < 1 ? 1 : w;
}

void tt_gate_update(const tt_gate_cost *c, const tt_gate_config *cfg,
                    float *t, const float *score, const float *mask, const double *wsq,
                    const unsigned char *pruned, int hold_layers, double rms2[2],
                    double *dcdt)
{
	tt_gate_complexity(c, t, cfg->flops_share, dcdt);
	/* G of every gate that moves, over dC/dt (each needs only its own; a
	 * layer gate's branch group comes after it and is still dC/dt there) */
	double sum2[2] = { 0, 0 };
	long moving[2] = { 0, 0 };
	for (int g = 0; g < c->ngroups; g++) {
		const tt_gate_group *gr = &c->group[g];
		int layer = gr->kind == TT_GATE_LAYER;
		double scale = layer ? 2 * cfg->balance : 2 * (1 - cfg->balance);
		for (int j = 0; j < gr->count; j++) {
			int i = gr->first + j;
			if ((layer && hold_layers) || (pruned && pruned[i])) {
				dcdt[i] = NAN; /* does not move */
				continue;
			}
			double data = 0;
			if (layer && gr->branch >= 0) {
				const tt_gate_group *u = &c->group[gr->branch];
				for (int k = 0; k < u->count; k++)
					if (!(pruned && pruned[u->first + k]))
						data += data_weight(u, t, mask, u->first + k) *
						        score[u->first + k];
				data *= data_weight(gr, t, NULL, i);
			} else {
				data = data_weight(gr, t, mask, i) * score[i];
			}
			double G = data + (cfg->lam_on - cfg->lam_off) * wsq[i] / 2 +
			           cfg->lambda * scale * dcdt[i];
			dcdt[i] = G == G ? G : 0; /* a NaN score moves nothing */
			sum2[layer] += dcdt[i] * dcdt[i];
			moving[layer]++;
		}
	}
	/* the step's scale: lr itself, or lr over its kind's running RMS of G */
	double lr[2] = { cfg->lr, cfg->lr };
	for (int k = 0; k < 2 && rms2; k++) {
		if (!moving[k])
			continue;
		double m2 = sum2[k] / (double)moving[k];
		rms2[k] = rms2[k] > 0 ? 0.99 * rms2[k] + 0.01 * m2 : m2;
		lr[k] = rms2[k] > 0 ? cfg->lr / sqrt(rms2[k]) : 0;
	}
	for (int g = 0; g < c->ngroups; g++) {
		const tt_gate_group *gr = &c->group[g];
		for (int j = 0; j < gr->count; j++) {
			int i = gr->first + j;
			if (pruned && pruned[i]) {
				t[i] = 0;
				continue;
			}
			if (dcdt[i] != dcdt[i])
				continue; /* held */
			double nt = t[i] - lr[gr->kind == TT_GATE_LAYER] * dcdt[i];
			nt += cfg->polar * (nt - 0.5);
			/* the projection onto [0, 1] */
			t[i] = nt >= 1 ? 1.0f : nt <= 0 ? 0.0f : (float)nt;
		}
	}
}
