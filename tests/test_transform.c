/*
 * test_transform.c — label noise and rotation (engine/transform.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "transform.h"
#include "test.h"

static tt_dataset labels(int n, int classes)
{
	tt_dataset d = { .n = n, .h = 1, .w = 1, .c = 1, .classes = classes };
	d.label = malloc((size_t)n);
	d.pix = calloc((size_t)n, 1);
	for (int i = 0; i < n; i++)
		d.label[i] = (uint8_t)(i % classes);
	return d;
}

static void label_noise_is_symmetric_and_seeded(void)
{
	enum { N = 20000 };
	tt_dataset d = labels(N, 10), e = labels(N, 10);
	int f = -1, f2 = -1, wrong = 0, to[10] = {0};
	tt_err err = {0};
	CHECK(tt_xform_label_noise(&d, 0.4, 3, &f, &err) == TT_OK, "%s", err.msg);
	CHECK(tt_xform_label_noise(&e, 0.4, 3, &f2, &err) == TT_OK, "%s", err.msg);
	CHECK(f == f2 && memcmp(d.label, e.label, N) == 0, "the same seed flips differently");
	for (int i = 0; i < N; i++)
		if (d.label[i] != i % 10) {
			wrong++;
			if (i % 10 == 3)
				to[d.label[i]]++;
		}
	CHECK(wrong == f, "%d labels differ, %d reported flipped", wrong, f);
	double sd = sqrt(N * 0.4 * 0.6);
	CHECK(fabs(wrong - 0.4 * N) < 4 * sd, "%d of %d flipped at p = 0.4", wrong, N);
	/* class 3's flips spread over the other nine classes, never itself */
	CHECK(to[3] == 0, "a flip kept its class");
	for (int k = 0; k < 10; k++)
		if (k != 3)
			CHECK(to[k] > 0.4 * 2000 / 9 * 0.6 && to[k] < 0.4 * 2000 / 9 * 1.4,
			      "class 3 flipped to %d %d times", k, to[k]);
	tt_xform_label_noise(&e, 0.4, 4, NULL, &err);
	tt_dataset g = labels(N, 10);
	tt_xform_label_noise(&g, 0.4, 4, NULL, &err);
	CHECK(memcmp(d.label, g.label, N) != 0, "seeds 3 and 4 flip the same labels");
	tt_dataset z = labels(N, 10);
	tt_xform_label_noise(&z, 0, 3, &f, &err);
	CHECK(f == 0, "p = 0 flipped %d", f);
	tt_xform_label_noise(&z, 1, 3, &f, &err);
	CHECK(f == N, "p = 1 flipped %d of %d", f, N);
	CHECK(tt_xform_label_noise(&z, 1.5, 3, NULL, &err) == TT_EINPUT &&
	      strstr(err.msg, "1.5"), "p = 1.5: %s", err.msg);
	CHECK(tt_xform_label_noise(&z, NAN, 3, NULL, &err) == TT_EINPUT, "p = NaN accepted");
	tt_data_free(&d);
	tt_data_free(&e);
	tt_data_free(&g);
	tt_data_free(&z);
}

static void rotation_by_right_angles(void)
{
	enum { H = 5, W = 5, C = 2 };
	float in[H * W * C], out[H * W * C];
	for (int i = 0; i < H * W * C; i++)
		in[i] = (float)(i * 7 % 13) - 3;
	tt_xform_rotate(in, 1, H, W, C, 0, -9, out, NULL);
	CHECK(memcmp(in, out, sizeof in) == 0, "0 degrees is not the identity");
	/* +90: counter-clockwise as displayed, out(y, x) = in(x, W-1-y) */
	tt_xform_rotate(in, 1, H, W, C, 90, -9, out, NULL);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int c = 0; c < C; c++)
				CHECK_CLOSE(out[(y * W + x) * C + c], in[(x * W + (W - 1 - y)) * C + c],
				            1e-5, 0, "90 degrees");
	/* 180 degrees twice, and the fill outside at 45 degrees' corners */
	float back[H * W * C];
	tt_xform_rotate(in, 1, H, W, C, 180, -9, out, NULL);
	tt_xform_rotate(out, 1, H, W, C, 180, -9, back, NULL);
	for (int i = 0; i < H * W * C; i++)
		CHECK_CLOSE(back[i], in[i], 1e-5, 0, "180 twice");
	/* at 45 degrees a 9x9 image's corner samples (4, -1.66): two rows
	 * above the image, the fill alone */
	float big[81], bigo[81];
	for (int i = 0; i < 81; i++)
		big[i] = (float)i;
	tt_xform_rotate(big, 1, 9, 9, 1, 45, -9, bigo, NULL);
	CHECK(bigo[0] == -9.0f, "the corner at 45 degrees reads %g, not the fill", bigo[0]);
	CHECK(bigo[40] == 40.0f, "the centre moved: %g", bigo[40]);
}

/* d out / d deg against central differences, weighted by a fixed random
 * vector (as a loss's gradient would), at angles where no sample point
 * sits on a cell border. */
static void rotation_derivative_matches_central_differences(void)
{
	enum { N = 2, H = 9, W = 7, C = 1, M = N * H * W * C };
	float in[M], o[M], op[M], om[M], d[M], r[M];
	for (int i = 0; i < M; i++) {
		in[i] = (float)sin(i * 0.7) + 0.3f * (float)cos(i * 0.13);
		r[i] = (float)cos(i * 1.9);
	}
	const double angles[] = { 17.3, -31.1, 62.7 };
	for (int a = 0; a < 3; a++) {
		double e = 1e-3;
		tt_xform_rotate(in, N, H, W, C, angles[a], 0.5f, o, d);
		tt_xform_rotate(in, N, H, W, C, angles[a] + e, 0.5f, op, NULL);
		tt_xform_rotate(in, N, H, W, C, angles[a] - e, 0.5f, om, NULL);
		double an = 0, fd = 0;
		for (int i = 0; i < M; i++) {
			an += (double)r[i] * d[i];
			fd += (double)r[i] * (op[i] - om[i]) / (2 * e);
		}
		CHECK(fabs(fd) > 1e-2, "angle %g: derivative %g too small to test", angles[a], fd);
		CHECK_CLOSE(an, fd, 1e-4, 2e-3, "d rotate / d deg");
	}
}

static void rotate_set_rounds_bytes(void)
{
	tt_dataset d = { .n = 1, .h = 4, .w = 4, .c = 1, .classes = 10 };
	d.pix = malloc(16);
	d.label = calloc(1, 1);
	for (int i = 0; i < 16; i++)
		d.pix[i] = (uint8_t)(i * 16);
	uint8_t orig[16];
	memcpy(orig, d.pix, 16);
	tt_err err = {0};
	CHECK(tt_xform_rotate_set(&d, 90, &err) == TT_OK, "%s", err.msg);
	for (int y = 0; y < 4; y++)
		for (int x = 0; x < 4; x++)
			CHECK(d.pix[y * 4 + x] == orig[x * 4 + 3 - y], "(%d,%d)", y, x);
	tt_data_free(&d);
}

int main(void)
{
	TT_RUN(label_noise_is_symmetric_and_seeded);
	TT_RUN(rotation_by_right_angles);
	TT_RUN(rotation_derivative_matches_central_differences);
	TT_RUN(rotate_set_rounds_bytes);
	TT_EXIT();
}
