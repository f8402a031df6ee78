/*
 * test_evograd_method.c — EvoGrad as a training method (method_evograd.c):
 * its meta-step against a reimplementation and against central
 * differences, the shared frozen prefix, and resuming.
 *
 * The meta-step is driven through the method's own table: the test sets
 * up a tt_method_run by hand, puts a training batch in the model, runs
 * the step's forward and calls after_step, whose hyperparameter update
 * with plain SGD at a known rate gives the hypergradient back
 * (hg = (lam0 - lam1) / lr).  It is checked
 *   - against the same estimator assembled here from the model's calls,
 *     each copy forwarded from the input (the frozen prefix recomputed),
 *     where the method forwards the copies from the prefix's output once:
 *     equal to rounding;
 *   - against central differences of L_V(theta*(lam)) with the noise
 *     fixed: the exact derivative through the softmax weights, which is
 *     what EvoGrad's estimator is (methods.md section 3), for the weight
 *     decay and for the rotation angle (through the bilinear resampling
 *     and the input gradient).
 * Resuming: a run interrupted by a checkpoint and resumed ends with the
 * uninterrupted run's hyperparameters, path and validation loss, bit for
 * bit, for wd and mwn.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "evograd.h"
#include "method.h"
#include "test.h"
#include "train.h"
#include "transform.h"

#define B 32

static tt_train_data data;
static tt_train_config base;

static void config(tt_train_config *c, const char *spec, int trainable, int what)
{
	*c = base;
	c->model = spec;
	c->trainable = trainable;
	c->evograd.what = what;
	c->evograd.opt = TT_EVO_SGD;
	c->evograd.sigma = 0.05;
	c->evograd.tau = 0.5;
	c->evograd.k = 3;
}

/* A model as the run would build it for c. */
static tt_model *model_for(const tt_train_config *c)
{
	const tt_dataset *tr = &data.train;
	tt_model_config mc = { .spec = c->model, .h = tr->h, .w = tr->w, .c = tr->c,
	                       .classes = tr->classes, .batch = B,
	                       .trainable = c->trainable, .optim_slots = 1,
	                       .seed = c->seed, .be = tt_backend_get("cpu") };
	tt_method_evograd.model_config(c, &mc);
	tt_model *m = NULL;
	tt_err err = { 0 };
	int rc = tt_model_create(&mc, &m, &err);
	CHECK(rc == TT_OK, "%s: %s", c->model, err.msg);
	return m;
}

static float xraw[B * 28 * 28];
static int yraw[B];

/* The first B training examples, turned by deg, into the model's input. */
static void train_batch(tt_model *m, double deg)
{
	const tt_dataset *tr = &data.train;
	int idx[B];
	size_t e = (size_t)B * tr->h * tr->w * tr->c;
	float *x = malloc(e * sizeof *x);
	for (int i = 0; i < B; i++)
		idx[i] = i;
	tt_data_batch(tr, idx, B, 0, NULL, xraw, yraw);
	tt_xform_rotate(xraw, B, tr->h, tr->w, tr->c, deg, -tr->mean / tr->std, x, NULL);
	memcpy(tt_model_input(m), deg != 0 ? x : xraw, e * sizeof *x);
	memcpy(tt_model_labels(m), yraw, sizeof yraw);
	free(x);
}

/* The method's hypergradient at the model's weights: one meta-step with
 * SGD at rate lr, read back from the value it reports. */
static double method_hg(const tt_train_config *c, tt_model *m, double lr)
{
	tt_train_config cc = *c;
	cc.evograd.lr = lr;
	tt_optim_config opt = cc.opt;
	tt_method_run run = { .c = &cc, .d = &data, .m = m, .opt = &opt, .step = 0,
	                      .total = 100, .spe = 10, .batch = B };
	void *st = NULL;
	tt_err err = { 0 };
	double hg = NAN;
	int rc = tt_method_evograd.setup(&run, &st, &err);
	CHECK(rc == TT_OK, "setup: %s", err.msg);
	if (rc)
		goto out;
	tt_method_report rep = { 0 };
	tt_method_evograd.report(st, &run, 0, &rep);
	double v0 = rep.values[0].value;
	train_batch(m, 0);
	CHECK(tt_method_evograd.before_step(st, &run, &err) == TT_OK, "%s", err.msg);
	tt_model_forward(m, tt_model_input(m), B, 1);
	run.step = 1;
	tt_method_evograd.after_step(st, &run);
	tt_method_evograd.report(st, &run, 0, &rep);
	double v1 = rep.values[0].value;
	hg = c->evograd.what == TT_EVO_WD ? (log(v0) - log(v1)) / lr : (v0 - v1) / lr;
	if (c->evograd.what == TT_EVO_WD)
		CHECK_CLOSE(opt.weight_decay, v1, 0, 1e-6, "the optimizer's weight decay");
out:
	tt_method_evograd.free(st);
	return hg;
}

