/* fuse_train: relu into the blocked batchnorm of a training step, forward
 * and backward.
 *
 * Requires: a training graph (autodiff has run) built by layout_train, so
 *           that its batchnorm_train and batchnorm_grad nodes take blocked
 *           values.
 * Does:     in the training forward (PHASE_GRAD), a batchnorm_train on
 *           blocked values whose output only a relu reads applies the relu
 *           itself (BatchnormAttrs.relu): the relu dies and its readers
 *           (the next conv, relu_grad) read the batchnorm's output; one
 *           whose output only an add of a residual reads, itself read only
 *           by a relu (a ResNet block's end), takes the residual as its
 *           sixth input and applies add and relu (the batchnorm moves to
 *           just before the add, where the residual is defined; add and
 *           relu die); in the
 *           backward, a batchnorm_grad on blocked values whose dy is the
 *           output of a relu_grad that only it reads takes that relu_grad's
 *           dy and y instead (y as its sixth input, BatchnormAttrs.relu:
 *           dy counts where y > 0), and the relu_grad dies.  Each fusion
 *           saves a pass over an activation-sized tensor: at batch 32 those
 *           passes are bound by memory bandwidth and gain nothing from a
 *           second thread.
 * Keeps:    the values the step computes, bit for bit: the fused kernels
 *           apply relu's and relu_grad's expressions where the nodes did.
 * Breaks:   nothing.  Plain batchnorms (`--target generic`) are left alone.
 */
#include "../passes.h"
#include "../train.h"

/* batchnorm_train -> relu, or batchnorm_train -> add (a residual) -> relu. */
static bool fuse_forward(Graph *g, Node *bn) {
    Value *y = bn->out[0];
    Node *r = graph_only_reader(g, y);
    if (!r || r->phase != bn->phase || r->out[0]->cblock != y->cblock) return false;
    if (r->op == OP_RELU) {
        bn->a.bn.relu = true;
        graph_replace_uses(g, r->out[0], y);
        r->dead = true;
        return true;
    }
    if (r->op != OP_ADD || bn->nin != 5) return false;
    Node *add = r;
    Value *other = add->in[0] == y ? add->in[1] : add->in[0];
    Node *relu = graph_only_reader(g, add->out[0]);
    if (other == y || other->cblock != y->cblock || !shape_eq(&other->shape, &y->shape) || !relu ||
        relu->op != OP_RELU || relu->out[0]->cblock != y->cblock)
        return false;
    Node *f = graph_add_node(g, OP_BATCHNORM_TRAIN, bn->name,
                             (Value *[]){bn->in[0], bn->in[1], bn->in[2], bn->in[3], bn->in[4], other}, 6, &bn->a,
                             bn->span);
    if (!f) return false;
    f->a.bn.relu = true;
    f->phase = bn->phase;
    graph_move_before(g, f, add); /* the residual is defined by then */
    for (int j = 0; j < 3; j++) {
        f->out[j]->cblock = bn->out[j]->cblock;
        graph_replace_uses(g, bn->out[j], f->out[j]);
    }
    graph_replace_uses(g, relu->out[0], f->out[0]);
    bn->dead = add->dead = relu->dead = true;
    return true;
}

/* relu_grad -> batchnorm_grad (its dy). */
static bool fuse_backward(Graph *g, Node *bg) {
    Node *rg = bg->in[0]->def;
    if (!rg || rg->op != OP_RELU_GRAD || rg->dead || graph_only_reader(g, rg->out[0]) != bg) return false;
    if (rg->in[0]->cblock != bg->in[1]->cblock || rg->in[1]->cblock != bg->in[1]->cblock) return false;
    Value *in[6] = {rg->in[0], bg->in[1], bg->in[2], bg->in[3], bg->in[4], rg->in[1]};
    Node *f = graph_add_node(g, OP_BATCHNORM_GRAD, bg->name, in, 6, &bg->a, bg->span);
    if (!f) return false;
    f->a.bn.relu = true;
    f->phase = bg->phase;
    graph_move_before(g, f, bg);
    for (int j = 0; j < 3; j++) {
        f->out[j]->cblock = bg->out[j]->cblock;
        graph_replace_uses(g, bg->out[j], f->out[j]);
        train_replace_value(g, bg->out[j], f->out[j]);
    }
    bg->dead = true;
    rg->dead = true;
    return true;
}

PassResult pass_fuse_train(Graph *g) {
    if (!train_of(g)) return PASS_UNCHANGED;
    bool changed = false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || !n->in[0]->cblock) continue;
        if (n->op == OP_BATCHNORM_TRAIN && !n->a.bn.relu) {
            int at = i;
            if (fuse_forward(g, n)) {
                changed = true;
                i = at; /* a fused node may have gone in after n: look at n's place again */
            }
        } else if (n->op == OP_BATCHNORM_GRAD && n->nin == 5 && fuse_backward(g, n)) {
            changed = true;
            i++; /* the fused node went in before n */
        }
    }
    return changed ? PASS_CHANGED : PASS_UNCHANGED;
}
