/* The memory planner (compiler/plan.c): reuse where live ranges allow it,
 * none where they overlap, kept values, training graphs, views and in-place
 * outputs and where they must not be made, and plan_check on every example
 * (inference and training) and on random nets.  The check is also made here
 * from scratch, pair by pair and alias by alias, so that a bug shared by the
 * planner and plan_check does not hide. */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>

#include "helpers.h"
#include "passes.h"
#include "plan.h"
#include "train.h"

typedef struct {
    Graph *g;
    Source *src;
} Compiled;

static Compiled compile_for(const char *text, int batch, bool train, const char *target) {
    Compiled c;
    c.g = compile_text(text, batch, &c.src);
    ck_assert_msg(c.g != NULL, "did not compile:\n%s", text);
    c.g->target = target_find(target);
    ck_assert(run_pipeline(c.g, train ? train_pipeline : default_pipeline, true, NULL, NULL));
    return c;
}

static Compiled compile_piped(const char *text, int batch, bool train) {
    return compile_for(text, batch, train, "generic");
}

static void done(Compiled c) {
    graph_free(c.g);
    source_free(c.src);
}

static Value *value_named(Graph *g, const char *name) {
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->kind == V_ACT && strcmp(g->values[i]->name, name) == 0) return g->values[i];
    ck_abort_msg("no activation named %s", name);
    return NULL;
}

/* The value whose region v takes (a view's input, or the input an in-place
 * output is written over), or -1; and the first of that chain. */
static int alias_of(const MemPlan *p, int id) { return p->view_of[id] >= 0 ? p->view_of[id] : p->inplace_of[id]; }
static int root_of(const MemPlan *p, int id) {
    while (alias_of(p, id) >= 0) id = alias_of(p, id);
    return id;
}
static bool derives(const MemPlan *p, int u, int w) {
    for (int a = alias_of(p, u); a >= 0; a = alias_of(p, a))
        if (a == w) return true;
    return false;
}

/* The step whose node writes v, and the last step whose node reads it (-1: none). */
static int step_writing(const MemPlan *p, const Value *v) {
    for (int s = 0; s < p->nsteps; s++)
        for (int j = 0; j < p->step[s]->nout; j++)
            if (p->step[s]->out[j] == v) return s;
    return -1;
}
static int last_read(const MemPlan *p, const Value *v) {
    int last = -1;
    for (int s = 0; s < p->nsteps; s++)
        for (int j = 0; j < p->step[s]->nin; j++)
            if (p->step[s]->in[j] == v) last = s;
    return last;
}

/* Independent of plan_check: kept values and used arena values have regions
 * inside the arena, kept values (and the values sharing their region) are
 * alone in theirs, and two shared values live at one step (both ends
 * included) never share a byte unless one takes the other's region: a view
 * (an op that may be one, of its input's size and layout) or an in-place
 * output (an op that may run in place, over an input of its shape and layout
 * that no later node reads, nor any value sharing its region, none of them
 * kept, the node reading no other value of the region). */
