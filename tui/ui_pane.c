/*
 * ui_pane.c — the six panes and the two overlays; see ui_pane.h.
 *
 * Each draw function reads the model, writes stdscr inside its rectangle
 * and nothing else.  The trial table draws only its visible rows, so a
 * study of 10,000 trials costs what a screenful does; its order is
 * rebuilt (filter, then one qsort) only when the model, the sort or the
 * filter changed.
 */
#include "ui_pane.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ui_draw.h"
#include "ui_plot.h"

const char *const ui_pane_title[UI_NPANES] = {
	"Trials", "Curves", "Ladder", "Memory", "Masks", "Ranks",
};

/* A Unicode string, or its ASCII stand-in outside a UTF-8 locale. */
#define U(utf, ascii) (ui_utf8 ? (utf) : (ascii))

attr_t ui_role(const ui_view *v, int role)
{
	return ui_attr(v->theme, role);
}

/* ---- the trial table: columns, order, selection -------------------------- */

static void col_add(ui_view *v, int kind, int arg, int width, const char *name)
{
	if (v->ncol >= UI_COLS_MAX)
		return;
	ui_col *c = &v->col[v->ncol++];
	c->kind = kind;
	c->arg = arg;
	c->width = width;
	snprintf(c->name, sizeof c->name, "%s", name);
}

static void cols_build(ui_view *v)
{
	const ui_model *m = v->m;
	int before = v->ncol;
	v->ncol = 0;
	col_add(v, UI_C_ID, 0, 7, "ID");
	col_add(v, UI_C_STATE, 0, 9, "STATE");
	col_add(v, UI_C_CMD, 0, 9, "CMD");
	col_add(v, UI_C_RUNG, 0, 5, "RUNG");
	col_add(v, UI_C_DEPTH, 0, 6, "DEPTH");
	for (int k = 0; k < m->nkeyp; k++) {
		int w = (int)strlen(m->keyp[k]) + 2;
		col_add(v, UI_C_PARAM, k, w < 8 ? 8 : w > 12 ? 12 : w, m->keyp[k]);
	}
	/* learned hyperparameters beside the searched ones, marked ~ (they
	 * move): the latest value each trial reported */
	for (int k = 0; k < m->nhname; k++) {
		char n[24];
		snprintf(n, sizeof n, "~%s", m->hname[k]);
		int w = (int)strlen(n) + 1;
		col_add(v, UI_C_HYPER, k, w < 8 ? 8 : w > 12 ? 12 : w, n);
	}
	/* freeze-thaw: the forecast of the final accuracy, mean ± sd, and the
	 * expected improvement, both of the latest decision */
	if (m->have_fc) {
		col_add(v, UI_C_FORECAST, 0, 14, "FORECAST");
		col_add(v, UI_C_EI, 0, 9, "EI");
	}
	if (m->continual) {
		col_add(v, UI_C_ACA, 0, 7, "ACA");
		col_add(v, UI_C_FGT, 0, 7, "FORGET");
	}
	for (int r = 0; r < m->nrungs && r < TT_RUNG_MAX; r++) {
		char n[16];
		snprintf(n, sizeof n, "ACC@%d", r);
		col_add(v, UI_C_ACC, r, 7, n);
		snprintf(n, sizeof n, "#%d", r);
		col_add(v, UI_C_RANK, r, 6, n);
	}
	if (v->sort >= v->ncol)
		v->sort = 0;
	if (before != v->ncol)
		v->order_dirty = 1;
}

/* Missing values (NaN accuracy, no rank) sort last in either direction. */
static int cmp_trials(const void *a, const void *b, void *ctx)
{
	const ui_view *v = ctx;
	const ui_trial *x = &v->m->t[*(const int *)a], *y = &v->m->t[*(const int *)b];
	const ui_col *c = &v->col[v->sort];
	int r = 0, missing = 0;
	switch (c->kind) {
	case UI_C_ID:
		break;
	case UI_C_STATE:
		r = (x->state > y->state) - (x->state < y->state);
		break;
	case UI_C_CMD:
		r = (x->pending > y->pending) - (x->pending < y->pending);
		break;
	case UI_C_RUNG:
	case UI_C_DEPTH:
		r = (x->rung > y->rung) - (x->rung < y->rung);
		break;
	case UI_C_PARAM: {
		double p = x->pval[c->arg], q = y->pval[c->arg];
		if (isnan(p) || isnan(q))
			r = strcmp(x->pstr[c->arg], y->pstr[c->arg]);
		else
			r = (p > q) - (p < q);
		break;
	}
	case UI_C_FORECAST:
	case UI_C_EI: {
		float p = c->kind == UI_C_EI ? x->fei : x->fmu;
		float q = c->kind == UI_C_EI ? y->fei : y->fmu;
		if (isnan(p) != isnan(q))
			missing = isnan(p) ? 1 : -1;
		else if (!isnan(p))
			r = (p > q) - (p < q);
		break;
	}
	case UI_C_HYPER: {
		float p = x->hval[c->arg], q = y->hval[c->arg];
		if (isnan(p) != isnan(q))
			missing = isnan(p) ? 1 : -1;
		else if (!isnan(p))
			r = (p > q) - (p < q);
		break;
	}
	case UI_C_ACA:
	case UI_C_FGT: {
		double p = c->kind == UI_C_ACA ? x->aca : x->fgt;
		double q = c->kind == UI_C_ACA ? y->aca : y->fgt;
		if (isnan(p) != isnan(q))
			missing = isnan(p) ? 1 : -1;
		else if (!isnan(p))
			r = (p > q) - (p < q);
		break;
	}
	case UI_C_ACC: {
		float p = x->acc[c->arg], q = y->acc[c->arg];
		if (isnan(p) != isnan(q))
			missing = isnan(p) ? 1 : -1;
		else if (!isnan(p))
			r = (p > q) - (p < q);
		break;
	}
	case UI_C_RANK: {
		int p = x->rank[c->arg], q = y->rank[c->arg];
		if (!p != !q)
			missing = !p ? 1 : -1;
		else
			r = (p > q) - (p < q);
		break;
	}
	}
	if (missing)
		return missing;
	if (v->sort_desc)
		r = -r;
	return r ? r : (x->id > y->id) - (x->id < y->id);
}

/* Whether t matches the filter: a case-insensitive substring of its id,
 * state or parameters. */
static int trial_matches(const ui_view *v, const ui_trial *t)
{
	if (!v->filter[0])
		return 1;
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)t->id);
	return strcasestr(id, v->filter) || strcasestr(tt_tstate_name(t->state), v->filter) ||
	       strcasestr(t->params, v->filter) ||
	       (t->pending && strcasestr(t->pending_verb, v->filter));
}

void ui_trials_update(ui_view *v)
{
	cols_build(v);
	if (!v->order_dirty && v->order_gen == v->m->gen && v->order)
		return;
	const ui_model *m = v->m;
	if (v->caporder < m->nt || !v->order) {
		int cap = m->nt + 256;
		int *o = realloc(v->order, (size_t)cap * sizeof *o);
		if (!o)
			return;
		v->order = o;
		v->caporder = cap;
	}
	v->norder = 0;
	v->ntagged = 0;
	for (int i = 0; i < m->nt; i++) {
		v->ntagged += m->t[i].tagged;
		if (trial_matches(v, &m->t[i]))
			v->order[v->norder++] = i;
	}
	if (v->norder > 1)
		qsort_r(v->order, (size_t)v->norder, sizeof *v->order, cmp_trials, v);
	v->order_gen = m->gen;
	v->order_dirty = 0;
	/* keep the selection on the same trial */
	int at = -1;
	for (int i = 0; i < v->norder && at < 0; i++)
		if (m->t[v->order[i]].id == v->sel_id)
			at = i;
	if (at < 0)
		at = v->sel < 0 ? 0 : v->sel < v->norder ? v->sel : v->norder - 1;
	ui_trials_goto(v, at);
}

int ui_trials_page(const ui_view *v)
{
	int n = v->pane[UI_P_TRIALS].h - 2;
	return n > 1 ? n : 1;
}

void ui_trials_goto(ui_view *v, int at)
{
	if (at >= v->norder)
		at = v->norder - 1;
	if (at < 0)
		at = v->norder ? 0 : -1;
	v->sel = at;
	v->sel_id = at >= 0 ? v->m->t[v->order[at]].id : 0;
	ui_pane *p = &v->pane[UI_P_TRIALS];
	int page = ui_trials_page(v);
	if (at >= 0 && at < p->top)
		p->top = at;
	if (at >= p->top + page)
		p->top = at - page + 1;
	if (p->top > v->norder - page)
		p->top = v->norder - page;
	if (p->top < 0)
		p->top = 0;
}

void ui_trials_move(ui_view *v, int delta)
{
	ui_trials_goto(v, (v->sel < 0 ? 0 : v->sel) + delta);
}

ui_trial *ui_trials_selected(const ui_view *v)
{
	return v->sel >= 0 && v->sel < v->norder ? &v->m->t[v->order[v->sel]] : NULL;
}

/* ---- headings ---------------------------------------------------------------- */

static void heading(ui_view *v, int p, const char *info)
{
	const ui_pane *pn = &v->pane[p];
	attr_t a = ui_role(v, p == v->focus ? UI_PANE_FOCUS : UI_PANE_TITLE);
	ui_fill(pn->y, pn->x, pn->w, a);
	/* a continual study's ladder pane is its continual pane */
	const char *title = p == UI_P_LADDER && v->m->continual ? "Continual" : ui_pane_title[p];
	int n = ui_putf(pn->y, pn->x, pn->w, a, " %s ", title);
	if (info && *info)
		ui_put(pn->y, pn->x + n + 1, pn->w - n - 2, a, info);
}

/* ---- trials ------------------------------------------------------------- */

/* The columns s takes on the screen, as ui_put draws it (a byte that
 * does not decode, or a control character, is one '?'). */
