/*
 * method_evograd.c — EvoGrad (methods.md section 3) as a training method
 * (method.h): hyperparameters learned inside the run from perturbed
 * copies of the weights.
 *
 * After every training step (or every N-th) a meta-step:
 *
 *   1. for k = 1..K: theta_k = theta + eps_k over the trainable suffix,
 *      eps_k regenerated from its key (seed, step, k) (evograd.h), and
 *      the copy's training loss l_k on the step's batch, forwarded from
 *      the frozen prefix's output the step left (tt_model_forward_suffix:
 *      the prefix runs once per batch), with dl_k/dlam;
 *   2. w = softmax(-l / tau) and theta* = theta + sum_k w_k eps_k;
 *   3. g = the validation gradient at theta*, on the next batch of the
 *      first --clean-val validation examples;
 *   4. dL_V/dlam = -(1/tau) sum_k w_k (g.eps_k - sum_j w_j g.eps_j) dl_k/dlam
 *      (tt_evo_hypergrad; the dot products in double), and lam takes a
 *      step of its own optimizer (Adam or SGD).
 *
 * What lam is (tt_evo_what):
 *   wd      u = log(wd); l_k = CE_k + (wd/2)|theta_k|^2, so
 *           dl_k/du = wd |theta_k|^2 / 2: no backward.  The run's
 *           optimizer takes wd = exp(u) from the next step on.
 *   mwn     the Meta-Weight-Net's parameters phi (mwn.h): the step's loss
 *           weighs each example by v(loss_i; phi) (the loss hook), and
 *           l_k = sum_i w_i(phi) loss_i(theta_k) with its phi-gradient
 *           from the copy's per-example losses: no backward.
 *   rotate  the training images' angle a in degrees, applied to the batch
 *           before the step by bilinear resampling (transform.h), which
 *           also gives dx/da; dl_k/da = (dl_k/dx) . (dx/da), one backward
 *           per copy down to the input (every stage trains).
 *
 * Memory: the copies are made one at a time into one buffer, which then
 * holds theta*, and one buffer takes the gradients: 2 x |suffix| floats
 * whatever K, booked under TT_MEM_METHOD.  Nothing of the noise is
 * stored.  Copies and the validation pass use batch statistics without
 * moving the model's running ones (keep_stats).
 *
 * Checkpoint section (tag EVOG):
 *   evo_ck header, lam[nh], am[nh], av[nh] (double),
 *   path[npath][1 + nvalues] (double)
 * so a resumed run continues the hyperparameters, their optimizer, the
 * validation cursor and the path where the interrupted one stood.
 */
#include "method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "clock.h"
#include "evograd.h"
#include "mwn.h"
#include "transform.h"

#define EVO_MAGIC 0x47455454u /* "TTEG" */
#define PATH_POINTS 256       /* about this many points of the path */

/* Where the Meta-Weight-Net's summary reads its weighting: v at these
 * training losses (a clean example's is small, a flipped one's large). */
static const double mwn_at[] = { 0.1, 1.0, 4.0 };
static const char *const mwn_names[] = { "mwn@0.1", "mwn@1", "mwn@4" };

typedef struct evo_run {
	tt_evo_config cfg;
	const tt_backend *be;
	int nh;                   /* hyperparameters learned */
	double *lam;              /* their values: log wd, the angle, or phi */
	double *am, *av;          /* Adam's moments */
	long at;                  /* Adam's steps */
	double lr;
	double wd;                /* nesterov: decay of a network's parameters */
	float *phi;               /* the Meta-Weight-Net, float, from lam */
	/* per meta-step */
	double *l, *w, *d;        /* K: losses, weights, g . eps_k */
	double *dl;               /* K x nh: dl_k/dlam */
	double *hg, *gphi;        /* nh: the hypergradient; one copy's dl/dphi */
	size_t n;                 /* trainable weights */
	float *dcopy, *dgrad;     /* device, n: a copy (then theta*), gradients */
	float *hth, *hcopy, *hgrad; /* host views: the device buffers
	                           * themselves when the backend's memory is
	                           * the host's */
	int hown;                 /* the host views are separate buffers */
	float *per_ex, *exw;      /* batch: per-example losses and weights */
	float *xraw, *xrot, *dxda, *hdx; /* rotate: the batch images */
	size_t img;               /* floats of a batch of images */
	float fill;               /* a blank pixel, normalised */
	float *vx;                /* a validation batch, host */
	int *vy, *vidx;
	int nval;                 /* examples the meta-step draws from */
	int batch;                /* the largest batch: the run's, or the
	                           * training set when that is smaller */
	long voff;                /* the next one */
	/* results */
	int nv;                   /* summary values */
	tt_method_value val[TT_EVO_VALUES];
	double *path;             /* npath x (1 + nv) */
	int npath, cpath;
	long path_every;
	long meta_steps, skipped;
	double t_meta;
} evo_run;

