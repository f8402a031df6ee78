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
#include "sampler.h"
#include "study.h"

typedef struct tt_runner_opts {
	FILE *log;                /* one progress line per event; NULL: quiet */
	volatile int *stop;       /* set non-zero (e.g. from SIGINT) to stop at
	                           * the next step; trials stay resumable */
	long metric_every;        /* steps between metric rows (default 20) */
	long checkpoint_every;    /* steps between checkpoints (0: the study's
	                           * checkpoint_every) */
	double poll_s;            /* command polling interval (default 0.2) */
	const tt_sampler_ops *sampler; /* NULL: the study's [scheduler]
	                           * sampler; a test plugs its own in here */
} tt_runner_opts;

/* TT_OK when the study finished (or was stopped by *stop), with the
 * summary printed to o->log; otherwise the status and err.  Starts with
 * tt_runner_prepare. */
int tt_runner_run(const tt_study *st, const tt_runner_opts *o, tt_err *err);

/*
 * Check the study file against its database, then create the database and
 * the study row when missing.  A database made from a study file whose
 * results-affecting settings (tt_study_fingerprint: [space], [model],
 * [data], [train], [fidelity], seed, scheduler kind, mode and sampler)
 * have changed since is refused with TT_EINPUT naming each change, and is
 * left byte for byte as it was: the check reads it read-only, before any
 * migration or write.  A database made before fingerprints were stored is
 * checked against the fingerprint of the study text it stored (when that
 * still parses) and then given the fingerprint.
 */
int tt_runner_prepare(const tt_study *st, tt_err *err);

#endif