static int text_cols(const char *s)
{
	mbstate_t st;
	memset(&st, 0, sizeof st);
	int cols = 0;
	while (*s) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, strlen(s), &st);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&st, 0, sizeof st);
			cols++;
			s++;
			continue;
		}
		int w = wcwidth(wc);
		cols += w > 0 ? w : 1;
		s += n;
	}
	return cols;
}

static const char *state_text(int st)
{
	return st == UI_PAUSED ? U("\u2016PAUSED", "||PAUSED") : tt_tstate_name(st);
}

static void trial_cell(const ui_view *v, const ui_trial *t, const ui_col *c, char *s,
                       size_t cap, int *role)
{
	const ui_model *m = v->m;
	*role = -1;
	switch (c->kind) {
	case UI_C_ID:
		snprintf(s, cap, "%s%*lld", t->tagged ? "*" : " ", c->width - 2, (long long)t->id);
		break;
	case UI_C_STATE:
		snprintf(s, cap, "%s", state_text(t->state));
		*role = UI_STATE_QUEUED + t->state;
		break;
	case UI_C_CMD:
		snprintf(s, cap, "%s%s", t->pending ? t->pending_verb : "",
		         t->pending ? U("\u2026", "..") : "");
		*role = UI_PENDING;
		break;
	case UI_C_RUNG:
		snprintf(s, cap, "%4d", t->rung);
		break;
	case UI_C_DEPTH:
		if (t->rung < m->nrungs && m->have_cfg)
			snprintf(s, cap, "%2d/%-2d", m->rungdef[t->rung].trainable, m->nstages);
		else
			snprintf(s, cap, "  -");
		break;
	case UI_C_PARAM:
		snprintf(s, cap, "%-*s", c->width - 1, t->pstr[c->arg]);
		break;
	case UI_C_HYPER:
		if (isnan(t->hval[c->arg]))
			snprintf(s, cap, "%-*s", c->width - 1, "-");
		else if (snprintf(s, cap, "%-*.3g", c->width - 1, t->hval[c->arg]) >=
		         c->width)
			/* 0.000123 and 1.23e+03 do not fit: fewer digits */
			snprintf(s, cap, "%-*.1e", c->width - 1, t->hval[c->arg]);
		break;
	case UI_C_FORECAST:
		if (isnan(t->fmu))
			snprintf(s, cap, "%-*s", c->width - 1, "-");
		else
			snprintf(s, cap, "%.3f%s%.3f", t->fmu, U("\u00b1", "+-"),
			         isnan(t->fsd) ? 0.0 : t->fsd);
		break;
	case UI_C_EI:
		if (isnan(t->fei))
			snprintf(s, cap, "%-*s", c->width - 1, "-");
		else if (snprintf(s, cap, "%-*.3g", c->width - 1, t->fei) >= c->width)
			snprintf(s, cap, "%-*.1e", c->width - 1, t->fei);
		break;
	case UI_C_ACC:
		if (isnan(t->acc[c->arg]))
			snprintf(s, cap, "%6s", "-");
		else
			snprintf(s, cap, "%6.4f", t->acc[c->arg]);
		break;
	case UI_C_ACA:
	case UI_C_FGT: {
		double f = c->kind == UI_C_ACA ? t->aca : t->fgt;
		if (isnan(f))
			snprintf(s, cap, "%6s", "-");
		else
			snprintf(s, cap, "%6.1f", 100 * f);
		break;
	}
	case UI_C_RANK:
		if (t->rank[c->arg])
			snprintf(s, cap, "%5d", t->rank[c->arg]);
		else
			snprintf(s, cap, "%5s", "-");
		break;
	}
}

static void draw_trials(ui_view *v)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_TRIALS];
	char info[256];
	int n = snprintf(info, sizeof info, "%d of %d, sorted by %s %s", v->norder, m->nt,
	                 v->col[v->sort].name, v->sort_desc ? U("\u25bc", "desc") : U("\u25b2", "asc"));
	if (v->filter[0])
		n += snprintf(info + n, sizeof info - (size_t)n, ", filter \"%.40s\"", v->filter);
	if (v->ntagged)
		snprintf(info + n, sizeof info - (size_t)n, ", %d tagged", v->ntagged);
	char clean[256];
	ui_clean(clean, sizeof clean, info);
	heading(v, UI_P_TRIALS, clean);
	pn->items = v->norder;
	int y = pn->y + 1, x = pn->x;
	ui_fill(y, x, pn->w, ui_role(v, UI_TABLE_HEADER));
	for (int k = 0; k < v->ncol && x < pn->x + pn->w; k++) {
		const ui_col *c = &v->col[k];
		attr_t a = ui_role(v, k == v->sort ? UI_TABLE_SORT : UI_TABLE_HEADER);
		/* a name gets the column's width less one: the last column stays
		 * blank, so that two names never run into each other; a longer
		 * one is cut and ends in a marker ("gate-stren~") */
		int room = c->width - 1, edge = pn->x + pn->w - x;
		if (text_cols(c->name) > room) {
			ui_put(y, x, room - 1 < edge ? room - 1 : edge, a, c->name);
			if (room - 1 < edge)
				ui_putwc(y, x + room - 1, 0x2026, '~', a);
		} else {
			ui_putf(y, x, room < edge ? room : edge, a,
			        c->kind == UI_C_ID ? "%*s" : "%-*s", room, c->name);
		}
		x += c->width;
	}
	if (!m->nt) {
		ui_put(y + 1, pn->x + 1, pn->w - 2, ui_role(v, UI_NORMAL),
		       m->have_study ? "no trials yet" : "waiting for the study to start...");
		return;
	}
	int page = ui_trials_page(v);
	for (int r = 0; r < page && pn->top + r < v->norder; r++) {
		int i = pn->top + r;
		const ui_trial *t = &m->t[v->order[i]];
		int sel = i == v->sel;
		attr_t base = ui_role(v, sel ? UI_SELECTED : t->tagged ? UI_TAGGED : UI_NORMAL);
		int yy = y + 1 + r;
		ui_fill(yy, pn->x, pn->w, base);
		x = pn->x;
		for (int k = 0; k < v->ncol && x < pn->x + pn->w; k++) {
			const ui_col *c = &v->col[k];
			char s[64];
			int role;
			trial_cell(v, t, c, s, sizeof s, &role);
			attr_t a = base;
			/* a paused trial is loud even on the cursor row */
			if (role >= 0 && (!sel || t->state == UI_PAUSED))
				a = ui_role(v, role) | (sel ? A_BOLD : 0);
			int w = c->width - 1 < pn->x + pn->w - x ? c->width - 1 : pn->x + pn->w - x;
			ui_put(yy, x, w, a, s);
			x += c->width;
		}
	}
}

/* ---- curves ------------------------------------------------------------- */

static const char *const metric_name[UI_NMETRICS] = { "val acc", "val loss", "train loss" };

/* The points of curve c that the current metric plots: its highest rung
 * with such points.  xs/ys are filled, n returned. */
static int curve_points(const ui_view *v, const ui_curve *c, double *xs, double *ys,
                        int cap, int *rung)
{
	int want_val = v->metric != UI_M_TRAIN_LOSS, hr = -1, n = 0;
	for (int i = 0; i < c->n; i++)
		if (c->p[i].val == want_val && c->p[i].rung > hr)
			hr = c->p[i].rung;
	*rung = hr;
	for (int i = 0; i < c->n && n < cap; i++) {
		const ui_point *p = &c->p[i];
		if (p->val != want_val || p->rung != hr)
			continue;
		double y = v->metric == UI_M_VAL_ACC ? p->acc : p->loss;
		if (!isfinite(y) || (v->logy && y <= 0))
			continue;
		xs[n] = v->by_epoch ? p->epoch : (double)p->step;
		ys[n] = v->logy ? log10(y) : y;
		n++;
	}
	return n;
}

#define CURVE_PTS 4096

/* The points a curves frame plots, one row per curve (one pane: no need
 * for a copy per caller). */
static double plot_xs[UI_TOPK + 1][CURVE_PTS], plot_ys[UI_TOPK + 1][CURVE_PTS];

/* The selected trial's forecast band: from its last point (x0, y0) out to
 * the top budget x1, where it spans lo..hi (mean ± sd). */
static struct {
	int on;
	double x0, y0, x1, lo, hi;
} plot_band;

/* The plot area of the curves pane: curves k = 0..n-1 of np[k] points
 * (xs[k], ys[k]) in role UI_CURVE1 + k over [x0, x1] x [y0, y1], the
 * first drawn last (on top), with the axes, ylab at the top, middle and
 * bottom rows and x0, x1 and xunit under them. */
