/*
 * db.c — the study database on SQLite; see db.h for the contract.
 *
 * Constraints this file keeps:
 *
 *   - Every sqlite3_prepare, sqlite3_step and sqlite3_exec goes through
 *     w_prepare / w_step / w_exec, which count calls for fault injection
 *     and retry SQLITE_BUSY a bounded number of times where a retry is
 *     safe.  (Binding, reading columns, finalize and reset cannot start
 *     I/O of their own and are called directly.)
 *   - Every write runs between wr_begin and wr_end: its own BEGIN
 *     IMMEDIATE transaction at depth 0, a nested level of the caller's
 *     otherwise.  Any SQLite error after wr_begin goes through wr_abort,
 *     which rolls the whole transaction back before returning, so a
 *     failed write never leaves half its rows behind.
 *   - The schema grows only by appending to migrations[]; step i takes a
 *     file from user_version i to i + 1, and all pending steps of one open
 *     run in one transaction together with the version bump.
 *   - A file that is not ours is never written: it is recognised (header,
 *     application_id, tables) before anything, WAL mode included, is set.
 */
#include "db.h"

#include "clock.h"
#include "memkind.h"
#include "tstate.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* After busy_timeout has run out: this many more tries, sleeping
 * DB_RETRY_SLEEP_MS * 2^k (at most 100 ms) between them. */
#define DB_BUSY_RETRIES 6
#define DB_RETRY_SLEEP_MS 10

/* ---- the schema -------------------------------------------------------- */

/*
 * Migration steps: migrations[i] takes user_version i to i + 1.  Version 1
 * is exactly the contract of design.md; later steps only add.  A new step
 * is appended here with DB_SCHEMA_VERSION raised in db.h; never edit a
 * step that has shipped.
 *
 * Why nullable REAL columns: SQLite stores NaN as NULL, and a diverged
 * trial has a NaN loss; NOT NULL would turn that into an error.
 */
static const struct migration {
	const char *what;
	const char *sql;
} migrations[] = {
	{"the study tables of design.md",
	 "CREATE TABLE studies (\n"
	 "  id         INTEGER PRIMARY KEY,\n"
	 "  name       TEXT    NOT NULL,\n"
	 "  config     TEXT    NOT NULL DEFAULT '',\n"
	 "  seed       INTEGER NOT NULL DEFAULT 0,\n"
	 "  created_at REAL    NOT NULL,\n"
	 "  state      TEXT    NOT NULL DEFAULT 'running'\n"
	 ");\n"
	 "CREATE TABLE trials (\n"
	 "  id         INTEGER PRIMARY KEY,\n"
	 "  study_id   INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,\n"
	 "  params     TEXT    NOT NULL,\n"
	 "  state      TEXT    NOT NULL DEFAULT 'queued',\n"
	 "  rung       INTEGER NOT NULL DEFAULT 0,\n"
	 "  created_at REAL    NOT NULL,\n"
	 "  updated_at REAL    NOT NULL\n"
	 ");\n"
	 "CREATE INDEX trials_by_study ON trials(study_id);\n"
	 "CREATE TABLE rungs (\n"
	 "  trial_id  INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  rung      INTEGER NOT NULL,\n"
	 "  trainable INTEGER NOT NULL,\n"
	 "  epochs    REAL    NOT NULL,\n"
	 "  val_loss  REAL,\n"
	 "  val_acc   REAL,\n"
	 "  seconds   REAL    NOT NULL DEFAULT 0,\n"
	 "  promoted  INTEGER NOT NULL DEFAULT 0,\n"
	 "  PRIMARY KEY (trial_id, rung)\n"
	 ");\n"
	 "CREATE TABLE metrics (\n"
	 "  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  rung     INTEGER NOT NULL,\n"
	 "  step     INTEGER NOT NULL,\n"
	 "  epoch    REAL    NOT NULL,\n"
	 "  split    TEXT    NOT NULL,\n"
	 "  loss     REAL,\n"
	 "  acc      REAL,\n"
	 "  wall_s   REAL    NOT NULL\n"
	 ");\n"
	 "CREATE INDEX metrics_by_step ON metrics(trial_id, rung, step);\n"
	 "CREATE TABLE layer_memory (\n"
	 "  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  rung     INTEGER NOT NULL,\n"
	 "  stage    INTEGER NOT NULL,\n"
	 "  name     TEXT    NOT NULL,\n"
	 "  kind     TEXT    NOT NULL,\n"
	 "  bytes    INTEGER NOT NULL,\n"
	 "  frozen   INTEGER NOT NULL DEFAULT 0,\n"
	 "  PRIMARY KEY (trial_id, rung, stage, kind)\n"
	 ");\n"
	 "CREATE TABLE masks (\n"
	 "  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  stage    INTEGER NOT NULL,\n"
	 "  unit     INTEGER NOT NULL,\n"
	 "  prob     REAL    NOT NULL,\n"
	 "  \"on\"     INTEGER NOT NULL,\n"
	 "  PRIMARY KEY (trial_id, stage, unit)\n"
	 ");\n"
	 "CREATE TABLE rank_corr (\n"
	 "  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,\n"
	 "  rung_a   INTEGER NOT NULL,\n"
	 "  rung_b   INTEGER NOT NULL,\n"
	 "  n        INTEGER NOT NULL,\n"
	 "  spearman REAL,\n"
	 "  kendall  REAL,\n"
	 "  PRIMARY KEY (study_id, rung_a, rung_b)\n"
	 ");\n"
	 "CREATE TABLE commands (\n"
	 "  id        INTEGER PRIMARY KEY,\n"
	 "  trial_id  INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  verb      TEXT    NOT NULL,\n"
	 "  issued_at REAL    NOT NULL,\n"
	 "  done_at   REAL,\n"
	 "  result    TEXT\n"
	 ");\n"
	 "CREATE INDEX commands_pending ON commands(id) WHERE done_at IS NULL;\n"
	 "CREATE TABLE checkpoints (\n"
	 "  trial_id   INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  rung       INTEGER NOT NULL,\n"
	 "  step       INTEGER NOT NULL,\n"
	 "  blob       BLOB    NOT NULL,\n"
	 "  created_at REAL    NOT NULL,\n"
	 "  PRIMARY KEY (trial_id, rung)\n"
	 ");\n"},
	/* Why metrics_by_trial beside metrics_by_step: an index on trial_id
	 * alone ends in the rowid, so "trial_id = ? AND rowid > ? ORDER BY
	 * rowid" (the explorer's poll) is one range scan, not a scan of every
	 * point of the trial followed by a sort. */
	{"rungs.train_macs; per-trial polling index on metrics",
	 "ALTER TABLE rungs ADD COLUMN train_macs REAL NOT NULL DEFAULT 0;\n"
	 "CREATE INDEX metrics_by_trial ON metrics(trial_id);\n"},
	/* What a gated trial kept, beside its rung result (NULL ungated), and
	 * the index that lets the explorer find trials whose state changed
	 * without scanning every trial. */
	{"rungs.macs_kept and params_kept; trials by updated_at",
	 "ALTER TABLE rungs ADD COLUMN macs_kept REAL;\n"
	 "ALTER TABLE rungs ADD COLUMN params_kept REAL;\n"
	 "CREATE INDEX trials_by_updated ON trials(study_id, updated_at);\n"},
	/* What the study's results mean (engine/study.h's fingerprint), so a
	 * changed study file is refused; NULL in studies made before. */
	{"studies.fingerprint",
	 "ALTER TABLE studies ADD COLUMN fingerprint TEXT;\n"},
	/* The paths of hyperparameters a method learns inside a trial
	 * (EvoGrad).  Why the key: a resumed trial reports the steps after its
	 * checkpoint again, and REPLACE keeps one point per (trial, rung,
	 * step, name).  hyper_by_trial serves the explorer's poll of one
	 * trial's path by rowid, as metrics_by_trial does for curves. */
	{"the hyper table of learned hyperparameters",
	 "CREATE TABLE hyper (\n"
	 "  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  rung     INTEGER NOT NULL,\n"
	 "  step     INTEGER NOT NULL,\n"
	 "  name     TEXT    NOT NULL,\n"
	 "  value    REAL,\n"
	 "  PRIMARY KEY (trial_id, rung, step, name)\n"
	 ");\n"
	 "CREATE INDEX hyper_by_trial ON hyper(trial_id);\n"},
	/* Every freeze-thaw decision (FMS, DyHPO): each candidate's forecast
	 * and which one was chosen, numbered by `at`, so a decision can be
	 * explained after the fact.  forecasts_by_trial serves the explorer's
	 * poll of one trial's decisions. */
	{"the forecasts table of freeze-thaw decisions",
	 "CREATE TABLE forecasts (\n"
	 "  trial_id   INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  budget     INTEGER NOT NULL,\n"
	 "  mu         REAL,\n"
	 "  sd         REAL,\n"
	 "  ei         REAL,\n"
	 "  chosen     INTEGER NOT NULL DEFAULT 0,\n"
	 "  at         INTEGER NOT NULL,\n"
	 "  final_mu   REAL,\n"
	 "  final_sd   REAL,\n"
	 "  created_at REAL\n"
	 ");\n"
	 "CREATE INDEX forecasts_by_trial ON forecasts(trial_id);\n"
	 "CREATE INDEX forecasts_by_at ON forecasts(at);\n"},
	/* A continual trial's accuracy matrix (method_continual.c): the
	 * accuracy on task after experience, both 0-based.  The key makes
	 * a resumed trial's repeated rows replace the first ones. */
	{"the task_acc table of continual accuracy matrices",
	 "CREATE TABLE task_acc (\n"
	 "  trial_id   INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,\n"
	 "  experience INTEGER NOT NULL,\n"
	 "  task       INTEGER NOT NULL,\n"
	 "  acc        REAL,\n"
	 "  PRIMARY KEY (trial_id, experience, task)\n"
	 ");\n"},
};

_Static_assert(sizeof migrations / sizeof migrations[0] == DB_SCHEMA_VERSION,
               "one migration step per schema version");

/* ---- cached statements --------------------------------------------------- */

enum {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_STUDY_FIND, ST_STUDY_ADD, ST_STUDY_STATE, ST_STUDY_GET,
	ST_TRIAL_ADD, ST_TRIAL_SET, ST_TRIAL_GET, ST_TRIALS, ST_TRIALS_REQUEUE,
	ST_RUNG_PUT, ST_RUNG_PROMOTED, ST_RUNGS,
	ST_METRIC_PUT, ST_METRICS_TRIAL, ST_METRICS_ALL,
	ST_MEM_PUT, ST_MEM_GET,
	ST_MASK_PUT, ST_MASKS,
	ST_RC_PUT, ST_RC_LIST,
	ST_CMD_ADD, ST_CMD_PENDING, ST_CMD_DONE, ST_CMD_GET,
	ST_CKPT_PUT, ST_CKPT_GET,
	ST_TRIAL_PARAMS,
	ST_STUDY_FP_GET, ST_STUDY_FP_SET,
	ST_HYPER_PUT, ST_HYPER_TRIAL, ST_HYPER_ALL,
	ST_FC_PUT, ST_FC_NEXT, ST_FC_TRIAL, ST_FC_ALL,
	ST_TASK_ACC_PUT, ST_TASK_ACC_TRIAL,
	ST_COUNT
};

#define TRIAL_COLS "id, params, state, rung, created_at, updated_at"
#define METRIC_COLS "rowid, trial_id, rung, step, epoch, split, loss, acc, wall_s"
#define CMD_COLS "id, trial_id, verb, issued_at, done_at, result"
#define HYPER_COLS "rowid, trial_id, rung, step, name, value"
#define FC_COLS "rowid, trial_id, budget, mu, sd, ei, chosen, at, final_mu, final_sd," \
                " created_at"

