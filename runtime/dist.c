/* Data-parallel training (dist.h): gradient buckets, broadcasts, the
 * batchnorm sums of --sync-batchnorm and --verify-replicas, over the
 * operations of a netrt_comm.
 *
 * Buckets.  The gradients are summed in buckets rather than one by one
 * (hundreds of small messages would each pay the network's latency) or all
 * at the end (nothing would overlap the backward pass).  A bucket is a run
 * of a flat float buffer: each gradient, when grad() reports it finished, is
 * copied to the end of the buffer in the order of the reports, and a bucket
 * is started as soon as it holds bucket_mb megabytes.  The order of the
 * reports is the order of the backward pass, the same on every rank and at
 * every step, so every rank starts the same buckets in the same order, as
 * collectives require.  Gradients never reported (none should be) are
 * packed at the end of the step, in parameter order. */
#include <stdlib.h>
#include <string.h>

#include "dist.h"

struct netrt_dist {
    netrt_comm *c;
    const netrt_train_model *m;
    int np;             /* parameter tensors */
    int64_t *numel;     /* per parameter */
    float *flat;        /* the gradient buffer: total floats */
    int64_t total;      /* floats of every trained parameter's gradient */
    int64_t *off;       /* per parameter: where its gradient is this step, -1 before it arrives */
    int64_t fill, start; /* floats packed so far; where the open bucket starts */
    int64_t cap;        /* floats per bucket */
    int buckets;        /* started this step */
    double waited;      /* seconds in wait_all so far: the communication the backward pass did not hide */
    bool active;        /* between begin_step and end_step */
    bool sync_bn;
    float *buffers;     /* the running statistics, packed for their broadcast */
    int64_t nbuffers;
    double *scratch;    /* netrt_dist_sync_sums' n sums and the count */
    int nscratch;
    uint64_t *hashes;   /* --verify-replicas: np per rank */
};

/* The hooks' one instance: the emitted code calls them without context. */
static netrt_dist *current;

/* A running statistic: a parameter nothing trains and the net did not
 * freeze (the only such parameters are batchnorm's running mean and
 * variance). */
static bool is_buffer(const netrt_train_model *m, int k) {
    return !m->grads[k].data && !(m->frozen && m->frozen[k]);
}

netrt_dist *netrt_dist_new(netrt_comm *c, const netrt_train_model *m, double bucket_mb, bool sync_bn, char *err,
                           size_t errlen) {
    netrt_dist *d = calloc(1, sizeof *d);
    int np = m->infer->nparams;
    if (!d) goto oom;
    d->c = c, d->m = m, d->np = np, d->sync_bn = sync_bn;
    d->numel = calloc((size_t)np + 1, sizeof *d->numel);
    d->off = calloc((size_t)np + 1, sizeof *d->off);
    d->hashes = calloc((size_t)np * (size_t)c->size + 1, sizeof *d->hashes);
    if (!d->numel || !d->off || !d->hashes) goto oom;
    for (int k = 0; k < np; k++) {
        const netrt_tensor *p = &m->infer->params[k];
        d->numel[k] = netrt_numel(p->rank, p->shape);
        if (m->grads[k].data) d->total += d->numel[k];
        if (is_buffer(m, k)) d->nbuffers += d->numel[k];
    }
    d->flat = netrt_alloc((size_t)(d->total + 1) * sizeof(float));
    d->buffers = netrt_alloc((size_t)(d->nbuffers + 1) * sizeof(float));
    if (!d->flat || !d->buffers) goto oom;
    d->cap = (int64_t)(bucket_mb * 1024 * 1024 / sizeof(float));
    if (d->cap < 1) d->cap = 1;
    current = d;
    return d;
oom:
    netrt_dist_free(d);
    netrt_errorf(err, errlen, "out of memory");
    return NULL;
}

void netrt_dist_free(netrt_dist *d) {
    if (!d) return;
    if (current == d) current = NULL;
    free(d->numel);
    free(d->off);
    free(d->hashes);
    free(d->scratch);
    netrt_free(d->flat);
    netrt_free(d->buffers);
    free(d);
}

/* Every parameter, then the moments of the trained ones, from rank 0. */
void netrt_dist_bcast_params(netrt_dist *d) {
    const netrt_train_model *m = d->m;
    for (int k = 0; k < d->np; k++) {
        int64_t bytes = d->numel[k] * (int64_t)sizeof(float);
        d->c->bcast(d->c, m->infer->params[k].data, bytes);
        if (m->moment1[k].data) d->c->bcast(d->c, m->moment1[k].data, bytes);
        if (m->moment2[k].data) d->c->bcast(d->c, m->moment2[k].data, bytes);
    }
}

/* The open bucket, started. */
static void start_bucket(netrt_dist *d) {
    if (d->fill == d->start) return;
    d->c->sum_start(d->c, d->flat + d->start, d->fill - d->start);
    d->start = d->fill;
    d->buckets++;
}

