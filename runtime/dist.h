/* Data-parallel training inside libnetrt (dist.c): what the trainer does
 * with a netrt_comm of more than one rank.  Internal to the runtime.
 *
 * A step on every rank: netrt_dist_begin_step (per-rank batchnorm: rank 0's
 * running statistics to every rank, as DistributedDataParallel broadcasts
 * its buffers before each forward), grad() (whose netrt_dist_grad_ready
 * calls pack the finished gradients into buckets and start summing each
 * bucket once full, while the backward pass goes on), netrt_dist_end_step
 * (the last bucket, the wait, the sums divided by the ranks: every rank now
 * holds the mean gradient), then the same update on every rank. */
#ifndef NETRT_DIST_H
#define NETRT_DIST_H

#include "netrt.h"

typedef struct netrt_dist netrt_dist;

/* The state of data-parallel training of m over c (c->size > 1), with
 * buckets of bucket_mb megabytes (at least one gradient each) and, if
 * sync_bn, batchnorm statistics over every rank.  NULL with a message on
 * failure.  The hooks (netrt_dist_grad_ready, netrt_dist_sync_sums) act on
 * it from here to netrt_dist_free. */
netrt_dist *netrt_dist_new(netrt_comm *c, const netrt_train_model *m, double bucket_mb, bool sync_bn, char *err,
                           size_t errlen);
void netrt_dist_free(netrt_dist *d);

/* Rank 0's parameters, running statistics and optimizer moments to every
 * rank (the start of a run, after initializing, loading or resuming). */
void netrt_dist_bcast_params(netrt_dist *d);
void netrt_dist_begin_step(netrt_dist *d);
void netrt_dist_end_step(netrt_dist *d);

/* --verify-replicas: compares a checksum of every trained parameter and its
 * moments across the ranks; -1 with a message naming the first rank and
 * tensor that differ from rank 0's (every rank finds the same). */
int netrt_dist_verify(netrt_dist *d, int64_t step, char *err, size_t errlen);

/* Sums n doubles in place over the ranks; rank 0's value of v to every rank. */
void netrt_dist_sum(netrt_dist *d, double *v, int n);
int netrt_dist_bcast_int(netrt_dist *d, int v);

/* What a step sends: the gradient floats summed (each rank sends and
 * receives about twice that many in a ring allreduce) and the buckets. */
int64_t netrt_dist_grad_floats(const netrt_dist *d);
int netrt_dist_buckets(const netrt_dist *d);
/* Seconds spent so far waiting for the gradient sums after the backward
 * pass: the communication it did not hide. */
double netrt_dist_waited(const netrt_dist *d);
/* Whether the model has running statistics (batchnorm's). */
bool netrt_dist_has_batchnorm(const netrt_dist *d);

#endif
