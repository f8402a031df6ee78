/*
 * test_cl_method.c — continual learning as a training method
 * (engine/method_continual.c): the hypernetwork's gradient through the
 * weights it generates into a real model, and the regulariser's at the
 * look-ahead point, against central differences; task ids route to their
 * own tables; the front never changes after experience 1 (bitwise); a
 * run resumed in the middle of the sequence (inside experience 1 and
 * between experiences) ends where the uninterrupted one does, its
 * hypernetwork, snapshot and replay buffer reloaded bit for bit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "ckpt.h"
#include "continual.h"
#include "hypernet.h"
#include "model.h"
#include "test.h"
#include "train.h"

/* ---- the hypernetwork through a model ----------------------------------- */

enum { N = 8, HW = 6, NCLS = 2 };

typedef struct hnm {
	tt_model *m;
	tt_hn_config hc;
	tt_hn_item it[32];
	int nit;
	size_t np, nparams;
	float *psi, *gen, *x;
	int y[N];
} hnm;

/* resnet:1,1:w4 on 6x6x1, the stem frozen: stages 1.. generated */
static void hnm_init(hnm *h)
{
	tt_err err = {0};
	memset(h, 0, sizeof *h);
	tt_model_config mc = { .spec = "resnet:1,1:w4", .h = HW, .w = HW, .c = 1,
	                       .classes = NCLS, .batch = N, .trainable = 3, .seed = 3,
	                       .be = tt_backend_get("cpu") };
	CHECK(tt_model_create(&mc, &h->m, &err) == TT_OK, "%s", err.msg);
	tt_model_tensor tv[16];
	for (int s = 1; s < tt_model_stages(h->m); s++) {
		int n = tt_model_tensors(h->m, s, tv, 16);
		for (int i = 0; i < n; i++) {
			tt_hn_item *o = &h->it[h->nit++];
			o->dst = tv[i].off;
			o->out = tv[i].out;
			o->kind = tv[i].kind == TT_TENSOR_CONV ? TT_HN_CONV
			          : tv[i].kind == TT_TENSOR_DENSE_W ? TT_HN_DENSE : TT_HN_TABLE;
			o->fan = tv[i].kind == TT_TENSOR_CONV ? tv[i].fan : 0;
			if (tv[i].kind == TT_TENSOR_DENSE_W)
				o->out = tv[i].out * tv[i].fan;
			o->init = tv[i].kind == TT_TENSOR_BN_GAMMA;
		}
	}
	h->hc = (tt_hn_config){ .tasks = 3, .emb = 4, .hidden = 6, .u = 5, .ce = 3 };
	h->np = tt_hn_nparams(&h->hc, h->it, h->nit);
	h->nparams = tt_model_nparams(h->m);
	h->psi = malloc(h->np * sizeof(float));
	h->gen = malloc(h->nparams * sizeof(float));
	h->x = malloc((size_t)N * HW * HW * sizeof(float));
	tt_hn_init(&h->hc, h->it, h->nit, h->psi, 5);
	/* the tables off their constants, so their gradients are not special */
	for (size_t i = 0; i < h->np; i++)
		h->psi[i] += 0.05f * (float)sin(1.7 * (double)i);
	memcpy(h->gen, tt_model_params(h->m), h->nparams * sizeof(float));
	for (int i = 0; i < N * HW * HW; i++)
		h->x[i] = (float)sin(0.37 * i) + 0.3f * (float)cos(1.1 * i);
	for (int i = 0; i < N; i++)
		h->y[i] = i % NCLS;
	memcpy(tt_model_labels(h->m), h->y, sizeof h->y);
}

static void hnm_free(hnm *h)
{
	tt_model_free(h->m);
	free(h->psi);
	free(h->gen);
	free(h->x);
}

/* CE of the model on weights generated from psi for task t */
static double hnm_loss(hnm *h, const float *psi, int t, int want_grad)
{
	tt_hn_generate(&h->hc, h->it, h->nit, psi, t, h->gen);
	tt_model_weights w = { .params = h->gen, .keep_stats = 1 };
	tt_model_forward_on(h->m, &w, h->x, N, 1);
	return tt_model_loss(h->m, tt_model_labels(h->m), N, 0, want_grad, NULL);
}

