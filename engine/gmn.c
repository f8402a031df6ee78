/*
 * gmn.c — the graph metanetwork; see gmn.h.
 *
 * Parameters are one vector of Linear layers, each W (out, in) row-major
 * then b (out), in this order: node embedding, edge embedding; per block
 * E1 (3w -> w), E2 (w -> w), N1 (2w -> w), N2 (w -> w); readout R1, R2
 * (w -> w), O1 (w -> w), O2 (w -> out).
 *
 * The tape keeps, per block, the normalised LN(x) and LN(e) with their
 * reciprocal deviations, the pre-activations of E1 and N1 with their
 * sigmoids (so that neither SiLU nor its derivative calls exp again in
 * backward), the updated e and each node's mean N2 input; then the final
 * x and the readout's pre-activations.  Memory is about (6 B + 1) E w
 * doubles for E edges: a 5k edge graph at width 32 and 4 blocks keeps
 * about 32 MB, at width 8 and 1 block about 2 MB.  A tape is reused by
 * the next forward given it (any graph), so a fit of many steps allocates
 * once per observation.
 *
 * Speed.  Every edge of a graph goes through the message-passing MLPs in
 * each block, forward and backward, once per observation per fit step:
 * this file is nearly all of an FMS decision's time.  Three things keep
 * it short, none of which changes the function computed:
 *   - E1 and N1 are split by input segment, and the segments that read a
 *     node's LN(x) are applied once per node rather than once per edge;
 *     N2 is linear, so the mean of its outputs over a node's incoming
 *     edges is N2 of the mean of its inputs, applied once per node.  An
 *     edge costs three w x w products forward and six backward, not seven
 *     and fourteen.
 *   - Both passes run edge by edge (one row at a time through what is
 *     left of E1, E2 and N1), so the working set stays in L1; the block
 *     loops are compiled once per width in use (8, 16, 32) so the row
 *     loops unroll into vector registers, and the forward keeps W
 *     transposed so that the outputs, not the reduction, are the vector
 *     loop.
 *   - Backward adds four edges' weight gradients at once.
 * Sums are taken in another order than the plain per-edge definition, so
 * results differ from it in the last bits (1e-14 relative on a bench-size
 * graph); the gradient is checked against central differences and the
 * forward and gradient against PyTorch (tests/test_gmn.c,
 * test_methods_ref.c).
 */
#include "gmn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define LN_EPS 1e-5

typedef struct lin { int in, out; size_t off; } lin;

/* The layer table of c: 2 + 4 blocks + 4 entries. */
static int layers(const tt_gmn_config *c, lin *L)
{
	int w = c->width, n = 0;
	size_t off = 0;
#define ADD(i, o) (L[n] = (lin){ (i), (o), off }, off += (size_t)(i) * (o) + (o), n++)
	ADD(c->nf_node, w);
	ADD(c->nf_edge, w);
	for (int b = 0; b < c->blocks; b++) {
		ADD(3 * w, w);
		ADD(w, w);
		ADD(2 * w, w);
		ADD(w, w);
	}
	ADD(w, w);
	ADD(w, w);
	ADD(w, w);
	ADD(w, c->out);
#undef ADD
	return n;
}

#define MAX_LAYERS(c) (10 + 4 * (c)->blocks)

size_t tt_gmn_nparams(const tt_gmn_config *c)
{
	lin L[64];
	if (MAX_LAYERS(c) > 64)
		return 0;
	int n = layers(c, L);
	return L[n - 1].off + (size_t)L[n - 1].in * L[n - 1].out + L[n - 1].out;
}

void tt_gmn_init(const tt_gmn_config *c, double *p, uint64_t seed)
{
	lin L[64];
	int n = layers(c, L);
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_GMN);
	for (int k = 0; k < n; k++) {
		double b = 1 / sqrt((double)L[k].in);
		size_t cnt = (size_t)L[k].in * L[k].out + L[k].out;
		for (size_t i = 0; i < cnt; i++)
			p[L[k].off + i] = b * (2 * (double)tt_rng_uniform(&r) - 1);
	}
}

/* ---- the small kit ------------------------------------------------------ */

/* y (n, out) = x (n, in) W' + b */
static void lin_fwd(const lin *l, const double *p, const double *x, int n, double *y)
{
	const double *W = p + l->off, *b = W + (size_t)l->in * l->out;
	for (int i = 0; i < n; i++)
		for (int o = 0; o < l->out; o++) {
			double s = b[o];
			const double *wr = W + (size_t)o * l->in, *xr = x + (size_t)i * l->in;
			for (int k = 0; k < l->in; k++)
				s += wr[k] * xr[k];
			y[(size_t)i * l->out + o] = s;
		}
}

