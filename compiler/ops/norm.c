/* Normalizations: batchnorm (eval mode with running statistics, and in
 * training with batch statistics and its gradient), the init-time folding
 * of a batchnorm into the conv or linear before it, layernorm, instancenorm
 * and local response normalization, and the gradients of the last three.
 *
 * Each op is its registry entry (ops.h): the builtins that make it, its
 * shape, emission and gradient, and the statements of what it lacks. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../opkit.h"

/* ---- builders --------------------------------------------------------------- */

static Node *build_batchnorm(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "batchnorm's input");
    Attrs a = {0};
    a.bn.eps = arg_number(c, build_arg(c, 1), build_span(c, 1), "batchnorm's eps");
    a.bn.momentum = arg_number(c, build_arg(c, 2), build_span(c, 2), "batchnorm's momentum");
    if (!(a.bn.eps > 0)) build_fail(c, build_span(c, 1), "batchnorm's eps must be positive, got %g", a.bn.eps);
    if (!(a.bn.momentum >= 0 && a.bn.momentum <= 1))
        build_fail(c, build_span(c, 2), "batchnorm's momentum must be in [0, 1], got %g", a.bn.momentum);
    if (x->shape.rank != 4 && x->shape.rank != 2) {
        /* let the shape rule word the message */
        Value *in[5] = {x, x, x, x, x};
        build_node(c, OP_BATCHNORM, c->builtin->name, in, 5, &a);
    }
    const char *inst = build_instance(c, c->builtin->name);
    int64_t ch = x->shape.d[1];
    Value *in[5] = {x};
    in[1] = build_param(c, inst, "weight", 1, &ch, INIT_ONE);
    in[2] = build_param(c, inst, "bias", 1, &ch, INIT_ZERO);
    in[3] = build_param(c, inst, "running_mean", 1, &ch, INIT_ZERO);
    in[4] = build_param(c, inst, "running_var", 1, &ch, INIT_ONE);
    return build_node(c, OP_BATCHNORM, inst, in, 5, &a);
}

/* layernorm(x, eps, affine) and instancenorm(x, eps, affine): weight (ones)
 * and bias (zeros) shaped like a sample, or [C]. */
static Node *build_norm(BuildCtx *c) {
    const char *name = c->builtin->name;
    char what[64];
    snprintf(what, sizeof what, "%s's input", name);
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), what);
    Attrs a = {0};
    snprintf(what, sizeof what, "%s's eps", name);
    a.norm.eps = arg_number(c, build_arg(c, 1), build_span(c, 1), what);
    if (!(a.norm.eps > 0) || !isfinite(a.norm.eps))
        build_fail(c, build_span(c, 1), "%s must be positive, got %g", what, a.norm.eps);
    snprintf(what, sizeof what, "%s's affine", name);
    a.norm.affine = arg_bool(c, build_arg(c, 2), build_span(c, 2), what);
    bool instance = c->op == OP_INSTANCENORM; /* its shape rule checks the input's rank */
    const char *inst = build_instance(c, name);
    Value *in[3] = {x};
    if (a.norm.affine) {
        int rank = instance ? 1 : x->shape.rank - 1;
        const int64_t *d = instance ? &x->shape.d[1] : x->shape.d + 1;
        in[1] = build_param(c, inst, "weight", rank, d, INIT_ONE);
        in[2] = build_param(c, inst, "bias", rank, d, INIT_ZERO);
    }
    return build_node(c, c->op, inst, in, a.norm.affine ? 3 : 1, &a);
}

static Node *build_lrn(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "lrn's input");
    Attrs a = {0};
    a.lrn.size = arg_small(c, build_arg(c, 1), build_span(c, 1), "lrn's size", 1, INT32_MAX);
    static const char *const names[] = {"", "", "lrn's alpha", "lrn's beta", "lrn's k"};
    double *v[] = {NULL, NULL, &a.lrn.alpha, &a.lrn.beta, &a.lrn.k};
    for (int i = 2; i < 5; i++) {
        *v[i] = arg_number(c, build_arg(c, i), build_span(c, i), names[i]);
        if (!isfinite(*v[i])) build_fail(c, build_span(c, i), "%s must be finite, got %g", names[i], *v[i]);
    }
    if (!(a.lrn.k > 0)) build_fail(c, build_span(c, 4), "lrn's k must be positive, got %g", a.lrn.k);
    if (a.lrn.alpha < 0) build_fail(c, build_span(c, 2), "lrn's alpha must not be negative, got %g", a.lrn.alpha);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_LRN, inst, &x, 1, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

