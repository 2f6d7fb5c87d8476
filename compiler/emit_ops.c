/* The C emitter's per-op code: one rule per op, indexed by Op (ops.def).
 *
 * Each rule writes one complete static C function computing a node: the
 * signature (inputs as `const float *restrict`, in the node's input order,
 * then outputs as `float *restrict`), the shapes and attributes as
 * compile-time enum constants, and straightforward loops that clang -O2 can
 * vectorize.  Semantics are PyTorch's (NCHW, batch included in shapes).
 *
 * The framework (emit.c) writes the comment above each function, calls the
 * function from the run or prepare function with the nodes' buffers, and
 * calls emit_node_check on every node before writing anything.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"

/* Shared with emit.c (these two files are the emitter). */
bool emit_node_check(const Graph *g, const Node *n);
void emit_node_function(FILE *f, const Node *n, const char *fname);

typedef struct E {
    FILE *f;
    const Node *n;
    const char *fname;
} E;

__attribute__((format(printf, 2, 3))) static void out(E *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->f, fmt, ap);
    va_end(ap);
}

/* `static void fname(const float *restrict x, ..., float *restrict y)` and
 * the opening brace; `in` names the node's nin inputs, `outs` its outputs. */
static void open_fn(E *e, const char *const *in, const char *const *outs) {
    out(e, "static void %s(", e->fname);
    for (int i = 0; i < e->n->nin; i++) out(e, "%sconst float *restrict %s", i ? ", " : "", in[i]);
    for (int i = 0; i < e->n->nout; i++) out(e, ", float *restrict %s", outs[i]);
    out(e, ")\n{\n");
}

static void close_fn(E *e) { out(e, "}\n"); }

typedef struct Const {
    const char *name;
    int64_t v;
} Const;

static void put_enum(E *e, const Const *k, size_t n) {
    out(e, "    enum { ");
    for (size_t i = 0; i < n; i++) out(e, "%s%s = %lld", i ? ", " : "", k[i].name, (long long)k[i].v);
    out(e, " };\n");
}
#define ENUM(e, ...) put_enum(e, (const Const[]){__VA_ARGS__}, sizeof((const Const[]){__VA_ARGS__}) / sizeof(Const))

/* An element count: an enum constant when it fits an int, else a size_t. */
static void put_count(E *e, const char *name, int64_t v) {
    if (v <= INT_MAX)
        out(e, "    enum { %s = %lld };\n", name, (long long)v);
    else
        out(e, "    const size_t %s = %lluu;\n", name, (unsigned long long)v);
}

/* A double constant, exact. */
static void put_double(E *e, const char *name, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    out(e, "    const double %s = %s;\n", name, buf);
}

static const Shape *in_shape(const E *e, int i) { return &e->n->in[i]->shape; }
static const Shape *out_shape(const E *e, int i) { return &e->n->out[i]->shape; }

/* Elements per (sample, channel) of a [N, C, ...] shape. */
static int64_t spatial(const Shape *s) {
    int64_t p = 1;
    for (int i = 2; i < s->rank; i++) p *= s->d[i];
    return p;
}

static int dim_or_one(int v) { return v > 0 ? v : 1; }

/* The valid range of output columns for one kernel tap: ow in [lo, hi)
 * keeps iw = ow * SW + off inside [0, W).  Written into the inner loops of
 * conv and pooling so the loop over ow has no branch. */
static void put_col_range(E *e, const char *indent, const char *tap) {
    out(e, "%sconst int off = %s - PL;\n", indent, tap);
    out(e, "%sconst int lo = off < 0 ? (SW - 1 - off) / SW : 0;\n", indent);
    out(e, "%sconst int end = (W - off + SW - 1) / SW;\n", indent);
    out(e, "%sconst int hi = end < OW ? end : OW;\n", indent);
}

/* ---- conv ------------------------------------------------------------------ */

