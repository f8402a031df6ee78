/*
 * method_continual.c — continual learning (methods.md section 5) as a
 * training method (method.h): T experiences of a data set's classes in
 * sequence, the task id known, and one strategy (continual.h): naive
 * fine-tuning, latent replay LR-k, the partial hypernetwork HN-k, or the
 * full hypernetwork.
 *
 * The loop's steps are shared equally by the experiences
 * (tt_cl_exp_end); the step hook replaces the loop's step and draws its
 * batch from the current experience's examples (the loop's own batch is
 * not used).  Labels are renumbered within their task (0..classes/T-1)
 * and every strategy's head has classes/T outputs.  Naive and replay
 * share that one head between tasks, as the paper's baselines do (its
 * reference code trains them on Avalanche's task-incremental benchmark
 * with labels from zero in each experience and one classifier): the
 * head learned for task t is overwritten by task t+1's, which is what
 * naive forgets.  The hypernetworks generate the head per task from the
 * task embedding, so theirs is one head per task.  Batch norm always normalises with the batch's
 * statistics (training and evaluation alike), as in the paper, so no
 * running statistic is shared between tasks.
 *
 * The front (replay, hn: the stem and k blocks, 1 + k stages) trains in
 * experience 1 and is frozen afterwards.  The loop's model is built with
 * that front as its frozen prefix (no gradient, no optimizer state, no
 * kept activation: the savings are real), and experience 1 runs on a
 * second model, every stage trainable, that lives only through it: at its
 * end its weights (and the suffix's optimizer state) go into the loop's
 * model and it is freed.  Checkpoints taken inside experience 1 copy it
 * into the loop's model first, so the core section always holds the
 * weights.
 *
 * The hypernetwork (hypernet.h) generates every tensor of the stages
 * behind the front (hn-full: all stages) for task t into a whole
 * parameter vector whose front part is the front's weights; the model
 * runs on it by pointer and its weight gradient, read back, is the
 * hypernetwork's output gradient.  From experience 2 on, a snapshot H*
 * is taken at the experience's start and each step adds the look-ahead
 * regulariser: psi' = psi - lr G1, G2 = d/dpsi' of the mean over up to
 * reg_tasks sampled earlier tasks of |H*(t_j) - H_psi'(t_j)|^2, and
 * psi takes an Adam step along G1 + beta G2.  The hypernetwork and the
 * front (in experience 1) use their own Adam (no weight decay); naive and
 * replay use the run's optimizer.  The learning-rate schedule (warmup,
 * cosine, step) starts again with every experience, over its steps: a
 * schedule over the whole sequence would leave the last experiences
 * next to nothing to learn with.
 *
 * At every experience's end the accuracy on every task seen so far
 * fills a row of the accuracy matrix, on the test set when the run loads
 * one, else on the validation set; replay adds the experience's examples'
 * front features to its class-balanced buffer.
 *
 * Checkpoint section (tag CONT), fixed size for a configuration: header,
 * random stream, per-task orders and cursors, the matrix and times, the
 * hypernetwork (psi, its Adam moments, the snapshot), the front's Adam
 * state while experience 1 runs, the replay buffer.
 */
#include "method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "clock.h"
#include "continual.h"
#include "hypernet.h"

#define CL_MAGIC 0x4c435454u /* "TTCL" */
#define CL_STREAM TT_STREAM_CL
#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8

static const char *const strat_names[] = { "naive", "replay", "hn", "hn-full" };

typedef struct tasklist {
	int *ix[TT_CL_MAX_TASKS]; /* examples of each task in the set */
	int n[TT_CL_MAX_TASKS];
} tasklist;

typedef struct cl_run {
	tt_cl_config cfg;
	const tt_backend *be;
	int T, kpt, C, B, strat, fs, nst;
	int ctask[256], clab[256]; /* per class its task and label in it */
	float smoothing;
	int augment;
	tt_model *m;          /* the loop's: front frozen for replay and hn */
	tt_model *m0;         /* experience 1's, every stage trainable; NULL */
	int m0_sync;          /* m0 must take m's weights before use */
	size_t m0_peak;
	int slots;            /* optimizer slots of the models */
	size_t front_n;       /* parameters of the front */
	tasklist tr, va, te;
	int *order;           /* per task its order, concatenated (tr.n) */
	int *cur;             /* per task its cursor */
	size_t *ooff;         /* per task its order's offset */
	tt_rng rng;
	long total;
	float *hx, *hfeat;
	int *hy;
	int bmax;             /* rows of the host buffers */
	/* the hypernetwork */
	tt_hn_config hc;
	tt_hn_item *it;
	int nit;
	size_t np, nparams;
	float *psi, *am, *av, *snap, *dpsi, *dpsi2, *psi2, *scratch;
	float *fm, *fv;       /* the front's Adam moments (experience 1) */
	float *pend;          /* m0's front optimizer state read from a checkpoint */
	long adam_t;
	float *gen, *hgrad;   /* host, nparams: the generated vector, gradients */
	float *dgen, *dgrad;  /* device: the same, for the model */
	int gen_front;        /* gen's front part holds the front's weights */
	int *rtask;           /* sampled earlier tasks */
	/* replay */
	tt_cl_replay rb;
	size_t fdim;
	float *rx;
	int *rt, *rl;
	/* results */
	double *acc;          /* T x T */
	double *exp_s;        /* T */
	int rows;             /* experiences finished */
	int reported;         /* rows given to report */
	size_t extra;         /* host bytes of the method's own buffers */
} cl_run;

