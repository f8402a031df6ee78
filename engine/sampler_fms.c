/*
 * sampler_fms.c — the freeze-thaw samplers of methods.md §2: fms
 * (configuration, learning curve and the graph of the latest checkpoint's
 * weights), dyhpo (configuration and curve) and fms-flat (flattened
 * weights instead of the graph, the paper's ablation).  They drive
 * [scheduler] kind = freeze-thaw: every ask answers which configuration
 * trains one more epoch, a new one (NEW) or a trial that has some
 * (CONTINUE), from tt_fms_decide (fms.h).
 *
 * The configurations.  A live study has no finite table of
 * configurations, so the sampler draws one: max_trials points of the
 * random stream (seeded by the study), each read back through the JSON a
 * trial stores, so that a pool entry and the trial made from it have the
 * same values.  Its coordinates are the values placed in [0, 1] along
 * each [space] entry (log entries in log), plus the trainable depth z /
 * stages.  A created trial takes the unused pool entry nearest its values
 * (the one just proposed, live; the same one on resume).
 *
 * Weights.  After a trial's epoch e its checkpoint (the rung e-1 one)
 * is read in tell and kept as a graph (wgraph_model.h, the trainable
 * stages only) or a flattened vector; an unseen configuration and
 * epoch 0 are the starting weights, which in tunetop are every trial's
 * initialisation (the study's seed, the model's spec) with the
 * configuration's init checkpoint loaded when there is one ([train] init,
 * or the choice of [space] init), never a later checkpoint (methods.md
 * §2 step 3).
 *
 * Sampler rules (sampler.h).  The surrogate's fit, which warm-starts from
 * the fit before it, happens in tell, after the table took the result:
 * a resume re-tells every result in order and so refits in the same
 * order to the same state.  ask only chooses among the fit's forecasts
 * the largest expected improvement of a trial that is still alive (or an
 * unseen configuration), and changes nothing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "fms.h"
#include "model.h"
#include "sampler.h"
#include "scheduler.h"
#include "train.h"
#include "wgraph.h"
#include "wgraph_model.h"

typedef struct fms_state {
	const tt_study *st;
	int weights;              /* enum tt_surr_weights */
	int d, bmax, z, stages;
	tt_fms *f;
	/* the pool */
	int npool;
	double *vals;             /* npool x TT_SPACE_MAX */
	double *x;                /* npool x d */
	int *trial;               /* pool -> trial index, -1 unseen */
	int *budget;              /* epochs with a result */
	double *curve;            /* npool x bmax */
	/* trials */
	int ntr, trcap;
	int *pool_of;             /* trial index -> pool entry */
	int pending;              /* the entry the last NEW answer proposed */
	/* weights: npool x (bmax + 1), epoch 0 the start */
	tt_graph *g;
	float **flat;
	size_t *nflat;
	unsigned char *have;
	/* the starting weights, one per init checkpoint: [0] the [train] one
	 * (or the seed's), [1 + k] [space] init's choice k */
	tt_graph start[TT_CHOICE_MAX + 1];
	float *start_flat[TT_CHOICE_MAX + 1];
	size_t start_nflat[TT_CHOICE_MAX + 1];
	int have_start;
	int init_k;               /* the [space] entry of init, -1 none */
	tt_wgm_shape shape;
	int h, w, c, classes;
	/* the forecasts of the last fit, candidates in pool order */
	int decided;              /* a decision for the current table */
	int random_pick;          /* initial design: that pool entry, else -1 */
	int ncand;
	int *ci, *cb;
	double *mu, *sd, *ei, *fmu, *fsd;
	tt_sampler_forecast *rows;
	int nrows;
} fms_state;

/* ---- coordinates ---------------------------------------------------------- */

