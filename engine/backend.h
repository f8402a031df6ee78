/*
 * backend.h — the table of device operations.
 *
 * Layer code never touches tensor memory itself: it calls these operations
 * through a tt_backend, so a trial runs unchanged on the CPU (OpenBLAS) or,
 * with CUDA=1, on a GPU.  Pointers marked "device" belong to the backend;
 * host data crosses only through upload/download.  The CPU backend is the
 * readable reference every other backend is tested against.
 *
 * Layouts: activations are NHWC, row-major; a (rows, C) matrix is a tensor
 * whose last axis is the channel axis, rows = N*H*W.  Convolution weights
 * are (K, kh, kw, C) so that im2col rows line up with them.
 *
 * Every member is required unless its comment says "optional".
 */
#ifndef TT_BACKEND_H
#define TT_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct tt_conv_shape {
	int n, h, w, c;      /* input (n, h, w, c) */
	int k, stride, pad;  /* square kernel k x k */
	int oh, ow;          /* output spatial size */
} tt_conv_shape;

typedef struct tt_backend {
	const char *name;
	/* 1: device pointers are host memory the caller may read and write
	 * directly (the CPU backend); 0: only through upload/download. */
	int host_memory;

	/* Memory.  alloc returns zeroed device memory or NULL. */
	void *(*alloc)(size_t bytes);
	void (*free)(void *p);                                 /* NULL is fine */
	void (*upload)(void *dst, const void *src_host, size_t bytes);
	void (*download)(void *dst_host, const void *src, size_t bytes);
	void (*copy)(void *dst, const void *src, size_t bytes); /* device to device */
	void (*zero)(void *p, size_t bytes);
	void (*sync)(void);                   /* wait for queued work */
	void (*set_threads)(int n);           /* worker threads; optional */

	/* C(m,n) = alpha * op(A) op(B) + beta * C, row-major; ta/tb != 0
	 * transposes.  lda etc. are row strides of the stored matrices. */
	void (*gemm)(int ta, int tb, int m, int n, int k, float alpha,
	             const float *a, int lda, const float *b, int ldb,
	             float beta, float *c, int ldc);

	/*
	 * Convolution of x (s->n, h, w, c) with W (K, k, k, c) into y
	 * (s->n*oh*ow, K), and its backward: dW (=) and, when dx is not NULL,
	 * dx (+=, so a shortcut can add onto a branch).  ws is device
	 * workspace of ws_bytes >= conv_ws(s, K) for batches up to s->n
	 * (fewer threads are used if it is smaller).  How the
	 * work is split is the backend's business: the CPU runs one chunk of
	 * images per thread with single-threaded GEMMs on im2col blocks that
	 * stay in cache.
	 */
	size_t (*conv_ws)(const tt_conv_shape *s, int K);
	void (*conv)(const float *x, const tt_conv_shape *s, int K,
	             const float *W, float *y, void *ws, size_t ws_bytes);
	void (*conv_bwd)(const float *x, const float *dy, const tt_conv_shape *s,
	                 int K, const float *W, float *dW, float *dx, void *ws,
	                 size_t ws_bytes);

	/* col (s->n*oh*ow, k*k*c) from x; zero where the window leaves x. */
	void (*im2col)(const float *x, const tt_conv_shape *s, float *col);
	/* dx += the scatter of col back onto the input positions. */
	void (*col2im)(const float *col, const tt_conv_shape *s, float *dx);

	/* y(rows, c) += b(c) broadcast over rows. */
	void (*bias_add)(float *y, const float *b, int rows, int c);
	/* db(c) = column sums of dy(rows, c) (assigned: a gradient's first
	 * and only writer, so the buffer need not be zeroed first). */
	void (*bias_grad)(const float *dy, int rows, int c, float *db);
	/* y = max(y, 0) in place. */
	void (*relu)(float *y, size_t n);
	/* dy *= (y > 0), y the ReLU output. */
	void (*relu_bwd)(const float *y, float *dy, size_t n);
	/* y(rows, c) = max(y + b, 0), b(c) broadcast over rows: bias_add
	 * and relu in one pass.  Optional (NULL: those two). */
	void (*bias_relu)(float *y, const float *b, int rows, int c);
	/* dy(rows, c) *= (y > 0) and db(c) = column sums of the masked dy:
	 * relu_bwd and bias_grad in one pass, each db(c) summed over the
	 * rows in the same order as bias_grad.  Optional (NULL: those two). */
	void (*relu_bias_grad)(const float *y, float *dy, int rows, int c, float *db);
	/* y += x */
	void (*add)(float *y, const float *x, size_t n);
	/* y = relu(y + x) in place */
	void (*add_relu)(float *y, const float *x, size_t n);

	/*
	 * Batch norm over x(rows, c), per channel.  Training: batch mean and
	 * biased variance normalise; running = (1-m)*running + m*batch, the
	 * running variance with the unbiased estimate (as PyTorch); mean and
	 * 1/sqrt(var+eps) saved for backward.  relu != 0 fuses a ReLU.
	 * run_mean and run_var NULL (both): the running statistics are not
	 * updated (a forward on weights other than the model's own).
	 */
	void (*bn_train)(const float *x, int rows, int c, const float *gamma,
	                 const float *beta, float momentum, float eps,
	                 float *run_mean, float *run_var, float *save_mean,
	                 float *save_istd, int relu, float *y);
	void (*bn_eval)(const float *x, int rows, int c, const float *gamma,
	                const float *beta, const float *run_mean,
	                const float *run_var, float eps, int relu, float *y);
	/* From dy and the saved statistics: dgamma, dbeta and, when dx is
	 * not NULL, dx, all assigned (=). */
	void (*bn_bwd)(const float *x, const float *dy, int rows, int c,
	               const float *gamma, const float *save_mean,
	               const float *save_istd, float *dx, float *dgamma,
	               float *dbeta);

	/* k x k max pooling with stride, no padding: x (n,h,w,c) -> y. */
	void (*maxpool)(const float *x, int n, int h, int w, int c, int k,
	                int stride, float *y);
	/* dx (=, zeroed first) from dy, routing to the first maximum of each
	 * window (recomputed from x, so nothing extra is kept). */
	void (*maxpool_bwd)(const float *x, const float *dy, int n, int h,
	                    int w, int c, int k, int stride, float *dx);
	void (*avgpool)(const float *x, int n, int h, int w, int c, int k,
	                int stride, float *y);
	void (*avgpool_bwd)(const float *dy, int n, int h, int w, int c, int k,
	                    int stride, float *dx);
	/* y(n, c) = mean over h*w of x(n, hw, c); backward spreads dy/hw. */
	void (*gap)(const float *x, int n, int hw, int c, float *y);
	void (*gap_bwd)(const float *dy, int n, int hw, int c, float *dx);
	/* x(n,h,w,c) -> y(n,oh,ow,c) taking every stride-th pixel (the input
	 * of a 1x1 convolution with stride); bwd scatters into zeroed dx. */
	void (*subsample)(const float *x, int n, int h, int w, int c,
	                  int stride, float *y);
	void (*subsample_bwd)(const float *dy, int n, int h, int w, int c,
	                      int stride, float *dx);

	/*
	 * Softmax cross-entropy over logits(n, classes) with labels (device
	 * ints) and label smoothing eps, each row r weighted by w_r = wt[r]
	 * (device, n floats; NULL: every w_r is 1, the plain sum): returns
	 * sum_r w_r loss_r (host double) and the number of rows whose argmax
	 * equals the label in *correct (may be NULL).  When dlogits is not
	 * NULL it receives d(sum_r w_r loss_r)/d logits * scale; when loss is
	 * not NULL (device, n floats) it receives every loss_r, unweighted.
	 * One op for the plain mean (wt NULL, scale 1/n) and Meta-Weight-Net's
	 * per-example weights (wt given, scale 1), so both run the same code.
	 */
	double (*xent)(const float *logits, const int *labels, int n,
	               int classes, float smoothing, const float *wt, float scale,
	               float *dlogits, float *loss, int *correct);

	/* Optimizer steps over n contiguous values (PyTorch semantics).
	 * SGD: g += wd*w; m = mom*m + g; w -= lr*(nesterov ? g + mom*m : m).
	 * AdamW: w *= 1 - lr*wd; Adam moments; bias correction with step t. */
	void (*sgd_step)(float *w, const float *g, float *m, size_t n, float lr,
	                 float momentum, float wd, int nesterov);
	void (*adamw_step)(float *w, const float *g, float *m, float *v,
	                   size_t n, float lr, float b1, float b2, float eps,
	                   float wd, long t);

	/*
	 * Gates (methods.md section 4).  Only a model built with gates calls
	 * these, so an ungated run never pays for them.
	 *
	 * scale_cols: y(rows, c) *= mask(c) broadcast over rows (a unit gate
	 * on a channel).
	 * col_dot: out(c) += sum over rows of a(rows, c) * b(rows, c), summed
	 * in double in a fixed order (a gate's score out . d).
	 * scatter_cols: y(rows, cy)[:, idx[j]] += x(rows, cx)[:, j], j < cx: a
	 * residual branch narrower than its stream adds onto its channels.
	 * gather_cols: x(rows, cx)[:, j] = y(rows, cy)[:, idx[j]], its backward.
	 * row_axpy: y(rows, cols) += a(rows) * x(rows, cols) broadcast over
	 * cols (a weight decay that differs from unit to unit).
	 * row_dot: out(r) += sum over cols of a(r, cols) * b(r, cols), summed
	 * in double, at most a few products at a time in float, in a fixed
	 * order (a unit's |W|^2 over its filter or row).
	 * row_sumsq_axpy: row_dot(x, x) into out and row_axpy(y, x, a) in one
	 * pass over x (a gated step's |W|^2 and weight prior), the sums
	 * exactly row_dot's.
	 * off_dot: out(j) += sum over rows of act(x(rows, j)) * d(rows, j) for
	 * every column j whose mask(j) is 0, act(v) = gamma (v - mean) istd +
	 * beta, then ReLU with relu (mean NULL: act is the identity), summed
	 * in double: the score a unit sampled off would have had on, from the
	 * ungated output its batch norm (and ReLU) recomputes.
	 * idx is device ints; every other pointer device floats.
	 */
	void (*scale_cols)(float *y, const float *mask, int rows, int c);
	void (*col_dot)(const float *a, const float *b, int rows, int c, float *out);
	void (*off_dot)(const float *x, const float *mean, const float *istd,
	                const float *gamma, const float *beta, int relu,
	                const float *d, const float *mask, int rows, int c, float *out);
	void (*scatter_cols)(float *y, int cy, const float *x, int cx,
	                     const int *idx, int rows);
	void (*gather_cols)(float *x, int cx, const float *y, int cy,
	                    const int *idx, int rows);
	void (*row_axpy)(float *y, const float *x, const float *a, int rows,
	                 int cols);
	void (*row_dot)(const float *a, const float *b, int rows, int cols,
	                float *out);
	void (*row_sumsq_axpy)(float *y, const float *x, const float *a, int rows,
	                       int cols, float *out);

	/* 1 when every value of p[0..n) is finite. */
	int (*all_finite)(const float *p, size_t n);
} tt_backend;

