/*
 * trainopt.h — the training options: one const table for every place
 * that names them.
 *
 * Each row is one setting of tt_train_config: its name, what a value
 * looks like, type, range, default, help, the man page's paragraph, and
 * where it may be given.  The same rows drive
 *   - `tunetop train`: parsing, range checks, error messages and --help
 *     (tui/main.c), and the TRAIN OPTIONS section of man/tunetop.1
 *     (tt_trainopt_man, printed by `tunetop help-options --man`);
 *   - a study file's [train] keys and the hyperparameters [space] may
 *     search (engine/study.c), with the [train] part of
 *     man/tunetop-study.5's KEYS;
 *   - the defaults (tt_train_defaults parses each row's default).
 * So a name, a range or a default cannot differ between them.
 */
#ifndef TT_TRAINOPT_H
#define TT_TRAINOPT_H

#include <stddef.h>
#include <stdio.h>

#include "train.h"

enum tt_trainopt_type {
	TT_TO_INT,     /* int */
	TT_TO_LONG,    /* long */
	TT_TO_U64,     /* uint64_t */
	TT_TO_FLOAT,   /* float */
	TT_TO_DOUBLE,  /* double */
	TT_TO_FLAG,    /* int 0/1: on the command line the bare --name sets
	                * it; as a value (a [train] key, a default) a
	                * boolean word, true/false, yes/no, on/off, 1/0 */
	TT_TO_CHOICE,  /* int, the index in choices */
	TT_TO_STRING,  /* const char *, non-empty; points at the value given */
	TT_TO_DEPTH,   /* int: "all" (0) or lo..hi */
	TT_TO_GATES,   /* tt_gate_config: "S[,B[,A]]" (tt_gate_parse) */
	TT_TO_EVOGRAD, /* tt_evo_config: "WHAT[,K[,SIGMA[,TAU]]]", each part
	                * read by the row of its own [train] key */
	TT_TO_CONTINUAL, /* int continual.tasks: "split-fmnist:T" or "split:T" */
	TT_TO_STRATEGY /* continual.strategy and .split: "naive", "replay:K",
	                * "hn:K" or "hn-full" */
};

/* Where a row may be given. */
#define TT_TO_CLI   1u   /* a `tunetop train` option */
#define TT_TO_TRAIN 2u   /* a study file's [train] key */

/* What [space] may search a row with (its values' kind). */
enum tt_trainopt_search {
	TT_TO_FIXED,       /* not searchable */
	TT_TO_REAL,        /* float, log-float or choice */
	TT_TO_INTEGER,     /* int, log-int or choice */
	TT_TO_CHOICES      /* choice only */
};

typedef struct tt_trainopt {
	const char *name;    /* --name on the command line, the [train] key */
	const char *meta;    /* what a value looks like, for --help and the
	                      * man pages; NULL for a flag */
	int type;            /* enum tt_trainopt_type */
	double lo, hi;       /* numbers and depths: inclusive range */
	const char *choices; /* TT_TO_CHOICE: "a|b|c", in enum order */
	size_t off;          /* the target, an offset into tt_train_config */
	const char *def;     /* the default as a value, parsed by
	                      * tt_train_defaults; NULL: set there by code */
	const char *defdoc;  /* the default as documented; NULL: def */
	const char *help;    /* one line, lower case, for --help and [train] */
	const char *man;     /* the paragraph of man/tunetop.1 (roff, without
	                      * the default); NULL: help */
	unsigned where;      /* TT_TO_CLI | TT_TO_TRAIN */
	const char *home;    /* a `tunetop train` option that is no [train]
	                      * key: the study setting that takes its place
	                      * ("[data] source"), and why (home_why) */
	const char *home_why;
	int search;          /* enum tt_trainopt_search */
	/* Optional check of a value that parsed: NULL when fine, else what
	 * was expected (in buf). */
	const char *(*check)(const char *v, char *buf, size_t n);
} tt_trainopt;

extern const tt_trainopt tt_trainopts[];
extern const int tt_trainopt_count;

/* The row named name, or NULL. */
const tt_trainopt *tt_trainopt_find(const char *name);

/*
 * Parse v as a value of o into c (c may be NULL: check only).  NULL on
 * success, else what was expected (in buf): "an integer in 1..65536",
 * "one of sgd|adamw", ...; for TT_TO_GATES the whole message of
 * tt_gate_parse.  A string keeps v itself: v must outlive c.  *num (may
 * be NULL) gets the value as a number: a choice's index, a flag's 0/1.
 */
const char *tt_trainopt_parse(const tt_trainopt *o, const char *v,
                              tt_train_config *c, double *num, char *buf,
                              size_t n);
/* A boolean word (true/false, yes/no, on/off, 1/0) into *out: 0, else -1. */
int tt_trainopt_bool(const char *v, int *out);
/* What a value of o looks like, as in the messages (into buf). */
const char *tt_trainopt_expect(const tt_trainopt *o, char *buf, size_t n);
/* The default as documented: defdoc, else def. */
const char *tt_trainopt_defdoc(const tt_trainopt *o);

/* lr when none is given: the optimizer's own, 0.05 for sgd (lr's
 * default), 0.001 for adamw (its documented default). */
void tt_trainopt_lr_follow(tt_train_config *c);

int tt_trainopt_is_number(const tt_trainopt *o);   /* INT .. DOUBLE */
int tt_trainopt_is_integer(const tt_trainopt *o);  /* INT, LONG, U64 */

/* `tunetop train --help`'s option lines. */
void tt_trainopt_help(FILE *f);
/* The body of man/tunetop.1's TRAIN OPTIONS section (roff). */
void tt_trainopt_man(FILE *f);

#endif
