/*
 * train.c — one training run; see train.h.
 *
 * Batches are assembled on the host (normalised, optionally augmented),
 * uploaded into the model's input buffers, and stepped through forward,
 * loss, backward and the optimizer.  Wall time counts training steps only;
 * evaluation is reported but not charged to samples/s.
 */
#include "train.h"

#include "clock.h"
#include "trainopt.h"

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

/* Mean loss and accuracy of m over d, in batches, evaluation mode. */
static void evaluate(tt_model *m, const tt_dataset *d, int batch, batcher *bt,
                     double *loss, double *acc)
{
	const tt_backend *be = tt_model_backend(m);
	double sum = 0;
	long right = 0;
	for (int off = 0; off < d->n; off += batch) {
		int b = d->n - off < batch ? d->n - off : batch, ok = 0;
		tt_data_batch(d, bt->eidx + off, b, 0, NULL, bt->hx, bt->hy);
		be->upload(tt_model_input(m), bt->hx, (size_t)b * d->h * d->w * d->c * sizeof(float));
		be->upload(tt_model_labels(m), bt->hy, (size_t)b * sizeof(int));
		tt_model_forward(m, tt_model_input(m), b, 0);
		sum += tt_model_loss(m, tt_model_labels(m), b, 0.0f, 0, &ok) * b;
		right += ok;
	}
	*loss = d->n ? sum / d->n : NAN;
	*acc = d->n ? (double)right / d->n : NAN;
}

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

/* ---- gates ------------------------------------------------------------- */

/* A gated run's working state (methods.md section 4). */
typedef struct gate_run {
	int on, n;
	tt_gate_cost cost;
	tt_gate_config cfg;      /* lam_on, lam_off resolved */
	double wd;               /* the optimizer's own decay */
	double *wsq, *wn, *ms0, *dcdt; /* per gate; ms0 the initial |W|^2/n */
	int *layer;              /* per gate: the layer gate over it, -1 none */
	tt_gate_row *rows;
	tt_rng rng;
	double macs_sum;         /* training MACs computed per example, summed
	                          * over steps */
} gate_run;

static void gate_run_free(gate_run *g)
{
	free(g->wsq);
	free(g->wn);
	free(g->ms0);
	free(g->dcdt);
	free(g->layer);
	free(g->rows);
}

static int gate_run_init(gate_run *g, tt_model *m, const tt_train_config *c)
{
	memset(g, 0, sizeof *g);
	g->on = 1;
	g->n = tt_model_gates(m);
	tt_model_gate_desc(m, &g->cost);
	g->cfg = c->gates;
	g->wd = c->opt.weight_decay;
	if (g->cfg.lam_on <= 0)
		g->cfg.lam_on = g->wd;
	if (g->cfg.lam_off <= 0)
		g->cfg.lam_off = 10 * g->cfg.lam_on;
	if (g->cfg.prune_every < 1)
		g->cfg.prune_every = 1;
	size_t n = (size_t)g->n + 1;
	g->wsq = calloc(n, sizeof *g->wsq);
	g->wn = calloc(n, sizeof *g->wn);
	g->ms0 = calloc(n, sizeof *g->ms0);
	g->dcdt = calloc(n, sizeof *g->dcdt);
	g->layer = malloc(n * sizeof *g->layer);
	g->rows = calloc(n, sizeof *g->rows);
	if (!g->wsq || !g->wn || !g->ms0 || !g->dcdt || !g->layer || !g->rows)
		return -1;
	for (int i = 0; i < g->n; i++)
		g->layer[i] = -1;
	for (int k = 0; k < g->cost.ngroups; k++) {
		const tt_gate_group *gr = &g->cost.group[k];
		if (gr->kind != TT_GATE_LAYER)
			continue;
		for (int j = 0; j < g->cost.ngroups; j++) {
			const tt_gate_group *u = &g->cost.group[j];
			if (u->kind == TT_GATE_UNIT && u->stage == gr->stage)
				for (int i = 0; i < u->count; i++)
					g->layer[u->first + i] = gr->first;
		}
	}
	int *st = malloc(n * sizeof *st), *un = malloc(n * sizeof *un);
	if (!st || !un) {
		free(st);
		free(un);
		return -1;
	}
	tt_model_gate_ids(m, st, un);
	for (int i = 0; i < g->n; i++) {
		g->rows[i].stage = st[i];
		g->rows[i].unit = un[i];
	}
	free(st);
	free(un);
	/* the initial mean squares the pruning rule compares against */
	tt_model_gate_wsq(m, g->wsq, g->wn);
	for (int i = 0; i < g->n; i++)
		g->ms0[i] = g->wn[i] > 0 ? g->wsq[i] / g->wn[i] : 0;
	tt_rng_seed(&g->rng, c->seed, TT_STREAM_GATES);
	return 0;
}

