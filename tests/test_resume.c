/*
 * test_resume.c — checkpoints: a run resumed from a checkpoint ends exactly
 * where the uninterrupted run ends; bad blobs are refused; a weights-only
 * resume at a greater trainable depth starts from the saved weights.
 */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "train.h"

typedef struct grab {
	long at;          /* keep the blob of this step (0: none) */
	void *mid;
	size_t mid_len;
	void *last;       /* the blob of the last call */
	size_t last_len;
	int calls;
} grab;

static int keep(void *ud, long step, const void *blob, size_t len)
{
	grab *g = ud;
	g->calls++;
	if (step == g->at) {
		free(g->mid);
		g->mid = malloc(len);
		memcpy(g->mid, blob, len);
		g->mid_len = len;
	}
	free(g->last);
	g->last = malloc(len);
	memcpy(g->last, blob, len);
	g->last_len = len;
	return 0;
}

static void config(tt_train_config *c, const char *model, int augment)
{
	tt_train_defaults(c);
	c->model = model;
	c->data = "synthetic";
	c->train_size = 200;  /* 4 steps per epoch at batch 64, a partial last */
	c->val_size = 40;
	c->batch = 64;
	c->steps = 14;
	c->augment = augment;
	c->threads = 2;
	c->seed = 5;
}

/* Header bytes up to the timing field differ only in t_train: compare the
 * payload after the header, and the step. */
static int same_state(const void *a, size_t la, const void *b, size_t lb,
                      size_t header)
{
	return la == lb && la > header &&
	       memcmp((const char *)a + header, (const char *)b + header, la - header) == 0;
}

#define HEADER_GUESS 128 /* past the timing field (t_train), before the rng states */

static void resume_exact(const char *model, int augment, const char *optimizer)
{
	tt_train_config c;
	config(&c, model, augment);
	if (strcmp(optimizer, "adamw") == 0) {
		c.opt.kind = TT_OPT_ADAMW;
		c.opt.lr = 1e-3f;
	}
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);

	/* the uninterrupted run, keeping the blob of step 6 (mid-epoch) */
	grab a = { .at = 6 };
	tt_train_hooks h = { .ud = &a, .checkpoint_every = 3, .on_checkpoint = keep };
	tt_train_result ra, rb;
	CHECK(tt_train_run(&c, &d, &h, &ra, &err) == TT_OK, "run: %s", err.msg);
	CHECK(a.calls == 14 / 3 + 1, "%d checkpoints, expected %d", a.calls, 14 / 3 + 1);
	CHECK(a.mid != NULL, "no checkpoint at step 6");

	/* the same run resumed from step 6 */
	grab b = { .at = -1 };
	tt_train_hooks hb = { .ud = &b, .on_checkpoint = keep };
	c.resume = a.mid;
	c.resume_len = a.mid_len;
	CHECK(tt_train_run(&c, &d, &hb, &rb, &err) == TT_OK, "resumed run: %s", err.msg);
	CHECK(b.calls == 1, "resumed run: %d checkpoints, expected 1 (the end)", b.calls);
	CHECK(rb.steps == ra.steps, "steps %ld vs %ld", rb.steps, ra.steps);
	CHECK(rb.val_loss == ra.val_loss, "%s %s: val_loss %.9g resumed vs %.9g", model,
	      optimizer, rb.val_loss, ra.val_loss);
	CHECK(rb.train_loss == ra.train_loss, "train_loss %.9g resumed vs %.9g",
	      rb.train_loss, ra.train_loss);
	CHECK(same_state(a.last, a.last_len, b.last, b.last_len, HEADER_GUESS),
	      "%s %s aug %d: the final state differs after resuming", model, optimizer,
	      augment);
	tt_train_result_free(&ra);
	tt_train_result_free(&rb);
	free(a.mid);
	free(a.last);
	free(b.last);
	tt_train_data_free(&d);
}

static void resume_mlp_sgd(void) { resume_exact("mlp:32,16", 0, "sgd"); }
static void resume_resnet_adamw_augment(void) { resume_exact("resnet:1,1:w4", 1, "adamw"); }
static void resume_cnn_sgd(void) { resume_exact("cnn:4,8", 1, "sgd"); }

/* A run resumed from its own final checkpoint (the process died after
 * training, before its result was stored) must report the same result. */
