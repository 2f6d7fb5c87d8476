/* bottleneck: the fused op that fuse_bottleneck (passes/fuse_bottleneck.c)
 * makes of a chain of three blocked convs, the inverted residual of
 * MobileNetV2 (1x1 expansion, 3x3 depthwise, 1x1 projection) or the
 * bottleneck of ResNet-50 (1x1, 3x3, 1x1):
 *
 *   x -> conv_blocked 1x1 -> e1 -> dwconv_blocked or conv_blocked -> e2 -> conv_blocked 1x1 (+ residual) -> y
 *
 * Its kernel runs the chain band by band: for each band of output rows it
 * computes the rows of e1 that the middle conv reads for them (the halo
 * included) into the scratch buffer s1, the band's rows of e2 into s2, and
 * then the projection's rows into y.  e1 and e2 are never stored whole:
 * a band's rows stay in the cache from one stage to the next instead of
 * going to memory and back, which is what pays when the expanded tensor is
 * larger than the L2.  Each stage is the loop nest of its conv_blocked or
 * dwconv_blocked (blocked_conv_nest, compiler/ops/blocked.c) on a range of
 * rows, so every value is the same sum in the same order as the unfused
 * chain's: the programs compute the same bits.  The rows of e1 that two
 * bands share (the middle conv's window overlaps) are computed once: the
 * next band moves them from the bottom of s1 to its top.  Only the first
 * band of a range of rows computes them all, so any range of output rows is
 * a piece of work independent of the others.  The work items are the output
 * rows of every sample: each thread takes a range of them (netrt_parallel),
 * cuts it into bands of at most BH rows from its first row, and works in s1
 * and s2 of its own (netrt_scratch).  Where the bands start changes with the
 * thread count, never what a value sums: the same bits at any count.  (Two
 * threads compute the halo rows where their ranges meet twice.)
 *
 * Every activation fuse_epilogue puts into a conv's store works in a stage:
 * relu and relu6 on the accumulators, the others over each finished row of
 * s1, s2 or y (blocked_conv_row, the same code as the unfused convs'). */
#include <string.h>

#include "blocked.h"

/* The working set one band may have: about half the 2 MiB L2 of the
 * machine this was measured on (one core of an AMD EPYC, Zen 5). */
#define BAND_BUDGET_BYTES (1 << 20)

/* The three stages and the bands of a bottleneck node. */
typedef struct Bottleneck {
    BlockedConv st[3];
    bool dw;           /* the middle conv is depthwise */
    int bh, nband;     /* output rows per band, bands */
    int64_t r1;        /* rows of e1 that one band reads (the rows s1 holds) */
    int64_t bytes;     /* the working set of one band */
    int64_t x_bytes, s1_bytes, s2_bytes, w_bytes; /* its parts */
} Bottleneck;

static int64_t blocks(int64_t c, int v) { return (c + v - 1) / v; }

/* Rows of the middle conv's input that bh consecutive output rows read. */
static int64_t halo_rows(const BlockedConv *mid, int64_t bh) {
    const ConvAttrs *a = mid->a;
    int64_t r = (bh - 1) * dim_or_one(a->stride[0]) + (int64_t)(a->kernel[0] - 1) * dim_or_one(a->dilation[0]) + 1;
    return r < mid->x[2] ? r : mid->x[2];
}

/* The working set of a band of bh output rows: the input rows the expansion
 * reads (again for every block of V expanded channels), s1, s2 and the
 * three packed weights, which every band reads again.  The output and
 * residual rows are written and read once per band, and not counted. */
