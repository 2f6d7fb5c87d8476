/* The memory planner (plan.h): live ranges over the emitted order, views
 * and in-place outputs joined to their inputs, kept values at the bottom of
 * the arena, then a greedy best-fit placement of the others, largest first
 * (and in two other orders, the best kept).
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
 * that node, and cannot give its bytes to the node's outputs, except
 * where the plan says so (aliasing, below) and the kernel is written for it.
 *
 * Aliasing, in an inference graph (a training graph's backward pass reads
 * forward values the planner would have to keep apart; it is planned as
 * before), joins values into groups that share one region:
 *   1. views, in the run order: a node whose op is a view (OpRules.view)
 *      and whose output has its input's size and layout joins its output to
 *      its input's group;
 *   2. in place, in the run order: a node whose op can run in place
 *      (OpRules.inplace_ok), with one output, joins its output's group to
 *      the group of an input (the first that qualifies) that has the
 *      output's shape and layout, is read by no later node (nor is any
 *      value of its group), is not kept (nor any value of its group), and
 *      is not the node's other input or in that input's group;
 * then each group is placed as one value: its size the largest of its
 * values', its live range from the first write of any of them to the last
 * read of any, kept if any is kept.  Views never write, so a view of a kept
 * value (an input) is safe; an in-place write never touches a kept value
 * other than its own output and that output's views. */
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
            mark(used, t->params[i].moment1);
            mark(used, t->params[i].moment2);
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

/* Other orders place_best tries: the most floats times steps first; the
 * longest-lived first. */
static int by_area(const void *a, const void *b) {
    const Item *x = a, *y = b;
    int64_t ax = x->floats * (x->last - x->first + 1), ay = y->floats * (y->last - y->first + 1);
    if (ax != ay) return ax > ay ? -1 : 1;
    return by_size(a, b);
}

static int by_length(const void *a, const void *b) {
    const Item *x = a, *y = b;
    if (x->last - x->first != y->last - y->first) return x->last - x->first > y->last - y->first ? -1 : 1;
    return by_size(a, b);
}

static bool overlap_in_time(const Item *a, const Item *b) { return a->first <= b->last && b->first <= a->last; }

/* Places the items in their order (place_best sorts them) in the shared
 * region: each goes into the smallest gap, between the regions of the
 * already placed items that are live at the same time, that holds it, or
 * above all of them.  Returns the region's size. */
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

/* Union-find over value ids: the group a value's region belongs to. */
static int group_of(int *parent, int id) {
    while (parent[id] != id) id = parent[id] = parent[parent[id]];
    return id;
}

static bool in_arena_act(const MemPlan *p, const Value *v) {
    return p->used[v->id] && (v->kind == V_ACT || v->kind == V_INPUT);
}

/* Step 1 of the aliasing (plan.c's comment): views. */
static void find_views(MemPlan *p, int *parent) {
    for (int s = 0; s < p->nsteps; s++) {
        const Node *n = p->step[s];
        if (p->func[s] != 1 || !op_rules(n->op)->view || n->nin < 1 || n->nout != 1) continue;
        const Value *x = n->in[0], *y = n->out[0];
        if (!in_arena_act(p, x) || !in_arena_act(p, y) || x->cblock != y->cblock ||
            value_numel(x) != value_numel(y))
            continue;
        parent[group_of(parent, y->id)] = group_of(parent, x->id);
        p->view_of[y->id] = x->id;
    }
}

/* Step 2: in place.  gkept and glast are by group (root id): whether a
 * value of the group is kept, and the last step reading one. */
static void find_inplace(MemPlan *p, int *parent, bool *gkept, int *glast) {
    for (int s = 0; s < p->nsteps; s++) {
        const Node *n = p->step[s];
        if (p->func[s] != 1 || !op_rules(n->op)->inplace_ok || n->nout != 1) continue;
        const Value *y = n->out[0];
        if (!in_arena_act(p, y)) continue;
        for (int j = 0; j < n->nin; j++) {
            const Value *x = n->in[j];
            if (!in_arena_act(p, x) || x->kind != V_ACT || x->cblock != y->cblock || !shape_eq(&x->shape, &y->shape))
                continue;
            int gx = group_of(parent, x->id), gy = group_of(parent, y->id);
            if (gkept[gx] || glast[gx] != s || gx == gy) continue;
            bool apart = true; /* no other input of n in x's group (x + x, x + view of x) */
            for (int k = 0; k < n->nin; k++)
                if (k != j && group_of(parent, n->in[k]->id) == gx) apart = false;
            if (!apart) continue;
            parent[gy] = gx;
            gkept[gx] |= gkept[gy];
            if (glast[gy] > glast[gx]) glast[gx] = glast[gy];
            p->inplace_of[y->id] = x->id;
            break;
        }
    }
}

/* Places the items in each of the orders above and keeps the smallest
 * region (the first order's on a tie): greedy placement can leave gaps that
 * another order avoids, more often with the long live ranges of groups. */
