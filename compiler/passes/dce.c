/* dce: dead-value elimination.
 *
 * Requires: nothing.
 * Does:     marks dead every node none of whose outputs is a graph output,
 *           the loss, the training logits or an input's gradient (the
 *           training record, train.h), or read by a live node, and that
 *           writes nothing in place (F_SIDE_EFFECT), from the last node back, so chains of
 *           unused nodes go in one run.
 * Keeps:    inputs and parameters (graph_compact keeps parameters, so the
 *           weights file a net expects does not depend on the passes).
 * Breaks:   nothing.
 */
#include <stdlib.h>

#include "../passes.h"
#include "../train.h"

PassResult pass_dce(Graph *g) {
    bool changed = false;
    bool *used = calloc((size_t)g->nvalues + 1, 1);
    for (int i = 0; i < g->noutputs; i++) used[g->outputs[i].v->id] = true;
    const Training *t = train_of(g);
    if (t && t->loss) used[t->loss->id] = true;
    if (t && t->logits) used[t->logits->id] = true;
    for (int i = 0; t && i < t->ninputs; i++) /* input gradients, for gradcheck */
        if (t->inputs[i].grad) used[t->inputs[i].grad->id] = true;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        bool live = op_has(n->op, F_SIDE_EFFECT);
        for (int j = 0; j < n->nout; j++) live |= used[n->out[j]->id];
        if (!live) {
            n->dead = true;
            changed = true;
            continue;
        }
        for (int j = 0; j < n->nin; j++) used[n->in[j]->id] = true;
    }
    free(used);
    return changed ? PASS_CHANGED : PASS_UNCHANGED;
}
