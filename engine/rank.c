/*
 * rank.c — Spearman's rho, Kendall's tau-b and average ranks; see rank.h.
 *
 * Everything is ranked by sorting, so the cost is O(n log n) and the only
 * state is one scratch allocation per call.  Ties are exact comparisons of
 * doubles (-0.0 ties with 0.0); NaN never reaches a comparison because
 * NaN pairs are dropped first, so the sort order is a total order.
 */
#include "rank.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A value and where it came from, so that ranks land back in place. */
struct item {
	double v;
	int i;
};

/* A used (x, y) pair, for Kendall's sort by x then y. */
struct pair {
	double x, y;
};

static int cmp_item(const void *a, const void *b)
{
	const struct item *p = a, *q = b;
	if (p->v != q->v)
		return p->v < q->v ? -1 : 1;
	return (p->i > q->i) - (p->i < q->i);
}

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *p = a, *q = b;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return (p->y > q->y) - (p->y < q->y);
}

/*
 * Ascending average ranks of it[0..m) (m >= 1): rank[it[k].i] for each k.
 * Sorts it in place.  Tied values at sorted positions lo..hi-1 (0-based)
 * all get the mean of ranks lo+1..hi, i.e. (lo + 1 + hi) / 2, which is a
 * multiple of 1/2 and exact in a double.
 */
static void avg_ranks(struct item *it, int m, double *rank)
{
	qsort(it, (size_t)m, sizeof *it, cmp_item);
	for (int lo = 0; lo < m;) {
		int hi = lo + 1;
		while (hi < m && it[hi].v == it[lo].v)
			hi++;
		double r = (lo + 1 + hi) / 2.0;
		for (int k = lo; k < hi; k++)
			rank[it[k].i] = r;
		lo = hi;
	}
}

static int oom(tt_err *err, double *out, int n)
{
	*out = NAN;
	tt_err_set(err, TT_ERUNTIME, "rank: out of memory for %d pairs", n);
	return -1;
}

int tt_rank_spearman(const double *x, const double *y, int n, double *rho,
                     tt_err *err)
{
	TT_ASSERT(rho && (n <= 0 || (x && y)));
	*rho = NAN;
	if (n <= 0)
		return 0;

	/* One block: rx, ry (m doubles each), then the sort items. */
	size_t bytes = (size_t)n * (2 * sizeof(double) + sizeof(struct item));
	double *rx = malloc(bytes);
	if (!rx)
		return oom(err, rho, n);
	double *ry = rx + n;
	struct item *it = (struct item *)(ry + n);

	int m = 0;
	for (int i = 0; i < n; i++) {
		if (isnan(x[i]) || isnan(y[i]))
			continue;
		it[m].v = x[i];
		it[m].i = m;
		m++;
	}
	if (m < 2)
		goto out;
	avg_ranks(it, m, rx);
	for (int i = 0, k = 0; i < n; i++) {
		if (isnan(x[i]) || isnan(y[i]))
			continue;
		it[k].v = y[i];
		it[k].i = k;
		k++;
	}
	avg_ranks(it, m, ry);

	/*
	 * Pearson over the ranks.  Average ranks always sum to m(m+1)/2, so the
	 * mean is known exactly; deviations are multiples of 1/2 and the sums
	 * below are exact until m is in the hundreds of thousands.
	 */
	double mean = (m + 1) / 2.0, sxy = 0, sxx = 0, syy = 0;
	for (int k = 0; k < m; k++) {
		double dx = rx[k] - mean, dy = ry[k] - mean;
		sxy += dx * dy;
		sxx += dx * dx;
		syy += dy * dy;
	}
	if (sxx > 0 && syy > 0) {
		double r = sxy / sqrt(sxx * syy);
		/* Rounding may step just past +-1 when the product is inexact. */
		*rho = r > 1 ? 1 : r < -1 ? -1 : r;
	}
out:
	free(rx);
	return m;
}

/*
 * Sort y[0..m) ascending by bottom-up merge sort, using tmp[0..m), and
 * return the number of inversions (pairs i < j with y[i] > y[j]).  Equal
 * values are not inversions: the left one is taken first.
 */
