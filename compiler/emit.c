/* The C emitter's framework: storage, the run and prepare functions, the
 * netrt_model descriptor, the public API and the header.  The code of each
 * op is its emit rule, in its registry entry (compiler/ops/, written with
 * the helpers of kernel.h).
 *
 * Layout of the emitted C file:
 *   the generated-by comment and includes;
 *   the buffer layout: one arena per instance holding every input,
 *     activation (gradients included) and derived value in 64-byte aligned
 *     regions that the memory plan (plan.c) shares between values whose
 *     live ranges do not overlap (EmitOptions.no_plan: a region per value),
 *     listed in a comment table with each value's offset and live range;
 *   training graphs: the state block (the optimizer's moments, zeroed by
 *     setup and <prefix>_reset_state), the active batch nb_active (at most
 *     NMAX, the compiled batch) and the hyperparameters hp (netrt_hparams):
 *     file-scope, so a training graph has one instance, the program's;
 *   the parameters: a table of their offsets in a param block, and with
 *     embedded weights that block, one shared static const array;
 *   struct <prefix>, an instance: its arena, its param block (its own, or
 *     the embedded one), its check_numerics flag (--check-numerics: each
 *     node's call below is followed by a netrt_check_finite of what it
 *     wrote, behind the flag) and its tensor tables; and `program`, the
 *     instance the descriptor drives;
 *   one static function per live node, and for a node whose work items go
 *     through netrt_parallel a part function whose context is the instance;
 *   the functions of an instance `self`, each starting with the locals
 *     arena and param_block that the buffers' C expressions (ref) name:
 *     <prefix>_prepare (the F_INIT nodes), <prefix>_forward (the others; in
 *     a training graph the PHASE_RUN nodes: the eval-mode forward), and for
 *     training <prefix>_grad (PHASE_GRAD: training forward, loss, backward;
 *     it calls <prefix>_prepare first, to pack the updated weights),
 *     <prefix>_update (PHASE_UPDATE: the optimizer's step), <prefix>_set_batch and
 *     <prefix>_reset_state, on the program's instance;
 *   the tensor tables' templates, the parameters' offsets, and for
 *     training the gradient, moment, initialization and input-gradient
 *     tables; <prefix>_setup, _teardown and _load_st (an instance's
 *     buffers, and loading parsed safetensors into it); the program's
 *     instance's functions and <prefix>_model, and for training the
 *     netrt_train_model <prefix>_train;
 *   the public API (inference graphs; the header documents it):
 *     <prefix>_create, _load_file, _load_memory, _run and _free; then the
 *     single-instance <prefix>_load and <prefix>_infer, and main() if asked
 *     for, declared NETRT_BASELINE_ISA (netrt.h) since it runs before the
 *     CPU check.
 * The descriptor's .cpu names the feature the target needs (g->target,
 * target.h; NULL for generic), which the runtime checks at start.
 *
 * A training graph (its record, train.h, built by autodiff) has a labels
 * input that is not one of the model's inputs: the trainer fills it through
 * <prefix>_train.labels.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "init.h"
#include "kernel.h"
#include "plan.h"
#include "taps.h"
#include "train.h"

/* Whether the op's emit rule can emit n; reports an internal error at the
 * node otherwise.  Called on every node before anything is written. */
static bool emit_node_check(const Graph *g, const Node *n) {
    const char *why = NULL;
    if ((unsigned)n->op >= OP_COUNT || n->op == OP_NONE) {
        DIAG_INTERNAL("cannot emit op number %d", (int)n->op);
        return false;
    }
    const OpRules *r = op_rules(n->op);
    if (n->nin < op_info[n->op].min_inputs || n->nin > op_info[n->op].max_inputs || n->nout != op_info[n->op].outputs) {
        why = "wrong number of operands";
    } else {
        for (int i = 0; i < n->nin; i++)
            if (!n->in[i] || shape_numel(&n->in[i]->shape) > (int64_t)1 << 40) why = "tensor too large";
        for (int i = 0; i < n->nout; i++)
            if (!n->out[i] || shape_numel(&n->out[i]->shape) > (int64_t)1 << 40) why = "tensor too large";
    }
    if (!why && r->check) why = r->check(g, n);
    if (why) {
        DIAG_INTERNAL("cannot emit %s \"%s\": %s", op_name(n->op), n->name ? n->name : "", why);
        return false;
    }
    return true;
}

/* batched[v->id] for every value: inputs are [N, ...] (the labels [N]);
 * parameters, derived values and training state are not; node outputs by
 * their op's batch rule, in node order. */
static void emit_batched(const Graph *g, bool *batched) {
    for (int i = 0; i < g->nvalues; i++) batched[g->values[i]->id] = g->values[i]->kind == V_INPUT;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->nout; j++)
            batched[n->out[j]->id] = n->nin > 0 && op_rules(n->op)->batched(n, j, batched);
    }
}

/* The node's C function, by its op's emit rule (`inplace` as Kernel.inplace);
 * returns the C expression of its work items if the rule split its work
 * into items (kopen_parallel), else NULL. */
static const char *emit_node_function(FILE *f, Graph *g, const Node *n, const char *fname, const bool *batched,
                                      unsigned inplace, bool f64, bool mpi) {
    Kernel k = {f, n, fname, g->target, batched, false, inplace, "", f64, mpi};
    /* A node loops over the batch when it reads or writes a batched value first. */
    k.dyn = batched && ((n->nin > 0 && batched[n->in[0]->id]) || (n->nout > 0 && batched[n->out[0]->id]));
    op_rules(n->op)->emit(&k);
    return k.items[0] ? arena_strdup(g->arena, k.items) : NULL;
}

/* ---- identifiers -------------------------------------------------------------- */

static const char *const c_reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Alignas",
    "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn", "_Static_assert",
    "_Thread_local", "main", "memcpy", "arena", "param_block", "NULL", "bool", "true", "false", "errno", "stdin",
    "stdout", "stderr", "fprintf", "argc", "argv", "state_block", "nb_active", "NMAX", "hp", "check_numerics", "train_seed", "train_step", "train_no_dropout", "lr_group",
    /* the instances (struct <prefix>): their fields, the program's instance and its functions */
    "self", "ctx", "own_params", "loaded", "embedded_params", "program",
    /* the double build's copy loop in run (put_copy) */
    "netc_i",
};

/* The identifiers the emitted file has taken: a hash set (open addressing,
 * linear probing, at most half full) because a big graph names thousands of
 * functions and buffers, many from one base ("conv", "conv_2", ...), and a
 * list searched from the start made naming cubic in the node count. */
typedef struct Names {
    Arena *arena;
    const char **slot; /* cap slots, NULL where free; cap a power of two */
    int n, cap;
} Names;

static bool reserved(const char *id) {
    for (size_t i = 0; i < sizeof c_reserved / sizeof *c_reserved; i++)
        if (strcmp(c_reserved[i], id) == 0) return true;
    return false;
}

static uint32_t names_hash(const char *id) { /* FNV-1a */
    uint32_t h = 2166136261u;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h;
}

static bool names_has(const Names *s, const char *id) {
    if (s->cap)
        for (uint32_t i = names_hash(id) & (uint32_t)(s->cap - 1); s->slot[i]; i = (i + 1) & (uint32_t)(s->cap - 1))
            if (strcmp(s->slot[i], id) == 0) return true;
    return reserved(id);
}

static void names_put(const char **slot, int cap, const char *id) {
    uint32_t i = names_hash(id) & (uint32_t)(cap - 1);
    while (slot[i]) i = (i + 1) & (uint32_t)(cap - 1);
    slot[i] = id;
}

/* Adds id (not yet in s), doubling the table when it would be half full. */
static void names_add(Names *s, const char *id) {
    if (2 * (s->n + 1) > s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        const char **slot = arena_alloc(s->arena, sizeof *slot * (size_t)cap);
        memset(slot, 0, sizeof *slot * (size_t)cap);
        for (int i = 0; i < s->cap; i++)
            if (s->slot[i]) names_put(slot, cap, s->slot[i]);
        s->slot = slot;
        s->cap = cap;
    }
    names_put(s->slot, s->cap, id);
    s->n++;
}

/* A copy of s that can grow apart from it. */
static Names names_copy(const Names *s) {
    Names c = *s;
    if (s->cap) {
        c.slot = arena_alloc(s->arena, sizeof *c.slot * (size_t)s->cap);
        memcpy(c.slot, s->slot, sizeof *c.slot * (size_t)s->cap);
    }
    return c;
}

/* `prefix` followed by `name` with every non-identifier character as '_'. */
static char *sanitize(Arena *a, const char *prefix, const char *name) {
    if (!name) name = "";
    size_t lp = strlen(prefix), ln = strlen(name);
    char *s = arena_alloc(a, lp + ln + 2);
    memcpy(s, prefix, lp);
    size_t j = lp;
    if (lp == 0 && (ln == 0 || isdigit((unsigned char)name[0]))) s[j++] = '_';
    for (size_t i = 0; i < ln; i++) {
        unsigned char ch = (unsigned char)name[i];
        s[j++] = (isalnum(ch) || ch == '_') && ch < 128 ? (char)ch : '_';
    }
    s[j] = 0;
    return s;
}

/* A unique identifier from `base`: a C keyword or a name the emitted code
 * uses gets a '_' appended, then _2, _3, ... on collision. */
static const char *unique(Names *s, const char *base) {
    if (reserved(base)) base = arena_printf(s->arena, "%s_", base);
    const char *id = base;
    for (int k = 2; names_has(s, id); k++) id = arena_printf(s->arena, "%s_%d", base, k);
    names_add(s, id);
    return id;
}

const char *emit_prefix(Graph *g) {
    const char *name = g->name && g->name[0] ? g->name : "net";
    char *p = sanitize(g->arena, "", name);
    if (strncmp(p, "netrt", 5) == 0) p = arena_printf(g->arena, "net_%s", p); /* the runtime's namespace */
    return p;
}

/* ---- text helpers ----------------------------------------------------------------- */

/* Text safe inside a C block comment: no comment delimiters, no trigraphs,
 * no control characters. */
static void put_comment_text(FILE *f, const char *s) {
    if (!s) return;
    char prev = 0;
    for (; *s; s++) {
        char ch = *s;
        if ((unsigned char)ch < 32 || ch == 127) ch = ' ';
        if ((prev == '*' && ch == '/') || (prev == '/' && ch == '*') || (prev == '?' && ch == '?')) fputc(' ', f);
        fputc(ch, f);
        prev = ch;
    }
}

