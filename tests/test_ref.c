/*
 * test_ref.c — the engine against PyTorch, tensor by tensor.
 *
 * tests/ref/gen_ref.py writes one fixture per (model spec, trainable z):
 * parameters, a batch, and what PyTorch computed from them — train-mode
 * logits, the mean cross-entropy (plain and with label smoothing 0.1), the
 * gradient of the trainable suffix, the batch-norm running statistics
 * after the forward, and 5 steps of SGD, Nesterov SGD and AdamW on that
 * batch.  For every .bin file in tests/ref/ (relative to the working
 * directory, the repository root; argv[1] may give another glob pattern)
 * this program builds the same model on the cpu backend, loads the same
 * parameters and state, runs the same computation and fails on any
 * difference beyond the tolerances below.  No fixture at all is a failure too.
 *
 * Fixture format (written by gen_ref.py; all integers u32 little-endian,
 * floats IEEE float32 little-endian):
 *
 *   "TTREF1\n", then records until end of file:
 *   u32 name_len, name, u32 type (0 float32, 1 text), u32 ndims,
 *   u32 dims[ndims], then prod(dims) float32 values or prod(dims) bytes.
 *
 * gen_ref.py's docstring lists the records.  param_layout names each
 * parameter tensor of the flat vector ("<stage> <name> <numel>" per line),
 * so a mismatch is reported by tensor and element, not just by offset.
 *
 * Each fixture reports six cases, "ok ref:<fixture>:<check>": shape
 * (stage and parameter counts), forward (logits, losses, argmax count),
 * backward (gradients, running statistics, parameters untouched), and
 * sgd, nesterov, adamw (losses before each of 5 steps, the trainable
 * parameters after them, the frozen prefix bit for bit unchanged).
 */
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "model.h"
#include "optim.h"
#include "test.h"

/* |got - want| <= atol + rtol * |want|, elementwise.  PyTorch in float32
 * and in float64 agree to well under a tenth of these (gen_ref.py --check
 * prints the margins); the engine sums in other orders, hence the room.
 * SGD parameters are held tighter so that a missing weight decay (about
 * 1e-4 after 5 steps) cannot hide; AdamW's cannot be, because a weight
 * whose first gradient is nearly zero moves by about lr * sign(g) and the
 * sign of a rounding-sized gradient is noise. */
#define TOL_ATOL 1e-4
#define TOL_RTOL 1e-3
#define TOL_SGD_ATOL 2e-5
#define TOL_SGD_RTOL 2e-4
#define TOL_LOSS_ATOL 1e-6
#define TOL_LOSS_RTOL 1e-3
#define REF_STEPS 5
#define REF_SMOOTHING 0.1f

/* ---- reading a fixture ------------------------------------------------ */

enum { REF_F32 = 0, REF_TEXT = 1 };
#define REF_MAXDIMS 8
#define REF_NAME 64

typedef struct ref_rec {
	char name[REF_NAME];
	int type;
	int ndims;
	size_t dims[REF_MAXDIMS];
	size_t count;           /* prod(dims) */
	float *f;               /* type REF_F32 */
	char *text;             /* type REF_TEXT, NUL-terminated */
} ref_rec;

/* One parameter (or state) tensor inside a flat vector. */
typedef struct ref_seg {
	char name[96];
	int stage;
	size_t off, n;
} ref_seg;

typedef struct ref_fix {
	char label[256];        /* file name without directory and ".bin" */
	ref_rec *rec;
	int nrec;
	ref_seg *pseg, *sseg;   /* param_layout, state_layout */
	int npseg, nsseg;
} ref_fix;

static uint32_t rd_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void ref_fix_free(ref_fix *f)
{
	for (int i = 0; i < f->nrec; i++) {
		free(f->rec[i].f);
		free(f->rec[i].text);
	}
	free(f->rec);
	free(f->pseg);
	free(f->sseg);
	memset(f, 0, sizeof *f);
}

