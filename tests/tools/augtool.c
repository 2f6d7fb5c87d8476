/* Test driver of the trainer's augmentation (runtime/augment.c), for
 * tests/training/augment.sh:
 *   augtool apply IN.npy P CHOICES OUT.npy
 *       IN float32 [S, C, H, W]; CHOICES "dy,dx,flip;..." one per sample;
 *       writes each sample cropped (padding P) and flipped as given
 *   augtool choose SPEC SEED EPOCH N
 *       prints the choices "dy dx flip" of samples 0 .. N-1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "netrt.h"

static int apply(int argc, char **argv) {
    char err[512];
    netrt_array a;
    if (argc != 6) return 2;
    if (netrt_npy_read(argv[2], &a, err, sizeof err) < 0 || a.rank != 4 || a.dtype != NETRT_F32) {
        fprintf(stderr, "augtool: %s: need float32 [S, C, H, W]\n", argv[2]);
        return 1;
    }
    int64_t S = a.shape[0], C = a.shape[1], H = a.shape[2], W = a.shape[3], per = C * H * W;
    long pad = atol(argv[3]);
    float *out = malloc((size_t)(S * per) * sizeof *out);
    const char *p = argv[4];
    for (int64_t s = 0; s < S; s++) {
        long dy, dx;
        int fl, n;
        if (sscanf(p, "%ld,%ld,%d%n", &dy, &dx, &fl, &n) != 3) {
            fprintf(stderr, "augtool: choices: expected dy,dx,flip for sample %lld\n", (long long)s);
            return 1;
        }
        p += n;
        if (*p == ';') p++;
        netrt_augment_choice ch = {dy, dx, fl != 0};
        netrt_augment_apply(&ch, pad, C, H, W, (const float *)a.data + s * per, out + s * per);
    }
    if (netrt_npy_write(argv[5], out, 4, a.shape, err, sizeof err) < 0) {
        fprintf(stderr, "augtool: %s\n", err);
        return 1;
    }
    free(out);
    netrt_array_free(&a);
    return 0;
}

static int choose(int argc, char **argv) {
    char err[512];
    netrt_augment aug;
    if (argc != 6) return 2;
    if (netrt_augment_parse(argv[2], &aug, err, sizeof err) < 0) {
        fprintf(stderr, "augtool: %s\n", err);
        return 1;
    }
    uint64_t seed = strtoull(argv[3], NULL, 10);
    long long epoch = atoll(argv[4]), n = atoll(argv[5]);
    for (long long s = 0; s < n; s++) {
        netrt_augment_choice ch = netrt_augment_choose(&aug, seed, epoch, s);
        printf("%lld %lld %d\n", (long long)ch.dy, (long long)ch.dx, ch.flip ? 1 : 0);
    }
    return 0;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc > 1 && !strcmp(argv[1], "apply")) rc = apply(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "choose")) rc = choose(argc, argv);
    if (rc == 2) fprintf(stderr, "usage: augtool apply IN.npy P CHOICES OUT.npy | augtool choose SPEC SEED EPOCH N\n");
    return rc;
}
