/*
 * test_golden.c — runs compared with numbers recorded from an earlier build.
 *
 * Four runs on the synthetic set, one thread, fixed seeds: ungated, gated,
 * a frozen prefix, and runs resumed from checkpoints (of this build, and
 * blobs written by the build that recorded the fixtures: the old
 * checkpoint formats must still load).  Each run becomes a record of
 * "key value" lines: the loss of every step, the validation numbers of
 * every epoch, the final result, the gate reports and final masks, and
 * the result's JSON with every number replaced by '#' (its fields and
 * their order).  The records live in tests/golden/NAME.txt.
 *
 * Numbers compare with a relative tolerance of 1e-6 (counts, masks and the
 * JSON's shape exactly): on one machine a run with one thread is bit for
 * bit the same each time, and any change of behaviour (another data
 * order, a step more or less, another random stream) moves the losses by
 * far more than 1e-6; the tolerance only forgives summation-order noise of
 * another OpenBLAS kernel.  On a machine where the fixtures do not hold
 * for that reason, re-record them with the build that wrote them:
 *
 *     build/tests/test_golden record tests/golden
 *
 * (this writes NAME.txt and the checkpoint blobs ck-v1-*.bin; the
 * format-2 blob ck-v2-gated-step22.bin is read from DIR, never written:
 * gated-v2.txt records the run resumed from it).  Without
 * arguments it compares, reading tests/golden (or $TT_GOLDEN).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "train.h"

#define RTOL 1e-6

static const char *dir = "tests/golden";
static int recording;

/* ---- a record: "key value" lines ----------------------------------------- */

typedef struct rec {
	char *buf;
	size_t len;
	FILE *f;
} rec;

static void rec_open(rec *r)
{
	r->buf = NULL;
	r->len = 0;
	r->f = open_memstream(&r->buf, &r->len);
}

static void rec_close(rec *r)
{
	fclose(r->f);
	r->f = NULL;
}

/* One run's hooks write into the record. */
typedef struct watch {
	rec *r;
	long keep_at;        /* keep the checkpoint of this step (0: none) */
	void *blob;
	size_t blob_len;
} watch;

static int on_step(void *ud, long step, long total, int epoch, double loss)
{
	watch *w = ud;
	(void)total, (void)epoch;
	fprintf(w->r->f, "loss.%ld %.17g\n", step, loss);
	return 0;
}

static void on_epoch(void *ud, int epoch, long step, double tl, double ta, double vl,
                     double va, double sps)
{
	watch *w = ud;
	(void)sps;
	fprintf(w->r->f, "epoch.%d.step %ld\nepoch.%d.train_loss %.17g\n"
	        "epoch.%d.train_acc %.17g\nepoch.%d.val_loss %.17g\nepoch.%d.val_acc %.17g\n",
	        epoch, step, epoch, tl, epoch, ta, epoch, vl, epoch, va);
}

static int on_checkpoint(void *ud, long step, const void *blob, size_t len)
{
	watch *w = ud;
	if (step == w->keep_at) {
		free(w->blob);
		w->blob = malloc(len);
		memcpy(w->blob, blob, len);
		w->blob_len = len;
	}
	return 0;
}

/* Each report: how many gates are on and the sum of the probabilities. */
static void on_report(void *ud, const tt_method_report *rep)
{
	watch *w = ud;
	long step = rep->step;
	int n = rep->nrows;
	const tt_gate_row *rows = rep->rows;
	int on = 0;
	double sum = 0;
	for (int i = 0; i < n; i++) {
		on += rows[i].on;
		sum += rows[i].prob;
	}
	fprintf(w->r->f, "report.%ld.n %d\nreport.%ld.on %d\nreport.%ld.prob_sum %.17g\n",
	        step, n, step, on, step, sum);
}