static int ref_parse(ref_fix *f, const unsigned char *b, size_t len,
                     char *why, size_t whylen)
{
	size_t pos = 7;
	int cap = 0;

	if (len < 7 || memcmp(b, "TTREF1\n", 7) != 0) {
		snprintf(why, whylen, "no TTREF1 magic");
		return -1;
	}
	while (pos < len) {
		ref_rec r;
		uint32_t nl, type, nd;
		size_t bytes;

		memset(&r, 0, sizeof r);
		if (len - pos < 4)
			goto trunc;
		nl = rd_u32(b + pos);
		pos += 4;
		if (nl == 0 || nl >= REF_NAME || len - pos < nl) {
			snprintf(why, whylen, "bad record name length %u at %zu",
			         (unsigned)nl, pos - 4);
			return -1;
		}
		memcpy(r.name, b + pos, nl);
		pos += nl;
		if (len - pos < 8)
			goto trunc;
		type = rd_u32(b + pos);
		nd = rd_u32(b + pos + 4);
		pos += 8;
		if ((type != REF_F32 && type != REF_TEXT) || nd > REF_MAXDIMS ||
		    len - pos < 4 * (size_t)nd) {
			snprintf(why, whylen, "record %s: bad type %u or ndims %u",
			         r.name, (unsigned)type, (unsigned)nd);
			return -1;
		}
		r.type = (int)type;
		r.ndims = (int)nd;
		r.count = 1;
		for (uint32_t d = 0; d < nd; d++, pos += 4) {
			r.dims[d] = rd_u32(b + pos);
			if (r.dims[d] && r.count > SIZE_MAX / 4 / r.dims[d]) {
				snprintf(why, whylen, "record %s: too large",
				         r.name);
				return -1;
			}
			r.count *= r.dims[d];
		}
		bytes = type == REF_F32 ? 4 * r.count : r.count;
		if (len - pos < bytes)
			goto trunc;
		if (type == REF_F32) {
			r.f = malloc(r.count ? 4 * r.count : 4);
			if (!r.f)
				goto oom;
			for (size_t i = 0; i < r.count; i++) {
				uint32_t u = rd_u32(b + pos + 4 * i);
				memcpy(&r.f[i], &u, 4);
			}
		} else {
			r.text = malloc(r.count + 1);
			if (!r.text)
				goto oom;
			memcpy(r.text, b + pos, r.count);
			r.text[r.count] = '\0';
		}
		pos += bytes;
		if (f->nrec == cap) {
			int ncap = cap ? 2 * cap : 32;
			ref_rec *n = realloc(f->rec, ncap * sizeof *n);
			if (!n) {
				free(r.f);
				free(r.text);
				goto oom;
			}
			f->rec = n;
			cap = ncap;
		}
		f->rec[f->nrec++] = r;
	}
	return 0;
trunc:
	snprintf(why, whylen, "truncated at byte %zu of %zu", pos, len);
	return -1;
oom:
	snprintf(why, whylen, "out of memory");
	return -1;
}

static const ref_rec *ref_get(const ref_fix *f, const char *name, int type)
{
	for (int i = 0; i < f->nrec; i++)
		if (strcmp(f->rec[i].name, name) == 0 && f->rec[i].type == type)
			return &f->rec[i];
	return NULL;
}

/* Parse "<stage> <name> <numel>" lines into consecutive segments. */
static int ref_layout(const char *text, ref_seg **out, int *nout)
{
	const char *p = text;
	size_t off = 0;
	int n = 0, cap = 0;
	ref_seg *seg = NULL;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		char line[256];
		ref_seg s;

		if (l >= sizeof line)
			goto bad;
		memcpy(line, p, l);
		line[l] = '\0';
		p += l + (nl != NULL);
		if (l == 0)
			continue;
		memset(&s, 0, sizeof s);
		if (sscanf(line, "%d %95s %zu", &s.stage, s.name, &s.n) != 3)
			goto bad;
		s.off = off;
		off += s.n;
		if (n == cap) {
			int ncap = cap ? 2 * cap : 16;
			ref_seg *g = realloc(seg, ncap * sizeof *g);
			if (!g)
				goto bad;
			seg = g;
			cap = ncap;
		}
		seg[n++] = s;
	}
	*out = seg;
	*nout = n;
	return 0;
