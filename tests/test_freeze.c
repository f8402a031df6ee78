/*
 * test_freeze.c — freezing a prefix of stages, and the memory accounting
 * that shows what freezing saves.
 *
 * For every trainable depth z of a few models this checks which stages are
 * frozen, that frozen stages own no gradient, optimizer state or kept
 * activation, that trainable ones own exactly their share, and that the
 * kept activations equal a count worked out here from the architecture
 * alone (the shape arithmetic below is independent of the engine's), and
 * that total memory falls with every stage frozen.  It then trains with a
 * frozen prefix and checks that the prefix is bit for bit untouched, that
 * the work accounting skips the frozen backward, and that initialisation
 * does not depend on z.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "mem.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "test.h"

#define H 28
#define W 28
#define C 1
#define CLASSES 10
#define MEM_BATCH 32

static const tt_backend *be;

/* ---- the architecture, worked out independently ------------------------ */

/* What a stage should look like: parameter and running-statistic floats,
 * and the floats it keeps for backward for a batch of B. */
typedef struct want_stage {
	size_t pcount, nstate;
	size_t act_per_example; /* floats that scale with the batch */
	size_t act_fixed;       /* BN batch statistics: 2*K per BN */
	size_t in_per_example;  /* input floats: kept when it is the first
	                         * trainable stage behind a frozen prefix */
} want_stage;

typedef struct want_model {
	int n;
	want_stage st[TT_MEM_MAX_STAGES];
} want_model;

static int conv_out(int i, int stride) { return (i - 1) / stride + 1; } /* 3x3, pad 1 */
static int pool_out(int i) { return i / 2; }                           /* maxpool 2 */

/* conv KxkxkxC + BN(K): weights, gamma, beta */
static size_t conv_bn_params(int K, int k, int c) { return (size_t)K * k * k * c + 2 * (size_t)K; }

static void want_head_gap(want_model *w, int c, int h)
{
	want_stage *s = &w->st[w->n++];
	s->in_per_example = (size_t)h * h * c;
	s->pcount = (size_t)c * CLASSES + CLASSES;
	s->nstate = 0;
	s->act_per_example = (size_t)c + CLASSES; /* pooled, logits */
	s->act_fixed = 0;
}

/* resnet: groups g[0..ng), base width wd. */
static void want_resnet(want_model *w, const int *g, int ng, int wd)
{
	memset(w, 0, sizeof *w);
	int h = H, c = C;
	want_stage *s = &w->st[w->n++];
	int oh = conv_out(h, 1);
	s->in_per_example = (size_t)h * h * c;
	s->pcount = conv_bn_params(wd, 3, c);
	s->nstate = 2 * (size_t)wd;
	s->act_per_example = 2 * (size_t)oh * oh * wd; /* conv out, BN+ReLU out */
	s->act_fixed = 2 * (size_t)wd;
	h = oh, c = wd;
	for (int gi = 0; gi < ng; gi++)
		for (int bi = 0; bi < g[gi]; bi++) {
			int K = wd << gi, stride = gi > 0 && bi == 0 ? 2 : 1;
			int proj = stride != 1 || c != K;
			int o = conv_out(h, stride);
			s = &w->st[w->n++];
			s->in_per_example = (size_t)h * h * c;
			s->pcount = conv_bn_params(K, 3, c) + conv_bn_params(K, 3, K) +
			            (proj ? conv_bn_params(K, 1, c) : 0);
			s->nstate = 2 * (size_t)K * (2 + proj);
			/* conv1, bn1-relu, conv2, [projection conv], block out */
			s->act_per_example = (size_t)o * o * K * (4 + proj);
			s->act_fixed = 2 * (size_t)K * (2 + proj);
			h = o, c = K;
		}
	want_head_gap(w, c, h);
}

