/* The IR as a picture, for `netc dot`: the graph in Graphviz's DOT language.
 *
 *   digraph "lenet5" {
 *     v0 [shape=oval, label="input image\n[1, 1, 28, 28]"];
 *     n3 [label="conv \"conv0\"\nout=6 kernel=5x5 ...\nconv0.weight [6, 1, 5, 5]\n..."];
 *     v0 -> n3 [label="[1, 1, 28, 28]"];
 *     ...
 *
 * One box per node that runs with each inference or training step: its op
 * and instance name, its attributes as `netc dump` prints them (wrapped), the
 * parameters and state it reads with their shapes, and its .net line.  An
 * edge carries the value between two nodes: its shape, and its layout when
 * it is stored blocked (NCHW16c).  A node that a fusion pass made of several
 * source ops (OpRules.fused: a conv with its residual add and relu) is drawn
 * inside a cluster that names them; so are, dashed, the init-time nodes that
 * prepare its weights once (a batchnorm folded into them, their packing).
 * A training graph's optimizer updates are shaded apart.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "train.h"

enum { WRAP = 44, MAX_PARTS = 8 };

/* s, escaped for a DOT string, onto f. */
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
}

/* A node's attributes as dump prints them (" a=1 b=2"), wrapped into lines
 * of about WRAP characters; the caller frees.  NULL for none. */
static char *attr_text(const Node *n) {
    if (!op_rules(n->op)->dump) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return NULL;
    op_rules(n->op)->dump(n, m);
    fclose(m);
    const char *p = buf;
    while (*p == ' ') p++;
    if (!*p) {
        free(buf);
        return NULL;
    }
    /* break at the space before a line would pass WRAP */
    char *out = malloc(strlen(p) + 1);
    size_t k = 0, line = 0, last_space = (size_t)-1;
    for (; *p; p++) {
        out[k] = *p;
        if (*p == ' ') last_space = k;
        if (++line > WRAP && last_space != (size_t)-1) {
            out[last_space] = '\n';
            line = k - last_space;
            last_space = (size_t)-1;
        }
        k++;
    }
    out[k] = 0;
    free(buf);
    return out;
}

static bool is_init(const Node *n) { return op_has(n->op, F_INIT); }

/* The run-time node that first reads a value of init-time node i (through
 * other init-time nodes), or NULL. */
static Node *init_consumer(Graph *g, Node *i) {
    for (int j = 0; j < i->nout; j++) {
        Node *u[16];
        int nu = graph_uses(g, i->out[j], u, 16);
        for (int k = 0; k < nu && k < 16; k++) {
            if (u[k]->dead) continue;
            if (!is_init(u[k])) return u[k];
            Node *r = init_consumer(g, u[k]);
            if (r) return r;
        }
    }
    return NULL;
}

/* The parameters and state a node reads, through init-time nodes (a
 * packed weight: the parameters packed), each once, into seen[0 .. *n). */
static void find_params(const Node *n, const Value **seen, int *ns, int max, int depth) {
    for (int j = 0; j < n->nin; j++) {
        const Value *v = n->in[j];
        if (v->kind == V_PARAM || v->kind == V_STATE) {
            bool dup = false;
            for (int k = 0; k < *ns; k++) dup = dup || seen[k] == v;
            if (!dup && *ns < max) seen[(*ns)++] = v;
        } else if (v->def && is_init(v->def) && depth < 4) {
            find_params(v->def, seen, ns, max, depth + 1);
        }
    }
}

/* One "name [shape]" line per parameter a node reads. */
static void put_params(FILE *f, const Node *n) {
    char b[160];
    const Value *seen[32];
    int ns = 0;
    find_params(n, seen, &ns, 32, 0);
    for (int k = 0; k < ns; k++) {
        fputs("\\n", f);
        put_escaped(f, seen[k]->name ? seen[k]->name : "?");
        fprintf(f, " %s", shape_str(&seen[k]->shape, b, sizeof b));
    }
}

static void put_node(Graph *g, FILE *f, const Node *n, const char *indent) {
    char b[160];
    fprintf(f, "%sn%d [label=\"%s \\\"", indent, n->id, op_name(n->op));
    put_escaped(f, n->name ? n->name : "");
    fputs("\\\"", f);
    char *attrs = attr_text(n);
    if (attrs) {
        fputs("\\n", f);
        put_escaped(f, attrs);
        free(attrs);
    }
    if (is_init(n)) { /* its outputs feed the conv's weights: say what they are */
        for (int j = 0; j < n->nout; j++) fprintf(f, "%s%s", j ? ", " : "\\n-> ", shape_str(&n->out[j]->shape, b, sizeof b));
    } else {
        put_params(f, n);
    }
    if (g->src) {
        int line, col;
        source_line_col(g->src, n->span.begin, &line, &col);
        fprintf(f, "\\nline %d", line);
    }
    fputc('"', f);
    if (is_init(n)) fputs(", style=\"dashed,filled\", fillcolor=\"#f4f4f4\", fontcolor=\"#555555\"", f);
    else if (n->phase == PHASE_UPDATE) fputs(", style=filled, fillcolor=\"#ddeeff\"", f);
    fputs("];\n", f);
}

