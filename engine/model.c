/*
 * model.c — stages, the flat buffers, forward and backward; see model.h.
 *
 * Buffers of a model (all through tt_mem, so the accounting is the
 * allocator's):
 *   params, state      one allocation each, booked to stages by share
 *   grads, optim[k]    cover only the trainable suffix of params
 *   t[] of a stage     activations kept for backward; trainable stages only
 *   boundary           the frozen prefix's output: the first trainable
 *                      stage's input, kept for its weight gradients
 *   g[4]               a pool rotated stage to stage: the frozen prefix's
 *                      forward scratch, then the activation gradients (the
 *                      two never live at once, so they share the bytes)
 *   convws             the backend's convolution workspace
 *   dlogits, input, labels, stat scratch
 * Shapes: activations are NHWC; "rows" means n*h*w.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

enum stage_kind { ST_DENSE, ST_CONV, ST_BLOCK, ST_HEAD_DENSE, ST_HEAD_GAP };

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f
#define MAX_WIDTH 65536
#define NAME_MAX_LEN TT_STAGE_NAME_MAX_LEN

typedef struct conv {
	tt_conv_shape s;
	int K;            /* output channels */
	size_t w;         /* offset of W (K, k, k, C) in params */
	size_t gamma;     /* offset of gamma; beta follows */
	size_t run;       /* offset of the running mean in state; var follows */
	float *smean, *sistd; /* batch statistics kept for backward */
} conv;

typedef struct stage {
	int kind;
	char name[NAME_MAX_LEN];
	int frozen;
	int h, w, c;      /* input shape (per example) */
	int oh, ow, oc;   /* output shape */
	size_t poff, pcount;
	conv cv[3];       /* ST_CONV: cv[0]; ST_BLOCK: conv1, conv2, projection */
	int proj, pool;
	int din, dout;    /* dense */
	size_t dw, db;    /* dense W and b offsets */
	/* Kept activations, NULL when frozen:
	 *   ST_CONV  t0 conv out, t1 BN+ReLU out, t2 pooled out
	 *   ST_BLOCK t0 conv1 out, t1 BN1+ReLU out, t2 conv2 out,
	 *            t3 projection conv out, t4 block out
	 *   ST_DENSE, ST_HEAD_DENSE t0 out
	 *   ST_HEAD_GAP t0 pooled (n, C), t1 logits */
	float *t[5];
	float *out;       /* the last forward's output */
	double macs;      /* forward multiply-accumulates per example */
	double macs_dx0;  /* of which the input-facing layers (no dx when first) */
	size_t in_elems;  /* input tensor, per example */
	size_t max_elems; /* largest tensor it writes (output or inside) */
} stage;

struct tt_model {
	const tt_backend *be;
	tt_mem mem;
	int h, w, c, classes, batch;
	int n;            /* stages */
	int first;        /* index of the first trainable stage */
	stage st[TT_MEM_MAX_STAGES];
	size_t nparams, nstate, toff;
	float *params, *state, *grads, *optim[2];
	int slots;
	float *g[4];
	int npool;        /* pool buffers in use: 2 for dense-only models */
	float *boundary;
	void *convws;     /* the backend's convolution workspace */
	size_t convws_bytes;
	float *dlogits, *input, *statscratch;
	int max_frozen_k; /* widest frozen batch norm, for statscratch */
	int *labels;
	const float *x;   /* input of the last forward */
	int last_n;       /* batch of the last forward */
	int last_train;
};

/* ---- the spec ---------------------------------------------------------- */

typedef struct spec {
	int kind;         /* 0 mlp, 1 cnn, 2 resnet */
	int v[TT_MEM_MAX_STAGES];
	int nv;
	int width;        /* resnet base width */
} spec;

static const char spec_forms[] =
	"mlp:W,W,... (dense widths), cnn:C,C,... (conv widths) or "
	"resnet:B,B,...[:wW] (blocks per group, base width)";

static int parse_list(const char *full, const char *p, const char **end,
                      spec *sp, int lo, int hi, tt_err *err)
{
	sp->nv = 0;
	for (;;) {
		char *e;
		if (*p < '0' || *p > '9')
			return tt_err_set(err, TT_EINPUT,
			                  "model '%s': expected a number at '%s'; forms: %s",
			                  full, p, spec_forms);
		long v = strtol(p, &e, 10);
		if (v < lo || v > hi)
			return tt_err_set(err, TT_EINPUT,
			                  "model '%s': %ld is out of range, expected %d..%d",
			                  full, v, lo, hi);
		if (sp->nv >= TT_MEM_MAX_STAGES - 2)
			return tt_err_set(err, TT_EINPUT, "model '%s': more than %d entries",
			                  full, TT_MEM_MAX_STAGES - 2);
		sp->v[sp->nv++] = (int)v;
		p = e;
		if (*p != ',')
			break;
		p++;
	}
	*end = p;
	return TT_OK;
}