/*
 * L_V(theta*) at log weight decay u (wd) or angle a (rotate), with the
 * noise of step 0 fixed, each copy forwarded from the input; with want,
 * also the estimator's hypergradient assembled from the same calls.
 */
static double lv(const tt_train_config *c, tt_model *m, double x, double *hg_out)
{
	const tt_evo_config *ev = &c->evograd;
	int K = ev->k, rot = ev->what == TT_EVO_ROTATE;
	size_t n = tt_model_ntrainable(m);
	const float *theta = tt_model_params(m) + tt_model_trainable_offset(m);
	float *copy = malloc(n * sizeof *copy), *g = malloc(n * sizeof *g);
	const tt_dataset *tr = &data.train;
	size_t e = (size_t)B * tr->h * tr->w * tr->c;
	float *dxda = malloc(e * sizeof *dxda), *xr = malloc(e * sizeof *xr);
	double l[64], w[64], d[64], dl[64];
	double wd = rot ? c->opt.weight_decay : exp(x);
	for (int k = 0; k < K; k++) {
		tt_evo_key key = { c->seed, 0, (uint32_t)k, ev->noise };
		double sq = tt_evo_perturb(&key, (float)ev->sigma, theta, n, copy);
		train_batch(m, 0);
		if (rot) {
			tt_xform_rotate(xraw, B, tr->h, tr->w, tr->c, x, -tr->mean / tr->std, xr,
			                dxda);
			memcpy(tt_model_input(m), xr, e * sizeof *xr);
		}
		tt_model_weights wk = { .suffix = copy, .keep_stats = 1 };
		tt_model_forward_on(m, &wk, tt_model_input(m), B, 1);
		if (rot) {
			l[k] = tt_model_loss(m, tt_model_labels(m), B, 0, 1, NULL);
			tt_model_backward_into(m, g);
			const float *dx = tt_model_input_grad(m);
			double s = 0;
			for (size_t i = 0; i < e; i++)
				s += (double)dx[i] * dxda[i];
			dl[k] = s;
		} else {
			l[k] = tt_model_loss(m, tt_model_labels(m), B, 0, 0, NULL) + wd * sq / 2;
			dl[k] = wd * sq / 2;
		}
	}
	double out = NAN;
	if (tt_evo_weights(l, K, ev->tau, w) == 0) {
		memcpy(copy, theta, n * sizeof *copy);
		float *eps = malloc(n * sizeof *eps);
		for (int k = 0; k < K; k++) {
			tt_evo_key key = { c->seed, 0, (uint32_t)k, ev->noise };
			tt_evo_noise(&key, (float)ev->sigma, 0, n, eps);
			for (size_t i = 0; i < n; i++)
				copy[i] += (float)w[k] * eps[i];
		}
		free(eps);
		const tt_dataset *v = &data.val;
		int idx[B], y[B];
		float *vx = malloc(e * sizeof *vx);
		for (int i = 0; i < B; i++)
			idx[i] = i;
		tt_data_batch(v, idx, B, 0, NULL, vx, y);
		memcpy(tt_model_input(m), vx, e * sizeof *vx);
		memcpy(tt_model_labels(m), y, sizeof y);
		free(vx);
		tt_model_weights ws = { .suffix = copy, .keep_stats = 1 };
		tt_model_forward_on(m, &ws, tt_model_input(m), B, 1);
		out = tt_model_loss(m, tt_model_labels(m), B, 0, 1, NULL);
		if (hg_out) {
			tt_model_backward_into(m, g);
			for (int k = 0; k < K; k++) {
				tt_evo_key key = { c->seed, 0, (uint32_t)k, ev->noise };
				d[k] = tt_evo_dot(&key, (float)ev->sigma, g, 0, n);
			}
			tt_evo_hypergrad(K, 1, w, d, dl, ev->tau, hg_out);
		}
	}
	free(copy);
	free(g);
	free(dxda);
	free(xr);
	return out;
}

/* The method, its reassembly with the prefix recomputed, and central
 * differences, for one configuration. */
