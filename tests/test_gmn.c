/*
 * test_gmn.c — the graph metanetwork (engine/gmn.h): the gradient of its
 * output in every parameter against central differences (at width 6, and
 * at 8 and 16, which gmn.c runs through copies of its loops compiled for
 * that width), invariance to permuting the hidden units of the network
 * the graph describes, and a tape reused across graphs giving what a
 * fresh one gives.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gmn.h"
#include "rng.h"
#include "test.h"

/*
 * The weight graph of a dense network 3-5-2 built the way a graph builder
 * would: nodes are the 3 inputs, 5 hidden, 2 outputs and one bias node per
 * layer; node features (layer, is input, is hidden, is output, is bias);
 * edge features (weight, layer, is bias edge).  perm permutes the hidden
 * units: hidden unit h is stored as node 3 + perm[h], and the edges are
 * listed in another order too.
 */
enum { NI = 3, NH = 5, NO = 2, NN = NI + NH + NO + 2, NE = NI * NH + NH + NH * NO + NO };

static void build(const int *perm, int reverse_edges, tt_graph *g, double *xn, double *xe,
                  int *src, int *dst)
{
	tt_rng r;
	tt_rng_seed(&r, 11, 1);
	double W1[NH][NI], b1[NH], W2[NO][NH], b2[NO];
	for (int h = 0; h < NH; h++) {
		for (int i = 0; i < NI; i++)
			W1[h][i] = tt_rng_normal(&r);
		b1[h] = tt_rng_normal(&r);
	}
	for (int o = 0; o < NO; o++) {
		for (int h = 0; h < NH; h++)
			W2[o][h] = tt_rng_normal(&r);
		b2[o] = tt_rng_normal(&r);
	}
	int bias1 = NI + NH + NO, bias2 = bias1 + 1;
	memset(xn, 0, NN * 5 * sizeof *xn);
	for (int v = 0; v < NN; v++) {
		double *f = xn + v * 5;
		if (v < NI)
			f[0] = 0, f[1] = 1;
		else if (v < NI + NH)
			f[0] = 1, f[2] = 1;
		else if (v < NI + NH + NO)
			f[0] = 2, f[3] = 1;
		else
			f[0] = v == bias1 ? 0.5 : 1.5, f[4] = 1;
	}
	int k = 0;
	double tmp[NE][3];
	int ts[NE], td[NE];
#define EDGE(s, d, wv, layer, isb) \
	(ts[k] = (s), td[k] = (d), tmp[k][0] = (wv), tmp[k][1] = (layer), tmp[k][2] = (isb), k++)
	for (int h = 0; h < NH; h++) {
		int hn = NI + perm[h];
		for (int i = 0; i < NI; i++)
			EDGE(i, hn, W1[h][i], 0, 0);
		EDGE(bias1, hn, b1[h], 0, 1);
	}
	for (int o = 0; o < NO; o++) {
		for (int h = 0; h < NH; h++)
			EDGE(NI + perm[h], NI + NH + o, W2[o][h], 1, 0);
		EDGE(bias2, NI + NH + o, b2[o], 1, 1);
	}
#undef EDGE
	for (int q = 0; q < NE; q++) {
		int from = reverse_edges ? NE - 1 - q : q;
		src[q] = ts[from];
		dst[q] = td[from];
		memcpy(xe + q * 3, tmp[from], sizeof tmp[from]);
	}
	*g = (tt_graph){ .nnodes = NN, .nedges = NE, .nf_node = 5, .nf_edge = 3,
	                 .xnode = xn, .xedge = xe, .src = src, .dst = dst };
}

static const tt_gmn_config CFG = { .width = 6, .blocks = 2, .out = 4, .nf_node = 5,
                                   .nf_edge = 3 };

static void invariant_to_hidden_permutations(void)
{
	double xn[NN * 5], xe[NE * 3], a[4], b[4];
	int src[NE], dst[NE];
	const int id[NH] = { 0, 1, 2, 3, 4 }, pm[NH] = { 3, 0, 4, 1, 2 };
	size_t np = tt_gmn_nparams(&CFG);
	double *p = malloc(np * sizeof *p);
	tt_gmn_init(&CFG, p, 3);
	tt_graph g;
	tt_err err = {0};
	build(id, 0, &g, xn, xe, src, dst);
	CHECK(tt_gmn_forward(&CFG, p, &g, a, NULL, &err) == TT_OK, "%s", err.msg);
	build(pm, 1, &g, xn, xe, src, dst);
	CHECK(tt_gmn_forward(&CFG, p, &g, b, NULL, &err) == TT_OK, "%s", err.msg);
	double diff = 0, size = 0;
	for (int j = 0; j < 4; j++) {
		diff = fmax(diff, fabs(a[j] - b[j]));
		size = fmax(size, fabs(a[j]));
	}
	CHECK(diff < 1e-12 && size > 1e-3, "permuted hidden units change the embedding by "
	      "%g (size %g)", diff, size);
	/* and a change of one weight does change it */
	xe[0] += 0.5;
	CHECK(tt_gmn_forward(&CFG, p, &g, b, NULL, &err) == TT_OK, "%s", err.msg);
	diff = 0;
	for (int j = 0; j < 4; j++)
		diff = fmax(diff, fabs(a[j] - b[j]));
	CHECK(diff > 1e-6, "a changed weight leaves the embedding as it was (%g)", diff);
	free(p);
}

