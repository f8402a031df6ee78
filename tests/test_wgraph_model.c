/*
 * test_wgraph_model.c — the FMS adapter (engine/wgraph_model.h): a real
 * checkpoint of a trained cnn to its weight graph.  Its layout agrees with
 * the model's own count; permuting the hidden channels of the checkpoint
 * (with every weight that reads or writes them) leaves the graph
 * metanetwork's embedding unchanged to 1e-5, while a permutation that
 * breaks the network does not; a frozen prefix is left out; what it cannot
 * read is refused by name.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "model.h"
#include "test.h"
#include "train.h"
#include "wgraph.h"
#include "wgraph_model.h"

#define SPEC "cnn:4,8"

typedef struct keep {
	void *blob;
	size_t len;
} keep;

static int on_ck(void *ud, long step, const void *blob, size_t len)
{
	keep *k = ud;
	(void)step;
	free(k->blob);
	k->blob = malloc(len);
	memcpy(k->blob, blob, len);
	k->len = len;
	return 0;
}

/* A checkpoint of SPEC after a few steps on synthetic data (so the
 * weights are trained, BN moved off 1 and 0). */
static keep trained(int gates)
{
	tt_train_config c;
	tt_train_defaults(&c);
	c.model = SPEC;
	c.data = "synthetic";
	c.train_size = 128;
	c.val_size = 32;
	c.batch = 32;
	c.steps = 6;
	c.threads = 1;
	c.seed = 3;
	if (gates) { /* gated, every step a warm-up: nothing pruned or compacted */
		c.gates.strength = 1e-3;
		c.gates.warmup_epochs = 2;
	}
	tt_train_data d;
	tt_err err = {0};
	keep k = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "%s", err.msg);
	tt_train_hooks h = { .ud = &k, .on_checkpoint = on_ck };
	tt_train_result r;
	CHECK(tt_train_run(&c, &d, &h, &r, &err) == TT_OK, "%s", err.msg);
	tt_train_result_free(&r);
	tt_train_data_free(&d);
	return k;
}

/* The core section's parameters inside blob (writable). */
static float *params_in(void *blob, size_t len, size_t *n)
{
	tt_ck_section s[TT_CK_SECTIONS_MAX];
	int ns;
	tt_err err = {0};
	tt_ck_core h;
	const char *arrays;
	if (tt_ck_parse(blob, len, s, TT_CK_SECTIONS_MAX, &ns, &err) ||
	    tt_ck_core_read(tt_ck_find(s, ns, TT_CK_CORE), &h, &arrays, &err))
		return NULL;
	*n = (size_t)h.nparams;
	return (float *)(uintptr_t)arrays; /* the blob's own bytes: aligned by malloc */
}

/* A conv (K, 3, 3, C) at w with BN (gamma K, beta K) at bn: output
 * channels by po (NULL: none), input channels by pi (NULL: none). */
static void perm_conv(const float *p, float *q, long w, long bn, int K, int C, const int *po,
                      const int *pi)
{
	for (int o = 0; o < K; o++)
		for (int k = 0; k < 9; k++)
			for (int i = 0; i < C; i++)
				q[w + ((po ? po[o] : o) * 9 + k) * C + (pi ? pi[i] : i)] =
					p[w + (o * 9 + k) * C + i];
	if (po && bn >= 0)
		for (int o = 0; o < K; o++) {
			q[bn + po[o]] = p[bn + o];
			q[bn + K + po[o]] = p[bn + K + o];
		}
}

/* cnn:4,8 on 28x28x1, 10 classes: stem (4,3,3,1) at 0, BN at 36; conv1
 * (4,3,3,4) at 44, BN at 188; conv2 (8,3,3,4) at 196, BN at 484; head
 * (10, 8) at 500, bias at 580. */
static void permute(const float *p, float *q, size_t n, const int *pa, const int *pb,
                    const int *pc, int head)
{
	memcpy(q, p, n * sizeof *q);
	perm_conv(p, q, 0, 36, 4, 1, pa, NULL);
	perm_conv(p, q, 44, 188, 4, 4, pb, pa);
	perm_conv(p, q, 196, 484, 8, 4, pc, pb);
	if (head)
		for (int o = 0; o < 10; o++)
			for (int i = 0; i < 8; i++)
				q[500 + o * 8 + pc[i]] = p[500 + o * 8 + i];
}