/* cnn: stem of width v[0] (no pool), then a pooled block per width. */
static void want_cnn(want_model *w, const int *v, int nv)
{
	memset(w, 0, sizeof *w);
	int h = H, c = C;
	want_stage *s = &w->st[w->n++];
	int o = conv_out(h, 1);
	s->in_per_example = (size_t)h * h * c;
	s->pcount = conv_bn_params(v[0], 3, c);
	s->nstate = 2 * (size_t)v[0];
	s->act_per_example = 2 * (size_t)o * o * v[0];
	s->act_fixed = 2 * (size_t)v[0];
	h = o, c = v[0];
	for (int i = 0; i < nv; i++) {
		int K = v[i];
		o = conv_out(h, 1);
		int p = pool_out(o);
		s = &w->st[w->n++];
		s->in_per_example = (size_t)h * h * c;
		s->pcount = conv_bn_params(K, 3, c);
		s->nstate = 2 * (size_t)K;
		s->act_per_example = 2 * (size_t)o * o * K + (size_t)p * p * K;
		s->act_fixed = 2 * (size_t)K;
		h = p, c = K;
	}
	want_head_gap(w, c, h);
}

static void want_mlp(want_model *w, const int *v, int nv)
{
	memset(w, 0, sizeof *w);
	size_t din = (size_t)H * W * C;
	for (int i = 0; i <= nv; i++) {
		size_t dout = i < nv ? (size_t)v[i] : CLASSES;
		want_stage *s = &w->st[w->n++];
		s->in_per_example = din;
		s->pcount = din * dout + dout;
		s->nstate = 0;
		s->act_per_example = dout;
		s->act_fixed = 0;
		din = dout;
	}
}

static size_t want_act_bytes(const want_stage *s, int B)
{
	return (s->act_per_example * (size_t)B + s->act_fixed) * sizeof(float);
}

/* ---- helpers ------------------------------------------------------------ */

static tt_model *make(const char *spec, int batch, int z, int slots, uint64_t seed)
{
	tt_model_config mc = {
		.spec = spec, .h = H, .w = W, .c = C, .classes = CLASSES,
		.batch = batch, .trainable = z, .optim_slots = slots, .seed = seed,
		.be = be,
	};
	tt_model *m = NULL;
	tt_err err = {0};
	int rc = tt_model_create(&mc, &m, &err);
	CHECK(rc == TT_OK && m, "%s z=%d: create failed: %s", spec, z, err.msg);
	return rc == TT_OK ? m : NULL;
}

static float *download_params(tt_model *m)
{
	size_t n = tt_model_nparams(m);
	float *p = malloc(n * sizeof *p);
	TT_ASSERT(p);
	be->download(p, tt_model_params(m), n * sizeof *p);
	return p;
}

/* ---- freezing and accounting, every z ----------------------------------- */

typedef struct model_case {
	const char *spec;
	int nstages;
	want_model want;
} model_case;

