/* One background thread that runs one job at a time beside the caller: the
 * trainer prepares the next batch with it (gathering the shuffled samples,
 * converting them to float) while the model computes on the current one
 * (train.c).
 *
 * netrt_bg_post hands the thread a job and returns at once; netrt_bg_wait
 * returns when the job is done.  The caller owns the job's buffers and must
 * not touch them between the two.  Not for the kernels: their work is split
 * by netrt_parallel (threads.c). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "netrt.h"

struct netrt_bg {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a job is posted, done, or the thread is to stop */
    void (*fn)(void *);
    void *arg;
    bool busy, quit;
};

static void *bg_main(void *p) {
    netrt_bg *b = p;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->busy && !b->quit) pthread_cond_wait(&b->cv, &b->mu);
        if (!b->busy) break; /* quit, and nothing left to do */
        pthread_mutex_unlock(&b->mu);
        b->fn(b->arg);
        pthread_mutex_lock(&b->mu);
        b->busy = false;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

netrt_bg *netrt_bg_new(void) {
    netrt_bg *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    if (pthread_create(&b->tid, NULL, bg_main, b) != 0) {
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        free(b);
        return NULL;
    }
    return b;
}

void netrt_bg_wait(netrt_bg *b) {
    pthread_mutex_lock(&b->mu);
    while (b->busy) pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

void netrt_bg_post(netrt_bg *b, void (*fn)(void *), void *arg) {
    netrt_bg_wait(b);
    pthread_mutex_lock(&b->mu);
    b->fn = fn;
    b->arg = arg;
    b->busy = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void netrt_bg_free(netrt_bg *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->quit = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->tid, NULL); /* after the job it may be running */
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
