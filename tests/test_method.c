/*
 * test_method.c — the training-method table (engine/method.h).
 *
 * A method that exists only here, registered with tt_method_register,
 * records every hook call; a short run, a resumed run and the result
 * must call them in the order method.h promises.  Its checkpoint section
 * comes back on resume; a blob with a section no method knows still
 * loads; a method may replace the step (one that does the plain step
 * gives the plain run's numbers); two such methods are refused.  Adding
 * a method took this file and one call, nothing in the loop.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "method.h"
#include "test.h"
#include "train.h"

/* ---- the recording method ------------------------------------------------ */

static int rec_on;             /* whether runs use it */
static char trace[16384];       /* the calls, one a line */

static void note(const char *fmt, ...)
{
	size_t n = strlen(trace);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(trace + n, sizeof trace - n, fmt, ap);
	va_end(ap);
	n = strlen(trace);
	if (n + 1 < sizeof trace) {
		trace[n] = '\n';
		trace[n + 1] = 0;
	}
}

typedef struct rec_state {
	int64_t after_steps;     /* after_step calls, kept across a resume */
	int64_t got;             /* what its section said, -1: no section */
} rec_state;

static int rec_wants(const tt_train_config *c)
{
	(void)c;
	return rec_on;
}

static void rec_model_config(const tt_train_config *c, tt_model_config *mc)
{
	(void)c, (void)mc;
	note("model_config");
}

static int rec_setup(const tt_method_run *run, void **state, tt_err *err)
{
	(void)err;
	rec_state *s = calloc(1, sizeof *s);
	*state = s;
	s->got = -1;
	note("setup total %ld spe %ld", run->total, run->spe);
	return s ? TT_OK : TT_ERUNTIME;
}

static void rec_free(void *state)
{
	note("free");
	free(state);
}

static int rec_before_step(void *state, const tt_method_run *run, tt_err *err)
{
	(void)state, (void)err;
	note("before_step %ld", run->step);
	return TT_OK;
}

static void rec_after_backward(void *state, const tt_method_run *run)
{
	(void)state;
	note("after_backward %ld", run->step);
}

static void rec_after_step(void *state, const tt_method_run *run)
{
	rec_state *s = state;
	s->after_steps++;
	note("after_step %ld", run->step);
}

static int rec_epoch_end(void *state, const tt_method_run *run, tt_err *err)
{
	(void)state, (void)err;
	note("epoch_end %ld epoch %d", run->step, run->epoch);
	return TT_OK;
}

static size_t rec_ck_size(void *state, const tt_method_run *run)
{
	(void)state;
	note("ck_size %ld", run->step);
	return sizeof(int64_t);
}

static void rec_ck_write(void *state, const tt_method_run *run, char *p)
{
	rec_state *s = state;
	note("ck_write %ld", run->step);
	memcpy(p, &s->after_steps, sizeof s->after_steps);
}

static int rec_ck_read(void *state, const tt_method_run *run, const char *p, size_t len,
                       int weights_only, tt_err *err)
{
	rec_state *s = state;
	(void)run;
	if (p && len != sizeof(int64_t))
		return tt_err_set(err, TT_EINPUT, "recorder section of %zu bytes", len);
	if (p) {
		memcpy(&s->got, p, sizeof s->got);
		s->after_steps = s->got;
	}
	note("ck_read %s %lld weights_only %d", p ? "section" : "none", (long long)s->got,
	     weights_only);
	return TT_OK;
}

static void rec_result(void *state, const tt_method_run *run, tt_train_result *r)
{
	rec_state *s = state;
	(void)r;
	note("result %ld after_steps %lld", run->step, (long long)s->after_steps);
}

static void rec_json(const tt_train_result *r, FILE *f)
{
	fprintf(f, "{\"steps\":%ld}", r->steps);
}

static int rec_values(const tt_train_result *r, tt_method_value *v, int max)
{
	if (max < 1)
		return 0;
	v[0] = (tt_method_value){ "recorded_steps", (double)r->steps };
	return 1;
}

static int rec_report(void *state, const tt_method_run *run, int final,
                      tt_method_report *rep)
{
	static const tt_method_value val = { "answer", 42 };
	(void)state;
	note("report %ld final %d", run->step, final);
	rep->nvalues = 1;
	rep->values = &val;
	return 1;
}

static const tt_method method_recorder = {
	.name = "recorder",
	.tag = TT_CK_TAG('R', 'E', 'C', 'D'),
	.wants = rec_wants,
	.model_config = rec_model_config,
	.setup = rec_setup,
	.free = rec_free,
	.before_step = rec_before_step,
	.after_backward = rec_after_backward,
	.after_step = rec_after_step,
	.epoch_end = rec_epoch_end,
	.ck_size = rec_ck_size,
	.ck_write = rec_ck_write,
	.ck_read = rec_ck_read,
	.result = rec_result,
	.json = rec_json,
	.values = rec_values,
	.report = rec_report,
};

/* ---- a method that replaces the step with the plain one ------------------ */

static int plain_on;

static int plain_wants(const tt_train_config *c)
{
	(void)c;
	return plain_on;
}