typedef struct evo_ck {
	uint32_t magic, what, nh, nv;
	uint64_t npath;
	int64_t at, voff, meta_steps, skipped;
	double t_meta;
} evo_ck;

static int evo_wants(const tt_train_config *c)
{
	return c->evograd.what != TT_EVO_OFF;
}

static void evo_model_config(const tt_train_config *c, tt_model_config *mc)
{
	if (c->evograd.what == TT_EVO_ROTATE)
		mc->input_grad = 1;
}

static void evo_free(void *state)
{
	evo_run *e = state;
	if (!e)
		return;
	free(e->lam);
	free(e->am);
	free(e->av);
	free(e->phi);
	free(e->l);
	free(e->w);
	free(e->d);
	free(e->dl);
	free(e->hg);
	free(e->gphi);
	if (e->hown) {
		free(e->hth);
		free(e->hcopy);
		free(e->hgrad);
	}
	free(e->per_ex);
	free(e->exw);
	free(e->xraw);
	free(e->xrot);
	free(e->dxda);
	free(e->hdx);
	free(e->vx);
	free(e->vy);
	free(e->vidx);
	free(e->path);
	free(e);
	/* the device buffers belong to the model's accounting: freed with it */
}

/* ---- the learned values ------------------------------------------------ */

/* phi (float) from lam, after an update or a checkpoint. */
static void lam_apply(evo_run *e, const tt_method_run *run)
{
	switch (e->cfg.what) {
	case TT_EVO_WD:
		run->opt->weight_decay = (float)exp(e->lam[0]);
		break;
	case TT_EVO_MWN:
		for (int j = 0; j < e->nh; j++)
			e->phi[j] = (float)e->lam[j];
		break;
	default:
		break;
	}
}

/* The summary of lam the path, the reports and the result show. */
static void summarise(evo_run *e)
{
	switch (e->cfg.what) {
	case TT_EVO_WD:
		e->val[0] = (tt_method_value){ "weight-decay", exp(e->lam[0]) };
		break;
	case TT_EVO_ROTATE:
		e->val[0] = (tt_method_value){ "angle", e->lam[0] };
		break;
	case TT_EVO_MWN:
		for (int i = 0; i < e->nv; i++)
			e->val[i] = (tt_method_value){ mwn_names[i],
			                               tt_mwn_out(e->phi, TT_MWN_HIDDEN, mwn_at[i]) };
		break;
	}
}

static void path_add(evo_run *e, long step)
{
	if (e->npath == e->cpath) {
		int cap = e->cpath ? 2 * e->cpath : 64;
		double *p = realloc(e->path, (size_t)cap * (1 + e->nv) * sizeof *p);
		if (!p)
			return; /* the path is a record, not the state: drop a point */
		e->path = p;
		e->cpath = cap;
	}
	double *row = e->path + (size_t)e->npath * (1 + e->nv);
	row[0] = (double)step;
	for (int i = 0; i < e->nv; i++)
		row[1 + i] = e->val[i].value;
	e->npath++;
}

/* ---- set-up ------------------------------------------------------------ */

