/*
 * method_gates.c — complexity-aware training (methods.md section 4) as a
 * training method (method.h).
 *
 * The model carries the gates (model.h: probabilities, masks, pruning,
 * compaction) and gates.c the cost terms and the probabilities' update;
 * this file is the schedule that drives them over a run: warm-up epochs
 * with every gate on, then a Bernoulli sample a step, the prior on the
 * weights after backward, the update and the pruning rule after the
 * step, compaction at every epoch end, and, with three epochs or more, a
 * last epoch that fine-tunes the rounded, compacted network.  Its
 * checkpoint section (tag GATE) is
 *
 *   gates_ck header, t[ngates] (float), ms0[ngates] (double),
 *   pruned[ngates], present[ngates] (bytes),
 *   then the controller: GATES_MAGIC2, lambda, rms2[2] (doubles), low[ngates]
 *
 * Up to present, the layout format 2 appended to its blobs, so those load
 * unchanged (a blob without the controller's part resumes with the
 * multiplier where a run starts it); the
 * core section's sizes are those of the compacted model present describes.
 */
#include "method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

#define GATES_MAGIC 0x54475454u  /* "TTGT" */
#define GATES_MAGIC2 0x32475454u /* "TTG2": the controller's part */

/* A gated run's working state (methods.md section 4). */
typedef struct gate_run {
	int n;
	tt_gate_cost cost;
	tt_gate_config cfg;      /* lam_on, lam_off resolved */
	double wd;               /* the optimizer's own decay */
	double *wsq, *wn, *ms0, *dcdt; /* per gate; ms0 the initial |W|^2/n */
	int *layer;              /* per gate: the layer gate over it, -1 none */
	tt_gate_row *rows;
	tt_rng rng;
	double macs_sum;         /* training MACs computed per example, summed
	                          * over steps */
	long fine_from;          /* the step the fine-tuning epoch starts at */
	long s0, s_ramp;         /* the first sampled step; the target's end */
	double lambda;           /* the complexity term's multiplier */
	double rms2[2];          /* the update's running mean squares of G */
	unsigned char *low;      /* per gate: pruning checks in a row at t <= prune_t */
	int warm;                /* this step runs with every gate on */
	int rounded;             /* gates rounded from inside (0, 1) */
} gate_run;

typedef struct gates_ck {
	uint32_t magic, ngates;
	double macs_sum;
	tt_rng rng;
} gates_ck;

static int gates_wants(const tt_train_config *c)
{
	return c->gates.strength > 0;
}

static void gates_model_config(const tt_train_config *c, tt_model_config *mc)
{
	(void)c;
	mc->gates = 1;
}

static void gates_free(void *state)
{
	gate_run *g = state;
	if (!g)
		return;
	free(g->wsq);
	free(g->wn);
	free(g->ms0);
	free(g->dcdt);
	free(g->layer);
	free(g->rows);
	free(g->low);
	free(g);
}

