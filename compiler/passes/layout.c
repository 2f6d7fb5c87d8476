/* layout and layout_train: blocked channel layouts (NCHW[V]c) for the
 * convolutions, of an inference build and of a training build.
 *
 * Requires: an inference graph (no training record) whose target has vector
 *           kernels (g->target->vec > 0; the pass does nothing otherwise);
 *           batchnorm folded first, so that a conv carries its folded bias.
 * Does:     in one sweep in graph order, each conv of one group, or of
 *           groups that fall on its output blocks of V channels (ResNeXt's;
 *           the other groups' weights in a block packed as zeros), becomes a
 *           conv_blocked that writes its output NCHW[V]c, V the target's
 *           floats per vector, reading its input in whatever layout it has
 *           (the first conv reads the plain image), and each dwconv whose
 *           input is blocked a dwconv_blocked; their weights and biases are
 *           packed into the kernel's order once, when the weights are
 *           loaded, by a pack_conv node (init time) placed before them.  Blocked values then flow on through
 *           the ops whose kernels take them (OpRules.blocked_ok: the
 *           elementwise activations, add and mul of two blocked values of
 *           one shape and block, add and mul of a blocked [N, C, H, W] value
 *           and a per-channel gate [N, C, 1, 1] (plain, or blocked alike) or
 *           [N, C] (an SE block's gate), maxpool, avgpool, batchnorm (its
 *           parameters plain), concat of values blocked alike, each but the
 *           last a whole number of blocks (DenseNet's, GoogLeNet's), and
 *           global_avgpool, whose [N, C, 1, 1] output is plain); every other
 *           reader, and every output
 *           of the net, reads the plain copy one from_blocked node makes
 *           (one per value, placed before its first plain reader).
 * Keeps:    every value's logical shape and the nodes' names; the net's
 *           outputs plain.
 * Breaks:   nothing.  The planner and the emitter size a blocked value by
 *           its padded channel blocks (value_numel).
 *
 * layout_train does the same for a graph autodiff is to make a training
 * graph of (before it; batchnorm not folded), within what the gradients
 * support: only convs of one group become conv_blocked, and blocked values
 * flow only through the ops whose training copy and gradient keep them
 * blocked (OpRules.blocked_train), without broadcasts.  The pack_conv nodes
 * stay init-time: a training step runs them first (the emitter's
 * <prefix>_grad calls <prefix>_prepare), as the parameters changed.
 */
#include <stdlib.h>

#include "../passes.h"
#include "../train.h"

/* Whether value b broadcasts per sample and channel against the [N, C, H, W]
 * value a: [N, C, 1, 1] or [N, C]. */
static bool per_channel(const Value *a, const Value *b) {
    const Shape *s = &a->shape, *t = &b->shape;
    if (s->rank != 4 || t->d[0] != s->d[0] || t->d[1] != s->d[1]) return false;
    return (t->rank == 4 && t->d[2] == 1 && t->d[3] == 1) || t->rank == 2;
}

/* Whether n's kernel may take its blocked inputs as they are; in a training
 * build (train) also its training copy and its gradient's kernels. */
static bool takes_blocked(const Node *n, bool train) {
    const OpRules *r = op_rules(n->op);
    if (!r->blocked_ok || op_has(n->op, F_INIT)) return false;
    if (train && !r->blocked_train) return false;
    if (n->op == OP_CONV_BLOCKED || n->op == OP_DWCONV_BLOCKED || n->op == OP_FROM_BLOCKED) return true;
    if (n->nout != 1) return false;
    if (n->op == OP_GLOBAL_AVGPOOL) return n->in[0]->shape.rank == 4; /* its output plain: blocked_out */
    /* batchnorm: a blocked x, its per-channel parameters plain */
    if (n->op == OP_BATCHNORM) return n->in[0]->shape.rank == 4;
    /* concat: every input blocked alike, each but the last a whole number
     * of blocks, so that the inputs' blocks follow one another */
    if (n->op == OP_CONCAT) {
        for (int i = 0; i < n->nin; i++) {
            const Value *v = n->in[i];
            if (!v->cblock || v->cblock != n->in[0]->cblock || v->shape.rank != 4) return false;
            if (i < n->nin - 1 && v->shape.d[1] % v->cblock) return false;
        }
        return true;
    }
    if (!op_has(n->op, F_ELEMENTWISE)) return n->nin == 1 && n->in[0]->shape.rank == 4; /* maxpool */
    /* add and mul of a blocked [N, C, H, W] value and a gate of one value per
     * sample and channel ([N, C, 1, 1] plain or blocked alike, or [N, C]) */
    if (n->nin == 2 && !shape_eq(&n->in[0]->shape, &n->in[1]->shape)) {
        if (train) return false; /* (no blocked gradient of a broadcast yet) */
        for (int i = 0; i < 2; i++) {
            const Value *big = n->in[i], *gate = n->in[1 - i];
            if (big->cblock && per_channel(big, gate) && (!gate->cblock || gate->cblock == big->cblock)) return true;
        }
        return false;
    }
    /* add and mul: both operands blocked alike, no broadcast */
    for (int i = 0; i < n->nin; i++)
        if (n->in[i]->cblock != n->in[0]->cblock || !shape_eq(&n->in[i]->shape, &n->in[0]->shape)) return false;
    return true;
}

