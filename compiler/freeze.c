/* Transfer learning: freezing parameters by name pattern (train.h).
 *
 * The patterns are globs over the parameters' names as `netc params` prints
 * them (PyTorch's state_dict keys), matched with the C library's fnmatch
 * rather than a matcher of our own.  Marking is separate from the request so
 * that an inference build of a net with `freeze` statements stays an
 * inference graph (a training record, even a request, turns off the
 * inference-only passes); the driver makes the request for training builds. */
#define _POSIX_C_SOURCE 200809L

#include <fnmatch.h>

#include "train.h"

int freeze_mark(Graph *g, const char *pattern) {
    int n = 0;
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_PARAM || fnmatch(pattern, v->name, 0) != 0) continue;
        v->freeze = true;
        n++;
    }
    return n;
}

void freeze_request(Graph *g) {
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->kind == V_PARAM && g->values[i]->freeze) train_freeze(g, g->values[i]);
}
