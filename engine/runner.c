/*
 * runner.c — the worker pool between the scheduler and the database; see
 * runner.h.
 *
 * Threads: W workers, each with its own database connection, take jobs
 * from the scheduler under one mutex and train them with the lock
 * released; the calling thread polls the commands table every poll_s,
 * applies commands to the scheduler and raises the stop flag of a running
 * job that was killed or paused (the job's on_step hook sees it between
 * training steps).  Everything the explorer shows is written as it
 * happens: trial states, metrics every metric_every steps and at every
 * epoch, checkpoints, what training methods report (gate masks, learned
 * hyperparameters' paths), rung results with per-stage memory, and the
 * rank correlation between every pair of rungs.
 *
 * Samplers (sampler.h): a new trial's configuration comes from the
 * sampler's ask, under the lock, so ids follow creation order; it is
 * stored in trials.params as JSON that reads back exactly, and the trial
 * trains with what reads back, which is also what the sampler's created
 * hears.  Every rung result is told to the sampler right after it is
 * stored, under res_mu, so the sampler hears results in the order of their
 * rows.  Resuming reads every trial's parameters back
 * from trials.params (never redrawing them), creates them again in the
 * sampler in creation order and re-tells it every stored result in row
 * order before it is asked for more: the sampler ends up where the
 * interrupted run left it.
 *
 * Before anything is written, the study file is checked against the
 * fingerprint stored with its database (tt_runner_prepare).
 */
#include "runner.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "fcache.h"
#include "method.h"
#include "rank.h"
#include "sampler.h"
#include "sanitize.h"
#include "scheduler.h"
#include "train.h"

#define METRIC_BATCH 64
/* The masks table (gate probabilities, every row of the trial replaced at
 * once) is written at most every this many metric rows, and at the end. */
#define REPORTS_PER_METRICS 5
/* Methods report about this many times per rung (never more often than
 * every step, never more seldom than the masks are written), so that a
 * learned hyperparameter's path has points enough to draw however short
 * or long the rung. */
#define HYPER_POINTS 50

typedef struct job_slot {
	volatile int stop;        /* 1 kill, 2 pause, 3 shutdown */
	int busy;
	int trial, rung;
} job_slot;

typedef struct runner {
	const tt_study *st;
	const tt_runner_opts *o;
	int64_t study;
	int nstages, nrungs;
	tt_train_data data;
	tt_sched sched;
	tt_sampler_inst sampler;
	pthread_mutex_t mu;
	pthread_mutex_t res_mu;   /* held from storing a rung result until the
	                           * sampler is told it: tells in row order */
	pthread_cond_t cv;
	int quit;                 /* no more jobs will be handed out */
	int workers_left;
	int64_t *ids;             /* scheduler index -> trials.id */
	double (*values)[TT_SPACE_MAX];
	int cap;
	job_slot *slot;           /* one per worker */
	double macs[TT_RUNG_MAX]; /* compute spent per rung */
	double budget_macs;       /* the study's budget; 0: none */
	double train_macs;        /* one training example through the whole model */
	size_t mem[TT_RUNG_MAX];  /* peak accounted bytes per rung */
	int failed;
	int max_trials_now;       /* max_trials */
	tt_err err;               /* the first failure of a worker */
	double t0;
	/* freeze-thaw: the sampler's answer for the job ft_next handed out
	 * (under mu), for new_trial and the forecasts table */
	int proposed;
	tt_sampler_proposal proposal;
	tt_fcache *fcache;        /* the trials' frozen-prefix feature cache */
} runner;

