/* Detection: YOLO's grid decoding and class-wise non-maximum suppression.
 * Inference only: neither trains. */
#include <math.h>

#include "../opkit.h"

/* ---- builders --------------------------------------------------------------- */

/* yolo_decode(x, anchors, classes, stride): anchors a list of [w, h] pairs in pixels. */
static Node *build_yolo_decode(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "yolo_decode's input");
    Attrs a = {0};
    ArgVal l = build_arg(c, 1);
    Span sp1 = build_span(c, 1);
    if (l.k != E_LIST || l.n < 1 || l.n > IR_MAX_ANCHORS)
        build_fail(c, sp1, "yolo_decode's anchors must be a list of 1 to %d [width, height] pairs", IR_MAX_ANCHORS);
    a.yolo.nanchors = l.n;
    for (int i = 0; i < l.n; i++) {
        if (l.items[i].k != E_LIST || l.items[i].n != 2)
            build_fail(c, sp1, "yolo_decode's anchor %d must be a list [width, height]", i + 1);
        for (int j = 0; j < 2; j++) {
            double v = arg_number(c, l.items[i].items[j], sp1, "an anchor size");
            if (!(v > 0) || !isfinite(v)) build_fail(c, sp1, "anchor sizes must be positive, got %g", v);
            a.yolo.anchors[i][j] = v;
        }
    }
    a.yolo.classes = arg_small(c, build_arg(c, 2), build_span(c, 2), "yolo_decode's classes", 1, 1 << 20);
    a.yolo.stride = arg_small(c, build_arg(c, 3), build_span(c, 3), "yolo_decode's stride", 1, 1 << 20);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_YOLO_DECODE, inst, &x, 1, &a);
}

static Node *build_nms(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "nms's input");
    Attrs a = {0};
    a.nms.iou = arg_number(c, build_arg(c, 1), build_span(c, 1), "nms's iou");
    if (!(a.nms.iou >= 0 && a.nms.iou <= 1)) build_fail(c, build_span(c, 1), "nms's iou must be in [0, 1], got %g", a.nms.iou);
    a.nms.score = arg_number(c, build_arg(c, 2), build_span(c, 2), "nms's score");
    if (!(a.nms.score >= 0 && a.nms.score < 1))
        build_fail(c, build_span(c, 2), "nms's score must be in [0, 1), got %g", a.nms.score);
    a.nms.max = arg_small(c, build_arg(c, 3), build_span(c, 3), "nms's max", 1, 1 << 20);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_NMS, inst, &x, 1, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

static bool shape_yolo_decode(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    const YoloAttrs *a = &n->a.yolo;
    const int64_t *x = n->in[0]->shape.d;
    if (a->nanchors < 1 || a->nanchors > IR_MAX_ANCHORS || a->classes < 1 || a->stride < 1 ||
        x[1] != a->nanchors * (5 + a->classes)) {
        char b[128];
        diag_error(n->span, "yolo_decode of %s with %d anchors and %lld classes needs %lld channels (anchors * (5 + classes))",
                   value_sample_str(n->in[0], b, sizeof b), a->nanchors, (long long)a->classes,
                   (long long)(a->nanchors * (5 + a->classes)));
        return false;
    }
    shape_set_out(n, 0, 3, (int64_t[]){x[0], a->nanchors * x[2] * x[3], 5 + a->classes});
    return true;
}

