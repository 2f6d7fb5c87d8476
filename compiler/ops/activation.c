/* Activations: elementwise functions, dropout, softmax and log_softmax, and
 * the gradients of those that train (relu, tanh, sigmoid, softmax, softplus).
 *
 * Each op is its registry entry (ops.h): the builtins that make it, its
 * shape, emission and gradient, and the statements of what it lacks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../opkit.h"

/* ---- builders --------------------------------------------------------------- */

/* An activation with one number: leaky_relu's slope, elu's alpha. */
static Node *build_unary_k(BuildCtx *c) {
    const char *name = c->builtin->name;
    char what[64];
    snprintf(what, sizeof what, "%s's input", name);
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), what);
    snprintf(what, sizeof what, "%s's %s", name, c->builtin->args[1].name);
    double k = arg_number(c, build_arg(c, 1), build_span(c, 1), what);
    if (!isfinite(k)) build_fail(c, build_span(c, 1), "%s must be finite, got %g", what, k);
    Attrs a = {0};
    if (c->op == OP_LEAKY_RELU)
        a.leaky.slope = k;
    else
        a.elu.alpha = k;
    const char *inst = build_instance(c, name);
    return build_node(c, c->op, inst, &x, 1, &a);
}

/* The identity at inference; a training build rejects it (no gradient rule). */
static Node *build_dropout(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "dropout's input");
    Attrs a = {0};
    a.dropout.p = arg_number(c, build_arg(c, 1), build_span(c, 1), "dropout's p");
    if (!(a.dropout.p >= 0 && a.dropout.p < 1))
        build_fail(c, build_span(c, 1), "dropout's p must be in [0, 1), got %g", a.dropout.p);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_DROPOUT, inst, &x, 1, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