static void check_model_all_z(const model_case *mc)
{
	const int B = MEM_BATCH, n = mc->nstages;
	CHECK(mc->want.n == n, "%s: analytic stage count %d, expected %d", mc->spec,
	      mc->want.n, n);
	int nst = -1;
	tt_err err = {0};
	CHECK(tt_model_spec_check(mc->spec, &nst, &err) == TT_OK && nst == n,
	      "%s: spec_check gave %d stages (%s), expected %d", mc->spec, nst, err.msg, n);

	size_t prev_act = 0;
	/* z = n first, then down to 1: everything must shrink as z falls */
	for (int z = n; z >= 1; z--) {
		tt_model *m = make(mc->spec, B, z, 2, 7);
		if (!m)
			return;
		const tt_mem *mem = tt_model_mem(m);
		CHECK(tt_model_stages(m) == n, "%s: %d stages, expected %d", mc->spec,
		      tt_model_stages(m), n);
		CHECK(tt_model_trainable(m) == z, "%s z=%d: trainable() = %d", mc->spec,
		      z, tt_model_trainable(m));

		size_t want_off = 0, want_nparams = 0, act_total = 0, want_act_total = 0;
		for (int s = 0; s < n; s++) {
			const want_stage *ws = &mc->want.st[s];
			int frozen = s < n - z;
			size_t off, cnt;
			tt_model_stage_params(m, s, &off, &cnt);
			CHECK(off == want_nparams, "%s stage %d: offset %zu, expected %zu",
			      mc->spec, s, off, want_nparams);
			CHECK(cnt == ws->pcount, "%s stage %d: %zu params, expected %zu",
			      mc->spec, s, cnt, ws->pcount);
			if (frozen)
				want_off += ws->pcount;
			want_nparams += ws->pcount;

			tt_stage_mem sm;
			tt_model_stage_mem(m, s, &sm);
			CHECK(!!sm.frozen == frozen, "%s z=%d stage %d (%s): frozen %d, expected %d",
			      mc->spec, z, s, sm.name, sm.frozen, frozen);
			CHECK(sm.name && strcmp(sm.name, tt_model_stage_name(m, s)) == 0,
			      "%s stage %d: name mismatch", mc->spec, s);
			/* parameters and running statistics, frozen or not */
			CHECK(sm.params == (ws->pcount + ws->nstate) * sizeof(float),
			      "%s z=%d stage %d: params %zu bytes, expected %zu", mc->spec, z, s,
			      sm.params, (ws->pcount + ws->nstate) * sizeof(float));
			size_t pbytes = cnt * sizeof(float);
			size_t wact = frozen ? 0 : want_act_bytes(ws, B);
			if (s == n - z && z < n) /* the frozen prefix's output */
				wact += ws->in_per_example * (size_t)B * sizeof(float);
			if (frozen) {
				CHECK(sm.grads == 0 && sm.optim == 0 && sm.activations == 0,
				      "%s z=%d frozen stage %d (%s): grads %zu optim %zu act %zu, "
				      "expected all 0", mc->spec, z, s, sm.name, sm.grads,
				      sm.optim, sm.activations);
			} else {
				CHECK(sm.grads == pbytes, "%s z=%d stage %d: grads %zu, expected %zu",
				      mc->spec, z, s, sm.grads, pbytes);
				CHECK(sm.optim == 2 * pbytes,
				      "%s z=%d stage %d: optim %zu, expected %zu", mc->spec, z, s,
				      sm.optim, 2 * pbytes);
			}
			CHECK(sm.activations == wact,
			      "%s z=%d stage %d (%s): activations %zu bytes, analytic %zu",
			      mc->spec, z, s, sm.name, sm.activations, wact);
			act_total += sm.activations;
			want_act_total += wact;
		}
		CHECK(tt_model_nparams(m) == want_nparams, "%s: nparams %zu, expected %zu",
		      mc->spec, tt_model_nparams(m), want_nparams);
		CHECK(tt_model_trainable_offset(m) == want_off,
		      "%s z=%d: trainable offset %zu, expected %zu", mc->spec, z,
		      tt_model_trainable_offset(m), want_off);
		CHECK(tt_model_ntrainable(m) == want_nparams - want_off,
		      "%s z=%d: ntrainable %zu, expected %zu", mc->spec, z,
		      tt_model_ntrainable(m), want_nparams - want_off);
		CHECK(tt_model_optim(m, 0) && tt_model_optim(m, 1) && !tt_model_optim(m, 2),
		      "%s z=%d: optimizer slots", mc->spec, z);

		/* kind totals against the per-stage rows and the grand total */
		size_t sum = 0;
		for (int k = 0; k < TT_MEM_KINDS; k++)
			sum += tt_mem_kind_total(mem, k);
		CHECK(sum == mem->current, "%s z=%d: kinds sum to %zu, current %zu",
		      mc->spec, z, sum, mem->current);
		CHECK(mem->peak >= mem->current, "%s z=%d: peak %zu < current %zu",
		      mc->spec, z, mem->peak, mem->current);
		CHECK(tt_mem_kind_total(mem, TT_MEM_ACT) == want_act_total,
		      "%s z=%d: activation total %zu, analytic %zu", mc->spec, z,
		      tt_mem_kind_total(mem, TT_MEM_ACT), want_act_total);
		CHECK(act_total == want_act_total, "%s z=%d: per-stage activations sum %zu, "
		      "analytic %zu", mc->spec, z, act_total, want_act_total);
		CHECK(tt_mem_kind_total(mem, TT_MEM_GRADS) ==
		      tt_model_ntrainable(m) * sizeof(float),
		      "%s z=%d: grads total %zu", mc->spec, z, tt_mem_kind_total(mem, TT_MEM_GRADS));
		CHECK(tt_mem_kind_total(mem, TT_MEM_OPTIM) ==
		      2 * tt_model_ntrainable(m) * sizeof(float),
		      "%s z=%d: optim total %zu", mc->spec, z, tt_mem_kind_total(mem, TT_MEM_OPTIM));
		/*
		 * Activations fall with z.  One exception, by construction: when
		 * an mlp freezes its first layer, that layer's output stops being
		 * its own kept activation and becomes the kept input of the next
		 * (its weight gradient needs it): the same bytes change stage.
		 */
		if (z < n && !(mc->spec[0] == 'm' && z == n - 1)) {
			CHECK(act_total < prev_act, "%s: activations %zu at z=%d, not below %zu "
			      "at z=%d", mc->spec, act_total, z, prev_act, z + 1);
		} else if (z < n) {
			CHECK(act_total == prev_act, "%s: activations %zu at z=%d, expected "
			      "the %zu of z=%d", mc->spec, act_total, z, prev_act, z + 1);
		}
		prev_act = act_total;
		tt_model_free(m);
	}

	/* trainable <= 0 and > n both mean "all" */
	int zs[] = { 0, -3, n + 5 };
	for (int i = 0; i < 3; i++) {
		tt_model *m = make(mc->spec, B, zs[i], 2, 7);
		if (!m)
			return;
		CHECK(tt_model_trainable(m) == n && tt_model_trainable_offset(m) == 0,
		      "%s trainable=%d: z=%d offset=%zu, expected all", mc->spec, zs[i],
		      tt_model_trainable(m), tt_model_trainable_offset(m));
		tt_model_free(m);
	}
}

