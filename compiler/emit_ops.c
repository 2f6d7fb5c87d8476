/* The C emitter's per-op code: one rule per op, indexed by Op (ops.def).
 *
 * Each rule writes one complete static C function computing a node: the
 * signature (inputs as `const float *restrict`, in the node's input order,
 * then outputs as `float *restrict`; an input the op writes in place, such as
 * batchnorm's running statistics or SGD's parameter and velocity, is
 * `float *restrict`), the shapes and attributes as compile-time enum
 * constants, and straightforward loops that clang -O2 can vectorize.
 * Semantics are PyTorch's (NCHW, batch included in shapes).
 *
 * Training graphs (g->train): every kernel loops over the active batch, the
 * emitted file's `nb_active` (at most the compiled batch NMAX), instead of
 * the constant N, for every value whose first dimension is the batch
 * (emit_batched); reductions over the batch (batchnorm statistics, weight and
 * bias gradients, the loss) cover nb_active samples and use double
 * accumulators.  Inference graphs keep N a constant.
 *
 * The framework (emit.c) writes the comment above each function, calls the
 * function from the run, grad, update or prepare function with the nodes'
 * buffers, and calls emit_node_check on every node before writing anything.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"

/* Shared with emit.c (these two files are the emitter). */
bool emit_node_check(const Graph *g, const Node *n);
void emit_batched(const Graph *g, bool *batched);
void emit_node_function(FILE *f, const Node *n, const char *fname, const bool *batched);
unsigned emit_written_inputs(const Node *n);

typedef struct E {
    FILE *f;
    const Node *n;
    const char *fname;
    const bool *batched; /* by value id, training graphs only (else NULL) */
    bool dyn;            /* the node's batch loops run over nb_active, not the constant N */
} E;

__attribute__((format(printf, 2, 3))) static void out(E *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->f, fmt, ap);
    va_end(ap);
}

/* `static void fname(const float *restrict x, ..., float *restrict y)` and
 * the opening brace; `in` names the node's nin inputs, `outs` its outputs. */
static void open_fn_rw(E *e, const char *const *in, const char *const *outs, unsigned written) {
    out(e, "static void %s(", e->fname);
    for (int i = 0; i < e->n->nin; i++)
        out(e, "%s%sfloat *restrict %s", i ? ", " : "", written >> i & 1 ? "" : "const ", in[i]);
    for (int i = 0; i < e->n->nout; i++) out(e, ", float *restrict %s", outs[i]);
    out(e, ")\n{\n");
}

static void open_fn(E *e, const char *const *in, const char *const *outs) { open_fn_rw(e, in, outs, 0); }

static void close_fn(E *e) { out(e, "}\n"); }

typedef struct Const {
    const char *name;
    int64_t v;
} Const;

static void put_active_batch(E *e) { out(e, "    const int N = nb_active; /* the active batch, at most NMAX */\n"); }

/* The constants; in a training graph the batch N is the active batch instead. */
static void put_enum(E *e, const Const *k, size_t n) {
    bool active = false;
    out(e, "    enum { ");
    for (size_t i = 0, first = 1; i < n; i++) {
        if (e->dyn && strcmp(k[i].name, "N") == 0) {
            active = true;
            continue;
        }
        out(e, "%s%s = %lld", first ? "" : ", ", k[i].name, (long long)k[i].v);
        first = 0;
    }
    out(e, " };\n");
    if (active) put_active_batch(e);
}
#define ENUM(e, ...) put_enum(e, (const Const[]){__VA_ARGS__}, sizeof((const Const[]){__VA_ARGS__}) / sizeof(Const))

/* An element count: an enum constant when it fits an int, else a size_t. */
static void put_count(E *e, const char *name, int64_t v) {
    if (v <= INT_MAX)
        out(e, "    enum { %s = %lld };\n", name, (long long)v);
    else
        out(e, "    const size_t %s = %lluu;\n", name, (unsigned long long)v);
}

static bool batched(const E *e, const Value *v) { return e->batched && e->batched[v->id]; }

/* NUMEL, the element count of a value of shape s; for a batched value of a
 * training graph, nb_active samples. */
static void put_numel(E *e, const Value *v) {
    const Shape *s = &v->shape;
    if (!batched(e, v) || s->rank == 0 || s->d[0] == 0) {
        put_count(e, "NUMEL", shape_numel(s));
        return;
    }
    put_count(e, "SAMPLE", shape_numel(s) / s->d[0]);
    put_active_batch(e);
    out(e, "    const size_t NUMEL = (size_t)N * SAMPLE;\n");
}

/* A double as an exact C literal. */
static const char *double_literal(char *buf, size_t n, double v) {
    snprintf(buf, n - 2, "%.17g", v);
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    return buf;
}

/* A double constant, exact. */
static void put_double(E *e, const char *name, double v) {
    char buf[64];
    out(e, "    const double %s = %s;\n", name, double_literal(buf, sizeof buf, v));
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

/* ---- deconv (ConvTranspose2d) ------------------------------------------------ */

/* Each input pixel scatters its kernel-weighted value: input (ih, iw) reaches
 * output (ih * SH - PT + kh * DH, iw * SW - PL + kw * DW).  For one tap the
 * valid input columns iw in [lo, hi) keep the output column inside [0, OW). */
static void emit_deconv(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0), *y = out_shape(e, 0);
    bool bias = n->nin == 3;
    open_fn(e, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"K", y->d[1]}, {"OH", y->d[2]},
         {"OW", y->d[3]}, {"KH", n->in[1]->shape.d[2]}, {"KW", n->in[1]->shape.d[3]},
         {"SH", dim_or_one(n->a.stride[0])}, {"SW", dim_or_one(n->a.stride[1])}, {"PT", n->a.pad[0]},
         {"PL", n->a.pad[2]}, {"DH", dim_or_one(n->a.dilation[0])}, {"DW", dim_or_one(n->a.dilation[1])},
         {"G", dim_or_one(n->a.groups)});
    out(e, "    enum { CG = C / G, KG = K / G }; /* input and output channels per group */\n"
           "    for (int n = 0; n < N; n++) {\n"
           "        for (int k = 0; k < K; k++) {\n"
           "            float *restrict yp = y + ((size_t)n * K + k) * OH * OW;\n");
    if (bias)
        out(e, "            for (int i = 0; i < OH * OW; i++) yp[i] = b[k];\n");
    else
        out(e, "            for (int i = 0; i < OH * OW; i++) yp[i] = 0.0f;\n");
    out(e, "        }\n"
           "        for (int c = 0; c < C; c++) {\n"
           "            const int g = c / CG;\n"
           "            const float *restrict xp = x + ((size_t)n * C + c) * H * W;\n"
           "            for (int kg = 0; kg < KG; kg++) {\n"
           "                float *restrict yp = y + ((size_t)n * K + g * KG + kg) * OH * OW;\n"
           "                const float *restrict wp = w + ((size_t)c * KG + kg) * KH * KW;\n"
           "                for (int ih = 0; ih < H; ih++) {\n"
           "                    const float *restrict xr = xp + (size_t)ih * W;\n"
           "                    for (int kh = 0; kh < KH; kh++) {\n"
           "                        const int oh = ih * SH - PT + kh * DH;\n"
           "                        if (oh < 0 || oh >= OH) continue;\n"
           "                        float *restrict yr = yp + (size_t)oh * OW;\n"
           "                        for (int kw = 0; kw < KW; kw++) {\n"
           "                            const int off = kw * DW - PL; /* ow = iw * SW + off */\n"
           "                            const int lo = off < 0 ? (SW - 1 - off) / SW : 0;\n"
           "                            const int end = (OW - off + SW - 1) / SW;\n"
           "                            const int hi = end < W ? end : W;\n"
           "                            const float wv = wp[kh * KW + kw];\n"
           "                            for (int iw = lo; iw < hi; iw++) yr[iw * SW + off] += wv * xr[iw];\n"
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

/* ---- layernorm, instancenorm, lrn ------------------------------------------------ */

/* Mean and biased variance of each of the N * G runs of S values, in double;
 * y = (x - mean) / sqrt(var + eps), then times weight plus bias: per element
 * of the sample (layernorm, G = 1) or per channel (instancenorm, G = C). */
static void emit_norm(E *e, int64_t groups, bool per_channel) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0);
    bool affine = n->nin == 3;
    open_fn(e, (const char *const[]){"x", "w", "b"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"G", groups}, {"S", shape_numel(x) / x->d[0] / groups});
    put_double(e, "EPS", n->a.eps);
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        for (int g = 0; g < G; g++) {\n"
           "            const float *restrict xs = x + ((size_t)n * G + g) * S;\n"
           "            float *restrict ys = y + ((size_t)n * G + g) * S;\n"
           "            double sum = 0.0;\n"
           "            for (int i = 0; i < S; i++) sum += xs[i];\n"
           "            const double mean = sum / S;\n"
           "            double q = 0.0;\n"
           "            for (int i = 0; i < S; i++) q += (xs[i] - mean) * (xs[i] - mean);\n"
           "            const float m = (float)mean, is = (float)(1.0 / sqrt(q / S + EPS));\n");
    if (!affine)
        out(e, "            for (int i = 0; i < S; i++) ys[i] = (xs[i] - m) * is;\n");
    else if (per_channel)
        out(e, "            const float s = is * w[g], t = b[g];\n"
               "            for (int i = 0; i < S; i++) ys[i] = (xs[i] - m) * s + t;\n");
    else
        out(e, "            for (int i = 0; i < S; i++) ys[i] = (xs[i] - m) * is * w[i] + b[i];\n");
    out(e, "        }\n"
           "    }\n");
    close_fn(e);
}

