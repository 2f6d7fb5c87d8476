/* The IR as text, for `netc dump` and the lit tests.
 *
 *   graph lenet5 batch=1
 *     input  %0 image [1, 1, 28, 28]
 *     param  %1 conv0.weight [6, 1, 5, 5] init=xavier
 *     %3 = conv "conv0" (%0, %1, %2) out=6 kernel=5x5 stride=1x1 pad=2,2,2,2 -> [1, 6, 28, 28]   # lenet5.net:4
 *     output logits = %20
 */
#include "init.h"
#include "ir.h"
#include "train.h"

static const char *kind_names[] = {"input", "param", "derived", "act", "state"};
static const char *phase_names[] = {"", " [grad]", " [update]"};
static const char *init_names[] = {"none", "zero", "one", "xavier", "he"};

void graph_dump(Graph *g, FILE *f) {
    char b[160];
    fprintf(f, "graph %s batch=%d\n", g->name, g->batch);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_INPUT && v->kind != V_PARAM && v->kind != V_STATE) continue;
        fprintf(f, "  %-6s %%%d %s %s", kind_names[v->kind], v->id, v->name, shape_str(&v->shape, b, sizeof b));
        char d[96];
        netrt_param_init pi = init_param_desc(v);
        /* the schemes of issue 12 (initialization) with their arguments */
        if (v->kind == V_PARAM)
            fprintf(f, " init=%s", v->init <= INIT_HE ? init_names[v->init] : netrt_init_describe(&pi, d, sizeof d));
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
        if (op_rules(n->op)->dump) op_rules(n->op)->dump(n, f); /* its attributes, by name */
        fprintf(f, "%s ->", phase_names[n->phase]);
        for (int j = 0; j < n->nout; j++) {
            fprintf(f, "%s %s", j ? "," : "", shape_str(&n->out[j]->shape, b, sizeof b));
            if (n->out[j]->cblock) fprintf(f, " NCHW%dc", n->out[j]->cblock); /* stored blocked (the layout pass) */
        }
        if (g->src) {
            int line, col;
            source_line_col(g->src, n->span.begin, &line, &col);
            fprintf(f, "  # line %d%s\n", line, op_has(n->op, F_INIT) ? " (init)" : "");
        } else {
            fprintf(f, "\n");
        }
    }
    const Training *t = train_of(g);
    if (t && t->loss) fprintf(f, "  loss = %%%d\n", t->loss->id);
    for (int i = 0; i < g->noutputs; i++)
        fprintf(f, "  output %s = %%%d %s\n", g->outputs[i].name, g->outputs[i].v->id,
                shape_str(&g->outputs[i].v->shape, b, sizeof b));
}
