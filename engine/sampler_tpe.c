/*
 * sampler_tpe.c — the tpe entry of the sampler table: the Tree-structured
 * Parzen Estimator of tpe.h behind ask and tell.  It only ever answers
 * NEW: under random, sh, asha and hyperband the scheduler decides the
 * rungs; under freeze-thaw each configuration trains to the top.
 *
 * State, all of it rebuilt by created and tell (sampler.h's rule 1):
 *
 *   points        per created trial its point u in [0, 1)^d, d the [space]
 *                 entries: tt_sampler_unmap of the values it was created
 *                 with (stored values, not the u ask proposed: a resumed
 *                 study only has the values, and a float option stored
 *                 as a float, or an int at its cell's centre, is then the
 *                 same point live and on resume).
 *   observations  one per told rung result: the trial's point, its
 *                 val_acc (larger is better; NaN counts as the worst) and
 *                 its rung.  A trial told at several rungs is one
 *                 observation per rung; tt_tpe_propose models the highest
 *                 rung with at least min_obs of them (BOHB's rule).  A
 *                 result told again for the same (trial, rung) replaces
 *                 the old observation and moves to the end, as the
 *                 database's INSERT OR REPLACE gives it a new row that a
 *                 resume re-tells in that place: the order matters
 *                 (tt_tpe_propose draws kernels by position and breaks
 *                 ties by it).
 *
 * ask proposes from the observations with a stream keyed by (study seed,
 * trial index) and changes nothing, so a resumed study, created and told
 * again, proposes bit for bit what the uninterrupted one would.
 *
 * Dimensions.  A choice is categorical (ncat = its choices: a weighted
 * count per choice, tpe.h step 3).  An int or log-int is continuous, as
 * in Optuna, whatever its number of values: its values are ordered and
 * neighbours usually behave alike, which a kernel over u shares between
 * them and a categorical count would not; map's floor turns the proposed
 * u into the integer whose cell holds it.
 *
 * Knobs (no [scheduler] key): gamma 0.1 and 24 candidates, Optuna's
 * defaults; min_obs = min(10, max(3, max_trials / 5)).  Optuna starts
 * modelling after 10 trials; a tunetop study is often 10 to 30 trials, in
 * which 10 random ones would leave TPE little to do, so a small study
 * models after a fifth of its trials, at least 3 (the fewest that give a
 * good and two bad observations to contrast).  max_trials may change
 * between runs of a study; min_obs follows it, so a study extended to
 * more trials proposes, from then on, as one started with that many.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "tpe.h"

/* The proposal stream of trial index is (seed, STREAM_TPE + index): "tpe"
 * in the high half, far above rng.h's enum and the other samplers'
 * streams. */
#define STREAM_TPE (0x747065ULL << 32)

typedef struct tpe_state {
	const tt_study *st;
	int d;
	int ncat[TT_SAMPLER_DIM_MAX]; /* 0 continuous, else the choices */
	tt_tpe_config cfg;
	/* created trials: u is ntr x d */
	int ntr, trcap;
	double *u;
	/* observations, in the order told: U is nobs x d */
	int nobs, obcap;
	double *U, *y;
	int *rung, *trial;
} tpe_state;

static void tpe_free(void *state)
{
	tpe_state *s = state;
	free(s->u);
	free(s->U);
	free(s->y);
	free(s->rung);
	free(s->trial);
	s->u = s->U = s->y = NULL;
	s->rung = s->trial = NULL;
}

static int tpe_init(void *state, const tt_study *st, tt_err *err)
{
	tpe_state *s = state;
	if (st->nspace < 1 || st->nspace > TT_SAMPLER_DIM_MAX)
		return tt_err_set(err, TT_EINPUT, "sampler tpe: %d [space] entries, "
		                  "expected 1 to %d", st->nspace, TT_SAMPLER_DIM_MAX);
	s->st = st;
	s->d = st->nspace;
	for (int k = 0; k < s->d; k++)
		s->ncat[k] = st->space[k].type == TT_P_CHOICE ? st->space[k].nchoices : 0;
	tt_tpe_defaults(&s->cfg);
	int m = st->max_trials / 5;
	s->cfg.min_obs = m < 3 ? 3 : m > 10 ? 10 : m;
	return TT_OK;
}

