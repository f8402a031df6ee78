/* err.c — formatting of recorded failures; see err.h. */
#include "err.h"

#include <stdarg.h>

int tt_err_set(tt_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return code;
}
