/*
 * test_hyper.c — learned hyperparameters from a training method to the
 * study database: a method that exists only here (registered with
 * tt_method_register, as EvoGrad will be in its own file) reports two
 * named values that change with the step; a real study run by the runner
 * must store every report as points of the hyper table at the trial's
 * rung and the reported step, about HYPER_POINTS a rung and once at the
 * end.  A write of those points that fails stops the study as any other
 * storage failure does, and the study resumed from its checkpoints ends
 * with one point per (trial, rung, step, name), none missing.
 *
 * With an argument, `test_hyper DIR` only runs the study into
 * DIR/hyper.db (and leaves it there) for tests/t_explorer.sh, which
 * drives the explorer on it.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "method.h"
#include "runner.h"
#include "test.h"

/* ---- the toy method: two values that move with the step ------------------ */

/* What it reports at step s: exact in a double, so the test compares with
 * ==. */
static double toy_decay(long s) { return 1e-4 * (double)(1 + s); }
static double toy_angle(long s) { return 0.25 * (double)s; }

typedef struct toy_state {
	tt_method_value v[2];
} toy_state;

static int toy_wants(const tt_train_config *c)
{
	(void)c;
	return 1;
}

static int toy_setup(const tt_method_run *run, void **state, tt_err *err)
{
	(void)run, (void)err;
	*state = calloc(1, sizeof(toy_state));
	return *state ? TT_OK : TT_ERUNTIME;
}

static void toy_free(void *state)
{
	free(state);
}

static int toy_report(void *state, const tt_method_run *run, int final,
                      tt_method_report *rep)
{
	toy_state *s = state;
	(void)final;
	s->v[0] = (tt_method_value){ "weight-decay", toy_decay(run->step) };
	s->v[1] = (tt_method_value){ "angle", toy_angle(run->step) };
	rep->nvalues = 2;
	rep->values = s->v;
	return 1;
}

static const tt_method method_toy = {
	.name = "toyhyper",
	.wants = toy_wants,
	.setup = toy_setup,
	.free = toy_free,
	.report = toy_report,
};

/* ---- a study ------------------------------------------------------------- */

static char dir[4096];

/* 1024 examples in batches of 32: 32 steps an epoch, 2 epochs a rung, so
 * a report every 2 steps (64 steps / 50 points, rounded up). */
static const char study_text[] =
	"[study]\nname = hyper\nseed = 7\nworkers = 1\ndb = hyper.db\n"
	"checkpoint_every = 10\n"
	"[data]\nsource = synthetic\ntrain_size = 1024\nval_size = 64\n"
	"[model]\nspec = mlp:16,16\n"
	"[space]\nlr = log-float 0.01 0.3\nmomentum = float 0.5 0.9\n"
	"[fidelity]\nkind = frozen\neta = 2\nepochs = 2\n"
	"[scheduler]\nkind = asha\nmax_trials = 4\n"
	"[train]\nbatch = 32\nthreads = 1\n";

static int load(tt_study *st)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/hyper.ini", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(study_text, f);
	fclose(f);
	tt_err e = {0};
	int rc = tt_study_load(path, st, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	return rc;
}

/* Run the study (resuming what its database holds); the log into *log
 * (malloc'd) when log is not NULL. */
static int run(tt_err *e, char **log)
{
	tt_study st;
	if (load(&st))
		return -1;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = log ? open_memstream(&buf, &len) : NULL;
	tt_runner_opts o = { .log = f };
	int rc = tt_runner_run(&st, &o, e);
	if (f) {
		fclose(f);
		*log = buf;
	}
	tt_study_free(&st);
	return rc;
}

static sqlite3 *db_raw(void)
{
	char path[4200];
	sqlite3 *h = NULL;
	snprintf(path, sizeof path, "%s/hyper.db", dir);
	if (sqlite3_open(path, &h) != SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 5000);
	return h;
}

static long long q_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Every (trial, rung) with a result has the points it should: both names
 * at every multiple of the rung's report cadence below its last step and
 * at its last step (the final report), each value what the method
 * reported there, and nothing else.  Returns the (trial, rung)s checked.
 */
