/*
 * test_fcache.c — the frozen-prefix feature cache (engine/fcache.h) and the
 * fixed frozen batch norms that make a prefix cacheable.
 *
 * The cache itself: its byte budget holds (a slot that does not fit is
 * refused, unheld slots are evicted least recently used first, held ones
 * never), hits and misses are counted per example.  In a run: a run with
 * the cache gives the numbers of the run without it (to 1e-6); it
 * computes each example's prefix once (the hits and misses are exactly
 * those of one computing epoch and evaluation), reports only what it
 * computed as train_macs, shares the prefix with a later run of another
 * batch size, and leaves alone what it cannot cache (augmented input,
 * batch-statistics norms in the prefix).  In the model: a fixed frozen
 * prefix computes in a training forward what it computes in evaluation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "fcache.h"
#include "model.h"
#include "test.h"
#include "train.h"

/* ---- the cache alone ------------------------------------------------------ */

static void budget_and_eviction(void)
{
	/* 100 examples of 10 floats: 4000 bytes of features and 100 flags */
	const size_t slot = 100 * 10 * sizeof(float) + 100;
	tt_fcache *c = tt_fcache_new(2 * slot + 50);
	int set_a, set_b, set_c;
	tt_fcache_slot *a = tt_fcache_acquire(c, 1, &set_a, 100, 10);
	tt_fcache_slot *b = tt_fcache_acquire(c, 1, &set_b, 100, 10);
	CHECK(a && b && a != b, "two slots fit");
	tt_fcache_stats st;
	tt_fcache_stats_get(c, &st);
	CHECK(st.bytes == 2 * slot && st.slots == 2, "%zu bytes, %d slots", st.bytes, st.slots);
	/* both held: a third cannot evict either */
	CHECK(tt_fcache_acquire(c, 2, &set_c, 100, 10) == NULL, "a third slot fit");
	tt_fcache_stats_get(c, &st);
	CHECK(st.refused == 1 && st.bytes <= st.budget, "refused %lld", st.refused);
	/* the same slot again is the same slot */
	CHECK(tt_fcache_acquire(c, 1, &set_a, 100, 10) == a, "slot a found again");
	tt_fcache_release(c, a);
	/* a is still held once more; b released: b goes, the least recently
	 * used of the unheld */
	tt_fcache_release(c, b);
	tt_fcache_slot *cc = tt_fcache_acquire(c, 2, &set_c, 100, 10);
	CHECK(cc != NULL, "the third slot after a release");
	tt_fcache_stats_get(c, &st);
	CHECK(st.evicted == 1 && st.slots == 2 && st.bytes <= st.budget,
	      "evicted %lld, %d slots, %zu of %zu bytes", st.evicted, st.slots, st.bytes,
	      st.budget);
	/* a kept its contents; b is gone (a new b starts empty) */
	float row[10], out[10];
	for (int i = 0; i < 10; i++)
		row[i] = (float)i + 0.5f;
	int idx = 7;
	tt_fcache_put(c, a, &idx, 1, row);
	CHECK(tt_fcache_get(c, a, &idx, 1, out) == 1 && !memcmp(out, row, sizeof row),
	      "a row comes back");
	int two[2] = { 7, 8 };
	float o2[20];
	CHECK(tt_fcache_get(c, a, two, 2, o2) == 0, "a batch with a missing row is a miss");
	tt_fcache_stats_get(c, &st);
	CHECK(st.hits == 1 && st.misses == 2, "hits %lld misses %lld", st.hits, st.misses);
	/* larger than the whole budget: refused, nothing evicted */
	CHECK(tt_fcache_acquire(c, 3, &set_c, 1000, 10) == NULL, "a slot past the budget");
	tt_fcache_release(c, a);
	tt_fcache_release(c, cc);
	/* statistics entries count against the budget too */
	float s[4] = { 1, 2, 3, 4 }, s2[4] = { 0 };
	tt_fcache_state_put(c, 99, s, 4);
	CHECK(tt_fcache_state_get(c, 99, s2, 4) == 1 && !memcmp(s, s2, sizeof s), "state");
	CHECK(tt_fcache_state_get(c, 98, s2, 4) == 0, "another key's state");
	tt_fcache_stats_get(c, &st);
	CHECK(st.bytes <= st.budget, "%zu of %zu bytes", st.bytes, st.budget);
	tt_fcache_free(c);
}

/* ---- the model: a fixed prefix ------------------------------------------- */

/* The boundary after a training forward and after an evaluation forward
 * of the same batch: equal when the prefix's norms are fixed, different
 * when they normalise with the batch's statistics. */