static void gate_rows(gate_run *g, tt_model *m)
{
	const float *t = tt_model_gate_probs(m);
	const unsigned char *pr = tt_model_gate_pruned(m);
	for (int i = 0; i < g->n; i++) {
		g->rows[i].prob = t[i];
		g->rows[i].on = !pr[i] && t[i] >= 0.5f;
	}
}

/* Prune gate i for good; a layer gate takes its units along. */
static void gate_prune(gate_run *g, tt_model *m, int i)
{
	float *t = tt_model_gate_probs(m);
	unsigned char *pr = tt_model_gate_pruned(m);
	pr[i] = 1;
	t[i] = 0;
	for (int j = 0; j < g->n; j++)
		if (g->layer[j] == i) {
			pr[j] = 1;
			t[j] = 0;
		}
}

/*
 * The pruning rule of methods.md, every prune_every steps: t <= prune_t
 * and |W|^2/n <= prune_w times its initial value.  Guards: no layer gate
 * before layer_hold_epochs; the last unpruned unit of a group whose
 * structure lives (its block's branch, or a layer without a layer gate)
 * stays, the layer gate decides for it.
 */
static void gates_prune_check(gate_run *g, tt_model *m, int epoch)
{
	float *t = tt_model_gate_probs(m);
	unsigned char *pr = tt_model_gate_pruned(m);
	tt_model_gate_wsq(m, g->wsq, g->wn);
	for (int pass = 0; pass < 2; pass++) /* layer gates first, then units */
		for (int k = 0; k < g->cost.ngroups; k++) {
			const tt_gate_group *gr = &g->cost.group[k];
			if ((gr->kind == TT_GATE_LAYER) != (pass == 0))
				continue;
			if (gr->kind == TT_GATE_LAYER && epoch < g->cfg.layer_hold_epochs)
				continue;
			int live = 0;
			for (int j = 0; j < gr->count; j++)
				live += !pr[gr->first + j];
			for (int j = 0; j < gr->count && live > 0; j++) {
				int i = gr->first + j;
				if (pr[i] || t[i] > g->cfg.prune_t || g->wn[i] <= 0 ||
				    g->wsq[i] / g->wn[i] > g->cfg.prune_w * g->ms0[i])
					continue;
				if (gr->kind == TT_GATE_UNIT && live == 1)
					break; /* the last one: its layer decides */
				gate_prune(g, m, i);
				live--;
			}
		}
}

/*
 * The end of a gated run: every t to 0 or 1 (t >= 0.5 on), every gate at
 * 0 pruned.  A unit group of a live structure that would end all off
 * keeps its most probable unit.  Returns how many gates were rounded
 * from inside (0, 1).
 */
static int gates_finish(gate_run *g, tt_model *m)
{
	float *t = tt_model_gate_probs(m);
	unsigned char *pr = tt_model_gate_pruned(m);
	int rounded = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < g->cost.ngroups; k++) {
			const tt_gate_group *gr = &g->cost.group[k];
			if ((gr->kind == TT_GATE_LAYER) != (pass == 0))
				continue;
			int best = -1, any = 0;
			for (int j = 0; j < gr->count; j++) {
				int i = gr->first + j;
				if (pr[i])
					continue;
				if (best < 0 || t[i] > t[best])
					best = i;
				any |= t[i] >= 0.5f;
			}
			if (best < 0)
				continue; /* all pruned: a pruned branch's units */
			for (int j = 0; j < gr->count; j++) {
				int i = gr->first + j;
				if (pr[i])
					continue;
				rounded += t[i] > 0 && t[i] < 1;
				int on = t[i] >= 0.5f || (gr->kind == TT_GATE_UNIT && !any && i == best);
				if (on)
					t[i] = 1;
				else
					gate_prune(g, m, i);
			}
		}
	return rounded;
}

