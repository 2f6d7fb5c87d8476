/* What an op's emit rule writes its C function with (compiler/ops/).
 *
 * A rule gets a Kernel: the file, the node and the function's name.  It
 * writes one complete static C function: the signature (inputs as `const
 * float *restrict` in the node's input order, then the outputs as `float
 * *restrict`; an input the op writes in place is `float *restrict`), the
 * shapes and attributes as enum constants, and loops that clang -O2 can
 * vectorize.  Semantics are PyTorch's (NCHW, batch included in shapes).
 *
 * Training graphs: a kernel whose first operand is batched (its first
 * dimension is the batch) loops over the active batch, the emitted file's
 * `nb_active` (at most the compiled batch NMAX), instead of the constant N:
 * kenum writes the constant "N" as `const int N = nb_active` then.
 *
 * The sliding-window loop nests that conv and pooling kernels share are
 * written here once (kwindow_*), with their bounds, so that a kernel states
 * only what it does per tap. */
#ifndef NETC_KERNEL_H
#define NETC_KERNEL_H

#include <stddef.h>
#include <stdio.h>

#include "ir.h"

typedef struct Kernel {
    FILE *f;
    const Node *n;
    const char *fname;
    const Target *target;
    const bool *batched; /* by value id, training graphs only (else NULL) */
    bool dyn;            /* the node's batch loops run over nb_active, not the constant N */
    unsigned inplace;    /* bit i: the output is written over input i (the memory plan, plan.h; only
                          * for ops with OpRules.inplace_ok): the kernel reads it through the output */
    char items[64];      /* set by kopen_parallel: the C expression of its work items, else "" */
    bool f64;            /* netc_real is double (netc gradcheck's build), else float */
    bool mpi;            /* an --mpi training program: batchnorm calls netrt_dist_sync_sums */
} Kernel;

/* `typedef float netc_real;`, or for a double build the typedef and what
 * makes the kernels' float-only calls double: netrt_math.h's functions
 * (netrt_expf and the others) as libm's double ones, and the runtime's
 * netrt_check_finite as its double variant. */
void kreal_prelude(FILE *f, bool f64);
/* The libm function fn ("exp", "sqrt") for netc_real: "expf", or "exp" in a double build. */
const char *kmath(const Kernel *k, const char *fn);

__attribute__((format(printf, 2, 3))) void kout(Kernel *k, const char *fmt, ...);

/* `static void fname(const float *restrict x, ..., float *restrict y)` and
 * the opening brace; `in` names the node's inputs, `outs` its outputs;
 * bit i of `written` makes input i writable.  An input the output is
 * written over (k->inplace) is left out, and the function says so: the
 * kernel reads it through the output (the call passes the region once). */
void kopen_rw(Kernel *k, const char *const *in, const char *const *outs, unsigned written);
void kopen(Kernel *k, const char *const *in, const char *const *outs);
/* A kernel whose work is independent work items, each writing its own
 * outputs and computing each of them alone (a row of output channels, say):
 * n samples of `per_sample` items (in a kernel over the active batch, n is
 * nb_active), or with n = 0 `per_sample` items in all, whatever the batch.
 * The signature of kopen_rw, then `int64_t t0, int64_t t1`, the items
 * [t0, t1) this call computes.  The emitter calls it through
 * netrt_parallel, which splits the items across the threads; the results
 * are the same bits at any thread count because no item's arithmetic
 * depends on the split. */
/* A kernel in phases, each its own netrt_parallel over items of its own,
 * for work with a step between (batch statistics summed per sample, then
 * combined): kphase_open opens the function of phase `phase` (closed by
 * kclose), named after the kernel (k->fname, then "_", then phase), whose
 * context is the kernel's buffers as kphase_args lists them (those it
 * does not use named NULL in `in` and `outs`); it loops
 * over its items [t0, t1).  Phases and their file-scope buffers (named
 * k->fname "_" something) go before the kernel's kopen; the kernel writes
 * kphase_args once and runs a phase with kphase_run over `items` (a C
 * expression).  The kernel itself has no items (the emitter calls it once,
 * outside any netrt_parallel). */
void kphase_open(Kernel *k, const char *phase, const char *const *in, const char *const *outs, unsigned written);
void kphase_args(Kernel *k, const char *const *in, const char *const *outs);
void kphase_run(Kernel *k, const char *phase, const char *items);

void kopen_parallel(Kernel *k, const char *const *in, const char *const *outs, unsigned written, int64_t n,
                    int64_t per_sample);
void kclose(Kernel *k);

typedef struct KConst {
    const char *name;
    int64_t v;
} KConst;

