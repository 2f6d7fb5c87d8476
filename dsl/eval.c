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

typedef enum { E_NONE, E_INT, E_FLOAT, E_BOOL, E_STRING, E_LIST, E_TENSOR } EKind;

typedef struct EVal {
    EKind k;
    int64_t i;
    double f;
    bool b;
    const char *s;
    struct EVal *items;
    int n;
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
    struct Instance *next;
} Instance;

typedef struct Eval {
    const AstProgram *prog;
    Graph *g;
    Arena *arena; /* compile-time values and environments */
    jmp_buf fail;
    Frame *frame;
    Instance *instances; /* every instance path made so far, to find collisions */
    long unrolled;
} Eval;

/* ---- errors --------------------------------------------------------------- */

static const char *kind_name(EKind k) {
    static const char *names[] = {"nothing", "an int", "a float", "a bool", "a string", "a list", "a tensor"};
    return names[k];
}

/* After an error at the current frame: a note per enclosing block instance, then stop. */
static _Noreturn void bail(Eval *e) {
    for (Frame *f = e->frame; f && f->block; f = f->parent)
        diag_note(f->call, "in block '%s' instantiated here", f->block->name);
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
        if (hi == INT32_MAX) fail(e, sp, "%s must be at least %" PRId64 ", got %" PRId64, what, lo, i);
        fail(e, sp, "%s must be between %" PRId64 " and %" PRId64 ", got %" PRId64, what, lo, hi, i);
    }
    return (int)i;
}

/* An int, or a list of two ints: [height, width]. */
static void want_pair(Eval *e, EVal v, Span sp, const char *what, int64_t lo, int out[2]) {
    if (v.k == E_LIST) {
        if (v.n != 2) fail(e, sp, "%s must be an int or a list of two ints, got a list of %d", what, v.n);
        out[0] = want_small(e, v.items[0], sp, what, lo, INT32_MAX);
        out[1] = want_small(e, v.items[1], sp, what, lo, INT32_MAX);
    } else {
        out[0] = out[1] = want_small(e, v, sp, what, lo, INT32_MAX);
    }
}

static void format_value(Eval *e, EVal v, Span sp, char *buf, size_t n) {
    switch (v.k) {
    case E_INT: snprintf(buf, n, "%" PRId64, v.i); break;
    case E_FLOAT: snprintf(buf, n, "%g", v.f); break;
    case E_BOOL: snprintf(buf, n, "%s", v.b ? "true" : "false"); break;
    case E_STRING: snprintf(buf, n, "%s", v.s); break;
    default: fail(e, sp, "cannot put %s into a string", kind_name(v.k));
    }
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
    for (Instance *in = e->instances; in; in = in->next) {
        if (strcmp(in->path, path) == 0) {
            diag_error(sp, "duplicate name '%s'", path);
            diag_note(in->span, "'%s' was first used here", path);
            bail(e);
        }
    }
    Instance *in = arena_alloc(e->arena, sizeof *in);
    in->path = path;
    in->span = sp;
    in->next = e->instances;
    e->instances = in;
    return path;
}

/* ---- ops -------------------------------------------------------------------- */

#define MAX_ARGS 8

/* A builtin's argument list: names in positional order, defaults as text
 * ("" = required, "=kernel" = the value of another argument). */
typedef struct Builtin {
    const char *name;
    int op; /* an Op, or -1 for a compile-time function */
    const char *args[MAX_ARGS];
    const char *defaults[MAX_ARGS];
    EVal (*build)(Eval *e, const struct Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp);
} Builtin;

static Value *add_param(Eval *e, const char *inst, const char *pname, int rank, const int64_t *d,
                        ParamInit init, Span sp) {
    const char *name = arena_printf(e->g->arena, "%s.%s", inst, pname);
    for (int i = 0; i < e->g->nvalues; i++) {
        Value *v = e->g->values[i];
        if (v->kind == V_PARAM && strcmp(v->name, name) == 0) {
            diag_error(sp, "parameter name '%s' is used twice", name);
            diag_note(v->span, "first made here");
            bail(e);
        }
    }
    return graph_add_param(e->g, name, shape_make(rank, d), init, sp);
}

