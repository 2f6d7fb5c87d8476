/* The IR verifier: run after every pass in test builds (NETC_VERIFY).
 *
 * Checks that nodes are in topological order, that every input is defined
 * (an input, a parameter, or the output of an earlier live node), that arity
 * matches the op table, that F_INIT nodes read only parameters and derived
 * values, that stored shapes agree with what shape inference computes, and
 * that the training record names only values of the graph. */
#include <stdlib.h>

#include "ir.h"
#include "train.h"

/* A verifier failure is a bug in netc (an internal error, exit status 2),
 * reported with the line of the check that failed. */
static bool fail_at(int line, const char *pass, const char *what, const Node *n) {
    if (n)
        diag_internal_error(__FILE__, line, "IR verification failed after %s: %s (node %d, %s \"%s\")", pass, what,
                            n->id, op_name(n->op), n->name);
    else
        diag_internal_error(__FILE__, line, "IR verification failed after %s: %s", pass, what);
    return false;
}
#define fail(pass, what, n) fail_at(__LINE__, pass, what, n)

static bool in_graph(const Graph *g, const Value *v) {
    return !v || (v->id >= 0 && v->id < g->nvalues && g->values[v->id] == v);
}

/* Every value the training record (train.h) points at is still in the graph:
 * it holds pointers, which graph_compact's renumbering must not leave dangling. */
static bool training_in_graph(const Graph *g) {
    const Training *t = g->training;
    if (!t) return true;
    bool ok = in_graph(g, t->labels) && in_graph(g, t->loss) && in_graph(g, t->logits);
    for (int i = 0; i < t->nfrozen; i++) ok = ok && in_graph(g, t->frozen[i]);
    for (int i = 0; i < t->nparams; i++)
        ok = ok && in_graph(g, t->params[i].param) && in_graph(g, t->params[i].grad) &&
             in_graph(g, t->params[i].moment1) &&
             in_graph(g, t->params[i].moment2);
    for (int i = 0; i < t->ninputs; i++) ok = ok && in_graph(g, t->inputs[i].input) && in_graph(g, t->inputs[i].grad);
    return ok;
}

bool graph_verify(Graph *g, const char *after) {
    bool ok = true;
    bool *defined = calloc((size_t)g->nvalues + 1, 1);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->id != i) {
            ok = fail(after, "value ids are not their positions", NULL);
            goto out;
        }
        if (v->kind == V_INPUT || v->kind == V_PARAM || v->kind == V_STATE) defined[i] = true;
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        if (n->nin < op_info[n->op].min_inputs || n->nin > op_info[n->op].max_inputs ||
            n->nout != op_info[n->op].outputs) {
            ok = fail(after, "wrong number of inputs or outputs", n);
            goto out;
        }
        for (int j = 0; j < n->nin; j++) {
            Value *v = n->in[j];
            if (v->id >= g->nvalues || g->values[v->id] != v || !defined[v->id]) {
                ok = fail(after, "an input is used before it is defined, or is not in the graph", n);
                goto out;
            }
            if (op_has(n->op, F_INIT) && v->kind != V_PARAM && v->kind != V_DERIVED) {
                ok = fail(after, "an init-time node reads an activation", n);
                goto out;
            }
        }
        /* Blocked values (the layout pass) only in and out of ops with blocked kernels. */
        bool blocked = false;
        for (int j = 0; j < n->nin; j++) blocked |= n->in[j]->cblock != 0;
        for (int j = 0; j < n->nout; j++) blocked |= n->out[j]->cblock != 0;
        if (blocked && !op_rules(n->op)->blocked_ok) {
            ok = fail(after, "a blocked (NCHW[V]c) value goes in or out of an op without a blocked kernel", n);
            goto out;
        }
        Shape saved[IR_MAX_OUT];
        for (int j = 0; j < n->nout; j++) {
            Value *v = n->out[j];
            if (v->id >= g->nvalues || g->values[v->id] != v || v->def != n || defined[v->id]) {
                ok = fail(after, "an output is not a fresh value of its node", n);
                goto out;
            }
            saved[j] = v->shape;
        }
        if (!shape_infer(g, n)) {
            ok = fail(after, "shape inference rejects a node", n);
            goto out;
        }
        for (int j = 0; j < n->nout; j++) {
            if (!shape_eq(&saved[j], &n->out[j]->shape)) {
                ok = fail(after, "a stored shape differs from the inferred one", n);
                goto out;
            }
            defined[n->out[j]->id] = true;
        }
    }
    for (int i = 0; i < g->noutputs; i++)
        if (!defined[g->outputs[i].v->id]) {
            ok = fail(after, "a graph output is not defined", NULL);
            goto out;
        }
    if (!training_in_graph(g)) ok = fail(after, "the training record names a value that is not in the graph", NULL);
out:
    free(defined);
    return ok;
}
