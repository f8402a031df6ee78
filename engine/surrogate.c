/*
 * surrogate.c — the deep-kernel surrogate; see surrogate.h.
 *
 * The observations' values are standardised before the fit (their mean
 * and standard deviation kept), so the GP's hyperparameters start at the
 * same place whatever the metric's scale, and predictions are mapped
 * back.  The parameter vector, in order: L1 W (hidden, d+1) and b; BN
 * gamma and beta (hidden); conv W (conv, 3) and b; flat W (flat_out,
 * flat_len) and b (TT_SURR_FLAT); L2 W (feat, hidden+conv+g) and b; the
 * GMN's parameters (TT_SURR_GMN); the GP's log_s, log_l, log_sn, mean.
 *
 * The GMN is nearly all of a fit's time: every step embeds every
 * observation's graph and backpropagates through it.  Two things keep
 * that to what the method needs.  A fit keeps one GMN tape per
 * observation for all its steps (allocated at the first, freed at the
 * end), not one per observation per step.  And points that share a graph
 * (the same tt_graph, as every configuration's starting weights are in a
 * live study) share one forward: its output and tape serve each of them,
 * and each still runs its own backward with its own gradient, so the
 * result is exactly that of embedding them one by one.
 */
#include "surrogate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define BN_EPS 1e-5
#define SLOPE 0.01

struct tt_surr {
	tt_surr_config c;
	int din, gw, cat;        /* d+1, g's width, hidden+conv+gw */
	size_t np, o_l1, o_bn, o_conv, o_flat, o_l2, o_gmn, o_gp;
	double *p, *m, *v, *g;   /* parameters, Adam's moments, gradient */
	long t;                  /* Adam steps taken */
	double *bn_mu, *bn_var;  /* BN statistics of the last fit */
	double ymean, ysd;
	tt_gp gp;
	int fitted;
	tt_gmn_tape **tapes;     /* a fit's, one per observation (ntapes) */
	int ntapes;
};

void tt_surr_defaults(tt_surr_config *c, int d, int bmax)
{
	memset(c, 0, sizeof *c);
	c->d = d;
	c->bmax = bmax;
	c->hidden = 64;
	c->conv = 4;
	c->feat = 128;
	c->weights = TT_SURR_NONE;
	c->gmn = (tt_gmn_config){ .width = 32, .blocks = 4, .out = 32 };
	c->flat_len = 4096;
	c->flat_out = 32;
	c->lr = 1e-3;
	c->seed = 1;
}

int tt_surr_new(const tt_surr_config *c, tt_surr **out, tt_err *err)
{
	*out = NULL;
	if (c->d < 0 || c->bmax < 1 || c->hidden < 1 || c->conv < 0 || c->feat < 1)
		return tt_err_set(err, TT_EINPUT, "surrogate: sizes d %d, bmax %d, hidden %d, "
		                  "conv %d, feat %d", c->d, c->bmax, c->hidden, c->conv, c->feat);
	tt_surr *s = calloc(1, sizeof *s);
	if (!s)
		return tt_err_set(err, TT_ERUNTIME, "surrogate: out of memory");
	s->c = *c;
	s->din = c->d + 1;
	s->gw = c->weights == TT_SURR_GMN ? c->gmn.out : c->weights == TT_SURR_FLAT ? c->flat_out : 0;
	s->cat = c->hidden + c->conv + s->gw;
	size_t o = 0, H = (size_t)c->hidden;
	s->o_l1 = o; o += H * s->din + H;
	s->o_bn = o; o += 2 * H;
	s->o_conv = o; o += (size_t)c->conv * 3 + c->conv;
	s->o_flat = o;
	if (c->weights == TT_SURR_FLAT)
		o += (size_t)c->flat_out * c->flat_len + c->flat_out;
	s->o_l2 = o; o += (size_t)c->feat * s->cat + c->feat;
	s->o_gmn = o;
	if (c->weights == TT_SURR_GMN)
		o += tt_gmn_nparams(&c->gmn);
	s->o_gp = o; o += 4;
	s->np = o;
	s->p = calloc(o, sizeof *s->p);
	s->m = calloc(o, sizeof *s->m);
	s->v = calloc(o, sizeof *s->v);
	s->g = calloc(o, sizeof *s->g);
	s->bn_mu = calloc(H, sizeof *s->bn_mu);
	s->bn_var = calloc(H, sizeof *s->bn_var);
	if (!s->p || !s->m || !s->v || !s->g || !s->bn_mu || !s->bn_var) {
		tt_surr_free(s);
		return tt_err_set(err, TT_ERUNTIME, "surrogate: out of memory for %zu "
		                  "parameters", o);
	}
	*out = s;
	return TT_OK;
}