/* dp += the W and b gradients; dx (may be NULL) += dy W */
static void lin_bwd(const lin *l, const double *p, const double *x, const double *dy,
                    int n, double *dp, double *dx)
{
	const double *W = p + l->off;
	double *dW = dp + l->off, *db = dW + (size_t)l->in * l->out;
	for (int i = 0; i < n; i++) {
		const double *xr = x + (size_t)i * l->in, *d = dy + (size_t)i * l->out;
		for (int o = 0; o < l->out; o++) {
			double g = d[o];
			if (g == 0)
				continue;
			db[o] += g;
			double *dwr = dW + (size_t)o * l->in;
			const double *wr = W + (size_t)o * l->in;
			for (int k = 0; k < l->in; k++)
				dwr[k] += g * xr[k];
			if (dx)
				for (int k = 0; k < l->in; k++)
					dx[(size_t)i * l->in + k] += g * wr[k];
		}
	}
}

#define INLINE static inline __attribute__((always_inline))

/*
 * The row kernels.  They take the width w as an argument and are always
 * inlined: the block loops below are instantiated with w a constant (8,
 * 16 and 32, the widths in use), where the compiler unrolls these loops
 * and keeps a row in vector registers, and once for any other width.
 */

/* y[0..out) += sum over k < n of Wt[k][o] x[k] (Wt (n, out), W transposed,
 * so the outputs are the inner loop) */
INLINE void acc_row(const int out, const double *restrict Wt, const double *restrict x,
                    const int n, double *restrict y)
{
	if (out <= 32) {
		/* two partial sums (even and odd k): twice the independent adds
		 * in flight, the chain of n dependent adds halved */
		double z[32];
		for (int o = 0; o < out; o++)
			z[o] = 0;
		int k = 0;
		for (; k + 1 < n; k += 2) {
			double x0 = x[k], x1 = x[k + 1];
			for (int o = 0; o < out; o++) {
				y[o] += Wt[(size_t)k * out + o] * x0;
				z[o] += Wt[(size_t)(k + 1) * out + o] * x1;
			}
		}
		if (k < n)
			for (int o = 0; o < out; o++)
				y[o] += Wt[(size_t)k * out + o] * x[k];
		for (int o = 0; o < out; o++)
			y[o] += z[o];
		return;
	}
	for (int k = 0; k < n; k++) {
		double xk = x[k];
		for (int o = 0; o < out; o++)
			y[o] += Wt[(size_t)k * out + o] * xk;
	}
}

/* One row of the backward of a Linear (w outputs) whose input is nseg
 * segments of w values (x0, x1, x2): dW[o] += dy[o] x, db[o] += dy[o] and
 * dx (nseg w values) = sum over o of dy[o] W[o], each summed over o in
 * order and skipping the zeros of dy, as lin_bwd does for a row. */
INLINE void bwd_row(const int w, const int nseg, const double *restrict W,
                    double *restrict dW, double *restrict db, const double *x0,
                    const double *x1, const double *x2, const double *restrict dy,
                    double *restrict dx)
{
	const int in = nseg * w;
	for (int k = 0; k < in; k++)
		dx[k] = 0;
	for (int o = 0; o < w; o++) {
		double gr = dy[o];
		if (gr == 0)
			continue;
		db[o] += gr;
		double *restrict dwr = dW + (size_t)o * in;
		for (int k = 0; k < w; k++)
			dwr[k] += gr * x0[k];
		if (nseg > 1)
			for (int k = 0; k < w; k++)
				dwr[w + k] += gr * x1[k];
		if (nseg > 2)
			for (int k = 0; k < w; k++)
				dwr[2 * w + k] += gr * x2[k];
		const double *restrict wr = W + (size_t)o * in;
		for (int k = 0; k < in; k++)
			dx[k] += gr * wr[k];
	}
}

/* W of l transposed, (in, out), into wt */
static void transpose(const lin *l, const double *p, double *wt)
{
	const double *W = p + l->off;
	for (int o = 0; o < l->out; o++)
		for (int k = 0; k < l->in; k++)
			wt[(size_t)k * l->out + o] = W[(size_t)o * l->in + k];
}

/* s[i] = 1 / (1 + exp(-a[i])) for n values: the calls to exp in a loop
 * of their own, so the rest of the sigmoid vectorises (a polynomial exp
 * in vector code was measured no faster than libm's here) */
INLINE void sigmoid(const int n, const double *restrict a, double *restrict s)
{
	for (int i = 0; i < n; i++)
		s[i] = exp(-a[i]);
	for (int i = 0; i < n; i++)
		s[i] = 1 / (1 + s[i]);
}

static double sig(double x) { return 1 / (1 + exp(-x)); }

/* SiLU'(a) from a and its sigmoid s */
static double dsilu_s(double a, double s) { return s * (1 + a * (1 - s)); }

/* y = LN(x) row by row over w; r the reciprocal deviations */
static void ln_fwd(const double *x, int n, int w, double *y, double *r)
{
	for (int i = 0; i < n; i++) {
		const double *xr = x + (size_t)i * w;
		double m = 0, v = 0;
		for (int k = 0; k < w; k++)
			m += xr[k];
		m /= w;
		for (int k = 0; k < w; k++)
			v += (xr[k] - m) * (xr[k] - m);
		r[i] = 1 / sqrt(v / w + LN_EPS);
		for (int k = 0; k < w; k++)
			y[(size_t)i * w + k] = (xr[k] - m) * r[i];
	}
}

