/*
 * wgraph.c — weight graphs; see wgraph.h.
 *
 * Nodes are numbered group by group (a group's units consecutive), then
 * the bias nodes layer by layer; edges layer by layer in the parameters'
 * order.  Two passes: count, then fill.
 */
#include "wgraph.h"

#include <stdlib.h>
#include <string.h>

void tt_wgraph_free(tt_graph *g)
{
	free(g->xnode);
	free(g->xedge);
	free(g->src);
	free(g->dst);
	memset(g, 0, sizeof *g);
}

static size_t layer_weights(const tt_wg_layer_desc *l, const tt_wg_group_desc *G)
{
	size_t in = (size_t)G[l->from].units, out = (size_t)G[l->to].units;
	return l->kind == TT_WG_DENSE ? in * out : l->kind == TT_WG_CONV
	       ? in * out * (size_t)l->kh * l->kw : 0;
}

int tt_wgraph_build(const tt_wg_group_desc *G, int ng, const tt_wg_layer_desc *L, int nl,
                    const float *p, size_t np, const float *probs, tt_graph *g, tt_err *err)
{
	memset(g, 0, sizeof *g);
	int *first = malloc(((size_t)ng + 1) * sizeof *first);
	if (!first)
		return tt_err_set(err, TT_ERUNTIME, "weight graph: out of memory");
	int nodes = 0, depth = 1;
	for (int k = 0; k < ng; k++) {
		first[k] = nodes;
		nodes += G[k].units;
		if (G[k].depth > depth)
			depth = G[k].depth;
	}
	size_t edges = 0;
	int biases = 0;
	for (int k = 0; k < nl; k++) {
		const tt_wg_layer_desc *l = &L[k];
		if (l->from < 0 || l->from >= ng || l->to < 0 || l->to >= ng) {
			free(first);
			return tt_err_set(err, TT_EINPUT, "weight graph: layer %d joins groups %d "
			                  "and %d of %d", k, l->from, l->to, ng);
		}
		int in = G[l->from].units, out = G[l->to].units;
		if (l->kind == TT_WG_SKIP && in != out) {
			free(first);
			return tt_err_set(err, TT_EINPUT, "weight graph: layer %d is an identity "
			                  "shortcut from %d units to %d", k, in, out);
		}
		size_t nw = layer_weights(l, G);
		if ((nw && (l->w_off < 0 || (size_t)l->w_off + nw > np)) ||
		    (l->b_off >= 0 && (size_t)l->b_off + out > np) ||
		    (l->bn_off >= 0 && (size_t)l->bn_off + 2 * (size_t)out > np)) {
			free(first);
			return tt_err_set(err, TT_EINPUT, "weight graph: layer %d reads past the %zu "
			                  "parameters", k, np);
		}
		edges += nw + (l->kind == TT_WG_SKIP ? (size_t)out : 0);
		if (l->b_off >= 0) {
			edges += (size_t)out;
			biases++;
		}
	}
	if (edges > 50000000) {
		free(first);
		return tt_err_set(err, TT_EINPUT, "weight graph: %zu edges, more than 5e7", edges);
	}
	g->nnodes = nodes + biases;
	g->nedges = (int)edges;
	g->nf_node = TT_WG_NODE_F;
	g->nf_edge = TT_WG_EDGE_F;
	g->xnode = calloc((size_t)g->nnodes * TT_WG_NODE_F, sizeof *g->xnode);
	g->xedge = calloc(edges * TT_WG_EDGE_F + 1, sizeof *g->xedge);
	g->src = malloc((edges + 1) * sizeof *g->src);
	g->dst = malloc((edges + 1) * sizeof *g->dst);
	if (!g->xnode || !g->xedge || !g->src || !g->dst) {
		free(first);
		tt_wgraph_free(g);
		return tt_err_set(err, TT_ERUNTIME, "weight graph: out of memory for %zu edges",
		                  edges);
	}
	for (int k = 0; k < ng; k++)
		for (int u = 0; u < G[k].units; u++) {
			double *f = g->xnode + (size_t)(first[k] + u) * TT_WG_NODE_F;
			f[0] = (double)G[k].depth / depth;
			f[1 + G[k].kind] = 1;
			f[5] = 1;  /* gamma */
			f[7] = 1;  /* gate */
		}
	size_t e = 0;
	int bias_node = nodes;
#define EDGE(s, d, val, type, pos) do { \
	double *x_ = g->xedge + e * TT_WG_EDGE_F; \
	g->src[e] = (s); g->dst[e] = (d); \
	x_[0] = (val); x_[1] = (double)k / nl; x_[2 + (type)] = 1; x_[6] = (pos); e++; } while (0)
	for (int k = 0; k < nl; k++) {
		const tt_wg_layer_desc *l = &L[k];
		int in = G[l->from].units, out = G[l->to].units;
		int a = first[l->from], b = first[l->to];
		if (l->kind == TT_WG_DENSE) {
			for (int o = 0; o < out; o++)
				for (int i = 0; i < in; i++)
					EDGE(a + i, b + o, p[l->w_off + (size_t)o * in + i], 0, -1);
		} else if (l->kind == TT_WG_CONV) {
			int kk = l->kh * l->kw;
			for (int o = 0; o < out; o++)
				for (int y = 0; y < l->kh; y++)
					for (int x = 0; x < l->kw; x++)
						for (int i = 0; i < in; i++)
							EDGE(a + i, b + o,
							     p[l->w_off + (((size_t)o * l->kh + y) * l->kw + x) * in + i],
							     1, (double)(y * l->kw + x) / kk);
		} else {
			for (int o = 0; o < out; o++)
				EDGE(a + o, b + o, 1.0, 3, -1);
		}
		if (l->b_off >= 0) {
			double *f = g->xnode + (size_t)bias_node * TT_WG_NODE_F;
			f[0] = (double)G[l->to].depth / depth;
			f[4] = 1;
			f[5] = 1;
			f[7] = 1;
			for (int o = 0; o < out; o++)
				EDGE(bias_node, b + o, p[l->b_off + o], 2, -1);
			bias_node++;
		}
		for (int o = 0; o < out; o++) {
			double *f = g->xnode + (size_t)(b + o) * TT_WG_NODE_F;
			if (l->bn_off >= 0) {
				f[5] = p[l->bn_off + o];
				f[6] = p[l->bn_off + out + o];
			}
			if (l->gate_off >= 0 && probs)
				f[7] = probs[l->gate_off + o];
		}
	}
#undef EDGE
	free(first);
	return TT_OK;
}
