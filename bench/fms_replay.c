/*
 * fms_replay.c — the replay table of the FMS benchmark (methods.md §2,
 * "Fashion-MNIST reproduction") and the samplers replayed against it.
 * bench/fms.py drives it; see there for the sizes and what is reported.
 *
 *   fms_replay build DIR CONFIGS EPOCHS HUB_SEEDS HUB_TRAIN TRAIN VAL THREADS
 *     A hub of 2 x HUB_SEEDS cnns (cnn:8,16 and cnn:16,32), pretrained 2
 *     epochs on Fashion-MNIST classes 0-4 (HUB_TRAIN images), kept as
 *     DIR/hub_K.ckpt; then CONFIGS configurations drawn (seeded) from hub
 *     x lr {1e-3,1e-2,1e-1} x momentum {0,0.9} x weight decay {0,1e-4} x
 *     batch {64,256}, each fine-tuned from its hub checkpoint with a new
 *     head on classes 5-9 (TRAIN images, VAL held out) for EPOCHS epochs:
 *     DIR/c_I_eJ.ckpt after every epoch J (J = 0: the starting weights, the
 *     new head on), and one line per epoch in DIR/table.csv (arch 0 is
 *     cnn:8,16, 1 cnn:16,32).  A build
 *     interrupted resumes at the first configuration without its rows.
 *
 *   fms_replay replay DIR SAMPLER SEED BUDGET [WIDTH BLOCKS INIT FIRST WARM]
 *     SAMPLER fms, dyhpo, fms-flat or random spends BUDGET epochs over the
 *     table; prints a line per decision
 *       d K INDEX EPOCH ACC SECONDS CPU_SECONDS
 *     (the decision's wall time, and the CPU time of every thread of the
 *     process during it: on a loaded machine the wall time grows with the
 *     load, the CPU time does not)
 *     and, after the decision that spends budget B (every 10 epochs and
 *     the last), the surrogate's forecast at the top epoch of every
 *     configuration not at the top:
 *       f B INDEX FINAL_MU
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ckpt.h"
#include "clock.h"
#include "continual.h"
#include "fms.h"
#include "model.h"
#include "rng.h"
#include "train.h"
#include "wgraph.h"
#include "wgraph_model.h"

#define MAXC 4096
static const char *ARCH[2] = { "cnn:8,16", "cnn:16,32" };
static const double LR[3] = { 1e-3, 1e-2, 1e-1 };
static const double MOM[2] = { 0, 0.9 };
static const double WD[2] = { 0, 1e-4 };
static const int BATCH[2] = { 64, 256 };

static void die(const tt_err *e, const char *what)
{
	fprintf(stderr, "fms_replay: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(1);
}

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc((size_t)n + 1);
	if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(p);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void spit(const char *path, const void *p, size_t n)
{
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) || rename(tmp, path))
		die(NULL, path);
}

/* CPU seconds of the whole process (every thread) so far. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* ---- build ----------------------------------------------------------------- */

typedef struct cfg {
	int hub, arch, seed, lr, mom, wd, batch;
} cfg;

/* The configurations: all 2*S*24 combinations shuffled (seed 12), the
 * first n. */
static int draw_configs(int seeds, int n, cfg *out)
{
	int all = 2 * seeds * 24, *idx = malloc(sizeof(int) * (size_t)all);
	for (int i = 0; i < all; i++)
		idx[i] = i;
	tt_rng r;
	tt_rng_seed(&r, 12, 0);
	tt_rng_shuffle(&r, idx, all);
	if (n > all)
		n = all;
	for (int k = 0; k < n; k++) {
		int v = idx[k];
		cfg c;
		c.batch = v % 2, v /= 2;
		c.wd = v % 2, v /= 2;
		c.mom = v % 2, v /= 2;
		c.lr = v % 3, v /= 3;
		c.hub = v;
		c.arch = c.hub % 2;
		c.seed = c.hub / 2;
		out[k] = c;
	}
	free(idx);
	return n;
}

