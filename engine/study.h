/*
 * study.h — study files: what to search, on what data, with which ladder.
 *
 * A study file is INI (documented in man/tunetop-study.5):
 *
 *   [study]      name, db, seed, workers, budget, checkpoint_every,
 *                lock_timeout, keep_checkpoints, feature_cache
 *   [data]       source, train_size, val_size, augment
 *   [model]      spec
 *   [space]      one line per hyperparameter:  NAME = TYPE ARGS
 *                  float LO HI | log-float LO HI | int LO HI | log-int LO HI
 *                  | choice A,B,C
 *   [fidelity]   kind = frozen | epochs | joint, min_trainable, eta,
 *                epochs (per rung at the top: the full budget)
 *   [scheduler]  kind = random | sh | asha | hyperband | freeze-thaw,
 *                max_trials, mode = restart | continue, sampler = random |
 *                halton | fms | dyhpo | fms-flat | tpe, and the FMS
 *                surrogate's sizes: gmn_width, gmn_blocks, fit_steps_first,
 *                fit_steps, init_configs
 *   [train]      the fixed training settings, by their `tunetop train`
 *                option names, ranges and meanings: batch, optimizer, lr,
 *                momentum, nesterov, weight-decay, schedule, warmup,
 *                label-smoothing, test, threads, backend.  The other
 *                options have a home elsewhere (model: [model] spec; data,
 *                train-size, val-size, augment: [data]; seed: [study];
 *                trainable, epochs, steps: the fidelity ladder) and are an
 *                error in [train] that says where they go.  Flags take a
 *                boolean value (true/false, yes/no, on/off, 1/0).
 *
 * One const table of keys per section (name, type, range, default, help,
 * offset) drives parsing, the error messages and the KEYS section of the
 * man page (tt_study_man_keys); [train] and what [space] may search are
 * the rows of the training options table (trainopt.h) that `tunetop
 * train` parses too.
 *
 * A hyperparameter in [space] overrides the same key in [train].  Every
 * error is TT_EINPUT and reads
 *     FILE:LINE: [section] key: found 'X', expected Y
 * (LINE is the last line for what is missing at the end of the file).
 * The parsed study keeps the file's text so that the database can store it.
 */
#ifndef TT_STUDY_H
#define TT_STUDY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "train.h"

#define TT_SPACE_MAX 32
#define TT_CHOICE_MAX 16
#define TT_NAME_LEN 48
#define TT_STUDY_LINE_MAX 1024        /* bytes per line, CR LF excluded */
#define TT_STUDY_FILE_MAX (1 << 20)   /* bytes per study file */

enum tt_param_type { TT_P_FLOAT, TT_P_LOGFLOAT, TT_P_INT, TT_P_LOGINT, TT_P_CHOICE };
/* TT_FID_EXPERIENCES: a continual study's rungs, one per experience
 * ([train] continual-tasks), each continuing the last from its
 * checkpoint. */
enum tt_fid_kind { TT_FID_FROZEN, TT_FID_EPOCHS, TT_FID_JOINT, TT_FID_EXPERIENCES };
/* (Not tt_sched_kind: optim.h has that name for learning-rate schedules.) */
enum tt_scheduler_kind { TT_SCH_RANDOM, TT_SCH_SH, TT_SCH_ASHA, TT_SCH_HYPERBAND,
                         TT_SCH_FREEZE_THAW };
enum tt_sched_mode { TT_MODE_RESTART, TT_MODE_CONTINUE };
enum tt_sampler_kind { TT_SAMP_RANDOM, TT_SAMP_HALTON };
/* Which checkpoints a study keeps: those resuming and promotion still
 * need (the runner prunes the rest), or every (trial, rung) one. */
enum tt_keep_ckpt { TT_KEEP_NEEDED, TT_KEEP_ALL };

typedef struct tt_param_spec {
	char name[TT_NAME_LEN];   /* a `tunetop train` option name, e.g. "lr" */
	int type;                 /* enum tt_param_type */
	double lo, hi;            /* numeric bounds, inclusive, lo < hi; both
	                           * integers for int types, lo > 0 for log */
	int nchoices;             /* choice: 2..TT_CHOICE_MAX distinct values,
	                           * each valid for the option (numbers for
	                           * numeric options, names for sgd|adamw ...) */
	char choices[TT_CHOICE_MAX][TT_NAME_LEN];
	int line;                 /* where it was defined, for messages */
} tt_param_spec;

