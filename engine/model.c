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
 *                      two never live at once, so they share the bytes);
 *                      with input_grad the input's gradient too
 *   convws             the backend's convolution workspace
 *   dlogits, input, labels, stat scratch
 *   exw, exloss        per-example loss weights and losses (tt_model_loss_ex)
 *   mask, score, coef, wsq  with gates: one float per unit gate present, in
 *                      group order (see the gates section); fold two (a
 *                      masked batch norm's scale and shift)
 * Shapes: activations are NHWC; "rows" means n*h*w.
 *
 * Building is three steps: model_layout (the stages and every size, by
 * arithmetic), model_alloc (every device buffer, through dev_alloc) and
 * model_init (the initial weights).  tt_model_describe runs the first two
 * with m->dry, where dev_alloc books bytes without allocating, so a
 * description and a built model cannot disagree.
 *
 * Forward and backward never name m->params or m->grads: they read the
 * weights of the running forward through wt() and write gradients
 * through gr() (tt_model_weights), which are the model's own buffers
 * unless the caller named others.  Only the gates' weight sums and prior
 * (tt_model_gate_wsq, tt_model_gate_decay), initialisation and
 * compaction work on the model's own buffers by name.
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
	const float *out; /* the last forward's output (a block that was the
	                   * identity: its input) */
	/* Gates, only in a model built with them (see the gates section):
	 * grp[0] the layer gate's group, grp[1] the unit group of the stage's
	 * output (a block's u1), grp[2] a block's u2; -1 for none. */
	int grp[3];
	int branch;       /* ST_BLOCK: 1 while the branch exists */
	int ran;          /* ST_BLOCK: the last forward ran the branch */
	int *sidx;        /* ST_BLOCK: the stream channel of each conv2 channel
	                   * (device), when conv2 is narrower than the stream */
	double macs;      /* forward multiply-accumulates per example */
	double macs_dx0;  /* of which the input-facing layers (their input
	                   * gradient is skipped when first, see wants_dx) */
	size_t in_elems;  /* input tensor, per example */
	size_t max_elems; /* largest tensor it writes (output or inside) */
} stage;

struct tt_model {
	const tt_backend *be;
	tt_mem mem;
	int h, w, c, classes, batch;
	int n;            /* stages */
	int first;        /* index of the first trainable stage */
	int input_grad;   /* backward computes d loss / d input (first is 0) */
	const float *dx_in; /* the last backward's input gradient, in the pool;
	                     * NULL without input_grad or since a forward */
	stage st[TT_MEM_MAX_STAGES];
	size_t nparams, nstate, toff;
	float *params, *state, *grads, *optim[2];
	int slots;
	float *g[4];
	int npool;        /* pool buffers in use: 2 for dense-only models */
	size_t pool_max;  /* floats per example of each pool buffer */
	float *boundary;
	void *convws;     /* the backend's convolution workspace */
	size_t convws_bytes;
	float *dlogits, *input, *statscratch;
	float *exw, *exloss; /* batch floats each: tt_model_loss_ex's weights
	                      * and per-example losses on the device */
	int max_frozen_k; /* widest frozen batch norm, for statscratch */
	int *labels;
	const float *x;   /* input of the last forward */
	int last_n;       /* batch of the last forward */
	int last_train;
	int dry;          /* a description: buffers booked, none allocated */
	/* The weights of the last forward (see tt_model_weights): a frozen
	 * stage reads wpre + off, a trainable one wsuf + (off - toff); the
	 * backward that follows writes its gradients to gout + (off - toff).
	 * keep_stats: this train forward leaves the running statistics. */
	const float *wpre, *wsuf;
	float *gout;
	int keep_stats;
	/* frozen_bn fixed: the frozen prefix's batch norms use their running
	 * statistics in every forward, so the prefix is a function of each
	 * example alone; calibrating: tt_model_calibrate's forward, which
	 * estimates them (momentum bn_mom). */
	int prefix_fixed, calibrating;
	float bn_mom;
	size_t prefix_nstate; /* state floats of the frozen prefix's norms */
	struct gate_state *gs; /* NULL without gates */
	float *mask_d, *score_d, *coef_d, *wsq_d; /* nunits each, device */
	float *fold_d;    /* 2 nunits, device: gamma and beta times the masks
	                   * per unit group (bn_affine) */
	size_t nunits;    /* unit gates present */
	int scoring;      /* the last train forward wants gate scores */
};

/*
 * The gates of a model, on the host.  They outlive a compaction (the
 * rebuilt model takes them over), so everything that describes the dense
 * network the model was created as lives here.  Gate i of unit group g is
 * i = group[g].first + u, u the unit's original index in its layer; the
 * present units of g, in the order of the layer's columns now, are
 * orig[first .. first + gn[g]).
 */
typedef struct gate_state {
	tt_model_config cfg;  /* how to build the model again */
	char *spec;
	int ngates, ngroups, nterms;
	tt_gate_group *group;
	tt_gate_term *term;
	int sg[TT_MEM_MAX_STAGES][3]; /* stage -> its groups, as stage.grp */
	int *gn;              /* per group: units present (layer gate: 0 or 1) */
	int *orig;            /* per gate slot, see above */
	size_t *goff;         /* per unit group: its segment in the device arrays */
	int *allon;           /* per unit group: this forward's masks are all 1 */
	int *nodecay;         /* per unit group: no prior beyond wd this step */
	int fixed;            /* the masks are tt_model_gate_all_on's */
	float *t, *mask, *score;
	unsigned char *pruned, *present;
	int *stage, *unit;    /* the masks table's ids */
	float *hbuf;          /* host scratch: a float per gate */
} gate_state;

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

/*
 * The width of stage b->m->n's unit group which (1: its outputs, a
 * block's u1; 2: a block's u2; 0: a layer gate, 1 while present) when the
 * model is rebuilt after pruning; dflt, the spec's width, otherwise.
 */
static int gate_width(const builder *b, int which, int dflt)
{
	const struct gate_state *gs = b->m->gs;
	if (!gs || gs->sg[b->m->n][which] < 0)
		return dflt;
	return gs->gn[gs->sg[b->m->n][which]];
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
	st->grp[0] = st->grp[1] = st->grp[2] = -1;
	st->branch = 1;
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
	K = gate_width(b, 1, K);
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
	/* pruned units narrow conv1 (u1) and conv2 (u2); a pruned branch
	 * leaves both at width 0, the shortcut alone */
	int branch = gate_width(b, 0, 1);
	int k1 = branch ? gate_width(b, 1, K) : 0, k2 = branch ? gate_width(b, 2, K) : 0;
	stage *st = new_stage(b, ST_BLOCK, name, *h, *w, *c);
	st->branch = branch;
	add_conv(b, &st->cv[0], *h, *w, *c, k1, 3, stride);
	add_conv(b, &st->cv[1], st->cv[0].s.oh, st->cv[0].s.ow, k1, k2, 3, 1);
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
	if (kind == ST_DENSE)
		dout = gate_width(b, 1, dout);
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
			din = m->st[m->n - 1].dout; /* narrower once units are pruned */
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

/*
 * Every device buffer of a model comes through these two, so building
 * and describing count the same bytes by the same code: with m->dry
 * (tt_model_describe) nothing is allocated, the bytes are booked as
 * tt_mem would book them, and NULL comes back (NEED lets it pass).
 * bytes == 0 books nothing, as in tt_mem.
 */
static void *dev_alloc(tt_model *m, int stage, int kind, size_t bytes)
{
	if (!m->dry)
		return tt_mem_alloc(&m->mem, stage, kind, bytes);
	m->mem.bytes[stage == TT_MEM_MODEL ? TT_MEM_MAX_STAGES : stage][kind] += bytes;
	m->mem.current += bytes;
	m->mem.peak = m->mem.current;
	return NULL;
}

/* One allocation booked share[s] to stage s, for every stage. */
static float *dev_alloc_split(tt_model *m, int kind, const size_t *share)
{
	if (!m->dry)
		return tt_mem_alloc_split(&m->mem, kind, share, m->n);
	for (int s = 0; s < m->n; s++)
		dev_alloc(m, s, kind, share[s]);
	return NULL;
}

static float *act(tt_model *m, int s, size_t elems)
{
	return dev_alloc(m, s, TT_MEM_ACT, elems * sizeof(float));
}

#define NEED(p)                                                            \
	do {                                                               \
		if (!(p) && !m->dry)                                       \
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
		/* conv1 and conv2 as wide as their channels (the stream's width
		 * unless units were pruned); nothing for a pruned branch */
		size_t rows = (size_t)st->oh * st->ow * B, e = rows * st->oc;
		if (st->branch) {
			NEED(st->t[0] = act(m, s, rows * st->cv[0].K));
			NEED(st->t[1] = act(m, s, rows * st->cv[0].K));
			NEED(st->t[2] = act(m, s, rows * st->cv[1].K));
		}
		if (st->proj)
			NEED(st->t[3] = act(m, s, e));
		/* a pruned branch behind an identity shortcut leaves the
		 * identity, whose output is its input */
		if (st->branch || st->proj)
			NEED(st->t[4] = act(m, s, e));
		break;
	}
	case ST_DENSE:
	case ST_HEAD_DENSE:
		NEED(st->t[0] = act(m, s, (size_t)st->dout * B));
		if (st->grp[1] >= 0) /* the ungated output, for the off units' scores */
			NEED(st->t[1] = act(m, s, (size_t)st->dout * B));
		break;
	case ST_HEAD_GAP:
		NEED(st->t[0] = act(m, s, (size_t)st->din * B));
		NEED(st->t[1] = act(m, s, (size_t)st->dout * B));
		break;
	}
	if (st->kind == ST_CONV || st->kind == ST_BLOCK) {
		int ncv = st->kind == ST_CONV ? 1 : st->proj ? 3 : 2;
		for (int j = 0; j < ncv; j++) {
			if (!st->cv[j].K)
				continue; /* a pruned branch's convolution */
			NEED(st->cv[j].smean = act(m, s, 2 * (size_t)st->cv[j].K));
			if (!m->dry)
				st->cv[j].sistd = st->cv[j].smean + st->cv[j].K;
		}
	}
	return 0;
oom:
	return -1;
}

/*
 * Whether trainable stage s computes the gradient of its input: every
 * one but the first, whose input is the frozen prefix's output or the
 * data, unless input_grad asks for the data's.  The pool's size, the
 * training MACs and backward all ask here, so they cannot disagree.
 */
static int wants_dx(const tt_model *m, int s)
{
	return s > m->first || m->input_grad;
}