static bool shape_softmax(Graph *g, Node *n) {
    (void)g;
    int r = n->in[0]->shape.rank;
    if (r != 2 && r != 4) {
        char b[128];
        diag_error(n->span, "%s expects a [C, H, W] or [D] input, got %s", op_name(n->op),
                   value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

/* A gradient from the op's output: dy and y of one shape. */
static bool shape_dy_same(Graph *g, Node *n) {
    (void)g;
    if (!shape_eq(&n->in[0]->shape, &n->in[1]->shape)) {
        char b1[128], b2[128];
        diag_error(n->span, "%s: the gradient %s and the value %s differ in shape", op_name(n->op),
                   shape_str(&n->in[0]->shape, b1, sizeof b1), shape_str(&n->in[1]->shape, b2, sizeof b2));
        return false;
    }
    return shape_like(n, 0, 1);
}

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_batch(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    return x->rank < 1 || x->d[0] == 0 ? "needs a batch dimension" : NULL;
}

static const char *check_channels(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank < 2 ? "needs [N, C, ...]" : NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* `loop y[i] = expr;` with expr's every x[i] read as y[i] when the output is
 * written over x (Kernel.inplace): one pointer, which clang vectorizes as
 * it does the two restrict ones. */
static void unary_loop(Kernel *k, const char *loop, const char *expr) {
    kout(k, "    %s y[i] = ", loop);
    for (const char *p = expr; *p;) {
        if ((k->inplace & 1) && strncmp(p, "x[i]", 4) == 0) {
            kout(k, "y[i]");
            p += 4;
        } else {
            kout(k, "%c", *p++);
        }
    }
    kout(k, ";\n");
}

static void emit_unary(Kernel *k, const char *expr) {
    const char *loop = kopen_elementwise(k, (const char *const[]){"x"}, (const char *const[]){"y"}, 0, k->n->out[0]);
    unary_loop(k, loop, expr);
    kclose(k);
}

/* An activation with one float constant K (the slope, alpha). */
static void emit_unary_k(Kernel *k, double kv, const char *expr) {
    const char *loop = kopen_elementwise(k, (const char *const[]){"x"}, (const char *const[]){"y"}, 0, k->n->out[0]);
    kdouble(k, "KD", kv);
    kout(k, "    const netc_real K = (netc_real)KD;\n");
    unary_loop(k, loop, expr);
    kclose(k);
}

/* x < 0 ? 0 : x keeps NaN as PyTorch does; the other comparisons too.  The
 * transcendental functions are runtime/netrt_math.h's, which vectorize;
 * netrt_selectf chooses without a branch, which gcc's vectorizer needs. */
const char *activation_expr(Op op) {
    switch (op) {
    case OP_TANH: return "netrt_tanhf(x[i])";
    case OP_SIGMOID: return "netrt_sigmoidf(x[i])";
    case OP_SILU: return "x[i] * netrt_sigmoidf(x[i])";
    /* x * relu6(x + 3) / 6 */
    case OP_HARDSWISH: return "x[i] <= -3.0f ? 0.0f : x[i] >= 3.0f ? x[i] : x[i] * (x[i] + 3.0f) / 6.0f";
    case OP_LEAKY_RELU: return "x[i] > 0.0f ? x[i] : x[i] * K";
    default: return NULL;
    }
}

static void emit_relu(Kernel *k) { emit_unary(k, "x[i] < 0.0f ? 0.0f : x[i]"); }
static void emit_tanh(Kernel *k) { emit_unary(k, activation_expr(OP_TANH)); }
static void emit_sigmoid(Kernel *k) { emit_unary(k, activation_expr(OP_SIGMOID)); }
static void emit_relu6(Kernel *k) { emit_unary(k, "x[i] < 0.0f ? 0.0f : x[i] > 6.0f ? 6.0f : x[i]"); }
static void emit_leaky_relu(Kernel *k) { emit_unary_k(k, k->n->a.leaky.slope, activation_expr(OP_LEAKY_RELU)); }
static void emit_elu(Kernel *k) { emit_unary_k(k, k->n->a.elu.alpha, "netrt_selectf(x[i] > 0.0f, x[i], K * netrt_expm1f(x[i]))"); }
static void emit_silu(Kernel *k) { emit_unary(k, activation_expr(OP_SILU)); }
/* The exact form, PyTorch's default: x/2 (1 + erf(x / sqrt 2)). */
static void emit_gelu(Kernel *k) { emit_unary(k, "0.5f * x[i] * (1.0f + netrt_erff(x[i] * 0.70710678118654752f))"); }
/* relu6(x + 3) / 6 */
static void emit_hardsigmoid(Kernel *k) {
    emit_unary(k, "x[i] <= -3.0f ? 0.0f : x[i] >= 3.0f ? 1.0f : x[i] / 6.0f + 0.5f");
}
/* x * relu6(x + 3) / 6 */
static void emit_hardswish(Kernel *k) { emit_unary(k, activation_expr(OP_HARDSWISH)); }
/* log(1 + exp(x)), x itself above PyTorch's threshold 20 (beta 1): exp
 * cannot overflow, and log1p keeps exp(x) where it is tiny. */
static void emit_softplus(Kernel *k) { emit_unary(k, "netrt_selectf(x[i] > 20.0f, x[i], netrt_log1pf(netrt_expf(x[i])))"); }

/* Dropout is the identity at inference: a copy, or a view (OpRules.view). */
static void emit_dropout(Kernel *k) {
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    knumel(k, k->n->out[0]);
    kout(k, "    memcpy(y, x, NUMEL * sizeof *y);\n");
    kclose(k);
}

/* Dropout in training: element i of x kept, times 1 / (1 - p), or zeroed,
 * as netrt_dropout_mask says for this step's key of the node; the mask
 * (0 or the scale) is the second output, for the gradient.  Plain or
 * blocked alike (a blocked x's padded lanes stay 0). */
static void emit_dropout_train(Kernel *k) {
    const Node *n = k->n;
    double p = n->a.dropout.p;
    char buf[64];
    const char *loop = kopen_elementwise(k, (const char *const[]){"x"}, (const char *const[]){"y", "mask"}, 0, n->out[0]);
    kout(k, "    /* p = %g: dropped below %.0f of 2^32 */\n"
            "    const uint64_t key = netrt_dropout_key(train_seed, train_step, %d);\n"
            "    const netc_real scale = train_no_dropout ? 1.0f : (netc_real)(1.0 / (1.0 - %s));\n"
            "    const uint32_t below = train_no_dropout ? 0u : %lluu; /* --no-dropout: none */\n"
            "    %s {\n"
            "        mask[i] = netrt_dropout_mask(key, i, below, scale);\n"
            "        y[i] = x[i] * mask[i];\n"
            "    }\n",
         p, p * 4294967296.0, n->id, double_literal(buf, sizeof buf, p),
         (unsigned long long)(p * 4294967296.0 + 0.5), loop);
    kclose(k);
}

/* Softmax over dim 1. */
static void emit_softmax(Kernel *k) {
    const Shape *x = in_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->rank > 1 ? x->d[1] : 1}, {"S", shape_spatial(x)});
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int s = 0; s < S; s++) {\n"
            "            const netc_real *restrict xs = x + (size_t)n * C * S + s;\n"
            "            netc_real *restrict ys = y + (size_t)n * C * S + s;\n"
            "            netc_real m = xs[0];\n"
            "            for (int c = 1; c < C; c++) m = xs[(size_t)c * S] > m ? xs[(size_t)c * S] : m;\n"
            "            netc_real sum = 0.0f;\n"
            "            for (int c = 0; c < C; c++) {\n"
            "                const netc_real v = %s(xs[(size_t)c * S] - m);\n"
            "                ys[(size_t)c * S] = v;\n"
            "                sum += v;\n"
            "            }\n"
            "            const netc_real inv = 1.0f / sum;\n"
            "            for (int c = 0; c < C; c++) ys[(size_t)c * S] *= inv;\n"
            "        }\n"
            "    }\n",
         kmath(k, "exp"));
    kclose(k);
}

/* log softmax over dim 1: x - max - log(sum(exp(x - max))), the sum in double. */
static void emit_log_softmax(Kernel *k) {
    const Shape *x = in_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->rank > 1 ? x->d[1] : 1}, {"S", shape_spatial(x)});
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int s = 0; s < S; s++) {\n"
            "            const netc_real *restrict xs = x + (size_t)n * C * S + s;\n"
            "            netc_real *restrict ys = y + (size_t)n * C * S + s;\n"
            "            netc_real m = xs[0];\n"
            "            for (int c = 1; c < C; c++) m = xs[(size_t)c * S] > m ? xs[(size_t)c * S] : m;\n"
            "            double sum = 0.0;\n"
            "            for (int c = 0; c < C; c++) sum += exp((double)xs[(size_t)c * S] - m);\n"
            "            const netc_real shift = m + (netc_real)log(sum);\n"
            "            for (int c = 0; c < C; c++) ys[(size_t)c * S] = xs[(size_t)c * S] - shift;\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- training: elementwise gradients ---------------------------------------------- */

/* dx[i] = expr, from dy and input 1 named `from` (the op's output y or its
 * input x), and with a constant kv, the float K; `of` (or NULL) names the
 * op differentiated in a comment. */
static void emit_unary_grad(Kernel *k, const char *from, const char *expr, const double *kv, const char *of) {
    const char *loop = kopen_elementwise(k, (const char *const[]){"dy", from}, (const char *const[]){"dx"}, 0, k->n->out[0]);
    if (of) kout(k, "    /* the gradient of %s */\n", of);
    if (kv) {
        kdouble(k, "KD", *kv);
        kout(k, "    const netc_real K = (netc_real)KD;\n");
    }
    kout(k, "    %s dx[i] = %s;\n", loop, expr);
    kclose(k);
}

/* From the output y. */
/* NETC_TEST_FLIP_RELU_GRAD=1 in the environment flips the sign of this
 * gradient: a deliberately wrong rule, for the tests that netc gradcheck
 * catches one (tests/CMakeLists.txt); netc warns when it is set. */
static void emit_relu_grad(Kernel *k) {
    const char *flip = getenv("NETC_TEST_FLIP_RELU_GRAD");
    bool wrong = flip && strcmp(flip, "1") == 0;
    emit_unary_grad(k, "y", wrong ? "y[i] > 0.0f ? -dy[i] : 0.0f" : "y[i] > 0.0f ? dy[i] : 0.0f", NULL, NULL);
}
static void emit_tanh_grad(Kernel *k) { emit_unary_grad(k, "y", "dy[i] * (1.0f - y[i] * y[i])", NULL, NULL); }
static void emit_sigmoid_grad(Kernel *k) { emit_unary_grad(k, "y", "dy[i] * y[i] * (1.0f - y[i])", NULL, NULL); }

/* From the input x: dy * sigmoid(x), dy above the threshold (softplus_backward). */
static void emit_softplus_grad(Kernel *k) {
    emit_unary_grad(k, "x", "netrt_selectf(x[i] > 20.0f, dy[i], dy[i] * netrt_sigmoidf(x[i]))", NULL, NULL);
}

/* The gradients of softmax and log_softmax over dim 1, from the output y:
 * for each sample and position, a sum over the channels (in double), then
 * each channel's dx from it, `term` and `dx` written with c and acc. */
static void emit_channel_sum_grad(Kernel *k, const char *term, const char *dx) {
    const Shape *y = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "y"}, (const char *const[]){"dx"});
    KENUM(k, {"N", y->d[0]}, {"C", y->rank > 1 ? y->d[1] : 1}, {"S", shape_spatial(y)});
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int s = 0; s < S; s++) {\n"
            "            const size_t o = (size_t)n * C * S + s;\n"
            "            double acc = 0.0;\n"
            "            for (int c = 0; c < C; c++) acc += %s;\n"
            "            for (int c = 0; c < C; c++)\n"
            "                dx[o + (size_t)c * S] = %s;\n"
            "        }\n"
            "    }\n",
         term, dx);
    kclose(k);
}