static void check_pairs(Graph *g, const MemPlan *p) {
    bool *gkept = calloc((size_t)p->nid + 1, 1);
    for (int i = 0; i < g->nvalues; i++)
        if (p->off[g->values[i]->id] >= 0 && p->kept[g->values[i]->id]) gkept[root_of(p, g->values[i]->id)] = true;
    for (int i = 0; i < g->nvalues; i++) {
        const Value *a = g->values[i];
        bool arena = a->kind != V_PARAM && a->kind != V_STATE;
        if (!p->used[a->id] || !arena) {
            ck_assert_int_eq(p->off[a->id], -1);
            continue;
        }
        ck_assert_int_ge(p->off[a->id], 0);
        ck_assert_int_eq(p->off[a->id] % PLAN_ALIGN_FLOATS, 0);
        ck_assert_int_le(p->off[a->id] + p->floats[a->id], p->arena_floats);
        ck_assert_int_ge(p->floats[a->id], shape_numel(&a->shape));
        if (gkept[root_of(p, a->id)]) ck_assert_int_le(p->off[a->id] + p->floats[a->id], p->kept_floats);
        else ck_assert_int_ge(p->off[a->id], p->kept_floats);
        for (int j = i + 1; j < g->nvalues; j++) {
            const Value *b = g->values[j];
            if (p->off[b->id] < 0 || p->floats[a->id] == 0 || p->floats[b->id] == 0) continue;
            if (root_of(p, a->id) == root_of(p, b->id)) {
                ck_assert_int_eq(p->off[a->id], p->off[b->id]);
                continue;
            }
            bool together = p->kept[a->id] || p->kept[b->id] ||
                            (p->first[a->id] <= p->last[b->id] && p->first[b->id] <= p->last[a->id]);
            bool bytes = p->off[a->id] < p->off[b->id] + p->floats[b->id] &&
                         p->off[b->id] < p->off[a->id] + p->floats[a->id];
            ck_assert_msg(!(together && bytes), "%s (v%d) and %s (v%d) overlap", a->name, a->id, b->name, b->id);
        }
    }
    for (int i = 0; i < g->nvalues; i++) {
        const Value *y = g->values[i];
        if (p->off[y->id] < 0 || alias_of(p, y->id) < 0) continue;
        ck_assert(p->alias);
        ck_assert(!train_of(g));
        ck_assert(p->view_of[y->id] < 0 || p->inplace_of[y->id] < 0);
        const Value *x = NULL;
        for (int k = 0; k < g->nvalues; k++)
            if (g->values[k]->id == alias_of(p, y->id)) x = g->values[k];
        ck_assert_ptr_nonnull(x);
        const Node *n = y->def;
        bool reads_x = false;
        for (int j = 0; j < n->nin; j++) reads_x |= n->in[j] == x;
        ck_assert(reads_x);
        ck_assert_int_eq(p->off[x->id], p->off[y->id]);
        ck_assert_int_eq(x->cblock, y->cblock);
        ck_assert_int_eq(value_numel(x), value_numel(y));
        if (p->view_of[y->id] >= 0) {
            ck_assert(op_rules(n->op)->view);
            ck_assert_ptr_eq(n->in[0], x);
            continue;
        }
        ck_assert(op_rules(n->op)->inplace_ok);
        ck_assert(shape_eq(&x->shape, &y->shape));
        int s = step_writing(p, y);
        for (int k = 0; k < g->nvalues; k++) {
            const Value *u = g->values[k];
            if (p->off[u->id] < 0 || u == y || root_of(p, u->id) != root_of(p, y->id) || derives(p, u->id, y->id))
                continue;
            ck_assert_msg(!p->kept[u->id], "%s (v%d), kept, is written over by %s", u->name, u->id, y->name);
            ck_assert_msg(last_read(p, u) <= s, "%s (v%d) is read after %s is written over it", u->name, u->id, y->name);
            for (int j = 0; j < n->nin; j++) ck_assert(n->in[j] == x || n->in[j] != u);
        }
        int twice = 0;
        for (int j = 0; j < n->nin; j++) twice += n->in[j] == x;
        ck_assert_int_eq(twice, 1);
    }
    free(gkept);
}

/* Plans g with and without sharing (and with sharing but no aliasing), checks
 * all three, and returns the plan asked for. */