/* The backend called name ("cpu", "cuda"), or NULL when it is unknown or
 * not built in. */
const tt_backend *tt_backend_get(const char *name);
/* A comma-separated list of the backends built in. */
const char *tt_backend_list(void);

/*
 * Profiling (engine/backend_prof.c).  With TUNETOP_PROFILE set in the
 * environment to anything but "" or "0", tt_backend_get returns the
 * backend wrapped in a table that times every operation (the operation,
 * then sync(), between two reads of the monotonic clock) and adds the time
 * to the operation's kind; without it nothing is wrapped and nothing is
 * paid.  Totals are per process, over every call since the start (model
 * creation and evaluation included) and every thread; at exit they go to
 * stderr as one JSON line {"profile":{kind: seconds, ...},
 * "profile_calls":{kind: calls, ...}}.
 *
 * Kinds: gemm (gemm), conv (conv, conv_bwd, im2col, col2im), bn (bn_*),
 * elementwise (bias_add, bias_grad, relu, relu_bwd, bias_relu,
 * relu_bias_grad, add, add_relu), pool
 * (maxpool, avgpool, gap, subsample and their backwards), zero_copy (zero,
 * copy), optimizer (sgd_step, adamw_step), loss (xent), data (upload,
 * download), gates (scale_cols .. row_dot), other (sync, set_threads,
 * all_finite), alloc (alloc, free).
 */
enum {
	TT_PROF_GEMM, TT_PROF_CONV, TT_PROF_BN, TT_PROF_ELEMENTWISE, TT_PROF_POOL,
	TT_PROF_ZERO_COPY, TT_PROF_OPTIMIZER, TT_PROF_LOSS, TT_PROF_DATA,
	TT_PROF_GATES, TT_PROF_OTHER, TT_PROF_ALLOC, TT_PROF_KINDS
};
extern const char *const tt_prof_kind_name[TT_PROF_KINDS];
/* 1 when TUNETOP_PROFILE asks for profiling. */
int tt_backend_profiling(void);
/* The timing wrapper of b (the first backend wrapped; any other b is
 * returned as it is).  tt_backend_get calls it when profiling. */
const tt_backend *tt_backend_profiled(const tt_backend *b);
void tt_backend_profile_reset(void);
/* Totals so far: seconds and calls per kind (either may be NULL). */
void tt_backend_profile_get(double seconds[TT_PROF_KINDS], long calls[TT_PROF_KINDS]);
/* Writes "profile":{...},"profile_calls":{...} (two members, no braces
 * around them) for a JSON object of the caller's. */
void tt_backend_profile_json(FILE *f);

#endif
