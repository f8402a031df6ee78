/*
 * test_sampler.c — engine/sampler.c: determinism, the unit interval,
 * Halton's even spread against random's, the maps to parameter values,
 * and samplers as a table (ask, created, tell): the built-in entries, and
 * a learning sampler (tests/toy_sampler.h) whose state a resume rebuilds
 * by restoring the trials and re-telling the results.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "test.h"
#include "toy_sampler.h"

static const int kinds[2] = { TT_SAMP_RANDOM, TT_SAMP_HALTON };
static const char *kind_name[2] = { "random", "halton" };

static void draw(int kind, int d, uint64_t seed, int n, double *u)
{
	tt_sampler s;
	int rc = tt_sampler_init(&s, kind, d, seed, NULL);
	TT_ASSERT(rc == TT_OK);
	for (int i = 0; i < n; i++)
		tt_sampler_next(&s, u + (size_t)i * d);
}

static void test_init_errors(void)
{
	tt_sampler s;
	tt_err e = { 0 };
	CHECK(tt_sampler_init(&s, 7, 2, 1, &e) == TT_EINPUT && e.msg[0],
	      "unknown kind accepted");
	CHECK(tt_sampler_init(&s, TT_SAMP_HALTON, 0, 1, &e) == TT_EINPUT,
	      "d = 0 accepted");
	CHECK(tt_sampler_init(&s, TT_SAMP_RANDOM, TT_SAMPLER_DIM_MAX + 1, 1, &e) ==
	              TT_EINPUT,
	      "d = %d accepted", TT_SAMPLER_DIM_MAX + 1);
	CHECK(tt_sampler_init(&s, TT_SAMP_HALTON, TT_SAMPLER_DIM_MAX, 1, &e) == TT_OK,
	      "d = %d refused: %s", TT_SAMPLER_DIM_MAX, e.msg);
}

static void test_determinism(void)
{
	enum { D = 7, N = 1000 };
	static double a[N * D], b[N * D];
	for (int k = 0; k < 2; k++) {
		draw(kinds[k], D, 12345, N, a);
		draw(kinds[k], D, 12345, N, b);
		CHECK(memcmp(a, b, sizeof a) == 0, "%s: same seed, other points",
		      kind_name[k]);
	}
}

static void test_seeds_differ(void)
{
	enum { D = 3, N = 4, S = 16 };
	double p[S][N * D];
	for (int k = 0; k < 2; k++) {
		for (int s = 0; s < S; s++)
			draw(kinds[k], D, (uint64_t)s, N, p[s]);
		/* Every seed's every point differs from every other seed's. */
		int same = 0;
		for (int s = 0; s < S; s++)
			for (int t = s + 1; t < S; t++)
				for (int i = 0; i < N; i++)
					same += memcmp(p[s] + i * D, p[t] + i * D,
					               D * sizeof(double)) == 0;
		CHECK(same == 0, "%s: %d points shared between seeds", kind_name[k],
		      same);
	}
}

static void test_unit_interval(void)
{
	enum { D = TT_SAMPLER_DIM_MAX, N = 5000 };
	static double u[N * D];
	for (int k = 0; k < 2; k++) {
		draw(kinds[k], D, 99, N, u);
		int out = 0;
		for (int i = 0; i < N * D; i++)
			out += !(u[i] >= 0 && u[i] < 1);
		CHECK(out == 0, "%s: %d coordinates outside [0,1)", kind_name[k], out);
	}
	/* Halton far along: indices with every kept digit at its extreme. */
	uint64_t far[3] = { (1ULL << 52) - 2, 4052555153018975ULL, UINT64_MAX / 2 };
	for (int f = 0; f < 3; f++)
		for (uint64_t seed = 0; seed < 50; seed++) {
			tt_sampler s;
			double v[D];
			tt_sampler_init(&s, TT_SAMP_HALTON, D, seed, NULL);
			tt_sampler_skip(&s, far[f]);
			tt_sampler_next(&s, v);
			for (int j = 0; j < D; j++)
				CHECK(v[j] >= 0 && v[j] < 1, "skip %llu seed %d axis %d: %.17g",
				      (unsigned long long)far[f], (int)seed, j, v[j]);
		}
}

