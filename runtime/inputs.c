/* Model inputs and labels from arrays, for netrt_main (model.c) and the
 * trainer (train.c): checking that an array read from a file can feed a
 * model input, copying its samples into the input as float32, and reading
 * integer labels. */
#include <string.h>

#include "netrt.h"

/* "[S, 1, 28, 28]" for a tensor [N, 1, 28, 28]. */
const char *netrt_batch_shape_str(const netrt_tensor *t, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n, "[S");
    for (int d = 1; d < t->rank && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, ", %lld", (long long)t->shape[d]);
    if (len < n) snprintf(buf + len, n - len, "]");
    return buf;
}

int netrt_check_input(const netrt_tensor *t, const netrt_array *a, const char *path, char *err,
                      size_t errlen) {
    char want[200], per[160], got[160];
    if (a->dtype != NETRT_F32 && a->dtype != NETRT_F64 && a->dtype != NETRT_U8)
        return netrt_errorf(err, errlen,
                            "%s: input '%s' has dtype %s, expected F32, F64 or U8 (uint8, scaled to "
                            "[0, 1])",
                            path, t->name, netrt_dtype_name(a->dtype));
    bool ok = a->rank >= 1 &&
              netrt_same_shape(a->rank - 1, a->shape + 1, t->rank - 1, t->shape + 1);
    /* An [S, H, W] array (IDX images) feeds a [1, H, W] input. */
    bool grey = t->rank == 4 && t->shape[1] == 1;
    if (a->rank == 3 && grey && netrt_same_shape(2, a->shape + 1, 2, t->shape + 2)) ok = true;
    if (!ok) {
        netrt_batch_shape_str(t, want, sizeof want);
        if (grey)
            snprintf(want + strlen(want), sizeof want - strlen(want), " or [S, %lld, %lld]",
                     (long long)t->shape[2], (long long)t->shape[3]);
        return netrt_errorf(err, errlen, "%s: input '%s' has shape %s, expected %s (S samples of %s)",
                            path, t->name, netrt_shape_str(a->rank, a->shape, got, sizeof got), want,
                            netrt_shape_str(t->rank - 1, t->shape + 1, per, sizeof per));
    }
    return 0;
}

bool netrt_dtype_is_int(netrt_dtype t) {
    return t == NETRT_U8 || t == NETRT_I8 || t == NETRT_I16 || t == NETRT_I32 || t == NETRT_I64;
}

int64_t netrt_array_int_at(const netrt_array *a, int64_t i) {
    switch (a->dtype) {
    case NETRT_U8: return ((const uint8_t *)a->data)[i];
    case NETRT_I8: return ((const int8_t *)a->data)[i];
    case NETRT_I16: return ((const int16_t *)a->data)[i];
    case NETRT_I32: return ((const int32_t *)a->data)[i];
    case NETRT_I64: return ((const int64_t *)a->data)[i];
    default: return -1;
    }
}

void netrt_array_to_f32(const netrt_array *a, int64_t per, int64_t s0, int64_t n, float *dst) {
    size_t first = (size_t)(s0 * per), count = (size_t)(n * per);
    switch (a->dtype) {
    case NETRT_F32: memcpy(dst, (const float *)a->data + first, count * sizeof(float)); break;
    case NETRT_F64:
        for (size_t k = 0; k < count; k++) dst[k] = (float)((const double *)a->data)[first + k];
        break;
    case NETRT_U8:
        for (size_t k = 0; k < count; k++) dst[k] = ((const uint8_t *)a->data)[first + k] / 255.0f;
        break;
    default: break;
    }
}
