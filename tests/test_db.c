/*
 * test_db.c — the study database (db.c): the schema contract, round trips
 * of every read and write, migrations and files that are not ours, fault
 * injection at every SQLite call of a write transaction, and three threads
 * writing, polling and commanding at once.
 *
 * Files live in a mkdtemp directory, removed at the end.  Expectations
 * about the file itself (version, application_id, WAL, columns, integrity)
 * are checked through a separate raw SQLite connection, the way a user's
 * `sqlite3 study.db` would see them.
 */
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "tstate.h"
#include "test.h"

static char tmpdir[64];

static void tpath(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* rc must be TT_OK; the message otherwise. */
#define OK(expr)                                                           \
	do {                                                               \
		int rc_ = (expr);                                          \
		CHECK(rc_ == TT_OK, "rc %d: %s", rc_, err.msg);            \
	} while (0)

/* rc must be code and the message must contain text. */
#define FAILS(expr, code, text)                                            \
	do {                                                               \
		err.msg[0] = '\0';                                         \
		int rc_ = (expr);                                          \
		CHECK(rc_ == (code), "rc %d, expected %d: %s", rc_,        \
		      (code), err.msg);                                    \
		CHECK(strstr(err.msg, (text)) != NULL,                     \
		      "message '%s' lacks '%s'", err.msg, (text));         \
	} while (0)

/* ---- raw SQLite, as a user's sqlite3 shell sees the file --------------- */

static void rm_db(const char *path)
{
	char p[600];
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

/* Run sql (several statements allowed) on path; 0 on success. */
static int raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "  raw_exec %s: %s\n", path, msg);
	sqlite3_free(msg);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The first column of the first row of sql as text into out ("" when no
 * row, "ERR: ..." on failure). */
static void raw_text(const char *path, const char *sql, char *out, size_t cap)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	snprintf(out, cap, "ERR");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			snprintf(out, cap, "%s", t ? (const char *)t : "NULL");
		} else if (rc == SQLITE_DONE) {
			out[0] = '\0';
		} else {
			snprintf(out, cap, "ERR: %s", sqlite3_errmsg(db));
		}
	} else {
		snprintf(out, cap, "ERR: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static long long raw_int(const char *path, const char *sql)
{
	char buf[256];
	raw_text(path, sql, buf, sizeof buf);
	if (strncmp(buf, "ERR", 3) == 0) {
		fprintf(stderr, "  raw_int '%s': %s\n", sql, buf);
		return -999;
	}
	return atoll(buf);
}

/* The whole query plan of sql, one detail per line, into out. */
static void raw_plan(const char *path, const char *sql, char *out, size_t cap)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	char q[512];
	snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
	out[0] = '\0';
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
		size_t n = 0;
		while (sqlite3_step(st) == SQLITE_ROW && n < cap)
			n += (size_t)snprintf(out + n, cap - n, "%s\n",
			                      (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static int write_file(const char *path, const void *buf, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(buf, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static void *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *buf = malloc(len > 0 ? (size_t)len : 1);
	if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*n = (size_t)len;
	return buf;
}

/* ---- 1. the schema contract ------------------------------------------------ */

/* design.md's tables and columns, plus what db.h adds beside them. */
static const struct {
	const char *table;
	const char *cols;
} contract[] = {
	{"studies", "id name config seed created_at state"},
	{"trials", "id study_id params state rung created_at updated_at"},
	{"rungs", "trial_id rung trainable epochs val_loss val_acc seconds"
	          " promoted train_macs"},
	{"metrics", "trial_id rung step epoch split loss acc wall_s"},
	{"layer_memory", "trial_id rung stage name kind bytes frozen"},
	{"masks", "trial_id stage unit prob on"},
	{"rank_corr", "study_id rung_a rung_b n spearman kendall"},
	{"commands", "id trial_id verb issued_at done_at result"},
	{"checkpoints", "trial_id rung step blob created_at"},
	{"hyper", "trial_id rung step name value"},
	{"task_acc", "trial_id experience task acc"},
};

/* Every contract column of every table is in the file at path. */
static void check_contract(const char *path)
{
	for (size_t t = 0; t < sizeof contract / sizeof contract[0]; t++) {
		char cols[256];
		snprintf(cols, sizeof cols, "%s", contract[t].cols);
		for (char *save, *col = strtok_r(cols, " ", &save); col;
		     col = strtok_r(NULL, " ", &save)) {
			char sql[256];
			snprintf(sql, sizeof sql,
			         "SELECT count(*) FROM pragma_table_info('%s')"
			         " WHERE name = '%s'", contract[t].table, col);
			CHECK(raw_int(path, sql) == 1, "%s: no column %s.%s", path,
			      contract[t].table, col);
		}
	}
}

static void test_schema(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "schema.db");
	db_conn *c = NULL;
	OK(db_open(path, DB_CREATE, &c, &err));
	CHECK(c && strcmp(db_path(c), path) == 0, "db_path");
	db_close(c);
	c = NULL;
	OK(db_open(path, 0, &c, &err));
	db_close(c);
	db_close(NULL);

	CHECK(raw_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	      "user_version");
	CHECK(raw_int(path, "PRAGMA application_id") == DB_APPLICATION_ID,
	      "application_id");
	char mode[64];
	raw_text(path, "PRAGMA journal_mode", mode, sizeof mode);
	CHECK(strcmp(mode, "wal") == 0, "journal_mode %s", mode);
	check_contract(path);
	static const char *const indexes[] = {
		"metrics_by_step", "metrics_by_trial", "commands_pending",
		"trials_by_study", "hyper_by_trial",
	};
	for (int i = 0; i < 5; i++) {
		char sql[160];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master"
		         " WHERE type = 'index' AND name = '%s'", indexes[i]);
		CHECK(raw_int(path, sql) == 1, "no index %s", indexes[i]);
	}
	/* the polls the explorer and engine make use those indexes */
	char plan[1024];
	raw_plan(path, "SELECT * FROM commands WHERE done_at IS NULL AND id > 5"
	         " ORDER BY id", plan, sizeof plan);
	CHECK(strstr(plan, "commands_pending") != NULL, "pending plan: %s", plan);
	raw_plan(path, "SELECT rowid, * FROM metrics WHERE trial_id = 3 AND"
	         " rowid > 10 ORDER BY rowid", plan, sizeof plan);
	CHECK(strstr(plan, "metrics_by_trial") && !strstr(plan, "TEMP B-TREE"),
	      "metrics poll plan: %s", plan);
	raw_plan(path, "SELECT * FROM metrics WHERE trial_id = 3 AND rung = 1"
	         " ORDER BY step", plan, sizeof plan);
	CHECK(strstr(plan, "metrics_by_step") && !strstr(plan, "TEMP B-TREE"),
	      "metrics curve plan: %s", plan);
	raw_plan(path, "SELECT rowid, * FROM hyper WHERE trial_id = 3 AND"
	         " rowid > 10 ORDER BY rowid", plan, sizeof plan);
	CHECK(strstr(plan, "hyper_by_trial") && !strstr(plan, "TEMP B-TREE"),
	      "hyper path poll plan: %s", plan);
	/* per-connection settings of db_open: foreign keys are enforced */
	c = NULL;
	OK(db_open(path, 0, &c, &err));
	int64_t id;
	if (c)
		FAILS(db_command_add(c, 12345, "kill", &id, &err), TT_EINPUT,
		      "FOREIGN KEY");
	db_close(c);
}

/* ---- 2. round trips ------------------------------------------------------ */

static void test_roundtrip(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "rt.db");
	db_conn *c = NULL;
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;

	/* studies */
	int64_t study = 0, again = 0;
	const char *config = "[study]\nname = rt\nseed = 7\n";
	OK(db_study_ensure(c, "rt", config, 0xFEEDFACECAFEBEEFull, &study, &err));
	OK(db_study_ensure(c, "other", "", 1, &again, &err));
	CHECK(study > 0 && again == study, "one study per database");
	db_study s = {0};
	OK(db_study_get(c, &s, &err));
	CHECK(s.id == study && strcmp(s.name, "rt") == 0 && s.config &&
	      strcmp(s.config, config) == 0 && s.seed == 0xFEEDFACECAFEBEEFull &&
	      strcmp(s.state, "running") == 0 && s.created_at > 1.6e9,
	      "study row %s %s", s.name, s.state);
	free(s.config);
	OK(db_study_set_state(c, study, "done", &err));
	FAILS(db_study_set_state(c, study, "finished", &err), TT_EINPUT,
	      "expected running or done");
	FAILS(db_study_set_state(c, study + 9, "done", &err), TT_EINPUT,
	      "no study");
	OK(db_study_get(c, &s, &err));
	CHECK(strcmp(s.state, "done") == 0, "study state %s", s.state);
	free(s.config);

	/* trials: every state, params stored as given */
	static const char *const states[] = {
		"queued", "running", "paused", "done", "killed", "diverged", "failed",
	};
	int64_t tid[7];
	/* the one table of states (base/tstate.h) is this contract */
	CHECK(TT_T_COUNT == 7, "%d states", TT_T_COUNT);
	for (int i = 0; i < 7 && i < TT_T_COUNT; i++)
		CHECK(strcmp(tt_tstates[i].name, states[i]) == 0, "state %d: %s", i,
		      tt_tstates[i].name);
	double t0 = (double)time(NULL) - 1;
	for (int i = 0; i < 7; i++) {
		char params[128];
		snprintf(params, sizeof params,
		         "{\"lr\": %d.5e-3, \"opt\": \"sgd\", \"note\": \"\xc3\xa9\\n\"}",
		         i);
		OK(db_trial_add(c, study, params, &tid[i], &err));
		OK(db_trial_set(c, tid[i], states[i], i % 3, &err));
		db_trial t;
		OK(db_trial_get(c, tid[i], &t, &err));
		CHECK(t.id == tid[i] && strcmp(t.params, params) == 0 &&
		      strcmp(t.state, states[i]) == 0 && t.rung == i % 3 &&
		      t.created_at >= t0 && t.updated_at >= t.created_at,
		      "trial %d: %s %s %d", i, t.params, t.state, t.rung);
	}
	FAILS(db_trial_set(c, tid[0], "sleeping", 0, &err), TT_EINPUT,
	      "expected queued");
	FAILS(db_trial_set(c, 999, "done", 0, &err), TT_EINPUT, "no trial 999");
	db_trial tt;
	FAILS(db_trial_get(c, 999, &tt, &err), TT_EINPUT, "no trial 999");
	char big[1100];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	int64_t bid;
	FAILS(db_trial_add(c, study, big, &bid, &err), TT_EINPUT, "at most 1023");
	db_trial *ts = NULL;
	int nt = 0;
	OK(db_trials(c, study, &ts, &nt, &err));
	CHECK(nt == 7, "%d trials", nt);
	for (int i = 0; i < nt && i < 7; i++)
		CHECK(ts[i].id == tid[i] && strcmp(ts[i].state, states[i]) == 0,
		      "trial list order %d", i);
	free(ts);
	int requeued = -1;
	OK(db_trials_requeue(c, study, &requeued, &err));
	CHECK(requeued == 1, "requeued %d", requeued);
	OK(db_trial_get(c, tid[1], &tt, &err));
	CHECK(strcmp(tt.state, "queued") == 0, "requeued state %s", tt.state);

	/* rungs, NaN included; a second put replaces */
	db_rung r0 = {tid[0], 0, 2, 1.0, 0.75, 0.61, 3.5, 0, 1.5e9, 0.4, 0.25};
	db_rung r1 = {tid[0], 1, 4, 3.0, NAN, 0.0, 9.25, 0, 4.5e9, 0, 0};
	db_rung r2 = {tid[1], 0, 2, 1.0, 0.5, 0.7, 2.0, 1, 2.5e9, NAN, NAN};
	OK(db_rung_put(c, &r0, &err));
	OK(db_rung_put(c, &r1, &err));
	OK(db_rung_put(c, &r2, &err));
	r0.val_loss = 0.70;
	OK(db_rung_put(c, &r0, &err));
	OK(db_rung_promoted(c, tid[0], 0, &err));
	FAILS(db_rung_promoted(c, tid[0], 5, &err), TT_EINPUT, "no result");
	db_rung *rs = NULL;
	int nr = 0;
	OK(db_rungs(c, study, &rs, &nr, &err));
	CHECK(nr == 3, "%d rungs", nr);
	if (nr == 3) {
		CHECK(rs[0].trial == tid[0] && rs[0].rung == 0 &&
		      rs[0].trainable == 2 && rs[0].val_loss == 0.70 &&
		      rs[0].val_acc == 0.61 && rs[0].promoted == 1 &&
		      rs[0].seconds == 3.5 && rs[0].train_macs == 1.5e9,
		      "rung 0 %g %d", rs[0].val_loss, rs[0].promoted);
		CHECK(rs[1].rung == 1 && isnan(rs[1].val_loss) &&
		      rs[1].val_acc == 0.0 && rs[1].epochs == 3.0 &&
		      rs[1].promoted == 0, "rung 1: NaN loss reads %g",
		      rs[1].val_loss);
		CHECK(rs[2].trial == tid[1] && rs[2].promoted == 1, "rung 2");
		/* what a gated trial kept; 0 and NaN both mean ungated */
		CHECK(rs[0].macs_kept == 0.4 && rs[0].params_kept == 0.25,
		      "kept %g %g", rs[0].macs_kept, rs[0].params_kept);
		CHECK(isnan(rs[1].macs_kept) && isnan(rs[1].params_kept) &&
		      isnan(rs[2].macs_kept), "ungated reads NaN: %g %g",
		      rs[1].macs_kept, rs[2].macs_kept);
	}
	free(rs);

	/* metrics: one, a batch, polling by rowid, per trial and for all */
	db_metric m1 = {tid[0], 0, 10, 0.1, "train", 2.3, 0.1, 1.5, 0};
	OK(db_metric_put(c, &m1, &err));
	db_metric batch[30];
	for (int i = 0; i < 30; i++)
		batch[i] = (db_metric){tid[i % 2], i % 3, 20 + i, 0.2 + i * 0.01,
		                       i % 2 ? "val" : "train",
		                       i == 7 ? NAN : 2.0 - i * 0.01, 0.2 + i * 0.01,
		                       2.0 + i, 0};
	OK(db_metrics_put(c, batch, 30, &err));
	db_metric bad = m1;
	bad.split = "test";
	FAILS(db_metric_put(c, &bad, &err), TT_EINPUT, "expected train or val");
	db_metric *ms = NULL;
	int nm = 0;
	OK(db_metrics_since(c, 0, 0, 0, &ms, &nm, &err));
	CHECK(nm == 31, "%d metrics", nm);
	for (int i = 1; i < nm; i++) {
		const db_metric *e = &batch[i - 1], *g = &ms[i];
		CHECK(g->rowid > ms[i - 1].rowid && g->trial == e->trial &&
		      g->rung == e->rung && g->step == e->step &&
		      g->epoch == e->epoch && strcmp(g->split, e->split) == 0 &&
		      (isnan(e->loss) ? isnan(g->loss) : g->loss == e->loss) &&
		      g->acc == e->acc && g->wall_s == e->wall_s,
		      "metric %d differs", i);
	}
	int64_t mid = nm > 10 ? ms[10].rowid : 0;
	free(ms);
	OK(db_metrics_since(c, 0, mid, 5, &ms, &nm, &err));
	CHECK(nm == 5 && ms[0].rowid == mid + 1, "limit: %d rows", nm);
	free(ms);
	OK(db_metrics_since(c, tid[1], 0, 0, &ms, &nm, &err));
	CHECK(nm == 15, "trial 2 has %d metrics", nm);
	for (int i = 0; i < nm; i++)
		CHECK(ms[i].trial == tid[1] && strcmp(ms[i].split, "val") == 0,
		      "trial filter");
	int64_t last = nm ? ms[nm - 1].rowid : 0;
	free(ms);
	OK(db_metrics_since(c, tid[1], last, 0, &ms, &nm, &err));
	CHECK(nm == 0, "nothing new: %d", nm);
	free(ms);
	/* a resumed run writes points it stored before: skipped, not doubled
	 * (the first value stays); a new step or the other split is written */
	db_metric twice[3] = { batch[1], batch[1], batch[1] };
	twice[0].loss = 99;
	twice[1].split = "train";
	twice[2].step = 1000;
	OK(db_metrics_put(c, twice, 3, &err));
	OK(db_metrics_since(c, tid[1], last, 0, &ms, &nm, &err));
	CHECK(nm == 2 && ms[0].step == batch[1].step && strcmp(ms[0].split, "train") == 0 &&
	      ms[1].step == 1000, "points stored again: %d new rows", nm);
	free(ms);
	OK(db_metrics_since(c, tid[1], 0, 0, &ms, &nm, &err));
	CHECK(nm == 17 && ms[0].loss == batch[1].loss, "%d points, first loss %g", nm,
	      nm ? ms[0].loss : -1.0);
	free(ms);

	/* layer memory: strings come back in the same block; replace by key */
	db_layer_mem mem[] = {
		{0, "stem", "params", 1728, 1},
		{0, "stem", "activations", 0, 1},
		{1, "block1", "params", 36864, 0},
		{1, "block1", "grads", 36864, 0},
		{1, "block1", "optim", 73728, 0},
		{2, "head", "workspace", (size_t)5 << 32, 0},
	};
	OK(db_layer_memory_put(c, tid[0], 1, mem, 6, &err));
	mem[3].bytes = 40000;
	OK(db_layer_memory_put(c, tid[0], 1, &mem[3], 1, &err));
	db_layer_mem badm = {0, "x", "heap", 1, 0};
	FAILS(db_layer_memory_put(c, tid[0], 1, &badm, 1, &err), TT_EINPUT,
	      "expected params");
	db_layer_mem *lm = NULL;
	int nl = 0;
	OK(db_layer_memory(c, tid[0], 1, &lm, &nl, &err));
	CHECK(nl == 6, "%d memory rows", nl);
	for (int i = 0; i < nl && i < 6; i++) {
		/* rows of a stage in put order; the replaced row came last */
		int j = i == 3 ? 4 : i == 4 ? 3 : i;
		CHECK(lm[i].stage == mem[j].stage &&
		      strcmp(lm[i].name, mem[j].name) == 0 &&
		      strcmp(lm[i].kind, mem[j].kind) == 0 &&
		      lm[i].bytes == mem[j].bytes && lm[i].frozen == mem[j].frozen,
		      "memory row %d: %d %s %s %zu", i, lm[i].stage, lm[i].name,
		      lm[i].kind, lm[i].bytes);
	}
	free(lm);
	OK(db_layer_memory(c, tid[0], 7, &lm, &nl, &err));
	CHECK(nl == 0, "no memory at rung 7");
	free(lm);

	/* masks */
	db_mask mk[] = {{1, -1, 0.9, 1}, {1, 0, 0.2, 0}, {1, 1, 0.8, 1},
	                {0, 3, 0.55, 1}};
	OK(db_masks_put(c, tid[2], mk, 4, &err));
	mk[1].on = 1;
	mk[1].prob = 0.6;
	OK(db_masks_put(c, tid[2], &mk[1], 1, &err));
	db_mask *gm = NULL;
	int ng = 0;
	OK(db_masks(c, tid[2], &gm, &ng, &err));
	CHECK(ng == 4, "%d masks", ng);
	if (ng == 4)
		CHECK(gm[0].stage == 0 && gm[0].unit == 3 && gm[1].unit == -1 &&
		      gm[2].unit == 0 && gm[2].on == 1 && gm[2].prob == 0.6 &&
		      gm[3].prob == 0.8, "mask order and replace");
	free(gm);

	/* rank correlation */
	OK(db_rank_corr_put(c, study, 0, 1, 12, 0.81, 0.64, &err));
	OK(db_rank_corr_put(c, study, 1, 2, 1, NAN, NAN, &err));
	OK(db_rank_corr_put(c, study, 0, 1, 14, 0.83, 0.66, &err));
	db_rank_corr *rc = NULL;
	int nrc = 0;
	OK(db_rank_corr_list(c, study, &rc, &nrc, &err));
	CHECK(nrc == 2, "%d correlations", nrc);
	if (nrc == 2)
		CHECK(rc[0].rung_a == 0 && rc[0].rung_b == 1 && rc[0].n == 14 &&
		      rc[0].spearman == 0.83 && rc[0].kendall == 0.66 &&
		      rc[1].n == 1 && isnan(rc[1].spearman) && isnan(rc[1].kendall),
		      "correlations");
	free(rc);

	/* commands: pending -> done */
	int64_t cid[4];
	static const char *const verbs[] = {"promote", "kill", "pause", "resume"};
	for (int i = 0; i < 4; i++)
		OK(db_command_add(c, tid[i], verbs[i], &cid[i], &err));
	FAILS(db_command_add(c, tid[0], "explode", &cid[0], &err), TT_EINPUT,
	      "expected promote");
	db_command *cs = NULL;
	int nc = 0;
	OK(db_commands_pending(c, 0, &cs, &nc, &err));
	CHECK(nc == 4, "%d pending", nc);
	for (int i = 0; i < nc && i < 4; i++)
		CHECK(cs[i].id == cid[i] && cs[i].trial == tid[i] &&
		      strcmp(cs[i].verb, verbs[i]) == 0 && cs[i].done_at == 0 &&
		      cs[i].issued_at > t0, "pending %d", i);
	free(cs);
	OK(db_command_done(c, cid[1], "killed at step 40", &err));
	FAILS(db_command_done(c, cid[1], "again", &err), TT_EINPUT,
	      "no pending command");
	char longres[400];
	memset(longres, 'a', sizeof longres);
	memcpy(longres + 253, "\xe2\x82\xac", 3);  /* a euro sign across 255 */
	longres[sizeof longres - 1] = '\0';
	OK(db_command_done(c, cid[2], longres, &err));
	OK(db_commands_pending(c, cid[0], &cs, &nc, &err));
	CHECK(nc == 1 && cs[0].id == cid[3], "pending after %lld: %d",
	      (long long)cid[0], nc);
	free(cs);
	db_command cmd;
	OK(db_command_get(c, cid[1], &cmd, &err));
	CHECK(cmd.done_at >= cmd.issued_at && cmd.done_at > 0 &&
	      strcmp(cmd.result, "killed at step 40") == 0, "done command");
	OK(db_command_get(c, cid[2], &cmd, &err));
	CHECK(strlen(cmd.result) == 253, "cut result: %zu", strlen(cmd.result));
	FAILS(db_command_get(c, 4242, &cmd, &err), TT_EINPUT, "no command 4242");

	/* checkpoints: exact bytes, replaced atomically, empty, missing */
	size_t n1 = 100000, n2 = 777;
	unsigned char *b1 = malloc(n1), *b2 = malloc(n2);
	for (size_t i = 0; i < n1; i++)
		b1[i] = (unsigned char)(i * 2654435761u >> 13);
	for (size_t i = 0; i < n2; i++)
		b2[i] = (unsigned char)(255 - i);
	b1[5] = 0;
	OK(db_checkpoint_put(c, tid[0], 1, 400, b1, n1, &err));
	long step = 0;
	void *blob = NULL;
	size_t len = 0;
	OK(db_checkpoint_get(c, tid[0], 1, &step, &blob, &len, &err));
	CHECK(step == 400 && len == n1 && blob && memcmp(blob, b1, n1) == 0,
	      "checkpoint bytes");
	free(blob);
	OK(db_checkpoint_put(c, tid[0], 1, 800, b2, n2, &err));
	OK(db_checkpoint_get(c, tid[0], 1, &step, &blob, &len, &err));
	CHECK(step == 800 && len == n2 && blob && memcmp(blob, b2, n2) == 0,
	      "replaced checkpoint");
	free(blob);
	CHECK(raw_int(path, "SELECT count(*) FROM checkpoints") == 1,
	      "one checkpoint per (trial, rung)");
	OK(db_checkpoint_put(c, tid[1], 0, 3, NULL, 0, &err));
	OK(db_checkpoint_get(c, tid[1], 0, &step, &blob, &len, &err));
	CHECK(step == 3 && len == 0 && blob != NULL, "empty checkpoint");
	free(blob);
	OK(db_checkpoint_get(c, tid[5], 0, &step, &blob, &len, &err));
	CHECK(step == -1 && len == 0 && blob == NULL, "no checkpoint");
	free(b1);
	free(b2);

	/* caller's transactions: commit, rollback, nesting, a failure inside */
	db_conn *r = NULL;
	OK(db_open(path, DB_READONLY, &r, &err));
	if (!r) {
		db_close(c);
		return;
	}
	int64_t x1 = 0, x2 = 0;
	OK(db_begin(c, &err));
	OK(db_trial_add(c, study, "{\"tx\": 1}", &x1, &err));
	OK(db_begin(c, &err));
	OK(db_trial_add(c, study, "{\"tx\": 2}", &x2, &err));
	OK(db_commit(c, &err));
	CHECK(db_trial_get(r, x1, &tt, &err) == TT_EINPUT,
	      "a reader sees no uncommitted row");
	OK(db_commit(c, &err));
	OK(db_trial_get(r, x2, &tt, &err));
	OK(db_begin(c, &err));
	OK(db_trial_add(c, study, "{\"tx\": 3}", &x1, &err));
	db_rollback(c);
	CHECK(db_trial_get(c, x1, &tt, &err) == TT_EINPUT, "rolled back");
	OK(db_begin(c, &err));
	OK(db_trial_add(c, study, "{\"tx\": 4}", &x1, &err));
	/* not-found and bad-value errors write nothing; the transaction goes on */
	FAILS(db_trial_set(c, 777, "done", 0, &err), TT_EINPUT, "no trial 777");
	OK(db_trial_add(c, study, "{\"tx\": 5}", &x2, &err));
	/* an SQLite error rolls back the whole transaction */
	FAILS(db_command_add(c, 888, "kill", &cid[0], &err), TT_EINPUT,
	      "FOREIGN KEY constraint failed");
	FAILS(db_trial_add(c, study, "{\"tx\": 6}", &x2, &err), TT_ERUNTIME,
	      "already rolled back");
	FAILS(db_commit(c, &err), TT_ERUNTIME, "FOREIGN KEY");
	CHECK(db_trial_get(c, x1, &tt, &err) == TT_EINPUT, "tx 4 not stored");
	OK(db_trials(c, study, &ts, &nt, &err));
	CHECK(nt == 9, "%d trials after the failed transaction", nt);
	free(ts);
	FAILS(db_commit(c, &err), TT_EINPUT, "no transaction");
	db_rollback(c);  /* no transaction: nothing happens */
	OK(db_trial_add(c, study, "{\"tx\": 7}", &x2, &err));
	db_close(r);
	db_close(c);
	CHECK(raw_int(path, "SELECT count(*) FROM trials") == 10, "10 trials");
}

/* ---- 3. migrations, files that are not ours, read-only --------------------- */

/* Schema 1 by hand, as a tunetop of version 1 wrote it, with a study, a
 * trial and a rung result. */
static const char *const schema1 =
	"PRAGMA application_id = 1951690608;"  /* 0x74546F70 */
	"CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
	" config TEXT NOT NULL DEFAULT '', seed INTEGER NOT NULL DEFAULT 0,"
	" created_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'running');"
	"CREATE TABLE trials (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL"
	" REFERENCES studies(id) ON DELETE CASCADE, params TEXT NOT NULL,"
	" state TEXT NOT NULL DEFAULT 'queued', rung INTEGER NOT NULL DEFAULT 0,"
	" created_at REAL NOT NULL, updated_at REAL NOT NULL);"
	"CREATE INDEX trials_by_study ON trials(study_id);"
	"CREATE TABLE rungs (trial_id INTEGER NOT NULL REFERENCES trials(id)"
	" ON DELETE CASCADE, rung INTEGER NOT NULL, trainable INTEGER NOT NULL,"
	" epochs REAL NOT NULL, val_loss REAL, val_acc REAL, seconds REAL NOT"
	" NULL DEFAULT 0, promoted INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (trial_id, rung));"
	"CREATE TABLE metrics (trial_id INTEGER NOT NULL REFERENCES trials(id)"
	" ON DELETE CASCADE, rung INTEGER NOT NULL, step INTEGER NOT NULL,"
	" epoch REAL NOT NULL, split TEXT NOT NULL, loss REAL, acc REAL,"
	" wall_s REAL NOT NULL);"
	"CREATE INDEX metrics_by_step ON metrics(trial_id, rung, step);"
	"CREATE TABLE layer_memory (trial_id INTEGER NOT NULL REFERENCES"
	" trials(id) ON DELETE CASCADE, rung INTEGER NOT NULL, stage INTEGER NOT"
	" NULL, name TEXT NOT NULL, kind TEXT NOT NULL, bytes INTEGER NOT NULL,"
	" frozen INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (trial_id, rung, stage, kind));"
	"CREATE TABLE masks (trial_id INTEGER NOT NULL REFERENCES trials(id)"
	" ON DELETE CASCADE, stage INTEGER NOT NULL, unit INTEGER NOT NULL,"
	" prob REAL NOT NULL, \"on\" INTEGER NOT NULL,"
	" PRIMARY KEY (trial_id, stage, unit));"
	"CREATE TABLE rank_corr (study_id INTEGER NOT NULL REFERENCES"
	" studies(id) ON DELETE CASCADE, rung_a INTEGER NOT NULL, rung_b INTEGER"
	" NOT NULL, n INTEGER NOT NULL, spearman REAL, kendall REAL,"
	" PRIMARY KEY (study_id, rung_a, rung_b));"
	"CREATE TABLE commands (id INTEGER PRIMARY KEY, trial_id INTEGER NOT NULL"
	" REFERENCES trials(id) ON DELETE CASCADE, verb TEXT NOT NULL,"
	" issued_at REAL NOT NULL, done_at REAL, result TEXT);"
	"CREATE INDEX commands_pending ON commands(id) WHERE done_at IS NULL;"
	"CREATE TABLE checkpoints (trial_id INTEGER NOT NULL REFERENCES"
	" trials(id) ON DELETE CASCADE, rung INTEGER NOT NULL, step INTEGER NOT"
	" NULL, blob BLOB NOT NULL, created_at REAL NOT NULL,"
	" PRIMARY KEY (trial_id, rung));"
	"INSERT INTO studies VALUES (1, 'old', 'cfg', 42, 1700000000.5, 'running');"
	"INSERT INTO trials VALUES (1, 1, '{\"lr\": 0.1}', 'done', 1,"
	" 1700000001, 1700000002);"
	"INSERT INTO rungs VALUES (1, 0, 2, 1.0, 0.5, 0.8, 12.5, 1);"
	"PRAGMA user_version = 1;";

static void make_v1(const char *path)
{
	rm_db(path);
	CHECK(raw_exec(path, schema1) == 0, "building schema 1");
}

/* The data of make_v1 is there, read through db.c. */
static void check_v1_data(db_conn *c)
{
	tt_err err = {0};
	db_study s;
	OK(db_study_get(c, &s, &err));
	CHECK(s.id == 1 && strcmp(s.name, "old") == 0 && s.seed == 42 &&
	      s.config && strcmp(s.config, "cfg") == 0, "old study");
	free(s.config);
	db_trial t;
	OK(db_trial_get(c, 1, &t, &err));
	CHECK(strcmp(t.params, "{\"lr\": 0.1}") == 0 &&
	      strcmp(t.state, "done") == 0 && t.rung == 1, "old trial");
	db_rung *r = NULL;
	int n = 0;
	OK(db_rungs(c, 1, &r, &n, &err));
	CHECK(n == 1 && r && r[0].val_acc == 0.8 && r[0].promoted == 1 &&
	      r[0].train_macs == 0, "old rung, train_macs 0");
	free(r);
}


/* The study's fingerprint: stored, read, absent in older schemas; and the
 * read-only look at a database as it is (DB_AS_IS), which neither
 * migrates it nor leaves a -wal or -shm file behind. */
static int exists(const char *path, const char *suffix)
{
	char p[600];
	snprintf(p, sizeof p, "%s%s", path, suffix);
	return access(p, F_OK) == 0;
}

static void test_fingerprint(void)
{
	tt_err err = {0};
	char path[128];
	db_conn *c = NULL;
	char *fp = NULL;
	int64_t id;

	tpath(path, sizeof path, "fp.db");
	rm_db(path);
	OK(db_open(path, DB_CREATE, &c, &err));
	FAILS(db_study_fingerprint(c, &fp, &err), TT_EINPUT, "holds no study");
	OK(db_study_ensure(c, "s", "cfg", 1, &id, &err));
	OK(db_study_fingerprint(c, &fp, &err));
	CHECK(fp == NULL, "a new study has a fingerprint already");
	OK(db_study_set_fingerprint(c, id, "tunetop study fingerprint 1\n[x] y = 1\n", &err));
	OK(db_study_fingerprint(c, &fp, &err));
	CHECK(fp && strcmp(fp, "tunetop study fingerprint 1\n[x] y = 1\n") == 0, "read '%s'",
	      fp ? fp : "(null)");
	free(fp);
	FAILS(db_study_set_fingerprint(c, id + 7, "x", &err), TT_EINPUT, "no study");
	db_close(c);
	CHECK(!exists(path, "-wal") && !exists(path, "-shm"), "-wal left by a clean close");

	/* a look as it is: the fingerprint, and no file appears */
	c = NULL;
	OK(db_open(path, DB_READONLY | DB_AS_IS, &c, &err));
	fp = NULL;
	OK(db_study_fingerprint(c, &fp, &err));
	CHECK(fp && strstr(fp, "[x] y = 1"), "as-is read '%s'", fp ? fp : "(null)");
	free(fp);
	FAILS(db_study_set_fingerprint(c, id, "x", &err), TT_EINPUT, "read-only");
	db_close(c);
	CHECK(!exists(path, "-wal") && !exists(path, "-shm"),
	      "a look as it is left a -wal or -shm file");

	/* an empty file (a creation cut short) looked at as it is: no study */
	tpath(path, sizeof path, "fp0.db");
	rm_db(path);
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
	c = NULL;
	FAILS(db_open(path, DB_READONLY, &c, &err), TT_EINPUT, "empty file");
	c = NULL;
	OK(db_open(path, DB_READONLY | DB_AS_IS, &c, &err));
	fp = NULL;
	FAILS(db_study_fingerprint(c, &fp, &err), TT_EINPUT, "holds no study");
	db_close(c);

	/* schema 1: read as it is, no fingerprint, not migrated */
	tpath(path, sizeof path, "fp1.db");
	make_v1(path);
	c = NULL;
	OK(db_open(path, DB_READONLY | DB_AS_IS, &c, &err));
	db_study s;
	OK(db_study_get(c, &s, &err));
	CHECK(s.config && strcmp(s.config, "cfg") == 0, "schema 1 study");
	free(s.config);
	fp = (char *)"junk";
	OK(db_study_fingerprint(c, &fp, &err));
	CHECK(fp == NULL, "schema 1 has a fingerprint");
	db_close(c);
	CHECK(raw_int(path, "PRAGMA user_version") == 1, "schema 1 migrated by a look");
	/* migrated: the column is there, empty, until the runner fills it */
	c = NULL;
	OK(db_open(path, 0, &c, &err));
	fp = NULL;
	OK(db_study_fingerprint(c, &fp, &err));
	CHECK(fp == NULL, "a migrated study has a fingerprint");
	OK(db_study_set_fingerprint(c, 1, "f", &err));
	db_close(c);
	CHECK(raw_int(path, "SELECT count(*) FROM studies WHERE fingerprint = 'f'") == 1,
	      "fingerprint not stored after migrating");
}

static void test_migrate(void)
{
	tt_err err = {0};
	char path[128], mode[64];
	db_conn *c = NULL;

	/* version 0: an empty file that already carries our application_id */
	tpath(path, sizeof path, "v0.db");
	rm_db(path);
	CHECK(raw_exec(path, "PRAGMA application_id = 1951690608") == 0, "v0");
	OK(db_open(path, 0, &c, &err));
	db_close(c);
	CHECK(raw_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	      "v0 migrated");
	check_contract(path);

	/* version 1 with data */
	tpath(path, sizeof path, "v1.db");
	make_v1(path);
	CHECK(raw_int(path, "SELECT count(*) FROM pragma_table_info('rungs')"
	              " WHERE name = 'train_macs'") == 0, "v1 lacks train_macs");
	/* read-only cannot migrate: refused, file untouched */
	FAILS(db_open(path, DB_READONLY, &c, &err), TT_EINPUT,
	      "schema 1 is older");
	CHECK(raw_int(path, "PRAGMA user_version") == 1, "still v1");
	c = NULL;
	OK(db_open(path, 0, &c, &err));
	if (c) {
		check_v1_data(c);
		db_rung nr = {1, 1, 4, 2.0, 0.4, 0.85, 20.0, 0, 7e9, 0, 0};
		OK(db_rung_put(c, &nr, &err));
		db_close(c);
	}
	CHECK(raw_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	      "v1 migrated");
	CHECK(raw_int(path, "SELECT train_macs FROM rungs WHERE rung = 1") == 7e9,
	      "train_macs stored");
	CHECK(raw_int(path, "SELECT count(*) FROM rungs WHERE macs_kept IS NULL") == 2,
	      "old and new ungated rungs keep macs_kept NULL");
	CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	              " AND name = 'trials_by_updated'") == 1, "trials_by_updated");
	check_contract(path);

	/* a fault at each SQLite call of the migrating open: either migrated
	 * or still version 1, with the data intact */
	tpath(path, sizeof path, "v1f.db");
	make_v1(path);
	long before = db_fault_calls();
	OK(db_open(path, 0, &c, &err));
	long calls = db_fault_calls() - before;
	db_close(c);
	CHECK(calls > 5, "a migrating open makes %ld calls", calls);
	int failed = 0;
	for (long n = 1; n <= calls + 1; n++) {
		make_v1(path);
		c = NULL;
		db_fault_inject((int)n, SQLITE_IOERR);
		err.msg[0] = '\0';
		int rc = db_open(path, 0, &c, &err);
		db_fault_inject(0, 0);
		CHECK(rc == TT_OK || (rc == TT_ERUNTIME && strstr(err.msg, path)),
		      "fault %ld: rc %d %s", n, rc, err.msg);
		CHECK((rc == TT_OK) == (n > calls), "fault %ld: rc %d", n, rc);
		failed += rc != TT_OK;
		db_close(c);
		char ok[64];
		raw_text(path, "PRAGMA integrity_check", ok, sizeof ok);
		CHECK(strcmp(ok, "ok") == 0, "fault %ld: integrity %s", n, ok);
		long long v = raw_int(path, "PRAGMA user_version");
		long long macs = raw_int(path, "SELECT count(*) FROM"
		                         " pragma_table_info('rungs') WHERE"
		                         " name = 'train_macs'");
		long long hyp = raw_int(path, "SELECT count(*) FROM sqlite_master"
		                        " WHERE type = 'table' AND name = 'hyper'");
		CHECK((v == 1 && macs == 0 && hyp == 0) ||
		      (v == DB_SCHEMA_VERSION && macs == 1 && hyp == 1),
		      "fault %ld: version %lld, train_macs %lld, hyper %lld", n, v, macs, hyp);
		CHECK(raw_int(path, "SELECT count(*) FROM rungs WHERE val_acc = 0.8")
		      == 1, "fault %ld: data", n);
		c = NULL;
		OK(db_open(path, 0, &c, &err));
		if (c)
			check_v1_data(c);
		db_close(c);
	}
	CHECK(failed == calls, "%d of %ld faults failed the open", failed, calls);

	/* from a newer tunetop: refused, untouched */
	tpath(path, sizeof path, "new.db");
	rm_db(path);
	OK(db_open(path, DB_CREATE, &c, &err));
	db_close(c);
	CHECK(raw_exec(path, "PRAGMA user_version = 99") == 0, "v99");
	char want[256];
	snprintf(want, sizeof want, "%s: written by a newer tunetop (schema 99,"
	         " this one reads up to %d)", path, DB_SCHEMA_VERSION);
	FAILS(db_open(path, 0, &c, &err), TT_EINPUT, want);
	FAILS(db_open(path, DB_READONLY, &c, &err), TT_EINPUT, want);
	CHECK(c == NULL, "no connection handed out");
	CHECK(raw_int(path, "PRAGMA user_version") == 99, "still 99");

	/* a text file, with and without DB_CREATE: refused, untouched */
	tpath(path, sizeof path, "notes.txt");
	const char *text = "[study]\nname = not a database at all, just text\n";
	CHECK(write_file(path, text, strlen(text)) == 0, "text file");
	snprintf(want, sizeof want, "%s: not a tunetop study database", path);
	FAILS(db_open(path, 0, &c, &err), TT_EINPUT, want);
	FAILS(db_open(path, DB_CREATE, &c, &err), TT_EINPUT,
	      "file is not a database");
	FAILS(db_open(path, DB_READONLY, &c, &err), TT_EINPUT, want);
	size_t n = 0;
	char *back = read_file(path, &n);
	CHECK(back && n == strlen(text) && memcmp(back, text, n) == 0,
	      "text file untouched");
	free(back);

	/* an SQLite file of someone else: refused, not even switched to WAL */
	tpath(path, sizeof path, "foreign.db");
	rm_db(path);
	CHECK(raw_exec(path, "CREATE TABLE songs (title TEXT);"
	               "INSERT INTO songs VALUES ('x');") == 0, "foreign");
	snprintf(want, sizeof want, "%s: an SQLite database but not a tunetop"
	         " study", path);
	FAILS(db_open(path, 0, &c, &err), TT_EINPUT, want);
	FAILS(db_open(path, DB_CREATE, &c, &err), TT_EINPUT, want);
	raw_text(path, "PRAGMA journal_mode", mode, sizeof mode);
	CHECK(strcmp(mode, "delete") == 0, "foreign journal mode %s", mode);
	CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master") == 1,
	      "foreign schema untouched");
	tpath(path, sizeof path, "otherapp.db");
	rm_db(path);
	CHECK(raw_exec(path, "PRAGMA application_id = 1234;") == 0, "other app");
	FAILS(db_open(path, DB_CREATE, &c, &err), TT_EINPUT,
	      "another application (application_id 0x000004D2)");

	/* missing and empty files */
	tpath(path, sizeof path, "missing.db");
	rm_db(path);
	snprintf(want, sizeof want, "%s: no such study database", path);
	FAILS(db_open(path, 0, &c, &err), TT_EINPUT, want);
	FAILS(db_open(path, DB_READONLY | DB_CREATE, &c, &err), TT_EINPUT, want);
	CHECK(access(path, F_OK) != 0, "missing file not created");
	tpath(path, sizeof path, "empty.db");
	CHECK(write_file(path, "", 0) == 0, "empty file");
	FAILS(db_open(path, 0, &c, &err), TT_EINPUT, "empty file");
	OK(db_open(path, DB_CREATE, &c, &err));
	db_close(c);
	CHECK(raw_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	      "empty file created");
	FAILS(db_open(tmpdir, DB_CREATE, &c, &err), TT_EINPUT, "is a directory");

	/* read-only: reads work, every write fails cleanly, nothing changes */
	tpath(path, sizeof path, "ro.db");
	rm_db(path);
	c = NULL;
	OK(db_open(path, DB_CREATE, &c, &err));
	int64_t study = 0, trial = 0, cid = 0;
	if (c) {
		OK(db_study_ensure(c, "ro", "", 1, &study, &err));
		OK(db_trial_add(c, study, "{}", &trial, &err));
		db_close(c);
	}
	c = NULL;
	OK(db_open(path, DB_READONLY, &c, &err));
	if (c) {
		db_trial *ts = NULL;
		int nt = 0;
		OK(db_trials(c, study, &ts, &nt, &err));
		CHECK(nt == 1 && ts[0].id == trial, "read-only read");
		free(ts);
		FAILS(db_trial_add(c, study, "{}", &trial, &err), TT_EINPUT,
		      "opened read-only");
		FAILS(db_command_add(c, trial, "kill", &cid, &err), TT_EINPUT,
		      "opened read-only");
		FAILS(db_checkpoint_put(c, trial, 0, 1, "ab", 2, &err), TT_EINPUT,
		      "opened read-only");
		FAILS(db_begin(c, &err), TT_EINPUT, "opened read-only");
		db_close(c);
	}
	CHECK(raw_int(path, "SELECT count(*) FROM trials") == 1 &&
	      raw_int(path, "SELECT count(*) FROM commands") == 0,
	      "read-only wrote nothing");
}

