/* An emitted model's parameters from safetensors: the conversion of float
 * entries (F32, F64, F16, BF16) to float32, and netrt_load_params, which
 * checks a file against the model's parameters and loads it.  netrt_main
 * (model.c) and the trainer (train.c) load weights with it, and netc embeds
 * weights through netrt_st_entry_to_f32. */
#include <math.h>
#include <string.h>

#include "netrt.h"

bool netrt_dtype_is_float(netrt_dtype t) {
    return t == NETRT_F32 || t == NETRT_F64 || t == NETRT_F16 || t == NETRT_BF16;
}

static uint64_t load_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static float half_to_float(uint16_t h) {
    unsigned exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), (int)exp - 25);
    return h & 0x8000 ? -v : v;
}

void netrt_st_entry_to_f32(const netrt_st_entry *e, float *dst) {
    const unsigned char *p = e->data;
    size_t n = (size_t)netrt_numel(e->rank, e->shape);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        double d;
        switch (e->dtype) {
        case NETRT_F32:
            u = (uint32_t)load_le(p + 4 * i, 4);
            memcpy(&dst[i], &u, 4);
            break;
        case NETRT_F64: {
            uint64_t b = load_le(p + 8 * i, 8);
            memcpy(&d, &b, 8);
            dst[i] = (float)d;
            break;
        }
        case NETRT_F16: dst[i] = half_to_float((uint16_t)load_le(p + 2 * i, 2)); break;
        case NETRT_BF16:
            u = (uint32_t)load_le(p + 2 * i, 2) << 16;
            memcpy(&dst[i], &u, 4);
            break;
        default: dst[i] = 0; break;
        }
    }
}

static bool is_batch_counter(const netrt_st_entry *e) {
    const char *suffix = "num_batches_tracked";
    size_t n = strlen(e->name), k = strlen(suffix);
    if (netrt_dtype_is_float(e->dtype) || n < k || strcmp(e->name + n - k, suffix) != 0) return false;
    return n == k || e->name[n - k - 1] == '.';
}

static const netrt_tensor *find_tensor(const netrt_tensor *ts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ts[i].name, name) == 0) return &ts[i];
    return NULL;
}

/* Checks every tensor before anything is read, so a failed load leaves the
 * model as it was. */
int netrt_st_check(const netrt_tensor *ts, int n, const netrt_st_file *f, const char *path, char *err,
                   size_t errlen) {
    char want[160], got[160];
    for (int i = 0; i < n; i++) {
        const netrt_tensor *p = &ts[i];
        const netrt_st_entry *e = netrt_st_find(f, p->name);
        netrt_shape_str(p->rank, p->shape, want, sizeof want);
        if (!e)
            return netrt_errorf(err, errlen, "%s: missing tensor '%s' (expected shape %s)", path,
                                p->name, want);
        if (!netrt_dtype_is_float(e->dtype))
            return netrt_errorf(err, errlen,
                                "%s: tensor '%s' has dtype %s, expected a float dtype (F32, F64, F16 "
                                "or BF16)",
                                path, p->name, netrt_dtype_name(e->dtype));
        if (!netrt_same_shape(e->rank, e->shape, p->rank, p->shape))
            return netrt_errorf(err, errlen, "%s: tensor '%s' has shape %s, expected %s", path,
                                p->name, netrt_shape_str(e->rank, e->shape, got, sizeof got),
                                want);
    }
    for (int i = 0; i < f->count; i++)
        if (!find_tensor(ts, n, f->entries[i].name) && !is_batch_counter(&f->entries[i]))
            return netrt_errorf(err, errlen,
                                "%s: unexpected tensor '%s' (the model has no such parameter)",
                                path, f->entries[i].name);
    return 0;
}

int netrt_st_load(const netrt_st_file *f, const char *what, const netrt_tensor *ts, int n, char *err,
                  size_t errlen) {
    if (netrt_st_check(ts, n, f, what, err, errlen) != 0) return -1;
    for (int i = 0; i < n; i++) netrt_st_entry_to_f32(netrt_st_find(f, ts[i].name), ts[i].data);
    return 0;
}

int netrt_load_params(const netrt_model *m, const char *path, char *err, size_t errlen) {
    netrt_st_file f;
    if (netrt_st_open(path, &f, err, errlen) < 0) return -1;
    int rc = netrt_st_load(&f, path, m->params, m->nparams, err, errlen);
    netrt_st_close(&f);
    return rc;
}