/* Free the tapes a fit or a gradient kept. */
static void tapes_release(tt_surr *s)
{
	for (int i = 0; i < s->ntapes; i++)
		tt_gmn_tape_free(s->tapes[i]);
	free(s->tapes);
	s->tapes = NULL;
	s->ntapes = 0;
}

void tt_surr_free(tt_surr *s)
{
	if (!s)
		return;
	free(s->p);
	free(s->m);
	free(s->v);
	free(s->g);
	free(s->bn_mu);
	free(s->bn_var);
	tt_gp_free(&s->gp);
	tapes_release(s);
	free(s);
}

double *tt_surr_params(tt_surr *s, size_t *n)
{
	if (n)
		*n = s->np;
	return s->p;
}

static void uniform_fill(double *p, size_t n, double bound, tt_rng *r)
{
	for (size_t i = 0; i < n; i++)
		p[i] = bound * (2 * (double)tt_rng_uniform(r) - 1);
}

static void init_params(tt_surr *s, uint64_t seed)
{
	const tt_surr_config *c = &s->c;
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_SURROGATE);
	size_t H = (size_t)c->hidden;
	uniform_fill(s->p + s->o_l1, H * s->din + H, 1 / sqrt((double)s->din), &r);
	for (size_t i = 0; i < H; i++) {
		s->p[s->o_bn + i] = 1;
		s->p[s->o_bn + H + i] = 0;
	}
	uniform_fill(s->p + s->o_conv, (size_t)c->conv * 4, 1 / sqrt(3.0), &r);
	if (c->weights == TT_SURR_FLAT)
		uniform_fill(s->p + s->o_flat, (size_t)c->flat_out * (c->flat_len + 1),
		             1 / sqrt((double)c->flat_len), &r);
	uniform_fill(s->p + s->o_l2, (size_t)c->feat * (s->cat + 1), 1 / sqrt((double)s->cat), &r);
	if (c->weights == TT_SURR_GMN)
		tt_gmn_init(&c->gmn, s->p + s->o_gmn, seed);
	double *h = s->p + s->o_gp;
	h[0] = 0;                               /* log s: unit signal */
	h[1] = 0.5 * log(c->feat / 2.0);        /* log l: about the features' spread */
	h[2] = log(0.1);                        /* log sn */
	h[3] = 0;                               /* mean of standardised values */
	memset(s->m, 0, s->np * sizeof *s->m);
	memset(s->v, 0, s->np * sizeof *s->v);
	s->t = 0;
}

/* ---- features ----------------------------------------------------------- */

typedef struct fwd {
	int n;
	double *in1, *z1, *zh, *a1, *cat, *a2, *phi; /* (n, .) */
	double *pad;             /* (n, maxlen) padded curves */
	int maxlen;
	int *arg;                /* (n, conv) the max position */
	int *first;              /* (n) the first point with the same graph: its
	                          * tape (s->tapes) is point i's */
	double *bmu, *brs;       /* BN mean and 1/sd used */
} fwd;

static void fwd_free(fwd *f)
{
	free(f->first);
	free(f->in1);
	free(f->pad);
	free(f->arg);
	free(f->bmu);
	memset(f, 0, sizeof *f);
}

/* At least n tapes (NULL until a forward fills them); -1 when out of
 * memory. */
static int tapes_reserve(tt_surr *s, int n)
{
	if (n <= s->ntapes)
		return 0;
	tt_gmn_tape **t = realloc(s->tapes, (size_t)n * sizeof *t);
	if (!t)
		return -1;
	for (int i = s->ntapes; i < n; i++)
		t[i] = NULL;
	s->tapes = t;
	s->ntapes = n;
	return 0;
}