/* dx += LN backward of dy at the normalised y */
static void ln_bwd(const double *y, const double *r, const double *dy, int n, int w,
                   double *dx)
{
	for (int i = 0; i < n; i++) {
		const double *yr = y + (size_t)i * w, *d = dy + (size_t)i * w;
		double md = 0, mdy = 0;
		for (int k = 0; k < w; k++) {
			md += d[k];
			mdy += d[k] * yr[k];
		}
		md /= w;
		mdy /= w;
		for (int k = 0; k < w; k++)
			dx[(size_t)i * w + k] += r[i] * (d[k] - md - yr[k] * mdy);
	}
}

/* ---- forward ------------------------------------------------------------ */

typedef struct blk {
	double *lx, *rx, *le, *re; /* LN(x) (N, w), 1/sd (N); LN(e) (E, w), 1/sd (E) */
	double *a1, *s1;         /* E1 pre-activation and its sigmoid (E, w) */
	double *e1;              /* the updated e (E, w) */
	double *b1, *s2;         /* N1 pre-activation and its sigmoid (E, w) */
	double *sm;              /* each node's mean of silu(b1) over its
	                          * incoming edges (N, w) */
} blk;

struct tt_gmn_tape {
	int N, E, w, B;
	blk *b;                  /* B */
	double *xf;              /* the final x (N, w) */
	double *ra, *rs;         /* R1 pre-activation and its sigmoid (N, w) */
	double *pooled, *oa;     /* (w) */
	double *inv;             /* 1 / in-degree (N), 0 without incoming edges */
	/* scratch: the edge embedding in forward, d e in backward (E, w); dx
	 * and d LN(x) in backward (N, w each); four (N, w) arrays of per-node
	 * sums; one row's temporaries (22 w); W transposed (nparams) */
	double *ework, *dx, *dlx, *nwork, *row, *wt;
	double *mem;             /* one allocation behind every array */
	size_t cap;              /* its doubles */
	int bcap;                /* b's entries */
};

void tt_gmn_tape_free(tt_gmn_tape *t)
{
	if (!t)
		return;
	free(t->mem);
	free(t->b);
	free(t);
}

/* Lay t out for a graph of N nodes and E edges, growing its memory when
 * needed.  -1 when out of memory (t keeps what it had). */
static int tape_layout(tt_gmn_tape *t, const tt_gmn_config *c, int N, int E, size_t np)
{
	int w = c->width, B = c->blocks;
	size_t NW = (size_t)N * w, EW = (size_t)E * w;
	size_t per = 2 * NW + N + 6 * EW + E;
	size_t total = B * per + 3 * NW + 2 * (size_t)w + N + EW + 6 * NW + 22 * (size_t)w + np;
	if (total > t->cap) {
		double *m = malloc(total * sizeof *m);
		if (!m)
			return -1;
		free(t->mem);
		t->mem = m;
		t->cap = total;
	}
	if (B > t->bcap) {
		blk *bk = malloc((size_t)B * sizeof *bk);
		if (!bk)
			return -1;
		free(t->b);
		t->b = bk;
		t->bcap = B;
	}
	t->N = N;
	t->E = E;
	t->w = w;
	t->B = B;
	double *m = t->mem;
	for (int b = 0; b < B; b++) {
		blk *k = &t->b[b];
		k->lx = m; m += NW;
		k->rx = m; m += N;
		k->le = m; m += EW;
		k->re = m; m += E;
		k->a1 = m; m += EW;
		k->s1 = m; m += EW;
		k->e1 = m; m += EW;
		k->b1 = m; m += EW;
		k->s2 = m; m += EW;
		k->sm = m; m += NW;
	}
	t->xf = m; m += NW;
	t->ra = m; m += NW;
	t->rs = m; m += NW;
	t->pooled = m; m += w;
	t->oa = m; m += w;
	t->inv = m; m += N;
	t->ework = m; m += EW;
	t->dx = m; m += NW;
	t->dlx = m; m += NW;
	t->nwork = m; m += 4 * NW;
	t->row = m; m += 22 * (size_t)w;
	t->wt = m;
	return 0;
}

/* dx[0..w) += sum over o < w of v[o] W[o][off + k]: one segment of a
 * Linear's input gradient, W (w, in) row-major */
INLINE void tmul_row(const int w, const double *restrict W, const int in, const int off,
                     const double *restrict v, double *restrict dx)
{
	if (w <= 32 && w % 2 == 0) {
		double z[32];  /* odd o's partial sum, as in acc_row */
		for (int k = 0; k < w; k++)
			z[k] = 0;
		for (int o = 0; o < w; o += 2) {
			const double *restrict w0 = W + (size_t)o * in + off, *restrict w1 = w0 + in;
			double v0 = v[o], v1 = v[o + 1];
			for (int k = 0; k < w; k++) {
				dx[k] += v0 * w0[k];
				z[k] += v1 * w1[k];
			}
		}
		for (int k = 0; k < w; k++)
			dx[k] += z[k];
		return;
	}
	for (int o = 0; o < w; o++) {
		const double *restrict wr = W + (size_t)o * in + off;
		double vo = v[o];
		for (int k = 0; k < w; k++)
			dx[k] += vo * wr[k];
	}
}

