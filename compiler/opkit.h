/* Everything an op's definition (compiler/ops/<family>.c) uses: the
 * registry's types (ops.h), the builders' API (build.h), the kernel writers
 * (kernel.h), and here the shape rules' helpers (shape.c) and the gradient
 * rules' API (passes/autodiff.c). */
#ifndef NETC_OPKIT_H
#define NETC_OPKIT_H

#include "build.h"
#include "ir.h"
#include "kernel.h"

/* ---- shape rules --------------------------------------------------------------
 * Messages speak in per-sample shapes (without the batch dimension), as the
 * .net source does; each helper reports at n->span and returns false. */

/* Output i gets shape rank/d. */
void shape_set_out(Node *n, int i, int rank, const int64_t *d);
/* Output i takes the shape of input j (returns true). */
bool shape_like(Node *n, int i, int j);
/* Input i has rank `rank` ("<op> expects a <what> input, got [..]"). */
bool shape_want_rank(Node *n, int i, int rank, const char *what);
/* Parameter input i has exactly shape rank/d. */
bool shape_want_param(Node *n, int i, int rank, const int64_t *d, const char *what);
/* Output size of a sliding window along an axis of size `in`; reports and
 * returns -1 if the window does not fit. */
int64_t shape_window_out(Node *n, int64_t in, int k, int s, int p0, int p1, int d, bool ceil_mode, const char *axis);
/* The rule of ops whose output has the shape of input 0. */
bool shape_same(Graph *g, Node *n);
/* The rule of the gradient ops whose output dx has the shape of input 1
 * (the forward op's input x: pooling, slice, pad, lrn, reshape). */
bool shape_like_input1(Graph *g, Node *n);

/* ---- shared kernel expressions ---------------------------------------------------
 * The elementwise expression, in x[i], of the activations tanh, sigmoid, silu,
 * hardswish and leaky_relu (NULL for any other op; leaky_relu's reads its
 * slope as the float K): their kernels' loop body, and what a blocked conv's
 * store applies when fuse_epilogue folds one into it, so that the two give
 * the same bits (compiler/ops/activation.c). */
const char *activation_expr(Op op);

/* ---- gradient rules ------------------------------------------------------------
 * A rule gets the training-mode node n and dy, the gradient of its output,
 * and adds the nodes computing its inputs' gradients. */

typedef struct GradCtx GradCtx;

/* Whether v needs a gradient (activations; parameters not frozen; inputs
 * when gradcheck asks). */
bool grad_needed(GradCtx *c, const Value *v);
/* A node of the backward pass, named and placed as `like`, with its
 * attributes; NULL (after an error was reported) if it could not be made. */
Node *grad_node(GradCtx *c, Op op, const Node *like, Value **in, int nin);
/* Stops autodiff after a rule reported an (internal) error. */
void grad_fail(GradCtx *c);
/* Adds gv (may be NULL) to the gradient of v. */
void grad_accum(GradCtx *c, Value *v, Value *gv);
/* g summed down to v's shape where n broadcast v per channel. */
Value *grad_unbroadcast(GradCtx *c, Node *n, Value *g, Value *v);
/* The first output of a node, or NULL if it could not be made. */
static inline Value *grad_out0(Node *n) { return n ? n->out[0] : NULL; }

#endif