static void emit_layernorm(E *e) { emit_norm(e, 1, false); }
static void emit_instancenorm(E *e) { emit_norm(e, in_shape(e, 0)->d[1], true); }

/* torch.nn.LocalResponseNorm: the squares summed over the channel window
 * [c - SIZE/2, c + (SIZE-1)/2] (zeros beyond the edges), divided by SIZE. */
static void emit_lrn(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)}, {"SIZE", n->a.size});
    put_double(e, "ALPHA", n->a.alpha);
    put_double(e, "BETA", n->a.beta);
    put_double(e, "KK", n->a.k);
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        for (int c = 0; c < C; c++) {\n"
           "            const int c0 = c - SIZE / 2 > 0 ? c - SIZE / 2 : 0;\n"
           "            const int c1 = c + (SIZE - 1) / 2 < C - 1 ? c + (SIZE - 1) / 2 : C - 1;\n"
           "            const float *restrict xc = x + ((size_t)n * C + c) * S;\n"
           "            float *restrict yc = y + ((size_t)n * C + c) * S;\n"
           "            for (int i = 0; i < S; i++) {\n"
           "                double q = 0.0;\n"
           "                for (int j = c0; j <= c1; j++) {\n"
           "                    const double v = x[((size_t)n * C + j) * S + i];\n"
           "                    q += v * v;\n"
           "                }\n"
           "                yc[i] = (float)(xc[i] / pow(KK + ALPHA * q / SIZE, BETA));\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- elementwise activations ------------------------------------------------ */

static void emit_unary(E *e, const char *expr) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    put_numel(e, e->n->out[0]);
    out(e, "    for (size_t i = 0; i < NUMEL; i++) y[i] = %s;\n", expr);
    close_fn(e);
}

/* x < 0 ? 0 : x keeps NaN as PyTorch does. */
static void emit_relu(E *e) { emit_unary(e, "x[i] < 0.0f ? 0.0f : x[i]"); }
static void emit_tanh(E *e) { emit_unary(e, "tanhf(x[i])"); }
static void emit_sigmoid(E *e) { emit_unary(e, "1.0f / (1.0f + expf(-x[i]))"); }

/* An activation with one float constant K (the slope, alpha). */
static void emit_unary_k(E *e, double k, const char *expr) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    put_numel(e, e->n->out[0]);
    put_double(e, "KD", k);
    out(e, "    const float K = (float)KD;\n");
    out(e, "    for (size_t i = 0; i < NUMEL; i++) y[i] = %s;\n", expr);
    close_fn(e);
}

/* The comparisons are written so that NaN passes through, as in PyTorch. */
static void emit_relu6(E *e) { emit_unary(e, "x[i] < 0.0f ? 0.0f : x[i] > 6.0f ? 6.0f : x[i]"); }
static void emit_leaky_relu(E *e) { emit_unary_k(e, e->n->a.alpha, "x[i] > 0.0f ? x[i] : x[i] * K"); }
static void emit_elu(E *e) { emit_unary_k(e, e->n->a.alpha, "x[i] > 0.0f ? x[i] : K * expm1f(x[i])"); }
static void emit_silu(E *e) { emit_unary(e, "x[i] / (1.0f + expf(-x[i]))"); }
/* The exact form, PyTorch's default: x/2 (1 + erf(x / sqrt 2)). */
static void emit_gelu(E *e) { emit_unary(e, "0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f))"); }
/* relu6(x + 3) / 6 */
static void emit_hardsigmoid(E *e) {
    emit_unary(e, "x[i] <= -3.0f ? 0.0f : x[i] >= 3.0f ? 1.0f : x[i] / 6.0f + 0.5f");
}
/* x * relu6(x + 3) / 6 */
static void emit_hardswish(E *e) {
    emit_unary(e, "x[i] <= -3.0f ? 0.0f : x[i] >= 3.0f ? x[i] : x[i] * (x[i] + 3.0f) / 6.0f");
}
/* Dropout is the identity at inference. */
static void emit_dropout(E *e) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    put_numel(e, e->n->out[0]);
    out(e, "    memcpy(y, x, NUMEL * sizeof *y);\n");
    close_fn(e);
}

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

/* maxpool with PyTorch's indices (h * W + w within the plane, stored as
 * floats): the first maximum of each window in row-major order; NaN wins. */
static void emit_maxpool_idx(E *e) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y", "idx"});
    pool_enum(e);
    out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * H * W;\n"
           "        for (int oh = 0; oh < OH; oh++) {\n"
           "            const int hs = oh * SH - PT, h0 = hs > 0 ? hs : 0, h1 = hs + KH * DH < H ? hs + KH * DH : H;\n"
           "            for (int ow = 0; ow < OW; ow++) {\n"
           "                const int ws = ow * SW - PL, w0 = ws > 0 ? ws : 0, w1 = ws + KW * DW < W ? ws + KW * DW : W;\n"
           "                float m = -INFINITY;\n"
           "                int at = h0 * W + w0;\n"
           "                for (int ih = h0; ih < h1; ih++)\n"
           "                    for (int iw = w0; iw < w1; iw++) {\n"
           "                        const float v = xp[ih * W + iw];\n"
           "                        if (v > m || isnan(v)) {\n"
           "                            m = v;\n"
           "                            at = ih * W + iw;\n"
           "                        }\n"
           "                    }\n"
           "                const size_t o = ((size_t)nc * OH + oh) * OW + ow;\n"
           "                y[o] = m;\n"
           "                idx[o] = (float)at;\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* MaxUnpool2d: zeros, and each x value at its index in the [OH, OW] plane;
 * an index outside the plane (not one maxpool_idx made) is skipped. */
