/*
 * test_data.c — data.c: IDX reading (raw and gzipped, and every way a file
 * can be wrong), MNIST-layout directories, the synthetic set, the split and
 * batch assembly with and without augmentation.
 *
 * IDX files are written by the test itself into a mkdtemp directory, which
 * is removed at the end.  The real Fashion-MNIST is checked only when its
 * Debian package is installed.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "test.h"

static char tmpdir[64];

/* out = tmpdir/name */
static void tpath(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Write n bytes to path, gzipped when gz; 0 on success. */
static int write_bytes(const char *path, const uint8_t *buf, size_t n, int gz)
{
	if (gz) {
		gzFile f = gzopen(path, "wb");
		if (!f)
			return -1;
		int ok = n == 0 || gzwrite(f, buf, (unsigned)n) == (int)n;
		return gzclose(f) == Z_OK && ok ? 0 : -1;
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(buf, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/*
 * Write tmpdir/name as an IDX file: magic, ndims big-endian dims, then
 * ndata bytes of data (which the caller may make shorter or longer than
 * the dims promise).  The full path goes to path (cap 512).
 */
static void write_idx(char *path, const char *name, int gz, uint32_t magic,
                      int ndims, const uint32_t *dims, const uint8_t *data,
                      size_t ndata)
{
	size_t n = 4 + 4 * (size_t)ndims + ndata;
	uint8_t *buf = malloc(n);
	TT_ASSERT(buf);
	put_be32(buf, magic);
	for (int i = 0; i < ndims; i++)
		put_be32(buf + 4 + 4 * i, dims[i]);
	if (ndata)
		memcpy(buf + 4 + 4 * ndims, data, ndata);
	tpath(path, 512, name);
	TT_ASSERT(write_bytes(path, buf, n, gz) == 0);
	free(buf);
}

/* A small valid pair: 5 images of 3x4 and their labels 0..4. */
enum { SN = 5, SH = 3, SW = 4 };
static uint8_t small_pix[SN * SH * SW], small_lab[SN];

static void small_init(void)
{
	for (int i = 0; i < SN * SH * SW; i++)
		small_pix[i] = (uint8_t)(i * 37 + 11);
	for (int i = 0; i < SN; i++)
		small_lab[i] = (uint8_t)(SN - 1 - i);
}

static void write_small(char *img, char *lab, const char *tag, int gz_img,
                        int gz_lab)
{
	uint32_t idims[3] = {SN, SH, SW}, ldims[1] = {SN};
	char name[64];
	snprintf(name, sizeof name, "%s-img%s", tag, gz_img ? ".gz" : "");
	write_idx(img, name, gz_img, 0x803, 3, idims, small_pix,
	          sizeof small_pix);
	snprintf(name, sizeof name, "%s-lab%s", tag, gz_lab ? ".gz" : "");
	write_idx(lab, name, gz_lab, 0x801, 1, ldims, small_lab,
	          sizeof small_lab);
}

static int has(const char *msg, const char *s)
{
	return strstr(msg, s) != NULL;
}

/* The loaded set is exactly small_pix/small_lab. */
static void check_small(const tt_dataset *d)
{
	CHECK(d->n == SN && d->h == SH && d->w == SW && d->c == 1,
	      "shape %d %dx%dx%d", d->n, d->h, d->w, d->c);
	CHECK(d->classes == 10, "classes %d", d->classes);
	CHECK(d->mean == 0.0f && d->std == 1.0f, "mean %g std %g", d->mean,
	      d->std);
	CHECK(d->pix && memcmp(d->pix, small_pix, sizeof small_pix) == 0,
	      "pixels differ");
	CHECK(d->label && memcmp(d->label, small_lab, sizeof small_lab) == 0,
	      "labels differ");
}

static void test_idx_roundtrip(void)
{
	/* raw/raw, gz/gz and the two mixes: zlib must see through both. */
	for (int m = 0; m < 4; m++) {
		char img[512], lab[512], tag[16];
		tt_dataset d;
		tt_err e = {0};
		snprintf(tag, sizeof tag, "rt%d", m);
		write_small(img, lab, tag, m & 1, m >> 1 & 1);
		int rc = tt_data_load_idx(img, lab, &d, &e);
		CHECK(rc == TT_OK, "mode %d: %s", m, e.msg);
		if (rc == TT_OK)
			check_small(&d);
		tt_data_free(&d);
		tt_data_free(&d); /* twice is safe */
	}
	/* A gzipped file is really compressed (not written transparently). */
	char img[512], lab[512];
	write_small(img, lab, "gzcheck", 1, 1);
	FILE *f = fopen(img, "rb");
	int b0 = f ? fgetc(f) : -1, b1 = f ? fgetc(f) : -1;
	if (f)
		fclose(f);
	CHECK(b0 == 0x1f && b1 == 0x8b, "not gzip: %02x %02x", b0, b1);
}

/*
 * Load (images, labels), expect TT_EINPUT with a message holding every
 * string in want[] (NULL-terminated), and the output zeroed.
 */
static void expect_einput(const char *img, const char *lab,
                          const char *const *want, const char *what)
{
	tt_dataset d;
	tt_err e = {0};
	memset(&d, 0xab, sizeof d); /* garbage in: must be zeroed out */
	int rc = tt_data_load_idx(img, lab, &d, &e);
	CHECK(rc == TT_EINPUT, "%s: rc %d, msg '%s'", what, rc, e.msg);
	CHECK(e.code == TT_EINPUT, "%s: err code %d", what, e.code);
	for (int i = 0; want[i]; i++)
		CHECK(has(e.msg, want[i]), "%s: '%s' not in '%s'", what,
		      want[i], e.msg);
	CHECK(d.pix == NULL && d.label == NULL && d.n == 0,
	      "%s: output not zeroed", what);
	tt_data_free(&d);
}

static void test_idx_bad_magic(void)
{
	char img[512], lab[512], bad[512];
	uint32_t idims[3] = {SN, SH, SW}, ldims[1] = {SN};
	write_small(img, lab, "magic", 0, 0);

	/* A u8 IDX file of the wrong rank in place of the images. */
	write_idx(bad, "m802-img.gz", 1, 0x802, 2, idims, small_pix, 15);
	expect_einput(bad, lab, (const char *[]){"m802-img.gz", "bad magic",
	              "0x00000802", "expected 0x00000803", "images", NULL},
	              "2-dim images");
	/* An images file in place of the labels. */
	write_idx(bad, "m803-lab", 0, 0x803, 3, idims, small_pix,
	          sizeof small_pix);
	expect_einput(img, bad, (const char *[]){"m803-lab", "0x00000803",
	              "expected 0x00000801", "labels", NULL},
	              "images as labels");
	/* float32 elements (type 0x0d), right rank. */
	write_idx(bad, "mf32-img", 0, 0xd03, 3, idims, small_pix,
	          sizeof small_pix);
	expect_einput(bad, lab, (const char *[]){"mf32-img", "0x00000d03",
	              "0x0d", "u8", NULL}, "float images");
	/* Not IDX at all (the bytes of a PNG signature). */
	write_idx(bad, "png-lab", 0, 0x89504e47, 1, ldims, small_lab, SN);
	expect_einput(img, bad, (const char *[]){"png-lab", "0x89504e47",
	              "not an IDX file", NULL}, "png");
}

static void test_idx_truncated(void)
{
	char img[512], lab[512], bad[512];
	uint32_t idims[3] = {SN, SH, SW}, ldims[1] = {SN};
	write_small(img, lab, "trunc", 0, 0);

	for (int gz = 0; gz < 2; gz++) {
		/* Pixels cut short: 60 promised, 50 present. */
		write_idx(bad, gz ? "tpix-img.gz" : "tpix-img", gz, 0x803, 3,
		          idims, small_pix, 50);
		expect_einput(bad, lab, (const char *[]){
		              gz ? "tpix-img.gz" : "tpix-img", "truncated",
		              "expected 60 bytes of pixels", "found 50", NULL},
		              "short pixels");
		/* Labels cut short: 5 promised, 3 present. */
		write_idx(bad, gz ? "tlab.gz" : "tlab", gz, 0x801, 1, ldims,
		          small_lab, 3);
		expect_einput(img, bad, (const char *[]){
		              gz ? "tlab.gz" : "tlab", "truncated",
		              "expected 5 bytes of labels", "found 3", NULL},
		              "short labels");
		/* Header cut inside the dims: magic and one of three. */
		write_idx(bad, gz ? "thdr.gz" : "thdr", gz, 0x803, 1, idims,
		          NULL, 0);
		expect_einput(bad, lab, (const char *[]){
		              gz ? "thdr.gz" : "thdr", "truncated header",
		              "found 4 bytes", NULL}, "short header");
	}
	/* An empty file. */
	tpath(bad, sizeof bad, "empty");
	TT_ASSERT(write_bytes(bad, small_pix, 0, 0) == 0);
	expect_einput(bad, lab, (const char *[]){"empty", "truncated",
	              "found 0 bytes", NULL}, "empty");

	/* A gzip stream cut in the middle reads as truncated too. */
	uint8_t big[4 + 12 + 3000];
	uint32_t bdims[3] = {30, 10, 10}, b30[1] = {30};
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 24); /* incompressible */
	write_idx(bad, "cut-img.gz", 1, 0x803, 3, bdims, big, 3000);
	uint8_t lab30[30] = {0};
	char lab2[512];
	write_idx(lab2, "cut-lab", 0, 0x801, 1, b30, lab30, 30);
	FILE *f = fopen(bad, "rb");
	TT_ASSERT(f);
	size_t got = fread(big, 1, sizeof big, f);
	fclose(f);
	TT_ASSERT(got > 1000);
	TT_ASSERT(write_bytes(bad, big, got / 2, 0) == 0);
	expect_einput(bad, lab2, (const char *[]){"cut-img.gz", "truncated",
	              "expected 3000 bytes of pixels", NULL}, "cut gzip");
}

static void test_idx_corrupt_gzip(void)
{
	char img[512], lab[512], bad[512];
	uint32_t bdims[3] = {30, 10, 10};
	uint8_t big[3000 + 64];
	write_small(img, lab, "corrupt", 0, 0);

	/* Flip bits in the middle of a deflate stream: zlib reports a
	 * data error (or a CRC mismatch), which is bad input, not I/O. */
	for (size_t i = 0; i < 3000; i++)
		big[i] = (uint8_t)(i % 7 * 40);
	write_idx(bad, "corrupt-img.gz", 1, 0x803, 3, bdims, big, 3000);
	FILE *f = fopen(bad, "rb");
	TT_ASSERT(f);
	size_t got = fread(big, 1, sizeof big, f);
	fclose(f);
	TT_ASSERT(got > 40 && got < sizeof big);
	for (size_t i = 20; i < got - 8; i += 3)
		big[i] ^= 0x5a;
	TT_ASSERT(write_bytes(bad, big, got, 0) == 0);
	expect_einput(bad, lab, (const char *[]){"corrupt-img.gz",
	              "corrupt gzip data", NULL}, "corrupt gzip");
	/* A bad CRC alone (the last 8 bytes are CRC32 and length). */
	write_idx(bad, "crc-img.gz", 1, 0x803, 3, (uint32_t[]){SN, SH, SW},
	          small_pix, sizeof small_pix);
	f = fopen(bad, "rb");
	TT_ASSERT(f);
	got = fread(big, 1, sizeof big, f);
	fclose(f);
	big[got - 8] ^= 1;
	TT_ASSERT(write_bytes(bad, big, got, 0) == 0);
	expect_einput(bad, lab, (const char *[]){"crc-img.gz",
	              "corrupt gzip data", NULL}, "bad crc");
}

static void test_idx_trailing(void)
{
	char img[512], lab[512], bad[512];
	uint32_t idims[3] = {SN, SH, SW}, ldims[1] = {SN};
	uint8_t more[sizeof small_pix + 3];
	memcpy(more, small_pix, sizeof small_pix);
	memset(more + sizeof small_pix, 7, 3);
	write_small(img, lab, "trail", 0, 0);

	for (int gz = 0; gz < 2; gz++) {
		write_idx(bad, gz ? "long-img.gz" : "long-img", gz, 0x803, 3,
		          idims, more, sizeof more);
		expect_einput(bad, lab, (const char *[]){
		              gz ? "long-img.gz" : "long-img",
		              "3 trailing bytes", "60 bytes of pixels", NULL},
		              "long images");
		write_idx(bad, gz ? "long-lab.gz" : "long-lab", gz, 0x801, 1,
		          ldims, more, SN + 1);
		expect_einput(img, bad, (const char *[]){
		              gz ? "long-lab.gz" : "long-lab",
		              "1 trailing bytes", NULL}, "long labels");
	}
}

static void test_idx_count_mismatch(void)
{
	char img[512], lab[512], bad[512];
	uint32_t ldims[1] = {SN - 1};
	write_small(img, lab, "count", 1, 0);
	write_idx(bad, "four-lab", 0, 0x801, 1, ldims, small_lab, SN - 1);
	expect_einput(img, bad, (const char *[]){"count-img.gz", "four-lab",
	              "5 images", "4 labels", NULL}, "count mismatch");
}

static void test_idx_bad_label(void)
{
	char img[512], lab[512], bad[512];
	uint32_t ldims[1] = {SN};
	uint8_t l[SN] = {0, 9, 2, 12, 3};
	write_small(img, lab, "label", 0, 0);
	write_idx(bad, "lab12.gz", 1, 0x801, 1, ldims, l, SN);
	expect_einput(img, bad, (const char *[]){"lab12.gz",
	              "label 12 at index 3", "expected 0..9", NULL},
	              "label 12");
	l[3] = 10; /* the first value out of range */
	write_idx(bad, "lab10", 0, 0x801, 1, ldims, l, SN);
	expect_einput(img, bad, (const char *[]){"lab10",
	              "label 10 at index 3", NULL}, "label 10");
	l[3] = 255;
	write_idx(bad, "lab255", 0, 0x801, 1, ldims, l, SN);
	expect_einput(img, bad, (const char *[]){"lab255",
	              "label 255 at index 3", NULL}, "label 255");
}

static void test_idx_absurd_dims(void)
{
	char img[512], lab[512], bad[512];
	write_small(img, lab, "dims", 0, 0);

	uint32_t zero[3] = {SN, 0, SW};
	write_idx(bad, "zero-img", 0, 0x803, 3, zero, NULL, 0);
	expect_einput(bad, lab, (const char *[]){"zero-img",
	              "dimension 1 is 0", "expected 1..1048576", NULL},
	              "zero dim");
	uint32_t huge[3] = {SN, SH, (1u << 20) + 1};
	write_idx(bad, "huge-img", 0, 0x803, 3, huge, small_pix, 60);
	expect_einput(bad, lab, (const char *[]){"huge-img",
	              "dimension 2 is 1048577", NULL}, "huge dim");
	uint32_t maxd[3] = {0xffffffffu, 1, 1};
	write_idx(bad, "max-img", 0, 0x803, 3, maxd, small_pix, 60);
	expect_einput(bad, lab, (const char *[]){"max-img",
	              "dimension 0 is 4294967295", NULL}, "2^32-1 dim");
	/* Each dim legal, the product (2^60 bytes) not: refused before any
	 * allocation, not an out-of-memory. */
	uint32_t prod[3] = {1u << 20, 1u << 20, 1u << 20};
	write_idx(bad, "prod-img", 0, 0x803, 3, prod, small_pix, 60);
	expect_einput(bad, lab, (const char *[]){"prod-img",
	              "1048576 x 1048576 x 1048576", "limit", NULL},
	              "product");
	uint32_t lzero[1] = {0};
	write_idx(bad, "zero-lab", 0, 0x801, 1, lzero, NULL, 0);
	expect_einput(img, bad, (const char *[]){"zero-lab",
	              "dimension 0 is 0", NULL}, "zero labels");
}

static void test_idx_missing_file(void)
{
	char img[512], lab[512], none[512];
	write_small(img, lab, "miss", 0, 0);
	tpath(none, sizeof none, "no-such-file");
	expect_einput(none, lab, (const char *[]){"no-such-file",
	              "cannot open", NULL}, "missing images");
	expect_einput(img, none, (const char *[]){"no-such-file",
	              "cannot open", NULL}, "missing labels");
}

/* Make tmpdir/sub and return its path in dir (cap 512). */
static void make_subdir(char *dir, const char *sub)
{
	tpath(dir, 512, sub);
	TT_ASSERT(mkdir(dir, 0700) == 0);
}

static void test_load_dir(void)
{
	char dir[512], path[512], name[600];
	uint32_t idims[3] = {SN, SH, SW}, ldims[1] = {SN};
	uint8_t other[sizeof small_pix];
	tt_dataset d;
	tt_err e = {0};

	make_subdir(dir, "mnist");
	for (size_t i = 0; i < sizeof other; i++)
		other[i] = (uint8_t)~small_pix[i];
	/* train: images both gzipped (small_pix) and raw (other): .gz wins;
	 * labels raw only. */
	write_idx(path, "mnist/train-images-idx3-ubyte.gz", 1, 0x803, 3, idims,
	          small_pix, sizeof small_pix);
	write_idx(path, "mnist/train-images-idx3-ubyte", 0, 0x803, 3, idims,
	          other, sizeof other);
	write_idx(path, "mnist/train-labels-idx1-ubyte", 0, 0x801, 1, ldims,
	          small_lab, SN);
	int rc = tt_data_load_dir(dir, 0, &d, &e);
	CHECK(rc == TT_OK, "train: %s", e.msg);
	if (rc == TT_OK)
		check_small(&d);
	tt_data_free(&d);

	/* test half missing: names the images file it looked for. */
	memset(&d, 0xab, sizeof d);
	rc = tt_data_load_dir(dir, 1, &d, &e);
	CHECK(rc == TT_EINPUT, "t10k missing: rc %d", rc);
	snprintf(name, sizeof name, "%s/t10k-images-idx3-ubyte[.gz]", dir);
	CHECK(has(e.msg, name) && has(e.msg, "not found"), "msg '%s'", e.msg);
	CHECK(!has(e.msg, TT_FASHION_PKG), "package named: '%s'", e.msg);
	CHECK(d.pix == NULL && d.n == 0, "output not zeroed");

	/* test images present (raw), labels still missing. */
	write_idx(path, "mnist/t10k-images-idx3-ubyte", 0, 0x803, 3, idims,
	          other, sizeof other);
	rc = tt_data_load_dir(dir, 1, &d, &e);
	CHECK(rc == TT_EINPUT && has(e.msg, "t10k-labels-idx1-ubyte[.gz]"),
	      "labels missing: rc %d '%s'", rc, e.msg);

	/* Both present: the test half loads, from the raw files. */
	write_idx(path, "mnist/t10k-labels-idx1-ubyte.gz", 1, 0x801, 1, ldims,
	          small_lab, SN);
	rc = tt_data_load_dir(dir, 1, &d, &e);
	CHECK(rc == TT_OK, "t10k: %s", e.msg);
	CHECK(rc != TT_OK || memcmp(d.pix, other, sizeof other) == 0,
	      "t10k pixels differ");
	tt_data_free(&d);

	/* A trailing slash on the directory is fine. */
	snprintf(name, sizeof name, "%s/", dir);
	rc = tt_data_load_dir(name, 0, &d, &e);
	CHECK(rc == TT_OK, "trailing slash: %s", e.msg);
	tt_data_free(&d);

	/* A bad file in the directory is reported by its full path. */
	write_idx(path, "mnist/t10k-labels-idx1-ubyte.gz", 1, 0x801, 1, ldims,
	          (const uint8_t[]){1, 2, 30, 4, 5}, SN);
	rc = tt_data_load_dir(dir, 1, &d, &e);
	CHECK(rc == TT_EINPUT && has(e.msg, path) &&
	      has(e.msg, "label 30 at index 2"), "bad label: '%s'", e.msg);
}

static void test_load_dir_missing(void)
{
	char dir[512], file[512];
	tt_dataset d;
	tt_err e = {0};

	tpath(dir, sizeof dir, "no-such-dir");
	int rc = tt_data_load_dir(dir, 0, &d, &e);
	CHECK(rc == TT_EINPUT, "rc %d", rc);
	CHECK(has(e.msg, dir) && has(e.msg, "train-images-idx3-ubyte"),
	      "msg '%s'", e.msg);
	CHECK(!has(e.msg, TT_FASHION_PKG), "package named for another dir: "
	      "'%s'", e.msg);

	/* A regular file where the directory should be. */
	tpath(file, sizeof file, "a-file");
	TT_ASSERT(write_bytes(file, small_pix, 4, 0) == 0);
	rc = tt_data_load_dir(file, 1, &d, &e);
	CHECK(rc == TT_EINPUT && has(e.msg, file) &&
	      has(e.msg, "not a directory"), "rc %d '%s'", rc, e.msg);

	/* The message for the Fashion-MNIST directory names the package;
	 * testable only where the package is not installed. */
	struct stat st;
	if (stat(TT_FASHION_DIR, &st) == 0) {
		fprintf(stderr, "  (Fashion-MNIST installed: its not-found "
		        "message is not tested)\n");
		return;
	}
	const char *dirs[2] = {TT_FASHION_DIR, TT_FASHION_DIR "/"};
	for (int i = 0; i < 2; i++) {
		rc = tt_data_load_dir(dirs[i], 0, &d, &e);
		CHECK(rc == TT_EINPUT, "rc %d", rc);
		CHECK(has(e.msg, TT_FASHION_DIR) &&
		      has(e.msg, "Debian package " TT_FASHION_PKG) &&
		      has(e.msg, "apt-get install " TT_FASHION_PKG),
		      "msg '%s'", e.msg);
	}
}

/* The real Fashion-MNIST, where the package is installed. */
static void test_fashion_real(void)
{
	struct stat st;
	if (stat(TT_FASHION_DIR, &st) != 0) {
		fprintf(stderr, "  (Fashion-MNIST not installed: skipped)\n");
		return;
	}
	for (int test = 0; test < 2; test++) {
		tt_dataset d;
		tt_err e = {0};
		int want = test ? 10000 : 60000, count[10] = {0}, bad = 0;
		int rc = tt_data_load_dir(TT_FASHION_DIR, test, &d, &e);
		CHECK(rc == TT_OK, "%s", e.msg);
		if (rc)
			continue;
		CHECK(d.n == want && d.h == 28 && d.w == 28 && d.c == 1 &&
		      d.classes == 10, "test=%d: %d %dx%dx%d", test, d.n, d.h,
		      d.w, d.c);
		for (int i = 0; i < d.n; i++) {
			if (d.label[i] < 10)
				count[d.label[i]]++;
			else
				bad++;
		}
		CHECK(bad == 0, "%d labels >= 10", bad);
		for (int k = 0; k < 10; k++)
			CHECK(count[k] > want / 10 * 9 / 10 &&
			      count[k] < want / 10 * 11 / 10,
			      "test=%d: class %d has %d", test, k, count[k]);
		/* Not all-black: a real image set has ink. */
		uint64_t sum = 0;
		for (size_t i = 0; i < (size_t)d.n * 784; i++)
			sum += d.pix[i];
		CHECK(sum > (uint64_t)d.n * 784 * 30, "mean pixel %g",
		      (double)sum / d.n / 784);
		tt_data_free(&d);
	}
}

static void test_synthetic(void)
{
	tt_dataset a, b, c, p;
	tt_err e = {0};
	int n = 5000;

	CHECK(tt_data_synthetic(n, 5, &a, &e) == TT_OK, "%s", e.msg);
	CHECK(tt_data_synthetic(n, 5, &b, &e) == TT_OK, "%s", e.msg);
	CHECK(tt_data_synthetic(n, 6, &c, &e) == TT_OK, "%s", e.msg);
	CHECK(tt_data_synthetic(100, 5, &p, &e) == TT_OK, "%s", e.msg);
	if (!a.pix || !b.pix || !c.pix || !p.pix)
		goto out;
	size_t sz = (size_t)n * 28 * 28;
	CHECK(a.n == n && a.h == 28 && a.w == 28 && a.c == 1 &&
	      a.classes == 10, "shape %d %dx%dx%d", a.n, a.h, a.w, a.c);
	CHECK(a.mean == 0.0f && a.std == 1.0f, "mean %g std %g", a.mean, a.std);
	CHECK(memcmp(a.pix, b.pix, sz) == 0 && memcmp(a.label, b.label, n) == 0,
	      "same seed, different data");
	size_t diff = 0;
	for (size_t i = 0; i < sz; i++)
		diff += a.pix[i] != c.pix[i];
	CHECK(diff > sz / 2, "seeds 5 and 6 differ in only %zu of %zu bytes",
	      diff, sz);
	/* Example i depends on (seed, i) only. */
	CHECK(memcmp(p.pix, a.pix, 100 * 784) == 0 &&
	      memcmp(p.label, a.label, 100) == 0, "n=100 is not a prefix");

	int count[10] = {0}, bad = 0;
	for (int i = 0; i < n; i++) {
		if (a.label[i] < 10)
			count[a.label[i]]++;
		else
			bad++;
	}
	CHECK(bad == 0, "%d labels >= 10", bad);
	for (int k = 0; k < 10; k++)
		CHECK(count[k] > 400 && count[k] < 600, "class %d: %d of %d",
		      k, count[k], n);

	/* Learnable: a nearest-class-mean classifier fit on 4000 examples
	 * beats chance (10%) by far on the other 1000; not trivial: it
	 * does not get them all (about 80% measured). */
	static double cen[10][784];
	int cnt[10] = {0}, right = 0;
	memset(cen, 0, sizeof cen);
	for (int i = 0; i < 4000; i++) {
		cnt[a.label[i]]++;
		for (int j = 0; j < 784; j++)
			cen[a.label[i]][j] += a.pix[(size_t)i * 784 + j];
	}
	for (int k = 0; k < 10; k++)
		for (int j = 0; j < 784; j++)
			cen[k][j] /= cnt[k] ? cnt[k] : 1;
	for (int i = 4000; i < n; i++) {
		int best = -1;
		double bd = 1e300;
		for (int k = 0; k < 10; k++) {
			double dd = 0;
			const uint8_t *px = a.pix + (size_t)i * 784;
			for (int j = 0; j < 784; j++)
				dd += (px[j] - cen[k][j]) * (px[j] - cen[k][j]);
			if (dd < bd) {
				bd = dd;
				best = k;
			}
		}
		right += best == a.label[i];
	}
	CHECK(right > 600 && right < 990, "nearest mean: %d of 1000", right);
out:
	tt_data_free(&a);
	tt_data_free(&b);
	tt_data_free(&c);
	tt_data_free(&p);

	CHECK(tt_data_synthetic(0, 1, &a, &e) == TT_EINPUT && has(e.msg, "0"),
	      "n=0: '%s'", e.msg);
	CHECK(tt_data_synthetic(-3, 1, &a, &e) == TT_EINPUT &&
	      has(e.msg, "-3"), "n=-3: '%s'", e.msg);
}

/*
 * A set whose example i carries i in its first pixel and label i % 10, the
 * rest of its bytes a function of (i, position): index bookkeeping through
 * the split without trusting it.  (n <= 256, h*w*c >= 2.)
 */
static void indexed_set(tt_dataset *d, int n, int h, int w, int c)
{
	size_t sz = (size_t)h * w * c;
	memset(d, 0, sizeof *d);
	d->n = n;
	d->h = h;
	d->w = w;
	d->c = c;
	d->classes = 10;
	d->mean = 0.0f;
	d->std = 1.0f;
	d->pix = malloc((size_t)n * sz);
	d->label = malloc((size_t)n);
	TT_ASSERT(d->pix && d->label && n <= 256);
	for (int i = 0; i < n; i++) {
		d->label[i] = (uint8_t)(i % 10);
		d->pix[(size_t)i * sz] = (uint8_t)i;
		for (size_t j = 1; j < sz; j++) {
			uint32_t v = (uint32_t)(i * 131 + (int)j * 71);
			v *= 2654435761u; /* scramble; keep the top byte */
			d->pix[(size_t)i * sz + j] = (uint8_t)(v >> 24);
		}
	}
}

static void test_split(void)
{
	tt_dataset all, tr, va, tr2, va2, tr3, va3;
	tt_err e = {0};
	int n = 200, ntr = 120, nva = 50;
	size_t sz = 3 * 4 * 2;

	indexed_set(&all, n, 3, 4, 2);
	int rc = tt_data_split(&all, ntr, nva, 9, &tr, &va, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	if (rc)
		goto out;
	CHECK(tr.n == ntr && va.n == nva, "sizes %d %d", tr.n, va.n);
	CHECK(tr.h == 3 && tr.w == 4 && tr.c == 2 && tr.classes == 10 &&
	      va.h == 3 && va.w == 4 && va.c == 2 && va.classes == 10,
	      "shapes");

	/* Disjoint, and each example an exact copy of the one it names. */
	int seen[256] = {0}, moved = 0;
	for (int s = 0; s < 2; s++) {
		const tt_dataset *d = s ? &va : &tr;
		for (int i = 0; i < d->n; i++) {
			int k = d->pix[(size_t)i * sz];
			CHECK(k < n, "index %d", k);
			if (k >= n)
				continue;
			CHECK(seen[k] == 0, "example %d taken twice", k);
			seen[k]++;
			CHECK(d->label[i] == all.label[k] &&
			      memcmp(d->pix + (size_t)i * sz,
			             all.pix + (size_t)k * sz, sz) == 0,
			      "example %d not copied intact", k);
			moved += s == 0 && k != i;
		}
	}
	CHECK(moved > ntr / 2, "train barely shuffled (%d moved)", moved);

	/* mean and population sd of train pixels in [0, 1], directly. */
	double sum = 0, ss = 0;
	size_t tot = (size_t)ntr * sz;
	for (size_t i = 0; i < tot; i++)
		sum += tr.pix[i] / 255.0;
	double mean = sum / (double)tot;
	for (size_t i = 0; i < tot; i++)
		ss += (tr.pix[i] / 255.0 - mean) * (tr.pix[i] / 255.0 - mean);
	double sd = sqrt(ss / (double)tot);
	CHECK_CLOSE(tr.mean, mean, 0, 1e-6, "train mean");
	CHECK_CLOSE(tr.std, sd, 0, 1e-6, "train std");
	CHECK(va.mean == tr.mean && va.std == tr.std, "val mean/std %g %g",
	      va.mean, va.std);

	/* Same seed, same split; another seed, another split. */
	rc = tt_data_split(&all, ntr, nva, 9, &tr2, &va2, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	CHECK(rc || (memcmp(tr.pix, tr2.pix, tot) == 0 &&
	             memcmp(va.pix, va2.pix, (size_t)nva * sz) == 0 &&
	             memcmp(tr.label, tr2.label, ntr) == 0),
	      "same seed, different split");
	rc = tt_data_split(&all, ntr, nva, 10, &tr3, &va3, &e);
	CHECK(rc == TT_OK, "%s", e.msg);
	CHECK(rc || memcmp(tr.pix, tr3.pix, tot) != 0,
	      "seeds 9 and 10 give the same split");
	tt_data_free(&tr2);
	tt_data_free(&va2);
	tt_data_free(&tr3);
	tt_data_free(&va3);

	/* Everything, with no validation set. */
	rc = tt_data_split(&all, n, 0, 1, &tr2, &va2, &e);
	CHECK(rc == TT_OK && tr2.n == n && va2.n == 0, "n, 0: %s", e.msg);
	tt_data_free(&tr2);
	tt_data_free(&va2);

	/* Sizes that do not fit, each named in the message. */
	struct { int tr, va; const char *want[3]; } bad[] = {
		{0, 10, {"n_train = 0", "200"}},
		{-5, 10, {"n_train = -5"}},
		{10, -1, {"n_val = -1"}},
		{150, 51, {"n_train = 150", "n_val = 51", "200"}},
		{0x7fffffff, 0x7fffffff, {"2147483647"}},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&tr2, 0xab, sizeof tr2);
		rc = tt_data_split(&all, bad[i].tr, bad[i].va, 1, &tr2, &va2,
		                   &e);
		CHECK(rc == TT_EINPUT, "(%d, %d): rc %d", bad[i].tr, bad[i].va,
		      rc);
		for (int j = 0; j < 3 && bad[i].want[j]; j++)
			CHECK(has(e.msg, bad[i].want[j]), "'%s' not in '%s'",
			      bad[i].want[j], e.msg);
		CHECK(tr2.pix == NULL && va2.pix == NULL, "outputs not zeroed");
	}
out:
	tt_data_free(&tr);
	tt_data_free(&va);
	tt_data_free(&all);
}

static void test_batch_plain(void)
{
	tt_dataset all, tr, va;
	tt_err e = {0};
	TT_ASSERT(tt_data_synthetic(60, 3, &all, &e) == TT_OK);
	TT_ASSERT(tt_data_split(&all, 50, 10, 4, &tr, &va, &e) == TT_OK);
	CHECK(tr.mean > 0.01f && tr.std > 0.01f, "mean %g std %g", tr.mean,
	      tr.std);

	int idx[5] = {3, 0, 49, 7, 3}, y[5];
	float x[5 * 784];
	memset(y, 0xff, sizeof y);
	tt_data_batch(&tr, idx, 5, 0, NULL, x, y);
	int wrong = 0;
	for (int i = 0; i < 5; i++) {
		CHECK(y[i] == tr.label[idx[i]], "label %d: %d", i, y[i]);
		for (int j = 0; j < 784; j++) {
			uint8_t p = tr.pix[(size_t)idx[i] * 784 + j];
			float want = ((float)p / 255.0f - tr.mean) / tr.std;
			wrong += x[i * 784 + j] != want;
		}
	}
	CHECK(wrong == 0, "%d pixels not exactly normalised", wrong);
	/* Normalised train pixels have mean ~0 and sd ~1. */
	int all_idx[50];
	static float xb[50 * 784];
	int yb[50];
	for (int i = 0; i < 50; i++)
		all_idx[i] = i;
	tt_data_batch(&tr, all_idx, 50, 0, NULL, xb, yb);
	double s = 0, ss = 0;
	for (int i = 0; i < 50 * 784; i++) {
		s += xb[i];
		ss += (double)xb[i] * xb[i];
	}
	CHECK_CLOSE(s / (50 * 784), 0.0, 1e-4, 0, "normalised mean");
	CHECK_CLOSE(ss / (50 * 784), 1.0, 0, 1e-4, "normalised var");
	tt_data_free(&all);
	tt_data_free(&tr);
	tt_data_free(&va);
}

/*
 * Reference augmentation, pixel by pixel: out(y, x) = p(y + dy, xc + dx)
 * with xc = flip ? w-1-x : x, p the raw image and raw 0 outside it,
 * normalised as in tt_data_batch.
 */
static void ref_augment(const tt_dataset *d, int k, int dy, int dx, int flip,
                        float *out)
{
	const uint8_t *src = d->pix + (size_t)k * d->h * d->w * d->c;
	for (int y = 0; y < d->h; y++)
		for (int x = 0; x < d->w; x++)
			for (int ch = 0; ch < d->c; ch++) {
				int sy = y + dy;
				int sx = (flip ? d->w - 1 - x : x) + dx;
				uint8_t p = 0;
				if (sy >= 0 && sy < d->h && sx >= 0 &&
				    sx < d->w)
					p = src[(sy * d->w + sx) * d->c + ch];
				out[(y * d->w + x) * d->c + ch] =
					((float)p / 255.0f - d->mean) / d->std;
			}
}

/*
 * Augment b examples of d and check each output is exactly one of the 50
 * (dy, dx, flip) transforms of its source; tally them in hist[dy][dx][f].
 */
static void check_augment(const tt_dataset *d, int b, uint64_t seed,
                          int hist[5][5][2])
{
	size_t sz = (size_t)d->h * d->w * d->c;
	float *x = malloc((size_t)b * sz * sizeof *x);
	float *x2 = malloc((size_t)b * sz * sizeof *x);
	float *ref = malloc(sz * sizeof *ref);
	int *idx = malloc((size_t)b * sizeof *idx);
	int *y = malloc((size_t)b * sizeof *y);
	int *y2 = malloc((size_t)b * sizeof *y2);
	tt_rng r, r2;
	TT_ASSERT(x && x2 && ref && idx && y && y2);

	for (int i = 0; i < b; i++)
		idx[i] = (i * 7 + 1) % d->n;
	tt_rng_seed(&r, seed, TT_STREAM_AUGMENT);
	tt_rng_seed(&r2, seed, TT_STREAM_AUGMENT);
	tt_data_batch(d, idx, b, 1, &r, x, y);
	tt_data_batch(d, idx, b, 1, &r2, x2, y2);
	CHECK(memcmp(x, x2, (size_t)b * sz * sizeof *x) == 0 &&
	      memcmp(y, y2, (size_t)b * sizeof *y) == 0,
	      "same rng seed, different batch");
	/* The rng moved on: the next batch is augmented differently. */
	tt_data_batch(d, idx, b, 1, &r2, x2, y2);
	CHECK(b < 8 || memcmp(x, x2, (size_t)b * sz * sizeof *x) != 0,
	      "rng not advanced");

	int unmatched = 0, ambiguous = 0, badlab = 0;
	for (int i = 0; i < b; i++) {
		int found = 0, fdy = 0, fdx = 0, ff = 0;
		badlab += y[i] != d->label[idx[i]];
		for (int dy = -2; dy <= 2; dy++)
			for (int dx = -2; dx <= 2; dx++)
				for (int f = 0; f < 2; f++) {
					ref_augment(d, idx[i], dy, dx, f, ref);
					if (memcmp(ref, x + (size_t)i * sz,
					           sz * sizeof *ref) == 0) {
						found++;
						fdy = dy, fdx = dx, ff = f;
					}
				}
		unmatched += found == 0;
		ambiguous += found > 1;
		if (found == 1)
			hist[fdy + 2][fdx + 2][ff]++;
	}
	CHECK(badlab == 0, "%d labels changed", badlab);
	CHECK(unmatched == 0, "%d of %d images are no shift/flip of their "
	      "source", unmatched, b);
	CHECK(ambiguous == 0, "%d images match several transforms", ambiguous);
	free(x);
	free(x2);
	free(ref);
	free(idx);
	free(y);
	free(y2);
}

/* n images of (h, w, c) with distinct nonzero bytes in each image (so
 * every transform gives a different result and padding shows). */
static void distinct_set(tt_dataset *d, int n, int h, int w, int c,
                         uint64_t seed)
{
	size_t sz = (size_t)h * w * c;
	int perm[255];
	tt_rng r;
	TT_ASSERT(sz <= 255);
	memset(d, 0, sizeof *d);
	d->n = n;
	d->h = h;
	d->w = w;
	d->c = c;
	d->classes = 10;
	d->mean = 0.4f;
	d->std = 0.3f;
	d->pix = malloc((size_t)n * sz);
	d->label = malloc((size_t)n);
	TT_ASSERT(d->pix && d->label);
	tt_rng_seed(&r, seed, 99);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 255; j++)
			perm[j] = j + 1;
		tt_rng_shuffle(&r, perm, 255);
		for (size_t j = 0; j < sz; j++)
			d->pix[(size_t)i * sz + j] = (uint8_t)perm[j];
		d->label[i] = (uint8_t)(i % 10);
	}
}

static void test_batch_augment(void)
{
	tt_dataset d;
	int hist[5][5][2];

	/* 1 channel, 6x7: a tally over 2000 draws sees every transform,
	 * with flips about half the time. */
	memset(hist, 0, sizeof hist);
	distinct_set(&d, 12, 6, 7, 1, 1);
	check_augment(&d, 2000, 17, hist);
	int flips = 0, never = 0;
	for (int a = 0; a < 5; a++)
		for (int b = 0; b < 5; b++) {
			flips += hist[a][b][1];
			never += !hist[a][b][0] + !hist[a][b][1];
		}
	CHECK(never == 0, "%d of the 50 transforms never drawn", never);
	CHECK(flips > 900 && flips < 1100, "%d flips in 2000", flips);
	tt_data_free(&d);

	/* 3 channels: channel order is kept under a flip, and flips do
	 * happen (a lost flip would still match the unflipped transform). */
	memset(hist, 0, sizeof hist);
	distinct_set(&d, 5, 4, 5, 3, 2);
	check_augment(&d, 300, 18, hist);
	flips = 0;
	for (int a = 0; a < 5; a++)
		for (int b = 0; b < 5; b++)
			flips += hist[a][b][1];
	CHECK(flips > 100 && flips < 200, "c=3: %d flips in 300", flips);
	tt_data_free(&d);

	/* 1x1, narrower than the shift: each output is the pixel itself
	 * (dy = dx = 0) or padding, never a read outside the image. */
	distinct_set(&d, 2, 1, 1, 1, 4);
	{
		float x[64];
		int idx[64], y[64], pad = 0, orig = 0;
		tt_rng r;
		for (int i = 0; i < 64; i++)
			idx[i] = i % 2;
		tt_rng_seed(&r, 5, TT_STREAM_AUGMENT);
		tt_data_batch(&d, idx, 64, 1, &r, x, y);
		float p0 = (0.0f - d.mean) / d.std;
		for (int i = 0; i < 64; i++) {
			float v = ((float)d.pix[idx[i]] / 255.0f - d.mean) /
			          d.std;
			pad += x[i] == p0;
			orig += x[i] == v;
		}
		CHECK(pad + orig == 64 && pad > 0 && orig > 0,
		      "1x1: %d pad, %d original", pad, orig);
	}
	tt_data_free(&d);
}

static void test_free(void)
{
	tt_dataset d;
	memset(&d, 0, sizeof d);
	tt_data_free(&d);
	tt_data_free(&d);
	tt_data_free(NULL);
	CHECK(d.pix == NULL && d.label == NULL, "zeroed set changed");
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/tt_test_data_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	small_init();
	TT_RUN(test_idx_roundtrip);
	TT_RUN(test_idx_bad_magic);
	TT_RUN(test_idx_truncated);
	TT_RUN(test_idx_corrupt_gzip);
	TT_RUN(test_idx_trailing);
	TT_RUN(test_idx_count_mismatch);
	TT_RUN(test_idx_bad_label);
	TT_RUN(test_idx_absurd_dims);
	TT_RUN(test_idx_missing_file);
	TT_RUN(test_load_dir);
	TT_RUN(test_load_dir_missing);
	TT_RUN(test_fashion_real);
	TT_RUN(test_synthetic);
	TT_RUN(test_split);
	TT_RUN(test_batch_plain);
	TT_RUN(test_batch_augment);
	TT_RUN(test_free);
	if (nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		perror(tmpdir);
	TT_EXIT();
}