static const char *const st_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_STUDY_FIND] = "SELECT id FROM studies ORDER BY id LIMIT 1",
	[ST_STUDY_ADD] = "INSERT INTO studies (name, config, seed, created_at, state)"
	                 " VALUES (?, ?, ?, ?, 'running')",
	[ST_STUDY_STATE] = "UPDATE studies SET state = ? WHERE id = ?",
	[ST_STUDY_GET] = "SELECT id, name, config, seed, created_at, state"
	                 " FROM studies ORDER BY id LIMIT 1",
	[ST_TRIAL_ADD] = "INSERT INTO trials (study_id, params, state, rung,"
	                 " created_at, updated_at) VALUES (?, ?, 'queued', 0, ?, ?)",
	[ST_TRIAL_SET] = "UPDATE trials SET state = ?, rung = ?, updated_at = ?"
	                 " WHERE id = ?",
	[ST_TRIAL_GET] = "SELECT " TRIAL_COLS " FROM trials WHERE id = ?",
	[ST_TRIALS] = "SELECT " TRIAL_COLS " FROM trials WHERE study_id = ?"
	              " ORDER BY id",
	[ST_TRIALS_REQUEUE] = "UPDATE trials SET state = 'queued', updated_at = ?"
	                      " WHERE study_id = ? AND state = 'running'",
	[ST_RUNG_PUT] = "INSERT OR REPLACE INTO rungs (trial_id, rung, trainable,"
	                " epochs, val_loss, val_acc, seconds, promoted, train_macs,"
	                " macs_kept, params_kept)"
	                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_RUNG_PROMOTED] = "UPDATE rungs SET promoted = 1"
	                     " WHERE trial_id = ? AND rung = ?",
	[ST_RUNGS] = "SELECT r.trial_id, r.rung, r.trainable, r.epochs, r.val_loss,"
	             " r.val_acc, r.seconds, r.promoted, r.train_macs, r.macs_kept,"
	             " r.params_kept"
	             " FROM rungs r JOIN trials t ON t.id = r.trial_id"
	             " WHERE t.study_id = ? ORDER BY r.trial_id, r.rung",
	/* Why NOT EXISTS: a run resumed from a checkpoint trains the steps
	 * after it again, and their points may already be stored; the
	 * metrics_by_step index makes the check one lookup. */
	[ST_METRIC_PUT] = "INSERT INTO metrics (trial_id, rung, step, epoch, split,"
	                  " loss, acc, wall_s)"
	                  " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8"
	                  " WHERE NOT EXISTS (SELECT 1 FROM metrics WHERE"
	                  " trial_id = ?1 AND rung = ?2 AND step = ?3 AND split = ?5)",
	[ST_METRICS_TRIAL] = "SELECT " METRIC_COLS " FROM metrics"
	                     " WHERE trial_id = ? AND rowid > ?"
	                     " ORDER BY rowid LIMIT ?",
	[ST_METRICS_ALL] = "SELECT " METRIC_COLS " FROM metrics WHERE rowid > ?"
	                   " ORDER BY rowid LIMIT ?",
	[ST_MEM_PUT] = "INSERT OR REPLACE INTO layer_memory (trial_id, rung, stage,"
	               " name, kind, bytes, frozen) VALUES (?, ?, ?, ?, ?, ?, ?)",
	[ST_MEM_GET] = "SELECT stage, name, kind, bytes, frozen FROM layer_memory"
	               " WHERE trial_id = ? AND rung = ? ORDER BY stage, rowid",
	[ST_MASK_PUT] = "INSERT OR REPLACE INTO masks (trial_id, stage, unit, prob,"
	                " \"on\") VALUES (?, ?, ?, ?, ?)",
	[ST_MASKS] = "SELECT stage, unit, prob, \"on\" FROM masks"
	             " WHERE trial_id = ? ORDER BY stage, unit",
	[ST_RC_PUT] = "INSERT OR REPLACE INTO rank_corr (study_id, rung_a, rung_b,"
	              " n, spearman, kendall) VALUES (?, ?, ?, ?, ?, ?)",
	[ST_RC_LIST] = "SELECT rung_a, rung_b, n, spearman, kendall FROM rank_corr"
	               " WHERE study_id = ? ORDER BY rung_a, rung_b",
	[ST_CMD_ADD] = "INSERT INTO commands (trial_id, verb, issued_at)"
	               " VALUES (?, ?, ?)",
	[ST_CMD_PENDING] = "SELECT " CMD_COLS " FROM commands"
	                   " WHERE done_at IS NULL AND id > ? ORDER BY id",
	[ST_CMD_DONE] = "UPDATE commands SET done_at = ?, result = ?"
	                " WHERE id = ? AND done_at IS NULL",
	[ST_CMD_GET] = "SELECT " CMD_COLS " FROM commands WHERE id = ?",
	[ST_CKPT_PUT] = "INSERT OR REPLACE INTO checkpoints (trial_id, rung, step,"
	                " blob, created_at) VALUES (?, ?, ?, ?, ?)",
	[ST_CKPT_GET] = "SELECT step, blob FROM checkpoints"
	                " WHERE trial_id = ? AND rung = ?",
	[ST_TRIAL_PARAMS] = "SELECT params FROM trials WHERE id = ?",
	[ST_STUDY_FP_GET] = "SELECT fingerprint FROM studies ORDER BY id LIMIT 1",
	[ST_STUDY_FP_SET] = "UPDATE studies SET fingerprint = ? WHERE id = ?",
	/* Why REPLACE and not an UPDATE in place: the replacing row takes a
	 * new rowid, so the explorer's poll by rowid reads it. */
	[ST_HYPER_PUT] = "INSERT OR REPLACE INTO hyper (trial_id, rung, step, name,"
	                 " value) VALUES (?, ?, ?, ?, ?)",
	[ST_HYPER_TRIAL] = "SELECT " HYPER_COLS " FROM hyper"
	                   " WHERE trial_id = ? AND rowid > ?"
	                   " ORDER BY rowid LIMIT ?",
	[ST_HYPER_ALL] = "SELECT " HYPER_COLS " FROM hyper WHERE rowid > ?"
	                 " ORDER BY rowid LIMIT ?",
	[ST_FC_PUT] = "INSERT INTO forecasts (trial_id, budget, mu, sd, ei, chosen, at,"
	              " final_mu, final_sd, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_FC_NEXT] = "SELECT coalesce(max(at) + 1, 0) FROM forecasts",
	[ST_FC_TRIAL] = "SELECT " FC_COLS " FROM forecasts WHERE trial_id = ? AND rowid > ?"
	                " ORDER BY rowid LIMIT ?",
	[ST_FC_ALL] = "SELECT " FC_COLS " FROM forecasts WHERE rowid > ?"
	              " ORDER BY rowid LIMIT ?",
	[ST_TASK_ACC_PUT] = "INSERT OR REPLACE INTO task_acc (trial_id, experience,"
	                    " task, acc) VALUES (?, ?, ?, ?)",
	[ST_TASK_ACC_TRIAL] = "SELECT trial_id, experience, task, acc FROM task_acc"
	                      " WHERE trial_id = ? ORDER BY experience, task",
};

struct db_conn {
	sqlite3 *db;
	char *path;
	int readonly;
	int64_t version;    /* the schema as opened (older only with DB_AS_IS) */
	int depth;          /* nesting of db_begin / wr_begin */
	int failed;         /* the transaction was rolled back under depth > 0 */
	int injected;       /* the last wrapped call was an injected fault */
	char emsg[512];     /* the last error, also when the caller's err is NULL */
	char failmsg[512];  /* why the transaction was rolled back */
	db_lock_wait_fn lock_wait; /* db_set_lock_wait; NULL: fail at once */
	void *lock_ud;
	sqlite3_stmt *st[ST_COUNT];
};

/* Value tables: what the text columns may hold. */
static const char *const study_states[] = {"running", "done"};
static const char *const verbs[] = {"promote", "kill", "pause", "resume"};
static const char *const splits[] = {"train", "val"};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The table's own string equal to s, or NULL. */
static const char *lookup(const char *const *tab, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(tab[i], s) == 0)
			return tab[i];
	return NULL;
}

/* Record an error in c->emsg and err; returns code. */
__attribute__((format(printf, 4, 5)))
static int db_err(db_conn *c, tt_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->emsg, sizeof c->emsg, fmt, ap);
	va_end(ap);
	return tt_err_set(err, code, "%s", c->emsg);
}

/* The status for an SQLite result code: the file as given is bad input
 * (a constraint the row breaks; a schema that is not ours any more, which
 * is what SQLITE_ERROR means for the fixed SQL of this file, e.g. "no
 * such table"; a damaged file; a file or directory we may not write or
 * open), so every command exits 2 for it; the rest (disk full, I/O error,
 * a lock held too long, out of memory) is a runtime failure. */
static int code_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
	case SQLITE_ERROR:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return TT_EINPUT;
	default:
		return TT_ERUNTIME;
	}
}

/* An SQLite failure rc during op: "PATH: OP: reason", with code_of's
 * status. */
static int sql_err(db_conn *c, tt_err *err, int rc, const char *op)
{
	int code = code_of(rc);
	if (c->injected)
		return db_err(c, err, code, "%s: %s: %s (injected fault)", c->path,
		              op, sqlite3_errstr(rc));
	return db_err(c, err, code, "%s: %s: %s", c->path, op,
	              sqlite3_errmsg(c->db));
}

/* ---- fault injection and the call wrappers ------------------------------- */

static atomic_long fault_left;   /* calls until the injected one; 0: off */
static atomic_int fault_code;
static atomic_long fault_calls;  /* every wrapped call so far */

void db_fault_inject(int nth, int code)
{
	atomic_store(&fault_code, code);
	atomic_store(&fault_left, nth > 0 ? nth : 0);
}

long db_fault_calls(void)
{
	return atomic_load(&fault_calls);
}

/* Count one call; the injected code when this is the nth, else 0. */
static int fault_fire(db_conn *c)
{
	atomic_fetch_add(&fault_calls, 1);
	c->injected = 0;
	long left = atomic_load(&fault_left);
	while (left > 0) {
		if (atomic_compare_exchange_weak(&fault_left, &left, left - 1)) {
			if (left != 1)
				return 0;
			c->injected = 1;
			return atomic_load(&fault_code);
		}
	}
	return 0;
}

/*
 * Whether a call that returned SQLITE_BUSY may simply run again.  Only
 * when no transaction of ours is open (the statement was its own
 * transaction, BEGIN IMMEDIATE included), or always (COMMIT, as
 * sqlite3_step's documentation allows, and prepare); inside a transaction
 * the caller must roll back.
 */
static int busy_retry(db_conn *c, int rc, int tries, int always)
{
	if ((rc & 0xff) != SQLITE_BUSY || tries >= DB_BUSY_RETRIES)
		return 0;
	if (!always && !sqlite3_get_autocommit(c->db))
		return 0;
	int ms = DB_RETRY_SLEEP_MS << tries;
	tt_clock_sleep_ms(ms < 100 ? ms : 100);
	return 1;
}

/* Preparing changes nothing, so SQLITE_BUSY (reading the schema while
 * another connection holds a lock it needs) may always be retried. */
static int w_prepare(db_conn *c, const char *sql, unsigned flags,
                     sqlite3_stmt **st)
{
	for (int tries = 0;; tries++) {
		*st = NULL;
		int rc = fault_fire(c);
		if (!rc)
			rc = sqlite3_prepare_v3(c->db, sql, -1, flags, st, NULL);
		if (!busy_retry(c, rc, tries, 1))
			return rc;
		sqlite3_finalize(*st);
	}
}

