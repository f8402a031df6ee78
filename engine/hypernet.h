/*
 * hypernet.h — the hypernetwork of partial hypernetworks for continual
 * learning (methods.md §5): from a learned task embedding it generates the
 * weights of the network's last stages, which the engine then runs by
 * pointer, and it learns from their gradients.
 *
 *   u_t = ReLU(L2(ReLU(L1(e_t))))            e_t the task's embedding
 *   conv kernel (Co, kh, kw, Ci): channel o's filter is
 *       Head([u_t ; c_o]) with c_o a learned embedding per output
 *       channel and Head one Linear(u + ce -> kh*kw*Ci) per kernel
 *   dense weight (n entries): Linear(u -> n)
 *   table (BN scale or shift, a bias): one learned row per task,
 *       initialised to a constant (1 for a scale, 0 otherwise)
 *
 * What is generated is a list of items, each written to an offset of the
 * caller's parameter vector in the model's own layout (model.h): a conv
 * item's filter o is the contiguous (kh, kw, Ci) block o of its kernel.
 * The hypernetwork's parameters psi are one float vector:
 *   task embeddings (tasks, emb), L1 W (hidden, emb) b, L2 W (u, hidden) b,
 *   then per item in order: conv: channel embeddings (Co, ce), head W
 *   (fan, u + ce) b; dense: W (n, u) b; table: (tasks, n).
 * Sums are accumulated in double.  Trunk widths (hidden, u) are at most
 * 512, and u + ce at most 1024.
 */
#ifndef TT_HYPERNET_H
#define TT_HYPERNET_H

#include <stddef.h>
#include <stdint.h>

enum tt_hn_kind { TT_HN_CONV = 0, TT_HN_DENSE = 1, TT_HN_TABLE = 2 };

typedef struct tt_hn_item {
	int kind;            /* enum tt_hn_kind */
	int out;             /* conv: Co; dense and table: entries */
	int fan;             /* conv: kh * kw * Ci */
	size_t dst;          /* offset in the caller's parameter vector */
	float init;          /* table: the starting value */
} tt_hn_item;

typedef struct tt_hn_config {
	int tasks;           /* task ids 0..tasks-1 */
	int emb;             /* task embedding, 16 (32 in the paper) */
	int hidden;          /* 32 (50) */
	int u;               /* 16 (32) */
	int ce;              /* channel embedding, 8 (32) */
} tt_hn_config;

size_t tt_hn_nparams(const tt_hn_config *c, const tt_hn_item *it, int n);
/* Seeded: embeddings N(0, 1), Linear layers PyTorch-style uniform, tables
 * at their init. */
void tt_hn_init(const tt_hn_config *c, const tt_hn_item *it, int n, float *psi,
                uint64_t seed);
/* Write task's generated tensors into dst at the items' offsets. */
void tt_hn_generate(const tt_hn_config *c, const tt_hn_item *it, int n, const float *psi,
                    int task, float *dst);
/* dpsi += the gradient of (grad . generated) for task: grad is indexed
 * like dst (the engine's weight gradient read back at the items'
 * offsets). */
void tt_hn_backward(const tt_hn_config *c, const tt_hn_item *it, int n, const float *psi,
                    int task, const float *grad, float *dpsi);
/*
 * The forgetting regulariser L_H = sum over tasks[0..nt) of
 * |H_snap(t) - H_psi(t)|^2 over every generated entry, returned, and
 * dpsi += dL_H/dpsi.  scratch holds two generated vectors: 2 * span
 * floats, span = tt_hn_span.
 */
double tt_hn_reg(const tt_hn_config *c, const tt_hn_item *it, int n, const float *snap,
                 const float *psi, const int *tasks, int nt, float *dpsi, float *scratch);
/* The extent of the items in the caller's vector: max(dst + size). */
size_t tt_hn_span(const tt_hn_item *it, int n);

#endif
