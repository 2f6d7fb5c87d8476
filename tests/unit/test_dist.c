/* runtime/dist.c over a fake netrt_comm of 2 ranks in one process, whose
 * "other rank" holds the same values plus a known offset:
 *   - buckets: every trained gradient is summed exactly once, in buckets
 *     started as soon as they hold --bucket-mb (each but the last at least
 *     that full, none split inside a gradient), in the order of the
 *     reports, while later reports are still to come; a gradient never
 *     reported is summed at the end of the step; the result is the mean;
 *   - the running statistics (untrained, unfrozen parameters) are
 *     broadcast before each step with per-rank batchnorm, not with
 *     --sync-batchnorm; frozen parameters never;
 *   - netrt_dist_sync_sums sums only under --sync-batchnorm;
 *   - --verify-replicas names the first rank and tensor that differ. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

/* ---- the fake: rank 0 of 2; rank 1's values are rank 0's plus OTHER ---------- */

enum { MAXB = 64 };
#define OTHER 1.0f

typedef struct {
    int64_t start_len[MAXB]; /* each started sum's floats */
    int reported_at[MAXB];   /* how many gradients had been reported when it started */
    int nstarted, nwaits, nbcast, nprogress;
    int64_t bcast_bytes;
    int diverge; /* gather: rank 1's hash of this tensor differs (-1: none) */
} Fake;

static Fake fake;
static int reports; /* netrt_dist_grad_ready calls so far */

static void f_sum_start(netrt_comm *c, float *buf, int64_t n) {
    (void)c;
    for (int64_t i = 0; i < n; i++) buf[i] = buf[i] + (buf[i] + OTHER);
    ck_assert_int_lt(fake.nstarted, MAXB);
    fake.reported_at[fake.nstarted] = reports;
    fake.start_len[fake.nstarted++] = n;
}
static void f_progress(netrt_comm *c) { (void)c, fake.nprogress++; }
static void f_wait_all(netrt_comm *c) { (void)c, fake.nwaits++; }
static void f_sum_f64(netrt_comm *c, double *buf, int n) {
    (void)c;
    for (int i = 0; i < n; i++) buf[i] *= 2; /* both ranks alike */
}
static void f_bcast(netrt_comm *c, void *buf, int64_t bytes) {
    (void)c, (void)buf;
    fake.nbcast++;
    fake.bcast_bytes += bytes;
}
static void f_gather(netrt_comm *c, const uint64_t *mine, int n, uint64_t *all) {
    (void)c;
    for (int k = 0; k < n; k++) all[k] = all[n + k] = mine[k];
    if (fake.diverge >= 0) all[n + fake.diverge] ^= 1;
}
static void f_abort(netrt_comm *c, int status) {
    (void)c;
    ck_abort_msg("abort(%d)", status);
}

static netrt_comm comm = {.rank = 0, .size = 2, .sum_start = f_sum_start, .progress = f_progress,
                          .wait_all = f_wait_all, .sum_f64 = f_sum_f64, .bcast = f_bcast,
                          .gather_u64 = f_gather, .abort = f_abort};

/* ---- a model of 6 parameters: trained a (100 floats), b (300), c (20),
 * d (50), a running statistic e (8) and a frozen f (10) ---------------------- */

enum { NP = 6 };
static const int64_t sizes[NP] = {100, 300, 20, 50, 8, 10};
static float pdata[NP][300], gdata[NP][300], m1[NP][300], m2[NP][300];
static netrt_tensor params[NP], grads[NP], mom1[NP], mom2[NP];
static const bool frozen[NP] = {false, false, false, false, false, true};
static netrt_model infer;
static netrt_hparams hp;
static netrt_train_model model;

static void setup(void) {
    static const char *names[NP] = {"a", "b", "c", "d", "e", "f"};
    memset(&fake, 0, sizeof fake);
    fake.diverge = -1;
    reports = 0;
    for (int k = 0; k < NP; k++) {
        params[k] = (netrt_tensor){names[k], 1, {sizes[k]}, pdata[k]};
        bool trained = k < 4;
        grads[k] = mom1[k] = mom2[k] = params[k];
        grads[k].data = trained ? gdata[k] : NULL;
        mom1[k].data = trained ? m1[k] : NULL;
        mom2[k].data = trained ? m2[k] : NULL;
        for (int64_t i = 0; i < sizes[k]; i++) pdata[k][i] = (float)(k + i), gdata[k][i] = (float)(10 * k + i) / 8;
    }
    infer = (netrt_model){.name = "fake", .nparams = NP, .params = params};
    model = (netrt_train_model){.infer = &infer, .grads = grads, .moment1 = mom1, .moment2 = mom2, .hp = &hp,
                                .frozen = frozen};
}

/* The backward pass of the fake: reports d, c, b, a (the reverse order of
 * the forward), or `nreport` of them. */
static void backward(int nreport) {
    static const int order[] = {3, 2, 1, 0};
    for (int i = 0; i < nreport; i++) {
        reports++;
        netrt_dist_grad_ready(order[i]);
    }
}

