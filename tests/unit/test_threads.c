/* runtime/threads.c: netrt_parallel hands every item of [0, n) to exactly
 * one call, in contiguous parts [n * i / T, n * (i + 1) / T) whatever the
 * timing, at thread counts from 1 to more than the items; thousands of jobs
 * back to back (the batch-1 pattern: many small layers) lose and repeat
 * none; lowering and raising the count between jobs works; several threads
 * calling at once (library instances), and a work item calling in, each get
 * every item of their own jobs once; --threads' parser rejects what it
 * should. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

enum { MAXN = 100000 };

static atomic_int hits[MAXN];
static atomic_int calls;

typedef struct {
    int64_t n, parts;
    atomic_int bad; /* ranges that are not one of the expected parts */
} Job;

/* Marks each item of [lo, hi) and checks the range is a whole part. */
static void mark(void *ctx, int64_t lo, int64_t hi) {
    Job *j = ctx;
    atomic_fetch_add(&calls, 1);
    bool whole = false;
    for (int64_t i = 0; i < j->parts; i++)
        if (lo == j->n * i / j->parts && hi == j->n * (i + 1) / j->parts) whole = true;
    if (!whole || lo < 0 || hi > j->n || lo >= hi) atomic_fetch_add(&j->bad, 1);
    for (int64_t i = lo; i < hi && i < MAXN; i++) atomic_fetch_add(&hits[i], 1);
}

/* One job of n items at `threads` threads: every item once. */
static void run_job(int threads, int64_t n) {
    netrt_set_threads(threads);
    memset(hits, 0, sizeof hits);
    atomic_store(&calls, 0);
    int64_t t = netrt_threads() < n ? netrt_threads() : n;
    Job j = {n, t > 0 ? t : 1, 0};
    netrt_parallel(mark, &j, n);
    ck_assert_int_eq(atomic_load(&j.bad), 0);
    for (int64_t i = 0; i < n; i++) ck_assert_msg(atomic_load(&hits[i]) == 1, "item %lld of %lld at %d threads: %d calls",
                                                    (long long)i, (long long)n, threads, atomic_load(&hits[i]));
    ck_assert_int_le(atomic_load(&calls), n < t ? n : t);
}

START_TEST(every_item_once) {
    static const int threads[] = {1, 2, 3, 4, 7};
    static const int64_t sizes[] = {0, 1, 2, 3, 5, 16, 17, 1000, MAXN};
    for (size_t a = 0; a < sizeof threads / sizeof *threads; a++)
        for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b++) run_job(threads[a], sizes[b]);
    netrt_set_threads(0);
}
END_TEST

static atomic_llong sum;
static void add_items(void *ctx, int64_t lo, int64_t hi) {
    (void)ctx;
    long long s = 0;
    for (int64_t i = lo; i < hi; i++) s += i + 1;
    atomic_fetch_add(&sum, s);
}

/* 4000 small jobs in a row at 2 and 3 threads, the count changing between
 * runs: none lost, none repeated (the sum of 1..n per job). */
START_TEST(many_small_jobs) {
    static const int threads[] = {2, 3, 1, 2};
    for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
        netrt_set_threads(threads[a]);
        for (int r = 0; r < 1000; r++) {
            int64_t n = 1 + r % 37;
            atomic_store(&sum, 0);
            netrt_parallel(add_items, NULL, n);
            ck_assert_int_eq(atomic_load(&sum), n * (n + 1) / 2);
        }
    }
    netrt_set_threads(0);
}
END_TEST

/* A caller's own jobs: its items' sum, and the jobs whose sum was wrong. */
typedef struct {
    atomic_llong sum;
    int wrong, nested;
} Caller;

static void add_own(void *ctx, int64_t lo, int64_t hi) {
    Caller *c = ctx;
    long long s = 0;
    for (int64_t i = lo; i < hi; i++) s += i + 1;
    atomic_fetch_add(&c->sum, s);
}

/* An item that runs a job of its own (the pool is taken: all in this thread). */
static void add_nested(void *ctx, int64_t lo, int64_t hi) {
    Caller inner = {0};
    for (int64_t i = lo; i < hi; i++) {
        atomic_store(&inner.sum, 0);
        netrt_parallel(add_own, &inner, 10);
        if (atomic_load(&inner.sum) != 55) ((Caller *)ctx)->nested++;
    }
}

static void *call_many(void *arg) {
    Caller *c = arg;
    for (int r = 0; r < 3000; r++) {
        int64_t n = 1 + r % 64;
        atomic_store(&c->sum, 0);
        netrt_parallel(add_own, c, n);
        if (atomic_load(&c->sum) != n * (n + 1) / 2) c->wrong++;
    }
    netrt_parallel(add_nested, c, 8);
    return NULL;
}

/* Three threads at once, each with its own jobs, the pool at 2 threads. */
START_TEST(concurrent_callers) {
    netrt_set_threads(2);
    Caller cs[3] = {0};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, call_many, &cs[i]), 0);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(cs[i].wrong, 0);
        ck_assert_int_eq(cs[i].nested, 0);
    }
    netrt_set_threads(0);
}
END_TEST

START_TEST(thread_count) {
    netrt_set_threads(0);
    ck_assert_int_ge(netrt_threads(), 1);
    ck_assert_int_eq(netrt_threads(), netrt_cores() < NETRT_MAX_THREADS ? netrt_cores() : NETRT_MAX_THREADS);
    netrt_set_threads(3);
    ck_assert_int_eq(netrt_threads(), 3);
    char err[256];
    ck_assert_int_eq(netrt_opt_threads("--threads", "2", err, sizeof err), 0);
    ck_assert_int_eq(netrt_threads(), 2);
    ck_assert_int_eq(netrt_opt_threads("--threads", "0", err, sizeof err), -1);
    ck_assert_str_eq(err, "--threads needs a positive integer, not '0'");
    ck_assert_int_eq(netrt_opt_threads("--threads", "x", err, sizeof err), -1);
    ck_assert_int_eq(netrt_opt_threads("--threads", "100000", err, sizeof err), -1);
    ck_assert_str_eq(err, "--threads: at most 256, not 100000");
    ck_assert_int_eq(netrt_threads(), 2);
    netrt_set_threads(0);
}
END_TEST

static Suite *threads_suite(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_item_once);
    tcase_add_test(tc, many_small_jobs);
    tcase_add_test(tc, concurrent_callers);
    tcase_add_test(tc, thread_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(threads_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
