/* The op registry.
 *
 * Each op is one row of ops.def (its enum, name, arity and flags) and one
 * definition, `const OpRules op_rules_<ENUM>`, in the file of its family
 * under compiler/ops/: everything the compiler knows about the op, from the
 * .net builtins that make it to the C that computes it and its gradient.
 * ops.c joins the two into op_info[], so an op whose definition is missing
 * does not link; tests/unit/test_registry.c walks the registry and fails on
 * a rule that is absent without a statement of why (the no_* strings).
 *
 * Owner: op_info[] and everything it points to is static and const. */
#ifndef NETC_OPS_H
#define NETC_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
    F_PARAMS = 1 << 0,      /* has learnable parameters among its inputs */
    F_ELEMENTWISE = 1 << 1, /* output element i depends on input element i only */
    F_RESHAPE = 1 << 2,     /* output is the input's data under another shape */
    F_INIT = 1 << 3,        /* runs once when parameters are loaded, not per inference */
    F_SIDE_EFFECT = 1 << 4, /* writes an input in place (running statistics, SGD): never dead */
};

/* OP_NONE (0) is no op: a zeroed Op field means "none". */
typedef enum {
    OP_NONE,
#define OP(e, name, mini, maxi, nout, flags) OP_##e,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

struct Graph;
struct Node;
struct Value;
struct Builtin;
struct Kernel;
struct GradCtx;

/* An op's rules.  Every pointer is required unless the matching no_* string
 * says why the op has none; the registry test holds every op to that. */
typedef struct OpRules {
    /* The .net builtins that make this op (build.h), ended by one with a NULL
     * name: conv and dwconv both make a CONV.  NULL for ops no source writes,
     * with no_build saying what makes them (autodiff, a pass). */
    const struct Builtin *builtins;
    const char *no_build;

    /* Shape inference: checks the inputs' shapes and the attributes and sets
     * the outputs' shapes, or reports an error at n->span and returns false.
     * Never absent. */
    bool (*shape)(struct Graph *g, struct Node *n);

    /* Whether the emit rule can emit n (the shapes its loops assume): NULL
     * if so, else why not, an internal error.  Runs on every node before any
     * C is written.  Absent: no assumption beyond the shape rule's (no_check). */
    const char *(*check)(const struct Graph *g, const struct Node *n);
    const char *no_check;

    /* Writes the static C function computing n (kernel.h).  Never absent. */
    void (*emit)(struct Kernel *k);

    /* Whether output i has the batch as its first dimension, given which
     * values do (batched[value id]): the training emitter runs such loops
     * over the active batch.  Never absent (op_batched_like_input0 is the
     * common rule). */
    bool (*batched)(const struct Node *n, int i, const bool *batched);

    /* Inputs written in place, bit i for input i (batchnorm_train's running
     * statistics, sgd_update's parameter and velocity); 0 for most ops. */
    unsigned written_inputs;

    /* How the emitted --check-numerics report names each output when there
     * are several ("the batch mean"); NULL for one output. */
    const char *const *output_names;

    /* Prints the attributes, each " name=value", for `netc dump`.  Absent
     * for an op without attributes (no_dump). */
    void (*dump)(const struct Node *n, FILE *f);
    const char *no_dump;

    /* Multiply-accumulates per sample of the output, for `netc stats`.
     * Absent where the op does no multiply-accumulate worth counting (no_macs). */
    int64_t (*macs)(const struct Node *n);
    const char *no_macs;

    /* Reverse mode: adds the nodes computing the gradients of n's inputs
     * from dy, the gradient of n's output (grad.h).  n is the training-mode
     * node.  Absent with no_grad saying why (a training build rejects a net
     * using such an op at its line). */
    void (*grad)(struct GradCtx *c, struct Node *n, struct Value *dy);
    const char *no_grad;

    /* The op a training build's forward copy uses instead (batchnorm trains
     * as batchnorm_train, with batch statistics); OP_NONE: the op itself. */
    int train_as;

    /* Its kernel takes blocked (NCHW[V]c, Value.cblock) inputs and outputs
     * as well as plain ones: elementwise ops treat storage as a flat array;
     * conv reads either layout and writes either.  The layout pass gives
     * blocked values only to such ops. */
    bool blocked_ok;
    /* In a training build, its training copy and its gradient rule's ops
     * take blocked values as its kernel does, and give each gradient the
     * layout of its value: the training layout pass (layout_train) gives
     * blocked values only to such ops (relu, add, maxpool, batchnorm,
     * global_avgpool, the blocked conv). */
    bool blocked_train;

    /* Its output is input 0's data as it is, under the output's shape
     * (flatten, reshape, dropout at inference): the memory planner may make
     * the output a view, sharing the input's region, and the emitter then
     * writes no code for the node (plan.h).  The emit rule (a copy) serves
     * where it does not: training graphs, --no-plan, another layout. */
    bool view;

    /* Its kernel can write its output over an input of the output's shape
     * and layout, when the memory planner finds that input dead after the
     * node (Kernel.inplace, plan.h): the elementwise ops and batchnorm. */
    bool inplace_ok;

    /* The source ops a fusion pass folded into n, in the order they apply
     * ("conv", "add", "relu"), at most max of them, and how many: `netc dot`
     * draws a node computing several as a cluster.  Absent for ops that
     * compute one (a batchnorm folded into a conv's weights is seen apart,
     * through the init-time node that folds it). */
    int (*fused)(const struct Node *n, const char **parts, int max);
} OpRules;

/* For fused rules: appends part s to parts[0 .. max) at n; returns n + 1
 * (the count, which may pass max: the caller keeps the first max). */
static inline int fused_part(const char **parts, int n, int max, const char *s) {
    if (n < max) parts[n] = s;
    return n + 1;
}

/* An op's no_grad while it lacks a gradient rule (a gap, not a reason):
 * autodiff's message says "no gradient rule yet" for it, and quotes any
 * other no_grad as the reason the op has none. */
#define NO_GRAD_YET "no gradient rule yet: a training build rejects it at its line"

typedef struct OpInfo {
    const char *name;
    int min_inputs, max_inputs, outputs;
    unsigned flags;
    const OpRules *rules;
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

static inline const char *op_name(Op op) { return op_info[op].name; }
static inline bool op_has(Op op, unsigned flag) { return (op_info[op].flags & flag) != 0; }
static inline const OpRules *op_rules(Op op) { return op_info[op].rules; }

/* The common batch rule: output i is batched when input 0 is. */
bool op_batched_like_input0(const struct Node *n, int i, const bool *batched);
/* For outputs that never have a batch dimension (weight gradients, the loss). */
bool op_batched_never(const struct Node *n, int i, const bool *batched);

/* The input channels one output block of v channels of a conv_blocked reads
 * (k outputs, c inputs, `groups` groups): c for one group, 0 when a grouped
 * conv's groups do not fall on its blocks (compiler/ops/blocked.c). */
int64_t conv_blocked_span(int64_t k, int64_t c, int groups, int v);
/* Whether a conv_blocked node's kernel takes its input channels in tiles
 * (compiler/ops/blocked.c): its sums then go in another order than
 * blocked_conv_nest's, which fuse_bottleneck's stages run. */
bool conv_blocked_tiled(const struct Node *n);

#endif