/* ---- 4. fault injection ------------------------------------------------- */

/* The state before the failing transaction, written by fault_base. */
static const char *const base_params = "{\"lr\": 0.01, \"depth\": 3}";
static unsigned char blob_a[3000], blob_b[5000], blob_c[100];

static void fault_base(const char *path)
{
	tt_err err = {0};
	db_conn *c = NULL;
	rm_db(path);
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;
	int64_t study, trial, cid;
	OK(db_study_ensure(c, "faults", "cfg", 3, &study, &err));
	OK(db_begin(c, &err));
	OK(db_trial_add(c, study, base_params, &trial, &err));
	OK(db_trial_set(c, trial, "running", 0, &err));
	db_rung r = {trial, 0, 2, 1.0, 0.9, 0.6, 4.0, 0, 1e6, 0, 0};
	OK(db_rung_put(c, &r, &err));
	for (int i = 0; i < 10; i++) {
		db_metric m = {trial, 0, i, i * 0.1, "train", 1.0 / (i + 1), 0.5,
		               i * 0.5, 0};
		OK(db_metric_put(c, &m, &err));
	}
	OK(db_checkpoint_put(c, trial, 0, 10, blob_a, sizeof blob_a, &err));
	OK(db_command_add(c, trial, "promote", &cid, &err));
	OK(db_commit(c, &err));
	db_close(c);
}

