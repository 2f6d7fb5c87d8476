/* Fuzzes the safetensors reader (netrt_st_open) and walks what it returns:
 * every entry's data must lie inside the file and match its shape. */
#include "fuzz.h"

#include <string.h>

#include "netrt.h"

static fuzz_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_silence_stderr();
    FUZZ_CHECK(fuzz_file_init(&file, "fuzz.safetensors") == 0, "memfd_create failed");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!file.path[0]) LLVMFuzzerInitialize(NULL, NULL);
    fuzz_file_set(&file, data, size);
    netrt_st_file st;
    char err[512];
    err[0] = 0;
    if (netrt_st_open(file.path, &st, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0], "netrt_st_open failed without a message");
        FUZZ_CHECK(!st.buffer && !st.entries, "netrt_st_open failed but kept memory");
        return 0;
    }
    const unsigned char *lo = st.buffer, *hi = lo + st.size;
    size_t total = 0;
    for (int i = 0; i < st.count; i++) {
        const netrt_st_entry *e = &st.entries[i];
        size_t want;
        FUZZ_CHECK(e->name && e->rank >= 0 && e->rank <= NETRT_MAX_RANK, "bad entry");
        FUZZ_CHECK(netrt_nbytes(e->dtype, e->rank, e->shape, &want) && want == e->nbytes,
                   "entry size does not match its shape");
        const unsigned char *d = e->data;
        FUZZ_CHECK(d >= lo && d <= hi && e->nbytes <= (size_t)(hi - d), "entry data outside the file");
        /* Touch every byte, so ASan sees any out-of-bounds span. */
        unsigned sum = 0;
        for (size_t j = 0; j < e->nbytes; j++) sum += d[j];
        (void)sum;
        FUZZ_CHECK(netrt_st_find(&st, e->name) != NULL, "netrt_st_find misses an entry");
        total += e->nbytes;
    }
    FUZZ_CHECK(total <= st.size, "entries cover more than the file");
    netrt_st_close(&st);
    return 0;
}
