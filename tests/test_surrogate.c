/*
 * test_surrogate.c — the deep-kernel surrogate (engine/surrogate.h): the
 * NLL gradient in every parameter (feature network, BN, curve convolution,
 * GMN or flat weights, GP) against central differences, and, on a problem
 * where only the weights reveal how good a trial is, the weight-aware
 * surrogate ranks unseen trials better than the one without weights.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "surrogate.h"
#include "test.h"

/* A 3-4-2 network's weight graph whose weights are scaled by q: the
 * trial's hidden quality shows in its weights only. */
enum { NI = 3, NH = 4, NO = 2, NN = NI + NH + NO + 2, NE = NI * NH + NH + NH * NO + NO };

typedef struct trial {
	double x[2], q;
	double xn[NN * 3], xe[NE * 2];
	int src[NE], dst[NE];
	float flat[NE];
	tt_graph g;
} trial;

static void make_trial(trial *t, tt_rng *r)
{
	t->x[0] = tt_rng_uniform(r);
	t->x[1] = tt_rng_uniform(r);
	t->q = tt_rng_uniform(r);
	int k = 0, b1 = NI + NH + NO, b2 = b1 + 1;
	for (int v = 0; v < NN; v++) {
		double *f = t->xn + v * 3;
		f[0] = v < NI ? 0 : v < NI + NH ? 1 : v < b1 ? 2 : v == b1 ? 0.5 : 1.5;
		f[1] = v >= b1;
		f[2] = v >= NI && v < NI + NH;
	}
#define EDGE(s, d, layer) (t->src[k] = (s), t->dst[k] = (d), \
	t->xe[2 * k] = (0.2 + t->q) * (tt_rng_normal(r) > 0 ? 1 : -1), t->xe[2 * k + 1] = (layer), \
	t->flat[k] = (float)t->xe[2 * k], k++)
	for (int h = 0; h < NH; h++) {
		for (int i = 0; i < NI; i++)
			EDGE(i, NI + h, 0);
		EDGE(b1, NI + h, 0);
	}
	for (int o = 0; o < NO; o++) {
		for (int h = 0; h < NH; h++)
			EDGE(NI + h, NI + NH + o, 1);
		EDGE(b2, NI + NH + o, 1);
	}
#undef EDGE
	t->g = (tt_graph){ .nnodes = NN, .nedges = NE, .nf_node = 3, .nf_edge = 2,
	                   .xnode = t->xn, .xedge = t->xe, .src = t->src, .dst = t->dst };
}

static double value(const trial *t, int j)
{
	return 0.5 + 0.3 * t->q * (1 - exp(-j / 2.0)) + 0.02 * t->x[0];
}

static void point(const trial *t, int j, const double *curve, tt_surr_point *p)
{
	*p = (tt_surr_point){ .x = t->x, .budget = j, .curve = curve, .ncurve = j - 1,
	                      .graph = &t->g, .flat = t->flat, .nflat = NE, .y = value(t, j) };
}

static void gradient_matches_central_differences(void)
{
	enum { T = 3 };
	tt_rng r;
	tt_rng_seed(&r, 2, 1);
	static trial tr[T];
	double curves[T][4];
	tt_surr_point obs[2 * T];
	for (int i = 0; i < T; i++) {
		make_trial(&tr[i], &r);
		for (int j = 1; j <= 4; j++)
			curves[i][j - 1] = value(&tr[i], j);
		point(&tr[i], 2, curves[i], &obs[2 * i]);
		point(&tr[i], 4, curves[i], &obs[2 * i + 1]);
	}
	for (int mode = 1; mode <= 2; mode++) {
		tt_surr_config c;
		tt_surr_defaults(&c, 2, 5);
		c.hidden = 5;
		c.conv = 2;
		c.feat = 6;
		c.weights = mode;
		c.gmn = (tt_gmn_config){ .width = 4, .blocks = 1, .out = 3, .nf_node = 3, .nf_edge = 2 };
		c.flat_len = 30;
		c.flat_out = 3;
		tt_surr *s = NULL;
		tt_err err = {0};
		CHECK(tt_surr_new(&c, &s, &err) == TT_OK, "%s", err.msg);
		double nll;
		/* zero steps: the initial parameters and the standardisation */
		CHECK(tt_surr_fit(s, obs, 2 * T, 0, 1, &nll, &err) == TT_OK, "%s", err.msg);
		size_t np;
		double *p = tt_surr_params(s, &np), *g = malloc(np * sizeof *g);
		CHECK(tt_surr_gradient(s, obs, 2 * T, &nll, g, &err) == TT_OK, "%s", err.msg);
		int bad = 0;
		double worst = 0;
		for (size_t i = 0; i < np; i++) {
			double keep = p[i], e = 1e-6, up, dn, gg = 0;
			double *scratch = malloc(np * sizeof *scratch);
			p[i] = keep + e;
			tt_surr_gradient(s, obs, 2 * T, &up, scratch, NULL);
			p[i] = keep - e;
			tt_surr_gradient(s, obs, 2 * T, &dn, scratch, NULL);
			p[i] = keep;
			free(scratch);
			double fd = (up - dn) / (2 * e);
			gg = fabs(fd - g[i]);
			/* the curve's max switches position only at ties: none here */
			if (gg > 1e-5 + 1e-3 * fabs(fd)) {
				if (bad++ < 5)
					fprintf(stderr, "  mode %d parameter %zu: analytic %.8g, central %.8g\n",
					        mode, i, g[i], fd);
			}
			worst = fmax(worst, gg);
		}
		CHECK(bad == 0, "mode %d: %d of %zu parameters off (worst %g)", mode, bad, np, worst);
		free(g);
		tt_surr_free(s);
	}
}

