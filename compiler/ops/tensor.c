/* Tensor plumbing: flatten and reshape, add and mul with per-channel
 * broadcast, concat, slice, channel_shuffle, pad and upsample, and the
 * gradient ops of reshapes and broadcasts (reshape_grad, reduce_like), of
 * slice, pad and upsample.
 *
 * Each op is its registry entry (ops.h): the builtins that make it, its
 * shape, emission and gradient, and the statements of what it lacks. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../opkit.h"

/* ---- builders --------------------------------------------------------------- */

/* concat(a, b, ...) or concat([a, b, ...]): along the channels.  More
 * inputs than a node takes become a chain of nodes under one instance name. */
static Node *build_concat(BuildCtx *c) {
    ArgVal list = build_arg(c, 0);
    int n = list.n;
    if (n < 2) build_fail(c, c->call, "concat needs at least two tensors, got %d", n);
    Value **xs = arena_alloc(c->arena, sizeof *xs * (size_t)n);
    for (int i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "concat's argument %d", i + 1);
        xs[i] = arg_tensor(c, list.items[i], build_span(c, i), what);
    }
    const char *inst = build_instance(c, "concat");
    Value *acc = xs[0];
    Node *last = NULL;
    for (int i = 1; i < n;) {
        Value *in[IR_MAX_IN] = {acc};
        int k = 1;
        while (k < IR_MAX_IN && i < n) in[k++] = xs[i++];
        last = build_node(c, OP_CONCAT, inst, in, k, NULL);
        acc = last->out[0];
    }
    return last;
}

static Node *build_slice(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "slice's input");
    Attrs a = {0};
    a.slice.start = arg_small(c, build_arg(c, 1), build_span(c, 1), "slice's start", 0, INT32_MAX);
    a.slice.end = arg_small(c, build_arg(c, 2), build_span(c, 2), "slice's end", 1, INT32_MAX);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_SLICE, inst, &x, 1, &a);
}

static Node *build_channel_shuffle(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "channel_shuffle's input");
    Attrs a = {0};
    a.shuffle.groups = arg_small(c, build_arg(c, 1), build_span(c, 1), "channel_shuffle's groups", 1, INT32_MAX);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_CHANNEL_SHUFFLE, inst, &x, 1, &a);
}

/* reshape(x, [d1, ...]): per-sample sizes; one of them may be -1, inferred. */
static Node *build_reshape(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "reshape's input");
    ArgVal one = build_arg(c, 1);
    ArgVal d = one;
    if (d.k == E_INT) d = (ArgVal){.k = E_LIST, .items = &one, .n = 1, .depth = 1};
    if (d.k != E_LIST)
        build_fail(c, build_span(c, 1), "reshape's dims must be a list of ints, got %s", argval_kind_name(d.k));
    if (d.n < 1 || d.n > IR_MAX_RANK - 1)
        build_fail(c, build_span(c, 1), "reshape's dims must be a list of 1 to %d sizes, got %d", IR_MAX_RANK - 1, d.n);
    Attrs a = {0};
    a.reshape.ndims = d.n;
    int64_t have = shape_numel(&x->shape) / x->shape.d[0], known = 1;
    int infer = -1;
    for (int i = 0; i < d.n; i++) {
        int64_t v = arg_int(c, d.items[i], build_span(c, 1), "a reshape size");
        if (v == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (v < 1)
            build_fail(c, build_span(c, 1), "reshape's sizes must be positive (or one -1, inferred), got %" PRId64, v);
        if (__builtin_mul_overflow(known, v, &known) || known > have) known = INT64_MAX;
        a.reshape.dims[i] = v;
    }
    char buf[128];
    if (infer >= 0) {
        if (known == INT64_MAX)
            build_fail(c, build_span(c, 1),
                       "reshape cannot infer the -1 size: the other sizes ask for more than the %" PRId64
                       " elements per sample of %s",
                       have, value_sample_str(x, buf, sizeof buf));
        if (have % known)
            build_fail(c, build_span(c, 1),
                       "reshape cannot infer the -1 size: %s has %" PRId64 " elements per sample, not a multiple of %" PRId64,
                       value_sample_str(x, buf, sizeof buf), have, known);
        a.reshape.dims[infer] = have / known;
        known = have;
    }
    if (known != have) {
        char dims[160];
        size_t k = (size_t)snprintf(dims, sizeof dims, "[");
        for (int i = 0; i < d.n && k < sizeof dims; i++)
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%" PRId64, i ? ", " : "", d.items[i].i);
        if (k < sizeof dims) snprintf(dims + k, sizeof dims - k, "]");
        build_fail(c, build_span(c, 1), "reshape of %s (%" PRId64 " elements per sample) to %s: the element counts differ",
                   value_sample_str(x, buf, sizeof buf), have, dims);
    }
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_RESHAPE, inst, &x, 1, &a);
}

static Node *build_pad(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "pad's input");
    Attrs a = {0};
    arg_pads(c, build_arg(c, 1), build_span(c, 1), "pad's pad", a.pad.pad);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_PAD, inst, &x, 1, &a);
}

/* upsample(x, scale, mode, size): scale (an int, float or [sh, sw]) or size
 * ([h, w] or an int), not both; mode "nearest" or "bilinear" (align_corners
 * false).  Coordinates map as F.interpolate's: with a scale, by 1 / scale;
 * with a size, by in / out. */
