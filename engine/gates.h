/*
 * gates.h — complexity-aware training (methods.md section 4): Bernoulli
 * gates on units and residual layers, the closed-form expected cost they
 * imply, its gradient, and the projected update of the probabilities.
 *
 * This module is pure arithmetic on host arrays; it knows nothing of
 * tensors.  The model describes its gates as groups and its cost as terms
 * (tt_model_gate_desc in model.h); this module turns probabilities into
 * expected MACs and parameters, dC/dt, and updates.
 *
 * Gates.  Gate i has probability t[i] in [0, 1].  Gates come in groups:
 * a layer gate is a group of one (the branch of a residual block); the
 * unit gates of one layer (the output channels of a conv, the outputs of
 * a dense layer) form one group.
 *
 * Cost terms.  Every multiply-accumulate and every parameter of the dense
 * network belongs to exactly one term, a product of at most three
 * factors, each either a layer gate's probability or the sum of a unit
 * group's probabilities:
 *
 *     E[term] = coef * t[layer] * S(a) * S(b)        S(g) = sum_{i in g} t[i]
 *
 * with an absent factor (-1) reading 1.  Gates are independent and a
 * term never repeats a group, so this is the exact expectation of the
 * cost of the sampled network: e.g. conv2 of block l is
 * tB_l * S(u1_l) * S(u2_l) * k*k*H*W MACs.  A term's coefficients are
 * per unit of the product: macs is multiply-accumulates per example of
 * one forward pass; params is parameter count.  Ungated parts (stem,
 * projection shortcuts, the head's own outputs) are terms with constant
 * factors only.  A pruned structure's probability is 0, so terms keep
 * counting against the dense network's totals after compaction.
 */
#ifndef TT_GATES_H
#define TT_GATES_H

#include <stddef.h>

#include "err.h"

enum tt_gate_kind { TT_GATE_LAYER, TT_GATE_UNIT };

typedef struct tt_gate_group {
	int kind;          /* enum tt_gate_kind */
	int stage;         /* the model stage it lives in */
	int first, count;  /* gates [first, first+count) of the gate vector */
	int offscore;      /* 1: a unit sampled off is scored too (tt_gate_update) */
	int branch;        /* a layer gate: the unit group whose scores sum to its
	                    * data term (its block's u2); -1: its own score */
} tt_gate_group;

typedef struct tt_gate_term {
	double macs, params; /* coefficients, per example / in parameters */
	int layer;           /* group index of a layer gate, -1: none */
	int a, b;            /* unit-group indices, -1: none; a != b */
} tt_gate_term;

/* The three user knobs and the update's constants; see methods.md. */
typedef struct tt_gate_config {
	double strength;   /* S >= 0: the run keeps 1/(1+S) of the cost; 0: gates off */
	double balance;    /* b: layer (1) versus unit (0) pruning, in [0, 1] */
	double flops_share;/* a: FLOPs (1) versus parameters (0), in [0, 1] */
	double lr;         /* eta_t, the step of a typical gate (tt_gate_update) */
	double lam_on, lam_off;  /* weight prior for a structure on / off */
	double prune_t;    /* prune when t <= prune_t ... */
	double prune_w;    /* ... and |W|^2/n <= prune_w * its initial value */
	int prune_every;   /* steps between pruning checks */
	int warmup_epochs; /* epochs with the gates fixed at 1 */
	int layer_hold_epochs; /* no layer gate is pruned before this epoch */
	/* The controller (tt_gate_target, tt_gate_schedule, tt_gate_dual). */
	double ramp;       /* share of the sampled phase the target falls over */
	double dual_rate;  /* the multiplier's step: log(lambda) += rate (C - c_k) */
	double lambda0;    /* the multiplier at the first sampled step */
	double polar_sum;  /* the repulsion from 1/2 summed over the settling:
	                    * a gate's distance from 1/2 grows by about
	                    * exp(polar_sum) where the data term is silent */
	/* Set by the caller every step, read by tt_gate_update. */
	double lambda;     /* the complexity term's multiplier */
	double polar;      /* the repulsion from 1/2 this step */
} tt_gate_config;

/* methods.md's defaults; lam_on is set from the run's weight decay by
 * the caller (lam_off = 10 lam_on). */
void tt_gate_defaults(tt_gate_config *c);

/*
 * Parse "STRENGTH[,BALANCE[,FLOPS_SHARE]]" (the --gates value) into c,
 * keeping c's other fields: TT_EINPUT naming the bad field and its range.
 */
int tt_gate_parse(const char *s, tt_gate_config *c, tt_err *err);

/* The cost model of one network. */
typedef struct tt_gate_cost {
	const tt_gate_group *group;
	int ngroups;
	const tt_gate_term *term;
	int nterms;
	int ngates;
	double macs_full, params_full; /* the dense network: every t = 1 */
} tt_gate_cost;

/* Sums the terms at t = 1 into macs_full and params_full. */
void tt_gate_cost_init(tt_gate_cost *c);