static Value *add_node(Eval *e, Op op, const char *inst, Value **in, int nin, const Attrs *a, Span sp) {
    Node *n = graph_add_node(e->g, op, inst, in, nin, a, sp);
    if (!n) bail(e);
    return n->out[0];
}

static EVal build_conv(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    Value *x = want_tensor(e, args[0], spans[0], "conv's input");
    char buf[128];
    if (x->shape.rank != 4)
        fail(e, sp, "conv expects a [C, H, W] input, got %s", value_sample_str(x, buf, sizeof buf));
    Attrs a = {0};
    a.out = want_small(e, args[1], spans[1], "conv's output channels", 1, INT32_MAX);
    want_pair(e, args[2], spans[2], "conv's kernel", 1, a.kernel);
    want_pair(e, args[3], spans[3], "conv's stride", 1, a.stride);
    int pad[2];
    want_pair(e, args[4], spans[4], "conv's pad", 0, pad);
    a.pad[0] = a.pad[1] = pad[0];
    a.pad[2] = a.pad[3] = pad[1];
    want_pair(e, args[5], spans[5], "conv's dilation", 1, a.dilation);
    a.groups = want_small(e, args[6], spans[6], "conv's groups", 1, INT32_MAX);
    a.bias = want_bool(e, args[7], spans[7], "conv's bias");
    int64_t c = x->shape.d[1];
    if (c % a.groups || a.out % a.groups)
        fail(e, sp, "conv groups = %d must divide both the input channels (%" PRId64 ") and the output channels (%" PRId64 ")",
             a.groups, c, a.out);
    const char *inst = instance_name(e, b->name, as_name, sp);
    Value *in[3] = {x};
    in[1] = add_param(e, inst, "weight", 4, (int64_t[]){a.out, c / a.groups, a.kernel[0], a.kernel[1]}, INIT_XAVIER, sp);
    if (a.bias) in[2] = add_param(e, inst, "bias", 1, &a.out, INIT_ZERO, sp);
    return v_tensor(add_node(e, OP_CONV, inst, in, a.bias ? 3 : 2, &a, sp));
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

static EVal build_unary(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    char what[64];
    snprintf(what, sizeof what, "%s's input", b->name);
    Value *x = want_tensor(e, args[0], spans[0], what);
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, (Op)b->op, inst, &x, 1, NULL, sp));
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
    a.count_pad = true;
    const char *inst = instance_name(e, b->name, as_name, sp);
    return v_tensor(add_node(e, (Op)b->op, inst, &x, 1, &a, sp));
}

static EVal build_dim(Eval *e, const Builtin *b, EVal *args, const Span *spans, const char *as_name, Span sp) {
    char what[64];
    snprintf(what, sizeof what, "%s's argument", b->name);
    Value *x = want_tensor(e, args[0], spans[0], what);
    if (as_name) fail(e, sp, "'as' names an op or block instance; %s is a compile-time function", b->name);
    int axis = b->name[0] == 'c' ? 1 : b->name[0] == 'h' ? 2 : 3;
    if (x->shape.rank <= axis) {
        char buf[128];
        fail(e, sp, "%s of a tensor of rank %d (%s)", b->name, x->shape.rank - 1, shape_str(&x->shape, buf, sizeof buf));
    }
    return v_int(x->shape.d[axis]);
}