static int gates_new(tt_model *m, const tt_model_config *cfg);
static int gates_alloc(tt_model *m);
static void gates_free(struct gate_state *gs);

/*
 * The arithmetic of the model cfg describes, into the zeroed m: its
 * stages, z, its gates (gs NULL: fresh ones when cfg->gates; gs given:
 * the widths gs says are left, lent), the sizes every buffer will have.
 * Nothing on the device.
 */
static int model_layout(tt_model *m, const tt_model_config *cfg, gate_state *gs,
                        tt_err *err)
{
	spec sp;
	int rc;
	if ((rc = parse_spec(cfg->spec, &sp, err)))
		return rc;
	if (cfg->batch < 1 || cfg->h < 1 || cfg->w < 1 || cfg->c < 1 || cfg->classes < 2)
		return tt_err_set(err, TT_EINPUT,
		                  "model: bad shape: batch %d, input %dx%dx%d, %d classes",
		                  cfg->batch, cfg->h, cfg->w, cfg->c, cfg->classes);
	m->be = cfg->be;
	tt_mem_init(&m->mem, cfg->be);
	m->h = cfg->h, m->w = cfg->w, m->c = cfg->c;
	m->classes = cfg->classes;
	m->batch = cfg->batch;
	m->gs = gs;
	if ((rc = build_stages(m, &sp, cfg->spec, err)))
		return rc;
	int z = cfg->trainable <= 0 || cfg->trainable > m->n ? m->n : cfg->trainable;
	m->first = m->n - z;
	/* the input's gradient flows through every stage: a frozen one
	 * keeps no activation to take it through */
	m->input_grad = cfg->input_grad != 0;
	if (m->input_grad && m->first > 0)
		return tt_err_set(err, TT_EINPUT,
		                  "model '%s': input_grad needs every stage trained, but "
		                  "trainable %d of %d stages freezes the first %d; use "
		                  "trainable 0 (all) or no input gradient", cfg->spec, z,
		                  m->n, m->first);
	if (!gs && cfg->gates && gates_new(m, cfg))
		return tt_err_set(err, TT_ERUNTIME, "model '%s': out of memory", cfg->spec);
	if (m->gs)
		for (int s = 0; s < m->n; s++)
			memcpy(m->st[s].grp, m->gs->sg[s], sizeof m->st[s].grp);
	m->toff = m->st[m->first].poff;
	m->prefix_fixed = cfg->frozen_bn == TT_FROZEN_BN_FIXED;
	m->slots = cfg->optim_slots;
	TT_ASSERT(m->slots >= 0 && m->slots <= 2);
	for (int s = 0; s < m->n; s++) {
		stage *st = &m->st[s];
		st->frozen = s < m->first;
		/* what goes through the pool: the frozen stages' outputs and
		 * insides, the trainable stages' gradients, their inputs' too
		 * except for the first trainable stage, which computes none
		 * unless input_grad */
		size_t need = st->max_elems;
		if (!st->frozen && wants_dx(m, s) && st->in_elems > need)
			need = st->in_elems;
		if (need > m->pool_max)
			m->pool_max = need;
		for (int j = 0; j < 3 && st->frozen; j++) {
			const conv *cv = &st->cv[j];
			if (cv->K > m->max_frozen_k)
				m->max_frozen_k = cv->K;
			if (cv->K && cv->run + 2 * (size_t)cv->K > m->prefix_nstate)
				m->prefix_nstate = cv->run + 2 * (size_t)cv->K;
		}
		for (int j = 0; j < 3; j++) {
			tt_conv_shape cs = st->cv[j].s;
			cs.n = m->batch;
			size_t ws = st->cv[j].K ? m->be->conv_ws(&cs, st->cv[j].K) : 0;
			if (ws > m->convws_bytes)
				m->convws_bytes = ws;
		}
		/* dense stages ping-pong between two buffers; a conv block
		 * needs two more for its insides */
		if (st->kind == ST_CONV || st->kind == ST_BLOCK)
			m->npool = 4;
	}
	if (m->npool < 4)
		m->npool = 2;
	return TT_OK;
}

/*
 * Every device buffer of the laid-out model m, in one order (the
 * accounting does not depend on it, the addresses do).  With m->dry
 * only their bytes are booked.  -1 when out of memory.
 */
static int model_alloc(tt_model *m)
{
	size_t share[TT_MEM_MAX_STAGES];
	for (int s = 0; s < m->n; s++)
		share[s] = m->st[s].pcount * sizeof(float);
	NEED(m->params = dev_alloc_split(m, TT_MEM_PARAMS, share));
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
		NEED(m->state = dev_alloc_split(m, TT_MEM_PARAMS, share));
	for (int s = 0; s < m->n; s++)
		share[s] = m->st[s].frozen ? 0 : m->st[s].pcount * sizeof(float);
	NEED(m->grads = dev_alloc_split(m, TT_MEM_GRADS, share));
	for (int k = 0; k < m->slots; k++)
		NEED(m->optim[k] = dev_alloc_split(m, TT_MEM_OPTIM, share));
	/* kept activations of the trainable stages */
	for (int s = m->first; s < m->n; s++)
		if (alloc_kept(m, s))
			goto oom;
	size_t B = (size_t)m->batch, fl = sizeof(float);
	if (m->first > 0) {
		const stage *f = &m->st[m->first];
		NEED(m->boundary = act(m, m->first, (size_t)f->h * f->w * f->c * B));
	}
	for (int i = 0; i < m->npool; i++)
		NEED(m->g[i] = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, m->pool_max * B * fl));
	if (m->convws_bytes)
		NEED(m->convws = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, m->convws_bytes));
	NEED(m->dlogits = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, B * m->classes * fl));
	NEED(m->input = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK,
	                          B * m->h * m->w * m->c * fl));
	NEED(m->labels = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, B * sizeof(int)));
	NEED(m->exw = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, B * fl));
	NEED(m->exloss = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, B * fl));
	if (m->max_frozen_k)
		NEED(m->statscratch = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK,
		                                2 * (size_t)m->max_frozen_k * fl));
	if (m->gs && gates_alloc(m))
		goto oom;
	return 0;
oom:
	return -1;
}

/* The initial weights and statistics (init_host) onto the device. */
static int model_init(tt_model *m, uint64_t seed)
{
	float *hp = calloc(m->nparams, sizeof *hp);
	float *hs = calloc(m->nstate + 1, sizeof *hs);
	if (!hp || !hs) {
		free(hp);
		free(hs);
		return -1;
	}
	init_host(m, seed, hp, hs);
	m->be->upload(m->params, hp, m->nparams * sizeof *hp);
	if (m->nstate)
		m->be->upload(m->state, hs, m->nstate * sizeof *hs);
	free(hp);
	free(hs);
	return 0;
}

/*
 * Build the model cfg describes.  gs NULL: a fresh model, gated when
 * cfg->gates.  gs given: the model again with the widths gs says are left
 * (compaction); gs is lent, not taken, on failure.
 */
static int model_build(const tt_model_config *cfg, gate_state *gs, tt_model **out,
                       tt_err *err)
{
	*out = NULL;
	tt_model *m = calloc(1, sizeof *m);
	if (!m)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	int rc = model_layout(m, cfg, gs, err);
	if (rc)
		goto fail;
	if (model_alloc(m) || model_init(m, cfg->seed)) {
		rc = tt_err_set(err, TT_ERUNTIME,
		                "model '%s': out of memory (%zu bytes allocated)", cfg->spec,
		                m->mem.current);
		goto fail;
	}
	*out = m;
	return TT_OK;
fail:
	if (m->gs == gs)
		m->gs = NULL; /* lent */
	tt_model_free(m);
	return rc;
}

int tt_model_describe(const tt_model_config *cfg, tt_model_desc *d, tt_err *err)
{
	tt_model_config c = *cfg;
	memset(d, 0, sizeof *d);
	if (!c.be && !(c.be = tt_backend_get("cpu")))
		return tt_err_set(err, TT_ERUNTIME, "model: no cpu backend to size with");
	/* the model struct only, for the arithmetic: no network */
	tt_model *m = calloc(1, sizeof *m);
	if (!m)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	m->dry = 1;
	int rc = model_layout(m, &c, NULL, err);
	if (rc == TT_OK) {
		model_alloc(m); /* books, cannot fail */
		d->stages = m->n;
		d->trainable = m->n - m->first;
		d->nparams = m->nparams;
		d->nstate = m->nstate;
		d->trainable_offset = m->toff;
		d->macs = tt_model_macs(m);
		d->train_macs = tt_model_train_macs(m);
		d->gates = tt_model_gates(m);
		memcpy(d->bytes, m->mem.bytes, sizeof d->bytes);
		d->total = m->mem.current;
		for (int s = 0; s < m->n; s++) {
			memcpy(d->name[s], m->st[s].name, sizeof d->name[s]);
			tt_model_stage_mem(m, s, &d->stage[s]);
			d->stage[s].name = d->name[s];
		}
	}
	tt_model_free(m);
	return rc;
}

int tt_model_create(const tt_model_config *cfg, tt_model **out, tt_err *err)
{
	return model_build(cfg, NULL, out, err);
}

