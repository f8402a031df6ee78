/*
 * main.c — the command line.  The only place that maps statuses to exit
 * codes: 0 success, 1 runtime failure (a diverged run included), 2 bad
 * usage or bad input.
 *
 * Options are one const table: it drives parsing, range checks, error
 * messages and --help, so they can never disagree.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <pthread.h>
#include <sys/stat.h>

#include "clock.h"
#include "data.h"
#include "db.h"
#include "fcache.h"
#include "runner.h"
#include "sanitize.h"
#include "study.h"
#include "theme.h"
#include "train.h"
#include "trainopt.h"
#include "tstate.h"
#include "ui.h"

#define TT_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tunetop STUDY.ini [explorer options]   run a study with the explorer open\n"
	        "                                              (headless when not on a terminal)\n"
	        "       tunetop attach STUDY.db [explorer options]\n"
	        "                                              the explorer on a live or finished study\n"
	        "       tunetop demo [explorer options]        a small fast study with the explorer\n"
	        "       tunetop run --headless STUDY.ini       run a study, progress on stderr\n"
	        "       tunetop status STUDY.db                the study as a table\n"
	        "       tunetop export STUDY.db --format csv|json\n"
	        "                                              trials and rung results\n"
	        "       tunetop cmd STUDY.db promote|kill|pause|resume TRIAL\n"
	        "                                              send a command to a running study\n"
	        "       tunetop train [options]                train one network, print JSON\n"
	        "       tunetop help | --help | --version\n"
	        "\n"
	        "explorer options:\n"
	        "  --readonly         open the database read-only; promote, kill and pause\n"
	        "                     are refused\n"
	        "  --theme NAME       colours: a theme name or a path to a .theme file\n"
	        "                     (shipped:");
	for (const char *const *n = ui_theme_builtin_names(); *n; n++)
		fprintf(f, " %s", *n);
	fprintf(f, ")\n"
	        "  -d, --delay TENTHS refresh interval in tenths of a second, 1..600 "
	        "(default 2)\n"
	        "\n"
	        "explorer keys:\n");
	for (const char *const *k = ui_key_help(); *k; k++)
		fprintf(f, "  %s\n", *k);
	fprintf(f, "\nSee tunetop(1) and tunetop-study(5).\n");
}

static void train_help(FILE *f)
{
	fprintf(f, "usage: tunetop train [options]\n\n"
	           "Train one network; progress on stderr, one JSON object on stdout.\n\n"
	           "options:\n");
	tt_trainopt_help(f);
	fprintf(f, "\nexit status: 0 success, 1 runtime failure or diverged run, "
	           "2 bad usage or input\n");
}

/* Parse one value into the config; on failure print why and return 2. */
static int set_opt(tt_train_config *c, const tt_trainopt *o, const char *v)
{
	char buf[512];
	const char *why = tt_trainopt_parse(o, v, c, NULL, buf, sizeof buf);
	if (!why)
		return 0;
	if (o->type == TT_TO_GATES) /* tt_gate_parse's message names --gates */
		fprintf(stderr, "tunetop train: %s\n", why);
	else
		fprintf(stderr, "tunetop train: --%s: '%s': expected %s\n", o->name, v, why);
	return 2;
}

/* ---- progress ---------------------------------------------------------- */

typedef struct progress {
	int tty;
	int epochs;
	double start, last_draw;
	long total;
	void *ck;                /* --save-checkpoint: the last blob */
	size_t ck_len;
} progress;

static int on_step(void *ud, long step, long total, int epoch, double loss)
{
	progress *p = ud;
	p->total = total;
	double t = tt_clock_mono();
	if (!p->tty || (t - p->last_draw < 0.1 && step != total))
		return 0;
	p->last_draw = t;
	int width = 30, done = (int)(width * step / total);
	double el = t - p->start, eta = step ? el * (total - step) / step : 0;
	fprintf(stderr, "\r\033[K[%.*s%*s] %3.0f%%  step %ld/%ld  epoch %d  loss %.4f  eta %.0fs",
	        done, "##############################", width - done, "",
	        100.0 * step / total, step, total, epoch + 1, loss, eta);
	return 0;
}

static void on_epoch(void *ud, int epoch, long step, double tl, double ta,
                     double vl, double va, double sps)
{
	progress *p = ud;
	if (p->tty)
		fputs("\r\033[K", stderr);
	fprintf(stderr,
	        "epoch %d  step %ld/%ld  loss %.4f  acc %.2f%%  val_loss %.4f  "
	        "val_acc %.2f%%  %.0f samples/s  %.1fs\n",
	        epoch, step, p->total, tl, 100 * ta, vl, 100 * va, sps, tt_clock_mono() - p->start);
}

