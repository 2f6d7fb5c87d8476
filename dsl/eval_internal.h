/* What the evaluator's files share (dsl/eval.c, builtins.c, naming.c,
 * lint.c): its state (Eval), the environments (Frame, Binding), the
 * bookkeeping of instance names and warnings, the compile-time values'
 * constructors, and the functions the files call in each other.  Not part
 * of the API: eval.h is.
 *
 * Ownership: what an Eval points to lives in its arena, except the graph
 * (the caller's after a successful eval_program) and the instance hash set
 * (malloc'd; eval_program frees it). */
#ifndef NETC_EVAL_INTERNAL_H
#define NETC_EVAL_INTERNAL_H

#include "eval.h"

#include "../compiler/build.h"
#include "../compiler/init.h"

#include <setjmp.h>

/* Compile-time values are the builders' ArgVal (compiler/build.h). */
typedef ArgVal EVal;

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

/* A `for` loop being run: its statement and the current value of its
 * variable (for the notes of an error in it). */
typedef struct LoopIter {
    const Ast *stmt;
    int64_t i;
    struct LoopIter *outer;
} LoopIter;

typedef struct Frame {
    const char *prefix;   /* "layer1.0." inside that block instance, "" in the net */
    const Ast *block;     /* the A_BLOCK being expanded, NULL in the net */
    Span call;            /* the call that made this instance */
    Binding *vars;
    Counter *unnamed;
    LoopIter *loops;      /* the loops running in this frame, innermost first */
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

/* A `freeze` statement's pattern, matched against the parameters once the
 * whole net is built (compiler/freeze.c). */
typedef struct FreezeDecl {
    const char *pattern;
    Span span;
    struct FreezeDecl *next;
} FreezeDecl;

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
    BuildCtx bc; /* the builders' context: graph, arena and hooks (call_builtin fills the rest) */
    /* Initialization (issue 12): the net-wide `init` defaults, by InitKey, and where each was given. */
    InitChoice init_defaults[INIT_KEY_COUNT];
    Span init_default_spans[INIT_KEY_COUNT];
    FreezeDecl *freezes; /* the `freeze` statements' patterns, in source order */
    /* The unnamed call of a pipe ending in `as` being evaluated (its span),
     * and the instance path it got: for warn_pipe_name. */
    Span watched_call;
    const char *watched_path;
} Eval;

/* ---- errors (eval.c) --------------------------------------------------------- */

/* The notes of the loop iterations and block instances the current frame is
 * in, innermost first. */
void eval_instance_notes(Eval *e);
/* After an error at the current frame: the instance notes, then stop. */
_Noreturn void eval_bail(Eval *e);
/* Reports an error at sp, then eval_bail. */
_Noreturn __attribute__((format(printf, 3, 4))) void eval_fail(Eval *e, Span sp, const char *fmt, ...);

/* ---- values ------------------------------------------------------------------ */

static inline EVal v_int(int64_t i) { return (EVal){.k = E_INT, .i = i}; }
static inline EVal v_float(double f) { return (EVal){.k = E_FLOAT, .f = f}; }
static inline EVal v_bool(bool b) { return (EVal){.k = E_BOOL, .b = b}; }
static inline EVal v_str(const char *s) { return (EVal){.k = E_STRING, .s = s}; }
static inline EVal v_tensor(Value *t) { return (EVal){.k = E_TENSOR, .t = t}; }

static inline int64_t want_int(Eval *e, EVal v, Span sp, const char *what) { return arg_int(&e->bc, v, sp, what); }
static inline double want_number(Eval *e, EVal v, Span sp, const char *what) { return arg_number(&e->bc, v, sp, what); }
static inline bool want_bool(Eval *e, EVal v, Span sp, const char *what) { return arg_bool(&e->bc, v, sp, what); }
static inline Value *want_tensor(Eval *e, EVal v, Span sp, const char *what) { return arg_tensor(&e->bc, v, sp, what); }

/* ---- interpretation (eval.c) ----------------------------------------------- */

EVal eval_expr(Eval *e, const Ast *n);
/* A call of an op or block (as_name: its `as`, or NULL). */
EVal eval_call(Eval *e, const Ast *call, const char *as_name);

/* ---- builtins (builtins.c) ------------------------------------------------- */

/* The builders' hooks (compiler/build.h). */
extern const BuildHooks eval_build_hooks;

/* The compile-time functions: channels(x), height(x), width(x). */
extern const char *const dim_functions[3];
/* The axis a compile-time function reads (1 for channels), or 0: not one. */
int find_dim_function(const char *name);
/* Whether name is a builtin: an op's or a compile-time function. */
bool is_builtin(const char *name);

/* Positional and keyword arguments of a call, matched against names. */
void bind_args(Eval *e, const Ast *call, const char *what, const char *const *names, int nnames, EVal *out,
               Span *spans, bool *given);
EVal call_builtin(Eval *e, const Builtin *b, Op op, const Ast *call, const char *as_name);
/* channels(x), height(x), width(x): a size of x, known at compile time. */
EVal call_dim_function(Eval *e, int axis, const Ast *call, const char *as_name);

/* ---- naming (naming.c) ------------------------------------------------------ */

/* The instance name of an op or block call: the `as` name, or <what><k>. */
const char *instance_name(Eval *e, const char *what, const char *as_name, Span sp);

/* Keeps the closest candidate to name, if close enough to be a typo. */
void consider_suggestion(const char *name, const char *cand, const char **best, int *best_d);

/* ---- warnings (lint.c) -------------------------------------------------------- */

/* Whether this is the first warning at sp (records it). */
bool first_warning(Eval *e, Span sp);
/* An unnamed call of a pipe that ends in `as` (call->pipe_as), evaluated
 * with a warning if it made parameters, whose names are then automatic. */
EVal eval_pipe_stage(Eval *e, const Ast *call);

/* Records what statement s made, for warn_unused (once per statement and value). */
void note_use(Eval *e, const Ast *s, Value *v);
/* The warnings after a successful evaluation: unused blocks, then unused
 * inputs and tensors. */
void warn_unused_blocks(Eval *e);
void warn_unused(Eval *e);

/* ---- initialization (init_syntax.c, issue 12) ---------------------------------- */
/* Whether a variable of that name is bound where evaluation is (eval.c). */
bool eval_has_var(Eval *e, const char *name);
/* A scheme as written (a name, a call, a number) into c. */
void init_choice_from_ast(Eval *e, const Ast *n, InitChoice *c);
/* call without its `init` and `bias_init` arguments (call itself if it has
 * neither); *init and *bias_init get them (A_KWARG) or NULL. */
const Ast *init_args_take(Eval *e, const Ast *call, const Ast **init, const Ast **bias_init);
/* Sets the weight's and the bias's scheme (wc, bc, for the arguments that
 * are not NULL) among the parameters made since value `first` by op. */
void init_args_apply(Eval *e, const char *op, const Ast *init, const Ast *bias_init, const InitChoice *wc,
                     const InitChoice *bc, int first);
/* The net-wide `init key = scheme, ...;` statement. */
void exec_init_defaults(Eval *e, const Ast *s);
#endif