static Node *build_upsample(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "upsample's input");
    char buf[128];
    if (x->shape.rank != 4)
        build_fail(c, c->call, "upsample expects a [C, H, W] input, got %s", value_sample_str(x, buf, sizeof buf));
    Attrs a = {0};
    ArgVal mode = build_arg(c, 2);
    if (mode.k != E_STRING)
        build_fail(c, build_span(c, 2), "upsample's mode must be a string, got %s", argval_kind_name(mode.k));
    if (strcmp(mode.s, "nearest") == 0)
        a.upsample.mode = UPSAMPLE_NEAREST;
    else if (strcmp(mode.s, "bilinear") == 0)
        a.upsample.mode = UPSAMPLE_BILINEAR;
    else
        build_fail(c, build_span(c, 2), "upsample's mode must be \"nearest\" or \"bilinear\", got \"%s\"", mode.s);
    bool has_scale = build_arg(c, 1).k != E_NONE, has_size = build_arg(c, 3).k != E_NONE;
    if (has_scale == has_size)
        build_fail(c, c->call, "upsample needs either a scale or a size (size = [h, w]), %s",
                   has_scale ? "not both" : "got neither");
    if (has_size) {
        int o[2];
        arg_pair(c, build_arg(c, 3), build_span(c, 3), "upsample's size", 1, o);
        for (int i = 0; i < 2; i++) {
            a.upsample.size[i] = o[i];
            a.upsample.scale[i] = (double)x->shape.d[2 + i] / o[i];
        }
    } else {
        ArgVal v = build_arg(c, 1);
        if (v.k == E_LIST && v.n != 2)
            build_fail(c, build_span(c, 1), "upsample's scale must be a number or a list of two, got a list of %d", v.n);
        for (int i = 0; i < 2; i++) {
            double f = arg_number(c, v.k == E_LIST ? v.items[i] : v, build_span(c, 1), "upsample's scale");
            if (!(f > 0) || !isfinite(f)) build_fail(c, build_span(c, 1), "upsample's scale must be positive, got %g", f);
            double o = floor((double)x->shape.d[2 + i] * f);
            if (o < 1)
                build_fail(c, build_span(c, 1), "upsample's scale %g leaves no output (%s %" PRId64 ")", f,
                           i ? "width" : "height", x->shape.d[2 + i]);
            if (o > INT32_MAX) build_fail(c, build_span(c, 1), "upsample's scale %g makes the output too large", f);
            a.upsample.size[i] = (int64_t)o;
            a.upsample.scale[i] = 1.0 / f;
        }
    }
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_UPSAMPLE, inst, &x, 1, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

static bool shape_flatten(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    shape_set_out(n, 0, 2, (int64_t[]){x->d[0], shape_numel(x) / x->d[0]});
    return true;
}

/* b broadcasts against a per channel: [N, C, 1, 1] or [N, C] against [N, C, H, W]. */
static bool broadcasts(const Shape *a, const Shape *b) {
    if (a->rank != 4 || b->d[0] != a->d[0] || b->d[1] != a->d[1]) return false;
    if (b->rank == 4) return b->d[2] == 1 && b->d[3] == 1;
    return b->rank == 2;
}

static bool shape_binary(Graph *g, Node *n) {
    (void)g;
    const Shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
    if (shape_eq(a, b) || broadcasts(a, b)) {
        n->out[0]->shape = *a;
        return true;
    }
    if (broadcasts(b, a)) {
        n->out[0]->shape = *b;
        return true;
    }
    char b1[128], b2[128];
    diag_error(n->span, "%s of tensors with shapes %s and %s (they must be equal, or one [C, 1, 1] or [C] per channel)",
               n->op == OP_ADD ? "'+'" : "'*'", value_sample_str(n->in[0], b1, sizeof b1),
               value_sample_str(n->in[1], b2, sizeof b2));
    return false;
}

/* Every input has the first's shape except in dim 1 (channels), which adds up. */
static bool shape_concat(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    int64_t c = 0;
    for (int i = 0; i < n->nin; i++) {
        const Shape *s = &n->in[i]->shape;
        bool ok = s->rank == x->rank && s->rank >= 2;
        for (int j = 0; ok && j < s->rank; j++) ok = j == 1 || s->d[j] == x->d[j];
        if (!ok) {
            char b1[128], b2[128];
            diag_error(n->span, "concat of tensors with shapes %s and %s (they must agree in every size but the channels)",
                       value_sample_str(n->in[0], b1, sizeof b1), value_sample_str(n->in[i], b2, sizeof b2));
            return false;
        }
        c += s->d[1];
    }
    Shape y = *x;
    y.d[1] = c;
    n->out[0]->shape = y;
    return true;
}