static double coord(const tt_param_spec *p, double v)
{
	double u;
	switch (p->type) {
	case TT_P_LOGFLOAT:
		u = log(v / p->lo) / log(p->hi / p->lo);
		break;
	case TT_P_LOGINT:
		u = log(v / p->lo) / log((p->hi + 1) / p->lo);
		break;
	case TT_P_CHOICE:
		u = p->nchoices > 1 ? v / (p->nchoices - 1) : 0;
		break;
	default:
		u = p->hi > p->lo ? (v - p->lo) / (p->hi - p->lo) : 0;
	}
	return isfinite(u) ? (u < 0 ? 0 : u > 1 ? 1 : u) : 0;
}

static void coords(const fms_state *s, const double *v, double *x)
{
	for (int k = 0; k < s->st->nspace; k++)
		x[k] = coord(&s->st->space[k], v[k]);
	x[s->st->nspace] = (double)s->z / s->stages;
}

/* ---- open and free ---------------------------------------------------------- */

static void fms_free(void *state)
{
	fms_state *s = state;
	tt_fms_free(s->f);
	if (s->g)
		for (int i = 0; i < s->npool * (s->bmax + 1); i++)
			tt_wgraph_free(&s->g[i]);
	if (s->flat)
		for (int i = 0; i < s->npool * (s->bmax + 1); i++)
			free(s->flat[i]);
	for (int k = 0; k <= TT_CHOICE_MAX; k++) {
		tt_wgraph_free(&s->start[k]);
		free(s->start_flat[k]);
	}
	free(s->g);
	free(s->flat);
	free(s->nflat);
	free(s->have);
	free(s->vals);
	free(s->x);
	free(s->trial);
	free(s->budget);
	free(s->curve);
	free(s->pool_of);
	free(s->ci);
	free(s->cb);
	free(s->mu);
	free(s->sd);
	free(s->ei);
	free(s->fmu);
	free(s->fsd);
	free(s->rows);
	memset(s, 0, sizeof *s);
}

static int fms_open(void *state, const tt_study *st, int weights, tt_err *err)
{
	fms_state *s = state;
	s->st = st;
	s->weights = weights;
	s->pending = -1;
	s->random_pick = -1;
	s->init_k = -1;
	for (int k = 0; k < st->nspace; k++)
		if (strcmp(st->space[k].name, "init") == 0)
			s->init_k = k;
	if (st->sched_kind != TT_SCH_FREEZE_THAW)
		return tt_err_set(err, TT_EINPUT, "%s: sampler %s decides one epoch at a time: "
		                  "expected [scheduler] kind = freeze-thaw", st->path,
		                  st->sampler_name);
	tt_rung_def rd[TT_RUNG_MAX];
	s->stages = st->stages > 0 ? st->stages : 1;
	s->bmax = tt_ladder(st, s->stages, rd);
	s->z = rd[0].trainable;
	s->d = st->nspace + 1;
	s->npool = st->max_trials;
	s->shape = (tt_wgm_shape){ .spec = st->train.model, .trainable = s->z };
	if (weights != TT_SURR_NONE && tt_wgm_count(&s->shape, NULL, NULL, err) != TT_OK) {
		char msg[sizeof err->msg];
		snprintf(msg, sizeof msg, "%s", err->msg);
		return tt_err_set(err, TT_EINPUT, "%s: [model] spec = %s: sampler %s: %s",
		                  st->path, st->train.model, st->sampler_name, msg);
	}
	size_t np = (size_t)s->npool, nb = (size_t)s->bmax + 1;
	s->vals = calloc(np * TT_SPACE_MAX, sizeof *s->vals);
	s->x = calloc(np * (size_t)s->d, sizeof *s->x);
	s->trial = malloc(np * sizeof *s->trial);
	s->budget = calloc(np, sizeof *s->budget);
	s->curve = calloc(np * (size_t)s->bmax, sizeof *s->curve);
	s->g = calloc(np * nb, sizeof *s->g);
	s->flat = calloc(np * nb, sizeof *s->flat);
	s->nflat = calloc(np * nb, sizeof *s->nflat);
	s->have = calloc(np * nb, 1);
	s->rows = calloc(np, sizeof *s->rows);
	if (!s->vals || !s->x || !s->trial || !s->budget || !s->curve || !s->g || !s->flat ||
	    !s->nflat || !s->have || !s->rows)
		return tt_err_set(err, TT_ERUNTIME, "sampler %s: out of memory for %d "
		                  "configurations", st->sampler_name, s->npool);
	/* the pool: the random stream's points as the trials would store them */
	tt_sampler pts;
	int rc = tt_sampler_init(&pts, TT_SAMP_RANDOM, st->nspace, st->seed ^ 0x464d53ull, err);
	if (rc)
		return rc;
	for (int i = 0; i < s->npool; i++) {
		double u[TT_SAMPLER_DIM_MAX], v[TT_SPACE_MAX];
		char json[1024];
		tt_sampler_next(&pts, u);
		for (int k = 0; k < st->nspace; k++)
			v[k] = tt_sampler_map(&st->space[k], u[k]);
		tt_study_params_json(st, v, json, sizeof json);
		if (tt_study_params_parse(st, json, s->vals + (size_t)i * TT_SPACE_MAX, err))
			memcpy(s->vals + (size_t)i * TT_SPACE_MAX, v, sizeof v);
		coords(s, s->vals + (size_t)i * TT_SPACE_MAX, s->x + (size_t)i * s->d);
		s->trial[i] = -1;
	}
	tt_fms_config c;
	tt_fms_defaults(&c, s->d, s->bmax);
	c.surr.weights = weights;
	c.surr.gmn.width = st->gmn_width > 0 ? st->gmn_width : 32;
	c.surr.gmn.blocks = st->gmn_blocks > 0 ? st->gmn_blocks : 4;
	c.surr.gmn.nf_node = TT_WG_NODE_F;
	c.surr.gmn.nf_edge = TT_WG_EDGE_F;
	c.surr.seed = st->seed;
	if (st->fit_steps_first > 0)
		c.steps_first = st->fit_steps_first;
	if (st->fit_steps > 0)
		c.steps_warm = st->fit_steps;
	if (st->init_configs > 0)
		c.init = st->init_configs;
	return tt_fms_new(&c, &s->f, err);
}

