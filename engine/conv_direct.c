/*
 * conv_direct.c — direct convolution for the CPU backend; see
 * conv_direct.h.
 *
 * Why.  The reference convolution (backend_cpu.c) writes the im2col
 * matrix of a chunk of images and multiplies it with OpenBLAS.  With 16
 * or 32 output channels that GEMM is thin: OpenBLAS packs the whole
 * im2col block for a product only 16 wide, zeroes C before it, and the
 * backward adds a col2im scatter; im2col, packing, zeroing and scatter
 * cost about as much as the multiply-adds (bench/run.sh's sgemm table:
 * 20 GFLOP/s at N = 16 against 70 for 1024^3).
 *
 * How.  Each image is copied once into a zero-padded buffer.  One row of
 * a convolution window (one ky: k pixels of C channels) is then k*C
 * contiguous floats of that buffer, so every product is a tile of
 * multiply-adds kept in registers and read straight from it:
 *
 *   forward          y(p, o) = sum over ky, t of win(p)(ky, t) W(o, ky, t)
 *                    tile: FWD_P pixels x FWD_NV vectors of channels o;
 *                    the weights rearranged as (ky, t, o), o contiguous
 *   input gradient   with stride 1, the forward's tile on dy padded by
 *                    k-1-pad with the weights flipped and transposed (a
 *                    stride-1 convolution itself), each tile added onto
 *                    dx once; with stride 2,
 *                    win(p)(ky, t) += sum over o of dy(p, o) W(o, ky, t)
 *                    tile: DX_P pixels x TNV vectors of window floats t,
 *                    added onto a padded copy of dx (windows overlap),
 *                    whose inside is then added onto dx
 *   weight gradient  dW(o, ky, t) = sum over p of dy(p, o) win(p)(ky, t)
 *                    tile: DW_KB channels x TNV vectors of t, summed over
 *                    an image's pixels, then into the thread's partial
 *
 * with t = kx*C + c running over a window row.  A vector is GCC's vector
 * extension (8 floats), so this compiles for any target; with AVX2 and
 * FMA a tile update is a broadcast and a few FMAs.  Vectors that run past
 * the end of K or of a window row compute on zero weights (the
 * rearranged copies are padded with zeros) or on neighbouring input
 * (never stored), and the padded image has SLACK floats at its end so
 * that no such vector leaves the workspace.
 *
 * Every tile shape is one always_inline function instantiated for each
 * size a dispatch can ask for, so the accumulators stay in registers.
 */
#include "conv_direct.h"

#include <omp.h>
#include <string.h>
#ifdef __FMA__
#include <immintrin.h>
#endif

#include "err.h"

/* Built without AVX (SAN=1 and DEBUG=1 drop -march=native) GCC notes
 * that a 32-byte vector is passed differently than with it; these never
 * cross this file, so the ABI note does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define VL 8

static inline v8 ld(const float *p) { return *(const v8u *)p; }
static inline void st(float *p, v8 v) { *(v8u *)p = v; }

/*
 * acc + s * w, with one rounding where the target has FMA.  Written out
 * because -std=c11 leaves floating-point contraction off: a * b + c would
 * be a multiply and an add, half the throughput of the tiles.
 */
static inline v8 madd(v8 acc, float s, v8 w)
{
#ifdef __FMA__
	return (v8)_mm256_fmadd_ps(_mm256_set1_ps(s), (__m256)w, (__m256)acc);
#else
	return acc + s * w;
#endif
}

#define SLACK 16  /* floats after a padded image that a vector may touch */
#define FWD_P 6   /* forward tile: pixels ... */
#define FWD_NV 2  /* ... by vectors of output channels */
#define DX_P 4    /* input-gradient tile: pixels by TNV vectors */
#define DW_KB 4   /* weight-gradient tile: channels by TNV vectors */
#define TNV 3     /* vectors of window floats in a tile */
#define ALIGN_FLOATS 16

#define INLINE static inline __attribute__((always_inline))