static int parse_spec(const char *s, spec *sp, tt_err *err)
{
	const char *p;
	memset(sp, 0, sizeof *sp);
	if (!s || !*s)
		return tt_err_set(err, TT_EINPUT, "empty model spec; expected %s", spec_forms);
	if (strncmp(s, "mlp:", 4) == 0) {
		sp->kind = 0;
		p = s + 4;
	} else if (strncmp(s, "cnn:", 4) == 0) {
		sp->kind = 1;
		p = s + 4;
	} else if (strncmp(s, "resnet:", 7) == 0) {
		sp->kind = 2;
		p = s + 7;
	} else {
		int len = (int)strcspn(s, ":");
		return tt_err_set(err, TT_EINPUT,
		                  "model '%s': unknown model '%.*s'; expected %s", s,
		                  len, s, spec_forms);
	}
	int rc = parse_list(s, p, &p, sp, 1, sp->kind == 2 ? 64 : MAX_WIDTH, err);
	if (rc)
		return rc;
	sp->width = 16;
	if (sp->kind == 2 && p[0] == ':' && p[1] == 'w') {
		char *e;
		long w = strtol(p + 2, &e, 10);
		if (e == p + 2 || w < 1 || w > 4096)
			return tt_err_set(err, TT_EINPUT,
			                  "model '%s': bad width '%s', expected :wN with N in 1..4096",
			                  s, p);
		sp->width = (int)w;
		p = e;
	}
	if (*p)
		return tt_err_set(err, TT_EINPUT, "model '%s': unexpected '%s'; expected %s",
		                  s, p, spec_forms);
	int stages = sp->kind == 0 ? sp->nv + 1 : sp->kind == 1 ? sp->nv + 2 : 2;
	if (sp->kind == 2)
		for (int i = 0; i < sp->nv; i++)
			stages += sp->v[i];
	if (stages > TT_MEM_MAX_STAGES)
		return tt_err_set(err, TT_EINPUT, "model '%s': %d stages, at most %d", s,
		                  stages, TT_MEM_MAX_STAGES);
	return TT_OK;
}

int tt_model_spec_check(const char *spec_str, int *nstages, tt_err *err)
{
	spec sp;
	int rc = parse_spec(spec_str, &sp, err);
	if (rc)
		return rc;
	if (nstages) {
		int n = sp.kind == 0 ? sp.nv + 1 : sp.kind == 1 ? sp.nv + 2 : 2;
		if (sp.kind == 2)
			for (int i = 0; i < sp.nv; i++)
				n += sp.v[i];
		*nstages = n;
	}
	return TT_OK;
}

/* ---- building the stage list ------------------------------------------ */

typedef struct builder {
	tt_model *m;
	size_t p, s;      /* next parameter and state offsets */
} builder;

static void add_conv(builder *b, conv *cv, int h, int w, int c, int K, int k,
                     int stride)
{
	cv->s = (tt_conv_shape){ .n = 0, .h = h, .w = w, .c = c, .k = k,
	                         .stride = stride, .pad = k / 2 };
	cv->s.oh = (h + 2 * cv->s.pad - k) / stride + 1;
	cv->s.ow = (w + 2 * cv->s.pad - k) / stride + 1;
	cv->K = K;
	cv->w = b->p;
	b->p += (size_t)K * k * k * c;
	cv->gamma = b->p;
	b->p += 2 * (size_t)K;
	cv->run = b->s;
	b->s += 2 * (size_t)K;
}

static double conv_macs(const conv *cv)
{
	return (double)cv->s.oh * cv->s.ow * cv->K * cv->s.k * cv->s.k * cv->s.c;
}

static stage *new_stage(builder *b, int kind, const char *name, int h, int w, int c)
{
	stage *st = &b->m->st[b->m->n++];
	memset(st, 0, sizeof *st);
	st->kind = kind;
	snprintf(st->name, sizeof st->name, "%s", name);
	st->h = h;
	st->w = w;
	st->c = c;
	st->poff = b->p;
	return st;
}

static void end_stage(builder *b, stage *st)
{
	st->pcount = b->p - st->poff;
	size_t in = (size_t)st->h * st->w * st->c, out = (size_t)st->oh * st->ow * st->oc;
	st->in_elems = in;
	st->max_elems = out;
	for (int i = 0; i < 3; i++) {
		size_t e = (size_t)st->cv[i].s.oh * st->cv[i].s.ow * st->cv[i].K;
		if (e > st->max_elems)
			st->max_elems = e;
	}
}

