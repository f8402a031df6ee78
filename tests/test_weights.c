/*
 * test_weights.c — weights by pointer and describing without building
 * (model.h: tt_model_forward_on, tt_model_forward_suffix,
 * tt_model_backward_into, tt_model_describe).
 *
 * Weights by pointer are checked for exact equality, not closeness: the
 * same arithmetic on the same values in another buffer must give the same
 * bits, so any read of the wrong buffer (the model's own where a foreign
 * one was named, or the reverse) shows.  The finite-difference checks of
 * the loss against a foreign buffer are in test_grad.c, beside the
 * machinery that handles ReLU kinks.
 *
 * Describing is checked against building: for every spec, trainable
 * depth, optimizer slots, batch and gates in the grid, the description
 * equals the built model's accounting byte for byte, every stage and
 * kind and the model's own row (workspace included), and its MACs
 * exactly; and describing allocates nothing on the backend.  The same
 * with input_grad, which a frozen prefix refuses.
 *
 * Models are tiny (8x8x1 inputs, batch 6, synthetic batches).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "model.h"
#include "rng.h"
#include "test.h"

#define H 8
#define CLASSES 10
#define BATCH 6
#define SEED 23

#include "small_model.h"

/* A new device copy of n host floats. */
static float *dev(const float *h, size_t n)
{
	float *d = be->alloc((n ? n : 1) * sizeof *d);
	TT_ASSERT(d);
	be->upload(d, h, n * sizeof *h);
	return d;
}

static int same(const float *a, const float *b, size_t n)
{
	return memcmp(a, b, n * sizeof *a) == 0;
}

/* What one step computed: logits, loss, gradients, gate scores. */
typedef struct step_out {
	float *logits, *grads, *scores;
	double loss;
} step_out;

static void step_free(step_out *o)
{
	free(o->logits);
	free(o->grads);
	free(o->scores);
}

/* A train forward on w (NULL: own), loss, backward into g (NULL: own). */
static step_out step(tt_model *m, const tt_model_weights *w, float *g)
{
	step_out o;
	size_t nt = tt_model_ntrainable(m);
	const float *l = tt_model_forward_on(m, w, tt_model_input(m), BATCH, 1);
	o.logits = host(l, (size_t)BATCH * CLASSES);
	o.loss = tt_model_loss(m, tt_model_labels(m), BATCH, 0.0f, 1, NULL);
	tt_model_backward_into(m, g);
	o.grads = host(g ? g : tt_model_grads(m), nt);
	int ng = tt_model_gates(m);
	o.scores = malloc((ng ? ng : 1) * sizeof *o.scores);
	TT_ASSERT(o.scores);
	if (ng)
		memcpy(o.scores, tt_model_gate_scores(m), (size_t)ng * sizeof *o.scores);
	return o;
}

static void step_same(const char *what, tt_model *m, const step_out *a,
                      const step_out *b)
{
	CHECK(same(a->logits, b->logits, (size_t)BATCH * CLASSES), "%s: logits differ", what);
	CHECK(a->loss == b->loss, "%s: loss %.9g vs %.9g", what, a->loss, b->loss);
	CHECK(same(a->grads, b->grads, tt_model_ntrainable(m)), "%s: gradients differ",
	      what);
	CHECK(same(a->scores, b->scores, (size_t)tt_model_gates(m)),
	      "%s: gate scores differ", what);
}

/*
 * Forward and backward on a device copy of the parameters (as a whole
 * vector, and as the model's prefix with a separate suffix) give the
 * bits the model's own buffers give, in train and evaluation mode; the
 * gradients land in the caller's buffer and the model's own gradient
 * buffer keeps a marker.
 */
