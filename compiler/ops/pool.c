/* Pooling: maxpool and avgpool over sliding windows, maxpool_idx and unpool
 * (PyTorch's return_indices and MaxUnpool2d), the global and adaptive pools,
 * and their gradients.
 *
 * Each op is its registry entry (ops.h): the builtins that make it, its
 * shape, emission and gradient, and the statements of what it lacks. */
#include <string.h>

#include "../opkit.h"

/* ---- builders --------------------------------------------------------------- */

/* maxpool, avgpool (with count_pad) and maxpool_idx: kernel, stride (the
 * kernel when not given), pad ([h, w] or an int) and ceil. */
static Node *build_pool(BuildCtx *c) {
    const char *name = c->builtin->name;
    char what[64];
    snprintf(what, sizeof what, "%s's input", name);
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), what);
    Attrs a = {0};
    snprintf(what, sizeof what, "%s's kernel", name);
    arg_pair(c, build_arg(c, 1), build_span(c, 1), what, 1, a.pool.kernel);
    snprintf(what, sizeof what, "%s's stride", name);
    if (build_arg(c, 2).k == E_NONE)
        memcpy(a.pool.stride, a.pool.kernel, sizeof a.pool.stride);
    else
        arg_pair(c, build_arg(c, 2), build_span(c, 2), what, 1, a.pool.stride);
    int pad[2];
    snprintf(what, sizeof what, "%s's pad", name);
    arg_pair(c, build_arg(c, 3), build_span(c, 3), what, 0, pad);
    a.pool.pad[0] = a.pool.pad[1] = pad[0];
    a.pool.pad[2] = a.pool.pad[3] = pad[1];
    snprintf(what, sizeof what, "%s's ceil", name);
    a.pool.ceil = arg_bool(c, build_arg(c, 4), build_span(c, 4), what);
    a.pool.count_pad =
        c->builtin->args[5].name ? arg_bool(c, build_arg(c, 5), build_span(c, 5), "avgpool's count_pad") : true;
    const char *inst = build_instance(c, name);
    Node *y = build_node(c, c->op, inst, &x, 1, &a);
    build_warn_wide_window(c, name, x, a.pool.kernel, a.pool.stride, a.pool.pad, (const int[]){1, 1});
    return y;
}

/* unpool(x, indices, like): MaxUnpool2d into like's height and width. */
static Node *build_unpool(BuildCtx *c) {
    Value *in[3];
    in[0] = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "unpool's input");
    in[1] = arg_tensor(c, build_arg(c, 1), build_span(c, 1), "unpool's indices");
    in[2] = arg_tensor(c, build_arg(c, 2), build_span(c, 2), "unpool's like");
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_UNPOOL, inst, in, 3, NULL);
}

/* adaptive_avgpool(x, [oh, ow]) or (x, n) for n x n; as PyTorch, the output
 * may be larger than the input (windows then overlap). */
static Node *build_adaptive_pool(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "adaptive_avgpool's input");
    Attrs a = {0};
    int o[2];
    arg_pair(c, build_arg(c, 1), build_span(c, 1), "adaptive_avgpool's size", 1, o);
    a.adaptive.size[0] = o[0];
    a.adaptive.size[1] = o[1];
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_ADAPTIVE_AVGPOOL, inst, &x, 1, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

static bool shape_pool(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    const PoolAttrs *a = &n->a.pool;
    const int64_t *x = n->in[0]->shape.d;
    if (2 * a->pad[0] > a->kernel[0] || 2 * a->pad[2] > a->kernel[1]) {
        diag_error(n->span, "%s pad (%d) must be at most half the kernel (%d)", op_name(n->op), a->pad[0],
                   a->kernel[0]);
        return false;
    }
    int64_t oh = shape_window_out(n, x[2], a->kernel[0], a->stride[0], a->pad[0], a->pad[1], 1, a->ceil, "height");
    if (oh < 0) return false;
    int64_t ow = shape_window_out(n, x[3], a->kernel[1], a->stride[1], a->pad[2], a->pad[3], 1, a->ceil, "width");
    if (ow < 0) return false;
    shape_set_out(n, 0, 4, (int64_t[]){x[0], x[1], oh, ow});
    return true;
}

static bool shape_pool_idx(Graph *g, Node *n) {
    if (!shape_pool(g, n)) return false;
    n->out[1]->shape = n->out[0]->shape;
    return true;
}

static bool shape_unpool(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    char b1[128], b2[128];
    if (!shape_eq(&n->in[1]->shape, &n->in[0]->shape)) {
        diag_error(n->span, "unpool's indices %s must have the shape of its input %s",
                   value_sample_str(n->in[1], b1, sizeof b1), value_sample_str(n->in[0], b2, sizeof b2));
        return false;
    }
    const Shape *like = &n->in[2]->shape;
    if (like->rank != 4 || like->d[0] != n->in[0]->shape.d[0]) {
        diag_error(n->span, "unpool's like must be a [C, H, W] tensor, got %s", value_sample_str(n->in[2], b1, sizeof b1));
        return false;
    }
    const int64_t *x = n->in[0]->shape.d;
    shape_set_out(n, 0, 4, (int64_t[]){x[0], x[1], like->d[2], like->d[3]});
    return true;
}

