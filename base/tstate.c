/*
 * tstate.c — the trial states' table; see tstate.h.
 */
#include "tstate.h"

#include <string.h>

const tt_tstate tt_tstates[TT_T_COUNT] = {
	[TT_T_QUEUED] = { "queued", 0, 'q', "state.queued",
	                  "waiting for a worker" },
	[TT_T_RUNNING] = { "running", 0, 'R', "state.running", "training now" },
	[TT_T_PAUSED] = { "paused", 0, 'P', "state.paused",
	                  "held by hand until resumed" },
	[TT_T_DONE] = { "done", 0, 'd', "state.done",
	                "its last rung finished; a promotion may run the next" },
	[TT_T_KILLED] = { "killed", 1, 'K', "state.killed", "stopped for good by hand" },
	[TT_T_DIVERGED] = { "diverged", 1, 'X', "state.diverged",
	                    "its loss became NaN or infinite" },
	[TT_T_FAILED] = { "failed", 1, 'F', "state.failed",
	                  "failed for another reason" },
};

int tt_tstate_find(const char *name)
{
	for (int k = 0; name && k < TT_T_COUNT; k++)
		if (strcmp(tt_tstates[k].name, name) == 0)
			return k;
	return -1;
}

const char *tt_tstate_name(int s)
{
	return s >= 0 && s < TT_T_COUNT ? tt_tstates[s].name : "?";
}