static void emit_conv(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0), *y = out_shape(e, 0);
    bool bias = n->nin == 3;
    open_fn(e, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"K", y->d[1]}, {"OH", y->d[2]},
         {"OW", y->d[3]}, {"KH", n->in[1]->shape.d[2]}, {"KW", n->in[1]->shape.d[3]},
         {"SH", dim_or_one(n->a.stride[0])}, {"SW", dim_or_one(n->a.stride[1])}, {"PT", n->a.pad[0]},
         {"PL", n->a.pad[2]}, {"DH", dim_or_one(n->a.dilation[0])}, {"DW", dim_or_one(n->a.dilation[1])},
         {"G", dim_or_one(n->a.groups)});
    out(e, "    enum { CG = C / G, KG = K / G }; /* input and output channels per group */\n");
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        for (int g = 0; g < G; g++) {\n"
           "            for (int k = g * KG; k < (g + 1) * KG; k++) {\n"
           "                for (int oh = 0; oh < OH; oh++) {\n"
           "                    float *restrict yr = y + (((size_t)n * K + k) * OH + oh) * OW;\n");
    if (bias)
        out(e, "                    for (int ow = 0; ow < OW; ow++) yr[ow] = b[k];\n");
    else
        out(e, "                    for (int ow = 0; ow < OW; ow++) yr[ow] = 0.0f;\n");
    out(e, "                    for (int c = 0; c < CG; c++) {\n"
           "                        for (int kh = 0; kh < KH; kh++) {\n"
           "                            const int ih = oh * SH - PT + kh * DH;\n"
           "                            if (ih < 0 || ih >= H) continue;\n"
           "                            const float *restrict xr = x + (((size_t)n * C + g * CG + c) * H + ih) * W;\n"
           "                            const float *restrict wr = w + (((size_t)k * CG + c) * KH + kh) * KW;\n"
           "                            for (int kw = 0; kw < KW; kw++) {\n");
    put_col_range(e, "                                ", "kw * DW");
    out(e, "                                const float wv = wr[kw];\n"
           "                                for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * SW + off];\n"
           "                            }\n"
           "                        }\n"
           "                    }\n"
           "                }\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- linear ---------------------------------------------------------------- */

static void emit_linear(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0), *w = in_shape(e, 1);
    bool bias = n->nin == 3;
    open_fn(e, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"D", shape_numel(x) / x->d[0]}, {"K", w->d[0]});
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        const float *restrict xn = x + (size_t)n * D;\n"
           "        for (int k = 0; k < K; k++) {\n"
           "            const float *restrict wk = w + (size_t)k * D;\n"
           "            float s = 0.0f;\n"
           "            for (int d = 0; d < D; d++) s += xn[d] * wk[d];\n");
    if (bias)
        out(e, "            y[(size_t)n * K + k] = s + b[k];\n");
    else
        out(e, "            y[(size_t)n * K + k] = s;\n");
    out(e, "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- batchnorm (eval mode) -------------------------------------------------- */

static void emit_batchnorm(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x", "gamma", "beta", "mean", "var"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)});
    put_double(e, "EPS", e->n->a.eps);
    out(e, "    for (int c = 0; c < C; c++) {\n"
           "        /* y = (x - mean) / sqrt(var + eps) * gamma + beta */\n"
           "        const float m = mean[c];\n"
           "        const float s = (float)(1.0 / sqrt((double)var[c] + EPS)) * gamma[c];\n"
           "        const float t = beta[c];\n"
           "        for (int n = 0; n < N; n++) {\n"
           "            const float *restrict xc = x + ((size_t)n * C + c) * S;\n"
           "            float *restrict yc = y + ((size_t)n * C + c) * S;\n"
           "            for (int i = 0; i < S; i++) yc[i] = (xc[i] - m) * s + t;\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- elementwise activations ------------------------------------------------ */

static void emit_unary(E *e, const char *expr) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    put_count(e, "NUMEL", shape_numel(out_shape(e, 0)));
    out(e, "    for (size_t i = 0; i < NUMEL; i++) y[i] = %s;\n", expr);
    close_fn(e);
}

/* x < 0 ? 0 : x keeps NaN as PyTorch does. */
static void emit_relu(E *e) { emit_unary(e, "x[i] < 0.0f ? 0.0f : x[i]"); }
static void emit_tanh(E *e) { emit_unary(e, "tanhf(x[i])"); }
static void emit_sigmoid(E *e) { emit_unary(e, "1.0f / (1.0f + expf(-x[i]))"); }

/* ---- pooling ----------------------------------------------------------------- */

/* Pooling has no dilation (shape.c computes windows of kernel size). */
static void pool_enum(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0), *y = out_shape(e, 0);
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]},
         {"KH", dim_or_one(n->a.kernel[0])}, {"KW", dim_or_one(n->a.kernel[1])},
         {"SH", dim_or_one(n->a.stride[0])}, {"SW", dim_or_one(n->a.stride[1])}, {"PT", n->a.pad[0]},
         {"PB", n->a.pad[1]}, {"PL", n->a.pad[2]}, {"PR", n->a.pad[3]},
         {"DH", 1}, {"DW", 1});
}

