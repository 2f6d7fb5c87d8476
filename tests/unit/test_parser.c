/* Unit tests of the lexer, the parser, the AST builders and the diagnostics. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ast.h"
#include "helpers.h"
#include "source.h"

#ifndef NETC_SOURCE_DIR
#define NETC_SOURCE_DIR "."
#endif

/* ---- helpers ------------------------------------------------------------------ */

static Source *cur_src;

/* Parses text as "t.net"; fails the test on any error. */
static AstProgram *parse_ok(const char *text) {
    diag_reset();
    cur_src = source_from_string("t.net", text);
    capture_begin();
    AstProgram *p = parse_program(cur_src);
    const char *msg = capture_end();
    ck_assert_msg(p != NULL, "parse failed:\n%s", msg);
    ck_assert_int_eq(diag_error_count(), 0);
    return p;
}

static void done(AstProgram *p) {
    ast_free(p);
    source_free(cur_src);
    cur_src = NULL;
}

/* Parses text expecting failure; returns the messages (static buffer). */
static const char *parse_err(const char *text) {
    diag_reset();
    Source *s = source_from_string("t.net", text);
    capture_begin();
    AstProgram *p = parse_program(s);
    const char *msg = capture_end();
    ck_assert_msg(p == NULL, "parsed without error:\n%s", text);
    ck_assert_int_gt(diag_error_count(), 0);
    source_free(s);
    return msg;
}

/* The expression of the first statement of the net: `x = EXPR;`. */
static const Ast *expr_of(const char *expr_text, AstProgram **pp) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "net t { x = %s; }", expr_text);
    AstProgram *p = parse_ok(buf);
    *pp = p;
    ck_assert_ptr_nonnull(p->net);
    ck_assert_int_eq(p->net->list.n, 1);
    const Ast *s = p->net->list.items[0];
    ck_assert_int_eq(s->kind, A_ASSIGN);
    return s->a;
}

/* The source text a span covers. */
static const char *span_text(Span sp) {
    static char buf[256];
    size_t n = sp.end - sp.begin;
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, cur_src->text + sp.begin, n);
    buf[n] = 0;
    return buf;
}

/* A compact rendering of an expression: (op a b), f(args), name, 42 ... */
static void render(const Ast *n, char *out, size_t cap) {
    char a[512] = "", b[512] = "";
    switch (n->kind) {
    case A_INT: snprintf(out, cap, "%lld", (long long)n->ival); return;
    case A_FLOAT: snprintf(out, cap, "%g", n->fval); return;
    case A_BOOL: snprintf(out, cap, "%s", n->bval ? "true" : "false"); return;
    case A_NAME: snprintf(out, cap, "%s", n->name); return;
    case A_STRING_LIT: snprintf(out, cap, "'%s'", n->name); return;
    case A_STRING:
    case A_LIST:
    case A_CALL: {
        size_t k = (size_t)snprintf(out, cap, "%s%s", n->kind == A_CALL ? n->name : "",
                                    n->kind == A_STRING ? "\"" : n->kind == A_LIST ? "[" : "(");
        for (int i = 0; i < n->list.n && k < cap; i++) {
            render(n->list.items[i], a, sizeof a);
            k += (size_t)snprintf(out + k, cap - k, "%s%s", i && n->kind != A_STRING ? ", " : "", a);
        }
        if (k < cap) snprintf(out + k, cap - k, "%s", n->kind == A_STRING ? "\"" : n->kind == A_LIST ? "]" : ")");
        return;
    }
    case A_KWARG: render(n->a, a, sizeof a); snprintf(out, cap, "%s=%s", n->name, a); return;
    case A_INDEX:
        render(n->a, a, sizeof a);
        render(n->b, b, sizeof b);
        snprintf(out, cap, "%s[%s]", a, b);
        return;
    case A_AS:
        render(n->a, a, sizeof a);
        render(n->b, b, sizeof b);
        snprintf(out, cap, "(%s as %s)", a, b);
        return;
    case A_UNARY: render(n->a, a, sizeof a); snprintf(out, cap, "(%s%s)", ast_op_text(n->op), a); return;
    case A_BINARY:
        render(n->a, a, sizeof a);
        render(n->b, b, sizeof b);
        snprintf(out, cap, "(%s %s %s)", a, ast_op_text(n->op), b);
        return;
    default: snprintf(out, cap, "<%s>", ast_kind_name(n->kind)); return;
    }
}

