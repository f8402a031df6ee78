/*
 * sampler.h — samplers that propose configurations and learn from
 * results, and the map from the unit cube to hyperparameter values.
 *
 * Two layers:
 *
 *   tt_sampler_ops   a sampler as a table of operations (ask, tell,
 *                    created, ...), built like the backend table: the
 *                    runner drives every sampler through it and never asks
 *                    which one it runs.  A new sampler is one file that
 *                    defines a `const tt_sampler_ops` and one line in
 *                    sampler.c's table; its name is then a valid
 *                    [scheduler] sampler = value.  See "Samplers as
 *                    plug-ins" below.
 *   tt_sampler       the unit-cube point streams that the first two
 *                    entries, random and halton, draw from (and that other
 *                    samplers may use for their own random designs).
 *
 * The point streams yield u in [0,1)^d, d <= TT_SAMPLER_DIM_MAX, one per
 * trial; tt_sampler_map turns each coordinate into a value of the matching
 * [space] entry.  Everything is a pure function of (kind, d, seed, how many
 * points were drawn), so a study resumed from its database restores them
 * from the number of trials it holds (see tt_sampler_skip).
 *
 *   TT_SAMP_RANDOM  independent uniform coordinates from a tt_rng stream
 *                   (53 random bits each).
 *   TT_SAMP_HALTON  the Halton sequence, dimension j in base prime(j)
 *                   (2, 3, 5, ..., 131), from index 1 (index 0 is the
 *                   corner 0 of the unscrambled sequence), with a seeded
 *                   random permutation of the digits at every position
 *                   (Matousek's random digit scrambling): different seeds
 *                   give different sequences, each as evenly spread along
 *                   every axis as Halton's, and the scramble breaks up the
 *                   correlated lines that plain Halton draws in high
 *                   dimensions.  Along axis j the spread is even once n is
 *                   a few times prime(j): the mean Kolmogorov-Smirnov
 *                   distance per axis is 3 to 16 times smaller than
 *                   random's at n = 256, 7 to 64 times at n = 4096.
 *
 * A tt_sampler is a plain struct: no allocation, no free.  The kinds, the
 * parameter types and tt_param_spec come from study.h.
 */
#ifndef TT_SAMPLER_H
#define TT_SAMPLER_H

#include <stdint.h>

#include "err.h"
#include "rng.h"
#include "study.h"

#define TT_SAMPLER_DIM_MAX 32
/*
 * Halton digits kept per coordinate: the most with base^digits <= 2^52, so
 * that every coordinate is an exact fraction num / base^digits strictly
 * below 1.  One permutation of base entries per digit: the sum over the 32
 * bases of digits * base is the size of the table (tt_sampler_init checks).
 */
#define TT_SAMPLER_PERM_BYTES 14929

typedef struct tt_sampler {
	int kind;                 /* enum tt_sampler_kind */
	int d;                    /* dimensions, 1..TT_SAMPLER_DIM_MAX */
	uint64_t seed;
	uint64_t drawn;           /* points drawn so far */
	tt_rng rng;               /* TT_SAMP_RANDOM: the coordinates */
	/* TT_SAMP_HALTON, per dimension j: */
	uint32_t base[TT_SAMPLER_DIM_MAX];   /* the j-th prime */
	int ndigits[TT_SAMPLER_DIM_MAX];     /* digits kept */
	double denom[TT_SAMPLER_DIM_MAX];    /* base^ndigits, exact */
	int perm_at[TT_SAMPLER_DIM_MAX];     /* dimension j's table offset */
	/* digit position k (k = 0 most significant) of dimension j maps
	 * digit a to perm[perm_at[j] + k * base[j] + a] */
	uint8_t perm[TT_SAMPLER_PERM_BYTES];
} tt_sampler;

/* Set up s to draw d-dimensional points.  TT_EINPUT for an unknown kind or
 * d outside 1..TT_SAMPLER_DIM_MAX. */
int tt_sampler_init(tt_sampler *s, int kind, int d, uint64_t seed, tt_err *err);

/* The next point: u[0..d), each in [0, 1). */
void tt_sampler_next(tt_sampler *s, double *u);
/* The point next would give, without taking it. */
void tt_sampler_peek(const tt_sampler *s, double *u);