bad:
	free(seg);
	return -1;
}

static int ref_load(const char *path, ref_fix *f, char *why, size_t whylen)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = NULL;
	long len;
	const char *base, *dot;
	const ref_rec *lay;
	int rc = -1;

	memset(f, 0, sizeof *f);
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	snprintf(f->label, sizeof f->label, "%.*s",
	         (int)(dot ? (size_t)(dot - base) : strlen(base)), base);
	if (!fp) {
		snprintf(why, whylen, "cannot open %s", path);
		return -1;
	}
	if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0) {
		snprintf(why, whylen, "cannot size %s", path);
		goto out;
	}
	buf = malloc(len ? (size_t)len : 1);
	if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len) {
		snprintf(why, whylen, "cannot read %s", path);
		goto out;
	}
	if (ref_parse(f, buf, (size_t)len, why, whylen) != 0)
		goto out;
	lay = ref_get(f, "param_layout", REF_TEXT);
	if (lay && ref_layout(lay->text, &f->pseg, &f->npseg) != 0) {
		snprintf(why, whylen, "bad param_layout");
		goto out;
	}
	lay = ref_get(f, "state_layout", REF_TEXT);
	if (lay && ref_layout(lay->text, &f->sseg, &f->nsseg) != 0) {
		snprintf(why, whylen, "bad state_layout");
		goto out;
	}
	rc = 0;
out:
	free(buf);
	fclose(fp);
	if (rc != 0)
		ref_fix_free(f);
	return rc;
}

/* ---- comparing -------------------------------------------------------- */

static int bad_elem(double got, double want, double atol, double rtol)
{
	double d = fabs(got - want);
	return !(d <= atol + rtol * fabs(want));   /* NaN counts as bad */
}

/*
 * Compare got[0..n) with want[0..n), which hold flat elements
 * [base, base+n) of a vector laid out as seg[0..nseg) (nseg 0: one
 * tensor called what).  Prints one summary line (the largest absolute
 * error, in which tensor and element) and, for every tensor with elements
 * beyond tolerance, a line of its own; any such element fails the case.
 */
static void cmp_vec(const char *what, const float *got, const float *want,
                    size_t base, size_t n, const ref_seg *seg, int nseg,
                    double atol, double rtol)
{
	ref_seg whole;
	double top = -1;
	const char *top_name = what;
	size_t top_i = 0, top_flat = 0, nbad_all = 0;
	int verbose = getenv("TT_VERBOSE") != NULL;

	if (nseg == 0) {
		memset(&whole, 0, sizeof whole);
		snprintf(whole.name, sizeof whole.name, "%s", what);
		whole.off = base;
		whole.n = n;
		seg = &whole;
		nseg = 1;
	}
	for (int s = 0; s < nseg; s++) {
		size_t lo = seg[s].off > base ? seg[s].off : base;
		size_t hi = seg[s].off + seg[s].n;
		double mx = -1, worst_ratio = 0;
		size_t mi = 0, nbad = 0;

		if (hi > base + n)
			hi = base + n;
		if (lo >= hi)
			continue;
		for (size_t k = lo; k < hi; k++) {
			double g = got[k - base], w = want[k - base];
			double d = fabs(g - w);
			double r = d / (atol + rtol * fabs(w));

			if (bad_elem(g, w, atol, rtol))
				nbad++;
			if (d != d)
				d = INFINITY, r = INFINITY;
			if (d > mx) {
				mx = d;
				mi = k;
			}
			if (r > worst_ratio)
				worst_ratio = r;
		}
		if (nbad || verbose)
			printf("  %s %s: max abs err %.3g at [%zu] (got %.8g, "
			       "want %.8g), err/tol %.3g, %zu of %zu beyond "
			       "tolerance\n", what, seg[s].name, mx,
			       mi - seg[s].off, got[mi - base], want[mi - base],
			       worst_ratio, nbad, hi - lo);
		nbad_all += nbad;
		if (mx > top) {
			top = mx;
			top_name = seg[s].name;
			top_i = mi - seg[s].off;
			top_flat = mi;
		}
	}
	printf("  %s: %zu values, max abs err %.3g at %s[%zu] (flat %zu)\n",
	       what, n, top < 0 ? 0.0 : top, top_name, top_i, top_flat);
	CHECK(nbad_all == 0, "%s: %zu of %zu values beyond atol %g + rtol %g",
	      what, nbad_all, n, atol, rtol);
}

