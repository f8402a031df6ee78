/*
 * db.h — the study database: schema, migrations, typed reads and writes.
 *
 * One SQLite file per study, in WAL mode with a busy timeout, is the one
 * source of truth: the engine writes rows, the explorer and scripts read
 * them and write commands.  Each thread opens its own db_conn.  The tables
 * and columns of design.md are a contract; this module may add beside
 * them, never rename.  The schema version lives in PRAGMA user_version and
 * opening a file migrates it forward; a file from a newer tunetop, or one
 * that is not a tunetop database, is refused with a clear message.
 *
 * Every function returns TT_OK or a status with the message in err; no
 * function exits.  A failed write rolls back its transaction, so what was
 * stored before stays intact.
 *
 * Conventions kept by every function below:
 *
 *   - A db_conn belongs to one thread.  Open one per thread (engine worker,
 *     explorer, command line); never share one, not even under a lock of
 *     your own: it holds a transaction depth and cached statements.
 *   - Times are unix seconds as REAL (sub-second resolution).
 *   - NaN cannot be stored by SQLite: a NaN loss, accuracy or correlation
 *     is stored as NULL and read back as NaN.
 *   - Arrays returned through `**out` are one malloc'd block each (strings
 *     they point to included): free(*out) releases everything.  With no
 *     rows, *n is 0 and *out may be NULL.
 *   - Status codes: TT_EINPUT for bad arguments (an unknown state or verb,
 *     a trial that does not exist, a constraint the row breaks), for files
 *     that are not ours, too new, damaged (a missing table, corruption) or
 *     not a regular file, and for writes on a read-only connection, file
 *     or directory; TT_ERUNTIME for every other SQLite failure (disk full,
 *     I/O error, a lock held too long, ...).  Messages name the file, the
 *     operation and SQLite's reason.
 *   - SQLITE_BUSY does not reach callers in normal use: every connection
 *     waits up to DB_BUSY_TIMEOUT_MS for a lock, then retries a bounded
 *     number of times, and writers take the write lock up front (BEGIN
 *     IMMEDIATE).  Readers never block the writer (WAL).
 */
#ifndef TT_DB_H
#define TT_DB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Schema versions: 1 = the tables of design.md, 2 = rungs.train_macs and
 * the per-trial metrics polling index, 3 = rungs.macs_kept and params_kept
 * and the trials-by-updated_at index, 4 = studies.fingerprint, 5 = the hyper
 * table (learned hyperparameters), 6 = the forecasts table (freeze-thaw
 * decisions), 7 = the task_acc table (continual accuracy matrices).
 * db.c keeps the migration steps. */
#define DB_SCHEMA_VERSION 7

/* PRAGMA application_id of every tunetop study database: "tTop". */
#define DB_APPLICATION_ID 0x74546F70

/* How long one SQLite call waits for a lock before SQLITE_BUSY. */
#define DB_BUSY_TIMEOUT_MS 5000

typedef struct db_conn db_conn;

enum db_open_flags {
	DB_CREATE = 1,    /* create the file and the schema when missing */
	DB_READONLY = 2,  /* open read-only (attach --readonly, status, export) */
	DB_AS_IS = 4,     /* with DB_READONLY: take an older schema as it is,
	                   * unmigrated, to read what its study was made with
	                   * (db_study_get, db_study_fingerprint) before
	                   * deciding to write; other reads may fail on it.
	                   * An empty file opens too, as one that holds no
	                   * study.  Creates no -wal or -shm file either: with
	                   * none there, the file is opened immutable */
};

/*
 * Open the study database at path.  Without DB_CREATE a missing file is
 * TT_EINPUT "PATH: no such study database"; with it, a missing or empty
 * file becomes a new database at DB_SCHEMA_VERSION.  An older schema is
 * migrated forward in one transaction (a read-only open refuses it: open
 * it read-write once); a newer one, a file that is not SQLite and an SQLite
 * file of another application are TT_EINPUT and left untouched.
 */
int db_open(const char *path, int flags, db_conn **out, tt_err *err);
/*
 * Waiting out a long outside lock (another process holding a write
 * transaction).  By default a write that cannot take the write lock within
 * the busy timeout fails with "database is locked".  After this call, a
 * write that fails so when it starts its transaction (where nothing of
 * c's is held, so waiting is safe) calls wait(ud, path, waited_s) and
 * tries again while wait returns 0; wait sleeps and reports as it likes
 * (waited_s: seconds since the first failed try) and returns non-zero to
 * give up, when the write fails as before.  busy_ms > 0 replaces the
 * connection's busy timeout (DB_BUSY_TIMEOUT_MS), the wait of one try.
 */
