#include "init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/netrt.h"

/* The only user of v, if there is exactly one. */
static Node *sole_use(Graph *g, Value *v) {
    Node *u[2];
    return graph_uses(g, v, u, 2) == 1 ? u[0] : NULL;
}

void init_choose_schemes(Graph *g) {
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || (n->op != OP_CONV && n->op != OP_LINEAR) || n->in[1]->kind != V_PARAM ||
            n->in[1]->init_given)
            continue;
        /* Through a batchnorm and a residual add (as in conv -> bn -> + -> relu). */
        Node *next = sole_use(g, n->out[0]);
        while (next && (next->op == OP_BATCHNORM || next->op == OP_ADD)) next = sole_use(g, next->out[0]);
        if (next && next->op == OP_RELU) n->in[1]->init = INIT_HE;
    }
}

_Static_assert((int)INIT_HE == (int)NETRT_INIT_HE && (int)INIT_XAVIER == (int)NETRT_INIT_XAVIER &&
                   (int)INIT_ONE == (int)NETRT_INIT_ONE && (int)INIT_ZERO == (int)NETRT_INIT_ZERO &&
                   (int)INIT_CONSTANT == (int)NETRT_INIT_CONSTANT &&
                   (int)INIT_ORTHOGONAL == (int)NETRT_INIT_ORTHOGONAL,
               "ParamInit and netrt_init_scheme agree");

void param_fans(const Shape *s, double *fan_in, double *fan_out) {
    double rf = 1;
    for (int i = 2; i < s->rank; i++) rf *= (double)s->d[i];
    *fan_in = (s->rank > 1 ? (double)s->d[1] : (double)s->d[0]) * rf;
    *fan_out = (double)s->d[0] * rf;
}

bool init_write(Graph *g, uint64_t seed, const char *path) {
    Value **ps;
    int np = graph_params(g, &ps);
    netrt_tensor *ts = calloc((size_t)np + 1, sizeof *ts);
    netrt_rng rng;
    netrt_rng_seed(&rng, seed);
    bool ok = true;
    for (int i = 0; i < np; i++) {
        Value *v = ps[i];
        int64_t n = shape_numel(&v->shape);
        float *d = malloc(sizeof *d * (size_t)(n ? n : 1));
        netrt_param_init pi = init_param_desc(v);
        netrt_init_param(&pi, &rng, d, n);
        ts[i].name = v->name;
        ts[i].rank = v->shape.rank;
        for (int r = 0; r < v->shape.rank; r++) ts[i].shape[r] = v->shape.d[r];
        ts[i].data = d;
    }
    char err[512];
    if (netrt_st_write(path, ts, np, err, sizeof err) != 0) {
        diag_plain_error("%s", err);
        ok = false;
    }
    for (int i = 0; i < np; i++) free(ts[i].data);
    free(ts);
    return ok;
}

/* ---- initialization in the language (issue 12) ------------------------------ */

const char *const init_key_names[INIT_KEY_COUNT] = {
    [INIT_KEY_CONV] = "conv", [INIT_KEY_DECONV] = "deconv", [INIT_KEY_LINEAR] = "linear",
    [INIT_KEY_WEIGHT] = "weight", [INIT_KEY_BIAS] = "bias", [INIT_KEY_RELU_BIAS] = "relu_bias",
    [INIT_KEY_GATE_BIAS] = "gate_bias",
};

bool init_needs_fans(ParamInit s) {
    return s == INIT_XAVIER || s == INIT_HE || s == INIT_XAVIER_UNIFORM || s == INIT_XAVIER_NORMAL ||
           s == INIT_KAIMING_UNIFORM || s == INIT_KAIMING_NORMAL || s == INIT_LECUN_NORMAL || s == INIT_ORTHOGONAL;
}

void init_set(Value *p, const InitChoice *c) {
    p->init = c->scheme;
    p->init_a = c->a;
    p->init_b = c->b;
    p->init_given = true;
}

/* Whether n's output reaches a ReLU, each step the only use of the last,
 * through batchnorms and residual adds (the rule of He's initialization). */
static bool feeds_relu(Graph *g, Node *n) {
    Node *next = sole_use(g, n->out[0]);
    while (next && (next->op == OP_BATCHNORM || next->op == OP_ADD)) next = sole_use(g, next->out[0]);
    return next && next->op == OP_RELU;
}

/* Whether n's output goes only into a sigmoid whose output a `*` reads (a
 * gate, as in squeeze-excitation or an LSTM's). */
static bool feeds_gate(Graph *g, Node *n) {
    Node *s = sole_use(g, n->out[0]), *u[8];
    if (!s || s->op != OP_SIGMOID) return false;
    int nu = graph_uses(g, s->out[0], u, 8);
    for (int i = 0; i < nu && i < 8; i++)
        if (u[i]->op == OP_MUL) return true;
    return false;
}

void init_apply_defaults(Graph *g, const InitChoice d[INIT_KEY_COUNT]) {
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || (n->op != OP_CONV && n->op != OP_LINEAR && n->op != OP_DECONV)) continue;
        Value *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
        InitKey own = n->op == OP_CONV ? INIT_KEY_CONV : n->op == OP_DECONV ? INIT_KEY_DECONV : INIT_KEY_LINEAR;
        if (w->kind == V_PARAM && !w->init_given) {
            if (d[own].set) init_set(w, &d[own]);
            else if (d[INIT_KEY_WEIGHT].set) init_set(w, &d[INIT_KEY_WEIGHT]);
        }
        if (b && b->kind == V_PARAM && !b->init_given) {
            if (d[INIT_KEY_GATE_BIAS].set && feeds_gate(g, n)) init_set(b, &d[INIT_KEY_GATE_BIAS]);
            else if (d[INIT_KEY_RELU_BIAS].set && feeds_relu(g, n)) init_set(b, &d[INIT_KEY_RELU_BIAS]);
            else if (d[INIT_KEY_BIAS].set) init_set(b, &d[INIT_KEY_BIAS]);
        }
    }
}

netrt_param_init init_param_desc(const Value *v) {
    netrt_param_init pi = {0};
    /* ParamInit and netrt_init_scheme list the same schemes in the same order. */
    pi.scheme = (netrt_init_scheme)v->init;
    param_fans(&v->shape, &pi.fan_in, &pi.fan_out);
    pi.a = v->init_a;
    pi.b = v->init_b;
    pi.rows = v->shape.rank ? v->shape.d[0] : 1;
    return pi;
}

/* The views and poolings the output bias passes through unchanged in softmax. */
static bool passes_bias(Op op) {
    return op == OP_LOSS || op == OP_FLATTEN || op == OP_RESHAPE || op == OP_DROPOUT || op == OP_DROPOUT_TRAIN ||
           op == OP_GLOBAL_AVGPOOL || op == OP_FROM_BLOCKED;
}

const char *init_output_bias(const Value *logits) {
    if (!logits || logits->shape.rank < 2) return NULL;
    int64_t k = logits->shape.d[1];
    const Node *n = logits->def;
    while (n && passes_bias(n->op) && n->nin >= 1) n = n->in[0]->def;
    if (!n) return NULL;
    for (int i = 1; i < n->nin; i++) {
        const Value *p = n->in[i];
        size_t len = p->name ? strlen(p->name) : 0;
        if (p->kind == V_PARAM && p->shape.rank == 1 && p->shape.d[0] == k && len > 5 &&
            strcmp(p->name + len - 5, ".bias") == 0)
            return p->name;
    }
    return NULL;
}
