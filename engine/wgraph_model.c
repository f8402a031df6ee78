/*
 * wgraph_model.c — weight graphs of mlp and cnn models from their
 * parameters or checkpoints; see wgraph_model.h.
 */
#include "wgraph_model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "method.h"
#include "wgraph.h"

#define WGM_MAX 64

typedef struct wgm_spec {
	int kind;                /* 0 mlp, 1 cnn */
	int nv, v[WGM_MAX];
} wgm_spec;

static int parse(const char *spec, wgm_spec *sp, tt_err *err)
{
	const char *p;
	memset(sp, 0, sizeof *sp);
	if (strncmp(spec, "mlp:", 4) == 0)
		sp->kind = 0, p = spec + 4;
	else if (strncmp(spec, "cnn:", 4) == 0)
		sp->kind = 1, p = spec + 4;
	else
		return tt_err_set(err, TT_EINPUT, "weight graph of '%s': only mlp and cnn "
		                  "models are read (resnet is not built yet)", spec);
	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 1 || v > 1 << 20 || sp->nv == WGM_MAX)
			return tt_err_set(err, TT_EINPUT, "weight graph of '%s': bad width at "
			                  "'%s'", spec, p);
		sp->v[sp->nv++] = (int)v;
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			return tt_err_set(err, TT_EINPUT, "weight graph of '%s': expected ',' "
			                  "at '%s'", spec, p);
	}
	if (!sp->nv)
		return tt_err_set(err, TT_EINPUT, "weight graph of '%s': no widths", spec);
	return TT_OK;
}

/* Every stage as a layer: input width, output width, where its tensors
 * are.  Stage s reads width in[s] and writes out[s]. */
typedef struct wgm_layout {
	int stages;
	int in[WGM_MAX + 2], out[WGM_MAX + 2];
	int conv[WGM_MAX + 2];   /* 1: 3x3 conv + BN; 0: dense + bias */
	long w_off[WGM_MAX + 2], b_off[WGM_MAX + 2], bn_off[WGM_MAX + 2];
	int gated[WGM_MAX + 2];  /* carries unit gates when trainable */
	size_t nparams;
} wgm_layout;

static int layout(const tt_wgm_shape *s, wgm_layout *L, tt_err *err)
{
	wgm_spec sp;
	int rc = parse(s->spec, &sp, err);
	if (rc)
		return rc;
	memset(L, 0, sizeof *L);
	size_t p = 0;
	int n = 0;
	if (sp.kind == 0) {
		int din = s->h * s->w * s->c;
		for (int i = 0; i < sp.nv; i++, n++) {
			L->in[n] = din, L->out[n] = sp.v[i], L->conv[n] = 0, L->gated[n] = 1;
			L->w_off[n] = (long)p, p += (size_t)din * sp.v[i];
			L->b_off[n] = (long)p, p += (size_t)sp.v[i];
			L->bn_off[n] = -1;
			din = sp.v[i];
		}
		L->in[n] = din;
	} else {
		int c = s->c;
		for (int i = -1; i < sp.nv; i++, n++) {
			int K = sp.v[i < 0 ? 0 : i];
			L->in[n] = c, L->out[n] = K, L->conv[n] = 1, L->gated[n] = i >= 0;
			L->w_off[n] = (long)p, p += (size_t)K * 9 * c;
			L->b_off[n] = -1;
			L->bn_off[n] = (long)p, p += 2 * (size_t)K;
			c = K;
		}
		L->in[n] = c;
	}
	L->out[n] = s->classes, L->conv[n] = 0, L->gated[n] = 0;
	L->w_off[n] = (long)p, p += (size_t)L->in[n] * s->classes;
	L->b_off[n] = (long)p, p += (size_t)s->classes;
	L->bn_off[n] = -1;
	L->stages = n + 1;
	L->nparams = p;
	return TT_OK;
}

int tt_wgm_count(const tt_wgm_shape *s, int *stages, size_t *nparams, tt_err *err)
{
	wgm_layout L;
	int rc = layout(s, &L, err);
	if (rc)
		return rc;
	if (stages)
		*stages = L.stages;
	if (nparams)
		*nparams = L.nparams;
	return TT_OK;
}

int tt_wgm_build(const tt_wgm_shape *s, const float *params, size_t nparams,
                 const float *probs, tt_graph *g, tt_err *err)
{
	wgm_layout L;
	int rc = layout(s, &L, err);
	if (rc)
		return rc;
	if (nparams != L.nparams)
		return tt_err_set(err, TT_EINPUT, "weight graph of '%s' (%d classes): %zu "
		                  "parameters, expected %zu", s->spec, s->classes, nparams,
		                  L.nparams);
	int z = s->trainable <= 0 || s->trainable > L.stages ? L.stages : s->trainable;
	int s0 = L.stages - z;
	tt_wg_group_desc G[WGM_MAX + 3];
	tt_wg_layer_desc D[WGM_MAX + 2];
	/* the gate index of every gated trainable stage's first unit */
	long gate = 0;
	G[0] = (tt_wg_group_desc){ L.in[s0], TT_WG_INPUT, 0 };
	for (int k = 0; k < z; k++) {
		int st = s0 + k;
		G[k + 1] = (tt_wg_group_desc){ L.out[st], st == L.stages - 1 ? TT_WG_OUTPUT :
		                               TT_WG_HIDDEN, k + 1 };
		D[k] = (tt_wg_layer_desc){ .kind = L.conv[st] ? TT_WG_CONV : TT_WG_DENSE,
		                           .from = k, .to = k + 1, .kh = 3, .kw = 3,
		                           .w_off = L.w_off[st], .b_off = L.b_off[st],
		                           .bn_off = L.bn_off[st], .gate_off = -1 };
		if (L.gated[st]) {
			D[k].gate_off = probs ? gate : -1;
			gate += L.out[st];
		}
	}
	return tt_wgraph_build(G, z + 1, D, z, params, nparams, probs, g, err);
}