static int64_t place_best(Item *items, int n, Arena *arena) {
    static int (*const orders[])(const void *, const void *) = {by_size, by_area, by_length};
    Item *best = arena_alloc(arena, sizeof *best * (size_t)(n ? n : 1));
    int64_t best_top = -1;
    for (size_t o = 0; o < sizeof orders / sizeof *orders; o++) {
        qsort(items, (size_t)n, sizeof *items, orders[o]);
        int64_t top = place(items, n, arena);
        if (best_top < 0 || top < best_top) {
            best_top = top;
            memcpy(best, items, sizeof *items * (size_t)n);
        }
    }
    memcpy(items, best, sizeof *items * (size_t)n);
    return best_top;
}

MemPlan *plan_memory(Graph *g, bool share, bool alias) {
    Arena *A = g->arena;
    MemPlan *p = arena_alloc(A, sizeof *p);
    p->shared = share;
    p->alias = share && alias && !train_of(g);
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
    p->view_of = arena_alloc(A, sizeof *p->view_of * cap);
    p->inplace_of = arena_alloc(A, sizeof *p->inplace_of * cap);
    int *def_step = arena_alloc(A, sizeof *def_step * cap);
    for (int i = 0; i < nid; i++)
        p->off[i] = p->first[i] = p->last[i] = def_step[i] = p->view_of[i] = p->inplace_of[i] = -1;
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

    /* the groups (plan.c's comment); without aliasing, one per value */
    int *parent = arena_alloc(A, sizeof *parent * cap);
    bool *gkept = arena_alloc(A, cap);
    int *gfirst = arena_alloc(A, sizeof *gfirst * cap), *glast = arena_alloc(A, sizeof *glast * cap);
    int64_t *gfloats = arena_alloc(A, sizeof *gfloats * cap), *goff = arena_alloc(A, sizeof *goff * cap);
    for (int i = 0; i < nid; i++) {
        parent[i] = i;
        goff[i] = -1;
    }
    if (p->alias) find_views(p, parent);
    for (int i = 0; i < nid; i++) gfirst[i] = glast[i] = -1;
    for (int i = 0; i < g->nvalues; i++) { /* the groups after the views */
        const Value *v = g->values[i];
        if (!p->used[v->id] || !in_arena(v)) continue;
        int r = group_of(parent, v->id);
        gkept[r] |= p->kept[v->id];
        if (p->last[v->id] > glast[r]) glast[r] = p->last[v->id];
    }
    if (p->alias) find_inplace(p, parent, gkept, glast);
    for (int i = 0; i < g->nvalues; i++) { /* the final groups */
        const Value *v = g->values[i];
        if (!p->used[v->id] || !in_arena(v)) continue;
        int r = group_of(parent, v->id);
        gkept[r] |= p->kept[v->id];
        if (p->floats[v->id] > gfloats[r]) gfloats[r] = p->floats[v->id];
        if (p->first[v->id] >= 0 && (gfirst[r] < 0 || p->first[v->id] < gfirst[r])) gfirst[r] = p->first[v->id];
        if (p->last[v->id] > glast[r]) glast[r] = p->last[v->id];
        if (p->view_of[v->id] >= 0) {
            p->nviews++;
            p->view_floats += p->floats[v->id];
        }
        if (p->inplace_of[v->id] >= 0) {
            p->ninplace++;
            p->inplace_floats += p->floats[v->id];
        }
    }

    /* the kept groups (every used value, without sharing), in value order */
    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        int r = group_of(parent, v->id);
        if (!p->used[v->id] || !in_arena(v) || (share && !gkept[r])) continue;
        if (goff[r] < 0) {
            goff[r] = p->kept_floats;
            p->kept_floats += gfloats[r];
            if (v->kind == V_DERIVED) p->derived_floats += gfloats[r];
        }
        p->off[v->id] = goff[r];
    }
    if (!share) {
        for (int i = 0; i < nid; i++) {
            p->kept[i] = p->off[i] >= 0;
            p->first[i] = p->last[i] = -1;
        }
        p->arena_floats = p->live_floats = p->kept_floats;
        return p;
    }

    /* the other groups, placed above them */
    int nitems = 0;
    Item *items = arena_alloc(A, sizeof *items * cap);
    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (p->used[v->id] && in_arena(v) && group_of(parent, v->id) == v->id && !gkept[v->id] && gfirst[v->id] >= 0)
            items[nitems++] = (Item){v->id, gfloats[v->id], gfirst[v->id], glast[v->id], 0};
    }
    p->arena_floats = p->kept_floats + place_best(items, nitems, A);
    for (int i = 0; i < nitems; i++) goff[items[i].id] = p->kept_floats + items[i].off;
    for (int i = 0; i < g->nvalues; i++) {
        const Value *v = g->values[i];
        if (p->used[v->id] && in_arena(v) && !gkept[group_of(parent, v->id)])
            p->off[v->id] = goff[group_of(parent, v->id)];
    }

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
    /* Aliasing takes bytes out of every step, but its longer live ranges
     * may place worse: never plan a larger arena than without it. */
    if (p->alias) {
        MemPlan *plain = plan_memory(g, true, false);
        if (plain->arena_floats < p->arena_floats) return plain;
    }
    return p;
}