typedef int (*db_lock_wait_fn)(void *ud, const char *path, double waited_s);
void db_set_lock_wait(db_conn *c, int busy_ms, db_lock_wait_fn wait, void *ud);
/* Close c (NULL is fine); an open transaction is rolled back. */
void db_close(db_conn *c);
const char *db_path(const db_conn *c);

/*
 * Transactions: writes between begin and commit land together or not at
 * all.  begin is IMMEDIATE, so a writer never deadlocks on upgrade.
 *
 * Every write function below is its own transaction when called alone and
 * joins the caller's when called between db_begin and db_commit.  Pairs
 * nest (a depth counter): only the outermost commit commits.  When any
 * write inside fails, the whole transaction is rolled back at once; until
 * the outermost db_commit or db_rollback, further writes on c fail, and
 * that db_commit returns the original error (nothing of the transaction
 * is stored).  db_rollback undoes everything since the outermost
 * db_begin; with no transaction open it does nothing.
 */
int db_begin(db_conn *c, tt_err *err);
int db_commit(db_conn *c, tt_err *err);
void db_rollback(db_conn *c);

/*
 * Fault injection for tests: the nth SQLite call from now (1-based) on
 * any connection fails with code (SQLITE_FULL, SQLITE_IOERR, ...); 0
 * turns it off.  "SQLite calls" are every sqlite3_prepare, sqlite3_step
 * and sqlite3_exec that db.c makes, all of which go through one wrapper;
 * an injected failure happens instead of the call (nothing is executed),
 * fires once, and reads "... (injected fault)" in the message.  An
 * injected SQLITE_BUSY is retried like a real one.
 */
void db_fault_inject(int nth, int code);
/* How many SQLite calls db.c has made so far (all connections): the
 * difference around a sequence bounds the n worth injecting at. */
long db_fault_calls(void);

/* ---- studies ----------------------------------------------------------- */

enum db_study_state { DB_STUDY_RUNNING, DB_STUDY_DONE };

/* The study row of this database, created from (name, config, seed) when
 * missing; *id receives its id.  A database holds one study: when one
 * exists it is returned as it is. */
int db_study_ensure(db_conn *c, const char *name, const char *config,
                    uint64_t seed, int64_t *id, tt_err *err);
/* state: "running" or "done". */
int db_study_set_state(db_conn *c, int64_t study, const char *state, tt_err *err);

typedef struct db_study {
	int64_t id;
	char name[128];
	char *config;       /* the study file's text, malloc'd: free it */
	uint64_t seed;
	double created_at;
	char state[16];
} db_study;

/* The study of this database; TT_EINPUT when it holds none yet. */
int db_study_get(db_conn *c, db_study *out, tt_err *err);

/*
 * The study's fingerprint (engine/study.h: canonical text of what its
 * results mean), stored when the study was made: *fp malloc'd (free it),
 * or NULL when none is stored (a database of schema 3 or older, opened
 * DB_AS_IS or migrated since).  TT_EINPUT when the database holds no
 * study.
 */
int db_study_fingerprint(db_conn *c, char **fp, tt_err *err);
/* Store it (replacing any). */
int db_study_set_fingerprint(db_conn *c, int64_t study, const char *fp,
                             tt_err *err);

/* ---- trials ------------------------------------------------------------ */

/* Trial states as stored (text): queued, running, paused, done, killed,
 * diverged, failed: the names of base/tstate.h's table. */
typedef struct db_trial {
	int64_t id;
	char params[1024];  /* JSON object; "" when params_len >= sizeof params */
	size_t params_len;  /* the stored params' length in bytes: a longer row
	                     * than params holds (not one db_trial_add wrote) is
	                     * read whole with db_trial_params */
	char state[16];
	int rung;           /* highest rung reached or running */
	double created_at, updated_at;
} db_trial;

/* A new trial, state queued, rung 0.  params_json is stored as given; it
 * must fit db_trial.params (at most 1023 bytes), else TT_EINPUT. */
int db_trial_add(db_conn *c, int64_t study, const char *params_json,
                 int64_t *id, tt_err *err);
/* Set state and rung, stamp updated_at; TT_EINPUT for an unknown state or
 * trial (then nothing is written and an outer transaction goes on). */
int db_trial_set(db_conn *c, int64_t trial, const char *state, int rung,
                 tt_err *err);
int db_trial_get(db_conn *c, int64_t trial, db_trial *out, tt_err *err);
/* A trial's params text whole, however long, into *out (malloc'd: free
 * it); TT_EINPUT when there is no such trial. */