static void logf_(runner *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line of the study log (stderr headless, STUDY.log beside the
 * explorer).  Lines carry text from the database (a command's verb, a
 * trial's state in a message): the whole line goes through tt_san_term,
 * so none of it can steer the terminal that shows the log. */
static void logf_(runner *R, const char *fmt, ...)
{
	if (!R->o->log)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	flockfile(R->o->log);
	fprintf(R->o->log, "[%7.1fs] ", tt_clock_wall() - R->t0);
	tt_san_term_put(R->o->log, line, 0);
	fputc('\n', R->o->log);
	funlockfile(R->o->log);
}

/*
 * db_set_lock_wait's wait for every connection of the study: another
 * process holds the write lock past the busy timeout.  Sleeps 1, 2, 4, ...
 * 30 s (in 100 ms slices, so a stop is heard), never past lock_timeout,
 * and says so on the log; non-zero (give up) once lock_timeout has passed
 * or the study is stopping.  Called with or without R->mu held.
 */
static int lock_wait(void *ud, const char *path, double waited)
{
	runner *R = ud;
	double limit = R->st->lock_timeout;
	if (waited >= limit || (R->o->stop && *R->o->stop))
		return 1;
	double d = waited < 1 ? 1 : waited < 30 ? waited : 30;
	if (d > limit - waited)
		d = limit - waited;
	logf_(R, "%s: database locked by another process, retrying in %.0fs "
	      "(waited %.0fs of lock_timeout %.0fs)", path, ceil(d), waited, limit);
	for (double t = 0; t < d; t += 0.1) {
		if (R->o->stop && *R->o->stop)
			return 1;
		tt_clock_sleep_ms(100);
	}
	return 0;
}

/* Every connection of the study waits out outside locks per lock_timeout;
 * one try waits a quarter of it, at most the usual busy timeout. */
static void lock_wait_on(runner *R, db_conn *db)
{
	if (R->st->lock_timeout <= 0)
		return;
	double ms = R->st->lock_timeout * 250;
	db_set_lock_wait(db, ms < DB_BUSY_TIMEOUT_MS ? (ms < 1 ? 1 : (int)ms) :
	                 DB_BUSY_TIMEOUT_MS, lock_wait, R);
}

/* Room for trial index i; under the lock. */
static int ensure(runner *R, int i)
{
	if (i < R->cap)
		return 0;
	int cap = R->cap ? 2 * R->cap : 64;
	while (cap <= i)
		cap *= 2;
	int64_t *ids = realloc(R->ids, (size_t)cap * sizeof *ids);
	if (!ids)
		return -1;
	R->ids = ids;
	double (*v)[TT_SPACE_MAX] = realloc(R->values, (size_t)cap * sizeof *v);
	if (!v)
		return -1;
	R->values = v;
	R->cap = cap;
	return 0;
}

static int trial_index(const runner *R, int64_t id)
{
	for (int i = 0; i < R->sched.n; i++)
		if (R->ids[i] == id)
			return i;
	return -1;
}

/* ---- what a sampler may read ------------------------------------------- */

static int io_checkpoint(void *ud, int64_t trial, int rung, long *step, void **blob,
                         size_t *len, tt_err *err)
{
	return db_checkpoint_get(ud, trial, rung, step, blob, len, err);
}

/* Under R->mu: whether trial index may train another epoch. */
static int io_alive(void *ud, int index)
{
	const runner *R = ud;
	return tt_sched_can_continue(&R->sched, index);
}

/* The sampler's view of the database, through the calling thread's
 * connection, and of the scheduler's trials and the data. */
static tt_sampler_io sampler_io(runner *R, db_conn *db)
{
	return (tt_sampler_io){ .ud = db, .checkpoint = io_checkpoint, .alive = io_alive,
	                        .alive_ud = R, .h = R->data.train.h, .w = R->data.train.w,
	                        .c = R->data.train.c, .classes = R->data.train.classes };
}

/* Tell the sampler the stored result row of trial index i; under R->mu. */
static int tell_result(runner *R, db_conn *db, int i, const db_rung *row, tt_err *err)
{
	tt_sampler_result r = { .index = i, .id = R->ids[i], .values = R->values[i],
	                        .rung = row->rung, .trainable = row->trainable,
	                        .epochs = row->epochs, .val_loss = row->val_loss,
	                        .val_acc = row->val_acc, .seconds = row->seconds,
	                        .macs = row->train_macs };
	tt_sampler_io io = sampler_io(R, db);
	int rc = tt_sampler_tell(&R->sampler, &r, &io, err);
	if (rc) {
		char msg[sizeof err->msg];
		snprintf(msg, sizeof msg, "%s", err->msg);
		tt_err_set(err, rc, "sampler %s, told trial %lld rung %d: %s",
		           R->sampler.ops->name, (long long)r.id, r.rung, msg);
	}
	return rc;
}

/* ---- a job's hooks ----------------------------------------------------- */

typedef struct job_ctx {
	runner *R;
	db_conn *db;
	job_slot *slot;
	int64_t id;
	int rung;
	long spe;                 /* steps per epoch */
	db_metric buf[METRIC_BATCH];
	int nbuf;
	double t0;
	long masks_every;         /* steps between writes of the masks table */
	long masks_at;            /* the step of the last one; -1: none yet */
	int store_failed;         /* a write failed: the study must stop */
	tt_err store_err;
} job_ctx;

static void flush_metrics(job_ctx *j)
{
	tt_err err = {0};
	if (j->nbuf && !j->store_failed && db_metrics_put(j->db, j->buf, j->nbuf, &err)) {
		logf_(j->R, "trial %lld: metrics not stored: %s", (long long)j->id, err.msg);
		j->store_failed = 1;
		j->store_err = err;
	}
	j->nbuf = 0;
}

static void add_metric(job_ctx *j, long step, const char *split, double loss, double acc)
{
	db_metric *m = &j->buf[j->nbuf++];
	*m = (db_metric){ .trial = j->id, .rung = j->rung, .step = step,
	                  .epoch = (double)step / (double)j->spe, .split = split,
	                  .loss = loss, .acc = acc, .wall_s = tt_clock_wall() - j->t0 };
	if (j->nbuf == METRIC_BATCH)
		flush_metrics(j);
}

static int on_step(void *ud, long step, long total, int epoch, double loss)
{
	job_ctx *j = ud;
	(void)epoch;
	long every = j->R->o->metric_every > 0 ? j->R->o->metric_every : 20;
	if (step % every == 0 || step == total)
		add_metric(j, step, "train", loss, NAN);
	if (j->R->o->stop && *j->R->o->stop)
		j->slot->stop = 3;
	return j->slot->stop != 0 || j->store_failed;
}

static void on_epoch(void *ud, int epoch, long step, double tl, double ta, double vl,
                     double va, double sps)
{
	job_ctx *j = ud;
	(void)epoch, (void)tl, (void)ta, (void)sps;
	add_metric(j, step, "val", vl, va);
	flush_metrics(j);
}

static int on_checkpoint(void *ud, long step, const void *blob, size_t len)
{
	job_ctx *j = ud;
	tt_err err = {0};
	flush_metrics(j);
	if (j->store_failed)
		return 1;
	if (db_checkpoint_put(j->db, j->id, j->rung, step, blob, len, &err)) {
		logf_(j->R, "trial %lld: checkpoint not stored: %s", (long long)j->id, err.msg);
		j->store_failed = 1;
		j->store_err = err;
		return 1;
	}
	return 0;
}

/* A write of a report failed: the study stops (run_job), as for metrics. */
static void report_failed(job_ctx *j, const char *what, const tt_err *err)
{
	logf_(j->R, "trial %lld: %s not stored: %s", (long long)j->id, what, err->msg);
	j->store_failed = 1;
	j->store_err = *err;
}

/* Rows for the masks table (the gates' probabilities, and at the end the
 * final masks) replace the trial's rows of that table, so the explorer's
 * mask pane moves as they learn; at most every masks_every steps, since
 * each write replaces every gate of the trial. */
static void report_masks(job_ctx *j, const tt_method_report *rep)
{
	int n = rep->nrows;
	if (!rep->final && j->masks_at >= 0 && rep->step - j->masks_at < j->masks_every)
		return;
	db_mask *m = malloc((size_t)n * sizeof *m);
	tt_err err = {0};
	if (!m) {
		logf_(j->R, "trial %lld: masks not stored: out of memory", (long long)j->id);
		return;
	}
	for (int i = 0; i < n; i++) {
		const tt_gate_row *g = &rep->rows[i];
		m[i] = (db_mask){ g->stage, g->unit, g->prob, g->on };
	}
	if (db_masks_put(j->db, j->id, m, n, &err))
		report_failed(j, "masks", &err);
	else
		j->masks_at = rep->step;
	free(m);
}

/* Named numbers (learned hyperparameters: EvoGrad's weight decay, angle)
 * become points of their paths in the hyper table at (rung, step); a
 * step reported again (a resumed trial) replaces its point. */
static void report_values(job_ctx *j, const tt_method_report *rep)
{
	int n = rep->nvalues, k = 0;
	db_hyper *h = malloc((size_t)n * sizeof *h);
	tt_err err = {0};
	if (!h) {
		logf_(j->R, "trial %lld: learned hyperparameters not stored: out of memory",
		      (long long)j->id);
		return;
	}
	for (int i = 0; i < n; i++) {
		const tt_method_value *v = &rep->values[i];
		size_t len = v->name ? strlen(v->name) : 0;
		/* a name the table cannot hold is the method's bug: said once,
		 * at the end, rather than stopping the study */
		if (len == 0 || len >= sizeof h[k].name) {
			if (rep->final)
				logf_(j->R, "trial %lld: %s reports a value named '%.40s' (%zu "
				      "bytes; 1 to %d allowed): not stored", (long long)j->id,
				      rep->method, v->name ? v->name : "", len,
				      (int)sizeof h[k].name - 1);
			continue;
		}
		h[k] = (db_hyper){ .trial = j->id, .rung = j->rung, .step = rep->step,
		                   .value = v->value };
		memcpy(h[k].name, v->name, len + 1);
		k++;
	}
	if (k && db_hyper_put(j->db, h, k, &err))
		report_failed(j, "learned hyperparameters", &err);
	free(h);
}

/* Newly finished rows of a continual trial's accuracy matrix, to task_acc. */
static void report_task_acc(job_ctx *j, const tt_method_report *rep)
{
	int n = 0;
	for (int i = rep->cl_first; i < rep->cl_first + rep->cl_rows; i++)
		n += i + 1;
	db_task_acc *a = malloc((size_t)n * sizeof *a);
	tt_err err = {0};
	if (!a) {
		logf_(j->R, "trial %lld: task accuracies not stored: out of memory",
		      (long long)j->id);
		return;
	}
	n = 0;
	for (int i = rep->cl_first; i < rep->cl_first + rep->cl_rows; i++)
		for (int t = 0; t <= i; t++)
			a[n++] = (db_task_acc){ .trial = j->id, .experience = i, .task = t,
			                        .acc = rep->cl_acc[(size_t)i * rep->cl_tasks + t] };
	if (db_task_acc_put(j->db, a, n, &err))
		report_failed(j, "task accuracies", &err);
	free(a);
}

/* What a method reports as it runs (method.h), to the masks and hyper
 * tables.  Metrics go first, so neither pane runs ahead of the curves. */
static void on_report(void *ud, const tt_method_report *rep)
{
	job_ctx *j = ud;
	flush_metrics(j);
	if (!j->store_failed && rep->nrows > 0)
		report_masks(j, rep);
	if (!j->store_failed && rep->nvalues > 0)
		report_values(j, rep);
	if (!j->store_failed && rep->cl_rows > 0)
		report_task_acc(j, rep);
}

/* ---- results ----------------------------------------------------------- */

/* Spearman and Kendall between every pair of rungs over the trials that
 * reached both; under the lock, written with the caller's connection. */
static void update_rank_corr(runner *R, db_conn *db)
{
	int n = R->sched.n;
	double *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
	if (!a || !b)
		goto out;
	for (int ra = 0; ra < R->nrungs; ra++)
		for (int rb = ra + 1; rb < R->nrungs; rb++) {
			for (int i = 0; i < n; i++) {
				const tt_sched_trial *t = &R->sched.t[i];
				a[i] = t->done > ra && t->bracket <= ra ? t->score[ra] : NAN;
				b[i] = t->done > rb && t->bracket <= rb ? t->score[rb] : NAN;
			}
			double rho, tau;
			int used = tt_rank_spearman(a, b, n, &rho, NULL);
			tt_rank_kendall(a, b, n, &tau, NULL);
			if (used < 2)
				continue;
			tt_err err = {0};
			if (db_rank_corr_put(db, R->study, ra, rb, used, rho, tau, &err))
				logf_(R, "rank correlation not stored: %s", err.msg);
		}
out:
	free(a);
	free(b);
}

/* keep_checkpoints = needed keeps the best result's checkpoint of every
 * rung beside what resuming and promotion need (db_checkpoints_prune) */
#define KEEP_BEST 1

/* Prune per the study's keep_checkpoints; joins the caller's transaction. */
static int prune_checkpoints(const runner *R, db_conn *db, tt_err *err)
{
	/* freeze-thaw continues any trial from its latest rung at any time; a
	 * continual study's promoted trial continues from its last rung's
	 * checkpoint, as continue mode does */
	if (R->st->keep_checkpoints == TT_KEEP_ALL || R->sched.kind == TT_SCH_FREEZE_THAW ||
	    (R->sampler.ops && R->sampler.ops->reads_checkpoints))
		return TT_OK;
	return db_checkpoints_prune(db, R->st->mode == TT_MODE_CONTINUE ||
	                                R->st->fid_kind == TT_FID_EXPERIENCES, R->nrungs - 1,
	                            KEEP_BEST, NULL, err);
}

static int store_result(const runner *R, db_conn *db, int64_t id, int rung,
                        const tt_rung_def *rd, const tt_train_result *r, tt_err *err)
{
	db_rung row = { .trial = id, .rung = rung, .trainable = r->trainable,
	                .epochs = rd->epochs, .val_loss = r->val_loss,
	                .val_acc = r->val_acc, .seconds = r->seconds,
	                .train_macs = r->train_macs * r->samples_per_s * r->seconds };
	/* the rungs columns a method's result fills, by the name of its value
	 * (method.h); 0 when no method of the run reports it */
	tt_method_result_value(r, "macs_kept", &row.macs_kept);
	tt_method_result_value(r, "params_kept", &row.params_kept);
	/* every kind of the table: the per-stage ones per stage, the rest
	 * (the workspace, scratch the model allocates once for all its
	 * stages; a method's own buffers) as one row of the whole model,
	 * the method's only when a method booked any */
	db_layer_mem rows[TT_MEM_MAX_STAGES * TT_MEM_KINDS + TT_MEM_KINDS];
	int nr = 0;
	for (int s = 0; s < r->stages && s < TT_MEM_MAX_STAGES; s++) {
		const tt_train_stage *st = &r->stage[s];
		size_t v[TT_MEM_KINDS] = { [TT_MEM_PARAMS] = st->params,
		                           [TT_MEM_GRADS] = st->grads,
		                           [TT_MEM_OPTIM] = st->optim,
		                           [TT_MEM_ACT] = st->activations };
		for (int k = 0; k < TT_MEM_KINDS; k++)
			if (tt_memkinds[k].per_stage)
				rows[nr++] = (db_layer_mem){ s, st->name, tt_memkinds[k].name,
				                             v[k], st->frozen };
	}
	for (int k = 0; k < TT_MEM_KINDS; k++)
		if (!tt_memkinds[k].per_stage && (k == TT_MEM_WORK || r->mem[k]))
			rows[nr++] = (db_layer_mem){ TT_MEM_MODEL, "model", tt_memkinds[k].name,
			                             r->mem[k], 0 };
	int rc;
	if ((rc = db_begin(db, err)))
		return rc;
	if ((rc = db_rung_put(db, &row, err)) ||
	    (rc = db_layer_memory_put(db, id, rung, rows, nr, err)) ||
	    (rc = db_trial_set(db, id, "done", rung, err)) ||
	    (rc = prune_checkpoints(R, db, err)) ||
	    (rc = db_commit(db, err))) {
		db_rollback(db);
		return rc;
	}
	return TT_OK;
}

/* ---- workers ----------------------------------------------------------- */

/* A write failed (disk full, I/O error): stop the whole study with that
 * error.  The trial is left as it is in the database (running), so the
 * next run requeues it and resumes it from its last checkpoint; nothing
 * is marked failed for a fault that is not the trial's. */
static void storage_failed(runner *R, const tt_err *err)
{
	pthread_mutex_lock(&R->mu);
	if (!R->failed) {
		R->failed = 1;
		R->err = *err;
	}
	R->quit = 1;
	pthread_cond_broadcast(&R->cv);
	pthread_mutex_unlock(&R->mu);
}

typedef struct worker_arg {
	runner *R;
	int w;
} worker_arg;

static void run_job(runner *R, db_conn *db, job_slot *slot, int i, int rung)
{
	const tt_study *st = R->st;
	const tt_rung_def *rd = &R->sched.rung[rung];
	int64_t id = R->ids[i];
	tt_err err = {0};
	tt_train_config c;
	if (tt_study_apply(st, R->values[i], &c, &err)) {
		logf_(R, "trial %lld: %s", (long long)id, err.msg);
		pthread_mutex_lock(&R->mu);
		tt_sched_failed(&R->sched, i);
		pthread_mutex_unlock(&R->mu);
		db_trial_set(db, id, "failed", rung, NULL);
		return;
	}
	c.fcache = R->fcache;
	/* workers x threads <= cores, and no more than [train] threads asks */
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int share = (int)(cores > st->workers ? cores / st->workers : 1);
	if (c.threads > share)
		c.threads = share;
	c.trainable = rd->trainable;
	int batch = c.batch < R->data.train.n ? c.batch : R->data.train.n;
	long spe = (R->data.train.n + batch - 1) / batch;
	c.steps = (long)ceil(rd->epochs * (double)spe);
	if (c.steps < 1)
		c.steps = 1;
	int cont = st->fid_kind == TT_FID_EXPERIENCES;
	if (cont) {
		/* rung r: experiences 1..r+1 of the sequence of [fidelity]
		 * epochs, cut where experience r+1 ends (continual.h) */
		long total = (long)ceil(st->epochs * (double)spe);
		if (total < c.continual.tasks)
			total = c.continual.tasks;
		c.continual.total = total;
		c.steps = tt_cl_exp_end(total, c.continual.tasks, rung);
	}
	c.test = 0;

	/* where to start: this rung's checkpoint (a crash or a pause), else in
	 * continue mode the previous rung's final weights, else from scratch */
	void *blob = NULL;
	size_t len = 0;
	long at = 0;
	if (db_checkpoint_get(db, id, rung, &at, &blob, &len, &err) == TT_OK && blob) {
		c.resume = blob;
		c.resume_len = len;
	} else if ((st->sched_kind == TT_SCH_FREEZE_THAW || cont) && rung > 0 &&
	           db_checkpoint_get(db, id, rung - 1, &at, &blob, &len, &err) == TT_OK &&
	           blob) {
		/* freeze-thaw: the next epoch of the same run, a continual
		 * study the next experience, exactly where the last one ended
		 * (optimizer state, data order, streams) */
		c.resume = blob;
		c.resume_len = len;
	} else if (st->mode == TT_MODE_CONTINUE && rung > R->sched.t[i].bracket &&
	           db_checkpoint_get(db, id, rung - 1, &at, &blob, &len, &err) == TT_OK &&
	           blob) {
		c.resume = blob;
		c.resume_len = len;
		c.resume_weights_only = 1;
	}
	logf_(R, "trial %lld rung %d (z=%d, %.3g epochs): %s%s", (long long)id, rung,
	      rd->trainable, rd->epochs, c.resume ? "resume" : "start",
	      c.resume && !c.resume_weights_only && at < (long)(rung * spe) + 1 &&
	      st->sched_kind == TT_SCH_FREEZE_THAW && rung > 0 ? " from the last epoch" :
	      c.resume && !c.resume_weights_only && cont && rung > 0 &&
	      at == tt_cl_exp_end(c.continual.total, c.continual.tasks, rung - 1) ?
	      " from the last experience" :
	      c.resume && !c.resume_weights_only ? " from its checkpoint" :
	      c.resume ? " from the previous rung" : "");

	/* reports: HYPER_POINTS a rung, never rarer than the masks' cadence
	 * (what every report was before learned hyperparameters) */
	long masks_every = REPORTS_PER_METRICS *
	                   (R->o->metric_every > 0 ? R->o->metric_every : 20);
	long report_every = (c.steps + HYPER_POINTS - 1) / HYPER_POINTS;
	if (report_every > masks_every)
		report_every = masks_every;
	job_ctx j = { .R = R, .db = db, .slot = slot, .id = id, .rung = rung, .spe = spe,
	              .t0 = tt_clock_wall(), .masks_every = masks_every, .masks_at = -1 };
	tt_train_hooks h = { .ud = &j, .on_step = on_step, .on_epoch = on_epoch,
	                     .checkpoint_every = R->o->checkpoint_every > 0 ?
	                                         R->o->checkpoint_every :
	                                         st->checkpoint_every > 0 ?
	                                         st->checkpoint_every : 100,
	                     .on_checkpoint = on_checkpoint,
	                     .report_every = report_every > 0 ? report_every : 1,
	                     .on_report = on_report };
	tt_train_result r;
	int rc = tt_train_run(&c, &R->data, &h, &r, &err);
	flush_metrics(&j);
	free(blob);
	if (j.store_failed) {
		storage_failed(R, &j.store_err);
		if (rc == TT_OK || rc == TT_EDIVERGED)
			tt_train_result_free(&r);
		return;
	}

	/* a stop that came after the last step changes nothing: the rung is
	 * finished and its result is kept (a kill keeps finished rungs) */
	int stop = rc == TT_OK && r.steps < c.steps ? slot->stop : 0;
	pthread_mutex_lock(&R->mu);
	if (rc == TT_EDIVERGED) {
		tt_sched_diverged(&R->sched, i);
		pthread_mutex_unlock(&R->mu);
		db_trial_set(db, id, "diverged", rung, NULL);
		logf_(R, "trial %lld rung %d: diverged", (long long)id, rung);
		tt_train_result_free(&r);
		return;
	}
	if (rc != TT_OK) {
		tt_sched_failed(&R->sched, i);
		pthread_mutex_unlock(&R->mu);
		db_trial_set(db, id, "failed", rung, NULL);
		logf_(R, "trial %lld rung %d: failed: %s", (long long)id, rung, err.msg);
		return;
	}
	if (stop) {
		/* killed, paused or shut down: the rung is not finished */
		if (stop == 2)
			tt_sched_stopped(&R->sched, i, rung);
		pthread_mutex_unlock(&R->mu);
		const char *state = stop == 1 ? "killed" : stop == 2 ? "paused" : "queued";
		db_trial_set(db, id, state, rung, NULL);
		logf_(R, "trial %lld rung %d: %s at step %ld", (long long)id, rung, state, r.steps);
		tt_train_result_free(&r);
		return;
	}
	pthread_mutex_unlock(&R->mu);
	/* from the row to the sampler's tell, one result at a time (see the
	 * top of the file) */
	pthread_mutex_lock(&R->res_mu);
	rc = store_result(R, db, id, rung, rd, &r, &err);
	if (rc) {
		pthread_mutex_unlock(&R->res_mu);
		logf_(R, "trial %lld rung %d: result not stored: %s", (long long)id, rung, err.msg);
		storage_failed(R, &err);
		tt_train_result_free(&r);
		return;
	}
	if (c.gates.strength > 0 && r.gates.ngates == 0)
		logf_(R, "trial %lld rung %d (z=%d): no trainable stage has a unit or layer "
		      "to gate; the rung trained ungated", (long long)id, rung, r.trainable);
	pthread_mutex_lock(&R->mu);
	{
		int paused = R->sched.t[i].state == TT_T_PAUSED;
		int killed = R->sched.t[i].state == TT_T_KILLED;
		tt_sched_done(&R->sched, i, rung, r.val_acc);
		R->macs[rung] += r.train_macs * r.samples_per_s * r.seconds;
		if (r.mem_peak > R->mem[rung])
			R->mem[rung] = r.mem_peak;
		update_rank_corr(R, db);
		if (paused || killed)
			db_trial_set(db, id, paused ? "paused" : "killed", rung, NULL);
		char fc[96] = "";
		if (r.fcache)
			snprintf(fc, sizeof fc, ", prefix cached for %lld of %lld examples",
			         r.fcache_hits, r.fcache_hits + r.fcache_misses);
		logf_(R, "trial %lld rung %d (z=%d): val_acc %.4f val_loss %.4f, %.1fs, "
		      "%.0f samples/s, %.1f MiB%s", (long long)id, rung, r.trainable, r.val_acc,
		      r.val_loss, r.seconds, r.samples_per_s, r.mem_peak / 1048576.0, fc);
	}
	{
		/* the result as store_result stored it, so that a resume re-tells
		 * the sampler exactly this */
		db_rung told = { .trial = id, .rung = rung, .trainable = r.trainable,
		                 .epochs = rd->epochs, .val_loss = r.val_loss,
		                 .val_acc = r.val_acc, .seconds = r.seconds,
		                 .train_macs = r.train_macs * r.samples_per_s * r.seconds };
		if (tell_result(R, db, i, &told, &err)) {
			logf_(R, "%s", err.msg);
			if (!R->failed) {
				R->failed = 1;
				R->err = err;
			}
			R->quit = 1;
			pthread_cond_broadcast(&R->cv);
		}
	}
	pthread_mutex_unlock(&R->mu);
	pthread_mutex_unlock(&R->res_mu);
	tt_train_result_free(&r);
}

/*
 * Freeze-thaw's next job, under R->mu: a manual promotion or a resumed
 * trial first (tt_sched_next), then, while the budget (in epochs) lasts,
 * the sampler's answer: a new trial at epoch 1, or one more epoch of a
 * trial.  A sampler that never answers CONTINUE (random, halton) has each
 * trial trained to the top before the next one starts: random search at
 * full fidelity.  TT_JOB_NONE when the sampler failed (*err says why).
 */
static tt_job ft_next(runner *R, db_conn *db, tt_err *err)
{
	tt_sched *s = &R->sched;
	tt_job job = tt_sched_next(s);
	if (job.kind != TT_JOB_ASK)
		return job;
	int busy = 0;
	for (int i = 0; i < s->n; i++)
		busy |= s->t[i].state == TT_T_RUNNING || s->t[i].state == TT_T_QUEUED;
	tt_job wait = { busy ? TT_JOB_WAIT : TT_JOB_DONE, -1, -1, 0 };
	if (busy) /* one epoch at a time: decide after the running one */
		return wait;
	if (R->st->budget > 0 && tt_sched_epochs_used(s) >= R->st->budget)
		return wait;
	if (!R->sampler.ops->freeze_thaw) {
		for (int i = 0; i < s->n; i++)
			if (tt_sched_can_continue(s, i))
				return tt_sched_continue(s, i);
		if (s->n >= R->max_trials_now)
			return wait;
		int i = tt_sched_add(s);
		return i < 0 ? wait : (tt_job){ TT_JOB_RUN, i, 0, 1 };
	}
	tt_sampler_io io = sampler_io(R, db);
	tt_sampler_proposal p;
	int rc = tt_sampler_ask(&R->sampler, s->n, &io, &p, err);
	if (rc) {
		char msg[sizeof err->msg];
		snprintf(msg, sizeof msg, "%s", err->msg);
		tt_err_set(err, rc, "sampler %s: %s", R->sampler.ops->name, msg);
		return (tt_job){ TT_JOB_NONE, -1, -1, 0 };
	}
	if (p.kind == TT_SAMPLER_CONTINUE) {
		if (p.index < 0)
			return wait; /* nothing left to train */
		if (!tt_sched_can_continue(s, p.index)) {
			tt_err_set(err, TT_ERUNTIME, "sampler %s chose trial index %d, which "
			           "cannot train another epoch", R->sampler.ops->name, p.index);
			return (tt_job){ TT_JOB_NONE, -1, -1, 0 };
		}
		R->proposed = 1;
		R->proposal = p;
		return tt_sched_continue(s, p.index);
	}
	if (s->n >= R->max_trials_now)
		return wait;
	int i = tt_sched_add(s);
	if (i < 0)
		return wait;
	R->proposed = 1;
	R->proposal = p;
	return (tt_job){ TT_JOB_RUN, i, 0, 1 };
}

/* The decision that handed out trial index i, to the forecasts table: one
 * row per candidate trial (the trial chosen marked), so that it can be
 * explained afterwards.  Under R->mu, after new_trial made i's id. */
static void store_forecasts(runner *R, db_conn *db, int i)
{
	const tt_sampler_forecast *rows;
	int n = 0;
	if (!R->sampler.ops->explain || R->sampler.ops->explain(R->sampler.state, &rows, &n) ||
	    n <= 0)
		return;
	db_forecast *f = malloc((size_t)n * sizeof *f);
	if (!f)
		return;
	int k = 0;
	for (int q = 0; q < n; q++) {
		int t = rows[q].index;
		if (t < 0 || t >= R->sched.n)
			continue;
		f[k++] = (db_forecast){ .trial = R->ids[t], .budget = rows[q].budget,
		                        .mu = rows[q].mu, .sd = rows[q].sd, .ei = rows[q].ei,
		                        .chosen = rows[q].chosen,
		                        .final_mu = rows[q].final_mu,
		                        .final_sd = rows[q].final_sd };
	}
	tt_err err = {0};
	int64_t at = 0;
	if (k && db_forecasts_put(db, f, k, &at, &err))
		logf_(R, "forecasts not stored: %s", err.msg);
	else if (k)
		logf_(R, "decision %lld: trial %lld to epoch %d (%d candidates)", (long long)at,
		      (long long)R->ids[i], R->sched.t[i].done + 1, k);
	free(f);
}

/*
 * Create trial index i (the scheduler's new one): ask the sampler, store
 * the configuration, and keep what reads back from the stored JSON, which
 * is what a resume will read (the same value of every option's own type);
 * the sampler hears that the trial exists with those values.  Under
 * R->mu, so ids follow creation order.
 */
static int new_trial(runner *R, db_conn *db, int i, const tt_sampler_proposal *given,
                     tt_err *err)
{
	char json[1024];
	tt_sampler_proposal p;
	tt_sampler_io io = sampler_io(R, db);
	int rc;
	if (ensure(R, i))
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	if (given)
		p = *given;
	else if ((rc = tt_sampler_ask(&R->sampler, i, &io, &p, err)))
		return rc;
	if (p.kind != TT_SAMPLER_NEW)
		return tt_err_set(err, TT_ERUNTIME, "sampler %s answered 'continue trial %d', "
		                  "which only [scheduler] kind = freeze-thaw acts on",
		                  R->sampler.ops->name, p.index);
	size_t n = tt_study_params_json(R->st, p.values, json, sizeof json);
	if (n >= sizeof json)
		return tt_err_set(err, TT_ERUNTIME, "trial %d: its parameters take %zu bytes "
		                  "as JSON, more than %zu", i, n, sizeof json - 1);
	if ((rc = tt_study_params_parse(R->st, json, R->values[i], err)) ||
	    (rc = db_trial_add(db, R->study, json, &R->ids[i], err)))
		return rc;
	return tt_sampler_created(&R->sampler, i, R->values[i], err);
}

static void *worker(void *arg)
{
	worker_arg *a = arg;
	runner *R = a->R;
	job_slot *slot = &R->slot[a->w];
	db_conn *db = NULL;
	tt_err err = {0};
	if (db_open(R->st->db, 0, &db, &err)) {
		pthread_mutex_lock(&R->mu);
		if (!R->failed) {
			R->failed = 1;
			R->err = err;
		}
		R->quit = 1;
		goto out;
	}
	lock_wait_on(R, db);
	pthread_mutex_lock(&R->mu);
	tt_err job_err = {0};
	for (;;) {
		tt_job job = { TT_JOB_WAIT, -1, -1, 0 };
		R->proposed = 0;
		while (!R->quit) {
			if (R->o->stop && *R->o->stop) {
				R->quit = 1;
				break;
			}
			double spent = 0;
			for (int r = 0; r < R->nrungs; r++)
				spent += R->macs[r];
			if (R->sched.kind == TT_SCH_FREEZE_THAW)
				job = ft_next(R, db, &job_err);
			else if (R->budget_macs > 0 && spent >= R->budget_macs)
				job.kind = TT_JOB_DONE; /* budget spent: let running jobs end */
			else
				job = tt_sched_next(&R->sched);
			if (job.kind == TT_JOB_NONE) { /* the sampler failed */
				err = job_err;
				if (!R->failed) {
					R->failed = 1;
					R->err = err;
				}
				R->quit = 1;
				break;
			}
			if (job.kind == TT_JOB_RUN)
				break;
			if (job.kind == TT_JOB_DONE) {
				/* done only when no other worker is still busy */
				int busy = 0;
				for (int w = 0; w < R->st->workers; w++)
					busy |= R->slot[w].busy;
				if (!busy) {
					R->quit = 1;
					break;
				}
			}
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200000000;
			if (ts.tv_nsec >= 1000000000)
				ts.tv_sec++, ts.tv_nsec -= 1000000000;
			pthread_cond_timedwait(&R->cv, &R->mu, &ts);
		}
		if (R->quit)
			break;
		int i = job.trial;
		if (job.is_new && new_trial(R, db, i, R->proposed ? &R->proposal : NULL, &err)) {
			if (!R->failed) {
				R->failed = 1;
				R->err = err;
			}
			R->quit = 1;
			break;
		}
		if (R->proposed)
			store_forecasts(R, db, i);
		slot->busy = 1;
		slot->stop = 0;
		slot->trial = i;
		slot->rung = job.rung;
		int promoted = job.rung > R->sched.t[i].bracket;
		pthread_mutex_unlock(&R->mu);
		if (db_trial_set(db, R->ids[i], "running", job.rung, &err))
			logf_(R, "trial %lld: state not stored: %s", (long long)R->ids[i], err.msg);
		if (promoted)
			db_rung_promoted(db, R->ids[i], job.rung - 1, NULL);
		run_job(R, db, slot, i, job.rung);
		pthread_mutex_lock(&R->mu);
		slot->busy = 0;
		pthread_cond_broadcast(&R->cv);
	}
out:
	R->workers_left--;
	pthread_cond_broadcast(&R->cv);
	pthread_mutex_unlock(&R->mu);
	db_close(db);
	return NULL;
}

/* ---- commands ---------------------------------------------------------- */

static void apply_commands(runner *R, db_conn *db, int64_t *after)
{
	db_command *cmd = NULL;
	int n = 0;
	tt_err err = {0};
	if (db_commands_pending(db, *after, &cmd, &n, &err)) {
		logf_(R, "commands not read: %s", err.msg);
		return;
	}
	for (int k = 0; k < n; k++) {
		const db_command *c = &cmd[k];
		*after = c->id;
		pthread_mutex_lock(&R->mu);
		int i = trial_index(R, c->trial);
		const char *why = NULL;
		int stop = 0;
		if (i < 0)
			why = "no such trial in this study";
		else if (strcmp(c->verb, "promote") == 0)
			why = tt_sched_promote(&R->sched, i);
		else if (strcmp(c->verb, "kill") == 0)
			why = tt_sched_kill(&R->sched, i), stop = 1;
		else if (strcmp(c->verb, "pause") == 0)
			why = tt_sched_pause(&R->sched, i), stop = 2;
		else if (strcmp(c->verb, "resume") == 0)
			why = tt_sched_resume(&R->sched, i);
		else
			why = "unknown command: expected promote, kill, pause or resume";
		const char *state = NULL;
		if (!why && stop) {
			int running = 0;
			for (int w = 0; w < R->st->workers; w++)
				if (R->slot[w].busy && R->slot[w].trial == i) {
					R->slot[w].stop = stop;
					running = 1;
				}
			if (!running)
				state = stop == 1 ? "killed" : "paused";
		}
		if (!why && strcmp(c->verb, "resume") == 0)
			state = R->sched.t[i].state == TT_T_QUEUED ? "queued" : "done";
		int rung = i >= 0 ? (R->sched.t[i].done > 0 ? R->sched.t[i].done - 1 : 0) : 0;
		pthread_cond_broadcast(&R->cv);
		pthread_mutex_unlock(&R->mu);
		if (state)
			db_trial_set(db, c->trial, state, rung, NULL);
		char result[256];
		snprintf(result, sizeof result, "%s%s", why ? "refused: " : "ok", why ? why : "");
		if (db_command_done(db, c->id, result, &err))
			logf_(R, "command %lld not marked done: %s", (long long)c->id, err.msg);
		logf_(R, "command %lld: %s trial %lld: %s", (long long)c->id, c->verb,
		      (long long)c->trial, result);
	}
	free(cmd);
}

/* ---- restore and summary ----------------------------------------------- */

static int parse_state(const char *s)
{
	int k = tt_tstate_find(s);
	return k >= 0 ? k : TT_T_FAILED;
}

/*
 * Rebuild the scheduler and the sampler from the database.  Every trial's
 * parameters are read back from trials.params, in trial id order (the
 * creation order), and each is created again in the sampler; then the
 * sampler is told every stored rung result in the order of their rows.
 * Parameters that do not read back against this study's [space] stop the
 * run before anything is written (the trials that were running are put
 * back in the queue only after).
 */
static int restore(runner *R, db_conn *db, tt_err *err)
{
	db_trial *tr = NULL;
	db_rung *rg = NULL, *told = NULL;
	int nt = 0, nr = 0, ntold = 0, rc;
	int64_t last = 0;
	if ((rc = db_trials(db, R->study, &tr, &nt, err)) ||
	    (rc = db_rungs(db, R->study, &rg, &nr, err)) ||
	    (rc = db_rungs_since(db, R->study, 0, &last, &told, &ntold, err)))
		goto out;
	for (int k = 0; k < nt; k++) {
		double score[TT_RUNG_MAX] = {0};
		int promoted[TT_RUNG_MAX] = {0}, done = 0, bracket = tr[k].rung;
		for (int q = 0; q < nr; q++) {
			if (rg[q].trial != tr[k].id || rg[q].rung < 0 || rg[q].rung >= TT_RUNG_MAX)
				continue;
			score[rg[q].rung] = rg[q].val_acc;
			promoted[rg[q].rung] = rg[q].promoted;
			if (rg[q].rung + 1 > done)
				done = rg[q].rung + 1;
			if (rg[q].rung < bracket)
				bracket = rg[q].rung;
		}
		/* a trial that was running when the last run ended goes back to
		 * the queue (db_trials_requeue below does the same to its row) */
		int state = parse_state(tr[k].state);
		if (state == TT_T_RUNNING)
			state = TT_T_QUEUED;
		if (ensure(R, k) || tt_sched_restore(&R->sched, state, bracket, done, score,
		                                     promoted) != k) {
			rc = tt_err_set(err, TT_ERUNTIME, "out of memory");
			goto out;
		}
		R->ids[k] = tr[k].id;
		tt_err e = {0};
		if (tt_study_params_parse(R->st, tr[k].params, R->values[k], &e)) {
			rc = tt_err_set(err, TT_EINPUT, "%s: trial %lld: %s; the database does not "
			                "match %s", R->st->db, (long long)tr[k].id, e.msg,
			                R->st->path);
			goto out;
		}
		if ((rc = tt_sampler_created(&R->sampler, k, R->values[k], err)))
			goto out;
	}
	for (int q = 0; q < ntold; q++) {
		int k = trial_index(R, told[q].trial);
		if (k < 0 || told[q].rung < 0 || told[q].rung >= R->nrungs)
			continue; /* not a result of this study's ladder */
		if ((rc = tell_result(R, db, k, &told[q], err)))
			goto out;
	}
	if ((rc = db_trials_requeue(db, R->study, NULL, err)))
		goto out;
	if (nt)
		logf_(R, "resuming: %d trials and %d rung results already in %s; the %s "
		      "sampler has heard them again", nt, nr, R->st->db, R->sampler.ops->name);
out:
	free(tr);
	free(rg);
	free(told);
	return rc;
}

static void summary(runner *R, db_conn *db)
{
	FILE *f = R->o->log;
	if (!f)
		return;
	const tt_sched *s = &R->sched;
	int best = -1, best_done = 0;
	for (int i = 0; i < s->n; i++) {
		const tt_sched_trial *t = &s->t[i];
		if (t->done == 0)
			continue;
		double sc = t->score[t->done - 1];
		if (best < 0 || t->done > best_done ||
		    (t->done == best_done && sc > s->t[best].score[best_done - 1]))
			best = i, best_done = t->done;
	}
	fputs("\nstudy ", f);
	tt_san_term_put(f, R->st->name, 0);
	fprintf(f, ": %d trials, database ", s->n);
	tt_san_term_put(f, R->st->db, 0);
	fputc('\n', f);
	if (best >= 0) {
		char json[1024];
		tt_study_params_json(R->st, R->values[best], json, sizeof json);
		fprintf(f, "best trial %lld: ", (long long)R->ids[best]);
		tt_san_term_put(f, json, 0);
		fputc('\n', f);
		for (int r = s->t[best].bracket; r < s->t[best].done; r++)
			fprintf(f, "  rung %d (z=%d, %.3g epochs): val_acc %.4f\n", r,
			        s->rung[r].trainable, s->rung[r].epochs, s->t[best].score[r]);
	}
	fprintf(f, "rung  trainable  epochs  results  compute(GMAC)  peak memory (MiB)\n");
	for (int r = 0; r < s->nrungs; r++) {
		int n = 0;
		for (int i = 0; i < s->n; i++)
			n += s->t[i].done > r && s->t[i].bracket <= r;
		fprintf(f, "%4d  %9d  %6.3g  %7d  %13.1f  %17.1f\n", r, s->rung[r].trainable,
		        s->rung[r].epochs, n, R->macs[r] / 1e9, R->mem[r] / 1048576.0);
	}
	db_rank_corr *rc = NULL;
	int nrc = 0;
	if (db_rank_corr_list(db, R->study, &rc, &nrc, NULL) == TT_OK && nrc) {
		fprintf(f, "rank correlation between rungs:\n  a  b    n  spearman  kendall\n");
		for (int k = 0; k < nrc; k++)
			fprintf(f, "%3d %2d %4d  %8.3f  %7.3f\n", rc[k].rung_a, rc[k].rung_b,
			        rc[k].n, rc[k].spearman, rc[k].kendall);
	}
	free(rc);
	/* a ladder that spent its budget below the top says so: its best is
	 * a low-fidelity number, not what the study was for */
	int top = s->nrungs - 1, at_top = 0;
	double spent = 0;
	for (int r = 0; r < s->nrungs; r++)
		spent += R->macs[r];
	for (int i = 0; i < s->n; i++)
		at_top += s->t[i].done > top;
	if (!at_top && best >= 0 && R->budget_macs > 0 && spent >= R->budget_macs)
		fprintf(f, "NOTE: the budget (%.3g full-fidelity epochs) ran out before any "
		        "trial reached the top rung (z=%d, %.3g epochs): the best result is "
		        "from rung %d; raise [study] budget, or start the ladder higher "
		        "([fidelity] min_trainable) or steeper (eta)\n", R->st->budget,
		        s->rung[top].trainable, s->rung[top].epochs, best_done - 1);
}

/* ---- the study file against its database -------------------------------- */

/*
 * What the database says the study's results mean: *was is its stored
 * fingerprint, or, for a study made before fingerprints were stored, the
 * fingerprint of the study text it stored (NULL when that no longer
 * parses: then nothing can be compared), NULL too for a database without
 * a study yet.  Read-only: the file is opened as it is, without
 * migrating it, so a refusal leaves it untouched.
 */
static int stored_fingerprint(const tt_study *st, char **was, tt_err *err)
{
	db_conn *ro = NULL;
	db_study ds = {0};
	int rc;
	*was = NULL;
	if ((rc = db_open(st->db, DB_READONLY | DB_AS_IS, &ro, err)))
		return rc;
	rc = db_study_get(ro, &ds, err);
	if (rc == TT_EINPUT) {
		rc = TT_OK; /* no study yet: made now from this file */
		goto out;
	}
	if (rc || (rc = db_study_fingerprint(ro, was, err)))
		goto out;
	if (!*was) {
		/* made before fingerprints: the text it was made from stands in,
		 * read by today's parser with today's defaults */
		tt_study old;
		tt_err e = {0};
		if (tt_study_parse(st->path, ds.config, &old, &e) == TT_OK) {
			*was = tt_study_fingerprint(&old);
			tt_study_free(&old);
			if (!*was)
				rc = tt_err_set(err, TT_ERUNTIME, "out of memory");
		}
	}
out:
	free(ds.config);
	db_close(ro);
	return rc;
}

/* TT_EINPUT naming every change when the fingerprints differ. */
static int refuse_changed(const tt_study *st, const char *was, const char *now,
                          tt_err *err)
{
	char what[400];
	if (tt_study_fingerprint_diff(was, now, what, sizeof what) <= 0)
		return TT_OK;
	return tt_err_set(err, TT_EINPUT, "%s: changed since %s was made: %s; its results "
	                  "would not mean what the file says: restore the file, or give it "
	                  "a new db = in [study]", st->path, st->db, what);
}

int tt_runner_prepare(const tt_study *st, tt_err *err)
{
	char *now = tt_study_fingerprint(st), *was = NULL;
	db_conn *db = NULL;
	int rc;
	struct stat sb;
	if (!now)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	/* a missing or empty file is a new database: nothing to check */
	if (stat(st->db, &sb) == 0 && sb.st_size > 0 &&
	    (rc = stored_fingerprint(st, &was, err)))
		goto out;
	if (was && (rc = refuse_changed(st, was, now, err)))
		goto out;
	/* Now for writing: a new database gets its study and fingerprint in
	 * one transaction; an older one is migrated and given the
	 * fingerprint it was checked against.  The stored one is compared
	 * again, in case another process made the study since the look above
	 * (then nothing is written either: the transaction is rolled back). */
	if ((rc = db_open(st->db, DB_CREATE, &db, err)))
		goto out;
	int64_t id;
	char *stored = NULL;
	if ((rc = db_begin(db, err)) ||
	    (rc = db_study_ensure(db, st->name, st->text, st->seed, &id, err)) ||
	    (rc = db_study_fingerprint(db, &stored, err)) ||
	    (stored && (rc = refuse_changed(st, stored, now, err))) ||
	    (!stored && (rc = db_study_set_fingerprint(db, id, now, err))) ||
	    (rc = db_commit(db, err)))
		db_rollback(db);
	free(stored);
out:
	free(now);
	free(was);
	db_close(db);
	return rc;
}

/* ---- the study --------------------------------------------------------- */

/*
 * Whether a trial can run at all, before any does: the checks of `tunetop
 * train` (tt_train_check) on the study's fixed settings, then the model
 * built once at batch 1 on the data's shape, which is where a spec the
 * input cannot take (too many poolings for 28x28) fails.  TT_EINPUT names
 * the study file and its key.  Sets R->train_macs.
 */
static int study_check(runner *R, tt_err *err)
{
	const tt_study *st = R->st;
	tt_train_config c = st->train;
	tt_err e = {0};
	c.trainable = 0;
	if (tt_train_check(&c, NULL, &e))
		return tt_err_set(err, TT_EINPUT, "%s: [model] spec or [train]: %s", st->path,
		                  e.msg);
	/* described, not built: the same arithmetic and the same refusals as
	 * tt_model_create (model.h), without a network to count */
	tt_model_desc d;
	tt_model_config mc = { .spec = st->train.model, .h = R->data.train.h,
	                       .w = R->data.train.w, .c = R->data.train.c,
	                       .classes = R->data.train.classes, .batch = 1,
	                       .be = tt_backend_get("cpu") };
	int rc = tt_model_describe(&mc, &d, &e);
	if (rc)
		return tt_err_set(err, rc, "%s: [model] spec = %s: %s", st->path,
		                  st->train.model, e.msg);
	R->train_macs = d.train_macs;
	return TT_OK;
}

int tt_runner_run(const tt_study *st, const tt_runner_opts *o, tt_err *err)
{
	runner R;
	db_conn *db = NULL;
	pthread_t th[64];
	worker_arg args[64];
	int rc, started = 0;
	memset(&R, 0, sizeof R);
	R.st = st;
	R.o = o;
	R.t0 = tt_clock_wall();
	pthread_mutex_init(&R.mu, NULL);
	pthread_mutex_init(&R.res_mu, NULL);
	pthread_cond_init(&R.cv, NULL);
	if (st->workers < 1 || st->workers > 64)
		return tt_err_set(err, TT_EINPUT, "%s: workers = %d, expected 1..64", st->path,
		                  st->workers);
	if ((rc = tt_model_spec_check(st->train.model, &R.nstages, err)))
		return rc;
	if ((rc = tt_runner_prepare(st, err)))
		return rc;
	if ((rc = tt_sched_init(&R.sched, st, R.nstages, err)))
		goto out;
	R.nrungs = R.sched.nrungs;
	R.max_trials_now = st->max_trials;
	/* the data and the model are checked before the database is made:
	 * a study that no trial could run is refused, not run to the end
	 * with every trial failed (and a corrected study file meets no
	 * database that remembers the wrong one) */
	logf_(&R, "study %s: %s, %d stages, %d rungs, %d workers, loading data", st->name,
	      st->train.model, R.nstages, R.nrungs, st->workers);
	if ((rc = tt_train_data_load(&st->train, &R.data, err)) ||
	    (rc = study_check(&R, err)))
		goto out;
	/* a budget past the machine's memory only fails allocations, which
	 * the cache answers by recomputing */
	if (st->feature_cache > 0 && !(R.fcache = tt_fcache_new((size_t)(st->feature_cache *
	                                                                  1048576.0)))) {
		rc = tt_err_set(err, TT_ERUNTIME, "out of memory");
		goto out;
	}
	if ((rc = db_open(st->db, DB_CREATE, &db, err)))
		goto out;
	lock_wait_on(&R, db);
	if ((rc = db_study_ensure(db, st->name, st->text, st->seed, &R.study, err)))
		goto out;
	if ((rc = tt_sampler_open(&R.sampler, o->sampler ? o->sampler :
	                                      tt_sampler_nth(st->sampler), st, err)))
		goto out;
	if ((rc = restore(&R, db, err)))
		goto out;
	{
		/* compute spent by earlier runs of this study counts too */
		db_rung *rg = NULL;
		int nr = 0;
		if (db_rungs(db, R.study, &rg, &nr, NULL) == TT_OK)
			for (int k = 0; k < nr; k++)
				if (rg[k].rung >= 0 && rg[k].rung < TT_RUNG_MAX)
					R.macs[rg[k].rung] += rg[k].train_macs;
		free(rg);
	}
	if (st->budget > 0 && st->sched_kind == TT_SCH_FREEZE_THAW) {
		logf_(&R, "budget: %.3g epochs, one at a time (%d spent)", st->budget,
		      tt_sched_epochs_used(&R.sched));
	} else if (st->budget > 0) {
		/* the unit: one epoch of the whole model over the training set,
		 * in the multiply-accumulates the engine really computes */
		R.budget_macs = st->budget * R.train_macs * R.data.train.n;
		logf_(&R, "budget: %.3g full-fidelity epochs = %.3g GMAC", st->budget,
		      R.budget_macs / 1e9);
	}
	R.slot = calloc((size_t)st->workers, sizeof *R.slot);
	if (!R.slot) {
		rc = tt_err_set(err, TT_ERUNTIME, "out of memory");
		goto out;
	}
	/* commands sent while the study was not running apply before any job
	 * starts, so a finished study run again does what was asked */
	int64_t after = 0;
	apply_commands(&R, db, &after);
	R.workers_left = st->workers;
	for (int w = 0; w < st->workers; w++) {
		args[w] = (worker_arg){ &R, w };
		if (pthread_create(&th[w], NULL, worker, &args[w])) {
			pthread_mutex_lock(&R.mu);
			R.quit = 1;
			R.workers_left -= st->workers - w;
			pthread_mutex_unlock(&R.mu);
			break;
		}
		started++;
	}
	/* the command loop, until every worker has left */
	double poll = o->poll_s > 0 ? o->poll_s : 0.2;
	for (;;) {
		apply_commands(&R, db, &after);
		pthread_mutex_lock(&R.mu);
		int left = R.workers_left;
		if ((o->stop && *o->stop) || R.failed) {
			R.quit = 1;
			for (int w = 0; w < st->workers; w++)
				R.slot[w].stop = 3;
			pthread_cond_broadcast(&R.cv);
		}
		pthread_mutex_unlock(&R.mu);
		if (!left)
			break;
		usleep((useconds_t)(poll * 1e6));
	}
	for (int w = 0; w < started; w++)
		pthread_join(th[w], NULL);
	apply_commands(&R, db, &after);
	rc = R.failed ? TT_ERUNTIME : TT_OK;
	if (R.failed && err)
		*err = R.err;
	if (!rc && !(o->stop && *o->stop)) {
		/* failed trials are said, and a study none of whose trials
		 * produced a result is a failure, not "done" */
		int nfailed = 0, nresults = 0;
		for (int i = 0; i < R.sched.n; i++) {
			nfailed += R.sched.t[i].state == TT_T_FAILED;
			nresults += R.sched.t[i].done > 0;
		}
		if (nfailed)
			logf_(&R, "%d of %d trials failed (why: the 'failed:' lines above)",
			      nfailed, R.sched.n);
		/* the checkpoints of trials killed, diverged or failed since
		 * the last rung result */
		tt_err perr = {0};
		if (prune_checkpoints(&R, db, &perr))
			logf_(&R, "checkpoints not pruned: %s", perr.msg);
		if (nfailed && !nresults)
			rc = tt_err_set(err, TT_ERUNTIME, "%s: no trial succeeded: %d of %d "
			                "failed, none has a result; the study stays unfinished",
			                st->path, nfailed, R.sched.n);
		else
			db_study_set_state(db, R.study, "done", NULL);
		summary(&R, db);
	}
out:
	if (R.fcache) {
		tt_fcache_stats fs;
		tt_fcache_stats_get(R.fcache, &fs);
		if (fs.hits + fs.misses)
			logf_(&R, "feature cache: %lld examples served, %lld computed, %.1f of "
			      "%.0f MiB held, %lld sets recomputed for want of room, %lld "
			      "evicted", fs.hits, fs.misses, fs.bytes / 1048576.0,
			      fs.budget / 1048576.0, fs.refused, fs.evicted);
		tt_fcache_free(R.fcache);
	}
	tt_train_data_free(&R.data);
	tt_sched_free(&R.sched);
	tt_sampler_close(&R.sampler);
	free(R.ids);
	free(R.values);
	free(R.slot);
	db_close(db);
	pthread_mutex_destroy(&R.mu);
	pthread_mutex_destroy(&R.res_mu);
	pthread_cond_destroy(&R.cv);
	return rc;
}
