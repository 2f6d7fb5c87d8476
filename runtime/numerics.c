/* --check-numerics: netrt_check_finite, which the code emitted under the
 * flag calls after each node, the record of the first NaN or Inf it finds
 * and of the batch being run (for its message), and
 * netrt_set_check_numerics, which the command lines (netrt_main, the trainer,
 * the gradient check) call to turn a program's checks on or off. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "netrt.h"

/* The batch being run (netrt_numerics_batch) and the first failure. */
static struct {
    const char *label;
    const int64_t *index;
    int64_t first, count;
    bool failed;
    char msg[640];
} numerics = {.count = INT64_MAX};

void netrt_numerics_batch(const char *label, const int64_t *index, int64_t first, int64_t count) {
    numerics.label = label;
    numerics.index = index;
    numerics.first = first;
    numerics.count = count;
}

const char *netrt_numerics_error(void) { return numerics.failed ? numerics.msg : NULL; }

void netrt_numerics_reset(void) {
    numerics.failed = false;
    numerics.msg[0] = '\0';
    netrt_numerics_batch(NULL, NULL, 0, INT64_MAX);
}

/* The message for element i, which is v, not finite (netrt_check_finite). */
static int report_nonfinite(double v, int64_t i, int64_t per_sample, const char *what, const char *op,
                            const char *name, const char *where) {
    char *b = numerics.msg;
    size_t len = sizeof numerics.msg;
    int at = snprintf(b, len, "numerics: %s in %s of %s \"%s\" (%s)", isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf",
                      what, op, name, where);
    if (at < 0 || (size_t)at >= len) at = 0;
    if (per_sample > 0) {
        int64_t r = i / per_sample;
        int64_t s = numerics.index ? numerics.index[numerics.first + r] : numerics.first + r;
        snprintf(b + at, len - (size_t)at, ", %s %lld, element %lld", numerics.label ? numerics.label : "sample",
                 (long long)s, (long long)(i % per_sample));
    } else {
        snprintf(b + at, len - (size_t)at, ", element %lld", (long long)i);
    }
    numerics.failed = true;
    return -1;
}

int netrt_check_finite(const float *p, int64_t n, int64_t per_sample, const char *what, const char *op,
                       const char *name, const char *where) {
    if (numerics.failed) return -1;
    if (per_sample > 0 && n / per_sample > numerics.count) n = numerics.count * per_sample; /* padding */
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return report_nonfinite(p[i], i, per_sample, what, op, name, where);
    return 0;
}

/* The same over doubles (a double build's buffers, netc gradcheck). */
int netrt_check_finite_f64(const double *p, int64_t n, int64_t per_sample, const char *what, const char *op,
                           const char *name, const char *where) {
    if (numerics.failed) return -1;
    if (per_sample > 0 && n / per_sample > numerics.count) n = numerics.count * per_sample; /* padding */
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return report_nonfinite(p[i], i, per_sample, what, op, name, where);
    return 0;
}

int netrt_check_finite_blocked(const float *p, int64_t n, int64_t c, int64_t hw, int v, const char *what,
                               const char *op, const char *name, const char *where) {
    if (numerics.failed) return -1;
    if (n > numerics.count) n = numerics.count; /* padding */
    int64_t cb = (c + v - 1) / v;
    /* in logical order, so that the element named is the one a plain build names */
    for (int64_t s = 0; s < n; s++)
        for (int64_t i = 0; i < c * hw; i++) {
            int64_t ch = i / hw, pix = i % hw;
            float x = p[((s * cb + ch / v) * hw + pix) * v + ch % v];
            if (isfinite(x)) continue;
            int64_t r = numerics.index ? numerics.index[numerics.first + s] : numerics.first + s;
            snprintf(numerics.msg, sizeof numerics.msg, "numerics: %s in %s of %s \"%s\" (%s), %s %lld, element %lld",
                     isnan(x) ? "NaN" : x > 0 ? "Inf" : "-Inf", what, op, name, where,
                     numerics.label ? numerics.label : "sample", (long long)r, (long long)i);
            numerics.failed = true;
            return -1;
        }
    return 0;
}

int netrt_set_check_numerics(const netrt_model *m, bool on, char *err, size_t errlen) {
    netrt_numerics_reset();
    if (on && !m->check_numerics)
        return netrt_errorf(err, errlen,
                            "--check-numerics: this program was built without numerics checks");
    if (m->check_numerics) *m->check_numerics = on;
    return 0;
}
