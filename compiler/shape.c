/* Shape inference: shape_infer runs the op's shape rule (its registry
 * entry, compiler/ops/) and checks the outputs' sizes; here too are the
 * helpers the rules share (opkit.h).
 *
 * A rule reads its node's input shapes and attributes, checks that they fit,
 * and sets the shapes of the node's outputs.  Messages speak in per-sample
 * shapes (without the batch dimension), as the .net source does. */
#include <stdio.h>
#include <string.h>

#include "opkit.h"

void shape_set_out(Node *n, int i, int rank, const int64_t *d) { n->out[i]->shape = shape_make(rank, d); }

bool shape_want_rank(Node *n, int i, int rank, const char *what) {
    if (n->in[i]->shape.rank == rank) return true;
    char b[128];
    diag_error(n->span, "%s expects a %s input, got %s", op_name(n->op), what,
               value_sample_str(n->in[i], b, sizeof b));
    return false;
}

/* Checks that parameter input i has exactly the shape `rank`/`d`. */
bool shape_want_param(Node *n, int i, int rank, const int64_t *d, const char *what) {
    Shape want = shape_make(rank, d);
    if (shape_eq(&n->in[i]->shape, &want)) return true;
    char b1[128], b2[128];
    diag_error(n->span, "%s of %s \"%s\" has shape %s, expected %s", what, op_name(n->op), n->name,
               shape_str(&n->in[i]->shape, b1, sizeof b1), shape_str(&want, b2, sizeof b2));
    return false;
}

/* Output size of a sliding window; reports and returns -1 if it would be < 1. */
int64_t shape_window_out(Node *n, int64_t in, int k, int s, int p0, int p1, int d, bool ceil_mode,
                          const char *axis) {
    int64_t span = (int64_t)d * (k - 1) + 1;
    int64_t padded = in + p0 + p1;
    if (k < 1 || s < 1 || d < 1 || p0 < 0 || p1 < 0) {
        diag_error(n->span, "%s needs a positive kernel, stride and dilation and a non-negative pad",
                   op_name(n->op));
        return -1;
    }
    if (span > padded) {
        diag_error(n->span, "%s window %lld is wider than its padded input (%s %lld)", op_name(n->op),
                   (long long)span, axis, (long long)padded);
        return -1;
    }
    int64_t o = ceil_mode ? (padded - span + s - 1) / s + 1 : (padded - span) / s + 1;
    /* PyTorch: in ceil mode the last window must start inside the input or its left pad. */
    if (ceil_mode && (o - 1) * s >= in + p0) o--;
    return o;
}

bool shape_like(Node *n, int i, int j) {
    n->out[i]->shape = n->in[j]->shape;
    return true;
}

bool shape_same(Graph *g, Node *n) {
    (void)g;
    n->out[0]->shape = n->in[0]->shape;
    return true;
}

bool shape_like_input1(Graph *g, Node *n) {
    (void)g;
    return shape_like(n, 0, 1);
}

bool shape_check_size(const Shape *s, int64_t batch, Span sp, const char *what) {
    int64_t total = 1;
    bool over = false;
    for (int i = 0; i < s->rank; i++)
        if (__builtin_mul_overflow(total, s->d[i], &total)) over = true;
    if (!over && total <= IR_MAX_ELEMENTS) return true;
    Shape sample = *s;
    if (batch > 0 && sample.rank > 0) {
        sample.rank--;
        memmove(sample.d, sample.d + 1, sizeof sample.d[0] * (size_t)sample.rank);
    }
    char b[160], count[64], at[64] = "";
    shape_str(&sample, b, sizeof b);
    if (over) snprintf(count, sizeof count, "more than %lld", (long long)INT64_MAX);
    else snprintf(count, sizeof count, "%lld", (long long)total);
    if (batch > 1) snprintf(at, sizeof at, " at batch %lld", (long long)batch);
    diag_error(sp, "%s %s has %s elements%s; a tensor may have at most %lld", what, b, count, at,
               (long long)IR_MAX_ELEMENTS);
    return false;
}

bool shape_infer(Graph *g, Node *n) {
    if (n->nin < op_info[n->op].min_inputs || n->nin > op_info[n->op].max_inputs) {
        diag_error(n->span, "%s takes %d to %d inputs, got %d", op_name(n->op), op_info[n->op].min_inputs,
                   op_info[n->op].max_inputs, n->nin);
        return false;
    }
    if (!op_rules(n->op)->shape(g, n)) return false;
    for (int i = 0; i < n->nout; i++) {
        const Value *v = n->out[i];
        char what[96];
        snprintf(what, sizeof what, "%s's output", op_name(n->op));
        if (!shape_check_size(&v->shape, v->kind == V_ACT ? v->shape.d[0] : 0, n->span, what)) return false;
    }
    return true;
}

/* ---- shapes as values and text --------------------------------------------- */

const char *shape_str(const Shape *s, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < s->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)s->d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

const char *value_sample_str(const Value *v, char *buf, size_t n) {
    Shape s = v->shape;
    if (v->kind == V_INPUT || v->kind == V_ACT) {
        s.rank--;
        memmove(s.d, s.d + 1, sizeof s.d[0] * (size_t)s.rank);
    }
    return shape_str(&s, buf, n);
}

bool shape_eq(const Shape *a, const Shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i]) return false;
    return true;
}

Shape shape_make(int rank, const int64_t *d) {
    Shape s = {0};
    s.rank = rank;
    for (int i = 0; i < rank; i++) s.d[i] = d[i];
    return s;
}
