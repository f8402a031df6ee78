/*
 * train.c — one training run; see train.h.
 *
 * Batches are assembled on the host (normalised, optionally augmented),
 * uploaded into the model's input buffers, and stepped through forward,
 * loss, backward and the optimizer, with the hooks of the run's training
 * methods around them (method.h); the loop names no method.  Checkpoints
 * are tagged sections (ckpt.h): the core one is written and read here,
 * each method's by the method.  Wall time counts training steps only;
 * evaluation is reported but not charged to samples/s.
 */
#include "train.h"

#include "ckpt.h"
#include "clock.h"
#include "fcache.h"
#include "method.h"
#include "trainopt.h"
#include "transform.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void tt_train_defaults(tt_train_config *c)
{
	char buf[256];
	memset(c, 0, sizeof *c);
	/* what the options table leaves to code: the gates' and the
	 * optimizer's inner constants, and the machine's cores */
	tt_gate_defaults(&c->gates);
	c->gates.lam_on = c->gates.lam_off = 0; /* from the weight decay */
	c->opt.beta1 = 0.9f;
	c->opt.beta2 = 0.999f;
	c->opt.eps = 1e-8f;
	c->opt.step_gamma = 0.1f;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	c->threads = cores > 0 ? (int)cores : 1;
	/* every default the table gives (trainopt.c) */
	for (int i = 0; i < tt_trainopt_count; i++) {
		const tt_trainopt *o = &tt_trainopts[i];
		if (o->def) {
			const char *why = tt_trainopt_parse(o, o->def, c, NULL, buf, sizeof buf);
			TT_ASSERT(why == NULL);
		}
	}
}

/* ---- data -------------------------------------------------------------- */

#define SYNTH_TEST 2000

int tt_train_data_load(const tt_train_config *c, tt_train_data *d, tt_err *err)
{
	tt_dataset all = {0};
	int rc;
	memset(d, 0, sizeof *d);
	if (strcmp(c->data, "synthetic") == 0) {
		snprintf(d->source, sizeof d->source, "synthetic (seed %llu)",
		         (unsigned long long)c->seed);
		if ((rc = tt_data_synthetic(c->train_size + c->val_size, c->seed, &all, err)))
			return rc;
		if (c->test && (rc = tt_data_synthetic(SYNTH_TEST, c->seed + 0x7e57, &d->test, err)))
			goto fail;
	} else {
		const char *dir = strcmp(c->data, "fashion-mnist") == 0 ? TT_FASHION_DIR : c->data;
		snprintf(d->source, sizeof d->source, "%s", dir);
		if ((rc = tt_data_load_dir(dir, 0, &all, err)))
			return rc;
		if (c->test && (rc = tt_data_load_dir(dir, 1, &d->test, err)))
			goto fail;
	}
	if ((long)c->train_size + c->val_size > all.n) {
		rc = tt_err_set(err, TT_EINPUT,
		                "--train-size %d + --val-size %d = %ld examples, but %s "
		                "has %d training examples", c->train_size, c->val_size,
		                (long)c->train_size + c->val_size, d->source, all.n);
		goto fail;
	}
	if ((rc = tt_data_split(&all, c->train_size, c->val_size, c->seed, &d->train,
	                        &d->val, err)))
		goto fail;
	d->test.mean = d->train.mean;
	d->test.std = d->train.std;
	tt_data_free(&all);
	/* the experiments' changes: noise on the training labels only, the
	 * rotation on what the run is judged by */
	if (c->label_noise > 0 &&
	    (rc = tt_xform_label_noise(&d->train, c->label_noise, c->seed, NULL, err)))
		goto fail;
	if (c->val_rotate != 0 &&
	    ((d->val.n && (rc = tt_xform_rotate_set(&d->val, c->val_rotate, err))) ||
	     (d->test.n && (rc = tt_xform_rotate_set(&d->test, c->val_rotate, err)))))
		goto fail;
	return TT_OK;
fail:
	tt_data_free(&all);
	tt_train_data_free(d);
	return rc;
}

void tt_train_data_free(tt_train_data *d)
{
	tt_data_free(&d->train);
	tt_data_free(&d->val);
	tt_data_free(&d->test);
}

/* ---- the loop ---------------------------------------------------------- */

typedef struct batcher {
	float *hx;
	int *hy;
	int *idx;         /* the training order, carried from epoch to epoch */
	int *eidx;        /* 0..n-1 for evaluation */
} batcher;

static void fill_result(const tt_train_config *c, tt_model *m, tt_train_result *r)
{
	const tt_mem *mem = tt_model_mem(m);
	snprintf(r->model, sizeof r->model, "%s", c->model);
	r->stages = tt_model_stages(m);
	r->trainable = tt_model_trainable(m);
	r->train_macs = tt_model_train_macs(m);
	for (int k = 0; k < TT_MEM_KINDS; k++)
		r->mem[k] = tt_mem_kind_total(mem, k);
	r->mem_total = mem->current;
	r->mem_peak = mem->peak;
	for (int s = 0; s < r->stages; s++) {
		tt_stage_mem sm;
		tt_model_stage_mem(m, s, &sm);
		tt_train_stage *o = &r->stage[s];
		snprintf(o->name, sizeof o->name, "%s", sm.name);
		o->frozen = sm.frozen;
		o->params = sm.params;
		o->grads = sm.grads;
		o->optim = sm.optim;
		o->activations = sm.activations;
		o->layer = -1;
	}
}

/* ---- a run ------------------------------------------------------------- */

/* One method the run uses (method.h): its table and its state. */
typedef struct active {
	const tt_method *m;
	void *st;
} active;

/* A run's working state: what the loop carries from step to step, and
 * what the core checkpoint section saves of it. */