static bool shape_batchnorm(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if (x->rank != 4 && x->rank != 2) {
        char b[128];
        diag_error(n->span, "batchnorm expects a [C, H, W] or [D] input, got %s", value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    static const char *names[] = {"", "weight", "bias", "running_mean", "running_var"};
    for (int i = 1; i < 5; i++)
        if (!shape_want_param(n, i, 1, &x->d[1], names[i])) return false;
    n->out[0]->shape = *x;
    return true;
}

/* layernorm: weight and bias shaped like one sample. */
static bool shape_layernorm(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if (x->rank < 2 || n->nin == 2) {
        DIAG_INTERNAL("layernorm needs [N, ...] and both or neither of weight and bias");
        return false;
    }
    for (int i = 1; i < n->nin; i++)
        if (!shape_want_param(n, i, x->rank - 1, x->d + 1, i == 1 ? "weight" : "bias")) return false;
    n->out[0]->shape = *x;
    return true;
}

static bool shape_instancenorm(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    if (n->nin == 2) {
        DIAG_INTERNAL("instancenorm needs both or neither of weight and bias");
        return false;
    }
    for (int i = 1; i < n->nin; i++)
        if (!shape_want_param(n, i, 1, &n->in[0]->shape.d[1], i == 1 ? "weight" : "bias")) return false;
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

static bool shape_lrn(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    if (n->a.lrn.size < 1) {
        diag_error(n->span, "lrn's size must be at least 1, got %d", n->a.lrn.size);
        return false;
    }
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

static bool shape_bn_fold(Graph *g, Node *n) {
    (void)g;
    const Shape *w = &n->in[0]->shape;
    n->out[0]->shape = *w;
    shape_set_out(n, 1, 1, &w->d[0]);
    return true;
}

static bool shape_batchnorm_train(Graph *g, Node *n) {
    if (!shape_batchnorm(g, n)) return false;
    shape_set_out(n, 1, 1, &n->in[0]->shape.d[1]);
    shape_set_out(n, 2, 1, &n->in[0]->shape.d[1]);
    return true;
}

static bool shape_batchnorm_grad(Graph *g, Node *n) {
    (void)g;
    shape_like(n, 0, 1);
    shape_like(n, 1, 2);
    return shape_like(n, 2, 2);
}

/* layernorm_grad_affine and instancenorm_grad_affine: dweight and dbias
 * shaped like the weight (input 2). */
static bool shape_norm_grad_affine(Graph *g, Node *n) {
    (void)g;
    shape_like(n, 0, 2);
    return shape_like(n, 1, 2);
}

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_channels(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank < 2 ? "needs [N, C, ...]" : NULL;
}

/* A blocked x (the layout pass) is [N, C, H, W] and gives a y blocked alike. */
static const char *check_batchnorm(const Graph *g, const Node *n) {
    const char *why = check_channels(g, n);
    if (why) return why;
    if (n->in[0]->cblock != n->out[0]->cblock) return "its output must be blocked as its input";
    return n->in[0]->cblock && n->in[0]->shape.rank != 4 ? "a blocked input must be [N, C, H, W]" : NULL;
}

static const char *check_layernorm(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank < 2 || n->nin == 2 ? "needs [N, ...] and both or neither of weight and bias" : NULL;
}

/* instancenorm and lrn. */
static const char *check_nchw(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank != 4 || n->nin == 2 ? "needs [N, C, H, W] (and both or neither of weight and bias)"
                                                     : NULL;
}

/* The gradients of layernorm and instancenorm: plain dy and x of one shape,
 * [N, ...] (layernorm) or [N, C, H, W] (instancenorm), and a weight (input
 * 2) of the forward op's. */
static const char *check_norm_grad(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[1]->shape;
    bool instance = n->op == OP_INSTANCENORM_GRAD || n->op == OP_INSTANCENORM_GRAD_AFFINE;
    if (x->rank < 2 || (instance && x->rank != 4) || !shape_eq(x, &n->in[0]->shape))
        return "needs dy and x of one shape, [N, C, H, W] for instancenorm";
    if (n->in[0]->cblock || n->in[1]->cblock) return "needs plain dy and x";
    if (n->nin < 3) return NULL;
    int64_t want = instance ? x->d[1] : shape_numel(x) / x->d[0];
    return shape_numel(&n->in[2]->shape) != want ? "needs a weight per channel (instancenorm) or per element" : NULL;
}

static const char *check_bn_fold(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    return x->rank < 1 || x->d[0] == 0 ? "needs a weight with an output dimension" : NULL;
}

static const char *check_batchnorm_grad(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if ((n->nin == 6) != n->a.bn.relu) return "a fused relu (fuse_train) needs the relu's output, and only then";
    if (n->a.bn.relu && (!n->in[1]->cblock || n->in[5]->cblock != n->in[1]->cblock ||
                         !shape_eq(&n->in[5]->shape, x)))
        return "a fused relu needs blocked dy, x and y alike";
    return n->in[1]->shape.rank < 2 || !shape_eq(x, &n->in[1]->shape) ? "needs dy and x of one shape [N, C, ...]"
                                                                       : NULL;
}

static const char *check_batchnorm_train(const Graph *g, const Node *n) {
    const char *why = check_channels(g, n);
    if (why) return why;
    if (n->nin == 6 && (!n->a.bn.relu || n->in[5]->cblock != n->in[0]->cblock ||
                        !shape_eq(&n->in[5]->shape, &n->in[0]->shape)))
        return "a residual (fuse_train) comes with the relu, blocked as x";
    return n->a.bn.relu && !n->in[0]->cblock ? "a fused relu (fuse_train) needs a blocked x" : NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* batchnorm (eval mode). */
/* batchnorm of a blocked (NCHW[V]c) x (the layout pass): the V channels of
 * a block's m, s and t side by side in vectors (the padded lanes 0), each
 * element computed as the plain kernel does, so with the same bits. */
static void emit_batchnorm_blocked(Kernel *k) {
    const Value *xv = k->n->in[0];
    const Shape *x = &xv->shape;
    kopen(k, (const char *const[]){"x", "gamma", "beta", "mean", "var"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"V", xv->cblock});
    kdouble(k, "EPS", k->n->a.bn.eps);
    kout(k, "    enum { CB = (C + V - 1) / V }; /* x and y are NCHW%dc */\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    for (int cb = 0; cb < CB; cb++) {\n"
            "        /* y = (x - mean) / sqrt(var + eps) * gamma + beta */\n"
            "        vec m = {0}, s = {0}, t = {0};\n"
            "        for (int v = 0; v < V && cb * V + v < C; v++) {\n"
            "            const int c = cb * V + v;\n"
            "            m[v] = mean[c];\n"
            "            s[v] = (netc_real)(1.0 / sqrt((double)var[c] + EPS)) * gamma[c];\n"
            "            t[v] = beta[c];\n"
            "        }\n"
            "        for (int n = 0; n < N; n++) {\n",
         xv->cblock);
    if (!(k->inplace & 1)) kout(k, "            const netc_real *restrict xc = x + ((size_t)n * CB + cb) * S * V;\n");
    kout(k, "            netc_real *restrict yc = y + ((size_t)n * CB + cb) * S * V;\n"
            "            for (int i = 0; i < S; i++) *(vec *)(yc + (size_t)i * V) = (*(const vec *)(%s + (size_t)i * V) - m) * s + t;\n"
            "        }\n"
            "    }\n",
         k->inplace & 1 ? "yc" : "xc"); /* in place: x is y (Kernel.inplace) */
    kclose(k);
}

static void emit_batchnorm(Kernel *k) {
    const Shape *x = in_shape(k, 0);
    if (k->n->in[0]->cblock) {
        emit_batchnorm_blocked(k);
        return;
    }
    kopen(k, (const char *const[]){"x", "gamma", "beta", "mean", "var"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    kdouble(k, "EPS", k->n->a.bn.eps);
    kout(k, "    for (int c = 0; c < C; c++) {\n"
            "        /* y = (x - mean) / sqrt(var + eps) * gamma + beta */\n"
            "        const netc_real m = mean[c];\n"
            "        const netc_real s = (netc_real)(1.0 / sqrt((double)var[c] + EPS)) * gamma[c];\n"
            "        const netc_real t = beta[c];\n"
            "        for (int n = 0; n < N; n++) {\n");
    if (!(k->inplace & 1)) kout(k, "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n");
    kout(k, "            netc_real *restrict yc = y + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) yc[i] = (%s[i] - m) * s + t;\n"
            "        }\n"
            "    }\n",
         k->inplace & 1 ? "yc" : "xc"); /* in place: x is y (Kernel.inplace) */
    kclose(k);
}

/* batchnorm_eval_grad: dx = dy * s per channel, s = weight / sqrt(var + eps)
 * computed as emit_batchnorm computes it (a frozen batchnorm's gradient,
 * transfer learning); dy and dx plain, or blocked alike (NCHW[V]c, the
 * padded lanes of s 0). */
static void emit_batchnorm_eval_grad(Kernel *k) {
    const Value *dyv = k->n->in[0];
    const Shape *x = &dyv->shape;
    int V = dyv->cblock ? dyv->cblock : 1;
    kopen(k, (const char *const[]){"dy", "gamma", "var"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"V", V});
    kdouble(k, "EPS", k->n->a.bn.eps);
    kout(k, "    enum { CB = (C + V - 1) / V }; /* V > 1: dy and dx are NCHW[V]c */\n"
            "    for (int cb = 0; cb < CB; cb++) {\n"
            "        netc_real s[V];\n"
            "        for (int v = 0; v < V; v++) {\n"
            "            const int c = cb * V + v;\n"
            "            s[v] = c < C ? (netc_real)(1.0 / sqrt((double)var[c] + EPS)) * gamma[c] : 0.0f;\n"
            "        }\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const netc_real *restrict g = dy + ((size_t)n * CB + cb) * S * V;\n"
            "            netc_real *restrict d = dx + ((size_t)n * CB + cb) * S * V;\n"
            "            for (int i = 0; i < S; i++)\n"
            "                for (int v = 0; v < V; v++) d[(size_t)i * V + v] = g[(size_t)i * V + v] * s[v];\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* The mean m and 1 / sqrt(var + eps) `is` of the S values at xs, the
 * variance biased, in double: layernorm's and instancenorm's forward
 * kernel and their gradients, so that the gradients see the statistics the
 * forward pass used, to the bit. */
static const char norm_stats[] =
    "double sum = 0.0;\n"
    "for (int i = 0; i < S; i++) sum += xs[i];\n"
    "const double mean = sum / S;\n"
    "double q = 0.0;\n"
    "for (int i = 0; i < S; i++) q += (xs[i] - mean) * (xs[i] - mean);\n"
    "const netc_real m = (netc_real)mean, is = (netc_real)(1.0 / sqrt(q / S + EPS));\n";

/* Mean and biased variance of each of the N * G runs of S values, in double;
 * y = (x - mean) / sqrt(var + eps), then times weight plus bias: per element
 * of the sample (layernorm, G = 1) or per channel (instancenorm, G = C). */
static void emit_norm(Kernel *k, int64_t groups, bool per_channel) {
    const Node *n = k->n;
    const Shape *x = in_shape(k, 0);
    bool affine = n->nin == 3;
    kopen(k, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"G", groups}, {"S", shape_numel(x) / x->d[0] / groups});
    kdouble(k, "EPS", n->a.norm.eps);
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int g = 0; g < G; g++) {\n"
            "            const netc_real *restrict xs = x + ((size_t)n * G + g) * S;\n"
            "            netc_real *restrict ys = y + ((size_t)n * G + g) * S;\n");
    klines(k, 3, norm_stats);
    if (!affine)
        kout(k, "            for (int i = 0; i < S; i++) ys[i] = (xs[i] - m) * is;\n");
    else if (per_channel)
        kout(k, "            const netc_real s = is * w[g], t = b[g];\n"
                "            for (int i = 0; i < S; i++) ys[i] = (xs[i] - m) * s + t;\n");
    else
        kout(k, "            for (int i = 0; i < S; i++) ys[i] = (xs[i] - m) * is * w[i] + b[i];\n");
    kout(k, "        }\n"
            "    }\n");
    kclose(k);
}

static void emit_layernorm(Kernel *k) { emit_norm(k, 1, false); }
static void emit_instancenorm(Kernel *k) { emit_norm(k, in_shape(k, 0)->d[1], true); }

/* The input gradient of layernorm (G = 1, a weight per element) and
 * instancenorm (G = C, a weight per channel), as PyTorch's: over each of the
 * N * G runs of S values, with xhat = (x - m) * is and g = dy * weight (dy
 * without affine),
 *   dx = is * (g - mean(g) - xhat * mean(g * xhat)),
 * the means in double. */
static void emit_norm_grad(Kernel *k, int64_t groups, bool per_channel) {
    const Shape *x = in_shape(k, 1);
    const char *wt = k->n->nin < 3 ? "" : per_channel ? " * w[g]" : " * w[i]";
    kopen(k, (const char *const[]){"dy", "x", "w"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"G", groups}, {"S", shape_numel(x) / x->d[0] / groups});
    kdouble(k, "EPS", k->n->a.norm.eps);
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int g = 0; g < G; g++) {\n"
            "            const netc_real *restrict xs = x + ((size_t)n * G + g) * S;\n"
            "            const netc_real *restrict dys = dy + ((size_t)n * G + g) * S;\n"
            "            netc_real *restrict dxs = dx + ((size_t)n * G + g) * S;\n");
    klines(k, 3, norm_stats);
    kout(k, "            double sg = 0.0, sgx = 0.0; /* sums of g and g * xhat */\n"
            "            for (int i = 0; i < S; i++) {\n"
            "                const double gi = (double)dys[i]%s;\n"
            "                sg += gi;\n"
            "                sgx += gi * ((xs[i] - m) * is);\n"
            "            }\n"
            "            const double a = sg / S, b = sgx / S;\n"
            "            for (int i = 0; i < S; i++) {\n"
            "                const double xhat = (xs[i] - m) * is;\n"
            "                dxs[i] = (netc_real)(is * ((double)dys[i]%s - a - xhat * b));\n"
            "            }\n"
            "        }\n"
            "    }\n",
         wt, wt);
    kclose(k);
}

static void emit_layernorm_grad(Kernel *k) { emit_norm_grad(k, 1, false); }
static void emit_instancenorm_grad(Kernel *k) { emit_norm_grad(k, in_shape(k, 1)->d[1], true); }

/* layernorm's weight and bias gradients, each shaped like a sample:
 * dw[i] = the sum over the batch of dy * xhat, db[i] = that of dy, in
 * double; each sample's statistics first, as the forward kernel computes
 * them (NB: the compiled batch, the most samples a run has). */
static void emit_layernorm_grad_affine(Kernel *k) {
    const Shape *x = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "x", "w"}, (const char *const[]){"dw", "db"});
    KENUM(k, {"N", x->d[0]}, {"NB", x->d[0]}, {"S", shape_numel(x) / x->d[0]});
    kdouble(k, "EPS", k->n->a.norm.eps);
    kout(k, "    (void)w; /* read for its shape only */\n"
            "    netc_real mean_of[NB], is_of[NB]; /* each sample's mean and 1 / std */\n"
            "    for (int n = 0; n < N; n++) {\n"
            "        const netc_real *restrict xs = x + (size_t)n * S;\n");
    klines(k, 2, norm_stats);
    kout(k, "        mean_of[n] = m;\n"
            "        is_of[n] = is;\n"
            "    }\n"
            "    for (int i = 0; i < S; i++) {\n"
            "        double sw = 0.0, sb = 0.0;\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const double d = dy[(size_t)n * S + i];\n"
            "            sw += d * ((x[(size_t)n * S + i] - mean_of[n]) * is_of[n]);\n"
            "            sb += d;\n"
            "        }\n"
            "        dw[i] = (netc_real)sw;\n"
            "        db[i] = (netc_real)sb;\n"
            "    }\n");
    kclose(k);
}

/* instancenorm's weight and bias gradients, one per channel: dw[c] = the
 * sum over the batch and H x W of dy * xhat, db[c] = that of dy, in double,
 * each (sample, channel)'s statistics as the forward kernel computes them. */
static void emit_instancenorm_grad_affine(Kernel *k) {
    const Shape *x = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "x", "w"}, (const char *const[]){"dw", "db"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    kdouble(k, "EPS", k->n->a.norm.eps);
    kout(k, "    (void)w; /* read for its shape only */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        double sw = 0.0, sb = 0.0;\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const netc_real *restrict xs = x + ((size_t)n * C + c) * S;\n"
            "            const netc_real *restrict dys = dy + ((size_t)n * C + c) * S;\n");
    klines(k, 3, norm_stats);
    kout(k, "            for (int i = 0; i < S; i++) {\n"
            "                sw += (double)dys[i] * ((xs[i] - m) * is);\n"
            "                sb += dys[i];\n"
            "            }\n"
            "        }\n"
            "        dw[c] = (netc_real)sw;\n"
            "        db[c] = (netc_real)sb;\n"
            "    }\n");
    kclose(k);
}

/* torch.nn.LocalResponseNorm: the squares summed over the channel window
 * [c - SIZE/2, c + (SIZE-1)/2] (zeros beyond the edges), divided by SIZE. */
static void emit_lrn(Kernel *k) {
    const Node *n = k->n;
    const Shape *x = in_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"SIZE", n->a.lrn.size});
    kdouble(k, "ALPHA", n->a.lrn.alpha);
    kdouble(k, "BETA", n->a.lrn.beta);
    kdouble(k, "KK", n->a.lrn.k);
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int c = 0; c < C; c++) {\n"
            "            const int c0 = c - SIZE / 2 > 0 ? c - SIZE / 2 : 0;\n"
            "            const int c1 = c + (SIZE - 1) / 2 < C - 1 ? c + (SIZE - 1) / 2 : C - 1;\n"
            "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
            "            netc_real *restrict yc = y + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) {\n"
            "                double q = 0.0;\n"
            "                for (int j = c0; j <= c1; j++) {\n"
            "                    const double v = x[((size_t)n * C + j) * S + i];\n"
            "                    q += v * v;\n"
            "                }\n"
            "                yc[i] = (netc_real)(xc[i] / pow(KK + ALPHA * q / SIZE, BETA));\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* lrn's gradient: with d_c = k + alpha / size * (the sum of x^2 over c's
 * window), y_c = x_c d_c^-beta, and channel i in the windows of the c in
 * [i - (size - 1) / 2, i + size / 2]:
 *   dx_i = dy_i d_i^-beta - 2 alpha beta / size * x_i * sum over those c of
 *          dy_c x_c d_c^(-beta - 1),
 * in double, d recomputed from x as the forward kernel computes it. */
static void emit_lrn_grad(Kernel *k) {
    const Node *n = k->n;
    const Shape *x = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"SIZE", n->a.lrn.size});
    kdouble(k, "ALPHA", n->a.lrn.alpha);
    kdouble(k, "BETA", n->a.lrn.beta);
    kdouble(k, "KK", n->a.lrn.k);
    kout(k, "    double d[C], t[C]; /* one position's d_c and dy_c x_c d_c^(-beta - 1) */\n"
            "    for (int n = 0; n < N; n++) {\n"
            "        const netc_real *restrict xn = x + (size_t)n * C * S, *restrict dyn = dy + (size_t)n * C * S;\n"
            "        netc_real *restrict dxn = dx + (size_t)n * C * S;\n"
            "        for (int i = 0; i < S; i++) {\n"
            "            for (int c = 0; c < C; c++) {\n"
            "                const int c0 = c - SIZE / 2 > 0 ? c - SIZE / 2 : 0;\n"
            "                const int c1 = c + (SIZE - 1) / 2 < C - 1 ? c + (SIZE - 1) / 2 : C - 1;\n"
            "                double q = 0.0;\n"
            "                for (int j = c0; j <= c1; j++) {\n"
            "                    const double v = xn[(size_t)j * S + i];\n"
            "                    q += v * v;\n"
            "                }\n"
            "                d[c] = KK + ALPHA * q / SIZE;\n"
            "                t[c] = (double)dyn[(size_t)c * S + i] * xn[(size_t)c * S + i] * pow(d[c], -BETA - 1.0);\n"
            "            }\n"
            "            for (int c = 0; c < C; c++) {\n"
            "                const int c0 = c - (SIZE - 1) / 2 > 0 ? c - (SIZE - 1) / 2 : 0;\n"
            "                const int c1 = c + SIZE / 2 < C - 1 ? c + SIZE / 2 : C - 1;\n"
            "                double u = 0.0;\n"
            "                for (int j = c0; j <= c1; j++) u += t[j];\n"
            "                dxn[(size_t)c * S + i] = (netc_real)(dyn[(size_t)c * S + i] * pow(d[c], -BETA) -\n"
            "                                                 2.0 * ALPHA * BETA / SIZE * xn[(size_t)c * S + i] * u);\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

static void grad_lrn(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_LRN_GRAD, n, (Value *[]){dy, n->in[0]}, 2)));
}