/* The representative write: a new trial, its rung, metrics and checkpoint,
 * and the replacement of trial 1's checkpoint, in one transaction.  As an
 * engine would: stop at the first error and roll back. */
static int fault_seq(db_conn *c, tt_err *err)
{
	int64_t trial;
	int rc = db_begin(c, err);
	if (rc)
		return rc;
	db_metric m[5];
	if ((rc = db_trial_add(c, 1, "{\"lr\": 0.5}", &trial, err)))
		goto fail;
	db_rung r = {trial, 0, 2, 1.0, 0.7, 0.7, 3.0, 0, 2e6, 0, 0};
	if ((rc = db_rung_put(c, &r, err)))
		goto fail;
	for (int i = 0; i < 5; i++)
		m[i] = (db_metric){trial, 0, i, i * 0.2, "val", 0.3, 0.8, 1.0, 0};
	if ((rc = db_metrics_put(c, m, 5, err)))
		goto fail;
	if ((rc = db_checkpoint_put(c, 1, 0, 20, blob_b, sizeof blob_b, err)))
		goto fail;
	if ((rc = db_checkpoint_put(c, trial, 0, 5, blob_c, sizeof blob_c, err)))
		goto fail;
	return db_commit(c, err);
fail:
	db_rollback(c);
	return rc;
}

