/*
 * ui_pane.h — the explorer's panes: what each shows, its own scroll and
 * selection, and how it draws itself from the model.
 *
 * A pane owns its items, selection and scrolling; it never reads keys and
 * never talks to the database (the model does), and draws only when the
 * screen manager (ui.c) asks, into stdscr off-screen.  The trial table
 * also keeps the view of the trials: filtered, sorted, tagged.
 */
#ifndef TT_UI_PANE_H
#define TT_UI_PANE_H

#include "theme.h"
#include "ui_model.h"

enum ui_pane_id { UI_P_TRIALS, UI_P_CURVES, UI_P_LADDER, UI_P_MEMORY, UI_P_MASKS,
                  UI_P_RANKS, UI_NPANES };
extern const char *const ui_pane_title[UI_NPANES];

/* Columns of the trial table. */
enum ui_col_kind { UI_C_ID, UI_C_STATE, UI_C_CMD, UI_C_RUNG, UI_C_DEPTH, UI_C_PARAM,
                   UI_C_HYPER, UI_C_ACC, UI_C_RANK, UI_C_FORECAST, UI_C_EI,
                   UI_C_ACA, UI_C_FGT };  /* continual: ACA, forgetting (%) */

typedef struct ui_col {
	int kind, arg;                /* arg: parameter index or rung */
	int width;
	char name[24];
} ui_col;

#define UI_COLS_MAX (7 + UI_KEYP_MAX + UI_HYPER_MAX + 2 * TT_RUNG_MAX)

/* Curve metrics, cycled by a key. */
enum ui_metric { UI_M_VAL_ACC, UI_M_VAL_LOSS, UI_M_TRAIN_LOSS, UI_NMETRICS };

/* A trial as the Masks pane's front plots it: its score as the trial
 * table ranks it (the accuracy at its highest rung with a result) against
 * the FLOPs its gates kept at that rung. */
typedef struct ui_fpoint {
	int i;                        /* index into m->t */
	float x, y;                   /* FLOPs kept (0..1), val acc */
	int on;                       /* on the Pareto front: no other trial
	                               * is as accurate with fewer FLOPs */
} ui_fpoint;

typedef struct ui_pane {
	int x, y, w, h;               /* heading at y, content below */
	int top;                      /* first item shown (scrolling) */
	int items;                    /* items the last draw had, for scroll */
} ui_pane;

typedef struct ui_view {
	ui_model *m;
	ui_theme *theme;
	ui_pane pane[UI_NPANES];
	int focus;

	/* the trial table */
	int *order;                   /* indices into m->t, filtered and sorted */
	int norder, caporder;
	unsigned long order_gen;      /* m->gen the order was built for */
	int order_dirty;
	ui_col col[UI_COLS_MAX];
	int ncol;
	int sort;                     /* index into col */
	int sort_desc;
	char filter[128];
	int64_t sel_id;               /* the selected trial, kept across sorts */
	int sel;                      /* its index in order, -1 when none */
	int ntagged;

	/* curves */
	int metric;                   /* enum ui_metric */
	int hyper;                    /* the selected trial's learned
	                               * hyperparameters instead of metric */
	int by_epoch;                 /* x axis: epochs instead of steps */
	int logy;
	int glyphs;                   /* enum ui_glyphs */

	/* the front: gated trials by FLOPs kept (the front's in order, left
	 * to right), rebuilt when the model changed */
	ui_fpoint *fp;
	int nfp, capfp;
	int nfront;
	int nwait;                    /* trials with a result but no FLOPs
	                               * kept at it (it trained ungated: gate
	                               * strength 0, or no gates) */
	int front_ok;
	unsigned long front_gen;      /* m->gen it was built for */
} ui_view;

attr_t ui_role(const ui_view *v, int role);

/* Rebuild the columns, then the filtered and sorted order when the model
 * or the sort or filter changed; keeps the selection on the same trial. */
void ui_trials_update(ui_view *v);
/* Move the selection by delta rows (clamped), or to index at. */
void ui_trials_move(ui_view *v, int delta);
void ui_trials_goto(ui_view *v, int at);
/* The selected trial or NULL. */
ui_trial *ui_trials_selected(const ui_view *v);
/* Rows of trials the table shows at once. */
int ui_trials_page(const ui_view *v);

/* Rebuild the front when the model changed (ui_view.fp); 0, or -1 out of
 * memory (then no front). */
int ui_front_update(ui_view *v);
/* Select the next trial along the front: dir > 0 the next with more FLOPs
 * kept (up the front), dir < 0 fewer; from a trial off the front, the one
 * nearest in FLOPs kept.  Trials the filter hides are passed over.  0
 * when there is no front to move along. */
int ui_front_step(ui_view *v, int dir);

/* Draw pane p (heading and content). */
void ui_pane_draw(ui_view *v, int p);
/* Full-screen overlays: the detail of the selected trial, the help. */
void ui_detail_draw(ui_view *v, int top, int *lines);
void ui_help_draw(ui_view *v, int top, int *lines, const char *const *keys, int nkeys);

#endif