static void freeze_resnet(void)
{
	model_case mc = { "resnet:2,2,2:w16", 8, {0} };
	int g[] = { 2, 2, 2 };
	want_resnet(&mc.want, g, 3, 16);
	check_model_all_z(&mc);
}

static void freeze_resnet_default_width(void)
{
	/* resnet:1,2 (width 16 by default): stem, b1.1, b2.1 (proj), b2.2, head */
	model_case mc = { "resnet:1,2", 5, {0} };
	int g[] = { 1, 2 };
	want_resnet(&mc.want, g, 2, 16);
	check_model_all_z(&mc);
}

static void freeze_mlp(void)
{
	model_case mc = { "mlp:64,64,64", 4, {0} };
	int v[] = { 64, 64, 64 };
	want_mlp(&mc.want, v, 3);
	check_model_all_z(&mc);
}

static void freeze_cnn(void)
{
	model_case mc = { "cnn:8,16", 4, {0} };
	int v[] = { 8, 16 };
	want_cnn(&mc.want, v, 2);
	check_model_all_z(&mc);
}

/*
 * Freezing one more stage must never cost memory: what the stage stops
 * keeping (activations, gradients, optimizer state) has to outweigh the
 * scratch the frozen prefix runs through.  A separate case, so that its
 * failure is not mistaken for an accounting error.
 */
