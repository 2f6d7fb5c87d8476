#include "init.h"

#include <math.h>
#include <stdlib.h>

#include "../runtime/netrt.h"

/* The only user of v, if there is exactly one. */
static Node *sole_use(Graph *g, Value *v) {
    Node *u[2];
    return graph_uses(g, v, u, 2) == 1 ? u[0] : NULL;
}

void init_choose_schemes(Graph *g) {
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || (n->op != OP_CONV && n->op != OP_LINEAR) || n->in[1]->kind != V_PARAM) continue;
        /* Through a batchnorm and a residual add (as in conv -> bn -> + -> relu). */
        Node *next = sole_use(g, n->out[0]);
        while (next && (next->op == OP_BATCHNORM || next->op == OP_ADD)) next = sole_use(g, next->out[0]);
        if (next && next->op == OP_RELU) n->in[1]->init = INIT_HE;
    }
}

_Static_assert((int)INIT_HE == (int)NETRT_INIT_HE && (int)INIT_XAVIER == (int)NETRT_INIT_XAVIER &&
                   (int)INIT_ONE == (int)NETRT_INIT_ONE && (int)INIT_ZERO == (int)NETRT_INIT_ZERO,
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
        double fin, fout;
        param_fans(&v->shape, &fin, &fout);
        /* ParamInit and netrt_init_scheme list the same schemes in the same order. */
        netrt_init_fill((netrt_init_scheme)v->init, fin, fout, &rng, d, n);
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
