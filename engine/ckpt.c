/*
 * ckpt.c — checkpoint blobs as tagged sections; see ckpt.h.
 *
 * Only the framing lives here, and the reader of formats 1 and 2; what a
 * section holds is its writer's business (train.c the core, each method
 * its own).  Payloads are unaligned: every read goes through memcpy.
 */
#include "ckpt.h"

#include <string.h>

size_t tt_ck_core_size(const tt_ck_core *h)
{
	return sizeof *h + (h->nparams + h->nstate + h->slots * h->ntrain) * sizeof(float) +
	       h->n_idx * sizeof(int32_t);
}

size_t tt_ck_size(const size_t *len, int n)
{
	size_t b = TT_CK_HEADER;
	for (int i = 0; i < n; i++)
		b += TT_CK_SECTION + len[i];
	return b;
}

char *tt_ck_begin(char *buf)
{
	uint32_t w[2] = { TT_CK_MAGIC, TT_CK_FORMAT };
	memcpy(buf, w, sizeof w);
	return buf + TT_CK_HEADER;
}

char *tt_ck_put(char *p, uint32_t tag, size_t len)
{
	uint32_t w[2] = { tag, 0 };
	uint64_t l = len;
	memcpy(p, w, sizeof w);
	memcpy(p + sizeof w, &l, sizeof l);
	return p + TT_CK_SECTION;
}

/* ---- formats 1 and 2 ------------------------------------------------------ */

/*
 * The fixed layout before sections: this header, then params, state,
 * optim and idx as in the core section; format 2 (ngates > 0) appends the
 * gates tail, whose header v1_gates starts with its own magic.  Frozen:
 * these are only read.
 */
typedef struct v1_state {
	uint32_t magic, version;
	uint64_t nparams, nstate, ntrain, n_idx;
	uint32_t slots, ngates;
	int64_t step, epoch, ep_seen, seen;
	double ep_loss, ep_right, t_train;
	tt_rng order, aug;
	char spec[128];
} v1_state;

typedef struct v1_gates {
	uint32_t magic, ngates;
	double macs_sum;
	tt_rng rng;
} v1_gates;

static size_t v1_base_size(const v1_state *s)
{
	return sizeof *s + (s->nparams + s->nstate + s->slots * s->ntrain) * sizeof(float) +
	       s->n_idx * sizeof(int32_t);
}

static int parse_v1(const char *b, size_t len, tt_ck_section *s, int max, int *n,
                    tt_err *err)
{
	v1_state h;
	if (len < sizeof h)
		return tt_err_set(err, TT_EINPUT, "checkpoint: %zu bytes, too short for a "
		                  "format %u header of %zu", len, 1u, sizeof h);
	memcpy(&h, b, sizeof h);
	int ok = (h.version == 1 && h.ngates == 0) || (h.version == 2 && h.ngates > 0);
	if (!ok)
		return tt_err_set(err, TT_EINPUT, "checkpoint: format %u with %u gates, expected "
		                  "format %u, 1 (no gates) or 2 (gates)", h.version, h.ngates,
		                  TT_CK_FORMAT);
	size_t base = v1_base_size(&h);
	size_t gates = h.ngates ? sizeof(v1_gates) +
	                          (size_t)h.ngates * (sizeof(float) + sizeof(double) + 2) : 0;
	if (len != base + gates || base < sizeof h)
		return tt_err_set(err, TT_EINPUT, "checkpoint of '%.*s' (%llu parameters, "
		                  "format %u) has %zu bytes, expected %zu: it does not fit",
		                  (int)sizeof h.spec, h.spec, (unsigned long long)h.nparams,
		                  h.version, len, base + gates);
	if (max < 2)
		return tt_err_set(err, TT_EINPUT, "checkpoint: no room for its sections");
	s[0] = (tt_ck_section){ TT_CK_CORE_V1, b, base };
	*n = 1;
	if (gates)
		s[(*n)++] = (tt_ck_section){ TT_CK_GATES, b + base, gates };
	return TT_OK;
}

/* ---- sections --------------------------------------------------------------- */

