/* The validation split and early stopping (runtime/holdout.h). */
#include "holdout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int netrt_holdout_split(int64_t S, double F, uint64_t seed, int64_t **train_ids, int64_t *ntrain,
                        int64_t **val_ids, int64_t *nval, char *err, size_t errlen) {
    *train_ids = *val_ids = NULL;
    int64_t nv = (int64_t)floor(F * (double)S + 0.5);
    if (nv < 1 || nv >= S)
        return netrt_errorf(err, errlen,
                            "--val-split %g of %lld training images leaves %s empty (it holds out %lld)", F,
                            (long long)S, nv < 1 ? "the validation set" : "the training set", (long long)nv);
    int64_t *perm = malloc((size_t)S * sizeof *perm);
    unsigned char *held = calloc((size_t)S, 1);
    int64_t *tr = malloc((size_t)(S - nv) * sizeof *tr), *va = malloc((size_t)nv * sizeof *va);
    if (!perm || !held || !tr || !va) {
        free(perm);
        free(held);
        free(tr);
        free(va);
        return netrt_errorf(err, errlen, "out of memory");
    }
    /* Fisher-Yates from a stream apart from the initialization's (seed) and
     * the shuffling's (seed + 1) */
    netrt_rng rng;
    netrt_rng_seed(&rng, seed + 2);
    for (int64_t s = 0; s < S; s++) perm[s] = s;
    for (int64_t s = S - 1; s > 0; s--) {
        int64_t j = (int64_t)netrt_rng_below(&rng, (uint64_t)s + 1);
        int64_t tmp = perm[s];
        perm[s] = perm[j];
        perm[j] = tmp;
    }
    for (int64_t s = S - nv; s < S; s++) held[perm[s]] = 1;
    int64_t a = 0, b = 0;
    for (int64_t s = 0; s < S; s++) {
        if (held[s])
            va[b++] = s;
        else
            tr[a++] = s;
    }
    free(perm);
    free(held);
    *train_ids = tr;
    *ntrain = S - nv;
    *val_ids = va;
    *nval = nv;
    return 0;
}

int netrt_early_stop_update(netrt_early_stop *es, const netrt_model *in, int64_t epoch, double loss) {
    if (es->best_epoch == 0 || loss < es->best_loss) {
        if (!es->best) {
            int64_t n = 0;
            for (int i = 0; i < in->nparams; i++) n += netrt_numel(in->params[i].rank, in->params[i].shape);
            if (!(es->best = malloc((size_t)(n > 0 ? n : 1) * sizeof(float)))) return -1;
        }
        float *p = es->best;
        for (int i = 0; i < in->nparams; i++) {
            int64_t n = netrt_numel(in->params[i].rank, in->params[i].shape);
            memcpy(p, in->params[i].data, (size_t)n * sizeof(float));
            p += n;
        }
        es->best_epoch = epoch;
        es->best_loss = loss;
        return 0;
    }
    return epoch - es->best_epoch >= es->patience ? 1 : 0;
}

void netrt_early_stop_restore(const netrt_early_stop *es, const netrt_model *in) {
    const float *p = es->best;
    for (int i = 0; i < in->nparams; i++) {
        int64_t n = netrt_numel(in->params[i].rank, in->params[i].shape);
        memcpy(in->params[i].data, p, (size_t)n * sizeof(float));
        p += n;
    }
}

void netrt_early_stop_free(netrt_early_stop *es) {
    free(es->best);
    es->best = NULL;
}
