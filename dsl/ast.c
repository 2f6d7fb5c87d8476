/* AST builders (called by the grammar actions in parser.y) and parse_program. */
#include "ast.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

AstProgram *parse_program(const Source *src) {
    Arena *arena = arena_new();
    AstProgram *p = arena_alloc(arena, sizeof *p);
    p->arena = arena;
    p->src = src;
    diag_set_source(src);
    int errors = diag_error_count();
    int r = ast_parse_range(p, false, 0, (uint32_t)src->len);
    if (r != 0 || diag_error_count() != errors) {
        ast_free(p);
        return NULL;
    }
    return p;
}

void ast_free(AstProgram *p) {
    if (p) arena_free(p->arena); /* p itself lives in its arena */
}

/* ---- lists ---------------------------------------------------------------- */

AstList ast_list_empty(void) {
    AstList l = {NULL, 0, 0};
    return l;
}

void ast_list_push(AstProgram *p, AstList *l, Ast *item) {
    if (!item) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        l->items = arena_grow(p->arena, l->items, (size_t)l->cap * sizeof *l->items,
                              (size_t)cap * sizeof *l->items);
        l->cap = cap;
    }
    l->items[l->n++] = item;
}

/* ---- expressions ---------------------------------------------------------- */

Ast *ast_new(AstProgram *p, AstKind k, Span sp) {
    Ast *n = arena_alloc(p->arena, sizeof *n);
    n->kind = k;
    n->span = sp;
    n->name_span = sp;
    return n;
}

/* An `x as "name"` whose x is still a bare name is only valid as the right
 * side of |>, which turns the name into a call; anywhere else it is an error. */
static Ast *operand(Ast *e) {
    if (e && e->kind == A_AS && e->a && e->a->kind == A_NAME)
        diag_error(e->a->span, "'as' must follow a call");
    return e;
}

Ast *ast_int(AstProgram *p, Span sp, const char *text) {
    Ast *n = ast_new(p, A_INT, sp);
    int64_t v = 0;
    for (const char *c = text; *c >= '0' && *c <= '9'; c++) {
        int d = *c - '0';
        if (v > (INT64_MAX - d) / 10) {
            diag_error(sp, "integer literal is too large (the largest is %" PRId64 ")",
                       (int64_t)INT64_MAX);
            v = 0;
            break;
        }
        v = v * 10 + d;
    }
    n->ival = v;
    return n;
}

Ast *ast_float(AstProgram *p, Span sp, const char *text) {
    Ast *n = ast_new(p, A_FLOAT, sp);
    errno = 0;
    n->fval = strtod(text, NULL);
    if (errno == ERANGE && isinf(n->fval)) {
        diag_error(sp, "floating-point literal is too large");
        n->fval = 0;
    }
    return n;
}

Ast *ast_bool(AstProgram *p, Span sp, bool v) {
    Ast *n = ast_new(p, A_BOOL, sp);
    n->bval = v;
    return n;
}

Ast *ast_name(AstProgram *p, Span sp, const char *name) {
    Ast *n = ast_new(p, A_NAME, sp);
    n->name = name;
    return n;
}

static Ast *string_lit(AstProgram *p, Span sp, const char *text, size_t len) {
    Ast *n = ast_new(p, A_STRING_LIT, sp);
    n->name = arena_strndup(p->arena, text, len);
    return n;
}