static void test_skip(void)
{
	enum { D = 5 };
	for (int k = 0; k < 2; k++) {
		tt_sampler a, b;
		double u[D], v[D];
		tt_sampler_init(&a, kinds[k], D, 7, NULL);
		tt_sampler_init(&b, kinds[k], D, 7, NULL);
		for (int i = 0; i < 37; i++)
			tt_sampler_next(&a, u);
		tt_sampler_skip(&b, 0);
		tt_sampler_skip(&b, 37);
		tt_sampler_next(&a, u);
		tt_sampler_next(&b, v);
		CHECK(memcmp(u, v, sizeof u) == 0 && a.drawn == 38 && b.drawn == 38,
		      "%s: skip(37) then next differs from 38 nexts", kind_name[k]);
	}
	/* Halton's first d coordinates do not depend on d. */
	enum { N = 50 };
	double p3[N * 3], p10[N * 10];
	draw(TT_SAMP_HALTON, 3, 5, N, p3);
	draw(TT_SAMP_HALTON, 10, 5, N, p10);
	int diff = 0;
	for (int i = 0; i < N; i++)
		diff += memcmp(p3 + i * 3, p10 + i * 10, 3 * sizeof(double)) != 0;
	CHECK(diff == 0, "halton: %d points change their first 3 axes with d", diff);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov distance of axis j of u (n points, d axes) from the
 * uniform law: the largest gap between the empirical CDF and t. */
static double ks_axis(const double *u, int n, int d, int j)
{
	double *v = malloc((size_t)n * sizeof *v), dist = 0;
	TT_ASSERT(v);
	for (int i = 0; i < n; i++)
		v[i] = u[(size_t)i * d + j];
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	for (int i = 0; i < n; i++) {
		double above = (i + 1.0) / n - v[i], below = v[i] - (double)i / n;
		dist = fmax(dist, fmax(above, below));
	}
	free(v);
	return dist;
}

static void test_halton_even_d2(void)
{
	/* Random's KS distance at n = 256 is about 0.87 / 16 = 0.054 on
	 * average; Halton's stays below 0.02 on both axes for every seed. */
	enum { D = 2, N = 256, SEEDS = 20 };
	static double u[N * D];
	double halton_max = 0, random_mean = 0;
	int bin_lo = N, bin_hi = 0;
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		draw(TT_SAMP_HALTON, D, seed, N, u);
		for (int j = 0; j < D; j++) {
			halton_max = fmax(halton_max, ks_axis(u, N, D, j));
			int bins[16] = { 0 };
			for (int i = 0; i < N; i++)
				bins[(int)(u[i * D + j] * 16)]++;
			for (int b = 0; b < 16; b++) {
				bin_lo = bins[b] < bin_lo ? bins[b] : bin_lo;
				bin_hi = bins[b] > bin_hi ? bins[b] : bin_hi;
			}
		}
		draw(TT_SAMP_RANDOM, D, seed, N, u);
		for (int j = 0; j < D; j++)
			random_mean += ks_axis(u, N, D, j) / (SEEDS * D);
	}
	printf("# d=2 n=256: halton max KS %.4f, random mean KS %.4f, "
	       "halton bins %d..%d of 16\n", halton_max, random_mean, bin_lo, bin_hi);
	CHECK(halton_max <= 0.02, "halton max KS %.4f", halton_max);
	CHECK(random_mean >= 2 * 0.02, "random mean KS %.4f: the bound does not "
	      "separate them", random_mean);
	CHECK(bin_lo >= 14 && bin_hi <= 18, "halton bins %d..%d, expected 16+-2",
	      bin_lo, bin_hi);
}