typedef struct run {
	const tt_train_config *c;
	const tt_train_data *d;
	const tt_train_hooks *h;
	tt_train_result *r;
	const tt_backend *be;
	tt_model *m;
	batcher bt;
	int batch, slots;
	tt_optim_config opt;
	tt_method_run mr;         /* step, epoch, total, spe: shared with methods */
	active meth[TT_METHODS_MAX];
	int nmeth;
	const active *stepper;    /* the method that replaces the step, or NULL */
	const active *loss;       /* the method that replaces the loss, or NULL */
	const active *eval;       /* the method that replaces evaluation, or NULL */
	tt_rng order, aug;
	double t_train, ep_loss, ep_right;
	long ep_seen, seen;
	int stop, evaluated;
	char *ckbuf;              /* the checkpoint blob, ckcap bytes */
	size_t ckcap;
	/* The feature cache (fcache.h), when the run's prefix can use it: the
	 * slots of the training, validation and test sets (NULL: recomputed),
	 * a batch of boundary rows on the host, floats per example. */
	tt_fcache_slot *fc[3];
	float *fch;
	size_t fcper;
	double macs_done;         /* computed since open: steps, calibration */
	long seen0;               /* examples trained before open (resumed) */
} run;

/* Boundary rows of the last forward, b of them, into the cache slot as
 * examples idx. */
static void fcache_store(run *R, tt_fcache_slot *s, const int *idx, int b)
{
	R->be->download(R->fch, tt_model_boundary(R->m, NULL), (size_t)b * R->fcper * sizeof(float));
	tt_fcache_put(R->c->fcache, s, idx, b, R->fch);
}

/* A forward of the b examples idx of set whose images and labels are on
 * the device: from the cached prefix outputs when slot s holds them all,
 * else the whole model (and the outputs then go to the cache). */
static void forward_cached(run *R, tt_fcache_slot *s, const int *idx, int b, int train)
{
	tt_model *m = R->m;
	if (s && tt_fcache_get(R->c->fcache, s, idx, b, R->fch)) {
		R->be->upload(tt_model_boundary(m, NULL), R->fch, (size_t)b * R->fcper * sizeof(float));
		tt_model_forward_boundary(m, b, train);
		R->r->fcache_hits += b;
		return;
	}
	tt_model_forward(m, tt_model_input(m), b, train);
	if (s) {
		fcache_store(R, s, idx, b);
		R->r->fcache_misses += b;
	}
}

/* Mean loss and accuracy of the model over d, in batches, evaluation mode;
 * the prefix's outputs from cache slot s when it has them. */
static void evaluate(run *R, const tt_dataset *d, tt_fcache_slot *s, double *loss,
                     double *acc)
{
	tt_model *m = R->m;
	batcher *bt = &R->bt;
	int batch = R->batch;
	double sum = 0;
	long right = 0;
	for (int off = 0; off < d->n; off += batch) {
		int b = d->n - off < batch ? d->n - off : batch, ok = 0;
		tt_data_batch(d, bt->eidx + off, b, 0, NULL, bt->hx, bt->hy);
		R->be->upload(tt_model_input(m), bt->hx,
		              (size_t)b * d->h * d->w * d->c * sizeof(float));
		R->be->upload(tt_model_labels(m), bt->hy, (size_t)b * sizeof(int));
		forward_cached(R, s, bt->eidx + off, b, 0);
		sum += tt_model_loss(m, tt_model_labels(m), b, 0.0f, 0, &ok) * b;
		right += ok;
	}
	*loss = d->n ? sum / d->n : NAN;
	*acc = d->n ? (double)right / d->n : NAN;
}

/* ---- checkpoints ------------------------------------------------------- */

/* The core section's payload at p: the header, then the model's arrays
 * and the training order (ckpt.h). */
static void core_write(run *R, const tt_ck_core *h, char *p)
{
	const tt_backend *be = R->be;
	tt_model *m = R->m;
	memcpy(p, h, sizeof *h);
	p += sizeof *h;
	be->download(p, tt_model_params(m), h->nparams * sizeof(float));
	p += h->nparams * sizeof(float);
	if (h->nstate)
		be->download(p, tt_model_state(m), h->nstate * sizeof(float));
	p += h->nstate * sizeof(float);
	for (uint32_t k = 0; k < h->slots; k++) {
		be->download(p, tt_model_optim(m, (int)k), h->ntrain * sizeof(float));
		p += h->ntrain * sizeof(float);
	}
	for (uint64_t i = 0; i < h->n_idx; i++) {
		int32_t v = R->bt.idx[i];
		memcpy(p, &v, sizeof v);
		p += sizeof v;
	}
}

/* The blob (the core section, then each method's) to on_checkpoint. */
static int run_checkpoint(run *R, tt_err *err)
{
	tt_method_run *mr = &R->mr;
	tt_ck_core h = {
		.nparams = tt_model_nparams(R->m), .nstate = tt_model_nstate(R->m),
		.ntrain = tt_model_ntrainable(R->m), .n_idx = (uint64_t)R->d->train.n,
		.slots = (uint32_t)R->slots, .step = mr->step, .epoch = mr->epoch,
		.ep_seen = R->ep_seen, .seen = R->seen, .ep_loss = R->ep_loss,
		.ep_right = R->ep_right, .t_train = R->t_train, .order = R->order, .aug = R->aug,
	};
	snprintf(h.spec, sizeof h.spec, "%s", R->c->model);
	/* len: the core's, then each method's (0: no section); sec: the
	 * sections written */
	size_t len[TT_METHODS_MAX + 1], sec[TT_METHODS_MAX + 1];
	int n = 0;
	len[0] = tt_ck_core_size(&h);
	for (int i = 0; i < R->nmeth; i++) {
		const active *a = &R->meth[i];
		len[i + 1] = a->m->tag && a->m->ck_size ? a->m->ck_size(a->st, mr) : 0;
	}
	for (int i = 0; i <= R->nmeth; i++)
		if (len[i])
			sec[n++] = len[i];
	size_t total = tt_ck_size(sec, n);
	if (total > R->ckcap) {
		char *nb = realloc(R->ckbuf, total);
		if (!nb)
			return tt_err_set(err, TT_ERUNTIME, "out of memory for a checkpoint of %zu "
			                  "bytes", total);
		R->ckbuf = nb;
		R->ckcap = total;
	}
	char *p = tt_ck_put(tt_ck_begin(R->ckbuf), TT_CK_CORE, len[0]);
	core_write(R, &h, p);
	p += len[0];
	for (int i = 0; i < R->nmeth; i++) {
		const active *a = &R->meth[i];
		if (!len[i + 1])
			continue;
		p = tt_ck_put(p, a->m->tag, len[i + 1]);
		a->m->ck_write(a->st, mr, p);
		p += len[i + 1];
	}
	if (R->h->on_checkpoint(R->h->ud, mr->step, R->ckbuf, total))
		return tt_err_set(err, TT_ERUNTIME, "checkpoint at step %ld could not be stored",
		                  mr->step);
	return TT_OK;
}