static void copy_case(const char *spec, int trainable, int gates)
{
	tt_model *m = model(spec, trainable, gates);
	if (!m)
		return;
	batch(m);
	if (gates) {
		/* some gates off, a block's branch skipped if there is one */
		tt_rng r;
		tt_rng_seed(&r, 5, TT_STREAM_SYNTH);
		float *t = tt_model_gate_probs(m);
		for (int i = 0; i < tt_model_gates(m); i++)
			t[i] = 0.7f;
		tt_model_gate_sample(m, &r);
	}
	size_t np = tt_model_nparams(m), nt = tt_model_ntrainable(m);
	size_t toff = tt_model_trainable_offset(m);
	float *hp = host(tt_model_params(m), np);
	float *p_d = dev(hp, np), *s_d = dev(hp + toff, nt);
	float *g_d = be->alloc(nt * sizeof(float));
	float *mark = malloc(nt * sizeof *mark);
	TT_ASSERT(g_d && mark);
	char what[128];

	/* evaluation mode: the running statistics, read, not written */
	float *e_own = host(tt_model_forward(m, tt_model_input(m), BATCH, 0),
	                    (size_t)BATCH * CLASSES);
	tt_model_weights wp = { .params = p_d };
	float *e_for = host(tt_model_forward_on(m, &wp, tt_model_input(m), BATCH, 0),
	                    (size_t)BATCH * CLASSES);
	snprintf(what, sizeof what, "%s z=%d gates=%d eval", spec, trainable, gates);
	CHECK(same(e_own, e_for, (size_t)BATCH * CLASSES), "%s: logits differ", what);

	step_out own = step(m, NULL, NULL);
	for (size_t i = 0; i < nt; i++)
		mark[i] = -777.0f;
	be->upload(tt_model_grads(m), mark, nt * sizeof *mark);
	step_out full = step(m, &wp, g_d);
	snprintf(what, sizeof what, "%s z=%d gates=%d params", spec, trainable, gates);
	step_same(what, m, &own, &full);
	float *gown = host(tt_model_grads(m), nt);
	CHECK(same(gown, mark, nt), "%s: the model's own gradients were written", what);
	free(gown);

	/* the prefix from the model's own buffer, the suffix from a copy */
	tt_model_weights ws = { .suffix = s_d };
	step_out suf = step(m, &ws, g_d);
	snprintf(what, sizeof what, "%s z=%d gates=%d suffix", spec, trainable, gates);
	step_same(what, m, &own, &suf);

	step_free(&own);
	step_free(&full);
	step_free(&suf);
	free(e_own);
	free(e_for);
	free(hp);
	free(mark);
	be->free(p_d);
	be->free(s_d);
	be->free(g_d);
	tt_model_free(m);
}

static void weights_copy_mlp(void) { copy_case("mlp:16,8", 0, 0); copy_case("mlp:16,8", 1, 0); }
static void weights_copy_cnn(void) { copy_case("cnn:4,4", 0, 0); copy_case("cnn:4,4", 2, 0); }
static void weights_copy_resnet(void)
{
	copy_case("resnet:1,1:w4", 0, 0);
	copy_case("resnet:1,1:w4", 2, 0);
}
static void weights_copy_gated(void)
{
	copy_case("mlp:16,8", 0, 1);
	copy_case("cnn:4,4", 3, 1);
	copy_case("resnet:1,1:w4", 0, 1);
	copy_case("resnet:1,1:w4", 2, 1);
}

/*
 * A perturbed copy forwarded by pointer gives the bits the model gives
 * after that copy is uploaded into it, and leaves the model's own
 * parameters as they were.
 */
static void perturbed_case(const char *spec, int trainable)
{
	tt_model *m = model(spec, trainable, 0);
	if (!m)
		return;
	batch(m);
	size_t np = tt_model_nparams(m), nt = tt_model_ntrainable(m);
	float *hp = host(tt_model_params(m), np), *pert = malloc(np * sizeof *pert);
	TT_ASSERT(pert);
	tt_rng r;
	tt_rng_seed(&r, 99, TT_STREAM_SYNTH);
	for (size_t i = 0; i < np; i++)
		pert[i] = hp[i] + 0.05f * tt_rng_normal(&r);
	float *p_d = dev(pert, np), *g_d = be->alloc(nt * sizeof(float));
	TT_ASSERT(g_d);
	tt_model_weights w = { .params = p_d };
	step_out by_ptr = step(m, &w, g_d);
	float *after = host(tt_model_params(m), np);
	CHECK(same(after, hp, np), "%s z=%d: the model's parameters changed", spec,
	      trainable);
	be->upload(tt_model_params(m), pert, np * sizeof *pert);
	step_out uploaded = step(m, NULL, NULL);
	char what[128];
	snprintf(what, sizeof what, "%s z=%d perturbed", spec, trainable);
	step_same(what, m, &uploaded, &by_ptr);
	step_free(&by_ptr);
	step_free(&uploaded);
	free(after);
	free(hp);
	free(pert);
	be->free(p_d);
	be->free(g_d);
	tt_model_free(m);
}

