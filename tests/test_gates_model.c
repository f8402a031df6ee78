/*
 * test_gates_model.c — gates inside the model and the training loop
 * (methods.md section 4): where the gates sit, the cost terms that
 * describe the dense network, the layer gate that skips its branch,
 * compaction that changes nothing but cost, the run that ends with every
 * gate at 0 or 1, what a compacted network's step really computes, and
 * checkpoints of gated runs.
 *
 * The gradient checks of the gated network (weights and scores against
 * finite differences) are in test_grad.c, beside the machinery that
 * handles ReLU kinks.
 *
 * Models are tiny (8x8x1 inputs, batch 6) and data synthetic, so every
 * case runs in well under a second.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gates.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "test.h"
#include "train.h"

#define H 8
#define CLASSES 10
#define BATCH 6
#define SEED 11

static const tt_backend *be;

static tt_model *model(const char *spec, int gates, int trainable, int slots)
{
	tt_model_config cfg = { .spec = spec, .h = H, .w = H, .c = 1, .classes = CLASSES,
	                        .batch = BATCH, .trainable = trainable,
	                        .optim_slots = slots, .seed = SEED, .be = be,
	                        .gates = gates };
	tt_model *m = NULL;
	tt_err err = { 0 };
	int rc = tt_model_create(&cfg, &m, &err);
	CHECK(rc == TT_OK, "%s: %s", spec, err.msg);
	return m;
}

/* A fixed random batch in the model's input and label buffers. */
static void batch(tt_model *m, uint64_t seed)
{
	float x[BATCH * H * H];
	int y[BATCH];
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_SYNTH);
	for (size_t i = 0; i < sizeof x / sizeof *x; i++)
		x[i] = tt_rng_normal(&r);
	for (int i = 0; i < BATCH; i++)
		y[i] = (int)tt_rng_below(&r, CLASSES);
	be->upload(tt_model_input(m), x, sizeof x);
	be->upload(tt_model_labels(m), y, sizeof y);
}

/* Logits of a forward into out[BATCH * CLASSES]. */
static void logits(tt_model *m, int train, float *out)
{
	const float *l = tt_model_forward(m, tt_model_input(m), BATCH, train);
	be->download(out, l, BATCH * CLASSES * sizeof *out);
}

static double max_diff(const float *a, const float *b, size_t n)
{
	double d = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)a[i] - b[i]) > d || isnan(a[i]) != isnan(b[i]))
			d = isnan(a[i]) != isnan(b[i]) ? INFINITY : fabs((double)a[i] - b[i]);
	return d;
}

static float *download(const float *dev, size_t n)
{
	float *h = malloc((n ? n : 1) * sizeof *h);
	TT_ASSERT(h);
	be->download(h, dev, n * sizeof *h);
	return h;
}

/* Every gate left on, as tt_model_gate_all_on leaves them, but drawn by
 * tt_model_gate_sample (every t left is 1), so the step computes scores
 * as a sampled step does. */
static void all_on_scored(tt_model *m)
{
	tt_rng r;
	tt_rng_seed(&r, 1, TT_STREAM_GATES);
	const float *t = tt_model_gate_probs(m);
	for (int i = 0; i < tt_model_gates(m); i++)
		TT_ASSERT(t[i] == 1.0f || tt_model_gate_pruned(m)[i]);
	tt_model_gate_sample(m, &r);
}

static const char *const specs[] = {
	"mlp:16,12,8", "cnn:6,6,4", "resnet:1,1:w4", "resnet:2,2:w4",
};
#define NSPECS (int)(sizeof specs / sizeof *specs)

/* ---- where the gates are, and the cost they describe ------------------- */

/*
 * Groups: a block has a layer gate then u1 and u2 (stream width each); a
 * hidden dense stage or a cnn conv stage (not the stem) one group of its
 * width; frozen stages, stems and heads none.  The terms at t = 1 sum to
 * the model's own MACs and parameter count, at any trainable depth.
 */
static void gates_where(void)
{
	struct { const char *spec; int z, groups, gates; } want[] = {
		{ "mlp:16,12,8", 0, 3, 16 + 12 + 8 },
		{ "mlp:16,12,8", 2, 1, 8 },
		{ "cnn:6,6,4", 0, 3, 6 + 6 + 4 },   /* the stem (6 wide) ungated */
		{ "resnet:1,1:w4", 0, 6, 1 + 4 + 4 + 1 + 8 + 8 },
		{ "resnet:1,1:w4", 2, 3, 1 + 8 + 8 },
		{ "resnet:1,1:w4", 1, 0, 0 },       /* the head alone */
	};
	for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
		tt_model *m = model(want[k].spec, 1, want[k].z, 0);
		if (!m)
			return;
		tt_gate_cost c;
		tt_model_gate_desc(m, &c);
		CHECK(c.ngroups == want[k].groups && c.ngates == want[k].gates,
		      "%s z %d: %d groups %d gates, expected %d %d", want[k].spec,
		      want[k].z, c.ngroups, c.ngates, want[k].groups, want[k].gates);
		CHECK(tt_model_gates(m) == c.ngates, "tt_model_gates %d", tt_model_gates(m));
		CHECK(c.macs_full == tt_model_macs(m), "%s z %d: terms sum to %.0f MACs, "
		      "the model has %.0f", want[k].spec, want[k].z, c.macs_full,
		      tt_model_macs(m));
		CHECK(c.params_full == (double)tt_model_nparams(m), "%s z %d: terms sum to "
		      "%.0f parameters, the model has %zu", want[k].spec, want[k].z,
		      c.params_full, tt_model_nparams(m));
		int *stg = malloc(((size_t)c.ngates + 1) * sizeof *stg);
		int *unit = malloc(((size_t)c.ngates + 1) * sizeof *unit);
		tt_model_gate_ids(m, stg, unit);
		for (int g = 0; g < c.ngroups; g++) {
			const tt_gate_group *gr = &c.group[g];
			CHECK(gr->stage >= tt_model_stages(m) - tt_model_trainable(m),
			      "group %d on frozen stage %d", g, gr->stage);
			CHECK((gr->stage > 0 || want[k].spec[0] == 'm') &&
			      gr->stage < tt_model_stages(m) - 1,
			      "group %d on the stem or head (stage %d)", g, gr->stage);
			for (int i = 0; i < gr->count; i++) {
				int gi = gr->first + i;
				CHECK(stg[gi] == gr->stage, "gate %d stage %d", gi, stg[gi]);
				if (gr->kind == TT_GATE_LAYER)
					CHECK(unit[gi] == -1, "layer gate %d unit %d", gi, unit[gi]);
			}
		}
		/* (stage, unit) is a key of the masks table: no two gates share it */
		for (int i = 0; i < c.ngates; i++)
			for (int j = i + 1; j < c.ngates; j++)
				CHECK(stg[i] != stg[j] || unit[i] != unit[j],
				      "gates %d and %d share (%d, %d)", i, j, stg[i], unit[i]);
		free(stg);
		free(unit);
		tt_model_free(m);
	}
}

/* ---- gates off, gates at 1 --------------------------------------------- */

/*
 * A model with gates, every mask 1, computes bit for bit what the model
 * without gates computes: logits in train and eval mode, loss, every
 * gradient.  Without gates the memory is what it always was (the gated
 * model's extra is six floats per unit on the device: mask, score, decay
 * coefficient, |W|^2, and the masked batch norm's scale and shift; and a
 * dense stage's copy of its ungated output).
 */
