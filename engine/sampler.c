/*
 * sampler.c — random and scrambled Halton points, and the map to
 * hyperparameter values; see sampler.h.
 *
 * Constraints kept: every coordinate is strictly below 1 (Halton by exact
 * integer arithmetic, random by taking 53 bits), and the output depends
 * only on (kind, d, seed, points drawn), never on the clock or on memory.
 */
#include "sampler.h"

#include <math.h>

_Static_assert(TT_SAMPLER_DIM_MAX >= TT_SPACE_MAX,
               "a sampler must cover every [space] entry");

/*
 * Private tt_rng stream identifiers, far above rng.h's enum so they never
 * meet a stream that training uses with the same user seed.
 */
#define STREAM_POINTS 0x73616d70ULL   /* "samp": random coordinates */
#define STREAM_SCRAMBLE 0x68616c74ULL /* "halt": Halton digit scrambles */

static const uint32_t primes[TT_SAMPLER_DIM_MAX] = {
	2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53,
	59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131
};

int tt_sampler_init(tt_sampler *s, int kind, int d, uint64_t seed, tt_err *err)
{
	TT_ASSERT(s);
	*s = (tt_sampler){ 0 };
	if (kind != TT_SAMP_RANDOM && kind != TT_SAMP_HALTON)
		return tt_err_set(err, TT_EINPUT, "sampler: unknown kind %d", kind);
	if (d < 1 || d > TT_SAMPLER_DIM_MAX)
		return tt_err_set(err, TT_EINPUT,
		                  "sampler: %d dimensions, expected 1 to %d", d,
		                  TT_SAMPLER_DIM_MAX);
	s->kind = kind;
	s->d = d;
	s->seed = seed;
	tt_rng_seed(&s->rng, seed, STREAM_POINTS);
	if (kind != TT_SAMP_HALTON)
		return TT_OK;

	/*
	 * Scrambles are drawn for all TT_SAMPLER_DIM_MAX dimensions whatever d
	 * is, so that the first d coordinates do not depend on d: a study that
	 * gains a parameter keeps the others' sequence.
	 */
	tt_rng r;
	tt_rng_seed(&r, seed, STREAM_SCRAMBLE);
	int at = 0;
	for (int j = 0; j < TT_SAMPLER_DIM_MAX; j++) {
		uint32_t b = primes[j];
		uint64_t denom = 1;
		int k = 0;
		while (denom <= (1ULL << 52) / b) {
			denom *= b;
			k++;
		}
		s->base[j] = b;
		s->ndigits[j] = k;
		s->denom[j] = (double)denom;
		s->perm_at[j] = at;
		TT_ASSERT(at + k * (int)b <= TT_SAMPLER_PERM_BYTES);
		/* An independent uniform permutation per digit position
		 * (Fisher-Yates). */
		for (int i = 0; i < k; i++, at += (int)b) {
			uint8_t *p = s->perm + at;
			for (uint32_t a = 0; a < b; a++)
				p[a] = (uint8_t)a;
			for (uint32_t a = b - 1; a > 0; a--) {
				uint32_t z = tt_rng_below(&r, a + 1);
				uint8_t t = p[a];
				p[a] = p[z];
				p[z] = t;
			}
		}
	}
	TT_ASSERT(at == TT_SAMPLER_PERM_BYTES);
	return TT_OK;
}

/*
 * Scrambled radical inverse of index in dimension j.  Digit k of the index
 * (k = 0 least significant) becomes digit k + 1 after the radix point,
 * passed through that position's permutation.  All ndigits positions are
 * scrambled, zeros included, as if the index had infinitely many leading
 * zeros cut off at the precision of a double.  The numerator is an integer
 * below base^ndigits <= 2^52, so the quotient is exact up to one rounding
 * and strictly below 1.  Each position's permutation preserves Halton's
 * stratification: any b^m consecutive indices from a multiple of b^m still
 * put one point in each interval of width b^-m.
 */
static double halton(const tt_sampler *s, int j, uint64_t index)
{
	uint32_t b = s->base[j];
	const uint8_t *p = s->perm + s->perm_at[j];
	uint64_t num = 0;
	for (int k = 0; k < s->ndigits[j]; k++, p += b) {
		uint32_t a = (uint32_t)(index % b);
		index /= b;
		num = num * b + p[a];
	}
	return (double)num / s->denom[j];
}

void tt_sampler_next(tt_sampler *s, double *u)
{
	TT_ASSERT(s && u && s->d >= 1);
	if (s->kind == TT_SAMP_HALTON) {
		/* Index 0 is the corner (0, ..., 0) of the unscrambled sequence:
		 * start at 1, as is usual. */
		uint64_t index = s->drawn + 1;
		for (int j = 0; j < s->d; j++)
			u[j] = halton(s, j, index);
	} else {
		for (int j = 0; j < s->d; j++)
			u[j] = (double)(tt_rng_next(&s->rng) >> 11) *
			       (1.0 / 9007199254740992.0);
	}
	s->drawn++;
}

void tt_sampler_skip(tt_sampler *s, uint64_t n)
{
	TT_ASSERT(s && s->d >= 1);
	if (s->kind == TT_SAMP_RANDOM)
		for (uint64_t i = 0; i < n * (uint64_t)s->d; i++)
			tt_rng_next(&s->rng);
	s->drawn += n;
}

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

double tt_sampler_map(const tt_param_spec *p, double u)
{
	TT_ASSERT(p && u >= 0 && u < 1);
	double lo = p->lo, hi = p->hi;
	switch (p->type) {
	case TT_P_FLOAT:
		if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
			return NAN;
		/* (hi - lo) may round up: keep the result inside the bounds. */
		return clamp(lo + u * (hi - lo), lo, hi);
	case TT_P_LOGFLOAT:
		if (!(0 < lo && lo <= hi) || !isfinite(hi))
			return NAN;
		return clamp(exp(log(lo) + u * (log(hi) - log(lo))), lo, hi);
	case TT_P_INT: {
		lo = ceil(lo);
		hi = floor(hi);
		if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
			return NAN;
		/* hi - lo + 1 equal cells; u < 1, but floor(u * count) can
		 * still round up to count, hence the clamp. */
		return clamp(lo + floor(u * (hi - lo + 1)), lo, hi);
	}
	case TT_P_LOGINT: {
		lo = ceil(lo);
		hi = floor(hi);
		if (!(1 <= lo && lo <= hi) || !isfinite(hi))
			return NAN;
		/* Integer k owns [k, k + 1) on the log axis over [lo, hi + 1),
		 * so every integer is reachable, both bounds included. */
		double v = exp(log(lo) + u * (log(hi + 1) - log(lo)));
		return clamp(floor(v), lo, hi);
	}
	case TT_P_CHOICE:
		if (p->nchoices < 1)
			return NAN;
		return clamp(floor(u * p->nchoices), 0, p->nchoices - 1);
	}
	return NAN;
}