int db_trial_params(db_conn *c, int64_t trial, char **out, tt_err *err);
/* All trials of the study in id order; *out is malloc'd. */
int db_trials(db_conn *c, int64_t study, db_trial **out, int *n, tt_err *err);
/* After a crash: every running trial of the study goes back to queued;
 * *n (may be NULL) receives how many. */
int db_trials_requeue(db_conn *c, int64_t study, int *n, tt_err *err);

/* ---- rung results, metrics, memory ------------------------------------- */

typedef struct db_rung {
	int64_t trial;
	int rung, trainable;
	double epochs, val_loss, val_acc, seconds;
	int promoted;
	double train_macs;  /* compute spent, multiply-accumulates */
	/* A gated trial's network at the rung's end, as fractions of the
	 * ungated one; 0 (written) or NaN (read): ungated, stored NULL. */
	double macs_kept, params_kept;
} db_rung;

/* Store the result of (r->trial, r->rung), replacing an earlier one. */
int db_rung_put(db_conn *c, const db_rung *r, tt_err *err);
/* Mark (trial, rung) promoted; TT_EINPUT when there is no such result. */
int db_rung_promoted(db_conn *c, int64_t trial, int rung, tt_err *err);
/* All rung results of the study by (trial, rung); *out is malloc'd. */
int db_rungs(db_conn *c, int64_t study, db_rung **out, int *n, tt_err *err);

typedef struct db_metric {
	int64_t trial;
	int rung;
	long step;
	double epoch;
	const char *split;  /* "train" or "val" (reads: a static string) */
	double loss, acc, wall_s;
	int64_t rowid;      /* set by reads; ignored by writes */
} db_metric;

/* A point whose (trial, rung, step, split) is already stored is skipped,
 * not written twice: a run resumed from a checkpoint trains the steps
 * after it again. */
int db_metric_put(db_conn *c, const db_metric *m, tt_err *err);
/* n points in one transaction (or in the caller's); same rule. */
int db_metrics_put(db_conn *c, const db_metric *m, int n, tt_err *err);
/* Polling for new rows: the metrics with rowid > after, in rowid (that
 * is, insertion) order, of one trial, or of every trial when trial <= 0;
 * at most max rows when max > 0.  Pass the last rowid seen as after on the
 * next call.  *out is malloc'd. */
int db_metrics_since(db_conn *c, int64_t trial, int64_t after, int max,
                     db_metric **out, int *n, tt_err *err);

typedef struct db_layer_mem {
	int stage;          /* TT_MEM_MODEL (-1): the model as a whole */
	const char *name;
	const char *kind;   /* params, grads, optim, activations, workspace:
	                     * base/memkind.h's names; the runner stores the
	                     * per-stage kinds per stage and the workspace as
	                     * one row of stage -1, name "model" */
	size_t bytes;
	int frozen;
} db_layer_mem;

/* One row per (trial, rung, stage, kind); a row put again replaces it. */
int db_layer_memory_put(db_conn *c, int64_t trial, int rung,
                        const db_layer_mem *rows, int n, tt_err *err);
/* The rows of (trial, rung) by stage, in the order they were put; *out is
 * malloc'd together with the name and kind strings. */
int db_layer_memory(db_conn *c, int64_t trial, int rung, db_layer_mem **out,
                    int *n, tt_err *err);

/* ---- pruning masks ----------------------------------------------------- */

typedef struct db_mask {
	int stage, unit;    /* unit -1: the stage's layer gate */
	double prob;        /* gate probability */
	int on;             /* final 0/1 */
} db_mask;

/* One row per (trial, stage, unit); a row put again replaces it. */
int db_masks_put(db_conn *c, int64_t trial, const db_mask *rows, int n,
                 tt_err *err);
/* The trial's gates by (stage, unit); *out is malloc'd. */
int db_masks(db_conn *c, int64_t trial, db_mask **out, int *n, tt_err *err);

/* ---- continual accuracy matrices ------------------------------------------ */

/* a[experience][task] of a continual trial (engine/continual.h). */
typedef struct db_task_acc {
	int64_t trial;
	int experience, task;         /* 0-based; task <= experience */
	double acc;                   /* NaN is stored as NULL */
} db_task_acc;

/* n entries in one transaction (or in the caller's); an entry already
 * stored (a resumed trial) is replaced.  An unknown trial is TT_EINPUT
 * (foreign key). */
int db_task_acc_put(db_conn *c, const db_task_acc *a, int n, tt_err *err);
/* A trial's entries, by experience then task.  *out is malloc'd (NULL
 * with *n = 0 when there are none). */
