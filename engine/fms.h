/*
 * fms.h — the freeze-thaw decision of the FMS and DyHPO samplers
 * (methods.md §2, steps 1, 2, 7 and 8): which configuration trains one
 * more epoch next.
 *
 * The caller keeps the table of configurations (seen or not) with their
 * learning curves, and answers for the weights of any of them after a
 * number of epochs (0: the starting weights, pretrained or initial).
 * Each decision:
 *   1. initial design: while fewer than init configurations have a
 *      result, the next unseen one in the caller's order (which the caller
 *      shuffles, seeded);
 *   2. observations: every (configuration i, epoch j <= b_i) with the
 *      curve before j and the weights after j-1 epochs, valued curve[j-1];
 *   3. candidates: every configuration with b_i < bmax at j = b_i + 1,
 *      with its weights after b_i epochs: an unseen one at j = 1 with its
 *      starting weights, never later ones;
 *   4. fit the surrogate (from scratch for the first fresh_iters decisions,
 *      then warm-started), predict every candidate;
 *   5. expected improvement over y*_j, the best value observed at budget
 *      j (or, when none, the best at a lower budget); the largest wins,
 *      ties to the lower index.
 * Larger values are better.  A decision is a pure function of the table,
 * the answers about weights and the decisions before it (through the
 * warm start), so a study that replays its decisions in order resumes
 * exactly.
 */
#ifndef TT_FMS_H
#define TT_FMS_H

#include "err.h"
#include "surrogate.h"

typedef struct tt_fms_config {
	tt_surr_config surr;     /* weights: TT_SURR_GMN (fms), TT_SURR_FLAT
	                          * (fms-flat) or TT_SURR_NONE (dyhpo) */
	int init;                /* 20 */
	int steps_first;         /* 1000 */
	int steps_warm;          /* 50 */
	int fresh_iters;         /* 10 */
} tt_fms_config;

/* methods.md's defaults for d coordinates and bmax epochs, without
 * weights. */
void tt_fms_defaults(tt_fms_config *c, int d, int bmax);

typedef struct tt_fms_conf {
	const double *x;         /* d coordinates */
	int budget;              /* epochs trained so far, 0..bmax */
	const double *curve;     /* values after epochs 1..budget */
} tt_fms_conf;

/* The weights of configuration i after e epochs: a graph (TT_SURR_GMN) or
 * a flat vector (TT_SURR_FLAT); NULL when the caller has none (the
 * nearest earlier epoch it has is asked for next). */
typedef struct tt_fms_weights {
	void *ud;
	const tt_graph *(*graph)(void *ud, int i, int e);
	const float *(*flat)(void *ud, int i, int e, size_t *n);
} tt_fms_weights;

typedef struct tt_fms_choice {
	int index;               /* the configuration to train one more epoch */
	int budget;              /* the epoch it reaches: budget + 1 */
	int random;              /* 1: from the initial design */
	/* for every candidate (ncand of them, in table order): index,
	 * budget, mu, sd, ei; valid until the next decision */
	int ncand;
	const int *cand_index, *cand_budget;
	const double *mu, *sd, *ei;
	const double *final_mu, *final_sd; /* each candidate forecast at bmax
	                          * (its curve and weights as they are) */
	double nll;              /* the fit's */
} tt_fms_choice;

typedef struct tt_fms tt_fms;

int tt_fms_new(const tt_fms_config *c, tt_fms **out, tt_err *err);
void tt_fms_free(tt_fms *f);
/* TT_EINPUT when every configuration is at bmax (nothing to decide). */
int tt_fms_decide(tt_fms *f, const tt_fms_conf *t, int n, const tt_fms_weights *w,
                  tt_fms_choice *out, tt_err *err);

#endif
