/*
 * study.c — study files; see study.h and man/tunetop-study.5.
 *
 * The parser is a loop over lines and a handful of const tables:
 *
 *   sections[]   the sections, each with its key table (or, for [space]
 *                and [train], its own line handler) and a line of help;
 *   *_keys[]     per section: name, type, range, choices, offset of the
 *                target in tt_study, the default (parsed through the same
 *                code as a value from a file, so the table is the one
 *                source of the defaults; a key that sets a `tunetop train`
 *                option takes the option's) and help;
 *   ptypes[]     the [space] types.
 *
 * [train] and what [space] may search are the rows of the training
 * options table (trainopt.h), the same rows `tunetop train` parses, so
 * names, ranges, defaults and messages are one.  The words a boolean
 * accepts are that module's too (tt_trainopt_bool).
 *
 * The tables produce every error message ("expected one of ...") and
 * the KEYS section of the man page (tt_study_man_keys), so the three cannot
 * disagree.
 *
 * Constraints kept: nothing is allocated but the copy of the text; every
 * failure is TT_EINPUT (TT_ERUNTIME only for out of memory or a read error)
 * with "FILE:LINE: [section] key: found 'X', expected Y"; on failure the
 * study is freed.
 */
#include "study.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "parse.h"
#include "trainopt.h"
#include "sampler.h"
#include "scheduler.h"

#define FASHION_TRAIN_N 60000 /* images in Fashion-MNIST's training set */

/* ---- the tables --------------------------------------------------------- */

enum key_type {
	K_INT,       /* int */
	K_LONG,      /* long */
	K_U64,       /* uint64_t */
	K_FLOAT,     /* float */
	K_DOUBLE,    /* double */
	K_BOOL,      /* int, 0 or 1: tt_trainopt_bool's words */
	K_CHOICE,    /* int, the index in choices */
	K_STRING     /* char[hi], non-empty */
};

#define P_BIT(t) (1u << (t))

typedef struct key {
	const char *name;
	const char *meta;     /* what a value looks like, for the man page */
	int type;             /* enum key_type */
	double lo, hi;        /* numbers: inclusive range; K_STRING: capacity */
	const char *choices;  /* K_CHOICE: "a|b|c", in enum order */
	size_t off;           /* target, an offset into tt_study */
	const char *def;      /* default, parsed at init; NULL: computed */
	const char *defdoc;   /* the default as documented when def is NULL */
	const char *help;
	/* Optional extra check of a value that parsed: NULL when fine, else
	 * what was expected (in buf). */
	const char *(*check)(const char *v, char *buf, size_t n);
	/* The `tunetop train` option this key sets (trainopt.h): its default
	 * is the option's, set by tt_train_defaults (def is NULL). */
	const char *opt;
} key;

#define OFF(f) offsetof(tt_study, f)

static const char *check_name(const char *v, char *buf, size_t n);
static const char *check_spec(const char *v, char *buf, size_t n);
static const char *check_sampler(const char *v, char *buf, size_t n);

static const key study_keys[] = {
	{ "name", "NAME", K_STRING, 0, TT_NAME_LEN, NULL, OFF(name), NULL,
	  "the file's basename without .ini",
	  "The study's name, shown by the explorer and stored in the database",
	  check_name, NULL },
	{ "db", "PATH", K_STRING, 0, sizeof ((tt_study *)0)->db, NULL, OFF(db),
	  NULL, "NAME.db beside the study file",
	  "The study database (SQLite); a relative path is taken relative to the "
	  "study file's directory", NULL, NULL },
	{ "seed", "N", K_U64, 0, 9.2e18, NULL, OFF(seed), "1", NULL,
	  "Seed of every trial's initialisation, split, order and augmentation; "
	  "a trial is reproducible from the seed and its id", NULL, NULL },
	{ "workers", "N", K_INT, 1, 1024, NULL, OFF(workers), "1", NULL,
	  "Trials trained at the same time", NULL, NULL },
	{ "budget", "E", K_DOUBLE, 0, 1e12, NULL, OFF(budget), "0", NULL,
	  "Compute budget in full-fidelity epochs; 0 runs until max_trials are done",
	  NULL, NULL },
	{ "checkpoint_every", "S", K_LONG, 1, 1e12, NULL, OFF(checkpoint_every),
	  "100", NULL,
	  "Training steps between checkpoints of a running trial: a crash or a "
	  "pause loses at most this many", NULL, NULL },
	{ "lock_timeout", "SECONDS", K_DOUBLE, 0, 1e6, NULL, OFF(lock_timeout),
	  "600", NULL,
	  "How long a write waits out another process that holds the database's "
	  "write lock (an outside sqlite3 transaction): it retries with growing "
	  "pauses, saying so on standard error, and the study fails (exit 1) only "
	  "after this long; one try waits at most a quarter of it, and at most 5 s; "
	  "0 gives up after the 5 s busy timeout", NULL, NULL },
	{ "keep_checkpoints", "WHICH", K_CHOICE, 0, 0, "needed|all",
	  OFF(keep_checkpoints), "needed", NULL,
	  "Which checkpoints the database keeps: needed keeps what resuming and "
	  "promotion use (a running or paused trial's latest, the previous rung's "
	  "of a trial that may be promoted in continue mode) and deletes the rest "
	  "as trials finish, with each rung's best; all keeps every (trial, rung) "
	  "checkpoint, as does a sampler that reads checkpoints", NULL, NULL },
	{ "feature_cache", "MIB", K_DOUBLE, 0, 1e9, NULL, OFF(feature_cache), "1024",
	  NULL,
	  "Memory in MiB for the frozen-prefix feature cache, which the study's "
	  "trials share: a frozen prefix that maps each example on its own "
	  "([train] frozen-bn = fixed, no augmentation) is computed once per "
	  "example and trainable depth, and every later epoch and trial runs only "
	  "the trainable stages; what does not fit is recomputed; 0 turns it off",
	  NULL, NULL },
};

static const key data_keys[] = {
	{ "source", "SRC", K_STRING, 0, sizeof ((tt_study *)0)->strs[1], NULL,
	  OFF(strs[1]), NULL, NULL,
	  "The data: fashion-mnist, synthetic, or a directory of IDX files (a "
	  "relative one "
	  "is taken relative to the study file's directory)", NULL, "data" },
	{ "train_size", "N", K_INT, 1, 1e7, NULL, OFF(train.train_size), NULL,
	  NULL, "Training examples carved from the training set", NULL,
	  "train-size" },
	{ "val_size", "N", K_INT, 1, 1e7, NULL, OFF(train.val_size), NULL, NULL,
	  "Held-out validation examples from the training set; the scheduler "
	  "ranks trials by them", NULL, "val-size" },
	{ "augment", "BOOL", K_BOOL, 0, 0, NULL, OFF(train.augment), NULL, NULL,
	  "Random crop (padding 2) and horizontal flip", NULL, "augment" },
};

static const key model_keys[] = {
	{ "spec", "SPEC", K_STRING, 0, sizeof ((tt_study *)0)->strs[0], NULL,
	  OFF(strs[0]), NULL, NULL,
	  "Model spec: mlp:W,W,..  cnn:C,C,..  resnet:B,B,..[:wW]", check_spec,
	  "model" },
};

static const key fidelity_keys[] = {
	{ "kind", "KIND", K_CHOICE, 0, 0, "frozen|epochs|joint|experiences", OFF(fid_kind),
	  "joint", NULL,
	  "What grows from rung to rung: the trainable stages, the epochs, both, or "
	  "(a continual study's, its default) the experiences seen, one rung per "
	  "experience continued from the last one's checkpoint.  joint is the default "
	  "because it measured best against Optuna's TPE + Hyperband at equal compute; "
	  "earlier builds defaulted to frozen, and a database one made with the default "
	  "resumes only with kind = frozen in the file",
	  NULL, NULL },
	{ "min_trainable", "Z", K_INT, 1, 64, NULL, OFF(min_trainable), "1", NULL,
	  "Trainable stages at the lowest rung, at most the model's stage count",
	  NULL, NULL },
	{ "eta", "N", K_INT, 2, 100, NULL, OFF(eta), "2", NULL,
	  "Growth factor between rungs; promotion keeps the top 1/eta", NULL, NULL },
	{ "epochs", "E", K_DOUBLE, 0.01, 100000, NULL, OFF(epochs), "1", NULL,
	  "Epochs at full fidelity (the top rung)", NULL, NULL },
};