/*
 * The core section into the model (sized as the blob's by the methods'
 * sections) and, unless weights_only, into the run.  The optimizer state
 * of stages trainable in the blob is kept when the model now trains as
 * many or more stages (they are a suffix of both).
 */
static int core_read(run *R, const tt_ck_core *h, const char *p, size_t len, tt_err *err)
{
	tt_model *m = R->m;
	int weights_only = R->c->resume_weights_only, n_idx = R->d->train.n;
	if (h->nparams != tt_model_nparams(m) || h->nstate != tt_model_nstate(m))
		return tt_err_set(err, TT_EINPUT, "checkpoint of '%.*s' (%llu parameters, "
		                  "%zu bytes) does not fit model '%s' (%zu parameters)",
		                  (int)sizeof h->spec, h->spec, (unsigned long long)h->nparams,
		                  len, R->c->model, tt_model_nparams(m));
	size_t ntrain = tt_model_ntrainable(m);
	int slots_now = tt_model_optim(m, 1) ? 2 : tt_model_optim(m, 0) ? 1 : 0;
	if (!weights_only && (h->ntrain != ntrain || (int)h->slots != slots_now ||
	                      (int)h->n_idx != n_idx))
		return tt_err_set(err, TT_EINPUT, "checkpoint: trains %llu parameters with %u "
		                  "optimizer slots over %llu examples; this run %zu, %d, %d",
		                  (unsigned long long)h->ntrain, h->slots,
		                  (unsigned long long)h->n_idx, ntrain, slots_now, n_idx);
	R->be->upload(tt_model_params(m), p, h->nparams * sizeof(float));
	p += h->nparams * sizeof(float);
	if (h->nstate)
		R->be->upload(tt_model_state(m), p, h->nstate * sizeof(float));
	p += h->nstate * sizeof(float);
	for (uint32_t k = 0; k < h->slots; k++, p += h->ntrain * sizeof(float)) {
		float *o = tt_model_optim(m, (int)k);
		if (!o || (int)h->slots != slots_now || h->ntrain > ntrain)
			continue; /* another optimizer, or fewer stages now: start fresh */
		R->be->upload(o + (ntrain - h->ntrain), p, h->ntrain * sizeof(float));
	}
	if (weights_only)
		return TT_OK;
	for (int i = 0; i < n_idx; i++) {
		int32_t v;
		memcpy(&v, p, sizeof v);
		p += sizeof v;
		if (v < 0 || v >= n_idx)
			return tt_err_set(err, TT_EINPUT, "checkpoint: example %d of the order "
			                  "is %d, expected 0..%d", i, v, n_idx - 1);
		R->bt.idx[i] = v;
	}
	R->mr.step = (long)h->step;
	R->mr.epoch = (int)h->epoch;
	R->ep_seen = (long)h->ep_seen;
	R->seen = (long)h->seen;
	R->ep_loss = h->ep_loss;
	R->ep_right = h->ep_right;
	R->t_train = h->t_train;
	R->order = h->order;
	R->aug = h->aug;
	if (R->ep_seen) {
		R->r->train_loss = R->ep_loss / R->ep_seen;
		R->r->train_acc = R->ep_right / R->ep_seen;
	}
	return TT_OK;
}

/*
 * Resume from c->resume: its core section's model must be this run's;
 * a section of a method this run does not use is refused when it shapes
 * the model and skipped otherwise, as are tags no method knows; each
 * method of the run reads its section (or hears there is none) before
 * the core loads the weights into the model as the methods left it.
 */
static int run_resume(run *R, tt_err *err)
{
	const tt_train_config *c = R->c;
	tt_ck_section s[TT_CK_SECTIONS_MAX];
	int n, rc;
	if ((rc = tt_ck_parse(c->resume, c->resume_len, s, TT_CK_SECTIONS_MAX, &n, err)))
		return rc;
	const tt_ck_section *core = tt_ck_find(s, n, TT_CK_CORE);
	if (!core)
		core = tt_ck_find(s, n, TT_CK_CORE_V1);
	if (!core)
		return tt_err_set(err, TT_EINPUT, "checkpoint of %zu bytes has no core section",
		                  c->resume_len);
	tt_ck_core h;
	const char *arrays;
	if ((rc = tt_ck_core_read(core, &h, &arrays, err)))
		return rc;
	if (strncmp(h.spec, c->model, sizeof h.spec) != 0)
		return tt_err_set(err, TT_EINPUT, "checkpoint of '%.*s' (%llu parameters, "
		                  "%zu bytes) does not fit model '%s'", (int)sizeof h.spec, h.spec,
		                  (unsigned long long)h.nparams, c->resume_len, c->model);
	for (int i = 0; i < tt_method_count(); i++) {
		const tt_method *m = tt_method_get(i);
		const tt_ck_section *sec = m->tag ? tt_ck_find(s, n, m->tag) : NULL;
		if (sec && !(R->r->methods >> i & 1u) && (m->flags & TT_METHOD_SHAPES_MODEL))
			return tt_err_set(err, TT_EINPUT, "checkpoint: written by a run with %s, "
			                  "which shape its model (a section of %zu bytes); this "
			                  "run is without %s", m->name, sec->len, m->name);
	}
	for (int i = 0; i < R->nmeth; i++) {
		const active *a = &R->meth[i];
		const tt_ck_section *sec = a->m->tag ? tt_ck_find(s, n, a->m->tag) : NULL;
		if (a->m->ck_read && (rc = a->m->ck_read(a->st, &R->mr, sec ? sec->p : NULL,
		                                         sec ? sec->len : 0,
		                                         c->resume_weights_only, err)))
			return rc;
	}
	return core_read(R, &h, arrays, c->resume_len, err);
}

