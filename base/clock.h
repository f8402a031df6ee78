/*
 * clock.h — the two clocks every part of tunetop reads.
 *
 * tt_clock_mono measures durations (never jumps, arbitrary origin);
 * tt_clock_wall is seconds since the Unix epoch, for timestamps that are
 * stored (created_at, issued_at) and compared across processes.
 */
#ifndef TT_CLOCK_H
#define TT_CLOCK_H

double tt_clock_mono(void);
double tt_clock_wall(void);
/* Sleep ms milliseconds, resumed after signals. */
void tt_clock_sleep_ms(int ms);

#endif
