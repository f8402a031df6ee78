/*
 * optim.c — learning-rate schedules and the update over the trainable
 * suffix; see optim.h.  The arithmetic itself is a backend operation.
 */
#include "optim.h"

#include <math.h>

int tt_optim_slots(const tt_optim_config *c)
{
	if (c->kind == TT_OPT_ADAMW)
		return 2;
	return c->momentum != 0.0f ? 1 : 0;
}

float tt_optim_lr(const tt_optim_config *c, long step)
{
	if (c->warmup > 0 && step < c->warmup)
		return c->lr * (float)(step + 1) / (float)c->warmup;
	long T = c->total_steps - c->warmup, t = step - c->warmup;
	if (T < 1)
		T = 1;
	switch (c->schedule) {
	case TT_SCHED_STEP:
		/* two decays, at half and at three quarters of the run */
		return c->lr * powf(c->step_gamma, (float)((2 * t >= T) + (4 * t >= 3 * T)));
	case TT_SCHED_COSINE:
		return c->lr * 0.5f * (1.0f + cosf(3.14159265f * (float)t / (float)T));
	default:
		return c->lr;
	}
}

void tt_optim_step(tt_model *m, const tt_optim_config *c, long step)
{
	const tt_backend *be = tt_model_backend(m);
	float *w = tt_model_params(m) + tt_model_trainable_offset(m);
	size_t n = tt_model_ntrainable(m);
	float lr = tt_optim_lr(c, step);
	if (c->kind == TT_OPT_ADAMW)
		be->adamw_step(w, tt_model_grads(m), tt_model_optim(m, 0),
		               tt_model_optim(m, 1), n, lr, c->beta1, c->beta2, c->eps,
		               c->weight_decay, step + 1);
	else
		be->sgd_step(w, tt_model_grads(m), tt_model_optim(m, 0), n, lr,
		             c->momentum, c->weight_decay, c->nesterov);
}
