/*
 * mem.h — memory accounting from the allocator that hands out the bytes.
 *
 * Every device allocation of a model goes through tt_mem_alloc, which asks
 * the backend for the bytes and books them to a stage (or to the model as a
 * whole) and to one kind.  A flat buffer shared by several stages is one
 * allocation booked to each stage by its share.  Current and peak totals
 * are kept, so what the memory pane shows is what was really allocated.
 */
#ifndef TT_MEM_H
#define TT_MEM_H

#include <stddef.h>

#include "backend.h"
#include "memkind.h"   /* enum tt_mem_kind, its names, TT_MEM_MODEL */

#define TT_MEM_MAX_STAGES 64

typedef struct tt_mem_rec {
	void *p;
	int kind;
	size_t total;
} tt_mem_rec;

typedef struct tt_mem {
	const tt_backend *be;
	/* bytes[s][kind] for stage s; row TT_MEM_MAX_STAGES is the model's own */
	size_t bytes[TT_MEM_MAX_STAGES + 1][TT_MEM_KINDS];
	size_t current, peak;
	tt_mem_rec *rec;                  /* live allocations */
	int nrec, caprec;
	size_t *split_store;              /* (caprec, TT_MEM_MAX_STAGES+1) */
} tt_mem;

void tt_mem_init(tt_mem *m, const tt_backend *be);
/* Free every live allocation and the bookkeeping. */
void tt_mem_release(tt_mem *m);

/* bytes of zeroed device memory booked to (stage, kind); NULL on failure.
 * stage is 0..TT_MEM_MAX_STAGES-1 or TT_MEM_MODEL.  bytes == 0 gives NULL
 * without failing: test the size, not the pointer. */
void *tt_mem_alloc(tt_mem *m, int stage, int kind, size_t bytes);
/* One allocation of sum(share) bytes, booked share[s] to stage s for s in
 * [0, nstage). */
void *tt_mem_alloc_split(tt_mem *m, int kind, const size_t *share, int nstage);
/* Give back an allocation made by either function; NULL is fine. */
void tt_mem_free(tt_mem *m, void *p);

/* Totals over all stages and the model row. */
size_t tt_mem_kind_total(const tt_mem *m, int kind);

#endif
