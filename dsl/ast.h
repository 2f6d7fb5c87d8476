/* The abstract syntax tree of a .net file.
 *
 * Built only by the parser's actions through the ast_* builders below; read
 * by the evaluator (eval.c).  All nodes live in one arena owned by the
 * AstProgram and freed with it.
 */
#ifndef NETC_AST_H
#define NETC_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "../support/arena.h"
#include "../support/source.h"

typedef enum {
    /* expressions */
    A_INT,      /* ival */
    A_FLOAT,    /* fval */
    A_BOOL,     /* bval */
    A_STRING,   /* list: parts, each an A_STRING_LIT or an expression to interpolate
                 * (at least one part; "" is one empty A_STRING_LIT); name: the
                 * whole text when nothing is interpolated, else NULL */
    A_STRING_LIT, /* name: literal text (escapes resolved) */
    A_NAME,     /* name */
    A_LIST,     /* list: elements */
    A_INDEX,    /* a[b] */
    A_UNARY,    /* op a  (op is '-' or '!') */
    A_BINARY,   /* a op b (op: an AstOp) */
    A_CALL,     /* name(list); list holds expressions and A_KWARG; name_span: the
                 * callee; span: the call as written (for a call made by |>, the
                 * right side only: `avgpool(2)` in `x |> avgpool(2)`) */
    A_KWARG,    /* name = a, inside a call's list or a block's parameter list */
    A_AS,       /* a as b: a is the call it names, b the name (an A_STRING) */
    /* statements */
    A_ASSIGN,   /* name = a; */
    A_INPUT,    /* input name: a;  (a is an A_LIST of dims) */
    A_OUTPUT,   /* output name = a; */
    A_EXPR,     /* a; */
    A_FOR,      /* for name in a..b { list } */
    A_IF,       /* if a { list } else { list2 }  (else-if is an A_IF alone in list2) */
    A_RETURN,   /* return a; */
    A_INIT,     /* init key = a, ...;  list: A_KWARG items (initialization, issue 12) */
    A_FREEZE,   /* freeze list;  (parameter name patterns, compiler/freeze.c) */
    /* top level */
    A_BLOCK,    /* block name(params) { list }; params in list2 (A_NAME or A_KWARG) */
    A_NET,      /* net name { list } */
} AstKind;

typedef enum {
    OP_ADD_, OP_SUB_, OP_MUL_, OP_DIV_, OP_MOD_,
    OP_EQ_, OP_NE_, OP_LT_, OP_LE_, OP_GT_, OP_GE_,
    OP_AND_, OP_OR_, OP_NEG_, OP_NOT_,
} AstOp;

typedef struct Ast Ast;

typedef struct AstList {
    Ast **items;
    int n, cap;
} AstList;

struct Ast {
    AstKind kind;
    Span span;     /* the whole construct */
    Span name_span; /* the name, where there is one */
    int64_t ival;
    double fval;
    bool bval;
    AstOp op;
    const char *name;
    Ast *a, *b;
    AstList list, list2;
    /* A_CALL: its first argument was put there by a `|>` (piped), and, for a
     * call of a pipe whose last call is named by `as`, that A_AS (pipe_as:
     * the name is not this call's, lint.c's warning). */
    bool piped;
    const Ast *pipe_as;
};

typedef struct AstProgram {
    Arena *arena;      /* owns every node and string */
    const Source *src; /* not owned */
    AstList blocks;    /* A_BLOCK nodes in source order */
    Ast *net;          /* the A_NET, or NULL if the file has none */
    Ast *interp;       /* internal: the result of parsing one {expr} of a string */
} AstProgram;

/* Parses a whole file.  Syntax errors are reported through diag_* (several
 * per run where the parser can recover); returns NULL if there was any.
 * The caller owns the result and frees it with ast_free.  It calls
 * diag_set_source(src) itself.  A second net is an error here; a file
 * without one parses (p->net == NULL) and is left to the evaluator. */
AstProgram *parse_program(const Source *src);
void ast_free(AstProgram *p);

/* Builders, called by the grammar actions (and by nothing else).  They
 * allocate in the program's arena. */
Ast *ast_new(AstProgram *p, AstKind k, Span sp);
Ast *ast_int(AstProgram *p, Span sp, const char *text);
Ast *ast_float(AstProgram *p, Span sp, const char *text);
Ast *ast_bool(AstProgram *p, Span sp, bool v);
/* A string literal token, quotes included; splits "{expr}" parts and parses them. */
Ast *ast_string(AstProgram *p, Span sp, const char *token);
Ast *ast_name(AstProgram *p, Span sp, const char *name);
Ast *ast_unary(AstProgram *p, Span sp, AstOp op, Ast *a);
Ast *ast_binary(AstProgram *p, AstOp op, Ast *a, Ast *b);
Ast *ast_call(AstProgram *p, Span sp, Ast *callee_name, AstList args);
Ast *ast_kwarg(AstProgram *p, Span sp, const char *name, Ast *value);
Ast *ast_index(AstProgram *p, Span sp, Ast *base, Ast *index);
Ast *ast_as(AstProgram *p, Span sp, Ast *call, Ast *name);
/* a |> rhs: rhs must be a name, a call, or one of those followed by `as`;
 * the result is the call with a inserted as its first argument. */
Ast *ast_pipe(AstProgram *p, Ast *a, Ast *rhs);
Ast *ast_list(AstProgram *p, Span sp, AstList items);
AstList ast_list_empty(void);
/* Appends item; a NULL item (a statement lost to a syntax error) is skipped. */
void ast_list_push(AstProgram *p, AstList *l, Ast *item);

/* Statements; name_sp is the span of the name they declare. */
Ast *ast_assign(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *value);
Ast *ast_input(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *dims);
Ast *ast_output(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *value);
Ast *ast_expr_stmt(AstProgram *p, Span sp, Ast *e);
Ast *ast_for(AstProgram *p, Span sp, Span name_sp, const char *name, Ast *from, Ast *to,
             AstList body);
Ast *ast_if(AstProgram *p, Span sp, Ast *cond, AstList then, AstList els);
Ast *ast_return(AstProgram *p, Span sp, Ast *value);
/* `init key = scheme, ...;`: word is the statement's first name, which must
 * be "init" (else a syntax error at word_sp); items are A_KWARG. */
Ast *ast_init_stmt(AstProgram *p, Span sp, Span word_sp, const char *word, AstList items);
Ast *ast_freeze(AstProgram *p, Span sp, AstList patterns);
/* Top level: params are A_NAME or A_KWARG (a parameter with its default). */
Ast *ast_block(AstProgram *p, Span sp, Span name_sp, const char *name, AstList params,
               AstList body);
Ast *ast_net(AstProgram *p, Span sp, Span name_sp, const char *name, AstList body);
/* Records a top-level A_BLOCK or A_NET in p->blocks or p->net. */
void ast_program_add(AstProgram *p, Ast *item);
/* Records the expression parsed from a string's {...} in p->interp. */
void ast_interpolation(AstProgram *p, Ast *e);

/* Front-end internal (lexer.l): runs the parser on the source bytes
 * [begin, end) of p->src, as a whole file or, if expr, as one interpolated
 * expression followed by '}'.  Returns yyparse's result. */
int ast_parse_range(AstProgram *p, bool expr, uint32_t begin, uint32_t end);

const char *ast_kind_name(AstKind k);
const char *ast_op_text(AstOp op);

#endif