static void emit_unpool(E *e) {
    const Shape *x = in_shape(e, 0), *y = out_shape(e, 0);
    open_fn(e, (const char *const[]){"x", "idx", "like"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)}, {"OH", y->d[2]}, {"OW", y->d[3]});
    out(e, "    (void)like; /* read for its shape only */\n"
           "    memset(y, 0, (size_t)N * C * OH * OW * sizeof *y);\n"
           "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * S, *restrict ip = idx + (size_t)nc * S;\n"
           "        float *restrict yp = y + (size_t)nc * OH * OW;\n"
           "        for (int i = 0; i < S; i++) {\n"
           "            const float f = ip[i];\n"
           "            if (f >= 0.0f && f < (float)OH * OW) yp[(int)f] = xp[i];\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* F.interpolate: nearest takes source floor(o * scale) in float, as PyTorch's
 * kernel; bilinear (align_corners false) the source (o + 0.5) * scale - 0.5,
 * clamped at 0, between its two neighbours. */
static void emit_upsample(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0), *y = out_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]});
    put_double(e, "SCALE_H", n->a.scale[0]);
    put_double(e, "SCALE_W", n->a.scale[1]);
    if (n->a.mode == UPSAMPLE_NEAREST) {
        out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
               "        const float *restrict xp = x + (size_t)nc * H * W;\n"
               "        for (int oh = 0; oh < OH; oh++) {\n"
               "            const int hf = (int)floorf((float)oh * (float)SCALE_H), ih = hf < H - 1 ? hf : H - 1;\n"
               "            float *restrict yr = y + ((size_t)nc * OH + oh) * OW;\n"
               "            for (int ow = 0; ow < OW; ow++) {\n"
               "                const int wf = (int)floorf((float)ow * (float)SCALE_W), iw = wf < W - 1 ? wf : W - 1;\n"
               "                yr[ow] = xp[(size_t)ih * W + iw];\n"
               "            }\n"
               "        }\n"
               "    }\n");
    } else {
        out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
               "        const float *restrict xp = x + (size_t)nc * H * W;\n"
               "        for (int oh = 0; oh < OH; oh++) {\n"
               "            double sh = (oh + 0.5) * SCALE_H - 0.5;\n"
               "            if (sh < 0) sh = 0;\n"
               "            const int h0 = (int)sh, h1 = h0 < H - 1 ? h0 + 1 : h0;\n"
               "            const float lh = (float)(sh - h0);\n"
               "            const float *restrict r0 = xp + (size_t)h0 * W, *restrict r1 = xp + (size_t)h1 * W;\n"
               "            float *restrict yr = y + ((size_t)nc * OH + oh) * OW;\n"
               "            for (int ow = 0; ow < OW; ow++) {\n"
               "                double sw = (ow + 0.5) * SCALE_W - 0.5;\n"
               "                if (sw < 0) sw = 0;\n"
               "                const int w0 = (int)sw, w1 = w0 < W - 1 ? w0 + 1 : w0;\n"
               "                const float lw = (float)(sw - w0);\n"
               "                yr[ow] = (1.0f - lh) * ((1.0f - lw) * r0[w0] + lw * r0[w1]) +\n"
               "                         lh * ((1.0f - lw) * r1[w0] + lw * r1[w1]);\n"
               "            }\n"
               "        }\n"
               "    }\n");
    }
    close_fn(e);
}

/* ---- detection ------------------------------------------------------------------ */

/* YOLO's grid decoding; the anchors are an emitted table. */
static void emit_yolo_decode(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"A", n->a.nanchors}, {"K", n->a.out}, {"H", x->d[2]}, {"W", x->d[3]},
         {"STRIDE", n->a.stride[0]});
    out(e, "    enum { D = 5 + K, S = H * W };\n"
           "    static const double anchor[A][2] = {");
    for (int i = 0; i < n->a.nanchors; i++) {
        char w[64], h[64];
        out(e, "%s{%s, %s}", i ? ", " : "", double_literal(w, sizeof w, n->a.anchors[i][0]),
            double_literal(h, sizeof h, n->a.anchors[i][1]));
    }
    out(e, "};\n"
           "    for (int n = 0; n < N; n++) {\n"
           "        for (int a = 0; a < A; a++) {\n"
           "            const float *restrict xa = x + ((size_t)n * A + a) * D * S; /* D planes of S */\n"
           "            for (int s = 0; s < S; s++) {\n"
           "                float *restrict row = y + (((size_t)n * A + a) * S + s) * D;\n"
           "                const int gy = s / W, gx = s %% W;\n"
           "                row[0] = (1.0f / (1.0f + expf(-xa[s])) + (float)gx) * (float)STRIDE;\n"
           "                row[1] = (1.0f / (1.0f + expf(-xa[S + s])) + (float)gy) * (float)STRIDE;\n"
           "                row[2] = expf(xa[2 * S + s]) * (float)anchor[a][0];\n"
           "                row[3] = expf(xa[3 * S + s]) * (float)anchor[a][1];\n"
           "                for (int j = 4; j < D; j++) row[j] = 1.0f / (1.0f + expf(-xa[(size_t)j * S + s]));\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* Class-wise greedy NMS without sorting: take the best remaining candidate
 * (the first of equal scores), keep it, drop the candidates of its class
 * that overlap it by IoU > IOU; MAXK times at most.  Per sample, the
 * candidates' scores and classes live in static arrays. */
static void emit_nms(E *e) {
    const Node *n = e->n;
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"B", x->d[1]}, {"D", x->d[2]}, {"MAXK", n->a.out});
    put_double(e, "IOU", n->a.alpha);
    put_double(e, "SCORE", n->a.beta);
    out(e, "    static float score[B];\n"
           "    static int cls[B];\n"
           "    for (int n = 0; n < N; n++) {\n"
           "        const float *restrict xb = x + (size_t)n * B * D;\n"
           "        float *restrict yn = y + (size_t)n * MAXK * 6;\n"
           "        for (int b = 0; b < B; b++) {\n"
           "            const float *restrict r = xb + (size_t)b * D;\n"
           "            int c = 0;\n"
           "            for (int j = 1; j < D - 5; j++) c = r[5 + j] > r[5 + c] ? j : c;\n"
           "            const float s = r[4] * r[5 + c];\n"
           "            score[b] = s > SCORE ? s : -1.0f; /* -1: not a candidate */\n"
           "            cls[b] = c;\n"
           "        }\n"
           "        int kept = 0;\n"
           "        for (; kept < MAXK; kept++) {\n"
           "            int best = -1;\n"
           "            for (int b = 0; b < B; b++)\n"
           "                if (score[b] >= 0.0f && (best < 0 || score[b] > score[best])) best = b;\n"
           "            if (best < 0) break;\n"
           "            const float *restrict r = xb + (size_t)best * D;\n"
           "            const float x1 = r[0] - r[2] / 2, y1 = r[1] - r[3] / 2, x2 = r[0] + r[2] / 2, y2 = r[1] + r[3] / 2;\n"
           "            const float area = (x2 - x1) * (y2 - y1);\n"
           "            float *restrict o = yn + (size_t)kept * 6;\n"
           "            o[0] = x1, o[1] = y1, o[2] = x2, o[3] = y2, o[4] = score[best], o[5] = (float)cls[best];\n"
           "            score[best] = -1.0f;\n"
           "            for (int b = 0; b < B; b++) {\n"
           "                if (score[b] < 0.0f || cls[b] != cls[best]) continue;\n"
           "                const float *restrict q = xb + (size_t)b * D;\n"
           "                const float qx1 = q[0] - q[2] / 2, qy1 = q[1] - q[3] / 2, qx2 = q[0] + q[2] / 2, qy2 = q[1] + q[3] / 2;\n"
           "                const float iw = fminf(x2, qx2) - fmaxf(x1, qx1), ih = fminf(y2, qy2) - fmaxf(y1, qy1);\n"
           "                const float inter = iw > 0.0f && ih > 0.0f ? iw * ih : 0.0f;\n"
           "                const float iou = inter / (area + (qx2 - qx1) * (qy2 - qy1) - inter);\n"
           "                if (iou > IOU) score[b] = -1.0f;\n"
           "            }\n"
           "        }\n"
           "        for (; kept < MAXK; kept++) {\n"
           "            float *restrict o = yn + (size_t)kept * 6;\n"
           "            o[0] = o[1] = o[2] = o[3] = o[4] = 0.0f;\n"
           "            o[5] = -1.0f;\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* The maximum over H x W; NaN propagates. */
static void emit_global_maxpool(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)});
    out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * S;\n"
           "        float m = xp[0];\n"
           "        for (int i = 1; i < S; i++) {\n"
           "            const float v = xp[i];\n"
           "            m = (v > m || isnan(v)) ? v : m;\n"
           "        }\n"
           "        y[nc] = m;\n"
           "    }\n");
    close_fn(e);
}

