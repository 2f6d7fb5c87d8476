/* The grammar of .net files (bison; see docs/language.md for the rules).
 *
 *   file      = { net | block } ;                 (exactly one net, checked)
 *   net       = "net" IDENT body ;
 *   block     = "block" IDENT "(" [ param { "," param } ] ")" body ;
 *   param     = IDENT [ "=" expr ] ;
 *   body      = "{" { stmt } "}" ;
 *   stmt      = IDENT "=" expr ";"
 *             | "input" IDENT ":" expr ";"
 *             | "output" IDENT "=" expr ";"
 *             | "for" IDENT "in" expr ".." expr body
 *             | if
 *             | "return" expr ";"
 *             | "init" IDENT "=" expr { "," IDENT "=" expr } ";"   ("init" is not reserved)
 *             | "freeze" expr { "," expr } ";"     (parameter name patterns)
 *             | expr ";" ;
 *   if        = "if" expr body [ "else" ( body | if ) ] ;
 *
 *   expr      = or { "|>" or } ;                   (lowest precedence)
 *   or        = and { "||" and } ;
 *   and       = eq { "&&" eq } ;
 *   eq        = rel { ( "==" | "!=" ) rel } ;
 *   rel       = add { ( "<" | "<=" | ">" | ">=" ) add } ;
 *   add       = mul { ( "+" | "-" ) mul } ;
 *   mul       = unary { ( "*" | "/" | "%" ) unary } ;
 *   unary     = ( "-" | "!" ) unary | postfix ;
 *   postfix   = primary { "(" [ arg { "," arg } ] ")" | "[" expr "]" | "as" STRING } ;
 *   arg       = [ IDENT "=" ] expr ;                (positional ones first)
 *   primary   = INT | FLOAT | "true" | "false" | STRING | IDENT
 *             | "[" [ expr { "," expr } ] "]" | "(" expr ")" ;
 *
 *   IDENT     = letter { letter | digit } ;        (letter includes '_')
 *   INT       = digit { digit } ;                  (at most INT64_MAX)
 *   FLOAT     = digits "." digits [ exp ] | digits exp ;   exp = ( "e" | "E" ) [ "+" | "-" ] digits
 *   STRING    = '"' { char | escape | "{" expr "}" } '"' ;  escapes: \" \\ \n \t \{ \}
 *   comments  = ( "#" | "//" ) up to the end of the line ;
 *
 * Binary operators are left-associative.  A pipe's right side must be a name
 * or a call, optionally followed by `as STRING`; a STRING's {expr} parts are
 * parsed by a second run of this parser that starts at START_EXPR.
 *
 * Actions only call the ast_* builders (ast.c).  Locations are byte offsets.
 */

%define api.pure full
%define api.token.prefix {TOK_}
%define parse.error custom
%define parse.lac full
%locations
%expect 0

%parse-param {yyscan_t scanner} {AstProgram *prog}
%lex-param {yyscan_t scanner}

%code requires {
#include <stdint.h>
#include "ast.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* Locations are byte offsets into the source: a Span {begin, end}. */
typedef Span YYLTYPE;
#define YYLTYPE_IS_DECLARED 1

#define YYLLOC_DEFAULT(Cur, Rhs, N)                         \
    do {                                                    \
        if (N) {                                            \
            (Cur).begin = YYRHSLOC(Rhs, 1).begin;           \
            (Cur).end = YYRHSLOC(Rhs, N).end;               \
        } else {                                            \
            (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end; \
        }                                                   \
    } while (0)

/* The scanner's extra data (yyextra). */
typedef struct LexExtra {
    AstProgram *prog;
    uint32_t offset;  /* byte offset of the next character in the source */
    uint32_t base;    /* where the scanned range starts */
    uint32_t last_end; /* where the last token returned ended */
    int next_token;   /* if nonzero, the next token to return (START_FILE or
                       * START_EXPR first; a ';' after an unterminated string) */
    /* The last token returned, and whether to return it again after a ';'
     * (a missing ';' is supplied so that parsing resumes at the statement
     * the lookahead starts: see yyreport_syntax_error). */
    int last_token;
    const char *last_str;
    Span last_span;
    bool replay;
} LexExtra;
}

%code provides {
int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);
LexExtra *yyget_extra(yyscan_t scanner);
}