static bool shape_slice(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    const SliceAttrs *a = &n->a.slice;
    char b[128];
    if (x->rank < 2) {
        diag_error(n->span, "slice expects a [C, H, W] or [D] input, got %s", value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    if (a->start < 0 || a->end > x->d[1] || a->start >= a->end) {
        diag_error(n->span, "slice [%lld, %lld) is out of range of the %lld channels of %s (0 <= start < end <= %lld)",
                   (long long)a->start, (long long)a->end, (long long)x->d[1],
                   value_sample_str(n->in[0], b, sizeof b), (long long)x->d[1]);
        return false;
    }
    Shape y = *x;
    y.d[1] = a->end - a->start;
    n->out[0]->shape = y;
    return true;
}

static bool shape_channel_shuffle(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    int groups = n->a.shuffle.groups;
    char b[128];
    if (x->rank < 2) {
        diag_error(n->span, "channel_shuffle expects a [C, H, W] input, got %s", value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    if (groups < 1 || x->d[1] % groups) {
        diag_error(n->span, "channel_shuffle groups = %d must divide the channels (%lld) of %s", groups,
                   (long long)x->d[1], value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    n->out[0]->shape = *x;
    return true;
}

static bool shape_reshape(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    const ReshapeAttrs *a = &n->a.reshape;
    if (a->ndims < 1 || a->ndims >= IR_MAX_RANK) {
        diag_error(n->span, "reshape needs 1 to %d sizes, got %d", IR_MAX_RANK - 1, a->ndims);
        return false;
    }
    Shape y = {.rank = a->ndims + 1};
    y.d[0] = x->d[0];
    for (int i = 0; i < a->ndims; i++) y.d[i + 1] = a->dims[i];
    if (shape_numel(&y) != shape_numel(x)) {
        char b1[128], b2[128];
        diag_error(n->span, "reshape of %s to %s: the element counts differ (%lld and %lld per sample)",
                   value_sample_str(n->in[0], b1, sizeof b1), value_sample_str(&(Value){.shape = y, .kind = V_ACT}, b2, sizeof b2),
                   (long long)(shape_numel(x) / x->d[0]), (long long)(shape_numel(&y) / (y.d[0] ? y.d[0] : 1)));
        return false;
    }
    n->out[0]->shape = y;
    return true;
}

static bool shape_pad(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    const int *p = n->a.pad.pad;
    if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0) {
        diag_error(n->span, "pad needs non-negative pads, got [%d, %d, %d, %d]", p[0], p[1], p[2], p[3]);
        return false;
    }
    const int64_t *x = n->in[0]->shape.d;
    shape_set_out(n, 0, 4, (int64_t[]){x[0], x[1], x[2] + p[0] + p[1], x[3] + p[2] + p[3]});
    return true;
}

static bool shape_upsample(Graph *g, Node *n) {
    (void)g;
    if (!shape_want_rank(n, 0, 4, "[C, H, W]")) return false;
    const UpsampleAttrs *a = &n->a.upsample;
    if (a->size[0] < 1 || a->size[1] < 1 || !(a->scale[0] > 0) || !(a->scale[1] > 0) ||
        (a->mode != UPSAMPLE_NEAREST && a->mode != UPSAMPLE_BILINEAR)) {
        diag_error(n->span, "upsample needs an output of at least 1x1 and a known mode");
        return false;
    }
    const int64_t *x = n->in[0]->shape.d;
    shape_set_out(n, 0, 4, (int64_t[]){x[0], x[1], a->size[0], a->size[1]});
    return true;
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

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_reshape(const Graph *g, const Node *n) {
    (void)g;
    return shape_numel(&n->in[0]->shape) != shape_numel(&n->out[0]->shape) ? "x and y differ in size" : NULL;
}

static const char *check_reshape_grad(const Graph *g, const Node *n) {
    (void)g;
    return shape_numel(&n->in[0]->shape) != shape_numel(&n->in[1]->shape) ? "dy and x differ in size" : NULL;
}

static const char *check_concat(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    Value *const *in = n->in;
    const char *why = NULL;
    for (int i = 0; i < n->nin; i++)
        if (in[i]->shape.rank < 2 || in[i]->shape.rank != x->rank || in[i]->shape.d[0] != x->d[0])
            why = "concat needs [N, C, ...] inputs of one rank and batch";
    /* blocked (the layout pass): every input blocked as the output, each but
     * the last a whole number of blocks */
    int v = n->out[0]->cblock;
    for (int i = 0; i < n->nin && !why; i++)
        if (in[i]->cblock != v || (v && i < n->nin - 1 && in[i]->shape.d[1] % v))
            why = "a blocked concat needs its inputs blocked alike, each but the last a whole number of blocks";
    return why;
}

/* Whether channels [start, end) of x exist (slice, and slice_grad's x). */
static const char *slice_bounds(const Shape *x, const SliceAttrs *a) {
    if (x->rank < 2 || a->start < 0 || a->end > x->d[1] || a->start >= a->end)
        return "needs [N, C, ...] and 0 <= start < end <= C";
    return NULL;
}

static const char *check_slice(const Graph *g, const Node *n) {
    (void)g;
    return slice_bounds(&n->in[0]->shape, &n->a.slice);
}

/* slice_grad: as slice's, on x (input 1). */
static const char *check_slice_grad(const Graph *g, const Node *n) {
    (void)g;
    return slice_bounds(&n->in[1]->shape, &n->a.slice);
}

static const char *check_channel_shuffle(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    int groups = n->a.shuffle.groups;
    return x->rank < 2 || groups < 1 || x->d[1] % groups ? "needs [N, C, ...] and groups dividing C" : NULL;
}

static const char *check_pad(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank != 4 || n->out[0]->shape.rank != 4 ? "pad needs [N, C, H, W]" : NULL;
}

static const char *check_upsample(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank != 4 || n->out[0]->shape.rank != 4 ? "pooling needs [N, C, H, W]" : NULL;
}

/* One operand has the output's shape, the other the same or one value per
 * channel (or per sample and channel, or per tensor). */
static const char *check_binary(const Graph *g, const Node *n) {
    (void)g;
    const Shape *y = &n->out[0]->shape;
    Bcast ka = bcast_kind(&n->in[0]->shape, y), kb = bcast_kind(&n->in[1]->shape, y);
    if (ka == B_BAD || kb == B_BAD || (ka != B_SAME && kb != B_SAME) || (ka != B_SAME && y->rank < 1))
        return "the operands do not broadcast";
    /* blocked: both operands blocked alike, or the full one and a gate per sample and channel */
    int cb = n->out[0]->cblock;
    for (int i = 0; i < 2 && cb; i++) {
        const Value *v = n->in[i];
        if (shape_eq(&v->shape, y) ? v->cblock != cb : v->cblock && v->cblock != cb)
            return "a blocked output needs its full operand blocked alike and a gate plain or blocked alike";
        if (!shape_eq(&v->shape, y) && (y->rank != 4 || v->shape.d[0] != y->d[0] || v->shape.d[1] != y->d[1] ||
                                        shape_numel(&v->shape) != y->d[0] * y->d[1]))
            return "a blocked output's gate must be [N, C, 1, 1] or [N, C]";
    }
    if (!cb && (n->in[0]->cblock || n->in[1]->cblock)) return "a blocked operand needs a blocked output";
    return NULL;
}

static const char *check_reduce_like(const Graph *g, const Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    Value *const *in = n->in;
    /* With N = C = 1, [1, 1, 1, 1] is also B_SCALAR: the same one value. */
    Bcast k = x->rank < 2 ? B_BAD : bcast_kind(&in[1]->shape, x);
    if (!shape_eq(x, &in[1]->shape) && k != B_SAMPLE_CHANNEL && !(k == B_SCALAR && x->d[0] * x->d[1] == 1))
        return "like must be dy's shape, or [N, C, 1, 1] or [N, C] against dy [N, C, ...]";
    return NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* Flatten and reshape: the same data under another shape; a copy, or a view
 * (OpRules.view) where the memory plan makes one and this is not called. */
static void emit_flatten(Kernel *k) {
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    knumel(k, k->n->out[0]);
    kout(k, "    memcpy(y, x, NUMEL * sizeof *y);\n");
    kclose(k);
}

/* A blocked (NCHW[V]c) [N, C, H, W] operand and a gate of one value per
 * sample and channel, plain ([N, C, 1, 1] or [N, C]) or blocked alike (the
 * layout pass): one vector of V channels' gate values per channel block,
 * the padded channels' lanes 0 for a plain gate.  Each element is the plain
 * kernel's one operation, so the bits are the same. */
static void emit_binary_gated(Kernel *k, char op) {
    const Node *n = k->n;
    const Shape *y = out_shape(k, 0);
    bool small_a = !shape_eq(in_shape(k, 0), y);
    const Value *gate = n->in[small_a ? 0 : 1];
    /* written over the full operand (Kernel.inplace): read it through y */
    const char *full = k->inplace & (small_a ? 2u : 1u) ? "y" : small_a ? "b" : "a";
    kopen(k, (const char *const[]){"a", "b"}, (const char *const[]){"y"});
    KENUM(k, {"N", y->d[0]}, {"C", y->d[1]}, {"S", shape_spatial(y)}, {"V", n->out[0]->cblock});
    kout(k, "    enum { CB = (C + V - 1) / V }; /* channel blocks */\n"
            "    typedef netc_real vec __attribute__((vector_size(V * sizeof(netc_real))));\n"
            "    /* %s is NCHW%dc; %s has one value per sample and channel, %s */\n",
         small_a ? "b" : "a", n->out[0]->cblock, small_a ? "a" : "b",
         gate->cblock ? "blocked alike" : "plain");
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int cb = 0; cb < CB; cb++) {\n");
    if (gate->cblock)
        kout(k, "            const vec g = *(const vec *)(%s + ((size_t)n * CB + cb) * V);\n", small_a ? "a" : "b");
    else
        kout(k, "            vec g = {0};\n"
                "            for (int v = 0; v < V && cb * V + v < C; v++) g[v] = %s[(size_t)n * C + cb * V + v];\n",
             small_a ? "a" : "b");
    if (strcmp(full, "y") == 0)
        kout(k, "            netc_real *restrict yc = y + ((size_t)n * CB + cb) * S * V;\n"
                "            const netc_real *f = yc; /* in place */\n");
    else
        kout(k, "            const netc_real *restrict f = %s + ((size_t)n * CB + cb) * S * V;\n"
                "            netc_real *restrict yc = y + ((size_t)n * CB + cb) * S * V;\n", full);
    kout(k, "            for (int i = 0; i < S; i++) *(vec *)(yc + (size_t)i * V) = %s;\n"
            "        }\n"
            "    }\n",
         small_a ? (op == '+' ? "g + *(const vec *)(f + (size_t)i * V)" : "g * *(const vec *)(f + (size_t)i * V)")
                                      : (op == '+' ? "*(const vec *)(f + (size_t)i * V) + g" : "*(const vec *)(f + (size_t)i * V) * g"));
    kclose(k);
}

static void emit_binary(Kernel *k, char op) {
    const Shape *y = out_shape(k, 0);
    Bcast ka = bcast_kind(in_shape(k, 0), y), kb = bcast_kind(in_shape(k, 1), y);
    if (k->n->out[0]->cblock && (ka != B_SAME || kb != B_SAME)) {
        emit_binary_gated(k, op);
        return;
    }
    /* written over a or b (Kernel.inplace): read through y */
    const char *A = k->inplace & 1 ? "y" : "a", *B = k->inplace & 2 ? "y" : "b";
    if (ka == B_SAME && kb == B_SAME) {
        const char *loop =
            kopen_elementwise(k, (const char *const[]){"a", "b"}, (const char *const[]){"y"}, 0, k->n->out[0]);
        kout(k, "    %s y[i] = %s[i] %c %s[i];\n", loop, A, op, B);
        kclose(k);
        return;
    }
    kopen(k, (const char *const[]){"a", "b"}, (const char *const[]){"y"});
    /* One operand has the output's shape, the other one value per channel. */
    bool small_a = ka != B_SAME;
    Bcast kind = small_a ? ka : kb;
    KENUM(k, {"N", y->d[0]}, {"C", y->rank > 1 ? y->d[1] : 1}, {"S", shape_spatial(y)});
    const char *small = small_a ? "a" : "b", *full = small_a ? B : A;
    const char *index = kind == B_SAMPLE_CHANNEL ? "(size_t)n * C + c" : kind == B_CHANNEL ? "c" : "0";
    kout(k, "    /* %s has one value per %s */\n", small,
         kind == B_SAMPLE_CHANNEL ? "sample and channel" : kind == B_CHANNEL ? "channel" : "tensor");
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        for (int c = 0; c < C; c++) {\n"
            "            const netc_real v = %s[%s];\n", small, index);
    if (!k->inplace)
        kout(k, "            const netc_real *restrict f = %s + ((size_t)n * C + c) * S;\n", full);
    kout(k, "            netc_real *restrict yc = y + ((size_t)n * C + c) * S;\n");
    const char *f = k->inplace ? "yc" : "f"; /* in place: the full operand is y */
    if (small_a)
        kout(k, "            for (int i = 0; i < S; i++) yc[i] = v %c %s[i];\n", op, f);
    else
        kout(k, "            for (int i = 0; i < S; i++) yc[i] = %s[i] %c v;\n", f, op);
    kout(k, "        }\n"
            "    }\n");
    kclose(k);
}

static void emit_add(Kernel *k) { emit_binary(k, '+'); }
static void emit_mul(Kernel *k) { emit_binary(k, '*'); }

/* Each sample's output is the inputs' channel blocks one after another. */
static void emit_concat(Kernel *k) {
    static const char *const names[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"};
    _Static_assert(sizeof names / sizeof names[0] >= IR_MAX_IN, "a name per input");
    const Node *n = k->n;
    const Shape *y = out_shape(k, 0);
    kopen(k, names, (const char *const[]){"y"});
    int v = n->out[0]->cblock;
    if (v) {
        /* NCHW[V]c: each input a whole number of blocks of V channels (but
         * the last), so its blocks, padding included, follow the previous
         * input's */
        KENUM(k, {"N", y->d[0]}, {"S", shape_spatial(y)}, {"V", v});
        kout(k, "    for (int n = 0; n < N; n++) {\n"
                "        netc_real *restrict yn = y + (size_t)n * %lld * S * V; /* %lld blocks of V channels */\n",
             (long long)((y->d[1] + v - 1) / v), (long long)((y->d[1] + v - 1) / v));
        for (int i = 0; i < n->nin; i++) {
            long long cb = (n->in[i]->shape.d[1] + v - 1) / v;
            kout(k, "        memcpy(yn, %s + (size_t)n * %lld * S * V, (size_t)%lld * S * V * sizeof *yn);\n", names[i], cb,
                 cb);
            if (i < n->nin - 1) kout(k, "        yn += (size_t)%lld * S * V;\n", cb);
        }
        kout(k, "    }\n");
        kclose(k);
        return;
    }
    KENUM(k, {"N", y->d[0]}, {"C", y->d[1]}, {"S", shape_spatial(y)});
    kout(k, "    for (int n = 0; n < N; n++) {\n"
            "        netc_real *restrict yn = y + (size_t)n * C * S;\n");
    for (int i = 0; i < n->nin; i++)
        kout(k, "        memcpy(yn, %s + (size_t)n * %lld * S, (size_t)%lld * S * sizeof *yn);\n"
                "        yn += (size_t)%lld * S;\n",
             names[i], (long long)n->in[i]->shape.d[1], (long long)n->in[i]->shape.d[1],
             (long long)n->in[i]->shape.d[1]);
    kout(k, "    }\n");
    kclose(k);
}

static void emit_slice(Kernel *k) {
    const Shape *x = in_shape(k, 0);
    const SliceAttrs *a = &k->n->a.slice;
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"START", a->start}, {"K", a->end - a->start});
    kout(k, "    for (int n = 0; n < N; n++)\n"
            "        memcpy(y + (size_t)n * K * S, x + ((size_t)n * C + START) * S, (size_t)K * S * sizeof *y);\n");
    kclose(k);
}

/* slice's gradient: dy into channels [START, START + K) of a zero dx. */
static void emit_slice_grad(Kernel *k) {
    const Shape *x = in_shape(k, 1);
    const SliceAttrs *a = &k->n->a.slice;
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"START", a->start}, {"K", a->end - a->start});
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    memset(dx, 0, (size_t)N * C * S * sizeof *dx);\n"
            "    for (int n = 0; n < N; n++)\n"
            "        memcpy(dx + ((size_t)n * C + START) * S, dy + (size_t)n * K * S, (size_t)K * S * sizeof *dx);\n");
    kclose(k);
}

/* As x.view(N, G, C/G, ...).transpose(1, 2): input channel g * CG + j goes to j * G + g. */
static void emit_channel_shuffle(Kernel *k) {
    const Shape *x = in_shape(k, 0);
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"S", shape_spatial(x)}, {"G", k->n->a.shuffle.groups});
    kout(k, "    enum { CG = C / G };\n"
            "    for (int n = 0; n < N; n++)\n"
            "        for (int g = 0; g < G; g++)\n"
            "            for (int j = 0; j < CG; j++)\n"
            "                memcpy(y + ((size_t)n * C + (size_t)j * G + g) * S, x + ((size_t)n * C + (size_t)g * CG + j) * S,\n"
            "                       (size_t)S * sizeof *y);\n");
    kclose(k);
}

/* pad's gradient: the part of dy over x, without the padding. */
static void emit_pad_grad(Kernel *k) {
    const Shape *x = in_shape(k, 1), *y = in_shape(k, 0);
    const int *p = k->n->a.pad.pad;
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]},
          {"PT", p[0]}, {"PL", p[2]});
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    for (int nc = 0; nc < N * C; nc++)\n"
            "        for (int h = 0; h < H; h++)\n"
            "            memcpy(dx + ((size_t)nc * H + h) * W, dy + ((size_t)nc * OH + h + PT) * OW + PL, (size_t)W * sizeof *dx);\n");
    kclose(k);
}

