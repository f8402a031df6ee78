/*
 * test_gp.c — the Gaussian process of the FMS/DyHPO surrogate
 * (engine/gp.h): its posterior against the closed form computed here by
 * an explicit inverse, its NLL against the formula, the NLL gradient in
 * the hyperparameters and in the features against central differences,
 * the jitter path, and expected improvement.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gp.h"
#include "test.h"

enum { N = 5, F = 3 };
static const double PHI[N * F] = {
	0.1, 0.5, -0.2, 0.9, -0.3, 0.4, -0.5, 0.2, 0.8, 0.3, 0.3, 0.3, 1.2, 0.7, -0.6,
};
static const double Y[N] = { 0.61, 0.72, 0.55, 0.70, 0.83 };
static const tt_gp_hyper H = { .log_s = -1.2, .log_l = -0.1, .log_sn = -3.0, .mean = 0.6 };

static double kern(const double *a, const double *b, const tt_gp_hyper *h)
{
	double d = 0;
	for (int k = 0; k < F; k++)
		d += (a[k] - b[k]) * (a[k] - b[k]);
	return exp(2 * h->log_s) * exp(-d / (2 * exp(2 * h->log_l)));
}

/* Gauss-Jordan inverse of an N x N matrix, and its log determinant. */
static double invert(double *A, double *inv)
{
	double logdet = 0;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			inv[i * N + j] = i == j;
	for (int c = 0; c < N; c++) {
		int p = c;
		for (int r = c + 1; r < N; r++)
			if (fabs(A[r * N + c]) > fabs(A[p * N + c]))
				p = r;
		for (int k = 0; k < N; k++) {
			double t = A[c * N + k]; A[c * N + k] = A[p * N + k]; A[p * N + k] = t;
			t = inv[c * N + k]; inv[c * N + k] = inv[p * N + k]; inv[p * N + k] = t;
		}
		double d = A[c * N + c];
		logdet += log(fabs(d));
		for (int k = 0; k < N; k++) {
			A[c * N + k] /= d;
			inv[c * N + k] /= d;
		}
		for (int r = 0; r < N; r++)
			if (r != c) {
				double m = A[r * N + c];
				for (int k = 0; k < N; k++) {
					A[r * N + k] -= m * A[c * N + k];
					inv[r * N + k] -= m * inv[c * N + k];
				}
			}
	}
	return logdet;
}

static void posterior_is_the_closed_form(void)
{
	tt_gp g = {0};
	tt_err err = {0};
	CHECK(tt_gp_fit(&g, PHI, Y, N, F, &H, NULL, NULL, &err) == TT_OK, "%s", err.msg);
	double K[N * N], Ki[N * N], sn2 = exp(2 * H.log_sn);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			K[i * N + j] = kern(PHI + i * F, PHI + j * F, &H) + (i == j ? sn2 : 0);
	double logdet = invert(K, Ki), r[N], a[N], fit = 0;
	for (int i = 0; i < N; i++)
		r[i] = Y[i] - H.mean;
	for (int i = 0; i < N; i++) {
		a[i] = 0;
		for (int j = 0; j < N; j++)
			a[i] += Ki[i * N + j] * r[j];
		fit += r[i] * a[i];
	}
	CHECK(g.jitter == 0, "a well-conditioned K needed jitter %g", g.jitter);
	CHECK_CLOSE(g.nll, 0.5 * fit + 0.5 * logdet + 0.5 * N * log(2 * M_PI), 1e-10, 1e-9, "NLL");
	const double X[2 * F] = { 0.2, 0.4, 0.0, -1.0, 2.0, 0.5 };
	double mu[2], sd[2];
	tt_gp_predict(&g, X, 2, mu, sd);
	for (int t = 0; t < 2; t++) {
		double ks[N], m = H.mean, v = exp(2 * H.log_s);
		for (int i = 0; i < N; i++) {
			ks[i] = kern(X + t * F, PHI + i * F, &H);
			m += ks[i] * a[i];
		}
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++)
				v -= ks[i] * Ki[i * N + j] * ks[j];
		CHECK_CLOSE(mu[t], m, 1e-10, 1e-9, "posterior mean");
		CHECK_CLOSE(sd[t], sqrt(v), 1e-9, 1e-7, "posterior sd");
	}
	/* at a training point with little noise the posterior interpolates */
	tt_gp_predict(&g, PHI + 2 * F, 1, mu, sd);
	CHECK_CLOSE(mu[0], Y[2], 1e-2, 0, "interpolation");
	tt_gp_free(&g);
}

