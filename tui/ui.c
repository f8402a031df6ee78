/*
 * ui.c — the screen manager: the main loop, the key table and the
 * actions, the layout, and the title and key bars; see ui.h.
 *
 * The loop waits for a key with a timeout that ends at the next poll (no
 * busy loop: an idle explorer wakes every -d tenths, asks PRAGMA
 * data_version, and sleeps again).  A key maps through keys[] to an
 * action; an action changes state and returns what must happen next
 * (nothing, a redraw, quit), never drawing itself.  A frame is drawn into
 * stdscr off-screen and sent once (wnoutrefresh + doupdate), and only
 * when something changed, so ncurses sends the difference and nothing
 * when nothing moved.
 */
#include "ui.h"

#include <curses.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wchar.h>

#include "ui_draw.h"
#include "ui_model.h"
#include "ui_pane.h"
#include "ui_plot.h"

#define U(utf, ascii) (ui_utf8 ? (utf) : (ascii))

/* Below this the layout cannot hold the six panes. */
#define MIN_W 80
#define MIN_H 24
#define MESSAGE_S 4.0

enum ui_mode { M_MAIN, M_HELP, M_DETAIL, M_CONFIRM, M_FILTER };
enum ui_result { R_NONE, R_DRAW, R_QUIT };

typedef struct ui {
	const ui_opts *o;
	ui_model m;
	ui_view v;
	int mode;
	int overlay_top, overlay_lines;
	char msg[512];
	int msg_role;
	double msg_until;
	char old_filter[128];
	int64_t confirm_ids[64];      /* the trials a kill waits for y on */
	int nconfirm;
	int esc_state;                /* 0, 1 after ESC, 2 inside a sequence */
	double esc_at;
	int engine_seen_done;
	int dirty;
	long draws;
	double draw_s;
} ui;

static void message(ui *u, int role, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void message(ui *u, int role, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->msg, sizeof u->msg, fmt, ap);
	va_end(ap);
	u->msg_role = role;
	u->msg_until = ui_now() + MESSAGE_S;
}

/* ---- commands ------------------------------------------------------------ */

/* The trials a command applies to: the tagged ones, else the selected. */
static int targets(ui *u, int64_t *ids, int cap)
{
	int n = 0;
	for (int i = 0; i < u->m.nt && n < cap; i++)
		if (u->m.t[i].tagged)
			ids[n++] = u->m.t[i].id;
	if (!n) {
		ui_trial *t = ui_trials_selected(&u->v);
		if (t)
			ids[n++] = t->id;
	}
	return n;
}

static void ids_text(char *s, size_t cap, const int64_t *ids, int n)
{
	size_t k = 0;
	s[0] = '\0';
	for (int i = 0; i < n && k + 16 < cap; i++) {
		if (i == 6) {
			snprintf(s + k, cap - k, " ...");
			break;
		}
		k += (size_t)snprintf(s + k, cap - k, "%s#%lld", i ? " " : "", (long long)ids[i]);
	}
}

static int refuse_readonly(ui *u, const char *what)
{
	if (!u->o->readonly)
		return 0;
	message(u, UI_ERROR, "read-only (--readonly): %s refused", what);
	return 1;
}

/* Send verb (or, for "pause", pause or resume by the trial's state). */
static void send_cmd(ui *u, const char *verb, const int64_t *ids, int n)
{
	int ok = 0;
	tt_err err = {0};
	for (int i = 0; i < n; i++) {
		const char *v = verb;
		ui_trial *t = ui_model_trial(&u->m, ids[i]);
		if (strcmp(verb, "pause") == 0 && t && t->state == UI_PAUSED)
			v = "resume";
		if (ui_model_command(&u->m, ids[i], v, &err) == TT_OK)
			ok++;
		else
			break;
	}
	char list[128];
	ids_text(list, sizeof list, ids, n);
	if (ok < n) {
		char clean[512];
		ui_clean(clean, sizeof clean, err.msg);
		message(u, UI_ERROR, "%s: %s", verb, clean);
	} else {
		message(u, UI_MESSAGE, "%s sent for %s; pending until the engine applies it",
		        strcmp(verb, "pause") == 0 ? "pause/resume" : verb, list);
	}
	/* tags served their purpose: the next command starts afresh */
	for (int i = 0; i < u->m.nt; i++)
		u->m.t[i].tagged = 0;
	u->v.order_dirty = 1;
}

