/* The op registry (compiler/ops.h): every op of ops.def has each of its
 * rules, or a statement of why it lacks one; its builtins are well formed
 * and their names unique; the rules it states are consistent with its row. */
#include <check.h>
#include <string.h>

#include "build.h"
#include "helpers.h"

/* A rule may be absent only with a reason: a non-empty string. */
static bool stated(const char *why) { return why && *why; }

START_TEST(every_rule_present_or_explained) {
    int missing = 0;
    for (int o = 1; o < OP_COUNT; o++) {
        const OpRules *r = op_rules((Op)o);
        const char *name = op_name((Op)o);
        ck_assert_msg(r != NULL, "op %s has no registry entry", name);
#define NEED(rule)                                                              \
    if (!r->rule) {                                                             \
        fprintf(stderr, "op %s: no %s rule, and it cannot be absent\n", name, #rule); \
        missing++;                                                              \
    }
#define NEED_OR_WHY(rule, why)                                                                  \
    if (!r->rule && !stated(r->why)) {                                                          \
        fprintf(stderr, "op %s: no %s rule, and no %s saying why\n", name, #rule, #why);        \
        missing++;                                                                              \
    }                                                                                           \
    if (r->rule && r->why) {                                                                    \
        fprintf(stderr, "op %s: has a %s rule but also says why it has none (%s)\n", name, #rule, #why); \
        missing++;                                                                              \
    }
        NEED(shape);
        NEED(emit);
        NEED(batched);
        NEED_OR_WHY(builtins, no_build);
        NEED_OR_WHY(check, no_check);
        NEED_OR_WHY(dump, no_dump);
        NEED_OR_WHY(macs, no_macs);
        NEED_OR_WHY(grad, no_grad);
#undef NEED
#undef NEED_OR_WHY
    }
    ck_assert_msg(missing == 0, "%d rules missing without a statement (see above)", missing);
}
END_TEST

START_TEST(builtins_well_formed) {
    for (int o = 1; o < OP_COUNT; o++) {
        for (const Builtin *b = op_rules((Op)o)->builtins; b && b->name; b++) {
            ck_assert_msg(b->build != NULL, "builtin %s has no builder", b->name);
            ck_assert_msg(b->args[0].name != NULL, "builtin %s has no arguments", b->name);
            ck_assert_msg(b->args[0].def == DEF_REQUIRED, "builtin %s: its input tensor must be required", b->name);
            Op found;
            ck_assert_msg(builtin_find(b->name, &found) == b && found == (Op)o,
                          "builtin name %s is defined twice", b->name);
            for (int i = 0; i < BUILD_MAX_ARGS && b->args[i].name; i++)
                for (int j = 0; j < i; j++)
                    ck_assert_msg(strcmp(b->args[i].name, b->args[j].name) != 0, "builtin %s: argument %s twice",
                                  b->name, b->args[i].name);
        }
    }
}
END_TEST

/* A rule's facts agree with the op's row: ops that write inputs in place are
 * side effects; names for each output of a multi-output op; the training
 * op of an op exists and has a gradient; a view or an op that may run in
 * place (the memory plan) has one output, computed per inference from an
 * input, and writes no input of its own. */
START_TEST(rules_agree_with_rows) {
    for (int o = 1; o < OP_COUNT; o++) {
        const OpRules *r = op_rules((Op)o);
        const OpInfo *info = &op_info[o];
        if (r->written_inputs) {
            ck_assert_msg(info->flags & F_SIDE_EFFECT, "op %s writes inputs but is not F_SIDE_EFFECT", info->name);
            ck_assert_msg(r->written_inputs >> info->max_inputs == 0, "op %s writes an input it does not have",
                          info->name);
        }
        if (r->view || r->inplace_ok) {
            ck_assert_msg(info->outputs == 1 && info->min_inputs >= 1, "op %s: a view or in-place op with %d outputs",
                          info->name, info->outputs);
            ck_assert_msg(!(info->flags & (F_INIT | F_SIDE_EFFECT)) && !r->written_inputs,
                          "op %s: a view or in-place op that runs at load time or writes an input", info->name);
            ck_assert_msg(!(r->view && r->inplace_ok), "op %s: both a view and in place", info->name);
        }
        if (r->output_names)
            for (int i = 0; i < info->outputs; i++)
                ck_assert_msg(r->output_names[i] != NULL, "op %s: output %d has no name", info->name, i);
        if (r->train_as) {
            ck_assert_msg(r->train_as > OP_NONE && r->train_as < OP_COUNT, "op %s trains as no op", info->name);
            ck_assert_msg(op_rules((Op)r->train_as)->grad != NULL, "op %s trains as %s, which has no gradient",
                          info->name, op_name((Op)r->train_as));
        }
    }
}
END_TEST

/* The registry is what the compiler uses: a net made of a sample of ops
 * dumps with each op's attributes by name. */
START_TEST(dump_names_attributes) {
    Source *src;
    Graph *g = compile_text("net t {\n"
                            "  input x: [3, 8, 8];\n"
                            "  y = conv(x, 4, 3, pad = 1) |> leaky_relu(0.2) |> maxpool(2, ceil = true);\n"
                            "  output z = y |> flatten |> linear(5, bias = false);\n"
                            "}\n",
                            1, &src);
    ck_assert_ptr_nonnull(g);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    graph_dump(g, f);
    fclose(f);
    ck_assert_msg(strstr(text, "out=4 kernel=3x3 stride=1x1 pad=1,1,1,1 dilation=1x1 groups=1"), "%s", text);
    ck_assert_msg(strstr(text, "leaky_relu \"leaky_relu0\" (%3) slope=0.2"), "%s", text);
    ck_assert_msg(strstr(text, "kernel=2x2 stride=2x2 pad=0,0,0,0 ceil"), "%s", text);
    ck_assert_msg(strstr(text, "out=5 nobias"), "%s", text);
    free(text);
    graph_free(g);
    source_free(src);
}
END_TEST

int main(void) {
    Suite *s = suite_create("registry");
    TCase *t = tcase_create("registry");
    tcase_add_test(t, every_rule_present_or_explained);
    tcase_add_test(t, builtins_well_formed);
    tcase_add_test(t, rules_agree_with_rows);
    tcase_add_test(t, dump_names_attributes);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