static void gates_result(gate_run *g, tt_model *m, tt_train_result *r, int rounded)
{
	const float *t = tt_model_gate_probs(m);
	double me, pe;
	tt_gate_expected(&g->cost, t, &me, &pe);
	r->gates.on = 1;
	r->gates.ngates = g->n;
	r->gates.rounded = rounded;
	r->gates.macs_expected = me / g->cost.macs_full;
	r->gates.params_expected = pe / g->cost.params_full;
	r->gates.macs_kept = tt_model_macs(m) / g->cost.macs_full;
	r->gates.params_kept = (double)tt_model_nparams(m) / g->cost.params_full;
	gate_rows(g, m);
	r->gates.row = malloc(((size_t)g->n + 1) * sizeof *r->gates.row);
	if (r->gates.row)
		memcpy(r->gates.row, g->rows, (size_t)g->n * sizeof *g->rows);
	for (int s = 0; s < r->stages; s++)
		r->stage[s].layer = -1;
	for (int i = 0; i < g->n; i++) {
		tt_train_stage *st = &r->stage[g->rows[i].stage];
		if (g->rows[i].unit < 0) {
			st->layer = g->rows[i].on;
		} else {
			st->units++;
			st->units_kept += g->rows[i].on;
		}
	}
}

/* ---- checkpoints ------------------------------------------------------- */

/*
 * Everything a run needs to continue exactly.  A checkpoint blob is this
 * header followed by params[nparams], state[nstate], optim[slots][ntrain]
 * (floats) and the training order idx[n_idx] (int32).  Version 2 (a run
 * with gates, ngates > 0) appends the gates section: ck_gates, then
 * t[ngates] (float), ms0[ngates] (double), pruned[ngates] and
 * present[ngates] (bytes); the sizes above are those of the compacted
 * model, which present describes.  Version 1 blobs (no gates) are what
 * they always were.
 */
#define CK_MAGIC 0x4b435454u /* "TTCK" */
#define CK_VERSION 1u
#define CK_VERSION_GATES 2u
#define CK_GATES_MAGIC 0x54475454u /* "TTGT" */

typedef struct run_state {
	uint32_t magic, version;
	uint64_t nparams, nstate, ntrain, n_idx;
	uint32_t slots, ngates;
	int64_t step, epoch, ep_seen, seen;
	double ep_loss, ep_right, t_train;
	tt_rng order, aug;
	char spec[128];
} run_state;

typedef struct ck_gates {
	uint32_t magic, ngates;
	double macs_sum;
	tt_rng rng;
} ck_gates;

static size_t ck_gates_size(uint32_t ngates)
{
	return ngates ? sizeof(ck_gates) + (size_t)ngates * (sizeof(float) + sizeof(double) + 2)
	              : 0;
}

static size_t ck_base_size(const run_state *s)
{
	return sizeof *s + (s->nparams + s->nstate + s->slots * s->ntrain) * sizeof(float) +
	       s->n_idx * sizeof(int32_t);
}

static size_t ck_size(const run_state *s)
{
	return ck_base_size(s) + ck_gates_size(s->ngates);
}

/* Serialise the run into buf (ck_size bytes). */
static void ck_write(tt_model *m, const run_state *s, const int *idx,
                     const gate_run *g, char *buf)
{
	const tt_backend *be = tt_model_backend(m);
	char *p = buf;
	memcpy(p, s, sizeof *s);
	p += sizeof *s;
	be->download(p, tt_model_params(m), s->nparams * sizeof(float));
	p += s->nparams * sizeof(float);
	if (s->nstate)
		be->download(p, tt_model_state(m), s->nstate * sizeof(float));
	p += s->nstate * sizeof(float);
	for (uint32_t k = 0; k < s->slots; k++) {
		be->download(p, tt_model_optim(m, (int)k), s->ntrain * sizeof(float));
		p += s->ntrain * sizeof(float);
	}
	for (uint64_t i = 0; i < s->n_idx; i++) {
		int32_t v = idx[i];
		memcpy(p, &v, sizeof v);
		p += sizeof v;
	}
	if (!s->ngates)
		return;
	ck_gates cg = { .magic = CK_GATES_MAGIC, .ngates = s->ngates,
	                .macs_sum = g->macs_sum, .rng = g->rng };
	size_t n = s->ngates;
	memcpy(p, &cg, sizeof cg);
	p += sizeof cg;
	memcpy(p, tt_model_gate_probs(m), n * sizeof(float));
	p += n * sizeof(float);
	memcpy(p, g->ms0, n * sizeof(double));
	p += n * sizeof(double);
	memcpy(p, tt_model_gate_pruned(m), n);
	p += n;
	memcpy(p, tt_model_gate_present(m), n);
}

