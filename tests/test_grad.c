/*
 * test_grad.c — finite-difference gradient checks of every backward
 * operation of the backend and of whole models.
 *
 * Part A takes each operation of the cpu backend on its own (the
 * convolution both as im2col and GEMM, the reference composition, and as
 * the backend's conv and conv_bwd, its fast path): a forward f
 * on small random tensors, the scalar objective L = sum(r ⊙ f(x)) for a
 * fixed random r (so the analytic gradient is the op's backward applied
 * to dy = r), and central differences of L in the inputs' elements.
 * Where a forward is cheap to write out it is also compared with a direct
 * double-precision computation, so a forward and a backward that are
 * wrong in the same way cannot pass together; the += / = contracts of
 * bias_grad, col2im, bn_bwd and maxpool_bwd are checked by starting their
 * outputs from a known value (bias_grad and bn_bwd assign, col2im adds).
 *
 * Part B builds models through the model API (input 8x8x1, 10 classes,
 * batch 4) and compares tt_model_grads with central differences of the
 * train-mode loss, perturbing the parameter vector through be->upload.
 * The parameter layout documented in model.h is rebuilt here per model,
 * checked against tt_model_stage_params, and used to check elements of
 * every tensor of every trainable stage.  A train forward updates the
 * batch-norm running statistics; the train-mode loss does not read them.
 * The same check runs with the weights by pointer (tt_model_forward_on,
 * tt_model_backward_into): the loss as a function of a caller's buffer,
 * the model's own parameters made different so that reading them fails.
 *
 * Part C does the same for gated models and their gate scores.  Part D
 * checks tt_model_loss_ex: without weights it is tt_model_loss, its
 * per-example losses are those of examples forwarded alone, and with
 * random weights the weight gradient passes the check on the weighted
 * sum.  Part E checks d loss / d input (tt_model_config.input_grad)
 * against central differences in the input's elements, on ungated and
 * gated models, with the plain and a weighted loss.
 *
 * Tolerance.  Each checked element must satisfy
 *     |a - n| <= FD_ATOL * scale + FD_RTOL * max(|a|, |n|)
 * (a analytic, n numeric, scale the largest analytic magnitude in that
 * tensor, at least FD_SCALE_FLOOR).  An element rule rather than a norm
 * over the sample, because a norm lets one wrong element (a border pixel,
 * one channel) hide under the others; an absolute term relative to the
 * tensor's own scale, because a model's mean loss has gradients from
 * 1e-4 to 1, and a fixed floor would wave small wrong ones through.
 *
 * Steps.  The engine is float32 and the objective is summed in double, so
 * a quotient's noise is the float rounding of whatever the step moves,
 * divided by the step: h = step * max(|x|, 1), divided by the step really
 * taken, (float)(x+h) - (float)(x-h).  step is 1e-2 for linear ops, 1e-3
 * for curved ones (batch norm, softmax) and max pooling, and 5e-3 for
 * models, whose loss is moved by rounding all through the network: at
 * 1e-3 that noise alone reached the tolerance, at 1e-2 curvature begins
 * to.  Over 60 seeds of the random data (ops and models) the worst
 * element used a third of its tolerance.
 *
 * Kinks.  ReLU signs and max-pool winners are not loosened around.  Every
 * objective returns a hash of the decisions it made, and a step that
 * changes them is caught.  The op cases place their inputs away from 0
 * and from ties by more than any step, so there a flip fails the case.
 * Inside a model thousands of pre-activations guarantee some within a
 * step of 0, and most steps flip one somewhere; the model runs on a
 * backend table that records its decisions and can replay them (see
 * watch_be), and a step that flips one is taken again with every decision
 * held: the smooth piece of the loss whose derivative backward computes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gates.h"
#include "model.h"
#include "rng.h"
#include "test.h"

#define FD_ATOL 1e-3
#define FD_RTOL 2e-2
#define FD_SCALE_FLOOR 1e-2
#define FD_SAMPLES 256       /* elements checked per tensor of an op */
#define FD_MODEL_SAMPLES 64  /* elements checked per tensor of a model */
#define FD_PRINT 4           /* mismatches printed per tensor */
#define STEP_LINEAR 1e-2
#define STEP_CURVED 1e-3
#define STEP_MODEL 5e-3
#define OPS_SEED 2024
#define BN_MOMENTUM 0.1f     /* the model's; any value works for the ops */
#define BN_EPS 1e-5f

static const tt_backend *be;
static tt_rng rng;

/* ---- buffers of one case ----------------------------------------------- */

/* Host and device buffers are recorded and freed together by bufs_free at
 * the end of a case. */
#define MAX_BUFS 64
static void *bufs[MAX_BUFS];
static int bufs_dev[MAX_BUFS];
static int nbufs;

static void *buf_keep(void *p, int dev)
{
	TT_ASSERT(p && nbufs < MAX_BUFS);
	bufs[nbufs] = p;
	bufs_dev[nbufs++] = dev;
	return p;
}

/* n zeroed host floats */
static float *hbuf(size_t n) { return buf_keep(calloc(n ? n : 1, sizeof(float)), 0); }
/* n zeroed device floats */
static float *dbuf(size_t n) { return buf_keep(be->alloc((n ? n : 1) * sizeof(float)), 1); }

static void bufs_free(void)
{
	for (int i = 0; i < nbufs; i++) {
		if (bufs_dev[i])
			be->free(bufs[i]);
		else
			free(bufs[i]);
	}
	nbufs = 0;
}

static void put(float *dev, const float *host, size_t n) { be->upload(dev, host, n * sizeof *host); }
static void get(float *host, const float *dev, size_t n) { be->download(host, dev, n * sizeof *host); }

static void fill(float *p, size_t n, float mean, float std)
{
	for (size_t i = 0; i < n; i++)
		p[i] = mean + std * tt_rng_normal(&rng);
}

static void fill_const(float *p, size_t n, float v)
{
	for (size_t i = 0; i < n; i++)
		p[i] = v;
}

/* Keep every value at least margin away from 0. */
static void nudge_from_zero(float *p, size_t n, float margin)
{
	for (size_t i = 0; i < n; i++)
		if (fabsf(p[i]) < margin)
			p[i] += p[i] < 0 ? -2 * margin : 2 * margin;
}

/* A random permutation of n values spaced by gap, centred on 0: no ties. */
static void fill_distinct(float *p, size_t n, float gap)
{
	int *idx = malloc(n * sizeof *idx);
	TT_ASSERT(idx);
	for (size_t i = 0; i < n; i++)
		idx[i] = (int)i;
	tt_rng_shuffle(&rng, idx, (int)n);
	for (size_t i = 0; i < n; i++)
		p[i] = gap * ((float)idx[i] - (float)n / 2 + 0.25f);
	free(idx);
}

static double dot(const float *r, const float *y, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)r[i] * y[i];
	return s;
}

static uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

/* Hash of the signs of p[0..n): the pattern of a ReLU on p. */
static uint64_t hash_signs(const float *p, size_t n)
{
	uint64_t h = 1;
	for (size_t i = 0; i < n; i++)
		h = hash_mix(h, p[i] > 0.0f);
	return h;
}

/* ---- the finite-difference check --------------------------------------- */

/*
 * How an objective makes its discrete decisions (ReLU signs, max-pool
 * winners): FD_FREE as its inputs dictate, FD_RECORD likewise and
 * remembering them, FD_PINNED held at the remembered ones, which makes it
 * the smooth extension of the piece the recording was made on.  Only the
 * models' objective can pin; the ops' objectives always decide freely.
 */
enum fd_mode { FD_FREE, FD_RECORD, FD_PINNED };

/*
 * The objective at the current host values of a case's inputs, and in
 * *pattern a hash of the decisions it made (0 if it makes none).
 */
typedef double (*fd_objective)(void *ctx, int mode, uint64_t *pattern);

typedef struct fd_opts {
	double step;      /* h = step * max(|x|, 1) */
	int samples;      /* elements checked per tensor */
	/* 0: a step that flips a decision is a fault of the test's inputs;
	 * 1: the objective can pin (see fd_check) */
	int pin;
} fd_opts;

static const fd_opts op_linear = { STEP_LINEAR, FD_SAMPLES, 0 };
static const fd_opts op_curved = { STEP_CURVED, FD_SAMPLES, 0 };
static const fd_opts model_opts = { STEP_MODEL, FD_MODEL_SAMPLES, 1 };

/* The central difference of f in x[i] with step h into *num (x[i] is
 * restored); 0 when a step changes f's decisions from p0. */
static int fd_diff(fd_objective f, void *ctx, int mode, float *x, size_t i,
                   double h, uint64_t p0, double *num)
{
	uint64_t pp, pm;
	float x0 = x[i], xp = (float)(x0 + h), xm = (float)(x0 - h);
	x[i] = xp;
	double lp = f(ctx, mode, &pp);
	x[i] = xm;
	double lm = f(ctx, mode, &pm);
	x[i] = x0;
	*num = (lp - lm) / ((double)xp - (double)xm);
	return mode == FD_PINNED || (pp == p0 && pm == p0);
}

/*
 * Compare grad[0..n) with central differences of f in x[0..n) (host values
 * that f reads; restored afterwards) at o->samples elements drawn at
 * random.  Failures name the tensor, the element and both values.
 *
 * A step that flips one of f's decisions measures a different piece of a
 * piecewise-smooth function.  The op cases place their inputs so that no
 * step can (a flip fails the case: the inputs are wrong).  Inside a model
 * the test cannot place them, and thousands of pre-activations guarantee
 * that some lie within a step of 0: there the difference is taken again
 * with every decision pinned to the unperturbed forward's, which is the
 * function whose derivative backward computes.
 */
static void fd_check(const char *name, fd_objective f, void *ctx, float *x,
                     const float *grad, size_t n, const fd_opts *o)
{
	uint64_t p0;
	size_t want = n < (size_t)o->samples ? n : (size_t)o->samples;
	size_t *pick = malloc((n ? n : 1) * sizeof *pick);
	TT_ASSERT(pick);
	for (size_t i = 0; i < n; i++)
		pick[i] = i;
	for (size_t k = 0; k < want; k++) {
		/* a partial Fisher-Yates: pick[0..want) is a random sample */
		size_t j = k + tt_rng_below(&rng, (uint32_t)(n - k));
		size_t t = pick[j];
		pick[j] = pick[k];
		pick[k] = t;
	}
	double scale = FD_SCALE_FLOOR;
	for (size_t i = 0; i < n; i++)
		if (fabs(grad[i]) > scale)
			scale = fabs(grad[i]);

	f(ctx, FD_RECORD, &p0);
	int nbad = 0, nflip = 0;
	for (size_t k = 0; k < want; k++) {
		size_t i = pick[k];
		double h = o->step * fmax(fabs(x[i]), 1.0), num;
		int flips = !fd_diff(f, ctx, FD_FREE, x, i, h, p0, &num);
		if (flips && o->pin) {
			fd_diff(f, ctx, FD_PINNED, x, i, h, p0, &num);
		} else if (flips) {
			if (++nflip <= FD_PRINT)
				CHECK(!flips, "%s[%zu]: a step of %.2g flips a ReLU or max-pool "
				      "decision: the test's inputs are too close to a kink",
				      name, i, h);
			continue;
		}
		double a = grad[i];
		double tol = FD_ATOL * scale + FD_RTOL * fmax(fabs(a), fabs(num));
		int ok = fabs(a - num) <= tol;
		if (!ok && ++nbad > FD_PRINT)
			continue;
		CHECK(ok, "%s[%zu]: analytic %.7g, numeric %.7g, tolerance %.2g",
		      name, i, a, num, tol);
	}
	CHECK(nbad == 0, "%s: %d of %zu sampled elements disagree", name, nbad, want);
	f(ctx, FD_FREE, &p0); /* leave the device holding the unperturbed forward */
	free(pick);
}

/* ---- A. backend operations --------------------------------------------- */

/* dense: y (n, dout) = x (n, din) W (dout, din)^T + b */
typedef struct dense_ctx {
	int n, din, dout;
	float *x, *W, *b, *r, *y;
	float *x_d, *W_d, *b_d, *y_d;
} dense_ctx;

static double dense_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	dense_ctx *c = ctx;
	put(c->x_d, c->x, (size_t)c->n * c->din);
	put(c->W_d, c->W, (size_t)c->dout * c->din);
	put(c->b_d, c->b, (size_t)c->dout);
	be->gemm(0, 1, c->n, c->dout, c->din, 1.0f, c->x_d, c->din, c->W_d, c->din,
	         0.0f, c->y_d, c->dout);
	be->bias_add(c->y_d, c->b_d, c->n, c->dout);
	get(c->y, c->y_d, (size_t)c->n * c->dout);
	*pattern = 0;
	return dot(c->r, c->y, (size_t)c->n * c->dout);
}

