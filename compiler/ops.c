/* The registry: each ops.def row joined with its definition, op_rules_<ENUM>
 * in compiler/ops/<family>.c.  A row without a definition fails to link. */
#include "ir.h"

#define OP(e, name, mini, maxi, nout, flags) extern const OpRules op_rules_##e;
#include "ops.def"
#undef OP

const OpInfo op_info[OP_COUNT] = {
    [OP_NONE] = {"none", 0, 0, 0, 0, NULL},
#define OP(e, name, mini, maxi, nout, flags) [OP_##e] = {name, mini, maxi, nout, flags, &op_rules_##e},
#include "ops.def"
#undef OP
};

bool op_batched_like_input0(const Node *n, int i, const bool *batched) {
    (void)i;
    return batched[n->in[0]->id];
}

bool op_batched_never(const Node *n, int i, const bool *batched) {
    (void)n, (void)i, (void)batched;
    return false;
}