static void hypernet_gradient_through_the_model(void)
{
	hnm h;
	hnm_init(&h);
	size_t toff = tt_model_trainable_offset(h.m), nt = tt_model_ntrainable(h.m);
	float *dg = calloc(h.nparams, sizeof(float)), *dpsi = calloc(h.np, sizeof(float));
	for (int t = 0; t < 3; t += 2) {
		hnm_loss(&h, h.psi, t, 1);
		tt_model_backward_into(h.m, dg + toff);
		CHECK(nt == h.nparams - toff, "the suffix");
		memset(dpsi, 0, h.np * sizeof(float));
		tt_hn_backward(&h.hc, h.it, h.nit, h.psi, t, dg, dpsi);
		int bad = 0, checked = 0, nz = 0, kinks = 0;
		for (size_t i = 0; i < h.np; i += 1 + h.np / 150) {
			/* two step sizes: a ReLU kink inside one of them spoils its
			 * difference, a wrong gradient fails both */
			double fd[2];
			int ok = 0;
			for (int k = 0; k < 2; k++) {
				float keep = h.psi[i], e = k ? 1e-4f : 3e-4f;
				h.psi[i] = keep + e;
				double up = hnm_loss(&h, h.psi, t, 0);
				h.psi[i] = keep - e;
				double dn = hnm_loss(&h, h.psi, t, 0);
				h.psi[i] = keep;
				fd[k] = (up - dn) / (2.0 * e);
				ok |= fabs(fd[k] - dpsi[i]) <= 3e-3 + 5e-2 * fabs(fd[k]);
			}
			checked++;
			nz += fabs(fd[0]) > 1e-4;
			/* the two differences disagree with each other: the loss is
			 * not smooth there (a ReLU switching), nothing to compare */
			if (!ok && fabs(fd[0] - fd[1]) > 1e-3 + 2e-2 * fabs(fd[1])) {
				kinks++;
				continue;
			}
			if (!ok && bad++ < 5)
				CHECK(0, "task %d psi[%zu]: backward %g, central differences %g, %g", t,
				      i, dpsi[i], fd[0], fd[1]);
		}
		CHECK(bad == 0, "task %d: %d of %d coordinates off", t, bad, checked);
		CHECK(kinks <= 3, "task %d: %d of %d coordinates at a kink", t, kinks, checked);
		CHECK(nz > checked / 3, "task %d: only %d of %d differences move the loss",
		      t, nz, checked);
	}
	free(dg);
	free(dpsi);
	hnm_free(&h);
}

/* The look-ahead regulariser at psi' = psi - lr G1, over the model's real
 * items: its gradient (G2) against central differences in psi'. */
static void regulariser_gradient_at_the_look_ahead(void)
{
	hnm h;
	hnm_init(&h);
	size_t span = tt_hn_span(h.it, h.nit);
	float *snap = malloc(h.np * sizeof(float)), *p2 = malloc(h.np * sizeof(float));
	float *g = calloc(h.np, sizeof(float)), *scr = malloc(2 * span * sizeof(float));
	memcpy(snap, h.psi, h.np * sizeof(float));
	for (size_t i = 0; i < h.np; i++)
		p2[i] = h.psi[i] - 1e-2f * (float)cos(0.9 * (double)i);
	int tasks[2] = { 0, 1 };
	double l = tt_hn_reg(&h.hc, h.it, h.nit, snap, p2, tasks, 2, g, scr);
	CHECK(l > 0, "the look-ahead moved nothing: L_H %g", l);
	float *dummy = calloc(h.np, sizeof(float));
	int bad = 0, checked = 0;
	for (size_t i = 0; i < h.np; i += 1 + h.np / 150) {
		float keep = p2[i], e = 1e-3f;
		p2[i] = keep + e;
		double up = tt_hn_reg(&h.hc, h.it, h.nit, snap, p2, tasks, 2, dummy, scr);
		p2[i] = keep - e;
		double dn = tt_hn_reg(&h.hc, h.it, h.nit, snap, p2, tasks, 2, dummy, scr);
		p2[i] = keep;
		double fd = (up - dn) / (2.0 * e);
		checked++;
		if (fabs(fd - g[i]) > 1e-4 + 2e-2 * fabs(fd) && bad++ < 5)
			CHECK(0, "psi'[%zu]: gradient %g, central difference %g", i, g[i], fd);
	}
	CHECK(bad == 0, "%d of %d coordinates off", bad, checked);
	/* task 2 is not among the regularised: its own rows get nothing */
	size_t tab = h.np - 3 * (size_t)NCLS; /* the head bias table, last */
	CHECK(g[tab + 2 * NCLS] == 0 && g[tab + 2 * NCLS + 1] == 0,
	      "an unregularised task's table row has a gradient");
	free(dummy);
	free(snap);
	free(p2);
	free(g);
	free(scr);
	hnm_free(&h);
}

