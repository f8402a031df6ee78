/*
 * test_study.c — study.c: the example study files, the defaults, every
 * class of error (a table of bad snippets, each with the exact
 * "FILE:LINE: [section] key: " head and the words its message must hold),
 * loading from disk, apply() and params_json(), the man page's KEYS
 * section against the key tables and its example, the `tunetop train`
 * option names of tunetop(1), the options table (trainopt.h) that [train],
 * [space] and the defaults share with the command line, and a seeded fuzz
 * loop over mutations of quick.ini.
 *
 * Paths (examples/, man/) are relative to the repository root, where
 * tests/run.sh runs; TT_SRC_DIR overrides.  TT_WRITE_MAN=1 rewrites the
 * generated KEYS block of man/tunetop-study.5 from the tables.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sampler.h"
#include "study.h"
#include "test.h"
#include "trainopt.h"

static char tmpdir[64];

/* out = $TT_SRC_DIR/rel, or rel. */
static const char *src(const char *rel)
{
	static char buf[4][1024];
	static int k;
	const char *root = getenv("TT_SRC_DIR");
	char *out = buf[k++ % 4];
	snprintf(out, sizeof buf[0], "%s%s%s", root ? root : "", root ? "/" : "", rel);
	return out;
}

/* The whole of a file, malloc'd and NUL-terminated; NULL if unreadable. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *t = malloc((size_t)n + 1);
	if (t && fread(t, 1, (size_t)n, f) != (size_t)n) {
		free(t);
		t = NULL;
	}
	if (t)
		t[n] = 0;
	fclose(f);
	return t;
}

static int spit(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(text, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static const char *find_param_name(const tt_study *s, int i)
{
	return i < s->nspace ? s->space[i].name : "(none)";
}

static const tt_param_spec *param(const tt_study *s, const char *name)
{
	for (int i = 0; i < s->nspace; i++)
		if (strcmp(s->space[i].name, name) == 0)
			return &s->space[i];
	return NULL;
}

/* ---- the examples ------------------------------------------------------- */

static void examples_quick(void)
{
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_load(src("examples/quick.ini"), &s, &e);
	CHECK(rc == TT_OK, "quick.ini: %s", e.msg);
	if (rc)
		return;
	CHECK(strcmp(s.name, "quick") == 0, "name '%s'", s.name);
	CHECK(strcmp(s.train.data, "synthetic") == 0, "data '%s'", s.train.data);
	CHECK(strcmp(s.train.model, "mlp:64,64") == 0, "model '%s'", s.train.model);
	CHECK(s.stages == 3, "stages %d", s.stages);
	CHECK(s.train.train_size == 2048 && s.train.val_size == 256, "sizes %d %d",
	      s.train.train_size, s.train.val_size);
	CHECK(s.seed == 7 && s.train.seed == 7, "seed %llu", (unsigned long long)s.seed);
	CHECK(s.nspace == 4, "nspace %d", s.nspace);
	const tt_param_spec *lr = param(&s, "lr"), *opt = param(&s, "optimizer");
	CHECK(lr && lr->type == TT_P_LOGFLOAT && lr->lo == 0.001 && lr->hi == 0.5,
	      "lr spec");
	CHECK(opt && opt->type == TT_P_CHOICE && opt->nchoices == 2 &&
	      strcmp(opt->choices[0], "sgd") == 0 && strcmp(opt->choices[1], "adamw") == 0,
	      "optimizer spec");
	CHECK(s.fid_kind == TT_FID_FROZEN && s.eta == 2 && s.epochs == 3 &&
	      s.min_trainable == 1, "fidelity");
	CHECK(s.sched_kind == TT_SCH_ASHA && s.max_trials == 6 &&
	      s.sampler == TT_SAMP_HALTON && s.mode == TT_MODE_RESTART, "scheduler");
	CHECK(s.train.threads == 1, "threads %d", s.train.threads);
	CHECK(s.text && strstr(s.text, "[space]"), "text kept");
	tt_study_free(&s);
}

static void examples_fmnist_mlp(void)
{
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_load(src("examples/fmnist-mlp.ini"), &s, &e);
	CHECK(rc == TT_OK, "fmnist-mlp.ini: %s", e.msg);
	if (rc)
		return;
	CHECK(strcmp(s.name, "fmnist-mlp") == 0, "name '%s'", s.name);
	CHECK(strcmp(s.train.model, "mlp:512,512,512") == 0, "model");
	CHECK(strcmp(s.train.data, "fashion-mnist") == 0, "data");
	CHECK(s.stages == 4, "stages %d", s.stages);
	CHECK(s.sched_kind == TT_SCH_SH, "sh");
	CHECK(param(&s, "lr") && param(&s, "weight-decay") && param(&s, "optimizer"),
	      "space");
	tt_study_free(&s);
}

static void examples_fmnist_resnet(void)
{
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_load(src("examples/fmnist-resnet.ini"), &s, &e);
	CHECK(rc == TT_OK, "fmnist-resnet.ini: %s", e.msg);
	if (rc)
		return;
	CHECK(strcmp(s.train.model, "resnet:2,2,2:w16") == 0, "model");
	CHECK(s.stages == 8, "stages %d", s.stages);
	CHECK(s.sched_kind == TT_SCH_ASHA, "asha");
	static const char *want[] = { "lr", "momentum", "weight-decay", "batch" };
	CHECK(s.nspace == 4, "nspace %d", s.nspace);
	for (int i = 0; i < 4; i++)
		CHECK(strcmp(find_param_name(&s, i), want[i]) == 0, "space[%d] '%s'", i,
		      find_param_name(&s, i));
	const tt_param_spec *b = param(&s, "batch");
	CHECK(b && b->type == TT_P_CHOICE && b->nchoices == 3 &&
	      strcmp(b->choices[2], "256") == 0, "batch choice");
	CHECK(s.fid_kind == TT_FID_FROZEN && s.min_trainable == 1 && s.eta == 2 &&
	      s.epochs == 2, "fidelity");
	tt_study_free(&s);
}

/* ---- defaults and syntax ------------------------------------------------ */

