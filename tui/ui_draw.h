/*
 * ui_draw.h — drawing primitives for the explorer's panes, over ncurses.
 *
 * Every string that reaches the terminal goes through ui_put, which
 * decodes it in the locale's encoding, replaces control characters (C0,
 * DEL, C1) and undecodable bytes with '?', and stops at the width given:
 * text from the database can never emit an escape sequence or break a
 * layout.  Drawing goes to stdscr off-screen; the screen manager sends it
 * once per frame (wnoutrefresh + doupdate).
 */
#ifndef TT_UI_DRAW_H
#define TT_UI_DRAW_H

#include <curses.h>
#include <stddef.h>
#include <wchar.h>

/* Put s at (y, x) in at most w columns with attribute a; returns the
 * columns used.  w < 0: up to the right edge. */
int ui_put(int y, int x, int w, attr_t a, const char *s);
/* printf into ui_put. */
int ui_putf(int y, int x, int w, attr_t a, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Fill w columns from (y, x) with spaces in attribute a. */
void ui_fill(int y, int x, int w, attr_t a);
/* One wide character at (y, x); in a non-UTF-8 locale fallback instead. */
void ui_putwc(int y, int x, wchar_t wc, char fallback, attr_t a);
/* Whether the locale is UTF-8 (set by ui_draw_init). */
extern int ui_utf8;
void ui_draw_init(void);

/* s with control characters and invalid UTF-8 replaced by '?' (the
 * terminal rule, tt_san_term), cut to cap bytes at a character boundary
 * (for messages built from database text). */
void ui_clean(char *dst, size_t cap, const char *s);
/* Bytes as "12.3 MiB". */
void ui_bytes(char *dst, size_t cap, double bytes);

#endif