void tt_model_free(tt_model *m)
{
	if (!m)
		return;
	tt_mem_release(&m->mem);
	gates_free(m->gs);
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

void *tt_model_mem_alloc(tt_model *m, int kind, size_t bytes)
{
	return tt_mem_alloc(&m->mem, TT_MEM_MODEL, kind, bytes);
}

void tt_model_mem_free(tt_model *m, void *p)
{
	tt_mem_free(&m->mem, p);
}

void tt_model_stage_params(const tt_model *m, int s, size_t *offset, size_t *count)
{
	*offset = m->st[s].poff;
	*count = m->st[s].pcount;
}

/* Forward multiply-accumulates per example of stages [from, to). */
static double stages_macs(const tt_model *m, int from, int to)
{
	double t = 0;
	for (int s = from; s < to; s++)
		t += m->st[s].macs;
	return t;
}

double tt_model_macs(const tt_model *m)
{
	return stages_macs(m, 0, m->n);
}

double tt_model_train_macs(const tt_model *m)
{
	/* forward everywhere; weight gradients and input gradients through
	 * the trainable stages, except the input gradient of the first
	 * (unless input_grad) */
	double t = tt_model_macs(m);
	for (int s = m->first; s < m->n; s++)
		t += 2 * m->st[s].macs - (wants_dx(m, s) ? 0 : m->st[s].macs_dx0);
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

/* The parameter at offset off (the model's layout) of the weights this
 * forward runs on: every stage is wholly frozen (off < toff, read from
 * the prefix's buffer) or wholly trainable (the suffix's). */
static const float *wt(const tt_model *m, size_t off)
{
	return off < m->toff ? m->wpre + off : m->wsuf + (off - m->toff);
}

/* The gradient of the trainable parameter at offset off. */
static float *gr(const tt_model *m, size_t off)
{
	return m->gout + (off - m->toff);
}

/* y (n*oh*ow, K) = conv(x (n, h, w, C)) */
static void conv_fwd(tt_model *m, const conv *cv, const float *x, int n, float *y)
{
	tt_conv_shape s = cv->s;
	s.n = n;
	m->be->conv(x, &s, cv->K, wt(m, cv->w), y, m->convws, m->convws_bytes);
}

/* dW = dy^T col(x); when dx is not NULL, dx += the input gradient. */
static void conv_bwd(tt_model *m, const conv *cv, const float *x, const float *dy,
                     int n, float *dx)
{
	tt_conv_shape s = cv->s;
	s.n = n;
	m->be->conv_bwd(x, dy, &s, cv->K, wt(m, cv->w), gr(m, cv->w), dx, m->convws,
	                m->convws_bytes);
}

static const float *bn_affine(tt_model *m, const conv *cv, int g, int fwd);
static void bn_affine_grad(tt_model *m, const conv *cv, int g);

/* y = BN(x), with a ReLU when relu; g is the unit group gating its
 * channels (-1: none), whose masks the scale and shift carry (bn_affine). */
static void bn_fwd(tt_model *m, const conv *cv, int g, int frozen, const float *x,
                   int n, int relu, float *y)
{
	const float *gamma = bn_affine(m, cv, g, 1);
	float *run = m->state + cv->run;
	int rows = n * cv->s.oh * cv->s.ow;
	if (m->last_train && (!frozen || !m->prefix_fixed || m->calibrating)) {
		float *smean = frozen ? m->statscratch : cv->smean;
		float *sistd = frozen ? m->statscratch + m->max_frozen_k : cv->sistd;
		/* NULL running statistics: the backend leaves them alone */
		m->be->bn_train(x, rows, cv->K, gamma, gamma + cv->K,
		                m->calibrating ? m->bn_mom : BN_MOMENTUM,
		                BN_EPS, m->keep_stats ? NULL : run,
		                m->keep_stats ? NULL : run + cv->K, smean, sistd, relu, y);
	} else {
		m->be->bn_eval(x, rows, cv->K, gamma, gamma + cv->K, run, run + cv->K,
		               BN_EPS, relu, y);
	}
}

/* Its backward; dy is the gradient at the gated output. */
static void bn_bwd(tt_model *m, const conv *cv, int g, const float *x, const float *dy,
                   int n, float *dx)
{
	float *dgamma = gr(m, cv->gamma);
	m->be->bn_bwd(x, dy, n * cv->s.oh * cv->s.ow, cv->K, bn_affine(m, cv, g, 0),
	              cv->smean, cv->sistd, dx, dgamma, dgamma + cv->K);
	bn_affine_grad(m, cv, g);
}

static void dense_fwd(tt_model *m, const stage *st, const float *x, int n,
                      int relu, float *y)
{
	const tt_backend *be = m->be;
	be->gemm(0, 1, n, st->dout, st->din, 1.0f, x, st->din, wt(m, st->dw),
	         st->din, 0.0f, y, st->dout);
	if (relu && be->bias_relu) {
		be->bias_relu(y, wt(m, st->db), n, st->dout);
	} else {
		be->bias_add(y, wt(m, st->db), n, st->dout);
		if (relu)
			be->relu(y, (size_t)n * st->dout);
	}
}

/*
 * dW = dy^T x, db = colsum(dy), dx = dy W when dx is not NULL.  With
 * relu_y (the stage's ReLU output) dy is first masked by it, in place:
 * the gradient at the pre-activation.
 */
static void dense_bwd(tt_model *m, const stage *st, const float *x, float *dy,
                      const float *relu_y, int n, float *dx)
{
	const tt_backend *be = m->be;
	float *dW = gr(m, st->dw), *db = gr(m, st->db);
	if (relu_y && be->relu_bias_grad) {
		be->relu_bias_grad(relu_y, dy, n, st->dout, db);
	} else {
		if (relu_y)
			be->relu_bwd(relu_y, dy, (size_t)n * st->dout);
		be->bias_grad(dy, n, st->dout, db);
	}
	be->gemm(1, 0, st->dout, st->din, n, 1.0f, dy, st->dout, x, st->din, 0.0f,
	         dW, st->din);
	if (dx)
		m->be->gemm(0, 0, n, st->din, st->dout, 1.0f, dy, st->dout,
		            wt(m, st->dw), st->din, 0.0f, dx, st->din);
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

/* ---- gated layers ------------------------------------------------------ */

/*
 * With gates the forward multiplies each gated channel by its mask right
 * where the gate sits, and backward takes each gate's score out . d from
 * tensors it already has: a gated output is the ungated one on a channel
 * whose mask is 1 and 0 on one whose mask is 0, where the score is 0 by
 * definition, so out . d is the per-channel dot product of the gated
 * output with the gradient at it.
 *
 * Where a batch norm comes before the gate (a conv stage's channels, a
 * block's u1 and u2) the mask costs no pass over the activations: a mask
 * m >= 0 commutes with the ReLU, m relu(gamma xhat + beta) =
 * relu(m gamma xhat + m beta), so the batch norm runs with scale m gamma
 * and shift m beta (bn_affine).  Its backward with that scale gives the
 * input gradient of the gated output, and its gamma and beta gradients
 * are m times those it computes (bn_affine_grad).  A group whose masks
 * are all 1 uses the weights' own gamma and beta: the ungated arithmetic,
 * bit for bit.
 *
 * Only a step whose masks were sampled (or written by hand) wants
 * scores; after tt_model_gate_all_on (the warm-up, the fine-tuning)
 * m->scoring is 0 and none is computed.
 */

/* Whether unit group g (-1: none) has a mask other than 1 this forward. */
static int gate_masked(const tt_model *m, int g)
{
	return g >= 0 && !m->gs->allon[g];
}

/*
 * The scale and shift (gamma then beta, 2K floats) of the batch norm of
 * conv cv, whose channels unit group g gates: the weights' own, or, when
 * g is masked, gamma and beta times the masks, which the forward (fwd)
 * makes in g's segment of fold_d and the backward reads again.
 */
static const float *bn_affine(tt_model *m, const conv *cv, int g, int fwd)
{
	if (!gate_masked(m, g))
		return wt(m, cv->gamma);
	float *f = m->fold_d + 2 * m->gs->goff[g];
	if (fwd) {
		m->be->copy(f, wt(m, cv->gamma), 2 * (size_t)cv->K * sizeof(float));
		m->be->scale_cols(f, m->mask_d + m->gs->goff[g], 2, cv->K);
	}
	return f;
}

/* d gamma and d beta (one after the other) of a masked batch norm: the
 * mask times what bn_bwd computed at its scale. */
static void bn_affine_grad(tt_model *m, const conv *cv, int g)
{
	if (gate_masked(m, g))
		m->be->scale_cols(gr(m, cv->gamma), m->mask_d + m->gs->goff[g], 2, cv->K);
}

/* y (rows, units of group g) *= this forward's masks (a dense stage's
 * outputs, which no batch norm carries); nothing when every mask is 1. */
static void gate_units(tt_model *m, int g, float *y, int rows)
{
	if (gate_masked(m, g))
		m->be->scale_cols(y, m->mask_d + m->gs->goff[g], rows, m->gs->gn[g]);
}

/* score(g) += column dots of the gated output y and its gradient dy, when
 * the step wants scores */
static void gate_score(tt_model *m, int g, const float *y, const float *dy, int rows)
{
	if (g >= 0 && m->scoring)
		m->be->col_dot(y, dy, rows, m->gs->gn[g], m->score_d + m->gs->goff[g]);
}

/*
 * score(g) of the units this forward sampled off (gates.h: tt_gate_update
 * scores both ends): x is their ungated output, or with cv the input of
 * the batch norm cv that makes it (and ReLU with relu), recomputed from
 * the batch statistics bn_fwd kept; dy the gradient at the gated output,
 * before the mask zeroes it.  Nothing when every mask is 1.
 */
static void gate_off_score(tt_model *m, int g, const float *x, const conv *cv,
                           const float *dy, int rows, int relu)
{
	if (g < 0 || !m->scoring || m->gs->allon[g])
		return;
	const float *gamma = cv ? wt(m, cv->gamma) : NULL; /* the real scale, unmasked */
	m->be->off_dot(x, cv ? cv->smean : NULL, cv ? cv->sistd : NULL, gamma,
	               cv ? gamma + cv->K : NULL, relu, dy, m->mask_d + m->gs->goff[g],
	               rows, m->gs->gn[g], m->score_d + m->gs->goff[g]);
}

/* A dense stage's output gates, backward: the score, then dy *= mask. */
static void gate_units_bwd(tt_model *m, int g, const float *y, float *dy, int n)
{
	gate_score(m, g, y, dy, n);
	gate_units(m, g, dy, n);
}

/* Whether the branch of block st runs in this forward. */
static int layer_on(const tt_model *m, const stage *st)
{
	const gate_state *gs = m->gs;
	int i = gs->group[st->grp[0]].first;
	if (!st->branch)
		return 0;
	if (m->last_train)
		return gs->mask[i] != 0.0f;
	return !gs->pruned[i] && gs->t[i] >= 0.5f;
}

/*
 * A gated basic block: y = relu(skip(x) + v * F(x)) with u1 on conv1's
 * channels after BN1+ReLU and u2 on conv2's after BN2, both carried by
 * the batch norms.  v = 0 skips the branch: no convolution, no batch
 * norm (its running statistics stay), and with an identity shortcut the
 * block is the identity: y = relu(x) = x, x being a ReLU's output, so
 * its output is its input, not a copy.  When units of u2 were pruned
 * conv2 is narrower than the stream, and its output is added onto the
 * channels sidx names.  With the branch as wide as the stream and every
 * mask 1 this is the ungated block's arithmetic exactly.
 */
static void block_fwd_gated(tt_model *m, stage *st, const float *x, int n)
{
	const tt_backend *be = m->be;
	int rows = n * st->oh * st->ow, k2 = st->cv[1].K;
	size_t e = (size_t)rows * st->oc;
	st->ran = layer_on(m, st);
	if (!st->ran && !st->proj) {
		st->out = x;
		return;
	}
	float *o = st->t[4];
	/* the branch's output: straight into o when as wide as the stream,
	 * else into the pool (free until backward) to be scattered */
	float *f = k2 == st->oc ? o : m->g[1];
	if (st->ran) {
		conv_fwd(m, &st->cv[0], x, n, st->t[0]);
		bn_fwd(m, &st->cv[0], st->grp[1], 0, st->t[0], n, 1, st->t[1]);
		conv_fwd(m, &st->cv[1], st->t[1], n, st->t[2]);
		bn_fwd(m, &st->cv[1], st->grp[2], 0, st->t[2], n, 0, f);
	}
	if (st->ran && f == o) {
		if (st->proj) {
			conv_fwd(m, &st->cv[2], x, n, st->t[3]);
			bn_fwd(m, &st->cv[2], -1, 0, st->t[3], n, 0, m->g[0]);
			be->add_relu(o, m->g[0], e);
		} else {
			be->add_relu(o, x, e);
		}
	} else {
		if (st->proj) {
			conv_fwd(m, &st->cv[2], x, n, st->t[3]);
			bn_fwd(m, &st->cv[2], -1, 0, st->t[3], n, 0, o);
		} else {
			be->copy(o, x, e * sizeof(float));
		}
		if (st->ran)
			be->scatter_cols(o, st->oc, f, k2, st->sidx, rows);
		be->relu(o, e);
	}
	st->out = o;
}

/*
 * Its backward; ga, gb, gc are free pool buffers, dy is not one of them.
 * A block that was the identity passes dy on as its input's gradient:
 * the ReLU whose output x is masks it there (every stage before a block
 * ends in one).  u1 needs no multiply either: where its mask is 0, a1 is
 * 0 and relu_bwd zeroes the gradient, and BN1's scale carries the mask.
 * u2's score comes from BN2's own gradients: on a channel whose mask is
 * 1 the gated output is gamma * xhat + beta, so out . d = gamma dgamma +
 * beta dbeta (its gradients are this batch's alone: bn_bwd assigns
 * them); on a channel at 0 both are 0.  The layer gate's score, F . d,
 * is the sum of u2's (gates_collect_scores).
 */
static float *block_bwd_gated(tt_model *m, stage *st, const float *x, float *dy,
                              int n, int need_dx, float *ga, float *gb, float *gc)
{
	const tt_backend *be = m->be;
	const gate_state *gs = m->gs;
	int rows = n * st->oh * st->ow;
	size_t e = (size_t)rows * st->oc, in_e = (size_t)n * st->h * st->w * st->c;
	if (!st->ran && st->branch) {
		/* the branch did not run: its gradients (conv1, bn1, conv2, bn2,
		 * one run of the layout) are 0, and nothing else writes them */
		size_t b0 = st->cv[0].w, b1 = st->cv[1].gamma + 2 * (size_t)st->cv[1].K;
		be->zero(gr(m, b0), (b1 - b0) * sizeof(float));
	}
	if (!st->ran && !st->proj)
		return need_dx ? dy : NULL;
	be->relu_bwd(st->t[4], dy, e);            /* dy: d(v F + shortcut) */
	if (st->ran) {
		const conv *c1 = &st->cv[0], *c2 = &st->cv[1];
		int k1 = c1->K, k2 = c2->K, g1 = st->grp[1], g2 = st->grp[2];
		const float *src = dy;                /* d(gated conv2 output) */
		if (k2 != st->oc) {
			be->gather_cols(gc, k2, dy, st->oc, st->sidx, rows);
			src = gc;
		}
		gate_off_score(m, g2, st->t[2], c2, src, rows, 0);
		bn_bwd(m, c2, g2, st->t[2], src, n, ga);         /* ga: d conv2 out */
		be->zero(gb, (size_t)rows * k1 * sizeof(float));
		conv_bwd(m, c2, st->t[1], ga, n, gb);            /* gb: d gated a1 */
		gate_score(m, g1, st->t[1], gb, rows);
		gate_off_score(m, g1, st->t[0], c1, gb, rows, 1);
		be->relu_bwd(st->t[1], gb, (size_t)rows * k1);
		bn_bwd(m, c1, g1, st->t[0], gb, n, ga);          /* ga: d conv1 out */
		if (need_dx)
			be->zero(gc, in_e * sizeof(float));
		conv_bwd(m, c1, x, ga, n, need_dx ? gc : NULL);
		if (m->scoring) {
			const float *dg = gr(m, c2->gamma), *gamma = wt(m, c2->gamma);
			float *sc = m->score_d + gs->goff[g2];
			be->col_dot(gamma, dg, 1, k2, sc);
			be->col_dot(gamma + k2, dg + k2, 1, k2, sc);
		}
	} else if (need_dx) {
		be->zero(gc, in_e * sizeof(float));
	}
	if (st->proj) {
		bn_bwd(m, &st->cv[2], -1, st->t[3], dy, n, gb); /* gb: d proj out */
		conv_bwd(m, &st->cv[2], x, gb, n, need_dx ? gc : NULL);
	} else if (need_dx) {
		be->add(gc, dy, in_e);
	}
	return need_dx ? gc : NULL;
}

static void gates_prepare(tt_model *m);
static void gates_collect_scores(tt_model *m);

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
		/* the unit gates, if any, ride on the batch norm (bn_affine) */
		bn_fwd(m, &st->cv[0], st->grp[1], fz, c, n, 1, a);
		st->out = a;
		if (st->pool) {
			float *p = fz ? dst : st->t[2];
			be->maxpool(a, n, st->cv[0].s.oh, st->cv[0].s.ow, st->oc, 2, 2, p);
			st->out = p;
		}
		break;
	}
	case ST_BLOCK: {
		if (st->grp[0] >= 0) {
			block_fwd_gated(m, st, x, n);
			break;
		}
		float *c1 = fz ? pick(pool, m->npool, x, dst) : st->t[0];
		float *a1 = fz ? c1 : st->t[1];
		float *c2 = fz ? dst : st->t[2];
		float *o = fz ? c2 : st->t[4];
		conv_fwd(m, &st->cv[0], x, n, c1);
		bn_fwd(m, &st->cv[0], -1, fz, c1, n, 1, a1);
		conv_fwd(m, &st->cv[1], a1, n, c2);
		bn_fwd(m, &st->cv[1], -1, fz, c2, n, 0, o);
		size_t e = (size_t)n * st->oh * st->ow * st->oc;
		if (st->proj) {
			/* frozen: a1 is spent; trainable: the pool is free until
			 * backward, the frozen prefix's output being in boundary */
			float *cp = fz ? a1 : st->t[3];
			float *bp = fz ? a1 : m->g[0];
			conv_fwd(m, &st->cv[2], x, n, cp);
			bn_fwd(m, &st->cv[2], -1, fz, cp, n, 0, bp);
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
		if (st->grp[1] >= 0 && m->last_train && !m->gs->allon[st->grp[1]])
			be->copy(st->t[1], y, (size_t)n * st->dout * sizeof(float));
		gate_units(m, st->grp[1], y, n);
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

/* Take the weights w names, NULL members meaning the model's own; the
 * prefix's only when prefix (tt_model_forward_suffix keeps the last). */
static void use_weights(tt_model *m, const tt_model_weights *w, int prefix)
{
	const float *p = w && w->params ? w->params : m->params;
	if (prefix)
		m->wpre = p;
	m->wsuf = w && w->suffix ? w->suffix : p + m->toff;
	m->keep_stats = w ? w->keep_stats : 0;
}

/* Stages from..n-1 of the last forward's batch; returns the logits. */
static const float *run_stages(tt_model *m, int from)
{
	if (m->gs)
		gates_prepare(m);
	const float *in = from ? m->st[from - 1].out : m->x;
	for (int s = from; s < m->n; s++) {
		stage_fwd(m, &m->st[s], in, m->last_n);
		in = m->st[s].out;
	}
	return in;
}

const float *tt_model_forward_on(tt_model *m, const tt_model_weights *w,
                                 const float *x, int n, int train)
{
	TT_ASSERT(n >= 1 && n <= m->batch);
	m->x = x;
	m->last_n = n;
	m->last_train = train;
	m->dx_in = NULL; /* the pool it lies in is scratch again */
	use_weights(m, w, 1);
	return run_stages(m, 0);
}

const float *tt_model_forward(tt_model *m, const float *x, int n, int train)
{
	return tt_model_forward_on(m, NULL, x, n, train);
}

/* The first trainable stage's input is still where the last forward
 * left it: the boundary buffer (which nothing but a forward writes) or,
 * with no frozen prefix, the caller's x. */
const float *tt_model_forward_suffix(tt_model *m, const tt_model_weights *w)
{
	TT_ASSERT(m->last_n >= 1);
	m->dx_in = NULL;
	use_weights(m, w, 0);
	return run_stages(m, m->first);
}

float *tt_model_boundary(tt_model *m, size_t *per_example)
{
	if (!m->first)
		return NULL;
	const stage *st = &m->st[m->first - 1];
	if (per_example)
		*per_example = (size_t)st->oh * st->ow * st->oc;
	return m->boundary;
}

/* With a frozen prefix the boundary holds rows the caller may have
 * filled beyond the last forward's; without one, the first stage reads
 * the last forward's x, which has only its rows. */
const float *tt_model_forward_suffix_n(tt_model *m, const tt_model_weights *w, int n)
{
	TT_ASSERT(m->last_n >= 1 && n >= 1 && n <= m->batch);
	TT_ASSERT(m->first > 0 || n == m->last_n);
	m->last_n = n;
	return tt_model_forward_suffix(m, w);
}

int tt_model_prefix_pure(const tt_model *m)
{
	return m->first > 0 && (m->prefix_fixed || !m->max_frozen_k);
}

double tt_model_prefix_macs(const tt_model *m)
{
	return stages_macs(m, 0, m->first);
}

size_t tt_model_prefix_nstate(const tt_model *m)
{
	return m->prefix_nstate;
}

/* The frozen prefix alone on x, into the boundary buffer; nothing left
 * for a backward or a suffix forward. */
static void prefix_fwd(tt_model *m, const float *x, int n, int train)
{
	TT_ASSERT(m->first > 0 && n >= 1 && n <= m->batch);
	m->x = x;
	m->last_train = train;
	m->dx_in = NULL;
	use_weights(m, NULL, 1);
	const float *in = x;
	for (int s = 0; s < m->first; s++) {
		stage_fwd(m, &m->st[s], in, n);
		in = m->st[s].out;
	}
	m->last_n = 0;
}

void tt_model_calibrate(tt_model *m, const float *x, int n, int t)
{
	TT_ASSERT(t >= 0);
	m->calibrating = 1;
	m->bn_mom = 1.0f / (float)(t + 1);
	prefix_fwd(m, x, n, 1);
	m->calibrating = 0;
}

void tt_model_forward_prefix(tt_model *m, const float *x, int n)
{
	prefix_fwd(m, x, n, 0);
}

const float *tt_model_forward_boundary(tt_model *m, int n, int train)
{
	TT_ASSERT(m->first > 0 && n >= 1 && n <= m->batch);
	m->x = NULL;
	m->last_n = n;
	m->last_train = train;
	m->dx_in = NULL;
	use_weights(m, NULL, 1);
	m->st[m->first - 1].out = m->boundary;
	return run_stages(m, m->first);
}

static int put_tensor(tt_model_tensor *t, int i, int max, int kind, size_t off, int out,
                      int fan)
{
	if (i < max)
		t[i] = (tt_model_tensor){ kind, off, out, fan };
	return i + 1;
}

static int put_conv(tt_model_tensor *t, int i, int max, const conv *cv)
{
	i = put_tensor(t, i, max, TT_TENSOR_CONV, cv->w, cv->K, cv->s.k * cv->s.k * cv->s.c);
	i = put_tensor(t, i, max, TT_TENSOR_BN_GAMMA, cv->gamma, cv->K, 1);
	return put_tensor(t, i, max, TT_TENSOR_BN_BETA, cv->gamma + (size_t)cv->K, cv->K, 1);
}

int tt_model_tensors(const tt_model *m, int s, tt_model_tensor *t, int max)
{
	const stage *st = &m->st[s];
	int i = 0;
	switch (st->kind) {
	case ST_CONV:
		i = put_conv(t, i, max, &st->cv[0]);
		break;
	case ST_BLOCK:
		for (int k = 0; k < (st->proj ? 3 : 2); k++)
			i = put_conv(t, i, max, &st->cv[k]);
		break;
	default:
		i = put_tensor(t, i, max, TT_TENSOR_DENSE_W, st->dw, st->dout, st->din);
		i = put_tensor(t, i, max, TT_TENSOR_DENSE_B, st->db, st->dout, 1);
		break;
	}
	return i;
}

/*
 * Without weights the backend sums plainly and scales the gradient by
 * 1/n, and the sum is divided here, in double: the mean exactly as it
 * was computed before per-example weights existed.  With weights they
 * go up as they are (scale 1), so the sum is the weighted loss.
 */
double tt_model_loss_ex(tt_model *m, const int *labels, int n, float smoothing,
                        const float *wt, int want_grad, float *per_ex, int *correct)
{
	TT_ASSERT(n == m->last_n);
	const tt_backend *be = m->be;
	const float *logits = m->st[m->n - 1].out;
	if (wt)
		be->upload(m->exw, wt, (size_t)n * sizeof *wt);
	double sum = be->xent(logits, labels, n, m->classes, smoothing,
	                      wt ? m->exw : NULL, wt ? 1.0f : 1.0f / (float)n,
	                      want_grad ? m->dlogits : NULL, per_ex ? m->exloss : NULL,
	                      correct);
	if (per_ex)
		be->download(per_ex, m->exloss, (size_t)n * sizeof *per_ex);
	return wt ? sum : sum / n;
}

double tt_model_loss(tt_model *m, const int *labels, int n, float smoothing,
                     int want_grad, int *correct)
{
	return tt_model_loss_ex(m, labels, n, smoothing, NULL, want_grad, NULL, correct);
}

/* ---- backward ---------------------------------------------------------- */

/* dy is the gradient of this stage's output; it may be overwritten.
 * Returns the gradient of its input (in a g buffer), or NULL when none
 * is wanted (wants_dx). */
static float *stage_bwd(tt_model *m, stage *st, const float *x, float *dy, int n)
{
	const tt_backend *be = m->be;
	int need_dx = wants_dx(m, (int)(st - m->st));
	/* dense stages need one buffer besides dy, the head's dy (dlogits)
	 * is outside the pool, conv stages need three */
	float *ga = pick(m->g, m->npool, dy, NULL);
	size_t in_e = (size_t)n * st->h * st->w * st->c;
	switch (st->kind) {
	case ST_DENSE:
	case ST_HEAD_DENSE:
		if (st->grp[1] >= 0 && !m->gs->allon[st->grp[1]])
			gate_off_score(m, st->grp[1], st->t[1], NULL, dy, n, 0);
		gate_units_bwd(m, st->grp[1], st->t[0], dy, n);
		dense_bwd(m, st, x, dy, st->kind == ST_DENSE ? st->t[0] : NULL, n,
		          need_dx ? ga : NULL);
		return need_dx ? ga : NULL;
	default:
		break;
	}
	float *gb = pick(m->g, m->npool, dy, ga);
	if (st->kind == ST_HEAD_GAP) {
		dense_bwd(m, st, st->t[0], dy, NULL, n, need_dx ? ga : NULL);
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
		int rows = n * cv->s.oh * cv->s.ow;
		gate_score(m, st->grp[1], st->out, dy, n * st->oh * st->ow);
		if (!st->pool)
			gate_off_score(m, st->grp[1], st->t[0], cv, dy, rows, 1);
		if (st->pool) {
			be->maxpool_bwd(st->t[1], dy, n, cv->s.oh, cv->s.ow, st->oc, 2, 2, ga);
			da = ga;
		}
		/* d(ungated) = d(gated) * mask: the ReLU's mask (the gated output
		 * is 0 where the mask is) and the batch norm's scale apply it */
		be->relu_bwd(st->t[1], da, (size_t)rows * st->oc);
		bn_bwd(m, cv, st->grp[1], st->t[0], da, n, gb);
		if (need_dx)
			be->zero(gc, in_e * sizeof(float));
		conv_bwd(m, cv, x, gb, n, need_dx ? gc : NULL);
		return need_dx ? gc : NULL;
	}
	case ST_BLOCK: {
		if (st->grp[0] >= 0)
			return block_bwd_gated(m, st, x, dy, n, need_dx, ga, gb, gc);
		size_t e = (size_t)n * st->oh * st->ow * st->oc;
		be->relu_bwd(st->t[4], dy, e);            /* dy: d(branch + shortcut) */
		bn_bwd(m, &st->cv[1], -1, st->t[2], dy, n, ga); /* ga: d conv2 out */
		be->zero(gb, e * sizeof(float));
		conv_bwd(m, &st->cv[1], st->t[1], ga, n, gb);   /* gb: d a1 */
		be->relu_bwd(st->t[1], gb, e);
		bn_bwd(m, &st->cv[0], -1, st->t[0], gb, n, ga); /* ga: d conv1 out */
		if (need_dx)
			be->zero(gc, in_e * sizeof(float));
		conv_bwd(m, &st->cv[0], x, ga, n, need_dx ? gc : NULL);
		if (st->proj) {
			bn_bwd(m, &st->cv[2], -1, st->t[3], dy, n, gb); /* gb: d proj out */
			conv_bwd(m, &st->cv[2], x, gb, n, need_dx ? gc : NULL);
		} else if (need_dx) {
			be->add(gc, dy, in_e);
		}
		return need_dx ? gc : NULL;
	}
	}
	return NULL;
}

void tt_model_backward_into(tt_model *m, float *grads)
{
	TT_ASSERT(m->last_train);
	int n = m->last_n;
	m->gout = grads ? grads : m->grads;
	/* No zeroing pass: every trainable parameter's gradient has exactly
	 * one writer in a backward (its layer's GEMM with beta 0, bias_grad,
	 * bn_bwd, conv_bwd), and each assigns.  The one tensor group without
	 * a writer, the branch of a gated block that did not run, is zeroed
	 * by block_bwd_gated. */
	if (m->nunits && m->scoring)
		m->be->zero(m->score_d, m->nunits * sizeof(float));
	float *dy = m->dlogits;
	for (int s = m->n - 1; s >= m->first; s--) {
		const float *x = s ? m->st[s - 1].out : m->x;
		dy = stage_bwd(m, &m->st[s], x, dy, n);
	}
	m->dx_in = dy; /* stage 0's input gradient, or NULL when not wanted */
	if (m->gs)
		gates_collect_scores(m);
}

void tt_model_backward(tt_model *m)
{
	tt_model_backward_into(m, NULL);
}

const float *tt_model_input_grad(const tt_model *m)
{
	return m->dx_in;
}

/* ---- gates: the state and the cost model ------------------------------- */

static void gates_free(gate_state *gs)
{
	if (!gs)
		return;
	free(gs->spec);
	free(gs->group);
	free(gs->term);
	free(gs->gn);
	free(gs->orig);
	free(gs->goff);
	free(gs->allon);
	free(gs->nodecay);
	free(gs->t);
	free(gs->mask);
	free(gs->score);
	free(gs->pruned);
	free(gs->present);
	free(gs->stage);
	free(gs->unit);
	free(gs->hbuf);
	free(gs);
}

/* The unit group feeding stage s's input, -1 when its input is ungated
 * (the data, the stem, a frozen stage, a residual stream). */
static int in_group(const tt_model *m, int s)
{
	if (s == 0)
		return -1;
	const stage *p = &m->st[s - 1];
	return (p->kind == ST_DENSE || p->kind == ST_CONV) ? p->grp[1] : -1;
}

static int add_group(gate_state *gs, int kind, int s, int count)
{
	tt_gate_group *g = &gs->group[gs->ngroups];
	g->kind = kind;
	g->stage = s;
	g->first = gs->ngates;
	g->count = count;
	g->offscore = 0;
	g->branch = -1;
	gs->ngates += count;
	return gs->ngroups++;
}

static void add_term(gate_state *gs, double macs, double params, int layer, int a,
                     int b)
{
	gs->term[gs->nterms++] = (tt_gate_term){ .macs = macs, .params = params,
	                                         .layer = layer, .a = a, .b = b };
}

/* n if group g is absent, else 1: a group's factor replaces its width. */
static double width_or_1(int g, int n) { return g < 0 ? n : 1; }

/* The cost terms of a convolution with its BN (methods.md): W per unit of
 * in x out, gamma and beta per output unit. */
static void conv_terms(gate_state *gs, const conv *cv, int layer, int gin, int gout)
{
	double kk = (double)cv->s.k * cv->s.k, hw = (double)cv->s.oh * cv->s.ow;
	double w = kk * width_or_1(gin, cv->s.c) * width_or_1(gout, cv->K);
	add_term(gs, w * hw, w, layer, gin, gout);
	add_term(gs, 0, 2 * width_or_1(gout, cv->K), layer, gout, -1);
}

/* A dense layer (din, dout) with its bias. */
static void dense_terms(gate_state *gs, const stage *st, int gin, int gout)
{
	double w = width_or_1(gin, st->din) * width_or_1(gout, st->dout);
	add_term(gs, w, w, -1, gin, gout);
	add_term(gs, 0, width_or_1(gout, st->dout), -1, gout, -1);
}

/*
 * Terms covering every MAC and parameter of the dense network, stage by
 * stage (a frozen or ungated stage's factors are all constant).  Their
 * sums at t = 1 are tt_model_macs and tt_model_nparams.
 */
static void gates_terms(tt_model *m, gate_state *gs)
{
	for (int s = 0; s < m->n; s++) {
		const stage *st = &m->st[s];
		int gin = in_group(m, s), L = st->grp[0], u1 = st->grp[1], u2 = st->grp[2];
		switch (st->kind) {
		case ST_DENSE:
		case ST_HEAD_DENSE:
			dense_terms(gs, st, gin, u1);
			break;
		case ST_HEAD_GAP:
			dense_terms(gs, st, gin, -1);
			break;
		case ST_CONV:
			conv_terms(gs, &st->cv[0], -1, gin, u1);
			break;
		case ST_BLOCK:
			conv_terms(gs, &st->cv[0], L, -1, u1);
			conv_terms(gs, &st->cv[1], L, u1, u2);
			if (st->proj)
				conv_terms(gs, &st->cv[2], -1, -1, -1);
			break;
		}
	}
}

#define GS_ALLOC(p, n)                                                     \
	do {                                                               \
		size_t n_ = (size_t)(n);                                   \
		if (!((p) = calloc(n_ ? n_ : 1, sizeof *(p))))             \
			goto oom;                                          \
	} while (0)

/* The gates of the fresh dense model m: groups, terms, t = 1. */
static int gates_new(tt_model *m, const tt_model_config *cfg)
{
	gate_state *gs = calloc(1, sizeof *gs);
	if (!gs)
		return -1;
	m->gs = gs;
	gs->cfg = *cfg;
	if (!(gs->spec = strdup(cfg->spec)))
		goto oom;
	gs->cfg.spec = gs->spec;
	int ng = 0, ngr = 0;
	for (int s = m->first; s < m->n; s++) {
		const stage *st = &m->st[s];
		if (st->kind == ST_BLOCK)
			ng += 1 + st->cv[0].K + st->cv[1].K, ngr += 3;
		else if (st->kind == ST_DENSE || (st->kind == ST_CONV && s > 0))
			ng += st->oc, ngr += 1;
	}
	GS_ALLOC(gs->group, ngr);
	GS_ALLOC(gs->term, 6 * m->n); /* at most three convs with BN a stage */
	for (int s = 0; s < TT_MEM_MAX_STAGES; s++)
		gs->sg[s][0] = gs->sg[s][1] = gs->sg[s][2] = -1;
	for (int s = m->first; s < m->n; s++) {
		stage *st = &m->st[s];
		if (st->kind == ST_BLOCK) {
			st->grp[0] = add_group(gs, TT_GATE_LAYER, s, 1);
			st->grp[1] = add_group(gs, TT_GATE_UNIT, s, st->cv[0].K);
			st->grp[2] = add_group(gs, TT_GATE_UNIT, s, st->cv[1].K);
			gs->group[st->grp[1]].offscore = gs->group[st->grp[2]].offscore = 1;
			gs->group[st->grp[0]].branch = st->grp[2];
		} else if (st->kind == ST_DENSE || (st->kind == ST_CONV && s > 0)) {
			st->grp[1] = add_group(gs, TT_GATE_UNIT, s, st->oc);
			/* a pooled conv's off units would need their pooled output */
			gs->group[st->grp[1]].offscore = !st->pool;
		}
		memcpy(gs->sg[s], st->grp, sizeof st->grp);
	}
	gates_terms(m, gs);
	GS_ALLOC(gs->gn, gs->ngroups);
	GS_ALLOC(gs->orig, gs->ngates);
	GS_ALLOC(gs->goff, gs->ngroups);
	GS_ALLOC(gs->allon, gs->ngroups);
	GS_ALLOC(gs->nodecay, gs->ngroups);
	GS_ALLOC(gs->t, gs->ngates);
	GS_ALLOC(gs->mask, gs->ngates);
	GS_ALLOC(gs->score, gs->ngates);
	GS_ALLOC(gs->pruned, gs->ngates);
	GS_ALLOC(gs->present, gs->ngates);
	GS_ALLOC(gs->stage, gs->ngates);
	GS_ALLOC(gs->unit, gs->ngates);
	GS_ALLOC(gs->hbuf, gs->ngates);
	for (int g = 0; g < gs->ngroups; g++) {
		const tt_gate_group *gr = &gs->group[g];
		/* unit ids number a stage's unit gates from 0, u2 after u1 */
		int u0 = gr->kind == TT_GATE_LAYER ? -1
		       : g > 0 && gs->group[g - 1].stage == gr->stage &&
		         gs->group[g - 1].kind == TT_GATE_UNIT ? gs->group[g - 1].count : 0;
		gs->gn[g] = gr->count;
		for (int k = 0; k < gr->count; k++) {
			int i = gr->first + k;
			gs->orig[i] = k;
			gs->t[i] = gs->mask[i] = 1.0f;
			gs->present[i] = 1;
			gs->stage[i] = gr->stage;
			gs->unit[i] = u0 < 0 ? -1 : u0 + k;
		}
	}
	return 0;
oom:
	return -1; /* m->gs is freed with m */
}

/* Each unit group's segment in the per-unit arrays, at the widths gn
 * says; returns their total. */
static size_t gates_offsets(gate_state *gs)
{
	size_t off = 0;
	for (int g = 0; g < gs->ngroups; g++) {
		gs->goff[g] = off;
		if (gs->group[g].kind == TT_GATE_UNIT)
			off += (size_t)gs->gn[g];
	}
	return off;
}

/* The device side: mask, score, decay coefficient and |W|^2 per present
 * unit, room for the masked scale and shift, the scatter indices of
 * narrowed blocks. */
static int gates_alloc(tt_model *m)
{
	gate_state *gs = m->gs;
	size_t off = gates_offsets(gs);
	m->nunits = off;
	if (off) {
		size_t b = off * sizeof(float);
		NEED(m->mask_d = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, b));
		NEED(m->score_d = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, b));
		NEED(m->coef_d = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, b));
		NEED(m->wsq_d = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, b));
		NEED(m->fold_d = dev_alloc(m, TT_MEM_MODEL, TT_MEM_WORK, 2 * b));
	}
	for (int s = m->first; s < m->n; s++) {
		stage *st = &m->st[s];
		if (st->kind != ST_BLOCK || !st->branch || st->cv[1].K == st->oc)
			continue;
		const tt_gate_group *gr = &gs->group[st->grp[2]];
		size_t b = (size_t)st->cv[1].K * sizeof(int);
		NEED(st->sidx = dev_alloc(m, s, TT_MEM_WORK, b));
		/* u2's original unit is the stream channel it adds onto */
		if (!m->dry)
			m->be->upload(st->sidx, gs->orig + gr->first, b);
	}
	return 0;
