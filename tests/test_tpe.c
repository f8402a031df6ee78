/*
 * test_tpe.c — the TPE sampler (engine/tpe.h): it beats random search on
 * a synthetic objective with a known optimum, on average over seeds; it
 * models the highest rung with enough results; a proposal is a pure
 * function of the observations and the stream.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tpe.h"
#include "test.h"

enum { D = 5, BUDGET = 60, SEEDS = 30 };
static const int NCAT[D] = { 0, 0, 0, 0, 4 };
static const double OPT[D] = { 0.2, 0.75, 0.4, 0.9, 0 };

/* A smooth bowl over four continuous coordinates plus a bonus for choice
 * 2 of the categorical one; its maximum is 0.3. */
static double objective(const double *u)
{
	double f = 0;
	for (int j = 0; j < 4; j++)
		f -= (u[j] - OPT[j]) * (u[j] - OPT[j]);
	return f + ((int)(u[4] * 4) == 2 ? 0.3 : 0);
}

static double search(int tpe, uint64_t seed)
{
	static double U[BUDGET * D], y[BUDGET];
	static int rung[BUDGET];
	tt_tpe_config c;
	tt_tpe_defaults(&c);
	tt_rng r;
	tt_rng_seed(&r, seed, 99);
	double best = -INFINITY;
	for (int n = 0; n < BUDGET; n++) {
		double *u = U + n * D;
		if (tpe) {
			tt_tpe_propose(&c, D, NCAT, U, y, rung, n, &r, u);
		} else {
			for (int j = 0; j < D; j++)
				u[j] = tt_rng_uniform(&r);
		}
		y[n] = objective(u);
		rung[n] = 0;
		if (y[n] > best)
			best = y[n];
	}
	return best;
}

static void beats_random_on_average(void)
{
	double t = 0, rnd = 0;
	int wins = 0;
	for (uint64_t s = 1; s <= SEEDS; s++) {
		double a = search(1, s), b = search(0, s);
		t += a;
		rnd += b;
		wins += a > b;
	}
	t /= SEEDS;
	rnd /= SEEDS;
	printf("  mean best after %d: TPE %.4f, random %.4f (optimum 0.3); TPE ahead on "
	       "%d of %d seeds\n", BUDGET, t, rnd, wins, SEEDS);
	CHECK(t > rnd, "TPE %.4f is not above random %.4f", t, rnd);
	CHECK(wins > SEEDS / 2, "TPE ahead on only %d of %d seeds", wins, SEEDS);
}

static void models_the_highest_rung_with_enough_results(void)
{
	enum { N = 40 };
	double U[N * 2], y[N], u[2];
	int rung[N];
	tt_rng r;
	tt_rng_seed(&r, 5, 1);
	for (int i = 0; i < N; i++) {
		U[2 * i] = tt_rng_uniform(&r);
		U[2 * i + 1] = tt_rng_uniform(&r);
		y[i] = -fabs(U[2 * i] - 0.3);
		rung[i] = i < 25 ? 0 : i < 37 ? 1 : 2;  /* 25, 12 and 3 results */
	}
	tt_tpe_config c;
	tt_tpe_defaults(&c);
	CHECK(tt_tpe_propose(&c, 2, NULL, U, y, rung, N, &r, u) == 1,
	      "rung 1 has 12 results and rung 2 only 3: rung 1 should be modelled");
	CHECK(tt_tpe_propose(&c, 2, NULL, U, y, rung, 9, &r, u) == -1,
	      "9 results are the start-up phase");
	CHECK(u[0] >= 0 && u[0] < 1 && u[1] >= 0 && u[1] < 1, "(%g, %g) outside", u[0], u[1]);
	/* failed results (NaN) count as the worst, never as good */
	for (int i = 0; i < N; i++)
		y[i] = U[2 * i] < 0.5 ? NAN : -fabs(U[2 * i] - 0.8);
	double mean = 0;
	for (int q = 0; q < 50; q++) {
		tt_tpe_propose(&c, 2, NULL, U, y, rung, 25, &r, u);
		mean += u[0] / 50;
	}
	CHECK(mean > 0.5, "proposals lean to the failed half: mean u %g", mean);
}

static void proposals_replay(void)
{
	enum { N = 30 };
	double U[N * D], y[N], a[D], b[D];
	int rung[N] = {0};
	tt_rng r;
	tt_rng_seed(&r, 8, 1);
	for (int i = 0; i < N * D; i++)
		U[i] = tt_rng_uniform(&r);
	for (int i = 0; i < N; i++)
		y[i] = objective(U + i * D);
	tt_tpe_config c;
	tt_tpe_defaults(&c);
	tt_rng r1, r2;
	tt_rng_seed(&r1, 3, 4);
	tt_rng_seed(&r2, 3, 4);
	tt_tpe_propose(&c, D, NCAT, U, y, rung, N, &r1, a);
	tt_tpe_propose(&c, D, NCAT, U, y, rung, N, &r2, b);
	CHECK(memcmp(a, b, sizeof a) == 0, "the same observations and stream propose "
	      "different points");
	for (int q = 0; q < 20; q++) {
		tt_tpe_propose(&c, D, NCAT, U, y, rung, N, &r1, a);
		int ch = (int)(a[4] * 4);
		CHECK(fabs(a[4] - (ch + 0.5) / 4) < 1e-12, "choice coordinate %g is not a "
		      "bin centre", a[4]);
	}
}

int main(void)
{
	TT_RUN(beats_random_on_average);
	TT_RUN(models_the_highest_rung_with_enough_results);
	TT_RUN(proposals_replay);
	TT_EXIT();
}
