/*
 * sampler.h — samplers that propose configurations, and the map from the
 * unit cube to hyperparameter values.
 *
 * A sampler yields points u in [0,1)^d, d <= TT_SAMPLER_DIM_MAX, one per
 * trial; tt_sampler_map turns each coordinate into a value of the matching
 * [space] entry.  Everything is a pure function of (kind, d, seed, how many
 * points were drawn), so a study resumed from its database can redraw the
 * same configurations (see tt_sampler_skip).
 *
 *   TT_SAMP_RANDOM  independent uniform coordinates from a tt_rng stream
 *                   (53 random bits each).
 *   TT_SAMP_HALTON  the Halton sequence, dimension j in base prime(j)
 *                   (2, 3, 5, ..., 131), from index 1 (index 0 is the
 *                   corner 0 of the unscrambled sequence), with a seeded
 *                   random permutation of the digits at every position
 *                   (Matousek's random digit scrambling): different seeds
 *                   give different sequences, each as evenly spread along
 *                   every axis as Halton's, and the scramble breaks up the
 *                   correlated lines that plain Halton draws in high
 *                   dimensions.  Along axis j the spread is even once n is
 *                   a few times prime(j): the mean Kolmogorov-Smirnov
 *                   distance per axis is 3 to 16 times smaller than
 *                   random's at n = 256, 7 to 64 times at n = 4096.
 *
 * The sampler is a plain struct: no allocation, no free.  The kinds, the
 * parameter types and tt_param_spec come from study.h.
 */
#ifndef TT_SAMPLER_H
#define TT_SAMPLER_H

#include <stdint.h>

#include "err.h"
#include "rng.h"
#include "study.h"

#define TT_SAMPLER_DIM_MAX 32
/*
 * Halton digits kept per coordinate: the most with base^digits <= 2^52, so
 * that every coordinate is an exact fraction num / base^digits strictly
 * below 1.  One permutation of base entries per digit: the sum over the 32
 * bases of digits * base is the size of the table (tt_sampler_init checks).
 */
#define TT_SAMPLER_PERM_BYTES 14929

typedef struct tt_sampler {
	int kind;                 /* enum tt_sampler_kind */
	int d;                    /* dimensions, 1..TT_SAMPLER_DIM_MAX */
	uint64_t seed;
	uint64_t drawn;           /* points drawn so far */
	tt_rng rng;               /* TT_SAMP_RANDOM: the coordinates */
	/* TT_SAMP_HALTON, per dimension j: */
	uint32_t base[TT_SAMPLER_DIM_MAX];   /* the j-th prime */
	int ndigits[TT_SAMPLER_DIM_MAX];     /* digits kept */
	double denom[TT_SAMPLER_DIM_MAX];    /* base^ndigits, exact */
	int perm_at[TT_SAMPLER_DIM_MAX];     /* dimension j's table offset */
	/* digit position k (k = 0 most significant) of dimension j maps
	 * digit a to perm[perm_at[j] + k * base[j] + a] */
	uint8_t perm[TT_SAMPLER_PERM_BYTES];
} tt_sampler;

/* Set up s to draw d-dimensional points.  TT_EINPUT for an unknown kind or
 * d outside 1..TT_SAMPLER_DIM_MAX. */
int tt_sampler_init(tt_sampler *s, int kind, int d, uint64_t seed, tt_err *err);

/* The next point: u[0..d), each in [0, 1). */
void tt_sampler_next(tt_sampler *s, double *u);

/* Move on n points without computing them: a sampler that drew k points
 * and one that skipped k then propose the same next point.  O(1) for
 * Halton, O(n d) for random. */
void tt_sampler_skip(tt_sampler *s, uint64_t n);

/*
 * Map u in [0,1) to a value of parameter p (u outside [0,1) is a bug):
 *
 *   TT_P_FLOAT     lo + u (hi - lo), uniform on [lo, hi)
 *   TT_P_LOGFLOAT  uniform in log on [lo, hi): every decade equally
 *                  likely; needs 0 < lo
 *   TT_P_INT       uniform over the integers lo..hi, both included
 *   TT_P_LOGINT    integer k in lo..hi, both included, with probability
 *                  proportional to log((k + 1) / k): floor of a log-uniform
 *                  value on [lo, hi + 1); needs 1 <= lo
 *   TT_P_CHOICE    an index 0..nchoices-1 as a double, uniform (the form
 *                  tt_study_apply takes)
 *
 * Integer bounds that are not integers are narrowed to ceil(lo)..floor(hi).
 * Returns NaN when p cannot be sampled: hi < lo, a log type with a bound
 * out of its domain, no choices, an unknown type.
 */
double tt_sampler_map(const tt_param_spec *p, double u);

#endif