static void emit_pad(Kernel *k) {
    const Shape *x = in_shape(k, 0), *y = out_shape(k, 0);
    const int *p = k->n->a.pad.pad;
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]},
          {"PT", p[0]}, {"PL", p[2]});
    kout(k, "    memset(y, 0, (size_t)N * C * OH * OW * sizeof *y);\n"
            "    for (int nc = 0; nc < N * C; nc++)\n"
            "        for (int h = 0; h < H; h++)\n"
            "            memcpy(y + ((size_t)nc * OH + h + PT) * OW + PL, x + ((size_t)nc * H + h) * W, (size_t)W * sizeof *y);\n");
    kclose(k);
}

/* upsample's source coordinates, as F.interpolate maps them: nearest takes
 * source floor(o * scale) in float, as PyTorch's kernel (row ih of output
 * row oh, column iw of output column ow); bilinear (align_corners false) the
 * source (o + 0.5) * scale - 0.5, clamped at 0, between its two neighbours
 * h0 and h1 (equal at the last row), at lh of the way from h0 (columns w0,
 * w1, lw alike).  The forward kernel and the gradient's. */
static const char nearest_row[] = "const int hf = (int)floorf((float)oh * (float)SCALE_H), ih = hf < H - 1 ? hf : H - 1;\n";
static const char nearest_col[] = "const int wf = (int)floorf((float)ow * (float)SCALE_W), iw = wf < W - 1 ? wf : W - 1;\n";
static const char bilinear_row[] = "double sh = (oh + 0.5) * SCALE_H - 0.5;\n"
                                   "if (sh < 0) sh = 0;\n"
                                   "const int h0 = (int)sh, h1 = h0 < H - 1 ? h0 + 1 : h0;\n"
                                   "const netc_real lh = (netc_real)(sh - h0);\n";