static void grad_dense(void)
{
	dense_ctx c = { .n = 5, .din = 7, .dout = 6 };
	size_t nx = (size_t)c.n * c.din, nw = (size_t)c.dout * c.din, ny = (size_t)c.n * c.dout;
	c.x = hbuf(nx), c.W = hbuf(nw), c.b = hbuf(c.dout), c.r = hbuf(ny), c.y = hbuf(ny);
	c.x_d = dbuf(nx), c.W_d = dbuf(nw), c.b_d = dbuf(c.dout), c.y_d = dbuf(ny);
	fill(c.x, nx, 0, 1), fill(c.W, nw, 0, 0.5f), fill(c.b, c.dout, 0, 1);
	fill(c.r, ny, 0, 1);
	uint64_t pat;
	dense_obj(&c, FD_FREE, &pat);
	for (int i = 0; i < c.n; i++)
		for (int o = 0; o < c.dout; o++) {
			double want = c.b[o];
			for (int k = 0; k < c.din; k++)
				want += (double)c.x[i * c.din + k] * c.W[o * c.din + k];
			CHECK_CLOSE(c.y[i * c.dout + o], want, 1e-5, 1e-5, "dense forward");
		}

	float *r_d = dbuf(ny), *gx_d = dbuf(nx), *gW_d = dbuf(nw), *gb_d = dbuf(c.dout);
	float *gx = hbuf(nx), *gW = hbuf(nw), *gb = hbuf(c.dout);
	put(r_d, c.r, ny);
	be->gemm(1, 0, c.dout, c.din, c.n, 1.0f, r_d, c.dout, c.x_d, c.din, 0.0f,
	         gW_d, c.din);
	be->gemm(0, 0, c.n, c.din, c.dout, 1.0f, r_d, c.dout, c.W_d, c.din, 0.0f,
	         gx_d, c.din);
	/* bias_grad assigns: start from garbage */
	fill_const(gb, c.dout, 7.0f);
	put(gb_d, gb, c.dout);
	be->bias_grad(r_d, c.n, c.dout, gb_d);
	get(gx, gx_d, nx), get(gW, gW_d, nw), get(gb, gb_d, c.dout);
	fd_check("dense dx", dense_obj, &c, c.x, gx, nx, &op_linear);
	fd_check("dense dW", dense_obj, &c, c.W, gW, nw, &op_linear);
	fd_check("dense db", dense_obj, &c, c.b, gb, c.dout, &op_linear);
	bufs_free();
}

/* conv: y (n*oh*ow, K) = im2col(x) W (K, k*k*C)^T */
typedef struct conv_ctx {
	tt_conv_shape s;
	int K;
	float *x, *W, *r, *y;
	float *x_d, *W_d, *col_d, *y_d;
} conv_ctx;

static size_t conv_rows(const conv_ctx *c) { return (size_t)c->s.n * c->s.oh * c->s.ow; }
static int conv_kkc(const conv_ctx *c) { return c->s.k * c->s.k * c->s.c; }

static double conv_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	conv_ctx *c = ctx;
	int kkc = conv_kkc(c), rows = (int)conv_rows(c);
	put(c->x_d, c->x, (size_t)c->s.n * c->s.h * c->s.w * c->s.c);
	put(c->W_d, c->W, (size_t)c->K * kkc);
	be->im2col(c->x_d, &c->s, c->col_d);
	be->gemm(0, 1, rows, c->K, kkc, 1.0f, c->col_d, kkc, c->W_d, kkc, 0.0f,
	         c->y_d, c->K);
	get(c->y, c->y_d, (size_t)rows * c->K);
	*pattern = 0;
	return dot(c->r, c->y, (size_t)rows * c->K);
}

/* The convolution written out, in double, against c->y. */
static void conv_check_forward(const conv_ctx *c)
{
	const tt_conv_shape *s = &c->s;
	int bad = 0;
	for (int b = 0; b < s->n; b++)
		for (int oy = 0; oy < s->oh; oy++)
			for (int ox = 0; ox < s->ow; ox++)
				for (int o = 0; o < c->K; o++) {
					double want = 0;
					for (int ky = 0; ky < s->k; ky++)
						for (int kx = 0; kx < s->k; kx++) {
							int iy = oy * s->stride - s->pad + ky;
							int ix = ox * s->stride - s->pad + kx;
							if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
								continue;
							for (int ch = 0; ch < s->c; ch++)
								want += (double)c->x[((b * s->h + iy) * s->w + ix) * s->c + ch] *
								        c->W[((o * s->k + ky) * s->k + kx) * s->c + ch];
						}
					double got = c->y[((b * s->oh + oy) * s->ow + ox) * c->K + o];
					int close = fabs(got - want) <= 1e-5 + 1e-5 * fabs(want);
					if (!close && bad++ < FD_PRINT)
						CHECK(close, "conv forward (%d,%d,%d,%d): got %.7g, expected %.7g",
						      b, oy, ox, o, got, want);
				}
	CHECK(bad == 0, "conv forward: %d outputs differ", bad);
}

/* A k x k convolution with stride and padding of a (2, 7, 6, 3) input into
 * 4 channels; odd and even sizes so both borders are hit. */
static void conv_case(int k, int stride, int pad)
{
	conv_ctx c = { .s = { .n = 2, .h = 7, .w = 6, .c = 3, .k = k,
	                      .stride = stride, .pad = pad }, .K = 4 };
	c.s.oh = (c.s.h + 2 * pad - k) / stride + 1;
	c.s.ow = (c.s.w + 2 * pad - k) / stride + 1;
	int kkc = conv_kkc(&c);
	size_t nx = (size_t)c.s.n * c.s.h * c.s.w * c.s.c, nw = (size_t)c.K * kkc;
	size_t rows = conv_rows(&c), ny = rows * c.K;
	c.x = hbuf(nx), c.W = hbuf(nw), c.r = hbuf(ny), c.y = hbuf(ny);
	c.x_d = dbuf(nx), c.W_d = dbuf(nw), c.col_d = dbuf(rows * kkc), c.y_d = dbuf(ny);
	fill(c.x, nx, 0, 1), fill(c.W, nw, 0, 0.5f), fill(c.r, ny, 0, 1);
	uint64_t pat;
	conv_obj(&c, FD_FREE, &pat);
	conv_check_forward(&c);

	float *r_d = dbuf(ny), *dcol_d = dbuf(rows * kkc), *gx_d = dbuf(nx), *gW_d = dbuf(nw);
	float *gx = hbuf(nx), *gW = hbuf(nw);
	put(r_d, c.r, ny);
	be->gemm(1, 0, c.K, kkc, (int)rows, 1.0f, r_d, c.K, c.col_d, kkc, 0.0f, gW_d, kkc);
	be->gemm(0, 0, (int)rows, kkc, c.K, 1.0f, r_d, c.K, c.W_d, kkc, 0.0f, dcol_d, kkc);
	/* col2im accumulates: start from 1 and take it off again */
	fill_const(gx, nx, 1.0f);
	put(gx_d, gx, nx);
	be->col2im(dcol_d, &c.s, gx_d);
	get(gx, gx_d, nx), get(gW, gW_d, nw);
	for (size_t i = 0; i < nx; i++)
		gx[i] -= 1.0f;
	fd_check("conv dx", conv_obj, &c, c.x, gx, nx, &op_linear);
	fd_check("conv dW", conv_obj, &c, c.W, gW, nw, &op_linear);
	bufs_free();
}

/*
 * The backend's own conv and conv_bwd (for "cpu", the direct kernels of
 * conv_direct.c) on shapes that are no multiple of the vector width: K
 * output channels, C input channels, odd image sizes.
 */
typedef struct conv_op_ctx {
	tt_conv_shape s;
	int K;
	size_t wsb;
	float *x, *W, *r, *y;
	float *x_d, *W_d, *y_d, *ws_d;
} conv_op_ctx;

static double conv_op_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	conv_op_ctx *c = ctx;
	size_t ny = (size_t)c->s.n * c->s.oh * c->s.ow * c->K;
	put(c->x_d, c->x, (size_t)c->s.n * c->s.h * c->s.w * c->s.c);
	put(c->W_d, c->W, (size_t)c->K * c->s.k * c->s.k * c->s.c);
	be->conv(c->x_d, &c->s, c->K, c->W_d, c->y_d, c->ws_d, c->wsb);
	get(c->y, c->y_d, ny);
	*pattern = 0;
	return dot(c->r, c->y, ny);
}

static void conv_op_case(int n, int h, int w, int C, int K, int k, int stride)
{
	conv_op_ctx c = { .s = { .n = n, .h = h, .w = w, .c = C, .k = k, .stride = stride,
	                         .pad = k / 2 }, .K = K };
	c.s.oh = (h + 2 * c.s.pad - k) / stride + 1;
	c.s.ow = (w + 2 * c.s.pad - k) / stride + 1;
	size_t nx = (size_t)n * h * w * C, nw = (size_t)K * k * k * C;
	size_t ny = (size_t)n * c.s.oh * c.s.ow * K;
	c.wsb = be->conv_ws(&c.s, K);
	c.x = hbuf(nx), c.W = hbuf(nw), c.r = hbuf(ny), c.y = hbuf(ny);
	c.x_d = dbuf(nx), c.W_d = dbuf(nw), c.y_d = dbuf(ny);
	c.ws_d = dbuf(c.wsb / sizeof(float) + 1);
	fill(c.x, nx, 0, 1), fill(c.W, nw, 0, 0.5f), fill(c.r, ny, 0, 1);
	uint64_t pat;
	conv_op_obj(&c, FD_FREE, &pat);
	float *r_d = dbuf(ny), *gx_d = dbuf(nx), *gW_d = dbuf(nw);
	float *gx = hbuf(nx), *gW = hbuf(nw);
	put(r_d, c.r, ny);
	/* dx accumulates (start from 1 and take it off), dW is assigned
	 * (start from garbage) */
	fill_const(gx, nx, 1.0f), fill_const(gW, nw, 5.0f);
	put(gx_d, gx, nx), put(gW_d, gW, nw);
	be->conv_bwd(c.x_d, r_d, &c.s, K, c.W_d, gW_d, gx_d, c.ws_d, c.wsb);
	get(gx, gx_d, nx), get(gW, gW_d, nw);
	for (size_t i = 0; i < nx; i++)
		gx[i] -= 1.0f;
	char what[64];
	snprintf(what, sizeof what, "conv op %dx%dx%d K%d k%d s%d dx", h, w, C, K, k, stride);
	fd_check(what, conv_op_obj, &c, c.x, gx, nx, &op_linear);
	snprintf(what, sizeof what, "conv op %dx%dx%d K%d k%d s%d dW", h, w, C, K, k, stride);
	fd_check(what, conv_op_obj, &c, c.W, gW, nw, &op_linear);
	bufs_free();
}

static void grad_conv_op(void)
{
	conv_op_case(2, 7, 6, 3, 5, 3, 1);
	conv_op_case(2, 7, 6, 3, 13, 3, 2);
	conv_op_case(1, 5, 7, 1, 9, 1, 2);
	conv_op_case(2, 5, 5, 11, 17, 3, 1);
}

static void grad_conv3x3_s1_p1(void) { conv_case(3, 1, 1); }
static void grad_conv3x3_s2_p1(void) { conv_case(3, 2, 1); }
static void grad_conv1x1_s2_p0(void) { conv_case(1, 2, 0); }

/* batch norm over x (rows, c), optionally with the fused ReLU */
typedef struct bn_ctx {
	int rows, c, relu;
	float *x, *gamma, *beta, *r, *y, *pre;
	float *x_d, *g_d, *b_d, *y_d, *pre_d;
	float *rm_d, *rv_d, *sm_d, *si_d, *sm2_d, *si2_d;
} bn_ctx;

static double bn_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	bn_ctx *c = ctx;
	size_t n = (size_t)c->rows * c->c;
	put(c->x_d, c->x, n);
	put(c->g_d, c->gamma, c->c);
	put(c->b_d, c->beta, c->c);
	be->bn_train(c->x_d, c->rows, c->c, c->g_d, c->b_d, BN_MOMENTUM, BN_EPS,
	             c->rm_d, c->rv_d, c->sm_d, c->si_d, c->relu, c->y_d);
	get(c->y, c->y_d, n);
	*pattern = 0;
	if (c->relu) {
		/* the same normalisation without the ReLU gives its signs */
		be->bn_train(c->x_d, c->rows, c->c, c->g_d, c->b_d, BN_MOMENTUM,
		             BN_EPS, c->rm_d, c->rv_d, c->sm2_d, c->si2_d, 0, c->pre_d);
		get(c->pre, c->pre_d, n);
		*pattern = hash_signs(c->pre, n);
	}
	return dot(c->r, c->y, n);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* mean and biased variance of channel j, in double */