static void fixed_prefix_is_evaluation(void)
{
	for (int fixed = 0; fixed <= 1; fixed++) {
		tt_model_config mc = { .spec = "cnn:4,8", .h = 12, .w = 12, .c = 1, .classes = 3,
		                       .batch = 16, .trainable = 1, .optim_slots = 1, .seed = 3,
		                       .be = tt_backend_get("cpu"),
		                       .frozen_bn = fixed ? TT_FROZEN_BN_FIXED
		                                          : TT_FROZEN_BN_BATCH };
		tt_model *m;
		tt_err e = {0};
		if (tt_model_create(&mc, &m, &e)) {
			CHECK(0, "%s", e.msg);
			return;
		}
		CHECK(tt_model_prefix_pure(m) == fixed, "pure %d with fixed %d",
		      tt_model_prefix_pure(m), fixed);
		float *x = tt_model_input(m);
		for (int i = 0; i < 16 * 144; i++)
			x[i] = (float)sin(i * 0.37) * 2 + 1;
		/* statistics other than 0 and 1, as a calibration sets */
		for (int t = 0; t < 3; t++)
			tt_model_calibrate(m, x, 16, t);
		size_t per;
		float *bd = tt_model_boundary(m, &per);
		tt_model_forward(m, x, 16, 0);
		float *ev = malloc(16 * per * sizeof *ev);
		memcpy(ev, bd, 16 * per * sizeof *ev);
		tt_model_forward(m, x, 16, 1);
		int same = !memcmp(ev, bd, 16 * per * sizeof *ev);
		CHECK(same == fixed, "fixed %d: training and evaluation prefix %s", fixed,
		      same ? "agree" : "differ");
		/* the trainable stages from a boundary the caller filled: the
		 * logits of the whole forward */
		const float *lg = tt_model_forward(m, x, 16, 0);
		float logits[16 * 3];
		memcpy(logits, lg, sizeof logits);
		if (fixed) {
			memcpy(bd, ev, 16 * per * sizeof *ev);
			lg = tt_model_forward_boundary(m, 16, 0);
			CHECK(!memcmp(logits, lg, sizeof logits), "forward from the boundary");
		}
		free(ev);
		tt_model_free(m);
	}
}

/* ---- runs ------------------------------------------------------------------ */

static void config(tt_train_config *c, const char *model, int z)
{
	tt_train_defaults(c);
	c->model = model;
	c->data = "synthetic";
	c->train_size = 200; /* 7 steps an epoch at batch 32, the last of 8 */
	c->val_size = 72;
	c->batch = 32;
	c->epochs = 3;
	c->trainable = z;
	c->threads = 1;
	c->seed = 5;
	c->test = 1;
}

