/*
 * ui_plot.c — the dot canvas behind the learning curves; see ui_plot.h.
 */
#include "ui_plot.h"

#include <langinfo.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const ui_glyph_name[UI_GLYPH_N] = { "braille", "blocks", "ascii" };

int ui_canvas_init(ui_canvas *c, int w, int h, int glyphs)
{
	static const int sx[UI_GLYPH_N] = { 2, 2, 1 }, sy[UI_GLYPH_N] = { 4, 2, 2 };
	memset(c, 0, sizeof *c);
	if (glyphs < 0 || glyphs >= UI_GLYPH_N)
		glyphs = UI_GLYPH_ASCII;
	c->glyphs = glyphs;
	c->sx = sx[glyphs];
	c->sy = sy[glyphs];
	if (w <= 0 || h <= 0)
		return 0;
	c->dots = calloc((size_t)w * h, 1);
	c->role = malloc((size_t)w * h * sizeof *c->role);
	if (!c->dots || !c->role) {
		ui_canvas_free(c);
		return -1;
	}
	for (int i = 0; i < w * h; i++)
		c->role[i] = -1;
	c->w = w;
	c->h = h;
	return 0;
}

void ui_canvas_free(ui_canvas *c)
{
	free(c->dots);
	free(c->role);
	c->dots = NULL;
	c->role = NULL;
	c->w = c->h = 0;
}

/* The bit of dot (dx, dy) inside a cell, per glyph set.  Braille numbers
 * its dots 1-2-3 down the left column, 4-5-6 down the right, 7 and 8 at
 * the bottom. */
static unsigned dot_bit(int glyphs, int dx, int dy)
{
	static const unsigned char braille[4][2] = {
		{ 0x01, 0x08 }, { 0x02, 0x10 }, { 0x04, 0x20 }, { 0x40, 0x80 } };
	if (glyphs == UI_GLYPH_BRAILLE)
		return braille[dy][dx];
	if (glyphs == UI_GLYPH_BLOCK)
		return 1u << (dy * 2 + dx);   /* UL 1, UR 2, LL 4, LR 8 */
	return 1u << dy;                      /* upper 1, lower 2 */
}

void ui_canvas_dot(ui_canvas *c, int x, int y, int role)
{
	if (x < 0 || y < 0 || x >= c->w * c->sx || y >= c->h * c->sy)
		return;
	int i = (y / c->sy) * c->w + x / c->sx;
	c->dots[i] |= dot_bit(c->glyphs, x % c->sx, y % c->sy);
	c->role[i] = role;
}

void ui_canvas_line(ui_canvas *c, int x0, int y0, int x1, int y1, int role)
{
	/* Bresenham: every dot on the way, so steep segments stay joined */
	int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
	int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
	int e = dx + dy;
	for (int guard = 0; guard < 1 << 16; guard++) {
		ui_canvas_dot(c, x0, y0, role);
		if (x0 == x1 && y0 == y1)
			break;
		int e2 = 2 * e;
		if (e2 >= dy)
			e += dy, x0 += sx;
		if (e2 <= dx)
			e += dx, y0 += sy;
	}
}

wchar_t ui_canvas_glyph(const ui_canvas *c, int x, int y, int *role)
{
	static const wchar_t quad[16] = {
		L' ', 0x2598, 0x259D, 0x2580, 0x2596, 0x258C, 0x259E, 0x259B,
		0x2597, 0x259A, 0x2590, 0x259C, 0x2584, 0x2599, 0x259F, 0x2588 };
	static const wchar_t ascii[4] = { L' ', L'\'', L'.', L':' };
	int i = y * c->w + x;
	unsigned d = c->dots[i];
	*role = d ? c->role[i] : -1;
	if (!d)
		return L' ';
	if (c->glyphs == UI_GLYPH_BRAILLE)
		return (wchar_t)(0x2800 + d);
	if (c->glyphs == UI_GLYPH_BLOCK)
		return quad[d & 15];
	return ascii[d & 3];
}

int ui_glyphs_detect(void)
{
	const char *cs = nl_langinfo(CODESET);
	if (!cs || (strcasecmp(cs, "UTF-8") && strcasecmp(cs, "utf8")))
		return UI_GLYPH_ASCII;
	const char *term = getenv("TERM");
	if (term && strncmp(term, "linux", 5) == 0)
		return UI_GLYPH_BLOCK;
	return UI_GLYPH_BRAILLE;
}
