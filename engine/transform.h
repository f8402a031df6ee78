/*
 * transform.h — changes to data that experiments ask for: symmetric label
 * noise on a training split, and rotation of images by bilinear
 * resampling, differentiable in the angle (EvoGrad's rotation experiment,
 * methods.md §3).
 *
 * Rotation turns the image by deg degrees counter-clockwise about its
 * centre: output pixel (y, x) reads the input at the point that the
 * inverse rotation takes (y, x) to, bilinearly interpolated, with `fill`
 * outside the image.  Images are NHWC.
 */
#ifndef TT_TRANSFORM_H
#define TT_TRANSFORM_H

#include <stdint.h>

#include "data.h"
#include "err.h"

/*
 * Replace the label of each example, with probability p, by one of the
 * other classes-1 classes chosen uniformly (so about a fraction p of the
 * labels end wrong; "symmetric" noise).  Seeded by (seed,
 * TT_STREAM_LABEL_NOISE): one uniform draw per example, and one more per
 * flipped example.  *flipped (may be NULL) gets how many changed.
 * TT_EINPUT when p is outside [0, 1] or the set has fewer than 2 classes.
 */
int tt_xform_label_noise(tt_dataset *d, double p, uint64_t seed, int *flipped,
                         tt_err *err);

/*
 * out = rotate(in, deg) for n images (h, w, c) of floats; dout (may be
 * NULL) gets d out / d deg, element by element, where the bilinear
 * interpolation is differentiable (inside a cell; on a cell border the
 * one-sided derivative of the cell the point falls in).  in and out must
 * not overlap.
 */
void tt_xform_rotate(const float *in, int n, int h, int w, int c, double deg,
                     float fill, float *out, float *dout);

/* Rotate every image of d in place by deg degrees (bilinear, rounded to
 * the nearest byte, raw 0 outside).  TT_ERUNTIME when out of memory. */
int tt_xform_rotate_set(tt_dataset *d, double deg, tt_err *err);

#endif