%code {
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void yyerror(YYLTYPE *loc, yyscan_t scanner, AstProgram *prog, const char *msg);
}

%initial-action {
    @$.begin = @$.end = yyget_extra(scanner)->offset;
}

%union {
    const char *str;
    Ast *node;
    AstList list;
}

%token START_FILE START_EXPR
%token <str> IDENT "identifier"
%token <str> INT "integer"
%token <str> FLOAT "number"
%token <str> STRING "string"
%token NET "net" BLOCK "block" INPUT "input" OUTPUT "output" FOR "for" IN "in"
%token IF "if" ELSE "else" RETURN "return" AS "as" TRUE "true" FALSE "false"
%token FREEZE "freeze"
%token PIPE "|>" OROR "||" ANDAND "&&" EQ "==" NE "!=" LE "<=" GE ">=" DOTDOT ".."

%left PIPE
%left OROR
%left ANDAND
%left EQ NE
%left '<' LE '>' GE
%left '+' '-'
%left '*' '/' '%'
%precedence UNARY

%type <node> item stmt if_stmt param expr postfix primary arg
%type <list> init_items stmts body params param_list else_part args arg_list exprs expr_list

%%

start:
    START_FILE items
|   START_EXPR expr '}'         { ast_interpolation(prog, $2); }
;

items:
    %empty
|   items item                  { ast_program_add(prog, $2); }
|   items error                 /* skip to the next "net" or "block" */
;

item:
    NET IDENT body              { $$ = ast_net(prog, @$, @2, $2, $3); }
|   BLOCK IDENT '(' params ')' body
                                { $$ = ast_block(prog, @$, @2, $2, $4, $6); }
;

params:
    %empty                      { $$ = ast_list_empty(); }
|   param_list
;

param_list:
    param                       { $$ = ast_list_empty(); ast_list_push(prog, &$$, $1); }
|   param_list ',' param        { $$ = $1; ast_list_push(prog, &$$, $3); }
;

param:
    IDENT                       { $$ = ast_name(prog, @$, $1); }
|   IDENT '=' expr              { $$ = ast_kwarg(prog, @$, $1, $3); }
;

body:
    '{' stmts '}'               { $$ = $2; }
|   '{' stmts error '}'         { $$ = $2; yyerrok; }
;

stmts:
    %empty                      { $$ = ast_list_empty(); }
|   stmts stmt                  { $$ = $1; ast_list_push(prog, &$$, $2); }
;

stmt:
    IDENT '=' expr ';'          { $$ = ast_assign(prog, @$, @1, $1, $3); }
|   INPUT IDENT ':' expr ';'    { $$ = ast_input(prog, @$, @2, $2, $4); }
|   OUTPUT IDENT '=' expr ';'   { $$ = ast_output(prog, @$, @2, $2, $4); }
|   FOR IDENT IN expr DOTDOT expr body
                                { $$ = ast_for(prog, @$, @2, $2, $4, $6, $7); }
|   if_stmt
|   RETURN expr ';'             { $$ = ast_return(prog, @$, $2); }
|   IDENT init_items ';'        { $$ = ast_init_stmt(prog, @$, @1, $1, $2); }
|   FREEZE expr_list ';'        { $$ = ast_freeze(prog, @$, $2); }
|   expr ';'                    { $$ = ast_expr_stmt(prog, @$, $1); }
|   error ';'                   { $$ = NULL; yyerrok; }
;

init_items:
    IDENT '=' expr              { $$ = ast_list_empty(); Ast *k = ast_kwarg(prog, @$, $1, $3); k->name_span = @1;
                                  ast_list_push(prog, &$$, k); }
|   init_items ',' IDENT '=' expr
                                { $$ = $1; Ast *k = ast_kwarg(prog, (Span){@3.begin, @5.end}, $3, $5); k->name_span = @3;
                                  ast_list_push(prog, &$$, k); }
;

if_stmt:
    IF expr body else_part      { $$ = ast_if(prog, @$, $2, $3, $4); }
;

else_part:
    %empty                      { $$ = ast_list_empty(); }