static void test_halton_even_d32(void)
{
	/* Every one of the 32 axes, bases up to 131, once n >> base. */
	enum { D = TT_SAMPLER_DIM_MAX, N = 4096, SEEDS = 4 };
	static double u[N * D];
	double halton_max = 0, random_mean = 0;
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		draw(TT_SAMP_HALTON, D, seed, N, u);
		for (int j = 0; j < D; j++)
			halton_max = fmax(halton_max, ks_axis(u, N, D, j));
		draw(TT_SAMP_RANDOM, D, seed, N, u);
		for (int j = 0; j < D; j++)
			random_mean += ks_axis(u, N, D, j) / (SEEDS * D);
	}
	printf("# d=32 n=4096: halton max KS %.4f, random mean KS %.4f\n",
	       halton_max, random_mean);
	CHECK(halton_max <= 0.006, "halton max KS %.4f", halton_max);
	CHECK(random_mean >= 2 * 0.006, "random mean KS %.4f", random_mean);
}

static void test_halton_decorrelates(void)
{
	/* Plain Halton's first 127 points in bases 127 and 131 lie on a line
	 * (correlation ~1).  The digit scramble must break it. */
	enum { D = TT_SAMPLER_DIM_MAX, N = 128 };
	static double u[N * D];
	double worst = 0;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		draw(TT_SAMP_HALTON, D, seed, N, u);
		double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
		for (int i = 0; i < N; i++) {
			double x = u[i * D + 30], y = u[i * D + 31];
			sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
		}
		double c = (sxy - sx * sy / N) /
		           sqrt((sxx - sx * sx / N) * (syy - sy * sy / N));
		worst = fmax(worst, fabs(c));
	}
	CHECK(worst <= 0.5, "axes 30, 31: |correlation| up to %.3f", worst);
}

static tt_param_spec spec(int type, double lo, double hi, int nchoices)
{
	tt_param_spec p;
	memset(&p, 0, sizeof p);
	p.type = type;
	p.lo = lo;
	p.hi = hi;
	p.nchoices = nchoices;
	return p;
}

#define u_max nextafter(1.0, 0.0) /* the largest double below 1 */

static void test_map_float(void)
{
	tt_param_spec p = spec(TT_P_FLOAT, -2, 3, 0);
	CHECK(tt_sampler_map(&p, 0) == -2, "u=0");
	CHECK(tt_sampler_map(&p, 0.5) == 0.5, "u=0.5");
	double top = tt_sampler_map(&p, u_max);
	CHECK(top <= 3 && top > 3 - 1e-12, "u->1: %.17g", top);
	p = spec(TT_P_FLOAT, 0.25, 0.25, 0);
	CHECK(tt_sampler_map(&p, 0.7) == 0.25, "lo == hi");
}

static void test_map_logfloat(void)
{
	/* 1e-5..1e-1: four decades, each a quarter of u. */
	tt_param_spec p = spec(TT_P_LOGFLOAT, 1e-5, 1e-1, 0);
	enum { N = 40000 };
	int dec[4] = { 0 };
	double prev = 0;
	int monotone = 1;
	for (int i = 0; i < N; i++) {
		double v = tt_sampler_map(&p, (i + 0.5) / N);
		int k = (int)floor(log10(v) + 5);
		if (k >= 0 && k < 4)
			dec[k]++;
		monotone &= v > prev;
		prev = v;
	}
	for (int k = 0; k < 4; k++)
		CHECK(abs(dec[k] - N / 4) <= 1, "decade 1e%d: %d of %d", k - 5,
		      dec[k], N);
	CHECK(monotone, "not increasing in u");
	CHECK_CLOSE(tt_sampler_map(&p, 0), 1e-5, 0, 1e-12, "u=0");
	CHECK_CLOSE(tt_sampler_map(&p, 0.5), 1e-3, 0, 1e-12, "u=0.5");
	double top = tt_sampler_map(&p, u_max);
	CHECK(top <= 1e-1 && top > 1e-1 * (1 - 1e-12), "u->1: %.17g", top);
}

