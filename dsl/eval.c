/* Evaluation of a .net program into the graph IR (see eval.h).
 *
 * A tree walk over the AST with an environment per net or block instance
 * (a Frame).  `for` and `if` bodies run in the enclosing frame.  The first
 * semantic error is reported (with a note per block instance it happened
 * in, innermost first) and evaluation stops by longjmp to eval_program. */
#include "eval.h"

#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCK_DEPTH 64
#define MAX_UNROLL 1000000 /* loop iterations in one compilation */
#define MAX_INSTANCES 1000000 /* op and block instances in one compilation */
#define MAX_STRING 65536      /* bytes in a compile-time string */
#define MAX_LIST_DEPTH 256    /* lists in lists */
#define MAX_COMPARED 10000000 /* list elements compared in one compilation */
#define MAX_NESTING 512       /* expressions and statements inside one another (stack depth) */

typedef enum { E_NONE, E_INT, E_FLOAT, E_BOOL, E_STRING, E_LIST, E_TENSOR } EKind;

typedef struct EVal {
    EKind k;
    int64_t i;
    double f;
    bool b;
    const char *s;
    struct EVal *items;
    int n;
    int depth; /* a list: how deeply lists nest in it (1 for a flat one) */
    Value *t;
} EVal;

typedef struct Binding {
    const char *name;
    EVal v;
    struct Binding *next;
} Binding;

typedef struct Counter {
    const char *what; /* op or block name */
    int n;
    struct Counter *next;
} Counter;

typedef struct Frame {
    const char *prefix;   /* "layer1.0." inside that block instance, "" in the net */
    const Ast *block;     /* the A_BLOCK being expanded, NULL in the net */
    Span call;            /* the call that made this instance */
    Binding *vars;
    Counter *unnamed;
    struct Frame *parent;
    int depth;
    bool returned;
    EVal ret;
} Frame;

typedef struct Instance {
    const char *path;
    Span span;
} Instance;

/* What the warnings need: the tensor each assignment or expression
 * statement made (v NULL: an expression statement's compile-time value), the
 * inputs' names, and the calls already warned about. */
typedef struct Use {
    const Ast *stmt;
    Value *v;
    struct Use *next;
} Use;

typedef struct InputDecl {
    Value *v;
    Span name;
    struct InputDecl *next;
} InputDecl;

typedef struct Warned {
    Span span;
    struct Warned *next;
} Warned;

typedef struct Eval {
    const AstProgram *prog;
    Graph *g;
    Arena *arena; /* compile-time values and environments */
    jmp_buf fail;
    Frame *frame;
    Instance **instances; /* every instance path made so far, to find collisions: */
    size_t ninstances, cap_instances; /* an open-addressing hash set (malloc'd) */
    long unrolled;
    long compared; /* list elements compared so far */
    int depth;     /* eval_expr and exec calls in progress */
    Use *uses;
    long nuses;
    InputDecl *input_decls;
    Warned *warned;
} Eval;

/* ---- errors --------------------------------------------------------------- */

static const char *kind_name(EKind k) {
    static const char *names[] = {"nothing", "an int", "a float", "a bool", "a string", "a list", "a tensor"};
    return names[k];
}

/* The block instances an error happened in, innermost first, one note each
 * (clang's "in instantiation of" notes).  A deep chain (a recursion) shows
 * its NOTE_HEAD innermost and NOTE_TAIL outermost instances, the last being
 * the call in the net, and says how many it skipped between them. */
#define NOTE_HEAD 3
#define NOTE_TAIL 3
static void instance_notes(Eval *e) {
    int n = 0;
    for (Frame *f = e->frame; f && f->block; f = f->parent) n++;
    int i = 0;
    for (Frame *f = e->frame; f && f->block; f = f->parent, i++) {
        if (n > NOTE_HEAD + NOTE_TAIL + 1 && i >= NOTE_HEAD && i < n - NOTE_TAIL) {
            if (i == NOTE_HEAD)
                diag_file_note("(%d more block instances not shown)", n - NOTE_HEAD - NOTE_TAIL);
            continue;
        }
        diag_note(f->call, "in block '%s' instantiated here", f->block->name);
    }
}

/* After an error at the current frame: the instance notes, then stop. */
static _Noreturn void bail(Eval *e) {
    instance_notes(e);
    longjmp(e->fail, 1);
}

static _Noreturn __attribute__((format(printf, 3, 4))) void fail(Eval *e, Span sp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror(sp, fmt, ap);
    va_end(ap);
    bail(e);
}

/* ---- values --------------------------------------------------------------- */

static EVal v_int(int64_t i) { return (EVal){.k = E_INT, .i = i}; }
static EVal v_float(double f) { return (EVal){.k = E_FLOAT, .f = f}; }
static EVal v_bool(bool b) { return (EVal){.k = E_BOOL, .b = b}; }
static EVal v_str(const char *s) { return (EVal){.k = E_STRING, .s = s}; }
static EVal v_tensor(Value *t) { return (EVal){.k = E_TENSOR, .t = t}; }

static int64_t want_int(Eval *e, EVal v, Span sp, const char *what) {
    if (v.k != E_INT) fail(e, sp, "%s must be an int, got %s", what, kind_name(v.k));
    return v.i;
}

static double want_number(Eval *e, EVal v, Span sp, const char *what) {
    if (v.k == E_INT) return (double)v.i;
    if (v.k != E_FLOAT) fail(e, sp, "%s must be a number, got %s", what, kind_name(v.k));
    return v.f;
}

static bool want_bool(Eval *e, EVal v, Span sp, const char *what) {
    if (v.k != E_BOOL) fail(e, sp, "%s must be a bool, got %s", what, kind_name(v.k));
    return v.b;
}

static Value *want_tensor(Eval *e, EVal v, Span sp, const char *what) {
    if (v.k != E_TENSOR) fail(e, sp, "%s must be a tensor, got %s", what, kind_name(v.k));
    return v.t;
}

/* An int that must fit a C int and lie in [lo, hi]. */
static int want_small(Eval *e, EVal v, Span sp, const char *what, int64_t lo, int64_t hi) {
    int64_t i = want_int(e, v, sp, what);
    if (i < lo || i > hi) {
        if (hi == INT32_MAX && lo == 0 && i < 0) fail(e, sp, "%s must not be negative, got %" PRId64, what, i);
        if (hi == INT32_MAX && i < lo) fail(e, sp, "%s must be at least %" PRId64 ", got %" PRId64, what, lo, i);
        fail(e, sp, "%s must be between %" PRId64 " and %" PRId64 ", got %" PRId64, what, lo, hi, i);
    }
    return (int)i;
}

/* An int, or a list of two ints: [height, width]. */
static void want_pair(Eval *e, EVal v, Span sp, const char *what, int64_t lo, int out[2]) {
    if (v.k != E_INT && v.k != E_LIST)
        fail(e, sp, "%s must be an int or a list of two ints, got %s", what, kind_name(v.k));
    if (v.k == E_LIST) {
        if (v.n != 2) fail(e, sp, "%s must be an int or a list of two ints, got a list of %d", what, v.n);
        out[0] = want_small(e, v.items[0], sp, what, lo, INT32_MAX);
        out[1] = want_small(e, v.items[1], sp, what, lo, INT32_MAX);
    } else {
        out[0] = out[1] = want_small(e, v, sp, what, lo, INT32_MAX);
    }
}

/* pad as an int (every side), [h, w] or [top, bottom, left, right]. */
static void want_pads(Eval *e, EVal v, Span sp, const char *what, int pad[4]) {
    if (v.k == E_LIST && v.n == 4) {
        for (int i = 0; i < 4; i++) pad[i] = want_small(e, v.items[i], sp, what, 0, INT32_MAX);
        return;
    }
    if (v.k != E_INT && !(v.k == E_LIST && v.n == 2))
        fail(e, sp, "%s must be an int, [h, w] or [top, bottom, left, right], got %s", what,
             v.k == E_LIST ? arena_printf(e->arena, "a list of %d", v.n) : kind_name(v.k));
    int hw[2];
    want_pair(e, v, sp, what, 0, hw);
    pad[0] = pad[1] = hw[0];
    pad[2] = pad[3] = hw[1];
}

/* An int, float or bool as text (strings are used as they are). */
static const char *format_value(Eval *e, EVal v, Span sp, char *buf, size_t n) {
    switch (v.k) {
    case E_INT: snprintf(buf, n, "%" PRId64, v.i); break;
    case E_FLOAT: snprintf(buf, n, "%g", v.f); break;
    case E_BOOL: snprintf(buf, n, "%s", v.b ? "true" : "false"); break;
    default: fail(e, sp, "cannot put %s into a string", kind_name(v.k));
    }
    return buf;
}

/* ---- environments ----------------------------------------------------------- */

static Binding *lookup(Frame *f, const char *name) {
    for (Binding *b = f->vars; b; b = b->next)
        if (strcmp(b->name, name) == 0) return b;
    return NULL;
}

static void bind(Eval *e, const char *name, EVal v) {
    Binding *b = lookup(e->frame, name);
    if (!b) {
        b = arena_alloc(e->arena, sizeof *b);
        b->name = name;
        b->next = e->frame->vars;
        e->frame->vars = b;
    }
    b->v = v;
}

static const Ast *find_block(Eval *e, const char *name) {
    for (int i = 0; i < e->prog->blocks.n; i++)
        if (strcmp(e->prog->blocks.items[i]->name, name) == 0) return e->prog->blocks.items[i];
    return NULL;
}