static int w_step(db_conn *c, sqlite3_stmt *st)
{
	/* A statement that has already returned rows is not restarted: that
	 * would hand the caller its first rows twice. */
	int fresh = !sqlite3_stmt_busy(st);
	int is_commit = st == c->st[ST_COMMIT];
	/* with a lock wait (db_set_lock_wait) a BEGIN that found the lock
	 * taken goes back to wr_begin at once, whose waits are the caller's:
	 * retrying here would wait the busy timeout DB_BUSY_RETRIES more
	 * times, silently */
	int once = c->lock_wait && st == c->st[ST_BEGIN];
	for (int tries = 0;; tries++) {
		int rc = fault_fire(c);
		if (!rc)
			rc = sqlite3_step(st);
		if (!fresh || once || !busy_retry(c, rc, tries, is_commit))
			return rc;
		sqlite3_reset(st);
	}
}

static int w_exec(db_conn *c, const char *sql)
{
	for (int tries = 0;; tries++) {
		int rc = fault_fire(c);
		if (!rc)
			rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
		if (!busy_retry(c, rc, tries, 0))
			return rc;
	}
}

/* The cached statement `which`, prepared on first use, reset and unbound. */
static int st_get(db_conn *c, int which, sqlite3_stmt **st)
{
	*st = NULL;
	if (!c->st[which]) {
		int rc = w_prepare(c, st_sql[which], SQLITE_PREPARE_PERSISTENT,
		                   &c->st[which]);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(c->st[which]);
			c->st[which] = NULL;
			return rc;
		}
	}
	*st = c->st[which];
	return SQLITE_OK;
}

/* Binding: each helper does nothing once *rc is an error, so a run of
 * binds is checked once. */
static void b_i64(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, i, v);
}

static void b_dbl(sqlite3_stmt *st, int i, double v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_double(st, i, v);
}

static void b_text(sqlite3_stmt *st, int i, const char *s, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC)
		        : sqlite3_bind_null(st, i);
}

/* Column readers: NULL REAL reads as NaN (see db.h), NULL text as "". */
static double col_dbl(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NAN;
	return sqlite3_column_double(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? (const char *)s : "";
}

/* Copy the text of column i into dst[cap]; 0 when it did not fit. */
static int col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const char *s = col_text(st, i);
	size_t n = strlen(s);
	if (n >= cap) {
		memcpy(dst, s, cap - 1);
		dst[cap - 1] = '\0';
		return 0;
	}
	memcpy(dst, s, n + 1);
	return 1;
}

/* Room for one more element in the array *p of *cap elements of size sz. */
static int grow(void **p, int *cap, int n, size_t sz)
{
	if (n < *cap)
		return 1;
	if (*cap > INT_MAX / 2)
		return 0;
	int ncap = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, (size_t)ncap * sz);
	if (!q)
		return 0;
	*p = q;
	*cap = ncap;
	return 1;
}

/* ---- transactions ---------------------------------------------------------- */

/* Roll back whatever SQL transaction is open.  The ROLLBACK goes through
 * the wrapper like every call; a failure (injected or real) is tried again
 * a few times, since leaving the transaction open would let the next
 * statements of the caller land in it. */
static void sql_rollback(db_conn *c)
{
	for (int i = 0; i < 3 && !sqlite3_get_autocommit(c->db); i++) {
		sqlite3_stmt *st;
		if (st_get(c, ST_ROLLBACK, &st) == SQLITE_OK) {
			w_step(c, st);
			sqlite3_reset(st);
		}
	}
}

/* Every write starts here: BEGIN IMMEDIATE at depth 0, one more level
 * otherwise. */