/* Task t's generated weights read its own embedding and table rows: a
 * change to task 1's rows leaves task 0's weights as they were, and
 * changes task 1's. */
static void task_ids_route_to_their_own_rows(void)
{
	hnm h;
	hnm_init(&h);
	float *a = malloc(h.nparams * sizeof(float)), *b = malloc(h.nparams * sizeof(float));
	tt_hn_generate(&h.hc, h.it, h.nit, h.psi, 0, a);
	tt_hn_generate(&h.hc, h.it, h.nit, h.psi, 1, b);
	CHECK(memcmp(a + tt_model_trainable_offset(h.m), b + tt_model_trainable_offset(h.m),
	             (h.nparams - tt_model_trainable_offset(h.m)) * sizeof(float)) != 0,
	      "tasks 0 and 1 got the same weights");
	/* task 1's embedding (row 1 of the first block) and its head bias row */
	int emb = h.hc.emb;
	size_t tab = h.np - 3 * (size_t)NCLS;
	for (int k = 0; k < emb; k++)
		h.psi[emb + k] += 0.5f;
	h.psi[tab + NCLS] += 1.0f;
	float *a2 = malloc(h.nparams * sizeof(float)), *b2 = malloc(h.nparams * sizeof(float));
	memcpy(a2, a, h.nparams * sizeof(float));
	memcpy(b2, b, h.nparams * sizeof(float));
	tt_hn_generate(&h.hc, h.it, h.nit, h.psi, 0, a2);
	tt_hn_generate(&h.hc, h.it, h.nit, h.psi, 1, b2);
	CHECK(memcmp(a, a2, h.nparams * sizeof(float)) == 0,
	      "task 1's rows changed task 0's weights");
	const tt_hn_item *bias = &h.it[h.nit - 1];
	CHECK(b2[bias->dst] == b[bias->dst] + 1.0f, "task 1's bias row did not reach its head");
	free(a);
	free(b);
	free(a2);
	free(b2);
	hnm_free(&h);
}

/* ---- runs --------------------------------------------------------------- */

typedef struct cap {
	long every_step;      /* keep the blob taken at this step */
	void *blob;
	size_t len;
	/* the front's weights at every checkpoint after experience 1 */
	size_t front_n;
	float *front;         /* as first seen after experience 1 */
	long front_from;      /* from this step on the front is frozen */
	int front_seen, front_changed;
} cap;

static int on_ck(void *ud, long step, const void *blob, size_t len)
{
	cap *c = ud;
	if (step == c->every_step) {
		free(c->blob);
		c->blob = malloc(len);
		memcpy(c->blob, blob, len);
		c->len = len;
	}
	if (c->front_n && step >= c->front_from) {
		tt_ck_section s[TT_CK_SECTIONS_MAX];
		int n;
		tt_err err = {0};
		if (tt_ck_parse(blob, len, s, TT_CK_SECTIONS_MAX, &n, &err))
			return 1;
		tt_ck_core h;
		const char *arr;
		if (tt_ck_core_read(tt_ck_find(s, n, TT_CK_CORE), &h, &arr, &err))
			return 1;
		if (!c->front_seen) {
			c->front = malloc(c->front_n * sizeof(float));
			memcpy(c->front, arr, c->front_n * sizeof(float));
			c->front_seen = 1;
		} else if (memcmp(c->front, arr, c->front_n * sizeof(float)) != 0) {
			c->front_changed++;
		}
	}
	return 0;
}

static tt_train_data data;

static void cfg_for(tt_train_config *c, const char *strategy)
{
	tt_train_defaults(c);
	c->model = "resnet:1,1:w4";
	c->data = "synthetic";
	c->train_size = 240;
	c->val_size = 60;
	c->epochs = 2;
	c->batch = 16;
	c->threads = 1;
	c->opt.kind = TT_OPT_ADAMW;
	c->opt.lr = 3e-3f;
	c->opt.weight_decay = 0;
	c->continual.tasks = 5;
	c->continual.replay_size = 30;
	c->continual.replay_batch = 8;
	c->continual.order = 3; /* the classes shuffled: labels within tasks move */
	if (strcmp(strategy, "naive") == 0) {
		c->continual.strategy = TT_CL_NAIVE;
	} else if (strcmp(strategy, "replay") == 0) {
		c->continual.strategy = TT_CL_REPLAY;
		c->continual.split = 1;
	} else if (strcmp(strategy, "hn") == 0) {
		c->continual.strategy = TT_CL_HN;
		c->continual.split = 1;
	} else {
		c->continual.strategy = TT_CL_HN_FULL;
	}
}