/* ---- running one fixture ---------------------------------------------- */

typedef struct ref_run {
	const ref_fix *f;
	const tt_backend *be;
	const char *spec;
	int h, w, c, classes, n, z, stages;
	const ref_rec *params, *state0, *x, *labels;
	float *dx;              /* device (n, h, w, c) */
	int *dlabels;           /* device (n) */
} ref_run;

static int ref_int(const ref_fix *f, const char *name, int *v)
{
	const ref_rec *r = ref_get(f, name, REF_F32);

	if (!r || r->count != 1)
		return -1;
	*v = (int)r->f[0];
	return 0;
}

static const ref_rec *ref_need(const ref_fix *f, const char *name,
                               size_t count)
{
	const ref_rec *r = ref_get(f, name, REF_F32);

	CHECK(r != NULL, "%s: no record %s", f->label, name);
	if (r && count != (size_t)-1 && r->count != count) {
		CHECK(0, "%s: record %s has %zu values, expected %zu", f->label,
		      name, r->count, count);
		return NULL;
	}
	return r;
}

static void case_end(const ref_fix *f, const char *check)
{
	printf("%s ref:%s:%s\n", tt_case_failed ? "FAIL" : "ok", f->label,
	       check);
	fflush(stdout);
	tt_cases_failed += tt_case_failed;
	tt_case_failed = 0;
}

/* A model for the fixture with its parameters and state loaded; NULL (and
 * a failed check) when it cannot be built or its sizes differ. */
static tt_model *ref_model(const ref_run *r, int slots)
{
	tt_model_config cfg = {
		.spec = r->spec, .h = r->h, .w = r->w, .c = r->c,
		.classes = r->classes, .batch = r->n, .trainable = r->z,
		.optim_slots = slots, .seed = 1, .be = r->be,
	};
	tt_err err = {0};
	tt_model *m = NULL;
	int rc = tt_model_create(&cfg, &m, &err);

	CHECK(rc == TT_OK && m != NULL, "tt_model_create(%s, z=%d): %d %s",
	      r->spec, r->z, rc, err.msg);
	if (rc != TT_OK || !m)
		return NULL;
	if (tt_model_nparams(m) != r->params->count ||
	    tt_model_nstate(m) != r->state0->count) {
		CHECK(0, "%s: nparams %zu nstate %zu, expected %zu and %zu",
		      r->spec, tt_model_nparams(m), tt_model_nstate(m),
		      r->params->count, r->state0->count);
		tt_model_free(m);
		return NULL;
	}
	r->be->upload(tt_model_params(m), r->params->f,
	              r->params->count * sizeof(float));
	if (r->state0->count)
		r->be->upload(tt_model_state(m), r->state0->f,
		              r->state0->count * sizeof(float));
	for (int s = 0; s < slots; s++)
		if (tt_model_ntrainable(m))
			r->be->zero(tt_model_optim(m, s),
			            tt_model_ntrainable(m) * sizeof(float));
	return m;
}

static float *download(const ref_run *r, const float *dev, size_t n)
{
	float *h = malloc((n ? n : 1) * sizeof *h);

	TT_ASSERT(h != NULL);
	if (n)
		r->be->download(h, dev, n * sizeof *h);
	return h;
}

