/*
 * model.h — networks as ordered lists of stages, on one flat buffer.
 *
 * A model is built from a spec string:
 *   mlp:W1,W2,...        one dense+ReLU stage per width, then a dense head
 *   cnn:C1,C2,...        stem conv3x3(C1)+BN+ReLU; per width a block
 *                        conv3x3+BN+ReLU+maxpool2; head GAP+dense
 *   resnet:B1,B2,..[:wW] stem conv3x3(W)+BN+ReLU; Bi basic blocks of width
 *                        W*2^(i-1), the first of every group after the first
 *                        with stride 2; head GAP+dense.  W defaults to 16.
 *
 * Stages: mlp has one per dense layer plus the head; cnn the stem, one per
 * block and the head; resnet the stem, one per basic block (its shortcut
 * inside it) and the head.  So resnet:2,2,2 has 8 stages, mlp:512,512,512
 * has 4.  The mlp flattens its input in (h, w, c) order.  A cnn with more
 * pooling blocks than the input size allows is TT_EINPUT.  trainable <= 0
 * or >= the stage count trains everything.
 *
 * Stages are the unit of freezing: with trainable = z only the last z
 * stages learn.  The frozen prefix runs forward through a pool of buffers
 * that backward later uses for activation gradients, keeps no activation
 * (but its output, the first trainable stage's input, which that stage's
 * weight gradients need), owns no gradient and no optimizer state, and
 * backward stops at its boundary: the first trainable stage computes no
 * input gradient.  These are allocations that never happen and work that
 * is never done.  (tt_model_config.input_grad asks for the gradient of
 * the data itself, which needs every stage trained.)
 *
 * Parameters of all stages live in one flat device buffer, stage after
 * stage, each layer's tensors in this order:
 *   dense:  W (out, in) row-major, then b (out)
 *   conv:   W (K, kh, kw, C) (PyTorch's weight.permute(0,2,3,1)); no bias
 *   BN:     gamma (C), then beta (C)
 *   basic block: conv1, bn1, conv2, bn2, then (if the shape changes) the
 *   1x1 projection conv and its BN.
 * A compacted gated model (tt_model_gate_compact) keeps this layout at the
 * widths left: fewer rows and columns, a pruned branch's four tensors
 * gone.
 * Because frozen stages come first, the trainable parameters are one
 * suffix params[trainable_offset ..); gradients and optimizer state cover
 * exactly that suffix.  Batch-norm running statistics (mean then var per
 * BN, in parameter order) live in a second buffer, the state buffer.
 */
#ifndef TT_MODEL_H
#define TT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "err.h"
#include "gates.h"
#include "mem.h"
#include "rng.h"

typedef struct tt_model tt_model;

#define TT_STAGE_NAME_MAX_LEN 32 /* bytes of a stage name, NUL included */

/* How a frozen stage's batch norms normalise in a training forward. */
enum tt_frozen_bn {
	TT_FROZEN_BN_BATCH, /* batch statistics, running averages updated, as
	                     * a trained stage's (methods.md section 1) */
	TT_FROZEN_BN_FIXED  /* running statistics, as in evaluation: the
	                     * prefix maps each example on its own, so its
	                     * output can be cached (tt_model_calibrate sets
	                     * the statistics of a fresh model) */
};

typedef struct tt_model_config {
	const char *spec;
	int h, w, c;            /* input shape; 28, 28, 1 for Fashion-MNIST */
	int classes;
	int batch;              /* the largest batch a forward will see */
	int trainable;          /* z: train the last z stages; <= 0 means all */
	int optim_slots;        /* optimizer state per parameter: 0, 1 or 2 */
	uint64_t seed;          /* initialisation */
	const tt_backend *be;
	int gates;              /* 1: Bernoulli gates on the trainable stages */
	int input_grad;         /* 1: backward also computes d loss / d input
	                         * (tt_model_input_grad); needs every stage
	                         * trained, else TT_EINPUT */
	int frozen_bn;          /* enum tt_frozen_bn */
} tt_model_config;

