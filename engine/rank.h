/*
 * rank.h — rank correlation between two fidelities, and ranks for display.
 *
 * The explorer shows how well a cheap rung preserves the ordering of an
 * expensive one: Spearman's rho and Kendall's tau-b over the trials that
 * reached both rungs, and each trial's rank within a rung.
 *
 * Inputs are paired arrays x[i], y[i] (i < n) of doubles.  A pair where
 * either value is NaN is skipped (the trial did not reach that rung), and
 * the functions return how many pairs they used.  The coefficient is NaN
 * when fewer than 2 pairs remain or when either variable is constant over
 * them: no ordering, no correlation.  Ties are handled in both variables.
 *
 * The correlations scratch-allocate O(n); on out of memory they return -1,
 * set *out to NaN and leave a message in err (which may be NULL).
 */
#ifndef TT_RANK_H
#define TT_RANK_H

#include "err.h"

/*
 * Spearman's rho with average ranks for ties: the Pearson correlation of
 * the average ranks of the used pairs.  O(n log n).
 */
int tt_rank_spearman(const double *x, const double *y, int n, double *rho,
                     tt_err *err);

/*
 * Kendall's tau-b: (nc - nd) / sqrt((n0 - n1)(n0 - n2)), where n0 is the
 * number of pairs of pairs, n1 and n2 those tied in x and in y.  Knight's
 * O(n log n) algorithm (sort by x then y, count y-inversions by merge
 * sort), so whole studies of any size are cheap.
 */
int tt_rank_kendall(const double *x, const double *y, int n, double *tau,
                    tt_err *err);

/*
 * Average ranks of v[0..n) for display, "rank per rung": rank 1 is the
 * best, tied values share the mean of their positions (two trials tied for
 * best are both 1.5).  higher_is_better: the largest value is the best
 * (accuracy); otherwise the smallest (loss).  A NaN value gets rank NaN
 * and does not count.  Returns the number of values ranked, or -1 on out
 * of memory (rank[] then all NaN).
 */
int tt_rank_average(const double *v, int n, int higher_is_better,
                    double *rank, tt_err *err);

#endif
