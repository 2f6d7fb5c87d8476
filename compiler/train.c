/* The training record (train.h). */
#include "train.h"

Training *train_request(Graph *g) {
    if (!g->training) g->training = arena_alloc(g->arena, sizeof *g->training);
    return g->training;
}

void train_freeze(Graph *g, Value *p) {
    Training *t = train_request(g);
    if (!train_frozen(g, p)) ARENA_PUSH(g->arena, t->frozen, t->nfrozen, t->cap_frozen, p);
}

bool train_frozen(const Graph *g, const Value *p) {
    const Training *t = g->training;
    for (int i = 0; t && i < t->nfrozen; i++)
        if (t->frozen[i] == p) return true;
    return false;
}

Training *train_begin(Graph *g) {
    Training *t = train_request(g);
    t->built = true;
    t->lossa = loss_attrs_default(); /* autodiff sets the net's */
    return t;
}

static TrainParam *find_param(const Training *t, const Value *p) {
    for (int i = 0; t && i < t->nparams; i++)
        if (t->params[i].param == p) return &t->params[i];
    return NULL;
}

static TrainInput *find_input(const Training *t, const Value *v) {
    for (int i = 0; t && i < t->ninputs; i++)
        if (t->inputs[i].input == v) return &t->inputs[i];
    return NULL;
}

/* p's record, added if it has none. */
static TrainParam *param_record(Graph *g, Value *p) {
    Training *t = train_request(g);
    TrainParam *r = find_param(t, p);
    if (r) return r;
    ARENA_PUSH(g->arena, t->params, t->nparams, t->cap_params, ((TrainParam){.param = p}));
    return &t->params[t->nparams - 1];
}

void train_set_grad(Graph *g, Value *v, Value *grad) {
    if (v->kind == V_PARAM) {
        param_record(g, v)->grad = grad;
    } else if (v->kind == V_INPUT) {
        Training *t = train_request(g);
        TrainInput *r = find_input(t, v);
        if (r)
            r->grad = grad;
        else
            ARENA_PUSH(g->arena, t->inputs, t->ninputs, t->cap_inputs, ((TrainInput){v, grad}));
    }
}

void train_set_moments(Graph *g, Value *p, Value *moment1, Value *moment2) {
    TrainParam *r = param_record(g, p);
    r->moment1 = moment1;
    r->moment2 = moment2;
}

Value *train_grad(const Graph *g, const Value *v) {
    const Training *t = train_of(g);
    if (!t) return NULL;
    if (v->kind == V_PARAM) {
        const TrainParam *r = find_param(t, v);
        return r ? r->grad : NULL;
    }
    const TrainInput *r = v->kind == V_INPUT ? find_input(t, v) : NULL;
    return r ? r->grad : NULL;
}

Value *train_moment(const Graph *g, const Value *p, int k) {
    const TrainParam *r = find_param(train_of(g), p);
    return !r ? NULL : k == 1 ? r->moment1 : r->moment2;
}

void train_replace_value(Graph *g, const Value *from, Value *to) {
    Training *t = g->training;
    if (t && t->logits == from) t->logits = to;
    for (int i = 0; t && i < t->nparams; i++)
        if (t->params[i].grad == from) t->params[i].grad = to;
    for (int i = 0; t && i < t->ninputs; i++)
        if (t->inputs[i].grad == from) t->inputs[i].grad = to;
}