static void conv_stage(builder *b, const char *name, int *h, int *w, int *c,
                       int K, int pool)
{
	stage *st = new_stage(b, ST_CONV, name, *h, *w, *c);
	add_conv(b, &st->cv[0], *h, *w, *c, K, 3, 1);
	st->pool = pool;
	st->oh = pool ? st->cv[0].s.oh / 2 : st->cv[0].s.oh;
	st->ow = pool ? st->cv[0].s.ow / 2 : st->cv[0].s.ow;
	st->oc = K;
	st->macs = st->macs_dx0 = conv_macs(&st->cv[0]);
	end_stage(b, st);
	*h = st->oh, *w = st->ow, *c = st->oc;
}

static void block_stage(builder *b, const char *name, int *h, int *w, int *c,
                        int K, int stride)
{
	stage *st = new_stage(b, ST_BLOCK, name, *h, *w, *c);
	add_conv(b, &st->cv[0], *h, *w, *c, K, 3, stride);
	add_conv(b, &st->cv[1], st->cv[0].s.oh, st->cv[0].s.ow, K, K, 3, 1);
	st->proj = stride != 1 || *c != K;
	if (st->proj)
		add_conv(b, &st->cv[2], *h, *w, *c, K, 1, stride);
	st->oh = st->cv[0].s.oh;
	st->ow = st->cv[0].s.ow;
	st->oc = K;
	st->macs_dx0 = conv_macs(&st->cv[0]) + (st->proj ? conv_macs(&st->cv[2]) : 0);
	st->macs = st->macs_dx0 + conv_macs(&st->cv[1]);
	end_stage(b, st);
	*h = st->oh, *w = st->ow, *c = st->oc;
}

static void dense_stage(builder *b, int kind, const char *name, int h, int w,
                        int c, int din, int dout)
{
	stage *st = new_stage(b, kind, name, h, w, c);
	st->din = din;
	st->dout = dout;
	st->dw = b->p;
	b->p += (size_t)din * dout;
	st->db = b->p;
	b->p += (size_t)dout;
	st->oh = st->ow = 1;
	st->oc = dout;
	st->macs = st->macs_dx0 = (double)din * dout;
	end_stage(b, st);
}

static int build_stages(tt_model *m, const spec *sp, const char *spec_str,
                        tt_err *err)
{
	builder b = { .m = m };
	int h = m->h, w = m->w, c = m->c;
	char name[NAME_MAX_LEN];
	if (sp->kind == 0) {
		int din = h * w * c;
		for (int i = 0; i < sp->nv; i++) {
			snprintf(name, sizeof name, "fc%d", i + 1);
			dense_stage(&b, ST_DENSE, name, i ? 1 : h, i ? 1 : w, i ? din : c,
			            din, sp->v[i]);
			din = sp->v[i];
		}
		dense_stage(&b, ST_HEAD_DENSE, "head", 1, 1, din, din, m->classes);
	} else {
		if (sp->kind == 1) {
			conv_stage(&b, "stem", &h, &w, &c, sp->v[0], 0);
			for (int i = 0; i < sp->nv; i++) {
				if (h < 2 || w < 2)
					return tt_err_set(err, TT_EINPUT,
					                  "model '%s': block %d would pool a %dx%d "
					                  "feature map; expected at most %d blocks "
					                  "for %dx%d input", spec_str, i + 1, h, w,
					                  i, m->h, m->w);
				snprintf(name, sizeof name, "conv%d", i + 1);
				conv_stage(&b, name, &h, &w, &c, sp->v[i], 1);
			}
		} else {
			conv_stage(&b, "stem", &h, &w, &c, sp->width, 0);
			for (int g = 0; g < sp->nv; g++)
				for (int i = 0; i < sp->v[g]; i++) {
					snprintf(name, sizeof name, "b%d.%d", g + 1, i + 1);
					block_stage(&b, name, &h, &w, &c, sp->width << g,
					            g > 0 && i == 0 ? 2 : 1);
				}
		}
		stage *st = new_stage(&b, ST_HEAD_GAP, "head", h, w, c);
		st->din = c;
		st->dout = m->classes;
		st->dw = b.p;
		b.p += (size_t)c * m->classes;
		st->db = b.p;
		b.p += (size_t)m->classes;
		st->oh = st->ow = 1;
		st->oc = m->classes;
		st->macs = st->macs_dx0 = (double)c * m->classes;
		end_stage(&b, st);
	}
	m->nparams = b.p;
	m->nstate = b.s;
	return TT_OK;
}

/* ---- initialisation ---------------------------------------------------- */

static void fill_normal(float *p, size_t n, float std, tt_rng *r)
{
	for (size_t i = 0; i < n; i++)
		p[i] = std * tt_rng_normal(r);
}