static int open_fms(void *state, const tt_study *st, tt_err *err)
{
	return fms_open(state, st, TT_SURR_GMN, err);
}

static int open_dyhpo(void *state, const tt_study *st, tt_err *err)
{
	return fms_open(state, st, TT_SURR_NONE, err);
}

static int open_flat(void *state, const tt_study *st, tt_err *err)
{
	return fms_open(state, st, TT_SURR_FLAT, err);
}

/* ---- weights ------------------------------------------------------------------ */

/* The starting weights of start k (see fms_state.start): the
 * initialisation every trial of the study starts from (tt_study_apply
 * gives every trial the study's seed), with the init checkpoint's weights
 * loaded (a new head when its classes differ), as train.c starts a run. */
static int make_one_start(fms_state *s, int k, const char *init, tt_err *err)
{
	tt_model_config mc = { .spec = s->st->train.model, .h = s->h, .w = s->w, .c = s->c,
	                       .classes = s->classes, .batch = 1, .trainable = s->z,
	                       .seed = s->st->seed, .be = tt_backend_get("cpu") };
	tt_model *m = NULL;
	int rc = tt_model_create(&mc, &m, err);
	if (rc)
		return rc;
	if (init && (rc = tt_train_init_model(m, s->st->train.model, init, NULL, err))) {
		tt_model_free(m);
		return rc;
	}
	size_t np = tt_model_nparams(m);
	const float *p = tt_model_params(m);
	tt_wgm_shape sh = s->shape;
	sh.h = s->h, sh.w = s->w, sh.c = s->c, sh.classes = s->classes;
	if (s->weights == TT_SURR_GMN) {
		rc = tt_wgm_build(&sh, p, np, NULL, &s->start[k], err);
	} else {
		size_t off = 0;
		rc = tt_wgm_suffix(&sh, &off, err);
		if (rc == TT_OK) {
			s->start_nflat[k] = np - off;
			s->start_flat[k] = malloc(s->start_nflat[k] * sizeof(float) + 1);
			if (!s->start_flat[k])
				rc = tt_err_set(err, TT_ERUNTIME, "out of memory");
			else
				memcpy(s->start_flat[k], p + off, s->start_nflat[k] * sizeof(float));
		}
	}
	tt_model_free(m);
	return rc;
}