/* The result: its numbers (timings left out) and its JSON's shape. */
static void rec_result(rec *rc, const tt_train_result *r, int status)
{
	FILE *f = rc->f;
	fprintf(f, "status %d\nsteps %ld\nepochs %d\nstages %d\ntrainable %d\n", status,
	        r->steps, r->epochs, r->stages, r->trainable);
	fprintf(f, "train_loss %.17g\ntrain_acc %.17g\nval_loss %.17g\nval_acc %.17g\n"
	        "test_acc %.17g\ntrain_macs %.17g\ndiverged %d\n", r->train_loss,
	        r->train_acc, r->val_loss, r->val_acc, r->test_acc, r->train_macs,
	        r->diverged);
	for (int k = 0; k < TT_MEM_KINDS; k++)
		fprintf(f, "mem.%d %zu\n", k, r->mem[k]);
	fprintf(f, "mem_total %zu\n", r->mem_total);
	const tt_train_gates *g = &r->gates;
	fprintf(f, "gates.on %d\n", g->on);
	if (g->on) {
		fprintf(f, "gates.ngates %d\ngates.rounded %d\ngates.macs_expected %.17g\n"
		        "gates.params_expected %.17g\ngates.macs_kept %.17g\n"
		        "gates.params_kept %.17g\n", g->ngates, g->rounded, g->macs_expected,
		        g->params_expected, g->macs_kept, g->params_kept);
		for (int i = 0; i < g->ngates && g->row; i++)
			fprintf(f, "gate.%d %d %d %.17g %d\n", i, g->row[i].stage, g->row[i].unit,
			        (double)g->row[i].prob, g->row[i].on);
	}
	/* the JSON without its numbers: the fields and their order */
	char *js = NULL;
	size_t jl = 0;
	FILE *jf = open_memstream(&js, &jl);
	tt_train_result_json(r, jf);
	fclose(jf);
	fprintf(f, "json ");
	for (const char *p = js; *p && *p != '\n';) {
		if (*p == '-' || isdigit((unsigned char)*p)) {
			fputc('#', f);
			while (*p && strchr("0123456789.eE+-", *p))
				p++;
		} else {
			fputc(*p++, f);
		}
	}
	fputc('\n', f);
	free(js);
}

