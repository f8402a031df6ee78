/*
 * backend_cpu.c — the CPU backend: OpenBLAS for GEMM, plain loops for the
 * rest, parallel with OpenMP where the work is large enough to pay for it.
 *
 * This file is the reference every other backend is tested against, so it
 * favours loops whose meaning is plain; the inner loops run over the
 * channel axis (contiguous in NHWC) so the compiler vectorises them.
 *
 * Two tables come out of it.  "cpu" takes the fast paths: convolutions
 * by the direct kernels of conv_direct.c, and the fused elementwise
 * operations.  "cpu-ref" is the same backend with only the plain ways:
 * convolution through im2col and GEMM, no fused operations (the model
 * then calls the two operations each fused one replaces).  Tests compare
 * the two; --backend cpu-ref runs a training on the reference.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "conv_direct.h"
#include "err.h"

void openblas_set_num_threads(int n);

/* Below this many elements a parallel region costs more than it saves. */
#define PAR_MIN 32768

static void *cpu_alloc(size_t bytes)
{
	void *p = NULL;
	size_t rounded = (bytes + 63) & ~(size_t)63;
	if (posix_memalign(&p, 64, rounded ? rounded : 64))
		return NULL;
	memset(p, 0, rounded);
	return p;
}

static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_sync(void) {}

static void cpu_set_threads(int n)
{
	if (n < 1)
		n = 1;
	openblas_set_num_threads(n);
	omp_set_num_threads(n);
}

static void cpu_gemm(int ta, int tb, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc)
{
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
	            tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
	            ldb, beta, c, ldc);
}

static void cpu_im2col(const float *x, const tt_conv_shape *s, float *col)
{
	const int c = s->c, k = s->k, kkc = k * k * c;
	const int rows = s->n * s->oh;
#pragma omp parallel for schedule(static) if ((size_t)rows * s->ow * kkc > PAR_MIN)
	for (int r = 0; r < rows; r++) {
		int n = r / s->oh, oy = r % s->oh;
		const float *xn = x + (size_t)n * s->h * s->w * c;
		float *dst = col + (size_t)r * s->ow * kkc;
		for (int ox = 0; ox < s->ow; ox++) {
			for (int ky = 0; ky < k; ky++) {
				int iy = oy * s->stride - s->pad + ky;
				if (iy < 0 || iy >= s->h) {
					memset(dst, 0, (size_t)k * c * sizeof *dst);
					dst += k * c;
					continue;
				}
				int ix0 = ox * s->stride - s->pad;
				if (ix0 >= 0 && ix0 + k <= s->w) {
					/* the whole kernel row is inside: one copy */
					memcpy(dst, xn + ((size_t)iy * s->w + ix0) * c,
					       (size_t)k * c * sizeof *dst);
					dst += k * c;
					continue;
				}
				for (int kx = 0; kx < k; kx++, dst += c) {
					int ix = ix0 + kx;
					if (ix < 0 || ix >= s->w)
						memset(dst, 0, (size_t)c * sizeof *dst);
					else
						memcpy(dst, xn + ((size_t)iy * s->w + ix) * c,
						       (size_t)c * sizeof *dst);
				}
			}
		}
	}
}

static void cpu_col2im(const float *col, const tt_conv_shape *s, float *dx)
{
	const int c = s->c, k = s->k, kkc = k * k * c;
	/* Windows of one image overlap, so images are the unit of parallelism. */
#pragma omp parallel for schedule(static) if ((size_t)s->n * s->oh * s->ow * kkc > PAR_MIN)
	for (int n = 0; n < s->n; n++) {
		float *dxn = dx + (size_t)n * s->h * s->w * c;
		const float *src = col + (size_t)n * s->oh * s->ow * kkc;
		for (int oy = 0; oy < s->oh; oy++)
			for (int ox = 0; ox < s->ow; ox++)
				for (int ky = 0; ky < k; ky++) {
					int iy = oy * s->stride - s->pad + ky;
					for (int kx = 0; kx < k; kx++, src += c) {
						int ix = ox * s->stride - s->pad + kx;
						if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
							continue;
						float *d = dxn + ((size_t)iy * s->w + ix) * c;
						for (int ch = 0; ch < c; ch++)
							d[ch] += src[ch];
					}
				}
	}
}

/*
 * Convolution by chunks of images.  Each thread takes whole chunks, builds
 * their im2col block in its own slice of the workspace (about 768 KiB, so
 * the GEMM reads it back from cache) and runs a single-threaded GEMM:
 * OpenBLAS called inside an OpenMP region runs on the calling thread.
 * This scales where one multi-threaded GEMM over the whole batch does not:
 * with 16 or 32 output channels the GEMM is too thin to split well, and
 * the im2col matrix of a whole batch (tens of MB) streams through memory
 * twice.  Weight gradients go to per-thread partial sums, added in thread
 * order, so a run is reproducible for a given thread count.
 */
