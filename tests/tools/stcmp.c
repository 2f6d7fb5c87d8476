/* stcmp: compares the tensors of two safetensors files the way the golden
 * training tests judge agreement with PyTorch.
 *
 *   stcmp got.safetensors expected.safetensors [tol]
 *   stcmp --sampled got.safetensors expected.safetensors [tol]
 *   stcmp --names GLOB got.safetensors expected.safetensors [tol]
 *
 * Every tensor of the expected file must be in got, with the same shape;
 * each passes when its largest absolute difference is at most tol (default
 * 1e-4) times its scale, the largest absolute expected value.  Prints a line
 * per tensor; exit 0 if all pass.
 *
 * --sampled: the expected file is in the sampled format of
 * tests/golden_train/gen_zoo.py (the golden training cases of the zoo
 * models): for a tensor of n values, the entry of its name is float32
 * [m + 2], the flat tensor strided, flat[::k] with k = ceil(n / 32) and
 * m = ceil(n / k), then the L2 norm of all n values, then the scale.  got
 * holds the full tensors; each passes when its values at the same strided
 * positions are within tol x scale of the expected ones and its L2 norm
 * within tol x max(norm, scale) of the expected norm.
 *
 * --names GLOB: only the expected tensors whose names match (fnmatch; at
 * least one must): with tol 0, that the frozen parameters of a training run
 * are the loaded ones to the bit (tests/training/transfer.sh). */
#define _POSIX_C_SOURCE 200809L
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

static double at(const netrt_st_entry *e, int64_t i) {
    if (e->dtype == NETRT_F64) return ((const double *)e->data)[i];
    float f;
    memcpy(&f, (const char *)e->data + 4 * i, 4);
    return f;
}

#define SAMPLES 32

/* One tensor of the sampled format: 0 if it passes. */
static int cmp_sampled(const netrt_st_entry *g, const netrt_st_entry *w, double tol) {
    char b1[128];
    int64_t n = netrt_numel(g->rank, g->shape), k = (n + SAMPLES - 1) / SAMPLES;
    if (k < 1) k = 1;
    int64_t m = (n + k - 1) / k;
    if (w->rank != 1 || w->shape[0] != m + 2 || !(g->dtype == NETRT_F32 || g->dtype == NETRT_F64) ||
        !(w->dtype == NETRT_F32 || w->dtype == NETRT_F64)) {
        printf("%-40s got %s %s (%lld samples), expected %lld samples: FAIL\n", w->name,
               netrt_shape_str(g->rank, g->shape, b1, sizeof b1), netrt_dtype_name(g->dtype), (long long)m,
               (long long)(w->rank == 1 ? w->shape[0] - 2 : -1));
        return 1;
    }
    double norm = 0, worst = 0, scale = at(w, m + 1), want_norm = at(w, m);
    for (int64_t i = 0; i < n; i++) norm += at(g, i) * at(g, i);
    norm = sqrt(norm);
    for (int64_t j = 0; j < m; j++) {
        double d = fabs(at(g, j * k) - at(w, j));
        if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
    }
    double dn = fabs(norm - want_norm), nscale = fmax(want_norm, scale);
    bool ok = scale > 0 && worst <= tol * scale && dn <= tol * nscale;
    printf("%-40s %8lld values, %3lld sampled: max abs diff %.3g, scale %.3g, relative %.3g; norm %.6g, "
           "relative %.3g: %s\n", w->name, (long long)n, (long long)m, worst, scale, worst / scale, norm,
           dn / nscale, ok ? "ok" : "FAIL");
    return !ok;
}

int main(int argc, char **argv) {
    bool sampled = argc > 1 && strcmp(argv[1], "--sampled") == 0;
    if (sampled) argc--, argv++;
    const char *names = NULL;
    if (argc > 2 && strcmp(argv[1], "--names") == 0) {
        names = argv[2];
        argc -= 2, argv += 2;
    }
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: stcmp [--sampled | --names GLOB] got.safetensors expected.safetensors [tol]\n");
        return 2;
    }
    double tol = argc == 4 ? atof(argv[3]) : 1e-4;
    netrt_st_file got, want;
    char err[512];
    if (netrt_st_open(argv[1], &got, err, sizeof err) != 0 || netrt_st_open(argv[2], &want, err, sizeof err) != 0) {
        fprintf(stderr, "stcmp: %s\n", err);
        return 1;
    }
    int failed = 0, compared = 0;
    for (int t = 0; t < want.count; t++) {
        const netrt_st_entry *w = &want.entries[t], *g = netrt_st_find(&got, w->name);
        char b1[128], b2[128];
        if (names && fnmatch(names, w->name, 0) != 0) continue;
        compared++;
        if (!g) {
            printf("%-40s missing from %s: FAIL\n", w->name, argv[1]);
            failed++;
            continue;
        }
        if (sampled) {
            failed += cmp_sampled(g, w, tol);
            continue;
        }
        bool same = g->rank == w->rank && (g->dtype == NETRT_F32 || g->dtype == NETRT_F64) &&
                    (w->dtype == NETRT_F32 || w->dtype == NETRT_F64);
        for (int i = 0; same && i < w->rank; i++) same = g->shape[i] == w->shape[i];
        if (!same) {
            printf("%-40s shape %s %s, expected %s %s: FAIL\n", w->name, netrt_shape_str(g->rank, g->shape, b1, sizeof b1),
                   netrt_dtype_name(g->dtype), netrt_shape_str(w->rank, w->shape, b2, sizeof b2), netrt_dtype_name(w->dtype));
            failed++;
            continue;
        }
        int64_t n = netrt_numel(w->rank, w->shape);
        double scale = 0, worst = 0;
        for (int64_t i = 0; i < n; i++) {
            scale = fmax(scale, fabs(at(w, i)));
            double d = fabs(at(g, i) - at(w, i));
            if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
        }
        if (scale == 0) scale = 1;
        bool ok = worst <= tol * scale;
        printf("%-40s %8lld values, max abs diff %.3g, scale %.3g, relative %.3g: %s\n", w->name, (long long)n, worst,
               scale, worst / scale, ok ? "ok" : "FAIL");
        failed += !ok;
    }
    netrt_st_close(&got);
    netrt_st_close(&want);
    if (compared == 0) {
        printf("no tensor of %s matches '%s': FAIL\n", argv[2], names ? names : "*");
        return 1;
    }
    return failed ? 1 : 0;
}
