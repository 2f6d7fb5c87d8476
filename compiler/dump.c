/* The IR as text, for `netc dump` and the lit tests.
 *
 *   graph lenet5 batch=1
 *     input  %0 image [1, 1, 28, 28]
 *     param  %1 conv0.weight [6, 1, 5, 5] init=xavier
 *     %3 = conv "conv0" (%0, %1, %2) out=6 kernel=5x5 stride=1x1 pad=2,2,2,2 -> [1, 6, 28, 28]   # lenet5.net:4
 *     output logits = %20
 */
#include "ir.h"

static const char *kind_names[] = {"input", "param", "derived", "act", "state"};
static const char *phase_names[] = {"", " [grad]", " [update]"};
static const char *init_names[] = {"none", "zero", "one", "xavier", "he"};

static void dump_attrs(const Node *n, FILE *f) {
    const Attrs *a = &n->a;
    switch (n->op) {
    case OP_DECONV:
        fprintf(f, " output_pad=%dx%d", a->output_pad[0], a->output_pad[1]);
        /* fall through */
    case OP_CONV:
    case OP_CONV_GRAD_INPUT:
    case OP_CONV_GRAD_WEIGHT:
        fprintf(f, " out=%lld kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d dilation=%dx%d groups=%d%s", (long long)a->out,
                a->kernel[0], a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3],
                a->dilation[0], a->dilation[1], a->groups, a->bias ? "" : " nobias");
        break;
    case OP_LINEAR: fprintf(f, " out=%lld%s", (long long)a->out, a->bias ? "" : " nobias"); break;
    case OP_BATCHNORM:
    case OP_BATCHNORM_TRAIN:
    case OP_BATCHNORM_GRAD:
    case OP_BN_FOLD: fprintf(f, " eps=%g", a->eps); break;
    case OP_MAXPOOL_IDX:
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_MAXPOOL_GRAD:
    case OP_AVGPOOL_GRAD:
        fprintf(f, " kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d%s", a->kernel[0], a->kernel[1], a->stride[0],
                a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3], a->ceil ? " ceil" : "");
        if ((n->op == OP_AVGPOOL || n->op == OP_AVGPOOL_GRAD) && !a->count_pad) fprintf(f, " nocountpad");
        break;
    case OP_ADAPTIVE_AVGPOOL: fprintf(f, " size=%lldx%lld", (long long)a->osize[0], (long long)a->osize[1]); break;
    case OP_CONCAT: break;
    case OP_SLICE: fprintf(f, " start=%lld end=%lld", (long long)a->start, (long long)a->end); break;
    case OP_CHANNEL_SHUFFLE: fprintf(f, " groups=%d", a->groups); break;
    case OP_PAD: fprintf(f, " pad=%d,%d,%d,%d", a->pad[0], a->pad[1], a->pad[2], a->pad[3]); break;
    case OP_UPSAMPLE:
        fprintf(f, " %s size=%lldx%lld", a->mode == UPSAMPLE_BILINEAR ? "bilinear" : "nearest", (long long)a->osize[0],
                (long long)a->osize[1]);
        break;
    case OP_YOLO_DECODE: fprintf(f, " classes=%lld stride=%d anchors=%d", (long long)a->out, a->stride[0], a->nanchors); break;
    case OP_NMS: fprintf(f, " iou=%g score=%g max=%lld", a->alpha, a->beta, (long long)a->out); break;
    case OP_LAYERNORM:
    case OP_INSTANCENORM: fprintf(f, " eps=%g%s", a->eps, a->bias ? "" : " noaffine"); break;
    case OP_LRN: fprintf(f, " size=%d alpha=%g beta=%g k=%g", a->size, a->alpha, a->beta, a->k); break;
    case OP_LEAKY_RELU: fprintf(f, " slope=%g", a->alpha); break;
    case OP_ELU: fprintf(f, " alpha=%g", a->alpha); break;
    case OP_DROPOUT: fprintf(f, " p=%g", a->alpha); break;
    default: break;
    }
}

void graph_dump(Graph *g, FILE *f) {
    char b[160];
    fprintf(f, "graph %s batch=%d\n", g->name, g->batch);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_INPUT && v->kind != V_PARAM && v->kind != V_STATE) continue;
        fprintf(f, "  %-6s %%%d %s %s", kind_names[v->kind], v->id, v->name, shape_str(&v->shape, b, sizeof b));
        if (v->kind == V_PARAM) fprintf(f, " init=%s", init_names[v->init]);
        fprintf(f, "\n");
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        fprintf(f, "  ");
        for (int j = 0; j < n->nout; j++) fprintf(f, "%s%%%d", j ? ", " : "", n->out[j]->id);
        fprintf(f, "%s%s \"%s\" (", n->nout ? " = " : "", op_name(n->op), n->name);
        for (int j = 0; j < n->nin; j++) fprintf(f, "%s%%%d", j ? ", " : "", n->in[j]->id);
        fprintf(f, ")");
        dump_attrs(n, f);
        fprintf(f, "%s ->", phase_names[n->phase]);
        for (int j = 0; j < n->nout; j++)
            fprintf(f, "%s %s", j ? "," : "", shape_str(&n->out[j]->shape, b, sizeof b));
        if (g->src) {
            int line, col;
            source_line_col(g->src, n->span.begin, &line, &col);
            fprintf(f, "  # line %d%s\n", line, op_has(n->op, F_INIT) ? " (init)" : "");
        } else {
            fprintf(f, "\n");
        }
    }
    if (g->loss) fprintf(f, "  loss = %%%d\n", g->loss->id);
    for (int i = 0; i < g->noutputs; i++)
        fprintf(f, "  output %s = %%%d %s\n", g->outputs[i].name, g->outputs[i].v->id,
                shape_str(&g->outputs[i].v->shape, b, sizeof b));
}
