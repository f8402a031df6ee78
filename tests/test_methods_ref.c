/*
 * test_methods_ref.c — the methods' numerical cores against independent
 * PyTorch implementations (autograd, float64): tests/ref/methods_ref.txt,
 * written by tests/ref/gen_methods_ref.py from inputs that both sides
 * build from the same closed-form formulas (see that script).  Run from
 * the repository root, as tests/run.sh does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gmn.h"
#include "gp.h"
#include "hypernet.h"
#include "mwn.h"
#include "test.h"
#include "transform.h"

#define REF "tests/ref/methods_ref.txt"

/* The values of one name, in index order; n gets the count.  NULL when
 * the file or the name is missing. */
static double *ref(const char *name, int *n)
{
	FILE *f = fopen(REF, "r");
	if (!f) {
		fprintf(stderr, "  cannot open %s (run from the repository root)\n", REF);
		return NULL;
	}
	char key[64];
	int i;
	double v;
	double *out = NULL;
	*n = 0;
	while (fscanf(f, "%63s %d %lf", key, &i, &v) == 3) {
		if (strcmp(key, name))
			continue;
		double *nb = realloc(out, (size_t)(i + 1) * sizeof *out);
		if (!nb)
			break;
		out = nb;
		out[i] = v;
		if (i + 1 > *n)
			*n = i + 1;
	}
	fclose(f);
	if (!out)
		fprintf(stderr, "  %s: no values called %s\n", REF, name);
	return out;
}

/* Compare got[0..n) with the reference; atol/rtol per value. */
static void compare(const char *name, const double *got, int n, double atol, double rtol)
{
	int m;
	double *want = ref(name, &m);
	CHECK(want && m == n, "%s: %d reference values, %d computed", name, want ? m : 0, n);
	if (!want || m != n) {
		free(want);
		return;
	}
	int bad = 0;
	for (int i = 0; i < n; i++)
		if (!(fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i])) && bad++ < 3)
			fprintf(stderr, "  %s[%d]: %.10g, PyTorch %.10g\n", name, i, got[i], want[i]);
	CHECK(bad == 0, "%s: %d of %d values off", name, bad, n);
	free(want);
}

static void rotate_matches_pytorch(void)
{
	enum { N = 1, H = 7, W = 5, C = 2, M = N * H * W * C };
	float in[M], out[M], d[M];
	double o[M], dl = 0;
	for (int i = 0; i < M; i++)
		in[i] = (float)(sin(0.7 * i) + 0.3 * cos(0.13 * i));
	tt_xform_rotate(in, N, H, W, C, 23.0, 0.0f, out, d);
	for (int i = 0; i < M; i++) {
		o[i] = out[i];
		dl += cos(1.9 * i) * d[i];
	}
	/* the engine is float: 1e-5 of values near 1 */
	compare("rotate_out", o, M, 2e-6, 1e-5);
	compare("rotate_dloss_ddeg", &dl, 1, 1e-5, 1e-4);
}

static void mwn_matches_pytorch(void)
{
	enum { H = 10, N = 8, P = 3 * H + 1 };
	float phi[P], c[N], w[N];
	double g[P], L, wd[N];
	for (int k = 0; k < P; k++)
		phi[k] = (float)(0.5 * sin(1.1 * k + 0.3));
	for (int i = 0; i < N; i++)
		c[i] = (float)(0.2 + 0.37 * i);
	L = tt_mwn_loss_grad(phi, H, c, N, g);
	tt_mwn_weights(phi, H, c, N, w);
	for (int i = 0; i < N; i++)
		wd[i] = w[i];
	compare("mwn_loss", &L, 1, 1e-6, 1e-5);
	compare("mwn_weights", wd, N, 1e-7, 1e-5);
	compare("mwn_grad", g, P, 1e-6, 1e-4);
}