/* Kaiming-normal weights, BN gamma 1 and beta 0, zero biases, running
 * statistics 0 and 1.  The stream depends on the seed only, never on z,
 * so every trainable depth starts from the same network. */
static void init_host(const tt_model *m, uint64_t seed, float *p, float *s)
{
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_INIT);
	for (int i = 0; i < m->n; i++) {
		const stage *st = &m->st[i];
		if (st->kind == ST_CONV || st->kind == ST_BLOCK) {
			int ncv = st->kind == ST_CONV ? 1 : st->proj ? 3 : 2;
			for (int j = 0; j < ncv; j++) {
				const conv *cv = &st->cv[j];
				size_t fan_in = (size_t)cv->s.k * cv->s.k * cv->s.c;
				fill_normal(p + cv->w, fan_in * cv->K, sqrtf(2.0f / fan_in), &r);
				for (int k = 0; k < cv->K; k++) {
					p[cv->gamma + k] = 1.0f;
					s[cv->run + cv->K + k] = 1.0f;
				}
			}
		} else {
			float gain = st->kind == ST_DENSE ? 2.0f : 1.0f;
			fill_normal(p + st->dw, (size_t)st->din * st->dout,
			            sqrtf(gain / st->din), &r);
		}
	}
}

/* ---- creation ---------------------------------------------------------- */

static float *act(tt_model *m, int s, size_t elems)
{
	return tt_mem_alloc(&m->mem, s, TT_MEM_ACT, elems * sizeof(float));
}

#define NEED(p)                                                            \
	do {                                                               \
		if (!(p))                                                  \
			goto oom;                                          \
	} while (0)

/* Activations a trainable stage keeps; see the t[] comment in stage. */
static int alloc_kept(tt_model *m, int s)
{
	stage *st = &m->st[s];
	size_t B = (size_t)m->batch;
	switch (st->kind) {
	case ST_CONV: {
		size_t e = (size_t)st->cv[0].s.oh * st->cv[0].s.ow * st->oc * B;
		NEED(st->t[0] = act(m, s, e));
		NEED(st->t[1] = act(m, s, e));
		if (st->pool)
			NEED(st->t[2] = act(m, s, (size_t)st->oh * st->ow * st->oc * B));
		break;
	}
	case ST_BLOCK: {
		size_t e = (size_t)st->oh * st->ow * st->oc * B;
		NEED(st->t[0] = act(m, s, e));
		NEED(st->t[1] = act(m, s, e));
		NEED(st->t[2] = act(m, s, e));
		if (st->proj)
			NEED(st->t[3] = act(m, s, e));
		NEED(st->t[4] = act(m, s, e));
		break;
	}
	case ST_DENSE:
	case ST_HEAD_DENSE:
		NEED(st->t[0] = act(m, s, (size_t)st->dout * B));
		break;
	case ST_HEAD_GAP:
		NEED(st->t[0] = act(m, s, (size_t)st->din * B));
		NEED(st->t[1] = act(m, s, (size_t)st->dout * B));
		break;
	}
	if (st->kind == ST_CONV || st->kind == ST_BLOCK) {
		int ncv = st->kind == ST_CONV ? 1 : st->proj ? 3 : 2;
		for (int j = 0; j < ncv; j++) {
			NEED(st->cv[j].smean = act(m, s, 2 * (size_t)st->cv[j].K));
			st->cv[j].sistd = st->cv[j].smean + st->cv[j].K;
		}
	}
	return 0;
oom:
	return -1;
}

