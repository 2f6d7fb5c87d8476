/* Images as model inputs: PNG through libpng, JPEG through libjpeg-turbo
 * (Debian's libpng16 and libjpeg62-turbo, the decoders Debian's Pillow uses
 * too), turned into what torchvision's usual preprocessing gives a PyTorch
 * model:
 *
 *   Image.open(f).convert("RGB" or "L")     grey or RGB, as the input's channels say
 *   transforms.Resize((H, W))                bilinear, antialiased when shrinking
 *   transforms.ToTensor()                    [C, H, W] in [0, 1]
 *   transforms.Normalize(mean, std)          per channel (--normalize)
 *
 * The conversions and the resize follow Pillow's 8-bit arithmetic, so that
 * the result is the same bytes before ToTensor's scaling:
 * - RGB to grey is ITU-R 601-2 luma in 16-bit fixed point,
 *   L = (19595 R + 38470 G + 7471 B + 2^15) >> 16; grey to RGB repeats it;
 *   an alpha channel is dropped, not composited; palettes are expanded and
 *   16-bit samples cut to their high byte.
 * - The resize is separable: rows first, then columns, each output sample a
 *   weighted sum of the input samples under a triangle filter centred at
 *   (o + 0.5) * scale (scale = input size / output size), whose half-width
 *   is max(scale, 1) input samples.  The weights, normalized to sum 1, are
 *   rounded to 22 fractional bits; each sum starts at one half and is cut
 *   to 8 bits with clamping, also between the two passes.  A pass whose
 *   size does not change is skipped.
 * Written here rather than taken from a library: no Debian C library does
 * Pillow's resampling, and it is some sixty lines. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "netrt.h"

/* The largest image read: 64 Mi pixels (192 MiB as RGB), past any photo a
 * net classifies, and a bound on what a corrupt header can make us allocate. */
#define MAX_PIXELS (1u << 26)

/* An 8-bit image, c interleaved channels (1 or 3) per pixel.  Owns px. */
typedef struct {
    int w, h, c;
    unsigned char *px;
} image8;

bool netrt_is_image(const char *path) {
    unsigned char b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return (n == 8 && memcmp(b, png, 8) == 0) || (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff);
}

/* ---- decoding ----------------------------------------------------------------- */

/* libpng reports errors through a longjmp; the message is kept for ours. */
typedef struct {
    char msg[200];
} png_errbuf;

static void png_fail(png_structp p, png_const_charp msg) {
    png_errbuf *e = png_get_error_ptr(p);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(p, 1);
}
static void png_warn(png_structp p, png_const_charp msg) { (void)p, (void)msg; }

static int read_png(FILE *f, const char *path, image8 *im, char *err, size_t errlen) {
    png_errbuf e = {""};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &e, png_fail, png_warn);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    unsigned char *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return netrt_errorf(err, errlen, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(px);
        free(rows);
        return netrt_errorf(err, errlen, "%s: not a valid PNG file (%s)", path, e.msg[0] ? e.msg : "libpng");
    }
    png_init_io(p, f);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    int type = png_get_color_type(p, info);
    /* to 8-bit grey or RGB, no alpha, as Pillow's convert does */
    png_set_strip_16(p);
    png_set_packing(p);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(p, info) < 8) png_set_expand_gray_1_2_4_to_8(p);
    png_set_strip_alpha(p);
    png_read_update_info(p, info);
    int c = png_get_channels(p, info);
    if (w == 0 || h == 0 || (uint64_t)w * h > MAX_PIXELS || (c != 1 && c != 3)) {
        png_destroy_read_struct(&p, &info, NULL);
        return netrt_errorf(err, errlen, "%s: a PNG image of %ux%u pixels and %d channels cannot be read (at most %d "
                            "megapixels, grey or RGB)", path, (unsigned)w, (unsigned)h, c, MAX_PIXELS >> 20);
    }
    px = malloc((size_t)w * h * (size_t)c);
    rows = malloc(sizeof *rows * h);
    if (!px || !rows) png_fail(p, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * (size_t)c;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    png_destroy_read_struct(&p, &info, NULL);
    free(rows);
    *im = (image8){(int)w, (int)h, c, px};
    return 0;
}

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_errbuf;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_errbuf *e = (jpeg_errbuf *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}
/* libjpeg's warnings (a truncated file, corrupt data it would fill in with
 * grey) are errors here, as Pillow's are by default; its trace messages
 * (level > 0) are ignored. */
