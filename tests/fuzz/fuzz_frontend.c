/* Fuzzes the .net front end through IR verification, both pipelines and the
 * emitter:
 *
 *   bytes -> source_from_string -> parse_program -> eval_program (batch 1 or 2)
 *     -> run_pipeline(default_pipeline, verify) -> graph_dump, emit_c (inference main)
 *   and on a fresh graph from the same AST:
 *     -> run_pipeline(train_pipeline, verify) -> graph_dump, emit_c (training or
 *        gradient-check main)
 *
 * The batch size is 1 or 2 by the input's size (odd: 2), and input gradients
 * (gradcheck) are asked for when bit 1 of the size is set.
 *
 * The C goes to an in-memory stream and is thrown away.  A user error (a
 * diagnostic) is a normal outcome; a finding is a sanitizer report, a leak,
 * a timeout, or an inconsistency: a phase that fails without reporting an
 * error or succeeds after reporting one, any internal error (a verifier
 * failure among them), or emit_c failing on a verified graph. */
#include "fuzz.h"

#include <string.h>

#include "ast.h"
#include "emit.h"
#include "eval.h"
#include "init.h"
#include "passes.h"
#include "train.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_silence_stderr();
    return 0;
}

/* Runs a pipeline on g and, if it passes, emits the C.  A failure must come
 * with a reported error. */
static void compile(Graph *g, const char *pipeline, EmitMain main_kind) {
    init_choose_schemes(g);
    int errors = diag_error_count();
    if (!run_pipeline(g, pipeline, true, NULL, NULL)) {
        FUZZ_CHECK(diag_error_count() > errors, "run_pipeline failed without an error");
        FUZZ_CHECK(diag_internal_count() == 0, "run_pipeline: internal error (IR verification?)");
        return;
    }
    FUZZ_CHECK(diag_error_count() == errors, "run_pipeline succeeded after reporting an error");
    char *cbuf = NULL, *hbuf = NULL;
    size_t clen = 0, hlen = 0;
    FILE *c = open_memstream(&cbuf, &clen), *h = open_memstream(&hbuf, &hlen);
    FUZZ_CHECK(c && h, "open_memstream failed");
    graph_dump(g, c); /* netc dump */
    fclose(c);
    free(cbuf);
    c = open_memstream(&cbuf, &clen);
    FUZZ_CHECK(c && h, "open_memstream failed");
    EmitOptions eo = {.header_name = "fuzz.h", .main = main_kind};
    bool ok = emit_c(g, &eo, c, h);
    fclose(c);
    fclose(h);
    FUZZ_CHECK(ok, "emit_c failed on a verified graph");
    FUZZ_CHECK(clen > 0 && hlen > 0, "emit_c wrote nothing");
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz: %s: %zu bytes of C\n", pipeline, clen);
    free(cbuf);
    free(hbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The text stops at the first NUL, as source_from_string takes a string. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    int batch = 1 + (int)(size & 1);

    diag_reset();
    Source *src = source_from_string("fuzz.net", text);
    free(text);
    diag_set_source(src);
    AstProgram *ast = parse_program(src);
    FUZZ_CHECK(ast ? diag_error_count() == 0 : diag_error_count() > 0,
               "parse_program's result disagrees with the errors it reported");
    FUZZ_CHECK(diag_internal_count() == 0, "parse_program: internal error");
    if (ast) {
        Graph *g = eval_program(ast, batch);
        FUZZ_CHECK(g ? diag_error_count() == 0 : diag_error_count() > 0,
                   "eval_program's result disagrees with the errors it reported");
        FUZZ_CHECK(diag_internal_count() == 0, "eval_program: internal error");
        if (g) {
            compile(g, default_pipeline, EMIT_MAIN_INFER);
            graph_free(g);
            /* The training pipeline on a fresh graph, as `netc build --train`
             * or, for some inputs, `netc gradcheck` (input gradients too). */
            diag_reset();
            g = eval_program(ast, batch);
            FUZZ_CHECK(g && diag_error_count() == 0, "eval_program failed the second time");
            bool gradcheck = (size & 2) != 0;
            if (gradcheck) train_request(g)->input_grads = true;
            compile(g, train_pipeline, gradcheck ? EMIT_MAIN_GRADCHECK : EMIT_MAIN_TRAIN);
            graph_free(g);
        }
        ast_free(ast);
    }
    diag_set_source(NULL);
    source_free(src);
    return 0;
}