/* ---- comparing ----------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = 2 * cap + 8192;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t k = fread(buf + n, 1, 4096, f);
		n += k;
		if (k < 4096)
			break;
	}
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static int spew(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t k = fwrite(p, 1, len, f);
	return fclose(f) == 0 && k == len ? 0 : -1;
}

/* The line of key in a record (NULL: absent); *vlen its value's length. */
static const char *find_key(const char *text, const char *key, size_t *vlen)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		if (ll > kl && strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			*vlen = ll - kl - 1;
			return p + kl + 1;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

/* Values are equal when they are the same text, or when every field is a
 * number within RTOL of the expected one (NaN equals NaN).  The JSON
 * line (no numbers left in it) compares as text. */
static int same_value(const char *a, size_t al, const char *b, size_t bl, double *worst)
{
	if (al == bl && memcmp(a, b, al) == 0)
		return 1;
	char sa[512], sb[512];
	if (al >= sizeof sa || bl >= sizeof sb)
		return 0;
	memcpy(sa, a, al);
	sa[al] = 0;
	memcpy(sb, b, bl);
	sb[bl] = 0;
	char *pa = sa, *pb = sb;
	for (;;) {
		while (*pa == ' ')
			pa++;
		while (*pb == ' ')
			pb++;
		if (!*pa || !*pb)
			return !*pa && !*pb;
		char *ea, *eb;
		double x = strtod(pa, &ea), y = strtod(pb, &eb);
		if (ea == pa || eb == pb)
			return 0;
		if (!(isnan(x) && isnan(y))) {
			double d = fabs(x - y), tol = RTOL * fabs(y) + 1e-12;
			if (!(d <= tol))
				return 0;
			if (y != 0 && d / fabs(y) > *worst)
				*worst = d / fabs(y);
		}
		pa = ea;
		pb = eb;
	}
}

/*
 * Compare the record got with the fixture NAME.txt: every key of got
 * must be in the fixture with the same value, and so must every key the
 * fixture has unless partial (a resumed run has no losses of the steps
 * before its checkpoint), the result's keys always.
 */
static void compare(const char *name, const char *got, int partial)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.txt", dir, name);
	char *want = slurp(path, NULL);
	CHECK(want != NULL, "%s: cannot read the fixture %s", name, path);
	if (!want)
		return;
	int keys = 0, bad = 0;
	double worst = 0;
	for (const char *p = got; *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		const char *sp = memchr(p, ' ', ll);
		char key[128];
		size_t kl = sp ? (size_t)(sp - p) : ll;
		if (kl >= sizeof key)
			kl = sizeof key - 1;
		memcpy(key, p, kl);
		key[kl] = 0;
		size_t wl;
		const char *w = find_key(want, key, &wl);
		const char *v = sp ? sp + 1 : p + ll;
		size_t vl = (size_t)(p + ll - v);
		keys++;
		if (!w || !same_value(v, vl, w, wl, &worst)) {
			if (bad++ < 8)
				CHECK(0, "%s: %s is '%.*s', the fixture says '%.*s'", name, key,
				      (int)vl, v, w ? (int)wl : 9, w ? w : "(nothing)");
		}
		p = nl ? nl + 1 : p + ll;
	}
	CHECK(bad == 0, "%s: %d of %d values differ from %s", name, bad, keys, path);
	/* the other way: nothing of the fixture missing */
	for (const char *p = want; *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		const char *sp = memchr(p, ' ', ll);
		char key[128];
		size_t kl = sp ? (size_t)(sp - p) : ll;
		if (kl >= sizeof key)
			kl = sizeof key - 1;
		memcpy(key, p, kl);
		key[kl] = 0;
		size_t gl;
		int optional = partial && (strncmp(key, "loss.", 5) == 0 ||
		                           strncmp(key, "epoch.", 6) == 0 ||
		                           strncmp(key, "report.", 7) == 0);
		if (!optional)
			CHECK(find_key(got, key, &gl) != NULL, "%s: %s missing", name, key);
		p = nl ? nl + 1 : p + ll;
	}
	printf("# %s: %d values, largest relative difference %.3g\n", name, keys, worst);
	free(want);
}

/* ---- the runs ------------------------------------------------------------- */

static void base_config(tt_train_config *c, const char *model)
{
	tt_train_defaults(c);
	c->model = model;
	c->data = "synthetic";
	c->train_size = 256;   /* 8 steps an epoch at batch 32 */
	c->val_size = 64;
	c->batch = 32;
	c->epochs = 3;
	c->augment = 1;
	c->threads = 1;
	c->seed = 7;
}

static void gated_config(tt_train_config *c)
{
	base_config(c, "resnet:1,1:w4");
	c->epochs = 4;  /* warm-up, two gated epochs, the fine-tuning epoch */
	c->gates.strength = 20;
	c->gates.lr = 2;
	c->gates.warmup_epochs = 1;
	c->gates.layer_hold_epochs = 2;
	c->gates.prune_every = 4;
}

static void frozen_config(tt_train_config *c)
{
	base_config(c, "cnn:4,8");
	c->trainable = 2;
	/* the frozen norms as the recording build ran them (frozen-bn fixed
	 * is checked against them in test_fcache) */
	c->frozen_bn = TT_FROZEN_BN_BATCH;
	c->opt.kind = TT_OPT_ADAMW;
	c->opt.lr = 1e-3f;
	c->augment = 0;
	c->test = 1;
}

/*
 * Run c (resuming from blob when not NULL) and compare its record with
 * the fixture name, or write the fixture when recording.  keep_at > 0
 * keeps the checkpoint of that step in *kept; keep_at -1 makes a resumed
 * run's record its own fixture (compared whole, written when recording).
 */
