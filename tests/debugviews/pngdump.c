/* Decodes a PNG with libpng's reading API and prints its width, height and
 * channels, then every sample, one row per line: the tests' decoder for the
 * contact sheets of --show-inputs and --worst (check.py).
 *   pngdump FILE.png */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: pngdump FILE.png\n");
        return 2;
    }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, argv[1])) {
        fprintf(stderr, "pngdump: %s: %s\n", argv[1], img.message);
        return 1;
    }
    int ch = img.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
    img.format = ch == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        fprintf(stderr, "pngdump: %s: %s\n", argv[1], px ? img.message : "out of memory");
        free(px);
        return 1;
    }
    printf("%u %u %d\n", img.width, img.height, ch);
    for (png_uint_32 y = 0; y < img.height; y++) {
        for (png_uint_32 x = 0; x < img.width * (png_uint_32)ch; x++) printf("%s%d", x ? " " : "", px[y * img.width * ch + x]);
        putchar('\n');
    }
    free(px);
    return 0;
}