static void check_hg(const char *spec, int trainable, int what, double x0, double h,
                     double rtol_fd)
{
	tt_train_config c;
	config(&c, spec, trainable, what);
	if (what == TT_EVO_ROTATE)
		c.rotate = x0;
	else
		c.opt.weight_decay = (float)exp(x0);
	x0 = what == TT_EVO_ROTATE ? c.rotate : log(c.opt.weight_decay);
	tt_model *m = model_for(&c);
	if (!m)
		return;
	double hg = method_hg(&c, m, 1e-3), again = NAN;
	lv(&c, m, x0, &again);
	double fd = (lv(&c, m, x0 + h, NULL) - lv(&c, m, x0 - h, NULL)) / (2 * h);
	printf("  %s z=%d %s: method %.6g, reassembled %.6g, central difference %.6g\n",
	       spec, trainable, what == TT_EVO_WD ? "wd" : "rotate", hg, again, fd);
	CHECK(isfinite(hg) && hg != 0, "%s: hypergradient %g", spec, hg);
	CHECK_CLOSE(hg, again, 1e-9, 1e-4, "the method against its reassembly");
	if (rtol_fd > 0)
		CHECK_CLOSE(hg, fd, 1e-7, rtol_fd, "the method against central differences");
	tt_model_free(m);
}

static void wd_hypergradient_mlp_frozen_prefix(void)
{
	/* two of three stages train: the method forwards its copies from the
	 * prefix's output, the reassembly from the input */
	check_hg("mlp:32,24", 2, TT_EVO_WD, log(0.05), 0.05, 0.03);
}

static void wd_hypergradient_cnn_frozen_prefix(void)
{
	check_hg("cnn:4,6", 2, TT_EVO_WD, log(0.05), 0.05, 0.03);
}

/* Bilinear resampling is piecewise smooth: as the angle moves, sample
 * points cross pixel-cell borders, where the derivative jumps, so the
 * central differences of the angle sit a few percent off the analytic
 * derivative at any step that float32 resolves.  On the mlp that is
 * small against the hypergradient; through the cnn's max pooling (its
 * argmax switches too) the hypergradient, a difference between copies,
 * is of the size of that noise, so there the method is checked against
 * its reassembly only: the chain dl/dx . dx/da it shares with it is
 * exact, the model's input gradient and the rotation's derivative being
 * each checked against differences (test_grad, test_transform). */
static void rotate_hypergradient_mlp(void)
{
	check_hg("mlp:32", 0, TT_EVO_ROTATE, -20.0, 0.01, 0.1);
}

static void rotate_hypergradient_cnn(void)
{
	check_hg("cnn:4,6", 0, TT_EVO_ROTATE, 10.0, 0.01, 0);
}

/* ---- resume ---------------------------------------------------------- */

typedef struct keep {
	long at;
	void *blob;
	size_t len;
} keep;

static int on_ck(void *ud, long step, const void *blob, size_t len)
{
	keep *k = ud;
	if (step == k->at) {
		free(k->blob);
		k->blob = malloc(len);
		memcpy(k->blob, blob, len);
		k->len = len;
	}
	return 0;
}

static void resume_same(int what)
{
	tt_train_config c;
	config(&c, "mlp:32,16", 0, what);
	c.steps = 24;
	c.evograd.opt = what == TT_EVO_MWN ? TT_EVO_NESTEROV : TT_EVO_ADAM;
	c.evograd.lr = what == TT_EVO_WD ? 0.05 : 0.01;
	tt_train_result full, half, rest;
	tt_err err = { 0 };
	keep k = { .at = 11 };
	tt_train_hooks h = { .ud = &k, .checkpoint_every = 11, .on_checkpoint = on_ck };
	int rc = tt_train_run(&c, &data, &h, &full, &err);
	CHECK(rc == TT_OK, "full run: %s", err.msg);
	CHECK(k.blob != NULL, "no checkpoint at step %ld", k.at);
	if (rc || !k.blob)
		return;
	c.resume = k.blob;
	c.resume_len = k.len;
	rc = tt_train_run(&c, &data, NULL, &rest, &err);
	CHECK(rc == TT_OK, "resumed run: %s", err.msg);
	if (rc == TT_OK) {
		CHECK(full.evograd.on && rest.evograd.on, "evograd result missing");
		CHECK(rest.steps == full.steps, "steps %ld vs %ld", rest.steps, full.steps);
		CHECK(rest.val_loss == full.val_loss, "val loss %.9g vs %.9g", rest.val_loss,
		      full.val_loss);
		for (int i = 0; i < full.evograd.nvalues; i++)
			CHECK(rest.evograd.value[i].value == full.evograd.value[i].value,
			      "%s: %.9g vs %.9g", full.evograd.value[i].name,
			      rest.evograd.value[i].value, full.evograd.value[i].value);
		CHECK(rest.evograd.npath == full.evograd.npath, "path %d vs %d points",
		      rest.evograd.npath, full.evograd.npath);
		size_t np = (size_t)full.evograd.npath * (1 + full.evograd.nvalues);
		CHECK(rest.evograd.npath == full.evograd.npath &&
		      memcmp(rest.evograd.path, full.evograd.path, np * sizeof(double)) == 0,
		      "the paths differ");
		CHECK(full.evograd.meta_steps == 24 && rest.evograd.meta_steps == 24,
		      "meta-steps %ld and %ld, expected 24", full.evograd.meta_steps,
		      rest.evograd.meta_steps);
		/* it learned something: the value moved from its start */
		CHECK(full.evograd.path[1] != full.evograd.path[np - full.evograd.nvalues],
		      "the first value did not move");
		tt_train_result_free(&rest);
	}
	(void)half;
	tt_train_result_free(&full);
	free(k.blob);
}

