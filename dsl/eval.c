/* Evaluation of a .net program into the graph IR (see eval.h).
 *
 * A tree walk over the AST with an environment per net or block instance
 * (a Frame).  `for` and `if` bodies run in the enclosing frame.  The first
 * semantic error is reported (with a note per block instance it happened
 * in, innermost first) and evaluation stops by longjmp to eval_program.
 *
 * This file is the interpretation: errors, frames and bindings,
 * expressions, statements, block calls and eval_program.  Calling builtins
 * is in builtins.c, instance names and "did you mean" in naming.c, the
 * warnings in lint.c; eval_internal.h is what they share. */
#include "eval_internal.h"
#include "../compiler/train.h"

#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCK_DEPTH 64
#define MAX_UNROLL 1000000 /* loop iterations in one compilation */
#define MAX_STRING 65536      /* bytes in a compile-time string */
#define MAX_LIST_DEPTH 256    /* lists in lists */
#define MAX_COMPARED 10000000 /* list elements compared in one compilation */
#define MAX_NESTING 512       /* expressions and statements inside one another (stack depth) */

/* ---- errors --------------------------------------------------------------- */

static const char *kind_name(EKind k) { return argval_kind_name(k); }

/* The loop iterations and block instances an error happened in, innermost
 * first, one note each (clang's "in instantiation of" notes): the loops
 * running in a frame make one note naming every variable, outermost first
 * ("in iteration s = 1, i = 0"), at the innermost loop's header.  A deep
 * chain of instances (a recursion) shows its NOTE_HEAD innermost and
 * NOTE_TAIL outermost instances, the last being the call in the net, and
 * says how many it skipped between them. */
#define NOTE_HEAD 3
#define NOTE_TAIL 3
static void loop_note(const Frame *f) {
    if (!f->loops) return;
    char text[256];
    size_t used = 0;
    int n = 0;
    for (const LoopIter *l = f->loops; l; l = l->outer) n++;
    for (int k = n - 1; k >= 0; k--) { /* outermost first */
        const LoopIter *l = f->loops;
        for (int j = 0; j < k; j++) l = l->outer;
        int w = snprintf(text + used, sizeof text - used, "%s%s = %" PRId64, k == n - 1 ? "" : ", ", l->stmt->name,
                         l->i);
        if (w < 0 || (size_t)w >= sizeof text - used) break;
        used += (size_t)w;
    }
    const Ast *in = f->loops->stmt; /* the header: for NAME in A..B */
    diag_note((Span){in->span.begin, in->b->span.end}, "in iteration %s", text);
}

void eval_instance_notes(Eval *e) {
    int n = 0;
    for (Frame *f = e->frame; f && f->block; f = f->parent) n++;
    int i = 0;
    for (Frame *f = e->frame; f; f = f->parent, i++) {
        bool shown = !(n > NOTE_HEAD + NOTE_TAIL + 1 && i >= NOTE_HEAD && i < n - NOTE_TAIL);
        if (shown) loop_note(f);
        if (!f->block) break;
        if (!shown) {
            if (i == NOTE_HEAD)
                diag_file_note("(%d more block instances not shown)", n - NOTE_HEAD - NOTE_TAIL);
            continue;
        }
        diag_note(f->call, "in block '%s' instantiated here", f->block->name);
    }
}

/* After an error at the current frame: the instance notes, then stop. */
_Noreturn void eval_bail(Eval *e) {
    eval_instance_notes(e);
    longjmp(e->fail, 1);
}

_Noreturn __attribute__((format(printf, 3, 4))) void eval_fail(Eval *e, Span sp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror(sp, fmt, ap);
    va_end(ap);
    eval_bail(e);
}

/* ---- values --------------------------------------------------------------- */

/* An int, float or bool as text (strings are used as they are). */
static const char *format_value(Eval *e, EVal v, Span sp, char *buf, size_t n) {
    switch (v.k) {
    case E_INT: snprintf(buf, n, "%" PRId64, v.i); break;
    case E_FLOAT: snprintf(buf, n, "%g", v.f); break;
    case E_BOOL: snprintf(buf, n, "%s", v.b ? "true" : "false"); break;
    default: eval_fail(e, sp, "cannot put %s into a string", kind_name(v.k));
    }
    return buf;
}

