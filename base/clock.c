/* clock.c — see clock.h. */
#include "clock.h"

#include <errno.h>
#include <time.h>

static double seconds(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double tt_clock_mono(void)
{
	return seconds(CLOCK_MONOTONIC);
}

double tt_clock_wall(void)
{
	return seconds(CLOCK_REALTIME);
}

void tt_clock_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