static int wr_begin(db_conn *c, const char *op, tt_err *err)
{
	if (c->readonly)
		return db_err(c, err, TT_EINPUT, "%s: %s: opened read-only",
		              c->path, op);
	if (c->depth > 0) {
		if (c->failed)
			return db_err(c, err, TT_ERUNTIME,
			              "%s: %s: the transaction was already rolled"
			              " back: %s", c->path, op, c->failmsg);
		c->depth++;
		return TT_OK;
	}
	sqlite3_stmt *st = NULL;
	int rc = st_get(c, ST_BEGIN, &st);
	double t0 = -1;
	while (rc == SQLITE_OK) {
		rc = w_step(c, st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
		/* another process holds the write lock past the busy timeout:
		 * nothing is open on our side, so wait as the caller asked */
		if ((rc & 0xff) != SQLITE_BUSY || !c->lock_wait ||
		    !sqlite3_get_autocommit(c->db))
			break;
		sqlite3_reset(st);
		if (t0 < 0)
			t0 = tt_clock_mono();
		if (c->lock_wait(c->lock_ud, c->path, tt_clock_mono() - t0)) {
			rc = SQLITE_BUSY;
			break;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		int code = sql_err(c, err, rc, op);
		if (st)
			sqlite3_reset(st);
		sql_rollback(c);
		return code;
	}
	sqlite3_reset(st);
	c->depth = 1;
	c->failed = 0;
	return TT_OK;
}

/* A write failed (its message is in c->emsg and err already): roll the
 * whole transaction back and leave one level.  Returns code. */
static int wr_abort(db_conn *c, int code)
{
	sql_rollback(c);
	TT_ASSERT(c->depth > 0);
	c->depth--;
	if (c->depth > 0 && !c->failed) {
		c->failed = 1;
		snprintf(c->failmsg, sizeof c->failmsg, "%s", c->emsg);
	}
	if (c->depth == 0)
		c->failed = 0;
	return code;
}

/* SQLite failed with rc inside a write: message, rollback, status. */
static int wr_fail(db_conn *c, tt_err *err, int rc, const char *op)
{
	return wr_abort(c, sql_err(c, err, rc, op));
}

/* Leave one level; the outermost commits. */
static int wr_end(db_conn *c, const char *op, tt_err *err)
{
	TT_ASSERT(c->depth > 0);
	if (c->failed) {
		c->depth--;
		if (c->depth == 0)
			c->failed = 0;
		return db_err(c, err, TT_ERUNTIME,
		              "%s: %s: the transaction was rolled back: %s",
		              c->path, op, c->failmsg);
	}
	if (c->depth > 1) {
		c->depth--;
		return TT_OK;
	}
	sqlite3_stmt *st = NULL;
	int rc = st_get(c, ST_COMMIT, &st);
	if (rc == SQLITE_OK) {
		rc = w_step(c, st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		int code = sql_err(c, err, rc, op);
		if (st)
			sqlite3_reset(st);
		return wr_abort(c, code);
	}
	sqlite3_reset(st);
	c->depth = 0;
	return TT_OK;
}

int db_begin(db_conn *c, tt_err *err)
{
	return wr_begin(c, "begin transaction", err);
}

int db_commit(db_conn *c, tt_err *err)
{
	if (c->depth == 0)
		return db_err(c, err, TT_EINPUT, "%s: commit: no transaction",
		              c->path);
	return wr_end(c, "commit", err);
}

void db_rollback(db_conn *c)
{
	if (!c || c->depth == 0)
		return;
	snprintf(c->emsg, sizeof c->emsg, "rolled back by the caller");
	wr_abort(c, TT_OK);
}

/* Run a write statement to completion and reset it; SQLITE_OK or the
 * error, with the message recorded before the reset can touch it. */
static int st_run(db_conn *c, sqlite3_stmt *st, tt_err *err, const char *op,
                  int *code)
{
	int rc = w_step(c, st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		rc = SQLITE_OK;
	else
		*code = sql_err(c, err, rc, op);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/*
 * One-statement write: begin, prepare, bind (bind() fills the
 * parameters), run, end.  *changes receives sqlite3_changes when not NULL,
 * *rowid the last insert rowid.
 */
typedef int (*binder)(sqlite3_stmt *st, const void *arg);

static int write1(db_conn *c, int which, binder bind, const void *arg,
                  const char *op, int *changes, int64_t *rowid, tt_err *err)
{
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, which, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	rc = bind(st, arg);
	if (rc != SQLITE_OK) {
		code = sql_err(c, err, rc, op);
		sqlite3_clear_bindings(st);
		return wr_abort(c, code);
	}
	if (st_run(c, st, err, op, &code) != SQLITE_OK)
		return wr_abort(c, code);
	if (changes)
		*changes = sqlite3_changes(c->db);
	if (rowid)
		*rowid = sqlite3_last_insert_rowid(c->db);
	return wr_end(c, op, err);
}

/* ---- open and migrate ---------------------------------------------------- */

/* One integer from a one-row query (a PRAGMA); SQLite status. */
static int query_int(db_conn *c, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc = w_prepare(c, sql, 0, &st);
	if (rc == SQLITE_OK) {
		rc = w_step(c, st);
		if (rc == SQLITE_ROW) {
			*v = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			*v = 0;
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* What the file is, read from its header and schema. */
struct probe {
	int64_t app_id, version, tables;
};

static int probe(db_conn *c, struct probe *p, tt_err *err)
{
	int rc = query_int(c, "PRAGMA application_id", &p->app_id);
	if (rc == SQLITE_OK)
		rc = query_int(c, "PRAGMA user_version", &p->version);
	if (rc == SQLITE_OK)
		rc = query_int(c, "SELECT count(*) FROM sqlite_master", &p->tables);
	if ((rc & 0xff) == SQLITE_NOTADB)
		return db_err(c, err, TT_EINPUT,
		              "%s: not a tunetop study database (%s); expected an"
		              " SQLite file written by tunetop", c->path,
		              c->injected ? sqlite3_errstr(rc) : sqlite3_errmsg(c->db));
	if (rc != SQLITE_OK)
		return sql_err(c, err, rc, "reading the database header");
	return TT_OK;
}

/* TT_OK when p describes a file we may use (or create, when empty). */
static int recognise(db_conn *c, const struct probe *p, int may_create,
                     tt_err *err)
{
	if (p->app_id == DB_APPLICATION_ID) {
		if (p->version > DB_SCHEMA_VERSION)
			return db_err(c, err, TT_EINPUT,
			              "%s: written by a newer tunetop (schema %lld,"
			              " this one reads up to %d)", c->path,
			              (long long)p->version, DB_SCHEMA_VERSION);
		return TT_OK;
	}
	if (p->app_id == 0 && p->tables == 0 && p->version == 0) {
		if (may_create)
			return TT_OK;
		return db_err(c, err, TT_EINPUT,
		              "%s: empty file, not a tunetop study database", c->path);
	}
	if (p->app_id == 0)
		return db_err(c, err, TT_EINPUT,
		              "%s: an SQLite database but not a tunetop study"
		              " (no application_id, %lld schema objects); expected"
		              " application_id 0x%08X", c->path,
		              (long long)p->tables, (unsigned)DB_APPLICATION_ID);
	return db_err(c, err, TT_EINPUT,
	              "%s: an SQLite database of another application"
	              " (application_id 0x%08llX); expected a tunetop study"
	              " (application_id 0x%08X)", c->path,
	              (unsigned long long)(uint32_t)p->app_id,
	              (unsigned)DB_APPLICATION_ID);
}

/* Bring the file to DB_SCHEMA_VERSION in one transaction.  The probe is
 * repeated under the write lock, since another process may have created
 * or migrated the file since we looked. */
static int migrate(db_conn *c, int may_create, tt_err *err)
{
	const char *op = "migrating the schema";
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	struct probe p;
	code = probe(c, &p, err);
	if (code == TT_OK)
		code = recognise(c, &p, may_create, err);
	if (code)
		return wr_abort(c, code);
	char sql[64];
	int rc = SQLITE_OK;
	if (p.app_id == 0) {
		snprintf(sql, sizeof sql, "PRAGMA application_id = %d",
		         (int)DB_APPLICATION_ID);
		rc = w_exec(c, sql);
	}
	for (int64_t v = p.version; rc == SQLITE_OK && v < DB_SCHEMA_VERSION; v++) {
		rc = w_exec(c, migrations[v].sql);
		if (rc != SQLITE_OK) {
			char what[160];
			snprintf(what, sizeof what, "migrating schema %lld to %lld (%s)",
			         (long long)v, (long long)v + 1, migrations[v].what);
			return wr_fail(c, err, rc, what);
		}
	}
	if (rc == SQLITE_OK && p.version != DB_SCHEMA_VERSION) {
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
		         DB_SCHEMA_VERSION);
		rc = w_exec(c, sql);
	}
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	return wr_end(c, op, err);
}

/* Per-connection settings, and WAL mode (stored in the file) when we may
 * write. */
static int configure(db_conn *c, tt_err *err)
{
	int rc = SQLITE_OK;
	if (!c->readonly) {
		sqlite3_stmt *st;
		rc = w_prepare(c, "PRAGMA journal_mode = WAL", 0, &st);
		if (rc == SQLITE_OK) {
			rc = w_step(c, st);
			if (rc == SQLITE_ROW) {
				const char *mode = col_text(st, 0);
				rc = SQLITE_OK;
				if (strcmp(mode, "wal") != 0) {
					db_err(c, err, TT_ERUNTIME,
					       "%s: cannot use WAL mode (journal mode"
					       " stays '%s'); is it on a network file"
					       " system?", c->path, mode);
					sqlite3_finalize(st);
					return TT_ERUNTIME;
				}
			}
		}
		if (rc != SQLITE_OK) {
			int code = sql_err(c, err, rc, "setting WAL mode");
			sqlite3_finalize(st);
			return code;
		}
		sqlite3_finalize(st);
		/* Why a limit: after a checkpoint the WAL file is cut back to
		 * this size rather than keeping its high-water mark, which
		 * checkpoint blobs would make large. */
		rc = w_exec(c, "PRAGMA journal_size_limit = 67108864");
	}
	if (rc == SQLITE_OK)
		rc = w_exec(c, "PRAGMA synchronous = NORMAL");
	if (rc == SQLITE_OK)
		rc = w_exec(c, "PRAGMA foreign_keys = ON");
	if (rc != SQLITE_OK)
		return sql_err(c, err, rc, "configuring the connection");
	return TT_OK;
}

/*
 * 1 when path has no -wal file.  Why: a read-only connection creates the
 * -wal and -shm files when they are missing and leaves them behind, and a
 * look taken with DB_AS_IS before deciding whether to write at all must
 * leave the files as they were.  With no -wal file there is no
 * uncheckpointed content, so the main file alone is the database, opened
 * as immutable.  (A -wal that exists is read the ordinary way.)
 */
static int no_wal(const char *path)
{
	struct stat wb;
	char *wal = sqlite3_mprintf("%s-wal", path);
	int none = wal && stat(wal, &wb) != 0 && errno == ENOENT;
	sqlite3_free(wal);
	return none;
}

/*
 * How a read-only open must go.  SQLite reads a WAL database through its
 * -shm file, which it creates when missing: in a directory we may not
 * write (a finished study shared read-only, a read-only mount) that fails
 * with "attempt to write a readonly database".  A cleanly closed study has
 * no -wal left, so there the file alone is the whole database and is
 * opened as immutable (read as it is, no -shm, no locks).  Returns 0 for
 * a plain open, 1 for immutable, -1 when a -wal with content but no -shm
 * sits in such a directory: its rows cannot be read without writing
 * (the message is in c->emsg / err).
 */
static int ro_mode(db_conn *c, const char *path, tt_err *err)
{
	char side[4096], dir[4096];
	struct stat sb;
	snprintf(side, sizeof side, "%s-shm", path);
	if (stat(side, &sb) == 0)
		return 0;
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else
		slash[slash == dir] = 0;
	if (access(dir, W_OK) == 0)
		return 0;
	snprintf(side, sizeof side, "%s-wal", path);
	if (stat(side, &sb) == 0 && sb.st_size > 0) {
		db_err(c, err, TT_EINPUT, "%s: cannot read it here: %s holds rows not"
		       " yet in the database and %s-shm, which reading them needs,"
		       " cannot be created in %s (not writable); open it once where"
		       " it can be written, or copy the three files elsewhere", path,
		       side, path, dir);
		return -1;
	}
	return 1;
}

/* "file:" URI of path for sqlite3_open_v2 with SQLITE_OPEN_URI: every
 * byte that is not unreserved or '/' percent-encoded; malloc'd. */
static char *uri_of(const char *path, const char *query)
{
	size_t n = strlen(path);
	char *u = malloc(5 + 3 * n + strlen(query) + 2);
	if (!u)
		return NULL;
	char *q = u + sprintf(u, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/-._~", *p))
			*q++ = (char)*p;
		else
			q += sprintf(q, "%%%02X", *p);
	}
	sprintf(q, "?%s", query);
	return u;
}

int db_open(const char *path, int flags, db_conn **out, tt_err *err)
{
	*out = NULL;
	int readonly = (flags & DB_READONLY) != 0;
	int create = (flags & DB_CREATE) != 0 && !readonly;
	struct stat sb;
	if (stat(path, &sb) != 0) {
		if (errno == ENOENT && !create)
			return tt_err_set(err, TT_EINPUT,
			                  "%s: no such study database", path);
		if (errno != ENOENT)
			return tt_err_set(err, TT_EINPUT, "%s: %s", path,
			                  strerror(errno));
	} else if (S_ISDIR(sb.st_mode)) {
		return tt_err_set(err, TT_EINPUT,
		                  "%s: is a directory, expected a study database",
		                  path);
	} else if (!S_ISREG(sb.st_mode)) {
		/* /dev/null and the like: SQLite would write PATH-journal
		 * beside it */
		return tt_err_set(err, TT_EINPUT,
		                  "%s: not a regular file, expected a study database"
		                  " (a regular file, or a new path to create one)",
		                  path);
	}

	db_conn *c = calloc(1, sizeof *c);
	if (!c || !(c->path = strdup(path))) {
		free(c);
		return tt_err_set(err, TT_ERUNTIME, "%s: out of memory", path);
	}
	c->readonly = readonly;
	/* Why NOMUTEX: a db_conn belongs to one thread (db.h), so SQLite's
	 * per-connection mutex would only cost. */
	int oflags = SQLITE_OPEN_NOMUTEX |
	             (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
	             (create ? SQLITE_OPEN_CREATE : 0);
	int code, mode = readonly ? ro_mode(c, path, err) : 0;
	if (mode < 0) {
		code = TT_EINPUT;
		goto err;
	}
	/* see no_wal */
	if (!mode && readonly && (flags & DB_AS_IS) && no_wal(path))
		mode = 1;
	char *uri = mode ? uri_of(path, "mode=ro&immutable=1") : NULL;
	if (mode && !uri) {
		code = tt_err_set(err, TT_ERUNTIME, "%s: out of memory", path);
		goto err;
	}
	int rc = sqlite3_open_v2(uri ? uri : path, &c->db,
	                         oflags | (uri ? SQLITE_OPEN_URI : 0), NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		code = tt_err_set(err, TT_EINPUT, "%s: cannot open: %s", path,
		                  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto err;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, DB_BUSY_TIMEOUT_MS);
	if (!readonly && sqlite3_db_readonly(c->db, "main") == 1) {
		code = db_err(c, err, TT_EINPUT,
		              "%s: not writable; open it read-only", path);
		goto err;
	}

	/* Recognise the file before writing anything to it.  An empty one is
	 * fine to create, or to look at as holding no study. */
	int as_is = readonly && (flags & DB_AS_IS);
	struct probe p;
	if ((code = probe(c, &p, err)) != TT_OK ||
	    (code = recognise(c, &p, create || as_is, err)) != TT_OK)
		goto err;
	c->version = p.version;
	if (readonly && p.version < DB_SCHEMA_VERSION && !(flags & DB_AS_IS)) {
		code = db_err(c, err, TT_EINPUT,
		              "%s: schema %lld is older than this tunetop's %d;"
		              " open it once read-write to migrate it", path,
		              (long long)p.version, DB_SCHEMA_VERSION);
		goto err;
	}
	if ((code = configure(c, err)) != TT_OK)
		goto err;
	if (!readonly && (p.version != DB_SCHEMA_VERSION || p.app_id == 0) &&
	    (code = migrate(c, create, err)) != TT_OK)
		goto err;
	if (!readonly)
		c->version = DB_SCHEMA_VERSION;
	*out = c;
	return TT_OK;
err:
	db_close(c);
	return code;
}

void db_set_lock_wait(db_conn *c, int busy_ms, db_lock_wait_fn wait, void *ud)
{
	c->lock_wait = wait;
	c->lock_ud = ud;
	if (busy_ms > 0)
		sqlite3_busy_timeout(c->db, busy_ms);
}

void db_close(db_conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	/* Closing rolls back an open transaction; close_v2 also copes with
	 * statements a failed call may have left behind. */
	sqlite3_close_v2(c->db);
	free(c->path);
	free(c);
}

const char *db_path(const db_conn *c)
{
	return c->path;
}

/* ---- reads ------------------------------------------------------------- */

/*
 * Run a read: st is bound; row(st, ctx) is called per row and returns
 * TT_OK or a status (with the message in c->emsg/err) to stop.  The
 * statement is reset and unbound whatever happens.
 */
typedef int (*row_fn)(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err);

static int read_rows(db_conn *c, sqlite3_stmt *st, row_fn row, void *ctx,
                     const char *op, tt_err *err)
{
	int code = TT_OK;
	for (;;) {
		int rc = w_step(c, st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			code = sql_err(c, err, rc, op);
			break;
		}
		if ((code = row(c, st, ctx, err)) != TT_OK)
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return code;
}

/* A growing array of rows of size sz, for the list reads. */
struct rows {
	void *p;
	int n, cap;
	size_t sz;
	const char *op;
};

static void *rows_next(db_conn *c, struct rows *r, tt_err *err)
{
	if (!grow(&r->p, &r->cap, r->n, r->sz)) {
		db_err(c, err, TT_ERUNTIME, "%s: %s: out of memory", c->path, r->op);
		return NULL;
	}
	void *e = (char *)r->p + (size_t)r->n * r->sz;
	memset(e, 0, r->sz);
	r->n++;
	return e;
}

/* Prepare statement which for op; on failure the message is set. */
static int read_stmt(db_conn *c, int which, const char *op, sqlite3_stmt **st,
                     tt_err *err)
{
	int rc = st_get(c, which, st);
	if (rc != SQLITE_OK)
		return sql_err(c, err, rc, op);
	return TT_OK;
}

/* Hand the rows to the caller, or free them on failure. */
static int rows_done(struct rows *r, int code, void **out, int *n)
{
	if (code != TT_OK) {
		free(r->p);
		*out = NULL;
		*n = 0;
		return code;
	}
	*out = r->p;
	*n = r->n;
	return TT_OK;
}

/* ---- studies ------------------------------------------------------------ */

int db_study_ensure(db_conn *c, const char *name, const char *config,
                    uint64_t seed, int64_t *id, tt_err *err)
{
	const char *op = "creating the study";
	if (!name)
		return db_err(c, err, TT_EINPUT, "%s: %s: no name", c->path, op);
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, ST_STUDY_FIND, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	rc = w_step(c, st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return wr_end(c, op, err);
	}
	if (rc != SQLITE_DONE) {
		code = sql_err(c, err, rc, op);
		sqlite3_reset(st);
		return wr_abort(c, code);
	}
	sqlite3_reset(st);
	if ((rc = st_get(c, ST_STUDY_ADD, &st)) != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	b_text(st, 1, name, &rc);
	b_text(st, 2, config ? config : "", &rc);
	/* uint64 seeds above INT64_MAX are stored as their two's complement
	 * bit pattern and read back exactly. */
	b_i64(st, 3, (int64_t)seed, &rc);
	b_dbl(st, 4, tt_clock_wall(), &rc);
	if (rc != SQLITE_OK) {
		code = sql_err(c, err, rc, op);
		sqlite3_clear_bindings(st);
		return wr_abort(c, code);
	}
	if (st_run(c, st, err, op, &code) != SQLITE_OK)
		return wr_abort(c, code);
	*id = sqlite3_last_insert_rowid(c->db);
	return wr_end(c, op, err);
}

struct id_text {
	int64_t id;
	const char *text;
	int64_t i2;
};

static int bind_study_state(sqlite3_stmt *st, const void *arg)
{
	const struct id_text *a = arg;
	int rc = SQLITE_OK;
	b_text(st, 1, a->text, &rc);
	b_i64(st, 2, a->id, &rc);
	return rc;
}

int db_study_set_state(db_conn *c, int64_t study, const char *state, tt_err *err)
{
	const char *s = lookup(study_states, NELEM(study_states), state);
	if (!s)
		return db_err(c, err, TT_EINPUT,
		              "%s: study state '%s': expected running or done",
		              c->path, state ? state : "(null)");
	struct id_text a = {study, s, 0};
	int changes = 0;
	int code = write1(c, ST_STUDY_STATE, bind_study_state, &a,
	                  "setting the study state", &changes, NULL, err);
	if (code == TT_OK && changes == 0)
		return db_err(c, err, TT_EINPUT, "%s: no study %lld", c->path,
		              (long long)study);
	return code;
}

static int row_study(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_study *s = ctx;
	s->id = sqlite3_column_int64(st, 0);
	col_copy(st, 1, s->name, sizeof s->name);
	free(s->config);
	if (!(s->config = strdup(col_text(st, 2))))
		return db_err(c, err, TT_ERUNTIME, "%s: reading the study: out of"
		              " memory", c->path);
	s->seed = (uint64_t)sqlite3_column_int64(st, 3);
	s->created_at = sqlite3_column_double(st, 4);
	col_copy(st, 5, s->state, sizeof s->state);
	return TT_OK;
}

int db_study_get(db_conn *c, db_study *out, tt_err *err)
{
	const char *op = "reading the study";
	memset(out, 0, sizeof *out);
	out->id = -1;
	if (c->version == 0) /* an empty file looked at as it is (DB_AS_IS) */
		return db_err(c, err, TT_EINPUT, "%s: holds no study yet", c->path);
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_STUDY_GET, op, &st, err);
	if (code == TT_OK)
		code = read_rows(c, st, row_study, out, op, err);
	if (code != TT_OK) {
		free(out->config);
		out->config = NULL;
		return code;
	}
	if (out->id < 0)
		return db_err(c, err, TT_EINPUT, "%s: holds no study yet", c->path);
	return TT_OK;
}

static int row_fp(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	char **fp = ctx;
	free(*fp);
	*fp = NULL;
	if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		return TT_OK;
	if (!(*fp = strdup(col_text(st, 0))))
		return db_err(c, err, TT_ERUNTIME, "%s: reading the study's fingerprint:"
		              " out of memory", c->path);
	return TT_OK;
}

int db_study_fingerprint(db_conn *c, char **fp, tt_err *err)
{
	const char *op = "reading the study's fingerprint";
	db_study s;
	*fp = NULL;
	int code = db_study_get(c, &s, err);
	free(s.config);
	if (code != TT_OK || c->version < 4)
		return code;
	sqlite3_stmt *st;
	if ((code = read_stmt(c, ST_STUDY_FP_GET, op, &st, err)) == TT_OK)
		code = read_rows(c, st, row_fp, fp, op, err);
	if (code != TT_OK) {
		free(*fp);
		*fp = NULL;
	}
	return code;
}

int db_study_set_fingerprint(db_conn *c, int64_t study, const char *fp, tt_err *err)
{
	struct id_text a = {study, fp, 0};
	int changes = 0;
	int code = write1(c, ST_STUDY_FP_SET, bind_study_state, &a,
	                  "storing the study's fingerprint", &changes, NULL, err);
	if (code == TT_OK && changes == 0)
		return db_err(c, err, TT_EINPUT, "%s: no study %lld", c->path,
		              (long long)study);
	return code;
}

/* ---- trials ---------------------------------------------------------------- */

static int bind_trial_add(sqlite3_stmt *st, const void *arg)
{
	const struct id_text *a = arg;
	int rc = SQLITE_OK;
	double t = tt_clock_wall();
	b_i64(st, 1, a->id, &rc);
	b_text(st, 2, a->text, &rc);
	b_dbl(st, 3, t, &rc);
	b_dbl(st, 4, t, &rc);
	return rc;
}

int db_trial_add(db_conn *c, int64_t study, const char *params_json,
                 int64_t *id, tt_err *err)
{
	if (!params_json)
		return db_err(c, err, TT_EINPUT, "%s: adding a trial: no params",
		              c->path);
	size_t len = strlen(params_json);
	if (len >= sizeof ((db_trial *)0)->params)
		return db_err(c, err, TT_EINPUT,
		              "%s: adding a trial: params are %zu bytes, at most"
		              " %zu fit", c->path, len,
		              sizeof ((db_trial *)0)->params - 1);
	struct id_text a = {study, params_json, 0};
	return write1(c, ST_TRIAL_ADD, bind_trial_add, &a, "adding a trial", NULL,
	              id, err);
}

static int bind_trial_set(sqlite3_stmt *st, const void *arg)
{
	const struct id_text *a = arg;
	int rc = SQLITE_OK;
	b_text(st, 1, a->text, &rc);
	b_i64(st, 2, a->i2, &rc);
	b_dbl(st, 3, tt_clock_wall(), &rc);
	b_i64(st, 4, a->id, &rc);
	return rc;
}

int db_trial_set(db_conn *c, int64_t trial, const char *state, int rung,
                 tt_err *err)
{
	int k = tt_tstate_find(state);
	if (k < 0) {
		char list[128];
		size_t at = 0;
		for (int i = 0; i < TT_T_COUNT; i++)
			at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
			                       i == 0 ? "" : i < TT_T_COUNT - 1 ? ", " : " or ",
			                       tt_tstates[i].name);
		return db_err(c, err, TT_EINPUT, "%s: trial %lld: state '%s': expected %s",
		              c->path, (long long)trial, state ? state : "(null)", list);
	}
	const char *s = tt_tstates[k].name;
	struct id_text a = {trial, s, rung};
	int changes = 0;
	int code = write1(c, ST_TRIAL_SET, bind_trial_set, &a,
	                  "setting a trial's state", &changes, NULL, err);
	if (code == TT_OK && changes == 0)
		return db_err(c, err, TT_EINPUT, "%s: no trial %lld", c->path,
		              (long long)trial);
	return code;
}

/* A params row too long for t->params (written by something other than
 * db_trial_add) costs that row its params only: params stays empty,
 * params_len says how long the text is, and db_trial_params reads it
 * whole.  Failing the read instead would hide every trial read with it. */
static int fill_trial(db_conn *c, sqlite3_stmt *st, db_trial *t, tt_err *err)
{
	(void)c;
	(void)err;
	t->id = sqlite3_column_int64(st, 0);
	const char *p = col_text(st, 1);
	t->params_len = strlen(p);
	if (t->params_len < sizeof t->params)
		memcpy(t->params, p, t->params_len + 1);
	else
		t->params[0] = '\0';
	col_copy(st, 2, t->state, sizeof t->state);
	t->rung = sqlite3_column_int(st, 3);
	t->created_at = sqlite3_column_double(st, 4);
	t->updated_at = sqlite3_column_double(st, 5);
	return TT_OK;
}

static int row_params(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	char **out = ctx;
	free(*out);
	if (!(*out = strdup(col_text(st, 0))))
		return db_err(c, err, TT_ERUNTIME, "%s: reading a trial's params: out of"
		              " memory", c->path);
	return TT_OK;
}

int db_trial_params(db_conn *c, int64_t trial, char **out, tt_err *err)
{
	const char *op = "reading a trial's params";
	*out = NULL;
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_TRIAL_PARAMS, op, &st, err);
	if (code)
		return code;
	sqlite3_bind_int64(st, 1, trial);
	if ((code = read_rows(c, st, row_params, out, op, err)) != TT_OK) {
		free(*out);
		*out = NULL;
		return code;
	}
	if (!*out)
		return db_err(c, err, TT_EINPUT, "%s: no trial %lld", c->path,
		              (long long)trial);
	return TT_OK;
}

static int row_trial_one(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	return fill_trial(c, st, ctx, err);
}

int db_trial_get(db_conn *c, int64_t trial, db_trial *out, tt_err *err)
{
	const char *op = "reading a trial";
	memset(out, 0, sizeof *out);
	out->id = -1;
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_TRIAL_GET, op, &st, err);
	if (code)
		return code;
	sqlite3_bind_int64(st, 1, trial);
	if ((code = read_rows(c, st, row_trial_one, out, op, err)) != TT_OK)
		return code;
	if (out->id < 0)
		return db_err(c, err, TT_EINPUT, "%s: no trial %lld", c->path,
		              (long long)trial);
	return TT_OK;
}

static int row_trials(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_trial *t = rows_next(c, ctx, err);
	return t ? fill_trial(c, st, t, err) : TT_ERUNTIME;
}

int db_trials(db_conn *c, int64_t study, db_trial **out, int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading trials"};
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_TRIALS, r.op, &st, err);
	if (code == TT_OK) {
		sqlite3_bind_int64(st, 1, study);
		code = read_rows(c, st, row_trials, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

static int bind_requeue(sqlite3_stmt *st, const void *arg)
{
	int rc = SQLITE_OK;
	b_dbl(st, 1, tt_clock_wall(), &rc);
	b_i64(st, 2, *(const int64_t *)arg, &rc);
	return rc;
}

int db_trials_requeue(db_conn *c, int64_t study, int *n, tt_err *err)
{
	int changes = 0;
	int code = write1(c, ST_TRIALS_REQUEUE, bind_requeue, &study,
	                  "requeueing running trials", &changes, NULL, err);
	if (n)
		*n = code == TT_OK ? changes : 0;
	return code;
}

/* ---- rungs -------------------------------------------------------------- */

static int bind_rung(sqlite3_stmt *st, const void *arg)
{
	const db_rung *r = arg;
	int rc = SQLITE_OK;
	b_i64(st, 1, r->trial, &rc);
	b_i64(st, 2, r->rung, &rc);
	b_i64(st, 3, r->trainable, &rc);
	b_dbl(st, 4, r->epochs, &rc);
	b_dbl(st, 5, r->val_loss, &rc);
	b_dbl(st, 6, r->val_acc, &rc);
	b_dbl(st, 7, r->seconds, &rc);
	b_i64(st, 8, r->promoted != 0, &rc);
	b_dbl(st, 9, r->train_macs, &rc);
	/* 0 means ungated: stored as NULL (a gated network keeps its head) */
	b_dbl(st, 10, r->macs_kept > 0 ? r->macs_kept : NAN, &rc);
	b_dbl(st, 11, r->params_kept > 0 ? r->params_kept : NAN, &rc);
	return rc;
}

int db_rung_put(db_conn *c, const db_rung *r, tt_err *err)
{
	return write1(c, ST_RUNG_PUT, bind_rung, r, "storing a rung result", NULL,
	              NULL, err);
}

static int bind_trial_rung(sqlite3_stmt *st, const void *arg)
{
	const struct id_text *a = arg;
	int rc = SQLITE_OK;
	b_i64(st, 1, a->id, &rc);
	b_i64(st, 2, a->i2, &rc);
	return rc;
}

int db_rung_promoted(db_conn *c, int64_t trial, int rung, tt_err *err)
{
	struct id_text a = {trial, NULL, rung};
	int changes = 0;
	int code = write1(c, ST_RUNG_PROMOTED, bind_trial_rung, &a,
	                  "marking a rung promoted", &changes, NULL, err);
	if (code == TT_OK && changes == 0)
		return db_err(c, err, TT_EINPUT, "%s: trial %lld has no result"
		              " at rung %d", c->path, (long long)trial, rung);
	return code;
}

static int row_rung(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_rung *r = rows_next(c, ctx, err);
	if (!r)
		return TT_ERUNTIME;
	r->trial = sqlite3_column_int64(st, 0);
	r->rung = sqlite3_column_int(st, 1);
	r->trainable = sqlite3_column_int(st, 2);
	r->epochs = sqlite3_column_double(st, 3);
	r->val_loss = col_dbl(st, 4);
	r->val_acc = col_dbl(st, 5);
	r->seconds = sqlite3_column_double(st, 6);
	r->promoted = sqlite3_column_int(st, 7);
	r->train_macs = sqlite3_column_double(st, 8);
	r->macs_kept = col_dbl(st, 9);
	r->params_kept = col_dbl(st, 10);
	return TT_OK;
}

int db_rungs(db_conn *c, int64_t study, db_rung **out, int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading rung results"};
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_RUNGS, r.op, &st, err);
	if (code == TT_OK) {
		sqlite3_bind_int64(st, 1, study);
		code = read_rows(c, st, row_rung, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

/* ---- metrics ---------------------------------------------------------------- */

int db_metrics_put(db_conn *c, const db_metric *m, int n, tt_err *err)
{
	const char *op = "storing metrics";
	for (int i = 0; i < n; i++)
		if (!lookup(splits, NELEM(splits), m[i].split))
			return db_err(c, err, TT_EINPUT,
			              "%s: %s: split '%s': expected train or val",
			              c->path, op, m[i].split ? m[i].split : "(null)");
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, ST_METRIC_PUT, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	for (int i = 0; i < n; i++) {
		b_i64(st, 1, m[i].trial, &rc);
		b_i64(st, 2, m[i].rung, &rc);
		b_i64(st, 3, m[i].step, &rc);
		b_dbl(st, 4, m[i].epoch, &rc);
		b_text(st, 5, m[i].split, &rc);
		b_dbl(st, 6, m[i].loss, &rc);
		b_dbl(st, 7, m[i].acc, &rc);
		b_dbl(st, 8, m[i].wall_s, &rc);
		if (rc != SQLITE_OK) {
			code = sql_err(c, err, rc, op);
			sqlite3_clear_bindings(st);
			return wr_abort(c, code);
		}
		if (st_run(c, st, err, op, &code) != SQLITE_OK)
			return wr_abort(c, code);
	}
	return wr_end(c, op, err);
}

int db_metric_put(db_conn *c, const db_metric *m, tt_err *err)
{
	return db_metrics_put(c, m, 1, err);
}

static int row_metric(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_metric *m = rows_next(c, ctx, err);
	if (!m)
		return TT_ERUNTIME;
	m->rowid = sqlite3_column_int64(st, 0);
	m->trial = sqlite3_column_int64(st, 1);
	m->rung = sqlite3_column_int(st, 2);
	m->step = (long)sqlite3_column_int64(st, 3);
	m->epoch = sqlite3_column_double(st, 4);
	const char *s = lookup(splits, NELEM(splits), col_text(st, 5));
	m->split = s ? s : "?";
	m->loss = col_dbl(st, 6);
	m->acc = col_dbl(st, 7);
	m->wall_s = sqlite3_column_double(st, 8);
	return TT_OK;
}

int db_metrics_since(db_conn *c, int64_t trial, int64_t after, int max,
                     db_metric **out, int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading metrics"};
	sqlite3_stmt *st;
	int all = trial <= 0;
	int code = read_stmt(c, all ? ST_METRICS_ALL : ST_METRICS_TRIAL, r.op,
	                     &st, err);
	if (code == TT_OK) {
		int i = 1;
		if (!all)
			sqlite3_bind_int64(st, i++, trial);
		sqlite3_bind_int64(st, i++, after);
		sqlite3_bind_int64(st, i, max > 0 ? max : -1);
		code = read_rows(c, st, row_metric, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

/* ---- layer memory ---------------------------------------------------------- */

int db_layer_memory_put(db_conn *c, int64_t trial, int rung,
                        const db_layer_mem *rows, int n, tt_err *err)
{
	const char *op = "storing layer memory";
	for (int i = 0; i < n; i++) {
		if (tt_memkind_find(rows[i].kind) < 0) {
			char list[128];
			size_t at = 0;
			for (int k = 0; k < TT_MEM_KINDS; k++)
				at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
				                       k == 0 ? "" : k < TT_MEM_KINDS - 1 ? ", "
				                                                      : " or ",
				                       tt_memkinds[k].name);
			return db_err(c, err, TT_EINPUT, "%s: %s: kind '%s': expected %s",
			              c->path, op, rows[i].kind ? rows[i].kind : "(null)",
			              list);
		}
		if (!rows[i].name || rows[i].bytes > (size_t)INT64_MAX)
			return db_err(c, err, TT_EINPUT,
			              "%s: %s: stage %d: no name or bytes out of range",
			              c->path, op, rows[i].stage);
	}
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, ST_MEM_PUT, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	for (int i = 0; i < n; i++) {
		b_i64(st, 1, trial, &rc);
		b_i64(st, 2, rung, &rc);
		b_i64(st, 3, rows[i].stage, &rc);
		b_text(st, 4, rows[i].name, &rc);
		b_text(st, 5, rows[i].kind, &rc);
		b_i64(st, 6, (int64_t)rows[i].bytes, &rc);
		b_i64(st, 7, rows[i].frozen != 0, &rc);
		if (rc != SQLITE_OK) {
			code = sql_err(c, err, rc, op);
			sqlite3_clear_bindings(st);
			return wr_abort(c, code);
		}
		if (st_run(c, st, err, op, &code) != SQLITE_OK)
			return wr_abort(c, code);
	}
	return wr_end(c, op, err);
}

/* Layer memory rows are collected with their strings in a side buffer
 * (offsets in off[], two per row) and packed into one block at the end
 * (see db.h: one free). */
struct mem_rows {
	struct rows r;
	char *text;
	size_t tlen, tcap;
	size_t *off;
	int ocap;
};

/* Append s with its NUL to m->text; its offset, or (size_t)-1. */
static size_t text_add(struct mem_rows *m, const char *s)
{
	size_t n = strlen(s) + 1;
	if (m->tlen + n > m->tcap) {
		size_t ncap = m->tcap ? m->tcap : 256;
		while (ncap < m->tlen + n)
			ncap *= 2;
		char *t = realloc(m->text, ncap);
		if (!t)
			return (size_t)-1;
		m->text = t;
		m->tcap = ncap;
	}
	memcpy(m->text + m->tlen, s, n);
	m->tlen += n;
	return m->tlen - n;
}

static int row_mem(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	struct mem_rows *m = ctx;
	int i = m->r.n;
	db_layer_mem *e = rows_next(c, &m->r, err);
	if (!e)
		return TT_ERUNTIME;
	size_t on = (size_t)-1, ok = (size_t)-1;
	void *off = m->off;
	int room = grow(&off, &m->ocap, 2 * i + 1, sizeof *m->off);
	m->off = off;
	if (room && (on = text_add(m, col_text(st, 1))) != (size_t)-1)
		ok = text_add(m, col_text(st, 2));
	if (ok == (size_t)-1)
		return db_err(c, err, TT_ERUNTIME, "%s: %s: out of memory",
		              c->path, m->r.op);
	m->off[2 * i] = on;
	m->off[2 * i + 1] = ok;
	e->stage = sqlite3_column_int(st, 0);
	int64_t b = sqlite3_column_int64(st, 3);
	e->bytes = b > 0 ? (size_t)b : 0;
	e->frozen = sqlite3_column_int(st, 4);
	return TT_OK;
}

int db_layer_memory(db_conn *c, int64_t trial, int rung, db_layer_mem **out,
                    int *n, tt_err *err)
{
	struct mem_rows m = {.r = {.sz = sizeof **out, .op = "reading layer memory"}};
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_MEM_GET, m.r.op, &st, err);
	if (code == TT_OK) {
		sqlite3_bind_int64(st, 1, trial);
		sqlite3_bind_int64(st, 2, rung);
		code = read_rows(c, st, row_mem, &m, m.r.op, err);
	}
	if (code == TT_OK && m.r.n > 0) {
		size_t head = (size_t)m.r.n * sizeof **out;
		db_layer_mem *blk = malloc(head + m.tlen);
		if (!blk) {
			code = db_err(c, err, TT_ERUNTIME, "%s: %s: out of memory",
			              c->path, m.r.op);
		} else {
			char *text = (char *)blk + head;
			memcpy(blk, m.r.p, head);
			memcpy(text, m.text, m.tlen);
			for (int i = 0; i < m.r.n; i++) {
				blk[i].name = text + m.off[2 * i];
				blk[i].kind = text + m.off[2 * i + 1];
			}
			free(m.r.p);
			m.r.p = blk;
		}
	}
	free(m.text);
	free(m.off);
	return rows_done(&m.r, code, (void **)out, n);
}

/* ---- masks ------------------------------------------------------------------ */

int db_masks_put(db_conn *c, int64_t trial, const db_mask *rows, int n,
                 tt_err *err)
{
	const char *op = "storing masks";
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, ST_MASK_PUT, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	for (int i = 0; i < n; i++) {
		b_i64(st, 1, trial, &rc);
		b_i64(st, 2, rows[i].stage, &rc);
		b_i64(st, 3, rows[i].unit, &rc);
		b_dbl(st, 4, rows[i].prob, &rc);
		b_i64(st, 5, rows[i].on != 0, &rc);
		if (rc != SQLITE_OK) {
			code = sql_err(c, err, rc, op);
			sqlite3_clear_bindings(st);
			return wr_abort(c, code);
		}
		if (st_run(c, st, err, op, &code) != SQLITE_OK)
			return wr_abort(c, code);
	}
	return wr_end(c, op, err);
}

static int row_mask(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_mask *m = rows_next(c, ctx, err);
	if (!m)
		return TT_ERUNTIME;
	m->stage = sqlite3_column_int(st, 0);
	m->unit = sqlite3_column_int(st, 1);
	m->prob = col_dbl(st, 2);
	m->on = sqlite3_column_int(st, 3);
	return TT_OK;
}

int db_masks(db_conn *c, int64_t trial, db_mask **out, int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading masks"};
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_MASKS, r.op, &st, err);
	if (code == TT_OK) {
		sqlite3_bind_int64(st, 1, trial);
		code = read_rows(c, st, row_mask, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

/* ---- learned hyperparameters ---------------------------------------------- */

int db_hyper_put(db_conn *c, const db_hyper *h, int n, tt_err *err)
{
	const char *op = "storing learned hyperparameters";
	for (int i = 0; i < n; i++) {
		size_t len = strnlen(h[i].name, DB_HYPER_NAME_MAX);
		if (len == 0 || len >= DB_HYPER_NAME_MAX)
			return db_err(c, err, TT_EINPUT, "%s: %s: trial %lld step %ld: name"
			              " '%.*s%s': expected 1 to %d bytes", c->path, op,
			              (long long)h[i].trial, h[i].step, 32, h[i].name,
			              len > 32 ? "..." : "", DB_HYPER_NAME_MAX - 1);
	}
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, ST_HYPER_PUT, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	for (int i = 0; i < n; i++) {
		b_i64(st, 1, h[i].trial, &rc);
		b_i64(st, 2, h[i].rung, &rc);
		b_i64(st, 3, h[i].step, &rc);
		b_text(st, 4, h[i].name, &rc);
		b_dbl(st, 5, h[i].value, &rc);
		if (rc != SQLITE_OK) {
			code = sql_err(c, err, rc, op);
			sqlite3_clear_bindings(st);
			return wr_abort(c, code);
		}
		if (st_run(c, st, err, op, &code) != SQLITE_OK)
			return wr_abort(c, code);
	}
	return wr_end(c, op, err);
}

/* ---- continual accuracy matrices ----------------------------------------- */

int db_task_acc_put(db_conn *c, const db_task_acc *a, int n, tt_err *err)
{
	const char *op = "storing task accuracies";
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, ST_TASK_ACC_PUT, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	for (int i = 0; i < n; i++) {
		b_i64(st, 1, a[i].trial, &rc);
		b_i64(st, 2, a[i].experience, &rc);
		b_i64(st, 3, a[i].task, &rc);
		b_dbl(st, 4, a[i].acc, &rc);
		if (rc != SQLITE_OK) {
			code = sql_err(c, err, rc, op);
			sqlite3_clear_bindings(st);
			return wr_abort(c, code);
		}
		if (st_run(c, st, err, op, &code) != SQLITE_OK)
			return wr_abort(c, code);
	}
	return wr_end(c, op, err);
}

static int row_task_acc(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_task_acc *a = rows_next(c, ctx, err);
	if (!a)
		return TT_ERUNTIME;
	a->trial = sqlite3_column_int64(st, 0);
	a->experience = sqlite3_column_int(st, 1);
	a->task = sqlite3_column_int(st, 2);
	a->acc = col_dbl(st, 3);
	return TT_OK;
}

int db_task_acc_get(db_conn *c, int64_t trial, db_task_acc **out, int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading task accuracies"};
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_TASK_ACC_TRIAL, r.op, &st, err);
	if (code == TT_OK) {
		sqlite3_bind_int64(st, 1, trial);
		code = read_rows(c, st, row_task_acc, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

/* A row of HYPER_COLS. */
static int row_hyper(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_hyper *h = rows_next(c, ctx, err);
	if (!h)
		return TT_ERUNTIME;
	h->rowid = sqlite3_column_int64(st, 0);
	h->trial = sqlite3_column_int64(st, 1);
	h->rung = sqlite3_column_int(st, 2);
	h->step = (long)sqlite3_column_int64(st, 3);
	col_copy(st, 4, h->name, sizeof h->name);
	h->value = col_dbl(st, 5);
	return TT_OK;
}

int db_hyper_since(db_conn *c, int64_t trial, int64_t after, int max,
                   db_hyper **out, int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading learned hyperparameters"};
	sqlite3_stmt *st;
	int all = trial <= 0;
	int code = read_stmt(c, all ? ST_HYPER_ALL : ST_HYPER_TRIAL, r.op, &st, err);
	if (code == TT_OK) {
		int i = 1;
		if (!all)
			sqlite3_bind_int64(st, i++, trial);
		sqlite3_bind_int64(st, i++, after);
		sqlite3_bind_int64(st, i, max > 0 ? max : -1);
		code = read_rows(c, st, row_hyper, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

/* ---- forecasts -------------------------------------------------------------- */

int db_forecasts_put(db_conn *c, const db_forecast *f, int n, int64_t *at, tt_err *err)
{
	const char *op = "storing forecasts";
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st;
	int rc = st_get(c, ST_FC_NEXT, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	int64_t next = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		next = sqlite3_column_int64(st, 0), rc = SQLITE_OK;
	sqlite3_reset(st);
	if (rc != SQLITE_OK && rc != SQLITE_DONE) {
		code = sql_err(c, err, rc, op);
		return wr_abort(c, code);
	}
	rc = st_get(c, ST_FC_PUT, &st);
	if (rc != SQLITE_OK)
		return wr_fail(c, err, rc, op);
	double now = (double)time(NULL);
	for (int i = 0; i < n; i++) {
		b_i64(st, 1, f[i].trial, &rc);
		b_i64(st, 2, f[i].budget, &rc);
		b_dbl(st, 3, f[i].mu, &rc);
		b_dbl(st, 4, f[i].sd, &rc);
		b_dbl(st, 5, f[i].ei, &rc);
		b_i64(st, 6, f[i].chosen != 0, &rc);
		b_i64(st, 7, next, &rc);
		b_dbl(st, 8, f[i].final_mu, &rc);
		b_dbl(st, 9, f[i].final_sd, &rc);
		b_dbl(st, 10, now, &rc);
		if (rc != SQLITE_OK) {
			code = sql_err(c, err, rc, op);
			sqlite3_clear_bindings(st);
			return wr_abort(c, code);
		}
		if (st_run(c, st, err, op, &code) != SQLITE_OK)
			return wr_abort(c, code);
	}
	if (at)
		*at = next;
	return wr_end(c, op, err);
}

static int row_forecast(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_forecast *f = rows_next(c, ctx, err);
	if (!f)
		return TT_ERUNTIME;
	f->rowid = sqlite3_column_int64(st, 0);
	f->trial = sqlite3_column_int64(st, 1);
	f->budget = sqlite3_column_int(st, 2);
	f->mu = col_dbl(st, 3);
	f->sd = col_dbl(st, 4);
	f->ei = col_dbl(st, 5);
	f->chosen = sqlite3_column_int(st, 6);
	f->at = sqlite3_column_int64(st, 7);
	f->final_mu = col_dbl(st, 8);
	f->final_sd = col_dbl(st, 9);
	f->created_at = col_dbl(st, 10);
	return TT_OK;
}

int db_forecasts_since(db_conn *c, int64_t trial, int64_t after, int max,
                       db_forecast **out, int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading forecasts"};
	sqlite3_stmt *st;
	int all = trial <= 0;
	int code = read_stmt(c, all ? ST_FC_ALL : ST_FC_TRIAL, r.op, &st, err);
	if (code == TT_OK) {
		int i = 1;
		if (!all)
			sqlite3_bind_int64(st, i++, trial);
		sqlite3_bind_int64(st, i++, after);
		sqlite3_bind_int64(st, i, max > 0 ? max : -1);
		code = read_rows(c, st, row_forecast, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

/* ---- rank correlation ----------------------------------------------------- */

struct rc_arg {
	int64_t study;
	db_rank_corr v;
};

static int bind_rc(sqlite3_stmt *st, const void *arg)
{
	const struct rc_arg *a = arg;
	int rc = SQLITE_OK;
	b_i64(st, 1, a->study, &rc);
	b_i64(st, 2, a->v.rung_a, &rc);
	b_i64(st, 3, a->v.rung_b, &rc);
	b_i64(st, 4, a->v.n, &rc);
	b_dbl(st, 5, a->v.spearman, &rc);
	b_dbl(st, 6, a->v.kendall, &rc);
	return rc;
}

int db_rank_corr_put(db_conn *c, int64_t study, int rung_a, int rung_b, int n,
                     double spearman, double kendall, tt_err *err)
{
	struct rc_arg a = {study, {rung_a, rung_b, n, spearman, kendall}};
	return write1(c, ST_RC_PUT, bind_rc, &a, "storing a rank correlation",
	              NULL, NULL, err);
}

static int row_rc(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_rank_corr *r = rows_next(c, ctx, err);
	if (!r)
		return TT_ERUNTIME;
	r->rung_a = sqlite3_column_int(st, 0);
	r->rung_b = sqlite3_column_int(st, 1);
	r->n = sqlite3_column_int(st, 2);
	r->spearman = col_dbl(st, 3);
	r->kendall = col_dbl(st, 4);
	return TT_OK;
}

int db_rank_corr_list(db_conn *c, int64_t study, db_rank_corr **out, int *n,
                      tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading rank correlations"};
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_RC_LIST, r.op, &st, err);
	if (code == TT_OK) {
		sqlite3_bind_int64(st, 1, study);
		code = read_rows(c, st, row_rc, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

/* ---- commands ------------------------------------------------------------- */

static int bind_cmd_add(sqlite3_stmt *st, const void *arg)
{
	const struct id_text *a = arg;
	int rc = SQLITE_OK;
	b_i64(st, 1, a->id, &rc);
	b_text(st, 2, a->text, &rc);
	b_dbl(st, 3, tt_clock_wall(), &rc);
	return rc;
}

int db_command_add(db_conn *c, int64_t trial, const char *verb, int64_t *id,
                   tt_err *err)
{
	const char *v = lookup(verbs, NELEM(verbs), verb);
	if (!v)
		return db_err(c, err, TT_EINPUT,
		              "%s: command '%s': expected promote, kill, pause or"
		              " resume", c->path, verb ? verb : "(null)");
	struct id_text a = {trial, v, 0};
	char op[64];
	snprintf(op, sizeof op, "adding command %s of trial %lld", v,
	         (long long)trial);
	return write1(c, ST_CMD_ADD, bind_cmd_add, &a, op, NULL, id, err);
}

static void fill_command(sqlite3_stmt *st, db_command *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->trial = sqlite3_column_int64(st, 1);
	col_copy(st, 2, m->verb, sizeof m->verb);
	m->issued_at = sqlite3_column_double(st, 3);
	m->done_at = sqlite3_column_double(st, 4);  /* NULL reads as 0 */
	col_copy(st, 5, m->result, sizeof m->result);
}

static int row_command(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	db_command *m = rows_next(c, ctx, err);
	if (!m)
		return TT_ERUNTIME;
	fill_command(st, m);
	return TT_OK;
}

int db_commands_pending(db_conn *c, int64_t after, db_command **out, int *n,
                        tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading pending commands"};
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_CMD_PENDING, r.op, &st, err);
	if (code == TT_OK) {
		sqlite3_bind_int64(st, 1, after);
		code = read_rows(c, st, row_command, &r, r.op, err);
	}
	return rows_done(&r, code, (void **)out, n);
}

static int bind_cmd_done(sqlite3_stmt *st, const void *arg)
{
	const struct id_text *a = arg;
	int rc = SQLITE_OK;
	b_dbl(st, 1, tt_clock_wall(), &rc);
	b_text(st, 2, a->text, &rc);
	b_i64(st, 3, a->id, &rc);
	return rc;
}

int db_command_done(db_conn *c, int64_t id, const char *result, tt_err *err)
{
	char cut[sizeof ((db_command *)0)->result];
	if (result && strlen(result) >= sizeof cut) {
		/* cut at a UTF-8 character boundary: drop continuation bytes */
		size_t n = sizeof cut - 1;
		while (n > 0 && ((unsigned char)result[n] & 0xC0) == 0x80)
			n--;
		memcpy(cut, result, n);
		cut[n] = '\0';
		result = cut;
	}
	struct id_text a = {id, result, 0};
	int changes = 0;
	int code = write1(c, ST_CMD_DONE, bind_cmd_done, &a,
	                  "marking a command done", &changes, NULL, err);
	if (code == TT_OK && changes == 0)
		return db_err(c, err, TT_EINPUT, "%s: no pending command %lld",
		              c->path, (long long)id);
	return code;
}

static int row_command_one(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	(void)c;
	(void)err;
	fill_command(st, ctx);
	return TT_OK;
}

int db_command_get(db_conn *c, int64_t id, db_command *out, tt_err *err)
{
	const char *op = "reading a command";
	memset(out, 0, sizeof *out);
	out->id = -1;
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_CMD_GET, op, &st, err);
	if (code)
		return code;
	sqlite3_bind_int64(st, 1, id);
	if ((code = read_rows(c, st, row_command_one, out, op, err)) != TT_OK)
		return code;
	if (out->id < 0)
		return db_err(c, err, TT_EINPUT, "%s: no command %lld", c->path,
		              (long long)id);
	return TT_OK;
}

/* ---- checkpoints ------------------------------------------------------------ */

struct ckpt_arg {
	int64_t trial;
	int rung;
	long step;
	const void *blob;
	size_t len;
};

static int bind_ckpt(sqlite3_stmt *st, const void *arg)
{
	const struct ckpt_arg *a = arg;
	int rc = SQLITE_OK;
	b_i64(st, 1, a->trial, &rc);
	b_i64(st, 2, a->rung, &rc);
	b_i64(st, 3, a->step, &rc);
	/* Why "" for an empty blob: a NULL pointer would bind SQL NULL. */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob64(st, 4, a->len ? a->blob : "",
		                         (sqlite3_uint64)a->len, SQLITE_STATIC);
	b_dbl(st, 5, tt_clock_wall(), &rc);
	return rc;
}

int db_checkpoint_put(db_conn *c, int64_t trial, int rung, long step,
                      const void *blob, size_t len, tt_err *err)
{
	if (!blob && len)
		return db_err(c, err, TT_EINPUT, "%s: checkpoint of trial %lld:"
		              " no data", c->path, (long long)trial);
	struct ckpt_arg a = {trial, rung, step, blob, len};
	char op[80];
	snprintf(op, sizeof op, "storing the checkpoint of trial %lld rung %d",
	         (long long)trial, rung);
	return write1(c, ST_CKPT_PUT, bind_ckpt, &a, op, NULL, NULL, err);
}

struct ckpt_out {
	long step;
	void *blob;
	size_t len;
	int found;
};

static int row_ckpt(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	struct ckpt_out *o = ctx;
	o->step = (long)sqlite3_column_int64(st, 0);
	const void *p = sqlite3_column_blob(st, 1);
	int len = sqlite3_column_bytes(st, 1);
	if (len > 0 && !p)
		return db_err(c, err, TT_ERUNTIME, "%s: reading a checkpoint: %s",
		              c->path, sqlite3_errmsg(c->db));
	o->blob = malloc(len > 0 ? (size_t)len : 1);
	if (!o->blob)
		return db_err(c, err, TT_ERUNTIME, "%s: reading a checkpoint of"
		              " %d bytes: out of memory", c->path, len);
	if (len > 0)
		memcpy(o->blob, p, (size_t)len);
	o->len = (size_t)len;
	o->found = 1;
	return TT_OK;
}

int db_checkpoint_get(db_conn *c, int64_t trial, int rung, long *step,
                      void **blob, size_t *len, tt_err *err)
{
	const char *op = "reading a checkpoint";
	struct ckpt_out o = {-1, NULL, 0, 0};
	*step = -1;
	*blob = NULL;
	*len = 0;
	sqlite3_stmt *st;
	int code = read_stmt(c, ST_CKPT_GET, op, &st, err);
	if (code)
		return code;
	sqlite3_bind_int64(st, 1, trial);
	sqlite3_bind_int64(st, 2, rung);
	code = read_rows(c, st, row_ckpt, &o, op, err);
	if (code != TT_OK) {
		free(o.blob);
		return code;
	}
	if (o.found) {
		*step = o.step;
		*blob = o.blob;
		*len = o.len;
	}
	return TT_OK;
}

int db_checkpoints_prune(db_conn *c, int continue_mode, int top_rung, int keep_best,
                         int *deleted, tt_err *err)
{
	static const char sql[] =
		"DELETE FROM checkpoints WHERE rowid IN ("
		" SELECT c.rowid FROM checkpoints c JOIN trials t ON t.id = c.trial_id"
		" LEFT JOIN rungs r ON r.trial_id = c.trial_id AND r.rung = c.rung"
		" WHERE (r.trial_id IS NOT NULL"
		"        OR t.state IN ('killed', 'diverged', 'failed'))"
		/* the start of a promotion still to come (continue mode) */
		"  AND NOT (?1 AND r.trial_id IS NOT NULL AND c.rung < ?2"
		"           AND t.state NOT IN ('killed', 'diverged', 'failed')"
		"           AND NOT EXISTS (SELECT 1 FROM rungs n WHERE"
		"                n.trial_id = c.trial_id AND n.rung = c.rung + 1))"
		/* among the best of its rung */
		"  AND NOT (r.val_acc IS NOT NULL AND (SELECT count(*) FROM rungs b"
		"           WHERE b.rung = r.rung AND b.val_acc > r.val_acc) < ?3))";
	const char *op = "pruning checkpoints";
	if (deleted)
		*deleted = 0;
	int code = wr_begin(c, op, err);
	if (code)
		return code;
	sqlite3_stmt *st = NULL;
	int rc = w_prepare(c, sql, 0, &st);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return wr_fail(c, err, rc, op);
	}
	sqlite3_bind_int(st, 1, continue_mode != 0);
	sqlite3_bind_int(st, 2, top_rung);
	sqlite3_bind_int(st, 3, keep_best);
	rc = st_run(c, st, err, op, &code);
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return wr_abort(c, code);
	if (deleted)
		*deleted = sqlite3_changes(c->db);
	return wr_end(c, op, err);
}

/* ==== polling reads for the explorer ======================================
 *
 * The explorer polls every few hundred milliseconds for what changed, so
 * each read below touches only new rows: by rowid (rung results, which
 * INSERT OR REPLACE gives a fresh rowid when rewritten), by id (commands)
 * or by updated_at (trials).  They are not cached statements: a poll
 * prepares a handful of statements at most, and keeping this section
 * separate leaves the statement table above untouched.
 */

/* Prepare sql (uncached), let bind fill the parameters, run row over
 * every result row, finalize. */
static int poll_read(db_conn *c, const char *sql, const int64_t *i64, int ni,
                     const double *dbl, int nd, row_fn row, void *ctx,
                     const char *op, tt_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = w_prepare(c, sql, 0, &st);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return sql_err(c, err, rc, op);
	}
	/* integers bind first (1..ni), doubles after them */
	for (int i = 0; i < ni; i++)
		sqlite3_bind_int64(st, i + 1, i64[i]);
	for (int i = 0; i < nd; i++)
		sqlite3_bind_double(st, ni + i + 1, dbl[i]);
	int code = read_rows(c, st, row, ctx, op, err);
	sqlite3_finalize(st);
	return code;
}

static int row_i64(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	(void)c;
	(void)err;
	*(int64_t *)ctx = sqlite3_column_int64(st, 0);
	return TT_OK;
}

int db_data_version(db_conn *c, int64_t *v, tt_err *err)
{
	*v = 0;
	return poll_read(c, "PRAGMA data_version", NULL, 0, NULL, 0, row_i64, v,
	                 "reading the data version", err);
}

int db_trials_since(db_conn *c, int64_t study, double after, db_trial **out,
                    int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading changed trials"};
	int code = poll_read(c, "SELECT " TRIAL_COLS " FROM trials"
	                     " WHERE study_id = ? AND updated_at > ? ORDER BY id",
	                     &study, 1, &after, 1, row_trials, &r, r.op, err);
	return rows_done(&r, code, (void **)out, n);
}

int db_trials_from(db_conn *c, int64_t study, int64_t after, db_trial **out, int *n,
                   tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading new trials"};
	int64_t a[2] = {study, after};
	int code = poll_read(c, "SELECT " TRIAL_COLS " FROM trials"
	                     " WHERE study_id = ? AND id > ? ORDER BY id",
	                     a, 2, NULL, 0, row_trials, &r, r.op, err);
	return rows_done(&r, code, (void **)out, n);
}

/* row_rung's rows plus the largest rowid seen (column 9). */
struct rung_rows {
	struct rows r;  /* first: row_rung takes this as its struct rows */
	int64_t last;
};

static int row_rung_id(db_conn *c, sqlite3_stmt *st, void *ctx, tt_err *err)
{
	struct rung_rows *rr = ctx;
	int code = row_rung(c, st, &rr->r, err);
	int64_t id = sqlite3_column_int64(st, 11);
	if (code == TT_OK && id > rr->last)
		rr->last = id;
	return code;
}

#define RUNG_COLS_R "r.trial_id, r.rung, r.trainable, r.epochs, r.val_loss," \
                    " r.val_acc, r.seconds, r.promoted, r.train_macs," \
                    " r.macs_kept, r.params_kept, r.rowid"

int db_rungs_since(db_conn *c, int64_t study, int64_t after, int64_t *last,
                   db_rung **out, int *n, tt_err *err)
{
	struct rung_rows rr = {{.sz = sizeof **out, .op = "reading new rung results"},
	                       after};
	int64_t a[2] = {after, study};
	int code = poll_read(c, "SELECT " RUNG_COLS_R " FROM rungs r"
	                     " JOIN trials t ON t.id = r.trial_id"
	                     " WHERE r.rowid > ? AND t.study_id = ? ORDER BY r.rowid",
	                     a, 2, NULL, 0, row_rung_id, &rr, rr.r.op, err);
	*last = code == TT_OK ? rr.last : after;
	return rows_done(&rr.r, code, (void **)out, n);
}

int db_rungs_of(db_conn *c, int64_t trial, db_rung **out, int *n, tt_err *err)
{
	struct rung_rows rr = {{.sz = sizeof **out, .op = "reading a trial's rungs"}, 0};
	int code = poll_read(c, "SELECT " RUNG_COLS_R " FROM rungs r"
	                     " WHERE r.trial_id = ? ORDER BY r.rung",
	                     &trial, 1, NULL, 0, row_rung_id, &rr, rr.r.op, err);
	return rows_done(&rr.r, code, (void **)out, n);
}

int db_commands_since(db_conn *c, int64_t after, db_command **out, int *n,
                      tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading new commands"};
	int code = poll_read(c, "SELECT " CMD_COLS " FROM commands WHERE id > ?"
	                     " ORDER BY id", &after, 1, NULL, 0, row_command, &r,
	                     r.op, err);
	return rows_done(&r, code, (void **)out, n);
}

int db_commands_of(db_conn *c, int64_t trial, db_command **out, int *n,
                   tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading a trial's commands"};
	int code = poll_read(c, "SELECT " CMD_COLS " FROM commands WHERE trial_id = ?"
	                     " ORDER BY id", &trial, 1, NULL, 0, row_command, &r,
	                     r.op, err);
	return rows_done(&r, code, (void **)out, n);
}

int db_size(db_conn *c, int64_t *file_bytes, int64_t *ckpt_bytes, int *nckpt,
            tt_err *err)
{
	int64_t pages = 0, psize = 0, n = 0;
	*file_bytes = *ckpt_bytes = 0;
	*nckpt = 0;
	int code = poll_read(c, "PRAGMA page_count", NULL, 0, NULL, 0, row_i64, &pages,
	                     "measuring the database", err);
	if (!code)
		code = poll_read(c, "PRAGMA page_size", NULL, 0, NULL, 0, row_i64, &psize,
		                 "measuring the database", err);
	if (!code)
		code = poll_read(c, "SELECT count(*) FROM checkpoints", NULL, 0, NULL, 0,
		                 row_i64, &n, "measuring the checkpoints", err);
	if (!code)
		code = poll_read(c, "SELECT total(length(blob)) FROM checkpoints", NULL, 0,
		                 NULL, 0, row_i64, ckpt_bytes, "measuring the checkpoints", err);
	*file_bytes = pages * psize;
	*nckpt = (int)n;
	return code;
}

/*
 * Why the bound read first: rows committed between the two statements
 * would otherwise be passed over by the next poll (after = a rowid larger
 * than theirs) without being grouped here.  Why one max(), over rung and
 * step: SQLite takes the bare columns of a group (rowid included) from the
 * row of its single max() aggregate, the latest point; steps stay far
 * below 2^32.
 */
int db_hyper_latest(db_conn *c, int64_t after, int64_t *last, db_hyper **out,
                    int *n, tt_err *err)
{
	struct rows r = {.sz = sizeof **out, .op = "reading learned hyperparameters"};
	int64_t top = after;
	*last = after;
	int code = poll_read(c, "SELECT coalesce(max(rowid), 0) FROM hyper", NULL, 0,
	                     NULL, 0, row_i64, &top, r.op, err);
	if (code == TT_OK && top > after) {
		int64_t a[2] = {after, top};
		code = poll_read(c, "SELECT rowid, trial_id, rung, step, name, value,"
		                 " max(rung * 4294967296 + step) FROM hyper"
		                 " WHERE rowid > ? AND rowid <= ? GROUP BY trial_id, name",
		                 a, 2, NULL, 0, row_hyper, &r, r.op, err);
	}
	if (code == TT_OK && top > after)
		*last = top;
	return rows_done(&r, code, (void **)out, n);
}

int db_masks_exist(db_conn *c, int *yes, tt_err *err)
{
	int64_t v = 0;
	int code = poll_read(c, "SELECT EXISTS (SELECT 1 FROM masks)", NULL, 0, NULL,
	                     0, row_i64, &v, "looking for masks", err);
	*yes = code == TT_OK && v != 0;
	return code;
}
