/*
 * train.h — one training run: data, model, optimizer, loop, evaluation.
 *
 * This is what `tunetop train` runs and what a study's worker will run for
 * each (trial, rung).  Progress and control go through hooks, so the same
 * loop serves the command line, the scheduler and the tests.
 */
#ifndef TT_TRAIN_H
#define TT_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "continual.h"
#include "data.h"
#include "err.h"
#include "evograd.h"
#include "gates.h"
#include "mem.h"
#include "model.h"
#include "optim.h"

typedef struct tt_train_config {
	const char *model;       /* model spec, see model.h */
	const char *data;        /* "fashion-mnist", "synthetic" or a directory */
	int train_size;          /* examples carved from the training set */
	int val_size;            /* held-out validation examples */
	int trainable;           /* z; <= 0 means all stages */
	int epochs;              /* used when steps == 0 */
	long steps;              /* > 0: train exactly this many steps */
	int batch;
	tt_optim_config opt;
	float label_smoothing;
	int augment;
	int test;                /* also evaluate on the test set */
	uint64_t seed;
	int threads;
	const char *backend;     /* "cpu" unless asked otherwise */
	/* Complexity-aware training (gates.h): strength 0 leaves the network
	 * ungated.  lam_on <= 0 means the run's weight decay, lam_off <= 0
	 * ten times lam_on. */
	tt_gate_config gates;
	/* EvoGrad (evograd.h, method_evograd.c): what == TT_EVO_OFF leaves it
	 * out.  rotate: the training images' starting rotation in degrees,
	 * which --evograd rotate learns. */
	tt_evo_config evograd;
	double rotate;
	/* Data for the meta-step's experiments, applied by
	 * tt_train_data_load: a fraction of the training labels flipped
	 * (symmetric, seeded; the validation and test sets stay clean), the
	 * validation examples the meta-step draws from (0: all), and a
	 * rotation in degrees of the validation and test images. */
	double label_noise;
	int clean_val;
	double val_rotate;
	/* Continual learning (continual.h, method_continual.c): tasks 0
	 * leaves it out. */
	tt_cl_config continual;
	/*
	 * A checkpoint blob to start from (NULL: a fresh start).  With
	 * resume_weights_only = 0 the run continues exactly where the blob
	 * was taken (same step, data order, random streams, optimizer state):
	 * an interrupted run resumed gives the uninterrupted run's numbers.
	 * With 1, only the weights, batch-norm statistics and the optimizer
	 * state of the stages that were trainable are taken, and a new run
	 * starts from them: a rung continued at a greater trainable depth.
	 */
	const void *resume;
	size_t resume_len;
	int resume_weights_only;
	/*
	 * init: a checkpoint file to start from (NULL: the seed's weights),
	 * written by `tunetop train --save-checkpoint`: its weights and
	 * batch-norm statistics, a new head (the seed's) when the classes
	 * differ; not its optimizer state or step.  Left alone when resume is
	 * set (a resumed run already has its weights).  save_checkpoint: the
	 * file `tunetop train` writes the run's last checkpoint to (the
	 * engine ignores it).
	 */
	const char *init;
	const char *save_checkpoint;
	/* enum tt_frozen_bn (model.h): how a frozen stage's batch norms
	 * normalise; fixed ones are calibrated before a fresh model's first
	 * step (tt_model_calibrate) */
	int frozen_bn;
	/* The frozen-prefix feature cache (fcache.h) the run uses when its
	 * prefix can be cached; NULL: none.  feature_cache: the MiB `tunetop
	 * train` gives the one it makes (the engine reads only fcache). */
	struct tt_fcache *fcache;
	double feature_cache;
} tt_train_config;

/* Fills c with the defaults that `tunetop train --help` lists. */
void tt_train_defaults(tt_train_config *c);

/* The data a run reads; loaded once, shareable between runs. */
typedef struct tt_train_data {
	tt_dataset train, val, test; /* test.n == 0 when not loaded */
	char source[256];            /* what was loaded, for messages */
} tt_train_data;