static void bn_moments(const bn_ctx *c, int j, double *mean, double *var)
{
	double s = 0, ss = 0;
	for (int i = 0; i < c->rows; i++)
		s += c->x[i * c->c + j];
	*mean = s / c->rows;
	for (int i = 0; i < c->rows; i++) {
		double d = c->x[i * c->c + j] - *mean;
		ss += d * d;
	}
	*var = ss / c->rows;
}

/*
 * For the fused ReLU: beta of each channel puts 0 in the middle of the
 * widest gap between neighbouring values of gamma*xhat near 0, so no
 * pre-activation lies within any step of the kink.
 */
static void bn_beta_in_gap(bn_ctx *c)
{
	double *v = malloc(c->rows * sizeof *v);
	TT_ASSERT(v);
	for (int j = 0; j < c->c; j++) {
		double mean, var;
		bn_moments(c, j, &mean, &var);
		for (int i = 0; i < c->rows; i++)
			v[i] = c->gamma[j] * (c->x[i * c->c + j] - mean) / sqrt(var + BN_EPS);
		qsort(v, c->rows, sizeof *v, cmp_double);
		double best = -1, mid = 0;
		for (int i = 0; i + 1 < c->rows; i++) {
			double m = (v[i] + v[i + 1]) / 2;
			if (fabs(m) < 1 && v[i + 1] - v[i] > best) {
				best = v[i + 1] - v[i];
				mid = m;
			}
		}
		c->beta[j] = (float)-mid;
	}
	free(v);
}

static void bn_case(int relu)
{
	bn_ctx c = { .rows = 24, .c = 3, .relu = relu };
	size_t n = (size_t)c.rows * c.c;
	c.x = hbuf(n), c.gamma = hbuf(c.c), c.beta = hbuf(c.c), c.r = hbuf(n);
	c.y = hbuf(n), c.pre = hbuf(n);
	c.x_d = dbuf(n), c.g_d = dbuf(c.c), c.b_d = dbuf(c.c), c.y_d = dbuf(n);
	c.pre_d = dbuf(n), c.rm_d = dbuf(c.c), c.rv_d = dbuf(c.c);
	c.sm_d = dbuf(c.c), c.si_d = dbuf(c.c), c.sm2_d = dbuf(c.c), c.si2_d = dbuf(c.c);
	/* channels with their own offsets and spreads */
	for (int i = 0; i < c.rows; i++)
		for (int j = 0; j < c.c; j++)
			c.x[i * c.c + j] = 1.5f * j - 1 + (0.5f + j) * tt_rng_normal(&rng);
	fill(c.gamma, c.c, 1, 0.3f), fill(c.r, n, 0, 1);
	if (relu)
		bn_beta_in_gap(&c);
	else
		fill(c.beta, c.c, 0, 0.5f);

	/* forward and running statistics against double precision */
	float rm0[3], rv0[3], rm[3], rv[3];
	fill(rm0, 3, 0, 1), fill(rv0, 3, 1.5f, 0.2f);
	put(c.rm_d, rm0, 3), put(c.rv_d, rv0, 3);
	uint64_t pat;
	bn_obj(&c, FD_FREE, &pat);
	get(rm, c.rm_d, 3), get(rv, c.rv_d, 3);
	/* with relu, bn_obj runs bn_train twice: the running check is bn's */
	for (int j = 0; j < c.c && !relu; j++) {
		double mean, var;
		bn_moments(&c, j, &mean, &var);
		CHECK_CLOSE(rm[j], (1 - BN_MOMENTUM) * rm0[j] + BN_MOMENTUM * mean, 1e-6,
		            1e-5, "running mean");
		CHECK_CLOSE(rv[j], (1 - BN_MOMENTUM) * rv0[j] +
		            BN_MOMENTUM * var * c.rows / (c.rows - 1), 1e-6, 1e-5,
		            "running variance (unbiased)");
	}
	for (int j = 0; j < c.c; j++) {
		double mean, var;
		bn_moments(&c, j, &mean, &var);
		for (int i = 0; i < c.rows; i++) {
			double want = c.gamma[j] * (c.x[i * c.c + j] - mean) / sqrt(var + BN_EPS) +
			              c.beta[j];
			if (relu && want < 0)
				want = 0;
			CHECK_CLOSE(c.y[i * c.c + j], want, 1e-5, 1e-4, "bn forward");
		}
	}

	float *dy_d = dbuf(n), *gx_d = dbuf(n), *gg_d = dbuf(c.c), *gb_d = dbuf(c.c);
	float *gx = hbuf(n), *gg = hbuf(c.c), *gb = hbuf(c.c);
	put(dy_d, c.r, n);
	if (relu)
		be->relu_bwd(c.y_d, dy_d, n);
	/* dgamma, dbeta and dx are assigned (start from garbage) */
	fill_const(gg, c.c, 0.5f), fill_const(gb, c.c, 0.5f), fill_const(gx, n, 7.0f);
	put(gg_d, gg, c.c), put(gb_d, gb, c.c), put(gx_d, gx, n);
	be->bn_bwd(c.x_d, dy_d, c.rows, c.c, c.g_d, c.sm_d, c.si_d, gx_d, gg_d, gb_d);
	get(gx, gx_d, n), get(gg, gg_d, c.c), get(gb, gb_d, c.c);
	fd_check("bn dx", bn_obj, &c, c.x, gx, n, &op_curved);
	fd_check("bn dgamma", bn_obj, &c, c.gamma, gg, c.c, &op_curved);
	fd_check("bn dbeta", bn_obj, &c, c.beta, gb, c.c, &op_curved);

	/* without dx, dgamma and dbeta alone */
	float *gg2 = hbuf(c.c), *gb2 = hbuf(c.c);
	fill_const(gg2, c.c, -3.0f), fill_const(gb2, c.c, -3.0f);
	put(gg_d, gg2, c.c), put(gb_d, gb2, c.c);
	be->bn_bwd(c.x_d, dy_d, c.rows, c.c, c.g_d, c.sm_d, c.si_d, NULL, gg_d, gb_d);
	get(gg2, gg_d, c.c), get(gb2, gb_d, c.c);
	for (int j = 0; j < c.c; j++) {
		CHECK_CLOSE(gg2[j], gg[j], 1e-6, 1e-5, "bn dgamma with dx NULL");
		CHECK_CLOSE(gb2[j], gb[j], 1e-6, 1e-5, "bn dbeta with dx NULL");
	}
	bufs_free();
}

static void grad_bn(void) { bn_case(0); }
static void grad_bn_relu(void) { bn_case(1); }

/* relu and add_relu: y = relu(a [+ b]) over n values */
typedef struct relu_ctx {
	size_t n;
	int add;
	float *a, *b, *r, *y, *sum;
	float *a_d, *b_d;
} relu_ctx;

static double relu_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	relu_ctx *c = ctx;
	put(c->a_d, c->a, c->n);
	if (c->add) {
		put(c->b_d, c->b, c->n);
		be->add_relu(c->a_d, c->b_d, c->n);
		for (size_t i = 0; i < c->n; i++)
			c->sum[i] = c->a[i] + c->b[i];
		*pattern = hash_signs(c->sum, c->n);
	} else {
		be->relu(c->a_d, c->n);
		*pattern = hash_signs(c->a, c->n);
	}
	get(c->y, c->a_d, c->n);
	return dot(c->r, c->y, c->n);
}

static void relu_case(int add)
{
	relu_ctx c = { .n = 90, .add = add };
	c.a = hbuf(c.n), c.b = hbuf(c.n), c.r = hbuf(c.n), c.y = hbuf(c.n);
	c.sum = hbuf(c.n), c.a_d = dbuf(c.n), c.b_d = dbuf(c.n);
	fill(c.a, c.n, 0, 1), fill(c.r, c.n, 0, 1);
	if (add) {
		fill(c.b, c.n, 0, 1);
		for (size_t i = 0; i < c.n; i++)
			if (fabsf(c.a[i] + c.b[i]) < 0.1f)
				c.b[i] += c.a[i] + c.b[i] < 0 ? -0.2f : 0.2f;
	} else {
		nudge_from_zero(c.a, c.n, 0.1f);
	}
	uint64_t pat;
	relu_obj(&c, FD_FREE, &pat);
	for (size_t i = 0; i < c.n; i++) {
		float v = add ? c.a[i] + c.b[i] : c.a[i];
		CHECK(c.y[i] == (v > 0 ? v : 0), "relu forward [%zu]: %g of %g", i, c.y[i], v);
	}
	/* relu_bwd masks dy with the output: the gradient of a (and b) */
	float *dy_d = dbuf(c.n), *g = hbuf(c.n);
	put(dy_d, c.r, c.n);
	be->relu_bwd(c.a_d, dy_d, c.n);
	get(g, dy_d, c.n);
	fd_check(add ? "add_relu dy" : "relu dx", relu_obj, &c, c.a, g, c.n,
	         &op_linear);
	if (add)
		fd_check("add_relu dx", relu_obj, &c, c.b, g, c.n, &op_linear);
	bufs_free();
}

/* bias_relu: y (rows, c) = relu(a + b), b broadcast; its backward is
 * relu_bias_grad, which gives da (dy masked) and db at once */
typedef struct bias_relu_ctx {
	int rows, c;
	float *a, *b, *r, *y;
	float *a_d, *b_d;
} bias_relu_ctx;

static double bias_relu_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	bias_relu_ctx *c = ctx;
	size_t n = (size_t)c->rows * c->c;
	put(c->a_d, c->a, n);
	put(c->b_d, c->b, c->c);
	be->bias_relu(c->a_d, c->b_d, c->rows, c->c);
	for (size_t i = 0; i < n; i++)
		c->y[i] = c->a[i] + c->b[i % (size_t)c->c];
	*pattern = hash_signs(c->y, n);
	get(c->y, c->a_d, n);
	return dot(c->r, c->y, n);
}

static void grad_bias_relu(void)
{
	/* 13 channels: not a multiple of any vector width */
	bias_relu_ctx c = { .rows = 7, .c = 13 };
	size_t n = (size_t)c.rows * c.c;
	c.a = hbuf(n), c.b = hbuf(c.c), c.r = hbuf(n), c.y = hbuf(n);
	c.a_d = dbuf(n), c.b_d = dbuf(c.c);
	fill(c.a, n, 0, 1), fill(c.b, c.c, 0, 1), fill(c.r, n, 0, 1);
	/* keep every a + b away from the kink */
	for (size_t i = 0; i < n; i++) {
		float v = c.a[i] + c.b[i % (size_t)c.c];
		if (fabsf(v) < 0.1f)
			c.a[i] += v < 0 ? -0.2f : 0.2f;
	}
	uint64_t pat;
	bias_relu_obj(&c, FD_FREE, &pat);
	for (size_t i = 0; i < n; i++) {
		float v = c.a[i] + c.b[i % (size_t)c.c];
		CHECK(c.y[i] == (v > 0 ? v : 0), "bias_relu forward [%zu]: %g of %g", i,
		      c.y[i], v);
	}
	/* the output y_d is the ReLU's; db starts from garbage (assigned) */
	float *y_d = dbuf(n), *dy_d = dbuf(n), *db_d = dbuf(c.c);
	float *ga = hbuf(n), *gb = hbuf(c.c);
	put(y_d, c.y, n);
	put(dy_d, c.r, n);
	fill_const(gb, c.c, 7.0f);
	put(db_d, gb, c.c);
	be->relu_bias_grad(y_d, dy_d, c.rows, c.c, db_d);
	get(ga, dy_d, n), get(gb, db_d, c.c);
	fd_check("bias_relu da", bias_relu_obj, &c, c.a, ga, n, &op_linear);
	fd_check("bias_relu db", bias_relu_obj, &c, c.b, gb, c.c, &op_linear);
	bufs_free();
}

static void grad_relu(void) { relu_case(0); }
static void grad_add_relu(void) { relu_case(1); }

/* max and average pooling, k x k with stride, no padding */
typedef struct pool_ctx {
	int n, h, w, c, k, stride, oh, ow, max;
	float *x, *r, *y;
	float *x_d, *y_d;
} pool_ctx;

static size_t pool_in(const pool_ctx *c) { return (size_t)c->n * c->h * c->w * c->c; }
static size_t pool_out(const pool_ctx *c) { return (size_t)c->n * c->oh * c->ow * c->c; }

/* Index into x of window (b, oy, ox, ch)'s element (ky, kx). */
static size_t pool_at(const pool_ctx *c, int b, int oy, int ox, int ky, int kx, int ch)
{
	return (((size_t)b * c->h + oy * c->stride + ky) * c->w + ox * c->stride + kx) *
	       c->c + ch;
}

/* The pooling written out on the host: its output in want and the index
 * into x of every window's first maximum in args (pool_out values each;
 * either may be NULL); returns the hash of those indices. */
