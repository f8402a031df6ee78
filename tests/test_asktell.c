/*
 * test_asktell.c — the runner and the sampler table together, on real
 * studies and databases: a learning sampler (tests/toy_sampler.h) plugged
 * in through tt_runner_opts.sampler hears every result with its
 * checkpoint; a study stopped and resumed restores it from trials.params
 * and re-tells it the stored results in their order, so that it goes on
 * exactly as the uninterrupted study does; stored parameters win over what
 * the sampler would propose; parameters that do not read back stop the
 * run without a write.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "runner.h"
#include "test.h"
#include "toy_sampler.h"

static char dir[64];

static const char study_fmt[] =
	"[study]\nseed = 5\nworkers = 1\ndb = %s\ncheckpoint_every = 3\n"
	"[data]\nsource = synthetic\ntrain_size = 256\nval_size = 64\n"
	"[model]\nspec = mlp:16\n"
	"[space]\nlr = log-float 0.01 0.3\nmomentum = float 0.5 0.9\n"
	"[fidelity]\nkind = frozen\neta = 2\nepochs = 1\n"
	"[scheduler]\nkind = asha\nmax_trials = 6\n"
	"[train]\nbatch = 64\nthreads = 1\n";

static int load(const char *db, tt_study *st)
{
	char path[128], text[1024];
	snprintf(path, sizeof path, "%s/%s.ini", dir, db);
	snprintf(text, sizeof text, study_fmt, db);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	tt_err e = {0};
	int rc = tt_study_load(path, st, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	return rc;
}

/* Run study db with the toy, recording into rec; stop after `tells` tells
 * (0: run to the end).  Returns the runner's status. */
static int run(const char *db, toy_rec *rec, int tells, tt_err *e)
{
	tt_study st;
	if (load(db, &st))
		return -1;
	static volatile int stop;
	stop = 0;
	toy_recorder = rec;
	rec->n = 0;
	toy_stop_after_flag = tells ? &stop : NULL;
	toy_stop_tells = tells;
	tt_runner_opts o = { .log = NULL, .stop = &stop, .sampler = &toy_sampler };
	int rc = tt_runner_run(&st, &o, e);
	toy_recorder = NULL;
	toy_stop_after_flag = NULL;
	tt_study_free(&st);
	return rc;
}

/* Two calls alike; with hash, a tell's checkpoint bytes too. */
static int same_call(const toy_call *a, const toy_call *b, int hash)
{
	if (hash && a->op == 't' && a->ckpt_hash != b->ckpt_hash)
		return 0;
	return a->op == b->op && a->index == b->index && a->rung == b->rung &&
	       memcmp(a->values, b->values, 2 * sizeof(double)) == 0 &&
	       (a->op != 't' || (memcmp(&a->val_acc, &b->val_acc, sizeof(double)) == 0 &&
	                         a->ckpt_len == b->ckpt_len && a->ckpt_step == b->ckpt_step));
}

static void describe(const char *what, const toy_call *c)
{
	fprintf(stderr, "  %s: %c index %d rung %d lr %.17g acc %.17g ckpt %zu@%ld\n", what,
	        c->op, c->index, c->rung, c->values[0], c->val_acc, c->ckpt_len,
	        c->ckpt_step);
}

static toy_rec whole, first, second;

/*
 * A whole study, and the same study stopped after 4 results and resumed:
 * the resumed run first creates every trial of the first again (with the
 * values the first run created it with), then re-tells the first run's
 * results in the same order with the same checkpoints, then asks, creates
 * and tells exactly what the whole study did next.
 */
