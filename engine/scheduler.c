/*
 * scheduler.c — the ladder, the schedulers and manual commands; see
 * scheduler.h.
 *
 * Every scheduler is the same loop with different rules:
 *   random     trials start at the top rung and are never promoted
 *   asha       one bracket from rung 0; promote from r as soon as a trial
 *              is in the top 1/eta of the results at r so far
 *   sh         the same, but a rung is promoted from only once every
 *              trial that was sent to it has finished it (synchronous)
 *   hyperband  brackets starting at rungs 0, 1, ..., each a synchronous
 *              successive halving; the next bracket's trials are created
 *              once the previous bracket's are, so no worker waits
 * The first thing next() looks at is the user: a manual promotion or a
 * resumed trial runs before anything the rules would pick.
 */
#include "scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tt_ladder(const tt_study *s, int nstages, tt_rung_def *out)
{
	int z[TT_RUNG_MAX], n = 0;
	int lo = s->min_trainable < 1 ? 1 : s->min_trainable;
	if (lo > nstages)
		lo = nstages;
	if (s->fid_kind == TT_FID_EXPERIENCES) {
		/* a continual study: one rung per experience, every stage (the
		 * strategy freezes its own front); epochs: the sequence's share
		 * up to that experience's end */
		int T = s->train.continual.tasks;
		TT_ASSERT(T >= 1 && T <= TT_RUNG_MAX);
		for (int r = 0; r < T; r++)
			out[r] = (tt_rung_def){ nstages, s->epochs * (r + 1) / T };
		return T;
	}
	if (s->sched_kind == TT_SCH_FREEZE_THAW) {
		/* one rung per epoch, each from the last one's checkpoint */
		int top = (int)ceil(s->epochs);
		if (top > TT_RUNG_MAX)
			top = TT_RUNG_MAX;
		if (top < 1)
			top = 1;
		for (int r = 0; r < top; r++)
			out[r] = (tt_rung_def){ s->fid_kind == TT_FID_FROZEN ? lo : nstages,
			                        r + 1 < s->epochs ? r + 1 : s->epochs };
		return top;
	}
	for (long v = lo; v < nstages && n < TT_RUNG_MAX - 1; v *= s->eta)
		z[n++] = (int)v;
	z[n++] = nstages;
	for (int r = 0; r < n; r++) {
		double shrink = pow((double)s->eta, (double)(n - 1 - r));
		switch (s->fid_kind) {
		case TT_FID_EPOCHS:
			out[r] = (tt_rung_def){ nstages, s->epochs / shrink };
			break;
		case TT_FID_JOINT:
			out[r] = (tt_rung_def){ z[r], s->epochs / shrink };
			break;
		default:
			out[r] = (tt_rung_def){ z[r], s->epochs };
		}
	}
	return n;
}

/* Hyperband: bracket b starts at rung b with ceil(R/(R-b)) * eta^(R-1-b)
 * trials, the classic allocation that gives each bracket a similar budget. */
static int bracket_size(const tt_sched *s, int b)
{
	int R = s->nrungs;
	double n = ceil((double)R / (R - b)) * pow((double)s->eta, (double)(R - 1 - b));
	return n < 1 ? 1 : (int)n;
}

int tt_sched_init(tt_sched *s, const tt_study *st, int nstages, tt_err *err)
{
	memset(s, 0, sizeof *s);
	s->kind = st->sched_kind;
	s->eta = st->eta;
	s->max_trials = st->max_trials;
	s->nrungs = tt_ladder(st, nstages, s->rung);
	if (s->eta < 2 || s->max_trials < 1)
		return tt_err_set(err, TT_EINPUT, "scheduler: eta %d and max_trials %d; "
		                  "expected eta >= 2 and max_trials >= 1", s->eta,
		                  s->max_trials);
	if (s->kind == TT_SCH_HYPERBAND)
		s->bracket_left = bracket_size(s, 0);
	return TT_OK;
}

void tt_sched_free(tt_sched *s)
{
	free(s->t);
	s->t = NULL;
	s->n = s->cap = 0;
}

static int add_trial(tt_sched *s, int bracket)
{
	if (s->n == s->cap) {
		int cap = s->cap ? 2 * s->cap : 64;
		tt_sched_trial *t = realloc(s->t, (size_t)cap * sizeof *t);
		if (!t)
			return -1;
		s->t = t;
		s->cap = cap;
	}
	tt_sched_trial *t = &s->t[s->n];
	memset(t, 0, sizeof *t);
	t->state = TT_T_QUEUED;
	t->bracket = bracket;
	t->forced = -1;
	t->paused_rung = -1;
	return s->n++;
}

static int alive(const tt_sched_trial *t)
{
	return !tt_tstates[t->state].final;
}

/* Synchronous rules: rung r of bracket b is closed when every trial of
 * the bracket that was sent to r has finished it or died, and, for the
 * bracket's first rung, all its trials exist. */