/* ---- the run's parts --------------------------------------------------- */

/* ---- the frozen prefix: calibration and the feature cache ------------- */

#define FCACHE_MIN_MACS 32  /* prefix multiply-adds per cached float */
#define FILL_CHUNK 32       /* examples per batch filling the cache */
#define CALIB_EXAMPLES 2048 /* the first training examples ... */
#define CALIB_CHUNK 32      /* ... in batches of this many (or the batch) */

/* A hash of what the frozen prefix computes: the model, its depth, the
 * prefix's weights and its norms' statistics. */
static int prefix_key(run *R, uint64_t *key, tt_err *err)
{
	tt_model *m = R->m;
	size_t np = tt_model_trainable_offset(m), ns = tt_model_prefix_nstate(m);
	float *h = malloc((np > ns ? np : ns) * sizeof *h + 1);
	if (!h)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	int z = tt_model_trainable(m);
	uint64_t k = tt_fcache_hash(TT_FCACHE_HASH0, R->c->model, strlen(R->c->model) + 1);
	k = tt_fcache_hash(k, &z, sizeof z);
	R->be->download(h, tt_model_params(m), np * sizeof *h);
	k = tt_fcache_hash(k, h, np * sizeof *h);
	if (ns) /* a model without norms has no state buffer */
		R->be->download(h, tt_model_state(m), ns * sizeof *h);
	*key = tt_fcache_hash(k, h, ns * sizeof *h);
	free(h);
	return TT_OK;
}

/*
 * A fresh model's fixed frozen norms (--frozen-bn fixed) get their
 * running statistics: the mean of the batch statistics over the first
 * CALIB_EXAMPLES training examples in batches of CALIB_CHUNK, a series
 * that depends on neither the run's batch size nor its order, so every
 * trial of a study calibrates the same prefix alike.  With a cache the
 * result is kept under the prefix's key and later runs take it.
 */
static int run_calibrate(run *R, tt_err *err)
{
	tt_model *m = R->m;
	const tt_dataset *tr = &R->d->train;
	size_t ns = tt_model_prefix_nstate(m);
	if (R->c->frozen_bn != TT_FROZEN_BN_FIXED || !ns)
		return TT_OK;
	int chunk = R->batch < CALIB_CHUNK ? R->batch : CALIB_CHUNK;
	int total = tr->n < CALIB_EXAMPLES ? tr->n : CALIB_EXAMPLES;
	uint64_t key = 0;
	float *h = malloc(ns * sizeof *h);
	if (!h)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	int rc = TT_OK;
	if (R->c->fcache) {
		int at[3] = { chunk, total, tr->n };
		if ((rc = prefix_key(R, &key, err)))
			goto out;
		key = tt_fcache_hash(key, at, sizeof at);
		key = tt_fcache_hash(key, &tr, sizeof tr);
		if (tt_fcache_state_get(R->c->fcache, key, h, ns)) {
			R->be->upload(tt_model_state(m), h, ns * sizeof *h);
			goto out;
		}
	}
	/* whole batches only: every one weighs the same (a set smaller than
	 * one batch is one batch) */
	for (int off = 0, t = 0; off + chunk <= total; off += chunk, t++) {
		tt_data_batch(tr, R->bt.eidx + off, chunk, 0, NULL, R->bt.hx, R->bt.hy);
		R->be->upload(tt_model_input(m), R->bt.hx,
		              (size_t)chunk * tr->h * tr->w * tr->c * sizeof(float));
		tt_model_calibrate(m, tt_model_input(m), chunk, t);
		R->macs_done += tt_model_prefix_macs(m) * chunk;
	}
	if (R->c->fcache) {
		R->be->download(h, tt_model_state(m), ns * sizeof *h);
		tt_fcache_state_put(R->c->fcache, key, h, ns);
	}
out:
	free(h);
	return rc;
}

/*
 * Every example of set that slot s lacks, computed now in the canonical
 * batches: the set in order, FILL_CHUNK at a time (or the run's batch,
 * when smaller, which the slot's key then says).  Whichever run fills
 * an example, it is computed in the same batch, so it has the same bits
 * (OpenBLAS may sum a row otherwise when the rows around it differ): a
 * run resumed after a crash, with an empty cache, trains on what the
 * uninterrupted run did.  Training-set examples count as training work
 * (macs, seconds); evaluation sets, like evaluation, do not.
 */
static void fcache_fill(run *R, tt_fcache_slot *s, const tt_dataset *set, int training)
{
	tt_model *m = R->m;
	int chunk = R->batch < FILL_CHUNK ? R->batch : FILL_CHUNK;
	double t0 = tt_clock_mono();
	for (int off = 0; off < set->n; off += chunk) {
		int b = set->n - off < chunk ? set->n - off : chunk;
		const int *idx = R->bt.eidx + off;
		if (tt_fcache_has(R->c->fcache, s, idx, b))
			continue;
		tt_data_batch(set, idx, b, 0, NULL, R->bt.hx, R->bt.hy);
		R->be->upload(tt_model_input(m), R->bt.hx,
		              (size_t)b * set->h * set->w * set->c * sizeof(float));
		tt_model_forward_prefix(m, tt_model_input(m), b);
		fcache_store(R, s, idx, b);
		R->r->fcache_misses += b;
		if (training)
			R->macs_done += tt_model_prefix_macs(m) * b;
	}
	/* the training set's part is training time, as its misses were */
	if (training) {
		R->be->sync();
		R->t_train += tt_clock_mono() - t0;
	}
}