/* The database holds the base exactly, plus the sequence's rows when
 * committed: never a part of them. */
static void fault_verify(const char *path, int committed, const char *what)
{
	tt_err err = {0};
	char ok[64];
	raw_text(path, "PRAGMA integrity_check", ok, sizeof ok);
	CHECK(strcmp(ok, "ok") == 0, "%s: integrity %s", what, ok);
	raw_text(path, "PRAGMA foreign_key_check", ok, sizeof ok);
	CHECK(ok[0] == '\0', "%s: foreign keys %s", what, ok);
	db_conn *c = NULL;
	OK(db_open(path, DB_READONLY, &c, &err));
	if (!c)
		return;
	db_trial *ts = NULL;
	int nt = 0;
	OK(db_trials(c, 1, &ts, &nt, &err));
	CHECK(nt == 1 + committed, "%s: %d trials", what, nt);
	if (nt >= 1)
		CHECK(ts[0].id == 1 && strcmp(ts[0].params, base_params) == 0 &&
		      strcmp(ts[0].state, "running") == 0, "%s: base trial", what);
	free(ts);
	db_rung *rs = NULL;
	int nr = 0;
	OK(db_rungs(c, 1, &rs, &nr, &err));
	CHECK(nr == 1 + committed, "%s: %d rungs", what, nr);
	if (nr >= 1)
		CHECK(rs[0].trial == 1 && rs[0].val_loss == 0.9 &&
		      rs[0].train_macs == 1e6, "%s: base rung", what);
	free(rs);
	db_metric *ms = NULL;
	int nm = 0;
	OK(db_metrics_since(c, 0, 0, 0, &ms, &nm, &err));
	CHECK(nm == 10 + 5 * committed, "%s: %d metrics", what, nm);
	for (int i = 0; i < nm && i < 10; i++)
		CHECK(ms[i].trial == 1 && ms[i].step == i &&
		      ms[i].loss == 1.0 / (i + 1), "%s: base metric %d", what, i);
	free(ms);
	long step;
	void *blob;
	size_t len;
	OK(db_checkpoint_get(c, 1, 0, &step, &blob, &len, &err));
	if (committed)
		CHECK(step == 20 && len == sizeof blob_b && blob &&
		      memcmp(blob, blob_b, len) == 0, "%s: replaced checkpoint",
		      what);
	else
		CHECK(step == 10 && len == sizeof blob_a && blob &&
		      memcmp(blob, blob_a, len) == 0, "%s: base checkpoint", what);
	free(blob);
	OK(db_checkpoint_get(c, 2, 0, &step, &blob, &len, &err));
	CHECK(committed ? len == sizeof blob_c && blob && memcmp(blob, blob_c, len) == 0
	                : blob == NULL, "%s: new checkpoint", what);
	free(blob);
	db_command *cs = NULL;
	int nc = 0;
	OK(db_commands_pending(c, 0, &cs, &nc, &err));
	CHECK(nc == 1, "%s: base command", what);
	free(cs);
	db_close(c);
}