#define CONV_COL_FLOATS (192u * 1024)

typedef struct conv_plan {
	int nt, chunk, nchunks, direct;
	size_t col, part;     /* floats per thread: im2col block, dW partial */
} conv_plan;

static conv_plan conv_plan_make(const tt_conv_shape *s, int K, size_t ws_bytes)
{
	conv_plan p;
	p.direct = s->k == 1 && s->stride == 1 && s->pad == 0;
	size_t per = p.direct ? 0 : (size_t)s->oh * s->ow * s->k * s->k * s->c;
	p.part = (size_t)K * s->k * s->k * s->c;
	p.nt = omp_get_max_threads();
	if (p.nt > s->n)
		p.nt = s->n;
	int chunk = per ? (int)(CONV_COL_FLOATS / per) : 32;
	if (chunk < 1)
		chunk = 1;
	int even = (s->n + p.nt - 1) / p.nt; /* at least one chunk per thread */
	if (chunk > even)
		chunk = even;
	p.chunk = chunk;
	p.col = per * (size_t)chunk;
	if (ws_bytes != (size_t)-1) {
		size_t fit = ws_bytes / ((p.col + p.part) * sizeof(float));
		if ((size_t)p.nt > fit)
			p.nt = (int)fit;
		TT_ASSERT(p.nt >= 1);
	}
	p.nchunks = (s->n + chunk - 1) / chunk;
	return p;
}

/* Chunk ch of the plan: its first image and its shape. */
static int conv_chunk(const conv_plan *p, const tt_conv_shape *s, int ch,
                      tt_conv_shape *c)
{
	int b0 = ch * p->chunk;
	*c = *s;
	c->n = s->n - b0 < p->chunk ? s->n - b0 : p->chunk;
	return b0;
}

/* Enough for either way, so that both tables can share it. */
static size_t cpu_conv_ws(const tt_conv_shape *s, int K)
{
	conv_plan p = conv_plan_make(s, K, (size_t)-1);
	size_t ref = (size_t)p.nt * (p.col + p.part) * sizeof(float);
	size_t direct = conv_direct_ws(s, K, omp_get_max_threads());
	return ref > direct ? ref : direct;
}

static void cpu_conv_ref(const float *x, const tt_conv_shape *s, int K,
                         const float *W, float *y, void *ws, size_t ws_bytes)
{
	conv_plan p = conv_plan_make(s, K, ws_bytes);
	const int kkc = s->k * s->k * s->c, ohw = s->oh * s->ow;
	const size_t in_img = (size_t)s->h * s->w * s->c;
#pragma omp parallel num_threads(p.nt)
	{
		int t = omp_get_thread_num();
		float *col = (float *)ws + (size_t)t * (p.col + p.part);
		for (int ch = t; ch < p.nchunks; ch += p.nt) {
			tt_conv_shape c;
			int b0 = conv_chunk(&p, s, ch, &c);
			const float *xc = x + (size_t)b0 * in_img;
			float *yc = y + (size_t)b0 * ohw * K;
			if (p.direct) {
				cpu_gemm(0, 1, c.n * ohw, K, s->c, 1.0f, xc, s->c, W, s->c,
				         0.0f, yc, K);
			} else {
				cpu_im2col(xc, &c, col);
				cpu_gemm(0, 1, c.n * ohw, K, kkc, 1.0f, col, kkc, W, kkc,
				         0.0f, yc, K);
			}
		}
	}
}