/* ---- actions ------------------------------------------------------------- */

typedef int (*ui_action)(ui *u);

static int act_quit(ui *u)
{
	(void)u;
	return R_QUIT;
}

static int act_help(ui *u)
{
	u->mode = M_HELP;
	u->overlay_top = 0;
	return R_DRAW;
}

static int act_detail(ui *u)
{
	if (!ui_trials_selected(&u->v)) {
		message(u, UI_ERROR, "no trial selected");
		return R_DRAW;
	}
	u->mode = M_DETAIL;
	u->overlay_top = 0;
	return R_DRAW;
}

static int act_next_pane(ui *u)
{
	u->v.focus = (u->v.focus + 1) % UI_NPANES;
	return R_DRAW;
}

static int act_prev_pane(ui *u)
{
	u->v.focus = (u->v.focus + UI_NPANES - 1) % UI_NPANES;
	return R_DRAW;
}

/* Arrows move the selection in the trial table, and in the Masks pane
 * along the front (Up: more FLOPs kept); they scroll the other panes. */
static int scroll_by(ui *u, int delta, int absolute)
{
	if (u->v.focus == UI_P_MASKS && !absolute && (delta == 1 || delta == -1) &&
	    ui_front_step(&u->v, -delta))
		return R_DRAW;
	if (u->v.focus == UI_P_TRIALS) {
		if (absolute)
			ui_trials_goto(&u->v, delta);
		else
			ui_trials_move(&u->v, delta);
		return R_DRAW;
	}
	ui_pane *p = &u->v.pane[u->v.focus];
	int top = absolute ? delta : p->top + delta;
	if (top > p->items - 1)
		top = p->items - 1;
	p->top = top < 0 ? 0 : top;
	return R_DRAW;
}

static int act_up(ui *u) { return scroll_by(u, -1, 0); }
static int act_down(ui *u) { return scroll_by(u, 1, 0); }
static int act_pgup(ui *u) { return scroll_by(u, -ui_trials_page(&u->v), 0); }
static int act_pgdn(ui *u) { return scroll_by(u, ui_trials_page(&u->v), 0); }
static int act_home(ui *u) { return scroll_by(u, 0, 1); }
static int act_end(ui *u) { return scroll_by(u, 1 << 30, 1); }

static int act_sort_next(ui *u)
{
	u->v.sort = (u->v.sort + 1) % (u->v.ncol ? u->v.ncol : 1);
	u->v.order_dirty = 1;
	return R_DRAW;
}

static int act_sort_prev(ui *u)
{
	int n = u->v.ncol ? u->v.ncol : 1;
	u->v.sort = (u->v.sort + n - 1) % n;
	u->v.order_dirty = 1;
	return R_DRAW;
}

static int act_sort_invert(ui *u)
{
	u->v.sort_desc = !u->v.sort_desc;
	u->v.order_dirty = 1;
	return R_DRAW;
}

static int act_filter(ui *u)
{
	snprintf(u->old_filter, sizeof u->old_filter, "%s", u->v.filter);
	u->mode = M_FILTER;
	return R_DRAW;
}

static int act_tag(ui *u)
{
	ui_trial *t = ui_trials_selected(&u->v);
	if (t) {
		t->tagged = !t->tagged;
		u->v.ntagged += t->tagged ? 1 : -1;
		ui_trials_move(&u->v, 1);
	}
	return R_DRAW;
}

static int act_untag(ui *u)
{
	for (int i = 0; i < u->m.nt; i++)
		u->m.t[i].tagged = 0;
	u->v.ntagged = 0;
	return R_DRAW;
}

static int act_promote(ui *u)
{
	if (refuse_readonly(u, "promote"))
		return R_DRAW;
	int64_t ids[64];
	int n = targets(u, ids, 64);
	if (n)
		send_cmd(u, "promote", ids, n);
	return R_DRAW;
}