static int cl_wants(const tt_train_config *c)
{
	return c->continual.tasks > 0;
}

static int is_hn(const cl_run *s)
{
	return s->strat == TT_CL_HN || s->strat == TT_CL_HN_FULL;
}

/* The loop's model: the front its frozen prefix, a head of classes/T
 * outputs (shared by naive and replay, generated per task for the
 * hypernetworks), room for the replay rows, its own Adam for hn. */
static void cl_model_config(const tt_train_config *c, tt_model_config *mc)
{
	const tt_cl_config *k = &c->continual;
	int n = 0, fs = tt_cl_front(k);
	tt_model_spec_check(c->model, &n, NULL);
	mc->trainable = fs > 0 ? n - fs : 0;
	mc->classes = mc->classes / k->tasks;
	if (k->strategy == TT_CL_HN || k->strategy == TT_CL_HN_FULL)
		mc->optim_slots = 0;
	if (k->strategy == TT_CL_REPLAY)
		mc->batch += k->replay_batch;
}

static tt_model *working(cl_run *s)
{
	return s->m0 ? s->m0 : s->m;
}

static void cl_free(void *state)
{
	cl_run *s = state;
	if (!s)
		return;
	tt_model_free(s->m0);
	tasklist *ls[3] = { &s->tr, &s->va, &s->te };
	for (int l = 0; l < 3; l++)
		for (int t = 0; t < TT_CL_MAX_TASKS; t++)
			free(ls[l]->ix[t]);
	free(s->order);
	free(s->cur);
	free(s->ooff);
	free(s->hx);
	free(s->hfeat);
	free(s->hy);
	free(s->it);
	free(s->psi);
	free(s->am);
	free(s->av);
	free(s->snap);
	free(s->dpsi);
	free(s->dpsi2);
	free(s->psi2);
	free(s->scratch);
	free(s->fm);
	free(s->fv);
	free(s->pend);
	free(s->gen);
	free(s->hgrad);
	free(s->rtask);
	tt_cl_replay_free(&s->rb);
	free(s->rx);
	free(s->rt);
	free(s->rl);
	free(s->acc);
	free(s->exp_s);
	free(s);
}

static int list_tasks(const tt_dataset *d, int T, const int *ctask, tasklist *l)
{
	for (int t = 0; t < T; t++) {
		l->ix[t] = malloc(((size_t)d->n + 1) * sizeof(int));
		if (!l->ix[t])
			return -1;
		l->n[t] = 0;
	}
	for (int i = 0; i < d->n; i++) {
		int t = ctask[d->label[i]];
		l->ix[t][l->n[t]++] = i;
	}
	return 0;
}

/* The hypernetwork's items: every tensor of stages fs.. of m. */
static int hn_items(cl_run *s, tt_err *err)
{
	tt_model_tensor tv[16];
	int cap = 0;
	for (int st = s->fs; st < s->nst; st++)
		cap += tt_model_tensors(s->m, st, tv, 0);
	s->it = calloc((size_t)cap, sizeof *s->it);
	if (!s->it)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	for (int st = s->fs; st < s->nst; st++) {
		int n = tt_model_tensors(s->m, st, tv, 16);
		TT_ASSERT(n <= 16);
		for (int i = 0; i < n; i++) {
			tt_hn_item *o = &s->it[s->nit++];
			o->dst = tv[i].off;
			o->out = tv[i].out;
			switch (tv[i].kind) {
			case TT_TENSOR_CONV:
				o->kind = TT_HN_CONV;
				o->fan = tv[i].fan;
				break;
			case TT_TENSOR_DENSE_W:
				o->kind = TT_HN_DENSE;
				o->out = tv[i].out * tv[i].fan;
				break;
			case TT_TENSOR_BN_GAMMA:
				o->kind = TT_HN_TABLE;
				o->init = 1;
				break;
			default:
				o->kind = TT_HN_TABLE;
				o->init = 0;
				break;
			}
		}
	}
	return TT_OK;
}

static float *alloc_f(size_t n, size_t *extra)
{
	*extra += n * sizeof(float);
	return calloc(n ? n : 1, sizeof(float));
}

