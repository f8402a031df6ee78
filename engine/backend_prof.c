/*
 * backend_prof.c — a timing wrapper around a backend table
 * (TUNETOP_PROFILE).
 *
 * tt_backend_get hands out this wrapper instead of the backend itself when
 * TUNETOP_PROFILE is set in the environment (to anything but "" or "0").
 * Each member of the wrapper calls the wrapped member, then the wrapped
 * sync() (so a queued GPU operation is charged to itself, not to whichever
 * later call happens to wait for it), and adds the time between its two
 * reads of tt_clock_mono to the operation's kind.  Without TUNETOP_PROFILE
 * the wrapper is never installed: layer code calls the backend directly
 * and pays nothing.  conv_ws, arithmetic on the host, is passed through
 * untimed.
 *
 * The totals are per process and cover every call: model creation (alloc,
 * upload of the initial weights), training steps, evaluation.  Worker
 * threads (the runner trains trials side by side) add into the same
 * totals, so they are summed thread time, not wall time; each is an
 * atomic integer count of nanoseconds.  Only the first backend asked for
 * is wrapped; another one asked for later (a CUDA run beside a CPU one in
 * the same process) is returned as it is.
 *
 * At exit the totals go to stderr as one JSON line, {"profile":{...},
 * "profile_calls":{...}}; tt_backend_profile_json writes the same two
 * members into a JSON object of the caller's.
 */
#include "backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

const char *const tt_prof_kind_name[TT_PROF_KINDS] = {
	[TT_PROF_GEMM] = "gemm",
	[TT_PROF_CONV] = "conv",
	[TT_PROF_BN] = "bn",
	[TT_PROF_ELEMENTWISE] = "elementwise",
	[TT_PROF_POOL] = "pool",
	[TT_PROF_ZERO_COPY] = "zero_copy",
	[TT_PROF_OPTIMIZER] = "optimizer",
	[TT_PROF_LOSS] = "loss",
	[TT_PROF_DATA] = "data",
	[TT_PROF_GATES] = "gates",
	[TT_PROF_OTHER] = "other",
	[TT_PROF_ALLOC] = "alloc",
};

static const tt_backend *inner;  /* the wrapped backend; set once */
static tt_backend wrapped;       /* its wrapper */
static _Atomic long long prof_ns[TT_PROF_KINDS];
static _Atomic long prof_calls[TT_PROF_KINDS];

/* Charge the time since t0 to kind k, after the backend has finished. */
static void charge(int k, double t0)
{
	inner->sync();
	long long ns = (long long)((tt_clock_mono() - t0) * 1e9);
	atomic_fetch_add_explicit(&prof_ns[k], ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&prof_calls[k], 1, memory_order_relaxed);
}

/* A void member: time the call, charge it to kind K. */
#define TIMED(K, call)                  \
	do {                            \
		double t0_ = tt_clock_mono(); \
		inner->call;            \
		charge(K, t0_);         \
	} while (0)

static void *p_alloc(size_t bytes)
{
	double t0 = tt_clock_mono();
	void *p = inner->alloc(bytes);
	charge(TT_PROF_ALLOC, t0);
	return p;
}

static void p_free(void *p) { TIMED(TT_PROF_ALLOC, free(p)); }

static void p_upload(void *dst, const void *src, size_t bytes)
{
	TIMED(TT_PROF_DATA, upload(dst, src, bytes));
}

static void p_download(void *dst, const void *src, size_t bytes)
{
	TIMED(TT_PROF_DATA, download(dst, src, bytes));
}

static void p_copy(void *dst, const void *src, size_t bytes)
{
	TIMED(TT_PROF_ZERO_COPY, copy(dst, src, bytes));
}

static void p_zero(void *p, size_t bytes) { TIMED(TT_PROF_ZERO_COPY, zero(p, bytes)); }
static void p_sync(void) { TIMED(TT_PROF_OTHER, sync()); }
static void p_set_threads(int n) { TIMED(TT_PROF_OTHER, set_threads(n)); }