static void weights_perturbed(void)
{
	perturbed_case("mlp:16,8", 0);
	perturbed_case("cnn:4,4", 2);
	perturbed_case("resnet:1,1:w4", 0);
	perturbed_case("resnet:1,1:w4", 2);
}

/*
 * keep_stats: a train forward on any weights leaves the running
 * statistics (and computes the same logits); without it they move.
 */
static void weights_keep_stats(void)
{
	tt_model *m = model("resnet:1,1:w4", 2, 0);
	if (!m)
		return;
	batch(m);
	size_t ns = tt_model_nstate(m), np = tt_model_nparams(m);
	float *s0 = host(tt_model_state(m), ns), *hp = host(tt_model_params(m), np);
	float *p_d = dev(hp, np);
	tt_model_weights keep = { .params = p_d, .keep_stats = 1 };
	float *a = host(tt_model_forward_on(m, &keep, tt_model_input(m), BATCH, 1),
	                (size_t)BATCH * CLASSES);
	float *s1 = host(tt_model_state(m), ns);
	CHECK(same(s0, s1, ns), "keep_stats: the running statistics moved");
	tt_model_weights upd = { .params = p_d };
	float *b = host(tt_model_forward_on(m, &upd, tt_model_input(m), BATCH, 1),
	                (size_t)BATCH * CLASSES);
	float *s2 = host(tt_model_state(m), ns);
	CHECK(!same(s0, s2, ns), "without keep_stats the running statistics stayed");
	CHECK(same(a, b, (size_t)BATCH * CLASSES), "keep_stats changed the logits");
	free(a);
	free(b);
	free(s0);
	free(s1);
	free(s2);
	free(hp);
	be->free(p_d);
	tt_model_free(m);
}

/*
 * tt_model_forward_suffix: after one forward, K perturbed suffixes run
 * from the prefix's output alone give the bits a whole forward on each
 * gives, and a backward after it the same gradients; with no frozen
 * prefix it runs everything again from the last input.
 */
static void suffix_case(const char *spec, int trainable)
{
	tt_model *m = model(spec, trainable, 0);
	if (!m)
		return;
	batch(m);
	size_t np = tt_model_nparams(m), nt = tt_model_ntrainable(m);
	size_t toff = tt_model_trainable_offset(m);
	float *hp = host(tt_model_params(m), np), *pert = malloc(nt * sizeof *pert);
	float *g_d = be->alloc(nt * sizeof(float));
	TT_ASSERT(pert && g_d);
	tt_rng r;
	tt_rng_seed(&r, 7, TT_STREAM_SYNTH);
	step_out base = step(m, NULL, NULL); /* the prefix runs here only */
	char what[128];
	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < nt; i++)
			pert[i] = hp[toff + i] + 0.01f * (tt_rng_uniform(&r) < 0.5f ? -1 : 1);
		float *s_d = dev(pert, nt);
		tt_model_weights w = { .suffix = s_d, .keep_stats = 1 };
		float *lk = host(tt_model_forward_suffix(m, &w), (size_t)BATCH * CLASSES);
		double loss = tt_model_loss(m, tt_model_labels(m), BATCH, 0.0f, 1, NULL);
		tt_model_backward_into(m, g_d);
		float *gk = host(g_d, nt);
		step_out whole = step(m, &w, g_d);
		snprintf(what, sizeof what, "%s z=%d suffix copy %d", spec, trainable, k);
		CHECK(same(lk, whole.logits, (size_t)BATCH * CLASSES), "%s: logits differ",
		      what);
		CHECK(loss == whole.loss, "%s: loss %.9g vs %.9g", what, loss, whole.loss);
		CHECK(same(gk, whole.grads, nt), "%s: gradients differ", what);
		CHECK(!same(lk, base.logits, (size_t)BATCH * CLASSES),
		      "%s: the perturbation changed nothing", what);
		step_free(&whole);
		free(lk);
		free(gk);
		be->free(s_d);
	}
	step_free(&base);
	free(hp);
	free(pert);
	be->free(g_d);
	tt_model_free(m);
}

