/* Convolutions: conv (and dwconv, a conv with one group per input channel),
 * deconv (PyTorch's ConvTranspose2d), the gradients of conv: of its input,
 * of its weight, and of a bias (bias_grad, which linear's and deconv's
 * gradients use too), and deconv's input and weight gradients.
 *
 * Each op is its registry entry (ops.h): the builtins that make it, its
 * shape, emission and gradient, and the statements of what it lacks. */
#include <inttypes.h>
#include <string.h>

#include "../opkit.h"
#include "blocked.h"

/* ---- builders --------------------------------------------------------------- */

/* A conv's pad: an int, [h, w], [top, bottom, left, right], or "same": the
 * output is ceil(in / stride) and the total padding is split as TensorFlow
 * does, the odd pixel at the bottom and right. */
static void want_conv_pad(BuildCtx *c, ArgVal v, Span sp, const char *what, const Value *x, ConvAttrs *a) {
    if (v.k != E_STRING) {
        arg_pads(c, v, sp, what, a->pad);
        return;
    }
    if (strcmp(v.s, "valid") == 0) return; /* no padding */
    if (strcmp(v.s, "same") != 0)
        build_fail(c, sp, "%s must be an int, a list, \"same\" or \"valid\", got \"%s\"", what, v.s);
    for (int i = 0; i < 2; i++) {
        int64_t in = x->shape.d[2 + i], s = a->stride[i];
        int64_t out = (in + s - 1) / s, window = (int64_t)a->dilation[i] * (a->kernel[i] - 1) + 1;
        int64_t total = (out - 1) * s + window - in;
        if (total < 0) total = 0;
        if (total > INT32_MAX) build_fail(c, sp, "%s \"same\" needs a padding of %" PRId64 ", too large", what, total);
        a->pad[2 * i] = (int)(total / 2);
        a->pad[2 * i + 1] = (int)(total - total / 2);
    }
}

/* The conv node and its parameters, for conv and dwconv.  Groups that do
 * not divide the channels make a weight of the wrong shape, which the shape
 * rule rejects with the message about the groups before it looks at the
 * weight. */
static Node *make_conv(BuildCtx *c, const char *op, Value *x, const Attrs *a) {
    int64_t ch = x->shape.d[1];
    const char *inst = build_instance(c, op);
    Value *in[3] = {x};
    in[1] = build_param(c, inst, "weight", 4,
                        (int64_t[]){a->conv.out, ch / a->conv.groups, a->conv.kernel[0], a->conv.kernel[1]},
                        INIT_XAVIER);
    if (a->conv.bias) in[2] = build_param(c, inst, "bias", 1, &a->conv.out, INIT_ZERO);
    Node *y = build_node(c, OP_CONV, inst, in, a->conv.bias ? 3 : 2, a);
    build_warn_wide_window(c, op, x, a->conv.kernel, a->conv.stride, a->conv.pad, a->conv.dilation);
    return y;
}

static Value *want_image(BuildCtx *c, const char *op, ArgVal v, Span vsp) {
    char what[64], buf[128];
    snprintf(what, sizeof what, "%s's input", op);
    Value *x = arg_tensor(c, v, vsp, what);
    if (x->shape.rank != 4)
        build_fail(c, c->call, "%s expects a [C, H, W] input, got %s", op, value_sample_str(x, buf, sizeof buf));
    return x;
}

static Node *build_conv(BuildCtx *c) {
    Value *x = want_image(c, "conv", build_arg(c, 0), build_span(c, 0));
    Attrs a = {0};
    a.conv.out = arg_small(c, build_arg(c, 1), build_span(c, 1), "conv's output channels", 1, INT32_MAX);
    arg_pair(c, build_arg(c, 2), build_span(c, 2), "conv's kernel", 1, a.conv.kernel);
    arg_pair(c, build_arg(c, 3), build_span(c, 3), "conv's stride", 1, a.conv.stride);
    arg_pair(c, build_arg(c, 5), build_span(c, 5), "conv's dilation", 1, a.conv.dilation);
    want_conv_pad(c, build_arg(c, 4), build_span(c, 4), "conv's pad", x, &a.conv);
    a.conv.groups = arg_small(c, build_arg(c, 6), build_span(c, 6), "conv's groups", 1, INT32_MAX);
    a.conv.bias = arg_bool(c, build_arg(c, 7), build_span(c, 7), "conv's bias");
    return make_conv(c, c->builtin->name, x, &a);
}

/* dwconv: a conv with one group per input channel and multiplier outputs each. */
static Node *build_dwconv(BuildCtx *c) {
    Value *x = want_image(c, "dwconv", build_arg(c, 0), build_span(c, 0));
    Attrs a = {0};
    arg_pair(c, build_arg(c, 1), build_span(c, 1), "dwconv's kernel", 1, a.conv.kernel);
    arg_pair(c, build_arg(c, 2), build_span(c, 2), "dwconv's stride", 1, a.conv.stride);
    arg_pair(c, build_arg(c, 4), build_span(c, 4), "dwconv's dilation", 1, a.conv.dilation);
    want_conv_pad(c, build_arg(c, 3), build_span(c, 3), "dwconv's pad", x, &a.conv);
    int64_t mult = arg_small(c, build_arg(c, 5), build_span(c, 5), "dwconv's multiplier", 1, INT32_MAX);
    a.conv.bias = arg_bool(c, build_arg(c, 6), build_span(c, 6), "dwconv's bias");
    int64_t ch = x->shape.d[1];
    if (ch > INT32_MAX / mult)
        build_fail(c, build_span(c, 5), "dwconv's multiplier %" PRId64 " makes too many channels", mult);
    a.conv.groups = (int)ch;
    a.conv.out = ch * mult;
    return make_conv(c, c->builtin->name, x, &a);
}

