/* Ops: the enum, names and flags generated from ops.def. */
#ifndef NETC_OPS_H
#define NETC_OPS_H

#include <stdbool.h>

enum {
    F_PARAMS = 1 << 0,      /* has learnable parameters among its inputs */
    F_ELEMENTWISE = 1 << 1, /* output element i depends on input element i only */
    F_RESHAPE = 1 << 2,     /* output is the input's data under another shape */
    F_INIT = 1 << 3,        /* runs once when parameters are loaded, not per inference */
    F_SIDE_EFFECT = 1 << 4, /* writes an input in place (running statistics, SGD): never dead */
};

typedef enum {
#define OP(e, name, mini, maxi, nout, flags) OP_##e,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

typedef struct OpInfo {
    const char *name;
    int min_inputs, max_inputs, outputs;
    unsigned flags;
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

static inline const char *op_name(Op op) { return op_info[op].name; }
static inline bool op_has(Op op, unsigned flag) { return (op_info[op].flags & flag) != 0; }

#endif