static int check_points(const char *when)
{
	sqlite3 *h = db_raw();
	CHECK(h != NULL, "%s: no database", when);
	if (!h)
		return 0;
	sqlite3_stmt *st;
	int checked = 0;
	/* the rung's last step: its last metric point, the end of training */
	sqlite3_prepare_v2(h, "SELECT r.trial_id, r.rung, (SELECT max(step) FROM metrics m"
	                   " WHERE m.trial_id = r.trial_id AND m.rung = r.rung)"
	                   " FROM rungs r ORDER BY 1, 2", -1, &st, NULL);
	while (sqlite3_step(st) == SQLITE_ROW) {
		long long trial = sqlite3_column_int64(st, 0);
		int rung = sqlite3_column_int(st, 1);
		long total = (long)sqlite3_column_int64(st, 2);
		long every = (total + 49) / 50;
		long want = (total - 1) / every + 1; /* k * every < total, and total */
		char q[512];
		snprintf(q, sizeof q, "SELECT count(*) FROM hyper WHERE trial_id = %lld AND"
		         " rung = %d", trial, rung);
		long long n = q_int(h, q);
		CHECK(n == 2 * want, "%s: trial %lld rung %d (%ld steps): %lld points, "
		      "expected %ld", when, trial, rung, total, n, 2 * want);
		sqlite3_stmt *p;
		snprintf(q, sizeof q, "SELECT step, name, value FROM hyper WHERE trial_id = %lld"
		         " AND rung = %d ORDER BY step, name", trial, rung);
		sqlite3_prepare_v2(h, q, -1, &p, NULL);
		int bad = 0;
		while (sqlite3_step(p) == SQLITE_ROW && !bad) {
			long s = (long)sqlite3_column_int64(p, 0);
			const char *name = (const char *)sqlite3_column_text(p, 1);
			double v = sqlite3_column_double(p, 2);
			double w = strcmp(name, "angle") == 0 ? toy_angle(s) :
			           strcmp(name, "weight-decay") == 0 ? toy_decay(s) : NAN;
			if (v != w || (s % every && s != total) || s > total) {
				CHECK(0, "%s: trial %lld rung %d: %s = %g at step %ld (expected "
				      "%g, a report every %ld steps to %ld)", when, trial, rung,
				      name, v, s, w, every, total);
				bad = 1;
			}
		}
		sqlite3_finalize(p);
		checked++;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return checked;
}

/* A whole study: every report of every rung lands in hyper. */
static void study_points(void)
{
	tt_err e = {0};
	int rc = run(&e, NULL);
	CHECK(rc == TT_OK, "study: %s", e.msg);
	int n = check_points("whole study");
	CHECK(n >= 4, "only %d (trial, rung) results", n);
	sqlite3 *h = db_raw();
	if (h) {
		CHECK(q_int(h, "SELECT count(DISTINCT trial_id) FROM hyper") == 4,
		      "trials with points: %lld", q_int(h, "SELECT count(DISTINCT trial_id)"
		                                      " FROM hyper"));
		CHECK(q_int(h, "SELECT count(*) FROM hyper WHERE rung > 0") > 0,
		      "no points above rung 0");
		sqlite3_close(h);
	}
}

/*
 * A write of points that fails (a trigger refuses trial 2's points from
 * step 20 on, as a full disk would) stops the study with that error and
 * says which table in the log; the trial stays resumable.  Without the
 * trigger the same study resumes from its checkpoints, reports the steps
 * after them again, and ends with exactly the points of an uninterrupted
 * run.
 */
static void failure_then_resume(void)
{
	static const char *const files[] = {"hyper.db", "hyper.db-wal", "hyper.db-shm"};
	for (int i = 0; i < 3; i++) {
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	tt_study st;
	tt_err e = {0};
	if (load(&st))
		return;
	CHECK(tt_runner_prepare(&st, &e) == TT_OK, "prepare: %s", e.msg);
	tt_study_free(&st);
	sqlite3 *h = db_raw();
	CHECK(h && sqlite3_exec(h, "CREATE TRIGGER full BEFORE INSERT ON hyper"
	                        " WHEN NEW.trial_id = 2 AND NEW.step >= 20"
	                        " BEGIN SELECT RAISE(ABORT, 'no room for hyper'); END",
	                        NULL, NULL, NULL) == SQLITE_OK, "trigger");
	sqlite3_close(h);

	char *log = NULL;
	int rc = run(&e, &log);
	CHECK(rc != TT_OK && strstr(e.msg, "storing learned hyperparameters") &&
	      strstr(e.msg, "no room for hyper"), "rc %d: %s", rc, e.msg);
	CHECK(log && strstr(log, "trial 2: learned hyperparameters not stored"),
	      "log: %s", log ? log : "(none)");
	free(log);
	h = db_raw();
	if (h) {
		CHECK(q_int(h, "SELECT count(*) FROM trials WHERE id = 2 AND state = 'running'")
		      == 1, "trial 2 not left resumable");
		CHECK(q_int(h, "SELECT max(step) FROM hyper WHERE trial_id = 2") < 20,
		      "points past the refused one");
		CHECK(q_int(h, "SELECT count(*) FROM rungs WHERE trial_id = 2") == 0,
		      "a result for the stopped trial");
		CHECK(sqlite3_exec(h, "DROP TRIGGER full", NULL, NULL, NULL) == SQLITE_OK,
		      "drop trigger");
		sqlite3_close(h);
	}
	rc = run(&e, NULL);
	CHECK(rc == TT_OK, "resumed: %s", e.msg);
	int n = check_points("resumed study");
	CHECK(n >= 4, "only %d (trial, rung) results after the resume", n);
}

static int write_only(const char *out)
{
	snprintf(dir, sizeof dir, "%s", out);
	tt_err e = {0};
	int rc = run(&e, NULL);
	if (rc != TT_OK)
		fprintf(stderr, "test_hyper: %s\n", e.msg);
	return rc == TT_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	tt_err err = {0};
	if (tt_method_register(&method_toy, &err)) {
		fprintf(stderr, "register: %s\n", err.msg);
		return 1;
	}
	if (argc > 1)
		return write_only(argv[1]);
	snprintf(dir, sizeof dir, "/tmp/tt_hyper_XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	TT_RUN(study_points);
	TT_RUN(failure_then_resume);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", dir);
	TT_EXIT();
}