/* A C string literal. */
static void put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\' || ch == '?')
            fprintf(f, "\\%c", ch);
        else if (ch < 32 || ch == 127)
            fprintf(f, "\\%03o", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* An exact float literal: "%.9g" with a decimal point or exponent, then f. */
static void put_float(FILE *f, float v) {
    if (isnan(v)) {
        fputs(signbit(v) ? "-NAN" : "NAN", f);
        return;
    }
    if (isinf(v)) {
        fputs(v < 0 ? "-INFINITY" : "INFINITY", f);
        return;
    }
    char buf[48];
    snprintf(buf, sizeof buf, "%.9g", (double)v);
    if (!strpbrk(buf, ".e")) strcat(buf, ".");
    fprintf(f, "%sf", buf);
}

static void put_dims(FILE *f, const Shape *s) {
    fputc('{', f);
    for (int i = 0; i < s->rank; i++) fprintf(f, "%s%" PRId64, i ? ", " : "", s->d[i]);
    if (s->rank == 0) fputc('0', f);
    fputc('}', f);
}

static const char *kind_name(ValueKind k) {
    switch (k) {
    case V_INPUT: return "input";
    case V_PARAM: return "param";
    case V_DERIVED: return "derived";
    case V_ACT: return "act";
    case V_STATE: return "state";
    }
    return "?";
}

static int64_t align_up(int64_t n) { return (n + PLAN_ALIGN_FLOATS - 1) / PLAN_ALIGN_FLOATS * PLAN_ALIGN_FLOATS; }

/* ---- embedded weights --------------------------------------------------------------- */

/* Every parameter present in the embedded file with its shape and a float
 * dtype; reports each one that is not. */
static bool check_embed(Graph *g, const EmitOptions *o) {
    bool ok = true;
    const char *path = o->embed_path ? o->embed_path : "weights";
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_PARAM) continue;
        char want[128], got[128];
        shape_str(&v->shape, want, sizeof want);
        const netrt_st_entry *t = netrt_st_find(o->embed, v->name);
        if (!t) {
            diag_plain_error("%s: missing tensor '%s' (expected shape %s)", path, v->name, want);
            ok = false;
            continue;
        }
        bool same = t->rank == v->shape.rank;
        for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == v->shape.d[d];
        if (!same) {
            netrt_shape_str(t->rank, t->shape, got, sizeof got);
            diag_plain_error("%s: tensor '%s' has shape %s, expected %s", path, v->name, got, want);
            ok = false;
        } else if (!netrt_dtype_is_float(t->dtype)) {
            diag_plain_error("%s: tensor '%s' has dtype %s, expected F32", path, v->name,
                             netrt_dtype_name(t->dtype));
            ok = false;
        } else if (t->nbytes != (size_t)shape_numel(&v->shape) * netrt_dtype_size(t->dtype)) {
            diag_plain_error("%s: tensor '%s' has %zu bytes of data, expected %zu", path, v->name, t->nbytes,
                             (size_t)shape_numel(&v->shape) * netrt_dtype_size(t->dtype));
            ok = false;
        }
    }
    return ok;
}

/* ---- the emitter ------------------------------------------------------------------- */


typedef struct Emitter {
    Graph *g;
    const Training *t;   /* the training record; NULL for an inference graph */
    const EmitOptions *o;
    FILE *c, *h;
    const char *prefix, *upper;
    Names names;
    const MemPlan *plan; /* where inputs, activations and derived values live in the arena */
    int maxid;
    int64_t *off;        /* by value id: offset in the arena or param block, -1 if none */
    int64_t arena_floats, param_floats, state_floats;
    int nparams;
    const char **fname;  /* by node index: the node's function */
    const char **items;  /* by node index: its kernel's work items (kopen_parallel), or NULL */
    const char **part;   /* by node index, where items: the function netrt_parallel calls */
    bool *batched;       /* by value id; training graphs only (else NULL) */
    bool *per_sample;    /* by value id: [N, ...] (inference) or [nb_active, ...] (training) */
    Value **in;          /* the model's inputs: g->inputs without the labels */
    int nin;
    int *tap;            /* by node index: its tap number (taps.h), -1 if none; training graphs */
    int ntaps;
    bool failed;         /* writing a function's text into memory failed (Capture) */
} Emitter;

/* The C expression for v's buffer. */
static const char *ref(Emitter *m, const Value *v) {
    if (v->kind == V_PARAM) return arena_printf(m->g->arena, "param_block + %" PRId64, m->off[v->id]);
    if (v->kind == V_STATE) return arena_printf(m->g->arena, "state_block + %" PRId64, m->off[v->id]);
    return arena_printf(m->g->arena, "arena + %" PRId64, m->off[v->id]);
}

/* The C expression for an optional value's buffer: NULL if it has none. */
static const char *ref_or_null(Emitter *m, const Value *v) { return v && m->off[v->id] >= 0 ? ref(m, v) : "NULL"; }

/* Offsets: parameters in the param block and training state in the state
 * block, each in value order; inputs, activations and derived values in the
 * arena where the memory plan (plan.c) puts them. */
static void layout(Emitter *m) {
    Graph *g = m->g;
    const MemPlan *p = m->plan;
    m->maxid = p->nid > 0 ? p->nid - 1 : 0;
    int nid = p->nid;
    m->off = arena_alloc(g->arena, sizeof *m->off * (size_t)(nid ? nid : 1));
    for (int i = 0; i < nid; i++) m->off[i] = p->off[i];

    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        int64_t size = align_up(value_numel(v));
        if (v->kind == V_PARAM) {
            m->off[v->id] = m->param_floats;
            m->param_floats += size;
            m->nparams++;
        } else if (v->kind == V_STATE && p->used[v->id]) {
            m->off[v->id] = m->state_floats;
            m->state_floats += size;
        }
    }
    m->arena_floats = p->arena_floats;
    m->fname = arena_alloc(g->arena, sizeof *m->fname * (size_t)(g->nnodes ? g->nnodes : 1));
    m->items = arena_alloc(g->arena, sizeof *m->items * (size_t)(g->nnodes ? g->nnodes : 1));
    m->part = arena_alloc(g->arena, sizeof *m->part * (size_t)(g->nnodes ? g->nnodes : 1));
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        m->fname[i] = unique(&m->names, arena_printf(g->arena, "n%d_%s%s", n->id, op_name(n->op),
                                                    sanitize(g->arena, "_", n->name)));
    }
}

static void put_shapes(FILE *f, Value *const *vs, int n) {
    for (int i = 0; i < n; i++) {
        char buf[128];
        fprintf(f, "%s%s", i ? ", " : "", shape_str(&vs[i]->shape, buf, sizeof buf));
    }
}

static void emit_header_comment(Emitter *m, FILE *f) {
    fputs("/* Generated by netc from ", f);
    put_comment_text(f, m->g->src ? m->g->src->path : "<unknown>");
    fputs(": do not edit. */\n", f);
    const Target *t = m->g->target;
    if (t && t->cpu)
        fprintf(f, "/* Target %s: compile with -march=%s%s%s; runs only on CPUs that have it. */\n", t->name, t->march,
                t->cflag ? " " : "", t->cflag ? t->cflag : "");
}

/* One row of a buffer table; `live` is the value's live range in the arena
 * table (NULL in the state table). */
static void put_layout_row(Emitter *m, const Value *v, const char *live) {
    char buf[128];
    fprintf(m->c, " * %12" PRId64 "  %10" PRId64 "  ", m->off[v->id], value_numel(v));
    if (live) fprintf(m->c, "%-13s  ", live);
    fprintf(m->c, "%-7s  %-20s  ", kind_name(v->kind), shape_str(&v->shape, buf, sizeof buf));
    put_comment_text(m->c, v->name);
    fprintf(m->c, " (v%d)", v->id);
    if (live && m->plan->view_of[v->id] >= 0) fprintf(m->c, ", a view of v%d", m->plan->view_of[v->id]);
    if (live && m->plan->inplace_of[v->id] >= 0) fprintf(m->c, ", written over v%d", m->plan->inplace_of[v->id]);
    fputc('\n', m->c);
}

/* An arena row, in the order of the table: by offset, then by live range. */
typedef struct Row {
    int64_t off;
    int first;
    const Value *v;
} Row;

static int row_order(const void *a, const void *b) {
    const Row *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->v->id < y->v->id ? -1 : x->v->id > y->v->id;
}

static void emit_layout_comment(Emitter *m) {
    Graph *g = m->g;
    FILE *c = m->c;
    const MemPlan *p = m->plan;
    fprintf(c, "/* Buffers: one arena of %" PRId64 " floats holds every input, activation and\n", m->arena_floats);
    if (p->shared)
        fprintf(c,
                " * derived value, in 64-byte aligned regions placed by the memory plan\n"
                " * (compiler/plan.c).  Values marked kept (inputs, outputs, what the runtime\n"
                " * reads, what one function leaves for another) have their own region, in\n"
                " * the first %" PRId64 " floats; the others live from the node that writes them to\n"
                " * the last node that reads them (nID is the node in the function names), and\n"
                " * share regions when those ranges do not overlap.  A view (flatten, reshape,\n"
                " * dropout) is its input's region and runs no code; an elementwise op may\n"
                " * write its output over an input no later node reads (in place); such\n"
                " * values share a kept value's region where one of them is kept.  A region\n"
                " * per value would take %" PRId64 " floats.\n",
                p->kept_floats, p->unplanned_floats);
    else
        fputs(" * derived value, each in its own 64-byte aligned region (no memory plan:\n"
              " * --no-plan).\n",
              c);
    fputs(" *       offset      floats  live           kind     shape                 value\n", c);
    Row *rows = arena_alloc(g->arena, sizeof *rows * (size_t)(g->nvalues ? g->nvalues : 1));
    int nrows = 0;
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind == V_PARAM || v->kind == V_STATE || m->off[v->id] < 0) continue;
        rows[nrows++] = (Row){m->off[v->id], p->first[v->id], v};
    }
    qsort(rows, (size_t)nrows, sizeof *rows, row_order);
    for (int i = 0; i < nrows; i++) {
        const Value *v = rows[i].v;
        const char *live = "kept";
        if (!p->kept[v->id] && p->first[v->id] >= 0)
            live = arena_printf(g->arena, "n%d..n%d", p->step[p->first[v->id]]->id, p->step[p->last[v->id]]->id);
        put_layout_row(m, v, live);
    }
    fputs(" */\n\n", c);
    if (!m->t) return;
    char ls[64];

    fprintf(c,
            "/* Training state: one block of %" PRId64 " floats, zero at start and after\n"
            " * %s_reset_state:\n"
            " *       offset      floats  kind     shape                 value\n",
            m->state_floats, m->prefix);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind == V_STATE && m->off[v->id] >= 0) put_layout_row(m, v, NULL);
    }
    fprintf(c,
            " */\nstatic netc_real *state_block;\n\n"
            "/* Every kernel runs on the active batch: nb_active samples, at most the\n"
            " * compiled batch NMAX (set by %s_set_batch). */\n"
            "enum { NMAX = %d };\nstatic int nb_active = NMAX;\n\n"
            "/* The optimizer's hyperparameters, read by %s_update, and the loss's\n"
            " * label smoothing (set through %s_train.hp; netrt.h). */\n"
            "static netrt_hparams hp = {.lr = 0.01f, .grad_scale = 1.0f, .beta1 = 0.9f, .beta2 = 0.999f,\n"
            "                          .eps = 1e-8f, .bias1 = 1.0f, .bias2_sqrt = 1.0f, .first_step = true,\n"
            "                          .label_smoothing = %s};\n\n"
            "/* Dropout's masks: those of step train_step (%s_grad counts its calls)\n"
            " * under train_seed (the trainer's --seed; netrt_dropout_key). */\n"
            "static uint64_t train_seed = 1, train_step;\n"
            "static bool train_no_dropout; /* --no-dropout: dropout is the identity in training too */\n\n",
            m->prefix, g->batch, m->prefix, m->prefix, float_literal(ls, sizeof ls, m->t->lossa.label_smoothing),
            m->prefix);
    bool updates = false; /* transfer learning: whether update() has optimizer steps */
    for (int i = 0; i < g->nnodes; i++) updates |= !g->nodes[i]->dead && g->nodes[i]->op == OP_OPTIM_UPDATE;
    if (updates)
        fprintf(c, "/* The rate of the parameter %s_update is at, as a multiple of hp.lr: its\n"
                   " * group's (the trainer's --lr-for; %s_train.lr_mult). */\n"
                   "static float lr_group = 1.0f;\nstatic float %s_lr_mult[%d]; /* per parameter, with the training tables */\n\n",
                m->prefix, m->prefix, m->prefix, m->nparams);
}

