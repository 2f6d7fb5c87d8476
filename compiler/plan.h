/* The memory planner: where each value lives in the emitted program's one
 * activation arena.
 *
 * A value that lives throughout (an input, an output, a derived value, what
 * the training descriptor points at, anything read in another of the
 * emitted functions than the one that writes it) is "kept": it gets its own
 * region at the bottom of the arena.  Every other activation is live from
 * the node that writes it to the last node that reads it, in the order the
 * emitted code runs them (prepare, run, grad, update, each in graph order);
 * activations whose live ranges do not overlap share bytes.  Offsets are
 * chosen greedily, largest value first, each in the smallest gap left by
 * the values already placed that overlap it in time (best fit).
 *
 * The planner is not a pass (compiler/passes/): it does not change the
 * graph, and its result, an offset per value, is no part of the IR; the
 * emitter's layout and `netc stats` call it on the graph they are given.
 *
 * Aliasing (inference graphs, with `alias`): a value may take the region of
 * another instead of one of its own.
 *   - A view: the output of an op whose output is its input's data as it is
 *     (OpRules.view: flatten, reshape, inference dropout) with the input's
 *     size and layout shares the input's region; the node then runs no code.
 *   - In place: the output of an op whose kernel can write over an input
 *     (OpRules.inplace_ok: the elementwise ops, batchnorm) takes the region
 *     of an input of its size and layout that no later node reads (nor any
 *     view of it), unless that region is kept (an input, an output, ...):
 *     the kernel then reads and writes through one pointer (Kernel.inplace).
 * Values so joined form one group with one region, live from the first
 * write of any of them to the last read of any of them, and kept if any of
 * them is; a value whose group is kept sits in the kept part of the arena
 * whether or not it is kept itself (the input of an op writing the net's
 * output in place).
 *
 * Parameters (the param block) and training state (the state block) are not
 * in the arena; `used` still says which of them the program needs. */
#ifndef NETC_PLAN_H
#define NETC_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

/* Every region starts at a multiple of 16 floats (64 bytes). */
enum { PLAN_ALIGN_FLOATS = 16 };

typedef struct MemPlan {
    bool shared;       /* planned; false: a region per value, in value order */
    int nid;           /* the arrays below are indexed by value id, 0 .. nid-1 */
    bool *used;        /* the program needs storage for it (params and state included) */
    bool *kept;        /* in the arena for the whole program: never shares (its group neither) */
    int64_t *off;      /* offset in floats in the arena; -1 for values not in it */
    int64_t *floats;   /* its region's size in floats (rounded up to the alignment) */
    int *first, *last; /* its own live range, as steps (below); -1 for kept values */
    bool alias;        /* views and in-place outputs share their input's region */
    int *view_of;      /* by value id: the input whose region a view's output shares (its node runs no code); -1 */
    int *inplace_of;   /* by value id: the input an in-place output is written over; -1 */
    int nsteps;
    Node **step;       /* the live nodes in the order the emitted code runs them */
    int *func;         /* by step: the emitted function that runs it (0 prepare, 1 run, 2 grad, 3 update) */
    int64_t arena_floats;     /* the arena the plan needs: its peak */
    int64_t kept_floats;      /* the bottom of the arena: the kept values */
    int64_t derived_floats;   /* of the kept: derived values (folded weights), not activations */
    int64_t unplanned_floats; /* the arena with a region per value (no sharing) */
    int64_t live_floats;      /* the most floats live at one step: no plan needs less */
    int nviews, ninplace;     /* values that are views, or written in place */
    int64_t view_floats, inplace_floats; /* their regions' floats, which a copy would need */
} MemPlan;

/* Plans g's arena; with share false every used value gets its own region,
 * in the order of g->values (netc build --no-plan), and alias is ignored;
 * with share and alias, views and in-place outputs share their input's
 * region (inference graphs only: a training graph is planned without).
 * The plan and its arrays are allocated from g's arena (freed with the
 * graph).  Never fails. */
MemPlan *plan_memory(Graph *g, bool share, bool alias);

/* Whether n's output is a view of its input in plan p: the node runs no code. */
bool plan_is_view(const MemPlan *p, const Node *n);
/* Bit i set: n's output is written in place over its input i (Kernel.inplace). */
unsigned plan_inplace(const MemPlan *p, const Node *n);

/* Replays the program's order against the plan: every value a node reads
 * still holds what its writer wrote, no write touches a kept value other
 * than itself and the views of it, and a node's operands do not overlap
 * (the kernels take them as restrict pointers) except an in-place output
 * and the input it is written over, and two inputs that are views of one
 * region (only read); a view has its input's region, size and layout.
 * Reports an internal error and returns false on the first violation. */
bool plan_check(Graph *g, const MemPlan *p);

#endif
