/* Parameter initialization (issue 12): the schemes of torch.nn.init, shared
 * by the trainer, the gradient check and `netc init`.
 *
 * The compiler resolves every argument (a nonlinearity's gain, the fan mode)
 * into netrt_param_init's a and b, so this file only draws: uniform or
 * normal numbers with the scheme's bound or standard deviation, or, for
 * orthogonal, the Q of a normal matrix.  The two schemes netc had before
 * (NETRT_INIT_XAVIER and NETRT_INIT_HE) draw exactly as they did, so that
 * the weights of existing nets at a given seed do not change. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "netrt.h"

/* Orthogonal: PyTorch's orthogonal_ flattens the parameter to rows x cols
 * (rows its dim 0), fills it from N(0, 1), takes the QR decomposition of the
 * tall one of it and its transpose, multiplies Q's columns by the signs of
 * R's diagonal (so that Q is uniform over the orthogonal matrices), and
 * transposes back.  A QR whose R has a positive diagonal is unique, and
 * Gram-Schmidt makes exactly that one, so Gram-Schmidt (twice over each
 * column, for accuracy in double) gives the same Q as PyTorch's sign
 * correction.  Written here rather than calling LAPACK's dgeqrf so that
 * libnetrt, which every emitted program links, keeps no dependency beyond
 * zlib and jansson: the matrices are small (one layer's weight) and this runs
 * once. */
static void fill_orthogonal(const netrt_param_init *pi, netrt_rng *r, float *data, int64_t n) {
    int64_t rows = pi->rows > 0 ? pi->rows : 1, cols = n / rows;
    bool wide = rows < cols;
    int64_t m = wide ? cols : rows, k = wide ? rows : cols; /* the tall matrix: m x k, m >= k */
    double *t = malloc(sizeof *t * (size_t)(m * k > 0 ? m * k : 1));
    if (!t) {
        for (int64_t i = 0; i < n; i++) data[i] = 0;
        return;
    }
    /* A[i][j] row-major in draw order; t is A (tall) or its transpose, column j at t[j*m ..]. */
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            double z = netrt_rng_normal(r);
            if (wide) t[i * m + j] = z;  /* column i of A^T is row i of A */
            else t[j * m + i] = z;
        }
    for (int64_t j = 0; j < k; j++) {
        double *q = t + j * m;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t p = 0; p < j; p++) {
                const double *u = t + p * m;
                double dot = 0;
                for (int64_t i = 0; i < m; i++) dot += u[i] * q[i];
                for (int64_t i = 0; i < m; i++) q[i] -= dot * u[i];
            }
        double norm = 0;
        for (int64_t i = 0; i < m; i++) norm += q[i] * q[i];
        norm = sqrt(norm);
        for (int64_t i = 0; i < m; i++) q[i] = norm > 0 ? q[i] / norm : 0;
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            data[i * cols + j] = (float)(pi->a * (wide ? t[i * m + j] : t[j * m + i]));
    free(t);
}