static void test_faults(void)
{
	tt_err err = {0};
	for (size_t i = 0; i < sizeof blob_a; i++)
		blob_a[i] = (unsigned char)(i * 7 + 1);
	for (size_t i = 0; i < sizeof blob_b; i++)
		blob_b[i] = (unsigned char)(i * 13 + 5);
	for (size_t i = 0; i < sizeof blob_c; i++)
		blob_c[i] = (unsigned char)i;
	char base[128], path[128];
	tpath(base, sizeof base, "fault-base.db");
	tpath(path, sizeof path, "fault.db");
	fault_base(base);
	size_t nbase = 0;
	void *image = read_file(base, &nbase);
	CHECK(image && nbase > 0, "base image");
	if (!image)
		return;

	/* how many SQLite calls the sequence makes on a fresh connection */
	db_conn *c = NULL;
	rm_db(path);
	write_file(path, image, nbase);
	OK(db_open(path, 0, &c, &err));
	if (!c) {
		free(image);
		return;
	}
	long before = db_fault_calls();
	OK(fault_seq(c, &err));
	long calls = db_fault_calls() - before;
	db_close(c);
	fault_verify(path, 1, "no fault");
	CHECK(calls >= 10, "the sequence makes %ld calls", calls);

	static const struct { int code; const char *name; } codes[] = {
		{SQLITE_FULL, "database or disk is full"},
		{SQLITE_IOERR, "disk I/O error"},
		{SQLITE_IOERR_WRITE, "disk I/O error"},
	};
	int runs = 0;
	for (int k = 0; k < 3; k++) {
		for (long n = 1; n <= calls + 1; n++) {
			char what[64];
			snprintf(what, sizeof what, "%s at call %ld", codes[k].name, n);
			rm_db(path);
			write_file(path, image, nbase);
			c = NULL;
			OK(db_open(path, 0, &c, &err));
			if (!c)
				continue;
			db_fault_inject((int)n, codes[k].code);
			err.msg[0] = '\0';
			err.code = 0;
			int rc = fault_seq(c, &err);
			db_fault_inject(0, 0);
			int committed = rc == TT_OK;
			CHECK(committed == (n > calls), "%s: rc %d", what, rc);
			if (!committed)
				CHECK(rc == TT_ERUNTIME && strstr(err.msg, path) &&
				      strstr(err.msg, codes[k].name) &&
				      strstr(err.msg, "(injected fault)"),
				      "%s: rc %d '%s'", what, rc, err.msg);
			/* the connection is still good for reads and writes */
			db_trial t;
			OK(db_trial_get(c, 1, &t, &err));
			int64_t cid;
			OK(db_command_add(c, 1, "pause", &cid, &err));
			OK(db_command_done(c, cid, "ok", &err));
			db_close(c);
			fault_verify(path, committed, what);
			runs++;
		}
	}

	/* single writes wrapping themselves: the checkpoint is old or new,
	 * whole; a batch of metrics lands whole or not at all */
	for (int w = 0; w < 2; w++) {
		db_metric m[5];
		for (int i = 0; i < 5; i++)
			m[i] = (db_metric){1, 1, 100 + i, 2.0, "val", 0.1, 0.9, 9.0, 0};
		long one = 0;
		for (long n = 0; n <= one + 1; n++) {
			rm_db(path);
			write_file(path, image, nbase);
			c = NULL;
			OK(db_open(path, 0, &c, &err));
			if (!c)
				break;
			/* n = 0: count the calls of the write, no fault */
			before = db_fault_calls();
			db_fault_inject((int)n, SQLITE_FULL);
			int rc = w == 0 ? db_checkpoint_put(c, 1, 0, 20, blob_b,
			                                    sizeof blob_b, &err)
			                : db_metrics_put(c, m, 5, &err);
			db_fault_inject(0, 0);
			if (n == 0)
				one = db_fault_calls() - before;
			int done = n == 0 || n > one;
			CHECK((rc == TT_OK) == done, "single write %d, call %ld: %d",
			      w, n, rc);
			if (w == 0) {
				long step;
				void *blob;
				size_t len;
				OK(db_checkpoint_get(c, 1, 0, &step, &blob, &len, &err));
				int old = step == 10 && len == sizeof blob_a &&
				          memcmp(blob, blob_a, len) == 0;
				int new = step == 20 && len == sizeof blob_b &&
				          memcmp(blob, blob_b, len) == 0;
				CHECK(done ? new : old, "checkpoint, call %ld", n);
				free(blob);
			} else {
				db_metric *ms = NULL;
				int nm = 0;
				OK(db_metrics_since(c, 1, 0, 0, &ms, &nm, &err));
				CHECK(nm == 10 + 5 * done, "metrics batch, call %ld: %d",
				      n, nm);
				free(ms);
			}
			db_close(c);
		}
		CHECK(one >= 3, "a single write makes %ld calls", one);
	}

	/* SQLITE_BUSY, even injected, is retried where a retry is safe: at
	 * BEGIN IMMEDIATE (call 1 of a write once its statements are cached),
	 * at COMMIT (call 3) and at the first step of a read.  Inside a
	 * transaction (call 2) it cannot be retried and fails cleanly; with
	 * the write lock taken up front, a real one cannot happen there. */
	rm_db(path);
	write_file(path, image, nbase);
	c = NULL;
	OK(db_open(path, 0, &c, &err));
	if (c) {
		int64_t cid;
		db_command *cs = NULL;
		int nc = 0;
		OK(db_command_add(c, 1, "kill", &cid, &err));
		OK(db_commands_pending(c, 0, &cs, &nc, &err));
		free(cs);
		for (int n = 1; n <= 3; n++) {
			db_fault_inject(n, SQLITE_BUSY);
			if (n == 2)
				FAILS(db_command_add(c, 1, "kill", &cid, &err),
				      TT_ERUNTIME, "database is locked");
			else
				OK(db_command_add(c, 1, "kill", &cid, &err));
			db_fault_inject(1, SQLITE_BUSY);
			OK(db_commands_pending(c, 0, &cs, &nc, &err));
			CHECK(nc == 3 + (n == 3), "busy: %d pending", nc);
			free(cs);
		}
		db_fault_inject(0, 0);
		/* a failing read: clean error, then the next read works */
		db_fault_inject(1, SQLITE_IOERR);
		db_trial *ts = NULL;
		int nt = 0;
		FAILS(db_trials(c, 1, &ts, &nt, &err), TT_ERUNTIME, "disk I/O error");
		CHECK(ts == NULL && nt == 0, "no rows on failure");
		db_fault_inject(0, 0);
		OK(db_trials(c, 1, &ts, &nt, &err));
		CHECK(nt == 1, "read after a fault: %d", nt);
		free(ts);
		db_close(c);
	}
	free(image);
	fprintf(stderr, "  faults: %ld calls per transaction, %d runs\n", calls,
	        runs);
}

/* ---- learned hyperparameters ---------------------------------------------- */

static db_hyper hp(int64_t trial, int rung, long step, const char *name, double v)
{
	db_hyper h = {.trial = trial, .rung = rung, .step = step, .value = v};
	snprintf(h.name, sizeof h.name, "%s", name);
	return h;
}

/* The row of (trial, name) in a db_hyper_latest answer, or NULL. */
static const db_hyper *latest_of(const db_hyper *h, int n, int64_t trial,
                                 const char *name)
{
	for (int i = 0; i < n; i++)
		if (h[i].trial == trial && strcmp(h[i].name, name) == 0)
			return &h[i];
	return NULL;
}

/*
 * The hyper table: a batch stored and read back (by trial, all trials,
 * latest per (trial, name)), a point put again replaces it under a new
 * rowid (a poll sees it; no duplicate), NaN as NULL, bad names and unknown
 * trials refused with nothing written, and a batch that fails at any
 * SQLite call lands not at all.
 */
