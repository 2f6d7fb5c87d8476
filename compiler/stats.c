/* netc stats: a per-layer table of a graph, and its totals.
 *
 * One row per node: op, instance name, output shape (per sample), its
 * parameters (the V_PARAM inputs it reads, each counted once over the
 * graph) and its multiply-accumulates per sample.  Parameter totals are
 * those of the weights file, so they equal PyTorch's parameter count plus
 * batchnorm running statistics, which are counted apart as PyTorch does
 * (`sum(p.numel() for p in model.parameters())` leaves buffers out).
 *
 * Activation memory is that of the emitted program's arena for the graph
 * after the passes, without the derived values (folded weights) it also
 * holds: the memory plan's peak (plan.c), beside the arena with a region per
 * value (--no-plan), the part of it kept throughout, the most bytes live
 * at one node, under which no plan with the same views and in-place ops can
 * go, and the plan's peak were every view a copy and no op in place; then
 * how many values are views or written in place, and their bytes.  Sizes
 * include the 64-byte alignment of every region. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "stats.h"

/* Multiply-accumulates for one sample of n's output (the op's rule). */
static int64_t macs(const Node *n) { return op_rules(n->op)->macs ? op_rules(n->op)->macs(n) : 0; }

static bool is_buffer(const Value *v) {
    const char *s = strrchr(v->name, '.');
    s = s ? s + 1 : v->name;
    return strcmp(s, "running_mean") == 0 || strcmp(s, "running_var") == 0;
}

void stats_print(Graph *g, FILE *f) {
    char shape[128];
    bool *seen = calloc((size_t)g->nvalues + 1, 1);
    int64_t total_params = 0, total_buffers = 0, total_macs = 0;
    fprintf(f, "%-36s %-16s %-20s %12s %16s\n", "layer", "op", "output", "params", "MACs");
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || op_has(n->op, F_INIT) || n->phase != PHASE_RUN) continue;
        int64_t params = 0;
        for (int j = 0; j < n->nin; j++) {
            Value *v = n->in[j];
            if (v->kind != V_PARAM || seen[v->id]) continue;
            seen[v->id] = true;
            if (is_buffer(v))
                total_buffers += shape_numel(&v->shape);
            else
                params += shape_numel(&v->shape);
        }
        int64_t m = macs(n);
        total_params += params;
        total_macs += m;
        fprintf(f, "%-36s %-16s %-20s %12" PRId64 " %16" PRId64 "\n", n->name, op_name(n->op),
                value_sample_str(n->out[0], shape, sizeof shape), params, m);
    }
    free(seen);
    fprintf(f, "\ntotal: %" PRId64 " parameters (%.2f MB as float32), %" PRId64
               " batchnorm running statistics, %" PRId64 " multiply-accumulates per sample\n",
            total_params, (double)total_params * 4 / 1e6, total_buffers, total_macs);
}

static void put_bytes(FILE *f, const char *label, int64_t floats, const char *what) {
    int64_t bytes = floats * (int64_t)sizeof(float);
    fprintf(f, "  %-14s %12" PRId64 " bytes (%9.2f MB)  %s\n", label, bytes, (double)bytes / 1e6, what);
}

void stats_print_memory(Graph *g, const char *pipeline, FILE *f) {
    MemPlan *planned = plan_memory(g, true, true), *unplanned = plan_memory(g, false, false);
    MemPlan *copies = plan_memory(g, true, false);
    int64_t derived = planned->derived_floats;
    fprintf(f, "\nactivation memory at batch %d, as emitted after %s:\n", g->batch,
            pipeline && pipeline[0] ? pipeline : "no passes");
    put_bytes(f, "planned peak:", planned->arena_floats - derived, "with the memory plan");
    put_bytes(f, "unplanned:", unplanned->arena_floats - derived, "a buffer per value (--no-plan)");
    put_bytes(f, "kept:", planned->kept_floats - derived, "of the peak: inputs, outputs, what lives throughout");
    put_bytes(f, "lower bound:", planned->live_floats - derived, "the most live at one node: no plan needs less");
    put_bytes(f, "no aliasing:", copies->arena_floats - derived, "the plan's peak with views copied, nothing in place");
    if (derived > 0)
        put_bytes(f, "derived:", derived, "folded weights, computed at load, in the same arena");
    fprintf(f, "  views:         %4d values (%9.2f MB) share their input's region: no copy, no code\n", planned->nviews,
            (double)planned->view_floats * sizeof(float) / 1e6);
    fprintf(f, "  in place:      %4d values (%9.2f MB) written over an input no later node reads\n",
            planned->ninplace, (double)planned->inplace_floats * sizeof(float) / 1e6);
}
