/*
 * rng.h — deterministic random streams.
 *
 * xoshiro256** seeded through splitmix64 from (seed, stream), so every
 * purpose (initialisation, data order, augmentation, split) gets its own
 * reproducible stream from one user seed.
 */
#ifndef TT_RNG_H
#define TT_RNG_H

#include <stdint.h>

typedef struct tt_rng {
	uint64_t s[4];
} tt_rng;

/* Well-known stream identifiers, so purposes never share a stream. */
enum { TT_STREAM_INIT = 1, TT_STREAM_SPLIT, TT_STREAM_ORDER,
       TT_STREAM_AUGMENT, TT_STREAM_SYNTH, TT_STREAM_GATES,
       TT_STREAM_LABEL_NOISE, TT_STREAM_MWN, TT_STREAM_GMN,
       TT_STREAM_SURROGATE, TT_STREAM_HYPERNET,
       TT_STREAM_REPLAY, TT_STREAM_CL, TT_STREAM_CL_ORDER };

void tt_rng_seed(tt_rng *r, uint64_t seed, uint64_t stream);
uint64_t tt_rng_next(tt_rng *r);
/* Uniform in [0, 1). */
float tt_rng_uniform(tt_rng *r);
/* Standard normal (Box–Muller). */
float tt_rng_normal(tt_rng *r);
/* Uniform integer in [0, n); n > 0. */
uint32_t tt_rng_below(tt_rng *r, uint32_t n);
/* Fisher–Yates shuffle of idx[0..n). */
void tt_rng_shuffle(tt_rng *r, int *idx, int n);

#endif