typedef struct tt_stage_mem {
	const char *name;
	int frozen;
	size_t params, grads, optim, activations;
} tt_stage_mem;

/* Parse spec only: TT_EINPUT with a message naming the bad token and the
 * expected form.  *nstages gets the stage count (may be NULL). */
int tt_model_spec_check(const char *spec, int *nstages, tt_err *err);

int tt_model_create(const tt_model_config *cfg, tt_model **out, tt_err *err);
void tt_model_free(tt_model *m);

/*
 * What tt_model_create would build from cfg, by arithmetic alone: no
 * network, no device memory (cfg->be sizes the convolution workspace and
 * is not called otherwise; NULL means the cpu backend's).  The numbers
 * are those of the built model's own accounting, byte for byte, because
 * building books its buffers through the same code: bytes[s][kind] is
 * tt_model_mem(m)->bytes[s][kind] right after tt_model_create (row
 * TT_MEM_MAX_STAGES the model's own, workspace included), stage[s] is
 * tt_model_stage_mem (its name points into this struct's name[s]), and
 * macs and train_macs are tt_model_macs and tt_model_train_macs at
 * cfg->trainable.  A gated cfg describes the fresh (uncompacted) model.
 * Errors are tt_model_create's: TT_EINPUT for a bad spec or shape.
 */
typedef struct tt_model_desc {
	int stages;
	int trainable;               /* z as the model resolves it, 1..stages */
	size_t nparams, nstate, trainable_offset;
	double macs, train_macs;     /* per example */
	int gates;                   /* tt_model_gates */
	char name[TT_MEM_MAX_STAGES][TT_STAGE_NAME_MAX_LEN];
	tt_stage_mem stage[TT_MEM_MAX_STAGES];
	size_t bytes[TT_MEM_MAX_STAGES + 1][TT_MEM_KINDS];
	size_t total;                /* every byte booked: tt_mem current */
} tt_model_desc;

int tt_model_describe(const tt_model_config *cfg, tt_model_desc *out, tt_err *err);

int tt_model_stages(const tt_model *m);
int tt_model_trainable(const tt_model *m);            /* z, 1..stages */
const char *tt_model_stage_name(const tt_model *m, int s);
const tt_backend *tt_model_backend(const tt_model *m);

size_t tt_model_nparams(const tt_model *m);
size_t tt_model_trainable_offset(const tt_model *m);
size_t tt_model_ntrainable(const tt_model *m);         /* nparams - offset */
/* [offset, offset+count) of stage s in the parameter vector. */
void tt_model_stage_params(const tt_model *m, int s, size_t *offset,
                           size_t *count);
float *tt_model_params(tt_model *m);                   /* device, nparams */
float *tt_model_grads(tt_model *m);                    /* device, ntrainable */
float *tt_model_optim(tt_model *m, int slot);          /* device, ntrainable */
float *tt_model_state(tt_model *m);                    /* device, nstate */
size_t tt_model_nstate(const tt_model *m);
/* Device buffers for one batch of inputs (batch*h*w*c floats) and labels
 * (batch ints), booked as workspace, for callers that have none. */
float *tt_model_input(tt_model *m);
int *tt_model_labels(tt_model *m);

/* Multiply-accumulates of one example's forward pass through all stages. */
double tt_model_macs(const tt_model *m);
/* ... and of one training step per example (forward everywhere, backward
 * through the trainable stages only, the first stage's input gradient
 * only with input_grad: what the engine really computes). */
double tt_model_train_macs(const tt_model *m);

/*
 * Forward n <= batch examples x (device, (n, h, w, c)).  train != 0 uses
 * batch statistics in every batch norm (frozen ones too, updating their
 * running averages) and keeps what backward needs; train == 0 uses the
 * running statistics.  Returns the logits (device, (n, classes)), valid
 * until the next forward.
 */
const float *tt_model_forward(tt_model *m, const float *x, int n, int train);