/* Opens an elementwise kernel over the NUMEL floats of v (knumel) and
 * returns the header of its loop over them, `for (size_t i = ...; ...; i++)`.
 * A large v (2 KCHUNK floats or more) splits into work items of KCHUNK
 * floats (kopen_parallel; over the active batch, P items per sample, the
 * last of each shorter), the loop running over the items' floats [i0, i1);
 * a smaller one is one plain loop. */
const char *kopen_elementwise(Kernel *k, const char *const *in, const char *const *outs, unsigned written,
                              const Value *v);
#define KCHUNK 16384

/* `enum { A = 1, B = 2 };` for the constants; in a training kernel that
 * loops over the active batch, N is nb_active instead. */
void kenum(Kernel *k, const KConst *c, size_t n);
#define KENUM(k, ...) kenum(k, (const KConst[]){__VA_ARGS__}, sizeof((const KConst[]){__VA_ARGS__}) / sizeof(KConst))

/* Each line of text (each ending in "\n") indented by `depth` levels of four spaces. */
void klines(Kernel *k, int depth, const char *text);

/* `const int N = nb_active;` */
void kactive_batch(Kernel *k);
/* An element count: an enum constant when it fits an int, else a size_t. */
void kcount(Kernel *k, const char *name, int64_t v);
/* NUMEL, the floats v occupies (value_numel); of nb_active samples for a batched value. */
void knumel(Kernel *k, const Value *v);
/* A double constant, exact. */
void kdouble(Kernel *k, const char *name, double v);
/* A double as an exact C literal, into buf. */
const char *double_literal(char *buf, size_t n, double v);
/* v rounded to float as a C float literal ("0.100000001f", "1.0f"), into buf; returns buf. */
const char *float_literal(char *buf, size_t n, double v);
/* Whether v's first dimension is the batch (training graphs). */
bool kbatched(const Kernel *k, const Value *v);

static inline const Shape *in_shape(const Kernel *k, int i) { return &k->n->in[i]->shape; }
static inline const Shape *out_shape(const Kernel *k, int i) { return &k->n->out[i]->shape; }
/* Elements per (sample, channel) of a [N, C, ...] shape. */
int64_t shape_spatial(const Shape *s);
static inline int dim_or_one(int v) { return v > 0 ? v : 1; }

/* ---- sliding windows --------------------------------------------------------
 * The constants a window kernel uses: input H, W, output OH, OW, kernel KH,
 * KW, stride SH, SW, dilation DH, DW and the pads PT (top) and PL (left);
 * output position (oh, ow) reads input row oh * SH - PT + kh * DH and column
 * ow * SW - PL + kw * DW. */

/* The valid range of output columns for one kernel tap: ow in [lo, hi)
 * keeps iw = ow * SW + off inside [0, W) (`off` = tap - PL).  Written into
 * the inner loops so that the loop over ow has no branch. */
void kcol_range(Kernel *k, int depth, const char *tap);

/* Input row ih of tap kh for output row oh, the tap skipped when the row is
 * outside the input (in the padding), at `depth`:
 *     const int ih = oh * SH - PT + kh * DH;
 *     if (ih < 0 || ih >= H) continue; */
void kwindow_row(Kernel *k, int depth);

/* The taps of the window of output row `oh` that fall inside the input: at
 * `depth` levels of indentation,
 *     for (int kh = 0; kh < KH; kh++) {
 *         const int ih = oh * SH - PT + kh * DH;
 *         if (ih < 0 || ih >= H) continue;
 *         <row>
 *         for (int kw = 0; kw < KW; kw++) {
 *             <the column range of tap kw: lo, hi, off>
 *             <body>
 *         }
 *     }
 * `row` declares what the body reads of input row ih; `body` is the per-tap
 * statement(s), one level deeper, each line ending in "\n" and indented
 * relative to the kw loop's body. */
void kwindow_taps(Kernel *k, int depth, const char *row, const char *body);

/* The window of output (oh, ow) clipped to the input: rows [h0, h1) and
 * columns [w0, w1), from its start hs, ws, for a window of KH x KW taps at
 * dilation 1 (pooling).  kwindow_rows writes the row bounds at `depth`,
 * kwindow_cols the column bounds. */
void kwindow_rows(Kernel *k, int depth);
void kwindow_cols(Kernel *k, int depth);

/* The distance between two columns of v: 1 plain, V blocked (NCHW[V]c). */
static inline int kcol_stride(const Value *v) { return v->cblock ? v->cblock : 1; }

/* The output rows of a grouped conv: four loops, over the samples n, the
 * groups g, the output channels k of group g and the output rows oh, opened
 * at depths 1 to 4 (the body goes at depth 5). */
void kconv_output_rows(Kernel *k);

/* Closes `count` blocks, the innermost opened at `depth`. */
void kclose_blocks(Kernel *k, int depth, int count);

#endif
