/* Passes over the graph IR and the pass manager.
 *
 * Every pass has one signature: it edits the graph in place and returns
 * PASS_CHANGED if it changed anything, PASS_UNCHANGED if not, or PASS_FAILED
 * after reporting an error (the pipeline stops there).  Each pass's file starts with a comment saying what
 * it requires, what it keeps and what it breaks. */
#ifndef NETC_PASSES_H
#define NETC_PASSES_H

#include <stdio.h>

#include "ir.h"

typedef enum { PASS_UNCHANGED, PASS_CHANGED, PASS_FAILED } PassResult;

PassResult pass_fold_batchnorm(Graph *g);
PassResult pass_dce(Graph *g);
/* Blocked channel layouts for the target's vector kernels (inference). */
PassResult pass_layout(Graph *g);
/* The same for a training build, before autodiff (passes/layout.c). */
PassResult pass_layout_train(Graph *g);
/* relu into a training step's blocked batchnorms (passes/fuse_train.c). */
PassResult pass_fuse_train(Graph *g);
/* Depthwise convs (groups = channels) become dwconv nodes (inference). */
PassResult pass_lower_depthwise(Graph *g);
/* A residual add and a relu or relu6 after a conv_blocked, into its store. */
PassResult pass_fuse_epilogue(Graph *g);
/* MBConv and ResNet bottleneck chains of three blocked convs, run band by band. */
PassResult pass_fuse_bottleneck(Graph *g);
/* Fails (after an error at the cause) if the graph cannot be trained. */
PassResult pass_autodiff(Graph *g);

typedef struct Pass {
    const char *name;
    PassResult (*run)(Graph *g);
    const char *summary;
} Pass;

extern const Pass pass_table[];
extern const int pass_count;
/* The inference pipeline, comma-separated: "fold_batchnorm,dce,lower_depthwise,layout,fuse_epilogue,fuse_bottleneck". */
extern const char *const default_pipeline;
/* The training pipeline: "layout_train,autodiff,fuse_train,fuse_epilogue,dce" (no batchnorm folding). */
extern const char *const train_pipeline;

const Pass *pass_find(const char *name);

/* Runs a comma-separated pipeline of pass names.  With verify, the verifier
 * runs after every pass.  If dump_after names a pass of the pipeline, the IR
 * is printed to dump after it.  Returns false (after a message) on an
 * unknown pass name, a pass that failed, or a verifier failure; a pass that
 * fails without reporting an error, or reports one and goes on, is an
 * internal error naming it. */
bool run_pipeline(Graph *g, const char *pipeline, bool verify, const char *dump_after, FILE *dump);
/* As run_pipeline, with `write` (graph_dump, graph_dot) writing the graph to
 * f after the pass dump_after ("none": before the first). */
bool run_pipeline_writing(Graph *g, const char *pipeline, bool verify, const char *dump_after,
                          void (*write)(Graph *g, FILE *f), FILE *f);

#endif
