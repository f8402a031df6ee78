/*
 * ui.h — the explorer: an ncurses view of a study database, live or
 * finished, that sends promote, kill, pause and resume as commands.
 *
 * ui_run owns the terminal from initscr to endwin and restores it on
 * every way out (a key, a signal through *stop, an error).  It reads the
 * database through its own connection (ui_model), so it runs the same
 * beside an engine thread of this process (`tunetop STUDY.ini`) or
 * another process (`tunetop attach`).
 */
#ifndef TT_UI_H
#define TT_UI_H

#include "err.h"
#include "theme.h"

typedef struct ui_opts {
	const char *db;              /* the study database */
	int readonly;                /* open read-only, refuse p, k and z */
	ui_theme *theme;             /* loaded by the caller; ui_run owns it */
	int delay;                   /* refresh interval, tenths of a second */
	volatile int *stop;          /* set by a signal: leave; ui_run sets it
	                              * when the user quits */
	volatile int *engine_done;   /* embedded: set when the engine thread has
	                              * ended; NULL when attached */
	const tt_err *engine_err;    /* valid once *engine_done: code 0 = ok */
	const char *notice;          /* shown in the message line at start */
} ui_opts;

/* TT_OK after the user quit or *stop was set; TT_EINPUT / TT_ERUNTIME when
 * the database cannot be opened (before the terminal is touched) or the
 * terminal cannot be set up. */
int ui_run(const ui_opts *o, tt_err *err);

/* The keys, one "KEYS  what" line each, as the help and --help list them
 * (NULL-terminated). */
const char *const *ui_key_help(void);

#endif