static size_t hash_str(const char *s) { /* FNV-1a */
    size_t h = 14695981039346656037u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The instance name of an op or block call: the `as` name, or <what><k>. */
static const char *instance_name(Eval *e, const char *what, const char *as_name, Span sp) {
    const char *local = as_name;
    if (!local) {
        Counter *c;
        for (c = e->frame->unnamed; c; c = c->next)
            if (strcmp(c->what, what) == 0) break;
        if (!c) {
            c = arena_alloc(e->arena, sizeof *c);
            c->what = what;
            c->next = e->frame->unnamed;
            e->frame->unnamed = c;
        }
        local = arena_printf(e->arena, "%s%d", what, c->n++);
    }
    const char *path = arena_printf(e->arena, "%s%s", e->frame->prefix, local);
    if (e->ninstances >= MAX_INSTANCES)
        fail(e, sp, "the net expands to more than %d op and block instances", MAX_INSTANCES);
    if (2 * (e->ninstances + 1) > e->cap_instances) { /* grow and rehash */
        size_t cap = e->cap_instances ? 2 * e->cap_instances : 256;
        Instance **t = calloc(cap, sizeof *t);
        if (!t) {
            DIAG_INTERNAL("out of memory");
            longjmp(e->fail, 1);
        }
        for (size_t i = 0; i < e->cap_instances; i++) {
            Instance *in = e->instances[i];
            if (!in) continue;
            size_t h = hash_str(in->path) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = in;
        }
        free(e->instances);
        e->instances = t;
        e->cap_instances = cap;
    }
    size_t h = hash_str(path) & (e->cap_instances - 1);
    for (; e->instances[h]; h = (h + 1) & (e->cap_instances - 1)) {
        const Instance *in = e->instances[h];
        if (strcmp(in->path, path) == 0) {
            diag_error(sp, "duplicate name '%s'", path);
            diag_note(in->span, "'%s' was first used here", path);
            bail(e);
        }
    }
    Instance *in = arena_alloc(e->arena, sizeof *in);
    in->path = path;
    in->span = sp;
    e->instances[h] = in;
    e->ninstances++;
    return path;
}

/* ---- suggestions ------------------------------------------------------------- */

/* Edit distance between a and b, or a large number when they are long. */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 1000;
    int row[64];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* Keeps the closest candidate to name, if close enough to be a typo. */
static void consider(const char *name, const char *cand, const char **best, int *best_d) {
    int d = edit_distance(name, cand);
    int len = (int)strlen(name), max = len <= 2 ? 0 : len <= 5 ? 1 : len <= 8 ? 2 : 3;
    if (d > 0 && d <= max && d < *best_d) {
        *best = cand;
        *best_d = d;
    }
}

/* ---- ops -------------------------------------------------------------------- */

#define MAX_ARGS 12

/* A builtin's argument list: names in positional order, defaults as text
 * ("" = required, "=kernel" = the value of another argument). */
typedef struct Builtin {
    const char *name;
    int op; /* an Op, or -1 for a compile-time function */
    const char *args[MAX_ARGS];
    const char *defaults[MAX_ARGS];
    EVal (*build)(Eval *e, const struct Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp);
} Builtin;

/* A builtin whose only argument is "..." takes any number of positional
 * arguments (concat): its builder gets them as one list in args[0] and their
 * spans in spans[0..n). */
#define VARIADIC "..."
static bool is_variadic(const Builtin *b) { return strcmp(b->args[0], VARIADIC) == 0; }

static Value *add_param(Eval *e, const char *inst, const char *pname, int rank, const int64_t *d,
                        ParamInit init, Span sp) {
    /* Unique: inst is a unique instance path and pname has no '.'. */
    const char *name = arena_printf(e->g->arena, "%s.%s", inst, pname);
    Shape sh = shape_make(rank, d);
    char what[320];
    snprintf(what, sizeof what, "parameter '%s' of shape", name);
    if (!shape_check_size(&sh, 0, sp, what)) bail(e);
    return graph_add_param(e->g, name, sh, init, sp);
}

static Value *add_node(Eval *e, Op op, const char *inst, Value **in, int nin, const Attrs *a, Span sp) {
    Node *n = graph_add_node(e->g, op, inst, in, nin, a, sp);
    if (!n) bail(e);
    return n->out[0];
}

/* What a call gives: its node's output, or the list of its outputs when it
 * has several (maxpool_idx: [values, indices]). */
static EVal node_result(Eval *e, Node *n) {
    if (n->nout == 1) return v_tensor(n->out[0]);
    EVal l = {.k = E_LIST, .n = n->nout, .depth = 1};
    l.items = arena_alloc(e->arena, sizeof *l.items * (size_t)n->nout);
    for (int i = 0; i < n->nout; i++) l.items[i] = v_tensor(n->out[i]);
    return l;
}

/* A window wider than the unpadded input fits only because of the padding,
 * and then some of its rows (or columns) may sit in the padding at every
 * output position: for a conv, weights that never meet the input.  Legal,
 * as in PyTorch, but likely a mistake (a 3x3 conv on a 1x1 input).  A window
 * wider than its input whose rows all meet it somewhere (3x3 with pad 1 on
 * 2x2) is left alone.  Once per call in the source. */
static void warn_wide_window(Eval *e, const char *op, const Value *x, const Attrs *a, Span sp) {
    static const char *const axis[2] = {"height", "width"}, *const rows[2] = {"rows", "columns"};
    for (int i = 0; i < 2; i++) {
        int64_t k = a->kernel[i], d = a->dilation[i], st = a->stride[i], p0 = a->pad[2 * i];
        int64_t in = x->shape.d[2 + i], window = d * (k - 1) + 1;
        if (window <= in || k > (1 << 20)) continue; /* (a giant kernel: not worth the loop) */
        int64_t nout = (in + p0 + a->pad[2 * i + 1] - window) / st + 1;
        int64_t dead = 0;
        for (int64_t t = 0; t < k; t++) {
            /* tap t reads row o*st + t*d - p0: is it in [0, in) for some output o? */
            int64_t lo = p0 - t * d; /* need lo <= o*st < lo + in */
            int64_t o = lo <= 0 ? 0 : (lo + st - 1) / st;
            if (!(o < nout && o * st < lo + in)) dead++;
        }
        if (dead == 0) continue;
        for (Warned *w = e->warned; w; w = w->next)
            if (w->span.begin == sp.begin && w->span.end == sp.end) return;
        Warned *w = arena_alloc(e->arena, sizeof *w);
        *w = (Warned){sp, e->warned};
        e->warned = w;
        diag_warning(sp, "%s window %" PRId64 " is wider than its input (%s %" PRId64 "): %" PRId64 " of the %s's %" PRId64
                         " %s only ever see padding",
                     op, window, axis[i], in, dead, strcmp(op, "conv") == 0 ? "kernel" : "window", k,
                     rows[i]);
        instance_notes(e);
        return;
    }
}

/* A conv's pad: an int, [h, w], [top, bottom, left, right], or "same": the
 * output is ceil(in / stride) and the total padding is split as TensorFlow
 * does, the odd pixel at the bottom and right. */
static void want_conv_pad(Eval *e, EVal v, Span sp, const char *what, const Value *x, Attrs *a) {
    if (v.k != E_STRING) {
        want_pads(e, v, sp, what, a->pad);
        return;
    }
    if (strcmp(v.s, "valid") == 0) return; /* no padding */
    if (strcmp(v.s, "same") != 0)
        fail(e, sp, "%s must be an int, a list, \"same\" or \"valid\", got \"%s\"", what, v.s);
    for (int i = 0; i < 2; i++) {
        int64_t in = x->shape.d[2 + i], s = a->stride[i];
        int64_t out = (in + s - 1) / s, window = (int64_t)a->dilation[i] * (a->kernel[i] - 1) + 1;
        int64_t total = (out - 1) * s + window - in;
        if (total < 0) total = 0;
        if (total > INT32_MAX) fail(e, sp, "%s \"same\" needs a padding of %" PRId64 ", too large", what, total);
        a->pad[2 * i] = (int)(total / 2);
        a->pad[2 * i + 1] = (int)(total - total / 2);
    }
}

/* The conv node and its parameters, for conv and dwconv. */
static Value *make_conv(Eval *e, const char *op, Value *x, const Attrs *a, const char *as_name, Span sp) {
    int64_t c = x->shape.d[1];
    if (c % a->groups || a->out % a->groups)
        fail(e, sp, "%s groups = %d must divide both the input channels (%" PRId64 ") and the output channels (%" PRId64 ")",
             op, a->groups, c, a->out);
    const char *inst = instance_name(e, op, as_name, sp);
    Value *in[3] = {x};
    in[1] = add_param(e, inst, "weight", 4, (int64_t[]){a->out, c / a->groups, a->kernel[0], a->kernel[1]}, INIT_XAVIER, sp);
    if (a->bias) in[2] = add_param(e, inst, "bias", 1, &a->out, INIT_ZERO, sp);
    Value *y = add_node(e, OP_CONV, inst, in, a->bias ? 3 : 2, a, sp);
    warn_wide_window(e, op, x, a, sp);
    return y;
}

static Value *want_image(Eval *e, const char *op, EVal v, Span vsp, Span sp) {
    char what[64], buf[128];
    snprintf(what, sizeof what, "%s's input", op);
    Value *x = want_tensor(e, v, vsp, what);
    if (x->shape.rank != 4) fail(e, sp, "%s expects a [C, H, W] input, got %s", op, value_sample_str(x, buf, sizeof buf));
    return x;
}

static EVal build_conv(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_image(e, "conv", args[0], spans[0], sp);
    Attrs a = {0};
    a.out = want_small(e, args[1], spans[1], "conv's output channels", 1, INT32_MAX);
    want_pair(e, args[2], spans[2], "conv's kernel", 1, a.kernel);
    want_pair(e, args[3], spans[3], "conv's stride", 1, a.stride);
    want_pair(e, args[5], spans[5], "conv's dilation", 1, a.dilation);
    want_conv_pad(e, args[4], spans[4], "conv's pad", x, &a);
    a.groups = want_small(e, args[6], spans[6], "conv's groups", 1, INT32_MAX);
    a.bias = want_bool(e, args[7], spans[7], "conv's bias");
    return v_tensor(make_conv(e, b->name, x, &a, as_name, sp));
}

/* dwconv: a conv with one group per input channel and multiplier outputs each. */
static EVal build_dwconv(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_image(e, "dwconv", args[0], spans[0], sp);
    Attrs a = {0};
    want_pair(e, args[1], spans[1], "dwconv's kernel", 1, a.kernel);
    want_pair(e, args[2], spans[2], "dwconv's stride", 1, a.stride);
    want_pair(e, args[4], spans[4], "dwconv's dilation", 1, a.dilation);
    want_conv_pad(e, args[3], spans[3], "dwconv's pad", x, &a);
    int64_t mult = want_small(e, args[5], spans[5], "dwconv's multiplier", 1, INT32_MAX);
    a.bias = want_bool(e, args[6], spans[6], "dwconv's bias");
    int64_t c = x->shape.d[1];
    if (c > INT32_MAX / mult) fail(e, spans[5], "dwconv's multiplier %" PRId64 " makes too many channels", mult);
    a.groups = (int)c;
    a.out = c * mult;
    return v_tensor(make_conv(e, b->name, x, &a, as_name, sp));
}

/* deconv: PyTorch's ConvTranspose2d, weight [C, out / groups, kh, kw]. */
static EVal build_deconv(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_image(e, "deconv", args[0], spans[0], sp);
    Attrs a = {0};
    a.out = want_small(e, args[1], spans[1], "deconv's output channels", 1, INT32_MAX);
    want_pair(e, args[2], spans[2], "deconv's kernel", 1, a.kernel);
    want_pair(e, args[3], spans[3], "deconv's stride", 1, a.stride);
    int pad[2];
    want_pair(e, args[4], spans[4], "deconv's pad", 0, pad);
    a.pad[0] = a.pad[1] = pad[0];
    a.pad[2] = a.pad[3] = pad[1];
    want_pair(e, args[5], spans[5], "deconv's output_pad", 0, a.output_pad);
    a.groups = want_small(e, args[6], spans[6], "deconv's groups", 1, INT32_MAX);
    a.bias = want_bool(e, args[7], spans[7], "deconv's bias");
    want_pair(e, args[8], spans[8], "deconv's dilation", 1, a.dilation);
    for (int i = 0; i < 2; i++)
        if (a.output_pad[i] >= a.stride[i] && a.output_pad[i] >= a.dilation[i])
            fail(e, spans[5], "deconv's output_pad (%d) must be smaller than its stride (%d) or its dilation (%d)",
                 a.output_pad[i], a.stride[i], a.dilation[i]);
    int64_t c = x->shape.d[1];
    if (c % a.groups || a.out % a.groups)
        fail(e, sp, "deconv groups = %d must divide both the input channels (%" PRId64 ") and the output channels (%" PRId64 ")",
             a.groups, c, a.out);
    const char *inst = instance_name(e, b->name, as_name, sp);
    Value *in[3] = {x};
    in[1] = add_param(e, inst, "weight", 4, (int64_t[]){c, a.out / a.groups, a.kernel[0], a.kernel[1]}, INIT_XAVIER, sp);
    if (a.bias) in[2] = add_param(e, inst, "bias", 1, &a.out, INIT_ZERO, sp);
    return v_tensor(add_node(e, OP_DECONV, inst, in, a.bias ? 3 : 2, &a, sp));
}

static EVal build_linear(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "linear's input");
    Attrs a = {0};
    a.out = want_small(e, args[1], spans[1], "linear's output features", 1, INT32_MAX);
    a.bias = want_bool(e, args[2], spans[2], "linear's bias");
    char buf[128];
    if (x->shape.rank != 2)
        fail(e, sp, "linear expects a flat [D] input, got %s (flatten it first)", value_sample_str(x, buf, sizeof buf));
    const char *inst = instance_name(e, b->name, as_name, sp);
    Value *in[3] = {x};
    in[1] = add_param(e, inst, "weight", 2, (int64_t[]){a.out, x->shape.d[1]}, INIT_XAVIER, sp);
    if (a.bias) in[2] = add_param(e, inst, "bias", 1, &a.out, INIT_ZERO, sp);
    return v_tensor(add_node(e, OP_LINEAR, inst, in, a.bias ? 3 : 2, &a, sp));
}

