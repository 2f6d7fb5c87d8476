/* The autodiff pass: the structure of the training graph it builds.  (The
 * numbers are checked against PyTorch's gradients by the golden training
 * tests and against finite differences by netc gradcheck.) */
#include <check.h>

#include "helpers.h"
#include "passes.h"
#include "train.h"

static int count_phase(const Graph *g, Op op, Phase ph) {
    int n = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead && g->nodes[i]->op == op && g->nodes[i]->phase == ph) n++;
    return n;
}

static Graph *train_graph(const char *text, Source **src) {
    Graph *g = compile_text(text, 4, src);
    ck_assert_msg(g != NULL, "did not compile:\n%s", text);
    ck_assert(run_pipeline(g, train_pipeline, true, NULL, NULL));
    return g;
}

static const char *small_net =
    "block unit(x, c) { y = conv(x, c, 3, pad = 1, bias = false) |> batchnorm |> relu; return relu(y + x); }\n"
    "net t {\n"
    "  input image: [4, 8, 8];\n"
    "  x = unit(image, 4) |> maxpool(2);\n"
    "  x = x * (global_avgpool(x) |> sigmoid);\n"
    "  output logits = flatten(x) |> linear(10);\n"
    "}\n";

START_TEST(training_graph_structure) {
    Source *src;
    Graph *g = train_graph(small_net, &src);
    const Training *t = train_of(g);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(t->loss);
    ck_assert_ptr_nonnull(t->labels);
    ck_assert_int_eq(t->labels->shape.d[0], 4);
    ck_assert_int_eq(t->loss->shape.rank, 1);
    /* Inference keeps eval-mode batchnorm; training uses batch statistics. */
    ck_assert_int_eq(count_phase(g, OP_BATCHNORM, PHASE_RUN), 1);
    ck_assert_int_eq(count_phase(g, OP_BATCHNORM, PHASE_GRAD), 0);
    ck_assert_int_eq(count_phase(g, OP_BATCHNORM_TRAIN, PHASE_GRAD), 1);
    ck_assert_int_eq(count_phase(g, OP_BATCHNORM_GRAD, PHASE_GRAD), 1);
    ck_assert_int_eq(count_phase(g, OP_XENT_LOSS, PHASE_GRAD), 1);
    ck_assert_int_eq(count_phase(g, OP_MAXPOOL_GRAD, PHASE_GRAD), 1);
    /* The residual uses x twice (conv input and +): its gradients are summed. */
    ck_assert_int_ge(count_phase(g, OP_ADD, PHASE_GRAD), 2);
    /* The [C, 1, 1] gate of `*` gets its gradient summed over H and W. */
    ck_assert_int_eq(count_phase(g, OP_REDUCE_LIKE, PHASE_GRAD), 1);
    /* Every trainable parameter has a gradient of its shape, a velocity and an
     * update; running statistics have none. */
    Value **ps;
    int np = graph_params(g, &ps), trained = 0;
    for (int i = 0; i < np; i++) {
        Value *p = ps[i];
        bool running = strstr(p->name, "running_") != NULL;
        if (running) {
            ck_assert_ptr_null(train_grad(g, p));
            continue;
        }
        Value *grad = train_grad(g, p), *velocity = train_moment(g, p, 1);
        ck_assert_msg(grad != NULL, "no gradient for %s", p->name);
        ck_assert(shape_eq(&grad->shape, &p->shape));
        ck_assert_ptr_nonnull(velocity);
        ck_assert_int_eq(velocity->kind, V_STATE);
        trained++;
    }
    ck_assert_int_eq(trained, 5); /* conv weight, bn weight and bias, linear weight and bias */
    ck_assert_int_eq(t->nparams, trained);
    ck_assert_int_eq(count_phase(g, OP_OPTIM_UPDATE, PHASE_UPDATE), trained);
    /* No input gradient unless asked for: dce removed it. */
    ck_assert_ptr_null(train_grad(g, g->inputs[0]));
    ck_assert_int_eq(t->ninputs, 0);
    graph_free(g);
    source_free(src);
}
END_TEST

START_TEST(input_gradients_on_request) {
    Source *src;
    Graph *g = compile_text(small_net, 2, &src);
    ck_assert_ptr_nonnull(g);
    train_request(g)->input_grads = true;
    ck_assert_ptr_null(train_of(g)); /* asked for, not yet a training graph */
    ck_assert(run_pipeline(g, train_pipeline, true, NULL, NULL));
    Value *dx = train_grad(g, g->inputs[0]);
    ck_assert_ptr_nonnull(dx);
    ck_assert(shape_eq(&dx->shape, &g->inputs[0]->shape));
    ck_assert_int_eq(count_phase(g, OP_CONV_GRAD_INPUT, PHASE_GRAD), 1);
    graph_free(g);
    source_free(src);
}
END_TEST