/*
 * The gates section of a blob whose header is h: compact the model to the
 * blob's shape and take its probabilities, pruned gates and initial mean
 * squares; unless weights_only, the stream and the MACs spent too.
 */
static int ck_read_gates(tt_model *m, const run_state *h, const char *blob,
                         int weights_only, gate_run *g, tt_err *err)
{
	int ng = tt_model_gates(m);
	if ((int)h->ngates != ng)
		return tt_err_set(err, TT_EINPUT, "checkpoint: %u gates, this run has %d "
		                  "(gates %s)", h->ngates, ng, ng ? "on" : "off");
	if (!ng)
		return TT_OK;
	const char *p = blob + ck_base_size(h);
	ck_gates cg;
	memcpy(&cg, p, sizeof cg);
	if (cg.magic != CK_GATES_MAGIC || (int)cg.ngates != ng)
		return tt_err_set(err, TT_EINPUT, "checkpoint: gates section magic 0x%08x "
		                  "with %u gates, expected 0x%08x with %d", cg.magic,
		                  cg.ngates, CK_GATES_MAGIC, ng);
	p += sizeof cg;
	const float *t = (const float *)(const void *)p;
	const char *ms0 = p + (size_t)ng * sizeof(float);
	const unsigned char *pruned = (const unsigned char *)ms0 + (size_t)ng * sizeof(double);
	const unsigned char *present = pruned + ng;
	float *tc = malloc((size_t)ng * sizeof *tc);
	if (!tc)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	memcpy(tc, t, (size_t)ng * sizeof *tc); /* the blob may be unaligned */
	for (int i = 0; i < ng; i++)
		if (!(tc[i] >= 0 && tc[i] <= 1) || pruned[i] > 1 || present[i] > 1) {
			double ti = tc[i];
			free(tc);
			return tt_err_set(err, TT_EINPUT, "checkpoint: gate %d has t %g, pruned "
			                  "%d, present %d", i, ti, pruned[i], present[i]);
		}
	int rc = tt_model_gate_load(m, tc, pruned, present, err);
	free(tc);
	if (rc)
		return rc;
	memcpy(g->ms0, ms0, (size_t)ng * sizeof(double));
	if (!weights_only) {
		g->macs_sum = cg.macs_sum;
		g->rng = cg.rng;
	}
	return TT_OK;
}

/*
 * Load a blob into the model and, unless weights_only, into *s and idx.
 * The optimizer state of stages trainable in the blob is kept when the
 * model now trains as many or more stages (they are a suffix of both).
 */
