/* The blocked-layout ops that the layout pass (passes/layout.c) puts in an
 * inference graph for a target with vector kernels:
 *
 *   conv_blocked   a conv whose output is stored NCHW[V]c (V = the target's
 *                  floats per vector) and whose weights were packed once, at
 *                  load time, into the kernel's order; its input is plain or
 *                  blocked;
 *   pack_conv      that packing (an init-time op);
 *   from_blocked   NCHW[V]c back to plain NCHW, for the ops without a
 *                  blocked kernel and for the net's outputs.
 *
 * The conv kernel is register-blocked (the scheme of GotoBLAS and BLIS
 * microkernels, in the direct-convolution form of oneDNN's blocked layouts):
 * RB output columns of V output channels stay in RB vector registers while
 * every tap and input channel adds the input value, broadcast, times one
 * vector of V weights.  V and RB come from the target (conv_blocking), so
 * the accumulators fit its register file.  The loop nest is written by
 * blocked_conv_consts and blocked_conv_nest (blocked.h), which the fused
 * bottleneck op (bottleneck.c) also runs, stage by stage, on bands of rows. */
#include <string.h>

#include "blocked.h"

/* ---- blocking ------------------------------------------------------------------ */

/* Output columns per register block: as many accumulators as the target's
 * registers allow, keeping four for the weight vector, the broadcast input
 * and the addresses, and at most 14 (more gains nothing once the FMA
 * latency is covered); among the widths from half that maximum to it, the
 * largest that divides the output width, so no row ends in a short block. */
static int conv_column_block(const Target *t, int64_t ow) {
    int max = t->regs - 4 < 14 ? t->regs - 4 : 14;
    if (ow <= max) return (int)ow;
    for (int r = max; r >= (max + 1) / 2; r--)
        if (ow % r == 0) return r;
    return max;
}

/* ---- shapes ------------------------------------------------------------------ */

bool blocked_conv_out(Node *n, const ConvAttrs *a, const int64_t *x, const Shape *ws, const Shape *bs, int64_t cg,
                      int64_t *y) {
    const int64_t *w = ws->d;
    char b1[128], b2[128];
    if (ws->rank != 5 || w[4] < 1 || w[0] != (a->out + w[4] - 1) / w[4] || w[1] != a->kernel[0] ||
        w[2] != a->kernel[1] || w[3] != cg || bs->d[0] != w[0] * w[4]) {
        DIAG_INTERNAL("%s \"%s\": packed weight %s and bias %s do not fit its input and attributes", op_name(n->op),
                      n->name, shape_str(ws, b1, sizeof b1), shape_str(bs, b2, sizeof b2));
        return false;
    }
    int64_t oh = shape_window_out(n, x[2], a->kernel[0], a->stride[0], a->pad[0], a->pad[1], a->dilation[0], false,
                                  "height");
    if (oh < 0) return false;
    int64_t ow = shape_window_out(n, x[3], a->kernel[1], a->stride[1], a->pad[2], a->pad[3], a->dilation[1], false,
                                  "width");
    if (ow < 0) return false;
    y[0] = x[0], y[1] = a->out, y[2] = oh, y[3] = ow;
    return true;
}

/* The shape rule of conv_blocked and dwconv_blocked: x [N, C, H, W], the
 * packed weight [ceil(K / V), kh, kw, cg, V] (cg input channels per output:
 * C for a conv, 1 for a depthwise one, whose K is C) and bias
 * [ceil(K / V) * V] give the conv's [N, K, OH, OW]; the residual, if any,
 * has that shape. */
static bool shape_blocked(Node *n, int64_t cg) {
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    int64_t y[4];
    if (!blocked_conv_out(n, &n->a.conv, n->in[0]->shape.d, &n->in[1]->shape, &n->in[2]->shape, cg, y)) return false;
    shape_set_out(n, 0, 4, y);
    char b1[128], b2[128];
    if (n->nin == 4 && !shape_eq(&n->in[3]->shape, &n->out[0]->shape)) {
        DIAG_INTERNAL("%s \"%s\": residual %s is not its output's shape %s", op_name(n->op), n->name,
                      shape_str(&n->in[3]->shape, b1, sizeof b1), shape_str(&n->out[0]->shape, b2, sizeof b2));
        return false;
    }
    return true;
}