static bool shape_global_pool(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    const int64_t *x = n->in[0]->shape.d;
    shape_set_out(n, 0, 4, (int64_t[]){x[0], x[1], 1, 1});
    return true;
}

static bool shape_adaptive_pool(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    const int64_t *x = n->in[0]->shape.d, *o = n->a.adaptive.size;
    if (o[0] < 1 || o[1] < 1) {
        diag_error(n->span, "%s needs an output size of at least 1x1, got %lldx%lld", op_name(n->op), (long long)o[0],
                   (long long)o[1]);
        return false;
    }
    shape_set_out(n, 0, 4, (int64_t[]){x[0], x[1], o[0], o[1]});
    return true;
}

/* maxpool_idx_grad: dx shaped like x (input 2). */
static bool shape_maxpool_idx_grad(Graph *g, Node *n) {
    (void)g;
    return shape_like(n, 0, 2);
}

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_pool(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank != 4 || n->out[0]->shape.rank != 4 ? "pooling needs [N, C, H, W]" : NULL;
}

static const char *check_channels(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank < 2 ? "needs [N, C, ...]" : NULL;
}

/* A blocked input (the layout pass) is [N, C, H, W] and gives a plain output. */
static const char *check_global_avgpool(const Graph *g, const Node *n) {
    const char *why = check_channels(g, n);
    if (why) return why;
    if (n->out[0]->cblock) return "its output must be plain";
    return n->in[0]->cblock && n->in[0]->shape.rank != 4 ? "a blocked input must be [N, C, H, W]" : NULL;
}

static const char *check_pool_grad(const Graph *g, const Node *n) {
    (void)g;
    if (n->in[0]->cblock != n->in[1]->cblock || n->out[0]->cblock != n->in[1]->cblock)
        return "dy, x and dx must be blocked alike (layout_train) or plain";
    return n->in[0]->shape.rank != 4 || n->in[1]->shape.rank != 4 ? "pooling needs [N, C, H, W]" : NULL;
}

static const char *check_global_avgpool_grad(const Graph *g, const Node *n) {
    (void)g;
    const Shape *dy = &n->in[0]->shape, *x = &n->in[1]->shape;
    return x->rank < 2 || shape_numel(dy) != x->d[0] * x->d[1] ? "needs dy [N, C, 1, 1] and x [N, C, ...]" : NULL;
}

/* maxpool_idx_grad and unpool_grad: plain [N, C, H, W] dy and indices of the
 * shape of the values (of dy for maxpool_idx_grad, of dx for unpool_grad),
 * whose planes agree in N and C with the other's. */
static const char *check_index_grad(const Graph *g, const Node *n) {
    (void)g;
    const Shape *dy = &n->in[0]->shape, *idx = &n->in[1]->shape, *dx = &n->out[0]->shape;
    if (dy->rank != 4 || idx->rank != 4 || dx->rank != 4 || n->in[0]->cblock || n->in[1]->cblock)
        return "needs plain [N, C, H, W] dy and indices";
    const Shape *values = n->op == OP_MAXPOOL_IDX_GRAD ? dy : dx;
    return !shape_eq(idx, values) || dy->d[0] != dx->d[0] || dy->d[1] != dx->d[1]
               ? "needs indices of the values' shape, and dy and dx of the same N and C"
               : NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* The window constants of input x [N, C, H, W] and output y [N, C, OH, OW].
 * Pooling has no dilation (the shape rule computes windows of kernel size):
 * the forward kernels also declare DH = DW = 1, the gradients do not. */
static void pool_enum(Kernel *k, const Shape *x, const Shape *y, bool dilation) {
    const PoolAttrs *a = &k->n->a.pool;
    const KConst c[] = {
        {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]},
        {"KH", dim_or_one(a->kernel[0])}, {"KW", dim_or_one(a->kernel[1])},
        {"SH", dim_or_one(a->stride[0])}, {"SW", dim_or_one(a->stride[1])}, {"PT", a->pad[0]},
        {"PB", a->pad[1]}, {"PL", a->pad[2]}, {"PR", a->pad[3]},
        {"DH", 1}, {"DW", 1},
    };
    kenum(k, c, sizeof c / sizeof c[0] - (dilation ? 0 : 2));
}

/* The function of maxpool or avgpool up to its window: its constants, the
 * loops over the planes (xp the input's) and the output rows (yr), each
 * row's outputs set to `init`. */
static void pool_rows(Kernel *k, const char *init) {
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    pool_enum(k, in_shape(k, 0), out_shape(k, 0), true);
    kout(k, "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * H * W;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n"
            "            netc_real *restrict yr = y + ((size_t)nc * OH + oh) * OW;\n"
            "            for (int ow = 0; ow < OW; ow++) yr[ow] = %s;\n",
         init);
}

/* maxpool of a blocked (NCHW[V]c) x into a blocked y: V channels of a pixel
 * per vector, the taps in the plain kernel's order with its comparison, so
 * each channel gets the same bits. */
