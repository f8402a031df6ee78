/*
 * small_model.h — the small model and fixed batch that the model-level
 * tests (test_weights, test_fastpath) build on.  The including file
 * defines H (image side), CLASSES, BATCH and SEED first, includes
 * backend.h, model.h, rng.h and test.h, and sets be before calling.
 */
#ifndef TT_SMALL_MODEL_H
#define TT_SMALL_MODEL_H

static const tt_backend *be;

/* spec on H x H x 1 images, one optimizer slot; NULL (and a failed
 * check) when it cannot be built. */
static tt_model *model(const char *spec, int trainable, int gates)
{
	tt_model_config cfg = { .spec = spec, .h = H, .w = H, .c = 1, .classes = CLASSES,
	                        .batch = BATCH, .trainable = trainable, .optim_slots = 1,
	                        .seed = SEED, .be = be, .gates = gates };
	tt_model *m = NULL;
	tt_err err = { 0 };
	int rc = tt_model_create(&cfg, &m, &err);
	CHECK(rc == TT_OK, "%s: %s", spec, err.msg);
	return rc == TT_OK ? m : NULL;
}

/* A fixed random batch in the model's own input and label buffers. */
static void batch(tt_model *m)
{
	float x[BATCH * H * H];
	int y[BATCH];
	tt_rng r;
	tt_rng_seed(&r, SEED, TT_STREAM_SYNTH);
	for (size_t i = 0; i < sizeof x / sizeof *x; i++)
		x[i] = tt_rng_normal(&r);
	for (int i = 0; i < BATCH; i++)
		y[i] = (int)tt_rng_below(&r, CLASSES);
	be->upload(tt_model_input(m), x, sizeof x);
	be->upload(tt_model_labels(m), y, sizeof y);
}

/* n device floats to a new host array */
static float *host(const float *d, size_t n)
{
	float *h = malloc((n ? n : 1) * sizeof *h);
	TT_ASSERT(h);
	be->download(h, d, n * sizeof *h);
	return h;
}

#endif
