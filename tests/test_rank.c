/*
 * test_rank.c — engine/rank.c against tests/ref/rank_ref.txt (exact
 * references from tests/ref/gen_rank_ref.py) and against the properties
 * any rank correlation must have.
 *
 *   test_rank [FIXTURE]     default tests/ref/rank_ref.txt, relative to
 *                           the working directory (the repository root)
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rank.h"
#include "rng.h"
#include "test.h"

static const char *fixture = "tests/ref/rank_ref.txt";

/* NaN matches NaN; otherwise |got - want| <= 1e-12. */
#define CHECK_REF(got, want, what, name)                                    \
	do {                                                                \
		double g_ = (got), w_ = (want);                             \
		if (isnan(w_))                                              \
			CHECK(isnan(g_), "%s %s: got %.17g, expected nan",  \
			      (name), (what), g_);                          \
		else                                                        \
			CHECK(fabs(g_ - w_) <= 1e-12,                       \
			      "%s %s: got %.17g, expected %.17g", (name),   \
			      (what), g_, w_);                              \
	} while (0)

/* Read "TAG v1 ... vn" from f into v; 0 on success. */
static int read_values(FILE *f, const char *tag, double *v, int n)
{
	char t[16];
	if (fscanf(f, "%15s", t) != 1 || strcmp(t, tag) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char tok[64];
		if (fscanf(f, "%63s", tok) != 1)
			return -1;
		char *end;
		v[i] = strtod(tok, &end);
		if (*end)
			return -1;
	}
	return 0;
}

static void test_fixture(void)
{
	FILE *f = fopen(fixture, "r");
	CHECK(f, "cannot open %s (run from the repository root, or "
	         "regenerate with /usr/bin/python3 tests/ref/gen_rank_ref.py)",
	      fixture);
	if (!f)
		return;
	int ncases = 0, bad = 0;
	char line[256];
	while (fgets(line, sizeof line, f)) {
		char name[64];
		int n;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "case %63s %d", name, &n) != 2 || n < 1 ||
		    n > 100000) {
			bad = 1;
			break;
		}
		double *x = malloc((size_t)n * sizeof *x);
		double *y = malloc((size_t)n * sizeof *y);
		char rho_s[64], tau_s[64];
		int used;
		TT_ASSERT(x && y);
		if (read_values(f, "x", x, n) || read_values(f, "y", y, n) ||
		    fscanf(f, " expect %d %63s %63s", &used, rho_s, tau_s) != 3) {
			free(x);
			free(y);
			bad = 1;
			break;
		}
		double rho_want = strtod(rho_s, NULL), tau_want = strtod(tau_s, NULL);
		double rho, tau;
		int m1 = tt_rank_spearman(x, y, n, &rho, NULL);
		int m2 = tt_rank_kendall(x, y, n, &tau, NULL);
		CHECK(m1 == used && m2 == used, "%s: used %d and %d, expected %d",
		      name, m1, m2, used);
		CHECK_REF(rho, rho_want, "rho", name);
		CHECK_REF(tau, tau_want, "tau", name);
		free(x);
		free(y);
		ncases++;
		/* the rest of the expect line */
		if (!fgets(line, sizeof line, f))
			break;
	}
	fclose(f);
	CHECK(!bad, "%s: malformed after %d cases", fixture, ncases);
	CHECK(ncases >= 20, "%s: only %d cases", fixture, ncases);
}

/* Seeded data with many ties: integers in [0, k). */
static void tied_data(uint64_t seed, int n, int k, double *x, double *y)
{
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_SYNTH);
	for (int i = 0; i < n; i++) {
		x[i] = tt_rng_below(&r, (uint32_t)k);
		y[i] = x[i] + tt_rng_below(&r, (uint32_t)k) - k / 2;
	}
}

static void test_symmetry(void)
{
	enum { N = 97 };
	double x[N], y[N], ny[N];
	for (uint64_t s = 1; s <= 20; s++) {
		tied_data(s, N, 3 + (int)s, x, y);
		for (int i = 0; i < N; i++)
			ny[i] = -y[i];
		double a, b, c, d, e, f;
		tt_rank_spearman(x, y, N, &a, NULL);
		tt_rank_spearman(y, x, N, &b, NULL);
		tt_rank_spearman(x, ny, N, &e, NULL);
		tt_rank_kendall(x, y, N, &c, NULL);
		tt_rank_kendall(y, x, N, &d, NULL);
		tt_rank_kendall(x, ny, N, &f, NULL);
		CHECK(a == b, "seed %d: rho(x,y) %.17g != rho(y,x) %.17g", (int)s, a, b);
		CHECK(c == d, "seed %d: tau(x,y) %.17g != tau(y,x) %.17g", (int)s, c, d);
		CHECK(fabs(a + e) <= 1e-15, "seed %d: rho(x,-y) %.17g, rho %.17g",
		      (int)s, e, a);
		CHECK(fabs(c + f) <= 1e-15, "seed %d: tau(x,-y) %.17g, tau %.17g",
		      (int)s, f, c);
		CHECK(a >= -1 && a <= 1 && c >= -1 && c <= 1, "seed %d: out of range",
		      (int)s);
	}
}