static const key scheduler_keys[] = {
	{ "kind", "KIND", K_CHOICE, 0, 0, "random|sh|asha|hyperband|freeze-thaw",
	  OFF(sched_kind), "asha", NULL,
	  "Which (trial, rung) runs next; freeze-thaw trains one epoch at a time, the "
	  "sampler choosing which configuration continues from its checkpoint (one "
	  "rung per epoch up to [fidelity] epochs, budget counted in epochs)", NULL, NULL },
	{ "max_trials", "N", K_INT, 1, 1e6, NULL, OFF(max_trials), NULL,
	  "16, or 1000 with a [study] budget",
	  "Configurations sampled; with a budget the budget is what ends the study", NULL,
	  NULL },
	{ "mode", "MODE", K_CHOICE, 0, 0, "restart|continue", OFF(mode),
	  "restart", NULL,
	  "A promoted trial restarts from its initialisation, or continues from "
	  "its checkpoint", NULL, NULL },
	{ "sampler", "NAME", K_STRING, 0, TT_NAME_LEN, NULL, OFF(sampler_name),
	  "tpe", NULL,
	  "How configurations are drawn from [space]: one of the samplers built "
	  "in (random, halton, fms, dyhpo, fms-flat, tpe); see SCHEDULERS.  tpe "
	  "learns from the results; earlier builds defaulted to halton, and a "
	  "database one made with the default resumes only with sampler = halton in "
	  "the file", check_sampler, NULL },
	{ "gmn_width", "N", K_INT, 2, 1024, NULL, OFF(gmn_width), "32", NULL,
	  "fms: the graph metanetwork's width (16 on 2 cores)", NULL, NULL },
	{ "gmn_blocks", "N", K_INT, 1, 16, NULL, OFF(gmn_blocks), "4", NULL,
	  "fms: its message-passing blocks (2 on 2 cores)", NULL, NULL },
	{ "fit_steps_first", "N", K_INT, 1, 1e6, NULL, OFF(fit_steps_first), "1000", NULL,
	  "fms, dyhpo, fms-flat: Adam steps of each of the first 10 surrogate fits, "
	  "from scratch", NULL, NULL },
	{ "fit_steps", "N", K_INT, 1, 1e6, NULL, OFF(fit_steps), "50", NULL,
	  "fms, dyhpo, fms-flat: Adam steps of every later fit, warm-started (20 on "
	  "2 cores)", NULL, NULL },
	{ "init_configs", "N", K_INT, 1, 1e6, NULL, OFF(init_configs), "20", NULL,
	  "fms, dyhpo, fms-flat: configurations of the random initial design, one "
	  "epoch each", NULL, NULL },
};

typedef struct pctx pctx;

typedef struct section {
	const char *name;
	const key *keys;      /* NULL for [space] and [train]: space_line()
	                       * and train_line() parse them */
	int nkeys;
	const char *help;
} section;

#define N(a) ((int)(sizeof (a) / sizeof (a)[0]))
enum { SEC_STUDY, SEC_DATA, SEC_MODEL, SEC_SPACE, SEC_FIDELITY, SEC_SCHEDULER,
       SEC_TRAIN, NSEC };

static const section sections[NSEC] = {
	[SEC_STUDY] = { "study", study_keys, N(study_keys),
	                "The study as a whole." },
	[SEC_DATA] = { "data", data_keys, N(data_keys),
	               "The examples every trial trains and is validated on." },
	[SEC_MODEL] = { "model", model_keys, N(model_keys),
	                "The network every trial trains." },
	[SEC_SPACE] = { "space", NULL, 0,
	                "The hyperparameters searched; see SPACE." },
	[SEC_FIDELITY] = { "fidelity", fidelity_keys, N(fidelity_keys),
	                   "The ladder of rungs; see FIDELITY LADDER." },
	[SEC_SCHEDULER] = { "scheduler", scheduler_keys, N(scheduler_keys),
	                    "Which trial runs at which rung; see SCHEDULERS." },
	[SEC_TRAIN] = { "train", NULL, 0,
	                "The fixed training settings, by the names, ranges and "
	                "meanings of tunetop train's options (tunetop(1)). "
	                "A hyperparameter in [space] overrides its key here." },
};

typedef struct ptype {
	const char *name;
	int type;            /* enum tt_param_type, the index */
	const char *form;    /* for messages and the man page */
} ptype;

static const ptype ptypes[] = {
	{ "float", TT_P_FLOAT, "float LO HI" },
	{ "log-float", TT_P_LOGFLOAT, "log-float LO HI" },
	{ "int", TT_P_INT, "int LO HI" },
	{ "log-int", TT_P_LOGINT, "log-int LO HI" },
	{ "choice", TT_P_CHOICE, "choice A,B,C" },
};

/* ---- value parsing ------------------------------------------------------ */

/* What a value of k looks like, for "expected ..." (into buf). */
static const char *expect_of(const key *k, char *buf, size_t n)
{
	switch (k->type) {
	case K_INT:
	case K_LONG:
	case K_U64:
		snprintf(buf, n, "an integer in %.0f..%.0f", k->lo, k->hi);
		break;
	case K_FLOAT:
	case K_DOUBLE:
		snprintf(buf, n, "a number in [%g, %g]", k->lo, k->hi);
		break;
	case K_BOOL:
		snprintf(buf, n, "true or false (also yes/no, on/off, 1/0)");
		break;
	case K_CHOICE:
		snprintf(buf, n, "one of %s", k->choices);
		break;
	case K_STRING:
		snprintf(buf, n, "a non-empty text of at most %.0f bytes", k->hi - 1);
		break;
	default:
		snprintf(buf, n, "nothing");
	}
	return buf;
}

/*
 * Parse v as a value of k into dst (which may be NULL: check only).  NULL
 * on success, else what was expected (in buf).  *num (may be NULL) gets
 * the value of a number.
 */
static const char *parse_value(const key *k, const char *v, void *dst, double *num,
                               char *buf, size_t n)
{
	long long i = 0;
	double x = 0;
	int b = 0;
	switch (k->type) {
	case K_INT:
	case K_LONG:
	case K_U64:
		/* compared as integers: near 2^63 a double cannot tell
		 * 9200000000000000001 from the maximum 9.2e18 */
		if (tt_parse_ll(v, &i) || i < (long long)k->lo || i > (long long)k->hi)
			return expect_of(k, buf, n);
		if (dst && k->type == K_INT)
			*(int *)dst = (int)i;
		else if (dst && k->type == K_LONG)
			*(long *)dst = (long)i;
		else if (dst)
			*(uint64_t *)dst = (uint64_t)i;
		x = (double)i;
		break;
	case K_FLOAT:
	case K_DOUBLE:
		if (tt_parse_num(v, &x) || x < k->lo || x > k->hi)
			return expect_of(k, buf, n);
		if (dst && k->type == K_FLOAT)
			*(float *)dst = (float)x;
		else if (dst)
			*(double *)dst = x;
		break;
	case K_BOOL:
		if (tt_trainopt_bool(v, &b))
			return expect_of(k, buf, n);
		if (dst)
			*(int *)dst = b;
		x = b;
		break;
	case K_CHOICE:
		if ((b = tt_parse_choice(k->choices, v)) < 0)
			return expect_of(k, buf, n);
		if (dst)
			*(int *)dst = b;
		x = b;
		break;
	case K_STRING:
		if (!*v || strlen(v) >= (size_t)k->hi)
			return expect_of(k, buf, n);
		if (k->check) {
			const char *why = k->check(v, buf, n);
			if (why)
				return why;
		}
		if (dst)
			memcpy(dst, v, strlen(v) + 1);
		break;
	default:
		return expect_of(k, buf, n);
	}
	if (num)
		*num = x;
	return NULL;
}

/* A name also names the default database file: no '/'. */
static const char *check_name(const char *v, char *buf, size_t n)
{
	if (!strchr(v, '/'))
		return NULL;
	snprintf(buf, n, "a name without '/'");
	return buf;
}

static const char *check_spec(const char *v, char *buf, size_t n)
{
	tt_err e = {0};
	if (tt_model_spec_check(v, NULL, &e) == TT_OK)
		return NULL;
	snprintf(buf, n, "a model spec (%s)", e.msg);
	return buf;
}

static const char *check_sampler(const char *v, char *buf, size_t n)
{
	if (tt_sampler_find(v))
		return NULL;
	snprintf(buf, n, "one of the samplers built in: %s", tt_sampler_names());
	return buf;
}

/* ---- parse state and messages ------------------------------------------- */

#define MAXKEYS 64 /* keys of a section, the options table's rows included */

struct pctx {
	tt_study *s;
	tt_err *err;
	const char *path;
	int line;                       /* the current line, 1-based */
	int sec;                        /* current section, -1 before any */
	int sec_line[NSEC];             /* where each section began, 0: absent */
	int key_line[NSEC][MAXKEYS];    /* where each key was set, 0: default */
};

/* "FILE:LINE: [sec] key: " + the rest; a NULL sec or key leaves its part
 * out.  Always TT_EINPUT. */
__attribute__((format(printf, 5, 6)))
static int fail_at(pctx *c, int line, const char *sec, const char *key,
                   const char *fmt, ...)
{
	char head[700], rest[512];
	int n = snprintf(head, sizeof head, "%s:%d: ", c->path, line);
	if (sec)
		n += snprintf(head + n, sizeof head - (size_t)n, "[%s]%s", sec,
		              key ? " " : ": ");
	if (key)
		snprintf(head + n, sizeof head - (size_t)n, "%.64s: ", key);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rest, sizeof rest, fmt, ap);
	va_end(ap);
	return tt_err_set(c->err, TT_EINPUT, "%s%s", head, rest);
}

static const char *sec_name(const pctx *c)
{
	return c->sec >= 0 ? sections[c->sec].name : NULL;
}