/* Padding counts as -inf; NaN propagates as in PyTorch. */
static void emit_maxpool(E *e) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    pool_enum(e);
    out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * H * W;\n"
           "        for (int oh = 0; oh < OH; oh++) {\n"
           "            float *restrict yr = y + ((size_t)nc * OH + oh) * OW;\n"
           "            for (int ow = 0; ow < OW; ow++) yr[ow] = -INFINITY;\n"
           "            for (int kh = 0; kh < KH; kh++) {\n"
           "                const int ih = oh * SH - PT + kh * DH;\n"
           "                if (ih < 0 || ih >= H) continue;\n"
           "                const float *restrict xr = xp + (size_t)ih * W;\n"
           "                for (int kw = 0; kw < KW; kw++) {\n");
    put_col_range(e, "                    ", "kw * DW");
    out(e, "                    for (int ow = lo; ow < hi; ow++) {\n"
           "                        const float v = xr[ow * SW + off], m = yr[ow];\n"
           "                        yr[ow] = (v > m || isnan(v)) ? v : m;\n"
           "                    }\n"
           "                }\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* The divisor is PyTorch's: with count_pad the window clipped to the padded
 * input, without it the window clipped to the input. */
static void emit_avgpool(E *e) {
    bool count_pad = e->n->a.count_pad;
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    pool_enum(e);
    out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * H * W;\n"
           "        for (int oh = 0; oh < OH; oh++) {\n"
           "            float *restrict yr = y + ((size_t)nc * OH + oh) * OW;\n"
           "            for (int ow = 0; ow < OW; ow++) yr[ow] = 0.0f;\n"
           "            for (int kh = 0; kh < KH; kh++) {\n"
           "                const int ih = oh * SH - PT + kh * DH;\n"
           "                if (ih < 0 || ih >= H) continue;\n"
           "                const float *restrict xr = xp + (size_t)ih * W;\n"
           "                for (int kw = 0; kw < KW; kw++) {\n");
    put_col_range(e, "                    ", "kw * DW");
    out(e, "                    for (int ow = lo; ow < hi; ow++) yr[ow] += xr[ow * SW + off];\n"
           "                }\n"
           "            }\n"
           "            const int hs = oh * SH - PT;\n"
           "            const int he = hs + KH < H + PB ? hs + KH : H + PB;\n");
    if (count_pad) {
        out(e, "            for (int ow = 0; ow < OW; ow++) {\n"
               "                const int ws = ow * SW - PL;\n"
               "                const int we = ws + KW < W + PR ? ws + KW : W + PR;\n"
               "                yr[ow] /= (float)((he - hs) * (we - ws));\n"
               "            }\n");
    } else {
        out(e, "            const int rows = (he < H ? he : H) - (hs > 0 ? hs : 0);\n"
               "            for (int ow = 0; ow < OW; ow++) {\n"
               "                const int ws = ow * SW - PL;\n"
               "                const int we = ws + KW < W + PR ? ws + KW : W + PR;\n"
               "                const int cols = (we < W ? we : W) - (ws > 0 ? ws : 0);\n"
               "                yr[ow] = rows > 0 && cols > 0 ? yr[ow] / (float)(rows * cols) : 0.0f;\n"
               "            }\n");
    }
    out(e, "        }\n"
           "    }\n");
    close_fn(e);
}

/* The mean over H x W, summed in double (PyTorch computes it as a mean). */
static void emit_global_avgpool(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)});
    out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * S;\n"
           "        double s = 0.0;\n"
           "        for (int i = 0; i < S; i++) s += xp[i];\n"
           "        y[nc] = (float)(s / S);\n"
           "    }\n");
    close_fn(e);
}

/* ---- reshapes ----------------------------------------------------------------- */

static void emit_flatten(E *e) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    put_count(e, "NUMEL", shape_numel(out_shape(e, 0)));
    out(e, "    memcpy(y, x, NUMEL * sizeof *y);\n");
    close_fn(e);
}

/* ---- softmax over dim 1 ------------------------------------------------------- */