static void band_bytes(Bottleneck *b, int64_t bh, const int64_t *wfloats) {
    const BlockedConv *e = &b->st[0], *m = &b->st[1];
    int v = e->v;
    int64_t r1 = halo_rows(m, bh);
    b->r1 = r1;
    b->x_bytes = 4 * blocks(e->x[1], v) * v * r1 * e->x[3];
    b->s1_bytes = 4 * blocks(e->y[1], v) * v * r1 * e->y[3];
    b->s2_bytes = 4 * blocks(m->y[1], v) * v * bh * m->y[3];
    b->w_bytes = 4 * (wfloats[0] + wfloats[1] + wfloats[2]);
    b->bytes = b->x_bytes + b->s1_bytes + b->s2_bytes + b->w_bytes;
}

/* The bands: the largest height whose working set fits BAND_BUDGET_BYTES
 * (at least one row), then evened out so that the last band is not a
 * sliver: OH rows in ceil(OH / that) bands of equal height but the last. */
static void choose_bands(Bottleneck *b, const int64_t *wfloats) {
    int64_t oh = b->st[2].y[2], best = 1;
    for (int64_t bh = 1; bh <= oh; bh++) {
        band_bytes(b, bh, wfloats);
        if (b->bytes > BAND_BUDGET_BYTES) break;
        best = bh;
    }
    int64_t nband = (oh + best - 1) / best;
    b->nband = (int)nband;
    b->bh = (int)((oh + nband - 1) / nband);
    band_bytes(b, b->bh, wfloats);
}

/* The stages' shapes (false after an error at n), and the bands. */
static bool bottleneck_of(Node *n, Bottleneck *b) {
    const BottleneckAttrs *a = &n->a.bottleneck;
    const int64_t *x = n->in[0]->shape.d;
    int64_t e1[4], e2[4], y[4];
    if (n->in[0]->shape.rank != 4) {
        DIAG_INTERNAL("bottleneck \"%s\" needs a [N, C, H, W] input", n->name);
        return false;
    }
    b->dw = a->conv[1].groups > 1;
    if (!blocked_conv_out(n, &a->conv[0], x, &n->in[1]->shape, &n->in[2]->shape, x[1], e1) ||
        !blocked_conv_out(n, &a->conv[1], e1, &n->in[3]->shape, &n->in[4]->shape, b->dw ? 1 : e1[1], e2) ||
        !blocked_conv_out(n, &a->conv[2], e2, &n->in[5]->shape, &n->in[6]->shape, e2[1], y))
        return false;
    const int64_t *dims[4] = {x, e1, e2, y};
    for (int i = 0; i < 3; i++) {
        BlockedConv *c = &b->st[i];
        *c = (BlockedConv){.a = &a->conv[i], .v = (int)n->in[1 + 2 * i]->shape.d[4],
                           .xv = i ? (int)n->in[1]->shape.d[4] : n->in[0]->cblock, .residual = i == 2 && n->nin == 8};
        memcpy(c->x, dims[i], sizeof c->x);
        memcpy(c->y, dims[i + 1], sizeof c->y);
    }
    const int64_t wfloats[3] = {shape_numel(&n->in[1]->shape), shape_numel(&n->in[3]->shape),
                                shape_numel(&n->in[5]->shape)};
    choose_bands(b, wfloats);
    return true;
}

/* ---- shape and checks --------------------------------------------------------- */

/* y is the projection's output. */
static bool shape_bottleneck(Graph *g, Node *n) {
    (void)g;
    Bottleneck b;
    if (!bottleneck_of(n, &b)) return false;
    shape_set_out(n, 0, 4, b.st[2].y);
    char b1[128], b2[128];
    if (n->nin == 8 && !shape_eq(&n->in[7]->shape, &n->out[0]->shape)) {
        DIAG_INTERNAL("bottleneck \"%s\": residual %s is not its output's shape %s", n->name,
                      shape_str(&n->in[7]->shape, b1, sizeof b1), shape_str(&n->out[0]->shape, b2, sizeof b2));
        return false;
    }
    return true;
}

static bool pointwise(const ConvAttrs *a) {
    return a->kernel[0] == 1 && a->kernel[1] == 1 && a->stride[0] == 1 && a->stride[1] == 1 && a->pad[0] == 0 &&
           a->pad[1] == 0 && a->pad[2] == 0 && a->pad[3] == 0 && a->groups == 1;
}