static int gates_setup(const tt_method_run *run, void **state, tt_err *err)
{
	tt_model *m = run->m;
	const tt_train_config *c = run->c;
	gate_run *g = calloc(1, sizeof *g);
	*state = g;
	if (!g)
		goto oom;
	g->n = tt_model_gates(m);
	tt_model_gate_desc(m, &g->cost);
	g->cfg = c->gates;
	g->wd = c->opt.weight_decay;
	if (g->cfg.lam_on <= 0)
		g->cfg.lam_on = g->wd;
	if (g->cfg.lam_off <= 0)
		g->cfg.lam_off = 10 * g->cfg.lam_on;
	if (g->cfg.prune_every < 1)
		g->cfg.prune_every = 1;
	size_t n = (size_t)g->n + 1;
	g->wsq = calloc(n, sizeof *g->wsq);
	g->wn = calloc(n, sizeof *g->wn);
	g->ms0 = calloc(n, sizeof *g->ms0);
	g->dcdt = calloc(n, sizeof *g->dcdt);
	g->layer = malloc(n * sizeof *g->layer);
	g->rows = calloc(n, sizeof *g->rows);
	g->low = calloc(n, 1);
	if (!g->wsq || !g->wn || !g->ms0 || !g->dcdt || !g->layer || !g->rows || !g->low)
		goto oom;
	for (int i = 0; i < g->n; i++)
		g->layer[i] = -1;
	for (int k = 0; k < g->cost.ngroups; k++) {
		const tt_gate_group *gr = &g->cost.group[k];
		if (gr->kind != TT_GATE_LAYER)
			continue;
		for (int j = 0; j < g->cost.ngroups; j++) {
			const tt_gate_group *u = &g->cost.group[j];
			if (u->kind == TT_GATE_UNIT && u->stage == gr->stage)
				for (int i = 0; i < u->count; i++)
					g->layer[u->first + i] = gr->first;
		}
	}
	int *st = malloc(n * sizeof *st), *un = malloc(n * sizeof *un);
	if (!st || !un) {
		free(st);
		free(un);
		goto oom;
	}
	tt_model_gate_ids(m, st, un);
	for (int i = 0; i < g->n; i++) {
		g->rows[i].stage = st[i];
		g->rows[i].unit = un[i];
	}
	free(st);
	free(un);
	/* the initial mean squares the pruning rule compares against */
	tt_model_gate_wsq(m, g->wsq, g->wn);
	for (int i = 0; i < g->n; i++)
		g->ms0[i] = g->wn[i] > 0 ? g->wsq[i] / g->wn[i] : 0;
	tt_rng_seed(&g->rng, c->seed, TT_STREAM_GATES);
	/* With at least three epochs, the last epoch fine-tunes the rounded,
	 * compacted network with its gates fixed (methods.md section 4, step
	 * 7): rounding a gate still inside (0, 1) removes weights that were
	 * still in use, and an epoch lets the rest make up for them. */
	g->fine_from = run->total >= 3 * run->spe ? run->total - run->spe : run->total;
	/* The sampled phase runs from the end of the warm-up to the
	 * fine-tuning epoch; the target falls over its first `ramp`, and the
	 * rest settles the gates at that cost. */
	g->s0 = (long)g->cfg.warmup_epochs * run->spe;
	if (g->s0 > g->fine_from)
		g->s0 = g->fine_from;
	g->s_ramp = g->s0 + (long)(g->cfg.ramp * (double)(g->fine_from - g->s0));
	g->lambda = g->cfg.lambda0;
	return TT_OK;
oom:
	return tt_err_set(err, TT_ERUNTIME, "out of memory for %d gates", tt_model_gates(m));
}

static void gate_rows(gate_run *g, tt_model *m)
{
	const float *t = tt_model_gate_probs(m);
	const unsigned char *pr = tt_model_gate_pruned(m);
	for (int i = 0; i < g->n; i++) {
		g->rows[i].prob = t[i];
		g->rows[i].on = !pr[i] && t[i] >= 0.5f;
	}
}

/* Prune gate i for good; a layer gate takes its units along. */
static void gate_prune(gate_run *g, tt_model *m, int i)
{
	float *t = tt_model_gate_probs(m);
	unsigned char *pr = tt_model_gate_pruned(m);
	pr[i] = 1;
	t[i] = 0;
	for (int j = 0; j < g->n; j++)
		if (g->layer[j] == i) {
			pr[j] = 1;
			t[j] = 0;
		}
}

/*
 * The pruning rule, every prune_every steps: t <= prune_t, and either
 * |W|^2/n <= prune_w times its initial value (methods.md) or t was at or
 * under prune_t at the check before too.  The second clause is tunetop's:
 * under the prior alone a gate sampled off shrinks its weights by a factor
 * (1 - lr lam_off) a step, thousands of steps to reach prune_w, so the
 * methods.md rule almost never fired within a run and training never got
 * cheaper.  Guards: no layer gate before layer_hold_epochs; the last
 * unpruned unit of a group whose structure lives (its block's branch, or
 * a layer without a layer gate) stays, the layer gate decides for it.
 */
static void gates_prune_check(gate_run *g, tt_model *m, int epoch)
{
	float *t = tt_model_gate_probs(m);
	unsigned char *pr = tt_model_gate_pruned(m);
	tt_model_gate_wsq(m, g->wsq, g->wn);
	for (int i = 0; i < g->n; i++)
		g->low[i] = pr[i] || t[i] > g->cfg.prune_t ? 0 : g->low[i] < 255 ? g->low[i] + 1 : 255;
	for (int pass = 0; pass < 2; pass++) /* layer gates first, then units */
		for (int k = 0; k < g->cost.ngroups; k++) {
			const tt_gate_group *gr = &g->cost.group[k];
			if ((gr->kind == TT_GATE_LAYER) != (pass == 0))
				continue;
			if (gr->kind == TT_GATE_LAYER && epoch < g->cfg.layer_hold_epochs)
				continue;
			int live = 0;
			for (int j = 0; j < gr->count; j++)
				live += !pr[gr->first + j];
			for (int j = 0; j < gr->count && live > 0; j++) {
				int i = gr->first + j;
				if (pr[i] || !g->low[i] || g->wn[i] <= 0)
					continue;
				if (g->low[i] < 2 && g->wsq[i] / g->wn[i] > g->cfg.prune_w * g->ms0[i])
					continue;
				if (gr->kind == TT_GATE_UNIT && live == 1)
					break; /* the last one: its layer decides */
				gate_prune(g, m, i);
				live--;
			}
		}
}