static void emit_maxpool_blocked(Kernel *k) {
    const Shape *y = out_shape(k, 0);
    int v = k->n->in[0]->cblock;
    kopen_parallel(k, (const char *const[]){"x"}, (const char *const[]){"y"}, 0, y->d[0],
                   (y->d[1] + v - 1) / v * y->d[2]);
    pool_enum(k, in_shape(k, 0), y, true);
    if (k->dyn) kout(k, "    (void)N; /* in the count of items */\n");
    kout(k, "    enum { V = %d, CB = (C + V - 1) / V };\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    typedef int ivec __attribute__((vector_size(V * sizeof(int))));\n"
            "    /* work items: the N * CB * OH output rows of V channels, items [t0, t1) here */\n"
            "    for (int64_t t = t0; t < t1; t++) {\n"
            "        const int64_t nc = t / OH;\n"
            "        const int oh = (int)(t %% OH);\n"
            "        const netc_real *restrict xp = x + (size_t)nc * H * W * V;\n"
            "        {\n"
            "            netc_real *restrict yr = y + ((size_t)nc * OH + oh) * OW * V;\n"
            "            for (int ow = 0; ow < OW; ow++) {\n"
            "                vec m = (vec){0} - INFINITY;\n"
            "                for (int kh = 0; kh < KH; kh++) {\n"
            "                    const int ih = oh * SH - PT + kh * DH;\n"
            "                    if (ih < 0 || ih >= H) continue;\n"
            "                    for (int kw = 0; kw < KW; kw++) {\n"
            "                        const int iw = ow * SW - PL + kw * DW;\n"
            "                        if (iw < 0 || iw >= W) continue;\n"
            "                        const vec v = *(const vec *)(xp + ((size_t)ih * W + iw) * V);\n"
            "                        const ivec take = (v > m) | (v != v); /* (v > m || isnan(v)) ? v : m */\n"
            "                        m = (vec)(((ivec)v & take) | ((ivec)m & ~take));\n"
            "                    }\n"
            "                }\n"
            "                *(vec *)(yr + (size_t)ow * V) = m;\n"
            "            }\n"
            "        }\n"
            "    }\n",
         v);
    kclose(k);
}

/* Padding counts as -inf; NaN propagates as in PyTorch. */
static void emit_maxpool(Kernel *k) {
    if (k->n->in[0]->cblock) {
        emit_maxpool_blocked(k);
        return;
    }
    pool_rows(k, "-INFINITY");
    kwindow_taps(k, 3, "const netc_real *restrict xr = xp + (size_t)ih * W;\n",
                 "for (int ow = lo; ow < hi; ow++) {\n"
                 "    const netc_real v = xr[ow * SW + off], m = yr[ow];\n"
                 "    yr[ow] = (v > m || isnan(v)) ? v : m;\n"
                 "}\n");
    kout(k, "        }\n"
            "    }\n");
    kclose(k);
}

/* avgpool of a blocked (NCHW[V]c) x into a blocked y: V channels of a pixel
 * per vector, summed from 0 over the taps in the plain kernel's order and
 * divided by its divisor, so each channel gets the same bits. */