int tt_model_create(const tt_model_config *cfg, tt_model **out, tt_err *err)
{
	spec sp;
	int rc;
	*out = NULL;
	if ((rc = parse_spec(cfg->spec, &sp, err)))
		return rc;
	if (cfg->batch < 1 || cfg->h < 1 || cfg->w < 1 || cfg->c < 1 || cfg->classes < 2)
		return tt_err_set(err, TT_EINPUT,
		                  "model: bad shape: batch %d, input %dx%dx%d, %d classes",
		                  cfg->batch, cfg->h, cfg->w, cfg->c, cfg->classes);
	tt_model *m = calloc(1, sizeof *m);
	if (!m)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	m->be = cfg->be;
	tt_mem_init(&m->mem, cfg->be);
	m->h = cfg->h, m->w = cfg->w, m->c = cfg->c;
	m->classes = cfg->classes;
	m->batch = cfg->batch;
	if ((rc = build_stages(m, &sp, cfg->spec, err)))
		goto fail;
	int z = cfg->trainable <= 0 || cfg->trainable > m->n ? m->n : cfg->trainable;
	m->first = m->n - z;
	m->toff = m->st[m->first].poff;
	m->slots = cfg->optim_slots;
	TT_ASSERT(m->slots >= 0 && m->slots <= 2);

	size_t share[TT_MEM_MAX_STAGES];
	float *hp = NULL, *hs = NULL;
	for (int s = 0; s < m->n; s++) {
		m->st[s].frozen = s < m->first;
		share[s] = m->st[s].pcount * sizeof(float);
	}
	NEED(m->params = tt_mem_alloc_split(&m->mem, TT_MEM_PARAMS, share, m->n));
	for (int s = 0; s < m->n; s++) {
		const stage *st = &m->st[s];
		share[s] = 0;
		if (st->kind == ST_CONV || st->kind == ST_BLOCK) {
			int ncv = st->kind == ST_CONV ? 1 : st->proj ? 3 : 2;
			for (int j = 0; j < ncv; j++)
				share[s] += 2 * (size_t)st->cv[j].K * sizeof(float);
		}
	}
	if (m->nstate)
		NEED(m->state = tt_mem_alloc_split(&m->mem, TT_MEM_PARAMS, share, m->n));
	for (int s = 0; s < m->n; s++)
		share[s] = m->st[s].frozen ? 0 : m->st[s].pcount * sizeof(float);
	NEED(m->grads = tt_mem_alloc_split(&m->mem, TT_MEM_GRADS, share, m->n));
	for (int k = 0; k < m->slots; k++)
		NEED(m->optim[k] = tt_mem_alloc_split(&m->mem, TT_MEM_OPTIM, share, m->n));

	/* Kept activations of the trainable stages; scratch for the frozen. */
	size_t pool_max = 0;
	for (int s = 0; s < m->n; s++) {
		stage *st = &m->st[s];
		/* what goes through the pool: the frozen stages' outputs and
		 * insides, the trainable stages' gradients, their inputs' too
		 * except for the first trainable stage, which computes none */
		size_t need = st->max_elems;
		if (!st->frozen && s > m->first && st->in_elems > need)
			need = st->in_elems;
		if (need > pool_max)
			pool_max = need;
		if (st->frozen) {
			for (int j = 0; j < 3; j++)
				if (st->cv[j].K > m->max_frozen_k)
					m->max_frozen_k = st->cv[j].K;
		} else {
			if (alloc_kept(m, s))
				goto oom;
		}
		for (int j = 0; j < 3; j++) {
			tt_conv_shape cs = st->cv[j].s;
			cs.n = m->batch;
			size_t ws = st->cv[j].K ? m->be->conv_ws(&cs, st->cv[j].K) : 0;
			if (ws > m->convws_bytes)
				m->convws_bytes = ws;
		}
	}
	size_t B = (size_t)m->batch, fl = sizeof(float);
	if (m->first > 0) {
		const stage *f = &m->st[m->first];
		NEED(m->boundary = act(m, m->first, (size_t)f->h * f->w * f->c * B));
	}
	/* dense stages ping-pong between two buffers; a conv block needs
	 * two more for its insides */
	m->npool = 2;
	for (int s = 0; s < m->n; s++)
		if (m->st[s].kind == ST_CONV || m->st[s].kind == ST_BLOCK)
			m->npool = 4;
	for (int i = 0; i < m->npool; i++)
		NEED(m->g[i] = tt_mem_alloc(&m->mem, TT_MEM_MODEL, TT_MEM_WORK,
		                            pool_max * B * fl));
	if (m->convws_bytes)
		NEED(m->convws = tt_mem_alloc(&m->mem, TT_MEM_MODEL, TT_MEM_WORK,
		                              m->convws_bytes));
	NEED(m->dlogits = tt_mem_alloc(&m->mem, TT_MEM_MODEL, TT_MEM_WORK,
	                               B * m->classes * fl));
	NEED(m->input = tt_mem_alloc(&m->mem, TT_MEM_MODEL, TT_MEM_WORK,
	                             B * m->h * m->w * m->c * fl));
	NEED(m->labels = tt_mem_alloc(&m->mem, TT_MEM_MODEL, TT_MEM_WORK, B * sizeof(int)));
	if (m->max_frozen_k)
		NEED(m->statscratch = tt_mem_alloc(&m->mem, TT_MEM_MODEL, TT_MEM_WORK,
		                                   2 * (size_t)m->max_frozen_k * fl));

	hp = calloc(m->nparams, sizeof *hp);
	hs = calloc(m->nstate + 1, sizeof *hs);
	if (!hp || !hs) {
		free(hp);
		free(hs);
		goto oom;
	}
	init_host(m, cfg->seed, hp, hs);
	m->be->upload(m->params, hp, m->nparams * sizeof *hp);
	if (m->nstate)
		m->be->upload(m->state, hs, m->nstate * sizeof *hs);
	free(hp);
	free(hs);
	*out = m;
	return TT_OK;
oom:
	rc = tt_err_set(err, TT_ERUNTIME, "model '%s': out of memory (%zu bytes allocated)",
	                cfg->spec, m->mem.current);
fail:
	tt_model_free(m);
	return rc;
}