static EVal build_batchnorm(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "batchnorm's input");
    Attrs a = {0};
    a.eps = want_number(e, args[1], spans[1], "batchnorm's eps");
    a.momentum = want_number(e, args[2], spans[2], "batchnorm's momentum");
    if (!(a.eps > 0)) fail(e, spans[1], "batchnorm's eps must be positive, got %g", a.eps);
    if (!(a.momentum >= 0 && a.momentum <= 1)) fail(e, spans[2], "batchnorm's momentum must be in [0, 1], got %g", a.momentum);
    if (x->shape.rank != 4 && x->shape.rank != 2) {
        /* let the shape rule word the message */
        Value *in[5] = {x, x, x, x, x};
        add_node(e, OP_BATCHNORM, b->name, in, 5, &a, sp);
    }
    const char *inst = instance_name(e, b->name, as_name, sp);
    int64_t c = x->shape.d[1];
    Value *in[5] = {x};
    in[1] = add_param(e, inst, "weight", 1, &c, INIT_ONE, sp);
    in[2] = add_param(e, inst, "bias", 1, &c, INIT_ZERO, sp);
    in[3] = add_param(e, inst, "running_mean", 1, &c, INIT_ZERO, sp);
    in[4] = add_param(e, inst, "running_var", 1, &c, INIT_ONE, sp);
    return v_tensor(add_node(e, OP_BATCHNORM, inst, in, 5, &a, sp));
}

/* layernorm(x, eps, affine) and instancenorm(x, eps, affine): weight (ones)
 * and bias (zeros) shaped like a sample, or [C]. */
static EVal build_norm(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    char what[64], buf[128];
    snprintf(what, sizeof what, "%s's input", b->name);
    Value *x = want_tensor(e, args[0], spans[0], what);
    Attrs a = {0};
    snprintf(what, sizeof what, "%s's eps", b->name);
    a.eps = want_number(e, args[1], spans[1], what);
    if (!(a.eps > 0) || !isfinite(a.eps)) fail(e, spans[1], "%s must be positive, got %g", what, a.eps);
    snprintf(what, sizeof what, "%s's affine", b->name);
    a.bias = want_bool(e, args[2], spans[2], what);
    bool instance = b->op == OP_INSTANCENORM;
    if (instance && x->shape.rank != 4)
        fail(e, sp, "instancenorm expects a [C, H, W] input, got %s", value_sample_str(x, buf, sizeof buf));
    const char *inst = instance_name(e, b->name, as_name, sp);
    Value *in[3] = {x};
    if (a.bias) {
        int rank = instance ? 1 : x->shape.rank - 1;
        const int64_t *d = instance ? &x->shape.d[1] : x->shape.d + 1;
        in[1] = add_param(e, inst, "weight", rank, d, INIT_ONE, sp);
        in[2] = add_param(e, inst, "bias", rank, d, INIT_ZERO, sp);
    }
    return v_tensor(add_node(e, (Op)b->op, inst, in, a.bias ? 3 : 1, &a, sp));
}

static EVal build_lrn(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "lrn's input");
    Attrs a = {0};
    a.size = want_small(e, args[1], spans[1], "lrn's size", 1, INT32_MAX);
    static const char *const names[] = {"", "", "lrn's alpha", "lrn's beta", "lrn's k"};
    double *v[] = {NULL, NULL, &a.alpha, &a.beta, &a.k};
    for (int i = 2; i < 5; i++) {
        *v[i] = want_number(e, args[i], spans[i], names[i]);
        if (!isfinite(*v[i])) fail(e, spans[i], "%s must be finite, got %g", names[i], *v[i]);
    }
    if (!(a.k > 0)) fail(e, spans[4], "lrn's k must be positive, got %g", a.k);
    if (a.alpha < 0) fail(e, spans[2], "lrn's alpha must not be negative, got %g", a.alpha);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_LRN, inst, &x, 1, &a, sp));
}

static EVal build_unary(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    char what[64];
    snprintf(what, sizeof what, "%s's input", b->name);
    Value *x = want_tensor(e, args[0], spans[0], what);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, (Op)b->op, inst, &x, 1, NULL, sp));
}

/* An activation with one number: leaky_relu's slope, elu's alpha. */
static EVal build_unary_k(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    char what[64];
    snprintf(what, sizeof what, "%s's input", b->name);
    Value *x = want_tensor(e, args[0], spans[0], what);
    snprintf(what, sizeof what, "%s's %s", b->name, b->args[1]);
    Attrs a = {0};
    a.alpha = want_number(e, args[1], spans[1], what);
    if (!isfinite(a.alpha)) fail(e, spans[1], "%s must be finite, got %g", what, a.alpha);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, (Op)b->op, inst, &x, 1, &a, sp));
}