/* bn_fold (init time).
 * s = gamma / sqrt(var + eps) in double; w' = w * s[k] over the first
 * (output channel) dimension; b' = (b - mean) * s + beta, b = 0 if absent. */
static void emit_bn_fold(Kernel *k) {
    const Node *n = k->n;
    bool bias = n->nin == 6;
    const Shape *w = in_shape(k, 0);
    kopen(k,
          bias ? (const char *const[]){"w", "b", "gamma", "beta", "mean", "var"}
               : (const char *const[]){"w", "gamma", "beta", "mean", "var"},
          (const char *const[]){"wf", "bf"});
    KENUM(k, {"K", w->d[0]}, {"P", shape_numel(w) / w->d[0]});
    kdouble(k, "EPS", n->a.bn.eps);
    kout(k, "    for (int k = 0; k < K; k++) {\n"
            "        const double s = gamma[k] / sqrt((double)var[k] + EPS);\n"
            "        for (int i = 0; i < P; i++) wf[(size_t)k * P + i] = (netc_real)(w[(size_t)k * P + i] * s);\n");
    if (bias)
        kout(k, "        bf[k] = (netc_real)(((double)b[k] - mean[k]) * s + beta[k]);\n");
    else
        kout(k, "        bf[k] = (netc_real)(-(double)mean[k] * s + beta[k]);\n");
    kout(k, "    }\n");
    kclose(k);
}