static void defaults(void)
{
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_parse("some/dir/my-study.ini",
	                        "[space]\nlr = log-float 0.001 0.1\n", &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return;
	tt_train_config d;
	tt_train_defaults(&d);
	CHECK(strcmp(s.name, "my-study") == 0, "name '%s'", s.name);
	CHECK(strcmp(s.db, "some/dir/my-study.db") == 0, "db '%s'", s.db);
	CHECK(s.seed == 1 && s.train.seed == 1, "seed");
	CHECK(s.workers == 1, "workers %d", s.workers);
	CHECK(s.budget == 0, "budget %g", s.budget);
	CHECK(s.checkpoint_every == 100, "checkpoint_every %ld", s.checkpoint_every);
	CHECK(s.fid_kind == TT_FID_JOINT, "fidelity kind");
	CHECK(s.min_trainable == 1 && s.eta == 2 && s.epochs == 1, "fidelity");
	CHECK(s.sched_kind == TT_SCH_ASHA && s.max_trials == 16, "scheduler");
	CHECK(s.mode == TT_MODE_RESTART && s.sampler == tt_sampler_index("tpe"),
	      "mode, sampler");
	/* The tables' defaults of [data], [model] and [train] are those of
	 * `tunetop train` (tt_train_defaults). */
	CHECK(strcmp(s.train.model, d.model) == 0, "model '%s'", s.train.model);
	CHECK(strcmp(s.train.data, d.data) == 0, "data '%s'", s.train.data);
	CHECK(strcmp(s.train.backend, d.backend) == 0, "backend");
	CHECK(s.train.train_size == d.train_size && s.train.val_size == d.val_size,
	      "sizes");
	CHECK(s.train.batch == d.batch, "batch %d", s.train.batch);
	CHECK(s.train.opt.kind == d.opt.kind && s.train.opt.lr == d.opt.lr, "sgd, lr");
	CHECK(s.train.opt.momentum == d.opt.momentum, "momentum");
	CHECK(s.train.opt.nesterov == d.opt.nesterov, "nesterov");
	CHECK(s.train.opt.weight_decay == d.opt.weight_decay, "weight decay %g",
	      s.train.opt.weight_decay);
	CHECK(s.train.opt.schedule == d.opt.schedule, "schedule");
	CHECK(s.train.opt.warmup == d.opt.warmup, "warmup");
	CHECK(s.train.label_smoothing == d.label_smoothing, "label smoothing");
	CHECK(s.train.augment == d.augment && s.train.test == d.test, "flags");
	CHECK(s.train.threads == d.threads, "threads %d", s.train.threads);
	CHECK(s.train.trainable == 0 && s.train.epochs == 1 && s.train.steps == 0,
	      "full fidelity: all stages, 1 epoch");
	CHECK(s.stages == 8 && !s.lr_set, "stages %d", s.stages);
	tt_study_free(&s);

	/* A path without a directory, without .ini; adamw without lr. */
	rc = tt_study_parse("plain", "[space]\nmomentum = float 0 0.9\n"
	                    "[train]\noptimizer = adamw\n", &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return;
	CHECK(strcmp(s.name, "plain") == 0 && strcmp(s.db, "plain.db") == 0,
	      "name '%s' db '%s'", s.name, s.db);
	CHECK(s.train.opt.lr == 1e-3f, "adamw's default lr, got %g", s.train.opt.lr);
	tt_study_free(&s);
	tt_study_free(&s); /* safe twice */

	/* with a budget, the budget ends the study: max_trials is a backstop
	 * of 1000 unless the file names one */
	rc = tt_study_parse("b", "[study]\nbudget = 24\n[space]\nlr = log-float 0.001 0.1\n",
	                    &s, &e);
	CHECK(rc == TT_OK && s.max_trials == 1000, "budget: max_trials %d", s.max_trials);
	tt_study_free(&s);
	rc = tt_study_parse("b", "[study]\nbudget = 24\n[space]\nlr = log-float 0.001 0.1\n"
	                    "[scheduler]\nmax_trials = 7\n", &s, &e);
	CHECK(rc == TT_OK && s.max_trials == 7, "budget, max_trials 7: %d", s.max_trials);
	tt_study_free(&s);
}

static void syntax(void)
{
	static const char text[] =
		"\xef\xbb\xbf# a byte-order mark, then comments of both kinds\r\n"
		"; another\r\n"
		"\r\n"
		"  [ study ]   # a comment after a header\r\n"
		"name\t=\t\"spaced name # not a comment\"  ; a comment\r\n"
		"db = 'sub dir/x.db'\r\n"
		"seed=42\r\n"
		"budget = 12.5 # inline\r\n"
		"checkpoint_every = 10\r\n"
		"[model]\r\n"
		"spec = cnn:4,8\r\n"
		"[space]\r\n"
		"  lr   =   log-float   1e-4   1e-1  \r\n"
		"optimizer = choice  sgd ,  adamw ; spaces around commas\r\n"
		"nesterov = choice off,on\r\n"
		"[train]\r\n"
		"nesterov = yes\r\n"
		"lr = 0.02\r\n"
		"test = 1\r\n"
		"[fidelity]\r\n"
		"kind = joint\r\n"
		"epochs = 0.5";  /* no final newline */
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_parse("/abs/s.ini", text, &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return;
	CHECK(strcmp(s.name, "spaced name # not a comment") == 0, "name '%s'", s.name);
	CHECK(strcmp(s.db, "/abs/sub dir/x.db") == 0, "db '%s'", s.db);
	CHECK(s.seed == 42 && s.budget == 12.5 && s.checkpoint_every == 10,
	      "seed, budget, checkpoint_every");
	CHECK(s.stages == 4, "cnn:4,8 has 4 stages, got %d", s.stages);
	CHECK(s.nspace == 3, "nspace %d", s.nspace);
	const tt_param_spec *lr = param(&s, "lr"), *o = param(&s, "optimizer");
	CHECK(lr && lr->lo == 1e-4 && lr->hi == 1e-1 && lr->line == 13, "lr spec");
	CHECK(o && o->nchoices == 2 && strcmp(o->choices[1], "adamw") == 0,
	      "optimizer choices");
	CHECK(s.train.opt.nesterov == 1 && s.train.test == 1, "booleans");
	CHECK(s.lr_set && s.train.opt.lr == 0.02f, "lr %g", s.train.opt.lr);
	CHECK(s.fid_kind == TT_FID_JOINT && s.epochs == 0.5 && s.train.epochs == 1,
	      "joint, 0.5 epochs");
	CHECK(strcmp(s.text, text) == 0, "the text is kept as given");
	tt_study_free(&s);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct bad_case {
	const char *what;
	const char *text;
	const char *head;     /* the message starts with this */
	const char *has[3];   /* and holds these */
} bad_case;

#define SP "[space]\nlr = float 0.01 0.1\n"

static const bad_case bad_cases[] = {
	/* structure */
	{ "unknown section", "[spaces]\n", "bad.ini:1: ",
	  { "found section '[spaces]'",
	    "expected one of: [study], [data], [model], [space], [fidelity], "
	    "[scheduler], [train]" } },
	{ "unclosed header", "\n[data\n", "bad.ini:2: ",
	  { "found '[data'", "expected a section header [NAME]" } },
	{ "text after header", "[data] x\n", "bad.ini:1: ", { "found '[data] x'" } },
	{ "duplicate section", "[data]\nval_size = 10\n[data]\n", "bad.ini:3: [data]: ",
	  { "found a second [data] (the first is on line 1)", "expected each section once" } },
	{ "key outside a section", "# c\nlr = 0.1\n", "bad.ini:2: lr: ",
	  { "found 'lr' before any section", "expected a [section] header first" } },
	{ "no equals sign", "[train]\nlr 0.1\n", "bad.ini:2: [train]: ",
	  { "found 'lr 0.1', expected KEY = VALUE" } },
	{ "empty key", "[train]\n = 3\n", "bad.ini:2: [train]: ",
	  { "found '= 3', expected KEY = VALUE" } },
	{ "key with blanks", "[train]\nlearning rate = 3\n", "bad.ini:2: [train]: ",
	  { "found key 'learning rate'" } },
	{ "unknown [train] key", "[train]\nlearning-rate = 0.1\n",
	  "bad.ini:2: [train] learning-rate: ",
	  { "found unknown key 'learning-rate'",
	    "expected one of: frozen-bn, batch, optimizer, lr, momentum, nesterov, weight-decay, "
	    "schedule, warmup, label-smoothing, test, threads, backend" } },
	{ "unknown [study] key", "[study]\nnmae = x\n", "bad.ini:2: [study] nmae: ",
	  { "expected one of: name, db, seed, workers, budget, checkpoint_every" } },
	{ "unknown [data] key", "[data]\ntrain-size = 5\n", "bad.ini:2: [data] train-size: ",
	  { "expected one of: source, train_size, val_size, augment" } },
	{ "unknown [fidelity] key", "[fidelity]\nrungs = 3\n",
	  "bad.ini:2: [fidelity] rungs: ",
	  { "expected one of: kind, min_trainable, eta, epochs" } },
	{ "unknown [scheduler] key", "[scheduler]\ntrials = 3\n",
	  "bad.ini:2: [scheduler] trials: ",
	  { "expected one of: kind, max_trials, mode, sampler" } },
	{ "duplicate key", "[train]\nlr = 0.1\n# c\nlr = 0.2\n", "bad.ini:4: [train] lr: ",
	  { "found a second 'lr' (the first is on line 2)", "expected each key once" } },
	{ "duplicate key in [study]", "[study]\nseed = 1\nseed = 1\n",
	  "bad.ini:3: [study] seed: ", { "found a second 'seed'" } },
	{ "[train] epochs", "[train]\nepochs = 3\n", "bad.ini:2: [train] epochs: ",
	  { "found 'epochs = 3'", "expected it as [fidelity] epochs" } },
	{ "[train] trainable", "[train]\ntrainable = 2\n", "bad.ini:2: [train] trainable: ",
	  { "[fidelity] min_trainable" } },
	{ "[train] steps", "[train]\nsteps = 2\n", "bad.ini:2: [train] steps: ",
	  { "[fidelity] epochs" } },
	{ "[train] seed", "[train]\nseed = 2\n", "bad.ini:2: [train] seed: ",
	  { "expected it as [study] seed" } },
	{ "[train] model", "[train]\nmodel = mlp:8\n", "bad.ini:2: [train] model: ",
	  { "expected it as [model] spec" } },
	{ "[train] data", "[train]\ndata = synthetic\n", "bad.ini:2: [train] data: ",
	  { "expected it as [data] source" } },
	{ "[train] train-size", "[train]\ntrain-size = 9\n", "bad.ini:2: [train] train-size: ",
	  { "expected it as [data] train_size" } },
	{ "[train] augment", "[train]\naugment = on\n", "bad.ini:2: [train] augment: ",
	  { "expected it as [data] augment" } },
	/* values */
	{ "not a number", "[train]\nlr = fast # comment\n", "bad.ini:2: [train] lr: ",
	  { "found 'fast', expected a number in [1e-12, 1000]" } },
	{ "hex number", "[train]\nlr = 0x1p-3\n", "bad.ini:2: [train] lr: ",
	  { "found '0x1p-3'" } },
	{ "inf", "[train]\nlr = inf\n", "bad.ini:2: [train] lr: ", { "found 'inf'" } },
	{ "number out of range", "[train]\nmomentum = 1.5\n", "bad.ini:2: [train] momentum: ",
	  { "found '1.5', expected a number in [0, 0.9999]" } },
	{ "fraction for an int", "[train]\nbatch = 12.5\n", "bad.ini:2: [train] batch: ",
	  { "found '12.5', expected an integer in 1..65536" } },
	{ "int out of range", "[train]\nbatch = 0\n", "bad.ini:2: [train] batch: ",
	  { "expected an integer in 1..65536" } },
	{ "unknown choice", "[train]\noptimizer = adam\n", "bad.ini:2: [train] optimizer: ",
	  { "found 'adam', expected one of sgd|adamw" } },
	{ "unknown schedule", "[train]\nschedule = linear\n", "bad.ini:2: [train] schedule: ",
	  { "expected one of constant|step|cosine" } },
	{ "bad boolean", "[train]\nnesterov = maybe\n", "bad.ini:2: [train] nesterov: ",
	  { "found 'maybe', expected true or false" } },
	{ "unknown backend", "[train]\nbackend = tpu\n", "bad.ini:2: [train] backend: ",
	  { "found 'tpu', expected one of the backends built in: cpu" } },
	{ "unclosed quote", "[study]\nname = \"abc\n", "bad.ini:2: [study] name: ",
	  { "found '\"abc', expected a closing \"" } },
	{ "text after a quote", "[study]\nname = 'a' b\n", "bad.ini:2: [study] name: ",
	  { "expected nothing after the closing quote" } },
	{ "empty value", "[study]\nname =\n", "bad.ini:2: [study] name: ",
	  { "found '', expected a non-empty text of at most 47 bytes" } },
	{ "name too long", "[study]\nname = "
	  "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\n",
	  "bad.ini:2: [study] name: ", { "expected a non-empty text of at most 47" } },
	{ "name with a slash", "[study]\nname = a/b\n", "bad.ini:2: [study] name: ",
	  { "found 'a/b', expected a name without '/'" } },
	{ "negative seed", "[study]\nseed = -1\n", "bad.ini:2: [study] seed: ",
	  { "expected an integer in 0..9200000000000000000" } },
	{ "no workers", "[study]\nworkers = 0\n", "bad.ini:2: [study] workers: ",
	  { "expected an integer in 1..1024" } },
	{ "negative budget", "[study]\nbudget = -1\n", "bad.ini:2: [study] budget: ",
	  { "expected a number in [0, 1e+12]" } },
	{ "zero val_size", "[data]\nval_size = 0\n", "bad.ini:2: [data] val_size: ",
	  { "expected an integer in 1..10000000" } },
	{ "eta 1", "[fidelity]\neta = 1\n", "bad.ini:2: [fidelity] eta: ",
	  { "found '1', expected an integer in 2..100" } },
	{ "zero epochs", "[fidelity]\nepochs = 0\n", "bad.ini:2: [fidelity] epochs: ",
	  { "expected a number in [0.01, 100000]" } },
	{ "unknown fidelity", "[fidelity]\nkind = depth\n", "bad.ini:2: [fidelity] kind: ",
	  { "expected one of frozen|epochs|joint" } },
	{ "unknown scheduler", "[scheduler]\nkind = bohb\n", "bad.ini:2: [scheduler] kind: ",
	  { "found 'bohb', expected one of random|sh|asha|hyperband" } },
	{ "unknown mode", "[scheduler]\nmode = resume\n", "bad.ini:2: [scheduler] mode: ",
	  { "expected one of restart|continue" } },
	{ "unknown sampler", "[scheduler]\nsampler = sobol\n",
	  "bad.ini:2: [scheduler] sampler: ",
	  { "expected one of the samplers built in: random, halton" } },
	{ "bad model spec", "[model]\nspec = mlp:abc\n", "bad.ini:2: [model] spec: ",
	  { "found 'mlp:abc', expected a model spec", "expected a number at 'abc'" } },
	{ "unknown model", "[model]\nspec = vit:4\n", "bad.ini:2: [model] spec: ",
	  { "unknown model 'vit'" } },
	{ "control character", "[train]\nlr = 0.1\x01\n", "bad.ini:2: [train]: ",
	  { "found a control character (0x01), expected text" } },
	{ "CRLF line numbers", "[train]\r\n\r\nlr = x\r\n", "bad.ini:3: [train] lr: ",
	  { "found 'x', expected" } },
	/* [space] */
	{ "unknown hyperparameter", "[space]\nfoo = float 0 1\n", "bad.ini:2: [space] foo: ",
	  { "found 'foo', expected a searchable [train] option: frozen-bn, batch, optimizer, lr, "
	    "momentum, nesterov, weight-decay, schedule, warmup, label-smoothing" } },
	{ "epochs in [space]", "[space]\nepochs = int 1 4\n", "bad.ini:2: [space] epochs: ",
	  { "epochs is set by [fidelity] epochs" } },
	{ "trainable in [space]", "[space]\ntrainable = int 1 4\n",
	  "bad.ini:2: [space] trainable: ", { "trainable is set by [fidelity]" } },
	{ "threads in [space]", "[space]\nthreads = int 1 4\n", "bad.ini:2: [space] threads: ",
	  { "threads is fixed, set it in [train]" } },
	{ "unknown type", "[space]\nlr = uniform 0 1\n", "bad.ini:2: [space] lr: ",
	  { "found 'uniform', expected float LO HI | log-float LO HI | choice A,B,C" } },
	{ "float for an int option", "[space]\nbatch = float 1 10\n",
	  "bad.ini:2: [space] batch: ",
	  { "found 'float', expected int LO HI | log-int LO HI | choice A,B,C" } },
	{ "int for a float option", "[space]\nmomentum = int 0 1\n",
	  "bad.ini:2: [space] momentum: ", { "found 'int', expected float LO HI" } },
	{ "range for a choice option", "[space]\noptimizer = float 0 1\n",
	  "bad.ini:2: [space] optimizer: ", { "found 'float', expected choice A,B,C" } },
	{ "no type", "[space]\nlr =\n", "bad.ini:2: [space] lr: ", { "found ''" } },
	{ "LO > HI", "[space]\nlr = float 0.1 0.01\n", "bad.ini:2: [space] lr: ",
	  { "found '0.1 0.01', expected LO < HI" } },
	{ "LO == HI", "[space]\nbatch = int 8 8\n", "bad.ini:2: [space] batch: ",
	  { "found '8 8', expected LO < HI" } },
	{ "log with LO 0", "[space]\nweight-decay = log-float 0 0.1\n",
	  "bad.ini:2: [space] weight-decay: ", { "found '0', expected LO > 0 for log-float" } },
	{ "log-int with LO 0", "[space]\nwarmup = log-int 0 100\n",
	  "bad.ini:2: [space] warmup: ", { "expected LO > 0 for log-int" } },
	{ "bounds beyond the option", "[space]\nmomentum = float 0.5 1.5\n",
	  "bad.ini:2: [space] momentum: ",
	  { "found '0.5 1.5', expected bounds within momentum's range, [0, 0.9999]" } },
	{ "lr from 0", "[space]\nlr = float 0 1\n", "bad.ini:2: [space] lr: ",
	  { "expected bounds within lr's range, [1e-12, 1000]" } },
	{ "one bound", "[space]\nlr = float 0.1\n", "bad.ini:2: [space] lr: ",
	  { "found '0.1', expected float LO HI: two bounds" } },
	{ "three bounds", "[space]\nlr = log-float 0.1 0.2 0.3\n", "bad.ini:2: [space] lr: ",
	  { "found '0.1 0.2 0.3', expected log-float LO HI: two bounds" } },
	{ "fractional int bound", "[space]\nbatch = int 16 64.5\n", "bad.ini:2: [space] batch: ",
	  { "found '64.5', expected an integer" } },
	{ "bound not a number", "[space]\nlr = log-float a 1\n", "bad.ini:2: [space] lr: ",
	  { "found 'a', expected a number" } },
	{ "choice not valid", "[space]\noptimizer = choice sgd,adam\n",
	  "bad.ini:2: [space] optimizer: ", { "found 'adam', expected one of sgd|adamw" } },
	{ "numeric choice not valid", "[space]\nbatch = choice 32,0\n",
	  "bad.ini:2: [space] batch: ", { "found '0', expected an integer in 1..65536" } },
	{ "boolean choice not valid", "[space]\nnesterov = choice on,perhaps\n",
	  "bad.ini:2: [space] nesterov: ", { "found 'perhaps', expected true or false" } },
	{ "repeated choice", "[space]\noptimizer = choice sgd,adamw,sgd\n",
	  "bad.ini:2: [space] optimizer: ", { "found 'sgd' twice, expected distinct choices" } },
	{ "repeated numeric choice", "[space]\nlr = choice 0.1,1e-1\n",
	  "bad.ini:2: [space] lr: ", { "found '1e-1' twice" } },
	{ "empty choice", "[space]\noptimizer = choice sgd,,adamw\n",
	  "bad.ini:2: [space] optimizer: ", { "found an empty choice" } },
	{ "trailing comma", "[space]\noptimizer = choice sgd,adamw,\n",
	  "bad.ini:2: [space] optimizer: ", { "found an empty choice" } },
	{ "one choice", "[space]\noptimizer = choice sgd\n", "bad.ini:2: [space] optimizer: ",
	  { "found one choice, expected at least 2" } },
	{ "too many choices",
	  "[space]\nbatch = choice 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n",
	  "bad.ini:2: [space] batch: ", { "found more than 16 choices, expected at most 16" } },
	{ "duplicate hyperparameter", "[space]\nlr = float 0.1 0.2\nlr = float 0.1 0.3\n",
	  "bad.ini:3: [space] lr: ",
	  { "found a second 'lr' (the first is on line 2)",
	    "expected each hyperparameter once" } },
	/* what is checked after the last line */
	{ "no [space]", "[study]\nseed = 3\n", "bad.ini:2: [space]: ",
	  { "found no hyperparameters, expected at least one line NAME = TYPE ARGS" } },
	{ "empty [space]", "\n[space]\n# nothing\n[train]\nlr = 0.1\n", "bad.ini:2: [space]: ",
	  { "found no hyperparameters" } },
	{ "empty file", "", "bad.ini:1: [space]: ", { "found no hyperparameters" } },
	{ "min_trainable above the stages",
	  "[model]\nspec = mlp:8\n[fidelity]\nmin_trainable = 3\n" SP,
	  "bad.ini:4: [fidelity] min_trainable: ",
	  { "found '3', expected at most 2, the stage count of model 'mlp:8'" } },
	{ "no such data directory", "[data]\nsource = /nonexistent/tunetop-data\n" SP,
	  "bad.ini:2: [data] source: ",
	  { "found '/nonexistent/tunetop-data', expected fashion-mnist, synthetic or a "
	    "directory", "No such file or directory" } },
	{ "data source not a directory", "[data]\nsource = /dev/null\n" SP,
	  "bad.ini:2: [data] source: ", { "not a directory" } },
	{ "more than Fashion-MNIST has", "[data]\nval_size = 10000\n" SP,
	  "bad.ini:2: [data] val_size: ",
	  { "found train_size 55000 + val_size 10000, expected at most 60000" } },
};

static void errors(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const bad_case *b = &bad_cases[i];
		tt_study s;
		tt_err e = {0};
		int rc = tt_study_parse("bad.ini", b->text, &s, &e);
		CHECK(rc == TT_EINPUT && e.code == TT_EINPUT, "%s: rc %d", b->what, rc);
		CHECK(strncmp(e.msg, b->head, strlen(b->head)) == 0,
		      "%s: message '%s' does not start with '%s'", b->what, e.msg, b->head);
		for (int k = 0; k < 3 && b->has[k]; k++)
			CHECK(strstr(e.msg, b->has[k]), "%s: message '%s' lacks '%s'", b->what,
			      e.msg, b->has[k]);
		CHECK(s.text == NULL, "%s: the study is freed", b->what);
		tt_study_free(&s);
	}
}

static void long_lines(void)
{
	char *t = malloc(TT_STUDY_LINE_MAX + 64);
	tt_study s;
	tt_err e = {0};
	/* exactly the limit: a long comment is fine */
	int n = sprintf(t, "[train]\n");
	memset(t + n, '#', TT_STUDY_LINE_MAX);
	strcpy(t + n + TT_STUDY_LINE_MAX, "\r\n" SP);
	int rc = tt_study_parse("long.ini", t, &s, &e);
	CHECK(rc == TT_OK, "a line of exactly %d bytes: %s", TT_STUDY_LINE_MAX, e.msg);
	tt_study_free(&s);
	/* one more byte */
	memset(t + n, '#', TT_STUDY_LINE_MAX + 1);
	strcpy(t + n + TT_STUDY_LINE_MAX + 1, "\n" SP);
	rc = tt_study_parse("long.ini", t, &s, &e);
	CHECK(rc == TT_EINPUT, "rc %d", rc);
	CHECK(strstr(e.msg, "long.ini:2: [train]: found a line of 1025 bytes, expected "
	                    "at most 1024"), "'%s'", e.msg);
	free(t);
}

/* ---- loading from disk -------------------------------------------------- */

static void load(void)
{
	char path[256], dir[256];
	tt_study s;
	tt_err e = {0};

	snprintf(path, sizeof path, "%s/missing.ini", tmpdir);
	CHECK(tt_study_load(path, &s, &e) == TT_EINPUT, "missing file");
	CHECK(strstr(e.msg, "missing.ini: cannot open the study file"), "'%s'", e.msg);
	CHECK(s.text == NULL, "freed");

	/* From disk, beside: db and a relative data directory. */
	snprintf(dir, sizeof dir, "%s/idx", tmpdir);
	CHECK(mkdir(dir, 0700) == 0, "mkdir");
	snprintf(path, sizeof path, "%s/beside.ini", tmpdir);
	const char *t = "[data]\nsource = idx\n[study]\ndb = out/b.db\n" SP;
	CHECK(spit(path, t, strlen(t)) == 0, "write");
	int rc = tt_study_load(path, &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc == TT_OK) {
		CHECK(strcmp(s.train.data, dir) == 0, "data '%s'", s.train.data);
		char want[300];
		snprintf(want, sizeof want, "%s/out/b.db", tmpdir);
		CHECK(strcmp(s.db, want) == 0, "db '%s'", s.db);
		CHECK(strcmp(s.name, "beside") == 0, "name '%s'", s.name);
		CHECK(strcmp(s.text, t) == 0, "text kept");
		tt_study_free(&s);
	}

	/* A NUL byte, named with its line. */
	static const char nul[] = "[train]\nlr = 0.1\n\0junk\n";
	CHECK(spit(path, nul, sizeof nul - 1) == 0, "write");
	CHECK(tt_study_load(path, &s, &e) == TT_EINPUT, "NUL byte");
	CHECK(strstr(e.msg, "beside.ini:3: found a NUL byte, expected text"), "'%s'", e.msg);

	/* Too large. */
	size_t big = TT_STUDY_FILE_MAX + 1;
	char *b = malloc(big);
	memset(b, '\n', big);
	CHECK(spit(path, b, big) == 0, "write");
	free(b);
	CHECK(tt_study_load(path, &s, &e) == TT_EINPUT, "large file");
	CHECK(strstr(e.msg, "found a file of more than 1048576 bytes"), "'%s'", e.msg);
	CHECK(s.text == NULL, "freed");
}

/* ---- values ------------------------------------------------------------- */

static const char apply_text[] =
	"[model]\nspec = mlp:16\n"
	"[space]\n"
	"lr = log-float 0.001 0.1\n"          /* line 4 */
	"batch = log-int 16 256\n"
	"warmup = int 0 100\n"
	"optimizer = choice sgd,adamw\n"
	"nesterov = choice off,on\n"
	"weight-decay = choice 0,1e-4,1e-3\n"
	"momentum = float 0 0.99\n"
	"[train]\nlabel-smoothing = 0.1\nthreads = 2\n";

static void apply(void)
{
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_parse("a.ini", apply_text, &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return;
	tt_train_config c;
	double v[7] = { 0.01, 63.6, 7.4, 1, 1, 2, 0.5 };
	rc = tt_study_apply(&s, v, &c, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	CHECK(c.opt.lr == 0.01f, "lr %g", c.opt.lr);
	CHECK(c.batch == 64, "batch rounded: %d", c.batch);
	CHECK(c.opt.warmup == 7, "warmup rounded: %ld", c.opt.warmup);
	CHECK(c.opt.kind == TT_OPT_ADAMW, "optimizer");
	CHECK(c.opt.nesterov == 1, "nesterov");
	CHECK(c.opt.weight_decay == 1e-3f, "weight decay %g", c.opt.weight_decay);
	CHECK(c.opt.momentum == 0.5f, "momentum %g", c.opt.momentum);
	CHECK(c.label_smoothing == 0.1f && c.threads == 2, "fixed settings kept");
	CHECK(c.trainable == 0 && c.epochs == 1 && c.seed == 1, "full fidelity, seed");
	CHECK(strcmp(c.model, "mlp:16") == 0, "model");
	CHECK(s.train.batch == 128 && s.train.opt.kind == TT_OPT_SGD, "study untouched");

	/* The slack for values read back from JSON: a hair over HI is HI. */
	v[0] = 0.1 * (1 + 1e-7);
	v[1] = 15.6;  /* rounds to 16 */
	CHECK(tt_study_apply(&s, v, &c, &e) == TT_OK, "%s", e.msg);
	CHECK(c.opt.lr == 0.1f && c.batch == 16, "clamped lr %g, batch %d", c.opt.lr,
	      c.batch);

	/* Rejections name the [space] line. */
	static const struct { int i; double v; const char *msg; } bad[] = {
		{ 0, 0.2, "a.ini:4: [space] lr: found '0.2', expected a value in [0.001, 0.1]" },
		{ 0, NAN, "a.ini:4: [space] lr: found 'nan', expected a finite value" },
		{ 0, INFINITY, "expected a finite value" },
		{ 1, 15.4, "a.ini:5: [space] batch: found '15.4', expected a value in [16, 256]" },
		{ 1, 300, "[space] batch: found '300'" },
		{ 2, -1, "a.ini:6: [space] warmup: found '-1'" },
		{ 3, 2, "a.ini:7: [space] optimizer: found '2', expected a choice index in 0..1" },
		{ 3, 0.5, "expected a choice index in 0..1" },
		{ 3, -1, "expected a choice index" },
		{ 6, 1.5, "a.ini:10: [space] momentum: found '1.5', expected a value in [0, 0.99]" },
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		double w[7] = { 0.01, 64, 7, 1, 1, 2, 0.5 };
		w[bad[k].i] = bad[k].v;
		rc = tt_study_apply(&s, w, &c, &e);
		CHECK(rc == TT_EINPUT, "case %zu: rc %d", k, rc);
		CHECK(strstr(e.msg, bad[k].msg), "case %zu: '%s' lacks '%s'", k, e.msg,
		      bad[k].msg);
	}
	tt_study_free(&s);

	/* The gates' knobs: fixed in [train], searched in [space]; the
	 * searched one lands as a double, the fixed ones stay. */
	rc = tt_study_parse("g.ini", "[space]\ngate-strength = log-float 0.1 10\n"
	                    "[train]\ngate-balance = 0.9\ngate-flops-share = 0\n",
	                    &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc == TT_OK) {
		double gv[1] = { 2.5 };
		CHECK(tt_study_apply(&s, gv, &c, &e) == TT_OK, "%s", e.msg);
		CHECK(c.gates.strength == 2.5 && c.gates.balance == 0.9 &&
		      c.gates.flops_share == 0, "gates %g %g %g", c.gates.strength,
		      c.gates.balance, c.gates.flops_share);
		CHECK(s.train.gates.strength == 0, "study's default strength %g",
		      s.train.gates.strength);
		gv[0] = 20;
		CHECK(tt_study_apply(&s, gv, &c, &e) == TT_EINPUT &&
		      strstr(e.msg, "g.ini:2: [space] gate-strength: found '20'"),
		      "out of the searched range: %s", e.msg);
		tt_study_free(&s);
	}
	rc = tt_study_parse("h.ini", "[train]\ngate-balance = 1.5\n", &s, &e);
	CHECK(rc == TT_EINPUT && strstr(e.msg, "h.ini:2: [train] gate-balance: found '1.5'"),
	      "balance out of range: %s", e.msg);
	rc = tt_study_parse("h.ini", "[train]\ngates = 1\n", &s, &e);
	CHECK(rc == TT_EINPUT && strstr(e.msg, "gate-strength"),
	      "gates in [train] says where the knobs go: %s", e.msg);

	/* lr follows the chosen optimizer when nothing sets it. */
	rc = tt_study_parse("b.ini", "[space]\noptimizer = choice sgd,adamw\n", &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	double o[1] = { 1 };
	CHECK(tt_study_apply(&s, o, &c, &e) == TT_OK && c.opt.lr == 1e-3f,
	      "adamw: lr %g", c.opt.lr);
	o[0] = 0;
	CHECK(tt_study_apply(&s, o, &c, &e) == TT_OK && c.opt.lr == 0.05f,
	      "sgd: lr %g", c.opt.lr);
	tt_study_free(&s);
	rc = tt_study_parse("c.ini", "[space]\noptimizer = choice sgd,adamw\n"
	                    "[train]\nlr = 0.3\n", &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	o[0] = 1;
	CHECK(tt_study_apply(&s, o, &c, &e) == TT_OK && c.opt.lr == 0.3f,
	      "a given lr stays: %g", c.opt.lr);
	tt_study_free(&s);
}

static void params_json(void)
{
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_parse("a.ini", apply_text, &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return;
	char buf[512];
	double v[7] = { 0.0123456789, 63.6, 7.4, 1, 0, 1, 0.5 };
	static const char want[] =
		"{\"lr\":0.012345679,\"batch\":64,\"warmup\":7,\"optimizer\":\"adamw\","
		"\"nesterov\":false,\"weight-decay\":0.0001,\"momentum\":0.5}";
	size_t n = tt_study_params_json(&s, v, buf, sizeof buf);
	CHECK(strcmp(buf, want) == 0, "got %s", buf);
	CHECK(n == strlen(want), "length %zu", n);
	CHECK(tt_study_params_json(&s, v, NULL, 0) == n, "length without a buffer");
	char small[11];
	CHECK(tt_study_params_json(&s, v, small, sizeof small) == n, "length when cut");
	CHECK(strcmp(small, "{\"lr\":0.01") == 0, "cut: '%s'", small);

	double w[7] = { NAN, 1000, 7, 5, 1, 0, 0.5 };
	tt_study_params_json(&s, w, buf, sizeof buf);
	CHECK(strcmp(buf, "{\"lr\":null,\"batch\":null,\"warmup\":7,\"optimizer\":null,"
	                  "\"nesterov\":true,\"weight-decay\":0,\"momentum\":0.5}") == 0,
	      "got %s", buf);
	double x[7] = { 1e-3, 256, 100, 0, 1, 0, 0 };
	tt_study_params_json(&s, x, buf, sizeof buf);
	CHECK(strcmp(buf, "{\"lr\":0.001,\"batch\":256,\"warmup\":100,\"optimizer\":\"sgd\","
	                  "\"nesterov\":true,\"weight-decay\":0,\"momentum\":0}") == 0,
	      "got %s", buf);
	tt_study_free(&s);
}


/* JSON and back: every value reads back as what the trial trains with. */
static void params_parse(void)
{
	tt_study s;
	tt_err e = {0};
	int rc = tt_study_parse("a.ini", apply_text, &s, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return;
	char buf[512];
	double v[7] = { 0.0123456789, 63.6, 7.4, 1, 0, 2, 0.987654321 }, w[7];
	tt_train_config a, b;
	tt_study_params_json(&s, v, buf, sizeof buf);
	rc = tt_study_params_parse(&s, buf, w, &e);
	CHECK(rc == TT_OK, "%s: %s", buf, e.msg);
	CHECK(tt_study_apply(&s, v, &a, &e) == TT_OK && tt_study_apply(&s, w, &b, &e) == TT_OK,
	      "%s", e.msg);
	CHECK(a.opt.lr == b.opt.lr && a.opt.momentum == b.opt.momentum &&
	      a.batch == b.batch && a.opt.warmup == b.opt.warmup &&
	      a.opt.kind == b.opt.kind && a.opt.nesterov == b.opt.nesterov &&
	      a.opt.weight_decay == b.opt.weight_decay,
	      "%s trains otherwise than the values it was written from", buf);
	CHECK(w[1] == 64 && w[3] == 1 && w[4] == 0 && w[5] == 2, "read back %g %g %g %g",
	      w[1], w[3], w[4], w[5]);
	/* the values read back write the same text: a fixed point */
	char again[512];
	tt_study_params_json(&s, w, again, sizeof again);
	CHECK(strcmp(buf, again) == 0, "%s, then %s", buf, again);

	/* a database written before exact numbers: 6 digits, still read */
	rc = tt_study_params_parse(&s, "{\"lr\":0.0123457,\"batch\":64,\"warmup\":7,"
	                           "\"optimizer\":\"adamw\",\"nesterov\":true,"
	                           "\"weight-decay\":0.001,\"momentum\":0.5}", w, &e);
	CHECK(rc == TT_OK && w[0] == 0.0123457 && w[4] == 1 && w[5] == 2, "%s", e.msg);
	rc = tt_study_params_parse(&s, " { \"lr\" : null , \"batch\":64,\"warmup\":7,"
	                           "\"optimizer\":\"sgd\",\"nesterov\":false,"
	                           "\"weight-decay\":0,\"momentum\":0.5 } ", w, &e);
	CHECK(rc == TT_OK && isnan(w[0]) && w[3] == 0 && w[5] == 0, "null: %s", e.msg);

	static const struct { const char *json, *has; } bad[] = {
		{ "[1]", "expected a JSON object" },
		{ "{\"lr\":0.01}", "expected a value for [space] batch" },
		{ "{\"lr\":0.01,\"batch\":64,\"warmup\":7,\"optimizer\":\"sgd\","
		  "\"nesterov\":false,\"weight-decay\":0,\"momentum\":0.5,\"gamma\":1}",
		  "found key 'gamma'" },
		{ "{\"lr\":\"fast\",\"batch\":64}", "[space] lr: found 'fast', expected a number" },
		{ "{\"lr\":0.01,\"lr\":0.02}", "found 'lr' twice" },
		{ "{\"optimizer\":\"lion\"}", "expected one of the choices of [space] optimizer" },
		{ "{\"weight-decay\":0.5}", "[space] weight-decay: found '0.5'" },
		{ "{\"lr\":0.01 \"batch\":64}", "expected ',' or '}'" },
		{ "{\"lr\":0.01,\"batch\":64,\"warmup\":7,\"optimizer\":\"sgd\","
		  "\"nesterov\":false,\"weight-decay\":0,\"momentum\":0.5} x",
		  "expected nothing after" },
		{ "{\"lr", "expected a quoted key" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		e.msg[0] = 0;
		rc = tt_study_params_parse(&s, bad[i].json, w, &e);
		CHECK(rc == TT_EINPUT && strstr(e.msg, bad[i].has), "%s: %d '%s'", bad[i].json,
		      rc, e.msg);
	}
	tt_study_free(&s);
}

/* The fingerprint of text, compared with base's: the count of changes and
 * the message. */
static int fp_diff(const char *base, const char *text, char *what, size_t n)
{
	tt_study a, b;
	tt_err e = {0};
	int rc = tt_study_parse("f.ini", base, &a, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		return -9;
	rc = tt_study_parse("f.ini", text, &b, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc) {
		tt_study_free(&a);
		return -9;
	}
	char *fa = tt_study_fingerprint(&a), *fb = tt_study_fingerprint(&b);
	int d = tt_study_fingerprint_diff(fa, fb, what, n);
	free(fa);
	free(fb);
	tt_study_free(&a);
	tt_study_free(&b);
	return d;
}

static void fingerprint(void)
{
	static const char base[] =
		"[study]\nseed = 3\nworkers = 1\n[data]\nsource = synthetic\ntrain_size = 512\n"
		"[model]\nspec = mlp:16\n[space]\nlr = log-float 0.001 0.1\n"
		"momentum = float 0.5 0.9\n[scheduler]\nmax_trials = 4\n[train]\nbatch = 32\n";
	static const struct {
		const char *from, *to;  /* a line of base, and what it becomes */
		int changes;
		const char *has;
	} cases[] = {
		/* free to change */
		{ "workers = 1", "workers = 4\nbudget = 3\ncheckpoint_every = 7\nname = other", 0,
		  "" },
		{ "max_trials = 4", "max_trials = 40", 0, "" },
		{ "batch = 32", "batch = 32\nthreads = 1\ntest = on", 0, "" },
		{ "seed = 3", "seed = 3 # a comment", 0, "" },
		/* what results mean */
		{ "lr = log-float 0.001 0.1", "lr = log-float 0.0001 0.1", 1,
		  "[space] lr: was log-float 0.001 0.1, now log-float 0.0001 0.1" },
		{ "spec = mlp:16", "spec = mlp:32", 1, "[model] spec: was mlp:16, now mlp:32" },
		{ "train_size = 512", "train_size = 1024", 1,
		  "[data] train_size: was 512, now 1024" },
		{ "seed = 3", "seed = 4", 1, "[study] seed: was 3, now 4" },
		{ "batch = 32", "batch = 64", 1, "[train] batch: was 32, now 64" },
		{ "batch = 32", "batch = 32\noptimizer = adamw", 1,
		  "[train] optimizer: was sgd, now adamw" },
		{ "batch = 32", "batch = 32\nlr = 0.05", 0, "" }, /* lr is in [space] */
		{ "max_trials = 4", "max_trials = 4\nsampler = random", 1,
		  "[scheduler] sampler: was tpe, now random" },
		{ "max_trials = 4", "max_trials = 4\n[fidelity]\neta = 3", 1,
		  "[fidelity] eta: was 2, now 3" },
		{ "momentum = float 0.5 0.9", "momentum = float 0.5 0.9\nwarmup = int 0 9", 1,
		  "[space] warmup: was none, now int 0 9" },
		{ "momentum = float 0.5 0.9", "", 1, "[space] momentum: was float 0.5 0.9, now none" },
		{ "lr = log-float 0.001 0.1\nmomentum = float 0.5 0.9",
		  "momentum = float 0.5 0.9\nlr = log-float 0.001 0.1", 1,
		  "[space] order: was lr,momentum, now momentum,lr" },
		/* momentum in [space] overrides [train]: changing the latter is free */
		{ "batch = 32", "batch = 32\nmomentum = 0.1", 0, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[1024], what[400] = "";
		const char *at = strstr(base, cases[i].from);
		TT_ASSERT(at);
		snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, cases[i].to,
		         at + strlen(cases[i].from));
		int d = fp_diff(base, text, what, sizeof what);
		CHECK(d == cases[i].changes && strstr(what, cases[i].has),
		      "'%s' -> '%s': %d changes, '%s'", cases[i].from, cases[i].to, d, what);
	}
	/* several at once, each named; a short buffer says how many more */
	char what[400], small[80];
	static const char many[] =
		"[study]\nseed = 9\nworkers = 1\n[data]\nsource = synthetic\ntrain_size = 256\n"
		"[model]\nspec = mlp:8\n[space]\nlr = log-float 0.01 0.1\n"
		"momentum = float 0.5 0.9\n[scheduler]\nmax_trials = 4\n[train]\nbatch = 16\n";
	int d = fp_diff(base, many, what, sizeof what);
	CHECK(d == 5 && strstr(what, "[study] seed") && strstr(what, "[model] spec") &&
	      strstr(what, "[space] lr") && strstr(what, "[train] batch") &&
	      strstr(what, "[data] train_size"), "%d: %s", d, what);
	d = fp_diff(base, many, small, sizeof small);
	CHECK(d == 5 && strstr(small, "more") && strlen(small) < sizeof small, "%d: %s", d,
	      small);
	/* lr that follows the optimizer is not the same as its value set */
	static const char nolr[] =
		"[model]\nspec = mlp:16\n[space]\nmomentum = float 0.5 0.9\n";
	static const char lr05[] =
		"[model]\nspec = mlp:16\n[space]\nmomentum = float 0.5 0.9\n[train]\nlr = 0.05\n";
	d = fp_diff(nolr, lr05, what, sizeof what);
	CHECK(d == 1 && strstr(what, "[train] lr: was follows the optimizer, now 0.05"),
	      "%d: %s", d, what);
	CHECK(tt_study_fingerprint_diff("tunetop study fingerprint 0\n", "tunetop study "
	      "fingerprint 1\n", what, sizeof what) == -1, "another version compared");
	/* a database made by a build before a key existed: its fingerprint
	 * lacks the line; the key at its default is how that build ran (no
	 * difference), at another value it is one */
	tt_study a, b;
	tt_err e = {0};
	char wd[1024];
	snprintf(wd, sizeof wd, "%sevograd-what = wd\n", base);
	if (tt_study_parse("f.ini", base, &a, &e) == TT_OK) {
		if (tt_study_parse("f.ini", wd, &b, &e) == TT_OK) {
			char *fa = tt_study_fingerprint(&a), *fb = tt_study_fingerprint(&b);
			char *line = strstr(fa, "[train] evograd-what = off\n");
			CHECK(line != NULL, "no evograd-what line in %s", fa);
			if (line) {
				memmove(line, line + strlen("[train] evograd-what = off\n"),
				        strlen(line + strlen("[train] evograd-what = off\n")) + 1);
				CHECK(tt_study_fingerprint_diff(fa, fa, what, sizeof what) == 0, "itself");
				char *now = tt_study_fingerprint(&a);
				d = tt_study_fingerprint_diff(fa, now, what, sizeof what);
				CHECK(d == 0, "a key at its default that the old fingerprint lacks: "
				      "%d: %s", d, what);
				free(now);
				/* the same older fingerprint against a study that sets it */
				char *fw = tt_study_fingerprint(&b);
				d = tt_study_fingerprint_diff(fa, fw, what, sizeof what);
				CHECK(d == 1 && strstr(what, "[train] evograd-what: was none, now wd"),
				      "%d: %s", d, what);
				free(fw);
			}
			free(fa);
			free(fb);
			tt_study_free(&b);
		}
		/* frozen-bn came with a default (fixed) other than how older
		 * builds ran (batch): a database without the line ran batch */
		char *fa = tt_study_fingerprint(&a);
		const char *fl = "[train] frozen-bn = fixed\n";
		char *line = strstr(fa, fl);
		CHECK(line != NULL, "no frozen-bn line in %s", fa);
		if (line) {
			memmove(line, line + strlen(fl), strlen(line + strlen(fl)) + 1);
			char *now = tt_study_fingerprint(&a);
			d = tt_study_fingerprint_diff(fa, now, what, sizeof what);
			CHECK(d == 1 && strstr(what, "[train] frozen-bn: was batch, now fixed"),
			      "%d: %s", d, what);
			free(now);
			char bt[1024];
			snprintf(bt, sizeof bt, "%sfrozen-bn = batch\n", base);
			if (tt_study_parse("f.ini", bt, &b, &e) == TT_OK) {
				now = tt_study_fingerprint(&b);
				d = tt_study_fingerprint_diff(fa, now, what, sizeof what);
				CHECK(d == 0, "batch is what the old database ran: %d: %s", d, what);
				free(now);
				tt_study_free(&b);
			}
		}
		free(fa);
		tt_study_free(&a);
	}
	CHECK(e.code == 0, "%s", e.msg);
}

/* ---- the man pages ------------------------------------------------------ */

#define MAN_BEGIN ".\\\" BEGIN KEYS: generated from engine/study.c's tables\n"
#define MAN_END ".\\\" END KEYS\n"

static void man_keys(void)
{
	char *gen = NULL;
	size_t glen = 0;
	FILE *f = open_memstream(&gen, &glen);
	tt_study_man_keys(f);
	fclose(f);
	const char *path = src("man/tunetop-study.5");
	char *man = slurp(path);
	CHECK(man, "cannot read %s", path);
	if (!man) {
		free(gen);
		return;
	}
	char *b = strstr(man, MAN_BEGIN), *e = b ? strstr(b, MAN_END) : NULL;
	CHECK(b && e, "%s: no BEGIN KEYS / END KEYS markers", path);
	if (b && e) {
		b += strlen(MAN_BEGIN);
		int same = (size_t)(e - b) == glen && memcmp(b, gen, glen) == 0;
		if (!same && getenv("TT_WRITE_MAN")) {
			FILE *o = fopen(path, "wb");
			if (o) {
				fwrite(man, 1, (size_t)(b - man), o);
				fwrite(gen, 1, glen, o);
				fputs(e, o);
				same = fclose(o) == 0;
			}
		}
		CHECK(same, "%s: the KEYS block differs from the tables; rerun with "
		      "TT_WRITE_MAN=1", path);
	}
	/* Every default the tables give is in the page. */
	CHECK(strstr(man, "Default: 55000.") && strstr(man, "Default: tpe."),
	      "defaults in the page");
	free(man);
	free(gen);
}

/* The full example of the man page parses. */
static void man_example(void)
{
	char *man = slurp(src("man/tunetop-study.5"));
	CHECK(man, "cannot read man/tunetop-study.5");
	if (!man)
		return;
	char *b = strstr(man, ".SH EXAMPLE\n.EX\n"), *e = b ? strstr(b, "\n.EE\n") : NULL;
	CHECK(b && e, "no EXAMPLE .EX block");
	if (b && e) {
		/* roff to text: "\-" is '-' */
		char *out = b + strlen(".SH EXAMPLE\n.EX\n"), *w = man;
		for (char *r = out; r <= e; r++) {
			if (r[0] == '\\' && r[1] == '-')
				r++;
			*w++ = *r;
		}
		*w = 0;
		tt_study s;
		tt_err er = {0};
		int rc = tt_study_parse("man.ini", man, &s, &er);
		CHECK(rc == TT_OK, "%s", er.msg);
		CHECK(rc || (s.nspace == 4 && s.stages == 8 && s.sched_kind == TT_SCH_ASHA),
		      "the example's values");
		tt_study_free(&s);
	}
	free(man);
}

/* Every `tunetop train` option of man/tunetop.1 (which t_man.sh keeps equal
 * to --help) is a [train] key or says where it lives: none is unknown. */
static void train_names(void)
{
	char *man = slurp(src("man/tunetop.1"));
	CHECK(man, "cannot read man/tunetop.1");
	if (!man)
		return;
	char *p = strstr(man, ".SH TRAIN OPTIONS"), *end = p ? strstr(p, ".SH EXIT") : NULL;
	CHECK(p && end, "no TRAIN OPTIONS section");
	int names = 0;
	for (; p && p < end; p++) {
		if (strncmp(p, "\\-\\-", 4) != 0)
			continue;
		char name[64];
		int n = 0;
		for (p += 4; n < 63 && ((*p >= 'a' && *p <= 'z') || *p == '-' ||
		                        (*p == '\\' && p[1] == '-'));
		     p += *p == '\\' ? 2 : 1)
			name[n++] = *p == '\\' ? '-' : *p;
		name[n] = 0;
		if (!n || strcmp(name, "help") == 0)
			continue;
		char text[256];
		snprintf(text, sizeof text, "[train]\n%s = @\n", name);
		tt_study s;
		tt_err e = {0};
		tt_study_parse("n.ini", text, &s, &e);
		CHECK(!strstr(e.msg, "unknown key"), "--%s: %s", name, e.msg);
		names++;
	}
	CHECK(names >= 20, "only %d options found", names);
	free(man);
}

/*
 * The options table (trainopt.h) is the one source: every row's default
 * parses and is what tt_train_defaults gives; every row is either a
 * [train] key or names its home, and [train] reads each key with the
 * same "expected" text the command line prints; only [train] keys are
 * searchable, and [space] takes exactly the searchable ones.
 */
static void train_table(void)
{
	tt_train_config d, c;
	tt_train_defaults(&d);
	char buf[512], want[512];
	int cli = 0, train = 0, searchable = 0;
	for (int i = 0; i < tt_trainopt_count; i++) {
		const tt_trainopt *o = &tt_trainopts[i];
		CHECK(tt_trainopt_find(o->name) == o, "%s: a second row of that name", o->name);
		CHECK(o->help && o->help[0] && o->help[strlen(o->help) - 1] != '.',
		      "%s: help '%s'", o->name, o->help);
		CHECK(tt_trainopt_defdoc(o), "%s: no documented default", o->name);
		CHECK(!o->meta == (o->type == TT_TO_FLAG), "%s: meta", o->name);
		cli += !!(o->where & TT_TO_CLI);
		train += !!(o->where & TT_TO_TRAIN);
		CHECK(!(o->where & TT_TO_TRAIN) == !!o->home && !o->home == !o->home_why,
		      "%s: a [train] key, or a home and why", o->name);
		CHECK(o->search == TT_TO_FIXED || (o->where & TT_TO_TRAIN),
		      "%s: searchable but no [train] key", o->name);
		if (o->def) {
			memcpy(&c, &d, sizeof c);
			CHECK(!tt_trainopt_parse(o, o->def, &c, NULL, buf, sizeof buf),
			      "%s: default '%s': %s", o->name, o->def, buf);
			CHECK(memcmp(&c, &d, sizeof c) == 0,
			      "%s: tt_train_defaults differs from the default '%s'", o->name,
			      o->def);
		}
		if (o->where & TT_TO_TRAIN) {
			/* a value no row accepts, with the same message */
			snprintf(buf, sizeof buf, "[space]\nlr = float 0.01 0.1\n[train]\n%s = 1e99x\n",
			         o->name);
			tt_study s;
			tt_err e = {0};
			CHECK(tt_study_parse("t.ini", buf, &s, &e) == TT_EINPUT, "%s", o->name);
			const char *why = tt_trainopt_parse(o, "1e99x", NULL, NULL, want, sizeof want);
			/* init takes any path: a file that is no checkpoint is refused
			 * once the study file's directory is known */
			if (!why && o->off == offsetof(tt_train_config, init))
				why = "[train] init: found '1e99x', expected a checkpoint";
			CHECK(why && strstr(e.msg, why), "%s: '%s' lacks '%s'", o->name, e.msg,
			      why ? why : "");
		}
		if (o->search != TT_TO_FIXED) {
			searchable++;
			snprintf(buf, sizeof buf, "[space]\n%s = choice %s\n", o->name,
			         o->type == TT_TO_CHOICE ? "sgd,adamw" : "0,1");
			if (o->type == TT_TO_CHOICE && strcmp(o->name, "schedule") == 0)
				snprintf(buf, sizeof buf, "[space]\n%s = choice step,cosine\n", o->name);
			tt_study s;
			tt_err e = {0};
			int rc = tt_study_parse("t.ini", buf, &s, &e);
			/* 0 may be out of range (batch): only "not searchable" is wrong */
			CHECK(rc == TT_OK || !strstr(e.msg, "searchable"), "%s: %s", o->name, e.msg);
			if (rc == TT_OK)
				tt_study_free(&s);
		} else {
			snprintf(buf, sizeof buf, "[space]\n%s = choice 1,2\n", o->name);
			tt_study s;
			tt_err e = {0};
			CHECK(tt_study_parse("t.ini", buf, &s, &e) == TT_EINPUT &&
			      strstr(e.msg, "expected a searchable [train] option"), "%s: %s",
			      o->name, e.msg);
		}
	}
	CHECK(cli >= 20 && train >= 12 && searchable >= 9, "%d, %d, %d rows", cli, train,
	      searchable);
	/* lr follows the optimizer where none is given */
	c = d;
	c.opt.kind = TT_OPT_ADAMW;
	tt_trainopt_lr_follow(&c);
	CHECK(c.opt.lr == 1e-3f, "adamw lr %g", c.opt.lr);
	c.opt.kind = TT_OPT_SGD;
	tt_trainopt_lr_follow(&c);
	CHECK(c.opt.lr == d.opt.lr && d.opt.lr == 0.05f, "sgd lr %g", c.opt.lr);
}

/* ---- fuzz --------------------------------------------------------------- */

static uint64_t fz = 0x9e3779b97f4a7c15ull;

static uint64_t fz_next(void)
{
	fz ^= fz << 13;
	fz ^= fz >> 7;
	fz ^= fz << 17;
	return fz;
}

static size_t fz_below(size_t n)
{
	return n ? (size_t)(fz_next() % n) : 0;
}

/* What a study that parsed must satisfy. */
static void check_valid(const tt_study *s, const char *text)
{
	CHECK(s->text && strcmp(s->text, text) == 0, "text kept");
	CHECK(s->name[0] && strlen(s->name) < TT_NAME_LEN && !strchr(s->name, '/'),
	      "name '%s'", s->name);
	CHECK(s->db[0], "db");
	int st = 0;
	CHECK(tt_model_spec_check(s->train.model, &st, NULL) == TT_OK && st == s->stages,
	      "model '%s'", s->train.model);
	CHECK(s->min_trainable >= 1 && s->min_trainable <= s->stages, "min_trainable");
	CHECK(s->eta >= 2 && s->epochs > 0 && s->workers >= 1 && s->max_trials >= 1,
	      "numbers");
	CHECK(s->fid_kind >= 0 && s->fid_kind <= TT_FID_JOINT &&
	      s->sched_kind >= 0 && s->sched_kind <= TT_SCH_HYPERBAND &&
	      s->mode >= 0 && s->mode <= TT_MODE_CONTINUE &&
	      tt_sampler_nth(s->sampler) != NULL, "enums");
	CHECK(s->train.batch >= 1 && s->train.opt.lr > 0 && s->train.val_size >= 1,
	      "train");
	CHECK(s->nspace >= 1 && s->nspace <= TT_SPACE_MAX, "nspace %d", s->nspace);
	for (int i = 0; i < s->nspace; i++) {
		const tt_param_spec *p = &s->space[i];
		CHECK(p->name[0] && p->line >= 1, "param name, line");
		if (p->type == TT_P_CHOICE) {
			CHECK(p->nchoices >= 2 && p->nchoices <= TT_CHOICE_MAX, "choices");
			for (int k = 0; k < p->nchoices; k++)
				CHECK(p->choices[k][0], "empty choice");
		} else {
			CHECK(isfinite(p->lo) && isfinite(p->hi) && p->lo < p->hi, "bounds");
			if (p->type == TT_P_LOGFLOAT || p->type == TT_P_LOGINT)
				CHECK(p->lo > 0, "log bounds");
			if (p->type == TT_P_INT || p->type == TT_P_LOGINT)
				CHECK(p->lo == floor(p->lo) && p->hi == floor(p->hi), "int bounds");
		}
	}
	/* The low corner, the high corner and the middle apply. */
	for (int k = 0; k < 3; k++) {
		double v[TT_SPACE_MAX];
		for (int i = 0; i < s->nspace; i++) {
			const tt_param_spec *p = &s->space[i];
			double lo = p->type == TT_P_CHOICE ? 0 : p->lo;
			double hi = p->type == TT_P_CHOICE ? p->nchoices - 1 : p->hi;
			v[i] = k == 0 ? lo : k == 1 ? hi : floor(lo / 2 + hi / 2);
			if (k == 2 && (p->type == TT_P_FLOAT || p->type == TT_P_LOGFLOAT))
				v[i] = lo / 2 + hi / 2;
		}
		tt_train_config c;
		tt_err e = {0};
		CHECK(tt_study_apply(s, v, &c, &e) == TT_OK, "apply, corner %d: %s", k, e.msg);
		char buf[2048];
		size_t n = tt_study_params_json(s, v, buf, sizeof buf);
		CHECK(n < sizeof buf && buf[0] == '{' && buf[n - 1] == '}' && !strstr(buf, "null"),
		      "json %s", buf);
	}
}

static void fuzz(void)
{
	static const char *tokens[] = {
		"[space]", "[train]", "[study]", "[fidelity]", "[", "]", "=", " = ", ",",
		"#", ";", "\"", "'", "\r\n", "\n", "\t", "choice", "log-float", "log-int",
		"int", "float", "lr", "batch", "1e308", "-1", "0", "1e-400", "nan",
		"min_trainable = 9", "lr = float 1 0", "spec = resnet:64,64", "\x01", "\xff",
		"optimizer = choice sgd,adamw,sgd",
	};
	const char *path = src("examples/quick.ini");
	char *base = slurp(path);
	CHECK(base, "cannot read %s", path);
	if (!base)
		return;
	size_t blen = strlen(base), cap = 4 * blen + 4096;
	char *t = malloc(cap);
	int accepted = 0, rejected = 0, failed_before = tt_case_failed;
	for (int it = 0; it < 2000 && tt_case_failed == failed_before; it++) {
		memcpy(t, base, blen + 1);
		size_t n = blen;
		int muts = 1 + (int)fz_below(4);
		for (int m = 0; m < muts; m++) {
			switch (fz_below(6)) {
			case 0: /* flip a byte (never to NUL: the text is a C string) */
				if (n)
					t[fz_below(n)] = (char)(1 + fz_below(255));
				break;
			case 1: /* truncate */
				n = fz_below(n + 1);
				t[n] = 0;
				break;
			case 2: { /* duplicate a line */
				size_t a = fz_below(n + 1);
				while (a && t[a - 1] != '\n')
					a--;
				size_t e = a;
				while (e < n && t[e] != '\n')
					e++;
				e += e < n;
				if (n + (e - a) < cap) {
					memmove(t + e + (e - a), t + e, n - e + 1);
					memcpy(t + e, t + a, e - a);
					n += e - a;
				}
				break;
			}
			case 3: { /* delete a line */
				size_t a = fz_below(n + 1);
				while (a && t[a - 1] != '\n')
					a--;
				size_t e = a;
				while (e < n && t[e] != '\n')
					e++;
				e += e < n;
				memmove(t + a, t + e, n - e + 1);
				n -= e - a;
				break;
			}
			case 4: { /* insert a token */
				const char *tok = tokens[fz_below(sizeof tokens / sizeof *tokens)];
				size_t k = strlen(tok), at = fz_below(n + 1);
				if (n + k < cap) {
					memmove(t + at + k, t + at, n - at + 1);
					memcpy(t + at, tok, k);
					n += k;
				}
				break;
			}
			default: /* swap two bytes */
				if (n) {
					size_t a = fz_below(n), b = fz_below(n);
					char ch = t[a];
					t[a] = t[b];
					t[b] = ch;
				}
			}
		}
		tt_study s;
		tt_err e = {0};
		int rc = tt_study_parse(path, t, &s, &e);
		if (rc == TT_OK) {
			accepted++;
			check_valid(&s, t);
			tt_study_free(&s);
			continue;
		}
		rejected++;
		int line = 0, lines = 1;
		for (const char *q = t; *q; q++)
			lines += *q == '\n';
		size_t pl = strlen(path);
		CHECK(rc == TT_EINPUT, "iteration %d: rc %d (%s)", it, rc, e.msg);
		CHECK(strncmp(e.msg, path, pl) == 0 && sscanf(e.msg + pl, ":%d: ", &line) == 1 &&
		      line >= 1 && line <= lines, "iteration %d: '%s'", it, e.msg);
		CHECK(strstr(e.msg, "found") && strstr(e.msg, "expected"),
		      "iteration %d: '%s'", it, e.msg);
		CHECK(s.text == NULL, "iteration %d: not freed", it);
		if (tt_case_failed != failed_before)
			fprintf(stderr, "  input:\n%s\n", t);
	}
	CHECK(accepted > 50 && rejected > 500, "accepted %d, rejected %d", accepted,
	      rejected);
	free(t);
	free(base);
}

/* ---- main --------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/tt_study_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	TT_RUN(examples_quick);
	TT_RUN(examples_fmnist_mlp);
	TT_RUN(examples_fmnist_resnet);
	TT_RUN(defaults);
	TT_RUN(syntax);
	TT_RUN(errors);
	TT_RUN(long_lines);
	TT_RUN(load);
	TT_RUN(apply);
	TT_RUN(params_json);
	TT_RUN(params_parse);
	TT_RUN(fingerprint);
	TT_RUN(man_keys);
	TT_RUN(man_example);
	TT_RUN(train_names);
	TT_RUN(train_table);
	TT_RUN(fuzz);
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	TT_EXIT();
}
