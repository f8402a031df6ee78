/*
 * theme.h — colours by role, themes as data.
 *
 * Widgets ask for a role ("ladder rung header", "trial killed"), never for
 * a raw colour.  A theme maps every role to a style: a foreground, a
 * background and attributes.  Themes are text files, themes/NAME.theme,
 * one line per role, in the spirit of tmux's style syntax:
 *
 *     # comment
 *     state.killed    = fg=red,bold
 *     table.selected  = fg=black,bg=colour39
 *
 * Colours: default, black, red, green, yellow, blue, magenta, cyan, white,
 * brightblack .. brightwhite, colour0 .. colour255 (also "color").
 * Attributes: bold, dim, underline, reverse, standout, italics, none.
 * A role a theme does not name takes the built-in default theme's style.
 *
 * Lookup of NAME: $XDG_CONFIG_HOME/tunetop/themes/NAME.theme (else
 * ~/.config/tunetop/themes), then the shipped themes, which are compiled
 * into the binary from the files in themes/, so the program works from any
 * directory and after `make install`.  A NAME containing '/' or ending in
 * ".theme" is a path.  A user directory that cannot be searched is
 * skipped, with ui_theme_notice saying so.
 *
 * Terminals: a 256-colour style steps down to the nearest of the 16 basic
 * colours when the terminal has fewer than 256, and to attributes only
 * when it has no colour or NO_COLOR is set (non-empty).  With no colour,
 * every role keeps its attributes, and every role whose emphasis came from
 * colour (alone or beside an attribute) adds the attributes the shipped
 * mono theme gives it, so a selection, a killed trial or a paused one
 * stays visible.
 */
#ifndef TT_THEME_H
#define TT_THEME_H

#include <curses.h>

#include "err.h"

/* Every role, documented in man/tunetop.1 (THEMES) with its key name. */
enum ui_role {
	UI_NORMAL,           /* "normal": text of every pane */
	UI_TITLE,            /* "title": the top bar (study name, counts) */
	UI_BORDER,           /* "pane.border" */
	UI_PANE_TITLE,       /* "pane.title": heading of a pane */
	UI_PANE_FOCUS,       /* "pane.focus": heading of the focused pane */
	UI_TABLE_HEADER,     /* "table.header": column names */
	UI_TABLE_SORT,       /* "table.sort": the column sorted by */
	UI_SELECTED,         /* "table.selected": the cursor row */
	UI_TAGGED,           /* "table.tagged": tagged rows */
	UI_STATE_QUEUED,     /* "state.queued" */
	UI_STATE_RUNNING,    /* "state.running" */
	UI_STATE_PAUSED,     /* "state.paused": shown loudly */
	UI_STATE_DONE,       /* "state.done" */
	UI_STATE_KILLED,     /* "state.killed" */
	UI_STATE_DIVERGED,   /* "state.diverged" */
	UI_STATE_FAILED,     /* "state.failed" */
	UI_PENDING,          /* "command.pending": a command not yet applied */
	UI_AXIS,             /* "plot.axis": axes and tick labels */
	UI_CURVE1,           /* "plot.curve1": the selected trial */
	UI_CURVE2,           /* "plot.curve2" .. "plot.curve6": the top trials */
	UI_CURVE3,
	UI_CURVE4,
	UI_CURVE5,
	UI_CURVE6,
	UI_FRONT,            /* "plot.front": the Masks pane's Pareto front */
	UI_RUNG,             /* "ladder.rung": rung labels */
	UI_PROMOTED,         /* "ladder.promoted": a promotion just seen */
	UI_MEM_PARAMS,       /* "mem.params" */
	UI_MEM_GRADS,        /* "mem.grads" */
	UI_MEM_OPTIM,        /* "mem.optim" */
	UI_MEM_ACT,          /* "mem.activations" */
	UI_MEM_WORK,         /* "mem.workspace" */
	UI_MEM_METHOD,       /* "mem.method" */
	UI_FROZEN,           /* "mem.frozen": frozen-stage marker */
	UI_GATE_OFF,         /* "gate.off": probability 0 */
	UI_GATE_LOW,         /* "gate.low": (0, 0.5) */
	UI_GATE_HIGH,        /* "gate.high": [0.5, 1) */
	UI_GATE_ON,          /* "gate.on": probability 1 */
	UI_RANK_HIGH,        /* "rank.high": correlation >= 0.8 */
	UI_RANK_LOW,         /* "rank.low": correlation < 0.5 */
	UI_HEAT_HIGH,        /* "heat.high": a task accuracy >= 90% */
	UI_HEAT_MID,         /* "heat.mid": [70%, 90%) */
	UI_HEAT_LOW,         /* "heat.low": below 70%, or forgetting >= 10 points */
	UI_STATUS,           /* "status": the bottom key bar */
	UI_KEY,              /* "status.key": key names in the key bar */
	UI_MESSAGE,          /* "message": notices in the bottom line */
	UI_ERROR,            /* "error": errors, refusals, "too small" */
	UI_ROLES
};