void tt_model_free(tt_model *m)
{
	if (!m)
		return;
	tt_mem_release(&m->mem);
	free(m);
}

/* ---- accessors --------------------------------------------------------- */

int tt_model_stages(const tt_model *m) { return m->n; }
int tt_model_trainable(const tt_model *m) { return m->n - m->first; }
const char *tt_model_stage_name(const tt_model *m, int s) { return m->st[s].name; }
const tt_backend *tt_model_backend(const tt_model *m) { return m->be; }
size_t tt_model_nparams(const tt_model *m) { return m->nparams; }
size_t tt_model_trainable_offset(const tt_model *m) { return m->toff; }
size_t tt_model_ntrainable(const tt_model *m) { return m->nparams - m->toff; }
float *tt_model_params(tt_model *m) { return m->params; }
float *tt_model_grads(tt_model *m) { return m->grads; }
float *tt_model_optim(tt_model *m, int slot) { return slot < m->slots ? m->optim[slot] : NULL; }
float *tt_model_state(tt_model *m) { return m->state; }
size_t tt_model_nstate(const tt_model *m) { return m->nstate; }
float *tt_model_input(tt_model *m) { return m->input; }
int *tt_model_labels(tt_model *m) { return m->labels; }
const tt_mem *tt_model_mem(const tt_model *m) { return &m->mem; }

void tt_model_stage_params(const tt_model *m, int s, size_t *offset, size_t *count)
{
	*offset = m->st[s].poff;
	*count = m->st[s].pcount;
}

double tt_model_macs(const tt_model *m)
{
	double t = 0;
	for (int s = 0; s < m->n; s++)
		t += m->st[s].macs;
	return t;
}

double tt_model_train_macs(const tt_model *m)
{
	/* forward everywhere; weight gradients and input gradients through
	 * the trainable stages, except the input gradient of the first */
	double t = tt_model_macs(m);
	for (int s = m->first; s < m->n; s++)
		t += 2 * m->st[s].macs - (s == m->first ? m->st[s].macs_dx0 : 0);
	return t;
}

void tt_model_stage_mem(const tt_model *m, int s, tt_stage_mem *out)
{
	out->name = m->st[s].name;
	out->frozen = m->st[s].frozen;
	out->params = m->mem.bytes[s][TT_MEM_PARAMS];
	out->grads = m->mem.bytes[s][TT_MEM_GRADS];
	out->optim = m->mem.bytes[s][TT_MEM_OPTIM];
	out->activations = m->mem.bytes[s][TT_MEM_ACT];
}

/* ---- layer helpers ----------------------------------------------------- */

/* y (n*oh*ow, K) = conv(x (n, h, w, C)) */
static void conv_fwd(tt_model *m, const conv *cv, const float *x, int n, float *y)
{
	tt_conv_shape s = cv->s;
	s.n = n;
	m->be->conv(x, &s, cv->K, m->params + cv->w, y, m->convws, m->convws_bytes);
}

/* dW = dy^T col(x); when dx is not NULL, dx += the input gradient. */
static void conv_bwd(tt_model *m, const conv *cv, const float *x, const float *dy,
                     int n, float *dx)
{
	tt_conv_shape s = cv->s;
	s.n = n;
	m->be->conv_bwd(x, dy, &s, cv->K, m->params + cv->w,
	                m->grads + (cv->w - m->toff), dx, m->convws, m->convws_bytes);
}

static void bn_fwd(tt_model *m, const conv *cv, int frozen, const float *x,
                   int n, int relu, float *y)
{
	const float *gamma = m->params + cv->gamma;
	float *run = m->state + cv->run;
	int rows = n * cv->s.oh * cv->s.ow;
	if (m->last_train) {
		float *smean = frozen ? m->statscratch : cv->smean;
		float *sistd = frozen ? m->statscratch + m->max_frozen_k : cv->sistd;
		m->be->bn_train(x, rows, cv->K, gamma, gamma + cv->K, BN_MOMENTUM,
		                BN_EPS, run, run + cv->K, smean, sistd, relu, y);
	} else {
		m->be->bn_eval(x, rows, cv->K, gamma, gamma + cv->K, run, run + cv->K,
		               BN_EPS, relu, y);
	}
}