static void gates_at_one_identical(void)
{
	for (int k = 0; k < NSPECS; k++) {
		tt_model *a = model(specs[k], 0, 0, 1), *b = model(specs[k], 1, 0, 1);
		if (!a || !b) {
			tt_model_free(a);
			tt_model_free(b);
			return;
		}
		CHECK(tt_model_gates(a) == 0 && tt_model_gate_probs(a) == NULL,
		      "%s: an ungated model has gates", specs[k]);
		batch(a, 1);
		batch(b, 1);
		float la[BATCH * CLASSES], lb[BATCH * CLASSES];
		for (int step = 0; step < 2; step++) {
			tt_model_gate_all_on(b);
			logits(a, 1, la);
			logits(b, 1, lb);
			CHECK(memcmp(la, lb, sizeof la) == 0, "%s: train logits differ", specs[k]);
			double ra = tt_model_loss(a, tt_model_labels(a), BATCH, 0, 1, NULL);
			double rb = tt_model_loss(b, tt_model_labels(b), BATCH, 0, 1, NULL);
			CHECK(ra == rb, "%s: loss %.9g vs %.9g", specs[k], ra, rb);
			tt_model_backward(a);
			tt_model_backward(b);
			size_t nt = tt_model_ntrainable(a);
			float *ga = download(tt_model_grads(a), nt), *gb = download(tt_model_grads(b), nt);
			CHECK(memcmp(ga, gb, nt * sizeof *ga) == 0, "%s: gradients differ", specs[k]);
			free(ga);
			free(gb);
		}
		logits(a, 0, la);
		logits(b, 0, lb);
		CHECK(memcmp(la, lb, sizeof la) == 0, "%s: eval logits differ", specs[k]);
		CHECK(tt_model_train_macs(a) == tt_model_train_macs(b) &&
		      tt_model_step_macs(b) == tt_model_train_macs(a),
		      "%s: MACs %g %g %g", specs[k], tt_model_train_macs(a),
		      tt_model_train_macs(b), tt_model_step_macs(b));
		const tt_mem *ma = tt_model_mem(a), *mb = tt_model_mem(b);
		size_t units = 0;
		tt_gate_cost c;
		tt_model_gate_desc(b, &c);
		for (int g = 0; g < c.ngroups; g++)
			units += c.group[g].kind == TT_GATE_UNIT ? (size_t)c.group[g].count : 0;
		/* a gated dense stage keeps its ungated output too (the scores
		 * of units sampled off) */
		size_t dense = strncmp(specs[k], "mlp", 3) ? 0 : units * BATCH * sizeof(float);
		for (int kind = 0; kind < TT_MEM_KINDS; kind++)
			CHECK(tt_mem_kind_total(ma, kind) + (kind == TT_MEM_WORK ? 6 * units * 4 : 0) +
			      (kind == TT_MEM_ACT ? dense : 0) ==
			      tt_mem_kind_total(mb, kind), "%s: %s bytes %zu ungated, %zu gated",
			      specs[k], tt_memkinds[kind].name, tt_mem_kind_total(ma, kind),
			      tt_mem_kind_total(mb, kind));
		tt_model_free(a);
		tt_model_free(b);
	}
}

/* ---- the layer gate ----------------------------------------------------- */

/*
 * resnet:1,1:w4, b2.1 (stage 2, with a projection) sampled off: the
 * logits equal those of the same network whose branch outputs exactly 0
 * (BN2's gamma and beta zeroed), the branch's weights get no gradient,
 * its BN statistics do not move, its gates score 0, and the step's MACs
 * leave out the branch.  b1.1 (identity shortcut) likewise.
 */
static void layer_gate_skips(void)
{
	for (int s = 1; s <= 2; s++) {
		tt_model *m = model("resnet:1,1:w4", 1, 0, 0), *z = model("resnet:1,1:w4", 1, 0, 0);
		if (!m || !z)
			return;
		batch(m, 2);
		batch(z, 2);
		/* BN2 of stage s: conv1 W, bn1, conv2 W, then gamma and beta */
		int C = 4, K = s == 1 ? 4 : 8;
		size_t off, count;
		tt_model_stage_params(m, s, &off, &count);
		size_t bn2 = off + (size_t)K * 9 * C + 2 * K + (size_t)K * 9 * K;
		float zero[16] = { 0 };
		be->upload(tt_model_params(z) + bn2, zero, 2 * (size_t)K * sizeof(float));

		tt_gate_cost c;
		tt_model_gate_desc(m, &c);
		int lg = -1;
		for (int g = 0; g < c.ngroups; g++)
			if (c.group[g].kind == TT_GATE_LAYER && c.group[g].stage == s)
				lg = c.group[g].first;
		float *state0 = download(tt_model_state(m), tt_model_nstate(m));
		tt_model_gate_all_on(m);
		tt_model_gate_all_on(z);
		tt_model_gate_mask(m)[lg] = 0;
		float lm[BATCH * CLASSES], lz[BATCH * CLASSES];
		logits(m, 1, lm);
		logits(z, 1, lz);
		CHECK(memcmp(lm, lz, sizeof lm) == 0, "b%d: logits with the branch skipped "
		      "differ from a zero branch by %g", s, max_diff(lm, lz, BATCH * CLASSES));
		tt_model_loss(m, tt_model_labels(m), BATCH, 0, 1, NULL);
		tt_model_backward(m);
		size_t toff = tt_model_trainable_offset(m);
		float *g = download(tt_model_grads(m), tt_model_ntrainable(m));
		size_t branch = (size_t)K * 9 * C + 2 * K + (size_t)K * 9 * K + 2 * K;
		int nz = 0;
		for (size_t i = off; i < off + branch; i++)
			nz += g[i - toff] != 0.0f;
		CHECK(nz == 0, "b%d: %d gradients of the skipped branch are not 0", s, nz);
		if (s == 2) {
			float sum = 0;
			for (size_t i = off + branch; i < off + count; i++)
				sum += fabsf(g[i - toff]);
			CHECK(sum > 0, "b2: the projection got no gradient");
		}
		float *state1 = download(tt_model_state(m), tt_model_nstate(m));
		/* the state holds BN1 and BN2 of the block right after the stem's */
		size_t so = 2 * 4 + (s == 2 ? 2 * 4 + 2 * 4 : 0);
		CHECK(memcmp(state0 + so, state1 + so, 4 * (size_t)K * sizeof(float)) == 0,
		      "b%d: the skipped branch's BN statistics moved", s);
		const float *sc = tt_model_gate_scores(m);
		for (int i = 0; i < c.ngates; i++)
			if (tt_model_gate_mask(m)[i] == 0)
				CHECK(sc[i] == 0, "gate %d sampled off scores %g", i, sc[i]);
		for (int gi = 0; gi < c.ngroups; gi++)
			if (c.group[gi].stage == s)
				for (int i = 0; i < c.group[gi].count; i++)
					CHECK(sc[c.group[gi].first + i] == 0, "b%d gate %d scores %g",
					      s, c.group[gi].first + i, sc[c.group[gi].first + i]);
		double branch_macs = (double)H / s * H / s * K * 9 * (C + K);
		CHECK(fabs(tt_model_train_macs(m) - tt_model_step_macs(m) -
		           3 * branch_macs) < 0.5,
		      "b%d: step MACs %.0f, all %.0f, expected %.0f less", s,
		      tt_model_step_macs(m), tt_model_train_macs(m), 3 * branch_macs);
		free(g);
		free(state0);
		free(state1);
		tt_model_free(m);
		tt_model_free(z);
	}
}

