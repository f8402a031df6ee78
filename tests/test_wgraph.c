/*
 * test_wgraph.c — weight graphs (engine/wgraph.h): the counts and
 * features of a small residual convolutional network's graph, and the
 * property FMS relies on: permuting hidden channels together with the
 * weights that read and write them (a residual stream's channels together
 * with its shortcut) leaves the GMN embedding unchanged.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "test.h"
#include "wgraph.h"

/*
 * Groups: 0 input (1 channel), 1 stream A (4), 2 inner B (3), 3 stream D
 * (4), 4 output (2).  Layers: conv 0->1 3x3 + BN; conv 1->2 3x3 + BN;
 * conv 2->3 3x3 + BN; skip 1->3; dense 3->4 with bias.
 */
enum { A = 4, B = 3, OUT = 2 };
#define C1 0
#define BN1 (C1 + A * 9)
#define C2 (BN1 + 2 * A)
#define BN2 (C2 + B * 9 * A)
#define C3 (BN2 + 2 * B)
#define BN3 (C3 + A * 9 * B)
#define FC (BN3 + 2 * A)
#define FB (FC + OUT * A)
#define NP (FB + OUT)

static const tt_wg_group_desc GROUPS[5] = {
	{ 1, TT_WG_INPUT, 0 }, { A, TT_WG_HIDDEN, 1 }, { B, TT_WG_HIDDEN, 2 },
	{ A, TT_WG_HIDDEN, 3 }, { OUT, TT_WG_OUTPUT, 4 },
};
static const tt_wg_layer_desc LAYERS[5] = {
	{ TT_WG_CONV, 0, 1, 3, 3, C1, -1, BN1, 0 },
	{ TT_WG_CONV, 1, 2, 3, 3, C2, -1, BN2, -1 },
	{ TT_WG_CONV, 2, 3, 3, 3, C3, -1, BN3, -1 },
	{ TT_WG_SKIP, 1, 3, 0, 0, -1, -1, -1, -1 },
	{ TT_WG_DENSE, 3, 4, 0, 0, FC, FB, -1, -1 },
};

/* The network with stream channels permuted by pa (A and D together)
 * and inner channels by pb; probs permuted with A. */
static void permute(const float *p, const float *pr, const int *pa, const int *pb,
                    float *q, float *qr)
{
	memcpy(q, p, NP * sizeof *q);
	for (int o = 0; o < A; o++) {         /* conv1 rows and BN1 */
		memcpy(q + C1 + pa[o] * 9, p + C1 + o * 9, 9 * sizeof *q);
		q[BN1 + pa[o]] = p[BN1 + o];
		q[BN1 + A + pa[o]] = p[BN1 + A + o];
		qr[pa[o]] = pr[o];
	}
	for (int o = 0; o < B; o++)           /* conv2: rows by pb, inputs by pa */
		for (int k = 0; k < 9; k++)
			for (int i = 0; i < A; i++)
				q[C2 + (pb[o] * 9 + k) * A + pa[i]] = p[C2 + (o * 9 + k) * A + i];
	for (int o = 0; o < B; o++) {
		q[BN2 + pb[o]] = p[BN2 + o];
		q[BN2 + B + pb[o]] = p[BN2 + B + o];
	}
	for (int o = 0; o < A; o++)           /* conv3: rows by pa, inputs by pb */
		for (int k = 0; k < 9; k++)
			for (int i = 0; i < B; i++)
				q[C3 + (pa[o] * 9 + k) * B + pb[i]] = p[C3 + (o * 9 + k) * B + i];
	for (int o = 0; o < A; o++) {
		q[BN3 + pa[o]] = p[BN3 + o];
		q[BN3 + A + pa[o]] = p[BN3 + A + o];
	}
	for (int o = 0; o < OUT; o++)         /* fc: inputs by pa */
		for (int i = 0; i < A; i++)
			q[FC + o * A + pa[i]] = p[FC + o * A + i];
}