static int ck_read(tt_model *m, const void *blob, size_t len, int weights_only,
                   const char *spec, run_state *s, int *idx, int n_idx, gate_run *g,
                   tt_err *err)
{
	const tt_backend *be = tt_model_backend(m);
	run_state h;
	if (len < sizeof h)
		return tt_err_set(err, TT_EINPUT, "checkpoint: %zu bytes, too short for a "
		                  "header of %zu", len, sizeof h);
	memcpy(&h, blob, sizeof h);
	int v_ok = (h.version == CK_VERSION && h.ngates == 0) ||
	           (h.version == CK_VERSION_GATES && h.ngates > 0);
	if (h.magic != CK_MAGIC || !v_ok)
		return tt_err_set(err, TT_EINPUT, "checkpoint: magic 0x%08x version %u, "
		                  "expected 0x%08x version %u (or %u with gates)", h.magic,
		                  h.version, CK_MAGIC, CK_VERSION, CK_VERSION_GATES);
	if (len != ck_size(&h) || strncmp(h.spec, spec, sizeof h.spec) != 0)
		return tt_err_set(err, TT_EINPUT, "checkpoint of '%.*s' (%llu parameters, "
		                  "%zu bytes) does not fit model '%s' (%zu parameters)",
		                  (int)sizeof h.spec, h.spec, (unsigned long long)h.nparams,
		                  len, spec, tt_model_nparams(m));
	/* a run that turns gates on may start from an ungated blob's weights */
	if (!(weights_only && h.ngates == 0)) {
		int rc = ck_read_gates(m, &h, blob, weights_only, g, err);
		if (rc)
			return rc;
	}
	if (h.nparams != tt_model_nparams(m) || h.nstate != tt_model_nstate(m))
		return tt_err_set(err, TT_EINPUT, "checkpoint of '%.*s' (%llu parameters, "
		                  "%zu bytes) does not fit model '%s' (%zu parameters)",
		                  (int)sizeof h.spec, h.spec, (unsigned long long)h.nparams,
		                  len, spec, tt_model_nparams(m));
	size_t ntrain = tt_model_ntrainable(m);
	int slots_now = tt_model_optim(m, 1) ? 2 : tt_model_optim(m, 0) ? 1 : 0;
	if (!weights_only && (h.ntrain != ntrain || (int)h.slots != slots_now ||
	                      (int)h.n_idx != n_idx))
		return tt_err_set(err, TT_EINPUT, "checkpoint: trains %llu parameters with %u "
		                  "optimizer slots over %llu examples; this run %zu, %d, %d",
		                  (unsigned long long)h.ntrain, h.slots,
		                  (unsigned long long)h.n_idx, ntrain, slots_now, n_idx);
	const char *p = (const char *)blob + sizeof h;
	be->upload(tt_model_params(m), p, h.nparams * sizeof(float));
	p += h.nparams * sizeof(float);
	if (h.nstate)
		be->upload(tt_model_state(m), p, h.nstate * sizeof(float));
	p += h.nstate * sizeof(float);
	for (uint32_t k = 0; k < h.slots; k++, p += h.ntrain * sizeof(float)) {
		float *o = tt_model_optim(m, (int)k);
		if (!o || (int)h.slots != slots_now || h.ntrain > ntrain)
			continue; /* another optimizer, or fewer stages now: start fresh */
		be->upload(o + (ntrain - h.ntrain), p, h.ntrain * sizeof(float));
	}
	if (weights_only)
		return TT_OK;
	*s = h;
	for (int i = 0; i < n_idx; i++) {
		int32_t v;
		memcpy(&v, p, sizeof v);
		p += sizeof v;
		if (v < 0 || v >= n_idx)
			return tt_err_set(err, TT_EINPUT, "checkpoint: example %d of the order "
			                  "is %d, expected 0..%d", i, v, n_idx - 1);
		idx[i] = v;
	}
	return TT_OK;
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
	if (nstages)
		*nstages = n;
	return TT_OK;
}