static MemPlan *plan_all(Graph *g, bool alias) {
    MemPlan *u = plan_memory(g, false, false), *p = plan_memory(g, true, true), *q = plan_memory(g, true, false);
    ck_assert(plan_check(g, u));
    ck_assert(plan_check(g, p));
    ck_assert(plan_check(g, q));
    check_pairs(g, u);
    check_pairs(g, p);
    check_pairs(g, q);
    ck_assert_int_eq(u->arena_floats, u->unplanned_floats);
    ck_assert_int_eq(p->unplanned_floats, u->arena_floats);
    ck_assert_int_le(p->arena_floats, u->arena_floats);
    ck_assert_int_le(q->arena_floats, u->arena_floats);
    ck_assert_int_le(p->live_floats, p->arena_floats);
    ck_assert_int_le(q->live_floats, q->arena_floats);
    ck_assert_int_le(p->live_floats, q->live_floats); /* aliasing never makes more live at once */
    ck_assert_int_eq(u->nviews + u->ninplace + q->nviews + q->ninplace, 0);
    if (train_of(g)) ck_assert_int_eq(p->nviews + p->ninplace, 0);
    return alias ? p : q;
}

/* The plan with views and in place, checked. */
static MemPlan *plan_both(Graph *g) { return plan_all(g, true); }

/* Sharing without aliasing (plan_memory's alias false): on a chain, relu0's
 * region goes to tanh0 once sigmoid0 has read it. */
START_TEST(chain_reuses) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; output y = relu(x) |> sigmoid |> tanh |> relu; }", 1, false);
    MemPlan *p = plan_all(c.g, false);
    Value *r0 = value_named(c.g, "relu0"), *s0 = value_named(c.g, "sigmoid0"), *t0 = value_named(c.g, "tanh0");
    ck_assert_int_eq(p->off[r0->id], p->off[t0->id]);
    ck_assert_int_ne(p->off[r0->id], p->off[s0->id]);
    ck_assert(p->kept[c.g->inputs[0]->id]);
    ck_assert(p->kept[c.g->outputs[0].v->id]);
    ck_assert_int_eq(p->arena_floats, 4 * 256);
    ck_assert_int_eq(p->unplanned_floats, 5 * 256);
    done(c);
}
END_TEST

START_TEST(residual_skip_is_not_reused) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; a = relu(x); d = sigmoid(a) |> tanh |> relu;"
                               " output y = a + d; }",
                               2, false);
    MemPlan *p = plan_all(c.g, false);
    Value *a = value_named(c.g, "relu0");
    for (int i = 0; i < c.g->nvalues; i++) {
        Value *v = c.g->values[i];
        if (v != a && p->off[v->id] >= 0) ck_assert_int_ne(p->off[v->id], p->off[a->id]);
    }
    ck_assert_int_eq(p->off[value_named(c.g, "sigmoid0")->id], p->off[value_named(c.g, "relu1")->id]);
    done(c);
}
END_TEST

/* Derived values (folded weights, written in prepare) are kept; so is an
 * activation that is both read later and a graph output. */
START_TEST(derived_and_outputs_are_kept) {
    Compiled c = compile_piped("net t { input x: [3, 8, 8]; output a = conv(x, 4, 3, bias = false) |> batchnorm;"
                               " output b = relu(a) |> sigmoid; }",
                               1, false);
    MemPlan *p = plan_both(c.g);
    int derived = 0;
    for (int i = 0; i < c.g->nvalues; i++) {
        Value *v = c.g->values[i];
        if (v->kind != V_DERIVED || !p->used[v->id]) continue;
        derived++;
        ck_assert(p->kept[v->id]);
        ck_assert_int_lt(p->off[v->id], p->kept_floats);
    }
    ck_assert_int_eq(derived, 2);
    ck_assert_int_gt(p->derived_floats, 0);
    ck_assert(p->kept[c.g->outputs[0].v->id]);
    ck_assert(p->kept[c.g->outputs[1].v->id]);
    done(c);
}
END_TEST

/* A training graph: gradients of the parameters, the loss, the training
 * logits and the labels are kept; the eval forward (run) and the training
 * forward and backward (grad) are separate functions, whose temporaries may
 * share bytes with each other but are never read across them. */
