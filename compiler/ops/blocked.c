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
 * blocked_conv_consts and blocked_conv_row (blocked.h), which the fused
 * bottleneck op (bottleneck.c) also runs, stage by stage, on bands of rows. */
#include <ctype.h>
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

/* ---- grouped convs ----------------------------------------------------------- */

/* The input channels one output block of V channels reads, for a conv of
 * K outputs, C inputs and G groups (OCG = K / G outputs and CG = C / G inputs
 * per group): C for one group; for several, the channels of the groups the
 * block spans, V / OCG groups when a group is narrower than a block (the
 * weights of the other groups' channels packed as zeros), else one group's
 * CG.  0 when the blocks do not fall on group boundaries (K % V, and V %
 * OCG or OCG % V), which the layout pass leaves to the plain kernel.  The
 * block's first channel is (ob * V / OCG) * CG. */
int64_t conv_blocked_span(int64_t k, int64_t c, int groups, int v) {
    if (groups <= 1) return c;
    if (k % groups || c % groups || k % v) return 0;
    int64_t ocg = k / groups, cg = c / groups;
    if (ocg < v) return v % ocg ? 0 : v / ocg * cg;
    return ocg % v ? 0 : cg;
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

/* A conv of one group: C input channels per output; of several groups, the
 * channels its output blocks span (conv_blocked_span). */
static bool shape_conv_blocked(Graph *g, Node *n) {
    (void)g;
    int64_t c = n->in[0]->shape.rank == 4 ? n->in[0]->shape.d[1] : 0;
    int64_t span = conv_blocked_span(n->a.conv.out, c, n->a.conv.groups, (int)n->in[1]->shape.d[4]);
    if (n->a.conv.groups < 1 || span < 1) {
        DIAG_INTERNAL("conv_blocked \"%s\": %d groups of %lld outputs do not fall on its blocks", n->name,
                      n->a.conv.groups, (long long)n->a.conv.out);
        return false;
    }
    return shape_blocked(n, span);
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

/* weight [K, C, kh, kw], bias [K]? -> [ceil(K / V), kh, kw, C, V], [ceil(K / V) * V];
 * a grouped conv's weight [K, C / G, kh, kw] -> [K / V, kh, kw, span, V]. */
static bool shape_pack_conv(Graph *g, Node *n) {
    (void)g;
    const int64_t *w = n->in[0]->shape.d;
    int v = n->a.pack.vec, groups = n->a.pack.groups > 1 ? n->a.pack.groups : 1;
    if (n->a.pack.transpose) { /* [K, C, kh, kw] -> [ceil(C / V), kh, kw, K, V], [ceil(C / V) * V] */
        if (n->in[0]->shape.rank != 4 || v < 1 || groups != 1 || n->nin != 1) {
            DIAG_INTERNAL("pack_conv \"%s\" transposed needs one conv weight of one group and a vector width", n->name);
            return false;
        }
        int64_t cb = (w[1] + v - 1) / v;
        shape_set_out(n, 0, 5, (int64_t[]){cb, w[2], w[3], w[0], v});
        shape_set_out(n, 1, 1, (int64_t[]){cb * v});
        return true;
    }
    int64_t span = n->in[0]->shape.rank == 4 ? conv_blocked_span(w[0], w[1] * groups, groups, v) : 0;
    if (n->in[0]->shape.rank != 4 || v < 1 || span < 1) {
        DIAG_INTERNAL("pack_conv \"%s\" needs a conv weight and a vector width (and groups on its blocks)", n->name);
        return false;
    }
    int64_t kb = (w[0] + v - 1) / v;
    shape_set_out(n, 0, 5, (int64_t[]){kb, w[2], w[3], span, v});
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
    if (n->a.conv.act < EPILOGUE_NONE || n->a.conv.act > EPILOGUE_LEAKY_RELU) return "an unknown epilogue activation";
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

/* Whether the epilogue's activation is applied to the accumulators (relu
 * and relu6) rather than over the finished row (row_epilogue). */
static bool act_in_registers(int act) { return act == EPILOGUE_RELU || act == EPILOGUE_RELU6; }

/* The op of an activation applied over the finished row, or OP_COUNT for none. */
static Op row_act_op(int act) {
    switch (act) {
    case EPILOGUE_SILU: return OP_SILU;
    case EPILOGUE_SIGMOID: return OP_SIGMOID;
    case EPILOGUE_HARDSWISH: return OP_HARDSWISH;
    case EPILOGUE_TANH: return OP_TANH;
    case EPILOGUE_LEAKY_RELU: return OP_LEAKY_RELU;
    default: return OP_COUNT;
    }
}

const char *blocked_act_name(int act) {
    static const char *const acts[] = {"", "relu", "relu6", "silu", "sigmoid", "hardswish", "tanh", "leaky_relu"};
    return act > EPILOGUE_NONE && act <= EPILOGUE_LEAKY_RELU ? acts[act] : "";
}

/* The store of accumulator `acc` to output column `col` of row yr: plus the
 * residual at the same place, then relu or relu6 (fuse_epilogue), at
 * `depth` levels of indentation.  The comparisons are written so that NaN
 * passes through, as the plain relu and relu6 kernels do. */
static void store_to(Kernel *k, const BlockedConv *c, int depth, const char *acc, const char *col, const char *yr,
                     const char *rr) {
    int ind = 4 * depth;
    if (!c->residual && !act_in_registers(c->a->act)) {
        kout(k, "%*s*(vec *)(%s + (size_t)(%s) * V) = %s;\n", ind, "", yr, col, acc);
        return;
    }
    kout(k, "%*s{\n%*s    vec a = %s;\n", ind, "", ind, "", acc);
    if (c->residual) kout(k, "%*s    a += *(const vec *)(%s + (size_t)(%s) * V);\n", ind, "", rr, col);
    if (act_in_registers(c->a->act))
        kout(k, "%*s    a = (vec)((ivec)a & ~(a < 0.0f)); /* relu: x < 0 ? 0 : x */\n", ind, "");
    if (c->a->act == EPILOGUE_RELU6)
        kout(k, "%*s    a = (vec)(((ivec)a & ~(a > 6.0f)) | ((ivec)((vec){0} + 6.0f) & (a > 6.0f))); /* x > 6 ? 6 : x */\n",
             ind, "");
    kout(k, "%*s    *(vec *)(%s + (size_t)(%s) * V) = a;\n%*s}\n", ind, "", yr, col, ind, "");
}

/* The store of an accumulator of the output block ob (row yr) and, holding
 * two blocks (ConvParts.pair), of block ob + 1 (row yr2). */
static void store(Kernel *k, const BlockedConv *c, int depth, const char *acc, const char *col) {
    store_to(k, c, depth, acc, col, "yr", "rr");
}

/* The other activations (silu, sigmoid, hardswish, tanh, leaky_relu), over
 * the finished output row yr with the standalone kernel's expression
 * (activation_expr, x[i] read as q[i], q each vector of the row, and the
 * constant K as AK): the row
 * is still in the L1 cache, the loop vectorizes as the standalone kernel's
 * does, and each element gets the same bits. */
static void row_epilogue_of(Kernel *k, const BlockedConv *c, int depth, const char *yr) {
    Op op = row_act_op(c->a->act);
    if (op == OP_COUNT) return;
    const char *e = activation_expr(op);
    char body[512];
    size_t m = 0;
    for (const char *p = e; *p && m + 16 < sizeof body;) {
        bool ident_before = p > e && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        if (!strncmp(p, "x[i]", 4) && !ident_before) {
            m += (size_t)snprintf(body + m, sizeof body - m, "q[i]");
            p += 4;
        } else if (*p == 'K' && !ident_before && !isalnum((unsigned char)p[1]) && p[1] != '_') {
            memcpy(body + m, "AK", 2);
            m += 2;
            p++;
        } else {
            body[m++] = *p++;
        }
    }
    body[m] = 0;
    /* one vector of V channels at a time, through its own restrict pointer: clang 14 does not vectorize
     * the one loop over the row's OW * V floats once the row's address comes from a work item */
    kout(k, "%*sfor (int j = 0; j < OW; j++) { /* the fused %s */\n"
            "%*s    netc_real *restrict q = %s + (size_t)j * V;\n"
            "%*s    for (int i = 0; i < V; i++) q[i] = %s;\n"
            "%*s}\n",
         4 * depth, "", op_name(op), 4 * depth, "", yr, 4 * depth, "", body, 4 * depth, "");
}

static void row_epilogue(Kernel *k, const BlockedConv *c, int depth) { row_epilogue_of(k, c, depth, "yr"); }

/* The address of input (n, c, ih, iw) for a plain or an XV-blocked x; a
 * grouped conv's channel is c0 + c, c0 its output block's first input
 * channel. */
static const char *x_at(const Value *x, bool grouped) {
    if (grouped)
        return x->cblock ? "x + ((((size_t)n * XCB + (c0 + c) / XV) * H + ih) * W + iw) * XV + (c0 + c) % XV"
                         : "x + (((size_t)n * C + c0 + c) * H + ih) * W + iw";
    return x->cblock ? "x + ((((size_t)n * XCB + c / XV) * H + ih) * W + iw) * XV + c % XV"
                     : "x + (((size_t)n * C + c) * H + ih) * W + iw";
}

/* (Inference only: N is the compiled batch, never the training kernels' nb_active.) */
void blocked_conv_consts(Kernel *k, int depth, const BlockedConv *c, const ConvText *t, const char *items) {
    const ConvAttrs *a = c->a;
    int ind = 4 * depth, rb = conv_column_block(k->target, c->y[3]);
    const KConst kc[] = {{"N", c->x[0]}, {"C", c->x[1]}, {"H", c->x[2]}, {"W", c->x[3]}, {"K", c->y[1]},
                         {"OH", c->y[2]}, {"OW", c->y[3]}, {"KH", a->kernel[0]}, {"KW", a->kernel[1]},
                         {"SH", dim_or_one(a->stride[0])}, {"SW", dim_or_one(a->stride[1])}, {"PT", a->pad[0]},
                         {"PL", a->pad[2]}, {"DH", dim_or_one(a->dilation[0])}, {"DW", dim_or_one(a->dilation[1])}};
    if (depth == 1) { /* the kernel's own constants (kenum knows a batch that varies) */
        kenum(k, kc, sizeof kc / sizeof kc[0]);
        if (k->dyn) kout(k, "    (void)N; /* in the count of items */\n");
    } else {
        kout(k, "%*senum { ", ind, "");
        for (size_t i = 0; i < sizeof kc / sizeof kc[0]; i++)
            kout(k, "%s%s = %lld", i ? ", " : "", kc[i].name, (long long)kc[i].v);
        kout(k, " };\n");
    }
    kout(k, "%*s/* Blocking (%s): V = %d %s per vector, RB = %d output columns held in RB\n"
            "%*s * accumulators of the target's %d vector registers; OW = %lld is %lld blocks%s.%s",
         ind, "", k->target->name, c->v, t->what, rb, ind, "", k->target->regs, (long long)c->y[3],
         (long long)(c->y[3] / rb), c->y[3] % rb ? " and single columns" : "", items ? "\n" : " */\n");
    if (items) kout(k, "%*s * %s */\n", ind, "", items);
    kout(k, "%*senum { V = %d, RB = %d, OB = (K + V - 1) / V }; /* OB output blocks */\n", ind, "", c->v, rb);
    klines(k, depth, t->extra);
    kout(k, "%*stypedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n", ind, "");
    if (act_in_registers(a->act))
        kout(k, "%*stypedef int ivec __attribute__((vector_size(V * sizeof(int))));\n", ind, "");
    if (a->act == EPILOGUE_LEAKY_RELU) {
        char buf[64];
        kout(k, "%*sconst double AKD = %s;\n", ind, "", double_literal(buf, sizeof buf, a->act_k));
        kout(k, "%*sconst netc_real AK = (netc_real)AKD; /* the fused leaky_relu's slope */\n", ind, "");
    }
}

/* The taps of a column block with some columns in the padding.  The
 * columns inside are one run [lo, hi) of the block, and the shapes being
 * constants, the runs that occur are few (3x3, pad 1: [1, RB) at the left
 * edge and [0, RB - 1) at the right): each gets the inside loop with those
 * constant bounds, so that its accumulators stay in registers and no column
 * is tested in the loop over the input channels (a test per column and
 * channel took 2/3 of the time of a 14x14 layer, whose one block has both
 * edges).  A run not foreseen (more than BORDER_RUNS of them) takes the
 * tested loop. */
enum { BORDER_RUNS = 8 };

static void border_cases(Kernel *k, int d, const BlockedConv *c, const ConvParts *p) {
    const ConvAttrs *a = c->a;
    int rb = conv_column_block(k->target, c->y[3]);
    int64_t sw = dim_or_one(a->stride[1]), dw = dim_or_one(a->dilation[1]), w = c->x[3];
    int runs[BORDER_RUNS][2], nrun = 0;
    bool more = false;
    for (int64_t ow = 0; ow + rb <= c->y[3]; ow += rb)
        for (int64_t kw = 0; kw < a->kernel[1]; kw++) {
            int64_t iw0 = ow * sw - a->pad[2] + kw * dw;
            if (iw0 >= 0 && iw0 + (rb - 1) * sw < w) continue;
            int lo = 0, hi = rb;
            while (lo < rb && iw0 + lo * sw < 0) lo++;
            while (hi > lo && iw0 + (hi - 1) * sw >= w) hi--;
            if (lo >= hi) continue; /* no column inside: nothing to add */
            int i = 0;
            while (i < nrun && (runs[i][0] != lo || runs[i][1] != hi)) i++;
            if (i < nrun) continue;
            if (nrun == BORDER_RUNS) {
                more = true;
                continue;
            }
            runs[nrun][0] = lo, runs[nrun][1] = hi, nrun++;
        }
    if (nrun == 0 && !more) { /* (only blocks with no column inside) */
        klines(k, d, p->border);
        return;
    }
    klines(k, d, "/* the columns inside: [lo, hi) */\n"
                 "const int lo = iw0 >= 0 ? 0 : (-iw0 + SW - 1) / SW;\n"
                 "const int hi = iw0 >= W ? 0 : (W - 1 - iw0) / SW + 1 < RB ? (W - 1 - iw0) / SW + 1 : RB;\n");
    for (int i = 0; i < nrun; i++) {
        kout(k, "%*s%sif (lo == %d && hi == %d) {\n", 4 * d, "", i ? "} else " : "", runs[i][0], runs[i][1]);
        kout(k, "%*senum { RLO = %d, RHI = %d };\n", 4 * (d + 1), "", runs[i][0], runs[i][1]);
        klines(k, d + 1, p->inside);
    }
    klines(k, d, "} else if (lo < hi) {\n");
    klines(k, d + 1, p->border);
    klines(k, d, "}\n");
}

void blocked_conv_row(Kernel *k, int R, const BlockedConv *c, const ConvParts *p, const char *yrow) {
    int t = p->tiled ? 1 : 0; /* the tile's partial sums deepen the stores */
    kout(k, "%*snetc_real *restrict yr = %s;\n", 4 * R, "", yrow);
    if (c->residual) klines(k, R, "const netc_real *restrict rr = res + (((size_t)n * OB + ob) * OH + oh) * OW * V;\n");
    if (p->pair) {
        klines(k, R, "netc_real *restrict yr2 = yr + (size_t)OH * OW * V; /* block ob + 1 */\n");
        if (c->residual) klines(k, R, "const netc_real *restrict rr2 = rr + (size_t)OH * OW * V;\n");
    }
    klines(k, R, "int ow = 0;\n"
                 "for (; ow + RB <= OW; ow += RB) {\n");
    klines(k, R + 1, p->pair ? "vec acc[RB], acc2[RB];\n" : "vec acc[RB];\n");
    kout(k, "#pragma GCC unroll 16\n");
    klines(k, R + 1, t ? "for (int r = 0; r < RB; r++) acc[r] = ct == 0 ? bias : *(const vec *)(yr + (size_t)(ow + r) * V);\n"
                       : p->pair ? "for (int r = 0; r < RB; r++) acc[r] = bias, acc2[r] = bias2;\n"
                                 : "for (int r = 0; r < RB; r++) acc[r] = bias;\n");
    klines(k, R + 1, "for (int kh = 0; kh < KH; kh++) {\n"
                     "    const int ih = oh * SH - PT + kh * DH;\n"
                     "    if (ih < 0 || ih >= H) continue;\n");
    klines(k, R + 2, p->row);
    klines(k, R + 2, "for (int kw = 0; kw < KW; kw++) {\n"
                     "    const int iw0 = ow * SW - PL + kw * DW;\n");
    klines(k, R + 3, p->tap);
    klines(k, R + 3, "if (iw0 >= 0 && iw0 + (RB - 1) * SW < W) { /* every column inside */\n");
    klines(k, R + 4, "enum { RLO = 0, RHI = RB };\n");
    klines(k, R + 4, p->inside);
    klines(k, R + 3, "} else { /* some columns in the padding */\n");
    border_cases(k, R + 4, c, p);
    klines(k, R + 1, "        }\n"
                     "    }\n"
                     "}\n");
    if (t) {
        klines(k, R + 1, "if (!last) { /* a partial sum */\n");
        kout(k, "#pragma GCC unroll 16\n");
        klines(k, R + 2, "for (int r = 0; r < RB; r++) *(vec *)(yr + (size_t)(ow + r) * V) = acc[r];\n");
        klines(k, R + 1, "} else {\n");
    }
    kout(k, "#pragma GCC unroll 16\n");
    klines(k, R + 1 + t, "for (int r = 0; r < RB; r++)\n");
    store(k, c, R + 2 + t, "acc[r]", "ow + r");
    if (p->pair) {
        kout(k, "#pragma GCC unroll 16\n");
        klines(k, R + 1, "for (int r = 0; r < RB; r++)\n");
        store_to(k, c, R + 2, "acc2[r]", "ow + r", "yr2", "rr2");
    }
    if (t) klines(k, R + 1, "}\n");
    klines(k, R, "}\n"
                 "for (; ow < OW; ow++) { /* the columns after the last whole block */\n");
    klines(k, R + 1, t ? "vec acc = ct == 0 ? bias : *(const vec *)(yr + (size_t)ow * V);\n"
                       : p->pair ? "vec acc = bias, acc2 = bias2;\n" : "vec acc = bias;\n");
    klines(k, R + 1, "for (int kh = 0; kh < KH; kh++) {\n"
                     "    const int ih = oh * SH - PT + kh * DH;\n"
                     "    if (ih < 0 || ih >= H) continue;\n"
                     "    for (int kw = 0; kw < KW; kw++) {\n"
                     "        const int iw = ow * SW - PL + kw * DW;\n"
                     "        if (iw < 0 || iw >= W) continue;\n");
    klines(k, R + 3, p->single);
    klines(k, R + 1, "    }\n"
                     "}\n");
    if (t) {
        klines(k, R + 1, "if (!last)\n"
                         "    *(vec *)(yr + (size_t)ow * V) = acc;\n"
                         "else\n");
        store(k, c, R + 2, "acc", "ow");
    } else {
        store(k, c, R + 1, "acc", "ow");
        if (p->pair) store_to(k, c, R + 1, "acc2", "ow", "yr2", "rr2");
    }
    klines(k, R, "}\n");
    if (t && row_act_op(c->a->act) != OP_COUNT) {
        klines(k, R, "if (last)\n");
        row_epilogue(k, c, R + 1);
    } else {
        row_epilogue(k, c, R);
        if (p->pair) row_epilogue_of(k, c, R, "yr2");
    }
}

void blocked_conv_nest(Kernel *k, int d, const BlockedConv *c, const ConvParts *p, const ConvRows *rows) {
    klines(k, d, "for (int ob = 0; ob < OB; ob++) {\n");
    klines(k, d + 1, p->block);
    klines(k, d + 1, "const vec bias = *(const vec *)(b + (size_t)ob * V);\n");
    kout(k, "%*sfor (int oh = %s; oh < %s; oh++) {\n", 4 * (d + 1), "", rows->first, rows->end);
    blocked_conv_row(k, d + 2, c, p, rows->yrow);
    klines(k, d, "    }\n"
                 "}\n");
}

/* A conv_blocked or dwconv_blocked node as the generator sees it. */
static BlockedConv blocked_conv_of(const Node *n) {
    BlockedConv c = {.a = &n->a.conv, .v = (int)n->in[1]->shape.d[4], .xv = n->in[0]->cblock, .residual = n->nin == 4};
    memcpy(c.x, n->in[0]->shape.d, sizeof c.x);
    memcpy(c.y, n->out[0]->shape.d, sizeof c.y);
    return c;
}

/* The kernel of conv_blocked and dwconv_blocked: its work items (rows of
 * output blocks, N * OB * OH (N * OB / 2 * OH by pairs of blocks), or with
 * channel tiles whole output blocks, whose rows take up each tile's sums in
 * turn), each the loop nest of blocked_conv_row. */
static void emit_blocked_conv(Kernel *k, const ConvText *tx) {
    const Node *n = k->n;
    const ConvParts *p = &tx->p;
    BlockedConv c = blocked_conv_of(n);
    int t = p->tiled ? 1 : 0; /* the loop over the input channel tiles deepens what is inside it */
    int64_t obs = (c.y[1] + c.v - 1) / c.v / (p->pair ? 2 : 1);
    kopen_parallel(k, (const char *const[]){"x", "w", "b", "res"}, (const char *const[]){"y"}, 0, c.y[0],
                   t ? obs : obs * c.y[2]);
    char items[256];
    snprintf(items, sizeof items, "Work items: the %s = %s %s, items [t0, t1)\n"
                                  "     * here (netrt_parallel splits them across the threads).",
             t ? (p->pair ? "N * OB / 2" : "N * OB") : (p->pair ? "N * OB / 2 * OH" : "N * OB * OH"), k->items,
             t ? "output blocks of V channels" : p->pair ? "rows of two output blocks" : "rows of V output channels");
    blocked_conv_consts(k, 1, &c, tx, items);
    klines(k, 1, "for (int64_t t = t0; t < t1; t++) {\n");
    const char *step = p->pair ? " * 2" : "", *obn = p->pair ? "OB / 2" : "OB";
    if (t)
        kout(k, "        const int n = (int)(t / (%s)), ob = (int)(t %% (%s))%s;\n", obn, obn, step);
    else
        kout(k, "        const int n = (int)(t / ((%s) * OH)), ob = (int)(t / OH %% (%s))%s, oh = (int)(t %% OH);\n",
             obn, obn, step);
    klines(k, 2, p->block);
    klines(k, 2, "const vec bias = *(const vec *)(b + (size_t)ob * V);\n");
    if (p->pair) klines(k, 2, "const vec bias2 = *(const vec *)(b + (size_t)(ob + 1) * V);\n");
    if (t)
        klines(k, 2, "for (int ct = 0; ct < C; ct += CT) { /* the input channel tiles; their sums meet in y */\n"
                     "    const int last = ct + CT >= C; /* the last tile stores the finished sums */\n"
                     "    for (int oh = 0; oh < OH; oh++) {\n");
    blocked_conv_row(k, t ? 4 : 2, &c, p, "y + (((size_t)n * OB + ob) * OH + oh) * OW * V");
    if (t) klines(k, 2, "    }\n"
                        "}\n");
    klines(k, 1, "}\n");
    kclose(k);
}

/* The input channels of a conv_blocked tile when one output block's weights
 * (C * KH * KW vectors) would not stay in the L2 cache (FCN's 3x3 head on
 * 2048 channels: 1.2 MB), so that each weight is read from memory once per
 * output block, not once per output row: the largest multiple of 16
 * dividing C whose weights take at most 320 KiB; 0 (no tiles) for weights
 * up to 384 KiB, for a grouped conv, or when no such tile exists. */
static int64_t conv_channel_tile(const Node *n, int v) {
    const ConvAttrs *a = &n->a.conv;
    int64_t c = n->in[0]->shape.d[1], per = (int64_t)a->kernel[0] * a->kernel[1] * v * (int64_t)sizeof(float);
    if (a->groups > 1 || c * per <= 384 * 1024) return 0;
    for (int64_t ct = 320 * 1024 / per / 16 * 16; ct >= 16; ct -= 16)
        if (c % ct == 0) return ct;
    return 0;
}

bool conv_blocked_tiled(const Node *n) {
    return n->op == OP_CONV_BLOCKED && conv_channel_tile(n, (int)n->in[1]->shape.d[4]) > 0;
}

/* conv_blocked: each tap and input channel adds the input value, broadcast,
 * times one vector of V output channels' weights. */
void conv_text(ConvText *t, const BlockedConv *c, const char *xa, int64_t span, int64_t ct, bool pair) {
    bool grouped = c->a->groups > 1;
    const char *cs = grouped ? "CS" : "C";
    /* the input channels one tap adds: all, or those of the tile */
    const char *cloop = ct ? "for (int c = ct; c < ct + CT; c++)" : grouped ? "for (int c = 0; c < CS; c++)"
                                                                         : "for (int c = 0; c < C; c++)";
    int m = 0;
    t->extra[0] = '\0';
    if (grouped)
        m = snprintf(t->extra, sizeof t->extra,
                     "enum { G = %d, OCG = K / G, CG = C / G }; /* groups, their outputs and inputs */\n"
                     "enum { CS = %lld }; /* the input channels an output block spans (the other groups' weights 0) */\n",
                     c->a->groups, (long long)span);
    if (ct)
        m = snprintf(t->extra, sizeof t->extra,
                     "enum { CT = %lld }; /* input channels per tile: an output block's weights for a tile stay in the L2 cache */\n",
                     (long long)ct);
    if (c->xv)
        snprintf(t->extra + m, sizeof t->extra - (size_t)m,
                 "enum { XV = %d, XCB = (C + XV - 1) / XV }; /* the input's channel blocks */\n"
                 "enum { XS = SW * XV }; /* floats between the input values of adjacent output columns */\n",
                 c->xv);
    else
        snprintf(t->extra + m, sizeof t->extra - (size_t)m,
                 "enum { XS = SW * 1 }; /* floats between the input values of adjacent output columns */\n");
    if (pair) {
        /* each input value, broadcast, times the weight vectors of both blocks */
        snprintf(t->inside, sizeof t->inside,
                 "%s {\n"
                 "    const vec wv = *(const vec *)(wt + (size_t)c * V), wv2 = *(const vec *)(wt2 + (size_t)c * V);\n"
                 "    const int iw = iw0 + RLO * SW;\n"
                 "    const netc_real *restrict xp = %s;\n"
                 "#pragma GCC unroll 16\n"
                 "    for (int r = RLO; r < RHI; r++) {\n"
                 "        const netc_real xr = xp[(r - RLO) * XS];\n"
                 "        acc[r] += wv * xr;\n"
                 "        acc2[r] += wv2 * xr;\n"
                 "    }\n"
                 "}\n",
                 cloop, xa);
        snprintf(t->border, sizeof t->border,
                 "%s {\n"
                 "    const vec wv = *(const vec *)(wt + (size_t)c * V), wv2 = *(const vec *)(wt2 + (size_t)c * V);\n"
                 "#pragma GCC unroll 16\n"
                 "    for (int r = 0; r < RB; r++) {\n"
                 "        const int iw = iw0 + r * SW;\n"
                 "        if (iw >= 0 && iw < W) {\n"
                 "            const netc_real xr = *(%s);\n"
                 "            acc[r] += wv * xr;\n"
                 "            acc2[r] += wv2 * xr;\n"
                 "        }\n"
                 "    }\n"
                 "}\n",
                 cloop, xa);
        snprintf(t->single, sizeof t->single,
                 "const netc_real *restrict wt = wk + (size_t)(kh * KW + kw) * C * V, *restrict wt2 = wt + (size_t)KH * KW * C * V;\n"
                 "%s {\n"
                 "    const netc_real xr = *(%s);\n"
                 "    acc += *(const vec *)(wt + (size_t)c * V) * xr;\n"
                 "    acc2 += *(const vec *)(wt2 + (size_t)c * V) * xr;\n"
                 "}\n",
                 cloop, xa);
    } else {
        snprintf(t->inside, sizeof t->inside,
                 "%s {\n"
                 "    const vec wv = *(const vec *)(wt + (size_t)c * V);\n"
                 "    const int iw = iw0 + RLO * SW;\n"
                 "    const netc_real *restrict xp = %s;\n"
                 "#pragma GCC unroll 16\n"
                 "    for (int r = RLO; r < RHI; r++) acc[r] += wv * xp[(r - RLO) * XS];\n"
                 "}\n",
                 cloop, xa);
        snprintf(t->border, sizeof t->border,
                 "%s {\n"
                 "    const vec wv = *(const vec *)(wt + (size_t)c * V);\n"
                 "#pragma GCC unroll 16\n"
                 "    for (int r = 0; r < RB; r++) {\n"
                 "        const int iw = iw0 + r * SW;\n"
                 "        if (iw >= 0 && iw < W) acc[r] += wv * *(%s);\n"
                 "    }\n"
                 "}\n",
                 cloop, xa);
        snprintf(t->single, sizeof t->single,
                 "const netc_real *restrict wt = wk + (size_t)(kh * KW + kw) * %s * V;\n"
                 "%s acc += *(const vec *)(wt + (size_t)c * V) * *(%s);\n",
                 cs, cloop, xa);
    }
    snprintf(t->block, sizeof t->block, "const netc_real *restrict wk = w + (size_t)ob * KH * KW * %s * V;\n%s", cs,
             grouped ? "const int c0 = ob * V / OCG * CG; /* the block's first input channel */\n" : "");
    snprintf(t->tap, sizeof t->tap, "const netc_real *restrict wt = wk + (size_t)(kh * KW + kw) * %s * V;\n%s", cs,
             pair ? "const netc_real *restrict wt2 = wt + (size_t)KH * KW * C * V; /* block ob + 1 */\n" : "");
    t->row[0] = '\0';
    t->p = (ConvParts){t->block, t->row, t->tap, t->inside, t->border, t->single, ct > 0, pair};
    t->what = "output channels";
}

static void emit_conv_blocked(Kernel *k) {
    const Node *n = k->n;
    BlockedConv c = blocked_conv_of(n);
    bool grouped = n->a.conv.groups > 1;
    int64_t ct = conv_channel_tile(n, c.v);
    /* Two output blocks at a time whenever the target's registers hold 2 RB
     * accumulators besides the two weight vectors and the broadcast input:
     * each input value loaded serves both blocks, so a block of RB columns
     * takes 2 weight loads and RB broadcasts for 2 RB FMAs, where one block
     * takes 1 + RB loads for RB FMAs, more than the core's two vector loads
     * per cycle can feed at two FMAs per cycle.  On AVX-512 (32 registers)
     * that is RB = 14, 28 accumulators: eight 3x3 convs of 64 channels on
     * 56x56 went from 188 to 214 GFLOP/s (93% of the peak), 128 on 28x28
     * from 182 to 219, 256 on 14x14 from 188 to 223, and 1x1 convs of 96 and
     * 576 channels on 14x14 from 180 to 210.  On AVX2 (16) RB is at most 6.
     * Not with channel tiles or groups (their kernels are one block's). */
    int64_t ob = (n->a.conv.out + c.v - 1) / c.v;
    int rb = conv_column_block(k->target, c.y[3]);
    bool pair = !grouped && !ct && ob % 2 == 0 && 2 * rb + 4 <= k->target->regs;
    ConvText t;
    conv_text(&t, &c, x_at(n->in[0], grouped), n->in[1]->shape.d[3], ct, pair);
    emit_blocked_conv(k, &t);
}

/* dwconv_blocked: each output channel reads its own input channel, so a
 * vector of V channels of one pixel is one load, times one vector of V
 * weights per tap: no broadcast. */
void dwconv_text(ConvText *t, const char *plane, const char *row) {
    t->extra[0] = '\0';
    snprintf(t->block, sizeof t->block,
             "const netc_real *restrict wk = w + (size_t)ob * KH * KW * V;\n"
             "const netc_real *restrict xc = %s;\n",
             plane);
    snprintf(t->row, sizeof t->row, "const netc_real *restrict xr = xc + (size_t)%s * W * V;\n", row);
    snprintf(t->tap, sizeof t->tap, "const vec wv = *(const vec *)(wk + (size_t)(kh * KW + kw) * V);\n");
    snprintf(t->inside, sizeof t->inside,
             "#pragma GCC unroll 16\n"
             "for (int r = RLO; r < RHI; r++) acc[r] += wv * *(const vec *)(xr + (size_t)(iw0 + r * SW) * V);\n");
    snprintf(t->border, sizeof t->border,
             "#pragma GCC unroll 16\n"
             "for (int r = 0; r < RB; r++) {\n"
             "    const int iw = iw0 + r * SW;\n"
             "    if (iw >= 0 && iw < W) acc[r] += wv * *(const vec *)(xr + (size_t)iw * V);\n"
             "}\n");
    snprintf(t->single, sizeof t->single,
             "acc += *(const vec *)(wk + (size_t)(kh * KW + kw) * V) * *(const vec *)(xc + ((size_t)%s * W + iw) * V);\n",
             row);
    t->p = (ConvParts){t->block, t->row, t->tap, t->inside, t->border, t->single, false, false};
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
    if (n->a.pack.groups > 1) {
        /* output channel k of group k / OCG reads input channels [g * CG, g * CG + CG) */
        KENUM(k, {"K", w->d[0]}, {"CG", w->d[1]}, {"KH", w->d[2]}, {"KW", w->d[3]}, {"V", n->a.pack.vec},
              {"G", n->a.pack.groups}, {"CS", out_shape(k, 0)->d[3]});
        kout(k, "    enum { KB = K / V, OCG = K / G };\n"
                "    for (int kb = 0; kb < KB; kb++) {\n"
                "        const int c0 = kb * V / OCG * CG; /* the block's first input channel */\n"
                "        for (int t = 0; t < KH * KW; t++)\n"
                "            for (int c = 0; c < CS; c++)\n"
                "                for (int v = 0; v < V; v++) {\n"
                "                    const int k = kb * V + v, j = c0 + c - k / OCG * CG; /* its channel in k's group */\n"
                "                    wp[(((size_t)kb * KH * KW + t) * CS + c) * V + v] = j >= 0 && j < CG ? w[((size_t)k * CG + j) * KH * KW + t] : 0.0f;\n"
                "                }\n"
                "        for (int v = 0; v < V; v++) bp[kb * V + v] = %s;\n"
                "    }\n",
             bias ? "b[kb * V + v]" : "0.0f");
        kclose(k);
        return;
    }
    KENUM(k, {"K", w->d[0]}, {"C", w->d[1]}, {"KH", w->d[2]}, {"KW", w->d[3]}, {"V", n->a.pack.vec});
    if (n->a.pack.transpose) {
        /* the conv from dy's K channels to dx's C: output channel c, input
         * channel k, tap (kh, kw) is w[k][c][KH - 1 - kh][KW - 1 - kw] */
        kout(k, "    enum { CB = (C + V - 1) / V };\n"
                "    for (int cb = 0; cb < CB; cb++) {\n"
                "        for (int kh = 0; kh < KH; kh++)\n"
                "            for (int kw = 0; kw < KW; kw++)\n"
                "                for (int k = 0; k < K; k++)\n"
                "                    for (int v = 0; v < V; v++) {\n"
                "                        const int c = cb * V + v;\n"
                "                        wp[((((size_t)cb * KH + kh) * KW + kw) * K + k) * V + v] =\n"
                "                            c < C ? w[(((size_t)k * C + c) * KH + KH - 1 - kh) * KW + KW - 1 - kw] : 0.0f;\n"
                "                    }\n"
                "        for (int v = 0; v < V; v++) bp[cb * V + v] = 0.0f;\n"
                "    }\n");
        kclose(k);
        return;
    }
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
            "            const netc_real *restrict xc = x + ((size_t)n * CB + c / V) * S * V + c %% V;\n"
            "            netc_real *restrict yc = y + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) yc[i] = xc[(size_t)i * V];\n"
            "        }\n");
    kclose(k);
}

/* The input gradient of a conv of any stride and dilation (one group), on
 * blocked values: dx[n][c][ih][iw] sums dy[n][k][oh][ow] * w[k][c][kh][kw]
 * over the k, kh, kw for which ih = oh * SH - PT + kh * DH and iw = ow * SW -
 * PL + kw * DW.  A vector holds V channels c of dx, so the weight comes
 * packed by a transposing pack_conv ([C/V][kh][kw][K][V], taps flipped) and
 * dy is broadcast, one value per k.  The columns of a dx row split into SW
 * phases, iw = pw + SW * j: in a phase every tap whose kw fits it (SW
 * divides pw + PL - kw * DW) reads consecutive dy columns ow = ow0 + j, so a
 * block of RB columns j is RB accumulators as in conv_blocked, and each
 * stored column of dx is written once (no scatter, no zeroing first).  Work
 * items are the rows of dx of each sample and channel block; each element's
 * sum runs over kh, kw and k in that order: the same bits at any thread
 * count. */
void emit_conv_grad_input_blocked(Kernel *k) {
    const Node *n = k->n;
    const ConvAttrs *a = &n->a.conv;
    const Value *dyv = n->in[0], *dxv = n->out[0];
    const Shape *dy = &dyv->shape, *x = &dxv->shape;
    int v = dxv->cblock;
    int64_t sw = dim_or_one(a->stride[1]);
    int rb = conv_column_block(k->target, (x->d[3] + sw - 1) / sw);
    int64_t cb = (x->d[1] + v - 1) / v;
    kopen_parallel(k, (const char *const[]){"dy", "w", "x"}, (const char *const[]){"dx"}, 0, x->d[0], cb * x->d[2]);
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"K", dy->d[1]}, {"OH", dy->d[2]},
          {"OW", dy->d[3]}, {"KH", a->kernel[0]}, {"KW", a->kernel[1]}, {"SH", dim_or_one(a->stride[0])},
          {"SW", sw}, {"PT", a->pad[0]}, {"PL", a->pad[2]}, {"DH", dim_or_one(a->dilation[0])},
          {"DW", dim_or_one(a->dilation[1])});
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    /* Blocking (%s): V = %d input channels per vector, RB = %d columns of a\n"
            "     * phase held in RB accumulators; work items: the dx rows of each sample and\n"
            "     * channel block, [t0, t1) here */\n"
            "    enum { V = %d, RB = %d, CB = (C + V - 1) / V, KB = (K + V - 1) / V };\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    if (N == 0) return;\n"
            "    for (int64_t t = t0; t < t1; t++) {\n"
            "        const int n = (int)(t / ((int64_t)CB * H)), cb = (int)(t / H %% CB), ih = (int)(t %% H);\n"
            "        netc_real *restrict dxr = dx + (((size_t)n * CB + cb) * H + ih) * W * V;\n"
            "        const netc_real *restrict wc = w + (size_t)cb * KH * KW * K * V;\n"
            "        for (int pw = 0; pw < SW && pw < W; pw++) {\n"
            "            const int JW = (W - pw + SW - 1) / SW; /* the phase's columns iw = pw + SW * j */\n"
            "            for (int j = 0; j < JW; j += RB) {\n"
            "                const int R = JW - j < RB ? JW - j : RB; /* RB but in the last block */\n"
            "                vec acc[RB];\n"
            "#pragma GCC unroll 16\n"
            "                for (int r = 0; r < RB; r++) acc[r] = (vec){0};\n"
            "                for (int kh = 0; kh < KH; kh++) {\n"
            "                    const int th = ih + PT - kh * DH;\n"
            "                    if (th < 0 || th %% SH) continue;\n"
            "                    const int oh = th / SH;\n"
            "                    if (oh >= OH) continue;\n"
            "                    for (int kw = 0; kw < KW; kw++) {\n"
            "                        const int tw = pw + PL - kw * DW;\n"
            "                        if (tw %% SW) continue; /* no dy column reaches this phase */\n"
            "                        const int ow0 = tw / SW + j;\n"
            "                        const netc_real *restrict wt = wc + ((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * K * V;\n"
            "                        const netc_real *restrict dyo = dy + (((size_t)n * KB * OH + oh) * OW) * V;\n"
            "                        if (R == RB && ow0 >= 0 && ow0 + RB - 1 < OW) { /* every column inside */\n"
            "                            for (int k = 0; k < K; k++) {\n"
            "                                const vec wv = *(const vec *)(wt + (size_t)k * V);\n"
            "                                const netc_real *restrict dp = dyo + ((size_t)(k / V) * OH * OW + ow0) * V + k %% V;\n"
            "#pragma GCC unroll 16\n"
            "                                for (int r = 0; r < RB; r++) acc[r] += wv * dp[(size_t)r * V];\n"
            "                            }\n"
            "                        } else {\n"
            "                            for (int k = 0; k < K; k++) {\n"
            "                                const vec wv = *(const vec *)(wt + (size_t)k * V);\n"
            "                                const netc_real *restrict dp = dyo + (size_t)(k / V) * OH * OW * V + k %% V;\n"
            "                                for (int r = 0; r < R; r++) {\n"
            "                                    const int ow = ow0 + r;\n"
            "                                    if (ow >= 0 && ow < OW) acc[r] += wv * dp[(size_t)ow * V];\n"
            "                                }\n"
            "                            }\n"
            "                        }\n"
            "                    }\n"
            "                }\n"
            "                for (int r = 0; r < R; r++) *(vec *)(dxr + (size_t)(pw + SW * (j + r)) * V) = acc[r];\n"
            "            }\n"
            "        }\n"
            "    }\n",
         k->target->name, v, rb, v, rb);
    kclose(k);
}