static void memory_falls_with_z(void)
{
	const char *specs[] = { "resnet:2,2,2:w16", "resnet:1,2", "mlp:64,64,64", "cnn:8,16" };
	for (int i = 0; i < 4; i++) {
		size_t cur[TT_MEM_MAX_STAGES + 1] = {0}, work[TT_MEM_MAX_STAGES + 1] = {0};
		size_t act[TT_MEM_MAX_STAGES + 1] = {0};
		int n = 0;
		CHECK(tt_model_spec_check(specs[i], &n, NULL) == TT_OK, "%s", specs[i]);
		for (int z = n; z >= 1; z--) {
			tt_model *m = make(specs[i], MEM_BATCH, z, 2, 7);
			if (!m)
				return;
			const tt_mem *mem = tt_model_mem(m);
			cur[z] = mem->current;
			work[z] = tt_mem_kind_total(mem, TT_MEM_WORK);
			act[z] = tt_mem_kind_total(mem, TT_MEM_ACT);
			if (z < n)
				CHECK(cur[z] < cur[z + 1],
				      "%s batch %d: total memory %zu at z=%d, not below %zu at "
				      "z=%d (workspace %zu vs %zu, activations %zu vs %zu)",
				      specs[i], MEM_BATCH, cur[z], z, cur[z + 1], z + 1,
				      work[z], work[z + 1], act[z], act[z + 1]);
			tt_model_free(m);
		}
	}
}

/* ---- training leaves the frozen prefix alone ---------------------------- */

static void train_frozen(const char *spec, int z, int kind)
{
	const int B = 16, STEPS = 5;
	tt_optim_config oc = {
		.kind = kind, .lr = kind == TT_OPT_SGD ? 0.1f : 0.01f,
		.momentum = 0.9f, .nesterov = 0, .weight_decay = 5e-4f,
		.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
		.schedule = TT_SCHED_CONSTANT, .warmup = 0, .total_steps = STEPS,
		.step_gamma = 0.1f,
	};
	tt_model *m = make(spec, B, z, tt_optim_slots(&oc), 3);
	if (!m)
		return;
	CHECK(tt_model_trainable(m) == z, "%s: trainable %d, expected %d", spec,
	      tt_model_trainable(m), z);
	size_t np = tt_model_nparams(m), off = tt_model_trainable_offset(m);
	CHECK(off > 0 && off < np, "%s z=%d: offset %zu of %zu", spec, z, off, np);
	float *before = download_params(m);

	float *x = malloc((size_t)B * H * W * C * sizeof *x);
	int y[16];
	TT_ASSERT(x);
	tt_rng r;
	tt_rng_seed(&r, 11, TT_STREAM_INIT);
	for (size_t i = 0; i < (size_t)B * H * W * C; i++)
		x[i] = tt_rng_normal(&r);
	for (int i = 0; i < B; i++)
		y[i] = (int)tt_rng_below(&r, CLASSES);
	be->upload(tt_model_input(m), x, (size_t)B * H * W * C * sizeof *x);
	be->upload(tt_model_labels(m), y, sizeof y);

	double first = 0, last = 0;
	for (int step = 0; step < STEPS; step++) {
		tt_model_forward(m, tt_model_input(m), B, 1);
		double loss = tt_model_loss(m, tt_model_labels(m), B, 0.0f, 1, NULL);
		CHECK(loss == loss && loss < 1e30, "%s: loss %g at step %d", spec, loss, step);
		if (step == 0)
			first = loss;
		last = loss;
		tt_model_backward(m);
		tt_optim_step(m, &oc, step);
	}
	be->sync();
	/* the same batch 5 times: the trainable suffix must fit it better */
	CHECK(last < first, "%s z=%d %s: loss %g -> %g did not fall", spec, z,
	      kind == TT_OPT_SGD ? "sgd" : "adamw", first, last);

	float *after = download_params(m);
	CHECK(memcmp(before, after, off * sizeof *before) == 0,
	      "%s z=%d %s: frozen prefix params[0..%zu) changed", spec, z,
	      kind == TT_OPT_SGD ? "sgd" : "adamw", off);
	CHECK(memcmp(before + off, after + off, (np - off) * sizeof *before) != 0,
	      "%s z=%d: trainable suffix did not change", spec, z);
	/* every trainable stage moved, not just some of the suffix */
	for (int s = tt_model_stages(m) - z; s < tt_model_stages(m); s++) {
		size_t so, sc;
		tt_model_stage_params(m, s, &so, &sc);
		CHECK(memcmp(before + so, after + so, sc * sizeof *before) != 0,
		      "%s z=%d: trainable stage %d (%s) unchanged", spec, z, s,
		      tt_model_stage_name(m, s));
	}
	free(x);
	free(before);
	free(after);
	tt_model_free(m);
}