static const char bilinear_col[] = "double sw = (ow + 0.5) * SCALE_W - 0.5;\n"
                                   "if (sw < 0) sw = 0;\n"
                                   "const int w0 = (int)sw, w1 = w0 < W - 1 ? w0 + 1 : w0;\n"
                                   "const netc_real lw = (netc_real)(sw - w0);\n";

/* The constants of upsample and its gradient: x [N, C, H, W], y (or dy)
 * [N, C, OH, OW] and the scales (input / output size). */
static void upsample_enum(Kernel *k, const Shape *x, const Shape *y) {
    const UpsampleAttrs *a = &k->n->a.upsample;
    KENUM(k, {"N", x->d[0]}, {"C", x->d[1]}, {"H", x->d[2]}, {"W", x->d[3]}, {"OH", y->d[2]}, {"OW", y->d[3]});
    kdouble(k, "SCALE_H", a->scale[0]);
    kdouble(k, "SCALE_W", a->scale[1]);
}

/* F.interpolate, nearest or bilinear (the coordinates above). */
static void emit_upsample(Kernel *k) {
    const UpsampleAttrs *a = &k->n->a.upsample;
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    upsample_enum(k, in_shape(k, 0), out_shape(k, 0));
    kout(k, "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict xp = x + (size_t)nc * H * W;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n");
    if (a->mode == UPSAMPLE_NEAREST) {
        klines(k, 3, nearest_row);
        kout(k, "            netc_real *restrict yr = y + ((size_t)nc * OH + oh) * OW;\n"
                "            for (int ow = 0; ow < OW; ow++) {\n");
        klines(k, 4, nearest_col);
        kout(k, "                yr[ow] = xp[(size_t)ih * W + iw];\n");
    } else {
        klines(k, 3, bilinear_row);
        kout(k, "            const netc_real *restrict r0 = xp + (size_t)h0 * W, *restrict r1 = xp + (size_t)h1 * W;\n"
                "            netc_real *restrict yr = y + ((size_t)nc * OH + oh) * OW;\n"
                "            for (int ow = 0; ow < OW; ow++) {\n");
        klines(k, 4, bilinear_col);
        kout(k, "                yr[ow] = (1.0f - lh) * ((1.0f - lw) * r0[w0] + lw * r0[w1]) +\n"
                "                         lh * ((1.0f - lw) * r1[w0] + lw * r1[w1]);\n");
    }
    kout(k, "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* upsample's gradient: each output's dy goes back to the input values the
 * forward pass read for it, nearest to its source, bilinear to its four
 * neighbours by their weights (summed where outputs share a source, and
 * where the neighbours coincide at the last row or column). */
static void emit_upsample_grad(Kernel *k) {
    const UpsampleAttrs *a = &k->n->a.upsample;
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    upsample_enum(k, in_shape(k, 1), in_shape(k, 0));
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    memset(dx, 0, (size_t)N * C * H * W * sizeof *dx);\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        netc_real *restrict dxp = dx + (size_t)nc * H * W;\n"
            "        for (int oh = 0; oh < OH; oh++) {\n");
    if (a->mode == UPSAMPLE_NEAREST) {
        klines(k, 3, nearest_row);
        kout(k, "            const netc_real *restrict dyr = dy + ((size_t)nc * OH + oh) * OW;\n"
                "            for (int ow = 0; ow < OW; ow++) {\n");
        klines(k, 4, nearest_col);
        kout(k, "                dxp[(size_t)ih * W + iw] += dyr[ow];\n");
    } else {
        klines(k, 3, bilinear_row);
        kout(k, "            const netc_real *restrict dyr = dy + ((size_t)nc * OH + oh) * OW;\n"
                "            for (int ow = 0; ow < OW; ow++) {\n");
        klines(k, 4, bilinear_col);
        kout(k, "                const netc_real g0 = (1.0f - lh) * dyr[ow], g1 = lh * dyr[ow]; /* rows h0 and h1's shares */\n"
                "                dxp[(size_t)h0 * W + w0] += (1.0f - lw) * g0;\n"
                "                dxp[(size_t)h0 * W + w1] += lw * g0;\n"
                "                dxp[(size_t)h1 * W + w0] += (1.0f - lw) * g1;\n"
                "                dxp[(size_t)h1 * W + w1] += lw * g1;\n");
    }
    kout(k, "            }\n"
            "        }\n"
            "    }\n");
    kclose(k);
}

/* ---- training: reshapes and broadcasts ------------------------------------------------- */

static void emit_reshape_grad(Kernel *k) {
    kopen(k, (const char *const[]){"dy", "x"}, (const char *const[]){"dx"});
    knumel(k, k->n->out[0]);
    kout(k, "    (void)x; /* read for its shape only */\n"
            "    memcpy(dx, dy, NUMEL * sizeof *dx);\n");
    kclose(k);
}

/* dy summed to the shape of `like`: the gradient of an operand that add or
 * mul broadcast per sample and channel; a copy when the shapes agree. */
static void emit_reduce_like(Kernel *k) {
    const Shape *dy = in_shape(k, 0);
    kopen(k, (const char *const[]){"dy", "like"}, (const char *const[]){"dx"});
    if (shape_eq(dy, in_shape(k, 1))) {
        knumel(k, k->n->out[0]);
        kout(k, "    (void)like; /* read for its shape only */\n"
                "    memcpy(dx, dy, NUMEL * sizeof *dx);\n");
        kclose(k);
        return;
    }
    KENUM(k, {"N", dy->d[0]}, {"C", dy->d[1]}, {"S", shape_spatial(dy)});
    kout(k, "    (void)like; /* read for its shape only */\n"
            "    for (int nc = 0; nc < N * C; nc++) {\n"
            "        const netc_real *restrict dyp = dy + (size_t)nc * S;\n"
            "        double s = 0.0;\n"
            "        for (int i = 0; i < S; i++) s += dyp[i];\n"
            "        dx[nc] = (netc_real)s;\n"
            "    }\n");
    kclose(k);
}

/* ---- batch rules ------------------------------------------------------------------------ */

/* add and mul outputs are batched if an operand is. */
static bool batched_binary(const Node *n, int i, const bool *batched) {
    (void)i;
    return batched[n->in[0]->id] || batched[n->in[1]->id];
}

/* reduce_like's output is shaped as its second operand. */
static bool batched_like_input1(const Node *n, int i, const bool *batched) {
    (void)i;
    return batched[n->in[1]->id];
}

/* ---- gradient rules ----------------------------------------------------------------------- */

/* Flatten's gradient reads the input (for its shape only). */
static void grad_flatten(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_RESHAPE_GRAD, n, (Value *[]){dy, n->in[0]}, 2)));
}