static int evo_setup(const tt_method_run *run, void **state, tt_err *err)
{
	const tt_train_config *c = run->c;
	const tt_train_data *d = run->d;
	tt_model *m = run->m;
	evo_run *e = calloc(1, sizeof *e);
	*state = e;
	if (!e)
		return tt_err_set(err, TT_ERUNTIME, "evograd: out of memory");
	e->cfg = c->evograd;
	e->be = tt_model_backend(m);
	e->lr = e->cfg.lr > 0 ? e->cfg.lr : tt_evo_default_lr(e->cfg.what);
	e->wd = e->cfg.what == TT_EVO_MWN ? c->opt.weight_decay : 0;
	if (c->gates.strength > 0)
		return tt_err_set(err, TT_EINPUT, "--evograd with --gates: a compaction "
		                  "rebuilds the network under EvoGrad's weight copy; use one "
		                  "of them");
	if (c->rotate != 0 && e->cfg.what != TT_EVO_ROTATE)
		return tt_err_set(err, TT_EINPUT, "--rotate %g: the training images' rotation "
		                  "is what --evograd rotate learns; this run learns %s",
		                  c->rotate, e->cfg.what == TT_EVO_WD ? "wd" : "mwn");
	if (e->cfg.what == TT_EVO_WD && !(c->opt.weight_decay > 0))
		return tt_err_set(err, TT_EINPUT, "--evograd wd learns the logarithm of the "
		                  "weight decay, which starts at --weight-decay: expected a "
		                  "value above 0, found %g", c->opt.weight_decay);
	if (d->val.n < 1)
		return tt_err_set(err, TT_EINPUT, "--evograd needs validation examples for its "
		                  "meta-step: --val-size is 0");
	if (c->clean_val > d->val.n)
		return tt_err_set(err, TT_EINPUT, "--clean-val %d: only %d validation examples "
		                  "(--val-size); expected 0..%d", c->clean_val, d->val.n,
		                  d->val.n);
	e->nval = c->clean_val > 0 ? c->clean_val : d->val.n;
	int K = e->cfg.k, B = c->batch < d->train.n ? c->batch : d->train.n;
	e->batch = B;
	e->nh = e->cfg.what == TT_EVO_MWN ? tt_mwn_nparams(TT_MWN_HIDDEN) : 1;
	e->nv = e->cfg.what == TT_EVO_MWN ? (int)(sizeof mwn_at / sizeof *mwn_at) : 1;
	e->n = tt_model_ntrainable(m);
	e->img = (size_t)B * d->train.h * d->train.w * d->train.c;
	size_t nh = (size_t)e->nh;
	e->lam = calloc(nh, sizeof *e->lam);
	e->am = calloc(nh, sizeof *e->am);
	e->av = calloc(nh, sizeof *e->av);
	e->hg = calloc(nh, sizeof *e->hg);
	e->gphi = calloc(nh, sizeof *e->gphi);
	e->l = calloc((size_t)K, sizeof *e->l);
	e->w = calloc((size_t)K, sizeof *e->w);
	e->d = calloc((size_t)K, sizeof *e->d);
	e->dl = calloc((size_t)K * nh, sizeof *e->dl);
	e->vx = malloc(e->img * sizeof *e->vx);
	e->vy = malloc((size_t)B * sizeof *e->vy);
	e->vidx = malloc((size_t)e->nval * sizeof *e->vidx);
	if (!e->lam || !e->am || !e->av || !e->hg || !e->gphi || !e->l || !e->w || !e->d ||
	    !e->dl || !e->vx || !e->vy || !e->vidx)
		goto oom;
	size_t bytes = e->n * sizeof(float);
	e->dcopy = tt_model_mem_alloc(m, TT_MEM_METHOD, bytes);
	e->dgrad = tt_model_mem_alloc(m, TT_MEM_METHOD, bytes);
	if (!e->dcopy || !e->dgrad)
		goto oom;
	e->hown = !e->be->host_memory;
	if (e->hown) {
		e->hth = malloc(bytes);
		e->hcopy = malloc(bytes);
		e->hgrad = malloc(bytes);
		if (!e->hth || !e->hcopy || !e->hgrad)
			goto oom;
	} else {
		e->hcopy = e->dcopy;
		e->hgrad = e->dgrad;
	}
	for (int i = 0; i < e->nval; i++)
		e->vidx[i] = i;
	switch (e->cfg.what) {
	case TT_EVO_WD:
		e->lam[0] = log(c->opt.weight_decay);
		break;
	case TT_EVO_ROTATE:
		e->lam[0] = c->rotate;
		e->xraw = malloc(e->img * sizeof *e->xraw);
		e->xrot = malloc(e->img * sizeof *e->xrot);
		e->dxda = malloc(e->img * sizeof *e->dxda);
		e->hdx = malloc(e->img * sizeof *e->hdx);
		if (!e->xraw || !e->xrot || !e->dxda || !e->hdx)
			goto oom;
		e->fill = -d->train.mean / d->train.std;
		break;
	case TT_EVO_MWN:
		e->phi = malloc(nh * sizeof *e->phi);
		e->per_ex = malloc((size_t)B * sizeof *e->per_ex);
		e->exw = malloc((size_t)B * sizeof *e->exw);
		if (!e->phi || !e->per_ex || !e->exw)
			goto oom;
		tt_mwn_init(e->phi, TT_MWN_HIDDEN, c->seed);
		for (size_t j = 0; j < nh; j++)
			e->lam[j] = e->phi[j];
		break;
	}
	lam_apply(e, run);
	summarise(e);
	e->path_every = run->total / PATH_POINTS > 1 ? run->total / PATH_POINTS : 1;
	if (!c->resume) /* else ck_read starts or restores the path */
		path_add(e, 0);
	return TT_OK;
oom:
	return tt_err_set(err, TT_ERUNTIME, "evograd: out of memory for %d copies of %zu "
	                  "weights", K, e->n);
}

