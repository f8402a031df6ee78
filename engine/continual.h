/*
 * continual.h — the parts of continual learning that are not training
 * (methods.md §5): splitting a data set into experiences by class, the
 * class-balanced latent replay buffer of the LR-k baseline, and the
 * accuracy matrix with its summaries.
 *
 * Definitions used throughout tunetop:
 *   a[i][j]      accuracy on task j after experience i (j <= i seen)
 *   ACA          the mean of the last row: accuracy averaged over every
 *                task after the last experience
 *   forgetting_j max over i < T-1 of a[i][j], minus a[T-1][j], for
 *                j < T-1 (the last task cannot be forgotten yet)
 *   forgetting   the mean of forgetting_j over j < T-1 (0 when T = 1)
 */
#ifndef TT_CONTINUAL_H
#define TT_CONTINUAL_H

#include <stdint.h>

#include "data.h"
#include "err.h"
#include "rng.h"

/*
 * A continual run (method_continual.c): T experiences of a data set's
 * classes in sequence, task ids given, trained with one strategy.
 *   naive    fine-tune everything, one head of classes/T outputs shared
 *            by every task (labels within the task)
 *   replay   LR-k: naive's shared head; after experience 1 the front
 *            (the stem and k blocks, 1 + k stages) is frozen; a
 *            class-balanced buffer of its features (replay items) adds
 *            replay_batch of them per step
 *   hn       HN-k: the same front, frozen after experience 1; the stages
 *            behind it are generated per task by a hypernetwork, held to
 *            a snapshot of itself by the look-ahead regulariser (beta,
 *            up to reg_tasks sampled earlier tasks)
 *   hn-full  every stage generated, no front
 */
enum tt_cl_strategy { TT_CL_NAIVE = 0, TT_CL_REPLAY = 1, TT_CL_HN = 2, TT_CL_HN_FULL = 3 };

typedef struct tt_cl_config {
	int tasks;          /* T experiences; 0: not a continual run */
	int strategy;       /* enum tt_cl_strategy */
	int split;          /* k: the front is the stem and k blocks */
	int replay_size;    /* items in the replay buffer */
	int replay_batch;   /* replay items added to each step */
	double beta;        /* the regulariser's weight */
	int reg_tasks;      /* earlier tasks it samples per step, at most */
	int order;          /* 0: task t holds classes t*k..t*k+k-1; else
	                     * the classes in an order shuffled with this
	                     * seed, task t the k classes at t*k.. of it */
	long total;         /* the whole sequence's steps; 0: the run's.  A
	                     * run cut short (a study's rung: experiences
	                     * 1..r) sets its steps to tt_cl_exp_end(total,
	                     * T, r - 1) and keeps this the sequence's */
} tt_cl_config;

#define TT_CL_MAX_TASKS 64

/* The stages of the front: 1 + split for replay and hn, 0 otherwise. */
int tt_cl_front(const tt_cl_config *c);
/* The step at which experience e (0-based) ends, of T over a run of
 * total steps: steps are shared equally, the remainder to the last. */
long tt_cl_exp_end(long total, int T, int e);

/*
 * Split all into T experiences of classes/T consecutive classes each
 * (task t: classes t*k .. t*k+k-1), labels renumbered 0..k-1 within the
 * task (one head per task), images and normalisation copied.  TT_EINPUT
 * when T < 1 or T does not divide the class count; TT_ERUNTIME when out of
 * memory (tasks[] then all freed).
 */
int tt_cl_split(const tt_dataset *all, int T, tt_dataset *tasks, tt_err *err);

/*
 * The class order of T experiences of classes classes (T divides it):
 * ctask[c] is class c's task and clab[c] its label in that task.  Order
 * 0: task t holds classes t*k..t*k+k-1 (k = classes/T) as labels 0..k-1;
 * else the classes shuffled with seed order, task t the k classes at
 * t*k.. of the shuffled list, labelled in that list's order.
 */
void tt_cl_order(int classes, int T, int order, int *ctask, int *clab);

/* Fill the last experience's row-derived summaries of the T x T matrix a
 * (row-major; entries above the diagonal are ignored).  forget (may be
 * NULL) gets forgetting_j for j < T-1. */
double tt_cl_aca(const double *a, int T);
double tt_cl_forgetting(const double *a, int T, double *forget);

/* The class-balanced replay buffer of front features. */
typedef struct tt_cl_replay {
	int cap, dim, classes;   /* classes: global class ids 0..classes-1 */
	int n;                   /* items held */
	float *x;                /* (cap, dim) */
	int *cls, *task, *label; /* global class, task id, label in its task */
	long *seen;              /* per class: items offered so far */
	tt_rng rng;
} tt_cl_replay;

int tt_cl_replay_init(tt_cl_replay *r, int cap, int dim, int classes, uint64_t seed,
                      tt_err *err);
void tt_cl_replay_free(tt_cl_replay *r);
/*
 * Offer one item.  Every class seen so far gets an equal share of the
 * capacity (cap / classes seen, the remainder to the lowest ids): a new
 * class takes room from classes over their share (a random item of the
 * fullest class); within its share a class keeps a uniform sample of its
 * stream (reservoir sampling).
 */
void tt_cl_replay_add(tt_cl_replay *r, const float *x, int cls, int task, int label);
/* b items drawn uniformly with replacement into x (b, dim), task, label. */
void tt_cl_replay_sample(tt_cl_replay *r, int b, float *x, int *task, int *label);

#endif