static void frozen_prefix_sgd(void)
{
	train_frozen("resnet:1,1,1:w8", 2, TT_OPT_SGD);
	train_frozen("mlp:32,32", 1, TT_OPT_SGD);
	train_frozen("cnn:4,8", 2, TT_OPT_SGD);
}

static void frozen_prefix_adamw(void)
{
	train_frozen("resnet:1,1,1:w8", 2, TT_OPT_ADAMW);
	train_frozen("mlp:32,32", 1, TT_OPT_ADAMW);
	train_frozen("cnn:4,8", 2, TT_OPT_ADAMW);
}

/* ---- work that is skipped ----------------------------------------------- */

static void train_macs_skip(void)
{
	const char *specs[] = { "resnet:2,2,2:w16", "mlp:64,64,64", "cnn:8,16" };
	for (int i = 0; i < 3; i++) {
		double prev = 0, fwd = 0;
		int n = 0;
		tt_model_spec_check(specs[i], &n, NULL);
		for (int z = 1; z <= n; z++) {
			tt_model *m = make(specs[i], 4, z, 1, 1);
			if (!m)
				return;
			double tm = tt_model_train_macs(m);
			fwd = tt_model_macs(m);
			CHECK(tm > fwd, "%s z=%d: train macs %g <= forward %g", specs[i], z, tm, fwd);
			if (z > 1)
				CHECK(tm > prev, "%s: train macs %g at z=%d, not above %g at z=%d",
				      specs[i], tm, z, prev, z - 1);
			if (z == n)
				CHECK(tm < 3 * fwd, "%s z=all: train macs %g, not below 3 x %g",
				      specs[i], tm, fwd);
			if (z == 1 && i == 0)
				CHECK(tm < 1.1 * fwd, "%s z=1: train macs %g, not below 1.1 x %g",
				      specs[i], tm, fwd);
			prev = tm;
			tt_model_free(m);
		}
	}
}

/* ---- initialisation does not depend on z -------------------------------- */

static void same_init_all_z(void)
{
	const char *specs[] = { "resnet:2,2,2:w16", "mlp:64,64,64", "cnn:8,16" };
	for (int i = 0; i < 3; i++) {
		tt_model *ref = make(specs[i], 2, 0, 2, 42);
		if (!ref)
			return;
		float *p0 = download_params(ref);
		size_t np = tt_model_nparams(ref);
		int n = tt_model_stages(ref);
		for (int z = 1; z <= n; z++) {
			tt_model *m = make(specs[i], 2, z, z & 1, 42);
			if (!m)
				break;
			float *p = download_params(m);
			CHECK(tt_model_nparams(m) == np && memcmp(p, p0, np * sizeof *p) == 0,
			      "%s: params at z=%d differ from z=all (seed 42)", specs[i], z);
			free(p);
			tt_model_free(m);
		}
		/* and the seed matters */
		tt_model *o = make(specs[i], 2, 0, 2, 43);
		if (o) {
			float *p = download_params(o);
			CHECK(memcmp(p, p0, np * sizeof *p) != 0, "%s: seeds 42 and 43 give "
			      "the same params", specs[i]);
			free(p);
			tt_model_free(o);
		}
		free(p0);
		tt_model_free(ref);
	}
}

int main(void)
{
	be = tt_backend_get("cpu");
	TT_ASSERT(be);
	TT_RUN(freeze_resnet);
	TT_RUN(freeze_resnet_default_width);
	TT_RUN(freeze_mlp);
	TT_RUN(freeze_cnn);
	TT_RUN(memory_falls_with_z);
	TT_RUN(frozen_prefix_sgd);
	TT_RUN(frozen_prefix_adamw);
	TT_RUN(train_macs_skip);
	TT_RUN(same_init_all_z);
	TT_EXIT();
}
