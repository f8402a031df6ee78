/*
 * runner.h — run a study: workers train (trial, rung) jobs that the
 * scheduler picks, every result goes to the study database, and the
 * user's commands (promote, kill, pause, resume) are applied between
 * training steps.
 *
 * The database is the one source of truth.  Running the same study again
 * resumes it: finished rung results stay, trials that were running go
 * back to the queue and continue from their last checkpoint.
 */
#ifndef TT_RUNNER_H
#define TT_RUNNER_H

#include <stdio.h>

#include "err.h"
#include "study.h"

typedef struct tt_runner_opts {
	FILE *log;                /* one progress line per event; NULL: quiet */
	volatile int *stop;       /* set non-zero (e.g. from SIGINT) to stop at
	                           * the next step; trials stay resumable */
	long metric_every;        /* steps between metric rows (default 20) */
	long checkpoint_every;    /* steps between checkpoints (0: the study's
	                           * checkpoint_every) */
	double poll_s;            /* command polling interval (default 0.2) */
} tt_runner_opts;

/* TT_OK when the study finished (or was stopped by *stop), with the
 * summary printed to o->log; otherwise the status and err. */
int tt_runner_run(const tt_study *st, const tt_runner_opts *o, tt_err *err);

#endif