static void test_monotone_invariance(void)
{
	enum { N = 150 };
	double x[N], y[N], tx[N], ty[N];
	for (uint64_t s = 1; s <= 10; s++) {
		tied_data(100 + s, N, 12, x, y);
		/* Strictly increasing maps keep every order and every tie. */
		for (int i = 0; i < N; i++) {
			tx[i] = exp(x[i] / 4.0) - 7.0;
			ty[i] = 3.0 * y[i] * y[i] * y[i] + 0.5;
		}
		double a, b, c, d;
		tt_rank_spearman(x, y, N, &a, NULL);
		tt_rank_spearman(tx, ty, N, &b, NULL);
		tt_rank_kendall(x, y, N, &c, NULL);
		tt_rank_kendall(tx, ty, N, &d, NULL);
		CHECK(a == b, "seed %d: rho %.17g, transformed %.17g", (int)s, a, b);
		CHECK(c == d, "seed %d: tau %.17g, transformed %.17g", (int)s, c, d);
	}
}

static void test_nan_skipping(void)
{
	enum { N = 60 };
	double x[N], y[N], gx[2 * N], gy[2 * N];
	tied_data(7, N, 8, x, y);
	/* Interleave real pairs with pairs missing x, y or both. */
	int g = 0;
	for (int i = 0; i < N; i++) {
		gx[g] = x[i];
		gy[g++] = y[i];
		if (i % 3 == 0) {
			gx[g] = NAN;
			gy[g++] = i;
		} else if (i % 3 == 1) {
			gx[g] = i;
			gy[g++] = NAN;
		} else {
			gx[g] = NAN;
			gy[g++] = NAN;
		}
	}
	double a, b, c, d;
	int m1 = tt_rank_spearman(x, y, N, &a, NULL);
	int m2 = tt_rank_spearman(gx, gy, g, &b, NULL);
	int m3 = tt_rank_kendall(x, y, N, &c, NULL);
	int m4 = tt_rank_kendall(gx, gy, g, &d, NULL);
	CHECK(m1 == N && m3 == N, "used %d %d of %d", m1, m3, N);
	CHECK(m2 == N && m4 == N, "with NaNs: used %d %d, expected %d", m2, m4, N);
	CHECK(a == b && c == d, "NaN pairs changed rho %.17g->%.17g tau %.17g->%.17g",
	      a, b, c, d);
}

static void test_degenerate(void)
{
	double x[4] = { 1, 2, 3, 4 }, c[4] = { 5, 5, 5, 5 }, r = 0;
	CHECK(tt_rank_spearman(x, x, 0, &r, NULL) == 0 && isnan(r), "n=0");
	CHECK(tt_rank_kendall(NULL, NULL, 0, &r, NULL) == 0 && isnan(r), "n=0");
	CHECK(tt_rank_spearman(x, x, 1, &r, NULL) == 1 && isnan(r), "n=1");
	CHECK(tt_rank_kendall(x, x, 1, &r, NULL) == 1 && isnan(r), "n=1");
	CHECK(tt_rank_spearman(x, c, 4, &r, NULL) == 4 && isnan(r), "constant y");
	CHECK(tt_rank_kendall(c, x, 4, &r, NULL) == 4 && isnan(r), "constant x");
	CHECK(tt_rank_spearman(x, x, 4, &r, NULL) == 4 && r == 1, "self: %g", r);
	CHECK(tt_rank_kendall(x, x, 4, &r, NULL) == 4 && r == 1, "self: %g", r);
	/* Infinities are ordinary, comparable values. */
	double xi[3] = { -INFINITY, 0, INFINITY }, yi[3] = { 1, 2, 3 };
	CHECK(tt_rank_kendall(xi, yi, 3, &r, NULL) == 3 && r == 1, "inf: %g", r);
}

/* tau-b by its O(n^2) definition, to check Knight's merge-sort counting on
 * sizes that are not powers of two. */
