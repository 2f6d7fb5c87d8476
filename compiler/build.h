/* What an op's builders see of the language: the compile-time values a .net
 * call passes, each builtin's argument list with typed defaults, and the
 * calls a builder makes to check its arguments, name its instance, create
 * its parameters and add its node.
 *
 * The evaluator (dsl/eval.c) binds a call's arguments by the builtin's
 * ArgSpec list, fills a BuildCtx and calls the builder; the builder reads
 * its arguments with the arg_* functions, which report a wrong one at its
 * place in the source and stop evaluation through the hooks (the evaluator
 * adds its "in block ... instantiated here" notes and unwinds).  This header
 * is below the front end: it names no type of dsl/.
 *
 * Ownership: ArgVal lists and strings belong to the evaluator's arena;
 * values and nodes to the graph's. */
#ifndef NETC_BUILD_H
#define NETC_BUILD_H

#include "ir.h"

/* A compile-time value of the language. */
typedef enum { E_NONE, E_INT, E_FLOAT, E_BOOL, E_STRING, E_LIST, E_TENSOR } EKind;

typedef struct ArgVal {
    EKind k;
    int64_t i;
    double f;
    bool b;
    const char *s;
    struct ArgVal *items;
    int n;
    int depth; /* a list: how deeply lists nest in it (1 for a flat one) */
    Value *t;
} ArgVal;

/* "an int", "a list", ... for messages. */
const char *argval_kind_name(EKind k);

/* An argument's default: required, or a value; DEFAULT_NONE means not given
 * (the builder decides, e.g. a pool's stride defaults to its kernel). */
typedef enum { DEF_REQUIRED, DEF_NONE, DEF_INT, DEF_FLOAT, DEF_BOOL, DEF_STRING } DefaultKind;

typedef struct ArgSpec {
    const char *name;
    DefaultKind def;
    int64_t i;
    double f;
    const char *s;
} ArgSpec;

#define REQUIRED(n) {(n), DEF_REQUIRED, 0, 0, NULL}
#define DEFAULT_NONE(n) {(n), DEF_NONE, 0, 0, NULL}
#define DEFAULT_INT(n, v) {(n), DEF_INT, (v), 0, NULL}
#define DEFAULT_FLOAT(n, v) {(n), DEF_FLOAT, 0, (v), NULL}
#define DEFAULT_BOOL(n, v) {(n), DEF_BOOL, (v), 0, NULL}
#define DEFAULT_STRING(n, v) {(n), DEF_STRING, 0, 0, (v)}

#define BUILD_MAX_ARGS 12

typedef struct BuildCtx BuildCtx;

/* A name the language calls: positional-or-keyword arguments in order
 * (the first is the input tensor), or, variadic, any number of positional
 * ones given to the builder as one list in argument 0 (concat). */
typedef struct Builtin {
    const char *name;
    ArgSpec args[BUILD_MAX_ARGS]; /* ended by a NULL name */
    bool variadic;
    /* Makes the op's node (and its parameters); its outputs are the call's
     * value (a list when there are several). */
    struct Node *(*build)(BuildCtx *c);
} Builtin;

/* What the evaluator provides; eval is its state. */
typedef struct BuildHooks {
    /* After an error was reported: the notes of the block instances it
     * happened in, then evaluation stops (does not return). */
    void (*bail)(void *eval) __attribute__((noreturn));
    /* The instance path of a call: `as_name`, or <what><k> in the current
     * block instance; reports a duplicate (and bails). */
    const char *(*instance)(void *eval, const char *what, const char *as_name, Span sp);
    /* Whether sp has not been warned about yet (and from now on, has). */
    bool (*first_warning)(void *eval, Span sp);
    /* After a warning: the notes of the block instances. */
    void (*warning_notes)(void *eval);
} BuildHooks;

struct BuildCtx {
    Graph *g;
    Arena *arena;             /* the evaluator's: compile-time values */
    const Builtin *builtin;   /* the builtin called */
    Op op;                    /* the op whose builtin it is */
    ArgVal *args;             /* by ArgSpec position (variadic: args[0] is the list) */
    const Span *spans;        /* each argument's place (variadic: each element's) */
    const char *as_name;      /* `as` name of the call, or NULL */
    Span call;                /* the whole call */
    void *eval;
    const BuildHooks *hooks;
};

/* Reports an error at sp and stops evaluation. */
_Noreturn __attribute__((format(printf, 3, 4))) void build_fail(BuildCtx *c, Span sp, const char *fmt, ...);

/* Checked conversions of a value, the error at sp naming it as `what`. */
int64_t arg_int(BuildCtx *c, ArgVal v, Span sp, const char *what);
double arg_number(BuildCtx *c, ArgVal v, Span sp, const char *what); /* an int or a float */
bool arg_bool(BuildCtx *c, ArgVal v, Span sp, const char *what);
Value *arg_tensor(BuildCtx *c, ArgVal v, Span sp, const char *what);
/* An int that must fit a C int and lie in [lo, hi]. */
int arg_small(BuildCtx *c, ArgVal v, Span sp, const char *what, int64_t lo, int64_t hi);
/* An int, or a list of two ints: [height, width], each at least lo. */
void arg_pair(BuildCtx *c, ArgVal v, Span sp, const char *what, int64_t lo, int out[2]);
/* pad as an int (every side), [h, w] or [top, bottom, left, right]. */
void arg_pads(BuildCtx *c, ArgVal v, Span sp, const char *what, int pad[4]);

/* Argument i of the call and its place. */
static inline ArgVal build_arg(const BuildCtx *c, int i) { return c->args[i]; }
static inline Span build_span(const BuildCtx *c, int i) { return c->spans[i]; }

/* The call's instance path (builtin `what`, usually c->builtin->name). */
const char *build_instance(BuildCtx *c, const char *what);
/* Parameter <inst>.<pname> with shape d (checked against the size limit). */
Value *build_param(BuildCtx *c, const char *inst, const char *pname, int rank, const int64_t *d, ParamInit init);
/* A node at the call (shape inference may report and stop). */
Node *build_node(BuildCtx *c, Op op, const char *inst, Value **in, int nin, const Attrs *a);
/* Whether to warn at sp (once per place); after diag_warning call build_warning_notes. */
bool build_first_warning(BuildCtx *c, Span sp);
void build_warning_notes(BuildCtx *c);

/* The op the called builtin makes. */
Op op_of_builtin(const BuildCtx *c);
/* The builder of ops whose one argument is the input tensor (relu, flatten). */
Node *build_unary(BuildCtx *c);

/* Warns (once per call) when a sliding window is wider than its input and
 * some of its taps only ever meet padding; op names the builtin. */
void build_warn_wide_window(BuildCtx *c, const char *op, const Value *x, const int kernel[2], const int stride[2],
                            const int pad[4], const int dilation[2]);

/* The builtin named `name` among every op's builtins, or NULL; *op gets its op. */
const Builtin *builtin_find(const char *name, Op *op);

#endif
