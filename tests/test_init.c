/*
 * test_init.c — starting from a saved checkpoint (train.h: init,
 * tt_train_init_model): a checkpoint of a trained cnn loaded into a fresh
 * model of the same classes gives its parameters and batch-norm statistics
 * bit for bit; into one of other classes, every stage but the head, the
 * head staying the fresh model's (a new head); a run started with init
 * begins from those weights; what is no checkpoint of the model is
 * refused with the file named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "model.h"
#include "test.h"
#include "train.h"

#define SPEC "cnn:4,8"

typedef struct keep {
	void *blob;
	size_t len;
} keep;

static int on_ck(void *ud, long step, const void *blob, size_t len)
{
	keep *k = ud;
	(void)step;
	free(k->blob);
	k->blob = malloc(len);
	memcpy(k->blob, blob, len);
	k->len = len;
	return 0;
}

static char path[64];

/* A trained checkpoint of SPEC on 10 synthetic classes, in a file. */
static keep saved(void)
{
	tt_train_config c;
	tt_train_defaults(&c);
	c.model = SPEC;
	c.data = "synthetic";
	c.train_size = 128;
	c.val_size = 32;
	c.batch = 32;
	c.steps = 6;
	c.threads = 1;
	c.seed = 3;
	tt_train_data d;
	tt_err err = {0};
	keep k = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "%s", err.msg);
	tt_train_hooks h = { .ud = &k, .on_checkpoint = on_ck };
	tt_train_result r;
	CHECK(tt_train_run(&c, &d, &h, &r, &err) == TT_OK, "%s", err.msg);
	tt_train_result_free(&r);
	tt_train_data_free(&d);
	snprintf(path, sizeof path, "/tmp/tt_init_%d.ckpt", (int)getpid());
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(k.blob, 1, k.len, f) == k.len && fclose(f) == 0, "write %s", path);
	return k;
}

static const float *core_arrays(const keep *k, tt_ck_core *h)
{
	tt_ck_section s[TT_CK_SECTIONS_MAX];
	int ns;
	tt_err err = {0};
	const char *a = NULL;
	if (tt_ck_parse(k->blob, k->len, s, TT_CK_SECTIONS_MAX, &ns, &err) ||
	    tt_ck_core_read(tt_ck_find(s, ns, TT_CK_CORE), h, &a, &err))
		return NULL;
	return (const float *)a;
}

static tt_model *fresh(int classes, uint64_t seed)
{
	tt_model_config mc = { .spec = SPEC, .h = 28, .w = 28, .c = 1, .classes = classes,
	                       .batch = 1, .seed = seed, .be = tt_backend_get("cpu") };
	tt_model *m = NULL;
	tt_err err = {0};
	CHECK(tt_model_create(&mc, &m, &err) == TT_OK, "%s", err.msg);
	return m;
}

static void same_classes_loads_everything(void)
{
	keep k = saved();
	tt_ck_core h;
	const float *p = core_arrays(&k, &h);
	CHECK(p, "core section");
	tt_model *m = fresh(10, 9);
	tt_err err = {0};
	int nh = -1;
	CHECK(tt_train_init_model(m, SPEC, path, &nh, &err) == TT_OK, "%s", err.msg);
	CHECK(nh == 0, "new head %d, expected 0", nh);
	CHECK(h.nparams == tt_model_nparams(m), "sizes");
	CHECK(memcmp(tt_model_params(m), p, h.nparams * sizeof(float)) == 0,
	      "parameters differ from the checkpoint's");
	CHECK(memcmp(tt_model_state(m), p + h.nparams, h.nstate * sizeof(float)) == 0,
	      "batch-norm statistics differ from the checkpoint's");
	tt_model_free(m);
	free(k.blob);
	unlink(path);
}

static void other_classes_gets_a_new_head(void)
{
	keep k = saved();
	tt_ck_core h;
	const float *p = core_arrays(&k, &h);
	CHECK(p, "core section");
	tt_model *m = fresh(5, 9), *m0 = fresh(5, 9);
	tt_err err = {0};
	int nh = -1;
	CHECK(tt_train_init_model(m, SPEC, path, &nh, &err) == TT_OK, "%s", err.msg);
	CHECK(nh == 1, "new head %d, expected 1", nh);
	size_t off = 0, cnt = 0;
	tt_model_stage_params(m, tt_model_stages(m) - 1, &off, &cnt);
	CHECK(off + cnt == tt_model_nparams(m) && off < h.nparams, "layout");
	CHECK(memcmp(tt_model_params(m), p, off * sizeof(float)) == 0,
	      "the stages before the head differ from the checkpoint's");
	CHECK(memcmp(tt_model_params(m) + off, tt_model_params(m0) + off, cnt * sizeof(float)) == 0,
	      "the head is not the fresh model's");
	CHECK(memcmp(tt_model_params(m) + off, p + off, 5 * sizeof(float)) != 0,
	      "the head was taken from the checkpoint");
	tt_model_free(m);
	tt_model_free(m0);
	free(k.blob);
	unlink(path);
}