/*
 * The end of a gated run: every t to 0 or 1 (t >= 0.5 on), every gate at
 * 0 pruned.  A unit group of a live structure that would end all off
 * keeps its most probable unit.  Returns how many gates were rounded
 * from inside (0, 1).
 */
static int gates_finish(gate_run *g, tt_model *m)
{
	float *t = tt_model_gate_probs(m);
	unsigned char *pr = tt_model_gate_pruned(m);
	int rounded = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < g->cost.ngroups; k++) {
			const tt_gate_group *gr = &g->cost.group[k];
			if ((gr->kind == TT_GATE_LAYER) != (pass == 0))
				continue;
			int best = -1, any = 0;
			for (int j = 0; j < gr->count; j++) {
				int i = gr->first + j;
				if (pr[i])
					continue;
				if (best < 0 || t[i] > t[best])
					best = i;
				any |= t[i] >= 0.5f;
			}
			if (best < 0)
				continue; /* all pruned: a pruned branch's units */
			for (int j = 0; j < gr->count; j++) {
				int i = gr->first + j;
				if (pr[i])
					continue;
				rounded += t[i] > 0 && t[i] < 1;
				int on = t[i] >= 0.5f || (gr->kind == TT_GATE_UNIT && !any && i == best);
				if (on)
					t[i] = 1;
				else
					gate_prune(g, m, i);
			}
		}
	return rounded;
}

/* ---- the step ------------------------------------------------------------- */

/*
 * The first epochs warm up with every gate on, then a sample a step
 * (methods.md section 4, steps 1 and 2), and the fine-tuning epoch has
 * every gate left on; it starts by rounding and compacting.
 */
static int gates_before_step(void *state, const tt_method_run *run, tt_err *err)
{
	gate_run *g = state;
	if (run->step == g->fine_from) {
		g->rounded += gates_finish(g, run->m);
		int rc = tt_model_gate_compact(run->m, err);
		if (rc)
			return rc;
	}
	g->warm = run->epoch < g->cfg.warmup_epochs || run->step >= g->fine_from;
	if (g->warm)
		tt_model_gate_all_on(run->m);
	else
		tt_model_gate_sample(run->m, &g->rng);
	return TT_OK;
}

/* |W|^2 at the weights the gradient was taken at, then the prior
 * lam(t)|W|^2/2 on top of the optimizer's own decay (model.h,
 * tt_model_gate_decay). */
static void gates_after_backward(void *state, const tt_method_run *run)
{
	gate_run *g = state;
	if (!g->warm)
		tt_model_gate_wsq_decay(run->m, g->wsq, g->cfg.lam_on, g->cfg.lam_off, g->wd);
	else
		tt_model_gate_decay(run->m, g->cfg.lam_on, g->cfg.lam_off, g->wd);
}

/*
 * The controller, then the update (gates.h): the target at this step of
 * the ramp, the multiplier's dual step towards it, and the repulsion that
 * rises linearly from 0 once the target is reached, summing to polar_sum
 * by the fine-tuning epoch.
 */