static int cl_setup(const tt_method_run *run, void **state, tt_err *err)
{
	const tt_train_config *c = run->c;
	const tt_train_data *d = run->d;
	cl_run *s = calloc(1, sizeof *s);
	*state = s;
	if (!s)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	s->cfg = c->continual;
	s->T = s->cfg.tasks;
	s->strat = s->cfg.strategy;
	s->C = d->train.classes;
	TT_ASSERT(s->C >= 1 && s->C <= 256); /* labels are bytes */
	s->m = run->m;
	s->be = tt_model_backend(run->m);
	s->nst = tt_model_stages(run->m);
	s->fs = tt_cl_front(&s->cfg);
	s->smoothing = c->label_smoothing;
	s->augment = c->augment;
	s->total = s->cfg.total > 0 ? s->cfg.total : run->total;
	if (s->C % s->T)
		return tt_err_set(err, TT_EINPUT, "--continual split:%d: %s has %d classes, "
		                  "which %d experiences do not share equally", s->T,
		                  d->source, s->C, s->T);
	s->kpt = s->C / s->T;
	tt_cl_order(s->C, s->T, s->cfg.order, s->ctask, s->clab);
	if (list_tasks(&d->train, s->T, s->ctask, &s->tr) ||
	    list_tasks(&d->val, s->T, s->ctask, &s->va) ||
	    list_tasks(&d->test, s->T, s->ctask, &s->te))
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	for (int t = 0; t < s->T; t++)
		if (!s->tr.n[t])
			return tt_err_set(err, TT_EINPUT, "--continual: experience %d (classes "
			                  "%d.. of the order) has no training example in %s",
			                  t + 1, t * s->kpt, d->source);
	s->B = c->batch < d->train.n ? c->batch : d->train.n;
	s->bmax = s->B + (s->strat == TT_CL_REPLAY ? s->cfg.replay_batch : 0);
	size_t dim = (size_t)d->train.h * d->train.w * d->train.c;
	s->hx = malloc((size_t)s->bmax * dim * sizeof(float));
	s->hy = malloc((size_t)s->bmax * sizeof(int));
	s->order = malloc(((size_t)d->train.n + 1) * sizeof(int));
	s->cur = calloc((size_t)s->T, sizeof(int));
	s->ooff = calloc((size_t)s->T, sizeof(size_t));
	s->acc = calloc((size_t)s->T * s->T, sizeof(double));
	s->exp_s = calloc((size_t)s->T, sizeof(double));
	if (!s->hx || !s->hy || !s->order || !s->cur || !s->ooff ||
	    !s->acc || !s->exp_s)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	tt_rng_seed(&s->rng, c->seed, CL_STREAM);
	size_t off = 0;
	for (int t = 0; t < s->T; t++) {
		s->ooff[t] = off;
		memcpy(s->order + off, s->tr.ix[t], (size_t)s->tr.n[t] * sizeof(int));
		tt_rng_shuffle(&s->rng, s->order + off, s->tr.n[t]);
		off += (size_t)s->tr.n[t];
	}
	s->nparams = tt_model_nparams(s->m);
	s->slots = is_hn(s) ? 0 : tt_optim_slots(&c->opt);
	if (s->fs > 0) {
		/* experience 1's model: every stage trainable */
		tt_model_config mc = {
			.spec = c->model, .h = d->train.h, .w = d->train.w, .c = d->train.c,
			.classes = s->kpt, .batch = s->B, .trainable = 0,
			.optim_slots = s->slots, .seed = c->seed, .be = s->be,
		};
		int rc = tt_model_create(&mc, &s->m0, err);
		if (rc)
			return rc;
		s->m0_sync = 1;
		size_t cnt;
		tt_model_stage_params(s->m, s->fs, &s->front_n, &cnt);
	}
	if (is_hn(s)) {
		s->hc = (tt_hn_config){ .tasks = s->T, .emb = 16, .hidden = 32, .u = 16, .ce = 8 };
		int rc = hn_items(s, err);
		if (rc)
			return rc;
		s->np = tt_hn_nparams(&s->hc, s->it, s->nit);
		size_t span = tt_hn_span(s->it, s->nit);
		s->psi = alloc_f(s->np, &s->extra);
		s->am = alloc_f(s->np, &s->extra);
		s->av = alloc_f(s->np, &s->extra);
		s->snap = alloc_f(s->np, &s->extra);
		s->dpsi = alloc_f(s->np, &s->extra);
		s->dpsi2 = alloc_f(s->np, &s->extra);
		s->psi2 = alloc_f(s->np, &s->extra);
		s->scratch = alloc_f(2 * span, &s->extra);
		s->gen = alloc_f(s->nparams, &s->extra);
		s->hgrad = alloc_f(s->nparams, &s->extra);
		s->fm = alloc_f(s->front_n, &s->extra);
		s->fv = alloc_f(s->front_n, &s->extra);
		s->rtask = calloc((size_t)s->T, sizeof(int));
		s->dgen = tt_model_mem_alloc(s->m, TT_MEM_METHOD, s->nparams * sizeof(float));
		s->dgrad = tt_model_mem_alloc(s->m, TT_MEM_METHOD, s->nparams * sizeof(float));
		if (!s->psi || !s->am || !s->av || !s->snap || !s->dpsi || !s->dpsi2 ||
		    !s->psi2 || !s->scratch || !s->gen || !s->hgrad || !s->fm || !s->fv ||
		    !s->rtask || !s->dgen || !s->dgrad)
			return tt_err_set(err, TT_ERUNTIME, "out of memory");
		tt_hn_init(&s->hc, s->it, s->nit, s->psi, c->seed ^ 0x4879706eULL);
		memcpy(s->snap, s->psi, s->np * sizeof(float));
	}
	if (s->strat == TT_CL_REPLAY) {
		tt_model_boundary(s->m, &s->fdim);
		int rc = tt_cl_replay_init(&s->rb, s->cfg.replay_size, (int)s->fdim, s->C,
		                           c->seed ^ 0x7265706cULL, err);
		if (rc)
			return rc;
		s->extra += (size_t)s->cfg.replay_size * s->fdim * sizeof(float);
		s->rx = alloc_f((size_t)s->cfg.replay_batch * s->fdim, &s->extra);
		s->hfeat = alloc_f((size_t)s->B * s->fdim, &s->extra);
		s->rt = calloc((size_t)s->cfg.replay_batch + 1, sizeof(int));
		s->rl = calloc((size_t)s->cfg.replay_batch + 1, sizeof(int));
		if (!s->rx || !s->hfeat || !s->rt || !s->rl)
			return tt_err_set(err, TT_ERUNTIME, "out of memory");
	}
	return TT_OK;
}

