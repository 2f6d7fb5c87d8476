/* Calling builtins: a call's arguments bound by the registry's ArgSpec
 * lists (defaults filled in, variadic ones gathered into a list) and
 * handed to the op's builder with the hooks the evaluator gives builders
 * (compiler/build.h); and the compile-time functions channels, height and
 * width. */
#include "eval_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- the builders' hooks (compiler/build.h) ------------------------------------ */

static __attribute__((noreturn)) void hook_bail(void *e) { eval_bail(e); }
static const char *hook_instance(void *e, const char *what, const char *as_name, Span sp) {
    return instance_name(e, what, as_name, sp);
}
static bool hook_first_warning(void *e, Span sp) { return first_warning(e, sp); }
static void hook_warning_notes(void *e) { eval_instance_notes(e); }
const BuildHooks eval_build_hooks = {hook_bail, hook_instance, hook_first_warning, hook_warning_notes};

/* ---- calling a builtin of the registry ------------------------------------------ */

/* What a call gives: its node's output, or the list of its outputs when it
 * has several (maxpool_idx: [values, indices]). */
static EVal node_result(Eval *e, Node *n) {
    if (n->nout == 1) return v_tensor(n->out[0]);
    EVal l = {.k = E_LIST, .n = n->nout, .depth = 1};
    l.items = arena_alloc(e->arena, sizeof *l.items * (size_t)n->nout);
    for (int i = 0; i < n->nout; i++) l.items[i] = v_tensor(n->out[i]);
    return l;
}

/* Positional and keyword arguments of a call, matched against names. */
void bind_args(Eval *e, const Ast *call, const char *what, const char *const *names, int nnames, EVal *out,
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
                eval_fail(e, arg->name_span.end > arg->name_span.begin ? arg->name_span : arg->span,
                          "%s has no argument '%s' (its arguments: %s)", what, arg->name, list);
            }
            if (given[slot]) eval_fail(e, arg->span, "argument '%s' of %s is given twice", arg->name, what);
            out[slot] = eval_expr(e, arg->a);
        } else {
            if (seen_kw) eval_fail(e, arg->span, "a positional argument after a keyword argument");
            if (pos >= nnames)
                eval_fail(e, arg->span, "%s takes at most %d argument%s, got %d", what, nnames,
                          nnames == 1 ? "" : "s", call->list.n);
            slot = pos++;
            out[slot] = eval_expr(e, arg);
        }
        given[slot] = true;
        if (spans) spans[slot] = arg->kind == A_KWARG ? arg->a->span : arg->span;
    }
}

/* Calls builtin b (of op `op`) with the bound arguments. */
static EVal run_builder(Eval *e, const Builtin *b, Op op, EVal *args, const Span *spans, const char *as_name,
                        Span sp) {
    BuildCtx c = e->bc;
    c.builtin = b;
    c.op = op;
    c.args = args;
    c.spans = spans;
    c.as_name = as_name;
    c.call = sp;
    return node_result(e, b->build(&c));
}

/* The positional arguments of a variadic op, as one list; a single list
 * argument stands for its elements. */
static EVal call_variadic(Eval *e, const Builtin *b, Op op, const Ast *call, const char *as_name) {
    int n = call->list.n;
    EVal list = {.k = E_LIST, .n = n, .depth = 1};
    list.items = arena_alloc(e->arena, sizeof *list.items * (size_t)(n + 1));
    Span *spans = arena_alloc(e->arena, sizeof *spans * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        const Ast *arg = call->list.items[i];
        if (arg->kind == A_KWARG)
            eval_fail(e, arg->span, "%s takes only positional arguments (the tensors to join)", b->name);
        list.items[i] = eval_expr(e, arg);
        spans[i] = arg->span;
    }
    if (n == 1 && list.items[0].k == E_LIST) {
        Span sp = spans[0];
        list = list.items[0];
        spans = arena_alloc(e->arena, sizeof *spans * (size_t)(list.n + 1));
        for (int i = 0; i < list.n; i++) spans[i] = sp;
    }
    return run_builder(e, b, op, &list, spans, as_name, call->span);
}