static void resume_at_end(void)
{
	tt_train_config c;
	config(&c, "cnn:4,8", 0);
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
	grab a = { .at = -1 };
	tt_train_hooks h = { .ud = &a, .on_checkpoint = keep };
	tt_train_result ra, rb;
	CHECK(tt_train_run(&c, &d, &h, &ra, &err) == TT_OK, "run: %s", err.msg);
	c.resume = a.last;
	c.resume_len = a.last_len;
	CHECK(tt_train_run(&c, &d, NULL, &rb, &err) == TT_OK, "resumed: %s", err.msg);
	CHECK(rb.val_acc == ra.val_acc && rb.val_loss == ra.val_loss && rb.steps == ra.steps,
	      "resumed at the end: val_acc %g loss %g steps %ld, expected %g %g %ld",
	      rb.val_acc, rb.val_loss, rb.steps, ra.val_acc, ra.val_loss, ra.steps);
	tt_train_result_free(&ra);
	tt_train_result_free(&rb);
	free(a.last);
	tt_train_data_free(&d);
}

static void resume_bad_blobs(void)
{
	tt_train_config c;
	config(&c, "mlp:32,16", 0);
	c.steps = 2;
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
	grab a = { .at = -1 };
	tt_train_hooks h = { .ud = &a, .on_checkpoint = keep };
	tt_train_result r;
	CHECK(tt_train_run(&c, &d, &h, &r, &err) == TT_OK, "run: %s", err.msg);
	tt_train_result_free(&r);

	struct { const char *what; size_t len; int flip; const char *model; const char *word; } bad[] = {
		{ "truncated header", 10, -1, "mlp:32,16", "too short" },
		{ "truncated payload", a.last_len - 4, -1, "mlp:32,16", "does not fit" },
		{ "bad magic", a.last_len, 0, "mlp:32,16", "magic" },
		{ "another model", a.last_len, -1, "mlp:32,32", "does not fit" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *copy = malloc(a.last_len);
		memcpy(copy, a.last, a.last_len);
		if (bad[i].flip >= 0)
			copy[bad[i].flip] ^= 0x55;
		c.model = bad[i].model;
		c.resume = copy;
		c.resume_len = bad[i].len;
		memset(&err, 0, sizeof err);
		int rc = tt_train_run(&c, &d, NULL, &r, &err);
		CHECK(rc == TT_EINPUT, "%s: status %d (%s), expected TT_EINPUT", bad[i].what,
		      rc, err.msg);
		CHECK(strstr(err.msg, bad[i].word) != NULL, "%s: message '%s' lacks '%s'",
		      bad[i].what, err.msg, bad[i].word);
		free(copy);
	}
	free(a.last);
	tt_train_data_free(&d);
}

/* Continue a rung at a greater depth: the weights come from the blob. */
static void resume_weights_deeper(void)
{
	tt_train_config c;
	config(&c, "mlp:32,16", 0);
	c.trainable = 1;
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
	grab a = { .at = -1 };
	tt_train_hooks h = { .ud = &a, .on_checkpoint = keep };
	tt_train_result r;
	CHECK(tt_train_run(&c, &d, &h, &r, &err) == TT_OK, "run: %s", err.msg);
	tt_train_result_free(&r);

	/* one step at learning rate 0 and no decay changes nothing but the
	 * batch-norm-free mlp's momentum: the weights must be the blob's */
	grab b = { .at = -1 };
	tt_train_hooks hb = { .ud = &b, .on_checkpoint = keep };
	c.trainable = 2;
	c.steps = 1;
	c.opt.lr = 0;
	c.opt.weight_decay = 0;
	c.resume = a.last;
	c.resume_len = a.last_len;
	c.resume_weights_only = 1;
	CHECK(tt_train_run(&c, &d, &hb, &r, &err) == TT_OK, "deeper run: %s", err.msg);
	CHECK(r.trainable == 2, "trainable %d", r.trainable);
	tt_train_result_free(&r);
	/* params sit right after the header in both blobs; compare them */
	size_t np = (size_t)(32 * 784 + 32 + 16 * 32 + 16 + 10 * 16 + 10);
	CHECK(b.last_len > np * 4 && a.last_len > np * 4, "blob sizes %zu %zu",
	      a.last_len, b.last_len);
	size_t ha = a.last_len - np * 4 - 1 * (10 * 16 + 10) * 4 - 200 * 4;
	size_t hb_ = b.last_len - np * 4 - 1 * (16 * 32 + 16 + 10 * 16 + 10) * 4 - 200 * 4;
	CHECK(ha == hb_, "header sizes differ: %zu vs %zu", ha, hb_);
	CHECK(memcmp((char *)a.last + ha, (char *)b.last + hb_, np * 4) == 0,
	      "weights after a weights-only resume at lr 0 differ from the blob's");
	free(a.last);
	free(b.last);
	tt_train_data_free(&d);
}

int main(void)
{
	TT_RUN(resume_mlp_sgd);
	TT_RUN(resume_resnet_adamw_augment);
	TT_RUN(resume_cnn_sgd);
	TT_RUN(resume_at_end);
	TT_RUN(resume_bad_blobs);
	TT_RUN(resume_weights_deeper);
	TT_EXIT();
}