static void resume_wd_gives_the_same_run(void) { resume_same(TT_EVO_WD); }
static void resume_mwn_gives_the_same_run(void) { resume_same(TT_EVO_MWN); }

/* The extra bytes are the two suffix buffers, booked under the method's
 * kind, whatever K. */
static void extra_memory_is_two_suffixes(void)
{
	for (int K = 2; K <= 8; K *= 4) {
		tt_train_config c;
		config(&c, "mlp:32,16", 2, TT_EVO_WD);
		c.evograd.k = K;
		c.steps = 2;
		tt_train_result r;
		tt_err err = { 0 };
		int rc = tt_train_run(&c, &data, NULL, &r, &err);
		CHECK(rc == TT_OK, "%s", err.msg);
		if (rc)
			continue;
		size_t ntrain = (size_t)(32 * 16 + 16) + (16 * 10 + 10);
		CHECK(r.mem[TT_MEM_METHOD] == 2 * ntrain * sizeof(float),
		      "K=%d: %zu method bytes, expected %zu", K, r.mem[TT_MEM_METHOD],
		      2 * ntrain * sizeof(float));
		CHECK(r.evograd.extra_bytes == r.mem[TT_MEM_METHOD], "extra bytes %zu",
		      r.evograd.extra_bytes);
		tt_train_result_free(&r);
	}
}

/* Options the method refuses, with the option named. */
static void refuses_what_it_cannot_do(void)
{
	static const struct { const char *what; const char *needle; } cases[] = {
		{ "gates", "--gates" }, { "rotate-frozen", "train" },
		{ "rotate-without", "--rotate" }, { "wd0", "--weight-decay" },
		{ "clean-val", "--clean-val" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		tt_train_config c;
		config(&c, "mlp:32,16", 0, TT_EVO_WD);
		c.steps = 1;
		const char *w = cases[i].what;
		if (!strcmp(w, "gates"))
			c.gates.strength = 1;
		else if (!strcmp(w, "rotate-frozen"))
			c.evograd.what = TT_EVO_ROTATE, c.trainable = 1;
		else if (!strcmp(w, "rotate-without"))
			c.rotate = 30;
		else if (!strcmp(w, "wd0"))
			c.opt.weight_decay = 0;
		else
			c.clean_val = data.val.n + 1;
		tt_train_result r;
		tt_err err = { 0 };
		int rc = tt_train_run(&c, &data, NULL, &r, &err);
		CHECK(rc == TT_EINPUT, "%s: rc %d", w, rc);
		CHECK(strstr(err.msg, cases[i].needle) != NULL, "%s: '%s' does not name %s", w,
		      err.msg, cases[i].needle);
		if (rc == TT_OK)
			tt_train_result_free(&r);
	}
}

int main(void)
{
	tt_err err = { 0 };
	tt_train_defaults(&base);
	base.data = "synthetic";
	base.train_size = 256;
	base.val_size = 128;
	base.batch = B;
	base.threads = 1;
	base.seed = 7;
	if (tt_train_data_load(&base, &data, &err)) {
		fprintf(stderr, "data: %s\n", err.msg);
		return 1;
	}
	TT_RUN(wd_hypergradient_mlp_frozen_prefix);
	TT_RUN(wd_hypergradient_cnn_frozen_prefix);
	TT_RUN(rotate_hypergradient_mlp);
	TT_RUN(rotate_hypergradient_cnn);
	TT_RUN(resume_wd_gives_the_same_run);
	TT_RUN(resume_mwn_gives_the_same_run);
	TT_RUN(extra_memory_is_two_suffixes);
	TT_RUN(refuses_what_it_cannot_do);
	tt_train_data_free(&data);
	TT_EXIT();
}