/* ---- compaction -------------------------------------------------------- */

/*
 * Prune about a third of every unit group at random (never the whole
 * group) and, in a resnet with two blocks or more, the layer gate of its
 * second block.  Returns the number of gates pruned.
 */
static int prune_some(tt_model *m, uint64_t seed)
{
	tt_gate_cost c;
	tt_model_gate_desc(m, &c);
	unsigned char *pr = tt_model_gate_pruned(m);
	float *t = tt_model_gate_probs(m);
	tt_rng r;
	tt_rng_seed(&r, seed, 77);
	int n = 0, layers = 0;
	for (int g = 0; g < c.ngroups; g++) {
		const tt_gate_group *gr = &c.group[g];
		if (gr->kind == TT_GATE_LAYER) {
			if (++layers == 2) {
				pr[gr->first] = 1;
				t[gr->first] = 0;
				n++;
			}
			continue;
		}
		int left = 0;
		for (int i = 0; i < gr->count; i++)
			left += !pr[gr->first + i];
		for (int i = 0; i < gr->count; i++)
			if (left > 1 && tt_rng_uniform(&r) < 0.35f && !pr[gr->first + i]) {
				pr[gr->first + i] = 1;
				t[gr->first + i] = 0;
				left--;
				n++;
			}
	}
	return n;
}

/*
 * After pruning, the compacted network computes what the uncompacted one
 * with the pruned gates off computes: eval logits (running statistics
 * after two train steps), train logits, loss and every surviving gate's
 * score, to 1e-5.  Parameters, MACs and bytes drop to what the cost terms
 * say is left; optimizer state and BN statistics follow their units.
 */
static void compact_changes_nothing_but_cost(void)
{
	for (int k = 0; k < NSPECS; k++) {
		tt_model *m = model(specs[k], 1, 0, 1);
		if (!m)
			return;
		batch(m, 3);
		/* two steps so that BN statistics and momentum are not the
		 * initial ones */
		for (int step = 0; step < 2; step++) {
			tt_model_gate_all_on(m);
			tt_model_forward(m, tt_model_input(m), BATCH, 1);
			tt_model_loss(m, tt_model_labels(m), BATCH, 0, 1, NULL);
			tt_model_backward(m);
			tt_optim_config oc = { .kind = TT_OPT_SGD, .lr = 0.1f, .momentum = 0.9f };
			tt_optim_step(m, &oc, step);
		}
		int npruned = prune_some(m, (uint64_t)k + 1);
		CHECK(npruned > 0, "%s: nothing pruned", specs[k]);
		tt_gate_cost c;
		tt_model_gate_desc(m, &c);
		int ng = c.ngates;
		float t0[BATCH * CLASSES], t1[BATCH * CLASSES];
		float *s0 = malloc((size_t)ng * sizeof *s0);
		all_on_scored(m);
		logits(m, 1, t0);
		double l0 = tt_model_loss(m, tt_model_labels(m), BATCH, 0, 1, NULL);
		tt_model_backward(m);
		memcpy(s0, tt_model_gate_scores(m), (size_t)ng * sizeof *s0);
		int scored = 0;
		for (int i = 0; i < ng; i++)
			scored += s0[i] != 0;
		CHECK(scored > 0, "%s: no gate has a score", specs[k]);
		size_t np0 = tt_model_nparams(m);
		double macs0 = tt_model_macs(m);
		size_t pb0 = tt_mem_kind_total(tt_model_mem(m), TT_MEM_PARAMS);
		size_t cur0 = tt_model_mem(m)->current;

		tt_err err = { 0 };
		int rc = tt_model_gate_compact(m, &err);
		CHECK(rc == TT_OK, "%s: compact: %s", specs[k], err.msg);
		if (rc) {
			free(s0);
			tt_model_free(m);
			return;
		}
		batch(m, 3); /* the input buffer is new */
		double mexp, pexp;
		tt_model_gate_desc(m, &c);
		tt_gate_expected(&c, tt_model_gate_probs(m), &mexp, &pexp);
		CHECK(pexp == (double)tt_model_nparams(m), "%s: %zu parameters left, the "
		      "terms say %.0f", specs[k], tt_model_nparams(m), pexp);
		CHECK(mexp == tt_model_macs(m), "%s: %.0f MACs left, the terms say %.0f",
		      specs[k], tt_model_macs(m), mexp);
		CHECK(tt_model_nparams(m) < np0 && tt_model_macs(m) < macs0,
		      "%s: %zu -> %zu parameters, %.0f -> %.0f MACs", specs[k], np0,
		      tt_model_nparams(m), macs0, tt_model_macs(m));
		size_t pb = tt_mem_kind_total(tt_model_mem(m), TT_MEM_PARAMS);
		CHECK(pb == (tt_model_nparams(m) + tt_model_nstate(m)) * sizeof(float),
		      "%s: %zu parameter bytes booked for %zu + %zu floats", specs[k], pb,
		      tt_model_nparams(m), tt_model_nstate(m));
		CHECK(pb0 - pb >= (np0 - tt_model_nparams(m)) * sizeof(float),
		      "%s: parameter bytes %zu -> %zu", specs[k], pb0, pb);
		CHECK(tt_mem_kind_total(tt_model_mem(m), TT_MEM_GRADS) ==
		      tt_model_ntrainable(m) * sizeof(float), "%s: gradient bytes", specs[k]);
		CHECK(tt_model_mem(m)->current < cur0, "%s: %zu bytes allocated after "
		      "compaction, %zu before", specs[k], tt_model_mem(m)->current, cur0);
		for (int i = 0; i < ng; i++)
			CHECK(tt_model_gate_present(m)[i] == !tt_model_gate_pruned(m)[i],
			      "%s: gate %d present %d pruned %d", specs[k], i,
			      tt_model_gate_present(m)[i], tt_model_gate_pruned(m)[i]);

		all_on_scored(m);
		logits(m, 1, t1);
		double l1 = tt_model_loss(m, tt_model_labels(m), BATCH, 0, 1, NULL);
		tt_model_backward(m);
		CHECK(max_diff(t0, t1, BATCH * CLASSES) <= 1e-5, "%s: train logits differ "
		      "by %g after compaction", specs[k], max_diff(t0, t1, BATCH * CLASSES));
		CHECK(fabs(l0 - l1) <= 1e-5, "%s: loss %.8g, compacted %.8g", specs[k], l0, l1);
		const float *s1 = tt_model_gate_scores(m);
		for (int i = 0; i < ng; i++) {
			if (!tt_model_gate_present(m)[i])
				continue;
			CHECK(fabs(s0[i] - s1[i]) <= 1e-5 + 1e-4 * fabs(s0[i]),
			      "%s: gate %d scores %.8g, compacted %.8g", specs[k], i, s0[i], s1[i]);
		}
		free(s0);
		tt_model_free(m);
	}
}

/*
 * Eval mode: pruned gates are off in the uncompacted network; after
 * compaction the logits (running statistics and all) are the same, and
 * so is a second compaction's.  Also: gates of a pruned branch end
 * pruned, a unit group never empties, and compacting with nothing new to
 * prune keeps the model as it is.
 */