typedef struct plan {
	int n, k, s, pad, C, K;
	int h, w, oh, ow;
	int hp, wp;          /* the padded image */
	int kc, kcp;         /* a window row: k*C floats; rounded up to VL */
	int kpad;            /* K rounded up to VL */
	size_t rs;           /* floats of a padded image row */
	size_t img;          /* floats of a padded image, SLACK included */
	size_t wt;           /* floats of the forward's weights (k, kc, kpad) */
	size_t wd;           /* ... and the input gradient's (K, k, kcp) */
	/* workspace: shared rearranged weights, then per thread a padded
	 * image, a second one (dx's or dy's) and a weight-gradient partial */
	size_t wfloats, img2, part, per;
	int nt;
} plan;

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

/* The geometry of s with K outputs; no workspace. */
static plan plan_core(const tt_conv_shape *s, int K)
{
	plan p;
	memset(&p, 0, sizeof p);
	p.n = s->n, p.k = s->k, p.s = s->stride, p.pad = s->pad, p.C = s->c, p.K = K;
	p.h = s->h, p.w = s->w, p.oh = s->oh, p.ow = s->ow;
	p.hp = s->h + 2 * s->pad;
	p.wp = s->w + 2 * s->pad;
	p.kc = s->k * s->c;
	p.kcp = (int)round_up((size_t)p.kc, VL);
	p.kpad = (int)round_up((size_t)K, VL);
	p.rs = (size_t)p.wp * s->c;
	p.img = (size_t)p.hp * p.rs + SLACK;
	p.wt = (size_t)s->k * p.kc * p.kpad;
	p.wd = (size_t)K * s->k * p.kcp;
	return p;
}

/*
 * With stride 1 the input gradient is itself a stride-1 convolution: of
 * dy, padded by k-1-pad, with the weights flipped in space and
 * transposed (C outputs from K inputs).  It then runs as a forward
 * (gathered: each dx tile summed in registers and added once) instead of
 * scattering every window onto a padded dx, which needs that padded dx
 * zeroed and added back, and a load and a store per tile vector: 8% off
 * a resnet:1,1,1:w16 step.  Not below VL input channels, where the
 * forward's tile would compute mostly padding (C = 1: 6.4 against 4.5 ms).
 */
static int dx_gathers(const tt_conv_shape *s)
{
	return s->stride == 1 && s->pad <= s->k - 1 && s->c >= VL;
}

static tt_conv_shape transposed(const tt_conv_shape *s, int K)
{
	tt_conv_shape t = { .n = s->n, .h = s->oh, .w = s->ow, .c = K, .k = s->k,
	                    .stride = 1, .pad = s->k - 1 - s->pad, .oh = s->h,
	                    .ow = s->w };
	return t;
}

static plan plan_make(const tt_conv_shape *s, int K, int nt)
{
	plan p = plan_core(s, K);
	size_t wb = p.wd;
	p.img2 = p.img;
	if (dx_gathers(s)) {
		tt_conv_shape t = transposed(s, K);
		plan q = plan_core(&t, s->c);
		wb = q.wt;
		p.img2 = q.img;
	}
	p.wfloats = round_up(p.wt > wb ? p.wt : wb, ALIGN_FLOATS);
	p.part = p.wd;
	p.per = round_up(p.img + p.img2 + p.part, ALIGN_FLOATS);
	p.nt = nt < s->n ? nt : s->n;
	if (p.nt < 1)
		p.nt = 1;
	return p;
}

size_t conv_direct_ws(const tt_conv_shape *s, int K, int nt)
{
	plan p = plan_make(s, K, nt);
	return (p.wfloats + (size_t)p.nt * p.per) * sizeof(float);
}

/* The plan for the threads the workspace has room for. */
static plan plan_fit(const tt_conv_shape *s, int K, size_t ws_bytes)
{
	plan p = plan_make(s, K, omp_get_max_threads());
	size_t fl = ws_bytes / sizeof(float);
	TT_ASSERT(fl >= p.wfloats + p.per);
	if ((size_t)p.nt > (fl - p.wfloats) / p.per)
		p.nt = (int)((fl - p.wfloats) / p.per);
	return p;
}

