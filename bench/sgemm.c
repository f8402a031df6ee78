/*
 * sgemm.c — what OpenBLAS sgemm reaches on this machine, in the same run
 * as the engine benchmark, so the engine's achieved GFLOP/s can be read as
 * a share of what the BLAS it calls could give it.
 *
 * Shapes are those a training step of the benchmark models hands to sgemm
 * (row-major, C (M,N) = op(A) op(B), batch 128 on 28x28x1 input):
 *
 *   conv: im2col chunks of 32 images of a resnet:*:w16, one group per
 *   width (28x28x16, 14x14x32, 7x7x64 outputs, 3x3 kernels):
 *     forward    Y (M,Cout)  = Xcol (M,K) W^T        M = 32*H*W, K = 9*Cin
 *     input grad dXcol (M,K) = dY (M,Cout) W (Cout,K)
 *     weight grad dW (Cout,K) = dY^T (Cout,M) Xcol (M,K)
 *   dense: mlp:512,512,512, batch 128:
 *     forward    Y (128,512) = X (128,512) W^T
 *     input grad dX (128,512) = dY (128,512) W
 *     weight grad dW (512,512) = dY^T (512,128) X (128,512)
 *
 * Each of a mix's shapes does the same number of flops per training step
 * (width doubles as the side halves), so the mix's rate is the harmonic
 * mean of its shapes' rates: what the engine would reach if all of its
 * time were sgemm at these shapes.  A 1024^3 product is the peak.
 *
 * Output, one line each:
 *   sgemm M N K TRANS GFLOPS      TRANS is NN, NT or TN (op(A), op(B))
 *   sgemm_mix NAME GFLOPS         NAME is conv or dense
 *   sgemm_peak GFLOPS
 *
 * Usage: sgemm [--quick] [--threads N]   (N defaults to 2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

void openblas_set_num_threads(int);

typedef struct sgemm_shape {
	const char *mix;        /* "conv", "dense" or NULL for the peak */
	int m, n, k;
	int ta, tb;             /* op(A) = A^T, op(B) = B^T */
} sgemm_shape;

static const sgemm_shape sgemm_shapes[] = {
	/* conv forward: Xcol (M,K) times W (Cout,K) transposed */
	{ "conv", 25088, 16, 144, 0, 1 },
	{ "conv", 6272, 32, 288, 0, 1 },
	{ "conv", 1568, 64, 576, 0, 1 },
	/* conv input gradient: dY (M,Cout) times W (Cout,K) */
	{ "conv", 25088, 144, 16, 0, 0 },
	{ "conv", 6272, 288, 32, 0, 0 },
	{ "conv", 1568, 576, 64, 0, 0 },
	/* conv weight gradient: dY (M,Cout) transposed times Xcol (M,K) */
	{ "conv", 16, 144, 25088, 1, 0 },
	{ "conv", 32, 288, 6272, 1, 0 },
	{ "conv", 64, 576, 1568, 1, 0 },
	/* dense, batch 128, 512 wide */
	{ "dense", 128, 512, 512, 0, 1 },
	{ "dense", 128, 512, 512, 0, 0 },
	{ "dense", 512, 512, 128, 1, 0 },
	/* the peak reference */
	{ NULL, 1024, 1024, 1024, 0, 0 },
};

#define SGEMM_NSHAPES (int)(sizeof sgemm_shapes / sizeof sgemm_shapes[0])

static double sgemm_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *sgemm_alloc(size_t n)
{
	/* 64-byte aligned, rounded up as aligned_alloc requires */
	size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
	float *p = aligned_alloc(64, bytes);
	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
	return p;
}

static void sgemm_call(const sgemm_shape *s, const float *a, const float *b,
                       float *c)
{
	/* Row-major: A is (M,K) or, transposed, stored (K,M); B likewise. */
	int lda = s->ta ? s->m : s->k;
	int ldb = s->tb ? s->k : s->n;
	cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
	            s->tb ? CblasTrans : CblasNoTrans, s->m, s->n, s->k,
	            1.0f, a, lda, b, ldb, 0.0f, c, s->n);
}

/* Best GFLOP/s of `repeats` timings, each of enough calls to last about
 * `min_s` seconds; -1 when the buffers cannot be allocated. */
static double sgemm_measure(const sgemm_shape *s, int repeats, double min_s)
{
	float *a = sgemm_alloc((size_t)s->m * s->k);
	float *b = sgemm_alloc((size_t)s->k * s->n);
	float *c = sgemm_alloc((size_t)s->m * s->n);
	double flops = 2.0 * s->m * s->n * s->k, best = -1;
	if (!a || !b || !c)
		goto out;

	/* Warm up (thread pool, caches) and size the timed batch of calls. */
	double t0 = sgemm_now();
	sgemm_call(s, a, b, c);
	double one = sgemm_now() - t0;
	int calls = one > 0 ? (int)(min_s / one) + 1 : 1000;
	if (calls > 100000)
		calls = 100000;

	for (int r = 0; r < repeats; r++) {
		t0 = sgemm_now();
		for (int i = 0; i < calls; i++)
			sgemm_call(s, a, b, c);
		double dt = sgemm_now() - t0;
		double g = flops * calls / dt / 1e9;
		if (g > best)
			best = g;
	}
out:
	free(a);
	free(b);
	free(c);
	return best;
}

int main(int argc, char **argv)
{
	int quick = 0, threads = 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = 1;
		} else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			threads = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--quick] [--threads N]\n",
			        argv[0]);
			return 2;
		}
	}
	if (threads < 1) {
		fprintf(stderr, "sgemm: --threads must be at least 1\n");
		return 2;
	}
	openblas_set_num_threads(threads);
	int repeats = quick ? 2 : 5;
	double min_s = quick ? 0.05 : 0.2;

	/* Harmonic means per mix: sum of 1/rate and a count. */
	const char *mixes[] = { "conv", "dense" };
	double inv[2] = { 0, 0 };
	int cnt[2] = { 0, 0 };
	double peak = -1;

	for (int i = 0; i < SGEMM_NSHAPES; i++) {
		const sgemm_shape *s = &sgemm_shapes[i];
		double g = sgemm_measure(s, repeats, min_s);
		if (g <= 0) {
			fprintf(stderr, "sgemm: out of memory for %d %d %d\n",
			        s->m, s->n, s->k);
			return 1;
		}
		printf("sgemm %d %d %d %c%c %.2f\n", s->m, s->n, s->k,
		       s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', g);
		fflush(stdout);
		if (!s->mix) {
			peak = g;
			continue;
		}
		for (int j = 0; j < 2; j++) {
			if (!strcmp(s->mix, mixes[j])) {
				inv[j] += 1.0 / g;
				cnt[j]++;
			}
		}
	}
	for (int j = 0; j < 2; j++)
		printf("sgemm_mix %s %.2f\n", mixes[j], cnt[j] / inv[j]);
	printf("sgemm_peak %.2f\n", peak);
	return 0;
}