int db_task_acc_get(db_conn *c, int64_t trial, db_task_acc **out, int *n, tt_err *err);

/* ---- learned hyperparameters -------------------------------------------- */

/* Room for a name in db_hyper, its NUL included. */
#define DB_HYPER_NAME_MAX 48

/* A point on the path of a hyperparameter that a method learns inside a
 * trial (EvoGrad: "weight-decay", "angle", ...). */
typedef struct db_hyper {
	int64_t trial;
	int rung;
	long step;
	char name[DB_HYPER_NAME_MAX]; /* reads: cut to fit (a name db_hyper_put
	                               * did not write may be longer) */
	double value;                 /* NaN is stored as NULL */
	int64_t rowid;                /* set by reads; ignored by writes */
} db_hyper;

/*
 * n points in one transaction (or in the caller's).  A point whose
 * (trial, rung, step, name) is already stored replaces it: a trial resumed
 * from a checkpoint reports the steps after it again.  The replacing row
 * gets a new rowid, so a poll by rowid sees it.  A name that is empty or
 * does not fit db_hyper.name is TT_EINPUT before anything is written; an
 * unknown trial is TT_EINPUT (foreign key).
 */
int db_hyper_put(db_conn *c, const db_hyper *h, int n, tt_err *err);
/* Polling for a path: the points with rowid > after, in rowid order, of
 * one trial, or of every trial when trial <= 0; at most max rows when
 * max > 0.  *out is malloc'd. */
int db_hyper_since(db_conn *c, int64_t trial, int64_t after, int max,
                   db_hyper **out, int *n, tt_err *err);
/*
 * Polling for current values: among the points with rowid > after, the
 * latest (highest rung, then step) of each (trial, name), in no set order;
 * *last receives the largest rowid read (after when none), to pass as
 * after next time.  A later poll may bring an older point of a (trial,
 * name) (a re-reported step): compare (rung, step) before taking it.
 */
int db_hyper_latest(db_conn *c, int64_t after, int64_t *last, db_hyper **out,
                    int *n, tt_err *err);

/* ---- forecasts ------------------------------------------------------------ */

/*
 * One line of a freeze-thaw decision (FMS, DyHPO): a candidate trial, the
 * budget (epochs) it would reach, the surrogate's posterior mean and sd
 * there, its expected improvement, whether the decision chose it, and at,
 * the decision's number (0, 1, ... in the study; every row of one
 * decision shares it).  final_mu and final_sd forecast the trial's value
 * at the top budget.  NaN is stored as NULL (a decision of the random
 * initial design has no forecast).
 */
typedef struct db_forecast {
	int64_t trial;
	int budget;
	double mu, sd, ei;
	int chosen;
	int64_t at;               /* reads; db_forecasts_put numbers the rows */
	double final_mu, final_sd;
	double created_at;        /* reads: unix time */
	int64_t rowid;            /* reads */
} db_forecast;

/* One decision's n rows in one transaction, numbered at = one more than
 * the largest stored (0 for the first), which *at receives. */
int db_forecasts_put(db_conn *c, const db_forecast *rows, int n, int64_t *at,
                     tt_err *err);
/* Polling: rows with rowid > after in rowid order, of one trial (trial
 * > 0) or all; at most max when max > 0.  *out is malloc'd. */
int db_forecasts_since(db_conn *c, int64_t trial, int64_t after, int max,
                       db_forecast **out, int *n, tt_err *err);

/* ---- rank correlation -------------------------------------------------- */

/* One row per (study, rung_a, rung_b); put again replaces it. */
int db_rank_corr_put(db_conn *c, int64_t study, int rung_a, int rung_b, int n,
                     double spearman, double kendall, tt_err *err);

typedef struct db_rank_corr {
	int rung_a, rung_b, n;
	double spearman, kendall;  /* NaN when undefined */
} db_rank_corr;

/* The study's correlations by (rung_a, rung_b); *out is malloc'd. */
int db_rank_corr_list(db_conn *c, int64_t study, db_rank_corr **out, int *n,
                      tt_err *err);

/* ---- commands ---------------------------------------------------------- */

typedef struct db_command {
	int64_t id, trial;
	char verb[16];      /* promote, kill, pause, resume */
	double issued_at, done_at; /* done_at 0 while pending */
	char result[256];
} db_command;

/* verb: promote, kill, pause or resume, else TT_EINPUT; an unknown trial
 * is TT_EINPUT too (foreign key). */