/* ---- models ------------------------------------------------------------ */

static void copy_dev(const tt_backend *be, float *dst, const float *src, size_t n)
{
	be->copy(dst, src, n * sizeof(float));
}

/* m0 takes m's weights and statistics, the suffix's optimizer state and
 * (resumed inside experience 1) the front's from the checkpoint. */
static void m0_from_m(cl_run *s)
{
	const tt_backend *be = s->be;
	copy_dev(be, tt_model_params(s->m0), tt_model_params(s->m), s->nparams);
	copy_dev(be, tt_model_state(s->m0), tt_model_state(s->m), tt_model_nstate(s->m));
	size_t nt = tt_model_ntrainable(s->m);
	for (int k = 0; k < s->slots; k++) {
		copy_dev(be, tt_model_optim(s->m0, k) + s->front_n, tt_model_optim(s->m, k), nt);
		if (s->pend)
			be->upload(tt_model_optim(s->m0, k), s->pend + (size_t)k * s->front_n,
			           s->front_n * sizeof(float));
	}
	free(s->pend);
	s->pend = NULL;
	s->m0_sync = 0;
}

static void m_from_m0(cl_run *s)
{
	const tt_backend *be = s->be;
	copy_dev(be, tt_model_params(s->m), tt_model_params(s->m0), s->nparams);
	copy_dev(be, tt_model_state(s->m), tt_model_state(s->m0), tt_model_nstate(s->m));
	size_t nt = tt_model_ntrainable(s->m);
	for (int k = 0; k < s->slots; k++)
		copy_dev(be, tt_model_optim(s->m, k), tt_model_optim(s->m0, k) + s->front_n, nt);
}

static void ready(cl_run *s)
{
	if (s->m0 && s->m0_sync)
		m0_from_m(s);
	if (is_hn(s) && s->front_n && !s->gen_front) {
		/* the front part of the generated vector: the front's weights */
		s->be->download(s->gen, tt_model_params(working(s)), s->front_n * sizeof(float));
		s->gen_front = 1;
	}
}

/* gen := the weights of task t (front part kept), on the device too. */
static void generate(cl_run *s, int t)
{
	tt_hn_generate(&s->hc, s->it, s->nit, s->psi, t, s->gen);
	s->be->upload(s->dgen, s->gen, s->nparams * sizeof(float));
}

/* A train-mode forward (batch statistics, running ones untouched) of n
 * examples of task t already in W's input, on task t's generated
 * weights for the hypernetworks. */
static const float *forward_task(cl_run *s, tt_model *W, int t, int n)
{
	tt_model_weights w = { .keep_stats = 1 };
	if (is_hn(s)) {
		generate(s, t);
		w.params = s->dgen;
	}
	return tt_model_forward_on(W, &w, tt_model_input(W), n, 1);
}

/* Rows 0..n-1 of s->hy, global classes, become labels within their
 * task, for a head of classes/T outputs. */
static void task_labels(cl_run *s, int n)
{
	for (int i = 0; i < n; i++)
		s->hy[i] = s->clab[s->hy[i]];
}

/* Labels of rows 0..n-1 (within their task in s->hy) to W. */
static void upload_labels(cl_run *s, tt_model *W, int n)
{
	s->be->upload(tt_model_labels(W), s->hy, (size_t)n * sizeof(int));
}

/* ---- evaluation -------------------------------------------------------- */

