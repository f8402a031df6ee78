/*
 * sampler.c — random and scrambled Halton points, the map to
 * hyperparameter values, and the table of samplers with its first two
 * entries (random and halton); see sampler.h.
 *
 * Constraints kept: every coordinate is strictly below 1 (Halton by exact
 * integer arithmetic, random by taking 53 bits), and the output depends
 * only on (kind, d, seed, points drawn), never on the clock or on memory.
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The next point into u; the random stream advances in *r. */
static void point(const tt_sampler *s, tt_rng *r, double *u)
{
	if (s->kind == TT_SAMP_HALTON) {
		/* Index 0 is the corner (0, ..., 0) of the unscrambled sequence:
		 * start at 1, as is usual. */
		uint64_t index = s->drawn + 1;
		for (int j = 0; j < s->d; j++)
			u[j] = halton(s, j, index);
	} else {
		for (int j = 0; j < s->d; j++)
			u[j] = (double)(tt_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
	}
}

void tt_sampler_next(tt_sampler *s, double *u)
{
	TT_ASSERT(s && u && s->d >= 1);
	point(s, &s->rng, u);
	s->drawn++;
}

void tt_sampler_peek(const tt_sampler *s, double *u)
{
	TT_ASSERT(s && u && s->d >= 1);
	tt_rng r = s->rng;
	point(s, &r, u);
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

double tt_sampler_unmap(const tt_param_spec *p, double v)
{
	TT_ASSERT(p);
	double lo = p->lo, hi = p->hi, u;
	if (isnan(v) || isnan(tt_sampler_map(p, 0)))
		return NAN;
	switch (p->type) {
	case TT_P_FLOAT:
		u = hi > lo ? (v - lo) / (hi - lo) : 0;
		break;
	case TT_P_LOGFLOAT:
		/* v <= 0 is below every value: log gives -inf or NaN, both the
		 * lower end */
		u = hi > lo && v > 0 ? log(v / lo) / log(hi / lo) : 0;
		break;
	case TT_P_INT:
		lo = ceil(lo);
		hi = floor(hi);
		u = (clamp(round(v), lo, hi) - lo + 0.5) / (hi - lo + 1);
		break;
	case TT_P_LOGINT: {
		lo = ceil(lo);
		hi = floor(hi);
		double k = clamp(round(v), lo, hi);
		/* the middle of [log k, log(k + 1)): map's exp gives
		 * sqrt(k (k + 1)), strictly inside (k, k + 1) */
		u = 0.5 * (log(k / lo) + log((k + 1) / lo)) / log((hi + 1) / lo);
		break;
	}
	case TT_P_CHOICE:
		u = (clamp(round(v), 0, p->nchoices - 1) + 0.5) / p->nchoices;
		break;
	default:
		return NAN;
	}
	return isnan(u) ? 0 : clamp(u, 0, nextafter(1.0, 0.0));
}

/* ---- the first two entries: random and halton --------------------------- */

/* Both are the point stream of their kind, one point per trial, mapped to
 * the [space] entries; results do not change what they propose. */
static int stream_init(void *state, const tt_study *st, int kind, tt_err *err)
{
	return tt_sampler_init(state, kind, st->nspace > 0 ? st->nspace : 1, st->seed,
	                       err);
}

/* The stream and the study it maps through (the study outlives the
 * sampler: the runner's, or a test's). */
typedef struct stream_state {
	tt_sampler points;
	const tt_study *st;
} stream_state;

static int stream_open(void *state, const tt_study *st, int kind, tt_err *err)
{
	stream_state *ss = state;
	ss->st = st;
	return stream_init(&ss->points, st, kind, err);
}

static int random_open(void *state, const tt_study *st, tt_err *err)
{
	return stream_open(state, st, TT_SAMP_RANDOM, err);
}

static int halton_open(void *state, const tt_study *st, tt_err *err)
{
	return stream_open(state, st, TT_SAMP_HALTON, err);
}

/* The stream's next point without taking it: ask changes nothing (rule
 * 1), created takes it. */
static int stream_ask(void *state, int index, const tt_sampler_io *io,
                      tt_sampler_proposal *out, tt_err *err)
{
	stream_state *ss = state;
	double u[TT_SAMPLER_DIM_MAX];
	(void)index, (void)io, (void)err;
	tt_sampler_peek(&ss->points, u);
	out->kind = TT_SAMPLER_NEW;
	for (int k = 0; k < ss->st->nspace; k++)
		out->values[k] = tt_sampler_map(&ss->st->space[k], u[k]);
	return TT_OK;
}

/* The trial took this stream's next point when it was created, whatever
 * values it holds now. */
static int stream_created(void *state, int index, const double *values, tt_err *err)
{
	stream_state *ss = state;
	(void)index, (void)values, (void)err;
	tt_sampler_skip(&ss->points, 1);
	return TT_OK;
}

const tt_sampler_ops tt_sampler_random = {
	.name = "random", .size = sizeof(stream_state), .init = random_open,
	.ask = stream_ask, .created = stream_created,
};

const tt_sampler_ops tt_sampler_halton = {
	.name = "halton", .size = sizeof(stream_state), .init = halton_open,
	.ask = stream_ask, .created = stream_created,
};

/* ---- the table ---------------------------------------------------------- */

/* Every sampler a study may name.  The first entries follow enum
 * tt_sampler_kind; a new sampler is one more line here, with its extern
 * above the table (and its file). */
static const tt_sampler_ops *const samplers[] = {
	&tt_sampler_random,
	&tt_sampler_halton,
	&tt_sampler_fms,
	&tt_sampler_dyhpo,
	&tt_sampler_fms_flat,
	&tt_sampler_tpe,
};

#define NSAMPLERS ((int)(sizeof samplers / sizeof samplers[0]))

const tt_sampler_ops *tt_sampler_nth(int i)
{
	return i >= 0 && i < NSAMPLERS ? samplers[i] : NULL;
}

int tt_sampler_index(const char *name)
{
	for (int i = 0; name && i < NSAMPLERS; i++)
		if (strcmp(samplers[i]->name, name) == 0)
			return i;
	return -1;
}

const tt_sampler_ops *tt_sampler_find(const char *name)
{
	return tt_sampler_nth(tt_sampler_index(name));
}

const char *tt_sampler_names(void)
{
	static char buf[256];
	static int done;
	/* built once; the table is const, so every call builds the same text
	 * and a race between two first calls writes the same bytes */
	if (!done) {
		size_t at = 0;
		for (int i = 0; i < NSAMPLERS && at < sizeof buf; i++)
			at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%s", i ? ", " : "",
			                       samplers[i]->name);
		done = 1;
	}
	return buf;
}

/* ---- running one -------------------------------------------------------- */

static int no_checkpoint(void *ud, int64_t trial, int rung, long *step, void **blob,
                         size_t *len, tt_err *err)
{
	(void)ud, (void)trial, (void)rung, (void)err;
	*step = -1;
	*blob = NULL;
	*len = 0;
	return TT_OK;
}

static const tt_sampler_io no_io = { .ud = NULL, .checkpoint = no_checkpoint };

int tt_sampler_open(tt_sampler_inst *s, const tt_sampler_ops *ops, const tt_study *st,
                    tt_err *err)
{
	TT_ASSERT(s && st);
	memset(s, 0, sizeof *s);
	if (!ops || !ops->name || !ops->init || !ops->ask || !ops->created || !ops->size)
		return tt_err_set(err, TT_EINPUT, "sampler %s: its table lacks a required "
		                  "operation (init, ask, created) or its state size",
		                  ops && ops->name ? ops->name : "(unnamed)");
	if (!(s->state = calloc(1, ops->size)))
		return tt_err_set(err, TT_ERUNTIME, "sampler %s: out of memory", ops->name);
	s->ops = ops;
	int rc = ops->init(s->state, st, err);
	if (rc) {
		/* init failed: whatever it set up is its free's to undo */
		tt_sampler_close(s);
		return rc;
	}
	return TT_OK;
}

int tt_sampler_ask(tt_sampler_inst *s, int index, const tt_sampler_io *io,
                   tt_sampler_proposal *out, tt_err *err)
{
	TT_ASSERT(s && s->ops && out && index == s->ntrials);
	memset(out, 0, sizeof *out);
	return s->ops->ask(s->state, index, io ? io : &no_io, out, err);
}

int tt_sampler_tell(tt_sampler_inst *s, const tt_sampler_result *r,
                    const tt_sampler_io *io, tt_err *err)
{
	TT_ASSERT(s && s->ops && r && r->index >= 0 && r->index < s->ntrials);
	if (!s->ops->tell)
		return TT_OK;
	return s->ops->tell(s->state, r, io ? io : &no_io, err);
}

int tt_sampler_created(tt_sampler_inst *s, int index, const double *values, tt_err *err)
{
	TT_ASSERT(s && s->ops && values && index == s->ntrials);
	int rc = s->ops->created(s->state, index, values, err);
	if (rc == TT_OK)
		s->ntrials++;
	return rc;
}

void tt_sampler_close(tt_sampler_inst *s)
{
	if (!s)
		return;
	if (s->ops && s->ops->free && s->state)
		s->ops->free(s->state);
	free(s->state);
	s->state = NULL;
	s->ops = NULL;
	s->ntrials = 0;
}
