/* Shape inference: one rule per op, in a table indexed by op.
 *
 * A rule reads its node's input shapes and attributes, checks that they fit,
 * and sets the shapes of the node's outputs.  Messages speak in per-sample
 * shapes (without the batch dimension), as the .net source does. */
#include <stdio.h>
#include <string.h>

#include "ir.h"

typedef bool (*ShapeRule)(Graph *g, Node *n);

static void set_out(Node *n, int i, int rank, const int64_t *d) { n->out[i]->shape = shape_make(rank, d); }

static bool want_rank(Node *n, int i, int rank, const char *what) {
    if (n->in[i]->shape.rank == rank) return true;
    char b[128];
    diag_error(n->span, "%s expects a %s input, got %s", op_name(n->op), what,
               value_sample_str(n->in[i], b, sizeof b));
    return false;
}

/* Checks that parameter input i has exactly the shape `rank`/`d`. */
static bool want_param(Node *n, int i, int rank, const int64_t *d, const char *what) {
    Shape want = shape_make(rank, d);
    if (shape_eq(&n->in[i]->shape, &want)) return true;
    char b1[128], b2[128];
    diag_error(n->span, "%s of %s \"%s\" has shape %s, expected %s", what, op_name(n->op), n->name,
               shape_str(&n->in[i]->shape, b1, sizeof b1), shape_str(&want, b2, sizeof b2));
    return false;
}

/* Output size of a sliding window; reports and returns -1 if it would be < 1. */
static int64_t window_out(Node *n, int64_t in, int k, int s, int p0, int p1, int d, bool ceil_mode,
                          const char *axis) {
    int64_t span = (int64_t)d * (k - 1) + 1;
    int64_t padded = in + p0 + p1;
    if (k < 1 || s < 1 || d < 1 || p0 < 0 || p1 < 0) {
        diag_error(n->span, "%s needs a positive kernel, stride and dilation and a non-negative pad",
                   op_name(n->op));
        return -1;
    }
    if (span > padded) {
        diag_error(n->span, "%s window %lld is wider than its padded input (%s %lld)", op_name(n->op),
                   (long long)span, axis, (long long)padded);
        return -1;
    }
    int64_t o = ceil_mode ? (padded - span + s - 1) / s + 1 : (padded - span) / s + 1;
    /* PyTorch: in ceil mode the last window must start inside the input or its left pad. */
    if (ceil_mode && (o - 1) * s >= in + p0) o--;
    return o;
}

static bool rule_conv(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const Attrs *a = &n->a;
    const int64_t *x = n->in[0]->shape.d;
    if (a->groups < 1 || x[1] % a->groups || a->out % a->groups || a->out < 1) {
        diag_error(n->span, "conv groups = %d must divide both the input channels (%lld) and the output channels (%lld)",
                   a->groups, (long long)x[1], (long long)a->out);
        return false;
    }
    int64_t w[4] = {a->out, x[1] / a->groups, a->kernel[0], a->kernel[1]};
    if (!want_param(n, 1, 4, w, "weight")) return false;
    if (n->nin == 3 && !want_param(n, 2, 1, &a->out, "bias")) return false;
    int64_t oh = window_out(n, x[2], a->kernel[0], a->stride[0], a->pad[0], a->pad[1], a->dilation[0], false, "height");
    if (oh < 0) return false;
    int64_t ow = window_out(n, x[3], a->kernel[1], a->stride[1], a->pad[2], a->pad[3], a->dilation[1], false, "width");
    if (ow < 0) return false;
    set_out(n, 0, 4, (int64_t[]){x[0], a->out, oh, ow});
    return true;
}

/* ConvTranspose2d: H' = (H - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1. */
static bool rule_deconv(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const Attrs *a = &n->a;
    const int64_t *x = n->in[0]->shape.d;
    if (a->groups < 1 || x[1] % a->groups || a->out % a->groups || a->out < 1) {
        diag_error(n->span, "deconv groups = %d must divide both the input channels (%lld) and the output channels (%lld)",
                   a->groups, (long long)x[1], (long long)a->out);
        return false;
    }
    int64_t w[4] = {x[1], a->out / a->groups, a->kernel[0], a->kernel[1]};
    if (!want_param(n, 1, 4, w, "weight")) return false;
    if (n->nin == 3 && !want_param(n, 2, 1, &a->out, "bias")) return false;
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
    set_out(n, 0, 4, (int64_t[]){x[0], a->out, o[0], o[1]});
    return true;
}

