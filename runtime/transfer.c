/* Transfer learning in the trainer (docs/training.md, "Transfer learning"):
 * --load with --partial, the --lr-for parameter groups, the --classes and
 * --per-class data filter, and the count of frozen parameters.  train.c
 * calls these; the freezing itself is compiled into the program (the net's
 * `freeze` statement, netc build --freeze). */
#define _POSIX_C_SOURCE 200809L

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

/* ---- --load F --partial ------------------------------------------------------ */

/* Prints "  <what> (n): a, b, c" or "...: -" for none. */
static void print_list(FILE *out, const char *what, int n, const char *const *names, const char *const *notes) {
    fprintf(out, "  %s (%d):", what, n);
    for (int i = 0; i < n; i++) fprintf(out, "%s %s%s", i ? "," : "", names[i], notes && notes[i] ? notes[i] : "");
    fputs(n ? "\n" : " -\n", out);
}

int netrt_load_partial(const netrt_model *m, const char *path, bool *loaded, FILE *out, char *err, size_t errlen) {
    netrt_st_file f;
    if (netrt_st_open(path, &f, err, errlen) < 0) return -1;
    int np = m->nparams, rc = 0;
    const char **ok = calloc((size_t)np + 1, sizeof *ok), **init = calloc((size_t)np + 1, sizeof *init);
    const char **skip = calloc((size_t)np + 1, sizeof *skip), **why = calloc((size_t)np + 1, sizeof *why);
    const char **extra = calloc((size_t)f.count + 1, sizeof *extra);
    char *notes = malloc((size_t)np * 128 + 1);
    int nok = 0, ninit = 0, nskip = 0, nextra = 0;
    if (!ok || !init || !skip || !why || !extra || !notes) {
        rc = netrt_errorf(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < np; i++) {
        const netrt_tensor *p = &m->params[i];
        const netrt_st_entry *e = netrt_st_find(&f, p->name);
        loaded[i] = false;
        if (!e) {
            init[ninit++] = p->name;
        } else if (!netrt_dtype_is_float(e->dtype)) {
            rc = netrt_errorf(err, errlen, "%s: tensor '%s' is %s, not a float type", path, p->name,
                              netrt_dtype_name(e->dtype));
            goto done;
        } else if (!netrt_same_shape(e->rank, e->shape, p->rank, p->shape)) {
            char a[64], b[64], *note = notes + (size_t)nskip * 128;
            snprintf(note, 128, " %s (the file's %s)", netrt_shape_str(p->rank, p->shape, a, sizeof a),
                     netrt_shape_str(e->rank, e->shape, b, sizeof b));
            why[nskip] = note;
            skip[nskip++] = p->name;
        } else {
            netrt_st_entry_to_f32(e, p->data);
            loaded[i] = true;
            ok[nok++] = p->name;
        }
    }
    for (int k = 0; k < f.count; k++) {
        const char *name = f.entries[k].name;
        bool known = false;
        for (int i = 0; i < np && !known; i++) known = strcmp(m->params[i].name, name) == 0;
        size_t len = strlen(name), tail = strlen(".num_batches_tracked");
        if (!known && !(len > tail && strcmp(name + len - tail, ".num_batches_tracked") == 0)) extra[nextra++] = name;
    }
    fprintf(out, "partial load from %s:\n", path);
    print_list(out, "loaded", nok, ok, NULL);
    print_list(out, "initialized, not in the file", ninit, init, NULL);
    print_list(out, "skipped, shapes differ (initialized)", nskip, skip, why);
    print_list(out, "in the file, not in the net (ignored)", nextra, extra, NULL);
    fflush(out);
done:
    free(ok);
    free(init);
    free(skip);
    free(why);
    free(extra);
    free(notes);
    netrt_st_close(&f);
    return rc;
}

/* ---- --lr-for PATTERN=RATE ------------------------------------------------------- */

int netrt_lr_group_parse(const char *val, netrt_lr_group *g, char *err, size_t errlen) {
    const char *eq = strrchr(val, '=');
    char *end;
    if (!eq || eq == val)
        return netrt_errorf(err, errlen, "--lr-for: expected PATTERN=RATE (e.g. \"layer4.*=0.001\"), not '%s'", val);
    g->rate = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !(g->rate >= 0) || g->rate > 1e30)
        return netrt_errorf(err, errlen, "--lr-for '%s': the rate must be a number >= 0", val);
    size_t n = (size_t)(eq - val);
    if (n >= sizeof g->pattern) return netrt_errorf(err, errlen, "--lr-for: the pattern in '%.40s...' is too long", val);
    memcpy(g->pattern, val, n);
    g->pattern[n] = 0;
    return 0;
}