/* PyTorch's adaptive windows: output row i averages input rows
 * [floor(i * H / OH), ceil((i + 1) * H / OH)), columns alike; in double. */
static void emit_adaptive_avgpool(E *e) {
    const Shape *x = in_shape(e, 0), *y = out_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]});
    out(e, "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * H * W;\n"
           "        for (int oh = 0; oh < OH; oh++) {\n"
           "            const int h0 = (int)((long long)oh * H / OH), h1 = (int)(((long long)(oh + 1) * H + OH - 1) / OH);\n"
           "            for (int ow = 0; ow < OW; ow++) {\n"
           "                const int w0 = (int)((long long)ow * W / OW), w1 = (int)(((long long)(ow + 1) * W + OW - 1) / OW);\n"
           "                double s = 0.0;\n"
           "                for (int ih = h0; ih < h1; ih++)\n"
           "                    for (int iw = w0; iw < w1; iw++) s += xp[(size_t)ih * W + iw];\n"
           "                y[((size_t)nc * OH + oh) * OW + ow] = (float)(s / ((h1 - h0) * (w1 - w0)));\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- reshapes ----------------------------------------------------------------- */

static void emit_flatten(E *e) {
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    put_numel(e, e->n->out[0]);
    out(e, "    memcpy(y, x, NUMEL * sizeof *y);\n");
    close_fn(e);
}

/* ---- channel plumbing: concat, slice, channel_shuffle, pad ---------------------- */

/* Each sample's output is the inputs' channel blocks one after another. */
static void emit_concat(E *e) {
    static const char *const names[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"};
    _Static_assert(sizeof names / sizeof names[0] >= IR_MAX_IN, "a name per input");
    const Node *n = e->n;
    const Shape *y = out_shape(e, 0);
    open_fn(e, names, (const char *const[]){"y"});
    ENUM(e, {"N", y->d[0]}, {"C", y->d[1]}, {"S", spatial(y)});
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        float *restrict yn = y + (size_t)n * C * S;\n");
    for (int i = 0; i < n->nin; i++)
        out(e, "        memcpy(yn, %s + (size_t)n * %lld * S, (size_t)%lld * S * sizeof *yn);\n"
               "        yn += (size_t)%lld * S;\n",
            names[i], (long long)n->in[i]->shape.d[1], (long long)n->in[i]->shape.d[1],
            (long long)n->in[i]->shape.d[1]);
    out(e, "    }\n");
    close_fn(e);
}

static void emit_slice(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)}, {"START", e->n->a.start},
         {"K", e->n->a.end - e->n->a.start});
    out(e, "    for (int n = 0; n < N; n++)\n"
           "        memcpy(y + (size_t)n * K * S, x + ((size_t)n * C + START) * S, (size_t)K * S * sizeof *y);\n");
    close_fn(e);
}

/* As x.view(N, G, C/G, ...).transpose(1, 2): input channel g * CG + j goes to j * G + g. */
static void emit_channel_shuffle(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)}, {"G", e->n->a.groups});
    out(e, "    enum { CG = C / G };\n"
           "    for (int n = 0; n < N; n++)\n"
           "        for (int g = 0; g < G; g++)\n"
           "            for (int j = 0; j < CG; j++)\n"
           "                memcpy(y + ((size_t)n * C + (size_t)j * G + g) * S, x + ((size_t)n * C + (size_t)g * CG + j) * S,\n"
           "                       (size_t)S * sizeof *y);\n");
    close_fn(e);
}

static void emit_pad(E *e) {
    const Shape *x = in_shape(e, 0), *y = out_shape(e, 0);
    const int *p = e->n->a.pad;
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]},
         {"PT", p[0]}, {"PL", p[2]});
    out(e, "    memset(y, 0, (size_t)N * C * OH * OW * sizeof *y);\n"
           "    for (int nc = 0; nc < N * C; nc++)\n"
           "        for (int h = 0; h < H; h++)\n"
           "            memcpy(y + ((size_t)nc * OH + h + PT) * OW + PL, x + ((size_t)nc * H + h) * W, (size_t)W * sizeof *y);\n");
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

/* log softmax over dim 1: x - max - log(sum(exp(x - max))), the sum in double. */
static void emit_log_softmax(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn(e, (const char *const[]){"x"}, (const char *const[]){"y"});
    ENUM(e, {"N", x->d[0]}, {"C", x->rank > 1 ? x->d[1] : 1}, {"S", spatial(x)});
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        for (int s = 0; s < S; s++) {\n"
           "            const float *restrict xs = x + (size_t)n * C * S + s;\n"
           "            float *restrict ys = y + (size_t)n * C * S + s;\n"
           "            float m = xs[0];\n"
           "            for (int c = 1; c < C; c++) m = xs[(size_t)c * S] > m ? xs[(size_t)c * S] : m;\n"
           "            double sum = 0.0;\n"
           "            for (int c = 0; c < C; c++) sum += exp((double)xs[(size_t)c * S] - m);\n"
           "            const float shift = m + (float)log(sum);\n"
           "            for (int c = 0; c < C; c++) ys[(size_t)c * S] = xs[(size_t)c * S] - shift;\n"
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
        put_numel(e, e->n->out[0]);
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

/* ---- training: batchnorm with batch statistics ----------------------------------- */

/* Statistics over (nb, H, W) per channel, in double: y uses the biased
 * variance; the running averages get momentum * the batch mean and the
 * unbiased variance (PyTorch), written in place into inputs 3 and 4. */
static void emit_batchnorm_train(E *e) {
    const Shape *x = in_shape(e, 0);
    open_fn_rw(e, (const char *const[]){"x", "gamma", "beta", "running_mean", "running_var"},
               (const char *const[]){"y", "mean", "invstd"}, emit_written_inputs(e->n));
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)});
    put_double(e, "EPS", e->n->a.eps);
    put_double(e, "MOMENTUM", e->n->a.momentum);
    out(e, "    const double cnt = (double)N * S; /* values per channel */\n"
           "    for (int c = 0; c < C; c++) {\n"
           "        double s = 0.0;\n"
           "        for (int n = 0; n < N; n++) {\n"
           "            const float *restrict xc = x + ((size_t)n * C + c) * S;\n"
           "            for (int i = 0; i < S; i++) s += xc[i];\n"
           "        }\n"
           "        const double m = s / cnt;\n"
           "        double q = 0.0;\n"
           "        for (int n = 0; n < N; n++) {\n"
           "            const float *restrict xc = x + ((size_t)n * C + c) * S;\n"
           "            for (int i = 0; i < S; i++) {\n"
           "                const double d = xc[i] - m;\n"
           "                q += d * d;\n"
           "            }\n"
           "        }\n"
           "        const double var = q / cnt; /* biased: normalizes the batch */\n"
           "        const double is = 1.0 / sqrt(var + EPS);\n"
           "        mean[c] = (float)m;\n"
           "        invstd[c] = (float)is;\n"
           "        /* y = (x - mean) * invstd * gamma + beta */\n"
           "        const float mf = (float)m, sc = (float)(is * gamma[c]), bt = beta[c];\n"
           "        for (int n = 0; n < N; n++) {\n"
           "            const float *restrict xc = x + ((size_t)n * C + c) * S;\n"
           "            float *restrict yc = y + ((size_t)n * C + c) * S;\n"
           "            for (int i = 0; i < S; i++) yc[i] = (xc[i] - mf) * sc + bt;\n"
           "        }\n"
           "        const double unbiased = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;\n"
           "        running_mean[c] = (float)((1.0 - MOMENTUM) * running_mean[c] + MOMENTUM * m);\n"
           "        running_var[c] = (float)((1.0 - MOMENTUM) * running_var[c] + MOMENTUM * unbiased);\n"
           "    }\n");
    close_fn(e);
}

