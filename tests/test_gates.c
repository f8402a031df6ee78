/*
 * test_gates.c — the closed-form expected cost of gated networks, its
 * gradient and the projected update (engine/gates.c).
 *
 * The cost models here are written out by hand for two small networks,
 * so the arithmetic is checked independently of the model code: a
 * residual block between a stem and a head, and a two-layer MLP.
 */
#include <stdlib.h>
#include <string.h>

#include "gates.h"
#include "rng.h"
#include "test.h"

/* resnet-like: stem conv (1 -> 4 channels, 3x3 on 8x8), one block of
 * width 4 with a layer gate (group 0), u1 (group 1, 4 units), u2
 * (group 2, 4 units), then GAP + dense to 3 classes.  Gates: 0 layer,
 * 1..4 u1, 5..8 u2. */
static const tt_gate_group rn_groups[] = {
	{ TT_GATE_LAYER, 1, 0, 1, 0, -1 },
	{ TT_GATE_UNIT, 1, 1, 4, 0, -1 },
	{ TT_GATE_UNIT, 1, 5, 4, 0, -1 },
};
#define HW 64.0
static const tt_gate_term rn_terms[] = {
	{ 9 * 1 * 4 * HW, 9 * 4 + 2 * 4, -1, -1, -1 }, /* stem conv + BN */
	{ 9 * 4 * HW, 9 * 4, 0, 1, -1 },               /* conv1: C_in * S(u1) */
	{ 0, 2, 0, 1, -1 },                            /* BN1 of each u1 unit */
	{ 9 * HW, 9, 0, 1, 2 },                        /* conv2: S(u1) * S(u2) */
	{ 0, 2, 0, 2, -1 },                            /* BN2 of each u2 unit */
	{ 4 * 3, 4 * 3 + 3, -1, -1, -1 },              /* head */
};

/* mlp-like: 10 inputs, hidden 5 (group 0), hidden 3 (group 1), 2 classes.
 * Gates 0..4, 5..7. */
static const tt_gate_group mlp_groups[] = {
	{ TT_GATE_UNIT, 0, 0, 5, 0, -1 },
	{ TT_GATE_UNIT, 1, 5, 3, 0, -1 },
};
static const tt_gate_term mlp_terms[] = {
	{ 10, 11, -1, 0, -1 },  /* fc1: 10 inputs (+bias) per live unit */
	{ 1, 1, -1, 0, 1 },     /* fc2: S(h1) * S(h2) */
	{ 0, 1, -1, 1, -1 },    /* fc2 bias */
	{ 2, 2, -1, 1, -1 },    /* head: S(h2) * 2 */
	{ 0, 2, -1, -1, -1 },   /* head bias */
};

static tt_gate_cost resnet_cost(void)
{
	tt_gate_cost c = { rn_groups, 3, rn_terms, 6, 9, 0, 0 };
	tt_gate_cost_init(&c);
	return c;
}

static tt_gate_cost mlp_cost(void)
{
	tt_gate_cost c = { mlp_groups, 2, mlp_terms, 5, 8, 0, 0 };
	tt_gate_cost_init(&c);
	return c;
}

static void test_full_totals(void)
{
	tt_gate_cost r = resnet_cost(), m = mlp_cost();
	CHECK_CLOSE(r.macs_full, 9 * 4 * HW + 9 * 16 * HW + 9 * 16 * HW + 12, 0, 1e-12,
	            "resnet MACs");
	CHECK_CLOSE(r.params_full, 44 + 144 + 8 + 144 + 8 + 15, 0, 1e-12, "resnet params");
	CHECK_CLOSE(m.macs_full, 50 + 15 + 6, 0, 1e-12, "mlp MACs");
	CHECK_CLOSE(m.params_full, 55 + 15 + 3 + 6 + 2, 0, 1e-12, "mlp params");
	/* at t = 1 the expectation is the dense network */
	float one[9];
	for (int i = 0; i < 9; i++)
		one[i] = 1;
	double mc, pc;
	tt_gate_expected(&r, one, &mc, &pc);
	CHECK_CLOSE(mc, r.macs_full, 0, 1e-12, "E[MACs] at t=1");
	CHECK_CLOSE(pc, r.params_full, 0, 1e-12, "E[params] at t=1");
	/* the block's layer gate off: only stem and head are left */
	one[0] = 0;
	tt_gate_expected(&r, one, &mc, &pc);
	CHECK_CLOSE(mc, 9 * 4 * HW + 12, 0, 1e-12, "MACs without the block");
	CHECK_CLOSE(pc, 44 + 15, 0, 1e-12, "params without the block");
}