/* The frozen prefix [0, off) of the device parameters, bit for bit. */
static void check_prefix(const ref_run *r, tt_model *m, const char *when)
{
	size_t off = tt_model_trainable_offset(m);
	float *p = download(r, tt_model_params(m), tt_model_nparams(m));

	CHECK(memcmp(p, r->params->f, off * sizeof *p) == 0,
	      "%s: the frozen prefix (%zu values) changed %s", r->f->label,
	      off, when);
	free(p);
}

static void check_shape(const ref_run *r, tt_model *m)
{
	const ref_rec *sp = ref_need(r->f, "stage_params", r->stages);
	int z = r->z <= 0 ? r->stages : r->z;

	CHECK(tt_model_stages(m) == r->stages, "stages %d, expected %d",
	      tt_model_stages(m), r->stages);
	CHECK(tt_model_trainable(m) == z, "trainable %d, expected %d",
	      tt_model_trainable(m), z);
	if (sp && tt_model_stages(m) == r->stages) {
		size_t want_off = 0, off, cnt;

		for (int s = 0; s < r->stages; s++) {
			tt_model_stage_params(m, s, &off, &cnt);
			CHECK(off == want_off && cnt == (size_t)sp->f[s],
			      "stage %d (%s): params [%zu, +%zu), expected "
			      "[%zu, +%zu)", s, tt_model_stage_name(m, s), off,
			      cnt, want_off, (size_t)sp->f[s]);
			want_off += (size_t)sp->f[s];
		}
		want_off = 0;
		for (int s = 0; s < r->stages - z; s++)
			want_off += (size_t)sp->f[s];
		CHECK(tt_model_trainable_offset(m) == want_off,
		      "trainable offset %zu, expected %zu",
		      tt_model_trainable_offset(m), want_off);
	}
	CHECK(tt_model_ntrainable(m) ==
	      tt_model_nparams(m) - tt_model_trainable_offset(m),
	      "ntrainable %zu != nparams %zu - offset %zu",
	      tt_model_ntrainable(m), tt_model_nparams(m),
	      tt_model_trainable_offset(m));
}

static void check_forward_backward(const ref_run *r)
{
	const ref_fix *f = r->f;
	const ref_rec *logits, *grads, *state1, *loss, *smooth, *correct;
	tt_model *m = ref_model(r, 0);
	const float *out;
	float *hl;
	double l, ls;
	int ncorrect = -1;

	if (m)
		check_shape(r, m);
	case_end(f, "shape");
	if (!m) {
		CHECK(0, "no model");
		case_end(f, "forward");
		CHECK(0, "no model");
		case_end(f, "backward");
		return;
	}

	/* forward: logits, then the losses of those logits */
	logits = ref_need(f, "logits", (size_t)r->n * r->classes);
	loss = ref_need(f, "loss", 1);
	smooth = ref_need(f, "loss_smooth", 1);
	correct = ref_need(f, "correct", 1);
	out = tt_model_forward(m, r->dx, r->n, 1);
	CHECK(out != NULL, "forward returned NULL");
	if (out && logits) {
		hl = download(r, out, logits->count);
		cmp_vec("logits", hl, logits->f, 0, logits->count, NULL, 0,
		        TOL_ATOL, TOL_RTOL);
		free(hl);
	}
	ls = tt_model_loss(m, r->dlabels, r->n, REF_SMOOTHING, 0, NULL);
	l = tt_model_loss(m, r->dlabels, r->n, 0.0f, 1, &ncorrect);
	if (loss) {
		printf("  loss %.8g, expected %.8g\n", l, loss->f[0]);
		CHECK_CLOSE(l, loss->f[0], TOL_LOSS_ATOL, TOL_LOSS_RTOL, "loss");
	}
	if (smooth) {
		printf("  loss_smooth %.8g, expected %.8g\n", ls, smooth->f[0]);
		CHECK_CLOSE(ls, smooth->f[0], TOL_LOSS_ATOL, TOL_LOSS_RTOL,
		            "loss with label smoothing 0.1");
	}
	if (correct)
		CHECK(ncorrect == (int)correct->f[0], "correct %d, expected %d",
		      ncorrect, (int)correct->f[0]);
	case_end(f, "forward");

	/* backward: gradients of the trainable suffix, running statistics */
	tt_model_backward(m);
	grads = ref_need(f, "grads", tt_model_ntrainable(m));
	state1 = ref_need(f, "state1", tt_model_nstate(m));
	if (grads) {
		float *g = download(r, tt_model_grads(m), grads->count);
		cmp_vec("grads", g, grads->f, tt_model_trainable_offset(m),
		        grads->count, f->pseg, f->npseg, TOL_ATOL, TOL_RTOL);
		free(g);
	}
	if (state1 && state1->count) {
		float *s = download(r, tt_model_state(m), state1->count);
		cmp_vec("state1", s, state1->f, 0, state1->count, f->sseg,
		        f->nsseg, TOL_ATOL, TOL_RTOL);
		free(s);
	}
	check_prefix(r, m, "by forward and backward");
	case_end(f, "backward");
	tt_model_free(m);
}

