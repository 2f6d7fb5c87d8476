/* The memory planner (plan.h): live ranges over the emitted order, kept
 * values at the bottom of the arena, then a greedy best-fit placement of the
 * others, largest first.
 *
 * Why not a pass: a pass edits the graph and returns whether it changed
 * anything; the planner changes nothing and produces offsets that only the
 * emitter and `netc stats` read, for the graph exactly as it will be
 * emitted (after every pass).  So it is a function of the final graph, like
 * the emitter's layout, and its result lives in the graph's arena beside it.
 *
 * Requires: a verified graph (topological order within each phase; every
 * value a live node reads is an input, a parameter, state, or written by an
 * earlier live node of the same or an earlier-run function).
 * The emitted kernels write only their outputs, plus the inputs that
 * the ops' written_inputs name (parameters and state, never in the arena), and
 * initialize every output element they own before reading it back; they take
 * their operands as restrict pointers, so a node's inputs and outputs never
 * share bytes: a value read for the last time by a node is still live at
 * that node, and cannot give its bytes to the node's outputs. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "train.h"

static int64_t align_up(int64_t n) { return (n + PLAN_ALIGN_FLOATS - 1) / PLAN_ALIGN_FLOATS * PLAN_ALIGN_FLOATS; }

/* Which emitted function runs n: 0 prepare (F_INIT nodes), 1 run, and in a
 * training graph 2 grad, 3 update.  Each function runs its nodes in graph
 * order; the functions themselves run in any order, any number of times. */
static int function_of(const Graph *g, const Node *n) {
    if (op_has(n->op, F_INIT)) return 0;
    if (!train_of(g)) return 1;
    switch (n->phase) {
    case PHASE_RUN: return 1;
    case PHASE_GRAD: return 2;
    case PHASE_UPDATE: return 3;
    }
    return 1;
}

static void mark(bool *a, const Value *v) {
    if (v) a[v->id] = true;
}

/* The values the program needs storage for, as the emitter's layout has
 * always decided: the inputs, the graph outputs, every operand of a live
 * node, and in a training graph what its descriptor points at (the training
 * record: labels, loss, training logits, gradients and velocities of
 * parameters, gradients of inputs). */
static void find_used(const Graph *g, bool *used) {
    for (int i = 0; i < g->ninputs; i++) mark(used, g->inputs[i]);
    const Training *t = train_of(g);
    if (t) {
        mark(used, t->labels);
        mark(used, t->loss);
        mark(used, t->logits);
        for (int i = 0; i < t->nparams; i++) {
            mark(used, t->params[i].grad);
            mark(used, t->params[i].velocity);
        }
        for (int i = 0; i < t->ninputs; i++) mark(used, t->inputs[i].grad);
    }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->nin; j++) mark(used, n->in[j]);
        for (int j = 0; j < n->nout; j++) mark(used, n->out[j]);
    }
    for (int i = 0; i < g->noutputs; i++) mark(used, g->outputs[i].v);
}

static bool in_arena(const Value *v) { return v->kind != V_PARAM && v->kind != V_STATE; }

/* Kept values: all but the activations that one emitted function writes and
 * reads within a call, and nothing outside reads. */
static void find_kept(const Graph *g, MemPlan *p, const int *func_of_step, int *def_step) {
    bool *kept = p->kept;
    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (p->used[v->id] && in_arena(v) && (v->kind != V_ACT || def_step[v->id] < 0)) kept[v->id] = true;
    }
    /* what the runtime reads or writes from outside the emitted functions */
    for (int i = 0; i < g->noutputs; i++) mark(kept, g->outputs[i].v);
    const Training *t = train_of(g);
    if (t) {
        mark(kept, t->labels);
        mark(kept, t->loss);
        mark(kept, t->logits);
        for (int i = 0; i < t->nparams; i++) mark(kept, t->params[i].grad);
        for (int i = 0; i < t->ninputs; i++) mark(kept, t->inputs[i].grad);
    }
    /* what one function leaves for another, or for its own next call */
    for (int s = 0; s < p->nsteps; s++) {
        const Node *n = p->step[s];
        for (int j = 0; j < n->nin; j++) {
            const Value *v = n->in[j];
            int d = def_step[v->id];
            if (d >= 0 && (func_of_step[d] != func_of_step[s] || d >= s)) kept[v->id] = true;
        }
        if (func_of_step[s] == 0)
            for (int j = 0; j < n->nout; j++) kept[n->out[j]->id] = true;
    }
    for (int i = 0; i < g->nvalues; i++)
        if (!in_arena(g->values[i])) kept[g->values[i]->id] = false;
}

/* A candidate for sharing, and the order in which they are placed: largest
 * first, then earliest, then by id (a deterministic plan). */
typedef struct Item {
    int id;
    int64_t floats;
    int first, last;
    int64_t off; /* from the start of the shared region */
} Item;

