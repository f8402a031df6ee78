/*
 * scheduler.h — which (trial, rung) runs next: the fidelity ladder and the
 * schedulers over it (random search, successive halving, ASHA and
 * Hyperband), plus the user's manual commands.
 *
 * Pure bookkeeping: no training, no storage, no threads.  The study runner
 * asks for jobs, reports results and forwards commands; the explorer's
 * view of the ladder comes from the same rules, so tests can drive it with
 * a simulated objective.
 *
 * A rung is a fidelity level.  With fidelity `frozen` the rungs are
 * trainable depths growing by eta from min_trainable up to all stages
 * (e.g. 1, 2, 4, 8 for 8 stages at eta 2), every rung trained for the same
 * epochs; `epochs` keeps every stage trainable and grows the epochs by eta
 * up to the full count; `joint` grows both together (methods.md's
 * diagonal).  With [scheduler] kind = freeze-thaw the rungs are epochs
 * 1, 2, ..., ceil(epochs), each trained from the previous rung's
 * checkpoint (all stages trainable; min_trainable of them with
 * [fidelity] kind = frozen), and which trial moves up one epoch is the
 * sampler's decision, not a promotion rule.  A promotion takes a trial from rung r to r+1 when it is in
 * the top 1/eta of the results at r.
 */
#ifndef TT_SCHEDULER_H
#define TT_SCHEDULER_H

#include "study.h"
#include "tstate.h"   /* enum tt_trial_state and its table */

#define TT_RUNG_MAX 16

typedef struct tt_rung_def {
	int trainable;   /* stages trained */
	double epochs;   /* epochs at this rung */
} tt_rung_def;

/* The rungs of s for a model of nstages stages; returns their count. */
int tt_ladder(const tt_study *s, int nstages, tt_rung_def *out);

/* TT_JOB_ASK (freeze-thaw only): no manual command is due; the caller asks
 * the sampler which trial trains one more epoch (tt_sched_add,
 * tt_sched_continue). */
enum tt_job_kind { TT_JOB_NONE, TT_JOB_RUN, TT_JOB_WAIT, TT_JOB_DONE, TT_JOB_ASK };

typedef struct tt_job {
	int kind;        /* RUN: start trial at rung; WAIT: nothing now; DONE */
	int trial;       /* index into the scheduler's trials; new ones are
	                  * created by tt_sched_next and get the next index */
	int rung;
	int is_new;      /* the trial was created for this job */
} tt_job;


typedef struct tt_sched_trial {
	int state;               /* enum tt_trial_state */
	int bracket;             /* Hyperband bracket; its first rung */
	int done;                /* rungs finished: results for 0..done-1 */
	double score[TT_RUNG_MAX]; /* validation accuracy per finished rung */
	int promoted[TT_RUNG_MAX]; /* promoted out of rung r */
	int forced;              /* rung a manual promote asked for, or -1 */
	int paused_rung;         /* rung to resume, while paused */
} tt_sched_trial;

typedef struct tt_sched {
	int kind, eta, nrungs, max_trials;
	tt_rung_def rung[TT_RUNG_MAX];
	tt_sched_trial *t;
	int n, cap;
	int bracket;             /* Hyperband: the bracket being filled */
	int bracket_left;        /* trials still to create in it */
} tt_sched;

int tt_sched_init(tt_sched *s, const tt_study *st, int nstages, tt_err *err);
void tt_sched_free(tt_sched *s);

/* The next job.  A RUN job marks its trial running. */
tt_job tt_sched_next(tt_sched *s);
/* A job ended: with its validation accuracy (ok), diverged, or failed. */
void tt_sched_done(tt_sched *s, int trial, int rung, double val_acc);
void tt_sched_diverged(tt_sched *s, int trial);
void tt_sched_failed(tt_sched *s, int trial);
/* A running job was stopped by pause: it resumes at rung when resumed. */
void tt_sched_stopped(tt_sched *s, int trial, int rung);

/*
 * Manual commands.  Each returns NULL when applied, else the reason it
 * could not be (the trial is already dead, at the top rung, ...), so the
 * command can be marked done with that result.  A running trial that is
 * killed or paused must be stopped by the caller; the scheduler only
 * records the state.
 */
const char *tt_sched_promote(tt_sched *s, int trial);
const char *tt_sched_kill(tt_sched *s, int trial);
const char *tt_sched_pause(tt_sched *s, int trial);
const char *tt_sched_resume(tt_sched *s, int trial);

/* Freeze-thaw: a new trial at rung 0, running (its index, -1 when out of
 * memory); trial continued one rung up, running. */
int tt_sched_add(tt_sched *s);
tt_job tt_sched_continue(tt_sched *s, int trial);
/* Freeze-thaw: 1 when trial may train another epoch now (finished its
 * last one, not dead or paused, below the top rung). */
int tt_sched_can_continue(const tt_sched *s, int trial);
/* Epochs run or running, over every trial (rungs done + running jobs). */
int tt_sched_epochs_used(const tt_sched *s);

/* Register a trial restored from storage (resume after a crash). */
int tt_sched_restore(tt_sched *s, int state, int bracket, int done,
                     const double *score, const int *promoted);

#endif