static uint64_t pool_host(const pool_ctx *c, double *want, size_t *args)
{
	uint64_t h = 1;
	size_t o = 0;
	for (int b = 0; b < c->n; b++)
		for (int oy = 0; oy < c->oh; oy++)
			for (int ox = 0; ox < c->ow; ox++)
				for (int ch = 0; ch < c->c; ch++, o++) {
					double s = 0, best = -INFINITY;
					size_t arg = 0;
					for (int ky = 0; ky < c->k; ky++)
						for (int kx = 0; kx < c->k; kx++) {
							size_t i = pool_at(c, b, oy, ox, ky, kx, ch);
							s += c->x[i];
							if (c->x[i] > best)
								best = c->x[i], arg = i;
						}
					if (want)
						want[o] = c->max ? best : s / (c->k * c->k);
					if (args)
						args[o] = arg;
					h = hash_mix(h, arg);
				}
	return h;
}

static double pool_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	pool_ctx *c = ctx;
	put(c->x_d, c->x, pool_in(c));
	if (c->max)
		be->maxpool(c->x_d, c->n, c->h, c->w, c->c, c->k, c->stride, c->y_d);
	else
		be->avgpool(c->x_d, c->n, c->h, c->w, c->c, c->k, c->stride, c->y_d);
	get(c->y, c->y_d, pool_out(c));
	*pattern = c->max ? pool_host(c, NULL, NULL) : 0;
	return dot(c->r, c->y, pool_out(c));
}

static void pool_case(int max, int h, int w, int k, int stride)
{
	pool_ctx c = { .n = 2, .h = h, .w = w, .c = 3, .k = k, .stride = stride,
	               .max = max };
	c.oh = (h - k) / stride + 1;
	c.ow = (w - k) / stride + 1;
	size_t nx = pool_in(&c), ny = pool_out(&c);
	c.x = hbuf(nx), c.r = hbuf(ny), c.y = hbuf(ny);
	c.x_d = dbuf(nx), c.y_d = dbuf(ny);
	/* max: values spaced 0.05 apart, far wider than the steps, so no two
	 * in a window tie and no step changes a winner */
	if (max)
		fill_distinct(c.x, nx, 0.05f);
	else
		fill(c.x, nx, 0, 1);
	fill(c.r, ny, 0, 1);
	uint64_t pat;
	pool_obj(&c, FD_FREE, &pat);
	double *want = malloc(ny * sizeof *want);
	TT_ASSERT(want);
	pool_host(&c, want, NULL);
	for (size_t o = 0; o < ny; o++)
		CHECK_CLOSE(c.y[o], want[o], 1e-6, 1e-5, max ? "maxpool forward" : "avgpool forward");
	free(want);

	float *r_d = dbuf(ny), *gx_d = dbuf(nx), *gx = hbuf(nx);
	put(r_d, c.r, ny);
	if (max) {
		/* maxpool_bwd assigns every dx: start from garbage */
		fill_const(gx, nx, 7.0f);
		put(gx_d, gx, nx);
		be->maxpool_bwd(c.x_d, r_d, c.n, c.h, c.w, c.c, c.k, c.stride, gx_d);
	} else {
		be->avgpool_bwd(r_d, c.n, c.h, c.w, c.c, c.k, c.stride, gx_d);
	}
	get(gx, gx_d, nx);
	fd_check(max ? "maxpool dx" : "avgpool dx", pool_obj, &c, c.x, gx, nx,
	         max ? &op_curved : &op_linear);
	bufs_free();
}

/* 7x5 leaves a row and a column outside every window */
static void grad_maxpool2x2_s2(void) { pool_case(1, 7, 5, 2, 2); }
static void grad_avgpool2x2_s2(void) { pool_case(0, 7, 6, 2, 2); }
static void grad_avgpool3x3_s1(void) { pool_case(0, 6, 5, 3, 1); }

/* Ties have no gradient to check, only the documented rule: the first
 * maximum of the window takes it all. */
static void maxpool_ties(void)
{
	static const float win[][4] = { { -2, -2, -2, -2 }, { 0, 3, 3, 1 }, { 0, 0, 0, 0 } };
	static const int first[] = { 0, 1, 0 };
	float *x_d = dbuf(4), *dy_d = dbuf(1), *dx_d = dbuf(4);
	float dy = 1.5f, dx[4];
	for (int t = 0; t < 3; t++) {
		put(x_d, win[t], 4);
		put(dy_d, &dy, 1);
		be->maxpool_bwd(x_d, dy_d, 1, 2, 2, 1, 2, 2, dx_d);
		get(dx, dx_d, 4);
		for (int i = 0; i < 4; i++)
			CHECK(dx[i] == (i == first[t] ? dy : 0.0f),
			      "window %d: dx[%d] = %g, the first maximum is %d", t, i, dx[i],
			      first[t]);
	}
	bufs_free();
}

/* global average pooling and the stride subsampling of 1x1 convolutions */
typedef struct spatial_ctx {
	int n, h, w, c, stride, oh, ow, gap;
	float *x, *r, *y;
	float *x_d, *y_d;
} spatial_ctx;

static size_t spatial_out(const spatial_ctx *c)
{
	return c->gap ? (size_t)c->n * c->c : (size_t)c->n * c->oh * c->ow * c->c;
}

static double spatial_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	spatial_ctx *c = ctx;
	put(c->x_d, c->x, (size_t)c->n * c->h * c->w * c->c);
	if (c->gap)
		be->gap(c->x_d, c->n, c->h * c->w, c->c, c->y_d);
	else
		be->subsample(c->x_d, c->n, c->h, c->w, c->c, c->stride, c->y_d);
	get(c->y, c->y_d, spatial_out(c));
	*pattern = 0;
	return dot(c->r, c->y, spatial_out(c));
}

static void spatial_case(int gap)
{
	spatial_ctx c = { .n = 3, .h = 7, .w = 6, .c = 4, .stride = 2, .gap = gap };
	c.oh = (c.h - 1) / c.stride + 1;
	c.ow = (c.w - 1) / c.stride + 1;
	size_t nx = (size_t)c.n * c.h * c.w * c.c, ny = spatial_out(&c);
	c.x = hbuf(nx), c.r = hbuf(ny), c.y = hbuf(ny);
	c.x_d = dbuf(nx), c.y_d = dbuf(ny);
	fill(c.x, nx, 0, 1), fill(c.r, ny, 0, 1);
	uint64_t pat;
	spatial_obj(&c, FD_FREE, &pat);
	size_t o = 0;
	for (int b = 0; b < c.n; b++) {
		if (gap) {
			for (int ch = 0; ch < c.c; ch++, o++) {
				double s = 0;
				for (int p = 0; p < c.h * c.w; p++)
					s += c.x[((size_t)b * c.h * c.w + p) * c.c + ch];
				CHECK_CLOSE(c.y[o], s / (c.h * c.w), 1e-6, 1e-5, "gap forward");
			}
			continue;
		}
		for (int oy = 0; oy < c.oh; oy++)
			for (int ox = 0; ox < c.ow; ox++)
				for (int ch = 0; ch < c.c; ch++, o++)
					CHECK(c.y[o] == c.x[(((size_t)b * c.h + oy * c.stride) * c.w +
					                     ox * c.stride) * c.c + ch],
					      "subsample forward [%zu]", o);
	}

	float *r_d = dbuf(ny), *gx_d = dbuf(nx), *gx = hbuf(nx);
	put(r_d, c.r, ny);
	if (gap)
		be->gap_bwd(r_d, c.n, c.h * c.w, c.c, gx_d);
	else
		be->subsample_bwd(r_d, c.n, c.h, c.w, c.c, c.stride, gx_d);
	get(gx, gx_d, nx);
	fd_check(gap ? "gap dx" : "subsample dx", spatial_obj, &c, c.x, gx, nx,
	         &op_linear);
	bufs_free();
}

static void grad_gap(void) { spatial_case(1); }
static void grad_subsample_s2(void) { spatial_case(0); }

/* softmax cross-entropy: L = the summed loss xent returns, each row
 * weighted by wt_d when it is not NULL */
typedef struct xent_ctx {
	int n, classes;
	float smoothing;
	float *z, *z_d;
	int *labels_d;
	const float *wt_d;
	int correct;
} xent_ctx;

static double xent_obj(void *ctx, int mode, uint64_t *pattern)
{
	(void)mode;
	xent_ctx *c = ctx;
	put(c->z_d, c->z, (size_t)c->n * c->classes);
	*pattern = 0;
	return be->xent(c->z_d, c->labels_d, c->n, c->classes, c->smoothing, c->wt_d,
	                1.0f, NULL, NULL, &c->correct);
}

static void xent_case(float smoothing)
{
	xent_ctx c = { .n = 6, .classes = 10, .smoothing = smoothing };
	size_t nz = (size_t)c.n * c.classes;
	int labels[6];
	c.z = hbuf(nz), c.z_d = dbuf(nz);
	c.labels_d = buf_keep(be->alloc(sizeof labels), 1);
	fill(c.z, nz, 0, 2);
	/* a row far from 0, where a softmax without its max taken off overflows */
	for (int j = 0; j < c.classes; j++)
		c.z[c.classes + j] += 80;
	for (int i = 0; i < c.n; i++)
		labels[i] = (int)tt_rng_below(&rng, (uint32_t)c.classes);
	labels[2] = 0; /* make one row right: its label is its argmax */
	for (int j = 1; j < c.classes; j++)
		if (c.z[2 * c.classes + j] > c.z[2 * c.classes + labels[2]])
			labels[2] = j;
	be->upload(c.labels_d, labels, sizeof labels);

	/* the loss of every row and the argmax count, directly:
	 * -sum_j t_j log p_j; per-example weights of both signs (a
	 * weighting network's need not be positive for the op) */
	double row[6], want = 0, want_w = 0;
	float wt[6];
	int right = 0;
	for (int i = 0; i < c.n; i++) {
		const float *z = c.z + (size_t)i * c.classes;
		double mx = z[0], se = 0;
		int arg = 0;
		for (int j = 1; j < c.classes; j++)
			if (z[j] > mx)
				mx = z[j], arg = j;
		for (int j = 0; j < c.classes; j++)
			se += exp(z[j] - mx);
		row[i] = 0;
		for (int j = 0; j < c.classes; j++) {
			double t = (double)smoothing / c.classes +
			           (j == labels[i] ? 1.0 - smoothing : 0.0);
			row[i] -= t * (z[j] - mx - log(se));
		}
		want += row[i];
		wt[i] = 0.25f + 0.5f * (float)i - (i == 3 ? 2.0f : 0.0f);
		want_w += wt[i] * row[i];
		right += arg == labels[i];
	}
	uint64_t pat;
	double loss = xent_obj(&c, FD_FREE, &pat);
	CHECK_CLOSE(loss, want, 1e-9, 1e-9, "xent loss");
	CHECK(c.correct == right, "correct: got %d, expected %d", c.correct, right);

	float *dz_d = dbuf(nz), *dz = hbuf(nz), *dz4 = hbuf(nz);
	float *per_d = dbuf((size_t)c.n), *per = hbuf((size_t)c.n);
	int correct = -1;
	double loss_g = be->xent(c.z_d, c.labels_d, c.n, c.classes, smoothing, NULL, 1.0f,
	                         dz_d, per_d, &correct);
	get(dz, dz_d, nz);
	get(per, per_d, (size_t)c.n);
	CHECK_CLOSE(loss_g, loss, 0, 1e-12, "xent loss with dlogits");
	CHECK(correct == right, "correct with dlogits: got %d, expected %d", correct, right);
	for (int i = 0; i < c.n; i++)
		CHECK_CLOSE(per[i], row[i], 1e-6, 1e-6, "per-example loss");
	be->xent(c.z_d, c.labels_d, c.n, c.classes, smoothing, NULL, 0.25f, dz_d, NULL,
	         NULL);
	get(dz4, dz_d, nz);
	for (size_t i = 0; i < nz; i++)
		CHECK_CLOSE(dz4[i], 0.25 * dz[i], 1e-9, 1e-6, "dlogits with scale 0.25");
	fd_check("xent dlogits", xent_obj, &c, c.z, dz, nz, &op_curved);

	/* weights of 1 are no weights, bit for bit: one code path */
	float ones[6] = { 1, 1, 1, 1, 1, 1 }, *wt_d = dbuf((size_t)c.n);
	float *dz1_d = dbuf(nz), *dz1 = hbuf(nz);
	put(wt_d, ones, (size_t)c.n);
	double loss_1 = be->xent(c.z_d, c.labels_d, c.n, c.classes, smoothing, wt_d,
	                         1.0f, dz1_d, NULL, NULL);
	get(dz1, dz1_d, nz);
	CHECK(loss_1 == loss, "weights of 1: loss %.17g, without weights %.17g", loss_1,
	      loss);
	CHECK(memcmp(dz1, dz, nz * sizeof *dz) == 0,
	      "weights of 1: dlogits differ from those without weights");

	/* weighted: the loss, the per-example losses (unweighted) and the
	 * gradient of sum_i wt_i loss_i, times scale */
	put(wt_d, wt, (size_t)c.n);
	c.wt_d = wt_d;
	double loss_w = xent_obj(&c, FD_FREE, &pat);
	CHECK_CLOSE(loss_w, want_w, 1e-9, 1e-9, "weighted xent loss");
	float *dzw_d = dbuf(nz), *dzw = hbuf(nz);
	fill_const(per, (size_t)c.n, -1.0f);
	put(per_d, per, (size_t)c.n);
	correct = -1;
	double loss_wg = be->xent(c.z_d, c.labels_d, c.n, c.classes, smoothing, wt_d,
	                          1.0f, dzw_d, per_d, &correct);
	CHECK_CLOSE(loss_wg, loss_w, 0, 1e-12, "weighted xent loss with dlogits");
	CHECK(correct == right, "weighted correct: got %d, expected %d", correct, right);
	get(per, per_d, (size_t)c.n);
	for (int i = 0; i < c.n; i++)
		CHECK_CLOSE(per[i], row[i], 1e-6, 1e-6, "per-example loss, weighted");
	get(dzw, dzw_d, nz);
	fd_check("weighted xent dlogits", xent_obj, &c, c.z, dzw, nz, &op_curved);
	be->xent(c.z_d, c.labels_d, c.n, c.classes, smoothing, wt_d, 0.25f, dzw_d, NULL,
	         NULL);
	get(dz4, dzw_d, nz);
	for (size_t i = 0; i < nz; i++)
		CHECK_CLOSE(dz4[i], 0.25 * dzw[i], 1e-9, 1e-6, "weighted dlogits with scale 0.25");
	bufs_free();
}