/* The key names of a section, ", "-separated. */
static const char *key_list(const section *sc, char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = 0;
	for (int i = 0; i < sc->nkeys && at < n; i++)
		at += (size_t)snprintf(buf + at, n - at, "%s%s", at ? ", " : "",
		                       sc->keys[i].name);
	return buf;
}

/* A [train] key: a row of the options table allowed there. */
static const tt_trainopt *train_key(const char *name)
{
	const tt_trainopt *o = tt_trainopt_find(name);
	return o && (o->where & TT_TO_TRAIN) ? o : NULL;
}

/* The [space] types a [train] key may be searched with, P_BIT()s. */
static unsigned search_mask(const tt_trainopt *o)
{
	switch (o && (o->where & TT_TO_TRAIN) ? o->search : TT_TO_FIXED) {
	case TT_TO_REAL:
		return P_BIT(TT_P_FLOAT) | P_BIT(TT_P_LOGFLOAT) | P_BIT(TT_P_CHOICE);
	case TT_TO_INTEGER:
		return P_BIT(TT_P_INT) | P_BIT(TT_P_LOGINT) | P_BIT(TT_P_CHOICE);
	case TT_TO_CHOICES:
		return P_BIT(TT_P_CHOICE);
	default:
		return 0;
	}
}

/* The [train] keys (searchable: those [space] may search), ", "-separated. */
static const char *train_list(int searchable, char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = 0;
	for (int i = 0; i < tt_trainopt_count && at < n; i++) {
		const tt_trainopt *o = &tt_trainopts[i];
		if ((o->where & TT_TO_TRAIN) && (!searchable || search_mask(o)))
			at += (size_t)snprintf(buf + at, n - at, "%s%s", at ? ", " : "",
			                       o->name);
	}
	return buf;
}

/* The [space] forms allowed by a search mask, " | "-separated. */
static const char *form_list(unsigned search, char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = 0;
	for (int i = 0; i < N(ptypes) && at < n; i++)
		if (search & P_BIT(ptypes[i].type))
			at += (size_t)snprintf(buf + at, n - at, "%s%s", at ? " | " : "",
			                       ptypes[i].form);
	return buf;
}

static const key *find_key(const section *sc, const char *name)
{
	for (int i = 0; i < sc->nkeys; i++)
		if (strcmp(sc->keys[i].name, name) == 0)
			return &sc->keys[i];
	return NULL;
}


/* ---- defaults ----------------------------------------------------------- */

static void point_strings(tt_study *s)
{
	s->train.model = s->strs[0];
	s->train.data = s->strs[1];
	s->train.backend = s->strs[2];
	s->train.init = s->strs[3][0] ? s->init_file : NULL;
}

/* Zero s, then the defaults: tt_train_defaults (the options table's, for
 * [train] and the keys that set an option), then every other table
 * default through the parser. */
static void study_init(tt_study *s)
{
	char buf[256];
	memset(s, 0, sizeof *s);
	tt_train_defaults(&s->train);
	snprintf(s->strs[0], sizeof s->strs[0], "%s", s->train.model);
	snprintf(s->strs[1], sizeof s->strs[1], "%s", s->train.data);
	snprintf(s->strs[2], sizeof s->strs[2], "%s", s->train.backend);
	for (int i = 0; i < NSEC; i++)
		for (int j = 0; j < sections[i].nkeys; j++) {
			const key *k = &sections[i].keys[j];
			if (!k->def)
				continue;
			const char *why = parse_value(k, k->def, (char *)s + k->off, NULL,
			                              buf, sizeof buf);
			TT_ASSERT(why == NULL);
		}
	s->max_trials = 16; /* 1000 with a budget, once the file is read */
	point_strings(s);
}

/* ---- lines -------------------------------------------------------------- */

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Trim blanks at both ends, in place. */
static char *trim(char *p)
{
	while (is_blank(*p))
		p++;
	size_t n = strlen(p);
	while (n && is_blank(p[n - 1]))
		p[--n] = 0;
	return p;
}

/* Cut an inline comment: '#' or ';' at the start or after a blank. */
static void cut_comment(char *p)
{
	for (char *q = p; *q; q++)
		if ((*q == '#' || *q == ';') && (q == p || is_blank(q[-1]))) {
			*q = 0;
			return;
		}
}

/* The value part of "key = value": unquote or cut the comment; trim. */
static int take_value(pctx *c, const char *key, char *v, char **out)
{
	v = trim(v);
	if (*v == '"' || *v == '\'') {
		char *close = strchr(v + 1, *v);
		if (!close)
			return fail_at(c, c->line, sec_name(c), key,
			               "found '%.80s', expected a closing %c", v, *v);
		char *after = close + 1;
		cut_comment(after);
		if (*trim(after))
			return fail_at(c, c->line, sec_name(c), key,
			               "found '%.80s', expected nothing after the closing "
			               "quote but a comment", v);
		*close = 0;
		*out = v + 1;
		return TT_OK;
	}
	cut_comment(v);
	*out = trim(v);
	return TT_OK;
}

/* key = value in a section with a key table. */
static int keyed_line(pctx *c, const char *name, const char *v)
{
	const section *sc = &sections[c->sec];
	const key *k = find_key(sc, name);
	char buf[512], list[512];
	if (!k)
		return fail_at(c, c->line, sc->name, name,
		               "found unknown key '%.64s', expected one of: %s", name,
		               key_list(sc, list, sizeof list));
	int ki = (int)(k - sc->keys);
	TT_ASSERT(ki < MAXKEYS);
	if (c->key_line[c->sec][ki])
		return fail_at(c, c->line, sc->name, name,
		               "found a second '%s' (the first is on line %d), expected "
		               "each key once", name, c->key_line[c->sec][ki]);
	const char *why = parse_value(k, v, (char *)c->s + k->off, NULL, buf,
	                              sizeof buf);
	if (why)
		return fail_at(c, c->line, sc->name, name, "found '%.80s', expected %s",
		               v, why);
	c->key_line[c->sec][ki] = c->line;
	return TT_OK;
}

/* key = value in [train]: a row of the options table. */
static int train_line(pctx *c, const char *name, const char *v)
{
	const tt_trainopt *o = tt_trainopt_find(name);
	char buf[512], list[1024];
	if (!o)
		return fail_at(c, c->line, "train", name,
		               "found unknown key '%.64s', expected one of: %s", name,
		               train_list(0, list, sizeof list));
	if (!(o->where & TT_TO_TRAIN))
		return fail_at(c, c->line, "train", name,
		               "found '%s = %.64s', expected it as %s (%s)", name, v,
		               o->home, o->home_why);
	int ki = (int)(o - tt_trainopts);
	TT_ASSERT(ki < MAXKEYS);
	if (c->key_line[SEC_TRAIN][ki])
		return fail_at(c, c->line, "train", name,
		               "found a second '%s' (the first is on line %d), expected "
		               "each key once", name, c->key_line[SEC_TRAIN][ki]);
	/* the texts a [train] key holds, the backend's name and the init
	 * checkpoint, are kept in strs[2] and strs[3] (point_strings); init is
	 * resolved and checked in finish */
	int is_init = o->off == offsetof(tt_train_config, init);
	TT_ASSERT(o->type != TT_TO_STRING || is_init ||
	          o->off == offsetof(tt_train_config, backend));
	const char *why = o->type == TT_TO_STRING && strlen(v) >= sizeof c->s->strs[2]
	                  ? "a shorter text"
	                  : tt_trainopt_parse(o, v, &c->s->train, NULL, buf, sizeof buf);
	if (why)
		return fail_at(c, c->line, "train", name, "found '%.80s', expected %s",
		               v, why);
	if (o->type == TT_TO_STRING) {
		memcpy(c->s->strs[is_init ? 3 : 2], v, strlen(v) + 1);
		point_strings(c->s);
	}
	c->key_line[SEC_TRAIN][ki] = c->line;
	return TT_OK;
}

/* Split off the next blank-separated token of *p (modified in place). */
static char *next_token(char **p)
{
	char *t = *p;
	while (is_blank(*t))
		t++;
	char *e = t;
	while (*e && !is_blank(*e))
		e++;
	if (*e)
		*e++ = 0;
	*p = e;
	return t;
}

