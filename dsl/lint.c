/* The warnings: a tensor assigned or an expression's value that nothing
 * reads, an input nothing reads, a block nothing calls.  The evaluator
 * records what each statement made (note_use) and the inputs it declared;
 * eval_program calls warn_unused_blocks and warn_unused after a successful
 * evaluation. */
#include "eval_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- during evaluation -------------------------------------------------------- */

/* Records what statement s made, for warn_unused (once per statement and value). */
void note_use(Eval *e, const Ast *s, Value *v) {
    if (e->uses && e->uses->stmt == s && e->uses->v == v) return;
    Use *u = arena_alloc(e->arena, sizeof *u);
    *u = (Use){s, v, e->uses};
    e->uses = u;
    e->nuses++;
}

/* Whether this is the first warning at sp (a loop or a block called twice
 * would repeat it). */
bool first_warning(Eval *e, Span sp) {
    for (Warned *w = e->warned; w; w = w->next)
        if (w->span.begin == sp.begin && w->span.end == sp.end) return false;
    Warned *w = arena_alloc(e->arena, sizeof *w);
    *w = (Warned){sp, e->warned};
    e->warned = w;
    return true;
}

/* `conv(x, 8, 3) |> batchnorm as "bn1"` names the batchnorm only: the conv
 * is named automatically, which surprises whoever meant both to have
 * PyTorch's names.  A call that made no parameter (relu, maxpool, a block of
 * them) is not warned about: its name is in no weights file. */
EVal eval_pipe_stage(Eval *e, const Ast *call) {
    Span saved = e->watched_call;
    const char *saved_path = e->watched_path;
    e->watched_call = call->span;
    e->watched_path = NULL;
    int first = e->g->nvalues;
    EVal v = eval_call(e, call, NULL);
    const char *path = e->watched_path;
    e->watched_call = saved;
    e->watched_path = saved_path;
    if (!path) return v;
    size_t n = strlen(path);
    bool params = false; /* did the call's instance make any: <path>.<name> */
    for (int i = first; i < e->g->nvalues && !params; i++) {
        const Value *p = e->g->values[i];
        params = p->kind == V_PARAM && strncmp(p->name, path, n) == 0 && p->name[n] == '.';
    }
    const Ast *as = call->pipe_as;
    /* keyed from the call to the name: the call's own span may carry a builder's warning */
    if (!params || !first_warning(e, (Span){call->span.begin, as->b->span.end})) return v;
    diag_warning(call->span, "'%s' is named '%s' automatically: the 'as' at the end of the pipe names only '%s'",
                 call->name, path, as->a->name);
    diag_note(as->b->span, "give '%s' its own name with '%s(...) as \"NAME\"' (docs/language.md, Pipes)", call->name,
              call->name);
    eval_instance_notes(e);
    return v;
}

/* ---- after it ---------------------------------------------------------------- */

static int cmp_use(const void *x, const void *y) {
    const Use *a = *(const Use *const *)x, *b = *(const Use *const *)y;
    if (a->stmt->span.begin != b->stmt->span.begin) return a->stmt->span.begin < b->stmt->span.begin ? -1 : 1;
    return a->stmt < b->stmt ? -1 : a->stmt > b->stmt;
}

/* The name of what an expression statement calls, for "the result of X". */
static const char *called(const Ast *x) {
    if (x->kind == A_AS) x = x->a;
    return x->kind == A_CALL ? x->name : NULL;
}

/* An assignment whose tensor nothing reads (in no execution of it: a loop
 * may overwrite all but the last), an expression statement whose value is
 * dropped, an input nothing reads.  The outputs count as readers. */
void warn_unused(Eval *e) {
    Graph *g = e->g;
    bool *used = calloc((size_t)g->nvalues + 1, 1);
    if (!used) return;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++) used[g->nodes[i]->in[j]->id] = true;
    for (int i = 0; i < g->noutputs; i++) used[g->outputs[i].v->id] = true;

    InputDecl *rev = NULL; /* in source order */
    for (InputDecl *d = e->input_decls, *next; d; d = next) {
        next = d->next;
        d->next = rev;
        rev = d;
    }
    for (InputDecl *d = rev; d; d = d->next)
        if (!used[d->v->id]) diag_warning(d->name, "input '%s' is never used", d->v->name);

    Use **all = malloc(sizeof *all * (size_t)(e->nuses + 1));
    if (!all) {
        free(used);
        return;
    }
    long n = 0;
    for (Use *u = e->uses; u; u = u->next) all[n++] = u;
    qsort(all, (size_t)n, sizeof *all, cmp_use);
    for (long i = 0; i < n;) {
        const Ast *st = all[i]->stmt;
        bool any = false;
        for (; i < n && all[i]->stmt == st; i++)
            if (all[i]->v && used[all[i]->v->id]) any = true;
        if (any) continue;
        const char *callee = called(st->a);
        if (st->kind == A_ASSIGN)
            diag_warning(st->name_span, "the tensor assigned to '%s' is never used", st->name);
        else if (callee)
            diag_warning(st->a->span, "the result of %s is never used", callee);
        else
            diag_warning(st->a->span, "the value of this expression is never used");
    }
    free(all);
    free(used);
}

/* Marks the blocks that the tree root calls, except self (a block calling
 * itself does not make it used).  An explicit stack, not recursion: code
 * that never runs (an unused block) may nest arbitrarily deep. */
static void mark_called(Eval *e, const Ast *root, const Ast *self, bool *called_blocks) {
    size_t n = 0, cap = 64;
    const Ast **stack = malloc(cap * sizeof *stack);
    if (!stack) return;
    stack[n++] = root;
    while (n > 0) {
        const Ast *t = stack[--n];
        if (!t) continue;
        if (t->kind == A_CALL && t->name) {
            for (int i = 0; i < e->prog->blocks.n; i++)
                if (e->prog->blocks.items[i] != self && strcmp(e->prog->blocks.items[i]->name, t->name) == 0)
                    called_blocks[i] = true;
        }
        size_t need = n + 2 + (size_t)t->list.n + (size_t)t->list2.n;
        if (need > cap) {
            while (need > cap) cap *= 2;
            const Ast **bigger = realloc(stack, cap * sizeof *stack);
            if (!bigger) break;
            stack = bigger;
        }
        stack[n++] = t->a;
        stack[n++] = t->b;
        for (int i = 0; i < t->list.n; i++) stack[n++] = t->list.items[i];
        for (int i = 0; i < t->list2.n; i++) stack[n++] = t->list2.items[i];
    }
    free(stack);
}

/* A block that neither the net nor another block calls (as clang's unused
 * function: a block called only from an unused block is not reported). */
void warn_unused_blocks(Eval *e) {
    int nb = e->prog->blocks.n;
    bool *called_blocks = calloc((size_t)nb + 1, 1);
    if (!called_blocks) return;
    mark_called(e, e->prog->net, NULL, called_blocks);
    for (int i = 0; i < nb; i++) mark_called(e, e->prog->blocks.items[i], e->prog->blocks.items[i], called_blocks);
    for (int i = 0; i < nb; i++)
        if (!called_blocks[i])
            diag_warning(e->prog->blocks.items[i]->name_span, "block '%s' is never used", e->prog->blocks.items[i]->name);
    free(called_blocks);
}