/* The edge from a value's producer (or input) to node n. */
static void put_edge(FILE *f, const Value *v, const Node *n) {
    char b[160];
    if (v->def) fprintf(f, "  n%d -> n%d", v->def->id, n->id);
    else fprintf(f, "  v%d -> n%d", v->id, n->id);
    fprintf(f, " [label=\"%s", shape_str(&v->shape, b, sizeof b));
    if (v->cblock) fprintf(f, "\\nNCHW%dc", v->cblock);
    fputs("\"", f);
    if (v->def && is_init(v->def)) fputs(", style=dashed", f);
    fputs("];\n", f);
}

void graph_dot(Graph *g, FILE *f) {
    char b[160];
    fputs("digraph \"", f);
    put_escaped(f, g->name ? g->name : "net");
    fprintf(f, "\" {\n  graph [fontname=\"Helvetica\", fontsize=11, label=\"%s, batch %d\", labelloc=t];\n",
            g->name ? g->name : "net", g->batch);
    fputs("  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\"];\n",
          f);
    /* the inputs (and a training graph's labels) that some node reads */
    bool *drawn = calloc((size_t)g->nvalues + 1, 1);
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->nin; j++) {
            Value *v = n->in[j];
            if (v->kind != V_INPUT || drawn[v->id]) continue;
            drawn[v->id] = true;
            fprintf(f, "  v%d [shape=oval, style=solid, label=\"input ", v->id);
            put_escaped(f, v->name ? v->name : "?");
            fprintf(f, "\\n%s\"];\n", shape_str(&v->shape, b, sizeof b));
        }
    }
    free(drawn);
    /* init-time nodes go into the cluster of the node they prepare weights
     * for: home[id], by node id */
    int maxid = 0;
    for (int i = 0; i < g->nnodes; i++) maxid = g->nodes[i]->id > maxid ? g->nodes[i]->id : maxid;
    Node **home = calloc((size_t)maxid + 1, sizeof *home);
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!n->dead && is_init(n)) home[n->id] = init_consumer(g, n);
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || is_init(n)) continue;
        const char *parts[MAX_PARTS];
        int np = op_rules(n->op)->fused ? op_rules(n->op)->fused(n, parts, MAX_PARTS) : 0;
        bool has_init = false;
        for (int j = 0; j <= maxid; j++) has_init = has_init || home[j] == n;
        if (np < 2 && !has_init) {
            put_node(g, f, n, "  ");
            continue;
        }
        fprintf(f, "  subgraph cluster_n%d {\n    label=\"", n->id);
        if (np >= 2) {
            fputs("fused: ", f);
            for (int k = 0; k < np; k++) fprintf(f, "%s%s", k ? " + " : "", parts[k]);
        }
        if (has_init) { /* the init-time ops, in order: a folded batchnorm, the packing */
            fputs(np >= 2 ? "\\nweights prepared once: " : "weights prepared once: ", f);
            int k = 0;
            for (int j = 0; j < g->nnodes; j++)
                if (!g->nodes[j]->dead && is_init(g->nodes[j]) && home[g->nodes[j]->id] == n)
                    fprintf(f, "%s%s", k++ ? " + " : "", op_name(g->nodes[j]->op));
        }
        fputs("\";\n    style=\"rounded,filled\"; fillcolor=\"#f5f5ff\"; color=\"#8888bb\"; fontsize=10;\n", f);
        for (int j = 0; j < g->nnodes; j++)
            if (!g->nodes[j]->dead && is_init(g->nodes[j]) && home[g->nodes[j]->id] == n) put_node(g, f, g->nodes[j], "    ");
        put_node(g, f, n, "    ");
        fputs("  }\n", f);
    }
    /* edges: activations between run-time nodes, and the init-time chains */
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || (is_init(n) && !home[n->id])) continue;
        for (int j = 0; j < n->nin; j++) {
            Value *v = n->in[j];
            bool drawn_def = v->def && !v->def->dead && (!is_init(v->def) || home[v->def->id]);
            if (v->kind == V_INPUT || drawn_def) put_edge(f, v, n);
        }
    }
    const Training *t = train_of(g);
    if (t && t->loss && t->loss->def)
        fprintf(f, "  loss [shape=oval, label=\"loss\"];\n  n%d -> loss;\n", t->loss->def->id);
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = g->outputs[i].v;
        fprintf(f, "  out%d [shape=oval, style=solid, label=\"output ", i);
        put_escaped(f, g->outputs[i].name);
        fprintf(f, "\\n%s\"];\n", shape_str(&v->shape, b, sizeof b));
        if (v->def) fprintf(f, "  n%d -> out%d;\n", v->def->id, i);
        else fprintf(f, "  v%d -> out%d;\n", v->id, i);
    }
    fputs("}\n", f);
    free(home);
}