static double nll_at(const tt_gp_hyper *h, const double *phi)
{
	tt_gp g = {0};
	tt_gp_fit(&g, phi, Y, N, F, h, NULL, NULL, NULL);
	double v = g.nll;
	tt_gp_free(&g);
	return v;
}

static void nll_gradient_matches_central_differences(void)
{
	tt_gp g = {0};
	tt_gp_hyper dh, h = H;
	h.log_sn = -1.5; /* enough noise that every term matters */
	double dphi[N * F], phi[N * F];
	memcpy(phi, PHI, sizeof phi);
	CHECK(tt_gp_fit(&g, phi, Y, N, F, &h, &dh, dphi, NULL) == TT_OK, "fit");
	double *hv = &h.log_s, *dv = &dh.log_s;
	const char *names[4] = { "log_s", "log_l", "log_sn", "mean" };
	for (int p = 0; p < 4; p++) {
		double keep = hv[p], e = 1e-5;
		hv[p] = keep + e;
		double up = nll_at(&h, phi);
		hv[p] = keep - e;
		double dn = nll_at(&h, phi);
		hv[p] = keep;
		CHECK_CLOSE(dv[p], (up - dn) / (2 * e), 1e-6, 1e-5, names[p]);
	}
	for (int i = 0; i < N * F; i++) {
		double keep = phi[i], e = 1e-5;
		phi[i] = keep + e;
		double up = nll_at(&h, phi);
		phi[i] = keep - e;
		double dn = nll_at(&h, phi);
		phi[i] = keep;
		CHECK_CLOSE(dphi[i], (up - dn) / (2 * e), 1e-6, 1e-5, "dNLL/dphi");
	}
	tt_gp_free(&g);
}

static void singular_kernel_gets_jitter(void)
{
	/* two identical points and no noise: K is singular */
	double phi[2 * F] = { 0.1, 0.2, 0.3, 0.1, 0.2, 0.3 }, y[2] = { 1, 1 };
	tt_gp_hyper h = { 0, 0, -40, 0 };
	tt_gp g = {0};
	tt_err err = {0};
	CHECK(tt_gp_fit(&g, phi, y, 2, F, &h, NULL, NULL, &err) == TT_OK, "%s", err.msg);
	CHECK(g.jitter > 0, "no jitter on a singular kernel");
	CHECK(isfinite(g.nll), "NLL %g", g.nll);
	tt_gp_free(&g);
}

static void expected_improvement(void)
{
	CHECK_CLOSE(tt_gp_ei(0.5, 0.1, 0.5), 0.1 / sqrt(2 * M_PI), 1e-12, 1e-12, "EI at mu = best");
	CHECK_CLOSE(tt_gp_ei(0.7, 0, 0.5), 0.2, 1e-12, 0, "EI at sd 0, above");
	CHECK(tt_gp_ei(0.3, 0, 0.5) == 0, "EI at sd 0, below");
	/* larger sd, larger EI; larger mu, larger EI */
	CHECK(tt_gp_ei(0.4, 0.2, 0.5) > tt_gp_ei(0.4, 0.1, 0.5), "EI not increasing in sd");
	CHECK(tt_gp_ei(0.45, 0.1, 0.5) > tt_gp_ei(0.4, 0.1, 0.5), "EI not increasing in mu");
	/* against the integral E[max(Y - best, 0)], Y ~ N(mu, sd), by quadrature */
	double mu = 0.42, sd = 0.07, best = 0.5, q = 0;
	for (int i = 0; i < 200000; i++) {
		double yv = mu - 10 * sd + (i + 0.5) * (20 * sd / 200000);
		double t = (yv - mu) / sd;
		if (yv > best)
			q += (yv - best) * exp(-0.5 * t * t) / (sd * sqrt(2 * M_PI)) * (20 * sd / 200000);
	}
	CHECK_CLOSE(tt_gp_ei(mu, sd, best), q, 1e-9, 1e-5, "EI by quadrature");
}

int main(void)
{
	TT_RUN(posterior_is_the_closed_form);
	TT_RUN(nll_gradient_matches_central_differences);
	TT_RUN(singular_kernel_gets_jitter);
	TT_RUN(expected_improvement);
	TT_EXIT();
}
