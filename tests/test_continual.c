/*
 * test_continual.c — experiences, the replay buffer and the continual
 * metrics (engine/continual.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "continual.h"
#include "test.h"

static void split_by_classes(void)
{
	tt_dataset all = { .n = 100, .h = 2, .w = 2, .c = 1, .classes = 10, .mean = 0.3f,
	                   .std = 0.2f };
	all.pix = malloc(400);
	all.label = malloc(100);
	for (int i = 0; i < 100; i++) {
		all.label[i] = (uint8_t)((i * 7) % 10);
		memset(all.pix + 4 * i, i, 4);
	}
	tt_dataset t[5];
	tt_err err = {0};
	CHECK(tt_cl_split(&all, 5, t, &err) == TT_OK, "%s", err.msg);
	int total = 0;
	for (int k = 0; k < 5; k++) {
		CHECK(t[k].classes == 2 && t[k].n == 20, "task %d: %d classes, %d examples", k,
		      t[k].classes, t[k].n);
		for (int i = 0; i < t[k].n; i++) {
			int src = t[k].pix[4 * i];
			CHECK(all.label[src] / 2 == k && all.label[src] % 2 == t[k].label[i],
			      "task %d item %d: from example %d of class %d, label %d", k, i, src,
			      all.label[src], t[k].label[i]);
		}
		CHECK(t[k].mean == all.mean && t[k].std == all.std, "normalisation lost");
		total += t[k].n;
		tt_data_free(&t[k]);
	}
	CHECK(total == 100, "%d examples in the tasks", total);
	CHECK(tt_cl_split(&all, 3, t, &err) == TT_EINPUT && strstr(err.msg, "3"),
	      "3 experiences of 10 classes: %s", err.msg);
	tt_data_free(&all);
}

/* Order 0 keeps the classes in order; another order is a permutation,
 * the same for the same seed: every task holds k classes labelled
 * 0..k-1, and some class leaves its in-order task. */
static void class_order(void)
{
	int ct[10], cl[10], ct2[10], cl2[10];
	tt_cl_order(10, 5, 0, ct, cl);
	for (int c = 0; c < 10; c++)
		CHECK(ct[c] == c / 2 && cl[c] == c % 2, "order 0: class %d in task %d as %d", c,
		      ct[c], cl[c]);
	tt_cl_order(10, 5, 7, ct, cl);
	tt_cl_order(10, 5, 7, ct2, cl2);
	int moved = 0, seen[5][2] = {{0}};
	for (int c = 0; c < 10; c++) {
		CHECK(ct[c] == ct2[c] && cl[c] == cl2[c], "order 7 twice: class %d differs", c);
		CHECK(ct[c] >= 0 && ct[c] < 5 && cl[c] >= 0 && cl[c] < 2,
		      "order 7: class %d in task %d as %d", c, ct[c], cl[c]);
		if (ct[c] >= 0 && ct[c] < 5 && cl[c] >= 0 && cl[c] < 2)
			seen[ct[c]][cl[c]]++;
		moved += ct[c] != c / 2;
	}
	for (int t = 0; t < 5; t++)
		CHECK(seen[t][0] == 1 && seen[t][1] == 1, "order 7: task %d has labels %d, %d "
		      "times", t, seen[t][0], seen[t][1]);
	CHECK(moved > 0, "order 7 is the classes in order");
}

static void accuracy_matrix_summaries(void)
{
	/* a[i][j], 3 experiences */
	const double a[9] = {
		0.90, 0, 0,
		0.70, 0.95, 0,
		0.60, 0.93, 0.80,
	};
	double f[2];
	CHECK_CLOSE(tt_cl_aca(a, 3), (0.60 + 0.93 + 0.80) / 3, 1e-12, 0, "ACA");
	double mean = tt_cl_forgetting(a, 3, f);
	CHECK_CLOSE(f[0], 0.30, 1e-12, 0, "forgetting of task 0 (from its best, 0.90)");
	CHECK_CLOSE(f[1], 0.02, 1e-12, 0, "forgetting of task 1");
	CHECK_CLOSE(mean, 0.16, 1e-12, 0, "mean forgetting");
	CHECK(tt_cl_forgetting(a, 1, NULL) == 0, "one experience forgets nothing");
}

static void replay_is_class_balanced_and_uniform(void)
{
	tt_cl_replay r;
	tt_err err = {0};
	CHECK(tt_cl_replay_init(&r, 200, 2, 10, 4, &err) == TT_OK, "%s", err.msg);
	/* 5 tasks of 2 classes, 1000 items per class, streamed task by task */
	for (int t = 0; t < 5; t++)
		for (int i = 0; i < 2000; i++) {
			int cls = 2 * t + (i & 1);
			float x[2] = { (float)cls, (float)(i / 2) };
			tt_cl_replay_add(&r, x, cls, t, cls & 1);
		}
	CHECK(r.n == 200, "%d items held", r.n);
	int per[10] = {0};
	double mean_idx[10] = {0};
	for (int i = 0; i < r.n; i++) {
		per[r.cls[i]]++;
		mean_idx[r.cls[i]] += r.x[2 * i + 1];
		CHECK(r.x[2 * i] == (float)r.cls[i] && r.task[i] == r.cls[i] / 2 &&
		      r.label[i] == (r.cls[i] & 1), "item %d mixed up", i);
	}
	for (int c = 0; c < 10; c++) {
		CHECK(per[c] == 20, "class %d holds %d of 200", c, per[c]);
		/* a uniform sample of 0..999: the mean of 20 is 499.5 +- 64.5 */
		double m = per[c] ? mean_idx[c] / per[c] : 0;
		CHECK(fabs(m - 499.5) < 4 * 288.7 / sqrt(20), "class %d keeps items around %g", c, m);
	}
	float xs[2 * 64];
	int task[64], label[64], seen[5] = {0};
	tt_cl_replay_sample(&r, 64, xs, task, label);
	for (int q = 0; q < 64; q++)
		seen[task[q]]++;
	for (int t = 0; t < 5; t++)
		CHECK(seen[t] > 0, "no replayed item of task %d in 64", t);
	tt_cl_replay_free(&r);
}

int main(void)
{
	TT_RUN(split_by_classes);
	TT_RUN(class_order);
	TT_RUN(accuracy_matrix_summaries);
	TT_RUN(replay_is_class_balanced_and_uniform);
	TT_EXIT();
}