/* Move on n points without computing them: a sampler that drew k points
 * and one that skipped k then propose the same next point.  O(1) for
 * Halton, O(n d) for random. */
void tt_sampler_skip(tt_sampler *s, uint64_t n);

/*
 * Map u in [0,1) to a value of parameter p (u outside [0,1) is a bug):
 *
 *   TT_P_FLOAT     lo + u (hi - lo), uniform on [lo, hi)
 *   TT_P_LOGFLOAT  uniform in log on [lo, hi): every decade equally
 *                  likely; needs 0 < lo
 *   TT_P_INT       uniform over the integers lo..hi, both included
 *   TT_P_LOGINT    integer k in lo..hi, both included, with probability
 *                  proportional to log((k + 1) / k): floor of a log-uniform
 *                  value on [lo, hi + 1); needs 1 <= lo
 *   TT_P_CHOICE    an index 0..nchoices-1 as a double, uniform (the form
 *                  tt_study_apply takes)
 *
 * Integer bounds that are not integers are narrowed to ceil(lo)..floor(hi).
 * Returns NaN when p cannot be sampled: hi < lo, a log type with a bound
 * out of its domain, no choices, an unknown type.
 */
double tt_sampler_map(const tt_param_spec *p, double u);

/*
 * The inverse of tt_sampler_map: a u in [0, 1) that maps back to v, for a
 * sampler that models the unit cube but is told values (created gets a
 * trial's stored values, not the u it was proposed from):
 *
 *   TT_P_FLOAT     (v - lo) / (hi - lo)
 *   TT_P_LOGFLOAT  log(v / lo) / log(hi / lo)
 *   TT_P_INT       the centre of k's cell, (k - lo + 0.5) / (hi - lo + 1)
 *   TT_P_LOGINT    the centre of k's cell [k, k + 1) on the log axis over
 *                  [lo, hi + 1): log(sqrt(k (k + 1)) / lo) / log((hi + 1) / lo)
 *   TT_P_CHOICE    the centre of choice c's cell, (c + 0.5) / nchoices
 *
 * with k = v rounded to the nearest integer (c likewise) and integer
 * bounds narrowed as map narrows them.  The result is clamped into
 * [0, 1): a value outside the bounds (a parameter edited in the
 * database) becomes the nearest end, so map(unmap(v)) is v for every v
 * inside them (integers and choices exactly, floats to rounding) and the
 * nearest bound otherwise; a value of lo == hi maps to 0.  NaN when v is
 * NaN or p cannot be sampled (where map gives NaN).
 */
double tt_sampler_unmap(const tt_param_spec *p, double v);

/* ==== samplers as plug-ins: ask and tell =================================
 *
 * The runner's side of the contract, in the order it calls:
 *
 *   open      once per run of a study: the sampler's state is allocated
 *             (ops->size bytes, zeroed) and ops->init sets it up from the
 *             study (its [space], seed, ladder, max_trials).
 *   created   once per trial, in creation order (index 0, 1, ...): "trial
 *             index exists, with these values".  values are the trial's
 *             parameters as stored in trials.params, which is what it
 *             trains with: live, right after ask proposed them (read back
 *             from the stored text, so a float option is the float it
 *             trains with); on resume, read back from the database, even
 *             when they differ from what ask would propose now.
 *   tell      once per rung result: live, right after the result is stored;
 *             on resume, every stored result again in the order it was
 *             stored (after every trial was created again, before the
 *             first ask).
 *   ask       whenever the scheduler wants a new trial; the runner stores
 *             the proposal and calls created with what was stored.
 *   close     at the end of the run.
 *
 * There is no separate "save": a sampler's state lives in the database
 * as the trials it proposed (trials.params) and the results it was told
 * (rungs), and created + tell rebuild it.  For that to work a sampler
 * keeps two rules:
 *
 *   1. Its state changes only in created and tell, and depends on those
 *      calls alone, not on how they interleaved with asks in the run that
 *      made them.  ask proposes from the state and changes nothing a later
 *      proposal depends on (a cache it can rebuild, such as a fitted model,
 *      is fine, at the price of proposals that may differ after a resume
 *      in the last digits of the refit).  Randomness: a stream advanced by
 *      created (random and halton take one point per trial), or one keyed
 *      by the trial index (tt_rng_seed(&r, seed, index)).
 *   2. It reads results only from tell's arguments, which carry exactly
 *      what the database stores (a NaN loss is NaN both times), and
 *      checkpoints only through the io handle, which reads the same rows
 *      live and on resume (the bytes of a blob include its training time,
 *      so two runs of the same study store different blobs; a tell and
 *      its re-tell read the same one).
 *
 * Threads: the runner calls every operation under its own lock, from
 * whichever worker is creating a trial or storing a result, so a sampler
 * needs no lock; but every other worker waits meanwhile, so a sampler that
 * fits a model keeps that work in ask (once per new trial) rather than in
 * tell.
 */