oom:
	return -1;
}

/*
 * Note all-on groups and upload this forward's masks in column order
 * (none when every group is all on: nothing reads them then).  A train
 * forward wants scores unless its masks are those tt_model_gate_all_on
 * set, untouched since.
 */
static void gates_prepare(tt_model *m)
{
	gate_state *gs = m->gs;
	float *h = gs->hbuf;
	int masked = 0;
	for (int g = 0; g < gs->ngroups; g++) {
		const tt_gate_group *gr = &gs->group[g];
		if (gr->kind != TT_GATE_UNIT)
			continue;
		int allon = 1;
		for (int k = 0; k < gs->gn[g]; k++) {
			int i = gr->first + gs->orig[gr->first + k];
			float v = m->last_train ? gs->mask[i]
			        : !gs->pruned[i] && gs->t[i] >= 0.5f ? 1.0f : 0.0f;
			TT_ASSERT(v >= 0.0f); /* a batch norm's scale carries it */
			h[gs->goff[g] + k] = v;
			allon &= v == 1.0f;
		}
		gs->allon[g] = allon;
		masked |= !allon;
	}
	if (m->last_train) {
		int fixed = gs->fixed;
		for (int i = 0; i < gs->ngates && fixed; i++)
			fixed = gs->mask[i] == (float)(gs->present[i] && !gs->pruned[i]);
		m->scoring = !fixed;
	}
	if (masked)
		m->be->upload(m->mask_d, h, m->nunits * sizeof(float));
}

