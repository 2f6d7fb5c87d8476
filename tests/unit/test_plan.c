/* The memory planner (compiler/plan.c): reuse where live ranges allow it,
 * none where they overlap, kept values, training graphs, and plan_check on
 * every example (inference and training) and on random nets.  The check is
 * also made here from scratch, pair by pair, so that a bug shared by the
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

static Compiled compile_piped(const char *text, int batch, bool train) {
    Compiled c;
    c.g = compile_text(text, batch, &c.src);
    ck_assert_msg(c.g != NULL, "did not compile:\n%s", text);
    ck_assert(run_pipeline(c.g, train ? train_pipeline : default_pipeline, true, NULL, NULL));
    return c;
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

/* Independent of plan_check: kept values and used arena values have regions
 * inside the arena, kept values are alone in theirs, and two shared values
 * live at one step (both ends included) never share a byte. */
static void check_pairs(Graph *g, const MemPlan *p) {
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
        if (p->kept[a->id]) ck_assert_int_le(p->off[a->id] + p->floats[a->id], p->kept_floats);
        else ck_assert_int_ge(p->off[a->id], p->kept_floats);
        for (int j = i + 1; j < g->nvalues; j++) {
            const Value *b = g->values[j];
            if (p->off[b->id] < 0 || p->floats[a->id] == 0 || p->floats[b->id] == 0) continue;
            bool together = p->kept[a->id] || p->kept[b->id] ||
                            (p->first[a->id] <= p->last[b->id] && p->first[b->id] <= p->last[a->id]);
            bool bytes = p->off[a->id] < p->off[b->id] + p->floats[b->id] &&
                         p->off[b->id] < p->off[a->id] + p->floats[a->id];
            ck_assert_msg(!(together && bytes), "%s (v%d) and %s (v%d) overlap", a->name, a->id, b->name, b->id);
        }
    }
}

/* Plans g with and without sharing and checks both. */
static MemPlan *plan_both(Graph *g) {
    MemPlan *u = plan_memory(g, false), *p = plan_memory(g, true);
    ck_assert(plan_check(g, u));
    ck_assert(plan_check(g, p));
    check_pairs(g, u);
    check_pairs(g, p);
    ck_assert_int_eq(u->arena_floats, u->unplanned_floats);
    ck_assert_int_eq(p->unplanned_floats, u->arena_floats);
    ck_assert_int_le(p->arena_floats, u->arena_floats);
    ck_assert_int_le(p->live_floats, p->arena_floats);
    return p;
}

START_TEST(chain_reuses) {
    Compiled c = compile_piped("net t { input x: [4, 8, 8]; output y = relu(x) |> sigmoid |> tanh |> relu; }", 1, false);
    MemPlan *p = plan_both(c.g);
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
    MemPlan *p = plan_both(c.g);
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
    MemPlan *p = plan_memory(c.g, true);
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
 * training. */
START_TEST(random_nets) {
    static const char *const unary[] = {"relu", "sigmoid", "tanh"};
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
            if (rand_r(&seed) % 3 == 0)
                len += snprintf(text + len, sizeof text - (size_t)len, " v%d = %s + %s;", k + 1, an, bn);
            else
                len += snprintf(text + len, sizeof text - (size_t)len, " v%d = %s(%s);", k + 1,
                                unary[rand_r(&seed) % 3], an);
        }
        len += snprintf(text + len, sizeof text - (size_t)len, " output out = linear(flatten(v%d), 3);", n);
        int side = 1 + (int)(rand_r(&seed) % (unsigned)n);
        for (int train = 0; train < 2; train++) {
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
    tcase_add_loop_test(tc, examples_plan, 0, 4);
    tcase_add_loop_test(tc, random_nets, 0, 10);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