static int by_size(const void *a, const void *b) {
    const Item *x = a, *y = b;
    if (x->floats != y->floats) return x->floats > y->floats ? -1 : 1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool overlap_in_time(const Item *a, const Item *b) { return a->first <= b->last && b->first <= a->last; }

/* Places the items (sorted by by_size) in the shared region: each goes into
 * the smallest gap, between the regions of the already placed items that are
 * live at the same time, that holds it, or above all of them.  Returns the
 * region's size. */
static int64_t place(Item *items, int n, Arena *arena) {
    Item **placed = arena_alloc(arena, sizeof *placed * (size_t)(n ? n : 1)); /* by offset */
    int nplaced = 0;
    int64_t top = 0;
    for (int i = 0; i < n; i++) {
        Item *it = &items[i];
        int64_t best = -1, best_gap = INT64_MAX, end = 0;
        for (int k = 0; k < nplaced; k++) {
            const Item *q = placed[k];
            if (!overlap_in_time(q, it)) continue;
            int64_t gap = q->off - end;
            if (gap >= it->floats && gap < best_gap) {
                best = end;
                best_gap = gap;
            }
            if (q->off + q->floats > end) end = q->off + q->floats;
        }
        it->off = best >= 0 ? best : end;
        if (it->off + it->floats > top) top = it->off + it->floats;
        int k = nplaced;
        while (k > 0 && (placed[k - 1]->off > it->off ||
                         (placed[k - 1]->off == it->off && placed[k - 1]->floats > it->floats)))
            k--;
        memmove(placed + k + 1, placed + k, sizeof *placed * (size_t)(nplaced - k));
        placed[k] = it;
        nplaced++;
    }
    return top;
}

MemPlan *plan_memory(Graph *g, bool share) {
    Arena *A = g->arena;
    MemPlan *p = arena_alloc(A, sizeof *p);
    p->shared = share;
    int maxid = -1;
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->id > maxid) maxid = g->values[i]->id;
    int nid = p->nid = maxid + 1;
    size_t cap = (size_t)(nid ? nid : 1);
    p->used = arena_alloc(A, cap);
    p->kept = arena_alloc(A, cap);
    p->off = arena_alloc(A, sizeof *p->off * cap);
    p->floats = arena_alloc(A, sizeof *p->floats * cap);
    p->first = arena_alloc(A, sizeof *p->first * cap);
    p->last = arena_alloc(A, sizeof *p->last * cap);
    int *def_step = arena_alloc(A, sizeof *def_step * cap);
    for (int i = 0; i < nid; i++) p->off[i] = p->first[i] = p->last[i] = def_step[i] = -1;
    find_used(g, p->used);

    /* the steps: prepare, run, grad, update, each in graph order */
    p->step = arena_alloc(A, sizeof *p->step * (size_t)(g->nnodes ? g->nnodes : 1));
    int *func_of_step = p->func = arena_alloc(A, sizeof *p->func * (size_t)(g->nnodes ? g->nnodes : 1));
    for (int f = 0; f < 4; f++)
        for (int i = 0; i < g->nnodes; i++) {
            Node *n = g->nodes[i];
            if (n->dead || function_of(g, n) != f) continue;
            func_of_step[p->nsteps] = f;
            p->step[p->nsteps++] = n;
        }
    for (int s = 0; s < p->nsteps; s++)
        for (int j = 0; j < p->step[s]->nout; j++) {
            const Value *v = p->step[s]->out[j];
            if (def_step[v->id] < 0) def_step[v->id] = s;
        }
    find_kept(g, p, func_of_step, def_step);

    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (p->used[v->id] && in_arena(v)) {
            p->floats[v->id] = align_up(value_numel(v));
            p->unplanned_floats += p->floats[v->id];
        }
    }

    /* live ranges of the values that may share: from the writer to the last reader */
    for (int s = 0; s < p->nsteps; s++) {
        const Node *n = p->step[s];
        for (int j = 0; j < n->nout; j++) {
            const Value *v = n->out[j];
            if (!p->kept[v->id] && p->first[v->id] < 0) p->first[v->id] = p->last[v->id] = s;
        }
        for (int j = 0; j < n->nin; j++) {
            const Value *v = n->in[j];
            if (!p->kept[v->id] && p->first[v->id] >= 0 && s > p->last[v->id]) p->last[v->id] = s;
        }
    }

    /* a value that would share but has no live range (none in a verified graph) is kept */
    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (p->used[v->id] && in_arena(v) && p->first[v->id] < 0) p->kept[v->id] = true;
    }

    /* the kept values (every used value, without sharing), in value order */
    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (!p->used[v->id] || !in_arena(v) || (share && !p->kept[v->id])) continue;
        p->off[v->id] = p->kept_floats;
        p->kept_floats += p->floats[v->id];
        if (v->kind == V_DERIVED) p->derived_floats += p->floats[v->id];
    }
    if (!share) {
        for (int i = 0; i < nid; i++) {
            p->kept[i] = p->off[i] >= 0;
            p->first[i] = p->last[i] = -1;
        }
        p->arena_floats = p->live_floats = p->kept_floats;
        return p;
    }

    /* the others, placed above them */
    int nitems = 0;
    Item *items = arena_alloc(A, sizeof *items * cap);
    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (p->used[v->id] && in_arena(v) && !p->kept[v->id] && p->first[v->id] >= 0)
            items[nitems++] = (Item){v->id, p->floats[v->id], p->first[v->id], p->last[v->id], 0};
    }
    qsort(items, (size_t)nitems, sizeof *items, by_size);
    p->arena_floats = p->kept_floats + place(items, nitems, A);
    for (int i = 0; i < nitems; i++) p->off[items[i].id] = p->kept_floats + items[i].off;

    /* the lower bound: the most floats live at one step */
    int64_t *delta = arena_alloc(A, sizeof *delta * (size_t)(p->nsteps + 1));
    for (int i = 0; i < nitems; i++) {
        delta[items[i].first] += items[i].floats;
        delta[items[i].last + 1] -= items[i].floats;
    }
    int64_t live = 0, most = 0;
    for (int s = 0; s < p->nsteps; s++) {
        live += delta[s];
        if (live > most) most = live;
    }
    p->live_floats = p->kept_floats + most;
    return p;
}

