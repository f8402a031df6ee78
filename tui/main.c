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

#include "train.h"

#define TT_VERSION "0.1.0"

enum opt_type { O_INT, O_LONG, O_FLOAT, O_CHOICE, O_STRING, O_FLAG, O_DEPTH };

typedef struct opt {
	const char *name;     /* without the leading dashes */
	const char *meta;     /* what the value looks like, for --help */
	int type;
	double lo, hi;        /* inclusive range for numbers */
	const char *choices;  /* "a|b|c" for O_CHOICE */
	size_t off;           /* offset of the target in tt_train_config */
	const char *help;
	const char *def;      /* the default as shown by --help */
} opt;

#define OFF(f) offsetof(tt_train_config, f)

static const opt train_opts[] = {
	{ "model", "SPEC", O_STRING, 0, 0, NULL, OFF(model),
	  "model spec: mlp:W,W,..  cnn:C,C,..  resnet:B,B,..[:wW]", "resnet:2,2,2:w16" },
	{ "data", "SRC", O_STRING, 0, 0, NULL, OFF(data),
	  "fashion-mnist, synthetic, or a directory of IDX files", "fashion-mnist" },
	{ "train-size", "N", O_INT, 1, 1e7, NULL, OFF(train_size),
	  "training examples carved from the training set", "55000" },
	{ "val-size", "N", O_INT, 0, 1e7, NULL, OFF(val_size),
	  "held-out validation examples from the training set", "5000" },
	{ "trainable", "Z|all", O_DEPTH, 1, 64, NULL, OFF(trainable),
	  "train only the last Z stages; the rest stay frozen", "all" },
	{ "epochs", "E", O_INT, 1, 100000, NULL, OFF(epochs),
	  "passes over the training examples", "10" },
	{ "steps", "S", O_LONG, 1, 1e12, NULL, OFF(steps),
	  "train exactly S steps instead of whole epochs", "off" },
	{ "batch", "B", O_INT, 1, 65536, NULL, OFF(batch), "batch size", "128" },
	{ "optimizer", "sgd|adamw", O_CHOICE, 0, 0, "sgd|adamw", OFF(opt.kind),
	  "SGD with momentum, or AdamW", "sgd" },
	{ "lr", "X", O_FLOAT, 1e-12, 1e3, NULL, OFF(opt.lr),
	  "peak learning rate", "0.05 (sgd), 0.001 (adamw)" },
	{ "momentum", "M", O_FLOAT, 0, 0.9999, NULL, OFF(opt.momentum),
	  "SGD momentum", "0.9" },
	{ "nesterov", NULL, O_FLAG, 0, 0, NULL, OFF(opt.nesterov),
	  "Nesterov momentum", "off" },
	{ "weight-decay", "W", O_FLOAT, 0, 1, NULL, OFF(opt.weight_decay),
	  "weight decay (coupled for SGD, decoupled for AdamW)", "5e-4" },
	{ "schedule", "constant|step|cosine", O_CHOICE, 0, 0, "constant|step|cosine",
	  OFF(opt.schedule), "learning-rate schedule after warmup", "cosine" },
	{ "warmup", "N", O_LONG, 0, 1e12, NULL, OFF(opt.warmup),
	  "linear warmup steps", "0" },
	{ "label-smoothing", "E", O_FLOAT, 0, 0.999, NULL, OFF(label_smoothing),
	  "label smoothing of the cross-entropy", "0" },
	{ "augment", NULL, O_FLAG, 0, 0, NULL, OFF(augment),
	  "random crop (padding 2) and horizontal flip", "off" },
	{ "test", NULL, O_FLAG, 0, 0, NULL, OFF(test),
	  "also report test-set accuracy", "off" },
	{ "seed", "N", O_LONG, 0, 9.2e18, NULL, OFF(seed),
	  "seed of initialisation, split, order and augmentation", "1" },
	{ "threads", "T", O_INT, 1, 1024, NULL, OFF(threads),
	  "compute threads", "all cores" },
	{ "backend", "NAME", O_STRING, 0, 0, NULL, OFF(backend),
	  "compute backend: cpu, or cuda when built with CUDA=1", "cpu" },
};
#define NOPTS (sizeof train_opts / sizeof train_opts[0])

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tunetop train [options]   train one network, print a JSON result\n"
	        "       tunetop help | --help | --version\n"
	        "\n"
	        "The study commands (run, attach, status, export, cmd, demo) are not built yet.\n"
	        "See tunetop(1).\n");
}

static void train_help(FILE *f)
{
	fprintf(f, "usage: tunetop train [options]\n\n"
	           "Train one network; progress on stderr, one JSON object on stdout.\n\n"
	           "options:\n");
	for (size_t i = 0; i < NOPTS; i++) {
		const opt *o = &train_opts[i];
		char lhs[64];
		snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->meta ? " " : "",
		         o->meta ? o->meta : "");
		fprintf(f, "  %-30s %s (default: %s)\n", lhs, o->help, o->def);
	}
	fprintf(f, "  %-30s %s\n", "-h, --help", "show this help");
	fprintf(f, "\nexit status: 0 success, 1 runtime failure or diverged run, "
	           "2 bad usage or input\n");
}