/* --save-checkpoint: keep the run's last blob. */
static int keep_ck(void *ud, long step, const void *blob, size_t len)
{
	progress *p = ud;
	(void)step;
	void *b = realloc(p->ck, len ? len : 1);
	if (!b)
		return 1;
	memcpy(b, blob, len);
	p->ck = b;
	p->ck_len = len;
	return 0;
}

/* Write len bytes to path through path.tmp and a rename; TT_EINPUT naming
 * the file when it cannot. */
static int save_file(const char *path, const void *b, size_t len, tt_err *err)
{
	char tmp[4200];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return tt_err_set(err, TT_EINPUT, "--save-checkpoint '%.64s...': expected a "
		                  "shorter path", path);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return tt_err_set(err, TT_EINPUT, "--save-checkpoint '%s': cannot write: %s",
		                  path, strerror(errno));
	int bad = (b && fwrite(b, 1, len, f) != len) | fflush(f) | ferror(f);
	bad |= fclose(f);
	if (!b) {
		remove(tmp);
		return TT_OK;
	}
	if (bad || rename(tmp, path)) {
		int e = errno;
		remove(tmp);
		return tt_err_set(err, TT_ERUNTIME, "--save-checkpoint '%s': %s", path,
		                  strerror(e));
	}
	return TT_OK;
}

/* ---- commands ---------------------------------------------------------- */

