/* err.c — formatting of recorded failures; see err.h. */
#include "err.h"

#include <stdarg.h>

#include "sanitize.h"

int tt_err_set(tt_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		/* messages quote values that come from files and databases
		 * (an SQLite message can be a trigger's text): whoever prints
		 * one prints terminal-safe text (base/sanitize.h) */
		tt_san_term(e->msg, sizeof e->msg, e->msg);
		e->code = code;
	}
	return code;
}
