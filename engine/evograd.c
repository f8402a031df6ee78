/*
 * evograd.c — EvoGrad's noise, weights and estimator; see evograd.h.
 *
 * The noise is a hash of (seed, step, k, i) through splitmix64's
 * finaliser, not a sequential stream: a coordinate's value does not
 * depend on which coordinates were drawn before it, so the perturbation
 * and the later dot product regenerate the same eps without a buffer,
 * in any order and in chunks.
 */
#include "evograd.h"

#include <math.h>

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t key_base(const tt_evo_key *key)
{
	return mix(mix(mix(key->seed ^ 0x45564f47ULL) ^ key->step) ^ key->k);
}

/* One coordinate's noise, unit scale. */
static float unit_noise(uint64_t base, int noise, uint64_t i)
{
	uint64_t h = mix(base ^ (i * 0xd1342543de82ef95ULL));
	if (noise == TT_EVO_RADEMACHER)
		return (h >> 63) ? 1.0f : -1.0f;
	/* Box-Muller from the two 32-bit halves; u1 in (0, 1] */
	double u1 = ((double)(h >> 32) + 1.0) * (1.0 / 4294967296.0);
	double u2 = (double)(h & 0xffffffffu) * (1.0 / 4294967296.0);
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void tt_evo_noise(const tt_evo_key *key, float sigma, size_t first, size_t n, float *eps)
{
	uint64_t b = key_base(key);
	for (size_t i = 0; i < n; i++)
		eps[i] = sigma * unit_noise(b, key->noise, first + i);
}

double tt_evo_perturb(const tt_evo_key *key, float sigma, const float *theta,
                      size_t n, float *theta_k)
{
	uint64_t b = key_base(key);
	double sq = 0;
	for (size_t i = 0; i < n; i++) {
		float v = theta[i] + sigma * unit_noise(b, key->noise, i);
		theta_k[i] = v;
		sq += (double)v * v;
	}
	return sq;
}

double tt_evo_dot(const tt_evo_key *key, float sigma, const float *g, size_t first,
                  size_t n)
{
	uint64_t b = key_base(key);
	double d = 0;
	for (size_t i = 0; i < n; i++)
		d += (double)g[i] * unit_noise(b, key->noise, first + i);
	return d * sigma;
}

int tt_evo_weights(const double *l, int K, double tau, double *w)
{
	if (!(tau > 0) || K < 1)
		return -1;
	double lo = INFINITY;
	for (int k = 0; k < K; k++) {
		if (!isfinite(l[k]))
			return -1;
		if (l[k] < lo)
			lo = l[k];
	}
	double sum = 0;
	for (int k = 0; k < K; k++)
		sum += exp(-(l[k] - lo) / tau);
	for (int k = 0; k < K; k++)
		w[k] = exp(-(l[k] - lo) / tau) / sum;
	return 0;
}

double tt_evo_default_lr(int what)
{
	switch (what) {
	case TT_EVO_WD:
		return 0.01;
	case TT_EVO_ROTATE:
		return 0.1;
	default:
		return 0.001;
	}
}

void tt_evo_hypergrad(int K, int nh, const double *w, const double *d,
                      const double *dldlam, double tau, double *out)
{
	double dbar = 0;
	for (int k = 0; k < K; k++)
		dbar += w[k] * d[k];
	for (int h = 0; h < nh; h++) {
		double s = 0;
		for (int k = 0; k < K; k++)
			s += w[k] * (d[k] - dbar) * dldlam[(size_t)k * nh + h];
		out[h] = -s / tau;
	}
}