/*
 * What a sampler may read from the study database without depending on
 * db/: the runner fills this in (it is the one place that knows both).
 * The handle is valid only during the call it is passed to.
 */
typedef struct tt_sampler_io {
	void *ud;
	/*
	 * The latest stored checkpoint of (trial, rung): TT_OK with *blob
	 * malloc'd (the caller frees it), *len and *step; *blob NULL (and
	 * *step -1) when none is stored (never written, or pruned).  trial is
	 * a trials.id (tt_sampler_result.id).  The blob is the engine's
	 * checkpoint format (train.h).
	 */
	int (*checkpoint)(void *ud, int64_t trial, int rung, long *step,
	                  void **blob, size_t *len, tt_err *err);
	/* Optional (NULL: every trial is): 1 while trial index may still be
	 * trained (not killed, diverged or failed), for a freeze-thaw sampler
	 * choosing which trial continues. */
	int (*alive)(void *ud, int index);
	void *alive_ud;
	/* The data every trial trains on: input shape and classes (0 when the
	 * caller does not say), for a sampler that reads weights. */
	int h, w, c, classes;
} tt_sampler_io;

/* One stored rung result, as tell receives it. */
typedef struct tt_sampler_result {
	int index;                /* the trial: creation order, from 0 */
	int64_t id;               /* its trials.id, for io->checkpoint */
	const double *values;     /* its configuration, [space] order (a choice
	                           * as its index), as stored in trials.params */
	int rung;                 /* the rung, 0 the lowest */
	int trainable;            /* stages trained at that rung */
	double epochs;            /* epochs at that rung: the budget */
	double val_loss, val_acc; /* NaN when missing */
	double seconds;           /* training wall time */
	double macs;              /* compute spent, multiply-accumulates */
} tt_sampler_result;

/* What ask answers. */
enum tt_sampler_answer {
	TT_SAMPLER_NEW,           /* a new trial with values */
	TT_SAMPLER_CONTINUE       /* continue trial `index` one epoch further
	                           * up its budget (freeze-thaw samplers such as
	                           * FMS): only [scheduler] kind = freeze-thaw
	                           * acts on it; any other scheduler stops with
	                           * an error if a sampler answers it */
};

/*
 * One line of a freeze-thaw decision (the forecasts table): a candidate
 * trial at the budget it would reach, the surrogate's posterior there and
 * its expected improvement.  index is a trial index (creation order); the
 * configuration a NEW answer proposes has index = the index asked for.
 * mu, sd, ei are NaN for a decision of the random initial design.
 */
typedef struct tt_sampler_forecast {
	int index;
	int budget;               /* epochs the trial would have after it */
	double mu, sd, ei;
	int chosen;
	double final_mu, final_sd; /* the forecast at the top budget */
} tt_sampler_forecast;

typedef struct tt_sampler_proposal {
	int kind;                 /* enum tt_sampler_answer */
	int index;                /* CONTINUE: the trial to continue; -1: the
	                           * sampler has nothing left to propose (every
	                           * configuration at the top, or dead) */
	double values[TT_SPACE_MAX]; /* NEW: the configuration, [space] order;
	                           * each inside its entry's bounds (a choice as
	                           * its index), as tt_sampler_map gives them */
} tt_sampler_proposal;

/* A sampler: every member is required unless its comment says optional.
 * state is the sampler's own block of size bytes. */