/* Parses `x = text;` and checks its rendering. */
#define ck_expr(text, want)                                  \
    do {                                                     \
        AstProgram *p_;                                      \
        char got_[2048];                                     \
        render(expr_of(text, &p_), got_, sizeof got_);       \
        ck_assert_str_eq(got_, want);                        \
        done(p_);                                            \
    } while (0)

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* ---- the example programs of the issue ------------------------------------------ */

static const char *lenet5 =
    "# LeNet-5 (LeCun et al., 1998) for 28x28 grey images: pad 2 stands in for the 32x32 input\n"
    "net lenet5 {\n"
    "    input image: [1, 28, 28];\n"
    "    x = conv(image, 6, 5, pad = 2) |> tanh |> avgpool(2);\n"
    "    x = conv(x, 16, 5) |> tanh |> avgpool(2);\n"
    "    x = conv(x, 120, 5) |> tanh |> flatten;\n"
    "    x = linear(x, 84) |> tanh;\n"
    "    output logits = linear(x, 10);\n"
    "}\n";

static const char *resnet18 =
    "# ResNet-18 (He et al., 2016): parameter names are exactly torchvision's resnet18 state_dict keys\n"
    "block basic(x, planes, stride = 1) {\n"
    "    y = conv(x, planes, 3, stride = stride, pad = 1, bias = false) as \"conv1\";\n"
    "    y = batchnorm(y) as \"bn1\" |> relu;\n"
    "    y = conv(y, planes, 3, pad = 1, bias = false) as \"conv2\";\n"
    "    y = batchnorm(y) as \"bn2\";\n"
    "    shortcut = x;\n"
    "    if stride != 1 || channels(x) != planes {\n"
    "        shortcut = conv(x, planes, 1, stride = stride, bias = false) as \"downsample.0\";\n"
    "        shortcut = batchnorm(shortcut) as \"downsample.1\";\n"
    "    }\n"
    "    return relu(y + shortcut);\n"
    "}\n"
    "\n"
    "net resnet18 {\n"
    "    input image: [3, 224, 224];\n"
    "    x = conv(image, 64, 7, stride = 2, pad = 3, bias = false) as \"conv1\";\n"
    "    x = batchnorm(x) as \"bn1\" |> relu |> maxpool(3, stride = 2, pad = 1);\n"
    "    widths = [64, 128, 256, 512];\n"
    "    for stage in 0..4 {\n"
    "        for i in 0..2 {\n"
    "            stride = 1;\n"
    "            if stage > 0 && i == 0 { stride = 2; }\n"
    "            x = basic(x, widths[stage], stride) as \"layer{stage + 1}.{i}\";\n"
    "        }\n"
    "    }\n"
    "    x = global_avgpool(x) |> flatten;\n"
    "    output logits = linear(x, 1000) as \"fc\";\n"
    "}\n";

START_TEST(test_lenet5) {
    AstProgram *p = parse_ok(lenet5);
    ck_assert_int_eq(p->blocks.n, 0);
    ck_assert_str_eq(p->net->name, "lenet5");
    ck_assert_str_eq(span_text(p->net->name_span), "lenet5");
    ck_assert_int_eq(p->net->list.n, 6);
    const Ast *in = p->net->list.items[0];
    ck_assert_int_eq(in->kind, A_INPUT);
    ck_assert_str_eq(in->name, "image");
    ck_assert_str_eq(span_text(in->span), "input image: [1, 28, 28];");
    char buf[2048];
    render(in->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "[1, 28, 28]");
    render(p->net->list.items[1]->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "avgpool(tanh(conv(image, 6, 5, pad=2)), 2)");
    render(p->net->list.items[3]->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "flatten(tanh(conv(x, 120, 5)))");
    const Ast *out = p->net->list.items[5];
    ck_assert_int_eq(out->kind, A_OUTPUT);
    ck_assert_str_eq(out->name, "logits");
    render(out->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "linear(x, 10)");
    done(p);
}
END_TEST