static void p_gemm(int ta, int tb, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc)
{
	TIMED(TT_PROF_GEMM, gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}

static void p_conv(const float *x, const tt_conv_shape *s, int K,
                   const float *W, float *y, void *ws, size_t ws_bytes)
{
	TIMED(TT_PROF_CONV, conv(x, s, K, W, y, ws, ws_bytes));
}

static void p_conv_bwd(const float *x, const float *dy, const tt_conv_shape *s,
                       int K, const float *W, float *dW, float *dx, void *ws,
                       size_t ws_bytes)
{
	TIMED(TT_PROF_CONV, conv_bwd(x, dy, s, K, W, dW, dx, ws, ws_bytes));
}

static void p_im2col(const float *x, const tt_conv_shape *s, float *col)
{
	TIMED(TT_PROF_CONV, im2col(x, s, col));
}

static void p_col2im(const float *col, const tt_conv_shape *s, float *dx)
{
	TIMED(TT_PROF_CONV, col2im(col, s, dx));
}

static void p_bias_add(float *y, const float *b, int rows, int c)
{
	TIMED(TT_PROF_ELEMENTWISE, bias_add(y, b, rows, c));
}

static void p_bias_grad(const float *dy, int rows, int c, float *db)
{
	TIMED(TT_PROF_ELEMENTWISE, bias_grad(dy, rows, c, db));
}

static void p_bias_relu(float *y, const float *b, int rows, int c)
{
	TIMED(TT_PROF_ELEMENTWISE, bias_relu(y, b, rows, c));
}

static void p_relu_bias_grad(const float *y, float *dy, int rows, int c, float *db)
{
	TIMED(TT_PROF_ELEMENTWISE, relu_bias_grad(y, dy, rows, c, db));
}

static void p_relu(float *y, size_t n) { TIMED(TT_PROF_ELEMENTWISE, relu(y, n)); }

static void p_relu_bwd(const float *y, float *dy, size_t n)
{
	TIMED(TT_PROF_ELEMENTWISE, relu_bwd(y, dy, n));
}

static void p_add(float *y, const float *x, size_t n)
{
	TIMED(TT_PROF_ELEMENTWISE, add(y, x, n));
}

static void p_add_relu(float *y, const float *x, size_t n)
{
	TIMED(TT_PROF_ELEMENTWISE, add_relu(y, x, n));
}

static void p_bn_train(const float *x, int rows, int c, const float *gamma,
                       const float *beta, float momentum, float eps,
                       float *run_mean, float *run_var, float *save_mean,
                       float *save_istd, int relu, float *y)
{
	TIMED(TT_PROF_BN, bn_train(x, rows, c, gamma, beta, momentum, eps, run_mean,
	                           run_var, save_mean, save_istd, relu, y));
}

static void p_bn_eval(const float *x, int rows, int c, const float *gamma,
                      const float *beta, const float *run_mean,
                      const float *run_var, float eps, int relu, float *y)
{
	TIMED(TT_PROF_BN, bn_eval(x, rows, c, gamma, beta, run_mean, run_var, eps, relu, y));
}

static void p_bn_bwd(const float *x, const float *dy, int rows, int c,
                     const float *gamma, const float *save_mean,
                     const float *save_istd, float *dx, float *dgamma,
                     float *dbeta)
{
	TIMED(TT_PROF_BN, bn_bwd(x, dy, rows, c, gamma, save_mean, save_istd, dx,
	                         dgamma, dbeta));
}

static void p_maxpool(const float *x, int n, int h, int w, int c, int k,
                      int stride, float *y)
{
	TIMED(TT_PROF_POOL, maxpool(x, n, h, w, c, k, stride, y));
}

static void p_maxpool_bwd(const float *x, const float *dy, int n, int h,
                          int w, int c, int k, int stride, float *dx)
{
	TIMED(TT_PROF_POOL, maxpool_bwd(x, dy, n, h, w, c, k, stride, dx));
}

static void p_avgpool(const float *x, int n, int h, int w, int c, int k,
                      int stride, float *y)
{
	TIMED(TT_PROF_POOL, avgpool(x, n, h, w, c, k, stride, y));
}

static void p_avgpool_bwd(const float *dy, int n, int h, int w, int c, int k,
                          int stride, float *dx)
{
	TIMED(TT_PROF_POOL, avgpool_bwd(dy, n, h, w, c, k, stride, dx));
}

static void p_gap(const float *x, int n, int hw, int c, float *y)
{
	TIMED(TT_PROF_POOL, gap(x, n, hw, c, y));
}

static void p_gap_bwd(const float *dy, int n, int hw, int c, float *dx)
{
	TIMED(TT_PROF_POOL, gap_bwd(dy, n, hw, c, dx));
}

static void p_subsample(const float *x, int n, int h, int w, int c,
                        int stride, float *y)
{
	TIMED(TT_PROF_POOL, subsample(x, n, h, w, c, stride, y));
}

static void p_subsample_bwd(const float *dy, int n, int h, int w, int c,
                            int stride, float *dx)
{
	TIMED(TT_PROF_POOL, subsample_bwd(dy, n, h, w, c, stride, dx));
}

static double p_xent(const float *logits, const int *labels, int n,
                     int classes, float smoothing, const float *wt, float scale,
                     float *dlogits, float *loss, int *correct)
{
	double t0 = tt_clock_mono();
	double v = inner->xent(logits, labels, n, classes, smoothing, wt, scale,
	                       dlogits, loss, correct);
	charge(TT_PROF_LOSS, t0);
	return v;
}

static void p_sgd_step(float *w, const float *g, float *m, size_t n, float lr,
                       float momentum, float wd, int nesterov)
{
	TIMED(TT_PROF_OPTIMIZER, sgd_step(w, g, m, n, lr, momentum, wd, nesterov));
}

static void p_adamw_step(float *w, const float *g, float *m, float *v,
                         size_t n, float lr, float b1, float b2, float eps,
                         float wd, long t)
{
	TIMED(TT_PROF_OPTIMIZER, adamw_step(w, g, m, v, n, lr, b1, b2, eps, wd, t));
}

static void p_scale_cols(float *y, const float *mask, int rows, int c)
{
	TIMED(TT_PROF_GATES, scale_cols(y, mask, rows, c));
}

static void p_off_dot(const float *x, const float *mean, const float *istd,
                      const float *gamma, const float *beta, int relu,
                      const float *d, const float *mask, int rows, int c, float *out)
{
	TIMED(TT_PROF_GATES, off_dot(x, mean, istd, gamma, beta, relu, d, mask, rows, c, out));
}

static void p_col_dot(const float *a, const float *b, int rows, int c, float *out)
{
	TIMED(TT_PROF_GATES, col_dot(a, b, rows, c, out));
}

static void p_scatter_cols(float *y, int cy, const float *x, int cx,
                           const int *idx, int rows)
{
	TIMED(TT_PROF_GATES, scatter_cols(y, cy, x, cx, idx, rows));
}

static void p_gather_cols(float *x, int cx, const float *y, int cy,
                          const int *idx, int rows)
{
	TIMED(TT_PROF_GATES, gather_cols(x, cx, y, cy, idx, rows));
}

static void p_row_sumsq_axpy(float *y, const float *x, const float *a, int rows, int cols,
                             float *out)
{
	TIMED(TT_PROF_GATES, row_sumsq_axpy(y, x, a, rows, cols, out));
}

static void p_row_axpy(float *y, const float *x, const float *a, int rows,
                       int cols)
{
	TIMED(TT_PROF_GATES, row_axpy(y, x, a, rows, cols));
}

static void p_row_dot(const float *a, const float *b, int rows, int cols,
                      float *out)
{
	TIMED(TT_PROF_GATES, row_dot(a, b, rows, cols, out));
}

static int p_all_finite(const float *p, size_t n)
{
	double t0 = tt_clock_mono();
	int v = inner->all_finite(p, n);
	charge(TT_PROF_OTHER, t0);
	return v;
}

static void at_exit(void)
{
	fputc('{', stderr);
	tt_backend_profile_json(stderr);
	fputs("}\n", stderr);
}

/* The wrapper of b: every member b has, timed; a member b leaves NULL
 * (an optional one) stays NULL, so callers see the same table shape. */
static void wrap(const tt_backend *b)
{
	inner = b;
	wrapped = *b;
#define W(f) if (b->f) wrapped.f = p_##f
	W(alloc); W(free); W(upload); W(download); W(copy); W(zero); W(sync);
	W(set_threads); W(gemm); W(conv); W(conv_bwd); W(im2col);
	W(col2im); W(bias_add); W(bias_grad); W(relu); W(relu_bwd); W(bias_relu);
	W(relu_bias_grad); W(add);
	W(add_relu); W(bn_train); W(bn_eval); W(bn_bwd); W(maxpool);
	W(maxpool_bwd); W(avgpool); W(avgpool_bwd); W(gap); W(gap_bwd);
	W(subsample); W(subsample_bwd); W(xent); W(sgd_step); W(adamw_step);
	W(scale_cols); W(col_dot); W(off_dot); W(scatter_cols); W(gather_cols); W(row_axpy);
	W(row_sumsq_axpy);
	W(row_dot); W(all_finite);
#undef W
	atexit(at_exit);
}

int tt_backend_profiling(void)
{
	const char *v = getenv("TUNETOP_PROFILE");
	return v && *v && strcmp(v, "0") != 0;
}

const tt_backend *tt_backend_profiled(const tt_backend *b)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	const tt_backend *r = b;
	if (!b)
		return NULL;
	/* the runner's workers may ask at the same moment */
	pthread_mutex_lock(&lock);
	if (!inner)
		wrap(b);
	if (inner == b)
		r = &wrapped;
	pthread_mutex_unlock(&lock);
	return r;
}

