/*
 * memkind.c — the memory kinds' table; see memkind.h.
 */
#include "memkind.h"

#include <string.h>

const tt_memkind tt_memkinds[TT_MEM_KINDS] = {
	[TT_MEM_PARAMS] = { "params", "parameters and batch-norm statistics", 'P',
	                    "mem.params", 1 },
	[TT_MEM_GRADS] = { "grads", "parameter gradients", 'G', "mem.grads", 1 },
	[TT_MEM_OPTIM] = { "optim", "optimizer state", 'O', "mem.optim", 1 },
	[TT_MEM_ACT] = { "activations", "activations kept for the backward pass", 'A',
	                 "mem.activations", 1 },
	[TT_MEM_WORK] = { "workspace", "scratch shared by the whole model", 'W',
	                  "mem.workspace", 0 },
	[TT_MEM_METHOD] = { "method", "a training method's own buffers (EvoGrad's "
	                    "weight copy and validation gradient)", 'M', "mem.method", 0 },
};

int tt_memkind_find(const char *name)
{
	for (int k = 0; name && k < TT_MEM_KINDS; k++)
		if (strcmp(tt_memkinds[k].name, name) == 0)
			return k;
	return -1;
}