static void run_case(const char *name, const tt_train_config *c0, const void *blob,
                     size_t blob_len, long keep_at, void **kept, size_t *kept_len)
{
	tt_train_config c = *c0;
	c.resume = blob;
	c.resume_len = blob_len;
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "%s: load: %s", name, err.msg);
	rec r;
	rec_open(&r);
	watch w = { .r = &r, .keep_at = keep_at > 0 ? keep_at : 0 };
	tt_train_hooks h = { .ud = &w, .on_step = on_step, .on_epoch = on_epoch,
	                     .checkpoint_every = keep_at > 0 ? 1 : 0,
	                     .on_checkpoint = keep_at > 0 ? on_checkpoint : NULL,
	                     .report_every = 8, .on_report = on_report };
	tt_train_result res;
	int rc = tt_train_run(&c, &d, &h, &res, &err);
	CHECK(rc == TT_OK, "%s: %s", name, err.msg);
	if (rc == TT_OK) {
		rec_result(&r, &res, rc);
		tt_train_result_free(&res);
	}
	rec_close(&r);
	if (kept) {
		CHECK(w.blob != NULL, "%s: no checkpoint at step %ld", name, keep_at);
		*kept = w.blob;
		*kept_len = w.blob_len;
	}
	/* keep_at -1: a resumed run recorded on its own */
	int own = keep_at < 0;
	if (recording && (!blob || own)) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s.txt", dir, name);
		CHECK(spew(path, r.buf, r.len) == 0, "cannot write %s", path);
	} else {
		compare(name, r.buf, blob != NULL && !own);
	}
	free(r.buf);
	tt_train_data_free(&d);
}

/* The blob of an old format recorded as a fixture, or written now. */
static void fixture_blob(const char *file, void **blob, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	if (recording) {
		CHECK(*blob && spew(path, *blob, *len) == 0, "cannot write %s", path);
		return;
	}
	free(*blob);
	*blob = slurp(path, len);
	CHECK(*blob != NULL, "cannot read %s", path);
}

static void golden_ungated(void)
{
	tt_train_config c;
	base_config(&c, "resnet:1,1:w4");
	void *blob = NULL;
	size_t len = 0;
	run_case("ungated", &c, NULL, 0, 11, &blob, &len);
	/* resumed mid-epoch from this build's checkpoint */
	if (blob && !recording)
		run_case("ungated", &c, blob, len, 0, NULL, NULL);
	/* and from the recording build's (format 1, no gates) */
	fixture_blob("ck-v1-ungated-step11.bin", &blob, &len);
	if (blob && !recording)
		run_case("ungated", &c, blob, len, 0, NULL, NULL);
	free(blob);
}

static void golden_gated(void)
{
	tt_train_config c;
	gated_config(&c);
	void *blob = NULL;
	size_t len = 0;
	/* epoch 3: after two compactions, pruned gates waiting for the next */
	run_case("gated", &c, NULL, 0, 22, &blob, &len);
	if (blob && !recording)
		run_case("gated", &c, blob, len, 0, NULL, NULL);
	free(blob);
	/* format 2: its gates section ends before the controller's part, and
	 * its probabilities came from the update of its day, so the run it
	 * resumes is its own record (gated-v2.txt), which recording writes
	 * from the blob and never rewrites the blob */
	char path[512];
	snprintf(path, sizeof path, "%s/ck-v2-gated-step22.bin", dir);
	blob = slurp(path, &len);
	CHECK(blob != NULL, "cannot read %s", path);
	if (blob)
		run_case("gated-v2", &c, blob, len, -1, NULL, NULL);
	free(blob);
}

static void golden_frozen(void)
{
	tt_train_config c;
	frozen_config(&c);
	void *blob = NULL;
	size_t len = 0;
	run_case("frozen", &c, NULL, 0, 13, &blob, &len);
	if (blob && !recording)
		run_case("frozen", &c, blob, len, 0, NULL, NULL);
	free(blob);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "record") == 0) {
		recording = 1;
		dir = argv[2];
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s [record DIR]\n", argv[0]);
		return 2;
	} else if (getenv("TT_GOLDEN")) {
		dir = getenv("TT_GOLDEN");
	}
	TT_RUN(golden_ungated);
	TT_RUN(golden_gated);
	TT_RUN(golden_frozen);
	TT_EXIT();
}