/* ---- training: batchnorm with batch statistics ----------------------------------- */

/* The constants and vector types of the phases of the blocked batchnorm
 * kernels: C channels of S values per sample, V per block, CB blocks. */
static void bn_phase_consts(Kernel *k, const Value *xv, bool sums) {
    const Shape *x = &xv->shape;
    kout(k, "    enum { C = %lld, S = %lld, V = %d, CB = (C + V - 1) / V };\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n",
         (long long)x->d[1], (long long)shape_spatial(x), xv->cblock);
    if (sums) kout(k, "    typedef double dvec __attribute__((vector_size(V * sizeof(double))));\n");
}

/* batchnorm_train of a blocked x (layout_train), in three phases over the
 * (sample, channel block) pairs, each a netrt_parallel split the way the
 * convs around split theirs (by samples), so each thread reads what it
 * wrote: the sums of x per pair (a block's V channels side by side, in
 * doubles), combined in sample order into the mean; the sums of squared
 * deviations, likewise into the variance; then y.  Each element's
 * arithmetic is the plain kernel's; the sums are per sample first, so the
 * last bits of the statistics may differ from it, and are the same at any
 * thread count.  The padded lanes of y are 0 (their scale and shift are). */
static void emit_batchnorm_train_blocked(Kernel *k) {
    const Value *xv = k->n->in[0];
    const Shape *x = &xv->shape;
    int v = xv->cblock;
    bool relu = k->n->a.bn.relu;
    int64_t cb = (x->d[1] + v - 1) / v;
    unsigned wr = op_rules(k->n->op)->written_inputs;
    const char *fn = k->fname;
    kout(k, "/* %s's partial sums, V per (sample, channel block), and its mean, scale\n"
            " * and shift per channel (the padded ones 0) */\n"
            "static double %s_part[%lld], %s_mean[%lld];\n"
            "static netc_real %s_coef[3][%lld];\n",
         fn, fn, (long long)(x->d[0] * cb * v), fn, (long long)(cb * v), fn, (long long)(cb * v));
    if (k->mpi) kout(k, "static double %s_chansq[%lld]; /* per channel, for --sync-batchnorm */\n", fn, (long long)(cb * v));
    kout(k, "\n");
    const char *none[] = {NULL, NULL, NULL, NULL, NULL};
    kphase_open(k, "sum", (const char *const[]){"x", NULL, NULL, NULL, NULL, NULL}, none, wr);
    bn_phase_consts(k, xv, true);
    kout(k, "    for (int64_t t = t0; t < t1; t++) { /* sample t / CB, block t %% CB */\n"
            "        const netc_real *restrict xc = x + (size_t)t * S * V;\n"
            "        dvec s = {0};\n"
            "        for (int i = 0; i < S; i++) s += __builtin_convertvector(*(const vec *)(xc + (size_t)i * V), dvec);\n"
            "        memcpy(%s_part + (size_t)t * V, &s, sizeof s);\n"
            "    }\n",
         fn);
    kclose(k);
    kphase_open(k, "squares", (const char *const[]){"x", NULL, NULL, NULL, NULL, NULL}, none, wr);
    bn_phase_consts(k, xv, true);
    kout(k, "    for (int64_t t = t0; t < t1; t++) {\n"
            "        const netc_real *restrict xc = x + (size_t)t * S * V;\n"
            "        dvec m, q = {0};\n"
            "        memcpy(&m, %s_mean + (size_t)(t %% CB) * V, sizeof m);\n"
            "        for (int i = 0; i < S; i++) {\n"
            "            const dvec d = __builtin_convertvector(*(const vec *)(xc + (size_t)i * V), dvec) - m;\n"
            "            q += d * d;\n"
            "        }\n"
            "        memcpy(%s_part + (size_t)t * V, &q, sizeof q);\n"
            "    }\n",
         fn, fn);
    kclose(k);
    bool res = k->n->nin == 6; /* a residual added before the relu (fuse_train) */
    kphase_open(k, "apply", (const char *const[]){"x", NULL, NULL, NULL, NULL, res ? "res" : NULL},
                (const char *const[]){"y", NULL, NULL}, wr);
    bn_phase_consts(k, xv, false);
    if (relu) kout(k, "    typedef int ivec __attribute__((vector_size(V * sizeof(int))));\n");
    kout(k, "    for (int64_t t = t0; t < t1; t++) {\n"
            "        const int cb = (int)(t %% CB);\n"
            "        vec mf, sc, bt;\n"
            "        memcpy(&mf, %s_coef[0] + cb * V, sizeof mf);\n"
            "        memcpy(&sc, %s_coef[1] + cb * V, sizeof sc);\n"
            "        memcpy(&bt, %s_coef[2] + cb * V, sizeof bt);\n"
            "        const netc_real *restrict xc = x + (size_t)t * S * V;\n"
            "        netc_real *restrict yc = y + (size_t)t * S * V;\n"
            "        /* y = (x - mean) * invstd * gamma + beta%s */\n"
            "        for (int i = 0; i < S; i++) {\n"
            "            %svec a = (*(const vec *)(xc + (size_t)i * V) - mf) * sc + bt;\n"
            "%s%s"
            "            *(vec *)(yc + (size_t)i * V) = a;\n"
            "        }\n"
            "    }\n",
         fn, fn, fn, res ? ", plus the residual, then relu (fuse_train)" : relu ? ", then relu (fuse_train)" : "",
         relu ? "" : "const ",
         res ? "            a += *(const vec *)(res + (size_t)t * S * V + (size_t)i * V);\n" : "",
         relu ? "            a = (vec)((ivec)a & ~(a < 0.0f)); /* relu: x < 0 ? 0 : x */\n" : "");
    kclose(k);

    const char *in[] = {"x", "gamma", "beta", "running_mean", "running_var", "res"}, *out[] = {"y", "mean", "invstd"};
    kopen_rw(k, in, out, wr);
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    kdouble(k, "EPS", k->n->a.bn.eps);
    kdouble(k, "MOMENTUM", k->n->a.bn.momentum);
    kout(k, "    enum { V = %d, CB = (C + V - 1) / V }; /* x and y are NCHW%dc */\n"
            "    %sdouble cnt = (double)N * S; /* values per channel */\n",
         v, v, k->mpi ? "" : "const ");
    kphase_args(k, in, out);
    kphase_run(k, "sum", "(int64_t)N * CB");
    if (k->mpi) /* the sums, then the mean of every rank's values (--sync-batchnorm) or of this rank's */
        kout(k, "    for (int c = 0; c < CB * V; c++) {\n"
                "        double s = 0.0;\n"
                "        for (int n = 0; n < N; n++) s += %s_part[((size_t)n * CB + c / V) * V + c %% V];\n"
                "        %s_mean[c] = s;\n"
                "    }\n"
                "    netrt_dist_sync_sums(%s_mean, CB * V, &cnt); /* --sync-batchnorm: over every rank */\n"
                "    for (int c = 0; c < CB * V; c++) %s_mean[c] = %s_mean[c] / cnt;\n",
             fn, fn, fn, fn, fn);
    else
        kout(k, "    for (int c = 0; c < CB * V; c++) {\n"
                "        double s = 0.0;\n"
                "        for (int n = 0; n < N; n++) s += %s_part[((size_t)n * CB + c / V) * V + c %% V];\n"
                "        %s_mean[c] = s / cnt;\n"
                "    }\n",
             fn, fn);
    kphase_run(k, "squares", "(int64_t)N * CB");
    if (k->mpi)
        kout(k, "    for (int c = 0; c < CB * V; c++) {\n"
                "        double q = 0.0;\n"
                "        for (int n = 0; n < N; n++) q += %s_part[((size_t)n * CB + c / V) * V + c %% V];\n"
                "        %s_chansq[c] = q;\n"
                "    }\n"
                "    netrt_dist_sync_sums(%s_chansq, CB * V, NULL); /* --sync-batchnorm: over every rank */\n",
             fn, fn, fn);
    kout(k, "    for (int c = 0; c < CB * V; c++) {\n"
            "        if (c >= C) { /* the padded lanes of y: 0 */\n"
            "            %s_coef[0][c] = %s_coef[1][c] = %s_coef[2][c] = 0.0f;\n"
            "            continue;\n"
            "        }\n",
         fn, fn, fn);
    if (k->mpi)
        kout(k, "        const double q = %s_chansq[c];\n", fn);
    else
        kout(k, "        double q = 0.0;\n"
                "        for (int n = 0; n < N; n++) q += %s_part[((size_t)n * CB + c / V) * V + c %% V];\n",
             fn);
    kout(k, "        const double m = %s_mean[c];\n"
            "        const double var = q / cnt; /* biased: normalizes the batch */\n"
            "        const double is = 1.0 / sqrt(var + EPS);\n"
            "        mean[c] = (netc_real)m;\n"
            "        invstd[c] = (netc_real)is;\n"
            "        %s_coef[0][c] = (netc_real)m, %s_coef[1][c] = (netc_real)(is * gamma[c]), %s_coef[2][c] = beta[c];\n"
            "        const double unbiased = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;\n"
            "        running_mean[c] = (netc_real)((1.0 - MOMENTUM) * running_mean[c] + MOMENTUM * m);\n"
            "        running_var[c] = (netc_real)((1.0 - MOMENTUM) * running_var[c] + MOMENTUM * unbiased);\n"
            "    }\n",
         fn, fn, fn, fn);
    kphase_run(k, "apply", "(int64_t)N * CB");
    kclose(k);
}