static int run_it(const tt_train_config *c, cap *cp, long every, tt_train_result *r)
{
	tt_err err = {0};
	tt_train_hooks h = { .ud = cp, .checkpoint_every = every, .on_checkpoint = on_ck };
	int rc = tt_train_run(c, &data, cp ? &h : NULL, r, &err);
	CHECK(rc == TT_OK, "%s", err.msg);
	return rc;
}

static void same_result(const tt_train_result *a, const tt_train_result *b, const char *what)
{
	const tt_train_continual *x = &a->continual, *y = &b->continual;
	CHECK(x->rows == y->rows && x->rows == 5, "%s: %d and %d experiences", what, x->rows,
	      y->rows);
	int diff = 0;
	for (int i = 0; i < 25 && x->acc && y->acc; i++)
		diff += x->acc[i] != y->acc[i];
	CHECK(diff == 0, "%s: %d entries of the accuracy matrix differ", what, diff);
	CHECK(a->val_acc == b->val_acc && a->val_loss == b->val_loss,
	      "%s: val %.9g/%.9g against %.9g/%.9g", what, a->val_acc, a->val_loss, b->val_acc,
	      b->val_loss);
}

/* The front (stem and one block: stages 0 and 1) never changes after
 * experience 1, in the checkpoints of every later step. */
static void front_frozen_after_experience_one(void)
{
	const char *strat[] = { "hn", "replay" };
	for (int k = 0; k < 2; k++) {
		tt_train_config c;
		cfg_for(&c, strat[k]);
		tt_train_result r;
		long spe = (c.train_size + c.batch - 1) / c.batch, total = spe * c.epochs;
		cap cp = { .every_step = -1, .front_from = tt_cl_exp_end(total, 5, 0) };
		/* stem + block 1 of resnet:1,1:w4, from a model of that spec */
		tt_model *m;
		tt_err err = {0};
		tt_model_config mc = { .spec = c.model, .h = 28, .w = 28, .c = 1, .classes = 10,
		                       .batch = 1, .trainable = 0, .be = tt_backend_get("cpu") };
		CHECK(tt_model_create(&mc, &m, &err) == TT_OK, "%s", err.msg);
		size_t cnt;
		tt_model_stage_params(m, 2, &cp.front_n, &cnt);
		tt_model_free(m);
		if (run_it(&c, &cp, 1, &r) == TT_OK) {
			CHECK(cp.front_seen, "%s: no checkpoint after experience 1", strat[k]);
			CHECK(cp.front_changed == 0, "%s: the front changed in %d checkpoints after "
			      "experience 1", strat[k], cp.front_changed);
			CHECK(r.stage[0].frozen && r.stage[1].frozen && !r.stage[2].frozen,
			      "%s: the model's frozen prefix is not the front", strat[k]);
			CHECK(r.stage[0].grads == 0 && r.stage[1].optim == 0,
			      "%s: the frozen front still has gradients or optimizer state",
			      strat[k]);
			tt_train_result_free(&r);
		}
		free(cp.front);
		free(cp.blob);
	}
}

/* Resumed inside experience 1 and between experiences 2 and 3: the same
 * matrix, bit for bit, as the run that never stopped. */
static void resume_mid_sequence(void)
{
	const char *strat[] = { "hn", "replay", "naive", "hn-full" };
	for (int k = 0; k < 4; k++) {
		tt_train_config c;
		cfg_for(&c, strat[k]);
		long spe = (c.train_size + c.batch - 1) / c.batch, total = spe * c.epochs;
		long at[2] = { tt_cl_exp_end(total, 5, 0) / 2, tt_cl_exp_end(total, 5, 1) };
		tt_train_result full;
		if (run_it(&c, NULL, 0, &full) != TT_OK)
			continue;
		for (int w = 0; w < 2; w++) {
			/* a run cut at the step, as a study's rung is */
			tt_train_config cut = c;
			cut.steps = at[w];
			cut.continual.total = total;
			cap cp = { .every_step = at[w] };
			tt_train_result r1, r2;
			if (run_it(&cut, &cp, 0, &r1) != TT_OK)
				continue;
			CHECK(cp.blob != NULL, "%s: no checkpoint at step %ld", strat[k], at[w]);
			CHECK(r1.continual.rows == (w ? 2 : 0), "%s: cut at %ld has %d rows",
			      strat[k], at[w], r1.continual.rows);
			tt_train_result_free(&r1);
			tt_train_config res = c;
			res.resume = cp.blob;
			res.resume_len = cp.len;
			if (run_it(&res, NULL, 0, &r2) == TT_OK) {
				char what[64];
				snprintf(what, sizeof what, "%s resumed at step %ld", strat[k], at[w]);
				same_result(&full, &r2, what);
				tt_train_result_free(&r2);
			}
			free(cp.blob);
		}
		for (int j = 0; j < 5; j++)
			CHECK(full.continual.acc[4 * 5 + j] >= 0 && full.continual.acc[4 * 5 + j] <= 1,
			      "%s: task %d at %g", strat[k], j, full.continual.acc[4 * 5 + j]);
		tt_train_result_free(&full);
	}
}

