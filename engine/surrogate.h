/*
 * surrogate.h — the deep-kernel surrogate of the FMS and DyHPO samplers
 * (methods.md §2, steps 3, 5 and 6): a feature network on (configuration,
 * budget, learning curve, weights) whose output is the input of a
 * Gaussian process (gp.h), all fitted together on the GP's negative log
 * marginal likelihood.
 *
 *   h   = LeakyReLU(BN(Linear([x ; j / B_max] -> hidden)))
 *   c   = maxpool over positions(Conv1d(1 -> conv, kernel 3)(curve[1..j-1]))
 *         (the curve zero-padded to length >= 3)
 *   g   = GMN(weight graph) (gmn.h), or Linear(flattened weights -> 32),
 *         or nothing (DyHPO)
 *   phi = LeakyReLU(Linear([h ; c ; g] -> feat))
 *
 * LeakyReLU's slope is 0.01.  BN normalises over the observations of the
 * fit (full batch); a prediction uses the statistics of the last fit.
 * Everything is in double.  Parameters and the GP's four hyperparameters
 * are one vector moved by Adam; a fit whose kernel cannot be factored
 * restarts from a fresh initialisation (up to three times).
 */
#ifndef TT_SURROGATE_H
#define TT_SURROGATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gmn.h"
#include "gp.h"

enum tt_surr_weights { TT_SURR_NONE = 0, TT_SURR_GMN = 1, TT_SURR_FLAT = 2 };

typedef struct tt_surr_config {
	int d;                   /* configuration coordinates */
	int bmax;                /* the largest budget, in epochs */
	int hidden;              /* 64 */
	int conv;                /* 4: curve channels; 0 leaves the curve out */
	int feat;                /* 128 */
	int weights;             /* enum tt_surr_weights */
	tt_gmn_config gmn;       /* with TT_SURR_GMN; its out is g's width */
	int flat_len;            /* with TT_SURR_FLAT: weights kept (padded or cut) */
	int flat_out;            /* with TT_SURR_FLAT: g's width (32) */
	double lr;               /* Adam, 1e-3 */
	uint64_t seed;
} tt_surr_config;

/* Fills the paper's sizes (methods.md §2 defaults) for d coordinates and
 * budgets up to bmax, without weights. */
void tt_surr_defaults(tt_surr_config *c, int d, int bmax);

/* One (configuration, budget) point: an observation (y set) or a
 * candidate. */
typedef struct tt_surr_point {
	const double *x;         /* d coordinates in [0, 1] */
	int budget;              /* j, 1..bmax */
	const double *curve;     /* the values at budgets 1..j-1 (ncurve) */
	int ncurve;
	const tt_graph *graph;   /* TT_SURR_GMN */
	const float *flat;       /* TT_SURR_FLAT */
	size_t nflat;
	double y;                /* observations only */
} tt_surr_point;

typedef struct tt_surr tt_surr;

int tt_surr_new(const tt_surr_config *c, tt_surr **out, tt_err *err);
void tt_surr_free(tt_surr *s);

/*
 * Fit on n observations for `steps` Adam steps, from a fresh
 * initialisation (fresh != 0) or from where the last fit ended (a warm
 * start).  *nll (may be NULL) gets the final NLL.  TT_ERUNTIME when the
 * kernel could not be factored after the restarts, or out of memory.
 */
int tt_surr_fit(tt_surr *s, const tt_surr_point *obs, int n, int steps, int fresh,
                double *nll, tt_err *err);

/* Posterior mean and standard deviation at q candidates, after a fit. */
int tt_surr_predict(tt_surr *s, const tt_surr_point *cand, int q, double *mu,
                    double *sd, tt_err *err);

/* The NLL at the current parameters on n observations (standardised as by
 * the last fit) and its gradient in every parameter (tt_surr_params'
 * length): what each Adam step of a fit uses, for tests. */
int tt_surr_gradient(tt_surr *s, const tt_surr_point *obs, int n, double *nll,
                     double *grad, tt_err *err);

/* The parameter vector and its length, the GP's hyperparameters last
 * (log_s, log_l, log_sn, mean): for checkpoints and tests. */
double *tt_surr_params(tt_surr *s, size_t *n);

#endif