/* ---- environments ----------------------------------------------------------- */

bool eval_has_var(Eval *e, const char *name);

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

static Value *add_node(Eval *e, Op op, const char *inst, Value **in, int nin, const Attrs *a, Span sp) {
    Node *n = graph_add_node(e->g, op, inst, in, nin, a, sp);
    if (!n) eval_bail(e);
    return n->out[0];
}

/* ---- expressions -------------------------------------------------------------- */

static void exec_list(Eval *e, const AstList *l);

static EVal call_block(Eval *e, const Ast *blk, const Ast *call, const char *as_name) {
    if (e->frame->depth + 1 > MAX_BLOCK_DEPTH) {
        /* Name the cycle: blk, the blocks its instance called down to this
         * frame, and blk again. */
        const Frame *top = e->frame;
        while (top && top->block && top->block != blk) top = top->parent;
        if (!top || top->block != blk)
            eval_fail(e, call->span, "blocks nest deeper than %d", MAX_BLOCK_DEPTH);
        char chain[512];
        size_t k = (size_t)snprintf(chain, sizeof chain, "%s", blk->name);
        const Frame *path[MAX_BLOCK_DEPTH + 1];
        int n = 0;
        for (const Frame *f = e->frame; f != top; f = f->parent) path[n++] = f;
        while (n > 0 && k < sizeof chain)
            k += (size_t)snprintf(chain + k, sizeof chain - k, " -> %s", path[--n]->block->name);
        if (k < sizeof chain) snprintf(chain + k, sizeof chain - k, " -> %s", blk->name);
        eval_fail(e, call->span, "blocks nest deeper than %d through the recursion %s", MAX_BLOCK_DEPTH, chain);
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
                eval_fail(e, call->span, "block '%s' needs argument '%s'", blk->name, p->name);
            }
            args[i] = eval_expr(e, p->a); /* defaults see the parameters bound before them */
        }
        bind(e, p->name, args[i]);
    }
    exec_list(e, &blk->list);
    if (!f.returned) /* at the block's closing brace, noting this instance */
        eval_fail(e, (Span){blk->span.end - 1, blk->span.end}, "block '%s' ends without 'return'", blk->name);
    e->frame = f.parent;
    return f.ret;
}

EVal eval_call(Eval *e, const Ast *call, const char *as_name) {
    const Ast *blk = find_block(e, call->name);
    if (blk) return call_block(e, blk, call, as_name);
    Op op;
    const Builtin *b = builtin_find(call->name, &op);
    if (b) return call_builtin(e, b, op, call, as_name);
    int axis = find_dim_function(call->name);
    if (axis) return call_dim_function(e, axis, call, as_name);
    Span sp = call->name_span.end > call->name_span.begin ? call->name_span : call->span;
    Binding *var = lookup(e->frame, call->name);
    if (var)
        eval_fail(e, sp, "'%s' is %s, not an op or block, and cannot be called", call->name, kind_name(var->v.k));
    const char *best = NULL;
    int best_d = 1000;
    for (int o = 1; o < OP_COUNT; o++)
        for (const Builtin *b = op_rules((Op)o)->builtins; b && b->name; b++)
            consider_suggestion(call->name, b->name, &best, &best_d);
    for (int i = 0; i < 3; i++) consider_suggestion(call->name, dim_functions[i], &best, &best_d);
    for (int i = 0; i < e->prog->blocks.n; i++)
        consider_suggestion(call->name, e->prog->blocks.items[i]->name, &best, &best_d);
    if (best) eval_fail(e, sp, "unknown op or block '%s'; did you mean '%s'?", call->name, best);
    eval_fail(e, sp, "unknown op or block '%s'", call->name);
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
        if (b == 0) eval_fail(e, n->span, "%s by zero", op == OP_DIV_ ? "division" : "remainder");
        if (a == INT64_MIN && b == -1) over = true;
        else r = op == OP_DIV_ ? a / b : a % b;
        break;
    default: break;
    }
    if (over)
        eval_fail(e, n->span, "integer overflow in %" PRId64 " %s %" PRId64, a, ast_op_text(op), b);
    return v_int(r);
}