static void test_map_int(void)
{
	tt_param_spec p = spec(TT_P_INT, -3, 3, 0);
	enum { N = 7000 };
	int cnt[7] = { 0 }, bad = 0;
	for (int i = 0; i < N; i++) {
		double v = tt_sampler_map(&p, (i + 0.5) / N);
		if (v != floor(v) || v < -3 || v > 3)
			bad++;
		else
			cnt[(int)v + 3]++;
	}
	CHECK(bad == 0, "%d values not integers in -3..3", bad);
	for (int k = 0; k < 7; k++)
		CHECK(cnt[k] == N / 7, "value %d: %d of %d", k - 3, cnt[k], N);
	CHECK(tt_sampler_map(&p, 0) == -3 && tt_sampler_map(&p, u_max) == 3,
	      "bounds not both reached");
	p = spec(TT_P_INT, 0.5, 3.5, 0);
	CHECK(tt_sampler_map(&p, 0) == 1 && tt_sampler_map(&p, u_max) == 3,
	      "non-integer bounds not narrowed to 1..3");
	p = spec(TT_P_INT, 4, 4, 0);
	CHECK(tt_sampler_map(&p, 0.9) == 4, "lo == hi");
}

static void test_map_logint(void)
{
	tt_param_spec p = spec(TT_P_LOGINT, 1, 1000, 0);
	/* Every integer is reachable: the middle of its log cell maps to it. */
	int unreachable = 0;
	for (int k = 1; k <= 1000; k++) {
		double u = log(k + 0.5) / log(1001.0);
		unreachable += tt_sampler_map(&p, u) != k;
	}
	CHECK(unreachable == 0, "%d of 1..1000 not reached", unreachable);
	CHECK(tt_sampler_map(&p, 0) == 1 && tt_sampler_map(&p, u_max) == 1000,
	      "bounds not both reached");
	/* Decades weigh the same: [1,10), [10,100), [100,1000] each about
	 * log(10) / log(1001) of u, and P(1) = log 2 / log 1001. */
	enum { N = 100000 };
	int dec[3] = { 0 }, ones = 0;
	for (int i = 0; i < N; i++) {
		double v = tt_sampler_map(&p, (i + 0.5) / N);
		dec[v < 10 ? 0 : v < 100 ? 1 : 2]++;
		ones += v == 1;
	}
	double w = log(10.0) / log(1001.0);
	CHECK(fabs(dec[0] - w * N) <= 2 && fabs(dec[1] - w * N) <= 2,
	      "decades %d %d %d, expected %.0f each", dec[0], dec[1], dec[2], w * N);
	CHECK(fabs(ones - N * log(2.0) / log(1001.0)) <= 2, "P(1) %d of %d", ones, N);
}

static void test_map_choice(void)
{
	tt_param_spec p = spec(TT_P_CHOICE, 0, 0, 5);
	enum { N = 5000, R = 50000 };
	int cnt[5] = { 0 };
	for (int i = 0; i < N; i++)
		cnt[(int)tt_sampler_map(&p, (i + 0.5) / N)]++;
	for (int k = 0; k < 5; k++)
		CHECK(cnt[k] == N / 5, "grid: choice %d %d of %d", k, cnt[k], N);
	CHECK(tt_sampler_map(&p, u_max) == 4, "last choice");
	/* From both samplers: random within 4.5 sigma (sd 89), Halton within
	 * a few points of exact. */
	for (int k = 0; k < 2; k++) {
		tt_sampler s;
		tt_sampler_init(&s, kinds[k], 1, 3, NULL);
		int c[5] = { 0 };
		for (int i = 0; i < R; i++) {
			double u;
			tt_sampler_next(&s, &u);
			c[(int)tt_sampler_map(&p, u)]++;
		}
		int tol = kinds[k] == TT_SAMP_HALTON ? 3 : 400;
		for (int j = 0; j < 5; j++)
			CHECK(abs(c[j] - R / 5) <= tol, "%s: choice %d %d of %d",
			      kind_name[k], j, c[j], R);
	}
}