START_TEST(test_resnet18) {
    AstProgram *p = parse_ok(resnet18);
    char buf[2048];
    ck_assert_int_eq(p->blocks.n, 1);
    const Ast *b = p->blocks.items[0];
    ck_assert_int_eq(b->kind, A_BLOCK);
    ck_assert_str_eq(b->name, "basic");
    ck_assert_int_eq(b->list2.n, 3);
    ck_assert_int_eq(b->list2.items[0]->kind, A_NAME);
    ck_assert_int_eq(b->list2.items[1]->kind, A_NAME);
    ck_assert_int_eq(b->list2.items[2]->kind, A_KWARG);
    ck_assert_str_eq(b->list2.items[2]->name, "stride");
    ck_assert_int_eq(b->list.n, 7);
    render(b->list.items[1]->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "relu((batchnorm(y) as \"'bn1'\"))");
    const Ast *ifs = b->list.items[5];
    ck_assert_int_eq(ifs->kind, A_IF);
    render(ifs->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "((stride != 1) || (channels(x) != planes))");
    ck_assert_int_eq(ifs->list.n, 2);
    ck_assert_int_eq(ifs->list2.n, 0);
    ck_assert_int_eq(b->list.items[6]->kind, A_RETURN);

    const Ast *net = p->net;
    ck_assert_str_eq(net->name, "resnet18");
    ck_assert_int_eq(net->list.n, 7);
    render(net->list.items[2]->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "maxpool(relu((batchnorm(x) as \"'bn1'\")), 3, stride=2, pad=1)");
    const Ast *f1 = net->list.items[4];
    ck_assert_int_eq(f1->kind, A_FOR);
    ck_assert_str_eq(f1->name, "stage");
    ck_assert_int_eq(f1->a->kind, A_INT);
    ck_assert_int_eq(f1->a->ival, 0);
    ck_assert_int_eq(f1->b->ival, 4);
    const Ast *f2 = f1->list.items[0];
    ck_assert_int_eq(f2->kind, A_FOR);
    ck_assert_int_eq(f2->list.n, 3);
    render(f2->list.items[2]->a, buf, sizeof buf);
    ck_assert_str_eq(buf, "(basic(x, widths[stage], stride) as \"'layer'(stage + 1)'.'i\")");
    done(p);
}
END_TEST

/* The files in examples/ are the programs of the issue, and parse. */
START_TEST(test_example_files) {
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/lenet5.net", NETC_SOURCE_DIR);
    const char *text = read_file(path);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    ck_assert_str_eq(text, lenet5);
    snprintf(path, sizeof path, "%s/examples/resnet18.net", NETC_SOURCE_DIR);
    text = read_file(path);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    ck_assert_str_eq(text, resnet18);

    diag_reset();
    Source *s = source_read(path);
    ck_assert_ptr_nonnull(s);
    AstProgram *p = parse_program(s);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->net->name, "resnet18");
    ast_free(p);
    source_free(s);
}
END_TEST

/* ---- tokens --------------------------------------------------------------------- */

START_TEST(test_numbers) {
    ck_expr("[0, 42, 0.1, 1e-5, 2.5E+3, 1e3, 9223372036854775807]",
            "[0, 42, 0.1, 1e-05, 2500, 1000, 9223372036854775807]");
    AstProgram *p;
    const Ast *l = expr_of("[0.1, 1e-5, 7]", &p);
    ck_assert_int_eq(l->list.items[0]->kind, A_FLOAT);
    ck_assert_int_eq(l->list.items[1]->kind, A_FLOAT);
    ck_assert_int_eq(l->list.items[2]->kind, A_INT);
    ck_assert_str_eq(span_text(l->list.items[1]->span), "1e-5");
    done(p);
}
END_TEST

/* `0..4` is INT .. INT, not the float `0.` and `.4`. */
START_TEST(test_range_tokens) {
    AstProgram *p = parse_ok("net t { for i in 0..4 { } for j in 10..n+1 { } }");
    const Ast *f = p->net->list.items[0];
    ck_assert_int_eq(f->kind, A_FOR);
    ck_assert_int_eq(f->a->kind, A_INT);
    ck_assert_int_eq(f->a->ival, 0);
    ck_assert_int_eq(f->b->kind, A_INT);
    ck_assert_int_eq(f->b->ival, 4);
    ck_assert_str_eq(span_text(f->name_span), "i");
    const Ast *g = p->net->list.items[1];
    ck_assert_int_eq(g->a->ival, 10);
    ck_assert_int_eq(g->b->kind, A_BINARY);
    done(p);
}
END_TEST