/* deconv: PyTorch's ConvTranspose2d, weight [C, out / groups, kh, kw]. */
static Node *build_deconv(BuildCtx *c) {
    Value *x = want_image(c, "deconv", build_arg(c, 0), build_span(c, 0));
    Attrs a = {0};
    a.conv.out = arg_small(c, build_arg(c, 1), build_span(c, 1), "deconv's output channels", 1, INT32_MAX);
    arg_pair(c, build_arg(c, 2), build_span(c, 2), "deconv's kernel", 1, a.conv.kernel);
    arg_pair(c, build_arg(c, 3), build_span(c, 3), "deconv's stride", 1, a.conv.stride);
    int pad[2];
    arg_pair(c, build_arg(c, 4), build_span(c, 4), "deconv's pad", 0, pad);
    a.conv.pad[0] = a.conv.pad[1] = pad[0];
    a.conv.pad[2] = a.conv.pad[3] = pad[1];
    arg_pair(c, build_arg(c, 5), build_span(c, 5), "deconv's output_pad", 0, a.conv.output_pad);
    a.conv.groups = arg_small(c, build_arg(c, 6), build_span(c, 6), "deconv's groups", 1, INT32_MAX);
    a.conv.bias = arg_bool(c, build_arg(c, 7), build_span(c, 7), "deconv's bias");
    arg_pair(c, build_arg(c, 8), build_span(c, 8), "deconv's dilation", 1, a.conv.dilation);
    for (int i = 0; i < 2; i++)
        if (a.conv.output_pad[i] >= a.conv.stride[i] && a.conv.output_pad[i] >= a.conv.dilation[i])
            build_fail(c, build_span(c, 5),
                       "deconv's output_pad (%d) must be smaller than its stride (%d) or its dilation (%d)",
                       a.conv.output_pad[i], a.conv.stride[i], a.conv.dilation[i]);
    int64_t ch = x->shape.d[1]; /* groups that do not divide it: the shape rule says so */
    const char *inst = build_instance(c, c->builtin->name);
    Value *in[3] = {x};
    in[1] = build_param(c, inst, "weight", 4,
                        (int64_t[]){ch, a.conv.out / a.conv.groups, a.conv.kernel[0], a.conv.kernel[1]}, INIT_XAVIER);
    if (a.conv.bias) in[2] = build_param(c, inst, "bias", 1, &a.conv.out, INIT_ZERO);
    return build_node(c, OP_DECONV, inst, in, a.conv.bias ? 3 : 2, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

/* The operands of conv and deconv: a [C, H, W] input, groups dividing its
 * channels and the outputs, the weight ([K, C/groups, kh, kw] for conv,
 * [C, K/groups, kh, kw] transposed for deconv) and the bias [K]. */
static bool conv_operands(Node *n, bool transposed) {
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    const ConvAttrs *a = &n->a.conv;
    int64_t c = n->in[0]->shape.d[1];
    if (a->groups < 1 || c % a->groups || a->out % a->groups || a->out < 1) {
        diag_error(n->span, "%s groups = %d must divide both the input channels (%lld) and the output channels (%lld)",
                   op_name(n->op), a->groups, (long long)c, (long long)a->out);
        return false;
    }
    int64_t w[4] = {transposed ? c : a->out, (transposed ? a->out : c) / a->groups, a->kernel[0], a->kernel[1]};
    if (!shape_want_param(n, 1, 4, w, "weight")) return false;
    return n->nin < 3 || shape_want_param(n, 2, 1, &a->out, "bias");
}

static bool shape_conv(Graph *g, Node *n) {
    (void)g;
    if (!conv_operands(n, false)) return false;
    const ConvAttrs *a = &n->a.conv;
    const int64_t *x = n->in[0]->shape.d;
    int64_t oh = shape_window_out(n, x[2], a->kernel[0], a->stride[0], a->pad[0], a->pad[1], a->dilation[0], false,
                                  "height");
    if (oh < 0) return false;
    int64_t ow = shape_window_out(n, x[3], a->kernel[1], a->stride[1], a->pad[2], a->pad[3], a->dilation[1], false,
                                  "width");
    if (ow < 0) return false;
    shape_set_out(n, 0, 4, (int64_t[]){x[0], a->out, oh, ow});
    return true;
}

/* ConvTranspose2d: H' = (H - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1. */
static bool shape_deconv(Graph *g, Node *n) {
    (void)g;
    if (!conv_operands(n, true)) return false;
    const ConvAttrs *a = &n->a.conv;
    const int64_t *x = n->in[0]->shape.d;
    int64_t o[2];
    static const char *const axis[2] = {"height", "width"};
    for (int i = 0; i < 2; i++) {
        int k = a->kernel[i], s = a->stride[i], d = a->dilation[i], op = a->output_pad[i];
        int64_t p = (int64_t)a->pad[2 * i] + a->pad[2 * i + 1];
        if (k < 1 || s < 1 || d < 1 || p < 0 || op < 0) {
            diag_error(n->span, "deconv needs a positive kernel, stride and dilation and a non-negative pad and output_pad");
            return false;
        }
        o[i] = (x[2 + i] - 1) * s - p + (int64_t)d * (k - 1) + op + 1;
        if (o[i] < 1) {
            diag_error(n->span, "deconv's output %s would be %lld: the pad (%lld in all) is too large for the input (%s %lld)",
                       axis[i], (long long)o[i], (long long)p, axis[i], (long long)x[2 + i]);
            return false;
        }
    }
    shape_set_out(n, 0, 4, (int64_t[]){x[0], a->out, o[0], o[1]});
    return true;
}

/* conv_grad_input and conv_grad_weight: the shape of input 2 (x, or the weight). */
static bool shape_dx_like_in2(Graph *g, Node *n) {
    (void)g;
    return shape_like(n, 0, 2);
}

static bool shape_bias_grad(Graph *g, Node *n) {
    (void)g;
    shape_set_out(n, 0, 1, &n->in[0]->shape.d[1]);
    return true;
}

/* ---- emission checks ------------------------------------------------------------ */

static bool rank_is(const Value *v, int rank) { return v->shape.rank == rank; }

static const char *check_conv(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    return x->rank != 4 || n->in[1]->shape.rank != 4 || n->out[0]->shape.rank != 4 ? "conv needs 4-d tensors" : NULL;
}

static const char *check_conv_grad(const Graph *g, const Node *n) {
    (void)g;
    Value *const *in = n->in;
    /* conv_grad_input of layout_train: a blocked dy and dx, the weight packed transposed */
    if (n->op == OP_CONV_GRAD_INPUT && rank_is(in[1], 5))
        return !in[0]->cblock || in[0]->cblock != n->out[0]->cblock || in[1]->shape.d[4] != in[0]->cblock ||
                       n->a.conv.groups > 1
                   ? "a packed weight needs a blocked dy and dx of its vector width, one group"
                   : NULL;
    if (n->op == OP_CONV_GRAD_INPUT && (in[0]->cblock || n->out[0]->cblock))
        return "blocked values need the weight packed transposed";
    if (n->op == OP_CONV_GRAD_WEIGHT && in[1]->cblock && !in[0]->cblock) return "a blocked x needs a blocked dy";
    if (n->op == OP_CONV_GRAD_WEIGHT && in[0]->cblock && n->a.conv.groups > 1)
        return "the blocked weight gradient is of one group";
    return !rank_is(in[0], 4) || !rank_is(in[1], 4) || !rank_is(in[2], 4) ? "conv needs 4-d tensors" : NULL;
}

/* deconv's gradients: plain 4-d dy, x and weight (deconv has no blocked kernel). */
static const char *check_deconv_grad(const Graph *g, const Node *n) {
    (void)g;
    for (int i = 0; i < 3; i++)
        if (!rank_is(n->in[i], 4) || n->in[i]->cblock) return "deconv's gradients need plain 4-d tensors";
    return n->out[0]->cblock ? "deconv's gradients need plain 4-d tensors" : NULL;
}

static const char *check_channels(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank < 2 ? "needs [N, C, ...]" : NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* The constants of a conv, a deconv or a conv gradient: x [N, C, H, W], the
 * output side y (or dy) [N, K, OH, OW], the weight w (KH, KW from its last
 * two dims), the attributes, and the channels per group. */
static void conv_enum(Kernel *k, const Shape *x, const Shape *y, const Shape *w) {
    const ConvAttrs *a = &k->n->a.conv;
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"K", y->d[1]}, {"OH", y->d[2]},
          {"OW", y->d[3]}, {"KH", w->d[2]}, {"KW", w->d[3]}, {"SH", dim_or_one(a->stride[0])},
          {"SW", dim_or_one(a->stride[1])}, {"PT", a->pad[0]}, {"PL", a->pad[2]}, {"DH", dim_or_one(a->dilation[0])},
          {"DW", dim_or_one(a->dilation[1])}, {"G", dim_or_one(a->groups)});
    kout(k, "    enum { CG = C / G, KG = K / G }; /* input and output channels per group */\n");
}

static void emit_conv(Kernel *k) {
    const Node *n = k->n;
    bool bias = n->nin == 3;
    const Shape *y = out_shape(k, 0);
    kopen_parallel(k, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"}, 0, y->d[0], y->d[1] * y->d[2]);
    conv_enum(k, in_shape(k, 0), y, in_shape(k, 1));
    kout(k, "    /* work items: the N * K * OH output rows, items [t0, t1) here */\n");
    if (k->dyn) kout(k, "    (void)N; /* in the count of items */\n");
    klines(k, 1, "for (int64_t t = t0; t < t1; t++) {\n"
                 "    const int n = (int)(t / ((int64_t)K * OH)), k = (int)(t / OH % K), oh = (int)(t % OH), g = k / KG;\n"
                 "    netc_real *restrict yr = y + (((size_t)n * K + k) * OH + oh) * OW;\n");
    if (bias)
        klines(k, 2, "for (int ow = 0; ow < OW; ow++) yr[ow] = b[k];\n");
    else
        klines(k, 2, "for (int ow = 0; ow < OW; ow++) yr[ow] = 0.0f;\n");
    klines(k, 2, "for (int c = 0; c < CG; c++) {\n");
    kwindow_taps(k, 3,
                 "const netc_real *restrict xr = x + (((size_t)n * C + g * CG + c) * H + ih) * W;\n"
                 "const netc_real *restrict wr = w + (((size_t)k * CG + c) * KH + kh) * KW;\n",
                 "const netc_real wv = wr[kw];\n"
                 "for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * SW + off];\n");
    kclose_blocks(k, 2, 2);
    kclose(k);
}

/* The input columns iw in [lo, hi) whose output column ow = iw * SW + off
 * of deconv's tap kw falls inside [0, OW): the forward kernel and the two
 * gradients' loops over one tap. */
static const char deconv_cols[] =
    "const int off = kw * DW - PL; /* ow = iw * SW + off */\n"
    "const int lo = off < 0 ? (SW - 1 - off) / SW : 0;\n"
    "const int end = (OW - off + SW - 1) / SW;\n"
    "const int hi = end < W ? end : W;\n";

/* Each input pixel scatters its kernel-weighted value: input (ih, iw) reaches
 * output (ih * SH - PT + kh * DH, iw * SW - PL + kw * DW).  For one tap the
 * valid input columns iw in [lo, hi) keep the output column inside [0, OW). */
static void emit_deconv(Kernel *k) {
    const Node *n = k->n;
    bool bias = n->nin == 3;
    kopen(k, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"});
    conv_enum(k, in_shape(k, 0), out_shape(k, 0), in_shape(k, 1));
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int k = 0; k < K; k++) {\n"
            "            netc_real *restrict yp = y + ((size_t)n * K + k) * OH * OW;\n");
    if (bias)
        kout(k, "            for (int i = 0; i < OH * OW; i++) yp[i] = b[k];\n");
    else
        kout(k, "            for (int i = 0; i < OH * OW; i++) yp[i] = 0.0f;\n");
    kout(k, "        }\n"
            "        for (int c = 0; c < C; c++) {\n"
            "            const int g = c / CG;\n"
            "            const netc_real *restrict xp = x + ((size_t)n * C + c) * H * W;\n"
            "            for (int kg = 0; kg < KG; kg++) {\n"
            "                netc_real *restrict yp = y + ((size_t)n * K + g * KG + kg) * OH * OW;\n"
            "                const netc_real *restrict wp = w + ((size_t)c * KG + kg) * KH * KW;\n"
            "                for (int ih = 0; ih < H; ih++) {\n"
            "                    const netc_real *restrict xr = xp + (size_t)ih * W;\n"
            "                    for (int kh = 0; kh < KH; kh++) {\n"
            "                        const int oh = ih * SH - PT + kh * DH;\n"
            "                        if (oh < 0 || oh >= OH) continue;\n"
            "                        netc_real *restrict yr = yp + (size_t)oh * OW;\n"
            "                        for (int kw = 0; kw < KW; kw++) {\n");
    klines(k, 7, deconv_cols);
    kout(k, "                            const netc_real wv = wp[kh * KW + kw];\n"
            "                            for (int iw = lo; iw < hi; iw++) yr[iw * SW + off] += wv * xr[iw];\n"
            "                        }\n"
            "                    }\n"
            "                }\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- training: conv gradients ------------------------------------------------------ */

/* The transposed conv: every dy element scatters through the weights to the
 * inputs its output read in the forward pass.  The tap kw is the outer loop
 * so that consecutive row updates go to different rows (updating one row at
 * shifted offsets back to back stalls on store forwarding).  (Blocked dy
 * and dx: emit_conv_grad_input_blocked.) */
static void emit_conv_grad_input(Kernel *k) {
    if (k->n->in[1]->shape.rank == 5) { /* blocked dy and dx, the weight packed transposed */
        emit_conv_grad_input_blocked(k);
        return;
    }
    kopen(k, (const char *const[]){"dy", "w", "x"}, (const char *const[]){"dx"});
    conv_enum(k, in_shape(k, 2), in_shape(k, 0), in_shape(k, 1));
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    memset(dx, 0, (size_t)N * C * H * W * sizeof *dx);\n");
    kconv_output_rows(k);
    kout(k, "                    const netc_real *restrict dyr = dy + (((size_t)n * K + k) * OH + oh) * OW;\n"
            "                    for (int kw = 0; kw < KW; kw++) {\n");
    kcol_range(k, 6, "kw * DW");
    kout(k, "                        for (int c = 0; c < CG; c++) {\n"
            "                            for (int kh = 0; kh < KH; kh++) {\n");
    kwindow_row(k, 8);
    kout(k, "                                netc_real *restrict dxr = dx + (((size_t)n * C + g * CG + c) * H + ih) * W;\n"
            "                                const netc_real wv = w[(((size_t)k * CG + c) * KH + kh) * KW + kw];\n"
            "                                for (int ow = lo; ow < hi; ow++) dxr[ow * SW + off] += wv * dyr[ow];\n");
    kclose_blocks(k, 7, 7);
    kclose(k);
}

/* The weight gradient of a conv of one group whose dy is blocked
 * (layout_train's conv_blocked): vectors of V output channels.  dw[k][c]
 * [kh][kw] sums dy[n][k][oh][ow] * x[n][c][ih][iw] over the samples and
 * output positions; the V channels of dy's block are one vector, so a
 * register block of RC input channels is RC accumulators, each position
 * adding dy's vector times each channel's input value (broadcast): one
 * load of dy and RC broadcasts for RC FMAs, the accumulator block of the
 * scheme of blocked_conv_row turned around (GotoBLAS's microkernel on the
 * product dy^T x, positions as the inner dimension).
 *
 * A work item is one output block, one block of RC input channels and one
 * tap row kh (and one tap of it, when that makes fewer than 8 items); for
 * each sample it goes through the KW taps of the row, each
 * tap's RC accumulators adding up that sample's OH x OW positions, then
 * added to the item's partial sums (a few KiB, on the stack), so that the
 * sample's rows of dy and x (its channel blocks) are read from the cache
 * KW times rather than the batch's from memory.  Sums in float, in sample
 * then position order: the same bits at any thread count. */
static void emit_conv_grad_weight_blocked(Kernel *k) {
    const Value *dyv = k->n->in[0], *xv = k->n->in[1];
    const Shape *x = &xv->shape, *dy = &dyv->shape, *w = in_shape(k, 2);
    int v = dyv->cblock;
    /* blocked x: RC = V channels, its block's lanes (those past C are zero
     * and never stored), or C if less; plain x (the net's input): the
     * largest divisor of C up to V, so no block reads past a sample's planes */
    int64_t rc = v;
    if (xv->cblock && x->d[1] < v) rc = x->d[1]; /* one block, its first C lanes */
    if (!xv->cblock) {
        rc = x->d[1] < v ? x->d[1] : v;
        while (x->d[1] % rc) rc--;
    }
    int64_t ob = (dy->d[1] + v - 1) / v, cb = (x->d[1] + rc - 1) / rc;
    bool taps_in_regs = rc * w->d[3] <= 24 && rc < v;
    /* Fewer than 8 items (a layer of one block of 16 channels has 3): one
     * tap per item, so that two threads or four share the work evenly. */
    int64_t tw = !taps_in_regs && ob * cb * w->d[2] < 8 ? w->d[3] : 1;
    kopen_parallel(k, (const char *const[]){"dy", "x", "w"}, (const char *const[]){"dw"}, 0, 0,
                   ob * cb * w->d[2] * tw);
    conv_enum(k, x, dy, w);
    kout(k, "    (void)w; /* read for its shape only */\n"
            "    /* Blocking (%s): V = %d output channels per vector, RC = %lld input channels\n"
            "     * (accumulators), work items (output block, channel block, kh%s): %lld */\n"
            "    enum { V = %d, RC = %lld, OB = (K + V - 1) / V, CBK = (C + RC - 1) / RC, TW = %lld };\n"
            "    enum { XS = %d, XR = %s }; /* x: column stride, channel stride */\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n",
         k->target->name, v, (long long)rc, tw > 1 ? ", kw" : "", (long long)(ob * cb * w->d[2] * tw), v,
         (long long)rc, (long long)tw, kcol_stride(xv), xv->cblock ? "1" : "H * W");
    kout(k, "    for (int64_t t = t0; t < t1; t++) {\n"
            "        const int64_t u = t / TW; /* TW > 1: item t is tap kw = t %% TW of item u */\n"
            "        const int ob = (int)(u / ((int64_t)CBK * KH)), c0 = (int)(u / KH %% CBK) * RC, kh = (int)(u %% KH);\n"
            "        const int kw0 = TW > 1 ? (int)(t %% TW) : 0, kw1 = TW > 1 ? kw0 + 1 : KW; /* its taps */\n"
            "        vec part[KW][RC]; /* the item's sums so far */\n"
            "        for (int kw = 0; kw < KW; kw++)\n"
            "            for (int r = 0; r < RC; r++) part[kw][r] = (vec){0};\n"
            "        for (int n = 0; n < N; n++) {\n"
            "            const netc_real *restrict dyn = dy + ((size_t)n * OB + ob) * OH * OW * V;\n");
    if (xv->cblock)
        kout(k, "            const netc_real *restrict xn = x + ((size_t)n * ((C + V - 1) / V) + c0 / V) * H * W * V + c0 %% V;\n");
    else
        kout(k, "            const netc_real *restrict xn = x + ((size_t)n * C + c0) * H * W;\n");
    if (taps_in_regs) {
        /* Few input channels (the first conv's): the KW taps of the row in
         * registers too, RC * KW accumulators, so a load of dy serves KW * RC
         * FMAs; the columns where every tap is inside x run unchecked. */
        kout(k, "            /* RC * KW = %lld accumulators: the row's taps side by side */\n"
                "            const int OW_LO = (PL + SW - 1) / SW, OW_HI0 = (W - 1 - (KW - 1) * DW + PL) / SW + 1;\n"
                "            const int OW_HI = OW_HI0 < OW ? OW_HI0 : OW; /* the columns where every tap is inside */\n"
                "            vec acc[KW][RC];\n"
                "#pragma GCC unroll 32\n"
                "            for (int i = 0; i < KW * RC; i++) acc[i / RC][i %% RC] = (vec){0};\n",
             (long long)(rc * w->d[3]));
        kout(k, "            for (int oh = 0; oh < OH; oh++) {\n");
        kwindow_row(k, 4);
        kout(k, "                const netc_real *restrict dyr = dyn + (size_t)oh * OW * V;\n"
                "                const netc_real *restrict xr = xn + (size_t)ih * W * XS;\n"
                "                for (int ow = 0; ow < OW; ow++) {\n"
                "                    const vec d = *(const vec *)(dyr + (size_t)ow * V);\n"
                "                    const int iw0 = ow * SW - PL;\n"
                "                    if (ow >= OW_LO && ow < OW_HI) { /* every tap inside */\n"
                "#pragma GCC unroll 32\n"
                "                        for (int i = 0; i < KW * RC; i++)\n"
                "                            acc[i / RC][i %% RC] += d * xr[(size_t)(iw0 + i / RC * DW) * XS + (size_t)(i %% RC) * XR];\n"
                "                    } else {\n"
                "                        for (int kw = 0; kw < KW; kw++) {\n"
                "                            const int iw = iw0 + kw * DW;\n"
                "                            if (iw < 0 || iw >= W) continue;\n"
                "                            for (int r = 0; r < RC; r++) acc[kw][r] += d * xr[(size_t)iw * XS + (size_t)r * XR];\n"
                "                        }\n"
                "                    }\n"
                "                }\n"
                "            }\n"
                "            for (int kw = 0; kw < KW; kw++)\n"
                "                for (int r = 0; r < RC; r++) part[kw][r] += acc[kw][r];\n"
                "        }\n");
    } else {
    kout(k, "            for (int kw = kw0; kw < kw1; kw++) {\n"
            "                vec acc[RC];\n"
            "#pragma GCC unroll 16\n"
            "                for (int r = 0; r < RC; r++) acc[r] = (vec){0};\n");
    kcol_range(k, 4, "kw * DW");
    kout(k, "                for (int oh = 0; oh < OH; oh++) {\n");
    kwindow_row(k, 5);
    kout(k, "                    const netc_real *restrict dyr = dyn + (size_t)oh * OW * V;\n"
            "                    const netc_real *restrict xr = xn + (size_t)ih * W * XS;\n"
            "                    for (int ow = lo; ow < hi; ow++) {\n"
            "                        const vec d = *(const vec *)(dyr + (size_t)ow * V);\n"
            "                        const netc_real *restrict xp = xr + (size_t)(ow * SW + off) * XS;\n"
            "#pragma GCC unroll 16\n"
            "                        for (int r = 0; r < RC; r++) acc[r] += d * xp[(size_t)r * XR];\n"
            "                    }\n"
            "                }\n"
            "#pragma GCC unroll 16\n"
            "                for (int r = 0; r < RC; r++) part[kw][r] += acc[r];\n"
            "            }\n"
            "        }\n");
    }
    kout(k, "        for (int kw = kw0; kw < kw1; kw++)\n"
            "            for (int r = 0; r < RC && c0 + r < C; r++)\n"
            "                for (int j = 0; j < V && ob * V + j < K; j++)\n"
            "                    dw[(((size_t)(ob * V + j) * C + c0 + r) * KH + kh) * KW + kw] = part[kw][r][j];\n"
            "    }\n");
    kclose(k);
}

/* dw[k][c][kh][kw] = the sum over the batch and output positions of dy times
 * the input the tap read, in double: one partial sum per output column (a
 * loop that vectorizes), added up at the end.  dy and x plain or blocked
 * (a blocked dy of one group takes emit_conv_grad_weight_blocked). */
static void emit_conv_grad_weight(Kernel *k) {
    if (k->n->in[0]->cblock) { /* a conv_blocked's (layout_train: one group, a vector target) */
        emit_conv_grad_weight_blocked(k);
        return;
    }
    kopen(k, (const char *const[]){"dy", "x", "w"}, (const char *const[]){"dw"});
    conv_enum(k, in_shape(k, 1), in_shape(k, 0), in_shape(k, 2));
    kout(k, "    (void)w; /* read for its shape only */\n"
            "    for (int g = 0; g < G; g++) {\n"
            "        for (int k = g * KG; k < (g + 1) * KG; k++) {\n"
            "            for (int c = 0; c < CG; c++) {\n"
            "                for (int kh = 0; kh < KH; kh++) {\n"
            "                    for (int kw = 0; kw < KW; kw++) {\n");
    kcol_range(k, 6, "kw * DW");
    kout(k, "                        double acc[OW] = {0};\n"
            "                        for (int n = 0; n < N; n++) {\n"
            "                            for (int oh = 0; oh < OH; oh++) {\n");
    kwindow_row(k, 8);
    kout(k, "                                const netc_real *restrict dyr = dy + (((size_t)n * K + k) * OH + oh) * OW;\n"
            "                                const netc_real *restrict xr = x + (((size_t)n * C + g * CG + c) * H + ih) * W;\n"
            "                                for (int ow = lo; ow < hi; ow++) acc[ow] += (double)dyr[ow] * xr[ow * SW + off];\n"
            "                            }\n"
            "                        }\n"
            "                        double s = 0.0;\n"
            "                        for (int ow = lo; ow < hi; ow++) s += acc[ow];\n"
            "                        dw[(((size_t)k * CG + c) * KH + kh) * KW + kw] = (netc_real)s;\n"
            "                    }\n"
            "                }\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* db[k] = the sum of dy over every dim but 1, in double; dy plain, or
 * blocked [N, K, H, W] (layout_train). */
static void emit_bias_grad(Kernel *k) {
    const Value *dyv = k->n->in[0];
    const Shape *dy = &dyv->shape;
    kopen(k, (const char *const[]){"dy"}, (const char *const[]){"db"});
    KENUM(k, {"N", dy->d[0]}, {"K", dy->d[1]}, {"S", shape_spatial(dy)});
    if (dyv->cblock) /* a block's V channels side by side, each summed in the plain kernel's order */
        kout(k, "    enum { V = %d, KB = (K + V - 1) / V };\n"
                "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
                "    typedef double dvec __attribute__((vector_size(V * sizeof(double))));\n"
                "    for (int kb = 0; kb < KB; kb++) {\n"
                "        dvec s = {0};\n"
                "        for (int n = 0; n < N; n++) {\n"
                "            const netc_real *restrict dyk = dy + ((size_t)n * KB + kb) * S * V;\n"
                "            for (int i = 0; i < S; i++) s += __builtin_convertvector(*(const vec *)(dyk + (size_t)i * V), dvec);\n"
                "        }\n"
                "        for (int v = 0; v < V && kb * V + v < K; v++) db[kb * V + v] = (netc_real)s[v];\n"
                "    }\n",
             dyv->cblock);
    else
        kout(k, "    for (int k = 0; k < K; k++) {\n"
                "        double s = 0.0;\n"
                "        for (int n = 0; n < N; n++) {\n"
                "            const netc_real *restrict dyk = dy + ((size_t)n * K + k) * S;\n"
                "            for (int i = 0; i < S; i++) s += dyk[i];\n"
                "        }\n"
                "        db[k] = (netc_real)s;\n"
                "    }\n");
    kclose(k);
}

/* deconv's input gradient: the conv of dy with the deconv's weight, each
 * input pixel (ih, iw) gathering dy at every output (ih * SH - PT + kh * DH,
 * iw * SW - PL + kw * DW) it reached in the forward pass, times the tap's
 * weight w[c][kg][kh][kw], over the KG output channels of its group. */
static void emit_deconv_grad_input(Kernel *k) {
    kopen(k, (const char *const[]){"dy", "w", "x"}, (const char *const[]){"dx"});
    conv_enum(k, in_shape(k, 2), in_shape(k, 0), in_shape(k, 1));
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    for (int n = 0; n < N; n++) {\n"
            "        for (int c = 0; c < C; c++) {\n"
            "            const int g = c / CG;\n"
            "            const netc_real *restrict wc = w + (size_t)c * KG * KH * KW;\n"
            "            for (int ih = 0; ih < H; ih++) {\n"
            "                netc_real *restrict dxr = dx + (((size_t)n * C + c) * H + ih) * W;\n"
            "                for (int iw = 0; iw < W; iw++) dxr[iw] = 0.0f;\n"
            "                for (int kg = 0; kg < KG; kg++) {\n"
            "                    const netc_real *restrict dyp = dy + ((size_t)n * K + g * KG + kg) * OH * OW;\n"
            "                    for (int kh = 0; kh < KH; kh++) {\n"
            "                        const int oh = ih * SH - PT + kh * DH;\n"
            "                        if (oh < 0 || oh >= OH) continue;\n"
            "                        const netc_real *restrict dyr = dyp + (size_t)oh * OW;\n"
            "                        for (int kw = 0; kw < KW; kw++) {\n");
    klines(k, 7, deconv_cols);
    kout(k, "                            const netc_real wv = wc[(kg * KH + kh) * KW + kw];\n"
            "                            for (int iw = lo; iw < hi; iw++) dxr[iw] += wv * dyr[iw * SW + off];\n"
            "                        }\n"
            "                    }\n"
            "                }\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* deconv's weight gradient: dw[c][kg][kh][kw] = the sum over the batch and
 * the input pixels of x[n][c][ih][iw] times dy at the output the tap sent
 * it to, in double: one partial sum per input column (a loop that
 * vectorizes), added up at the end. */
static void emit_deconv_grad_weight(Kernel *k) {
    kopen(k, (const char *const[]){"dy", "x", "w"}, (const char *const[]){"dw"});
    conv_enum(k, in_shape(k, 1), in_shape(k, 0), in_shape(k, 2));
    kout(k, "    (void)w; /* read for its shape only */\n"
            "    for (int c = 0; c < C; c++) {\n"
            "        const int g = c / CG;\n"
            "        for (int kg = 0; kg < KG; kg++) {\n"
            "            for (int kh = 0; kh < KH; kh++) {\n"
            "                for (int kw = 0; kw < KW; kw++) {\n");
    klines(k, 5, deconv_cols);
    kout(k, "                    double acc[W] = {0};\n"
            "                    for (int n = 0; n < N; n++) {\n"
            "                        const netc_real *restrict xp = x + ((size_t)n * C + c) * H * W;\n"
            "                        const netc_real *restrict dyp = dy + ((size_t)n * K + g * KG + kg) * OH * OW;\n"
            "                        for (int ih = 0; ih < H; ih++) {\n"
            "                            const int oh = ih * SH - PT + kh * DH;\n"
            "                            if (oh < 0 || oh >= OH) continue;\n"
            "                            const netc_real *restrict xr = xp + (size_t)ih * W, *restrict dyr = dyp + (size_t)oh * OW;\n"
            "                            for (int iw = lo; iw < hi; iw++) acc[iw] += (double)xr[iw] * dyr[iw * SW + off];\n"
            "                        }\n"
            "                    }\n"
            "                    double s = 0.0;\n"
            "                    for (int iw = lo; iw < hi; iw++) s += acc[iw];\n"
            "                    dw[(((size_t)c * KG + kg) * KH + kh) * KW + kw] = (netc_real)s;\n"
            "                }\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- gradient rules ------------------------------------------------------------------ */

/* conv and deconv: the input's gradient (grad_input: dy, w, x), the
 * weight's (grad_weight: dy, x, w) and the bias's, the sum of dy per output
 * channel. */
static void grad_conv_like(GradCtx *c, Node *n, Value *dy, Op grad_input, Op grad_weight) {
    Value *x = n->in[0], *w = n->in[1];
    if (grad_needed(c, x)) grad_accum(c, x, grad_out0(grad_node(c, grad_input, n, (Value *[]){dy, w, x}, 3)));
    if (grad_needed(c, w)) grad_accum(c, w, grad_out0(grad_node(c, grad_weight, n, (Value *[]){dy, x, w}, 3)));
    if (n->nin == 3 && grad_needed(c, n->in[2]))
        grad_accum(c, n->in[2], grad_out0(grad_node(c, OP_BIAS_GRAD, n, &dy, 1)));
}

static void grad_conv(GradCtx *c, Node *n, Value *dy) {
    grad_conv_like(c, n, dy, OP_CONV_GRAD_INPUT, OP_CONV_GRAD_WEIGHT);
}

static void grad_deconv(GradCtx *c, Node *n, Value *dy) {
    grad_conv_like(c, n, dy, OP_DECONV_GRAD_INPUT, OP_DECONV_GRAD_WEIGHT);
}

/* ---- attributes ----------------------------------------------------------------------- */

static void dump_conv(const Node *n, FILE *f) {
    const ConvAttrs *a = &n->a.conv;
    fprintf(f, " out=%lld kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d dilation=%dx%d groups=%d%s", (long long)a->out,
            a->kernel[0], a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3],
            a->dilation[0], a->dilation[1], a->groups, a->bias ? "" : " nobias");
}

static void dump_deconv(const Node *n, FILE *f) {
    fprintf(f, " output_pad=%dx%d", n->a.conv.output_pad[0], n->a.conv.output_pad[1]);
    dump_conv(n, f);
}

/* Multiply-accumulates per sample: every output value meets C/g * kh * kw weights. */
static int64_t macs_conv(const Node *n) {
    const Shape *y = &n->out[0]->shape;
    int64_t per_out = shape_numel(y) / y->d[0];
    const Shape *w = &n->in[1]->shape; /* [K, C/g, kh, kw] */
    return per_out * w->d[1] * w->d[2] * w->d[3];
}

/* Every input value meets out/groups * kh * kw weights. */
static int64_t macs_deconv(const Node *n) {
    const Shape *x = &n->in[0]->shape, *w = &n->in[1]->shape; /* [C, K/g, kh, kw] */
    return shape_numel(x) / x->d[0] * w->d[1] * w->d[2] * w->d[3];
}

/* ---- the entries ---------------------------------------------------------------------- */

#define NO_MACS_TRAINING "a training op: not counted"
#define MADE_BY_AUTODIFF "a gradient op: autodiff makes it"
#define GRAD_OP "a gradient op: not differentiated again"
#define NO_DUMP_BIAS_GRAD "no attributes of its own: the forward op's, copied by autodiff, are not printed"

const OpRules op_rules_CONV = {
    .builtins = (const Builtin[]){{"conv",
                                   {REQUIRED("x"), REQUIRED("out"), REQUIRED("kernel"), DEFAULT_INT("stride", 1),
                                    DEFAULT_INT("pad", 0), DEFAULT_INT("dilation", 1), DEFAULT_INT("groups", 1),
                                    DEFAULT_BOOL("bias", true)},
                                   false, build_conv},
                                  {"dwconv",
                                   {REQUIRED("x"), REQUIRED("kernel"), DEFAULT_INT("stride", 1), DEFAULT_INT("pad", 0),
                                    DEFAULT_INT("dilation", 1), DEFAULT_INT("multiplier", 1),
                                    DEFAULT_BOOL("bias", true)},
                                   false, build_dwconv},
                                  {0}},
    .shape = shape_conv, .check = check_conv, .emit = emit_conv, .batched = op_batched_like_input0,
    .dump = dump_conv, .macs = macs_conv, .grad = grad_conv,
};

const OpRules op_rules_DECONV = {
    .builtins = (const Builtin[]){{"deconv",
                                   {REQUIRED("x"), REQUIRED("out"), REQUIRED("kernel"), DEFAULT_INT("stride", 1),
                                    DEFAULT_INT("pad", 0), DEFAULT_INT("output_pad", 0), DEFAULT_INT("groups", 1),
                                    DEFAULT_BOOL("bias", true), DEFAULT_INT("dilation", 1)},
                                   false, build_deconv},
                                  {0}},
    .shape = shape_deconv, .check = check_conv, .emit = emit_deconv, .batched = op_batched_like_input0,
    .dump = dump_deconv, .macs = macs_deconv, .grad = grad_deconv,
};

const OpRules op_rules_CONV_GRAD_INPUT = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dx_like_in2, .check = check_conv_grad, .emit = emit_conv_grad_input,
    .batched = op_batched_like_input0,
    .dump = dump_conv, .no_macs = NO_MACS_TRAINING, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_CONV_GRAD_WEIGHT = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dx_like_in2, .check = check_conv_grad, .emit = emit_conv_grad_weight,
    .batched = op_batched_never,
    .dump = dump_conv, .no_macs = NO_MACS_TRAINING, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

const OpRules op_rules_BIAS_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_bias_grad, .check = check_channels, .emit = emit_bias_grad, .batched = op_batched_never,
    .no_dump = NO_DUMP_BIAS_GRAD, .no_macs = NO_MACS_TRAINING, .no_grad = GRAD_OP,
    .blocked_ok = true, /* training builds (layout_train) */
};

/* A depthwise conv (groups = input channels = output channels), made from a
 * conv by lower_depthwise: plain, conv's kernel computes it; blocked (the
 * layout pass), dwconv_blocked's vectorizes it over the channels. */
const OpRules op_rules_DWCONV = {
    .no_build = "lower_depthwise makes it from a conv (dwconv in the language is a conv)",
    .shape = shape_conv, .check = check_conv, .emit = emit_conv, .batched = op_batched_like_input0,
    .dump = dump_conv, .macs = macs_conv, .no_grad = "inference only: lower_depthwise does not run in training builds",
};

const OpRules op_rules_DECONV_GRAD_INPUT = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dx_like_in2, .check = check_deconv_grad, .emit = emit_deconv_grad_input,
    .batched = op_batched_like_input0,
    .dump = dump_deconv, .no_macs = NO_MACS_TRAINING, .no_grad = GRAD_OP,
};

const OpRules op_rules_DECONV_GRAD_WEIGHT = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_dx_like_in2, .check = check_deconv_grad, .emit = emit_deconv_grad_weight,
    .batched = op_batched_never,
    .dump = dump_deconv, .no_macs = NO_MACS_TRAINING, .no_grad = GRAD_OP,
};