/* The choices of "A,B,C" for key k into spec p. */
static int space_choices(pctx *c, const tt_trainopt *k, char *list, tt_param_spec *p)
{
	const char *name = p->name;
	char buf[512];
	p->nchoices = 0;
	for (char *item = list;;) {
		char *comma = strchr(item, ',');
		if (comma)
			*comma = 0;
		char *v = trim(item);
		if (!*v)
			return fail_at(c, c->line, "space", name,
			               "found an empty choice, expected choice A,B,C with "
			               "no empty item");
		if (p->nchoices == TT_CHOICE_MAX)
			return fail_at(c, c->line, "space", name,
			               "found more than %d choices, expected at most %d",
			               TT_CHOICE_MAX, TT_CHOICE_MAX);
		if (strlen(v) >= TT_NAME_LEN)
			return fail_at(c, c->line, "space", name,
			               "found '%.80s', expected a choice of at most %d bytes",
			               v, TT_NAME_LEN - 1);
		double x = 0;
		const char *why = tt_trainopt_parse(k, v, NULL, &x, buf, sizeof buf);
		if (why)
			return fail_at(c, c->line, "space", name,
			               "found '%s', expected %s", v, why);
		for (int j = 0; j < p->nchoices; j++) {
			double y = 0;
			tt_trainopt_parse(k, p->choices[j], NULL, &y, buf, sizeof buf);
			if (strcmp(p->choices[j], v) == 0)
				return fail_at(c, c->line, "space", name,
				               "found '%s' twice, expected distinct choices", v);
			/* another spelling of the same value: 1 and 1.0, on and
			 * yes (booleans and named choices parse to a number too) */
			if (k->type != TT_TO_STRING && x == y)
				return fail_at(c, c->line, "space", name,
				               "found '%s' twice (the same value as '%s'), "
				               "expected distinct choices", v, p->choices[j]);
		}
		memcpy(p->choices[p->nchoices++], v, strlen(v) + 1);
		if (!comma)
			break;
		item = comma + 1;
	}
	if (p->nchoices < 2)
		return fail_at(c, c->line, "space", name,
		               "found one choice, expected at least 2 (a fixed value "
		               "belongs in [train])");
	return TT_OK;
}

/* LO HI of a numeric [space] type for key k into spec p. */
static int space_bounds(pctx *c, const tt_trainopt *k, char *args, tt_param_spec *p)
{
	const char *name = p->name;
	int is_int = p->type == TT_P_INT || p->type == TT_P_LOGINT;
	int is_log = p->type == TT_P_LOGFLOAT || p->type == TT_P_LOGINT;
	const char *form = ptypes[p->type].form;
	char seen[TT_STUDY_LINE_MAX + 1];
	snprintf(seen, sizeof seen, "%s", args); /* tokens cut args in place */
	char *rest = args;
	char *lo_s = next_token(&rest), *hi_s = next_token(&rest);
	if (!*lo_s || !*hi_s || *trim(rest))
		return fail_at(c, c->line, "space", name,
		               "found '%.80s', expected %s: two bounds", seen, form);
	double b[2];
	const char *s[2] = { lo_s, hi_s };
	for (int i = 0; i < 2; i++) {
		long long ll;
		if (is_int ? tt_parse_ll(s[i], &ll) : tt_parse_num(s[i], &b[i]))
			return fail_at(c, c->line, "space", name,
			               "found '%s', expected %s", s[i],
			               is_int ? "an integer" : "a number");
		if (is_int)
			b[i] = (double)ll;
	}
	if (!(b[0] < b[1]))
		return fail_at(c, c->line, "space", name,
		               "found '%s %s', expected LO < HI", lo_s, hi_s);
	if (is_log && !(b[0] > 0))
		return fail_at(c, c->line, "space", name,
		               "found '%s', expected LO > 0 for %s", lo_s,
		               ptypes[p->type].name);
	if (b[0] < k->lo || b[1] > k->hi)
		return fail_at(c, c->line, "space", name,
		               "found '%s %s', expected bounds within %s's range, "
		               "[%g, %g]", lo_s, hi_s, name, k->lo, k->hi);
	p->lo = b[0];
	p->hi = b[1];
	return TT_OK;
}

/* NAME = TYPE ARGS in [space]. */
static int space_line(pctx *c, const char *name, char *v)
{
	tt_study *s = c->s;
	const tt_trainopt *k = tt_trainopt_find(name);
	unsigned search = search_mask(k);
	char list[1024], forms[256];
	if (!search) {
		char where[160] = "";
		if (k && !(k->where & TT_TO_TRAIN))
			snprintf(where, sizeof where, "; %s is set by %s", name, k->home);
		else if (k)
			snprintf(where, sizeof where, "; %s is fixed, set it in [train]",
			         name);
		return fail_at(c, c->line, "space", name,
		               "found '%.64s', expected a searchable [train] option: "
		               "%s%s", name, train_list(1, list, sizeof list), where);
	}
	for (int i = 0; i < s->nspace; i++)
		if (strcmp(s->space[i].name, name) == 0)
			return fail_at(c, c->line, "space", name,
			               "found a second '%s' (the first is on line %d), "
			               "expected each hyperparameter once", name,
			               s->space[i].line);
	TT_ASSERT(s->nspace < TT_SPACE_MAX); /* fewer searchable keys than that */
	tt_param_spec *p = &s->space[s->nspace];
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	p->line = c->line;
	char *rest = v;
	const char *tname = next_token(&rest);
	int t = -1;
	for (int i = 0; i < N(ptypes); i++)
		if (strcmp(ptypes[i].name, tname) == 0)
			t = ptypes[i].type;
	if (t < 0 || !(search & P_BIT(t)))
		return fail_at(c, c->line, "space", name,
		               "found '%.80s', expected %s", tname,
		               form_list(search, forms, sizeof forms));
	p->type = t;
	rest = trim(rest);
	int rc = t == TT_P_CHOICE ? space_choices(c, k, rest, p)
	                          : space_bounds(c, k, rest, p);
	if (rc)
		return rc;
	s->nspace++;
	return TT_OK;
}

/* [name] */
static int section_line(pctx *c, char *p)
{
	char *close = strchr(p, ']');
	if (close) {
		char *after = close + 1;
		cut_comment(after);
		if (*trim(after))
			close = NULL;
	}
	if (!close)
		return fail_at(c, c->line, NULL, NULL,
		               "found '%.80s', expected a section header [NAME]", p);
	*close = 0;
	char *name = trim(p + 1);
	for (int i = 0; i < NSEC; i++)
		if (strcmp(sections[i].name, name) == 0) {
			if (c->sec_line[i])
				return fail_at(c, c->line, name, NULL,
				               "found a second [%s] (the first is on line %d), "
				               "expected each section once", name,
				               c->sec_line[i]);
			c->sec = i;
			c->sec_line[i] = c->line;
			return TT_OK;
		}
	char list[256];
	size_t at = 0;
	for (int i = 0; i < NSEC; i++)
		at += (size_t)snprintf(list + at, sizeof list - at, "%s[%s]",
		                       i ? ", " : "", sections[i].name);
	return fail_at(c, c->line, NULL, NULL,
	               "found section '[%.64s]', expected one of: %s", name, list);
}

static int parse_line(pctx *c, char *line)
{
	for (const unsigned char *q = (const unsigned char *)line; *q; q++)
		if ((*q < 0x20 && *q != '\t') || *q == 0x7f)
			return fail_at(c, c->line, sec_name(c), NULL,
			               "found a control character (0x%02x), expected text",
			               *q);
	char *p = trim(line);
	if (!*p || *p == '#' || *p == ';')
		return TT_OK;
	if (*p == '[')
		return section_line(c, p);
	char *eq = strchr(p, '=');
	if (!eq || eq == p)
		return fail_at(c, c->line, sec_name(c), NULL,
		               "found '%.80s', expected KEY = VALUE", p);
	*eq = 0;
	char *name = trim(p), *v = NULL;
	if (strcspn(name, " \t") != strlen(name))
		return fail_at(c, c->line, sec_name(c), NULL,
		               "found key '%.64s', expected a key without blanks", name);
	if (c->sec < 0)
		return fail_at(c, c->line, NULL, name,
		               "found '%s' before any section, expected a [section] "
		               "header first", name);
	int rc = take_value(c, name, eq + 1, &v);
	if (rc)
		return rc;
	return c->sec == SEC_SPACE ? space_line(c, name, v)
	       : c->sec == SEC_TRAIN ? train_line(c, name, v)
	                             : keyed_line(c, name, v);
}

/* ---- after the last line ------------------------------------------------ */

/* The line a key was set on, or 0. */
static int line_of(const pctx *c, int sec, const char *name)
{
	const key *k = find_key(&sections[sec], name);
	TT_ASSERT(k);
	return c->key_line[sec][k - sections[sec].keys];
}

/* out = the study file's directory joined with rel (rel as is when it is
 * absolute or the file has no directory); -1 when it does not fit. */