static void gates_after_step(void *state, const tt_method_run *run)
{
	gate_run *g = state;
	tt_model *m = run->m;
	if (!g->warm) {
		float *t = tt_model_gate_probs(m);
		long step = run->step - 1; /* the step just taken */
		double ramp = g->s_ramp > g->s0 ? (double)(step - g->s0) / (double)(g->s_ramp - g->s0)
		                                : 1;
		double settle = g->fine_from > g->s_ramp
		                ? (double)(step - g->s_ramp) / (double)(g->fine_from - g->s_ramp) : 1;
		double cost = tt_gate_complexity(&g->cost, t, g->cfg.flops_share, NULL);
		double target = tt_gate_schedule(tt_gate_target(g->cfg.strength), ramp);
		g->lambda = tt_gate_dual(g->lambda, cost, target, g->cfg.dual_rate);
		g->cfg.lambda = g->lambda;
		/* rising linearly over the settling steps, summing to polar_sum */
		long ns = g->fine_from - g->s_ramp;
		g->cfg.polar = settle > 0 && ns > 0
		               ? 2 * g->cfg.polar_sum * (settle < 1 ? settle : 1) / (double)ns : 0;
		/* and the step itself anneals to 0 over the settling, so that the
		 * repulsion, not the sample's noise, has the last word */
		tt_gate_config cfg = g->cfg;
		long nr = g->s_ramp - g->s0;
		if (nr > 0 && cfg.lr < 2.0 / (double)nr) /* a short ramp: room to move */
			cfg.lr = 2.0 / (double)nr < 0.25 ? 2.0 / (double)nr : 0.25;
		cfg.lr *= settle > 0 ? (settle < 1 ? 1 - settle : 0) : 1;
		tt_gate_update(&g->cost, &cfg, t, tt_model_gate_scores(m),
		               tt_model_gate_mask(m), g->wsq,
		               tt_model_gate_pruned(m), run->epoch < g->cfg.layer_hold_epochs,
		               g->rms2, g->dcdt);
	}
	g->macs_sum += tt_model_step_macs(m);
	if (!g->warm && run->step % g->cfg.prune_every == 0)
		gates_prune_check(g, m, run->epoch);
}

/* The run's end rounds every gate to 0 or 1; every epoch end removes what
 * was pruned, before evaluating. */
static int gates_epoch_end(void *state, const tt_method_run *run, tt_err *err)
{
	gate_run *g = state;
	if (run->step == run->total)
		g->rounded += gates_finish(g, run->m);
	return tt_model_gate_compact(run->m, err);
}

/* ---- checkpoints ------------------------------------------------------------ */

/* No section without gates (a run whose trainable stages have none): its
 * blob then loads into an ungated run, as format 1 did. */
static size_t gates_ck_size_v2(int n)
{
	return sizeof(gates_ck) + (size_t)n * (sizeof(float) + sizeof(double) + 2);
}

static size_t gates_ck_size(void *state, const tt_method_run *run)
{
	gate_run *g = state;
	(void)run;
	return g->n ? gates_ck_size_v2(g->n) + sizeof(uint32_t) + 3 * sizeof(double) +
	              (size_t)g->n : 0;
}

static void gates_ck_write(void *state, const tt_method_run *run, char *p)
{
	gate_run *g = state;
	tt_model *m = run->m;
	size_t n = (size_t)g->n;
	gates_ck h = { .magic = GATES_MAGIC, .ngates = (uint32_t)g->n,
	               .macs_sum = g->macs_sum, .rng = g->rng };
	memcpy(p, &h, sizeof h);
	p += sizeof h;
	memcpy(p, tt_model_gate_probs(m), n * sizeof(float));
	p += n * sizeof(float);
	memcpy(p, g->ms0, n * sizeof(double));
	p += n * sizeof(double);
	memcpy(p, tt_model_gate_pruned(m), n);
	p += n;
	memcpy(p, tt_model_gate_present(m), n);
	p += n;
	uint32_t m2 = GATES_MAGIC2;
	memcpy(p, &m2, sizeof m2);
	p += sizeof m2;
	memcpy(p, &g->lambda, sizeof g->lambda);
	p += sizeof g->lambda;
	memcpy(p, g->rms2, sizeof g->rms2);
	p += sizeof g->rms2;
	memcpy(p, g->low, n);
}

int tt_gates_ck_view(const char *p, size_t len, int ng, const char **t,
                     const unsigned char **present)
{
	gates_ck h;
	size_t full = gates_ck_size_v2(ng) + sizeof(uint32_t) + 3 * sizeof(double) + (size_t)ng;
	if (ng <= 0 || len < sizeof h || (len != full && len != gates_ck_size_v2(ng)))
		return 0;
	memcpy(&h, p, sizeof h);
	if (h.magic != GATES_MAGIC || (int)h.ngates != ng)
		return 0;
	*t = p + sizeof h;
	*present = (const unsigned char *)*t + (size_t)ng * (sizeof(float) + sizeof(double) + 1);
	return 1;
}