START_TEST(frozen_parameters_get_no_update) {
    Source *src;
    Graph *g = compile_text(small_net, 2, &src);
    ck_assert_ptr_nonnull(g);
    Value *w = find_param(g, "unit0.conv0.weight");
    ck_assert_ptr_nonnull(w);
    train_freeze(g, w);
    train_freeze(g, find_param(g, "unit0.batchnorm0.weight"));
    train_freeze(g, find_param(g, "unit0.batchnorm0.bias"));
    ck_assert(run_pipeline(g, train_pipeline, true, NULL, NULL));
    ck_assert_ptr_null(train_grad(g, w));
    ck_assert_ptr_null(train_moment(g, w, 1));
    ck_assert_int_eq(count_phase(g, OP_OPTIM_UPDATE, PHASE_UPDATE), 2);
    /* Nothing needs a gradient below the frozen layers any more. */
    ck_assert_int_eq(count_phase(g, OP_CONV_GRAD_WEIGHT, PHASE_GRAD), 0);
    ck_assert_int_eq(count_phase(g, OP_BATCHNORM_GRAD, PHASE_GRAD), 0);
    graph_free(g);
    source_free(src);
}
END_TEST

static bool in_graph(const Graph *g, const Value *v) { return v && g->values[v->id] == v; }

/* The training record names values by pointer: after dce and graph_compact
 * drop values and renumber the rest, it still names the same values, and
 * they are still in the graph. */
START_TEST(the_record_survives_compaction) {
    Source *src;
    Graph *g = compile_text(small_net, 2, &src);
    ck_assert_ptr_nonnull(g);
    /* below frozen layers, autodiff leaves the gradients of activations for dce */
    train_freeze(g, find_param(g, "unit0.conv0.weight"));
    train_freeze(g, find_param(g, "unit0.batchnorm0.weight"));
    train_freeze(g, find_param(g, "unit0.batchnorm0.bias"));
    ck_assert(run_pipeline(g, "autodiff", true, NULL, NULL));
    const Training *t = train_of(g);
    ck_assert_ptr_nonnull(t);
    int nvalues = g->nvalues, np = t->nparams;
    Value *velocity = t->params[np - 1].moment1, *loss = t->loss;
    int velocity_id = velocity->id;
    ck_assert(run_pipeline(g, "dce", true, NULL, NULL));
    ck_assert_int_lt(g->nvalues, nvalues);
    ck_assert_ptr_eq(train_of(g), t);
    ck_assert_int_eq(t->nparams, np);
    ck_assert_ptr_eq(t->params[np - 1].moment1, velocity);
    ck_assert_int_lt(velocity->id, velocity_id); /* renumbered */
    ck_assert_ptr_eq(t->loss, loss);
    ck_assert(in_graph(g, t->loss) && in_graph(g, t->logits) && in_graph(g, t->labels));
    for (int i = 0; i < np; i++) {
        ck_assert(in_graph(g, t->params[i].param) && in_graph(g, t->params[i].grad));
        ck_assert(in_graph(g, t->params[i].moment1));
        ck_assert_ptr_eq(train_grad(g, t->params[i].param), t->params[i].grad);
    }
    graph_free(g);
    source_free(src);
}
END_TEST

START_TEST(the_loss_needs_class_scores) {
    Source *src;
    Graph *g = compile_text("net t { input x: [3, 4, 4]; output y = conv(x, 2, 1) |> reshape([2, 4, 2, 2]); }", 2, &src);
    ck_assert_ptr_nonnull(g);
    capture_begin();
    bool ok = run_pipeline(g, train_pipeline, true, NULL, NULL);
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_msg(strstr(msg, "test.net:1:29: error: training with cross-entropy needs the net's output to be class "
                              "scores [K] or [K, H, W], got [2, 4, 2, 2]") != NULL,
                  "%s", msg);
    graph_free(g);
    source_free(src);
}
END_TEST

START_TEST(no_folding_before_autodiff) {
    Source *src;
    Graph *g = compile_text("net t { input x: [3, 4, 4]; output y = conv(x, 2, 1) |> batchnorm |> flatten; }", 2, &src);
    ck_assert_ptr_nonnull(g);
    capture_begin();
    bool ok = run_pipeline(g, "fold_batchnorm,autodiff", true, NULL, NULL);
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_ptr_nonnull(strstr(msg, "batchnorm folding must not run before autodiff"));
    graph_free(g);
    source_free(src);
}
END_TEST

int main(void) {
    Suite *s = suite_create("autodiff");
    TCase *tc = tcase_create("autodiff");
    tcase_add_test(tc, training_graph_structure);
    tcase_add_test(tc, input_gradients_on_request);
    tcase_add_test(tc, frozen_parameters_get_no_update);
    tcase_add_test(tc, the_record_survives_compaction);
    tcase_add_test(tc, the_loss_needs_class_scores);
    tcase_add_test(tc, no_folding_before_autodiff);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
