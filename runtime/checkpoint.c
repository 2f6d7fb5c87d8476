/* Training checkpoints (the trainer's --checkpoint and --resume, train.c).
 *
 * A checkpoint is a safetensors file, so that other tools read it:
 *   - every parameter of the model under its name (running statistics
 *     included), float32;
 *   - for each trained parameter P, the optimizer's moments as
 *     "optimizer.moment1.P" (SGD's momentum buffer, Adam's first moment)
 *     and "optimizer.moment2.P" (Adam's second moment; zeros for SGD);
 *   - in __metadata__ (strings): "format" "pt", "netc" "checkpoint 1",
 *     "model" (the net's name), "optimizer" (sgd, adam, adamw), "epoch"
 *     (epochs done), "step" (optimizer steps done), "grad_calls" (grad()
 *     calls: dropout's masks), "seed" (the run's --seed), "shuffle" (the
 *     shuffling generator's state after those epochs: four 64-bit words in
 *     hex), and the run's "epochs" (its total), "schedule" and "warmup" (the
 *     options' text, "" for none), which a resumed run must repeat; "batch"
 *     (images a step over every rank) and "ranks" (processes: data-parallel
 *     training), which a resumed run should repeat (older checkpoints lack
 *     them).
 * netrt_st_write writes it atomically (a temporary file renamed), so a run
 * stopped while writing leaves the previous checkpoint whole. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

#define FORMAT "checkpoint 1"

const char *netrt_optimizer_name(netrt_optimizer o) {
    static const char *const names[] = {[NETRT_SGD] = "sgd", [NETRT_ADAM] = "adam", [NETRT_ADAMW] = "adamw"};
    return (unsigned)o < 3 ? names[o] : "?";
}

/* The checkpoint's tensors: the parameters, then the two moments of each
 * trained one (names malloc'd into *names; free both arrays).  NULL if out
 * of memory. */
static netrt_tensor *checkpoint_tensors(const netrt_train_model *m, int *count, char **names) {
    const netrt_model *in = m->infer;
    int n = in->nparams;
    size_t bytes = 0;
    for (int i = 0; i < in->nparams; i++)
        if (m->grads[i].data) {
            n += 2;
            bytes += 2 * (strlen(in->params[i].name) + sizeof "optimizer.momentN.");
        }
    netrt_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    char *p = *names = malloc(bytes + 1);
    if (!ts || !p) {
        free(ts);
        free(*names);
        return NULL;
    }
    int k = 0;
    for (int i = 0; i < in->nparams; i++) ts[k++] = in->params[i];
    for (int i = 0; i < in->nparams; i++) {
        if (!m->grads[i].data) continue;
        for (int j = 1; j <= 2; j++) {
            const netrt_tensor *mo = j == 1 ? &m->moment1[i] : &m->moment2[i];
            ts[k] = in->params[i];
            ts[k].data = mo->data;
            ts[k].name = p;
            p += sprintf(p, "optimizer.moment%d.%s", j, in->params[i].name) + 1;
            k++;
        }
    }
    *count = k;
    return ts;
}

int netrt_checkpoint_write(const char *path, const netrt_train_model *m, const netrt_train_state *s, char *err,
                           size_t errlen) {
    int n;
    char *names;
    netrt_tensor *ts = checkpoint_tensors(m, &n, &names);
    if (!ts) return netrt_errorf(err, errlen, "%s: out of memory", path);
    char epoch[32], step[32], calls[32], seed[32], shuffle[80], epochs[32], batch[32], ranks[32];
    snprintf(batch, sizeof batch, "%" PRId64, s->batch);
    snprintf(ranks, sizeof ranks, "%" PRId64, s->ranks);
    snprintf(epoch, sizeof epoch, "%" PRId64, s->epoch);
    snprintf(step, sizeof step, "%" PRId64, s->step);
    snprintf(calls, sizeof calls, "%" PRIu64, s->grad_calls);
    snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
    snprintf(epochs, sizeof epochs, "%" PRId64, s->epochs);
    snprintf(shuffle, sizeof shuffle, "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64, s->shuffle.s[0],
             s->shuffle.s[1], s->shuffle.s[2], s->shuffle.s[3]);
    const char *meta[] = {
        "netc", FORMAT, "model", m->infer->name ? m->infer->name : "?",
        "optimizer", netrt_optimizer_name(s->optimizer), "epoch", epoch, "step", step, "grad_calls", calls,
        "seed", seed, "shuffle", shuffle, "epochs", epochs, "schedule", s->schedule, "warmup", s->warmup,
        "batch", batch, "ranks", ranks,
    };
    int rc = netrt_st_write_meta(path, ts, n, meta, (int)(sizeof meta / sizeof *meta / 2), err, errlen);
    free(ts);
    free(names);
    return rc;
}