/* The parameters: a table of their offsets in the param block, and with
 * embedded weights that block, one shared read-only array. */
static void emit_params(Emitter *m) {
    Graph *g = m->g;
    FILE *c = m->c;
    if (m->nparams == 0) return;
    if (!m->o->embed)
        fprintf(c,
                "/* Parameters: one block of %" PRId64 " floats per instance (param_block),\n"
                " * allocated and filled when it loads weights:\n",
                m->param_floats);
    else {
        fprintf(c, "/* Parameters: one block of %" PRId64 " floats, embedded from ", m->param_floats);
        put_comment_text(c, m->o->embed_path ? m->o->embed_path : "a weights file");
        fputs(",\n * shared read-only by every instance (one that loads weights gets its own\n"
              " * block):\n", c);
    }
    fputs(" *       offset      floats  shape                 parameter\n", c);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_PARAM) continue;
        char buf[128];
        fprintf(c, " * %12" PRId64 "  %10" PRId64 "  %-20s  ", m->off[v->id], value_numel(v),
                shape_str(&v->shape, buf, sizeof buf));
        put_comment_text(c, v->name);
        fputc('\n', c);
    }
    fputs(" */\n", c);
    if (!m->o->embed) {
        fputc('\n', c);
        return;
    }
    fprintf(c, "static _Alignas(64) const netc_real embedded_params[%" PRId64 "] = {\n", m->param_floats);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_PARAM) continue;
        const netrt_st_entry *t = netrt_st_find(m->o->embed, v->name);
        int64_t n = shape_numel(&v->shape);
        char buf[128];
        fputs("    /* ", c);
        put_comment_text(c, v->name);
        fprintf(c, " %s */", shape_str(&v->shape, buf, sizeof buf));
        if (n == 0) {
            fputc('\n', c);
            continue;
        }
        float *vals = malloc(sizeof *vals * (size_t)n);
        netrt_st_entry_to_f32(t, vals);
        fprintf(c, "\n    [%" PRId64 "] =", m->off[v->id]);
        for (int64_t j = 0; j < n; j++) {
            fputs(j % 8 == 0 ? "\n    " : " ", c);
            put_float(c, vals[j]);
            fputc(',', c);
        }
        fputc('\n', c);
        free(vals);
    }
    fputs("};\n\n", c);
}

/* struct <prefix>: an instance's buffers and tensor tables, and the
 * program's instance. */
static void emit_instance_struct(Emitter *m) {
    FILE *c = m->c;
    const char *P = m->prefix;
    fprintf(c,
            "/* An instance of the network: its own buffers and tensor tables, so that\n"
            " * instances run independently of each other (the public API's struct %s). */\n"
            "struct %s {\n"
            "    netc_real *arena;             /* the buffers of the arena's table above */\n"
            "    const netc_real *param_block; /* the parameters: own_params%s, or NULL */\n"
            "    netc_real *own_params;        /* the parameters this instance loaded, or NULL */\n"
            "    bool loaded;                  /* param_block holds weights and prepare has run */\n"
            "    bool check_numerics;          /* after each node, look for NaN and Inf (--check-numerics) */\n"
            "    /* names, shapes and buffers of the parameters, inputs and outputs */\n"
            "    netrt_tensor params[%d];\n    netrt_tensor inputs[%d];\n    netrt_tensor outputs[%d];\n"
            "};\n\n"
            "/* The program's instance: the one %s_model (netrt_main%s) and %s_load and\n"
            " * %s_infer use. */\n"
            "static struct %s program;\n\n",
            P, P, m->o->embed && m->nparams ? " or embedded_params" : "", m->nparams ? m->nparams : 1,
            m->nin ? m->nin : 1, m->g->noutputs ? m->g->noutputs : 1, P, m->t ? ", the trainer" : "", P, P, P);
}

/* Whether the variable `word` occurs in C text outside its comments (not
 * as a member: self->arena is not arena). */
static bool uses(const char *text, const char *word) {
    size_t n = strlen(word);
    for (const char *p = text; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            if (!e) return false;
            p = e + 2;
        } else if (strncmp(p, word, n) == 0 && !(isalnum((unsigned char)p[n]) || p[n] == '_') &&
                   (p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.' || p[-1] == '>'))) {
            return true;
        } else {
            p++;
        }
    }
    return false;
}

/* A function body that refers to the instance's buffers by the names ref()
 * gives them, preceded by the locals it uses: arena, param_block and
 * check_numerics from the instance `self` (a parameter, or for `self_init`
 * a local initialized so). */
static void put_body(Emitter *m, const char *body, const char *self_init) {
    FILE *c = m->c;
    bool a = uses(body, "arena"), p = uses(body, "param_block"), k = uses(body, "check_numerics");
    if (self_init && (a || p || k || uses(body, "self"))) fprintf(c, "    %s\n", self_init);
    if (a) fputs("    netc_real *const arena = self->arena;\n", c);
    if (p && m->t) fputs("    netc_real *const param_block = self->own_params;\n", c);
    else if (p) fputs("    const netc_real *const param_block = self->param_block;\n", c);
    if (k) fputs("    const bool check_numerics = self->check_numerics;\n", c);
    fputs(body, c);
}

/* One static function per live node, except that a node whose function
 * would be the same text as an earlier node's (the same op, shapes and
 * attributes: ResNet's repeated blocks) calls that one: the C compiler
 * compiles each kernel once.  The comment above names every node. */
/* Node n's buffers as its kernel's arguments: inputs, then outputs; an
 * input the output is written over (plan_inplace) is passed once, as the
 * output. */
static void put_buffers(Emitter *m, const Node *n) {
    unsigned inplace = plan_inplace(m->plan, n);
    const char *sep = "";
    for (int j = 0; j < n->nin; j++)
        if (!(inplace >> j & 1)) {
            fprintf(m->c, "%s%s", sep, ref(m, n->in[j]));
            sep = ", ";
        }
    for (int j = 0; j < n->nout; j++) {
        fprintf(m->c, "%s%s", sep, ref(m, n->out[j]));
        sep = ", ";
    }
}

/* Whether node n's work is worth sharing out: a job costs the pool a few
 * microseconds (the workers woken or found spinning, the caller waiting for
 * the last), which a layer of fewer than PAR_MIN_MACS multiply-accumulates
 * (a few microseconds at tens of GFLOP/s: LeNet-5's layers) would not win
 * back.  Ops without a MAC count (elementwise) decide by their size in
 * kopen_elementwise. */
enum { PAR_MIN_MACS = 1 << 18 };
static bool worth_threads(const Graph *g, const Node *n) {
    const OpRules *r = op_rules(n->op);
    return !r->macs || r->macs(n) * (g->batch > 0 ? g->batch : 1) >= PAR_MIN_MACS;
}

/* Starts writing m->c into memory (so that put_body can see what a
 * function's body uses); capture_end returns the text (free it). */
typedef struct Capture {
    FILE *saved;
    char *text;
    size_t len;
} Capture;

static bool capture_begin(Emitter *m, Capture *cap) {
    *cap = (Capture){m->c, NULL, 0};
    FILE *f = open_memstream(&cap->text, &cap->len);
    if (!f) return false;
    m->c = f;
    return true;
}

static char *capture_end(Emitter *m, Capture *cap) {
    if (ferror(m->c)) m->failed = true;
    fclose(m->c);
    m->c = cap->saved;
    return cap->text;
}

/* For node i whose kernel splits its work into items, if worth it: the
 * function that netrt_parallel calls with a range of them, which calls the
 * kernel on the node's buffers, those of the instance its context is.
 * Without it the run function calls the kernel with all the items. */
static void emit_part(Emitter *m, int i) {
    Node *n = m->g->nodes[i];
    if (!m->items[i] || !worth_threads(m->g, n)) return;
    FILE *c = m->c;
    m->part[i] = unique(&m->names, arena_printf(m->g->arena, "%s_part", m->fname[i]));
    fprintf(c, "/* Work items [t0, t1) of the %s of \"", m->items[i]);
    put_comment_text(c, n->name);
    fprintf(c, "\", for netrt_parallel; ctx is the instance. */\n"
               "static void %s(void *ctx, int64_t t0, int64_t t1)\n{\n", m->part[i]);
    Capture cap;
    if (!capture_begin(m, &cap)) {
        m->failed = true;
        return;
    }
    fprintf(m->c, "    %s(", m->fname[i]);
    put_buffers(m, n);
    fputs(", t0, t1);\n", m->c);
    char *body = capture_end(m, &cap);
    if (!uses(body, "arena") && !uses(body, "param_block")) fputs("    (void)ctx;\n", c);
    put_body(m, body, arena_printf(m->g->arena, "const struct %s *const self = ctx;", m->prefix));
    free(body);
    fputs("}\n\n", c);
}