/* dW[o][off + k] += v[o] x[k] for o, k < w: one segment of a Linear's
 * weight gradient */
INLINE void outer_row(const int w, double *restrict dW, const int in, const int off,
                      const double *restrict v, const double *restrict x)
{
	for (int o = 0; o < w; o++) {
		double *restrict dr = dW + (size_t)o * in + off;
		double vo = v[o];
		for (int k = 0; k < w; k++)
			dr[k] += vo * x[k];
	}
}

/* dW[o][off + k] += sum over c < 4 of v[c][o] x[c][k] for o, k < w: four
 * edges' outer products at once (v is 4 rows of w), a quarter of the
 * stores of four outer_row */
INLINE void outer4(const int w, double *restrict dW, const int in, const int off,
                   const double *restrict v, const double *const *x)
{
	const double *restrict x0 = x[0], *restrict x1 = x[1], *restrict x2 = x[2];
	const double *restrict x3 = x[3];
	for (int o = 0; o < w; o++) {
		double *restrict dr = dW + (size_t)o * in + off;
		double v0 = v[o], v1 = v[w + o], v2 = v[2 * w + o], v3 = v[3 * w + o];
		for (int k = 0; k < w; k++)
			dr[k] += (v0 * x0[k] + v1 * x1[k]) + (v2 * x2[k] + v3 * x3[k]);
	}
}

/*
 * One block, forward, after LN(x) and LN(e):
 *   e1 = e + E2(silu(E1([LN(x)_src, LN(x)_dst, LN(e)])))
 *   x += mean over the edges into each node of N2(silu(N1([LN(x)_src, e1])))
 * E1 and N1 are split by input segment: the parts that read a node's LN(x)
 * are taken once per node (ps, pd, qs, biases folded in), not once per
 * edge; N2 is linear, so the mean of its outputs over a node's edges is N2
 * of the mean of its inputs (sm), taken once per node.  Per edge that
 * leaves three w x w products instead of seven.  wt holds E1, E2, N1 and
 * N2 transposed, back to back; nw is 3 (N, w) arrays; m and y are w
 * values each.
 */
INLINE void block_fwd_w(const int w, const tt_graph *g, const lin *E1, const double *p,
                        const double *wt, const blk *k, const double *e,
                        const double *inv, double *x, double *nw, double *restrict m,
                        double *restrict y)
{
	const int N = g->nnodes;
	const double *te1 = wt, *te2 = te1 + 3 * w * w, *tn1 = te2 + w * w;
	const double *tn2 = tn1 + 2 * w * w;
	const double *be1 = p + E1[0].off + 3 * w * w, *be2 = p + E1[1].off + w * w;
	const double *bn1 = p + E1[2].off + 2 * w * w, *bn2 = p + E1[3].off + w * w;
	double *ps = nw, *pd = ps + (size_t)N * w, *qs = pd + (size_t)N * w;
	for (int v = 0; v < N; v++) {
		const double *lv = k->lx + (size_t)v * w;
		double *a = ps + (size_t)v * w, *b = pd + (size_t)v * w, *c = qs + (size_t)v * w;
		for (int o = 0; o < w; o++) {
			a[o] = be1[o];
			b[o] = 0;
			c[o] = bn1[o];
		}
		acc_row(w, te1, lv, w, a);
		acc_row(w, te1 + w * w, lv, w, b);
		acc_row(w, tn1, lv, w, c);
	}
	memset(k->sm, 0, (size_t)N * w * sizeof *k->sm);
	for (int q = 0; q < g->nedges; q++) {
		size_t qw = (size_t)q * w;
		int vs = g->src[q], vd = g->dst[q];
		double *a1 = k->a1 + qw, *s1 = k->s1 + qw, *e1 = k->e1 + qw;
		double *b1 = k->b1 + qw, *s2 = k->s2 + qw, *sm = k->sm + (size_t)vd * w;
		for (int o = 0; o < w; o++)
			y[o] = ps[(size_t)vs * w + o] + pd[(size_t)vd * w + o];
		acc_row(w, te1 + 2 * w * w, k->le + qw, w, y);
		sigmoid(w, y, s1);
		for (int o = 0; o < w; o++) {
			a1[o] = y[o];
			m[o] = y[o] * s1[o];
		}
		for (int o = 0; o < w; o++)
			y[o] = be2[o];
		acc_row(w, te2, m, w, y);
		for (int o = 0; o < w; o++)
			e1[o] = y[o] + e[qw + o];
		for (int o = 0; o < w; o++)
			y[o] = qs[(size_t)vs * w + o];
		acc_row(w, tn1 + w * w, e1, w, y);
		sigmoid(w, y, s2);
		for (int o = 0; o < w; o++) {
			b1[o] = y[o];
			sm[o] += y[o] * s2[o];
		}
	}
	for (int v = 0; v < N; v++) {
		if (inv[v] == 0)
			continue;  /* no incoming edges: no message */
		double *sm = k->sm + (size_t)v * w, *xv = x + (size_t)v * w;
		for (int o = 0; o < w; o++) {
			sm[o] *= inv[v];
			y[o] = bn2[o];
		}
		acc_row(w, tn2, sm, w, y);
		for (int o = 0; o < w; o++)
			xv[o] += y[o];
	}
}