/* The inside of xp (its border and slack stay as they are: zero) from
 * image x (h, w, C). */
static void pad_image(const plan *p, const float *x, float *xp)
{
	size_t row = (size_t)p->w * p->C;
	for (int iy = 0; iy < p->h; iy++)
		memcpy(xp + (size_t)(iy + p->pad) * p->rs + (size_t)p->pad * p->C,
		       x + (size_t)iy * row, row * sizeof *x);
}

/* Pixel q of the output's window origin in a padded image. */
static size_t window(const plan *p, int q)
{
	int oy = q / p->ow, ox = q % p->ow;
	return (size_t)oy * p->s * p->rs + (size_t)ox * p->s * p->C;
}

/* Store the first n lanes of v at o, or with add, add them onto it. */
INLINE void st_part(float *o, v8 v, int n, int add)
{
	if (n >= VL) {
		st(o, add ? ld(o) + v : v);
	} else if (n > 0) {
		float t[VL];
		st(t, v); /* not memcpy from &v: that would keep every
		           * accumulator of the tile in memory */
		for (int j = 0; j < n; j++)
			o[j] = add ? o[j] + t[j] : t[j];
	}
}

/* ---- forward ----------------------------------------------------------- */

/*
 * P pixels (window origins xw[i]) by NV vectors of channels: yo[i][v*VL
 * + lane] = (or with add, +=) sum over ky, t of xw[i][ky*rs + t] *
 * w[(ky*kc + t)*kpad + v*VL + lane], the first nvalid channels stored.
 */
INLINE void fwd_tile(int P, int NV, const float *const *xw, int k, int kc, size_t rs,
                     const float *w, int kpad, float *const *yo, int nvalid, int add)
{
	v8 acc[FWD_P][FWD_NV];
	for (int i = 0; i < P; i++)
		for (int v = 0; v < NV; v++)
			acc[i][v] = (v8){ 0 };
	for (int ky = 0; ky < k; ky++) {
		const float *wr = w + (size_t)ky * kc * kpad;
		size_t xo = (size_t)ky * rs;
		for (int t = 0; t < kc; t++) {
			v8 wv[FWD_NV];
			for (int v = 0; v < NV; v++)
				wv[v] = ld(wr + (size_t)t * kpad + v * VL);
			for (int i = 0; i < P; i++) {
				float xs = xw[i][xo + t];
				for (int v = 0; v < NV; v++)
					acc[i][v] = madd(acc[i][v], xs, wv[v]);
			}
		}
	}
	for (int i = 0; i < P; i++)
		for (int v = 0; v < NV; v++)
			st_part(yo[i] + v * VL, acc[i][v], nvalid - v * VL, add);
}

#define FWD_CASE(P, NV)                                                    \
	case (P) * 4 + (NV):                                               \
		fwd_tile(P, NV, xw, p->k, p->kc, p->rs, w, p->kpad, yo, nvalid, add); \
		break

/* y (oh*ow, K) of one padded image xp (with add, added onto y); wt the
 * weights as (k, kc, kpad). */
static void fwd_image(const plan *p, const float *xp, const float *wt, float *y, int add)
{
	int npix = p->oh * p->ow;
	for (int o = 0; o < p->K; o += FWD_NV * VL) {
		int nvalid = p->K - o;
		int nv = (p->kpad - o) / VL < FWD_NV ? (p->kpad - o) / VL : FWD_NV;
		const float *w = wt + o;
		for (int q = 0; q < npix; q += FWD_P) {
			int np = npix - q < FWD_P ? npix - q : FWD_P;
			const float *xw[FWD_P];
			float *yo[FWD_P];
			for (int i = 0; i < np; i++) {
				xw[i] = xp + window(p, q + i);
				yo[i] = y + (size_t)(q + i) * p->K + o;
			}
			switch (np * 4 + nv) {
			FWD_CASE(1, 1); FWD_CASE(1, 2); FWD_CASE(2, 1); FWD_CASE(2, 2);
			FWD_CASE(3, 1); FWD_CASE(3, 2); FWD_CASE(4, 1); FWD_CASE(4, 2);
			FWD_CASE(5, 1); FWD_CASE(5, 2); FWD_CASE(6, 1); FWD_CASE(6, 2);
			default: TT_ASSERT(!"forward tile out of range");
			}
		}
	}
}

