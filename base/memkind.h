/*
 * memkind.h — the kinds of memory tunetop accounts: one table for the
 * engine's allocator (engine/mem.h), the JSON result of `tunetop train`,
 * the layer_memory rows the runner stores and the database accepts, and
 * the explorer's memory pane and theme roles.
 *
 * The order is the enum's and that of the explorer's memory roles
 * (tui/theme.h, UI_MEM_PARAMS ..).
 */
#ifndef TT_MEMKIND_H
#define TT_MEMKIND_H

enum tt_mem_kind {
	TT_MEM_PARAMS,  /* parameters and batch-norm running statistics */
	TT_MEM_GRADS,   /* parameter gradients */
	TT_MEM_OPTIM,   /* optimizer state (momentum, Adam moments) */
	TT_MEM_ACT,     /* activations kept for backward */
	TT_MEM_WORK,    /* workspace: im2col, activation gradients, frozen scratch */
	TT_MEM_METHOD,  /* a training method's own buffers: EvoGrad's weight copy
	                 * and validation gradient */
	TT_MEM_KINDS
};

/* The stage of a booking, or of a layer_memory row, that belongs to no
 * single stage but to the model as a whole. */
#define TT_MEM_MODEL (-1)

typedef struct tt_memkind {
	const char *name;   /* as in layer_memory.kind and the JSON result */
	const char *help;   /* what it holds, one line */
	char letter;        /* the explorer's ASCII mark for its bars */
	const char *role;   /* its theme role (tunetop(1) THEMES) */
	int per_stage;      /* stored per stage (1), or as one row of the
	                     * whole model, stage TT_MEM_MODEL (0): the
	                     * workspace is shared scratch that the model
	                     * allocates once for all its stages */
} tt_memkind;

extern const tt_memkind tt_memkinds[TT_MEM_KINDS];

/* The kind named name, or -1. */
int tt_memkind_find(const char *name);

#endif
