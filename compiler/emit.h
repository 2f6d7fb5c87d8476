/* The C emitter: a verified graph becomes one C file and its header.
 *
 * The C file holds one static function per node (shapes as constants, a
 * comment naming the .net line it came from), a prepare function for the
 * F_INIT nodes, a run function calling the nodes in order, and the
 * netrt_model descriptor `<net>_model` that libnetrt's netrt_main drives.
 * The header declares the model's API for users who link it themselves.
 *
 * A training graph (train_of(g), train.h) also gets <net>_grad (the PHASE_GRAD nodes),
 * <net>_update (PHASE_UPDATE), the active batch (every kernel loops over
 * nb_active <= N samples), zeroed training state, SGD's hyperparameters, and
 * the netrt_train_model descriptor `<net>_train` that netrt_train_main and
 * netrt_gradcheck_main drive; <net>_run is then the PHASE_RUN nodes, and the
 * labels (its record's) are not among the model's inputs.
 *
 * Every node's call is followed by `if (check_numerics && netrt_check_finite(
 * ...)) return;` for what the node wrote (the program's --check-numerics sets
 * the flag through <net>_model.check_numerics): the first NaN or Inf names
 * the op, the node and its .net line. */
#ifndef NETC_EMIT_H
#define NETC_EMIT_H

#include <stdbool.h>
#include <stdio.h>

#include "../runtime/netrt.h"
#include "ir.h"

/* Which main() to append, if any. */
typedef enum {
    EMIT_MAIN_NONE,
    EMIT_MAIN_INFER,     /* netrt_main(&<net>_model): an inference program */
    EMIT_MAIN_TRAIN,     /* netrt_train_main(&<net>_train): a training program (--mpi: netrt_mpi_train_main) */
    EMIT_MAIN_GRADCHECK, /* netrt_gradcheck_main(&<net>_train): the gradient check */
} EmitMain;

typedef struct EmitOptions {
    const char *header_name;     /* how the .c includes the header, e.g. "lenet5.h" */
    const netrt_st_file *embed;  /* weights to embed as constant arrays, or NULL */
    const char *embed_path;      /* the embedded file's name, for messages */
    EmitMain main;               /* append a main() */
    bool no_plan;                /* a region of the arena per value, no sharing (netc --no-plan) */
    bool f64;                    /* double precision (netc gradcheck; kernel.h): a training graph, generic target */
    /* data-parallel training (netc build --train --mpi, docs/distributed.md):
     * grad() reports each finished gradient (netrt_dist_grad_ready), the
     * batchnorm kernels pass their sums to netrt_dist_sync_sums, and main
     * is netrt_mpi_train_main */
    bool mpi;
} EmitOptions;

/* Returns false after reporting an error (an embedded weights file that lacks
 * a tensor or holds one of the wrong shape). */
bool emit_c(Graph *g, const EmitOptions *o, FILE *c, FILE *h);

/* The C identifier prefix for a net ("lenet5", "resnet18"). Arena-owned. */
const char *emit_prefix(Graph *g);

#endif