/* A conv of one group: C input channels per output. */
static bool shape_conv_blocked(Graph *g, Node *n) {
    (void)g;
    if (n->a.conv.groups != 1) {
        DIAG_INTERNAL("conv_blocked \"%s\" has %d groups", n->name, n->a.conv.groups);
        return false;
    }
    return shape_blocked(n, n->in[0]->shape.rank == 4 ? n->in[0]->shape.d[1] : 0);
}

/* Depthwise: one input channel per output, as many outputs as inputs. */
static bool shape_dwconv_blocked(Graph *g, Node *n) {
    (void)g;
    int64_t c = n->in[0]->shape.rank == 4 ? n->in[0]->shape.d[1] : 0;
    if (n->a.conv.groups != c || n->a.conv.out != c) {
        DIAG_INTERNAL("dwconv_blocked \"%s\" needs groups = outputs = its %lld input channels", n->name, (long long)c);
        return false;
    }
    return shape_blocked(n, 1);
}

/* weight [K, C, kh, kw], bias [K]? -> [ceil(K / V), kh, kw, C, V], [ceil(K / V) * V]. */
static bool shape_pack_conv(Graph *g, Node *n) {
    (void)g;
    const int64_t *w = n->in[0]->shape.d;
    int v = n->a.pack.vec;
    if (n->in[0]->shape.rank != 4 || v < 1) {
        DIAG_INTERNAL("pack_conv \"%s\" needs a conv weight and a vector width", n->name);
        return false;
    }
    int64_t kb = (w[0] + v - 1) / v;
    shape_set_out(n, 0, 5, (int64_t[]){kb, w[2], w[3], w[1], v});
    shape_set_out(n, 1, 1, (int64_t[]){kb * v});
    return true;
}

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_conv_blocked(const Graph *g, const Node *n) {
    (void)g;
    const Value *x = n->in[0], *y = n->out[0];
    if (y->cblock != n->in[1]->shape.d[4]) return "its output's block is not its weight's vector width";
    if (x->cblock && x->shape.rank != 4) return "a blocked input must be [N, C, H, W]";
    if (n->nin == 4 && n->in[3]->cblock != y->cblock) return "its residual must be blocked as its output";
    if (n->a.conv.act < EPILOGUE_NONE || n->a.conv.act > EPILOGUE_RELU6) return "an unknown epilogue activation";
    return NULL;
}

static const char *check_dwconv_blocked(const Graph *g, const Node *n) {
    const char *why = check_conv_blocked(g, n);
    if (why) return why;
    return n->in[0]->cblock != n->out[0]->cblock ? "its input must be blocked as its output" : NULL;
}

