/*
 * gp.h — a Gaussian process on learned features, in double precision: the
 * surrogate of the FMS and DyHPO samplers (methods.md §2, steps 5-7).
 *
 *   k(a, b) = s^2 exp(-|a - b|^2 / (2 l^2)),  constant mean m,
 *   Gaussian noise sn^2 on the observations.
 *
 * The hyperparameters are kept as (log s, log l, log sn, m) so that an
 * unconstrained optimiser (Adam, as the paper fits them) can move them.
 * The negative log marginal likelihood
 *
 *   NLL = 0.5 (y - m)' K^-1 (y - m) + 0.5 log|K| + (n/2) log 2 pi,
 *   K   = k(Phi, Phi) + (sn^2 + jitter) I,
 *
 * comes with its gradient in the four hyperparameters and in every
 * feature vector, so the feature network that produced Phi is trained by
 * backpropagating dNLL/dPhi.  Cholesky factorisation; when it fails the
 * jitter grows tenfold from 1e-8 of the mean diagonal, up to 1e-2 of it,
 * before giving up.
 */
#ifndef TT_GP_H
#define TT_GP_H

#include "err.h"

typedef struct tt_gp_hyper {
	double log_s, log_l, log_sn, mean;
} tt_gp_hyper;

typedef struct tt_gp {
	int n, f;                /* observations, feature width */
	tt_gp_hyper h;
	double *phi;             /* (n, f), a copy */
	double *L;               /* (n, n) lower Cholesky factor of K */
	double *alpha;           /* K^-1 (y - m) */
	double jitter;           /* what the factorisation needed */
	double nll;
} tt_gp;

/*
 * Fit g to n observations y with features phi (n, f) under hyperparameters
 * h: factor K and solve.  TT_ERUNTIME when K cannot be factored even with
 * the largest jitter (g is then empty) or out of memory.  Gradients
 * (either may be NULL): dh of the NLL in (log_s, log_l, log_sn, mean),
 * dphi (n, f).  Frees what g held before.
 */
int tt_gp_fit(tt_gp *g, const double *phi, const double *y, int n, int f,
              const tt_gp_hyper *h, tt_gp_hyper *dh, double *dphi, tt_err *err);

/* Posterior mean and standard deviation (of the latent function, without
 * the observation noise) at q points x (q, f). */
void tt_gp_predict(const tt_gp *g, const double *x, int q, double *mu, double *sd);

/* Expected improvement over best (larger is better): with u = (mu -
 * best) / sd, (mu - best) Phi(u) + sd phi(u); max(mu - best, 0) at sd 0. */
double tt_gp_ei(double mu, double sd, double best);

void tt_gp_free(tt_gp *g);

#endif