/* batchnorm_grad of blocked values (layout_train), in two phases over the
 * (sample, channel block) pairs as emit_batchnorm_train_blocked's: the sums
 * of dy and of dy * xhat per pair, combined in sample order, then dx.  Each
 * element's arithmetic is the plain kernel's.  The padded lanes of dx are 0. */
static void emit_batchnorm_grad_blocked(Kernel *k) {
    const Value *xv = k->n->in[1];
    const Shape *x = &xv->shape;
    int v = xv->cblock;
    bool relu = k->n->a.bn.relu; /* dy counts where input 5, the relu's output, is positive */
    /* dy's vector at i, masked by the relu's output (fuse_train) */
    const char *dy_at = relu ? "(vec)((ivec) * (const vec *)(dyc + (size_t)i * V) & (*(const vec *)(yr + (size_t)i * V) > 0.0f))"
                             : "*(const vec *)(dyc + (size_t)i * V)";
    int64_t cb = (x->d[1] + v - 1) / v;
    const char *fn = k->fname;
    kout(k, "/* %s's partial sums of dy and dy * xhat, V each per (sample, channel block),\n"
            " * and its coefficients A, B, D per channel */\n"
            "static double %s_part[%lld];\n"
            "static netc_real %s_coef[3][%lld];\n",
         fn, fn, (long long)(x->d[0] * cb * v * 2), fn, (long long)(cb * v));
    if (k->mpi)
        kout(k, "static double %s_chansums[2][%lld]; /* per channel: sum(dy), sum(dy * xhat), for --sync-batchnorm */\n",
             fn, (long long)(cb * v));
    kout(k, "\n");
    const char *none[] = {NULL, NULL, NULL};
    kphase_open(k, "sums", (const char *const[]){"dy", "x", NULL, "mean", "invstd", relu ? "y" : NULL}, none, 0);
    bn_phase_consts(k, xv, true);
    if (relu) kout(k, "    typedef int ivec __attribute__((vector_size(V * sizeof(int))));\n");
    kout(k, "    for (int64_t t = t0; t < t1; t++) { /* sample t / CB, block t %% CB */\n"
            "        const int cb = (int)(t %% CB);\n"
            "        vec mf = {0}, is = {0};\n"
            "        for (int v = 0; v < V && cb * V + v < C; v++) mf[v] = mean[cb * V + v], is[v] = invstd[cb * V + v];\n"
            "        const netc_real *restrict dyc = dy + (size_t)t * S * V;\n"
            "        const netc_real *restrict xc = x + (size_t)t * S * V;\n"
            "%s"
            "        dvec sdy = {0}, sdyx = {0}; /* sum(dy), sum(dy * xhat) */\n"
            "        for (int i = 0; i < S; i++) {\n"
            "            const dvec d = __builtin_convertvector(%s, dvec);\n"
            "            sdy += d;\n"
            "            sdyx += d * __builtin_convertvector((*(const vec *)(xc + (size_t)i * V) - mf) * is, dvec);\n"
            "        }\n"
            "        memcpy(%s_part + (size_t)t * 2 * V, &sdy, sizeof sdy);\n"
            "        memcpy(%s_part + (size_t)t * 2 * V + V, &sdyx, sizeof sdyx);\n"
            "    }\n",
         relu ? "        const netc_real *restrict yr = y + (size_t)t * S * V; /* the relu's output */\n" : "", dy_at, fn, fn);
    kclose(k);
    kphase_open(k, "dx", (const char *const[]){"dy", "x", NULL, "mean", NULL, relu ? "y" : NULL},
                (const char *const[]){"dx", NULL, NULL}, 0);
    bn_phase_consts(k, xv, false);
    if (relu) kout(k, "    typedef int ivec __attribute__((vector_size(V * sizeof(int))));\n");
    kout(k, "    for (int64_t t = t0; t < t1; t++) {\n"
            "        const int cb = (int)(t %% CB);\n"
            "        vec A, B, D, mf = {0};\n"
            "        memcpy(&A, %s_coef[0] + cb * V, sizeof A);\n"
            "        memcpy(&B, %s_coef[1] + cb * V, sizeof B);\n"
            "        memcpy(&D, %s_coef[2] + cb * V, sizeof D);\n"
            "        for (int v = 0; v < V && cb * V + v < C; v++) mf[v] = mean[cb * V + v];\n"
            "        const netc_real *restrict dyc = dy + (size_t)t * S * V;\n"
            "        const netc_real *restrict xc = x + (size_t)t * S * V;\n"
            "        netc_real *restrict dxc = dx + (size_t)t * S * V;\n"
            "%s"
            "        /* dx = A * dy + B * (x - mean) + D */\n"
            "        for (int i = 0; i < S; i++)\n"
            "            *(vec *)(dxc + (size_t)i * V) = A * %s + B * (*(const vec *)(xc + (size_t)i * V) - mf) + D;\n"
            "    }\n",
         fn, fn, fn, relu ? "        const netc_real *restrict yr = y + (size_t)t * S * V; /* the relu's output */\n" : "", dy_at);
    kclose(k);

    const char *in[] = {"dy", "x", "gamma", "mean", "invstd", "y"}, *out[] = {"dx", "dgamma", "dbeta"};
    kopen(k, in, out);
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    kout(k, "    enum { V = %d, CB = (C + V - 1) / V }; /* dy, x and dx are NCHW%dc */\n"
            "    %sdouble cnt = (double)N * S; /* values per channel */\n",
         v, v, k->mpi ? "" : "const ");
    kphase_args(k, in, out);
    kphase_run(k, "sums", "(int64_t)N * CB");
    if (k->mpi) /* the weight's and bias's gradients of this rank's samples (averaged
                 * with the others' later); dx from the sums of every rank's under
                 * --sync-batchnorm */
        kout(k, "    for (int c = 0; c < CB * V; c++) {\n"
                "        double sdy = 0.0, sdyx = 0.0;\n"
                "        for (int n = 0; n < N; n++) {\n"
                "            const double *p = %s_part + ((size_t)n * CB + c / V) * 2 * V + c %% V;\n"
                "            sdy += p[0];\n"
                "            sdyx += p[V];\n"
                "        }\n"
                "        if (c < C) dgamma[c] = (netc_real)sdyx, dbeta[c] = (netc_real)sdy;\n"
                "        %s_chansums[0][c] = sdy, %s_chansums[1][c] = sdyx;\n"
                "    }\n"
                "    netrt_dist_sync_sums(%s_chansums[0], 2 * CB * V, &cnt); /* --sync-batchnorm: over every rank */\n",
             fn, fn, fn, fn);
    kout(k, "    for (int c = 0; c < CB * V; c++) {\n"
            "        if (c >= C) { /* the padded lanes of dx: 0 */\n"
            "            %s_coef[0][c] = %s_coef[1][c] = %s_coef[2][c] = 0.0f;\n"
            "            continue;\n"
            "        }\n",
         fn, fn, fn);
    if (k->mpi)
        kout(k, "        const double sdy = %s_chansums[0][c], sdyx = %s_chansums[1][c];\n", fn, fn);
    else
        kout(k, "        double sdy = 0.0, sdyx = 0.0;\n"
                "        for (int n = 0; n < N; n++) {\n"
                "            const double *p = %s_part + ((size_t)n * CB + c / V) * 2 * V + c %% V;\n"
                "            sdy += p[0];\n"
                "            sdyx += p[V];\n"
                "        }\n"
                "        dgamma[c] = (netc_real)sdyx;\n"
                "        dbeta[c] = (netc_real)sdy;\n",
             fn);
    kout(k, "        const netc_real is = invstd[c];\n"
            "        const double k = gamma[c] * (double)is / cnt;\n"
            "        %s_coef[0][c] = (netc_real)(k * cnt), %s_coef[1][c] = (netc_real)(-k * sdyx * is), %s_coef[2][c] = (netc_real)(-k * sdy);\n"
            "    }\n",
         fn, fn, fn);
    kphase_run(k, "dx", "(int64_t)N * CB");
    kclose(k);
}

