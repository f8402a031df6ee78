/*
 * method.h — training methods as a table of operations.
 *
 * A training method (gates today; EvoGrad and partial hypernetworks next)
 * is a static const tt_method, built like the backend table (backend.h):
 * the training loop (train.c) calls each hook of every method the run
 * uses, when the hook is not NULL, and never asks which method it runs.
 * Every hook is optional unless its comment says "required".  Adding a
 * method is one file (engine/method_NAME.c, defining tt_method_NAME) and
 * one line in the registry (method.c).
 *
 * The order of the calls over a run (tests/test_method.c checks it):
 *
 *   wants, model_config          before the model is built
 *   setup                        after it is built (state allocated)
 *   ck_read                      resuming: once, section or NULL
 *   per step:  before_step, [step | forward, loss (the plain one or
 *              the hook's), backward, after_backward, the optimizer],
 *              after_step,
 *              report            every report_every steps but the last
 *              epoch_end         when the step ends an epoch (or the run)
 *              ck_size, ck_write when the step writes a checkpoint
 *   result, report (final)       at the end (also when diverged)
 *   free                         always, also after a failure
 *
 * A method keeps everything it needs between hooks in its state (setup's
 * *state); the loop's own numbers reach it through tt_method_run.
 */
#ifndef TT_METHOD_H
#define TT_METHOD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "model.h"
#include "optim.h"
#include "train.h"

/* What the loop shares with every hook; the loop owns it. */
typedef struct tt_method_run {
	const tt_train_config *c;
	const tt_train_data *d;    /* train, val (and test) sets */
	tt_model *m;
	tt_optim_config *opt;      /* the run's optimizer, total_steps set; a
	                            * method that learns its hyperparameters
	                            * (EvoGrad) changes them here */
	long step;                 /* steps finished; from after_step on, this
	                            * step counts */
	long total;                /* the step the run ends at */
	long spe;                  /* steps per epoch */
	int epoch;                 /* epochs finished */
	int batch;                 /* examples in this step's batch, already in
	                            * tt_model_input / tt_model_labels */
	double loss;               /* this step's training loss, from after the
	                            * loss on (a replacing step sets it) */
	int right;                 /* and its correct predictions */
} tt_method_run;

/* tt_method.flags */
enum {
	/* Its checkpoint section changes the model's shape (a compacted
	 * network): a run without the method refuses such a blob, even for
	 * its weights only. */
	TT_METHOD_SHAPES_MODEL = 1u << 0,
};