/* The block of the output of n, a node that takes its blocked inputs: the
 * block of its input of the output's shape (a gated add or mul's big
 * operand), none for a global pooling (its [N, C, 1, 1] output plain). */
static int blocked_out(const Node *n, int j) {
    if (n->op == OP_GLOBAL_AVGPOOL) return 0;
    for (int i = 0; i < n->nin; i++)
        if (n->in[i]->cblock && shape_eq(&n->in[i]->shape, &n->out[j]->shape)) return n->in[i]->cblock;
    return n->in[0]->cblock;
}

/* Whether grouped conv n fits the blocked kernel: its groups fall on the
 * output blocks (conv_blocked_span), and a group has at least two outputs
 * (a wider block of zeros would multiply the work by V or more; depthwise
 * convs are lower_depthwise's). */
static bool grouped_fits(const Node *n, int vec) {
    const ConvAttrs *a = &n->a.conv;
    return a->out / a->groups >= 2 && conv_blocked_span(a->out, n->in[0]->shape.d[1], a->groups, vec) > 0;
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

/* conv or dwconv n becomes pack_conv + conv_blocked (or dwconv_blocked);
 * returns the new node or NULL. */
static Node *block_conv(Graph *g, Node *n, int vec) {
    Attrs pa = {0};
    pa.pack.vec = vec;
    if (n->op == OP_CONV && n->a.conv.groups > 1) pa.pack.groups = n->a.conv.groups;
    Node *pack = graph_add_node(g, OP_PACK_CONV, n->name, n->in + 1, n->nin - 1, &pa, n->span);
    if (!pack) return NULL;
    graph_move_before(g, pack, n);
    Attrs ca = n->a;
    ca.conv.bias = true;
    Op op = n->op == OP_DWCONV ? OP_DWCONV_BLOCKED : OP_CONV_BLOCKED;
    Node *b = graph_add_node(g, op, n->name, (Value *[]){n->in[0], pack->out[0], pack->out[1]}, 3, &ca, n->span);
    if (!b) return NULL;
    graph_move_before(g, b, n);
    b->out[0]->cblock = vec;
    graph_replace_uses(g, n->out[0], b->out[0]);
    n->dead = true;
    return b;
}

/* copies[] by value id, grown to hold ids up to g->nvalues. */
static Value **fit(Graph *g, Value **copies, int *cap) {
    if (g->nvalues < *cap) return copies;
    int ncap = 2 * g->nvalues + 16;
    copies = realloc(copies, sizeof *copies * (size_t)ncap);
    for (int k = *cap; k < ncap; k++) copies[k] = NULL;
    *cap = ncap;
    return copies;
}

/* Both passes: `train` for a graph autodiff will make a training graph of. */
static PassResult layout(Graph *g, bool train) {
    int vec = g->target ? g->target->vec : 0;
    if (vec <= 0) return PASS_UNCHANGED;
    bool changed = false, ok = true;
    int cap = 0;
    Value **copies = fit(g, NULL, &cap);
    /* One sweep in graph order: a conv of one group gets the blocked kernel,
     * and a dwconv whose input is already blocked; blocked values flow on
     * through the ops that take them; the other ops read plain copies.
     * Nodes made here go before the node being looked at. */
    for (int i = 0; i < g->nnodes && ok; i++) {
        Node *n = g->nodes[i];
        if (n->dead || n->op == OP_FROM_BLOCKED || op_has(n->op, F_INIT)) continue;
        bool conv = n->op == OP_CONV && n->in[0]->shape.rank == 4 &&
                    (n->a.conv.groups == 1 || (!train && grouped_fits(n, vec)));
        bool dw = !train && n->op == OP_DWCONV && n->in[0]->cblock == vec;
        if (conv || dw) {
            Node *b = block_conv(g, n, vec);
            if (!b) ok = false;
            changed = true;
            i += 2; /* pack_conv and the blocked conv went in before n */
            continue;
        }
        bool blocked_in = false;
        for (int j = 0; j < n->nin; j++) blocked_in |= n->in[j]->cblock != 0;
        if (!blocked_in) continue;
        if (takes_blocked(n, train)) {
            for (int j = 0; j < n->nout; j++) n->out[j]->cblock = blocked_out(n, j);
            continue;
        }
        for (int j = 0; j < n->nin && ok; j++) {
            Value *v = n->in[j];
            if (!v->cblock) continue;
            copies = fit(g, copies, &cap);
            Value *p = plain_copy(g, v, n, copies);
            if (!p) ok = false;
            else n->in[j] = p;
        }
        while (g->nodes[i] != n) i++; /* past the copies made before n */
    }
    /* The net's outputs are plain. */
    for (int i = 0; i < g->noutputs && ok; i++) {
        Value *v = g->outputs[i].v;
        if (!v->cblock) continue;
        copies = fit(g, copies, &cap);
        Value *p = plain_copy(g, v, NULL, copies);
        if (!p) ok = false;
        else g->outputs[i].v = p;
    }
    free(copies);
    if (!ok) return PASS_FAILED;
    return changed ? PASS_CHANGED : PASS_UNCHANGED;
}

PassResult pass_layout(Graph *g) {
    if (g->training) return PASS_UNCHANGED; /* a training build's is layout_train */
    return layout(g, false);
}

PassResult pass_layout_train(Graph *g) {
    if (train_of(g)) return PASS_UNCHANGED; /* before autodiff */
    return layout(g, true);
}