START_TEST(training_graph) {
    Compiled c = compile_piped("net t { input x: [3, 8, 8]; y = conv(x, 4, 3) |> batchnorm |> relu |> maxpool(2);"
                               " y = conv(y, 4, 3, pad = 1) |> relu; output logits = linear(flatten(y), 5); }",
                               3, true);
    Graph *g = c.g;
    MemPlan *p = plan_both(g);
    const Training *t = train_of(g);
    ck_assert(p->kept[t->loss->id]);
    ck_assert(p->kept[t->logits->id]);
    ck_assert(p->kept[t->labels->id]);
    ck_assert_int_gt(t->nparams, 0);
    for (int i = 0; i < t->nparams; i++) ck_assert(p->kept[t->params[i].grad->id]);
    /* some run temporary and some grad temporary share a region */
    bool across = false;
    for (int i = 0; i < g->nvalues && !across; i++) {
        Value *a = g->values[i];
        if (p->off[a->id] < 0 || p->kept[a->id] || p->func[p->first[a->id]] != 1) continue;
        for (int j = 0; j < g->nvalues && !across; j++) {
            Value *b = g->values[j];
            if (p->off[b->id] >= 0 && !p->kept[b->id] && p->func[p->first[b->id]] == 2 &&
                p->off[a->id] == p->off[b->id])
                across = true;
        }
    }
    ck_assert(across);
    /* shared values are read only in the function that writes them */
    for (int s = 0; s < p->nsteps; s++)
        for (int j = 0; j < p->step[s]->nin; j++) {
            Value *v = p->step[s]->in[j];
            if (p->off[v->id] >= 0 && !p->kept[v->id]) ck_assert_int_eq(p->func[p->first[v->id]], p->func[s]);
        }
    done(c);
}
END_TEST

/* plan_check finds two live values put in one region. */
START_TEST(check_catches_overlap) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; a = relu(x); d = sigmoid(a) |> tanh |> relu;"
                               " output y = a + d; }",
                               1, false);
    MemPlan *p = plan_memory(c.g, true, false);
    p->off[value_named(c.g, "tanh0")->id] = p->off[value_named(c.g, "relu0")->id];
    capture_begin();
    bool ok = plan_check(c.g, p);
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_ptr_nonnull(strstr(msg, "memory plan"));
    done(c);
    diag_reset();
}
END_TEST

/* In place: on the same chain, sigmoid0, tanh0 and relu1 are each written
 * over the value before them, dead after it; relu0 is not written over the
 * input x.  relu1 is the net's output, so the one region is kept. */
START_TEST(inplace_chain) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; output y = relu(x) |> sigmoid |> tanh |> relu; }", 1, false);
    MemPlan *p = plan_both(c.g);
    Value *r0 = value_named(c.g, "relu0"), *s0 = value_named(c.g, "sigmoid0"), *t0 = value_named(c.g, "tanh0"),
          *r1 = value_named(c.g, "relu1"), *x = c.g->inputs[0];
    ck_assert_int_eq(p->inplace_of[r0->id], -1);
    ck_assert_int_eq(p->inplace_of[s0->id], r0->id);
    ck_assert_int_eq(p->inplace_of[t0->id], s0->id);
    ck_assert_int_eq(p->inplace_of[r1->id], t0->id);
    ck_assert_int_ne(p->off[r0->id], p->off[x->id]);
    ck_assert_int_eq(p->off[r0->id], p->off[r1->id]);
    ck_assert_int_eq(p->ninplace, 3);
    ck_assert_int_eq(p->nviews, 0);
    ck_assert_int_eq(p->arena_floats, 2 * 256);
    ck_assert_int_eq(p->kept_floats, 2 * 256);
    ck_assert_int_eq(plan_inplace(p, r1->def), 1u);
    ck_assert_int_eq(plan_inplace(p, r0->def), 0u);
    done(c);
}
END_TEST

/* Where no op may run in place: over a value read later (the residual's
 * skip), over the net's input, over a net output, over the view of an input,
 * over an operand read twice (a + a); an add of two dying values is written
 * over its first. */
