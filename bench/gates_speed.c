/*
 * gates_speed.c — what gates cost a training step, and what compaction
 * gives back (issue 14, "Gates that keep their promise").
 *
 * Two measurements on synthetic 28x28x1 batches (timing only: the data's
 * content does not change the work), each against the same model built
 * without gates, the two timed in alternation so that a burst of other
 * load hits both alike:
 *
 *   overhead  nothing pruned.  "sampled": the step of a gated epoch
 *             (method_gates.c): a Bernoulli sample, forward, loss,
 *             backward, |W|^2 per gate, the weight prior, the optimizer;
 *             "sampled-all" with every t at 0.99 (every unit sampled off
 *             now and then, every weight under the prior: the worst
 *             case), "sampled-few" with one gate in 50 at 0.9 and the
 *             others at 1 (as in an early gated epoch: most gates stay
 *             at 1, the projection's bound).  "fixed": the step of the
 *             warm-up and of the fine-tuning epoch (every gate on, t = 1,
 *             the prior, the optimizer).  Target: at most 5% more time
 *             than the ungated step.
 *   compact   a share of the gates pruned and the model compacted, then
 *             the fine-tuning step (every gate left at 1).  kept is the
 *             compacted model's training MACs over the dense model's;
 *             the target is speedup >= 0.5 / kept.  Scenarios: "units"
 *             prunes the same share of every unit group at random;
 *             "layers" (resnet) prunes the layer gate of every block
 *             with an identity shortcut first, then units.
 *
 * Time per step is the minimum over --reps repetitions of --steps steps
 * (the least disturbed); the median is printed beside it.  Run it on the
 * least loaded machine you have, with GOMP_SPINCOUNT=1000 as tunetop sets
 * it (tui/main.c).  On a machine that other work keeps busy, --clock cpu
 * times the process's CPU seconds (every thread's) instead of the wall
 * clock: the work a step does, much steadier under load, though it
 * counts the threads' waiting at barriers too (--threads 1 has none).
 *
 * Usage: gates_speed [--model SPEC] [--batch B] [--threads T] [--steps N]
 *                    [--reps R] [--mode overhead|compact|both]
 *                    [--keep F,F,...] [--clock wall|cpu]
 * Output, one line per measurement:
 *   overhead MODEL KIND dense_ms gated_ms overhead% (median ...)
 *   compact MODEL SCENARIO kept dense_ms compact_ms speedup target ok|LOW
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "clock.h"
#include "gates.h"
#include "model.h"
#include "optim.h"
#include "rng.h"

#define H 28
#define CLASSES 10
#define MAX_REPS 64

static const tt_backend *be;
static int batch = 128, threads = 2, steps = 10, reps = 7, cpu_clock;

/* Seconds: the monotonic wall clock, or this process's CPU time. */
static double now(void)
{
	if (!cpu_clock)
		return tt_clock_mono();
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static tt_model *build(const char *spec, int gates)
{
	tt_model_config cfg = { .spec = spec, .h = H, .w = H, .c = 1, .classes = CLASSES,
	                        .batch = batch, .optim_slots = 1, .seed = 1, .be = be,
	                        .gates = gates };
	tt_model *m = NULL;
	tt_err err = { 0 };
	if (tt_model_create(&cfg, &m, &err)) {
		fprintf(stderr, "gates_speed: %s: %s\n", spec, err.msg);
		exit(2);
	}
	/* a random batch, the same for every model */
	float *x = malloc((size_t)batch * H * H * sizeof *x);
	int *y = malloc((size_t)batch * sizeof *y);
	tt_rng r;
	tt_rng_seed(&r, 5, TT_STREAM_SYNTH);
	for (size_t i = 0; i < (size_t)batch * H * H; i++)
		x[i] = tt_rng_normal(&r);
	for (int i = 0; i < batch; i++)
		y[i] = (int)tt_rng_below(&r, CLASSES);
	be->upload(tt_model_input(m), x, (size_t)batch * H * H * sizeof *x);
	be->upload(tt_model_labels(m), y, (size_t)batch * sizeof *y);
	free(x);
	free(y);
	return m;
}

enum { STEP_PLAIN, STEP_SAMPLED, STEP_FIXED };

/* One training step as train.c and method_gates.c run it. */
static void step(tt_model *m, int kind, tt_rng *r, long k)
{
	static const tt_optim_config oc = { .kind = TT_OPT_SGD, .lr = 0.01f,
	                                    .momentum = 0.9f, .weight_decay = 5e-4f };
	double wd = oc.weight_decay;
	static double wsq[1 << 16];
	if (kind == STEP_SAMPLED)
		tt_model_gate_sample(m, r);
	else if (kind == STEP_FIXED)
		tt_model_gate_all_on(m);
	tt_model_forward(m, tt_model_input(m), batch, 1);
	tt_model_loss(m, tt_model_labels(m), batch, 0, 1, NULL);
	tt_model_backward(m);
	/* as method_gates.c: |W|^2 and the prior in one pass when sampled */
	if (kind == STEP_SAMPLED && tt_model_gates(m) <= (int)(sizeof wsq / sizeof *wsq))
		tt_model_gate_wsq_decay(m, wsq, wd, 10 * wd, wd);
	else if (kind != STEP_PLAIN)
		tt_model_gate_decay(m, wd, 10 * wd, wd);
	tt_optim_step(m, &oc, k);
	be->sync();
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Milliseconds per step of a and b, timed in alternation: min and median
 * over reps. */
static void time_pair(tt_model *a, int ka, tt_model *b, int kb, double ms[2][2])
{
	double t[2][MAX_REPS];
	tt_rng r;
	tt_rng_seed(&r, 9, TT_STREAM_GATES);
	for (int i = 0; i < 2; i++) { /* warm caches and pages */
		step(a, ka, &r, i);
		step(b, kb, &r, i);
	}
	for (int rep = 0; rep < reps; rep++)
		for (int w = 0; w < 2; w++) {
			tt_model *m = w ? b : a;
			int kind = w ? kb : ka;
			double t0 = now();
			for (int k = 0; k < steps; k++)
				step(m, kind, &r, k);
			t[w][rep] = (now() - t0) * 1e3 / steps;
		}
	for (int w = 0; w < 2; w++) {
		qsort(t[w], (size_t)reps, sizeof **t, cmp_double);
		ms[w][0] = t[w][0];
		ms[w][1] = t[w][reps / 2];
	}
}

static void overhead(const char *spec)
{
	tt_model *d = build(spec, 0), *g = build(spec, 1);
	int ng = tt_model_gates(g);
	float *t = tt_model_gate_probs(g);
	static const char *const name[] = { "sampled-all", "sampled-few", "fixed" };
	for (int k = 0; k < 3; k++) {
		double ms[2][2];
		for (int i = 0; i < ng; i++)
			t[i] = k == 0 ? 0.99f : k == 1 && i % 50 == 0 ? 0.9f : 1.0f;
		time_pair(d, STEP_PLAIN, g, k == 2 ? STEP_FIXED : STEP_SAMPLED, ms);
		printf("overhead %s %s %.2f %.2f %+.1f%% (median %.2f %.2f %+.1f%%)\n", spec,
		       name[k], ms[0][0], ms[1][0], 100 * (ms[1][0] / ms[0][0] - 1), ms[0][1],
		       ms[1][1], 100 * (ms[1][1] / ms[0][1] - 1));
		fflush(stdout);
	}
	tt_model_free(d);
	tt_model_free(g);
}

/*
 * A gated model of spec with the scenario's gates pruned at unit share q
 * (the same share of every unit group, chosen at random, never a whole
 * group) and compacted.  scenario 1 also prunes the layer gate of every
 * block with an identity shortcut.
 */
static tt_model *pruned(const char *spec, int scenario, double q)
{
	tt_model *m = build(spec, 1);
	tt_gate_cost c;
	tt_model_gate_desc(m, &c);
	unsigned char *pr = tt_model_gate_pruned(m);
	tt_rng r;
	tt_rng_seed(&r, 3, TT_STREAM_GATES);
	for (int g = 0; g < c.ngroups; g++) {
		const tt_gate_group *gr = &c.group[g];
		if (gr->kind == TT_GATE_LAYER) {
			/* the block's u1 group follows; an identity block keeps
			 * its stream width, which the projection blocks change */
			const tt_gate_group *u1 = &c.group[g + 1];
			const tt_gate_group *prev = g > 0 ? &c.group[g - 1] : NULL;
			if (scenario == 1 && prev && prev->kind == TT_GATE_UNIT &&
			    prev->count == u1->count)
				pr[gr->first] = 1;
			continue;
		}
		int want = (int)lround(q * gr->count), left = gr->count;
		if (want > gr->count - 1)
			want = gr->count - 1;
		while (want > 0) {
			int i = (int)tt_rng_below(&r, (uint64_t)gr->count);
			if (pr[gr->first + i])
				continue;
			pr[gr->first + i] = 1;
			want--;
			left--;
		}
	}
	tt_err err = { 0 };
	if (tt_model_gate_compact(m, &err)) {
		fprintf(stderr, "gates_speed: compact: %s\n", err.msg);
		exit(1);
	}
	return m;
}

/* The unit share whose compacted model keeps about keep of the dense
 * training MACs (bisection; kept falls as q grows). */
static double share_for(const char *spec, int scenario, double keep, double dense)
{
	double lo = 0, hi = 1;
	for (int it = 0; it < 14; it++) {
		double q = (lo + hi) / 2;
		tt_model *m = pruned(spec, scenario, q);
		double kept = tt_model_train_macs(m) / dense;
		tt_model_free(m);
		if (kept > keep)
			lo = q;
		else
			hi = q;
	}
	return (lo + hi) / 2;
}

static void compact(const char *spec, const double *keep, int nkeep)
{
	tt_model *d = build(spec, 0);
	double dense = tt_model_train_macs(d);
	int resnet = strncmp(spec, "resnet:", 7) == 0;
	static const char *const name[] = { "units", "layers" };
	for (int sc = 0; sc < (resnet ? 2 : 1); sc++)
		for (int k = 0; k < nkeep; k++) {
			/* kept is what the bisection reaches (in "layers", no less
			 * than the pruned layers alone keep); the target follows it */
			double q = share_for(spec, sc, keep[k], dense);
			tt_model *m = pruned(spec, sc, q);
			double kept = tt_model_train_macs(m) / dense;
			double ms[2][2];
			time_pair(d, STEP_PLAIN, m, STEP_FIXED, ms);
			double sp = ms[0][0] / ms[1][0], target = 0.5 / kept;
			printf("compact %s %s kept %.3f (units %.2f pruned) dense %.2f ms "
			       "compact %.2f ms speedup %.2fx target %.2fx %s (median %.2fx)\n",
			       spec, name[sc], kept, q, ms[0][0], ms[1][0], sp, target,
			       sp >= target ? "ok" : "LOW", ms[0][1] / ms[1][1]);
			fflush(stdout);
			tt_model_free(m);
		}
	tt_model_free(d);
}

int main(int argc, char **argv)
{
	const char *spec = "mlp:512,512,512", *mode = "both";
	double keep[8] = { 0.5, 0.3, 0.18 };
	int nkeep = 3;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "gates_speed: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--model") == 0) {
			spec = v;
		} else if (strcmp(a, "--batch") == 0) {
			batch = atoi(v);
		} else if (strcmp(a, "--threads") == 0) {
			threads = atoi(v);
		} else if (strcmp(a, "--steps") == 0) {
			steps = atoi(v);
		} else if (strcmp(a, "--reps") == 0) {
			reps = atoi(v);
		} else if (strcmp(a, "--mode") == 0) {
			mode = v;
		} else if (strcmp(a, "--clock") == 0) {
			cpu_clock = strcmp(v, "cpu") == 0;
		} else if (strcmp(a, "--keep") == 0) {
			nkeep = 0;
			for (char *p = (char *)v; *p && nkeep < 8;) {
				keep[nkeep++] = strtod(p, &p);
				if (*p == ',')
					p++;
				else
					break;
			}
		} else {
			fprintf(stderr, "usage: gates_speed [--model SPEC] [--batch B] "
			        "[--threads T] [--steps N] [--reps R] "
			        "[--mode overhead|compact|both] [--keep F,F,...] "
			        "[--clock wall|cpu]\n");
			return 2;
		}
	}
	if (batch < 1 || threads < 1 || steps < 1 || reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "gates_speed: bad --batch, --threads, --steps or --reps\n");
		return 2;
	}
	be = tt_backend_get("cpu");
	if (be->set_threads)
		be->set_threads(threads);
	if (strcmp(mode, "compact") != 0)
		overhead(spec);
	if (strcmp(mode, "overhead") != 0)
		compact(spec, keep, nkeep);
	return 0;
}