/*
 * One block, backward, given dx (d of the block's output x) and de (d of
 * its output e): de becomes d of the block's input e, in place, and dlx
 * gets d LN(x).  The mirror of block_fwd_w: N2 and the node segments of E1
 * and N1 per node, the rest per edge, the edges' weight gradients four
 * edges at a time.  nw is 4 (N, w) arrays; r is 22 w values.
 */
INLINE void block_bwd_w(const int w, const tt_graph *g, const lin *E1, const double *p,
                        const blk *k, const double *inv, const double *dx,
                        double *dlx, double *de, double *dp, double *nw,
                        double *restrict r)
{
	const int N = g->nnodes;
	const lin *E2 = E1 + 1, *N1 = E1 + 2, *N2 = E1 + 3;
	const double *W1 = p + E1->off, *W2 = p + E2->off, *Wn1 = p + N1->off;
	const double *Wn2 = p + N2->off;
	double *dW1 = dp + E1->off, *db1 = dW1 + 3 * w * w, *dW2 = dp + E2->off;
	double *db2 = dW2 + w * w, *dWn1 = dp + N1->off, *dbn1 = dWn1 + 2 * w * w;
	double *dWn2 = dp + N2->off, *dbn2 = dWn2 + w * w;
	double *dsm = nw, *das = dsm + (size_t)N * w, *dad = das + (size_t)N * w;
	double *dbs = dad + (size_t)N * w;
	/* four edges' gb, ge, silu(a1) and ga rows, then a row of zeros for
	 * the slots past the last edge */
	double *gb4 = r, *ge4 = r + 4 * w, *sa4 = r + 8 * w, *ga4 = r + 12 * w;
	double *dl = r + 16 * w, *zero = r + 17 * w;
	const double *e1p[4], *lep[4], *sap[4];
	for (int o = 0; o < w; o++)
		zero[o] = 0;
	for (int c = 0; c < 4; c++)
		sap[c] = sa4 + c * w;
	memset(nw, 0, 4 * (size_t)N * w * sizeof *nw);
	/* N2 per node: d sm = N2' dx, each edge's silu(b1) gets inv of it */
	for (int v = 0; v < N; v++) {
		if (inv[v] == 0)
			continue;
		const double *dxv = dx + (size_t)v * w;
		outer_row(w, dWn2, w, 0, dxv, k->sm + (size_t)v * w);
		for (int o = 0; o < w; o++)
			dbn2[o] += dxv[o];
		double *d = dsm + (size_t)v * w;
		tmul_row(w, Wn2, w, 0, dxv, d);
		for (int o = 0; o < w; o++)
			d[o] *= inv[v];
	}
	for (int q = 0; q < g->nedges; q++) {
		size_t qw = (size_t)q * w;
		int vs = g->src[q], vd = g->dst[q], c = q & 3;
		const double *a1 = k->a1 + qw, *s1 = k->s1 + qw, *b1 = k->b1 + qw;
		const double *s2 = k->s2 + qw;
		double *gb = gb4 + c * w, *ge = ge4 + c * w, *sa = sa4 + c * w, *ga = ga4 + c * w;
		/* N1: its e1 segment here, its LN(x)_src segment per node */
		for (int o = 0; o < w; o++)
			gb[o] = dsm[(size_t)vd * w + o] * dsilu_s(b1[o], s2[o]);
		e1p[c] = k->e1 + qw;
		for (int o = 0; o < w; o++) {
			ge[o] = de[qw + o];
			dbs[(size_t)vs * w + o] += gb[o];
		}
		tmul_row(w, Wn1, 2 * w, w, gb, ge);       /* ge: d e1 */
		/* E2, then E1's LN(e) segment here, its LN(x) segments per node */
		for (int o = 0; o < w; o++)
			sa[o] = a1[o] * s1[o];
		for (int o = 0; o < w; o++) {
			db2[o] += ge[o];
			ga[o] = 0;
		}
		tmul_row(w, W2, w, 0, ge, ga);
		for (int o = 0; o < w; o++) {
			ga[o] *= dsilu_s(a1[o], s1[o]);
			das[(size_t)vs * w + o] += ga[o];
			dad[(size_t)vd * w + o] += ga[o];
			dl[o] = 0;
		}
		lep[c] = k->le + qw;
		tmul_row(w, W1, 3 * w, 2 * w, ga, dl);
		/* the residual passes d e1 through; LN(e) adds its part */
		for (int o = 0; o < w; o++)
			de[qw + o] = ge[o];
		ln_bwd(k->le + qw, k->re + q, dl, 1, w, de + qw);
		if (c == 3 || q == g->nedges - 1) {
			for (int z = c + 1; z < 4; z++) {  /* past the last edge: add 0 */
				for (int o = 0; o < w; o++)
					gb4[z * w + o] = ge4[z * w + o] = ga4[z * w + o] = 0;
				e1p[z] = lep[z] = zero;
				sap[z] = zero;
			}
			outer4(w, dWn1, 2 * w, w, gb4, e1p);
			outer4(w, dW2, w, 0, ge4, sap);
			outer4(w, dW1, 3 * w, 2 * w, ga4, lep);
		}
	}
	/* the node segments of E1 and N1, and their biases (folded into the
	 * per-node sums in forward) */
	for (int v = 0; v < N; v++) {
		const double *lv = k->lx + (size_t)v * w;
		const double *as = das + (size_t)v * w, *ad = dad + (size_t)v * w;
		const double *bs = dbs + (size_t)v * w;
		double *dlv = dlx + (size_t)v * w;
		outer_row(w, dW1, 3 * w, 0, as, lv);
		outer_row(w, dW1, 3 * w, w, ad, lv);
		outer_row(w, dWn1, 2 * w, 0, bs, lv);
		for (int o = 0; o < w; o++) {
			db1[o] += as[o];
			dbn1[o] += bs[o];
		}
		tmul_row(w, W1, 3 * w, 0, as, dlv);
		tmul_row(w, W1, 3 * w, w, ad, dlv);
		tmul_row(w, Wn1, 2 * w, 0, bs, dlv);
	}
}