static void grad_add(GradCtx *c, Node *n, Value *dy) {
    for (int i = 0; i < 2; i++)
        if (grad_needed(c, n->in[i])) grad_accum(c, n->in[i], grad_unbroadcast(c, n, dy, n->in[i]));
}

static void grad_mul(GradCtx *c, Node *n, Value *dy) {
    for (int i = 0; i < 2; i++) {
        Value *v = n->in[i], *other = n->in[1 - i];
        if (!grad_needed(c, v)) continue;
        Value *g = grad_out0(grad_node(c, OP_MUL, n, (Value *[]){dy, other}, 2));
        grad_accum(c, v, grad_unbroadcast(c, n, g, v));
    }
}

/* ---- attributes ----------------------------------------------------------------------- */

static void dump_slice(const Node *n, FILE *f) {
    fprintf(f, " start=%lld end=%lld", (long long)n->a.slice.start, (long long)n->a.slice.end);
}
static void dump_channel_shuffle(const Node *n, FILE *f) { fprintf(f, " groups=%d", n->a.shuffle.groups); }
static void dump_pad(const Node *n, FILE *f) {
    const int *p = n->a.pad.pad;
    fprintf(f, " pad=%d,%d,%d,%d", p[0], p[1], p[2], p[3]);
}
static void dump_upsample(const Node *n, FILE *f) {
    const UpsampleAttrs *a = &n->a.upsample;
    fprintf(f, " %s size=%lldx%lld", a->mode == UPSAMPLE_BILINEAR ? "bilinear" : "nearest", (long long)a->size[0],
            (long long)a->size[1]);
}