static void resume_retells(void)
{
	tt_err e = {0};
	int rc = run("whole.db", &whole, 0, &e);
	CHECK(rc == TT_OK, "whole: %s", e.msg);
	int tells = 0, asks = 0, ck = 0;
	for (int i = 0; i < whole.n; i++) {
		tells += whole.call[i].op == 't';
		asks += whole.call[i].op == 'a';
		ck += whole.call[i].op == 't' && whole.call[i].ckpt_len > 0 &&
		      whole.call[i].ckpt_step > 0;
	}
	CHECK(asks == 6 && tells > 6 && ck == tells,
	      "whole: %d asks, %d tells, %d with their checkpoint", asks, tells, ck);

	rc = run("parts.db", &first, 4, &e);
	CHECK(rc == TT_OK, "first part: %s", e.msg);
	int n1 = first.n, t1 = 0, a1 = 0;
	for (int i = 0; i < n1; i++)
		t1 += first.call[i].op == 't', a1 += first.call[i].op == 'a';
	CHECK(t1 == 4 && n1 < whole.n, "first part: %d calls, %d tells", n1, t1);
	for (int i = 0; i < n1; i++)
		if (!same_call(&first.call[i], &whole.call[i], 0)) {
			CHECK(0, "the first part is not the start of the whole at call %d", i);
			describe("first", &first.call[i]);
			describe("whole", &whole.call[i]);
			break;
		}

	rc = run("parts.db", &second, 0, &e);
	CHECK(rc == TT_OK, "second part: %s", e.msg);
	/* every trial of the first part created again, in order, with the
	 * values the first part created it with (read back from the database) */
	int k = 0, c1 = 0;
	for (int i = 0; i < n1; i++) {
		if (first.call[i].op != 'c')
			continue;
		c1++;
		if (k >= second.n || !same_call(&second.call[k], &first.call[i], 0)) {
			CHECK(0, "trial %d is not created again as it was", first.call[i].index);
			describe("created", &first.call[i]);
			if (k < second.n)
				describe("again", &second.call[k]);
			break;
		}
		k++;
	}
	CHECK(k == c1 && c1 == a1, "%d trials created again, %d by the first part (%d asks)",
	      k, c1, a1);
	/* re-tells: the first part's tells, in order */
	int j = 0;
	for (int i = 0; i < n1; i++) {
		if (first.call[i].op != 't')
			continue;
		if (k + j >= second.n || !same_call(&second.call[k + j], &first.call[i], 1)) {
			CHECK(0, "re-tell %d differs", j);
			describe("told", &first.call[i]);
			if (k + j < second.n)
				describe("re-told", &second.call[k + j]);
			break;
		}
		j++;
	}
	/* and then the same as the whole study */
	int rest = second.n - k - j, want = whole.n - n1;
	CHECK(rest == want, "after the re-tells %d calls, the whole study made %d more",
	      rest, want);
	for (int i = 0; i < rest && i < want; i++)
		if (!same_call(&second.call[k + j + i], &whole.call[n1 + i], 0)) {
			CHECK(0, "call %d after the resume differs from the whole study's", i);
			describe("resumed", &second.call[k + j + i]);
			describe("whole", &whole.call[n1 + i]);
			break;
		}
}

static int sql(const char *db, const char *q)
{
	char path[128];
	sqlite3 *h;
	snprintf(path, sizeof path, "%s/%s", dir, db);
	if (sqlite3_open(path, &h) != SQLITE_OK)
		return -1;
	int rc = sqlite3_exec(h, q, NULL, NULL, NULL);
	sqlite3_close(h);
	return rc;
}

static long file_bytes(const char *db, unsigned char **out)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, db);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	*out = malloc((size_t)n + 1);
	if (!*out || fread(*out, 1, (size_t)n, f) != (size_t)n)
		n = -1;
	fclose(f);
	return n;
}

/*
 * A trial's stored parameters are what a resume uses, not what the sampler
 * would propose: trial 1's lr is changed in the database (to another value
 * inside the bounds) while the study is stopped, and the resumed sampler
 * hears the trial created with it and told with its results.
 */
static void params_from_db(void)
{
	static toy_rec a, b;
	tt_err e = {0};
	int rc = run("edit.db", &a, 1, &e);
	CHECK(rc == TT_OK, "first part: %s", e.msg);
	CHECK(sql("edit.db", "UPDATE trials SET params = '{\"lr\":0.0123,\"momentum\":0.75}'"
	                     " WHERE id = 1") == SQLITE_OK, "params not edited");
	rc = run("edit.db", &b, 0, &e);
	CHECK(rc == TT_OK, "second part: %s", e.msg);
	int restored = 0, told = 0;
	for (int i = 0; i < b.n; i++) {
		const toy_call *c = &b.call[i];
		if (c->index != 0)
			continue;
		if (c->op == 'c')
			restored += c->values[0] == 0.0123 && c->values[1] == 0.75;
		if (c->op == 't')
			told += c->values[0] == 0.0123 && c->values[1] == 0.75;
	}
	CHECK(a.call[0].op == 'a' && a.call[0].values[0] != 0.0123,
	      "the sampler proposed lr %.17g itself", a.call[0].values[0]);
	CHECK(restored == 1, "trial 1 not created again with its stored parameters");
	CHECK(told >= 2, "trial 1's results told %d times with its stored parameters "
	      "(its first rung again, and the next)", told);

	/* parameters that do not read back: refused, naming the trial, and
	 * nothing is written */
	CHECK(sql("edit.db", "UPDATE trials SET params = '{\"lr\":\"fast\",\"momentum\":0.75}'"
	                     " WHERE id = 2") == SQLITE_OK, "params not edited");
	unsigned char *before = NULL, *after = NULL;
	long nb = file_bytes("edit.db", &before);
	rc = run("edit.db", &b, 0, &e);
	long na = file_bytes("edit.db", &after);
	CHECK(rc == TT_EINPUT && strstr(e.msg, "trial 2") && strstr(e.msg, "[space] lr"),
	      "%d: %s", rc, e.msg);
	CHECK(nb > 0 && nb == na && memcmp(before, after, (size_t)nb) == 0,
	      "the database changed (%ld bytes, then %ld)", nb, na);
	free(before);
	free(after);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/tt_asktell_XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	toy_hash_content = 0;
	TT_RUN(resume_retells);
	TT_RUN(params_from_db);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	TT_EXIT();
}