/* The plain x stored NCHW[V]c, its padded lanes 0. */
static void emit_to_blocked(Kernel *k) {
    const Value *y = k->n->out[0];
    const Shape *s = &y->shape;
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", s->d[0]}, {"C", s->d[1]}, {"S", s->d[2] * s->d[3]}, {"V", y->cblock});
    kout(k, "    enum { CB = (C + V - 1) / V };\n"
            "    for (int n = 0; n < N; n++)\n"
            "        for (int c = 0; c < CB * V; c++) {\n"
            "            netc_real *restrict yc = y + ((size_t)n * CB + c / V) * S * V + c %% V;\n"
            "            if (c >= C) {\n"
            "                for (int i = 0; i < S; i++) yc[(size_t)i * V] = 0.0f;\n"
            "                continue;\n"
            "            }\n"
            "            const netc_real *restrict xc = x + ((size_t)n * C + c) * S;\n"
            "            for (int i = 0; i < S; i++) yc[(size_t)i * V] = xc[i];\n"
            "        }\n");
    kclose(k);
}

static const char *check_to_blocked(const Graph *g, const Node *n) {
    (void)g;
    if (n->in[0]->cblock || n->in[0]->shape.rank != 4) return "its input must be a plain [N, C, H, W]";
    return n->out[0]->cblock ? NULL : "its output must be blocked";
}

