/*
 * gmn.h — a graph metanetwork: a permutation-invariant embedding of a
 * network's weights (methods.md §2, step 4), the weight input of the FMS
 * surrogate.
 *
 * The input is a weight graph: one node per neuron (a channel for a
 * convolution) and bias node, one directed edge per weight from the unit
 * it reads to the unit it feeds.  Node and edge features are whatever the
 * graph builder puts there (layer index, node or edge type, the weight's
 * value, its kernel position); they must not name a unit's position within
 * its layer, or the embedding stops being invariant to permuting hidden
 * units.
 *
 * The network, in double, width w:
 *   x = Linear(node features), e = Linear(edge features)
 *   B blocks, each pre-LayerNorm and residual (LN without affine):
 *     e += MLP_e([LN(x)_src, LN(x)_dst, LN(e)])
 *     x += mean over the edges into each node of MLP_n([LN(x)_src, e])
 *          (0 for a node without incoming edges)
 *   readout (DeepSets): mean over nodes of MLP_r(x), then MLP_o to out
 * Every MLP is Linear, SiLU, Linear.  Gradients are analytic (tested by
 * central differences), for training the surrogate end to end.
 */
#ifndef TT_GMN_H
#define TT_GMN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct tt_graph {
	int nnodes, nedges;
	int nf_node, nf_edge;    /* feature widths */
	double *xnode;           /* (nnodes, nf_node) */
	double *xedge;           /* (nedges, nf_edge) */
	int *src, *dst;          /* nedges each, node ids */
} tt_graph;

typedef struct tt_gmn_config {
	int width;               /* 32 (the paper), 16 on 2 cores */
	int blocks;              /* 4 (the paper), 2 on 2 cores */
	int out;                 /* 32 */
	int nf_node, nf_edge;
} tt_gmn_config;

size_t tt_gmn_nparams(const tt_gmn_config *c);
/* PyTorch's default Linear initialisation, seeded. */
void tt_gmn_init(const tt_gmn_config *c, double *params, uint64_t seed);

/* What a forward keeps for its backward; opaque. */
typedef struct tt_gmn_tape tt_gmn_tape;

/*
 * out[0..c->out) = GMN(g).  With tape != NULL, *tape gets what backward
 * needs (free it with tt_gmn_tape_free): a NULL *tape is allocated, an
 * earlier one (of any graph and c) is reused and grown when needed, so
 * repeated forwards allocate once.  TT_EINPUT for a graph whose feature
 * widths differ from c's or whose edges name missing nodes; TT_ERUNTIME
 * when out of memory (an existing *tape stays valid to free).
 */
int tt_gmn_forward(const tt_gmn_config *c, const double *params, const tt_graph *g,
                   double *out, tt_gmn_tape **tape, tt_err *err);
/* dparams += d(dout . out)/dparams for the forward that made tape (the
 * same params and g).  The tape is only read, apart from its scratch, so
 * one forward may serve several backwards with different dout. */
void tt_gmn_backward(const tt_gmn_config *c, const double *params, const tt_graph *g,
                     tt_gmn_tape *tape, const double *dout, double *dparams);
void tt_gmn_tape_free(tt_gmn_tape *t);

#endif