static int run(const tt_train_config *c, const tt_train_data *d, tt_train_result *r)
{
	tt_err e = {0};
	int rc = tt_train_run(c, d, NULL, r, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	return rc;
}

/* Equal to 1e-6 relative: a cached example's prefix output was computed
 * in another batch than the one it trains in, and OpenBLAS may sum a
 * row in another order when the rows around it differ (a batch's last,
 * shorter block), which moves the last digits and nothing else (as the
 * golden fixtures' tolerance says). */
static void same_numbers(const tt_train_result *a, const tt_train_result *b, const char *what)
{
	char w[96];
	snprintf(w, sizeof w, "%s: val_loss", what);
	CHECK_CLOSE(b->val_loss, a->val_loss, 0, 1e-6, w);
	snprintf(w, sizeof w, "%s: val_acc", what);
	CHECK_CLOSE(b->val_acc, a->val_acc, 0, 1e-6, w);
	snprintf(w, sizeof w, "%s: train_loss", what);
	CHECK_CLOSE(b->train_loss, a->train_loss, 0, 1e-6, w);
	snprintf(w, sizeof w, "%s: test_acc", what);
	CHECK_CLOSE(b->test_acc, a->test_acc, 0, 1e-6, w);
}

static void run_with_and_without(const char *model, int z)
{
	tt_train_config c;
	config(&c, model, z);
	tt_train_data d;
	tt_err e = {0};
	if (tt_train_data_load(&c, &d, &e)) {
		CHECK(0, "%s", e.msg);
		return;
	}
	tt_train_result off, on, again, other;
	if (run(&c, &d, &off)) {
		tt_train_data_free(&d);
		return;
	}
	CHECK(!off.fcache && off.fcache_hits == 0, "no cache, yet one was used");
	c.fcache = tt_fcache_new((size_t)64 << 20);
	if (run(&c, &d, &on) == TT_OK) {
		CHECK(on.fcache, "%s z=%d: the cache was not used", model, z);
		same_numbers(&off, &on, "cache on");
		/* every example of each set computed once, when the run opens;
		 * every step and evaluation served */
		long long n = d.train.n, v = d.val.n, t = d.test.n;
		CHECK(on.fcache_misses == n + v + t, "misses %lld, expected %lld",
		      on.fcache_misses, n + v + t);
		CHECK(on.fcache_hits == c.epochs * (n + v) + t, "hits %lld, expected %lld",
		      on.fcache_hits, c.epochs * (n + v) + t);
		/* the compute reported: the prefix's forward once per example */
		tt_model_config mc = { .spec = model, .h = d.train.h, .w = d.train.w,
		                       .c = d.train.c, .classes = d.train.classes, .batch = 32,
		                       .trainable = z, .optim_slots = 1, .seed = 5,
		                       .be = tt_backend_get("cpu"), .frozen_bn = c.frozen_bn };
		tt_model *m;
		if (tt_model_create(&mc, &m, &e) == TT_OK) {
			double full = tt_model_train_macs(m), pre = tt_model_prefix_macs(m);
			int calib = tt_model_prefix_nstate(m) ? (int)(n / 32) * 32 : 0;
			double want = (calib * pre + c.epochs * n * full - (c.epochs - 1) * n * pre) /
			              (c.epochs * n);
			CHECK_CLOSE(on.train_macs, want, 0, 1e-9, "train_macs with the cache");
			CHECK(on.train_macs < off.train_macs, "%g not below %g", on.train_macs,
			      off.train_macs);
			tt_model_free(m);
		} else {
			CHECK(0, "%s", e.msg);
		}
		tt_train_result_free(&on);
	}
	/* a second run with the same prefix, another batch size: the prefix
	 * (its calibration too) is the first run's, every example a hit */
	c.batch = 40;
	if (run(&c, &d, &again) == TT_OK) {
		CHECK(again.fcache_misses == 0 && again.fcache_hits > 0,
		      "second run: %lld hits, %lld misses", again.fcache_hits,
		      again.fcache_misses);
		tt_train_config c0 = c;
		c0.fcache = NULL;
		if (run(&c0, &d, &other) == TT_OK) {
			same_numbers(&other, &again, "second run");
			tt_train_result_free(&other);
		}
		tt_train_result_free(&again);
	}
	tt_fcache_free(c.fcache);

	/* a cache too small for any set: recomputed, the same numbers */
	c.batch = 32;
	c.fcache = tt_fcache_new(1000);
	if (run(&c, &d, &on) == TT_OK) {
		CHECK(on.fcache && on.fcache_hits == 0 && on.fcache_misses == 0,
		      "tiny cache: %lld hits, %lld misses", on.fcache_hits, on.fcache_misses);
		same_numbers(&off, &on, "tiny cache");
		tt_fcache_stats st;
		tt_fcache_stats_get(c.fcache, &st);
		CHECK(st.refused >= 3 && st.bytes <= st.budget, "refused %lld, %zu of %zu bytes",
		      st.refused, st.bytes, st.budget);
		tt_train_result_free(&on);
	}
	tt_fcache_free(c.fcache);
	tt_train_result_free(&off);
	tt_train_data_free(&d);
}

static void cnn_fixed(void) { run_with_and_without("cnn:4,8", 1); }
static void resnet_fixed(void) { run_with_and_without("resnet:1,1:w4", 2); }
/* no norm in the prefix: cacheable whatever frozen-bn says */
static void mlp_any(void) { run_with_and_without("mlp:32,16", 1); }

/* What the cache leaves alone: augmented input, a prefix whose norms
 * normalise with the batch, a model with nothing frozen, a prefix too
 * cheap for its output's size (a stem alone, 9 multiply-adds a float). */
static void not_cacheable(void)
{
	tt_train_config c;
	tt_train_data d;
	tt_err e = {0};
	config(&c, "cnn:4,8", 1);
	c.epochs = 1;
	if (tt_train_data_load(&c, &d, &e)) {
		CHECK(0, "%s", e.msg);
		return;
	}
	c.fcache = tt_fcache_new((size_t)64 << 20);
	for (int k = 0; k < 4; k++) {
		tt_train_config ck = c;
		ck.augment = k == 0;
		ck.frozen_bn = k == 1 ? TT_FROZEN_BN_BATCH : TT_FROZEN_BN_FIXED;
		ck.trainable = k == 2 ? 0 : 1;
		if (k == 3) {
			ck.model = "resnet:1,1:w4";
			ck.trainable = 3;
		}
		tt_train_result r;
		if (run(&ck, &d, &r) == TT_OK) {
			CHECK(!r.fcache && r.fcache_hits + r.fcache_misses == 0,
			      "case %d used the cache", k);
			tt_train_result_free(&r);
		}
	}
	tt_fcache_stats st;
	tt_fcache_stats_get(c.fcache, &st);
	CHECK(st.hits + st.misses == 0, "the cache served %lld", st.hits + st.misses);
	tt_fcache_free(c.fcache);
	tt_train_data_free(&d);
}

int main(void)
{
	TT_RUN(budget_and_eviction);
	TT_RUN(fixed_prefix_is_evaluation);
	TT_RUN(cnn_fixed);
	TT_RUN(resnet_fixed);
	TT_RUN(mlp_any);
	TT_RUN(not_cacheable);
	TT_EXIT();
}