START_TEST(inplace_must_not_fire) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; a = relu(x); d = sigmoid(a) |> tanh;"
                               " output y = a + d; }",
                               1, false);
    MemPlan *p = plan_both(c.g);
    Value *a = value_named(c.g, "relu0"), *s0 = value_named(c.g, "sigmoid0");
    ck_assert_int_eq(p->inplace_of[a->id], -1);
    ck_assert_int_eq(p->inplace_of[s0->id], -1);
    ck_assert_int_eq(p->inplace_of[value_named(c.g, "tanh0")->id], s0->id);
    ck_assert_int_eq(p->inplace_of[c.g->outputs[0].v->id], a->id);
    done(c);

    c = compile_piped("net t { input x: [4, 8, 8]; a = relu(x); output y = a + a; }", 1, false);
    p = plan_both(c.g);
    ck_assert_int_eq(p->ninplace, 0);
    done(c);

    c = compile_piped("net t { input x: [4, 8, 8]; output a = relu(x); output b = sigmoid(a); }", 1, false);
    p = plan_both(c.g);
    ck_assert_int_eq(p->ninplace, 0);
    ck_assert_int_ne(p->off[c.g->outputs[0].v->id], p->off[c.g->outputs[1].v->id]);
    done(c);

    c = compile_piped("net t { input x: [4, 8, 8]; f = flatten(x); output y = relu(f); }", 1, false);
    p = plan_both(c.g);
    ck_assert_int_eq(p->ninplace, 0);
    ck_assert_int_eq(p->nviews, 1);
    ck_assert_int_eq(p->off[value_named(c.g, "flatten0")->id], p->off[c.g->inputs[0]->id]);
    ck_assert_int_ne(p->off[c.g->outputs[0].v->id], p->off[c.g->inputs[0]->id]);
    done(c);
}
END_TEST

/* Views: flatten, dropout and reshape share their input's region, and run
 * no code; a view of the input, and a view that is the net's output, too.
 * A per-channel mul is written over its full-sized operand. */
START_TEST(views) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; a = relu(x); f = flatten(a) |> dropout(0.2);"
                               " r = reshape(f, [16, 16]); output y = sigmoid(r); }",
                               2, false);
    MemPlan *p = plan_both(c.g);
    Value *a = value_named(c.g, "relu0"), *f = value_named(c.g, "flatten0"), *d = value_named(c.g, "dropout0"),
          *r = value_named(c.g, "reshape0"), *y = c.g->outputs[0].v;
    ck_assert_int_eq(p->view_of[f->id], a->id);
    ck_assert_int_eq(p->view_of[d->id], f->id);
    ck_assert_int_eq(p->view_of[r->id], d->id);
    ck_assert(plan_is_view(p, f->def) && plan_is_view(p, d->def) && plan_is_view(p, r->def));
    ck_assert(!plan_is_view(p, a->def));
    ck_assert_int_eq(p->inplace_of[y->id], r->id);
    ck_assert_int_eq(p->off[a->id], p->off[y->id]);
    ck_assert_int_eq(p->nviews, 3);
    ck_assert_int_eq(p->arena_floats, 2 * 2 * 256); /* x and the one region, batch 2 */
    done(c);

    c = compile_piped("net t { input x: [4, 8, 8]; output f = flatten(x); }", 1, false);
    p = plan_both(c.g);
    ck_assert_int_eq(p->off[c.g->outputs[0].v->id], p->off[c.g->inputs[0]->id]);
    ck_assert_int_eq(p->arena_floats, 256);
    done(c);

    /* two outputs, one a view of the other: one kept region */
    c = compile_piped("net t { input x: [4, 8, 8]; output a = relu(x); output b = flatten(a); }", 1, false);
    p = plan_both(c.g);
    ck_assert_int_eq(p->off[c.g->outputs[0].v->id], p->off[c.g->outputs[1].v->id]);
    ck_assert(p->kept[c.g->outputs[0].v->id] && p->kept[c.g->outputs[1].v->id]);
    ck_assert_int_eq(p->arena_floats, 2 * 256);
    done(c);

    c = compile_piped("net t { input x: [4, 8, 8]; a = relu(x); g = global_avgpool(a) |> sigmoid;"
                      " output y = a * g; }",
                      1, false);
    p = plan_both(c.g);
    ck_assert_int_eq(p->inplace_of[c.g->outputs[0].v->id], value_named(c.g, "relu0")->id);
    done(c);
}
END_TEST