/* ---- the step ---------------------------------------------------------- */

/* rotate: the batch turned by the current angle, with d(batch)/d(angle)
 * (per degree) kept for the meta-step. */
static int evo_before_step(void *state, const tt_method_run *run, tt_err *err)
{
	evo_run *e = state;
	(void)err;
	if (e->cfg.what != TT_EVO_ROTATE)
		return TT_OK;
	const tt_dataset *tr = &run->d->train;
	size_t bytes = (size_t)run->batch * tr->h * tr->w * tr->c * sizeof(float);
	float *x = tt_model_input(run->m);
	e->be->download(e->xraw, x, bytes);
	tt_xform_rotate(e->xraw, run->batch, tr->h, tr->w, tr->c, e->lam[0], e->fill,
	                e->xrot, e->dxda);
	e->be->upload(x, e->xrot, bytes);
	return TT_OK;
}

/* mwn: the step's loss weighs each example by the network's v(loss_i). */
static int evo_loss(void *state, tt_method_run *run, tt_err *err)
{
	evo_run *e = state;
	tt_model *m = run->m;
	int n = run->batch;
	float ls = run->c->label_smoothing;
	(void)err;
	if (e->cfg.what != TT_EVO_MWN) {
		run->loss = tt_model_loss(m, tt_model_labels(m), n, ls, 1, &run->right);
		return TT_OK;
	}
	double mean = tt_model_loss_ex(m, tt_model_labels(m), n, ls, NULL, 0, e->per_ex,
	                               &run->right);
	tt_mwn_weights(e->phi, TT_MWN_HIDDEN, e->per_ex, n, e->exw);
	tt_model_loss_ex(m, tt_model_labels(m), n, ls, e->exw, 1, NULL, NULL);
	run->loss = mean; /* the curves show the plain mean */
	return TT_OK;
}

/* dst = theta + sum_k w_k eps_k, the noise regenerated. */
static void combine(const evo_run *e, long step, uint64_t seed, const float *theta,
                    float *dst)
{
	tt_evo_key keys[1024];
	for (int k = 0; k < e->cfg.k; k++)
		keys[k] = (tt_evo_key){ seed, (uint64_t)step, (uint32_t)k, e->cfg.noise };
	tt_evo_combine(keys, e->w, e->cfg.k, (float)e->cfg.sigma, theta, e->n, dst);
}

/* Copy k's training loss on the step's batch and its dl/dlam (row k of
 * dl).  The copy is in dcopy. */
static double copy_loss(evo_run *e, const tt_method_run *run, int k, double sq)
{
	tt_model *m = run->m;
	int n = run->batch;
	float ls = run->c->label_smoothing;
	double *dl = e->dl + (size_t)k * e->nh;
	tt_model_weights w = { .suffix = e->dcopy, .keep_stats = 1 };
	tt_model_forward_suffix(m, &w);
	switch (e->cfg.what) {
	case TT_EVO_WD: {
		double wd = exp(e->lam[0]);
		dl[0] = wd * sq / 2; /* d/d log(wd) */
		return tt_model_loss(m, tt_model_labels(m), n, ls, 0, NULL) + wd * sq / 2;
	}
	case TT_EVO_MWN:
		tt_model_loss_ex(m, tt_model_labels(m), n, ls, NULL, 0, e->per_ex, NULL);
		return tt_mwn_loss_grad(e->phi, TT_MWN_HIDDEN, e->per_ex, n, dl);
	case TT_EVO_ROTATE: {
		double l = tt_model_loss(m, tt_model_labels(m), n, ls, 1, NULL);
		tt_model_backward_into(m, e->dgrad);
		const float *dx = tt_model_input_grad(m);
		const float *hx = dx;
		if (!e->be->host_memory) {
			e->be->download(e->hdx, dx, e->img * sizeof(float));
			hx = e->hdx;
		}
		const tt_dataset *tr = &run->d->train;
		size_t ne = (size_t)n * tr->h * tr->w * tr->c;
		double s = 0;
		for (size_t i = 0; i < ne; i++)
			s += (double)hx[i] * e->dxda[i];
		dl[0] = s;
		return l;
	}
	}
	return NAN;
}