/* Device scores, in column order, to gs->score by gate; a layer gate's is
 * the sum of its u2's when its branch ran. */
static void gates_collect_scores(tt_model *m)
{
	gate_state *gs = m->gs;
	float *h = gs->hbuf;
	memset(gs->score, 0, (size_t)gs->ngates * sizeof *gs->score);
	if (!m->scoring)
		return;
	if (m->nunits)
		m->be->download(h, m->score_d, m->nunits * sizeof(float));
	for (int g = 0; g < gs->ngroups; g++) {
		const tt_gate_group *gr = &gs->group[g];
		if (gr->kind != TT_GATE_UNIT)
			continue;
		for (int k = 0; k < gs->gn[g]; k++)
			gs->score[gr->first + gs->orig[gr->first + k]] = h[gs->goff[g] + k];
	}
	for (int s = m->first; s < m->n; s++) {
		const stage *st = &m->st[s];
		if (st->grp[0] < 0 || !st->ran)
			continue;
		const tt_gate_group *u2 = &gs->group[st->grp[2]];
		double sum = 0;
		for (int k = 0; k < u2->count; k++) /* F . d: the channels on */
			if (gs->mask[u2->first + k] != 0.0f)
				sum += gs->score[u2->first + k];
		gs->score[gs->group[st->grp[0]].first] = (float)sum;
	}
}

