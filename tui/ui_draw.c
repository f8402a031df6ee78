/*
 * ui_draw.c — text and glyph primitives; see ui_draw.h.
 */
#include "ui_draw.h"

#include <langinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sanitize.h"

int ui_utf8;

void ui_draw_init(void)
{
	const char *cs = nl_langinfo(CODESET);
	ui_utf8 = cs && (!strcasecmp(cs, "UTF-8") || !strcasecmp(cs, "utf8"));
}

/* The terminal rule every way out shares (base/sanitize.h): C0, DEL and
 * C1 controls never reach the screen. */
static int is_control(wchar_t wc)
{
	return wc < 0 || !tt_san_term_ok((uint32_t)wc);
}

int ui_put(int y, int x, int w, attr_t a, const char *s)
{
	int maxx = getmaxx(stdscr), maxy = getmaxy(stdscr);
	if (y < 0 || y >= maxy || x < 0 || x >= maxx)
		return 0;
	if (w < 0 || x + w > maxx)
		w = maxx - x;
	wchar_t buf[512];
	int n = 0, used = 0;
	mbstate_t ps;
	memset(&ps, 0, sizeof ps);
	size_t len = strlen(s);
	while (len && n < (int)(sizeof buf / sizeof buf[0]) - 1) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, len, &ps);
		if (k == (size_t)-1 || k == (size_t)-2) {
			/* not decodable here: one '?' per byte */
			wc = L'?';
			k = 1;
			memset(&ps, 0, sizeof ps);
		} else if (k == 0) {
			break;
		}
		if (is_control(wc))
			wc = L'?';
		int cw = wcwidth(wc);
		if (cw < 0)
			wc = L'?', cw = 1;
		if (used + cw > w)
			break;
		buf[n++] = wc;
		used += cw;
		s += k;
		len -= k;
	}
	buf[n] = L'\0';
	attr_t old;
	short pair;
	wattr_get(stdscr, &old, &pair, NULL);
	wattrset(stdscr, a);
	mvaddnwstr(y, x, buf, n);
	wattrset(stdscr, old);
	return used;
}

int ui_putf(int y, int x, int w, attr_t a, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return ui_put(y, x, w, a, buf);
}

void ui_fill(int y, int x, int w, attr_t a)
{
	int maxx = getmaxx(stdscr);
	if (x < 0 || y < 0 || y >= getmaxy(stdscr) || x >= maxx)
		return;
	if (x + w > maxx)
		w = maxx - x;
	attr_t old;
	short pair;
	wattr_get(stdscr, &old, &pair, NULL);
	wattrset(stdscr, a);
	mvhline(y, x, ' ', w);
	wattrset(stdscr, old);
}

void ui_putwc(int y, int x, wchar_t wc, char fallback, attr_t a)
{
	if (y < 0 || x < 0 || y >= getmaxy(stdscr) || x >= getmaxx(stdscr))
		return;
	cchar_t cc;
	wchar_t s[2] = { ui_utf8 ? wc : (wchar_t)fallback, L'\0' };
	setcchar(&cc, s, a, PAIR_NUMBER(a), NULL);
	mvadd_wch(y, x, &cc);
}

void ui_clean(char *dst, size_t cap, const char *s)
{
	tt_san_term(dst, cap, s);
}

void ui_bytes(char *dst, size_t cap, double b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	while (b >= 1024 && u < 4)
		b /= 1024, u++;
	snprintf(dst, cap, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}
