/* Fuzzes the IDX reader (netrt_idx_read), plain and gzip-compressed.
 *
 * The first byte chooses how the rest reaches the reader:
 *   bit 0 clear: the rest as it is (plain IDX, or gzip bytes as given);
 *   bit 0 set:   the rest gzip-compressed by the harness, so that the fuzzer
 *                explores IDX contents behind valid gzip streams; bits 1-7
 *                cut that many bytes off the end of the compressed stream
 *                (a truncated .gz). */
#include "fuzz.h"

#include <string.h>
#include <zlib.h>

#include "netrt.h"

static fuzz_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_silence_stderr();
    FUZZ_CHECK(fuzz_file_init(&file, "fuzz.idx") == 0, "memfd_create failed");
    return 0;
}

/* data gzip-compressed (a gzip header and trailer, as gzip(1) writes). */
static unsigned char *gzip(const uint8_t *data, size_t size, size_t *out) {
    z_stream z;
    memset(&z, 0, sizeof z);
    FUZZ_CHECK(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
    size_t cap = deflateBound(&z, (uLong)size) + 32;
    unsigned char *buf = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
    *out = z.total_out;
    deflateEnd(&z);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!file.path[0]) LLVMFuzzerInitialize(NULL, NULL);
    if (size == 0) return 0;
    unsigned mode = data[0];
    data++;
    size--;
    if (mode & 1) {
        size_t n;
        unsigned char *z = gzip(data, size, &n);
        size_t cut = mode >> 1;
        fuzz_file_set(&file, z, n > cut ? n - cut : 0);
        free(z);
    } else {
        fuzz_file_set(&file, data, size);
    }
    netrt_array a;
    char err[512];
    err[0] = 0;
    if (netrt_idx_read(file.path, &a, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0], "netrt_idx_read failed without a message");
        FUZZ_CHECK(!a.data, "netrt_idx_read failed but returned data");
        return 0;
    }
    size_t want;
    FUZZ_CHECK(a.rank >= 1 && a.rank <= NETRT_MAX_RANK, "bad rank");
    FUZZ_CHECK(netrt_nbytes(a.dtype, a.rank, a.shape, &want) && want == a.nbytes,
               "array size does not match its shape");
    unsigned sum = 0;
    for (size_t j = 0; j < a.nbytes; j++) sum += ((const unsigned char *)a.data)[j];
    (void)sum;
    netrt_array_free(&a);
    return 0;
}