static int act_kill(ui *u)
{
	if (refuse_readonly(u, "kill"))
		return R_DRAW;
	u->nconfirm = targets(u, u->confirm_ids, 64);
	if (u->nconfirm)
		u->mode = M_CONFIRM;
	return R_DRAW;
}

static int act_pause(ui *u)
{
	if (refuse_readonly(u, "pause/resume"))
		return R_DRAW;
	int64_t ids[64];
	int n = targets(u, ids, 64);
	if (n)
		send_cmd(u, "pause", ids, n);
	return R_DRAW;
}

static int act_theme(ui *u)
{
	const char *const *names = ui_theme_builtin_names();
	const char *cur = ui_theme_name(u->v.theme);
	int n = 0, at = -1;
	for (; names[n]; n++)
		if (strcmp(names[n], cur) == 0)
			at = n;
	if (!n)
		return R_NONE;
	const char *next = names[(at + 1) % n];
	ui_theme *t = NULL;
	tt_err err = {0};
	if (ui_theme_load(next, &t, &err)) {
		message(u, UI_ERROR, "%s", err.msg);
		return R_DRAW;
	}
	ui_theme_free(u->v.theme);
	u->v.theme = t;
	ui_theme_apply(t);
	message(u, UI_MESSAGE, "theme %s", next);
	return R_DRAW;
}

static int act_log(ui *u)
{
	u->v.logy = !u->v.logy;
	return R_DRAW;
}

/* v in the learned hyperparameters' view goes back to the metric shown
 * before; the next v cycles on. */
static int act_metric(ui *u)
{
	if (u->v.hyper)
		u->v.hyper = 0;
	else
		u->v.metric = (u->v.metric + 1) % UI_NMETRICS;
	return R_DRAW;
}

static int act_hyper(ui *u)
{
	u->v.hyper = !u->v.hyper;
	return R_DRAW;
}

static int act_xaxis(ui *u)
{
	u->v.by_epoch = !u->v.by_epoch;
	return R_DRAW;
}

static int act_glyphs(ui *u)
{
	int g = (u->v.glyphs + 1) % UI_GLYPH_N;
	if (!ui_utf8)
		g = UI_GLYPH_ASCII; /* nothing else can be shown */
	u->v.glyphs = g;
	return R_DRAW;
}

static int act_redraw(ui *u)
{
	(void)u;
	clearok(curscr, TRUE);
	return R_DRAW;
}

#define CTRL(c) ((c) & 0x1f)
#define KEY_TAB '\t'
#define KEY_ENTER_ '\n'

/* The key table: it drives the loop, the in-app help and --help. */
typedef struct ui_key {
	int keys[4];                  /* 0-terminated */
	const char *label;            /* as shown in help */
	const char *help;
	ui_action fn;
} ui_key;

