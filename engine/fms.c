/*
 * fms.c — freeze-thaw decisions on the deep-kernel surrogate; see fms.h.
 */
#include "fms.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tt_fms {
	tt_fms_config c;
	tt_surr *s;
	int iter;                /* surrogate fits so far */
	/* the last decision's candidates */
	int cap;
	int *ci, *cb;
	double *mu, *sd, *ei;
	double *fmu, *fsd;       /* at bmax */
};

void tt_fms_defaults(tt_fms_config *c, int d, int bmax)
{
	memset(c, 0, sizeof *c);
	tt_surr_defaults(&c->surr, d, bmax);
	c->init = 20;
	c->steps_first = 1000;
	c->steps_warm = 50;
	c->fresh_iters = 10;
}

int tt_fms_new(const tt_fms_config *c, tt_fms **out, tt_err *err)
{
	*out = NULL;
	tt_fms *f = calloc(1, sizeof *f);
	if (!f)
		return tt_err_set(err, TT_ERUNTIME, "fms: out of memory");
	f->c = *c;
	int rc = tt_surr_new(&c->surr, &f->s, err);
	if (rc) {
		free(f);
		return rc;
	}
	*out = f;
	return TT_OK;
}

void tt_fms_free(tt_fms *f)
{
	if (!f)
		return;
	tt_surr_free(f->s);
	free(f->ci);
	free(f->cb);
	free(f->mu);
	free(f->sd);
	free(f->ei);
	free(f->fmu);
	free(f->fsd);
	free(f);
}

/* The weights of i after e epochs, or the nearest earlier the caller has. */
static void weights_of(const tt_fms *f, const tt_fms_weights *w, int i, int e,
                       tt_surr_point *p)
{
	for (int q = e; q >= 0; q--) {
		if (f->c.surr.weights == TT_SURR_GMN && w && w->graph) {
			p->graph = w->graph(w->ud, i, q);
			if (p->graph)
				return;
		} else if (f->c.surr.weights == TT_SURR_FLAT && w && w->flat) {
			p->flat = w->flat(w->ud, i, q, &p->nflat);
			if (p->flat)
				return;
		} else {
			return;
		}
	}
}

static int grow(tt_fms *f, int n)
{
	if (n <= f->cap)
		return 0;
	int *ci = realloc(f->ci, (size_t)n * sizeof *ci);
	if (ci)
		f->ci = ci;
	int *cb = realloc(f->cb, (size_t)n * sizeof *cb);
	if (cb)
		f->cb = cb;
	double *a = realloc(f->mu, (size_t)n * sizeof *a);
	if (a)
		f->mu = a;
	double *b = realloc(f->sd, (size_t)n * sizeof *b);
	if (b)
		f->sd = b;
	double *e = realloc(f->ei, (size_t)n * sizeof *e);
	if (e)
		f->ei = e;
	double *fm = realloc(f->fmu, (size_t)n * sizeof *fm);
	if (fm)
		f->fmu = fm;
	double *fs = realloc(f->fsd, (size_t)n * sizeof *fs);
	if (fs)
		f->fsd = fs;
	if (!ci || !cb || !a || !b || !e || !fm || !fs)
		return -1;
	f->cap = n;
	return 0;
}

int tt_fms_decide(tt_fms *f, const tt_fms_conf *t, int n, const tt_fms_weights *w,
                  tt_fms_choice *out, tt_err *err)
{
	int bmax = f->c.surr.bmax, seen = 0, nobs = 0, ncand = 0;
	memset(out, 0, sizeof *out);
	out->index = -1;
	for (int i = 0; i < n; i++) {
		seen += t[i].budget > 0;
		nobs += t[i].budget;
		ncand += t[i].budget < bmax;
	}
	if (!ncand)
		return tt_err_set(err, TT_EINPUT, "fms: all %d configurations are at %d epochs",
		                  n, bmax);
	if (grow(f, ncand))
		return tt_err_set(err, TT_ERUNTIME, "fms: out of memory for %d candidates", ncand);
	out->cand_index = f->ci;
	out->cand_budget = f->cb;
	out->mu = f->mu;
	out->sd = f->sd;
	out->ei = f->ei;
	if (seen < f->c.init || nobs < 2) {
		for (int i = 0; i < n; i++)
			if (t[i].budget == 0) {
				out->index = i;
				out->budget = 1;
				out->random = 1;
				return TT_OK;
			}
		/* every configuration has a result: the model decides */
	}
	tt_surr_point *obs = calloc((size_t)nobs, sizeof *obs);
	tt_surr_point *cand = calloc((size_t)ncand, sizeof *cand);
	if (!obs || !cand) {
		free(obs);
		free(cand);
		return tt_err_set(err, TT_ERUNTIME, "fms: out of memory for %d observations", nobs);
	}
	int k = 0, q = 0;
	for (int i = 0; i < n; i++) {
		for (int j = 1; j <= t[i].budget; j++, k++) {
			obs[k] = (tt_surr_point){ .x = t[i].x, .budget = j, .curve = t[i].curve,
			                          .ncurve = j - 1, .y = t[i].curve[j - 1] };
			weights_of(f, w, i, j - 1, &obs[k]);
		}
		if (t[i].budget < bmax) {
			cand[q] = (tt_surr_point){ .x = t[i].x, .budget = t[i].budget + 1,
			                           .curve = t[i].curve, .ncurve = t[i].budget };
			weights_of(f, w, i, t[i].budget, &cand[q]);
			f->ci[q] = i;
			f->cb[q] = t[i].budget + 1;
			q++;
		}
	}
	int fresh = f->iter < f->c.fresh_iters;
	int rc = tt_surr_fit(f->s, obs, nobs, fresh ? f->c.steps_first : f->c.steps_warm, fresh,
	                     &out->nll, err);
	if (rc == TT_OK)
		rc = tt_surr_predict(f->s, cand, ncand, f->mu, f->sd, err);
	if (rc == TT_OK) {
		/* the same candidates at the top budget: the forecast of their
		 * final value */
		for (int c = 0; c < ncand; c++)
			cand[c].budget = bmax;
		rc = tt_surr_predict(f->s, cand, ncand, f->fmu, f->fsd, err);
	}
	out->final_mu = f->fmu;
	out->final_sd = f->fsd;
	f->iter++;
	if (rc == TT_OK) {
		/* y*_j: the best value at each budget, else the best below */
		double *best = malloc(((size_t)bmax + 1) * sizeof *best);
		if (!best) {
			rc = tt_err_set(err, TT_ERUNTIME, "fms: out of memory");
		} else {
			for (int j = 0; j <= bmax; j++)
				best[j] = -INFINITY;
			for (int i = 0; i < n; i++)
				for (int j = 1; j <= t[i].budget; j++)
					if (t[i].curve[j - 1] > best[j])
						best[j] = t[i].curve[j - 1];
			for (int j = 1; j <= bmax; j++)
				if (best[j] == -INFINITY)
					best[j] = best[j - 1];
			double top = -INFINITY;
			for (int c = 0; c < ncand; c++) {
				double b = best[f->cb[c]];
				f->ei[c] = isfinite(b) ? tt_gp_ei(f->mu[c], f->sd[c], b) : f->sd[c];
				if (f->ei[c] > top) {
					top = f->ei[c];
					out->index = f->ci[c];
					out->budget = f->cb[c];
				}
			}
			out->ncand = ncand;
			free(best);
		}
	}
	free(obs);
	free(cand);
	return rc;
}