void conv_direct_fwd(const float *x, const tt_conv_shape *s, int K, const float *W,
                     float *y, void *ws, size_t ws_bytes)
{
	plan p = plan_fit(s, K, ws_bytes);
	float *wt = ws;
	/* wt(ky, t, o) = W(o, ky, t): channels contiguous, zero past K */
	for (int ky = 0; ky < p.k; ky++)
		for (int t = 0; t < p.kc; t++) {
			float *d = wt + ((size_t)ky * p.kc + t) * p.kpad;
			for (int o = 0; o < p.kpad; o++)
				d[o] = o < K ? W[((size_t)o * p.k + ky) * p.kc + t] : 0.0f;
		}
	size_t in_img = (size_t)p.h * p.w * p.C, out_img = (size_t)p.oh * p.ow * K;
#pragma omp parallel num_threads(p.nt)
	{
		int t = omp_get_thread_num(), T = omp_get_num_threads();
		float *xp = (float *)ws + p.wfloats + (size_t)t * p.per;
		memset(xp, 0, p.img * sizeof *xp);
		for (int n = p.n * t / T; n < p.n * (t + 1) / T; n++) {
			pad_image(&p, x + n * in_img, xp);
			fwd_image(&p, xp, wt, y + n * out_img, 0);
		}
	}
}

/* ---- input gradient ---------------------------------------------------- */

/*
 * P pixels (gradient rows dyp[i], window origins dw[i] + off in the
 * padded dx) by NV vectors of a window row: dw[i][off + v*VL + lane] +=
 * sum over o of dyp[i][o] * w[o*wstride + v*VL + lane].  The windows of
 * neighbouring pixels overlap, so the additions go pixel by pixel.
 */
INLINE void dx_tile(int P, int NV, const float *const *dyp, int K, const float *w,
                    size_t wstride, float *const *dw, size_t off)
{
	v8 acc[DX_P][TNV];
	for (int i = 0; i < P; i++)
		for (int v = 0; v < NV; v++)
			acc[i][v] = (v8){ 0 };
	for (int o = 0; o < K; o++) {
		v8 wv[TNV];
		for (int v = 0; v < NV; v++)
			wv[v] = ld(w + (size_t)o * wstride + v * VL);
		for (int i = 0; i < P; i++) {
			float d = dyp[i][o];
			for (int v = 0; v < NV; v++)
				acc[i][v] = madd(acc[i][v], d, wv[v]);
		}
	}
	for (int i = 0; i < P; i++)
		for (int v = 0; v < NV; v++) {
			float *q = dw[i] + off + v * VL;
			st(q, ld(q) + acc[i][v]);
		}
}

#define DX_CASE(P, NV)                                                     \
	case (P) * 4 + (NV):                                               \
		dx_tile(P, NV, dyp, p->K, w, wstride, dw, off);            \
		break

/* The padded dxp (zeroed) += the input gradient of one image from dy
 * (oh*ow, K); wd the weights as (K, k, kcp). */