static void jpeg_strict(j_common_ptr cinfo, int level) {
    if (level < 0) jpeg_fail(cinfo);
}

static int read_jpeg(FILE *f, const char *path, image8 *im, char *err, size_t errlen) {
    struct jpeg_decompress_struct d;
    jpeg_errbuf e;
    unsigned char *volatile px = NULL;
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_fail;
    e.pub.emit_message = jpeg_strict;
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&d);
        free(px);
        return netrt_errorf(err, errlen, "%s: not a valid JPEG file (%s)", path, e.msg);
    }
    jpeg_create_decompress(&d);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    /* grey stays grey, everything else (YCbCr, CMYK as libjpeg converts it) to RGB */
    d.out_color_space = d.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    if (d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&d);
        return netrt_errorf(err, errlen, "%s: CMYK JPEG images are not supported", path);
    }
    jpeg_start_decompress(&d);
    int w = (int)d.output_width, h = (int)d.output_height, c = d.output_components;
    if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > MAX_PIXELS || (c != 1 && c != 3)) {
        jpeg_destroy_decompress(&d);
        return netrt_errorf(err, errlen, "%s: a JPEG image of %dx%d pixels and %d channels cannot be read (at most %d "
                            "megapixels, grey or RGB)", path, w, h, c, MAX_PIXELS >> 20);
    }
    px = malloc((size_t)w * (size_t)h * (size_t)c);
    if (!px) {
        jpeg_destroy_decompress(&d);
        return netrt_errorf(err, errlen, "%s: out of memory", path);
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = px + (size_t)d.output_scanline * (size_t)w * (size_t)c;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    *im = (image8){w, h, c, px};
    return 0;
}

static int read_image(const char *path, image8 *im, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return netrt_errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    unsigned char b[3] = {0};
    size_t n = fread(b, 1, 3, f);
    rewind(f);
    int rc = n == 3 && b[0] == 0xff && b[1] == 0xd8 ? read_jpeg(f, path, im, err, errlen)
                                                   : read_png(f, path, im, err, errlen);
    fclose(f);
    return rc;
}

/* ---- Pillow's conversions and resize ------------------------------------------------ */

/* im as c channels (1: luma; 3: grey repeated), in place. */
static int convert_channels(image8 *im, int c) {
    if (im->c == c) return 0;
    size_t n = (size_t)im->w * (size_t)im->h;
    unsigned char *q = malloc(n * (size_t)c);
    if (!q) return -1;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *s = im->px + i * (size_t)im->c;
        if (c == 1)
            q[i] = (unsigned char)((19595u * s[0] + 38470u * s[1] + 7471u * s[2] + 0x8000u) >> 16);
        else
            q[3 * i] = q[3 * i + 1] = q[3 * i + 2] = s[0];
    }
    free(im->px);
    im->px = q;
    im->c = c;
    return 0;
}

enum { PRECISION_BITS = 22 }; /* fractional bits of the fixed-point weights */

/* The weights of one axis from `in` samples to `out`: for output o, taps
 * [first[o], first[o] + count[o]) with weights wt[o * taps + k]. */
typedef struct {
    int taps, *first, *count;
    int32_t *wt;
} axis_weights;

static void weights_free(axis_weights *a) {
    free(a->first);
    free(a->count);
    free(a->wt);
}

