/*
 * ui_model.c — the explorer's copy of a study, polled for new rows only;
 * see ui_model.h.
 *
 * Constraints kept: a poll with nothing new costs one PRAGMA; every other
 * read is bounded by what changed (trials by updated_at with a few seconds
 * of slack, rung results by rowid, commands by id, curve points by rowid
 * for at most UI_TOPK + 1 trials, learned hyperparameters by rowid: the
 * latest of each (trial, name) among the new rows, and the selected
 * trial's new points); nothing here draws.
 */
#include "ui_model.h"

#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "clock.h"
#include "continual.h"
#include "optim.h"

/* Why slack: a writer stamps updated_at before its transaction commits,
 * so a row can land with a stamp older than one already read. */
#define UPDATED_SLACK_S 5.0

double ui_now(void)
{
	return tt_clock_mono();
}

/* Bytes read() by this thread so far (the engine's threads share the
 * process, so /proc/self/io would count their reads too); -1 if unknown. */
static long long thread_rchar(void)
{
	char buf[512];
	int fd = open("/proc/thread-self/io", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strstr(buf, "rchar:");
	return p ? atoll(p + 6) : -1;
}

/* ---- minimal JSON ---------------------------------------------------------- */

/* Skip a JSON string starting at the quote p; returns past its end. */
static const char *json_skip_str(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

/* Walk a flat object: calls back with (key, keylen, value, valuelen) per
 * member until fn returns non-zero. */
typedef int (*json_fn)(const char *k, size_t kl, const char *v, size_t vl, void *ctx);

static void json_walk(const char *s, json_fn fn, void *ctx)
{
	const char *p = strchr(s ? s : "", '{');
	if (!p)
		return;
	p++;
	for (;;) {
		while (*p && *p != '"' && *p != '}')
			p++;
		if (*p != '"')
			return;
		const char *k = p + 1, *ke = json_skip_str(p);
		p = ke;
		while (*p == ' ' || *p == ':')
			p++;
		const char *v = p;
		if (*p == '"') {
			p = json_skip_str(p);
		} else {
			while (*p && *p != ',' && *p != '}')
				p++;
		}
		size_t vl = (size_t)(p - v);
		if (vl >= 2 && v[0] == '"')
			v++, vl -= 2;
		while (vl && isspace((unsigned char)v[vl - 1]))
			vl--;
		if (fn(k, (size_t)(ke - 1 - k), v, vl, ctx))
			return;
		if (!*p)
			return;
	}
}

struct json_find {
	const char *key;
	int index, at;
	char *out;
	size_t cap;
	int found;
};

static void copy_cut(char *out, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

static int json_find_key(const char *k, size_t kl, const char *v, size_t vl, void *ctx)
{
	struct json_find *f = ctx;
	if (strlen(f->key) != kl || strncmp(k, f->key, kl) != 0)
		return 0;
	copy_cut(f->out, f->cap, v, vl);
	return f->found = 1;
}

int ui_json_get(const char *json, const char *key, char *out, size_t cap)
{
	struct json_find f = {.key = key, .out = out, .cap = cap};
	out[0] = '\0';
	json_walk(json, json_find_key, &f);
	return f.found;
}

static int json_nth_key(const char *k, size_t kl, const char *v, size_t vl, void *ctx)
{
	struct json_find *f = ctx;
	(void)v, (void)vl;
	if (f->at++ != f->index)
		return 0;
	copy_cut(f->out, f->cap, k, kl);
	return f->found = 1;
}

int ui_json_key(const char *json, int i, char *out, size_t cap)
{
	struct json_find f = {.index = i, .out = out, .cap = cap};
	out[0] = '\0';
	json_walk(json, json_nth_key, &f);
	return f.found;
}

/* ---- trials ------------------------------------------------------------- */

static int state_index(const char *s)
{
	int k = tt_tstate_find(s);
	return k >= 0 ? k : UI_FAILED;
}

int ui_trial_top_rung(const ui_trial *t)
{
	for (int r = TT_RUNG_MAX - 1; r >= 0; r--)
		if (!isnan(t->acc[r]))
			return r;
	return -1;
}

ui_trial *ui_model_trial(const ui_model *m, int64_t id)
{
	if (id <= 0 || id >= m->nslot || m->slot[id] < 0)
		return NULL;
	return &m->t[m->slot[id]];
}

/* The key parameters of t as display strings and numbers. */
static void trial_keyp(const ui_model *m, ui_trial *t)
{
	for (int k = 0; k < m->nkeyp; k++) {
		char v[64];
		t->pval[k] = NAN;
		if (!ui_json_get(t->params, m->keyp[k], v, sizeof v)) {
			snprintf(t->pstr[k], sizeof t->pstr[k], "-");
			continue;
		}
		char *end;
		double x = strtod(v, &end);
		if (end != v && !*end) {
			t->pval[k] = x;
			snprintf(t->pstr[k], sizeof t->pstr[k], "%.3g", x);
		} else {
			copy_cut(t->pstr[k], sizeof t->pstr[k], v, strlen(v));
		}
	}
}

/* The slot of trial id, adding it when new; NULL when out of memory. */
static ui_trial *trial_slot(ui_model *m, int64_t id, const char *params)
{
	ui_trial *t = ui_model_trial(m, id);
	if (t)
		return t;
	if (id <= 0 || id > (int64_t)1 << 30)
		return NULL;
	if (id >= m->nslot) {
		int64_t n = m->nslot ? m->nslot : 1024;
		while (n <= id)
			n *= 2;
		int *s = realloc(m->slot, (size_t)n * sizeof *s);
		if (!s)
			return NULL;
		for (int64_t i = m->nslot; i < n; i++)
			s[i] = -1;
		m->slot = s;
		m->nslot = n;
	}
	if (m->nt == m->cap) {
		int cap = m->cap ? 2 * m->cap : 256;
		ui_trial *nt = realloc(m->t, (size_t)cap * sizeof *nt);
		if (!nt)
			return NULL;
		m->t = nt;
		m->cap = cap;
	}
	t = &m->t[m->nt];
	memset(t, 0, sizeof *t);
	t->id = id;
	t->params = strdup(params);
	if (!t->params)
		return NULL;
	for (int r = 0; r < TT_RUNG_MAX; r++)
		t->acc[r] = t->loss[r] = t->kept[r] = NAN;
	for (int k = 0; k < UI_HYPER_MAX; k++) {
		t->hval[k] = NAN;
	t->aca = t->fgt = NAN;
		t->hkey[k] = -1;
	}
	t->fmu = t->fsd = t->fei = NAN;
	t->fat = -1;
	t->state = UI_Q;
	m->count[UI_Q]++;
	trial_keyp(m, t);
	m->slot[id] = m->nt++;
	return t;
}

/* Key parameter names: the study's [space] in order, else the first keys
 * of the first trial's JSON. */
static void keyp_names(ui_model *m, const char *params)
{
	m->nkeyp = 0;
	if (m->have_cfg) {
		for (int k = 0; k < m->cfg.nspace && m->nkeyp < UI_KEYP_MAX; k++) {
			/* a copy by hand: GCC's -Wrestrict cannot tell that the
			 * study's names and keyp never overlap */
			const char *name = m->cfg.space[k].name;
			size_t len = strnlen(name, TT_NAME_LEN - 1);
			memcpy(m->keyp[m->nkeyp], name, len);
			m->keyp[m->nkeyp++][len] = '\0';
		}
		return;
	}
	while (m->nkeyp < UI_KEYP_MAX &&
	       ui_json_key(params, m->nkeyp, m->keyp[m->nkeyp], TT_NAME_LEN))
		m->nkeyp++;
}

/* Ranks per rung and the top trials, after rung results changed. */
struct rank_item {
	float acc;
	int i;
};

static int cmp_rank(const void *a, const void *b)
{
	const struct rank_item *x = a, *y = b;
	if (x->acc != y->acc)
		return (x->acc < y->acc) - (x->acc > y->acc);
	return (x->i > y->i) - (x->i < y->i);
}

static void rank_all(ui_model *m)
{
	struct rank_item *it = malloc((size_t)(m->nt ? m->nt : 1) * sizeof *it);
	if (!it)
		return;
	for (int r = 0; r < TT_RUNG_MAX; r++) {
		int n = 0;
		for (int i = 0; i < m->nt; i++) {
			m->t[i].rank[r] = 0;
			if (!isnan(m->t[i].acc[r]))
				it[n++] = (struct rank_item){m->t[i].acc[r], i};
		}
		if (!n)
			continue;
		qsort(it, (size_t)n, sizeof *it, cmp_rank);
		for (int k = 0; k < n; k++)
			m->t[it[k].i].rank[r] = k + 1;
	}
	/* top: the highest rung reached with a result, then its accuracy */
	m->ntop = 0;
	for (int i = 0; i < m->nt; i++) {
		const ui_trial *t = &m->t[i];
		int hr = ui_trial_top_rung(t);
		if (hr < 0)
			continue;
		double score = hr * 10.0 + t->acc[hr];
		int k = m->ntop < UI_TOPK ? m->ntop++ : UI_TOPK;
		/* insertion into the sorted top list */
		while (k > 0) {
			const ui_trial *o = ui_model_trial(m, m->top[k - 1]);
			int or_ = -1;
			for (int r = TT_RUNG_MAX - 1; r >= 0 && or_ < 0; r--)
				if (!isnan(o->acc[r]))
					or_ = r;
			if (or_ * 10.0 + o->acc[or_] >= score)
				break;
			if (k < UI_TOPK)
				m->top[k] = m->top[k - 1];
			k--;
		}
		if (k < UI_TOPK)
			m->top[k] = t->id;
	}
	free(it);
}

/* ---- the study and its ladder ---------------------------------------------- */

static void study_parse(ui_model *m)
{
	tt_err err = {0};
	/* the stored text is parsed as if it sat beside the database */
	if (tt_study_parse(m->path, m->study.config, &m->cfg, &err) == TT_OK) {
		m->have_cfg = 1;
		if (tt_model_spec_check(m->cfg.train.model, &m->nstages, NULL) == TT_OK)
			m->nrungs = tt_ladder(&m->cfg, m->nstages, m->rungdef);
		if (m->cfg.fid_kind == TT_FID_EXPERIENCES)
			m->continual = m->cfg.train.continual.tasks;
	}
}

static int load_study(ui_model *m)
{
	db_study s;
	if (db_study_get(m->db, &s, NULL) != TT_OK)
		return 0;
	if (!m->have_study) {
		m->study = s;
		study_parse(m);
		m->have_study = 1;
	} else {
		snprintf(m->study.state, sizeof m->study.state, "%s", s.state);
		free(s.config);
	}
	free(m->study.config);
	m->study.config = NULL;
	return 1;
}

/* ---- polling ------------------------------------------------------------- */

static void set_err(ui_model *m, const tt_err *err)
{
	snprintf(m->err, sizeof m->err, "%s", err->msg);
}

/* Apply a trial row read from the database; 1 when it changed. */
static int trial_apply(ui_model *m, const db_trial *tr)
{
	/* a params row longer than db_trial holds is read whole by id; one
	 * that cannot be read leaves the trial listed without params */
	char *whole = NULL;
	const char *params = tr->params;
	if (tr->params_len >= sizeof tr->params &&
	    db_trial_params(m->db, tr->id, &whole, NULL) == TT_OK)
		params = whole;
	if (!m->nkeyp)
		keyp_names(m, params);
	ui_trial *t = trial_slot(m, tr->id, params);
	free(whole);
	if (!t)
		return 0;
	if (tr->id > m->max_id)
		m->max_id = tr->id;
	if (tr->updated_at > m->max_updated)
		m->max_updated = tr->updated_at;
	int st = state_index(tr->state);
	if (t->state == st && t->rung == tr->rung && t->updated_at == tr->updated_at)
		return 0;
	if (tr->rung > t->rung && !m->first)
		t->promoted_at = ui_now();
	m->count[t->state]--;
	m->count[st]++;
	t->state = st;
	t->rung = tr->rung;
	t->updated_at = tr->updated_at;
	if (t->rung + 1 > m->nrungs && t->rung < TT_RUNG_MAX)
		m->nrungs = t->rung + 1;
	if (t->id == m->det.trial)
		m->det.trial = -m->det.trial; /* read its details again */
	return 1;
}

/* A trial that another row says has changed (a rung result, a command
 * applied): read it by its primary key now. */
static void touch(ui_model *m, int64_t id)
{
	for (int i = 0; i < m->ntouched; i++)
		if (m->touched[i] == id)
			return;
	if (m->ntouched < UI_TOUCHED_MAX)
		m->touched[m->ntouched++] = id;
	else
		m->scan_due = 1; /* too many: scan them all */
}

/*
 * Trials change in three ways the poll can see without reading the whole
 * table: new trials (ids above the largest seen: a range of the primary
 * key), trials named by new rung results or applied commands (read by id),
 * and the rest (a trial starting to run, diverging, failing) only through
 * updated_at: a range of the trials_by_updated index (schema 3) over the
 * last UPDATED_SLACK_S seconds, at most every UI_SCAN_S seconds while the
 * database changes.
 */
static int poll_trials(ui_model *m, int scan)
{
	tt_err err = {0};
	db_trial *tr = NULL;
	int n = 0, changed = 0;
	int rc = scan ? db_trials_since(m->db, m->study.id,
	                                m->first ? -1e300 : m->max_updated - UPDATED_SLACK_S,
	                                &tr, &n, &err)
	              : db_trials_from(m->db, m->study.id, m->max_id, &tr, &n, &err);
	if (rc) {
		set_err(m, &err);
		return 0;
	}
	m->stats.rows += n;
	for (int i = 0; i < n; i++)
		changed |= trial_apply(m, &tr[i]);
	free(tr);
	for (int i = 0; i < m->ntouched; i++) {
		db_trial one;
		if (db_trial_get(m->db, m->touched[i], &one, NULL) == TT_OK) {
			m->stats.rows++;
			changed |= trial_apply(m, &one);
		}
	}
	m->ntouched = 0;
	return changed;
}

/* A trial's accuracy matrix from task_acc into a (TT_RUNG_MAX columns,
 * NaN where nothing is stored); returns its rows (the experiences whose
 * row is complete, from the first), -1 when it could not be read. */
static int cl_matrix(ui_model *m, int64_t id, double *a)
{
	db_task_acc *r = NULL;
	int n = 0;
	for (int i = 0; i < TT_RUNG_MAX * TT_RUNG_MAX; i++)
		a[i] = NAN;
	if (db_task_acc_get(m->db, id, &r, &n, NULL))
		return -1;
	m->stats.rows += n;
	for (int k = 0; k < n; k++)
		if (r[k].experience >= 0 && r[k].experience < TT_RUNG_MAX && r[k].task >= 0 &&
		    r[k].task <= r[k].experience)
			a[r[k].experience * TT_RUNG_MAX + r[k].task] = r[k].acc;
	free(r);
	int rows = 0;
	for (int i = 0; i < TT_RUNG_MAX; i++) {
		int full = 1;
		for (int j = 0; j <= i; j++)
			full &= !isnan(a[i * TT_RUNG_MAX + j]);
		if (!full)
			break;
		rows = i + 1;
	}
	return rows;
}

/* ACA (the mean of the last row) and mean forgetting of the first rows
 * rows of a; fgt (may be NULL) gets forgetting per task. */
static void cl_summary(const double *a, int rows, double *aca, double *fgt, double *per)
{
	double sub[TT_RUNG_MAX * TT_RUNG_MAX];
	*aca = *fgt = NAN;
	if (rows < 1)
		return;
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < rows; j++)
			sub[i * rows + j] = j <= i ? a[i * TT_RUNG_MAX + j] : 0;
	*aca = tt_cl_aca(sub, rows);
	*fgt = tt_cl_forgetting(sub, rows, per);
}

static void cl_trial(ui_model *m, ui_trial *t)
{
	double a[TT_RUNG_MAX * TT_RUNG_MAX], aca, fgt;
	int rows = cl_matrix(m, t->id, a);
	if (rows < 0)
		return;
	cl_summary(a, rows, &aca, &fgt, NULL);
	t->aca = aca;
	t->fgt = fgt;
}

static int poll_rungs(ui_model *m)
{
	tt_err err = {0};
	db_rung *r = NULL;
	int n = 0;
	if (db_rungs_since(m->db, m->study.id, m->rung_after, &m->rung_after, &r, &n,
	                   &err)) {
		set_err(m, &err);
		return 0;
	}
	m->stats.rows += n;
	for (int i = 0; i < n; i++) {
		ui_trial *t = ui_model_trial(m, r[i].trial);
		db_trial one;
		/* a trial created and finished its rung since the last poll: its
		 * row comes now, or this result would be passed over for good */
		if (!t && db_trial_get(m->db, r[i].trial, &one, NULL) == TT_OK) {
			m->stats.rows++;
			trial_apply(m, &one);
			t = ui_model_trial(m, r[i].trial);
		}
		if (!t || r[i].rung < 0 || r[i].rung >= TT_RUNG_MAX)
			continue;
		touch(m, t->id);
		t->acc[r[i].rung] = (float)r[i].val_acc;
		t->loss[r[i].rung] = (float)r[i].val_loss;
		/* the Masks pane's front: read with the result, no query of its own */
		t->kept[r[i].rung] = (float)r[i].macs_kept;
		if (r[i].rung + 1 > m->nrungs)
			m->nrungs = r[i].rung + 1;
		/* task_acc's row r lands before rung r's result */
		if (m->continual)
			cl_trial(m, t);
		if (t->id == m->det.trial)
			m->det.trial = -m->det.trial;
	}
	free(r);
	if (n)
		rank_all(m);
	return n > 0;
}

static void pending_recount(ui_model *m)
{
	for (int i = 0; i < m->nt; i++)
		m->t[i].pending = 0;
	for (int k = 0; k < m->npend; k++) {
		ui_trial *t = ui_model_trial(m, m->pend[k].trial);
		if (t) {
			t->pending++;
			snprintf(t->pending_verb, sizeof t->pending_verb, "%s", m->pend[k].verb);
		}
	}
}

/* New commands (from us or `tunetop cmd`) join the pending list; pending
 * ones the engine has marked done leave it with their result as a note. */
static int poll_commands(ui_model *m)
{
	tt_err err = {0};
	db_command *c = NULL;
	int n = 0, changed = 0;
	if (db_commands_since(m->db, m->cmd_after, &c, &n, &err)) {
		set_err(m, &err);
		return 0;
	}
	m->stats.rows += n;
	for (int i = 0; i < n; i++) {
		m->cmd_after = c[i].id;
		if (c[i].done_at > 0)
			continue;
		if (m->npend == m->cappend) {
			int cap = m->cappend ? 2 * m->cappend : 16;
			db_command *p = realloc(m->pend, (size_t)cap * sizeof *p);
			if (!p)
				break;
			m->pend = p;
			m->cappend = cap;
		}
		m->pend[m->npend++] = c[i];
		changed = 1;
	}
	free(c);
	if (m->npend) {
		db_command *p = NULL;
		int np = 0;
		if (db_commands_pending(m->db, m->pend[0].id - 1, &p, &np, &err) == TT_OK) {
			m->stats.rows += np;
			for (int k = 0; k < m->npend; k++) {
				int still = 0;
				for (int j = 0; j < np && !still; j++)
					still = p[j].id == m->pend[k].id;
				if (still)
					continue;
				db_command done;
				touch(m, m->pend[k].trial);
				if (db_command_get(m->db, m->pend[k].id, &done, NULL) == TT_OK) {
					snprintf(m->note, sizeof m->note, "command %lld: %s trial %lld: %s",
					         (long long)done.id, done.verb, (long long)done.trial,
					         done.result);
					m->stats.rows++;
				}
				m->pend[k--] = m->pend[--m->npend];
				changed = 1;
			}
			free(p);
		}
	}
	if (changed)
		pending_recount(m);
	return changed;
}

static int poll_misc(ui_model *m)
{
	tt_err err = {0};
	db_rank_corr *rc = NULL;
	int n = 0, changed = 0;
	if (db_rank_corr_list(m->db, m->study.id, &rc, &n, &err) == TT_OK) {
		m->stats.rows += n;
		if (n != m->nrc || (n && memcmp(rc, m->rc, (size_t)n * sizeof *rc)))
			changed = 1;
		free(m->rc);
		m->rc = rc;
		m->nrc = n;
	}
	if (!m->masks_exist) {
		db_masks_exist(m->db, &m->masks_exist, NULL);
		changed |= m->masks_exist;
	}
	char state[16];
	snprintf(state, sizeof state, "%s", m->study.state);
	load_study(m);
	m->stats.rows++;
	return changed || strcmp(state, m->study.state) != 0;
}

/* ---- learned hyperparameters ----------------------------------------------- */

/* The index of a learned hyperparameter's name, added when new; -1 past
 * UI_HYPER_MAX names (those are not shown). */
static int hname_index(ui_model *m, const char *name)
{
	for (int k = 0; k < m->nhname; k++)
		if (strcmp(m->hname[k], name) == 0)
			return k;
	if (m->nhname == UI_HYPER_MAX)
		return -1;
	snprintf(m->hname[m->nhname], sizeof m->hname[0], "%s", name);
	return m->nhname++;
}

static int64_t hyper_key(int rung, long step)
{
	return ((int64_t)rung << 32) | (int64_t)(step & 0xffffffff);
}

/* The latest value of every (trial, name) with points since the last
 * poll: the trial table's columns.  A point older than the one shown (a
 * step re-reported by a resumed trial) changes nothing unless it is the
 * same step. */
static int poll_hyper(ui_model *m)
{
	tt_err err = {0};
	db_hyper *h = NULL;
	int n = 0, changed = 0;
	if (db_hyper_latest(m->db, m->hyper_after, &m->hyper_after, &h, &n, &err)) {
		set_err(m, &err);
		return 0;
	}
	m->stats.rows += n;
	for (int i = 0; i < n; i++) {
		ui_trial *t = ui_model_trial(m, h[i].trial);
		db_trial one;
		/* as for rung results: a trial newer than the last read of
		 * trials is read now, or its value would be passed over */
		if (!t && db_trial_get(m->db, h[i].trial, &one, NULL) == TT_OK) {
			m->stats.rows++;
			trial_apply(m, &one);
			t = ui_model_trial(m, h[i].trial);
		}
		int k = hname_index(m, h[i].name);
		if (!t || k < 0)
			continue;
		int64_t key = hyper_key(h[i].rung, h[i].step);
		if (key < t->hkey[k])
			continue;
		t->hkey[k] = key;
		t->hval[k] = (float)h[i].value;
		changed = 1;
	}
	free(h);
	return changed;
}

/* Freeze-thaw forecasts since the last poll: each trial keeps its latest
 * decision's forecast of its final accuracy and its expected improvement.
 * A decision that chose the selected trial reads its details again. */
static int poll_forecasts(ui_model *m)
{
	tt_err err = {0};
	db_forecast *f = NULL;
	int n = 0, changed = 0;
	if (db_forecasts_since(m->db, 0, m->fc_after, 0, &f, &n, &err)) {
		set_err(m, &err);
		return 0;
	}
	m->stats.rows += n;
	for (int i = 0; i < n; i++) {
		m->fc_after = f[i].rowid;
		m->have_fc = 1;
		ui_trial *t = ui_model_trial(m, f[i].trial);
		db_trial one;
		if (!t && db_trial_get(m->db, f[i].trial, &one, NULL) == TT_OK) {
			m->stats.rows++;
			trial_apply(m, &one);
			t = ui_model_trial(m, f[i].trial);
		}
		if (!t || f[i].at < t->fat)
			continue;
		t->fat = f[i].at;
		t->fmu = (float)f[i].final_mu;
		t->fsd = (float)f[i].final_sd;
		t->fei = (float)f[i].ei;
		if (f[i].chosen && t->id == m->det.trial)
			m->det.trial = -m->det.trial;
		changed = 1;
	}
	free(f);
	return changed;
}

static void hpath_reset(ui_hpath *hp, int64_t trial)
{
	hp->trial = trial;
	hp->after = 0;
	hp->n = 0;
}

/*
 * New points of the selected trial's paths.  A point whose (rung, step,
 * name) is already held replaces it: it is looked for among the latest
 * points only, back to the first of an earlier step, since a re-reported
 * step comes after the points of its own steps and never before older
 * ones.
 */
static int hpath_read(ui_model *m)
{
	ui_hpath *hp = &m->hp;
	db_hyper *h = NULL;
	int n = 0;
	if (hp->trial <= 0 ||
	    db_hyper_since(m->db, hp->trial, hp->after, 0, &h, &n, NULL) != TT_OK)
		return 0;
	m->stats.rows += n;
	if (hp->n + n > hp->cap) {
		int cap = hp->cap ? hp->cap : 64;
		while (cap < hp->n + n)
			cap *= 2;
		ui_hpoint *q = realloc(hp->p, (size_t)cap * sizeof *q);
		if (!q) {
			free(h);
			return 0;
		}
		hp->p = q;
		hp->cap = cap;
	}
	for (int i = 0; i < n; i++) {
		hp->after = h[i].rowid;
		int k = hname_index(m, h[i].name);
		if (k < 0)
			continue;
		ui_hpoint pt = {h[i].rung, k, h[i].step, h[i].value};
		int at = hp->n;
		for (int j = hp->n - 1; j >= 0; j--) {
			const ui_hpoint *q = &hp->p[j];
			if (q->rung < pt.rung || (q->rung == pt.rung && q->step < pt.step))
				break;
			if (q->rung == pt.rung && q->step == pt.step && q->name == k) {
				at = j;
				break;
			}
		}
		hp->p[at] = pt;
		if (at == hp->n)
			hp->n++;
	}
	free(h);
	return n > 0;
}

static void curve_read(ui_model *m, ui_curve *c)
{
	db_metric *p = NULL;
	int n = 0;
	if (db_metrics_since(m->db, c->trial, c->after, 0, &p, &n, NULL) != TT_OK)
		return;
	m->stats.rows += n;
	if (c->n + n > c->cap) {
		int cap = c->cap ? c->cap : 64;
		while (cap < c->n + n)
			cap *= 2;
		ui_point *q = realloc(c->p, (size_t)cap * sizeof *q);
		if (!q) {
			free(p);
			return;
		}
		c->p = q;
		c->cap = cap;
	}
	for (int i = 0; i < n; i++) {
		c->p[c->n++] = (ui_point){p[i].rung, strcmp(p[i].split, "val") == 0,
		                          p[i].step, (float)p[i].epoch, (float)p[i].loss,
		                          (float)p[i].acc};
		c->after = p[i].rowid;
	}
	free(p);
}

static ui_curve *curve_find(const ui_model *m, int64_t trial)
{
	for (int k = 0; k < UI_CURVE_CACHE; k++)
		if (m->curve[k].trial == trial)
			return (ui_curve *)&m->curve[k];
	return NULL;
}

const ui_curve *ui_model_curve(const ui_model *m, int64_t trial)
{
	return trial > 0 ? curve_find(m, trial) : NULL;
}

void ui_model_want(ui_model *m, const int64_t *ids, int n)
{
	m->nwant = 0;
	m->tick++;
	for (int i = 0; i < n && m->nwant < UI_TOPK + 1; i++) {
		if (ids[i] <= 0)
			continue;
		m->want[m->nwant++] = ids[i];
		ui_curve *c = curve_find(m, ids[i]);
		if (!c) {
			/* the least recently wanted slot */
			c = &m->curve[0];
			for (int k = 1; k < UI_CURVE_CACHE; k++)
				if (m->curve[k].used < c->used)
					c = &m->curve[k];
			c->trial = ids[i];
			c->after = 0;
			c->n = 0;
			if (m->db)
				curve_read(m, c);
		}
		c->used = m->tick;
	}
}

/* ---- the selected trial ----------------------------------------------------- */

static void detail_free(ui_detail *d)
{
	free(d->rungs);
	free(d->mem);
	free(d->full);
	free(d->mask);
	free(d->hist);
	free(d->dec);
	memset(d, 0, sizeof *d);
}

/* The memory full training would take for this trial, as the engine
 * would allocate it: the model described (not built) with every stage
 * trainable at the trial's batch and optimizer, per stage. */
static void detail_calc(ui_model *m, const ui_trial *t, ui_detail *d)
{
	d->ncalc = 0;
	if (!m->have_cfg) {
		snprintf(d->calc_why, sizeof d->calc_why, "the study file could not be parsed");
		return;
	}
	double v[TT_SPACE_MAX];
	for (int k = 0; k < m->cfg.nspace; k++) {
		const tt_param_spec *ps = &m->cfg.space[k];
		char s[64];
		v[k] = NAN;
		if (!ui_json_get(t->params, ps->name, s, sizeof s))
			continue;
		if (ps->type == TT_P_CHOICE) {
			for (int c = 0; c < ps->nchoices; c++)
				if (strcmp(ps->choices[c], s) == 0 ||
				    (strtod(s, NULL) == strtod(ps->choices[c], NULL) &&
				     isdigit((unsigned char)s[0])))
					v[k] = c;
			if (!strcmp(s, "true") || !strcmp(s, "false"))
				for (int c = 0; c < ps->nchoices; c++)
					if (!strcmp(ps->choices[c], s))
						v[k] = c;
		} else {
			v[k] = strtod(s, NULL);
		}
	}
	tt_train_config c;
	tt_err err = {0};
	if (tt_study_apply(&m->cfg, v, &c, &err)) {
		snprintf(d->calc_why, sizeof d->calc_why, "parameters not understood");
		return;
	}
	/* Fashion-MNIST and the synthetic set are 28x28x1 in 10 classes; an
	 * IDX directory of another shape would need its files read */
	tt_model_config mc = {.spec = c.model, .h = 28, .w = 28, .c = 1, .classes = 10,
	                      .batch = c.batch, .trainable = 0,
	                      .optim_slots = tt_optim_slots(&c.opt), .seed = 1,
	                      .be = tt_backend_get("cpu")};
	tt_model_desc desc;
	if (!mc.be || tt_model_describe(&mc, &desc, &err)) {
		snprintf(d->calc_why, sizeof d->calc_why, "model not described: %.100s",
		         err.msg);
		return;
	}
	int ns = desc.stages;
	for (int s = 0; s < ns && s < TT_MEM_MAX_STAGES; s++) {
		d->calc[d->ncalc] = desc.stage[s];
		d->calc[d->ncalc++].name = NULL; /* points into desc, gone below */
	}
	snprintf(d->calc_why, sizeof d->calc_why,
	         "full training computed: the engine's allocations for all %d stages "
	         "trainable, batch %d, 28x28x1 inputs", ns, c.batch);
}

static void detail_read(ui_model *m, int64_t id)
{
	ui_detail *d = &m->det;
	detail_free(d);
	d->trial = id;
	d->full_rung = -1;
	d->mem_rung = -1;
	ui_trial *t = ui_model_trial(m, id);
	if (!t || !m->db)
		return;
	db_rungs_of(m->db, id, &d->rungs, &d->nrungs, NULL);
	m->stats.rows += d->nrungs;
	/* memory: the latest rung with rows; full: the rung training every
	 * stage (the top of a frozen ladder) */
	for (int k = d->nrungs - 1; k >= 0 && d->mem_rung < 0; k--) {
		db_layer_memory(m->db, id, d->rungs[k].rung, &d->mem, &d->nmem, NULL);
		if (d->nmem)
			d->mem_rung = d->rungs[k].rung;
	}
	m->stats.rows += d->nmem;
	int all = m->nstages;
	for (int k = d->nrungs - 1; k >= 0 && d->full_rung < 0; k--) {
		if (all <= 0 || d->rungs[k].trainable < all)
			continue;
		if (d->rungs[k].rung == d->mem_rung)
			break; /* the same rows: no saving to show */
		db_layer_memory(m->db, id, d->rungs[k].rung, &d->full, &d->nfull, NULL);
		if (d->nfull)
			d->full_rung = d->rungs[k].rung;
	}
	m->stats.rows += d->nfull;
	int frozen = 0;
	for (int k = 0; k < d->nmem; k++)
		frozen |= d->mem[k].frozen;
	if (d->full_rung < 0 && frozen)
		detail_calc(m, t, d);
	if (m->masks_exist) {
		db_masks(m->db, id, &d->mask, &d->nmask, NULL);
		m->stats.rows += d->nmask;
	}
	db_commands_of(m->db, id, &d->hist, &d->nhist, NULL);
	m->stats.rows += d->nhist;
	if (m->have_fc) {
		db_forecast *f = NULL;
		int n = 0;
		if (db_forecasts_since(m->db, id, 0, 0, &f, &n, NULL) == TT_OK) {
			m->stats.rows += n;
			int k = 0;
			for (int i = 0; i < n; i++)
				if (f[i].chosen)
					f[k++] = f[i];
			d->dec = f;
			d->ndec = k;
		}
	}
	if (m->continual) {
		double aca, fgt;
		d->cl_rows = cl_matrix(m, id, d->cl);
		if (d->cl_rows < 0)
			d->cl_rows = 0;
		for (int j = 0; j < TT_RUNG_MAX; j++)
			d->cl_fgt[j] = NAN;
		cl_summary(d->cl, d->cl_rows, &aca, &fgt, d->cl_fgt);
	}
}

void ui_model_select(ui_model *m, int64_t trial)
{
	if (trial != m->hp.trial) {
		hpath_reset(&m->hp, trial);
		if (m->db)
			hpath_read(m);
	}
	if (trial == m->det.trial)
		return;
	detail_read(m, trial);
}

/* ---- open, poll, close ---------------------------------------------------- */

int ui_model_open(ui_model *m, const char *path, int readonly, tt_err *err)
{
	memset(m, 0, sizeof *m);
	snprintf(m->path, sizeof m->path, "%s", path);
	m->readonly = readonly;
	m->first = 1;
	m->dv = -1;
	int rc = db_open(path, readonly ? DB_READONLY : 0, &m->db, err);
	return rc;
}

void ui_model_close(ui_model *m)
{
	db_close(m->db);
	m->db = NULL;
	for (int i = 0; i < m->nt; i++)
		free(m->t[i].params);
	free(m->t);
	free(m->slot);
	free(m->rc);
	free(m->pend);
	free(m->hp.p);
	for (int k = 0; k < UI_CURVE_CACHE; k++)
		free(m->curve[k].p);
	detail_free(&m->det);
	free(m->study.config);
	if (m->have_cfg)
		tt_study_free(&m->cfg);
	memset(m, 0, sizeof *m);
}

int ui_model_poll(ui_model *m)
{
	double t0 = ui_now();
	long long r0 = thread_rchar();
	int changed = 0;
	tt_err err = {0};
	int64_t dv;
	m->stats.polls++;
	if (db_data_version(m->db, &dv, &err)) {
		set_err(m, &err);
		goto out;
	}
	if (!m->have_study) {
		if (!load_study(m))
			goto out; /* the engine has not written it yet */
		changed = 1;
	}
	if (dv == m->dv && !m->first)
		goto out;
	m->stats.polls_read++;
	m->err[0] = '\0';
	m->dv = dv;
	double now = ui_now();
	int scan = m->first || m->scan_due || now - m->scan_at >= UI_SCAN_S;
	if (m->first) {
		/* the whole study once: trials before their rung results */
		changed |= poll_trials(m, 1);
		changed |= poll_rungs(m);
		changed |= poll_commands(m);
		m->ntouched = 0;
	} else {
		changed |= poll_rungs(m);
		changed |= poll_commands(m);
		changed |= poll_trials(m, scan);
	}
	if (scan) {
		m->scan_at = now;
		m->scan_due = 0;
		m->stats.scans++;
	}
	changed |= poll_hyper(m);
	changed |= poll_forecasts(m);
	changed |= poll_misc(m);
	if (m->first) {
		m->stats.rows_first = m->stats.rows;
		long long r1 = thread_rchar();
		m->stats.rchar_first = r0 >= 0 && r1 >= r0 ? r1 - r0 : 0;
	}
	m->first = 0;
	for (int i = 0; i < m->nwant; i++) {
		ui_curve *c = curve_find(m, m->want[i]);
		if (c) {
			int n0 = c->n;
			curve_read(m, c);
			changed |= c->n != n0;
		}
	}
	changed |= hpath_read(m);
	if (m->det.trial < 0) {
		detail_read(m, -m->det.trial);
		changed = 1;
	}
out:
	if (changed)
		m->gen++;
	long long r1 = thread_rchar();
	if (r0 >= 0 && r1 >= r0)
		m->stats.rchar += r1 - r0;
	m->stats.poll_s += ui_now() - t0;
	return changed;
}

int ui_model_command(ui_model *m, int64_t trial, const char *verb, tt_err *err)
{
	if (m->readonly)
		return tt_err_set(err, TT_EINPUT, "read-only: %s refused", verb);
	int64_t id;
	int rc = db_command_add(m->db, trial, verb, &id, err);
	if (rc)
		return rc;
	/* our own write does not change data_version: read it in now */
	poll_commands(m);
	m->gen++;
	return TT_OK;
}