static void emit_nodes(Emitter *m) {
    Graph *g = m->g;
    FILE *c = m->c;
    char **text = calloc((size_t)g->nnodes + 1, sizeof *text); /* each node's function, named "kernel_" */
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        int line = 0, col = 0;
        if (g->src) source_line_col(g->src, n->span.begin, &line, &col);
        fputs("/* ", c);
        put_comment_text(c, g->src ? g->src->path : "<unknown>");
        fprintf(c, ":%d: %s \"", line, op_name(n->op));
        put_comment_text(c, n->name);
        fputs("\"  ", c);
        put_shapes(c, n->in, n->nin);
        fputs(" -> ", c);
        put_shapes(c, n->out, n->nout);
        fputs(" */\n", c);
        if (plan_is_view(m->plan, n)) {
            fputs("/* a view: the output is the input's region (the memory plan), no code */\n\n", c);
            continue;
        }
        size_t len = 0;
        FILE *f = open_memstream(&text[i], &len);
        if (!f) {
            m->items[i] = emit_node_function(c, g, n, m->fname[i], m->batched, plan_inplace(m->plan, n), m->o->f64, m->o->mpi);
            fputc('\n', c);
            emit_part(m, i);
            continue;
        }
        m->items[i] = emit_node_function(f, g, n, "kernel_", m->batched, plan_inplace(m->plan, n), m->o->f64, m->o->mpi);
        fclose(f);
        int same = -1;
        for (int j = 0; j < i && same < 0; j++)
            if (text[j] && strcmp(text[j], text[i]) == 0) same = j;
        if (same >= 0) {
            fprintf(c, "/* computed by %s: the same kernel */\n\n", m->fname[same]);
            m->fname[i] = m->fname[same];
            free(text[i]);
            text[i] = NULL;
            emit_part(m, i);
            continue;
        }
        /* every "kernel_": the function's name, and its phases' and buffers' (kphase_open) */
        const char *body = text[i];
        for (const char *at; (at = strstr(body, "kernel_")) != NULL; body = at + strlen("kernel_")) {
            fwrite(body, 1, (size_t)(at - body), c);
            fputs(m->fname[i], c);
        }
        fputs(body, c);
        fputc('\n', c);
        emit_part(m, i);
    }
    for (int i = 0; i < g->nnodes; i++) free(text[i]);
    free(text);
}

/* "model.net:12": where node n came from. */
static const char *node_where(Emitter *m, const Node *n) {
    int line = 0, col = 0;
    if (m->g->src) source_line_col(m->g->src, n->span.begin, &line, &col);
    return arena_printf(m->g->arena, "%s:%d", m->g->src ? m->g->src->path : "<unknown>", line);
}

/* One netrt_check_finite call for value v (named `what` in the message) of
 * node n, without the indentation and the statement around it. */
static void put_check_call(Emitter *m, const Node *n, const Value *v, const char *what) {
    FILE *c = m->c;
    int64_t numel = value_numel(v);
    const char *op = op_name(n->op);
    size_t len = strlen(op);
    if (len > 8 && strcmp(op + len - 8, "_blocked") == 0) /* the op as the .net file has it */
        op = arena_printf(m->g->arena, "%.*s", (int)(len - 8), op);
    if (v->cblock && v->shape.rank == 4) { /* its logical channels; a training graph's active batch */
        const char *batch = m->t ? "nb_active" : arena_printf(m->g->arena, "%" PRId64, v->shape.d[0]);
        fprintf(c, "netrt_check_finite_blocked(%s, %s, %" PRId64 ", %" PRId64 ", %d, ", ref(m, v), batch,
                v->shape.d[1], v->shape.d[2] * v->shape.d[3], v->cblock);
    } else if (m->per_sample[v->id] && v->shape.rank > 0 && v->shape.d[0] > 0) {
        int64_t per = numel / v->shape.d[0];
        fprintf(c, "netrt_check_finite(%s, ", ref(m, v));
        if (m->t)
            fprintf(c, "(int64_t)nb_active * %" PRId64 ", %" PRId64 ", ", per, per);
        else
            fprintf(c, "%" PRId64 ", %" PRId64 ", ", numel, per);
    } else {
        fprintf(c, "netrt_check_finite(%s, %" PRId64 ", 0, ", ref(m, v), numel);
    }
    put_string(c, what);
    fputs(", ", c);
    put_string(c, op);
    fputs(", ", c);
    put_string(c, n->name ? n->name : "");
    fputs(", ", c);
    put_string(c, node_where(m, n));
    fputc(')', c);
}

/* Output j of node n, for --check-numerics messages. */
static const char *output_name(Emitter *m, const Node *n, int j) {
    const char *const *names = op_rules(n->op)->output_names;
    if (n->nout == 1) return "the output";
    if (names) return names[j];
    return arena_printf(m->g->arena, "output %d", j + 1);
}

/* After a node's call: with --check-numerics on, what the node wrote (its
 * outputs, then the inputs it updates in place) is checked for NaN and Inf,
 * and the first one found ends the calling function.  Off, this costs one
 * branch per node. */
static void emit_check(Emitter *m, const Node *n) {
    Graph *g = m->g;
    FILE *c = m->c;
    const Value *vs[IR_MAX_IN + IR_MAX_OUT];
    const char *whats[IR_MAX_IN + IR_MAX_OUT];
    int k = 0;
    for (int j = 0; j < n->nout; j++) {
        vs[k] = n->out[j];
        whats[k] = output_name(m, n, j);
        k++;
    }
    unsigned written = op_rules(n->op)->written_inputs;
    for (int j = 0; j < n->nin; j++)
        if (written >> j & 1) {
            vs[k] = n->in[j];
            whats[k++] = arena_printf(g->arena, "the updated '%s'", n->in[j]->name ? n->in[j]->name : "?");
        }
    if (k == 1) {
        fputs("    if (check_numerics && ", c);
        put_check_call(m, n, vs[0], whats[0]);
        fputs(") return;\n", c);
    } else if (k > 1) {
        fputs("    if (check_numerics) {\n", c);
        for (int j = 0; j < k; j++) {
            fputs("        if (", c);
            put_check_call(m, n, vs[j], whats[j]);
            fputs(") return;\n", c);
        }
        fputs("    }\n", c);
    }
}

/* The calls of the F_INIT nodes (init true) or of the others; in a training
 * graph, of the others in `phase`. */
/* p's index in the params table (parameters in value order). */
static int param_index(const Emitter *m, const Value *p) {
    int k = 0;
    for (int i = 0; i < m->g->nvalues && m->g->values[i] != p; i++) k += m->g->values[i]->kind == V_PARAM;
    return k;
}

/* An --mpi program's grad(): after node n, the parameters whose gradients
 * n finished (netrt_dist_grad_ready starts summing them over the ranks);
 * params[k] is parameter k, def[k] the node that computes its gradient. */
static void emit_grad_ready(Emitter *m, const Node *n, Value *const *params, const Node *const *def) {
    for (int k = 0; k < m->nparams; k++)
        if (def[k] == n) {
            fprintf(m->c, "    netrt_dist_grad_ready(%d); /* the gradient of '", k);
            put_comment_text(m->c, params[k]->name);
            fputs("' is done: to its bucket */\n", m->c);
        }
}

static void emit_calls(Emitter *m, bool init, Phase phase) {
    Graph *g = m->g;
    bool ready = m->o->mpi && m->t && !init && phase == PHASE_GRAD;
    Value *params[m->nparams + 1];
    const Node *def[m->nparams + 1];
    for (int i = 0, k = 0; ready && i < g->nvalues; i++)
        if (g->values[i]->kind == V_PARAM) {
            const Value *grad = train_grad(g, g->values[i]);
            params[k] = g->values[i];
            def[k++] = grad ? grad->def : NULL;
        }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || op_has(n->op, F_INIT) != init) continue;
        if (!init && m->t && n->phase != phase) continue;
        if (plan_is_view(m->plan, n)) {
            fprintf(m->c, "    /* n%d %s: a view of %s, nothing to run */\n", n->id, op_name(n->op), ref(m, n->in[0]));
            if (ready) emit_grad_ready(m, n, params, def);
            continue;
        }
        if (n->op == OP_OPTIM_UPDATE) /* transfer learning: the parameter's group's rate */
            fprintf(m->c, "    lr_group = %s_lr_mult[%d];\n", m->prefix, param_index(m, n->in[0]));
        if (m->part[i]) {
            fprintf(m->c, "    netrt_parallel(%s, self, %s);\n", m->part[i], m->items[i]);
        } else if (m->items[i]) { /* all its items here, in this thread */
            fprintf(m->c, "    %s(", m->fname[i]);
            put_buffers(m, n);
            fprintf(m->c, ", 0, %s);\n", m->items[i]);
        } else {
            fprintf(m->c, "    %s(", m->fname[i]);
            put_buffers(m, n);
            fputs(");\n", m->c);
        }
        emit_check(m, n);
        if (m->tap && m->tap[i] >= 0) fprintf(m->c, "    if (tap_on) netrt_tap(%d, %s);\n", m->tap[i], ref(m, n->out[0]));
        if (ready) emit_grad_ready(m, n, params, def);
    }
}

/* A netrt_tensor initializer with no data yet: {"name", rank, {dims}, NULL}. */
static void put_tensor_init(FILE *c, const char *name, const Shape *s) {
    fputc('{', c);
    put_string(c, name);
    fprintf(c, ", %d, ", s->rank);
    put_dims(c, s);
    fputs(", NULL}", c);
}

/* One tensor row per parameter, in value order (the params table and the
 * training tables parallel to it; their data pointers set by init). */
static void put_param_rows(Emitter *m) {
    for (int i = 0; i < m->g->nvalues; i++) {
        Value *v = m->g->values[i];
        if (v->kind != V_PARAM) continue;
        fputs("    ", m->c);
        put_tensor_init(m->c, v->name, &v->shape);
        fputs(",\n", m->c);
    }
}

static void emit_tensor_table(Emitter *m, const char *what, int count) {
    Graph *g = m->g;
    FILE *c = m->c;
    if (count == 0) return;
    fprintf(c, "static const netrt_tensor %s_%s[%d] = {\n", m->prefix, what, count);
    if (strcmp(what, "params") == 0) {
        put_param_rows(m);
    } else if (strcmp(what, "inputs") == 0) {
        for (int i = 0; i < m->nin; i++) {
            Value *v = m->in[i];
            fputs("    ", c);
            put_tensor_init(c, v->name, &v->shape);
            fputs(",\n", c);
        }
    } else {
        for (int i = 0; i < g->noutputs; i++) {
            Value *v = g->outputs[i].v;
            fputs("    ", c);
            put_tensor_init(c, g->outputs[i].name, &v->shape);
            fputs(",\n", c);
        }
    }
    fputs("};\n", c);
}

/* A single tensor descriptor `static netrt_tensor <prefix>_<what>` for v. */
static void emit_tensor(Emitter *m, const char *what, const char *name, const Value *v) {
    FILE *c = m->c;
    if (!v) return;
    fprintf(c, "static netrt_tensor %s_%s = ", m->prefix, what);
    put_tensor_init(c, name, &v->shape);
    fputs(";\n", c);
}

