/* PNG contact sheets (netrt_debug.h) for --show-inputs and --worst, written
 * through libpng (Debian's libpng-dev).
 *
 * The sheet: images in a grid of up to 16 columns, each drawn at SCALE
 * pixels per value (3 for images up to 32 pixels high and wide, else 1),
 * 2 pixels apart on a background of 64 (grey; RGB images on 64, 64, 64);
 * each value v mapped to round(255 * (v - lo) / (hi - lo)) with lo and hi the
 * min and max over all the images (128 if they are equal).  With captions,
 * a strip of 8 pixels under each image holds its caption in white, in the
 * tiny font below. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "netrt_debug.h"

/* A 3x5 bitmap font for the captions (digits, a few capitals and marks):
 * the sheet is one self-contained picture, and linking a font renderer
 * (FreeType and a font file) for a dozen glyphs of "T3 P5 97%" would be a
 * far larger dependency than these rows.  Each glyph is 5 rows of 3 bits,
 * the high bit leftmost. */
static const struct {
    char ch;
    unsigned char rows[5];
} glyphs[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 3, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 2, 2, 2}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'T', {7, 2, 2, 2, 2}}, {'P', {6, 5, 6, 4, 4}},
    {'%', {5, 1, 2, 4, 5}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}}, {':', {0, 2, 0, 2, 0}},
};

static const unsigned char *glyph(char ch) {
    for (size_t i = 0; i < sizeof glyphs / sizeof *glyphs; i++)
        if (glyphs[i].ch == ch) return glyphs[i].rows;
    return NULL; /* a space, or a character the font lacks */
}

#define GAP 2
#define BG 64
#define CAPTION 8

int netrt_png_sheet(const char *path, const float *images, int64_t count, int64_t c, int64_t h, int64_t w,
                    const char *const *captions, char *err, size_t errlen) {
    if (count < 1 || c < 1 || h < 1 || w < 1 || h > 4096 || w > 4096)
        return netrt_errorf(err, errlen, "%s: no images to draw", path);
    int64_t scale = h <= 32 && w <= 32 ? 3 : 1;
    int64_t cols = count < 16 ? count : 16, rows = (count + cols - 1) / cols;
    int64_t cellw = w * scale, cellh = h * scale + (captions ? CAPTION : 0);
    int64_t W = GAP + cols * (cellw + GAP), H = GAP + rows * (cellh + GAP);
    int ch = c == 3 ? 3 : 1;
    int64_t per = c * h * w;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < count * per; i++) {
        if (images[i] < lo) lo = images[i];
        if (images[i] > hi) hi = images[i];
    }
    unsigned char *px = malloc((size_t)(W * H * ch));
    png_bytep *rowp = malloc((size_t)H * sizeof *rowp);
    if (!px || !rowp) {
        free(px);
        free(rowp);
        return netrt_errorf(err, errlen, "out of memory");
    }
    memset(px, BG, (size_t)(W * H * ch));
    for (int64_t k = 0; k < count; k++) {
        int64_t x0 = GAP + (k % cols) * (cellw + GAP), y0 = GAP + (k / cols) * (cellh + GAP);
        const float *img = images + k * per;
        for (int64_t y = 0; y < h * scale; y++)
            for (int64_t x = 0; x < w * scale; x++)
                for (int q = 0; q < ch; q++) {
                    double v = img[(int64_t)q * h * w + (y / scale) * w + x / scale];
                    int p = hi > lo ? (int)lround(255.0 * (v - lo) / (hi - lo)) : 128;
                    px[((y0 + y) * W + x0 + x) * ch + q] = (unsigned char)p;
                }
        if (!captions || !captions[k]) continue;
        int64_t cx = x0 + 1, cy = y0 + h * scale + 2;
        for (const char *s = captions[k]; *s && cx + 3 <= x0 + cellw; s++, cx += 4) {
            const unsigned char *g = glyph(*s);
            for (int r = 0; g && r < 5; r++)
                for (int b = 0; b < 3; b++)
                    if (g[r] >> (2 - b) & 1)
                        for (int q = 0; q < ch; q++) px[((cy + r) * W + cx + b) * ch + q] = 255;
        }
    }
    for (int64_t y = 0; y < H; y++) rowp[y] = px + y * W * ch;

    char *tmp;
    FILE *f = netrt_atomic_open(path, &tmp, err, errlen);
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile bool ok = false; /* set after setjmp */
    if (f && png && info) {
        if (setjmp(png_jmpbuf(png)) == 0) {
            png_init_io(png, f);
            png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                         PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
            png_write_info(png, info);
            png_write_image(png, rowp);
            png_write_end(png, NULL);
            ok = !ferror(f);
        }
    }
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    free(px);
    free(rowp);
    if (!f) return -1;
    if (!ok) netrt_errorf(err, errlen, "%s: cannot write the PNG", path);
    return netrt_atomic_close(f, tmp, path, ok, err, errlen);
}
