/*
 * test_fms.c — freeze-thaw decisions (engine/fms.h) on a synthetic hub:
 * configurations whose quality shows partly in their coordinates and
 * partly only in their weights.  Checks the initial design, that an
 * unseen configuration is only ever embedded from its starting weights,
 * that decisions replay exactly, and that the weight-aware sampler finds
 * better configurations than random freeze-thaw at the same budget.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fms.h"
#include "rng.h"
#include "test.h"

enum { NC = 24, BMAX = 4, BUDGET = 30, NI = 2, NH = 3, NO = 1 };
enum { NN = NI + NH + NO, NE = NI * NH + NH * NO };

typedef struct hub {
	double x[NC][2], q[NC], curve[NC][BMAX];
	int budget[NC];
	/* a tiny network per (configuration, epoch): its weights grow with
	 * the hidden quality and with training */
	double xn[NN * 3], xe[NC][BMAX + 1][NE * 2];
	int src[NE], dst[NE];
	tt_graph g[NC][BMAX + 1];
	int max_epoch_asked_unseen;
} hub;

static double truth(const hub *h, int i, int j)
{
	return 0.4 + 0.5 * h->q[i] * (1 - exp(-j / 1.5)) + 0.05 * h->x[i][1];
}

static void hub_make(hub *h, uint64_t seed)
{
	memset(h, 0, sizeof *h);
	tt_rng r;
	tt_rng_seed(&r, seed, 1);
	int k = 0;
	for (int i = 0; i < NI; i++)
		for (int o = 0; o < NH; o++)
			h->src[k] = i, h->dst[k] = NI + o, k++;
	for (int i = 0; i < NH; i++)
		h->src[k] = NI + i, h->dst[k] = NI + NH, k++;
	for (int v = 0; v < NN; v++) {
		h->xn[v * 3] = v < NI ? 0 : v < NI + NH ? 1 : 2;
		h->xn[v * 3 + 1] = v >= NI && v < NI + NH;
		h->xn[v * 3 + 2] = 1;
	}
	for (int i = 0; i < NC; i++) {
		h->x[i][0] = tt_rng_uniform(&r);
		h->x[i][1] = tt_rng_uniform(&r);
		double hidden = tt_rng_uniform(&r);
		h->q[i] = 0.3 * h->x[i][0] + 0.7 * hidden;
		for (int e = 0; e <= BMAX; e++) {
			for (int q = 0; q < NE; q++) {
				h->xe[i][e][2 * q] = (0.3 + hidden) * (1 + 0.2 * e) * (q % 2 ? 1 : -1);
				h->xe[i][e][2 * q + 1] = q < NI * NH ? 0 : 1;
			}
			h->g[i][e] = (tt_graph){ .nnodes = NN, .nedges = NE, .nf_node = 3, .nf_edge = 2,
			                         .xnode = h->xn, .xedge = h->xe[i][e], .src = h->src,
			                         .dst = h->dst };
		}
	}
}

static const tt_graph *graph_of(void *ud, int i, int e)
{
	hub *h = ud;
	if (h->budget[i] == 0 && e > h->max_epoch_asked_unseen)
		h->max_epoch_asked_unseen = e;
	return e <= h->budget[i] ? &h->g[i][e] : NULL; /* a future checkpoint does not exist */
}

/* Run BUDGET epochs of decisions; returns the regret of the best value
 * seen; choices[] (may be NULL) gets the decisions. */
static double run(int mode, uint64_t seed, int *choices, int *unseen_epoch, int *random_first)
{
	hub *h = malloc(sizeof *h);
	hub_make(h, seed);
	tt_fms_config c;
	tt_fms_defaults(&c, 2, BMAX);
	c.surr.hidden = 8;
	c.surr.feat = 8;
	c.surr.conv = 2;
	c.surr.lr = 1e-2;
	c.surr.seed = seed;
	c.init = 6;
	c.steps_first = 60;
	c.steps_warm = 15;
	c.surr.weights = mode < 0 ? TT_SURR_NONE : mode;
	c.surr.gmn = (tt_gmn_config){ .width = 6, .blocks = 1, .out = 4, .nf_node = 3, .nf_edge = 2 };
	tt_fms *f = NULL;
	tt_err err = {0};
	tt_fms_new(&c, &f, &err);
	tt_fms_weights w = { .ud = h, .graph = graph_of };
	tt_rng r;
	tt_rng_seed(&r, seed, 2);
	double best = -INFINITY, top = -INFINITY;
	for (int i = 0; i < NC; i++)
		top = fmax(top, truth(h, i, BMAX));
	*random_first = 0;
	for (int s = 0; s < BUDGET; s++) {
		tt_fms_conf t[NC];
		for (int i = 0; i < NC; i++)
			t[i] = (tt_fms_conf){ .x = h->x[i], .budget = h->budget[i], .curve = h->curve[i] };
		int pick;
		if (mode == -2) { /* random freeze-thaw */
			do
				pick = (int)tt_rng_below(&r, NC);
			while (h->budget[pick] >= BMAX);
		} else {
			tt_fms_choice ch;
			if (tt_fms_decide(f, t, NC, &w, &ch, &err)) {
				fprintf(stderr, "  %s\n", err.msg);
				break;
			}
			pick = ch.index;
			*random_first += ch.random && s < c.init;
		}
		if (choices)
			choices[s] = pick;
		int j = ++h->budget[pick];
		h->curve[pick][j - 1] = truth(h, pick, j);
		best = fmax(best, h->curve[pick][j - 1]);
	}
	if (unseen_epoch)
		*unseen_epoch = h->max_epoch_asked_unseen;
	tt_fms_free(f);
	free(h);
	return top - best;
}

static void decisions_replay_and_respect_the_past(void)
{
	int a[BUDGET], b[BUDGET], unseen, rnd;
	run(TT_SURR_GMN, 5, a, &unseen, &rnd);
	CHECK(rnd == 6, "%d of the first 6 decisions were the initial design", rnd);
	CHECK(unseen == 0, "an unseen configuration was embedded from epoch %d's weights", unseen);
	run(TT_SURR_GMN, 5, b, &unseen, &rnd);
	CHECK(memcmp(a, b, sizeof a) == 0, "the same table and seed decide differently");
}

static void weights_help_find_good_configurations(void)
{
	double fms = 0, dyhpo = 0, rnd = 0;
	int dummy, r0;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		fms += run(TT_SURR_GMN, seed, NULL, &dummy, &r0) / 4;
		dyhpo += run(-1, seed, NULL, &dummy, &r0) / 4;
		rnd += run(-2, seed, NULL, &dummy, &r0) / 4;
	}
	printf("  mean regret after %d epochs: fms %.4f, dyhpo %.4f, random %.4f\n", BUDGET, fms,
	       dyhpo, rnd);
	CHECK(fms <= rnd, "fms regret %.4f above random's %.4f", fms, rnd);
	CHECK(fms <= dyhpo, "fms regret %.4f above dyhpo's %.4f", fms, dyhpo);
}

int main(void)
{
	TT_RUN(decisions_replay_and_respect_the_past);
	TT_RUN(weights_help_find_good_configurations);
	TT_EXIT();
}