/* The closed form against the mean cost of sampled 0/1 networks: a
 * polynomial that squared a group's sum, or missed a term, would be off
 * by far more than the sampling error. */
static void mc_check(const tt_gate_cost *c, uint64_t seed, const char *what)
{
	float t[16], xi[16];
	tt_rng r;
	tt_rng_seed(&r, seed, 1);
	for (int i = 0; i < c->ngates; i++)
		t[i] = 0.1f + 0.8f * tt_rng_uniform(&r);
	double em, ep;
	tt_gate_expected(c, t, &em, &ep);
	const int N = 40000;
	double sm = 0, sm2 = 0, sp = 0, sp2 = 0;
	for (int k = 0; k < N; k++) {
		for (int i = 0; i < c->ngates; i++)
			xi[i] = tt_rng_uniform(&r) < t[i] ? 1.0f : 0.0f;
		double m, p;
		tt_gate_expected(c, xi, &m, &p);
		sm += m, sm2 += m * m, sp += p, sp2 += p * p;
	}
	double mm = sm / N, mp = sp / N;
	double se_m = sqrt((sm2 / N - mm * mm) / N), se_p = sqrt((sp2 / N - mp * mp) / N);
	CHECK(fabs(mm - em) <= 4 * se_m + 1e-9, "%s MACs: Monte Carlo %.6g +- %.3g, "
	      "closed form %.6g", what, mm, se_m, em);
	CHECK(fabs(mp - ep) <= 4 * se_p + 1e-9, "%s params: Monte Carlo %.6g +- %.3g, "
	      "closed form %.6g", what, mp, se_p, ep);
	/* and the check has teeth: a shifted expectation would fail it */
	CHECK(fabs(mm - 1.02 * em) > 4 * se_m, "%s: Monte Carlo too noisy to tell 2%%",
	      what);
}

static void test_expected_matches_monte_carlo(void)
{
	tt_gate_cost r = resnet_cost(), m = mlp_cost();
	mc_check(&r, 11, "resnet");
	mc_check(&m, 12, "mlp");
}

/* dC/dt against central differences; C is linear in each t[i], so the
 * difference is exact up to rounding. */
static void fd_check(const tt_gate_cost *c, double a, uint64_t seed, const char *what)
{
	float t[16];
	double d[16];
	tt_rng r;
	tt_rng_seed(&r, seed, 2);
	for (int i = 0; i < c->ngates; i++)
		t[i] = (float)(0.25 + 0.5 * tt_rng_uniform(&r));
	tt_gate_complexity(c, t, a, d);
	for (int i = 0; i < c->ngates; i++) {
		float keep = t[i], h = 0.0625f;
		t[i] = keep + h;
		double up = tt_gate_complexity(c, t, a, NULL);
		t[i] = keep - h;
		double dn = tt_gate_complexity(c, t, a, NULL);
		t[i] = keep;
		char name[64];
		snprintf(name, sizeof name, "%s a=%g dC/dt[%d]", what, a, i);
		CHECK_CLOSE(d[i], (up - dn) / (2 * h), 1e-12, 1e-5, name);
	}
	/* C itself at t = 1 is 1 (a fraction of the dense network) */
	for (int i = 0; i < c->ngates; i++)
		t[i] = 1;
	CHECK_CLOSE(tt_gate_complexity(c, t, a, NULL), 1.0, 1e-12, 0, "C(1)");
}

