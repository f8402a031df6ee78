/*
 * gp.c — the Gaussian process; see gp.h.
 *
 * Gradients: with W = K^-1 - alpha alpha', dNLL/dtheta = 0.5 tr(W dK/dtheta)
 * (Rasmussen & Williams, eq. 5.9).  For the signal part Kf of K,
 *   dK/dlog s  = 2 Kf,
 *   dK/dlog l  = Kf .* r^2 / l^2            (r^2 the squared distances),
 *   dK/dlog sn = 2 sn^2 I,
 *   dNLL/dm    = -sum(alpha),
 *   dNLL/dphi_i = -(1/l^2) sum_j W_ij Kf_ij (phi_i - phi_j)   (W symmetric).
 * K^-1 comes from the Cholesky factor: n is at most a few hundred
 * observations, so the O(n^3) inverse is cheap next to the network that
 * made the features.
 */
#include "gp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tt_gp_free(tt_gp *g)
{
	free(g->phi);
	free(g->L);
	free(g->alpha);
	memset(g, 0, sizeof *g);
}

static double sqdist(const double *a, const double *b, int f)
{
	double s = 0;
	for (int k = 0; k < f; k++)
		s += (a[k] - b[k]) * (a[k] - b[k]);
	return s;
}

/* In-place lower Cholesky of the n x n matrix A; -1 when not positive
 * definite. */
static int cholesky(double *A, int n)
{
	for (int j = 0; j < n; j++) {
		double d = A[(size_t)j * n + j];
		for (int k = 0; k < j; k++)
			d -= A[(size_t)j * n + k] * A[(size_t)j * n + k];
		if (!(d > 0))
			return -1;
		d = sqrt(d);
		A[(size_t)j * n + j] = d;
		for (int i = j + 1; i < n; i++) {
			double s = A[(size_t)i * n + j];
			for (int k = 0; k < j; k++)
				s -= A[(size_t)i * n + k] * A[(size_t)j * n + k];
			A[(size_t)i * n + j] = s / d;
		}
		for (int i = 0; i < j; i++)
			A[(size_t)i * n + j] = 0;
	}
	return 0;
}

/* Solve L x = b (forward) in place. */
static void solve_lower(const double *L, int n, double *b)
{
	for (int i = 0; i < n; i++) {
		double s = b[i];
		for (int k = 0; k < i; k++)
			s -= L[(size_t)i * n + k] * b[k];
		b[i] = s / L[(size_t)i * n + i];
	}
}

/* Solve L' x = b (backward) in place. */
static void solve_upper_t(const double *L, int n, double *b)
{
	for (int i = n - 1; i >= 0; i--) {
		double s = b[i];
		for (int k = i + 1; k < n; k++)
			s -= L[(size_t)k * n + i] * b[k];
		b[i] = s / L[(size_t)i * n + i];
	}
}

