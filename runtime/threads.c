/* The thread pool of emitted programs: netrt_parallel runs a kernel's work
 * items [0, n) split into one contiguous part per thread.
 *
 * Same bits at any thread count.  A kernel hands the pool items that are
 * independent (each writes its own outputs, and computes each of them alone
 * in a fixed order: a row of output channels of a conv, say), so how the
 * items are shared out changes which thread computes an output, never how.
 * The parts are static, [n * i / T, n * (i + 1) / T) for thread i of T: no
 * work stealing, nothing that depends on timing.
 *
 * Latency.  At batch 1 a layer can take 20 microseconds, so waking a worker
 * through the kernel for each would cost as much as the layer.  Workers spin
 * on the job counter for a while (NETRT_SPIN rounds of the CPU's pause) after
 * each job, and only then sleep on a condition variable; the caller runs part
 * 0 itself and spins (then yields) until the others are done.  On a machine
 * with more runnable threads than cores the spinning costs at most the spin
 * time per job; the yield keeps a waiting caller from starving the worker it
 * waits for.
 *
 * Why not OpenMP: emitted programs are built by clang by default, whose
 * OpenMP runtime (libomp, a separate Debian package) is not gcc's (libgomp),
 * and libnetrt may be built by either; two OpenMP runtimes in one process is
 * unsupported.  What the kernels need is one static parallel-for, which is
 * this file.
 *
 * The pool starts its threads at the first job that has more than one part,
 * and stops and joins them at exit (atexit) or when the thread count is
 * lowered.
 *
 * Concurrent callers (instances of a library run from several threads, or a
 * work item that calls in).  The pool runs one job at a time; the caller that
 * takes it (one atomic exchange, no system call) runs its job as above, and
 * a caller that finds it taken computes all its items itself, in its own
 * thread: the same bits, since the items are independent, only without the
 * pool's help for that layer. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "netrt.h"

enum { NETRT_SPIN = 2048 }; /* rounds of pause, about 100 ns each on Zen 5: some 200 us */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static struct {
    atomic_int threads;      /* what netrt_set_threads asked for (0: all cores) */
    atomic_bool busy;        /* a caller owns the pool (its job runs) */
    int started;             /* worker threads running, besides the caller */
    pthread_t tid[NETRT_MAX_THREADS];
    pthread_mutex_t mu;      /* with cv: where idle workers sleep */
    pthread_cond_t cv;
    atomic_uint gen;         /* bumped once per job */
    atomic_int pending;      /* workers that have not finished the current job */
    atomic_int sleepers;     /* workers blocked, or about to block, on cv */
    atomic_bool stop;
    netrt_task fn;           /* the current job, written before gen is bumped */
    void *ctx;
    int64_t n;
    int parts;
    unsigned start_gen;      /* gen when the workers were started */
    bool exit_hook;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

int netrt_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

int netrt_threads(void) {
    int t = atomic_load_explicit(&pool.threads, memory_order_relaxed);
    if (t <= 0) t = netrt_cores();
    return t < NETRT_MAX_THREADS ? t : NETRT_MAX_THREADS;
}

/* Part i of T of [0, n). */
static void run_part(int i) {
    int64_t lo = pool.n * i / pool.parts, hi = pool.n * (i + 1) / pool.parts;
    if (lo < hi) pool.fn(pool.ctx, lo, hi);
}

/* Worker `self` (1 .. started): waits for a job, runs its part, repeats. */
static void *worker(void *arg) {
    int self = (int)(intptr_t)arg;
    unsigned seen = pool.start_gen; /* the caller may have published a job since */
    for (;;) {
        unsigned g;
        int spin = 0;
        while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen && spin < NETRT_SPIN) {
            cpu_relax();
            spin++;
        }
        if (g == seen) {
            /* Sleep.  The caller bumps gen before it reads sleepers, and we
             * count ourselves before we read gen again under the lock, so
             * either it sees us and broadcasts, or we see its new job. */
            atomic_fetch_add(&pool.sleepers, 1);
            pthread_mutex_lock(&pool.mu);
            while ((g = atomic_load(&pool.gen)) == seen && !atomic_load(&pool.stop))
                pthread_cond_wait(&pool.cv, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
            atomic_fetch_sub(&pool.sleepers, 1);
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = g;
        if (self < pool.parts) run_part(self);
        /* every worker reports every job, with a part or not, so that none
         * is still reading this job's fields when the next one is set */
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
    }
}

static void stop_workers(void) {
    if (pool.started == 0) return;
    atomic_store(&pool.stop, true);
    pthread_mutex_lock(&pool.mu);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 1; i <= pool.started; i++) pthread_join(pool.tid[i], NULL);
    pool.started = 0;
    atomic_store(&pool.stop, false);
}

/* Starts workers 1 .. want - 1; fewer if the system refuses threads (the
 * jobs then have fewer parts: the same bits, more slowly). */
static void start_workers(int want) {
    if (!pool.exit_hook) {
        atexit(stop_workers);
        pool.exit_hook = true;
    }
    pool.start_gen = atomic_load(&pool.gen);
    while (pool.started + 1 < want) {
        int i = pool.started + 1;
        if (pthread_create(&pool.tid[i], NULL, worker, (void *)(intptr_t)i) != 0) break;
        pool.started = i;
    }
}

/* Takes the pool, waiting for the job running (if any) to end. */
static void take_pool(void) {
    while (atomic_exchange_explicit(&pool.busy, true, memory_order_acquire)) sched_yield();
}

static void release_pool(void) { atomic_store_explicit(&pool.busy, false, memory_order_release); }

void netrt_set_threads(int n) {
    atomic_store_explicit(&pool.threads, n > 0 ? n : 0, memory_order_relaxed);
    take_pool(); /* not while another thread's job runs on the workers */
    if (pool.started + 1 > netrt_threads()) stop_workers();
    release_pool();
}

void netrt_parallel(netrt_task fn, void *ctx, int64_t n) {
    if (n <= 0) return;
    int t = netrt_threads();
    if (t > n) t = (int)n;
    /* one thread's worth, or the pool is another caller's: all here */
    if (t <= 1 || atomic_exchange_explicit(&pool.busy, true, memory_order_acquire)) {
        fn(ctx, 0, n);
        return;
    }
    if (pool.started + 1 < t) start_workers(t);
    if (t > pool.started + 1) t = pool.started + 1;
    if (t <= 1) {
        release_pool();
        fn(ctx, 0, n);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.parts = t;
    atomic_store_explicit(&pool.pending, pool.started, memory_order_relaxed);
    atomic_fetch_add(&pool.gen, 1); /* publishes the job (sequentially consistent) */
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    run_part(0);
    for (int spin = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; spin++) {
        if (spin < NETRT_SPIN)
            cpu_relax();
        else
            sched_yield();
    }
    release_pool();
}

/* ---- per-thread workspace ---------------------------------------------------- */

/* Each thread's buffer, in thread-local storage.  A worker's is freed by the
 * key's destructor when the pool joins it; the main thread's, whose
 * destructors do not run at exit, by an exit hook. */
static _Thread_local struct {
    void *p;
    size_t bytes;
} own;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_exit(void) {
    free(own.p);
    own.p = NULL;
    own.bytes = 0;
}

static void scratch_init(void) {
    pthread_key_create(&scratch_key, free);
    atexit(scratch_exit);
}

void *netrt_scratch(size_t bytes) {
    if (own.p && own.bytes >= bytes) return own.p;
    pthread_once(&scratch_once, scratch_init);
    size_t n = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    if (!p) {
        /* No kernel can return an error: end here (_exit, since exit would
         * join the pool's workers, this thread perhaps among them). */
        fprintf(stderr, "netrt: out of memory for a kernel's workspace of %zu bytes\n", bytes);
        _exit(1);
    }
    free(own.p);
    own.p = p;
    own.bytes = n;
    pthread_setspecific(scratch_key, p);
    return p;
}