static int beside(const char *path, const char *rel, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	int len;
	if (rel[0] == '/' || !slash)
		len = snprintf(out, n, "%s", rel);
	else
		len = snprintf(out, n, "%.*s/%s", (int)(slash - path + 1) - 1, path, rel);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

static int finish(pctx *c, int last)
{
	tt_study *s = c->s;
	char tmp[1024];

	if (s->nspace == 0)
		return fail_at(c, c->sec_line[SEC_SPACE] ? c->sec_line[SEC_SPACE] : last,
		               "space", NULL,
		               "found no hyperparameters, expected at least one line "
		               "NAME = TYPE ARGS");

	if (!line_of(c, SEC_STUDY, "name")) {
		const char *base = strrchr(s->path, '/');
		base = base ? base + 1 : s->path;
		size_t n = strlen(base);
		if (n >= 4 && strcmp(base + n - 4, ".ini") == 0)
			n -= 4;
		if (n > TT_NAME_LEN - 1)
			n = TT_NAME_LEN - 1;
		memcpy(s->name, base, n);
		s->name[n] = 0;
		for (char *q = s->name; *q; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				*q = '?';
		if (!s->name[0])
			snprintf(s->name, sizeof s->name, "study");
	}

	int dbline = line_of(c, SEC_STUDY, "db");
	if (!dbline)
		snprintf(tmp, sizeof tmp, "%s.db", s->name);
	else
		snprintf(tmp, sizeof tmp, "%s", s->db);
	if (beside(s->path, tmp, s->db, sizeof s->db))
		return fail_at(c, dbline ? dbline : last, "study", "db",
		               "found '%.80s', expected a path of at most %zu bytes "
		               "beside the study file", tmp, sizeof s->db - 1);

	int srcline = line_of(c, SEC_DATA, "source");
	const char *src = s->strs[1];
	if (strcmp(src, "fashion-mnist") && strcmp(src, "synthetic")) {
		struct stat st;
		snprintf(tmp, sizeof tmp, "%s", src);
		if (beside(s->path, tmp, s->strs[1], sizeof s->strs[1]))
			return fail_at(c, srcline, "data", "source",
			               "found '%.80s', expected a path of at most %zu bytes",
			               tmp, sizeof s->strs[1] - 1);
		int bad = stat(s->strs[1], &st);
		if (bad || !S_ISDIR(st.st_mode))
			return fail_at(c, srcline, "data", "source",
			               "found '%.80s', expected fashion-mnist, synthetic or "
			               "a directory ('%.200s': %s)", tmp, s->strs[1],
			               bad ? strerror(errno) : "not a directory");
	} else if (strcmp(src, "fashion-mnist") == 0 &&
	           (long)s->train.train_size + s->train.val_size > FASHION_TRAIN_N) {
		int lt = line_of(c, SEC_DATA, "train_size"), lv = line_of(c, SEC_DATA, "val_size");
		int at = lt > lv ? lt : lv;
		return fail_at(c, at ? at : last, "data", lt > lv ? "train_size" : "val_size",
		               "found train_size %d + val_size %d, expected at most %d, "
		               "the images of Fashion-MNIST's training set",
		               s->train.train_size, s->train.val_size, FASHION_TRAIN_N);
	}

	/* init checkpoints: beside the study file, of the study's model */
	tt_err e = {0};
	int initline = c->key_line[SEC_TRAIN][tt_trainopt_find("init") - tt_trainopts];
	if (s->strs[3][0]) {
		snprintf(tmp, sizeof tmp, "%s", s->strs[3]);
		if (beside(s->path, tmp, s->init_file, sizeof s->init_file))
			return fail_at(c, initline, "train", "init",
			               "found '%.80s', expected a path of at most %zu bytes", tmp,
			               sizeof s->init_file - 1);
		if (tt_train_init_check(s->strs[0], s->init_file, &e))
			return fail_at(c, initline, "train", "init",
			               "found '%.80s', expected a checkpoint of [model] spec "
			               "(%s)", tmp, e.msg);
		point_strings(s);
	}
	for (int i = 0; i < s->nspace; i++) {
		const tt_param_spec *p = &s->space[i];
		if (strcmp(p->name, "init"))
			continue;
		for (int j = 0; j < p->nchoices; j++) {
			if (beside(s->path, p->choices[j], s->inits[j], sizeof s->inits[j]))
				return fail_at(c, p->line, "space", "init",
				               "found '%s', expected a path of at most %zu bytes",
				               p->choices[j], sizeof s->inits[j] - 1);
			if (tt_train_init_check(s->strs[0], s->inits[j], &e))
				return fail_at(c, p->line, "space", "init",
				               "found '%s', expected a checkpoint of [model] spec "
				               "(%s)", p->choices[j], e.msg);
		}
	}

	int rc = tt_model_spec_check(s->strs[0], &s->stages, &e);
	TT_ASSERT(rc == TT_OK); /* checked as it was read */
	if (s->min_trainable > s->stages) {
		int ml = line_of(c, SEC_FIDELITY, "min_trainable");
		return fail_at(c, ml ? ml : line_of(c, SEC_MODEL, "spec"), "fidelity",
		               "min_trainable",
		               "found '%d', expected at most %d, the stage count of "
		               "model '%.80s'", s->min_trainable, s->stages, s->strs[0]);
	}

	/* continual: the rungs are experiences, the whole sequence over
	 * [fidelity] epochs */
	int fkl = line_of(c, SEC_FIDELITY, "kind");
	int T = s->train.continual.tasks;
	if (T > 0 && !fkl)
		s->fid_kind = TT_FID_EXPERIENCES;
	if (T > 0 && s->fid_kind != TT_FID_EXPERIENCES)
		return fail_at(c, fkl, "fidelity", "kind",
		               "found '%s', expected experiences in a continual study "
		               "([train] continual-tasks = %d)",
		               s->fid_kind == TT_FID_FROZEN ? "frozen" :
		               s->fid_kind == TT_FID_EPOCHS ? "epochs" : "joint", T);
	if (s->fid_kind == TT_FID_EXPERIENCES && T == 0)
		return fail_at(c, fkl, "fidelity", "kind",
		               "found 'experiences', expected [train] continual-tasks "
		               "(the experiences) above 0");
	if (T > TT_RUNG_MAX) {
		int tl = c->key_line[SEC_TRAIN][tt_trainopt_find("continual-tasks") - tt_trainopts];
		return fail_at(c, tl ? tl : last, "train", "continual-tasks",
		               "found '%d', expected at most %d in a study (one rung per "
		               "experience)", T, TT_RUNG_MAX);
	}
	if (T > 0 && s->sched_kind == TT_SCH_FREEZE_THAW) {
		int kl = line_of(c, SEC_SCHEDULER, "kind");
		return fail_at(c, kl, "scheduler", "kind",
		               "found 'freeze-thaw', expected random, sh, asha or hyperband "
		               "in a continual study (its rungs are experiences)");
	}

	/* a budget ends the study; the trial count is only a backstop */
	if (!line_of(c, SEC_SCHEDULER, "max_trials"))
		s->max_trials = s->budget > 0 ? 1000 : 16;
	s->sampler = tt_sampler_index(s->sampler_name);
	TT_ASSERT(s->sampler >= 0); /* checked as it was read */
	if (s->sched_kind == TT_SCH_FREEZE_THAW) {
		int kl = line_of(c, SEC_SCHEDULER, "kind");
		if (ceil(s->epochs) > 16) {
			int el = line_of(c, SEC_FIDELITY, "epochs");
			return fail_at(c, el ? el : kl, "fidelity", "epochs",
			               "found '%g', expected at most 16 with kind = freeze-thaw "
			               "(one rung per epoch)", s->epochs);
		}
		if (s->workers != 1) {
			int wl = line_of(c, SEC_STUDY, "workers");
			return fail_at(c, wl ? wl : kl, "study", "workers",
			               "found '%d', expected 1 with kind = freeze-thaw (every "
			               "decision waits for the epoch before it)", s->workers);
		}
	} else if (tt_sampler_nth(s->sampler)->freeze_thaw) {
		int sl = line_of(c, SEC_SCHEDULER, "sampler");
		return fail_at(c, sl ? sl : last, "scheduler", "sampler",
		               "found '%s', which decides one epoch at a time: expected "
		               "kind = freeze-thaw", s->sampler_name);
	}
	s->lr_set = c->key_line[SEC_TRAIN][tt_trainopt_find("lr") - tt_trainopts] != 0;
	if (!s->lr_set)
		tt_trainopt_lr_follow(&s->train);
	s->train.seed = s->seed;
	s->train.trainable = 0;
	s->train.epochs = (int)ceil(s->epochs);
	s->train.steps = 0;
	point_strings(s);
	return TT_OK;
}

int tt_study_parse(const char *path, const char *text, tt_study *s, tt_err *err)
{
	pctx c = { .s = s, .err = err, .path = path, .sec = -1 };
	char buf[TT_STUDY_LINE_MAX + 1];
	int rc;
	study_init(s);
	if (strlen(path) >= sizeof s->path) {
		rc = tt_err_set(err, TT_EINPUT, "%.200s...: found a path of %zu bytes, "
		                "expected at most %zu", path, strlen(path),
		                sizeof s->path - 1);
		goto fail;
	}
	memcpy(s->path, path, strlen(path) + 1);
	if (!(s->text = strdup(text))) {
		rc = tt_err_set(err, TT_ERUNTIME, "%s: out of memory", path);
		goto fail;
	}
	const char *p = text;
	if (strncmp(p, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte-order mark */
		p += 3;
	while (*p) {
		c.line++;
		size_t n = strcspn(p, "\n");
		const char *next = p + n + (p[n] == '\n');
		if (n && p[n - 1] == '\r')
			n--;
		if (n > TT_STUDY_LINE_MAX) {
			rc = fail_at(&c, c.line, sec_name(&c), NULL,
			             "found a line of %zu bytes, expected at most %d", n,
			             TT_STUDY_LINE_MAX);
			goto fail;
		}
		memcpy(buf, p, n);
		buf[n] = 0;
		if ((rc = parse_line(&c, buf)))
			goto fail;
		p = next;
	}
	if ((rc = finish(&c, c.line > 0 ? c.line : 1)))
		goto fail;
	return TT_OK;
fail:
	tt_study_free(s);
	return rc;
}

int tt_study_load(const char *path, tt_study *s, tt_err *err)
{
	memset(s, 0, sizeof *s);
	FILE *f = fopen(path, "rb");
	if (!f)
		return tt_err_set(err, TT_EINPUT, "%s: cannot open the study file: %s",
		                  path, strerror(errno));
	/* fopen takes a directory; reading it then fails with no word why */
	struct stat sb;
	if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fclose(f);
		return tt_err_set(err, TT_EINPUT, "%s: is a directory, expected a study "
		                  "file (see tunetop-study(5))", path);
	}
	char *text = malloc(TT_STUDY_FILE_MAX + 2);
	if (!text) {
		fclose(f);
		return tt_err_set(err, TT_ERUNTIME, "%s: out of memory", path);
	}
	errno = 0;
	size_t n = fread(text, 1, TT_STUDY_FILE_MAX + 1, f);
	int bad = ferror(f), e = errno;
	fclose(f);
	int rc;
	if (bad)
		rc = tt_err_set(err, TT_EINPUT, "%s: cannot read the study file: %s", path,
		                strerror(e ? e : EIO));
	else if (n > TT_STUDY_FILE_MAX)
		rc = tt_err_set(err, TT_EINPUT, "%s: found a file of more than %d bytes, "
		                "expected at most %d", path, TT_STUDY_FILE_MAX,
		                TT_STUDY_FILE_MAX);
	else if (memchr(text, 0, n)) {
		int line = 1;
		for (const char *q = text; *q; q++)
			line += *q == '\n';
		rc = tt_err_set(err, TT_EINPUT, "%s:%d: found a NUL byte, expected text",
		                path, line);
	} else {
		text[n] = 0;
		rc = tt_study_parse(path, text, s, err);
	}
	free(text);
	return rc;
}

void tt_study_free(tt_study *s)
{
	free(s->text);
	s->text = NULL;
}

/* ---- configurations ----------------------------------------------------- */

/*
 * Check values[i] for space[i] and normalise it: a choice's index, an
 * int type rounded, a float clamped from within the slack.  NULL when it
 * fits, else what was expected (in buf).
 */
static const char *check_param(const tt_param_spec *p, double v, double *out,
                               char *buf, size_t n)
{
	if (!isfinite(v)) {
		snprintf(buf, n, "a finite value");
		return buf;
	}
	if (p->type == TT_P_CHOICE) {
		if (v != floor(v) || v < 0 || v >= p->nchoices) {
			snprintf(buf, n, "a choice index in 0..%d", p->nchoices - 1);
			return buf;
		}
		*out = v;
		return NULL;
	}
	double slack = 0;
	if (p->type == TT_P_INT || p->type == TT_P_LOGINT)
		v = nearbyint(v);
	else
		slack = 1e-6 * fmax(fabs(p->lo), fabs(p->hi));
	if (v < p->lo - slack || v > p->hi + slack) {
		snprintf(buf, n, "a value in [%g, %g]", p->lo, p->hi);
		return buf;
	}
	*out = v < p->lo ? p->lo : v > p->hi ? p->hi : v;
	return NULL;
}

int tt_study_apply(const tt_study *s, const double *values, tt_train_config *out,
                   tt_err *err)
{
	char buf[256];
	int lr_given = s->lr_set;
	*out = s->train;
	for (int i = 0; i < s->nspace; i++) {
		const tt_param_spec *p = &s->space[i];
		const tt_trainopt *k = train_key(p->name);
		int is_init = k && k->off == offsetof(tt_train_config, init);
		TT_ASSERT(k && search_mask(k) && (k->type != TT_TO_STRING || is_init));
		void *dst = (char *)out + k->off;
		double v;
		const char *why = check_param(p, values[i], &v, buf, sizeof buf);
		if (why)
			return tt_err_set(err, TT_EINPUT,
			                  "%s:%d: [space] %s: found '%g', expected %s",
			                  s->path, p->line, p->name, values[i], why);
		if (is_init) { /* the choice's file, resolved in finish */
			out->init = s->inits[(int)v];
			why = NULL;
		} else if (p->type == TT_P_CHOICE) {
			why = tt_trainopt_parse(k, p->choices[(int)v], out, NULL, buf,
			                        sizeof buf);
		} else if (tt_trainopt_is_integer(k)) {
			char num[64];
			snprintf(num, sizeof num, "%.0f", v);
			why = tt_trainopt_parse(k, num, out, NULL, buf, sizeof buf);
		} else if (k->type == TT_TO_DOUBLE) {
			*(double *)dst = v;
		} else {
			TT_ASSERT(k->type == TT_TO_FLOAT);
			*(float *)dst = (float)v; /* within k's range: the bounds are */
		}
		if (why)
			return tt_err_set(err, TT_EINPUT,
			                  "%s:%d: [space] %s: found '%g', expected %s",
			                  s->path, p->line, p->name, values[i], why);
		lr_given |= strcmp(p->name, "lr") == 0;
	}
	if (!lr_given)
		tt_trainopt_lr_follow(out);
	return TT_OK;
}

/*
 * v with the fewest significant digits that read back as the same double,
 * or, for a float option, as the same float (the value the trial trains
 * with either way).
 */
static const char *exact_num(double v, int as_float, char *buf, size_t n)
{
	for (int d = 1; d <= 17; d++) {
		snprintf(buf, n, "%.*g", d, v);
		double back = strtod(buf, NULL);
		if (as_float ? (float)back == (float)v : back == v)
			break;
	}
	return buf;
}

/* snprintf that keeps counting past the end of buf. */
__attribute__((format(printf, 4, 5)))
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(*at < len ? buf + *at : NULL, *at < len ? len - *at : 0,
	                  fmt, ap);
	va_end(ap);
	if (n > 0)
		*at += (size_t)n;
}

size_t tt_study_params_json(const tt_study *s, const double *values, char *buf,
                            size_t len)
{
	size_t at = 0;
	char tmp[256];
	if (len)
		buf[0] = 0;
	put(buf, len, &at, "{");
	for (int i = 0; i < s->nspace; i++) {
		const tt_param_spec *p = &s->space[i];
		const tt_trainopt *k = train_key(p->name);
		double v;
		put(buf, len, &at, "%s\"%s\":", i ? "," : "", p->name);
		if (check_param(p, values[i], &v, tmp, sizeof tmp)) {
			put(buf, len, &at, "null");
			continue;
		}
		const char *word = p->type == TT_P_CHOICE ? p->choices[(int)v] : NULL;
		if (word && (tt_trainopt_is_number(k) || k->type == TT_TO_FLAG))
			tt_trainopt_parse(k, word, NULL, &v, tmp, sizeof tmp);
		if (word && k->type == TT_TO_FLAG) {
			put(buf, len, &at, "%s", v ? "true" : "false");
		} else if (word && !tt_trainopt_is_number(k)) {
			put(buf, len, &at, "\"%s\"", word); /* an option's own choice word */
		} else if (tt_trainopt_is_integer(k)) {
			put(buf, len, &at, "%.0f", v);
		} else {
			put(buf, len, &at, "%s", exact_num(v, k->type == K_FLOAT, tmp, sizeof tmp));
		}
	}
	put(buf, len, &at, "}");
	return at;
}

/* ---- reading a configuration back --------------------------------------- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/*
 * The value of one [space] entry from a JSON token: tok is a string's
 * contents when is_str, else a bare token (number, true, false, null).
 * NULL when fine, else what was expected (in buf).
 */
static const char *param_from_json(const tt_param_spec *p, const char *tok, int is_str,
                                   double *out, char *buf, size_t n)
{
	const tt_trainopt *k = train_key(p->name);
	double x = 0;
	if (!is_str && strcmp(tok, "null") == 0) {
		*out = NAN; /* stored for a value apply() rejected: apply rejects it again */
		return NULL;
	}
	if (p->type != TT_P_CHOICE) {
		if (is_str || tt_parse_num(tok, &x)) {
			snprintf(buf, n, "a number");
			return buf;
		}
		*out = x;
		return NULL;
	}
	int b = -1, have_num = !is_str && tt_trainopt_is_number(k) && tt_parse_num(tok, &x) == 0;
	if (!is_str && k->type == TT_TO_FLAG && tt_trainopt_bool(tok, &b))
		b = -1;
	int found = -1, near = -1;
	for (int c = 0; c < p->nchoices && found < 0; c++) {
		const char *w = p->choices[c];
		double y = 0;
		int cb = -1;
		if (is_str && strcmp(w, tok) == 0)
			found = c;
		else if (b >= 0 && tt_trainopt_bool(w, &cb) == 0 && cb == b)
			found = c;
		else if (have_num && !tt_trainopt_parse(k, w, NULL, &y, buf, n)) {
			/* the same value as the option holds it (a float option: the
			 * same float); %.6g-rounded numbers of older databases match
			 * the nearest choice within that rounding */
			if (k->type == TT_TO_FLOAT ? (float)x == (float)y : x == y)
				found = c;
			else if (near < 0 && fabs(x - y) <= 5e-6 * fabs(y))
				near = c;
		}
	}
	if (found < 0)
		found = near;
	if (found < 0) {
		snprintf(buf, n, "one of the choices of [space] %s", p->name);
		return buf;
	}
	*out = found;
	return NULL;
}

int tt_study_params_parse(const tt_study *s, const char *json, double *values,
                          tt_err *err)
{
	int seen[TT_SPACE_MAX] = {0};
	char tok[TT_NAME_LEN + 64], buf[256];
	const char *p = skip_ws(json), *why = NULL;
	if (*p != '{')
		return tt_err_set(err, TT_EINPUT, "params '%.80s': expected a JSON object",
		                  json);
	p = skip_ws(p + 1);
	while (*p != '}') {
		const char *k = p + 1, *ke = *p == '"' ? strchr(k, '"') : NULL;
		if (!ke || memchr(k, '\\', (size_t)(ke - k)))
			return tt_err_set(err, TT_EINPUT, "params '%.80s': expected a quoted "
			                  "key at '%.20s'", json, p);
		int i = 0;
		while (i < s->nspace && (strlen(s->space[i].name) != (size_t)(ke - k) ||
		                         strncmp(s->space[i].name, k, (size_t)(ke - k))))
			i++;
		if (i == s->nspace)
			return tt_err_set(err, TT_EINPUT, "params '%.80s': found key '%.*s', "
			                  "expected only [space] entries", json,
			                  (int)(ke - k < 64 ? ke - k : 64), k);
		if (seen[i]++)
			return tt_err_set(err, TT_EINPUT, "params '%.80s': found '%s' twice",
			                  json, s->space[i].name);
		p = skip_ws(ke + 1);
		if (*p != ':')
			return tt_err_set(err, TT_EINPUT, "params '%.80s': expected ':' after "
			                  "'%s'", json, s->space[i].name);
		p = skip_ws(p + 1);
		int is_str = *p == '"';
		size_t n = is_str ? strcspn(p + 1, "\"") : strcspn(p, ",} \t\r\n");
		const char *v = p + is_str;
		if (n >= sizeof tok || (is_str && v[n] != '"') || (!is_str && n == 0))
			return tt_err_set(err, TT_EINPUT, "params '%.80s': [space] %s: expected "
			                  "a value of at most %zu bytes", json,
			                  s->space[i].name, sizeof tok - 1);
		memcpy(tok, v, n);
		tok[n] = 0;
		p = skip_ws(v + n + is_str);
		if ((why = param_from_json(&s->space[i], tok, is_str, &values[i], buf,
		                           sizeof buf)))
			return tt_err_set(err, TT_EINPUT, "params '%.80s': [space] %s: found "
			                  "'%s', expected %s", json, s->space[i].name, tok, why);
		if (*p == ',')
			p = skip_ws(p + 1);
		else if (*p != '}')
			return tt_err_set(err, TT_EINPUT, "params '%.80s': expected ',' or '}' "
			                  "after [space] %s", json, s->space[i].name);
	}
	if (*skip_ws(p + 1))
		return tt_err_set(err, TT_EINPUT, "params '%.80s': expected nothing after "
		                  "the object", json);
	for (int i = 0; i < s->nspace; i++)
		if (!seen[i])
			return tt_err_set(err, TT_EINPUT, "params '%.80s': expected a value for "
			                  "[space] %s", json, s->space[i].name);
	return TT_OK;
}

/* ---- the man page ------------------------------------------------------- */

/* Text for roff: '-' as '\-', '\' as '\e'. */
static void roff(FILE *f, const char *t)
{
	for (; *t; t++) {
		if (*t == '-')
			fputs("\\-", f);
		else if (*t == '\\')
			fputs("\\e", f);
		else
			fputc(*t, f);
	}
}

/* Text for roff with its first letter in upper case. */
static void roff_cap(FILE *f, const char *t)
{
	fputc(toupper((unsigned char)t[0]), f);
	roff(f, t + 1);
}

/* [train]: the options table's rows, in its order. */
static void man_train_keys(FILE *f)
{
	char buf[256];
	for (int i = 0; i < tt_trainopt_count; i++) {
		const tt_trainopt *o = &tt_trainopts[i];
		fputs(".TP\n\\fB", f);
		roff(f, o->name);
		if (!(o->where & TT_TO_TRAIN)) {
			fputs("\\fR\nNot here: set by ", f);
			roff(f, o->home);
			fputs("; ", f);
			roff(f, o->home_why);
			fputs(".\n", f);
			continue;
		}
		fputs("\\fR = \\fI", f);
		roff(f, o->meta ? o->meta : "BOOL");
		fputs("\\fR\n", f);
		roff_cap(f, o->help);
		fputs(".\nValue: ", f);
		roff(f, tt_trainopt_expect(o, buf, sizeof buf));
		fputs(".\nDefault: ", f);
		roff(f, tt_trainopt_defdoc(o));
		fputs(".\n", f);
		if (search_mask(o)) {
			fputs("Searchable in [space] as ", f);
			roff(f, form_list(search_mask(o), buf, sizeof buf));
			fputs(".\n", f);
		}
	}
}

void tt_study_man_keys(FILE *f)
{
	char buf[256];
	for (int i = 0; i < NSEC; i++) {
		const section *sc = &sections[i];
		fprintf(f, ".SS [%s]\n", sc->name);
		roff(f, sc->help);
		fputc('\n', f);
		for (int j = 0; j < sc->nkeys; j++) {
			const key *k = &sc->keys[j];
			const tt_trainopt *o = k->opt ? tt_trainopt_find(k->opt) : NULL;
			TT_ASSERT(!k->opt || o);
			fputs(".TP\n\\fB", f);
			roff(f, k->name);
			fputs("\\fR = \\fI", f);
			roff(f, k->meta);
			fputs("\\fR\n", f);
			roff(f, k->help);
			fputs(".\nValue: ", f);
			roff(f, expect_of(k, buf, sizeof buf));
			fputs(".\nDefault: ", f);
			roff(f, k->def ? k->def : o ? tt_trainopt_defdoc(o) : k->defdoc);
			fputs(".\n", f);
		}
		if (i == SEC_TRAIN)
			man_train_keys(f);
	}
}

/* ---- the fingerprint ---------------------------------------------------- */

#define FP_HEAD "tunetop study fingerprint 1\n"

/*
 * Settings a study file may change between runs on the same database:
 * they decide how fast, where, and for how long the study runs, never
 * what a stored result means (threads and backend may move the last
 * digits of new results, not their meaning).  Every other key of the
 * tables is in the fingerprint; so is every [space] line.
 */
static const struct { int sec; const char *key; } fp_free[] = {
	{ SEC_STUDY, "name" },       { SEC_STUDY, "db" },
	{ SEC_STUDY, "workers" },    { SEC_STUDY, "budget" },
	{ SEC_STUDY, "checkpoint_every" }, { SEC_STUDY, "lock_timeout" },
	{ SEC_STUDY, "keep_checkpoints" }, { SEC_STUDY, "feature_cache" },
	{ SEC_SCHEDULER, "max_trials" },
	/* the FMS surrogate's sizes change the decisions to come, not what a
	 * stored result means (and databases made before them still open) */
	{ SEC_SCHEDULER, "gmn_width" }, { SEC_SCHEDULER, "gmn_blocks" },
	{ SEC_SCHEDULER, "fit_steps_first" }, { SEC_SCHEDULER, "fit_steps" },
	{ SEC_SCHEDULER, "init_configs" },
	{ SEC_TRAIN, "threads" },    { SEC_TRAIN, "backend" },
	{ SEC_TRAIN, "test" },
};

static int fp_is_free(int sec, const char *name)
{
	for (int i = 0; i < N(fp_free); i++)
		if (fp_free[i].sec == sec && strcmp(fp_free[i].key, name) == 0)
			return 1;
	return 0;
}

/* The word at index i of "a|b|c" (into buf). */
static const char *choice_word(const char *choices, int i, char *buf, size_t n)
{
	const char *p = choices;
	for (int k = 0; k < i && *p; k++)
		p += strcspn(p, "|") + (p[strcspn(p, "|")] == '|');
	snprintf(buf, n, "%.*s", (int)strcspn(p, "|"), p);
	return buf;
}

/* Key k's value in s as canonical text (into buf). */
static const char *fp_value(const tt_study *s, const key *k, char *buf, size_t n)
{
	const char *at = (const char *)s + k->off;
	switch (k->type) {
	case K_INT:
		snprintf(buf, n, "%d", *(const int *)at);
		break;
	case K_LONG:
		snprintf(buf, n, "%ld", *(const long *)at);
		break;
	case K_U64:
		snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)at);
		break;
	case K_FLOAT:
		exact_num(*(const float *)at, 1, buf, n);
		break;
	case K_DOUBLE:
		exact_num(*(const double *)at, 0, buf, n);
		break;
	case K_BOOL:
		snprintf(buf, n, "%s", *(const int *)at ? "on" : "off");
		break;
	case K_CHOICE:
		choice_word(k->choices, *(const int *)at, buf, n);
		break;
	case K_STRING:
		snprintf(buf, n, "%s", at);
		/* a data directory by where it is, not by how the file that
		 * named it was reached (cd examples; tunetop quick.ini) */
		if (at == s->strs[1] && strcmp(at, "fashion-mnist") && strcmp(at, "synthetic")) {
			char *real = realpath(at, NULL);
			if (real)
				snprintf(buf, n, "%s", real);
			free(real);
		}
		break;
	default:
		snprintf(buf, n, "?");
	}
	return buf;
}