static void gradient_check(const tt_gmn_config *c)
{
	double xn[NN * 5], xe[NE * 3], out[4], r[4] = { 0.7, -1.3, 0.4, 1.1 };
	int src[NE], dst[NE];
	const int id[NH] = { 0, 1, 2, 3, 4 };
	tt_graph g;
	build(id, 0, &g, xn, xe, src, dst);
	size_t np = tt_gmn_nparams(c);
	double *p = malloc(np * sizeof *p), *dp = calloc(np, sizeof *dp);
	tt_gmn_init(c, p, 4);
	tt_gmn_tape *t = NULL;
	tt_err err = {0};
	CHECK(tt_gmn_forward(c, p, &g, out, &t, &err) == TT_OK, "%s", err.msg);
	tt_gmn_backward(c, p, &g, t, r, dp);
	tt_gmn_tape_free(t);
	int bad = 0;
	double worst = 0;
	for (size_t i = 0; i < np; i++) {
		double keep = p[i], e = 1e-6, up = 0, dn = 0;
		p[i] = keep + e;
		tt_gmn_forward(c, p, &g, out, NULL, NULL);
		for (int j = 0; j < 4; j++)
			up += r[j] * out[j];
		p[i] = keep - e;
		tt_gmn_forward(c, p, &g, out, NULL, NULL);
		for (int j = 0; j < 4; j++)
			dn += r[j] * out[j];
		p[i] = keep;
		double fd = (up - dn) / (2 * e), d = fabs(fd - dp[i]);
		if (d > 1e-6 + 1e-4 * fabs(fd)) {
			if (bad++ < 5)
				fprintf(stderr, "  width %d, parameter %zu: analytic %.8g, central %.8g\n",
				        c->width, i, dp[i], fd);
		}
		worst = fmax(worst, d);
	}
	CHECK(bad == 0, "width %d: %d of %zu parameters off (worst %g)", c->width, bad, np,
	      worst);
	free(p);
	free(dp);
}

static void gradient_matches_central_differences(void)
{
	gradient_check(&CFG);
	for (int w = 8; w <= 16; w *= 2) {
		tt_gmn_config c = CFG;
		c.width = w;
		gradient_check(&c);
	}
}

/* One tape through graphs of other sizes and widths: each forward and
 * backward as with a tape of its own, bit for bit. */
static void reused_tape_gives_what_a_fresh_one_gives(void)
{
	double xn[NN * 5], xe[NE * 3], r[4] = { 0.7, -1.3, 0.4, 1.1 };
	int src[NE], dst[NE];
	const int id[NH] = { 0, 1, 2, 3, 4 };
	tt_graph g;
	build(id, 0, &g, xn, xe, src, dst);
	tt_graph small = g;
	small.nedges = NE / 2;   /* a prefix of the edges: still a graph */
	tt_gmn_tape *kept = NULL;
	tt_err err = {0};
	const int widths[4] = { 6, 8, 16, 8 };
	const tt_graph *graphs[4] = { &g, &small, &g, &small };
	for (int k = 0; k < 4; k++) {
		tt_gmn_config c = CFG;
		c.width = widths[k];
		size_t np = tt_gmn_nparams(&c);
		double *p = malloc(np * sizeof *p), *da = calloc(np, sizeof *da);
		double *db = calloc(np, sizeof *db), oa[4], ob[4];
		tt_gmn_init(&c, p, 5 + k);
		tt_gmn_tape *fresh = NULL;
		CHECK(tt_gmn_forward(&c, p, graphs[k], oa, &fresh, &err) == TT_OK, "%s", err.msg);
		CHECK(tt_gmn_forward(&c, p, graphs[k], ob, &kept, &err) == TT_OK, "%s", err.msg);
		tt_gmn_backward(&c, p, graphs[k], fresh, r, da);
		tt_gmn_backward(&c, p, graphs[k], kept, r, db);
		CHECK(memcmp(oa, ob, sizeof oa) == 0, "graph %d: outputs differ", k);
		CHECK(memcmp(da, db, np * sizeof *da) == 0, "graph %d: gradients differ", k);
		/* a second backward from the same tape gives the same again */
		memset(db, 0, np * sizeof *db);
		tt_gmn_backward(&c, p, graphs[k], kept, r, db);
		CHECK(memcmp(da, db, np * sizeof *da) == 0, "graph %d: a second backward from "
		      "one tape differs", k);
		tt_gmn_tape_free(fresh);
		free(p);
		free(da);
		free(db);
	}
	tt_gmn_tape_free(kept);
}

static void refuses_bad_graphs(void)
{
	double xn[NN * 5], xe[NE * 3], out[4];
	int src[NE], dst[NE];
	const int id[NH] = { 0, 1, 2, 3, 4 };
	tt_graph g;
	build(id, 0, &g, xn, xe, src, dst);
	double *p = calloc(tt_gmn_nparams(&CFG), sizeof *p);
	tt_err err = {0};
	dst[3] = NN;
	CHECK(tt_gmn_forward(&CFG, p, &g, out, NULL, &err) == TT_EINPUT &&
	      strstr(err.msg, "edge 3"), "an edge to a missing node: %s", err.msg);
	dst[3] = 0;
	g.nf_edge = 2;
	CHECK(tt_gmn_forward(&CFG, p, &g, out, NULL, &err) == TT_EINPUT, "wrong edge width");
	free(p);
}

int main(void)
{
	TT_RUN(invariant_to_hidden_permutations);
	TT_RUN(gradient_matches_central_differences);
	TT_RUN(reused_tape_gives_what_a_fresh_one_gives);
	TT_RUN(refuses_bad_graphs);
	TT_EXIT();
}