/* A whole number of metadata key into v; the message names path and key. */
static int meta_u64(const netrt_st_file *f, const char *path, const char *key, uint64_t *v, char *err, size_t errlen) {
    const char *s = netrt_st_meta(f, key);
    char *end;
    if (!s || !*s || *s == '-') goto bad;
    *v = strtoull(s, &end, 10);
    if (*end) goto bad;
    return 0;
bad:
    return netrt_errorf(err, errlen, "%s: not a netc checkpoint: __metadata__ '%s' is %s%s%s", path, key,
                        s ? "'" : "missing", s ? s : "", s ? "', not a whole number" : "");
}

int netrt_checkpoint_read(const char *path, const netrt_train_model *m, netrt_train_state *s, char *err,
                          size_t errlen) {
    netrt_st_file f;
    if (netrt_st_open(path, &f, err, errlen) < 0) return -1;
    int n = 0, rc = 0;
    char *names = NULL;
    netrt_tensor *ts = NULL;
    const char *fmt = netrt_st_meta(&f, "netc"), *opt = netrt_st_meta(&f, "optimizer");
    const char *shuffle = netrt_st_meta(&f, "shuffle");
    uint64_t epoch = 0, step = 0, calls = 0, seed = 0, epochs = 0, batch = 0, ranks = 0; /* set by meta_u64 (zeros: gcc cannot tell) */
    const char *schedule = netrt_st_meta(&f, "schedule"), *warmup = netrt_st_meta(&f, "warmup");
    if (!fmt || strcmp(fmt, FORMAT) != 0) {
        rc = netrt_errorf(err, errlen, "%s: not a netc checkpoint (its __metadata__ has no \"netc\": \"" FORMAT "\")",
                          path);
        goto done;
    }
    if (meta_u64(&f, path, "epoch", &epoch, err, errlen) < 0 || meta_u64(&f, path, "step", &step, err, errlen) < 0 ||
        meta_u64(&f, path, "grad_calls", &calls, err, errlen) < 0 || meta_u64(&f, path, "seed", &seed, err, errlen) < 0 ||
        meta_u64(&f, path, "epochs", &epochs, err, errlen) < 0 ||
        /* optional: an older checkpoint has neither (0) */
        (netrt_st_meta(&f, "batch") && meta_u64(&f, path, "batch", &batch, err, errlen) < 0) ||
        (netrt_st_meta(&f, "ranks") && meta_u64(&f, path, "ranks", &ranks, err, errlen) < 0)) {
        rc = -1;
        goto done;
    }
    int k = 0;
    while (k < 3 && !(opt && strcmp(opt, netrt_optimizer_name((netrt_optimizer)k)) == 0)) k++;
    if (k == 3) {
        rc = netrt_errorf(err, errlen, "%s: not a netc checkpoint: __metadata__ 'optimizer' is %s%s%s", path,
                          opt ? "'" : "missing", opt ? opt : "", opt ? "'" : "");
        goto done;
    }
    if (!schedule || !warmup || strlen(schedule) >= sizeof s->schedule || strlen(warmup) >= sizeof s->warmup) {
        rc = netrt_errorf(err, errlen, "%s: not a netc checkpoint: __metadata__ 'schedule' or 'warmup' %s", path,
                          !schedule || !warmup ? "missing" : "too long");
        goto done;
    }
    netrt_rng rng;
    if (!shuffle || sscanf(shuffle, "%16" SCNx64 ",%16" SCNx64 ",%16" SCNx64 ",%16" SCNx64, &rng.s[0], &rng.s[1],
                           &rng.s[2], &rng.s[3]) != 4) {
        rc = netrt_errorf(err, errlen, "%s: not a netc checkpoint: __metadata__ 'shuffle' is not four hex words", path);
        goto done;
    }
    if (!(ts = checkpoint_tensors(m, &n, &names))) {
        rc = netrt_errorf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    if ((rc = netrt_st_check(ts, n, &f, path, err, errlen)) < 0) goto done;
    for (int i = 0; i < n; i++) netrt_st_entry_to_f32(netrt_st_find(&f, ts[i].name), ts[i].data);
    *s = (netrt_train_state){.epoch = (int64_t)epoch, .step = (int64_t)step, .grad_calls = calls, .seed = seed,
                             .shuffle = rng, .optimizer = (netrt_optimizer)k, .epochs = (int64_t)epochs};
    memcpy(s->schedule, schedule, strlen(schedule) + 1);
    memcpy(s->warmup, warmup, strlen(warmup) + 1);
    s->batch = (int64_t)batch;
    s->ranks = (int64_t)ranks;
done:
    free(ts);
    free(names);
    netrt_st_close(&f);
    return rc;
}