static int rung_closed(const tt_sched *s, int b, int r)
{
	if (r == b && s->kind == TT_SCH_HYPERBAND && s->bracket == b && s->bracket_left > 0)
		return 0;
	if (r == b && s->kind == TT_SCH_SH && s->n < s->max_trials)
		return 0;
	for (int i = 0; i < s->n; i++) {
		const tt_sched_trial *t = &s->t[i];
		if (t->bracket != b || !alive(t))
			continue;
		int reached = t->done > r || (r == t->bracket) ||
		              (r > 0 && t->promoted[r - 1]);
		if (reached && t->done <= r)
			return 0; /* sent to r, not finished yet */
	}
	return 1;
}

/* The trial of bracket b to promote out of rung r, or -1. */
static int promotable(const tt_sched *s, int b, int r)
{
	int finished = 0;
	for (int i = 0; i < s->n; i++)
		if (s->t[i].bracket == b && s->t[i].done > r)
			finished++;
	int k = finished / s->eta;
	if (k < 1)
		return -1;
	if ((s->kind == TT_SCH_SH || s->kind == TT_SCH_HYPERBAND) && !rung_closed(s, b, r))
		return -1;
	/* walk the top k by score at r; ties go to the older trial */
	int best = -1;
	for (int rank = 0; rank < k; rank++) {
		int pick = -1;
		for (int i = 0; i < s->n; i++) {
			const tt_sched_trial *t = &s->t[i];
			if (t->bracket != b || t->done <= r || t->score[r] != t->score[r])
				continue;
			int taken = 0;
			/* skip the ones already ranked above */
			for (int j = 0; j < s->n; j++) {
				const tt_sched_trial *u = &s->t[j];
				if (u->bracket != b || u->done <= r || u->score[r] != u->score[r])
					continue;
				if (u->score[r] > t->score[r] || (u->score[r] == t->score[r] && j < i))
					taken++;
			}
			if (taken == rank) {
				pick = i;
				break;
			}
		}
		if (pick < 0)
			break;
		const tt_sched_trial *t = &s->t[pick];
		if (!t->promoted[r] && t->done == r + 1 && t->state == TT_T_DONE) {
			best = pick;
			break;
		}
	}
	return best;
}

static tt_job run(tt_sched *s, int i, int rung, int is_new)
{
	s->t[i].state = TT_T_RUNNING;
	s->t[i].forced = -1;
	s->t[i].paused_rung = -1;
	return (tt_job){ TT_JOB_RUN, i, rung, is_new };
}

tt_job tt_sched_next(tt_sched *s)
{
	int R = s->nrungs;
	/* the user first: manual promotions and resumed trials */
	for (int i = 0; i < s->n; i++) {
		tt_sched_trial *t = &s->t[i];
		if (t->state == TT_T_QUEUED && t->forced >= 0)
			return run(s, i, t->forced, 0);
	}
	if (s->kind == TT_SCH_FREEZE_THAW)
		return (tt_job){ TT_JOB_ASK, -1, -1, 0 };
	/* promotions, from the top down: finish good trials first */
	if (s->kind != TT_SCH_RANDOM)
		for (int r = R - 2; r >= 0; r--)
			for (int b = 0; b <= r; b++) {
				int i = promotable(s, b, r);
				if (i >= 0) {
					s->t[i].promoted[r] = 1;
					return run(s, i, r + 1, 0);
				}
			}
	/* new trials */
	if (s->n < s->max_trials) {
		int b = 0;
		if (s->kind == TT_SCH_RANDOM)
			b = R - 1;
		if (s->kind == TT_SCH_HYPERBAND) {
			while (s->bracket_left == 0 && s->bracket < R - 1) {
				s->bracket++;
				s->bracket_left = bracket_size(s, s->bracket);
			}
			if (s->bracket_left == 0) /* every bracket filled: restart */
				s->bracket = 0, s->bracket_left = bracket_size(s, 0);
			b = s->bracket;
			s->bracket_left--;
		}
		int i = add_trial(s, b);
		if (i >= 0)
			return run(s, i, b, 1);
	}
	for (int i = 0; i < s->n; i++)
		if (s->t[i].state == TT_T_RUNNING || s->t[i].state == TT_T_PAUSED ||
		    s->t[i].state == TT_T_QUEUED)
			return (tt_job){ TT_JOB_WAIT, -1, -1, 0 };
	return (tt_job){ TT_JOB_DONE, -1, -1, 0 };
}

void tt_sched_done(tt_sched *s, int trial, int rung, double val_acc)
{
	tt_sched_trial *t = &s->t[trial];
	t->score[rung] = val_acc;
	if (t->done < rung + 1)
		t->done = rung + 1;
	/* a kill or pause that arrived while it ran stays in force */
	if (t->state == TT_T_RUNNING)
		t->state = TT_T_DONE;
	if (t->state == TT_T_PAUSED)
		t->paused_rung = -1;
	if (t->forced == -2) { /* promoted while running */
		t->forced = t->done < s->nrungs ? t->done : -1;
		if (t->forced >= 0 && t->state == TT_T_DONE) {
			t->state = TT_T_QUEUED;
			t->promoted[rung] = 1;
		}
	}
}

