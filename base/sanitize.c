/* sanitize.c — one output rule per channel for database text; see sanitize.h. */
#include "sanitize.h"

#include <string.h>

#define JSON_DEPTH_MAX 64

static int cont(unsigned char b)
{
	return (b & 0xc0) == 0x80;
}

size_t tt_san_utf8(const char *str, size_t n, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char b = s[0];
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	/* the second byte's range rules out overlong forms (E0, F0),
	 * surrogates (ED) and code points above U+10FFFF (F4) */
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;
	if (b >= 0xc2 && b <= 0xdf)
		len = 2;
	else if (b >= 0xe0 && b <= 0xef)
		len = 3, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
	else if (b >= 0xf0 && b <= 0xf4)
		len = 4, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (!cont(s[k]))
			return 0;
	uint32_t c = b & (0xff >> (len + 1));
	for (size_t k = 1; k < len; k++)
		c = c << 6 | (s[k] & 0x3f);
	*cp = c;
	return len;
}

int tt_san_term_ok(uint32_t cp)
{
	return cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0);
}

/* The next character of s for a terminal: its bytes (the character
 * itself, or "?" in its place) and how far s moves on. */
static size_t term_next(const char *s, size_t n, const char **out, size_t *outn)
{
	uint32_t cp;
	size_t k = tt_san_utf8(s, n, &cp);
	if (k && tt_san_term_ok(cp)) {
		*out = s;
		*outn = k;
		return k;
	}
	*out = "?";
	*outn = 1;
	return k ? k : 1;
}

size_t tt_san_term(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s), w = 0;
	while (n) {
		const char *o;
		size_t on, k = term_next(s, n, &o, &on);
		if (w + on + 1 > cap)
			break;
		/* memmove: dst may be s itself (the output is never longer) */
		memmove(dst + w, o, on);
		w += on;
		s += k;
		n -= k;
	}
	dst[w] = '\0';
	return w;
}

int tt_san_term_put(FILE *f, const char *s, int width)
{
	size_t n = strlen(s);
	int chars = 0;
	while (n) {
		const char *o;
		size_t on, k = term_next(s, n, &o, &on);
		fwrite(o, 1, on, f);
		chars++;
		s += k;
		n -= k;
	}
	for (; chars < width; chars++)
		fputc(' ', f);
	return chars;
}

void tt_san_csv_put(FILE *f, const char *s)
{
	size_t n = strlen(s);
	fputc('"', f);
	/* a spreadsheet runs a cell that starts with one of these as a
	 * formula (OWASP "CSV injection"); a leading ' makes it text */
	if (*s && strchr("=+-@", *s))
		fputc('\'', f);
	while (n) {
		uint32_t cp;
		size_t k = tt_san_utf8(s, n, &cp);
		if (!k) {
			fputc('?', f);
			k = 1;
		} else if (cp == '"') {
			fputs("\"\"", f);
		} else if (cp == '\t' || cp == '\n' || tt_san_term_ok(cp)) {
			fwrite(s, 1, k, f);
		} else {
			fputc('?', f);
		}
		s += k;
		n -= k;
	}
	fputc('"', f);
}

/* The body of a JSON string (no quotes) for the n bytes at s. */
static void json_body(FILE *f, const char *s, size_t n)
{
	while (n) {
		uint32_t cp;
		size_t k = tt_san_utf8(s, n, &cp);
		if (!k) {
			fputs("\\ufffd", f);
			k = 1;
		} else if (cp == '"' || cp == '\\') {
			fputc('\\', f);
			fputc((int)cp, f);
		} else if (!tt_san_term_ok(cp)) {
			fprintf(f, "\\u%04x", (unsigned)cp);
		} else {
			fwrite(s, 1, k, f);
		}
		s += k;
		n -= k;
	}
}

void tt_san_json_put(FILE *f, const char *s)
{
	fputc('"', f);
	json_body(f, s, strlen(s));
	fputc('"', f);
}

/* ---- JSON text: parse and write again ----------------------------------- */