static double leaky(double x) { return x > 0 ? x : SLOPE * x; }
static double dleaky(double x) { return x > 0 ? 1 : SLOPE; }

/* Features of n points.  train: BN on the batch statistics (stored into
 * s), else on the stored ones.  keep: the GMN tapes stay in s->tapes for
 * features_backward (until tapes_release). */
static int features(tt_surr *s, const tt_surr_point *pt, int n, int train, int keep,
                    fwd *f, tt_err *err)
{
	const tt_surr_config *c = &s->c;
	int H = c->hidden, C = c->conv, G = s->gw, F = c->feat;
	memset(f, 0, sizeof *f);
	f->n = n;
	int maxlen = 3;
	for (int i = 0; i < n; i++)
		if (pt[i].ncurve > maxlen)
			maxlen = pt[i].ncurve;
	f->maxlen = maxlen;
	size_t per = (size_t)s->din + 3 * H + s->cat + 2 * F;
	f->in1 = malloc((size_t)n * per * sizeof *f->in1);
	f->pad = calloc((size_t)n * maxlen, sizeof *f->pad);
	f->arg = calloc((size_t)n * (C ? C : 1), sizeof *f->arg);
	f->bmu = malloc(2 * (size_t)H * sizeof *f->bmu);
	f->first = c->weights == TT_SURR_GMN ? malloc((size_t)n * sizeof *f->first) : NULL;
	if (!f->in1 || !f->pad || !f->arg || !f->bmu || (c->weights == TT_SURR_GMN && !f->first) ||
	    (c->weights == TT_SURR_GMN && keep && tapes_reserve(s, n))) {
		fwd_free(f);
		return tt_err_set(err, TT_ERUNTIME, "surrogate: out of memory for %d points", n);
	}
	f->z1 = f->in1 + (size_t)n * s->din;
	f->zh = f->z1 + (size_t)n * H;
	f->a1 = f->zh + (size_t)n * H;
	f->cat = f->a1 + (size_t)n * H;
	f->a2 = f->cat + (size_t)n * s->cat;
	f->phi = f->a2 + (size_t)n * F;
	f->brs = f->bmu + H;
	const double *p = s->p;
	/* h */
	for (int i = 0; i < n; i++) {
		double *in = f->in1 + (size_t)i * s->din;
		for (int k = 0; k < c->d; k++)
			in[k] = pt[i].x[k];
		in[c->d] = (double)pt[i].budget / c->bmax;
		for (int o = 0; o < H; o++) {
			const double *w = p + s->o_l1 + (size_t)o * s->din;
			double z = p[s->o_l1 + (size_t)H * s->din + o];
			for (int k = 0; k < s->din; k++)
				z += w[k] * in[k];
			f->z1[(size_t)i * H + o] = z;
		}
	}
	for (int o = 0; o < H; o++) {
		double mu = 0, var = 0;
		if (train) {
			for (int i = 0; i < n; i++)
				mu += f->z1[(size_t)i * H + o];
			mu /= n;
			for (int i = 0; i < n; i++) {
				double d = f->z1[(size_t)i * H + o] - mu;
				var += d * d;
			}
			var /= n;
			s->bn_mu[o] = mu;
			s->bn_var[o] = var;
		} else {
			mu = s->bn_mu[o];
			var = s->bn_var[o];
		}
		f->bmu[o] = mu;
		f->brs[o] = 1 / sqrt(var + BN_EPS);
		double ga = p[s->o_bn + o], be = p[s->o_bn + H + o];
		for (int i = 0; i < n; i++) {
			double zh = (f->z1[(size_t)i * H + o] - mu) * f->brs[o];
			f->zh[(size_t)i * H + o] = zh;
			f->a1[(size_t)i * H + o] = ga * zh + be;
			f->cat[(size_t)i * s->cat + o] = leaky(ga * zh + be);
		}
	}
	/* c: conv1d (kernel 3, no padding) over the zero-padded curve, max
	 * over positions */
	for (int i = 0; i < n; i++) {
		double *pd = f->pad + (size_t)i * maxlen;
		for (int k = 0; k < pt[i].ncurve; k++)
			pd[k] = pt[i].curve[k];
		int L = maxlen - 2;
		for (int ch = 0; ch < C; ch++) {
			const double *w = p + s->o_conv + (size_t)ch * 3;
			double b = p[s->o_conv + (size_t)C * 3 + ch], best = -INFINITY;
			int at = 0;
			for (int t = 0; t < L; t++) {
				double v = b + w[0] * pd[t] + w[1] * pd[t + 1] + w[2] * pd[t + 2];
				if (v > best) {
					best = v;
					at = t;
				}
			}
			f->arg[(size_t)i * C + ch] = at;
			f->cat[(size_t)i * s->cat + H + ch] = best;
		}
	}
	/* g: one forward per distinct graph; without keep one tape serves
	 * them all in turn */
	tt_gmn_tape *spare = NULL;
	for (int i = 0; i < n && G; i++) {
		double *gout = f->cat + (size_t)i * s->cat + H + C;
		if (c->weights == TT_SURR_GMN) {
			if (!pt[i].graph) {
				tt_gmn_tape_free(spare);
				fwd_free(f);
				return tt_err_set(err, TT_EINPUT, "surrogate: point %d has no weight graph", i);
			}
			int j = 0;
			while (j < i && pt[j].graph != pt[i].graph)
				j++;
			f->first[i] = j;
			if (j < i) {
				memcpy(gout, f->cat + (size_t)j * s->cat + H + C, (size_t)G * sizeof *gout);
				continue;
			}
			int rc = tt_gmn_forward(&c->gmn, p + s->o_gmn, pt[i].graph, gout,
			                        keep ? &s->tapes[i] : &spare, err);
			if (rc) {
				tt_gmn_tape_free(spare);
				fwd_free(f);
				return rc;
			}
		} else {
			const double *W = p + s->o_flat, *b = W + (size_t)G * c->flat_len;
			size_t m = pt[i].nflat < (size_t)c->flat_len ? pt[i].nflat : (size_t)c->flat_len;
			for (int o = 0; o < G; o++) {
				double z = b[o];
				for (size_t k = 0; k < m; k++)
					z += W[(size_t)o * c->flat_len + k] * pt[i].flat[k];
				gout[o] = z;
			}
		}
	}
	tt_gmn_tape_free(spare);
	/* phi */
	for (int i = 0; i < n; i++)
		for (int o = 0; o < F; o++) {
			const double *w = p + s->o_l2 + (size_t)o * s->cat;
			const double *x = f->cat + (size_t)i * s->cat;
			double z = p[s->o_l2 + (size_t)F * s->cat + o];
			for (int k = 0; k < s->cat; k++)
				z += w[k] * x[k];
			f->a2[(size_t)i * F + o] = z;
			f->phi[(size_t)i * F + o] = leaky(z);
		}
	return TT_OK;
}