static void plot_area(ui_view *v, int n, const int *np, double xs[][CURVE_PTS],
                      double ys[][CURVE_PTS], double x0, double x1, double y0,
                      double y1, char ylab[3][16], const char *xunit)
{
	ui_pane *pn = &v->pane[UI_P_CURVES];
	int lab = 7, cw = pn->w - lab - 1, ch = pn->h - 3;
	ui_canvas cv;
	ui_canvas_init(&cv, cw, ch, v->glyphs);
	int W = cw * cv.sx - 1, H = ch * cv.sy - 1;
	if (plot_band.on) {
		/* a wedge of dots widening from the last point to mean ± sd at
		 * the top budget, every other dot column, under the curves; its
		 * edges in the selected curve's colour */
		int X0 = (int)lround((plot_band.x0 - x0) / (x1 - x0) * W);
		int X1 = (int)lround((plot_band.x1 - x0) / (x1 - x0) * W);
		int Y0 = (int)lround((1 - (plot_band.y0 - y0) / (y1 - y0)) * H);
		int Ylo = (int)lround((1 - (plot_band.lo - y0) / (y1 - y0)) * H);
		int Yhi = (int)lround((1 - (plot_band.hi - y0) / (y1 - y0)) * H);
		for (int X = X0 + 1; X <= X1; X += 2) {
			double f = X1 > X0 ? (double)(X - X0) / (X1 - X0) : 1;
			int a = (int)lround(Y0 + f * (Yhi - Y0)), b = (int)lround(Y0 + f * (Ylo - Y0));
			ui_canvas_line(&cv, X, a, X, b, UI_AXIS);
		}
		ui_canvas_line(&cv, X0, Y0, X1, Yhi, UI_CURVE1);
		ui_canvas_line(&cv, X0, Y0, X1, Ylo, UI_CURVE1);
	}
	for (int k = n - 1; k >= 0; k--) {
		int px = -1, py = -1;
		for (int i = 0; i < np[k]; i++) {
			int X = (int)lround((xs[k][i] - x0) / (x1 - x0) * W);
			int Y = (int)lround((1 - (ys[k][i] - y0) / (y1 - y0)) * H);
			if (px >= 0)
				ui_canvas_line(&cv, px, py, X, Y, UI_CURVE1 + k);
			else
				ui_canvas_dot(&cv, X, Y, UI_CURVE1 + k);
			px = X, py = Y;
		}
	}
	int top = pn->y + 2, left = pn->x + lab + 1;
	attr_t ax = ui_role(v, UI_AXIS);
	for (int r = 0; r < ch; r++) {
		ui_putwc(top + r, left - 1, 0x2502, '|', ax);
		for (int c = 0; c < cw; c++) {
			int role;
			wchar_t g = ui_canvas_glyph(&cv, c, r, &role);
			if (role >= 0)
				ui_putwc(top + r, left + c, g, (char)g, ui_role(v, role));
		}
	}
	ui_canvas_free(&cv);
	/* y labels: top, middle, bottom */
	for (int k = 0; k < 3; k++) {
		int r = k == 0 ? 0 : k == 1 ? ch / 2 : ch - 1;
		ui_putf(top + r, pn->x, lab, ax, "%6s", ylab[k]);
	}
	/* x axis and labels */
	int by = top + ch;
	ui_putwc(by, left - 1, 0x2514, '+', ax);
	for (int c = 0; c < cw; c++)
		ui_putwc(by, left + c, 0x2500, '-', ax);
	char xl[32];
	snprintf(xl, sizeof xl, "%.4g %s", x1, xunit);
	ui_putf(by, left, 6, ax, "%.4g", x0);
	ui_put(by, left + cw - (int)strlen(xl), (int)strlen(xl), ax, xl);
}

/* The y labels of plot_area for values y0..y1 (log10 of them when logy)
 * on ch rows: top, middle, bottom row. */
static void axis_labels(char lab[3][16], double y0, double y1, int ch, int logy)
{
	for (int k = 0; k < 3; k++) {
		int r = k == 0 ? 0 : k == 1 ? ch / 2 : ch - 1;
		double val = y1 - (y1 - y0) * (ch > 1 ? (double)r / (ch - 1) : 0);
		snprintf(lab[k], sizeof lab[k], "%6.3g", logy ? pow(10, val) : val);
	}
}

/* Room around [*y0, *y1] so that no curve runs along the frame. */
static void pad_range(double *y0, double *y1)
{
	if (*y1 - *y0 < 1e-9 * (fabs(*y0) + fabs(*y1)) || *y1 - *y0 < 1e-300) {
		double d = fabs(*y0) > 1e-300 ? fabs(*y0) * 0.05 : 0.5;
		*y0 -= d;
		*y1 += d;
	} else {
		double pad = 0.05 * (*y1 - *y0);
		*y0 -= pad;
		*y1 += pad;
	}
}

/*
 * The selected trial's learned hyperparameters (the hyper table) against
 * steps at its highest rung with points, a curve per name.  One name is
 * drawn on its own axis, labelled with its values; several, whose scales
 * differ (a weight decay of 3e-4, an angle of 30 degrees), are each drawn
 * across the full height of the plot, the axis labelled min and max and
 * each name's range in the legend.  l takes log10 of the values (points
 * <= 0 left out).
 */
static void draw_hyper(ui_view *v)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_CURVES];
	const ui_trial *sel = ui_trials_selected(v);
	const ui_hpath *hp = &m->hp;
	int hr = -1, nn = m->nhname < UI_TOPK + 1 ? m->nhname : UI_TOPK + 1;
	int have = sel && hp->trial == sel->id;
	for (int i = 0; have && i < hp->n; i++)
		if (hp->p[i].rung > hr)
			hr = hp->p[i].rung;
	char info[160];
	if (sel)
		snprintf(info, sizeof info, "learned hyperparameters of #%lld vs steps%s, %s",
		         (long long)sel->id, v->logy ? ", log scale" : "",
		         ui_glyph_name[v->glyphs]);
	else
		snprintf(info, sizeof info, "learned hyperparameters");
	heading(v, UI_P_CURVES, info);
	int cw = pn->w - 8, ch = pn->h - 3;
	if (cw < 8 || ch < 2) {
		ui_put(pn->y + 1, pn->x + 1, pn->w - 1, ui_role(v, UI_NORMAL), "(too small)");
		return;
	}
	if (!sel || hr < 0) {
		ui_put(pn->y + 1, pn->x + 1, pn->w - 2, ui_role(v, UI_NORMAL),
		       !sel ? "no trial selected" :
		       "no learned hyperparameters in this trial (EvoGrad reports them)");
		return;
	}
	double (*xs)[CURVE_PTS] = plot_xs, (*ys)[CURVE_PTS] = plot_ys;
	int np[UI_TOPK + 1] = {0};
	double lo[UI_TOPK + 1], hi[UI_TOPK + 1], last[UI_TOPK + 1];
	double x1 = 1;
	int drawn = 0;
	for (int k = 0; k < nn; k++) {
		lo[k] = INFINITY, hi[k] = -INFINITY, last[k] = NAN;
		for (int i = 0; i < hp->n && np[k] < CURVE_PTS; i++) {
			const ui_hpoint *p = &hp->p[i];
			if (p->name != k || p->rung != hr)
				continue;
			last[k] = p->value;
			if (!isfinite(p->value) || (v->logy && p->value <= 0))
				continue;
			double y = v->logy ? log10(p->value) : p->value;
			xs[k][np[k]] = (double)p->step;
			ys[k][np[k]++] = y;
			lo[k] = y < lo[k] ? y : lo[k];
			hi[k] = y > hi[k] ? y : hi[k];
			x1 = p->step > x1 ? (double)p->step : x1;
		}
		drawn += np[k] > 0;
	}
	/* legend: name, latest value, range (as values, not logs) */
	int lx = pn->x + 1, ly = pn->y + 1;
	for (int k = 0; k < nn && lx < pn->x + pn->w - 4; k++) {
		double a = v->logy ? pow(10, lo[k]) : lo[k], b = v->logy ? pow(10, hi[k]) : hi[k];
		char s[160];
		if (np[k] && drawn > 1)
			snprintf(s, sizeof s, "%s%s %.4g [%.3g..%.3g] ", U("●", "*"),
			         m->hname[k], last[k], a, b);
		else
			snprintf(s, sizeof s, "%s%s %.4g ", U("●", "*"), m->hname[k], last[k]);
		lx += ui_put(ly, lx, pn->x + pn->w - lx, ui_role(v, UI_CURVE1 + k), s);
	}
	if (!drawn) {
		ui_put(ly + 1, pn->x + 1, pn->w - 2, ui_role(v, UI_NORMAL),
		       "no finite values to draw");
		return;
	}
	char lab[3][16];
	double y0 = 0, y1 = 1;
	if (drawn == 1) {
		for (int k = 0; k < nn; k++)
			if (np[k])
				y0 = lo[k], y1 = hi[k];
		pad_range(&y0, &y1);
		axis_labels(lab, y0, y1, ch, v->logy);
	} else {
		/* each curve over its own range, mapped onto [0.05, 0.95] */
		for (int k = 0; k < nn; k++) {
			double a = lo[k], b = hi[k];
			pad_range(&a, &b);
			for (int i = 0; i < np[k]; i++)
				ys[k][i] = (ys[k][i] - a) / (b - a);
		}
		snprintf(lab[0], sizeof lab[0], "max");
		snprintf(lab[1], sizeof lab[1], " ");
		snprintf(lab[2], sizeof lab[2], "min");
	}
	plot_area(v, nn, np, xs, ys, 0, x1, y0, y1, lab, "steps");
}