START_TEST(test_keywords_and_comments) {
    AstProgram *p = parse_ok("# a comment\n"
                             "net t { // another\n"
                             "  x = true; y = false; # trailing\n"
                             "  netx = input_1; // keywords are whole words\n"
                             "}\n");
    ck_assert_int_eq(p->net->list.n, 3);
    ck_assert_int_eq(p->net->list.items[0]->a->kind, A_BOOL);
    ck_assert(p->net->list.items[0]->a->bval);
    ck_assert(!p->net->list.items[1]->a->bval);
    ck_assert_str_eq(p->net->list.items[2]->name, "netx");
    ck_assert_str_eq(p->net->list.items[2]->a->name, "input_1");
    done(p);
}
END_TEST

/* ---- expressions ---------------------------------------------------------------- */

START_TEST(test_precedence) {
    ck_expr("a + b * c", "(a + (b * c))");
    ck_expr("a * b + c", "((a * b) + c)");
    ck_expr("a - b - c", "((a - b) - c)");
    ck_expr("a / b % c", "((a / b) % c)");
    ck_expr("!a && b || c", "(((!a) && b) || c)");
    ck_expr("a || b && c", "(a || (b && c))");
    ck_expr("a == b < c", "(a == (b < c))");
    ck_expr("a + 1 <= b * 2 != c >= d", "(((a + 1) <= (b * 2)) != (c >= d))");
    ck_expr("-a * b", "((-a) * b)");
    ck_expr("-(a + b)[0]", "(-(a + b)[0])");
    ck_expr("(a + b) * c", "((a + b) * c)");
    ck_expr("a[i][j + 1]", "a[i][(j + 1)]");
    ck_expr("[]", "[]");
    ck_expr("f()", "f()");
}
END_TEST

START_TEST(test_pipe) {
    ck_expr("a + b |> f", "f((a + b))");
    ck_expr("a |> f(1, k = 2)", "f(a, 1, k=2)");
    ck_expr("a |> f |> g(2)", "g(f(a), 2)");
    ck_expr("a || b |> f", "f((a || b))");
    ck_expr("conv(x, 8, 3) |> relu as \"r\"", "(relu(conv(x, 8, 3)) as \"'r'\")");
    ck_expr("x |> maxpool(2) as \"p\" |> relu", "relu((maxpool(x, 2) as \"'p'\"))");
    ck_expr("x |> (f)", "f(x)");

    /* The call made by |> keeps the span of the right side, its name the name's. */
    AstProgram *p;
    const Ast *e = expr_of("conv(x, 8, 3) |> avgpool(2)", &p);
    ck_assert_int_eq(e->kind, A_CALL);
    ck_assert_str_eq(span_text(e->span), "avgpool(2)");
    ck_assert_str_eq(span_text(e->name_span), "avgpool");
    ck_assert_str_eq(span_text(e->list.items[0]->span), "conv(x, 8, 3)");
    done(p);
    e = expr_of("x |> relu", &p);
    ck_assert_int_eq(e->kind, A_CALL);
    ck_assert_str_eq(e->name, "relu");
    ck_assert_int_eq(e->list.n, 1);
    ck_assert_str_eq(span_text(e->span), "relu");
    done(p);
}
END_TEST

START_TEST(test_as) {
    ck_expr("conv(x, 8, 3) as \"c\"", "(conv(x, 8, 3) as \"'c'\")");
    /* `as` binds tighter than any operator */
    ck_expr("f(x) as \"a\" + g(y) as \"b\"", "((f(x) as \"'a'\") + (g(y) as \"'b'\"))");
    ck_expr("-f(x) as \"a\"", "(-(f(x) as \"'a'\"))");
    AstProgram *p;
    const Ast *e = expr_of("conv(x, 8, 3) as \"c{i}\"", &p);
    ck_assert_int_eq(e->kind, A_AS);
    ck_assert_int_eq(e->a->kind, A_CALL);
    ck_assert_int_eq(e->b->kind, A_STRING);
    ck_assert_str_eq(span_text(e->span), "conv(x, 8, 3) as \"c{i}\"");
    ck_assert_str_eq(span_text(e->b->span), "\"c{i}\"");
    done(p);
}
END_TEST