void netrt_init_param(const netrt_param_init *pi, netrt_rng *r, float *data, int64_t n) {
    double fin = pi->fan_in, fout = pi->fan_out, g = pi->a;
    double fan = pi->b != 0 ? fout : fin; /* kaiming's mode */
    double bound = 0, sd = 0, mean = 0;
    bool normal = false;
    switch (pi->scheme) {
    case NETRT_INIT_XAVIER: /* as before issue 12: gain 1 */
        bound = fin + fout > 0 ? sqrt(6.0 / (fin + fout)) : 0.0;
        break;
    case NETRT_INIT_HE: /* as before issue 12: fan_in, gain sqrt(2) */
        normal = true;
        sd = fin > 0 ? sqrt(2.0 / fin) : 0.0;
        break;
    case NETRT_INIT_XAVIER_UNIFORM: bound = fin + fout > 0 ? g * sqrt(6.0 / (fin + fout)) : 0.0; break;
    case NETRT_INIT_XAVIER_NORMAL:
        normal = true;
        sd = fin + fout > 0 ? g * sqrt(2.0 / (fin + fout)) : 0.0;
        break;
    case NETRT_INIT_KAIMING_UNIFORM: bound = fan > 0 ? g * sqrt(3.0 / fan) : 0.0; break;
    case NETRT_INIT_KAIMING_NORMAL:
        normal = true;
        sd = fan > 0 ? g / sqrt(fan) : 0.0;
        break;
    case NETRT_INIT_LECUN_NORMAL:
        normal = true;
        sd = fin > 0 ? 1.0 / sqrt(fin) : 0.0;
        break;
    case NETRT_INIT_NORMAL:
        normal = true;
        mean = pi->a;
        sd = pi->b;
        break;
    case NETRT_INIT_UNIFORM:
        for (int64_t k = 0; k < n; k++) data[k] = (float)(pi->a + (pi->b - pi->a) * netrt_rng_uniform(r));
        return;
    case NETRT_INIT_ORTHOGONAL: fill_orthogonal(pi, r, data, n); return;
    case NETRT_INIT_CONSTANT:
    case NETRT_INIT_ONE:
    case NETRT_INIT_ZERO:
    case NETRT_INIT_NONE: {
        float v = pi->scheme == NETRT_INIT_CONSTANT ? (float)pi->a : pi->scheme == NETRT_INIT_ONE ? 1.0f : 0.0f;
        for (int64_t k = 0; k < n; k++) data[k] = v;
        return;
    }
    }
    for (int64_t k = 0; k < n; k++)
        data[k] = normal ? (float)(mean + netrt_rng_normal(r) * sd) : (float)((2 * netrt_rng_uniform(r) - 1) * bound);
}

void netrt_init_fill(netrt_init_scheme scheme, double fan_in, double fan_out, netrt_rng *r, float *data,
                     int64_t n) {
    netrt_param_init pi = {scheme, fan_in, fan_out, 0, 0, 0};
    netrt_init_param(&pi, r, data, n);
}

const char *netrt_init_describe(const netrt_param_init *pi, char *buf, size_t size) {
    const char *mode = pi->b != 0 ? "fan_out" : "fan_in";
    switch (pi->scheme) {
    case NETRT_INIT_NONE: snprintf(buf, size, "none"); break;
    case NETRT_INIT_ZERO: snprintf(buf, size, "zeros"); break;
    case NETRT_INIT_ONE: snprintf(buf, size, "ones"); break;
    case NETRT_INIT_XAVIER: snprintf(buf, size, "xavier_uniform(gain 1)"); break;
    case NETRT_INIT_HE: snprintf(buf, size, "kaiming_normal(fan_in, gain 1.41421)"); break;
    case NETRT_INIT_CONSTANT: snprintf(buf, size, "constant(%g)", pi->a); break;
    case NETRT_INIT_UNIFORM: snprintf(buf, size, "uniform(%g, %g)", pi->a, pi->b); break;
    case NETRT_INIT_NORMAL: snprintf(buf, size, "normal(mean %g, std %g)", pi->a, pi->b); break;
    case NETRT_INIT_XAVIER_UNIFORM: snprintf(buf, size, "xavier_uniform(gain %g)", pi->a); break;
    case NETRT_INIT_XAVIER_NORMAL: snprintf(buf, size, "xavier_normal(gain %g)", pi->a); break;
    case NETRT_INIT_KAIMING_UNIFORM: snprintf(buf, size, "kaiming_uniform(%s, gain %g)", mode, pi->a); break;
    case NETRT_INIT_KAIMING_NORMAL: snprintf(buf, size, "kaiming_normal(%s, gain %g)", mode, pi->a); break;
    case NETRT_INIT_LECUN_NORMAL: snprintf(buf, size, "lecun_normal"); break;
    case NETRT_INIT_ORTHOGONAL: snprintf(buf, size, "orthogonal(gain %g)", pi->a); break;
    default: snprintf(buf, size, "?"); break;
    }
    return buf;
}
