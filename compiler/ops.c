#include "ops.h"

const OpInfo op_info[OP_COUNT] = {
#define OP(e, name, mini, maxi, nout, flags) [OP_##e] = {name, mini, maxi, nout, flags},
#include "ops.def"
#undef OP
};