/* A recursive-descent reader over s; f NULL only checks.  Each function
 * returns 0 and moves p past what it read, or -1. */
typedef struct jp {
	const char *p;
	FILE *f;
	int depth;
} jp;

static void jp_ws(jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static void jp_out(jp *j, const char *s, size_t n)
{
	if (j->f)
		fwrite(s, 1, n, j->f);
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string: escapes checked and kept as written (they are ASCII); raw
 * bytes re-encoded by json_body, so a raw control character or an invalid
 * byte inside a string costs the row nothing but that character. */
static int jp_string(jp *j)
{
	if (*j->p != '"')
		return -1;
	jp_out(j, "\"", 1);
	const char *s = ++j->p;
	for (;;) {
		const char *run = s;
		while (*s && *s != '"' && *s != '\\')
			s++;
		if (j->f)
			json_body(j->f, run, (size_t)(s - run));
		if (*s == '"')
			break;
		if (!*s)
			return -1;
		/* a backslash */
		if (s[1] && strchr("\"\\/bfnrt", s[1])) {
			jp_out(j, s, 2);
			s += 2;
		} else if (s[1] == 'u' && is_hex(s[2]) && is_hex(s[3]) && is_hex(s[4]) &&
		           is_hex(s[5])) {
			jp_out(j, s, 6);
			s += 6;
		} else {
			return -1;
		}
	}
	jp_out(j, "\"", 1);
	j->p = s + 1;
	return 0;
}

static int digits(const char **p)
{
	const char *s = *p;
	while (**p >= '0' && **p <= '9')
		(*p)++;
	return *p > s;
}

static int jp_number(jp *j)
{
	const char *s = j->p, *p = s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (!digits(&p))
		return -1;
	if (*p == '.' && (p++, !digits(&p)))
		return -1;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!digits(&p))
			return -1;
	}
	jp_out(j, s, (size_t)(p - s));
	j->p = p;
	return 0;
}

static int jp_value(jp *j);

/* An object ('{' ... '}') or an array ('[' ... ']'). */
static int jp_compound(jp *j, char close)
{
	if (++j->depth > JSON_DEPTH_MAX)
		return -1;
	jp_out(j, j->p, 1);
	j->p++;
	jp_ws(j);
	if (*j->p == close) {
		jp_out(j, j->p++, 1);
		j->depth--;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			if (jp_string(j))
				return -1;
			jp_ws(j);
			if (*j->p != ':')
				return -1;
			jp_out(j, j->p++, 1);
			jp_ws(j);
		}
		if (jp_value(j))
			return -1;
		jp_ws(j);
		if (*j->p == close)
			break;
		if (*j->p != ',')
			return -1;
		jp_out(j, j->p++, 1);
		jp_ws(j);
	}
	jp_out(j, j->p++, 1);
	j->depth--;
	return 0;
}

static int jp_value(jp *j)
{
	static const char *const lit[] = { "true", "false", "null" };
	switch (*j->p) {
	case '{':
		return jp_compound(j, '}');
	case '[':
		return jp_compound(j, ']');
	case '"':
		return jp_string(j);
	}
	for (int k = 0; k < 3; k++) {
		size_t n = strlen(lit[k]);
		if (strncmp(j->p, lit[k], n) == 0) {
			jp_out(j, j->p, n);
			j->p += n;
			return 0;
		}
	}
	return jp_number(j);
}

static int jp_text(jp *j, int object_only)
{
	jp_ws(j);
	if (object_only && *j->p != '{')
		return -1;
	if (jp_value(j))
		return -1;
	jp_ws(j);
	return *j->p ? -1 : 0;
}

int tt_san_json_value(FILE *f, const char *s, int object_only)
{
	/* check first, so that a bad value writes nothing */
	jp j = { s, NULL, 0 };
	if (jp_text(&j, object_only))
		return -1;
	if (f) {
		j = (jp){ s, f, 0 };
		jp_text(&j, object_only);
	}
	return 0;
}
