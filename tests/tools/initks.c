/* initks: compares parameters that `netc init` wrote with samples that
 * torch.nn.init drew (tests/init/gen.py), by the two-sample
 * Kolmogorov-Smirnov test, and checks orthogonal ones for W W^T = gain^2 I.
 *
 *   initks weights.safetensors cases.txt DIR
 *   initks --softmax weights.safetensors NAME freqs.npy
 *
 * cases.txt has one line per parameter: `NAME REF.npy` or `NAME REF.npy
 * orthogonal GAIN`; REF.npy (in DIR) holds PyTorch's draw for the same
 * shape.  The test rejects at level 0.001: D > 1.949 sqrt((n + m) / (n m))
 * (the asymptotic critical value c(0.001) = sqrt(-ln(0.0005) / 2)).  Prints
 * one line per case; exit status 1 if any fails or a file is bad.
 *
 * --softmax: the softmax of the 1-d tensor NAME (an output bias set by the
 * trainer's --output-bias frequencies) must equal freqs.npy within 1e-6. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The largest gap between the empirical distribution functions of a and b (sorted). */
static double ks_d(const double *a, size_t n, const double *b, size_t m) {
    size_t i = 0, j = 0;
    double d = 0;
    while (i < n && j < m) {
        double x = a[i] <= b[j] ? a[i] : b[j];
        while (i < n && a[i] <= x) i++;
        while (j < m && b[j] <= x) j++;
        double gap = fabs((double)i / (double)n - (double)j / (double)m);
        if (gap > d) d = gap;
    }
    return d;
}

/* max |W W^T - g^2 I| (rows <= cols) or |W^T W - g^2 I|, over g^2. */
static double orth_error(const float *w, int64_t rows, int64_t cols, double g) {
    bool wide = rows <= cols;
    int64_t k = wide ? rows : cols, len = wide ? cols : rows;
    double worst = 0;
    for (int64_t p = 0; p < k; p++)
        for (int64_t q = 0; q < k; q++) {
            double s = 0;
            for (int64_t t = 0; t < len; t++)
                s += wide ? (double)w[p * cols + t] * w[q * cols + t] : (double)w[t * cols + p] * w[t * cols + q];
            double e = fabs(s - (p == q ? g * g : 0.0)) / (g * g);
            if (e > worst) worst = e;
        }
    return worst;
}

static int softmax_check(const char *st_path, const char *name, const char *freqs) {
    char err[512];
    netrt_st_file st;
    netrt_array f;
    if (netrt_st_open(st_path, &st, err, sizeof err) < 0 || netrt_npy_read(freqs, &f, err, sizeof err) < 0) {
        fprintf(stderr, "initks: error: %s\n", err);
        return 1;
    }
    const netrt_st_entry *e = netrt_st_find(&st, name);
    int64_t k = e ? netrt_numel(e->rank, e->shape) : 0;
    if (!e || e->dtype != NETRT_F32 || f.dtype != NETRT_F32 || netrt_numel(f.rank, f.shape) != k) {
        fprintf(stderr, "initks: error: no float32 %s with as many values as %s\n", name, freqs);
        return 1;
    }
    const float *b = e->data, *want = f.data;
    double mx = -INFINITY, sum = 0, worst = 0;
    for (int64_t i = 0; i < k; i++) mx = b[i] > mx ? b[i] : mx;
    for (int64_t i = 0; i < k; i++) sum += exp(b[i] - mx);
    for (int64_t i = 0; i < k; i++) {
        double p = exp(b[i] - mx) / sum, d = fabs(p - want[i]);
        printf("class %lld: softmax(b) %.7f, frequency %.7f\n", (long long)i, p, (double)want[i]);
        if (d > worst) worst = d;
    }
    printf("largest difference %.2e (tolerance 1e-6): %s\n", worst, worst <= 1e-6 ? "ok" : "FAIL");
    netrt_array_free(&f);
    netrt_st_close(&st);
    return worst <= 1e-6 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--softmax") == 0) return softmax_check(argv[2], argv[3], argv[4]);
    if (argc != 4) {
        fprintf(stderr, "usage: initks weights.safetensors cases.txt DIR\n"
                        "       initks --softmax weights.safetensors NAME freqs.npy\n");
        return 1;
    }
    char err[512];
    netrt_st_file st;
    if (netrt_st_open(argv[1], &st, err, sizeof err) < 0) {
        fprintf(stderr, "initks: error: %s\n", err);
        return 1;
    }
    FILE *cases = fopen(argv[2], "r");
    if (!cases) {
        fprintf(stderr, "initks: error: cannot open %s\n", argv[2]);
        return 1;
    }
    int failed = 0, ncases = 0;
    char line[512];
    while (fgets(line, sizeof line, cases)) {
        char name[200], ref[200], kind[32] = "";
        double gain = 1;
        int nf = sscanf(line, "%199s %199s %31s %lf", name, ref, kind, &gain);
        if (nf < 2 || name[0] == '#') continue;
        ncases++;
        const netrt_st_entry *e = netrt_st_find(&st, name);
        if (!e || e->dtype != NETRT_F32) {
            fprintf(stderr, "initks: error: %s has no float32 tensor '%s'\n", argv[1], name);
            failed++;
            continue;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/%s", argv[3], ref);
        netrt_array r;
        if (netrt_npy_read(path, &r, err, sizeof err) < 0 || r.dtype != NETRT_F32) {
            fprintf(stderr, "initks: error: %s\n", r.dtype != NETRT_F32 ? "reference not float32" : err);
            failed++;
            continue;
        }
        size_t n = (size_t)netrt_numel(e->rank, e->shape), m = (size_t)netrt_numel(r.rank, r.shape);
        double *a = malloc(sizeof *a * n), *b = malloc(sizeof *b * m);
        const float *w = e->data;
        for (size_t i = 0; i < n; i++) a[i] = w[i];
        for (size_t i = 0; i < m; i++) b[i] = ((const float *)r.data)[i];
        qsort(a, n, sizeof *a, cmp_double);
        qsort(b, m, sizeof *b, cmp_double);
        double d = ks_d(a, n, b, m), crit = 1.949 * sqrt((double)(n + m) / ((double)n * (double)m));
        bool ok = d <= crit;
        printf("%-12s KS D = %.4f (critical %.4f, n = %zu, m = %zu)", name, d, crit, n, m);
        if (strcmp(kind, "orthogonal") == 0) {
            int64_t rows = e->shape[0], cols = (int64_t)n / rows;
            double oe = orth_error(w, rows, cols, gain);
            printf(", orthogonality error %.2e", oe);
            if (oe > 1e-5) ok = false;
        }
        printf(": %s\n", ok ? "ok" : "FAIL");
        if (!ok) failed++;
        free(a);
        free(b);
        netrt_array_free(&r);
    }
    fclose(cases);
    netrt_st_close(&st);
    if (!ncases) {
        fprintf(stderr, "initks: error: no cases in %s\n", argv[2]);
        return 1;
    }
    return failed ? 1 : 0;
}