static void weights_suffix(void)
{
	suffix_case("resnet:1,1:w4", 2);
	suffix_case("cnn:4,4", 1);
	suffix_case("mlp:16,8", 2);
	suffix_case("mlp:16,8", 0);
}

/* ---- describing --------------------------------------------------------- */

/* The cpu backend with alloc counted: describing must never call it. */
static tt_backend count_be;
static int count_allocs;

static void *count_alloc(size_t bytes)
{
	count_allocs++;
	return be->alloc(bytes);
}

/* Describes and builds the model; returns its total bytes (0 on failure). */
static size_t describe_case_ig(const char *spec, int h, int z, int slots, int batch_n,
                               int gates, int input_grad)
{
	tt_model_config cfg = { .spec = spec, .h = h, .w = h, .c = 1, .classes = CLASSES,
	                        .batch = batch_n, .trainable = z, .optim_slots = slots,
	                        .seed = SEED, .be = &count_be, .gates = gates,
	                        .input_grad = input_grad };
	char what[160];
	snprintf(what, sizeof what, "%s %dx%d z=%d slots=%d batch=%d gates=%d input_grad=%d",
	         spec, h, h, z, slots, batch_n, gates, input_grad);
	tt_model_desc *d = malloc(sizeof *d);
	TT_ASSERT(d);
	tt_err err = { 0 };
	count_allocs = 0;
	int rc = tt_model_describe(&cfg, d, &err);
	CHECK(rc == TT_OK, "%s: describe: %s", what, err.msg);
	CHECK(count_allocs == 0, "%s: describing allocated %d buffers", what, count_allocs);
	tt_model *m = NULL;
	rc = tt_model_create(&cfg, &m, &err);
	CHECK(rc == TT_OK, "%s: create: %s", what, err.msg);
	if (rc != TT_OK) {
		free(d);
		return 0;
	}
	const tt_mem *mem = tt_model_mem(m);
	CHECK(d->stages == tt_model_stages(m), "%s: stages %d vs %d", what, d->stages,
	      tt_model_stages(m));
	CHECK(d->trainable == tt_model_trainable(m), "%s: trainable %d vs %d", what,
	      d->trainable, tt_model_trainable(m));
	CHECK(d->nparams == tt_model_nparams(m) && d->nstate == tt_model_nstate(m) &&
	      d->trainable_offset == tt_model_trainable_offset(m),
	      "%s: params %zu/%zu state %zu/%zu offset %zu/%zu", what, d->nparams,
	      tt_model_nparams(m), d->nstate, tt_model_nstate(m), d->trainable_offset,
	      tt_model_trainable_offset(m));
	CHECK(d->macs == tt_model_macs(m), "%s: macs %.17g vs %.17g", what, d->macs,
	      tt_model_macs(m));
	CHECK(d->train_macs == tt_model_train_macs(m), "%s: train macs %.17g vs %.17g",
	      what, d->train_macs, tt_model_train_macs(m));
	CHECK(d->gates == tt_model_gates(m), "%s: gates %d vs %d", what, d->gates,
	      tt_model_gates(m));
	CHECK(d->total == mem->current, "%s: total %zu vs %zu", what, d->total,
	      mem->current);
	int bad = 0;
	for (int s = 0; s <= TT_MEM_MAX_STAGES; s++)
		for (int k = 0; k < TT_MEM_KINDS; k++)
			if (d->bytes[s][k] != mem->bytes[s][k] && bad++ < 4)
				CHECK(0, "%s: row %d %s: %zu vs %zu", what, s, tt_memkinds[k].name,
				      d->bytes[s][k], mem->bytes[s][k]);
	CHECK(bad == 0, "%s: %d rows differ", what, bad);
	for (int s = 0; s < d->stages && s < tt_model_stages(m); s++) {
		tt_stage_mem a = d->stage[s], b;
		tt_model_stage_mem(m, s, &b);
		CHECK(strcmp(a.name, b.name) == 0 && a.frozen == b.frozen &&
		      a.params == b.params && a.grads == b.grads && a.optim == b.optim &&
		      a.activations == b.activations,
		      "%s stage %d: %s/%s frozen %d/%d params %zu/%zu grads %zu/%zu "
		      "optim %zu/%zu act %zu/%zu", what, s, a.name, b.name, a.frozen,
		      b.frozen, a.params, b.params, a.grads, b.grads, a.optim, b.optim,
		      a.activations, b.activations);
	}
	size_t total = mem->current;
	tt_model_free(m);
	free(d);
	return total;
}