/* One step of lam along hg with the hyperparameters' optimizer. */
static void lam_step(evo_run *e)
{
	if (e->cfg.opt == TT_EVO_SGD) {
		for (int j = 0; j < e->nh; j++)
			e->lam[j] -= e->lr * e->hg[j];
		return;
	}
	if (e->cfg.opt == TT_EVO_NESTEROV) {
		/* PyTorch's SGD: g += wd lam; buf = 0.9 buf + g; lam -= lr (g + 0.9 buf) */
		const double mom = 0.9;
		for (int j = 0; j < e->nh; j++) {
			double g = e->hg[j] + e->wd * e->lam[j];
			e->am[j] = e->at ? mom * e->am[j] + g : g;
			e->lam[j] -= e->lr * (g + mom * e->am[j]);
		}
		e->at++;
		return;
	}
	const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
	e->at++;
	double c1 = 1 - pow(b1, (double)e->at), c2 = 1 - pow(b2, (double)e->at);
	for (int j = 0; j < e->nh; j++) {
		e->am[j] = b1 * e->am[j] + (1 - b1) * e->hg[j];
		e->av[j] = b2 * e->av[j] + (1 - b2) * e->hg[j] * e->hg[j];
		e->lam[j] -= e->lr * (e->am[j] / c1) / (sqrt(e->av[j] / c2) + eps);
	}
}

/* The next validation batch of the first nval examples, into the model's
 * input; returns its size. */
static int val_batch(evo_run *e, const tt_method_run *run)
{
	const tt_dataset *v = &run->d->val;
	tt_model *m = run->m;
	int b = e->batch < e->nval ? e->batch : e->nval;
	if (e->voff + b > e->nval)
		e->voff = 0;
	tt_data_batch(v, e->vidx + e->voff, b, 0, NULL, e->vx, e->vy);
	e->voff += b;
	e->be->upload(tt_model_input(m), e->vx, (size_t)b * v->h * v->w * v->c * sizeof(float));
	e->be->upload(tt_model_labels(m), e->vy, (size_t)b * sizeof(int));
	return b;
}

/*
 * The meta-step (the file's top comment): hg = dL_V/dlam at the weights
 * the step left.  Returns 0, or -1 when a copy's loss was not finite (hg
 * untouched).  Leaves the model's input holding the validation batch.
 */
static int meta_grad(evo_run *e, const tt_method_run *run)
{
	tt_model *m = run->m;
	const float *theta = tt_model_params(m) + tt_model_trainable_offset(m);
	const float *th = theta;
	uint64_t seed = run->c->seed;
	long step = run->step;
	float sigma = (float)e->cfg.sigma;
	if (e->hown) {
		e->be->download(e->hth, theta, e->n * sizeof(float));
		th = e->hth;
	}
	for (int k = 0; k < e->cfg.k; k++) {
		tt_evo_key key = { seed, (uint64_t)step, (uint32_t)k, e->cfg.noise };
		double sq = tt_evo_perturb(&key, sigma, th, e->n, e->hcopy);
		if (e->hown)
			e->be->upload(e->dcopy, e->hcopy, e->n * sizeof(float));
		e->l[k] = copy_loss(e, run, k, sq);
	}
	if (tt_evo_weights(e->l, e->cfg.k, e->cfg.tau, e->w))
		return -1;
	combine(e, step, seed, th, e->hcopy);
	if (e->hown)
		e->be->upload(e->dcopy, e->hcopy, e->n * sizeof(float));
	int b = val_batch(e, run);
	tt_model_weights w = { .suffix = e->dcopy, .keep_stats = 1 };
	tt_model_forward_on(m, &w, tt_model_input(m), b, 1);
	tt_model_loss(m, tt_model_labels(m), b, 0.0f, 1, NULL);
	tt_model_backward_into(m, e->dgrad);
	if (e->hown)
		e->be->download(e->hgrad, e->dgrad, e->n * sizeof(float));
	for (int k = 0; k < e->cfg.k; k++) {
		tt_evo_key key = { seed, (uint64_t)step, (uint32_t)k, e->cfg.noise };
		e->d[k] = tt_evo_dot(&key, sigma, e->hgrad, 0, e->n);
	}
	tt_evo_hypergrad(e->cfg.k, e->nh, e->w, e->d, e->dl, e->cfg.tau, e->hg);
	return 0;
}

