/* fold_batchnorm: conv or linear followed by batchnorm becomes one conv or
 * linear with folded weight and bias.
 *
 * Requires: an inference graph (batchnorm in eval mode, running statistics);
 *           never run on a training graph, whose batchnorm uses batch statistics.
 * Does:     for a BATCHNORM whose input comes from a CONV or LINEAR that has
 *           no other use and is not a graph output, adds a BN_FOLD init node
 *           computing  s = gamma / sqrt(var + eps),  w' = w * s (per output
 *           channel),  b' = (b - mean) * s + beta,  makes the conv read w', b'
 *           and removes the batchnorm.  The folded values are computed once
 *           when the weights are loaded (the parameters stay as they are, so
 *           the weights file is unchanged).
 * Keeps:    every value's shape; the parameters; other batchnorms (one after
 *           a pool, an add or an input stays).
 * Breaks:   nothing; leaves dead nodes for graph_compact.
 */
#include "../passes.h"

static bool foldable(Graph *g, Node *bn) {
    Node *prod = bn->in[0]->def;
    if (!prod || prod->dead || (prod->op != OP_CONV && prod->op != OP_LINEAR)) return false;
    Node *uses[2];
    if (graph_uses(g, bn->in[0], uses, 2) != 1) return false;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].v == bn->in[0]) return false;
    return true;
}

PassResult pass_fold_batchnorm(Graph *g) {
    bool changed = false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *bn = g->nodes[i];
        if (bn->dead || bn->op != OP_BATCHNORM || !foldable(g, bn)) continue;
        Node *prod = bn->in[0]->def;
        Value *in[6];
        int nin = 0;
        in[nin++] = prod->in[1];
        if (prod->nin == 3) in[nin++] = prod->in[2];
        for (int j = 1; j < 5; j++) in[nin++] = bn->in[j];
        Attrs a = {0};
        a.bn = bn->a.bn;
        Node *fold = graph_add_node(g, OP_BN_FOLD, bn->name, in, nin, &a, bn->span);
        if (!fold) continue; /* cannot happen on a verified graph */
        graph_move_before(g, fold, prod);
        prod->in[1] = fold->out[0];
        prod->in[2] = fold->out[1];
        prod->nin = 3;
        if (prod->op == OP_CONV)
            prod->a.conv.bias = true;
        else
            prod->a.linear.bias = true;
        graph_replace_uses(g, bn->out[0], prod->out[0]);
        bn->dead = true;
        changed = true;
        i++; /* the fold node went in before the conv, so the batchnorm moved to i + 1 */
    }
    return changed ? PASS_CHANGED : PASS_UNCHANGED;
}
