/* The fully connected layer, linear, and the gradients of its input and its
 * weight (its bias's gradient is bias_grad, defined with conv).
 *
 * Each op is its registry entry (ops.h): the builtins that make it, its
 * shape, emission and gradient, and the statements of what it lacks. */
#include "../opkit.h"

/* ---- builders --------------------------------------------------------------- */

static Node *build_linear(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "linear's input");
    Attrs a = {0};
    a.linear.out = arg_small(c, build_arg(c, 1), build_span(c, 1), "linear's output features", 1, INT32_MAX);
    a.linear.bias = arg_bool(c, build_arg(c, 2), build_span(c, 2), "linear's bias");
    /* An input that is not [D] gets a weight [out, C] that never fits: the
     * shape rule reports the input's shape. */
    const char *inst = build_instance(c, c->builtin->name);
    Value *in[3] = {x};
    in[1] = build_param(c, inst, "weight", 2, (int64_t[]){a.linear.out, x->shape.d[1]}, INIT_XAVIER);
    if (a.linear.bias) in[2] = build_param(c, inst, "bias", 1, &a.linear.out, INIT_ZERO);
    return build_node(c, OP_LINEAR, inst, in, a.linear.bias ? 3 : 2, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

static bool shape_linear(Graph *g, Node *n) {
    (void)g;
    if (n->in[0]->shape.rank != 2) {
        char b[128];
        diag_error(n->span, "linear expects a flat [D] input, got %s (flatten it first)",
                   value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    const int64_t *x = n->in[0]->shape.d;
    if (n->a.linear.out < 1) {
        diag_error(n->span, "linear needs at least one output feature, got %lld", (long long)n->a.linear.out);
        return false;
    }
    if (!shape_want_param(n, 1, 2, (int64_t[]){n->a.linear.out, x[1]}, "weight")) return false;
    if (n->nin == 3 && !shape_want_param(n, 2, 1, &n->a.linear.out, "bias")) return false;
    shape_set_out(n, 0, 2, (int64_t[]){x[0], n->a.linear.out});
    return true;
}

/* dw [K, D] from dy [N, K] and x [N, D]. */
static bool shape_linear_grad_weight(Graph *g, Node *n) {
    (void)g;
    shape_set_out(n, 0, 2, (int64_t[]){n->in[0]->shape.d[1], n->in[1]->shape.d[1]});
    return true;
}

/* dx [N, D] from dy [N, K] and w [K, D]. */
static bool shape_linear_grad_input(Graph *g, Node *n) {
    (void)g;
    shape_set_out(n, 0, 2, (int64_t[]){n->in[0]->shape.d[0], n->in[1]->shape.d[1]});
    return true;
}

/* ---- emission checks ------------------------------------------------------------ */

static bool rank_is(const Value *v, int rank) { return v->shape.rank == rank; }

static const char *check_batch(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    return x->rank < 1 || x->d[0] == 0 ? "needs a batch dimension" : NULL;
}

static const char *check_linear_grad(const Graph *g, const Node *n) {
    (void)g;
    return !rank_is(n->in[0], 2) || !rank_is(n->in[1], 2) ? "needs [N, K] and 2-d operands" : NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* One register block of the vector linear kernel: NB samples from n and KB
 * output features from k, NB x KB accumulators of V floats summing the
 * products of V input features at a time, each then summed across its
 * lanes, plus the D % V input features after the last whole vector, plus
 * the bias.  At `depth` levels of indentation (the block's loop body). */
static void linear_block(Kernel *k, int depth, const char *nb, const char *kb, bool bias) {
    char text[2048];
    snprintf(text, sizeof text,
             "vec acc[%s][%s];\n"
             "#pragma GCC unroll 16\n"
             "for (int i = 0; i < %s; i++)\n"
             "    #pragma GCC unroll 16\n"
             "    for (int j = 0; j < %s; j++) acc[i][j] = (vec){0};\n"
             "for (int d = 0; d < DV; d += V) {\n"
             "    vec wv[%s];\n"
             "    #pragma GCC unroll 16\n"
             "    for (int j = 0; j < %s; j++) wv[j] = *(const uvec *)(w + (size_t)(k + j) * D + d);\n"
             "    #pragma GCC unroll 16\n"
             "    for (int i = 0; i < %s; i++) {\n"
             "        const vec xv = *(const uvec *)(x + (size_t)(n + i) * D + d);\n"
             "        #pragma GCC unroll 16\n"
             "        for (int j = 0; j < %s; j++) acc[i][j] += wv[j] * xv;\n"
             "    }\n"
             "}\n"
             "for (int i = 0; i < %s; i++)\n"
             "    for (int j = 0; j < %s; j++) {\n"
             "        netc_real s = 0.0f;\n"
             "        for (int l = 0; l < V; l++) s += acc[i][j][l];\n"
             "        for (int d = DV; d < D; d++) s += x[(size_t)(n + i) * D + d] * w[(size_t)(k + j) * D + d];\n"
             "        y[(size_t)(n + i) * K + k + j] = %s;\n"
             "    }\n",
             nb, kb, nb, kb, kb, kb, nb, kb, nb, kb, bias ? "s + b[k + j]" : "s");
    klines(k, depth, text);
}

/* The vector kernel (targets with vectors): blocks of NB samples and KB
 * output features (NB x KB accumulators, KB weight vectors and an input
 * vector within the target's registers), so each weight vector loaded
 * serves NB samples; the rows and samples after the last whole block one at
 * a time.  At batch 1 the layer reads each weight once, as fast as memory
 * gives it. */
static void emit_linear_vec(Kernel *k) {
    const Node *n = k->n;
    const Shape *x = in_shape(k, 0), *w = in_shape(k, 1);
    bool bias = n->nin == 3;
    int v = k->target->vec, kb = 4, nb = (k->target->regs - kb - 2) / kb;
    if (nb > 4) nb = 4;
    if (nb < 1) nb = 1;
    int64_t ns = x->d[0], ks = w->d[0];
    if (ns < nb && !k->dyn) nb = (int)ns; /* a block of the whole batch */
    /* Work items: the KW = K / KB whole blocks of KB output features, then
     * the K % KB features after them one by one, each for every sample. */
    int64_t kw = ks / kb, items = kw + ks % kb;
    kopen_parallel(k, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"}, 0, 0, items);
    KENUM(k, {"N", ns}, {"D", shape_numel(x) / ns}, {"K", ks});
    kout(k, "    /* Blocking (%s): V = %d input features per vector; NB = %d samples x KB = %d output features\n"
            "     * in NB x KB accumulators of the target's %d vector registers.  Work items: the %lld blocks\n"
            "     * of KB output features, then the %lld features after them, items [t0, t1) here. */\n"
            "    enum { V = %d, NB = %d, KB = %d, DV = D / V * V }; /* DV: the input features in whole vectors */\n"
            "    enum { KW = K / KB }; /* whole blocks of output features */\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    typedef netc_real uvec __attribute__((vector_size(V * sizeof(netc_real)), aligned(sizeof(netc_real)))); /* unaligned */\n",
         k->target->name, v, nb, kb, k->target->regs, (long long)kw, (long long)(ks % kb), v, nb, kb);
    /* The blocks that occur: the samples' tail only if the batch may not be
     * whole blocks, the features' tail only if KB does not divide K. */
    bool n_tail = k->dyn || ns % nb != 0, k_tail = ks % kb != 0;
    for (int part = 0; part < 2; part++) {
        if (part == 1 && !n_tail) break;
        const char *rows = part == 0 ? "NB" : "1";
        if (part == 0)
            kout(k, "    int n = 0;\n"
                    "    for (; n + NB <= N; n += NB) {\n");
        else
            kout(k, "    for (; n < N; n++) { /* the samples after the last whole block */\n");
        kout(k, "        for (int64_t t = t0; t < t1; t++) {\n");
        if (k_tail) {
            kout(k, "            if (t < KW) {\n"
                    "                const int k = (int)t * KB;\n");
            linear_block(k, 4, rows, "KB", bias);
            kout(k, "            } else { /* an output feature after the last whole block */\n"
                    "                const int k = KW * KB + (int)(t - KW);\n");
            linear_block(k, 4, rows, "1", bias);
            kout(k, "            }\n");
        } else {
            kout(k, "            const int k = (int)t * KB;\n");
            linear_block(k, 3, rows, "KB", bias);
        }
        kout(k, "        }\n"
                "    }\n");
    }
    kclose(k);
}

static void emit_linear(Kernel *k) {
    const Node *n = k->n;
    const Shape *x = in_shape(k, 0), *w = in_shape(k, 1);
    bool bias = n->nin == 3;
    if (k->target && k->target->vec > 0) {
        emit_linear_vec(k);
        return;
    }
    kopen_parallel(k, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"}, 0, x->d[0], w->d[0]);
    KENUM(k, {"N", x->d[0]}, {"D", shape_numel(x) / x->d[0]}, {"K", w->d[0]});
    kout(k, "    /* work items: the N * K outputs, items [t0, t1) here */\n");
    if (k->dyn) kout(k, "    (void)N; /* in the count of items */\n");
    kout(k, "    for (int64_t t = t0; t < t1; t++) {\n"
            "        const int n = (int)(t / K), k = (int)(t %% K);\n"
            "        const netc_real *restrict xn = x + (size_t)n * D, *restrict wk = w + (size_t)k * D;\n"
            "        netc_real s = 0.0f;\n"
            "        for (int d = 0; d < D; d++) s += xn[d] * wk[d];\n");
    if (bias)
        kout(k, "        y[t] = s + b[k];\n");
    else
        kout(k, "        y[t] = s;\n");
    kout(k, "    }\n");
    kclose(k);
}

/* ---- training: linear gradients ---------------------------------------------------- */

/* dx[n] = dy[n] . w: each row of w scaled by dy[n][k]. */
static void emit_linear_grad_input(Kernel *k) {
    const Shape *dy = in_shape(k, 0), *w = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "w"}, (const char *const[]){"dx"});
    KENUM(k, {"N", dy->d[0]}, {"K", dy->d[1]}, {"D", w->d[1]});
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        netc_real *restrict dxn = dx + (size_t)n * D;\n"
            "        for (int d = 0; d < D; d++) dxn[d] = 0.0f;\n"
            "        for (int k = 0; k < K; k++) {\n"
            "            const netc_real a = dy[(size_t)n * K + k];\n"
            "            const netc_real *restrict wk = w + (size_t)k * D;\n"
            "            for (int d = 0; d < D; d++) dxn[d] += a * wk[d];\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* dw[k][d] = the sum over the batch of dy[n][k] * x[n][d], in double, a
 * block of columns at a time. */
static void emit_linear_grad_weight(Kernel *k) {
    const Shape *dy = in_shape(k, 0), *x = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dw"});
    KENUM(k, {"N", dy->d[0]}, {"K", dy->d[1]}, {"D", x->d[1]}, {"BLOCK", x->d[1] < 64 ? x->d[1] : 64});
    kout(k, "    for (int k = 0; k < K; k++) {\n"
            "        for (int d0 = 0; d0 < D; d0 += BLOCK) {\n"
            "            const int len = D - d0 < BLOCK ? D - d0 : BLOCK;\n"
            "            double acc[BLOCK] = {0};\n"
            "            for (int n = 0; n < N; n++) {\n"
            "                const double a = dy[(size_t)n * K + k];\n"
            "                const netc_real *restrict xn = x + (size_t)n * D + d0;\n"
            "                for (int j = 0; j < len; j++) acc[j] += a * xn[j];\n"
            "            }\n"
            "            for (int j = 0; j < len; j++) dw[(size_t)k * D + d0 + j] = (netc_real)acc[j];\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- gradient rules ------------------------------------------------------------------ */

/* The bias's gradient is bias_grad (conv.c), as for conv. */
static void grad_linear(GradCtx *c, Node *n, Value *dy) {
    Value *x = n->in[0], *w = n->in[1];
    if (grad_needed(c, x))
        grad_accum(c, x, grad_out0(grad_node(c, OP_LINEAR_GRAD_INPUT, n, (Value *[]){dy, w}, 2)));
    if (grad_needed(c, w))
        grad_accum(c, w, grad_out0(grad_node(c, OP_LINEAR_GRAD_WEIGHT, n, (Value *[]){dy, x}, 2)));
    if (n->nin == 3 && grad_needed(c, n->in[2]))
        grad_accum(c, n->in[2], grad_out0(grad_node(c, OP_BIAS_GRAD, n, &dy, 1)));
}

/* ---- attributes ----------------------------------------------------------------------- */

static void dump_linear(const Node *n, FILE *f) {
    fprintf(f, " out=%lld%s", (long long)n->a.linear.out, n->a.linear.bias ? "" : " nobias");
}

/* Multiply-accumulates per sample: every output feature meets D weights. */
static int64_t macs_linear(const Node *n) {
    const Shape *y = &n->out[0]->shape;
    int64_t per_out = shape_numel(y) / y->d[0];
    return per_out * n->in[1]->shape.d[1];
}

/* ---- the entries ---------------------------------------------------------------------- */

#define NO_MACS_TRAINING "a training op: not counted"
#define MADE_BY_AUTODIFF "a gradient op: autodiff makes it"
#define GRAD_OP "a gradient op: not differentiated again"
#define NO_DUMP_GRAD "the forward linear's attributes, copied by autodiff, are not printed"

const OpRules op_rules_LINEAR = {
    .builtins = (const Builtin[]){{"linear", {REQUIRED("x"), REQUIRED("out"), DEFAULT_BOOL("bias", true)}, false,
                                   build_linear},
                                  {0}},
    .shape = shape_linear, .check = check_batch, .emit = emit_linear, .batched = op_batched_like_input0,
    .dump = dump_linear, .macs = macs_linear, .grad = grad_linear,
};

const OpRules op_rules_LINEAR_GRAD_INPUT = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_linear_grad_input, .check = check_linear_grad, .emit = emit_linear_grad_input,
    .batched = op_batched_like_input0,
    .no_dump = NO_DUMP_GRAD, .no_macs = NO_MACS_TRAINING, .no_grad = GRAD_OP,
};

const OpRules op_rules_LINEAR_GRAD_WEIGHT = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_linear_grad_weight, .check = check_linear_grad, .emit = emit_linear_grad_weight,
    .batched = op_batched_never,
    .no_dump = NO_DUMP_GRAD, .no_macs = NO_MACS_TRAINING, .no_grad = GRAD_OP,
};
