/*
 * test_sampler_tpe.c — the tpe entry of the sampler table
 * (engine/sampler_tpe.c), driven only through tt_sampler_open, ask,
 * created and tell as the runner drives it: it beats random search on a
 * bowl with a known optimum, on average over seeds; a fresh instance
 * created and told the same history (a resume) proposes bit for bit what
 * the uninterrupted one does; it models the higher rung once that rung
 * has min_obs results, and the lower one until then.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "test.h"

static int load(const char *space, int max_trials, uint64_t seed, tt_study *st)
{
	char text[1024];
	snprintf(text, sizeof text,
	         "[study]\nseed = %llu\n[data]\nsource = synthetic\n[model]\nspec = mlp:8\n"
	         "[space]\n%s[scheduler]\nmax_trials = %d\nsampler = tpe\n",
	         (unsigned long long)seed, space, max_trials);
	tt_err e = { 0 };
	int rc = tt_study_parse("t.ini", text, st, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	CHECK(rc || tt_sampler_nth(st->sampler) == &tt_sampler_tpe, "sampler = tpe is %s",
	      tt_sampler_nth(st->sampler)->name);
	return rc;
}

/* The trial's point: values back on the unit cube. */
static void unit(const tt_study *st, const double *v, double *u)
{
	for (int k = 0; k < st->nspace; k++)
		u[k] = tt_sampler_unmap(&st->space[k], v[k]);
}

static tt_sampler_result result(int index, const double *values, int rung, double acc)
{
	return (tt_sampler_result){ .index = index, .id = index + 1, .values = values,
	                            .rung = rung, .val_acc = acc, .val_loss = NAN };
}

/* ---- better than random --------------------------------------------------- */

/*
 * 30 trials: a small study, the size tunetop's studies often have and
 * the one min_obs adapts to (6 start-up trials), over 40 seeds.
 *
 * Three measures, each of which a sampler that ignores its results (tpe
 * without observations: uniform on another stream) fails: the mean best,
 * the share of seeds where tpe is ahead, and the geometric mean of the
 * regret (0.3 - best), which says how close tpe gets where it converges.
 * The mean best alone would be a weak test: on some seeds the good
 * trials all share a batch size other than the bonus one and TPE
 * (independent per dimension, prior weight 1, as Optuna's) never tries
 * the bonus one again, losing 0.3 there (the line printed counts those
 * seeds); with 60 trials random search's mean best catches up with
 * tpe's on this easy 3-D bowl for that reason, while tpe's regret
 * elsewhere keeps shrinking.
 */
enum { BUDGET = 30, SEEDS = 40 };
static const char bowl_space[] =
	"momentum = float 0 0.99\nweight-decay = float 0 0.1\n"
	"label-smoothing = float 0 0.5\nbatch = choice 16,32,64,128\n";
static const double OPT[3] = { 0.2, 0.75, 0.4 };

/* A bowl over the three continuous axes (on the unit cube) and a bonus
 * for the third batch size: the maximum is 0.3. */
static double bowl(const tt_study *st, const double *v)
{
	double u[TT_SPACE_MAX], f = 0;
	unit(st, v, u);
	for (int j = 0; j < 3; j++)
		f -= (u[j] - OPT[j]) * (u[j] - OPT[j]);
	return f + (v[3] == 2 ? 0.3 : 0);
}

/* The best of BUDGET trials of sampler ops on the bowl, every result at
 * rung 0 told as it comes. */