static void cpu_conv_bwd_ref(const float *x, const float *dy, const tt_conv_shape *s,
                             int K, const float *W, float *dW, float *dx, void *ws,
                             size_t ws_bytes)
{
	conv_plan p = conv_plan_make(s, K, ws_bytes);
	const int kkc = s->k * s->k * s->c, ohw = s->oh * s->ow;
	const size_t in_img = (size_t)s->h * s->w * s->c;
#pragma omp parallel num_threads(p.nt)
	{
		int t = omp_get_thread_num();
		float *col = (float *)ws + (size_t)t * (p.col + p.part);
		float *part = col + p.col;
		memset(part, 0, p.part * sizeof *part);
		for (int ch = t; ch < p.nchunks; ch += p.nt) {
			tt_conv_shape c;
			int b0 = conv_chunk(&p, s, ch, &c);
			const float *xc = x + (size_t)b0 * in_img;
			const float *dyc = dy + (size_t)b0 * ohw * K;
			int rows = c.n * ohw;
			if (p.direct) {
				cpu_gemm(1, 0, K, s->c, rows, 1.0f, dyc, K, xc, s->c, 1.0f,
				         part, s->c);
				if (dx)
					cpu_gemm(0, 0, rows, s->c, K, 1.0f, dyc, K, W, s->c, 1.0f,
					         dx + (size_t)b0 * in_img, s->c);
				continue;
			}
			cpu_im2col(xc, &c, col);
			cpu_gemm(1, 0, K, kkc, rows, 1.0f, dyc, K, col, kkc, 1.0f, part, kkc);
			if (!dx)
				continue;
			/* the block is spent: reuse it for its gradient */
			cpu_gemm(0, 0, rows, kkc, K, 1.0f, dyc, K, W, kkc, 0.0f, col, kkc);
			cpu_col2im(col, &c, dx + (size_t)b0 * in_img);
		}
	}
	/* dW = the partial sums, in thread order */
	size_t stride = p.col + p.part;
	const float *parts = (const float *)ws + p.col;
	for (size_t i = 0; i < p.part; i++) {
		float sum = 0.0f;
		for (int t = 0; t < p.nt; t++)
			sum += parts[(size_t)t * stride + i];
		dW[i] = sum;
	}
}

/*
 * Whether the direct kernels (conv_direct.c) take a convolution.  On a
 * k x k kernel they beat im2col and GEMM by 1.3 to 4 times wherever the
 * GEMM is thin (up to 64 channels: every layer of the resnets and cnns
 * tuned here) and tie with it on 128 to 256 channels.  A 1x1 kernel
 * with stride 1 needs no im2col, so the reference is one plain GEMM;
 * with stride 2 the tiles win only while the channels are few (1x1,
 * 256 channels: 9.7 against 7.6 ms for both gradients).
 */
static int conv_direct_pays(const tt_conv_shape *s, int K)
{
	if (s->k == 1)
		return s->stride != 1 && K <= 64 && s->c <= 64;
	return 1;
}

static void cpu_conv(const float *x, const tt_conv_shape *s, int K,
                     const float *W, float *y, void *ws, size_t ws_bytes)
{
	if (conv_direct_pays(s, K))
		conv_direct_fwd(x, s, K, W, y, ws, ws_bytes);
	else
		cpu_conv_ref(x, s, K, W, y, ws, ws_bytes);
}

static void cpu_conv_bwd(const float *x, const float *dy, const tt_conv_shape *s,
                         int K, const float *W, float *dW, float *dx, void *ws,
                         size_t ws_bytes)
{
	if (conv_direct_pays(s, K))
		conv_direct_bwd(x, dy, s, K, W, dW, dx, ws, ws_bytes);
	else
		cpu_conv_bwd_ref(x, dy, s, K, W, dW, dx, ws, ws_bytes);
}

static void cpu_bias_add(float *y, const float *b, int rows, int c)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * c > PAR_MIN)
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < c; j++)
			y[(size_t)r * c + j] += b[j];
}

static void cpu_bias_grad(const float *dy, int rows, int c, float *db)
{
	for (int j = 0; j < c; j++)
		db[j] = 0.0f;
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < c; j++)
			db[j] += dy[(size_t)r * c + j];
}

static void cpu_relu(float *y, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
	for (size_t i = 0; i < n; i++)
		y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

static void cpu_relu_bwd(const float *y, float *dy, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
	for (size_t i = 0; i < n; i++)
		dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static void cpu_bias_relu(float *y, const float *b, int rows, int c)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * c > PAR_MIN)
	for (int r = 0; r < rows; r++) {
		float *yr = y + (size_t)r * c;
		for (int j = 0; j < c; j++) {
			float v = yr[j] + b[j];
			yr[j] = v > 0.0f ? v : 0.0f;
		}
	}
}

/*
 * Threads take blocks of columns (whole cache lines of db), not of rows:
 * each db(j) is then summed over the rows in order by one thread, as
 * cpu_bias_grad sums it, so the two ways give the same bits.
 */
static void cpu_relu_bias_grad(const float *y, float *dy, int rows, int c, float *db)
{
	int nblk = (c + 15) / 16;
	int nt = (size_t)rows * c > PAR_MIN ? omp_get_max_threads() : 1;
	if (nt > nblk)
		nt = nblk;
#pragma omp parallel num_threads(nt) if (nt > 1)
	{
		int t = omp_get_thread_num(), T = omp_get_num_threads();
		int j0 = 16 * (nblk * t / T), j1 = 16 * (nblk * (t + 1) / T);
		if (j1 > c)
			j1 = c;
		for (int j = j0; j < j1; j++)
			db[j] = 0.0f;
		for (int r = 0; r < rows; r++) {
			const float *yr = y + (size_t)r * c;
			float *dr = dy + (size_t)r * c;
			for (int j = j0; j < j1; j++) {
				float v = yr[j] > 0.0f ? dr[j] : 0.0f;
				dr[j] = v;
				db[j] += v;
			}
		}
	}
}