typedef struct saver {
	const char *dir;
	int cfg;
	long spe;                /* steps per epoch */
	void *last;              /* the hub: its last blob */
	size_t last_len;
	double acc[65];          /* validation accuracy after epoch e */
} saver;

static void on_ep(void *ud, int epoch, long step, double tl, double ta, double vl,
                  double va, double sps)
{
	saver *s = ud;
	(void)step, (void)tl, (void)ta, (void)vl, (void)sps;
	if (epoch >= 1 && epoch <= 64)
		s->acc[epoch] = va;
}

static int on_ck(void *ud, long step, const void *blob, size_t len)
{
	saver *s = ud;
	if (s->cfg < 0) {
		free(s->last);
		s->last = malloc(len);
		memcpy(s->last, blob, len);
		s->last_len = len;
		return 0;
	}
	if (step % s->spe)
		return 0;
	char path[1024];
	snprintf(path, sizeof path, "%s/c_%d_e%ld.ckpt", s->dir, s->cfg, step / s->spe);
	spit(path, blob, len);
	return 0;
}

/* The start of a fine-tune: the hub's blob with the head's parameters
 * from a fresh model of seed `seed` and the optimizer state zeroed. */
static void *new_head(const void *hub, size_t len, const char *spec, uint64_t seed,
                      int classes)
{
	tt_err e = {0};
	tt_ck_section sec[TT_CK_SECTIONS_MAX];
	int ns = 0;
	char *b = malloc(len);
	memcpy(b, hub, len);
	if (tt_ck_parse(b, len, sec, TT_CK_SECTIONS_MAX, &ns, &e))
		die(&e, "hub checkpoint");
	const tt_ck_section *c = tt_ck_find(sec, ns, TT_CK_CORE);
	tt_ck_core h;
	const char *arr = NULL;
	if (!c || tt_ck_core_read(c, &h, &arr, &e))
		die(&e, "hub checkpoint core");
	tt_model_config mc = { .spec = spec, .h = 28, .w = 28, .c = 1, .classes = classes,
	                       .batch = 1, .trainable = 0, .seed = seed,
	                       .be = tt_backend_get("cpu") };
	tt_model *m = NULL;
	if (tt_model_create(&mc, &m, &e))
		die(&e, spec);
	size_t off = 0, n = 0;
	tt_model_stage_params(m, tt_model_stages(m) - 1, &off, &n);
	float *p = (float *)(b + (arr - b));
	memcpy(p + off, tt_model_params(m) + off, n * sizeof(float));
	float *o = p + h.nparams + h.nstate;
	memset(o, 0, (size_t)h.slots * h.ntrain * sizeof(float));
	tt_model_free(m);
	return b;
}

