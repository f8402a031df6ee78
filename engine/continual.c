/*
 * continual.c — experiences, replay and continual metrics; see
 * continual.h.
 */
#include "continual.h"

#include <stdlib.h>
#include <string.h>

int tt_cl_split(const tt_dataset *all, int T, tt_dataset *tasks, tt_err *err)
{
	if (T < 1 || all->classes % T)
		return tt_err_set(err, TT_EINPUT, "%d experiences: expected a divisor of the "
		                  "%d classes", T, all->classes);
	int k = all->classes / T;
	size_t img = (size_t)all->h * all->w * all->c;
	memset(tasks, 0, (size_t)T * sizeof *tasks);
	for (int t = 0; t < T; t++) {
		int n = 0;
		for (int i = 0; i < all->n; i++)
			n += all->label[i] / k == t;
		tt_dataset *d = &tasks[t];
		*d = (tt_dataset){ .n = n, .h = all->h, .w = all->w, .c = all->c, .classes = k,
		                   .mean = all->mean, .std = all->std };
		d->pix = malloc(img * (size_t)(n ? n : 1));
		d->label = malloc((size_t)(n ? n : 1));
		if (!d->pix || !d->label) {
			for (int q = 0; q <= t; q++)
				tt_data_free(&tasks[q]);
			return tt_err_set(err, TT_ERUNTIME, "out of memory splitting %d examples",
			                  all->n);
		}
		int j = 0;
		for (int i = 0; i < all->n; i++)
			if (all->label[i] / k == t) {
				memcpy(d->pix + img * j, all->pix + img * i, img);
				d->label[j++] = (uint8_t)(all->label[i] % k);
			}
	}
	return TT_OK;
}

void tt_cl_order(int classes, int T, int order, int *ctask, int *clab)
{
	int k = classes / T;
	int *perm = malloc((size_t)classes * sizeof *perm);
	TT_ASSERT(perm != NULL && k >= 1);
	for (int c = 0; c < classes; c++)
		perm[c] = c;
	if (order) {
		tt_rng r;
		tt_rng_seed(&r, (uint64_t)order, TT_STREAM_CL_ORDER);
		tt_rng_shuffle(&r, perm, classes);
	}
	for (int i = 0; i < classes; i++) {
		ctask[perm[i]] = i / k;
		clab[perm[i]] = i % k;
	}
	free(perm);
}

double tt_cl_aca(const double *a, int T)
{
	double s = 0;
	for (int j = 0; j < T; j++)
		s += a[(size_t)(T - 1) * T + j];
	return s / T;
}

double tt_cl_forgetting(const double *a, int T, double *forget)
{
	double s = 0;
	for (int j = 0; j < T - 1; j++) {
		double best = a[(size_t)j * T + j];
		for (int i = j + 1; i < T - 1; i++)
			if (a[(size_t)i * T + j] > best)
				best = a[(size_t)i * T + j];
		double f = best - a[(size_t)(T - 1) * T + j];
		if (forget)
			forget[j] = f;
		s += f;
	}
	return T > 1 ? s / (T - 1) : 0;
}

int tt_cl_replay_init(tt_cl_replay *r, int cap, int dim, int classes, uint64_t seed,
                      tt_err *err)
{
	memset(r, 0, sizeof *r);
	if (cap < 1 || dim < 1 || classes < 1)
		return tt_err_set(err, TT_EINPUT, "replay buffer of %d items of %d floats over %d "
		                  "classes", cap, dim, classes);
	r->cap = cap;
	r->dim = dim;
	r->classes = classes;
	r->x = malloc((size_t)cap * dim * sizeof *r->x);
	r->cls = malloc((size_t)cap * sizeof *r->cls);
	r->task = malloc((size_t)cap * sizeof *r->task);
	r->label = malloc((size_t)cap * sizeof *r->label);
	r->seen = calloc((size_t)classes, sizeof *r->seen);
	if (!r->x || !r->cls || !r->task || !r->label || !r->seen) {
		tt_cl_replay_free(r);
		return tt_err_set(err, TT_ERUNTIME, "out of memory for a replay buffer of %d items",
		                  cap);
	}
	tt_rng_seed(&r->rng, seed, TT_STREAM_REPLAY);
	return TT_OK;
}

void tt_cl_replay_free(tt_cl_replay *r)
{
	free(r->x);
	free(r->cls);
	free(r->task);
	free(r->label);
	free(r->seen);
	memset(r, 0, sizeof *r);
}

static void put(tt_cl_replay *r, int at, const float *x, int cls, int task, int label)
{
	memcpy(r->x + (size_t)at * r->dim, x, (size_t)r->dim * sizeof *x);
	r->cls[at] = cls;
	r->task[at] = task;
	r->label[at] = label;
}

/* The slot of a uniformly chosen item of class c among the held ones. */
static int pick_of_class(tt_cl_replay *r, int c, int count)
{
	int k = (int)tt_rng_below(&r->rng, (uint32_t)count);
	for (int i = 0; i < r->n; i++)
		if (r->cls[i] == c && k-- == 0)
			return i;
	return -1;
}

void tt_cl_replay_add(tt_cl_replay *r, const float *x, int cls, int task, int label)
{
	if (cls < 0 || cls >= r->classes)
		return;
	r->seen[cls]++;
	int nseen = 0, held[256] = {0}, *h = held;
	int *heap = NULL;
	if (r->classes > 256) {
		heap = calloc((size_t)r->classes, sizeof *heap);
		if (!heap)
			return;
		h = heap;
	}
	for (int c = 0; c < r->classes; c++)
		nseen += r->seen[c] > 0;
	for (int i = 0; i < r->n; i++)
		h[r->cls[i]]++;
	int share = r->cap / nseen, extra = r->cap % nseen, rank = 0;
	for (int c = 0; c < cls; c++)
		rank += r->seen[c] > 0;
	int mine = share + (rank < extra);
	if (r->n < r->cap) {
		put(r, r->n++, x, cls, task, label);
	} else if (h[cls] < mine) {
		/* room from the fullest class */
		int big = 0;
		for (int c = 1; c < r->classes; c++)
			if (h[c] > h[big])
				big = c;
		int at = pick_of_class(r, big, h[big]);
		if (at >= 0)
			put(r, at, x, cls, task, label);
	} else {
		/* reservoir within the class's share */
		long j = (long)(tt_rng_next(&r->rng) % (uint64_t)r->seen[cls]);
		if (j < h[cls]) {
			int at = pick_of_class(r, cls, h[cls]);
			if (at >= 0)
				put(r, at, x, cls, task, label);
		}
	}
	free(heap);
}

void tt_cl_replay_sample(tt_cl_replay *r, int b, float *x, int *task, int *label)
{
	for (int q = 0; q < b && r->n; q++) {
		int i = (int)tt_rng_below(&r->rng, (uint32_t)r->n);
		memcpy(x + (size_t)q * r->dim, r->x + (size_t)i * r->dim,
		       (size_t)r->dim * sizeof *x);
		task[q] = r->task[i];
		label[q] = r->label[i];
	}
}

int tt_cl_front(const tt_cl_config *c)
{
	return c->strategy == TT_CL_REPLAY || c->strategy == TT_CL_HN ? 1 + c->split : 0;
}

long tt_cl_exp_end(long total, int T, int e)
{
	if (e >= T - 1)
		return total;
	return total / T * (e + 1);
}