static void draw_curves(ui_view *v)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_CURVES];
	if (v->hyper) {
		draw_hyper(v);
		return;
	}
	char info[96];
	snprintf(info, sizeof info, "%s vs %s%s, %s", metric_name[v->metric],
	         v->by_epoch ? "epochs" : "steps", v->logy ? ", log scale" : "",
	         ui_glyph_name[v->glyphs]);
	heading(v, UI_P_CURVES, info);
	int lab = 7, cw = pn->w - lab - 1, ch = pn->h - 3;
	if (cw < 8 || ch < 2) {
		ui_put(pn->y + 1, pn->x + 1, pn->w - 1, ui_role(v, UI_NORMAL), "(too small)");
		return;
	}
	int64_t ids[UI_TOPK + 1];
	int nid = 0;
	const ui_trial *sel = ui_trials_selected(v);
	if (sel)
		ids[nid++] = sel->id;
	for (int k = 0; k < m->ntop && nid < UI_TOPK + 1; k++)
		if (!sel || m->top[k] != sel->id)
			ids[nid++] = m->top[k];
	double (*xs)[CURVE_PTS] = plot_xs, (*ys)[CURVE_PTS] = plot_ys;
	int np[UI_TOPK + 1], rung[UI_TOPK + 1];
	double x0 = 0, x1 = 1, y0 = INFINITY, y1 = -INFINITY;
	int any = 0;
	for (int k = 0; k < nid; k++) {
		const ui_curve *c = ui_model_curve(m, ids[k]);
		np[k] = c ? curve_points(v, c, xs[k], ys[k], CURVE_PTS, &rung[k]) : 0;
		for (int i = 0; i < np[k]; i++) {
			any = 1;
			if (xs[k][i] > x1)
				x1 = xs[k][i];
			if (ys[k][i] < y0)
				y0 = ys[k][i];
			if (ys[k][i] > y1)
				y1 = ys[k][i];
		}
	}
	/* freeze-thaw: the selected trial's forecast of its final accuracy as
	 * a band after its last point, out to the top budget */
	plot_band.on = 0;
	if (sel && np[0] > 0 && !isnan(sel->fmu) && v->metric == UI_M_VAL_ACC && !v->logy &&
	    m->have_cfg && m->nrungs > 0) {
		const ui_curve *c = ui_model_curve(m, ids[0]);
		double top = m->rungdef[m->nrungs - 1].epochs, le = 0;
		for (int i = 0; c && i < c->n; i++)
			if (c->p[i].val && c->p[i].rung == rung[0])
				le = c->p[i].epoch;
		double xl = xs[0][np[0] - 1];
		double xe = v->by_epoch ? top : le > 0 ? xl * top / le : xl;
		double sd = isnan(sel->fsd) ? 0 : sel->fsd;
		if (xe > xl) {
			plot_band.on = 1;
			plot_band.x0 = xl;
			plot_band.y0 = ys[0][np[0] - 1];
			plot_band.x1 = xe;
			plot_band.lo = sel->fmu - sd;
			plot_band.hi = sel->fmu + sd;
			if (xe > x1)
				x1 = xe;
			if (plot_band.lo < y0)
				y0 = plot_band.lo;
			if (plot_band.hi > y1)
				y1 = plot_band.hi;
		}
	}
	/* legend */
	int lx = pn->x + 1, ly = pn->y + 1;
	for (int k = 0; k < nid && lx < pn->x + pn->w - 4; k++) {
		attr_t a = ui_role(v, UI_CURVE1 + k);
		double last = np[k] ? ys[k][np[k] - 1] : NAN;
		if (v->logy && np[k])
			last = pow(10, last);
		char s[64];
		if (np[k])
			snprintf(s, sizeof s, "%s#%lld r%d %.4g%s ", U("\u25cf", "*"), (long long)ids[k],
			         rung[k], last, k == 0 && sel ? " (sel)" : "");
		else
			snprintf(s, sizeof s, "%s#%lld - ", U("\u25cf", "*"), (long long)ids[k]);
		lx += ui_put(ly, lx, pn->x + pn->w - lx, a, s);
		if (k == 0 && plot_band.on) {
			snprintf(s, sizeof s, "forecast %.3f%s%.3f ", sel->fmu, U("\u00b1", "+-"),
			         isnan(sel->fsd) ? 0.0 : sel->fsd);
			lx += ui_put(ly, lx, pn->x + pn->w - lx, a, s);
		}
	}
	if (!any) {
		ui_put(ly + 1, pn->x + 1, pn->w - 2, ui_role(v, UI_NORMAL),
		       nid ? "no points yet (a point per epoch, train loss every 20 steps)"
		           : "no trial selected");
		return;
	}
	if (y1 - y0 < 1e-9) {
		y0 -= 0.5 * (fabs(y0) > 1e-9 ? fabs(y0) * 0.1 : 1);
		y1 += 0.5 * (fabs(y1) > 1e-9 ? fabs(y1) * 0.1 : 1);
	} else {
		double pad = 0.05 * (y1 - y0);
		y0 -= pad;
		y1 += pad;
	}
	char ylab[3][16];
	axis_labels(ylab, y0, y1, ch, v->logy);
	plot_area(v, nid, np, xs, ys, x0, x1, y0, y1, ylab, v->by_epoch ? "ep" : "steps");
}

/* ---- continual ---------------------------------------------------------- */

/* The heat role of an accuracy. */
static int heat_role(double acc)
{
	return acc >= 0.9 ? UI_HEAT_HIGH : acc >= 0.7 ? UI_HEAT_MID : UI_HEAT_LOW;
}

/* In place of the ladder in a continual study: the selected trial's
 * accuracy matrix a[i][j] (row: after experience i; column: task j) as a
 * heat map of percentages, then forgetting per task, ACA and the mean
 * forgetting. */
static void draw_continual(ui_view *v)
{
	const ui_model *m = v->m;
	const ui_detail *d = &m->det;
	ui_pane *pn = &v->pane[UI_P_LADDER];
	char info[96];
	snprintf(info, sizeof info, "%d experiences, accuracy %% by task", m->continual);
	heading(v, UI_P_LADDER, info);
	attr_t n = ui_role(v, UI_NORMAL), hd = ui_role(v, UI_TABLE_HEADER);
	int T = m->continual < TT_RUNG_MAX ? m->continual : TT_RUNG_MAX;
	if (!v->sel_id || d->trial != v->sel_id) {
		ui_put(pn->y + 1, pn->x + 1, pn->w - 2, n, "no trial selected");
		return;
	}
	if (!d->cl_rows) {
		ui_putf(pn->y + 1, pn->x + 1, pn->w - 2, n,
		        "trial %lld: no experience finished yet", (long long)d->trial);
		return;
	}
	int y = pn->y + 1, bottom = pn->y + pn->h;
	int x = pn->x + ui_putf(y, pn->x, pn->w, hd, "#%-6lld", (long long)d->trial);
	for (int j = 0; j < T && x + 6 <= pn->x + pn->w; j++)
		x += ui_putf(y, x, 6, hd, " T%-3d ", j + 1);
	y++;
	/* the rows that fit, the latest kept when not all do: 3 lines below */
	int room = bottom - y - 3, first = d->cl_rows > room ? d->cl_rows - room : 0;
	for (int i = first; i < d->cl_rows && y < bottom; i++, y++) {
		x = pn->x + ui_putf(y, pn->x, pn->w, ui_role(v, UI_RUNG), "after%-2d", i + 1);
		for (int j = 0; j <= i && x + 6 <= pn->x + pn->w; j++) {
			double a = d->cl[i * TT_RUNG_MAX + j];
			char c[16];
			snprintf(c, sizeof c, "%5.1f ", 100 * a);
			x += ui_put(y, x, 6, isnan(a) ? n : ui_role(v, heat_role(a)), c);
		}
	}
	if (y < bottom) {
		x = pn->x + ui_put(y, pn->x, pn->w, hd, "forget ");
		for (int j = 0; j + 1 < d->cl_rows && x + 6 <= pn->x + pn->w; j++) {
			char c[16];
			snprintf(c, sizeof c, "%5.1f ", 100 * d->cl_fgt[j]);
			x += ui_put(y, x, 6, d->cl_fgt[j] >= 0.1 ? ui_role(v, UI_HEAT_LOW) : n, c);
		}
		y++;
	}
	const ui_trial *t = ui_model_trial(m, d->trial);
	if (y < bottom && t)
		ui_putf(y, pn->x, pn->w, n, "ACA %.1f%%  forgetting %.1f points  (%d of %d)",
		        100 * t->aca, 100 * t->fgt, d->cl_rows, m->continual);
}

/* ---- ladder ------------------------------------------------------------- */

static char state_letter(int st)
{
	return st >= 0 && st < TT_T_COUNT ? tt_tstates[st].letter : '?';
}

static void draw_ladder(ui_view *v)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_LADDER];
	char info[96] = "";
	int eta = m->have_cfg ? m->cfg.eta : 0;
	if (eta)
		snprintf(info, sizeof info, "top 1/%d of a rung is promoted", eta);
	heading(v, UI_P_LADDER, info);
	if (!m->nrungs) {
		ui_put(pn->y + 1, pn->x + 1, pn->w - 2, ui_role(v, UI_NORMAL), "no rungs yet");
		return;
	}
	int lines = pn->h - 1;
	int rows = m->nrungs < lines - 1 ? m->nrungs : lines - 1;
	double now = ui_now();
	attr_t rl = ui_role(v, UI_RUNG);
	ui_putf(pn->y + 1, pn->x, pn->w, ui_role(v, UI_TABLE_HEADER), "%-*s",
	        pn->w, "rung depth  ep  in/cap  best trials (a letter per state)");
	for (int k = 0; k < rows; k++) {
		int r = m->nrungs - 1 - k; /* the top rung first, like a ladder */
		int y = pn->y + 2 + k;
		int in = 0, res = 0;
		float best = NAN;
		for (int i = 0; i < m->nt; i++) {
			const ui_trial *t = &m->t[i];
			in += t->rung >= r && (t->rung > r || t->state != UI_Q || !isnan(t->acc[r]) || r == 0);
			if (!isnan(t->acc[r])) {
				res++;
				if (isnan(best) || t->acc[r] > best)
					best = t->acc[r];
			}
		}
		char cap[16] = "-";
		if (m->have_cfg && eta) {
			double c = ceil(m->cfg.max_trials / pow(eta, r));
			snprintf(cap, sizeof cap, "%.0f", c < 1 ? 1 : c);
		}
		char depth[16] = " -", ep[16] = " -";
		if (m->have_cfg && r < m->nrungs) {
			snprintf(depth, sizeof depth, "%d/%d", m->rungdef[r].trainable, m->nstages);
			snprintf(ep, sizeof ep, "%.3g", m->rungdef[r].epochs);
		}
		char bs[16] = "  -  ";
		if (!isnan(best))
			snprintf(bs, sizeof bs, "%.3f", best);
		int x = pn->x;
		char incap[24];
		snprintf(incap, sizeof incap, "%d/%s", in, cap);
		x += ui_putf(y, x, pn->w, rl, "r%-3d %-5s %3s %7s %5s ", r, depth, ep, incap,
		             bs + (bs[0] == '0'));
		/* cells: the trials standing at this rung now */
		int room = pn->x + pn->w - x, shown = 0, more = 0;
		for (int i = 0; i < m->nt; i++) {
			const ui_trial *t = &m->t[i];
			if (t->rung != r)
				continue;
			if (shown >= room - 4 && room > 4) {
				more++;
				continue;
			}
			if (room <= 4) {
				more++;
				continue;
			}
			int role = now - t->promoted_at < 3 && t->promoted_at > 0 ? UI_PROMOTED
			                                                          : UI_STATE_QUEUED + t->state;
			attr_t a = ui_role(v, role);
			if (t->id == v->sel_id)
				a |= A_REVERSE;
			char s[2] = { state_letter(t->state), 0 };
			ui_put(y, x + shown, 1, a, s);
			shown++;
		}
		(void)res;
		if (more)
			ui_putf(y, x + shown, 5, ui_role(v, UI_NORMAL), "+%d", more);
	}
}

