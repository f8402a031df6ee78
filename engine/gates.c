/*
 * gates.c — the expected cost of gated networks and the probabilities'
 * update; see gates.h and methods.md section 4.
 */
#include "gates.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tt_gate_defaults(tt_gate_config *c)
{
	memset(c, 0, sizeof *c);
	c->strength = 0;
	c->balance = 0.5;
	c->flops_share = 0.5;
	c->lr = 0.5;
	c->lam_on = 5e-4;
	c->lam_off = 5e-3;
	c->prune_t = 0.05;
	c->prune_w = 0.1;
	c->prune_every = 100;
	c->warmup_epochs = 1;
	c->layer_hold_epochs = 2;
}

int tt_gate_parse(const char *s, tt_gate_config *c, tt_err *err)
{
	static const char *const names[3] = { "strength", "balance", "flops share" };
	static const double hi[3] = { 1000, 1, 1 };
	double v[3] = { c->strength, c->balance, c->flops_share };
	const char *p = s;
	int i = 0;
	if (!s || !*s)
		return tt_err_set(err, TT_EINPUT, "--gates: empty value; expected "
		                  "STRENGTH[,BALANCE[,FLOPS_SHARE]]");
	for (;;) {
		char *end;
		errno = 0;
		double x = strtod(p, &end);
		if (end == p || errno || !isfinite(x) || (*end && *end != ','))
			return tt_err_set(err, TT_EINPUT, "--gates '%s': %s '%.*s' is not a "
			                  "number; expected STRENGTH[,BALANCE[,FLOPS_SHARE]]",
			                  s, names[i], (int)strcspn(p, ","), p);
		if (x < 0 || x > hi[i])
			return tt_err_set(err, TT_EINPUT, "--gates '%s': %s %g is out of "
			                  "range, expected 0..%g", s, names[i], x, hi[i]);
		v[i++] = x;
		if (!*end)
			break;
		if (i == 3)
			return tt_err_set(err, TT_EINPUT, "--gates '%s': more than three "
			                  "values; expected STRENGTH[,BALANCE[,FLOPS_SHARE]]", s);
		p = end + 1;
	}
	c->strength = v[0];
	c->balance = v[1];
	c->flops_share = v[2];
	return TT_OK;
}

/* S(g): the sum of a group's probabilities; 1 for an absent factor. */
static double group_sum(const tt_gate_cost *c, const float *t, int g)
{
	if (g < 0)
		return 1.0;
	const tt_gate_group *gr = &c->group[g];
	double s = 0;
	for (int i = 0; i < gr->count; i++)
		s += t[gr->first + i];
	return s;
}

/* The probabilities' sums of every group, into sums[ngroups]. */
static void group_sums(const tt_gate_cost *c, const float *t, double *sums)
{
	for (int g = 0; g < c->ngroups; g++)
		sums[g] = group_sum(c, t, g);
}

static double factor(const double *sums, int g)
{
	return g < 0 ? 1.0 : sums[g];
}

void tt_gate_cost_init(tt_gate_cost *c)
{
	c->macs_full = c->params_full = 0;
	for (int k = 0; k < c->nterms; k++) {
		const tt_gate_term *tm = &c->term[k];
		double prod = 1;
		if (tm->a >= 0)
			prod *= c->group[tm->a].count;
		if (tm->b >= 0)
			prod *= c->group[tm->b].count;
		c->macs_full += tm->macs * prod;
		c->params_full += tm->params * prod;
	}
}

/* Up to this many groups the sums live on the stack. */
#define SUMS_STACK 256

void tt_gate_expected(const tt_gate_cost *c, const float *t, double *macs,
                      double *params)
{
	double stack[SUMS_STACK];
	double *sums = c->ngroups <= SUMS_STACK ? stack : malloc(c->ngroups * sizeof *sums);
	TT_ASSERT(sums);
	group_sums(c, t, sums);
	double mc = 0, pc = 0;
	for (int k = 0; k < c->nterms; k++) {
		const tt_gate_term *tm = &c->term[k];
		double prod = factor(sums, tm->layer) * factor(sums, tm->a) *
		              factor(sums, tm->b);
		mc += tm->macs * prod;
		pc += tm->params * prod;
	}
	*macs = mc;
	*params = pc;
	if (sums != stack)
		free(sums);
}

double tt_gate_complexity(const tt_gate_cost *c, const float *t, double a,
                          double *dcdt)
{
	double stack[2 * SUMS_STACK];
	int big = c->ngroups > SUMS_STACK;
	double *sums = big ? malloc(2 * c->ngroups * sizeof *sums) : stack;
	TT_ASSERT(sums);
	double *dg = sums + (big ? c->ngroups : SUMS_STACK); /* dC/dS(g) */
	group_sums(c, t, sums);
	memset(dg, 0, c->ngroups * sizeof *dg);
	double wm = c->macs_full > 0 ? a / c->macs_full : 0;
	double wp = c->params_full > 0 ? (1 - a) / c->params_full : 0;
	double cost = 0;
	for (int k = 0; k < c->nterms; k++) {
		const tt_gate_term *tm = &c->term[k];
		double w = wm * tm->macs + wp * tm->params;
		double fl = factor(sums, tm->layer), fa = factor(sums, tm->a),
		       fb = factor(sums, tm->b);
		cost += w * fl * fa * fb;
		/* the term is linear in each factor, and d S(g) / d t[i] = 1 */
		if (tm->layer >= 0)
			dg[tm->layer] += w * fa * fb;
		if (tm->a >= 0)
			dg[tm->a] += w * fl * fb;
		if (tm->b >= 0)
			dg[tm->b] += w * fl * fa;
	}
	if (dcdt)
		for (int g = 0; g < c->ngroups; g++)
			for (int i = 0; i < c->group[g].count; i++)
				dcdt[c->group[g].first + i] = dg[g];
	if (big)
		free(sums);
	return cost;
}

void tt_gate_update(const tt_gate_cost *c, const tt_gate_config *cfg,
                    float *t, const float *score, const double *wsq,
                    const unsigned char *pruned, int hold_layers, double *dcdt)
{
	tt_gate_complexity(c, t, cfg->flops_share, dcdt);
	for (int g = 0; g < c->ngroups; g++) {
		const tt_gate_group *gr = &c->group[g];
		if (hold_layers && gr->kind == TT_GATE_LAYER)
			continue;
		double scale = gr->kind == TT_GATE_LAYER ? 2 * cfg->balance
		                                         : 2 * (1 - cfg->balance);
		for (int j = 0; j < gr->count; j++) {
			int i = gr->first + j;
			if (pruned && pruned[i]) {
				t[i] = 0;
				continue;
			}
			double inv = 1.0 / t[i];
			double G = (inv < 1 ? 1 : inv > 20 ? 20 : inv) * score[i] +
			           (cfg->lam_on - cfg->lam_off) * wsq[i] / 2 +
			           cfg->strength * scale * dcdt[i];
			double nt = t[i] - cfg->lr * G;
			/* the projection onto [0, 1]; a NaN score leaves t as it was */
			t[i] = nt >= 1 ? 1.0f : nt <= 0 ? 0.0f : nt == nt ? (float)nt : t[i];
		}
	}
}