int netrt_lr_groups_assign(const netrt_model *m, const netrt_lr_group *groups, int ngroups, int *group_of, char *err,
                           size_t errlen) {
    for (int i = 0; i < m->nparams; i++) group_of[i] = -1;
    for (int k = 0; k < ngroups; k++) {
        int matched = 0;
        for (int i = 0; i < m->nparams; i++) {
            if (fnmatch(groups[k].pattern, m->params[i].name, 0) != 0) continue;
            matched++;
            if (group_of[i] < 0) group_of[i] = k; /* the first matching pattern wins */
        }
        if (!matched)
            return netrt_errorf(err, errlen, "--lr-for: the pattern '%s' matches no parameter", groups[k].pattern);
    }
    return 0;
}

/* ---- --classes LO-HI, --per-class N ------------------------------------------------- */

int netrt_class_range_parse(const char *val, int64_t *lo, int64_t *hi, char *err, size_t errlen) {
    char *end;
    long long a = strtoll(val, &end, 10), b = a;
    if (end == val) goto bad;
    if (*end == '-') {
        const char *s = end + 1;
        b = strtoll(s, &end, 10);
        if (end == s) goto bad;
    }
    if (*end || a < 0 || b < a) goto bad;
    *lo = a;
    *hi = b;
    return 0;
bad:
    return netrt_errorf(err, errlen, "--classes: expected a class or a range LO-HI (e.g. 0-4), not '%s'", val);
}

int64_t netrt_filter_classes(netrt_array *images, netrt_array *labels, int64_t lo, int64_t hi, int64_t per_class,
                             const char *path, char *err, size_t errlen) {
    if (labels->rank != 1 || !netrt_dtype_is_int(labels->dtype))
        return netrt_errorf(err, errlen, "%s: --classes and --per-class need class labels (integers [S])", path);
    int64_t S = labels->shape[0];
    if (images->shape[0] != S) return S; /* the caller reports the mismatch */
    size_t row = S ? images->nbytes / (size_t)S : 0;
    int64_t *kept = calloc((size_t)(hi - lo + 1), sizeof *kept), *out = malloc((size_t)(S ? S : 1) * sizeof *out);
    if (!kept || !out) {
        free(kept);
        free(out);
        return netrt_errorf(err, errlen, "out of memory");
    }
    int64_t n = 0;
    for (int64_t s = 0; s < S; s++) {
        int64_t c = netrt_array_int_at(labels, s);
        if (c < lo || c > hi || (per_class > 0 && kept[c - lo] >= per_class)) continue;
        kept[c - lo]++;
        if (n != s) memmove((char *)images->data + (size_t)n * row, (char *)images->data + (size_t)s * row, row);
        out[n++] = c - lo; /* relabelled from 0 */
    }
    free(kept);
    if (n == 0) {
        free(out);
        return netrt_errorf(err, errlen, "%s: no sample has a label in %lld-%lld", path, (long long)lo, (long long)hi);
    }
    free(labels->data);
    labels->data = out;
    labels->dtype = NETRT_I64;
    labels->shape[0] = n;
    labels->nbytes = (size_t)n * sizeof *out;
    images->shape[0] = n;
    images->nbytes = (size_t)n * row;
    return n;
}

/* ---- the header's summary ------------------------------------------------------------ */

void netrt_print_frozen(const netrt_train_model *m, FILE *out) {
    const netrt_model *in = m->infer;
    int tensors = 0;
    int64_t values = 0;
    for (int i = 0; m->frozen && i < in->nparams; i++)
        if (m->frozen[i]) {
            tensors++;
            values += netrt_numel(in->params[i].rank, in->params[i].shape);
        }
    if (tensors)
        fprintf(out, "frozen: %d parameter tensor%s, %lld values (no gradient, no update)\n", tensors,
                tensors == 1 ? "" : "s", (long long)values);
}
