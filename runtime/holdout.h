/* A validation set held out of the training set (--val-split F), and early
 * stopping on its loss (--early-stop P) keeping the best parameters.
 * Owned by runtime/holdout.c; used by the trainer (train.c). */
#ifndef NETRT_HOLDOUT_H
#define NETRT_HOLDOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netrt.h"

/* The split of samples 0 .. S-1: a permutation drawn from `seed` (its own
 * stream), of which the last nval = round(F * S) samples are the
 * validation set and the others the training set; each list is then in
 * file order.  The caller frees *train_ids and *val_ids.  -1 with a message
 * if F leaves either part empty or memory runs out. */
int netrt_holdout_split(int64_t S, double F, uint64_t seed, int64_t **train_ids, int64_t *ntrain,
                        int64_t **val_ids, int64_t *nval, char *err, size_t errlen);

/* Early stopping: the best validation loss so far, its epoch, and a copy of
 * every parameter tensor (running statistics too) at that epoch. */
typedef struct netrt_early_stop {
    int64_t patience;   /* stop after this many epochs without a lower validation loss */
    int64_t best_epoch; /* 0: none yet */
    double best_loss;
    float *best;        /* owned: the parameters of best_epoch, one after another */
} netrt_early_stop;

/* After epoch `epoch` with validation loss `loss`: if it is lower than the
 * best so far (strictly), copies the model's parameters as the best.
 * Returns 1 if training should stop (patience epochs without improvement),
 * 0 to go on, -1 out of memory. */
int netrt_early_stop_update(netrt_early_stop *es, const netrt_model *in, int64_t epoch, double loss);
/* Copies the best epoch's parameters back into the model. */
void netrt_early_stop_restore(const netrt_early_stop *es, const netrt_model *in);
void netrt_early_stop_free(netrt_early_stop *es);

#endif