/* Parse one value into the config; on failure print why and return 2. */
static int set_opt(tt_train_config *c, const opt *o, const char *v)
{
	char *end;
	void *dst = (char *)c + o->off;
	switch (o->type) {
	case O_DEPTH:
		if (strcmp(v, "all") == 0) {
			*(int *)dst = 0;
			return 0;
		}
		/* fall through */
	case O_INT:
	case O_LONG: {
		errno = 0;
		long long x = strtoll(v, &end, 10);
		if (errno || end == v || *end || x < o->lo || x > o->hi) {
			fprintf(stderr, "tunetop train: --%s: '%s': expected %s%.0f..%.0f\n",
			        o->name, v, o->type == O_DEPTH ? "'all' or " : "an integer in ",
			        o->lo, o->hi);
			return 2;
		}
		if (o->type == O_LONG && o->off == OFF(seed))
			*(uint64_t *)dst = (uint64_t)x;
		else if (o->type == O_LONG)
			*(long *)dst = (long)x;
		else
			*(int *)dst = (int)x;
		return 0;
	}
	case O_FLOAT: {
		errno = 0;
		double x = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(x) || x < o->lo || x > o->hi) {
			fprintf(stderr, "tunetop train: --%s: '%s': expected a number in [%g, %g]\n",
			        o->name, v, o->lo, o->hi);
			return 2;
		}
		*(float *)dst = (float)x;
		return 0;
	}
	case O_CHOICE: {
		int k = 0;
		const char *p = o->choices;
		size_t len = strlen(v);
		while (*p) {
			size_t n = strcspn(p, "|");
			if (n == len && strncmp(p, v, n) == 0) {
				*(int *)dst = k;
				return 0;
			}
			p += n + (p[n] == '|');
			k++;
		}
		fprintf(stderr, "tunetop train: --%s: '%s': expected one of %s\n", o->name,
		        v, o->choices);
		return 2;
	}
	case O_STRING:
		*(const char **)dst = v;
		return 0;
	}
	return 2;
}

/* ---- progress ---------------------------------------------------------- */

typedef struct progress {
	int tty;
	int epochs;
	double start, last_draw;
	long total;
} progress;

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int on_step(void *ud, long step, long total, int epoch, double loss)
{
	progress *p = ud;
	p->total = total;
	double t = wall();
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
	        epoch, step, p->total, tl, 100 * ta, vl, 100 * va, sps, wall() - p->start);
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
		const opt *o = NULL;
		for (size_t k = 0; k < NOPTS; k++)
			if (strlen(train_opts[k].name) == nlen &&
			    strncmp(train_opts[k].name, name, nlen) == 0)
				o = &train_opts[k];
		if (!o) {
			fprintf(stderr, "tunetop train: unknown option '--%.*s' (see --help)\n",
			        (int)nlen, name);
			return 2;
		}
		if (o->type == O_FLAG) {
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
		lr_set |= o->off == OFF(opt.lr);
	}
	if (c.opt.kind == TT_OPT_ADAMW && !lr_set)
		c.opt.lr = 1e-3f;

	tt_err err = {0};
	int nst;
	if (tt_model_spec_check(c.model, &nst, &err)) {
		fprintf(stderr, "tunetop train: --model: %s\n", err.msg);
		return 2;
	}
	if (c.trainable > nst) {
		fprintf(stderr, "tunetop train: --trainable %d: model '%s' has %d stages; "
		        "expected 1..%d or all\n", c.trainable, c.model, nst, nst);
		return 2;
	}
	if (!tt_backend_get(c.backend)) {
		fprintf(stderr, "tunetop train: --backend '%s': expected one of: %s\n",
		        c.backend, tt_backend_list());
		return 2;
	}
	tt_train_data data;
	int rc = tt_train_data_load(&c, &data, &err);
	if (rc) {
		fprintf(stderr, "tunetop train: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	progress p = { .tty = isatty(2), .start = wall() };
	char depth[16] = "all";
	if (c.trainable)
		snprintf(depth, sizeof depth, "%d", c.trainable);
	fprintf(stderr, "tunetop train: %s on %s (%d train, %d val%s), trainable %s "
	        "of %d stages, batch %d, %d threads\n", c.model, data.source,
	        data.train.n, data.val.n, c.test ? ", test" : "", depth, nst, c.batch,
	        c.threads);
	tt_train_hooks hooks = { .ud = &p, .on_step = on_step, .on_epoch = on_epoch };
	tt_train_result r;
	rc = tt_train_run(&c, &data, &hooks, &r, &err);
	tt_train_data_free(&data);
	if (rc == TT_OK || rc == TT_EDIVERGED) {
		tt_train_result_json(&r, stdout);
		fflush(stdout);
		tt_train_result_free(&r);
	}
	if (rc) {
		if (p.tty)
			fputs("\r\033[K", stderr);
		fprintf(stderr, "tunetop train: %s\n", err.msg);
		return rc == TT_EINPUT ? 2 : 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "train") == 0)
		return cmd_train(argc - 1, argv + 1);
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
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
