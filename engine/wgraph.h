/*
 * wgraph.h — the weight graph of a network (methods.md §2, step 4): the
 * input of the graph metanetwork (gmn.h).
 *
 * A network is described as groups of units (the input's channels, a
 * hidden layer's neurons or channels, the output) and layers joining
 * them.  Nodes: one per unit of every group, plus one bias node per layer
 * that has a bias.  Edges, from the unit read to the unit fed:
 *   dense   one per weight W[o][i]
 *   conv    one per weight W[o][y][x][i] (kernel position as a feature)
 *   bias    from the layer's bias node to each output unit
 *   skip    an identity shortcut: unit c to unit c, value 1, no weight
 * A layer's batch norm (gamma, beta) becomes features of its output
 * units, and so do gate probabilities.
 *
 * Node features (TT_WG_NODE_F): group depth / deepest depth, one-hot
 * input / hidden / output / bias, BN gamma (1 without), BN beta (0
 * without), gate probability (1 without).  Edge features (TT_WG_EDGE_F):
 * value, layer / layers, one-hot dense / conv / bias / skip, kernel
 * position / positions (-1 for non-convolutions).  Nothing names a unit's
 * index, so permuting hidden units permutes nodes only.
 */
#ifndef TT_WGRAPH_H
#define TT_WGRAPH_H

#include <stddef.h>

#include "err.h"
#include "gmn.h"

#define TT_WG_NODE_F 8
#define TT_WG_EDGE_F 7

enum tt_wg_group { TT_WG_INPUT = 0, TT_WG_HIDDEN = 1, TT_WG_OUTPUT = 2 };
enum tt_wg_layer { TT_WG_DENSE = 0, TT_WG_CONV = 1, TT_WG_SKIP = 2 };

typedef struct tt_wg_group_desc {
	int units;
	int kind;                /* enum tt_wg_group */
	int depth;               /* for the depth feature */
} tt_wg_group_desc;

typedef struct tt_wg_layer_desc {
	int kind;                /* enum tt_wg_layer */
	int from, to;            /* groups */
	int kh, kw;              /* TT_WG_CONV */
	long w_off;              /* dense W (out, in); conv W (out, kh, kw, in) */
	long b_off;              /* bias (out), or -1 */
	long bn_off;             /* gamma (out) then beta (out) of to, or -1 */
	long gate_off;           /* index of to's first unit gate in the gate
	                          * probabilities, or -1 */
} tt_wg_layer_desc;

/*
 * Build g from the description and the parameter vector params (and the
 * gate probabilities probs, may be NULL).  g's arrays are allocated: free
 * with tt_wgraph_free.  TT_EINPUT for a description that does not fit
 * (a skip between groups of different sizes, an offset past nparams, a
 * group out of range); TT_ERUNTIME when out of memory.
 */
int tt_wgraph_build(const tt_wg_group_desc *groups, int ngroups,
                    const tt_wg_layer_desc *layers, int nlayers, const float *params,
                    size_t nparams, const float *probs, tt_graph *g, tt_err *err);
void tt_wgraph_free(tt_graph *g);

#endif