static const Builtin builtins[] = {
    {"conv", OP_CONV, {"x", "out", "kernel", "stride", "pad", "dilation", "groups", "bias"},
     {"", "", "", "1", "0", "1", "1", "true"}, build_conv},
    {"linear", OP_LINEAR, {"x", "out", "bias"}, {"", "", "true"}, build_linear},
    {"batchnorm", OP_BATCHNORM, {"x", "eps", "momentum"}, {"", "1e-5", "0.1"}, build_batchnorm},
    {"relu", OP_RELU, {"x"}, {""}, build_unary},
    {"tanh", OP_TANH, {"x"}, {""}, build_unary},
    {"sigmoid", OP_SIGMOID, {"x"}, {""}, build_unary},
    {"maxpool", OP_MAXPOOL, {"x", "kernel", "stride", "pad"}, {"", "", "=kernel", "0"}, build_pool},
    {"avgpool", OP_AVGPOOL, {"x", "kernel", "stride", "pad"}, {"", "", "=kernel", "0"}, build_pool},
    {"global_avgpool", OP_GLOBAL_AVGPOOL, {"x"}, {""}, build_unary},
    {"flatten", OP_FLATTEN, {"x"}, {""}, build_unary},
    {"softmax", OP_SOFTMAX, {"x"}, {""}, build_unary},
    {"channels", -1, {"x"}, {""}, build_dim},
    {"height", -1, {"x"}, {""}, build_dim},
    {"width", -1, {"x"}, {""}, build_dim},
};

static const Builtin *find_builtin(const char *name) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
    return NULL;
}

static EVal default_value(const char *text) {
    if (strcmp(text, "true") == 0) return v_bool(true);
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

static EVal call_builtin(Eval *e, const Builtin *b, const Ast *call, const char *as_name) {
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
    if (e->frame->depth + 1 > MAX_BLOCK_DEPTH)
        fail(e, call->span, "blocks nest deeper than %d (is '%s' recursive?)", MAX_BLOCK_DEPTH, blk->name);
    int nparams = blk->list2.n;
    const char **names = arena_alloc(e->arena, sizeof *names * (size_t)(nparams + 1));
    for (int i = 0; i < nparams; i++) names[i] = blk->list2.items[i]->name;
    EVal *args = arena_alloc(e->arena, sizeof *args * (size_t)(nparams + 1));
    bool *given = arena_alloc(e->arena, (size_t)nparams + 1);
    bind_args(e, call, blk->name, names, nparams, args, NULL, given);
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
    e->frame = f.parent;
    if (!f.returned) fail(e, call->span, "block '%s' ends without 'return'", blk->name);
    return f.ret;
}

static EVal eval_call(Eval *e, const Ast *call, const char *as_name) {
    const Ast *blk = find_block(e, call->name);
    if (blk) return call_block(e, blk, call, as_name);
    const Builtin *b = find_builtin(call->name);
    if (b) return call_builtin(e, b, call, as_name);
    fail(e, call->name_span.end > call->name_span.begin ? call->name_span : call->span, "unknown op or block '%s'",
         call->name);
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
        for (int i = 0; i < a.n; i++)
            if (!values_equal(e, n, a.items[i], b.items[i])) return false;
        return true;
    default: fail(e, n->span, "cannot compare %s values", kind_name(a.k));
    }
}

