/*
 * sanitize.h — text from the database on its way out, one rule per channel.
 *
 * A study database is a file anyone may have written: a trial's state, a
 * study's name, a command's verb or a params row can hold any bytes.  Every
 * place that prints such text goes through one of these, chosen by where the
 * text goes:
 *
 *   terminal and log  tt_san_term, tt_san_term_put: one line of text; every
 *                     character that could steer a terminal (C0 controls
 *                     tab and newline included, DEL, C1 controls
 *                     U+0080..U+009F) and every byte that is not valid UTF-8
 *                     becomes '?'.  The explorer's ui_put applies the same
 *                     rule (tt_san_term_ok) to what it decodes.
 *   CSV               tt_san_csv_put: one RFC 4180 field, always quoted,
 *                     quotes doubled; a leading = + - @ gets a ' before it
 *                     so that a spreadsheet reads text, not a formula; tab
 *                     and newline stay (allowed in a quoted field), every
 *                     other control and invalid byte becomes '?'.
 *   JSON              tt_san_json_put: one JSON string; controls (C1 and DEL
 *                     included) as \u00XX, invalid UTF-8 as \ufffd, so the
 *                     output is valid UTF-8 JSON whatever the input.
 *                     tt_san_json_value: JSON text (a params row) parsed and
 *                     written again, never pasted.
 *
 * UTF-8 is decoded strictly (no overlong forms, no surrogates, nothing above
 * U+10FFFF): what a strict reader would refuse is treated as invalid here.
 */
#ifndef TT_SANITIZE_H
#define TT_SANITIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Decode one UTF-8 character from s (n bytes available, n >= 1): its
 * length 1..4 with *cp set, or 0 when s does not start a valid sequence. */
size_t tt_san_utf8(const char *s, size_t n, uint32_t *cp);

/* 1 when code point cp may reach a terminal: not a C0 control, DEL or a
 * C1 control. */
int tt_san_term_ok(uint32_t cp);

/* s made safe for a terminal or a log line into dst (cap > 0 bytes, always
 * terminated, cut at a character boundary); returns the bytes written.
 * dst may be s: the result is never longer. */
size_t tt_san_term(char *dst, size_t cap, const char *s);

/* s made safe for a terminal, written to f, all of it, then padded with
 * spaces to width characters (width <= 0: no padding).  Returns the
 * characters written. */
int tt_san_term_put(FILE *f, const char *s, int width);

/* s as one quoted CSV field (RFC 4180), formulas neutralised. */
void tt_san_csv_put(FILE *f, const char *s);

/* s as one JSON string, quotes included. */
void tt_san_json_put(FILE *f, const char *s);

/* If s is one valid JSON value (an object when object_only), write it to f
 * re-encoded (whitespace dropped, strings escaped as tt_san_json_put does,
 * at most 64 levels deep) and return 0; else write nothing and return -1.
 * f may be NULL: only check. */
int tt_san_json_value(FILE *f, const char *s, int object_only);

#endif