static void embed(const tt_graph *g, double *out)
{
	tt_gmn_config c = { .width = 8, .blocks = 2, .out = 6, .nf_node = TT_WG_NODE_F,
	                    .nf_edge = TT_WG_EDGE_F };
	double *gp = malloc(tt_gmn_nparams(&c) * sizeof *gp);
	tt_gmn_init(&c, gp, 11);
	tt_err err = {0};
	CHECK(tt_gmn_forward(&c, gp, g, out, NULL, &err) == TT_OK, "%s", err.msg);
	free(gp);
}

static const tt_wgm_shape SHAPE = { SPEC, 28, 28, 1, 10, 0 };

static void layout_matches_the_model(void)
{
	const char *specs[] = { "cnn:4,8", "cnn:8,16", "mlp:16,8", "mlp:32" };
	for (int k = 0; k < 4; k++) {
		tt_model_config mc = { .spec = specs[k], .h = 28, .w = 28, .c = 1, .classes = 10,
		                       .batch = 1 };
		tt_model_desc d;
		tt_err err = {0};
		CHECK(tt_model_describe(&mc, &d, &err) == TT_OK, "%s", err.msg);
		tt_wgm_shape s = SHAPE;
		s.spec = specs[k];
		int stages = 0;
		size_t np = 0;
		CHECK(tt_wgm_count(&s, &stages, &np, &err) == TT_OK, "%s", err.msg);
		CHECK(np == d.nparams && stages == d.stages, "%s: %zu parameters %d stages, the "
		      "model %zu %d", specs[k], np, stages, d.nparams, d.stages);
		/* the trainable suffix starts where the model's does */
		mc.trainable = 2;
		CHECK(tt_model_describe(&mc, &d, &err) == TT_OK, "%s", err.msg);
		s.trainable = 2;
		size_t off = 0;
		CHECK(tt_wgm_suffix(&s, &off, &err) == TT_OK && off == d.trainable_offset,
		      "%s: suffix at %zu, the model's at %zu", specs[k], off, d.trainable_offset);
	}
}