/* Accuracy (and mean loss) of task t on examples ix[0..n) of set. */
static double task_acc(cl_run *s, const tt_dataset *set, const int *ix, int n, int t,
                       double *loss)
{
	tt_model *W = working(s);
	size_t dim = (size_t)set->h * set->w * set->c;
	long right = 0;
	double sum = 0;
	for (int off = 0; off < n; off += s->B) {
		int b = n - off < s->B ? n - off : s->B, ok = 0;
		tt_data_batch(set, ix + off, b, 0, NULL, s->hx, s->hy);
		task_labels(s, b);
		s->be->upload(tt_model_input(W), s->hx, (size_t)b * dim * sizeof(float));
		upload_labels(s, W, b);
		forward_task(s, W, t, b);
		sum += tt_model_loss(W, tt_model_labels(W), b, 0.0f, 0, &ok) * b;
		right += ok;
	}
	if (loss)
		*loss = n ? sum / n : NAN;
	return n ? (double)right / n : NAN;
}

static int seen_tasks(const cl_run *s, long step)
{
	int e = 0;
	while (e < s->T - 1 && step > tt_cl_exp_end(s->total, s->T, e))
		e++;
	return e + 1;
}

/* The loop's validation (and test): the mean over the tasks seen so far. */
static int cl_evaluate(void *state, const tt_method_run *run, const tt_dataset *set,
                       double *loss, double *acc, tt_err *err)
{
	(void)err;
	cl_run *s = state;
	const tasklist *l = set == &run->d->test ? &s->te : &s->va;
	ready(s);
	int seen = seen_tasks(s, run->step);
	double la = 0, aa = 0;
	int k = 0;
	for (int t = 0; t < seen; t++) {
		if (!l->n[t])
			continue;
		double lt;
		aa += task_acc(s, set, l->ix[t], l->n[t], t, &lt);
		la += lt;
		k++;
	}
	*loss = k ? la / k : NAN;
	*acc = k ? aa / k : NAN;
	return TT_OK;
}

/* ---- experiences ------------------------------------------------------- */

static int exp_of(const cl_run *s, long step)
{
	return seen_tasks(s, step + 1) - 1;
}

/* The next b examples of task t into the host batch. */
static int draw(cl_run *s, const tt_dataset *tr, int t)
{
	int n = s->tr.n[t], b = s->B < n ? s->B : n;
	int *o = s->order + s->ooff[t];
	if (s->cur[t] + b > n) {
		tt_rng_shuffle(&s->rng, o, n);
		s->cur[t] = 0;
	}
	tt_data_batch(tr, o + s->cur[t], b, s->augment, s->augment ? &s->rng : NULL, s->hx,
	              s->hy);
	task_labels(s, b);
	s->cur[t] += b;
	return b;
}

/* Replay: every training example of experience e offers its front
 * features to the buffer. */
static void replay_fill(cl_run *s, const tt_dataset *tr, int e)
{
	size_t dim = (size_t)tr->h * tr->w * tr->c;
	tt_model_weights w = { .keep_stats = 1 };
	const int *ix = s->tr.ix[e];
	for (int off = 0; off < s->tr.n[e]; off += s->B) {
		int b = s->tr.n[e] - off < s->B ? s->tr.n[e] - off : s->B;
		tt_data_batch(tr, ix + off, b, 0, NULL, s->hx, s->hy);
		s->be->upload(tt_model_input(s->m), s->hx, (size_t)b * dim * sizeof(float));
		tt_model_forward_on(s->m, &w, tt_model_input(s->m), b, 1);
		s->be->download(s->hfeat, tt_model_boundary(s->m, NULL),
		                (size_t)b * s->fdim * sizeof(float));
		for (int i = 0; i < b; i++)
			tt_cl_replay_add(&s->rb, s->hfeat + (size_t)i * s->fdim, s->hy[i], e,
			                 s->clab[s->hy[i]]);
	}
}

/* Experience e ended: the front freezes after the first, the matrix
 * gains row e, replay stores features, the hypernetwork's snapshot. */
static void exp_end(cl_run *s, const tt_method_run *run, int e)
{
	if (s->m0) {
		s->m0_peak = tt_model_mem(s->m0)->peak;
		m_from_m0(s);
		tt_model_free(s->m0);
		s->m0 = NULL;
		free(s->fm);
		free(s->fv);
		s->fm = s->fv = NULL;
	}
	const tt_train_data *d = run->d;
	const tt_dataset *set = d->test.n ? &d->test : &d->val;
	const tasklist *l = d->test.n ? &s->te : &s->va;
	for (int j = 0; j <= e; j++)
		s->acc[(size_t)e * s->T + j] = task_acc(s, set, l->ix[j], l->n[j], j, NULL);
	s->rows = e + 1;
	if (s->strat == TT_CL_REPLAY)
		replay_fill(s, &d->train, e);
	if (is_hn(s))
		memcpy(s->snap, s->psi, s->np * sizeof(float));
}

/* ---- the step ---------------------------------------------------------- */

static void adam(float *p, const float *g, float *m, float *v, size_t n, double lr, long t)
{
	double c1 = 1 - pow(ADAM_B1, (double)t), c2 = 1 - pow(ADAM_B2, (double)t);
	for (size_t i = 0; i < n; i++) {
		m[i] = (float)(ADAM_B1 * m[i] + (1 - ADAM_B1) * g[i]);
		v[i] = (float)(ADAM_B2 * v[i] + (1 - ADAM_B2) * (double)g[i] * g[i]);
		p[i] -= (float)(lr * (m[i] / c1) / (sqrt(v[i] / c2) + ADAM_EPS));
	}
}