/* The training tables, parallel to the params and the model's inputs. */
static void emit_train_tables(Emitter *m) {
    Graph *g = m->g;
    FILE *c = m->c;
    const char *P = m->prefix;
    if (m->nparams) {
        fprintf(c, "/* Per parameter: its gradient (NULL data when it is not trained). */\n"
                   "static netrt_tensor %s_grads[%d] = {\n", P, m->nparams);
        put_param_rows(m);
        for (int k = 1; k <= 2; k++) {
            fprintf(c, "};\n\n/* Per parameter: the optimizer's %s (NULL data when it is not trained). */\n"
                       "static netrt_tensor %s_moment%d[%d] = {\n",
                    k == 1 ? "first moment (SGD's momentum buffer)" : "second moment (Adam's)", P, k, m->nparams);
            put_param_rows(m);
        }
        fprintf(c, "};\n\n/* Per parameter: how netc init and the trainer fill it (PyTorch's fans). */\n"
                   "static const netrt_param_init %s_inits[%d] = {\n", P, m->nparams);
        static const char *const schemes[] = {"NETRT_INIT_NONE", "NETRT_INIT_ZERO", "NETRT_INIT_ONE",
                                              "NETRT_INIT_XAVIER", "NETRT_INIT_HE",
                                              /* initialization (issue 12) */
                                              "NETRT_INIT_CONSTANT", "NETRT_INIT_UNIFORM", "NETRT_INIT_NORMAL",
                                              "NETRT_INIT_XAVIER_UNIFORM", "NETRT_INIT_XAVIER_NORMAL",
                                              "NETRT_INIT_KAIMING_UNIFORM", "NETRT_INIT_KAIMING_NORMAL",
                                              "NETRT_INIT_LECUN_NORMAL", "NETRT_INIT_ORTHOGONAL"};
        for (int i = 0; i < g->nvalues; i++) {
            Value *v = g->values[i];
            if (v->kind != V_PARAM) continue;
            netrt_param_init pi = init_param_desc(v);
            unsigned k = (unsigned)v->init < sizeof schemes / sizeof *schemes ? (unsigned)v->init : 0;
            char what[96];
            fprintf(c, "    {%s, %.17g, %.17g, %.17g, %.17g, %" PRId64 "}, /* ", schemes[k], pi.fan_in, pi.fan_out,
                    pi.a, pi.b, pi.rows);
            put_comment_text(c, v->name);
            fprintf(c, ": %s */\n", netrt_init_describe(&pi, what, sizeof what));
        }
        fputs("};\n\n", c);
        /* transfer learning */
        fprintf(c, "/* Per parameter: whether the net froze it (no gradient, no update), and its\n"
                   " * rate as a multiple of hp.lr (the trainer's --lr-for groups). */\n"
                   "static const bool %s_frozen[%d] = {", P, m->nparams);
        for (int i = 0, k = 0; i < g->nvalues; i++)
            if (g->values[i]->kind == V_PARAM)
                fprintf(c, "%s%s", k++ ? ", " : "", train_frozen(g, g->values[i]) ? "true" : "false");
        fprintf(c, "};\nstatic float %s_lr_mult[%d] = {", P, m->nparams);
        for (int k = 0; k < m->nparams; k++) fprintf(c, "%s1.0f", k ? ", " : "");
        fputs("};\n\n", c);
    }
    if (m->nin) {
        fprintf(c, "/* Per input: d loss / d input (NULL data when not computed). */\n"
                   "static netrt_tensor %s_input_grads[%d] = {\n", P, m->nin);
        for (int i = 0; i < m->nin; i++) {
            Value *v = m->in[i];
            fputs("    ", c);
            put_tensor_init(c, v->name, &v->shape);
            fputs(",\n", c);
        }
        fputs("};\n\n", c);
    }
    const LossAttrs *la = &m->t->lossa;
    if (la->nweight) {
        fprintf(c, "/* The loss's class weights. */\nstatic const float %s_class_weights[%d] = {", P, la->nweight);
        char buf[64];
        for (int i = 0; i < la->nweight; i++) fprintf(c, "%s%s", i ? ", " : "", float_literal(buf, sizeof buf, la->weight[i]));
        fputs("};\n\n", c);
    }
    emit_tensor(m, "labels", "labels", m->t->labels);
    emit_tensor(m, "loss", "loss", m->t->loss);
    emit_tensor(m, "train_logits", g->noutputs ? g->outputs[0].name : "logits", m->t->logits);
    fputc('\n', c);
}

/* A buffer as a tensor table's data pointer, which is float *: in a double
 * build cast, the runtime reading netrt_model.real_bytes. */
static const char *tdata(Emitter *m, const char *buf) {
    return m->o->f64 && strcmp(buf, "NULL") != 0 ? arena_printf(m->g->arena, "(float *)(%s)", buf) : buf;
}

/* The data pointers of the training tables, set by init: the gradients of
 * the trained parameters (the others' stay NULL) and of the inputs. */
static void emit_train_pointers(Emitter *m) {
    Graph *g = m->g;
    const Training *t = m->t;
    FILE *c = m->c;
    const char *P = m->prefix;
    int k = 0;
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_PARAM) continue;
        Value *grad = train_grad(g, v);
        if (grad) fprintf(c, "    %s_grads[%d].data = %s;\n", P, k, tdata(m, ref_or_null(m, grad)));
        for (int j = 1; j <= 2; j++) {
            Value *mo = train_moment(g, v, j);
            if (mo) fprintf(c, "    %s_moment%d[%d].data = %s;\n", P, j, k, tdata(m, ref_or_null(m, mo)));
        }
        k++;
    }
    for (int i = 0; i < m->nin; i++) {
        Value *grad = train_grad(g, m->in[i]);
        if (grad) fprintf(c, "    %s_input_grads[%d].data = %s;\n", P, i, tdata(m, ref_or_null(m, grad)));
    }
    if (t->labels) fprintf(c, "    %s_labels.data = %s;\n", P, tdata(m, ref(m, t->labels)));
    if (t->loss) fprintf(c, "    %s_loss.data = %s;\n", P, tdata(m, ref(m, t->loss)));
    if (t->logits) fprintf(c, "    %s_train_logits.data = %s;\n", P, tdata(m, ref(m, t->logits)));
}

static void emit_train_functions(Emitter *m) {
    FILE *c = m->c;
    const char *P = m->prefix;
    fprintf(c, "/* The training-mode forward, the loss and the backward pass on the active\n"
               " * batch: fills the loss, the training logits and the gradients. */\n"
               "static void %s_grad(void)\n{\n", P);
    bool init = false;
    for (int i = 0; i < m->g->nnodes; i++) init |= !m->g->nodes[i]->dead && op_has(m->g->nodes[i]->op, F_INIT);
    const char *self_init = arena_printf(m->g->arena, "struct %s *const self = &program;", P);
    Capture cap;
    if (!capture_begin(m, &cap)) {
        m->failed = true;
        return;
    }
    fputs("    train_step++;\n", m->c);
    if (init) fprintf(m->c, "    %s_prepare(self); /* the packed weights of the parameters the last update changed */\n", P);
    emit_calls(m, false, PHASE_GRAD);
    char *body = capture_end(m, &cap);
    put_body(m, body, self_init);
    free(body);
    fprintf(c, "}\n\n/* One optimizer step: each trained parameter and its moments, from its gradient. */\n"
               "static void %s_update(void)\n{\n", P);
    if (!capture_begin(m, &cap)) {
        m->failed = true;
        return;
    }
    emit_calls(m, false, PHASE_UPDATE);
    body = capture_end(m, &cap);
    put_body(m, body, self_init);
    free(body);
    fprintf(c, "}\n\n/* The active batch for run and grad, clamped to [1, NMAX]. */\n"
               "static void %s_set_batch(int nb) { nb_active = nb < 1 ? 1 : nb > NMAX ? NMAX : nb; }\n\n"
               "/* Zeroes the training state (the optimizer's moments). */\n"
               "static void %s_reset_state(void)\n{\n"
               "    if (state_block) memset(state_block, 0, (size_t)%" PRId64 " * sizeof(netc_real));\n}\n\n",
            P, P, m->state_floats ? m->state_floats : 1);
}

static const char *const loss_kinds[] = {
    [LOSS_CROSS_ENTROPY] = "NETRT_LOSS_CROSS_ENTROPY",
    [LOSS_BCE_WITH_LOGITS] = "NETRT_LOSS_BCE_WITH_LOGITS",
    [LOSS_MSE] = "NETRT_LOSS_MSE",
};

static void emit_train_descriptor(Emitter *m) {
    const Training *t = m->t;
    FILE *c = m->c;
    const char *P = m->prefix;
    fprintf(c, "const netrt_train_model %s_train = {\n    .infer = &%s_model,\n", P, P);
    if (m->nparams)
        fprintf(c, "    .grads = %s_grads,\n    .moment1 = %s_moment1,\n    .moment2 = %s_moment2,\n"
                   "    .inits = %s_inits,\n", P, P, P, P);
    else
        fputs("    .grads = NULL,\n    .moment1 = NULL,\n    .moment2 = NULL,\n    .inits = NULL,\n", c);
    fprintf(c, "    .input_grads = %s%s,\n", m->nin ? P : "NULL", m->nin ? "_input_grads" : "");
    fprintf(c, "    .labels = %s%s%s,\n", t->labels ? "&" : "", t->labels ? P : "NULL", t->labels ? "_labels" : "");
    fprintf(c, "    .loss = %s%s%s,\n", t->loss ? "&" : "", t->loss ? P : "NULL", t->loss ? "_loss" : "");
    fprintf(c, "    .train_logits = %s%s%s,\n", t->logits ? "&" : "", t->logits ? P : "NULL",
            t->logits ? "_train_logits" : "");
    fprintf(c,
            "    .set_batch = %s_set_batch,\n    .grad = %s_grad,\n    .update = %s_update,\n"
            "    .reset_state = %s_reset_state,\n"
            "    .hp = &hp,\n    .loss_kind = %s,\n    .ignore_index = %" PRId64 ",\n"
            "    .class_weights = %s%s,\n"
            "    .seed = &train_seed,\n    .step = &train_step,\n    .no_dropout = &train_no_dropout,\n"
            "    .ntaps = %d,\n    .taps = %s%s,\n    .tap_on = &tap_on,\n",
            P, P, P, P, loss_kinds[t->lossa.kind], t->lossa.ignore_index, t->lossa.nweight ? P : "NULL",
            t->lossa.nweight ? "_class_weights" : "", m->ntaps, m->ntaps ? P : "NULL", m->ntaps ? "_taps" : "");
    /* initialization (issue 12): --output-bias */
    const char *ob = init_output_bias(t->logits);
    fputs("    .output_bias = ", c);
    if (ob) put_string(c, ob);
    else fputs("NULL", c);
    fputs(",\n", c);
    if (m->nparams) /* transfer learning */
        fprintf(c, "    .frozen = %s_frozen,\n    .lr_mult = %s_lr_mult,\n", P, P);
    fputs("};\n\n", c);
}