static void bn_bwd(tt_model *m, const conv *cv, const float *x, const float *dy,
                   int n, float *dx)
{
	float *dgamma = m->grads + (cv->gamma - m->toff);
	m->be->bn_bwd(x, dy, n * cv->s.oh * cv->s.ow, cv->K, m->params + cv->gamma,
	              cv->smean, cv->sistd, dx, dgamma, dgamma + cv->K);
}

static void dense_fwd(tt_model *m, const stage *st, const float *x, int n,
                      int relu, float *y)
{
	m->be->gemm(0, 1, n, st->dout, st->din, 1.0f, x, st->din, m->params + st->dw,
	            st->din, 0.0f, y, st->dout);
	m->be->bias_add(y, m->params + st->db, n, st->dout);
	if (relu)
		m->be->relu(y, (size_t)n * st->dout);
}

/* dW += dy^T x, db += colsum(dy), dx = dy W when dx is not NULL. */
static void dense_bwd(tt_model *m, const stage *st, const float *x,
                      const float *dy, int n, float *dx)
{
	float *dW = m->grads + (st->dw - m->toff), *db = m->grads + (st->db - m->toff);
	m->be->gemm(1, 0, st->dout, st->din, n, 1.0f, dy, st->dout, x, st->din, 1.0f,
	            dW, st->din);
	m->be->bias_grad(dy, n, st->dout, db);
	if (dx)
		m->be->gemm(0, 0, n, st->din, st->dout, 1.0f, dy, st->dout,
		            m->params + st->dw, st->din, 0.0f, dx, st->din);
}

/* A scratch buffer that is neither a nor b. */
static float *pick(float *const *pool, int npool, const float *a, const float *b)
{
	for (int i = 0; i < npool; i++)
		if (pool[i] != a && pool[i] != b)
			return pool[i];
	TT_ASSERT(!"no free buffer in the pool");
	return NULL;
}

/* ---- forward ----------------------------------------------------------- */

/*
 * A frozen stage keeps nothing: it works in the pool, batch norms run in
 * place, and its output goes to dst, the boundary buffer for the last
 * frozen stage (the first trainable one reads it again in backward) or a
 * pool buffer for the others.
 */
static void stage_fwd(tt_model *m, stage *st, const float *x, int n)
{
	const tt_backend *be = m->be;
	int fz = st->frozen;
	float *const *pool = m->g;
	float *dst = NULL;
	if (fz)
		dst = st == &m->st[m->first - 1] ? m->boundary : pick(pool, m->npool, x, NULL);
	switch (st->kind) {
	case ST_CONV: {
		float *c = !fz ? st->t[0] : st->pool ? pick(pool, m->npool, x, dst) : dst;
		float *a = fz ? c : st->t[1];
		conv_fwd(m, &st->cv[0], x, n, c);
		bn_fwd(m, &st->cv[0], fz, c, n, 1, a);
		st->out = a;
		if (st->pool) {
			float *p = fz ? dst : st->t[2];
			be->maxpool(a, n, st->cv[0].s.oh, st->cv[0].s.ow, st->oc, 2, 2, p);
			st->out = p;
		}
		break;
	}
	case ST_BLOCK: {
		float *c1 = fz ? pick(pool, m->npool, x, dst) : st->t[0];
		float *a1 = fz ? c1 : st->t[1];
		float *c2 = fz ? dst : st->t[2];
		float *o = fz ? c2 : st->t[4];
		conv_fwd(m, &st->cv[0], x, n, c1);
		bn_fwd(m, &st->cv[0], fz, c1, n, 1, a1);
		conv_fwd(m, &st->cv[1], a1, n, c2);
		bn_fwd(m, &st->cv[1], fz, c2, n, 0, o);
		size_t e = (size_t)n * st->oh * st->ow * st->oc;
		if (st->proj) {
			/* frozen: a1 is spent; trainable: the pool is free until
			 * backward, the frozen prefix's output being in boundary */
			float *cp = fz ? a1 : st->t[3];
			float *bp = fz ? a1 : m->g[0];
			conv_fwd(m, &st->cv[2], x, n, cp);
			bn_fwd(m, &st->cv[2], fz, cp, n, 0, bp);
			be->add_relu(o, bp, e);
		} else {
			be->add_relu(o, x, e);
		}
		st->out = o;
		break;
	}
	case ST_DENSE:
	case ST_HEAD_DENSE: {
		float *y = fz ? dst : st->t[0];
		dense_fwd(m, st, x, n, st->kind == ST_DENSE, y);
		st->out = y;
		break;
	}
	case ST_HEAD_GAP:
		TT_ASSERT(!fz);
		be->gap(x, n, st->h * st->w, st->c, st->t[0]);
		dense_fwd(m, st, st->t[0], n, 0, st->t[1]);
		st->out = st->t[1];
		break;
	}
}