static void test_hyper(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "hyper.db");
	rm_db(path);
	db_conn *c = NULL;
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;
	int64_t study, t1, t2;
	OK(db_study_ensure(c, "h", "", 1, &study, &err));
	OK(db_trial_add(c, study, "{}", &t1, &err));
	OK(db_trial_add(c, study, "{}", &t2, &err));

	/* t1: weight-decay and angle at steps 10, 20 of rung 0, 5 of rung 1;
	 * t2: weight-decay at step 10 */
	db_hyper b[] = {
		hp(t1, 0, 10, "weight-decay", 3e-4), hp(t1, 0, 10, "angle", 10),
		hp(t1, 0, 20, "weight-decay", 2e-4), hp(t1, 0, 20, "angle", 20),
		hp(t2, 0, 10, "weight-decay", 5e-4),
		hp(t1, 1, 5, "weight-decay", 1e-4), hp(t1, 1, 5, "angle", 27.5),
	};
	int nb = (int)(sizeof b / sizeof b[0]);
	OK(db_hyper_put(c, b, nb, &err));
	CHECK(raw_int(path, "SELECT count(*) FROM hyper") == nb, "rows stored");

	db_hyper *h = NULL;
	int n = 0;
	OK(db_hyper_since(c, 0, 0, 0, &h, &n, &err));
	CHECK(n == nb, "all: %d rows", n);
	for (int i = 0; i < n && i < nb; i++) {
		CHECK(h[i].trial == b[i].trial && h[i].rung == b[i].rung &&
		      h[i].step == b[i].step && strcmp(h[i].name, b[i].name) == 0 &&
		      h[i].value == b[i].value, "row %d: %lld %d %ld %s %g", i,
		      (long long)h[i].trial, h[i].rung, h[i].step, h[i].name, h[i].value);
		CHECK(i == 0 || h[i].rowid > h[i - 1].rowid, "rowid order at %d", i);
	}
	int64_t last = n ? h[n - 1].rowid : 0;
	free(h);
	h = NULL;
	OK(db_hyper_since(c, t2, 0, 0, &h, &n, &err));
	CHECK(n == 1 && h && h[0].trial == t2 && h[0].value == 5e-4, "t2: %d rows", n);
	free(h);
	h = NULL;
	OK(db_hyper_since(c, t1, 0, 2, &h, &n, &err));
	CHECK(n == 2, "max 2: %d rows", n);
	free(h);

	/* the latest of each (trial, name): t1 at rung 1 step 5, whatever the
	 * larger steps of rung 0 */
	int64_t got = -1;
	h = NULL;
	OK(db_hyper_latest(c, 0, &got, &h, &n, &err));
	CHECK(n == 3 && got == last, "latest: %d rows, last %lld of %lld", n,
	      (long long)got, (long long)last);
	const db_hyper *l = latest_of(h, n, t1, "weight-decay");
	CHECK(l && l->rung == 1 && l->step == 5 && l->value == 1e-4, "t1 weight-decay");
	l = latest_of(h, n, t1, "angle");
	CHECK(l && l->value == 27.5, "t1 angle");
	l = latest_of(h, n, t2, "weight-decay");
	CHECK(l && l->value == 5e-4, "t2 weight-decay");
	free(h);
	h = NULL;
	OK(db_hyper_latest(c, last, &got, &h, &n, &err));
	CHECK(n == 0 && got == last, "nothing new: %d rows, last %lld", n, (long long)got);
	free(h);

	/* a resumed trial reports rung 1 step 5 again (the last row): replaced,
	 * not duplicated, and under a rowid a poll after `last` reads */
	db_hyper again[] = { hp(t1, 1, 5, "angle", 28.0), hp(t1, 1, 10, "angle", NAN) };
	OK(db_hyper_put(c, again, 2, &err));
	CHECK(raw_int(path, "SELECT count(*) FROM hyper") == nb + 1, "replaced, not added");
	CHECK(raw_int(path, "SELECT count(*) FROM hyper WHERE name = 'angle' AND rung = 1"
	              " AND step = 5") == 1, "one point per key");
	CHECK(raw_int(path, "SELECT count(*) FROM hyper WHERE value IS NULL") == 1,
	      "NaN stored as NULL");
	h = NULL;
	OK(db_hyper_since(c, t1, last, 0, &h, &n, &err));
	CHECK(n == 2 && h && h[0].value == 28.0 && h[0].step == 5 && isnan(h[1].value),
	      "the replacing rows polled: %d", n);
	free(h);
	h = NULL;
	OK(db_hyper_latest(c, last, &got, &h, &n, &err));
	l = latest_of(h, n, t1, "angle");
	CHECK(n == 1 && l && l->step == 10 && isnan(l->value) && got > last,
	      "latest after the replacement: %d rows", n);
	free(h);

	/* refused, nothing written: empty and over-long names, unknown trial */
	db_hyper bad[2] = { hp(t1, 0, 30, "angle", 1), hp(t1, 0, 30, "", 1) };
	long long before = raw_int(path, "SELECT count(*) FROM hyper");
	FAILS(db_hyper_put(c, bad, 2, &err), TT_EINPUT, "expected 1 to 47 bytes");
	memset(bad[1].name, 'x', sizeof bad[1].name);
	FAILS(db_hyper_put(c, bad, 2, &err), TT_EINPUT, "name 'xxxx");
	bad[1] = hp(t1 + 100, 0, 30, "angle", 1);
	FAILS(db_hyper_put(c, bad, 2, &err), TT_EINPUT, "FOREIGN KEY");
	CHECK(raw_int(path, "SELECT count(*) FROM hyper") == before, "nothing written");

	/* a batch failing at any of its SQLite calls lands not at all, and
	 * the connection goes on */
	db_hyper f[3] = { hp(t2, 0, 40, "a", 1), hp(t2, 0, 40, "b", 2), hp(t2, 0, 50, "a", 3) };
	long c0 = db_fault_calls();
	OK(db_hyper_put(c, f, 3, &err));
	long calls = db_fault_calls() - c0;
	CHECK(calls >= 5, "a batch makes %ld calls", calls);
	char cnt[128];
	snprintf(cnt, sizeof cnt, "SELECT count(*) FROM hyper WHERE trial_id = %lld",
	         (long long)t2);
	for (long k = 1; k <= calls; k++) {
		c0 = raw_int(path, "SELECT count(*) FROM hyper");
		f[0].step = f[1].step = 100 + 10 * k;
		f[2].step = 105 + 10 * k;
		db_fault_inject((int)k, SQLITE_FULL);
		int rc = db_hyper_put(c, f, 3, &err);
		db_fault_inject(0, 0);
		CHECK(rc == TT_ERUNTIME && strstr(err.msg, "injected"), "fault at %ld: rc %d",
		      k, rc);
		CHECK(raw_int(path, "SELECT count(*) FROM hyper") == c0, "fault at %ld: rows", k);
	}
	CHECK(raw_int(path, cnt) == 1 + 3, "after the faults: %lld", raw_int(path, cnt));
	OK(db_hyper_put(c, f, 3, &err));
	CHECK(raw_int(path, "SELECT count(*) FROM hyper") == c0 + 3, "written after faults");
	db_close(c);

	/* read-only: reads work, the write is refused */
	c = NULL;
	OK(db_open(path, DB_READONLY, &c, &err));
	if (c) {
		h = NULL;
		OK(db_hyper_since(c, 0, 0, 0, &h, &n, &err));
		CHECK(n == raw_int(path, "SELECT count(*) FROM hyper"), "read-only read");
		free(h);
		FAILS(db_hyper_put(c, f, 1, &err), TT_EINPUT, "read-only");
		db_close(c);
	}
}

/* A database of the previous schema (4) with a study in every table gains
 * the hyper table when opened read-write, losing nothing; read-only it is
 * refused untouched. */
/* Schema 5 (before forecasts and task_acc) migrates to 7: the table appears, takes
 * rows, and a repeated (trial, experience, task) replaces its row. */
static void test_migrate_task_acc(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "v5.db");
	rm_db(path);
	db_conn *c = NULL;
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;
	int64_t study, t1;
	OK(db_study_ensure(c, "five", "cfg", 7, &study, &err));
	OK(db_trial_add(c, study, "{}", &t1, &err));
	db_close(c);
	CHECK(raw_exec(path, "DROP TABLE task_acc; DROP TABLE forecasts; "
	               "PRAGMA user_version = 5;") == 0, "to v5");
	c = NULL;
	FAILS(db_open(path, DB_READONLY, &c, &err), TT_EINPUT, "schema 5 is older");
	c = NULL;
	OK(db_open(path, 0, &c, &err));
	CHECK(raw_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION, "v5 migrated");
	check_contract(path);
	if (c) {
		db_task_acc a[3] = { { t1, 0, 0, 0.9 }, { t1, 1, 0, 0.8 }, { t1, 1, 1, 0.95 } };
		OK(db_task_acc_put(c, a, 3, &err));
		a[1].acc = 0.7;
		OK(db_task_acc_put(c, &a[1], 1, &err));
		db_task_acc bad = { t1 + 99, 0, 0, 0.5 };
		FAILS(db_task_acc_put(c, &bad, 1, &err), TT_EINPUT, "FOREIGN KEY");
		/* read back in (experience, task) order, written out of it */
		db_task_acc late = { t1, 0, 1, NAN }, *r = NULL;
		int n = -1;
		OK(db_task_acc_get(c, t1, &r, &n, &err));
		CHECK(n == 3 && r && r[0].experience == 0 && r[1].experience == 1 &&
		      r[1].task == 0 && r[1].acc == 0.7 && r[2].task == 1 && r[2].acc == 0.95,
		      "read back: %d entries", n);
		free(r);
		OK(db_task_acc_put(c, &late, 1, &err));
		OK(db_task_acc_get(c, t1, &r, &n, &err));
		CHECK(n == 4 && r && r[1].experience == 0 && r[1].task == 1 && isnan(r[1].acc),
		      "NULL reads back as NaN, in order: %d entries", n);
		free(r);
		OK(db_task_acc_get(c, t1 + 99, &r, &n, &err));
		CHECK(n == 0, "an unknown trial has %d entries", n);
		free(r);
		db_close(c);
	}
	CHECK(raw_int(path, "SELECT count(*) FROM task_acc") == 4, "four entries");
	CHECK(raw_int(path, "SELECT CAST(acc * 100 AS INTEGER) FROM task_acc WHERE "
	              "experience = 1 AND task = 0") == 70, "the repeated entry replaced");
}

