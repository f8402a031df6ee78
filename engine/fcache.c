/*
 * fcache.c — the frozen-prefix feature cache; see fcache.h.
 *
 * A handful of entries at most (one per prefix and set, one per
 * calibration), so a list searched linearly does.  Feature slots and
 * calibrated statistics are the same kind of entry: a slot has a set and
 * a fill map, a statistics entry has neither.
 */
#include "fcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct tt_fcache_slot {
	struct tt_fcache_slot *next;
	uint64_t key;
	const void *set;      /* NULL: calibrated statistics */
	int n;
	size_t per;           /* floats per example (statistics: all of them) */
	float *data;
	uint8_t *have;        /* n flags; NULL for statistics */
	size_t bytes;
	int refs;
	unsigned long long used; /* the cache's clock at the last use */
};

struct tt_fcache {
	pthread_mutex_t mu;
	struct tt_fcache_slot *head;
	unsigned long long clock;
	tt_fcache_stats st;
};

uint64_t tt_fcache_hash(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

tt_fcache *tt_fcache_new(size_t budget)
{
	tt_fcache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	c->st.budget = budget;
	return c;
}

static void drop(tt_fcache *c, struct tt_fcache_slot **at)
{
	struct tt_fcache_slot *s = *at;
	*at = s->next;
	c->st.bytes -= s->bytes;
	c->st.slots--;
	free(s->data);
	free(s->have);
	free(s);
}

void tt_fcache_free(tt_fcache *c)
{
	if (!c)
		return;
	while (c->head)
		drop(c, &c->head);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void tt_fcache_stats_get(tt_fcache *c, tt_fcache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	pthread_mutex_unlock(&c->mu);
}

static struct tt_fcache_slot *find(tt_fcache *c, uint64_t key, const void *set, int n,
                                   size_t per)
{
	for (struct tt_fcache_slot *s = c->head; s; s = s->next)
		if (s->key == key && s->set == set && s->n == n && s->per == per)
			return s;
	return NULL;
}

/* Evict unheld entries, least recently used first, until bytes more fit;
 * 0 when they cannot. */
static int make_room(tt_fcache *c, size_t bytes)
{
	if (bytes > c->st.budget)
		return 0;
	while (c->st.bytes + bytes > c->st.budget) {
		struct tt_fcache_slot **victim = NULL;
		for (struct tt_fcache_slot **at = &c->head; *at; at = &(*at)->next)
			if (!(*at)->refs && (!victim || (*at)->used < (*victim)->used))
				victim = at;
		if (!victim)
			return 0;
		drop(c, victim);
		c->st.evicted++;
	}
	return 1;
}

/* A new entry of n * per floats (and n flags for a slot), linked in;
 * NULL when it does not fit or memory is short. */
static struct tt_fcache_slot *add(tt_fcache *c, uint64_t key, const void *set, int n,
                                  size_t per)
{
	size_t floats = (size_t)n * per;
	size_t bytes = floats * sizeof(float) + (set ? (size_t)n : 0);
	if (per && floats / per != (size_t)n)
		return NULL;
	if (!make_room(c, bytes))
		return NULL;
	struct tt_fcache_slot *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->data = malloc(floats * sizeof(float));
	s->have = set ? calloc((size_t)n, 1) : NULL;
	if (!s->data || (set && !s->have)) {
		free(s->data);
		free(s->have);
		free(s);
		return NULL;
	}
	*s = (struct tt_fcache_slot){ .next = c->head, .key = key, .set = set, .n = n,
	                              .per = per, .data = s->data, .have = s->have,
	                              .bytes = bytes };
	c->head = s;
	c->st.bytes += bytes;
	c->st.slots++;
	return s;
}

tt_fcache_slot *tt_fcache_acquire(tt_fcache *c, uint64_t key, const void *set, int n,
                                  size_t per_example)
{
	if (!c || !set || n <= 0 || !per_example)
		return NULL;
	pthread_mutex_lock(&c->mu);
	struct tt_fcache_slot *s = find(c, key, set, n, per_example);
	if (!s && !(s = add(c, key, set, n, per_example)))
		c->st.refused++;
	if (s) {
		s->refs++;
		s->used = ++c->clock;
	}
	pthread_mutex_unlock(&c->mu);
	return s;
}

void tt_fcache_release(tt_fcache *c, tt_fcache_slot *s)
{
	if (!c || !s)
		return;
	pthread_mutex_lock(&c->mu);
	s->refs--;
	pthread_mutex_unlock(&c->mu);
}

int tt_fcache_get(tt_fcache *c, tt_fcache_slot *s, const int *idx, int b, float *dst)
{
	pthread_mutex_lock(&c->mu);
	int all = 1;
	for (int i = 0; i < b && all; i++)
		all = s->have[idx[i]];
	if (all) {
		for (int i = 0; i < b; i++)
			memcpy(dst + (size_t)i * s->per, s->data + (size_t)idx[i] * s->per,
			       s->per * sizeof(float));
		c->st.hits += b;
	} else {
		c->st.misses += b;
	}
	s->used = ++c->clock;
	pthread_mutex_unlock(&c->mu);
	return all;
}

int tt_fcache_has(tt_fcache *c, tt_fcache_slot *s, const int *idx, int b)
{
	pthread_mutex_lock(&c->mu);
	int all = 1;
	for (int i = 0; i < b && all; i++)
		all = s->have[idx[i]];
	pthread_mutex_unlock(&c->mu);
	return all;
}

void tt_fcache_put(tt_fcache *c, tt_fcache_slot *s, const int *idx, int b,
                   const float *src)
{
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < b; i++) {
		memcpy(s->data + (size_t)idx[i] * s->per, src + (size_t)i * s->per,
		       s->per * sizeof(float));
		s->have[idx[i]] = 1;
	}
	pthread_mutex_unlock(&c->mu);
}

int tt_fcache_state_get(tt_fcache *c, uint64_t key, float *dst, size_t n)
{
	if (!c || !n)
		return 0;
	pthread_mutex_lock(&c->mu);
	struct tt_fcache_slot *s = find(c, key, NULL, 1, n);
	if (s) {
		memcpy(dst, s->data, n * sizeof(float));
		s->used = ++c->clock;
	}
	pthread_mutex_unlock(&c->mu);
	return s != NULL;
}

void tt_fcache_state_put(tt_fcache *c, uint64_t key, const float *src, size_t n)
{
	if (!c || !n)
		return;
	pthread_mutex_lock(&c->mu);
	struct tt_fcache_slot *s = find(c, key, NULL, 1, n);
	if (!s && (s = add(c, key, NULL, 1, n)))
		memcpy(s->data, src, n * sizeof(float));
	if (s)
		s->used = ++c->clock;
	pthread_mutex_unlock(&c->mu);
}
