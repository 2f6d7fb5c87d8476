/* Taps (netrt.h): the emitted grad() hands each layer's output to
 * netrt_tap while the program's tap_on flag is set; this file passes it on
 * to the one function registered (the monitor, --init-calibrate), and reads
 * a tap's values in logical order whatever its layout. */
#include <string.h>

#include "netrt.h"

static struct {
    netrt_tap_fn fn;
    void *ctx;
} hook;

void netrt_tap(int k, const float *data) {
    if (hook.fn) hook.fn(hook.ctx, k, data);
}

void netrt_tap_set(const netrt_train_model *m, netrt_tap_fn fn, void *ctx) {
    hook.fn = fn;
    hook.ctx = ctx;
    if (m->tap_on) *m->tap_on = fn != NULL;
}

int64_t netrt_tap_per(const netrt_tap_info *t) { return netrt_numel(t->rank - 1, t->shape + 1); }

int64_t netrt_tap_channels(const netrt_tap_info *t) { return t->rank >= 2 ? t->shape[1] : 1; }

void netrt_tap_sample(const netrt_tap_info *t, const float *data, int64_t s, float *dst) {
    int64_t per = netrt_tap_per(t);
    if (!t->cblock || t->rank != 4) {
        memcpy(dst, data + s * per, (size_t)per * sizeof(float));
        return;
    }
    /* NCHW[V]c: sample s holds ceil(C / V) blocks of hw pixels of V channels */
    int64_t c = t->shape[1], hw = t->shape[2] * t->shape[3], v = t->cblock, cb = (c + v - 1) / v;
    const float *base = data + s * cb * hw * v;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t pix = 0; pix < hw; pix++) dst[ch * hw + pix] = base[((ch / v) * hw + pix) * v + ch % v];
}