/* ---- the check ------------------------------------------------------------------ */

static bool bytes_overlap(const MemPlan *p, const Value *a, const Value *b) {
    int64_t a0 = p->off[a->id], b0 = p->off[b->id];
    return p->floats[a->id] > 0 && p->floats[b->id] > 0 && a0 < b0 + p->floats[b->id] && b0 < a0 + p->floats[a->id];
}

static bool plan_error(const char *what, const Node *n, const Value *v, const Value *w) {
    DIAG_INTERNAL("memory plan: %s at node '%s' (%s): '%s' (v%d) and '%s' (v%d)", what, n->name ? n->name : "",
                  op_name(n->op), v->name ? v->name : "?", v->id, w && w->name ? w->name : "?", w ? w->id : -1);
    return false;
}

bool plan_check(Graph *g, const MemPlan *p) {
    /* the arena values, and whether each still holds what was written to it */
    Value **vals = arena_alloc(g->arena, sizeof *vals * (size_t)(g->nvalues ? g->nvalues : 1));
    bool *valid = arena_alloc(g->arena, (size_t)(p->nid ? p->nid : 1));
    int *written_by = arena_alloc(g->arena, sizeof *written_by * (size_t)(p->nid ? p->nid : 1)); /* function */
    int nvals = 0;
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->id < 0 || v->id >= p->nid || p->off[v->id] < 0) continue;
        if (p->off[v->id] + p->floats[v->id] > p->arena_floats) {
            DIAG_INTERNAL("memory plan: '%s' (v%d) ends beyond the arena", v->name ? v->name : "?", v->id);
            return false;
        }
        vals[nvals++] = v;
        valid[v->id] = p->kept[v->id]; /* written by the runtime or by an earlier function */
    }
    for (int i = 0; i < nvals; i++)
        for (int k = i + 1; k < nvals; k++)
            if (p->kept[vals[i]->id] && p->kept[vals[k]->id] && bytes_overlap(p, vals[i], vals[k])) {
                DIAG_INTERNAL("memory plan: kept values '%s' (v%d) and '%s' (v%d) overlap",
                              vals[i]->name ? vals[i]->name : "?", vals[i]->id,
                              vals[k]->name ? vals[k]->name : "?", vals[k]->id);
                return false;
            }
    for (int s = 0; s < p->nsteps; s++) {
        const Node *n = p->step[s];
        const Value *ops[IR_MAX_IN + IR_MAX_OUT];
        int nops = 0;
        for (int j = 0; j < n->nin; j++) ops[nops++] = n->in[j];
        for (int j = 0; j < n->nout; j++) ops[nops++] = n->out[j];
        for (int j = 0; j < n->nin; j++) {
            const Value *v = n->in[j];
            if (p->off[v->id] < 0) continue;
            if (!valid[v->id]) return plan_error("a value is read after its region was overwritten", n, v, NULL);
            if (!p->kept[v->id] && written_by[v->id] != p->func[s])
                return plan_error("a shared value is read by another function than its writer's", n, v, NULL);
        }
        for (int a = 0; a < nops; a++)
            for (int b = a + 1; b < nops; b++)
                if (ops[a] != ops[b] && p->off[ops[a]->id] >= 0 && p->off[ops[b]->id] >= 0 &&
                    bytes_overlap(p, ops[a], ops[b]))
                    return plan_error("operands of one node overlap", n, ops[a], ops[b]);
        unsigned written = op_rules(n->op)->written_inputs;
        for (int a = 0; a < nops; a++) {
            const Value *w = ops[a];
            bool writes = a >= n->nin || (written >> a & 1);
            if (!writes || p->off[w->id] < 0) continue;
            for (int k = 0; k < nvals; k++) {
                const Value *u = vals[k];
                if (u == w || !bytes_overlap(p, u, w)) continue;
                if (p->kept[u->id]) return plan_error("a write overwrites a kept value", n, w, u);
                valid[u->id] = false;
            }
            valid[w->id] = true;
            written_by[w->id] = p->func[s];
        }
    }
    return true;
}