static int plain_step(void *state, tt_method_run *run, tt_err *err)
{
	tt_model *m = run->m;
	(void)state, (void)err;
	note("step %ld", run->step);
	tt_model_forward(m, tt_model_input(m), run->batch, 1);
	run->loss = tt_model_loss(m, tt_model_labels(m), run->batch, run->c->label_smoothing, 1,
	                          &run->right);
	if (!isfinite(run->loss))
		return TT_OK;
	tt_model_backward(m);
	tt_optim_step(m, run->opt, run->step);
	return TT_OK;
}

static int plain2_on;

static int plain2_wants(const tt_train_config *c)
{
	(void)c;
	return plain2_on;
}

static const tt_method method_plain = { .name = "plain", .wants = plain_wants,
                                        .step = plain_step };
static const tt_method method_plain2 = { .name = "plain2", .wants = plain2_wants,
                                         .step = plain_step };

/* ---- the runs -------------------------------------------------------------- */

typedef struct grab {
	long at;
	void *blob;
	size_t len;
	int reports, finals;
	double value;
} grab;

static int keep(void *ud, long step, const void *blob, size_t len)
{
	grab *g = ud;
	note("on_checkpoint %ld", step);
	if (step == g->at) {
		free(g->blob);
		g->blob = malloc(len);
		memcpy(g->blob, blob, len);
		g->len = len;
	}
	return 0;
}

static void on_report(void *ud, const tt_method_report *rep)
{
	grab *g = ud;
	if (strcmp(rep->method, "recorder") != 0)
		return;
	g->reports++;
	g->finals += rep->final;
	if (rep->nvalues == 1)
		g->value = rep->values[0].value;
}

static void config(tt_train_config *c)
{
	tt_train_defaults(c);
	c->model = "mlp:16";
	c->data = "synthetic";
	c->train_size = 64;    /* 2 steps an epoch at batch 32 */
	c->val_size = 32;
	c->batch = 32;
	c->steps = 4;
	c->threads = 1;
	c->seed = 9;
}

static const char *const fresh_order =
	"model_config\n"
	"setup total 4 spe 2\n"
	"before_step 0\nafter_backward 0\nafter_step 1\n"
	"before_step 1\nafter_backward 1\nafter_step 2\nreport 2 final 0\n"
	"epoch_end 2 epoch 1\n"
	"before_step 2\nafter_backward 2\nafter_step 3\n"
	"ck_size 3\nck_write 3\non_checkpoint 3\n"
	"before_step 3\nafter_backward 3\nafter_step 4\n"
	"epoch_end 4 epoch 2\n"
	"ck_size 4\nck_write 4\non_checkpoint 4\n"
	"result 4 after_steps 4\nreport 4 final 1\nfree\n";

static const char *const resumed_order =
	"model_config\n"
	"setup total 4 spe 2\n"
	"ck_read section 3 weights_only 0\n"
	"before_step 3\nafter_backward 3\nafter_step 4\n"
	"epoch_end 4 epoch 2\n"
	"ck_size 4\nck_write 4\non_checkpoint 4\n"
	"result 4 after_steps 4\nreport 4 final 1\nfree\n";

static void method_hook_order(void)
{
	tt_train_config c;
	config(&c);
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
	rec_on = 1;
	grab g = { .at = 3 };
	tt_train_hooks h = { .ud = &g, .checkpoint_every = 3, .on_checkpoint = keep,
	                     .report_every = 2, .on_report = on_report };
	tt_train_result r;
	trace[0] = 0;
	CHECK(tt_train_run(&c, &d, &h, &r, &err) == TT_OK, "run: %s", err.msg);
	CHECK(strcmp(trace, fresh_order) == 0, "the calls were\n%s\nexpected\n%s", trace,
	      fresh_order);
	CHECK(g.reports == 2 && g.finals == 1 && g.value == 42, "%d reports, %d final, "
	      "value %g", g.reports, g.finals, g.value);
	double v = 0;
	CHECK(tt_method_result_value(&r, "recorded_steps", &v) && v == 4,
	      "result value %g", v);
	CHECK(!tt_method_result_value(&r, "macs_kept", &v), "an ungated run reports "
	      "macs_kept");
	char *js = NULL;
	size_t jl = 0;
	FILE *f = open_memstream(&js, &jl);
	tt_train_result_json(&r, f);
	fclose(f);
	CHECK(strstr(js, "]},\"recorder\":{\"steps\":4}}\n") != NULL, "JSON %s", js);
	free(js);
	tt_train_result_free(&r);

	/* resumed from step 3: the section comes back first */
	CHECK(g.blob != NULL, "no checkpoint at step 3");
	c.resume = g.blob;
	c.resume_len = g.len;
	grab g2 = { .at = -1 };
	h.ud = &g2;
	trace[0] = 0;
	CHECK(tt_train_run(&c, &d, &h, &r, &err) == TT_OK, "resumed: %s", err.msg);
	CHECK(strcmp(trace, resumed_order) == 0, "resumed, the calls were\n%s\nexpected\n%s",
	      trace, resumed_order);
	tt_train_result_free(&r);

	/* a run without the method skips its section (it does not shape the
	 * model), and calls nothing of it */
	rec_on = 0;
	trace[0] = 0;
	CHECK(tt_train_run(&c, &d, NULL, &r, &err) == TT_OK, "without the method: %s",
	      err.msg);
	CHECK(trace[0] == 0, "a method not used was called:\n%s", trace);
	CHECK(r.methods == 0, "methods %#x", r.methods);
	tt_train_result_free(&r);
	free(g.blob);
	tt_train_data_free(&d);
}

