/* Taps: the per-layer values of a training step that the runtime may look
 * at (--monitor, --init-calibrate), chosen here and written by the emitter.
 *
 * A tap is the output of a node of the training forward (PHASE_GRAD, before
 * the loss): a conv, deconv, linear, batchnorm or normalization, or an
 * activation, under the node's .net instance name.  After fusion the fused
 * kernel's output is the tap: a conv_blocked that applies relu in its store
 * is the tap "conv0" of kind "conv+relu", whose values are post-activation.
 * The emitter calls netrt_tap(k, buffer) right after the node's kernel,
 * behind the program's tap_on flag (netrt.h, netrt_tap_info). */
#ifndef NETC_TAPS_H
#define NETC_TAPS_H

#include <stdbool.h>

#include "ir.h"

typedef struct TapKind {
    const char *kind; /* "conv", "conv+relu", "linear", "batchnorm+relu", "relu", "tanh", ... */
    bool relu;        /* the values are a ReLU's output */
    bool preact;      /* the output of a layer with a weight, before any activation */
} TapKind;

/* Whether node n of training graph g (at index i of g->nodes; loss_index the
 * loss node's index) is a tap, and what kind.  Strings are static. */
bool tap_of(const Graph *g, const Node *n, int i, int loss_index, TapKind *out);

#endif
