/*
 * test_evograd.c — EvoGrad's noise, weights and hypergradient estimator
 * (engine/evograd.h) against methods.md §3: the 1-D problem with a known
 * hypergradient, and central differences of L_V(theta*(lambda)) through
 * the softmax weights for fixed noise.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evograd.h"
#include "mwn.h"
#include "test.h"

/* The same coordinates whether drawn at once or in pieces; Rademacher is
 * +-sigma; the dot product regenerates the same noise. */
static void noise_is_a_function_of_its_key(void)
{
	enum { N = 1000 };
	static float a[N], b[N], g[N], th[N], tk[N];
	for (int noise = 0; noise < 2; noise++) {
		tt_evo_key key = { .seed = 7, .step = 12, .k = 1, .noise = noise };
		tt_evo_noise(&key, 0.01f, 0, N, a);
		tt_evo_noise(&key, 0.01f, 0, 300, b);
		tt_evo_noise(&key, 0.01f, 300, N - 300, b + 300);
		CHECK(memcmp(a, b, sizeof a) == 0, "noise %d differs when drawn in two pieces", noise);
		double mean = 0, dot = 0;
		for (int i = 0; i < N; i++) {
			g[i] = (float)sin(i * 0.37);
			th[i] = (float)cos(i * 0.11);
			mean += a[i];
			dot += (double)g[i] * a[i];
			if (noise == TT_EVO_RADEMACHER)
				CHECK(fabsf(fabsf(a[i]) - 0.01f) < 1e-9f, "coordinate %d is %g", i, a[i]);
		}
		CHECK(fabs(mean / N) < 4 * 0.01 / sqrt(N), "noise %d mean %g", noise, mean / N);
		CHECK_CLOSE(tt_evo_dot(&key, 0.01f, g, 0, N), dot, 1e-9, 1e-6, "g . eps");
		double sq = tt_evo_perturb(&key, 0.01f, th, N, tk), sq2 = 0;
		for (int i = 0; i < N; i++) {
			CHECK(tk[i] == th[i] + a[i], "theta_k[%d]", i);
			sq2 += (double)tk[i] * tk[i];
		}
		CHECK_CLOSE(sq, sq2, 1e-9, 1e-12, "|theta_k|^2");
		/* another k, step or seed: another draw */
		tt_evo_key k2 = key;
		k2.k = 2;
		tt_evo_noise(&k2, 0.01f, 0, N, b);
		CHECK(memcmp(a, b, sizeof a) != 0, "copies 1 and 2 share their noise");
		k2 = key;
		k2.step = 13;
		tt_evo_noise(&k2, 0.01f, 0, N, b);
		CHECK(memcmp(a, b, sizeof a) != 0, "steps 12 and 13 share their noise");
	}
}

static void weights_are_a_stable_softmax(void)
{
	double l[3] = { 1000.0, 1000.5, 1001.0 }, w[3];
	CHECK(tt_evo_weights(l, 3, 0.5, w) == 0, "finite losses refused");
	double e1 = exp(-1.0), e2 = exp(-2.0), s = 1 + e1 + e2;
	CHECK_CLOSE(w[0], 1 / s, 1e-15, 1e-12, "w0");
	CHECK_CLOSE(w[1], e1 / s, 1e-15, 1e-12, "w1");
	CHECK_CLOSE(w[2], e2 / s, 1e-15, 1e-12, "w2");
	l[1] = NAN;
	CHECK(tt_evo_weights(l, 3, 0.5, w) == -1, "a NaN loss accepted");
	l[1] = 0;
	CHECK(tt_evo_weights(l, 3, 0, w) == -1, "tau 0 accepted");
}

/*
 * methods.md's 1-D problem: L_T = (x-1)^2 + lam x^2, L_V = (x-0.5)^2, at
 * x = 1/(1+lam); exact hypergradient (lam-1)/(lam+1)^3.  Gaussian noise,
 * sigma = 1, tau = 0.5.  Returns the mean and the standard deviation of
 * the estimate over `draws` draws of K copies.
 */
