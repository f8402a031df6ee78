/*
 * toy_sampler.h — a sampler that learns, for the tests only: one more
 * entry of the sampler table (engine/sampler.h), written as a new sampler
 * would be, and a recorder of every call it gets.
 *
 * Its proposal depends on everything it was told, in order: an
 * exponential moving average of the accuracies (so the order of the tells
 * matters), the best result, a checksum of every checkpoint it read
 * through the io handle, and the values of every trial created (so
 * stored parameters matter).  Its randomness is keyed by the
 * trial index and ask changes nothing (sampler.h's rule 1), so creating
 * the same trials again and re-telling the same results in the same order
 * must give the same next proposal.
 */
#ifndef TT_TOY_SAMPLER_H
#define TT_TOY_SAMPLER_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sampler.h"

/* What the toy was called with, in order, when toy_rec is set. */
typedef struct toy_call {
	char op;                  /* 'a' ask, 'c' created, 't' tell */
	int index, rung;
	int64_t id;
	double values[TT_SPACE_MAX];
	double val_acc, val_loss;
	size_t ckpt_len;          /* tell: the checkpoint read, bytes */
	long ckpt_step;           /* tell: its step, -1 when none */
	uint64_t ckpt_hash;       /* tell: a hash of its bytes */
} toy_call;

typedef struct toy_rec {
	toy_call call[512];
	int n;
} toy_rec;

static toy_rec *toy_recorder;  /* NULL: record nothing */
static volatile int *toy_stop_after_flag; /* set to 1 after toy_stop_tells tells */
static int toy_stop_tells;
/* 1: what the toy learns from a checkpoint is its bytes; 0: its length
 * and step (a blob also holds its training time, which differs between
 * two runs of the same study, though never between a tell and its
 * re-tell). */
static int toy_hash_content = 1;

typedef struct toy_state {
	const tt_study *st;
	uint64_t seed;
	int told;
	double ema, best, seen;   /* seen: a sum over the values of every trial */
	uint64_t ck;              /* checksum of the checkpoints read */
} toy_state;

static void toy_record(char op, int index, int rung, int64_t id, const double *v, int nv,
                       double acc, double loss, size_t len, long step, uint64_t hash)
{
	if (!toy_recorder || toy_recorder->n >= (int)(sizeof toy_recorder->call /
	                                              sizeof toy_recorder->call[0]))
		return;
	toy_call *c = &toy_recorder->call[toy_recorder->n++];
	memset(c, 0, sizeof *c);
	c->op = op, c->index = index, c->rung = rung, c->id = id;
	if (v)
		memcpy(c->values, v, (size_t)nv * sizeof *v);
	c->val_acc = acc, c->val_loss = loss, c->ckpt_len = len, c->ckpt_step = step;
	c->ckpt_hash = hash;
}

static void toy_saw(toy_state *t, const double *values)
{
	for (int k = 0; k < t->st->nspace; k++)
		t->seen = fmod(t->seen * 1.61803398875 + values[k] + k, 1e6);
}

static int toy_init(void *state, const tt_study *st, tt_err *err)
{
	toy_state *t = state;
	(void)err;
	t->st = st;
	t->seed = st->seed;
	t->best = -1;
	return TT_OK;
}

static int toy_ask(void *state, int index, const tt_sampler_io *io,
                   tt_sampler_proposal *out, tt_err *err)
{
	toy_state *t = state;
	tt_rng r;
	(void)io, (void)err;
	tt_rng_seed(&r, t->seed, 0x746f79ULL + (uint64_t)index);
	out->kind = TT_SAMPLER_NEW;
	for (int k = 0; k < t->st->nspace; k++) {
		double u = (double)(tt_rng_next(&r) >> 11) * (1.0 / 9007199254740992.0);
		/* what it learnt moves the point: every bit of state counts */
		double shift = t->ema * 0.37 + (t->best + 1) * 0.11 + t->seen * 1e-3 +
		               (double)(t->ck % 1000003) * 1e-6 + t->told * 0.013;
		u = fmod(u + shift, 1.0);
		if (u < 0)
			u += 1;
		out->values[k] = tt_sampler_map(&t->st->space[k], u);
	}
	toy_record('a', index, -1, -1, out->values, t->st->nspace, NAN, NAN, 0, -1, 0);
	return TT_OK;
}

static int toy_tell(void *state, const tt_sampler_result *res, const tt_sampler_io *io,
                    tt_err *err)
{
	toy_state *t = state;
	void *blob = NULL;
	size_t len = 0;
	long step = -1;
	int rc = io->checkpoint(io->ud, res->id, res->rung, &step, &blob, &len, err);
	if (rc)
		return rc;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ ((const unsigned char *)blob)[i]) * 1099511628211ULL;
	free(blob);
	t->ck = t->ck * 31 + (!blob ? 7 : toy_hash_content ? h : len * 1000 + (uint64_t)step);
	double acc = isnan(res->val_acc) ? 0 : res->val_acc;
	t->ema = 0.7 * t->ema + 0.3 * acc;
	if (acc > t->best)
		t->best = acc;
	t->told++;
	toy_record('t', res->index, res->rung, res->id, res->values, t->st->nspace,
	           res->val_acc, res->val_loss, len, step, h);
	if (toy_stop_after_flag && t->told == toy_stop_tells)
		*toy_stop_after_flag = 1;
	return TT_OK;
}

static int toy_created(void *state, int index, const double *values, tt_err *err)
{
	toy_state *t = state;
	(void)err;
	toy_saw(t, values);
	toy_record('c', index, -1, -1, values, t->st->nspace, NAN, NAN, 0, -1, 0);
	return TT_OK;
}

/* The one table line a new sampler adds (here a test's own). */
static const tt_sampler_ops toy_sampler = {
	.name = "toy", .size = sizeof(toy_state), .reads_checkpoints = 1,
	.init = toy_init, .ask = toy_ask,
	.tell = toy_tell, .created = toy_created,
};

#endif