/* The hypernetwork's step on the batch in W: G1 through the generated
 * weights (and the front's own gradient in experience 1), then the
 * look-ahead regulariser from experience 2 on, then Adam. */
static void hn_step(cl_run *s, tt_model *W, int e, float lr)
{
	size_t toff = tt_model_trainable_offset(W), nt = tt_model_ntrainable(W);
	tt_model_backward_into(W, s->dgrad);
	memset(s->hgrad, 0, toff * sizeof(float));
	s->be->download(s->hgrad + toff, s->dgrad, nt * sizeof(float));
	memset(s->dpsi, 0, s->np * sizeof(float));
	tt_hn_backward(&s->hc, s->it, s->nit, s->psi, e, s->hgrad, s->dpsi);
	s->adam_t++;
	if (W == s->m0 && s->front_n) {
		/* experience 1: the front learns with the hypernetwork */
		adam(s->gen, s->hgrad, s->fm, s->fv, s->front_n, lr, s->adam_t);
		s->be->upload(tt_model_params(W), s->gen, s->front_n * sizeof(float));
	}
	if (e > 0 && s->cfg.beta > 0) {
		for (size_t i = 0; i < s->np; i++)
			s->psi2[i] = s->psi[i] - lr * s->dpsi[i];
		int nt_ = 0;
		for (int j = 0; j < e; j++)
			s->rtask[nt_++] = j;
		if (nt_ > s->cfg.reg_tasks) {
			/* a uniform sample without replacement: a partial shuffle */
			for (int i = 0; i < s->cfg.reg_tasks; i++) {
				int k = i + (int)tt_rng_below(&s->rng, (uint32_t)(nt_ - i));
				int tmp = s->rtask[i];
				s->rtask[i] = s->rtask[k];
				s->rtask[k] = tmp;
			}
			nt_ = s->cfg.reg_tasks;
		}
		memset(s->dpsi2, 0, s->np * sizeof(float));
		tt_hn_reg(&s->hc, s->it, s->nit, s->snap, s->psi2, s->rtask, nt_, s->dpsi2,
		          s->scratch);
		float k = (float)(s->cfg.beta / nt_);
		for (size_t i = 0; i < s->np; i++)
			s->dpsi[i] += k * s->dpsi2[i];
	}
	adam(s->psi, s->dpsi, s->am, s->av, s->np, lr, s->adam_t);
}

static int cl_step(void *state, tt_method_run *run, tt_err *err)
{
	(void)err;
	cl_run *s = state;
	const tt_dataset *tr = &run->d->train;
	double t0 = tt_clock_mono();
	ready(s);
	int e = exp_of(s, run->step);
	tt_model *W = working(s);
	size_t dim = (size_t)tr->h * tr->w * tr->c;
	int b = draw(s, tr, e), n = b;
	s->be->upload(tt_model_input(W), s->hx, (size_t)b * dim * sizeof(float));
	forward_task(s, W, e, b);
	if (s->strat == TT_CL_REPLAY && W == s->m && s->rb.n > 0) {
		/* latent replay: stored front features behind the batch's */
		int r = s->cfg.replay_batch;
		tt_cl_replay_sample(&s->rb, r, s->rx, s->rt, s->rl);
		s->be->upload(tt_model_boundary(s->m, NULL) + (size_t)b * s->fdim, s->rx,
		              (size_t)r * s->fdim * sizeof(float));
		for (int i = 0; i < r; i++)
			s->hy[b + i] = s->rl[i];
		n = b + r;
		tt_model_weights w = { .keep_stats = 1 };
		tt_model_forward_suffix_n(s->m, &w, n);
	}
	upload_labels(s, W, n);
	run->loss = tt_model_loss(W, tt_model_labels(W), n, s->smoothing, 1, &run->right);
	run->batch = n; /* loss and right are over the drawn and replayed rows */
	if (!isfinite(run->loss))
		return TT_OK;
	/* the schedule over this experience's steps */
	long start = e ? tt_cl_exp_end(s->total, s->T, e - 1) : 0;
	tt_optim_config oe = *run->opt;
	oe.total_steps = tt_cl_exp_end(s->total, s->T, e) - start;
	if (is_hn(s)) {
		hn_step(s, W, e, tt_optim_lr(&oe, run->step - start));
	} else {
		tt_model_backward(W);
		tt_optim_step(W, &oe, run->step - start);
	}
	if (run->step + 1 == tt_cl_exp_end(s->total, s->T, e))
		exp_end(s, run, e);
	s->exp_s[e] += tt_clock_mono() - t0;
	return TT_OK;
}

/* ---- checkpoints ------------------------------------------------------- */

typedef struct cl_ck {
	uint32_t magic, T, strategy, fs;
	uint64_t np, ntrain, fdim, front_n, slots;
	int32_t rows, m0_live, rb_n, pad;
	int64_t adam_t;
} cl_ck;