/* Expected MACs and parameters (absolute) at probabilities t. */
void tt_gate_expected(const tt_gate_cost *c, const float *t, double *macs,
                      double *params);

/*
 * C(t) = a E[MACs]/MACs_full + (1-a) E[Params]/Params_full, returned, and
 * dC/dt[i] for every gate into dcdt (may be NULL): exact, linear in the
 * number of gates plus terms.
 */
double tt_gate_complexity(const tt_gate_cost *c, const float *t, double a,
                          double *dcdt);

/*
 * The controller.  The strength S names a target: the run ends with an
 * expected cost C(t) of tt_gate_target(S) = 1 / (1 + S) of the dense
 * network's (S = 1 keeps half, S = 3 a quarter), whatever the model.  The
 * target falls from 1 to there along tt_gate_schedule's cubic over the
 * first `ramp` of the sampled phase, and the complexity term's multiplier
 * lambda follows it by dual ascent on its logarithm (tt_gate_dual): it
 * grows while C(t) is above the target and shrinks while below, within
 * [1e-4, 1e4].  A fixed multiplier (methods.md's gamma) lets every unit
 * of a layer cross over at nearly the same strength, so the cost fell off
 * a cliff between neighbouring strengths; a target cannot.
 */
double tt_gate_target(double strength);
/* c* + (1 - c*) (1 - p)^3, p clamped to [0, 1]: 1 at p = 0, c* from p = 1. */
double tt_gate_schedule(double cstar, double p);
/* lambda *= exp(rate * (cost - target)), kept within [1e-4, 1e4]. */
double tt_gate_dual(double lambda, double cost, double target, double rate);

/*
 * The projected update of every gate not pruned:
 *   G = w * score + (lam_on - lam_off) * wsq / 2
 *       + lambda * scale * dC/dt,   scale = 2b (layer) or 2(1-b) (unit)
 *   t' = t - lr * G / rms;  t' += polar * (t' - 1/2)
 *   t <- clip(t', 0, 1)
 * rms is the running root mean square of G over the gates of its kind
 * that move (rms2[0] for unit gates, rms2[1] for layer gates: squares,
 * exponential averages over steps with weight 0.01, kept by the caller
 * from 0 at the start); with rms2 NULL, rms = 1.  So lr is the step a
 * typical gate takes, whatever the size of the model or the scale of its
 * loss's slopes (raw slopes of a conv channel early in training are 100
 * times those of a wide dense layer's unit late in it), and a layer gate,
 * whose G sums a whole branch, moves no faster than a unit does.
 *
 * A layer gate with a branch group takes as its data term the sum of
 * that group's weighted scores (each unit's estimate of what switching
 * it off costs, both ends) over the probability the branch ran, clip(1/t,
 * 1, 20): switching the branch off switches every u2 channel off at once.
 * Its own score, F . d at 1, would be about 0 for the same reason a
 * unit's is, and a skipped branch has no slope at 0 to take.
 * The repulsion from 1/2 (polar, 0 until the target is reached, then
 * rising) drives every probability to 0 or 1 before the run ends, so the
 * end has nothing left to round.
 *
 * The data term estimates E[CE | on] - E[CE | off] from this step's
 * sample.  score is out_s . d_s, the loss's derivative along the gate at
 * the state it was sampled in: at 1 when on, at 0 when off.  In a group
 * with offscore (and with mask, this step's samples, given) both ends
 * count, w = clip(1/(2t), 1/2, 20) when on and clip(1/(2(1-t)), 1/2, 20)
 * when off, so the expectation is the mean of the two end derivatives,
 * the trapezoid rule for the difference.  The derivative at 1 alone is
 * about 0 for any unit once the weights downstream have adapted to it
 * (its outgoing weights are at a stationary point), so it cannot tell an
 * important unit from a useless one; the derivative at 0 can.  Elsewhere
 * (layer gates, whose branch is skipped when off, and mask NULL) a gate
 * sampled off scores 0 and w = clip(1/t, 1, 20), methods.md's estimator.
 * score[i] is out_s . d_s summed over the batch for a gate sampled on
 * (0 when sampled off); wsq[i] = |W_s|^2.  pruned[i] != 0 marks a gate
 * pruned for good (its t is 0 and stays 0); pruned may be NULL.  A gate
 * the projection puts at 0 is not pruned: it is sampled off until its G
 * turns negative or the pruning rule removes it.  With hold_layers the
 * layer gates do not move: during the layer hold a layer gate's
 * complexity gradient (its whole branch's share of the cost) would take
 * it to 0 within a few steps, and a gate at 0 is never sampled, never
 * scored and could not come back.  dcdt is scratch of ngates doubles: G
 * of every gate on return, NaN for those that did not move.
 */
void tt_gate_update(const tt_gate_cost *c, const tt_gate_config *cfg,
                    float *t, const float *score, const float *mask, const double *wsq,
                    const unsigned char *pruned, int hold_layers, double rms2[2],
                    double *dcdt);

#endif