/* The identity at inference; a training build rejects it (no gradient rule). */
static EVal build_dropout(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "dropout's input");
    Attrs a = {0};
    a.alpha = want_number(e, args[1], spans[1], "dropout's p");
    if (!(a.alpha >= 0 && a.alpha < 1)) fail(e, spans[1], "dropout's p must be in [0, 1), got %g", a.alpha);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_DROPOUT, inst, &x, 1, &a, sp));
}

/* concat(a, b, ...) or concat([a, b, ...]): along the channels.  More
 * inputs than a node takes become a chain of nodes under one instance name. */
static EVal build_concat(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    (void)b;
    int n = args[0].n;
    if (n < 2) fail(e, sp, "concat needs at least two tensors, got %d", n);
    Value **xs = arena_alloc(e->arena, sizeof *xs * (size_t)n);
    for (int i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "concat's argument %d", i + 1);
        xs[i] = want_tensor(e, args[0].items[i], spans[i], what);
    }
    const char *inst = instance_name(e, "concat", as_name, sp);
    Value *acc = xs[0];
    for (int i = 1; i < n;) {
        Value *in[IR_MAX_IN] = {acc};
        int k = 1;
        while (k < IR_MAX_IN && i < n) in[k++] = xs[i++];
        acc = add_node(e, OP_CONCAT, inst, in, k, NULL, sp);
    }
    return v_tensor(acc);
}

static EVal build_slice(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "slice's input");
    Attrs a = {0};
    a.start = want_small(e, args[1], spans[1], "slice's start", 0, INT32_MAX);
    a.end = want_small(e, args[2], spans[2], "slice's end", 1, INT32_MAX);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_SLICE, inst, &x, 1, &a, sp));
}

static EVal build_channel_shuffle(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name,
                                  Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "channel_shuffle's input");
    Attrs a = {0};
    a.groups = want_small(e, args[1], spans[1], "channel_shuffle's groups", 1, INT32_MAX);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_CHANNEL_SHUFFLE, inst, &x, 1, &a, sp));
}

/* reshape(x, [d1, ...]): per-sample sizes; one of them may be -1, inferred. */
static EVal build_reshape(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "reshape's input");
    EVal d = args[1];
    if (d.k == E_INT) d = (EVal){.k = E_LIST, .items = &args[1], .n = 1, .depth = 1};
    if (d.k != E_LIST) fail(e, spans[1], "reshape's dims must be a list of ints, got %s", kind_name(d.k));
    if (d.n < 1 || d.n > IR_MAX_RANK - 1)
        fail(e, spans[1], "reshape's dims must be a list of 1 to %d sizes, got %d", IR_MAX_RANK - 1, d.n);
    Attrs a = {0};
    a.ndims = d.n;
    int64_t have = shape_numel(&x->shape) / x->shape.d[0], known = 1;
    int infer = -1;
    for (int i = 0; i < d.n; i++) {
        int64_t v = want_int(e, d.items[i], spans[1], "a reshape size");
        if (v == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (v < 1) fail(e, spans[1], "reshape's sizes must be positive (or one -1, inferred), got %" PRId64, v);
        if (__builtin_mul_overflow(known, v, &known) || known > have) known = INT64_MAX;
        a.dims[i] = v;
    }
    char buf[128];
    if (infer >= 0) {
        if (known == INT64_MAX)
            fail(e, spans[1], "reshape cannot infer the -1 size: the other sizes ask for more than the %" PRId64
                              " elements per sample of %s", have, value_sample_str(x, buf, sizeof buf));
        if (have % known)
            fail(e, spans[1], "reshape cannot infer the -1 size: %s has %" PRId64 " elements per sample, not a multiple of %" PRId64,
                 value_sample_str(x, buf, sizeof buf), have, known);
        a.dims[infer] = have / known;
        known = have;
    }
    if (known != have) {
        char dims[160];
        size_t k = (size_t)snprintf(dims, sizeof dims, "[");
        for (int i = 0; i < d.n && k < sizeof dims; i++)
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%" PRId64, i ? ", " : "", d.items[i].i);
        if (k < sizeof dims) snprintf(dims + k, sizeof dims - k, "]");
        fail(e, spans[1], "reshape of %s (%" PRId64 " elements per sample) to %s: the element counts differ",
             value_sample_str(x, buf, sizeof buf), have, dims);
    }
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_RESHAPE, inst, &x, 1, &a, sp));
}

static EVal build_pad(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "pad's input");
    Attrs a = {0};
    want_pads(e, args[1], spans[1], "pad's pad", a.pad);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_PAD, inst, &x, 1, &a, sp));
}

static EVal build_pool(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    char what[64];
    snprintf(what, sizeof what, "%s's input", b->name);
    Value *x = want_tensor(e, args[0], spans[0], what);
    Attrs a = {0};
    snprintf(what, sizeof what, "%s's kernel", b->name);
    want_pair(e, args[1], spans[1], what, 1, a.kernel);
    snprintf(what, sizeof what, "%s's stride", b->name);
    if (args[2].k == E_NONE)
        memcpy(a.stride, a.kernel, sizeof a.stride);
    else
        want_pair(e, args[2], spans[2], what, 1, a.stride);
    int pad[2];
    snprintf(what, sizeof what, "%s's pad", b->name);
    want_pair(e, args[3], spans[3], what, 0, pad);
    a.pad[0] = a.pad[1] = pad[0];
    a.pad[2] = a.pad[3] = pad[1];
    snprintf(what, sizeof what, "%s's ceil", b->name);
    a.ceil = want_bool(e, args[4], spans[4], what);
    a.count_pad = b->args[5] ? want_bool(e, args[5], spans[5], "avgpool's count_pad") : true;
    const char *inst = instance_name(e, b->name, as_name, sp);
    Value *y = add_node(e, (Op)b->op, inst, &x, 1, &a, sp);
    a.dilation[0] = a.dilation[1] = 1;
    warn_wide_window(e, b->name, x, &a, sp);
    return node_result(e, y->def);
}

/* upsample(x, scale, mode, size): scale (an int, float or [sh, sw]) or size
 * ([h, w] or an int), not both; mode "nearest" or "bilinear" (align_corners
 * false).  Coordinates map as F.interpolate's: with a scale, by 1 / scale;
 * with a size, by in / out. */
static EVal build_upsample(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "upsample's input");
    char buf[128];
    if (x->shape.rank != 4)
        fail(e, sp, "upsample expects a [C, H, W] input, got %s", value_sample_str(x, buf, sizeof buf));
    Attrs a = {0};
    if (args[2].k != E_STRING) fail(e, spans[2], "upsample's mode must be a string, got %s", kind_name(args[2].k));
    if (strcmp(args[2].s, "nearest") == 0)
        a.mode = UPSAMPLE_NEAREST;
    else if (strcmp(args[2].s, "bilinear") == 0)
        a.mode = UPSAMPLE_BILINEAR;
    else
        fail(e, spans[2], "upsample's mode must be \"nearest\" or \"bilinear\", got \"%s\"", args[2].s);
    bool has_scale = args[1].k != E_NONE, has_size = args[3].k != E_NONE;
    if (has_scale == has_size)
        fail(e, sp, "upsample needs either a scale or a size (size = [h, w]), %s", has_scale ? "not both" : "got neither");
    if (has_size) {
        int o[2];
        want_pair(e, args[3], spans[3], "upsample's size", 1, o);
        for (int i = 0; i < 2; i++) {
            a.osize[i] = o[i];
            a.scale[i] = (double)x->shape.d[2 + i] / o[i];
        }
    } else {
        EVal v = args[1];
        if (v.k == E_LIST && v.n != 2)
            fail(e, spans[1], "upsample's scale must be a number or a list of two, got a list of %d", v.n);
        for (int i = 0; i < 2; i++) {
            double f = want_number(e, v.k == E_LIST ? v.items[i] : v, spans[1], "upsample's scale");
            if (!(f > 0) || !isfinite(f)) fail(e, spans[1], "upsample's scale must be positive, got %g", f);
            double o = floor((double)x->shape.d[2 + i] * f);
            if (o < 1) fail(e, spans[1], "upsample's scale %g leaves no output (%s %" PRId64 ")", f, i ? "width" : "height",
                            x->shape.d[2 + i]);
            if (o > INT32_MAX) fail(e, spans[1], "upsample's scale %g makes the output too large", f);
            a.osize[i] = (int64_t)o;
            a.scale[i] = 1.0 / f;
        }
    }
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_UPSAMPLE, inst, &x, 1, &a, sp));
}

/* yolo_decode(x, anchors, classes, stride): anchors a list of [w, h] pairs in pixels. */
static EVal build_yolo_decode(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "yolo_decode's input");
    Attrs a = {0};
    EVal l = args[1];
    if (l.k != E_LIST || l.n < 1 || l.n > IR_MAX_ANCHORS)
        fail(e, spans[1], "yolo_decode's anchors must be a list of 1 to %d [width, height] pairs", IR_MAX_ANCHORS);
    a.nanchors = l.n;
    for (int i = 0; i < l.n; i++) {
        if (l.items[i].k != E_LIST || l.items[i].n != 2)
            fail(e, spans[1], "yolo_decode's anchor %d must be a list [width, height]", i + 1);
        for (int j = 0; j < 2; j++) {
            double v = want_number(e, l.items[i].items[j], spans[1], "an anchor size");
            if (!(v > 0) || !isfinite(v)) fail(e, spans[1], "anchor sizes must be positive, got %g", v);
            a.anchors[i][j] = v;
        }
    }
    a.out = want_small(e, args[2], spans[2], "yolo_decode's classes", 1, 1 << 20);
    a.stride[0] = want_small(e, args[3], spans[3], "yolo_decode's stride", 1, 1 << 20);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_YOLO_DECODE, inst, &x, 1, &a, sp));
}

