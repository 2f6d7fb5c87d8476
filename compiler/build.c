/* The builders' side of build.h: checked argument conversions with the
 * language's messages, and the calls that name, create and add. */
#include "build.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

const char *argval_kind_name(EKind k) {
    static const char *names[] = {"nothing", "an int", "a float", "a bool", "a string", "a list", "a tensor"};
    return names[k];
}

_Noreturn void build_fail(BuildCtx *c, Span sp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror(sp, fmt, ap);
    va_end(ap);
    c->hooks->bail(c->eval);
}

int64_t arg_int(BuildCtx *c, ArgVal v, Span sp, const char *what) {
    if (v.k != E_INT) build_fail(c, sp, "%s must be an int, got %s", what, argval_kind_name(v.k));
    return v.i;
}

double arg_number(BuildCtx *c, ArgVal v, Span sp, const char *what) {
    if (v.k == E_INT) return (double)v.i;
    if (v.k != E_FLOAT) build_fail(c, sp, "%s must be a number, got %s", what, argval_kind_name(v.k));
    return v.f;
}

bool arg_bool(BuildCtx *c, ArgVal v, Span sp, const char *what) {
    if (v.k != E_BOOL) build_fail(c, sp, "%s must be a bool, got %s", what, argval_kind_name(v.k));
    return v.b;
}

Value *arg_tensor(BuildCtx *c, ArgVal v, Span sp, const char *what) {
    if (v.k != E_TENSOR) build_fail(c, sp, "%s must be a tensor, got %s", what, argval_kind_name(v.k));
    return v.t;
}

int arg_small(BuildCtx *c, ArgVal v, Span sp, const char *what, int64_t lo, int64_t hi) {
    int64_t i = arg_int(c, v, sp, what);
    if (i < lo || i > hi) {
        if (hi == INT32_MAX && lo == 0 && i < 0) build_fail(c, sp, "%s must not be negative, got %" PRId64, what, i);
        if (hi == INT32_MAX && i < lo) build_fail(c, sp, "%s must be at least %" PRId64 ", got %" PRId64, what, lo, i);
        build_fail(c, sp, "%s must be between %" PRId64 " and %" PRId64 ", got %" PRId64, what, lo, hi, i);
    }
    return (int)i;
}

void arg_pair(BuildCtx *c, ArgVal v, Span sp, const char *what, int64_t lo, int out[2]) {
    if (v.k != E_INT && v.k != E_LIST)
        build_fail(c, sp, "%s must be an int or a list of two ints, got %s", what, argval_kind_name(v.k));
    if (v.k == E_LIST) {
        if (v.n != 2) build_fail(c, sp, "%s must be an int or a list of two ints, got a list of %d", what, v.n);
        out[0] = arg_small(c, v.items[0], sp, what, lo, INT32_MAX);
        out[1] = arg_small(c, v.items[1], sp, what, lo, INT32_MAX);
    } else {
        out[0] = out[1] = arg_small(c, v, sp, what, lo, INT32_MAX);
    }
}

void arg_pads(BuildCtx *c, ArgVal v, Span sp, const char *what, int pad[4]) {
    if (v.k == E_LIST && v.n == 4) {
        for (int i = 0; i < 4; i++) pad[i] = arg_small(c, v.items[i], sp, what, 0, INT32_MAX);
        return;
    }
    if (v.k != E_INT && !(v.k == E_LIST && v.n == 2))
        build_fail(c, sp, "%s must be an int, [h, w] or [top, bottom, left, right], got %s", what,
                   v.k == E_LIST ? arena_printf(c->arena, "a list of %d", v.n) : argval_kind_name(v.k));
    int hw[2];
    arg_pair(c, v, sp, what, 0, hw);
    pad[0] = pad[1] = hw[0];
    pad[2] = pad[3] = hw[1];
}

const char *build_instance(BuildCtx *c, const char *what) {
    return c->hooks->instance(c->eval, what, c->as_name, c->call);
}

Value *build_param(BuildCtx *c, const char *inst, const char *pname, int rank, const int64_t *d, ParamInit init) {
    /* Unique: inst is a unique instance path and pname has no '.'. */
    const char *name = arena_printf(c->g->arena, "%s.%s", inst, pname);
    Shape sh = shape_make(rank, d);
    char what[320];
    snprintf(what, sizeof what, "parameter '%s' of shape", name);
    if (!shape_check_size(&sh, 0, c->call, what)) c->hooks->bail(c->eval);
    return graph_add_param(c->g, name, sh, init, c->call);
}

Node *build_node(BuildCtx *c, Op op, const char *inst, Value **in, int nin, const Attrs *a) {
    Node *n = graph_add_node(c->g, op, inst, in, nin, a, c->call);
    if (!n) c->hooks->bail(c->eval);
    return n;
}

bool build_first_warning(BuildCtx *c, Span sp) { return c->hooks->first_warning(c->eval, sp); }
void build_warning_notes(BuildCtx *c) { c->hooks->warning_notes(c->eval); }

const Builtin *builtin_find(const char *name, Op *op) {
    for (int o = 1; o < OP_COUNT; o++) {
        const Builtin *b = op_rules((Op)o)->builtins;
        for (; b && b->name; b++)
            if (strcmp(b->name, name) == 0) {
                if (op) *op = (Op)o;
                return b;
            }
    }
    return NULL;
}

Node *build_unary(BuildCtx *c) {
    char what[64];
    snprintf(what, sizeof what, "%s's input", c->builtin->name);
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), what);
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, op_of_builtin(c), inst, &x, 1, NULL);
}

Op op_of_builtin(const BuildCtx *c) { return c->op; }

/* A window wider than the unpadded input fits only because of the padding,
 * and then some of its rows (or columns) may sit in the padding at every
 * output position: for a conv, weights that never meet the input.  Legal,
 * as in PyTorch, but likely a mistake (a 3x3 conv on a 1x1 input).  A window
 * wider than its input whose rows all meet it somewhere (3x3 with pad 1 on
 * 2x2) is left alone.  Once per call in the source. */
void build_warn_wide_window(BuildCtx *c, const char *op, const Value *x, const int kernel[2], const int stride[2],
                            const int pad[4], const int dilation[2]) {
    static const char *const axis[2] = {"height", "width"}, *const rows[2] = {"rows", "columns"};
    Span sp = c->call;
    for (int i = 0; i < 2; i++) {
        int64_t k = kernel[i], d = dilation[i], st = stride[i], p0 = pad[2 * i];
        int64_t in = x->shape.d[2 + i], window = d * (k - 1) + 1;
        if (window <= in || k > (1 << 20)) continue; /* (a giant kernel: not worth the loop) */
        int64_t nout = (in + p0 + pad[2 * i + 1] - window) / st + 1;
        int64_t dead = 0;
        for (int64_t t = 0; t < k; t++) {
            /* tap t reads row o*st + t*d - p0: is it in [0, in) for some output o? */
            int64_t lo = p0 - t * d; /* need lo <= o*st < lo + in */
            int64_t o = lo <= 0 ? 0 : (lo + st - 1) / st;
            if (!(o < nout && o * st < lo + in)) dead++;
        }
        if (dead == 0) continue;
        if (!build_first_warning(c, sp)) return;
        diag_warning(sp, "%s window %" PRId64 " is wider than its input (%s %" PRId64 "): %" PRId64 " of the %s's %" PRId64
                         " %s only ever see padding",
                     op, window, axis[i], in, dead, strcmp(op, "conv") == 0 ? "kernel" : "window", k, rows[i]);
        build_warning_notes(c);
        return;
    }
}