/* The cache's slots for the sets, when the run's prefix can be cached:
 * the prefix maps each example on its own, the images reach it as they
 * are stored (no augmentation, no learned rotation), no method changes
 * the step or the data (methods are left out as a whole), and it is
 * worth keeping: at least FCACHE_MIN_MACS of its multiply-adds per
 * float of its output. */
static int run_fcache_open(run *R, tt_err *err)
{
	const tt_train_config *c = R->c;
	const tt_train_data *d = R->d;
	tt_model *m = R->m;
	if (!c->fcache || R->nmeth || c->augment || c->rotate != 0 || !tt_model_prefix_pure(m))
		return TT_OK;
	/* a prefix whose output costs little to compute for its size (a stem
	 * alone) is cheaper to run again than to copy in and out, and would
	 * take the room of the deep prefixes that pay */
	tt_model_boundary(m, &R->fcper);
	if (tt_model_prefix_macs(m) < FCACHE_MIN_MACS * (double)R->fcper)
		return TT_OK;
	uint64_t key;
	int rc = prefix_key(R, &key, err);
	if (rc)
		return rc;
	/* the batches that fill it (a run of smaller batches fills its own) */
	int chunk = R->batch < FILL_CHUNK ? R->batch : FILL_CHUNK;
	key = tt_fcache_hash(key, &chunk, sizeof chunk);
	if (!(R->fch = malloc((size_t)R->batch * R->fcper * sizeof *R->fch)))
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	const tt_dataset *set[3] = { &d->train, &d->val, c->test ? &d->test : NULL };
	for (int i = 0; i < 3; i++)
		if (set[i] && set[i]->n &&
		    (R->fc[i] = tt_fcache_acquire(c->fcache, key, set[i], set[i]->n, R->fcper)))
			fcache_fill(R, R->fc[i], set[i], i == 0);
	R->r->fcache = 1;
	return TT_OK;
}

/* The model with what the run's methods need of it, the methods' state,
 * the buffers, the streams, and the resumed state if any. */
static int run_open(run *R, tt_err *err)
{
	const tt_train_config *c = R->c;
	const tt_train_data *d = R->d;
	const tt_dataset *tr = &d->train;
	int rc;
	R->be = tt_backend_get(c->backend);
	if (R->be->set_threads)
		R->be->set_threads(c->threads);
	/* no buffer larger than the data: a batch beyond the set is the set */
	R->batch = c->batch < tr->n ? c->batch : tr->n;
	tt_model_config mc = {
		.spec = c->model, .h = tr->h, .w = tr->w, .c = tr->c,
		.classes = tr->classes, .batch = R->batch, .trainable = c->trainable,
		.optim_slots = tt_optim_slots(&c->opt), .seed = c->seed, .be = R->be,
		.frozen_bn = c->frozen_bn,
	};
	for (int i = 0; i < tt_method_count(); i++) {
		const tt_method *m = tt_method_get(i);
		if (!m->wants(c))
			continue;
		const active *taken = m->step || m->loss ? (R->stepper ? R->stepper : R->loss)
		                                        : NULL;
		if (taken)
			return tt_err_set(err, TT_EINPUT, "methods %s and %s both replace the "
			                  "training step or its loss; a run can use one of them",
			                  taken->m->name, m->name);
		R->meth[R->nmeth] = (active){ m, NULL };
		if (m->step)
			R->stepper = &R->meth[R->nmeth];
		if (m->loss)
			R->loss = &R->meth[R->nmeth];
		if (m->evaluate)
			R->eval = &R->meth[R->nmeth];
		R->nmeth++;
		R->r->methods |= 1u << i;
		if (m->model_config)
			m->model_config(c, &mc);
	}
	R->slots = mc.optim_slots;
	if ((rc = tt_model_create(&mc, &R->m, err)))
		return rc;
	long spe = (tr->n + R->batch - 1) / R->batch; /* steps per epoch */
	R->opt = c->opt;
	R->opt.total_steps = c->steps > 0 ? c->steps : (long)c->epochs * spe;
	R->mr = (tt_method_run){ .c = c, .d = d, .m = R->m, .opt = &R->opt,
	                         .total = R->opt.total_steps, .spe = spe };
	for (int i = 0; i < R->nmeth; i++) {
		active *a = &R->meth[i];
		if (a->m->setup && (rc = a->m->setup(&R->mr, &a->st, err)))
			return rc;
	}
	int maxn = tr->n;
	if (d->val.n > maxn)
		maxn = d->val.n;
	if (d->test.n > maxn)
		maxn = d->test.n;
	R->r->stage = calloc((size_t)tt_model_stages(R->m), sizeof *R->r->stage);
	R->bt.hx = malloc((size_t)R->batch * tr->h * tr->w * tr->c * sizeof *R->bt.hx);
	R->bt.hy = malloc((size_t)R->batch * sizeof *R->bt.hy);
	R->bt.idx = malloc((size_t)tr->n * sizeof *R->bt.idx);
	R->bt.eidx = malloc((size_t)maxn * sizeof *R->bt.eidx);
	if (!R->r->stage || !R->bt.hx || !R->bt.hy || !R->bt.idx || !R->bt.eidx)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	tt_rng_seed(&R->order, c->seed, TT_STREAM_ORDER);
	tt_rng_seed(&R->aug, c->seed, TT_STREAM_AUGMENT);
	for (int i = 0; i < tr->n; i++)
		R->bt.idx[i] = i;
	for (int i = 0; i < maxn; i++)
		R->bt.eidx[i] = i;
	rc = c->resume ? run_resume(R, err)
	   : c->init   ? tt_train_init_model(R->m, c->model, c->init, NULL, err)
	               : run_calibrate(R, err);
	if (rc)
		return rc;
	R->seen0 = R->seen;
	return run_fcache_open(R, err);
}

/* What each method reports, to on_report. */
static void run_report(run *R, int final)
{
	for (int i = 0; i < R->nmeth; i++) {
		const active *a = &R->meth[i];
		tt_method_report rep = { .method = a->m->name, .step = R->mr.step, .final = final };
		if (a->m->report && a->m->report(a->st, &R->mr, final, &rep))
			R->h->on_report(R->h->ud, &rep);
	}
}

