/* layout: blocked channel layouts (NCHW[V]c) for the convolutions.
 *
 * Requires: an inference graph (no training record) whose target has vector
 *           kernels (g->target->vec > 0; the pass does nothing otherwise);
 *           batchnorm folded first, so that a conv carries its folded bias.
 * Does:     each conv of one group becomes a conv_blocked that writes its
 *           output NCHW[V]c, V the target's floats per vector, reading its
 *           input in whatever layout it has (the first conv reads the plain
 *           image); its weight and bias are packed into the kernel's order
 *           once, when the weights are loaded, by a pack_conv node (init
 *           time) placed before it.  Blocked values then flow on through
 *           the ops whose kernels take them (OpRules.blocked_ok: the
 *           elementwise activations, and add and mul of two blocked values
 *           of one shape and block); every other reader, and every output
 *           of the net, reads the plain copy one from_blocked node makes
 *           (one per value, placed before its first plain reader).
 * Keeps:    every value's logical shape and the nodes' names; the net's
 *           outputs plain.
 * Breaks:   nothing.  The planner and the emitter size a blocked value by
 *           its padded channel blocks (value_numel).
 */
#include <stdlib.h>

#include "../passes.h"
#include "../train.h"

/* Whether n's kernel may take its blocked inputs as they are. */
static bool takes_blocked(const Node *n) {
    const OpRules *r = op_rules(n->op);
    if (!r->blocked_ok || op_has(n->op, F_INIT)) return false;
    if (n->op == OP_CONV_BLOCKED || n->op == OP_FROM_BLOCKED) return true;
    if (!op_has(n->op, F_ELEMENTWISE) || n->nout != 1) return false;
    /* add and mul: both operands blocked alike, no broadcast */
    for (int i = 0; i < n->nin; i++)
        if (n->in[i]->cblock != n->in[0]->cblock || !shape_eq(&n->in[i]->shape, &n->in[0]->shape)) return false;
    return true;
}

/* The plain copy of blocked value v, made before node `before` if it does not exist yet. */
static Value *plain_copy(Graph *g, Value *v, Node *before, Value **copies) {
    if (copies[v->id]) return copies[v->id];
    Node *c = graph_add_node(g, OP_FROM_BLOCKED, v->def ? v->def->name : v->name, &v, 1, NULL,
                             v->def ? v->def->span : v->span);
    if (!c) return NULL;
    if (before) graph_move_before(g, c, before);
    copies[v->id] = c->out[0];
    return c->out[0];
}

/* conv n becomes pack_conv + conv_blocked; returns the new conv or NULL. */
static Node *block_conv(Graph *g, Node *n, int vec) {
    Attrs pa = {0};
    pa.pack.vec = vec;
    Node *pack = graph_add_node(g, OP_PACK_CONV, n->name, n->in + 1, n->nin - 1, &pa, n->span);
    if (!pack) return NULL;
    graph_move_before(g, pack, n);
    Attrs ca = n->a;
    ca.conv.bias = true;
    Node *b = graph_add_node(g, OP_CONV_BLOCKED, n->name, (Value *[]){n->in[0], pack->out[0], pack->out[1]}, 3, &ca,
                             n->span);
    if (!b) return NULL;
    graph_move_before(g, b, n);
    b->out[0]->cblock = vec;
    graph_replace_uses(g, n->out[0], b->out[0]);
    n->dead = true;
    return b;
}

PassResult pass_layout(Graph *g) {
    int vec = g->target ? g->target->vec : 0;
    if (vec <= 0 || g->training) return PASS_UNCHANGED;
    bool changed = false;
    /* 1. Convs of one group on [N, C, H, W] get the blocked kernel. */
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || n->op != OP_CONV || n->a.conv.groups != 1 || n->in[0]->shape.rank != 4) continue;
        if (!block_conv(g, n, vec)) return PASS_FAILED;
        changed = true;
        i += 2; /* pack_conv and conv_blocked went in before n */
    }
    if (!changed) return PASS_UNCHANGED;
    /* 2. Blocked values flow through the ops that take them; the others read
     *    plain copies.  Nodes made here go before the node being looked at. */
    Value **copies = calloc((size_t)g->nvalues * 2 + 16, sizeof *copies);
    int cap = g->nvalues * 2 + 16;
    bool ok = true;
    for (int i = 0; i < g->nnodes && ok; i++) {
        Node *n = g->nodes[i];
        if (n->dead || n->op == OP_FROM_BLOCKED) continue;
        bool blocked_in = false;
        for (int j = 0; j < n->nin; j++) blocked_in |= n->in[j]->cblock != 0;
        if (!blocked_in) continue;
        if (takes_blocked(n)) {
            if (n->op != OP_CONV_BLOCKED)
                for (int j = 0; j < n->nout; j++) n->out[j]->cblock = n->in[0]->cblock;
            continue;
        }
        for (int j = 0; j < n->nin && ok; j++) {
            Value *v = n->in[j];
            if (!v->cblock) continue;
            if (g->nvalues >= cap) { /* values made by this loop */
                int ncap = 2 * g->nvalues;
                copies = realloc(copies, sizeof *copies * (size_t)ncap);
                for (int k = cap; k < ncap; k++) copies[k] = NULL;
                cap = ncap;
            }
            Value *p = plain_copy(g, v, n, copies);
            if (!p) ok = false;
            else n->in[j] = p;
        }
        i = 0; /* the copies went in before n: find n again */
        while (g->nodes[i] != n) i++;
    }
    /* 3. The net's outputs are plain. */
    for (int i = 0; i < g->noutputs && ok; i++) {
        Value *v = g->outputs[i].v;
        if (!v->cblock) continue;
        if (v->id >= cap) {
            int ncap = v->id + 16;
            copies = realloc(copies, sizeof *copies * (size_t)ncap);
            for (int k = cap; k < ncap; k++) copies[k] = NULL;
            cap = ncap;
        }
        Value *p = plain_copy(g, v, NULL, copies);
        if (!p) ok = false;
        else g->outputs[i].v = p;
    }
    free(copies);
    return ok ? PASS_CHANGED : PASS_FAILED;
}
