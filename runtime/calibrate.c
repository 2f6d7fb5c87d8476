/* --init-calibrate K: layer-sequential unit-variance initialization
 * (netrt_debug.h).  The variance of a layer's output comes from its tap,
 * accumulated in double over the K batches; the layers are done in forward
 * order, so that each is scaled with the layers before it already final. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "netrt_debug.h"

#define ROUNDS 10
#define TOL 0.1

typedef struct {
    const netrt_train_model *m;
    int tap;    /* the tap measured */
    int64_t nb; /* the active batch */
    bool relu;  /* the tap is conv+relu: 2 E[y^2] */
    double sum, sq, n;
    float *sample;
} calib;

static void calib_tap(void *ctx, int k, const float *data) {
    calib *c = ctx;
    if (k != c->tap) return;
    const netrt_tap_info *t = &c->m->taps[k];
    int64_t per = netrt_tap_per(t);
    for (int64_t s = 0; s < c->nb; s++) {
        netrt_tap_sample(t, data, s, c->sample);
        for (int64_t i = 0; i < per; i++) {
            c->sum += c->sample[i];
            c->sq += (double)c->sample[i] * c->sample[i];
        }
    }
    c->n += (double)(c->nb * per);
}

/* The layer's output variance over the K batches. */
static double measure(calib *c, int64_t k, int64_t (*load)(void *, int64_t), void *ctx) {
    c->sum = c->sq = c->n = 0;
    for (int64_t b = 0; b < k; b++) {
        c->nb = load(ctx, b);
        c->m->grad();
    }
    if (c->n <= 0) return NAN;
    double mean = c->sum / c->n;
    return c->relu ? 2.0 * c->sq / c->n : c->sq / c->n - mean * mean;
}

int netrt_calibrate(const netrt_train_model *m, int64_t k, int64_t (*load)(void *ctx, int64_t b), void *ctx,
                    FILE *out, char *err, size_t errlen) {
    const netrt_model *in = m->infer;
    if (!m->tap_on || m->ntaps < 1)
        return netrt_errorf(err, errlen, "--init-calibrate: this program has no taps (rebuild it with this netc)");
    int64_t maxper = 1;
    for (int t = 0; t < m->ntaps; t++)
        if (netrt_tap_per(&m->taps[t]) > maxper) maxper = netrt_tap_per(&m->taps[t]);
    calib c = {.m = m, .sample = malloc((size_t)maxper * sizeof(float))};
    if (!c.sample) return netrt_errorf(err, errlen, "out of memory");
    uint64_t step0 = m->step ? *m->step : 0;
    netrt_tap_set(m, calib_tap, &c);
    int done = 0, rc = 0;
    fprintf(out, "init-calibrate: unit variance of each conv and linear output over %lld batch%s\n", (long long)k,
            k == 1 ? "" : "es");
    for (int t = 0; t < m->ntaps && rc == 0; t++) {
        const netrt_tap_info *tp = &m->taps[t];
        bool fused_relu = strcmp(tp->kind, "conv+relu") == 0;
        if (!tp->preact && !fused_relu) continue;
        char want[512];
        snprintf(want, sizeof want, "%s.weight", tp->name);
        int p = -1;
        for (int i = 0; i < in->nparams; i++)
            if (!strcmp(in->params[i].name, want)) p = i;
        if (p < 0 || !m->grads[p].data) continue; /* no weight of that name, or frozen */
        c.tap = t;
        c.relu = fused_relu;
        float *w = in->params[p].data;
        int64_t n = netrt_numel(in->params[p].rank, in->params[p].shape);
        double scale = 1.0, var0 = measure(&c, k, load, ctx), var = var0;
        int rounds = 0;
        while (rounds < ROUNDS && isfinite(var) && var > 0 && fabs(var - 1.0) >= TOL) {
            double s = 1.0 / sqrt(var);
            for (int64_t i = 0; i < n; i++) w[i] = (float)(w[i] * s);
            scale *= s;
            rounds++;
            var = measure(&c, k, load, ctx);
        }
        if (!isfinite(var) || !(var > 0)) {
            rc = netrt_errorf(err, errlen, "--init-calibrate: the output of '%s' has variance %g; cannot scale it",
                              tp->name, var);
            break;
        }
        fprintf(out, "init-calibrate: %-24s scale %-10.6g variance %.4g -> %.4g (%d round%s%s)\n", want, scale, var0, var,
                rounds, rounds == 1 ? "" : "s", fused_relu ? ", 2 E[relu^2]: the ReLU is fused" : "");
        done++;
    }
    netrt_tap_set(m, NULL, NULL);
    if (m->step) *m->step = step0;
    free(c.sample);
    if (rc == 0 && done == 0) rc = netrt_errorf(err, errlen, "--init-calibrate: the net has no conv or linear layer to calibrate");
    if (rc == 0) fflush(out);
    return rc;
}
