/*
 * tpe.c — the Tree-structured Parzen Estimator; see tpe.h.
 *
 * Everything is O(n_candidates * n * d) per proposal with n the
 * observations of the modelled rung: a few hundred observations cost
 * well under a millisecond, so nothing is cached between proposals and
 * the proposal stays a pure function of what was told.
 */
#include "tpe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tt_tpe_defaults(tt_tpe_config *c)
{
	c->gamma = 0.1;
	c->min_obs = 10;
	c->n_candidates = 24;
}

/* One dimension's Parzen estimator: m observation components and the
 * prior (the last component). */
typedef struct parzen {
	int m;             /* components, the prior included */
	double *mu, *sd, *z; /* z: the mass of each Gaussian inside [0, 1] */
	int ncat;
	double *p;         /* categorical: probability of each choice */
} parzen;

static double Phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Build the estimator of dimension j over the points idx[0..k). */
static void parzen_build(parzen *P, const double *U, int d, int j, const int *idx,
                         int k, int ncat, double *scratch)
{
	P->ncat = ncat;
	if (ncat > 0) {
		for (int c = 0; c < ncat; c++)
			P->p[c] = 1.0 / ncat;
		for (int i = 0; i < k; i++) {
			int c = (int)(U[(size_t)idx[i] * d + j] * ncat);
			P->p[c < ncat ? c : ncat - 1] += 1;
		}
		for (int c = 0; c < ncat; c++)
			P->p[c] /= k + 1;
		return;
	}
	int m = k + 1;
	P->m = m;
	for (int i = 0; i < k; i++)
		P->mu[i] = U[(size_t)idx[i] * d + j];
	P->mu[k] = 0.5;
	memcpy(scratch, P->mu, (size_t)m * sizeof *scratch);
	qsort(scratch, (size_t)m, sizeof *scratch, cmp_double);
	double lo = 1.0 / (m + 1 < 100 ? m + 1 : 100);
	for (int i = 0; i < k; i++) {
		/* the gaps around this mean among the sorted means, the
		 * interval's ends counting as neighbours */
		double x = P->mu[i], left = x, right = 1 - x;
		for (int t = 0; t < m; t++) {
			double v = scratch[t];
			if (v < x && x - v < left)
				left = x - v;
			if (v > x && v - x < right)
				right = v - x;
		}
		double s = left > right ? left : right;
		P->sd[i] = s < lo ? lo : s > 1 ? 1 : s;
	}
	P->sd[k] = 1.0;
	for (int i = 0; i < m; i++)
		P->z[i] = Phi((1 - P->mu[i]) / P->sd[i]) - Phi((0 - P->mu[i]) / P->sd[i]);
}

static double parzen_logpdf(const parzen *P, double x)
{
	if (P->ncat > 0) {
		int c = (int)(x * P->ncat);
		return log(P->p[c < P->ncat ? c : P->ncat - 1]);
	}
	double s = 0;
	for (int i = 0; i < P->m; i++) {
		double t = (x - P->mu[i]) / P->sd[i];
		s += exp(-0.5 * t * t) / (P->sd[i] * 2.5066282746310002 * P->z[i]);
	}
	return log(s / P->m + 1e-300);
}

static double parzen_sample(const parzen *P, tt_rng *r)
{
	if (P->ncat > 0) {
		double u = tt_rng_uniform(r), acc = 0;
		int c = 0;
		for (; c < P->ncat - 1; c++) {
			acc += P->p[c];
			if (u < acc)
				break;
		}
		return (c + 0.5) / P->ncat;
	}
	int i = (int)tt_rng_below(r, (uint32_t)P->m);
	/* rejection from the untruncated Gaussian: at least a third of the
	 * draws land inside for sd <= 1 and a mean inside */
	for (int tries = 0; tries < 64; tries++) {
		double x = P->mu[i] + P->sd[i] * tt_rng_normal(r);
		if (x >= 0 && x < 1)
			return x;
	}
	return P->mu[i] < 0.5 ? 0 : nextafter(1.0, 0.0);
}

typedef struct ranked { double y; int i; } ranked;

static int cmp_ranked(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	/* best first; NaN last; ties by index */
	int xn = isnan(x->y), yn = isnan(y->y);
	if (xn != yn)
		return xn - yn;
	if (!xn && x->y != y->y)
		return x->y < y->y ? 1 : -1;
	return x->i - y->i;
}

int tt_tpe_propose(const tt_tpe_config *c, int d, const int *ncat, const double *U,
                   const double *y, const int *rung, int n, tt_rng *r, double *u_out)
{
	int min_obs = c->min_obs > 0 ? c->min_obs : 10;
	/* the highest rung with enough observations */
	int top = -1;
	for (int i = 0; i < n; i++)
		if (rung[i] > top)
			top = rung[i];
	int model = -1, k = 0;
	for (int q = top; q >= 0 && model < 0; q--) {
		k = 0;
		for (int i = 0; i < n; i++)
			k += rung[i] == q;
		if (k >= min_obs)
			model = q;
	}
	ranked *rk = model >= 0 ? malloc((size_t)k * sizeof *rk) : NULL;
	int *idx = rk ? malloc((size_t)k * sizeof *idx) : NULL;
	size_t pm = (size_t)k + 1, pc = 1;
	for (int j = 0; j < d; j++)
		if (ncat && ncat[j] > (int)pc)
			pc = (size_t)ncat[j];
	double *buf = idx ? malloc((2 * 3 * pm + 2 * pc + pm) * sizeof *buf) : NULL;
	double *cand = buf ? malloc((size_t)d * sizeof *cand) : NULL;
	if (!cand) {
		/* start-up, or no memory for the model: uniform */
		free(rk);
		free(idx);
		free(buf);
		for (int j = 0; j < d; j++)
			u_out[j] = ncat && ncat[j] > 0
			         ? (tt_rng_below(r, (uint32_t)ncat[j]) + 0.5) / ncat[j]
			         : (double)(tt_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
		return -1;
	}
	int t = 0;
	for (int i = 0; i < n; i++)
		if (rung[i] == model)
			rk[t++] = (ranked){ y[i], i };
	qsort(rk, (size_t)k, sizeof *rk, cmp_ranked);
	int ng = (int)ceil(c->gamma * k);
	if (ng > 25)
		ng = 25;
	if (ng < 1)
		ng = 1;
	for (int i = 0; i < k; i++)
		idx[i] = rk[i].i;
	parzen L = { .mu = buf, .sd = buf + pm, .z = buf + 2 * pm, .p = buf + 6 * pm };
	parzen G = { .mu = buf + 3 * pm, .sd = buf + 4 * pm, .z = buf + 5 * pm,
	             .p = buf + 6 * pm + pc };
	double *scratch = buf + 6 * pm + 2 * pc;
	int nc = c->n_candidates > 0 ? c->n_candidates : 24;
	/* dimension by dimension: the candidates of each are independent */
	for (int j = 0; j < d; j++) {
		int kc = ncat ? ncat[j] : 0;
		parzen_build(&L, U, d, j, idx, ng, kc, scratch);
		parzen_build(&G, U, d, j, idx + ng, k - ng, kc, scratch);
		double best = -INFINITY;
		for (int q = 0; q < nc; q++) {
			double x = parzen_sample(&L, r);
			double s = parzen_logpdf(&L, x) - parzen_logpdf(&G, x);
			if (s > best) {
				best = s;
				cand[j] = x;
			}
		}
	}
	memcpy(u_out, cand, (size_t)d * sizeof *u_out);
	free(rk);
	free(idx);
	free(buf);
	free(cand);
	return model;
}
