/*
 * mwn.c — Meta-Weight-Net forward and parameter gradient; see mwn.h.
 *
 * With s = sum_j v_j and L = sum_i v_i c_i / s,
 *   dL/dv_i = (c_i - L) / s,
 * and v_i = sigmoid(z_i), z_i = W2 . relu(W1 c_i + b1) + b2, so
 *   dL/dz_i = (c_i - L) / s * v_i (1 - v_i),
 * from which the four parameter blocks follow by the chain rule.  The
 * hidden activations are recomputed in the backward pass rather than
 * stored: H is 100 and a batch a few hundred, so it costs nothing and
 * needs no scratch.
 */
#include "mwn.h"

#include <math.h>
#include <string.h>

#include "rng.h"

void tt_mwn_init(float *phi, int hidden, uint64_t seed)
{
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_MWN);
	float b_in = 1.0f, b_hid = 1.0f / sqrtf((float)hidden);
	for (int j = 0; j < hidden; j++)
		phi[j] = b_in * (2 * tt_rng_uniform(&r) - 1);              /* W1 */
	for (int j = 0; j < hidden; j++)
		phi[hidden + j] = b_in * (2 * tt_rng_uniform(&r) - 1);     /* b1 */
	for (int j = 0; j < hidden; j++)
		phi[2 * hidden + j] = b_hid * (2 * tt_rng_uniform(&r) - 1); /* W2 */
	phi[3 * hidden] = b_hid * (2 * tt_rng_uniform(&r) - 1);          /* b2 */
}

double tt_mwn_out(const float *phi, int hidden, double c)
{
	const float *w1 = phi, *b1 = phi + hidden, *w2 = phi + 2 * hidden;
	double z = phi[3 * hidden];
	for (int j = 0; j < hidden; j++) {
		double a = w1[j] * c + b1[j];
		if (a > 0)
			z += w2[j] * a;
	}
	return 1 / (1 + exp(-z));
}

double tt_mwn_weights(const float *phi, int hidden, const float *c, int n, float *w)
{
	double s = 0, L = 0;
	for (int i = 0; i < n; i++) {
		double v = tt_mwn_out(phi, hidden, c[i]);
		w[i] = (float)v;
		s += v;
	}
	for (int i = 0; i < n; i++) {
		if (s != 0)
			w[i] = (float)(w[i] / s);
		L += (double)w[i] * c[i];
	}
	return L;
}

double tt_mwn_loss_grad(const float *phi, int hidden, const float *c, int n, double *grad)
{
	const float *w1 = phi, *b1 = phi + hidden, *w2 = phi + 2 * hidden;
	double s = 0, L = 0;
	for (int i = 0; i < n; i++) {
		double v = tt_mwn_out(phi, hidden, c[i]);
		s += v;
		L += v * c[i];
	}
	double norm = s != 0 ? s : 1;
	L /= norm;
	memset(grad, 0, (size_t)tt_mwn_nparams(hidden) * sizeof *grad);
	double *g1 = grad, *gb1 = grad + hidden, *g2 = grad + 2 * hidden;
	for (int i = 0; i < n; i++) {
		double v = tt_mwn_out(phi, hidden, c[i]);
		/* with s = 0 every v is 0 (impossible for a sigmoid, but
		 * keep the formula of the unnormalised case) */
		double dz = (s != 0 ? (c[i] - L) / s : c[i]) * v * (1 - v);
		grad[3 * hidden] += dz;
		for (int j = 0; j < hidden; j++) {
			double a = w1[j] * c[i] + b1[j];
			if (a <= 0)
				continue;
			g2[j] += dz * a;
			g1[j] += dz * w2[j] * c[i];
			gb1[j] += dz * w2[j];
		}
	}
	return L;
}