void tt_sched_diverged(tt_sched *s, int trial) { s->t[trial].state = TT_T_DIVERGED; }
void tt_sched_failed(tt_sched *s, int trial) { s->t[trial].state = TT_T_FAILED; }

void tt_sched_stopped(tt_sched *s, int trial, int rung)
{
	tt_sched_trial *t = &s->t[trial];
	if (t->state == TT_T_PAUSED)
		t->paused_rung = rung;
	else if (t->state == TT_T_RUNNING) /* stopped without a reason: requeue */
		t->state = TT_T_QUEUED, t->forced = rung;
}

/* The trial a command names, or NULL (the command's answer is then
 * "no such trial"). */
static tt_sched_trial *lookup(tt_sched *s, int trial)
{
	return trial >= 0 && trial < s->n ? &s->t[trial] : NULL;
}

const char *tt_sched_promote(tt_sched *s, int trial)
{
	tt_sched_trial *t = lookup(s, trial);
	if (!t)
		return "no such trial";
	if (!alive(t))
		return "trial is not alive";
	if (t->state == TT_T_PAUSED)
		return "trial is paused: resume it first";
	if (t->state == TT_T_RUNNING) {
		t->forced = -2;
		return NULL;
	}
	if (t->state == TT_T_QUEUED)
		return "trial is already queued";
	if (t->done >= s->nrungs)
		return "trial already finished the top rung";
	t->promoted[t->done - 1] = 1;
	t->forced = t->done;
	t->state = TT_T_QUEUED;
	return NULL;
}

const char *tt_sched_kill(tt_sched *s, int trial)
{
	tt_sched_trial *t = lookup(s, trial);
	if (!t)
		return "no such trial";
	if (!alive(t))
		return "trial is already dead";
	if (t->state == TT_T_DONE && t->done >= s->nrungs)
		return "trial already finished the top rung";
	t->state = TT_T_KILLED;
	t->forced = -1;
	return NULL;
}

const char *tt_sched_pause(tt_sched *s, int trial)
{
	tt_sched_trial *t = lookup(s, trial);
	if (!t)
		return "no such trial";
	if (!alive(t))
		return "trial is not alive";
	if (t->state == TT_T_PAUSED)
		return "trial is already paused";
	if (t->state == TT_T_DONE && t->done >= s->nrungs)
		return "trial already finished the top rung";
	if (t->state == TT_T_QUEUED)
		t->paused_rung = t->forced, t->forced = -1;
	t->state = TT_T_PAUSED;
	return NULL;
}

const char *tt_sched_resume(tt_sched *s, int trial)
{
	tt_sched_trial *t = lookup(s, trial);
	if (!t)
		return "no such trial";
	if (t->state != TT_T_PAUSED)
		return "trial is not paused";
	if (t->paused_rung >= 0) {
		t->state = TT_T_QUEUED;
		t->forced = t->paused_rung;
		t->paused_rung = -1;
	} else {
		t->state = TT_T_DONE;
	}
	return NULL;
}

int tt_sched_add(tt_sched *s)
{
	int i = add_trial(s, 0);
	if (i >= 0)
		run(s, i, 0, 1);
	return i;
}

tt_job tt_sched_continue(tt_sched *s, int trial)
{
	tt_sched_trial *t = &s->t[trial];
	if (t->done > 0)
		t->promoted[t->done - 1] = 1;
	return run(s, trial, t->done, 0);
}

int tt_sched_can_continue(const tt_sched *s, int trial)
{
	if (trial < 0 || trial >= s->n)
		return 0;
	const tt_sched_trial *t = &s->t[trial];
	return t->state == TT_T_DONE && t->done < s->nrungs;
}

int tt_sched_epochs_used(const tt_sched *s)
{
	int n = 0;
	for (int i = 0; i < s->n; i++)
		n += s->t[i].done + (s->t[i].state == TT_T_RUNNING);
	return n;
}

int tt_sched_restore(tt_sched *s, int state, int bracket, int done,
                     const double *score, const int *promoted)
{
	int i = add_trial(s, bracket);
	if (i < 0)
		return -1;
	tt_sched_trial *t = &s->t[i];
	t->done = done;
	for (int r = 0; r < done && r < TT_RUNG_MAX; r++) {
		t->score[r] = score[r];
		t->promoted[r] = promoted[r];
	}
	t->state = state;
	if (state == TT_T_RUNNING || state == TT_T_QUEUED) {
		/* it was at work when the process died: run that rung again,
		 * from its checkpoint */
		t->state = TT_T_QUEUED;
		t->forced = done > 0 && promoted[done - 1] ? done : bracket;
		if (done > 0 && !promoted[done - 1])
			t->state = TT_T_DONE, t->forced = -1;
	}
	if (s->kind == TT_SCH_HYPERBAND && bracket >= s->bracket) {
		if (bracket > s->bracket)
			s->bracket = bracket, s->bracket_left = bracket_size(s, bracket);
		if (s->bracket_left > 0)
			s->bracket_left--;
	}
	return i;
}