static void cpu_add(float *y, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

static void cpu_add_relu(float *y, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
	for (size_t i = 0; i < n; i++) {
		float v = y[i] + x[i];
		y[i] = v > 0.0f ? v : 0.0f;
	}
}

/*
 * Per-channel sums of a and (optionally) a*b over rows of (rows, c) tensors,
 * in double: rows reach 10^5 and float sums would drift.  Each thread sums
 * its block of rows, then the blocks are added in a fixed order so the
 * result does not depend on scheduling.
 */
#define MAX_THREADS 64
static void channel_sums(const float *a, const float *b, const float *bmean,
                         const float *bistd, int rows, int c, double *sa,
                         double *sab)
{
	int nt = (size_t)rows * c > PAR_MIN ? omp_get_max_threads() : 1;
	if (nt > MAX_THREADS)
		nt = MAX_THREADS;
	double *part = calloc((size_t)nt * 2 * c, sizeof *part);
	if (!part)
		abort(); /* a few KiB; no recovery worth having */
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num(), T = omp_get_num_threads();
		int r0 = (int)((long)rows * t / T), r1 = (int)((long)rows * (t + 1) / T);
		double *pa = part + (size_t)t * 2 * c, *pab = pa + c;
		for (int r = r0; r < r1; r++) {
			const float *ar = a + (size_t)r * c;
			if (!b) {
				/* sum and sum of squares of a */
				for (int j = 0; j < c; j++) {
					pa[j] += ar[j];
					pab[j] += (double)ar[j] * ar[j];
				}
			} else {
				/* sum of a and of a * xhat(b) */
				const float *br = b + (size_t)r * c;
				for (int j = 0; j < c; j++) {
					pa[j] += ar[j];
					pab[j] += (double)ar[j] * ((br[j] - bmean[j]) * bistd[j]);
				}
			}
		}
	}
	for (int j = 0; j < c; j++)
		sa[j] = sab[j] = 0.0;
	for (int t = 0; t < nt; t++)
		for (int j = 0; j < c; j++) {
			sa[j] += part[(size_t)t * 2 * c + j];
			sab[j] += part[(size_t)t * 2 * c + c + j];
		}
	free(part);
}

static void bn_apply(const float *x, int rows, int c, const float *scale,
                     const float *shift, int relu, float *y)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * c > PAR_MIN)
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * c;
		float *yr = y + (size_t)r * c;
		if (relu)
			for (int j = 0; j < c; j++) {
				float v = xr[j] * scale[j] + shift[j];
				yr[j] = v > 0.0f ? v : 0.0f;
			}
		else
			for (int j = 0; j < c; j++)
				yr[j] = xr[j] * scale[j] + shift[j];
	}
}

static void cpu_bn_train(const float *x, int rows, int c, const float *gamma,
                         const float *beta, float momentum, float eps,
                         float *run_mean, float *run_var, float *save_mean,
                         float *save_istd, int relu, float *y)
{
	double s[c], ss[c];
	float scale[c], shift[c];
	channel_sums(x, NULL, NULL, NULL, rows, c, s, ss);
	for (int j = 0; j < c; j++) {
		double mean = s[j] / rows;
		double var = ss[j] / rows - mean * mean;
		if (var < 0)
			var = 0;
		double istd = 1.0 / sqrt(var + eps);
		save_mean[j] = (float)mean;
		save_istd[j] = (float)istd;
		double unbiased = rows > 1 ? var * rows / (rows - 1) : var;
		if (run_mean) {
			run_mean[j] = (float)((1 - momentum) * run_mean[j] + momentum * mean);
			run_var[j] = (float)((1 - momentum) * run_var[j] + momentum * unbiased);
		}
		scale[j] = (float)(gamma[j] * istd);
		shift[j] = (float)(beta[j] - mean * gamma[j] * istd);
	}
	bn_apply(x, rows, c, scale, shift, relu, y);
}