/* Blocked layouts (avx512): a flatten of a blocked conv output is a view of
 * its plain copy (from_blocked), never of the blocked value; a dropout of a
 * blocked value is a view of it, blocked alike; elu (which no conv store
 * takes) writes over the blocked sum of two conv outputs (the add fused into
 * the second conv). */
START_TEST(views_blocked) {
    Compiled c = compile_for("net t { input x: [3, 8, 8]; a = conv(x, 16, 3, pad = 1); b = conv(x, 16, 3, pad = 1);"
                             " s = (a + b) |> elu |> dropout; output y = flatten(s); }",
                             1, false, "avx512");
    MemPlan *p = plan_both(c.g);
    Value *d = value_named(c.g, "dropout0"), *y = c.g->outputs[0].v;
    ck_assert_int_eq(d->cblock, 16);
    ck_assert_int_ge(p->view_of[d->id], 0);
    ck_assert_int_eq(p->view_of[y->id], y->def->in[0]->id);
    Value *plain = y->def->in[0];
    ck_assert_int_eq(plain->def->op, OP_FROM_BLOCKED);
    ck_assert_int_eq(plain->cblock, 0);
    ck_assert_int_eq(p->view_of[plain->id], -1);
    ck_assert_int_ne(p->off[plain->id], p->off[d->id]);
    ck_assert_int_ge(p->inplace_of[value_named(c.g, "elu0")->id], 0);
    done(c);
}
END_TEST

/* A training graph keeps its copies and writes nothing in place (plan_all
 * checks that on every training graph): flatten is copied. */
START_TEST(training_no_alias) {
    Compiled c = compile_piped("net t { input x: [3, 8, 8]; y = conv(x, 4, 3) |> relu |> sigmoid;"
                               " output logits = linear(flatten(y), 5); }",
                               2, true);
    MemPlan *p = plan_both(c.g);
    ck_assert(!p->alias);
    ck_assert_int_eq(p->nviews + p->ninplace, 0);
    done(c);
}
END_TEST

/* plan_check finds an in-place write over a value read later. */
START_TEST(check_catches_inplace) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; a = relu(x); d = sigmoid(a) |> tanh;"
                               " output y = a + d; }",
                               1, false);
    MemPlan *p = plan_memory(c.g, true, true);
    Value *a = value_named(c.g, "relu0"), *s0 = value_named(c.g, "sigmoid0");
    p->inplace_of[s0->id] = a->id;
    p->off[s0->id] = p->off[a->id];
    capture_begin();
    bool ok = plan_check(c.g, p);
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_ptr_nonnull(strstr(msg, "memory plan"));
    done(c);
    diag_reset();
}
END_TEST

/* Every example (each .net file in examples/), inference and training, at batch 1 and 3;
 * an example with an op that has no gradient yet is left out of training. */
