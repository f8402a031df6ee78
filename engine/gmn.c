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
 * backward) and the updated e; then the final x and the readout's
 * pre-activations.  Memory is about (6 B + 1) E w doubles for E edges: a
 * 5k edge graph at width 32 and 4 blocks keeps about 32 MB, at width 8 and
 * 1 block about 2 MB.  A tape is reused by the next forward given it (any
 * graph), so a fit of many steps allocates once per observation.
 *
 * Speed.  Every edge of a graph goes through four small Linear layers in
 * each block, forward and backward, once per observation per fit step:
 * this file is nearly all of an FMS decision's time.  Both passes run edge
 * by edge (one row through E1, E2, N1 and N2 at a time, reading LN(x) of
 * its two nodes in place instead of gathering [x_src, x_dst, e] rows), so
 * the working set stays in L1 and no E x 3w buffer is filled.  Every sum
 * is still taken in the order of the plain definition (y[o] = b[o] + W[o,0]
 * x[0] + W[o,1] x[1] + ..., gradients accumulated row after row), so the
 * results are bit for bit those of the straightforward loops; the forward
 * keeps W transposed so that the outputs, not the reduction, are the
 * vectorised inner loop.
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

/* y[0..out) += sum over k < n of Wt[k][o] x[k], in k's order (Wt (n, out),
 * W transposed, so the outputs are the inner loop) */
INLINE void acc_row(const int out, const double *restrict Wt, const double *restrict x,
                    const int n, double *restrict y)
{
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
} blk;

struct tt_gmn_tape {
	int N, E, w, B;
	blk *b;                  /* B */
	double *xf;              /* the final x (N, w) */
	double *ra, *rs;         /* R1 pre-activation and its sigmoid (N, w) */
	double *pooled, *oa;     /* (w) */
	double *inv;             /* 1 / in-degree (N), 0 without incoming edges */
	/* scratch: the edge embedding in forward, d e in backward (E, w); dx
	 * and d LN(x) in backward (N, w each); one row's temporaries (8 w);
	 * W transposed (nparams) */
	double *ework, *dx, *dlx, *row, *wt;
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
	size_t per = NW + N + 6 * EW + E;
	size_t total = B * per + 3 * NW + 2 * (size_t)w + N + EW + 2 * NW + 8 * (size_t)w + np;
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
	t->row = m; m += 8 * (size_t)w;
	t->wt = m;
	return 0;
}

/*
 * One block's edges, forward, edge by edge: e1 = e + E2(silu(E1([LN(x)_src,
 * LN(x)_dst, LN(e)]))), then the message N2(silu(N1([LN(x)_src, e1])))
 * added into the mean at its destination node.  LN(x) was taken before
 * any node moved, so the order of the edges changes nothing but the order
 * of each node's sum, which is the edges' order as it always was.  wt
 * holds E1, E2, N1 and N2 transposed, back to back; m and y are w values
 * of scratch each.
 */
INLINE void block_fwd_w(const int w, const tt_graph *g, const lin *E1, const double *p,
                        const double *wt, const blk *k, const double *e,
                        const double *inv, double *x, double *restrict m,
                        double *restrict y)
{
	const double *te1 = wt, *te2 = te1 + 3 * w * w, *tn1 = te2 + w * w;
	const double *tn2 = tn1 + 2 * w * w;
	const double *be1 = p + E1[0].off + 3 * w * w, *be2 = p + E1[1].off + w * w;
	const double *bn1 = p + E1[2].off + 2 * w * w, *bn2 = p + E1[3].off + w * w;
	for (int q = 0; q < g->nedges; q++) {
		size_t qw = (size_t)q * w;
		const double *ls = k->lx + (size_t)g->src[q] * w;
		const double *ld = k->lx + (size_t)g->dst[q] * w;
		double *a1 = k->a1 + qw, *s1 = k->s1 + qw, *e1 = k->e1 + qw;
		double *b1 = k->b1 + qw, *s2 = k->s2 + qw;
		for (int o = 0; o < w; o++)
			y[o] = be1[o];
		acc_row(w, te1, ls, w, y);
		acc_row(w, te1 + w * w, ld, w, y);
		acc_row(w, te1 + 2 * w * w, k->le + qw, w, y);
		for (int o = 0; o < w; o++) {
			double sg = 1 / (1 + exp(-y[o]));
			a1[o] = y[o];
			s1[o] = sg;
			m[o] = y[o] * sg;
		}
		for (int o = 0; o < w; o++)
			y[o] = be2[o];
		acc_row(w, te2, m, w, y);
		for (int o = 0; o < w; o++)
			e1[o] = y[o] + e[qw + o];
		for (int o = 0; o < w; o++)
			y[o] = bn1[o];
		acc_row(w, tn1, ls, w, y);
		acc_row(w, tn1 + w * w, e1, w, y);
		for (int o = 0; o < w; o++) {
			double sg = 1 / (1 + exp(-y[o]));
			b1[o] = y[o];
			s2[o] = sg;
			m[o] = y[o] * sg;
		}
		for (int o = 0; o < w; o++)
			y[o] = bn2[o];
		acc_row(w, tn2, m, w, y);
		double sc = inv[g->dst[q]], *xv = x + (size_t)g->dst[q] * w;
		for (int o = 0; o < w; o++)
			xv[o] += sc * y[o];
	}
}

/*
 * One block's edges, backward, given dx (d of the block's output x) and de
 * (d of its output e): first the node update edge by edge (dlx and de
 * gain what N1's input passes back), then the edge update edge by edge (de
 * becomes d of the block's input e, in place; dlx gains E1's share).  Each
 * dlx row and each gradient entry is summed in the edges' order, as the
 * plain loops did.  r is 6 w values of scratch.
 */