/* y (n, w) = x (n, in) W' + b, row by row, wt W transposed (in, w); acc
 * is w values */
INLINE void embed_w(const int w, const double *restrict wt, const double *restrict b,
                    const double *restrict x, int n, int in, double *restrict y,
                    double *restrict acc)
{
	for (int i = 0; i < n; i++) {
		for (int o = 0; o < w; o++)
			acc[o] = b[o];
		acc_row(w, wt, x + (size_t)i * in, in, acc);
		for (int o = 0; o < w; o++)
			y[(size_t)i * w + o] = acc[o];
	}
}

/* The W and b gradients of an embedding y (n, w) = x (n, in) W' + b, given
 * dy (no input gradient): four rows at a time into W transposed (wt, in x
 * w, scratch), so each row of wt is written once per four rows of x, then
 * added into dW. */
INLINE void embed_bwd_w(const int w, const int in, const double *restrict x,
                        const double *restrict dy, int n, double *restrict wt,
                        double *restrict dW, double *restrict db)
{
	memset(wt, 0, (size_t)in * w * sizeof *wt);
	int i = 0;
	for (; i + 4 <= n; i += 4) {
		const double *d0 = dy + (size_t)i * w, *d1 = d0 + w, *d2 = d1 + w, *d3 = d2 + w;
		const double *x0 = x + (size_t)i * in, *x1 = x0 + in, *x2 = x1 + in, *x3 = x2 + in;
		for (int f = 0; f < in; f++) {
			double a0 = x0[f], a1 = x1[f], a2 = x2[f], a3 = x3[f];
			double *r = wt + (size_t)f * w;
			for (int o = 0; o < w; o++)
				r[o] += (a0 * d0[o] + a1 * d1[o]) + (a2 * d2[o] + a3 * d3[o]);
		}
		for (int o = 0; o < w; o++)
			db[o] += (d0[o] + d1[o]) + (d2[o] + d3[o]);
	}
	for (; i < n; i++) {
		const double *d = dy + (size_t)i * w, *xr = x + (size_t)i * in;
		for (int f = 0; f < in; f++)
			for (int o = 0; o < w; o++)
				wt[(size_t)f * w + o] += xr[f] * d[o];
		for (int o = 0; o < w; o++)
			db[o] += d[o];
	}
	for (int o = 0; o < w; o++)
		for (int f = 0; f < in; f++)
			dW[(size_t)o * in + f] += wt[(size_t)f * w + o];
}

/* The instances: a constant width each, then any width (with scratch from
 * the tape). */
#define BLOCK_W(W)                                                                        \
	static void block_fwd_##W(const tt_graph *g, const lin *E1, const double *p,       \
	                          const double *wt, const blk *k, const double *e,          \
	                          const double *inv, double *x, double *nw)                 \
	{                                                                                   \
		double m[W], y[W];                                                          \
		block_fwd_w(W, g, E1, p, wt, k, e, inv, x, nw, m, y);                       \
	}                                                                                   \
	static void block_bwd_##W(const tt_graph *g, const lin *E1, const double *p,       \
	                          const blk *k, const double *inv, const double *dx,        \
	                          double *dlx, double *de, double *dp, double *nw)          \
	{                                                                                   \
		double r[22 * W];                                                           \
		block_bwd_w(W, g, E1, p, k, inv, dx, dlx, de, dp, nw, r);                   \
	}                                                                                   \
	static void embed_##W(const double *wt, const double *b, const double *x, int n,   \
	                      int in, double *y)                                            \
	{                                                                                   \
		double acc[W];                                                              \
		embed_w(W, wt, b, x, n, in, y, acc);                                        \
	}                                                                                   \
	static void embed_bwd_##W(int in, const double *x, const double *dy, int n,         \
	                          double *wt, double *dW, double *db)                       \
	{                                                                                   \
		embed_bwd_w(W, in, x, dy, n, wt, dW, db);                                   \
	}