START_TEST(test_kwargs) {
    AstProgram *p;
    const Ast *e = expr_of("conv(image, 6, 5, pad = 2, bias = false)", &p);
    ck_assert_int_eq(e->kind, A_CALL);
    ck_assert_str_eq(e->name, "conv");
    ck_assert_str_eq(span_text(e->name_span), "conv");
    ck_assert_int_eq(e->list.n, 5);
    const Ast *kw = e->list.items[3];
    ck_assert_int_eq(kw->kind, A_KWARG);
    ck_assert_str_eq(kw->name, "pad");
    ck_assert_str_eq(span_text(kw->span), "pad = 2");
    ck_assert_str_eq(span_text(kw->name_span), "pad");
    ck_assert_int_eq(kw->a->ival, 2);
    ck_assert_int_eq(e->list.items[4]->a->kind, A_BOOL);
    done(p);

    const char *msg = parse_err("net t { x = f(a, k = 1, b); }");
    ck_assert_msg(strstr(msg, "t.net:1:25: error: positional argument after a keyword argument\n"), "%s", msg);
    msg = parse_err("net t { x = f(k = 1, k = 2); }");
    ck_assert_msg(strstr(msg, "t.net:1:22: error: keyword argument 'k' given twice\n"), "%s", msg);
}
END_TEST

START_TEST(test_strings) {
    AstProgram *p;
    const Ast *e = expr_of("\"layer{stage + 1}.{i}\"", &p);
    ck_assert_int_eq(e->kind, A_STRING);
    ck_assert_ptr_null(e->name);
    ck_assert_int_eq(e->list.n, 4);
    ck_assert_int_eq(e->list.items[0]->kind, A_STRING_LIT);
    ck_assert_str_eq(e->list.items[0]->name, "layer");
    ck_assert_str_eq(span_text(e->list.items[0]->span), "layer");
    ck_assert_int_eq(e->list.items[1]->kind, A_BINARY);
    ck_assert_str_eq(span_text(e->list.items[1]->span), "stage + 1");
    ck_assert_str_eq(span_text(e->list.items[1]->a->span), "stage");
    ck_assert_str_eq(e->list.items[2]->name, ".");
    ck_assert_str_eq(span_text(e->list.items[2]->span), ".");
    ck_assert_int_eq(e->list.items[3]->kind, A_NAME);
    ck_assert_str_eq(span_text(e->list.items[3]->span), "i");
    done(p);

    e = expr_of("\"a\\\"b\\\\c\\nd\\{e\\}\"", &p);
    ck_assert_int_eq(e->list.n, 1);
    ck_assert_str_eq(e->name, "a\"b\\c\nd{e}");
    ck_assert_str_eq(e->list.items[0]->name, "a\"b\\c\nd{e}");
    done(p);

    e = expr_of("\"\"", &p);
    ck_assert_int_eq(e->list.n, 1);
    ck_assert_str_eq(e->name, "");
    done(p);

    e = expr_of("\"{widths[i] * 2}\"", &p);
    ck_assert_int_eq(e->list.n, 1);
    ck_assert_int_eq(e->list.items[0]->kind, A_BINARY);
    done(p);
}
END_TEST

START_TEST(test_statements) {
    AstProgram *p = parse_ok("block b(x, n = 2) { return x; }\n"
                             "block c() { y = 1; return y; }\n"
                             "net t {\n"
                             "  input a: [3, 4, 4];\n"
                             "  input b2: dims;\n"
                             "  f(a);\n"
                             "  if a { x = 1; } else if b { x = 2; } else { x = 3; }\n"
                             "  output o = a;\n"
                             "}\n");
    ck_assert_int_eq(p->blocks.n, 2);
    ck_assert_str_eq(p->blocks.items[1]->name, "c");
    ck_assert_int_eq(p->blocks.items[1]->list2.n, 0);
    const AstList *l = &p->net->list;
    ck_assert_int_eq(l->n, 5);
    ck_assert_int_eq(l->items[1]->kind, A_INPUT);
    ck_assert_int_eq(l->items[1]->a->kind, A_NAME);
    ck_assert_int_eq(l->items[2]->kind, A_EXPR);
    const Ast *i = l->items[3];
    ck_assert_int_eq(i->kind, A_IF);
    ck_assert_int_eq(i->list.n, 1);
    ck_assert_int_eq(i->list2.n, 1);
    const Ast *elif = i->list2.items[0];
    ck_assert_int_eq(elif->kind, A_IF);
    ck_assert_str_eq(elif->a->name, "b");
    ck_assert_int_eq(elif->list2.n, 1);
    ck_assert_int_eq(elif->list2.items[0]->kind, A_ASSIGN);
    ck_assert_int_eq(l->items[4]->kind, A_OUTPUT);
    ck_assert_str_eq(span_text(l->items[4]->name_span), "o");
    done(p);

    /* a file without a net parses; the evaluator reports it */
    p = parse_ok("block b() { return 1; }\n");
    ck_assert_ptr_null(p->net);
    done(p);
}
END_TEST