static int64_t merge_count(double *y, double *tmp, int m)
{
	int64_t swaps = 0;
	double *src = y, *dst = tmp;
	for (int w = 1; w < m; w *= 2) {
		for (int lo = 0; lo < m; lo += 2 * w) {
			int mid = lo + w < m ? lo + w : m;
			int hi = lo + 2 * w < m ? lo + 2 * w : m;
			int i = lo, j = mid, k = lo;
			while (i < mid && j < hi) {
				if (src[i] <= src[j]) {
					dst[k++] = src[i++];
				} else {
					swaps += mid - i;
					dst[k++] = src[j++];
				}
			}
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		double *t = src;
		src = dst;
		dst = t;
	}
	if (src != y)
		memcpy(y, src, (size_t)m * sizeof *y);
	return swaps;
}

/* Pairs of pairs tied within each run of equal values of v[0..m) (sorted
 * by the caller so that equal values are adjacent). */
static int64_t tied_pairs(const double *v, int m)
{
	int64_t t = 0;
	for (int lo = 0; lo < m;) {
		int hi = lo + 1;
		while (hi < m && v[hi] == v[lo])
			hi++;
		t += (int64_t)(hi - lo) * (hi - lo - 1) / 2;
		lo = hi;
	}
	return t;
}

int tt_rank_kendall(const double *x, const double *y, int n, double *tau,
                    tt_err *err)
{
	TT_ASSERT(tau && (n <= 0 || (x && y)));
	*tau = NAN;
	if (n <= 0)
		return 0;

	/* One block: the pairs, then ys and a merge buffer (m doubles each). */
	size_t bytes = (size_t)n * (sizeof(struct pair) + 2 * sizeof(double));
	struct pair *p = malloc(bytes);
	if (!p)
		return oom(err, tau, n);
	double *ys = (double *)(p + n);
	double *tmp = ys + n;

	int m = 0;
	for (int i = 0; i < n; i++) {
		if (isnan(x[i]) || isnan(y[i]))
			continue;
		p[m].x = x[i];
		p[m].y = y[i];
		m++;
	}
	if (m < 2)
		goto out;

	/*
	 * Knight (1966).  Sorted by x then y, a pair of pairs tied in x is in
	 * y order and so never an inversion; every other pair of pairs is
	 * discordant exactly when its y values are inverted.  With n1 tied in
	 * x, n2 tied in y and n3 tied in both, the untied pairs number
	 * n0 - n1 - n2 + n3 = nc + nd, and nd = inversions, so
	 * nc - nd = n0 - n1 - n2 + n3 - 2 * inversions.
	 */
	qsort(p, (size_t)m, sizeof *p, cmp_pair);
	int64_t n0 = (int64_t)m * (m - 1) / 2, n1 = 0, n3 = 0;
	for (int lo = 0; lo < m;) {
		int hi = lo + 1;
		while (hi < m && p[hi].x == p[lo].x)
			hi++;
		n1 += (int64_t)(hi - lo) * (hi - lo - 1) / 2;
		for (int a = lo; a < hi;) {
			int b = a + 1;
			while (b < hi && p[b].y == p[a].y)
				b++;
			n3 += (int64_t)(b - a) * (b - a - 1) / 2;
			a = b;
		}
		lo = hi;
	}
	for (int k = 0; k < m; k++)
		ys[k] = p[k].y;
	int64_t nd = merge_count(ys, tmp, m);
	int64_t n2 = tied_pairs(ys, m);

	if (n0 > n1 && n0 > n2) {
		double num = (double)(n0 - n1 - n2 + n3 - 2 * nd);
		double t = num / sqrt((double)(n0 - n1) * (double)(n0 - n2));
		*tau = t > 1 ? 1 : t < -1 ? -1 : t;
	}
out:
	free(p);
	return m;
}

int tt_rank_average(const double *v, int n, int higher_is_better,
                    double *rank, tt_err *err)
{
	TT_ASSERT(n <= 0 || (v && rank));
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++)
		rank[i] = NAN;
	struct item *it = malloc((size_t)n * sizeof *it);
	if (!it) {
		tt_err_set(err, TT_ERUNTIME, "rank: out of memory for %d values", n);
		return -1;
	}
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (isnan(v[i]))
			continue;
		it[m].v = v[i];
		it[m].i = i;
		m++;
	}
	if (m > 0)
		avg_ranks(it, m, rank);
	/* Descending ranks mirror ascending ones: a tie group's mean maps to
	 * the mean of the mirrored positions, m + 1 - r. */
	if (higher_is_better)
		for (int k = 0; k < m; k++)
			rank[it[k].i] = m + 1 - rank[it[k].i];
	free(it);
	return m;
}