static void evo_after_step(void *state, const tt_method_run *run)
{
	evo_run *e = state;
	if (run->step % e->cfg.every)
		return;
	double t0 = tt_clock_mono();
	/* run->step counts this step already; the noise keys on the step
	 * just taken */
	tt_method_run at = *run;
	at.step = run->step - 1;
	if (meta_grad(e, &at) == 0) {
		lam_step(e);
		lam_apply(e, run);
		e->meta_steps++;
	} else {
		e->skipped++;
	}
	e->be->sync();
	e->t_meta += tt_clock_mono() - t0;
	summarise(e);
	if (run->step % e->path_every == 0 || run->step == run->total)
		path_add(e, run->step);
}

/* ---- checkpoints ------------------------------------------------------- */

static size_t evo_ck_size(void *state, const tt_method_run *run)
{
	evo_run *e = state;
	(void)run;
	return sizeof(evo_ck) + 3 * (size_t)e->nh * sizeof(double) +
	       (size_t)e->npath * (1 + e->nv) * sizeof(double);
}

static void evo_ck_write(void *state, const tt_method_run *run, char *p)
{
	evo_run *e = state;
	(void)run;
	evo_ck h = { EVO_MAGIC, (uint32_t)e->cfg.what, (uint32_t)e->nh, (uint32_t)e->nv,
	             (uint64_t)e->npath, e->at, e->voff, e->meta_steps, e->skipped,
	             e->t_meta };
	size_t nh = (size_t)e->nh * sizeof(double);
	memcpy(p, &h, sizeof h);
	p += sizeof h;
	memcpy(p, e->lam, nh);
	memcpy(p + nh, e->am, nh);
	memcpy(p + 2 * nh, e->av, nh);
	p += 3 * nh;
	if (e->npath)
		memcpy(p, e->path, (size_t)e->npath * (1 + e->nv) * sizeof(double));
}

static const char *const what_name[] = { "off", "wd", "mwn", "rotate" };

static int evo_ck_read(void *state, const tt_method_run *run, const char *p, size_t len,
                       int weights_only, tt_err *err)
{
	evo_run *e = state;
	evo_ck h;
	if (!p) { /* a blob of a run without EvoGrad: start from the options */
		path_add(e, run->step);
		return TT_OK;
	}
	if (len < sizeof h)
		return tt_err_set(err, TT_EINPUT, "checkpoint: EvoGrad section of %zu bytes, "
		                  "expected at least %zu", len, sizeof h);
	memcpy(&h, p, sizeof h);
	size_t nh = (size_t)e->nh * sizeof(double);
	if (h.magic != EVO_MAGIC || h.what != (uint32_t)e->cfg.what ||
	    h.nh != (uint32_t)e->nh || h.nv != (uint32_t)e->nv ||
	    h.npath > (len - sizeof h) / sizeof(double) ||
	    len != sizeof h + 3 * nh + h.npath * (1 + e->nv) * sizeof(double))
		return tt_err_set(err, TT_EINPUT, "checkpoint: EvoGrad section (%zu bytes) "
		                  "learns %s with %u values; this run learns %s with %d",
		                  len, h.what < 4 ? what_name[h.what] : "?", h.nh,
		                  what_name[e->cfg.what], e->nh);
	p += sizeof h;
	memcpy(e->lam, p, nh);
	if (!weights_only) {
		memcpy(e->am, p + nh, nh);
		memcpy(e->av, p + 2 * nh, nh);
		e->at = h.at;
		e->voff = h.voff >= 0 && h.voff <= e->nval ? h.voff : 0;
		e->meta_steps = h.meta_steps;
		e->skipped = h.skipped;
		e->t_meta = h.t_meta;
		size_t bytes = h.npath * (1 + e->nv) * sizeof(double);
		double *path = bytes ? malloc(bytes) : NULL;
		if (bytes && !path)
			return tt_err_set(err, TT_ERUNTIME, "checkpoint: out of memory for "
			                  "EvoGrad's path of %llu points",
			                  (unsigned long long)h.npath);
		if (bytes)
			memcpy(path, p + 3 * nh, bytes);
		free(e->path);
		e->path = path;
		e->npath = e->cpath = (int)h.npath;
	}
	lam_apply(e, run);
	summarise(e);
	if (weights_only)
		path_add(e, run->step);
	return TT_OK;
}