/* One walk over the section for size (w = r = NULL), writing (w) or
 * reading (r); 0 when r is too short. */
static size_t ck_walk(cl_run *s, cl_ck *h, char *w, const char *r, size_t rlen)
{
	size_t off = 0;
#define IO(ptr, bytes)                                                           \
	do {                                                                     \
		size_t nb_ = (bytes);                                            \
		if (w && nb_)                                                    \
			memcpy(w + off, (ptr), nb_);                             \
		if (r && nb_) {                                                  \
			if (off + nb_ > rlen)                                    \
				return 0;                                        \
			memcpy((ptr), r + off, nb_);                             \
		}                                                                \
		off += nb_;                                                      \
	} while (0)
	IO(h, sizeof *h);
	if (r && (h->magic != CL_MAGIC || h->T != (uint32_t)s->T ||
	          h->strategy != (uint32_t)s->strat || h->fs != (uint32_t)s->fs ||
	          h->np != s->np || h->front_n != s->front_n || h->fdim != s->fdim ||
	          h->slots != (uint64_t)s->slots ||
	          h->ntrain != (uint64_t)s->ooff[s->T - 1] + (uint64_t)s->tr.n[s->T - 1]))
		return 0;
	IO(&s->rng, sizeof s->rng);
	IO(s->order, h->ntrain * sizeof(int));
	IO(s->cur, (size_t)s->T * sizeof(int));
	IO(s->acc, (size_t)s->T * s->T * sizeof(double));
	IO(s->exp_s, (size_t)s->T * sizeof(double));
	if (is_hn(s)) {
		IO(s->psi, s->np * sizeof(float));
		IO(s->am, s->np * sizeof(float));
		IO(s->av, s->np * sizeof(float));
		IO(s->snap, s->np * sizeof(float));
		if (h->m0_live && s->fm) {
			IO(s->fm, s->front_n * sizeof(float));
			IO(s->fv, s->front_n * sizeof(float));
		}
	}
	if (h->m0_live && s->slots) {
		size_t nb = (size_t)s->slots * s->front_n * sizeof(float);
		if (w)
			for (int k = 0; k < s->slots; k++)
				s->be->download(w + off + (size_t)k * s->front_n * sizeof(float),
				                tt_model_optim(s->m0, k), s->front_n * sizeof(float));
		if (r) {
			if (off + nb > rlen)
				return 0;
			free(s->pend);
			s->pend = malloc(nb);
			if (!s->pend)
				return 0;
			memcpy(s->pend, r + off, nb);
		}
		off += nb;
	}
	if (s->strat == TT_CL_REPLAY) {
		tt_cl_replay *b = &s->rb;
		size_t cap = (size_t)b->cap;
		IO(b->x, cap * b->dim * sizeof(float));
		IO(b->cls, cap * sizeof(int));
		IO(b->task, cap * sizeof(int));
		IO(b->label, cap * sizeof(int));
		IO(b->seen, (size_t)b->classes * sizeof(long));
		IO(&b->rng, sizeof b->rng);
	}
#undef IO
	return off;
}

static void ck_header(cl_run *s, cl_ck *h)
{
	*h = (cl_ck){ .magic = CL_MAGIC, .T = (uint32_t)s->T, .strategy = (uint32_t)s->strat,
	              .fs = (uint32_t)s->fs, .np = s->np, .fdim = s->fdim,
	              .front_n = s->front_n, .slots = (uint64_t)s->slots,
	              .ntrain = s->ooff[s->T - 1] + (uint64_t)s->tr.n[s->T - 1],
	              .rows = s->rows, .m0_live = s->m0 != NULL, .rb_n = s->rb.n,
	              .adam_t = s->adam_t };
}

/* The core section saves the loop's model: inside experience 1 it takes
 * m0's weights first. */
static size_t cl_ck_size(void *state, const tt_method_run *run)
{
	(void)run;
	cl_run *s = state;
	cl_ck h;
	if (s->m0 && !s->m0_sync)
		m_from_m0(s);
	ck_header(s, &h);
	return ck_walk(s, &h, NULL, NULL, 0);
}

static void cl_ck_write(void *state, const tt_method_run *run, char *p)
{
	(void)run;
	cl_run *s = state;
	cl_ck h;
	ck_header(s, &h);
	ck_walk(s, &h, p, NULL, 0);
}

static int cl_ck_read(void *state, const tt_method_run *run, const char *p, size_t len,
                      int weights_only, tt_err *err)
{
	(void)run;
	cl_run *s = state;
	if (weights_only)
		return TT_OK; /* a new sequence from the blob's weights */
	if (!p)
		return tt_err_set(err, TT_EINPUT, "checkpoint: written by a run without "
		                  "--continual; this run is continual");
	cl_ck h;
	size_t got = ck_walk(s, &h, NULL, p, len);
	if (!got || got != len)
		return tt_err_set(err, TT_EINPUT, "checkpoint: its continual section (%zu "
		                  "bytes) does not fit this run's experiences and strategy",
		                  len);
	s->rows = h.rows;
	s->reported = h.rows;
	s->rb.n = h.rb_n;
	s->adam_t = h.adam_t;
	if (!h.m0_live && s->m0) {
		/* past experience 1: the front is frozen for good */
		tt_model_free(s->m0);
		s->m0 = NULL;
	}
	s->m0_sync = 1;
	return TT_OK;
}