/* ---- gradient rules (training builds: layout_train) ----------------------------------- */

/* A conv_blocked's packed weight and bias are a pack_conv's of the conv's
 * parameters, and their gradients are the parameters': conv_grad_weight and
 * bias_grad read the blocked dy and write them in the parameters' shapes.
 * The input's gradient of a conv of stride 1 and dilation 1 is a conv too,
 * of dy with the weight transposed and flipped (packed by a pack_conv with
 * `transpose`) and the pads that give back x's size, so the blocked kernel
 * computes it; other convs (strided, dilated) take conv_grad_input's
 * blocked kernel, on that weight too (emit_conv_grad_input_blocked). */
static void grad_conv_blocked(GradCtx *c, Node *n, Value *dy) {
    Value *x = n->in[0];
    const Node *pack = n->in[1]->def;
    if (!pack || pack->op != OP_PACK_CONV || pack->a.pack.transpose) {
        DIAG_INTERNAL("conv_blocked \"%s\": its weight is not a pack_conv's", n->name);
        grad_fail(c);
        return;
    }
    Value *w = pack->in[0], *b = pack->nin > 1 ? pack->in[1] : NULL;
    if (grad_needed(c, w)) grad_accum(c, w, grad_out0(grad_node(c, OP_CONV_GRAD_WEIGHT, n, (Value *[]){dy, x, w}, 3)));
    if (b && grad_needed(c, b)) grad_accum(c, b, grad_out0(grad_node(c, OP_BIAS_GRAD, n, &dy, 1)));
    if (!grad_needed(c, x)) return;
    const ConvAttrs *a = &n->a.conv;
    int kh = a->kernel[0], kw = a->kernel[1];
    bool as_conv = dim_or_one(a->stride[0]) == 1 && dim_or_one(a->stride[1]) == 1 && dim_or_one(a->dilation[0]) == 1 &&
                   dim_or_one(a->dilation[1]) == 1 && a->groups <= 1 && a->pad[0] < kh && a->pad[1] < kh &&
                   a->pad[2] < kw && a->pad[3] < kw;
    Node site = *n;
    site.a = (Attrs){0};
    site.a.pack.vec = dy->cblock;
    site.a.pack.transpose = true;
    Node *pt = grad_node(c, OP_PACK_CONV, &site, &w, 1);
    if (!pt) return;
    Node *dc;
    if (as_conv) {
        site.a = n->a;
        ConvAttrs *t = &site.a.conv;
        t->out = x->shape.d[1];
        t->pad[0] = kh - 1 - a->pad[0], t->pad[1] = kh - 1 - a->pad[1];
        t->pad[2] = kw - 1 - a->pad[2], t->pad[3] = kw - 1 - a->pad[3];
        t->bias = true;
        t->act = EPILOGUE_NONE;
        dc = grad_node(c, OP_CONV_BLOCKED, &site, (Value *[]){dy, pt->out[0], pt->out[1]}, 3);
    } else { /* its own kernel, on the transposed weight too */
        dc = grad_node(c, OP_CONV_GRAD_INPUT, n, (Value *[]){dy, pt->out[0], x}, 3);
    }
    if (!dc) return;
    dc->out[0]->cblock = dy->cblock;
    Value *dx = dc->out[0];
    if (!x->cblock) { /* the net's input (gradcheck), plain */
        Node *p = grad_node(c, OP_FROM_BLOCKED, n, &dx, 1);
        if (!p) return;
        p->out[0]->cblock = 0;
        dx = p->out[0];
    }
    grad_accum(c, x, dx);
}