static int axis_weights_make(int in, int out, axis_weights *a) {
    double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale, support = fscale; /* triangle: 1 */
    a->taps = (int)ceil(support) * 2 + 1;
    a->first = malloc(sizeof *a->first * (size_t)out);
    a->count = malloc(sizeof *a->count * (size_t)out);
    a->wt = calloc((size_t)out * (size_t)a->taps, sizeof *a->wt);
    double *w = malloc(sizeof *w * (size_t)a->taps);
    if (!a->first || !a->count || !a->wt || !w) {
        free(w);
        return -1;
    }
    for (int o = 0; o < out; o++) {
        double centre = (o + 0.5) * scale, sum = 0.0;
        int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        for (int k = 0; k < n; k++) {
            double x = fabs((k + lo - centre + 0.5) / fscale);
            w[k] = x < 1.0 ? 1.0 - x : 0.0;
            sum += w[k];
        }
        for (int k = 0; k < n; k++) {
            double v = sum != 0.0 ? w[k] / sum : w[k];
            a->wt[(size_t)o * (size_t)a->taps + (size_t)k] =
                (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        a->first[o] = lo;
        a->count[o] = n;
    }
    free(w);
    return 0;
}

static unsigned char clip8(int64_t s) {
    s >>= PRECISION_BITS;
    return (unsigned char)(s < 0 ? 0 : s > 255 ? 255 : s);
}

/* One pass: along x (rows) if horizontal, else along y; into a new buffer. */
static int resample_pass(image8 *im, int out, bool horizontal) {
    int in = horizontal ? im->w : im->h;
    axis_weights a;
    if (axis_weights_make(in, out, &a) < 0) {
        weights_free(&a);
        return -1;
    }
    int W = horizontal ? out : im->w, H = horizontal ? im->h : out, c = im->c;
    unsigned char *q = malloc((size_t)W * (size_t)H * (size_t)c);
    if (!q) {
        weights_free(&a);
        return -1;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int o = horizontal ? x : y;
            const int32_t *wt = a.wt + (size_t)o * (size_t)a.taps;
            for (int ch = 0; ch < c; ch++) {
                int64_t s = 1 << (PRECISION_BITS - 1);
                for (int k = 0; k < a.count[o]; k++) {
                    int i = a.first[o] + k;
                    size_t at = horizontal ? ((size_t)y * (size_t)im->w + (size_t)i) : ((size_t)i * (size_t)im->w + (size_t)x);
                    s += (int64_t)im->px[at * (size_t)c + (size_t)ch] * wt[k];
                }
                q[((size_t)y * (size_t)W + (size_t)x) * (size_t)c + (size_t)ch] = clip8(s);
            }
        }
    weights_free(&a);
    free(im->px);
    im->px = q;
    im->w = W;
    im->h = H;
    return 0;
}

static int resize(image8 *im, int w, int h) {
    if (im->w != w && resample_pass(im, w, true) < 0) return -1;
    if (im->h != h && resample_pass(im, h, false) < 0) return -1;
    return 0;
}

/* ---- the batch -------------------------------------------------------------------- */

int netrt_images_read(const char *const *paths, int n, const netrt_tensor *t, const float *mean,
                      const float *std, netrt_array *out, char *err, size_t errlen) {
    char sh[160];
    if (t->rank != 4 || (t->shape[1] != 1 && t->shape[1] != 3))
        return netrt_errorf(err, errlen, "%s: input '%s' is %s; images feed inputs of 1 or 3 channels [N, C, H, W]",
                            paths[0], t->name, netrt_batch_shape_str(t, sh, sizeof sh));
    int C = (int)t->shape[1], H = (int)t->shape[2], W = (int)t->shape[3];
    size_t per = (size_t)C * (size_t)H * (size_t)W;
    float *data = malloc(per * (size_t)n * sizeof *data + 1);
    if (!data) return netrt_errorf(err, errlen, "out of memory for %d images", n);
    for (int s = 0; s < n; s++) {
        image8 im = {0};
        if (read_image(paths[s], &im, err, errlen) < 0) {
            free(data);
            return -1;
        }
        if (convert_channels(&im, C) < 0 || resize(&im, W, H) < 0) {
            free(im.px);
            free(data);
            return netrt_errorf(err, errlen, "%s: out of memory", paths[s]);
        }
        float *d = data + per * (size_t)s;
        for (int ch = 0; ch < C; ch++) {
            float m = mean ? mean[ch] : 0.0f, sd = std ? std[ch] : 1.0f;
            for (size_t i = 0; i < (size_t)H * (size_t)W; i++)
                d[(size_t)ch * (size_t)H * (size_t)W + i] = ((float)im.px[i * (size_t)C + (size_t)ch] / 255.0f - m) / sd;
        }
        free(im.px);
    }
    *out = (netrt_array){.dtype = NETRT_F32, .rank = 4, .shape = {n, C, H, W}, .data = data,
                         .nbytes = per * (size_t)n * sizeof *data};
    return 0;
}