/* ---- errors --------------------------------------------------------------------- */

START_TEST(test_syntax_error_caret) {
    const char *msg = parse_err("net m {\n"
                                "    input image: [1, 28, 28];\n"
                                "    x = conv(image ;\n"
                                "}\n");
    ck_assert_str_eq(msg, "t.net:3:20: error: expected ')' or ',' before ';'\n"
                          "    x = conv(image ;\n"
                          "                   ^\n");
}
END_TEST

START_TEST(test_token_names) {
    const char *msg = parse_err("net m { x = a |> ; }");
    ck_assert_msg(strstr(msg, "error: expected an expression before ';'\n"), "%s", msg);
    msg = parse_err("net m { for 3 in 0..1 { } }");
    ck_assert_msg(strstr(msg, "error: expected identifier before integer\n"), "%s", msg);
    msg = parse_err("net { }");
    ck_assert_msg(strstr(msg, "expected identifier before '{'\n"), "%s", msg);
    msg = parse_err("net m { x = 1 |> |> f; }");
    ck_assert_msg(strstr(msg, "expected an expression before '|>'"), "%s", msg);
    msg = parse_err("net m { x = if; }");
    ck_assert_msg(strstr(msg, "expected an expression before 'if'"), "%s", msg);
    msg = parse_err("net m { x = \"a\" \"b\"; }");
    ck_assert_msg(strstr(msg, "t.net:1:16: error: expected ';'\n"), "%s", msg);
    msg = parse_err("net m {\n  x = 1;\n");
    ck_assert_msg(strstr(msg, "t.net:2:9: error: expected '}' at end of file\n"), "%s", msg);
}
END_TEST

/* Tabs stay tabs in the caret line, and the span is underlined with '~'. */
START_TEST(test_caret_tabs) {
    const char *msg = parse_err("net m {\n\tx = 1;\n\t\ty = 12345678901234567890123;\n}\n");
    ck_assert_str_eq(msg, "t.net:3:7: error: integer literal is too large (the largest is 9223372036854775807)\n"
                          "\t\ty = 12345678901234567890123;\n"
                          "\t\t    ^~~~~~~~~~~~~~~~~~~~~~~\n");
}
END_TEST

/* Every string of want[0..n) occurs in msg, in that order. */
static void assert_in_order(const char *msg, const char *const *want, size_t n) {
    const char *at = msg;
    for (size_t i = 0; i < n; i++) {
        const char *hit = strstr(at, want[i]);
        ck_assert_msg(hit != NULL, "missing (in order) %s in:\n%s", want[i], msg);
        at = hit + 1;
    }
}

/* Several errors, each with its line and column, in one run. */
START_TEST(test_several_errors) {
    const char *msg = parse_err("net m {\n"                          /* 1 */
                                "    x = conv(image, ;\n"            /* 2 */
                                "    y = 1 $ 2;\n"                   /* 3 */
                                "    z = \"abc;\n"                   /* 4 */
                                "    w = a |> 3;\n"                  /* 5 */
                                "    v = relu as \"r\";\n"           /* 6 */
                                "    u = [1, 2] as \"l\";\n"         /* 7 */
                                "    t = \"a{1 +}b\";\n"             /* 8 */
                                "    s = \"a{}b\\q\";\n"             /* 9 */
                                "    ok = 1;\n"                      /* 10 */
                                "}\n"                                /* 11 */
                                "net second { }\n");                 /* 12 */
    const char *want[] = {
        "t.net:2:21: error: expected an expression before ';'\n",
        "t.net:3:11: error: unexpected character '$'\n",
        "t.net:4:9: error: unterminated string\n",
        "t.net:5:14: error: the right side of |> must be a call\n",
        "t.net:6:9: error: 'as' must follow a call\n",
        "t.net:7:9: error: 'as' must follow a call\n",
        "t.net:8:15: error: expected an expression before '}'\n",
        "t.net:9:11: error: empty {} in a string\n",
        "t.net:9:14: error: unknown escape sequence '\\q'",
        "t.net:12:1: error: more than one net in a file\n",
        "t.net:1:1: note: the first net is here\n",
    };
    assert_in_order(msg, want, sizeof want / sizeof *want);
    ck_assert_int_eq(diag_error_count(), 10);
    /* the unterminated string is underlined to the end of its line */
    ck_assert_msg(strstr(msg, "    z = \"abc;\n        ^~~~~\n"), "%s", msg);
}
END_TEST