static void gmn_matches_pytorch(void)
{
	enum { NN = 6, E = 10 };
	static const int src[E] = { 0, 0, 1, 1, 2, 3, 3, 4, 5, 5 };
	static const int dst[E] = { 2, 3, 2, 4, 4, 4, 5, 5, 2, 1 };
	tt_gmn_config c = { .width = 5, .blocks = 2, .out = 3, .nf_node = 3, .nf_edge = 2 };
	double xn[NN * 3], xe[E * 2], out[3], r[3] = { 0.5, -1.0, 0.25 };
	for (int v = 0; v < NN; v++)
		for (int f = 0; f < 3; f++)
			xn[v * 3 + f] = cos(v + 2 * f);
	for (int e = 0; e < E; e++)
		for (int f = 0; f < 2; f++)
			xe[e * 2 + f] = sin(1.3 * e + f);
	tt_graph g = { .nnodes = NN, .nedges = E, .nf_node = 3, .nf_edge = 2, .xnode = xn,
	               .xedge = xe, .src = (int *)src, .dst = (int *)dst };
	size_t np = tt_gmn_nparams(&c);
	double *p = malloc(np * sizeof *p), *dp = calloc(np, sizeof *dp);
	for (size_t k = 0; k < np; k++)
		p[k] = 0.3 * sin(0.77 * k + 0.1);
	tt_gmn_tape *t = NULL;
	tt_err err = {0};
	CHECK(tt_gmn_forward(&c, p, &g, out, &t, &err) == TT_OK, "%s", err.msg);
	tt_gmn_backward(&c, p, &g, t, r, dp);
	tt_gmn_tape_free(t);
	compare("gmn_out", out, 3, 1e-12, 1e-9);
	compare("gmn_grad", dp, (int)np, 1e-12, 1e-8);
	free(p);
	free(dp);
}

static void hypernet_matches_pytorch(void)
{
	tt_hn_config c = { .tasks = 2, .emb = 3, .hidden = 4, .u = 3, .ce = 2 };
	tt_hn_item it[3] = {
		{ TT_HN_CONV, 2, 4, 0, 0 }, { TT_HN_DENSE, 3, 0, 8, 0 }, { TT_HN_TABLE, 2, 0, 11, 1 },
	};
	size_t np = tt_hn_nparams(&c, it, 3);
	float *psi = malloc(np * sizeof *psi), *dpsi = calloc(np, sizeof *dpsi);
	float out[13] = {0}, r[13];
	double o[13], *dp = malloc(np * sizeof *dp);
	for (size_t k = 0; k < np; k++)
		psi[k] = (float)(0.4 * sin(0.91 * k + 0.2));
	for (int k = 0; k < 13; k++)
		r[k] = (float)cos(0.5 * k);
	tt_hn_generate(&c, it, 3, psi, 1, out);
	tt_hn_backward(&c, it, 3, psi, 1, r, dpsi);
	for (int k = 0; k < 13; k++)
		o[k] = out[k];
	for (size_t k = 0; k < np; k++)
		dp[k] = dpsi[k];
	/* float parameters: PyTorch saw the same values rounded the other way
	 * (its inputs are float64 of the formula) */
	compare("hn_out", o, 13, 1e-6, 1e-5);
	compare("hn_grad", dp, (int)np, 1e-6, 1e-5);
	free(psi);
	free(dpsi);
	free(dp);
}

static void gp_matches_pytorch(void)
{
	enum { N = 4, F = 2 };
	double phi[N * F], y[N], dphi[N * F], mu[2], sd[2];
	for (int i = 0; i < N; i++) {
		for (int k = 0; k < F; k++)
			phi[i * F + k] = sin(1.7 * i + 0.9 * k);
		y[i] = 0.3 + 0.1 * cos(2.1 * i);
	}
	tt_gp_hyper h = { -0.4, 0.2, -1.1, 0.25 }, dh;
	tt_gp g = {0};
	tt_err err = {0};
	CHECK(tt_gp_fit(&g, phi, y, N, F, &h, &dh, dphi, &err) == TT_OK, "%s", err.msg);
	double dhv[4] = { dh.log_s, dh.log_l, dh.log_sn, dh.mean };
	compare("gp_nll", &g.nll, 1, 1e-12, 1e-10);
	compare("gp_dh", dhv, 4, 1e-12, 1e-9);
	compare("gp_dphi", dphi, N * F, 1e-12, 1e-9);
	const double q[4] = { 0.1, -0.2, 1.5, 0.7 };
	tt_gp_predict(&g, q, 2, mu, sd);
	compare("gp_mu", mu, 2, 1e-12, 1e-10);
	compare("gp_sd", sd, 2, 1e-12, 1e-9);
	tt_gp_free(&g);
}

int main(void)
{
	TT_RUN(rotate_matches_pytorch);
	TT_RUN(mwn_matches_pytorch);
	TT_RUN(gmn_matches_pytorch);
	TT_RUN(hypernet_matches_pytorch);
	TT_RUN(gp_matches_pytorch);
	TT_EXIT();
}