static void dx_image(const plan *p, const float *dy, const float *wd, float *dxp)
{
	int npix = p->oh * p->ow;
	size_t wstride = (size_t)p->k * p->kcp;
	for (int q = 0; q < npix; q += DX_P) {
		int np = npix - q < DX_P ? npix - q : DX_P;
		const float *dyp[DX_P];
		float *dw[DX_P];
		for (int i = 0; i < np; i++) {
			dyp[i] = dy + (size_t)(q + i) * p->K;
			dw[i] = dxp + window(p, q + i);
		}
		for (int ky = 0; ky < p->k; ky++)
			for (int t0 = 0; t0 < p->kc; t0 += TNV * VL) {
				int nv = (p->kcp - t0) / VL < TNV ? (p->kcp - t0) / VL : TNV;
				const float *w = wd + (size_t)ky * p->kcp + t0;
				size_t off = (size_t)ky * p->rs + t0;
				switch (np * 4 + nv) {
				DX_CASE(1, 1); DX_CASE(1, 2); DX_CASE(1, 3);
				DX_CASE(2, 1); DX_CASE(2, 2); DX_CASE(2, 3);
				DX_CASE(3, 1); DX_CASE(3, 2); DX_CASE(3, 3);
				DX_CASE(4, 1); DX_CASE(4, 2); DX_CASE(4, 3);
				default: TT_ASSERT(!"input-gradient tile out of range");
				}
			}
	}
}

/* dx (h, w, C) += the inside of the padded dxp. */
static void unpad_add(const plan *p, const float *dxp, float *dx)
{
	size_t row = (size_t)p->w * p->C;
	for (int iy = 0; iy < p->h; iy++) {
		const float *s = dxp + (size_t)(iy + p->pad) * p->rs + (size_t)p->pad * p->C;
		float *d = dx + (size_t)iy * row;
		for (size_t j = 0; j < row; j++)
			d[j] += s[j];
	}
}

/* ---- weight gradient --------------------------------------------------- */

/*
 * KB channels by NV vectors of a window row, summed over the pixels of
 * one image: out[b*ostride + v*VL + lane] += sum over pixels q of
 * dy[q*K + b] * x[window(q) + v*VL + lane], x already offset to the
 * tile's (ky, t0) and dy to its first channel.
 */
INLINE void dw_tile(int KB, int NV, const plan *p, const float *x, const float *dy,
                    float *out, size_t ostride)
{
	v8 acc[DW_KB][TNV];
	for (int b = 0; b < KB; b++)
		for (int v = 0; v < NV; v++)
			acc[b][v] = (v8){ 0 };
	size_t step = (size_t)p->s * p->C;
	for (int oy = 0; oy < p->oh; oy++) {
		const float *xr = x + (size_t)oy * p->s * p->rs;
		const float *dr = dy + (size_t)oy * p->ow * p->K;
		for (int ox = 0; ox < p->ow; ox++) {
			v8 xv[TNV];
			for (int v = 0; v < NV; v++)
				xv[v] = ld(xr + ox * step + v * VL);
			for (int b = 0; b < KB; b++) {
				float d = dr[(size_t)ox * p->K + b];
				for (int v = 0; v < NV; v++)
					acc[b][v] = madd(acc[b][v], d, xv[v]);
			}
		}
	}
	for (int b = 0; b < KB; b++)
		for (int v = 0; v < NV; v++) {
			float *q = out + b * ostride + v * VL;
			st(q, ld(q) + acc[b][v]);
		}
}

#define DW_CASE(KB, NV)                                                    \
	case (KB) * 4 + (NV):                                              \
		dw_tile(KB, NV, p, x, dy + o, out, ostride);               \
		break

/* part (K, k, kcp) += the weight gradient of one padded image xp and its
 * dy (oh*ow, K). */