/* Mean softmax cross-entropy of the last forward against labels (device
 * ints).  With want_grad, also leaves d(loss)/d(logits) for backward.
 * *correct (may be NULL) gets the number of correct argmaxes. */
double tt_model_loss(tt_model *m, const int *labels, int n, float smoothing,
                     int want_grad, int *correct);
/* The loss of the last forward with per-example weights: returns
 * sum_i wt[i] * loss_i, where loss_i is example i's softmax
 * cross-entropy (label smoothing as tt_model_loss) and wt (host, n
 * floats) NULL means 1/n each (so it equals tt_model_loss).  With
 * want_grad the loss gradient left for backward is that of this
 * weighted sum.  per_ex (host, n floats, may be NULL) gets every
 * loss_i; *correct (may be NULL) the correct argmaxes.  The weights and
 * losses cross through two device buffers of batch floats, booked as
 * workspace (Meta-Weight-Net in EvoGrad weights the training loss). */
double tt_model_loss_ex(tt_model *m, const int *labels, int n, float smoothing,
                        const float *wt, int want_grad, float *per_ex, int *correct);

/* Backward through the trainable stages after a train forward and a loss
 * with want_grad; overwrites the gradient buffer. */
void tt_model_backward(tt_model *m);

/*
 * With tt_model_config.input_grad, backward (tt_model_backward or
 * tt_model_backward_into) also takes the loss gradient through the first
 * stage to its input: d loss / d x of the last forward's batch (device,
 * (n, h, w, c) floats, n that forward's), for EvoGrad's learned input
 * transformation.  It lives in the buffer pool (sized for it), valid
 * until the next forward of any kind.  NULL when input_grad is 0 (and
 * then the first stage's input gradient is neither computed nor given
 * room: no byte and no MAC more than before), or when no backward has
 * followed the last forward.
 */
const float *tt_model_input_grad(const tt_model *m);

/*
 * Weights by pointer: forward and backward on parameters that are not the
 * model's own buffer, gradients written where the caller says, and no
 * copy into the live buffers (EvoGrad's perturbed copies, a
 * hypernetwork's generated weights).  tt_model_forward and
 * tt_model_backward are these with w = NULL and grads = NULL.
 *
 * Foreign buffers are device memory in the model's layout (model.h's top
 * comment, tt_model_stage_params): params is a whole vector of nparams
 * floats, suffix only the trainable stages', ntrainable floats, element
 * i being parameter trainable_offset + i.  Stage s of the frozen prefix
 * reads params, a trainable stage reads suffix when it is given.  A
 * NULL member means the model's own buffer.  The model only reads them,
 * and keeps the pointers until the next forward: they must stay valid
 * and unchanged through the backward that follows.
 *
 * Batch-norm running statistics always belong to the model (its state
 * buffer): an evaluation forward on foreign weights normalises with the
 * model's running statistics, and a train forward updates them as
 * tt_model_forward does, unless keep_stats, with which it leaves them
 * as they are (batch statistics still normalise, and backward is the
 * same): the K forwards of perturbed copies should not move the model's
 * statistics K times.
 *
 * Gates keep working: a gated model runs its masks over foreign weights,
 * and the gate scores of tt_model_backward_into are those of the weights
 * the forward ran on.  tt_model_gate_wsq, tt_model_gate_decay and
 * compaction work on the model's own params and grads only, and a
 * compaction changes the layout, so foreign buffers of the old layout
 * are no use afterwards.
 *
 * The two users in view.  EvoGrad: a train forward and backward on the
 * model's own weights (the base step), then per copy k the suffix
 * theta + eps_k in a buffer of ntrainable floats and
 * tt_model_forward_suffix with keep_stats, then tt_model_forward_on the
 * validation batch with suffix theta* and tt_model_backward_into a
 * caller buffer.  A partial hypernetwork (the generated stages the
 * trainable suffix, the front frozen): it writes each generated tensor
 * at (its offset - trainable_offset) of a suffix buffer, forwards with
 * w.suffix, and reads d loss / d (generated weights) back from the
 * buffer given to tt_model_backward_into.  Where the front trains too
 * (the first experience), the caller passes a whole params vector and
 * splits the gradient at the generated stages' offset.
 */
