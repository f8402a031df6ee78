/*
 * tstate.h — the states of a trial: one table for the database (the
 * values of trials.state), the scheduler, the runner, `tunetop status` and
 * the explorer (its state roles and ladder letters).
 *
 * The order is the enum's, the database's contract (design.md) and the
 * order of the explorer's state roles (tui/theme.h, UI_STATE_QUEUED ..).
 */
#ifndef TT_TSTATE_H
#define TT_TSTATE_H

enum tt_trial_state { TT_T_QUEUED, TT_T_RUNNING, TT_T_PAUSED, TT_T_DONE,
                      TT_T_KILLED, TT_T_DIVERGED, TT_T_FAILED, TT_T_COUNT };

typedef struct tt_tstate {
	const char *name;   /* as stored in trials.state and shown */
	int final;          /* no rung of it runs again, whatever the
	                     * scheduler or a command says (done is not
	                     * final: a promotion runs its next rung) */
	char letter;        /* its mark in the explorer's ladder */
	const char *role;   /* its theme role (tunetop(1) THEMES) */
	const char *help;   /* what it means, one line */
} tt_tstate;

extern const tt_tstate tt_tstates[TT_T_COUNT];

/* The state named name, or -1. */
int tt_tstate_find(const char *name);
/* The name of state s; "?" out of range. */
const char *tt_tstate_name(int s);

#endif