static double tau_naive(const double *x, const double *y, int n)
{
	int64_t nc = 0, nd = 0, n1 = 0, n2 = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++) {
			double dx = x[i] - x[j], dy = y[i] - y[j];
			n1 += dx == 0;
			n2 += dy == 0;
			nc += dx * dy > 0;
			nd += dx * dy < 0;
		}
	int64_t n0 = (int64_t)n * (n - 1) / 2;
	if (n0 == n1 || n0 == n2)
		return NAN;
	return (double)(nc - nd) / sqrt((double)(n0 - n1) * (double)(n0 - n2));
}

static void test_kendall_vs_naive(void)
{
	enum { NMAX = 300 };
	double x[NMAX], y[NMAX];
	tt_rng r;
	tt_rng_seed(&r, 42, TT_STREAM_SYNTH);
	for (int n = 2; n <= NMAX; n += 1 + n / 8) {
		int k = 2 + (int)tt_rng_below(&r, (uint32_t)n);
		tied_data((uint64_t)n * 31, n, k, x, y);
		double t;
		tt_rank_kendall(x, y, n, &t, NULL);
		double w = tau_naive(x, y, n);
		if (isnan(w))
			CHECK(isnan(t), "n=%d k=%d: got %.17g, expected nan", n, k, t);
		else
			CHECK(fabs(t - w) <= 1e-13, "n=%d k=%d: got %.17g, expected %.17g",
			      n, k, t, w);
	}
}

static void test_large(void)
{
	enum { N = 200000 };
	double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
	TT_ASSERT(x && y);
	tt_rng r;
	tt_rng_seed(&r, 9, TT_STREAM_SYNTH);
	for (int i = 0; i < N; i++) {
		x[i] = tt_rng_uniform(&r);
		y[i] = tt_rng_uniform(&r);
	}
	double rho, tau;
	/* Independent: both within a few standard errors (~1/sqrt(n)) of 0. */
	CHECK(tt_rank_spearman(x, y, N, &rho, NULL) == N, "count");
	CHECK(tt_rank_kendall(x, y, N, &tau, NULL) == N, "count");
	CHECK(fabs(rho) < 0.01 && fabs(tau) < 0.01, "rho %g tau %g", rho, tau);
	tt_rank_spearman(x, x, N, &rho, NULL);
	tt_rank_kendall(x, x, N, &tau, NULL);
	CHECK(rho == 1 && tau == 1, "self: rho %.17g tau %.17g", rho, tau);
	free(x);
	free(y);
}

static void test_rank_average(void)
{
	double v[6] = { 0.3, 0.1, 0.3, NAN, 0.2, 0.05 }, rk[6];
	double lo[6] = { 4.5, 2, 4.5, NAN, 3, 1 }, hi[6] = { 1.5, 4, 1.5, NAN, 3, 5 };
	CHECK(tt_rank_average(v, 6, 0, rk, NULL) == 5, "count");
	for (int i = 0; i < 6; i++)
		CHECK(isnan(lo[i]) ? isnan(rk[i]) : rk[i] == lo[i],
		      "lower-is-better [%d]: %g, expected %g", i, rk[i], lo[i]);
	CHECK(tt_rank_average(v, 6, 1, rk, NULL) == 5, "count");
	for (int i = 0; i < 6; i++)
		CHECK(isnan(hi[i]) ? isnan(rk[i]) : rk[i] == hi[i],
		      "higher-is-better [%d]: %g, expected %g", i, rk[i], hi[i]);

	/* Ranks always sum to m(m+1)/2 and lie in [1, m]. */
	enum { N = 101 };
	double x[N], y[N], rr[N];
	tied_data(5, N, 9, x, y);
	for (int hib = 0; hib <= 1; hib++) {
		CHECK(tt_rank_average(x, N, hib, rr, NULL) == N, "count");
		double s = 0;
		for (int i = 0; i < N; i++) {
			s += rr[i];
			CHECK(rr[i] >= 1 && rr[i] <= N, "rank %g", rr[i]);
		}
		CHECK(s == N * (N + 1) / 2.0, "sum %g", s);
	}
	double nn[2] = { NAN, NAN };
	CHECK(tt_rank_average(nn, 2, 0, rk, NULL) == 0 && isnan(rk[0]) &&
	      isnan(rk[1]), "all NaN");
}

int main(int argc, char **argv)
{
	if (argc > 1)
		fixture = argv[1];
	TT_RUN(test_fixture);
	TT_RUN(test_symmetry);
	TT_RUN(test_monotone_invariance);
	TT_RUN(test_nan_skipping);
	TT_RUN(test_degenerate);
	TT_RUN(test_kendall_vs_naive);
	TT_RUN(test_large);
	TT_RUN(test_rank_average);
	TT_EXIT();
}