static int make_start(fms_state *s, tt_err *err)
{
	if (s->have_start || s->weights == TT_SURR_NONE)
		return TT_OK;
	int rc = make_one_start(s, 0, s->st->train.init, err);
	if (rc == TT_OK && s->init_k >= 0)
		for (int k = 0; k < s->st->space[s->init_k].nchoices && rc == TT_OK; k++)
			rc = make_one_start(s, 1 + k, s->st->inits[k], err);
	if (rc == TT_OK)
		s->have_start = 1;
	return rc;
}

/* Which start pool entry i begins from. */
static int start_of(const fms_state *s, int i)
{
	if (s->init_k < 0)
		return 0;
	int k = (int)s->vals[(size_t)i * TT_SPACE_MAX + s->init_k];
	return k >= 0 && k < TT_CHOICE_MAX ? 1 + k : 0;
}

/* Keep the weights of pool entry i after epoch e from its checkpoint. */
static int take_weights(fms_state *s, int i, int e, const void *blob, size_t len,
                        tt_err *err)
{
	size_t at = (size_t)i * (s->bmax + 1) + e;
	tt_wgm_shape sh = s->shape;
	sh.h = s->h, sh.w = s->w, sh.c = s->c, sh.classes = s->classes;
	int rc;
	if (s->have[at])
		return TT_OK;
	if (s->weights == TT_SURR_GMN) {
		rc = tt_wgm_from_ckpt(&sh, blob, len, &s->g[at], err);
	} else {
		float *p = NULL;
		size_t np = 0, off = 0;
		rc = tt_wgm_ckpt_params(blob, len, &p, &np, NULL, err);
		if (rc == TT_OK)
			rc = tt_wgm_suffix(&sh, &off, err);
		if (rc == TT_OK && off <= np) {
			memmove(p, p + off, (np - off) * sizeof *p);
			s->flat[at] = p;
			s->nflat[at] = np - off;
			p = NULL;
		}
		free(p);
	}
	if (rc == TT_OK)
		s->have[at] = 1;
	return rc;
}

static const tt_graph *w_graph(void *ud, int i, int e)
{
	fms_state *s = ud;
	if (e == 0)
		return s->have_start ? &s->start[start_of(s, i)] : NULL;
	size_t at = (size_t)i * (s->bmax + 1) + e;
	return s->have[at] ? &s->g[at] : NULL;
}

static const float *w_flat(void *ud, int i, int e, size_t *n)
{
	fms_state *s = ud;
	if (e == 0) {
		*n = s->start_nflat[start_of(s, i)];
		return s->have_start ? s->start_flat[start_of(s, i)] : NULL;
	}
	size_t at = (size_t)i * (s->bmax + 1) + e;
	*n = s->nflat[at];
	return s->have[at] ? s->flat[at] : NULL;
}

/* ---- decisions -------------------------------------------------------------- */