static int cmd_train(int argc, char **argv)
{
	tt_train_config c;
	tt_train_defaults(&c);
	int lr_set = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			train_help(stdout);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "tunetop train: unexpected argument '%s' (see --help)\n", a);
			return 2;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const tt_trainopt *o = NULL;
		for (int k = 0; k < tt_trainopt_count; k++)
			if ((tt_trainopts[k].where & TT_TO_CLI) &&
			    strlen(tt_trainopts[k].name) == nlen &&
			    strncmp(tt_trainopts[k].name, name, nlen) == 0)
				o = &tt_trainopts[k];
		if (!o) {
			fprintf(stderr, "tunetop train: unknown option '--%.*s' (see --help)\n",
			        (int)nlen, name);
			return 2;
		}
		if (o->type == TT_TO_FLAG) {
			if (eq) {
				fprintf(stderr, "tunetop train: --%s takes no value\n", o->name);
				return 2;
			}
			*(int *)((char *)&c + o->off) = 1;
			continue;
		}
		const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!v) {
			fprintf(stderr, "tunetop train: --%s needs a value (%s)\n", o->name, o->meta);
			return 2;
		}
		if (set_opt(&c, o, v))
			return 2;
		lr_set |= strcmp(o->name, "lr") == 0;
	}
	if (!lr_set)
		tt_trainopt_lr_follow(&c);

	tt_err err = {0};
	int nst;
	if (tt_train_check(&c, &nst, &err)) {
		fprintf(stderr, "tunetop train: %s\n", err.msg);
		return 2;
	}
	/* a file that cannot be written is refused before any training */
	if (c.save_checkpoint && save_file(c.save_checkpoint, NULL, 0, &err)) {
		fprintf(stderr, "tunetop train: %s\n", err.msg);
		return 2;
	}
	tt_train_data data;
	int rc = tt_train_data_load(&c, &data, &err);
	if (rc) {
		fprintf(stderr, "tunetop train: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	progress p = { .tty = isatty(2), .start = tt_clock_mono() };
	char depth[16] = "all";
	if (c.trainable)
		snprintf(depth, sizeof depth, "%d", c.trainable);
	fprintf(stderr, "tunetop train: %s on %s (%d train, %d val%s), trainable %s "
	        "of %d stages, batch %d, %d threads\n", c.model, data.source,
	        data.train.n, data.val.n, c.test ? ", test" : "", depth, nst, c.batch,
	        c.threads);
	tt_train_hooks hooks = { .ud = &p, .on_step = on_step, .on_epoch = on_epoch,
	                         .on_checkpoint = c.save_checkpoint ? keep_ck : NULL };
	tt_train_result r;
	/* more than the machine has only fails an allocation, which the
	 * cache answers by recomputing */
	if (c.feature_cache > 0)
		c.fcache = tt_fcache_new((size_t)(c.feature_cache * 1048576.0));
	rc = tt_train_run(&c, &data, &hooks, &r, &err);
	tt_fcache_free(c.fcache);
	tt_train_data_free(&data);
	if (rc == TT_OK || rc == TT_EDIVERGED) {
		if (c.gates.strength > 0 && r.gates.ngates == 0)
			fprintf(stderr, "tunetop train: --gates: the trainable stages "
			        "have no unit or layer to gate (the head never is); "
			        "the run was ungated\n");
		tt_train_result_json(&r, stdout);
		fflush(stdout);
		tt_train_result_free(&r);
	}
	if (rc == TT_OK && c.save_checkpoint) {
		rc = p.ck ? save_file(c.save_checkpoint, p.ck, p.ck_len, &err)
		          : tt_err_set(&err, TT_ERUNTIME, "--save-checkpoint: the run kept no "
		                       "checkpoint");
		if (rc == TT_OK)
			fprintf(stderr, "tunetop train: checkpoint saved to %s (%zu bytes)\n",
			        c.save_checkpoint, p.ck_len);
	}
	free(p.ck);
	if (rc) {
		if (p.tty)
			fputs("\r\033[K", stderr);
		fprintf(stderr, "tunetop train: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	return 0;
}

/* ---- studies ----------------------------------------------------------- */

static volatile int interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int cmd_run(const char *path)
{
	tt_study st;
	tt_err err = {0};
	int rc = tt_study_load(path, &st, &err);
	if (rc) {
		fprintf(stderr, "tunetop: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	tt_runner_opts o = { .log = stderr, .stop = &interrupted };
	rc = tt_runner_run(&st, &o, &err);
	tt_study_free(&st);
	if (rc) {
		fprintf(stderr, "tunetop: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	if (interrupted) {
		fprintf(stderr, "tunetop: interrupted; run the same command again to resume\n");
		return 1;
	}
	return 0;
}

/* Open a study database for a reading command; prints the error. */
static db_conn *open_db(const char *cmd, const char *path, int flags)
{
	db_conn *db = NULL;
	tt_err err = {0};
	if (db_open(path, flags, &db, &err)) {
		fprintf(stderr, "tunetop %s: %s\n", cmd, err.msg);
		return NULL;
	}
	return db;
}

typedef struct study_view {
	db_study study;
	db_trial *t;
	int nt;
	db_rung *r;
	int nr;
	db_rank_corr *rc;
	int nrc;
	int nrungs;
} study_view;

static void view_free(study_view *v);

/* 0, or the exit status (2: a damaged database, 1: a runtime failure)
 * after printing why; v is freed then. */
static int view_load(const char *cmd, db_conn *db, study_view *v)
{
	tt_err err = {0};
	memset(v, 0, sizeof *v);
	if (db_study_get(db, &v->study, &err) ||
	    db_trials(db, v->study.id, &v->t, &v->nt, &err) ||
	    db_rungs(db, v->study.id, &v->r, &v->nr, &err) ||
	    db_rank_corr_list(db, v->study.id, &v->rc, &v->nrc, &err)) {
		fprintf(stderr, "tunetop %s: %s\n", cmd, err.msg);
		view_free(v);
		return err.code == TT_EINPUT ? 2 : 1;
	}
	for (int k = 0; k < v->nr; k++)
		if (v->r[k].rung + 1 > v->nrungs)
			v->nrungs = v->r[k].rung + 1;
	return 0;
}

static void view_free(study_view *v)
{
	free(v->study.config);
	free(v->t);
	free(v->r);
	free(v->rc);
}

static const db_rung *find_rung(const study_view *v, int64_t trial, int rung)
{
	for (int k = 0; k < v->nr; k++)
		if (v->r[k].trial == trial && v->r[k].rung == rung)
			return &v->r[k];
	return NULL;
}

/*
 * Trial t's params text whole: t->params, or read again by id when the row
 * is longer than db_trial holds (*own, to free).  NULL, with a message on
 * stderr naming the trial, when it cannot be read.
 */
static const char *trial_params(const char *cmd, db_conn *db, const db_trial *t,
                                char **own)
{
	*own = NULL;
	if (t->params_len < sizeof t->params)
		return t->params;
	tt_err err = {0};
	if (db_trial_params(db, t->id, own, &err)) {
		fprintf(stderr, "tunetop %s: trial %lld: its %zu-byte params: %s\n", cmd,
		        (long long)t->id, t->params_len, err.msg);
		return NULL;
	}
	return *own;
}

/* "12.3 KiB" / "4.5 MiB" / "1.2 GiB" into buf[32]. */
static const char *human_bytes(int64_t n, char *buf)
{
	double x = (double)n;
	const char *unit = "KiB";
	x /= 1024;
	if (x >= 1024)
		x /= 1024, unit = "MiB";
	if (x >= 1024)
		x /= 1024, unit = "GiB";
	snprintf(buf, 32, "%.1f %s", x, unit);
	return buf;
}

static int cmd_status(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tunetop status STUDY.db\n");
		return 2;
	}
	db_conn *db = open_db("status", argv[1], DB_READONLY);
	if (!db)
		return 2;
	study_view v;
	int vrc = view_load("status", db, &v);
	if (vrc) {
		db_close(db);
		return vrc;
	}
	int counts[TT_T_COUNT] = {0};
	for (int i = 0; i < v.nt; i++) {
		int k = tt_tstate_find(v.t[i].state);
		if (k >= 0)
			counts[k]++;
	}
	/* every text from the database goes out through tt_san_term */
	printf("study ");
	tt_san_term_put(stdout, v.study.name, 0);
	printf(" (");
	tt_san_term_put(stdout, v.study.state, 0);
	printf("): %d trials", v.nt);
	for (int k = 0; k < TT_T_COUNT; k++)
		if (counts[k])
			printf(", %d %s", counts[k], tt_tstates[k].name);
	int64_t bytes, ckpt;
	int nckpt;
	if (db_size(db, &bytes, &ckpt, &nckpt, NULL) == TT_OK) {
		char b1[32], b2[32];
		printf("\ndatabase: %s, checkpoints %s in %d", human_bytes(bytes, b1),
		       human_bytes(ckpt, b2), nckpt);
	}
	printf("\n\n%6s  %-9s %4s  ", "trial", "state", "rung");
	for (int r = 0; r < v.nrungs; r++)
		printf(" acc@%-3d", r);
	printf("  params\n");
	int rc = 0;
	for (int i = 0; i < v.nt; i++) {
		printf("%6lld  ", (long long)v.t[i].id);
		tt_san_term_put(stdout, v.t[i].state, 9);
		printf(" %4d  ", v.t[i].rung);
		for (int r = 0; r < v.nrungs; r++) {
			const db_rung *x = find_rung(&v, v.t[i].id, r);
			if (x)
				printf(" %7.4f", x->val_acc);
			else
				printf(" %7s", "-");
		}
		printf("  ");
		char *own;
		const char *params = trial_params("status", db, &v.t[i], &own);
		if (params)
			tt_san_term_put(stdout, params, 0);
		else
			printf("(unreadable)"), rc = 1;
		free(own);
		printf("\n");
	}
	if (v.nrc) {
		printf("\nrank correlation  %5s %5s %5s %9s %8s\n", "rung", "rung", "n",
		       "spearman", "kendall");
		for (int k = 0; k < v.nrc; k++)
			printf("%17s %5d %5d %5d %9.3f %8.3f\n", "", v.rc[k].rung_a, v.rc[k].rung_b,
			       v.rc[k].n, v.rc[k].spearman, v.rc[k].kendall);
	}
	view_free(&v);
	db_close(db);
	return rc;
}

static void put_num(FILE *f, double x)
{
	if (isfinite(x))
		fprintf(f, "%.9g", x);
	else
		fputs("null", f);
}

/* "trial,"state","params"," as CSV fields (tt_san_csv_put). */
static void put_csv_trial(const db_trial *t, const char *params)
{
	printf("%lld,", (long long)t->id);
	tt_san_csv_put(stdout, t->state);
	putchar(',');
	tt_san_csv_put(stdout, params);
	putchar(',');
}

/*
 * Params as a JSON value: the stored text parsed and written again
 * (tt_san_json_value), never pasted, so that a row cannot add keys to its
 * trial or break the document.  Text that is not a JSON object goes out as
 * a JSON string, with a notice on stderr naming the trial.
 */
static void put_json_params(const db_trial *t, const char *params)
{
	if (!params) {
		fputs("null", stdout);
	} else if (!params[0]) {
		fputs("{}", stdout);
	} else if (tt_san_json_value(stdout, params, 1)) {
		fprintf(stderr, "tunetop export: trial %lld: params are not a JSON object; "
		        "exported as a JSON string\n", (long long)t->id);
		tt_san_json_put(stdout, params);
	}
}

static int cmd_export(int argc, char **argv)
{
	const char *path = NULL, *format = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
			format = argv[++i];
		else if (strncmp(argv[i], "--format=", 9) == 0)
			format = argv[i] + 9;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "tunetop export: unexpected '%s'; usage: tunetop export "
			        "STUDY.db --format csv|json\n", argv[i]);
			return 2;
		}
	}
	if (!path || !format || (strcmp(format, "csv") && strcmp(format, "json"))) {
		fprintf(stderr, "tunetop export: usage: tunetop export STUDY.db --format csv|json"
		        "%s%s%s\n", format ? " (got format '" : "", format ? format : "",
		        format ? "')" : "");
		return 2;
	}
	db_conn *db = open_db("export", path, DB_READONLY);
	if (!db)
		return 2;
	study_view v;
	int vrc = view_load("export", db, &v);
	if (vrc) {
		db_close(db);
		return vrc;
	}
	/* every text from the database goes out through tt_san_csv_put or
	 * tt_san_json_put / tt_san_json_value */
	int rc = 0;
	if (strcmp(format, "csv") == 0) {
		printf("trial,state,params,rung,trainable,epochs,val_loss,val_acc,seconds,promoted\n");
		for (int i = 0; i < v.nt; i++) {
			char *own;
			const char *params = trial_params("export", db, &v.t[i], &own);
			if (!params)
				params = "", rc = 1;
			int any = 0;
			for (int r = 0; r < v.nrungs; r++) {
				const db_rung *x = find_rung(&v, v.t[i].id, r);
				if (!x)
					continue;
				any = 1;
				put_csv_trial(&v.t[i], params);
				printf("%d,%d,%g,%.9g,%.9g,%.6g,%d\n", r, x->trainable, x->epochs,
				       x->val_loss, x->val_acc, x->seconds, x->promoted);
			}
			if (!any) {
				put_csv_trial(&v.t[i], params);
				printf(",,,,,,\n");
			}
			free(own);
		}
	} else {
		printf("{\"study\":");
		tt_san_json_put(stdout, v.study.name);
		printf(",\"state\":");
		tt_san_json_put(stdout, v.study.state);
		printf(",\"seed\":%llu,\"trials\":[", (unsigned long long)v.study.seed);
		for (int i = 0; i < v.nt; i++) {
			printf("%s{\"id\":%lld,\"state\":", i ? "," : "", (long long)v.t[i].id);
			tt_san_json_put(stdout, v.t[i].state);
			printf(",\"rung\":%d,\"params\":", v.t[i].rung);
			char *own;
			const char *params = trial_params("export", db, &v.t[i], &own);
			rc |= !params;
			put_json_params(&v.t[i], params);
			free(own);
			printf(",\"rungs\":[");
			int first = 1;
			for (int r = 0; r < v.nrungs; r++) {
				const db_rung *x = find_rung(&v, v.t[i].id, r);
				if (!x)
					continue;
				printf("%s{\"rung\":%d,\"trainable\":%d,\"epochs\":",
				       first ? "" : ",", r, x->trainable);
				put_num(stdout, x->epochs);
				printf(",\"val_loss\":");
				put_num(stdout, x->val_loss);
				printf(",\"val_acc\":");
				put_num(stdout, x->val_acc);
				printf(",\"seconds\":");
				put_num(stdout, x->seconds);
				printf(",\"promoted\":%s}", x->promoted ? "true" : "false");
				first = 0;
			}
			printf("]}");
		}
		printf("],\"rank_corr\":[");
		for (int k = 0; k < v.nrc; k++) {
			printf("%s{\"rung_a\":%d,\"rung_b\":%d,\"n\":%d,\"spearman\":", k ? "," : "",
			       v.rc[k].rung_a, v.rc[k].rung_b, v.rc[k].n);
			put_num(stdout, v.rc[k].spearman);
			printf(",\"kendall\":");
			put_num(stdout, v.rc[k].kendall);
			printf("}");
		}
		printf("]}\n");
	}
	view_free(&v);
	db_close(db);
	return rc;
}

static int cmd_cmd(int argc, char **argv)
{
	static const char *const verbs[] = { "promote", "kill", "pause", "resume" };
	if (argc != 4) {
		fprintf(stderr, "usage: tunetop cmd STUDY.db promote|kill|pause|resume TRIAL\n");
		return 2;
	}
	int ok = 0;
	for (int k = 0; k < 4; k++)
		ok |= strcmp(argv[2], verbs[k]) == 0;
	char *end;
	errno = 0;
	long long trial = strtoll(argv[3], &end, 10);
	int range = errno == ERANGE; /* strtoll clamps: never a real id */
	if (!ok) {
		fprintf(stderr, "tunetop cmd: '%s': expected promote, kill, pause or resume\n",
		        argv[2]);
		return 2;
	}
	if (end == argv[3] || *end || trial < 1 || range) {
		fprintf(stderr, "tunetop cmd: trial '%s': %sexpected a trial id (a positive "
		        "integer)\n", argv[3], range ? "too large, " : "");
		return 2;
	}
	db_conn *db = open_db("cmd", argv[1], 0);
	if (!db)
		return 2;
	tt_err err = {0};
	db_trial t;
	if (db_trial_get(db, trial, &t, &err)) {
		fprintf(stderr, "tunetop cmd: %s\n", err.msg);
		db_close(db);
		return err.code == TT_EINPUT ? 2 : 1;
	}
	int64_t id;
	if (db_command_add(db, trial, argv[2], &id, &err)) {
		fprintf(stderr, "tunetop cmd: %s\n", err.msg);
		db_close(db);
		return err.code == TT_EINPUT ? 2 : 1;
	}
	db_study study;
	int running = 0;
	if (db_study_get(db, &study, NULL) == TT_OK) {
		running = strcmp(study.state, "running") == 0;
		free(study.config);
	}
	printf("command %lld: %s trial %lld queued; %s\n", (long long)id, argv[2], trial,
	       running ? "the running study applies it between training steps" :
	       "the study is not running: it applies the command when it runs again");
	db_close(db);
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- the explorer ------------------------------------------------------ */

typedef struct ex_flags {
	const char *theme;
	int delay;       /* tenths of a second */
	int readonly;
	const char *notice; /* the theme's, for the message line; NULL: none */
} ex_flags;

/* Explorer options from argv[first..]; prints why and returns 2 on a bad
 * one.  The theme is loaded here so that a bad one fails before anything
 * starts. */
static int ex_parse(const char *cmd, int argc, char **argv, int first, ex_flags *f,
                    ui_theme **theme)
{
	*f = (ex_flags){ NULL, 2, 0, NULL };
	*theme = NULL;
	for (int i = first; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (strcmp(a, "--readonly") == 0) {
			f->readonly = 1;
			continue;
		}
		if (strcmp(a, "--theme") == 0 || strcmp(a, "-d") == 0 ||
		    strcmp(a, "--delay") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: %s needs a value\n", cmd, a);
				return 2;
			}
			v = argv[++i];
		} else if (strncmp(a, "--theme=", 8) == 0 || strncmp(a, "--delay=", 8) == 0) {
			v = a + 8;
		} else if (strncmp(a, "-d", 2) == 0 && a[2]) {
			v = a + 2;
		} else {
			fprintf(stderr, "%s: unexpected argument '%s' (see tunetop --help)\n", cmd, a);
			return 2;
		}
		if (strncmp(a, "--theme", 7) == 0) {
			f->theme = v;
			continue;
		}
		char *end;
		errno = 0;
		long d = strtol(v, &end, 10);
		if (errno || end == v || *end || d < 1 || d > 600) {
			fprintf(stderr, "%s: -d '%s': expected tenths of a second, 1..600\n", cmd, v);
			return 2;
		}
		f->delay = (int)d;
	}
	tt_err err = {0};
	if (ui_theme_load(f->theme ? f->theme : "default", theme, &err)) {
		fprintf(stderr, "%s: %s\n", cmd, err.msg);
		return 2;
	}
	/* kept apart from the theme, which the explorer may replace */
	static char notice[512];
	notice[0] = 0;
	if (ui_theme_notice(*theme)) {
		snprintf(notice, sizeof notice, "%s", ui_theme_notice(*theme));
		fprintf(stderr, "%s: %s\n", cmd, notice);
	}
	f->notice = notice[0] ? notice : NULL;
	return 0;
}

typedef struct engine {
	const tt_study *st;
	tt_runner_opts o;
	tt_err err;
	int rc;
	volatile int done;
} engine;

static void *engine_main(void *arg)
{
	engine *e = arg;
	e->rc = tt_runner_run(e->st, &e->o, &e->err);
	if (!e->rc)
		e->err.code = 0;
	__atomic_store_n(&e->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void on_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/*
 * The study with the explorer open: the engine runs tt_runner_run on a
 * thread of its own (its log goes to STUDY.log beside the database), the
 * explorer runs on the main thread with its own connection.  Quitting,
 * SIGINT or SIGTERM set the one stop flag: the engine stops at its next
 * training step, the thread is joined, and the study stays resumable.
 */
static int explore_study(const char *path, const ex_flags *f, ui_theme *theme,
                         const char *notice, long metric_every)
{
	tt_study st;
	tt_err err = {0};
	int rc = tt_study_load(path, &st, &err);
	if (rc) {
		ui_theme_free(theme);
		fprintf(stderr, "tunetop: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	/* the study file is checked against its database, and the database
	 * and its study row exist before the explorer opens them; the engine
	 * finds the same row */
	if ((rc = tt_runner_prepare(&st, &err))) {
		ui_theme_free(theme);
		tt_study_free(&st);
		fprintf(stderr, "tunetop: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	char logpath[600];
	size_t n = strlen(st.db);
	snprintf(logpath, sizeof logpath, "%.*s.log",
	         (int)(ends_with(st.db, ".db") ? n - 3 : n), st.db);
	FILE *log = fopen(logpath, "a");
	if (log)
		setvbuf(log, NULL, _IOLBF, 0);
	on_signals();
	static engine e;
	memset(&e, 0, sizeof e);
	e.st = &st;
	e.o = (tt_runner_opts){ .log = log, .stop = &interrupted, .metric_every = metric_every };
	pthread_t th;
	if (pthread_create(&th, NULL, engine_main, &e)) {
		ui_theme_free(theme);
		tt_study_free(&st);
		if (log)
			fclose(log);
		fprintf(stderr, "tunetop: cannot start the engine thread\n");
		return 1;
	}
	ui_opts uo = { .db = st.db, .readonly = f->readonly, .theme = theme, .delay = f->delay,
	               .stop = &interrupted, .engine_done = &e.done, .engine_err = &e.err,
	               .notice = notice };
	tt_err uerr = {0};
	int urc = ui_run(&uo, &uerr);
	interrupted = 1;
	if (!__atomic_load_n(&e.done, __ATOMIC_ACQUIRE))
		fprintf(stderr, "tunetop: stopping the study at the next training step...\n");
	pthread_join(th, NULL);
	if (log)
		fclose(log);
	if (urc)
		fprintf(stderr, "tunetop: %s\n", uerr.msg);
	if (e.rc)
		fprintf(stderr, "tunetop: %s\n", e.err.msg);
	else
		fprintf(stderr, "tunetop: study %s in %s (log: %s); run the same command to "
		        "resume it or see it again\n", st.name, st.db, log ? logpath : "none");
	tt_study_free(&st);
	if (urc || e.rc)
		return (urc ? urc : e.rc) == TT_EINPUT ? 2 : 1;
	return 0;
}

static int cmd_study(int argc, char **argv)
{
	/* no terminal: scripts and `make run` under CI run it headless */
	if (!isatty(0) || !isatty(1)) {
		if (argc > 1) {
			fprintf(stderr, "tunetop: explorer options need a terminal; headless: "
			        "tunetop run --headless %s\n", argv[0]);
			return 2;
		}
		return cmd_run(argv[0]);
	}
	ex_flags f;
	ui_theme *theme;
	if (ex_parse("tunetop", argc, argv, 1, &f, &theme))
		return 2;
	return explore_study(argv[0], &f, theme, f.notice, 0);
}

static int cmd_attach(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: tunetop attach STUDY.db [--readonly] [--theme NAME] "
		        "[-d TENTHS]\n");
		return 2;
	}
	ex_flags f;
	ui_theme *theme;
	if (ex_parse("tunetop attach", argc, argv, 2, &f, &theme))
		return 2;
	if (!isatty(0) || !isatty(1)) {
		ui_theme_free(theme);
		fprintf(stderr, "tunetop attach: needs a terminal; for a one-shot table: "
		        "tunetop status %s\n", argv[1]);
		return 2;
	}
	on_signals();
	ui_opts uo = { .db = argv[1], .readonly = f.readonly, .theme = theme, .delay = f.delay,
	               .stop = &interrupted, .notice = f.notice };
	tt_err err = {0};
	int rc = ui_run(&uo, &err);
	if (rc) {
		fprintf(stderr, "tunetop attach: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	return 0;
}

/* The demo: a small study that moves every pane within seconds.  Real
 * Fashion-MNIST when the Debian package is installed, else the synthetic
 * set, and the explorer says so. */
static const char demo_ini[] =
	"# demo.ini — written by `tunetop demo`: a small fast study.\n"
	"[study]\nname = demo\nseed = 11\nworkers = 2\ncheckpoint_every = 20\n\n"
	"[data]\nsource = %s\ntrain_size = 2048\nval_size = 512\n\n"
	"[model]\nspec = cnn:8,16        # 4 stages: stem, two blocks, head\n\n"
	"[space]\nlr = log-float 0.005 0.3\nmomentum = float 0.5 0.95\n"
	"batch = choice 32,64\n"
	"gate-strength = log-float 0.05 0.5  # the masks pane fills at depth >= 2\n\n"
	"# 3 epochs a rung: warm-up, gates, fine-tuning of the 0/1 network\n"
	"[fidelity]\nkind = frozen\nmin_trainable = 1\neta = 2\nepochs = 3\n\n"
	"[scheduler]\nkind = asha\nmax_trials = 24\nsampler = halton\n\n"
	"[train]\nschedule = cosine\nthreads = 1\n";

static int cmd_demo(int argc, char **argv)
{
	ex_flags f;
	ui_theme *theme;
	if (ex_parse("tunetop demo", argc, argv, 1, &f, &theme))
		return 2;
	struct stat sb;
	char probe[600];
	snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", TT_FASHION_DIR);
	int fashion = stat(probe, &sb) == 0;
	if (!fashion) {
		snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", TT_FASHION_DIR);
		fashion = stat(probe, &sb) == 0;
	}
	const char *tmp = getenv("TMPDIR");
	char dir[512], path[600];
	snprintf(dir, sizeof dir, "%s/tunetop-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		ui_theme_free(theme);
		fprintf(stderr, "tunetop demo: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof path, "%s/demo.ini", dir);
	FILE *fp = fopen(path, "w");
	if (!fp || fprintf(fp, demo_ini, fashion ? "fashion-mnist" : "synthetic") < 0 ||
	    fclose(fp)) {
		ui_theme_free(theme);
		fprintf(stderr, "tunetop demo: %s: cannot write\n", path);
		return 1;
	}
	char notice[700];
	if (fashion)
		snprintf(notice, sizeof notice, "demo: 24 trials on a Fashion-MNIST subset; "
		         "study in %s", dir);
	else
		snprintf(notice, sizeof notice, "demo: Fashion-MNIST not installed (apt-get install "
		         "%s): SYNTHETIC data; study in %s", TT_FASHION_PKG, dir);
	fprintf(stderr, "tunetop demo: %s\n", notice);
	if (!isatty(0) || !isatty(1)) {
		ui_theme_free(theme);
		return cmd_run(path);
	}
	/* a metric row every 5 steps: curves that move at demo speed */
	return explore_study(path, &f, theme, notice, 5);
}

/* TUNETOP_FAULT_SQL=N[:CODE] makes the Nth SQLite call of this process
 * fail with CODE (default 13, SQLITE_FULL): how the tests check that a
 * full disk or an I/O error mid-study ends in a clean error and an intact
 * database. */
static void fault_from_env(void)
{
	const char *v = getenv("TUNETOP_FAULT_SQL");
	if (!v || !*v)
		return;
	char *end;
	long n = strtol(v, &end, 10), code = 13;
	if (*end == ':')
		code = strtol(end + 1, &end, 10);
	if (n > 0 && !*end)
		db_fault_inject((int)n, (int)code);
}

/*
 * OpenMP's waiting, decided before anything else runs.  A libgomp thread
 * that has finished its part of a parallel region spins before it sleeps:
 * 300000 rounds by default, long enough to span the gap to the next region
 * of a training step.  Alone on its cores that saves a wake-up per region;
 * beside another tunetop (two studies on one machine) or any other busy
 * process, the spinning threads hold the cores the others need and every
 * run slows to a fraction of its share (bench/side_by_side.sh measures
 * it).  libgomp cuts its spinning to 1000 rounds itself when one process
 * has more threads than cores, but it cannot see other processes; tunetop
 * asks for that count always (GOMP_SPINCOUNT=1000), unless the user has
 * set OMP_WAIT_POLICY or GOMP_SPINCOUNT.  libgomp reads them once, when it
 * is loaded, before main: so the variable is set and the program runs
 * itself again, once (same process id, arguments and descriptors; nothing
 * has been opened yet).  Where that fails (no /proc), tunetop carries on
 * with libgomp's default.
 */
static void omp_wait_default(char **argv)
{
	if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
		return;
	if (setenv("GOMP_SPINCOUNT", "1000", 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	unsetenv("GOMP_SPINCOUNT"); /* not in effect here: do not pass it on */
}

int main(int argc, char **argv)
{
	omp_wait_default(argv);
	fault_from_env();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "train") == 0)
		return cmd_train(argc - 1, argv + 1);
	if (strcmp(cmd, "run") == 0) {
		if (argc == 4 && strcmp(argv[2], "--headless") == 0)
			return cmd_run(argv[3]);
		if (argc == 3 && argv[2][0] != '-')
			return cmd_run(argv[2]);
		fprintf(stderr, "usage: tunetop run --headless STUDY.ini\n");
		return 2;
	}
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(cmd, "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(cmd, "cmd") == 0)
		return cmd_cmd(argc - 1, argv + 1);
	if (ends_with(cmd, ".ini"))
		return cmd_study(argc - 1, argv + 1);
	if (strcmp(cmd, "attach") == 0)
		return cmd_attach(argc - 1, argv + 1);
	if (strcmp(cmd, "demo") == 0)
		return cmd_demo(argc - 1, argv + 1);
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	/* Hidden: the generated parts of the man pages, which tests/t_man.sh
	 * compares with man/tunetop.1, so that the page cannot drift from the
	 * options table. */
	if (strcmp(cmd, "help-options") == 0 && argc == 3 && strcmp(argv[2], "--man") == 0) {
		tt_trainopt_man(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("tunetop %s (backends: %s)\n", TT_VERSION, tt_backend_list());
		return 0;
	}
	fprintf(stderr, "tunetop: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