/* The end of a plain batchnorm_train's last loop over the channels, given
 * m (the mean) and var (the biased variance) of channel c: the saved
 * statistics, y, and the running averages. */
static const char bn_plain_apply[] =
    "        const double is = 1.0 / sqrt(var + EPS);\n"
    "        mean[c] = (netc_real)m;\n"
    "        invstd[c] = (netc_real)is;\n"
    "        /* y = (x - mean) * invstd * gamma + beta */\n"
    "        const netc_real mf = (netc_real)m, sc = (netc_real)(is * gamma[c]), bt = beta[c];\n"
    "        for (int n = 0; n < N; n++) {\n"
    "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
    "            netc_real *restrict yc = y + ((size_t)n * C + c) * S;\n"
    "            for (int i = 0; i < S; i++) yc[i] = (xc[i] - mf) * sc + bt;\n"
    "        }\n"
    "        const double unbiased = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;\n"
    "        running_mean[c] = (netc_real)((1.0 - MOMENTUM) * running_mean[c] + MOMENTUM * m);\n"
    "        running_var[c] = (netc_real)((1.0 - MOMENTUM) * running_var[c] + MOMENTUM * unbiased);\n"
    "    }\n";

/* An --mpi program's plain batchnorm_train (after the constants): the
 * arithmetic of emit_batchnorm_train in three passes over the channels,
 * with the sums of each summed over every rank under --sync-batchnorm
 * between them (netrt_dist_sync_sums). */
static void emit_batchnorm_train_mpi(Kernel *k) {
    kout(k, "    double cnt = (double)N * S; /* values per channel */\n"
            "    double sums[C], squares[C];\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        double s = 0.0;\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) s += xc[i];\n"
            "        }\n"
            "        sums[c] = s;\n"
            "    }\n"
            "    netrt_dist_sync_sums(sums, C, &cnt); /* --sync-batchnorm: over every rank */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        const double m = sums[c] / cnt;\n"
            "        double q = 0.0;\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) {\n"
            "                const double d = xc[i] - m;\n"
            "                q += d * d;\n"
            "            }\n"
            "        }\n"
            "        squares[c] = q;\n"
            "    }\n"
            "    netrt_dist_sync_sums(squares, C, NULL); /* --sync-batchnorm: over every rank */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        const double m = sums[c] / cnt;\n"
            "        const double var = squares[c] / cnt; /* biased: normalizes the batch */\n"
            "%s", bn_plain_apply);
    kclose(k);
}