static bool values_equal(Eval *e, const Ast *n, EVal a, EVal b) {
    if ((a.k == E_INT || a.k == E_FLOAT) && (b.k == E_INT || b.k == E_FLOAT)) {
        if (a.k == E_INT && b.k == E_INT) return a.i == b.i;
        return want_number(e, a, n->span, "") == want_number(e, b, n->span, "");
    }
    if (a.k != b.k) eval_fail(e, n->span, "cannot compare %s with %s", kind_name(a.k), kind_name(b.k));
    switch (a.k) {
    case E_BOOL: return a.b == b.b;
    case E_STRING: return strcmp(a.s, b.s) == 0;
    case E_LIST:
        if (a.n != b.n) return false;
        if (a.items == b.items) return true;
        for (int i = 0; i < a.n; i++) {
            if (++e->compared > MAX_COMPARED)
                eval_fail(e, n->span, "comparing lists takes more than %d element comparisons", MAX_COMPARED);
            if (!values_equal(e, n, a.items[i], b.items[i])) return false;
        }
        return true;
    default: eval_fail(e, n->span, "cannot compare %s values", kind_name(a.k));
    }
}

static EVal tensor_binary(Eval *e, const Ast *n, AstOp op, EVal a, EVal b) {
    if (a.k == E_TENSOR && b.k == E_TENSOR && op >= OP_EQ_ && op <= OP_GE_)
        eval_fail(e, n->span, "'%s' cannot compare tensors: their values are known only when the program runs",
                  ast_op_text(op));
    if (a.k != E_TENSOR || b.k != E_TENSOR || (op != OP_ADD_ && op != OP_MUL_))
        eval_fail(e, n->span, "'%s' is not defined between %s and %s", ast_op_text(op), kind_name(a.k), kind_name(b.k));
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
            eval_fail(e, n->span, "this string would be longer than %d bytes", MAX_STRING);
        return v_str(arena_printf(e->arena, "%s%s", a.s, b.s));
    }
    if ((a.k != E_INT && a.k != E_FLOAT) || (b.k != E_INT && b.k != E_FLOAT))
        eval_fail(e, n->span, "'%s' is not defined between %s and %s", ast_op_text(op), kind_name(a.k), kind_name(b.k));
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
        if (y == 0) eval_fail(e, n->span, "division by zero");
        return v_float(x / y);
    case OP_MOD_:
        if (y == 0) eval_fail(e, n->span, "remainder by zero");
        return v_float(fmod(x, y));
    case OP_LT_: return v_bool(x < y);
    case OP_LE_: return v_bool(x <= y);
    case OP_GT_: return v_bool(x > y);
    case OP_GE_: return v_bool(x >= y);
    default: eval_fail(e, n->span, "'%s' is not defined on numbers", ast_op_text(op));
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
            if (len > MAX_STRING) eval_fail(e, n->span, "this string would be longer than %d bytes", MAX_STRING);
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
        if (is_builtin(n->name) || find_block(e, n->name))
            eval_fail(e, n->span, "'%s' is an op or block: call it, as %s(x) or x |> %s", n->name, n->name, n->name);
        const char *best = NULL;
        int best_d = 1000;
        for (Binding *v = e->frame->vars; v; v = v->next) consider_suggestion(n->name, v->name, &best, &best_d);
        if (best) eval_fail(e, n->span, "unknown name '%s'; did you mean '%s'?", n->name, best);
        eval_fail(e, n->span, "unknown name '%s'", n->name);
    }
    case A_LIST: {
        EVal v = {.k = E_LIST, .n = n->list.n, .depth = 1};
        v.items = arena_alloc(e->arena, sizeof *v.items * (size_t)(n->list.n + 1));
        for (int i = 0; i < n->list.n; i++) {
            v.items[i] = eval_expr(e, n->list.items[i]);
            if (v.items[i].k == E_LIST && v.items[i].depth + 1 > v.depth) v.depth = v.items[i].depth + 1;
        }
        if (v.depth > MAX_LIST_DEPTH) eval_fail(e, n->span, "lists nest deeper than %d", MAX_LIST_DEPTH);
        return v;
    }
    case A_INDEX: {
        EVal base = eval_expr(e, n->a);
        if (base.k != E_LIST) eval_fail(e, n->a->span, "only a list can be indexed, not %s", kind_name(base.k));
        int64_t i = want_int(e, eval_expr(e, n->b), n->b->span, "an index");
        if (i < 0 || i >= base.n)
            eval_fail(e, n->b->span, "index %" PRId64 " is out of range for a list of %d element%s", i, base.n,
                      base.n == 1 ? "" : "s");
        return base.items[i];
    }
    case A_UNARY: {
        EVal a = eval_expr(e, n->a);
        if (n->op == OP_NOT_) return v_bool(!want_bool(e, a, n->a->span, "the operand of '!'"));
        if (a.k == E_FLOAT) return v_float(-a.f);
        if (a.k != E_INT) eval_fail(e, n->span, "'-' is not defined on %s", kind_name(a.k));
        if (a.i == INT64_MIN) eval_fail(e, n->span, "integer overflow in -(%" PRId64 ")", a.i);
        return v_int(-a.i);
    }
    case A_BINARY: return eval_binary(e, n);
    case A_CALL: return n->pipe_as ? eval_pipe_stage(e, n) : eval_call(e, n, NULL);
    case A_AS: {
        if (n->a->kind != A_CALL)
            eval_fail(e, n->span, "'as' must follow a call of an op or block (it names the instance the call makes)");
        EVal name = eval_expr(e, n->b);
        if (name.k != E_STRING) eval_fail(e, n->b->span, "the name after 'as' must be a string");
        if (!*name.s) eval_fail(e, n->b->span, "an instance name cannot be empty");
        for (const char *c = name.s; *c; c++)
            if (!(*c == '_' || *c == '.' || *c == '-' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= 'A' && *c <= 'Z')))
                eval_fail(e, n->b->span,
                          "invalid character '%c' in the instance name \"%s\" (letters, digits, '_', '-' and '.')", *c,
                          name.s);
        if (name.s[0] == '.' || name.s[strlen(name.s) - 1] == '.' || strstr(name.s, ".."))
            eval_fail(e, n->b->span, "the instance name \"%s\" has an empty part between dots", name.s);
        return eval_call(e, n->a, name.s);
    }
    default:
        DIAG_INTERNAL("%s is not an expression", ast_kind_name(n->kind));
        longjmp(e->fail, 1);
    }
}