static void emit_softmax(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->rank > 1 ? x->d[1] : 1}, {"S", spatial(x)});
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        for (int s = 0; s < S; s++) {\n"
           "            const float *restrict xs = x + (size_t)n * C * S + s;\n"
           "            float *restrict ys = y + (size_t)n * C * S + s;\n"
           "            float m = xs[0];\n"
           "            for (int c = 1; c < C; c++) m = xs[(size_t)c * S] > m ? xs[(size_t)c * S] : m;\n"
           "            float sum = 0.0f;\n"
           "            for (int c = 0; c < C; c++) {\n"
           "                const float v = expf(xs[(size_t)c * S] - m);\n"
           "                ys[(size_t)c * S] = v;\n"
           "                sum += v;\n"
           "            }\n"
           "            const float inv = 1.0f / sum;\n"
           "            for (int c = 0; c < C; c++) ys[(size_t)c * S] *= inv;\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- add, mul with per-channel broadcast -------------------------------------- */

typedef enum { B_SAME, B_SAMPLE_CHANNEL, B_CHANNEL, B_SCALAR, B_BAD } Bcast;

/* How operand `s` broadcasts against the output shape y. */
static Bcast bcast_kind(const Shape *s, const Shape *y) {
    if (shape_eq(s, y)) return B_SAME;
    int64_t n = shape_numel(s);
    if (n == 1) return B_SCALAR;
    if (y->rank < 2) return B_BAD;
    int64_t N = y->d[0], C = y->d[1];
    /* [N, C, 1, ...] or [N, C] */
    if (s->rank >= 2 && s->d[0] == N && s->d[1] == C && n == N * C) return B_SAMPLE_CHANNEL;
    /* [C, 1, ...] or [C]: a per-sample shape without the batch */
    if (s->rank >= 1 && s->d[0] == C && n == C && s->rank < y->rank) return B_CHANNEL;
    return B_BAD;
}

static void emit_binary(E *e, char op) {
    const Shape *y = out_shape(e, 0);
    Bcast ka = bcast_kind(in_shape(e, 0), y), kb = bcast_kind(in_shape(e, 1), y);
    open_fn(e, (const char *const[]){"a", "b"}, (const char *const[]){"y"});
    if (ka == B_SAME && kb == B_SAME) {
        put_count(e, "NUMEL", shape_numel(y));
        out(e, "    for (size_t i = 0; i < NUMEL; i++) y[i] = a[i] %c b[i];\n", op);
        close_fn(e);
        return;
    }
    /* One operand has the output's shape, the other one value per channel. */
    bool small_a = ka != B_SAME;
    Bcast k = small_a ? ka : kb;
    ENUM(e, {"N", y->d[0]}, {"C", y->rank > 1 ? y->d[1] : 1}, {"S", spatial(y)});
    const char *small = small_a ? "a" : "b", *full = small_a ? "b" : "a";
    const char *index = k == B_SAMPLE_CHANNEL ? "(size_t)n * C + c" : k == B_CHANNEL ? "c" : "0";
    out(e, "    /* %s has one value per %s */\n", small,
        k == B_SAMPLE_CHANNEL ? "sample and channel" : k == B_CHANNEL ? "channel" : "tensor");
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        for (int c = 0; c < C; c++) {\n"
           "            const float v = %s[%s];\n"
           "            const float *restrict f = %s + ((size_t)n * C + c) * S;\n"
           "            float *restrict yc = y + ((size_t)n * C + c) * S;\n",
        small, index, full);
    if (small_a)
        out(e, "            for (int i = 0; i < S; i++) yc[i] = v %c f[i];\n", op);
    else
        out(e, "            for (int i = 0; i < S; i++) yc[i] = f[i] %c v;\n", op);
    out(e, "        }\n"
           "    }\n");
    close_fn(e);
}

static void emit_add(E *e) { emit_binary(e, '+'); }
static void emit_mul(E *e) { emit_binary(e, '*'); }

/* ---- bn_fold (init time) -------------------------------------------------------- */

/* s = gamma / sqrt(var + eps) in double; w' = w * s[k] over the first
 * (output channel) dimension; b' = (b - mean) * s + beta, b = 0 if absent. */
static void emit_bn_fold(E *e) {
    const Node *n = e->n;
    bool bias = n->nin == 6;
    const Shape *w = in_shape(e, 0);
    open_fn(e,
            bias ? (const char *const[]){"w", "b", "gamma", "beta", "mean", "var"}
                 : (const char *const[]){"w", "gamma", "beta", "mean", "var"},
            (const char *const[]){"wf", "bf"});
    ENUM(e, {"K", w->d[0]}, {"P", shape_numel(w) / w->d[0]});
    put_double(e, "EPS", n->a.eps);
    out(e, "    for (int k = 0; k < K; k++) {\n"
           "        const double s = gamma[k] / sqrt((double)var[k] + EPS);\n"
           "        for (int i = 0; i < P; i++) wf[(size_t)k * P + i] = (float)(w[(size_t)k * P + i] * s);\n");
    if (bias)
        out(e, "        bf[k] = (float)(((double)b[k] - mean[k]) * s + beta[k]);\n");
    else
        out(e, "        bf[k] = (float)(-(double)mean[k] * s + beta[k]);\n");
    out(e, "    }\n");
    close_fn(e);
}

static void (*const emit_rule[OP_COUNT])(E *e) = {
    [OP_CONV] = emit_conv,
    [OP_LINEAR] = emit_linear,
    [OP_BATCHNORM] = emit_batchnorm,
    [OP_RELU] = emit_relu,
    [OP_TANH] = emit_tanh,
    [OP_SIGMOID] = emit_sigmoid,
    [OP_MAXPOOL] = emit_maxpool,
    [OP_AVGPOOL] = emit_avgpool,
    [OP_GLOBAL_AVGPOOL] = emit_global_avgpool,
    [OP_FLATTEN] = emit_flatten,
    [OP_SOFTMAX] = emit_softmax,
    [OP_ADD] = emit_add,
    [OP_MUL] = emit_mul,
    [OP_BN_FOLD] = emit_bn_fold,
};

/* Whether the rules can emit n (shapes the loops assume); reports an error
 * at the node otherwise.  Called on every node before anything is written. */
bool emit_node_check(const Graph *g, const Node *n) {
    (void)g;
    const char *why = NULL;
    char a[64], b[64];
    if ((unsigned)n->op >= OP_COUNT) {
        diag_error(n->span, "internal error: cannot emit op number %d", (int)n->op);
        return false;
    }
    if (!emit_rule[n->op]) {
        why = "no C code for this op";
    } else if (n->nin < op_info[n->op].min_inputs || n->nin > op_info[n->op].max_inputs ||
               n->nout != op_info[n->op].outputs) {
        why = "wrong number of operands";
    } else {
        for (int i = 0; i < n->nin; i++)
            if (!n->in[i] || shape_numel(&n->in[i]->shape) > (int64_t)1 << 40) why = "tensor too large";
        for (int i = 0; i < n->nout; i++)
            if (!n->out[i] || shape_numel(&n->out[i]->shape) > (int64_t)1 << 40) why = "tensor too large";
    }
    if (!why) {
        const Shape *x = n->nin ? &n->in[0]->shape : NULL;
        switch (n->op) {
        case OP_CONV:
            if (x->rank != 4 || n->in[1]->shape.rank != 4 || n->out[0]->shape.rank != 4) why = "conv needs 4-d tensors";
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL:
            if (x->rank != 4 || n->out[0]->shape.rank != 4) why = "pooling needs [N, C, H, W]";
            break;
        case OP_GLOBAL_AVGPOOL:
        case OP_BATCHNORM:
            if (x->rank < 2) why = "needs [N, C, ...]";
            break;
        case OP_LINEAR:
        case OP_SOFTMAX:
            if (x->rank < 1 || x->d[0] == 0) why = "needs a batch dimension";
            break;
        case OP_BN_FOLD:
            if (x->rank < 1 || x->d[0] == 0) why = "needs a weight with an output dimension";
            break;
        case OP_ADD:
        case OP_MUL: {
            const Shape *y = &n->out[0]->shape;
            Bcast ka = bcast_kind(&n->in[0]->shape, y), kb = bcast_kind(&n->in[1]->shape, y);
            if (ka == B_BAD || kb == B_BAD || (ka != B_SAME && kb != B_SAME) || (ka != B_SAME && y->rank < 1)) {
                diag_error(n->span, "internal error: cannot emit %s of shapes %s and %s", op_name(n->op),
                           shape_str(&n->in[0]->shape, a, sizeof a), shape_str(&n->in[1]->shape, b, sizeof b));
                return false;
            }
            break;
        }
        default:
            break;
        }
    }
    if (why) {
        diag_error(n->span, "internal error: cannot emit %s \"%s\": %s", op_name(n->op), n->name ? n->name : "",
                   why);
        return false;
    }
    return true;
}

void emit_node_function(FILE *f, const Node *n, const char *fname) {
    E e = {f, n, fname};
    emit_rule[n->op](&e);
}