static void cpu_bn_eval(const float *x, int rows, int c, const float *gamma,
                        const float *beta, const float *run_mean,
                        const float *run_var, float eps, int relu, float *y)
{
	float scale[c], shift[c];
	for (int j = 0; j < c; j++) {
		float istd = 1.0f / sqrtf(run_var[j] + eps);
		scale[j] = gamma[j] * istd;
		shift[j] = beta[j] - run_mean[j] * gamma[j] * istd;
	}
	bn_apply(x, rows, c, scale, shift, relu, y);
}

static void cpu_bn_bwd(const float *x, const float *dy, int rows, int c,
                       const float *gamma, const float *save_mean,
                       const float *save_istd, float *dx, float *dgamma,
                       float *dbeta)
{
	double sdy[c], sdyx[c];
	channel_sums(dy, x, save_mean, save_istd, rows, c, sdy, sdyx);
	for (int j = 0; j < c; j++) {
		dgamma[j] = (float)sdyx[j];
		dbeta[j] = (float)sdy[j];
	}
	if (!dx)
		return;
	/* dx = gamma*istd * (dy - mean(dy) - xhat * mean(dy*xhat)) */
	float k0[c], k1[c], mdy[c];
	for (int j = 0; j < c; j++) {
		k0[j] = gamma[j] * save_istd[j];
		mdy[j] = (float)(sdy[j] / rows);
		k1[j] = (float)(sdyx[j] / rows);
	}
#pragma omp parallel for schedule(static) if ((size_t)rows * c > PAR_MIN)
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * c, *dyr = dy + (size_t)r * c;
		float *dxr = dx + (size_t)r * c;
		for (int j = 0; j < c; j++) {
			float xh = (xr[j] - save_mean[j]) * save_istd[j];
			dxr[j] = k0[j] * (dyr[j] - mdy[j] - xh * k1[j]);
		}
	}
}

static void cpu_maxpool(const float *x, int n, int h, int w, int c, int k,
                        int stride, float *y)
{
	int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
#pragma omp parallel for schedule(static) if ((size_t)n * h * w * c > PAR_MIN)
	for (int r = 0; r < n * oh; r++) {
		int b = r / oh, oy = r % oh;
		for (int ox = 0; ox < ow; ox++) {
			float *yo = y + (((size_t)b * oh + oy) * ow + ox) * c;
			for (int j = 0; j < c; j++)
				yo[j] = -INFINITY;
			for (int ky = 0; ky < k; ky++)
				for (int kx = 0; kx < k; kx++) {
					const float *xi = x + (((size_t)b * h + oy * stride + ky) * w +
					                       ox * stride + kx) * c;
					for (int j = 0; j < c; j++)
						yo[j] = xi[j] > yo[j] ? xi[j] : yo[j];
				}
		}
	}
}

static void cpu_maxpool_bwd(const float *x, const float *dy, int n, int h,
                            int w, int c, int k, int stride, float *dx)
{
	int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
	memset(dx, 0, (size_t)n * h * w * c * sizeof *dx);
#pragma omp parallel for schedule(static) if ((size_t)n * h * w * c > PAR_MIN)
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				for (int j = 0; j < c; j++) {
					size_t best = 0;
					float bv = -INFINITY;
					for (int ky = 0; ky < k; ky++)
						for (int kx = 0; kx < k; kx++) {
							size_t i = (((size_t)b * h + oy * stride + ky) * w +
							            ox * stride + kx) * c + j;
							if (x[i] > bv || (ky == 0 && kx == 0)) {
								bv = x[i];
								best = i;
							}
						}
					dx[best] += dy[(((size_t)b * oh + oy) * ow + ox) * c + j];
				}
}

static void cpu_avgpool(const float *x, int n, int h, int w, int c, int k,
                        int stride, float *y)
{
	int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
	float inv = 1.0f / (float)(k * k);
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++) {
				float *yo = y + (((size_t)b * oh + oy) * ow + ox) * c;
				for (int j = 0; j < c; j++)
					yo[j] = 0.0f;
				for (int ky = 0; ky < k; ky++)
					for (int kx = 0; kx < k; kx++) {
						const float *xi = x + (((size_t)b * h + oy * stride + ky) * w +
						                       ox * stride + kx) * c;
						for (int j = 0; j < c; j++)
							yo[j] += xi[j];
					}
				for (int j = 0; j < c; j++)
					yo[j] *= inv;
			}
}

static void cpu_avgpool_bwd(const float *dy, int n, int h, int w, int c, int k,
                            int stride, float *dx)
{
	int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
	float inv = 1.0f / (float)(k * k);
	memset(dx, 0, (size_t)n * h * w * c * sizeof *dx);
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++) {
				const float *g = dy + (((size_t)b * oh + oy) * ow + ox) * c;
				for (int ky = 0; ky < k; ky++)
					for (int kx = 0; kx < k; kx++) {
						float *d = dx + (((size_t)b * h + oy * stride + ky) * w +
						                 ox * stride + kx) * c;
						for (int j = 0; j < c; j++)
							d[j] += g[j] * inv;
					}
			}
}