static void test_map_invalid(void)
{
	struct { tt_param_spec p; const char *what; } bad[] = {
		{ spec(TT_P_FLOAT, 2, 1, 0), "float hi < lo" },
		{ spec(TT_P_FLOAT, 0, INFINITY, 0), "float infinite" },
		{ spec(TT_P_LOGFLOAT, 0, 1, 0), "log-float lo = 0" },
		{ spec(TT_P_LOGFLOAT, -1, 1, 0), "log-float lo < 0" },
		{ spec(TT_P_INT, 0.2, 0.8, 0), "int without an integer" },
		{ spec(TT_P_LOGINT, 0, 10, 0), "log-int lo = 0" },
		{ spec(TT_P_CHOICE, 0, 0, 0), "no choices" },
		{ spec(99, 0, 1, 0), "unknown type" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(isnan(tt_sampler_map(&bad[i].p, 0.5)), "%s: not NaN",
		      bad[i].what);
}

/* unmap inverts map: every integer and choice exactly, floats to 1e-12
 * relative, from inside [0, 1); outside the bounds, the nearest bound. */
static void test_unmap(void)
{
	static const struct { int type; double lo, hi; int nc; } P[] = {
		{ TT_P_FLOAT, -2, 3, 0 },    { TT_P_FLOAT, 0.5, 0.95, 0 },
		{ TT_P_LOGFLOAT, 1e-5, 1e-1, 0 }, { TT_P_LOGFLOAT, 0.001, 0.5, 0 },
		{ TT_P_INT, -3, 3, 0 },      { TT_P_INT, 16, 512, 0 },
		{ TT_P_INT, 0.5, 3.5, 0 },   { TT_P_LOGINT, 1, 1000, 0 },
		{ TT_P_LOGINT, 16, 4096, 0 }, { TT_P_CHOICE, 0, 0, 2 },
		{ TT_P_CHOICE, 0, 0, 16 },
	};
	for (size_t t = 0; t < sizeof P / sizeof P[0]; t++) {
		tt_param_spec p = spec(P[t].type, P[t].lo, P[t].hi, P[t].nc);
		int bad = 0, outside = 0, n = 0;
		double worst = 0;
		if (p.type == TT_P_FLOAT || p.type == TT_P_LOGFLOAT) {
			for (int i = 0; i <= 1000; i++, n++) {
				double v = p.type == TT_P_FLOAT
				         ? p.lo + (p.hi - p.lo) * i / 1000
				         : p.lo * pow(p.hi / p.lo, i / 1000.0);
				v = i == 1000 ? p.hi : v; /* hi itself, inclusive */
				double u = tt_sampler_unmap(&p, v);
				outside += !(u >= 0 && u < 1);
				if (!(u >= 0 && u < 1))
					continue;
				double e = fabs(tt_sampler_map(&p, u) - v) / fabs(v);
				worst = e > worst ? e : worst;
			}
			bad = !(worst <= 1e-12);
		} else {
			double lo = p.type == TT_P_CHOICE ? 0 : ceil(p.lo);
			double hi = p.type == TT_P_CHOICE ? p.nchoices - 1 : floor(p.hi);
			for (double k = lo; k <= hi; k++, n++) {
				double u = tt_sampler_unmap(&p, k);
				outside += !(u >= 0 && u < 1);
				bad += u >= 0 && u < 1 && tt_sampler_map(&p, u) != k;
			}
		}
		CHECK(!bad && !outside && n > 1, "type %d [%g, %g]: %d of %d values do not map "
		      "back (worst relative error %.3g), %d outside [0, 1)", p.type, p.lo,
		      p.hi, bad, n, worst, outside);
		/* beyond the bounds: the nearest bound */
		double below = p.type == TT_P_CHOICE ? -3 : p.lo - 10 * (p.hi - p.lo) - 1;
		double above = p.type == TT_P_CHOICE ? p.nchoices + 2 : p.hi + 10 * (p.hi - p.lo) + 1;
		double ub = tt_sampler_unmap(&p, below), ua = tt_sampler_unmap(&p, above);
		CHECK(ub >= 0 && ua < 1 && tt_sampler_map(&p, ub) == tt_sampler_map(&p, 0) &&
		      tt_sampler_map(&p, ua) == tt_sampler_map(&p, u_max),
		      "type %d: %g -> u %.17g, %g -> u %.17g", p.type, below, ub, above, ua);
		CHECK(isnan(tt_sampler_unmap(&p, NAN)), "type %d: NaN not NaN", p.type);
	}
	tt_param_spec same = spec(TT_P_FLOAT, 0.25, 0.25, 0);
	CHECK(tt_sampler_unmap(&same, 0.25) == 0, "lo == hi");
	tt_param_spec none = spec(TT_P_LOGFLOAT, 0, 1, 0);
	CHECK(isnan(tt_sampler_unmap(&none, 0.5)), "a spec map refuses: not NaN");
}

/* ---- samplers as a table -------------------------------------------------- */

static const char study_text[] =
	"[study]\nseed = 11\n[data]\nsource = synthetic\n[model]\nspec = mlp:8\n"
	"[space]\nlr = log-float 0.001 0.5\nmomentum = float 0.5 0.95\n"
	"optimizer = choice sgd,adamw\nbatch = int 16 64\n";

static int load_study(tt_study *st)
{
	tt_err e = { 0 };
	int rc = tt_study_parse("t.ini", study_text, st, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	return rc;
}

static void test_table(void)
{
	CHECK(tt_sampler_find("halton") == &tt_sampler_halton, "halton not found");
	CHECK(tt_sampler_find("random") == &tt_sampler_random, "random not found");
	CHECK(tt_sampler_find("sobol") == NULL && tt_sampler_index("sobol") == -1,
	      "an unknown sampler found");
	CHECK(tt_sampler_nth(TT_SAMP_RANDOM) == &tt_sampler_random &&
	      tt_sampler_nth(TT_SAMP_HALTON) == &tt_sampler_halton && !tt_sampler_nth(99),
	      "the first entries do not follow enum tt_sampler_kind");
	CHECK(strcmp(tt_sampler_names(), "random, halton, fms, dyhpo, fms-flat, tpe") == 0, "names '%s'",
	      tt_sampler_names());
	tt_study st;
	if (load_study(&st))
		return;
	CHECK(tt_sampler_nth(st.sampler) == &tt_sampler_tpe && strcmp(st.sampler_name, "tpe") == 0,
	      "the default sampler is %d '%s'", st.sampler, st.sampler_name);
	/* a table without ask is refused, and closing it twice is fine */
	tt_sampler_ops bad = tt_sampler_random;
	bad.ask = NULL;
	tt_sampler_inst s;
	tt_err e = { 0 };
	CHECK(tt_sampler_open(&s, &bad, &st, &e) == TT_EINPUT && strstr(e.msg, "ask"),
	      "a table without ask: '%s'", e.msg);
	tt_sampler_close(&s);
	tt_sampler_close(&s);
	tt_study_free(&st);
}

/* random and halton through the table are their point streams, mapped;
 * creating k trials again then asking is skipping k points then drawing. */
static void test_builtin_ask_created(void)
{
	tt_study st;
	if (load_study(&st))
		return;
	for (int k = 0; k < 2; k++) {
		tt_sampler_inst s, r;
		tt_sampler pts;
		tt_err e = { 0 };
		CHECK(tt_sampler_open(&s, tt_sampler_nth(kinds[k]), &st, &e) == TT_OK, "%s",
		      e.msg);
		CHECK(tt_sampler_open(&r, tt_sampler_nth(kinds[k]), &st, &e) == TT_OK, "%s",
		      e.msg);
		tt_sampler_init(&pts, kinds[k], st.nspace, st.seed, NULL);
		int same = 1;
		tt_sampler_proposal p, q;
		for (int i = 0; i < 20; i++) {
			double u[TT_SAMPLER_DIM_MAX];
			tt_sampler_ask(&s, i, NULL, &p, &e);
			tt_sampler_next(&pts, u);
			for (int j = 0; j < st.nspace; j++)
				same &= p.kind == TT_SAMPLER_NEW &&
				        p.values[j] == tt_sampler_map(&st.space[j], u[j]);
			tt_sampler_created(&s, i, p.values, &e);
			/* values are what a resume reads back: they must not matter */
			double junk[TT_SPACE_MAX] = { 0 };
			tt_sampler_created(&r, i, junk, &e);
		}
		tt_sampler_ask(&s, 20, NULL, &p, &e);
		tt_sampler_ask(&r, 20, NULL, &q, &e);
		CHECK(same, "%s: ask is not the mapped point stream", kind_name[k]);
		CHECK(memcmp(p.values, q.values, sizeof p.values) == 0 && r.ntrials == 20,
		      "%s: 20 trials created again then ask differs from 20 asks then ask",
		      kind_name[k]);
		/* ask takes nothing: asking again proposes the same */
		tt_sampler_ask(&r, 20, NULL, &q, &e);
		CHECK(memcmp(p.values, q.values, sizeof p.values) == 0,
		      "%s: a second ask proposes otherwise", kind_name[k]);
		/* random and halton need no results: tell is optional */
		tt_sampler_result res = { .index = 3, .id = 4, .values = p.values, .val_acc = 0.5 };
		CHECK(tt_sampler_tell(&s, &res, NULL, &e) == TT_OK, "tell: %s", e.msg);
		tt_sampler_close(&s);
		tt_sampler_close(&r);
	}
	tt_study_free(&st);
}

/* A fake checkpoint store: the blob of (trial, rung) is a few bytes made
 * from both, none for rung 2. */
static int fake_checkpoint(void *ud, int64_t trial, int rung, long *step, void **blob,
                           size_t *len, tt_err *err)
{
	(void)err;
	++*(int *)ud;
	*blob = NULL, *len = 0, *step = -1;
	if (rung == 2)
		return TT_OK;
	unsigned char *b = malloc(16);
	if (!b)
		return TT_ERUNTIME;
	for (int i = 0; i < 16; i++)
		b[i] = (unsigned char)(trial * 37 + rung * 11 + i);
	*blob = b, *len = 16, *step = 100 * rung;
	return TT_OK;
}

typedef struct told {
	int index, rung;
	double acc;
} told;

/*
 * Run the toy: create `restored` trials with the values in v (a resume),
 * then interleave asks and tells as `script` says ('a': ask for the next
 * trial and create it, as the runner does; 't': tell the next result of
 * `res`), then ask once more into *next.  Asked values are written to v.
 */
static void toy_run(const tt_study *st, int restored, double (*v)[TT_SPACE_MAX],
                    const char *script, const told *res, const tt_sampler_io *io,
                    tt_sampler_proposal *next)
{
	tt_sampler_inst s;
	tt_err e = { 0 };
	int rc = tt_sampler_open(&s, &toy_sampler, st, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return;
	for (int i = 0; i < restored; i++)
		tt_sampler_created(&s, i, v[i], &e);
	int r = 0;
	for (const char *c = script; *c; c++) {
		if (*c == 'a') {
			tt_sampler_proposal p;
			tt_sampler_ask(&s, s.ntrials, io, &p, &e);
			memcpy(v[s.ntrials], p.values, sizeof p.values);
			tt_sampler_created(&s, s.ntrials, p.values, &e);
		} else {
			const told *t = &res[r++];
			tt_sampler_result x = { .index = t->index, .id = 100 + t->index,
			                        .values = v[t->index], .rung = t->rung,
			                        .val_acc = t->acc, .val_loss = 1 - t->acc };
			rc = tt_sampler_tell(&s, &x, io, &e);
			CHECK(rc == TT_OK, "tell: %s", e.msg);
		}
	}
	tt_sampler_ask(&s, s.ntrials, io, next, &e);
	tt_sampler_close(&s);
}

/*
 * The resume contract with a sampler that learns: a live run asks and
 * tells interleaved; a resume creates again the trials it created (their
 * stored values) and re-tells every result in the order it was stored; the next
 * proposal is the same.  Then what the contract excludes shows it is not
 * luck: results told in another order, a result missing, other stored
 * values, or no checkpoints each give another proposal.
 */
static void test_toy_retell(void)
{
	tt_study st;
	if (load_study(&st))
		return;
	int fetched = 0;
	tt_sampler_io io = { .ud = &fetched, .checkpoint = fake_checkpoint };
	static const told res[] = {
		{ 0, 0, 0.41 }, { 1, 0, 0.62 }, { 0, 1, 0.55 }, { 2, 0, 0.30 },
		{ 1, 1, 0.71 }, { 3, 0, NAN }, { 1, 2, 0.74 },
	};
	double live[8][TT_SPACE_MAX], v[8][TT_SPACE_MAX];
	tt_sampler_proposal want, got;
	toy_run(&st, 0, live, "aatttattatt", res, &io, &want);
	CHECK(fetched == 7, "the toy read %d checkpoints for 7 results", fetched);

	memcpy(v, live, sizeof v);
	toy_run(&st, 4, v, "ttttttt", res, &io, &got);
	CHECK(memcmp(want.values, got.values, sizeof want.values) == 0,
	      "re-told in order: next lr %.17g, live %.17g", got.values[0], want.values[0]);

	told swapped[7];
	memcpy(swapped, res, sizeof swapped);
	swapped[1] = res[2], swapped[2] = res[1];
	toy_run(&st, 4, v, "ttttttt", swapped, &io, &got);
	CHECK(memcmp(want.values, got.values, sizeof want.values) != 0,
	      "results re-told in another order give the same proposal");
	toy_run(&st, 4, v, "tttttt", res, &io, &got);
	CHECK(memcmp(want.values, got.values, sizeof want.values) != 0,
	      "a result left out gives the same proposal");
	v[2][0] *= 1.5;
	toy_run(&st, 4, v, "ttttttt", res, &io, &got);
	CHECK(memcmp(want.values, got.values, sizeof want.values) != 0,
	      "other stored values give the same proposal");
	memcpy(v, live, sizeof v);
	toy_run(&st, 4, v, "ttttttt", res, NULL, &got);
	CHECK(memcmp(want.values, got.values, sizeof want.values) != 0,
	      "results without their checkpoints give the same proposal");
	tt_study_free(&st);
}

/* An answer other than a new configuration: the runner acts on it (none
 * does yet); it is no trial. */
static int cont_ask(void *state, int index, const tt_sampler_io *io,
                    tt_sampler_proposal *out, tt_err *err)
{
	(void)state, (void)io, (void)err;
	out->kind = TT_SAMPLER_CONTINUE;
	out->index = index - 1;
	return TT_OK;
}

static void test_continue_answer(void)
{
	tt_study st;
	if (load_study(&st))
		return;
	tt_sampler_ops ops = tt_sampler_random;
	ops.ask = cont_ask;
	tt_sampler_inst s;
	tt_sampler_proposal p;
	tt_err e = { 0 };
	double v[TT_SPACE_MAX] = { 0 };
	CHECK(tt_sampler_open(&s, &ops, &st, &e) == TT_OK, "%s", e.msg);
	tt_sampler_created(&s, 0, v, &e);
	CHECK(tt_sampler_ask(&s, 1, NULL, &p, &e) == TT_OK && p.kind == TT_SAMPLER_CONTINUE &&
	      p.index == 0 && s.ntrials == 1, "continue: kind %d index %d trials %d", p.kind,
	      p.index, s.ntrials);
	tt_sampler_close(&s);
	tt_study_free(&st);
}

int main(void)
{
	TT_RUN(test_init_errors);
	TT_RUN(test_determinism);
	TT_RUN(test_seeds_differ);
	TT_RUN(test_unit_interval);
	TT_RUN(test_skip);
	TT_RUN(test_halton_even_d2);
	TT_RUN(test_halton_even_d32);
	TT_RUN(test_halton_decorrelates);
	TT_RUN(test_map_float);
	TT_RUN(test_map_logfloat);
	TT_RUN(test_map_int);
	TT_RUN(test_map_logint);
	TT_RUN(test_map_choice);
	TT_RUN(test_map_invalid);
	TT_RUN(test_unmap);
	TT_RUN(test_table);
	TT_RUN(test_builtin_ask_created);
	TT_RUN(test_toy_retell);
	TT_RUN(test_continue_answer);
	TT_EXIT();
}