/* Every strategy's head has classes/T outputs: naive and replay share
 * one (the paper's baselines: labels within the task, one classifier),
 * the hypernetworks generate theirs per task.  A head of all the classes
 * with the other tasks' logits masked would be a head per task, and
 * naive would barely forget. */
static void one_head_of_a_task_s_classes(void)
{
	const char *strat[] = { "naive", "replay", "hn", "hn-full" };
	for (int k = 0; k < 4; k++) {
		tt_train_config c;
		cfg_for(&c, strat[k]);
		c.epochs = 1;
		c.continual.replay_batch = 64; /* 4 replayed rows per drawn one */
		tt_model *m;
		tt_err err = {0};
		tt_model_config mc = { .spec = c.model, .h = 28, .w = 28, .c = 1, .classes = 2,
		                       .batch = 1, .trainable = 0, .be = tt_backend_get("cpu") };
		CHECK(tt_model_create(&mc, &m, &err) == TT_OK, "%s", err.msg);
		int last = tt_model_stages(m) - 1;
		tt_stage_mem sm;
		tt_model_stage_mem(m, last, &sm);
		size_t head = sm.params;
		tt_model_free(m);
		tt_train_result r;
		if (run_it(&c, NULL, 0, &r) != TT_OK)
			continue;
		CHECK(r.stages == last + 1 && r.stage[last].params == head,
		      "%s: the head holds %zu bytes, a 2-output head %zu", strat[k],
		      r.stage[last].params, head);
		/* per example the step trained on (replay: its replayed rows
		 * too), so never above 1 */
		CHECK(r.train_acc >= 0 && r.train_acc <= 1, "%s: training accuracy %g",
		      strat[k], r.train_acc);
		tt_train_result_free(&r);
	}
}

/* What the engine refuses, naming the option. */
static void refusals(void)
{
	tt_train_config c;
	tt_err err = {0};
	cfg_for(&c, "hn");
	c.continual.split = 3; /* resnet:1,1 has 4 stages: the front would be all */
	CHECK(tt_train_check(&c, NULL, &err) == TT_EINPUT && strstr(err.msg, "--strategy hn:3"),
	      "front too deep: %s", err.msg);
	cfg_for(&c, "hn");
	c.continual.tasks = 0;
	CHECK(tt_train_check(&c, NULL, &err) == TT_EINPUT && strstr(err.msg, "--strategy"),
	      "strategy without continual: %s", err.msg);
	cfg_for(&c, "naive");
	c.continual.tasks = 3;
	tt_train_result r;
	CHECK(tt_train_run(&c, &data, NULL, &r, &err) == TT_EINPUT && strstr(err.msg, "3"),
	      "10 classes in 3 experiences: %s", err.msg);
	cfg_for(&c, "naive");
	c.gates.strength = 1;
	CHECK(tt_train_check(&c, NULL, &err) == TT_EINPUT && strstr(err.msg, "--gates"),
	      "with gates: %s", err.msg);
}

int main(void)
{
	tt_err err = {0};
	tt_train_config c;
	cfg_for(&c, "naive");
	if (tt_train_data_load(&c, &data, &err)) {
		fprintf(stderr, "data: %s\n", err.msg);
		return 1;
	}
	TT_RUN(hypernet_gradient_through_the_model);
	TT_RUN(regulariser_gradient_at_the_look_ahead);
	TT_RUN(task_ids_route_to_their_own_rows);
	TT_RUN(front_frozen_after_experience_one);
	TT_RUN(resume_mid_sequence);
	TT_RUN(one_head_of_a_task_s_classes);
	TT_RUN(refusals);
	tt_train_data_free(&data);
	TT_EXIT();
}