START_TEST(test_recovery_in_blocks) {
    /* a missing ';' before '}' and errors in two different items */
    const char *msg = parse_err("block b(x) { y = x\n}\n"
                                "garbage\n"
                                "net m { input a: [1]; output o = a +; }\n");
    ck_assert_msg(strstr(msg, "t.net:1:19: error: expected ';'\nblock b(x) { y = x\n                  ^\n"), "%s", msg);
    ck_assert_msg(strstr(msg, "t.net:3:1: error: expected 'net' or 'block' before identifier"),
                  "%s", msg);
    ck_assert_msg(strstr(msg, "t.net:4:37: error: expected an expression before ';'"), "%s", msg);
    ck_assert_int_eq(diag_error_count(), 3);
}
END_TEST

/* A missing ';' is reported just after the statement's last token, and
 * parsing resumes at the statement that follows: its own errors are
 * reported, with the name and place of its first token. */
START_TEST(test_missing_semicolon) {
    const char *msg = parse_err("net m {\n"                    /* 1 */
                                "    x = relu(a)\n"            /* 2 */
                                "    y = b +;\n"               /* 3 */
                                "    z = 1 w = 2;\n"           /* 4 */
                                "    n = 3\n"                  /* 5 */
                                "    inti weight = kaiming;\n" /* 6 */
                                "    q = [1, 2]\n"             /* 7 */
                                "}\n");
    const char *want[] = {
        "t.net:2:16: error: expected ';'\n    x = relu(a)\n               ^\n",
        "t.net:3:12: error: expected an expression before ';'\n",
        "t.net:4:10: error: expected ';'\n    z = 1 w = 2;\n         ^\n",
        "t.net:5:10: error: expected ';'\n",
        "t.net:6:5: error: unexpected identifier after 'inti'",
        "t.net:7:15: error: expected ';'\n",
    };
    assert_in_order(msg, want, sizeof want / sizeof *want);
    ck_assert_int_eq(diag_error_count(), 6);
    /* not after a statement that cannot end there; a stray token on its line is pointed at */
    msg = parse_err("net m { x = (1 + 2; }");
    ck_assert_msg(strstr(msg, "t.net:1:19: error: expected ')' before ';'\n"), "%s", msg);
    msg = parse_err("net m { x = 1 ); }");
    ck_assert_str_eq(msg, "t.net:1:15: error: expected ';' before ')'\nnet m { x = 1 ); }\n              ^\n");
    /* the end of a block, and of the file */
    msg = parse_err("block b(x) { return x }\nnet m { }");
    ck_assert_msg(strstr(msg, "t.net:1:22: error: expected ';'\n"), "%s", msg);
    msg = parse_err("net m { x = 1");
    ck_assert_msg(strstr(msg, "t.net:1:14: error: expected ';'\n"), "%s", msg);
    ck_assert_int_eq(diag_error_count(), 1);
    msg = parse_err("net m { x = 1; } }");
    ck_assert_msg(strstr(msg, "t.net:1:18: error: unmatched '}'\n"), "%s", msg);
}
END_TEST