/*
 * One training step: the next batch (a new epoch starts with a new order
 * and fresh running means), the methods around forward, loss, backward
 * and the optimizer, or the method that replaces them.  A non-finite loss
 * sets r->diverged.  Wall time counts the step, not what the hooks store.
 */
static int run_step(run *R, tt_err *err)
{
	tt_method_run *mr = &R->mr;
	const tt_dataset *tr = &R->d->train;
	tt_model *m = R->m;
	int rc;
	long off = (mr->step % mr->spe) * R->batch;
	if (off == 0) {
		tt_rng_shuffle(&R->order, R->bt.idx, tr->n);
		R->ep_loss = R->ep_right = 0;
		R->ep_seen = 0;
	}
	int b = tr->n - off < R->batch ? (int)(tr->n - off) : R->batch;
	double t0 = tt_clock_mono();
	tt_data_batch(tr, R->bt.idx + off, b, R->c->augment, &R->aug, R->bt.hx, R->bt.hy);
	R->be->upload(tt_model_input(m), R->bt.hx,
	              (size_t)b * tr->h * tr->w * tr->c * sizeof(float));
	R->be->upload(tt_model_labels(m), R->bt.hy, (size_t)b * sizeof(int));
	mr->batch = b;
	mr->right = 0;
	for (int i = 0; i < R->nmeth; i++)
		if (R->meth[i].m->before_step &&
		    (rc = R->meth[i].m->before_step(R->meth[i].st, mr, err)))
			return rc;
	if (R->stepper) {
		if ((rc = R->stepper->m->step(R->stepper->st, mr, err)))
			return rc;
		R->macs_done += (double)mr->batch * tt_model_train_macs(m);
	} else {
		long long hits = R->r->fcache_hits;
		forward_cached(R, R->fc[0], R->bt.idx + off, b, 1);
		R->macs_done += b * (tt_model_train_macs(m) -
		                     (R->r->fcache_hits > hits ? tt_model_prefix_macs(m) : 0));
		if (R->loss) {
			if ((rc = R->loss->m->loss(R->loss->st, mr, err)))
				return rc;
		} else {
			mr->loss = tt_model_loss(m, tt_model_labels(m), b, R->c->label_smoothing,
			                         1, &mr->right);
		}
	}
	if (!isfinite(mr->loss)) {
		R->r->diverged = 1;
		R->r->train_loss = mr->loss;
		mr->step++;
		return TT_OK;
	}
	if (!R->stepper) {
		tt_model_backward(m);
		for (int i = 0; i < R->nmeth; i++)
			if (R->meth[i].m->after_backward)
				R->meth[i].m->after_backward(R->meth[i].st, mr);
		tt_optim_step(m, &R->opt, mr->step);
	}
	mr->step++;
	for (int i = 0; i < R->nmeth; i++)
		if (R->meth[i].m->after_step)
			R->meth[i].m->after_step(R->meth[i].st, mr);
	R->be->sync();
	R->t_train += tt_clock_mono() - t0;
	if (R->h->on_report && R->h->report_every > 0 && mr->step % R->h->report_every == 0 &&
	    mr->step != mr->total)
		run_report(R, 0);
	b = mr->batch; /* a replacing step's own examples */
	R->seen += b;
	R->ep_seen += b;
	R->ep_loss += mr->loss * b;
	R->ep_right += mr->right;
	R->r->train_loss = R->ep_loss / R->ep_seen;
	R->r->train_acc = R->ep_right / R->ep_seen;
	return TT_OK;
}

/* The loss and accuracy of set: a method's evaluation, or the plain one. */
static int run_evaluate(run *R, const tt_dataset *set, double *loss, double *acc,
                        tt_err *err)
{
	if (R->eval)
		return R->eval->m->evaluate(R->eval->st, &R->mr, set, loss, acc, err);
	evaluate(R, set, set == &R->d->train ? R->fc[0] : set == &R->d->val ? R->fc[1] :
	         R->fc[2], loss, acc);
	return TT_OK;
}

/* An epoch ends (or the run, or a stop): the methods' epoch end (which may
 * compact the model), then the validation set. */
static int run_epoch_end(run *R, tt_err *err)
{
	tt_train_result *r = R->r;
	int rc;
	R->mr.epoch++;
	for (int i = 0; i < R->nmeth; i++)
		if (R->meth[i].m->epoch_end &&
		    (rc = R->meth[i].m->epoch_end(R->meth[i].st, &R->mr, err)))
			return rc;
	if ((rc = run_evaluate(R, &R->d->val, &r->val_loss, &r->val_acc, err)))
		return rc;
	R->evaluated = 1;
	/* a network that evaluates to NaN has diverged as surely as one whose
	 * training loss did (no val set: val_loss is NaN by definition, which
	 * is not divergence) */
	if (R->d->val.n && !isfinite(r->val_loss)) {
		r->diverged = 1;
		r->train_loss = r->val_loss;
	}
	if (R->h->on_epoch)
		R->h->on_epoch(R->h->ud, R->mr.epoch, R->mr.step, r->train_loss, r->train_acc,
		               r->val_loss, r->val_acc,
		               R->t_train > 0 ? R->seen / R->t_train : 0);
	return TT_OK;
}

/* The result: the numbers of the run, the test set, the model's shape and
 * memory, each method's part and its final report. */
