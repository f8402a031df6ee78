/*
 * tpe.h — the Tree-structured Parzen Estimator (Bergstra et al. 2011), as
 * Optuna's default sampler runs it, on the unit cube of a study's space,
 * with BOHB's choice of which fidelity to model.
 *
 * Each proposal is a pure function of the observations so far and of a
 * random stream: a study resumed from its database re-tells the stored
 * results in their order and proposes what the uninterrupted study would.
 *
 * The model.  Coordinates are the sampler's u in [0, 1): a log-scaled
 * parameter is already uniform in its log there, so modelling u is
 * modelling the log, as Optuna does for log parameters.  Every dimension
 * is modelled on its own (Optuna's default, multivariate = false):
 *
 *   1. Fidelity (BOHB): the observations of the highest rung that has at
 *      least min_obs of them; below that everywhere, the proposal is
 *      uniform random (the start-up phase).
 *   2. Split by gamma(n) = min(ceil(gamma * n), 25): that many best
 *      results are "good" (l), the rest "bad" (g).  Ties keep the earlier
 *      observation first.
 *   3. Per continuous dimension, a Parzen estimator: a mixture of Gaussians
 *      truncated to [0, 1], one per observation (mean at its u) plus a
 *      prior component (mean 0.5, sd 1), equal weights.  A component's
 *      bandwidth is the larger of the gaps to its sorted neighbours (the
 *      interval's ends count as neighbours), clipped to
 *      [1 / min(100, m + 1), 1] for m components (Optuna's "magic clip").
 *      A categorical dimension of k choices is a weighted count: each
 *      observation adds 1 to its choice and the prior 1/k to every
 *      choice, so the prior is worth one observation.
 *   4. Draw n_candidates points from l, keep the one with the largest
 *      sum over dimensions of log l(u) - log g(u).
 *
 * Differences from Optuna: no weight ramp for old observations (Optuna's
 * default weights are flat up to 25 and ramp after; here always flat), a
 * fixed prior weight of 1, and a categorical choice returned as its bin's
 * centre (c + 0.5) / k of the unit interval.
 */
#ifndef TT_TPE_H
#define TT_TPE_H

#include "rng.h"

typedef struct tt_tpe_config {
	double gamma;        /* share of good results; 0.1 like Optuna's */
	int min_obs;         /* observations a rung needs to be modelled;
	                      * <= 0: 10 (Optuna's n_startup_trials) */
	int n_candidates;    /* 24 like Optuna's n_ei_candidates */
} tt_tpe_config;

void tt_tpe_defaults(tt_tpe_config *c);

/*
 * Propose u_out[0..d) from n observations: point i is U[i*d .. i*d+d),
 * its result y[i] (larger is better; NaN means failed: it counts as the
 * worst) at rung[i].  ncat[j] is 0 for a continuous dimension, else its
 * number of choices (may be NULL: all continuous).  Draws from r.
 * Returns the rung modelled, or -1 when the proposal was uniform random.
 */
int tt_tpe_propose(const tt_tpe_config *c, int d, const int *ncat, const double *U,
                   const double *y, const int *rung, int n, tt_rng *r, double *u_out);

#endif
