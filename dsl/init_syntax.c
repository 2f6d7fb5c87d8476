/* Initialization in the language (issue 12): a layer's `init = scheme` and
 * `bias_init = scheme` arguments, and the net-wide `init key = scheme, ...;`
 * statement.
 *
 * A scheme is written as torch.nn.init names it, without the trailing '_':
 * a name (`kaiming_normal`), a call with the function's arguments
 * (`kaiming_normal(mode = fan_out, nonlinearity = relu)`, `constant(0.5)`),
 * or a number, which means constant(number).  Scheme names are read here,
 * not evaluated as variables: a scheme name wins over a variable of that
 * name.  The mode and the nonlinearity are written as bare names (or
 * strings).  Everything resolves at compile time into an InitChoice
 * (compiler/init.h): the nonlinearity into its gain, as
 * torch.nn.init.calculate_gain gives it. */
#include "eval_internal.h"

#include <math.h>
#include <string.h>

#include "../compiler/init.h"

/* ---- schemes ---------------------------------------------------------------------- */

enum { MAX_SCHEME_ARGS = 3 };

typedef enum { ARG_NUMBER, ARG_GAIN, ARG_MODE, ARG_NONLINEARITY } ArgKind;

typedef struct SchemeArg {
    const char *name;
    ArgKind kind;
    bool required;
    double def; /* a number's default; for a mode 0 (fan_in); for a nonlinearity its index */
} SchemeArg;

typedef struct Scheme {
    const char *name; /* torch.nn.init's, without the '_' */
    ParamInit init;
    SchemeArg args[MAX_SCHEME_ARGS + 1];
} Scheme;

/* calculate_gain's nonlinearities; leaky_relu's slope is kaiming's `a`
 * (elsewhere PyTorch's default, 0.01). */
typedef enum { NL_LINEAR, NL_CONV, NL_CONV2D, NL_SIGMOID, NL_TANH, NL_RELU, NL_LEAKY_RELU, NL_SELU, NL_COUNT } Nonlin;
static const char *const nonlin_names[NL_COUNT] = {"linear", "conv", "conv2d", "sigmoid",
                                                   "tanh",   "relu", "leaky_relu", "selu"};

static double nonlin_gain(Nonlin nl, double slope) {
    switch (nl) {
    case NL_TANH: return 5.0 / 3.0;
    case NL_RELU: return sqrt(2.0);
    case NL_LEAKY_RELU: return sqrt(2.0 / (1.0 + slope * slope));
    case NL_SELU: return 3.0 / 4.0;
    default: return 1.0;
    }
}

#define GAIN {"gain", ARG_GAIN, false, 1.0}
#define KAIMING {{"a", ARG_NUMBER, false, 0.0}, {"mode", ARG_MODE, false, 0}, \
                 {"nonlinearity", ARG_NONLINEARITY, false, NL_LEAKY_RELU}}

static const Scheme schemes[] = {
    {"zeros", INIT_ZERO, {{0}}},
    {"ones", INIT_ONE, {{0}}},
    {"constant", INIT_CONSTANT, {{"val", ARG_NUMBER, true, 0}}},
    {"uniform", INIT_UNIFORM, {{"a", ARG_NUMBER, false, 0.0}, {"b", ARG_NUMBER, false, 1.0}}},
    {"normal", INIT_NORMAL, {{"mean", ARG_NUMBER, false, 0.0}, {"std", ARG_NUMBER, false, 1.0}}},
    {"xavier_uniform", INIT_XAVIER_UNIFORM, {GAIN}},
    {"xavier_normal", INIT_XAVIER_NORMAL, {GAIN}},
    {"kaiming_uniform", INIT_KAIMING_UNIFORM, KAIMING},
    {"kaiming_normal", INIT_KAIMING_NORMAL, KAIMING},
    /* PyTorch has no lecun_normal; it is normal_(0, sqrt(1 / fan_in)) */
    {"lecun_normal", INIT_LECUN_NORMAL, {{0}}},
    {"orthogonal", INIT_ORTHOGONAL, {GAIN}},
};
enum { NSCHEMES = sizeof schemes / sizeof *schemes };

static const Scheme *find_scheme(const char *name) {
    for (int i = 0; i < NSCHEMES; i++)
        if (strcmp(schemes[i].name, name) == 0) return &schemes[i];
    return NULL;
}

static const char *scheme_list(void) {
    return "zeros, ones, constant, uniform, normal, xavier_uniform, xavier_normal, kaiming_uniform, "
           "kaiming_normal, lecun_normal, orthogonal";
}

/* A bare name or a plain string as a word (a mode, a nonlinearity), else NULL. */
static const char *word_of(const Ast *n) {
    if (n->kind == A_NAME) return n->name;
    if (n->kind == A_STRING && n->name) return n->name;
    return NULL;
}

