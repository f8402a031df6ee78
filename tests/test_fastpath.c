/*
 * test_fastpath.c — the engine's fast paths against the reference ones.
 *
 * Where the engine takes a shortcut for speed, the plain way stays beside
 * it, and this file checks that both compute the same thing:
 *
 *   backward_overwrites  a backward assigns every gradient (no zeroing
 *                        pass before it): a gradient buffer full of NaN
 *                        comes out bit for bit as a zeroed one, for every
 *                        kind of model, frozen prefixes and gated blocks
 *                        whose branch is skipped included.
 *   conv_direct          the direct convolution kernels (conv_direct.c,
 *                        which "cpu" takes for most shapes) against im2col
 *                        and GEMM ("cpu-ref"): y, dW and dx (added
 *                        onto what dx held) agree to float rounding, for
 *                        1 image, 1 channel in or out, channel counts and
 *                        image sizes that are not multiples of the vector
 *                        width, kernels 1, 3 and 5, strides 1 and 2, with
 *                        and without dx, on every thread and on a
 *                        workspace with room for one thread only.
 *   fused_elementwise    bias_relu is bias_add then relu, relu_bias_grad
 *                        is relu_bwd then bias_grad, bit for bit, on odd
 *                        shapes (1 row, 1 channel, widths that are not a
 *                        multiple of the vector width, and large enough
 *                        to run on every thread).
 *
 * Models are tiny (8x8x1 inputs, batch 5: not a multiple of anything).
 * Finite-difference checks of the same operations are in test_grad.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "conv_direct.h"
#include "model.h"
#include "rng.h"
#include "test.h"

#define H 8
#define CLASSES 10
#define BATCH 5
#define SEED 31

#include "small_model.h"

/* ---- backward_overwrites ----------------------------------------------- */

/* The gradients of one train step, the gradient buffer filled with fill
 * first; a new host array. */
static float *grads_from(tt_model *m, float fill)
{
	size_t nt = tt_model_ntrainable(m);
	float *h = malloc((nt ? nt : 1) * sizeof *h);
	TT_ASSERT(h);
	for (size_t i = 0; i < nt; i++)
		h[i] = fill;
	be->upload(tt_model_grads(m), h, nt * sizeof *h);
	free(h);
	tt_model_forward(m, tt_model_input(m), BATCH, 1);
	tt_model_loss(m, tt_model_labels(m), BATCH, 0.0f, 1, NULL);
	tt_model_backward(m);
	return host(tt_model_grads(m), nt);
}

/* skip: in a gated model, the layer gate of that stage off (-1: none) */
static void overwrite_case(const char *spec, int trainable, int gates, int skip)
{
	tt_model *m = model(spec, trainable, gates);
	if (!m)
		return;
	batch(m);
	if (gates) {
		int ng = tt_model_gates(m);
		int *stg = malloc(ng * sizeof *stg), *unit = malloc(ng * sizeof *unit);
		TT_ASSERT(stg && unit);
		tt_model_gate_ids(m, stg, unit);
		tt_model_gate_all_on(m);
		for (int i = 0; i < ng; i++)
			if (stg[i] == skip && unit[i] == -1)
				tt_model_gate_mask(m)[i] = 0.0f;
		free(stg);
		free(unit);
	}
	size_t nt = tt_model_ntrainable(m);
	float *a = grads_from(m, 0.0f), *b = grads_from(m, NAN);
	size_t bad = 0, first = 0;
	for (size_t i = 0; i < nt; i++)
		if (memcmp(&a[i], &b[i], sizeof *a) != 0 && !bad++)
			first = i;
	CHECK(bad == 0, "%s z=%d gates=%d skip=%d: %zu of %zu gradients depend on the "
	      "buffer's old contents (first at %zu: %g, %g)", spec, trainable, gates, skip,
	      bad, nt, first, a[first], b[first]);
	free(a);
	free(b);
	tt_model_free(m);
}

static void backward_overwrites(void)
{
	static const char *const specs[] = { "mlp:16,7", "cnn:4,3", "resnet:1,1:w4" };
	for (int k = 0; k < 3; k++) {
		overwrite_case(specs[k], 0, 0, -1);
		overwrite_case(specs[k], 2, 0, -1);
		overwrite_case(specs[k], 0, 1, -1);
	}
	/* a gated resnet with each block's branch skipped in turn */
	overwrite_case("resnet:1,1:w4", 0, 1, 1);
	overwrite_case("resnet:1,1:w4", 0, 1, 2);
	overwrite_case("resnet:1,1:w4", 2, 1, 2);
}

static void fill_normal(float *p, size_t n, tt_rng *r)
{
	for (size_t i = 0; i < n; i++)
		p[i] = tt_rng_normal(r);
}