/* Kendall's tau between a and b. */
static double kendall(const double *a, const double *b, int n)
{
	int s = 0, m = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++) {
			double x = (a[i] - a[j]) * (b[i] - b[j]);
			s += (x > 0) - (x < 0);
			m++;
		}
	return (double)s / m;
}

/* 24 trials seen at budgets 1-2, 12 unseen ones at budget 1: the quality
 * q of an unseen trial shows only in its weights. */
static double ranking(int mode, uint64_t seed)
{
	enum { SEEN = 24, NEW = 12 };
	tt_rng r;
	tt_rng_seed(&r, seed, 1);
	static trial tr[SEEN + NEW];
	double curves[SEEN + NEW][2];
	tt_surr_point obs[2 * SEEN], cand[NEW];
	for (int i = 0; i < SEEN + NEW; i++) {
		make_trial(&tr[i], &r);
		curves[i][0] = value(&tr[i], 1);
		curves[i][1] = value(&tr[i], 2);
	}
	for (int i = 0; i < SEEN; i++) {
		point(&tr[i], 1, curves[i], &obs[2 * i]);
		point(&tr[i], 2, curves[i], &obs[2 * i + 1]);
	}
	double truth[NEW], mu[NEW], sd[NEW];
	for (int i = 0; i < NEW; i++) {
		point(&tr[SEEN + i], 1, curves[SEEN + i], &cand[i]);
		truth[i] = value(&tr[SEEN + i], 1);
	}
	tt_surr_config c;
	tt_surr_defaults(&c, 2, 4);
	c.hidden = 16;
	c.feat = 16;
	c.weights = mode;
	c.gmn = (tt_gmn_config){ .width = 8, .blocks = 2, .out = 8, .nf_node = 3, .nf_edge = 2 };
	c.lr = 1e-2;
	c.seed = seed;
	tt_surr *s = NULL;
	tt_err err = {0};
	double tau = -2;
	if (tt_surr_new(&c, &s, &err) == TT_OK &&
	    tt_surr_fit(s, obs, 2 * SEEN, 150, 1, NULL, &err) == TT_OK &&
	    tt_surr_predict(s, cand, NEW, mu, sd, &err) == TT_OK)
		tau = kendall(mu, truth, NEW);
	else
		fprintf(stderr, "  %s\n", err.msg);
	tt_surr_free(s);
	return tau;
}

static void weights_reveal_what_configurations_hide(void)
{
	double with = 0, without = 0;
	for (uint64_t seed = 1; seed <= 3; seed++) {
		with += ranking(TT_SURR_GMN, seed) / 3;
		without += ranking(TT_SURR_NONE, seed) / 3;
	}
	printf("  Kendall tau of unseen trials: with the weight graph %.3f, without %.3f\n",
	       with, without);
	CHECK(with > 0.5, "the weight graph ranks unseen trials at tau %.3f", with);
	CHECK(with > without + 0.2, "with weights %.3f, without %.3f", with, without);
}

int main(void)
{
	TT_RUN(gradient_matches_central_differences);
	TT_RUN(weights_reveal_what_configurations_hide);
	TT_EXIT();
}