/* [train] option o's value in s as canonical text (into buf): the keys
 * of [train] come from the options' table (trainopt.h), not from a key
 * table here. */
static const char *fp_train_value(const tt_study *s, const tt_trainopt *o, char *buf,
                                  size_t n)
{
	const char *at = (const char *)&s->train + o->off;
	switch (o->type) {
	case TT_TO_INT:
	case TT_TO_DEPTH:
		snprintf(buf, n, "%d", *(const int *)at);
		break;
	case TT_TO_LONG:
		snprintf(buf, n, "%ld", *(const long *)at);
		break;
	case TT_TO_U64:
		snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)at);
		break;
	case TT_TO_FLOAT:
		exact_num(*(const float *)at, 1, buf, n);
		break;
	case TT_TO_DOUBLE:
		exact_num(*(const double *)at, 0, buf, n);
		break;
	case TT_TO_FLAG:
		snprintf(buf, n, "%s", *(const int *)at ? "on" : "off");
		break;
	case TT_TO_CHOICE:
		choice_word(o->choices, *(const int *)at, buf, n);
		break;
	case TT_TO_STRING: {
		const char *v = *(const char *const *)at;
		snprintf(buf, n, "%s", v ? v : "");
		break;
	}
	default: /* TT_TO_GATES: its parts are [train] keys of their own */
		snprintf(buf, n, "?");
	}
	return buf;
}

