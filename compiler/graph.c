/* Graph construction and editing (see ir.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "train.h"

Graph *graph_new(const Source *src, const char *name, int batch) {
    Arena *a = arena_new();
    Graph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->src = src;
    g->name = arena_strdup(a, name);
    g->batch = batch;
    g->target = target_generic();
    return g;
}

void graph_free(Graph *g) {
    if (g) arena_free(g->arena);
}

static Value *new_value(Graph *g, ValueKind k, const char *name, Shape s, Span sp) {
    Value *v = arena_alloc(g->arena, sizeof *v);
    v->id = g->nvalues;
    v->kind = k;
    v->shape = s;
    v->name = arena_strdup(g->arena, name);
    v->span = sp;
    ARENA_PUSH(g->arena, g->values, g->nvalues, g->cap_values, v);
    return v;
}

Value *graph_add_input(Graph *g, const char *name, Shape s, Span sp) {
    Value *v = new_value(g, V_INPUT, name, s, sp);
    ARENA_PUSH(g->arena, g->inputs, g->ninputs, g->cap_inputs, v);
    return v;
}

Value *graph_add_value(Graph *g, ValueKind k, const char *name, Shape s, Span sp) { return new_value(g, k, name, s, sp); }

void graph_set_phase(Graph *g, Phase p) { g->phase = p; }

Value *graph_add_param(Graph *g, const char *name, Shape s, ParamInit init, Span sp) {
    Value *v = new_value(g, V_PARAM, name, s, sp);
    v->init = init;
    return v;
}

Node *graph_add_node(Graph *g, Op op, const char *name, Value **in, int nin, const Attrs *a,
                     Span sp) {
    Node *n = arena_alloc(g->arena, sizeof *n);
    n->id = g->nnodes;
    n->op = op;
    n->name = arena_strdup(g->arena, name);
    n->nin = nin;
    for (int i = 0; i < nin; i++) n->in[i] = in[i];
    if (a) n->a = *a;
    n->span = sp;
    n->phase = g->phase;
    n->nout = op_info[op].outputs;
    ValueKind k = op_has(op, F_INIT) ? V_DERIVED : V_ACT;
    for (int i = 0; i < n->nout; i++) {
        const char *vname = n->nout == 1 ? n->name : arena_printf(g->arena, "%s:%d", n->name, i);
        Value *v = new_value(g, k, vname, (Shape){0}, sp);
        v->def = n;
        v->out_index = i;
        n->out[i] = v;
    }
    if (!shape_infer(g, n)) {
        g->nvalues -= n->nout; /* the outputs were the last values made */
        return NULL;
    }
    ARENA_PUSH(g->arena, g->nodes, g->nnodes, g->cap_nodes, n);
    return n;
}

void graph_add_output(Graph *g, const char *name, Value *v, Span sp) {
    GraphOutput o = {arena_strdup(g->arena, name), v, sp};
    ARENA_PUSH(g->arena, g->outputs, g->noutputs, g->cap_outputs, o);
}

int graph_params(Graph *g, Value ***out) {
    int n = 0;
    Value **ps = arena_alloc(g->arena, sizeof *ps * (size_t)(g->nvalues + 1));
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->kind == V_PARAM) ps[n++] = g->values[i];
    *out = ps;
    return n;
}

Node *graph_only_reader(Graph *g, Value *v) {
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].v == v) return NULL;
    Node *uses[2];
    if (graph_uses(g, v, uses, 2) != 1) return NULL;
    int reads = 0;
    for (int j = 0; j < uses[0]->nin; j++) reads += uses[0]->in[j] == v;
    return reads == 1 ? uses[0] : NULL;
}

int graph_uses(Graph *g, Value *v, Node **out, int max) {
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *u = g->nodes[i];
        if (u->dead) continue;
        for (int j = 0; j < u->nin; j++)
            if (u->in[j] == v) {
                if (n < max) out[n] = u;
                n++;
                break;
            }
    }
    return n;
}

void graph_replace_uses(Graph *g, Value *from, Value *to) {
    for (int i = 0; i < g->nnodes; i++) {
        Node *u = g->nodes[i];
        if (u->dead) continue;
        for (int j = 0; j < u->nin; j++)
            if (u->in[j] == from) u->in[j] = to;
    }
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].v == from) g->outputs[i].v = to;
}

void graph_move_before(Graph *g, Node *n, Node *pos) {
    int from = -1, to = -1;
    for (int i = 0; i < g->nnodes; i++) {
        if (g->nodes[i] == n) from = i;
        if (g->nodes[i] == pos) to = i;
    }
    if (from < 0 || to < 0 || from == to) return;
    if (from > to) {
        memmove(g->nodes + to + 1, g->nodes + to, sizeof *g->nodes * (size_t)(from - to));
        g->nodes[to] = n;
    } else {
        memmove(g->nodes + from, g->nodes + from + 1, sizeof *g->nodes * (size_t)(to - 1 - from));
        g->nodes[to - 1] = n;
    }
    for (int i = 0; i < g->nnodes; i++) g->nodes[i]->id = i;
}

void graph_compact(Graph *g) {
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead) g->nodes[k++] = g->nodes[i];
    g->nnodes = k;
    for (int i = 0; i < g->nnodes; i++) g->nodes[i]->id = i;

    /* A value stays if it is an input, an output, or read or written by a live node. */
    bool *keep = calloc((size_t)g->nvalues + 1, 1);
    for (int i = 0; i < g->nvalues; i++) g->values[i]->id = i;
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->kind == V_INPUT || g->values[i]->kind == V_PARAM || g->values[i]->kind == V_STATE) keep[i] = true;
    /* and what the training record names that nothing above keeps; the record
     * holds Value pointers, so the renumbering below leaves it valid */
    const Training *t = train_of(g);
    if (t && t->labels) keep[t->labels->id] = true;
    if (t && t->loss) keep[t->loss->id] = true;
    if (t && t->logits) keep[t->logits->id] = true;
    for (int i = 0; t && i < t->ninputs; i++)
        if (t->inputs[i].grad) keep[t->inputs[i].grad->id] = true;
    for (int i = 0; i < g->noutputs; i++) keep[g->outputs[i].v->id] = true;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int j = 0; j < n->nin; j++) keep[n->in[j]->id] = true;
        for (int j = 0; j < n->nout; j++) keep[n->out[j]->id] = true;
    }
    int m = 0;
    for (int i = 0; i < g->nvalues; i++)
        if (keep[i]) g->values[m++] = g->values[i];
    g->nvalues = m;
    for (int i = 0; i < g->nvalues; i++) g->values[i]->id = i;
    free(keep);
}
