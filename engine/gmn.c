/*
 * gmn.c — the graph metanetwork; see gmn.h.
 *
 * Parameters are one vector of Linear layers, each W (out, in) row-major
 * then b (out), in this order: node embedding, edge embedding; per block
 * E1 (3w -> w), E2 (w -> w), N1 (2w -> w), N2 (w -> w); readout R1, R2
 * (w -> w), O1 (w -> w), O2 (w -> out).
 *
 * The tape keeps, per block, the block's input x and e, the normalised
 * LN(x) and LN(e) with their reciprocal deviations, the pre-activations
 * of E1 and N1 and the updated e; SiLU outputs are recomputed from the
 * pre-activations in backward.  Memory is O(B (N + E) w) doubles: a 5k
 * edge graph at width 32 and 4 blocks keeps about 6 MB.
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

static double sig(double x) { return 1 / (1 + exp(-x)); }
static double silu(double x) { return x * sig(x); }
static double dsilu(double x) { double s = sig(x); return s * (1 + x * (1 - s)); }

static void silu_v(const double *a, size_t n, double *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = silu(a[i]);
}

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
	double *x0, *e0;         /* the block's inputs */
	double *lx, *rx, *le, *re;
	double *a1, *e1, *b1;    /* E1 pre-activation, updated e, N1 pre-activation */
} blk;

struct tt_gmn_tape {
	int N, E, w;
	blk *b;
	double *xf, *ra, *pooled, *oa;
	double *indeg;
	double *mem;             /* one allocation behind every array */
};

void tt_gmn_tape_free(tt_gmn_tape *t)
{
	if (!t)
		return;
	free(t->mem);
	free(t->b);
	free(t);
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
	size_t NW = (size_t)N * w, EW = (size_t)E * w;
	/* per block: x0 lx (NW each), rx (N), e0 le a1 e1 b1 (EW each), re (E);
	 * then xf ra (NW), pooled oa (w), indeg (N), and scratch: x e (NW +
	 * EW), ein (3 EW), msg (EW) */
	size_t per = 2 * NW + N + 5 * EW + E;
	size_t total = B * per + 2 * NW + 2 * (size_t)w + N + NW + EW + 3 * EW + EW;
	tt_gmn_tape *t = calloc(1, sizeof *t);
	double *m = malloc(total * sizeof *m);
	blk *bk = calloc((size_t)B + 1, sizeof *bk);
	if (!t || !m || !bk) {
		free(t);
		free(m);
		free(bk);
		return tt_err_set(err, TT_ERUNTIME, "gmn: out of memory for a graph of %d "
		                  "nodes and %d edges", N, E);
	}
	t->N = N;
	t->E = E;
	t->w = w;
	t->b = bk;
	t->mem = m;
	for (int b = 0; b < B; b++) {
		bk[b].x0 = m; m += NW;
		bk[b].lx = m; m += NW;
		bk[b].rx = m; m += N;
		bk[b].e0 = m; m += EW;
		bk[b].le = m; m += EW;
		bk[b].a1 = m; m += EW;
		bk[b].e1 = m; m += EW;
		bk[b].b1 = m; m += EW;
		bk[b].re = m; m += E;
	}
	t->xf = m; m += NW;
	t->ra = m; m += NW;
	t->pooled = m; m += w;
	t->oa = m; m += w;
	t->indeg = m; m += N;
	double *x = m; m += NW;
	double *e = m; m += EW;
	double *ein = m; m += 3 * EW;
	double *msg = m;
	memset(t->indeg, 0, (size_t)N * sizeof *t->indeg);
	for (int k = 0; k < E; k++)
		t->indeg[g->dst[k]] += 1;

	lin_fwd(&L[0], p, g->xnode, N, x);
	lin_fwd(&L[1], p, g->xedge, E, e);
	for (int b = 0; b < B; b++) {
		blk *k = &bk[b];
		const lin *E1 = &L[2 + 4 * b], *E2 = E1 + 1, *N1 = E1 + 2, *N2 = E1 + 3;
		memcpy(k->x0, x, NW * sizeof *x);
		memcpy(k->e0, e, EW * sizeof *e);
		ln_fwd(x, N, w, k->lx, k->rx);
		ln_fwd(e, E, w, k->le, k->re);
		for (int q = 0; q < E; q++) {
			double *r = ein + (size_t)q * 3 * w;
			memcpy(r, k->lx + (size_t)g->src[q] * w, w * sizeof *r);
			memcpy(r + w, k->lx + (size_t)g->dst[q] * w, w * sizeof *r);
			memcpy(r + 2 * w, k->le + (size_t)q * w, w * sizeof *r);
		}
		lin_fwd(E1, p, ein, E, k->a1);
		silu_v(k->a1, EW, msg);
		lin_fwd(E2, p, msg, E, k->e1);       /* a2 into e1 */
		for (size_t i = 0; i < EW; i++)
			k->e1[i] += e[i];
		memcpy(e, k->e1, EW * sizeof *e);
		for (int q = 0; q < E; q++) {        /* nin = [LN(x)_src, e] */
			double *r = ein + (size_t)q * 2 * w;
			memcpy(r, k->lx + (size_t)g->src[q] * w, w * sizeof *r);
			memcpy(r + w, e + (size_t)q * w, w * sizeof *r);
		}
		lin_fwd(N1, p, ein, E, k->b1);
		silu_v(k->b1, EW, ein);
		lin_fwd(N2, p, ein, E, msg);
		for (int q = 0; q < E; q++) {
			int v = g->dst[q];
			double s = 1 / t->indeg[v];
			for (int j = 0; j < w; j++)
				x[(size_t)v * w + j] += s * msg[(size_t)q * w + j];
		}
	}
	memcpy(t->xf, x, NW * sizeof *x);
	const lin *R1 = &L[2 + 4 * B], *R2 = R1 + 1, *O1 = R1 + 2, *O2 = R1 + 3;
	lin_fwd(R1, p, x, N, t->ra);
	silu_v(t->ra, NW, x);
	lin_fwd(R2, p, x, N, ein);               /* r (N, w) */
	for (int j = 0; j < w; j++)
		t->pooled[j] = 0;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < w; j++)
			t->pooled[j] += ein[(size_t)i * w + j] / N;
	lin_fwd(O1, p, t->pooled, 1, t->oa);
	double s[256], *sp = w <= 256 ? s : malloc((size_t)w * sizeof *sp);
	silu_v(t->oa, (size_t)w, sp);
	lin_fwd(O2, p, sp, 1, out);
	if (sp != s)
		free(sp);
	if (tape)
		*tape = t;
	else
		tt_gmn_tape_free(t);
	return TT_OK;
}

