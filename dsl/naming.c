/* Instance naming and spelling suggestions.
 *
 * Every op and block instance gets a path ("layer1.0.conv1"): its `as`
 * name or <op><k>, counted per frame, after the frame's prefix; the paths
 * made so far are kept in an open-addressing hash set to report a
 * duplicate.  A name that is not known is matched against the candidates
 * by edit distance for a "did you mean". */
#include "eval_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- instance names ---------------------------------------------------------- */

#define MAX_INSTANCES 1000000 /* op and block instances in one compilation */

static size_t hash_str(const char *s) { /* FNV-1a */
    size_t h = 14695981039346656037u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The instance name of an op or block call: the `as` name, or <what><k>. */
const char *instance_name(Eval *e, const char *what, const char *as_name, Span sp) {
    const char *local = as_name;
    if (!local) {
        Counter *c;
        for (c = e->frame->unnamed; c; c = c->next)
            if (strcmp(c->what, what) == 0) break;
        if (!c) {
            c = arena_alloc(e->arena, sizeof *c);
            c->what = what;
            c->next = e->frame->unnamed;
            e->frame->unnamed = c;
        }
        local = arena_printf(e->arena, "%s%d", what, c->n++);
    }
    const char *path = arena_printf(e->arena, "%s%s", e->frame->prefix, local);
    if (e->ninstances >= MAX_INSTANCES)
        eval_fail(e, sp, "the net expands to more than %d op and block instances", MAX_INSTANCES);
    if (2 * (e->ninstances + 1) > e->cap_instances) { /* grow and rehash */
        size_t cap = e->cap_instances ? 2 * e->cap_instances : 256;
        Instance **t = calloc(cap, sizeof *t);
        if (!t) {
            DIAG_INTERNAL("out of memory");
            longjmp(e->fail, 1);
        }
        for (size_t i = 0; i < e->cap_instances; i++) {
            Instance *in = e->instances[i];
            if (!in) continue;
            size_t h = hash_str(in->path) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = in;
        }
        free(e->instances);
        e->instances = t;
        e->cap_instances = cap;
    }
    size_t h = hash_str(path) & (e->cap_instances - 1);
    for (; e->instances[h]; h = (h + 1) & (e->cap_instances - 1)) {
        const Instance *in = e->instances[h];
        if (strcmp(in->path, path) == 0) {
            diag_error(sp, "duplicate name '%s'", path);
            diag_note(in->span, "'%s' was first used here", path);
            eval_bail(e);
        }
    }
    Instance *in = arena_alloc(e->arena, sizeof *in);
    in->path = path;
    in->span = sp;
    if (!e->watched_path && sp.begin == e->watched_call.begin && sp.end == e->watched_call.end)
        e->watched_path = path;
    e->instances[h] = in;
    e->ninstances++;
    return path;
}

/* ---- suggestions ------------------------------------------------------------- */

/* Edit distance between a and b, or a large number when they are long. */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 1000;
    int row[64];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* Keeps the closest candidate to name, if close enough to be a typo. */
void consider_suggestion(const char *name, const char *cand, const char **best, int *best_d) {
    int d = edit_distance(name, cand);
    int len = (int)strlen(name), max = len <= 2 ? 0 : len <= 5 ? 1 : len <= 8 ? 2 : 3;
    if (d > 0 && d <= max && d < *best_d) {
        *best = cand;
        *best_d = d;
    }
}