/* ---- memory ------------------------------------------------------------- */

/* The kind of a layer_memory row (base/memkind.h); an unknown one counts
 * as workspace. */
static int kind_index(const char *k)
{
	int i = tt_memkind_find(k);
	return i >= 0 ? i : TT_MEM_WORK;
}

static wchar_t kind_glyph(int k)
{
	static const wchar_t g[TT_MEM_KINDS] = { 0x2588, 0x2593, 0x2592, 0x2591, 0x2584, 0x2580 };
	return g[k];
}

/* Per-stage bytes by kind from layer_memory rows. */
typedef struct stage_mem {
	char name[32];
	int frozen;
	double b[TT_MEM_KINDS], total;
} stage_mem;

/* The bytes of kind k in the rows that belong to the model as a whole
 * (stage TT_MEM_MODEL: the workspace, a method's own buffers), or -1 when
 * there is no such row (a study stored before the runner wrote them). */
static double model_bytes(const db_layer_mem *r, int n, int k)
{
	double b = -1;
	for (int i = 0; i < n; i++)
		if (r[i].stage == TT_MEM_MODEL && kind_index(r[i].kind) == k)
			b = (b < 0 ? 0 : b) + (double)r[i].bytes;
	return b;
}

/* After the stages' bars, one bar per kind the model holds as a whole
 * (per_stage 0): the workspace when stored, a method's buffers when it
 * has any.  Appended to s from s[ns]; returns the new count. */
static int model_rows(const db_layer_mem *r, int n, stage_mem *s, int ns, double *max)
{
	for (int k = 0; k < TT_MEM_KINDS && ns < TT_MEM_MAX_STAGES; k++) {
		double b = tt_memkinds[k].per_stage ? -1 : model_bytes(r, n, k);
		if (b < 0 || (k != TT_MEM_WORK && b == 0))
			continue;
		memset(&s[ns], 0, sizeof s[ns]);
		snprintf(s[ns].name, sizeof s[ns].name, "%s", tt_memkinds[k].name);
		s[ns].b[k] = s[ns].total = b;
		if (b > *max)
			*max = b;
		ns++;
	}
	return ns;
}

/* The stages' rows, the model's own left out (model_bytes). */
static int stages_of(const db_layer_mem *r, int n, stage_mem *s, int cap)
{
	int ns = 0;
	for (int i = 0; i < n; i++) {
		int st = r[i].stage;
		if (st < 0 || st >= cap)
			continue;
		while (ns <= st) {
			memset(&s[ns], 0, sizeof s[ns]);
			ns++;
		}
		snprintf(s[st].name, sizeof s[st].name, "%s", r[i].name);
		s[st].frozen |= r[i].frozen;
		s[st].b[kind_index(r[i].kind)] += (double)r[i].bytes;
		s[st].total += (double)r[i].bytes;
	}
	return ns;
}

static double total_of(const stage_mem *s, int n)
{
	double t = 0;
	for (int i = 0; i < n; i++)
		t += s[i].total;
	return t;
}

static void draw_memory(ui_view *v)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_MEMORY];
	const ui_trial *t = ui_trials_selected(v);
	const ui_detail *d = &m->det;
	char info[64] = "";
	if (t && d->mem_rung >= 0)
		snprintf(info, sizeof info, "trial %lld, rung %d", (long long)t->id, d->mem_rung);
	heading(v, UI_P_MEMORY, info);
	attr_t n = ui_role(v, UI_NORMAL);
	if (!t) {
		ui_put(pn->y + 1, pn->x + 1, pn->w - 2, n, "no trial selected");
		return;
	}
	if (d->nmem == 0) {
		ui_putf(pn->y + 1, pn->x + 1, pn->w - 2, n,
		        "trial %lld: no memory rows yet (stored when a rung finishes)",
		        (long long)t->id);
		return;
	}
	static stage_mem s[TT_MEM_MAX_STAGES], f[TT_MEM_MAX_STAGES];
	int ns = stages_of(d->mem, d->nmem, s, TT_MEM_MAX_STAGES);
	double max = 0;
	for (int i = 0; i < ns; i++)
		if (s[i].total > max)
			max = s[i].total;
	/* the workspace and a method's buffers: a bar of their own each
	 * after the stages, on the same scale; the summary below compares
	 * the stages only, as the computed full training has no workspace
	 * figure */
	int rows = model_rows(d->mem, d->nmem, s, ns, &max);
	/* legend: the per-stage kinds (the whole model's rows name
	 * themselves) */
	int x = pn->x + 1, y = pn->y + 1;
	for (int k = 0; k < TT_MEM_KINDS; k++) {
		if (!tt_memkinds[k].per_stage)
			continue;
		ui_putwc(y, x, kind_glyph(k), tt_memkinds[k].letter, ui_role(v, UI_MEM_PARAMS + k));
		x += 2 + ui_putf(y, x + 2, pn->x + pn->w - x - 2, n, "%s ", tt_memkinds[k].name);
	}
	ui_putf(y, x, pn->x + pn->w - x, ui_role(v, UI_FROZEN), "F frozen");
	int lines = pn->h - 3; /* legend above, summary below */
	int bw = pn->w - 24;
	pn->items = rows;
	if (pn->top > rows - lines)
		pn->top = rows - lines > 0 ? rows - lines : 0;
	for (int r = 0; r < lines && pn->top + r < rows; r++) {
		const stage_mem *st = &s[pn->top + r];
		int yy = y + 1 + r;
		if (pn->top + r >= ns) /* "workspace" is wider than a stage's name */
			ui_putf(yy, pn->x, 10, n, "%-9.9s", st->name);
		else
			ui_putf(yy, pn->x, 9, n, "%-8.8s", st->name);
		if (st->frozen)
			ui_put(yy, pn->x + 9, 1, ui_role(v, UI_FROZEN), "F");
		int bx = pn->x + 11, used = 0;
		for (int k = 0; k < TT_MEM_KINDS && bw > 0 && max > 0; k++) {
			int cells = (int)lround(st->b[k] / max * bw);
			if (used + cells > bw)
				cells = bw - used;
			for (int c = 0; c < cells; c++)
				ui_putwc(yy, bx + used + c, kind_glyph(k), tt_memkinds[k].letter,
				         ui_role(v, UI_MEM_PARAMS + k));
			used += cells;
		}
		char b[24];
		ui_bytes(b, sizeof b, st->total);
		ui_putf(yy, pn->x + pn->w - 11, 11, n, "%10s", b);
	}
	/* the summary: this rung against full training */
	double tot = total_of(s, ns), full = 0;
	const char *how = NULL;
	if (d->full_rung >= 0) {
		full = total_of(f, stages_of(d->full, d->nfull, f, TT_MEM_MAX_STAGES));
		how = "measured";
	} else if (d->ncalc) {
		for (int i = 0; i < d->ncalc; i++)
			full += (double)(d->calc[i].params + d->calc[i].grads + d->calc[i].optim +
			                 d->calc[i].activations);
		how = "computed";
	}
	int frozen = 0;
	for (int i = 0; i < ns; i++)
		frozen += s[i].frozen;
	char a[24], b[24];
	ui_bytes(a, sizeof a, tot);
	int yy = pn->y + pn->h - 1;
	if (!frozen)
		ui_putf(yy, pn->x, pn->w, n, "total %s, all stages trainable", a);
	else if (how) {
		ui_bytes(b, sizeof b, full);
		/* short enough for the pane's width at 120 columns; whether
		 * the full figure was stored or computed is in the detail view */
		ui_putf(yy, pn->x, pn->w, n, "%s (%d frozen) vs full %s: -%.0f%%",
		        a, frozen, b, full > 0 ? 100 * (1 - tot / full) : 0.0);
	} else {
		ui_putf(yy, pn->x, pn->w, n, "total %s, %d frozen; full training: %s", a, frozen,
		        d->calc_why[0] ? d->calc_why : "unknown");
	}
}

/* ---- masks and the front ---------------------------------------------------- */

static int gate_role(double p)
{
	return p <= 0 ? UI_GATE_OFF : p < 0.5 ? UI_GATE_LOW : p < 1 ? UI_GATE_HIGH : UI_GATE_ON;
}

/* By FLOPs kept, then the more accurate first, then id: the sweep below
 * meets every trial after all that could dominate it. */
static int cmp_fpoint(const void *a, const void *b)
{
	const ui_fpoint *p = a, *q = b;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	if (p->y != q->y)
		return p->y > q->y ? -1 : 1;
	return (p->i > q->i) - (p->i < q->i);
}

int ui_front_update(ui_view *v)
{
	const ui_model *m = v->m;
	if (v->front_ok && v->front_gen == m->gen)
		return 0;
	v->nfp = v->nfront = v->nwait = 0;
	v->front_ok = 0;
	if (v->capfp < m->nt) {
		int cap = m->nt + 256;
		ui_fpoint *p = realloc(v->fp, (size_t)cap * sizeof *p);
		if (!p)
			return -1;
		v->fp = p;
		v->capfp = cap;
	}
	/* the trial's score as the table ranks it (rank_all's top): its
	 * highest rung with a result; FLOPs kept come with that result */
	for (int i = 0; i < m->nt; i++) {
		const ui_trial *t = &m->t[i];
		int hr = ui_trial_top_rung(t);
		if (hr < 0)
			continue;
		if (!isfinite(t->kept[hr]) || !isfinite(t->acc[hr])) {
			v->nwait++;
			continue;
		}
		v->fp[v->nfp++] = (ui_fpoint){ i, t->kept[hr], t->acc[hr], 0 };
	}
	if (v->nfp > 1)
		qsort(v->fp, (size_t)v->nfp, sizeof *v->fp, cmp_fpoint);
	/* a trial is on the front when no trial with as few FLOPs is as
	 * accurate: in this order, when it beats every one before it; two
	 * trials alike in both are both on it */
	float best = -INFINITY, lx = NAN;
	for (int k = 0; k < v->nfp; k++) {
		ui_fpoint *p = &v->fp[k];
		if (p->y > best || (p->y == best && p->x == lx)) {
			p->on = 1;
			v->nfront++;
			best = p->y;
			lx = p->x;
		}
	}
	v->front_ok = 1;
	v->front_gen = m->gen;
	return 0;
}

