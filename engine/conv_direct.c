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
 *   input gradient   win(p)(ky, t) += sum over o of dy(p, o) W(o, ky, t)
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
	size_t wfloats;      /* shared: the rearranged weights */
	size_t part;         /* per thread: a weight-gradient partial (K, k, kcp) */
	size_t per;          /* per thread: two padded images and a partial */
	int nt;
} plan;

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

static plan plan_make(const tt_conv_shape *s, int K, int nt)
{
	plan p;
	p.n = s->n, p.k = s->k, p.s = s->stride, p.pad = s->pad, p.C = s->c, p.K = K;
	p.h = s->h, p.w = s->w, p.oh = s->oh, p.ow = s->ow;
	p.hp = s->h + 2 * s->pad;
	p.wp = s->w + 2 * s->pad;
	p.kc = s->k * s->c;
	p.kcp = (int)round_up((size_t)p.kc, VL);
	p.kpad = (int)round_up((size_t)K, VL);
	p.rs = (size_t)p.wp * s->c;
	p.img = (size_t)p.hp * p.rs + SLACK;
	size_t wt = (size_t)s->k * p.kc * p.kpad;  /* forward: (k, kc, kpad) */
	size_t wd = (size_t)K * s->k * p.kcp;      /* backward: (K, k, kcp) */
	p.wfloats = round_up(wt > wd ? wt : wd, ALIGN_FLOATS);
	p.part = wd;
	p.per = round_up(2 * p.img + p.part, ALIGN_FLOATS);
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

/* Store the first n lanes of v at o. */
INLINE void st_part(float *o, v8 v, int n)
{
	if (n >= VL) {
		st(o, v);
	} else if (n > 0) {
		float t[VL];
		st(t, v); /* not memcpy from &v: that would keep every
		           * accumulator of the tile in memory */
		memcpy(o, t, (size_t)n * sizeof *o);
	}
}

/* ---- forward ----------------------------------------------------------- */

/*
 * P pixels (window origins xw[i]) by NV vectors of channels: yo[i][v*VL
 * + lane] = sum over ky, t of xw[i][ky*rs + t] * w[(ky*kc + t)*kpad +
 * v*VL + lane], the first nvalid channels stored.
 */
INLINE void fwd_tile(int P, int NV, const float *const *xw, int k, int kc, size_t rs,
                     const float *w, int kpad, float *const *yo, int nvalid)
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
			st_part(yo[i] + v * VL, acc[i][v], nvalid - v * VL);
}

#define FWD_CASE(P, NV)                                                    \
	case (P) * 4 + (NV):                                               \
		fwd_tile(P, NV, xw, p->k, p->kc, p->rs, w, p->kpad, yo, nvalid); \
		break

/* y (oh*ow, K) of one padded image xp; wt the weights as (k, kc, kpad). */
static void fwd_image(const plan *p, const float *xp, const float *wt, float *y)
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
			fwd_image(&p, xp, wt, y + n * out_img);
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
	float *wd = ws;
	if (dx) {
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
		float *dxp = xp + p.img, *part = dxp + p.img;
		if (t == 0)
			used = T;
		memset(xp, 0, p.img * sizeof *xp);
		memset(part, 0, p.part * sizeof *part);
		for (int n = p.n * t / T; n < p.n * (t + 1) / T; n++) {
			pad_image(&p, x + n * in_img, xp);
			dw_image(&p, xp, dy + n * out_img, part);
			if (!dx)
				continue;
			memset(dxp, 0, p.img * sizeof *dxp);
			dx_image(&p, dy + n * out_img, wd, dxp);
			unpad_add(&p, dxp, dx + n * in_img);
		}
	}
	/* dW = the partials, added in thread order, without their padding */
	float *part0 = (float *)ws + p.wfloats + 2 * p.img;
	for (size_t r = 0; r < (size_t)K * p.k; r++)
		for (int c = 0; c < p.kc; c++) {
			float sum = 0.0f;
			for (int t = 0; t < used; t++)
				sum += part0[(size_t)t * p.per + r * p.kcp + c];
			dW[r * p.kc + c] = sum;
		}
}
