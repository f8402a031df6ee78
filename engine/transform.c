/*
 * transform.c — label noise and differentiable rotation; see transform.h.
 *
 * Rotation geometry: with centre (cy, cx) = ((h-1)/2, (w-1)/2), angle a in
 * radians, output (y, x) at offsets (dy, dx) from the centre samples the
 * input at
 *   u = cx + cos(a) dx - sin(a) dy     (column)
 *   v = cy + sin(a) dx + cos(a) dy     (row)
 * which turns the picture by a counter-clockwise as displayed (rows grow
 * downwards, so +90 degrees takes the top-right corner to the top-left).
 * du/da = -sin(a) dx - cos(a) dy and dv/da = cos(a) dx - sin(a) dy.
 */
#include "transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tt_xform_label_noise(tt_dataset *d, double p, uint64_t seed, int *flipped,
                         tt_err *err)
{
	if (flipped)
		*flipped = 0;
	if (!(p >= 0 && p <= 1))
		return tt_err_set(err, TT_EINPUT, "label noise %g: expected a fraction in "
		                  "0..1", p);
	if (d->classes < 2)
		return tt_err_set(err, TT_EINPUT, "label noise needs at least 2 classes, "
		                  "the set has %d", d->classes);
	tt_rng r;
	tt_rng_seed(&r, seed, TT_STREAM_LABEL_NOISE);
	int nf = 0;
	for (int i = 0; i < d->n; i++) {
		if (tt_rng_uniform(&r) >= p)
			continue;
		/* one of the other classes: skip over the true one */
		uint32_t k = tt_rng_below(&r, (uint32_t)d->classes - 1);
		if (k >= d->label[i])
			k++;
		d->label[i] = (uint8_t)k;
		nf++;
	}
	if (flipped)
		*flipped = nf;
	return TT_OK;
}

void tt_xform_rotate(const float *in, int n, int h, int w, int c, double deg,
                     float fill, float *out, float *dout)
{
	double a = deg * (M_PI / 180.0), ca = cos(a), sa = sin(a);
	double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
	/* d/d deg = d/d a * pi/180 */
	const double k = M_PI / 180.0;
	size_t img = (size_t)h * w * c;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			double dx = x - cx, dy = y - cy;
			double u = cx + ca * dx - sa * dy, v = cy + sa * dx + ca * dy;
			double dua = -sa * dx - ca * dy, dva = ca * dx - sa * dy;
			int x0 = (int)floor(u), y0 = (int)floor(v);
			double fx = u - x0, fy = v - y0;
			for (int i = 0; i < n; i++)
				for (int ch = 0; ch < c; ch++) {
					const float *src = in + i * img + ch;
#define PIX(yy, xx) ((yy) >= 0 && (yy) < h && (xx) >= 0 && (xx) < w ? \
	(double)src[((size_t)(yy) * w + (xx)) * c] : (double)fill)
					double p00 = PIX(y0, x0), p01 = PIX(y0, x0 + 1);
					double p10 = PIX(y0 + 1, x0), p11 = PIX(y0 + 1, x0 + 1);
#undef PIX
					double top = p00 + fx * (p01 - p00);
					double bot = p10 + fx * (p11 - p10);
					size_t o = i * img + ((size_t)y * w + x) * c + ch;
					out[o] = (float)(top + fy * (bot - top));
					if (dout) {
						double ddx = (1 - fy) * (p01 - p00) + fy * (p11 - p10);
						double ddy = bot - top;
						dout[o] = (float)((ddx * dua + ddy * dva) * k);
					}
				}
		}
}

int tt_xform_rotate_set(tt_dataset *d, double deg, tt_err *err)
{
	size_t img = (size_t)d->h * d->w * d->c;
	float *a = malloc(img * sizeof *a), *b = malloc(img * sizeof *b);
	if (!a || !b) {
		free(a);
		free(b);
		return tt_err_set(err, TT_ERUNTIME, "out of memory rotating %d images", d->n);
	}
	for (int i = 0; i < d->n; i++) {
		uint8_t *p = d->pix + (size_t)i * img;
		for (size_t j = 0; j < img; j++)
			a[j] = p[j];
		tt_xform_rotate(a, 1, d->h, d->w, d->c, deg, 0.0f, b, NULL);
		for (size_t j = 0; j < img; j++) {
			float v = roundf(b[j]);
			p[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
	}
	free(a);
	free(b);
	return TT_OK;
}