static void grad_xent(void) { xent_case(0.0f); }
static void grad_xent_smoothing(void) { xent_case(0.1f); }

/* ---- B. whole models --------------------------------------------------- */

#define MODEL_H 8
#define MODEL_CLASSES 10
#define MODEL_BATCH 4
#define MODEL_SEED 12345
#define MODEL_IN (MODEL_BATCH * MODEL_H * MODEL_H) /* input floats, 1 channel */
#define MAX_TENSORS 64
#define NELEM(a) ((int)(sizeof(a) / sizeof(a)[0]))

/* One layer of model.h's documented layout: a dense layer, W (out, in)
 * then b (out); or a conv layer, W (out, k, k, in) then BN gamma and beta
 * (out each). */
typedef struct layer_desc {
	int stage;
	int conv;
	int out, k, in;
} layer_desc;

/* mlp:16,8 on 8x8x1: fc1, fc2, head */
static const layer_desc mlp_layers[] = {
	{ 0, 0, 16, 0, 64 }, { 1, 0, 8, 0, 16 }, { 2, 0, 10, 0, 8 },
};
/* cnn:4,4: stem, conv1, conv2 (each conv+BN), head (GAP + dense) */
static const layer_desc cnn_layers[] = {
	{ 0, 1, 4, 3, 1 }, { 1, 1, 4, 3, 4 }, { 2, 1, 4, 3, 4 }, { 3, 0, 10, 0, 4 },
};
/* resnet:1,1:w4: stem; b1.1 identity block (conv1, conv2); b2.1 with
 * stride 2 and 4 -> 8 channels (conv1, conv2, 1x1 projection); head */
static const layer_desc resnet_layers[] = {
	{ 0, 1, 4, 3, 1 },
	{ 1, 1, 4, 3, 4 }, { 1, 1, 4, 3, 4 },
	{ 2, 1, 8, 3, 4 }, { 2, 1, 8, 3, 8 }, { 2, 1, 8, 1, 4 },
	{ 3, 0, 10, 0, 8 },
};

/*
 * The models run on watch_be: the cpu backend's table with the five
 * operations that make a decision (relu, bn_train with its fused ReLU,
 * add_relu, bias_relu, maxpool) wrapped.  With watch_mode FD_FREE or FD_RECORD each
 * wrapper hashes the decision it is about to make (the signs of its
 * pre-activations, the first maximum of each window) into watch_hash,
 * FD_RECORD also keeps it, and then the cpu operation itself runs: the
 * values are exactly the cpu backend's.  With FD_PINNED the wrapper
 * applies the kept decisions instead (a unit kept on passes its
 * pre-activation even if negative now, a window passes its kept winner).
 * Outside an objective watch_on is 0 and the wrappers only delegate.
 */
#define WATCH_CALLS 64 /* deciding calls per forward */

typedef struct watch_rec {
	size_t n, cap;
	unsigned char *on;   /* ReLU: unit i passes */
	size_t *arg;         /* max-pool: output i takes x[arg[i]] */
} watch_rec;

static tt_backend watch_be;
static int watch_on, watch_mode, watch_call;
static uint64_t watch_hash;
static watch_rec watch_recs[WATCH_CALLS];
static float *watch_buf[2];     /* host copies of device tensors */
static size_t watch_cap[2];
static float *watch_dev;        /* device scratch for bn_train */
static size_t watch_dev_cap;

/* A host copy of n device floats (dev may be NULL: just the room). */
static float *watch_fetch(int slot, const float *dev, size_t n)
{
	if (n > watch_cap[slot]) {
		free(watch_buf[slot]);
		watch_buf[slot] = malloc(n * sizeof(float));
		TT_ASSERT(watch_buf[slot]);
		watch_cap[slot] = n;
	}
	if (dev)
		be->download(watch_buf[slot], dev, n * sizeof(float));
	return watch_buf[slot];
}

/* The record of this forward's next deciding call, of n decisions. */
static watch_rec *watch_next(size_t n)
{
	TT_ASSERT(watch_call < WATCH_CALLS);
	watch_rec *r = &watch_recs[watch_call++];
	if (watch_mode == FD_RECORD && n > r->cap) {
		free(r->on);
		free(r->arg);
		r->on = malloc(n);
		r->arg = malloc(n * sizeof *r->arg);
		TT_ASSERT(r->on && r->arg);
		r->cap = n;
	}
	if (watch_mode == FD_RECORD)
		r->n = n;
	TT_ASSERT(r->n == n); /* a forward makes the same calls every time */
	return r;
}

/*
 * A ReLU on the host pre-activations v[0..n): hashes (and records) the
 * signs, or with FD_PINNED applies the recorded ones to v and returns 1,
 * after which the caller uploads v as the output.
 */
static int watch_relu_decide(float *v, size_t n)
{
	watch_rec *r = watch_next(n);
	if (watch_mode == FD_PINNED) {
		for (size_t i = 0; i < n; i++)
			if (!r->on[i])
				v[i] = 0.0f;
		return 1;
	}
	watch_hash = hash_mix(watch_hash, hash_signs(v, n));
	if (watch_mode == FD_RECORD)
		for (size_t i = 0; i < n; i++)
			r->on[i] = v[i] > 0.0f;
	return 0;
}

static void watch_relu(float *y, size_t n)
{
	if (watch_on) {
		float *v = watch_fetch(0, y, n);
		if (watch_relu_decide(v, n)) {
			be->upload(y, v, n * sizeof *v);
			return;
		}
	}
	be->relu(y, n);
}

static void watch_add_relu(float *y, const float *x, size_t n)
{
	if (watch_on) {
		float *a = watch_fetch(0, y, n);
		const float *b = watch_fetch(1, x, n);
		for (size_t i = 0; i < n; i++)
			a[i] += b[i];
		if (watch_relu_decide(a, n)) {
			be->upload(y, a, n * sizeof *a);
			return;
		}
	}
	be->add_relu(y, x, n);
}

static void watch_bias_relu(float *y, const float *b, int rows, int c)
{
	if (watch_on) {
		size_t n = (size_t)rows * c;
		float *v = watch_fetch(0, y, n);
		const float *bh = watch_fetch(1, b, (size_t)c);
		for (size_t i = 0; i < n; i++)
			v[i] += bh[i % (size_t)c];
		if (watch_relu_decide(v, n)) {
			be->upload(y, v, n * sizeof *v);
			return;
		}
	}
	be->bias_relu(y, b, rows, c);
}

static void watch_bn_train(const float *x, int rows, int c, const float *gamma,
                           const float *beta, float momentum, float eps,
                           float *run_mean, float *run_var, float *save_mean,
                           float *save_istd, int relu, float *y)
{
	size_t n = (size_t)rows * c;
	if (watch_on && relu && watch_mode == FD_PINNED) {
		be->bn_train(x, rows, c, gamma, beta, momentum, eps, run_mean, run_var,
		             save_mean, save_istd, 0, y);
		float *v = watch_fetch(0, y, n);
		watch_relu_decide(v, n);
		be->upload(y, v, n * sizeof *v);
		return;
	}
	if (watch_on && relu) {
		/* the same normalisation without the ReLU, into scratch (before
		 * the real call: frozen stages normalise in place) */
		size_t need = n + 4 * (size_t)c;
		if (need > watch_dev_cap) {
			be->free(watch_dev);
			watch_dev = be->alloc(need * sizeof(float));
			TT_ASSERT(watch_dev);
			watch_dev_cap = need;
		}
		float *s = watch_dev + n;
		be->bn_train(x, rows, c, gamma, beta, momentum, eps, s, s + c, s + 2 * c,
		             s + 3 * c, 0, watch_dev);
		watch_relu_decide(watch_fetch(0, watch_dev, n), n);
	}
	be->bn_train(x, rows, c, gamma, beta, momentum, eps, run_mean, run_var,
	             save_mean, save_istd, relu, y);
}

static void watch_maxpool(const float *x, int n, int h, int w, int c, int k,
                          int stride, float *y)
{
	if (watch_on) {
		pool_ctx pc = { .n = n, .h = h, .w = w, .c = c, .k = k, .stride = stride,
		                .max = 1 };
		pc.oh = (h - k) / stride + 1;
		pc.ow = (w - k) / stride + 1;
		size_t ny = pool_out(&pc);
		pc.x = watch_fetch(0, x, pool_in(&pc));
		watch_rec *r = watch_next(ny);
		if (watch_mode == FD_PINNED) {
			float *v = watch_fetch(1, NULL, ny);
			for (size_t o = 0; o < ny; o++)
				v[o] = pc.x[r->arg[o]];
			be->upload(y, v, ny * sizeof *v);
			return;
		}
		watch_hash = hash_mix(watch_hash, pool_host(&pc, NULL,
		                      watch_mode == FD_RECORD ? r->arg : NULL));
	}
	be->maxpool(x, n, h, w, c, k, stride, y);
}

static void watch_init(void)
{
	watch_be = *be;
	watch_be.name = "cpu-watched";
	watch_be.relu = watch_relu;
	watch_be.add_relu = watch_add_relu;
	watch_be.bias_relu = be->bias_relu ? watch_bias_relu : NULL;
	watch_be.bn_train = watch_bn_train;
	watch_be.maxpool = watch_maxpool;
}

static void watch_free(void)
{
	for (int i = 0; i < 2; i++)
		free(watch_buf[i]);
	for (int i = 0; i < WATCH_CALLS; i++) {
		free(watch_recs[i].on);
		free(watch_recs[i].arg);
	}
	be->free(watch_dev);
}

typedef struct tensor_desc {
	char name[48];
	int stage;
	size_t off, n;
} tensor_desc;

/* The tensors of layers in parameter order; returns their count. */
static int model_tensors(const layer_desc *l, int nl, tensor_desc *t)
{
	static const char *const conv_names[] = { "W", "gamma", "beta" };
	static const char *const dense_names[] = { "W", "b" };
	int nt = 0, per_stage = 0;
	size_t off = 0;
	for (int i = 0; i < nl; i++) {
		per_stage = i && l[i].stage == l[i - 1].stage ? per_stage + 1 : 0;
		size_t len[3] = { (size_t)l[i].out * l[i].in * (l[i].conv ? l[i].k * l[i].k : 1),
		                  (size_t)l[i].out, (size_t)l[i].out };
		for (int j = 0; j < (l[i].conv ? 3 : 2); j++) {
			TT_ASSERT(nt < MAX_TENSORS);
			snprintf(t[nt].name, sizeof t[nt].name, "stage %d %s%d %s", l[i].stage,
			         l[i].conv ? "conv" : "dense", per_stage + 1,
			         l[i].conv ? conv_names[j] : dense_names[j]);
			t[nt].stage = l[i].stage;
			t[nt].off = off;
			t[nt].n = len[j];
			off += len[j];
			nt++;
		}
	}
	return nt;
}