/*
 * Compact the model to the blob's shape and take its probabilities,
 * pruned gates and initial mean squares; unless weights_only, the stream
 * and the MACs spent too.  Without a section: fine for a weights-only
 * start from an ungated blob, or when this run has no gate.
 */
static int gates_ck_read(void *state, const tt_method_run *run, const char *p, size_t len,
                         int weights_only, tt_err *err)
{
	gate_run *g = state;
	int ng = g->n;
	if (!p) {
		if (weights_only || ng == 0)
			return TT_OK;
		return tt_err_set(err, TT_EINPUT, "checkpoint: 0 gates, this run has %d (gates on)",
		                  ng);
	}
	gates_ck h;
	if (len < sizeof h)
		return tt_err_set(err, TT_EINPUT, "checkpoint: gates section of %zu bytes, "
		                  "expected at least %zu", len, sizeof h);
	memcpy(&h, p, sizeof h);
	if ((int)h.ngates != ng)
		return tt_err_set(err, TT_EINPUT, "checkpoint: %u gates, this run has %d "
		                  "(gates %s)", h.ngates, ng, ng ? "on" : "off");
	int v2 = len == gates_ck_size_v2(ng);
	if (h.magic != GATES_MAGIC || (!v2 && len != gates_ck_size(g, run)))
		return tt_err_set(err, TT_EINPUT, "checkpoint: gates section magic 0x%08x "
		                  "with %u gates in %zu bytes, expected 0x%08x with %d in %zu",
		                  h.magic, h.ngates, len, GATES_MAGIC, ng, gates_ck_size(g, run));
	const char *ctl = p + gates_ck_size_v2(ng);
	double lambda = g->cfg.lambda0, rms2[2] = { 0, 0 };
	if (!v2) {
		uint32_t m2;
		memcpy(&m2, ctl, sizeof m2);
		memcpy(&lambda, ctl + sizeof m2, sizeof lambda);
		memcpy(rms2, ctl + sizeof m2 + sizeof lambda, sizeof rms2);
		if (m2 != GATES_MAGIC2 || !(lambda > 0 && lambda < INFINITY) ||
		    !(rms2[0] >= 0 && rms2[0] < INFINITY) || !(rms2[1] >= 0 && rms2[1] < INFINITY))
			return tt_err_set(err, TT_EINPUT, "checkpoint: gates controller magic "
			                  "0x%08x, multiplier %g, mean squares %g %g; expected "
			                  "0x%08x and positive finite numbers", m2, lambda, rms2[0], rms2[1],
			                  GATES_MAGIC2);
	}
	p += sizeof h;
	const char *t = p;
	const char *ms0 = t + (size_t)ng * sizeof(float);
	const unsigned char *pruned = (const unsigned char *)ms0 + (size_t)ng * sizeof(double);
	const unsigned char *present = pruned + ng;
	float *tc = malloc((size_t)ng * sizeof *tc);
	if (!tc)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	memcpy(tc, t, (size_t)ng * sizeof *tc); /* the blob may be unaligned */
	for (int i = 0; i < ng; i++)
		if (!(tc[i] >= 0 && tc[i] <= 1) || pruned[i] > 1 || present[i] > 1) {
			double ti = tc[i];
			free(tc);
			return tt_err_set(err, TT_EINPUT, "checkpoint: gate %d has t %g, pruned "
			                  "%d, present %d", i, ti, pruned[i], present[i]);
		}
	int rc = tt_model_gate_load(run->m, tc, pruned, present, err);
	free(tc);
	if (rc)
		return rc;
	memcpy(g->ms0, ms0, (size_t)ng * sizeof(double));
	if (!weights_only) {
		g->macs_sum = h.macs_sum;
		g->rng = h.rng;
		g->lambda = lambda;
		memcpy(g->rms2, rms2, sizeof rms2);
		if (!v2)
			memcpy(g->low, ctl + sizeof(uint32_t) + 3 * sizeof(double), (size_t)ng);
	}
	return TT_OK;
}

/* ---- results ------------------------------------------------------------------ */