Ast *ast_string(AstProgram *p, Span sp, const char *token) {
    Ast *n = ast_new(p, A_STRING, sp);
    size_t len = strlen(token);
    /* token is the literal as written, quotes included: token[i] is at
     * source offset sp.begin + i. */
    const char *body = token + 1;
    size_t body_len = len >= 2 ? len - 2 : 0;
    char *buf = arena_alloc(p->arena, body_len + 1);
    size_t blen = 0;          /* unescaped text of the current literal part */
    uint32_t lit_begin = sp.begin + 1;
    bool interpolated = false;
    for (size_t i = 0; i < body_len;) {
        uint32_t off = sp.begin + 1 + (uint32_t)i;
        char c = body[i];
        if (c == '\\') {
            char e = i + 1 < body_len ? body[i + 1] : 0;
            switch (e) {
            case 'n': buf[blen++] = '\n'; break;
            case 't': buf[blen++] = '\t'; break;
            case '"': case '\\': case '{': case '}': buf[blen++] = e; break;
            default: {
                Span es = {off, off + 2};
                diag_error(es, "unknown escape sequence '\\%c' (use \\\" \\\\ \\n \\t \\{ \\})",
                           e);
            }
            }
            i += 2;
        } else if (c == '}') {
            Span es = {off, off + 1};
            diag_error(es, "unmatched '}' in a string (write \\} for a brace)");
            i++;
        } else if (c == '{') {
            const char *close = memchr(body + i + 1, '}', body_len - i - 1);
            if (!close) {
                Span es = {off, sp.end - 1};
                diag_error(es, "unterminated '{' in a string (write \\{ for a brace)");
                break;
            }
            if (blen) ast_list_push(p, &n->list, string_lit(p, (Span){lit_begin, off}, buf, blen));
            blen = 0;
            interpolated = true;
            size_t j = (size_t)(close - body); /* index of the '}' */
            uint32_t close_off = sp.begin + 1 + (uint32_t)j;
            bool blank = true;
            for (size_t k = i + 1; k < j; k++)
                if (body[k] != ' ' && body[k] != '\t') blank = false;
            if (blank) {
                Span es = {off, close_off + 1};
                diag_error(es, "empty {} in a string");
            } else {
                Ast *saved = p->interp;
                p->interp = NULL;
                if (ast_parse_range(p, true, off + 1, close_off + 1) == 0 && p->interp)
                    ast_list_push(p, &n->list, operand(p->interp));
                p->interp = saved;
            }
            i = j + 1;
            lit_begin = close_off + 1;
        } else {
            buf[blen++] = c;
            i++;
        }
    }
    uint32_t lit_end = sp.end > sp.begin ? sp.end - 1 : sp.end;
    if (blen || n->list.n == 0)
        ast_list_push(p, &n->list, string_lit(p, (Span){lit_begin, lit_end}, buf, blen));
    if (!interpolated) n->name = n->list.items[0]->name;
    return n;
}

Ast *ast_unary(AstProgram *p, Span sp, AstOp op, Ast *a) {
    Ast *n = ast_new(p, A_UNARY, sp);
    n->op = op;
    n->a = operand(a);
    return n;
}

Ast *ast_binary(AstProgram *p, AstOp op, Ast *a, Ast *b) {
    Ast *n = ast_new(p, A_BINARY, span_join(a->span, b->span));
    n->op = op;
    n->a = operand(a);
    n->b = operand(b);
    return n;
}

Ast *ast_call(AstProgram *p, Span sp, Ast *callee, AstList args) {
    Ast *n = ast_new(p, A_CALL, sp);
    n->name_span = callee->span;
    if (callee->kind == A_NAME) {
        n->name = callee->name;
    } else {
        diag_error(callee->span, "only an op or a block can be called, by its name");
        n->name = "?";
    }
    n->list = args;
    Ast *first_kw = NULL;
    for (int i = 0; i < args.n; i++) {
        Ast *a = args.items[i];
        if (a->kind != A_KWARG) {
            operand(a);
            if (first_kw) {
                diag_error(a->span, "positional argument after a keyword argument");
                diag_note(first_kw->name_span, "the first keyword argument is here");
                first_kw = NULL; /* once per call */
            }
            continue;
        }
        if (!first_kw) first_kw = a;
        for (int j = 0; j < i; j++) {
            Ast *b = args.items[j];
            if (b->kind == A_KWARG && strcmp(a->name, b->name) == 0) {
                diag_error(a->name_span, "keyword argument '%s' given twice", a->name);
                diag_note(b->name_span, "first given here");
                break;
            }
        }
    }
    return n;
}

Ast *ast_kwarg(AstProgram *p, Span sp, const char *name, Ast *value) {
    Ast *n = ast_new(p, A_KWARG, sp);
    n->name = name;
    n->name_span = (Span){sp.begin, sp.begin + (uint32_t)strlen(name)};
    n->a = operand(value);
    return n;
}

