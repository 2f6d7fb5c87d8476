/* The graph IR: typed tensor values with static shapes, and the nodes (ops)
 * that produce them.
 *
 * A Graph owns one arena; every Value, Node, name and array reachable from
 * it is allocated there and freed by graph_free.
 *
 * Values:
 *   V_INPUT    a net input, shape [N, ...] with N the compiled batch size;
 *   V_PARAM    a parameter read from the weights file, named as PyTorch's
 *              state_dict key ("layer1.0.conv1.weight"), shape without batch;
 *   V_DERIVED  computed once from parameters by an F_INIT node (folded
 *              batchnorm weights) when the parameters are loaded;
 *   V_ACT      an activation produced by a per-inference node, shape [N, ...];
 *   V_STATE    training state kept across steps (SGD velocity), zero at start,
 *              shaped like its parameter.
 *
 * Nodes are kept in g->nodes in a topological order; a node with dead set
 * has been removed by a pass and is skipped by everything (graph_compact
 * drops them).  Shapes always include the batch dimension for V_INPUT and
 * V_ACT values: a conv output is [N, C, H, W], a linear output [N, D].
 */
#ifndef NETC_IR_H
#define NETC_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../support/source.h"
#include "../support/arena.h"
#include "attrs.h"
#include "ops.h"
#include "target.h"

#define IR_MAX_IN 8
#define IR_MAX_OUT 4

typedef struct Shape {
    int rank;
    int64_t d[IR_MAX_RANK];
} Shape;

typedef enum { V_INPUT, V_PARAM, V_DERIVED, V_ACT, V_STATE } ValueKind;

/* When a node runs (F_INIT nodes run in prepare, whatever their phase). */
typedef enum {
    PHASE_RUN,    /* inference: inputs -> outputs (eval-mode batchnorm) */
    PHASE_GRAD,   /* training forward, loss and backward: fills the gradients */
    PHASE_UPDATE, /* the optimizer step, after PHASE_GRAD */
} Phase;

/* How `netc init` fills a parameter. */
typedef enum {
    INIT_NONE,    /* not a learnable parameter's choice (derived values) */
    INIT_ZERO,
    INIT_ONE,
    INIT_XAVIER,  /* Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
    INIT_HE,      /* He (Kaiming) normal for ReLU: N(0, 2 / fan_in) */
    /* Initialization (issue 12): torch.nn.init's schemes, chosen in the
     * language (`init = ...`), with their arguments in Value's init_a and
     * init_b as runtime/netrt.h's netrt_init_scheme says. */
    INIT_CONSTANT, INIT_UNIFORM, INIT_NORMAL, INIT_XAVIER_UNIFORM, INIT_XAVIER_NORMAL,
    INIT_KAIMING_UNIFORM, INIT_KAIMING_NORMAL, INIT_LECUN_NORMAL, INIT_ORTHOGONAL,
} ParamInit;

typedef struct Node Node;

typedef struct Value {
    int id;
    ValueKind kind;
    Shape shape;
    const char *name; /* inputs and params: their external name; others: a readable name */
    Node *def;        /* producing node (NULL for inputs and params) */
    int out_index;    /* which output of def */
    ParamInit init;   /* V_PARAM only */
    Span span;        /* where it was declared or computed */
    /* Storage layout (the layout pass): 0 for plain NCHW (row-major in its
     * shape); V > 0 for a [N, C, H, W] activation stored blocked, NCHW[V]c:
     * [N][ceil(C / V)][H][W][V], channel c of pixel (h, w) at lane c % V of
     * block c / V; the lanes past C in the last block hold anything, and no
     * kernel reads them as channels.  The shape stays the logical one. */
    int cblock;
    /* Initialization (issue 12), V_PARAM only: the scheme's arguments, and
     * whether the .net chose the scheme (then netc's own choice, He before
     * a ReLU, leaves it alone). */
    double init_a, init_b;
    bool init_given;
} Value;

/* Op attributes: Attrs, a union of a struct per kind of op (attrs.h). */

struct Node {
    int id;
    Op op;
    const char *name; /* instance path: "layer1.0.conv1", "relu3" */
    Value *in[IR_MAX_IN];
    int nin;
    Value *out[IR_MAX_OUT];
    int nout;
    Attrs a;
    Span span; /* the call in the .net source */
    Phase phase;
    bool dead;
};

/* The training record (train.h): labels, loss, training logits, and each
 * trained parameter's gradient and velocity. */
typedef struct Training Training;

typedef struct GraphOutput {
    const char *name;
    Value *v;
    Span span;
} GraphOutput;