static const ui_key keys[] = {
	{ { KEY_F(1), '?', 'h' }, "F1 ? h", "help: this list of keys", act_help },
	{ { KEY_F(10), 'q' }, "F10 q", "quit (the embedded study stops cleanly, resumable)",
	  act_quit },
	{ { KEY_TAB }, "Tab", "next pane", act_next_pane },
	{ { KEY_BTAB }, "Shift-Tab", "previous pane", act_prev_pane },
	{ { KEY_UP }, "Up", "select the previous trial (Masks: the next up the front), or "
	  "scroll the focused pane", act_up },
	{ { KEY_DOWN }, "Down", "select the next trial (Masks: the next down the front), or "
	  "scroll the focused pane", act_down },
	{ { KEY_PPAGE }, "PgUp", "a page up", act_pgup },
	{ { KEY_NPAGE }, "PgDn", "a page down", act_pgdn },
	{ { KEY_HOME }, "Home", "the first trial", act_home },
	{ { KEY_END }, "End", "the last trial", act_end },
	{ { KEY_ENTER, KEY_ENTER_, '\r' }, "Enter", "details of the selected trial", act_detail },
	{ { '/' }, "/", "filter trials by id, state or parameters (Enter keeps, Esc "
	  "cancels)", act_filter },
	{ { KEY_F(6), '>', '.' }, "F6 > .", "sort by the next column", act_sort_next },
	{ { '<', ',' }, "< ,", "sort by the previous column", act_sort_prev },
	{ { 'I' }, "I", "invert the sort order", act_sort_invert },
	{ { ' ' }, "Space", "tag or untag the selected trial (commands apply to all "
	  "tagged)", act_tag },
	{ { 'U' }, "U", "untag all", act_untag },
	{ { 'p' }, "p", "promote: run the trial at its next rung now", act_promote },
	{ { KEY_F(9), 'k' }, "F9 k", "kill, after a confirmation (finished rungs stay)",
	  act_kill },
	{ { 'z' }, "z", "pause, or resume a paused trial", act_pause },
	{ { 't' }, "t", "next theme", act_theme },
	{ { 'l' }, "l", "curves: log scale on or off", act_log },
	{ { 'v' }, "v", "curves: val acc, val loss, train loss", act_metric },
	{ { 'e' }, "e", "curves: the metric, or the selected trial's learned hyperparameters "
	  "(EvoGrad)", act_hyper },
	{ { 'x' }, "x", "curves: steps or epochs", act_xaxis },
	{ { 'g' }, "g", "curves: braille, block or ASCII glyphs", act_glyphs },
	{ { CTRL('l') }, "Ctrl-L", "redraw the screen", act_redraw },
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

const char *const *ui_key_help(void)
{
	static char lines[NKEYS][160];
	static const char *ptr[NKEYS + 1];
	if (!ptr[0])
		for (int k = 0; k < NKEYS; k++) {
			snprintf(lines[k], sizeof lines[k], "%-10s %s", keys[k].label, keys[k].help);
			ptr[k] = lines[k];
		}
	return ptr;
}

static const ui_key *key_find(int ch)
{
	for (int k = 0; k < NKEYS; k++)
		for (int i = 0; i < 4 && keys[k].keys[i]; i++)
			if (keys[k].keys[i] == ch)
				return &keys[k];
	return NULL;
}

/* ---- modal keys ------------------------------------------------------------- */

static int key_overlay(ui *u, int ch)
{
	/* the overlay shows rows 1..H-2; a page keeps one line of context */
	int shown = getmaxy(stdscr) - 2, page = shown - 1;
	switch (ch) {
	case KEY_UP: u->overlay_top--; break;
	case KEY_DOWN: u->overlay_top++; break;
	case KEY_PPAGE: u->overlay_top -= page; break;
	case KEY_NPAGE: case ' ': u->overlay_top += page; break;
	case KEY_HOME: u->overlay_top = 0; break;
	case KEY_RESIZE: break;
	default:
		/* help: any other key closes; detail: Esc, Enter, q, F10 */
		if (u->mode == M_HELP || ch == 27 || ch == 'q' || ch == KEY_F(10) ||
		    ch == '\n' || ch == '\r' || ch == KEY_ENTER)
			u->mode = M_MAIN;
		return R_DRAW;
	}
	if (u->overlay_top > u->overlay_lines - shown)
		u->overlay_top = u->overlay_lines - shown;
	if (u->overlay_top < 0)
		u->overlay_top = 0;
	return R_DRAW;
}

static int key_confirm(ui *u, int ch)
{
	if (ch == KEY_RESIZE)
		return R_DRAW;
	u->mode = M_MAIN;
	if (ch == 'y' || ch == 'Y')
		send_cmd(u, "kill", u->confirm_ids, u->nconfirm);
	else
		message(u, UI_MESSAGE, "kill cancelled");
	return R_DRAW;
}

/* A wide character typed into the filter, as UTF-8. */
static void filter_add(ui *u, wint_t wc)
{
	char mb[MB_LEN_MAX + 1];
	mbstate_t ps;
	memset(&ps, 0, sizeof ps);
	size_t k = wcrtomb(mb, (wchar_t)wc, &ps);
	size_t n = strlen(u->v.filter);
	if (k == (size_t)-1 || n + k + 1 > sizeof u->v.filter)
		return;
	memcpy(u->v.filter + n, mb, k);
	u->v.filter[n + k] = '\0';
}

static int key_filter(ui *u, int ch, int is_key)
{
	size_t n = strlen(u->v.filter);
	if (is_key && ch == KEY_RESIZE)
		return R_DRAW;
	if ((is_key && (ch == KEY_ENTER)) || (!is_key && (ch == '\n' || ch == '\r'))) {
		u->mode = M_MAIN;
	} else if (!is_key && ch == 27) {
		snprintf(u->v.filter, sizeof u->v.filter, "%s", u->old_filter);
		u->mode = M_MAIN;
	} else if ((is_key && ch == KEY_BACKSPACE) || (!is_key && (ch == 127 || ch == 8))) {
		/* drop the last character, continuation bytes included */
		while (n > 0 && ((unsigned char)u->v.filter[n - 1] & 0xC0) == 0x80)
			n--;
		if (n > 0)
			n--;
		u->v.filter[n] = '\0';
	} else if (!is_key && ch >= 0x20 && ch != 0x7f) {
		filter_add(u, (wint_t)ch);
	}
	u->v.order_dirty = 1;
	return R_DRAW;
}

/*
 * Escape sequences split by a slow link: when the rest of a sequence
 * arrives after ESCDELAY, ncurses hands over ESC and then '[' or 'O' and
 * the bytes after it as if typed.  After an ESC, a '[' or 'O' within a
 * second starts a sequence whose bytes, up to its final byte, are
 * dropped, so they never act as keys.
 */
static int esc_filter(ui *u, int ch, int is_key)
{
	double now = ui_now();
	if (is_key) {
		u->esc_state = 0;
		return 0;
	}
	if (u->esc_state == 1 && now - u->esc_at < 1.0 && (ch == '[' || ch == 'O')) {
		u->esc_state = ch == 'O' ? 3 : 2;
		u->esc_at = now;
		return 1;
	}
	if (u->esc_state >= 2 && now - u->esc_at < 1.0) {
		/* SS3: one final byte; CSI: parameters 0x20-0x3F, final 0x40-0x7E */
		if (u->esc_state == 3 || (ch >= 0x40 && ch <= 0x7e))
			u->esc_state = 0;
		return 1;
	}
	u->esc_state = ch == 27 ? 1 : 0;
	u->esc_at = now;
	return 0;
}

static int handle_key(ui *u, int ch, int is_key)
{
	if (esc_filter(u, ch, is_key))
		return R_NONE;
	if (is_key && ch == KEY_RESIZE)
		return R_DRAW;
	switch (u->mode) {
	case M_HELP:
	case M_DETAIL:
		return key_overlay(u, ch);
	case M_CONFIRM:
		return key_confirm(u, ch);
	case M_FILTER:
		return key_filter(u, ch, is_key);
	}
	if (!is_key && ch == 27)
		return R_NONE;
	/* printable keys and control characters share the table with
	 * function keys; their codes do not overlap (KEY_* >= 0x101) */
	const ui_key *k = key_find(ch);
	if (!k)
		return R_NONE;
	return k->fn(u);
}

/* ---- layout and drawing ----------------------------------------------------- */

static void layout(ui *u)
{
	int W = getmaxx(stdscr), H = getmaxy(stdscr);
	int B = H - 2;                      /* title above, key bar below */
	int th = B * 2 / 5, mh = (B - th) / 2, bh = B - th - mh;
	ui_pane *p = u->v.pane;
	p[UI_P_TRIALS] = (ui_pane){ 0, 1, W, th, p[UI_P_TRIALS].top, 0 };
	int cw = W * 3 / 5;
	p[UI_P_CURVES] = (ui_pane){ 0, 1 + th, cw, mh, 0, 0 };
	p[UI_P_LADDER] = (ui_pane){ cw + 1, 1 + th, W - cw - 1, mh, p[UI_P_LADDER].top, 0 };
	int mw = W * 2 / 5, kw = W / 4;
	int y = 1 + th + mh;
	p[UI_P_MEMORY] = (ui_pane){ 0, y, mw, bh, p[UI_P_MEMORY].top, 0 };
	p[UI_P_MASKS] = (ui_pane){ mw + 1, y, kw, bh, p[UI_P_MASKS].top, 0 };
	p[UI_P_RANKS] = (ui_pane){ mw + kw + 2, y, W - mw - kw - 2, bh, p[UI_P_RANKS].top, 0 };
}

static void draw_title(ui *u)
{
	const ui_model *m = &u->m;
	int W = getmaxx(stdscr);
	attr_t a = ui_role(&u->v, UI_TITLE);
	ui_fill(0, 0, W, a);
	char s[512], name[160];
	ui_clean(name, sizeof name, m->have_study ? m->study.name : "(starting)");
	int n = snprintf(s, sizeof s, " tunetop %s %s [%s] %d trials:", U("\u00b7", "-"), name,
	                 m->have_study ? m->study.state : "-", m->nt);
	for (int k = 0; k < UI_NSTATES; k++)
		if (m->count[k])
			n += snprintf(s + n, sizeof s - (size_t)n, " %d %s", m->count[k],
			              tt_tstate_name(k));
	if (m->npend)
		n += snprintf(s + n, sizeof s - (size_t)n, " %s %d pending", U("\u00b7", "-"),
		              m->npend);
	/* the database's size on disk (its -wal too): one stat per draw */
	struct stat sb;
	double bytes = stat(u->o->db, &sb) == 0 ? (double)sb.st_size : -1;
	char wal[4200];
	snprintf(wal, sizeof wal, "%s-wal", u->o->db);
	if (bytes >= 0 && stat(wal, &sb) == 0)
		bytes += (double)sb.st_size;
	if (bytes >= 0 && n < (int)sizeof s)
		n += snprintf(s + n, sizeof s - (size_t)n, " %s %.1f %s", U("\u00b7", "-"),
		              bytes >= 1 << 30 ? bytes / (1 << 30) : bytes / (1 << 20),
		              bytes >= 1 << 30 ? "GiB" : "MiB");
	int x = ui_put(0, 0, W, a, s);
	if (u->o->readonly)
		x += ui_put(0, x, W - x, ui_role(&u->v, UI_ERROR), " READ-ONLY ");
	if (u->o->engine_done && __atomic_load_n(u->o->engine_done, __ATOMIC_ACQUIRE)) {
		const tt_err *e = u->o->engine_err;
		x += ui_put(0, x + 1, W - x - 1, ui_role(&u->v, e && e->code ? UI_ERROR : UI_MESSAGE),
		            e && e->code ? " engine stopped: error " : " engine finished ");
	}
	char r[48];
	snprintf(r, sizeof r, "%s every %.1fs ", u->o->engine_done ? "embedded" : "attached",
	         u->o->delay / 10.0);
	int rl = (int)strlen(r);
	if (W - rl > x)
		ui_put(0, W - rl, rl, a, r);
}

static void draw_keybar(ui *u)
{
	int W = getmaxx(stdscr), y = getmaxy(stdscr) - 1;
	attr_t st = ui_role(&u->v, UI_STATUS), ky = ui_role(&u->v, UI_KEY);
	ui_fill(y, 0, W, st);
	if (u->mode == M_CONFIRM) {
		char list[128];
		ids_text(list, sizeof list, u->confirm_ids, u->nconfirm);
		ui_putf(y, 0, W, ui_role(&u->v, UI_ERROR),
		        "Kill %d trial%s (%s)? Finished rungs stay.  y = kill, any other key "
		        "cancels", u->nconfirm, u->nconfirm > 1 ? "s" : "", list);
		return;
	}
	if (u->mode == M_FILTER) {
		char f[160];
		ui_clean(f, sizeof f, u->v.filter);
		int x = ui_put(y, 0, W, ky, "Filter: ");
		x += ui_put(y, x, W - x - 1, st, f);
		ui_put(y, x, 1, ky, "_");
		ui_put(y, x + 2, W - x - 2, st, "  (Enter keeps, Esc cancels)");
		return;
	}
	if (u->msg[0] && ui_now() < u->msg_until) {
		ui_put(y, 0, W, ui_role(&u->v, u->msg_role), u->msg);
		return;
	}
	static const char *const bar[][2] = {
		{ "F1", "Help" }, { "/", "Filter" }, { "F6", "Sort" }, { "Spc", "Tag" },
		{ "p", "Promote" }, { "F9", "Kill" }, { "z", "Pause" }, { "Enter", "Detail" },
		{ "Tab", "Pane" }, { "t", "Theme" }, { "l", "Log" }, { "F10", "Quit" },
	};
	int x = 0;
	for (size_t k = 0; k < sizeof bar / sizeof bar[0] && x < W; k++) {
		x += ui_put(y, x, W - x, ky, bar[k][0]);
		x += ui_putf(y, x, W - x, st, "%s ", bar[k][1]);
	}
}

static void draw_too_small(ui *u)
{
	int W = getmaxx(stdscr), H = getmaxy(stdscr);
	char s[96];
	snprintf(s, sizeof s, "terminal too small: %d%s%d, needs %d%s%d", W, U("\u00d7", "x"), H,
	         MIN_W, U("\u00d7", "x"), MIN_H);
	int len = (int)strlen(s) - (ui_utf8 ? 2 : 0);
	int x = (W - len) / 2;
	ui_put(H / 2, x < 0 ? 0 : x, W, ui_role(&u->v, UI_ERROR), s);
	if (H > 2)
		ui_put(H / 2 + 1, 0, W, ui_role(&u->v, UI_NORMAL), "q quits");
}

static void draw(ui *u)
{
	double t0 = ui_now();
	erase();
	int W = getmaxx(stdscr), H = getmaxy(stdscr);
	if (W < MIN_W || H < MIN_H) {
		draw_too_small(u);
	} else if (u->mode == M_HELP) {
		ui_help_draw(&u->v, u->overlay_top, &u->overlay_lines, ui_key_help(), NKEYS);
	} else if (u->mode == M_DETAIL) {
		ui_detail_draw(&u->v, u->overlay_top, &u->overlay_lines);
	} else {
		draw_title(u);
		for (int p = 0; p < UI_NPANES; p++)
			ui_pane_draw(&u->v, p);
		/* separators between side-by-side panes */
		attr_t b = ui_role(&u->v, UI_BORDER);
		const ui_pane *p = u->v.pane;
		int seps[3][3] = { { p[UI_P_LADDER].x - 1, p[UI_P_LADDER].y, p[UI_P_LADDER].h },
		                   { p[UI_P_MASKS].x - 1, p[UI_P_MASKS].y, p[UI_P_MASKS].h },
		                   { p[UI_P_RANKS].x - 1, p[UI_P_RANKS].y, p[UI_P_RANKS].h } };
		for (int k = 0; k < 3; k++)
			for (int y = 0; y < seps[k][2]; y++)
				ui_putwc(seps[k][1] + y, seps[k][0], 0x2502, '|', b);
		draw_keybar(u);
	}
	wnoutrefresh(stdscr);
	doupdate();
	u->draws++;
	u->draw_s += ui_now() - t0;
}

/* What the panes need from the database before a frame: the curves of
 * the selected and the best trials, the selected trial's details. */
static void prepare(ui *u)
{
	ui_trials_update(&u->v);
	int64_t ids[UI_TOPK + 1];
	int n = 0;
	ui_trial *t = ui_trials_selected(&u->v);
	if (t)
		ids[n++] = t->id;
	for (int k = 0; k < u->m.ntop && n < UI_TOPK + 1; k++)
		if (!t || u->m.top[k] != t->id)
			ids[n++] = u->m.top[k];
	ui_model_want(&u->m, ids, n);
	ui_model_select(&u->m, t ? t->id : 0);
}

/* ---- the terminal ------------------------------------------------------------ */

static int curses_on;

static void curses_off(void)
{
	if (curses_on) {
		endwin();
		curses_on = 0;
	}
}

static void write_stats(const ui *u)
{
	const char *path = getenv("TUNETOP_STATS");
	if (!path || !*path)
		return;
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	const ui_stats *s = &u->m.stats;
	fprintf(f, "polls %ld\npolls_read %ld\nrows %ld\nrchar %lld\npoll_s %.6f\n"
	        "draws %ld\ndraw_s %.6f\ntrials %d\n", s->polls, s->polls_read, s->rows,
	        s->rchar, s->poll_s, u->draws, u->draw_s, u->m.nt);
	/* per refresh after the first poll, which reads the whole study */
	long p = s->polls > 1 ? s->polls - 1 : 1;
	fprintf(f, "rows_first %ld\nrchar_first %lld\nscans %ld\n", s->rows_first,
	        s->rchar_first, s->scans);
	fprintf(f, "rchar_per_poll %.1f\nrows_per_poll %.2f\n",
	        (double)(s->rchar - s->rchar_first) / p, (double)(s->rows - s->rows_first) / p);
	fclose(f);
}

int ui_run(const ui_opts *o, tt_err *err)
{
	static ui u; /* large; one explorer per process */
	memset(&u, 0, sizeof u);
	u.o = o;
	int rc = ui_model_open(&u.m, o->db, o->readonly, err);
	if (rc) {
		ui_theme_free(o->theme);
		return rc;
	}
	u.v.m = &u.m;
	u.v.theme = o->theme;
	u.v.sel = -1;
	/* the user's locale decides UTF-8 or ASCII drawing */
	setlocale(LC_ALL, "");
	ui_draw_init();
	u.v.glyphs = ui_glyphs_detect();
	if (!getenv("ESCDELAY"))
		set_escdelay(200); /* room for a slow link; the rest: esc_filter */
	if (!initscr()) {
		ui_model_close(&u.m);
		ui_theme_free(o->theme);
		return tt_err_set(err, TT_ERUNTIME, "cannot set up the terminal (TERM=%s)",
		                  getenv("TERM") ? getenv("TERM") : "");
	}
	curses_on = 1;
	atexit(curses_off);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	ui_theme_apply(u.v.theme);
	if (o->notice)
		message(&u, UI_MESSAGE, "%s", o->notice);
	int delay_ms = (o->delay > 0 ? o->delay : 2) * 100;
	double next_poll = 0;
	int quit = 0;
	u.dirty = 1;
	layout(&u);
	while (!quit && !(o->stop && *o->stop)) {
		double now = ui_now();
		if (now >= next_poll) {
			if (ui_model_poll(&u.m))
				u.dirty = 1;
			if (u.m.note[0]) {
				char clean[512];
				ui_clean(clean, sizeof clean, u.m.note);
				message(&u, UI_MESSAGE, "%s", clean);
				u.m.note[0] = '\0';
				u.dirty = 1;
			}
			if (o->engine_done && !u.engine_seen_done &&
			    __atomic_load_n(o->engine_done, __ATOMIC_ACQUIRE)) {
				u.engine_seen_done = 1;
				if (o->engine_err && o->engine_err->code) {
					char clean[512];
					ui_clean(clean, sizeof clean, o->engine_err->msg);
					message(&u, UI_ERROR, "engine: %s", clean);
					u.msg_until = now + 3600;
				}
				u.dirty = 1;
			}
			next_poll = now + delay_ms / 1000.0;
		}
		/* a message that just expired uncovers the key bar */
		if (u.msg[0] && now >= u.msg_until) {
			u.msg[0] = '\0';
			u.dirty = 1;
		}
		if (u.dirty) {
			prepare(&u);
			draw(&u);
			u.dirty = 0;
		}
		double until = next_poll;
		if (u.msg[0] && u.msg_until < until)
			until = u.msg_until;
		int ms = (int)ceil((until - ui_now()) * 1000);
		timeout(ms < 1 ? 1 : ms);
		wint_t wc;
		int r = get_wch(&wc);
		if (r == ERR)
			continue; /* the timeout, or a signal (then *stop says) */
		int is_key = r == KEY_CODE_YES;
		if (is_key && wc == KEY_RESIZE)
			layout(&u);
		switch (handle_key(&u, (int)wc, is_key)) {
		case R_QUIT:
			quit = 1;
			break;
		case R_DRAW:
			u.dirty = 1;
			break;
		}
	}
	if (o->stop)
		*o->stop = 1;
	curses_off();
	write_stats(&u);
	ui_model_close(&u.m);
	ui_theme_free(u.v.theme);
	free(u.v.order);
	free(u.v.fp);
	return TT_OK;
}