/* xhat = (x - mean) * invstd; dgamma = sum(dy * xhat), dbeta = sum(dy) and
 * dx = gamma * invstd / cnt * (cnt * dy - sum(dy) - xhat * sum(dy * xhat)),
 * sums over (nb, H, W) in double. */
static void emit_batchnorm_grad(E *e) {
    const Shape *x = in_shape(e, 1);
    open_fn(e, (const char *const[]){"dy", "x", "gamma", "mean", "invstd"},
            (const char *const[]){"dx", "dgamma", "dbeta"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)});
    out(e, "    const double cnt = (double)N * S; /* values per channel */\n"
           "    for (int c = 0; c < C; c++) {\n"
           "        const float mf = mean[c], is = invstd[c];\n"
           "        double sdy = 0.0, sdyx = 0.0; /* sum(dy), sum(dy * xhat) */\n"
           "        for (int n = 0; n < N; n++) {\n"
           "            const float *restrict dyc = dy + ((size_t)n * C + c) * S;\n"
           "            const float *restrict xc = x + ((size_t)n * C + c) * S;\n"
           "            for (int i = 0; i < S; i++) {\n"
           "                sdy += dyc[i];\n"
           "                sdyx += (double)dyc[i] * ((xc[i] - mf) * is);\n"
           "            }\n"
           "        }\n"
           "        dgamma[c] = (float)sdyx;\n"
           "        dbeta[c] = (float)sdy;\n"
           "        /* dx = A * dy + B * (x - mean) + D */\n"
           "        const double k = gamma[c] * (double)is / cnt;\n"
           "        const float A = (float)(k * cnt), B = (float)(-k * sdyx * is), D = (float)(-k * sdy);\n"
           "        for (int n = 0; n < N; n++) {\n"
           "            const float *restrict dyc = dy + ((size_t)n * C + c) * S;\n"
           "            const float *restrict xc = x + ((size_t)n * C + c) * S;\n"
           "            float *restrict dxc = dx + ((size_t)n * C + c) * S;\n"
           "            for (int i = 0; i < S; i++) dxc[i] = A * dyc[i] + B * (xc[i] - mf) + D;\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- training: conv and linear gradients ------------------------------------------- */

/* The constants of a conv gradient: x [N, C, H, W], dy [N, K, OH, OW],
 * weight [K, C/G, KH, KW]. */
static void conv_grad_enum(E *e, const Shape *x, const Shape *dy, const Shape *w) {
    const Attrs *a = &e->n->a;
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"K", dy->d[1]}, {"OH", dy->d[2]},
         {"OW", dy->d[3]}, {"KH", w->d[2]}, {"KW", w->d[3]}, {"SH", dim_or_one(a->stride[0])},
         {"SW", dim_or_one(a->stride[1])}, {"PT", a->pad[0]}, {"PL", a->pad[2]}, {"DH", dim_or_one(a->dilation[0])},
         {"DW", dim_or_one(a->dilation[1])}, {"G", dim_or_one(a->groups)});
    out(e, "    enum { CG = C / G, KG = K / G }; /* input and output channels per group */\n");
}

/* The transposed conv: every dy element scatters through the weights to the
 * inputs its output read in the forward pass.  The tap kw is the outer loop
 * so that consecutive row updates go to different rows (updating one row at
 * shifted offsets back to back stalls on store forwarding). */