static size_t fp_build(const tt_study *s, char *out, size_t len)
{
	size_t at = 0;
	char v[700];
	put(out, len, &at, "%s", FP_HEAD);
	for (int i = 0; i < NSEC; i++) {
		const section *sc = &sections[i];
		if (i == SEC_SPACE) {
			for (int j = 0; j < s->nspace; j++) {
				const tt_param_spec *p = &s->space[j];
				put(out, len, &at, "[space] %s = %s", p->name, ptypes[p->type].name);
				if (p->type == TT_P_CHOICE)
					for (int c = 0; c < p->nchoices; c++)
						put(out, len, &at, "%c%s", c ? ',' : ' ', p->choices[c]);
				else
					put(out, len, &at, " %s %s", exact_num(p->lo, 0, v, 64),
					    exact_num(p->hi, 0, v + 64, 64));
				put(out, len, &at, "\n");
			}
			put(out, len, &at, "[space] order =");
			for (int j = 0; j < s->nspace; j++)
				put(out, len, &at, "%c%s", j ? ',' : ' ', s->space[j].name);
			put(out, len, &at, "\n");
			continue;
		}
		if (i == SEC_TRAIN) {
			for (int j = 0; j < tt_trainopt_count; j++) {
				const tt_trainopt *o = &tt_trainopts[j];
				if (!(o->where & TT_TO_TRAIN) || o->type == TT_TO_GATES ||
				    fp_is_free(i, o->name))
					continue;
				/* a [train] key that [space] searches is overridden */
				int searched = 0;
				for (int q = 0; q < s->nspace; q++)
					searched |= strcmp(s->space[q].name, o->name) == 0;
				if (searched)
					continue;
				/* no init: no line, as before init existed (a study
				 * stored then resumes) */
				if (o->off == offsetof(tt_train_config, init) && !s->train.init)
					continue;
				if (strcmp(o->name, "lr") == 0 && !s->lr_set)
					snprintf(v, sizeof v, "follows the optimizer");
				else if (o->off == offsetof(tt_train_config, init))
					snprintf(v, sizeof v, "%s", s->strs[3]); /* as written */
				else
					fp_train_value(s, o, v, sizeof v);
				put(out, len, &at, "[%s] %s = %s\n", sc->name, o->name, v);
			}
			continue;
		}
		for (int j = 0; j < sc->nkeys; j++) {
			const key *k = &sc->keys[j];
			if (fp_is_free(i, k->name))
				continue;
			fp_value(s, k, v, sizeof v);
			put(out, len, &at, "[%s] %s = %s\n", sc->name, k->name, v);
		}
	}
	return at;
}