const float *tt_model_forward(tt_model *m, const float *x, int n, int train)
{
	TT_ASSERT(n >= 1 && n <= m->batch);
	m->x = x;
	m->last_n = n;
	m->last_train = train;
	const float *in = x;
	for (int s = 0; s < m->n; s++) {
		stage_fwd(m, &m->st[s], in, n);
		in = m->st[s].out;
	}
	return in;
}

double tt_model_loss(tt_model *m, const int *labels, int n, float smoothing,
                     int want_grad, int *correct)
{
	TT_ASSERT(n == m->last_n);
	const float *logits = m->st[m->n - 1].out;
	double sum = m->be->xent(logits, labels, n, m->classes, smoothing,
	                         1.0f / (float)n, want_grad ? m->dlogits : NULL,
	                         correct);
	return sum / n;
}

/* ---- backward ---------------------------------------------------------- */

/* dy is the gradient of this stage's output; it may be overwritten.
 * Returns the gradient of its input (in a g buffer), or NULL when the
 * stage is the first trainable one and none is needed. */
static float *stage_bwd(tt_model *m, stage *st, const float *x, float *dy, int n)
{
	const tt_backend *be = m->be;
	int need_dx = st != &m->st[m->first];
	/* dense stages need one buffer besides dy, the head's dy (dlogits)
	 * is outside the pool, conv stages need three */
	float *ga = pick(m->g, m->npool, dy, NULL);
	size_t in_e = (size_t)n * st->h * st->w * st->c;
	switch (st->kind) {
	case ST_DENSE:
	case ST_HEAD_DENSE:
		if (st->kind == ST_DENSE)
			be->relu_bwd(st->t[0], dy, (size_t)n * st->dout);
		dense_bwd(m, st, x, dy, n, need_dx ? ga : NULL);
		return need_dx ? ga : NULL;
	default:
		break;
	}
	float *gb = pick(m->g, m->npool, dy, ga);
	if (st->kind == ST_HEAD_GAP) {
		dense_bwd(m, st, st->t[0], dy, n, need_dx ? ga : NULL);
		if (!need_dx)
			return NULL;
		be->gap_bwd(ga, n, st->h * st->w, st->c, gb);
		return gb;
	}
	float *gc = NULL;
	for (int i = 0; i < m->npool; i++)
		if (m->g[i] != dy && m->g[i] != ga && m->g[i] != gb)
			gc = m->g[i];
	TT_ASSERT(gc);
	switch (st->kind) {
	case ST_CONV: {
		const conv *cv = &st->cv[0];
		float *da = dy;
		if (st->pool) {
			be->maxpool_bwd(st->t[1], dy, n, cv->s.oh, cv->s.ow, st->oc, 2, 2, ga);
			da = ga;
		}
		be->relu_bwd(st->t[1], da, (size_t)n * cv->s.oh * cv->s.ow * st->oc);
		bn_bwd(m, cv, st->t[0], da, n, gb);
		if (need_dx)
			be->zero(gc, in_e * sizeof(float));
		conv_bwd(m, cv, x, gb, n, need_dx ? gc : NULL);
		return need_dx ? gc : NULL;
	}
	case ST_BLOCK: {
		size_t e = (size_t)n * st->oh * st->ow * st->oc;
		be->relu_bwd(st->t[4], dy, e);            /* dy: d(branch + shortcut) */
		bn_bwd(m, &st->cv[1], st->t[2], dy, n, ga);     /* ga: d conv2 out */
		be->zero(gb, e * sizeof(float));
		conv_bwd(m, &st->cv[1], st->t[1], ga, n, gb);   /* gb: d a1 */
		be->relu_bwd(st->t[1], gb, e);
		bn_bwd(m, &st->cv[0], st->t[0], gb, n, ga);     /* ga: d conv1 out */
		if (need_dx)
			be->zero(gc, in_e * sizeof(float));
		conv_bwd(m, &st->cv[0], x, ga, n, need_dx ? gc : NULL);
		if (st->proj) {
			bn_bwd(m, &st->cv[2], st->t[3], dy, n, gb); /* gb: d proj out */
			conv_bwd(m, &st->cv[2], x, gb, n, need_dx ? gc : NULL);
		} else if (need_dx) {
			be->add(gc, dy, in_e);
		}
		return need_dx ? gc : NULL;
	}
	}
	return NULL;
}

void tt_model_backward(tt_model *m)
{
	TT_ASSERT(m->last_train);
	int n = m->last_n;
	m->be->zero(m->grads, tt_model_ntrainable(m) * sizeof(float));
	float *dy = m->dlogits;
	for (int s = m->n - 1; s >= m->first; s--) {
		const float *x = s ? m->st[s - 1].out : m->x;
		dy = stage_bwd(m, &m->st[s], x, dy, n);
	}
}