static void emit_avgpool_blocked(Kernel *k) {
    bool count_pad = k->n->a.pool.count_pad;
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    pool_enum(k, in_shape(k, 0), out_shape(k, 0), true);
    kout(k, "    enum { V = %d, CB = (C + V - 1) / V };\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    for (int nc = 0; nc < N * CB; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * H * W * V;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n"
            "            netc_real *restrict yr = y + ((size_t)nc * OH + oh) * OW * V;\n"
            "            const int hs = oh * SH - PT;\n"
            "            const int he = hs + KH < H + PB ? hs + KH : H + PB;\n"
            "%s"
            "            for (int ow = 0; ow < OW; ow++) {\n"
            "                vec s = {0};\n"
            "                for (int kh = 0; kh < KH; kh++) {\n"
            "                    const int ih = oh * SH - PT + kh * DH;\n"
            "                    if (ih < 0 || ih >= H) continue;\n"
            "                    for (int kw = 0; kw < KW; kw++) {\n"
            "                        const int iw = ow * SW - PL + kw * DW;\n"
            "                        if (iw < 0 || iw >= W) continue;\n"
            "                        s += *(const vec *)(xp + ((size_t)ih * W + iw) * V);\n"
            "                    }\n"
            "                }\n"
            "                const int ws = ow * SW - PL;\n"
            "                const int we = ws + KW < W + PR ? ws + KW : W + PR;\n",
         k->n->in[0]->cblock,
         count_pad ? "" : "            const int rows = (he < H ? he : H) - (hs > 0 ? hs : 0);\n");
    if (count_pad)
        kout(k, "                *(vec *)(yr + (size_t)ow * V) = s / (netc_real)((he - hs) * (we - ws));\n");
    else
        kout(k, "                const int cols = (we < W ? we : W) - (ws > 0 ? ws : 0);\n"
                "                *(vec *)(yr + (size_t)ow * V) = rows > 0 && cols > 0 ? s / (netc_real)(rows * cols) : (vec){0};\n");
    kout(k, "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* The divisor is PyTorch's: with count_pad the window clipped to the padded
 * input, without it the window clipped to the input. */
static void emit_avgpool(Kernel *k) {
    bool count_pad = k->n->a.pool.count_pad;
    if (k->n->in[0]->cblock) {
        emit_avgpool_blocked(k);
        return;
    }
    pool_rows(k, "0.0f");
    kwindow_taps(k, 3, "const netc_real *restrict xr = xp + (size_t)ih * W;\n",
                 "for (int ow = lo; ow < hi; ow++) yr[ow] += xr[ow * SW + off];\n");
    kout(k, "            const int hs = oh * SH - PT;\n"
            "            const int he = hs + KH < H + PB ? hs + KH : H + PB;\n");
    if (count_pad) {
        kout(k, "            for (int ow = 0; ow < OW; ow++) {\n"
                "                const int ws = ow * SW - PL;\n"
                "                const int we = ws + KW < W + PR ? ws + KW : W + PR;\n"
                "                yr[ow] /= (netc_real)((he - hs) * (we - ws));\n"
                "            }\n");
    } else {
        kout(k, "            const int rows = (he < H ? he : H) - (hs > 0 ? hs : 0);\n"
                "            for (int ow = 0; ow < OW; ow++) {\n"
                "                const int ws = ow * SW - PL;\n"
                "                const int we = ws + KW < W + PR ? ws + KW : W + PR;\n"
                "                const int cols = (we < W ? we : W) - (ws > 0 ? ws : 0);\n"
                "                yr[ow] = rows > 0 && cols > 0 ? yr[ow] / (netc_real)(rows * cols) : 0.0f;\n"
                "            }\n");
    }
    kout(k, "        }\n"
            "    }\n");
    kclose(k);
}

/* A reduction of each H x W plane of x to y[nc]: the function, its
 * constants N, C, S and the loop over the planes, xp pointing at plane nc;
 * `body` (at depth 2) computes y[nc]. */
static void emit_global_pool(Kernel *k, const char *body) {
    const Shape *x = in_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    kout(k, "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * S;\n"
            "%s"
            "    }\n",
         body);
    kclose(k);
}

/* The mean over H x W of a blocked (NCHW[V]c) x into a plain [N, C, 1, 1]
 * y: the V channels of a block summed side by side, each in double and in
 * the plain kernel's order, so each channel gets the same bits. */
static void emit_global_avgpool_blocked(Kernel *k) {
    const Value *xv = k->n->in[0];
    const Shape *x = &xv->shape;
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"V", xv->cblock});
    kout(k, "    enum { CB = (C + V - 1) / V }; /* x is NCHW%dc, y plain */\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    typedef double dvec __attribute__((vector_size(V * sizeof(double))));\n"
            "    for (int n = 0; n < N; n++)\n"
            "        for (int cb = 0; cb < CB; cb++) {\n"
            "            const netc_real *restrict xp = x + ((size_t)n * CB + cb) * S * V;\n"
            "            dvec s = {0};\n"
            "            for (int i = 0; i < S; i++) s += __builtin_convertvector(*(const vec *)(xp + (size_t)i * V), dvec);\n"
            "            for (int v = 0; v < V && cb * V + v < C; v++) y[(size_t)n * C + cb * V + v] = (netc_real)(s[v] / S);\n"
            "        }\n",
         xv->cblock);
    kclose(k);
}

/* The mean over H x W, summed in double (PyTorch computes it as a mean). */
static void emit_global_avgpool(Kernel *k) {
    if (k->n->in[0]->cblock) {
        emit_global_avgpool_blocked(k);
        return;
    }
    emit_global_pool(k, "        double s = 0.0;\n"
                        "        for (int i = 0; i < S; i++) s += xp[i];\n"
                        "        y[nc] = (netc_real)(s / S);\n");
}

/* The maximum over H x W; NaN propagates. */
static void emit_global_maxpool(Kernel *k) {
    emit_global_pool(k, "        netc_real m = xp[0];\n"
                        "        for (int i = 1; i < S; i++) {\n"
                        "            const netc_real v = xp[i];\n"
                        "            m = (v > m || isnan(v)) ? v : m;\n"
                        "        }\n"
                        "        y[nc] = m;\n");
}

/* PyTorch's adaptive windows: output row oh covers input rows [h0, h1) =
 * [floor(oh * H / OH), ceil((oh + 1) * H / OH)), columns alike (the
 * forward kernel and the gradient's). */
static const char adaptive_rows[] =
    "const int h0 = (int)((long long)oh * H / OH), h1 = (int)(((long long)(oh + 1) * H + OH - 1) / OH);";
static const char adaptive_cols[] =
    "const int w0 = (int)((long long)ow * W / OW), w1 = (int)(((long long)(ow + 1) * W + OW - 1) / OW);";

/* adaptive_avgpool: each output averages its window, in double. */
static void emit_adaptive_avgpool(Kernel *k) {
    const Shape *x = in_shape(k, 0), *y = out_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]});
    kout(k, "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * H * W;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n"
            "            %s\n"
            "            for (int ow = 0; ow < OW; ow++) {\n"
            "                %s\n"
            "                double s = 0.0;\n"
            "                for (int ih = h0; ih < h1; ih++)\n"
            "                    for (int iw = w0; iw < w1; iw++) s += xp[(size_t)ih * W + iw];\n"
            "                y[((size_t)nc * OH + oh) * OW + ow] = (netc_real)(s / ((h1 - h0) * (w1 - w0)));\n"
            "            }\n"
            "        }\n"
            "    }\n",
         adaptive_rows, adaptive_cols);
    kclose(k);
}

