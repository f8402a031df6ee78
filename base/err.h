/*
 * err.h — the two tiers of failure.
 *
 * Bugs trip TT_ASSERT, which names the file and line and aborts.  Expected
 * failures (bad input, a diverged loss, out of memory) return a status code
 * and leave a message in a tt_err that the caller owns.  Nothing in engine/
 * or db/ calls exit(): only main maps a status to an exit code.
 */
#ifndef TT_ERR_H
#define TT_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum tt_status {
	TT_OK = 0,
	TT_ERUNTIME = 1, /* a failure at run time: I/O, out of memory, ... */
	TT_EINPUT = 2,   /* bad usage or bad input: a value, a file, a spec */
	TT_EDIVERGED = 3 /* the loss became NaN or infinite */
};

typedef struct tt_err {
	int code;
	char msg[512];
} tt_err;

/* Record a failure in e (which may be NULL) and return code.  The message
 * is made terminal-safe (tt_san_term): controls and invalid UTF-8 in the
 * values it quotes become '?'. */
int tt_err_set(tt_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define TT_ASSERT(c)                                                       \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",   \
			        __FILE__, __LINE__, #c);                   \
			abort();                                           \
		}                                                          \
	} while (0)

#endif
