/* Unit tests of the training side of libnetrt: netrt_init_fill,
 * netrt_train_main and netrt_gradcheck_main, driven in-process with a
 * hand-written "emitted" training model: softmax regression (logits =
 * x W^T + b, mean cross-entropy) with its backward pass and PyTorch's SGD
 * written out by hand.  Files go to a mkdtemp directory removed at the end. */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "netrt.h"

static char tmpdir[256];
static char err[1024];

static const char *tpath(const char *name) {
    static char bufs[64][512];
    static int k;
    char *b = bufs[k++ % 64];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* ---- the model: softmax regression, x [N, 1, 2, 2] -> K classes ---------------- */

enum { N = 8, D = 4, K = 3 };

static float W[K * D], b[K], tag[1];             /* params; tag is frozen (no gradient) */
static float gW[K * D], gb[K], vW[K * D], vb[K]; /* gradients and SGD velocities */
static float x[N * D], gx[N * D], lab[N], loss_v[1], logits[N * K], out[N * K];
static netrt_hparams hp_v; /* the model's hyperparameters, set by the trainer */
static float vb2[K], vW2[K * D]; /* the second moments (unused by this SGD) */

/* What the runtime did to the model. */
static int active = N, grads, updates, runs, prepares, resets, init_fail;
static int batches[64], nbatches; /* set_batch arguments, in order */
static int seen[256], nseen;      /* sample ids (x[.., 3] * 1000) seen by grad(), in order */
static int nan_at;                /* grad() call number whose loss is NaN (0: none) */
static bool check_v;              /* the model's --check-numerics flag */

static netrt_tensor params[3] = {
    {"fc.weight", 2, {K, D}, W}, {"fc.bias", 1, {K}, b}, {"tag", 1, {1}, tag}};
static netrt_tensor grad_ts[3] = {
    {"fc.weight", 2, {K, D}, gW}, {"fc.bias", 1, {K}, gb}, {"tag", 1, {1}, NULL}};
static netrt_tensor moment1_ts[3] = {
    {"fc.weight", 2, {K, D}, vW}, {"fc.bias", 1, {K}, vb}, {"tag", 1, {1}, NULL}};
static netrt_tensor moment2_ts[3] = {
    {"fc.weight", 2, {K, D}, vW2}, {"fc.bias", 1, {K}, vb2}, {"tag", 1, {1}, NULL}};
static const netrt_param_init inits[3] = {
    {NETRT_INIT_XAVIER, D, K, 0, 0, K}, {NETRT_INIT_ZERO, 0, 0, 0, 0, K}, {NETRT_INIT_ONE, 0, 0, 0, 0, 1}};
static netrt_tensor inputs[1] = {{"x", 4, {N, 1, 2, 2}, x}};
static netrt_tensor input_grads[1] = {{"x", 4, {N, 1, 2, 2}, gx}};
static netrt_tensor outputs[1] = {{"logits", 2, {N, K}, out}};
static netrt_tensor labels_t = {"labels", 1, {N}, lab};
static netrt_tensor loss_t = {"loss", 1, {1}, loss_v};
static netrt_tensor logits_t = {"train_logits", 2, {N, K}, logits};

static int m_init(void) { return init_fail; }
static void m_prepare(void) { prepares++; }
static void m_set_batch(int nb) {
    ck_assert_int_ge(nb, 1);
    ck_assert_int_le(nb, N);
    active = nb;
    if (nbatches < 64) batches[nbatches++] = nb;
}

static void forward(float *lg) {
    for (int n = 0; n < active; n++)
        for (int k = 0; k < K; k++) {
            float s = b[k];
            for (int d = 0; d < D; d++) s += W[k * D + d] * x[n * D + d];
            lg[n * K + k] = s;
        }
}

/* With --check-numerics, the logits are checked as emitted code checks a
 * node's output. */
static int check_logits(const float *lg) {
    return check_v ? netrt_check_finite(lg, (int64_t)active * K, K, "the output", "linear", "fc", "softreg.net:3")
                   : 0;
}

static void m_run(void) {
    runs++;
    forward(out);
    if (check_logits(out)) return;
}

/* Forward in training mode, the mean cross-entropy and its gradients;
 * sign = -1 is a deliberately wrong backward for the weight. */
static void grad_with(float sign) {
    grads++;
    forward(logits);
    if (check_logits(logits)) return;
    double total = 0;
    float dl[N * K];
    for (int n = 0; n < active; n++) {
        const float *r = logits + n * K;
        float mx = r[0];
        for (int k = 1; k < K; k++) mx = r[k] > mx ? r[k] : mx;
        double se = 0;
        for (int k = 0; k < K; k++) se += exp((double)(r[k] - mx));
        int y = (int)lab[n];
        total += mx + log(se) - r[y];
        for (int k = 0; k < K; k++)
            dl[n * K + k] = (float)((exp((double)(r[k] - mx)) / se - (k == y)) / active);
        if (nseen < 256) seen[nseen++] = (int)lroundf(x[n * D + 3] * 1000);
    }
    loss_v[0] = (float)(total / active);
    if (grads == nan_at) loss_v[0] = NAN;
    memset(gW, 0, sizeof gW);
    memset(gb, 0, sizeof gb);
    memset(gx, 0, sizeof gx);
    for (int n = 0; n < active; n++)
        for (int k = 0; k < K; k++) {
            gb[k] += dl[n * K + k];
            for (int d = 0; d < D; d++) {
                gW[k * D + d] += sign * dl[n * K + k] * x[n * D + d];
                gx[n * D + d] += dl[n * K + k] * W[k * D + d];
            }
        }
}
static void m_grad(void) { grad_with(1); }
static void m_grad_wrong(void) { grad_with(-1); }

/* PyTorch's SGD: g = grad + wd p; v = momentum v + g; p -= lr v. */
static void m_update(void) {
    updates++;
    for (int i = 0; i < K * D; i++) {
        vW[i] = hp_v.momentum * vW[i] + gW[i] + hp_v.weight_decay * W[i];
        W[i] -= hp_v.lr * vW[i];
    }
    for (int i = 0; i < K; i++) {
        vb[i] = hp_v.momentum * vb[i] + gb[i] + hp_v.weight_decay * b[i];
        b[i] -= hp_v.lr * vb[i];
    }
}
static void m_reset(void) {
    resets++;
    memset(vW, 0, sizeof vW);
    memset(vb, 0, sizeof vb);
}

static const netrt_model infer = {
    .name = "softreg", .source = "softreg.net", .batch = N,
    .nparams = 3, .params = params, .ninputs = 1, .inputs = inputs,
    .noutputs = 1, .outputs = outputs,
    .init = m_init, .prepare = m_prepare, .run = m_run, .check_numerics = &check_v,
};
static const netrt_train_model model = {
    .infer = &infer, .grads = grad_ts, .inits = inits, .input_grads = input_grads,
    .labels = &labels_t, .loss = &loss_t, .train_logits = &logits_t,
    .set_batch = m_set_batch, .grad = m_grad, .update = m_update, .reset_state = m_reset,
    .hp = &hp_v, .moment1 = moment1_ts, .moment2 = moment2_ts, .loss_kind = NETRT_LOSS_CROSS_ENTROPY,
    .ignore_index = -100,
};
static netrt_train_model wrong_model; /* model with m_grad_wrong, set up in main */

static void reset_counters(void) {
    grads = updates = runs = prepares = resets = nbatches = nseen = nan_at = 0;
}

/* ---- running the mains ---------------------------------------------------------- */

typedef int (*main_fn)(int, char **, const netrt_train_model *);
static char out_text[1 << 16], err_text[1 << 14];

/* Runs fn with stdout and stderr captured into out_text and err_text. */
static int run(main_fn fn, const netrt_train_model *m, const char *first, ...) {
    char *argv[48];
    int argc = 0;
    argv[argc++] = "./prog";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 47; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    char po[512], pe[512];
    snprintf(po, sizeof po, "%s/stdout.txt", tmpdir);
    snprintf(pe, sizeof pe, "%s/stderr.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = fn(argc, argv, m);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    const char *paths[2] = {po, pe};
    char *bufs[2] = {out_text, err_text};
    size_t ns[2] = {sizeof out_text, sizeof err_text};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(paths[k], "r");
        size_t n = fread(bufs[k], 1, ns[k] - 1, f);
        bufs[k][n] = '\0';
        fclose(f);
    }
    return rc;
}

#define train(...) run(netrt_train_main, &model, __VA_ARGS__, NULL)

/* Expects netrt_train_main to fail before training, with one line on stderr
 * holding want. */
#define ck_train_fails(want, ...)                                                                 \
    do {                                                                                          \
        reset_counters();                                                                         \
        int rc_ = train(__VA_ARGS__);                                                             \
        ck_assert_int_eq(rc_, 1);                                                                 \
        ck_assert_msg(strncmp(err_text, "prog: error: ", 13) == 0 && strstr(err_text, want),     \
                      "stderr '%s' lacks '%s'", err_text, want);                                 \
        ck_assert_ptr_eq(strchr(err_text, '\n'), err_text + strlen(err_text) - 1);               \
        ck_assert_int_eq(grads, 0);                                                               \
    } while (0)

/* ---- data sets ---------------------------------------------------------------- */

/* Writes an int64 .npy vector. */
static void write_labels_i64(const char *path, const int64_t *v, int n) {
    char dict[128];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", n);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned short hl = (unsigned short)(len + 1 + pad);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(dict, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(v, sizeof *v, (size_t)n, f);
    fclose(f);
}

/* A separable set: sample s has class s % 3 (or label[s] if given), feature
 * c = class is 1 plus noise, and feature 3 holds s / 1000 (its id). */
static unsigned noise_state = 12345;
static float noise(void) {
    noise_state = noise_state * 1103515245u + 12345u;
    return (float)((noise_state >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static void make_set(const char *images, const char *labels, int S, int64_t bad_label_at) {
    float *d = malloc(sizeof(float) * (size_t)S * D);
    int64_t *l = malloc(sizeof(int64_t) * (size_t)S);
    for (int s = 0; s < S; s++) {
        int c = s % K;
        for (int k = 0; k < 3; k++) d[s * D + k] = (k == c ? 1.0f : 0.0f) + 0.3f * noise();
        d[s * D + 3] = (float)s / 1000.0f;
        l[s] = c;
    }
    if (bad_label_at >= 0) l[bad_label_at] = K;
    int64_t shape[4] = {S, 1, 2, 2};
    ck_assert_int_eq(netrt_npy_write(images, d, 4, shape, err, sizeof err), 0);
    write_labels_i64(labels, l, S);
    free(d);
    free(l);
}

/* Reads tensor name of a safetensors file as float32 into dst (n values). */
static void read_tensor(const char *path, const char *name, float *dst, int n) {
    netrt_st_file f;
    ck_assert_msg(netrt_st_open(path, &f, err, sizeof err) == 0, "%s", err);
    const netrt_st_entry *e = netrt_st_find(&f, name);
    ck_assert_msg(e != NULL, "%s lacks %s", path, name);
    ck_assert_int_eq(e->dtype, NETRT_F32);
    ck_assert_uint_eq(e->nbytes, (size_t)n * sizeof(float));
    memcpy(dst, e->data, e->nbytes);
    netrt_st_close(&f);
}

static bool same_file(const char *a, const char *b) {
    void *da, *db;
    size_t na, nb;
    ck_assert_int_eq(netrt_read_file(a, &da, &na, err, sizeof err), 0);
    ck_assert_int_eq(netrt_read_file(b, &db, &nb, err, sizeof err), 0);
    bool same = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

/* Parses "NAME XX.XX%" after the last occurrence of key in out_text. */
static double percent_after(const char *key) {
    const char *p = NULL, *q = out_text;
    while ((q = strstr(q, key)) != NULL) p = q++;
    ck_assert_msg(p != NULL, "stdout lacks '%s': %s", key, out_text);
    return atof(p + strlen(key));
}

/* ---- netrt_init_fill ------------------------------------------------------------ */

START_TEST(init_fill_statistics) {
    enum { M = 200000 };
    float *d = malloc(sizeof(float) * M);
    netrt_rng r, ref;

    /* Xavier: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), drawn as
     * (2u - 1) a, the sequence `netc init` has always written. */
    netrt_rng_seed(&r, 7);
    netrt_rng_seed(&ref, 7);
    netrt_init_fill(NETRT_INIT_XAVIER, 100, 50, &r, d, M);
    double a = sqrt(6.0 / 150), sum = 0, sq = 0;
    for (int i = 0; i < M; i++) {
        ck_assert(fabsf(d[i]) <= (float)a);
        sum += d[i];
        sq += (double)d[i] * d[i];
        if (i < 1000) ck_assert_float_eq(d[i], (float)((2 * netrt_rng_uniform(&ref) - 1) * a));
    }
    ck_assert_double_lt(fabs(sum / M), 2e-3);
    ck_assert_double_eq_tol(sq / M, a * a / 3, 0.02 * a * a / 3);

    /* He: N(0, 2 / fan_in). */
    netrt_init_fill(NETRT_INIT_HE, 50, 10, &r, d, M);
    sum = sq = 0;
    for (int i = 0; i < M; i++) {
        sum += d[i];
        sq += (double)d[i] * d[i];
    }
    double sd = sqrt(2.0 / 50), mean = sum / M;
    ck_assert_double_lt(fabs(mean), 3e-3);
    ck_assert_double_eq_tol(sqrt(sq / M - mean * mean), sd, 0.02 * sd);

    /* Constants draw nothing from the generator. */
    netrt_rng before = r;
    netrt_init_fill(NETRT_INIT_ZERO, 3, 3, &r, d, 10);
    for (int i = 0; i < 10; i++) ck_assert_float_eq(d[i], 0.0f);
    netrt_init_fill(NETRT_INIT_ONE, 3, 3, &r, d, 10);
    for (int i = 0; i < 10; i++) ck_assert_float_eq(d[i], 1.0f);
    netrt_init_fill(NETRT_INIT_NONE, 3, 3, &r, d, 10);
    for (int i = 0; i < 10; i++) ck_assert_float_eq(d[i], 0.0f);
    ck_assert_mem_eq(&before, &r, sizeof r);
    free(d);
}
END_TEST

/* ---- training ------------------------------------------------------------------- */

START_TEST(train_separable) {
    const char *xi = tpath("sep_x.npy"), *yi = tpath("sep_y.npy");
    const char *xt = tpath("sep_tx.npy"), *yt = tpath("sep_ty.npy");
    make_set(xi, yi, 300, -1);
    make_set(xt, yt, 90, -1);
    reset_counters();
    int rc = train("--train-images", xi, "--train-labels", yi, "--test-images", xt,
                   "--test-labels", yt, "--epochs", "5", "--lr=0.2", "--seed", "3", "--quiet");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(resets, 1);
    ck_assert_int_ge(prepares, 1);
    ck_assert_int_eq(grads, 5 * 38); /* ceil(300 / 8) batches per epoch */
    ck_assert_int_eq(updates, grads);
    ck_assert_float_eq(hp_v.lr, 0.2f);
    ck_assert_float_eq(hp_v.momentum, 0.9f);
    ck_assert_float_eq(hp_v.weight_decay, 0.0f);
    ck_assert_msg(strstr(out_text, "training softreg (softreg.net): 15 parameters, batch 8; 300 "
                                   "training images [1, 2, 2], 90 test images; 5 epochs, loss cross_entropy, SGD lr 0.2, "
                                   "momentum 0.9, weight decay 0, seed 3") != NULL,
                  "stdout: %s", out_text);
    for (int e = 1; e <= 5; e++) {
        char want[64];
        snprintf(want, sizeof want, "epoch %d/5: train loss ", e);
        ck_assert_msg(strstr(out_text, want) != NULL, "stdout lacks '%s': %s", want, out_text);
    }
    ck_assert_msg(strstr(out_text, "images/s; test loss ") != NULL, "stdout: %s", out_text);
    ck_assert_msg(strstr(out_text, "(90 images)\n") != NULL, "stdout: %s", out_text);
    ck_assert_double_ge(percent_after("train accuracy "), 95.0);
    ck_assert_double_ge(percent_after("test accuracy "), 95.0);
    ck_assert_str_eq(err_text, ""); /* no progress bar off a terminal */

    /* Weight decay and momentum reach update() through the model's floats. */
    rc = train("--train-images", xi, "--train-labels", yi, "--limit", "8", "--momentum", "0.5",
               "--weight-decay", "1e-4", "--lr", "0");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_float_eq(hp_v.momentum, 0.5f);
    ck_assert_float_eq(hp_v.weight_decay, 1e-4f);
    ck_assert_float_eq(hp_v.lr, 0.0f);
}
END_TEST

/* Without a progress bar (--quiet, or stderr not a terminal), an epoch
 * prints a heartbeat line when NETRT_HEARTBEAT_SECONDS (60 by default) have
 * passed since the last line: here after every batch but the epoch's last. */
static int count_of(const char *text, const char *what) {
    int n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

START_TEST(train_heartbeat) {
    const char *xi = tpath("hb_x.npy"), *yi = tpath("hb_y.npy");
    make_set(xi, yi, 300, -1);
    setenv("NETRT_HEARTBEAT_SECONDS", "1e-9", 1);
    int rc = train("--train-images", xi, "--train-labels", yi, "--epochs", "2", "--lr", "0.2", "--quiet");
    unsetenv("NETRT_HEARTBEAT_SECONDS");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(count_of(out_text, "epoch 1/2, step "), 37); /* ceil(300 / 8) = 38 batches */
    ck_assert_int_eq(count_of(out_text, "epoch 2/2, step "), 37);
    const char *first = strstr(out_text, "epoch 1/2, step 1/38: loss ");
    ck_assert_msg(first != NULL, "stdout: %s", out_text);
    double loss = -1, rate = -1;
    char tail[16] = "";
    ck_assert_int_eq(sscanf(first, "epoch 1/2, step 1/38: loss %lf so far, %lf images/%15s", &loss, &rate, tail), 3);
    ck_assert_msg(loss > 0 && loss < 10 && rate > 0 && strcmp(tail, "s") == 0, "%.200s", first);
    const char *last = strstr(out_text, "epoch 1/2, step 37/38: loss ");
    const char *epoch_line = strstr(out_text, "epoch 1/2: train loss ");
    ck_assert_msg(last && epoch_line && first < last && last < epoch_line, "stdout: %s", out_text);
    ck_assert_ptr_null(strstr(out_text, "step 38/38")); /* the epoch's line, not a heartbeat, ends it */
    ck_assert_str_eq(err_text, "");

    /* the default minute, and a value that is not a positive number: none in a short run */
    rc = train("--train-images", xi, "--train-labels", yi, "--epochs", "2", "--lr", "0.2", "--quiet");
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_null(strstr(out_text, ", step "));
    setenv("NETRT_HEARTBEAT_SECONDS", "-1", 1);
    rc = train("--train-images", xi, "--train-labels", yi, "--epochs", "1", "--lr", "0.2", "--quiet");
    unsetenv("NETRT_HEARTBEAT_SECONDS");
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_null(strstr(out_text, ", step "));
}
END_TEST

START_TEST(train_limit_partial_batch_and_order) {
    const char *xi = tpath("lim_x.npy"), *yi = tpath("lim_y.npy");
    const char *xt = tpath("lim_tx.npy"), *yt = tpath("lim_ty.npy");
    make_set(xi, yi, 20, -1);
    make_set(xt, yt, 10, -1);

    /* 19 of 20 images in batches of 8, 8 and 3; the test pass 8 and 2. */
    reset_counters();
    int rc = train("--train-images", xi, "--train-labels", yi, "--test-images", xt, "--test-labels",
                   yt, "--limit", "19", "--no-shuffle");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    int want[5] = {8, 8, 3, 8, 2};
    ck_assert_int_eq(nbatches, 5);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(batches[i], want[i]);
    ck_assert_int_eq(grads, 3);
    ck_assert_int_eq(updates, 3);
    ck_assert_int_eq(runs, 2);
    ck_assert_int_eq(nseen, 19);
    for (int i = 0; i < 19; i++) ck_assert_int_eq(seen[i], i); /* file order */
    ck_assert_msg(strstr(out_text, "(10 images)\n") != NULL, "stdout: %s", out_text);
    ck_assert_msg(strstr(out_text, "19 training images") != NULL, "stdout: %s", out_text);

    /* Shuffled: each epoch a permutation of the 19, not in file order, and
     * another one the next epoch; --test-limit cuts the test set. */
    reset_counters();
    rc = train("--train-images", xi, "--train-labels", yi, "--test-images", xt, "--test-labels", yt,
               "--limit=19", "--epochs", "2", "--test-limit", "5");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(nseen, 38);
    bool in_order = true, same_twice = true;
    for (int e = 0; e < 2; e++) {
        int count[19] = {0};
        for (int i = 0; i < 19; i++) {
            ck_assert_int_lt(seen[e * 19 + i], 19);
            count[seen[e * 19 + i]]++;
            if (seen[e * 19 + i] != i) in_order = false;
            if (seen[i] != seen[19 + i]) same_twice = false;
        }
        for (int i = 0; i < 19; i++) ck_assert_int_eq(count[i], 1);
    }
    ck_assert(!in_order);
    ck_assert(!same_twice);
    int want2[8] = {8, 8, 3, 5, 8, 8, 3, 5};
    ck_assert_int_eq(nbatches, 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(batches[i], want2[i]);
    ck_assert_msg(strstr(out_text, "(5 images)\n") != NULL, "stdout: %s", out_text);

    /* --test-limit 0: no evaluation (no inference run, no test line). */
    reset_counters();
    rc = train("--train-images", xi, "--train-labels", yi, "--test-images", xt, "--test-labels", yt,
               "--limit=19", "--epochs", "2", "--test-limit", "0");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(runs, 0);
    ck_assert_int_eq(nseen, 38);
    ck_assert_msg(strstr(out_text, "test loss") == NULL, "stdout: %s", out_text);

    /* The same seed shuffles the same way; another seed differently. */
    int first[38];
    memcpy(first, seen, sizeof first);
    reset_counters();
    rc = train("--train-images", xi, "--train-labels", yi, "--limit=19", "--epochs", "2");
    ck_assert_int_eq(rc, 0);
    ck_assert_mem_eq(first, seen, sizeof first);
    reset_counters();
    rc = train("--train-images", xi, "--train-labels", yi, "--limit=19", "--epochs", "2", "--seed",
               "2");
    ck_assert_int_eq(rc, 0);
    ck_assert(memcmp(first, seen, sizeof first) != 0);
}
END_TEST

/* The gradients of the mean cross-entropy over samples [0, nb) of a set,
 * in double, from the current W and b. */
static void direct_grads(const char *images, const char *labels, int nb, double *dW, double *db) {
    netrt_array xa, ya;
    ck_assert_int_eq(netrt_array_read(images, &xa, err, sizeof err), 0);
    ck_assert_int_eq(netrt_array_read(labels, &ya, err, sizeof err), 0);
    memset(dW, 0, sizeof(double) * K * D);
    memset(db, 0, sizeof(double) * K);
    for (int n = 0; n < nb; n++) {
        float xs[D];
        netrt_array_to_f32(&xa, D, n, 1, xs);
        double z[K], mx = -INFINITY, se = 0;
        for (int k = 0; k < K; k++) {
            z[k] = b[k];
            for (int d = 0; d < D; d++) z[k] += (double)W[k * D + d] * xs[d];
            mx = fmax(mx, z[k]);
        }
        for (int k = 0; k < K; k++) se += exp(z[k] - mx);
        int64_t y = netrt_array_int_at(&ya, n);
        for (int k = 0; k < K; k++) {
            double dl = (exp(z[k] - mx) / se - (k == y)) / nb;
            db[k] += dl;
            for (int d = 0; d < D; d++) dW[k * D + d] += dl * xs[d];
        }
    }
    netrt_array_free(&xa);
    netrt_array_free(&ya);
}

/* Writes known parameters to path. */
static void write_weights(const char *path, float scale) {
    float w[K * D], bb[K], t[1] = {7};
    for (int i = 0; i < K * D; i++) w[i] = scale * (float)((i * 7) % 5 - 2) / 4;
    for (int i = 0; i < K; i++) bb[i] = scale * (float)(i - 1) / 10;
    netrt_tensor ts[3] = {{"fc.weight", 2, {K, D}, w}, {"fc.bias", 1, {K}, bb}, {"tag", 1, {1}, t}};
    ck_assert_int_eq(netrt_st_write(path, ts, 3, err, sizeof err), 0);
}

START_TEST(train_grads_out) {
    const char *xi = tpath("g_x.npy"), *yi = tpath("g_y.npy"), *w = tpath("g_w.safetensors");
    const char *g = tpath("g.safetensors");
    make_set(xi, yi, 20, -1);
    write_weights(w, 1.0f);
    reset_counters();
    int rc = train("--train-images", xi, "--train-labels", yi, "--load", w, "--grads-out", g);
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(grads, 1);
    ck_assert_int_eq(updates, 0);
    ck_assert_int_eq(nbatches, 1);
    ck_assert_int_eq(batches[0], N);
    ck_assert_msg(strstr(out_text, "first batch (8 images") != NULL, "stdout: %s", out_text);

    /* The parameters are the loaded ones, untouched; the file holds the
     * gradients of the first 8 samples in file order under the parameters'
     * names, and nothing for the frozen tag. */
    float lw[K * D];
    read_tensor(w, "fc.weight", lw, K * D);
    ck_assert_mem_eq(lw, W, sizeof lw);
    ck_assert_float_eq(tag[0], 7.0f);
    double dW[K * D], db[K];
    direct_grads(xi, yi, N, dW, db);
    float fW[K * D], fb[K];
    read_tensor(g, "fc.weight", fW, K * D);
    read_tensor(g, "fc.bias", fb, K);
    for (int i = 0; i < K * D; i++) ck_assert_double_eq_tol(fW[i], dW[i], 1e-6);
    for (int i = 0; i < K; i++) ck_assert_double_eq_tol(fb[i], db[i], 1e-6);
    netrt_st_file f;
    ck_assert_int_eq(netrt_st_open(g, &f, err, sizeof err), 0);
    ck_assert_int_eq(f.count, 2);
    ck_assert_ptr_null(netrt_st_find(&f, "tag"));
    netrt_st_close(&f);

    /* With --limit 5 the first batch has 5 images. */
    reset_counters();
    rc = train("--train-images", xi, "--train-labels", yi, "--load", w, "--grads-out", g,
               "--limit", "5");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(batches[0], 5);
    direct_grads(xi, yi, 5, dW, db);
    read_tensor(g, "fc.weight", fW, K * D);
    for (int i = 0; i < K * D; i++) ck_assert_double_eq_tol(fW[i], dW[i], 1e-6);

    /* --grads-out trains nothing, so --save with it is refused. */
    ck_train_fails("--grads-out cannot be combined with --save", "--train-images", xi,
                   "--train-labels", yi, "--grads-out", g, "--save", tpath("never.safetensors"));
}
END_TEST

START_TEST(train_save_load_and_init) {
    const char *xi = tpath("s_x.npy"), *yi = tpath("s_y.npy");
    const char *a = tpath("a.safetensors"), *bfile = tpath("b.safetensors");
    const char *i0 = tpath("init.safetensors");
    make_set(xi, yi, 40, -1);

    /* Without --load the parameters come from netrt_init_fill and the seed,
     * one stream in parameter order (as `netc init`). */
    reset_counters();
    int rc = train("--train-images", xi, "--train-labels", yi, "--epochs", "0", "--seed", "5",
                   "--save", i0);
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(grads, 0);
    float want[K * D + K + 1], got[K * D];
    netrt_rng r;
    netrt_rng_seed(&r, 5);
    netrt_init_fill(NETRT_INIT_XAVIER, D, K, &r, want, K * D);
    netrt_init_fill(NETRT_INIT_ZERO, 0, 0, &r, want + K * D, K);
    netrt_init_fill(NETRT_INIT_ONE, 0, 0, &r, want + K * D + K, 1);
    read_tensor(i0, "fc.weight", got, K * D);
    ck_assert_mem_eq(got, want, sizeof got);
    read_tensor(i0, "fc.bias", got, K);
    ck_assert_mem_eq(got, want + K * D, K * sizeof(float));
    read_tensor(i0, "tag", got, 1);
    ck_assert_float_eq(got[0], 1.0f);
    ck_assert_msg(strstr(out_text, "saved 3 parameter tensors to ") != NULL, "stdout: %s",
                  out_text);

    /* Train, save; load it back with lr 0 and save again: the same file. */
    rc = train("--train-images", xi, "--train-labels", yi, "--epochs", "2", "--save", a);
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    float trained[K * D];
    memcpy(trained, W, sizeof trained);
    memset(W, 0, sizeof W);
    reset_counters();
    rc = train("--train-images", xi, "--train-labels", yi, "--load", a, "--lr", "0", "--save",
               bfile);
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_gt(grads, 0);
    ck_assert_int_ge(prepares, 1);
    ck_assert_mem_eq(W, trained, sizeof trained);
    ck_assert(same_file(a, bfile));
    ck_assert_msg(strstr(out_text, "weights from ") != NULL, "stdout: %s", out_text);

    /* --load of a file that does not fit: an error naming it. */
    ck_train_fails("init.safetensors", "--train-images", xi, "--train-labels", yi, "--load",
                   tpath("init.safetensors.missing"));
    netrt_tensor wrong = {"fc.weight", 2, {D, K}, want};
    ck_assert_int_eq(netrt_st_write(tpath("wrong.safetensors"), &wrong, 1, err, sizeof err), 0);
    ck_train_fails("wrong.safetensors: tensor 'fc.weight' has shape [4, 3], expected [3, 4]",
                   "--train-images", xi, "--train-labels", yi, "--load",
                   tpath("wrong.safetensors"));
}
END_TEST

START_TEST(train_determinism) {
    const char *xi = tpath("d_x.npy"), *yi = tpath("d_y.npy");
    make_set(xi, yi, 50, -1);
    const char *c1 = tpath("c1.safetensors"), *c2 = tpath("c2.safetensors");
    const char *c3 = tpath("c3.safetensors"), *c4 = tpath("c4.safetensors");
    const char *c5 = tpath("c5.safetensors");
    ck_assert_int_eq(train("--train-images", xi, "--train-labels", yi, "--no-shuffle", "--seed",
                           "3", "--epochs", "2", "--save", c1), 0);
    ck_assert_int_eq(train("--train-images", xi, "--train-labels", yi, "--no-shuffle", "--seed",
                           "3", "--epochs", "2", "--save", c2), 0);
    ck_assert(same_file(c1, c2));
    ck_assert_int_eq(train("--train-images", xi, "--train-labels", yi, "--seed", "3", "--epochs",
                           "2", "--save", c3), 0);
    ck_assert_int_eq(train("--train-images", xi, "--train-labels", yi, "--seed", "3", "--epochs",
                           "2", "--save", c4), 0);
    ck_assert(same_file(c3, c4));
    ck_assert(!same_file(c1, c3)); /* shuffling changes the result */
    ck_assert_int_eq(train("--train-images", xi, "--train-labels", yi, "--no-shuffle", "--seed",
                           "4", "--epochs", "2", "--save", c5), 0);
    ck_assert(!same_file(c1, c5)); /* another initialization */
}
END_TEST

START_TEST(train_nan_loss) {
    const char *xi = tpath("n_x.npy"), *yi = tpath("n_y.npy"), *s = tpath("n.safetensors");
    make_set(xi, yi, 40, -1);
    reset_counters();
    nan_at = 3;
    int rc = train("--train-images", xi, "--train-labels", yi, "--save", s);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err_text, "prog: error: the loss is NaN at epoch 1, batch 3") != NULL,
                  "stderr: %s", err_text);
    ck_assert_int_eq(updates, 2);
    ck_assert(!exists(s));
    nan_at = 0;
}
END_TEST

/* --check-numerics names the op and the sample (in the file, through the
 * shuffling) whose values are not finite; without it, the NaN loss stops
 * training. */
START_TEST(train_check_numerics) {
    const char *xi = tpath("cn_x.npy"), *yi = tpath("cn_y.npy"), *s = tpath("cn.safetensors");
    make_set(xi, yi, 20, -1);
    netrt_array a;
    ck_assert_int_eq(netrt_npy_read(xi, &a, err, sizeof err), 0);
    ((float *)a.data)[13 * D + 1] = NAN;
    ck_assert_int_eq(netrt_npy_write(tpath("cn_xnan.npy"), a.data, a.rank, a.shape, err, sizeof err), 0);
    netrt_array_free(&a);
    const char *xn = tpath("cn_xnan.npy");

    reset_counters();
    int rc = train("--train-images", xn, "--train-labels", yi, "--save", s, "--check-numerics");
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err_text, "prog: error: numerics: NaN in the output of linear \"fc\" (softreg.net:3), "
                                   "training sample 13, element 0\n") != NULL,
                  "stderr: %s", err_text);
    ck_assert(!exists(s));
    ck_assert(check_v);

    /* The test set: after the first epoch. */
    reset_counters();
    rc = train("--train-images", xi, "--train-labels", yi, "--test-images", xn, "--test-labels", yi, "--save", s,
               "--check-numerics");
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err_text, "(softreg.net:3), test sample 13, element 0\n") != NULL, "stderr: %s", err_text);
    ck_assert(!exists(s));

    /* Without the flag (which is turned off again), the loss. */
    reset_counters();
    rc = train("--train-images", xn, "--train-labels", yi, "--save", s, "--no-shuffle");
    ck_assert_int_eq(rc, 1);
    ck_assert(!check_v);
    ck_assert_msg(strstr(err_text, "prog: error: the loss is NaN at epoch 1, batch 2 (try a smaller --lr, or "
                                   "--check-numerics to find the op that made it)") != NULL,
                  "stderr: %s", err_text);

    /* Finite data passes, and so does the gradient check. */
    reset_counters();
    ck_assert_int_eq(train("--train-images", xi, "--train-labels", yi, "--test-images", xi, "--test-labels", yi,
                           "--check-numerics", "--save", s),
                     0);
    ck_assert(exists(s));
    ck_assert_int_eq(run(netrt_gradcheck_main, &model, "--check-numerics", NULL), 0);
    ck_assert_msg(strstr(out_text, "ok: ") != NULL, "stdout: %s", out_text);
    check_v = false;
}
END_TEST

/* An IDX file: magic 0 0 type rank, big-endian dimensions, data. */
static void write_idx(const char *path, bool gz, const unsigned char *data, int rank,
                      const int *dims, size_t n) {
    unsigned char head[4 + 4 * 4] = {0, 0, 0x08, (unsigned char)rank};
    for (int i = 0; i < rank; i++) {
        head[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        head[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        head[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        head[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        gzwrite(f, head, (unsigned)(4 + 4 * rank));
        gzwrite(f, data, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(head, 1, (size_t)(4 + 4 * rank), f);
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

START_TEST(train_data_dir) {
    const char *dir = tpath("fmnist");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    enum { S = 12, T = 6 };
    unsigned char img[S * 4], lab8[S];
    for (int s = 0; s < S; s++) {
        for (int k = 0; k < 4; k++) img[s * 4 + k] = (unsigned char)(k == s % 3 ? 255 : 30 + s);
        lab8[s] = (unsigned char)(s % 3);
    }
    char p[600];
    int di[3] = {S, 2, 2}, dl[1] = {S}, ti[3] = {T, 2, 2}, tl[1] = {T};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(p, true, img, 3, di, sizeof img);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    write_idx(p, false, lab8, 1, dl, sizeof lab8);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
    write_idx(p, false, img, 3, ti, T * 4);
    /* The test labels are missing for now. */
    ck_train_fails("fmnist/t10k-labels-idx1-ubyte: no such file (nor t10k-labels-idx1-ubyte.gz)",
                   "--data", dir);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    write_idx(p, true, lab8, 1, tl, T);

    reset_counters();
    int rc = train("--data", dir, "--epochs", "2", "--lr", "0.5");
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    ck_assert_int_eq(grads, 4);
    ck_assert_msg(strstr(out_text, "epoch 2/2: ") != NULL && strstr(out_text, "(6 images)\n"),
                  "stdout: %s", out_text);

    /* uint8 pixels arrive scaled to [0, 1]: the gradient of the first batch
     * is that of img / 255. */
    const char *w = tpath("dd_w.safetensors"), *g = tpath("dd_g.safetensors");
    write_weights(w, 0.5f);
    ck_train_fails("option --data needs a non-empty value", "--data=", "--load", w);
    rc = train("--data", dir, "--load", w, "--grads-out", g);
    ck_assert_msg(rc == 0, "stderr: %s", err_text);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    char lp[600];
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte", dir);
    double dW[K * D], db[K];
    direct_grads(p, lp, N, dW, db);
    float fW[K * D];
    read_tensor(g, "fc.weight", fW, K * D);
    for (int i = 0; i < K * D; i++) ck_assert_double_eq_tol(fW[i], dW[i], 1e-6);

    ck_train_fails("--data /no/such/dir: No such file or directory", "--data", "/no/such/dir");
    ck_assert_int_eq(mkdir(tpath("empty"), 0755), 0);
    ck_train_fails("empty/train-images-idx3-ubyte: no such file", "--data", tpath("empty"));
    ck_train_fails("--data cannot be combined with --train-images", "--data", dir,
                   "--train-images", p, "--train-labels", lp);
}
END_TEST

START_TEST(train_errors) {
    const char *xi = tpath("e_x.npy"), *yi = tpath("e_y.npy");
    const char *yb = tpath("e_ybad.npy"), *xb = tpath("e_xb.npy"), *ys = tpath("e_yshort.npy");
    make_set(xi, yi, 20, -1);
    make_set(xb, yb, 20, 13); /* label 3 at sample 13 */
    int64_t l19[19] = {0};
    write_labels_i64(ys, l19, 19);

    ck_train_fails("e_yshort.npy: 19 labels for 20 images in ", "--train-images", xi,
                   "--train-labels", ys);
    ck_train_fails("e_ybad.npy: label 3 of sample 13 is out of range (the model has 3 classes",
                   "--train-images", xi, "--train-labels", yb);
    ck_train_fails("e_ybad.npy: label 3 of sample 13", "--train-images", xi, "--train-labels", yi,
                   "--test-images", xi, "--test-labels", yb);

    float d[20 * 5] = {0};
    int64_t sh[2] = {20, 5};
    const char *x5 = tpath("e_x5.npy");
    ck_assert_int_eq(netrt_npy_write(x5, d, 2, sh, err, sizeof err), 0);
    ck_train_fails("e_x5.npy: input 'x' has shape [20, 5], expected [S, 1, 2, 2] or [S, 2, 2]",
                   "--train-images", x5, "--train-labels", yi);
    ck_train_fails("e_x5.npy: input 'x' has shape [20, 5]", "--train-images", xi, "--train-labels", yi,
                   "--test-images", x5, "--test-labels", yi);
    ck_train_fails("labels must be an integer array [S], got F32 of shape [20, 1, 2, 2]", "--train-images", xi, "--train-labels",
                   xi);
    ck_train_fails("no-such.npy: No such file or directory", "--train-images", tpath("no-such.npy"),
                   "--train-labels", yi);
    ck_train_fails("no-such-labels.npy: No such file", "--train-images", xi, "--train-labels",
                   tpath("no-such-labels.npy"));
    ck_train_fails("no-such-test.npy: No such file", "--train-images", xi, "--train-labels", yi,
                   "--test-images", tpath("no-such-test.npy"), "--test-labels", yi);
    ck_train_fails("--train-images needs --train-labels", "--train-images", xi);
    ck_train_fails("--test-labels needs --test-images", "--train-images", xi, "--train-labels", yi,
                   "--test-labels", yi);
    ck_train_fails("--test-images needs --train-images", "--test-images", xi, "--test-labels", yi);
    ck_train_fails("unknown option '--frobnicate'", "--frobnicate");
    ck_train_fails("unexpected argument 'stray'", "stray");
    ck_train_fails("option --lr needs a value", "--train-images", xi, "--train-labels", yi, "--lr");
    ck_train_fails("--lr needs a number >= 0, not 'fast'", "--lr", "fast");
    ck_train_fails("--epochs needs an integer >= 0, not '-1'", "--epochs", "-1");
    ck_train_fails("--limit needs a positive integer, not '0'", "--limit", "0");
    ck_train_fails("--seed needs an integer >= 0, not '1x'", "--seed", "1x");
    ck_train_fails("option --quiet takes no value", "--quiet=yes");
    /* Unwritable outputs are found before training. */
    ck_train_fails("nodir/w.safetensors", "--train-images", xi, "--train-labels", yi, "--save",
                   tpath("nodir/w.safetensors"));
    ck_train_fails("nodir/g.safetensors", "--train-images", xi, "--train-labels", yi,
                   "--grads-out", tpath("nodir/g.safetensors"));

    init_fail = 1;
    ck_train_fails("cannot initialize the model", "--train-images", xi, "--train-labels", yi);
    init_fail = 0;

    /* --help names the flags and the input. */
    int rc = train("--help");
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out_text, "--grads-out FILE"));
    ck_assert_ptr_nonnull(strstr(out_text, "input  x: [1, 2, 2] per sample"));
}
END_TEST

/* ---- gradcheck ------------------------------------------------------------------- */

/* Whether the line of out_text starting with start ends with end. */
static bool line_ends(const char *start, const char *end) {
    for (const char *p = out_text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, start, strlen(start)) != 0) continue;
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p), n = strlen(end);
        return len >= n && strncmp(p + len - n, end, n) == 0;
    }
    return false;
}

START_TEST(gradcheck_passes_and_fails) {
    reset_counters();
    int rc = run(netrt_gradcheck_main, &model, "--seed", "2", NULL);
    ck_assert_msg(rc == 0, "stdout: %s\nstderr: %s", out_text, err_text);
    ck_assert_msg(strstr(out_text, "ok: 3 tensors within the threshold 0.01\n") != NULL, "%s",
                  out_text);
    ck_assert_ptr_nonnull(strstr(out_text, "x (input)"));
    ck_assert_ptr_null(strstr(out_text, "tag")); /* no gradient, not checked */
    ck_assert_int_eq(batches[0], N);
    ck_assert_int_eq(updates, 0);

    /* A sign error in the weight's gradient fails that tensor only. */
    rc = run(netrt_gradcheck_main, &wrong_model, NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(line_ends("fc.weight ", "FAIL"), "%s", out_text);
    ck_assert_msg(line_ends("fc.bias ", "ok"), "%s", out_text);
    ck_assert_msg(line_ends("x (input) ", "ok"), "%s", out_text);
    ck_assert_msg(strstr(out_text, "FAIL: 1 of 3 tensors above the threshold 0.01") != NULL, "%s",
                  out_text);

    /* A smaller active batch, more directions. */
    reset_counters();
    rc = run(netrt_gradcheck_main, &model, "--batch-size", "3", "--directions=5", NULL);
    ck_assert_msg(rc == 0, "%s", out_text);
    ck_assert_int_eq(batches[0], 3);
    ck_assert_msg(strstr(out_text, "x (input)  [3, 1, 2, 2]") != NULL, "%s", out_text);

    rc = run(netrt_gradcheck_main, &model, "--batch-size", "9", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err_text, "--batch-size 9 is larger than the compiled batch 8"), "%s",
                  err_text);
    rc = run(netrt_gradcheck_main, &model, "--eps", "0", NULL);
    ck_assert_int_eq(rc, 1);
    rc = run(netrt_gradcheck_main, &model, "--bogus", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err_text, "unknown option '--bogus'"));
    rc = run(netrt_gradcheck_main, &model, "--help", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out_text, "--directions K"));

    /* A program whose tables point at doubles (netc gradcheck's build) runs
     * only under the gradient check: the trainer refuses it untouched. */
    netrt_model dbl_infer = infer;
    dbl_infer.real_bytes = 8;
    netrt_train_model dbl = model;
    dbl.infer = &dbl_infer;
    reset_counters();
    rc = run(netrt_train_main, &dbl, "--help", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err_text, "this program was compiled in double precision, which only the gradient check runs"),
                  "%s", err_text);
    ck_assert_int_eq(grads, 0);
}
END_TEST

/* ---- main ---------------------------------------------------------------------- */

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *init = tcase_create("init");
    tcase_add_test(init, init_fill_statistics);
    suite_add_tcase(s, init);
    TCase *tr = tcase_create("trainer");
    tcase_set_timeout(tr, 60);
    tcase_add_test(tr, train_separable);
    tcase_add_test(tr, train_heartbeat);
    tcase_add_test(tr, train_limit_partial_batch_and_order);
    tcase_add_test(tr, train_grads_out);
    tcase_add_test(tr, train_save_load_and_init);
    tcase_add_test(tr, train_determinism);
    tcase_add_test(tr, train_nan_loss);
    tcase_add_test(tr, train_check_numerics);
    tcase_add_test(tr, train_data_dir);
    tcase_add_test(tr, train_errors);
    suite_add_tcase(s, tr);
    TCase *gc = tcase_create("gradcheck");
    tcase_set_timeout(gc, 60);
    tcase_add_test(gc, gradcheck_passes_and_fails);
    suite_add_tcase(s, gc);
    return s;
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/netrt-train-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    wrong_model = model;
    wrong_model.grad = m_grad_wrong;
    SRunner *sr = srunner_create(train_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tree(tmpdir);
    return failed == 0 ? 0 : 1;
}
