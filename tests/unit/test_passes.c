/* Pass tests as before/after pairs, and cases where a pass must not fire. */
#include <check.h>

#include "helpers.h"
#include "passes.h"

typedef struct {
    Graph *g;
    Source *src;
} Compiled;

static Compiled compile_ok(const char *text) {
    Compiled c;
    c.g = compile_text(text, 2, &c.src);
    ck_assert_msg(c.g != NULL, "did not compile:\n%s", text);
    ck_assert(graph_verify(c.g, "eval"));
    return c;
}

static void done(Compiled c) {
    graph_free(c.g);
    source_free(c.src);
}

/* Runs one pass, which must not fail; whether it changed the graph. */
static bool run(Compiled c, PassResult (*pass)(Graph *)) {
    PassResult r = pass(c.g);
    ck_assert(r != PASS_FAILED);
    graph_compact(c.g);
    ck_assert(graph_verify(c.g, "test pass"));
    return r == PASS_CHANGED;
}

START_TEST(fold_conv_batchnorm) {
    Compiled c = compile_ok("net t { input x: [3, 8, 8]; y = conv(x, 4, 3, bias = false) |> batchnorm |> relu;"
                            " output z = linear(flatten(y), 5) |> batchnorm; }");
    ck_assert_int_eq(count_op(c.g, OP_BATCHNORM), 2);
    ck_assert(run(c, pass_fold_batchnorm));
    ck_assert_int_eq(count_op(c.g, OP_BATCHNORM), 0);
    ck_assert_int_eq(count_op(c.g, OP_BN_FOLD), 2);
    /* The conv now reads the folded weight and bias, computed at load time. */
    for (int i = 0; i < c.g->nnodes; i++) {
        Node *n = c.g->nodes[i];
        if (n->op != OP_CONV && n->op != OP_LINEAR) continue;
        ck_assert_int_eq(n->nin, 3);
        ck_assert_int_eq(n->in[1]->kind, V_DERIVED);
        ck_assert_int_eq(n->in[2]->kind, V_DERIVED);
        ck_assert_int_eq(n->in[1]->def->op, OP_BN_FOLD);
    }
    /* The parameters stay: the weights file does not change. */
    ck_assert_ptr_nonnull(find_param(c.g, "batchnorm0.running_var"));
    ck_assert_ptr_nonnull(find_param(c.g, "conv0.weight"));
    ck_assert(!run(c, pass_fold_batchnorm));
    done(c);
}
END_TEST

START_TEST(fold_keeps_conv_bias) {
    Compiled c = compile_ok("net t { input x: [3, 8, 8]; output y = conv(x, 4, 3) |> batchnorm; }");
    ck_assert(run(c, pass_fold_batchnorm));
    Node *fold = NULL;
    for (int i = 0; i < c.g->nnodes; i++)
        if (c.g->nodes[i]->op == OP_BN_FOLD) fold = c.g->nodes[i];
    ck_assert_ptr_nonnull(fold);
    ck_assert_int_eq(fold->nin, 6);
    ck_assert_str_eq(fold->in[1]->name, "conv0.bias");
    ck_assert_int_eq(c.g->outputs[0].v->def->op, OP_CONV);
    done(c);
}
END_TEST

/* Must not fire: a batchnorm after no conv or linear, after a conv whose
 * output is used elsewhere too, or after a conv whose output is a net output. */
static const char *no_fold[] = {
    "net t { input x: [3, 8, 8]; output y = maxpool(x, 2) |> batchnorm; }",
    "net t { input x: [3, 8, 8]; output y = batchnorm(x); }",
    "net t { input x: [3, 8, 8]; a = conv(x, 3, 1); output y = batchnorm(a) + a; }",
    "net t { input x: [3, 8, 8]; output a = conv(x, 3, 1); output y = batchnorm(a); }",
    "net t { input x: [3, 8, 8]; a = conv(x, 3, 1) |> relu; output y = batchnorm(a); }",
};

START_TEST(fold_must_not_fire) {
    Compiled c = compile_ok(no_fold[_i]);
    int before = count_op(c.g, OP_BATCHNORM);
    ck_assert_msg(!run(c, pass_fold_batchnorm), "folded in: %s", no_fold[_i]);
    ck_assert_int_eq(count_op(c.g, OP_BATCHNORM), before);
    done(c);
}
END_TEST

START_TEST(dce_removes_unused_chain) {
    Compiled c = compile_ok("net t { input x: [3, 8, 8]; u = conv(x, 4, 3) |> relu |> maxpool(2);"
                            " output y = relu(x); }");
    ck_assert_int_eq(c.g->nnodes, 4);
    ck_assert(run(c, pass_dce));
    ck_assert_int_eq(c.g->nnodes, 1);
    ck_assert_int_eq(c.g->nodes[0]->op, OP_RELU);
    ck_assert_ptr_nonnull(find_param(c.g, "conv0.weight")); /* parameters stay */
    ck_assert(!run(c, pass_dce));
    done(c);
}
END_TEST

START_TEST(dce_keeps_everything_used) {
    Compiled c = compile_ok("net t { input x: [3, 8, 8]; a = relu(x); output y = a + tanh(a); output z = a; }");
    ck_assert(!run(c, pass_dce));
    ck_assert_int_eq(c.g->nnodes, 3);
    done(c);
}
END_TEST

START_TEST(pipeline_and_unknown_pass) {
    Compiled c = compile_ok("net t { input x: [3, 8, 8]; output y = conv(x, 4, 3) |> batchnorm |> relu; }");
    ck_assert(run_pipeline(c.g, default_pipeline, true, NULL, NULL));
    ck_assert_int_eq(count_op(c.g, OP_BATCHNORM), 0);
    capture_begin();
    bool ok = run_pipeline(c.g, "dce,nonsense", true, NULL, NULL);
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_ptr_nonnull(strstr(msg, "unknown pass 'nonsense'"));
    done(c);
}
END_TEST

START_TEST(verifier_catches_bad_order) {
    Compiled c = compile_ok("net t { input x: [3, 8, 8]; output y = relu(x) |> tanh; }");
    Node *t = c.g->nodes[0];
    c.g->nodes[0] = c.g->nodes[1];
    c.g->nodes[1] = t;
    capture_begin();
    bool ok = graph_verify(c.g, "swap");
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_ptr_nonnull(strstr(msg, "used before it is defined"));
    done(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("passes");
    TCase *tc = tcase_create("passes");
    tcase_add_test(tc, fold_conv_batchnorm);
    tcase_add_test(tc, fold_keeps_conv_bias);
    tcase_add_loop_test(tc, fold_must_not_fire, 0, (int)(sizeof no_fold / sizeof no_fold[0]));
    tcase_add_test(tc, dce_removes_unused_chain);
    tcase_add_test(tc, dce_keeps_everything_used);
    tcase_add_test(tc, pipeline_and_unknown_pass);
    tcase_add_test(tc, verifier_catches_bad_order);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