bool plan_is_view(const MemPlan *p, const Node *n) {
    return n->nout == 1 && n->out[0]->id < p->nid && p->view_of[n->out[0]->id] >= 0;
}

unsigned plan_inplace(const MemPlan *p, const Node *n) {
    if (n->nout != 1 || n->out[0]->id >= p->nid || p->inplace_of[n->out[0]->id] < 0) return 0;
    for (int j = 0; j < n->nin; j++)
        if (n->in[j]->id == p->inplace_of[n->out[0]->id]) return 1u << j;
    return 0;
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

/* The value whose region v takes (a view's input, or the input an in-place
 * output is written over), or -1. */
static int alias_parent(const MemPlan *p, int id) {
    return p->view_of[id] >= 0 ? p->view_of[id] : p->inplace_of[id];
}

/* Whether u takes its region from w, through views and in-place writes. */
static bool derives_from(const MemPlan *p, int u, int w) {
    for (int a = alias_parent(p, u); a >= 0; a = alias_parent(p, a))
        if (a == w) return true;
    return false;
}

/* Whether u and w are in one aliasing group (the same root). */
static bool same_group(const MemPlan *p, int u, int w) {
    while (alias_parent(p, u) >= 0) u = alias_parent(p, u);
    while (alias_parent(p, w) >= 0) w = alias_parent(p, w);
    return u == w;
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
            if (p->kept[vals[i]->id] && p->kept[vals[k]->id] && bytes_overlap(p, vals[i], vals[k]) &&
                !same_group(p, vals[i]->id, vals[k]->id)) {
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
        if (plan_is_view(p, n)) {
            /* no code runs: the output is the input's bytes under another shape */
            const Value *x = n->in[0], *y = n->out[0];
            if (!op_rules(n->op)->view || p->view_of[y->id] != x->id || p->off[x->id] != p->off[y->id] ||
                value_numel(x) != value_numel(y) || x->cblock != y->cblock)
                return plan_error("a view does not have its input's region, size and layout", n, y, x);
            valid[y->id] = true;
            written_by[y->id] = p->func[s];
            continue;
        }
        unsigned inplace = plan_inplace(p, n);
        if (inplace && !op_rules(n->op)->inplace_ok)
            return plan_error("an op without an in-place kernel is planned in place", n, n->out[0], NULL);
        /* Operands overlap only where the kernel allows it: an in-place output
         * and its input, or two inputs that are views of one region (both
         * only read, as in x + x). */
        unsigned written_in = op_rules(n->op)->written_inputs;
        for (int a = 0; a < nops; a++)
            for (int b = a + 1; b < nops; b++) {
                bool paired = b >= n->nin && a < n->nin && (inplace >> a & 1) && p->inplace_of[ops[b]->id] == ops[a]->id;
                bool read_only = b < n->nin && !(written_in >> a & 1) && !(written_in >> b & 1) &&
                                 p->off[ops[a]->id] == p->off[ops[b]->id] && same_group(p, ops[a]->id, ops[b]->id);
                if (ops[a] != ops[b] && p->off[ops[a]->id] >= 0 && p->off[ops[b]->id] >= 0 &&
                    bytes_overlap(p, ops[a], ops[b]) && !paired && !read_only)
                    return plan_error("operands of one node overlap", n, ops[a], ops[b]);
            }
        for (int j = 0; j < n->nin; j++)
            if ((inplace >> j & 1) && (p->off[n->in[j]->id] != p->off[n->out[0]->id] ||
                                       !shape_eq(&n->in[j]->shape, &n->out[0]->shape) ||
                                       n->in[j]->cblock != n->out[0]->cblock))
                return plan_error("an in-place output does not have its input's region, shape and layout", n,
                                  n->out[0], n->in[j]);
        unsigned written = op_rules(n->op)->written_inputs;
        for (int a = 0; a < nops; a++) {
            const Value *w = ops[a];
            bool writes = a >= n->nin || (written >> a & 1);
            if (!writes || p->off[w->id] < 0) continue;
            for (int k = 0; k < nvals; k++) {
                const Value *u = vals[k];
                if (u == w || !bytes_overlap(p, u, w)) continue;
                if (derives_from(p, u->id, w->id)) continue; /* a view of w, or written over w later */
                if (p->kept[u->id]) return plan_error("a write overwrites a kept value", n, w, u);
                valid[u->id] = false;
            }
            valid[w->id] = true;
            written_by[w->id] = p->func[s];
        }
    }
    return true;
}