typedef struct ui_theme ui_theme;

/* The role's key name in theme files ("state.killed"). */
const char *ui_role_name(int role);
/* Role by key name, -1 if none. */
int ui_role_find(const char *name);

/*
 * Load theme name (see lookup above).  TT_EINPUT with "FILE:LINE: ..."
 * naming the bad role, colour or attribute and what was expected, or
 * "theme 'NAME' not found (looked in ...)" listing the places searched.
 * Needs no terminal: ncurses is touched only by ui_theme_apply.
 */
int ui_theme_load(const char *name, ui_theme **out, tt_err *err);
void ui_theme_free(ui_theme *t);
const char *ui_theme_name(const ui_theme *t);
/* What ui_theme_load skipped and the user should hear about (a user theme
 * directory that cannot be read), or NULL. */
const char *ui_theme_notice(const ui_theme *t);

/* The names of the shipped themes, NULL-terminated: for `t` to cycle
 * and for --help. */
const char *const *ui_theme_builtin_names(void);

/*
 * After initscr(): start_color() when the terminal has colour and NO_COLOR
 * is unset, init the colour pairs, and compute the attribute of every
 * role for this terminal (COLORS, NO_COLOR).  Call again after switching
 * themes.
 */
void ui_theme_apply(ui_theme *t);

/* The ncurses attribute (colour pair included) of role, for attron /
 * wattr_on / chtype / cchar_t.  Valid after ui_theme_apply. */
attr_t ui_attr(const ui_theme *t, int role);

/* ---- for tests and tools: the styles without a terminal ---------------- */

/* A style: colours -1 (the terminal's default) or 0..255, A_* attributes. */
typedef struct ui_style {
	short fg, bg;
	attr_t attrs;
} ui_style;

/* The style of role as loaded, before any step-down, into *out.  Returns
 * 1 if the theme's file named the role, 0 if it came from the default. */
int ui_theme_style(const ui_theme *t, int role, ui_style *out);

/*
 * The style of role on a terminal with `colours` colours (256, 16, 8; 0
 * for no colour or NO_COLOR): what ui_theme_apply gives ncurses.  Colours
 * step down with ui_colour_step; with no colour both are -1 and a role
 * whose style had a colour adds the mono theme's attributes to its own.
 * A foreground that steps down onto its background's colour becomes
 * white or black, whichever reads on it.
 */
void ui_theme_resolve(const ui_theme *t, int role, int colours, ui_style *out);

/* Colour c (-1 or 0..255) on a terminal with `colours` colours: itself
 * when it exists there, else the nearest of the 16 basic colours (xterm
 * palette, by RGB distance), a bright one becoming its base colour on an
 * 8-colour terminal; -1 for -1 or when colours <= 0. */
int ui_colour_step(int c, int colours);

#endif