static void cpu_gap(const float *x, int n, int hw, int c, float *y)
{
	float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static) if ((size_t)n * hw * c > PAR_MIN)
	for (int b = 0; b < n; b++) {
		float *yb = y + (size_t)b * c;
		for (int j = 0; j < c; j++)
			yb[j] = 0.0f;
		for (int p = 0; p < hw; p++) {
			const float *xp = x + ((size_t)b * hw + p) * c;
			for (int j = 0; j < c; j++)
				yb[j] += xp[j];
		}
		for (int j = 0; j < c; j++)
			yb[j] *= inv;
	}
}

static void cpu_gap_bwd(const float *dy, int n, int hw, int c, float *dx)
{
	float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static) if ((size_t)n * hw * c > PAR_MIN)
	for (int b = 0; b < n; b++)
		for (int p = 0; p < hw; p++) {
			float *d = dx + ((size_t)b * hw + p) * c;
			for (int j = 0; j < c; j++)
				d[j] = dy[(size_t)b * c + j] * inv;
		}
}

static void cpu_subsample(const float *x, int n, int h, int w, int c,
                          int stride, float *y)
{
	int oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1;
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				memcpy(y + (((size_t)b * oh + oy) * ow + ox) * c,
				       x + (((size_t)b * h + oy * stride) * w + ox * stride) * c,
				       (size_t)c * sizeof *y);
}

static void cpu_subsample_bwd(const float *dy, int n, int h, int w, int c,
                              int stride, float *dx)
{
	int oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1;
	memset(dx, 0, (size_t)n * h * w * c * sizeof *dx);
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				memcpy(dx + (((size_t)b * h + oy * stride) * w + ox * stride) * c,
				       dy + (((size_t)b * oh + oy) * ow + ox) * c,
				       (size_t)c * sizeof *dx);
}

static double cpu_xent(const float *logits, const int *labels, int n,
                       int classes, float smoothing, const float *wt,
                       float scale, float *dlogits, float *loss, int *correct)
{
	double total = 0.0;
	int right = 0;
	for (int r = 0; r < n; r++) {
		const float *z = logits + (size_t)r * classes;
		int y = labels[r], arg = 0;
		float mx = z[0];
		for (int j = 1; j < classes; j++)
			if (z[j] > mx) {
				mx = z[j];
				arg = j;
			}
		right += arg == y;
		double se = 0.0, sz = 0.0;
		for (int j = 0; j < classes; j++) {
			se += exp((double)z[j] - mx);
			sz += (double)z[j] - mx;
		}
		double lse = log(se);
		/* -log p_y with weight 1-eps, mean over classes of -log p with eps */
		double nll = lse - ((double)z[y] - mx);
		double uni = lse - sz / classes;
		double l = (1.0 - smoothing) * nll + smoothing * uni;
		/* w = 1 without weights: the products below are then exact, so
		 * the plain mean is bit for bit what it was before weights */
		double w = wt ? (double)wt[r] : 1.0;
		total += w * l;
		if (loss)
			loss[r] = (float)l;
		if (dlogits) {
			float *d = dlogits + (size_t)r * classes;
			double ws = w * scale;
			for (int j = 0; j < classes; j++) {
				double p = exp((double)z[j] - mx) / se;
				double t = smoothing / classes + (j == y ? 1.0 - smoothing : 0.0);
				d[j] = (float)((p - t) * ws);
			}
		}
	}
	if (correct)
		*correct = right;
	return total;
}

static void cpu_sgd_step(float *w, const float *g, float *m, size_t n, float lr,
                         float momentum, float wd, int nesterov)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
	for (size_t i = 0; i < n; i++) {
		float gi = g[i] + wd * w[i];
		if (m) {
			m[i] = momentum * m[i] + gi;
			gi = nesterov ? gi + momentum * m[i] : m[i];
		}
		w[i] -= lr * gi;
	}
}

static void cpu_adamw_step(float *w, const float *g, float *m, float *v,
                           size_t n, float lr, float b1, float b2, float eps,
                           float wd, long t)
{
	float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
	float step = lr / bc1, ibc2 = 1.0f / sqrtf(bc2);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
	for (size_t i = 0; i < n; i++) {
		w[i] *= 1.0f - lr * wd;
		m[i] = b1 * m[i] + (1.0f - b1) * g[i];
		v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
		w[i] -= step * m[i] / (sqrtf(v[i]) * ibc2 + eps);
	}
}

