/*
 * ckpt.h — checkpoint blobs as tagged sections.
 *
 * A blob is a magic number and a format number, then sections, each a tag
 * (four characters), a length and that many bytes of payload, to the end
 * of the blob (PNG chunks and RIFF work this way):
 *
 *   u32 magic "TTCK", u32 format 3,
 *   { u32 tag, u32 0, u64 len, payload[len] } ...
 *
 * The core section (CORE, written by train.c) holds what every run has:
 * a tt_ck_core header, then params[nparams], state[nstate],
 * optim[slots][ntrain] (floats) and the training order idx[n_idx]
 * (int32).  Each method that keeps state writes its own section under its
 * own tag (method.h), so methods combine without a version number per
 * combination.  A reader skips the tags it does not know.  Numbers are in
 * the machine's byte order: a blob moves between runs of one build and
 * machine kind, as before.
 *
 * Formats 1 and 2, written before sections existed, still load:
 * tt_ck_parse presents them as sections too, their fixed header and
 * arrays as one CORE_V1 section and format 2's gates tail (which has the
 * layout of today's gates section) as a GATE section.
 */
#ifndef TT_CKPT_H
#define TT_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "rng.h"

#define TT_CK_TAG(a, b, c, d)                                                \
	((uint32_t)(unsigned char)(a) | (uint32_t)(unsigned char)(b) << 8 |     \
	 (uint32_t)(unsigned char)(c) << 16 | (uint32_t)(unsigned char)(d) << 24)

#define TT_CK_MAGIC TT_CK_TAG('T', 'T', 'C', 'K')
#define TT_CK_FORMAT 3u
#define TT_CK_CORE TT_CK_TAG('C', 'O', 'R', 'E')
/* formats 1 and 2: the old fixed layout, header and arrays */
#define TT_CK_CORE_V1 TT_CK_TAG('C', 'O', 'R', '1')
/* the gates method's section (method_gates.c); format 2's tail */
#define TT_CK_GATES TT_CK_TAG('G', 'A', 'T', 'E')
/* EvoGrad's learned hyperparameters, their optimizer and path */
#define TT_CK_EVOGRAD TT_CK_TAG('E', 'V', 'O', 'G')

#define TT_CK_CONTINUAL TT_CK_TAG('C', 'O', 'N', 'T')
#define TT_CK_HEADER 8   /* magic, format */
#define TT_CK_SECTION 16 /* tag, 0, len */
#define TT_CK_SECTIONS_MAX 32

/* The core section's header; the arrays follow it. */
typedef struct tt_ck_core {
	uint64_t nparams, nstate, ntrain, n_idx;
	uint32_t slots, reserved;
	int64_t step, epoch, ep_seen, seen;
	double ep_loss, ep_right, t_train;
	tt_rng order, aug;
	char spec[128];          /* the model spec, NUL-padded */
} tt_ck_core;

/* Bytes of a core section's payload with the counts of h. */
size_t tt_ck_core_size(const tt_ck_core *h);

typedef struct tt_ck_section {
	uint32_t tag;
	const char *p;           /* payload, unaligned */
	size_t len;
} tt_ck_section;

/* Bytes of a blob whose sections have these payload lengths. */
size_t tt_ck_size(const size_t *len, int n);
/* Start a blob at buf; returns where the first section goes. */
char *tt_ck_begin(char *buf);
/* A section header at p; returns its payload (len bytes to write, the
 * next section after them). */
char *tt_ck_put(char *p, uint32_t tag, size_t len);

/*
 * Split blob (len bytes) into its sections, up to max into s, *n their
 * number.  Formats 1 and 2 come as CORE_V1 (and GATE).  TT_EINPUT naming
 * what is wrong: too short, a bad magic or format, a section running past
 * the end, too many sections.
 */
int tt_ck_parse(const void *blob, size_t len, tt_ck_section *s, int max, int *n,
                tt_err *err);
/* The first section tagged tag, or NULL. */
const tt_ck_section *tt_ck_find(const tt_ck_section *s, int n, uint32_t tag);

/* The core header of a CORE or CORE_V1 section into *h, *arrays where its
 * arrays start; TT_EINPUT when the payload's length does not fit its
 * counts. */
int tt_ck_core_read(const tt_ck_section *s, tt_ck_core *h, const char **arrays,
                    tt_err *err);

#endif