static EVal tensor_binary(Eval *e, const Ast *n, AstOp op, EVal a, EVal b) {
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
    if (op == OP_ADD_ && a.k == E_STRING && b.k == E_STRING)
        return v_str(arena_printf(e->arena, "%s%s", a.s, b.s));
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

static EVal eval_expr(Eval *e, const Ast *n) {
    switch (n->kind) {
    case A_INT: return v_int(n->ival);
    case A_FLOAT: return v_float(n->fval);
    case A_BOOL: return v_bool(n->bval);
    case A_STRING_LIT: return v_str(n->name);
    case A_STRING: {
        size_t len = 0, cap = 64;
        char *s = malloc(cap);
        s[0] = 0;
        for (int i = 0; i < n->list.n; i++) {
            const Ast *part = n->list.items[i];
            char buf[512];
            if (part->kind == A_STRING_LIT)
                snprintf(buf, sizeof buf, "%s", part->name);
            else
                format_value(e, eval_expr(e, part), part->span, buf, sizeof buf);
            size_t k = strlen(buf);
            if (len + k + 1 > cap) {
                cap = 2 * (len + k + 1);
                s = realloc(s, cap);
            }
            memcpy(s + len, buf, k + 1);
            len += k;
        }
        EVal v = v_str(arena_strdup(e->arena, s));
        free(s);
        return v;
    }
    case A_NAME: {
        Binding *b = lookup(e->frame, n->name);
        if (b) return b->v;
        if (find_builtin(n->name) || find_block(e, n->name))
            fail(e, n->span, "'%s' is an op or block: call it, as %s(x) or x |> %s", n->name, n->name, n->name);
        fail(e, n->span, "unknown name '%s'", n->name);
    }
    case A_LIST: {
        EVal v = {.k = E_LIST, .n = n->list.n};
        v.items = arena_alloc(e->arena, sizeof *v.items * (size_t)(n->list.n + 1));
        for (int i = 0; i < n->list.n; i++) v.items[i] = eval_expr(e, n->list.items[i]);
        return v;
    }
    case A_INDEX: {
        EVal base = eval_expr(e, n->a);
        if (base.k != E_LIST) fail(e, n->a->span, "only a list can be indexed, this is %s", kind_name(base.k));
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
    default: fail(e, n->span, "internal error: %s is not an expression (%s:%d)", ast_kind_name(n->kind), __FILE__, __LINE__);
    }
}

/* ---- statements ------------------------------------------------------------------ */

static void exec(Eval *e, const Ast *s) {
    switch (s->kind) {
    case A_ASSIGN: bind(e, s->name, eval_expr(e, s->a)); break;
    case A_EXPR: {
        EVal v = eval_expr(e, s->a);
        (void)v;
        break;
    }
    case A_INPUT: {
        if (e->frame->block) fail(e, s->span, "'input' is only allowed in the net, not in a block");
        for (int i = 0; i < e->g->ninputs; i++)
            if (strcmp(e->g->inputs[i]->name, s->name) == 0) fail(e, s->name_span, "duplicate input '%s'", s->name);
        EVal dims = eval_expr(e, s->a);
        if (dims.k != E_LIST || dims.n < 1 || dims.n > IR_MAX_RANK - 1)
            fail(e, s->a->span, "an input's shape must be a list of 1 to %d sizes, like [3, 224, 224]", IR_MAX_RANK - 1);
        Shape sh = {.rank = dims.n + 1};
        sh.d[0] = e->g->batch;
        int64_t total = e->g->batch;
        for (int i = 0; i < dims.n; i++) {
            sh.d[i + 1] = want_int(e, dims.items[i], s->a->span, "an input size");
            if (sh.d[i + 1] < 1) fail(e, s->a->span, "input sizes must be positive, got %" PRId64, sh.d[i + 1]);
            if (__builtin_mul_overflow(total, sh.d[i + 1], &total) || total > ((int64_t)1 << 40))
                fail(e, s->a->span, "input '%s' is too large", s->name);
        }
        bind(e, s->name, v_tensor(graph_add_input(e->g, s->name, sh, s->span)));
        break;
    }
    case A_OUTPUT: {
        if (e->frame->block) fail(e, s->span, "'output' is only allowed in the net, not in a block");
        for (int i = 0; i < e->g->noutputs; i++)
            if (strcmp(e->g->outputs[i].name, s->name) == 0) fail(e, s->name_span, "duplicate output '%s'", s->name);
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
    default: fail(e, s->span, "internal error: %s is not a statement (%s:%d)", ast_kind_name(s->kind), __FILE__, __LINE__);
    }
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

Graph *eval_program(const AstProgram *p, int batch) {
    if (!p->net) {
        diag_plain_error("%s: no 'net' in this file", p->src->path);
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
        return NULL;
    }
    check_blocks(&e);
    exec_list(&e, &p->net->list);
    if (e.g->ninputs == 0) fail(&e, p->net->name_span, "net '%s' has no input", p->net->name);
    if (e.g->noutputs == 0) fail(&e, p->net->name_span, "net '%s' has no output", p->net->name);
    arena_free(e.arena);
    return e.g;
}
