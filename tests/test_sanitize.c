/*
 * test_sanitize.c — the output rules of base/sanitize.h, byte by byte:
 * strict UTF-8 decoding, the terminal rule, CSV fields, JSON strings and
 * JSON text parsed and written again.  tests/t_hostile.sh checks the same
 * rules end to end through the binary.
 */
#include <stdlib.h>
#include <string.h>

#include "sanitize.h"
#include "test.h"

/* What fn wrote to a FILE, as a NUL-terminated string (static). */
static const char *capture(void (*fn)(FILE *, const char *), const char *s)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof buf, "w");
	fn(f, s);
	fclose(f);
	return buf;
}

static void term_put(FILE *f, const char *s) { tt_san_term_put(f, s, 0); }
static void json_value(FILE *f, const char *s)
{
	if (tt_san_json_value(f, s, 1))
		fputs("(refused)", f);
}

static void test_utf8(void)
{
	static const struct { const char *s; size_t len; uint32_t cp; } v[] = {
		{ "a", 1, 'a' },
		{ "\xc2\x9b", 2, 0x9b },            /* U+009B, C1 CSI */
		{ "\xe2\x82\xac", 3, 0x20ac },
		{ "\xf0\x9f\x98\x80", 4, 0x1f600 },
		{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
		{ "\x9b", 0, 0 },                   /* a lone continuation byte */
		{ "\xc0\xaf", 0, 0 },               /* overlong '/' */
		{ "\xe0\x80\xaf", 0, 0 },           /* overlong */
		{ "\xed\xa0\x80", 0, 0 },           /* a surrogate */
		{ "\xf4\x90\x80\x80", 0, 0 },       /* above U+10FFFF */
		{ "\xc3", 0, 0 },                   /* cut short */
		{ "\xc3(", 0, 0 },
		{ "\xff", 0, 0 },
	};
	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		uint32_t cp = 0;
		size_t n = tt_san_utf8(v[k].s, strlen(v[k].s), &cp);
		CHECK(n == v[k].len && (!n || cp == v[k].cp), "case %zu: %zu U+%04X", k, n,
		      (unsigned)cp);
	}
}

static void test_term(void)
{
	static const char *const v[][2] = {
		{ "done", "done" },
		{ "\x1b]2;OWNED\x07", "?]2;OWNED?" },
		{ "\x1b[2J", "?[2J" },
		{ "q\xc2\x9b\x9bx", "q??x" },
		{ "a\tb\nc\rd\x7f", "a?b?c?d?" },
		{ "\xc3(\xe2\x82", "?(??" },
		{ "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },
	};
	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		const char *got = capture(term_put, v[k][0]);
		CHECK(strcmp(got, v[k][1]) == 0, "case %zu: '%s'", k, got);
		char buf[64];
		tt_san_term(buf, sizeof buf, v[k][0]);
		CHECK(strcmp(buf, v[k][1]) == 0, "buffer case %zu: '%s'", k, buf);
	}
	/* in place (tt_err_set does this) */
	char inplace[] = "\x1b]2;\xc3\xa9\x9b\x07!";
	tt_san_term(inplace, sizeof inplace, inplace);
	CHECK(strcmp(inplace, "?]2;\xc3\xa9?" "?!") == 0, "in place: '%s'", inplace);
	/* a cut keeps whole characters */
	char small[5];
	CHECK(tt_san_term(small, sizeof small, "ab\xe2\x82\xac") == 2 &&
	      strcmp(small, "ab") == 0, "'%s'", small);
	/* padding */
	char buf[32];
	FILE *f = fmemopen(buf, sizeof buf, "w");
	int n = tt_san_term_put(f, "\xc3\xa9x", 4);
	fclose(f);
	CHECK(n == 4 && strcmp(buf, "\xc3\xa9x  ") == 0, "%d '%s'", n, buf);
}