/* ---- gradient rules: concat, slice, channel_shuffle ----------------------------------- */

/* Each input of a concat gets the channels of dy it filled. */
static void grad_concat(GradCtx *c, Node *n, Value *dy) {
    int64_t off = 0;
    for (int i = 0; i < n->nin; i++) {
        int64_t ci = n->in[i]->shape.d[1];
        if (grad_needed(c, n->in[i])) {
            Node site = *n;
            site.a = (Attrs){0};
            site.a.slice.start = off, site.a.slice.end = off + ci;
            grad_accum(c, n->in[i], grad_out0(grad_node(c, OP_SLICE, &site, &dy, 1)));
        }
        off += ci;
    }
}

static void grad_slice(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_SLICE_GRAD, n, (Value *[]){dy, n->in[0]}, 2)));
}

/* Shuffling C channels in G groups is undone by shuffling in C / G groups. */
static void grad_channel_shuffle(GradCtx *c, Node *n, Value *dy) {
    Node site = *n;
    site.a = (Attrs){0};
    site.a.shuffle.groups = (int)(n->in[0]->shape.d[1] / n->a.shuffle.groups);
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_CHANNEL_SHUFFLE, &site, &dy, 1)));
}

static void grad_pad(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_PAD_GRAD, n, (Value *[]){dy, n->in[0]}, 2)));
}

static void grad_upsample(GradCtx *c, Node *n, Value *dy) {
    grad_accum(c, n->in[0], grad_out0(grad_node(c, OP_UPSAMPLE_GRAD, n, (Value *[]){dy, n->in[0]}, 2)));
}

/* upsample_grad: plain dy and x of rank 4, dy of upsample's output size. */
static const char *check_upsample_grad(const Graph *g, const Node *n) {
    (void)g;
    const Shape *dy = &n->in[0]->shape, *x = &n->in[1]->shape;
    const UpsampleAttrs *a = &n->a.upsample;
    if (dy->rank != 4 || x->rank != 4 || n->in[0]->cblock || n->in[1]->cblock) return "upsample needs plain [N, C, H, W]";
    return dy->d[2] != a->size[0] || dy->d[3] != a->size[1] || dy->d[1] != x->d[1] ? "dy must have upsample's output shape"
                                                                                    : NULL;
}

static const char *check_pad_grad(const Graph *g, const Node *n) {
    (void)g;
    return n->in[0]->shape.rank != 4 || n->in[1]->shape.rank != 4 ? "pad needs [N, C, H, W]" : NULL;
}