static float *upload_new(const float *h, size_t n)
{
	float *d = be->alloc((n ? n : 1) * sizeof *d);
	TT_ASSERT(d);
	be->upload(d, h, n * sizeof *h);
	return d;
}

/* ---- conv_direct ------------------------------------------------------- */

static const tt_backend *ref;

/* The largest |a - b| over n floats, relative to the largest |b| (at
 * least 1): float sums of up to k*k*C or n*oh*ow terms taken in another
 * order differ by a few units of the last place of the largest term. */
static double rel_diff(const float *a, const float *b, size_t n)
{
	double d = 0, m = 1;
	for (size_t i = 0; i < n; i++) {
		if (fabs(a[i] - b[i]) > d)
			d = fabs(a[i] - b[i]);
		if (fabs(b[i]) > m)
			m = fabs(b[i]);
	}
	return d / m;
}

/* one_thread: the workspace of the direct path for one thread only */
static void conv_case(int n, int h, int w, int c, int K, int k, int stride,
                      int one_thread)
{
	tt_conv_shape s = { .n = n, .h = h, .w = w, .c = c, .k = k, .stride = stride,
	                    .pad = k / 2 };
	s.oh = (h + 2 * s.pad - k) / stride + 1;
	s.ow = (w + 2 * s.pad - k) / stride + 1;
	size_t nx = (size_t)n * h * w * c, ny = (size_t)n * s.oh * s.ow * K;
	size_t nw = (size_t)K * k * k * c;
	tt_rng r;
	tt_rng_seed(&r, SEED + nx + ny, TT_STREAM_SYNTH);
	float *hx = malloc(nx * sizeof *hx), *hdy = malloc(ny * sizeof *hdy);
	float *hw = malloc(nw * sizeof *hw), *hdx0 = malloc(nx * sizeof *hdx0);
	TT_ASSERT(hx && hdy && hw && hdx0);
	fill_normal(hx, nx, &r), fill_normal(hdy, ny, &r), fill_normal(hw, nw, &r);
	fill_normal(hdx0, nx, &r);
	float *x = upload_new(hx, nx), *dy = upload_new(hdy, ny), *W = upload_new(hw, nw);
	size_t wsb = be->conv_ws(&s, K);
	TT_ASSERT(wsb == ref->conv_ws(&s, K));
	if (one_thread)
		wsb = conv_direct_ws(&s, K, 1);
	void *ws = be->alloc(wsb), *wsr = be->alloc(ref->conv_ws(&s, K));
	TT_ASSERT(ws && wsr);
	float *y[2], *dW[2], *dW1[2], *dx[2];
	/* v 0: the kernels themselves, whether or not cpu would take them
	 * for this shape; v 1: cpu-ref */
	for (int v = 0; v < 2; v++) {
		void *wv = v ? wsr : ws;
		size_t wb = v ? ref->conv_ws(&s, K) : wsb;
		float *yd = be->alloc(ny * sizeof(float)), *dwd = be->alloc(nw * sizeof(float));
		float *dxd = upload_new(hdx0, nx);
		if (v) {
			ref->conv(x, &s, K, W, yd, wv, wb);
			ref->conv_bwd(x, dy, &s, K, W, dwd, dxd, wv, wb);
		} else {
			conv_direct_fwd(x, &s, K, W, yd, wv, wb);
			conv_direct_bwd(x, dy, &s, K, W, dwd, dxd, wv, wb);
		}
		y[v] = host(yd, ny), dW[v] = host(dwd, nw), dx[v] = host(dxd, nx);
		be->upload(dwd, hw, nw * sizeof(float)); /* garbage: dW is assigned */
		if (v)
			ref->conv_bwd(x, dy, &s, K, W, dwd, NULL, wv, wb);
		else
			conv_direct_bwd(x, dy, &s, K, W, dwd, NULL, wv, wb);
		dW1[v] = host(dwd, nw);
		be->free(yd), be->free(dwd), be->free(dxd);
	}
	char what[160];
	snprintf(what, sizeof what, "conv n%d %dx%dx%d K%d k%d s%d%s", n, h, w, c, K, k,
	         stride, one_thread ? " one thread" : "");
	double ey = rel_diff(y[0], y[1], ny), ew = rel_diff(dW[0], dW[1], nw);
	double ex = rel_diff(dx[0], dx[1], nx), ew1 = rel_diff(dW1[0], dW[0], nw);
	CHECK(ey < 1e-5, "%s: y differs from the reference by %.3g", what, ey);
	CHECK(ew < 1e-5, "%s: dW differs from the reference by %.3g", what, ew);
	CHECK(ex < 1e-5, "%s: dx differs from the reference by %.3g", what, ex);
	CHECK(ew1 == 0, "%s: dW without dx differs from dW with it by %.3g", what, ew1);
	for (int v = 0; v < 2; v++)
		free(y[v]), free(dW[v]), free(dW1[v]), free(dx[v]);
	be->free(x), be->free(dy), be->free(W), be->free(ws), be->free(wsr);
	free(hx), free(hdy), free(hw), free(hdx0);
}