/* s->g += d(sum dphi . phi)/dparams for the features f of points pt
 * (computed in train mode). */
static int features_backward(tt_surr *s, const tt_surr_point *pt, const fwd *f,
                             const double *dphi)
{
	const tt_surr_config *c = &s->c;
	int n = f->n, H = c->hidden, C = c->conv, G = s->gw, F = c->feat;
	const double *p = s->p;
	double *g = s->g;
	double *dcat = calloc((size_t)n * s->cat + (size_t)n * H, sizeof *dcat);
	if (!dcat)
		return -1;
	double *dzh = dcat + (size_t)n * s->cat;
	for (int i = 0; i < n; i++)
		for (int o = 0; o < F; o++) {
			double d = dphi[(size_t)i * F + o] * dleaky(f->a2[(size_t)i * F + o]);
			if (d == 0)
				continue;
			g[s->o_l2 + (size_t)F * s->cat + o] += d;
			const double *x = f->cat + (size_t)i * s->cat;
			const double *w = p + s->o_l2 + (size_t)o * s->cat;
			double *gw = g + s->o_l2 + (size_t)o * s->cat, *dx = dcat + (size_t)i * s->cat;
			for (int k = 0; k < s->cat; k++) {
				gw[k] += d * x[k];
				dx[k] += d * w[k];
			}
		}
	/* g's part */
	for (int i = 0; i < n && G; i++) {
		const double *dg = dcat + (size_t)i * s->cat + H + C;
		if (c->weights == TT_SURR_GMN) {
			tt_gmn_backward(&c->gmn, p + s->o_gmn, pt[i].graph, s->tapes[f->first[i]],
			                dg, g + s->o_gmn);
		} else {
			double *gW = g + s->o_flat, *gb = gW + (size_t)G * c->flat_len;
			size_t m = pt[i].nflat < (size_t)c->flat_len ? pt[i].nflat : (size_t)c->flat_len;
			for (int o = 0; o < G; o++) {
				gb[o] += dg[o];
				for (size_t k = 0; k < m; k++)
					gW[(size_t)o * c->flat_len + k] += dg[o] * pt[i].flat[k];
			}
		}
	}
	/* c's part: the max routes the gradient to its position */
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < C; ch++) {
			double d = dcat[(size_t)i * s->cat + H + ch];
			int t = f->arg[(size_t)i * C + ch];
			const double *pd = f->pad + (size_t)i * f->maxlen;
			for (int k = 0; k < 3; k++)
				g[s->o_conv + (size_t)ch * 3 + k] += d * pd[t + k];
			g[s->o_conv + (size_t)C * 3 + ch] += d;
		}
	/* h's part: LeakyReLU, BN (batch statistics), L1 */
	for (int o = 0; o < H; o++) {
		double ga = p[s->o_bn + o], sd = 0, sdz = 0;
		for (int i = 0; i < n; i++) {
			double da = dcat[(size_t)i * s->cat + o] * dleaky(f->a1[(size_t)i * H + o]);
			double zh = f->zh[(size_t)i * H + o];
			g[s->o_bn + o] += da * zh;
			g[s->o_bn + H + o] += da;
			dzh[(size_t)i * H + o] = da * ga;
			sd += da * ga;
			sdz += da * ga * zh;
		}
		for (int i = 0; i < n; i++) {
			double zh = f->zh[(size_t)i * H + o];
			double dz = f->brs[o] * (dzh[(size_t)i * H + o] - sd / n - zh * sdz / n);
			const double *in = f->in1 + (size_t)i * s->din;
			for (int k = 0; k < s->din; k++)
				g[s->o_l1 + (size_t)o * s->din + k] += dz * in[k];
			g[s->o_l1 + (size_t)H * s->din + o] += dz;
		}
	}
	free(dcat);
	return 0;
}