static const char *check_bottleneck(const Graph *g, const Node *n) {
    (void)g;
    const BottleneckAttrs *a = &n->a.bottleneck;
    int v = (int)n->in[1]->shape.d[4];
    if (!pointwise(&a->conv[0]) || !pointwise(&a->conv[2]))
        return "its expansion and projection must be 1x1, stride 1, no padding";
    if (a->conv[1].groups != 1 && a->conv[1].groups != a->conv[0].out)
        return "its middle conv must be dense or depthwise";
    if (n->in[3]->shape.d[4] != v || n->in[5]->shape.d[4] != v)
        return "its three weights must be packed for one vector width";
    if (n->in[0]->cblock != v) return "its input must be blocked as its weights";
    for (int j = 0; j < n->nout; j++)
        if (n->out[j]->cblock != v) return "its output must be blocked as its weights";
    if (n->nin == 8 && n->in[7]->cblock != v) return "its residual must be blocked as its output";
    for (int i = 0; i < 3; i++)
        if (a->conv[i].act < EPILOGUE_NONE || a->conv[i].act > EPILOGUE_LEAKY_RELU) return "an unknown epilogue activation";
    return NULL;
}

/* ---- kernel ------------------------------------------------------------------- */

/* One stage: a block of its own with its weights as w and b, its constants
 * and its loop nest over the band's rows. */
static void stage(Kernel *k, const Bottleneck *b, int i, const char *title, const ConvText *t, const ConvRows *rows) {
    const BlockedConv *c = &b->st[i];
    kout(k, "            { /* %d. %s, %lld -> %lld channels%s%s%s */\n", i + 1, title, (long long)c->x[1],
         (long long)c->y[1], c->residual ? ", plus the residual" : "", c->a->act ? ", then " : "",
         blocked_act_name(c->a->act));
    kout(k, "                const netc_real *restrict w = w%d, *restrict b = b%d;\n", i + 1, i + 1);
    blocked_conv_consts(k, 4, c, t, NULL);
    blocked_conv_nest(k, 4, c, &t->p, rows);
    klines(k, 3, "}\n");
}