static void emit_conv_grad_input(E *e) {
    open_fn(e, (const char *const[]){"dy", "w", "x"}, (const char *const[]){"dx"});
    conv_grad_enum(e, in_shape(e, 2), in_shape(e, 0), in_shape(e, 1));
    out(e, "    (void)x; /* read for its shape only */\n"
           "    memset(dx, 0, (size_t)N * C * H * W * sizeof *dx);\n"
           "    for (int n = 0; n < N; n++) {\n"
           "        for (int g = 0; g < G; g++) {\n"
           "            for (int k = g * KG; k < (g + 1) * KG; k++) {\n"
           "                for (int oh = 0; oh < OH; oh++) {\n"
           "                    const float *restrict dyr = dy + (((size_t)n * K + k) * OH + oh) * OW;\n"
           "                    for (int kw = 0; kw < KW; kw++) {\n");
    put_col_range(e, "                        ", "kw * DW");
    out(e, "                        for (int c = 0; c < CG; c++) {\n"
           "                            for (int kh = 0; kh < KH; kh++) {\n"
           "                                const int ih = oh * SH - PT + kh * DH;\n"
           "                                if (ih < 0 || ih >= H) continue;\n"
           "                                float *restrict dxr = dx + (((size_t)n * C + g * CG + c) * H + ih) * W;\n"
           "                                const float wv = w[(((size_t)k * CG + c) * KH + kh) * KW + kw];\n"
           "                                for (int ow = lo; ow < hi; ow++) dxr[ow * SW + off] += wv * dyr[ow];\n"
           "                            }\n"
           "                        }\n"
           "                    }\n"
           "                }\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* dw[k][c][kh][kw] = the sum over the batch and output positions of dy times
 * the input the tap read, in double: one partial sum per output column (a
 * loop that vectorizes), added up at the end. */
static void emit_conv_grad_weight(E *e) {
    open_fn(e, (const char *const[]){"dy", "x", "w"}, (const char *const[]){"dw"});
    conv_grad_enum(e, in_shape(e, 1), in_shape(e, 0), in_shape(e, 2));
    out(e, "    (void)w; /* read for its shape only */\n"
           "    for (int g = 0; g < G; g++) {\n"
           "        for (int k = g * KG; k < (g + 1) * KG; k++) {\n"
           "            for (int c = 0; c < CG; c++) {\n"
           "                for (int kh = 0; kh < KH; kh++) {\n"
           "                    for (int kw = 0; kw < KW; kw++) {\n");
    put_col_range(e, "                        ", "kw * DW");
    out(e, "                        double acc[OW] = {0};\n"
           "                        for (int n = 0; n < N; n++) {\n"
           "                            for (int oh = 0; oh < OH; oh++) {\n"
           "                                const int ih = oh * SH - PT + kh * DH;\n"
           "                                if (ih < 0 || ih >= H) continue;\n"
           "                                const float *restrict dyr = dy + (((size_t)n * K + k) * OH + oh) * OW;\n"
           "                                const float *restrict xr = x + (((size_t)n * C + g * CG + c) * H + ih) * W;\n"
           "                                for (int ow = lo; ow < hi; ow++) acc[ow] += (double)dyr[ow] * xr[ow * SW + off];\n"
           "                            }\n"
           "                        }\n"
           "                        double s = 0.0;\n"
           "                        for (int ow = lo; ow < hi; ow++) s += acc[ow];\n"
           "                        dw[(((size_t)k * CG + c) * KH + kh) * KW + kw] = (float)s;\n"
           "                    }\n"
           "                }\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* dx[n] = dy[n] . w: each row of w scaled by dy[n][k]. */
static void emit_linear_grad_input(E *e) {
    const Shape *dy = in_shape(e, 0), *w = in_shape(e, 1);
    open_fn(e, (const char *const[]){"dy", "w"}, (const char *const[]){"dx"});
    ENUM(e, {"N", dy->d[0]}, {"K", dy->d[1]}, {"D", w->d[1]});
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        float *restrict dxn = dx + (size_t)n * D;\n"
           "        for (int d = 0; d < D; d++) dxn[d] = 0.0f;\n"
           "        for (int k = 0; k < K; k++) {\n"
           "            const float a = dy[(size_t)n * K + k];\n"
           "            const float *restrict wk = w + (size_t)k * D;\n"
           "            for (int d = 0; d < D; d++) dxn[d] += a * wk[d];\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* dw[k][d] = the sum over the batch of dy[n][k] * x[n][d], in double, a
 * block of columns at a time. */
static void emit_linear_grad_weight(E *e) {
    const Shape *dy = in_shape(e, 0), *x = in_shape(e, 1);
    open_fn(e, (const char *const[]){"dy", "x"}, (const char *const[]){"dw"});
    ENUM(e, {"N", dy->d[0]}, {"K", dy->d[1]}, {"D", x->d[1]}, {"BLOCK", x->d[1] < 64 ? x->d[1] : 64});
    out(e, "    for (int k = 0; k < K; k++) {\n"
           "        for (int d0 = 0; d0 < D; d0 += BLOCK) {\n"
           "            const int len = D - d0 < BLOCK ? D - d0 : BLOCK;\n"
           "            double acc[BLOCK] = {0};\n"
           "            for (int n = 0; n < N; n++) {\n"
           "                const double a = dy[(size_t)n * K + k];\n"
           "                const float *restrict xn = x + (size_t)n * D + d0;\n"
           "                for (int j = 0; j < len; j++) acc[j] += a * xn[j];\n"
           "            }\n"
           "            for (int j = 0; j < len; j++) dw[(size_t)k * D + d0 + j] = (float)acc[j];\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* db[k] = the sum of dy over every dim but 1, in double. */
static void emit_bias_grad(E *e) {
    const Shape *dy = in_shape(e, 0);
    open_fn(e, (const char *const[]){"dy"}, (const char *const[]){"db"});
    ENUM(e, {"N", dy->d[0]}, {"K", dy->d[1]}, {"S", spatial(dy)});
    out(e, "    for (int k = 0; k < K; k++) {\n"
           "        double s = 0.0;\n"
           "        for (int n = 0; n < N; n++) {\n"
           "            const float *restrict dyk = dy + ((size_t)n * K + k) * S;\n"
           "            for (int i = 0; i < S; i++) s += dyk[i];\n"
           "        }\n"
           "        db[k] = (float)s;\n"
           "    }\n");
    close_fn(e);
}

/* ---- training: activation gradients, from the op's output y ----------------------- */

static void emit_unary_grad(E *e, const char *expr) {
    open_fn(e, (const char *const[]){"dy", "y"}, (const char *const[]){"dx"});
    put_numel(e, e->n->out[0]);
    out(e, "    for (size_t i = 0; i < NUMEL; i++) dx[i] = %s;\n", expr);
    close_fn(e);
}

static void emit_relu_grad(E *e) { emit_unary_grad(e, "y[i] > 0.0f ? dy[i] : 0.0f"); }
static void emit_tanh_grad(E *e) { emit_unary_grad(e, "dy[i] * (1.0f - y[i] * y[i])"); }
static void emit_sigmoid_grad(E *e) { emit_unary_grad(e, "dy[i] * y[i] * (1.0f - y[i])"); }

/* Softmax over dim 1: dx = y * (dy - sum over channels of dy * y). */
static void emit_softmax_grad(E *e) {
    const Shape *y = in_shape(e, 1);
    open_fn(e, (const char *const[]){"dy", "y"}, (const char *const[]){"dx"});
    ENUM(e, {"N", y->d[0]}, {"C", y->rank > 1 ? y->d[1] : 1}, {"S", spatial(y)});
    out(e, "    for (int n = 0; n < N; n++) {\n"
           "        for (int s = 0; s < S; s++) {\n"
           "            const size_t o = (size_t)n * C * S + s;\n"
           "            double dot = 0.0;\n"
           "            for (int c = 0; c < C; c++) dot += (double)dy[o + (size_t)c * S] * y[o + (size_t)c * S];\n"
           "            for (int c = 0; c < C; c++)\n"
           "                dx[o + (size_t)c * S] = y[o + (size_t)c * S] * (dy[o + (size_t)c * S] - (float)dot);\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* ---- training: pooling gradients ----------------------------------------------------- */

/* x [N, C, H, W] (input 1) and dy [N, C, OH, OW] (input 0). */
static void pool_grad_enum(E *e) {
    const Attrs *a = &e->n->a;
    const Shape *x = in_shape(e, 1), *dy = in_shape(e, 0);
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", dy->d[2]}, {"OW", dy->d[3]},
         {"KH", dim_or_one(a->kernel[0])}, {"KW", dim_or_one(a->kernel[1])}, {"SH", dim_or_one(a->stride[0])},
         {"SW", dim_or_one(a->stride[1])}, {"PT", a->pad[0]}, {"PB", a->pad[1]}, {"PL", a->pad[2]},
         {"PR", a->pad[3]});
}

/* Each window's gradient goes to its first maximum (padding ignored, a NaN
 * wins as in the forward pass and PyTorch); windows overlap, so dx sums. */
static void emit_maxpool_grad(E *e) {
    open_fn(e, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    pool_grad_enum(e);
    out(e, "    memset(dx, 0, (size_t)N * C * H * W * sizeof *dx);\n"
           "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict xp = x + (size_t)nc * H * W;\n"
           "        const float *restrict dyp = dy + (size_t)nc * OH * OW;\n"
           "        float *restrict dxp = dx + (size_t)nc * H * W;\n"
           "        for (int oh = 0; oh < OH; oh++) {\n"
           "            const int hs = oh * SH - PT, h0 = hs > 0 ? hs : 0, h1 = hs + KH < H ? hs + KH : H;\n"
           "            for (int ow = 0; ow < OW; ow++) {\n"
           "                const int ws = ow * SW - PL, w0 = ws > 0 ? ws : 0, w1 = ws + KW < W ? ws + KW : W;\n"
           "                int best = h0 * W + w0;\n"
           "                float m = -INFINITY;\n"
           "                for (int ih = h0; ih < h1; ih++)\n"
           "                    for (int iw = w0; iw < w1; iw++) {\n"
           "                        const float v = xp[ih * W + iw];\n"
           "                        if (v > m || isnan(v)) {\n"
           "                            m = v;\n"
           "                            best = ih * W + iw;\n"
           "                        }\n"
           "                    }\n"
           "                dxp[best] += dyp[oh * OW + ow];\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

/* Each window spreads dy / divisor over its input elements, the divisor as
 * in the forward pass. */
static void emit_avgpool_grad(E *e) {
    bool count_pad = e->n->a.count_pad;
    open_fn(e, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    pool_grad_enum(e);
    out(e, "    (void)x; /* read for its shape only */\n"
           "    memset(dx, 0, (size_t)N * C * H * W * sizeof *dx);\n"
           "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict dyp = dy + (size_t)nc * OH * OW;\n"
           "        float *restrict dxp = dx + (size_t)nc * H * W;\n"
           "        for (int oh = 0; oh < OH; oh++) {\n"
           "            const int hs = oh * SH - PT, h0 = hs > 0 ? hs : 0, h1 = hs + KH < H ? hs + KH : H;\n");
    if (count_pad)
        out(e, "            const int he = hs + KH < H + PB ? hs + KH : H + PB; /* the window in the padded input */\n");
    out(e, "            for (int ow = 0; ow < OW; ow++) {\n"
           "                const int ws = ow * SW - PL, w0 = ws > 0 ? ws : 0, w1 = ws + KW < W ? ws + KW : W;\n"
           "                if (h1 <= h0 || w1 <= w0) continue;\n");
    if (count_pad)
        out(e, "                const int we = ws + KW < W + PR ? ws + KW : W + PR;\n"
               "                const float g = dyp[oh * OW + ow] / (float)((he - hs) * (we - ws));\n");
    else
        out(e, "                const float g = dyp[oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));\n");
    out(e, "                for (int ih = h0; ih < h1; ih++)\n"
           "                    for (int iw = w0; iw < w1; iw++) dxp[ih * W + iw] += g;\n"
           "            }\n"
           "        }\n"
           "    }\n");
    close_fn(e);
}

static void emit_global_avgpool_grad(E *e) {
    const Shape *x = in_shape(e, 1);
    open_fn(e, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    ENUM(e, {"N", x->d[0]}, {"C", x->d[1]}, {"S", spatial(x)});
    out(e, "    (void)x; /* read for its shape only */\n"
           "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float g = dy[nc] / (float)S;\n"
           "        float *restrict dxp = dx + (size_t)nc * S;\n"
           "        for (int i = 0; i < S; i++) dxp[i] = g;\n"
           "    }\n");
    close_fn(e);
}

/* ---- training: reshapes and broadcasts ------------------------------------------------- */

static void emit_reshape_grad(E *e) {
    open_fn(e, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    put_numel(e, e->n->out[0]);
    out(e, "    (void)x; /* read for its shape only */\n"
           "    memcpy(dx, dy, NUMEL * sizeof *dx);\n");
    close_fn(e);
}

/* dy summed to the shape of `like`: the gradient of an operand that add or
 * mul broadcast per sample and channel; a copy when the shapes agree. */
static void emit_reduce_like(E *e) {
    const Shape *dy = in_shape(e, 0);
    open_fn(e, (const char *const[]){"dy", "like"}, (const char *const[]){"dx"});
    if (shape_eq(dy, in_shape(e, 1))) {
        put_numel(e, e->n->out[0]);
        out(e, "    (void)like; /* read for its shape only */\n"
               "    memcpy(dx, dy, NUMEL * sizeof *dx);\n");
        close_fn(e);
        return;
    }
    ENUM(e, {"N", dy->d[0]}, {"C", dy->d[1]}, {"S", spatial(dy)});
    out(e, "    (void)like; /* read for its shape only */\n"
           "    for (int nc = 0; nc < N * C; nc++) {\n"
           "        const float *restrict dyp = dy + (size_t)nc * S;\n"
           "        double s = 0.0;\n"
           "        for (int i = 0; i < S; i++) s += dyp[i];\n"
           "        dx[nc] = (float)s;\n"
           "    }\n");
    close_fn(e);
}

/* ---- training: the loss ------------------------------------------------------------------ */

/* PyTorch's CrossEntropyLoss(): the mean over the batch of
 * logsumexp(row) - row[label], in double.  A label outside [0, K) makes the
 * loss NaN. */
static void emit_xent_loss(E *e) {
    const Shape *z = in_shape(e, 0);
    open_fn(e, (const char *const[]){"logits", "labels"}, (const char *const[]){"loss"});
    ENUM(e, {"N", z->d[0]}, {"K", z->d[1]});
    out(e, "    double total = 0.0;\n"
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
    close_fn(e);
}

/* d loss / d logits = (softmax(row) - onehot(label)) / nb; a label outside
 * [0, K) has no one-hot term. */
static void emit_xent_grad(E *e) {
    const Shape *z = in_shape(e, 0);
    open_fn(e, (const char *const[]){"logits", "labels"}, (const char *const[]){"dlogits"});
    ENUM(e, {"N", z->d[0]}, {"K", z->d[1]});
    out(e, "    const double inv = 1.0 / N;\n"
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
    close_fn(e);
}

/* ---- training: the optimizer step ----------------------------------------------------------- */

/* PyTorch's SGD (dampening 0, no Nesterov), parameter and velocity in place;
 * the hyperparameters are the emitted file's hp_* variables. */
static void emit_sgd_update(E *e) {
    open_fn_rw(e, (const char *const[]){"p", "grad", "v"}, NULL, emit_written_inputs(e->n));
    put_count(e, "NUMEL", shape_numel(in_shape(e, 0)));
    out(e, "    const float lr = hp_lr, momentum = hp_momentum, wd = hp_weight_decay;\n"
           "    for (size_t i = 0; i < NUMEL; i++) {\n"
           "        const float g = grad[i] + wd * p[i];\n"
           "        v[i] = momentum * v[i] + g;\n"
           "        p[i] -= lr * v[i];\n"
           "    }\n");
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
    [OP_RELU6] = emit_relu6,
    [OP_LEAKY_RELU] = emit_leaky_relu,
    [OP_ELU] = emit_elu,
    [OP_SILU] = emit_silu,
    [OP_GELU] = emit_gelu,
    [OP_HARDSIGMOID] = emit_hardsigmoid,
    [OP_HARDSWISH] = emit_hardswish,
    [OP_LOG_SOFTMAX] = emit_log_softmax,
    [OP_DROPOUT] = emit_dropout,
    [OP_CONCAT] = emit_concat,
    [OP_SLICE] = emit_slice,
    [OP_CHANNEL_SHUFFLE] = emit_channel_shuffle,
    [OP_RESHAPE] = emit_flatten,
    [OP_PAD] = emit_pad,
    [OP_GLOBAL_MAXPOOL] = emit_global_maxpool,
    [OP_ADAPTIVE_AVGPOOL] = emit_adaptive_avgpool,
    [OP_DECONV] = emit_deconv,
    [OP_LAYERNORM] = emit_layernorm,
    [OP_INSTANCENORM] = emit_instancenorm,
    [OP_LRN] = emit_lrn,
    [OP_UPSAMPLE] = emit_upsample,
    [OP_MAXPOOL_IDX] = emit_maxpool_idx,
    [OP_UNPOOL] = emit_unpool,
    [OP_YOLO_DECODE] = emit_yolo_decode,
    [OP_NMS] = emit_nms,
    [OP_BN_FOLD] = emit_bn_fold,
    [OP_BATCHNORM_TRAIN] = emit_batchnorm_train,
    [OP_BATCHNORM_GRAD] = emit_batchnorm_grad,
    [OP_CONV_GRAD_INPUT] = emit_conv_grad_input,
    [OP_CONV_GRAD_WEIGHT] = emit_conv_grad_weight,
    [OP_LINEAR_GRAD_INPUT] = emit_linear_grad_input,
    [OP_LINEAR_GRAD_WEIGHT] = emit_linear_grad_weight,
    [OP_BIAS_GRAD] = emit_bias_grad,
    [OP_RELU_GRAD] = emit_relu_grad,
    [OP_TANH_GRAD] = emit_tanh_grad,
    [OP_SIGMOID_GRAD] = emit_sigmoid_grad,
    [OP_SOFTMAX_GRAD] = emit_softmax_grad,
    [OP_MAXPOOL_GRAD] = emit_maxpool_grad,
    [OP_AVGPOOL_GRAD] = emit_avgpool_grad,
    [OP_GLOBAL_AVGPOOL_GRAD] = emit_global_avgpool_grad,
    [OP_RESHAPE_GRAD] = emit_reshape_grad,
    [OP_REDUCE_LIKE] = emit_reduce_like,
    [OP_XENT_LOSS] = emit_xent_loss,
    [OP_XENT_GRAD] = emit_xent_grad,
    [OP_SGD_UPDATE] = emit_sgd_update,
};
_Static_assert(sizeof emit_rule / sizeof emit_rule[0] == OP_COUNT, "an emit rule per op");

static bool rank_is(const Value *v, int rank) { return v->shape.rank == rank; }

/* Whether the rules can emit n (shapes the loops assume); reports an error
 * at the node otherwise.  Called on every node before anything is written. */
bool emit_node_check(const Graph *g, const Node *n) {
    const char *why = NULL;
    char a[64], b[64];
    if ((unsigned)n->op >= OP_COUNT) {
        DIAG_INTERNAL("cannot emit op number %d", (int)n->op);
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
        Value *const *in = n->in;
        switch (n->op) {
        case OP_CONV:
        case OP_DECONV:
            if (x->rank != 4 || n->in[1]->shape.rank != 4 || n->out[0]->shape.rank != 4) why = "conv needs 4-d tensors";
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL:
        case OP_GLOBAL_MAXPOOL:
        case OP_ADAPTIVE_AVGPOOL:
        case OP_UPSAMPLE:
        case OP_MAXPOOL_IDX:
        case OP_UNPOOL:
            if (x->rank != 4 || n->out[0]->shape.rank != 4) why = "pooling needs [N, C, H, W]";
            break;
        case OP_CONCAT:
            for (int i = 0; i < n->nin; i++)
                if (in[i]->shape.rank < 2 || in[i]->shape.rank != x->rank || in[i]->shape.d[0] != x->d[0])
                    why = "concat needs [N, C, ...] inputs of one rank and batch";
            break;
        case OP_YOLO_DECODE:
            if (x->rank != 4 || n->a.nanchors < 1 || n->a.nanchors > IR_MAX_ANCHORS) why = "needs [N, C, H, W] and anchors";
            break;
        case OP_NMS:
            if (x->rank != 3 || x->d[2] < 6) why = "needs boxes [N, D, 5 + K]";
            break;
        case OP_LAYERNORM:
            if (x->rank < 2 || n->nin == 2) why = "needs [N, ...] and both or neither of weight and bias";
            break;
        case OP_INSTANCENORM:
        case OP_LRN:
            if (x->rank != 4 || n->nin == 2) why = "needs [N, C, H, W] (and both or neither of weight and bias)";
            break;
        case OP_PAD:
            if (x->rank != 4 || n->out[0]->shape.rank != 4) why = "pad needs [N, C, H, W]";
            break;
        case OP_SLICE:
            if (x->rank < 2 || n->a.start < 0 || n->a.end > x->d[1] || n->a.start >= n->a.end)
                why = "needs [N, C, ...] and 0 <= start < end <= C";
            break;
        case OP_CHANNEL_SHUFFLE:
            if (x->rank < 2 || n->a.groups < 1 || x->d[1] % n->a.groups) why = "needs [N, C, ...] and groups dividing C";
            break;
        case OP_GLOBAL_AVGPOOL:
        case OP_BATCHNORM:
        case OP_BATCHNORM_TRAIN:
            if (x->rank < 2) why = "needs [N, C, ...]";
            break;
        case OP_LINEAR:
        case OP_SOFTMAX:
        case OP_LOG_SOFTMAX:
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
                DIAG_INTERNAL("cannot emit %s of shapes %s and %s", op_name(n->op),
                           shape_str(&n->in[0]->shape, a, sizeof a), shape_str(&n->in[1]->shape, b, sizeof b));
                return false;
            }
            break;
        }
        case OP_BATCHNORM_GRAD:
            if (in[1]->shape.rank < 2 || !shape_eq(x, &in[1]->shape)) why = "needs dy and x of one shape [N, C, ...]";
            break;
        case OP_CONV_GRAD_INPUT:
        case OP_CONV_GRAD_WEIGHT:
            if (!rank_is(in[0], 4) || !rank_is(in[1], 4) || !rank_is(in[2], 4)) why = "conv needs 4-d tensors";
            break;
        case OP_LINEAR_GRAD_INPUT:
        case OP_LINEAR_GRAD_WEIGHT:
            if (!rank_is(in[0], 2) || !rank_is(in[1], 2)) why = "needs [N, K] and 2-d operands";
            break;
        case OP_BIAS_GRAD:
        case OP_SOFTMAX_GRAD:
            if (x->rank < 2) why = "needs [N, C, ...]";
            break;
        case OP_MAXPOOL_GRAD:
        case OP_AVGPOOL_GRAD:
            if (!rank_is(in[0], 4) || !rank_is(in[1], 4)) why = "pooling needs [N, C, H, W]";
            break;
        case OP_GLOBAL_AVGPOOL_GRAD:
            if (in[1]->shape.rank < 2 || shape_numel(x) != in[1]->shape.d[0] * in[1]->shape.d[1])
                why = "needs dy [N, C, 1, 1] and x [N, C, ...]";
            break;
        case OP_RESHAPE:
            if (shape_numel(x) != shape_numel(&n->out[0]->shape)) why = "x and y differ in size";
            break;
        case OP_RESHAPE_GRAD:
            if (shape_numel(x) != shape_numel(&in[1]->shape)) why = "dy and x differ in size";
            break;
        case OP_REDUCE_LIKE: {
            /* With N = C = 1, [1, 1, 1, 1] is also B_SCALAR: the same one value. */
            Bcast k = x->rank < 2 ? B_BAD : bcast_kind(&in[1]->shape, x);
            if (!shape_eq(x, &in[1]->shape) && k != B_SAMPLE_CHANNEL &&
                !(k == B_SCALAR && x->d[0] * x->d[1] == 1))
                why = "like must be dy's shape, or [N, C, 1, 1] or [N, C] against dy [N, C, ...]";
            break;
        }
        case OP_XENT_LOSS:
        case OP_XENT_GRAD:
            if (x->rank != 2 || x->d[1] < 1 || !rank_is(in[1], 1) || in[1]->shape.d[0] != x->d[0])
                why = "needs logits [N, K] and labels [N]";
            break;
        case OP_SGD_UPDATE:
            if (!g->train)
                why = "the optimizer step needs a training graph";
            else if (shape_numel(x) != shape_numel(&in[1]->shape) || shape_numel(x) != shape_numel(&in[2]->shape))
                why = "parameter, gradient and velocity differ in size";
            break;
        default:
            break;
        }
    }
    if (why) {
        DIAG_INTERNAL("cannot emit %s \"%s\": %s", op_name(n->op), n->name ? n->name : "",
                   why);
        return false;
    }
    return true;
}

/* Whether output i of n has the batch as its first dimension, given which
 * inputs do: weight, bias and batchnorm-parameter gradients, the batch
 * statistics and the loss do not; add and mul outputs do if an operand does;
 * reduce_like's output is shaped as its second operand; every other output
 * follows the op's first input. */
static bool out_batched(const Node *n, int i, const bool *b) {
    switch (n->op) {
    case OP_BN_FOLD:
    case OP_CONV_GRAD_WEIGHT:
    case OP_LINEAR_GRAD_WEIGHT:
    case OP_BIAS_GRAD:
    case OP_XENT_LOSS:
        return false;
    case OP_BATCHNORM_TRAIN:
    case OP_BATCHNORM_GRAD:
        return i == 0 && b[n->in[0]->id];
    case OP_ADD:
    case OP_MUL:
        return b[n->in[0]->id] || b[n->in[1]->id];
    case OP_REDUCE_LIKE:
        return b[n->in[1]->id];
    default:
        return b[n->in[0]->id];
    }
}

/* batched[v->id] for every value: inputs are [N, ...] (the labels [N]);
 * parameters, derived values and training state are not; node outputs by
 * out_batched, in node order. */
void emit_batched(const Graph *g, bool *batched) {
    for (int i = 0; i < g->nvalues; i++) batched[g->values[i]->id] = g->values[i]->kind == V_INPUT;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->nout; j++) batched[n->out[j]->id] = n->nin > 0 && out_batched(n, j, batched);
    }
}

/* The inputs a node writes in place, bit i for input i: batchnorm_train's
 * running statistics, sgd_update's parameter and velocity. */
unsigned emit_written_inputs(const Node *n) {
    switch (n->op) {
    case OP_BATCHNORM_TRAIN: return 1u << 3 | 1u << 4;
    case OP_SGD_UPDATE: return 1u << 0 | 1u << 2;
    default: return 0;
    }
}

void emit_node_function(FILE *f, const Node *n, const char *fname, const bool *batched) {
    E e = {f, n, fname, batched, false};
    /* A node loops over the batch when it reads or writes a batched value first. */
    e.dyn = batched && ((n->nin > 0 && batched[n->in[0]->id]) || (n->nout > 0 && batched[n->out[0]->id]));
    emit_rule[n->op](&e);
}