static void grad_from_blocked(GradCtx *c, Node *n, Value *dy) {
    Node *t = grad_node(c, OP_TO_BLOCKED, n, &dy, 1);
    if (!t) return;
    t->out[0]->cblock = n->in[0]->cblock;
    grad_accum(c, n->in[0], t->out[0]);
}

/* ---- the rest of the entries' rules ------------------------------------------------- */

static void dump_conv_blocked(const Node *n, FILE *f) {
    const ConvAttrs *a = &n->a.conv;
    fprintf(f, " out=%lld kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d dilation=%dx%d", (long long)a->out, a->kernel[0],
            a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3], a->dilation[0],
            a->dilation[1]);
    if (n->op == OP_CONV_BLOCKED && a->groups > 1) fprintf(f, " groups=%d", a->groups);
    if (a->act > EPILOGUE_NONE && a->act <= EPILOGUE_LEAKY_RELU) fprintf(f, " then %s", blocked_act_name(a->act));
    if (a->act == EPILOGUE_LEAKY_RELU) fprintf(f, " slope=%g", a->act_k);
}

static void dump_pack_conv(const Node *n, FILE *f) {
    fprintf(f, " vec=%d%s", n->a.pack.vec, n->a.pack.transpose ? " transpose" : "");
    if (n->a.pack.groups > 1) fprintf(f, " groups=%d", n->a.pack.groups);
}