/* A section no method knows, before and after the others: skipped. */
static void method_unknown_section(void)
{
	tt_train_config c;
	config(&c);
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
	rec_on = 0;
	grab g = { .at = 2 };
	tt_train_hooks h = { .ud = &g, .checkpoint_every = 2, .on_checkpoint = keep };
	tt_train_result ra, rb;
	CHECK(tt_train_run(&c, &d, &h, &ra, &err) == TT_OK, "run: %s", err.msg);
	CHECK(g.blob != NULL, "no checkpoint at step 2");
	/* the blob's sections, with an unknown one first and one last */
	const char junk[5] = "junk";
	size_t len = g.len + 2 * (TT_CK_SECTION + sizeof junk);
	char *b = malloc(len);
	char *p = tt_ck_begin(b);
	p = tt_ck_put(p, TT_CK_TAG('Z', 'Z', 'Z', 'Z'), sizeof junk);
	memcpy(p, junk, sizeof junk);
	p += sizeof junk;
	memcpy(p, (char *)g.blob + TT_CK_HEADER, g.len - TT_CK_HEADER);
	p += g.len - TT_CK_HEADER;
	p = tt_ck_put(p, TT_CK_TAG('Y', 'Y', 'Y', 'Y'), sizeof junk);
	memcpy(p, junk, sizeof junk);
	c.resume = b;
	c.resume_len = len;
	CHECK(tt_train_run(&c, &d, NULL, &rb, &err) == TT_OK, "with unknown sections: %s",
	      err.msg);
	CHECK(rb.val_loss == ra.val_loss && rb.steps == ra.steps,
	      "resumed: val_loss %.9g steps %ld, uninterrupted %.9g %ld", rb.val_loss,
	      rb.steps, ra.val_loss, ra.steps);
	tt_train_result_free(&ra);
	tt_train_result_free(&rb);
	/* a section that runs past the end */
	c.resume_len = len - 1;
	CHECK(tt_train_run(&c, &d, NULL, &rb, &err) == TT_EINPUT &&
	      strstr(err.msg, "'YYYY'"), "truncated: %s", err.msg);
	free(b);
	free(g.blob);
	tt_train_data_free(&d);
}

/* The step replaced by the plain step is the plain run. */
static void method_replaces_step(void)
{
	tt_train_config c;
	config(&c);
	c.steps = 6;
	tt_train_data d;
	tt_err err = {0};
	CHECK(tt_train_data_load(&c, &d, &err) == TT_OK, "load: %s", err.msg);
	rec_on = 0;
	tt_train_result ra, rb;
	plain_on = plain2_on = 0;
	CHECK(tt_train_run(&c, &d, NULL, &ra, &err) == TT_OK, "plain: %s", err.msg);
	plain_on = 1;
	trace[0] = 0;
	CHECK(tt_train_run(&c, &d, NULL, &rb, &err) == TT_OK, "replaced: %s", err.msg);
	CHECK(strcmp(trace, "step 0\nstep 1\nstep 2\nstep 3\nstep 4\nstep 5\n") == 0,
	      "the replacing step ran\n%s", trace);
	CHECK(rb.val_loss == ra.val_loss && rb.train_loss == ra.train_loss &&
	      rb.steps == ra.steps, "replaced: val_loss %.9g train_loss %.9g, plain %.9g %.9g",
	      rb.val_loss, rb.train_loss, ra.val_loss, ra.train_loss);
	tt_train_result_free(&rb);
	/* two methods that replace the step: refused before anything runs */
	plain2_on = 1;
	trace[0] = 0;
	CHECK(tt_train_run(&c, &d, NULL, &rb, &err) == TT_EINPUT &&
	      strstr(err.msg, "both replace"), "two replacements: %s", err.msg);
	CHECK(trace[0] == 0, "a step ran:\n%s", trace);
	plain_on = plain2_on = 0;
	tt_train_result_free(&ra);
	tt_train_data_free(&d);
}

int main(void)
{
	tt_err err = {0};
	if (tt_method_register(&method_recorder, &err) ||
	    tt_method_register(&method_plain, &err) ||
	    tt_method_register(&method_plain2, &err)) {
		fprintf(stderr, "register: %s\n", err.msg);
		printf("FAIL register\n");
		return 1;
	}
	CHECK(tt_method_register(&method_recorder, &err) == TT_EINPUT,
	      "registered twice: %s", err.msg);
	TT_RUN(method_hook_order);
	TT_RUN(method_unknown_section);
	TT_RUN(method_replaces_step);
	TT_EXIT();
}