static void compact_eval(void)
{
	/* the specs with every stage trainable, then one behind a frozen
	 * prefix (stem and b1.1 frozen) */
	for (int k = 0; k <= NSPECS; k++) {
		int z = k == NSPECS ? 4 : 0;
		const char *spec = specs[k == NSPECS ? 3 : k];
		tt_model *m = model(spec, 1, z, 2);
		if (!m)
			return;
		batch(m, 4);
		for (int step = 0; step < 2; step++) {
			tt_model_gate_all_on(m);
			tt_model_forward(m, tt_model_input(m), BATCH, 1);
			tt_model_loss(m, tt_model_labels(m), BATCH, 0, 1, NULL);
			tt_model_backward(m);
			tt_optim_config oc = { .kind = TT_OPT_ADAMW, .lr = 0.01f, .beta1 = 0.9f,
			                       .beta2 = 0.999f, .eps = 1e-8f };
			tt_optim_step(m, &oc, step);
		}
		prune_some(m, 100 + (uint64_t)k);
		float e0[BATCH * CLASSES], e1[BATCH * CLASSES];
		logits(m, 0, e0);
		tt_err err = { 0 };
		CHECK(tt_model_gate_compact(m, &err) == TT_OK, "%s: %s", spec, err.msg);
		batch(m, 4);
		logits(m, 0, e1);
		CHECK(max_diff(e0, e1, BATCH * CLASSES) <= 1e-5, "%s: eval logits differ by "
		      "%g after compaction", spec, max_diff(e0, e1, BATCH * CLASSES));
		size_t np = tt_model_nparams(m);
		const tt_mem *mm = tt_model_mem(m);
		size_t cur = mm->current;
		CHECK(tt_model_gate_compact(m, &err) == TT_OK && tt_model_nparams(m) == np &&
		      tt_model_mem(m)->current == cur, "%s: a compaction with nothing to "
		      "prune changed the model", spec);
		/* prune again, then once more to the end */
		prune_some(m, 200 + (uint64_t)k);
		logits(m, 0, e0);
		CHECK(tt_model_gate_compact(m, &err) == TT_OK, "%s: %s", spec, err.msg);
		batch(m, 4);
		logits(m, 0, e1);
		CHECK(max_diff(e0, e1, BATCH * CLASSES) <= 1e-5, "%s: eval logits differ by "
		      "%g after a second compaction", spec, max_diff(e0, e1, BATCH * CLASSES));
		tt_gate_cost c;
		tt_model_gate_desc(m, &c);
		for (int g = 0; g < c.ngroups; g++) {
			const tt_gate_group *gr = &c.group[g];
			int live = 0;
			for (int i = 0; i < gr->count; i++)
				live += tt_model_gate_present(m)[gr->first + i];
			if (gr->kind == TT_GATE_UNIT && g > 0 && c.group[g - 1].kind == TT_GATE_LAYER &&
			    !tt_model_gate_present(m)[c.group[g - 1].first])
				CHECK(live == 0, "%s: group %d of a pruned branch has %d units",
				      spec, g, live);
		}
		tt_model_free(m);
	}
}

/* Pruning every unit of a live layer is refused and changes nothing. */
static void compact_refuses_to_disconnect(void)
{
	tt_model *m = model("mlp:16,12,8", 1, 0, 0);
	if (!m)
		return;
	tt_gate_cost c;
	tt_model_gate_desc(m, &c);
	for (int i = 0; i < c.group[1].count; i++)
		tt_model_gate_pruned(m)[c.group[1].first + i] = 1;
	size_t np = tt_model_nparams(m);
	tt_err err = { 0 };
	int rc = tt_model_gate_compact(m, &err);
	CHECK(rc == TT_EINPUT && strstr(err.msg, "fc2"), "status %d: %s", rc, err.msg);
	CHECK(tt_model_nparams(m) == np, "parameters %zu -> %zu", np, tt_model_nparams(m));
	tt_model_free(m);
}

/* ---- compaction out of memory ------------------------------------------ */

/* The cpu backend with an allocation that fails on the fail_at-th call. */
static tt_backend faulty;
static int alloc_calls, fail_at = -1;

static void *faulty_alloc(size_t bytes)
{
	if (alloc_calls++ == fail_at)
		return NULL;
	return be->alloc(bytes);
}

/*
 * Compaction with the n-th device allocation failing, for every n until
 * one succeeds: each failure is TT_ERUNTIME and leaves the model as it
 * was (logits, parameter count, gates present), and the compaction
 * tried again afterwards succeeds with the same result as one that never
 * failed.
 */
static void compact_out_of_memory(void)
{
	faulty = *be;
	faulty.alloc = faulty_alloc;
	const char *spec = "resnet:2,2:w4";
	tt_model_config cfg = { .spec = spec, .h = H, .w = H, .c = 1, .classes = CLASSES,
	                        .batch = BATCH, .optim_slots = 1, .seed = SEED,
	                        .be = &faulty, .gates = 1 };
	float want[BATCH * CLASSES], got[BATCH * CLASSES], before[BATCH * CLASSES];
	/* the result of a compaction that never fails */
	tt_model *ref = NULL;
	tt_err err = { 0 };
	CHECK(tt_model_create(&cfg, &ref, &err) == TT_OK, "%s", err.msg);
	if (!ref)
		return;
	prune_some(ref, 9);
	CHECK(tt_model_gate_compact(ref, &err) == TT_OK, "%s", err.msg);
	batch(ref, 5);
	logits(ref, 0, want);
	int failures = 0;
	for (int n = 0; n < 200; n++) {
		tt_model *m = NULL;
		fail_at = -1;
		CHECK(tt_model_create(&cfg, &m, &err) == TT_OK, "%s", err.msg);
		if (!m)
			break;
		prune_some(m, 9);
		batch(m, 5);
		logits(m, 0, before);
		size_t np = tt_model_nparams(m), cur = tt_model_mem(m)->current;
		alloc_calls = 0;
		fail_at = n;
		int rc = tt_model_gate_compact(m, &err);
		fail_at = -1;
		if (rc == TT_OK) {
			batch(m, 5);
			logits(m, 0, got);
			CHECK(memcmp(got, want, sizeof got) == 0, "allocation %d: the compacted "
			      "model differs", n);
			tt_model_free(m);
			break;
		}
		failures++;
		CHECK(rc == TT_ERUNTIME && strstr(err.msg, "out of memory"),
		      "allocation %d failing: status %d, %s", n, rc, err.msg);
		CHECK(tt_model_nparams(m) == np && tt_model_mem(m)->current == cur,
		      "allocation %d failing: the model changed", n);
		logits(m, 0, got);
		CHECK(memcmp(got, before, sizeof got) == 0, "allocation %d failing: the "
		      "logits changed", n);
		CHECK(tt_model_gate_compact(m, &err) == TT_OK, "allocation %d failing, then "
		      "again: %s", n, err.msg);
		batch(m, 5);
		logits(m, 0, got);
		CHECK(memcmp(got, want, sizeof got) == 0, "allocation %d failing, then "
		      "again: the compacted model differs", n);
		tt_model_free(m);
	}
	CHECK(failures > 10, "only %d allocations to fail", failures);
	tt_model_free(ref);
}

/* ---- what a step really does -------------------------------------------- */