static double search(const tt_sampler_ops *ops, uint64_t seed)
{
	tt_study st;
	if (load(bowl_space, BUDGET, seed, &st))
		return NAN;
	tt_sampler_inst s;
	tt_err e = { 0 };
	double best = -INFINITY;
	static double v[BUDGET][TT_SPACE_MAX];
	int rc = tt_sampler_open(&s, ops, &st, &e);
	CHECK(rc == TT_OK, "%s: %s", ops->name, e.msg);
	for (int i = 0; !rc && i < BUDGET; i++) {
		tt_sampler_proposal p;
		rc = tt_sampler_ask(&s, i, NULL, &p, &e);
		memcpy(v[i], p.values, sizeof v[i]);
		rc = rc ? rc : tt_sampler_created(&s, i, v[i], &e);
		double y = bowl(&st, v[i]);
		tt_sampler_result r = result(i, v[i], 0, y);
		rc = rc ? rc : tt_sampler_tell(&s, &r, NULL, &e);
		CHECK(rc == TT_OK, "%s trial %d: %s", ops->name, i, e.msg);
		best = y > best ? y : best;
	}
	tt_sampler_close(&s);
	tt_study_free(&st);
	return best;
}

static void beats_random_on_average(void)
{
	double t = 0, rnd = 0;
	double lt = 0, lr = 0;
	int wins = 0, settled = 0;
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		double a = search(&tt_sampler_tpe, seed), b = search(&tt_sampler_random, seed);
		t += a / SEEDS;
		rnd += b / SEEDS;
		/* regret 0.3 - best, in log: a geometric mean over seeds */
		lt += log10(0.3 - a) / SEEDS;
		lr += log10(0.3 - b) / SEEDS;
		wins += a > b;
		settled += a < 0.1; /* without the bonus: the bowl is at most 0 */
	}
	printf("  after %d trials: mean best tpe %.4f, random %.4f (optimum 0.3); "
	       "geometric mean regret tpe %.2g, random %.2g; tpe ahead on %d of %d seeds, "
	       "without the bonus batch size on %d\n", BUDGET, t, rnd, pow(10, lt),
	       pow(10, lr), wins, SEEDS, settled);
	CHECK(t > rnd, "mean best: tpe %.4f is not above random %.4f", t, rnd);
	CHECK(wins > SEEDS * 6 / 10, "tpe ahead on only %d of %d seeds", wins, SEEDS);
	CHECK(lt < lr - log10(2.0), "geometric mean regret: tpe %.2g is not below half "
	      "random's %.2g", pow(10, lt), pow(10, lr));
}

/* ---- a resume proposes what the uninterrupted study does ------------------ */

enum { N = 30 };
static const char all_types[] =
	"lr = log-float 0.001 0.5\nmomentum = float 0.5 0.95\nbatch = int 16 256\n"
	"warmup = log-int 1 1000\noptimizer = choice sgd,adamw\n";

/* What the database would hold: every trial's values, and the result rows
 * in row order (a result stored again for the same trial and rung
 * replaces its row with a new one at the end, as INSERT OR REPLACE does). */
typedef struct history {
	double v[N + 1][TT_SPACE_MAX];
	struct row { int index, rung; double acc; } row[3 * N];
	int nrow;
} history;

static void store(history *h, int index, int rung, double acc)
{
	for (int i = 0; i < h->nrow; i++)
		if (h->row[i].index == index && h->row[i].rung == rung) {
			memmove(h->row + i, h->row + i + 1, (size_t)(h->nrow - i - 1) * sizeof *h->row);
			h->nrow--;
			break;
		}
	h->row[h->nrow++] = (struct row){ index, rung, acc };
}

static double score(const tt_study *st, const double *v, int rung)
{
	double u[TT_SPACE_MAX];
	unit(st, v, u);
	return 0.5 + 0.1 * rung - fabs(u[0] - 0.3) - 0.5 * fabs(u[1] - 0.6) -
	       0.2 * fabs(u[2] - 0.5) - 0.1 * u[3] + 0.05 * v[4];
}

/* Open a fresh instance, create trials 0..n-1 and re-tell rows 0..nrow-1
 * in order, as the runner's resume does, then ask for trial n. */