int tt_train_data_load(const tt_train_config *c, tt_train_data *d, tt_err *err);
void tt_train_data_free(tt_train_data *d);

#define TT_STAGE_NAME_MAX TT_STAGE_NAME_MAX_LEN

typedef struct tt_train_stage {
	char name[TT_STAGE_NAME_MAX];
	int frozen;
	size_t params, grads, optim, activations;
	/* with gates: its unit gates and how many end on; layer: -1 no layer
	 * gate, else whether it ends on */
	int units, units_kept, layer;
} tt_train_stage;

/* One gate for the masks table (see model.h for the ids). */
typedef struct tt_gate_row {
	int stage;
	int unit;         /* among the stage's unit gates; -1: the layer gate */
	float prob;       /* t */
	int on;           /* the deterministic gate: t >= 0.5, not pruned */
} tt_gate_row;

/* One named number a method reports: a kept fraction, a learned
 * hyperparameter (method.h). */
typedef struct tt_method_value {
	const char *name;
	double value;
} tt_method_value;

/* What a method reports as it runs (tt_train_hooks.on_report). */
typedef struct tt_method_report {
	const char *method;       /* the method's name (method.h): "gates" */
	long step;
	int final;                /* 1: the end of the run */
	int nrows;                /* rows for the masks table: gates */
	const tt_gate_row *rows;
	int nvalues;              /* named numbers: learned hyperparameters */
	const tt_method_value *values;
	/* continual: rows cl_first .. cl_first+cl_rows-1 of the accuracy
	 * matrix (cl_acc, row-major, cl_tasks columns; row i has tasks
	 * 0..i), newly finished experiences */
	int cl_tasks, cl_first, cl_rows;
	const double *cl_acc;
} tt_method_report;

/* What a gated run kept (all 0 when gates were off). */
typedef struct tt_train_gates {
	int on;
	int ngates;
	/* fractions of the dense network: expected at the final probabilities,
	 * and of the compacted deterministic network the run ends with */
	double macs_expected, params_expected;
	double macs_kept, params_kept;
	int rounded;      /* gates the end rounded to 0/1 from inside (0, 1) */
	tt_gate_row *row; /* the final masks, ngates */
} tt_train_gates;

/* What an EvoGrad run learned (all 0 when it was off). */
#define TT_EVO_VALUES 4
typedef struct tt_train_evograd {
	int on;
	int what;                  /* enum tt_evo_what */
	int nvalues;               /* the learned hyperparameters' summary */
	tt_method_value value[TT_EVO_VALUES]; /* their final values */
	int npath;                 /* points of their path */
	double *path;              /* npath x (1 + nvalues): step, then values */
	long meta_steps, skipped;  /* meta-steps run; skipped for a non-finite
	                            * loss of a copy */
	double meta_seconds;       /* the part of seconds spent in meta-steps */
	size_t extra_bytes;        /* device bytes booked under TT_MEM_METHOD */
} tt_train_evograd;

/* What a continual run measured (all 0 when it was not one). */
typedef struct tt_train_continual {
	int on;
	int tasks, strategy, split;
	int rows;                  /* experiences finished */
	int on_test;               /* the matrix is on the test set (else val) */
	double *acc;               /* tasks x tasks, a[i][j] for j <= i < rows */
	double aca, forgetting;    /* over the rows finished (continual.h) */
	double forget[TT_CL_MAX_TASKS];
	double seconds;            /* training steps, evaluation excluded */
	double exp_seconds[TT_CL_MAX_TASKS];
	size_t peak_bytes;         /* both models' peaks and the method's buffers */
	size_t hn_params;          /* the hypernetwork's parameters (0: none) */
} tt_train_continual;