typedef struct model_ctx {
	tt_model *m;
	float *hp;          /* every parameter, perturbed in place */
	size_t np;
	float smoothing;
	const float *x_d;
	const int *labels_d;
	/* With w: the weights by pointer (see model_check_foreign); hp goes
	 * to w->params and, when suffix_d, its trainable part to suffix_d,
	 * never to the model's own buffer. */
	const tt_model_weights *w;
	float *params_d, *suffix_d;
	/* With wt (host, MODEL_BATCH floats) the loss is tt_model_loss_ex's
	 * sum_i wt_i loss_i; with hx (host, the batch's inputs, perturbed in
	 * place) the inputs go up to x_d, tt_model_input, first. */
	const float *wt;
	float *hx;
} model_ctx;

static double model_obj(void *ctx, int mode, uint64_t *pattern)
{
	model_ctx *c = ctx;
	if (c->w) {
		size_t toff = tt_model_trainable_offset(c->m);
		be->upload(c->params_d, c->hp, c->np * sizeof *c->hp);
		if (c->suffix_d)
			be->upload(c->suffix_d, c->hp + toff, (c->np - toff) * sizeof *c->hp);
	} else {
		be->upload(tt_model_params(c->m), c->hp, c->np * sizeof *c->hp);
	}
	if (c->hx)
		be->upload(tt_model_input(c->m), c->hx, MODEL_IN * sizeof *c->hx);
	watch_on = 1;
	watch_mode = mode;
	watch_call = 0;
	watch_hash = 1;
	tt_model_forward_on(c->m, c->w, c->x_d, MODEL_BATCH, 1);
	watch_on = 0;
	*pattern = watch_hash;
	if (c->wt)
		return tt_model_loss_ex(c->m, c->labels_d, MODEL_BATCH, c->smoothing, c->wt,
		                        0, NULL, NULL);
	return tt_model_loss(c->m, c->labels_d, MODEL_BATCH, c->smoothing, 0, NULL);
}

static tt_model *model_make(const char *spec, int trainable, int input_grad)
{
	tt_model_config cfg = { .spec = spec, .h = MODEL_H, .w = MODEL_H, .c = 1,
	                        .classes = MODEL_CLASSES, .batch = MODEL_BATCH,
	                        .trainable = trainable, .optim_slots = 0,
	                        .seed = MODEL_SEED, .be = &watch_be,
	                        .input_grad = input_grad };
	tt_model *m = NULL;
	tt_err err = { 0 };
	int rc = tt_model_create(&cfg, &m, &err);
	CHECK(rc == TT_OK, "%s: %s", spec, err.msg);
	return rc == TT_OK ? m : NULL;
}

static tt_model *model_new(const char *spec, int trainable)
{
	return model_make(spec, trainable, 0);
}

/* A fixed batch (inputs and labels) in the model's own buffers. */
static void model_batch(tt_model *m)
{
	float x[MODEL_IN];
	int labels[MODEL_BATCH];
	tt_rng r;
	tt_rng_seed(&r, MODEL_SEED, TT_STREAM_SYNTH);
	for (size_t i = 0; i < sizeof x / sizeof *x; i++)
		x[i] = tt_rng_normal(&r);
	for (int i = 0; i < MODEL_BATCH; i++)
		labels[i] = (int)tt_rng_below(&r, MODEL_CLASSES);
	be->upload(tt_model_input(m), x, sizeof x);
	be->upload(tt_model_labels(m), labels, sizeof labels);
}

/* The analytic gradient of the trainable suffix after a train forward,
 * into a new host array of ntrainable floats; the loss weighted by wt
 * (tt_model_loss_ex) when it is not NULL. */
static float *model_grads_wt(tt_model *m, float smoothing, const float *wt)
{
	size_t nt = tt_model_ntrainable(m);
	float *g = malloc((nt ? nt : 1) * sizeof *g);
	TT_ASSERT(g);
	tt_model_forward(m, tt_model_input(m), MODEL_BATCH, 1);
	if (wt)
		tt_model_loss_ex(m, tt_model_labels(m), MODEL_BATCH, smoothing, wt, 1, NULL,
		                 NULL);
	else
		tt_model_loss(m, tt_model_labels(m), MODEL_BATCH, smoothing, 1, NULL);
	tt_model_backward(m);
	be->download(g, tt_model_grads(m), nt * sizeof *g);
	return g;
}

static float *model_grads(tt_model *m, float smoothing)
{
	return model_grads_wt(m, smoothing, NULL);
}

/*
 * Check a model's layout against layers, then central differences of the
 * loss in up to FD_MODEL_SAMPLES elements of every trainable tensor
 * against tt_model_grads.  The model runs on watch_be, so steps that flip
 * a decision are taken again pinned (see fd_check).
 */
static void model_check_wt(const char *spec, const layer_desc *layers, int nl,
                           int trainable, float smoothing, const float *wt)
{
	tt_model *m = model_new(spec, trainable);
	if (!m)
		return;
	tensor_desc t[MAX_TENSORS];
	int nt = model_tensors(layers, nl, t);
	int ns = tt_model_stages(m);
	size_t np = tt_model_nparams(m), toff = tt_model_trainable_offset(m);

	/* the documented layout, stage by stage */
	CHECK(t[nt - 1].off + t[nt - 1].n == np, "%s: %zu parameters, the layout has %zu",
	      spec, np, t[nt - 1].off + t[nt - 1].n);
	CHECK(t[nt - 1].stage == ns - 1, "%s: %d stages, the layout has %d", spec, ns,
	      t[nt - 1].stage + 1);
	for (int s = 0; s < ns; s++) {
		size_t off, count, first = SIZE_MAX, sum = 0;
		tt_model_stage_params(m, s, &off, &count);
		for (int i = 0; i < nt; i++)
			if (t[i].stage == s) {
				if (first == SIZE_MAX)
					first = t[i].off;
				sum += t[i].n;
			}
		CHECK(off == first && count == sum,
		      "%s stage %d: params [%zu, +%zu), the layout has [%zu, +%zu)", spec, s,
		      off, count, first, sum);
	}
	CHECK(tt_model_ntrainable(m) == np - toff, "%s: ntrainable %zu, nparams %zu, offset %zu",
	      spec, tt_model_ntrainable(m), np, toff);
	if (tt_case_failed) {
		tt_model_free(m);
		return;
	}

	model_batch(m);
	float *g = model_grads_wt(m, smoothing, wt);
	model_ctx c = { .m = m, .np = np, .smoothing = smoothing,
	                .x_d = tt_model_input(m), .labels_d = tt_model_labels(m),
	                .wt = wt };
	c.hp = malloc(np * sizeof *c.hp);
	TT_ASSERT(c.hp);
	be->download(c.hp, tt_model_params(m), np * sizeof *c.hp);
	char what[160];
	for (int i = 0; i < nt; i++) {
		if (t[i].off < toff)
			continue; /* frozen: no gradient */
		snprintf(what, sizeof what, "%.64s%s %.48s", spec, wt ? " weighted" : "",
		         t[i].name);
		fd_check(what, model_obj, &c, c.hp + t[i].off, g + (t[i].off - toff), t[i].n,
		         &model_opts);
	}
	free(c.hp);
	free(g);
	tt_model_free(m);
}

static void model_check(const char *spec, const layer_desc *layers, int nl,
                        int trainable, float smoothing)
{
	model_check_wt(spec, layers, nl, trainable, smoothing, NULL);
}

static void grad_model_mlp(void)
{
	model_check("mlp:16,8", mlp_layers, NELEM(mlp_layers), 0, 0.0f);
}

static void grad_model_cnn(void)
{
	model_check("cnn:4,4", cnn_layers, NELEM(cnn_layers), 0, 0.0f);
}

static void grad_model_resnet(void)
{
	model_check("resnet:1,1:w4", resnet_layers, NELEM(resnet_layers), 0, 0.0f);
}

static void grad_model_cnn_smoothing(void)
{
	model_check("cnn:4,4", cnn_layers, NELEM(cnn_layers), 0, 0.1f);
}

/*
 * trainable = 2: only b2.1 and the head learn.  The gradient buffer holds
 * exactly nparams - (offset of stage n-2) values, they pass the
 * finite-difference check, and they equal the same suffix of the fully
 * trainable model's gradient (same seed, same batch: the frozen prefix
 * computes the same forward).
 */
static void grad_model_resnet_frozen(void)
{
	const char *spec = "resnet:1,1:w4";
	tt_model *m = model_new(spec, 2), *full = model_new(spec, 0);
	if (!m || !full) {
		tt_model_free(m);
		tt_model_free(full);
		return;
	}
	int ns = tt_model_stages(m);
	size_t off, count;
	tt_model_stage_params(m, ns - 2, &off, &count);
	CHECK(tt_model_trainable(m) == 2, "trainable %d", tt_model_trainable(m));
	CHECK(tt_model_trainable_offset(m) == off, "offset %zu, stage %d starts at %zu",
	      tt_model_trainable_offset(m), ns - 2, off);
	CHECK(tt_model_ntrainable(m) == tt_model_nparams(m) - off,
	      "ntrainable %zu, expected %zu", tt_model_ntrainable(m),
	      tt_model_nparams(m) - off);
	tt_stage_mem sm;
	size_t gbytes = 0;
	for (int s = 0; s < ns; s++) {
		tt_model_stage_mem(m, s, &sm);
		CHECK(sm.frozen == (s < ns - 2), "stage %d frozen %d", s, sm.frozen);
		gbytes += sm.grads;
	}
	CHECK(gbytes == tt_model_ntrainable(m) * sizeof(float),
	      "gradient bytes booked %zu, expected %zu", gbytes,
	      tt_model_ntrainable(m) * sizeof(float));

	model_batch(m);
	model_batch(full);
	float *g = model_grads(m, 0.0f), *gf = model_grads(full, 0.0f);
	size_t nt = tt_model_ntrainable(m), foff = tt_model_nparams(full) - nt;
	int bad = 0;
	for (size_t i = 0; i < nt; i++) {
		double a = g[i], b = gf[foff + i];
		int close = fabs(a - b) <= 1e-6 + 1e-4 * fabs(b);
		if (!close && bad++ < FD_PRINT)
			CHECK(close, "suffix gradient [%zu]: frozen model %.7g, full model %.7g",
			      i, a, b);
	}
	CHECK(bad == 0, "%d suffix gradients differ from the full model's", bad);
	free(g);
	free(gf);
	tt_model_free(full);
	tt_model_free(m);

	model_check(spec, resnet_layers, NELEM(resnet_layers), 2, 0.0f);
}

/*
 * Weights by pointer: the same check with the loss a function of a
 * parameter buffer that is not the model's.  The model's own parameters
 * are scaled by -0.5 first, so a forward that read any of them (prefix
 * or suffix) would compute another function and fail; the gradients go
 * to a caller buffer, and the model's own gradient buffer, filled with a
 * marker, must keep it.  With suffix, the trainable stages read a second
 * buffer of ntrainable floats, the frozen prefix the full vector.
 */
static void model_check_foreign(const char *spec, const layer_desc *layers, int nl,
                                int trainable, int suffix)
{
	tt_model *m = model_new(spec, trainable);
	if (!m)
		return;
	tensor_desc t[MAX_TENSORS];
	int nt = model_tensors(layers, nl, t);
	size_t np = tt_model_nparams(m), toff = tt_model_trainable_offset(m);
	size_t ntr = np - toff;
	model_batch(m);
	model_ctx c = { .m = m, .np = np, .x_d = tt_model_input(m),
	                .labels_d = tt_model_labels(m) };
	c.hp = malloc(np * sizeof *c.hp);
	float *own = malloc(np * sizeof *own), *g = malloc(ntr * sizeof *g);
	float *mark = malloc(ntr * sizeof *mark);
	TT_ASSERT(c.hp && own && g && mark);
	be->download(c.hp, tt_model_params(m), np * sizeof *c.hp);
	for (size_t i = 0; i < np; i++)
		own[i] = -0.5f * c.hp[i];
	be->upload(tt_model_params(m), own, np * sizeof *own);
	for (size_t i = 0; i < ntr; i++)
		mark[i] = 1234.5f;
	be->upload(tt_model_grads(m), mark, ntr * sizeof *mark);
	tt_model_weights w = { 0 };
	c.params_d = be->alloc(np * sizeof(float));
	c.suffix_d = suffix ? be->alloc(ntr * sizeof(float)) : NULL;
	float *g_d = be->alloc(ntr * sizeof(float));
	TT_ASSERT(c.params_d && g_d && (!suffix || c.suffix_d));
	w.params = c.params_d;
	w.suffix = c.suffix_d;
	c.w = &w;

	uint64_t pat;
	model_obj(&c, FD_RECORD, &pat); /* the forward whose gradient is checked */
	tt_model_loss(m, c.labels_d, MODEL_BATCH, 0.0f, 1, NULL);
	tt_model_backward_into(m, g_d);
	be->download(g, g_d, ntr * sizeof *g);
	char what[160];
	for (int i = 0; i < nt; i++) {
		if (t[i].off < toff)
			continue;
		snprintf(what, sizeof what, "%.64s foreign%s %.48s", spec,
		         suffix ? " suffix" : "", t[i].name);
		fd_check(what, model_obj, &c, c.hp + t[i].off, g + (t[i].off - toff), t[i].n,
		         &model_opts);
	}
	float *back = malloc(np * sizeof *back);
	TT_ASSERT(back);
	be->download(back, tt_model_params(m), np * sizeof *back);
	CHECK(memcmp(back, own, np * sizeof *own) == 0,
	      "%s: the model's own parameters changed", spec);
	be->download(back, tt_model_grads(m), ntr * sizeof *back);
	CHECK(memcmp(back, mark, ntr * sizeof *mark) == 0,
	      "%s: the model's own gradient buffer was written", spec);
	free(back);
	be->free(c.params_d);
	be->free(c.suffix_d);
	be->free(g_d);
	free(c.hp);
	free(own);
	free(g);
	free(mark);
	tt_model_free(m);
}