bool eval_has_var(Eval *e, const char *name) { return lookup(e->frame, name) != NULL; }

/* ---- statements ------------------------------------------------------------------ */

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
        if (e->frame->block) eval_fail(e, s->span, "'input' is only allowed in the net, not in a block");
        for (int i = 0; i < e->g->ninputs; i++)
            if (strcmp(e->g->inputs[i]->name, s->name) == 0) {
                diag_error(s->name_span, "duplicate input '%s'", s->name);
                diag_note(e->g->inputs[i]->span, "the first is declared here");
                eval_bail(e);
            }
        EVal dims = eval_expr(e, s->a);
        if (dims.k != E_LIST || dims.n < 1 || dims.n > IR_MAX_RANK - 1)
            eval_fail(e, s->a->span, "an input's shape must be a list of 1 to %d sizes, like [3, 224, 224]",
                      IR_MAX_RANK - 1);
        Shape sh = {.rank = dims.n + 1};
        sh.d[0] = e->g->batch;
        for (int i = 0; i < dims.n; i++) {
            /* point at the size itself when the list is written out */
            Span dsp = s->a->kind == A_LIST && s->a->list.n == dims.n ? s->a->list.items[i]->span : s->a->span;
            sh.d[i + 1] = want_int(e, dims.items[i], dsp, "an input size");
            if (sh.d[i + 1] < 1) eval_fail(e, dsp, "input sizes must be positive, got %" PRId64, sh.d[i + 1]);
        }
        char what[160];
        snprintf(what, sizeof what, "input '%s' of shape", s->name);
        if (!shape_check_size(&sh, e->g->batch, s->a->span, what)) eval_bail(e);
        Value *in = graph_add_input(e->g, s->name, sh, s->span);
        InputDecl *d = arena_alloc(e->arena, sizeof *d);
        *d = (InputDecl){in, s->name_span, e->input_decls};
        e->input_decls = d;
        bind(e, s->name, v_tensor(in));
        break;
    }
    case A_OUTPUT: {
        if (e->frame->block) eval_fail(e, s->span, "'output' is only allowed in the net, not in a block");
        for (int i = 0; i < e->g->noutputs; i++)
            if (strcmp(e->g->outputs[i].name, s->name) == 0) {
                diag_error(s->name_span, "duplicate output '%s'", s->name);
                diag_note(e->g->outputs[i].span, "the first is declared here");
                eval_bail(e);
            }
        EVal v = eval_expr(e, s->a);
        graph_add_output(e->g, s->name, want_tensor(e, v, s->a->span, "an output"), s->span);
        bind(e, s->name, v);
        break;
    }
    case A_FOR: {
        int64_t from = want_int(e, eval_expr(e, s->a), s->a->span, "a loop bound");
        int64_t to = want_int(e, eval_expr(e, s->b), s->b->span, "a loop bound");
        LoopIter it = {s, from, e->frame->loops};
        e->frame->loops = &it;
        for (int64_t i = from; i < to && !e->frame->returned; i++) {
            it.i = i;
            if (++e->unrolled > MAX_UNROLL)
                eval_fail(e, s->span, "loops unroll to more than %d iterations in all", MAX_UNROLL);
            bind(e, s->name, v_int(i));
            exec_list(e, &s->list);
        }
        e->frame->loops = it.outer;
        break;
    }
    case A_IF:
        if (want_bool(e, eval_expr(e, s->a), s->a->span, "an 'if' condition"))
            exec_list(e, &s->list);
        else
            exec_list(e, &s->list2);
        break;
    case A_INIT: exec_init_defaults(e, s); break;
    case A_FREEZE:
        if (e->frame->block) eval_fail(e, s->span, "'freeze' is only allowed in the net, not in a block");
        for (int i = 0; i < s->list.n; i++) {
            const Ast *p = s->list.items[i];
            EVal v = eval_expr(e, p);
            if (v.k != E_STRING)
                eval_fail(e, p->span, "freeze takes parameter name patterns (strings such as \"conv1.*\")");
            FreezeDecl *d = arena_alloc(e->arena, sizeof *d), **end = &e->freezes;
            *d = (FreezeDecl){arena_strdup(e->arena, v.s), p->span, NULL};
            while (*end) end = &(*end)->next; /* in source order: the first bad pattern is reported */
            *end = d;
        }
        break;
    case A_RETURN:
        if (!e->frame->block) eval_fail(e, s->span, "'return' outside a block");
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
    if (++e->depth > MAX_NESTING) eval_fail(e, sp, "expressions and statements nest deeper than %d", MAX_NESTING);
}