int tt_gp_fit(tt_gp *g, const double *phi, const double *y, int n, int f,
              const tt_gp_hyper *h, tt_gp_hyper *dh, double *dphi, tt_err *err)
{
	tt_gp_free(g);
	if (n < 1 || f < 1)
		return tt_err_set(err, TT_EINPUT, "gp: %d observations of %d features", n, f);
	size_t nn = (size_t)n * n;
	double *Kf = malloc(nn * sizeof *Kf);
	g->phi = malloc((size_t)n * f * sizeof *g->phi);
	g->L = malloc(nn * sizeof *g->L);
	g->alpha = malloc((size_t)n * sizeof *g->alpha);
	if (!Kf || !g->phi || !g->L || !g->alpha) {
		free(Kf);
		tt_gp_free(g);
		return tt_err_set(err, TT_ERUNTIME, "gp: out of memory for %d observations", n);
	}
	memcpy(g->phi, phi, (size_t)n * f * sizeof *phi);
	g->n = n;
	g->f = f;
	g->h = *h;
	double s2 = exp(2 * h->log_s), l2 = exp(2 * h->log_l), sn2 = exp(2 * h->log_sn);
	for (int i = 0; i < n; i++)
		for (int j = 0; j <= i; j++) {
			double v = s2 * exp(-sqdist(phi + (size_t)i * f, phi + (size_t)j * f, f) /
			                    (2 * l2));
			Kf[(size_t)i * n + j] = Kf[(size_t)j * n + i] = v;
		}
	double jitter = 0, base = (s2 + sn2) * 1e-8;
	int ok = -1;
	for (int t = 0; t < 8 && ok; t++) {
		memcpy(g->L, Kf, nn * sizeof *Kf);
		for (int i = 0; i < n; i++)
			g->L[(size_t)i * n + i] += sn2 + jitter;
		ok = cholesky(g->L, n);
		if (ok)
			jitter = jitter ? jitter * 10 : base;
		if (jitter > (s2 + sn2) * 1e-2)
			break;
	}
	if (ok) {
		free(Kf);
		tt_gp_free(g);
		return tt_err_set(err, TT_ERUNTIME, "gp: the kernel matrix of %d observations "
		                  "is not positive definite even with jitter %.3g", n, jitter);
	}
	g->jitter = jitter;
	for (int i = 0; i < n; i++)
		g->alpha[i] = y[i] - h->mean;
	double fit = 0, logdet = 0;
	solve_lower(g->L, n, g->alpha);
	for (int i = 0; i < n; i++) {
		fit += g->alpha[i] * g->alpha[i];
		logdet += log(g->L[(size_t)i * n + i]);
	}
	solve_upper_t(g->L, n, g->alpha);
	g->nll = 0.5 * fit + logdet + 0.5 * n * log(2 * M_PI);
	if (dh || dphi) {
		/* W = K^-1 - alpha alpha', column by column of K^-1 */
		double *W = malloc(nn * sizeof *W);
		if (!W) {
			free(Kf);
			tt_gp_free(g);
			return tt_err_set(err, TT_ERUNTIME, "gp: out of memory for gradients");
		}
		for (int j = 0; j < n; j++) {
			double *col = W + (size_t)j * n; /* row j = column j: symmetric */
			memset(col, 0, (size_t)n * sizeof *col);
			col[j] = 1;
			solve_lower(g->L, n, col);
			solve_upper_t(g->L, n, col);
			for (int i = 0; i < n; i++)
				col[i] -= g->alpha[i] * g->alpha[j];
		}
		if (dh) {
			double ds = 0, dl = 0, tr = 0, dm = 0;
			for (int i = 0; i < n; i++) {
				tr += W[(size_t)i * n + i];
				dm -= g->alpha[i];
				for (int j = 0; j < n; j++) {
					double w = W[(size_t)i * n + j], k = Kf[(size_t)i * n + j];
					ds += w * k;
					dl += 0.5 * w * k *
					      sqdist(phi + (size_t)i * f, phi + (size_t)j * f, f) / l2;
				}
			}
			dh->log_s = ds;
			dh->log_l = dl;
			dh->log_sn = sn2 * tr;
			dh->mean = dm;
		}
		if (dphi) {
			for (int i = 0; i < n; i++) {
				double *o = dphi + (size_t)i * f;
				memset(o, 0, (size_t)f * sizeof *o);
				for (int j = 0; j < n; j++) {
					double c = -W[(size_t)i * n + j] * Kf[(size_t)i * n + j] / l2;
					for (int k = 0; k < f; k++)
						o[k] += c * (phi[(size_t)i * f + k] - phi[(size_t)j * f + k]);
				}
			}
		}
		free(W);
	}
	free(Kf);
	return TT_OK;
}

void tt_gp_predict(const tt_gp *g, const double *x, int q, double *mu, double *sd)
{
	int n = g->n, f = g->f;
	double s2 = exp(2 * g->h.log_s), l2 = exp(2 * g->h.log_l);
	double *v = malloc((size_t)n * sizeof *v);
	for (int t = 0; t < q; t++) {
		const double *a = x + (size_t)t * f;
		double m = g->h.mean;
		for (int i = 0; i < n; i++) {
			double k = s2 * exp(-sqdist(a, g->phi + (size_t)i * f, f) / (2 * l2));
			m += k * g->alpha[i];
			if (v)
				v[i] = k;
		}
		mu[t] = m;
		double var = s2;
		if (v) {
			solve_lower(g->L, n, v);
			for (int i = 0; i < n; i++)
				var -= v[i] * v[i];
		}
		sd[t] = sqrt(var > 1e-12 ? var : 1e-12);
	}
	free(v);
}

double tt_gp_ei(double mu, double sd, double best)
{
	double d = mu - best;
	if (!(sd > 0))
		return d > 0 ? d : 0;
	double u = d / sd;
	return d * 0.5 * erfc(-u / sqrt(2.0)) + sd * exp(-0.5 * u * u) / sqrt(2 * M_PI);
}