/* As conv's: per output value, C / groups * kh * kw (not the zeros of a
 * grouped conv's packed weight, nor a depthwise one's C). */
static int64_t macs_conv_blocked(const Node *n) {
    const Shape *y = &n->out[0]->shape, *w = &n->in[1]->shape;
    int64_t cg = n->op == OP_DWCONV_BLOCKED ? 1 : n->in[0]->shape.d[1] / (n->a.conv.groups > 1 ? n->a.conv.groups : 1);
    return shape_numel(y) / y->d[0] * w->d[1] * w->d[2] * cg;
}

/* conv, the sum its store adds (a residual input, or a second gradient),
 * then its activation. */
static int fused_conv_blocked(const Node *n, const char **parts, int max) {
    int k = fused_part(parts, 0, max, n->op == OP_DWCONV_BLOCKED ? "dwconv" : "conv");
    if (n->op == OP_CONV_BLOCKED && n->nin > 3) k = fused_part(parts, k, max, "add");
    if (n->a.conv.act > EPILOGUE_NONE) k = fused_part(parts, k, max, blocked_act_name(n->a.conv.act));
    return k < max ? k : max;
}

#define MADE_BY_LAYOUT "the layout pass makes it"
#define INFERENCE_ONLY "inference only: layout_train does not make it"