/*
 * The cpu backend with every call that does arithmetic counted: the
 * multiply-accumulates of GEMMs and convolutions (a convolution's
 * backward, its weight gradient and, when asked, its input gradient), the
 * elements batch norms normalise, and the gate operations.  What a step
 * costs is read from what the model asks the backend to do, not from
 * what the model says it costs.
 */
static struct work {
	double macs, bn;
	long scale_cols, col_dot, scatter, gather;
} work;
static tt_backend counting;

static double conv_work(const tt_conv_shape *s, int K)
{
	return (double)s->n * s->oh * s->ow * K * s->k * s->k * s->c;
}

static void w_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
	work.macs += (double)m * n * k;
	be->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void w_conv(const float *x, const tt_conv_shape *s, int K, const float *W,
                   float *y, void *ws, size_t ws_bytes)
{
	work.macs += conv_work(s, K);
	be->conv(x, s, K, W, y, ws, ws_bytes);
}

static void w_conv_bwd(const float *x, const float *dy, const tt_conv_shape *s, int K,
                       const float *W, float *dW, float *dx, void *ws, size_t ws_bytes)
{
	work.macs += conv_work(s, K) * (dx ? 2 : 1);
	be->conv_bwd(x, dy, s, K, W, dW, dx, ws, ws_bytes);
}

static void w_bn_train(const float *x, int rows, int c, const float *gamma,
                       const float *beta, float momentum, float eps, float *run_mean,
                       float *run_var, float *save_mean, float *save_istd, int relu,
                       float *y)
{
	work.bn += (double)rows * c;
	be->bn_train(x, rows, c, gamma, beta, momentum, eps, run_mean, run_var, save_mean,
	             save_istd, relu, y);
}

static void w_bn_bwd(const float *x, const float *dy, int rows, int c, const float *gamma,
                     const float *save_mean, const float *save_istd, float *dx,
                     float *dgamma, float *dbeta)
{
	work.bn += (double)rows * c;
	be->bn_bwd(x, dy, rows, c, gamma, save_mean, save_istd, dx, dgamma, dbeta);
}

static void w_scale_cols(float *y, const float *mask, int rows, int c)
{
	work.scale_cols++;
	be->scale_cols(y, mask, rows, c);
}

static void w_col_dot(const float *a, const float *b, int rows, int c, float *out)
{
	work.col_dot++;
	be->col_dot(a, b, rows, c, out);
}

static void w_scatter(float *y, int cy, const float *x, int cx, const int *idx, int rows)
{
	work.scatter++;
	be->scatter_cols(y, cy, x, cx, idx, rows);
}

static void w_gather(float *x, int cx, const float *y, int cy, const int *idx, int rows)
{
	work.gather++;
	be->gather_cols(x, cx, y, cy, idx, rows);
}

static const tt_backend *counting_backend(void)
{
	counting = *be;
	counting.gemm = w_gemm;
	counting.conv = w_conv;
	counting.conv_bwd = w_conv_bwd;
	counting.bn_train = w_bn_train;
	counting.bn_bwd = w_bn_bwd;
	counting.scale_cols = w_scale_cols;
	counting.col_dot = w_col_dot;
	counting.scatter_cols = w_scatter;
	counting.gather_cols = w_gather;
	return &counting;
}

/* One training step's forward, loss and backward, counted; sampled: a
 * Bernoulli sample of the gates (t as they are), else every gate on. */
static void counted_step(tt_model *m, int sampled, tt_rng *r)
{
	if (sampled)
		tt_model_gate_sample(m, r);
	else
		tt_model_gate_all_on(m);
	memset(&work, 0, sizeof work);
	tt_model_forward(m, tt_model_input(m), BATCH, 1);
	tt_model_loss(m, tt_model_labels(m), BATCH, 0, 1, NULL);
	tt_model_backward(m);
}

/* Prune the units of group g not in keep (a list ending in -1); returns
 * how many are left. */
static int keep_units(tt_model *m, int g, const int *keep)
{
	tt_gate_cost c;
	tt_model_gate_desc(m, &c);
	const tt_gate_group *gr = &c.group[g];
	unsigned char *pr = tt_model_gate_pruned(m);
	int left = 0;
	for (int u = 0; u < gr->count; u++) {
		int on = 0;
		for (const int *k = keep; *k >= 0; k++)
			on |= *k == u;
		pr[gr->first + u] = (unsigned char)!on;
		left += on;
	}
	return left;
}

/* MACs of a k x k convolution of C channels into K at oh x ow. */
static double conv_macs(int oh, int ow, int K, int k, int C)
{
	return (double)oh * ow * K * k * k * C;
}

/*
 * What a compacted network's accounting must say, computed here from its
 * widths alone: per stage, forward MACs, parameters, batch-norm state and
 * the floats of activations kept for backward, all per example except
 * parameters, state and stats; bn the channels its batch norms normalise
 * per example (rows times channels).
 */
typedef struct expect {
	int n;
	double macs[8], params[8], state[8], act[8], bn[8];
	double stats[8];  /* floats of batch statistics kept for backward */
} expect;

/* A conv with its BN, at oh x ow: MACs, parameters, running and batch
 * statistics, channels normalised. */
static void expect_conv(expect *e, int s, int oh, int ow, int K, int k, int C)
{
	e->macs[s] += conv_macs(oh, ow, K, k, C);
	e->params[s] += (double)K * k * k * C + 2.0 * K;
	e->state[s] += 2.0 * K;
	e->stats[s] += 2.0 * K;
	e->bn[s] += (double)oh * ow * K;
}

/* The accounting of m against e: MACs (forward, training step), each
 * stage's parameter, gradient, optimizer and activation bytes; and the
 * work one counted step does against both. */
static void check_expect(tt_model *m, const expect *e, int slots, const char *what)
{
	double f = 0, tr = 0, bn = 0;
	size_t np = 0, ns = 0;
	for (int s = 0; s < e->n; s++) {
		f += e->macs[s];
		tr += (s == 0 ? 2 : 3) * e->macs[s];
		bn += 2 * e->bn[s]; /* batch norm forward and backward */
		np += (size_t)e->params[s];
		ns += (size_t)e->state[s];
		tt_stage_mem sm;
		tt_model_stage_mem(m, s, &sm);
		size_t p = (size_t)(e->params[s] + e->state[s]) * sizeof(float);
		size_t a = (size_t)(e->act[s] * BATCH + e->stats[s]) * sizeof(float);
		CHECK(sm.params == p && sm.grads == (size_t)e->params[s] * sizeof(float) &&
		      sm.optim == slots * (size_t)e->params[s] * sizeof(float) &&
		      sm.activations == a,
		      "%s stage %d (%s): params %zu grads %zu optim %zu activations %zu "
		      "bytes, expected %zu %zu %zu %zu", what, s, sm.name, sm.params, sm.grads,
		      sm.optim, sm.activations, p, (size_t)e->params[s] * sizeof(float),
		      slots * (size_t)e->params[s] * sizeof(float), a);
	}
	CHECK(tt_model_nparams(m) == np && tt_model_nstate(m) == ns,
	      "%s: %zu parameters %zu state, expected %zu %zu", what, tt_model_nparams(m),
	      tt_model_nstate(m), np, ns);
	CHECK(tt_model_macs(m) == f && tt_model_train_macs(m) == tr,
	      "%s: %.0f forward and %.0f training MACs, expected %.0f %.0f", what,
	      tt_model_macs(m), tt_model_train_macs(m), f, tr);
	/* the fine-tuning's step: every gate on, no mask, no score */
	counted_step(m, 0, NULL);
	CHECK(tt_model_step_macs(m) == tr && work.macs == BATCH * tr,
	      "%s: a step computes %.0f MACs an example (step MACs %.0f), expected %.0f",
	      what, work.macs / BATCH, tt_model_step_macs(m), tr);
	CHECK(work.bn == BATCH * bn, "%s: batch norms over %.0f channels an example, "
	      "expected %.0f", what, work.bn / BATCH, bn);
	CHECK(work.scale_cols == 0 && work.col_dot == 0, "%s: a step with every gate on "
	      "multiplies %ld times by masks and takes %ld scores", what, work.scale_cols,
	      work.col_dot);
	const float *sc = tt_model_gate_scores(m);
	for (int i = 0; i < tt_model_gates(m); i++)
		CHECK(sc[i] == 0, "%s: gate %d scores %g with every gate on", what, i, sc[i]);
}

