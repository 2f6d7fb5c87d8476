/* libnetrt_mpi: the MPI layer of data-parallel training (netc build --train
 * --mpi links it; docs/distributed.md).  The only file of netc that calls
 * MPI: it fills a netrt_comm with MPI_COMM_WORLD's collectives and runs the
 * trainer (netrt_train_main_comm), which does the rest.
 *
 * The same program runs without mpirun, as one process (MPI's singleton
 * start): rank 0 of 1, where the trainer calls nothing of this file.
 *
 * Only the main thread calls MPI (the pool's threads run kernels, the
 * prefetching thread reads data), so MPI_THREAD_FUNNELED is enough.  The
 * gradient sums are MPI_Iallreduce; Open MPI advances a started one only
 * inside MPI calls, which is why the trainer calls progress (MPI_Testall)
 * each time a gradient is finished. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "netrt.h"

typedef struct {
    MPI_Request *req;
    int nreq, cap;
} mpi_state;

/* An MPI call that failed: MPI_COMM_WORLD's default handler aborts before
 * returning, so this only guards a handler someone changed. */
static void check(netrt_comm *c, int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, msg, &n);
    fprintf(stderr, "rank %d of %d: error: %s failed: %s\n", c->rank, c->size, what, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Sums of more than INT_MAX floats go as several (MPI counts are ints). */
#define CHUNK ((int64_t)1 << 30)

static void sum_start(netrt_comm *c, float *buf, int64_t n) {
    mpi_state *s = c->ctx;
    for (int64_t o = 0; o < n; o += CHUNK) {
        if (s->nreq == s->cap) {
            int cap = s->cap ? 2 * s->cap : 16;
            MPI_Request *r = realloc(s->req, (size_t)cap * sizeof *r);
            if (!r) {
                fprintf(stderr, "rank %d of %d: error: out of memory\n", c->rank, c->size);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            s->req = r, s->cap = cap;
        }
        int count = (int)(n - o < CHUNK ? n - o : CHUNK);
        check(c, MPI_Iallreduce(MPI_IN_PLACE, buf + o, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &s->req[s->nreq++]),
              "MPI_Iallreduce");
    }
}

static void progress(netrt_comm *c) {
    mpi_state *s = c->ctx;
    int done;
    if (s->nreq) check(c, MPI_Testall(s->nreq, s->req, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
}

static void wait_all(netrt_comm *c) {
    mpi_state *s = c->ctx;
    if (s->nreq) check(c, MPI_Waitall(s->nreq, s->req, MPI_STATUSES_IGNORE), "MPI_Waitall");
    s->nreq = 0;
}

static void sum_f64(netrt_comm *c, double *buf, int n) {
    check(c, MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
}

static void bcast(netrt_comm *c, void *buf, int64_t bytes) {
    for (int64_t o = 0; o < bytes; o += CHUNK) {
        int count = (int)(bytes - o < CHUNK ? bytes - o : CHUNK);
        check(c, MPI_Bcast((char *)buf + o, count, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    }
}

static void gather_u64(netrt_comm *c, const uint64_t *mine, int n, uint64_t *all) {
    check(c, MPI_Allgather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
}

static void comm_abort(netrt_comm *c, int status) {
    (void)c;
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    exit(status); /* not reached */
}

int netrt_mpi_train_main(int argc, char **argv, const netrt_train_model *m) {
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "%s: error: MPI_Init_thread failed\n", argc > 0 ? argv[0] : "trainer");
        return 1;
    }
    mpi_state s = {0};
    netrt_comm c = {.ctx = &s, .sum_start = sum_start, .progress = progress, .wait_all = wait_all,
                    .sum_f64 = sum_f64, .bcast = bcast, .gather_u64 = gather_u64, .abort = comm_abort};
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c.size);
    int rc = netrt_train_main_comm(argc, argv, m, &c);
    free(s.req);
    MPI_Finalize();
    return rc;
}