|   ELSE body                   { $$ = $2; }
|   ELSE if_stmt                { $$ = ast_list_empty(); ast_list_push(prog, &$$, $2); }
;

expr:
    postfix
|   expr PIPE expr              { $$ = ast_pipe(prog, $1, $3); }
|   expr OROR expr              { $$ = ast_binary(prog, OP_OR_, $1, $3); }
|   expr ANDAND expr            { $$ = ast_binary(prog, OP_AND_, $1, $3); }
|   expr EQ expr                { $$ = ast_binary(prog, OP_EQ_, $1, $3); }
|   expr NE expr                { $$ = ast_binary(prog, OP_NE_, $1, $3); }
|   expr '<' expr               { $$ = ast_binary(prog, OP_LT_, $1, $3); }
|   expr LE expr                { $$ = ast_binary(prog, OP_LE_, $1, $3); }
|   expr '>' expr               { $$ = ast_binary(prog, OP_GT_, $1, $3); }
|   expr GE expr                { $$ = ast_binary(prog, OP_GE_, $1, $3); }
|   expr '+' expr               { $$ = ast_binary(prog, OP_ADD_, $1, $3); }
|   expr '-' expr               { $$ = ast_binary(prog, OP_SUB_, $1, $3); }
|   expr '*' expr               { $$ = ast_binary(prog, OP_MUL_, $1, $3); }
|   expr '/' expr               { $$ = ast_binary(prog, OP_DIV_, $1, $3); }
|   expr '%' expr               { $$ = ast_binary(prog, OP_MOD_, $1, $3); }
|   '-' expr %prec UNARY        { $$ = ast_unary(prog, @$, OP_NEG_, $2); }
|   '!' expr %prec UNARY        { $$ = ast_unary(prog, @$, OP_NOT_, $2); }
;

postfix:
    primary
|   postfix '(' args ')'        { $$ = ast_call(prog, @$, $1, $3); }
|   postfix '[' expr ']'        { $$ = ast_index(prog, @$, $1, $3); }
|   postfix AS STRING           { $$ = ast_as(prog, @$, $1, ast_string(prog, @3, $3)); }
;

args:
    %empty                      { $$ = ast_list_empty(); }
|   arg_list
;

arg_list:
    arg                         { $$ = ast_list_empty(); ast_list_push(prog, &$$, $1); }
|   arg_list ',' arg            { $$ = $1; ast_list_push(prog, &$$, $3); }
;

arg:
    expr
|   IDENT '=' expr              { $$ = ast_kwarg(prog, @$, $1, $3); }
;

primary:
    INT                         { $$ = ast_int(prog, @$, $1); }
|   FLOAT                       { $$ = ast_float(prog, @$, $1); }
|   TRUE                        { $$ = ast_bool(prog, @$, true); }
|   FALSE                       { $$ = ast_bool(prog, @$, false); }
|   STRING                      { $$ = ast_string(prog, @$, $1); }
|   IDENT                       { $$ = ast_name(prog, @$, $1); }
|   '[' exprs ']'               { $$ = ast_list(prog, @$, $2); }
|   '(' expr ')'                { $$ = $2; }
;

exprs:
    %empty                      { $$ = ast_list_empty(); }
|   expr_list
;

expr_list:
    expr                        { $$ = ast_list_empty(); ast_list_push(prog, &$$, $1); }
|   expr_list ',' expr          { $$ = $1; ast_list_push(prog, &$$, $3); }
;

%%

static bool is_keyword(const char *w, size_t n) {
    static const char *const kw[] = {"net", "block", "input", "output", "for", "in",
                                     "if", "else", "return", "as", "true", "false"};
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
        if (strlen(kw[i]) == n && memcmp(kw[i], w, n) == 0) return true;
    return false;
}