static bool shape_nms(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if (x->rank != 3 || x->d[2] < 6) {
        char b[128];
        diag_error(n->span, "nms expects boxes [D, 5 + classes] (as yolo_decode gives), got %s",
                   value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    if (n->a.nms.max < 1) {
        diag_error(n->span, "nms needs to keep at least one box, got %lld", (long long)n->a.nms.max);
        return false;
    }
    shape_set_out(n, 0, 3, (int64_t[]){x->d[0], n->a.nms.max, 6});
    return true;
}

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_yolo_decode(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    return x->rank != 4 || n->a.yolo.nanchors < 1 || n->a.yolo.nanchors > IR_MAX_ANCHORS ? "needs [N, C, H, W] and anchors"
                                                                                         : NULL;
}

static const char *check_nms(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    return x->rank != 3 || x->d[2] < 6 ? "needs boxes [N, D, 5 + K]" : NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* YOLO's grid decoding; the anchors are an emitted table. */
static void emit_yolo_decode(Kernel *k) {
    const Node *n = k->n;
    const Shape *x = in_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"A", n->a.yolo.nanchors}, {"K", n->a.yolo.classes}, {"H", x->d[2]}, {"W", x->d[3]},
          {"STRIDE", n->a.yolo.stride});
    kout(k, "    enum { D = 5 + K, S = H * W };\n"
            "    static const double anchor[A][2] = {");
    for (int i = 0; i < n->a.yolo.nanchors; i++) {
        char w[64], h[64];
        kout(k, "%s{%s, %s}", i ? ", " : "", double_literal(w, sizeof w, n->a.yolo.anchors[i][0]),
            double_literal(h, sizeof h, n->a.yolo.anchors[i][1]));
    }
    kout(k, "};\n"
            "    for (int n = 0; n < N; n++) {\n"
            "        for (int a = 0; a < A; a++) {\n"
            "            const netc_real *restrict xa = x + ((size_t)n * A + a) * D * S; /* D planes of S */\n"
            "            for (int s = 0; s < S; s++) {\n"
            "                netc_real *restrict row = y + (((size_t)n * A + a) * S + s) * D;\n"
            "                const int gy = s / W, gx = s %% W;\n"
            "                row[0] = (1.0f / (1.0f + expf(-xa[s])) + (netc_real)gx) * (netc_real)STRIDE;\n"
            "                row[1] = (1.0f / (1.0f + expf(-xa[S + s])) + (netc_real)gy) * (netc_real)STRIDE;\n"
            "                row[2] = expf(xa[2 * S + s]) * (netc_real)anchor[a][0];\n"
            "                row[3] = expf(xa[3 * S + s]) * (netc_real)anchor[a][1];\n"
            "                for (int j = 4; j < D; j++) row[j] = 1.0f / (1.0f + expf(-xa[(size_t)j * S + s]));\n"
            "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* Class-wise greedy NMS without sorting: take the best remaining candidate
 * (the first of equal scores), keep it, drop the candidates of its class
 * that overlap it by IoU > IOU; MAXK times at most.  Per sample, the
 * candidates' scores and classes live in static arrays. */
static void emit_nms(Kernel *k) {
    const Node *n = k->n;
    const Shape *x = in_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"B", x->d[1]}, {"D", x->d[2]}, {"MAXK", n->a.nms.max});
    kdouble(k, "IOU", n->a.nms.iou);
    kdouble(k, "SCORE", n->a.nms.score);
    kout(k, "    netc_real score[B]; /* on the stack: instances may run at once */\n"
            "    int cls[B];\n"
            "    for (int n = 0; n < N; n++) {\n"
            "        const netc_real *restrict xb = x + (size_t)n * B * D;\n"
            "        netc_real *restrict yn = y + (size_t)n * MAXK * 6;\n"
            "        for (int b = 0; b < B; b++) {\n"
            "            const netc_real *restrict r = xb + (size_t)b * D;\n"
            "            int c = 0;\n"
            "            for (int j = 1; j < D - 5; j++) c = r[5 + j] > r[5 + c] ? j : c;\n"
            "            const netc_real s = r[4] * r[5 + c];\n"
            "            score[b] = s > SCORE ? s : -1.0f; /* -1: not a candidate */\n"
            "            cls[b] = c;\n"
            "        }\n"
            "        int kept = 0;\n"
            "        for (; kept < MAXK; kept++) {\n"
            "            int best = -1;\n"
            "            for (int b = 0; b < B; b++)\n"
            "                if (score[b] >= 0.0f && (best < 0 || score[b] > score[best])) best = b;\n"
            "            if (best < 0) break;\n"
            "            const netc_real *restrict r = xb + (size_t)best * D;\n"
            "            const netc_real x1 = r[0] - r[2] / 2, y1 = r[1] - r[3] / 2, x2 = r[0] + r[2] / 2, y2 = r[1] + r[3] / 2;\n"
            "            const netc_real area = (x2 - x1) * (y2 - y1);\n"
            "            netc_real *restrict o = yn + (size_t)kept * 6;\n"
            "            o[0] = x1, o[1] = y1, o[2] = x2, o[3] = y2, o[4] = score[best], o[5] = (netc_real)cls[best];\n"
            "            score[best] = -1.0f;\n"
            "            for (int b = 0; b < B; b++) {\n"
            "                if (score[b] < 0.0f || cls[b] != cls[best]) continue;\n"
            "                const netc_real *restrict q = xb + (size_t)b * D;\n"
            "                const netc_real qx1 = q[0] - q[2] / 2, qy1 = q[1] - q[3] / 2, qx2 = q[0] + q[2] / 2, qy2 = q[1] + q[3] / 2;\n"
            "                const netc_real iw = fminf(x2, qx2) - fmaxf(x1, qx1), ih = fminf(y2, qy2) - fmaxf(y1, qy1);\n"
            "                const netc_real inter = iw > 0.0f && ih > 0.0f ? iw * ih : 0.0f;\n"
            "                const netc_real iou = inter / (area + (qx2 - qx1) * (qy2 - qy1) - inter);\n"
            "                if (iou > IOU) score[b] = -1.0f;\n"
            "            }\n"
            "        }\n"
            "        for (; kept < MAXK; kept++) {\n"
            "            netc_real *restrict o = yn + (size_t)kept * 6;\n"
            "            o[0] = o[1] = o[2] = o[3] = o[4] = 0.0f;\n"
            "            o[5] = -1.0f;\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- attributes ----------------------------------------------------------------------- */

static void dump_yolo_decode(const Node *n, FILE *f) {
    fprintf(f, " classes=%lld stride=%d anchors=%d", (long long)n->a.yolo.classes, n->a.yolo.stride, n->a.yolo.nanchors);
}

static void dump_nms(const Node *n, FILE *f) {
    fprintf(f, " iou=%g score=%g max=%lld", n->a.nms.iou, n->a.nms.score, (long long)n->a.nms.max);
}

/* ---- the entries ---------------------------------------------------------------------- */

#define NO_MACS "no multiply-accumulates counted"
/* Why the detection ops have no gradient (a training build quotes it). */
#define NO_GRAD_DECODE "inference only: training a detector needs a target-assignment loss, which netc does not have"
#define NO_GRAD_NMS "not differentiable: it selects boxes"

const OpRules op_rules_YOLO_DECODE = {
    .builtins = (const Builtin[]){{"yolo_decode",
                                   {REQUIRED("x"), REQUIRED("anchors"), REQUIRED("classes"), REQUIRED("stride")},
                                   false, build_yolo_decode},
                                  {0}},
    .shape = shape_yolo_decode, .check = check_yolo_decode, .emit = emit_yolo_decode,
    .batched = op_batched_like_input0, .dump = dump_yolo_decode, .no_macs = NO_MACS, .no_grad = NO_GRAD_DECODE,
};

const OpRules op_rules_NMS = {
    .builtins = (const Builtin[]){{"nms",
                                   {REQUIRED("x"), DEFAULT_FLOAT("iou", 0.45), DEFAULT_FLOAT("score", 0.25),
                                    DEFAULT_INT("max", 100)},
                                   false, build_nms},
                                  {0}},
    .shape = shape_nms, .check = check_nms, .emit = emit_nms, .batched = op_batched_like_input0,
    .dump = dump_nms, .no_macs = NO_MACS, .no_grad = NO_GRAD_NMS,
};
