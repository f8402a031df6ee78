/*
 * data.h — image classification data sets in host memory.
 *
 * Pixels stay as bytes (a quarter of the memory of floats); a batch is
 * normalised and, optionally, augmented as it is assembled.  Everything is
 * deterministic given the seeds passed in.  Images are NHWC (for the
 * 1-channel sets here NHWC and NCHW coincide).
 *
 * On failure every function leaves its outputs zeroed, so tt_data_free on
 * them is always safe; outputs are overwritten, never freed first.
 */
#ifndef TT_DATA_H
#define TT_DATA_H

#include <stdint.h>

#include "err.h"
#include "rng.h"

#define TT_FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define TT_FASHION_PKG "dataset-fashion-mnist"

typedef struct tt_dataset {
	int n;           /* examples */
	int h, w, c;     /* image shape */
	int classes;     /* labels are in [0, classes) */
	uint8_t *pix;    /* n*h*w*c bytes, NHWC */
	uint8_t *label;  /* n bytes */
	float mean, std; /* normalisation applied by tt_data_batch */
} tt_dataset;

/*
 * Read an IDX image file (magic 0x00000803, u8, 3 dims) and an IDX label
 * file (0x00000801, u8, 1 dim), each raw or gzipped (zlib detects which).
 * Bad magic, a wrong element type, a truncated file, trailing bytes, counts
 * that differ between the two files or a label >= 10 are TT_EINPUT with a
 * message naming the file and what was expected.  Each dimension must be in
 * 1..2^20 and the pixels at most 2^31 bytes, so a hostile header is an
 * input error, never a huge allocation.  c is 1; mean/std are set to 0/1.
 */
int tt_data_load_idx(const char *images, const char *labels, tt_dataset *out,
                     tt_err *err);

/*
 * Load the train (test = 0) or test (test = 1) half of an MNIST-layout
 * directory: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].  A missing
 * directory or file is TT_EINPUT; when dir is TT_FASHION_DIR the message
 * names the Debian package TT_FASHION_PKG to install.
 */
int tt_data_load_dir(const char *dir, int test, tt_dataset *out, tt_err *err);

/*
 * A seeded synthetic set: 28x28x1, 10 classes built from a shared pool of
 * random blobs (4 per class) with per-example strengths, a shift of up to
 * 2 pixels and noise: learnable, not linearly trivial.  Labels are random,
 * roughly balanced; a smaller n is a prefix of a larger one; n < 1 is
 * TT_EINPUT.
 */
int tt_data_synthetic(int n, uint64_t seed, tt_dataset *out, tt_err *err);

/*
 * Carve a seeded, disjoint (train, val) pair of sizes n_train and n_val out
 * of all (n_train + n_val <= all->n, else TT_EINPUT naming the sizes), by a
 * TT_STREAM_SPLIT shuffle.  Both get the mean and the population standard
 * deviation (1 when it is 0) of the train part's pixels scaled to [0, 1].
 */
int tt_data_split(const tt_dataset *all, int n_train, int n_val, uint64_t seed,
                  tt_dataset *train, tt_dataset *val, tt_err *err);

/* Assemble b examples idx[0..b) (each in [0, n)) as floats
 * ((p/255 - mean)/std) into x (b*h*w*c floats) and labels into y.  With
 * augment, output pixel (y, x) comes from source pixel (y+dy, x'+dx), x'
 * being x or w-1-x when flipped, raw 0 outside the image; dy, dx in
 * [-2, 2] and the flip (probability 1/2) are three draws from r per image,
 * in that order.  r may be NULL without augment. */
void tt_data_batch(const tt_dataset *d, const int *idx, int b, int augment,
                   tt_rng *r, float *x, int *y);

/* Free the buffers; safe on a zeroed or already freed set. */
void tt_data_free(tt_dataset *d);

#endif
