/*
 * evograd.h — the arithmetic of EvoGrad's hypergradient (methods.md §3).
 *
 * One meta-step perturbs the trainable weights theta into K copies
 * theta_k = theta + eps_k, weighs them by w = softmax(-l / tau) of their
 * training losses l_k(lambda), and takes the validation gradient g at
 * theta* = sum_k w_k theta_k.  Differentiating L_V(theta*) through the
 * weights w only gives
 *
 *   dL_V/dlam = -(1/tau) sum_k w_k (g . (eps_k - eps_bar)) dl_k/dlam,
 *   eps_bar   = sum_j w_j eps_j,
 *
 * and since g . (eps_k - eps_bar) = g.eps_k - sum_j w_j g.eps_j, only the
 * K dot products d_k = g . eps_k are needed: the noise itself is never
 * stored.  It is regenerated from a counter-based stream keyed by (seed,
 * step, k, coordinate), so a coordinate's noise is a pure function of
 * those four numbers, identical on every pass and after a resume.  The
 * loops run on the engine's OpenMP threads and give the same bits for
 * any number of them.
 *
 * This module is the training-free part: the noise, the softmax weights
 * and the estimator, on host doubles.  The method that runs the model on
 * the copies builds on it.
 */
#ifndef TT_EVOGRAD_H
#define TT_EVOGRAD_H

#include <stddef.h>
#include <stdint.h>

enum tt_evo_noise { TT_EVO_RADEMACHER = 0, TT_EVO_GAUSSIAN = 1 };

/* What a run learns with EvoGrad (method_evograd.c; `--evograd WHAT`). */
enum tt_evo_what {
	TT_EVO_OFF,     /* EvoGrad not used */
	TT_EVO_WD,      /* the weight decay, as log(wd): an L2 term, no backward */
	TT_EVO_MWN,     /* a Meta-Weight-Net's parameters (mwn.h) */
	TT_EVO_ROTATE   /* the training images' rotation angle, in degrees */
};

/* The hyperparameters' own optimizer.  NESTEROV is SGD with Nesterov
 * momentum 0.9 and, on a network's parameters (mwn), the run's weight
 * decay: the reference code's optimizer of the Meta-Weight-Net, at whose
 * 1e-3 the network does not move within ten epochs of Fashion-MNIST
 * (bench/evograd.py); ADAM, which scales the small hypergradient to its
 * rate, is the default. */
enum tt_evo_opt { TT_EVO_ADAM, TT_EVO_SGD, TT_EVO_NESTEROV };

/* A run's EvoGrad settings (tt_train_config.evograd; the options'
 * table, trainopt.c, gives the defaults and ranges). */
typedef struct tt_evo_config {
	int what;          /* enum tt_evo_what */
	int k;             /* perturbed copies, >= 2 */
	double sigma, tau; /* noise scale, softmax temperature */
	int noise;         /* enum tt_evo_noise */
	int every;         /* a meta-step after every N-th training step */
	int opt;           /* enum tt_evo_opt */
	double lr;         /* the hyperparameters' learning rate; 0: WHAT's own
	                    * (tt_evo_default_lr) */
} tt_evo_config;

/* The learning rate WHAT uses when none is given: 0.01 on log(wd), 0.5
 * degree for the angle (the reference notebook's Adam at 0.01 radian),
 * 0.0003 for the Meta-Weight-Net. */
double tt_evo_default_lr(int what);

/* The noise key of one copy: (seed, step, k). */
typedef struct tt_evo_key {
	uint64_t seed;
	uint64_t step;
	uint32_t k;
	int noise;            /* enum tt_evo_noise */
} tt_evo_key;

/* eps[i] = sigma * r(key, first + i) for i in [0, n): +-sigma
 * (Rademacher) or sigma * N(0, 1) (Gaussian).  Any split of a range
 * into calls gives the same values. */
void tt_evo_noise(const tt_evo_key *key, float sigma, size_t first, size_t n, float *eps);

/* theta_k[i] = theta[i] + eps[i], and the sum of theta_k[i]^2 in double
 * (the L2 hyperparameter's dl_k/dlam is half of it). */
double tt_evo_perturb(const tt_evo_key *key, float sigma, const float *theta,
                      size_t n, float *theta_k);

/* d = g . eps over n coordinates starting at first, in double. */
double tt_evo_dot(const tt_evo_key *key, float sigma, const float *g, size_t first,
                  size_t n);

/* dst[i] = theta[i] + sum_k w[k] eps_k[i] over [0, n), eps_k the noise
 * of keys[k] (K of them): theta* without storing a copy's noise. */
void tt_evo_combine(const tt_evo_key *keys, const double *w, int K, float sigma,
                    const float *theta, size_t n, float *dst);

/* w = softmax(-l / tau) over K losses, computed stably.  Returns 0, or -1
 * when a loss is not finite or tau <= 0 (w is then untouched). */
int tt_evo_weights(const double *l, int K, double tau, double *w);

/*
 * The hypergradient of nh hyperparameters: dldlam is (K, nh) row-major,
 * d[k] = g . eps_k.  out[h] = -(1/tau) sum_k w_k (d_k - sum_j w_j d_j)
 * dldlam[k][h].
 */
void tt_evo_hypergrad(int K, int nh, const double *w, const double *d,
                      const double *dldlam, double tau, double *out);

#endif