/* The taps of a training graph (taps.h): their numbers by node, the tap_on
 * flag and the table the descriptor points at. */
static void emit_taps(Emitter *m) {
    Graph *g = m->g;
    FILE *c = m->c;
    int loss_index = g->nnodes;
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead && m->t->loss && g->nodes[i]->out[0] == m->t->loss) loss_index = i;
    m->tap = arena_alloc(g->arena, sizeof *m->tap * (size_t)(g->nnodes ? g->nnodes : 1));
    fprintf(c, "/* Taps (--monitor, --init-calibrate): while set, grad() passes each layer's\n"
               " * output to netrt_tap right after its kernel. */\nstatic bool tap_on;\n\n");
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        TapKind k;
        m->tap[i] = -1;
        if (plan_is_view(m->plan, n) || m->o->f64 || !tap_of(g, n, i, loss_index, &k)) continue; /* float only */
        if (m->ntaps == 0) fprintf(c, "/* Per tap: the layer, its kind and its layout. */\nstatic const netrt_tap_info %s_taps[] = {\n", m->prefix);
        const Value *v = n->out[0];
        fputs("    {", c);
        put_string(c, n->name ? n->name : "");
        fputs(", ", c);
        put_string(c, k.kind);
        fprintf(c, ", %s, %s, %d, ", k.relu ? "true" : "false", k.preact ? "true" : "false", v->shape.rank);
        put_dims(c, &v->shape);
        fprintf(c, ", %d},\n", v->cblock);
        m->tap[i] = m->ntaps++;
    }
    if (m->ntaps) fputs("};\n\n", c);
}

/* `static void NAME(struct P *self)` (with its comment) running the calls
 * of the F_INIT nodes (init) or of the others in phase. */
static void emit_instance_function(Emitter *m, const char *comment, const char *name, bool init) {
    fprintf(m->c, "%sstatic void %s_%s(struct %s *self)\n{\n", comment, m->prefix, name, m->prefix);
    Capture cap;
    if (!capture_begin(m, &cap)) {
        m->failed = true;
        return;
    }
    emit_calls(m, init, PHASE_RUN);
    char *body = capture_end(m, &cap);
    if (!uses(body, "arena") && !uses(body, "param_block") && !uses(body, "check_numerics") && !uses(body, "self"))
        fputs("    (void)self;\n", m->c);
    put_body(m, body, NULL);
    free(body);
    fputs("}\n\n", m->c);
}

/* The calls that point self's parameter table at `block` (a C expression of
 * a netc_real pointer; the tables' data are float *: cast in a double build,
 * and a read-only block cast in any build). */
static void put_point_params(Emitter *m, const char *table, const char *block, bool readonly) {
    if (!m->nparams) return;
    if (m->o->f64)
        fprintf(m->c, "    for (int k = 0; k < %d; k++) %s[k].data = (float *)(%s + %s_param_offsets[k]);\n",
                m->nparams, table, block, m->prefix);
    else
        fprintf(m->c, "    for (int k = 0; k < %d; k++) %s[k].data = %s%s + %s_param_offsets[k];\n", m->nparams,
                table, readonly ? "(float *)" : "", block, m->prefix);
}

static void emit_runtime(Emitter *m) {
    Graph *g = m->g;
    FILE *c = m->c;
    const char *P = m->prefix;
    bool embed = m->o->embed && m->nparams > 0;

    if (m->t) emit_taps(m);
    emit_instance_function(m, "/* Computes self's derived values (folded, packed weights) from its parameters. */\n",
                           "prepare", true);
    emit_instance_function(m, m->t ? "/* The eval-mode forward on the active batch: self's inputs -> outputs. */\n"
                                   : "/* One batch: self's inputs -> outputs. */\n",
                           "forward", false);
    if (m->t) emit_train_functions(m);

    emit_tensor_table(m, "params", m->nparams);
    emit_tensor_table(m, "inputs", m->nin);
    emit_tensor_table(m, "outputs", g->noutputs);
    if (m->nparams) {
        fprintf(c, "/* Where each parameter starts in a param block. */\nstatic const int64_t %s_param_offsets[%d] = {",
                P, m->nparams);
        int k = 0;
        for (int i = 0; i < g->nvalues; i++)
            if (g->values[i]->kind == V_PARAM) fprintf(c, "%s%" PRId64, k++ ? ", " : "", m->off[g->values[i]->id]);
        fputs("};\n", c);
    }
    fputc('\n', c);
    if (m->t) emit_train_tables(m);

    /* setup */
    fprintf(c, "/* Allocates self's buffers and fills its tensor tables; 0 on success, -1\n"
               " * if out of memory (nothing allocated).%s */\n"
               "static int %s_setup(struct %s *self)\n{\n",
            m->t ? "  The training state and tables are\n * the program's (file-scope): for the program's instance only." : "", P, P);
    /* an instance's own parameters, but for embedded weights (read in place
     * until it loads others); a training graph's are written: always its own */
    bool own = m->nparams > 0 && (m->t || !embed);
    fprintf(c, "    self->arena = netrt_alloc((size_t)%" PRId64 " * sizeof(netc_real));\n",
            m->arena_floats ? m->arena_floats : 1);
    if (own) fprintf(c, "    self->own_params = netrt_alloc((size_t)%" PRId64 " * sizeof(netc_real));\n", m->param_floats);
    if (m->t)
        fprintf(c, "    state_block = netrt_alloc((size_t)%" PRId64 " * sizeof(netc_real));\n",
                m->state_floats ? m->state_floats : 1);
    if (m->t || own) {
        fprintf(c, "    if (!self->arena%s%s) {\n        netrt_free(self->arena);\n%s%s"
                   "        self->arena = %s%s;\n        return -1;\n    }\n",
                own ? " || !self->own_params" : "", m->t ? " || !state_block" : "",
                own ? "        netrt_free(self->own_params);\n" : "", m->t ? "        netrt_free(state_block);\n" : "",
                own ? "self->own_params = " : "", m->t ? "state_block = NULL" : "NULL");
    } else {
        fputs("    if (!self->arena) return -1;\n", c);
    }
    Capture cap;
    if (!capture_begin(m, &cap)) {
        m->failed = true;
        return;
    }
    FILE *b = m->c;
    if (m->nparams) fprintf(b, "    memcpy(self->params, %s_params, sizeof self->params);\n", P);
    if (m->nin) fprintf(b, "    memcpy(self->inputs, %s_inputs, sizeof self->inputs);\n", P);
    if (g->noutputs) fprintf(b, "    memcpy(self->outputs, %s_outputs, sizeof self->outputs);\n", P);
    if (own) {
        if (embed) fputs("    memcpy(self->own_params, embedded_params, sizeof embedded_params);\n", b);
        fputs("    self->param_block = self->own_params;\n", b);
        put_point_params(m, "self->params", "self->own_params", false);
    } else if (embed) {
        fputs("    self->param_block = embedded_params;\n", b);
        put_point_params(m, "self->params", "embedded_params", true); /* read-only: loads go to own_params */
    }
    for (int i = 0; i < m->nin; i++) fprintf(b, "    self->inputs[%d].data = %s;\n", i, tdata(m, ref(m, m->in[i])));
    for (int i = 0; i < g->noutputs; i++)
        fprintf(b, "    self->outputs[%d].data = %s;\n", i, tdata(m, ref(m, g->outputs[i].v)));
    if (m->t) emit_train_pointers(m);
    fputs("    return 0;\n", b);
    char *body = capture_end(m, &cap);
    put_body(m, body, NULL);
    free(body);
    fputs("}\n\n", c);

    /* teardown */
    fprintf(c, "/* Frees what setup and loading allocated; setup may run again after it. */\n"
               "static void %s_teardown(struct %s *self)\n{\n"
               "    netrt_free(self->arena);\n    netrt_free(self->own_params);\n", P, P);
    if (m->t) fputs("    netrt_free(state_block);\n    state_block = NULL;\n", c);
    fputs("    memset(self, 0, sizeof *self);\n}\n\n", c);

    /* load from a parsed file */
    fprintf(c,
            "/* Loads the parameters from f (`what` names it in messages) into self's\n"
            " * own block, allocated at its first load.  Everything is checked before\n"
            " * anything is written, so that a failed load leaves self as it was.  Does\n"
            " * not run prepare. */\n"
            "static int %s_load_st(struct %s *self, const netrt_st_file *f, const char *what, char *err, size_t errlen)\n{\n",
            P, P);
    if (m->o->f64) {
        /* the weights files hold floats; the gradient check initializes a double build's parameters itself */
        fputs("    (void)self;\n    (void)f;\n"
              "    return netrt_errorf(err, errlen, \"%s: a double-precision build loads no weights\", what);\n}\n\n",
              c);
    } else if (m->nparams == 0) {
        fputs("    (void)self;\n    return netrt_st_check(NULL, 0, f, what, err, errlen);\n}\n\n", c);
    } else {
        fprintf(c,
                "    netc_real *block =\n"
                "        self->own_params ? self->own_params : netrt_alloc((size_t)%" PRId64 " * sizeof(netc_real));\n"
                "    if (!block) return netrt_errorf(err, errlen, \"%s: out of memory for the parameters\");\n"
                "    netrt_tensor ts[%d];\n"
                "    memcpy(ts, self->params, sizeof ts);\n",
                m->param_floats, P, m->nparams);
        put_point_params(m, "ts", "block", false);
        fprintf(c,
                "    if (netrt_st_load(f, what, ts, %d, err, errlen) != 0) {\n"
                "        if (block != self->own_params) netrt_free(block);\n"
                "        return -1;\n"
                "    }\n"
                "    memcpy(self->params, ts, sizeof ts);\n"
                "    self->own_params = block;\n"
                "    self->param_block = block;\n"
                "    return 0;\n}\n\n",
                m->nparams);
    }

    /* the program's instance */
    fprintf(c,
            "/* The program's instance through %s_model. */\n"
            "static int %s_program_init(void) { return program.arena ? 0 : %s_setup(&program); }\n"
            "static int %s_program_load(const char *path, char *err, size_t errlen)\n{\n"
            "    netrt_st_file f;\n"
            "    if (netrt_st_open(path, &f, err, errlen) != 0) return -1;\n"
            "    int rc = %s_load_st(&program, &f, path, err, errlen);\n"
            "    netrt_st_close(&f);\n"
            "    return rc;\n}\n"
            "static void %s_program_prepare(void)\n{\n    %s_prepare(&program);\n    program.loaded = true;\n}\n"
            "static void %s_program_run(void) { %s_forward(&program); }\n"
            "static void %s_program_fini(void) { %s_teardown(&program); }\n\n",
            P, P, P, P, P, P, P, P, P, P, P);

    fprintf(c, "const netrt_model %s_model = {\n    .name = ", P);
    put_string(c, g->name ? g->name : "");
    fputs(",\n    .source = ", c);
    put_string(c, g->src ? g->src->path : "");
    fprintf(c, ",\n    .batch = %d,\n", g->batch);
    fprintf(c, "    .nparams = %d,\n    .params = %s,\n", m->nparams, m->nparams ? "program.params" : "NULL");
    fprintf(c, "    .ninputs = %d,\n    .inputs = %s,\n", m->nin, m->nin ? "program.inputs" : "NULL");
    fprintf(c, "    .noutputs = %d,\n    .outputs = %s,\n", g->noutputs, g->noutputs ? "program.outputs" : "NULL");
    fprintf(c,
            "    .embedded = %s,\n    .init = %s_program_init,\n    .prepare = %s_program_prepare,\n"
            "    .run = %s_program_run,\n    .fini = %s_program_fini,\n    .load = %s_program_load,\n"
            "    .check_numerics = &program.check_numerics,\n",
            m->o->embed ? "true" : "false", P, P, P, P, P);
    /* the target's CPU feature, which netrt_main, the trainer and the gradient check test first */
    const Target *tg = g->target;
    if (tg && tg->cpu) {
        fputs("    .cpu = ", c);
        put_string(c, tg->cpu);
        fputs(",\n", c);
    } else {
        fputs("    .cpu = NULL,\n", c);
    }
    if (m->o->f64) fputs("    .real_bytes = sizeof(netc_real),\n", c);
    fputs("};\n\n", c);
    if (m->t) emit_train_descriptor(m);
}

