/* Shared by the libFuzzer harnesses in tests/fuzz.
 *
 * Each harness defines LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize,
 * which silences stderr: an error report is the expected outcome of most
 * inputs, not a finding).  The same file links either with libFuzzer
 * (-fsanitize=fuzzer, target fuzz_<name>) or with replay.c into a plain
 * program that runs the committed regression inputs in `make test`.
 *
 * A finding is a sanitizer report, a crash, a leak, a timeout, or an
 * internal inconsistency the harness checks itself (FUZZ_CHECK aborts). */
#ifndef NETC_FUZZ_H
#define NETC_FUZZ_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts (a finding) when an internal invariant fails. */
#define FUZZ_CHECK(cond, what)                                                        \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(fuzz_stderr ? fuzz_stderr : stderr, "fuzz: %s:%d: %s\n", __FILE__, \
                    __LINE__, what);                                                  \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* The original stderr, kept for FUZZ_CHECK after stderr is silenced. */
static FILE *fuzz_stderr;

/* Sends what the code under test writes to stderr (diagnostics) to
 * /dev/null unless $FUZZ_VERBOSE is set.  Only the stdio stream is replaced,
 * not descriptor 2: libFuzzer keeps its own copy of the original stream and
 * the sanitizers write to the descriptor, so their reports still show. */
static inline void fuzz_silence_stderr(void) {
    fuzz_stderr = stderr;
    if (getenv("FUZZ_VERBOSE")) return;
    FILE *null = fopen("/dev/null", "w");
    if (null) stderr = null;
}

/* An in-memory file with a path, for readers that take one: a memfd seen as
 * /proc/self/fd/N.  Nothing is left on disk if the process dies. */
typedef struct {
    int fd;
    char path[64];
} fuzz_file;

static inline int fuzz_file_init(fuzz_file *f, const char *name) {
    f->fd = memfd_create(name, 0);
    if (f->fd < 0) return -1;
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return 0;
}

/* Replaces the file's contents with data. */
static inline void fuzz_file_set(fuzz_file *f, const void *data, size_t size) {
    FUZZ_CHECK(ftruncate(f->fd, 0) == 0, "ftruncate failed");
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(f->fd, (const char *)data + done, size - done, (off_t)done);
        FUZZ_CHECK(k > 0, "pwrite failed");
        done += (size_t)k;
    }
}

#endif
