/* The training record: what makes a graph a training graph, kept beside the
 * IR rather than in its Values and Graph.
 *
 * The IR (ir.h) knows nodes, values and phases; which value is the loss,
 * which the labels, and which values are the gradient and the optimizer's
 * moments of which parameter is training's business, and lives here.  A Graph holds at
 * most a pointer to one record, g->training:
 *
 *   NULL       an inference graph, and nobody asked for anything else;
 *   requested  train_request() made it before autodiff, to ask for input
 *              gradients (the driver, for netc gradcheck) or to freeze
 *              parameters (freeze_request: the net's freeze statement and
 *              netc build --freeze, for training builds only); the
 *              graph is still an inference graph: train_of() is NULL;
 *   built      the autodiff pass (or a test building a training graph by
 *              hand, through train_begin) filled the result; train_of()
 *              returns it.  The emitter, the planner, dce, graph_compact
 *              and the dump read it; nothing else writes it.
 *
 * Ownership: the record and its arrays are allocated from the graph's arena
 * and freed with it by graph_free; nobody frees them alone.  Every Value it
 * points at belongs to the graph.  It holds Value pointers, never value ids,
 * so graph_compact's renumbering leaves it valid; graph_compact and dce keep
 * the values it names that nothing else keeps (labels, loss, training logits,
 * input gradients); parameters and moments (V_STATE) always stay, and a
 * parameter's gradient is read by its optim_update, which is never dead.  The
 * verifier checks that every value it names is in the graph.
 */
#ifndef NETC_TRAIN_H
#define NETC_TRAIN_H

#include <stdbool.h>

#include "ir.h"

/* A parameter the training graph trains. */
typedef struct TrainParam {
    Value *param;    /* V_PARAM */
    Value *grad;     /* d loss / d param, shaped like it (PHASE_GRAD); NULL for none */
    Value *moment1;  /* V_STATE: SGD's momentum buffer or Adam's first moment, zero at start; NULL for none */
    Value *moment2;  /* V_STATE: Adam's second moment, zero at start; NULL for none */
} TrainParam;

/* A net input whose gradient the training graph computes (gradcheck). */
typedef struct TrainInput {
    Value *input; /* one of g->inputs (never the labels) */
    Value *grad;  /* d loss / d input, shaped like it (PHASE_GRAD) */
} TrainInput;

struct Training {
    /* The request, read by autodiff: set before it runs. */
    bool input_grads; /* also compute d loss / d each net input (netc gradcheck) */
    Value **frozen;   /* parameters not to train: no gradient, no moments, no update */
    int nfrozen, cap_frozen;

    /* The training graph, made by autodiff.  Until `built`, only the request means anything. */
    bool built;
    Value *labels; /* V_INPUT outside g->inputs, filled by the trainer: class indices as floats
                    * ([N], or [N, H, W] for per-position logits), or targets shaped like the output */
    Value *loss;   /* [1], PHASE_GRAD: the loss of the batch (a mean) */
    LossAttrs lossa; /* which loss, and its options (the net's loss(...), else cross-entropy) */
    Value *logits; /* the net's output computed in training mode, PHASE_GRAD */
    TrainParam *params; /* the trained parameters, in value order (frozen ones and those no gradient reaches are not) */
    int nparams, cap_params;
    TrainInput *inputs; /* with input_grads: the inputs the loss depends on, in value order */
    int ninputs, cap_inputs;
};

/* g's record, made empty (not built) if it has none.  For the request. */
Training *train_request(Graph *g);
/* Asks that parameter p not be trained (before autodiff). */
void train_freeze(Graph *g, Value *p);
/* Whether p was frozen. */
bool train_frozen(const Graph *g, const Value *p);

/* Makes g a training graph: its record (the request's, or a new one), marked built. */
Training *train_begin(Graph *g);
/* g's record if g is a training graph (autodiff has run), else NULL. */
static inline Training *train_of(const Graph *g) {
    return g->training && g->training->built ? g->training : NULL;
}

/* Records grad as d loss / d v, v a parameter (its TrainParam, added if it
 * has none) or a net input (a TrainInput).  Other values have no record. */
void train_set_grad(Graph *g, Value *v, Value *grad);
/* Records the optimizer's moments of parameter p. */
void train_set_moments(Graph *g, Value *p, Value *moment1, Value *moment2);
/* The recorded gradient of a parameter or input, NULL if none (or if g is not a training graph). */
Value *train_grad(const Graph *g, const Value *v);
/* A pass that replaces value `from` by `to` (a fusion): the record names
 * `to` wherever it named `from` as a gradient or as the training logits. */
void train_replace_value(Graph *g, const Value *from, Value *to);
/* The recorded first (k = 1) or second (k = 2) moment of a parameter, NULL if none. */
Value *train_moment(const Graph *g, const Value *p, int k);

/* ---- transfer learning: freezing by name pattern (freeze.c) ----------------- */

/* Marks (Value.freeze) every parameter whose name matches the glob pattern
 * (fnmatch(3): `*`, `?`, `[...]`; `*` also matches dots, so "conv*" takes
 * conv1.weight and conv1.bias); returns how many matched.  The net's
 * `freeze` statements (the evaluator) and `--freeze` (the driver) call it. */
int freeze_mark(Graph *g, const char *pattern);
/* Asks autodiff not to train each marked parameter (train_freeze); for a
 * training build, before autodiff. */
void freeze_request(Graph *g);

#endif
