/*
 * parse.h — the strict readers of values from text that the study files
 * and the command line share: what they accept is the same everywhere.
 */
#ifndef TT_PARSE_H
#define TT_PARSE_H

/* A decimal integer, optionally signed; nothing else (no blanks, no hex,
 * no overflow).  0, else -1. */
int tt_parse_ll(const char *v, long long *out);
/* A finite decimal number: digits, sign, point, exponent; no hex, inf,
 * nan, blanks.  0, else -1. */
int tt_parse_num(const char *v, double *out);
/* The index of v in "a|b|c", or -1. */
int tt_parse_choice(const char *choices, const char *v);

#endif