EVal eval_expr(Eval *e, const Ast *n) {
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
        if (is_builtin(b->name)) eval_fail(e, b->name_span, "block '%s' has the name of a built-in op", b->name);
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
            else if (kw) eval_fail(e, p->span, "parameter '%s' without a default follows one with a default", p->name);
            for (int k = 0; k < j; k++)
                if (strcmp(b->list2.items[k]->name, p->name) == 0)
                    eval_fail(e, p->span, "block '%s' has two parameters named '%s'", b->name, p->name);
        }
    }
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
    e.bc = (BuildCtx){.g = e.g, .arena = e.arena, .eval = &e, .hooks = &eval_build_hooks, .call = p->net->span};
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
    if (e.g->ninputs == 0) eval_fail(&e, p->net->name_span, "net '%s' has no input", p->net->name);
    if (e.g->noutputs == 0) eval_fail(&e, p->net->name_span, "net '%s' has no output", p->net->name);
    init_apply_defaults(e.g, e.init_defaults);
    /* each pattern must name a parameter of the finished net */
    for (const FreezeDecl *d = e.freezes; d; d = d->next)
        if (freeze_mark(e.g, d->pattern) == 0)
            eval_fail(&e, d->span, "freeze: the pattern \"%s\" matches no parameter (netc params lists them)",
                      d->pattern);
    warn_unused_blocks(&e);
    warn_unused(&e);
    arena_free(e.arena);
    free(e.instances);
    return e.g;
}
