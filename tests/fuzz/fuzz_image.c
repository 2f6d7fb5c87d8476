/* Fuzzes the image reader (netrt_images_read: PNG through libpng, JPEG
 * through libjpeg-turbo, then the channel conversion and the resize).
 *
 * The first byte chooses the input the image feeds: bit 0 its channels (1
 * or 3), bits 1-3 and 4-6 its height and width (1 to 64, in steps that
 * include enlarging and shrinking); the rest is the file. */
#include "fuzz.h"

#include <math.h>
#include <string.h>

#include "netrt.h"

static fuzz_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_silence_stderr();
    FUZZ_CHECK(fuzz_file_init(&file, "fuzz.img") == 0, "memfd_create failed");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!file.path[0]) LLVMFuzzerInitialize(NULL, NULL);
    if (size < 1) return 0;
    static const int64_t sides[8] = {1, 2, 5, 8, 13, 28, 33, 64};
    int64_t c = data[0] & 1 ? 3 : 1, h = sides[(data[0] >> 1) & 7], w = sides[(data[0] >> 4) & 7];
    fuzz_file_set(&file, data + 1, size - 1);
    netrt_tensor t = {.name = "image", .rank = 4, .shape = {1, c, h, w}};
    const char *paths[1] = {file.path};
    netrt_array a;
    memset(&a, 0, sizeof a);
    char err[512];
    err[0] = 0;
    if (netrt_images_read(paths, 1, &t, NULL, NULL, &a, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0], "read failed without a message");
        FUZZ_CHECK(!a.data, "read failed but returned data");
        return 0;
    }
    FUZZ_CHECK(a.rank == 4 && a.shape[0] == 1 && a.shape[1] == c && a.shape[2] == h && a.shape[3] == w,
               "the batch is not [1, C, H, W]");
    const float *x = a.data;
    for (int64_t i = 0; i < c * h * w; i++) FUZZ_CHECK(x[i] >= 0.0f && x[i] <= 1.0f, "a value outside [0, 1]");
    netrt_array_free(&a);
    return 0;
}