Ast *ast_index(AstProgram *p, Span sp, Ast *base, Ast *index) {
    Ast *n = ast_new(p, A_INDEX, sp);
    n->a = operand(base);
    n->b = operand(index);
    return n;
}

Ast *ast_as(AstProgram *p, Span sp, Ast *call, Ast *name) {
    Ast *n = ast_new(p, A_AS, sp);
    /* A bare name is accepted for now: `x |> relu as "r"` makes it a call
     * (ast_pipe); anywhere else operand() reports it. */
    if (call->kind != A_CALL && call->kind != A_NAME)
        diag_error(call->span, "'as' must follow a call");
    n->a = call;
    n->b = name;
    n->name_span = name->span;
    return n;
}

/* Inserts a as the first argument of the call c (or makes the name c a call). */
static Ast *pipe_into(AstProgram *p, Ast *a, Ast *c) {
    if (c->kind == A_NAME) {
        Ast *call = ast_new(p, A_CALL, c->span);
        call->name = c->name;
        call->piped = true;
        ast_list_push(p, &call->list, a);
        return call;
    }
    AstList l = ast_list_empty();
    ast_list_push(p, &l, a);
    for (int i = 0; i < c->list.n; i++) ast_list_push(p, &l, c->list.items[i]);
    c->list = l;
    c->piped = true;
    return c;
}

Ast *ast_pipe(AstProgram *p, Ast *a, Ast *rhs) {
    operand(a);
    if (rhs->kind == A_NAME || rhs->kind == A_CALL) return pipe_into(p, a, rhs);
    if (rhs->kind == A_AS && (rhs->a->kind == A_NAME || rhs->a->kind == A_CALL)) {
        /* The unnamed calls of the pipe before this one: the name is not theirs. */
        for (Ast *c = a; c && c->kind == A_CALL && !c->pipe_as; c = c->piped ? c->list.items[0] : NULL)
            c->pipe_as = rhs;
        rhs->a = pipe_into(p, a, rhs->a);
        return rhs;
    }
    diag_error(rhs->span, "the right side of |> must be a call");
    return a;
}

Ast *ast_list(AstProgram *p, Span sp, AstList items) {
    Ast *n = ast_new(p, A_LIST, sp);
    for (int i = 0; i < items.n; i++) operand(items.items[i]);
    n->list = items;
    return n;
}

/* ---- statements ----------------------------------------------------------- */

static Ast *named(AstProgram *p, AstKind k, Span sp, Span name_sp, const char *name) {
    Ast *n = ast_new(p, k, sp);
    n->name = name;
    n->name_span = name_sp;
    return n;
}

Ast *ast_assign(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *value) {
    Ast *n = named(p, A_ASSIGN, sp, name_sp, name);
    n->a = operand(value);
    return n;
}

Ast *ast_input(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *dims) {
    Ast *n = named(p, A_INPUT, sp, name_sp, name);
    n->a = operand(dims);
    return n;
}

Ast *ast_output(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *value) {
    Ast *n = named(p, A_OUTPUT, sp, name_sp, name);
    n->a = operand(value);
    return n;
}

Ast *ast_expr_stmt(AstProgram *p, Span sp, Ast *e) {
    Ast *n = ast_new(p, A_EXPR, sp);
    n->a = operand(e);
    return n;
}

Ast *ast_for(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *from, Ast *to,
             AstList body) {
    Ast *n = named(p, A_FOR, sp, name_sp, name);
    n->a = operand(from);
    n->b = operand(to);
    n->list = body;
    return n;
}

Ast *ast_if(AstProgram *p, Span sp, Ast *cond, AstList then, AstList els) {
    Ast *n = ast_new(p, A_IF, sp);
    n->a = operand(cond);
    n->list = then;
    n->list2 = els;
    return n;
}

Ast *ast_return(AstProgram *p, Span sp, Ast *value) {
    Ast *n = ast_new(p, A_RETURN, sp);
    n->a = operand(value);
    return n;
}

