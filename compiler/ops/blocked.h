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
 * blocked_conv_nest writes (each a few lines, without indentation). */
typedef struct ConvParts {
    const char *block;  /* per output block ob: its weights wk (and the input's plane) */
    const char *row;    /* per input row ih of a column block, or "" */
    const char *tap;    /* per tap (kh, kw) of a column block */
    const char *inside; /* RB columns all inside the input: add to acc[0..RB) */
    const char *border; /* some columns in the padding: add to those inside */
    const char *single; /* one column (iw inside): add to acc */
} ConvParts;

/* The parts with their text: conv_text for a conv of one group reading input
 * (c, ih, iw) at the address `xa` (an input blocked by xv, or plain for 0);
 * dwconv_text for a depthwise one whose input plane of block ob starts at
 * `plane` and whose row ih is row `row` of that plane. */
typedef struct ConvText {
    char extra[256], block[256], row[128], tap[128], inside[512], border[512], single[256];
    ConvParts p;
    const char *what; /* "output channels" or "channels": what a vector holds */
} ConvText;
void conv_text(ConvText *t, int xv, const char *xa);
void dwconv_text(ConvText *t, const char *plane, const char *row);

/* Where the nest's output rows are: rows [first, end) (C expressions of
 * ints), row oh stored at `yrow` (a float pointer expression of ob and oh).
 * NULL in blocked_conv_nest: every row of sample n of y. */
typedef struct ConvRows {
    const char *first, *end, *yrow;
} ConvRows;

/* The conv's constants (its shapes and attributes as enums, the blocking and
 * the comment saying why, the text's extra constants, the vector types), at
 * `depth` levels of indentation. */
void blocked_conv_consts(Kernel *k, int depth, const BlockedConv *c, const ConvText *t);
/* The loop nest of one sample n (a variable of the enclosing code): for each
 * output block of V channels and output row, the blocks of RB columns held
 * in RB accumulators, each tap's contribution, and the store (residual and
 * activation); then the columns after the last whole block, one at a time. */
void blocked_conv_nest(Kernel *k, int depth, const BlockedConv *c, const ConvParts *p, const ConvRows *rows);

/* The output [N, K, OH, OW] of a blocked conv with attributes a of input x
 * [N, C, H, W], packed weight w [ceil(K / V), kh, kw, cg, V] and bias b
 * [ceil(K / V) * V]; false after an error at n (an internal one when the
 * packed weight does not fit). */
bool blocked_conv_out(Node *n, const ConvAttrs *a, const int64_t *x, const Shape *w, const Shape *b, int64_t cg,
                      int64_t *y);

#endif