static EVal build_nms(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "nms's input");
    Attrs a = {0};
    a.alpha = want_number(e, args[1], spans[1], "nms's iou");
    if (!(a.alpha >= 0 && a.alpha <= 1)) fail(e, spans[1], "nms's iou must be in [0, 1], got %g", a.alpha);
    a.beta = want_number(e, args[2], spans[2], "nms's score");
    if (!(a.beta >= 0 && a.beta < 1)) fail(e, spans[2], "nms's score must be in [0, 1), got %g", a.beta);
    a.out = want_small(e, args[3], spans[3], "nms's max", 1, 1 << 20);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_NMS, inst, &x, 1, &a, sp));
}

/* unpool(x, indices, like): MaxUnpool2d into like's height and width. */
static EVal build_unpool(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *in[3];
    in[0] = want_tensor(e, args[0], spans[0], "unpool's input");
    in[1] = want_tensor(e, args[1], spans[1], "unpool's indices");
    in[2] = want_tensor(e, args[2], spans[2], "unpool's like");
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_UNPOOL, inst, in, 3, NULL, sp));
}

/* adaptive_avgpool(x, [oh, ow]) or (x, n) for n x n; as PyTorch, the output
 * may be larger than the input (windows then overlap). */
static EVal build_adaptive_pool(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "adaptive_avgpool's input");
    Attrs a = {0};
    int o[2];
    want_pair(e, args[1], spans[1], "adaptive_avgpool's size", 1, o);
    a.osize[0] = o[0];
    a.osize[1] = o[1];
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, OP_ADAPTIVE_AVGPOOL, inst, &x, 1, &a, sp));
}

static EVal build_dim(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    char what[64];
    snprintf(what, sizeof what, "%s's argument", b->name);
    Value *x = want_tensor(e, args[0], spans[0], what);
    if (as_name) fail(e, sp, "'as' names an op or block instance; %s is a compile-time function", b->name);
    int axis = b->name[0] == 'c' ? 1 : b->name[0] == 'h' ? 2 : 3;
    if (x->shape.rank <= axis) {
        char buf[128];
        fail(e, sp, "%s needs a [C, H, W] tensor, got %s", b->name, value_sample_str(x, buf, sizeof buf));
    }
    return v_int(x->shape.d[axis]);
}

static const Builtin builtins[] = {
    {"conv", OP_CONV, {"x", "out", "kernel", "stride", "pad", "dilation", "groups", "bias"},
     {"", "", "", "1", "0", "1", "1", "true"}, build_conv},
    {"dwconv", OP_CONV, {"x", "kernel", "stride", "pad", "dilation", "multiplier", "bias"},
     {"", "", "1", "0", "1", "1", "true"}, build_dwconv},
    {"deconv", OP_DECONV, {"x", "out", "kernel", "stride", "pad", "output_pad", "groups", "bias", "dilation"},
     {"", "", "", "1", "0", "0", "1", "true", "1"}, build_deconv},
    {"linear", OP_LINEAR, {"x", "out", "bias"}, {"", "", "true"}, build_linear},
    {"batchnorm", OP_BATCHNORM, {"x", "eps", "momentum"}, {"", "1e-5", "0.1"}, build_batchnorm},
    {"layernorm", OP_LAYERNORM, {"x", "eps", "affine"}, {"", "1e-5", "true"}, build_norm},
    {"instancenorm", OP_INSTANCENORM, {"x", "eps", "affine"}, {"", "1e-5", "true"}, build_norm},
    {"lrn", OP_LRN, {"x", "size", "alpha", "beta", "k"}, {"", "", "1e-4", "0.75", "1.0"}, build_lrn},
    {"relu", OP_RELU, {"x"}, {""}, build_unary},
    {"tanh", OP_TANH, {"x"}, {""}, build_unary},
    {"sigmoid", OP_SIGMOID, {"x"}, {""}, build_unary},
    {"maxpool", OP_MAXPOOL, {"x", "kernel", "stride", "pad", "ceil"}, {"", "", "=kernel", "0", "false"}, build_pool},
    {"avgpool", OP_AVGPOOL, {"x", "kernel", "stride", "pad", "ceil", "count_pad"},
     {"", "", "=kernel", "0", "false", "true"}, build_pool},
    {"global_avgpool", OP_GLOBAL_AVGPOOL, {"x"}, {""}, build_unary},
    {"global_maxpool", OP_GLOBAL_MAXPOOL, {"x"}, {""}, build_unary},
    {"maxpool_idx", OP_MAXPOOL_IDX, {"x", "kernel", "stride", "pad", "ceil"}, {"", "", "=kernel", "0", "false"},
     build_pool},
    {"yolo_decode", OP_YOLO_DECODE, {"x", "anchors", "classes", "stride"}, {"", "", "", ""}, build_yolo_decode},
    {"nms", OP_NMS, {"x", "iou", "score", "max"}, {"", "0.45", "0.25", "100"}, build_nms},
    {"unpool", OP_UNPOOL, {"x", "indices", "like"}, {"", "", ""}, build_unpool},
    {"upsample", OP_UPSAMPLE, {"x", "scale", "mode", "size"}, {"", "none", "\"nearest", "none"}, build_upsample},
    {"adaptive_avgpool", OP_ADAPTIVE_AVGPOOL, {"x", "size"}, {"", ""}, build_adaptive_pool},
    {"flatten", OP_FLATTEN, {"x"}, {""}, build_unary},
    {"softmax", OP_SOFTMAX, {"x"}, {""}, build_unary},
    {"log_softmax", OP_LOG_SOFTMAX, {"x"}, {""}, build_unary},
    {"relu6", OP_RELU6, {"x"}, {""}, build_unary},
    {"leaky_relu", OP_LEAKY_RELU, {"x", "slope"}, {"", "0.01"}, build_unary_k},
    {"elu", OP_ELU, {"x", "alpha"}, {"", "1.0"}, build_unary_k},
    {"silu", OP_SILU, {"x"}, {""}, build_unary},
    {"swish", OP_SILU, {"x"}, {""}, build_unary},
    {"gelu", OP_GELU, {"x"}, {""}, build_unary},
    {"hardsigmoid", OP_HARDSIGMOID, {"x"}, {""}, build_unary},
    {"hardswish", OP_HARDSWISH, {"x"}, {""}, build_unary},
    {"dropout", OP_DROPOUT, {"x", "p"}, {"", "0.5"}, build_dropout},
    {"concat", OP_CONCAT, {VARIADIC}, {""}, build_concat},
    {"slice", OP_SLICE, {"x", "start", "end"}, {"", "", ""}, build_slice},
    {"channel_shuffle", OP_CHANNEL_SHUFFLE, {"x", "groups"}, {"", ""}, build_channel_shuffle},
    {"reshape", OP_RESHAPE, {"x", "dims"}, {"", ""}, build_reshape},
    {"pad", OP_PAD, {"x", "pad"}, {"", ""}, build_pad},
    {"channels", -1, {"x"}, {""}, build_dim},
    {"height", -1, {"x"}, {""}, build_dim},
    {"width", -1, {"x"}, {""}, build_dim},
};

static const Builtin *find_builtin(const char *name) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
    return NULL;
}

/* A default written as text: true, false, "a string", none (not given: the
 * builder decides), an int or a float. */
static EVal default_value(const char *text) {
    if (strcmp(text, "true") == 0) return v_bool(true);
    if (strcmp(text, "false") == 0) return v_bool(false);
    if (strcmp(text, "none") == 0) return (EVal){.k = E_NONE};
    if (text[0] == '"') return v_str(text + 1); /* "\"nearest": the rest is the string */
    if (strchr(text, '.') || strchr(text, 'e')) return v_float(strtod(text, NULL));
    return v_int(strtoll(text, NULL, 10));
}

/* ---- expressions -------------------------------------------------------------- */

static EVal eval_expr(Eval *e, const Ast *n);
static void exec_list(Eval *e, const AstList *l);