static bool rule_linear(Graph *g, Node *n) {
    (void)g;
    if (n->in[0]->shape.rank != 2) {
        char b[128];
        diag_error(n->span, "linear expects a flat [D] input, got %s (flatten it first)",
                   value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    const int64_t *x = n->in[0]->shape.d;
    if (n->a.out < 1) {
        diag_error(n->span, "linear needs at least one output feature, got %lld", (long long)n->a.out);
        return false;
    }
    if (!want_param(n, 1, 2, (int64_t[]){n->a.out, x[1]}, "weight")) return false;
    if (n->nin == 3 && !want_param(n, 2, 1, &n->a.out, "bias")) return false;
    set_out(n, 0, 2, (int64_t[]){x[0], n->a.out});
    return true;
}

static bool rule_batchnorm(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if (x->rank != 4 && x->rank != 2) {
        char b[128];
        diag_error(n->span, "batchnorm expects a [C, H, W] or [D] input, got %s", value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    static const char *names[] = {"", "weight", "bias", "running_mean", "running_var"};
    for (int i = 1; i < 5; i++)
        if (!want_param(n, i, 1, &x->d[1], names[i])) return false;
    n->out[0]->shape = *x;
    return true;
}

/* layernorm: weight and bias shaped like one sample. */
static bool rule_layernorm(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if (x->rank < 2 || n->nin == 2) {
        DIAG_INTERNAL("layernorm needs [N, ...] and both or neither of weight and bias");
        return false;
    }
    for (int i = 1; i < n->nin; i++)
        if (!want_param(n, i, x->rank - 1, x->d + 1, i == 1 ? "weight" : "bias")) return false;
    n->out[0]->shape = *x;
    return true;
}

static bool rule_instancenorm(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    if (n->nin == 2) {
        DIAG_INTERNAL("instancenorm needs both or neither of weight and bias");
        return false;
    }
    for (int i = 1; i < n->nin; i++)
        if (!want_param(n, i, 1, &n->in[0]->shape.d[1], i == 1 ? "weight" : "bias")) return false;
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

static bool rule_lrn(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    if (n->a.size < 1) {
        diag_error(n->span, "lrn's size must be at least 1, got %d", n->a.size);
        return false;
    }
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

static bool rule_same(Graph *g, Node *n) {
    (void)g;
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

static bool rule_pool(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const Attrs *a = &n->a;
    const int64_t *x = n->in[0]->shape.d;
    if (2 * a->pad[0] > a->kernel[0] || 2 * a->pad[2] > a->kernel[1]) {
        diag_error(n->span, "%s pad (%d) must be at most half the kernel (%d)", op_name(n->op), a->pad[0],
                   a->kernel[0]);
        return false;
    }
    int64_t oh = window_out(n, x[2], a->kernel[0], a->stride[0], a->pad[0], a->pad[1], 1, a->ceil, "height");
    if (oh < 0) return false;
    int64_t ow = window_out(n, x[3], a->kernel[1], a->stride[1], a->pad[2], a->pad[3], 1, a->ceil, "width");
    if (ow < 0) return false;
    set_out(n, 0, 4, (int64_t[]){x[0], x[1], oh, ow});
    return true;
}

static bool rule_pool_idx(Graph *g, Node *n) {
    if (!rule_pool(g, n)) return false;
    n->out[1]->shape = n->out[0]->shape;
    return true;
}

static bool rule_unpool(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
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
    set_out(n, 0, 4, (int64_t[]){x[0], x[1], like->d[2], like->d[3]});
    return true;
}

static bool rule_upsample(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const Attrs *a = &n->a;
    if (a->osize[0] < 1 || a->osize[1] < 1 || !(a->scale[0] > 0) || !(a->scale[1] > 0) ||
        (a->mode != UPSAMPLE_NEAREST && a->mode != UPSAMPLE_BILINEAR)) {
        diag_error(n->span, "upsample needs an output of at least 1x1 and a known mode");
        return false;
    }
    const int64_t *x = n->in[0]->shape.d;
    set_out(n, 0, 4, (int64_t[]){x[0], x[1], a->osize[0], a->osize[1]});
    return true;
}

static bool rule_yolo_decode(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const Attrs *a = &n->a;
    const int64_t *x = n->in[0]->shape.d;
    if (a->nanchors < 1 || a->nanchors > IR_MAX_ANCHORS || a->out < 1 || a->stride[0] < 1 ||
        x[1] != a->nanchors * (5 + a->out)) {
        char b[128];
        diag_error(n->span, "yolo_decode of %s with %d anchors and %lld classes needs %lld channels (anchors * (5 + classes))",
                   value_sample_str(n->in[0], b, sizeof b), a->nanchors, (long long)a->out,
                   (long long)(a->nanchors * (5 + a->out)));
        return false;
    }
    set_out(n, 0, 3, (int64_t[]){x[0], a->nanchors * x[2] * x[3], 5 + a->out});
    return true;
}

static bool rule_nms(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if (x->rank != 3 || x->d[2] < 6) {
        char b[128];
        diag_error(n->span, "nms expects boxes [D, 5 + classes] (as yolo_decode gives), got %s",
                   value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    if (n->a.out < 1) {
        diag_error(n->span, "nms needs to keep at least one box, got %lld", (long long)n->a.out);
        return false;
    }
    set_out(n, 0, 3, (int64_t[]){x->d[0], n->a.out, 6});
    return true;
}

static bool rule_global_pool(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const int64_t *x = n->in[0]->shape.d;
    set_out(n, 0, 4, (int64_t[]){x[0], x[1], 1, 1});
    return true;
}

static bool rule_adaptive_pool(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const int64_t *x = n->in[0]->shape.d, *o = n->a.osize;
    if (o[0] < 1 || o[1] < 1) {
        diag_error(n->span, "%s needs an output size of at least 1x1, got %lldx%lld", op_name(n->op), (long long)o[0],
                   (long long)o[1]);
        return false;
    }
    set_out(n, 0, 4, (int64_t[]){x[0], x[1], o[0], o[1]});
    return true;
}

static bool rule_flatten(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    set_out(n, 0, 2, (int64_t[]){x->d[0], shape_numel(x) / x->d[0]});
    return true;
}

static bool rule_softmax(Graph *g, Node *n) {
    (void)g;
    int r = n->in[0]->shape.rank;
    if (r != 2 && r != 4) {
        char b[128];
        diag_error(n->span, "%s expects a [C, H, W] or [D] input, got %s", op_name(n->op),
                   value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

/* b broadcasts against a per channel: [N, C, 1, 1] or [N, C] against [N, C, H, W]. */
static bool broadcasts(const Shape *a, const Shape *b) {
    if (a->rank != 4 || b->d[0] != a->d[0] || b->d[1] != a->d[1]) return false;
    if (b->rank == 4) return b->d[2] == 1 && b->d[3] == 1;
    return b->rank == 2;
}

static bool rule_binary(Graph *g, Node *n) {
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
static bool rule_concat(Graph *g, Node *n) {
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

static bool rule_slice(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    char b[128];
    if (x->rank < 2) {
        diag_error(n->span, "slice expects a [C, H, W] or [D] input, got %s", value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    if (n->a.start < 0 || n->a.end > x->d[1] || n->a.start >= n->a.end) {
        diag_error(n->span, "slice [%lld, %lld) is out of range of the %lld channels of %s (0 <= start < end <= %lld)",
                   (long long)n->a.start, (long long)n->a.end, (long long)x->d[1],
                   value_sample_str(n->in[0], b, sizeof b), (long long)x->d[1]);
        return false;
    }
    Shape y = *x;
    y.d[1] = n->a.end - n->a.start;
    n->out[0]->shape = y;
    return true;
}

static bool rule_channel_shuffle(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    char b[128];
    if (x->rank < 2) {
        diag_error(n->span, "channel_shuffle expects a [C, H, W] input, got %s", value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    if (n->a.groups < 1 || x->d[1] % n->a.groups) {
        diag_error(n->span, "channel_shuffle groups = %d must divide the channels (%lld) of %s", n->a.groups,
                   (long long)x->d[1], value_sample_str(n->in[0], b, sizeof b));
        return false;
    }
    n->out[0]->shape = *x;
    return true;
}

static bool rule_reshape(Graph *g, Node *n) {
    (void)g;
    const Shape *x = &n->in[0]->shape;
    if (n->a.ndims < 1 || n->a.ndims >= IR_MAX_RANK) {
        diag_error(n->span, "reshape needs 1 to %d sizes, got %d", IR_MAX_RANK - 1, n->a.ndims);
        return false;
    }
    Shape y = {.rank = n->a.ndims + 1};
    y.d[0] = x->d[0];
    for (int i = 0; i < n->a.ndims; i++) y.d[i + 1] = n->a.dims[i];
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

static bool rule_pad(Graph *g, Node *n) {
    (void)g;
    if (!want_rank(n, 0, 4, "[C, H, W]")) return false;
    const int *p = n->a.pad;
    if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0) {
        diag_error(n->span, "pad needs non-negative pads, got [%d, %d, %d, %d]", p[0], p[1], p[2], p[3]);
        return false;
    }
    const int64_t *x = n->in[0]->shape.d;
    set_out(n, 0, 4, (int64_t[]){x[0], x[1], x[2] + p[0] + p[1], x[3] + p[2] + p[3]});
    return true;
}

static bool rule_bn_fold(Graph *g, Node *n) {
    (void)g;
    const Shape *w = &n->in[0]->shape;
    n->out[0]->shape = *w;
    set_out(n, 1, 1, &w->d[0]);
    return true;
}


/* ---- training ops: their shapes follow from the forward op they undo ---------- */

/* Output i takes the shape of input j. */
static bool like(Node *n, int i, int j) {
    n->out[i]->shape = n->in[j]->shape;
    return true;
}

static bool rule_dx_like_in1(Graph *g, Node *n) { (void)g; return like(n, 0, 1); }
static bool rule_dx_like_in2(Graph *g, Node *n) { (void)g; return like(n, 0, 2); }
static bool rule_dy_same(Graph *g, Node *n) {
    (void)g;
    if (!shape_eq(&n->in[0]->shape, &n->in[1]->shape)) {
        char b1[128], b2[128];
        diag_error(n->span, "%s: the gradient %s and the value %s differ in shape", op_name(n->op),
                   shape_str(&n->in[0]->shape, b1, sizeof b1), shape_str(&n->in[1]->shape, b2, sizeof b2));
        return false;
    }
    return like(n, 0, 1);
}

static bool rule_batchnorm_train(Graph *g, Node *n) {
    if (!rule_batchnorm(g, n)) return false;
    set_out(n, 1, 1, &n->in[0]->shape.d[1]);
    set_out(n, 2, 1, &n->in[0]->shape.d[1]);
    return true;
}

static bool rule_batchnorm_grad(Graph *g, Node *n) {
    (void)g;
    like(n, 0, 1);
    like(n, 1, 2);
    return like(n, 2, 2);
}

static bool rule_linear_grad_weight(Graph *g, Node *n) {
    (void)g;
    set_out(n, 0, 2, (int64_t[]){n->in[0]->shape.d[1], n->in[1]->shape.d[1]});
    return true;
}

static bool rule_linear_grad_input(Graph *g, Node *n) {
    (void)g;
    set_out(n, 0, 2, (int64_t[]){n->in[0]->shape.d[0], n->in[1]->shape.d[1]});
    return true;
}

static bool rule_bias_grad(Graph *g, Node *n) {
    (void)g;
    set_out(n, 0, 1, &n->in[0]->shape.d[1]);
    return true;
}

static bool rule_scalar(Graph *g, Node *n) {
    (void)g;
    if (n->in[0]->shape.rank != 2 || n->in[1]->shape.rank != 1 || n->in[1]->shape.d[0] != n->in[0]->shape.d[0]) {
        char b1[128], b2[128];
        diag_error(n->span, "the loss needs logits [N, K] and labels [N], got %s and %s",
                   shape_str(&n->in[0]->shape, b1, sizeof b1), shape_str(&n->in[1]->shape, b2, sizeof b2));
        return false;
    }
    if (n->op == OP_XENT_GRAD) return like(n, 0, 0);
    set_out(n, 0, 1, (int64_t[]){1});
    return true;
}

static bool rule_none(Graph *g, Node *n) {
    (void)g;
    (void)n;
    return true;
}

static const ShapeRule rules[OP_COUNT] = {
    [OP_CONV] = rule_conv,
    [OP_LINEAR] = rule_linear,
    [OP_BATCHNORM] = rule_batchnorm,
    [OP_RELU] = rule_same,
    [OP_TANH] = rule_same,
    [OP_SIGMOID] = rule_same,
    [OP_MAXPOOL] = rule_pool,
    [OP_AVGPOOL] = rule_pool,
    [OP_GLOBAL_AVGPOOL] = rule_global_pool,
    [OP_FLATTEN] = rule_flatten,
    [OP_SOFTMAX] = rule_softmax,
    [OP_ADD] = rule_binary,
    [OP_MUL] = rule_binary,
    [OP_RELU6] = rule_same,
    [OP_LEAKY_RELU] = rule_same,
    [OP_ELU] = rule_same,
    [OP_SILU] = rule_same,
    [OP_GELU] = rule_same,
    [OP_HARDSIGMOID] = rule_same,
    [OP_HARDSWISH] = rule_same,
    [OP_LOG_SOFTMAX] = rule_softmax,
    [OP_DROPOUT] = rule_same,
    [OP_CONCAT] = rule_concat,
    [OP_SLICE] = rule_slice,
    [OP_CHANNEL_SHUFFLE] = rule_channel_shuffle,
    [OP_RESHAPE] = rule_reshape,
    [OP_PAD] = rule_pad,
    [OP_GLOBAL_MAXPOOL] = rule_global_pool,
    [OP_ADAPTIVE_AVGPOOL] = rule_adaptive_pool,
    [OP_DECONV] = rule_deconv,
    [OP_LAYERNORM] = rule_layernorm,
    [OP_INSTANCENORM] = rule_instancenorm,
    [OP_LRN] = rule_lrn,
    [OP_UPSAMPLE] = rule_upsample,
    [OP_MAXPOOL_IDX] = rule_pool_idx,
    [OP_UNPOOL] = rule_unpool,
    [OP_YOLO_DECODE] = rule_yolo_decode,
    [OP_NMS] = rule_nms,
    [OP_BN_FOLD] = rule_bn_fold,
    [OP_BATCHNORM_TRAIN] = rule_batchnorm_train,
    [OP_BATCHNORM_GRAD] = rule_batchnorm_grad,
    [OP_CONV_GRAD_INPUT] = rule_dx_like_in2,
    [OP_CONV_GRAD_WEIGHT] = rule_dx_like_in2,
    [OP_LINEAR_GRAD_INPUT] = rule_linear_grad_input,
    [OP_LINEAR_GRAD_WEIGHT] = rule_linear_grad_weight,
    [OP_BIAS_GRAD] = rule_bias_grad,
    [OP_RELU_GRAD] = rule_dy_same,
    [OP_TANH_GRAD] = rule_dy_same,
    [OP_SIGMOID_GRAD] = rule_dy_same,
    [OP_SOFTMAX_GRAD] = rule_dy_same,
    [OP_MAXPOOL_GRAD] = rule_dx_like_in1,
    [OP_AVGPOOL_GRAD] = rule_dx_like_in1,
    [OP_GLOBAL_AVGPOOL_GRAD] = rule_dx_like_in1,
    [OP_RESHAPE_GRAD] = rule_dx_like_in1,
    [OP_REDUCE_LIKE] = rule_dx_like_in1,
    [OP_XENT_LOSS] = rule_scalar,
    [OP_XENT_GRAD] = rule_scalar,
    [OP_SGD_UPDATE] = rule_none,
};
_Static_assert(sizeof rules / sizeof rules[0] == OP_COUNT, "a shape rule per op");

bool shape_check_size(const Shape *s, int64_t batch, Span sp, const char *what) {
    int64_t total = 1;
    bool over = false;
    for (int i = 0; i < s->rank; i++)
        if (__builtin_mul_overflow(total, s->d[i], &total)) over = true;
    if (!over && total <= IR_MAX_ELEMENTS) return true;
    Shape sample = *s;
    if (batch > 0 && sample.rank > 0) {
        sample.rank--;
        memmove(sample.d, sample.d + 1, sizeof sample.d[0] * (size_t)sample.rank);
    }
    char b[160], count[64], at[64] = "";
    shape_str(&sample, b, sizeof b);
    if (over) snprintf(count, sizeof count, "more than %lld", (long long)INT64_MAX);
    else snprintf(count, sizeof count, "%lld", (long long)total);
    if (batch > 1) snprintf(at, sizeof at, " at batch %lld", (long long)batch);
    diag_error(sp, "%s %s has %s elements%s; a tensor may have at most %lld", what, b, count, at,
               (long long)IR_MAX_ELEMENTS);
    return false;
}

bool shape_infer(Graph *g, Node *n) {
    if (n->nin < op_info[n->op].min_inputs || n->nin > op_info[n->op].max_inputs) {
        diag_error(n->span, "%s takes %d to %d inputs, got %d", op_name(n->op), op_info[n->op].min_inputs,
                   op_info[n->op].max_inputs, n->nin);
        return false;
    }
    if (!rules[n->op](g, n)) return false;
    for (int i = 0; i < n->nout; i++) {
        const Value *v = n->out[i];
        char what[96];
        snprintf(what, sizeof what, "%s's output", op_name(n->op));
        if (!shape_check_size(&v->shape, v->kind == V_ACT ? v->shape.d[0] : 0, n->span, what)) return false;
    }
    return true;
}
