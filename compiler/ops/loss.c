/* Training's end: the loss (softmax cross-entropy), its gradient, and the
 * optimizer step.  The autodiff pass makes these nodes; no source writes
 * them. */
#include "../opkit.h"
#include "../train.h"

/* ---- shapes ------------------------------------------------------------------ */

/* logits [N, K] and labels [N]: the loss is [1], its gradient the logits' shape. */
static bool shape_xent(Graph *g, Node *n) {
    (void)g;
    if (n->in[0]->shape.rank != 2 || n->in[1]->shape.rank != 1 || n->in[1]->shape.d[0] != n->in[0]->shape.d[0]) {
        char b1[128], b2[128];
        diag_error(n->span, "the loss needs logits [N, K] and labels [N], got %s and %s",
                   shape_str(&n->in[0]->shape, b1, sizeof b1), shape_str(&n->in[1]->shape, b2, sizeof b2));
        return false;
    }
    if (n->op == OP_XENT_GRAD) return shape_like(n, 0, 0);
    shape_set_out(n, 0, 1, (int64_t[]){1});
    return true;
}

/* The optimizer step has no outputs. */
static bool shape_none(Graph *g, Node *n) {
    (void)g;
    (void)n;
    return true;
}

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_xent(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    const Value *labels = n->in[1];
    if (x->rank != 2 || x->d[1] < 1 || labels->shape.rank != 1 || labels->shape.d[0] != x->d[0])
        return "needs logits [N, K] and labels [N]";
    return NULL;
}

static const char *check_sgd_update(const Graph *g, const Node *n) {
    const Shape *p = &n->in[0]->shape;
    if (!train_of(g)) return "the optimizer step needs a training graph";
    if (shape_numel(p) != shape_numel(&n->in[1]->shape) || shape_numel(p) != shape_numel(&n->in[2]->shape))
        return "parameter, gradient and velocity differ in size";
    return NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* PyTorch's CrossEntropyLoss(): the mean over the batch of
 * logsumexp(row) - row[label], in double.  A label outside [0, K) makes the
 * loss NaN. */
static void emit_xent_loss(Kernel *k) {
    const Shape *z = in_shape(k, 0);
    kopen(k, (const char *const[]){"logits", "labels"}, (const char *const[]){"loss"});
    KENUM(k, {"N", z->d[0]}, {"K", z->d[1]});
    kout(k, "    double total = 0.0;\n"
            "    for (int n = 0; n < N; n++) {\n"
            "        const float *restrict row = logits + (size_t)n * K;\n"
            "        const float lf = labels[n];\n"
            "        if (!(lf >= 0.0f && lf < (float)K)) {\n"
            "            loss[0] = NAN;\n"
            "            return;\n"
            "        }\n"
            "        double m = row[0];\n"
            "        for (int k = 1; k < K; k++) m = row[k] > m ? row[k] : m;\n"
            "        double s = 0.0;\n"
            "        for (int k = 0; k < K; k++) s += exp(row[k] - m);\n"
            "        total += m + log(s) - row[(int)lf];\n"
            "    }\n"
            "    loss[0] = (float)(total / N);\n");
    kclose(k);
}

/* d loss / d logits = (softmax(row) - onehot(label)) / nb; a label outside
 * [0, K) has no one-hot term. */
static void emit_xent_grad(Kernel *k) {
    const Shape *z = in_shape(k, 0);
    kopen(k, (const char *const[]){"logits", "labels"}, (const char *const[]){"dlogits"});
    KENUM(k, {"N", z->d[0]}, {"K", z->d[1]});
    kout(k, "    const double inv = 1.0 / N;\n"
            "    for (int n = 0; n < N; n++) {\n"
            "        const float *restrict row = logits + (size_t)n * K;\n"
            "        float *restrict drow = dlogits + (size_t)n * K;\n"
            "        const float lf = labels[n];\n"
            "        const int label = lf >= 0.0f && lf < (float)K ? (int)lf : -1;\n"
            "        double m = row[0];\n"
            "        for (int k = 1; k < K; k++) m = row[k] > m ? row[k] : m;\n"
            "        double s = 0.0;\n"
            "        for (int k = 0; k < K; k++) s += exp(row[k] - m);\n"
            "        for (int k = 0; k < K; k++)\n"
            "            drow[k] = (float)((exp(row[k] - m) / s - (k == label ? 1.0 : 0.0)) * inv);\n"
            "    }\n");
    kclose(k);
}

/* PyTorch's SGD (dampening 0, no Nesterov), parameter and velocity in place;
 * the hyperparameters are the emitted file's hp_* variables. */
static void emit_sgd_update(Kernel *k) {
    kopen_rw(k, (const char *const[]){"p", "grad", "v"}, NULL, op_rules(OP_SGD_UPDATE)->written_inputs);
    kcount(k, "NUMEL", shape_numel(in_shape(k, 0)));
    kout(k, "    const float lr = hp_lr, momentum = hp_momentum, wd = hp_weight_decay;\n"
            "    for (size_t i = 0; i < NUMEL; i++) {\n"
            "        const float g = grad[i] + wd * p[i];\n"
            "        v[i] = momentum * v[i] + g;\n"
            "        p[i] -= lr * v[i];\n"
            "    }\n");
    kclose(k);
}

/* ---- the entries ---------------------------------------------------------------------- */

#define MADE_BY_AUTODIFF "autodiff makes it"
#define NO_ATTRS "no attributes"
#define NO_MACS "training op: not counted"
#define GRAD_OP "the end of the backward pass: not differentiated"

const OpRules op_rules_XENT_LOSS = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_xent, .check = check_xent, .emit = emit_xent_loss, .batched = op_batched_never,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_XENT_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_xent, .check = check_xent, .emit = emit_xent_grad, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_SGD_UPDATE = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_none, .check = check_sgd_update, .emit = emit_sgd_update, .batched = op_batched_never,
    .written_inputs = 1u << 0 | 1u << 2, /* the parameter and its velocity */
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};