int tt_wgm_from_ckpt(const tt_wgm_shape *s, const void *blob, size_t len, tt_graph *g,
                     tt_err *err)
{
	tt_ck_section sec[TT_CK_SECTIONS_MAX];
	int n, rc;
	memset(g, 0, sizeof *g);
	if ((rc = tt_ck_parse(blob, len, sec, TT_CK_SECTIONS_MAX, &n, err)))
		return rc;
	const tt_ck_section *core = tt_ck_find(sec, n, TT_CK_CORE);
	if (!core)
		core = tt_ck_find(sec, n, TT_CK_CORE_V1);
	if (!core)
		return tt_err_set(err, TT_EINPUT, "checkpoint of %zu bytes has no core "
		                  "section", len);
	tt_ck_core h;
	const char *arrays;
	if ((rc = tt_ck_core_read(core, &h, &arrays, err)))
		return rc;
	if (strncmp(h.spec, s->spec, sizeof h.spec) != 0)
		return tt_err_set(err, TT_EINPUT, "checkpoint of '%.*s' is not of model '%s'",
		                  (int)sizeof h.spec, h.spec, s->spec);
	float *p = malloc((size_t)h.nparams * sizeof *p + 1);
	if (!p)
		return tt_err_set(err, TT_ERUNTIME, "weight graph: out of memory");
	memcpy(p, arrays, (size_t)h.nparams * sizeof *p);
	/* the gates' probabilities, from the gates section (method_gates.c) */
	float *probs = NULL;
	const tt_ck_section *gs = tt_ck_find(sec, n, TT_CK_GATES);
	wgm_layout L;
	if (gs && layout(s, &L, err) == TT_OK) {
		int z = s->trainable <= 0 || s->trainable > L.stages ? L.stages : s->trainable;
		size_t ng = 0;
		for (int st = L.stages - z; st < L.stages; st++)
			ng += L.gated[st] ? (size_t)L.out[st] : 0;
		const char *q;
		const unsigned char *present;
		if (ng && tt_gates_ck_view(gs->p, gs->len, (int)ng, &q, &present)) {
			int whole = 1;
			for (size_t i = 0; i < ng; i++)
				whole &= present[i] != 0;
			if (!whole) {
				free(p);
				return tt_err_set(err, TT_EINPUT, "weight graph: the checkpoint's "
				                  "gated model was compacted; its layout is no longer "
				                  "'%s''s", s->spec);
			}
			probs = malloc(ng * sizeof *probs);
			if (probs)
				memcpy(probs, q, ng * sizeof *probs);
		}
	}
	rc = tt_wgm_build(s, p, (size_t)h.nparams, probs, g, err);
	free(p);
	free(probs);
	return rc;
}

int tt_wgm_suffix(const tt_wgm_shape *s, size_t *off, tt_err *err)
{
	wgm_layout L;
	int rc = layout(s, &L, err);
	if (rc)
		return rc;
	int z = s->trainable <= 0 || s->trainable > L.stages ? L.stages : s->trainable;
	*off = (size_t)L.w_off[L.stages - z];
	return TT_OK;
}

int tt_wgm_ckpt_params(const void *blob, size_t len, float **params, size_t *nparams,
                       char spec_out[128], tt_err *err)
{
	tt_ck_section sec[TT_CK_SECTIONS_MAX];
	int n, rc;
	*params = NULL;
	if ((rc = tt_ck_parse(blob, len, sec, TT_CK_SECTIONS_MAX, &n, err)))
		return rc;
	const tt_ck_section *core = tt_ck_find(sec, n, TT_CK_CORE);
	if (!core)
		core = tt_ck_find(sec, n, TT_CK_CORE_V1);
	if (!core)
		return tt_err_set(err, TT_EINPUT, "checkpoint of %zu bytes has no core "
		                  "section", len);
	tt_ck_core h;
	const char *arrays;
	if ((rc = tt_ck_core_read(core, &h, &arrays, err)))
		return rc;
	float *p = malloc((size_t)h.nparams * sizeof *p + 1);
	if (!p)
		return tt_err_set(err, TT_ERUNTIME, "out of memory");
	memcpy(p, arrays, (size_t)h.nparams * sizeof *p);
	*params = p;
	*nparams = (size_t)h.nparams;
	if (spec_out) {
		memcpy(spec_out, h.spec, sizeof h.spec);
		spec_out[sizeof h.spec - 1] = 0;
	}
	return TT_OK;
}