/*
 * A compacted network's step does less, by exactly what was pruned: the
 * accounting (MACs, parameters, gradients, optimizer state, activations)
 * equals what the widths left say, computed here, and so does the work
 * the backend is asked for (MACs of every GEMM and convolution, channels
 * of every batch norm): a narrowed conv2 produces only its channels, a
 * pruned branch costs nothing behind an identity shortcut and only its
 * projection behind one.  Once before pruning (the dense widths) and once
 * after.  The steps with every gate on (the fine-tuning's) multiply by
 * no mask and take no score; a sampled step does, so the counts can tell.
 */
static void compacted_does_less(void)
{
	const tt_backend *keep_be = be;
	const tt_backend *cb = counting_backend();
	tt_rng r;
	tt_rng_seed(&r, 5, TT_STREAM_GATES);

	/* mlp:16,12,8 on 8x8x1: fc1 keeps 5 of 16, fc2 3 of 12, fc3 2 of 8 */
	for (int pass = 0; pass < 2; pass++) {
		be = cb;
		tt_model *m = model("mlp:16,12,8", 1, 0, 1);
		be = keep_be;
		if (!m)
			return;
		batch(m, 7);
		static const int k1[] = { 0, 3, 7, 9, 15, -1 }, k2[] = { 1, 2, 11, -1 },
		                 k3[] = { 4, 6, -1 };
		int w[3] = { 16, 12, 8 };
		if (pass) {
			w[0] = keep_units(m, 0, k1);
			w[1] = keep_units(m, 1, k2);
			w[2] = keep_units(m, 2, k3);
			tt_err err = { 0 };
			CHECK(tt_model_gate_compact(m, &err) == TT_OK, "mlp: %s", err.msg);
			batch(m, 7);
		}
		expect e = { .n = 4 };
		int din = H * H;
		for (int s = 0; s < 4; s++) {
			int dout = s < 3 ? w[s] : CLASSES;
			e.macs[s] = (double)din * dout;
			e.params[s] = (double)din * dout + dout;
			e.act[s] = s < 3 ? 2 * dout : dout; /* a gated stage: + its ungated copy */
			din = dout;
		}
		check_expect(m, &e, 1, pass ? "mlp compacted" : "mlp");
		float *t = tt_model_gate_probs(m);
		for (int i = 0; i < tt_model_gates(m); i++)
			t[i] = tt_model_gate_pruned(m)[i] ? 0.0f : 0.5f;
		counted_step(m, 1, &r);
		CHECK(work.col_dot == 3, "mlp: a sampled step scores %ld groups, expected 3",
		      work.col_dot);
		tt_model_free(m);
	}

	/*
	 * resnet:2,2:w4 on 8x8x1: stem, b1.1 and b1.2 (4 wide at 8x8), b2.1
	 * (8 wide at 4x4, stride 2, a 1x1 projection), b2.2, head.  b1.1
	 * keeps 2 of its 4 u1 and 1 of its 4 u2 (a mostly pruned conv2), b1.2
	 * loses its layer gate (the identity), b2.1 keeps 3 u1 and 2 u2 (its
	 * projection stays), b2.2 keeps every u1 and 5 u2.
	 */
	for (int pass = 0; pass < 2; pass++) {
		be = cb;
		tt_model *m = model("resnet:2,2:w4", 1, 0, 1);
		be = keep_be;
		if (!m)
			return;
		batch(m, 8);
		int k[4][2] = { { 4, 4 }, { 4, 4 }, { 8, 8 }, { 8, 8 } }, branch[4] = { 1, 1, 1, 1 };
		if (pass) {
			/* groups: per block its layer gate, u1, u2 */
			static const int b11u1[] = { 1, 2, -1 }, b11u2[] = { 2, -1 },
			                 b21u1[] = { 3, 5, 7, -1 }, b21u2[] = { 5, 7, -1 },
			                 all8[] = { 0, 1, 2, 3, 4, 5, 6, 7, -1 },
			                 b22u2[] = { 0, 2, 4, 5, 7, -1 };
			tt_gate_cost c;
			tt_model_gate_desc(m, &c);
			k[0][0] = keep_units(m, 1, b11u1);
			k[0][1] = keep_units(m, 2, b11u2);
			tt_model_gate_pruned(m)[c.group[3].first] = 1;
			branch[1] = 0;
			k[1][0] = k[1][1] = 0;
			k[2][0] = keep_units(m, 7, b21u1);
			k[2][1] = keep_units(m, 8, b21u2);
			k[3][0] = keep_units(m, 10, all8);
			k[3][1] = keep_units(m, 11, b22u2);
			tt_err err = { 0 };
			CHECK(tt_model_gate_compact(m, &err) == TT_OK, "resnet: %s", err.msg);
			batch(m, 8);
		}
		expect e = { .n = 6 };
		expect_conv(&e, 0, H, H, 4, 3, 1); /* stem */
		e.act[0] = 2.0 * H * H * 4; /* conv out, BN+ReLU out */
		for (int b = 0; b < 4; b++) {
			int s = b + 1, C = b < 2 ? 4 : b == 2 ? 4 : 8, K = b < 2 ? 4 : 8;
			int o = b < 2 ? H : H / 2, proj = b == 2, k1 = k[b][0], k2 = k[b][1];
			double rows = (double)o * o;
			if (branch[b]) {
				expect_conv(&e, s, o, o, k1, 3, C);
				expect_conv(&e, s, o, o, k2, 3, k1);
				e.act[s] += rows * (2 * k1 + k2); /* conv1, BN1+ReLU, conv2 */
			}
			if (proj) {
				expect_conv(&e, s, o, o, K, 1, C);
				e.act[s] += rows * K;
			}
			if (branch[b] || proj)
				e.act[s] += rows * K; /* the block's output */
		}
		e.macs[5] = 8.0 * CLASSES;
		e.params[5] = 8.0 * CLASSES + CLASSES;
		e.act[5] = 8 + CLASSES;
		check_expect(m, &e, 1, pass ? "resnet compacted" : "resnet");
		if (pass)
			CHECK(work.scatter == 3 && work.gather == 3, "resnet compacted: %ld "
			      "scatters and %ld gathers, expected 3 each (b1.1, b2.1, b2.2)",
			      work.scatter, work.gather);
		float *t = tt_model_gate_probs(m);
		for (int i = 0; i < tt_model_gates(m); i++)
			t[i] = tt_model_gate_pruned(m)[i] ? 0.0f : 0.5f;
		for (int i = 0; i < 8 && work.col_dot == 0; i++)
			counted_step(m, 1, &r); /* until some branch runs */
		CHECK(work.col_dot > 0, "resnet: a sampled step takes no score");
		tt_model_free(m);
	}
}