static void emit_bottleneck(Kernel *k) {
    Bottleneck b;
    bottleneck_of((Node *)k->n, &b);
    const BlockedConv *m = &b.st[1];
    kopen_parallel(k, (const char *const[]){"x", "w1", "b1", "w2", "b2", "w3", "b3", "res"},
                   (const char *const[]){"y"}, 0, b.st[2].y[0], b.st[2].y[2]);
    kout(k, "    /* Bands of BH = %d output rows (%d bands of OH = %lld): the largest height, evened\n"
            "     * out over the bands, whose working set fits %d KiB, about half the L2 of one\n"
            "     * core, so that a band's expanded rows stay in the cache from one stage to the\n"
            "     * next.  Here %lld KiB: the input rows the expansion reads %lld KiB, s1 (R1 = %lld\n"
            "     * expanded rows, the halo included) %lld KiB, s2 (a band of the middle conv's\n"
            "     * rows) %lld KiB, and the three weights %lld KiB, which every band reads again%s\n"
            "     * Work items: the N * OH = %s output rows, items [t0, t1) here, cut into bands\n"
            "     * of BH rows from t0 (netrt_parallel splits them across the threads). */\n",
         b.bh, b.nband, (long long)b.st[2].y[2], BAND_BUDGET_BYTES / 1024, (long long)(b.bytes / 1024),
         (long long)(b.x_bytes / 1024), (long long)b.r1, (long long)(b.s1_bytes / 1024),
         (long long)(b.s2_bytes / 1024), (long long)(b.w_bytes / 1024),
         b.bytes > BAND_BUDGET_BYTES ? "\n     * (no height fits: a band is one row)." : ".", k->items);
    kout(k, "    enum { N = %lld, OH = %lld, BH = %d };\n", (long long)b.st[0].x[0], (long long)b.st[2].y[2], b.bh);
    kout(k, "    enum { R1 = %lld, R2 = BH }; /* the rows s1 and s2 hold */\n", (long long)b.r1);
    kout(k, "    enum { EB = %lld, EW = %lld, EV = %d }; /* s1's channel blocks, width and vector */\n",
         (long long)blocks(b.st[0].y[1], b.st[0].v), (long long)b.st[0].y[3], b.st[0].v);
    kout(k, "    enum { H2 = %lld, SH2 = %d, PT2 = %d, KH2 = %d, DH2 = %d }; /* the middle conv's rows and window */\n",
         (long long)m->x[2], dim_or_one(m->a->stride[0]), m->a->pad[0], m->a->kernel[0],
         dim_or_one(m->a->dilation[0]));
    kout(k, "    enum { S1 = EB * R1 * EW * EV, S2 = %lld * R2 * %lld * EV }; /* the floats of s1 and s2 */\n",
         (long long)blocks(m->y[1], b.st[0].v), (long long)m->y[3]);
    klines(k, 1, "/* this thread's s1 and s2 */\n"
                 "netc_real *restrict s1 = netrt_scratch((S1 + S2) * sizeof(netc_real)), *restrict s2 = s1 + S1;\n"
                 "for (int64_t t = t0; t < t1;) { /* the rows [lo, hi) of sample n */\n"
                 "    const int n = (int)(t / OH), lo = (int)(t % OH);\n"
                 "    const int hi = t1 - (int64_t)n * OH < OH ? (int)(t1 - (int64_t)n * OH) : OH;\n"
                 "    t = (int64_t)n * OH + hi;\n"
                 "    int p0 = 0, p1 = 0; /* the expanded rows [p0, p1) that s1 holds from the band before */\n"
                 "    for (int o0 = lo; o0 < hi; o0 += BH) { /* a band: output rows [o0, o1) */\n"
                 "        const int o1 = o0 + BH < hi ? o0 + BH : hi;\n"
                 "        /* the expanded rows [e0, e1) that the middle conv reads for them */\n"
                 "        const int top = o0 * SH2 - PT2, end = (o1 - 1) * SH2 - PT2 + (KH2 - 1) * DH2 + 1;\n"
                 "        const int e0 = top > 0 ? top : 0, e1 = end < H2 ? end : H2;\n"
                 "        /* those the band before computed, [e0, f0), move to the top of s1; the\n"
                 "         * expansion computes the others, [f0, e1) */\n"
                 "        const int f0 = o0 > lo && p1 > e0 ? p1 : e0;\n"
                 "        if (f0 > e0)\n"
                 "            for (int eb = 0; eb < EB; eb++) {\n"
                 "                netc_real *to = s1 + (size_t)eb * R1 * EW * EV;\n"
                 "                const netc_real *from = to + (size_t)(e0 - p0) * EW * EV; /* after to: copy forward */\n"
                 "                for (int i = 0; i < (f0 - e0) * EW * EV; i++) to[i] = from[i];\n"
                 "            }\n"
                 "        p0 = e0, p1 = e1;\n");
    ConvText t;
    conv_text(&t, &b.st[0], "x + ((((size_t)n * XCB + c / XV) * H + ih) * W + iw) * XV + c % XV", 0, 0, false);
    stage(k, &b, 0, "the 1x1 expansion: rows [f0, e1) into s1", &t,
          &(ConvRows){"f0", "e1", "s1 + ((size_t)ob * R1 + (oh - e0)) * OW * V"});
    if (b.dw)
        dwconv_text(&t, "s1 + (size_t)ob * R1 * W * V", "(ih - e0)");
    else
        conv_text(&t, &b.st[1], "s1 + (((size_t)(c / XV) * R1 + (ih - e0)) * W + iw) * XV + c % XV", 0, 0, false);
    char title[128];
    snprintf(title, sizeof title, "the %dx%d %sconv%s: rows [o0, o1) into s2, from s1", m->a->kernel[0],
             m->a->kernel[1], b.dw ? "depthwise " : "", m->a->stride[0] > 1 ? " (strided)" : "");
    stage(k, &b, 1, title, &t, &(ConvRows){"o0", "o1", "s2 + ((size_t)ob * R2 + (oh - o0)) * OW * V"});
    conv_text(&t, &b.st[2], "s2 + (((size_t)(c / XV) * R2 + (ih - o0)) * W + iw) * XV + c % XV", 0, 0, false);
    stage(k, &b, 2, "the 1x1 projection: rows [o0, o1) into y, from s2", &t,
          &(ConvRows){"o0", "o1", "y + (((size_t)n * OB + ob) * OH + oh) * OW * V"});
    klines(k, 1, "    }\n"
                 "}\n");
    kclose(k);
}