typedef struct Graph {
    Arena *arena;
    const Source *src; /* not owned */
    const char *name;  /* the net's name */
    int batch;
    Value **values;
    int nvalues, cap_values;
    Node **nodes;
    int nnodes, cap_nodes;
    Value **inputs;
    int ninputs, cap_inputs;
    GraphOutput *outputs;
    int noutputs, cap_outputs;
    Phase phase;          /* given to new nodes */
    const Target *target; /* the CPU it is compiled for (target.h); generic unless the driver says */
    /* Training (train.h): NULL for an inference graph nobody asked to train;
     * else the request (before autodiff) and, once autodiff has run, the
     * labels, loss and per-parameter gradients it made (train_of(g) is then
     * non-NULL).  Allocated in the arena. */
    Training *training;
} Graph;

Graph *graph_new(const Source *src, const char *name, int batch);
void graph_free(Graph *g);

Value *graph_add_input(Graph *g, const char *name, Shape s, Span sp);
Value *graph_add_param(Graph *g, const char *name, Shape s, ParamInit init, Span sp);
/* A node with its output values (kind V_ACT, or V_DERIVED for F_INIT ops),
 * shapes from shape_infer.  Returns NULL after reporting an error (at sp)
 * when the inputs' shapes do not fit the op. */
Node *graph_add_node(Graph *g, Op op, const char *name, Value **in, int nin, const Attrs *a, Span sp);
void graph_add_output(Graph *g, const char *name, Value *v, Span sp);

/* Parameters (V_PARAM values) in creation order; the array is arena-owned. */
int graph_params(Graph *g, Value ***out);
/* Live nodes that read v. */
int graph_uses(Graph *g, Value *v, Node **out, int max);
/* The one live node that reads v, and reads it once, if v is not one of the
 * net's outputs; else NULL (no reader, several, or v + v).  What the fusion
 * passes ask before they fold v's reader into v's writer. */
Node *graph_only_reader(Graph *g, Value *v);
/* Replaces every use of `from` (node inputs and graph outputs) by `to`. */
void graph_replace_uses(Graph *g, Value *from, Value *to);
/* Moves n (already in g->nodes) to just before `pos`. */
void graph_move_before(Graph *g, Node *n, Node *pos);
/* Drops dead nodes, and values that nothing references (parameters always
 * stay: they are the weights file's contract; so do the values the training
 * record names); renumbers ids. */
void graph_compact(Graph *g);

/* Checks the invariants above (topological order, arity, shapes agree with
 * shape_infer, no use of dead values).  On failure prints why and returns false. */
bool graph_verify(Graph *g, const char *after_pass);
/* Text form, one line per value and node, for `netc dump`. */
void graph_dump(Graph *g, FILE *f);
/* The graph in Graphviz's DOT language, for `netc dot` (dot.c). */
void graph_dot(Graph *g, FILE *f);

/* New nodes get this phase (graph_add_node); PHASE_RUN unless changed. */
void graph_set_phase(Graph *g, Phase p);
/* A value of any kind that is not a net input (graph_add_input) nor a node
 * output: training state (V_STATE), the labels (a V_INPUT outside g->inputs). */
Value *graph_add_value(Graph *g, ValueKind k, const char *name, Shape s, Span sp);

/* Shape inference (shape.c), one rule per op.  Fills the shapes of n's
 * outputs from its inputs and attributes.  On a mismatch, reports an error
 * at n->span naming the op, the operand and both shapes, and returns false. */
bool shape_infer(Graph *g, Node *n);

/* The most elements one tensor may have, the batch included: the target's
 * limit, under which every index within a tensor fits an int in the emitted
 * C.  A larger input, activation or parameter is an error (shape.c). */
#define IR_MAX_ELEMENTS INT32_MAX
/* If s has more than IR_MAX_ELEMENTS elements, reports "<what> [...] has N
 * elements ..." at sp (the shape printed per sample when batch
 * > 0, which is then its leading dimension) and returns false. */
bool shape_check_size(const Shape *s, int64_t batch, Span sp, const char *what);

/* The floats v occupies: its shape's elements, or for a blocked value the
 * padded channel blocks. */
static inline int64_t value_numel(const Value *v) {
    const Shape *s = &v->shape;
    if (!v->cblock) {
        int64_t n = 1;
        for (int i = 0; i < s->rank; i++) n *= s->d[i];
        return n;
    }
    int64_t blocks = (s->d[1] + v->cblock - 1) / v->cblock;
    return s->d[0] * blocks * v->cblock * s->d[2] * s->d[3];
}

static inline int64_t shape_numel(const Shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}
/* Formats "[1, 28, 28]" into buf. */
/* The shape of one sample of v, as the .net source writes it: "[16, 5, 5]"
 * for an activation or input [N, 16, 5, 5]; a parameter's whole shape. */
const char *value_sample_str(const Value *v, char *buf, size_t n);
const char *shape_str(const Shape *s, char *buf, size_t n);
bool shape_eq(const Shape *a, const Shape *b);
Shape shape_make(int rank, const int64_t *d);

#endif