/* ---- gates: the public side -------------------------------------------- */

int tt_model_gates(const tt_model *m) { return m->gs ? m->gs->ngates : 0; }
float *tt_model_gate_probs(tt_model *m) { return m->gs ? m->gs->t : NULL; }
float *tt_model_gate_mask(tt_model *m) { return m->gs ? m->gs->mask : NULL; }
unsigned char *tt_model_gate_pruned(tt_model *m) { return m->gs ? m->gs->pruned : NULL; }
const unsigned char *tt_model_gate_present(const tt_model *m) { return m->gs ? m->gs->present : NULL; }
const float *tt_model_gate_scores(const tt_model *m) { return m->gs ? m->gs->score : NULL; }

void tt_model_gate_desc(const tt_model *m, tt_gate_cost *c)
{
	memset(c, 0, sizeof *c);
	if (!m->gs)
		return;
	c->group = m->gs->group;
	c->ngroups = m->gs->ngroups;
	c->term = m->gs->term;
	c->nterms = m->gs->nterms;
	c->ngates = m->gs->ngates;
	tt_gate_cost_init(c);
}

void tt_model_gate_ids(const tt_model *m, int *stage, int *unit)
{
	if (!m->gs)
		return;
	size_t n = (size_t)m->gs->ngates * sizeof(int);
	if (stage)
		memcpy(stage, m->gs->stage, n);
	if (unit)
		memcpy(unit, m->gs->unit, n);
}

