/*
 * test.h — the smallest harness that can fail.
 *
 * Each tests/test_*.c is one program; TT_RUN(fn) runs a case and prints
 * "ok NAME" or "FAIL NAME" lines; tests/run.sh counts them over every
 * program and script and prints "N passed, N failed".  A case fails when
 * any CHECK in it fails; the program exits 1 if any case failed.
 */
#ifndef TT_TEST_H
#define TT_TEST_H

#include <math.h>
#include <stdio.h>

static int tt_case_failed;
static int tt_cases_failed;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "  %s:%d: check failed: %s: ",     \
			        __FILE__, __LINE__, #cond);                \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
			tt_case_failed = 1;                                \
		}                                                          \
	} while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol, what)                                \
	do {                                                               \
		double a_ = (a), b_ = (b);                                 \
		CHECK(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_),        \
		      "%s: got %.8g, expected %.8g", (what), a_, b_);      \
	} while (0)

#define TT_RUN(fn)                                                         \
	do {                                                               \
		tt_case_failed = 0;                                        \
		fn();                                                      \
		printf("%s %s\n", tt_case_failed ? "FAIL" : "ok", #fn);    \
		fflush(stdout);                                            \
		tt_cases_failed += tt_case_failed;                         \
	} while (0)

#define TT_EXIT() return tt_cases_failed ? 1 : 0

#endif