static void gates_result(void *state, const tt_method_run *run, tt_train_result *r)
{
	gate_run *g = state;
	tt_model *m = run->m;
	if (run->step > 0)
		r->train_macs = g->macs_sum / run->step;
	const float *t = tt_model_gate_probs(m);
	double me, pe;
	tt_gate_expected(&g->cost, t, &me, &pe);
	r->gates.on = 1;
	r->gates.ngates = g->n;
	r->gates.rounded = g->rounded;
	r->gates.macs_expected = me / g->cost.macs_full;
	r->gates.params_expected = pe / g->cost.params_full;
	r->gates.macs_kept = tt_model_macs(m) / g->cost.macs_full;
	r->gates.params_kept = (double)tt_model_nparams(m) / g->cost.params_full;
	gate_rows(g, m);
	r->gates.row = malloc(((size_t)g->n + 1) * sizeof *r->gates.row);
	if (r->gates.row)
		memcpy(r->gates.row, g->rows, (size_t)g->n * sizeof *g->rows);
	for (int s = 0; s < r->stages; s++)
		r->stage[s].layer = -1;
	for (int i = 0; i < g->n; i++) {
		tt_train_stage *st = &r->stage[g->rows[i].stage];
		if (g->rows[i].unit < 0) {
			st->layer = g->rows[i].on;
		} else {
			st->units++;
			st->units_kept += g->rows[i].on;
		}
	}
}

/* JSON has no NaN or infinity: those become null. */
static void num(FILE *f, const char *key, double v, int comma)
{
	if (isfinite(v))
		fprintf(f, "\"%s\":%.6g%s", key, v, comma ? "," : "");
	else
		fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
}

/*
 * Kept fractions, then per gated stage its units kept of all, its layer
 * gate (absent: none) and its final mask as a string of 0/1 over its
 * units in unit order.
 */
static void gates_json(const tt_train_result *r, FILE *f)
{
	const tt_train_gates *g = &r->gates;
	fprintf(f, "{");
	num(f, "macs_expected", g->macs_expected, 1);
	num(f, "params_expected", g->params_expected, 1);
	num(f, "macs_kept", g->macs_kept, 1);
	num(f, "params_kept", g->params_kept, 1);
	fprintf(f, "\"count\":%d,\"rounded\":%d,\"stages\":[", g->ngates, g->rounded);
	int first = 1;
	for (int s = 0; s < r->stages && r->stage; s++) {
		const tt_train_stage *st = &r->stage[s];
		if (!st->units && st->layer < 0)
			continue;
		fprintf(f, "%s{\"stage\":%d,\"name\":\"%s\",\"units\":%d,\"kept\":%d,",
		        first ? "" : ",", s, st->name, st->units, st->units_kept);
		if (st->layer >= 0)
			fprintf(f, "\"layer\":%s,", st->layer ? "true" : "false");
		fprintf(f, "\"mask\":\"");
		for (int i = 0; i < g->ngates && g->row; i++)
			if (g->row[i].stage == s && g->row[i].unit >= 0)
				fputc(g->row[i].on ? '1' : '0', f);
		fprintf(f, "\"}");
		first = 0;
	}
	fprintf(f, "]}");
}

/* The fractions kept: the rungs table's macs_kept and params_kept. */
static int gates_values(const tt_train_result *r, tt_method_value *v, int max)
{
	const tt_train_gates *g = &r->gates;
	const tt_method_value all[] = {
		{ "macs_kept", g->macs_kept },
		{ "params_kept", g->params_kept },
		{ "macs_expected", g->macs_expected },
		{ "params_expected", g->params_expected },
		{ "gates", g->ngates },
	};
	int n = 0;
	for (size_t i = 0; i < sizeof all / sizeof *all && n < max; i++)
		v[n++] = all[i];
	return n;
}

/* Every gate's probability and deterministic state: the masks table. */
static int gates_report(void *state, const tt_method_run *run, int final,
                        tt_method_report *rep)
{
	gate_run *g = state;
	(void)final;
	gate_rows(g, run->m);
	rep->nrows = g->n;
	rep->rows = g->rows;
	return 1;
}

const tt_method tt_method_gates = {
	.name = "gates",
	.tag = TT_CK_GATES,
	.flags = TT_METHOD_SHAPES_MODEL,
	.wants = gates_wants,
	.model_config = gates_model_config,
	.setup = gates_setup,
	.free = gates_free,
	.before_step = gates_before_step,
	.after_backward = gates_after_backward,
	.after_step = gates_after_step,
	.epoch_end = gates_epoch_end,
	.ck_size = gates_ck_size,
	.ck_write = gates_ck_write,
	.ck_read = gates_ck_read,
	.result = gates_result,
	.json = gates_json,
	.values = gates_values,
	.report = gates_report,
};
