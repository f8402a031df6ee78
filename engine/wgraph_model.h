/*
 * wgraph_model.h — the weight graph of a tunetop model (wgraph.h) from
 * its spec and a parameter vector or a checkpoint blob: the adapter that
 * feeds the FMS sampler (methods.md §2, step 4).
 *
 * Only the trainable stages are embedded (the last z of the model): a
 * frozen prefix is a function of the seed and carries nothing learned.
 * Groups: the channels (cnn) or inputs (mlp) that enter the first
 * trainable stage, then every trainable stage's output units; the head's
 * are the output group.  Layers follow model.h's parameter layout:
 *   mlp  fc stage:  dense W (out, in) + bias;  head the same
 *   cnn  stem/conv: conv W (K, 3, 3, C), no bias, BN gamma/beta as node
 *        features of its channels;  head (after global pooling) dense
 * A gated checkpoint's gate probabilities (its GATE section) become node
 * features of the units they gate, as long as nothing was compacted
 * away; a compacted one (its layout no longer the dense one) is refused.
 * resnet is not built yet (TT_EINPUT says so).
 */
#ifndef TT_WGRAPH_MODEL_H
#define TT_WGRAPH_MODEL_H

#include <stddef.h>

#include "err.h"
#include "gmn.h"

typedef struct tt_wgm_shape {
	const char *spec;        /* mlp:... or cnn:... */
	int h, w, c;             /* input */
	int classes;
	int trainable;           /* z: the last z stages are embedded; <= 0: all */
} tt_wgm_shape;

/* Stages and parameters the shape has (by arithmetic): TT_EINPUT for a
 * spec this adapter does not read. */
int tt_wgm_count(const tt_wgm_shape *s, int *stages, size_t *nparams, tt_err *err);

/* The graph of params (nparams floats, the model's layout); probs the
 * gate probabilities in model.h's gate order (NULL: none). */
int tt_wgm_build(const tt_wgm_shape *s, const float *params, size_t nparams,
                 const float *probs, tt_graph *g, tt_err *err);

/* The same from a checkpoint blob (ckpt.h): its core section's
 * parameters (its spec must be s->spec), its GATE section's
 * probabilities.  TT_EINPUT naming what does not fit. */
int tt_wgm_from_ckpt(const tt_wgm_shape *s, const void *blob, size_t len, tt_graph *g,
                     tt_err *err);

/* Where the trainable stages' parameters start in the model's vector (the
 * flattened weights of fms-flat are params[*off ..)). */
int tt_wgm_suffix(const tt_wgm_shape *s, size_t *off, tt_err *err);

/* The core section's parameters of a checkpoint blob: *params malloc'd
 * (nparams floats), *spec_out its model spec (may be NULL). */
int tt_wgm_ckpt_params(const void *blob, size_t len, float **params, size_t *nparams,
                       char spec_out[128], tt_err *err);

#endif
