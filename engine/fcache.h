/*
 * fcache.h — the frozen-prefix feature cache.
 *
 * With a frozen prefix that maps each example on its own (model.h,
 * tt_model_prefix_pure) and an input that is not augmented, the prefix's
 * output for an example never changes while its weights and statistics
 * stay the same.  The cache keeps that output, the boundary features,
 * so that a run computes them once and every later epoch, and every
 * later trial with the same prefix (a study shares its initialisation
 * seed: at one trainable depth every configuration has the same random
 * prefix), runs only the trainable stages.
 *
 * A slot holds the features of one prefix (a key: a hash of the model
 * spec, the depth, the prefix's weights and statistics) over one set of
 * examples (a tt_dataset's address and its size: the cache must not
 * outlive the data it was filled from), per_example floats for each of
 * n examples, filled as the examples come.  A slot is allocated whole
 * when it is acquired, within the byte budget: slots no run holds are
 * evicted, least recently used first, to make room, and when that is not
 * enough the acquire fails and the caller recomputes (the budget is
 * never exceeded).  The cache also keeps the statistics a calibration of
 * a fixed prefix produced (tt_model_calibrate), under the key of the
 * prefix before it, so that trials after the first skip calibrating.
 *
 * Every call locks: runs on several threads share one cache.  Host
 * memory; the caller moves features to and from the device.
 */
#ifndef TT_FCACHE_H
#define TT_FCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_fcache tt_fcache;
typedef struct tt_fcache_slot tt_fcache_slot;

typedef struct tt_fcache_stats {
	long long hits, misses; /* examples served from the cache, computed */
	long long refused;      /* acquires that did not fit the budget */
	long long evicted;      /* slots dropped to make room */
	size_t bytes, budget;   /* held now, and the most it may hold */
	int slots;              /* slots held now */
} tt_fcache_stats;

/* A cache of at most budget bytes; NULL when out of memory. */
tt_fcache *tt_fcache_new(size_t budget);
/* Free; every slot must have been released.  NULL is fine. */
void tt_fcache_free(tt_fcache *c);
void tt_fcache_stats_get(tt_fcache *c, tt_fcache_stats *out);

/* 64-bit FNV-1a over len bytes, continuing from h (start with
 * TT_FCACHE_HASH0). */
#define TT_FCACHE_HASH0 0xcbf29ce484222325ull
uint64_t tt_fcache_hash(uint64_t h, const void *p, size_t len);

/*
 * The slot of prefix key over the n examples of set, per_example floats
 * each: the existing one, or a new empty one; NULL when it does not fit
 * the budget (or out of memory).  Hold it until tt_fcache_release.
 */
tt_fcache_slot *tt_fcache_acquire(tt_fcache *c, uint64_t key, const void *set, int n,
                                  size_t per_example);
void tt_fcache_release(tt_fcache *c, tt_fcache_slot *s);

/*
 * Examples idx[0..b) of the slot's set: when every one is stored, copy
 * them to dst (b rows of per_example floats), count b hits and return 1;
 * else count b misses and return 0 (the caller computes them all and
 * puts them).
 */
int tt_fcache_get(tt_fcache *c, tt_fcache_slot *s, const int *idx, int b, float *dst);
/* 1 when examples idx[0..b) are all stored (nothing counted). */
int tt_fcache_has(tt_fcache *c, tt_fcache_slot *s, const int *idx, int b);
/* Store rows src[0..b) as examples idx[0..b). */
void tt_fcache_put(tt_fcache *c, tt_fcache_slot *s, const int *idx, int b,
                   const float *src);

/* The n state floats a calibration keyed key produced: 1 and dst filled
 * when stored, else 0. */
int tt_fcache_state_get(tt_fcache *c, uint64_t key, float *dst, size_t n);
/* Keep them (within the budget, evicting as a slot does; silently not
 * kept when they do not fit). */
void tt_fcache_state_put(tt_fcache *c, uint64_t key, const float *src, size_t n);

#endif