void tt_model_gate_sample(tt_model *m, tt_rng *r)
{
	gate_state *gs = m->gs;
	if (!gs)
		return;
	for (int i = 0; i < gs->ngates; i++)
		gs->mask[i] = gs->present[i] && !gs->pruned[i] && tt_rng_uniform(r) < gs->t[i];
	gs->fixed = 0;
}

void tt_model_gate_all_on(tt_model *m)
{
	gate_state *gs = m->gs;
	if (!gs)
		return;
	for (int i = 0; i < gs->ngates; i++)
		gs->mask[i] = gs->present[i] && !gs->pruned[i];
	gs->fixed = 1;
}

/* out(r) += |row r|^2 of the (rows, cols) parameter tensor at offset off */
static void sumsq_rows(tt_model *m, size_t off, float *out, int rows, int cols)
{
	m->be->row_dot(m->params + off, m->params + off, rows, cols, out);
}

/*
 * The weights the units of unit group j (1: u1 or a dense/conv stage's
 * outputs, 2: u2) of stage st own, one row per unit: the filter (or dense
 * row) and the BN gamma and beta (or the bias).  fn gets every tensor's
 * offset and row length, with vec the group's per-unit vector.  The one
 * place that says what a unit owns, for |W|^2 and for the weight prior.
 */
typedef void (*owned_fn)(tt_model *m, size_t off, float *vec, int rows, int cols);

static void owned_rows(tt_model *m, const stage *st, int j, owned_fn fn, float *vec)
{
	if (st->kind == ST_DENSE) {
		fn(m, st->dw, vec, st->dout, st->din);
		fn(m, st->db, vec, st->dout, 1);
		return;
	}
	const conv *cv = &st->cv[st->kind == ST_BLOCK ? j - 1 : 0];
	fn(m, cv->w, vec, cv->K, cv->s.k * cv->s.k * cv->s.c);
	fn(m, cv->gamma, vec, cv->K, 1);
	fn(m, cv->gamma + cv->K, vec, cv->K, 1);
}

/*
 * The sums of squares are taken on the device, one row of a weight
 * tensor per unit, so only one float per unit comes back.  A unit owns
 * its filter (or dense row) and its BN gamma and beta (or its bias).
 */
/* Over the owned rows of every unit group: dec with its column of dbase
 * where dec is given and the group has a prior (nodecay 0), else plain
 * with its column of pbase when plain is given. */
static void group_rows(tt_model *m, owned_fn plain, float *pbase, owned_fn dec,
                       float *dbase)
{
	gate_state *gs = m->gs;
	for (int s = m->first; s < m->n; s++) {
		const stage *st = &m->st[s];
		for (int j = 1; j <= 2; j++) {
			int g = st->grp[j];
			if (g < 0)
				continue;
			if (dec && !gs->nodecay[g])
				owned_rows(m, st, j, dec, dbase + gs->goff[g]);
			else if (plain)
				owned_rows(m, st, j, plain, pbase + gs->goff[g]);
		}
	}
}

/* wsq_d (the device sums of squares, by column) to wsq and n by gate; a
 * layer gate's the sum of its units' */
static void wsq_collect(tt_model *m, double *wsq, double *n)
{
	gate_state *gs = m->gs;
	float *h = gs->hbuf;
	m->be->download(h, m->wsq_d, m->nunits * sizeof(float));
	for (int s = m->first; s < m->n; s++) {
		const stage *st = &m->st[s];
		double lsq = 0, ln = 0;
		for (int j = 1; j <= 2; j++) {
			int g = st->grp[j];
			if (g < 0)
				continue;
			const tt_gate_group *gr = &gs->group[g];
			const conv *cv = &st->cv[st->kind == ST_BLOCK ? j - 1 : 0];
			double cnt = st->kind == ST_DENSE ? st->din + 1.0
			           : (double)cv->s.k * cv->s.k * cv->s.c + 2;
			for (int k = 0; k < gs->gn[g]; k++) {
				int i = gr->first + gs->orig[gr->first + k];
				wsq[i] = h[gs->goff[g] + k];
				if (n)
					n[i] = cnt;
				lsq += wsq[i];
				ln += cnt;
			}
		}
		if (st->grp[0] >= 0 && st->branch) {
			int i = gs->group[st->grp[0]].first;
			wsq[i] = lsq;
			if (n)
				n[i] = ln;
		}
	}
}

void tt_model_gate_wsq(tt_model *m, double *wsq, double *n)
{
	gate_state *gs = m->gs;
	if (!gs)
		return;
	memset(wsq, 0, (size_t)gs->ngates * sizeof *wsq);
	if (n)
		memset(n, 0, (size_t)gs->ngates * sizeof *n);
	if (!m->nunits)
		return;
	m->be->zero(m->wsq_d, m->nunits * sizeof(float));
	group_rows(m, sumsq_rows, m->wsq_d, NULL, NULL);
	wsq_collect(m, wsq, n);
}

/* grads += coef(row) * params over a (rows, cols) tensor at offset off */
static void decay_rows(tt_model *m, size_t off, float *coef, int rows, int cols)
{
	m->be->row_axpy(m->grads + (off - m->toff), m->params + off, coef, rows, cols);
}

/* The prior's coefficients lam(t_eff) - wd by column into coef_d, and
 * nodecay per group; 0 when every one is 0 (nothing to add). */
static int decay_coefs(tt_model *m, double lam_on, double lam_off, double wd)
{
	gate_state *gs = m->gs;
	float *h = gs->hbuf;
	int any = 0;
	/* a group whose units are all at 1 (with lam_on = wd) costs nothing */
	for (int s = m->first; s < m->n; s++) {
		const stage *st = &m->st[s];
		double tl = st->grp[0] >= 0 ? gs->t[gs->group[st->grp[0]].first] : 1.0;
		for (int j = 1; j <= 2; j++) {
			int g = st->grp[j];
			if (g < 0)
				continue;
			const tt_gate_group *gr = &gs->group[g];
			int zero = 1;
			for (int k = 0; k < gs->gn[g]; k++) {
				double te = tl * gs->t[gr->first + gs->orig[gr->first + k]];
				double c = lam_on + (lam_off - lam_on) * (1 - te) - wd;
				h[gs->goff[g] + k] = (float)c;
				zero &= (float)c == 0.0f;
			}
			gs->nodecay[g] = zero;
			any |= !zero;
		}
	}
	if (any)
		m->be->upload(m->coef_d, h, m->nunits * sizeof(float));
	return any;
}

void tt_model_gate_decay(tt_model *m, double lam_on, double lam_off, double wd)
{
	gate_state *gs = m->gs;
	if (!gs || !m->nunits || !decay_coefs(m, lam_on, lam_off, wd))
		return; /* every gate at 1 and lam_on = wd: nothing to add */
	group_rows(m, NULL, NULL, decay_rows, m->coef_d);
}

/* |W|^2 into wsq_d's columns parallel to coef's, and the prior, in one pass */
static void sumsq_decay_rows(tt_model *m, size_t off, float *coef, int rows, int cols)
{
	m->be->row_sumsq_axpy(m->grads + (off - m->toff), m->params + off, coef, rows, cols,
	                      m->wsq_d + (coef - m->coef_d));
}

void tt_model_gate_wsq_decay(tt_model *m, double *wsq, double lam_on, double lam_off,
                             double wd)
{
	gate_state *gs = m->gs;
	if (!gs)
		return;
	memset(wsq, 0, (size_t)gs->ngates * sizeof *wsq);
	if (!m->nunits)
		return;
	/* without any prior every group is nodecay: |W|^2 alone */
	decay_coefs(m, lam_on, lam_off, wd);
	m->be->zero(m->wsq_d, m->nunits * sizeof(float));
	group_rows(m, sumsq_rows, m->wsq_d, sumsq_decay_rows, m->coef_d);
	wsq_collect(m, wsq, NULL);
}

/* ---- gates: compaction ------------------------------------------------- */

/*
 * dst (no, kk, ni) from src (., kk, si): rows ro[o] (NULL: o) and, along
 * the innermost axis, ri[i] (NULL: i).  One tensor of the layout; a conv
 * W (K, k, k, C) is kk = k*k.
 */
static void take(float *dst, const float *src, int no, const int *ro, int kk, int ni,
                 const int *ri, int si)
{
	for (int o = 0; o < no; o++)
		for (int p = 0; p < kk; p++) {
			const float *a = src + ((size_t)(ro ? ro[o] : o) * kk + p) * si;
			float *b = dst + ((size_t)o * kk + p) * ni;
			for (int i = 0; i < ni; i++)
				b[i] = a[ri ? ri[i] : i];
		}
}

/* One conv with its BN from old oc to new nc: W, gamma, beta (state 0) or
 * the running mean and var (state 1). */
static void take_conv(float *dst, const float *src, const conv *nc, const conv *oc,
                      const int *ro, const int *ri, int state)
{
	if (state) {
		take(dst + nc->run, src + oc->run, nc->K, ro, 1, 1, NULL, 1);
		take(dst + nc->run + nc->K, src + oc->run + oc->K, nc->K, ro, 1, 1, NULL, 1);
		return;
	}
	take(dst + nc->w, src + oc->w, nc->K, ro, nc->s.k * nc->s.k, nc->s.c, ri, oc->s.c);
	take(dst + nc->gamma, src + oc->gamma, nc->K, ro, 1, 1, NULL, 1);
	take(dst + nc->gamma + nc->K, src + oc->gamma + oc->K, nc->K, ro, 1, 1, NULL, 1);
}

/*
 * A parameter-shaped (state 0) or state-shaped (1) array of the old model
 * o to the layout of the new one, nm: pos[g] lists, for each column of
 * unit group g left in nm, its column in o.
 */