/* maxpool with PyTorch's indices (h * W + w within the plane, stored as
 * floats): the first maximum of each window in row-major order; NaN wins. */
static void emit_maxpool_idx(Kernel *k) {
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y", "idx"});
    pool_enum(k, in_shape(k, 0), out_shape(k, 0), true);
    kout(k, "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * H * W;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n");
    kwindow_rows(k, 3);
    kout(k, "            for (int ow = 0; ow < OW; ow++) {\n");
    kwindow_cols(k, 4);
    kout(k, "                netc_real m = -INFINITY;\n"
            "                int at = h0 * W + w0;\n"
            "                for (int ih = h0; ih < h1; ih++)\n"
            "                    for (int iw = w0; iw < w1; iw++) {\n"
            "                        const netc_real v = xp[ih * W + iw];\n"
            "                        if (v > m || isnan(v)) {\n"
            "                            m = v;\n"
            "                            at = ih * W + iw;\n"
            "                        }\n"
            "                    }\n"
            "                const size_t o = ((size_t)nc * OH + oh) * OW + ow;\n"
            "                y[o] = m;\n"
            "                idx[o] = (netc_real)at;\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* MaxUnpool2d: zeros, and each x value at its index in the [OH, OW] plane;
 * an index outside the plane (not one maxpool_idx made) is skipped. */
static void emit_unpool(Kernel *k) {
    const Shape *x = in_shape(k, 0), *y = out_shape(k, 0);
    kopen(k, (const char *const[]){"x", "idx", "like"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"OH", y->d[2]}, {"OW", y->d[3]});
    kout(k, "    (void)like; /* read for its shape only */\n"
            "    memset(y, 0, (size_t)N * C * OH * OW * sizeof *y);\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * S, *restrict ip = idx + (size_t)nc * S;\n"
            "        netc_real *restrict yp = y + (size_t)nc * OH * OW;\n"
            "        for (int i = 0; i < S; i++) {\n"
            "            const netc_real f = ip[i];\n"
            "            if (f >= 0.0f && f < (netc_real)OH * OW) yp[(int)f] = xp[i];\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- training: pooling gradients ----------------------------------------------------- */

/* maxpool_grad on blocked dy, x and dx (layout_train): each lane's first
 * maximum, found as the plain kernel does, a block's V channels side by
 * side, then each lane's dy added at its own position. */
static void emit_maxpool_grad_blocked(Kernel *k) {
    const Value *xv = k->n->in[1];
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    pool_enum(k, in_shape(k, 1), in_shape(k, 0), false);
    kout(k, "    enum { V = %d, CB = (C + V - 1) / V };\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    typedef int ivec __attribute__((vector_size(V * sizeof(int))));\n"
            "    memset(dx, 0, (size_t)N * CB * H * W * V * sizeof *dx);\n"
            "    for (int nb = 0; nb < N * CB; nb++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nb * H * W * V;\n"
            "        const netc_real *restrict dyp = dy + (size_t)nb * OH * OW * V;\n"
            "        netc_real *restrict dxp = dx + (size_t)nb * H * W * V;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n",
         xv->cblock);
    kwindow_rows(k, 3);
    kout(k, "            for (int ow = 0; ow < OW; ow++) {\n");
    kwindow_cols(k, 4);
    kout(k, "                ivec best = (ivec){0} + (h0 * W + w0);\n"
            "                vec m = (vec){0} - INFINITY;\n"
            "                for (int ih = h0; ih < h1; ih++)\n"
            "                    for (int iw = w0; iw < w1; iw++) {\n"
            "                        const vec v = *(const vec *)(xp + (size_t)(ih * W + iw) * V);\n"
            "                        const ivec take = (v > m) | (v != v); /* greater, or NaN */\n"
            "                        m = (vec)(((ivec)v & take) | ((ivec)m & ~take));\n"
            "                        best = (((ivec){0} + (ih * W + iw)) & take) | (best & ~take);\n"
            "                    }\n"
            "                const netc_real *restrict g = dyp + (size_t)(oh * OW + ow) * V;\n"
            "                for (int v = 0; v < V; v++) dxp[(size_t)best[v] * V + v] += g[v];\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* Each window's gradient goes to its first maximum (padding ignored, a NaN
 * wins as in the forward pass and PyTorch); windows overlap, so dx sums.
 * x [N, C, H, W] is input 1, dy [N, C, OH, OW] input 0. */
static void emit_maxpool_grad(Kernel *k) {
    if (k->n->in[1]->cblock) { /* blocked x, dy and dx (layout_train) */
        emit_maxpool_grad_blocked(k);
        return;
    }
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    pool_enum(k, in_shape(k, 1), in_shape(k, 0), false);
    kout(k, "    memset(dx, 0, (size_t)N * C * H * W * sizeof *dx);\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * H * W;\n"
            "        const netc_real *restrict dyp = dy + (size_t)nc * OH * OW;\n"
            "        netc_real *restrict dxp = dx + (size_t)nc * H * W;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n");
    kwindow_rows(k, 3);
    kout(k, "            for (int ow = 0; ow < OW; ow++) {\n");
    kwindow_cols(k, 4);
    kout(k, "                int best = h0 * W + w0;\n"
            "                netc_real m = -INFINITY;\n"
            "                for (int ih = h0; ih < h1; ih++)\n"
            "                    for (int iw = w0; iw < w1; iw++) {\n"
            "                        const netc_real v = xp[ih * W + iw];\n"
            "                        if (v > m || isnan(v)) {\n"
            "                            m = v;\n"
            "                            best = ih * W + iw;\n"
            "                        }\n"
            "                    }\n"
            "                dxp[best] += dyp[oh * OW + ow];\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* Each window spreads dy / divisor over its input elements, the divisor as
 * in the forward pass.  On blocked dy and dx (layout_train) the same
 * arithmetic, a block's V channels side by side in vectors. */
static void emit_avgpool_grad(Kernel *k) {
    bool count_pad = k->n->a.pool.count_pad, blocked = k->n->in[1]->cblock != 0;
    /* a plane of x and dy: one channel's (float), or one block's V (vec) */
    const char *t = blocked ? "vec" : "netc_real", *planes = blocked ? "N * CB" : "N * C", *v = blocked ? " * V" : "";
    const char *g = blocked ? "*(const vec *)(dyp + (size_t)(oh * OW + ow) * V)" : "dyp[oh * OW + ow]";
    const char *upd = blocked ? "*(vec *)(dxp + (size_t)(ih * W + iw) * V) += g" : "dxp[ih * W + iw] += g";
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    pool_enum(k, in_shape(k, 1), in_shape(k, 0), false);
    kout(k, "    (void)x; /* read for its shape only */\n");
    if (blocked)
        kout(k, "    enum { V = %d, CB = (C + V - 1) / V }; /* dy and dx are NCHW%dc */\n"
                "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n",
             k->n->in[1]->cblock, k->n->in[1]->cblock);
    kout(k, "    memset(dx, 0, (size_t)%s * H * W%s * sizeof *dx);\n"
            "    for (int p = 0; p < %s; p++) {\n"
            "        const netc_real *restrict dyp = dy + (size_t)p * OH * OW%s;\n"
            "        netc_real *restrict dxp = dx + (size_t)p * H * W%s;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n",
         planes, v, planes, v, v);
    kwindow_rows(k, 3);
    if (count_pad)
        kout(k, "            const int he = hs + KH < H + PB ? hs + KH : H + PB; /* the window in the padded input */\n");
    kout(k, "            for (int ow = 0; ow < OW; ow++) {\n");
    kwindow_cols(k, 4);
    kout(k, "                if (h1 <= h0 || w1 <= w0) continue;\n");
    if (count_pad)
        kout(k, "                const int we = ws + KW < W + PR ? ws + KW : W + PR;\n"
                "                const %s g = %s / (netc_real)((he - hs) * (we - ws));\n", t, g);
    else
        kout(k, "                const %s g = %s / (netc_real)((h1 - h0) * (w1 - w0));\n", t, g);
    kout(k, "                for (int ih = h0; ih < h1; ih++)\n"
            "                    for (int iw = w0; iw < w1; iw++) %s;\n"
            "            }\n"
            "        }\n"
            "    }\n", upd);
    kclose(k);
}

/* dy plain [N, C, 1, 1] or [N, C]; dx as x, plain or blocked (layout_train:
 * its padded lanes 0). */
static void emit_global_avgpool_grad(Kernel *k) {
    const Value *xv = k->n->in[1];
    const Shape *x = &xv->shape;
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    if (xv->cblock) {
        kout(k, "    (void)x; /* read for its shape only */\n"
                "    enum { V = %d, CB = (C + V - 1) / V };\n"
                "    for (int n = 0; n < N; n++)\n"
                "        for (int c = 0; c < CB * V; c++) {\n"
                "            const netc_real g = c < C ? dy[(size_t)n * C + c] / (netc_real)S : 0.0f;\n"
                "            netc_real *restrict dxp = dx + ((size_t)n * CB + c / V) * S * V + c %% V;\n"
                "            for (int i = 0; i < S; i++) dxp[(size_t)i * V] = g;\n"
                "        }\n",
             xv->cblock);
        kclose(k);
        return;
    }
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real g = dy[nc] / (netc_real)S;\n"
            "        netc_real *restrict dxp = dx + (size_t)nc * S;\n"
            "        for (int i = 0; i < S; i++) dxp[i] = g;\n"
            "    }\n");
    kclose(k);
}

/* Each window spreads dy / its size over its input elements (PyTorch's
 * windows, as the forward kernel's; neighbouring windows may overlap). */
static void emit_adaptive_avgpool_grad(Kernel *k) {
    const Shape *x = in_shape(k, 1), *y = in_shape(k, 0);
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]});
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    memset(dx, 0, (size_t)N * C * H * W * sizeof *dx);\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        netc_real *restrict dxp = dx + (size_t)nc * H * W;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n"
            "            %s\n"
            "            for (int ow = 0; ow < OW; ow++) {\n"
            "                %s\n"
            "                const netc_real g = dy[((size_t)nc * OH + oh) * OW + ow] / (netc_real)((h1 - h0) * (w1 - w0));\n"
            "                for (int ih = h0; ih < h1; ih++)\n"
            "                    for (int iw = w0; iw < w1; iw++) dxp[(size_t)ih * W + iw] += g;\n"
            "            }\n"
            "        }\n"
            "    }\n",
         adaptive_rows, adaptive_cols);
    kclose(k);
}

/* global_maxpool's gradient: each plane's dy at its first maximum (found
 * as the forward kernel finds it, NaN winning), zeros elsewhere. */
static void emit_global_maxpool_grad(Kernel *k) {
    const Shape *x = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)});
    kout(k, "    memset(dx, 0, (size_t)N * C * S * sizeof *dx);\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * S;\n"
            "        netc_real m = xp[0];\n"
            "        int best = 0;\n"
            "        for (int i = 1; i < S; i++)\n"
            "            if (xp[i] > m || isnan(xp[i])) {\n"
            "                m = xp[i];\n"
            "                best = i;\n"
            "            }\n"
            "        dx[(size_t)nc * S + best] = dy[nc];\n"
            "    }\n");
    kclose(k);
}