int tt_train_run(const tt_train_config *c, const tt_train_data *d,
                 const tt_train_hooks *h, tt_train_result *r, tt_err *err)
{
	static const tt_train_hooks none;
	tt_model *m = NULL;
	batcher bt = {0};
	gate_run gr = {0};
	int rc = TT_OK, rounded = 0;
	if (!h)
		h = &none;
	memset(r, 0, sizeof *r);
	r->test_acc = -1;
	if ((rc = tt_train_check(c, NULL, err)))
		return rc;
	if (d->train.n < 1)
		return tt_err_set(err, TT_EINPUT, "no training examples in %s", d->source);
	const tt_backend *be = tt_backend_get(c->backend);
	if (be->set_threads)
		be->set_threads(c->threads);
	const tt_dataset *tr = &d->train;
	/* no buffer larger than the data: a batch beyond the set is the set */
	int batch = c->batch < tr->n ? c->batch : tr->n;
	tt_model_config mc = {
		.spec = c->model, .h = tr->h, .w = tr->w, .c = tr->c,
		.classes = tr->classes, .batch = batch, .trainable = c->trainable,
		.optim_slots = tt_optim_slots(&c->opt), .seed = c->seed, .be = be,
		.gates = c->gates.strength > 0,
	};
	if ((rc = tt_model_create(&mc, &m, err)))
		return rc;
	if (mc.gates && gate_run_init(&gr, m, c)) {
		rc = tt_err_set(err, TT_ERUNTIME, "out of memory for %d gates", tt_model_gates(m));
		goto out;
	}
	r->stage = calloc((size_t)tt_model_stages(m), sizeof *r->stage);
	int maxn = tr->n;
	if (d->val.n > maxn)
		maxn = d->val.n;
	if (d->test.n > maxn)
		maxn = d->test.n;
	bt.hx = malloc((size_t)batch * tr->h * tr->w * tr->c * sizeof *bt.hx);
	bt.hy = malloc((size_t)batch * sizeof *bt.hy);
	bt.idx = malloc((size_t)tr->n * sizeof *bt.idx);
	bt.eidx = malloc((size_t)maxn * sizeof *bt.eidx);
	if (!r->stage || !bt.hx || !bt.hy || !bt.idx || !bt.eidx) {
		rc = tt_err_set(err, TT_ERUNTIME, "out of memory");
		goto out;
	}

	long spe = (tr->n + batch - 1) / batch; /* steps per epoch */
	long total = c->steps > 0 ? c->steps : (long)c->epochs * spe;
	tt_optim_config opt = c->opt;
	opt.total_steps = total;
	tt_rng order, aug;
	tt_rng_seed(&order, c->seed, TT_STREAM_ORDER);
	tt_rng_seed(&aug, c->seed, TT_STREAM_AUGMENT);
	for (int i = 0; i < tr->n; i++)
		bt.idx[i] = i;
	for (int i = 0; i < maxn; i++)
		bt.eidx[i] = i;

	double t_train = 0, ep_loss = 0, ep_right = 0;
	long ep_seen = 0, seen = 0, step = 0;
	int epoch = 0, stop = 0, evaluated = 0;
	run_state rs = {
		.magic = CK_MAGIC,
		.nparams = tt_model_nparams(m), .nstate = tt_model_nstate(m),
		.ntrain = tt_model_ntrainable(m), .n_idx = (uint64_t)tr->n,
		.slots = (uint32_t)mc.optim_slots, .ngates = (uint32_t)gr.n,
		.version = gr.n ? CK_VERSION_GATES : CK_VERSION,
	};
	snprintf(rs.spec, sizeof rs.spec, "%s", c->model);
	if (c->resume) {
		rc = ck_read(m, c->resume, c->resume_len, c->resume_weights_only, c->model,
		             &rs, bt.idx, tr->n, &gr, err);
		if (rc)
			goto out;
		if (!c->resume_weights_only) {
			step = (long)rs.step;
			epoch = (int)rs.epoch;
			ep_seen = (long)rs.ep_seen;
			seen = (long)rs.seen;
			ep_loss = rs.ep_loss;
			ep_right = rs.ep_right;
			t_train = rs.t_train;
			order = rs.order;
			aug = rs.aug;
			if (ep_seen) {
				r->train_loss = ep_loss / ep_seen;
				r->train_acc = ep_right / ep_seen;
			}
		}
	}
	char *ckbuf = NULL;
	/* the model as it is now (a gated blob's is compacted); compaction
	 * only shrinks it, so the buffer stays big enough */
	rs.nparams = tt_model_nparams(m);
	rs.nstate = tt_model_nstate(m);
	rs.ntrain = tt_model_ntrainable(m);
	if (h->on_checkpoint) {
		ckbuf = malloc(ck_size(&rs));
		if (!ckbuf) {
			rc = tt_err_set(err, TT_ERUNTIME, "out of memory for a checkpoint of %zu "
			                "bytes", ck_size(&rs));
			goto out;
		}
	}
	size_t in_bytes = (size_t)tr->h * tr->w * tr->c * sizeof(float);
	/* With gates and at least three epochs, the last epoch fine-tunes the
	 * rounded, compacted network with its gates fixed (methods.md section
	 * 4, step 7): rounding a gate still inside (0, 1) removes weights that
	 * were still in use, and an epoch lets the rest make up for them. */
	long fine_from = gr.on && total >= 3 * spe ? total - spe : total;
	while (step < total && !stop) {
		long off = (step % spe) * batch;
		if (off == 0) {
			/* a new epoch: a new order, fresh running means */
			tt_rng_shuffle(&order, bt.idx, tr->n);
			ep_loss = ep_right = 0;
			ep_seen = 0;
		}
		int b = tr->n - off < batch ? (int)(tr->n - off) : batch, ok = 0;
		double t0 = tt_clock_mono();
		tt_data_batch(tr, bt.idx + off, b, c->augment, &aug, bt.hx, bt.hy);
		be->upload(tt_model_input(m), bt.hx, (size_t)b * in_bytes);
		be->upload(tt_model_labels(m), bt.hy, (size_t)b * sizeof(int));
		/* the first epochs warm up with every gate on, then a sample a
		 * step (methods.md section 4, steps 1 and 2), and the fine-tuning
		 * epoch has every gate left on */
		if (gr.on && step == fine_from) {
			rounded += gates_finish(&gr, m);
			if ((rc = tt_model_gate_compact(m, err))) {
				free(ckbuf);
				goto out;
			}
		}
		int warm = gr.on && (epoch < gr.cfg.warmup_epochs || step >= fine_from);
		if (warm)
			tt_model_gate_all_on(m);
		else if (gr.on)
			tt_model_gate_sample(m, &gr.rng);
		tt_model_forward(m, tt_model_input(m), b, 1);
		double loss = tt_model_loss(m, tt_model_labels(m), b, c->label_smoothing, 1, &ok);
		if (!isfinite(loss)) {
			r->diverged = 1;
			r->train_loss = loss;
			step++;
			break;
		}
		tt_model_backward(m);
		if (gr.on) {
			/* |W|^2 at the weights the gradient was taken at, then
			 * the prior lam(t)|W|^2/2 on top of the optimizer's own
			 * decay (model.h, tt_model_gate_decay) */
			if (!warm)
				tt_model_gate_wsq(m, gr.wsq, NULL);
			tt_model_gate_decay(m, gr.cfg.lam_on, gr.cfg.lam_off, gr.wd);
		}
		tt_optim_step(m, &opt, step);
		if (gr.on && !warm)
			tt_gate_update(&gr.cost, &gr.cfg, tt_model_gate_probs(m),
			               tt_model_gate_scores(m), gr.wsq, tt_model_gate_pruned(m),
			               epoch < gr.cfg.layer_hold_epochs, gr.dcdt);
		be->sync();
		t_train += tt_clock_mono() - t0;
		step++;
		if (gr.on) {
			gr.macs_sum += tt_model_step_macs(m);
			if (!warm && step % gr.cfg.prune_every == 0)
				gates_prune_check(&gr, m, epoch);
			if (h->on_gates && h->gates_every > 0 && step % h->gates_every == 0 &&
			    step != total) {
				gate_rows(&gr, m);
				h->on_gates(h->ud, step, gr.n, gr.rows);
			}
		}
		seen += b;
		ep_seen += b;
		ep_loss += loss * b;
		ep_right += ok;
		r->train_loss = ep_loss / ep_seen;
		r->train_acc = ep_right / ep_seen;
		if (r->diverged)
			break;
		if (h->on_step && h->on_step(h->ud, step, total, epoch, loss))
			stop = 1;
		if (step % spe == 0 || step == total || stop) {
			epoch++;
			/* the run's end rounds every gate to 0 or 1; every epoch
			 * end removes what was pruned, before evaluating */
			if (gr.on && step == total)
				rounded += gates_finish(&gr, m);
			if (gr.on && (rc = tt_model_gate_compact(m, err))) {
				free(ckbuf);
				goto out;
			}
			evaluate(m, &d->val, batch, &bt, &r->val_loss, &r->val_acc);
			evaluated = 1;
			/* a network that evaluates to NaN has diverged as surely as
			 * one whose training loss did (no val set: val_loss is NaN
			 * by definition, which is not divergence) */
			if (d->val.n && !isfinite(r->val_loss)) {
				r->diverged = 1;
				r->train_loss = r->val_loss;
			}
			if (h->on_epoch)
				h->on_epoch(h->ud, epoch, step, r->train_loss, r->train_acc,
				            r->val_loss, r->val_acc, t_train > 0 ? seen / t_train : 0);
		}
		/* the end, or a stop asked for by on_step (a pause keeps its
		 * place): either way the state is worth keeping */
		int last = (step == total || stop) && !r->diverged;
		if (ckbuf && (last || (h->checkpoint_every > 0 &&
		                       step % h->checkpoint_every == 0 && !r->diverged))) {
			rs.step = step;
			rs.epoch = epoch;
			rs.ep_seen = ep_seen;
			rs.seen = seen;
			rs.ep_loss = ep_loss;
			rs.ep_right = ep_right;
			rs.t_train = t_train;
			rs.order = order;
			rs.aug = aug;
			rs.nparams = tt_model_nparams(m);
			rs.nstate = tt_model_nstate(m);
			rs.ntrain = tt_model_ntrainable(m);
			ck_write(m, &rs, bt.idx, &gr, ckbuf);
			if (h->on_checkpoint(h->ud, step, ckbuf, ck_size(&rs))) {
				rc = tt_err_set(err, TT_ERUNTIME, "checkpoint at step %ld could not "
				                "be stored", step);
				free(ckbuf);
				goto out;
			}
		}
	}
	free(ckbuf);
	/* resumed from the run's final checkpoint (its result was never
	 * stored): no step ran, but the result still needs its evaluation */
	if (!evaluated && !r->diverged) {
		evaluate(m, &d->val, batch, &bt, &r->val_loss, &r->val_acc);
		if (d->val.n && !isfinite(r->val_loss))
			r->diverged = 1;
	}
	r->epochs = epoch;
	r->steps = step;
	r->seconds = t_train;
	r->samples_per_s = t_train > 0 ? seen / t_train : 0;
	if (r->diverged) {
		r->val_loss = r->val_acc = NAN;
		rc = tt_err_set(err, TT_EDIVERGED, "loss became %s at step %ld: diverged",
		                isnan(r->train_loss) ? "NaN" : "infinite", step);
	} else if (c->test && d->test.n) {
		double tl;
		evaluate(m, &d->test, batch, &bt, &tl, &r->test_acc);
	}
	fill_result(c, m, r);
	if (gr.on) {
		if (step > 0)
			r->train_macs = gr.macs_sum / step;
		gates_result(&gr, m, r, rounded);
		if (h->on_gates)
			h->on_gates(h->ud, step, gr.n, gr.rows);
	}
out:
	gate_run_free(&gr);
	free(bt.hx);
	free(bt.hy);
	free(bt.idx);
	free(bt.eidx);
	tt_model_free(m);
	if (rc && rc != TT_EDIVERGED) {
		free(r->stage);
		r->stage = NULL;
		free(r->gates.row);
		r->gates.row = NULL;
	}
	return rc;
}