static int build(int argc, char **argv)
{
	if (argc != 10) {
		fprintf(stderr, "usage: fms_replay build DIR CONFIGS EPOCHS HUB_SEEDS HUB_TRAIN "
		                "TRAIN VAL THREADS\n");
		return 2;
	}
	const char *dir = argv[2];
	int ncfg = atoi(argv[3]), epochs = atoi(argv[4]), seeds = atoi(argv[5]);
	int hub_train = atoi(argv[6]), ntrain = atoi(argv[7]), nval = atoi(argv[8]);
	int threads = atoi(argv[9]);
	tt_err e = {0};
	mkdir(dir, 0777);
	tt_dataset all = {0}, task[2];
	memset(task, 0, sizeof task);
	if (tt_data_load_dir(TT_FASHION_DIR, 0, &all, &e) || tt_cl_split(&all, 2, task, &e))
		die(&e, "fashion-mnist");
	tt_data_free(&all);
	char path[1024];
	/* the hub */
	int nhub = 2 * seeds;
	tt_train_data hd;
	memset(&hd, 0, sizeof hd);
	if (tt_data_split(&task[0], hub_train, 1000, 7, &hd.train, &hd.val, &e))
		die(&e, "classes 0-4");
	for (int k = 0; k < nhub; k++) {
		snprintf(path, sizeof path, "%s/hub_%d.ckpt", dir, k);
		struct stat sb;
		if (stat(path, &sb) == 0)
			continue;
		tt_train_config c;
		tt_train_defaults(&c);
		c.model = ARCH[k % 2];
		c.epochs = 2;
		c.batch = 128;
		c.opt.lr = 0.05;
		c.opt.momentum = 0.9;
		c.seed = 100 + (uint64_t)(k / 2);
		c.threads = threads;
		saver sv = { .dir = dir, .cfg = -1 };
		tt_train_hooks hk = { .ud = &sv, .on_checkpoint = on_ck };
		tt_train_result r;
		if (tt_train_run(&c, &hd, &hk, &r, &e))
			die(&e, "hub");
		fprintf(stderr, "hub %d %s seed %llu: val acc %.4f (classes 0-4) %.1fs\n", k, c.model,
		        (unsigned long long)c.seed, r.val_acc, r.seconds);
		tt_train_result_free(&r);
		spit(path, sv.last, sv.last_len);
		free(sv.last);
	}
	tt_train_data_free(&hd);
	/* the configurations */
	static cfg cf[MAXC];
	ncfg = draw_configs(seeds, ncfg, cf);
	tt_train_data fd;
	memset(&fd, 0, sizeof fd);
	if (tt_data_split(&task[1], ntrain, nval, 8, &fd.train, &fd.val, &e))
		die(&e, "classes 5-9");
	snprintf(path, sizeof path, "%s/table.csv", dir);
	int done = 0;
	FILE *t = fopen(path, "r");
	if (t) {
		char line[512];
		int i, ep;
		while (fgets(line, sizeof line, t))
			if (sscanf(line, "%d,%*d,%*d,%*d,%*g,%*g,%*g,%*d,%d,", &i, &ep) == 2 &&
			    ep == epochs)
				done = i + 1;
		fclose(t);
	}
	t = fopen(path, done ? "a" : "w");
	if (!t)
		die(NULL, path);
	if (!done)
		fprintf(t, "config,hub,arch,seed,lr,momentum,wd,batch,epoch,acc\n");
	for (int i = done; i < ncfg; i++) {
		cfg *g = &cf[i];
		size_t hl = 0;
		snprintf(path, sizeof path, "%s/hub_%d.ckpt", dir, g->hub);
		void *hub = slurp(path, &hl);
		if (!hub)
			die(NULL, path);
		void *start = new_head(hub, hl, ARCH[g->arch], 1000 + (uint64_t)i, 5);
		free(hub);
		snprintf(path, sizeof path, "%s/c_%d_e0.ckpt", dir, i);
		spit(path, start, hl);
		tt_train_config c;
		tt_train_defaults(&c);
		c.model = ARCH[g->arch];
		c.epochs = epochs;
		c.batch = BATCH[g->batch];
		c.opt.lr = LR[g->lr];
		c.opt.momentum = MOM[g->mom];
		c.opt.weight_decay = WD[g->wd];
		c.opt.schedule = TT_SCHED_CONSTANT;
		c.seed = 1000 + (uint64_t)i;
		c.threads = threads;
		c.resume = start;
		c.resume_len = hl;
		c.resume_weights_only = 1;
		long spe = (ntrain + c.batch - 1) / c.batch;
		saver sv = { .dir = dir, .cfg = i, .spe = spe };
		tt_train_hooks hk = { .ud = &sv, .checkpoint_every = spe, .on_checkpoint = on_ck,
		                      .on_epoch = on_ep };
		tt_train_result r;
		double t0 = tt_clock_mono();
		int rc = tt_train_run(&c, &fd, &hk, &r, &e);
		if (rc && rc != TT_EDIVERGED)
			die(&e, "fine-tune");
		/* a diverged run keeps chance from where it stopped on, and its
		 * last checkpoint */
		for (int ep = 1; ep <= epochs; ep++) {
			double a = sv.acc[ep] > 0 && isfinite(sv.acc[ep]) ? sv.acc[ep] : 0.2;
			snprintf(path, sizeof path, "%s/c_%d_e%d.ckpt", dir, i, ep);
			struct stat sb;
			if (stat(path, &sb) != 0) {
				char prev[1024];
				snprintf(prev, sizeof prev, "%s/c_%d_e%d.ckpt", dir, i, ep - 1);
				size_t pl = 0;
				void *pb = slurp(prev, &pl);
				if (pb) {
					spit(path, pb, pl);
					free(pb);
				}
				a = 0.2;
			}
			fprintf(t, "%d,%d,%d,%d,%g,%g,%g,%d,%d,%.6f\n", i, g->hub, g->arch,
			        g->seed, LR[g->lr], MOM[g->mom], WD[g->wd], BATCH[g->batch], ep, a);
		}
		fflush(t);
		fprintf(stderr, "config %d/%d hub %d lr %g mom %g wd %g batch %d: final %.4f (%.1fs)%s\n",
		        i + 1, ncfg, g->hub, LR[g->lr], MOM[g->mom], WD[g->wd], BATCH[g->batch],
		        r.val_acc, tt_clock_mono() - t0, rc ? " diverged" : "");
		tt_train_result_free(&r);
		free(start);
	}
	fclose(t);
	tt_train_data_free(&fd);
	tt_data_free(&task[0]);
	tt_data_free(&task[1]);
	return 0;
}