static void test_complexity_gradient(void)
{
	tt_gate_cost r = resnet_cost(), m = mlp_cost();
	double as[] = { 0, 0.5, 1 };
	for (int k = 0; k < 3; k++) {
		fd_check(&r, as[k], 20 + k, "resnet");
		fd_check(&m, as[k], 30 + k, "mlp");
	}
	/* a = 1 counts MACs only: BN units cost no MACs, so the gradient of a
	 * u2 unit comes from conv2 alone, and exactly so */
	float t[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	double d[9];
	tt_gate_complexity(&r, t, 1.0, d);
	CHECK_CLOSE(d[5], 9 * HW * 4 / r.macs_full, 1e-15, 1e-9, "dC/du2 at a=1");
}

static tt_gate_config cfg_with(double strength, double balance)
{
	tt_gate_config g;
	tt_gate_defaults(&g);
	g.strength = strength;
	g.lambda = strength;
	g.balance = balance;
	g.lr = 0.5; /* steps small enough to stay inside (0, 1) */
	return g;
}

/* Whatever the scores, probabilities stay in [0, 1]; pruned gates stay
 * at 0; a NaN score moves nothing. */
static void test_projection(void)
{
	tt_gate_cost r = resnet_cost();
	tt_gate_config g = cfg_with(3, 0.5);
	g.lr = 2;
	float t[9], score[9];
	double wsq[9], d[9];
	unsigned char pruned[9] = { 0 };
	tt_rng rng;
	tt_rng_seed(&rng, 5, 3);
	for (int i = 0; i < 9; i++)
		t[i] = 1, wsq[i] = 1;
	pruned[7] = 1;
	t[7] = 0;
	int outside = 0, moved_pruned = 0, zeros = 0, ones = 0;
	for (int step = 0; step < 2000; step++) {
		for (int i = 0; i < 9; i++)
			score[i] = 50 * (tt_rng_uniform(&rng) - 0.5f);
		tt_gate_update(&r, &g, t, score, NULL, wsq, pruned, 0, NULL, d);
		for (int i = 0; i < 9; i++) {
			outside += !(t[i] >= 0 && t[i] <= 1);
			zeros += t[i] == 0;
			ones += t[i] == 1;
		}
		moved_pruned += t[7] != 0;
	}
	CHECK(outside == 0, "%d probabilities left [0, 1]", outside);
	CHECK(moved_pruned == 0, "a pruned gate moved %d times", moved_pruned);
	CHECK(zeros > 2000 && ones > 100, "the projection never bit: %d zeros, %d ones",
	      zeros, ones);
	/* a NaN score leaves the gate where it was */
	float before = t[2] = 0.5f;
	score[2] = NAN;
	tt_gate_update(&r, &g, t, score, NULL, wsq, pruned, 0, NULL, d);
	CHECK(t[2] == before, "a NaN score moved t to %g", t[2]);
}

/* The direction of every term of G. */
static void test_update_terms(void)
{
	tt_gate_cost r = resnet_cost();
	float t[9], score[9] = { 0 };
	double wsq[9] = { 0 }, d[9];
	/* complexity alone pushes every gate down, layer gates harder when
	 * the balance says layers */
	for (int k = 0; k < 2; k++) {
		double b = k ? 0.9 : 0.1;
		tt_gate_config g = cfg_with(1, b);
		for (int i = 0; i < 9; i++)
			t[i] = 0.5f;
		double dc[9];
		tt_gate_complexity(&r, t, g.flops_share, dc);
		tt_gate_update(&r, &g, t, score, NULL, wsq, NULL, 0, NULL, d);
		for (int i = 0; i < 9; i++)
			CHECK(t[i] < 0.5f, "b=%g gate %d did not move down: %g", b, i, t[i]);
		double layer_drop = 0.5 - t[0], unit_drop = 0.5 - t[1];
		double ratio = layer_drop / unit_drop;
		/* scale 2b against 2(1-b) on top of dC/dt's own ratio */
		double dc_ratio = dc[0] / dc[1];
		CHECK_CLOSE(ratio, dc_ratio * b / (1 - b), 1e-9, 1e-3, "layer/unit step ratio");
	}
	/* strength 0: a gate whose removal would raise the loss (score < 0)
	 * stays at 1; weight norm with lam_off > lam_on argues for keeping */
	tt_gate_config g = cfg_with(0, 0.5);
	for (int i = 0; i < 9; i++)
		t[i] = 1, score[i] = -0.1f;
	tt_gate_update(&r, &g, t, score, NULL, wsq, NULL, 0, NULL, d);
	for (int i = 0; i < 9; i++)
		CHECK(t[i] == 1, "gate %d left 1 with a negative score: %g", i, t[i]);
	for (int i = 0; i < 9; i++)
		t[i] = 0.5f, score[i] = 0, wsq[i] = 4;
	tt_gate_update(&r, &g, t, score, NULL, wsq, NULL, 0, NULL, d);
	for (int i = 0; i < 9; i++)
		CHECK_CLOSE(t[i], 0.5 + g.lr * (g.lam_off - g.lam_on) * 2, 1e-7, 0,
		            "weight-norm term");
	/* the layer hold: the layer gate stays, the units move */
	{
		tt_gate_config h = cfg_with(1, 0.5);
		for (int i = 0; i < 9; i++)
			t[i] = 0.5f, score[i] = 0, wsq[i] = 0;
		tt_gate_update(&r, &h, t, score, NULL, wsq, NULL, 1, NULL, d);
		CHECK(t[0] == 0.5f, "a held layer gate moved to %g", t[0]);
		CHECK(t[1] < 0.5f && t[5] < 0.5f, "units held too: %g %g", t[1], t[5]);
	}
	/* the 1/t factor is clipped at 20 */
	for (int i = 0; i < 9; i++)
		t[i] = 0.01f, score[i] = 0.001f, wsq[i] = 0;
	tt_gate_update(&r, &g, t, score, NULL, wsq, NULL, 0, NULL, d);
	CHECK_CLOSE(t[3], 0.01 - g.lr * 20 * 0.001, 1e-7, 0, "clip(1/t, 1, 20)");
}

static void test_parse(void)
{
	tt_gate_config c;
	tt_err err = { 0 };
	tt_gate_defaults(&c);
	CHECK(tt_gate_parse("1.5", &c, &err) == TT_OK && c.strength == 1.5 &&
	      c.balance == 0.5 && c.flops_share == 0.5, "strength only: %s", err.msg);
	CHECK(tt_gate_parse("0.3,0.9,0", &c, &err) == TT_OK && c.strength == 0.3 &&
	      c.balance == 0.9 && c.flops_share == 0, "three values: %s", err.msg);
	static const struct { const char *in, *msg; } bad[] = {
		{ "", "empty" },
		{ "x", "strength 'x' is not a number" },
		{ "1,", "balance '' is not a number" },
		{ "1,1.5", "balance 1.5 is out of range, expected 0..1" },
		{ "1,0.5,-1", "flops share -1 is out of range" },
		{ "-2", "strength -2 is out of range" },
		{ "1,0.5,0.5,3", "more than three values" },
		{ "nan", "not a number" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tt_gate_defaults(&c);
		err.msg[0] = 0;
		int rc = tt_gate_parse(bad[i].in, &c, &err);
		CHECK(rc == TT_EINPUT, "'%s' accepted", bad[i].in);
		CHECK(strstr(err.msg, bad[i].msg), "'%s': message '%s' lacks '%s'",
		      bad[i].in, err.msg, bad[i].msg);
		CHECK(c.strength == 0, "'%s' changed the config on error", bad[i].in);
	}
}

/* The controller: the target a strength names, the cubic ramp to it and
 * the multiplier's dual step. */
static void test_controller(void)
{
	CHECK(tt_gate_target(0) == 1 && tt_gate_target(1) == 0.5 && tt_gate_target(3) == 0.25,
	      "targets %g %g %g", tt_gate_target(0), tt_gate_target(1), tt_gate_target(3));
	CHECK(tt_gate_schedule(0.3, 0) == 1 && tt_gate_schedule(0.3, 1) == 0.3 &&
	      tt_gate_schedule(0.3, -1) == 1 && tt_gate_schedule(0.3, 2) == 0.3,
	      "schedule ends");
	double prev = 2;
	for (int k = 0; k <= 20; k++) {
		double p = k / 20.0, c = tt_gate_schedule(0.3, p);
		CHECK(c < prev && c >= 0.3, "schedule not falling at p=%g: %g after %g", p, c, prev);
		CHECK_CLOSE(c, 0.3 + 0.7 * pow(1 - p, 3), 1e-12, 1e-12, "the cubic schedule");
		prev = c;
	}
	double l = tt_gate_dual(1, 0.6, 0.5, 2);
	CHECK_CLOSE(l, exp(0.2), 1e-12, 1e-12, "dual step above the target");
	CHECK(tt_gate_dual(1, 0.4, 0.5, 2) < 1, "below the target the multiplier grows");
	CHECK(tt_gate_dual(1, 0.5, 0.5, 2) == 1, "at the target it moved");
	CHECK(tt_gate_dual(9e3, 1, 0, 10) == 1e4 && tt_gate_dual(2e-4, 0, 1, 10) == 1e-4,
	      "bounds %g %g", tt_gate_dual(9e3, 1, 0, 10), tt_gate_dual(2e-4, 0, 1, 10));
	CHECK(tt_gate_dual(3, NAN, 0.5, 2) == 3, "a NaN cost moved the multiplier");
}

/* Both ends scored: w = 1/(2t) on, 1/(2(1-t)) off, within [1/2, 20], in a
 * group with offscore and a mask; a layer group keeps clip(1/t, 1, 20);
 * the repulsion moves t away from 1/2 by polar times its distance. */
static void test_both_ends(void)
{
	tt_gate_cost r = resnet_cost();
	tt_gate_group grp[3];
	memcpy(grp, rn_groups, sizeof grp);
	grp[1].offscore = grp[2].offscore = 1;
	r.group = grp;
	tt_gate_config g = cfg_with(0, 0.5);
	g.lr = 1;
	const float t0[9] = { 0.5f, 0.5f, 0.5f, 0.8f, 0.8f, 0.99f, 0.25f, 0.25f, 0.5f };
	const float mask[9] = { 1, 1, 0, 1, 0, 0, 1, 0, 1 };
	float t[9], score[9];
	double wsq[9] = { 0 }, d[9];
	for (int i = 0; i < 9; i++)
		score[i] = 0.01f;
	memcpy(t, t0, sizeof t);
	tt_gate_update(&r, &g, t, score, mask, wsq, NULL, 0, NULL, d);
	const double w[9] = { 2, 1, 1, 0.625, 2.5, 20, 2, 2.0 / 3, 1 };
	for (int i = 0; i < 9; i++)
		CHECK_CLOSE(t[i], t0[i] - 0.01 * w[i], 1e-6, 0, "a gate's data weight");
	/* without the mask, methods.md's estimator everywhere */
	memcpy(t, t0, sizeof t);
	tt_gate_update(&r, &g, t, score, NULL, wsq, NULL, 0, NULL, d);
	CHECK_CLOSE(t[4], 0.8 - 0.01 / 0.8, 1e-6, 0, "no mask: 1/t");
	/* the repulsion */
	memcpy(t, t0, sizeof t);
	for (int i = 0; i < 9; i++)
		score[i] = 0;
	g.polar = 0.5;
	tt_gate_update(&r, &g, t, score, mask, wsq, NULL, 0, NULL, d);
	CHECK_CLOSE(t[3], 0.8 + 0.5 * 0.3, 1e-6, 0, "repulsion above 1/2");
	CHECK_CLOSE(t[6], 0.25 - 0.5 * 0.25, 1e-6, 0, "repulsion below 1/2");
	CHECK(t[1] == 0.5f && t[5] == 1, "1/2 stays %g; 0.99 clips to 1: %g", t[1], t[5]);
}

/* With rms2 the step is lr over the running RMS of G of its kind:
 * scaling every slope by 1000 moves nothing differently, the mean squares
 * are kept, and a lone layer gate steps exactly lr. */
static void test_normalized(void)
{
	tt_gate_cost r = resnet_cost();
	tt_gate_config g = cfg_with(0, 0.5);
	g.lr = 0.05;
	float ta[9], tb[9], sa[9], sb[9];
	double wsq[9] = { 0 }, d[9], ra[2] = { 0, 0 }, rb[2] = { 0, 0 };
	for (int i = 0; i < 9; i++) {
		ta[i] = tb[i] = 0.7f;
		sa[i] = 0.001f * (float)(i - 4);
		sb[i] = 1000 * sa[i];
	}
	tt_gate_update(&r, &g, ta, sa, NULL, wsq, NULL, 0, ra, d);
	tt_gate_update(&r, &g, tb, sb, NULL, wsq, NULL, 0, rb, d);
	double m2 = 0;
	for (int i = 0; i < 9; i++) {
		CHECK_CLOSE(ta[i], tb[i], 1e-6, 0, "a scale-free step");
		double w = 1 / 0.7; /* clip(1/t, 1, 20) */
		m2 += i ? (w * sa[i]) * (w * sa[i]) / 8 : 0;
	}
	CHECK_CLOSE(ra[0], m2, 1e-12, 1e-6, "the units' first mean square");
	/* the largest slope moved its gate by lr * |G| / rms */
	CHECK_CLOSE(0.7 - ta[8], 0.05 * (sa[8] / 0.7) / sqrt(m2), 1e-6, 1e-4, "the step");
	CHECK_CLOSE(ta[0], 0.75, 1e-6, 0, "the lone layer gate's step");
	double before = ra[0];
	tt_gate_update(&r, &g, ta, sa, NULL, wsq, NULL, 0, ra, d);
	CHECK(ra[0] != before && ra[0] > 0, "the mean square did not move: %g", ra[0]);
}

/* A layer gate with a branch group: its data term is the sum of the
 * group's weighted scores over the chance the branch ran. */
static void test_branch_sum(void)
{
	tt_gate_cost r = resnet_cost();
	tt_gate_group grp[3];
	memcpy(grp, rn_groups, sizeof grp);
	grp[1].offscore = grp[2].offscore = 1;
	grp[0].branch = 2;
	r.group = grp;
	tt_gate_config g = cfg_with(0, 0.5);
	g.lr = 1;
	float t[9], score[9];
	const float mask[9] = { 1, 1, 1, 1, 1, 1, 0, 1, 1 };
	double wsq[9] = { 0 }, d[9];
	for (int i = 0; i < 9; i++)
		t[i] = 0.5f, score[i] = 0.001f * (float)i;
	score[0] = 100; /* its own score is not used */
	tt_gate_update(&r, &g, t, score, mask, wsq, NULL, 0, NULL, d);
	/* u2 = gates 5..8, each at t = 1/2: w = 1 on or off; the branch ran
	 * with probability 1/2: w = 2 */
	double data = 2 * 0.001 * (5 + 6 + 7 + 8);
	CHECK_CLOSE(t[0], 0.5 - data, 1e-6, 0, "the layer gate's data term");
}

int main(void)
{
	TT_RUN(test_full_totals);
	TT_RUN(test_expected_matches_monte_carlo);
	TT_RUN(test_complexity_gradient);
	TT_RUN(test_projection);
	TT_RUN(test_update_terms);
	TT_RUN(test_parse);
	TT_RUN(test_controller);
	TT_RUN(test_both_ends);
	TT_RUN(test_normalized);
	TT_RUN(test_branch_sum);
	TT_EXIT();
}