/* ---- the training loop -------------------------------------------------- */

typedef struct watch {
	int calls, bad, ngates;
	long last_step;
	tt_gate_row *last;
	long every;
} watch;

/*
 * tt_model_gate_wsq_decay is tt_model_gate_wsq and then
 * tt_model_gate_decay, bit for bit (|W|^2 and the gradients), in one pass:
 * with some groups at 1 (no prior) and some not, and with every gate at 1.
 */
static void wsq_decay_fused(void)
{
	const char *specs2[] = { "mlp:16,12,8", "resnet:2,2:w4" };
	for (int k = 0; k < 2; k++) {
		for (int allone = 0; allone < 2; allone++) {
			tt_model *m = model(specs2[k], 1, 0, 1);
			if (!m)
				return;
			batch(m, 3);
			tt_rng r;
			tt_rng_seed(&r, 9, TT_STREAM_GATES);
			float *t = tt_model_gate_probs(m);
			tt_gate_cost c;
			tt_model_gate_desc(m, &c);
			for (int g = 0; g < c.ngroups; g++) /* every other group below 1 */
				for (int i = 0; i < c.group[g].count; i++)
					t[c.group[g].first + i] = allone || g % 2 ? 1.0f
					                        : 0.2f + 0.7f * tt_rng_uniform(&r);
			tt_model_gate_sample(m, &r);
			tt_model_forward(m, tt_model_input(m), BATCH, 1);
			tt_model_loss(m, tt_model_labels(m), BATCH, 0, 1, NULL);
			tt_model_backward(m);
			size_t nt = tt_model_ntrainable(m);
			float *g0 = download(tt_model_grads(m), nt);
			int ng = tt_model_gates(m);
			double *wa = calloc((size_t)ng, sizeof *wa), *wb = calloc((size_t)ng, sizeof *wb);
			tt_model_gate_wsq(m, wa, NULL);
			tt_model_gate_decay(m, 5e-4, 5e-3, 5e-4);
			float *ga = download(tt_model_grads(m), nt);
			be->upload(tt_model_grads(m), g0, nt * sizeof *g0);
			tt_model_gate_wsq_decay(m, wb, 5e-4, 5e-3, 5e-4);
			float *gb = download(tt_model_grads(m), nt);
			CHECK(memcmp(wa, wb, (size_t)ng * sizeof *wa) == 0, "%s: |W|^2 differs",
			      specs2[k]);
			CHECK(memcmp(ga, gb, nt * sizeof *ga) == 0, "%s: gradients differ",
			      specs2[k]);
			int moved = memcmp(g0, ga, nt * sizeof *g0) != 0, pos = 1;
			for (int i = 0; i < ng; i++)
				pos &= !tt_model_gate_present(m)[i] || wa[i] > 0;
			CHECK(moved == !allone, "%s: the prior %s the gradients", specs2[k],
			      moved ? "changed" : "left");
			CHECK(pos, "%s: a present gate with |W|^2 of 0", specs2[k]);
			free(g0);
			free(ga);
			free(gb);
			free(wa);
			free(wb);
			tt_model_free(m);
		}
	}
}

/* every report of the gates method: probabilities in [0, 1], on = (t >= 0.5) */
static void on_report(void *ud, const tt_method_report *rep)
{
	watch *w = ud;
	long step = rep->step;
	int n = rep->nrows;
	const tt_gate_row *rows = rep->rows;
	w->calls++;
	w->ngates = n;
	w->last_step = step;
	for (int i = 0; i < n; i++)
		if (!(rows[i].prob >= 0 && rows[i].prob <= 1) ||
		    rows[i].on != (rows[i].prob >= 0.5f && rows[i].on))
			w->bad++;
	free(w->last);
	w->last = malloc((size_t)n * sizeof *rows);
	memcpy(w->last, rows, (size_t)n * sizeof *rows);
}

static void gated_config(tt_train_config *c, const char *model)
{
	tt_train_defaults(c);
	c->model = model;
	c->data = "synthetic";
	c->train_size = 256;
	c->val_size = 64;
	c->batch = 32;
	c->epochs = 4;
	c->threads = 2;
	c->seed = 3;
	c->gates.strength = 20;  /* strong: a short run must prune */
	c->gates.lr = 2;
	c->gates.warmup_epochs = 1;
	c->gates.layer_hold_epochs = 2;
	c->gates.prune_every = 4;
}

/*
 * A short strongly gated run: probabilities stay in [0, 1] at every
 * report, every gate ends at exactly 0 or 1, something is pruned, the
 * compacted network is what the terms say is left, and the result and
 * its JSON carry it.
 */
static void train_gates_end_01(void)
{
	/* the last: a frozen prefix, gates on the trainable stages only */
	const char *models[] = { "mlp:32,16", "resnet:1,1:w4", "cnn:4,8", "resnet:1,2:w4" };
	for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
		tt_train_config c;
		gated_config(&c, models[k]);
		c.trainable = k == 3 ? 2 : 0;
		tt_train_data d;
		tt_err err = { 0 };
		CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
		watch w = { 0 };
		tt_train_hooks h = { .ud = &w, .report_every = 1, .on_report = on_report };
		tt_train_result r;
		int rc = tt_train_run(&c, &d, &h, &r, &err);
		CHECK(rc == TT_OK, "%s: %s", models[k], err.msg);
		if (rc) {
			tt_train_data_free(&d);
			continue;
		}
		CHECK(w.bad == 0, "%s: %d reports out of [0, 1]", models[k], w.bad);
		CHECK(w.calls == r.steps, "%s: %d reports over %ld steps (one a step, the "
		      "last at the end)", models[k], w.calls, r.steps);
		CHECK(r.gates.on && r.gates.ngates == w.ngates && r.gates.row,
		      "%s: gates summary missing", models[k]);
		int off = 0;
		for (int i = 0; i < r.gates.ngates; i++) {
			float t = r.gates.row[i].prob;
			CHECK(t == 0.0f || t == 1.0f, "%s: gate %d ends at %g", models[k], i, t);
			CHECK(r.gates.row[i].on == (t == 1.0f), "%s: gate %d on %d at %g",
			      models[k], i, r.gates.row[i].on, t);
			CHECK(w.last[i].prob == t, "%s: the last report of gate %d says %g",
			      models[k], i, w.last[i].prob);
			off += t == 0.0f;
		}
		CHECK(off > 0, "%s: strength %g pruned nothing", models[k], c.gates.strength);
		CHECK(r.gates.macs_kept < 1 && r.gates.params_kept < 1 &&
		      fabs(r.gates.macs_kept - r.gates.macs_expected) < 1e-9 &&
		      fabs(r.gates.params_kept - r.gates.params_expected) < 1e-9,
		      "%s: kept %g %g, expected %g %g", models[k], r.gates.macs_kept,
		      r.gates.params_kept, r.gates.macs_expected, r.gates.params_expected);
		CHECK(isfinite(r.val_acc), "%s: val_acc %g", models[k], r.val_acc);
		int units = 0, kept = 0;
		for (int s = 0; s < r.stages; s++) {
			units += r.stage[s].units;
			kept += r.stage[s].units_kept;
			/* a live block, or a gated stage without a layer gate, keeps a
			 * unit; a pruned block's units went with it */
			if (r.stage[s].layer == 1 || (r.stage[s].layer < 0 && r.stage[s].units))
				CHECK(r.stage[s].units_kept > 0, "%s: stage %d kept no unit",
				      models[k], s);
			if (r.stage[s].layer == 0)
				CHECK(r.stage[s].units_kept == 0, "%s: stage %d's pruned block kept "
				      "%d units", models[k], s, r.stage[s].units_kept);
		}
		CHECK(units > 0 && kept < units, "%s: %d of %d units kept", models[k], kept,
		      units);
		for (int s = 0; s < r.stages; s++)
			CHECK(!r.stage[s].frozen || (r.stage[s].units == 0 && r.stage[s].layer < 0),
			      "%s: frozen stage %d has gates", models[k], s);
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		tt_train_result_json(&r, f);
		fclose(f);
		CHECK(strstr(buf, "\"gates\":{\"macs_expected\":") && strstr(buf, "\"mask\":\""),
		      "%s: JSON %s", models[k], buf);
		free(buf);
		free(w.last);
		tt_train_result_free(&r);
		tt_train_data_free(&d);
	}
}