typedef struct tt_model_weights {
	const float *params;  /* device, nparams floats; NULL: the model's own */
	const float *suffix;  /* device, ntrainable floats, read instead of
	                       * params + trainable_offset; NULL: from params */
	int keep_stats;       /* 1: a train forward leaves the running statistics */
} tt_model_weights;

/* tt_model_forward on the weights w names (NULL: the model's own). */
const float *tt_model_forward_on(tt_model *m, const tt_model_weights *w,
                                 const float *x, int n, int train);
/*
 * Run only the trainable stages again, on the same batch, in the same
 * mode (train or not) as the last forward, from the frozen prefix's
 * output that forward left; the trainable stages' weights from w (its
 * params is not read for the prefix, which does not run).  So EvoGrad
 * computes the prefix once per batch and forwards K perturbed suffixes
 * with one call each.  The prefix's output stays valid through
 * backwards and suffix forwards, until the next tt_model_forward or
 * tt_model_forward_on (which computes a new one), a compaction, or
 * (with no frozen prefix) a change to the last forward's x, which the
 * first stage reads again.  A backward after it differentiates it.
 */
const float *tt_model_forward_suffix(tt_model *m, const tt_model_weights *w);
/* tt_model_backward writing the gradients of the trainable suffix to
 * grads (device, ntrainable floats, overwritten; NULL: the model's own
 * gradient buffer, which is otherwise untouched).  The weights are the
 * last forward's. */
void tt_model_backward_into(tt_model *m, float *grads);

/*
 * The tensors of stage s in the parameter vector, in layout order (the
 * top comment): a hypernetwork needs to know what it generates.  Up to
 * max into t; returns how many the stage has.
 */
enum tt_tensor_kind {
	TT_TENSOR_CONV,      /* W (out, kh, kw, C): out filters of fan floats */
	TT_TENSOR_BN_GAMMA,  /* out floats */
	TT_TENSOR_BN_BETA,   /* out floats */
	TT_TENSOR_DENSE_W,   /* W (out, fan) row-major */
	TT_TENSOR_DENSE_B    /* out floats */
};
typedef struct tt_model_tensor {
	int kind;            /* enum tt_tensor_kind */
	size_t off;          /* in the parameter vector */
	int out, fan;        /* rows and their length (fan 1 for vectors) */
} tt_model_tensor;
int tt_model_tensors(const tt_model *m, int s, tt_model_tensor *t, int max);

/*
 * Latent replay (continual learning's LR-k): the frozen prefix's output of
 * the last forward, (batch, per_example) floats on the device, writable;
 * NULL without a frozen prefix.  A caller puts stored features in rows
 * n.. of it and runs the trainable stages on more rows than the forward
 * had with tt_model_forward_suffix_n; a backward after it covers them all.
 */
float *tt_model_boundary(tt_model *m, size_t *per_example);
const float *tt_model_forward_suffix_n(tt_model *m, const tt_model_weights *w, int n);

/*
 * The frozen prefix as a cacheable function (the feature cache, fcache.h).
 *
 * tt_model_prefix_pure: 1 when the model has a frozen prefix whose output
 * for an example depends on that example alone: its batch norms are
 * fixed (TT_FROZEN_BN_FIXED) or it has none.  tt_model_prefix_macs: the
 * prefix's forward multiply-accumulates per example (what a cached
 * example saves).  tt_model_prefix_nstate: the state floats (running
 * statistics) that the prefix's norms own, a prefix of the state buffer.
 *
 * tt_model_calibrate: the t-th (from 0) of a series of forwards through
 * the prefix alone on x (device, n <= batch examples) that set its batch
 * norms' running statistics to the mean of the series' batch statistics
 * (momentum 1 / (t + 1)), as a fixed prefix of a fresh model needs
 * before its first forward.  Leaves nothing for a backward.
 *
 * tt_model_forward_boundary: a forward of n examples whose prefix output
 * the caller already put in the boundary buffer (tt_model_boundary):
 * only the trainable stages run; a backward may follow, as after
 * tt_model_forward.
 */