/* The n-th trial along the front (fewest FLOPs first), an index into m->t. */
static int front_nth(const ui_view *v, int n)
{
	for (int k = 0; k < v->nfp; k++)
		if (v->fp[k].on && n-- == 0)
			return v->fp[k].i;
	return -1;
}

int ui_front_step(ui_view *v, int dir)
{
	ui_front_update(v);
	if (!v->nfront)
		return 0;
	const ui_trial *sel = ui_trials_selected(v);
	int pos = -1, n = 0, near = -1;
	double nd = INFINITY;
	const ui_fpoint *sp = NULL;
	for (int k = 0; k < v->nfp; k++)
		if (sel && v->m->t[v->fp[k].i].id == sel->id)
			sp = &v->fp[k];
	for (int k = 0; k < v->nfp; k++) {
		if (!v->fp[k].on)
			continue;
		if (sp == &v->fp[k])
			pos = n;
		if (sp && fabs(v->fp[k].x - sp->x) < nd) {
			nd = fabs(v->fp[k].x - sp->x);
			near = n;
		}
		n++;
	}
	int step = dir > 0 ? 1 : -1;
	int want = pos >= 0 ? pos + step : near >= 0 ? near : step > 0 ? 0 : n - 1;
	for (; want >= 0 && want < n; want += step) {
		int i = front_nth(v, want);
		for (int o = 0; o < v->norder; o++)
			if (v->order[o] == i) {
				ui_trials_goto(v, o);
				return 1;
			}
	}
	return 1; /* the end of the front: stay */
}

/* Rows the selected trial's masks want (one per stage and the summary
 * line, or the one line saying it has none) and columns (the widest
 * stage's units, its label and count). */
static int masks_size(const ui_view *v, int *cols)
{
	const ui_detail *d = &v->m->det;
	*cols = 24;
	if (!ui_trials_selected(v) || !d->nmask)
		return 1;
	int stages = 0, units = 0;
	for (int i = 0; i < d->nmask; i++) {
		if (i == 0 || d->mask[i].stage != d->mask[i - 1].stage) {
			stages++;
			units = 0;
		}
		units += d->mask[i].unit >= 0;
		if (6 + units + 8 > *cols)
			*cols = 6 + units + 8;
	}
	return stages + 1;
}

/* The selected trial's masks in (x, y, w, h): a row per stage (layer
 * gate, unit cells, units kept), scrolled by the pane, and on the last
 * row the FLOPs and parameters kept. */
static void masks_draw(ui_view *v, int x0, int y0, int w, int h)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_MASKS];
	const ui_detail *d = &m->det;
	attr_t n = ui_role(v, UI_NORMAL);
	if (h < 1 || w < 8)
		return;
	const ui_trial *t = ui_trials_selected(v);
	if (!t || !d->nmask) {
		ui_putf(y0, x0 + 1, w - 2, n, "trial %lld: no gates", t ? (long long)t->id : 0LL);
		return;
	}
	int lines = h - 1, row = 0, stages = 0, on_all = 0, units_all = 0;
	for (int i = 0; i < d->nmask;) {
		int st = d->mask[i].stage, j = i, on = 0, units = 0, layer = -1;
		while (j < d->nmask && d->mask[j].stage == st) {
			if (d->mask[j].unit < 0)
				layer = d->mask[j].on;
			else
				units++, on += d->mask[j].on;
			j++;
		}
		on_all += on, units_all += units;
		stages++;
		if (row - pn->top >= 0 && row - pn->top < lines) {
			int y = y0 + row - pn->top, x = x0;
			x += ui_putf(y, x, 4, n, "s%-2d", st);
			if (layer >= 0)
				ui_put(y, x, 2, ui_role(v, layer ? UI_GATE_ON : UI_GATE_OFF), layer ? "L " : "l ");
			x += 2;
			int room = w - (x - x0) - 7;
			for (int k = i, c = 0; k < j; k++) {
				if (d->mask[k].unit < 0)
					continue;
				if (c >= room)
					break;
				double p = d->mask[k].prob;
				static const wchar_t shade[4] = { 0x00b7, 0x2591, 0x2592, 0x2588 };
				static const char ascii[4] = { '.', ':', 'o', '#' };
				int g = p <= 0 ? 0 : p < 0.5 ? 1 : p < 1 ? 2 : 3;
				ui_putwc(y, x + c++, shade[g], ascii[g], ui_role(v, gate_role(p)));
			}
			ui_putf(y, x0 + w - 7, 7, n, "%3d/%-3d", on, units);
		}
		row++;
		i = j;
	}
	pn->items = stages;
	/* FLOPs and parameters kept are the engine's count of the compacted
	 * network at the end of the latest gated rung; before one ends, the
	 * units on are all there is */
	const db_rung *kr = NULL;
	for (int i = 0; i < d->nrungs; i++)
		if (isfinite(d->rungs[i].macs_kept))
			kr = &d->rungs[i];
	if (kr)
		ui_putf(y0 + h - 1, x0, w, n, "r%d kept FLOPs %.1f%% "
		        "params %.1f%%, units %d/%d", kr->rung, 100 * kr->macs_kept,
		        100 * kr->params_kept, on_all, units_all);
	else
		ui_putf(y0 + h - 1, x0, w, n, "units on %d/%d (FLOPs "
		        "kept: at the rung's end)", on_all, units_all);
}

/* Marks of the front's plot, the weightier winning a shared cell. */
enum { FM_NONE, FM_TRIAL, FM_FRONT, FM_SEL };

/*
 * The front in (x, y, w, h): the gated trials as marks at (FLOPs kept,
 * accuracy) over x in [0, 1] and the accuracies' range, the front joined
 * as a staircase in dots (with b FLOPs to spend, the best accuracy is the
 * step's height at b), the selected trial marked; below the x axis, the
 * selected trial's numbers.  Marks take whole cells so that they read in
 * any glyph set; a cell several trials share shows the weightiest
 * (selected, front, other).
 */
static void front_draw(ui_view *v, int x0, int y0, int w, int h)
{
	const ui_model *m = v->m;
	attr_t n = ui_role(v, UI_NORMAL), ax = ui_role(v, UI_AXIS);
	if (!v->nfp) {
		ui_put(y0, x0 + 1, w - 2, n, v->nwait ? "no gated results yet (FLOPs kept "
		       "come with a gated rung's result)" : "no results yet");
		return;
	}
	int lab = 5, cw = w - lab - 1, ch = h - 2, caption = 1;
	if (ch < 3)
		ch = h - 1, caption = 0;
	if (cw < 8 || ch < 2)
		return;
	const ui_trial *sel = ui_trials_selected(v);
	double y0v = INFINITY, y1v = -INFINITY;
	for (int k = 0; k < v->nfp; k++) {
		y0v = v->fp[k].y < y0v ? v->fp[k].y : y0v;
		y1v = v->fp[k].y > y1v ? v->fp[k].y : y1v;
	}
	pad_range(&y0v, &y1v);
	/* an accuracy lies in [0, 1]: no padding past either end (and the
	 * labels keep to five columns) */
	if (y0v < 0 && y1v > 0)
		y0v = 0;
	if (y1v > 1 && y0v < 1)
		y1v = 1;
	ui_canvas cv;
	unsigned char *mk = calloc((size_t)cw * ch, 1);
	if (!mk || ui_canvas_init(&cv, cw, ch, v->glyphs)) {
		free(mk);
		ui_put(y0, x0 + 1, w - 2, n, "(out of memory)");
		return;
	}
	int W = cw * cv.sx - 1, H = ch * cv.sy - 1;
	int px = -1, py = -1;
	const ui_fpoint *sp = NULL;
	for (int k = 0; k < v->nfp; k++) {
		const ui_fpoint *p = &v->fp[k];
		double fx = p->x < 0 ? 0 : p->x > 1 ? 1 : p->x;
		int X = (int)lround(fx * W);
		int Y = (int)lround((1 - (p->y - y0v) / (y1v - y0v)) * H);
		int is_sel = sel && m->t[p->i].id == sel->id;
		int mark = is_sel ? FM_SEL : p->on ? FM_FRONT : FM_TRIAL;
		X = X < 0 ? 0 : X > W ? W : X;
		Y = Y < 0 ? 0 : Y > H ? H : Y;
		unsigned char *c = &mk[(Y / cv.sy) * cw + X / cv.sx];
		if (*c < mark)
			*c = (unsigned char)mark;
		if (is_sel)
			sp = p;
		if (!p->on)
			continue;
		if (px >= 0) {
			ui_canvas_line(&cv, px, py, X, py, UI_FRONT);
			ui_canvas_line(&cv, X, py, X, Y, UI_FRONT);
		}
		px = X, py = Y;
	}
	static const wchar_t glyph[4] = { L' ', 0x2022, 0x25c6, 0x25c9 };
	static const char ascii[4] = { ' ', 'o', '*', '@' };
	attr_t mark_attr[4] = { 0, n, ui_role(v, UI_FRONT) | A_BOLD,
	                        ui_role(v, UI_SELECTED) | A_BOLD };
	int left = x0 + lab + 1;
	for (int r = 0; r < ch; r++) {
		ui_putwc(y0 + r, left - 1, 0x2502, '|', ax);
		for (int c = 0; c < cw; c++) {
			int mark = mk[r * cw + c], role;
			if (mark) {
				ui_putwc(y0 + r, left + c, glyph[mark], ascii[mark], mark_attr[mark]);
				continue;
			}
			wchar_t g = ui_canvas_glyph(&cv, c, r, &role);
			if (role >= 0)
				ui_putwc(y0 + r, left + c, g, (char)g, ui_role(v, role));
		}
	}
	ui_canvas_free(&cv);
	free(mk);
	/* accuracy at the top, middle and bottom rows; FLOPs kept 0..100% */
	for (int k = 0; k < 3; k++) {
		int r = k == 0 ? 0 : k == 1 ? ch / 2 : ch - 1;
		if (k == 1 && ch < 5)
			continue;
		double val = y1v - (y1v - y0v) * (ch > 1 ? (double)r / (ch - 1) : 0);
		ui_putf(y0 + r, x0, lab, ax, "%5.3f", val);
	}
	int by = y0 + ch;
	ui_putwc(by, left - 1, 0x2514, '+', ax);
	for (int c = 0; c < cw; c++)
		ui_putwc(by, left + c, 0x2500, '-', ax);
	ui_put(by, left, 2, ax, "0%");
	const char *xl = cw >= 18 ? "FLOPs kept 100%" : "100%";
	ui_put(by, left + cw - (int)strlen(xl), (int)strlen(xl), ax, xl);
	if (!caption || !sel)
		return;
	/* the selected trial: its mark, then its numbers or why it has none */
	int cy = by + 1, cx = x0;
	ui_putwc(cy, cx, glyph[FM_SEL], ascii[FM_SEL], mark_attr[FM_SEL]);
	if (sp) {
		ui_putf(cy, cx + 1, w - 1, n, "#%lld acc %.4f FLOPs %.1f%%", (long long)sel->id,
		        sp->y, 100.0 * sp->x);
	} else {
		int hr = -1;
		for (int r = TT_RUNG_MAX - 1; r >= 0 && hr < 0; r--)
			if (!isnan(sel->acc[r]))
				hr = r;
		if (hr < 0)
			ui_putf(cy, cx + 1, w - 1, n, "#%lld: no result yet", (long long)sel->id);
		else
			ui_putf(cy, cx + 1, w - 1, n, "#%lld: no FLOPs kept at r%d", (long long)sel->id,
			        hr);
	}
}