/* A one-step run with a learning rate of nearly 0 from init: the
 * checkpoint's weights in its own checkpoint (the step moves them by
 * 1e-12 at most), unlike a run from the seed. */
static void a_run_starts_from_init(void)
{
	keep k = saved();
	tt_ck_core h;
	const float *p = core_arrays(&k, &h);
	tt_train_config c;
	tt_train_defaults(&c);
	c.model = SPEC;
	c.data = "synthetic";
	c.train_size = 64;
	c.val_size = 32;
	c.batch = 32;
	c.steps = 1;
	c.threads = 1;
	c.seed = 11;
	c.opt.lr = 1e-12f;
	c.opt.momentum = 0;
	c.opt.weight_decay = 0;
	c.init = path;
	tt_train_data d;
	tt_err err = {0};
	keep k2 = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "%s", err.msg);
	tt_train_hooks hk = { .ud = &k2, .on_checkpoint = on_ck };
	tt_train_result r;
	CHECK(tt_train_run(&c, &d, &hk, &r, &err) == TT_OK, "%s", err.msg);
	tt_train_result_free(&r);
	tt_ck_core h2;
	const float *p2 = core_arrays(&k2, &h2);
	CHECK(p && p2 && h2.nparams == h.nparams, "checkpoints");
	double worst = 0;
	for (size_t i = 0; p && p2 && i < h.nparams; i++) {
		double dv = p2[i] - p[i];
		if (dv < 0)
			dv = -dv;
		if (dv > worst)
			worst = dv;
	}
	CHECK(worst < 1e-6, "a parameter moved %g from the init checkpoint's", worst);
	/* without init the same run starts elsewhere */
	c.init = NULL;
	keep k3 = {0};
	hk.ud = &k3;
	CHECK(tt_train_run(&c, &d, &hk, &r, &err) == TT_OK, "%s", err.msg);
	tt_train_result_free(&r);
	tt_ck_core h3;
	const float *p3 = core_arrays(&k3, &h3);
	CHECK(p3 && p && memcmp(p3, p, h.nparams * sizeof(float)) != 0,
	      "a run from the seed has the init checkpoint's weights");
	tt_train_data_free(&d);
	free(k.blob);
	free(k2.blob);
	free(k3.blob);
	unlink(path);
}

static void refuses_what_is_no_checkpoint_of_the_model(void)
{
	tt_model *m = fresh(10, 9);
	tt_err err = {0};
	CHECK(tt_train_init_model(m, SPEC, "/nonexistent/x.ckpt", NULL, &err) == TT_EINPUT &&
	      strstr(err.msg, "/nonexistent/x.ckpt"), "missing file: %s", err.msg);
	snprintf(path, sizeof path, "/tmp/tt_init_%d.junk", (int)getpid());
	FILE *f = fopen(path, "wb");
	fputs("not a checkpoint at all", f);
	fclose(f);
	memset(&err, 0, sizeof err);
	CHECK(tt_train_init_model(m, SPEC, path, NULL, &err) == TT_EINPUT && strstr(err.msg, path),
	      "junk: %s", err.msg);
	unlink(path);
	keep k = saved();
	memset(&err, 0, sizeof err);
	CHECK(tt_train_init_check("cnn:4,16", path, &err) == TT_EINPUT &&
	      strstr(err.msg, path) && strstr(err.msg, "cnn:4,8") && strstr(err.msg, "cnn:4,16"),
	      "another model: %s", err.msg);
	tt_train_config c;
	tt_train_defaults(&c);
	c.model = "cnn:4,16";
	c.init = path;
	memset(&err, 0, sizeof err);
	CHECK(tt_train_check(&c, NULL, &err) == TT_EINPUT && strstr(err.msg, "--init"),
	      "tt_train_check: %s", err.msg);
	tt_model_free(m);
	free(k.blob);
	unlink(path);
}

int main(void)
{
	TT_RUN(same_classes_loads_everything);
	TT_RUN(other_classes_gets_a_new_head);
	TT_RUN(a_run_starts_from_init);
	TT_RUN(refuses_what_is_no_checkpoint_of_the_model);
	TT_EXIT();
}