/* Strength 0: no gates, and the run is the ungated run. */
static void train_strength0_is_ungated(void)
{
	tt_train_config c;
	gated_config(&c, "resnet:1,1:w4");
	c.epochs = 1;
	tt_train_data d;
	tt_err err = { 0 };
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
	tt_train_result a, b;
	c.gates.strength = 0;
	CHECK(tt_train_run(&c, &d, NULL, &a, &err) == TT_OK, "%s", err.msg);
	tt_gate_defaults(&c.gates);
	c.gates.strength = 0;
	CHECK(tt_train_run(&c, &d, NULL, &b, &err) == TT_OK, "%s", err.msg);
	CHECK(!a.gates.on && !b.gates.on, "gates on at strength 0");
	CHECK(a.val_loss == b.val_loss && a.train_macs == b.train_macs,
	      "val_loss %.9g vs %.9g", a.val_loss, b.val_loss);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	tt_train_result_json(&a, f);
	fclose(f);
	CHECK(!strstr(buf, "\"gates\""), "JSON of an ungated run: %s", buf);
	free(buf);
	tt_train_result_free(&a);
	tt_train_result_free(&b);
	tt_train_data_free(&d);
}

typedef struct grab {
	long at;
	void *mid, *last;
	size_t mid_len, last_len;
} grab;

static int keep(void *ud, long step, const void *blob, size_t len)
{
	grab *g = ud;
	if (step == g->at) {
		free(g->mid);
		g->mid = malloc(len);
		memcpy(g->mid, blob, len);
		g->mid_len = len;
	}
	free(g->last);
	g->last = malloc(len);
	memcpy(g->last, blob, len);
	g->last_len = len;
	return 0;
}

/*
 * A gated run checkpointed after pruning and compaction (mid-epoch, so
 * pruned gates are waiting for the next compaction too) and resumed ends
 * bit for bit as the uninterrupted run: the final blob past the timing
 * field, the gates, the losses.  Then a blob whose gates section is
 * damaged is refused, and an ungated run refuses a gated blob.
 */
static void train_resume_gated(void)
{
	const char *models[] = { "resnet:1,1:w4", "mlp:32,16" };
	for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
		tt_train_config c;
		gated_config(&c, models[k]);
		c.augment = 1;
		tt_train_data d;
		tt_err err = { 0 };
		CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
		long at = 8 * 3 - 2; /* epoch 3 of 8 steps, after two compactions */
		grab a = { .at = at };
		tt_train_hooks h = { .ud = &a, .checkpoint_every = 1, .on_checkpoint = keep };
		tt_train_result ra, rb;
		CHECK(tt_train_run(&c, &d, &h, &ra, &err) == TT_OK, "%s: %s", models[k], err.msg);
		CHECK(a.mid && a.mid_len >= a.last_len, "%s: no blob at %ld", models[k], at);
		grab b = { .at = -1 };
		tt_train_hooks hb = { .ud = &b, .on_checkpoint = keep };
		c.resume = a.mid;
		c.resume_len = a.mid_len;
		CHECK(tt_train_run(&c, &d, &hb, &rb, &err) == TT_OK, "%s resumed: %s",
		      models[k], err.msg);
		CHECK(rb.val_loss == ra.val_loss && rb.train_loss == ra.train_loss &&
		      rb.steps == ra.steps && rb.train_macs == ra.train_macs,
		      "%s: resumed val_loss %.9g train_loss %.9g macs %.9g, uninterrupted "
		      "%.9g %.9g %.9g", models[k], rb.val_loss, rb.train_loss, rb.train_macs,
		      ra.val_loss, ra.train_loss, ra.train_macs);
		size_t hdr = 128; /* past t_train, as test_resume */
		CHECK(a.last_len == b.last_len && b.last &&
		      memcmp((char *)a.last + hdr, (char *)b.last + hdr, a.last_len - hdr) == 0,
		      "%s: the final state differs after resuming", models[k]);
		for (int i = 0; i < ra.gates.ngates && rb.gates.row; i++)
			CHECK(ra.gates.row[i].prob == rb.gates.row[i].prob, "%s: gate %d", models[k], i);
		tt_train_result_free(&rb);

		/* a damaged gates section: a probability out of [0, 1] */
		char *bad = malloc(a.mid_len);
		memcpy(bad, a.mid, a.mid_len);
		size_t ng = (size_t)ra.gates.ngates;
		/* t, ms0, pruned, present, then the controller's magic, multiplier,
		 * mean square and low counts */
		size_t toff = a.mid_len - ng * (4 + 8 + 2) - (4 + 3 * 8 + ng);
		float two = 2;
		memcpy(bad + toff, &two, sizeof two);
		c.resume = bad;
		int rc = tt_train_run(&c, &d, NULL, &rb, &err);
		CHECK(rc == TT_EINPUT && strstr(err.msg, "gate 0"), "%s: damaged blob: %d %s",
		      models[k], rc, err.msg);
		free(bad);
		/* an ungated run */
		c.resume = a.mid;
		c.gates.strength = 0;
		rc = tt_train_run(&c, &d, NULL, &rb, &err);
		CHECK(rc == TT_EINPUT && strstr(err.msg, "gates"), "%s: ungated run from a "
		      "gated blob: %d %s", models[k], rc, err.msg);
		tt_train_result_free(&ra);
		free(a.mid);
		free(a.last);
		free(b.last);
		tt_train_data_free(&d);
	}
}

int main(void)
{
	be = tt_backend_get("cpu");
	if (!be) {
		printf("FAIL backend_cpu\n");
		return 1;
	}
	if (be->set_threads)
		be->set_threads(2);
	TT_RUN(gates_where);
	TT_RUN(gates_at_one_identical);
	TT_RUN(layer_gate_skips);
	TT_RUN(compact_changes_nothing_but_cost);
	TT_RUN(compact_eval);
	TT_RUN(compact_refuses_to_disconnect);
	TT_RUN(compact_out_of_memory);
	TT_RUN(compacted_does_less);
	TT_RUN(wsq_decay_fused);
	TT_RUN(train_gates_end_01);
	TT_RUN(train_strength0_is_ungated);
	TT_RUN(train_resume_gated);
	TT_EXIT();
}