/* ---- the entries ---------------------------------------------------------------------- */

#define NO_ATTRS "no attributes"
#define RESHAPE_DUMP "its sizes show in the output shape"
#define NO_MACS "data movement: no multiply-accumulates counted"
#define NO_MACS_ELEMENTWISE "elementwise: no multiply-accumulates counted"
#define NO_CHECK "any shape: the kernel copies NUMEL elements"
#define MADE_BY_OPERATORS "made by the operators + and *"
#define MADE_BY_AUTODIFF "a gradient op: autodiff makes it"
#define GRAD_OP "a gradient op: not differentiated again"

const OpRules op_rules_FLATTEN = {
    .builtins = (const Builtin[]){{"flatten", {REQUIRED("x")}, false, build_unary}, {0}},
    .shape = shape_flatten, .no_check = NO_CHECK, .emit = emit_flatten, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_flatten,
    .view = true,
};

const OpRules op_rules_ADD = {
    .no_build = MADE_BY_OPERATORS,
    .shape = shape_binary, .check = check_binary, .emit = emit_add, .batched = batched_binary,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS_ELEMENTWISE, .grad = grad_add,
    .blocked_ok = true, /* two operands of one shape and block, or a blocked one and a per-channel gate: the layout pass checks */
    .inplace_ok = true, /* written over the operand of the output's shape (the memory plan) */
    .blocked_train = true, /* of one shape (layout_train): its gradient is dy */
};

const OpRules op_rules_MUL = {
    .no_build = MADE_BY_OPERATORS,
    .shape = shape_binary, .check = check_binary, .emit = emit_mul, .batched = batched_binary,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS_ELEMENTWISE, .grad = grad_mul,
    .blocked_ok = true, /* two operands of one shape and block, or a blocked one and a per-channel gate: the layout pass checks */
    .inplace_ok = true, /* written over the operand of the output's shape (the memory plan) */
    .blocked_train = true, /* of one shape (layout_train): its gradients are muls of that shape */
};

const OpRules op_rules_CONCAT = {
    .builtins = (const Builtin[]){{"concat", {REQUIRED("...")}, true, build_concat}, {0}},
    .shape = shape_concat, .check = check_concat, .emit = emit_concat, .batched = op_batched_like_input0,
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .grad = grad_concat,
    .blocked_ok = true, /* inputs blocked alike, whole blocks: the layout pass checks */
};

const OpRules op_rules_SLICE = {
    .builtins = (const Builtin[]){{"slice", {REQUIRED("x"), REQUIRED("start"), REQUIRED("end")}, false, build_slice},
                                  {0}},
    .shape = shape_slice, .check = check_slice, .emit = emit_slice, .batched = op_batched_like_input0,
    .dump = dump_slice, .no_macs = NO_MACS, .grad = grad_slice,
};

const OpRules op_rules_CHANNEL_SHUFFLE = {
    .builtins = (const Builtin[]){{"channel_shuffle", {REQUIRED("x"), REQUIRED("groups")}, false, build_channel_shuffle},
                                  {0}},
    .shape = shape_channel_shuffle, .check = check_channel_shuffle, .emit = emit_channel_shuffle,
    .batched = op_batched_like_input0, .dump = dump_channel_shuffle, .no_macs = NO_MACS, .grad = grad_channel_shuffle,
};

const OpRules op_rules_RESHAPE = {
    .builtins = (const Builtin[]){{"reshape", {REQUIRED("x"), REQUIRED("dims")}, false, build_reshape}, {0}},
    .shape = shape_reshape, .check = check_reshape, .emit = emit_flatten, .batched = op_batched_like_input0,
    .no_dump = RESHAPE_DUMP, .no_macs = NO_MACS, .grad = grad_flatten, /* the same data: reshape_grad */
    .view = true,
};

const OpRules op_rules_PAD = {
    .builtins = (const Builtin[]){{"pad", {REQUIRED("x"), REQUIRED("pad")}, false, build_pad}, {0}},
    .shape = shape_pad, .check = check_pad, .emit = emit_pad, .batched = op_batched_like_input0,
    .dump = dump_pad, .no_macs = NO_MACS, .grad = grad_pad,
};

const OpRules op_rules_UPSAMPLE = {
    .builtins = (const Builtin[]){{"upsample",
                                   {REQUIRED("x"), DEFAULT_NONE("scale"), DEFAULT_STRING("mode", "nearest"),
                                    DEFAULT_NONE("size")},
                                   false, build_upsample},
                                  {0}},
    .shape = shape_upsample, .check = check_upsample, .emit = emit_upsample, .batched = op_batched_like_input0,
    .dump = dump_upsample, .no_macs = NO_MACS, .grad = grad_upsample,
};

const OpRules op_rules_RESHAPE_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_reshape_grad, .emit = emit_reshape_grad,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_REDUCE_LIKE = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_reduce_like, .emit = emit_reduce_like,
    .batched = batched_like_input1, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_SLICE_GRAD = {
    .no_build = "a gradient op: autodiff makes it",
    .shape = shape_like_input1, .check = check_slice_grad, .emit = emit_slice_grad, .batched = op_batched_like_input0,
    .dump = dump_slice, .no_macs = NO_MACS, .no_grad = "a gradient op: not differentiated again",
};

const OpRules op_rules_PAD_GRAD = {
    .no_build = "a gradient op: autodiff makes it",
    .shape = shape_like_input1, .check = check_pad_grad, .emit = emit_pad_grad, .batched = op_batched_like_input0,
    .dump = dump_pad, .no_macs = NO_MACS, .no_grad = "a gradient op: not differentiated again",
};

const OpRules op_rules_UPSAMPLE_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_like_input1, .check = check_upsample_grad, .emit = emit_upsample_grad,
    .batched = op_batched_like_input0, .dump = dump_upsample, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};