static void one_d(double lam, int K, int draws, double *mean, double *sd)
{
	double x = 1 / (1 + lam), s = 0, s2 = 0;
	double *l = malloc(K * sizeof *l), *w = malloc(K * sizeof *w);
	double *d = malloc(K * sizeof *d), *dl = malloc(K * sizeof *dl);
	float *eps = malloc(K * sizeof *eps);
	for (int r = 0; r < draws; r++) {
		double xs = 0;
		for (int k = 0; k < K; k++) {
			tt_evo_key key = { .seed = 1234, .step = (uint64_t)r, .k = (uint32_t)k,
			                   .noise = TT_EVO_GAUSSIAN };
			tt_evo_noise(&key, 1.0f, 0, 1, &eps[k]);
			double xk = x + eps[k];
			l[k] = (xk - 1) * (xk - 1) + lam * xk * xk;
			dl[k] = xk * xk;
		}
		tt_evo_weights(l, K, 0.5, w);
		for (int k = 0; k < K; k++)
			xs += w[k] * (x + eps[k]);
		double g = 2 * (xs - 0.5), h;
		for (int k = 0; k < K; k++)
			d[k] = g * eps[k];
		tt_evo_hypergrad(K, 1, w, d, dl, 0.5, &h);
		s += h;
		s2 += h * h;
	}
	*mean = s / draws;
	*sd = sqrt(fmax(0, s2 / draws - *mean * *mean));
	free(l);
	free(w);
	free(d);
	free(dl);
	free(eps);
}

static void one_d_sign_and_spread(void)
{
	const double lams[] = { 0.1, 0.25, 0.5, 2, 3 };
	const int Ks[] = { 2, 10, 100 };
	for (int i = 0; i < 5; i++) {
		double lam = lams[i], exact = (lam - 1) / pow(lam + 1, 3), prev_sd = INFINITY;
		for (int j = 0; j < 3; j++) {
			double mean, sd;
			one_d(lam, Ks[j], 200, &mean, &sd);
			CHECK(mean * exact > 0, "lam %g K %d: mean estimate %g, exact %g", lam,
			      Ks[j], mean, exact);
			CHECK(sd < prev_sd, "lam %g: spread %g at K %d, %g at the K before", lam,
			      sd, Ks[j], prev_sd);
			prev_sd = sd;
		}
	}
}

/*
 * For fixed noise the estimator is the exact derivative of
 * F(lam) = L_V(sum_k w_k(lam) theta_k): checked by central differences on
 * a small least-squares problem with two hyperparameters (an L2 strength
 * and the weight of a second data term), K = 4.
 */
enum { NT = 6, NK = 4 };
static const double A[NT][NT] = {
	{ 1.0, 0.2, -0.3, 0.0, 0.5, 0.1 }, { 0.0, 1.1, 0.4, -0.2, 0.0, 0.3 },
	{ 0.3, 0.0, 0.9, 0.1, -0.4, 0.0 }, { -0.1, 0.2, 0.0, 1.2, 0.3, 0.2 },
	{ 0.2, -0.3, 0.1, 0.0, 0.8, 0.1 }, { 0.0, 0.1, 0.2, 0.3, 0.0, 1.0 },
};

/* L_T(theta; lam) = |A theta - 1|^2/2 + lam0 |theta|^2/2 + lam1 |theta - 0.5|^2/2;
 * dL_T/dlam = (|theta|^2/2, |theta - 0.5|^2/2). */
static double loss_t(const double *th, const double *lam, double *dl)
{
	double r2 = 0, n2 = 0, m2 = 0;
	for (int i = 0; i < NT; i++) {
		double r = -1;
		for (int j = 0; j < NT; j++)
			r += A[i][j] * th[j];
		r2 += r * r;
		n2 += th[i] * th[i];
		m2 += (th[i] - 0.5) * (th[i] - 0.5);
	}
	if (dl) {
		dl[0] = n2 / 2;
		dl[1] = m2 / 2;
	}
	return r2 / 2 + lam[0] * n2 / 2 + lam[1] * m2 / 2;
}

/* L_V(theta) = sum_i (theta_i - 0.1 i)^2 / 2 and its gradient. */
static double loss_v(const double *th, double *g)
{
	double s = 0;
	for (int i = 0; i < NT; i++) {
		double r = th[i] - 0.1 * i;
		s += r * r / 2;
		if (g)
			g[i] = r;
	}
	return s;
}

static double F(const double th[NK][NT], const double *lam, double tau)
{
	double l[NK], w[NK], ts[NT] = {0};
	for (int k = 0; k < NK; k++)
		l[k] = loss_t(th[k], lam, NULL);
	tt_evo_weights(l, NK, tau, w);
	for (int k = 0; k < NK; k++)
		for (int i = 0; i < NT; i++)
			ts[i] += w[k] * th[k][i];
	return loss_v(ts, NULL);
}