START_TEST(examples_plan) {
    bool train = _i % 2;
    int batch = _i / 2 ? 3 : 1;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/examples", NETC_SOURCE_DIR);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int planned = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".net") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        diag_reset();
        Compiled c;
        c.src = source_read(path);
        ck_assert_ptr_nonnull(c.src);
        diag_set_source(c.src);
        AstProgram *ast = parse_program(c.src);
        ck_assert_msg(ast != NULL, "%s does not parse", path);
        c.g = eval_program(ast, batch);
        ast_free(ast);
        ck_assert_msg(c.g != NULL, "%s does not compile", path);
        capture_begin();
        bool ok = run_pipeline(c.g, train ? train_pipeline : default_pipeline, false, NULL, NULL);
        capture_end();
        ck_assert_msg(ok || train, "%s: the inference pipeline fails", path);
        if (ok) {
            MemPlan *p = plan_both(c.g);
            ck_assert_int_lt(p->arena_floats, p->unplanned_floats);
            planned++;
        }
        done(c);
    }
    closedir(d);
    ck_assert_int_ge(planned, 6);
}
END_TEST

/* Random nets of same-shaped values: unary ops on earlier values, adds of
 * two earlier values (skips of any length), several outputs; inference and
 * training.  Every other seed adds views (dropout, a reshape of a flatten)
 * and per-channel gates (v * sigmoid(global_avgpool(w))), inference only
 * (they have no gradient rule yet). */
START_TEST(random_nets) {
    static const char *const unary[] = {"relu(%s)", "sigmoid(%s)", "tanh(%s)", "dropout(%s)",
                                        "reshape(flatten(%s), [2, 3, 3])"};
    bool views = _i % 2;
    unsigned seed = 12345u + (unsigned)_i;
    char text[8192];
    for (int round = 0; round < 20; round++) {
        int n = 2 + (int)(rand_r(&seed) % 25);
        int len = snprintf(text, sizeof text, "net r { input x: [2, 3, 3];");
        for (int k = 0; k < n; k++) {
            int a = (int)(rand_r(&seed) % (unsigned)(k + 1)), b = (int)(rand_r(&seed) % (unsigned)(k + 1));
            char an[16], bn[16];
            snprintf(an, sizeof an, a == 0 ? "x" : "v%d", a);
            snprintf(bn, sizeof bn, b == 0 ? "x" : "v%d", b);
            char op[64];
            unsigned kind = rand_r(&seed) % (views ? 8 : 3);
            if (kind == 0)
                len += snprintf(text + len, sizeof text - (size_t)len, " v%d = %s + %s;", k + 1, an, bn);
            else if (kind == 7)
                len += snprintf(text + len, sizeof text - (size_t)len, " v%d = %s * sigmoid(global_avgpool(%s));",
                                k + 1, an, bn);
            else {
                snprintf(op, sizeof op, unary[rand_r(&seed) % (views ? 5 : 3)], an);
                len += snprintf(text + len, sizeof text - (size_t)len, " v%d = %s;", k + 1, op);
            }
        }
        len += snprintf(text + len, sizeof text - (size_t)len, " output out = linear(flatten(v%d), 3);", n);
        int side = 1 + (int)(rand_r(&seed) % (unsigned)n);
        for (int train = 0; train < (views ? 1 : 2); train++) {
            /* training takes one output, the class scores */
            char full[8400];
            if (train)
                snprintf(full, sizeof full, "%s }", text);
            else
                snprintf(full, sizeof full, "%s output side = v%d; }", text, side);
            capture_begin(); /* warnings about values no output needs */
            Compiled c = compile_piped(full, 1 + round % 3, train);
            capture_end();
            plan_both(c.g);
            done(c);
        }
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("plan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, chain_reuses);
    tcase_add_test(tc, residual_skip_is_not_reused);
    tcase_add_test(tc, derived_and_outputs_are_kept);
    tcase_add_test(tc, training_graph);
    tcase_add_test(tc, check_catches_overlap);
    tcase_add_test(tc, inplace_chain);
    tcase_add_test(tc, inplace_must_not_fire);
    tcase_add_test(tc, views);
    tcase_add_test(tc, views_blocked);
    tcase_add_test(tc, training_no_alias);
    tcase_add_test(tc, check_catches_inplace);
    tcase_add_loop_test(tc, examples_plan, 0, 4);
    tcase_add_loop_test(tc, random_nets, 0, 10);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