static void conv_direct(void)
{
	/* n, h, w, c, K, k, stride */
	static const int cases[][7] = {
		{ 1, 1, 1, 1, 1, 3, 1 },   { 1, 5, 4, 1, 16, 3, 1 },  { 3, 7, 5, 3, 4, 3, 1 },
		{ 2, 7, 6, 3, 13, 3, 2 },  { 2, 6, 7, 5, 9, 1, 2 },   { 2, 8, 8, 16, 16, 3, 1 },
		{ 3, 9, 9, 16, 32, 3, 2 }, { 2, 9, 9, 16, 32, 1, 2 }, { 2, 5, 5, 17, 24, 3, 1 },
		{ 1, 7, 7, 64, 64, 3, 1 }, { 2, 6, 5, 2, 7, 5, 1 },   { 5, 4, 4, 8, 1, 3, 2 },
		{ 4, 3, 3, 33, 40, 3, 1 }, { 2, 1, 9, 4, 8, 3, 1 },  { 2, 5, 6, 12, 20, 1, 1 },
		{ 1, 3, 3, 96, 80, 1, 2 },  { 3, 6, 7, 9, 5, 3, 1 },   { 2, 4, 4, 8, 3, 5, 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const int *c = cases[i];
		conv_case(c[0], c[1], c[2], c[3], c[4], c[5], c[6], 0);
		if (c[0] > 1)
			conv_case(c[0], c[1], c[2], c[3], c[4], c[5], c[6], 1);
	}
}

/* ---- fused_elementwise ------------------------------------------------- */

/* bitwise equality of n floats; the first difference is reported */
static void same_bits(const char *what, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof *a) != 0) {
			CHECK(0, "%s: [%zu] %.9g, reference %.9g", what, i, a[i], b[i]);
			return;
		}
}

static void fused_case(int rows, int c)
{
	size_t n = (size_t)rows * c;
	tt_rng r;
	tt_rng_seed(&r, SEED + (uint64_t)n, TT_STREAM_SYNTH);
	float *y = malloc(n * sizeof *y), *b = malloc(c * sizeof *b);
	float *dy = malloc(n * sizeof *dy);
	TT_ASSERT(y && b && dy);
	fill_normal(y, n, &r), fill_normal(b, c, &r), fill_normal(dy, n, &r);
	char what[96];

	/* forward: y + b, then the ReLU */
	float *f = upload_new(y, n), *ref = upload_new(y, n), *b_d = upload_new(b, c);
	be->bias_relu(f, b_d, rows, c);
	be->bias_add(ref, b_d, rows, c);
	be->relu(ref, n);
	float *hf = host(f, n), *href = host(ref, n);
	snprintf(what, sizeof what, "bias_relu %dx%d", rows, c);
	same_bits(what, hf, href, n);

	/* backward: mask dy by the ReLU output (href), column sums; db
	 * starts from garbage in both (both assign) */
	float *d1 = upload_new(dy, n), *d2 = upload_new(dy, n);
	float *db1 = upload_new(y, c), *db2 = upload_new(y, c);
	be->relu_bias_grad(ref, d1, rows, c, db1);
	be->relu_bwd(ref, d2, n);
	be->bias_grad(d2, rows, c, db2);
	float *hd1 = host(d1, n), *hd2 = host(d2, n);
	float *hb1 = host(db1, c), *hb2 = host(db2, c);
	snprintf(what, sizeof what, "relu_bias_grad dy %dx%d", rows, c);
	same_bits(what, hd1, hd2, n);
	snprintf(what, sizeof what, "relu_bias_grad db %dx%d", rows, c);
	same_bits(what, hb1, hb2, c);

	be->free(f), be->free(ref), be->free(b_d), be->free(d1), be->free(d2);
	be->free(db1), be->free(db2);
	free(hf), free(href), free(hd1), free(hd2), free(hb1), free(hb2);
	free(y), free(b), free(dy);
}

static void fused_elementwise(void)
{
	static const int shapes[][2] = {
		{ 1, 1 }, { 1, 13 }, { 7, 1 }, { 5, 17 }, { 3, 33 }, { 37, 1001 },
		{ 128, 512 }, { 40000, 1 },
	};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
		fused_case(shapes[k][0], shapes[k][1]);
}

int main(void)
{
	be = tt_backend_get("cpu");
	ref = tt_backend_get("cpu-ref");
	TT_ASSERT(be && ref);
	TT_RUN(backward_overwrites);
	TT_RUN(conv_direct);
	TT_RUN(fused_elementwise);
	TT_EXIT();
}