/* Softmax: dx = y * (dy - sum over channels of dy * y). */
static void emit_softmax_grad(Kernel *k) {
    emit_channel_sum_grad(k, "(double)dy[o + (size_t)c * S] * y[o + (size_t)c * S]",
                          "y[o + (size_t)c * S] * (dy[o + (size_t)c * S] - (netc_real)acc)");
}

/* The gradients of the activations that act_grad computes, from dy and the
 * input x, as PyTorch's backward functions (hardtanh_backward for relu6,
 * leaky_relu_backward, elu_backward, silu_backward, gelu_backward with
 * approximate='none', hardsigmoid_backward, hardswish_backward); K is the
 * node's k. */
static const struct ActGrad {
    Op of;
    bool k; /* the expression reads the constant K (ActGradAttrs.k) */
    const char *expr;
} act_grads[] = {
    {OP_RELU6, false, "x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f"},
    {OP_LEAKY_RELU, true, "x[i] > 0.0f ? dy[i] : dy[i] * K"},
    {OP_ELU, true, "netrt_selectf(x[i] > 0.0f, dy[i], dy[i] * K * netrt_expf(x[i]))"},
    {OP_SILU, false, "dy[i] * netrt_sigmoidf(x[i]) * (1.0f + x[i] * (1.0f - netrt_sigmoidf(x[i])))"},
    /* d/dx x Phi(x) = Phi(x) + x phi(x) */
    {OP_GELU, false, "dy[i] * (0.5f * (1.0f + netrt_erff(x[i] * 0.70710678118654752f)) + "
                     "x[i] * 0.39894228040143268f * netrt_expf(-0.5f * x[i] * x[i]))"},
    {OP_HARDSIGMOID, false, "x[i] > -3.0f && x[i] < 3.0f ? dy[i] / 6.0f : 0.0f"},
    {OP_HARDSWISH, false, "x[i] < -3.0f ? 0.0f : x[i] <= 3.0f ? dy[i] * (x[i] / 3.0f + 0.5f) : dy[i]"},
};

