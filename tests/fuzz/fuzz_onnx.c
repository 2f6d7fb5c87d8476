/* Fuzzes netc import (import/onnx_import.c) and, when the import succeeds,
 * compiles its .net text as the driver does (driver/import.c):
 *
 *   bytes -> onnx_import -> source_from_string -> parse_program -> eval_program
 *
 * A bad model is an expected outcome (one error printed, NULL returned).  A
 * finding is a sanitizer report, a leak, a timeout, an internal error while
 * compiling the imported text, or an import whose parameters do not match
 * the compiled net's (the weights file would not load).  The imported text
 * may still fail to compile with a user error (a pool pad netc refuses, ...):
 * the driver then reports it and writes nothing. */
#include "fuzz.h"

#include <string.h>

#include "ast.h"
#include "eval.h"
#include "onnx_import.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_silence_stderr();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    OnnxNet *net = onnx_import(data, size, "fuzz.onnx", "fuzz", "fuzz.safetensors");
    if (!net) return 0;
    FUZZ_CHECK(net->text && net->batch >= 1 && net->nparams >= 0, "onnx_import returned an incomplete net");
    for (int i = 0; i < net->nparams; i++) {
        const netrt_tensor *t = &net->params[i];
        FUZZ_CHECK(t->name && t->data && t->rank >= 1 && t->rank <= NETRT_MAX_RANK, "bad parameter");
    }
    diag_reset();
    Source *src = source_from_string("fuzz.net", net->text);
    diag_set_source(src);
    AstProgram *ast = parse_program(src);
    Graph *g = ast ? eval_program(ast, net->batch) : NULL;
    if (ast) ast_free(ast);
    FUZZ_CHECK(diag_internal_count() == 0, "internal error compiling the imported net");
    if (g) {
        Value **ps;
        int n = graph_params(g, &ps);
        FUZZ_CHECK(n == net->nparams, "the imported net's parameters differ from its weights");
        for (int i = 0; i < n; i++) {
            const netrt_tensor *t = NULL;
            for (int j = 0; j < net->nparams && !t; j++)
                if (strcmp(net->params[j].name, ps[i]->name) == 0) t = &net->params[j];
            FUZZ_CHECK(t && t->rank == ps[i]->shape.rank &&
                           memcmp(t->shape, ps[i]->shape.d, sizeof *t->shape * (size_t)t->rank) == 0,
                       "a parameter of the imported net differs from its weights");
        }
        graph_free(g);
    }
    diag_set_source(NULL);
    source_free(src);
    diag_reset();
    onnx_net_free(net);
    return 0;
}