static _Noreturn void unknown_scheme(Eval *e, Span sp, const char *name) {
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < NSCHEMES; i++) consider_suggestion(name, schemes[i].name, &best, &best_d);
    if (best) eval_fail(e, sp, "unknown initialization '%s'; did you mean '%s'?", name, best);
    eval_fail(e, sp, "unknown initialization '%s' (the schemes: %s)", name, scheme_list());
}

static Nonlin want_nonlin(Eval *e, const Scheme *s, const Ast *v) {
    const char *w = word_of(v);
    for (int i = 0; w && i < NL_COUNT; i++)
        if (strcmp(nonlin_names[i], w) == 0) return (Nonlin)i;
    eval_fail(e, v->span,
              "%s's nonlinearity must be linear, conv, conv2d, sigmoid, tanh, relu, leaky_relu or selu%s%s", s->name,
              w ? ", got " : "", w ? w : "");
}

void init_choice_from_ast(Eval *e, const Ast *n, InitChoice *out) {
    *out = (InitChoice){.set = true};
    const Scheme *s = NULL;
    const AstList *args = NULL;
    if (n->kind == A_NAME) {
        s = find_scheme(n->name);
        if (!s && !eval_has_var(e, n->name)) unknown_scheme(e, n->span, n->name);
    } else if (n->kind == A_CALL) {
        s = find_scheme(n->name);
        if (!s) unknown_scheme(e, n->name_span, n->name);
        args = &n->list;
    }
    if (!s) { /* a number: constant(number) */
        EVal v = eval_expr(e, n);
        if (v.k != E_INT && v.k != E_FLOAT)
            eval_fail(e, n->span, "an initialization must be a scheme (%s) or a number, got %s", scheme_list(),
                      argval_kind_name(v.k));
        out->scheme = INIT_CONSTANT;
        out->a = v.k == E_INT ? (double)v.i : v.f;
        return;
    }
    out->scheme = s->init;
    int nargs = 0;
    while (nargs < MAX_SCHEME_ARGS && s->args[nargs].name) nargs++;
    const Ast *given[MAX_SCHEME_ARGS] = {0};
    int pos = 0;
    for (int i = 0; args && i < args->n; i++) {
        const Ast *a = args->items[i];
        int slot;
        if (a->kind == A_KWARG) {
            for (slot = 0; slot < nargs; slot++)
                if (strcmp(s->args[slot].name, a->name) == 0) break;
            if (slot == nargs) {
                char list[128] = "";
                for (int j = 0; j < nargs; j++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", s->args[j].name);
                eval_fail(e, a->name_span.end > a->name_span.begin ? a->name_span : a->span,
                          nargs ? "%s has no argument '%s' (its arguments: %s)" : "%s has no argument '%s'%s",
                          s->name, a->name, nargs ? list : " (it takes none)");
            }
            if (given[slot]) eval_fail(e, a->span, "argument '%s' of %s is given twice", a->name, s->name);
            given[slot] = a->a;
        } else {
            if (pos >= nargs)
                eval_fail(e, a->span, "%s takes at most %d argument%s, got %d", s->name, nargs, nargs == 1 ? "" : "s",
                          args->n);
            slot = pos++;
            given[slot] = a;
        }
    }
    double num[MAX_SCHEME_ARGS] = {0};
    int mode = 0;
    Nonlin nl = NL_LEAKY_RELU;
    double gain = 1.0;
    for (int j = 0; j < nargs; j++) {
        const SchemeArg *sa = &s->args[j];
        const Ast *v = given[j];
        if (!v && sa->required) eval_fail(e, n->span, "%s needs argument '%s'", s->name, sa->name);
        char what[96];
        snprintf(what, sizeof what, "%s's %s", s->name, sa->name);
        switch (sa->kind) {
        case ARG_NUMBER: num[j] = v ? want_number(e, eval_expr(e, v), v->span, what) : sa->def; break;
        case ARG_MODE: {
            const char *w = v ? word_of(v) : "fan_in";
            if (!w || (strcmp(w, "fan_in") != 0 && strcmp(w, "fan_out") != 0))
                eval_fail(e, v->span, "%s's mode must be fan_in or fan_out%s%s", s->name, w ? ", got " : "", w ? w : "");
            mode = strcmp(w, "fan_out") == 0;
            break;
        }
        case ARG_NONLINEARITY: nl = v ? want_nonlin(e, s, v) : (Nonlin)sa->def; break;
        case ARG_GAIN:
            /* a number, or a nonlinearity's name for its gain (calculate_gain) */
            if (v && word_of(v) && !(v->kind == A_NAME && eval_has_var(e, v->name)))
                gain = nonlin_gain(want_nonlin(e, s, v), 0.01);
            else
                gain = v ? want_number(e, eval_expr(e, v), v->span, what) : sa->def;
            break;
        }
    }
    switch (s->init) {
    case INIT_CONSTANT: out->a = num[0]; break;
    case INIT_UNIFORM:
    case INIT_NORMAL:
        out->a = num[0];
        out->b = num[1];
        if (s->init == INIT_NORMAL && !(out->b >= 0))
            eval_fail(e, given[1] ? given[1]->span : n->span, "normal's std must not be negative, got %g", out->b);
        if (s->init == INIT_UNIFORM && !(out->a <= out->b))
            eval_fail(e, n->span, "uniform's a (%g) must not exceed its b (%g)", out->a, out->b);
        break;
    case INIT_KAIMING_UNIFORM:
    case INIT_KAIMING_NORMAL:
        out->a = nonlin_gain(nl, num[0]);
        out->b = mode;
        break;
    default: out->a = gain; break;
    }
}

/* ---- a layer's init and bias_init --------------------------------------------------- */

const Ast *init_args_take(Eval *e, const Ast *call, const Ast **init, const Ast **bias_init) {
    *init = *bias_init = NULL;
    int keep = 0;
    for (int i = 0; i < call->list.n; i++) {
        const Ast *a = call->list.items[i];
        bool is_init = a->kind == A_KWARG && strcmp(a->name, "init") == 0;
        bool is_bias = a->kind == A_KWARG && strcmp(a->name, "bias_init") == 0;
        if (is_init || is_bias) {
            const Ast **slot = is_init ? init : bias_init;
            if (*slot) eval_fail(e, a->span, "argument '%s' of %s is given twice", a->name, call->name);
            *slot = a;
        } else {
            keep++;
        }
    }
    if (!*init && !*bias_init) return call;
    Ast *c = arena_alloc(e->arena, sizeof *c);
    *c = *call;
    c->list.items = arena_alloc(e->arena, sizeof *c->list.items * (size_t)(keep + 1));
    c->list.n = c->list.cap = 0;
    for (int i = 0; i < call->list.n; i++) {
        Ast *a = call->list.items[i];
        if (a != *init && a != *bias_init) c->list.items[c->list.n++] = a;
    }
    c->list.cap = c->list.n;
    return c;
}

/* The parameter named <inst>.<pname> among those made since value `first`. */
static Value *new_param(Graph *g, int first, const char *pname) {
    size_t pl = strlen(pname);
    for (int i = first; i < g->nvalues; i++) {
        Value *v = g->values[i];
        size_t len = v->name ? strlen(v->name) : 0;
        if (v->kind == V_PARAM && len > pl && v->name[len - pl - 1] == '.' && strcmp(v->name + len - pl, pname) == 0)
            return v;
    }
    return NULL;
}

static void apply_one(Eval *e, const char *op, const Ast *arg, const InitChoice *c, Value *p, const char *pname) {
    if (!p)
        eval_fail(e, arg->span, "%s makes no %s to initialize%s", op, pname,
                  strcmp(pname, "bias") == 0 ? " (no bias, or not a layer with parameters)" : "");
    if (init_needs_fans(c->scheme) && p->shape.rank < 2)
        eval_fail(e, arg->a->span,
                  "this scheme needs a parameter of at least 2 dimensions (its fans), and %s's %s has 1; "
                  "use zeros, ones, constant, uniform or normal",
                  op, pname);
    init_set(p, c);
}

void init_args_apply(Eval *e, const char *op, const Ast *init, const Ast *bias_init, const InitChoice *wc,
                     const InitChoice *bc, int first) {
    if (init) apply_one(e, op, init, wc, new_param(e->g, first, "weight"), "weight");
    if (bias_init) apply_one(e, op, bias_init, bc, new_param(e->g, first, "bias"), "bias");
}

/* ---- the net-wide statement ----------------------------------------------------------- */

void exec_init_defaults(Eval *e, const Ast *s) {
    if (e->frame->block) eval_fail(e, s->span, "'init' defaults are only allowed in the net, not in a block");
    for (int i = 0; i < s->list.n; i++) {
        const Ast *kv = s->list.items[i];
        int k;
        for (k = 0; k < INIT_KEY_COUNT; k++)
            if (strcmp(init_key_names[k], kv->name) == 0) break;
        if (k == INIT_KEY_COUNT)
            eval_fail(e, kv->name_span,
                      "'init' has no default '%s' (its defaults: conv, deconv, linear, weight, bias, relu_bias, "
                      "gate_bias)",
                      kv->name);
        if (e->init_defaults[k].set) {
            diag_error(kv->name_span, "the default '%s' is given twice", kv->name);
            diag_note(e->init_default_spans[k], "first given here");
            eval_bail(e);
        }
        InitChoice c;
        init_choice_from_ast(e, kv->a, &c);
        if (k >= INIT_KEY_BIAS && init_needs_fans(c.scheme))
            eval_fail(e, kv->a->span,
                      "this scheme needs a parameter of at least 2 dimensions (its fans), and biases have 1; "
                      "use zeros, ones, constant, uniform or normal");
        e->init_defaults[k] = c;
        e->init_default_spans[k] = kv->name_span;
    }
}