/* Beside each other when the pane is this wide, else the front above. */
#define FRONT_BESIDE_W 64
/* The front's fewest rows above the masks: a plot of three rows, its x
 * axis and the selected trial's numbers. */
#define FRONT_MIN_H 5

static void draw_masks(ui_view *v)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_MASKS];
	ui_front_update(v);
	/* the heading counts the front and names its trials, fewest FLOPs
	 * first: all a tiny pane has room for, and what the test reads */
	char info[256] = "";
	if (v->nfp) {
		int len = snprintf(info, sizeof info, "front %d/%d:", v->nfront, v->nfp);
		for (int k = 0; k < v->nfront && len < (int)sizeof info - 24; k++)
			len += snprintf(info + len, sizeof info - (size_t)len, " #%lld",
			                (long long)m->t[front_nth(v, k)].id);
	}
	heading(v, UI_P_MASKS, info);
	if (!m->masks_exist && !v->nfp) {
		ui_put(pn->y + 1, pn->x + 1, pn->w - 2, ui_role(v, UI_NORMAL),
		       "no gates in this study");
		return;
	}
	int lines = pn->h - 1, y = pn->y + 1, mw;
	int mr = masks_size(v, &mw), fh;
	if (pn->w >= FRONT_BESIDE_W) {
		/* the masks as wide as their widest stage, up to half; the
		 * front the rest, two columns apart */
		if (mw > pn->w / 2)
			mw = pn->w / 2;
		masks_draw(v, pn->x, y, mw, lines);
		front_draw(v, pn->x + mw + 2, y, pn->w - mw - 2, lines);
		return;
	}
	/* the front above the masks: what the masks leave, but at least
	 * FRONT_MIN_H rows while the masks keep a stage and their summary
	 * (they scroll); with less room, only the heading's list */
	if (!v->nfp) {
		fh = 1;
	} else {
		int keep = mr > 1 ? 2 : 1;
		fh = lines - mr;
		if (fh < FRONT_MIN_H)
			fh = lines - keep >= FRONT_MIN_H ? FRONT_MIN_H : 0;
	}
	if (fh > 0)
		front_draw(v, pn->x, y, pn->w, fh);
	masks_draw(v, pn->x, y + fh, pn->w, lines - fh);
}

/* ---- ranks ---------------------------------------------------------------- */

static void draw_ranks(ui_view *v)
{
	const ui_model *m = v->m;
	ui_pane *pn = &v->pane[UI_P_RANKS];
	heading(v, UI_P_RANKS, "between rungs");
	attr_t n = ui_role(v, UI_NORMAL), hd = ui_role(v, UI_TABLE_HEADER);
	int lines = pn->h - 1, row = 0;
	char buf[256];
#define LINE(a, ...)                                                               \
	do {                                                                       \
		if (row >= pn->top && row - pn->top < lines) {                     \
			snprintf(buf, sizeof buf, __VA_ARGS__);                    \
			ui_put(pn->y + 1 + row - pn->top, pn->x, pn->w, (a), buf); \
		}                                                                  \
		row++;                                                             \
	} while (0)
	if (!m->nrc)
		LINE(n, "no rung pairs yet (needs trials at two rungs)");
	else
		LINE(hd, "%-7s %5s %8s %8s", "rungs", "n", "spearman", "kendall");
	for (int k = 0; k < m->nrc; k++) {
		const db_rank_corr *c = &m->rc[k];
		int role = isnan(c->spearman) ? UI_NORMAL : c->spearman >= 0.8 ? UI_RANK_HIGH
		         : c->spearman < 0.5 ? UI_RANK_LOW : UI_NORMAL;
		LINE(ui_role(v, role), "r%d-r%-3d %5d %8.3f %8.3f", c->rung_a, c->rung_b, c->n,
		     c->spearman, c->kendall);
	}
	if (m->ntop) {
		int x = snprintf(buf, sizeof buf, "%-7s", "top");
		char head[256];
		memcpy(head, buf, (size_t)x + 1);
		for (int r = 0; r < m->nrungs && x < 200; r++)
			x += snprintf(head + x, sizeof head - (size_t)x, " %5s", "");
		(void)head;
		char h2[256];
		int y = snprintf(h2, sizeof h2, "%-7s", "trial");
		for (int r = 0; r < m->nrungs && y < 200; r++)
			y += snprintf(h2 + y, sizeof h2 - (size_t)y, "  #r%-2d", r);
		LINE(hd, "%s", h2);
		for (int k = 0; k < m->ntop; k++) {
			const ui_trial *t = ui_model_trial(m, m->top[k]);
			if (!t)
				continue;
			char l[256];
			int z = snprintf(l, sizeof l, "%-7lld", (long long)t->id);
			for (int r = 0; r < m->nrungs && z < 200; r++)
				z += t->rank[r] ? snprintf(l + z, sizeof l - (size_t)z, " %5d", t->rank[r])
				                : snprintf(l + z, sizeof l - (size_t)z, " %5s", "-");
			LINE(t->id == v->sel_id ? ui_role(v, UI_SELECTED) : n, "%s", l);
		}
	}
#undef LINE
	pn->items = row;
}

void ui_pane_draw(ui_view *v, int p)
{
	switch (p) {
	case UI_P_TRIALS: draw_trials(v); break;
	case UI_P_CURVES: draw_curves(v); break;
	case UI_P_LADDER:
		if (v->m->continual)
			draw_continual(v);
		else
			draw_ladder(v);
		break;
	case UI_P_MEMORY: draw_memory(v); break;
	case UI_P_MASKS: draw_masks(v); break;
	case UI_P_RANKS: draw_ranks(v); break;
	}
}

/* ---- overlays ----------------------------------------------------------- */

/* Lines of an overlay, drawn from `top` down. */
typedef struct text_lines {
	int y0, h, top, n;
	const ui_view *v;
} text_lines;

/* On the title row, right-aligned: which lines show when not all fit, so a
 * view taller than the terminal says that it scrolls. */
static void tl_mark(const text_lines *tl, attr_t a)
{
	if (tl->n <= tl->h)
		return;
	int last = tl->top + tl->h < tl->n ? tl->top + tl->h : tl->n;
	char s[80];
	int len = snprintf(s, sizeof s, " lines %d-%d of %d%s ", tl->top + 1, last,
	                   tl->n, last < tl->n ? ", more below" : "");
	int x = getmaxx(stdscr) - len;
	ui_put(0, x > 1 ? x : 1, -1, a, s);
}

__attribute__((format(printf, 3, 4)))
static void tl_line(text_lines *tl, int role, const char *fmt, ...)
{
	if (tl->n >= tl->top && tl->n - tl->top < tl->h) {
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		ui_put(tl->y0 + tl->n - tl->top, 1, -1, ui_role(tl->v, role), buf);
	}
	tl->n++;
}