static void check_means(void) {
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < sizes[k]; i++)
            ck_assert_msg(gdata[k][i] == (float)(10 * k + i) / 8 + OTHER / 2, "gradient %s[%lld]: %g",
                          params[k].name, (long long)i, (double)gdata[k][i]);
}

START_TEST(buckets_in_report_order) {
    setup();
    char err[256];
    /* 120 floats a bucket: d (50) + c (20) + b (300) fills the first at the
     * report of b; a (100) is the last, started at the end */
    netrt_dist *d = netrt_dist_new(&comm, &model, 120.0 * sizeof(float) / (1024 * 1024), false, err, sizeof err);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(netrt_dist_grad_floats(d), 470);
    netrt_dist_begin_step(d);
    backward(4);
    ck_assert_int_eq(fake.nstarted, 1); /* started during the backward pass */
    ck_assert_int_eq(fake.start_len[0], 370);
    ck_assert_int_eq(fake.reported_at[0], 3);
    ck_assert_int_eq(fake.nprogress, 4);
    netrt_dist_end_step(d);
    ck_assert_int_eq(fake.nstarted, 2);
    ck_assert_int_eq(fake.start_len[1], 100);
    ck_assert_int_eq(fake.nwaits, 1);
    ck_assert_int_eq(netrt_dist_buckets(d), 2);
    check_means();
    netrt_dist_free(d);
}
END_TEST

START_TEST(one_bucket_per_gradient_and_unreported) {
    setup();
    char err[256];
    netrt_dist *d = netrt_dist_new(&comm, &model, 1e-9, false, err, sizeof err); /* a bucket a gradient */
    ck_assert_ptr_nonnull(d);
    netrt_dist_begin_step(d);
    backward(2); /* d and c reported; b and a never */
    ck_assert_int_eq(fake.nstarted, 2);
    netrt_dist_end_step(d);
    ck_assert_int_eq(fake.nstarted, 3); /* a and b, packed at the end, in one last bucket */
    ck_assert_int_eq(fake.start_len[0], 50);
    ck_assert_int_eq(fake.start_len[1], 20);
    ck_assert_int_eq(fake.start_len[2], 400);
    check_means();
    /* a second step: reports again */
    setup();
    netrt_dist_begin_step(d);
    backward(4);
    netrt_dist_end_step(d);
    ck_assert_int_eq(fake.nstarted, 4);
    check_means();
    netrt_dist_free(d);
}
END_TEST

START_TEST(buffers_and_sync_sums) {
    setup();
    char err[256];
    netrt_dist *d = netrt_dist_new(&comm, &model, 25, false, err, sizeof err);
    ck_assert(netrt_dist_has_batchnorm(d));
    netrt_dist_begin_step(d); /* per-rank statistics: e, 8 floats, broadcast */
    ck_assert_int_eq(fake.nbcast, 1);
    ck_assert_int_eq(fake.bcast_bytes, 8 * (int64_t)sizeof(float));
    double s[3] = {1, 2, 3}, cnt = 10;
    netrt_dist_sync_sums(s, 3, &cnt); /* not synchronized: unchanged */
    ck_assert(s[0] == 1 && s[2] == 3 && cnt == 10);
    netrt_dist_end_step(d);
    netrt_dist_free(d);

    setup();
    d = netrt_dist_new(&comm, &model, 25, true, err, sizeof err);
    netrt_dist_begin_step(d); /* synchronized: every rank computes the same statistics */
    ck_assert_int_eq(fake.nbcast, 0);
    netrt_dist_sync_sums(s, 3, &cnt);
    ck_assert(s[0] == 2 && s[1] == 4 && s[2] == 6 && cnt == 20);
    netrt_dist_sync_sums(s, 3, NULL);
    ck_assert(s[0] == 4 && cnt == 20);
    netrt_dist_end_step(d);
    /* the start: every parameter (frozen ones too), and the trained ones' two moments */
    fake.nbcast = 0, fake.bcast_bytes = 0;
    netrt_dist_bcast_params(d);
    ck_assert_int_eq(fake.nbcast, 6 + 2 * 4);
    ck_assert_int_eq(fake.bcast_bytes, (488 + 2 * 470) * (int64_t)sizeof(float));
    netrt_dist_free(d);
    netrt_dist_sync_sums(s, 3, &cnt); /* after free: nothing */
    ck_assert(s[0] == 4 && cnt == 20);
}
END_TEST

START_TEST(verify_replicas) {
    setup();
    char err[256] = "";
    netrt_dist *d = netrt_dist_new(&comm, &model, 25, false, err, sizeof err);
    ck_assert_int_eq(netrt_dist_verify(d, 7, err, sizeof err), 0);
    fake.diverge = 1;
    ck_assert_int_eq(netrt_dist_verify(d, 7, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "after step 7, rank 1's 'b'") != NULL, "%s", err);
    netrt_dist_free(d);
}
END_TEST

static Suite *dist_suite(void) {
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("buckets");
    tcase_add_test(tc, buckets_in_report_order);
    tcase_add_test(tc, one_bucket_per_gradient_and_unreported);
    tcase_add_test(tc, buffers_and_sync_sums);
    tcase_add_test(tc, verify_replicas);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(dist_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