/* A plain batchnorm_grad's per-channel parts (channel c, its mf and is):
 * the sums over the batch with the weight's and bias's gradients, and dx
 * from sdy and sdyx (the one-process and the --mpi kernels share them). */
static const char bn_plain_grad_sums[] =
    "        for (int n = 0; n < N; n++) {\n"
    "            const netc_real *restrict dyc = dy + ((size_t)n * C + c) * S;\n"
    "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
    "            for (int i = 0; i < S; i++) {\n"
    "                sdy += dyc[i];\n"
    "                sdyx += (double)dyc[i] * ((xc[i] - mf) * is);\n"
    "            }\n"
    "        }\n"
    "        dgamma[c] = (netc_real)sdyx;\n"
    "        dbeta[c] = (netc_real)sdy;\n";
static const char bn_plain_grad_dx[] =
    "        /* dx = A * dy + B * (x - mean) + D */\n"
    "        const double k = gamma[c] * (double)is / cnt;\n"
    "        const netc_real A = (netc_real)(k * cnt), B = (netc_real)(-k * sdyx * is), D = (netc_real)(-k * sdy);\n"
    "        for (int n = 0; n < N; n++) {\n"
    "            const netc_real *restrict dyc = dy + ((size_t)n * C + c) * S;\n"
    "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
    "            netc_real *restrict dxc = dx + ((size_t)n * C + c) * S;\n"
    "            for (int i = 0; i < S; i++) dxc[i] = A * dyc[i] + B * (xc[i] - mf) + D;\n"
    "        }\n";

/* An --mpi program's plain batchnorm_grad (after the constants): the weight's
 * and bias's gradients of this rank's samples (the trainer averages them
 * over the ranks), dx from the sums of every rank's under --sync-batchnorm
 * (SyncBatchNorm's backward). */
static void emit_batchnorm_grad_mpi(Kernel *k) {
    kout(k, "    double cnt = (double)N * S; /* values per channel */\n"
            "    double sums[2][C]; /* per channel: sum(dy), sum(dy * xhat) */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        const netc_real mf = mean[c], is = invstd[c];\n"
            "        double sdy = 0.0, sdyx = 0.0; /* sum(dy), sum(dy * xhat) */\n"
            "%s"
            "        sums[0][c] = sdy, sums[1][c] = sdyx;\n"
            "    }\n"
            "    netrt_dist_sync_sums(sums[0], 2 * C, &cnt); /* --sync-batchnorm: over every rank */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        const netc_real mf = mean[c], is = invstd[c];\n"
            "        const double sdy = sums[0][c], sdyx = sums[1][c];\n"
            "%s"
            "    }\n",
         bn_plain_grad_sums, bn_plain_grad_dx);
    kclose(k);
}

/* Statistics over (nb, H, W) per channel, in double: y uses the biased
 * variance; the running averages get momentum * the batch mean and the
 * unbiased variance (PyTorch), written in place into inputs 3 and 4.  (A
 * blocked x: emit_batchnorm_train_blocked.) */
static void emit_batchnorm_train(Kernel *k) {
    if (k->n->in[0]->cblock) {
        emit_batchnorm_train_blocked(k);
        return;
    }
    const Shape *x = in_shape(k, 0);
    kopen_rw(k, (const char *const[]){"x", "gamma", "beta", "running_mean", "running_var"},
             (const char *const[]){"y", "mean", "invstd"}, op_rules(k->n->op)->written_inputs);
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    kdouble(k, "EPS", k->n->a.bn.eps);
    kdouble(k, "MOMENTUM", k->n->a.bn.momentum);
    if (k->mpi) {
        emit_batchnorm_train_mpi(k);
        return;
    }
    kout(k, "    const double cnt = (double)N * S; /* values per channel */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        double s = 0.0;\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) s += xc[i];\n"
            "        }\n"
            "        const double m = s / cnt;\n"
            "        double q = 0.0;\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) {\n"
            "                const double d = xc[i] - m;\n"
            "                q += d * d;\n"
            "            }\n"
            "        }\n"
            "        const double var = q / cnt; /* biased: normalizes the batch */\n"
            "%s", bn_plain_apply);
    kclose(k);
}

/* xhat = (x - mean) * invstd; dgamma = sum(dy * xhat), dbeta = sum(dy) and
 * dx = gamma * invstd / cnt * (cnt * dy - sum(dy) - xhat * sum(dy * xhat)),
 * sums over (nb, H, W) in double.  (Blocked: emit_batchnorm_grad_blocked.) */
static void emit_batchnorm_grad(Kernel *k) {
    if (k->n->in[1]->cblock) {
        emit_batchnorm_grad_blocked(k);
        return;
    }
    const Shape *x = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "x", "gamma", "mean", "invstd"},
          (const char *const[]){"dx", "dgamma", "dbeta"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    if (k->mpi) {
        emit_batchnorm_grad_mpi(k);
        return;
    }
    kout(k, "    const double cnt = (double)N * S; /* values per channel */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        const netc_real mf = mean[c], is = invstd[c];\n"
            "        double sdy = 0.0, sdyx = 0.0; /* sum(dy), sum(dy * xhat) */\n"
            "%s%s"
            "    }\n",
         bn_plain_grad_sums, bn_plain_grad_dx);
    kclose(k);
}

/* ---- batch rules ------------------------------------------------------------------- */

/* The output is batched with the input; the batch statistics and the
 * parameter gradients are per channel. */
static bool batched_first_output(const Node *n, int i, const bool *batched) {
    return i == 0 && batched[n->in[0]->id];
}

/* ---- gradient rules ------------------------------------------------------------------ */

static void grad_batchnorm(GradCtx *c, Node *n, Value *dy) {
    Node *b = grad_node(c, OP_BATCHNORM_GRAD, n, (Value *[]){dy, n->in[0], n->in[1], n->out[1], n->out[2]}, 5);
    if (!b) return;
    grad_accum(c, n->in[0], b->out[0]);
    grad_accum(c, n->in[1], b->out[1]);
    grad_accum(c, n->in[2], b->out[2]);
}

/* A batchnorm autodiff leaves in eval mode (weight and bias frozen): the
 * input's gradient only. */
static void grad_batchnorm_eval(GradCtx *c, Node *n, Value *dy) {
    if (grad_needed(c, n->in[0]))
        grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_BATCHNORM_EVAL_GRAD, n, (Value *[]){dy, n->in[1], n->in[4]}, 3)));
}

static bool shape_batchnorm_eval_grad(Graph *g, Node *n) {
    (void)g;
    return shape_like(n, 0, 0);
}

static const char *check_batchnorm_eval_grad(const Graph *g, const Node *n) {
    const char *why = check_channels(g, n);
    if (why) return why;
    if (n->in[0]->cblock != n->out[0]->cblock) return "its output must be blocked as its input";
    return n->in[0]->cblock && n->in[0]->shape.rank != 4 ? "a blocked input must be [N, C, H, W]" : NULL;
}

/* layernorm and instancenorm: dx (through the weight when affine), and the
 * weight's and bias's gradients from one node. */
static void grad_norm(GradCtx *c, Node *n, Value *dy, Op grad_op, Op affine_op) {
    Value *in[3] = {dy, n->in[0], n->nin == 3 ? n->in[1] : NULL};
    if (grad_needed(c, n->in[0])) grad_accum(c, n->in[0], grad_out0(grad_node(c, grad_op, n, in, n->nin == 3 ? 3 : 2)));
    if (n->nin == 3 && (grad_needed(c, n->in[1]) || grad_needed(c, n->in[2]))) {
        Node *p = grad_node(c, affine_op, n, in, 3);
        if (!p) return;
        grad_accum(c, n->in[1], p->out[0]);
        grad_accum(c, n->in[2], p->out[1]);
    }
}