/* An argument's default value (DEF_NONE: not given; the builder decides). */
static EVal default_value(const ArgSpec *a) {
    switch (a->def) {
    case DEF_INT: return v_int(a->i);
    case DEF_FLOAT: return v_float(a->f);
    case DEF_BOOL: return v_bool(a->i != 0);
    case DEF_STRING: return v_str(a->s);
    default: return (EVal){.k = E_NONE};
    }
}

/* Calls builtin b (of op `op`): the call's arguments bound by b's ArgSpec
 * list, or gathered into one list if b is variadic. */
EVal call_builtin(Eval *e, const Builtin *b, Op op, const Ast *call, const char *as_name) {
    if (b->variadic) return call_variadic(e, b, op, call, as_name);
    /* initialization (issue 12): init and bias_init, read here for every op that makes parameters */
    const Ast *init, *bias_init;
    call = init_args_take(e, call, &init, &bias_init);
    InitChoice wc = {0}, bc = {0};
    if (init) init_choice_from_ast(e, init->a, &wc);
    if (bias_init) init_choice_from_ast(e, bias_init->a, &bc);
    int first = e->g->nvalues;
    const char *names[BUILD_MAX_ARGS];
    int nnames = 0;
    while (nnames < BUILD_MAX_ARGS && b->args[nnames].name) {
        names[nnames] = b->args[nnames].name;
        nnames++;
    }
    EVal args[BUILD_MAX_ARGS] = {0};
    bool given[BUILD_MAX_ARGS] = {0};
    Span spans[BUILD_MAX_ARGS];
    for (int i = 0; i < BUILD_MAX_ARGS; i++) spans[i] = call->span;
    bind_args(e, call, b->name, names, nnames, args, spans, given);
    for (int i = 0; i < nnames; i++) {
        if (given[i]) continue;
        if (b->args[i].def == DEF_REQUIRED) {
            if (i == 0)
                eval_fail(e, call->span, "%s needs an input tensor: %s(x, ...) or x |> %s(...)", b->name, b->name,
                          b->name);
            eval_fail(e, call->span, "%s needs argument '%s'", b->name, names[i]);
        }
        args[i] = default_value(&b->args[i]);
    }
    EVal r = run_builder(e, b, op, args, spans, as_name, call->span);
    init_args_apply(e, b->name, init, bias_init, &wc, &bc, first);
    return r;
}

/* ---- the compile-time functions ------------------------------------------------ */

/* The compile-time functions: channels(x), height(x), width(x). */
const char *const dim_functions[3] = {"channels", "height", "width"};

int find_dim_function(const char *name) {
    for (int i = 0; i < 3; i++)
        if (strcmp(dim_functions[i], name) == 0) return i + 1; /* the axis */
    return 0;
}

bool is_builtin(const char *name) { return builtin_find(name, NULL) || find_dim_function(name); }

/* channels(x), height(x), width(x): a size of x, known at compile time. */
EVal call_dim_function(Eval *e, int axis, const Ast *call, const char *as_name) {
    const char *name = dim_functions[axis - 1];
    EVal arg = {0};
    bool given = false;
    Span sp = call->span;
    bind_args(e, call, name, (const char *const[]){"x"}, 1, &arg, &sp, &given);
    if (!given) eval_fail(e, call->span, "%s needs an input tensor: %s(x, ...) or x |> %s(...)", name, name, name);
    char what[64];
    snprintf(what, sizeof what, "%s's argument", name);
    Value *x = want_tensor(e, arg, sp, what);
    if (as_name) eval_fail(e, call->span, "'as' names an op or block instance; %s is a compile-time function", name);
    if (x->shape.rank <= axis) {
        char buf[128];
        eval_fail(e, call->span, "%s needs a [C, H, W] tensor, got %s", name, value_sample_str(x, buf, sizeof buf));
    }
    return v_int(x->shape.d[axis]);
}