static void test_migrate_hyper(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "v4.db");
	rm_db(path);
	db_conn *c = NULL;
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;
	int64_t study, t1, cid;
	OK(db_study_ensure(c, "four", "cfg", 7, &study, &err));
	OK(db_study_set_fingerprint(c, study, "fp", &err));
	OK(db_trial_add(c, study, "{\"lr\": 0.1}", &t1, &err));
	db_rung r = {t1, 0, 2, 1.0, 0.5, 0.75, 3.0, 0, 1e9, 0.5, 0.6};
	OK(db_rung_put(c, &r, &err));
	db_metric m = {t1, 0, 10, 0.5, "val", 0.4, 0.7, 1.0, 0};
	OK(db_metric_put(c, &m, &err));
	db_mask mk = {1, 2, 0.25, 0};
	OK(db_masks_put(c, t1, &mk, 1, &err));
	OK(db_command_add(c, t1, "pause", &cid, &err));
	OK(db_checkpoint_put(c, t1, 0, 10, "ck", 2, &err));
	db_close(c);
	/* as schema 4 was: the same tables, no hyper (nor forecasts, of 6,
	 * nor task_acc, of 7) */
	CHECK(raw_exec(path, "DROP TABLE hyper; DROP TABLE forecasts; DROP TABLE task_acc; "
	               "PRAGMA user_version = 4;") == 0, "to v4");
	CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'hyper%'")
	      == 0, "v4 has no hyper table");

	c = NULL;
	FAILS(db_open(path, DB_READONLY, &c, &err), TT_EINPUT, "schema 4 is older");
	CHECK(raw_int(path, "PRAGMA user_version") == 4, "a read-only open migrated");
	c = NULL;
	OK(db_open(path, 0, &c, &err));
	CHECK(raw_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION, "v4 migrated");
	check_contract(path);
	if (c) {
		db_study s;
		OK(db_study_get(c, &s, &err));
		CHECK(strcmp(s.name, "four") == 0 && s.seed == 7, "study kept");
		free(s.config);
		char *fp = NULL;
		OK(db_study_fingerprint(c, &fp, &err));
		CHECK(fp && strcmp(fp, "fp") == 0, "fingerprint kept");
		free(fp);
		db_rung *rs = NULL;
		int n = 0;
		OK(db_rungs(c, study, &rs, &n, &err));
		CHECK(n == 1 && rs && rs[0].val_acc == 0.75 && rs[0].macs_kept == 0.5,
		      "rung kept");
		free(rs);
		db_metric *ms = NULL;
		OK(db_metrics_since(c, t1, 0, 0, &ms, &n, &err));
		CHECK(n == 1 && ms && ms[0].acc == 0.7, "metric kept");
		free(ms);
		db_mask *mm = NULL;
		OK(db_masks(c, t1, &mm, &n, &err));
		CHECK(n == 1 && mm && mm[0].prob == 0.25, "mask kept");
		free(mm);
		long step;
		void *blob = NULL;
		size_t len;
		OK(db_checkpoint_get(c, t1, 0, &step, &blob, &len, &err));
		CHECK(step == 10 && len == 2 && blob && memcmp(blob, "ck", 2) == 0,
		      "checkpoint kept");
		free(blob);
		db_command cmd;
		OK(db_command_get(c, cid, &cmd, &err));
		CHECK(strcmp(cmd.verb, "pause") == 0, "command kept");
		db_hyper h = hp(t1, 0, 10, "weight-decay", 1e-3);
		OK(db_hyper_put(c, &h, 1, &err));
		db_close(c);
	}
	CHECK(raw_int(path, "SELECT count(*) FROM hyper") == 1, "hyper writable");
	char ok[64];
	raw_text(path, "PRAGMA integrity_check", ok, sizeof ok);
	CHECK(strcmp(ok, "ok") == 0, "integrity %s", ok);
}

/* ---- 5. concurrency ------------------------------------------------------- */

#define BATCH 25
#define NTRIALS 4

static struct {
	char path[128];
	atomic_int stop_cmd, stop_writer, writer_done;
	atomic_long written, seen, issued, done;
	atomic_int errors;
	char first_error[600];
	pthread_mutex_t lock;
} cc;

static void cc_error(const char *who, const tt_err *err)
{
	pthread_mutex_lock(&cc.lock);
	if (atomic_fetch_add(&cc.errors, 1) == 0)
		snprintf(cc.first_error, sizeof cc.first_error, "%s: %s", who,
		         err->msg);
	pthread_mutex_unlock(&cc.lock);
}

static void *cc_writer(void *arg)
{
	(void)arg;
	tt_err err = {0};
	db_conn *c = NULL;
	if (db_open(cc.path, 0, &c, &err)) {
		cc_error("writer open", &err);
		atomic_store(&cc.writer_done, 1);
		return NULL;
	}
	long step = 0;
	int64_t after = 0;
	for (int last = 0; !last;) {
		last = atomic_load(&cc.stop_writer);
		db_metric m[BATCH];
		for (int i = 0; i < BATCH; i++, step++)
			m[i] = (db_metric){1 + step % NTRIALS, 0, step, step * 1e-3,
			                   "train", 1.0 / (1 + step), 0.5, step * 1e-3, 0};
		db_command *cs = NULL;
		int nc = 0;
		int rc = db_begin(c, &err);
		if (!rc)
			rc = db_metrics_put(c, m, BATCH, &err);
		if (!rc)
			rc = db_commands_pending(c, after, &cs, &nc, &err);
		for (int i = 0; !rc && i < nc; i++) {
			rc = db_command_done(c, cs[i].id, "applied", &err);
			after = cs[i].id;
		}
		if (!rc)
			rc = db_commit(c, &err);
		else
			db_rollback(c);
		free(cs);
		if (rc) {
			cc_error("writer", &err);
			break;
		}
		atomic_fetch_add(&cc.written, BATCH);
		atomic_fetch_add(&cc.done, nc);
		usleep(500);
	}
	db_close(c);
	atomic_store(&cc.writer_done, 1);
	return NULL;
}

static void *cc_reader(void *arg)
{
	(void)arg;
	tt_err err = {0};
	db_conn *c = NULL;
	if (db_open(cc.path, DB_READONLY, &c, &err)) {
		cc_error("reader open", &err);
		return NULL;
	}
	int64_t last = 0;
	long seen = 0;
	for (int final = 0; !final;) {
		final = atomic_load(&cc.writer_done);
		db_metric *ms = NULL;
		int n = 0;
		if (db_metrics_since(c, 0, last, 0, &ms, &n, &err)) {
			cc_error("reader", &err);
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ms[i].rowid != last + 1) {
				snprintf(err.msg, sizeof err.msg, "rowid %lld after %lld",
				         (long long)ms[i].rowid, (long long)last);
				cc_error("reader", &err);
			}
			last = ms[i].rowid;
		}
		seen += n;
		free(ms);
		/* batches commit whole: a reader never sees part of one */
		if (seen % BATCH) {
			snprintf(err.msg, sizeof err.msg, "saw %ld rows, not whole"
			         " batches of %d", seen, BATCH);
			cc_error("reader", &err);
		}
		usleep(2000);
	}
	atomic_store(&cc.seen, seen);
	db_close(c);
	return NULL;
}

static void *cc_commander(void *arg)
{
	(void)arg;
	tt_err err = {0};
	db_conn *c = NULL;
	if (db_open(cc.path, 0, &c, &err)) {
		cc_error("commander open", &err);
		return NULL;
	}
	static const char *const verbs[] = {"promote", "kill", "pause", "resume"};
	for (long i = 0; !atomic_load(&cc.stop_cmd); i++) {
		int64_t id;
		if (db_command_add(c, 1 + i % NTRIALS, verbs[i % 4], &id, &err)) {
			cc_error("commander", &err);
			break;
		}
		atomic_fetch_add(&cc.issued, 1);
		usleep(1000);
	}
	db_close(c);
	return NULL;
}

static void test_concurrency(void)
{
	tt_err err = {0};
	memset(&cc, 0, sizeof cc);
	pthread_mutex_init(&cc.lock, NULL);
	tpath(cc.path, sizeof cc.path, "cc.db");
	db_conn *c = NULL;
	OK(db_open(cc.path, DB_CREATE, &c, &err));
	if (!c)
		return;
	int64_t study, trial;
	OK(db_study_ensure(c, "cc", "", 1, &study, &err));
	for (int i = 0; i < NTRIALS; i++)
		OK(db_trial_add(c, study, "{}", &trial, &err));
	db_close(c);

	double t0 = wall();
	pthread_t w, r, k;
	pthread_create(&w, NULL, cc_writer, NULL);
	pthread_create(&r, NULL, cc_reader, NULL);
	pthread_create(&k, NULL, cc_commander, NULL);
	usleep(3000000);
	atomic_store(&cc.stop_cmd, 1);
	pthread_join(k, NULL);
	atomic_store(&cc.stop_writer, 1);  /* one more pass drains commands */
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	double secs = wall() - t0;

	CHECK(atomic_load(&cc.errors) == 0, "%d errors, first: %s",
	      atomic_load(&cc.errors), cc.first_error);
	long written = atomic_load(&cc.written), seen = atomic_load(&cc.seen);
	long issued = atomic_load(&cc.issued), done = atomic_load(&cc.done);
	CHECK(written > 0 && seen == written, "written %ld, seen %ld", written,
	      seen);
	CHECK(issued > 0 && done == issued, "issued %ld, done %ld", issued, done);
	CHECK(raw_int(cc.path, "SELECT count(*) FROM metrics") == written,
	      "metrics rows");
	CHECK(raw_int(cc.path, "SELECT count(*) FROM commands WHERE done_at IS"
	              " NULL") == 0, "nothing pending");
	CHECK(raw_int(cc.path, "SELECT count(*) FROM commands") == issued,
	      "command rows");
	fprintf(stderr, "  concurrency: %.1f s, %ld metrics in %ld transactions,"
	        " %ld commands issued and done\n", secs, written, written / BATCH,
	        issued);
	pthread_mutex_destroy(&cc.lock);
}

/* ---- main ------------------------------------------------------------------ */

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* ---- polling reads for the explorer ------------------------------------ */

/* Each poll returns only what changed since the last one: data_version
 * moves only for another connection's commits, trials by updated_at and
 * by id, rung results by rowid (a rewritten one again), commands by id. */
static void test_polling(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "poll.db");
	db_conn *w = NULL, *r = NULL;
	OK(db_open(path, DB_CREATE, &w, &err));
	if (!w)
		return;
	int64_t study, t1, t2, t3;
	OK(db_study_ensure(w, "poll", "", 1, &study, &err));
	OK(db_trial_add(w, study, "{\"lr\":0.1}", &t1, &err));
	OK(db_trial_add(w, study, "{\"lr\":0.2}", &t2, &err));
	OK(db_open(path, DB_READONLY, &r, &err));
	if (!r) {
		db_close(w);
		return;
	}

	int64_t v0, v1, v2;
	OK(db_data_version(r, &v0, &err));
	OK(db_data_version(r, &v1, &err));
	CHECK(v0 == v1, "data_version moved without a write: %lld %lld", (long long)v0,
	      (long long)v1);

	db_trial *tr = NULL;
	int n = -1;
	OK(db_trials_since(r, study, -1e300, &tr, &n, &err));
	CHECK(n == 2 && tr && tr[0].id == t1 && tr[1].id == t2, "all trials: %d", n);
	double seen = n == 2 ? (tr[0].updated_at > tr[1].updated_at ? tr[0].updated_at
	                                                             : tr[1].updated_at) : 0;
	free(tr);
	OK(db_trials_since(r, study, seen, &tr, &n, &err));
	CHECK(n == 0, "nothing changed, yet %d trials", n);
	free(tr);
	struct timespec ms = {0, 2000000};
	nanosleep(&ms, NULL);
	OK(db_trial_set(w, t2, "running", 1, &err));
	OK(db_trial_add(w, study, "{\"lr\":0.3}", &t3, &err));
	OK(db_data_version(r, &v2, &err));
	CHECK(v2 != v1, "data_version did not move after a commit");
	OK(db_trials_since(r, study, seen, &tr, &n, &err));
	CHECK(n == 2 && tr && tr[0].id == t2 && strcmp(tr[0].state, "running") == 0 &&
	      tr[0].rung == 1 && tr[1].id == t3, "changed trials: %d", n);
	free(tr);

	OK(db_trials_from(r, study, t2, &tr, &n, &err));
	CHECK(n == 1 && tr && tr[0].id == t3, "trials after %lld: %d", (long long)t2, n);
	free(tr);

	/* rung results by rowid; a rewritten result comes again */
	db_rung *rg = NULL;
	int64_t last = -1;
	OK(db_rungs_since(r, study, 0, &last, &rg, &n, &err));
	CHECK(n == 0 && last == 0, "no rungs yet: %d, last %lld", n, (long long)last);
	free(rg);
	db_rung a = {.trial = t1, .rung = 0, .trainable = 1, .epochs = 1, .val_loss = 1,
	             .val_acc = 0.5, .seconds = 2};
	db_rung b = a;
	b.trial = t2;
	b.val_acc = NAN;
	OK(db_rung_put(w, &a, &err));
	OK(db_rung_put(w, &b, &err));
	OK(db_rungs_since(r, study, 0, &last, &rg, &n, &err));
	CHECK(n == 2 && rg && rg[0].trial == t1 && rg[0].val_acc == 0.5 &&
	      rg[1].trial == t2 && isnan(rg[1].val_acc) && last > 0,
	      "new rungs: %d, last %lld", n, (long long)last);
	free(rg);
	int64_t before = last;
	OK(db_rungs_since(r, study, last, &last, &rg, &n, &err));
	CHECK(n == 0 && last == before, "rungs again: %d", n);
	free(rg);
	a.val_acc = 0.75;
	OK(db_rung_put(w, &a, &err));
	OK(db_rungs_since(r, study, last, &last, &rg, &n, &err));
	CHECK(n == 1 && rg && rg[0].trial == t1 && rg[0].val_acc == 0.75 && last > before,
	      "a rewritten result: %d", n);
	free(rg);
	a.rung = 1;
	OK(db_rung_put(w, &a, &err));
	OK(db_rungs_of(r, t1, &rg, &n, &err));
	CHECK(n == 2 && rg && rg[0].rung == 0 && rg[1].rung == 1, "rungs of t1: %d", n);
	free(rg);

	/* commands by id, pending or done; a trial's history */
	int64_t c1, c2, c3;
	OK(db_command_add(w, t1, "pause", &c1, &err));
	OK(db_command_add(w, t2, "kill", &c2, &err));
	OK(db_command_done(w, c1, "ok", &err));
	OK(db_command_add(w, t1, "resume", &c3, &err));
	db_command *cm = NULL;
	OK(db_commands_since(r, c1, &cm, &n, &err));
	CHECK(n == 2 && cm && cm[0].id == c2 && cm[0].done_at == 0 && cm[1].id == c3,
	      "commands since %lld: %d", (long long)c1, n);
	free(cm);
	OK(db_commands_of(r, t1, &cm, &n, &err));
	CHECK(n == 2 && cm && cm[0].id == c1 && cm[0].done_at > 0 &&
	      strcmp(cm[0].result, "ok") == 0 && cm[1].id == c3, "history of t1: %d", n);
	free(cm);

	/* masks: none, then some */
	int yes = -1;
	OK(db_masks_exist(r, &yes, &err));
	CHECK(yes == 0, "masks exist in a study without gates");
	db_mask mk = {.stage = 1, .unit = -1, .prob = 0.9, .on = 1};
	OK(db_masks_put(w, t3, &mk, 1, &err));
	OK(db_masks_exist(r, &yes, &err));
	CHECK(yes == 1, "masks not seen");

	db_close(r);
	db_close(w);
}

