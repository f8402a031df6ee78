/*
 * optim.h — optimizers and learning-rate schedules.
 *
 * Steps run over the model's trainable suffix only (frozen stages have no
 * gradient and no state) through the backend's fused update operations.
 * Semantics follow PyTorch's SGD (momentum, Nesterov, coupled weight
 * decay) and AdamW (decoupled weight decay), so reference runs compare.
 */
#ifndef TT_OPTIM_H
#define TT_OPTIM_H

#include "model.h"

enum tt_opt_kind { TT_OPT_SGD, TT_OPT_ADAMW };
enum tt_sched_kind { TT_SCHED_CONSTANT, TT_SCHED_STEP, TT_SCHED_COSINE };

typedef struct tt_optim_config {
	int kind;               /* enum tt_opt_kind */
	float lr;
	float momentum;         /* SGD momentum; 0 for plain SGD */
	int nesterov;
	float weight_decay;
	float beta1, beta2, eps;/* AdamW */
	int schedule;           /* enum tt_sched_kind */
	long warmup;            /* linear warmup steps from lr/warmup */
	long total_steps;       /* the run's length, for cosine and step */
	float step_gamma;       /* step schedule: x gamma at 1/2 and 3/4 of the run */
} tt_optim_config;

/* Optimizer state slots per parameter for a kind: SGD with momentum 1,
 * without 0, AdamW 2. */
int tt_optim_slots(const tt_optim_config *c);
/* The learning rate at 0-based step. */
float tt_optim_lr(const tt_optim_config *c, long step);
/* One update of the trainable parameters; step is 0-based. */
void tt_optim_step(tt_model *m, const tt_optim_config *c, long step);

#endif