void tt_train_result_free(tt_train_result *r)
{
	free(r->stage);
	r->stage = NULL;
	free(r->gates.row);
	r->gates.row = NULL;
}

/* JSON has no NaN or infinity: those become null. */
static void num(FILE *f, const char *key, double v, int comma)
{
	if (isfinite(v))
		fprintf(f, "\"%s\":%.6g%s", key, v, comma ? "," : "");
	else
		fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
}

/*
 * "gates": kept fractions, then per gated stage its units kept of all,
 * its layer gate (absent: none) and its final mask as a string of 0/1
 * over its units in unit order.
 */
static void gates_json(const tt_train_result *r, FILE *f)
{
	const tt_train_gates *g = &r->gates;
	fprintf(f, ",\"gates\":{");
	num(f, "macs_expected", g->macs_expected, 1);
	num(f, "params_expected", g->params_expected, 1);
	num(f, "macs_kept", g->macs_kept, 1);
	num(f, "params_kept", g->params_kept, 1);
	fprintf(f, "\"count\":%d,\"rounded\":%d,\"stages\":[", g->ngates, g->rounded);
	int first = 1;
	for (int s = 0; s < r->stages && r->stage; s++) {
		const tt_train_stage *st = &r->stage[s];
		if (!st->units && st->layer < 0)
			continue;
		fprintf(f, "%s{\"stage\":%d,\"name\":\"%s\",\"units\":%d,\"kept\":%d,",
		        first ? "" : ",", s, st->name, st->units, st->units_kept);
		if (st->layer >= 0)
			fprintf(f, "\"layer\":%s,", st->layer ? "true" : "false");
		fprintf(f, "\"mask\":\"");
		for (int i = 0; i < g->ngates && g->row; i++)
			if (g->row[i].stage == s && g->row[i].unit >= 0)
				fputc(g->row[i].on ? '1' : '0', f);
		fprintf(f, "\"}");
		first = 0;
	}
	fprintf(f, "]}");
}

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
	if (r->gates.on)
		gates_json(r, f);
	fprintf(f, "}\n");
}