BLOCK_W(8)
BLOCK_W(16)
BLOCK_W(32)

static void block_fwd(int w, const tt_graph *g, const lin *E1, const double *p,
                      const double *wt, const blk *k, const double *e, const double *inv,
                      double *x, double *nw, double *row)
{
	switch (w) {
	case 8:
		block_fwd_8(g, E1, p, wt, k, e, inv, x, nw);
		break;
	case 16:
		block_fwd_16(g, E1, p, wt, k, e, inv, x, nw);
		break;
	case 32:
		block_fwd_32(g, E1, p, wt, k, e, inv, x, nw);
		break;
	default:
		block_fwd_w(w, g, E1, p, wt, k, e, inv, x, nw, row, row + w);
	}
}

static void embed(int w, const lin *l, const double *p, const double *x, int n, double *wt,
                  double *y, double *row)
{
	const double *b = p + l->off + (size_t)l->in * l->out;
	transpose(l, p, wt);
	switch (w) {
	case 8:
		embed_8(wt, b, x, n, l->in, y);
		break;
	case 16:
		embed_16(wt, b, x, n, l->in, y);
		break;
	case 32:
		embed_32(wt, b, x, n, l->in, y);
		break;
	default:
		embed_w(w, wt, b, x, n, l->in, y, row);
	}
}

static void embed_bwd(int w, const lin *l, const double *x, const double *dy, int n,
                      double *wt, double *dp)
{
	double *dW = dp + l->off, *db = dW + (size_t)l->in * l->out;
	switch (w) {
	case 8:
		embed_bwd_8(l->in, x, dy, n, wt, dW, db);
		break;
	case 16:
		embed_bwd_16(l->in, x, dy, n, wt, dW, db);
		break;
	case 32:
		embed_bwd_32(l->in, x, dy, n, wt, dW, db);
		break;
	default:
		embed_bwd_w(w, l->in, x, dy, n, wt, dW, db);
	}
}

static void block_bwd(int w, const tt_graph *g, const lin *E1, const double *p,
                      const blk *k, const double *inv, const double *dx, double *dlx,
                      double *de, double *dp, double *nw, double *row)
{
	switch (w) {
	case 8:
		block_bwd_8(g, E1, p, k, inv, dx, dlx, de, dp, nw);
		break;
	case 16:
		block_bwd_16(g, E1, p, k, inv, dx, dlx, de, dp, nw);
		break;
	case 32:
		block_bwd_32(g, E1, p, k, inv, dx, dlx, de, dp, nw);
		break;
	default:
		block_bwd_w(w, g, E1, p, k, inv, dx, dlx, de, dp, nw, row);
	}
}

int tt_gmn_forward(const tt_gmn_config *c, const double *p, const tt_graph *g,
                   double *out, tt_gmn_tape **tape, tt_err *err)
{
	if (g->nf_node != c->nf_node || g->nf_edge != c->nf_edge)
		return tt_err_set(err, TT_EINPUT, "gmn: graph features (%d node, %d edge), "
		                  "the network expects (%d, %d)", g->nf_node, g->nf_edge,
		                  c->nf_node, c->nf_edge);
	if (g->nnodes < 1)
		return tt_err_set(err, TT_EINPUT, "gmn: a graph without nodes");
	for (int k = 0; k < g->nedges; k++)
		if (g->src[k] < 0 || g->src[k] >= g->nnodes || g->dst[k] < 0 ||
		    g->dst[k] >= g->nnodes)
			return tt_err_set(err, TT_EINPUT, "gmn: edge %d joins %d and %d, nodes are "
			                  "0..%d", k, g->src[k], g->dst[k], g->nnodes - 1);
	lin L[64];
	layers(c, L);
	int N = g->nnodes, E = g->nedges, w = c->width, B = c->blocks;
	tt_gmn_tape *t = tape && *tape ? *tape : calloc(1, sizeof *t);
	if (!t || tape_layout(t, c, N, E, tt_gmn_nparams(c))) {
		if (!(tape && *tape))
			tt_gmn_tape_free(t);
		return tt_err_set(err, TT_ERUNTIME, "gmn: out of memory for a graph of %d "
		                  "nodes and %d edges", N, E);
	}
	if (tape)
		*tape = t;
	double *x = t->xf, *e = t->ework, *m = t->row, *r = m + w;
	/* 1 / in-degree: the mean's weight at each node */
	double *inv = t->inv;
	memset(inv, 0, (size_t)N * sizeof *inv);
	for (int k = 0; k < E; k++)
		inv[g->dst[k]] += 1;
	for (int v = 0; v < N; v++)
		inv[v] = inv[v] > 0 ? 1 / inv[v] : 0;

	embed(w, &L[0], p, g->xnode, N, t->wt, x, t->row);
	embed(w, &L[1], p, g->xedge, E, t->wt, e, t->row);
	for (int b = 0; b < B; b++) {
		const blk *k = &t->b[b];
		const lin *E1 = &L[2 + 4 * b];
		double *wt = t->wt;
		for (int j = 0; j < 4; j++) {
			transpose(&E1[j], p, wt);
			wt += (size_t)E1[j].in * E1[j].out;
		}
		ln_fwd(x, N, w, k->lx, k->rx);
		ln_fwd(e, E, w, k->le, k->re);
		block_fwd(w, g, E1, p, t->wt, k, e, inv, x, t->nwork, t->row);
		e = k->e1;
	}
	/* readout, node by node: pooled = mean over nodes of R2(silu(R1(x))) */
	const lin *R1 = &L[2 + 4 * B], *R2 = R1 + 1, *O1 = R1 + 2, *O2 = R1 + 3;
	double *tr1 = t->wt, *tr2 = tr1 + (size_t)w * w;
	transpose(R1, p, tr1);
	transpose(R2, p, tr2);
	const double *br1 = p + R1->off + (size_t)w * w, *br2 = p + R2->off + (size_t)w * w;
	for (int j = 0; j < w; j++)
		t->pooled[j] = 0;
	for (int i = 0; i < N; i++) {
		double *ra = t->ra + (size_t)i * w, *rs = t->rs + (size_t)i * w;
		for (int j = 0; j < w; j++)
			ra[j] = br1[j];
		acc_row(w, tr1, x + (size_t)i * w, w, ra);
		sigmoid(w, ra, rs);
		for (int j = 0; j < w; j++)
			m[j] = ra[j] * rs[j];
		for (int j = 0; j < w; j++)
			r[j] = br2[j];
		acc_row(w, tr2, m, w, r);
		for (int j = 0; j < w; j++)
			t->pooled[j] += r[j] / N;
	}
	lin_fwd(O1, p, t->pooled, 1, t->oa);
	for (int j = 0; j < w; j++)
		m[j] = t->oa[j] * sig(t->oa[j]);
	lin_fwd(O2, p, m, 1, out);
	if (!tape)
		tt_gmn_tape_free(t);
	return TT_OK;
}