/* ---- replay ---------------------------------------------------------------- */

typedef struct table {
	const char *dir;
	int n, E;
	cfg c[MAXC];
	double *acc;             /* n x (E+1), acc[i*(E+1)+e], e >= 1 */
	double *x;               /* n x D */
	int weights;
	tt_graph *g;             /* n x (E+1) */
	unsigned char *have;
	float **flat;
	size_t *nflat;
	int *perm;               /* the sampler's pool entry p is config perm[p] */
} table;

#define D 6

static int load_table(table *T, const char *dir)
{
	char path[1024], line[512];
	snprintf(path, sizeof path, "%s/table.csv", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		die(NULL, path);
	T->dir = dir;
	T->n = 0;
	T->E = 0;
	T->acc = calloc((size_t)MAXC * 65, sizeof(double));
	while (fgets(line, sizeof line, f)) {
		int i, hub, arch, seed, batch, ep;
		double lr, mom, wd, a;
		if (sscanf(line, "%d,%d,%d,%d,%lg,%lg,%lg,%d,%d,%lg", &i, &hub, &arch, &seed, &lr,
		           &mom, &wd, &batch, &ep, &a) != 10 || i >= MAXC || ep > 64)
			continue;
		cfg *c = &T->c[i];
		c->hub = hub;
		c->arch = arch != 0;
		c->seed = seed;
		c->lr = lr < 5e-3 ? 0 : lr < 5e-2 ? 1 : 2;
		c->mom = mom > 0;
		c->wd = wd > 0;
		c->batch = batch > 100;
		T->acc[(size_t)i * 65 + ep] = a;
		if (i + 1 > T->n)
			T->n = i + 1;
		if (ep > T->E)
			T->E = ep;
	}
	fclose(f);
	/* only configurations with every epoch */
	int n = 0;
	for (int i = 0; i < T->n; i++)
		if (T->acc[(size_t)i * 65 + T->E] > 0)
			n = i + 1;
		else
			break;
	T->n = n;
	double *a = calloc((size_t)n * (T->E + 1), sizeof(double));
	for (int i = 0; i < n; i++)
		for (int e = 0; e <= T->E; e++)
			a[(size_t)i * (T->E + 1) + e] = T->acc[(size_t)i * 65 + e];
	free(T->acc);
	T->acc = a;
	T->x = calloc((size_t)n * D, sizeof(double));
	for (int i = 0; i < n; i++) {
		double *x = T->x + (size_t)i * D;
		cfg *c = &T->c[i];
		x[0] = c->arch;
		x[1] = T->c[i].seed / 5.0;
		x[2] = c->lr / 2.0;
		x[3] = c->mom;
		x[4] = c->wd;
		x[5] = c->batch;
	}
	size_t m = (size_t)n * (T->E + 1);
	T->g = calloc(m, sizeof(tt_graph));
	T->have = calloc(m, 1);
	T->flat = calloc(m, sizeof(float *));
	T->nflat = calloc(m, sizeof(size_t));
	return n;
}

static int load_weights(table *T, int i, int e)
{
	size_t at = (size_t)i * (T->E + 1) + e;
	if (T->have[at])
		return T->have[at] == 1;
	char path[1024];
	snprintf(path, sizeof path, "%s/c_%d_e%d.ckpt", T->dir, i, e);
	size_t len = 0;
	void *b = slurp(path, &len);
	T->have[at] = 2;
	if (!b)
		return 0;
	tt_err err = {0};
	tt_wgm_shape sh = { .spec = ARCH[T->c[i].arch], .h = 28, .w = 28, .c = 1, .classes = 5,
	                    .trainable = 0 };
	if (T->weights == TT_SURR_GMN) {
		if (tt_wgm_from_ckpt(&sh, b, len, &T->g[at], &err) == TT_OK)
			T->have[at] = 1;
	} else {
		float *p = NULL;
		size_t np = 0, off = 0;
		if (tt_wgm_ckpt_params(b, len, &p, &np, NULL, &err) == TT_OK &&
		    tt_wgm_suffix(&sh, &off, &err) == TT_OK) {
			memmove(p, p + off, (np - off) * sizeof *p);
			T->flat[at] = p;
			T->nflat[at] = np - off;
			T->have[at] = 1;
		} else {
			free(p);
		}
	}
	if (T->have[at] != 1)
		fprintf(stderr, "fms_replay: %s: %s\n", path, err.msg);
	free(b);
	return T->have[at] == 1;
}

static const tt_graph *w_graph(void *ud, int p, int e)
{
	table *T = ud;
	int i = T->perm[p];
	return load_weights(T, i, e) ? &T->g[(size_t)i * (T->E + 1) + e] : NULL;
}

static const float *w_flat(void *ud, int p, int e, size_t *n)
{
	table *T = ud;
	int i = T->perm[p];
	if (!load_weights(T, i, e))
		return NULL;
	size_t at = (size_t)i * (T->E + 1) + e;
	*n = T->nflat[at];
	return T->flat[at];
}

static int replay(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: fms_replay replay DIR SAMPLER SEED BUDGET "
		                "[WIDTH BLOCKS INIT FIRST WARM]\n");
		return 2;
	}
	static table T;
	int n = load_table(&T, argv[2]);
	const char *sampler = argv[3];
	uint64_t seed = strtoull(argv[4], NULL, 10);
	int budget = atoi(argv[5]);
	int width = argc > 6 ? atoi(argv[6]) : 16, blocks = argc > 7 ? atoi(argv[7]) : 2;
	int init = argc > 8 ? atoi(argv[8]) : 20, first = argc > 9 ? atoi(argv[9]) : 1000;
	int warm = argc > 10 ? atoi(argv[10]) : 20;
	int E = T.E;
	if (n < 2) {
		fprintf(stderr, "fms_replay: %s: fewer than 2 configurations\n", argv[2]);
		return 1;
	}
	/* the pool's order: shuffled by the repeat's seed */
	int *perm = malloc(sizeof(int) * (size_t)n), *b = calloc((size_t)n, sizeof(int));
	for (int i = 0; i < n; i++)
		perm[i] = i;
	tt_rng r;
	tt_rng_seed(&r, seed, 3);
	tt_rng_shuffle(&r, perm, n);
	if (strcmp(sampler, "random") == 0) {
		int k = 0;
		for (int p = 0; p < n && k < budget; p++)
			for (int e = 1; e <= E && k < budget; e++, k++)
				printf("d %d %d %d %.6f 0 0\n", k + 1, perm[p], e,
				       T.acc[(size_t)perm[p] * (E + 1) + e]);
		return 0;
	}
	tt_fms_config c;
	tt_fms_defaults(&c, D, E);
	c.surr.weights = strcmp(sampler, "fms") == 0        ? TT_SURR_GMN
	                 : strcmp(sampler, "fms-flat") == 0 ? TT_SURR_FLAT
	                                                    : TT_SURR_NONE;
	if (strcmp(sampler, "fms") && strcmp(sampler, "fms-flat") && strcmp(sampler, "dyhpo")) {
		fprintf(stderr, "fms_replay: sampler '%s': expected fms, dyhpo, fms-flat or random\n",
		        sampler);
		return 2;
	}
	T.weights = c.surr.weights;
	c.surr.gmn.width = width;
	c.surr.gmn.blocks = blocks;
	c.surr.gmn.nf_node = TT_WG_NODE_F;
	c.surr.gmn.nf_edge = TT_WG_EDGE_F;
	c.surr.seed = seed;
	c.init = init;
	c.steps_first = first;
	c.steps_warm = warm;
	tt_err err = {0};
	tt_fms *f = NULL;
	if (tt_fms_new(&c, &f, &err))
		die(&err, "fms");
	/* the sampler sees the pool in perm's order: entry p is config perm[p] */
	tt_fms_conf *tc = calloc((size_t)n, sizeof *tc);
	double *curve = calloc((size_t)n * (E + 1), sizeof(double));
	double *xs = malloc(sizeof(double) * (size_t)n * D);
	for (int p = 0; p < n; p++)
		memcpy(xs + (size_t)p * D, T.x + (size_t)perm[p] * D, sizeof(double) * D);
	T.perm = perm;
	for (int k = 0; k < budget; k++) {
		for (int p = 0; p < n; p++) {
			tc[p].x = xs + (size_t)p * D;
			tc[p].budget = b[p];
			tc[p].curve = curve + (size_t)p * (E + 1);
		}
		/* the callbacks answer for pool entry p with configuration perm[p] */
		tt_fms_weights w = { .ud = &T,
		                     .graph = c.surr.weights == TT_SURR_GMN ? w_graph : NULL,
		                     .flat = c.surr.weights == TT_SURR_FLAT ? w_flat : NULL };
		tt_fms_choice ch;
		double t0 = tt_clock_mono(), c0 = cpu_now();
		if (tt_fms_decide(f, tc, n, &w, &ch, &err)) {
			if (err.code == TT_EINPUT)
				break;
			die(&err, "decide");
		}
		double dt = tt_clock_mono() - t0, dc = cpu_now() - c0;
		int p = ch.index, e = ch.budget, i = perm[p];
		double a = T.acc[(size_t)i * (E + 1) + e];
		curve[(size_t)p * (E + 1) + e - 1] = a;
		b[p] = e;
		printf("d %d %d %d %.6f %.4f %.4f\n", k + 1, i, e, a, dt, dc);
		if ((k + 1) % 10 == 0 || k + 1 == budget)
			for (int q = 0; q < ch.ncand; q++)
				if (ch.final_mu)
					printf("f %d %d %.6f\n", k + 1, perm[ch.cand_index[q]], ch.final_mu[q]);
		fflush(stdout);
	}
	tt_fms_free(f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "build") == 0)
		return build(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "replay") == 0)
		return replay(argc, argv);
	fprintf(stderr, "usage: fms_replay build|replay ...\n");
	return 2;
}