int tt_ck_parse(const void *blob, size_t len, tt_ck_section *s, int max, int *n,
                tt_err *err)
{
	const char *b = blob;
	uint32_t w[2];
	*n = 0;
	if (len < TT_CK_HEADER)
		return tt_err_set(err, TT_EINPUT, "checkpoint: %zu bytes, too short for a "
		                  "header of %d", len, TT_CK_HEADER);
	memcpy(w, b, sizeof w);
	if (w[0] != TT_CK_MAGIC)
		return tt_err_set(err, TT_EINPUT, "checkpoint: magic 0x%08x, expected 0x%08x",
		                  w[0], TT_CK_MAGIC);
	if (w[1] == 1 || w[1] == 2)
		return parse_v1(b, len, s, max, n, err);
	if (w[1] != TT_CK_FORMAT)
		return tt_err_set(err, TT_EINPUT, "checkpoint: format %u, expected 1, 2 or %u",
		                  w[1], TT_CK_FORMAT);
	size_t off = TT_CK_HEADER;
	while (off < len) {
		uint32_t h[2];
		uint64_t l;
		if (len - off < TT_CK_SECTION)
			return tt_err_set(err, TT_EINPUT, "checkpoint of %zu bytes does not fit "
			                  "its sections: %zu bytes left at offset %zu, too short "
			                  "for a section header of %d", len, len - off, off,
			                  TT_CK_SECTION);
		memcpy(h, b + off, sizeof h);
		memcpy(&l, b + off + sizeof h, sizeof l);
		off += TT_CK_SECTION;
		if (l > len - off)
			return tt_err_set(err, TT_EINPUT, "checkpoint of %zu bytes does not fit "
			                  "its sections: section '%.4s' of %llu bytes at offset %zu "
			                  "runs past the end", len, (const char *)&h[0],
			                  (unsigned long long)l, off);
		if (*n == max)
			return tt_err_set(err, TT_EINPUT, "checkpoint: more than %d sections", max);
		s[(*n)++] = (tt_ck_section){ h[0], b + off, (size_t)l };
		off += (size_t)l;
	}
	return TT_OK;
}

const tt_ck_section *tt_ck_find(const tt_ck_section *s, int n, uint32_t tag)
{
	for (int i = 0; i < n; i++)
		if (s[i].tag == tag)
			return &s[i];
	return NULL;
}

int tt_ck_core_read(const tt_ck_section *s, tt_ck_core *h, const char **arrays,
                    tt_err *err)
{
	memset(h, 0, sizeof *h);
	if (s->tag == TT_CK_CORE_V1) {
		/* parse_v1 checked its length already */
		v1_state v;
		memcpy(&v, s->p, sizeof v);
		*h = (tt_ck_core){ .nparams = v.nparams, .nstate = v.nstate, .ntrain = v.ntrain,
		                   .n_idx = v.n_idx, .slots = v.slots, .step = v.step,
		                   .epoch = v.epoch, .ep_seen = v.ep_seen, .seen = v.seen,
		                   .ep_loss = v.ep_loss, .ep_right = v.ep_right,
		                   .t_train = v.t_train, .order = v.order, .aug = v.aug };
		memcpy(h->spec, v.spec, sizeof h->spec);
		*arrays = s->p + sizeof v;
		return TT_OK;
	}
	if (s->len < sizeof *h)
		return tt_err_set(err, TT_EINPUT, "checkpoint: core section of %zu bytes, too "
		                  "short for its header of %zu: it does not fit", s->len,
		                  sizeof *h);
	memcpy(h, s->p, sizeof *h);
	/* counts that overflow the size arithmetic cannot match a real length */
	if (h->nparams > s->len || h->nstate > s->len || h->ntrain > s->len ||
	    h->n_idx > s->len || h->slots > 2 || s->len != tt_ck_core_size(h))
		return tt_err_set(err, TT_EINPUT, "checkpoint of '%.*s' (%llu parameters): core "
		                  "section of %zu bytes, expected %zu: it does not fit",
		                  (int)sizeof h->spec, h->spec, (unsigned long long)h->nparams,
		                  s->len, h->nparams > s->len ? 0 : tt_ck_core_size(h));
	*arrays = s->p + sizeof *h;
	return TT_OK;
}