static const struct ActGrad *act_grad_of(int of) {
    for (size_t i = 0; i < sizeof act_grads / sizeof act_grads[0]; i++)
        if ((int)act_grads[i].of == of) return &act_grads[i];
    return NULL;
}

static const char *check_act_grad(const Graph *g, const Node *n) {
    (void)g;
    return act_grad_of(n->a.actgrad.of) ? NULL : "not the gradient of an activation act_grad knows";
}

/* The gradient of the activation `of`, from its input x. */
static void emit_act_grad(Kernel *k) {
    const struct ActGrad *a = act_grad_of(k->n->a.actgrad.of);
    emit_unary_grad(k, "x", a->expr, a->k ? &k->n->a.actgrad.k : NULL, op_name(a->of));
}

/* Log-softmax: dx = dy - exp(y) * (the sum over channels of dy). */
static void emit_log_softmax_grad(Kernel *k) {
    emit_channel_sum_grad(k, "dy[o + (size_t)c * S]",
                          "dy[o + (size_t)c * S] - netrt_expf(y[o + (size_t)c * S]) * (netc_real)acc");
}

/* The activations act_grad differentiates: from the input. */
static void grad_act(GradCtx *c, Node *n, Value *dy) {
    Node site = *n;
    site.a = (Attrs){0};
    site.a.actgrad.of = n->op;
    site.a.actgrad.k = n->op == OP_LEAKY_RELU ? n->a.leaky.slope : n->op == OP_ELU ? n->a.elu.alpha : 0.0;
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_ACT_GRAD, &site, (Value *[]){dy, n->in[0]}, 2)));
}