int tt_model_prefix_pure(const tt_model *m);
double tt_model_prefix_macs(const tt_model *m);
size_t tt_model_prefix_nstate(const tt_model *m);
void tt_model_calibrate(tt_model *m, const float *x, int n, int t);
const float *tt_model_forward_boundary(tt_model *m, int n, int train);
/* The prefix alone, in evaluation mode, on x (device, n <= batch): its
 * output in the boundary buffer; nothing for a backward. */
void tt_model_forward_prefix(tt_model *m, const float *x, int n);

const tt_mem *tt_model_mem(const tt_model *m);
/* Device memory that a training method of the run needs beside the model
 * (EvoGrad's weight copy), zeroed, booked in the model's accounting to
 * the model as a whole under kind (TT_MEM_METHOD), so the result's
 * memory, its peak and the memory pane include it; NULL when out of
 * memory (or bytes 0).  Give it back with tt_model_mem_free, or leave it
 * to tt_model_free. */
void *tt_model_mem_alloc(tt_model *m, int kind, size_t bytes);
void tt_model_mem_free(tt_model *m, void *p);
void tt_model_stage_mem(const tt_model *m, int s, tt_stage_mem *out);

/*
 * Gates (methods.md section 4), with tt_model_config.gates = 1.  Without
 * it the model has no gate and every function below is a no-op or
 * returns 0: the network, its buffers and its arithmetic are exactly
 * those of a model built before gates existed.
 *
 * Where the gates are.  Only trainable stages carry gates:
 *   resnet block   a layer gate v on the branch, y = relu(skip(x) + v F(x)),
 *                  unit gates u1 on conv1's channels (after BN1+ReLU) and
 *                  u2 on conv2's channels (after BN2, before the add)
 *   mlp fc stage   unit gates on its outputs (after the ReLU); not the head
 *   cnn conv stage unit gates on its channels (after BN+ReLU); not the stem
 * The gate vector is stage by stage; within a block v, then u1, then u2.
 * Its groups and cost terms (tt_model_gate_desc) always describe the
 * dense network the model was created as, so fractions of cost stay
 * relative to it after compaction; a gate keeps its index for life.
 * Gate ids for the masks table: (stage, unit), unit numbering the unit
 * gates of the stage from 0 (a block's u1 first, then its u2), -1 the
 * layer gate.
 *
 * Probabilities t and the masks are host floats.  A train forward uses
 * the mask (unit gates multiply their channel by it, any value >= 0; a
 * layer gate at 0 skips its branch, forward and backward, and any other
 * value runs it); an evaluation forward uses on = (t >= 0.5), pruned or
 * compacted gates off.
 *
 * What a step costs.  A unit group whose masks are all 1 costs nothing;
 * a mask on a conv's channels rides on its batch norm's scale and shift
 * (no pass over the activations).  A branch whose layer gate is 0 runs
 * nothing, and behind an identity shortcut the block is the identity
 * (its output is its input, no copy).  A compacted model runs at the
 * widths left: a narrowed conv2 adds its channels onto the stream's, a
 * pruned branch is gone.  After tt_model_gate_all_on the step computes
 * no score, so the warm-up's and the fine-tuning's steps are, but for
 * that bookkeeping, the ungated model's.
 */
int tt_model_gates(const tt_model *m);                 /* gate count; 0: none */
/* The cost model: groups and terms (the model's own arrays, valid while it
 * lives), ngates, and macs_full/params_full summed by tt_gate_cost_init. */