/* ---- results ----------------------------------------------------------- */

static void summarise(const double *a, int T, int rows, double *aca, double *fg,
                      double *per)
{
	double sub[TT_CL_MAX_TASKS * TT_CL_MAX_TASKS];
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < rows; j++)
			sub[i * rows + j] = a[(size_t)i * T + j];
	*aca = rows ? tt_cl_aca(sub, rows) : NAN;
	*fg = rows ? tt_cl_forgetting(sub, rows, per) : NAN;
}

static void cl_result(void *state, const tt_method_run *run, tt_train_result *r)
{
	(void)run;
	cl_run *s = state;
	tt_train_continual *o = &r->continual;
	o->on = 1;
	o->tasks = s->T;
	o->strategy = s->strat;
	o->split = s->cfg.split;
	o->rows = s->rows;
	o->on_test = run->d->test.n > 0;
	o->acc = calloc((size_t)s->T * s->T, sizeof(double));
	if (o->acc)
		memcpy(o->acc, s->acc, (size_t)s->T * s->T * sizeof(double));
	for (int t = 0; t < s->T; t++) {
		o->exp_seconds[t] = s->exp_s[t];
		o->seconds += s->exp_s[t];
		o->forget[t] = 0;
	}
	summarise(s->acc, s->T, s->rows, &o->aca, &o->forgetting, o->forget);
	o->peak_bytes = tt_model_mem(s->m)->peak + s->m0_peak + s->extra +
	                (s->m0 ? tt_model_mem(s->m0)->peak : 0);
	o->hn_params = s->np;
}

static void jnum(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

static void cl_json(const tt_train_result *r, FILE *f)
{
	const tt_train_continual *o = &r->continual;
	fprintf(f, "{\"tasks\":%d,\"strategy\":\"%s\",\"split\":%d,\"measured_on\":\"%s\","
	        "\"experiences\":%d,\"acc\":[", o->tasks, strat_names[o->strategy], o->split,
	        o->on_test ? "test" : "val", o->rows);
	for (int i = 0; i < o->rows; i++) {
		fputs(i ? ",[" : "[", f);
		for (int j = 0; j <= i; j++) {
			if (j)
				fputc(',', f);
			jnum(f, o->acc ? o->acc[(size_t)i * o->tasks + j] : NAN);
		}
		fputc(']', f);
	}
	fputs("],\"aca\":", f);
	jnum(f, o->aca);
	fputs(",\"forgetting\":", f);
	jnum(f, o->forgetting);
	fputs(",\"forgetting_per_task\":[", f);
	for (int j = 0; j + 1 < o->rows; j++) {
		if (j)
			fputc(',', f);
		jnum(f, o->forget[j]);
	}
	fputs("],\"seconds\":", f);
	jnum(f, o->seconds);
	fputs(",\"seconds_per_experience\":[", f);
	for (int i = 0; i < o->rows; i++) {
		if (i)
			fputc(',', f);
		jnum(f, o->exp_seconds[i]);
	}
	fprintf(f, "],\"peak_bytes\":%zu,\"hypernet_params\":%zu}", o->peak_bytes,
	        o->hn_params);
}

static int cl_values(const tt_train_result *r, tt_method_value *v, int max)
{
	const tt_train_continual *o = &r->continual;
	int n = 0;
	if (n < max)
		v[n++] = (tt_method_value){ "aca", o->aca };
	if (n < max)
		v[n++] = (tt_method_value){ "forgetting", o->forgetting };
	if (n < max)
		v[n++] = (tt_method_value){ "experiences", o->rows };
	return n;
}

/* The rows of the matrix not yet reported (the runner's task_acc). */
static int cl_report(void *state, const tt_method_run *run, int final,
                     tt_method_report *rep)
{
	(void)run;
	(void)final;
	cl_run *s = state;
	if (s->reported >= s->rows)
		return 0;
	rep->cl_tasks = s->T;
	rep->cl_first = s->reported;
	rep->cl_rows = s->rows - s->reported;
	rep->cl_acc = s->acc;
	s->reported = s->rows;
	return 1;
}

const tt_method tt_method_continual = {
	.name = "continual",
	.tag = TT_CK_CONTINUAL,
	.wants = cl_wants,
	.model_config = cl_model_config,
	.setup = cl_setup,
	.free = cl_free,
	.step = cl_step,
	.evaluate = cl_evaluate,
	.ck_size = cl_ck_size,
	.ck_write = cl_ck_write,
	.ck_read = cl_ck_read,
	.result = cl_result,
	.json = cl_json,
	.values = cl_values,
	.report = cl_report,
};
