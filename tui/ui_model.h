/*
 * ui_model.h — what the explorer knows about a study, kept up to date by
 * polling the study database for new rows only.
 *
 * The model owns the explorer's own db_conn (never shared with the engine,
 * see db.h) and an in-memory copy of the trials with their result and
 * rank at every rung, the rank correlations, the pending commands, and the
 * details of the few trials the explorer is looking at (the selected one
 * and the best ones): curve points, per-stage memory, masks and command
 * history, and the paths of its learned hyperparameters.  A poll asks
 * PRAGMA data_version first and reads nothing when no other connection
 * has committed since; otherwise it reads trials by updated_at, rung
 * results by rowid, commands by id, and curve points, learned
 * hyperparameters and freeze-thaw forecasts by rowid.  Text from the database is kept as stored: the drawing code
 * replaces control characters.
 *
 * No ncurses here: the model is plain data, so the panes can draw it and
 * bench/explorer.sh can count what a poll reads.
 */
#ifndef TT_UI_MODEL_H
#define TT_UI_MODEL_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "model.h"
#include "scheduler.h"
#include "study.h"
#include "tstate.h"

#define UI_KEYP_MAX 6     /* key parameters shown per trial */
#define UI_TOPK 5         /* best trials drawn beside the selected one */
#define UI_CURVE_CACHE 8  /* trials whose curve points are kept */
/* Seconds between scans of the trials changed lately (by updated_at, an
 * index range since schema 3, so every poll that finds a change can). */
#define UI_SCAN_S 0.0
#define UI_TOUCHED_MAX 256
/* Learned hyperparameters (the hyper table) known by name: the first this
 * many names the study reports get a column and a curve each. */
#define UI_HYPER_MAX 6

/* Trial states: base/tstate.h's table, in the order of the theme's state
 * roles (UI_STATE_QUEUED ..); the names are tt_tstate_name(). */
enum ui_state { UI_Q = TT_T_QUEUED, UI_RUN = TT_T_RUNNING, UI_PAUSED = TT_T_PAUSED,
                UI_DONE = TT_T_DONE, UI_KILLED = TT_T_KILLED,
                UI_DIVERGED = TT_T_DIVERGED, UI_FAILED = TT_T_FAILED,
                UI_NSTATES = TT_T_COUNT };

typedef struct ui_trial {
	int64_t id;
	char *params;                 /* the JSON as stored (malloc'd) */
	char pstr[UI_KEYP_MAX][12];   /* key parameter values, for display */
	double pval[UI_KEYP_MAX];     /* ... as numbers for sorting (NaN:
	                               * text, compared by pstr) */
	int state;                    /* enum ui_state */
	int rung;                     /* highest rung reached or running */
	double updated_at;
	float acc[TT_RUNG_MAX];       /* val_acc per rung; NaN: no result */
	float loss[TT_RUNG_MAX];
	float kept[TT_RUNG_MAX];      /* FLOPs kept by the gates at the rung's
	                               * end, a fraction of the dense network
	                               * (rungs.macs_kept); NaN: ungated, or
	                               * no result */
	int rank[TT_RUNG_MAX];        /* 1 = best at that rung; 0: none */
	double promoted_at;           /* monotonic time its rung last rose */
	int tagged;
	int pending;                  /* commands not yet applied */
	char pending_verb[16];        /* the latest of them */
	float hval[UI_HYPER_MAX];     /* the latest value of each learned
	                               * hyperparameter (ui_model.hname); NaN:
	                               * none reported */
	int64_t hkey[UI_HYPER_MAX];   /* where it was reported: rung << 32 |
	                               * step; -1: nowhere yet */
	/* freeze-thaw: the latest decision that forecast it (the forecasts
	 * table): its final accuracy's mean and sd at the top budget, and its
	 * expected improvement then; NaN: never forecast */
	float fmu, fsd, fei;
	int64_t fat;                  /* that decision's number; -1: none */
	double aca, fgt;              /* continual: the average accuracy and
	                               * forgetting of its accuracy matrix so
	                               * far (task_acc); NaN: no row yet */
} ui_trial;

typedef struct ui_point {
	int rung;
	int val;                      /* split: 1 val, 0 train */
	long step;
	float epoch, loss, acc;
} ui_point;

typedef struct ui_curve {
	int64_t trial;                /* 0: free slot */
	int64_t after;                /* last metrics rowid read */
	ui_point *p;
	int n, cap;
	unsigned long used;           /* last poll it was asked for */
} ui_curve;

/* A point of a learned hyperparameter's path. */
typedef struct ui_hpoint {
	int rung;
	int name;                     /* index into ui_model.hname */
	long step;
	double value;                 /* NaN when the method reported NaN */
} ui_hpoint;

/* The selected trial's learned hyperparameters as they moved: every point
 * in rowid order, a point reported again replacing its earlier self. */
typedef struct ui_hpath {
	int64_t trial;                /* 0: none */
	int64_t after;                /* last hyper rowid read */
	ui_hpoint *p;
	int n, cap;
} ui_hpath;