static const char *check_from_blocked(const Graph *g, const Node *n) {
    (void)g;
    if (!n->in[0]->cblock || n->in[0]->shape.rank != 4) return "its input must be a blocked [N, C, H, W]";
    if (n->out[0]->cblock) return "its output must be plain";
    return NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* The store of accumulator `acc` to output column `col` of row yr: plus the
 * residual at the same place, then the activation (fuse_epilogue), at
 * `depth` levels of indentation.  The comparisons are written so that NaN
 * passes through, as the plain relu and relu6 kernels do. */
static void store(Kernel *k, const BlockedConv *c, int depth, const char *acc, const char *col) {
    int ind = 4 * depth;
    if (!c->residual && c->a->act == EPILOGUE_NONE) {
        kout(k, "%*s*(vec *)(yr + (size_t)(%s) * V) = %s;\n", ind, "", col, acc);
        return;
    }
    kout(k, "%*s{\n%*s    vec a = %s;\n", ind, "", ind, "", acc);
    if (c->residual) kout(k, "%*s    a += *(const vec *)(rr + (size_t)(%s) * V);\n", ind, "", col);
    if (c->a->act != EPILOGUE_NONE)
        kout(k, "%*s    a = (vec)((ivec)a & ~(a < 0.0f)); /* relu: x < 0 ? 0 : x */\n", ind, "");
    if (c->a->act == EPILOGUE_RELU6)
        kout(k, "%*s    a = (vec)(((ivec)a & ~(a > 6.0f)) | ((ivec)((vec){0} + 6.0f) & (a > 6.0f))); /* x > 6 ? 6 : x */\n",
             ind, "");
    kout(k, "%*s    *(vec *)(yr + (size_t)(%s) * V) = a;\n%*s}\n", ind, "", col, ind, "");
}

/* The address of input (n, c, ih, iw) for a plain or an XV-blocked x. */
static const char *x_at(const Value *x) {
    return x->cblock ? "x + ((((size_t)n * XCB + c / XV) * H + ih) * W + iw) * XV + c % XV"
                     : "x + (((size_t)n * C + c) * H + ih) * W + iw";
}

/* (Inference only: N is the compiled batch, never the training kernels' nb_active.) */
void blocked_conv_consts(Kernel *k, int depth, const BlockedConv *c, const ConvText *t) {
    const ConvAttrs *a = c->a;
    int ind = 4 * depth, rb = conv_column_block(k->target, c->y[3]);
    const KConst kc[] = {{"N", c->x[0]}, {"C", c->x[1]}, {"H", c->x[2]}, {"W", c->x[3]}, {"K", c->y[1]},
                         {"OH", c->y[2]}, {"OW", c->y[3]}, {"KH", a->kernel[0]}, {"KW", a->kernel[1]},
                         {"SH", dim_or_one(a->stride[0])}, {"SW", dim_or_one(a->stride[1])}, {"PT", a->pad[0]},
                         {"PL", a->pad[2]}, {"DH", dim_or_one(a->dilation[0])}, {"DW", dim_or_one(a->dilation[1])}};
    kout(k, "%*senum { ", ind, "");
    for (size_t i = 0; i < sizeof kc / sizeof kc[0]; i++)
        kout(k, "%s%s = %lld", i ? ", " : "", kc[i].name, (long long)kc[i].v);
    kout(k, " };\n");
    kout(k, "%*s/* Blocking (%s): V = %d %s per vector, RB = %d output columns held in RB\n"
            "%*s * accumulators of the target's %d vector registers; OW = %lld is %lld blocks%s. */\n",
         ind, "", k->target->name, c->v, t->what, rb, ind, "", k->target->regs, (long long)c->y[3],
         (long long)(c->y[3] / rb), c->y[3] % rb ? " and single columns" : "");
    kout(k, "%*senum { V = %d, RB = %d, OB = (K + V - 1) / V }; /* OB output blocks */\n", ind, "", c->v, rb);
    klines(k, depth, t->extra);
    kout(k, "%*stypedef float vec __attribute__((vector_size(V * sizeof(float))));\n", ind, "");
    if (a->act != EPILOGUE_NONE)
        kout(k, "%*stypedef int ivec __attribute__((vector_size(V * sizeof(int))));\n", ind, "");
}

void blocked_conv_nest(Kernel *k, int d, const BlockedConv *c, const ConvParts *p, const ConvRows *rows) {
    klines(k, d, "for (int ob = 0; ob < OB; ob++) {\n");
    klines(k, d + 1, p->block);
    klines(k, d + 1, "const vec bias = *(const vec *)(b + (size_t)ob * V);\n");
    if (rows)
        kout(k, "%*sfor (int oh = %s; oh < %s; oh++) {\n%*s    float *restrict yr = %s;\n", 4 * (d + 1), "",
             rows->first, rows->end, 4 * (d + 1), "", rows->yrow);
    else
        klines(k, d + 1, "for (int oh = 0; oh < OH; oh++) {\n"
                         "    float *restrict yr = y + (((size_t)n * OB + ob) * OH + oh) * OW * V;\n");
    if (c->residual)
        klines(k, d + 2, "const float *restrict rr = res + (((size_t)n * OB + ob) * OH + oh) * OW * V;\n");
    klines(k, d + 2, "int ow = 0;\n"
                     "for (; ow + RB <= OW; ow += RB) {\n"
                     "    vec acc[RB];\n");
    kout(k, "#pragma GCC unroll 16\n");
    klines(k, d + 3, "for (int r = 0; r < RB; r++) acc[r] = bias;\n"
                     "for (int kh = 0; kh < KH; kh++) {\n"
                     "    const int ih = oh * SH - PT + kh * DH;\n"
                     "    if (ih < 0 || ih >= H) continue;\n");
    klines(k, d + 4, p->row);
    klines(k, d + 4, "for (int kw = 0; kw < KW; kw++) {\n"
                     "    const int iw0 = ow * SW - PL + kw * DW;\n");
    klines(k, d + 5, p->tap);
    klines(k, d + 5, "if (iw0 >= 0 && iw0 + (RB - 1) * SW < W) { /* every column inside */\n");
    klines(k, d + 6, p->inside);
    klines(k, d + 5, "} else { /* some columns in the padding */\n");
    klines(k, d + 6, p->border);
    klines(k, d + 3, "        }\n"
                     "    }\n"
                     "}\n");
    kout(k, "#pragma GCC unroll 16\n");
    klines(k, d + 3, "for (int r = 0; r < RB; r++)\n");
    store(k, c, d + 4, "acc[r]", "ow + r");
    klines(k, d + 2, "}\n"
                     "for (; ow < OW; ow++) { /* the columns after the last whole block */\n"
                     "    vec acc = bias;\n"
                     "    for (int kh = 0; kh < KH; kh++) {\n"
                     "        const int ih = oh * SH - PT + kh * DH;\n"
                     "        if (ih < 0 || ih >= H) continue;\n"
                     "        for (int kw = 0; kw < KW; kw++) {\n"
                     "            const int iw = ow * SW - PL + kw * DW;\n"
                     "            if (iw < 0 || iw >= W) continue;\n");
    klines(k, d + 5, p->single);
    klines(k, d + 3, "    }\n"
                     "}\n");
    store(k, c, d + 3, "acc", "ow");
    klines(k, d, "        }\n"
                 "    }\n"
                 "}\n");
}

/* A conv_blocked or dwconv_blocked node as the generator sees it. */
static BlockedConv blocked_conv_of(const Node *n) {
    BlockedConv c = {.a = &n->a.conv, .v = (int)n->in[1]->shape.d[4], .xv = n->in[0]->cblock, .residual = n->nin == 4};
    memcpy(c.x, n->in[0]->shape.d, sizeof c.x);
    memcpy(c.y, n->out[0]->shape.d, sizeof c.y);
    return c;
}

/* The kernel of conv_blocked and dwconv_blocked: the loop nest for each sample. */
static void emit_blocked_conv(Kernel *k, const ConvText *t) {
    BlockedConv c = blocked_conv_of(k->n);
    kopen(k, (const char *const[]){"x", "w", "b", "res"}, (const char *const[]){"y"});
    blocked_conv_consts(k, 1, &c, t);
    klines(k, 1, "for (int n = 0; n < N; n++) {\n");
    blocked_conv_nest(k, 2, &c, &t->p, NULL);
    klines(k, 1, "}\n");
    kclose(k);
}

/* conv_blocked: each tap and input channel adds the input value, broadcast,
 * times one vector of V output channels' weights. */
void conv_text(ConvText *t, int xv, const char *xa) {
    if (xv)
        snprintf(t->extra, sizeof t->extra,
                 "enum { XV = %d, XCB = (C + XV - 1) / XV }; /* the input's channel blocks */\n"
                 "enum { XS = SW * XV }; /* floats between the input values of adjacent output columns */\n",
                 xv);
    else
        snprintf(t->extra, sizeof t->extra, "enum { XS = SW * 1 }; /* floats between the input values of adjacent output columns */\n");
    snprintf(t->inside, sizeof t->inside,
             "for (int c = 0; c < C; c++) {\n"
             "    const vec wv = *(const vec *)(wt + (size_t)c * V);\n"
             "    const int iw = iw0;\n"
             "    const float *restrict xp = %s;\n"
             "#pragma GCC unroll 16\n"
             "    for (int r = 0; r < RB; r++) acc[r] += wv * xp[r * XS];\n"
             "}\n",
             xa);
    snprintf(t->border, sizeof t->border,
             "for (int c = 0; c < C; c++) {\n"
             "    const vec wv = *(const vec *)(wt + (size_t)c * V);\n"
             "#pragma GCC unroll 16\n"
             "    for (int r = 0; r < RB; r++) {\n"
             "        const int iw = iw0 + r * SW;\n"
             "        if (iw >= 0 && iw < W) acc[r] += wv * *(%s);\n"
             "    }\n"
             "}\n",
             xa);
    snprintf(t->single, sizeof t->single,
             "const float *restrict wt = wk + (size_t)(kh * KW + kw) * C * V;\n"
             "for (int c = 0; c < C; c++) acc += *(const vec *)(wt + (size_t)c * V) * *(%s);\n",
             xa);
    snprintf(t->block, sizeof t->block, "const float *restrict wk = w + (size_t)ob * KH * KW * C * V;\n");
    snprintf(t->tap, sizeof t->tap, "const float *restrict wt = wk + (size_t)(kh * KW + kw) * C * V;\n");
    t->row[0] = '\0';
    t->p = (ConvParts){t->block, t->row, t->tap, t->inside, t->border, t->single};
    t->what = "output channels";
}

static void emit_conv_blocked(Kernel *k) {
    ConvText t;
    conv_text(&t, k->n->in[0]->cblock, x_at(k->n->in[0]));
    emit_blocked_conv(k, &t);
}

/* dwconv_blocked: each output channel reads its own input channel, so a
 * vector of V channels of one pixel is one load, times one vector of V
 * weights per tap: no broadcast. */
void dwconv_text(ConvText *t, const char *plane, const char *row) {
    t->extra[0] = '\0';
    snprintf(t->block, sizeof t->block,
             "const float *restrict wk = w + (size_t)ob * KH * KW * V;\n"
             "const float *restrict xc = %s;\n",
             plane);
    snprintf(t->row, sizeof t->row, "const float *restrict xr = xc + (size_t)%s * W * V;\n", row);
    snprintf(t->tap, sizeof t->tap, "const vec wv = *(const vec *)(wk + (size_t)(kh * KW + kw) * V);\n");
    snprintf(t->inside, sizeof t->inside,
             "#pragma GCC unroll 16\n"
             "for (int r = 0; r < RB; r++) acc[r] += wv * *(const vec *)(xr + (size_t)(iw0 + r * SW) * V);\n");
    snprintf(t->border, sizeof t->border,
             "#pragma GCC unroll 16\n"
             "for (int r = 0; r < RB; r++) {\n"
             "    const int iw = iw0 + r * SW;\n"
             "    if (iw >= 0 && iw < W) acc[r] += wv * *(const vec *)(xr + (size_t)iw * V);\n"
             "}\n");
    snprintf(t->single, sizeof t->single,
             "acc += *(const vec *)(wk + (size_t)(kh * KW + kw) * V) * *(const vec *)(xc + ((size_t)%s * W + iw) * V);\n",
             row);
    t->p = (ConvParts){t->block, t->row, t->tap, t->inside, t->border, t->single};
    t->what = "channels";
}

static void emit_dwconv_blocked(Kernel *k) {
    ConvText t;
    dwconv_text(&t, "x + ((size_t)n * OB + ob) * H * W * V", "ih");
    emit_blocked_conv(k, &t);
}

/* The weight in the kernel's order, zero past the K output channels, and the
 * bias likewise (zero if the conv has none). */
static void emit_pack_conv(Kernel *k) {
    const Node *n = k->n;
    const Shape *w = in_shape(k, 0);
    bool bias = n->nin == 2;
    kopen(k, bias ? (const char *const[]){"w", "b"} : (const char *const[]){"w"}, (const char *const[]){"wp", "bp"});
    KENUM(k, {"K", w->d[0]}, {"C", w->d[1]}, {"KH", w->d[2]}, {"KW", w->d[3]}, {"V", n->a.pack.vec});
    kout(k, "    enum { KB = (K + V - 1) / V };\n"
            "    for (int kb = 0; kb < KB; kb++) {\n"
            "        for (int t = 0; t < KH * KW; t++)\n"
            "            for (int c = 0; c < C; c++)\n"
            "                for (int v = 0; v < V; v++) {\n"
            "                    const int k = kb * V + v;\n"
            "                    wp[(((size_t)kb * KH * KW + t) * C + c) * V + v] = k < K ? w[((size_t)k * C + c) * KH * KW + t] : 0.0f;\n"
            "                }\n"
            "        for (int v = 0; v < V; v++) bp[kb * V + v] = %s;\n"
            "    }\n",
         bias ? "kb * V + v < K ? b[kb * V + v] : 0.0f" : "0.0f");
    kclose(k);
}

static void emit_from_blocked(Kernel *k) {
    const Value *x = k->n->in[0];
    const Shape *s = &x->shape;
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", s->d[0]}, {"C", s->d[1]}, {"S", s->d[2] * s->d[3]}, {"V", x->cblock});
    kout(k, "    enum { CB = (C + V - 1) / V };\n"
            "    for (int n = 0; n < N; n++)\n"
            "        for (int c = 0; c < C; c++) {\n"
            "            const float *restrict xc = x + ((size_t)n * CB + c / V) * S * V + c %% V;\n"
            "            float *restrict yc = y + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) yc[i] = xc[(size_t)i * V];\n"
            "        }\n");
    kclose(k);
}

/* ---- the rest of the entries' rules ------------------------------------------------- */

static void dump_conv_blocked(const Node *n, FILE *f) {
    const ConvAttrs *a = &n->a.conv;
    fprintf(f, " out=%lld kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d dilation=%dx%d", (long long)a->out, a->kernel[0],
            a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3], a->dilation[0],
            a->dilation[1]);
    static const char *const acts[] = {"", " relu", " relu6"};
    if (a->act > EPILOGUE_NONE && a->act <= EPILOGUE_RELU6) fprintf(f, " then%s", acts[a->act]);
}

