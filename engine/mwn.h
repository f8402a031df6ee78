/*
 * mwn.h — Meta-Weight-Net: a tiny network that maps an example's training
 * loss to its weight in the training loss (Shu et al. 2019), the
 * hyperparameter EvoGrad learns in the noisy-label experiment
 * (methods.md §3).
 *
 * v(c) = sigmoid(W2 . relu(W1 c + b1) + b2), one input, H hidden units,
 * one output.  A batch of per-example losses c_i is weighted by
 * w_i = v(c_i) / sum_j v(c_j) (plain v_i when the sum is 0), so the
 * weighted loss L(c; phi) = sum_i w_i c_i stays on the scale of a mean.
 * The losses are inputs, never differentiated through: the network learns
 * only through the hypergradient.
 *
 * Parameters phi are one host vector: W1[H], b1[H], W2[H], b2[1].
 */
#ifndef TT_MWN_H
#define TT_MWN_H

#include <stdint.h>

#define TT_MWN_HIDDEN 100

static inline int tt_mwn_nparams(int hidden) { return 3 * hidden + 1; }

/* PyTorch's default Linear initialisation, seeded: every weight and bias
 * uniform in +-1/sqrt(fan_in). */
void tt_mwn_init(float *phi, int hidden, uint64_t seed);

/* v(c): the network's raw output (the unnormalised weight) at loss c. */
double tt_mwn_out(const float *phi, int hidden, double c);

/* w[i] = the normalised weight of each of n losses c[i]; returns
 * L = sum_i w_i c_i. */
double tt_mwn_weights(const float *phi, int hidden, const float *c, int n, float *w);

/* L(c; phi) as above, and dL/dphi into grad (nparams doubles, overwritten). */
double tt_mwn_loss_grad(const float *phi, int hidden, const float *c, int n, double *grad);

#endif