/* ---- results ----------------------------------------------------------- */

static void evo_result(void *state, const tt_method_run *run, tt_train_result *r)
{
	evo_run *e = state;
	tt_train_evograd *o = &r->evograd;
	(void)run;
	summarise(e);
	o->on = 1;
	o->what = e->cfg.what;
	o->nvalues = e->nv;
	memcpy(o->value, e->val, sizeof o->value);
	o->meta_steps = e->meta_steps;
	o->skipped = e->skipped;
	o->meta_seconds = e->t_meta;
	o->extra_bytes = r->mem[TT_MEM_METHOD];
	size_t bytes = (size_t)e->npath * (1 + e->nv) * sizeof(double);
	o->path = bytes ? malloc(bytes) : NULL;
	if (o->path) {
		memcpy(o->path, e->path, bytes);
		o->npath = e->npath;
	}
}

static void num(FILE *f, const char *key, double v, int comma)
{
	if (isfinite(v))
		fprintf(f, "\"%s\":%.6g%s", key, v, comma ? "," : "");
	else
		fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
}

/*
 * What it learned, its path as [step, value, ...] rows, and what it cost:
 * the meta-steps' seconds, the time of a step with and without its
 * meta-step, and the device bytes of its buffers.
 */
static void evo_json(const tt_train_result *r, FILE *f)
{
	const tt_train_evograd *o = &r->evograd;
	fprintf(f, "{\"what\":\"%s\",\"values\":{", what_name[o->what]);
	for (int i = 0; i < o->nvalues; i++) {
		if (i)
			fputc(',', f);
		num(f, o->value[i].name, o->value[i].value, 0);
	}
	fprintf(f, "},\"names\":[");
	for (int i = 0; i < o->nvalues; i++)
		fprintf(f, "%s\"%s\"", i ? "," : "", o->value[i].name);
	fprintf(f, "],\"path\":[");
	for (int p = 0; p < o->npath; p++) {
		const double *row = o->path + (size_t)p * (1 + o->nvalues);
		fprintf(f, "%s[%.0f", p ? "," : "", row[0]);
		for (int i = 0; i < o->nvalues; i++)
			fprintf(f, isfinite(row[1 + i]) ? ",%.6g" : ",null", row[1 + i]);
		fputc(']', f);
	}
	double plain = r->seconds - o->meta_seconds;
	fprintf(f, "],\"meta_steps\":%ld,\"skipped\":%ld,", o->meta_steps, o->skipped);
	num(f, "meta_seconds", o->meta_seconds, 1);
	num(f, "step_ms", r->steps ? 1e3 * r->seconds / r->steps : NAN, 1);
	num(f, "plain_step_ms", r->steps ? 1e3 * plain / r->steps : NAN, 1);
	num(f, "step_ratio", plain > 0 ? r->seconds / plain : NAN, 1);
	fprintf(f, "\"extra_bytes\":%zu}", o->extra_bytes);
}

static int evo_values(const tt_train_result *r, tt_method_value *v, int max)
{
	const tt_train_evograd *o = &r->evograd;
	int n = 0;
	for (int i = 0; i < o->nvalues && n < max; i++)
		v[n++] = o->value[i];
	return n;
}

/* The learned hyperparameters now: the hyper table's points. */
static int evo_report(void *state, const tt_method_run *run, int final,
                      tt_method_report *rep)
{
	evo_run *e = state;
	(void)run;
	(void)final;
	summarise(e);
	rep->nvalues = e->nv;
	rep->values = e->val;
	return 1;
}

const tt_method tt_method_evograd = {
	.name = "evograd",
	.tag = TT_CK_EVOGRAD,
	.wants = evo_wants,
	.model_config = evo_model_config,
	.setup = evo_setup,
	.free = evo_free,
	.before_step = evo_before_step,
	.loss = evo_loss,
	.after_step = evo_after_step,
	.ck_size = evo_ck_size,
	.ck_write = evo_ck_write,
	.ck_read = evo_ck_read,
	.result = evo_result,
	.json = evo_json,
	.values = evo_values,
	.report = evo_report,
};
