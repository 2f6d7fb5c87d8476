/* Runs a harness's LLVMFuzzerTestOneInput on files, without libFuzzer: the
 * regression inputs and seed corpus in `make test` (with sanitizers under
 * `make test-asan`).  Arguments are files or directories (every regular file
 * in them, in name order).  Exits non-zero if a directory is unreadable;
 * a finding aborts or is reported by a sanitizer. */
#include "fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static int runs;

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stdout, "replay: cannot read %s\n", path);
        return 1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    /* A copy of exactly len bytes, so ASan catches reads past the input. */
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    free(buf);
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    runs++;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            printf("replay: cannot read %s\n", argv[i]);
            bad = 1;
        } else if (S_ISDIR(st.st_mode)) {
            struct dirent **names;
            int n = scandir(argv[i], &names, NULL, by_name);
            if (n < 0) {
                printf("replay: cannot read %s\n", argv[i]);
                bad = 1;
                continue;
            }
            for (int j = 0; j < n; j++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
                if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) bad |= run_file(path);
                free(names[j]);
            }
            free(names);
        } else {
            bad |= run_file(argv[i]);
        }
    }
    printf("replay: %d inputs, %s\n", runs, bad ? "errors" : "no finding");
    return bad;
}