static void grad_model_mlp_foreign(void)
{
	model_check_foreign("mlp:16,8", mlp_layers, NELEM(mlp_layers), 0, 0);
}

static void grad_model_resnet_frozen_foreign(void)
{
	model_check_foreign("resnet:1,1:w4", resnet_layers, NELEM(resnet_layers), 2, 1);
}

/*
 * The input gradient of c's model (built with input_grad; c->hp holding
 * its parameters) against central differences of the loss (c->wt's
 * weighted one when set) in the batch's input elements, perturbed in
 * the model's input buffer.  tt_model_input_grad is NULL before the
 * backward and again after the next forward.
 */
static void input_fd(model_ctx *c, const char *what)
{
	tt_model *m = c->m;
	float *hx = malloc(MODEL_IN * sizeof *hx), *gx = malloc(MODEL_IN * sizeof *gx);
	TT_ASSERT(hx && gx);
	be->download(hx, tt_model_input(m), MODEL_IN * sizeof *hx);
	be->upload(tt_model_params(m), c->hp, c->np * sizeof *c->hp);
	tt_model_forward(m, tt_model_input(m), MODEL_BATCH, 1);
	CHECK(tt_model_input_grad(m) == NULL, "%s: an input gradient before backward", what);
	tt_model_loss_ex(m, tt_model_labels(m), MODEL_BATCH, c->smoothing, c->wt, 1, NULL,
	                 NULL);
	tt_model_backward(m);
	const float *gx_d = tt_model_input_grad(m);
	CHECK(gx_d != NULL, "%s: no input gradient after backward", what);
	if (gx_d) {
		be->download(gx, gx_d, MODEL_IN * sizeof *gx);
		c->hx = hx;
		fd_check(what, model_obj, c, hx, gx, MODEL_IN, &model_opts);
		c->hx = NULL;
		CHECK(tt_model_input_grad(m) == NULL, "%s: an input gradient after a forward",
		      what);
	}
	free(hx);
	free(gx);
}

/* ---- C. gated models ----------------------------------------------------- */

/*
 * A gated model (methods.md section 4) with a fixed mask: some unit gates
 * 0, a layer gate on or off, optionally after pruning and compaction (so
 * narrowed convolutions, a branch scattered onto its stream's channels,
 * dense layers with columns removed).  Its weight gradients must pass
 * the same finite-difference check as an ungated model's, stage by stage
 * (every tensor of a stage shares one scale), and the score of every
 * gate sampled 1 must be d loss / d (its multiplier): a unit gate's
 * multiplier is its mask; a layer gate's scales its branch's output, so
 * its score is the derivative along every u2 mask of the block at once.
 */
typedef struct score_ctx {
	model_ctx *mc;
	int n;
	int *gate;          /* the gates checked */
	int *layer_u2;      /* per checked gate: its block's u2 (first, count)
	                     * for a layer gate; -1 for a unit gate */
	int *u2_count;
	float *mult;        /* the multipliers, perturbed by fd_check */
	float *base;        /* the mask as set */
} score_ctx;

static double score_obj(void *ctx, int mode, uint64_t *pattern)
{
	score_ctx *c = ctx;
	float *mask = tt_model_gate_mask(c->mc->m);
	/* units first, then a layer's multiplier over its u2 */
	for (int k = 0; k < c->n; k++)
		if (c->layer_u2[k] < 0)
			mask[c->gate[k]] = c->mult[k];
	for (int k = 0; k < c->n; k++)
		for (int j = 0; j < c->u2_count[k]; j++)
			mask[c->layer_u2[k] + j] *= c->mult[k];
	double l = model_obj(c->mc, mode, pattern);
	memcpy(mask, c->base, (size_t)tt_model_gates(c->mc->m) * sizeof *mask);
	return l;
}

/* Prune units (and compact) so every kind of narrowing is there. */
static void gated_prune(tt_model *m)
{
	tt_gate_cost gc;
	tt_model_gate_desc(m, &gc);
	unsigned char *pr = tt_model_gate_pruned(m);
	for (int g = 0; g < gc.ngroups; g++) {
		const tt_gate_group *gr = &gc.group[g];
		if (gr->kind != TT_GATE_UNIT)
			continue;
		/* units 1 and, in groups of 4 or more, the last: not adjacent */
		pr[gr->first + 1] = 1;
		if (gr->count >= 4)
			pr[gr->first + gr->count - 1] = 1;
	}
	tt_err err = { 0 };
	CHECK(tt_model_gate_compact(m, &err) == TT_OK, "compact: %s", err.msg);
}

static void gated_check(const char *spec, int skip_block, int compact, int input)
{
	tt_model_config cfg = { .spec = spec, .h = MODEL_H, .w = MODEL_H, .c = 1,
	                        .classes = MODEL_CLASSES, .batch = MODEL_BATCH,
	                        .seed = MODEL_SEED, .be = &watch_be, .gates = 1,
	                        .input_grad = input };
	tt_model *m = NULL;
	tt_err err = { 0 };
	CHECK(tt_model_create(&cfg, &m, &err) == TT_OK, "%s: %s", spec, err.msg);
	if (!m)
		return;
	if (compact)
		gated_prune(m);
	/* away from the initialisation: BN shifts 0 would hide a term */
	size_t np0 = tt_model_nparams(m);
	float *p0 = malloc(np0 * sizeof *p0);
	be->download(p0, tt_model_params(m), np0 * sizeof *p0);
	for (size_t i = 0; i < np0; i++)
		p0[i] += 0.1f * tt_rng_normal(&rng);
	be->upload(tt_model_params(m), p0, np0 * sizeof *p0);
	free(p0);
	tt_gate_cost gc;
	tt_model_gate_desc(m, &gc);
	int ng = gc.ngates, layers = 0;
	tt_model_gate_all_on(m);
	float *mask = tt_model_gate_mask(m);
	for (int g = 0; g < gc.ngroups; g++) {
		const tt_gate_group *gr = &gc.group[g];
		if (gr->kind == TT_GATE_LAYER) {
			if (++layers == skip_block)
				mask[gr->first] = 0;
			continue;
		}
		for (int k = 2; k < gr->count; k += 3) /* every third unit off */
			if (!tt_model_gate_pruned(m)[gr->first + k])
				mask[gr->first + k] = 0;
	}
	model_batch(m);
	float *g = model_grads(m, 0.0f);
	float *scores = malloc((size_t)ng * sizeof *scores);
	memcpy(scores, tt_model_gate_scores(m), (size_t)ng * sizeof *scores);
	size_t np = tt_model_nparams(m), toff = tt_model_trainable_offset(m);
	model_ctx c = { .m = m, .np = np, .x_d = tt_model_input(m),
	                .labels_d = tt_model_labels(m) };
	c.hp = malloc(np * sizeof *c.hp);
	be->download(c.hp, tt_model_params(m), np * sizeof *c.hp);
	char what[160];
	for (int s = 0; s < tt_model_stages(m); s++) {
		size_t off, count;
		tt_model_stage_params(m, s, &off, &count);
		if (!count)
			continue; /* a pruned identity block */
		snprintf(what, sizeof what, "%s%s stage %d", spec, compact ? " compacted" : "", s);
		fd_check(what, model_obj, &c, c.hp + off, g + (off - toff), count, &model_opts);
	}

	/* the scores of the gates on */
	score_ctx sc = { .mc = &c };
	sc.gate = malloc((size_t)ng * sizeof *sc.gate);
	sc.layer_u2 = malloc((size_t)ng * sizeof *sc.layer_u2);
	sc.u2_count = malloc((size_t)ng * sizeof *sc.u2_count);
	sc.mult = malloc((size_t)ng * sizeof *sc.mult);
	sc.base = malloc((size_t)ng * sizeof *sc.base);
	float *an = calloc((size_t)ng, sizeof *an);
	memcpy(sc.base, mask, (size_t)ng * sizeof *sc.base);
	unsigned char *skipped = calloc((size_t)ng, 1); /* a unit of a branch off */
	for (int gi = 0; gi < gc.ngroups; gi++) {
		const tt_gate_group *gr = &gc.group[gi];
		for (int lj = 0; lj < gc.ngroups; lj++)
			if (gc.group[lj].kind == TT_GATE_LAYER && gc.group[lj].stage == gr->stage &&
			    gr->kind == TT_GATE_UNIT && mask[gc.group[lj].first] == 0.0f)
				memset(skipped + gr->first, 1, (size_t)gr->count);
	}
	for (int gi = 0; gi < gc.ngroups; gi++) {
		const tt_gate_group *gr = &gc.group[gi];
		for (int k = 0; k < gr->count; k++) {
			int i = gr->first + k;
			if (mask[i] != 1.0f || !tt_model_gate_present(m)[i])
				continue;
			sc.gate[sc.n] = i;
			sc.layer_u2[sc.n] = gr->kind == TT_GATE_LAYER ? gc.group[gi + 2].first : -1;
			sc.u2_count[sc.n] = gr->kind == TT_GATE_LAYER ? gc.group[gi + 2].count : 0;
			sc.mult[sc.n] = 1.0f;
			an[sc.n++] = scores[i];
		}
	}
	snprintf(what, sizeof what, "%s%s scores", spec, compact ? " compacted" : "");
	fd_check(what, score_obj, &sc, sc.mult, an, (size_t)sc.n, &model_opts);
	/* a unit sampled off in a group that scores those: its slope at 0,
	 * from the right (a mask is never negative), (-3 f(0) + 4 f(h) -
	 * f(2h)) / 2h, with the ReLU and pooling decisions of f(h) pinned (at
	 * 0 the unit's own ReLUs all read 0, and pinning those would hold its
	 * output at 0) */
	int offs = 0;
	double oscale = FD_SCALE_FLOOR;
	for (int i = 0; i < ng; i++)
		oscale = fmax(oscale, fabs(scores[i]));
	for (int gi = 0; gi < gc.ngroups; gi++) {
		const tt_gate_group *gr = &gc.group[gi];
		/* not a block's u2: its channel adds onto a stream that a ReLU
		 * left at exactly 0 in many places, a kink at mask 0 where the
		 * slope from the right takes what the ReLU's subgradient (0 at 0)
		 * leaves out */
		if (gi >= 2 && gc.group[gi - 2].kind == TT_GATE_LAYER &&
		    gc.group[gi - 2].stage == gr->stage)
			continue;
		/* a block's u1: the slope from the right, pinned or not, is
		 * unreliable here (it came out 10-20% off, or of the other sign,
		 * while the on score's limit below agreed to 4 digits), so its off
		 * score is checked against that limit instead: at a mask of e > 0
		 * the gate scores e times the slope there, through the backward
		 * whose on scores the central differences above check */
		int viaon = gi >= 1 && gc.group[gi - 1].kind == TT_GATE_LAYER;
		for (int k = 0; k < gr->count && gr->offscore; k++) {
			int i = gr->first + k;
			if (mask[i] != 0.0f || skipped[i] || !tt_model_gate_present(m)[i])
				continue;
			double num;
			if (viaon) {
				double e = 1e-4;
				mask[i] = (float)e;
				free(model_grads(m, 0.0f));
				num = tt_model_gate_scores(m)[i] / e;
			} else {
				double h = STEP_MODEL, f[3];
				uint64_t p0, pp;
				mask[i] = (float)h;
				model_obj(&c, FD_RECORD, &p0);
				for (int j = 0; j < 3; j++) {
					mask[i] = (float)(j * h);
					f[j] = model_obj(&c, FD_PINNED, &pp);
				}
				num = (-3 * f[0] + 4 * f[1] - f[2]) / (2 * h);
			}
			mask[i] = 0;
			double tol = FD_ATOL * oscale + FD_RTOL * fmax(fabs(scores[i]), fabs(num));
			CHECK(fabs(scores[i] - num) <= tol, "%s%s: off gate %d scores %.7g, %s "
			      "%.7g (tolerance %.2g)", spec, compact ? " compacted" : "", i,
			      scores[i], viaon ? "the on score's limit is" : "the slope at 0 is",
			      num, tol);
			offs++;
		}
	}
	model_obj(&c, FD_FREE, &(uint64_t){ 0 });
	CHECK(offs > 0 || !strncmp(spec, "cnn", 3), "%s: no unit sampled off was scored", spec);
	/* and 0 for the other gates sampled off */
	for (int i = 0; i < ng; i++) {
		int gi = 0;
		while (gi + 1 < gc.ngroups && gc.group[gi + 1].first <= i)
			gi++;
		if (mask[i] == 0.0f && (!gc.group[gi].offscore || skipped[i]))
			CHECK(scores[i] == 0.0f, "%s: gate %d is off and scores %g", spec, i,
			      scores[i]);
	}
	free(skipped);
	/* the input gradient through gated stages, with the same masks (a
	 * compacted model is rebuilt: it must still compute one) */
	if (input) {
		snprintf(what, sizeof what, "%s%s input", spec, compact ? " compacted" : "");
		input_fd(&c, what);
	}
	free(sc.gate);
	free(sc.layer_u2);
	free(sc.u2_count);
	free(sc.mult);
	free(sc.base);
	free(an);
	free(scores);
	free(c.hp);
	free(g);
	tt_model_free(m);
}