char *tt_study_fingerprint(const tt_study *s)
{
	size_t n = fp_build(s, NULL, 0);
	char *out = malloc(n + 1);
	if (out)
		fp_build(s, out, n + 1);
	return out;
}

/* The value of the line whose "KEY = " part is key (klen bytes) in fp, as
 * a pointer and length; NULL when there is none. */
static const char *fp_find(const char *fp, const char *key, size_t klen, size_t *vlen)
{
	for (const char *p = fp; *p;) {
		size_t n = strcspn(p, "\n");
		if (n > klen + 3 && strncmp(p, key, klen) == 0 && strncmp(p + klen, " = ", 3) == 0) {
			*vlen = n - klen - 3;
			return p + klen + 3;
		}
		p += n + (p[n] == '\n');
	}
	return NULL;
}

/* [train] keys that came with a default other than how the builds before
 * them ran: a database made before one of them ran value. */
static const struct { const char *key, *value; } fp_before[] = {
	{ "[train] frozen-bn", "batch" },
};

/* One pass over a's lines against b, described into out: forward, every
 * line of a whose value differs in b or that b lacks ("was A, now B" or
 * "now none"); backward (a and b swapped), every line that only a has
 * ("was none, now A"), unless dflt (the fingerprint of a study of
 * defaults) has that very line: a key that a later build added, set to
 * its default, which is how the older build that made the database ran
 * (fp_before names the keys where it is not, and what they ran).
 * only_order: the [space] order line alone, else every line but it.
 * Returns how many differ. */
static int fp_pass(const char *a, const char *b, const char *dflt, int forward,
                   int only_order, char *out, size_t len, size_t *at, int *shown)
{
	int diffs = 0;
	for (const char *p = a + strlen(FP_HEAD); *p;) {
		size_t n = strcspn(p, "\n");
		const char *eq = strstr(p, " = ");
		const char *next = p + n + (p[n] == '\n');
		if (!eq || eq > p + n) {
			p = next;
			continue;
		}
		size_t klen = (size_t)(eq - p), vlen = n - klen - 3, blen = 0;
		const char *bv = fp_find(b, p, klen, &blen);
		int is_order = klen == strlen("[space] order") &&
		               strncmp(p, "[space] order", klen) == 0;
		int differs = forward ? !bv || blen != vlen || strncmp(bv, eq + 3, vlen)
		                      : !bv;
		size_t dl = 0;
		const char *dv = !forward && differs && dflt ? fp_find(dflt, p, klen, &dl) : NULL;
		/* a key whose default is not how the builds before it ran: the
		 * database ran the older behaviour */
		const char *was = NULL;
		for (size_t k = 0; !forward && differs && k < sizeof fp_before / sizeof *fp_before;
		     k++)
			if (strlen(fp_before[k].key) == klen && !strncmp(p, fp_before[k].key, klen))
				dv = was = fp_before[k].value, dl = strlen(was);
		if (dv && dl == vlen && strncmp(dv, eq + 3, vlen) == 0)
			differs = 0;
		/* a [train] key that came into or left [space]: the [space] line
		 * says so, once */
		if (differs && klen > 8 && strncmp(p, "[train] ", 8) == 0) {
			char sk[TT_NAME_LEN + 16];
			size_t sl;
			snprintf(sk, sizeof sk, "[space] %.*s", (int)(klen - 8), p + 8);
			differs = !fp_find(a, sk, strlen(sk), &sl) && !fp_find(b, sk, strlen(sk), &sl);
		}
		if (differs && is_order == only_order) {
			diffs++;
			/* keep room for "; and NN more" */
			if (*at + n + 40 < len) {
				put(out, len, at, "%s%.*s: was %.*s, now %.*s", *shown ? "; " : "",
				    (int)klen, p,
				    (int)(forward ? vlen : was ? strlen(was) : 4),
				    forward ? eq + 3 : was ? was : "none",
				    (int)(forward ? (bv ? blen : 4) : vlen),
				    forward ? (bv ? bv : "none") : eq + 3);
				++*shown;
			}
		}
		p = next;
	}
	return diffs;
}

int tt_study_fingerprint_diff(const char *was, const char *now, char *out, size_t len)
{
	size_t at = 0;
	int shown = 0;
	if (len)
		out[0] = 0;
	if (strncmp(was, FP_HEAD, strlen(FP_HEAD)) || strncmp(now, FP_HEAD, strlen(FP_HEAD)))
		return -1;
	tt_study *d = malloc(sizeof *d);
	char *dflt = NULL;
	if (d) {
		study_init(d);
		dflt = tt_study_fingerprint(d);
		free(d);
	}
	int n = fp_pass(was, now, NULL, 1, 0, out, len, &at, &shown) +
	        fp_pass(now, was, dflt, 0, 0, out, len, &at, &shown);
	free(dflt);
	/* the order of [space] counts only when its entries are the same:
	 * otherwise the entries that came or went say it already */
	if (n == 0)
		n = fp_pass(was, now, NULL, 1, 1, out, len, &at, &shown);
	if (n > shown)
		put(out, len, &at, "%sand %d more", shown ? "; " : "", n - shown);
	return n;
}
