/*
 * conv_direct.h — direct convolution kernels of the CPU backend.
 *
 * The same operations as the backend's conv and conv_bwd (backend.h:
 * NHWC activations, weights (K, k, k, C), y assigned, dW assigned, dx
 * added onto), computed in register tiles straight from a zero-padded
 * copy of each image instead of through an im2col matrix and a GEMM.
 * backend_cpu.c decides when to use them and keeps the im2col path as the
 * reference ("cpu-ref").  Images are split among the OpenMP threads; the
 * weight gradient is summed per thread, then over threads in order, so a
 * result depends on the thread count but not on scheduling.
 */
#ifndef TT_CONV_DIRECT_H
#define TT_CONV_DIRECT_H

#include <stddef.h>

#include "backend.h"

/* Bytes of workspace for s (batches up to s->n) on up to nt threads. */
size_t conv_direct_ws(const tt_conv_shape *s, int K, int nt);
/* y (s->n*oh*ow, K) = conv(x (s->n, h, w, c), W (K, k, k, c)). */
void conv_direct_fwd(const float *x, const tt_conv_shape *s, int K, const float *W,
                     float *y, void *ws, size_t ws_bytes);
/* dW (=) and, when dx is not NULL, dx (+=) from dy (s->n*oh*ow, K). */
void conv_direct_bwd(const float *x, const float *dy, const tt_conv_shape *s, int K,
                     const float *W, float *dW, float *dx, void *ws, size_t ws_bytes);

#endif
