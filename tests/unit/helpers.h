/* Shared helpers for the Check unit tests: compile .net text to a graph and
 * capture what netc printed to stderr. */
#ifndef NETC_TEST_HELPERS_H
#define NETC_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ast.h"
#include "eval.h"
#include "ir.h"

/* stderr goes to a temporary file between capture_begin and capture_end;
 * capture_end returns what was written (static buffer). */
static int capture_saved = -1;
static FILE *capture_file;

static inline void capture_begin(void) {
    fflush(stderr);
    capture_file = tmpfile();
    capture_saved = dup(2);
    dup2(fileno(capture_file), 2);
}

static inline const char *capture_end(void) {
    static char buf[16384];
    fflush(stderr);
    dup2(capture_saved, 2);
    close(capture_saved);
    rewind(capture_file);
    size_t n = fread(buf, 1, sizeof buf - 1, capture_file);
    buf[n] = 0;
    fclose(capture_file);
    return buf;
}

/* Parses and evaluates text as "test.net"; NULL on error.  The source is
 * kept in *src for the graph's lifetime (free both). */
static inline Graph *compile_text(const char *text, int batch, Source **src) {
    diag_reset();
    *src = source_from_string("test.net", text);
    diag_set_source(*src);
    AstProgram *p = parse_program(*src);
    if (!p) return NULL;
    Graph *g = eval_program(p, batch);
    ast_free(p);
    return g;
}

/* Compiles text expecting failure; returns the messages. */
static inline const char *compile_error(const char *text) {
    Source *src;
    capture_begin();
    Graph *g = compile_text(text, 1, &src);
    const char *msg = capture_end();
    if (g) {
        graph_free(g);
        msg = "(compiled without error)";
    }
    source_free(src);
    return msg;
}

static inline int count_op(const Graph *g, Op op) {
    int n = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead && g->nodes[i]->op == op) n++;
    return n;
}

static inline Value *find_param(const Graph *g, const char *name) {
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->kind == V_PARAM && strcmp(g->values[i]->name, name) == 0) return g->values[i];
    return NULL;
}

#endif