Ast *ast_init_stmt(AstProgram *p, Span sp, Span word_sp, const char *word, AstList items) {
    if (strcmp(word, "init") != 0) {
        diag_error(word_sp, "unexpected identifier after '%s' (the only statement that starts with "
                            "two names is `init key = scheme, ...;`)",
                   word);
        return NULL;
    }
    Ast *n = ast_new(p, A_INIT, sp);
    n->name = "init";
    n->name_span = word_sp;
    n->list = items;
    return n;
}

Ast *ast_freeze(AstProgram *p, Span sp, AstList patterns) {
    Ast *n = ast_new(p, A_FREEZE, sp);
    n->list = patterns;
    return n;
}

/* ---- top level ------------------------------------------------------------ */

Ast *ast_block(AstProgram *p, Span sp, Span name_sp, const char *name, AstList params,
               AstList body) {
    Ast *n = named(p, A_BLOCK, sp, name_sp, name);
    n->list = body;
    n->list2 = params;
    const Ast *first_default = NULL;
    for (int i = 0; i < params.n; i++) {
        Ast *a = params.items[i];
        if (a->kind == A_KWARG && !first_default) first_default = a;
        if (a->kind == A_NAME && first_default)
            diag_error(a->span, "parameter '%s' without a default after one with a default",
                       a->name);
        for (int j = 0; j < i; j++) {
            if (strcmp(params.items[j]->name, a->name) == 0) {
                diag_error(a->name_span, "duplicate parameter '%s'", a->name);
                diag_note(params.items[j]->name_span, "the first is here");
                break;
            }
        }
    }
    return n;
}

Ast *ast_net(AstProgram *p, Span sp, Span name_sp, const char *name, AstList body) {
    Ast *n = named(p, A_NET, sp, name_sp, name);
    n->list = body;
    return n;
}

void ast_program_add(AstProgram *p, Ast *item) {
    if (item->kind == A_BLOCK) {
        ast_list_push(p, &p->blocks, item);
    } else if (p->net) {
        diag_error((Span){item->span.begin, item->name_span.end},
                   "more than one net in a file");
        diag_note((Span){p->net->span.begin, p->net->name_span.end}, "the first net is here");
    } else {
        p->net = item;
    }
}

void ast_interpolation(AstProgram *p, Ast *e) { p->interp = e; }

/* ---- names ---------------------------------------------------------------- */

const char *ast_kind_name(AstKind k) {
    switch (k) {
    case A_INT: return "integer";
    case A_FLOAT: return "float";
    case A_BOOL: return "boolean";
    case A_STRING: return "string";
    case A_STRING_LIT: return "string literal";
    case A_NAME: return "name";
    case A_LIST: return "list";
    case A_INDEX: return "index";
    case A_UNARY: return "unary operation";
    case A_BINARY: return "binary operation";
    case A_CALL: return "call";
    case A_KWARG: return "keyword argument";
    case A_AS: return "as";
    case A_ASSIGN: return "assignment";
    case A_INPUT: return "input";
    case A_OUTPUT: return "output";
    case A_EXPR: return "expression statement";
    case A_FOR: return "for";
    case A_IF: return "if";
    case A_RETURN: return "return";
    case A_INIT: return "init";
    case A_FREEZE: return "freeze";
    case A_BLOCK: return "block";
    case A_NET: return "net";
    }
    return "?";
}

const char *ast_op_text(AstOp op) {
    switch (op) {
    case OP_ADD_: return "+";
    case OP_SUB_: return "-";
    case OP_MUL_: return "*";
    case OP_DIV_: return "/";
    case OP_MOD_: return "%";
    case OP_EQ_: return "==";
    case OP_NE_: return "!=";
    case OP_LT_: return "<";
    case OP_LE_: return "<=";
    case OP_GT_: return ">";
    case OP_GE_: return ">=";
    case OP_AND_: return "&&";
    case OP_OR_: return "||";
    case OP_NEG_: return "-";
    case OP_NOT_: return "!";
    }
    return "?";
}
