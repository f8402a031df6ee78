/*
 * backend.c — the registry of backends.  This is the one place where the
 * CUDA build differs from the CPU build: layers only ever see a table.
 * With TUNETOP_PROFILE set, the table handed out is the timing wrapper of
 * backend_prof.c around it.  "cpu-ref" is the CPU backend without its
 * fast paths (backend_cpu.c): the reference they are tested against.
 */
#include "backend.h"

#include <string.h>

extern const tt_backend tt_backend_cpu;
extern const tt_backend tt_backend_cpu_ref;
#ifdef TT_CUDA
extern const tt_backend tt_backend_cuda;
#endif

static const tt_backend *const backends[] = {
	&tt_backend_cpu,
	&tt_backend_cpu_ref,
#ifdef TT_CUDA
	&tt_backend_cuda,
#endif
};

const tt_backend *tt_backend_get(const char *name)
{
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (strcmp(backends[i]->name, name) == 0)
			return tt_backend_profiling() ? tt_backend_profiled(backends[i])
			                              : backends[i];
	return NULL;
}

const char *tt_backend_list(void)
{
#ifdef TT_CUDA
	return "cpu, cpu-ref, cuda";
#else
	return "cpu, cpu-ref";
#endif
}