static int replay(const tt_study *st, const history *h, int n, int nrow,
                  tt_sampler_proposal *p)
{
	tt_sampler_inst s;
	tt_err e = { 0 };
	int rc = tt_sampler_open(&s, &tt_sampler_tpe, st, &e);
	for (int i = 0; !rc && i < n; i++)
		rc = tt_sampler_created(&s, i, h->v[i], &e);
	for (int q = 0; !rc && q < nrow; q++) {
		tt_sampler_result r = result(h->row[q].index, h->v[h->row[q].index],
		                             h->row[q].rung, h->row[q].acc);
		rc = tt_sampler_tell(&s, &r, NULL, &e);
	}
	rc = rc ? rc : tt_sampler_ask(&s, n, NULL, p, &e);
	CHECK(rc == TT_OK, "replay to %d: %s", n, e.msg);
	tt_sampler_close(&s);
	return rc;
}

/*
 * Live: every trial's rung-0 result comes right after it is created, a
 * rung-1 result of trial i - 2 after every third, a NaN now and then, and
 * trial 4's rung-0 result stored twice (the second replacing the first).
 * At every trial the live instance's proposal is compared bit for bit with
 * a fresh instance's that was created and told the stored history; asking
 * twice gives the same proposal.
 */
static void resume_proposes_the_same(void)
{
	tt_study st;
	if (load(all_types, N, 9, &st))
		return;
	static history h;
	h.nrow = 0;
	tt_sampler_inst s;
	tt_err e = { 0 };
	int rc = tt_sampler_open(&s, &tt_sampler_tpe, &st, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	int differ = 0, twice = 0, startup = 0, modelled = 0;
	tt_sampler_proposal p, q, blind;
	for (int i = 0; !rc && i <= N; i++) {
		rc = tt_sampler_ask(&s, i, NULL, &p, &e);
		rc = rc ? rc : tt_sampler_ask(&s, i, NULL, &q, &e);
		twice += memcmp(p.values, q.values, sizeof p.values) != 0;
		/* min_obs is 6 (30 trials / 5): the first 6 proposals are the
		 * start-up's, what an instance told nothing proposes; from then
		 * on the results move them */
		if (!rc && !replay(&st, &h, i, 0, &blind)) {
			int same = memcmp(p.values, blind.values, sizeof p.values) == 0;
			startup += i < 6 && same;
			modelled += i >= 6 && !same;
		}
		tt_sampler_proposal rp;
		if (!rc && !replay(&st, &h, i, h.nrow, &rp) &&
		    memcmp(p.values, rp.values, sizeof p.values) != 0) {
			if (!differ++)
				fprintf(stderr, "  trial %d: live lr %.17g, resumed %.17g\n", i,
				        p.values[0], rp.values[0]);
		}
		if (rc || i == N)
			break;
		memcpy(h.v[i], p.values, sizeof h.v[i]);
		rc = tt_sampler_created(&s, i, h.v[i], &e);
		double y = i % 7 == 3 ? NAN : score(&st, h.v[i], 0);
		/* trial 4 is first told a score that would put it first */
		double told = i == 4 ? 1.0 : y;
		tt_sampler_result r = result(i, h.v[i], 0, told);
		rc = rc ? rc : tt_sampler_tell(&s, &r, NULL, &e);
		store(&h, i, 0, told);
		if (i % 3 == 2) {
			r = result(i - 2, h.v[i - 2], 1, score(&st, h.v[i - 2], 1));
			rc = rc ? rc : tt_sampler_tell(&s, &r, NULL, &e);
			store(&h, i - 2, 1, r.val_acc);
		}
		if (i == 8) {
			y = score(&st, h.v[4], 0);
			r = result(4, h.v[4], 0, y);
			rc = rc ? rc : tt_sampler_tell(&s, &r, NULL, &e);
			store(&h, 4, 0, y);
		}
		CHECK(rc == TT_OK, "trial %d: %s", i, e.msg);
	}
	CHECK(differ == 0, "%d of %d proposals differ after a resume", differ, N + 1);
	CHECK(twice == 0, "asking twice gave %d different proposals", twice);
	CHECK(startup == 6 && modelled == N + 1 - 6, "%d of the first 6 proposals are "
	      "the start-up's, %d of the %d after them the model's", startup, modelled,
	      N + 1 - 6);
	tt_sampler_close(&s);
	tt_study_free(&st);
}

/* ---- the highest rung with enough results --------------------------------- */

/*
 * 40 trials told at rung 0 that the best sit near A = (0.1, 0.1) of the
 * unit square; at rung 1, min_obs - 1 results and then min_obs that the
 * best sits near B = (0.9, 0.9).  max_trials 50 gives min_obs 10.  The
 * proposals (20 of each, trials created and never told) follow A while
 * rung 1 has 9 results and B once it has 10.
 */
static double dist(const double *u, double a)
{
	return hypot(u[0] - a, u[1] - a);
}

static void propose(tt_sampler_inst *s, const tt_study *st, int from, int n,
                    double *to_a, double *to_b)
{
	tt_err e = { 0 };
	*to_a = *to_b = 0;
	for (int i = from; i < from + n; i++) {
		tt_sampler_proposal p;
		int rc = tt_sampler_ask(s, i, NULL, &p, &e);
		rc = rc ? rc : tt_sampler_created(s, i, p.values, &e);
		CHECK(rc == TT_OK, "trial %d: %s", i, e.msg);
		double u[2];
		unit(st, p.values, u);
		*to_a += dist(u, 0.1) / n;
		*to_b += dist(u, 0.9) / n;
	}
}

static void models_the_higher_rung(void)
{
	tt_study st;
	if (load("momentum = float 0 0.99\nweight-decay = float 0 0.1\n", 50, 4, &st))
		return;
	tt_sampler_inst s;
	tt_err e = { 0 };
	int rc = tt_sampler_open(&s, &tt_sampler_tpe, &st, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	static double v[100][TT_SPACE_MAX];
	tt_rng r;
	tt_rng_seed(&r, 3, 77);
	for (int i = 0; !rc && i < 40; i++) {
		for (int k = 0; k < 2; k++)
			v[i][k] = tt_sampler_map(&st.space[k], tt_rng_uniform(&r));
		double u[2];
		unit(&st, v[i], u);
		rc = tt_sampler_created(&s, i, v[i], &e);
		tt_sampler_result res = result(i, v[i], 0, -dist(u, 0.1));
		rc = rc ? rc : tt_sampler_tell(&s, &res, NULL, &e);
	}
	/* rung 1: trials 0..8, then 9 */
	for (int i = 0; !rc && i < 9; i++) {
		double u[2];
		unit(&st, v[i], u);
		tt_sampler_result res = result(i, v[i], 1, -dist(u, 0.9));
		rc = tt_sampler_tell(&s, &res, NULL, &e);
	}
	CHECK(rc == TT_OK, "%s", e.msg);
	double a1, b1, a2, b2;
	propose(&s, &st, 40, 20, &a1, &b1);
	double u[2];
	unit(&st, v[9], u);
	tt_sampler_result res = result(9, v[9], 1, -dist(u, 0.9));
	rc = tt_sampler_tell(&s, &res, NULL, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	propose(&s, &st, 60, 20, &a2, &b2);
	printf("  mean distance to A, B: %.3f, %.3f with 9 results at rung 1; %.3f, %.3f "
	       "with 10\n", a1, b1, a2, b2);
	CHECK(a1 < 0.5 * b1, "9 results at rung 1: proposals at %.3f from A, %.3f from B; "
	      "expected rung 0's model, near A", a1, b1);
	CHECK(b2 < 0.5 * a2, "10 results at rung 1: proposals at %.3f from A, %.3f from B; "
	      "expected rung 1's model, near B", a2, b2);
	tt_sampler_close(&s);
	tt_study_free(&st);
}

int main(void)
{
	TT_RUN(beats_random_on_average);
	TT_RUN(resume_proposes_the_same);
	TT_RUN(models_the_higher_rung);
	TT_EXIT();
}