/* Fit on the table as it is and keep every candidate's forecast. */
static int decide(fms_state *s, tt_err *err)
{
	tt_fms_conf *t = malloc((size_t)s->npool * sizeof *t);
	if (!t)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	for (int i = 0; i < s->npool; i++)
		t[i] = (tt_fms_conf){ .x = s->x + (size_t)i * s->d, .budget = s->budget[i],
		                      .curve = s->curve + (size_t)i * s->bmax };
	tt_fms_weights w = { s, w_graph, w_flat };
	tt_fms_choice ch;
	int rc = tt_fms_decide(s->f, t, s->npool, &w, &ch, err);
	free(t);
	s->ncand = 0;
	s->random_pick = -1;
	s->decided = 1;
	if (rc == TT_EINPUT) /* every configuration at the top: nothing to decide */
		return TT_OK;
	if (rc)
		return rc;
	if (ch.random) {
		s->random_pick = ch.index;
		return TT_OK;
	}
	int n = ch.ncand;
	int *ci = realloc(s->ci, (size_t)n * sizeof *ci);
	if (ci)
		s->ci = ci;
	int *cb = realloc(s->cb, (size_t)n * sizeof *cb);
	if (cb)
		s->cb = cb;
	double *mu = realloc(s->mu, (size_t)n * sizeof *mu);
	if (mu)
		s->mu = mu;
	double *sd = realloc(s->sd, (size_t)n * sizeof *sd);
	if (sd)
		s->sd = sd;
	double *ei = realloc(s->ei, (size_t)n * sizeof *ei);
	if (ei)
		s->ei = ei;
	double *fmu = realloc(s->fmu, (size_t)n * sizeof *fmu);
	if (fmu)
		s->fmu = fmu;
	double *fsd = realloc(s->fsd, (size_t)n * sizeof *fsd);
	if (fsd)
		s->fsd = fsd;
	if (!ci || !cb || !mu || !sd || !ei || !fmu || !fsd)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	memcpy(s->ci, ch.cand_index, (size_t)n * sizeof *ci);
	memcpy(s->cb, ch.cand_budget, (size_t)n * sizeof *cb);
	memcpy(s->mu, ch.mu, (size_t)n * sizeof *mu);
	memcpy(s->sd, ch.sd, (size_t)n * sizeof *sd);
	memcpy(s->ei, ch.ei, (size_t)n * sizeof *ei);
	memcpy(s->fmu, ch.final_mu, (size_t)n * sizeof *fmu);
	memcpy(s->fsd, ch.final_sd, (size_t)n * sizeof *fsd);
	s->ncand = n;
	return TT_OK;
}

static int alive(const tt_sampler_io *io, int index)
{
	return !io || !io->alive || io->alive(io->alive_ud, index);
}

static void take_shape(fms_state *s, const tt_sampler_io *io)
{
	if (io && io->classes > 0 && !s->classes)
		s->h = io->h, s->w = io->w, s->c = io->c, s->classes = io->classes;
}

static int fms_ask(void *state, int index, const tt_sampler_io *io,
                   tt_sampler_proposal *out, tt_err *err)
{
	fms_state *s = state;
	int rc;
	take_shape(s, io);
	if (!s->decided && (rc = decide(s, err)))
		return rc;
	memset(out, 0, sizeof *out);
	s->nrows = 0;
	int pick = -1, budget = 0;
	if (s->random_pick >= 0) {
		pick = s->random_pick, budget = 1;
		s->rows[s->nrows++] = (tt_sampler_forecast){ index, 1, NAN, NAN, NAN, 1,
		                                             NAN, NAN };
	} else {
		double top = -INFINITY;
		int at = -1;
		for (int c = 0; c < s->ncand; c++) {
			int tr = s->trial[s->ci[c]];
			if (tr >= 0 && !alive(io, tr))
				continue;
			if (s->ei[c] > top || at < 0)
				top = s->ei[c], at = c;
		}
		if (at >= 0)
			pick = s->ci[at], budget = s->cb[at];
		for (int c = 0; c < s->ncand; c++) {
			int tr = s->trial[s->ci[c]];
			if ((tr < 0 && c != at) || (tr >= 0 && !alive(io, tr)))
				continue;
			s->rows[s->nrows++] = (tt_sampler_forecast){ tr >= 0 ? tr : index, s->cb[c],
			                                             s->mu[c], s->sd[c], s->ei[c],
			                                             c == at, s->fmu[c],
			                                             s->fsd[c] };
		}
	}
	if (pick < 0) {
		out->kind = TT_SAMPLER_CONTINUE;
		out->index = -1;
		return TT_OK;
	}
	(void)budget;
	if (s->trial[pick] >= 0) {
		out->kind = TT_SAMPLER_CONTINUE;
		out->index = s->trial[pick];
	} else {
		out->kind = TT_SAMPLER_NEW;
		memcpy(out->values, s->vals + (size_t)pick * TT_SPACE_MAX,
		       (size_t)s->st->nspace * sizeof *out->values);
		s->pending = pick;
	}
	return TT_OK;
}

