/* Unit tests of the evaluator and shape inference: .net text in, graph out. */
#include <check.h>

#include "helpers.h"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* The single dimension of input x after evaluating `expr` as its size. */
static int64_t eval_int(const char *expr) {
    char text[512];
    snprintf(text, sizeof text, "net t { input x: [%s]; output y = relu(x); }", expr);
    Source *src;
    Graph *g = compile_text(text, 1, &src);
    ck_assert_msg(g != NULL, "failed to compile: %s", expr);
    int64_t d = g->inputs[0]->shape.d[1];
    graph_free(g);
    source_free(src);
    return d;
}

START_TEST(compile_time_arithmetic) {
    ck_assert_int_eq(eval_int("2 + 3 * 4"), 14);
    ck_assert_int_eq(eval_int("(2 + 3) * 4"), 20);
    ck_assert_int_eq(eval_int("-7 / 2 + 10"), 7);   /* truncates toward zero: -3 */
    ck_assert_int_eq(eval_int("-7 % 3 + 10"), 9);   /* C remainder: -1 */
    ck_assert_int_eq(eval_int("[5, 6, 7][2]"), 7);
    ck_assert_int_eq(eval_int("[[1, 2], [3, 4]][1][0]"), 3);
}
END_TEST

START_TEST(control_flow_and_scope) {
    const char *text =
        "net t {\n"
        "  input x: [2, 8, 8];\n"
        "  n = 0;\n"
        "  for i in 0..5 { if i % 2 == 0 { n = n + i; } else if i == 3 { n = n + 100; } else { n = n + 1000; } }\n"
        "  // n = 0 + 1000 + 2 + 100 + 4\n"
        "  output y = conv(x, n, 1);\n"
        "}\n";
    Source *src;
    Graph *g = compile_text(text, 1, &src);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->outputs[0].v->shape.d[1], 1106);
    graph_free(g);
    source_free(src);
}
END_TEST