static void test_csv(void)
{
	static const char *const v[][2] = {
		{ "done", "\"done\"" },
		{ "a\"b,c\nd", "\"a\"\"b,c\nd\"" },
		{ "=cmd", "\"'=cmd\"" },
		{ "+1", "\"'+1\"" },
		{ "-1", "\"'-1\"" },
		{ "@x", "\"'@x\"" },
		{ "a=b", "\"a=b\"" },
		{ "\x1b[2J\x9b\xc2\x9b\r\t", "\"?[2J??\?\t\"" },
		{ "", "\"\"" },
	};
	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		const char *got = capture(tt_san_csv_put, v[k][0]);
		CHECK(strcmp(got, v[k][1]) == 0, "case %zu: '%s'", k, got);
	}
}

static void test_json_string(void)
{
	static const char *const v[][2] = {
		{ "done", "\"done\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "\x1b]2;X\x07", "\"\\u001b]2;X\\u0007\"" },
		{ "\xc2\x9b\x9b\x7f", "\"\\u009b\\ufffd\\u007f\"" },
		{ "\xc3(\xc3\xa9", "\"\\ufffd(\xc3\xa9\"" },
	};
	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		const char *got = capture(tt_san_json_put, v[k][0]);
		CHECK(strcmp(got, v[k][1]) == 0, "case %zu: '%s'", k, got);
	}
}

static void test_json_value(void)
{
	static const char *const v[][2] = {
		{ "{\"lr\":0.1,\"opt\":\"sgd\"}", "{\"lr\":0.1,\"opt\":\"sgd\"}" },
		{ " { \"a\" : [1, -2.5e-3, true, false, null, {}] } ",
		  "{\"a\":[1,-2.5e-3,true,false,null,{}]}" },
		{ "{\"s\":\"\\\"q\\u00e9\\n\"}", "{\"s\":\"\\\"q\\u00e9\\n\"}" },
		/* raw bytes inside a string are re-encoded */
		{ "{\"s\":\"\x1b[2J\x9b\xc2\x9b\"}", "{\"s\":\"\\u001b[2J\\ufffd\\u009b\"}" },
		/* not one JSON object: refused, nothing written */
		{ "{\"lr\":0.1},\"state\":\"killed\",\"p2\":{\"a\":1}", "(refused)" },
		{ "{\"a\":\"b\"c\"}", "(refused)" },
		{ "[1]", "(refused)" },
		{ "{\"a\":01}", "(refused)" },
		{ "{\"a\":1.}", "(refused)" },
		{ "{\"a\":\"\\x\"}", "(refused)" },
		{ "{\"a\":\"\\u12\"}", "(refused)" },
		{ "{\"a\":tru}", "(refused)" },
		{ "{\"a\":1,}", "(refused)" },
		{ "{\"a\" 1}", "(refused)" },
		{ "{\"a\":\"unterminated}", "(refused)" },
		{ "", "(refused)" },
	};
	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		const char *got = capture(json_value, v[k][0]);
		CHECK(strcmp(got, v[k][1]) == 0, "case %zu: '%s'", k, got);
	}
	/* depth: 64 levels are taken, 65 refused, 100000 do not overflow */
	char *deep = malloc(200002);
	int n = 100000;
	for (int d = 64; d <= 65; d++) {
		char *p = deep;
		*p++ = '{';
		*p++ = '"', *p++ = 'a', *p++ = '"', *p++ = ':';
		for (int k = 1; k < d; k++)
			*p++ = '[';
		for (int k = 1; k < d; k++)
			*p++ = ']';
		*p++ = '}';
		*p = '\0';
		CHECK(tt_san_json_value(NULL, deep, 1) == (d <= 64 ? 0 : -1), "depth %d", d);
	}
	memset(deep, '[', (size_t)n);
	deep[0] = '{';
	deep[n] = '\0';
	CHECK(tt_san_json_value(NULL, deep, 1) == -1, "deep");
	free(deep);
	CHECK(tt_san_json_value(NULL, "[1,2]", 0) == 0, "an array when object_only is 0");
}

int main(void)
{
	TT_RUN(test_utf8);
	TT_RUN(test_term);
	TT_RUN(test_csv);
	TT_RUN(test_json_string);
	TT_RUN(test_json_value);
	TT_EXIT();
}