static void check_optim(const ref_run *r, const char *name,
                        const tt_optim_config *cfg, double atol, double rtol)
{
	const ref_fix *f = r->f;
	char key[64];
	const ref_rec *want_l, *want_p;
	double losses[REF_STEPS];
	tt_model *m = ref_model(r, tt_optim_slots(cfg));

	if (!m) {
		case_end(f, name);
		return;
	}
	snprintf(key, sizeof key, "%s_losses", name);
	want_l = ref_need(f, key, REF_STEPS);
	snprintf(key, sizeof key, "%s_params", name);
	want_p = ref_need(f, key, tt_model_ntrainable(m));
	for (int step = 0; step < REF_STEPS; step++) {
		tt_model_forward(m, r->dx, r->n, 1);
		losses[step] = tt_model_loss(m, r->dlabels, r->n, 0.0f, 1, NULL);
		tt_model_backward(m);
		tt_optim_step(m, cfg, step);
	}
	if (want_l) {
		double worst = 0;

		for (int step = 0; step < REF_STEPS; step++) {
			double e = fabs(losses[step] - want_l->f[step]) /
			           fabs(want_l->f[step]);
			if (!(e <= worst))
				worst = e;
			CHECK_CLOSE(losses[step], want_l->f[step], TOL_LOSS_ATOL,
			            TOL_LOSS_RTOL, name);
		}
		printf("  %s losses %.6g .. %.6g, expected %.6g .. %.6g, "
		       "max rel err %.3g\n", name, losses[0],
		       losses[REF_STEPS - 1], want_l->f[0],
		       want_l->f[REF_STEPS - 1], worst);
	}
	if (want_p) {
		size_t off = tt_model_trainable_offset(m);
		float *p = download(r, tt_model_params(m), tt_model_nparams(m));

		snprintf(key, sizeof key, "%s params", name);
		cmp_vec(key, p + off, want_p->f, off, want_p->count, f->pseg,
		        f->npseg, atol, rtol);
		free(p);
	}
	check_prefix(r, m, "by the optimizer");
	tt_model_free(m);
	case_end(f, name);
}

