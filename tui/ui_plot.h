/*
 * ui_plot.h — a plotting canvas of terminal cells with sub-cell dots.
 *
 * Three glyph sets, from finest to plainest: braille (2x4 dots a cell,
 * U+2800..U+28FF), blocks (2x2 quadrants, U+2596..U+259F) and ASCII (1x2:
 * ' ', '\'', '.', ':').  A UTF-8 locale gets braille, a Linux console
 * (whose font has no braille) blocks, any other locale ASCII.  Each cell
 * keeps the role of the last curve drawn through it, so the caller colours
 * it.  No ncurses here: the canvas is data, and the explorer draws it.
 */
#ifndef TT_UI_PLOT_H
#define TT_UI_PLOT_H

#include <wchar.h>

enum ui_glyphs { UI_GLYPH_BRAILLE, UI_GLYPH_BLOCK, UI_GLYPH_ASCII, UI_GLYPH_N };
extern const char *const ui_glyph_name[UI_GLYPH_N];

typedef struct ui_canvas {
	int w, h;          /* cells */
	int sx, sy;        /* dots per cell across and down */
	int glyphs;        /* enum ui_glyphs */
	unsigned char *dots; /* w*h dot masks */
	int *role;         /* w*h: the role of the last curve in the cell, -1 */
} ui_canvas;

/* 0, or -1 when out of memory (then the canvas is empty and safe to use). */
int ui_canvas_init(ui_canvas *c, int w, int h, int glyphs);
void ui_canvas_free(ui_canvas *c);
/* Dot coordinates: x in [0, w*sx), y in [0, h*sy), y = 0 at the top. */
void ui_canvas_dot(ui_canvas *c, int x, int y, int role);
void ui_canvas_line(ui_canvas *c, int x0, int y0, int x1, int y1, int role);
/* The glyph of cell (x, y) and its role (-1: empty cell, a space). */
wchar_t ui_canvas_glyph(const ui_canvas *c, int x, int y, int *role);

/* The glyph set for this locale and terminal (see above). */
int ui_glyphs_detect(void);

#endif