static int fms_explain(void *state, const tt_sampler_forecast **rows, int *n)
{
	fms_state *s = state;
	*rows = s->rows;
	*n = s->nrows;
	return TT_OK;
}

static int fms_created(void *state, int index, const double *values, tt_err *err)
{
	fms_state *s = state;
	double x[TT_SPACE_MAX + 1];
	coords(s, values, x);
	int best = -1;
	double bd = INFINITY;
	for (int i = 0; i < s->npool; i++) {
		if (s->trial[i] >= 0)
			continue;
		double d = 0;
		for (int k = 0; k < s->d; k++)
			d += (x[k] - s->x[(size_t)i * s->d + k]) * (x[k] - s->x[(size_t)i * s->d + k]);
		if (i == s->pending && d < 1e-18) {
			best = i;
			break;
		}
		if (d < bd)
			bd = d, best = i;
	}
	s->pending = -1;
	if (best < 0)
		return tt_err_set(err, TT_EINPUT, "sampler %s: trial %d is one more than the "
		                  "%d configurations of max_trials", s->st->sampler_name, index,
		                  s->npool);
	if (index >= s->trcap) {
		int cap = s->trcap ? 2 * s->trcap : 64;
		while (cap <= index)
			cap *= 2;
		int *p = realloc(s->pool_of, (size_t)cap * sizeof *p);
		if (!p)
			return tt_err_set(err, TT_ERUNTIME, "out of memory");
		s->pool_of = p;
		s->trcap = cap;
	}
	s->pool_of[index] = best;
	s->trial[best] = index;
	s->ntr = index + 1;
	/* the entry now holds what the trial stores */
	memcpy(s->vals + (size_t)best * TT_SPACE_MAX, values,
	       (size_t)s->st->nspace * sizeof *values);
	memcpy(s->x + (size_t)best * s->d, x, (size_t)s->d * sizeof *x);
	return TT_OK;
}

static int fms_tell(void *state, const tt_sampler_result *r, const tt_sampler_io *io,
                    tt_err *err)
{
	fms_state *s = state;
	int rc;
	take_shape(s, io);
	if (r->index < 0 || r->index >= s->ntr || r->rung < 0 || r->rung >= s->bmax)
		return TT_OK; /* not a result of this study's epochs */
	int i = s->pool_of[r->index], e = r->rung + 1;
	double y = isfinite(r->val_acc) ? r->val_acc : 0;
	s->curve[(size_t)i * s->bmax + r->rung] = y;
	if (e > s->budget[i])
		s->budget[i] = e;
	if (s->weights != TT_SURR_NONE && io && io->checkpoint) {
		void *blob = NULL;
		size_t len = 0;
		long step = -1;
		if ((rc = io->checkpoint(io->ud, r->id, r->rung, &step, &blob, &len, err)))
			return rc;
		if (blob) {
			rc = take_weights(s, i, e, blob, len, err);
			free(blob);
			if (rc)
				return rc;
		}
		if (s->classes && (rc = make_start(s, err)))
			return rc;
	}
	return decide(s, err);
}

#define FMS_OPS(var, word, open, ck)                                                 \
	const tt_sampler_ops var = {                                                \
		.name = word, .size = sizeof(fms_state), .reads_checkpoints = ck,   \
		.freeze_thaw = 1, .init = open, .ask = fms_ask, .tell = fms_tell,   \
		.created = fms_created, .free = fms_free, .explain = fms_explain,   \
	}

FMS_OPS(tt_sampler_fms, "fms", open_fms, 1);
FMS_OPS(tt_sampler_dyhpo, "dyhpo", open_dyhpo, 0);
FMS_OPS(tt_sampler_fms_flat, "fms-flat", open_flat, 1);