static void pack(netrt_dist *d, int k) {
    memcpy(d->flat + d->fill, d->m->grads[k].data, (size_t)d->numel[k] * sizeof(float));
    d->off[k] = d->fill;
    d->fill += d->numel[k];
}

void netrt_dist_begin_step(netrt_dist *d) {
    const netrt_train_model *m = d->m;
    if (!d->sync_bn && d->nbuffers) { /* per-rank statistics: rank 0's running averages, as DDP */
        int64_t o = 0;
        for (int k = 0; k < d->np; k++)
            if (is_buffer(m, k)) {
                memcpy(d->buffers + o, m->infer->params[k].data, (size_t)d->numel[k] * sizeof(float));
                o += d->numel[k];
            }
        d->c->bcast(d->c, d->buffers, o * (int64_t)sizeof(float));
        o = 0;
        for (int k = 0; k < d->np; k++)
            if (is_buffer(m, k)) {
                memcpy(m->infer->params[k].data, d->buffers + o, (size_t)d->numel[k] * sizeof(float));
                o += d->numel[k];
            }
    }
    for (int k = 0; k < d->np; k++) d->off[k] = -1;
    d->fill = d->start = 0;
    d->buckets = 0;
    d->active = true;
}

void netrt_dist_grad_ready(int k) {
    netrt_dist *d = current;
    if (!d || !d->active || k < 0 || k >= d->np || !d->m->grads[k].data || d->off[k] >= 0) return;
    pack(d, k);
    if (d->fill - d->start >= d->cap) start_bucket(d);
    d->c->progress(d->c);
}

void netrt_dist_end_step(netrt_dist *d) {
    for (int k = 0; k < d->np; k++)
        if (d->m->grads[k].data && d->off[k] < 0) pack(d, k);
    start_bucket(d);
    double t0 = netrt_now();
    d->c->wait_all(d->c);
    d->waited += netrt_now() - t0;
    d->active = false;
    const float scale = 1.0f / (float)d->c->size;
    for (int k = 0; k < d->np; k++) {
        float *g = d->m->grads[k].data;
        if (!g) continue;
        const float *s = d->flat + d->off[k];
        for (int64_t i = 0; i < d->numel[k]; i++) g[i] = s[i] * scale;
    }
}

void netrt_dist_sync_sums(double *sums, int n, double *count) {
    netrt_dist *d = current;
    if (!d || !d->sync_bn || n < 1) return;
    if (d->nscratch < n + 1) {
        double *s = realloc(d->scratch, (size_t)(n + 1) * sizeof *s);
        if (!s) { /* cannot go on: the ranks would disagree */
            fprintf(stderr, "rank %d: error: out of memory in --sync-batchnorm\n", d->c->rank);
            d->c->abort(d->c, 1);
        }
        d->scratch = s, d->nscratch = n + 1;
    }
    memcpy(d->scratch, sums, (size_t)n * sizeof *sums);
    d->scratch[n] = count ? *count : 0.0;
    d->c->sum_f64(d->c, d->scratch, n + 1);
    memcpy(sums, d->scratch, (size_t)n * sizeof *sums);
    if (count) *count = d->scratch[n];
}

/* FNV-1a over the bytes of n floats, continuing h. */
static uint64_t hash_floats(uint64_t h, const float *p, int64_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < (size_t)n * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

int netrt_dist_verify(netrt_dist *d, int64_t step, char *err, size_t errlen) {
    const netrt_train_model *m = d->m;
    uint64_t local[d->np + 1];
    for (int k = 0; k < d->np; k++) {
        uint64_t h = 0xcbf29ce484222325ULL;
        if (m->grads[k].data) { /* trained: it and its moments must agree everywhere */
            h = hash_floats(h, m->infer->params[k].data, d->numel[k]);
            if (m->moment1[k].data) h = hash_floats(h, m->moment1[k].data, d->numel[k]);
            if (m->moment2[k].data) h = hash_floats(h, m->moment2[k].data, d->numel[k]);
        }
        local[k] = h;
    }
    d->c->gather_u64(d->c, local, d->np, d->hashes);
    for (int r = 1; r < d->c->size; r++)
        for (int k = 0; k < d->np; k++)
            if (d->hashes[(size_t)r * (size_t)d->np + k] != d->hashes[k])
                return netrt_errorf(err, errlen,
                                    "--verify-replicas: after step %lld, rank %d's '%s' (or its optimizer state) "
                                    "differs from rank 0's: the replicas have diverged",
                                    (long long)step, r, m->infer->params[k].name);
    return 0;
}

void netrt_dist_sum(netrt_dist *d, double *v, int n) { d->c->sum_f64(d->c, v, n); }

int netrt_dist_bcast_int(netrt_dist *d, int v) {
    d->c->bcast(d->c, &v, sizeof v);
    return v;
}

int64_t netrt_dist_grad_floats(const netrt_dist *d) { return d->total; }
int netrt_dist_buckets(const netrt_dist *d) { return d->buckets; }
double netrt_dist_waited(const netrt_dist *d) { return d->waited; }
bool netrt_dist_has_batchnorm(const netrt_dist *d) { return d->nbuffers > 0; }