static void dump_pack_conv(const Node *n, FILE *f) { fprintf(f, " vec=%d", n->a.pack.vec); }

/* As conv's: per output value, C * kh * kw (the packed weight [K/V, kh, kw, C, V]). */
static int64_t macs_conv_blocked(const Node *n) {
    const Shape *y = &n->out[0]->shape, *w = &n->in[1]->shape;
    return shape_numel(y) / y->d[0] * w->d[1] * w->d[2] * w->d[3];
}

#define MADE_BY_LAYOUT "the layout pass makes it"
#define INFERENCE_ONLY "inference only: the layout pass does not run in training builds"

const OpRules op_rules_CONV_BLOCKED = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_conv_blocked, .check = check_conv_blocked, .emit = emit_conv_blocked,
    .batched = op_batched_like_input0, .dump = dump_conv_blocked, .macs = macs_conv_blocked,
    .no_grad = INFERENCE_ONLY, .blocked_ok = true,
};

const OpRules op_rules_DWCONV_BLOCKED = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_dwconv_blocked, .check = check_dwconv_blocked, .emit = emit_dwconv_blocked,
    .batched = op_batched_like_input0, .dump = dump_conv_blocked, .macs = macs_conv_blocked,
    .no_grad = INFERENCE_ONLY, .blocked_ok = true,
};

const OpRules op_rules_PACK_CONV = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_pack_conv, .no_check = "any conv weight", .emit = emit_pack_conv, .batched = op_batched_never,
    .output_names = (const char *const[]){"the packed weight", "the packed bias"},
    .dump = dump_pack_conv, .no_macs = "init-time: not counted", .no_grad = INFERENCE_ONLY,
};

const OpRules op_rules_FROM_BLOCKED = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_same, .check = check_from_blocked, .emit = emit_from_blocked, .batched = op_batched_like_input0,
    .no_dump = "no attributes: the input's block says how to read it", .no_macs = "data movement: not counted",
    .no_grad = INFERENCE_ONLY, .blocked_ok = true,
};