static void time_text(char *s, size_t cap, double t)
{
	if (t <= 0) {
		snprintf(s, cap, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(s, cap, "%H:%M:%S", &tm);
}

void ui_detail_draw(ui_view *v, int top, int *lines)
{
	const ui_model *m = v->m;
	const ui_trial *t = ui_trials_selected(v);
	int H = getmaxy(stdscr), W = getmaxx(stdscr);
	attr_t ti = ui_role(v, UI_TITLE);
	ui_fill(0, 0, W, ti);
	text_lines tl = { 1, H - 2, top, 0, v };
	if (!t) {
		ui_put(0, 1, W - 2, ti, "Trial detail: no trial selected");
		*lines = 0;
		return;
	}
	ui_putf(0, 1, W - 2, ti, "Trial %lld: %s, rung %d%s   (Esc, Enter or q closes; "
	        "arrows scroll)", (long long)t->id, tt_tstate_name(t->state), t->rung,
	        t->pending ? ", command pending" : "");
	const ui_detail *d = &m->det;
	tl_line(&tl, UI_PANE_TITLE, "Parameters");
	for (int k = 0;; k++) {
		char key[64], val[256];
		if (!ui_json_key(t->params, k, key, sizeof key))
			break;
		ui_json_get(t->params, key, val, sizeof val);
		tl_line(&tl, UI_NORMAL, "  %-20s %s", key, val);
	}
	tl_line(&tl, UI_NORMAL, "%s", "");
	if (m->nhname) {
		tl_line(&tl, UI_PANE_TITLE, "Learned hyperparameters (the latest value)");
		for (int k = 0; k < m->nhname; k++)
			if (t->hkey[k] >= 0)
				tl_line(&tl, UI_NORMAL, "  %-20s %-12.6g rung %d, step %ld",
				        m->hname[k], t->hval[k], (int)(t->hkey[k] >> 32),
				        (long)(t->hkey[k] & 0xffffffff));
			else
				tl_line(&tl, UI_NORMAL, "  %-20s -", m->hname[k]);
		tl_line(&tl, UI_NORMAL, "%s", "");
	}
	if (m->have_fc) {
		tl_line(&tl, UI_PANE_TITLE, "Decisions that chose it (freeze-thaw)");
		if (!isnan(t->fmu))
			tl_line(&tl, UI_NORMAL, "  latest forecast of the final accuracy %.4f %s %.4f "
			        "(decision %lld), EI %.3g", t->fmu, U("\u00b1", "+-"), t->fsd,
			        (long long)t->fat, t->fei);
		tl_line(&tl, UI_TABLE_HEADER, "  %-9s %-7s %9s %9s %10s %9s %9s", "decision",
		        "epoch", "mu", "sd", "EI", "final mu", "final sd");
		for (int k = 0; k < d->ndec; k++) {
			const db_forecast *f = &d->dec[k];
			if (isnan(f->mu))
				tl_line(&tl, UI_NORMAL, "  %-9lld %-7d %9s %9s %10s %9s %9s  (initial "
				        "design)", (long long)f->at, f->budget, "-", "-", "-", "-", "-");
			else
				tl_line(&tl, UI_NORMAL, "  %-9lld %-7d %9.4f %9.4f %10.3g %9.4f %9.4f",
				        (long long)f->at, f->budget, f->mu, f->sd, f->ei, f->final_mu,
				        f->final_sd);
		}
		if (!d->ndec)
			tl_line(&tl, UI_NORMAL, "  none yet");
		tl_line(&tl, UI_NORMAL, "%s", "");
	}
	tl_line(&tl, UI_PANE_TITLE, "Rung results");
	tl_line(&tl, UI_TABLE_HEADER, "  %-5s %-9s %7s %9s %8s %9s %8s  %-8s %6s %6s", "rung",
	        "trainable", "epochs", "val_loss", "val_acc", "seconds", "rank", "promoted",
	        "FLOPs", "params");
	for (int k = 0; k < d->nrungs; k++) {
		const db_rung *r = &d->rungs[k];
		int rk = r->rung >= 0 && r->rung < TT_RUNG_MAX ? t->rank[r->rung] : 0;
		char fl[16] = "-", pa[16] = "-";  /* kept by the gates */
		if (isfinite(r->macs_kept)) {
			snprintf(fl, sizeof fl, "%.1f%%", 100 * r->macs_kept);
			snprintf(pa, sizeof pa, "%.1f%%", 100 * r->params_kept);
		}
		tl_line(&tl, UI_NORMAL, "  %-5d %-9d %7.3g %9.4f %8.4f %9.1f %8d  %-8s %6s %6s",
		        r->rung, r->trainable, r->epochs, r->val_loss, r->val_acc, r->seconds,
		        rk, r->promoted || t->rung > r->rung ? "yes" : "no", fl, pa);
	}
	if (!d->nrungs)
		tl_line(&tl, UI_NORMAL, "  no rung finished yet");
	tl_line(&tl, UI_NORMAL, "%s", "");
	tl_line(&tl, UI_PANE_TITLE, "Memory (rung %d)", d->mem_rung);
	static stage_mem s[TT_MEM_MAX_STAGES];
	int ns = stages_of(d->mem, d->nmem, s, TT_MEM_MAX_STAGES);
	tl_line(&tl, UI_TABLE_HEADER, "  %-10s %-6s %11s %11s %11s %11s %11s", "stage", "frozen",
	        "params", "grads", "optim", "activations", "total");
	for (int i = 0; i < ns; i++) {
		char b[5][24];
		for (int k = 0; k < 4; k++)
			ui_bytes(b[k], sizeof b[k], s[i].b[k]);
		ui_bytes(b[4], sizeof b[4], s[i].total);
		tl_line(&tl, UI_NORMAL, "  %-10.10s %-6s %11s %11s %11s %11s %11s", s[i].name,
		        s[i].frozen ? "yes" : "no", b[0], b[1], b[2], b[3], b[4]);
	}
	if (!ns)
		tl_line(&tl, UI_NORMAL, "  none stored yet");
	for (int k = 0; k < TT_MEM_KINDS; k++) {
		double mb = tt_memkinds[k].per_stage ? -1 : model_bytes(d->mem, d->nmem, k);
		if (mb < 0 || (k != TT_MEM_WORK && mb == 0))
			continue;
		char b[24];
		ui_bytes(b, sizeof b, mb);
		tl_line(&tl, UI_NORMAL, "  %-17s %11s  (the whole model's, not per stage: %s)",
		        tt_memkinds[k].name, b, tt_memkinds[k].help);
	}
	if (d->calc_why[0])
		tl_line(&tl, UI_NORMAL, "  %s", d->calc_why);
	tl_line(&tl, UI_NORMAL, "%s", "");
	tl_line(&tl, UI_PANE_TITLE, "Masks");
	if (!d->nmask)
		tl_line(&tl, UI_NORMAL, "  %s", m->masks_exist ? "no gates for this trial"
		                                                : "no gates in this study");
	for (int i = 0; i < d->nmask;) {
		int st = d->mask[i].stage, on = 0, units = 0, j = i, layer = -1;
		double ps = 0;
		for (; j < d->nmask && d->mask[j].stage == st; j++) {
			if (d->mask[j].unit < 0)
				layer = d->mask[j].on;
			else
				units++, on += d->mask[j].on, ps += d->mask[j].prob;
		}
		tl_line(&tl, UI_NORMAL, "  stage %-3d layer gate %-4s units on %d/%d, mean prob %.2f",
		        st, layer < 0 ? "-" : layer ? "on" : "off", on, units, units ? ps / units : 0);
		i = j;
	}
	tl_line(&tl, UI_NORMAL, "%s", "");
	tl_line(&tl, UI_PANE_TITLE, "Commands");
	for (int k = 0; k < d->nhist; k++) {
		char a[16], b[16], r[256];
		time_text(a, sizeof a, d->hist[k].issued_at);
		time_text(b, sizeof b, d->hist[k].done_at);
		ui_clean(r, sizeof r, d->hist[k].result);
		tl_line(&tl, d->hist[k].done_at > 0 ? UI_NORMAL : UI_PENDING,
		        "  %-5lld %-8s issued %s  %s %s  %s", (long long)d->hist[k].id,
		        d->hist[k].verb, a, d->hist[k].done_at > 0 ? "done" : "PENDING", b, r);
	}
	if (!d->nhist)
		tl_line(&tl, UI_NORMAL, "  none");
	tl_mark(&tl, ti);
	*lines = tl.n;
}

void ui_help_draw(ui_view *v, int top, int *lines, const char *const *keys, int nkeys)
{
	int H = getmaxy(stdscr), W = getmaxx(stdscr);
	attr_t ti = ui_role(v, UI_TITLE);
	ui_fill(0, 0, W, ti);
	ui_put(0, 1, W - 2, ti, "tunetop help   (any key closes; arrows scroll)");
	text_lines tl = { 1, H - 2, top, 0, v };
	tl_line(&tl, UI_PANE_TITLE, "Keys");
	for (int k = 0; k < nkeys; k++)
		tl_line(&tl, UI_NORMAL, "  %s", keys[k]);
	tl_line(&tl, UI_NORMAL, "%s", "");
	tl_line(&tl, UI_PANE_TITLE, "Panes");
	tl_line(&tl, UI_NORMAL, "  Trials  id, state, pending command, rung, trainable depth, "
	        "key parameters, val acc and rank per rung");
	tl_line(&tl, UI_NORMAL, "          ~name: the latest value of a hyperparameter a method "
	        "learns inside the trial (EvoGrad)");
	tl_line(&tl, UI_NORMAL, "  Curves  the selected trial and the best %d: val acc, val loss "
	        "or train loss against steps or epochs", UI_TOPK);
	tl_line(&tl, UI_NORMAL, "          e: the selected trial's learned hyperparameters "
	        "against steps instead, a curve per name");
	tl_line(&tl, UI_NORMAL, "  Ladder  one row per rung (top rung first): depth, epochs, "
	        "trials in/capacity, best; a letter per trial standing there");
	tl_line(&tl, UI_NORMAL, "  Continual  in place of the Ladder in a continual study: the "
	        "selected trial's accuracy %% per task");
	tl_line(&tl, UI_NORMAL, "          after each experience as a heat map, forgetting per "
	        "task, ACA; the Trials table adds ACA, FORGET");
	tl_line(&tl, UI_NORMAL, "  Memory  per stage of the selected trial, stacked by kind; "
	        "F = frozen; the saving against full training");
	tl_line(&tl, UI_NORMAL, "  Masks   gate probabilities per stage and unit (L/l: layer "
	        "gate on/off); above, the front: val acc");
	tl_line(&tl, UI_NORMAL, "          against FLOPs kept per gated trial, %s front, %s "
	        "selected; Up/Down walk the front", U("\u25c6", "*"), U("\u25c9", "@"));
	tl_line(&tl, UI_NORMAL, "  Ranks   Spearman and Kendall between rungs with n; the best "
	        "trials' rank at every rung");
	tl_line(&tl, UI_NORMAL, "%s", "");
	tl_line(&tl, UI_PANE_TITLE, "Trial states (ladder letters)");
	for (int s = 0; s < UI_NSTATES; s++)
		tl_line(&tl, UI_STATE_QUEUED + s, "  %c  %s", state_letter(s), tt_tstate_name(s));
	tl_mark(&tl, ti);
	*lines = tl.n;
}