/* Positional and keyword arguments of a call, matched against names. */
static void bind_args(Eval *e, const Ast *call, const char *what, const char *const *names, int nnames, EVal *out,
                      Span *spans, bool *given) {
    bool seen_kw = false;
    int pos = 0;
    for (int i = 0; i < call->list.n; i++) {
        const Ast *arg = call->list.items[i];
        int slot;
        if (arg->kind == A_KWARG) {
            seen_kw = true;
            for (slot = 0; slot < nnames; slot++)
                if (strcmp(names[slot], arg->name) == 0) break;
            if (slot == nnames) {
                char list[256] = "";
                for (int j = 0; j < nnames; j++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", names[j]);
                fail(e, arg->name_span.end > arg->name_span.begin ? arg->name_span : arg->span,
                     "%s has no argument '%s' (its arguments: %s)", what, arg->name, list);
            }
            if (given[slot]) fail(e, arg->span, "argument '%s' of %s is given twice", arg->name, what);
            out[slot] = eval_expr(e, arg->a);
        } else {
            if (seen_kw) fail(e, arg->span, "a positional argument after a keyword argument");
            if (pos >= nnames)
                fail(e, arg->span, "%s takes at most %d argument%s, got %d", what, nnames, nnames == 1 ? "" : "s",
                     call->list.n);
            slot = pos++;
            out[slot] = eval_expr(e, arg);
        }
        given[slot] = true;
        if (spans) spans[slot] = arg->kind == A_KWARG ? arg->a->span : arg->span;
    }
}

/* The positional arguments of a variadic op, as one list; a single list
 * argument stands for its elements. */
static EVal call_variadic(Eval *e, const Builtin *b, const Ast *call, const char *as_name) {
    int n = call->list.n;
    EVal list = {.k = E_LIST, .n = n, .depth = 1};
    list.items = arena_alloc(e->arena, sizeof *list.items * (size_t)(n + 1));
    Span *spans = arena_alloc(e->arena, sizeof *spans * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        const Ast *arg = call->list.items[i];
        if (arg->kind == A_KWARG)
            fail(e, arg->span, "%s takes only positional arguments (the tensors to join)", b->name);
        list.items[i] = eval_expr(e, arg);
        spans[i] = arg->span;
    }
    if (n == 1 && list.items[0].k == E_LIST) {
        Span sp = spans[0];
        list = list.items[0];
        spans = arena_alloc(e->arena, sizeof *spans * (size_t)(list.n + 1));
        for (int i = 0; i < list.n; i++) spans[i] = sp;
    }
    return b->build(e, b, &list, spans, as_name, call->span);
}

static EVal call_builtin(Eval *e, const Builtin *b, const Ast *call, const char *as_name) {
    if (is_variadic(b)) return call_variadic(e, b, call, as_name);
    int nnames = 0;
    while (nnames < MAX_ARGS && b->args[nnames]) nnames++;
    EVal args[MAX_ARGS] = {0};
    bool given[MAX_ARGS] = {0};
    Span spans[MAX_ARGS];
    for (int i = 0; i < MAX_ARGS; i++) spans[i] = call->span;
    bind_args(e, call, b->name, b->args, nnames, args, spans, given);
    for (int i = 0; i < nnames; i++) {
        if (given[i]) continue;
        if (!*b->defaults[i]) {
            if (i == 0)
                fail(e, call->span, "%s needs an input tensor: %s(x, ...) or x |> %s(...)", b->name, b->name, b->name);
            fail(e, call->span, "%s needs argument '%s'", b->name, b->args[i]);
        }
        if (b->defaults[i][0] == '=')
            args[i] = (EVal){.k = E_NONE}; /* the builder copies the named argument */
        else
            args[i] = default_value(b->defaults[i]);
    }
    return b->build(e, b, args, spans, as_name, call->span);
}

static EVal call_block(Eval *e, const Ast *blk, const Ast *call, const char *as_name) {
    if (e->frame->depth + 1 > MAX_BLOCK_DEPTH) {
        /* Name the cycle: blk, the blocks its instance called down to this
         * frame, and blk again. */
        const Frame *top = e->frame;
        while (top && top->block && top->block != blk) top = top->parent;
        if (!top || top->block != blk)
            fail(e, call->span, "blocks nest deeper than %d", MAX_BLOCK_DEPTH);
        char chain[512];
        size_t k = (size_t)snprintf(chain, sizeof chain, "%s", blk->name);
        const Frame *path[MAX_BLOCK_DEPTH + 1];
        int n = 0;
        for (const Frame *f = e->frame; f != top; f = f->parent) path[n++] = f;
        while (n > 0 && k < sizeof chain)
            k += (size_t)snprintf(chain + k, sizeof chain - k, " -> %s", path[--n]->block->name);
        if (k < sizeof chain) snprintf(chain + k, sizeof chain - k, " -> %s", blk->name);
        fail(e, call->span, "blocks nest deeper than %d through the recursion %s", MAX_BLOCK_DEPTH, chain);
    }
    int nparams = blk->list2.n;
    const char **names = arena_alloc(e->arena, sizeof *names * (size_t)(nparams + 1));
    for (int i = 0; i < nparams; i++) names[i] = blk->list2.items[i]->name;
    EVal *args = arena_alloc(e->arena, sizeof *args * (size_t)(nparams + 1));
    bool *given = arena_alloc(e->arena, (size_t)nparams + 1);
    bind_args(e, call, arena_printf(e->arena, "block '%s'", blk->name), names, nparams, args, NULL, given);
    const char *inst = instance_name(e, blk->name, as_name, call->span);

    Frame f = {0};
    f.prefix = arena_printf(e->arena, "%s.", inst);
    f.block = blk;
    f.call = call->span;
    f.parent = e->frame;
    f.depth = e->frame->depth + 1;
    e->frame = &f;
    for (int i = 0; i < nparams; i++) {
        const Ast *p = blk->list2.items[i];
        if (!given[i]) {
            if (p->kind != A_KWARG) {
                e->frame = f.parent;
                fail(e, call->span, "block '%s' needs argument '%s'", blk->name, p->name);
            }
            args[i] = eval_expr(e, p->a); /* defaults see the parameters bound before them */
        }
        bind(e, p->name, args[i]);
    }
    exec_list(e, &blk->list);
    if (!f.returned) /* at the block's closing brace, noting this instance */
        fail(e, (Span){blk->span.end - 1, blk->span.end}, "block '%s' ends without 'return'", blk->name);
    e->frame = f.parent;
    return f.ret;
}

static EVal eval_call(Eval *e, const Ast *call, const char *as_name) {
    const Ast *blk = find_block(e, call->name);
    if (blk) return call_block(e, blk, call, as_name);
    const Builtin *b = find_builtin(call->name);
    if (b) return call_builtin(e, b, call, as_name);
    Span sp = call->name_span.end > call->name_span.begin ? call->name_span : call->span;
    Binding *var = lookup(e->frame, call->name);
    if (var)
        fail(e, sp, "'%s' is %s, not an op or block, and cannot be called", call->name, kind_name(var->v.k));
    const char *best = NULL;
    int best_d = 1000;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) consider(call->name, builtins[i].name, &best, &best_d);
    for (int i = 0; i < e->prog->blocks.n; i++) consider(call->name, e->prog->blocks.items[i]->name, &best, &best_d);
    if (best) fail(e, sp, "unknown op or block '%s'; did you mean '%s'?", call->name, best);
    fail(e, sp, "unknown op or block '%s'", call->name);
}

static EVal checked_int(Eval *e, const Ast *n, AstOp op, int64_t a, int64_t b) {
    int64_t r = 0;
    bool over = false;
    switch (op) {
    case OP_ADD_: over = __builtin_add_overflow(a, b, &r); break;
    case OP_SUB_: over = __builtin_sub_overflow(a, b, &r); break;
    case OP_MUL_: over = __builtin_mul_overflow(a, b, &r); break;
    case OP_DIV_:
    case OP_MOD_:
        if (b == 0) fail(e, n->span, "%s by zero", op == OP_DIV_ ? "division" : "remainder");
        if (a == INT64_MIN && b == -1) over = true;
        else r = op == OP_DIV_ ? a / b : a % b;
        break;
    default: break;
    }
    if (over)
        fail(e, n->span, "integer overflow in %" PRId64 " %s %" PRId64, a, ast_op_text(op), b);
    return v_int(r);
}

static bool values_equal(Eval *e, const Ast *n, EVal a, EVal b) {
    if ((a.k == E_INT || a.k == E_FLOAT) && (b.k == E_INT || b.k == E_FLOAT)) {
        if (a.k == E_INT && b.k == E_INT) return a.i == b.i;
        return want_number(e, a, n->span, "") == want_number(e, b, n->span, "");
    }
    if (a.k != b.k) fail(e, n->span, "cannot compare %s with %s", kind_name(a.k), kind_name(b.k));
    switch (a.k) {
    case E_BOOL: return a.b == b.b;
    case E_STRING: return strcmp(a.s, b.s) == 0;
    case E_LIST:
        if (a.n != b.n) return false;
        if (a.items == b.items) return true;
        for (int i = 0; i < a.n; i++) {
            if (++e->compared > MAX_COMPARED)
                fail(e, n->span, "comparing lists takes more than %d element comparisons", MAX_COMPARED);
            if (!values_equal(e, n, a.items[i], b.items[i])) return false;
        }
        return true;
    default: fail(e, n->span, "cannot compare %s values", kind_name(a.k));
    }
}

static EVal tensor_binary(Eval *e, const Ast *n, AstOp op, EVal a, EVal b) {
    if (a.k == E_TENSOR && b.k == E_TENSOR && op >= OP_EQ_ && op <= OP_GE_)
        fail(e, n->span, "'%s' cannot compare tensors: their values are known only when the program runs",
             ast_op_text(op));
    if (a.k != E_TENSOR || b.k != E_TENSOR || (op != OP_ADD_ && op != OP_MUL_))
        fail(e, n->span, "'%s' is not defined between %s and %s", ast_op_text(op), kind_name(a.k), kind_name(b.k));
    Op o = op == OP_ADD_ ? OP_ADD : OP_MUL;
    const char *inst = instance_name(e, op_name(o), NULL, n->span);
    Value *in[2] = {a.t, b.t};
    return v_tensor(add_node(e, o, inst, in, 2, NULL, n->span));
}