static void cpu_scale_cols(float *y, const float *mask, int rows, int c)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * c > PAR_MIN)
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < c; j++)
			y[(size_t)r * c + j] *= mask[j];
}

/*
 * Rows go in COL_DOT_CHUNKS fixed blocks, each summed in double by one
 * thread, and the blocks are added in order: the same sums whatever the
 * thread count, so a run stays reproducible.
 */
#define COL_DOT_CHUNKS 16

static void cpu_col_dot(const float *a, const float *b, int rows, int c, float *out)
{
	double *part = calloc((size_t)COL_DOT_CHUNKS * c, sizeof *part);
	TT_ASSERT(part);
	int per = (rows + COL_DOT_CHUNKS - 1) / COL_DOT_CHUNKS;
#pragma omp parallel for schedule(static) if ((size_t)rows * c > PAR_MIN)
	for (int ch = 0; ch < COL_DOT_CHUNKS; ch++) {
		double *p = part + (size_t)ch * c;
		int r1 = (ch + 1) * per < rows ? (ch + 1) * per : rows;
		for (int r = ch * per; r < r1; r++)
			for (int j = 0; j < c; j++)
				p[j] += (double)a[(size_t)r * c + j] * b[(size_t)r * c + j];
	}
	for (int j = 0; j < c; j++) {
		double s = 0;
		for (int ch = 0; ch < COL_DOT_CHUNKS; ch++)
			s += part[(size_t)ch * c + j];
		out[j] += (float)s;
	}
	free(part);
}

static void cpu_off_dot(const float *x, const float *mean, const float *istd,
                        const float *gamma, const float *beta, int relu,
                        const float *d, const float *mask, int rows, int c, float *out)
{
	int *idx = malloc((size_t)c * sizeof *idx), n = 0;
	TT_ASSERT(idx);
	for (int j = 0; j < c; j++)
		if (mask[j] == 0.0f)
			idx[n++] = j;
	double *part = n ? calloc((size_t)COL_DOT_CHUNKS * n, sizeof *part) : NULL;
	TT_ASSERT(part || !n);
	int per = (rows + COL_DOT_CHUNKS - 1) / COL_DOT_CHUNKS;
#pragma omp parallel for schedule(static) if ((size_t)rows * n > PAR_MIN)
	for (int ch = 0; ch < (n ? COL_DOT_CHUNKS : 0); ch++) {
		double *p = part + (size_t)ch * n;
		int r1 = (ch + 1) * per < rows ? (ch + 1) * per : rows;
		for (int r = ch * per; r < r1; r++)
			for (int k = 0; k < n; k++) {
				int j = idx[k];
				float v = x[(size_t)r * c + j];
				if (mean)
					v = gamma[j] * (v - mean[j]) * istd[j] + beta[j];
				if (relu && v < 0)
					v = 0;
				p[k] += (double)v * d[(size_t)r * c + j];
			}
	}
	for (int k = 0; k < n; k++) {
		double s = 0;
		for (int ch = 0; ch < COL_DOT_CHUNKS; ch++)
			s += part[(size_t)ch * n + k];
		out[idx[k]] += (float)s;
	}
	free(part);
	free(idx);
}

static void cpu_scatter_cols(float *y, int cy, const float *x, int cx,
                             const int *idx, int rows)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cx > PAR_MIN)
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < cx; j++)
			y[(size_t)r * cy + idx[j]] += x[(size_t)r * cx + j];
}

static void cpu_gather_cols(float *x, int cx, const float *y, int cy,
                            const int *idx, int rows)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cx > PAR_MIN)
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < cx; j++)
			x[(size_t)r * cx + j] = y[(size_t)r * cy + idx[j]];
}

/* A row whose coefficient is 0 adds nothing and is not touched: the
 * weight prior's rows of gates at 1 (tt_model_gate_decay). */
static void cpu_row_axpy(float *y, const float *x, const float *a, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
	for (int r = 0; r < rows; r++) {
		if (a[r] == 0.0f)
			continue;
		for (int j = 0; j < cols; j++)
			y[(size_t)r * cols + j] += a[r] * x[(size_t)r * cols + j];
	}
}

/*
 * Each row goes in blocks of ROW_DOT_BLOCK columns: within a block,
 * ROW_DOT_LANES float partial sums (column j into lane j mod lanes, a few
 * products each), added in double; the blocks' sums are added in double.
 * One running double sum is a chain of dependent additions the compiler
 * may not reorder, and made this pass (a gated step's |W|^2 over every
 * weight) cost as much as the optimizer's; the lanes vectorise, and the
 * error of a block's few float additions is far below what |W|^2 is used
 * for.  The order is fixed, so the sums do not depend on the thread count.
 */