int db_command_add(db_conn *c, int64_t trial, const char *verb, int64_t *id,
                   tt_err *err);
/* Pending commands (done_at NULL) with id > after, oldest first. */
int db_commands_pending(db_conn *c, int64_t after, db_command **out, int *n,
                        tt_err *err);
/* Mark the command done with result (NULL: none; cut to 255 bytes at a
 * character boundary).  TT_EINPUT when no such command is pending (then
 * nothing is written and an outer transaction goes on). */
int db_command_done(db_conn *c, int64_t id, const char *result, tt_err *err);
/* One command, pending or done; TT_EINPUT when there is none. */
int db_command_get(db_conn *c, int64_t id, db_command *out, tt_err *err);

/* ---- checkpoints ------------------------------------------------------- */

/* Replace the trial's checkpoint for rung (one kept per (trial, rung)). */
int db_checkpoint_put(db_conn *c, int64_t trial, int rung, long step,
                      const void *blob, size_t len, tt_err *err);
/* The latest checkpoint of (trial, rung): *blob malloc'd, NULL when none
 * (then *step is -1 and *len 0; an empty checkpoint is a non-NULL *blob
 * with *len 0). */
int db_checkpoint_get(db_conn *c, int64_t trial, int rung, long *step,
                      void **blob, size_t *len, tt_err *err);

/*
 * Delete the checkpoints nothing will read again, in one transaction (or
 * the caller's).  Kept: every checkpoint of a rung without a result (a
 * running, queued or paused trial resumes from it); with continue_mode,
 * a finished rung below top_rung of a trial still in the race (not
 * killed, diverged or failed) whose next rung has no result yet (its
 * promotion starts, or after a crash restarts, from it); and the best
 * keep_best results of every rung by val_acc (ties kept).  Everything
 * else goes, a killed, diverged or failed trial's unfinished rungs too.
 * *deleted (may be NULL) receives the count.  The file does not shrink:
 * SQLite reuses the freed pages for the checkpoints that follow.
 */
int db_checkpoints_prune(db_conn *c, int continue_mode, int top_rung, int keep_best,
                         int *deleted, tt_err *err);

/* What the database holds on disk: *file_bytes its pages (PRAGMA
 * page_count x page_size, the -wal not counted), *ckpt_bytes and *nckpt
 * the checkpoints' blobs. */
int db_size(db_conn *c, int64_t *file_bytes, int64_t *ckpt_bytes, int *nckpt,
            tt_err *err);

/* ==== polling reads for the explorer ======================================
 *
 * Reads that return only what changed since the last poll, so a view of a
 * study with thousands of trials stays light.  Same conventions as above:
 * *out is one malloc'd block, free(*out).
 */

/* PRAGMA data_version: changes when another connection commits to the
 * file (this connection's own writes do not change it).  An unchanged
 * value means there is nothing new to read. */
int db_data_version(db_conn *c, int64_t *v, tt_err *err);
/* Trials of the study with updated_at > after (a value read back from
 * updated_at, not a clock of the caller's), in id order.  There is no
 * index on updated_at: this reads the whole table, so poll it seldom.  A writer stamps
 * updated_at before its transaction commits, so a poll should ask again
 * with some slack below the largest value it has seen. */
int db_trials_since(db_conn *c, int64_t study, double after, db_trial **out,
                    int *n, tt_err *err);
/* Trials of the study with id > after (new ones), in id order: a range
 * of the primary key, cheap however many trials there are. */
int db_trials_from(db_conn *c, int64_t study, int64_t after, db_trial **out, int *n,
                   tt_err *err);
/* Rung results of the study stored (or stored again) since rowid after,
 * oldest first; *last receives the largest rowid read (after when none),
 * to pass as after next time.  A promoted flag set in place keeps its
 * rowid: read the trial again with db_rungs_of when its row changed. */
int db_rungs_since(db_conn *c, int64_t study, int64_t after, int64_t *last,
                   db_rung **out, int *n, tt_err *err);
/* Every rung result of one trial, by rung. */
int db_rungs_of(db_conn *c, int64_t trial, db_rung **out, int *n, tt_err *err);
/* Commands with id > after, pending or done, oldest first. */
int db_commands_since(db_conn *c, int64_t after, db_command **out, int *n,
                      tt_err *err);
/* Every command of one trial, oldest first: its history. */
int db_commands_of(db_conn *c, int64_t trial, db_command **out, int *n,
                   tt_err *err);
/* *yes = whether the masks table holds any row (a study with gates). */
int db_masks_exist(db_conn *c, int *yes, tt_err *err);

#endif
