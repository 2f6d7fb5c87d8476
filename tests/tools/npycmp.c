/* npycmp: compares two float32 .npy files the way the golden tests judge
 * agreement with PyTorch.
 *
 *   npycmp got.npy expected.npy [tol]
 *   npycmp --value=X expected.npy [tol]     (expected holds one value)
 *
 * Passes (exit 0) when the shapes are equal and the largest absolute
 * difference is at most tol (default 1e-4) times the expected array's scale,
 * its largest absolute value.  Prints the figures either way. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: npycmp got.npy expected.npy [tol]\n");
        return 2;
    }
    double tol = argc == 4 ? atof(argv[3]) : 1e-4;
    netrt_array got, want;
    char err[512];
    if (strncmp(argv[1], "--value=", 8) == 0) {
        /* A single number printed by a program, against a one-element array. */
        float v = strtof(argv[1] + 8, NULL);
        if (netrt_npy_read(argv[2], &want, err, sizeof err) != 0 || want.dtype != NETRT_F32 ||
            netrt_numel(want.rank, want.shape) != 1) {
            fprintf(stderr, "npycmp: %s: expected one float32 value\n", argv[2]);
            return 1;
        }
        float e = *(float *)want.data;
        double scale = fabs(e) > 0 ? fabs(e) : 1;
        int ok = fabs((double)v - e) <= tol * scale;
        printf("value %.8g, expected %.8g, relative %.3g, tol %.1g: %s\n", v, e, fabs((double)v - e) / scale, tol,
               ok ? "ok" : "FAIL");
        netrt_array_free(&want);
        return ok ? 0 : 1;
    }
    if (netrt_npy_read(argv[1], &got, err, sizeof err) != 0 || got.dtype != NETRT_F32) {
        fprintf(stderr, "npycmp: %s\n", got.dtype != NETRT_F32 ? "got: not float32" : err);
        return 1;
    }
    if (netrt_npy_read(argv[2], &want, err, sizeof err) != 0 || want.dtype != NETRT_F32) {
        fprintf(stderr, "npycmp: %s\n", want.dtype != NETRT_F32 ? "expected: not float32" : err);
        return 1;
    }
    char b1[128], b2[128];
    bool same = got.rank == want.rank;
    for (int i = 0; same && i < got.rank; i++) same = got.shape[i] == want.shape[i];
    if (!same) {
        fprintf(stderr, "npycmp: shape %s, expected %s\n", netrt_shape_str(got.rank, got.shape, b1, sizeof b1),
                netrt_shape_str(want.rank, want.shape, b2, sizeof b2));
        return 1;
    }
    int64_t n = netrt_numel(want.rank, want.shape);
    const float *g = got.data, *w = want.data;
    double scale = 0, worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(w[i]));
        double d = fabs((double)g[i] - w[i]);
        if (!(d <= worst)) { /* also catches NaN */
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    if (scale == 0) scale = 1;
    int ok = worst <= tol * scale;
    printf("%s: %lld values, max abs diff %.3g at %lld (got %.8g, expected %.8g), scale %.3g, relative %.3g, tol %.1g: %s\n",
           argv[1], (long long)n, worst, (long long)at, n ? g[at] : 0.0, n ? w[at] : 0.0, scale, worst / scale, tol,
           ok ? "ok" : "FAIL");
    netrt_array_free(&got);
    netrt_array_free(&want);
    return ok ? 0 : 1;
}