typedef struct tt_sampler_ops {
	const char *name;         /* its [scheduler] sampler = word */
	size_t size;              /* bytes of state, allocated zeroed */
	/* 1: it reads trials' checkpoints (io->checkpoint) when told, and a
	 * resume re-tells it with them: the runner then keeps every
	 * checkpoint, whatever keep_checkpoints says, so that the re-told
	 * sampler sees what the live one saw. */
	int reads_checkpoints;
	/* 1: it decides one epoch at a time (answers CONTINUE) and wants
	 * [scheduler] kind = freeze-thaw, which refuses the others' CONTINUE
	 * and continues their trials to the top rung itself. */
	int freeze_thaw;
	/* Set up for study s (which outlives the sampler: keeping a pointer
	 * to it is fine); TT_EINPUT when the study does not suit it. */
	int (*init)(void *state, const tt_study *s, tt_err *err);
	/* The proposal for trial index (every index below it was created);
	 * see rule 1 for what ask may change. */
	int (*ask)(void *state, int index, const tt_sampler_io *io,
	           tt_sampler_proposal *out, tt_err *err);
	/* A result (optional: random and halton ignore results).  A failure
	 * stops the study: a sampler that missed a result would not be the
	 * one a resume rebuilds. */
	int (*tell)(void *state, const tt_sampler_result *r,
	            const tt_sampler_io *io, tt_err *err);
	/* Trial index exists with these values, [space] order. */
	int (*created)(void *state, int index, const double *values,
	               tt_err *err);
	/* Free what init allocated beyond the state block (optional).  Also
	 * called after a failed init, on what init left of the block, which
	 * starts zeroed. */
	void (*free)(void *state);
	/* The last ask's decision as forecast lines (optional): *rows points
	 * into the state, valid until the next call; the runner stores them
	 * in the forecasts table. */
	int (*explain)(void *state, const tt_sampler_forecast **rows, int *n);
} tt_sampler_ops;

/*
 * The samplers built in: sampler.c's table, in the order of enum
 * tt_sampler_kind first.  Adding one (TPE, FMS, ...): a file
 * engine/sampler_NAME.c that defines `const tt_sampler_ops
 * tt_sampler_NAME`, and in sampler.c its extern and its line in the table,
 * as backend.c does for backends; the study files then accept
 * sampler = NAME.  tests/toy_sampler.h is a worked example.
 */
extern const tt_sampler_ops tt_sampler_random, tt_sampler_halton;
/* freeze-thaw (sampler_fms.c): configuration, curve and the weights'
 * graph; without weights (DyHPO); flattened weights (the ablation) */
extern const tt_sampler_ops tt_sampler_fms, tt_sampler_dyhpo, tt_sampler_fms_flat;
/* the Tree-structured Parzen Estimator of tpe.h, modelling the highest
 * rung with enough results (sampler_tpe.c) */
extern const tt_sampler_ops tt_sampler_tpe;

/* The built-in sampler called name, or NULL. */
const tt_sampler_ops *tt_sampler_find(const char *name);
/* The i-th built-in sampler (i = a tt_study.sampler), or NULL. */
const tt_sampler_ops *tt_sampler_nth(int i);
/* Its index, or -1 when name is not built in. */
int tt_sampler_index(const char *name);
/* Their names, ", "-separated, for messages and the man page. */
const char *tt_sampler_names(void);

/* A running sampler: its table and its state. */
typedef struct tt_sampler_inst {
	const tt_sampler_ops *ops;
	void *state;
	int ntrials;              /* trials created so far */
} tt_sampler_inst;

/* Allocate and init; on failure s is closed.  TT_EINPUT for a table with
 * a required member missing (name, size, init, ask, created) or a study
 * the sampler refuses. */
int tt_sampler_open(tt_sampler_inst *s, const tt_sampler_ops *ops,
                    const tt_study *st, tt_err *err);
/* The operations through the table; index must be s->ntrials for ask and
 * created (trials come in creation order: a bug otherwise), and a told
 * result's index below it.  io may be NULL (then a sampler reading a
 * checkpoint gets "none stored"). */
int tt_sampler_ask(tt_sampler_inst *s, int index, const tt_sampler_io *io,
                   tt_sampler_proposal *out, tt_err *err);
int tt_sampler_tell(tt_sampler_inst *s, const tt_sampler_result *r,
                    const tt_sampler_io *io, tt_err *err);
int tt_sampler_created(tt_sampler_inst *s, int index, const double *values,
                       tt_err *err);
/* Free; safe on a zeroed or already closed s. */
void tt_sampler_close(tt_sampler_inst *s);

#endif