/* ---- the rest of the entry's rules -------------------------------------------- */

static void dump_bottleneck(const Node *n, FILE *f) {
    Bottleneck b;
    bottleneck_of((Node *)n, &b);
    for (int i = 0; i < 3; i++) {
        const ConvAttrs *a = b.st[i].a;
        if (i == 1)
            fprintf(f, " %s=%dx%d stride=%dx%d pad=%d,%d,%d,%d dilation=%dx%d", b.dw ? "dw" : "conv", a->kernel[0],
                    a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3],
                    a->dilation[0], a->dilation[1]);
        else
            fprintf(f, " %s=%lld", i ? "project" : "expand", (long long)a->out);
        if (a->act) fprintf(f, " then %s", blocked_act_name(a->act));
        if (a->act == EPILOGUE_LEAKY_RELU) fprintf(f, " slope=%g", a->act_k);
        fprintf(f, "%s", i < 2 ? "," : "");
    }
    fprintf(f, "; band=%d bands=%d", b.bh, b.nband);
}

/* The three convs' multiply-accumulates, as the unfused chain's (the halo
 * rows that two bands both compute are not counted). */
static int64_t macs_bottleneck(const Node *n) {
    Bottleneck b;
    bottleneck_of((Node *)n, &b);
    int64_t macs = 0;
    for (int i = 0; i < 3; i++) {
        const BlockedConv *c = &b.st[i];
        const Shape *w = &n->in[1 + 2 * i]->shape;
        macs += c->y[1] * c->y[2] * c->y[3] * w->d[1] * w->d[2] * w->d[3];
    }
    return macs;
}

/* expansion, middle conv and projection, each with its activation, and the
 * residual added before the projection's. */
static int fused_bottleneck(const Node *n, const char **parts, int max) {
    Bottleneck b;
    bottleneck_of((Node *)n, &b);
    static const char *const conv[3] = {"conv 1x1", "conv", "conv 1x1"};
    int k = 0;
    for (int i = 0; i < 3; i++) {
        k = fused_part(parts, k, max, i == 1 && b.dw ? "dwconv" : conv[i]);
        if (i == 2 && n->nin == 8) k = fused_part(parts, k, max, "add");
        if (b.st[i].a->act > EPILOGUE_NONE) k = fused_part(parts, k, max, blocked_act_name(b.st[i].a->act));
    }
    return k < max ? k : max;
}

const OpRules op_rules_BOTTLENECK = {
    .no_build = "the fuse_bottleneck pass makes it",
    .shape = shape_bottleneck, .check = check_bottleneck, .emit = emit_bottleneck, .batched = op_batched_like_input0,
    .dump = dump_bottleneck, .macs = macs_bottleneck, .fused = fused_bottleneck,
    .no_grad = "inference only: fuse_bottleneck does not run in training builds", .blocked_ok = true,
};