static void checkpoint_embedding_invariant_to_permutations(void)
{
	keep k = trained(0);
	CHECK(k.blob != NULL, "no checkpoint");
	if (!k.blob)
		return;
	size_t n = 0;
	float *p = params_in(k.blob, k.len, &n);
	CHECK(p && n == 590, "%zu parameters", n);
	if (!p || n != 590)
		return;
	float *orig = malloc(n * sizeof *orig);
	memcpy(orig, p, n * sizeof *orig);
	tt_graph g1, g2;
	tt_err err = {0};
	double a[6], b[6];
	CHECK(tt_wgm_from_ckpt(&SHAPE, k.blob, k.len, &g1, &err) == TT_OK, "%s", err.msg);
	CHECK(g1.nnodes == 1 + 4 + 4 + 8 + 10 + 1 && g1.nedges == 36 + 144 + 288 + 80 + 10,
	      "%d nodes %d edges", g1.nnodes, g1.nedges);
	embed(&g1, a);
	/* the permuted checkpoint: same blob, parameters moved in place */
	const int pa[4] = { 2, 0, 3, 1 }, pb[4] = { 3, 2, 1, 0 },
	          pc[8] = { 5, 7, 0, 2, 1, 6, 4, 3 };
	permute(orig, p, n, pa, pb, pc, 1);
	CHECK(tt_wgm_from_ckpt(&SHAPE, k.blob, k.len, &g2, &err) == TT_OK, "%s", err.msg);
	embed(&g2, b);
	double d = 0, size = 0;
	for (int j = 0; j < 6; j++) {
		d = fmax(d, fabs(a[j] - b[j]));
		size = fmax(size, fabs(a[j]));
	}
	CHECK(d <= 1e-5 * fmax(1, size) && size > 1e-3,
	      "permuted hidden channels move the embedding by %g (size %g)", d, size);
	tt_wgraph_free(&g2);
	/* the stem's channels moved but conv1 still reads the old order: a
	 * different network, a different embedding */
	memcpy(p, orig, n * sizeof *p);
	perm_conv(orig, p, 0, 36, 4, 1, pa, NULL);
	CHECK(tt_wgm_from_ckpt(&SHAPE, k.blob, k.len, &g2, &err) == TT_OK, "%s", err.msg);
	embed(&g2, b);
	d = 0;
	for (int j = 0; j < 6; j++)
		d = fmax(d, fabs(a[j] - b[j]));
	/* an untrained GMN on small weights moves little (about 1e-8 here),
	 * but far beyond rounding (the permuted copy agrees to 1e-16) */
	CHECK(d > 1e-10, "a different network embeds the same (%g)", d);
	tt_wgraph_free(&g2);
	/* trainable 2: conv2 and the head only; the frozen front may change */
	memcpy(p, orig, n * sizeof *p);
	tt_wgm_shape z2 = SHAPE;
	z2.trainable = 2;
	CHECK(tt_wgm_from_ckpt(&z2, k.blob, k.len, &g2, &err) == TT_OK, "%s", err.msg);
	CHECK(g2.nnodes == 4 + 8 + 10 + 1 && g2.nedges == 288 + 80 + 10, "z=2: %d nodes %d edges",
	      g2.nnodes, g2.nedges);
	embed(&g2, a);
	tt_wgraph_free(&g2);
	for (int i = 0; i < 196; i++)
		p[i] = -orig[i];
	CHECK(tt_wgm_from_ckpt(&z2, k.blob, k.len, &g2, &err) == TT_OK, "%s", err.msg);
	embed(&g2, b);
	d = 0;
	for (int j = 0; j < 6; j++)
		d = fmax(d, fabs(a[j] - b[j]));
	CHECK(d == 0, "the frozen prefix moved the z=2 embedding by %g", d);
	tt_wgraph_free(&g1);
	tt_wgraph_free(&g2);
	free(orig);
	free(k.blob);
}

static void gated_checkpoint_gives_gate_features(void)
{
	keep k = trained(1);
	tt_graph g;
	tt_err err = {0};
	CHECK(k.blob && tt_wgm_from_ckpt(&SHAPE, k.blob, k.len, &g, &err) == TT_OK, "%s",
	      err.msg);
	if (!k.blob)
		return;
	/* conv1's first channel (node 1 + 4): its gate probability, in (0, 1] */
	double t = g.xnode[(1 + 4) * TT_WG_NODE_F + 7];
	CHECK(t > 0 && t <= 1, "gate feature %g", t);
	/* the stem carries no gate: feature 1 */
	CHECK(g.xnode[1 * TT_WG_NODE_F + 7] == 1, "stem gate feature %g",
	      g.xnode[1 * TT_WG_NODE_F + 7]);
	tt_wgraph_free(&g);
	free(k.blob);
}

static void refuses_what_it_cannot_read(void)
{
	keep k = trained(0);
	tt_graph g;
	tt_err err = {0};
	tt_wgm_shape s = SHAPE;
	s.spec = "resnet:1,1";
	CHECK(tt_wgm_from_ckpt(&s, k.blob, k.len, &g, &err) == TT_EINPUT &&
	      strstr(err.msg, "resnet:1,1"), "resnet: %s", err.msg);
	s.spec = "cnn:4,16";
	CHECK(tt_wgm_from_ckpt(&s, k.blob, k.len, &g, &err) == TT_EINPUT &&
	      strstr(err.msg, "cnn:4,16"), "another model: %s", err.msg);
	CHECK(tt_wgm_from_ckpt(&SHAPE, k.blob, 20, &g, &err) == TT_EINPUT, "a cut blob: %s",
	      err.msg);
	free(k.blob);
}

int main(void)
{
	TT_RUN(layout_matches_the_model);
	TT_RUN(checkpoint_embedding_invariant_to_permutations);
	TT_RUN(gated_checkpoint_gives_gate_features);
	TT_RUN(refuses_what_it_cannot_read);
	TT_EXIT();
}