static EVal eval_binary(Eval *e, const Ast *n) {
    AstOp op = n->op;
    if (op == OP_AND_ || op == OP_OR_) {
        bool l = want_bool(e, eval_expr(e, n->a), n->a->span, "the left side of this operator");
        if (op == OP_AND_ ? !l : l) return v_bool(l);
        return v_bool(want_bool(e, eval_expr(e, n->b), n->b->span, "the right side of this operator"));
    }
    EVal a = eval_expr(e, n->a), b = eval_expr(e, n->b);
    if (a.k == E_TENSOR || b.k == E_TENSOR) return tensor_binary(e, n, op, a, b);
    if (op == OP_EQ_ || op == OP_NE_) return v_bool(values_equal(e, n, a, b) == (op == OP_EQ_));
    if (op == OP_ADD_ && a.k == E_STRING && b.k == E_STRING) {
        if (strlen(a.s) + strlen(b.s) > MAX_STRING)
            fail(e, n->span, "this string would be longer than %d bytes", MAX_STRING);
        return v_str(arena_printf(e->arena, "%s%s", a.s, b.s));
    }
    if ((a.k != E_INT && a.k != E_FLOAT) || (b.k != E_INT && b.k != E_FLOAT))
        fail(e, n->span, "'%s' is not defined between %s and %s", ast_op_text(op), kind_name(a.k), kind_name(b.k));
    if (a.k == E_INT && b.k == E_INT) {
        switch (op) {
        case OP_LT_: return v_bool(a.i < b.i);
        case OP_LE_: return v_bool(a.i <= b.i);
        case OP_GT_: return v_bool(a.i > b.i);
        case OP_GE_: return v_bool(a.i >= b.i);
        default: return checked_int(e, n, op, a.i, b.i);
        }
    }
    double x = want_number(e, a, n->span, ""), y = want_number(e, b, n->span, "");
    switch (op) {
    case OP_ADD_: return v_float(x + y);
    case OP_SUB_: return v_float(x - y);
    case OP_MUL_: return v_float(x * y);
    case OP_DIV_:
        if (y == 0) fail(e, n->span, "division by zero");
        return v_float(x / y);
    case OP_MOD_:
        if (y == 0) fail(e, n->span, "remainder by zero");
        return v_float(fmod(x, y));
    case OP_LT_: return v_bool(x < y);
    case OP_LE_: return v_bool(x <= y);
    case OP_GT_: return v_bool(x > y);
    case OP_GE_: return v_bool(x >= y);
    default: fail(e, n->span, "'%s' is not defined on numbers", ast_op_text(op));
    }
}

static EVal eval_expr_at(Eval *e, const Ast *n) {
    switch (n->kind) {
    case A_INT: return v_int(n->ival);
    case A_FLOAT: return v_float(n->fval);
    case A_BOOL: return v_bool(n->bval);
    case A_STRING_LIT: return v_str(n->name);
    case A_STRING: {
        /* The parts in the arena (no malloc to leak when an error longjmps). */
        const char **parts = arena_alloc(e->arena, sizeof *parts * (size_t)(n->list.n + 1));
        size_t len = 0;
        for (int i = 0; i < n->list.n; i++) {
            const Ast *part = n->list.items[i];
            if (part->kind == A_STRING_LIT) {
                parts[i] = part->name;
            } else {
                EVal v = eval_expr(e, part);
                char buf[64];
                parts[i] = v.k == E_STRING ? v.s : arena_strdup(e->arena, format_value(e, v, part->span, buf, sizeof buf));
            }
            len += strlen(parts[i]);
            if (len > MAX_STRING) fail(e, n->span, "this string would be longer than %d bytes", MAX_STRING);
        }
        char *str = arena_alloc(e->arena, len + 1), *p = str;
        for (int i = 0; i < n->list.n; i++) {
            size_t k = strlen(parts[i]);
            memcpy(p, parts[i], k);
            p += k;
        }
        *p = 0;
        return v_str(str);
    }
    case A_NAME: {
        Binding *b = lookup(e->frame, n->name);
        if (b) return b->v;
        if (find_builtin(n->name) || find_block(e, n->name))
            fail(e, n->span, "'%s' is an op or block: call it, as %s(x) or x |> %s", n->name, n->name, n->name);
        const char *best = NULL;
        int best_d = 1000;
        for (Binding *v = e->frame->vars; v; v = v->next) consider(n->name, v->name, &best, &best_d);
        if (best) fail(e, n->span, "unknown name '%s'; did you mean '%s'?", n->name, best);
        fail(e, n->span, "unknown name '%s'", n->name);
    }
    case A_LIST: {
        EVal v = {.k = E_LIST, .n = n->list.n, .depth = 1};
        v.items = arena_alloc(e->arena, sizeof *v.items * (size_t)(n->list.n + 1));
        for (int i = 0; i < n->list.n; i++) {
            v.items[i] = eval_expr(e, n->list.items[i]);
            if (v.items[i].k == E_LIST && v.items[i].depth + 1 > v.depth) v.depth = v.items[i].depth + 1;
        }
        if (v.depth > MAX_LIST_DEPTH) fail(e, n->span, "lists nest deeper than %d", MAX_LIST_DEPTH);
        return v;
    }
    case A_INDEX: {
        EVal base = eval_expr(e, n->a);
        if (base.k != E_LIST) fail(e, n->a->span, "only a list can be indexed, not %s", kind_name(base.k));
        int64_t i = want_int(e, eval_expr(e, n->b), n->b->span, "an index");
        if (i < 0 || i >= base.n)
            fail(e, n->b->span, "index %" PRId64 " is out of range for a list of %d element%s", i, base.n,
                 base.n == 1 ? "" : "s");
        return base.items[i];
    }
    case A_UNARY: {
        EVal a = eval_expr(e, n->a);
        if (n->op == OP_NOT_) return v_bool(!want_bool(e, a, n->a->span, "the operand of '!'"));
        if (a.k == E_FLOAT) return v_float(-a.f);
        if (a.k != E_INT) fail(e, n->span, "'-' is not defined on %s", kind_name(a.k));
        if (a.i == INT64_MIN) fail(e, n->span, "integer overflow in -(%" PRId64 ")", a.i);
        return v_int(-a.i);
    }
    case A_BINARY: return eval_binary(e, n);
    case A_CALL: return eval_call(e, n, NULL);
    case A_AS: {
        if (n->a->kind != A_CALL)
            fail(e, n->span, "'as' must follow a call of an op or block (it names the instance the call makes)");
        EVal name = eval_expr(e, n->b);
        if (name.k != E_STRING) fail(e, n->b->span, "the name after 'as' must be a string");
        if (!*name.s) fail(e, n->b->span, "an instance name cannot be empty");
        for (const char *c = name.s; *c; c++)
            if (!(*c == '_' || *c == '.' || *c == '-' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= 'A' && *c <= 'Z')))
                fail(e, n->b->span, "invalid character '%c' in the instance name \"%s\" (letters, digits, '_', '-' and '.')",
                     *c, name.s);
        if (name.s[0] == '.' || name.s[strlen(name.s) - 1] == '.' || strstr(name.s, ".."))
            fail(e, n->b->span, "the instance name \"%s\" has an empty part between dots", name.s);
        return eval_call(e, n->a, name.s);
    }
    default:
        DIAG_INTERNAL("%s is not an expression", ast_kind_name(n->kind));
        longjmp(e->fail, 1);
    }
}

/* ---- statements ------------------------------------------------------------------ */

/* Records what statement s made, for warn_unused (once per statement and value). */
static void note_use(Eval *e, const Ast *s, Value *v) {
    if (e->uses && e->uses->stmt == s && e->uses->v == v) return;
    Use *u = arena_alloc(e->arena, sizeof *u);
    *u = (Use){s, v, e->uses};
    e->uses = u;
    e->nuses++;
}