static void grad_layernorm(GradCtx *c, Node *n, Value *dy) {
    grad_norm(c, n, dy, OP_LAYERNORM_GRAD, OP_LAYERNORM_GRAD_AFFINE);
}
static void grad_instancenorm(GradCtx *c, Node *n, Value *dy) {
    grad_norm(c, n, dy, OP_INSTANCENORM_GRAD, OP_INSTANCENORM_GRAD_AFFINE);
}

/* ---- attributes ----------------------------------------------------------------------- */

static void dump_bn(const Node *n, FILE *f) { fprintf(f, " eps=%g%s", n->a.bn.eps, n->a.bn.relu ? " relu" : ""); }
static void dump_norm(const Node *n, FILE *f) {
    fprintf(f, " eps=%g%s", n->a.norm.eps, n->a.norm.affine ? "" : " noaffine");
}
static void dump_lrn(const Node *n, FILE *f) {
    fprintf(f, " size=%d alpha=%g beta=%g k=%g", n->a.lrn.size, n->a.lrn.alpha, n->a.lrn.beta, n->a.lrn.k);
}

/* batchnorm_train: the normalization, the residual it adds, the relu;
 * batchnorm_grad: the relu's gradient first. */
static int fused_bn_train(const Node *n, const char **parts, int max) {
    int k = fused_part(parts, 0, max, "batchnorm");
    if (n->nin > 5) k = fused_part(parts, k, max, "add");
    if (n->a.bn.relu) k = fused_part(parts, k, max, "relu");
    return k < max ? k : max;
}
static int fused_bn_grad(const Node *n, const char **parts, int max) {
    int k = n->a.bn.relu ? fused_part(parts, 0, max, "relu_grad") : 0;
    k = fused_part(parts, k, max, "batchnorm_grad");
    return k < max ? k : max;
}

/* ---- the entries ---------------------------------------------------------------------- */

#define NO_MACS "a normalization: no multiply-accumulates counted"
#define MADE_BY_AUTODIFF "a gradient op: autodiff makes it"
#define MADE_BY_TRAINING_COPY "autodiff's training copy of the forward makes it from batchnorm"
#define MADE_BY_FOLD "made by the fold_batchnorm pass"
#define GRAD_OP "a gradient op: not differentiated again"
#define INIT_TIME "init-time: runs once on loaded parameters, never trained through"

const OpRules op_rules_BATCHNORM = {
    .builtins = (const Builtin[]){{"batchnorm",
                                   {REQUIRED("x"), DEFAULT_FLOAT("eps", 1e-5), DEFAULT_FLOAT("momentum", 0.1)},
                                   false,
                                   build_batchnorm},
                                  {0}},
    .shape = shape_batchnorm, .check = check_batchnorm, .emit = emit_batchnorm, .batched = op_batched_like_input0,
    .dump = dump_bn, .no_macs = NO_MACS, .train_as = OP_BATCHNORM_TRAIN,
    .grad = grad_batchnorm_eval, /* only when autodiff keeps it in eval mode (frozen) */
    .inplace_ok = true, /* per channel, elementwise within it */
    .blocked_ok = true, /* a blocked x gives a blocked y (the layout pass) */
    .blocked_train = true, /* batchnorm_train and batchnorm_grad take blocked values */
};

const OpRules op_rules_BATCHNORM_TRAIN = {
    .no_build = MADE_BY_TRAINING_COPY,
    .shape = shape_batchnorm_train, .check = check_batchnorm_train, .emit = emit_batchnorm_train,
    .batched = batched_first_output, .written_inputs = 1u << 3 | 1u << 4,
    .output_names = (const char *const[]){"the output", "the batch mean", "the batch 1/std"},
    .dump = dump_bn, .no_macs = NO_MACS, .grad = grad_batchnorm, .fused = fused_bn_train,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_BATCHNORM_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_batchnorm_grad, .check = check_batchnorm_grad, .emit = emit_batchnorm_grad,
    .batched = batched_first_output,
    .output_names = (const char *const[]){"the input gradient", "the weight gradient", "the bias gradient"},
    .dump = dump_bn, .no_macs = NO_MACS, .no_grad = GRAD_OP, .fused = fused_bn_grad,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_BATCHNORM_EVAL_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_batchnorm_eval_grad, .check = check_batchnorm_eval_grad, .emit = emit_batchnorm_eval_grad,
    .batched = op_batched_like_input0, .dump = dump_bn, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_BN_FOLD = {
    .no_build = MADE_BY_FOLD,
    .shape = shape_bn_fold, .check = check_bn_fold, .emit = emit_bn_fold, .batched = op_batched_never,
    .output_names = (const char *const[]){"the folded weight", "the folded bias"},
    .dump = dump_bn, .no_macs = NO_MACS, .no_grad = INIT_TIME,
};

const OpRules op_rules_LAYERNORM = {
    .builtins = (const Builtin[]){{"layernorm",
                                   {REQUIRED("x"), DEFAULT_FLOAT("eps", 1e-5), DEFAULT_BOOL("affine", true)},
                                   false,
                                   build_norm},
                                  {0}},
    .shape = shape_layernorm, .check = check_layernorm, .emit = emit_layernorm, .batched = op_batched_like_input0,
    .dump = dump_norm, .no_macs = NO_MACS, .grad = grad_layernorm,
};

const OpRules op_rules_INSTANCENORM = {
    .builtins = (const Builtin[]){{"instancenorm",
                                   {REQUIRED("x"), DEFAULT_FLOAT("eps", 1e-5), DEFAULT_BOOL("affine", true)},
                                   false,
                                   build_norm},
                                  {0}},
    .shape = shape_instancenorm, .check = check_nchw, .emit = emit_instancenorm, .batched = op_batched_like_input0,
    .dump = dump_norm, .no_macs = NO_MACS, .grad = grad_instancenorm,
};

const OpRules op_rules_LRN = {
    .builtins = (const Builtin[]){{"lrn",
                                   {REQUIRED("x"), REQUIRED("size"), DEFAULT_FLOAT("alpha", 1e-4),
                                    DEFAULT_FLOAT("beta", 0.75), DEFAULT_FLOAT("k", 1.0)},
                                   false,
                                   build_lrn},
                                  {0}},
    .shape = shape_lrn, .check = check_nchw, .emit = emit_lrn, .batched = op_batched_like_input0,
    .dump = dump_lrn, .no_macs = NO_MACS, .grad = grad_lrn,
};

const OpRules op_rules_LRN_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_channels, .emit = emit_lrn_grad, .batched = batched_first_output,
    .dump = dump_lrn, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_LAYERNORM_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_norm_grad, .emit = emit_layernorm_grad,
    .batched = op_batched_like_input0, .dump = dump_norm, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_LAYERNORM_GRAD_AFFINE = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_norm_grad_affine, .check = check_norm_grad, .emit = emit_layernorm_grad_affine,
    .batched = op_batched_never,
    .output_names = (const char *const[]){"the weight gradient", "the bias gradient"},
    .dump = dump_norm, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_INSTANCENORM_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_norm_grad, .emit = emit_instancenorm_grad,
    .batched = op_batched_like_input0, .dump = dump_norm, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_INSTANCENORM_GRAD_AFFINE = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_norm_grad_affine, .check = check_norm_grad, .emit = emit_instancenorm_grad_affine,
    .batched = op_batched_never,
    .output_names = (const char *const[]){"the weight gradient", "the bias gradient"},
    .dump = dump_norm, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};
