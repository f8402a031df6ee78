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
} tt_gate_group;

typedef struct tt_gate_term {
	double macs, params; /* coefficients, per example / in parameters */
	int layer;           /* group index of a layer gate, -1: none */
	int a, b;            /* unit-group indices, -1: none; a != b */
} tt_gate_term;

/* The three user knobs and the update's constants; see methods.md. */
typedef struct tt_gate_config {
	double strength;   /* gamma, overall pruning strength, >= 0; 0: gates off */
	double balance;    /* b: layer (1) versus unit (0) pruning, in [0, 1] */
	double flops_share;/* a: FLOPs (1) versus parameters (0), in [0, 1] */
	double lr;         /* eta_t, the probabilities' learning rate */
	double lam_on, lam_off;  /* weight prior for a structure on / off */
	double prune_t;    /* prune when t <= prune_t ... */
	double prune_w;    /* ... and |W|^2/n <= prune_w * its initial value */
	int prune_every;   /* steps between pruning checks */
	int warmup_epochs; /* epochs with the gates fixed at 1 */
	int layer_hold_epochs; /* no layer gate is pruned before this epoch */
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
 * The projected update of every gate not pruned:
 *   G = clip(1/t, 1, 20) * score + (lam_on - lam_off) * wsq / 2
 *       + strength * scale * dC/dt,   scale = 2b (layer) or 2(1-b) (unit)
 *   t <- clip(t - lr * G, 0, 1)
 * score[i] is out_s . d_s summed over the batch for a gate sampled on
 * (0 when sampled off); wsq[i] = |W_s|^2.  pruned[i] != 0 marks a gate
 * pruned for good (its t is 0 and stays 0); pruned may be NULL.  A gate
 * the projection puts at 0 is not pruned: it is sampled off until its G
 * turns negative or the pruning rule removes it.  With hold_layers the
 * layer gates do not move: during the layer hold a layer gate's
 * complexity gradient (its whole branch's share of the cost) would take
 * it to 0 within a few steps, and a gate at 0 is never sampled, never
 * scored and could not come back.  dcdt is scratch of ngates doubles.
 */
void tt_gate_update(const tt_gate_cost *c, const tt_gate_config *cfg,
                    float *t, const float *score, const double *wsq,
                    const unsigned char *pruned, int hold_layers, double *dcdt);

#endif