static int run_finish(run *R, tt_err *err)
{
	tt_train_result *r = R->r;
	int rc = TT_OK;
	/* resumed from the run's final checkpoint (its result was never
	 * stored): no step ran, but the result still needs its evaluation */
	if (!R->evaluated && !r->diverged) {
		if ((rc = run_evaluate(R, &R->d->val, &r->val_loss, &r->val_acc, err)))
			return rc;
		if (R->d->val.n && !isfinite(r->val_loss))
			r->diverged = 1;
	}
	r->epochs = R->mr.epoch;
	r->steps = R->mr.step;
	r->seconds = R->t_train;
	r->samples_per_s = R->t_train > 0 ? R->seen / R->t_train : 0;
	if (r->diverged) {
		r->val_loss = r->val_acc = NAN;
		rc = tt_err_set(err, TT_EDIVERGED, "loss became %s at step %ld: diverged",
		                isnan(r->train_loss) ? "NaN" : "infinite", R->mr.step);
	} else if (R->c->test && R->d->test.n) {
		double tl;
		if ((rc = run_evaluate(R, &R->d->test, &tl, &r->test_acc, err)))
			return rc;
	}
	fill_result(R->c, R->m, r);
	/* what was computed: a resumed run's earlier examples at the full
	 * price (not known better), this part as it went */
	if (R->seen > 0)
		r->train_macs = (R->seen0 * r->train_macs + R->macs_done) / R->seen;
	for (int i = 0; i < R->nmeth; i++)
		if (R->meth[i].m->result)
			R->meth[i].m->result(R->meth[i].st, &R->mr, r);
	if (R->h->on_report)
		run_report(R, 1);
	return rc;
}

static void run_close(run *R)
{
	for (int i = 0; i < R->nmeth; i++)
		if (R->meth[i].m->free)
			R->meth[i].m->free(R->meth[i].st);
	for (int i = 0; i < 3; i++)
		tt_fcache_release(R->c->fcache, R->fc[i]);
	free(R->fch);
	free(R->ckbuf);
	free(R->bt.hx);
	free(R->bt.hy);
	free(R->bt.idx);
	free(R->bt.eidx);
	tt_model_free(R->m);
}

int tt_train_check(const tt_train_config *c, int *nstages, tt_err *err)
{
	tt_err e = {0};
	int n;
	if (tt_model_spec_check(c->model, &n, &e))
		return tt_err_set(err, TT_EINPUT, "--model: %s", e.msg);
	if (c->trainable > n)
		return tt_err_set(err, TT_EINPUT,
		                  "--trainable %d: model '%s' has %d stages; expected 1..%d or all",
		                  c->trainable, c->model, n, n);
	if (c->batch < 1 || c->batch > 65536)
		return tt_err_set(err, TT_EINPUT, "--batch %d: expected 1..65536", c->batch);
	if (!tt_backend_get(c->backend))
		return tt_err_set(err, TT_EINPUT, "--backend '%s': expected one of: %s",
		                  c->backend, tt_backend_list());
	if (c->init && tt_train_init_check(c->model, c->init, &e))
		return tt_err_set(err, TT_EINPUT, "--%s", e.msg);
	const tt_cl_config *k = &c->continual;
	if (k->tasks > 0) {
		int fs = tt_cl_front(k);
		if (fs > 0 && fs >= n)
			return tt_err_set(err, TT_EINPUT, "--strategy %s:%d: model '%s' has %d "
			                  "stages, so the front (the stem and K blocks) leaves none "
			                  "behind it; expected K in 0..%d",
			                  k->strategy == TT_CL_REPLAY ? "replay" : "hn", k->split,
			                  c->model, n, n - 2);
		if (c->gates.strength > 0 || c->evograd.what != TT_EVO_OFF)
			return tt_err_set(err, TT_EINPUT, "--continual: not with %s",
			                  c->gates.strength > 0 ? "--gates" : "--evograd");
		if (c->trainable > 0 && c->trainable < n)
			return tt_err_set(err, TT_EINPUT, "--continual: --trainable %d: the "
			                  "strategy decides what trains (--strategy)", c->trainable);
	} else if (k->strategy != TT_CL_NAIVE || k->split) {
		return tt_err_set(err, TT_EINPUT, "--strategy: only with --continual");
	}
	if (nstages)
		*nstages = n;
	return TT_OK;
}

/* ---- starting from a saved checkpoint ------------------------------------ */

/* The file's bytes (malloc'd) and its core header and arrays. */
static int init_read(const char *spec, const char *path, void **blob, tt_ck_core *h,
                     const char **arrays, tt_err *err)
{
	*blob = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return tt_err_set(err, TT_EINPUT, "init '%s': cannot read: %s", path,
		                  strerror(errno));
	size_t cap = 1 << 16, len = 0, got;
	char *b = malloc(cap);
	while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			char *nb = cap < ((size_t)1 << 32) ? realloc(b, cap * 2) : NULL;
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (!b)
		return tt_err_set(err, TT_ERUNTIME, "init '%s': out of memory", path);
	if (bad) {
		free(b);
		return tt_err_set(err, TT_EINPUT, "init '%s': cannot read", path);
	}
	tt_err e = {0};
	tt_ck_section s[TT_CK_SECTIONS_MAX];
	int n = 0;
	const tt_ck_section *core = NULL;
	if (tt_ck_parse(b, len, s, TT_CK_SECTIONS_MAX, &n, &e) ||
	    !((core = tt_ck_find(s, n, TT_CK_CORE)) || (core = tt_ck_find(s, n, TT_CK_CORE_V1))) ||
	    tt_ck_core_read(core, h, arrays, &e)) {
		free(b);
		return tt_err_set(err, TT_EINPUT, "init '%s': expected a checkpoint (tunetop "
		                  "train --save-checkpoint): %s", path,
		                  e.msg[0] ? e.msg : "no core section");
	}
	if (strncmp(h->spec, spec, sizeof h->spec) != 0) {
		free(b);
		return tt_err_set(err, TT_EINPUT, "init '%s': a checkpoint of model '%.*s', "
		                  "expected one of model '%s'", path, (int)sizeof h->spec,
		                  h->spec, spec);
	}
	*blob = b;
	return TT_OK;
}

int tt_train_init_check(const char *spec, const char *path, tt_err *err)
{
	void *b;
	tt_ck_core h;
	const char *a;
	int rc = init_read(spec, path, &b, &h, &a, err);
	free(b);
	return rc;
}