void tt_backend_profile_reset(void)
{
	for (int k = 0; k < TT_PROF_KINDS; k++) {
		atomic_store(&prof_ns[k], 0);
		atomic_store(&prof_calls[k], 0);
	}
}

void tt_backend_profile_get(double seconds[TT_PROF_KINDS], long calls[TT_PROF_KINDS])
{
	for (int k = 0; k < TT_PROF_KINDS; k++) {
		if (seconds)
			seconds[k] = 1e-9 * (double)atomic_load(&prof_ns[k]);
		if (calls)
			calls[k] = atomic_load(&prof_calls[k]);
	}
}

void tt_backend_profile_json(FILE *f)
{
	double s[TT_PROF_KINDS];
	long n[TT_PROF_KINDS];
	tt_backend_profile_get(s, n);
	fputs("\"profile\":{", f);
	for (int k = 0; k < TT_PROF_KINDS; k++)
		fprintf(f, "%s\"%s\":%.6f", k ? "," : "", tt_prof_kind_name[k], s[k]);
	fputs("},\"profile_calls\":{", f);
	for (int k = 0; k < TT_PROF_KINDS; k++)
		fprintf(f, "%s\"%s\":%ld", k ? "," : "", tt_prof_kind_name[k], n[k]);
	fputc('}', f);
}