#define ROW_DOT_LANES 16
#define ROW_DOT_BLOCK 128

/* sum of a[j] b[j] over one row: float lanes in blocks, the blocks added
 * in double, in a fixed order */
static double row_dot1(const float *ar, const float *br, int cols)
{
	double s = 0;
	for (int j0 = 0; j0 < cols; j0 += ROW_DOT_BLOCK) {
		int j1 = cols - j0 > ROW_DOT_BLOCK ? j0 + ROW_DOT_BLOCK : cols, j = j0;
		float lane[ROW_DOT_LANES] = { 0 };
		for (; j + ROW_DOT_LANES <= j1; j += ROW_DOT_LANES)
			for (int k = 0; k < ROW_DOT_LANES; k++)
				lane[k] += ar[j + k] * br[j + k];
		for (int k = 0; k < j1 - j; k++)
			lane[k] += ar[j + k] * br[j + k];
		double bs = 0;
		for (int k = 0; k < ROW_DOT_LANES; k++)
			bs += lane[k];
		s += bs;
	}
	return s;
}

static void cpu_row_dot(const float *a, const float *b, int rows, int cols, float *out)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
	for (int r = 0; r < rows; r++)
		out[r] += (float)row_dot1(a + (size_t)r * cols, b + (size_t)r * cols, cols);
}

static void cpu_row_sumsq_axpy(float *y, const float *x, const float *a, int rows, int cols,
                               float *out)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * cols;
		out[r] += (float)row_dot1(xr, xr, cols);
		if (a[r] == 0.0f)
			continue;
		float *yr = y + (size_t)r * cols;
		for (int j = 0; j < cols; j++)
			yr[j] += a[r] * xr[j];
	}
}

static int cpu_all_finite(const float *p, size_t n)
{
	int bad = 0;
#pragma omp parallel for simd reduction(|:bad) schedule(static) if (n > PAR_MIN)
	for (size_t i = 0; i < n; i++)
		bad |= !isfinite(p[i]);
	return !bad;
}

/* Every operation both tables share. */
#define CPU_COMMON_OPS \
	.host_memory = 1, \
	.alloc = cpu_alloc, \
	.free = cpu_free, \
	.upload = cpu_copy, \
	.download = cpu_copy, \
	.copy = cpu_copy, \
	.zero = cpu_zero, \
	.sync = cpu_sync, \
	.set_threads = cpu_set_threads, \
	.gemm = cpu_gemm, \
	.conv_ws = cpu_conv_ws, \
	.im2col = cpu_im2col, \
	.col2im = cpu_col2im, \
	.bias_add = cpu_bias_add, \
	.bias_grad = cpu_bias_grad, \
	.relu = cpu_relu, \
	.relu_bwd = cpu_relu_bwd, \
	.add = cpu_add, \
	.add_relu = cpu_add_relu, \
	.bn_train = cpu_bn_train, \
	.bn_eval = cpu_bn_eval, \
	.bn_bwd = cpu_bn_bwd, \
	.maxpool = cpu_maxpool, \
	.maxpool_bwd = cpu_maxpool_bwd, \
	.avgpool = cpu_avgpool, \
	.avgpool_bwd = cpu_avgpool_bwd, \
	.gap = cpu_gap, \
	.gap_bwd = cpu_gap_bwd, \
	.subsample = cpu_subsample, \
	.subsample_bwd = cpu_subsample_bwd, \
	.xent = cpu_xent, \
	.sgd_step = cpu_sgd_step, \
	.adamw_step = cpu_adamw_step, \
	.scale_cols = cpu_scale_cols, \
	.col_dot = cpu_col_dot, \
	.off_dot = cpu_off_dot, \
	.scatter_cols = cpu_scatter_cols, \
	.gather_cols = cpu_gather_cols, \
	.row_axpy = cpu_row_axpy, \
	.row_dot = cpu_row_dot, \
	.row_sumsq_axpy = cpu_row_sumsq_axpy, \
	.all_finite = cpu_all_finite

const tt_backend tt_backend_cpu = {
	.name = "cpu",
	CPU_COMMON_OPS,
	.conv = cpu_conv,
	.conv_bwd = cpu_conv_bwd,
	.bias_relu = cpu_bias_relu,
	.relu_bias_grad = cpu_relu_bias_grad,
};

const tt_backend tt_backend_cpu_ref = {
	.name = "cpu-ref",
	CPU_COMMON_OPS,
	.conv = cpu_conv_ref,
	.conv_bwd = cpu_conv_bwd_ref,
};