/* ---- backward ----------------------------------------------------------- */

void tt_gmn_backward(const tt_gmn_config *c, const double *p, const tt_graph *g,
                     tt_gmn_tape *t, const double *dout, double *dp)
{
	lin L[64];
	layers(c, L);
	int N = t->N, E = t->E, w = t->w, B = c->blocks;
	size_t NW = (size_t)N * w, EW = (size_t)E * w;
	double *dx = t->dx, *dlx = t->dlx, *de = t->ework;
	/* the row's temporaries: v1 v2 v3 d (w each), sa (w) */
	double *v1 = t->row, *v2 = v1 + w, *v3 = v2 + w, *d = v3 + w, *sa = d + w;
	const lin *R1 = &L[2 + 4 * B], *R2 = R1 + 1, *O1 = R1 + 2, *O2 = R1 + 3;

	/* readout: out = O2(silu(O1(pooled))), pooled = mean_n R2(silu(R1(x))) */
	for (int j = 0; j < w; j++)
		v1[j] = t->oa[j] * sig(t->oa[j]);
	memset(v2, 0, (size_t)w * sizeof *v2);
	lin_bwd(O2, p, v1, dout, 1, dp, v2);
	for (int j = 0; j < w; j++)
		v2[j] *= dsilu_s(t->oa[j], sig(t->oa[j]));
	memset(v3, 0, (size_t)w * sizeof *v3);
	lin_bwd(O1, p, t->pooled, v2, 1, dp, v3);
	for (int j = 0; j < w; j++)
		v1[j] = v3[j] / N;     /* d R2's output, the same at every node */
	for (int i = 0; i < N; i++) {
		const double *ra = t->ra + (size_t)i * w, *rs = t->rs + (size_t)i * w;
		for (int j = 0; j < w; j++)
			sa[j] = ra[j] * rs[j];
		bwd_row(w, 1, p + R2->off, dp + R2->off, dp + R2->off + (size_t)w * w, sa, NULL,
		        NULL, v1, d);
		for (int j = 0; j < w; j++)
			d[j] *= dsilu_s(ra[j], rs[j]);
		bwd_row(w, 1, p + R1->off, dp + R1->off, dp + R1->off + (size_t)w * w,
		        t->xf + (size_t)i * w, NULL, NULL, d, dx + (size_t)i * w);
	}

	memset(de, 0, EW * sizeof *de);
	for (int b = B - 1; b >= 0; b--) {
		const blk *k = &t->b[b];
		memset(dlx, 0, NW * sizeof *dlx);
		block_bwd(w, g, &L[2 + 4 * b], p, k, t->inv, dx, dlx, de, dp, t->nwork, t->row);
		ln_bwd(k->lx, k->rx, dlx, N, w, dx);
	}
	embed_bwd(w, &L[0], g->xnode, dx, N, t->wt, dp);
	embed_bwd(w, &L[1], g->xedge, de, E, t->wt, dp);
}
