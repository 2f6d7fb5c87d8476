/* Evaluation: an AST becomes a graph.
 *
 * Blocks are expanded inline at each call, `for` loops unrolled, `if`
 * decided, compile-time values computed and names resolved; every op call
 * adds a node (and its parameters) to the graph, with shapes inferred as it
 * goes.  See docs/language.md for the rules. */
#ifndef NETC_EVAL_H
#define NETC_EVAL_H

#include "../compiler/ir.h"
#include "ast.h"

/* Evaluates p's net with batch size `batch`.  Returns NULL after reporting
 * an error through diag_*; otherwise the caller owns the graph (graph_free). */
Graph *eval_program(const AstProgram *p, int batch);

#endif