static void describe_case(const char *spec, int h, int z, int slots, int batch_n,
                          int gates)
{
	describe_case_ig(spec, h, z, slots, batch_n, gates, 0);
}

static void describe_matches_build(void)
{
	static const char *const specs[] = { "mlp:16,8", "mlp:512,512,512", "cnn:4,4",
	                                     "cnn:8,16,32", "resnet:1,1:w4",
	                                     "resnet:2,2,2" };
	static const int zs[] = { 0, 1, 2, 3, 99 };
	static const int batches[] = { 1, 6, 32 };
	for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
		for (size_t j = 0; j < sizeof zs / sizeof *zs; j++)
			for (int slots = 0; slots <= 2; slots++)
				for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
					for (int gates = 0; gates <= 1; gates++)
						describe_case(specs[i], 8, zs[j], slots, batches[b],
						              gates);
	/* Fashion-MNIST's shape, the explorer's and the runner's case */
	describe_case("resnet:2,2,2", 28, 0, 2, 64, 0);
	describe_case("resnet:2,2,2:w8", 28, 3, 1, 16, 1);
	describe_case("cnn:8,16", 28, 0, 0, 64, 0);
	describe_case("mlp:512,512,512", 28, 1, 2, 128, 0);
}

/*
 * With input_grad (every stage trained) the description still equals
 * the build.  The pool then holds the input's gradient: an mlp whose
 * input (64 floats an example) is wider than anything it writes (16)
 * books more, a cnn whose stem output (256) already outgrows its input
 * books not a byte more.
 */
static void describe_input_grad(void)
{
	static const char *const specs[] = { "mlp:16,8", "mlp:512,512,512", "cnn:4,4",
	                                     "cnn:8,16,32", "resnet:1,1:w4",
	                                     "resnet:2,2,2" };
	static const int zs[] = { 0, 99 };
	static const int batches[] = { 1, 6, 32 };
	for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
		for (size_t j = 0; j < sizeof zs / sizeof *zs; j++)
			for (int slots = 0; slots <= 2; slots += 2)
				for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
					for (int gates = 0; gates <= 1; gates++)
						describe_case_ig(specs[i], 8, zs[j], slots, batches[b],
						                 gates, 1);
	describe_case_ig("resnet:2,2,2", 28, 0, 2, 64, 0, 1);
	describe_case_ig("mlp:256,128", 28, 0, 2, 100, 1, 1);
	size_t with = describe_case_ig("mlp:16,8", 8, 0, 0, BATCH, 0, 1);
	size_t without = describe_case_ig("mlp:16,8", 8, 0, 0, BATCH, 0, 0);
	CHECK(with > without, "mlp:16,8: %zu bytes with input_grad, %zu without", with,
	      without);
	with = describe_case_ig("cnn:4,4", 8, 0, 0, BATCH, 0, 1);
	without = describe_case_ig("cnn:4,4", 8, 0, 0, BATCH, 0, 0);
	CHECK(with == without, "cnn:4,4: %zu bytes with input_grad, %zu without", with,
	      without);
}