static int tpe_ask(void *state, int index, const tt_sampler_io *io,
                   tt_sampler_proposal *out, tt_err *err)
{
	tpe_state *s = state;
	double u[TT_SAMPLER_DIM_MAX];
	tt_rng r;
	(void)io, (void)err;
	tt_rng_seed(&r, s->st->seed, STREAM_TPE + (uint64_t)index);
	tt_tpe_propose(&s->cfg, s->d, s->ncat, s->U, s->y, s->rung, s->nobs, &r, u);
	out->kind = TT_SAMPLER_NEW;
	for (int k = 0; k < s->d; k++)
		out->values[k] = tt_sampler_map(&s->st->space[k], u[k]);
	return TT_OK;
}

static int tpe_created(void *state, int index, const double *values, tt_err *err)
{
	tpe_state *s = state;
	TT_ASSERT(index == s->ntr);
	if (s->ntr == s->trcap) {
		int cap = s->trcap ? 2 * s->trcap : 64;
		double *u = realloc(s->u, (size_t)cap * s->d * sizeof *u);
		if (!u)
			return tt_err_set(err, TT_ERUNTIME, "sampler tpe: out of memory");
		s->u = u;
		s->trcap = cap;
	}
	double *p = s->u + (size_t)index * s->d;
	for (int k = 0; k < s->d; k++) {
		p[k] = tt_sampler_unmap(&s->st->space[k], values[k]);
		/* a value that does not read back (null in trials.params) has
		 * no place on the axis: the middle, the same live and on
		 * resume, rather than a NaN inside the model */
		if (isnan(p[k]))
			p[k] = 0.5;
	}
	s->ntr++;
	return TT_OK;
}

static int tpe_tell(void *state, const tt_sampler_result *r, const tt_sampler_io *io,
                    tt_err *err)
{
	tpe_state *s = state;
	(void)io;
	TT_ASSERT(r->index >= 0 && r->index < s->ntr);
	/* told again for the same rung: drop the old one (see the top) */
	for (int i = 0; i < s->nobs; i++)
		if (s->trial[i] == r->index && s->rung[i] == r->rung) {
			int tail = s->nobs - i - 1;
			memmove(s->U + (size_t)i * s->d, s->U + (size_t)(i + 1) * s->d,
			        (size_t)tail * s->d * sizeof *s->U);
			memmove(s->y + i, s->y + i + 1, (size_t)tail * sizeof *s->y);
			memmove(s->rung + i, s->rung + i + 1, (size_t)tail * sizeof *s->rung);
			memmove(s->trial + i, s->trial + i + 1, (size_t)tail * sizeof *s->trial);
			s->nobs--;
			break;
		}
	if (s->nobs == s->obcap) {
		int cap = s->obcap ? 2 * s->obcap : 64;
		double *U = realloc(s->U, (size_t)cap * s->d * sizeof *U);
		if (U)
			s->U = U;
		double *y = U ? realloc(s->y, (size_t)cap * sizeof *y) : NULL;
		if (y)
			s->y = y;
		int *rung = y ? realloc(s->rung, (size_t)cap * sizeof *rung) : NULL;
		if (rung)
			s->rung = rung;
		int *trial = rung ? realloc(s->trial, (size_t)cap * sizeof *trial) : NULL;
		if (!trial)
			return tt_err_set(err, TT_ERUNTIME, "sampler tpe: out of memory");
		s->trial = trial;
		s->obcap = cap;
	}
	int n = s->nobs++;
	memcpy(s->U + (size_t)n * s->d, s->u + (size_t)r->index * s->d,
	       (size_t)s->d * sizeof *s->U);
	s->y[n] = r->val_acc;
	s->rung[n] = r->rung;
	s->trial[n] = r->index;
	return TT_OK;
}

const tt_sampler_ops tt_sampler_tpe = {
	.name = "tpe", .size = sizeof(tpe_state), .init = tpe_init, .ask = tpe_ask,
	.tell = tpe_tell, .created = tpe_created, .free = tpe_free,
};