typedef struct tt_method {
	/* Its name: the JSON field of its result and tt_method_report.method.
	 * Required. */
	const char *name;
	/* Its checkpoint section's tag (TT_CK_TAG, ckpt.h); 0: none. */
	uint32_t tag;
	unsigned flags;

	/* Whether configuration c uses this method.  Required. */
	int (*wants)(const tt_train_config *c);
	/* Before the model is built: what the method needs of it. */
	void (*model_config)(const tt_train_config *c, tt_model_config *mc);
	/* After the model is built: allocate the method's state into *state
	 * (freed by free, even when setup fails).  TT_OK or an error. */
	int (*setup)(const tt_method_run *run, void **state, tt_err *err);
	/* Free the state; NULL is fine. */
	void (*free)(void *state);

	/* Before the step's forward, its batch uploaded (run->step is the
	 * step's 0-based index).  May change the model (sample masks,
	 * compact); a non-zero return fails the run. */
	int (*before_step)(void *state, const tt_method_run *run, tt_err *err);
	/*
	 * The step itself instead of forward, loss, backward, after_backward
	 * and the optimizer: run->loss and run->right set, the parameters
	 * updated; run->batch set to the examples the loss and right are
	 * over when the step drew its own (the training loss and accuracy
	 * are per example).  A non-finite loss is divergence, as for the
	 * plain step.
	 * At most one method of a run may have it (partial hypernetworks:
	 * generate the weights, step, step the hypernetwork).
	 */
	int (*step)(void *state, tt_method_run *run, tt_err *err);
	/*
	 * The loss of the step's train forward instead of the plain
	 * cross-entropy: run->loss and run->right set (the number the
	 * curves show), the gradient that backward follows left in the model
	 * (tt_model_loss_ex: EvoGrad's Meta-Weight-Net weighs each example).
	 * At most one method of a run may have it, and not beside a step.
	 */
	int (*loss)(void *state, tt_method_run *run, tt_err *err);
	/*
	 * The evaluation of set (the run's validation or test set) instead
	 * of the plain one on the model's own weights: *loss and *acc set
	 * (continual learning: the mean over the tasks seen so far, each
	 * with its own weights).  At most one method of a run may have it.
	 */
	int (*evaluate)(void *state, const tt_method_run *run, const tt_dataset *set,
	                double *loss, double *acc, tt_err *err);
	/* After backward, before the optimizer: the gradients may change. */
	void (*after_backward)(void *state, const tt_method_run *run);
	/* After the optimizer (run->step counts this step): a meta-step, an
	 * update of the method's own variables, pruning. */
	void (*after_step)(void *state, const tt_method_run *run);
	/* At the end of an epoch (run->epoch counts it), before its
	 * evaluation; at the run's end run->step == run->total.  May compact
	 * the model. */
	int (*epoch_end)(void *state, const tt_method_run *run, tt_err *err);

	/* Bytes of its checkpoint section now (0: no section this time). */
	size_t (*ck_size)(void *state, const tt_method_run *run);
	/* Write that many bytes of section payload at p (unaligned). */
	void (*ck_write)(void *state, const tt_method_run *run, char *p);
	/*
	 * Resuming, before the core loads the parameters: the payload of the
	 * method's section (NULL, 0 when the blob has none), unaligned.
	 * weights_only: a new run from the blob's weights (see
	 * tt_train_config.resume_weights_only).  TT_EINPUT for a section that
	 * does not fit this run.
	 */
	int (*ck_read)(void *state, const tt_method_run *run, const char *p, size_t len,
	               int weights_only, tt_err *err);

	/* At the end (also when diverged): the method's part of r, after the
	 * loop filled the rest. */
	void (*result)(void *state, const tt_method_run *run, tt_train_result *r);
	/* Its result as the value of JSON field "name" (written after the
	 * name and colon). */
	void (*json)(const tt_train_result *r, FILE *f);
	/* Its result as named numbers for the runner (rungs columns of the
	 * same name) and any other reader: up to max into v, returns how many. */
	int (*values)(const tt_train_result *r, tt_method_value *v, int max);
	/* What it reports to tt_train_hooks.on_report, every report_every
	 * steps (final 0) and at the end (final 1): fills rep (pointers valid
	 * until the next call); 0 when there is nothing to report. */
	int (*report)(void *state, const tt_method_run *run, int final,
	              tt_method_report *rep);
} tt_method;

/* The methods (one file each). */
extern const tt_method tt_method_gates;
/*
 * A checkpoint's gates section (tag GATE, len bytes at p) read in place:
 * *t its ng probabilities (floats, maybe unaligned) and *present its ng
 * present bytes (0: the structure was compacted away).  1 when p is a
 * gates section of ng gates, of today's layout or format 2's; else 0.
 */
int tt_gates_ck_view(const char *p, size_t len, int ng, const char **t,
                     const unsigned char **present);
extern const tt_method tt_method_evograd;
extern const tt_method tt_method_continual;

#define TT_METHODS_MAX 8 /* tt_train_result.methods is a bit set of them */

/* The registered methods: the built-in ones, then any added with
 * tt_method_register.  i in 0..tt_method_count()-1. */
int tt_method_count(void);
const tt_method *tt_method_get(int i);
/* Add a method (tests: tests/test_method.c) before any run starts; not
 * thread-safe.  TT_EINPUT when full, without a name or wants, or when its
 * name or tag is taken. */
int tt_method_register(const tt_method *m, tt_err *err);

/* The value called name that one of r's methods reports; 0 when none
 * does (*v untouched). */
int tt_method_result_value(const tt_train_result *r, const char *name, double *v);

#endif