/* A params row longer than db_trial.params (written by another program)
 * costs that row its inline params only: every list still reads, the row
 * says how long its params are, and db_trial_params reads them whole. */
static void test_long_params(void)
{
	tt_err err = {0};
	char path[600];
	tpath(path, sizeof path, "long.db");
	db_conn *c = NULL;
	int64_t study = 0, id[3] = {0};
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;
	OK(db_study_ensure(c, "long", "", 1, &study, &err));
	for (int i = 0; i < 3; i++)
		OK(db_trial_add(c, study, "{\"a\":1}", &id[i], &err));
	char sql[256];
	/* {"k":"xx...x"}: 1990 x's, 1998 bytes */
	snprintf(sql, sizeof sql, "UPDATE trials SET params = '{\"k\":\"' ||"
	         " replace(hex(zeroblob(995)), '0', 'x') || '\"}' WHERE id = %lld",
	         (long long)id[1]);
	CHECK(raw_exec(path, sql) == 0, "raw update");
	db_trial *ts = NULL;
	int nt = 0;
	OK(db_trials(c, study, &ts, &nt, &err));
	CHECK(nt == 3, "%d trials", nt);
	if (nt == 3) {
		CHECK(ts[1].params_len == 1998 && ts[1].params[0] == '\0',
		      "long row: %zu '%.20s'", ts[1].params_len, ts[1].params);
		CHECK(ts[0].params_len == 7 && strcmp(ts[0].params, "{\"a\":1}") == 0 &&
		      ts[2].params_len == 7 && strcmp(ts[2].params, "{\"a\":1}") == 0,
		      "its neighbours: '%s' '%s'", ts[0].params, ts[2].params);
	}
	free(ts);
	OK(db_trials_from(c, study, 0, &ts, &nt, &err));
	CHECK(nt == 3, "%d new trials", nt);
	free(ts);
	db_trial t;
	OK(db_trial_get(c, id[1], &t, &err));
	CHECK(t.params_len == 1998, "%zu", t.params_len);
	char *p = NULL;
	OK(db_trial_params(c, id[1], &p, &err));
	CHECK(p && strlen(p) == 1998 && strncmp(p, "{\"k\":\"xxx", 9) == 0 &&
	      strcmp(p + 1995, "x\"}") == 0, "whole: %.20s", p ? p : "(null)");
	free(p);
	FAILS(db_trial_params(c, 999, &p, &err), TT_EINPUT, "no trial 999");
	CHECK(p == NULL, "no params for no trial");
	db_close(c);
}

/*
 * Checkpoint pruning: what resuming and promotion read stays, the rest
 * goes.  Trials (rung results in brackets, checkpoints after the bar):
 *   1 done     [0: .5, 1: .9] | 0 1    promoted and finished rung 1
 *   2 done     [0: .6]        | 0      may still be promoted
 *   3 running  [0: .7]        | 0 1    running rung 1
 *   4 killed   [0: .1]        | 0 1    killed while at rung 1
 *   5 paused   []             | 0      paused in rung 0
 *   6 done     [0: .8, 1: .2, 2: .3] | 0 1 2  at the top rung 2
 */
static void test_prune(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "prune.db");
	db_conn *c = NULL;
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;
	int64_t study, id[7];
	OK(db_study_ensure(c, "p", "", 1, &study, &err));
	static const char *const st[7] = { NULL, "done", "done", "running", "killed",
	                                   "paused", "done" };
	static const double acc[7][3] = { {0}, {.5, .9, -1}, {.6, -1, -1}, {.7, -1, -1},
	                                  {.1, -1, -1}, {-1, -1, -1}, {.8, .2, .3} };
	static const int nck[7] = { 0, 2, 1, 2, 2, 1, 3 };
	for (int t = 1; t <= 6; t++) {
		OK(db_trial_add(c, study, "{}", &id[t], &err));
		OK(db_trial_set(c, id[t], st[t], 0, &err));
		for (int r = 0; r < 3; r++)
			if (acc[t][r] >= 0) {
				db_rung row = { .trial = id[t], .rung = r, .trainable = 1, .epochs = 1,
				                .val_loss = 1, .val_acc = acc[t][r] };
				OK(db_rung_put(c, &row, &err));
			}
		for (int r = 0; r < nck[t]; r++)
			OK(db_checkpoint_put(c, id[t], r, 10, "ck", 2, &err));
	}
	char left[256];
	const char *q = "SELECT group_concat(trial_id || ':' || rung, ' ') FROM"
	                " (SELECT trial_id, rung FROM checkpoints ORDER BY 1, 2)";
	/* restart mode, keep the best 1: 6:0 (best of rung 0, .8), 1:1 (.9),
	 * 6:2 (.3); running 3:1 and paused 5:0 have no result yet */
	db_conn *c2 = NULL;
	OK(db_open(path, 0, &c2, &err));
	int n = -1;
	OK(db_checkpoints_prune(c, 0, 2, 1, &n, &err));
	raw_text(path, q, left, sizeof left);
	CHECK(strcmp(left, "1:1 3:1 5:0 6:0 6:2") == 0 && n == 6, "restart: left %s, %d gone",
	      left, n);
	/* continue mode, nothing kept for being best: 1:1 and 2:0 wait for a
	 * promotion, 3:0 starts the running rung 1 of trial 3; the top rung's
	 * and the killed trial's go */
	db_close(c);
	unlink(path);
	c = NULL;
	db_close(c2);
	OK(db_open(path, DB_CREATE, &c, &err));
	if (!c)
		return;
	OK(db_study_ensure(c, "p", "", 1, &study, &err));
	for (int t = 1; t <= 6; t++) {
		OK(db_trial_add(c, study, "{}", &id[t], &err));
		OK(db_trial_set(c, id[t], st[t], 0, &err));
		for (int r = 0; r < 3; r++)
			if (acc[t][r] >= 0) {
				db_rung row = { .trial = id[t], .rung = r, .trainable = 1, .epochs = 1,
				                .val_loss = 1, .val_acc = acc[t][r] };
				OK(db_rung_put(c, &row, &err));
			}
		for (int r = 0; r < nck[t]; r++)
			OK(db_checkpoint_put(c, id[t], r, 10, "ck", 2, &err));
	}
	OK(db_begin(c, &err));
	OK(db_checkpoints_prune(c, 1, 2, 0, &n, &err));
	OK(db_commit(c, &err));
	raw_text(path, q, left, sizeof left);
	CHECK(strcmp(left, "1:1 2:0 3:0 3:1 5:0") == 0 && n == 6, "continue: left %s, %d gone",
	      left, n);
	/* a read-only connection refuses */
	db_close(c);
	OK(db_open(path, DB_READONLY, &c, &err));
	if (c)
		FAILS(db_checkpoints_prune(c, 1, 2, 0, &n, &err), TT_EINPUT, "read-only");
	db_close(c);
}

/* db_set_lock_wait: a write that finds another connection's write lock
 * asks the wait function, which here ends the holder's transaction on its
 * second call; giving up fails the write as "database is locked". */
struct lw { db_conn *holder; int calls, give_up; double waited; };
static int lw_wait(void *ud, const char *path, double waited)
{
	struct lw *l = ud;
	(void)path;
	l->calls++;
	l->waited = waited;
	if (l->give_up)
		return 1;
	if (l->calls == 2) {
		tt_err e = {0};
		db_commit(l->holder, &e);
	}
	return 0;
}

static void test_lock_wait(void)
{
	tt_err err = {0};
	char path[128];
	tpath(path, sizeof path, "lock.db");
	db_conn *a = NULL, *b = NULL;
	OK(db_open(path, DB_CREATE, &a, &err));
	OK(db_open(path, 0, &b, &err));
	if (!a || !b)
		goto out;
	int64_t study;
	OK(db_study_ensure(a, "l", "", 1, &study, &err));
	struct lw l = { b, 0, 0, 0 };
	db_set_lock_wait(a, 20, lw_wait, &l);
	OK(db_begin(b, &err));
	OK(db_study_set_state(b, study, "done", &err));
	OK(db_study_set_state(a, study, "running", &err));
	CHECK(l.calls == 2 && l.waited > 0, "%d waits, %.3f s", l.calls, l.waited);
	l = (struct lw){ b, 0, 1, 0 };
	OK(db_begin(b, &err));
	FAILS(db_study_set_state(a, study, "done", &err), TT_ERUNTIME, "locked");
	CHECK(l.calls == 1, "%d waits before giving up", l.calls);
	db_rollback(b);
	OK(db_study_set_state(a, study, "done", &err));
out:
	db_close(a);
	db_close(b);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/tt_db_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	double t0 = wall();
	TT_RUN(test_schema);
	TT_RUN(test_roundtrip);
	TT_RUN(test_migrate);
	TT_RUN(test_fingerprint);
	TT_RUN(test_faults);
	TT_RUN(test_hyper);
	TT_RUN(test_migrate_hyper);
	TT_RUN(test_migrate_task_acc);
	TT_RUN(test_concurrency);
	TT_RUN(test_polling);
	TT_RUN(test_long_params);
	TT_RUN(test_prune);
	TT_RUN(test_lock_wait);
	fprintf(stderr, "  test_db: %.1f s\n", wall() - t0);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	TT_EXIT();
}