static void dump_act_grad(const Node *n, FILE *f) {
    const struct ActGrad *a = act_grad_of(n->a.actgrad.of);
    fprintf(f, " of=%s", op_name((Op)n->a.actgrad.of));
    if (a && a->k) fprintf(f, " k=%g", n->a.actgrad.k);
}

/* ---- gradient rules: from the op's output ------------------------------------------- */

static void grad_from_output(GradCtx *c, Node *n, Value *dy, Op grad_op) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, grad_op, n, (Value *[]){dy, n->out[0]}, 2)));
}
static void grad_dropout_train(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_MUL, n, (Value *[]){dy, n->out[1]}, 2)));
}

static void grad_relu(GradCtx *c, Node *n, Value *dy) { grad_from_output(c, n, dy, OP_RELU_GRAD); }
static void grad_tanh(GradCtx *c, Node *n, Value *dy) { grad_from_output(c, n, dy, OP_TANH_GRAD); }
static void grad_sigmoid(GradCtx *c, Node *n, Value *dy) { grad_from_output(c, n, dy, OP_SIGMOID_GRAD); }
static void grad_softmax(GradCtx *c, Node *n, Value *dy) { grad_from_output(c, n, dy, OP_SOFTMAX_GRAD); }
static void grad_log_softmax(GradCtx *c, Node *n, Value *dy) { grad_from_output(c, n, dy, OP_LOG_SOFTMAX_GRAD); }
/* softplus's gradient reads its input. */
static void grad_softplus(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_SOFTPLUS_GRAD, n, (Value *[]){dy, n->in[0]}, 2)));
}

/* ---- attributes ----------------------------------------------------------------------- */

static void dump_leaky_relu(const Node *n, FILE *f) { fprintf(f, " slope=%g", n->a.leaky.slope); }
static void dump_elu(const Node *n, FILE *f) { fprintf(f, " alpha=%g", n->a.elu.alpha); }
/* dropout_train: the output and the mask, both shaped like x. */
static bool shape_dropout_train(Graph *g, Node *n) {
    (void)g;
    shape_like(n, 1, 0);
    return shape_like(n, 0, 0);
}

static void dump_dropout(const Node *n, FILE *f) { fprintf(f, " p=%g", n->a.dropout.p); }

/* ---- the entries ---------------------------------------------------------------------- */

#define NO_ATTRS "no attributes"
#define NO_MACS "elementwise: no multiply-accumulates counted"
#define NO_CHECK "any shape: the kernel loops over NUMEL elements"
#define MADE_BY_AUTODIFF "a gradient op: autodiff makes it"
#define GRAD_OP "a gradient op: not differentiated again"

/* An activation of one tensor: the builtin `name` with the argument x. */
#define UNARY_BUILTIN(name) {(name), {REQUIRED("x")}, false, build_unary}

const OpRules op_rules_RELU = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("relu"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_relu, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_relu,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* relu_grad is elementwise */
};

const OpRules op_rules_TANH = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("tanh"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_tanh, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_tanh,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* tanh_grad is elementwise */
};

const OpRules op_rules_SIGMOID = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("sigmoid"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_sigmoid, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_sigmoid,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* sigmoid_grad is elementwise */
};

