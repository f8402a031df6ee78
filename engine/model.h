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
 * is never done.
 *
 * Parameters of all stages live in one flat device buffer, stage after
 * stage, each layer's tensors in this order:
 *   dense:  W (out, in) row-major, then b (out)
 *   conv:   W (K, kh, kw, C) (PyTorch's weight.permute(0,2,3,1)); no bias
 *   BN:     gamma (C), then beta (C)
 *   basic block: conv1, bn1, conv2, bn2, then (if the shape changes) the
 *   1x1 projection conv and its BN.
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
#include "mem.h"

typedef struct tt_model tt_model;

#define TT_STAGE_NAME_MAX_LEN 32 /* bytes of a stage name, NUL included */

typedef struct tt_model_config {
	const char *spec;
	int h, w, c;            /* input shape; 28, 28, 1 for Fashion-MNIST */
	int classes;
	int batch;              /* the largest batch a forward will see */
	int trainable;          /* z: train the last z stages; <= 0 means all */
	int optim_slots;        /* optimizer state per parameter: 0, 1 or 2 */
	uint64_t seed;          /* initialisation */
	const tt_backend *be;
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
 * through the trainable stages only: what the engine really computes). */
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

/* Backward through the trainable stages after a train forward and a loss
 * with want_grad; overwrites the gradient buffer. */
void tt_model_backward(tt_model *m);

const tt_mem *tt_model_mem(const tt_model *m);
void tt_model_stage_mem(const tt_model *m, int s, tt_stage_mem *out);

#endif