static void grad_gated_mlp(void) { gated_check("mlp:16,8", 0, 0, 0); }
static void grad_gated_cnn(void) { gated_check("cnn:4,4", 0, 0, 0); }
static void grad_gated_resnet(void) { gated_check("resnet:1,1:w4", 0, 0, 0); }
static void grad_gated_resnet_skip(void) { gated_check("resnet:1,1:w4", 2, 0, 0); }
static void grad_gated_mlp_compacted(void) { gated_check("mlp:16,8", 0, 1, 0); }
static void grad_gated_cnn_compacted(void) { gated_check("cnn:4,4", 0, 1, 0); }
static void grad_gated_resnet_compacted(void) { gated_check("resnet:1,1:w4", 1, 1, 0); }

/* ---- D. per-example weights ---------------------------------------------- */

/*
 * tt_model_loss_ex on whole models.  Without weights it is tt_model_loss,
 * loss, argmax count and gradient bit for bit; weights of 1/n each give
 * the same up to rounding.  Its per-example losses are those of each
 * example forwarded alone (evaluation mode, where batch norm does not
 * mix examples), and the weighted value is their weighted sum.  With
 * random weights the gradient of the weights passes the
 * finite-difference check of sum_i wt_i loss_i.
 */
static void loss_ex_case(const char *spec, const layer_desc *layers, int nl,
                         float smoothing)
{
	tt_model *m = model_new(spec, 0);
	if (!m)
		return;
	model_batch(m);
	size_t nt = tt_model_ntrainable(m);
	float *g0 = malloc(nt * sizeof *g0), *g1 = malloc(nt * sizeof *g1);
	float wt[MODEL_BATCH], per[MODEL_BATCH];
	TT_ASSERT(g0 && g1);
	const float *x_d = tt_model_input(m);
	const int *y_d = tt_model_labels(m);
	int c0 = -1, c1 = -2;

	tt_model_forward(m, x_d, MODEL_BATCH, 1);
	double l0 = tt_model_loss(m, y_d, MODEL_BATCH, smoothing, 1, &c0);
	tt_model_backward(m);
	be->download(g0, tt_model_grads(m), nt * sizeof *g0);
	tt_model_forward(m, x_d, MODEL_BATCH, 1);
	fill_const(per, MODEL_BATCH, -1.0f);
	double l1 = tt_model_loss_ex(m, y_d, MODEL_BATCH, smoothing, NULL, 1, per, &c1);
	tt_model_backward(m);
	be->download(g1, tt_model_grads(m), nt * sizeof *g1);
	CHECK(l1 == l0, "%s: loss_ex without weights %.17g, loss %.17g", spec, l1, l0);
	CHECK(c1 == c0, "%s: correct %d vs %d", spec, c1, c0);
	CHECK(memcmp(g1, g0, nt * sizeof *g0) == 0,
	      "%s: the gradient of loss_ex without weights differs from loss's", spec);
	double mean = 0;
	for (int i = 0; i < MODEL_BATCH; i++)
		mean += per[i] / MODEL_BATCH;
	CHECK_CLOSE(mean, l1, 1e-7, 1e-6, "mean of the per-example losses");

	/* 1/n each, given explicitly */
	fill_const(wt, MODEL_BATCH, 1.0f / MODEL_BATCH);
	tt_model_forward(m, x_d, MODEL_BATCH, 1);
	double lu = tt_model_loss_ex(m, y_d, MODEL_BATCH, smoothing, wt, 1, NULL, NULL);
	tt_model_backward(m);
	be->download(g1, tt_model_grads(m), nt * sizeof *g1);
	CHECK_CLOSE(lu, l0, 1e-9, 1e-6, "loss_ex with weights 1/n");
	int bad = 0;
	for (size_t i = 0; i < nt; i++)
		if (fabs((double)g1[i] - g0[i]) > 1e-7 + 1e-5 * fabs(g0[i]) && bad++ < FD_PRINT)
			CHECK(0, "%s: gradient [%zu] with weights 1/n %.8g, without %.8g", spec,
			      i, g1[i], g0[i]);
	CHECK(bad == 0, "%s: %d gradients differ with weights 1/n", spec, bad);

	/* random weights: the value is their sum over the per-example losses,
	 * and each of those is the example's loss alone */
	for (int i = 0; i < MODEL_BATCH; i++)
		wt[i] = 0.1f + tt_rng_uniform(&rng);
	tt_model_forward(m, x_d, MODEL_BATCH, 0);
	fill_const(per, MODEL_BATCH, -1.0f);
	double lw = tt_model_loss_ex(m, y_d, MODEL_BATCH, smoothing, wt, 0, per, NULL);
	double want = 0;
	for (int i = 0; i < MODEL_BATCH; i++)
		want += (double)wt[i] * per[i];
	CHECK_CLOSE(lw, want, 1e-7, 1e-6, "weighted loss against its per-example losses");
	for (int i = 0; i < MODEL_BATCH; i++) {
		tt_model_forward(m, x_d + (size_t)i * MODEL_H * MODEL_H, 1, 0);
		double li = tt_model_loss(m, y_d + i, 1, smoothing, 0, NULL);
		CHECK(fabs(per[i] - li) <= 1e-6 + 1e-5 * fabs(li),
		      "%s: per-example loss %d is %.8g, alone %.8g", spec, i, per[i], li);
	}
	free(g0);
	free(g1);
	tt_model_free(m);

	model_check_wt(spec, layers, nl, 0, smoothing, wt);
}

static void loss_ex_mlp(void) { loss_ex_case("mlp:16,8", mlp_layers, NELEM(mlp_layers), 0.0f); }
static void loss_ex_cnn(void) { loss_ex_case("cnn:4,4", cnn_layers, NELEM(cnn_layers), 0.1f); }
static void loss_ex_resnet(void)
{
	loss_ex_case("resnet:1,1:w4", resnet_layers, NELEM(resnet_layers), 0.0f);
}

/* ---- E. the input gradient ----------------------------------------------- */

/*
 * input_grad on a model whose stages all train: the weight gradients are
 * those of the same model without it, bit for bit (only the first
 * stage's input gradient is added, which no weight gradient reads); the
 * training MACs grow by exactly the first stage's input-facing MACs,
 * dx0; a model without it has no input gradient; and d loss / d x
 * passes the finite-difference check, with the plain mean and (wt) a
 * per-example-weighted loss.
 */
static void input_case(const char *spec, double dx0, int weighted)
{
	tt_model *m = model_make(spec, 0, 1), *plain = model_new(spec, 0);
	if (!m || !plain) {
		tt_model_free(m);
		tt_model_free(plain);
		return;
	}
	model_batch(m);
	model_batch(plain);
	size_t nt = tt_model_ntrainable(m), np = tt_model_nparams(m);
	float *g = model_grads(m, 0.0f), *gp = model_grads(plain, 0.0f);
	CHECK(memcmp(g, gp, nt * sizeof *g) == 0,
	      "%s: weight gradients change with input_grad", spec);
	CHECK(tt_model_input_grad(plain) == NULL, "%s: an input gradient without input_grad",
	      spec);
	CHECK(tt_model_train_macs(m) == tt_model_train_macs(plain) + dx0,
	      "%s: train MACs %.17g with input_grad, %.17g without, expected %.17g more",
	      spec, tt_model_train_macs(m), tt_model_train_macs(plain), dx0);
	CHECK(tt_model_macs(m) == tt_model_macs(plain), "%s: forward MACs differ", spec);

	float wt[MODEL_BATCH];
	for (int i = 0; i < MODEL_BATCH; i++)
		wt[i] = 0.1f + tt_rng_uniform(&rng);
	model_ctx c = { .m = m, .np = np, .x_d = tt_model_input(m),
	                .labels_d = tt_model_labels(m), .wt = weighted ? wt : NULL };
	c.hp = malloc(np * sizeof *c.hp);
	TT_ASSERT(c.hp);
	be->download(c.hp, tt_model_params(m), np * sizeof *c.hp);
	char what[96];
	snprintf(what, sizeof what, "%s%s input", spec, weighted ? " weighted" : "");
	input_fd(&c, what);
	free(c.hp);
	free(g);
	free(gp);
	tt_model_free(plain);
	tt_model_free(m);
}

/* dx0: fc1 64 x 16; the stem 8x8 positions x 4 filters x 3x3x1 */
static void input_grad_mlp(void) { input_case("mlp:16,8", 64 * 16, 0); }
static void input_grad_cnn(void) { input_case("cnn:4,4", 8 * 8 * 4 * 9, 0); }
static void input_grad_resnet(void) { input_case("resnet:1,1:w4", 8 * 8 * 4 * 9, 0); }
static void input_grad_resnet_weighted(void)
{
	input_case("resnet:1,1:w4", 8 * 8 * 4 * 9, 1);
}
static void input_grad_gated_mlp(void) { gated_check("mlp:16,8", 0, 0, 1); }
static void input_grad_gated_resnet_skip(void) { gated_check("resnet:1,1:w4", 2, 0, 1); }
static void input_grad_gated_resnet_compacted(void)
{
	gated_check("resnet:1,1:w4", 1, 1, 1);
}

int main(void)
{
	be = tt_backend_get("cpu");
	if (!be) {
		printf("FAIL backend_cpu\n");
		return 1;
	}
	tt_rng_seed(&rng, OPS_SEED, TT_STREAM_SYNTH);
	watch_init();

	TT_RUN(grad_dense);
	TT_RUN(grad_conv3x3_s1_p1);
	TT_RUN(grad_conv3x3_s2_p1);
	TT_RUN(grad_conv1x1_s2_p0);
	TT_RUN(grad_conv_op);
	TT_RUN(grad_bn);
	TT_RUN(grad_bn_relu);
	TT_RUN(grad_relu);
	TT_RUN(grad_bias_relu);
	TT_RUN(grad_add_relu);
	TT_RUN(grad_maxpool2x2_s2);
	TT_RUN(maxpool_ties);
	TT_RUN(grad_avgpool2x2_s2);
	TT_RUN(grad_avgpool3x3_s1);
	TT_RUN(grad_gap);
	TT_RUN(grad_subsample_s2);
	TT_RUN(grad_xent);
	TT_RUN(grad_xent_smoothing);

	TT_RUN(grad_model_mlp);
	TT_RUN(grad_model_cnn);
	TT_RUN(grad_model_resnet);
	TT_RUN(grad_model_resnet_frozen);
	TT_RUN(grad_model_cnn_smoothing);
	TT_RUN(grad_model_mlp_foreign);
	TT_RUN(grad_model_resnet_frozen_foreign);

	TT_RUN(grad_gated_mlp);
	TT_RUN(grad_gated_cnn);
	TT_RUN(grad_gated_resnet);
	TT_RUN(grad_gated_resnet_skip);
	TT_RUN(grad_gated_mlp_compacted);
	TT_RUN(grad_gated_cnn_compacted);
	TT_RUN(grad_gated_resnet_compacted);

	TT_RUN(loss_ex_mlp);
	TT_RUN(loss_ex_cnn);
	TT_RUN(loss_ex_resnet);

	TT_RUN(input_grad_mlp);
	TT_RUN(input_grad_cnn);
	TT_RUN(input_grad_resnet);
	TT_RUN(input_grad_resnet_weighted);
	TT_RUN(input_grad_gated_mlp);
	TT_RUN(input_grad_gated_resnet_skip);
	TT_RUN(input_grad_gated_resnet_compacted);
	watch_free();
	TT_EXIT();
}