/* The names of the run function's arguments: inputs then outputs. */
static const char **infer_args(Emitter *m) {
    Graph *g = m->g;
    const char **a = arena_alloc(g->arena, sizeof *a * (size_t)(m->nin + g->noutputs + 1));
    Names local = names_copy(&m->names); /* the globals, then the arguments */
    for (int i = 0; i < m->nin; i++) a[i] = unique(&local, sanitize(g->arena, "", m->in[i]->name));
    for (int i = 0; i < g->noutputs; i++)
        a[m->nin + i] = unique(&local, sanitize(g->arena, "", g->outputs[i].name));
    return a;
}

/* The inputs then the outputs as parameters: "const float *x, float *y". */
static void put_io_params(Emitter *m, FILE *f, const char **args) {
    for (int i = 0; i < m->nin; i++) fprintf(f, ", const float *%s", args[i]);
    for (int i = 0; i < m->g->noutputs; i++) fprintf(f, ", float *%s", args[m->nin + i]);
}

static void put_infer_decl(Emitter *m, FILE *f, const char **args) {
    Graph *g = m->g;
    fprintf(f, "void %s_infer(", m->prefix);
    for (int i = 0; i < m->nin; i++) fprintf(f, "%sconst float *%s", i ? ", " : "", args[i]);
    for (int i = 0; i < g->noutputs; i++) fprintf(f, "%sfloat *%s", m->nin + i ? ", " : "", args[m->nin + i]);
    if (m->nin + g->noutputs == 0) fputs("void", f);
    fputc(')', f);
}

/* n elements from src to dst, between the caller's floats (the API stays
 * float) and the buffers (a double build converts them one by one). */
static void put_copy(Emitter *m, const char *dst, const char *src, int64_t n) {
    if (m->o->f64)
        fprintf(m->c, "    for (size_t netc_i = 0; netc_i < %" PRId64 "; netc_i++) (%s)[netc_i] = (%s)[netc_i];\n", n, dst, src);
    else
        fprintf(m->c, "    memcpy(%s, %s, (size_t)%" PRId64 " * sizeof(float));\n", dst, src, n);
}

/* The API's declarations, for the header and the C file: `linkage` is
 * "" for the header's, "static " for a training graph's (which keeps
 * file-scope state: no public instances). */
static void put_api_decl(Emitter *m, FILE *f, const char *what, const char **args, const char *linkage) {
    const char *P = m->prefix;
    if (strcmp(what, "create") == 0)
        fprintf(f, "%sint %s_create(struct %s **out, char *err, size_t errlen)", linkage, P, P);
    else if (strcmp(what, "load_file") == 0)
        fprintf(f, "%sint %s_load_file(struct %s *self, const char *path, char *err, size_t errlen)", linkage, P, P);
    else if (strcmp(what, "load_memory") == 0)
        fprintf(f, "%sint %s_load_memory(struct %s *self, const void *data, size_t size, char *err, size_t errlen)",
                linkage, P, P);
    else if (strcmp(what, "run") == 0) {
        fprintf(f, "%sint %s_run(struct %s *self", linkage, P, P);
        put_io_params(m, f, args);
        fputc(')', f);
    } else if (strcmp(what, "free") == 0)
        fprintf(f, "%svoid %s_free(struct %s *self)", linkage, P, P);
}

/* The instance API (create, load_file, load_memory, run, free) and the
 * program instance's load and infer. */
static void emit_infer(Emitter *m, const char **args) {
    Graph *g = m->g;
    FILE *c = m->c;
    const char *P = m->prefix;
    const char *linkage = m->t ? "static " : "";
    bool embed = m->o->embed && m->nparams > 0;
    bool ready = embed || m->nparams == 0; /* runs without loading weights */

    if (!m->t) {
        fputs("/* The public API: the header documents it. */\n", c);
        put_api_decl(m, c, "create", args, linkage);
        fprintf(c,
                "\n{\n"
                "    *out = NULL;\n"
                "    if (netrt_cpu_check(%s_model.cpu, \"%s\", err, errlen) != 0) return -1;\n"
                "    struct %s *self = calloc(1, sizeof *self);\n"
                "    if (!self || %s_setup(self) != 0) {\n"
                "        free(self);\n"
                "        return netrt_errorf(err, errlen, \"%s: out of memory for an instance (%" PRId64 " bytes)\");\n"
                "    }\n",
                P, P, P, P, P, (int64_t)sizeof(float) * (m->arena_floats + m->param_floats)); /* no library in double */
        if (ready) fprintf(c, "    %s_prepare(self);\n    self->loaded = true;\n", P);
        fputs("    *out = self;\n    return 0;\n}\n\n", c);
    }

    put_api_decl(m, c, "load_file", args, linkage);
    fprintf(c,
            "\n{\n"
            "    netrt_st_file f;\n"
            "    if (netrt_st_open(path, &f, err, errlen) != 0) return -1;\n"
            "    int rc = %s_load_st(self, &f, path, err, errlen);\n"
            "    netrt_st_close(&f);\n"
            "    if (rc != 0) return -1;\n"
            "    %s_prepare(self);\n"
            "    self->loaded = true;\n"
            "    return 0;\n}\n\n",
            P, P);
    if (!m->t) {
        put_api_decl(m, c, "load_memory", args, linkage);
        fprintf(c,
                "\n{\n"
                "    netrt_st_file f;\n"
                "    if (netrt_st_parse(data, size, \"%s weights in memory\", &f, err, errlen) != 0) return -1;\n"
                "    int rc = %s_load_st(self, &f, \"%s weights in memory\", err, errlen);\n"
                "    netrt_st_close(&f);\n"
                "    if (rc != 0) return -1;\n"
                "    %s_prepare(self);\n"
                "    self->loaded = true;\n"
                "    return 0;\n}\n\n",
                P, P, P, P);
    }

    put_api_decl(m, c, "run", args, linkage);
    fputs("\n{\n    if (!self || !self->loaded) return -1;\n", c);
    Capture cap;
    if (!capture_begin(m, &cap)) {
        m->failed = true;
        return;
    }
    for (int i = 0; i < m->nin; i++) put_copy(m, ref(m, m->in[i]), args[i], shape_numel(&m->in[i]->shape));
    fprintf(m->c, "    %s_forward(self);\n", P);
    for (int i = 0; i < g->noutputs; i++)
        put_copy(m, args[m->nin + i], ref(m, g->outputs[i].v), shape_numel(&g->outputs[i].v->shape));
    fputs("    return 0;\n", m->c);
    char *body = capture_end(m, &cap);
    put_body(m, body, NULL);
    free(body);
    fputs("}\n\n", c);

    if (!m->t) {
        put_api_decl(m, c, "free", args, linkage);
        fprintf(c, "\n{\n    if (!self) return;\n    %s_teardown(self);\n    free(self);\n}\n\n", P);
    }

    /* the program instance's API */
    fprintf(c,
            "/* The program's instance (not thread-safe): the single-instance API. */\n"
            "int %s_load(const char *weights_path)\n{\n"
            "    char err[512];\n"
            "    if (%s_program_init() != 0) {\n"
            "        fprintf(stderr, \"%s: out of memory\\n\");\n"
            "        return -1;\n"
            "    }\n"
            "    if (weights_path) {\n"
            "        if (%s_load_file(&program, weights_path, err, sizeof err) != 0) {\n"
            "            fprintf(stderr, \"%%s\\n\", err);\n"
            "            return -1;\n"
            "        }\n",
            P, P, P, P);
    if (ready)
        fprintf(c, "    } else {\n        %s_program_prepare();\n    }\n", P);
    else
        fprintf(c,
                "    } else {\n"
                "        fprintf(stderr, \"%s: no weights file given\\n\");\n"
                "        return -1;\n"
                "    }\n",
                P);
    fputs("    return 0;\n}\n\n", c);
    put_infer_decl(m, c, args);
    fprintf(c, "\n{\n    (void)%s_run(&program", P);
    for (int i = 0; i < m->nin + g->noutputs; i++) fprintf(c, ", %s", args[i]);
    fputs(");\n}\n", c);
}

/* Each input's and output's macros: NAME and SIZE by position and SIZE by name. */
static void put_io_macros(Emitter *m, FILE *h) {
    Graph *g = m->g;
    const char *U = m->upper;
    fprintf(h, "#define %s_BATCH %d\n#define %s_NINPUTS %d\n#define %s_NOUTPUTS %d\n", U, g->batch, U, m->nin, U,
            g->noutputs);
    for (int i = 0; i < m->nin + g->noutputs; i++) {
        bool in = i < m->nin;
        Value *v = in ? m->in[i] : g->outputs[i - m->nin].v;
        const char *tname = in ? v->name : g->outputs[i - m->nin].name;
        char buf[128];
        char *name = sanitize(g->arena, "", tname);
        for (char *p = name; *p; p++) *p = (char)toupper((unsigned char)*p);
        int k = in ? i : i - m->nin;
        fprintf(h, "#define %s_%s_SIZE %" PRId64 " /* %s %s */\n", U, name, shape_numel(&v->shape),
                in ? "input" : "output", shape_str(&v->shape, buf, sizeof buf));
        fprintf(h, "#define %s_%s%d_SIZE %" PRId64 "\n#define %s_%s%d_NAME ", U, in ? "INPUT" : "OUTPUT", k,
                shape_numel(&v->shape), U, in ? "INPUT" : "OUTPUT", k);
        put_string(h, tname ? tname : "");
        fputc('\n', h);
    }
}

