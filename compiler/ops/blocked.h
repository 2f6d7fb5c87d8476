/* The blocked conv loop-nest generator of compiler/ops/blocked.c, shared
 * with the fused ops that run blocked convs as the stages of one kernel
 * (compiler/ops/bottleneck.c). */
#ifndef NETC_OPS_BLOCKED_H
#define NETC_OPS_BLOCKED_H

#include "../opkit.h"

/* One blocked conv as the generator sees it: a conv_blocked or
 * dwconv_blocked node, or one stage of a fused kernel. */
typedef struct BlockedConv {
    const ConvAttrs *a;
    int64_t x[4]; /* its input [N, C, H, W] */
    int64_t y[4]; /* its output [N, K, OH, OW] */
    int v;        /* output channels per vector (the packed weight's) */
    int xv;       /* the input's channel block, 0 for plain */
    bool residual;
} BlockedConv;

/* What a blocked conv kernel does at each place of the loop nest that
 * blocked_conv_row writes (each a few lines, without indentation). */
typedef struct ConvParts {
    const char *block;  /* per output block ob: its weights wk (and the input's plane) */
    const char *row;    /* per input row ih of a column block, or "" */
    const char *tap;    /* per tap (kh, kw) of a column block */
    const char *inside; /* columns [RLO, RHI) all inside the input (enums of the enclosing
                         * block: 0 and RB, or a border block's run): add to acc[RLO..RHI) */
    const char *border; /* some columns in the padding: add to those inside, testing each */
    const char *single; /* one column (iw inside): add to acc */
    bool tiled;         /* the input channels in tiles of CT (an enum of `extra`), each tile's sums stored */
    bool pair;          /* two output blocks at a time, ob and ob + 1: acc2 beside acc (the parts add to both) */
} ConvParts;

/* The parts with their text: conv_text for a conv reading input (c, ih, iw)
 * at the address `xa` (c->xv: an input blocked by xv, or plain for 0), of
 * several groups spanning `span` input channels per output block
 * (conv_blocked_span; unused for one group), its input channels in tiles of
 * ct (0: none), by pairs of output blocks or not; dwconv_text for a
 * depthwise one whose input plane of block ob starts at `plane` and whose
 * row ih is row `row` of that plane. */
typedef struct ConvText {
    char extra[640], block[256], row[128], tap[192], inside[640], border[640], single[448];
    ConvParts p;
    const char *what; /* "output channels" or "channels": what a vector holds */
} ConvText;
void conv_text(ConvText *t, const BlockedConv *c, const char *xa, int64_t span, int64_t ct, bool pair);
void dwconv_text(ConvText *t, const char *plane, const char *row);

/* Where blocked_conv_nest's output rows are: rows [first, end) (C
 * expressions of ints), row oh stored at `yrow` (a float pointer expression
 * of ob and oh). */
typedef struct ConvRows {
    const char *first, *end, *yrow;
} ConvRows;

/* The conv's constants (its shapes and attributes as enums, the blocking and
 * the comment saying why, `items` (a last sentence for the comment, or
 * NULL), the text's extra constants, the vector types, a fused leaky_relu's
 * slope AK), at `depth` levels of indentation. */
void blocked_conv_consts(Kernel *k, int depth, const BlockedConv *c, const ConvText *t, const char *items);
/* The loop nest of one output row oh of output block ob of sample n
 * (variables of the enclosing code, as are bias, and with pairs bias2, and
 * with tiles ct and last), stored at `yrow`: the blocks of RB columns held
 * in RB accumulators, each tap's contribution, and the store (residual and
 * relu or relu6); then the columns after the last whole block, one at a
 * time; then the other activations over the finished row.  Written once:
 * conv_blocked's and dwconv_blocked's work items and the bottleneck's
 * stages run it. */
void blocked_conv_row(Kernel *k, int depth, const BlockedConv *c, const ConvParts *p, const char *yrow);
/* For each output block of V channels and each row of `rows`, of one sample
 * n: blocked_conv_row (one block at a time, no tiles: p->pair and p->tiled
 * false). */
void blocked_conv_nest(Kernel *k, int depth, const BlockedConv *c, const ConvParts *p, const ConvRows *rows);

/* conv_grad_input's kernel for blocked dy and dx and a weight packed by a
 * transposing pack_conv (layout_train's strided and dilated convs). */
void emit_conv_grad_input_blocked(Kernel *k);

/* "relu", ..., "leaky_relu" for a fused activation EPILOGUE_*, "" for none. */
const char *blocked_act_name(int act);

/* The output [N, K, OH, OW] of a blocked conv with attributes a of input x
 * [N, C, H, W], packed weight w [ceil(K / V), kh, kw, cg, V] and bias b
 * [ceil(K / V) * V]; false after an error at n (an internal one when the
 * packed weight does not fit). */
bool blocked_conv_out(Node *n, const ConvAttrs *a, const int64_t *x, const Shape *w, const Shape *b, int64_t cg,
                      int64_t *y);

#endif
