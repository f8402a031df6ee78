/*
 * test_hypernet.c — the hypernetwork of partial hypernetworks
 * (engine/hypernet.h): gradients of every hypernetwork parameter through
 * the generated weights and through the forgetting regulariser against
 * central differences; task ids route to their own embeddings and tables.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hypernet.h"
#include "test.h"

static const tt_hn_config C = { .tasks = 3, .emb = 4, .hidden = 6, .u = 5, .ce = 3 };
/* a 2 -> 3 conv 3x3 at offset 10, its BN scale and shift, a 3 -> 2 head
 * and its bias; entries 0..9 belong to someone else */
static const tt_hn_item IT[5] = {
	{ TT_HN_CONV, 3, 9 * 2, 10, 0 },
	{ TT_HN_TABLE, 3, 0, 64, 1 },
	{ TT_HN_TABLE, 3, 0, 67, 0 },
	{ TT_HN_DENSE, 6, 0, 70, 0 },
	{ TT_HN_TABLE, 2, 0, 76, 0 },
};
enum { SPAN = 78 };

static double dot_generated(const float *psi, int task, const float *r)
{
	float out[SPAN] = {0};
	tt_hn_generate(&C, IT, 5, psi, task, out);
	double s = 0;
	for (int k = 0; k < SPAN; k++)
		s += (double)r[k] * out[k];
	return s;
}

static void layout_and_init(void)
{
	CHECK(tt_hn_span(IT, 5) == SPAN, "span %zu", tt_hn_span(IT, 5));
	size_t np = tt_hn_nparams(&C, IT, 5);
	size_t expect = 3 * 4 + 6 * 4 + 6 + 5 * 6 + 5 + (3 * 3 + 18 * 8 + 18) + 3 * 3 + 3 * 3 +
	                (6 * 5 + 6) + 3 * 2;
	CHECK(np == expect, "%zu parameters, expected %zu", np, expect);
	float *psi = malloc(np * sizeof *psi), out[SPAN];
	for (int k = 0; k < SPAN; k++)
		out[k] = -7;
	tt_hn_init(&C, IT, 5, psi, 1);
	tt_hn_generate(&C, IT, 5, psi, 2, out);
	CHECK(out[0] == -7 && out[9] == -7, "wrote outside its items");
	for (int k = 0; k < 3; k++)
		CHECK(out[64 + k] == 1 && out[67 + k] == 0, "BN tables start at (%g, %g)",
		      out[64 + k], out[67 + k]);
	double sq = 0;
	for (int k = 10; k < 64; k++)
		sq += out[k] * out[k];
	CHECK(sq > 0, "the generated kernel is all zero");
	free(psi);
}

static void gradients_match_central_differences(void)
{
	size_t np = tt_hn_nparams(&C, IT, 5);
	float *psi = malloc(np * sizeof *psi), *snap = malloc(np * sizeof *snap);
	float *g = calloc(np, sizeof *g), r[SPAN], scratch[2 * SPAN];
	tt_hn_init(&C, IT, 5, psi, 2);
	for (int k = 0; k < SPAN; k++)
		r[k] = (float)sin(k * 1.3);
	for (int task = 0; task < 3; task += 2) {
		memset(g, 0, np * sizeof *g);
		tt_hn_backward(&C, IT, 5, psi, task, r, g);
		int bad = 0, nz = 0;
		for (size_t i = 0; i < np; i++) {
			float keep = psi[i], e = 1e-2f;
			psi[i] = keep + e;
			double up = dot_generated(psi, task, r);
			psi[i] = keep - e;
			double dn = dot_generated(psi, task, r);
			psi[i] = keep;
			double fd = (up - dn) / (2.0 * e);
			nz += g[i] != 0;
			if (fabs(fd - g[i]) > 2e-3 + 2e-2 * fabs(fd) && bad++ < 5)
				fprintf(stderr, "  task %d parameter %zu: analytic %g, central %g\n", task,
				        i, g[i], fd);
		}
		CHECK(bad == 0, "task %d: %d parameters off", task, bad);
		CHECK(nz > (int)np / 3, "only %d of %zu gradients are non-zero", nz, np);
	}
	/* the regulariser over tasks 0 and 1, snapshot taken before a change */
	memcpy(snap, psi, np * sizeof *psi);
	for (size_t i = 0; i < np; i++)
		psi[i] += 0.05f * (float)cos(i * 0.7);
	const int tasks[2] = { 0, 1 };
	memset(g, 0, np * sizeof *g);
	double L = tt_hn_reg(&C, IT, 5, snap, psi, tasks, 2, g, scratch);
	CHECK(L > 0, "the regulariser is %g after a change", L);
	int bad = 0;
	for (size_t i = 0; i < np; i++) {
		float keep = psi[i], e = 1e-2f, dummy[1024];
		memset(dummy, 0, sizeof dummy);
		psi[i] = keep + e;
		double up = tt_hn_reg(&C, IT, 5, snap, psi, tasks, 2, dummy, scratch);
		psi[i] = keep - e;
		double dn = tt_hn_reg(&C, IT, 5, snap, psi, tasks, 2, dummy, scratch);
		psi[i] = keep;
		double fd = (up - dn) / (2.0 * e);
		if (fabs(fd - g[i]) > 2e-3 + 2e-2 * fabs(fd) && bad++ < 5)
			fprintf(stderr, "  regulariser parameter %zu: analytic %g, central %g\n", i,
			        g[i], fd);
	}
	CHECK(bad == 0, "regulariser: %d parameters off", bad);
	memset(g, 0, np * sizeof *g);
	CHECK(tt_hn_reg(&C, IT, 5, psi, psi, tasks, 2, g, scratch) == 0, "L_H(psi, psi) != 0");
	free(psi);
	free(snap);
	free(g);
}

static void tasks_route_to_their_own_rows(void)
{
	size_t np = tt_hn_nparams(&C, IT, 5);
	float *psi = malloc(np * sizeof *psi);
	float a0[SPAN] = {0}, a1[SPAN] = {0}, b0[SPAN] = {0}, b1[SPAN] = {0};
	tt_hn_init(&C, IT, 5, psi, 3);
	tt_hn_generate(&C, IT, 5, psi, 0, a0);
	tt_hn_generate(&C, IT, 5, psi, 1, a1);
	CHECK(memcmp(a0 + 10, a1 + 10, 54 * sizeof *a0) != 0, "tasks 0 and 1 share a kernel");
	/* task 0's embedding and its table rows move; task 1 must not */
	for (int k = 0; k < C.emb; k++)
		psi[k] += 0.5f;
	size_t tab = np - 3 * 2; /* the last table's rows: task 0 first */
	psi[tab] += 1;
	tt_hn_generate(&C, IT, 5, psi, 0, b0);
	tt_hn_generate(&C, IT, 5, psi, 1, b1);
	CHECK(memcmp(a1, b1, sizeof a1) == 0, "task 1 changed with task 0's rows");
	CHECK(memcmp(a0, b0, sizeof a0) != 0, "task 0 did not change");
	CHECK(b0[76] == a0[76] + 1 && b0[77] == a0[77], "task 0's bias row: %g %g", b0[76], b0[77]);
	free(psi);
}

int main(void)
{
	TT_RUN(layout_and_init);
	TT_RUN(gradients_match_central_differences);
	TT_RUN(tasks_route_to_their_own_rows);
	TT_EXIT();
}
