/* fuse_epilogue: a residual add and an activation after a blocked conv go
 * into the conv's store.
 *
 * Requires: the layout pass (it fuses into conv_blocked and dwconv_blocked).
 * Does:     for each such blocked conv whose output only one node reads:
 *             - if that node is an add of the output and another value of
 *               its shape and block (a residual connection), the conv moves
 *               to just before the add (its inputs are all defined there),
 *               takes the other value as its residual input, and the add's
 *               readers read the conv's output instead;
 *             - then, if the only reader is a relu, relu6, silu, sigmoid,
 *               hardswish, tanh or leaky_relu of the output, the conv's
 *               store applies it (ConvAttrs.act, and act_k leaky_relu's
 *               slope: relu and relu6 on the accumulators, the others over
 *               each finished output row with the standalone kernel's
 *               expression) and the activation's readers read the conv
 *               instead.
 *           The add and the activation die, so their outputs are never
 *           written and read back.  A conv output that is one of the net's
 *           outputs, or that several nodes read, is left alone.  In a
 *           training graph (the train pipeline runs it after fuse_train) the
 *           same holds for the training forward's convs, and the input
 *           gradients' conv_blocked (layout_train) takes the other gradient
 *           of a value used twice (a residual block's input) as its
 *           residual, the add of the two gradients dying; an activation whose
 *           gradient reads its input (silu, say) is not fused, since then
 *           the conv's output has two readers.
 * Keeps:    the values the net computes, bit for bit: the conv adds the
 *           residual to its finished sum and applies the activation after,
 *           as the two nodes did, with the same expression.
 * Breaks:   nothing.
 */
#include "../passes.h"
#include "../train.h"

/* The readers of `dead`'s output read `to` instead, and `dead` dies; in a
 * training graph its record too (the output may be a gradient it names, or
 * the training logits). */
static void bypass(Graph *g, Node *dead, Value *to) {
    graph_replace_uses(g, dead->out[0], to);
    train_replace_value(g, dead->out[0], to);
    dead->dead = true;
}

static bool fuse_residual(Graph *g, Node *conv) {
    Value *y = conv->out[0];
    Node *add = graph_only_reader(g, y);
    if (!add || add->op != OP_ADD || conv->nin != 3 || conv->a.conv.act != EPILOGUE_NONE) return false;
    Value *other = add->in[0] == y ? add->in[1] : add->in[0];
    if (other->cblock != y->cblock || !shape_eq(&other->shape, &y->shape) || add->out[0]->cblock != y->cblock)
        return false;
    graph_move_before(g, conv, add);
    conv->in[3] = other;
    conv->nin = 4;
    bypass(g, add, y);
    return true;
}

static bool fuse_activation(Graph *g, Node *conv) {
    Value *y = conv->out[0];
    Node *act = graph_only_reader(g, y);
    if (!act || conv->a.conv.act != EPILOGUE_NONE || act->out[0]->cblock != y->cblock) return false;
    switch (act->op) {
    case OP_RELU: conv->a.conv.act = EPILOGUE_RELU; break;
    case OP_RELU6: conv->a.conv.act = EPILOGUE_RELU6; break;
    case OP_SILU: conv->a.conv.act = EPILOGUE_SILU; break;
    case OP_SIGMOID: conv->a.conv.act = EPILOGUE_SIGMOID; break;
    case OP_HARDSWISH: conv->a.conv.act = EPILOGUE_HARDSWISH; break;
    case OP_TANH: conv->a.conv.act = EPILOGUE_TANH; break;
    case OP_LEAKY_RELU:
        conv->a.conv.act = EPILOGUE_LEAKY_RELU;
        conv->a.conv.act_k = act->a.leaky.slope;
        break;
    default: return false;
    }
    bypass(g, act, y);
    return true;
}

PassResult pass_fuse_epilogue(Graph *g) {
    bool changed = false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || (n->op != OP_CONV_BLOCKED && n->op != OP_DWCONV_BLOCKED)) continue;
        if (fuse_residual(g, n)) {
            changed = true;
            i--; /* n moved down to where the add was: the node now at i has not been seen */
            continue;
        }
        changed |= fuse_activation(g, n);
    }
    return changed ? PASS_CHANGED : PASS_UNCHANGED;
}