static void run_fixture(const ref_fix *f, const tt_backend *be)
{
	static const char *const checks[] = {
		"shape", "forward", "backward", "sgd", "nesterov", "adamw",
	};
	const ref_rec *spec = ref_get(f, "spec", REF_TEXT);
	const ref_rec *sh = ref_get(f, "sgd_hparams", REF_F32);
	const ref_rec *ah = ref_get(f, "adamw_hparams", REF_F32);
	ref_run r;
	size_t nx;
	int *lab;

	memset(&r, 0, sizeof r);
	r.f = f;
	r.be = be;
	r.params = ref_get(f, "params", REF_F32);
	r.state0 = ref_get(f, "state0", REF_F32);
	r.x = ref_get(f, "x", REF_F32);
	r.labels = ref_get(f, "labels", REF_F32);
	if (!spec || !sh || sh->count != 3 || !ah || ah->count != 5 ||
	    !r.params || !r.state0 || !r.x || !r.labels ||
	    ref_int(f, "h", &r.h) || ref_int(f, "w", &r.w) ||
	    ref_int(f, "c", &r.c) || ref_int(f, "classes", &r.classes) ||
	    ref_int(f, "batch", &r.n) || ref_int(f, "trainable", &r.z) ||
	    ref_int(f, "stages", &r.stages) || r.n <= 0 ||
	    r.x->count != (size_t)r.n * r.h * r.w * r.c ||
	    r.labels->count != (size_t)r.n) {
		for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
			CHECK(0, "%s: fixture lacks or mangles a config record",
			      f->label);
			case_end(f, checks[i]);
		}
		return;
	}
	r.spec = spec->text;
	printf("  %s: spec %s, z %d, batch %d, %zu params, %zu state\n",
	       f->label, r.spec, r.z, r.n, r.params->count, r.state0->count);

	nx = r.x->count;
	r.dx = be->alloc(nx * sizeof(float));
	r.dlabels = be->alloc((size_t)r.n * sizeof(int));
	lab = malloc((size_t)r.n * sizeof *lab);
	TT_ASSERT(r.dx && r.dlabels && lab);
	be->upload(r.dx, r.x->f, nx * sizeof(float));
	for (int i = 0; i < r.n; i++)
		lab[i] = (int)r.labels->f[i];
	be->upload(r.dlabels, lab, (size_t)r.n * sizeof *lab);
	free(lab);

	check_forward_backward(&r);

	tt_optim_config sgd = {
		.kind = TT_OPT_SGD, .lr = sh->f[0], .momentum = sh->f[1],
		.nesterov = 0, .weight_decay = sh->f[2],
		.schedule = TT_SCHED_CONSTANT, .warmup = 0,
		.total_steps = REF_STEPS, .step_gamma = 1.0f,
	};
	check_optim(&r, "sgd", &sgd, TOL_SGD_ATOL, TOL_SGD_RTOL);
	sgd.nesterov = 1;
	check_optim(&r, "nesterov", &sgd, TOL_SGD_ATOL, TOL_SGD_RTOL);
	tt_optim_config adamw = {
		.kind = TT_OPT_ADAMW, .lr = ah->f[0], .beta1 = ah->f[1],
		.beta2 = ah->f[2], .eps = ah->f[3], .weight_decay = ah->f[4],
		.schedule = TT_SCHED_CONSTANT, .warmup = 0,
		.total_steps = REF_STEPS, .step_gamma = 1.0f,
	};
	check_optim(&r, "adamw", &adamw, TOL_ATOL, TOL_RTOL);

	be->free(r.dx);
	be->free(r.dlabels);
}

int main(int argc, char **argv)
{
	const char *pattern = argc > 1 ? argv[1] : "tests/ref/*.bin";
	const tt_backend *be = tt_backend_get("cpu");
	glob_t g;
	int grc;

	if (!be) {
		fprintf(stderr, "test_ref: no cpu backend\n");
		printf("FAIL ref:backend\n");
		return 1;
	}
	memset(&g, 0, sizeof g);
	grc = glob(pattern, 0, NULL, &g);
	if (grc != 0 || g.gl_pathc == 0) {
		fprintf(stderr, "test_ref: no fixtures match %s (run from the "
		        "repository root; regenerate with /usr/bin/python3 "
		        "tests/ref/gen_ref.py)\n", pattern);
		printf("FAIL ref:fixtures\n");
		globfree(&g);
		return 1;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		ref_fix f;
		char why[256];

		if (ref_load(g.gl_pathv[i], &f, why, sizeof why) != 0) {
			fprintf(stderr, "test_ref: %s: %s\n", g.gl_pathv[i], why);
			printf("FAIL ref:%s:load\n", g.gl_pathv[i]);
			tt_cases_failed++;
			continue;
		}
		run_fixture(&f, be);
		ref_fix_free(&f);
	}
	globfree(&g);
	TT_EXIT();
}