const OpRules op_rules_CONV_BLOCKED = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_conv_blocked, .check = check_conv_blocked, .emit = emit_conv_blocked,
    .batched = op_batched_like_input0, .dump = dump_conv_blocked, .macs = macs_conv_blocked,
    .grad = grad_conv_blocked, .blocked_ok = true, .blocked_train = true, .fused = fused_conv_blocked,
};

const OpRules op_rules_DWCONV_BLOCKED = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_dwconv_blocked, .check = check_dwconv_blocked, .emit = emit_dwconv_blocked,
    .batched = op_batched_like_input0, .dump = dump_conv_blocked, .macs = macs_conv_blocked,
    .no_grad = INFERENCE_ONLY, .blocked_ok = true, .fused = fused_conv_blocked,
};

const OpRules op_rules_PACK_CONV = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_pack_conv, .no_check = "any conv weight", .emit = emit_pack_conv, .batched = op_batched_never,
    .output_names = (const char *const[]){"the packed weight", "the packed bias"},
    .dump = dump_pack_conv, .no_macs = "init-time: not counted",
    .no_grad = "init-time: conv_blocked's gradient rule gives the gradients of the parameters it packs",
};

const OpRules op_rules_FROM_BLOCKED = {
    .no_build = MADE_BY_LAYOUT,
    .shape = shape_same, .check = check_from_blocked, .emit = emit_from_blocked, .batched = op_batched_like_input0,
    .no_dump = "no attributes: the input's block says how to read it", .no_macs = "data movement: not counted",
    .grad = grad_from_blocked, .blocked_ok = true, .blocked_train = true,
};

const OpRules op_rules_TO_BLOCKED = {
    .no_build = "autodiff makes it: the gradient of a from_blocked",
    .shape = shape_same, .check = check_to_blocked, .emit = emit_to_blocked, .batched = op_batched_like_input0,
    .no_dump = "no attributes: the output's block says how to write it", .no_macs = "data movement: not counted",
    .no_grad = "a gradient op: not differentiated again", .blocked_ok = true,
};