static bool ident_char(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The word just before offset b (spaces skipped), as [*wb, b'). */
static size_t word_before(const char *t, uint32_t b, uint32_t *wb) {
    uint32_t e = b;
    while (e > 0 && (t[e - 1] == ' ' || t[e - 1] == '\t')) e--;
    uint32_t s = e;
    while (s > 0 && ident_char(t[s - 1])) s--;
    *wb = s;
    return e - s;
}

/* A token's name in messages: descriptions (identifier, end of file, ...)
 * print bare, keywords and punctuation in single quotes like clang's:
 * unexpected '|>'.  (bison gives aliases without their double quotes.) */
static const char *token_name(yysymbol_kind_t k, char *buf, size_t size) {
    static const char *const bare[] = {"identifier", "integer", "number", "string", "end of file", "invalid token"};
    const char *str = yysymbol_name(k);
    for (size_t i = 0; i < sizeof bare / sizeof *bare; i++)
        if (strcmp(bare[i], str) == 0) return str;
    if (str[0] == '\'') return str; /* a character token: ';' */
    snprintf(buf, size, "'%s'", str);
    return buf;
}

/* Whether k is the character token c (bison numbers them its own way). */
static bool is_char(yysymbol_kind_t k, char c) {
    const char *s = yysymbol_name(k);
    return s[0] == '\'' && s[1] == c && s[2] == '\'' && s[3] == 0;
}

/* Tokens that can begin a statement: after a missing ';', the parser
 * resumes there. */
static bool starts_statement(yysymbol_kind_t k) {
    switch (k) {
    case YYSYMBOL_IDENT: case YYSYMBOL_INT: case YYSYMBOL_FLOAT: case YYSYMBOL_STRING: case YYSYMBOL_TRUE:
    case YYSYMBOL_FALSE: case YYSYMBOL_INPUT: case YYSYMBOL_OUTPUT: case YYSYMBOL_FOR: case YYSYMBOL_IF:
    case YYSYMBOL_RETURN: case YYSYMBOL_FREEZE:
        return true;
    default: return is_char(k, '(') || is_char(k, '[') || is_char(k, '-') || is_char(k, '!');
    }
}

/* Tokens that continue an expression: binary operators, a call's '(', an
 * index's '[', 'as', and the '=' that makes a name a keyword argument. */
static bool continues_expr(yysymbol_kind_t k) {
    switch (k) {
    case YYSYMBOL_PIPE: case YYSYMBOL_OROR: case YYSYMBOL_ANDAND: case YYSYMBOL_EQ: case YYSYMBOL_NE:
    case YYSYMBOL_LE: case YYSYMBOL_GE: case YYSYMBOL_AS:
        return true;
    default: {
        const char *s = yysymbol_name(k);
        return s[0] == '\'' && s[1] && strchr("<>+-*/%([=", s[1]) && s[2] == '\'';
    }
    }
}

/* The reworded syntax errors with a likelier cause than "unexpected X": a
 * keyword where a name belongs, an input or output without its name.
 * Returns whether it reported one. */
static bool report_keyword_misuse(Span loc, const AstProgram *prog) {
    const char *t = prog->src->text;
    uint32_t len = (uint32_t)prog->src->len, b = loc.begin, e = loc.end;
    if (!(b < e && e <= len)) return false;
    uint32_t k = e, wb;
    while (k < len && (t[k] == ' ' || t[k] == '\t')) k++;
    char next = k < len ? t[k] : 0;
    size_t wn = word_before(t, b, &wb);
    bool after_def = (wn == 3 && memcmp(t + wb, "net", 3) == 0) || (wn == 5 && memcmp(t + wb, "block", 5) == 0);
    if (is_keyword(t + b, e - b) &&
        ((next == '=' && t[k + 1] != '=') || next == ':' || next == ',' || next == ')' ||
         (after_def && (next == '(' || next == '{')))) {
        diag_error(loc, "'%.*s' is a keyword and cannot be used as a name", (int)(e - b), t + b);
        return true;
    }
    if (t[b] == '=' && wn == 6 && memcmp(t + wb, "output", 6) == 0) {
        diag_error(loc, "an output needs a name: output NAME = expr;");
        return true;
    }
    if (t[b] == ':' && wn == 5 && memcmp(t + wb, "input", 5) == 0) {
        diag_error(loc, "an input needs a name: input NAME: [sizes];");
        return true;
    }
    if (t[b] == '=' && t[b + 1] != '=' && wn > 0 && is_keyword(t + wb, wn)) { /* true = 1; */
        diag_error((Span){wb, wb + (uint32_t)wn}, "'%.*s' is a keyword and cannot be used as a name", (int)wn, t + wb);
        return true;
    }
    return false;
}

/* Syntax errors are worded as a compiler's, not as bison's "syntax error,
 * unexpected X, expecting Y":
 *   - a statement without its ';' (a ';' would have been accepted, and what
 *     came instead is on a later line or begins a statement, or is the '}'
 *     or the end of the file): "expected ';'" just after the statement's
 *     last token, as clang does.  The ';' is then supplied (the lexer
 *     returns it, then the lookahead again), so parsing resumes at the next
 *     statement and reports its errors too;
 *   - where an expression must begin: "expected an expression before X";
 *   - the end of the file inside a net or block: "expected '}' at end of
 *     file"; a '}' outside any: "unmatched '}'";
 *   - a few tokens possible: "expected A, B or C before X" (leaving out
 *     the operators that would continue an expression, and the end of the
 *     file when something else is possible);
 *   - else "unexpected X". */
static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, AstProgram *prog) {
    Span loc = *yypcontext_location(ctx);
    if (report_keyword_misuse(loc, prog)) return 0;
    LexExtra *x = yyget_extra(scanner);
    yysymbol_kind_t got = yypcontext_token(ctx), exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    bool semi = false, ident = false, num = false, close = false, item = false;
    for (int i = 0; i < n; i++) {
        semi |= is_char(exp[i], ';');
        close |= is_char(exp[i], '}');
        item |= exp[i] == YYSYMBOL_NET;
        ident |= exp[i] == YYSYMBOL_IDENT;
        num |= exp[i] == YYSYMBOL_INT;
    }
    const char *t = prog->src->text;
    bool later_line = memchr(t + x->last_end, '\n', loc.begin > x->last_end ? loc.begin - x->last_end : 0) != NULL;
    bool closes = got == YYSYMBOL_YYEOF || is_char(got, '}');
    if (semi && (later_line || closes || starts_statement(got))) {
        diag_error((Span){x->last_end, x->last_end}, "expected ';'");
        if (starts_statement(got)) x->replay = true; /* error recovery drops the lookahead: give it back */
        return 0;
    }
    char gbuf[32], ebuf[32];
    const char *gname = token_name(got, gbuf, sizeof gbuf);
    char where[48];
    if (got == YYSYMBOL_YYEOF)
        snprintf(where, sizeof where, "at end of file");
    else
        snprintf(where, sizeof where, "before %s", gname);
    if (close && got == YYSYMBOL_YYEOF) { /* where a statement or the '}' may come */
        diag_error(loc, "expected '}' at end of file");
        return 0;
    }
    if (item && is_char(got, '}')) {
        diag_error(loc, "unmatched '}'");
        return 0;
    }
    if (ident && num && !close) {
        diag_error(loc, "expected an expression %s", where);
        return 0;
    }
    int keep = 0; /* the expected tokens worth naming: not the operators that would continue an expression */
    for (int i = 0; i < n; i++)
        if ((exp[i] != YYSYMBOL_YYEOF || n == 1) && !continues_expr(exp[i])) exp[keep++] = exp[i];
    if (keep >= 1 && keep <= 4) {
        char list[160] = "";
        size_t used = 0;
        for (int i = 0; i < keep; i++) {
            const char *sep = i == 0 ? "" : i == keep - 1 ? " or " : ", ";
            int w = snprintf(list + used, sizeof list - used, "%s%s", sep, token_name(exp[i], ebuf, sizeof ebuf));
            if (w > 0 && (size_t)w < sizeof list - used) used += (size_t)w;
        }
        diag_error(loc, "expected %s %s", list, where);
        return 0;
    }
    diag_error(loc, "unexpected %s", gname);
    return 0;
}

/* Only "memory exhausted" comes here: yyreport_syntax_error reports the rest. */
static void yyerror(YYLTYPE *loc, yyscan_t scanner, AstProgram *prog, const char *msg) {
    (void)scanner;
    (void)prog;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(*loc, "the program nests too deeply (the parser's stack is exhausted)");
    else
        diag_error(*loc, "%s", msg);
}
