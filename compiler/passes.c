/* The pass manager: a table of passes and a runner for a pipeline of them. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

const Pass pass_table[] = {
    {"fold_batchnorm", pass_fold_batchnorm, "fold a batchnorm into the conv or linear before it (inference)"},
    {"dce", pass_dce, "remove nodes whose results nothing uses"},
    {"lower_depthwise", pass_lower_depthwise, "depthwise convs (groups = channels) become dwconv nodes"},
    {"layout", pass_layout, "blocked channel layouts (NCHW[V]c) and packed weights for the target's vector convs"},
    {"layout_train", pass_layout_train, "the layout pass for a training build, before autodiff: the ops whose gradients keep blocked values"},
    {"fuse_epilogue", pass_fuse_epilogue, "a residual add and an activation (relu, relu6, silu, sigmoid, hardswish, tanh, leaky_relu) into the blocked conv before them"},
    {"fuse_bottleneck", pass_fuse_bottleneck, "expand / middle / project conv chains into one kernel run by bands of rows"},
    {"autodiff", pass_autodiff, "add the training graph: loss, gradients and SGD updates"},
    {"fuse_train", pass_fuse_train, "relu into a training step's blocked batchnorm_train, and relu_grad into its batchnorm_grad"},
};
const int pass_count = sizeof pass_table / sizeof pass_table[0];
const char *const default_pipeline = "fold_batchnorm,dce,lower_depthwise,layout,fuse_epilogue,fuse_bottleneck";
const char *const train_pipeline = "layout_train,autodiff,fuse_train,fuse_epilogue,dce";

const Pass *pass_find(const char *name) {
    for (int i = 0; i < pass_count; i++)
        if (strcmp(pass_table[i].name, name) == 0) return &pass_table[i];
    return NULL;
}

bool run_pipeline(Graph *g, const char *pipeline, bool verify, const char *dump_after, FILE *dump) {
    return run_pipeline_writing(g, pipeline, verify, dump_after, graph_dump, dump);
}

bool run_pipeline_writing(Graph *g, const char *pipeline, bool verify, const char *dump_after,
                          void (*write)(Graph *g, FILE *f), FILE *dump) {
    char *list = strdup(pipeline);
    bool ok = true, dumped = dump_after == NULL;
    if (verify && !graph_verify(g, "building the graph")) ok = false;
    if (dump_after && strcmp(dump_after, "none") == 0) {
        write(g, dump);
        dumped = true;
    }
    for (char *save = NULL, *name = strtok_r(list, ",", &save); ok && name; name = strtok_r(NULL, ",", &save)) {
        if (!*name) continue;
        const Pass *p = pass_find(name);
        if (!p) {
            diag_plain_error("unknown pass '%s' (netc dump --list-passes shows them)", name);
            ok = false;
            break;
        }
        int errors = diag_error_count();
        PassResult r = p->run(g);
        bool reported = diag_error_count() > errors;
        if (r == PASS_FAILED || reported) { /* the pass rejected the graph */
            if (!reported) DIAG_INTERNAL("pass '%s' failed without reporting why", p->name);
            if (r != PASS_FAILED) DIAG_INTERNAL("pass '%s' reported an error but did not fail", p->name);
            ok = false;
            break;
        }
        graph_compact(g);
        if (verify && !graph_verify(g, p->name)) ok = false;
        if (dump_after && strcmp(dump_after, p->name) == 0) {
            write(g, dump);
            dumped = true;
        }
    }
    if (ok && !dumped) {
        diag_plain_error("--after %s: no such pass in the pipeline '%s'", dump_after, pipeline);
        ok = false;
    }
    free(list);
    return ok;
}