/* ---- backward ----------------------------------------------------------- */

void tt_gmn_backward(const tt_gmn_config *c, const double *p, const tt_graph *g,
                     const tt_gmn_tape *t, const double *dout, double *dp)
{
	lin L[64];
	layers(c, L);
	int N = t->N, E = t->E, w = t->w, B = c->blocks;
	size_t NW = (size_t)N * w, EW = (size_t)E * w;
	/* scratch: node arrays dx dx0 dlx act_n dact_n (NW each); edge arrays
	 * de de0 dmsg s b (EW each), wide cat dcat (3 EW each); readout
	 * vectors (w each) */
	size_t total = 5 * NW + 5 * EW + 6 * EW + 4 * (size_t)w;
	double *mem = calloc(total, sizeof *mem);
	if (!mem)
		return; /* dp stays as it was: no gradient this step */
	double *dx = mem, *dx0 = dx + NW, *dlx = dx0 + NW, *an = dlx + NW, *dan = an + NW;
	double *de = dan + NW, *de0 = de + EW, *dmsg = de0 + EW, *sa = dmsg + EW;
	double *db = sa + EW, *cat = db + EW, *dcat = cat + 3 * EW;
	double *v1 = dcat + 3 * EW, *v2 = v1 + w, *v3 = v2 + w;
	const lin *R1 = &L[2 + 4 * B], *R2 = R1 + 1, *O1 = R1 + 2, *O2 = R1 + 3;

	/* readout: out = O2(silu(O1(pooled))), pooled = mean_n R2(silu(R1(x))) */
	silu_v(t->oa, (size_t)w, v1);
	lin_bwd(O2, p, v1, dout, 1, dp, v2);
	for (int j = 0; j < w; j++)
		v2[j] *= dsilu(t->oa[j]);
	lin_bwd(O1, p, t->pooled, v2, 1, dp, v3);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < w; j++)
			dan[(size_t)i * w + j] = v3[j] / N;
	silu_v(t->ra, NW, an);
	memset(dlx, 0, NW * sizeof *dlx);
	lin_bwd(R2, p, an, dan, N, dp, dlx);
	for (size_t i = 0; i < NW; i++)
		dlx[i] *= dsilu(t->ra[i]);
	lin_bwd(R1, p, t->xf, dlx, N, dp, dx);

	for (int b = B - 1; b >= 0; b--) {
		const blk *k = &t->b[b];
		const lin *E1 = &L[2 + 4 * b], *E2 = E1 + 1, *N1 = E1 + 2, *N2 = E1 + 3;
		/* x_out = x0 + agg: the residual passes dx through */
		memcpy(dx0, dx, NW * sizeof *dx);
		memset(dlx, 0, NW * sizeof *dlx);
		/* agg[v] = mean of msg over the edges into v */
		for (int q = 0; q < E; q++) {
			int v = g->dst[q];
			double sc = 1 / t->indeg[v];
			for (int j = 0; j < w; j++)
				dmsg[(size_t)q * w + j] = sc * dx[(size_t)v * w + j];
		}
		/* msg = N2(silu(b1)), b1 = N1([lx_src, e1]) */
		silu_v(k->b1, EW, sa);
		memset(db, 0, EW * sizeof *db);
		lin_bwd(N2, p, sa, dmsg, E, dp, db);
		for (size_t i = 0; i < EW; i++)
			db[i] *= dsilu(k->b1[i]);
		for (int q = 0; q < E; q++) {
			memcpy(cat + (size_t)q * 2 * w, k->lx + (size_t)g->src[q] * w, w * sizeof *cat);
			memcpy(cat + (size_t)q * 2 * w + w, k->e1 + (size_t)q * w, w * sizeof *cat);
		}
		memset(dcat, 0, 2 * EW * sizeof *dcat);
		lin_bwd(N1, p, cat, db, E, dp, dcat);
		/* de now becomes d e1: what came from later plus the node path */
		for (int q = 0; q < E; q++)
			for (int j = 0; j < w; j++) {
				dlx[(size_t)g->src[q] * w + j] += dcat[(size_t)q * 2 * w + j];
				de[(size_t)q * w + j] += dcat[(size_t)q * 2 * w + w + j];
			}
		/* e1 = e0 + E2(silu(a1)), a1 = E1([lx_src, lx_dst, le]) */
		memcpy(de0, de, EW * sizeof *de);
		silu_v(k->a1, EW, sa);
		memset(db, 0, EW * sizeof *db);
		lin_bwd(E2, p, sa, de, E, dp, db);
		for (size_t i = 0; i < EW; i++)
			db[i] *= dsilu(k->a1[i]);
		for (int q = 0; q < E; q++) {
			double *r = cat + (size_t)q * 3 * w;
			memcpy(r, k->lx + (size_t)g->src[q] * w, w * sizeof *r);
			memcpy(r + w, k->lx + (size_t)g->dst[q] * w, w * sizeof *r);
			memcpy(r + 2 * w, k->le + (size_t)q * w, w * sizeof *r);
		}
		memset(dcat, 0, 3 * EW * sizeof *dcat);
		lin_bwd(E1, p, cat, db, E, dp, dcat);
		for (int q = 0; q < E; q++) {
			const double *r = dcat + (size_t)q * 3 * w;
			for (int j = 0; j < w; j++) {
				dlx[(size_t)g->src[q] * w + j] += r[j];
				dlx[(size_t)g->dst[q] * w + j] += r[w + j];
				sa[(size_t)q * w + j] = r[2 * w + j];     /* d le */
			}
		}
		ln_bwd(k->le, k->re, sa, E, w, de0);
		ln_bwd(k->lx, k->rx, dlx, N, w, dx0);
		memcpy(dx, dx0, NW * sizeof *dx);
		memcpy(de, de0, EW * sizeof *de);
	}
	lin_bwd(&L[0], p, g->xnode, dx, N, dp, NULL);
	lin_bwd(&L[1], p, g->xedge, de, E, dp, NULL);
	free(mem);
}