int tt_train_init_model(tt_model *m, const char *spec, const char *path, int *new_head,
                        tt_err *err)
{
	void *b;
	tt_ck_core h;
	const char *a;
	int rc = init_read(spec, path, &b, &h, &a, err);
	if (rc)
		return rc;
	size_t np = tt_model_nparams(m), off = 0, cnt = 0;
	tt_model_stage_params(m, tt_model_stages(m) - 1, &off, &cnt);
	/* the head is the last stage, last in the vector: the rest must be
	 * the model's, the head may differ in its classes */
	int same = h.nparams == np;
	if (h.nstate != tt_model_nstate(m) || off + cnt != np || h.nparams < off) {
		free(b);
		return tt_err_set(err, TT_EINPUT, "init '%s': %llu parameters and %llu statistics "
		                  "do not fit model '%s' (%zu and %zu)", path,
		                  (unsigned long long)h.nparams, (unsigned long long)h.nstate, spec,
		                  np, tt_model_nstate(m));
	}
	const tt_backend *be = tt_model_backend(m);
	be->upload(tt_model_params(m), a, (same ? np : off) * sizeof(float));
	if (h.nstate)
		be->upload(tt_model_state(m), a + h.nparams * sizeof(float),
		           h.nstate * sizeof(float));
	if (new_head)
		*new_head = !same;
	free(b);
	return TT_OK;
}

/*
 * The loop: steps until the run's length or a stop, an epoch's end after
 * its last step, a checkpoint when one is due.  Everything a method adds
 * happens in its hooks (method.h), called by the parts above.
 */
int tt_train_run(const tt_train_config *c, const tt_train_data *d,
                 const tt_train_hooks *h, tt_train_result *r, tt_err *err)
{
	static const tt_train_hooks none;
	run R = { .c = c, .d = d, .h = h ? h : &none, .r = r };
	tt_method_run *mr = &R.mr;
	int rc;
	h = R.h;
	memset(r, 0, sizeof *r);
	r->test_acc = -1;
	if ((rc = tt_train_check(c, NULL, err)))
		return rc;
	if (d->train.n < 1)
		return tt_err_set(err, TT_EINPUT, "no training examples in %s", d->source);
	if ((rc = run_open(&R, err)))
		goto out;
	while (mr->step < mr->total && !R.stop) {
		if ((rc = run_step(&R, err)))
			goto out;
		if (r->diverged)
			break;
		if (h->on_step && h->on_step(h->ud, mr->step, mr->total, mr->epoch, mr->loss))
			R.stop = 1;
		if ((mr->step % mr->spe == 0 || mr->step == mr->total || R.stop) &&
		    (rc = run_epoch_end(&R, err)))
			goto out;
		/* the end, or a stop asked for by on_step (a pause keeps its
		 * place): either way the state is worth keeping */
		int last = (mr->step == mr->total || R.stop) && !r->diverged;
		int due = h->checkpoint_every > 0 && mr->step % h->checkpoint_every == 0 &&
		          !r->diverged;
		if (h->on_checkpoint && (last || due) && (rc = run_checkpoint(&R, err)))
			goto out;
	}
	rc = run_finish(&R, err);
out:
	run_close(&R);
	if (rc && rc != TT_EDIVERGED)
		tt_train_result_free(r);
	return rc;
}

void tt_train_result_free(tt_train_result *r)
{
	free(r->stage);
	r->stage = NULL;
	free(r->gates.row);
	r->gates.row = NULL;
	free(r->evograd.path);
	r->evograd.path = NULL;
	free(r->continual.acc);
	r->continual.acc = NULL;
}

/* JSON has no NaN or infinity: those become null. */
static void num(FILE *f, const char *key, double v, int comma)
{
	if (isfinite(v))
		fprintf(f, "\"%s\":%.6g%s", key, v, comma ? "," : "");
	else
		fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
}

/* The run's numbers, then one field per method that ran, named after it
 * and written by it. */
void tt_train_result_json(const tt_train_result *r, FILE *f)
{
	fprintf(f, "{\"model\":\"%s\",\"stages\":%d,\"trainable\":%d,\"epochs\":%d,"
	        "\"steps\":%ld,", r->model, r->stages, r->trainable, r->epochs, r->steps);
	num(f, "train_loss", r->train_loss, 1);
	num(f, "train_acc", r->train_acc, 1);
	num(f, "val_loss", r->val_loss, 1);
	num(f, "val_acc", r->val_acc, 1);
	if (r->test_acc >= 0)
		num(f, "test_acc", r->test_acc, 1);
	num(f, "seconds", r->seconds, 1);
	num(f, "samples_per_s", r->samples_per_s, 1);
	fprintf(f, "\"train_macs\":%.0f,\"diverged\":%s,\"memory\":{", r->train_macs,
	        r->diverged ? "true" : "false");
	for (int k = 0; k < TT_MEM_KINDS; k++)
		fprintf(f, "\"%s\":%zu,", tt_memkinds[k].name, r->mem[k]);
	fprintf(f, "\"total\":%zu,\"peak\":%zu,\"per_stage\":[", r->mem_total, r->mem_peak);
	for (int s = 0; s < r->stages && r->stage; s++) {
		const tt_train_stage *st = &r->stage[s];
		fprintf(f, "%s{\"name\":\"%s\",\"frozen\":%s,\"params\":%zu,\"grads\":%zu,"
		        "\"optim\":%zu,\"activations\":%zu}", s ? "," : "", st->name,
		        st->frozen ? "true" : "false", st->params, st->grads, st->optim,
		        st->activations);
	}
	fprintf(f, "]}");
	for (int i = 0; i < tt_method_count(); i++) {
		const tt_method *m = tt_method_get(i);
		if (r->methods >> i & 1u && m->json) {
			fprintf(f, ",\"%s\":", m->name);
			m->json(r, f);
		}
	}
	/* TUNETOP_PROFILE=1: the time per kind of backend operation so far */
	if (tt_backend_profiling()) {
		fputc(',', f);
		tt_backend_profile_json(f);
	}
	fprintf(f, "}\n");
}