static void remap(const tt_model *o, const tt_model *nm, int *const *pos,
                  const float *src, float *dst, int state)
{
	for (int s = 0; s < o->n; s++) {
		const stage *a = &o->st[s], *b = &nm->st[s];
		int gin = in_group(o, s);
		const int *ri = gin >= 0 ? pos[gin] : NULL;
		const int *ro = a->grp[1] >= 0 ? pos[a->grp[1]] : NULL;
		switch (a->kind) {
		case ST_DENSE:
		case ST_HEAD_DENSE:
		case ST_HEAD_GAP:
			if (state)
				break;
			take(dst + b->dw, src + a->dw, b->dout, ro, 1, b->din, ri, a->din);
			take(dst + b->db, src + a->db, b->dout, ro, 1, 1, NULL, 1);
			break;
		case ST_CONV:
			take_conv(dst, src, &b->cv[0], &a->cv[0], ro, ri, state);
			break;
		case ST_BLOCK:
			if (b->branch) {
				/* a frozen block has no gates: copied as it is */
				const int *p1 = a->grp[1] >= 0 ? pos[a->grp[1]] : NULL;
				const int *p2 = a->grp[2] >= 0 ? pos[a->grp[2]] : NULL;
				take_conv(dst, src, &b->cv[0], &a->cv[0], p1, NULL, state);
				take_conv(dst, src, &b->cv[1], &a->cv[1], p2, p1, state);
			}
			if (a->proj)
				take_conv(dst, src, &b->cv[2], &a->cv[2], NULL, NULL, state);
			break;
		}
	}
}

/* Host copies of a model's params, state and optimizer slots (params-
 * shaped, zero over the frozen prefix) in one allocation. */
static float *host_copy(const tt_model *m)
{
	size_t np = m->nparams, nt = m->nparams - m->toff;
	float *h = calloc(np * (1 + (size_t)m->slots) + m->nstate + 1, sizeof *h);
	if (!h)
		return NULL;
	m->be->download(h, m->params, np * sizeof *h);
	if (m->nstate)
		m->be->download(h + np, m->state, m->nstate * sizeof *h);
	for (int k = 0; k < m->slots; k++)
		if (nt)
			m->be->download(h + np + m->nstate + (size_t)k * np + m->toff,
			                m->optim[k], nt * sizeof *h);
	return h;
}

/* Does group g belong to a structure that stays (not a pruned branch)? */
static int group_lives(const gate_state *gs, int g)
{
	const int *sg = gs->sg[gs->group[g].stage];
	return sg[0] < 0 || !gs->pruned[gs->group[sg[0]].first];
}

/* A pruned branch takes its units with it, and a pruned gate's t is 0.
 * Returns 1 when a gate still present is pruned: the network changes. */
static int gates_mark_pruned(gate_state *gs)
{
	for (int g = 0; g < gs->ngroups; g++) {
		const tt_gate_group *gr = &gs->group[g];
		if (gr->kind == TT_GATE_UNIT && !group_lives(gs, g))
			for (int k = 0; k < gr->count; k++) {
				gs->pruned[gr->first + k] = 1;
				gs->t[gr->first + k] = 0;
			}
	}
	int change = 0;
	for (int i = 0; i < gs->ngates; i++) {
		if (gs->pruned[i])
			gs->t[i] = 0;
		change |= gs->present[i] && gs->pruned[i];
	}
	return change;
}

/* What stays, and where it was: pos[g] lists, for each unit of group g
 * left, its column in the layer now; the lists share *store (the
 * caller frees it).  TT_EINPUT when a live layer would lose its last
 * unit. */
static int gates_kept_columns(const tt_model *m, int **pos, int **store, tt_err *err)
{
	const gate_state *gs = m->gs;
	int *next = *store = malloc(((size_t)gs->ngates + 1) * sizeof **store);
	if (!next)
		return tt_err_set(err, TT_ERUNTIME, "compaction: out of memory");
	for (int g = 0; g < gs->ngroups; g++) {
		const tt_gate_group *gr = &gs->group[g];
		if (gr->kind != TT_GATE_UNIT)
			continue;
		pos[g] = next;
		int kept = 0;
		for (int k = 0; k < gs->gn[g]; k++)
			if (!gs->pruned[gr->first + gs->orig[gr->first + k]])
				pos[g][kept++] = k;
		next += kept;
		if (kept == 0 && group_lives(gs, g))
			return tt_err_set(err, TT_EINPUT, "compaction: stage %d (%s) would "
			                  "lose its last unit; prune its layer instead",
			                  gr->stage, m->st[gr->stage].name);
	}
	return TT_OK;
}

/* The widths the gates describe (gn, orig, present), kept so that a
 * compaction that fails leaves the gates as the model still is. */
typedef struct gate_widths {
	int *gn, *orig;
	unsigned char *present;
} gate_widths;

static int widths_save(const gate_state *gs, gate_widths *w)
{
	size_t ng = (size_t)gs->ngates;
	w->gn = malloc(((size_t)gs->ngroups + 1) * sizeof *w->gn);
	w->orig = malloc((ng + 1) * sizeof *w->orig);
	w->present = malloc(ng + 1);
	if (!w->gn || !w->orig || !w->present)
		return -1;
	memcpy(w->gn, gs->gn, (size_t)gs->ngroups * sizeof *w->gn);
	memcpy(w->orig, gs->orig, ng * sizeof *w->orig);
	memcpy(w->present, gs->present, ng);
	return 0;
}

static void widths_restore(gate_state *gs, const gate_widths *w)
{
	memcpy(gs->gn, w->gn, (size_t)gs->ngroups * sizeof *w->gn);
	memcpy(gs->orig, w->orig, (size_t)gs->ngates * sizeof *w->orig);
	memcpy(gs->present, w->present, (size_t)gs->ngates);
	gates_offsets(gs);
}

static void widths_free(gate_widths *w)
{
	free(w->gn);
	free(w->orig);
	free(w->present);
}

/* The gates describe the widths left once the pruned units (of the old
 * widths w) are gone: from here model_build builds the narrower model. */
static void gates_narrow(gate_state *gs, const gate_widths *w)
{
	for (int g = 0; g < gs->ngroups; g++) {
		const tt_gate_group *gr = &gs->group[g];
		if (gr->kind == TT_GATE_LAYER) {
			gs->gn[g] = !gs->pruned[gr->first];
			gs->present[gr->first] = (unsigned char)gs->gn[g];
			continue;
		}
		int kept = 0;
		for (int k = 0; k < w->gn[g]; k++) {
			int u = w->orig[gr->first + k];
			if (!gs->pruned[gr->first + u])
				gs->orig[gr->first + kept++] = u;
			else
				gs->present[gr->first + u] = 0;
		}
		gs->gn[g] = kept;
	}
}

/* The old model m's weights, statistics and optimizer state (old, its
 * host_copy) into the new nm, at nm's layout.  -1 when out of memory. */
static int compact_transfer(const tt_model *m, tt_model *nm, int *const *pos,
                            const float *old)
{
	size_t np = nm->nparams, ons = m->nparams;
	float *nw = calloc(np * (1 + (size_t)nm->slots) + nm->nstate + 1, sizeof *nw);
	if (!nw)
		return -1;
	remap(m, nm, pos, old, nw, 0);
	remap(m, nm, pos, old + ons, nw + np, 1);
	for (int k = 0; k < m->slots; k++)
		remap(m, nm, pos, old + ons + m->nstate + (size_t)k * ons,
		      nw + np + nm->nstate + (size_t)k * np, 0);
	nm->be->upload(nm->params, nw, np * sizeof *nw);
	if (nm->nstate)
		nm->be->upload(nm->state, nw + np, nm->nstate * sizeof *nw);
	for (int k = 0; k < nm->slots; k++)
		if (np > nm->toff)
			nm->be->upload(nm->optim[k], nw + np + nm->nstate + (size_t)k * np + nm->toff,
			               (np - nm->toff) * sizeof *nw);
	free(nw);
	return 0;
}

int tt_model_gate_compact(tt_model *m, tt_err *err)
{
	gate_state *gs = m->gs;
	if (!gs || !gates_mark_pruned(gs))
		return TT_OK;
	int *pos[2 * TT_MEM_MAX_STAGES + 1] = { 0 };
	int *store = NULL;
	float *old = NULL;
	gate_widths w = { 0 };
	tt_model *nm = NULL;
	int rc = gates_kept_columns(m, pos, &store, err);
	if (rc)
		goto out;
	if (!(old = host_copy(m)) || widths_save(gs, &w)) {
		rc = tt_err_set(err, TT_ERUNTIME, "compaction: out of memory");
		goto out;
	}
	gates_narrow(gs, &w);
	rc = model_build(&gs->cfg, gs, &nm, err);
	if (rc == TT_OK && compact_transfer(m, nm, pos, old)) {
		nm->gs = NULL; /* lent */
		tt_model_free(nm);
		rc = tt_err_set(err, TT_ERUNTIME, "compaction: out of memory");
	}
	if (rc) {
		widths_restore(gs, &w); /* the model is unchanged: so are its gates */
		goto out;
	}
	/* the new model takes the old one's place (and its gates) */
	if (m->mem.peak > nm->mem.peak)
		nm->mem.peak = m->mem.peak;
	m->gs = NULL;
	tt_mem_release(&m->mem);
	*m = *nm;
	free(nm);
out:
	widths_free(&w);
	free(store);
	free(old);
	return rc;
}

int tt_model_gate_load(tt_model *m, const float *t, const unsigned char *pruned,
                       const unsigned char *present, tt_err *err)
{
	gate_state *gs = m->gs;
	if (!gs)
		return TT_OK;
	size_t n = (size_t)gs->ngates;
	for (size_t i = 0; i < n; i++)
		gs->pruned[i] = !present[i];
	int rc = tt_model_gate_compact(m, err);
	if (rc)
		return rc;
	memcpy(gs->t, t, n * sizeof *t);
	memcpy(gs->pruned, pruned, n);
	return TT_OK;
}

double tt_model_step_macs(const tt_model *m)
{
	double t = tt_model_train_macs(m);
	for (int s = m->first; s < m->n && m->gs; s++) {
		const stage *st = &m->st[s];
		if (st->grp[0] < 0 || !st->branch || st->ran)
			continue;
		/* forward, weight and input gradients of conv1 and conv2 that
		 * never ran; conv1's input gradient is not computed anyway when
		 * the block is the first trainable stage (without input_grad) */
		double c1 = conv_macs(&st->cv[0]), c2 = conv_macs(&st->cv[1]);
		t -= 3 * (c1 + c2) - (wants_dx(m, s) ? 0 : c1);
	}
	return t;
}