INLINE void block_bwd_w(const int w, const tt_graph *g, const lin *E1, const double *p,
                        const blk *k, const double *inv, const double *dx,
                        double *dlx, double *de, double *dp, double *restrict r)
{
	const lin *E2 = E1 + 1, *N1 = E1 + 2, *N2 = E1 + 3;
	double *gm = r, *sa = r + w, *d = r + 2 * w, *dcat = r + 3 * w;
	for (int q = 0; q < g->nedges; q++) {
		size_t qw = (size_t)q * w;
		int vs = g->src[q], vd = g->dst[q];
		double sc = inv[vd];
		for (int j = 0; j < w; j++) {
			gm[j] = sc * dx[(size_t)vd * w + j];
			sa[j] = k->b1[qw + j] * k->s2[qw + j];
		}
		bwd_row(w, 1, p + N2->off, dp + N2->off, dp + N2->off + w * w, sa, NULL, NULL, gm,
		        d);
		for (int j = 0; j < w; j++)
			d[j] *= dsilu_s(k->b1[qw + j], k->s2[qw + j]);
		bwd_row(w, 2, p + N1->off, dp + N1->off, dp + N1->off + 2 * w * w,
		        k->lx + (size_t)vs * w, k->e1 + qw, NULL, d, dcat);
		for (int j = 0; j < w; j++) {
			dlx[(size_t)vs * w + j] += dcat[j];
			de[qw + j] += dcat[w + j];
		}
	}
	for (int q = 0; q < g->nedges; q++) {
		size_t qw = (size_t)q * w;
		int vs = g->src[q], vd = g->dst[q];
		for (int j = 0; j < w; j++)
			sa[j] = k->a1[qw + j] * k->s1[qw + j];
		bwd_row(w, 1, p + E2->off, dp + E2->off, dp + E2->off + w * w, sa, NULL, NULL,
		        de + qw, d);
		for (int j = 0; j < w; j++)
			d[j] *= dsilu_s(k->a1[qw + j], k->s1[qw + j]);
		bwd_row(w, 3, p + E1->off, dp + E1->off, dp + E1->off + 3 * w * w,
		        k->lx + (size_t)vs * w, k->lx + (size_t)vd * w, k->le + qw, d, dcat);
		for (int j = 0; j < w; j++) {
			dlx[(size_t)vs * w + j] += dcat[j];
			dlx[(size_t)vd * w + j] += dcat[w + j];
		}
		ln_bwd(k->le + qw, k->re + q, dcat + 2 * w, 1, w, de + qw);
	}
}

/* The instances: a constant width each, then any width (with scratch from
 * the tape). */
#define BLOCK_W(W)                                                                        \
	static void block_fwd_##W(const tt_graph *g, const lin *E1, const double *p,       \
	                          const double *wt, const blk *k, const double *e,          \
	                          const double *inv, double *x)                             \
	{                                                                                   \
		double m[W], y[W];                                                          \
		block_fwd_w(W, g, E1, p, wt, k, e, inv, x, m, y);                           \
	}                                                                                   \
	static void block_bwd_##W(const tt_graph *g, const lin *E1, const double *p,       \
	                          const blk *k, const double *inv, const double *dx,        \
	                          double *dlx, double *de, double *dp)                      \
	{                                                                                   \
		double r[6 * W];                                                            \
		block_bwd_w(W, g, E1, p, k, inv, dx, dlx, de, dp, r);                       \
	}
BLOCK_W(8)
BLOCK_W(16)
BLOCK_W(32)

static void block_fwd(int w, const tt_graph *g, const lin *E1, const double *p,
                      const double *wt, const blk *k, const double *e, const double *inv,
                      double *x, double *row)
{
	switch (w) {
	case 8:
		block_fwd_8(g, E1, p, wt, k, e, inv, x);
		break;
	case 16:
		block_fwd_16(g, E1, p, wt, k, e, inv, x);
		break;
	case 32:
		block_fwd_32(g, E1, p, wt, k, e, inv, x);
		break;
	default:
		block_fwd_w(w, g, E1, p, wt, k, e, inv, x, row, row + w);
	}
}

static void block_bwd(int w, const tt_graph *g, const lin *E1, const double *p,
                      const blk *k, const double *inv, const double *dx, double *dlx,
                      double *de, double *dp, double *row)
{
	switch (w) {
	case 8:
		block_bwd_8(g, E1, p, k, inv, dx, dlx, de, dp);
		break;
	case 16:
		block_bwd_16(g, E1, p, k, inv, dx, dlx, de, dp);
		break;
	case 32:
		block_bwd_32(g, E1, p, k, inv, dx, dlx, de, dp);
		break;
	default:
		block_bwd_w(w, g, E1, p, k, inv, dx, dlx, de, dp, row);
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

	lin_fwd(&L[0], p, g->xnode, N, x);
	lin_fwd(&L[1], p, g->xedge, E, e);
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
		block_fwd(w, g, E1, p, t->wt, k, e, inv, x, t->row);
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
		for (int j = 0; j < w; j++) {
			rs[j] = sig(ra[j]);
			m[j] = ra[j] * rs[j];
		}
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
		block_bwd(w, g, &L[2 + 4 * b], p, k, t->inv, dx, dlx, de, dp, t->row);
		ln_bwd(k->lx, k->rx, dlx, N, w, dx);
	}
	lin_bwd(&L[0], p, g->xnode, dx, N, dp, NULL);
	lin_bwd(&L[1], p, g->xedge, de, E, dp, NULL);
}
