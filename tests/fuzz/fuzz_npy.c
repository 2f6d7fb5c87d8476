/* Fuzzes the .npy reader (netrt_npy_read) and the by-content dispatcher
 * (netrt_array_read) on the same bytes. */
#include "fuzz.h"

#include <string.h>

#include "netrt.h"

static fuzz_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_silence_stderr();
    FUZZ_CHECK(fuzz_file_init(&file, "fuzz.npy") == 0, "memfd_create failed");
    return 0;
}

/* A successful read returns an array whose bytes match its shape. */
static void check(int rc, netrt_array *a, const char *err) {
    if (rc != 0) {
        FUZZ_CHECK(err[0], "read failed without a message");
        FUZZ_CHECK(!a->data, "read failed but returned data");
        return;
    }
    size_t want;
    FUZZ_CHECK(a->rank >= 0 && a->rank <= NETRT_MAX_RANK, "bad rank");
    FUZZ_CHECK(netrt_nbytes(a->dtype, a->rank, a->shape, &want) && want == a->nbytes,
               "array size does not match its shape");
    unsigned sum = 0;
    for (size_t j = 0; j < a->nbytes; j++) sum += ((const unsigned char *)a->data)[j];
    (void)sum;
    netrt_array_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!file.path[0]) LLVMFuzzerInitialize(NULL, NULL);
    fuzz_file_set(&file, data, size);
    netrt_array a;
    char err[512];
    err[0] = 0;
    check(netrt_npy_read(file.path, &a, err, sizeof err), &a, err);
    err[0] = 0;
    check(netrt_array_read(file.path, &a, err, sizeof err), &a, err);
    return 0;
}
