/* Taps (taps.h): which nodes of a training forward the runtime may see. */
#include "taps.h"

#include "attrs.h"
#include "ops.h"

/* By op: the tap kind of its output, NULL for none.  Ops with a fused
 * activation (conv_blocked's epilogue, batchnorm_train's relu) are named by
 * tap_of. */
static const char *const tap_kinds[OP_COUNT] = {
    [OP_CONV] = "conv", [OP_CONV_BLOCKED] = "conv", [OP_DWCONV] = "conv", [OP_DWCONV_BLOCKED] = "conv",
    [OP_DECONV] = "deconv", [OP_LINEAR] = "linear", [OP_BATCHNORM_TRAIN] = "batchnorm",
    [OP_LAYERNORM] = "layernorm", [OP_INSTANCENORM] = "instancenorm",
    [OP_RELU] = "relu", [OP_TANH] = "tanh", [OP_SIGMOID] = "sigmoid", [OP_RELU6] = "relu6",
    [OP_LEAKY_RELU] = "leaky_relu", [OP_ELU] = "elu", [OP_SILU] = "silu", [OP_GELU] = "gelu",
    [OP_HARDSIGMOID] = "hardsigmoid", [OP_HARDSWISH] = "hardswish", [OP_SOFTPLUS] = "softplus",
};

/* conv_blocked's epilogues (attrs.h, EPILOGUE_*), as tap kinds. */
static const char *const conv_epilogue_kinds[] = {
    [EPILOGUE_NONE] = "conv", [EPILOGUE_RELU] = "conv+relu", [EPILOGUE_RELU6] = "conv+relu6",
    [EPILOGUE_SILU] = "conv+silu", [EPILOGUE_SIGMOID] = "conv+sigmoid", [EPILOGUE_HARDSWISH] = "conv+hardswish",
    [EPILOGUE_TANH] = "conv+tanh", [EPILOGUE_LEAKY_RELU] = "conv+leaky_relu",
};

bool tap_of(const Graph *g, const Node *n, int i, int loss_index, TapKind *out) {
    (void)g;
    if (n->dead || n->phase != PHASE_GRAD || i >= loss_index || (unsigned)n->op >= OP_COUNT || !tap_kinds[n->op])
        return false;
    if (n->nout < 1 || n->out[0]->shape.rank < 2) return false;
    TapKind k = {tap_kinds[n->op], n->op == OP_RELU, false};
    bool weighted = n->op == OP_CONV || n->op == OP_CONV_BLOCKED || n->op == OP_DWCONV ||
                    n->op == OP_DWCONV_BLOCKED || n->op == OP_DECONV || n->op == OP_LINEAR;
    k.preact = weighted;
    if (n->op == OP_CONV_BLOCKED || n->op == OP_DWCONV_BLOCKED) {
        int act = n->a.conv.act;
        if (act < 0 || act >= (int)(sizeof conv_epilogue_kinds / sizeof *conv_epilogue_kinds)) return false;
        if (n->nin > 3) k.kind = act == EPILOGUE_RELU ? "conv+add+relu" : "conv+add";
        else k.kind = conv_epilogue_kinds[act];
        k.relu = act == EPILOGUE_RELU;
        k.preact = act == EPILOGUE_NONE && n->nin <= 3;
    }
    if (n->op == OP_BATCHNORM_TRAIN && n->a.bn.relu) {
        k.kind = n->nin > 5 ? "batchnorm+add+relu" : "batchnorm+relu";
        k.relu = true;
    }
    *out = k;
    return true;
}