typedef struct tt_train_result {
	char model[128];
	int stages, trainable;
	int epochs;              /* epochs completed (fractional runs round up) */
	long steps;
	double train_loss;       /* mean over the last epoch (or the run) */
	double train_acc;
	double val_loss, val_acc;
	double test_acc;         /* -1 when not measured */
	double seconds;          /* training wall time, evaluation excluded */
	double samples_per_s;
	double train_macs;       /* per example per step, as computed (with
	                          * gates: the mean over the run's steps of
	                          * what was computed, skipped branches and
	                          * compacted layers left out; with the feature
	                          * cache: the prefix's forward counted only for
	                          * the examples computed, the calibration's
	                          * included) */
	/* The frozen-prefix feature cache: whether the run used one, and the
	 * examples (training steps and evaluations together) whose prefix
	 * output it served and computed. */
	int fcache;
	long long fcache_hits, fcache_misses;
	int diverged;
	size_t mem[TT_MEM_KINDS];/* current bytes per kind at the end */
	size_t mem_total, mem_peak;
	tt_train_stage *stage;   /* stages entries */
	unsigned methods;        /* bit i: method tt_method_get(i) ran */
	tt_train_gates gates;    /* the gates method's result */
	tt_train_evograd evograd;/* EvoGrad's */
	tt_train_continual continual;
} tt_train_result;

/* Progress and control.  Any member may be NULL. */
typedef struct tt_train_hooks {
	void *ud;
	/* After every step; a non-zero return stops the run early. */
	int (*on_step)(void *ud, long step, long total, int epoch, double loss);
	/* After every epoch's validation. */
	void (*on_epoch)(void *ud, int epoch, long step, double train_loss,
	                 double train_acc, double val_loss, double val_acc,
	                 double samples_per_s);
	/*
	 * The run's whole state as one blob (a magic number, then tagged
	 * sections: the core one with the parameters, batch-norm statistics,
	 * optimizer state, step, data order and random streams, and one per
	 * method that keeps state; see ckpt.h), every checkpoint_every steps
	 * (0: never) and once at the end of the run, also when on_step
	 * stopped it early.  The blob is valid during the call only.  A
	 * non-zero return is a storage failure: the run stops with
	 * TT_ERUNTIME.
	 */
	long checkpoint_every;
	int (*on_checkpoint)(void *ud, long step, const void *blob, size_t len);
	/*
	 * What each method of the run reports (method.h): every report_every
	 * steps (0: never) but the last, and once at the end with final set
	 * (gates: every gate's probability and deterministic state, at the
	 * end the final 0/1 masks).  rep is valid during the call only.
	 */
	long report_every;
	void (*on_report)(void *ud, const tt_method_report *rep);
} tt_train_hooks;

/* The checks of c that need no data (model spec, trainable depth, batch,
 * backend), so a caller can refuse bad input before loading anything:
 * TT_EINPUT naming the option.  *nstages (may be NULL) gets the stage
 * count. */
int tt_train_check(const tt_train_config *c, int *nstages, tt_err *err);

/*
 * Load the checkpoint file path (c->init) into the fresh model m of spec
 * `spec`: every stage's parameters and the batch-norm statistics, the
 * head's too when its size is the model's (the same classes), else the
 * head stays as m has it (a new head).  TT_EINPUT naming the file when it
 * cannot be read, is no checkpoint, or holds another model.  *new_head
 * (may be NULL) gets 1 when the head was left new.
 */
int tt_train_init_model(tt_model *m, const char *spec, const char *path, int *new_head,
                        tt_err *err);
/* The same checks without a model: the file reads as a checkpoint of
 * spec (any classes). */
int tt_train_init_check(const char *spec, const char *path, tt_err *err);

/*
 * Run c on d.  TT_OK with *r filled; TT_EDIVERGED when the loss became NaN
 * or infinite (r->diverged = 1, r still filled); TT_EINPUT for a bad
 * configuration; TT_ERUNTIME otherwise.  r->stage is allocated: free it
 * with tt_train_result_free.
 */
int tt_train_run(const tt_train_config *c, const tt_train_data *d,
                 const tt_train_hooks *h, tt_train_result *r, tt_err *err);
void tt_train_result_free(tt_train_result *r);
/* The result as one JSON object on one line. */
void tt_train_result_json(const tt_train_result *r, FILE *f);

#endif