void tt_model_gate_desc(const tt_model *m, tt_gate_cost *c);
/* stage[i] and unit[i] of every gate (either may be NULL). */
void tt_model_gate_ids(const tt_model *m, int *stage, int *unit);
float *tt_model_gate_probs(tt_model *m);               /* t, ngates */
float *tt_model_gate_mask(tt_model *m);                /* the train masks */
/* Pruned for good: t stays 0 and the next compaction removes the gate's
 * structure.  Writable; 1 marks a gate pruned. */
unsigned char *tt_model_gate_pruned(tt_model *m);
/* 1 while the gate's structure is in the network (not yet compacted). */
const unsigned char *tt_model_gate_present(const tt_model *m);
/* mask[i] ~ Bern(t[i]) for every present, unpruned gate (one uniform draw
 * each, in gate order); 0 for the others. */
void tt_model_gate_sample(tt_model *m, tt_rng *r);
/* mask = 1 on every present, unpruned gate: the fixed gates of the
 * warm-up and the fine-tuning, whose steps want no scores.  Train
 * forwards and backwards after it compute none (tt_model_gate_scores
 * reads 0), until tt_model_gate_sample or a mask written by hand. */
void tt_model_gate_all_on(tt_model *m);
/*
 * After a backward: score[i] = out_s . d_s, summed over the batch and
 * positions, with out_s the gate's ungated output and d_s the loss
 * gradient at its gated output; 0 for a gate sampled 0 or a unit of a
 * skipped branch, and 0 everywhere after a forward whose masks were
 * tt_model_gate_all_on's.  Host, ngates.
 */
const float *tt_model_gate_scores(const tt_model *m);
/* wsq[i] = |W_s|^2 and n[i] its count (n may be NULL): a unit owns its
 * filter or row, its BN scale and shift or its bias; a layer gate its
 * whole branch.  0 for gates no longer present. */
void tt_model_gate_wsq(tt_model *m, double *wsq, double *n);
/*
 * The weight prior lam(t_eff) |W|^2/2 of methods.md on the gradients of
 * every weight a present unit owns: grads += (lam(t_eff) - wd) W, with
 * lam(t) = lam_on + (lam_off - lam_on)(1 - t) and t_eff the product of
 * the unit's t and, inside a block, the layer gate's.  So the optimizer's
 * own decay wd plus this is lam(t_eff) for SGD; at t = 1 and lam_on = wd
 * it adds nothing (and is skipped).  For AdamW the difference goes
 * through the moments (coupled), the wd part stays decoupled.
 */
void tt_model_gate_decay(tt_model *m, double lam_on, double lam_off, double wd);
/* tt_model_gate_wsq (without n) and then tt_model_gate_decay, in one pass
 * over the weights: |W|^2 is of the weights before the prior is added to
 * the gradients, which it never changes. */
void tt_model_gate_wsq_decay(tt_model *m, double *wsq, double lam_on, double lam_off,
                             double wd);
/*
 * Rebuild the model without the structures of pruned gates: pruned units
 * leave their layer (its rows, the next layer's columns, their BN
 * parameters and statistics), a pruned layer gate takes the whole branch
 * (and its units) with it.  New flat buffers hold the surviving weights,
 * statistics and optimizer state; the old ones are freed, so the memory
 * accounting, the MACs and the GEMMs shrink.  The stage count and z never
 * change.  Every pointer into the model's buffers is invalid afterwards,
 * and the next loss or backward needs a new forward.  TT_EINPUT when it
 * would leave a live layer without a unit (the caller's guard failed);
 * TT_ERUNTIME when out of memory (the model is then unchanged).
 */
int tt_model_gate_compact(tt_model *m, tt_err *err);
/* Restore gates from a checkpoint: compact to present (the structures
 * still in the network), then take t and pruned.  Arrays of ngates. */
int tt_model_gate_load(tt_model *m, const float *t, const unsigned char *pruned,
                       const unsigned char *present, tt_err *err);
/* Training MACs per example of the last train forward and backward: as
 * tt_model_train_macs, less the branches whose layer gate was 0. */
double tt_model_step_macs(const tt_model *m);

#endif