/* maxpool_idx's gradient: zeros, and each window's dy added at the index
 * the forward pass found (windows overlap: two may share an index), as
 * PyTorch's max_pool2d_with_indices_backward scatters it.  An index outside
 * the plane (maxpool_idx makes none) is skipped. */
static void emit_maxpool_idx_grad(Kernel *k) {
    const Shape *x = in_shape(k, 2), *y = in_shape(k, 0);
    kopen(k, (const char *const[]){"dy", "idx", "x"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"OS", shape_spatial(y)});
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    memset(dx, 0, (size_t)N * C * S * sizeof *dx);\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict dyp = dy + (size_t)nc * OS, *restrict ip = idx + (size_t)nc * OS;\n"
            "        netc_real *restrict dxp = dx + (size_t)nc * S;\n"
            "        for (int i = 0; i < OS; i++) {\n"
            "            const netc_real f = ip[i];\n"
            "            if (f >= 0.0f && f < (netc_real)S) dxp[(int)f] += dyp[i];\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* unpool's gradient to its values: each value's dy from the position its
 * index put it at (PyTorch's gather), 0 for an index outside the [OH, OW]
 * plane, which the forward pass skipped. */
static void emit_unpool_grad(Kernel *k) {
    const Shape *dy = in_shape(k, 0), *x = in_shape(k, 1);
    kopen(k, (const char *const[]){"dy", "idx"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"OS", shape_spatial(dy)});
    kout(k, "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict dyp = dy + (size_t)nc * OS, *restrict ip = idx + (size_t)nc * S;\n"
            "        netc_real *restrict dxp = dx + (size_t)nc * S;\n"
            "        for (int i = 0; i < S; i++) {\n"
            "            const netc_real f = ip[i];\n"
            "            dxp[i] = f >= 0.0f && f < (netc_real)OS ? dyp[(int)f] : 0.0f;\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- gradient rules: from the op's input ------------------------------------------- */

/* Ops whose gradient reads the input (or only its shape). */
static void grad_from_input(GradCtx *c, Node *n, Value *dy, Op grad_op) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, grad_op, n, (Value *[]){dy, n->in[0]}, 2)));
}
static void grad_maxpool(GradCtx *c, Node *n, Value *dy) { grad_from_input(c, n, dy, OP_MAXPOOL_GRAD); }
static void grad_avgpool(GradCtx *c, Node *n, Value *dy) { grad_from_input(c, n, dy, OP_AVGPOOL_GRAD); }
static void grad_global_avgpool(GradCtx *c, Node *n, Value *dy) { grad_from_input(c, n, dy, OP_GLOBAL_AVGPOOL_GRAD); }
static void grad_global_maxpool(GradCtx *c, Node *n, Value *dy) { grad_from_input(c, n, dy, OP_GLOBAL_MAXPOOL_GRAD); }
static void grad_adaptive_avgpool(GradCtx *c, Node *n, Value *dy) {
    grad_from_input(c, n, dy, OP_ADAPTIVE_AVGPOOL_GRAD);
}