static void estimator_matches_central_differences(void)
{
	const double tau = 0.05, sigma = 0.05;
	double theta[NT], th[NK][NT], lam[2] = { 0.3, 0.2 };
	for (int i = 0; i < NT; i++)
		theta[i] = 0.2 * i - 0.4;
	for (int noise = 0; noise < 2; noise++) {
		float eps[NK][NT];
		double l[NK], w[NK], dl[NK * 2], d[NK], ts[NT] = {0}, g[NT], h[2];
		for (int k = 0; k < NK; k++) {
			tt_evo_key key = { .seed = 99, .step = 5, .k = (uint32_t)k, .noise = noise };
			tt_evo_noise(&key, (float)sigma, 0, NT, eps[k]);
			for (int i = 0; i < NT; i++)
				th[k][i] = theta[i] + eps[k][i];
			l[k] = loss_t(th[k], lam, &dl[k * 2]);
		}
		tt_evo_weights(l, NK, tau, w);
		for (int k = 0; k < NK; k++)
			for (int i = 0; i < NT; i++)
				ts[i] += w[k] * th[k][i];
		loss_v(ts, g);
		for (int k = 0; k < NK; k++) {
			d[k] = 0;
			for (int i = 0; i < NT; i++)
				d[k] += g[i] * eps[k][i];
		}
		tt_evo_hypergrad(NK, 2, w, d, dl, tau, h);
		for (int j = 0; j < 2; j++) {
			double e = 1e-5, lp[2] = { lam[0], lam[1] }, lm[2] = { lam[0], lam[1] };
			lp[j] += e;
			lm[j] -= e;
			double fd = (F(th, lp, tau) - F(th, lm, tau)) / (2 * e);
			CHECK(fabs(fd) > 1e-6, "noise %d lam %d: the derivative is too small to "
			      "test (%g)", noise, j, fd);
			CHECK_CLOSE(h[j], fd, 1e-9, 1e-5, noise ? "gaussian" : "rademacher");
		}
	}
}

/* Meta-Weight-Net: the weights are normalised and the parameter gradient
 * of the weighted loss matches central differences (in double, on a
 * float network: the step is large enough for float parameters). */
static void mwn_gradient_matches_central_differences(void)
{
	enum { H = 16, N = 12 };
	float phi[3 * H + 1], c[N], w[N];
	double g[3 * H + 1];
	tt_mwn_init(phi, H, 5);
	for (int i = 0; i < N; i++)
		c[i] = 0.1f + 0.4f * (float)i;
	double L = tt_mwn_weights(phi, H, c, N, w), sw = 0, L2 = 0;
	for (int i = 0; i < N; i++)
		sw += w[i], L2 += (double)w[i] * c[i];
	CHECK_CLOSE(sw, 1, 1e-6, 0, "sum of weights");
	CHECK_CLOSE(L, L2, 1e-9, 1e-9, "weighted loss");
	CHECK_CLOSE(tt_mwn_loss_grad(phi, H, c, N, g), L, 1e-6, 1e-6, "loss of the gradient pass");
	int tested = 0;
	for (int p = 0; p < 3 * H + 1; p++) {
		float keep = phi[p], e = 1e-2f;
		phi[p] = keep + e;
		double lp = tt_mwn_weights(phi, H, c, N, w);
		phi[p] = keep - e;
		double lm = tt_mwn_weights(phi, H, c, N, w);
		phi[p] = keep;
		double fd = (lp - lm) / (2.0 * e);
		/* a hidden unit whose ReLU turns over inside the step has no
		 * clean difference: skip those */
		int kink = 0;
		if (p < 2 * H)
			for (int i = 0; i < N; i++) {
				int j = p % H;
				double a0 = phi[j] * c[i] + phi[H + j];
				kink |= fabs(a0) < 0.05 * (1 + c[i]);
			}
		if (kink)
			continue;
		tested++;
		CHECK_CLOSE(g[p], fd, 2e-5, 2e-2, "dL/dphi");
	}
	CHECK(tested > 2 * H, "only %d parameters away from a kink", tested);
}

int main(void)
{
	TT_RUN(mwn_gradient_matches_central_differences);
	TT_RUN(noise_is_a_function_of_its_key);
	TT_RUN(weights_are_a_stable_softmax);
	TT_RUN(one_d_sign_and_spread);
	TT_RUN(estimator_matches_central_differences);
	TT_EXIT();
}