typedef struct tt_study {
	char path[512];           /* the study file */
	char *text;               /* its contents, NUL-terminated (owned) */

	char name[TT_NAME_LEN];   /* default: the file's basename without .ini */
	char db[512];             /* database path, resolved: a relative db is
	                           * taken relative to the study file's
	                           * directory (default: NAME.db beside it) */
	uint64_t seed;            /* also train.seed */
	int workers;              /* worker threads, >= 1 */
	double budget;            /* compute budget in full-fidelity epochs
	                           * (0: until max_trials are done) */
	long checkpoint_every;    /* training steps between checkpoints */
	double feature_cache;     /* MiB for the trials' shared frozen-prefix
	                           * feature cache (fcache.h); 0: none */
	double lock_timeout;      /* seconds a write waits out another
	                           * process's lock, retrying (0: the busy
	                           * timeout alone) */
	int keep_checkpoints;     /* enum tt_keep_ckpt */

	tt_train_config train;    /* data, model and fixed [train] settings at
	                           * full fidelity (trainable 0 = all, epochs =
	                           * ceil(epochs)); string members point into
	                           * strs: [0] model, [1] data, [2] backend,
	                           * and init_file ([train] init as written in
	                           * strs[3]; empty: none).  A relative data
	                           * directory or init checkpoint is resolved
	                           * against the study file's directory. */
	char strs[4][512];
	/* [space] init = choice ...: each choice's checkpoint file resolved
	 * as strs[3] is (the choice text itself stays as written, for the
	 * fingerprint and the trials' params) */
	char inits[TT_CHOICE_MAX][512];
	char init_file[512];      /* [train] init resolved (strs[3] keeps it as
	                           * written, for the fingerprint: a study run
	                           * from another directory is the same study) */
	int lr_set;               /* lr was given in [train]; if not, lr follows
	                           * the optimizer as in `tunetop train`:
	                           * 0.05 for sgd, 0.001 for adamw */
	int stages;               /* the model's stage count */

	tt_param_spec space[TT_SPACE_MAX];
	int nspace;               /* >= 1 */

	int fid_kind;             /* enum tt_fid_kind */
	int min_trainable;        /* the lowest rung's trainable stages,
	                           * 1..stages */
	int eta;                  /* >= 2 */
	double epochs;            /* epochs at full fidelity */

	int sched_kind;           /* enum tt_scheduler_kind */
	int max_trials;
	int mode;                 /* enum tt_sched_mode */
	int sampler;              /* index in sampler.h's table of samplers
	                           * (enum tt_sampler_kind for the first ones) */
	char sampler_name[TT_NAME_LEN]; /* its name, as in the file */
	/* freeze-thaw samplers (fms, dyhpo, fms-flat): the surrogate's sizes,
	 * the paper's by default (methods.md §2), smaller on 2 cores */
	int gmn_width, gmn_blocks;  /* 32, 4 */
	int fit_steps_first;        /* 1000: Adam steps of the first fits */
	int fit_steps;              /* 50: warm-started steps after them */
	int init_configs;           /* 20: the random initial design */
} tt_study;

/* Parse a study file.  On failure *s is left freed and err names
 * FILE:LINE.  A file that cannot be read, holds a NUL byte or is larger
 * than TT_STUDY_FILE_MAX is TT_EINPUT too. */
int tt_study_load(const char *path, tt_study *s, tt_err *err);
/* Parse from memory (path is used in messages and to resolve db). */
int tt_study_parse(const char *path, const char *text, tt_study *s, tt_err *err);
/* Frees what s owns; safe on a zeroed or already freed study. */
void tt_study_free(tt_study *s);

/*
 * Apply one configuration to a copy of the study's training settings:
 * values[i] is the value of space[i] (for a choice, the index as a
 * double); int types are rounded to the nearest integer.  TT_EINPUT if a
 * value is not finite, not within space[i]'s bounds (1e-6 relative slack,
 * for values read back from JSON) or not valid for the option.  lr
 * follows the optimizer when neither [train] nor [space] sets it.  out's
 * strings point into s, valid while s is.
 */
int tt_study_apply(const tt_study *s, const double *values, tt_train_config *out,
                   tt_err *err);
/*
 * The configuration as a JSON object {"lr":0.01,"optimizer":"sgd",...},
 * in space order: numbers with the fewest digits that read back as the
 * same value of the option's own type (a float option as the same float, a
 * double as the same double), so that tt_study_params_parse gives back
 * exactly what the trial trains with; ints as ints, choices as strings
 * (a choice of numbers, e.g. batch = choice 64,128, as numbers; of a flag
 * as true/false); a value apply() would reject as null.  Writes at most len
 * bytes, NUL included, and returns the length the whole object needs, as
 * snprintf does.
 */
size_t tt_study_params_json(const tt_study *s, const double *values, char *buf,
                            size_t len);

/*
 * The inverse of tt_study_params_json: values[i] for space[i] from the
 * JSON object text (a number; for a choice, its word, number or
 * true/false, as the index; null as NaN, which tt_study_apply rejects).
 * TT_EINPUT, naming the key, when the text is not a flat JSON object, a
 * [space] entry is missing, a key is not in [space], or a value is not one
 * the entry can hold.  Numbers are not checked against the bounds:
 * tt_study_apply does that.
 */
int tt_study_params_parse(const tt_study *s, const char *json, double *values,
                          tt_err *err);

/*
 * The study's fingerprint: canonical text of every setting that decides
 * what a stored result means, one "[section] key = value" line each, so
 * that a database can refuse a study file changed since it was made.  In:
 * every [space] entry and their order, [model], [data] (a data directory
 * by its real path), every [train] setting as it applies (defaults
 * included), [fidelity], [study] seed, [scheduler] kind, mode and
 * sampler.  Out, free to change between runs: [study] name, db, workers,
 * budget, checkpoint_every, lock_timeout, keep_checkpoints and feature_cache, [scheduler] max_trials, [train] threads,
 * backend and test.  The first line names the format's version.  Returns
 * a malloc'd string, NULL when out of memory.
 */
char *tt_study_fingerprint(const tt_study *s);
/*
 * Compare two fingerprints: 0 when they agree, else the number of
 * settings that differ, described in out as
 *     "[space] lr: was log-float 0.0001 0.1, now log-float 0.001 0.1; ..."
 * (cut to len bytes with "and N more").  -1 when was is not a fingerprint
 * of this version (then it cannot be compared: use the stored study
 * text).
 */
int tt_study_fingerprint_diff(const char *was, const char *now, char *out,
                              size_t len);

/* The sections and keys, with types, ranges and defaults, as the roff of
 * man/tunetop-study.5's KEYS section (the man page embeds this text). */
void tt_study_man_keys(FILE *f);

#endif