START_TEST(lenet5_graph) {
    char *text = read_file(NETC_SOURCE_DIR "/examples/lenet5.net");
    ck_assert_ptr_nonnull(text);
    Source *src;
    Graph *g = compile_text(text, 4, &src);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(count_op(g, OP_CONV), 3);
    ck_assert_int_eq(count_op(g, OP_LINEAR), 2);
    ck_assert_int_eq(count_op(g, OP_TANH), 4);
    ck_assert_int_eq(count_op(g, OP_AVGPOOL), 2);
    Value *w = find_param(g, "conv2.weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->shape.d[0], 120);
    ck_assert_int_eq(w->shape.d[1], 16);
    ck_assert_ptr_nonnull(find_param(g, "linear1.bias"));
    ck_assert_int_eq(g->noutputs, 1);
    ck_assert_str_eq(g->outputs[0].name, "logits");
    ck_assert_int_eq(g->outputs[0].v->shape.rank, 2);
    ck_assert_int_eq(g->outputs[0].v->shape.d[0], 4);
    ck_assert_int_eq(g->outputs[0].v->shape.d[1], 10);
    ck_assert(graph_verify(g, "test"));
    graph_free(g);
    source_free(src);
    free(text);
}
END_TEST

START_TEST(resnet18_graph) {
    char *text = read_file(NETC_SOURCE_DIR "/examples/resnet18.net");
    ck_assert_ptr_nonnull(text);
    Source *src;
    Graph *g = compile_text(text, 1, &src);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(count_op(g, OP_CONV), 20);
    ck_assert_int_eq(count_op(g, OP_BATCHNORM), 20);
    ck_assert_int_eq(count_op(g, OP_ADD), 8);
    ck_assert_ptr_nonnull(find_param(g, "layer2.0.downsample.0.weight"));
    ck_assert_ptr_null(find_param(g, "layer1.0.downsample.0.weight"));
    Value *w = find_param(g, "layer4.1.conv2.weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->shape.d[0], 512);
    ck_assert_int_eq(g->outputs[0].v->shape.d[1], 1000);
    graph_free(g);
    source_free(src);
    free(text);
}
END_TEST

START_TEST(instance_names) {
    const char *text =
        "block unit(x, c) { y = conv(x, c, 3, pad = 1); y = conv(y, c, 1) as \"proj\"; return relu(y + x); }\n"
        "net t {\n"
        "  input x: [4, 6, 6];\n"
        "  a = conv(x, 4, 1);\n"
        "  b = conv(a, 4, 1) as \"named\";\n"
        "  c = conv(b, 4, 1);\n"
        "  d = unit(c, 4);\n"
        "  e = unit(d, 4) as \"u{1 + 1}\";\n"
        "  output y = conv(e, 4, 1) |> relu as \"last\";\n"
        "}\n";
    Source *src;
    Graph *g = compile_text(text, 1, &src);
    ck_assert_ptr_nonnull(g);
    const char *want[] = {"conv0.weight", "named.weight", "conv1.weight", "unit0.conv0.weight",
                          "unit0.proj.bias", "u2.conv0.weight", "u2.proj.weight", "conv2.weight"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(find_param(g, want[i]) != NULL, "no parameter %s", want[i]);
    Node *last = g->outputs[0].v->def;
    ck_assert_int_eq(last->op, OP_RELU);
    ck_assert_str_eq(last->name, "last");
    graph_free(g);
    source_free(src);
}
END_TEST

START_TEST(broadcast_shapes) {
    const char *text =
        "net t { input x: [4, 5, 5]; g = global_avgpool(x) |> sigmoid; output y = x * g; output z = g + x; }";
    Source *src;
    Graph *g = compile_text(text, 2, &src);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->outputs[0].v->shape.d[2], 5);
    ck_assert_int_eq(g->outputs[1].v->shape.d[3], 5);
    graph_free(g);
    source_free(src);
}
END_TEST

/* Each error case: the text and a fragment the message must contain. */
static const char *error_cases[][2] = {
    {"net t { input x: [9223372036854775807 + 1]; output y = relu(x); }", "integer overflow"},
    {"net t { input x: [3 / (2 - 2)]; output y = relu(x); }", "division by zero"},
    {"net t { input x: [[1, 2][2]]; output y = relu(x); }", "index 2 is out of range for a list of 2 elements"},
    {"net t { input x: [3, 8, 8]; output y = convolve(x, 4, 3); }", "unknown op or block 'convolve'"},
    {"net t { input x: [3, 8, 8]; output y = conv(x, 4, 3, padd = 1); }", "conv has no argument 'padd'"},
    {"net t { input x: [3, 8, 8]; output y = conv(x, 4); }", "conv needs argument 'kernel'"},
    {"net t { input x: [3, 8, 8]; output y = relu(x, 1); }", "relu takes at most 1 argument, got 2"},
    {"net t { input x: [120]; output y = conv(x, 4, 3); }", "conv expects a [C, H, W] input, got [120]"},
    {"net t { input x: [3, 8, 8]; output y = linear(x, 4); }", "linear expects a flat [D] input, got [3, 8, 8]"},
    {"net t { input x: [3, 8, 8]; input z: [4, 8, 8]; output y = x + z; }", "shapes [3, 8, 8] and [4, 8, 8]"},
    {"net t { input x: [3, 8, 8]; a = conv(x, 4, 1) as \"c\"; output y = conv(a, 4, 1) as \"c\"; }", "duplicate name 'c'"},
    {"net t { input x: [3, 8, 8]; output y = x as \"n\"; }", "'as' must follow a call"},
    {"net t { input x: [3, 4, 4]; output y = conv(x, 4, 7); }", "wider than its padded input"},
    {"block b(x) { return b(x); } net t { input x: [3]; output y = b(x); }", "blocks nest deeper than 64"},
    {"net t { input x: [3]; y = relu(x); }", "has no output"},
    {"net t { input x: [3, 8, 8]; output y = conv(x, 4, 3, groups = 2); }", "must divide both the input channels (3)"},
    {"block b(x) { y = relu(x); } net t { input x: [3]; output y = b(x); }", "ends without 'return'"},
    {"net t { input x: [3]; output y = relu(x); output y = relu(x); }", "duplicate output 'y'"},
    {"net t { input x: [3]; output y = q; }", "unknown name 'q'"},
    {"net t { input x: [3]; output y = relu(x) + 1; }", "'+' is not defined between a tensor and an int"},
    {"net t { input x: [3]; for i in 0..2000000 { } output y = relu(x); }", "loops unroll to more than"},
    {"net t { input x: [0, 3]; output y = relu(x); }", "input sizes must be positive"},
    {"block b(x, c) { return conv(x, c, 3); } net t { input x: [3]; output y = b(x, 4); }",
     "in block 'b' instantiated here"},
};

START_TEST(errors) {
    const char *text = error_cases[_i][0], *want = error_cases[_i][1];
    const char *msg = compile_error(text);
    ck_assert_msg(strstr(msg, want) != NULL, "case %d: wanted \"%s\" in:\n%s", _i, want, msg);
    ck_assert_msg(strstr(msg, "test.net:1:") != NULL || strstr(msg, "netc: error") != NULL,
                  "case %d: no location in:\n%s", _i, msg);
}
END_TEST

int main(void) {
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("eval");
    tcase_add_test(tc, compile_time_arithmetic);
    tcase_add_test(tc, control_flow_and_scope);
    tcase_add_test(tc, lenet5_graph);
    tcase_add_test(tc, resnet18_graph);
    tcase_add_test(tc, instance_names);
    tcase_add_test(tc, broadcast_shapes);
    tcase_add_loop_test(tc, errors, 0, (int)(sizeof error_cases / sizeof error_cases[0]));
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