/* The selected trial's details, read again when its row changes. */
typedef struct ui_detail {
	int64_t trial;                /* 0: none */
	db_rung *rungs;
	int nrungs;
	db_layer_mem *mem;            /* its latest rung with memory rows */
	int nmem, mem_rung;
	db_layer_mem *full;           /* its rung with every stage trainable */
	int nfull, full_rung;         /* full_rung -1: none stored */
	tt_stage_mem calc[TT_MEM_MAX_STAGES]; /* full training computed by
	                               * building the model (when no stored
	                               * full rung) */
	int ncalc;                    /* 0: could not compute */
	char calc_why[160];           /* what was computed, or why not */
	db_mask *mask;
	int nmask;
	db_command *hist;
	int nhist;
	db_forecast *dec;             /* freeze-thaw: the decisions that chose
	                               * it, in order (its chosen rows) */
	int ndec;
	/* continual: the accuracy matrix a[i][j] (row-major, TT_RUNG_MAX
	 * columns, NaN: not stored), its rows (experiences finished) and
	 * forgetting per task (cl_fgt[j], j < cl_rows - 1) */
	double cl[TT_RUNG_MAX * TT_RUNG_MAX];
	int cl_rows;
	double cl_fgt[TT_RUNG_MAX];
} ui_detail;

typedef struct ui_stats {
	long polls;                   /* polls that asked the database */
	long polls_read;              /* ... that found changes and read rows */
	long rows;                    /* rows read over all polls */
	long long rchar;              /* bytes read() by the explorer's thread */
	long rows_first;              /* ... of which the first poll (the whole */
	long long rchar_first;        /*     study) */
	long scans;                   /* full scans of the trials table */
	double poll_s;                /* time spent polling */
} ui_stats;

typedef struct ui_model {
	db_conn *db;
	char path[512];
	int readonly;

	int have_study;
	db_study study;               /* config freed after parsing */
	int have_cfg;                 /* the stored study file parsed */
	tt_study cfg;
	int nstages;
	tt_rung_def rungdef[TT_RUNG_MAX];
	int nrungs;                   /* rungs of the ladder (or seen) */
	int continual;                /* experiences of a continual study (its
	                               * rungs); 0: not continual */

	int nkeyp;                    /* key parameter names */
	char keyp[UI_KEYP_MAX][TT_NAME_LEN];

	ui_trial *t;                  /* in the order first seen (id order) */
	int nt, cap;
	int *slot;                    /* trial id -> index in t, -1: none */
	int64_t nslot;
	int count[UI_NSTATES];

	db_rank_corr *rc;
	int nrc;
	int masks_exist;
	int64_t top[UI_TOPK];         /* best trials: highest rung, best acc */
	int ntop;

	db_command *pend;             /* commands seen pending */
	int npend, cappend;
	char note[512];               /* the latest command result, for the
	                               * message line; cleared by the UI */

	ui_curve curve[UI_CURVE_CACHE];
	ui_detail det;
	int nhname;                   /* learned hyperparameters, in the order */
	char hname[UI_HYPER_MAX][DB_HYPER_NAME_MAX]; /* first seen */
	int64_t hyper_after;          /* last hyper rowid read for the table */
	int64_t fc_after;             /* last forecasts rowid read */
	int have_fc;                  /* a forecast was read: the table shows
	                               * the forecast columns */
	ui_hpath hp;                  /* the selected trial's paths */
	int64_t want[UI_TOPK + 1];    /* trials whose curves the UI shows */
	int nwant;

	/* polling state */
	int64_t dv;                   /* last PRAGMA data_version */
	int first;                    /* nothing read yet */
	double max_updated;
	int64_t max_id;
	int64_t rung_after, cmd_after;
	int64_t touched[UI_TOUCHED_MAX]; /* trials to read again by id */
	int ntouched;
	double scan_at;               /* when the trials table was last scanned */
	int scan_due;
	unsigned long tick;
	unsigned long gen;            /* bumped on every change seen */
	char err[512];                /* the last read error, "" when fine */
	ui_stats stats;
} ui_model;

/* Open the database (read-only when readonly); TT_EINPUT with the message
 * when it is missing or not a study database. */
int ui_model_open(ui_model *m, const char *path, int readonly, tt_err *err);
void ui_model_close(ui_model *m);

/* Read what changed; returns 1 when something did.  Errors (a locked or
 * vanished file) are kept in m->err and the poll is tried again later. */
int ui_model_poll(ui_model *m);

/* The trials whose curves are wanted (the selected one first); those not
 * cached are read now. */
void ui_model_want(ui_model *m, const int64_t *ids, int n);
const ui_curve *ui_model_curve(const ui_model *m, int64_t trial);

/* Make trial the selected one: read its rungs, memory, masks and command
 * history now (and again whenever its row changes), and its learned
 * hyperparameters' paths (then every poll, new points only). */
void ui_model_select(ui_model *m, int64_t trial);

/* Monotonic seconds, the clock of promoted_at. */
double ui_now(void);

/* The trial with this id, or NULL. */
ui_trial *ui_model_trial(const ui_model *m, int64_t id);
/* The highest rung with a result (the trial's score as the Trials table
 * ranks it, with its accuracy there); -1 when none. */
int ui_trial_top_rung(const ui_trial *t);

/* Queue verb for trial (a row in commands); the trial shows it pending
 * until the engine marks it done.  TT_EINPUT on a read-only model. */
int ui_model_command(ui_model *m, int64_t trial, const char *verb, tt_err *err);

/* A flat JSON object's value for key as text (strings unquoted, escapes
 * kept as is); 0 when absent.  Minimal on purpose: the params column is
 * written by tt_study_params_json. */
int ui_json_get(const char *json, const char *key, char *out, size_t cap);
/* The i-th key of a flat JSON object; 0 past the end. */
int ui_json_key(const char *json, int i, char *out, size_t cap);

#endif