/* maxpool_idx: dy of the values scattered by the indices (output 1, which
 * has no gradient itself). */
static void grad_maxpool_idx(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_MAXPOOL_IDX_GRAD, n, (Value *[]){dy, n->out[1], n->in[0]}, 3)));
}

/* unpool: dy gathered by the indices for the values; none for the indices
 * or for like (read for its shape). */
static void grad_unpool(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_UNPOOL_GRAD, n, (Value *[]){dy, n->in[1]}, 2)));
}

/* ---- attributes ----------------------------------------------------------------------- */

static void dump_pool(const Node *n, FILE *f) {
    const PoolAttrs *a = &n->a.pool;
    fprintf(f, " kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d%s", a->kernel[0], a->kernel[1], a->stride[0],
            a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3], a->ceil ? " ceil" : "");
}

/* avgpool and its gradient: the pool's attributes and whether the padding
 * counts in the divisor. */
static void dump_avgpool(const Node *n, FILE *f) {
    dump_pool(n, f);
    if (!n->a.pool.count_pad) fprintf(f, " nocountpad");
}

static void dump_adaptive_avgpool(const Node *n, FILE *f) {
    fprintf(f, " size=%lldx%lld", (long long)n->a.adaptive.size[0], (long long)n->a.adaptive.size[1]);
}

