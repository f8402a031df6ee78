/* parse.c — strict value readers; see parse.h. */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int tt_parse_ll(const char *v, long long *out)
{
	const char *p = v + (*v == '+' || *v == '-');
	if (*p < '0' || *p > '9')
		return -1;
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || *end)
		return -1;
	*out = x;
	return 0;
}

int tt_parse_num(const char *v, double *out)
{
	if (!*v || strspn(v, "0123456789+-.eE") != strlen(v))
		return -1;
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(x))
		return -1;
	*out = x;
	return 0;
}

int tt_parse_choice(const char *choices, const char *v)
{
	size_t len = strlen(v);
	int k = 0;
	for (const char *p = choices; *p; k++) {
		size_t n = strcspn(p, "|");
		if (n == len && strncmp(p, v, n) == 0)
			return k;
		p += n + (p[n] == '|');
	}
	return -1;
}