START_TEST(test_builder_errors) {
    const char *msg = parse_err("net m { x = a |> b + c; }");
    ck_assert_msg(strstr(msg, "t.net:1:18: error: the right side of |> must be a call\n"
                              "net m { x = a |> b + c; }\n"
                              "                 ^~~~~\n"),
                  "%s", msg);
    msg = parse_err("net m { x = a as \"n\" |> f; }");
    ck_assert_msg(strstr(msg, "t.net:1:13: error: 'as' must follow a call\n"), "%s", msg);
    msg = parse_err("net m { x = (1 + 2)(3); }");
    ck_assert_msg(strstr(msg, "error: only an op or a block can be called, by its name\n"), "%s", msg);
    msg = parse_err("block b(x = 1, y) { return y; }\nnet m { }");
    ck_assert_msg(strstr(msg, "t.net:1:16: error: parameter 'y' without a default after one with a default\n"), "%s",
                  msg);
    msg = parse_err("block b(x, x) { return x; }\nnet m { }");
    ck_assert_msg(strstr(msg, "t.net:1:12: error: duplicate parameter 'x'\n"), "%s", msg);
    msg = parse_err("net m { x = \"{a\"; }");
    ck_assert_msg(strstr(msg, "t.net:1:14: error: unterminated '{' in a string"), "%s", msg);
    msg = parse_err("net m { x = \"a}\"; }");
    ck_assert_msg(strstr(msg, "t.net:1:15: error: unmatched '}' in a string"), "%s", msg);
    msg = parse_err("net m { x = \"{a $ b}\"; }");
    ck_assert_msg(strstr(msg, "t.net:1:17: error: unexpected character '$'\n"), "%s", msg);
    msg = parse_err("net m { x = 1e999; }");
    ck_assert_msg(strstr(msg, "t.net:1:13: error: floating-point literal is too large\n"), "%s", msg);
    msg = parse_err("net m { x = 2.; }");
    ck_assert_msg(strstr(msg, "t.net:1:14: error: unexpected character '.'\n"), "%s", msg);
    msg = parse_err("net m { x = 1; }\xc3\xa9");
    ck_assert_msg(strstr(msg, "t.net:1:17: error: unexpected character '\xc3\xa9'\n"), "%s", msg);
}
END_TEST

/* ---- sources and diagnostics ---------------------------------------------------- */

START_TEST(test_source) {
    Source *s = source_from_string("s.net", "ab\ncd\n\nx");
    int line, col;
    source_line_col(s, 0, &line, &col);
    ck_assert_int_eq(line, 1);
    ck_assert_int_eq(col, 1);
    source_line_col(s, 4, &line, &col);
    ck_assert_int_eq(line, 2);
    ck_assert_int_eq(col, 2);
    source_line_col(s, 7, &line, &col);
    ck_assert_int_eq(line, 4);
    ck_assert_int_eq(col, 1);

    diag_reset();
    diag_set_source(s);
    ck_assert_ptr_eq(diag_source(), s);
    capture_begin();
    diag_warning((Span){3, 5}, "w %d", 1);
    diag_note((Span){7, 7}, "n");
    diag_plain_error("plain %s", "x");
    const char *msg = capture_end();
    ck_assert_str_eq(msg, "s.net:2:1: warning: w 1\ncd\n^~\n"
                          "s.net:4:1: note: n\nx\n^\n"
                          "netc: error: plain x\n");
    ck_assert_int_eq(diag_error_count(), 1);
    diag_set_source(NULL);
    source_free(s);

    capture_begin();
    Source *r = source_read("/nonexistent/x.net");
    msg = capture_end();
    ck_assert_ptr_null(r);
    ck_assert_str_eq(msg, "netc: error: cannot read '/nonexistent/x.net': No such file or directory\n");
    ck_assert_int_eq(diag_error_count(), 2);
}
END_TEST

START_TEST(test_names) {
    ck_assert_str_eq(ast_op_text(OP_ADD_), "+");
    ck_assert_str_eq(ast_op_text(OP_GE_), ">=");
    ck_assert_str_eq(ast_op_text(OP_AND_), "&&");
    ck_assert_str_eq(ast_op_text(OP_NOT_), "!");
    ck_assert_str_eq(ast_kind_name(A_CALL), "call");
    ck_assert_str_eq(ast_kind_name(A_NET), "net");
}
END_TEST

int main(void) {
    Suite *s = suite_create("parser");
    TCase *tc = tcase_create("parser");
    tcase_add_test(tc, test_lenet5);
    tcase_add_test(tc, test_resnet18);
    tcase_add_test(tc, test_example_files);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_range_tokens);
    tcase_add_test(tc, test_keywords_and_comments);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_pipe);
    tcase_add_test(tc, test_as);
    tcase_add_test(tc, test_kwargs);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_statements);
    tcase_add_test(tc, test_syntax_error_caret);
    tcase_add_test(tc, test_token_names);
    tcase_add_test(tc, test_caret_tabs);
    tcase_add_test(tc, test_several_errors);
    tcase_add_test(tc, test_recovery_in_blocks);
    tcase_add_test(tc, test_missing_semicolon);
    tcase_add_test(tc, test_builder_errors);
    tcase_add_test(tc, test_source);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
