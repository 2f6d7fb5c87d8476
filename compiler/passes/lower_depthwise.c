/* lower_depthwise: depthwise convolutions get an op of their own.
 *
 * Requires: an inference graph (no training record).
 * Does:     a conv whose groups equal its input channels and its output
 *           channels (dwconv with multiplier 1, MobileNet's and
 *           EfficientNet's 3x3 and 5x5 convs) becomes a dwconv node, with
 *           the same inputs and attributes.  Plain, it runs conv's kernel;
 *           the layout pass gives a dwconv whose input is blocked the
 *           channel-vectorized kernel of dwconv_blocked.
 * Keeps:    everything else; the values computed, bit for bit (the plain
 *           kernel is conv's).
 * Breaks:   nothing.  A dwconv with a multiplier above 1 and convs of a few
 *           groups stay convs.
 */
#include "../passes.h"

PassResult pass_lower_depthwise(Graph *g) {
    if (g->training) return PASS_UNCHANGED;
    bool changed = false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || n->op != OP_CONV || n->in[0]->shape.rank != 4) continue;
        int64_t c = n->in[0]->shape.d[1];
        if (n->a.conv.groups < 2 || n->a.conv.groups != c || n->a.conv.out != c) continue;
        n->op = OP_DWCONV;
        changed = true;
    }
    return changed ? PASS_CHANGED : PASS_UNCHANGED;
}