static void emit_header(Emitter *m, const char **args) {
    Graph *g = m->g;
    FILE *h = m->h;
    const char *P = m->prefix, *U = m->upper;
    emit_header_comment(m, h);
    if (m->t) {
        fprintf(h,
                "/* The %s network, compiled for training with batches of %s_BATCH samples.\n"
                " *\n"
                " * Call %s_load(\"weights.safetensors\") once; it prints the error and returns\n"
                " * -1 on failure.  Then each %s_infer call reads one batch of every input and\n"
                " * writes one batch of every output: float32 arrays in C order, [N, ...], of\n"
                " * the _SIZE element counts below.  Not thread-safe: a training graph keeps its\n"
                " * state in file-scope variables.  Link with libnetrt.\n"
                " */\n",
                P, U, P, P);
    } else {
        char in0[64] = "", out0[64] = "";
        snprintf(in0, sizeof in0, "%s", m->nin ? args[0] : "");
        snprintf(out0, sizeof out0, "%s", g->noutputs ? args[m->nin] : "");
        fprintf(h,
                "/* The %s network as a C library, compiled for batches of %s_BATCH samples\n"
                " * (netc build --lib, or netc emit; docs/library.md).\n"
                " *\n"
                " * Instances.  %s_create makes an instance: its own buffers, holding its\n"
                " * inputs, activations and weights.  Instances are independent: each may run\n"
                " * in its own thread at the same time as the others; one instance is used by\n"
                " * one thread at a time.  %s_free frees one.\n"
                " *\n"
                " * Weights.  %s_load_file reads safetensors from a file, %s_load_memory from\n"
                " * a buffer the caller owns (only read during the call).  Every parameter\n"
                " * must be there, with its shape and a float dtype (F32, F64, F16, BF16);\n"
                " * nothing else but batchnorm's num_batches_tracked.  A failed load leaves\n"
                " * the instance as it was.  %s\n"
                " *\n"
                " * Running.  %s_run(self, inputs..., outputs...) reads one batch of every\n"
                " * input and writes one batch of every output: caller-owned float32 arrays in\n"
                " * C order, [N, ...], of the _SIZE element counts below.  It returns 0, or -1\n"
                " * if the instance has no weights yet.  The kernels share libnetrt's thread\n"
                " * pool (netrt_set_threads): when instances run at once, the one that gets\n"
                " * the pool uses it and the others compute in their own threads; the results\n"
                " * are the same bits either way.\n"
                " *\n"
                " * Errors.  The functions that can fail return 0 on success and -1 on failure\n"
                " * with a one-line message in err (errlen bytes; err may be NULL).  They\n"
                " * print nothing and never exit (the only exit: a kernel whose own workspace\n"
                " * cannot be allocated ends the process with a message; docs/library.md).\n"
                " *\n"
                " *     struct %s *net;\n"
                " *     char err[256];\n"
                " *     if (%s_create(&net, err, sizeof err) != 0 ||\n"
                " *         %s_load_file(net, \"weights.safetensors\", err, sizeof err) != 0) {\n"
                " *         fprintf(stderr, \"%%s\\n\", err);\n"
                " *         ...\n"
                " *     }\n"
                " *     %s_run(net, %s, %s);\n"
                " *     %s_free(net);\n"
                " *\n"
                " * Link with this model's code (the library of netc build --lib, or the C of\n"
                " * netc emit) and libnetrt (pkg-config --cflags --libs netrt).\n"
                " */\n",
                P, U, P, P, P, P,
                m->o->embed && m->nparams ? "With the weights embedded (--embed), a new\n * instance has them and is ready to run; loading others gives it its own copy."
                                           : "An instance runs once weights are loaded.",
                P, P, P, P, P, in0, out0, P);
    }
    fprintf(h, "#ifndef NETC_%s_H\n#define NETC_%s_H\n\n#include <stddef.h>\n\n#include \"netrt.h\"\n\n", U, U);
    fputs("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", h);
    put_io_macros(m, h);
    if (!m->t) {
        fprintf(h, "\n/* An instance (opaque). */\nstruct %s;\n\n", P);
        fputs("/* A new instance in *out (NULL on failure); 0 or -1.  Fails if out of memory\n"
              " * or if the CPU lacks the instructions the model was compiled for. */\n", h);
        put_api_decl(m, h, "create", args, "");
        fputs(";\n/* Loads weights (safetensors) from a file; 0 or -1. */\n", h);
        put_api_decl(m, h, "load_file", args, "");
        fputs(";\n/* Loads weights (safetensors) from size bytes at data; 0 or -1. */\n", h);
        put_api_decl(m, h, "load_memory", args, "");
        fputs(";\n/* One batch: inputs -> outputs; 0, or -1 if self has no weights. */\n", h);
        put_api_decl(m, h, "run", args, "");
        fputs(";\n/* Frees an instance (NULL: nothing). */\n", h);
        put_api_decl(m, h, "free", args, "");
        fputs(";\n", h);
    }
    fprintf(h,
            "\n/* The single-instance API (one instance inside, not thread-safe):\n"
            " * %s_load(path, or NULL for embedded weights) prints its error on stderr\n"
            " * and returns -1; %s_infer runs a batch. */\n"
            "int %s_load(const char *weights_path);\n",
            P, P, P);
    put_infer_decl(m, h, args);
    fprintf(h, ";\n\n/* The descriptor libnetrt's netrt_main drives. */\nextern const netrt_model %s_model;\n\n", P);
    if (m->t)
        fprintf(h,
                "/* The training descriptor libnetrt's netrt_train_main and netrt_gradcheck_main\n"
                " * drive; %s_infer runs on its active batch. */\n"
                "extern const netrt_train_model %s_train;\n\n",
                P, P);
    fprintf(h, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

bool emit_c(Graph *g, const EmitOptions *o, FILE *c, FILE *h) {
    /* Everything that can fail is checked before anything is written. */
    bool ok = true;
    const Training *t = train_of(g);
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead && !emit_node_check(g, g->nodes[i])) ok = false;
    if (o->embed && !check_embed(g, o)) ok = false;
    if ((o->main == EMIT_MAIN_TRAIN || o->main == EMIT_MAIN_GRADCHECK) &&
        (!t || !t->labels || !t->loss || !t->logits)) {
        DIAG_INTERNAL("a training program needs a training graph with labels, a loss and "
                         "training logits");
        ok = false;
    }
    if (!ok) return false;

    Emitter m = {.g = g, .t = t, .o = o, .c = c, .h = h};
    m.names.arena = g->arena;
    m.prefix = emit_prefix(g);
    char *upper = arena_strdup(g->arena, m.prefix);
    for (char *p = upper; *p; p++) *p = (char)toupper((unsigned char)*p);
    m.upper = upper;
    static const char *const globals[] = {"init", "prepare", "run", "model", "params", "inputs", "outputs",
                                          "load", "infer", "forward", "setup", "teardown", "load_st",
                                          "param_offsets", "create", "load_file", "load_memory", "free",
                                          "program_init", "program_load", "program_prepare", "program_run",
                                          "program_fini"};
    for (size_t i = 0; i < sizeof globals / sizeof *globals; i++)
        names_add(&m.names, arena_printf(g->arena, "%s_%s", m.prefix, globals[i]));
    static const char *const train_globals[] = {"grad", "update", "set_batch", "reset_state", "train", "grads",
                                                "inits", "input_grads", "labels", "loss", "train_logits",
                                                "frozen", "lr_mult"};
    for (size_t i = 0; m.t && i < sizeof train_globals / sizeof *train_globals; i++)
        names_add(&m.names, arena_printf(g->arena, "%s_%s", m.prefix, train_globals[i]));
    m.in = arena_alloc(g->arena, sizeof *m.in * (size_t)(g->ninputs + 1));
    for (int i = 0; i < g->ninputs; i++)
        if (!m.t || g->inputs[i] != m.t->labels) m.in[m.nin++] = g->inputs[i];
    m.plan = plan_memory(g, !o->no_plan, true);
#ifdef NETC_VERIFY
    if (!plan_check(g, m.plan)) return false;
#endif
    layout(&m);
    m.per_sample = arena_alloc(g->arena, (size_t)m.maxid + 1);
    emit_batched(g, m.per_sample);
    if (m.t) m.batched = m.per_sample;
    const char **args = infer_args(&m);

    emit_header_comment(&m, c);
    fputs("/* The network ", c);
    put_comment_text(c, g->name);
    if (m.t)
        fprintf(c, ", batch %d, as C for training: one function per node, then the runtime glue. */\n", g->batch);
    else
        fprintf(c, ", batch %d, as C: one function per node, then the runtime glue. */\n", g->batch);
    if (o->header_name) {
        /* a header name is not a string literal: no escapes */
        fputs("#include \"", c);
        for (const char *p = o->header_name; *p; p++)
            if (*p != '"' && (unsigned char)*p >= 32) fputc(*p, c);
        fputs("\"\n", c);
    } else {
        fputs("#include \"netrt.h\"\n", c);
    }
    fputs("\n#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n#include \"netrt_math.h\"\n\n", c);
    kreal_prelude(c, o->f64);

    emit_layout_comment(&m);
    emit_params(&m);
    emit_instance_struct(&m);
    emit_nodes(&m);
    emit_runtime(&m);
    emit_infer(&m, args);
    static const char *const mains[] = {
        [EMIT_MAIN_INFER] = "netrt_main(argc, argv, &%s_model)",
        [EMIT_MAIN_TRAIN] = "netrt_train_main(argc, argv, &%s_train)",
        [EMIT_MAIN_GRADCHECK] = "netrt_gradcheck_main(argc, argv, &%s_train)",
    };
    if (o->main != EMIT_MAIN_NONE && (unsigned)o->main < sizeof mains / sizeof *mains) {
        /* main runs before the runtime's CPU check (netrt_cpu_ok, first thing
         * in the call below), so the declaration compiles it for the
         * baseline x86-64 whatever the target's -march: clang and gcc would
         * otherwise be free to use, say, AVX-512 stores in it. */
        fputs("\n/* Compiled for the baseline x86-64 whatever -march says: it runs before the\n"
              " * runtime checks that the CPU has what the rest was compiled for. */\n"
              "NETRT_BASELINE_ISA int main(int argc, char **argv);\n"
              "int main(int argc, char **argv) { return ",
              c);
        fprintf(c, o->mpi && o->main == EMIT_MAIN_TRAIN ? "netrt_mpi_train_main(argc, argv, &%s_train)" : mains[o->main],
                m.prefix);
        fputs("; }\n", c);
    }
    if (h) emit_header(&m, args);

    if (m.failed || ferror(c) || (h && ferror(h))) {
        diag_plain_error("cannot write the emitted C");
        return false;
    }
    return true;
}