/* input_grad with a frozen prefix: TT_EINPUT from describe and create,
 * naming the setting; every stage trainable by count (z = stages) is
 * all. */
static void input_grad_refused(void)
{
	tt_model_desc *d = malloc(sizeof *d);
	TT_ASSERT(d);
	tt_err err = { 0 };
	tt_model_config cfg = { .spec = "resnet:1,1:w4", .h = H, .w = H, .c = 1,
	                        .classes = CLASSES, .batch = BATCH, .trainable = 2,
	                        .be = be, .input_grad = 1 };
	tt_model *m = NULL;
	CHECK(tt_model_describe(&cfg, d, &err) == TT_EINPUT && strstr(err.msg, "input_grad"),
	      "describe, z=2: %s", err.msg);
	err.msg[0] = 0;
	CHECK(tt_model_create(&cfg, &m, &err) == TT_EINPUT && !m &&
	      strstr(err.msg, "input_grad"), "create, z=2: %s", err.msg);
	tt_model_free(m);
	m = NULL;
	cfg.spec = "mlp:16,8";
	cfg.trainable = 1;
	CHECK(tt_model_create(&cfg, &m, &err) == TT_EINPUT && !m, "mlp z=1: %s", err.msg);
	tt_model_free(m);
	m = NULL;
	cfg.trainable = 3;
	CHECK(tt_model_create(&cfg, &m, &err) == TT_OK && m, "mlp z=3 of 3: %s", err.msg);
	CHECK(m && tt_model_trainable(m) == 3, "mlp z=3 of 3: trainable %d",
	      m ? tt_model_trainable(m) : -1);
	tt_model_free(m);
	free(d);
}

/* A bad spec or shape is refused as tt_model_create refuses it. */
static void describe_refuses(void)
{
	tt_model_desc *d = malloc(sizeof *d);
	TT_ASSERT(d);
	tt_err err = { 0 };
	tt_model_config cfg = { .spec = "resnet:2,x", .h = H, .w = H, .c = 1,
	                        .classes = CLASSES, .batch = BATCH, .be = be };
	CHECK(tt_model_describe(&cfg, d, &err) == TT_EINPUT && strstr(err.msg, "resnet:2,x"),
	      "bad spec: %s", err.msg);
	cfg.spec = "cnn:4,4,4,4";
	CHECK(tt_model_describe(&cfg, d, &err) == TT_EINPUT, "4 pools of 8x8: %s", err.msg);
	cfg.spec = "mlp:16";
	cfg.batch = 0;
	CHECK(tt_model_describe(&cfg, d, &err) == TT_EINPUT, "batch 0: %s", err.msg);
	/* no backend named: sized with the cpu backend's workspace */
	cfg.batch = BATCH;
	cfg.spec = "resnet:1,1:w4";
	cfg.be = NULL;
	CHECK(tt_model_describe(&cfg, d, &err) == TT_OK && d->stages == 4,
	      "no backend: %s", err.msg);
	free(d);
}

int main(void)
{
	be = tt_backend_get("cpu");
	if (!be) {
		printf("FAIL backend_cpu\n");
		return 1;
	}
	count_be = *be;
	count_be.alloc = count_alloc;
	TT_RUN(weights_copy_mlp);
	TT_RUN(weights_copy_cnn);
	TT_RUN(weights_copy_resnet);
	TT_RUN(weights_copy_gated);
	TT_RUN(weights_perturbed);
	TT_RUN(weights_keep_stats);
	TT_RUN(weights_suffix);
	TT_RUN(describe_matches_build);
	TT_RUN(describe_refuses);
	TT_RUN(describe_input_grad);
	TT_RUN(input_grad_refused);
	TT_EXIT();
}