static void exec_at(Eval *e, const Ast *s) {
    switch (s->kind) {
    case A_ASSIGN: {
        EVal v = eval_expr(e, s->a);
        if (v.k == E_TENSOR) note_use(e, s, v.t);
        bind(e, s->name, v);
        break;
    }
    case A_EXPR: note_use(e, s, eval_expr(e, s->a).t); break;
    case A_INPUT: {
        if (e->frame->block) fail(e, s->span, "'input' is only allowed in the net, not in a block");
        for (int i = 0; i < e->g->ninputs; i++)
            if (strcmp(e->g->inputs[i]->name, s->name) == 0) {
                diag_error(s->name_span, "duplicate input '%s'", s->name);
                diag_note(e->g->inputs[i]->span, "the first is declared here");
                bail(e);
            }
        EVal dims = eval_expr(e, s->a);
        if (dims.k != E_LIST || dims.n < 1 || dims.n > IR_MAX_RANK - 1)
            fail(e, s->a->span, "an input's shape must be a list of 1 to %d sizes, like [3, 224, 224]", IR_MAX_RANK - 1);
        Shape sh = {.rank = dims.n + 1};
        sh.d[0] = e->g->batch;
        for (int i = 0; i < dims.n; i++) {
            /* point at the size itself when the list is written out */
            Span dsp = s->a->kind == A_LIST && s->a->list.n == dims.n ? s->a->list.items[i]->span : s->a->span;
            sh.d[i + 1] = want_int(e, dims.items[i], dsp, "an input size");
            if (sh.d[i + 1] < 1) fail(e, dsp, "input sizes must be positive, got %" PRId64, sh.d[i + 1]);
        }
        char what[160];
        snprintf(what, sizeof what, "input '%s' of shape", s->name);
        if (!shape_check_size(&sh, e->g->batch, s->a->span, what)) bail(e);
        Value *in = graph_add_input(e->g, s->name, sh, s->span);
        InputDecl *d = arena_alloc(e->arena, sizeof *d);
        *d = (InputDecl){in, s->name_span, e->input_decls};
        e->input_decls = d;
        bind(e, s->name, v_tensor(in));
        break;
    }
    case A_OUTPUT: {
        if (e->frame->block) fail(e, s->span, "'output' is only allowed in the net, not in a block");
        for (int i = 0; i < e->g->noutputs; i++)
            if (strcmp(e->g->outputs[i].name, s->name) == 0) {
                diag_error(s->name_span, "duplicate output '%s'", s->name);
                diag_note(e->g->outputs[i].span, "the first is declared here");
                bail(e);
            }
        EVal v = eval_expr(e, s->a);
        graph_add_output(e->g, s->name, want_tensor(e, v, s->a->span, "an output"), s->span);
        bind(e, s->name, v);
        break;
    }
    case A_FOR: {
        int64_t from = want_int(e, eval_expr(e, s->a), s->a->span, "a loop bound");
        int64_t to = want_int(e, eval_expr(e, s->b), s->b->span, "a loop bound");
        for (int64_t i = from; i < to && !e->frame->returned; i++) {
            if (++e->unrolled > MAX_UNROLL)
                fail(e, s->span, "loops unroll to more than %d iterations in all", MAX_UNROLL);
            bind(e, s->name, v_int(i));
            exec_list(e, &s->list);
        }
        break;
    }
    case A_IF:
        if (want_bool(e, eval_expr(e, s->a), s->a->span, "an 'if' condition"))
            exec_list(e, &s->list);
        else
            exec_list(e, &s->list2);
        break;
    case A_RETURN:
        if (!e->frame->block) fail(e, s->span, "'return' outside a block");
        e->frame->ret = eval_expr(e, s->a);
        e->frame->returned = true;
        break;
    default:
        DIAG_INTERNAL("%s is not a statement", ast_kind_name(s->kind));
        longjmp(e->fail, 1);
    }
}

/* Each level of nesting takes stack: a 100,000-term sum or pipe chain is an
 * error, not a crash. */
static void enter(Eval *e, Span sp) {
    if (++e->depth > MAX_NESTING) fail(e, sp, "expressions and statements nest deeper than %d", MAX_NESTING);
}

static EVal eval_expr(Eval *e, const Ast *n) {
    enter(e, n->span);
    EVal v = eval_expr_at(e, n);
    e->depth--;
    return v;
}

static void exec(Eval *e, const Ast *s) {
    enter(e, s->span);
    exec_at(e, s);
    e->depth--;
}

static void exec_list(Eval *e, const AstList *l) {
    for (int i = 0; i < l->n && !e->frame->returned; i++) exec(e, l->items[i]);
}

static void check_blocks(Eval *e) {
    for (int i = 0; i < e->prog->blocks.n; i++) {
        const Ast *b = e->prog->blocks.items[i];
        if (find_builtin(b->name)) fail(e, b->name_span, "block '%s' has the name of a built-in op", b->name);
        for (int j = 0; j < i; j++)
            if (strcmp(e->prog->blocks.items[j]->name, b->name) == 0) {
                diag_error(b->name_span, "block '%s' is defined twice", b->name);
                diag_note(e->prog->blocks.items[j]->name_span, "first defined here");
                longjmp(e->fail, 1);
            }
        bool kw = false;
        for (int j = 0; j < b->list2.n; j++) {
            const Ast *p = b->list2.items[j];
            if (p->kind == A_KWARG) kw = true;
            else if (kw) fail(e, p->span, "parameter '%s' without a default follows one with a default", p->name);
            for (int k = 0; k < j; k++)
                if (strcmp(b->list2.items[k]->name, p->name) == 0)
                    fail(e, p->span, "block '%s' has two parameters named '%s'", b->name, p->name);
        }
    }
}

/* ---- warnings ------------------------------------------------------------------ */

static int cmp_use(const void *x, const void *y) {
    const Use *a = *(const Use *const *)x, *b = *(const Use *const *)y;
    if (a->stmt->span.begin != b->stmt->span.begin) return a->stmt->span.begin < b->stmt->span.begin ? -1 : 1;
    return a->stmt < b->stmt ? -1 : a->stmt > b->stmt;
}

/* The name of what an expression statement calls, for "the result of X". */
static const char *called(const Ast *x) {
    if (x->kind == A_AS) x = x->a;
    return x->kind == A_CALL ? x->name : NULL;
}

/* An assignment whose tensor nothing reads (in no execution of it: a loop
 * may overwrite all but the last), an expression statement whose value is
 * dropped, an input nothing reads.  The outputs count as readers. */
static void warn_unused(Eval *e) {
    Graph *g = e->g;
    bool *used = calloc((size_t)g->nvalues + 1, 1);
    if (!used) return;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++) used[g->nodes[i]->in[j]->id] = true;
    for (int i = 0; i < g->noutputs; i++) used[g->outputs[i].v->id] = true;

    InputDecl *rev = NULL; /* in source order */
    for (InputDecl *d = e->input_decls, *next; d; d = next) {
        next = d->next;
        d->next = rev;
        rev = d;
    }
    for (InputDecl *d = rev; d; d = d->next)
        if (!used[d->v->id]) diag_warning(d->name, "input '%s' is never used", d->v->name);

    Use **all = malloc(sizeof *all * (size_t)(e->nuses + 1));
    if (!all) {
        free(used);
        return;
    }
    long n = 0;
    for (Use *u = e->uses; u; u = u->next) all[n++] = u;
    qsort(all, (size_t)n, sizeof *all, cmp_use);
    for (long i = 0; i < n;) {
        const Ast *st = all[i]->stmt;
        bool any = false;
        for (; i < n && all[i]->stmt == st; i++)
            if (all[i]->v && used[all[i]->v->id]) any = true;
        if (any) continue;
        const char *callee = called(st->a);
        if (st->kind == A_ASSIGN)
            diag_warning(st->name_span, "the tensor assigned to '%s' is never used", st->name);
        else if (callee)
            diag_warning(st->a->span, "the result of %s is never used", callee);
        else
            diag_warning(st->a->span, "the value of this expression is never used");
    }
    free(all);
    free(used);
}

/* Marks the blocks that the tree root calls, except self (a block calling
 * itself does not make it used).  An explicit stack, not recursion: code
 * that never runs (an unused block) may nest arbitrarily deep. */
static void mark_called(Eval *e, const Ast *root, const Ast *self, bool *called_blocks) {
    size_t n = 0, cap = 64;
    const Ast **stack = malloc(cap * sizeof *stack);
    if (!stack) return;
    stack[n++] = root;
    while (n > 0) {
        const Ast *t = stack[--n];
        if (!t) continue;
        if (t->kind == A_CALL && t->name) {
            for (int i = 0; i < e->prog->blocks.n; i++)
                if (e->prog->blocks.items[i] != self && strcmp(e->prog->blocks.items[i]->name, t->name) == 0)
                    called_blocks[i] = true;
        }
        size_t need = n + 2 + (size_t)t->list.n + (size_t)t->list2.n;
        if (need > cap) {
            while (need > cap) cap *= 2;
            const Ast **bigger = realloc(stack, cap * sizeof *stack);
            if (!bigger) break;
            stack = bigger;
        }
        stack[n++] = t->a;
        stack[n++] = t->b;
        for (int i = 0; i < t->list.n; i++) stack[n++] = t->list.items[i];
        for (int i = 0; i < t->list2.n; i++) stack[n++] = t->list2.items[i];
    }
    free(stack);
}

/* A block that neither the net nor another block calls (as clang's unused
 * function: a block called only from an unused block is not reported). */
static void warn_unused_blocks(Eval *e) {
    int nb = e->prog->blocks.n;
    bool *called_blocks = calloc((size_t)nb + 1, 1);
    if (!called_blocks) return;
    mark_called(e, e->prog->net, NULL, called_blocks);
    for (int i = 0; i < nb; i++) mark_called(e, e->prog->blocks.items[i], e->prog->blocks.items[i], called_blocks);
    for (int i = 0; i < nb; i++)
        if (!called_blocks[i])
            diag_warning(e->prog->blocks.items[i]->name_span, "block '%s' is never used", e->prog->blocks.items[i]->name);
    free(called_blocks);
}

Graph *eval_program(const AstProgram *p, int batch) {
    if (!p->net) {
        diag_file_error("this file has no 'net'");
        return NULL;
    }
    Eval e = {0};
    e.prog = p;
    e.arena = arena_new();
    e.g = graph_new(p->src, p->net->name, batch);
    Frame top = {.prefix = ""};
    e.frame = &top;
    if (setjmp(e.fail)) {
        graph_free(e.g);
        arena_free(e.arena);
        free(e.instances);
        return NULL;
    }
    check_blocks(&e);
    exec_list(&e, &p->net->list);
    if (e.g->ninputs == 0) fail(&e, p->net->name_span, "net '%s' has no input", p->net->name);
    if (e.g->noutputs == 0) fail(&e, p->net->name_span, "net '%s' has no output", p->net->name);
    warn_unused_blocks(&e);
    warn_unused(&e);
    arena_free(e.arena);
    free(e.instances);
    return e.g;
}