/* ---- fit and predict ---------------------------------------------------- */

static void adam(tt_surr *s)
{
	const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
	s->t++;
	double c1 = 1 - pow(b1, (double)s->t), c2 = 1 - pow(b2, (double)s->t);
	for (size_t i = 0; i < s->np; i++) {
		s->m[i] = b1 * s->m[i] + (1 - b1) * s->g[i];
		s->v[i] = b2 * s->v[i] + (1 - b2) * s->g[i] * s->g[i];
		s->p[i] -= s->c.lr * (s->m[i] / c1) / (sqrt(s->v[i] / c2) + eps);
	}
}

static tt_gp_hyper hyper_of(const tt_surr *s)
{
	const double *h = s->p + s->o_gp;
	return (tt_gp_hyper){ h[0], h[1], h[2], h[3] };
}

int tt_surr_fit(tt_surr *s, const tt_surr_point *obs, int n, int steps, int fresh,
                double *nll, tt_err *err)
{
	if (n < 1)
		return tt_err_set(err, TT_EINPUT, "surrogate: nothing to fit");
	int F = s->c.feat;
	double *y = malloc((size_t)n * sizeof *y), *dphi = malloc((size_t)n * F * sizeof *dphi);
	if (!y || !dphi) {
		free(y);
		free(dphi);
		return tt_err_set(err, TT_ERUNTIME, "surrogate: out of memory");
	}
	double mean = 0, var = 0;
	for (int i = 0; i < n; i++)
		mean += obs[i].y / n;
	for (int i = 0; i < n; i++)
		var += (obs[i].y - mean) * (obs[i].y - mean) / n;
	s->ymean = mean;
	s->ysd = var > 1e-12 ? sqrt(var) : 1;
	for (int i = 0; i < n; i++)
		y[i] = (obs[i].y - s->ymean) / s->ysd;
	int rc = TT_ERUNTIME;
	for (int restart = 0; restart < 4; restart++) {
		if (fresh || restart > 0 || !s->fitted)
			init_params(s, s->c.seed + 7919u * (uint64_t)restart);
		int ok = 1;
		for (int step = 0; step < steps && ok; step++) {
			fwd f;
			if ((rc = features(s, obs, n, 1, 1, &f, err)))
				goto out;
			tt_gp_hyper h = hyper_of(s), dh;
			tt_gp gp = {0};
			if (tt_gp_fit(&gp, f.phi, y, n, F, &h, &dh, dphi, NULL)) {
				ok = 0;
			} else {
				memset(s->g, 0, s->np * sizeof *s->g);
				if (features_backward(s, obs, &f, dphi)) {
					fwd_free(&f);
					tt_gp_free(&gp);
					rc = tt_err_set(err, TT_ERUNTIME, "surrogate: out of memory");
					goto out;
				}
				double *gh = s->g + s->o_gp;
				gh[0] = dh.log_s;
				gh[1] = dh.log_l;
				gh[2] = dh.log_sn;
				gh[3] = dh.mean;
				adam(s);
			}
			tt_gp_free(&gp);
			fwd_free(&f);
		}
		if (!ok)
			continue;
		/* the GP at the final parameters, kept for predictions */
		fwd f;
		if ((rc = features(s, obs, n, 1, 0, &f, err)))
			goto out;
		tt_gp_hyper h = hyper_of(s);
		rc = tt_gp_fit(&s->gp, f.phi, y, n, F, &h, NULL, NULL, err);
		fwd_free(&f);
		if (rc == TT_OK) {
			s->fitted = 1;
			if (nll)
				*nll = s->gp.nll;
			goto out;
		}
	}
	s->fitted = 0;
	rc = tt_err_set(err, TT_ERUNTIME, "surrogate: the kernel matrix of %d observations "
	                "could not be factored after 4 starts", n);
out:
	tapes_release(s);
	free(y);
	free(dphi);
	return rc;
}