/* ---- the entries ---------------------------------------------------------------------- */

#define NO_ATTRS "no attributes"
#define NO_MACS "pooling: compares and sums, no multiply-accumulates counted"
#define MADE_BY_AUTODIFF "a gradient op: autodiff makes it"
#define GRAD_OP "a gradient op: not differentiated again"

/* The window arguments of maxpool and maxpool_idx; avgpool adds count_pad. */
#define POOL_ARGS REQUIRED("x"), REQUIRED("kernel"), DEFAULT_NONE("stride"), DEFAULT_INT("pad", 0), \
                  DEFAULT_BOOL("ceil", false)

/* The --check-numerics names of maxpool_idx's outputs (those of any node
 * with several outputs and no names of its own). */
static const char *const maxpool_idx_outputs[] = {"output 1", "output 2"};

const OpRules op_rules_MAXPOOL = {
    .builtins = (const Builtin[]){{"maxpool", {POOL_ARGS}, false, build_pool}, {0}},
    .shape = shape_pool, .check = check_pool, .emit = emit_maxpool, .batched = op_batched_like_input0,
    .dump = dump_pool, .no_macs = NO_MACS, .grad = grad_maxpool,
    .blocked_ok = true, /* a blocked input gives a blocked output (the layout pass) */
    .blocked_train = true, /* maxpool_grad takes blocked values */
};

const OpRules op_rules_AVGPOOL = {
    .builtins = (const Builtin[]){{"avgpool", {POOL_ARGS, DEFAULT_BOOL("count_pad", true)}, false, build_pool}, {0}},
    .shape = shape_pool, .check = check_pool, .emit = emit_avgpool, .batched = op_batched_like_input0,
    .dump = dump_avgpool, .no_macs = NO_MACS, .grad = grad_avgpool,
    .blocked_ok = true, /* a blocked input gives a blocked output (the layout pass) */
    .blocked_train = true, /* avgpool_grad takes blocked values */
};

const OpRules op_rules_MAXPOOL_IDX = {
    .builtins = (const Builtin[]){{"maxpool_idx", {POOL_ARGS}, false, build_pool}, {0}},
    .shape = shape_pool_idx, .check = check_pool, .emit = emit_maxpool_idx, .batched = op_batched_like_input0,
    .output_names = maxpool_idx_outputs, .dump = dump_pool, .no_macs = NO_MACS, .grad = grad_maxpool_idx,
};

const OpRules op_rules_GLOBAL_AVGPOOL = {
    .builtins = (const Builtin[]){{"global_avgpool", {REQUIRED("x")}, false, build_unary}, {0}},
    .shape = shape_global_pool, .check = check_global_avgpool, .emit = emit_global_avgpool,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_global_avgpool,
    .blocked_ok = true, /* a blocked input gives a plain output (the layout pass) */
    .blocked_train = true, /* global_avgpool_grad writes x's layout */
};

const OpRules op_rules_GLOBAL_MAXPOOL = {
    .builtins = (const Builtin[]){{"global_maxpool", {REQUIRED("x")}, false, build_unary}, {0}},
    .shape = shape_global_pool, .check = check_pool, .emit = emit_global_maxpool,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_global_maxpool,
};

const OpRules op_rules_ADAPTIVE_AVGPOOL = {
    .builtins = (const Builtin[]){{"adaptive_avgpool", {REQUIRED("x"), REQUIRED("size")}, false, build_adaptive_pool},
                                  {0}},
    .shape = shape_adaptive_pool, .check = check_pool, .emit = emit_adaptive_avgpool,
    .batched = op_batched_like_input0, .dump = dump_adaptive_avgpool, .no_macs = NO_MACS, .grad = grad_adaptive_avgpool,
};

const OpRules op_rules_UNPOOL = {
    .builtins = (const Builtin[]){{"unpool", {REQUIRED("x"), REQUIRED("indices"), REQUIRED("like")}, false, build_unpool},
                                  {0}},
    .shape = shape_unpool, .check = check_pool, .emit = emit_unpool, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_unpool,
};

const OpRules op_rules_MAXPOOL_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_pool_grad, .emit = emit_maxpool_grad,
    .batched = op_batched_like_input0, .dump = dump_pool, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_AVGPOOL_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_pool_grad, .emit = emit_avgpool_grad,
    .batched = op_batched_like_input0, .dump = dump_avgpool, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_GLOBAL_AVGPOOL_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_global_avgpool_grad, .emit = emit_global_avgpool_grad,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_ADAPTIVE_AVGPOOL_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_pool_grad, .emit = emit_adaptive_avgpool_grad,
    .batched = op_batched_like_input0, .dump = dump_adaptive_avgpool, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_GLOBAL_MAXPOOL_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_global_avgpool_grad, .emit = emit_global_maxpool_grad,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_MAXPOOL_IDX_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_maxpool_idx_grad, .check = check_index_grad, .emit = emit_maxpool_idx_grad,
    .batched = op_batched_like_input0, .dump = dump_pool, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_UNPOOL_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_index_grad, .emit = emit_unpool_grad,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};