static void graph_counts_and_features(void)
{
	float p[NP], pr[A] = { 0.9f, 0.2f, 1, 0.5f };
	for (int i = 0; i < NP; i++)
		p[i] = (float)sin(i * 0.37);
	tt_graph g;
	tt_err err = {0};
	CHECK(tt_wgraph_build(GROUPS, 5, LAYERS, 5, p, NP, pr, &g, &err) == TT_OK, "%s", err.msg);
	CHECK(g.nnodes == 1 + A + B + A + OUT + 1, "%d nodes", g.nnodes);
	int edges = A * 9 + B * 9 * A + A * 9 * B + A + OUT * A + OUT;
	CHECK(g.nedges == edges, "%d edges, expected %d", g.nedges, edges);
	/* the first edge is conv1's W[0][0][0][0] from the input */
	CHECK(g.src[0] == 0 && g.dst[0] == 1 && g.xedge[0] == p[0] && g.xedge[3] == 1,
	      "first edge %d->%d value %g", g.src[0], g.dst[0], g.xedge[0]);
	/* stream A's unit 1: BN gamma, beta and its gate as node features */
	const double *f = g.xnode + 2 * TT_WG_NODE_F;
	CHECK(f[2] == 1 && f[5] == p[BN1 + 1] && f[6] == p[BN1 + A + 1] && f[7] == pr[1],
	      "node features of A[1]: hidden %g gamma %g beta %g gate %g", f[2], f[5], f[6], f[7]);
	tt_wgraph_free(&g);
	tt_wg_layer_desc bad[5];
	memcpy(bad, LAYERS, sizeof bad);
	bad[3].to = 2;
	CHECK(tt_wgraph_build(GROUPS, 5, bad, 5, p, NP, NULL, &g, &err) == TT_EINPUT &&
	      strstr(err.msg, "layer 3"), "a skip between 4 and 3 units: %s", err.msg);
	CHECK(tt_wgraph_build(GROUPS, 5, LAYERS, 5, p, NP - 1, NULL, &g, &err) == TT_EINPUT,
	      "parameters past the end accepted");
}

static void embedding_invariant_to_channel_permutations(void)
{
	float p[NP], q[NP], pr[A] = { 0.9f, 0.2f, 1, 0.5f }, qr[A];
	tt_rng r;
	tt_rng_seed(&r, 3, 1);
	for (int i = 0; i < NP; i++)
		p[i] = tt_rng_normal(&r);
	const int pa[A] = { 2, 0, 3, 1 }, pb[B] = { 1, 2, 0 };
	permute(p, pr, pa, pb, q, qr);
	tt_gmn_config c = { .width = 8, .blocks = 2, .out = 6, .nf_node = TT_WG_NODE_F,
	                    .nf_edge = TT_WG_EDGE_F };
	double *gp = malloc(tt_gmn_nparams(&c) * sizeof *gp), a[6], b[6];
	tt_gmn_init(&c, gp, 9);
	tt_graph g1, g2;
	tt_err err = {0};
	CHECK(tt_wgraph_build(GROUPS, 5, LAYERS, 5, p, NP, pr, &g1, &err) == TT_OK, "%s", err.msg);
	CHECK(tt_wgraph_build(GROUPS, 5, LAYERS, 5, q, NP, qr, &g2, &err) == TT_OK, "%s", err.msg);
	tt_gmn_forward(&c, gp, &g1, a, NULL, NULL);
	tt_gmn_forward(&c, gp, &g2, b, NULL, NULL);
	double d = 0, size = 0;
	for (int j = 0; j < 6; j++) {
		d = fmax(d, fabs(a[j] - b[j]));
		size = fmax(size, fabs(a[j]));
	}
	CHECK(d < 1e-9 && size > 1e-3, "permuted channels move the embedding by %g (size %g)",
	      d, size);
	/* permuting A without the shortcut's partner D is another network */
	tt_wgraph_free(&g2);
	float q2[NP];
	memcpy(q2, p, sizeof q2);
	for (int o = 0; o < A; o++)
		for (int k = 0; k < 9; k++)
			q2[C1 + pa[o] * 9 + k] = p[C1 + o * 9 + k];
	CHECK(tt_wgraph_build(GROUPS, 5, LAYERS, 5, q2, NP, pr, &g2, &err) == TT_OK, "%s", err.msg);
	tt_gmn_forward(&c, gp, &g2, b, NULL, NULL);
	d = 0;
	for (int j = 0; j < 6; j++)
		d = fmax(d, fabs(a[j] - b[j]));
	CHECK(d > 1e-6, "a different network embeds the same (%g)", d);
	tt_wgraph_free(&g1);
	tt_wgraph_free(&g2);
	free(gp);
}

int main(void)
{
	TT_RUN(graph_counts_and_features);
	TT_RUN(embedding_invariant_to_channel_permutations);
	TT_EXIT();
}