const OpRules op_rules_RELU6 = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("relu6"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_relu6, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_act,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* act_grad is elementwise */
};

const OpRules op_rules_LEAKY_RELU = {
    .builtins = (const Builtin[]){{"leaky_relu", {REQUIRED("x"), DEFAULT_FLOAT("slope", 0.01)}, false, build_unary_k},
                                  {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_leaky_relu, .batched = op_batched_like_input0,
    .dump = dump_leaky_relu, .no_macs = NO_MACS, .grad = grad_act,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* act_grad is elementwise */
};

const OpRules op_rules_ELU = {
    .builtins = (const Builtin[]){{"elu", {REQUIRED("x"), DEFAULT_FLOAT("alpha", 1.0)}, false, build_unary_k}, {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_elu, .batched = op_batched_like_input0,
    .dump = dump_elu, .no_macs = NO_MACS, .grad = grad_act,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* act_grad is elementwise */
};

const OpRules op_rules_SILU = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("silu"), UNARY_BUILTIN("swish"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_silu, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_act,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* act_grad is elementwise */
};

const OpRules op_rules_GELU = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("gelu"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_gelu, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_act,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* act_grad is elementwise */
};

const OpRules op_rules_HARDSIGMOID = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("hardsigmoid"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_hardsigmoid, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_act,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* act_grad is elementwise */
};

const OpRules op_rules_HARDSWISH = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("hardswish"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_hardswish, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_act,
    .blocked_ok = true, .inplace_ok = true,
    .blocked_train = true, /* act_grad is elementwise */
};

const OpRules op_rules_SOFTPLUS = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("softplus"), {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_softplus, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_softplus,
    .blocked_ok = true, .inplace_ok = true,
};

const OpRules op_rules_DROPOUT = {
    .builtins = (const Builtin[]){{"dropout", {REQUIRED("x"), DEFAULT_FLOAT("p", 0.5)}, false, build_dropout}, {0}},
    .shape = shape_same, .no_check = NO_CHECK, .emit = emit_dropout, .batched = op_batched_like_input0,
    .dump = dump_dropout, .no_macs = NO_MACS, .no_grad = "trains as dropout_train", .train_as = OP_DROPOUT_TRAIN,
    .blocked_ok = true, .view = true,
    .blocked_train = true, /* dropout_train and its gradient's mul are elementwise */
};

const OpRules op_rules_SOFTMAX = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("softmax"), {0}},
    .shape = shape_softmax, .check = check_batch, .emit = emit_softmax, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_softmax,
};

const OpRules op_rules_LOG_SOFTMAX = {
    .builtins = (const Builtin[]){UNARY_BUILTIN("log_softmax"), {0}},
    .shape = shape_softmax, .check = check_batch, .emit = emit_log_softmax, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_log_softmax,
};

const OpRules op_rules_RELU_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dy_same, .no_check = NO_CHECK, .emit = emit_relu_grad, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_TANH_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dy_same, .no_check = NO_CHECK, .emit = emit_tanh_grad, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_SIGMOID_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dy_same, .no_check = NO_CHECK, .emit = emit_sigmoid_grad, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_SOFTPLUS_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dy_same, .no_check = NO_CHECK, .emit = emit_softplus_grad, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_SOFTMAX_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dy_same, .check = check_channels, .emit = emit_softmax_grad, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_DROPOUT_TRAIN = {
    .no_build = "autodiff's training copy of the forward makes it from dropout",
    .shape = shape_dropout_train, .no_check = NO_CHECK, .emit = emit_dropout_train, .batched = op_batched_like_input0,
    .output_names = (const char *const[]){"the output", "the mask"},
    .dump = dump_dropout, .no_macs = NO_MACS, .grad = grad_dropout_train,
    .blocked_ok = true, /* elementwise */
};

const OpRules op_rules_ACT_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dy_same, .check = check_act_grad, .emit = emit_act_grad, .batched = op_batched_like_input0,
    .dump = dump_act_grad, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* elementwise: training builds (layout_train) */
};

const OpRules op_rules_LOG_SOFTMAX_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dy_same, .check = check_channels, .emit = emit_log_softmax_grad,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};