int tt_surr_gradient(tt_surr *s, const tt_surr_point *obs, int n, double *nll,
                     double *grad, tt_err *err)
{
	int F = s->c.feat, rc;
	double *y = malloc((size_t)n * sizeof *y), *dphi = malloc((size_t)n * F * sizeof *dphi);
	if (!y || !dphi) {
		free(y);
		free(dphi);
		return tt_err_set(err, TT_ERUNTIME, "surrogate: out of memory");
	}
	for (int i = 0; i < n; i++)
		y[i] = (obs[i].y - s->ymean) / s->ysd;
	fwd f;
	if ((rc = features(s, obs, n, 1, 1, &f, err)))
		goto out;
	tt_gp_hyper h = hyper_of(s), dh;
	tt_gp gp = {0};
	rc = tt_gp_fit(&gp, f.phi, y, n, F, &h, &dh, dphi, err);
	if (rc == TT_OK) {
		*nll = gp.nll;
		memset(s->g, 0, s->np * sizeof *s->g);
		if (features_backward(s, obs, &f, dphi)) {
			rc = tt_err_set(err, TT_ERUNTIME, "surrogate: out of memory");
		} else {
			double *gh = s->g + s->o_gp;
			gh[0] = dh.log_s;
			gh[1] = dh.log_l;
			gh[2] = dh.log_sn;
			gh[3] = dh.mean;
			memcpy(grad, s->g, s->np * sizeof *grad);
		}
	}
	tt_gp_free(&gp);
	fwd_free(&f);
out:
	tapes_release(s);
	free(y);
	free(dphi);
	return rc;
}

int tt_surr_predict(tt_surr *s, const tt_surr_point *cand, int q, double *mu, double *sd,
                    tt_err *err)
{
	if (!s->fitted)
		return tt_err_set(err, TT_EINPUT, "surrogate: predict before a successful fit");
	if (q < 1)
		return TT_OK;
	fwd f;
	int rc = features(s, cand, q, 0, 0, &f, err);
	if (rc)
		return rc;
	tt_gp_predict(&s->gp, f.phi, q, mu, sd);
	for (int i = 0; i < q; i++) {
		mu[i] = s->ymean + s->ysd * mu[i];
		sd[i] *= s->ysd;
	}
	fwd_free(&f);
	return TT_OK;
}
