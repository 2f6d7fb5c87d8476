/* fuse_bottleneck: the expand / middle / project chains of MBConv and
 * ResNet bottleneck blocks become one bottleneck node, whose kernel runs
 * them band by band of output rows (compiler/ops/bottleneck.c).
 *
 * Requires: the layout pass (blocked convs) and fuse_epilogue (the
 *           activations and the residual add already in the convs' stores).
 * Does:     for each chain
 *               x -> conv_blocked 1x1 -> e1 -> dwconv_blocked or conv_blocked -> e2 -> conv_blocked 1x1 -> y
 *           where x is blocked, the two 1x1 convs have stride 1 and no
 *           padding, the middle conv is depthwise or of one group (any
 *           window, stride, padding and dilation), e1 and e2 are each read by
 *           one node only (once) and are not net outputs, and the chain pays
 *           (fuses(): its expanded tensors are larger than the cache can
 *           hold), the three convs become one bottleneck node in the place
 *           of the last (which may have moved down to its residual add in
 *           fuse_epilogue), with their weights, biases, activations and the
 *           projection's residual (its kernel works in a buffer of each
 *           thread's, netrt_scratch, not in the arena).  The node is named after the block: the
 *           longest common prefix of the three convs' names, up to a dot.
 * Keeps:    the values the net computes, bit for bit: each stage is its
 *           conv's loop nest on a range of rows, the same sums in the same
 *           order (any activation of fuse_epilogue's included; a 1x1
 *           whose own kernel would take two output blocks at a time runs one
 *           block at a time in its stage, each sum in the same order).  Chains it
 *           does not handle (a conv output with several readers or that is
 *           a net output, a strided or padded 1x1, a grouped middle conv
 *           that is not depthwise, a conv whose kernel takes its input
 *           channels in tiles (conv_blocked_tiled: another order of the
 *           sums), a plain input, the generic target, where there are no
 *           blocked convs) stay as they are.
 * Breaks:   nothing.
 */
#include <string.h>

#include "../passes.h"

/* When a chain pays (fuses()), as measured on MobileNetV2's and ResNet-50's
 * chains at batch 1 and 8 (AMD EPYC, Zen 5: 2 MiB of L2 per core, 32 MiB of
 * L3; docs/performance.md): its expanded tensors e1 and e2, the whole batch,
 * must be more than FUSE_MIN_BYTES, twice the L2, since below that the
 * unfused chain's intermediates come back from the cache anyway and the
 * fused kernel was up to 6% slower; and its three weights at most
 * FUSE_MAX_WEIGHT_BYTES, so that they and a band's rows fit the L2
 * together, since every band reads them again (ResNet-50's layer3 and
 * layer4 have 4.5 and 18 MiB of weights; layer2's 1.1 MiB still fit). */
#define FUSE_MIN_BYTES (4 << 20)
#define FUSE_MAX_WEIGHT_BYTES (1280 << 10) /* 1.25 MiB */


/* A 1x1 conv_blocked of stride 1 without padding. */
static bool pointwise(const Node *n) {
    const ConvAttrs *a = &n->a.conv;
    return n->op == OP_CONV_BLOCKED && a->kernel[0] == 1 && a->kernel[1] == 1 && a->stride[0] == 1 &&
           a->stride[1] == 1 && a->pad[0] == 0 && a->pad[1] == 0 && a->pad[2] == 0 && a->pad[3] == 0 &&
           a->groups == 1;
}

static int64_t bytes(const Value *v) { return 4 * value_numel(v); }

/* Whether the chain pays: its expanded tensors do not stay in the cache,
 * and its weights do. */
static bool fuses(const Node *expand, const Node *mid, const Node *project) {
    int64_t weights = bytes(expand->in[1]) + bytes(mid->in[1]) + bytes(project->in[1]);
    return bytes(expand->out[0]) + bytes(mid->out[0]) > FUSE_MIN_BYTES && weights <= FUSE_MAX_WEIGHT_BYTES;
}

/* The chain ending at the projection p, if there is one to fuse: the expansion and the middle conv. */
static bool chain(Graph *g, Node *p, Node **expand, Node **mid) {
    if (!pointwise(p)) return false;
    Node *m = p->in[0]->def;
    if (!m || m->dead || m->nin != 3 || graph_only_reader(g, p->in[0]) != p) return false;
    bool dw = m->op == OP_DWCONV_BLOCKED, dense = m->op == OP_CONV_BLOCKED && m->a.conv.groups == 1;
    if (!dw && !dense) return false;
    Node *e = m->in[0]->def;
    if (!e || e->dead || e->nin != 3 || !pointwise(e) || graph_only_reader(g, m->in[0]) != m) return false;
    int v = p->out[0]->cblock;
    if (!v || e->in[0]->cblock != v || e->out[0]->cblock != v || m->out[0]->cblock != v) return false;
    /* a conv whose input channels go in tiles sums in another order than the stage's loop nest */
    if (conv_blocked_tiled(e) || conv_blocked_tiled(m) || conv_blocked_tiled(p)) return false;
    if (!fuses(e, m, p)) return false;
    *expand = e, *mid = m;
    return true;
}

/* The longest common prefix of the three names that ends before a dot, or the first name. */
static const char *block_name(Graph *g, const Node *a, const Node *b, const Node *c) {
    size_t n = 0, dot = 0;
    while (a->name[n] && a->name[n] == b->name[n] && a->name[n] == c->name[n]) {
        if (a->name[n] == '.') dot = n;
        n++;
    }
    if (dot == 0) return a->name;
    char *s = arena_alloc(g->arena, dot + 1);
    memcpy(s, a->name, dot);
    s[dot] = '\0';
    return s;
}

static bool fuse(Graph *g, Node *e, Node *m, Node *p) {
    Attrs a = {0};
    a.bottleneck.conv[0] = e->a.conv;
    a.bottleneck.conv[1] = m->a.conv;
    a.bottleneck.conv[2] = p->a.conv;
    Value *in[8] = {e->in[0], e->in[1], e->in[2], m->in[1], m->in[2], p->in[1], p->in[2],
                    p->nin == 4 ? p->in[3] : NULL};
    Node *f = graph_add_node(g, OP_BOTTLENECK, block_name(g, e, m, p), in, p->nin == 4 ? 8 : 7, &a, e->span);
    if (!f) return false;
    graph_move_before(g, f, p);
    for (int j = 0; j < f->nout; j++) f->out[j]->cblock = p->out[0]->cblock;
    graph_replace_uses(g, p->out[0], f->out[0]);
    e->dead = m->dead = p->dead = true;
    return true;
}

PassResult pass_fuse_bottleneck(Graph *g) {
    bool changed = false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *p = g->nodes[i], *e, *m;
        if (p->dead || !chain(g, p, &e, &m)) continue;
        if (!fuse(g, e, m, p)) return PASS_FAILED;
        changed = true;
        i++; /* the bottleneck went in before p */
    }
    return changed ? PASS_CHANGED : PASS_UNCHANGED;
}