static void dw_image(const plan *p, const float *xp, const float *dy, float *part)
{
	size_t ostride = (size_t)p->k * p->kcp;
	for (int o = 0; o < p->K; o += DW_KB) {
		int nb = p->K - o < DW_KB ? p->K - o : DW_KB;
		for (int ky = 0; ky < p->k; ky++)
			for (int t0 = 0; t0 < p->kc; t0 += TNV * VL) {
				int nv = (p->kcp - t0) / VL < TNV ? (p->kcp - t0) / VL : TNV;
				const float *x = xp + (size_t)ky * p->rs + t0;
				float *out = part + (size_t)o * ostride + (size_t)ky * p->kcp + t0;
				switch (nb * 4 + nv) {
				DW_CASE(1, 1); DW_CASE(1, 2); DW_CASE(1, 3);
				DW_CASE(2, 1); DW_CASE(2, 2); DW_CASE(2, 3);
				DW_CASE(3, 1); DW_CASE(3, 2); DW_CASE(3, 3);
				DW_CASE(4, 1); DW_CASE(4, 2); DW_CASE(4, 3);
				default: TT_ASSERT(!"weight-gradient tile out of range");
				}
			}
	}
}

void conv_direct_bwd(const float *x, const float *dy, const tt_conv_shape *s, int K,
                     const float *W, float *dW, float *dx, void *ws, size_t ws_bytes)
{
	plan p = plan_fit(s, K, ws_bytes);
	int gather = dx && dx_gathers(s);
	tt_conv_shape ts = transposed(s, K);
	plan q = gather ? plan_core(&ts, s->c) : p; /* the input gradient's */
	float *wd = ws;
	if (gather) {
		/* wd(ky, kx*K + o, c) = W(o, k-1-ky, k-1-kx, c): q's forward
		 * weights, zero past C */
		int k = p.k;
		for (int ky = 0; ky < k; ky++)
			for (int kx = 0; kx < k; kx++)
				for (int o = 0; o < K; o++) {
					float *d = wd + ((size_t)ky * q.kc + (size_t)kx * K + o) * q.kpad;
					const float *w = W + (((size_t)o * k + (k - 1 - ky)) * k +
					                      (k - 1 - kx)) * p.C;
					for (int c = 0; c < q.kpad; c++)
						d[c] = c < p.C ? w[c] : 0.0f;
				}
	} else if (dx) {
		/* wd(o, ky, t) = W(o, ky, t), each window row zero-padded to kcp */
		for (size_t r = 0; r < (size_t)K * p.k; r++)
			for (int t = 0; t < p.kcp; t++)
				wd[r * p.kcp + t] = t < p.kc ? W[r * p.kc + t] : 0.0f;
	}
	size_t in_img = (size_t)p.h * p.w * p.C, out_img = (size_t)p.oh * p.ow * K;
	int used = p.nt;  /* the team may be smaller than asked for */
#pragma omp parallel num_threads(p.nt)
	{
		int t = omp_get_thread_num(), T = omp_get_num_threads();
		float *xp = (float *)ws + p.wfloats + (size_t)t * p.per;
		float *b2 = xp + p.img, *part = b2 + p.img2;
		if (t == 0)
			used = T;
		memset(xp, 0, p.img * sizeof *xp);
		memset(part, 0, p.part * sizeof *part);
		if (gather)
			memset(b2, 0, q.img * sizeof *b2);
		for (int n = p.n * t / T; n < p.n * (t + 1) / T; n++) {
			const float *dyn = dy + n * out_img;
			pad_image(&p, x + n * in_img, xp);
			dw_image(&p, xp, dyn, part);
			if (gather) {
				/* b2: dy padded; its border stays zero */
				pad_image(&q, dyn, b2);
				fwd_image(&q, b2, wd, dx + n * in_img, 1);
			} else if (dx) {
				/* b2: the padded dx, windows scattered onto it */
				memset(b2, 0, p.img * sizeof *b2);
				dx_image(&p, dyn, wd, b2);
				unpad_add(&p, b2, dx + n * in_img);
			}
		}
	}
	/* dW = the partials, added in thread order, without their padding */
	float *part0 = (float *)ws + p.wfloats + p.img + p.img2;
	for (size_t r = 0; r < (size_t)K * p.k; r++)
		for (int c = 0; c < p.kc; c++) {
			float sum = 0.0f;
			for (int t = 0; t < used; t++)
				sum += part0[(size_t)t * p.per + r * p.kcp + c];
			dW[r * p.kc + c] = sum;
		}
}
