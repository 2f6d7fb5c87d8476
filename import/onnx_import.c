/* netc import: ONNX -> .net (see onnx_import.h and docs/interop.md).
 *
 * The graph's nodes are visited in topological order; each is handed to the
 * emitter its op type names in op_table, which checks the node's inputs and
 * attributes, appends one statement to the .net text and records the
 * parameters it creates.  Values are either tensors (computed from the net's
 * inputs: a .net variable with a per-sample shape) or constants
 * (initializers, Constant nodes, and what the constant-only ops fold from
 * them), which become parameters or compile-time arguments.  Anything netc
 * cannot express is an error naming the node. */
#include "onnx_import.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#define MAX_DIMS 8
#define MAX_ELEMS 2147483647LL /* netc's limit for one tensor */

/* ---- growing string ------------------------------------------------------ */

typedef struct Buf {
    char *s;
    size_t len, cap;
} Buf;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "netc: out of memory\n");
        exit(2);
    }
    return q;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
        if (b->len == 0) b->s[0] = 0;
    }
}

/* A float as a .net literal: the shortest decimal that reads back as the
 * same float32 value, always with a '.' or an exponent.  ONNX stores its
 * float attributes as float32: a batchnorm's epsilon 0.001 arrives as
 * 0.00100000005, and written so it would not be the 0.001 of the model
 * (netc's ops keep such constants as doubles). */
static void buf_float(Buf *b, double v) {
    char t[48];
    for (int p = 1; p <= 9; p++) {
        snprintf(t, sizeof t, "%.*g", p, v);
        if ((float)strtod(t, NULL) == (float)v) break;
    }
    if (!strpbrk(t, ".e")) strcat(t, ".0");
    buf_printf(b, "%s", t);
}

/* ---- values ----------------------------------------------------------------- */

typedef enum { V_TENSOR, V_CONST } VKind;

typedef struct Value {
    char *name; /* the ONNX name */
    VKind kind;
    /* V_TENSOR: a .net variable and the shape of one sample */
    char *var;
    int rank;
    int64_t dims[MAX_DIMS];
    /* V_CONST: the full shape and the data, as floats and as integers */
    int crank;
    int64_t cdims[MAX_DIMS];
    int64_t numel;
    float *f;
    int64_t *i;
    bool is_int;
    const char *init_name; /* the initializer it came from (parameter names), or NULL */
    bool out_stmt;         /* defined by an `output` statement */
} Value;

typedef struct Imp {
    const char *path;
    Onnx__ModelProto *model;
    Onnx__GraphProto *g;
    int64_t opset;
    Value **vals; /* each Value allocated alone: pointers to it stay valid as values are added */
    int nvals, capvals;
    int *slots; /* open hash table name -> index in vals, -1 empty */
    int nslots;
    Buf text;
    netrt_tensor *params;
    int nparams, capparams;
    char **names; /* instance names and variables used so far */
    int nnames, capnames;
    int batch;
    int nvars;
    bool *consumed; /* nodes folded into an earlier one (MatMul + Add) */
    struct LrnChain **lrn; /* by node: for a Div ending a local response normalization, its chain */
    size_t nlrn;
    /* the node being imported, for messages */
    Onnx__NodeProto *node;
    int node_index;
} Imp;

static bool file_err(Imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool file_err(Imp *im, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netc: error: %s: ", im->path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

static const char *str(const char *s) { return s ? s : ""; }

/* An error about the current node: its index, name and op type first. */
static bool node_err(Imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool node_err(Imp *im, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netc: error: %s: node %d '%s' (%s): ", im->path, im->node_index, str(im->node->name),
            str(im->node->op_type));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int val_find(Imp *im, const char *name) {
    if (!im->nslots) return -1;
    for (uint64_t h = hash_str(name) & (uint64_t)(im->nslots - 1);; h = (h + 1) & (uint64_t)(im->nslots - 1)) {
        int k = im->slots[h];
        if (k < 0) return -1;
        if (strcmp(im->vals[k]->name, name) == 0) return k;
    }
}

static void slots_insert(Imp *im, int k) {
    uint64_t h = hash_str(im->vals[k]->name) & (uint64_t)(im->nslots - 1);
    while (im->slots[h] >= 0) h = (h + 1) & (uint64_t)(im->nslots - 1);
    im->slots[h] = k;
}

/* Adds a value named name (not yet defined); returns it. */
static Value *val_add(Imp *im, const char *name, VKind kind) {
    if (im->nvals == im->capvals) {
        im->capvals = im->capvals ? im->capvals * 2 : 64;
        im->vals = xrealloc(im->vals, sizeof *im->vals * (size_t)im->capvals);
    }
    if ((im->nvals + 1) * 2 > im->nslots) {
        im->nslots = im->nslots ? im->nslots * 2 : 256;
        im->slots = xrealloc(im->slots, sizeof *im->slots * (size_t)im->nslots);
        for (int i = 0; i < im->nslots; i++) im->slots[i] = -1;
        for (int i = 0; i < im->nvals; i++) slots_insert(im, i);
    }
    Value *v = im->vals[im->nvals] = xrealloc(NULL, sizeof *v);
    memset(v, 0, sizeof *v);
    v->name = xstrdup(name);
    v->kind = kind;
    slots_insert(im, im->nvals++);
    return v;
}

/* ---- identifiers and instance names ------------------------------------------ */

static bool name_used(Imp *im, const char *s) {
    for (int i = 0; i < im->nnames; i++)
        if (strcmp(im->names[i], s) == 0) return true;
    return false;
}

static const char *name_take(Imp *im, const char *s) {
    if (im->nnames == im->capnames) {
        im->capnames = im->capnames ? im->capnames * 2 : 64;
        im->names = xrealloc(im->names, sizeof *im->names * (size_t)im->capnames);
    }
    return im->names[im->nnames++] = xstrdup(s);
}

static const char *const keywords[] = {"net", "block", "input", "output", "for", "in", "if", "else",
                                       "return", "as", "true", "false"};

/* A fresh .net identifier made of s: other characters become '_'. */
static char *make_ident(Imp *im, const char *s) {
    size_t n = strlen(s);
    if (n > 60) n = 60;
    char *t = xrealloc(NULL, n + 16);
    size_t k = 0;
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_')) t[k++] = 'v';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        t[k++] = ok ? c : '_';
    }
    t[k] = 0;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strcmp(t, keywords[i]) == 0) strcat(t, "_");
    size_t base = strlen(t);
    for (int j = 2; name_used(im, t); j++) sprintf(t + base, "_%d", j);
    name_take(im, t);
    return t;
}

static char *fresh_var(Imp *im) {
    char t[32];
    do snprintf(t, sizeof t, "x%d", ++im->nvars);
    while (name_used(im, t));
    name_take(im, t);
    return xstrdup(t);
}

/* A name netc accepts after `as`: letters, digits, '_', '-', '.', no empty
 * part between dots. */
static bool valid_instance(const char *s, size_t n) {
    if (n == 0 || n > 200 || s[0] == '.' || s[n - 1] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.' && s[i + 1] == '.') return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

/* ---- constants ---------------------------------------------------------------- */

static const char *dtype_name(int t) {
    static const char *const n[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
                                    "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
                                    "COMPLEX128", "BFLOAT16"};
    return t >= 0 && t < (int)(sizeof n / sizeof n[0]) ? n[t] : "unknown";
}

/* Reads a TensorProto into v (a constant): FLOAT, DOUBLE, INT32 and INT64,
 * from raw_data or the typed fields.  what names it in messages. */
static bool read_tensor(Imp *im, const Onnx__TensorProto *t, Value *v, const char *what) {
    if (t->n_dims > MAX_DIMS) return file_err(im, "%s has %zu dimensions (netc reads at most %d)", what, t->n_dims, MAX_DIMS);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return file_err(im, "%s keeps its data in an external file, which netc import does not read", what);
    int64_t numel = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0) return file_err(im, "%s has a negative dimension %lld", what, (long long)t->dims[d]);
        if (t->dims[d] > 0 && numel > MAX_ELEMS / t->dims[d])
            return file_err(im, "%s has more than %lld elements", what, MAX_ELEMS);
        numel *= t->dims[d];
        v->cdims[d] = t->dims[d];
    }
    v->crank = (int)t->n_dims;
    v->numel = numel;
    int dt = t->has_data_type ? t->data_type : 0;
    size_t esize = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4
                   : dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8
                                                                                                                : 0;
    if (!esize) return file_err(im, "%s has data type %d (%s); netc import reads FLOAT, DOUBLE, INT32 and INT64", what, dt, dtype_name(dt));
    size_t typed = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? t->n_float_data
                   : dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data
                   : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32  ? t->n_int32_data
                                                                 : t->n_int64_data;
    bool raw = t->has_raw_data && t->raw_data.len > 0;
    if (raw ? t->raw_data.len != (size_t)numel * esize : typed != (size_t)numel)
        return file_err(im, "%s has %zu %s of data for %lld elements of %s", what, raw ? t->raw_data.len : typed,
                        raw ? "bytes" : "values", (long long)numel, dtype_name(dt));
    v->f = xrealloc(NULL, sizeof *v->f * (size_t)numel);
    v->i = xrealloc(NULL, sizeof *v->i * (size_t)numel);
    v->is_int = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    const uint8_t *r = raw ? t->raw_data.data : NULL;
    for (int64_t k = 0; k < numel; k++) {
        double d = 0;
        int64_t i = 0;
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
            float x;
            if (r) memcpy(&x, r + 4 * k, 4); /* little endian, as the host */
            else x = t->float_data[k];
            d = x;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
            if (r) memcpy(&d, r + 8 * k, 8);
            else d = t->double_data[k];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
            int32_t x;
            if (r) memcpy(&x, r + 4 * k, 4);
            else x = t->int32_data[k];
            i = x;
            break;
        }
        default:
            if (r) memcpy(&i, r + 8 * k, 8);
            else i = t->int64_data[k];
            break;
        }
        if (v->is_int) d = (double)i;
        else i = isfinite(d) && fabs(d) < 9e18 ? (int64_t)d : 0;
        v->f[k] = (float)d;
        v->i[k] = i;
    }
    return true;
}

/* ---- attributes -------------------------------------------------------------- */

static Onnx__AttributeProto *attr(Imp *im, const char *name) {
    for (size_t i = 0; i < im->node->n_attribute; i++)
        if (strcmp(str(im->node->attribute[i]->name), name) == 0) return im->node->attribute[i];
    return NULL;
}

static int attr_type(const Onnx__AttributeProto *a) { return a->has_type ? (int)a->type : 0; }

static bool attr_int(Imp *im, const char *name, int64_t def, int64_t *out) {
    Onnx__AttributeProto *a = attr(im, name);
    *out = def;
    if (!a) return true;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) return node_err(im, "attribute '%s' must be an int", name);
    *out = a->i;
    return true;
}

static bool attr_float(Imp *im, const char *name, double def, double *out) {
    Onnx__AttributeProto *a = attr(im, name);
    *out = def;
    if (!a) return true;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) return node_err(im, "attribute '%s' must be a float", name);
    if (!isfinite(a->f)) return node_err(im, "attribute '%s' is not finite", name);
    *out = a->f;
    return true;
}

/* ints: n values (want: the count it must have, or -1 for any up to MAX_DIMS*2). */
static bool attr_ints(Imp *im, const char *name, int want, int *n, int64_t *out) {
    Onnx__AttributeProto *a = attr(im, name);
    *n = 0;
    if (!a) return true;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) return node_err(im, "attribute '%s' must be a list of ints", name);
    if ((want >= 0 && a->n_ints != (size_t)want) || a->n_ints > 2 * MAX_DIMS)
        return want >= 0 ? node_err(im, "attribute '%s' has %zu values, expected %d", name, a->n_ints, want)
                         : node_err(im, "attribute '%s' has %zu values", name, a->n_ints);
    *n = (int)a->n_ints;
    if (a->n_ints) memcpy(out, a->ints, sizeof *out * a->n_ints);
    return true;
}

/* A string attribute, "" when absent. */
static bool attr_str(Imp *im, const char *name, const char *def, char *out, size_t outlen) {
    Onnx__AttributeProto *a = attr(im, name);
    snprintf(out, outlen, "%s", def);
    if (!a) return true;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) return node_err(im, "attribute '%s' must be a string", name);
    size_t n = a->s.len < outlen - 1 ? a->s.len : outlen - 1;
    if (a->s.len && memchr(a->s.data, 0, a->s.len)) n = 0;
    if (n) memcpy(out, a->s.data, n);
    out[n] = 0;
    return true;
}

/* ---- inputs and outputs of the node ------------------------------------------ */

static const char *in_name(Imp *im, int k) {
    return (size_t)k < im->node->n_input ? str(im->node->input[k]) : "";
}

static bool has_in(Imp *im, int k) { return in_name(im, k)[0] != 0; }

/* Input k's value (sort_nodes made sure that it is defined). */
static Value *in_value(Imp *im, int k) {
    int i = val_find(im, in_name(im, k));
    return i < 0 ? NULL : im->vals[i];
}

/* Input k as a tensor computed from the net's inputs. */
static Value *in_tensor(Imp *im, int k) {
    if (!has_in(im, k)) {
        node_err(im, "input %d is missing", k);
        return NULL;
    }
    Value *v = in_value(im, k);
    if (!v) {
        node_err(im, "input %d ('%s') is not defined", k, in_name(im, k));
        return NULL;
    }
    if (v->kind != V_TENSOR) {
        node_err(im, "input %d ('%s') is a constant; netc needs a tensor computed from the net's input here", k,
                 in_name(im, k));
        return NULL;
    }
    return v;
}

/* Input k as a constant; NULL (after an error) if it is not one. */
static Value *in_const(Imp *im, int k, const char *what) {
    if (!has_in(im, k)) {
        node_err(im, "input %d (%s) is missing", k, what);
        return NULL;
    }
    Value *v = in_value(im, k);
    if (!v) {
        node_err(im, "input %d ('%s') is not defined", k, in_name(im, k));
        return NULL;
    }
    if (v->kind != V_CONST) {
        node_err(im, "input %d (%s, '%s') must be a constant (an initializer); netc cannot compute it at run time", k,
                 what, in_name(im, k));
        return NULL;
    }
    return v;
}

static bool no_extra_outputs(Imp *im, int keep) {
    for (size_t k = (size_t)keep; k < im->node->n_output; k++)
        if (str(im->node->output[k])[0])
            return node_err(im, "output %zu ('%s') is not one netc computes (only the first %d)", k,
                            im->node->output[k], keep);
    return true;
}

static void shape_str(char *t, size_t n, int rank, const int64_t *d) {
    size_t k = (size_t)snprintf(t, n, "[");
    for (int i = 0; i < rank && k < n; i++) k += (size_t)snprintf(t + k, n - k, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (k < n) snprintf(t + k, n - k, "]");
}

/* Defines output k of the node as a tensor of per-sample shape dims, and writes
 * its statement `var = expr;` (`output var = expr;` for a graph output). */
static bool def_tensor(Imp *im, int k, int rank, const int64_t *dims, const char *expr) {
    const char *name = str(im->node->output[k]);
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 1) {
            char t[160];
            shape_str(t, sizeof t, rank, dims);
            return node_err(im, "the output would have the shape %s per sample, with a size below 1", t);
        }
        if (n > MAX_ELEMS / dims[d] / im->batch) return node_err(im, "the output has more than %lld elements", MAX_ELEMS);
        n *= dims[d];
    }
    Value *v = val_add(im, name, V_TENSOR);
    for (size_t o = 0; o < im->g->n_output; o++)
        if (strcmp(str(im->g->output[o]->name), name) == 0) v->out_stmt = true;
    v->var = v->out_stmt ? make_ident(im, name) : fresh_var(im);
    v->rank = rank;
    memcpy(v->dims, dims, sizeof *dims * (size_t)rank);
    char t[160];
    shape_str(t, sizeof t, rank, dims);
    buf_printf(&im->text, "    %s%s = %s;  # %s\n", v->out_stmt ? "output " : "", v->var, expr, t);
    return true;
}

/* Output k as a new name for an existing value (Identity and friends). */
static void def_alias(Imp *im, int k, const Value *src) {
    Value copy = *src;
    Value *v = val_add(im, str(im->node->output[k]), src->kind);
    char *name = v->name;
    *v = copy;
    v->name = name;
    v->out_stmt = false;
    /* PyTorch's exporter shares equal initializers through Identity nodes
     * (a fresh batchnorm's weight and running_var): the alias keeps its name */
    v->init_name = src->kind == V_CONST ? name : NULL;
    v->var = src->var ? xstrdup(src->var) : NULL;
    if (src->f) v->f = memcpy(xrealloc(NULL, sizeof *v->f * (size_t)src->numel), src->f, sizeof *v->f * (size_t)src->numel);
    if (src->i) v->i = memcpy(xrealloc(NULL, sizeof *v->i * (size_t)src->numel), src->i, sizeof *v->i * (size_t)src->numel);
}

/* A new constant as output k; the caller fills f, i. */
static Value *def_const(Imp *im, int k, int crank, const int64_t *cdims, bool is_int) {
    Value *v = val_add(im, str(im->node->output[k]), V_CONST);
    v->crank = crank;
    v->numel = 1;
    for (int d = 0; d < crank; d++) {
        v->cdims[d] = cdims[d];
        v->numel *= cdims[d];
    }
    v->f = xrealloc(NULL, sizeof *v->f * (size_t)v->numel);
    v->i = xrealloc(NULL, sizeof *v->i * (size_t)v->numel);
    v->is_int = is_int;
    return v;
}

/* ---- parameters ---------------------------------------------------------------- */

/* Instance names share the table of used names with '@' before them: a
 * variable and an instance may have the same name. */
static bool inst_used(Imp *im, const char *s) {
    char t[300];
    snprintf(t, sizeof t, "@%s", s);
    return name_used(im, t);
}

static const char *inst_take(Imp *im, const char *s) {
    char t[300];
    snprintf(t, sizeof t, "@%s", s);
    return name_take(im, t) + 1;
}

/* The instance name of a node with parameters: the common prefix of its
 * initializers' names when they are "<prefix>.<suffix>" with netc's suffixes
 * (PyTorch's state_dict names), else "<op>_<node index>".  Returns a string
 * owned by im. */
static const char *instance_name(Imp *im, const char *op, Value *const *cs, const char *const *suffix, int n) {
    const char *prefix = NULL;
    size_t plen = 0;
    bool ok = true;
    for (int k = 0; k < n && ok; k++) {
        if (!cs[k]) continue;
        const char *s = cs[k]->init_name;
        size_t sl = strlen(suffix[k]), l = s ? strlen(s) : 0;
        if (!s || l < sl + 2 || s[l - sl - 1] != '.' || strcmp(s + l - sl, suffix[k]) != 0) {
            ok = false;
            break;
        }
        if (!prefix) {
            prefix = s;
            plen = l - sl - 1;
        } else if (plen != l - sl - 1 || strncmp(prefix, s, plen) != 0)
            ok = false;
    }
    char t[256];
    if (ok && prefix && valid_instance(prefix, plen) && plen < sizeof t) {
        memcpy(t, prefix, plen);
        t[plen] = 0;
        if (!inst_used(im, t)) return inst_take(im, t);
    }
    /* PyTorch names a node by its module's scope, "/layer1/layer1.0/conv1/Conv":
     * the module's path is layer1.0.conv1 (each part extends the one before
     * or is a child's own name).  It names the transposed weights of a
     * linear without bias (MatMul) and the convs batchnorms were folded into. */
    const char *nn = str(im->node->name);
    if (nn[0] == '/' && strlen(nn) < sizeof t) {
        char path[256] = "";
        const char *p = nn + 1, *slash;
        bool good = true;
        while ((slash = strchr(p, '/'))) {
            size_t cl = (size_t)(slash - p), pl = strlen(path);
            if (cl == 0 || pl + cl + 2 >= sizeof path) {
                good = false;
                break;
            }
            if (pl && cl > pl && strncmp(p, path, pl) == 0 && p[pl] == '.') memcpy(path, p, cl), path[cl] = 0;
            else snprintf(path + pl, sizeof path - pl, "%s%.*s", pl ? "." : "", (int)cl, p);
            p = slash + 1;
        }
        if (good && path[0] && valid_instance(path, strlen(path)) && !inst_used(im, path)) return inst_take(im, path);
    }
    snprintf(t, sizeof t, "%s_%d", op, im->node_index);
    size_t base = strlen(t);
    for (int j = 2; inst_used(im, t); j++) snprintf(t + base, sizeof t - base, "_%d", j);
    return inst_take(im, t);
}

/* Records parameter <inst>.<suffix> with a copy of data. */
static void add_param(Imp *im, const char *inst, const char *suffix, int rank, const int64_t *shape, const float *data) {
    if (im->nparams == im->capparams) {
        im->capparams = im->capparams ? im->capparams * 2 : 32;
        im->params = xrealloc(im->params, sizeof *im->params * (size_t)im->capparams);
    }
    netrt_tensor *t = &im->params[im->nparams++];
    memset(t, 0, sizeof *t);
    size_t nl = strlen(inst) + strlen(suffix) + 2;
    char *name = xrealloc(NULL, nl);
    snprintf(name, nl, "%s.%s", inst, suffix);
    t->name = name;
    t->rank = rank;
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= (t->shape[d] = shape[d]);
    t->data = memcpy(xrealloc(NULL, sizeof(float) * (size_t)n), data, sizeof(float) * (size_t)n);
}

/* A constant that must hold exactly n values (a [n] vector, or any shape of n
 * elements such as [1, n]). */
static bool const_len(Imp *im, Value *c, int64_t n, const char *what) {
    if (c->numel != n) return node_err(im, "%s ('%s') has %lld values, expected %lld", what, c->name, (long long)c->numel, (long long)n);
    return true;
}

/* ---- the emitters ---------------------------------------------------------------- */

typedef struct OpEntry OpEntry;
typedef bool (*Emitter)(Imp *im, const OpEntry *op);
struct OpEntry {
    const char *onnx;   /* op type */
    Emitter emit;
    const char *attrs;  /* the attributes it reads, space-separated; any other is an error */
    const char *netc;   /* for the one-to-one activations: netc's op */
};

static bool fold_reshape(Imp *im, Value *c);
static bool fold_slice(Imp *im, Value *c, int n, const int64_t *st, const int64_t *en, const int64_t *ax, int na,
                       const int64_t *sp, int ns);

static bool need_rank(Imp *im, Value *x, int r1, int r2) {
    if (x->rank == r1 || x->rank == r2) return true;
    char t[160];
    shape_str(t, sizeof t, x->rank, x->dims);
    return node_err(im, "input 0 has the shape %s per sample (batch %d first); netc needs %s", t, im->batch,
                    r2 == 1 ? "[C, H, W] or [D]" : "[C, H, W]");
}

/* Appends an int or [a, b] (or a list of n) to b. */
static void buf_pair(Buf *b, int64_t x, int64_t y) {
    if (x == y) buf_printf(b, "%lld", (long long)x);
    else buf_printf(b, "[%lld, %lld]", (long long)x, (long long)y);
}

typedef struct Win {
    int64_t k[2], s[2], d[2], p[4]; /* kernel, strides, dilations, pads top, left, bottom, right */
} Win;

/* kernel_shape, strides, dilations, pads, auto_pad of a conv or pool over 2-D
 * input of height h, width w.  kdef: the kernel when the weights give it. */
static bool read_window(Imp *im, Win *wn, const int64_t *kdef, int64_t h, int64_t w) {
    int n;
    int64_t v[2 * MAX_DIMS];
    if (!attr_ints(im, "kernel_shape", -1, &n, v)) return false;
    if (n == 0 && !kdef) return node_err(im, "attribute 'kernel_shape' is missing");
    if (n && n != 2) return node_err(im, "attribute 'kernel_shape' has %d values; netc handles 2-D windows only", n);
    for (int i = 0; i < 2; i++) wn->k[i] = n ? v[i] : kdef[i];
    if (n && kdef && (v[0] != kdef[0] || v[1] != kdef[1]))
        return node_err(im, "attribute 'kernel_shape' [%lld, %lld] differs from the weights' [%lld, %lld]", (long long)v[0],
                        (long long)v[1], (long long)kdef[0], (long long)kdef[1]);
    if (!attr_ints(im, "strides", -1, &n, v)) return false;
    if (n && n != 2) return node_err(im, "attribute 'strides' has %d values, expected 2", n);
    for (int i = 0; i < 2; i++) wn->s[i] = n ? v[i] : 1;
    if (!attr_ints(im, "dilations", -1, &n, v)) return false;
    if (n && n != 2) return node_err(im, "attribute 'dilations' has %d values, expected 2", n);
    for (int i = 0; i < 2; i++) wn->d[i] = n ? v[i] : 1;
    if (!attr_ints(im, "pads", -1, &n, v)) return false;
    if (n && n != 4) return node_err(im, "attribute 'pads' has %d values, expected 4", n);
    for (int i = 0; i < 4; i++) wn->p[i] = n ? v[i] : 0;
    for (int i = 0; i < 2; i++) {
        if (wn->k[i] < 1 || wn->k[i] > 65536) return node_err(im, "a kernel size of %lld", (long long)wn->k[i]);
        if (wn->s[i] < 1 || wn->s[i] > 65536) return node_err(im, "a stride of %lld", (long long)wn->s[i]);
        if (wn->d[i] < 1 || wn->d[i] > 65536) return node_err(im, "a dilation of %lld", (long long)wn->d[i]);
    }
    for (int i = 0; i < 4; i++)
        if (wn->p[i] < 0 || wn->p[i] > 65536) return node_err(im, "a pad of %lld", (long long)wn->p[i]);
    char ap[32];
    if (!attr_str(im, "auto_pad", "NOTSET", ap, sizeof ap)) return false;
    if (strcmp(ap, "VALID") == 0) memset(wn->p, 0, sizeof wn->p);
    else if (strcmp(ap, "SAME_UPPER") == 0) { /* TensorFlow's "same": the odd pixel at the end */
        int64_t in[2] = {h, w};
        for (int i = 0; i < 2; i++) {
            int64_t o = (in[i] + wn->s[i] - 1) / wn->s[i];
            int64_t tot = (o - 1) * wn->s[i] + wn->d[i] * (wn->k[i] - 1) + 1 - in[i];
            if (tot < 0) tot = 0;
            wn->p[i] = tot / 2;
            wn->p[i + 2] = tot - tot / 2;
        }
    } else if (strcmp(ap, "NOTSET") != 0 && ap[0])
        return node_err(im, "auto_pad '%s' is not one netc has (NOTSET, VALID, SAME_UPPER)", ap);
    return true;
}

/* Output size of a window over n with pads a, b. */
static int64_t win_out(int64_t n, int64_t a, int64_t b, int64_t k, int64_t s, int64_t d) {
    int64_t span = n + a + b - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

static void buf_pads(Buf *b, const Win *wn, bool four) {
    const int64_t *p = wn->p; /* top, left, bottom, right */
    if (p[0] == p[2] && p[1] == p[3]) buf_pair(b, p[0], p[1]);
    else if (four) buf_printf(b, "[%lld, %lld, %lld, %lld]", (long long)p[0], (long long)p[2], (long long)p[1], (long long)p[3]);
}

static bool emit_conv(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3)) return false;
    Value *wv = in_const(im, 1, "the weights");
    if (!wv) return false;
    Value *bv = NULL;
    if (has_in(im, 2) && !(bv = in_const(im, 2, "the bias"))) return false;
    if (wv->crank != 4) return node_err(im, "the weights ('%s') have %d dimensions; netc's conv is 2-D (4 dimensions)", wv->name, wv->crank);
    int64_t group;
    if (!attr_int(im, "group", 1, &group)) return false;
    int64_t c = x->dims[0], out = wv->cdims[0];
    if (group < 1 || c % group || out % group || wv->cdims[1] * group != c)
        return node_err(im, "weights [%lld, %lld, %lld, %lld] with group %lld do not fit an input of %lld channels", (long long)wv->cdims[0],
                        (long long)wv->cdims[1], (long long)wv->cdims[2], (long long)wv->cdims[3], (long long)group, (long long)c);
    if (bv && !const_len(im, bv, out, "the bias")) return false;
    Win wn;
    if (!read_window(im, &wn, wv->cdims + 2, x->dims[1], x->dims[2])) return false;
    if (!no_extra_outputs(im, 1)) return false;
    int64_t dims[3] = {out, win_out(x->dims[1], wn.p[0], wn.p[2], wn.k[0], wn.s[0], wn.d[0]),
                       win_out(x->dims[2], wn.p[1], wn.p[3], wn.k[1], wn.s[1], wn.d[1])};
    Value *cs[2] = {wv, bv};
    static const char *const suf[2] = {"weight", "bias"};
    const char *inst = instance_name(im, "conv", cs, suf, 2);
    Buf b = {0};
    buf_printf(&b, "conv(%s, %lld, ", x->var, (long long)out);
    buf_pair(&b, wn.k[0], wn.k[1]);
    if (wn.s[0] != 1 || wn.s[1] != 1) buf_printf(&b, ", stride = "), buf_pair(&b, wn.s[0], wn.s[1]);
    if (wn.p[0] || wn.p[1] || wn.p[2] || wn.p[3]) buf_printf(&b, ", pad = "), buf_pads(&b, &wn, true);
    if (wn.d[0] != 1 || wn.d[1] != 1) buf_printf(&b, ", dilation = "), buf_pair(&b, wn.d[0], wn.d[1]);
    if (group != 1) buf_printf(&b, ", groups = %lld", (long long)group);
    if (!bv) buf_printf(&b, ", bias = false");
    buf_printf(&b, ") as \"%s\"", inst);
    add_param(im, inst, "weight", 4, wv->cdims, wv->f);
    if (bv) add_param(im, inst, "bias", 1, &out, bv->f);
    bool ok = def_tensor(im, 0, 3, dims, b.s);
    free(b.s);
    return ok;
}

static bool emit_deconv(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3)) return false;
    Value *wv = in_const(im, 1, "the weights");
    if (!wv) return false;
    Value *bv = NULL;
    if (has_in(im, 2) && !(bv = in_const(im, 2, "the bias"))) return false;
    if (wv->crank != 4) return node_err(im, "the weights ('%s') have %d dimensions; netc's deconv is 2-D (4 dimensions)", wv->name, wv->crank);
    int64_t group;
    if (!attr_int(im, "group", 1, &group)) return false;
    int64_t c = x->dims[0];
    if (group < 1 || c % group || wv->cdims[0] != c)
        return node_err(im, "weights [%lld, %lld, %lld, %lld] with group %lld do not fit an input of %lld channels", (long long)wv->cdims[0],
                        (long long)wv->cdims[1], (long long)wv->cdims[2], (long long)wv->cdims[3], (long long)group, (long long)c);
    int64_t out = wv->cdims[1] * group;
    if (bv && !const_len(im, bv, out, "the bias")) return false;
    if (attr(im, "output_shape")) return node_err(im, "attribute 'output_shape' is not supported: give pads and output_padding instead");
    Win wn;
    if (!read_window(im, &wn, wv->cdims + 2, x->dims[1], x->dims[2])) return false;
    if (attr(im, "auto_pad")) {
        char ap[32];
        if (!attr_str(im, "auto_pad", "NOTSET", ap, sizeof ap)) return false;
        if (strcmp(ap, "NOTSET") != 0) return node_err(im, "auto_pad '%s' of a ConvTranspose is not supported (only NOTSET)", ap);
    }
    if (wn.p[0] != wn.p[2] || wn.p[1] != wn.p[3])
        return node_err(im, "pads [%lld, %lld, %lld, %lld] are not symmetric; netc's deconv pads both sides alike", (long long)wn.p[0],
                        (long long)wn.p[1], (long long)wn.p[2], (long long)wn.p[3]);
    int n;
    int64_t opad[2 * MAX_DIMS] = {0, 0};
    if (!attr_ints(im, "output_padding", -1, &n, opad)) return false;
    if (n && n != 2) return node_err(im, "attribute 'output_padding' has %d values, expected 2", n);
    for (int i = 0; i < 2; i++)
        if (opad[i] < 0 || (opad[i] >= wn.s[i] && opad[i] >= wn.d[i]))
            return node_err(im, "output_padding %lld must be below the stride or the dilation", (long long)opad[i]);
    if (!no_extra_outputs(im, 1)) return false;
    int64_t dims[3] = {out, 0, 0};
    for (int i = 0; i < 2; i++)
        dims[1 + i] = (x->dims[1 + i] - 1) * wn.s[i] - 2 * wn.p[i] + wn.d[i] * (wn.k[i] - 1) + opad[i] + 1;
    Value *cs[2] = {wv, bv};
    static const char *const suf[2] = {"weight", "bias"};
    const char *inst = instance_name(im, "deconv", cs, suf, 2);
    Buf b = {0};
    buf_printf(&b, "deconv(%s, %lld, ", x->var, (long long)out);
    buf_pair(&b, wn.k[0], wn.k[1]);
    if (wn.s[0] != 1 || wn.s[1] != 1) buf_printf(&b, ", stride = "), buf_pair(&b, wn.s[0], wn.s[1]);
    if (wn.p[0] || wn.p[1]) buf_printf(&b, ", pad = "), buf_pair(&b, wn.p[0], wn.p[1]);
    if (opad[0] || opad[1]) buf_printf(&b, ", output_pad = "), buf_pair(&b, opad[0], opad[1]);
    if (group != 1) buf_printf(&b, ", groups = %lld", (long long)group);
    if (!bv) buf_printf(&b, ", bias = false");
    if (wn.d[0] != 1 || wn.d[1] != 1) buf_printf(&b, ", dilation = "), buf_pair(&b, wn.d[0], wn.d[1]);
    buf_printf(&b, ") as \"%s\"", inst);
    add_param(im, inst, "weight", 4, wv->cdims, wv->f);
    if (bv) add_param(im, inst, "bias", 1, &out, bv->f);
    bool ok = def_tensor(im, 0, 3, dims, b.s);
    free(b.s);
    return ok;
}

/* BatchNormalization and InstanceNormalization: per-channel constants. */
static bool emit_norm(Imp *im, const OpEntry *op) {
    bool bn = strcmp(op->onnx, "BatchNormalization") == 0;
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, bn ? 1 : 3)) return false;
    int64_t c = x->dims[0];
    static const char *const what[4] = {"the scale", "the bias", "the mean", "the variance"};
    static const char *const suf[4] = {"weight", "bias", "running_mean", "running_var"};
    Value *cs[4] = {0};
    for (int k = 0; k < (bn ? 4 : 2); k++)
        if (!(cs[k] = in_const(im, 1 + k, what[k])) || !const_len(im, cs[k], c, what[k])) return false;
    double eps;
    if (!attr_float(im, "epsilon", 1e-5, &eps)) return false;
    if (!(eps > 0)) return node_err(im, "epsilon %g must be positive", eps);
    if (bn) {
        int64_t tm, spatial;
        double mom;
        if (!attr_int(im, "training_mode", 0, &tm) || !attr_int(im, "spatial", 1, &spatial) ||
            !attr_float(im, "momentum", 0.9, &mom))
            return false;
        if (tm) return node_err(im, "training_mode 1: netc imports inference graphs (export with the model in eval mode)");
        if (spatial != 1) return node_err(im, "spatial 0 (per-element statistics) is not supported");
    }
    if (!no_extra_outputs(im, 1)) return false;
    const char *inst = instance_name(im, bn ? "batchnorm" : "instancenorm", cs, suf, bn ? 4 : 2);
    Buf b = {0};
    buf_printf(&b, "%s(%s", bn ? "batchnorm" : "instancenorm", x->var);
    if (eps != 1e-5 && (float)eps != (float)1e-5) buf_printf(&b, ", eps = "), buf_float(&b, eps);
    buf_printf(&b, ") as \"%s\"", inst);
    for (int k = 0; k < (bn ? 4 : 2); k++) add_param(im, inst, suf[k], 1, &c, cs[k]->f);
    bool ok = def_tensor(im, 0, x->rank, x->dims, b.s);
    free(b.s);
    return ok;
}

/* The node using output name (other than a consumed one), if exactly one
 * does; -1 otherwise. */
static int sole_consumer(Imp *im, const char *name) {
    int found = -1;
    for (size_t n = 0; n < im->g->n_node; n++) {
        Onnx__NodeProto *nd = im->g->node[n];
        for (size_t k = 0; k < nd->n_input; k++)
            if (strcmp(str(nd->input[k]), name) == 0) {
                if (found >= 0 && found != (int)n) return -1;
                found = (int)n;
            }
    }
    for (size_t o = 0; o < im->g->n_output; o++)
        if (strcmp(str(im->g->output[o]->name), name) == 0) return -1;
    return found;
}

/* Gemm (alpha * A B' + beta * C) and MatMul (A B, with an Add of a constant
 * bias after it folded in) with constant B: netc's linear. */
static bool emit_linear(Imp *im, const OpEntry *op) {
    bool gemm = strcmp(op->onnx, "Gemm") == 0;
    Value *x = in_tensor(im, 0);
    if (!x) return false;
    if (x->rank != 1) {
        char t[160];
        shape_str(t, sizeof t, x->rank, x->dims);
        return node_err(im, "input 0 has the shape %s per sample; netc's linear takes [D] (flatten first)", t);
    }
    Value *wv = in_const(im, 1, "the weights");
    if (!wv) return false;
    if (wv->crank != 2) return node_err(im, "the weights ('%s') have %d dimensions, expected 2", wv->name, wv->crank);
    int64_t ta = 0, tb = 0;
    double alpha = 1, beta = 1;
    if (gemm && (!attr_int(im, "transA", 0, &ta) || !attr_int(im, "transB", 0, &tb) || !attr_float(im, "alpha", 1, &alpha) ||
                 !attr_float(im, "beta", 1, &beta)))
        return false;
    if (ta) return node_err(im, "transA 1 (the input transposed) is not supported");
    int64_t d = x->dims[0], out = tb ? wv->cdims[0] : wv->cdims[1], wd = tb ? wv->cdims[1] : wv->cdims[0];
    if (wd != d) return node_err(im, "the weights [%lld, %lld] (transB %lld) do not fit an input of %lld features", (long long)wv->cdims[0],
                                 (long long)wv->cdims[1], (long long)tb, (long long)d);
    Value *bv = NULL;
    int fused = -1;
    if (gemm && has_in(im, 2)) {
        if (!(bv = in_const(im, 2, "the bias"))) return false;
        if (bv->numel != out && bv->numel != 1)
            return node_err(im, "the bias ('%s') has %lld values, expected %lld (or 1)", bv->name, (long long)bv->numel, (long long)out);
    }
    if (!gemm && (fused = sole_consumer(im, str(im->node->output[0]))) >= 0) {
        Onnx__NodeProto *add = im->g->node[fused];
        int other = add->n_input == 2 && strcmp(str(add->input[0]), str(im->node->output[0])) == 0 ? 1 : 0;
        int ci = add->n_input == 2 ? val_find(im, str(add->input[other])) : -1;
        if (strcmp(str(add->op_type), "Add") == 0 && str(add->domain)[0] == 0 && add->n_attribute == 0 && ci >= 0 &&
            im->vals[ci]->kind == V_CONST && im->vals[ci]->numel == out && add->n_output == 1)
            bv = im->vals[ci];
        else
            fused = -1;
    }
    if (!no_extra_outputs(im, 1)) return false;
    float *w = xrealloc(NULL, sizeof *w * (size_t)(out * d));
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < d; i++) w[o * d + i] = (float)(alpha * (tb ? wv->f[o * d + i] : wv->f[i * out + o]));
    float *bias = NULL;
    if (bv) {
        bias = xrealloc(NULL, sizeof *bias * (size_t)out);
        for (int64_t o = 0; o < out; o++) bias[o] = (float)(beta * bv->f[bv->numel == 1 ? 0 : o]);
    }
    Value *cs[2] = {wv, bv};
    static const char *const suf[2] = {"weight", "bias"};
    const char *inst = instance_name(im, "linear", cs, suf, 2);
    Buf b = {0};
    buf_printf(&b, "linear(%s, %lld%s) as \"%s\"", x->var, (long long)out, bv ? "" : ", bias = false", inst);
    int64_t ws[2] = {out, d};
    add_param(im, inst, "weight", 2, ws, w);
    if (bv) add_param(im, inst, "bias", 1, &out, bias);
    free(w);
    free(bias);
    bool ok;
    if (fused >= 0) { /* the statement defines the Add's output */
        Onnx__NodeProto *self = im->node;
        int self_index = im->node_index;
        im->consumed[fused] = true;
        im->node = im->g->node[fused];
        im->node_index = fused;
        ok = def_tensor(im, 0, 1, &out, b.s);
        im->node = self;
        im->node_index = self_index;
    } else
        ok = def_tensor(im, 0, 1, &out, b.s);
    free(b.s);
    return ok;
}

/* One input, same shape out, netc's op named in the table. */
/* x * sigmoid(x), SiLU as PyTorch exports it (a Sigmoid whose only reader
 * is a Mul of x by it): netc's silu, which defines the Mul's output (the
 * Mul is consumed).  False (nothing emitted) when the nodes are not this. */
static bool silu(Imp *im, Value *x) {
    const char *y = str(im->node->output[0]);
    int m = sole_consumer(im, y);
    if (m < 0 || im->consumed[m]) return false;
    Onnx__NodeProto *mn = im->g->node[m];
    if (strcmp(str(mn->op_type), "Mul") != 0 || str(mn->domain)[0] || mn->n_input != 2 || mn->n_output != 1) return false;
    const char *a = str(mn->input[0]), *b = str(mn->input[1]);
    if (!((strcmp(a, x->name) == 0 && strcmp(b, y) == 0) || (strcmp(a, y) == 0 && strcmp(b, x->name) == 0))) return false;
    char e[160];
    snprintf(e, sizeof e, "silu(%s)", x->var);
    im->consumed[m] = true;
    Onnx__NodeProto *self = im->node;
    int self_index = im->node_index;
    im->node = mn;
    im->node_index = m;
    bool ok = def_tensor(im, 0, x->rank, x->dims, e);
    im->node = self;
    im->node_index = self_index;
    return ok;
}

static bool emit_unary(Imp *im, const OpEntry *op) {
    Value *x = in_tensor(im, 0);
    if (!x || !no_extra_outputs(im, 1)) return false;
    if (strcmp(op->onnx, "Sigmoid") == 0 && silu(im, x)) return true;
    Buf b = {0};
    buf_printf(&b, "%s(%s)", op->netc, x->var);
    bool ok = def_tensor(im, 0, x->rank, x->dims, b.s);
    free(b.s);
    return ok;
}

/* LeakyRelu and Elu: one float attribute. */
static bool emit_alpha(Imp *im, const OpEntry *op) {
    bool leaky = strcmp(op->onnx, "LeakyRelu") == 0;
    Value *x = in_tensor(im, 0);
    double a;
    if (!x || !attr_float(im, "alpha", leaky ? 0.01 : 1.0, &a) || !no_extra_outputs(im, 1)) return false;
    Buf b = {0};
    buf_printf(&b, "%s(%s, %s = ", leaky ? "leaky_relu" : "elu", x->var, leaky ? "slope" : "alpha");
    buf_float(&b, a);
    buf_printf(&b, ")");
    bool ok = def_tensor(im, 0, x->rank, x->dims, b.s);
    free(b.s);
    return ok;
}

static bool emit_hardsigmoid(Imp *im, const OpEntry *op) {
    double a, be;
    if (!attr_float(im, "alpha", 0.2, &a) || !attr_float(im, "beta", 0.5, &be)) return false;
    if (fabs(a - 1.0 / 6) > 1e-6 || be != 0.5)
        return node_err(im, "alpha %g, beta %g: netc's hardsigmoid is relu6(x + 3) / 6 (alpha 1/6, beta 0.5, PyTorch's)", a, be);
    return emit_unary(im, op);
}

/* A scalar constant input, or the attribute of older opsets; *set false when absent. */
static bool clip_bound(Imp *im, int k, const char *name, double *v, bool *set) {
    *set = false;
    if (has_in(im, k)) {
        Value *c = in_const(im, k, name);
        if (!c) return false;
        if (c->numel != 1) return node_err(im, "the %s ('%s') has %lld values, expected 1", name, c->name, (long long)c->numel);
        *v = c->f[0];
        *set = true;
    } else if (attr(im, name)) {
        if (!attr_float(im, name, 0, v)) return false;
        *set = true;
    }
    return true;
}

static bool emit_clip(Imp *im, const OpEntry *op) {
    (void)op;
    double lo = 0, hi = 0;
    bool has_lo, has_hi;
    if (!clip_bound(im, 1, "min", &lo, &has_lo) || !clip_bound(im, 2, "max", &hi, &has_hi)) return false;
    const char *f = NULL;
    if (has_lo && lo == 0 && has_hi && hi == 6) f = "relu6";
    else if (has_lo && lo == 0 && (!has_hi || isinf(hi))) f = "relu";
    if (!f)
        return node_err(im, "Clip to [%s%g, %s%g]: netc has relu6 (Clip to [0, 6]) and relu (Clip at 0) only", has_lo ? "" : "no min ",
                        lo, has_hi ? "" : "no max ", hi);
    OpEntry e = {op->onnx, emit_unary, "", f};
    return emit_unary(im, &e);
}

static bool softmax_axis(Imp *im, Value *x) {
    int64_t axis;
    if (!attr_int(im, "axis", im->opset >= 13 ? -1 : 1, &axis)) return false;
    int64_t full = x->rank + 1;
    if (axis < 0) axis += full;
    if (axis != 1) return node_err(im, "axis %lld: netc normalizes over the channels (axis 1) only", (long long)axis);
    /* before opset 13 the op flattened from the axis on */
    if (im->opset < 13 && x->rank == 3 && x->dims[1] * x->dims[2] != 1)
        return node_err(im, "axis 1 before opset 13 normalizes over C x H x W together; netc normalizes over the channels");
    return true;
}

static bool emit_softmax(Imp *im, const OpEntry *op) {
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 1) || !softmax_axis(im, x)) return false;
    return emit_unary(im, op);
}

static bool emit_dropout(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    if (!x) return false;
    double p = 0.5;
    if (has_in(im, 1)) {
        Value *r = in_const(im, 1, "the ratio");
        if (!r) return false;
        if (r->numel != 1) return node_err(im, "the ratio has %lld values, expected 1", (long long)r->numel);
        p = r->f[0];
    } else if (!attr_float(im, "ratio", 0.5, &p))
        return false;
    if (has_in(im, 2)) {
        Value *t = in_const(im, 2, "training_mode");
        if (!t) return false;
        if (t->numel != 1 || t->f[0] != 0) return node_err(im, "training_mode must be false (an inference graph)");
    }
    if (!(p >= 0 && p < 1)) return node_err(im, "ratio %g is outside [0, 1)", p);
    if (!no_extra_outputs(im, 1)) return false;
    Buf b = {0};
    buf_printf(&b, "dropout(%s", x->var);
    if (p != 0.5) buf_printf(&b, ", p = "), buf_float(&b, p);
    buf_printf(&b, ")");
    bool ok = def_tensor(im, 0, x->rank, x->dims, b.s);
    free(b.s);
    return ok;
}

static bool emit_identity(Imp *im, const OpEntry *op) {
    (void)op;
    if (!has_in(im, 0) || !in_value(im, 0)) return node_err(im, "input 0 is missing");
    if (!no_extra_outputs(im, 1)) return false;
    def_alias(im, 0, in_value(im, 0));
    return true;
}

/* Add and Mul of two tensors, as netc's + and * (equal shapes, or one
 * [C, 1, 1] against [C, H, W]). */
/* Add, Sub, Mul, Div of two constants (shape arithmetic such as chunk's
 * split points): equal shapes, or one of them a single value.  Integers
 * divide as ONNX's Div does, truncating. */
static bool fold_binary(Imp *im, const char *op) {
    Value *a = in_value(im, 0), *b = in_value(im, 1);
    if (!no_extra_outputs(im, 1)) return false;
    Value *shape = a->numel >= b->numel ? a : b;
    if (a->numel != b->numel && a->numel != 1 && b->numel != 1)
        return node_err(im, "constants of %lld and %lld values: netc folds equal shapes or a single value", (long long)a->numel,
                        (long long)b->numel);
    bool is_int = a->is_int && b->is_int;
    Value *v = def_const(im, 0, shape->crank, shape->cdims, is_int);
    for (int64_t k = 0; k < v->numel; k++) {
        int64_t ka = a->numel == 1 ? 0 : k, kb = b->numel == 1 ? 0 : k;
        if (is_int) {
            int64_t x = a->i[ka], y = b->i[kb], r = 0;
            bool over = op[0] == 'A'   ? __builtin_add_overflow(x, y, &r)
                        : op[0] == 'S' ? __builtin_sub_overflow(x, y, &r)
                        : op[0] == 'M' ? __builtin_mul_overflow(x, y, &r)
                                       : (y == 0 || (x == INT64_MIN && y == -1));
            if (over) return node_err(im, "integer %s of %lld and %lld overflows or divides by zero", op, (long long)x, (long long)y);
            if (op[0] == 'D') r = x / y;
            v->i[k] = r;
            v->f[k] = (float)r;
        } else {
            double x = a->f[ka], y = b->f[kb];
            double r = op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;
            v->f[k] = (float)r;
            v->i[k] = isfinite(r) && fabs(r) < 9e18 ? (int64_t)r : 0;
        }
    }
    return true;
}

typedef struct LrnChain LrnChain;
static bool lrn_emit(Imp *im, const LrnChain *ch);

static bool emit_binary(Imp *im, const OpEntry *op) {
    if (im->lrn && im->lrn[im->node_index]) return lrn_emit(im, im->lrn[im->node_index]);
    if (has_in(im, 0) && has_in(im, 1) && in_value(im, 0) && in_value(im, 1) && in_value(im, 0)->kind == V_CONST &&
        in_value(im, 1)->kind == V_CONST)
        return fold_binary(im, op->onnx);
    if (!op->netc) return node_err(im, "netc has no %s of tensors (only of constants, which it folds)", op->onnx);
    Value *a = in_tensor(im, 0), *b = a ? in_tensor(im, 1) : NULL;
    if (!a || !b || !no_extra_outputs(im, 1)) return false;
    bool same = a->rank == b->rank && memcmp(a->dims, b->dims, sizeof *a->dims * (size_t)a->rank) == 0;
    Value *big = a;
    if (!same) {
        Value *small = a->rank == 3 && a->dims[1] == 1 && a->dims[2] == 1 ? a : b;
        big = small == a ? b : a;
        if (!(small->rank == 3 && small->dims[1] == 1 && small->dims[2] == 1 && big->rank == 3 && big->dims[0] == small->dims[0])) {
            char s1[160], s2[160];
            shape_str(s1, sizeof s1, a->rank, a->dims);
            shape_str(s2, sizeof s2, b->rank, b->dims);
            return node_err(im, "operands of shapes %s and %s per sample: netc broadcasts only [C, 1, 1] against [C, H, W]", s1, s2);
        }
    }
    Buf e = {0};
    buf_printf(&e, "%s %s %s", a->var, op->netc, b->var);
    bool ok = def_tensor(im, 0, big->rank, big->dims, e.s);
    free(e.s);
    return ok;
}

static bool emit_concat(Imp *im, const OpEntry *op) {
    (void)op;
    if (im->node->n_input < 1) return node_err(im, "no inputs");
    int64_t axis;
    if (!attr_int(im, "axis", 1, &axis)) return false;
    bool all_const = true;
    for (size_t k = 0; k < im->node->n_input; k++) {
        if (!has_in(im, (int)k) || !in_value(im, (int)k)) return node_err(im, "input %zu is missing", k);
        if (in_value(im, (int)k)->kind != V_CONST) all_const = false;
    }
    if (!no_extra_outputs(im, 1)) return false;
    if (all_const) { /* shape arithmetic: 1-D constants end to end */
        int64_t n = 0;
        for (size_t k = 0; k < im->node->n_input; k++) {
            Value *c = in_value(im, (int)k);
            if (c->crank != 1) return node_err(im, "a Concat of constants that are not 1-D");
            n += c->numel;
        }
        Value *v = def_const(im, 0, 1, &n, in_value(im, 0)->is_int);
        int64_t at = 0;
        for (size_t k = 0; k < im->node->n_input; k++) {
            Value *c = in_value(im, (int)k);
            memcpy(v->f + at, c->f, sizeof *c->f * (size_t)c->numel);
            memcpy(v->i + at, c->i, sizeof *c->i * (size_t)c->numel);
            at += c->numel;
        }
        return true;
    }
    Value *x0 = in_tensor(im, 0);
    if (!x0) return false;
    if (axis < 0) axis += x0->rank + 1;
    if (axis != 1) return node_err(im, "axis %lld: netc concatenates channels (axis 1) only", (long long)axis);
    int64_t dims[MAX_DIMS];
    memcpy(dims, x0->dims, sizeof dims);
    dims[0] = 0;
    Buf b = {0};
    buf_printf(&b, "concat(");
    for (size_t k = 0; k < im->node->n_input; k++) {
        Value *x = in_tensor(im, (int)k);
        if (!x) return free(b.s), false;
        if (x->rank != x0->rank || memcmp(x->dims + 1, x0->dims + 1, sizeof *x->dims * (size_t)(x->rank - 1)) != 0) {
            char s1[160], s2[160];
            shape_str(s1, sizeof s1, x0->rank, x0->dims);
            shape_str(s2, sizeof s2, x->rank, x->dims);
            free(b.s);
            return node_err(im, "inputs of shapes %s and %s per sample differ in more than the channels", s1, s2);
        }
        dims[0] += x->dims[0];
        buf_printf(&b, "%s%s", k ? ", " : "", x->var);
    }
    buf_printf(&b, ")");
    bool ok;
    if (im->node->n_input == 1) {
        def_alias(im, 0, x0);
        ok = true;
    } else
        ok = def_tensor(im, 0, x0->rank, dims, b.s);
    free(b.s);
    return ok;
}

static bool emit_slice_stmt(Imp *im, int k, Value *x, int64_t s, int64_t e) {
    int64_t dims[MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[0] = e - s;
    char t[200];
    snprintf(t, sizeof t, "slice(%s, %lld, %lld)", x->var, (long long)s, (long long)e);
    return def_tensor(im, k, x->rank, dims, t);
}

static bool emit_split(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    if (!x) return false;
    int64_t axis;
    if (!attr_int(im, "axis", 0, &axis)) return false;
    if (axis < 0) axis += x->rank + 1;
    if (axis != 1) return node_err(im, "axis %lld: netc splits channels (axis 1) only", (long long)axis);
    int nout = (int)im->node->n_output;
    if (nout < 1 || nout > 4096) return node_err(im, "%d outputs", nout);
    int64_t sizes[4096];
    int n = 0;
    if (has_in(im, 1)) {
        Value *c = in_const(im, 1, "the split sizes");
        if (!c) return false;
        if (c->numel != nout) return node_err(im, "%lld split sizes for %d outputs", (long long)c->numel, nout);
        for (int i = 0; i < nout; i++) sizes[i] = c->i[i];
        n = nout;
    } else {
        Onnx__AttributeProto *a = attr(im, "split");
        if (a) {
            if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS || a->n_ints != (size_t)nout)
                return node_err(im, "attribute 'split' must be a list of %d ints", nout);
            for (int i = 0; i < nout; i++) sizes[i] = a->ints[i];
            n = nout;
        }
    }
    if (!n) {
        if (x->dims[0] % nout) return node_err(im, "%lld channels do not split into %d equal parts", (long long)x->dims[0], nout);
        for (int i = 0; i < nout; i++) sizes[i] = x->dims[0] / nout;
    }
    int64_t at = 0;
    for (int i = 0; i < nout; i++) {
        if (sizes[i] < 1 || sizes[i] > x->dims[0] - at) return node_err(im, "split sizes do not add up to the %lld channels", (long long)x->dims[0]);
        at += sizes[i];
    }
    if (at != x->dims[0]) return node_err(im, "split sizes add up to %lld, not the %lld channels", (long long)at, (long long)x->dims[0]);
    at = 0;
    for (int i = 0; i < nout; i++) {
        if (str(im->node->output[i])[0] && !emit_slice_stmt(im, i, x, at, at + sizes[i])) return false;
        at += sizes[i];
    }
    return true;
}

static bool emit_slice(Imp *im, const OpEntry *op) {
    (void)op;
    Value *c = has_in(im, 0) && in_value(im, 0) && in_value(im, 0)->kind == V_CONST ? in_value(im, 0) : NULL;
    Value *x = c ? c : in_tensor(im, 0);
    if (!x || !no_extra_outputs(im, 1)) return false;
    int64_t st[2 * MAX_DIMS], en[2 * MAX_DIMS], ax[2 * MAX_DIMS], sp[2 * MAX_DIMS];
    int n = 0, na = 0, ns = 0;
    if (im->opset < 10) {
        int ne;
        if (!attr_ints(im, "starts", -1, &n, st) || !attr_ints(im, "ends", n, &ne, en) || !attr_ints(im, "axes", -1, &na, ax)) return false;
        if (!n) return node_err(im, "attribute 'starts' is missing");
    } else {
        Value *cs = in_const(im, 1, "the starts"), *ce = cs ? in_const(im, 2, "the ends") : NULL;
        if (!ce) return false;
        if (cs->numel != ce->numel || cs->numel > 2 * MAX_DIMS) return node_err(im, "%lld starts and %lld ends", (long long)cs->numel, (long long)ce->numel);
        n = (int)cs->numel;
        memcpy(st, cs->i, sizeof *st * (size_t)n);
        memcpy(en, ce->i, sizeof *en * (size_t)n);
        if (has_in(im, 3)) {
            Value *ca = in_const(im, 3, "the axes");
            if (!ca || !const_len(im, ca, n, "the axes")) return false;
            memcpy(ax, ca->i, sizeof *ax * (size_t)n);
            na = n;
        }
        if (has_in(im, 4)) {
            Value *cp = in_const(im, 4, "the steps");
            if (!cp || !const_len(im, cp, n, "the steps")) return false;
            memcpy(sp, cp->i, sizeof *sp * (size_t)n);
            ns = n;
        }
    }
    if (na && na != n) return node_err(im, "%d axes for %d starts", na, n);
    if (c) return fold_slice(im, c, n, st, en, ax, na, sp, ns);
    int64_t full = x->rank + 1, lo = 0, hi = x->dims[0];
    for (int i = 0; i < n; i++) {
        int64_t a = na ? ax[i] : i;
        if (a < 0) a += full;
        if (a < 0 || a >= full) return node_err(im, "axis %lld is out of range", (long long)(na ? ax[i] : i));
        if (ns && sp[i] != 1) return node_err(im, "step %lld: netc slices with step 1 only", (long long)sp[i]);
        int64_t dim = a == 0 ? im->batch : x->dims[a - 1];
        int64_t s = st[i], e = en[i];
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        s = s < 0 ? 0 : s > dim ? dim : s;
        e = e < 0 ? 0 : e > dim ? dim : e;
        if (a == 1) {
            lo = s;
            hi = e;
        } else if (s != 0 || e != dim)
            return node_err(im, "a slice of axis %lld: netc slices channels (axis 1) only", (long long)a);
    }
    if (lo >= hi) return node_err(im, "the slice [%lld, %lld) of the channels is empty", (long long)lo, (long long)hi);
    return emit_slice_stmt(im, 0, x, lo, hi);
}

static bool emit_pool(Imp *im, const OpEntry *op) {
    bool maxp = strcmp(op->onnx, "MaxPool") == 0;
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3)) return false;
    Win wn;
    if (!read_window(im, &wn, NULL, x->dims[1], x->dims[2])) return false;
    if (wn.d[0] != 1 || wn.d[1] != 1) return node_err(im, "dilations [%lld, %lld]: netc's pools have none", (long long)wn.d[0], (long long)wn.d[1]);
    if (wn.p[0] != wn.p[2] || wn.p[1] != wn.p[3])
        return node_err(im, "pads [%lld, %lld, %lld, %lld] are not symmetric; netc's pools pad both sides alike", (long long)wn.p[0],
                        (long long)wn.p[1], (long long)wn.p[2], (long long)wn.p[3]);
    for (int i = 0; i < 2; i++)
        if (2 * wn.p[i] > wn.k[i])
            return node_err(im, "pad %lld is more than half the kernel %lld (netc's and PyTorch's limit for pools)", (long long)wn.p[i],
                            (long long)wn.k[i]);
    int64_t ceil_mode, cip = 0, so = 0;
    if (!attr_int(im, "ceil_mode", 0, &ceil_mode) || (!maxp && !attr_int(im, "count_include_pad", 0, &cip)) ||
        (maxp && !attr_int(im, "storage_order", 0, &so)))
        return false;
    if (so) return node_err(im, "storage_order 1 is not supported");
    if (!no_extra_outputs(im, 1)) return false;
    int64_t dims[3] = {x->dims[0], 0, 0};
    for (int i = 0; i < 2; i++) {
        int64_t n = x->dims[1 + i], p = wn.p[i], k = wn.k[i], s = wn.s[i];
        if (n + 2 * p < k) return node_err(im, "the window %lld is larger than the padded input (%lld)", (long long)k, (long long)(n + 2 * p));
        int64_t o = ceil_mode ? (n + 2 * p - k + s - 1) / s + 1 : (n + 2 * p - k) / s + 1;
        if (ceil_mode && (o - 1) * s >= n + p) o--; /* PyTorch's rule: the last window starts inside */
        dims[1 + i] = o;
    }
    Buf b = {0};
    buf_printf(&b, "%s(%s, ", maxp ? "maxpool" : "avgpool", x->var);
    buf_pair(&b, wn.k[0], wn.k[1]);
    if (wn.s[0] != wn.k[0] || wn.s[1] != wn.k[1]) buf_printf(&b, ", stride = "), buf_pair(&b, wn.s[0], wn.s[1]);
    if (wn.p[0] || wn.p[1]) buf_printf(&b, ", pad = "), buf_pair(&b, wn.p[0], wn.p[1]);
    if (ceil_mode) buf_printf(&b, ", ceil = true");
    if (!maxp && !cip && (wn.p[0] || wn.p[1])) buf_printf(&b, ", count_pad = false");
    buf_printf(&b, ")");
    bool ok = def_tensor(im, 0, 3, dims, b.s);
    free(b.s);
    return ok;
}

static bool emit_global_pool(Imp *im, const OpEntry *op) {
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3) || !no_extra_outputs(im, 1)) return false;
    int64_t dims[3] = {x->dims[0], 1, 1};
    char t[200];
    snprintf(t, sizeof t, "%s(%s)", op->netc, x->var);
    return def_tensor(im, 0, 3, dims, t);
}

/* ReduceMean and ReduceMax over height and width (x.mean([2, 3])): netc's
 * global pools, flattened when keepdims is 0. */
static bool emit_reduce(Imp *im, const OpEntry *op) {
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3)) return false;
    int64_t keep, axes[2 * MAX_DIMS];
    int n;
    if (!attr_int(im, "keepdims", 1, &keep) || !attr_ints(im, "axes", -1, &n, axes)) return false;
    if (has_in(im, 1)) {
        Value *c = in_const(im, 1, "the axes");
        if (!c) return false;
        if (c->numel > 2 * MAX_DIMS) return node_err(im, "%lld axes", (long long)c->numel);
        n = (int)c->numel;
        memcpy(axes, c->i, sizeof *axes * (size_t)n);
    }
    bool h = false, w = false, other = n == 0;
    for (int i = 0; i < n; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + 4 : axes[i];
        if (a == 2) h = true;
        else if (a == 3) w = true;
        else other = true;
    }
    if (!h || !w || other) return node_err(im, "netc reduces over height and width together (axes [2, 3]) only");
    if (!no_extra_outputs(im, 1)) return false;
    char t[200];
    int64_t dims[3] = {x->dims[0], 1, 1};
    if (keep) snprintf(t, sizeof t, "%s(%s)", op->netc, x->var);
    else snprintf(t, sizeof t, "flatten(%s(%s))", op->netc, x->var);
    return def_tensor(im, 0, keep ? 3 : 1, dims, t);
}

static bool emit_flatten(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    int64_t axis;
    if (!x || !attr_int(im, "axis", 1, &axis) || !no_extra_outputs(im, 1)) return false;
    if (axis < 0) axis += x->rank + 1;
    if (axis != 1) return node_err(im, "axis %lld: netc flattens each sample (axis 1) only", (long long)axis);
    int64_t d = 1;
    for (int i = 0; i < x->rank; i++) d *= x->dims[i];
    char t[200];
    snprintf(t, sizeof t, "flatten(%s)", x->var);
    return def_tensor(im, 0, 1, &d, t);
}

/* ShuffleNet's channel shuffle as PyTorch exports it: Reshape to [N, g,
 * C/g, H, W], Transpose with perm [0, 2, 1, 3, 4], Reshape back to [N, C, H,
 * W], each the only reader of the one before: netc's channel_shuffle, which
 * defines the last Reshape's output (the other two are consumed).  full is
 * the first Reshape's resolved shape.  False (nothing emitted, no error) when
 * the nodes are not this pattern. */
static bool shuffle(Imp *im, Value *x, const int64_t *full) {
    if (full[1] * full[2] != x->dims[0] || full[3] != x->dims[1] || full[4] != x->dims[2]) return false;
    int t = sole_consumer(im, str(im->node->output[0]));
    if (t < 0 || im->consumed[t]) return false;
    Onnx__NodeProto *tn = im->g->node[t];
    if (strcmp(str(tn->op_type), "Transpose") != 0 || str(tn->domain)[0] || tn->n_output != 1 || tn->n_attribute != 1 ||
        strcmp(str(tn->attribute[0]->name), "perm") != 0 || tn->attribute[0]->n_ints != 5)
        return false;
    static const int64_t perm[5] = {0, 2, 1, 3, 4};
    if (memcmp(tn->attribute[0]->ints, perm, sizeof perm) != 0) return false;
    int r = sole_consumer(im, str(tn->output[0]));
    if (r < 0 || im->consumed[r]) return false;
    Onnx__NodeProto *rn = im->g->node[r];
    if (strcmp(str(rn->op_type), "Reshape") != 0 || str(rn->domain)[0] || rn->n_input != 2 || rn->n_output != 1 ||
        rn->n_attribute > 1 || strcmp(str(rn->input[0]), str(tn->output[0])) != 0)
        return false;
    if (rn->n_attribute == 1 && (strcmp(str(rn->attribute[0]->name), "allowzero") != 0 || rn->attribute[0]->i != 0))
        return false;
    int si = val_find(im, str(rn->input[1]));
    if (si < 0 || im->vals[si]->kind != V_CONST || im->vals[si]->numel != 4) return false;
    /* the second Reshape's shape, resolved against the transposed [N, C/g, g, H, W] */
    const int64_t tdims[5] = {full[0], full[2], full[1], full[3], full[4]}, want[4] = {full[0], x->dims[0], full[3], full[4]};
    int64_t got[4], known = 1, total = full[0] * x->dims[0] * full[3] * full[4];
    int infer = -1;
    for (int i = 0; i < 4; i++) {
        int64_t v = im->vals[si]->i[i];
        if (v == 0) v = tdims[i];
        if (v == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (v < 1) return false;
        got[i] = v;
        known *= v;
        if (known > total) return false;
    }
    if (infer >= 0) {
        if (total % known) return false;
        got[infer] = total / known;
    }
    if (memcmp(got, want, sizeof want) != 0) return false;
    char e[160];
    snprintf(e, sizeof e, "channel_shuffle(%s, %lld)", x->var, (long long)full[1]);
    im->consumed[t] = im->consumed[r] = true;
    Onnx__NodeProto *self = im->node;
    int self_index = im->node_index;
    im->node = rn;
    im->node_index = r;
    bool ok = def_tensor(im, 0, 3, x->dims, e);
    im->node = self;
    im->node_index = self_index;
    return ok;
}

static bool emit_reshape(Imp *im, const OpEntry *op) {
    (void)op;
    if (has_in(im, 0) && in_value(im, 0) && in_value(im, 0)->kind == V_CONST)
        return no_extra_outputs(im, 1) && fold_reshape(im, in_value(im, 0));
    Value *x = in_tensor(im, 0);
    if (!x) return false;
    Value *s = in_const(im, 1, "the shape");
    int64_t allowzero;
    if (!s || !attr_int(im, "allowzero", 0, &allowzero) || !no_extra_outputs(im, 1)) return false;
    if (s->crank != 1 || s->numel < 2 || s->numel > 6)
        return node_err(im, "the shape ('%s') must list 2 to 6 sizes, the batch first", s->name);
    int64_t full[MAX_DIMS], in_full[MAX_DIMS], total = im->batch, known = 1;
    in_full[0] = im->batch;
    for (int i = 0; i < x->rank; i++) total *= (in_full[i + 1] = x->dims[i]);
    int infer = -1;
    for (int i = 0; i < s->numel; i++) {
        int64_t v = s->i[i];
        if (v == 0 && !allowzero) {
            if (i > x->rank) return node_err(im, "size 0 (copy) at position %d, beyond the input's dimensions", i);
            v = in_full[i];
        }
        if (v == -1) {
            if (infer >= 0) return node_err(im, "more than one size -1 in the shape");
            infer = i;
            full[i] = 1;
            continue;
        }
        if (v < 1) return node_err(im, "a size %lld in the shape", (long long)v);
        if (v > MAX_ELEMS || known > MAX_ELEMS / v) return node_err(im, "the shape has more elements than the input");
        full[i] = v;
        known *= v;
    }
    if (infer >= 0) {
        if (total % known) return node_err(im, "no size -1 makes %lld elements", (long long)total);
        full[infer] = total / known;
    } else if (known != total)
        return node_err(im, "the shape holds %lld elements, the input %lld", (long long)known, (long long)total);
    if (full[0] != im->batch) return node_err(im, "the shape's first size %lld is not the batch %d; netc reshapes each sample", (long long)full[0], im->batch);
    if (s->numel == 5 && x->rank == 3 && shuffle(im, x, full)) return true;
    Buf b = {0};
    buf_printf(&b, "reshape(%s, [", x->var);
    for (int i = 1; i < s->numel; i++) buf_printf(&b, "%s%lld", i > 1 ? ", " : "", (long long)full[i]);
    buf_printf(&b, "])");
    bool ok = def_tensor(im, 0, (int)s->numel - 1, full + 1, b.s);
    free(b.s);
    return ok;
}

static bool emit_resize(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3)) return false;
    char mode[32], ctm[64], nm[32];
    if (!attr_str(im, "mode", "nearest", mode, sizeof mode) ||
        !attr_str(im, "coordinate_transformation_mode", "half_pixel", ctm, sizeof ctm) ||
        !attr_str(im, "nearest_mode", "round_prefer_floor", nm, sizeof nm))
        return false;
    int64_t excl;
    double cubic, extra;
    if (!attr_int(im, "exclude_outside", 0, &excl) || !attr_float(im, "cubic_coeff_a", -0.75, &cubic) ||
        !attr_float(im, "extrapolation_value", 0, &extra))
        return false;
    bool nearest = strcmp(mode, "nearest") == 0;
    if (nearest && !(strcmp(ctm, "asymmetric") == 0 && strcmp(nm, "floor") == 0))
        return node_err(im, "nearest with coordinate_transformation_mode '%s' and nearest_mode '%s': netc's nearest is asymmetric with floor (PyTorch's)", ctm, nm);
    if (!nearest && !(strcmp(mode, "linear") == 0 && (strcmp(ctm, "pytorch_half_pixel") == 0 || strcmp(ctm, "half_pixel") == 0)))
        return node_err(im, "mode '%s' with coordinate_transformation_mode '%s': netc has nearest and bilinear (half_pixel, PyTorch's align_corners=False)", mode, ctm);
    Value *sc = NULL, *sz = NULL;
    int si = im->opset >= 11 ? 2 : 1;
    if (has_in(im, si) && !(sc = in_const(im, si, "the scales"))) return false;
    if (im->opset >= 11 && has_in(im, 3) && !(sz = in_const(im, 3, "the sizes"))) return false;
    if (sc && sc->numel == 0) sc = NULL;
    if (sz && sz->numel == 0) sz = NULL;
    if (!sc == !sz) return node_err(im, "give either scales or sizes");
    if (!no_extra_outputs(im, 1)) return false;
    int64_t dims[3] = {x->dims[0], 0, 0};
    Buf b = {0};
    buf_printf(&b, "upsample(%s, ", x->var);
    if (sc) {
        if (sc->numel != 4 || sc->f[0] != 1 || sc->f[1] != 1 || !(sc->f[2] > 0) || !(sc->f[3] > 0) || sc->f[2] > 1e4 || sc->f[3] > 1e4)
            return free(b.s), node_err(im, "the scales must be [1, 1, sh, sw] with sh, sw positive");
        for (int i = 0; i < 2; i++) dims[1 + i] = (int64_t)floorf((float)x->dims[1 + i] * sc->f[2 + i]);
        buf_printf(&b, "scale = [");
        buf_float(&b, sc->f[2]);
        buf_printf(&b, ", ");
        buf_float(&b, sc->f[3]);
        buf_printf(&b, "]");
    } else {
        if (sz->numel != 4 || sz->i[0] != im->batch || sz->i[1] != x->dims[0])
            return free(b.s), node_err(im, "the sizes must be [N, C, h, w] with the input's N and C");
        dims[1] = sz->i[2];
        dims[2] = sz->i[3];
        buf_printf(&b, "size = [%lld, %lld]", (long long)dims[1], (long long)dims[2]);
    }
    if (!nearest) buf_printf(&b, ", mode = \"bilinear\"");
    buf_printf(&b, ")");
    bool ok = def_tensor(im, 0, 3, dims, b.s);
    free(b.s);
    return ok;
}

static bool emit_pad(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3)) return false;
    char mode[32];
    if (!attr_str(im, "mode", "constant", mode, sizeof mode)) return false;
    if (strcmp(mode, "constant") != 0) return node_err(im, "mode '%s': netc pads with zeros (constant) only", mode);
    int64_t p[2 * MAX_DIMS];
    int n;
    if (im->opset < 11) {
        double value;
        if (!attr_ints(im, "pads", 8, &n, p) || !attr_float(im, "value", 0, &value)) return false;
        if (!n) return node_err(im, "attribute 'pads' is missing");
        if (value != 0) return node_err(im, "a pad value %g: netc pads with zeros", value);
    } else {
        Value *c = in_const(im, 1, "the pads");
        if (!c) return false;
        if (c->numel != 8) return node_err(im, "the pads ('%s') have %lld values, expected 8", c->name, (long long)c->numel);
        memcpy(p, c->i, sizeof *p * 8);
        if (has_in(im, 2)) {
            Value *v = in_const(im, 2, "the pad value");
            if (!v) return false;
            if (v->numel != 1 || v->f[0] != 0) return node_err(im, "a pad value other than 0: netc pads with zeros");
        }
        if (has_in(im, 3)) return node_err(im, "input 3 (axes) is not supported");
    }
    if (!no_extra_outputs(im, 1)) return false;
    /* [N, C, H, W begins, N, C, H, W ends] */
    if (p[0] || p[1] || p[4] || p[5]) return node_err(im, "pads on the batch or channels: netc pads height and width only");
    for (int i = 0; i < 8; i++)
        if (p[i] < 0 || p[i] > 65536) return node_err(im, "a pad of %lld", (long long)p[i]);
    int64_t dims[3] = {x->dims[0], x->dims[1] + p[2] + p[6], x->dims[2] + p[3] + p[7]};
    char t[200];
    snprintf(t, sizeof t, "pad(%s, [%lld, %lld, %lld, %lld])", x->var, (long long)p[2], (long long)p[6], (long long)p[3], (long long)p[7]);
    return def_tensor(im, 0, 3, dims, t);
}

/* Output 0 of the node: lrn(x, size, alpha, beta, k), the one statement both
 * ONNX's LRN and PyTorch's exported chain (lrn_emit) become. */
static bool def_lrn(Imp *im, const Value *x, int64_t size, double alpha, double beta, double k) {
    Buf b = {0};
    buf_printf(&b, "lrn(%s, %lld, alpha = ", x->var, (long long)size);
    buf_float(&b, alpha);
    buf_printf(&b, ", beta = ");
    buf_float(&b, beta);
    buf_printf(&b, ", k = ");
    buf_float(&b, k);
    buf_printf(&b, ")");
    bool ok = def_tensor(im, 0, 3, x->dims, b.s);
    free(b.s);
    return ok;
}

static bool emit_lrn(Imp *im, const OpEntry *op) {
    (void)op;
    Value *x = in_tensor(im, 0);
    if (!x || !need_rank(im, x, 3, 3)) return false;
    int64_t size;
    double alpha, beta, bias;
    if (!attr_int(im, "size", 0, &size) || !attr_float(im, "alpha", 1e-4, &alpha) || !attr_float(im, "beta", 0.75, &beta) ||
        !attr_float(im, "bias", 1.0, &bias))
        return false;
    if (size < 1 || size > 65536) return node_err(im, "size %lld", (long long)size);
    if (size % 2 == 0) return node_err(im, "an even size %lld: ONNX's window and netc's (PyTorch's) differ by one channel", (long long)size);
    if (!(bias > 0)) return node_err(im, "bias %g must be positive", bias);
    if (!no_extra_outputs(im, 1)) return false;
    return def_lrn(im, x, size, alpha, beta, bias);
}

static bool emit_constant(Imp *im, const OpEntry *op) {
    (void)op;
    if (im->node->n_attribute != 1) return node_err(im, "a Constant needs exactly one attribute");
    if (!no_extra_outputs(im, 1)) return false;
    Onnx__AttributeProto *a = im->node->attribute[0];
    const char *an = str(a->name);
    int t = attr_type(a);
    if (strcmp(an, "value") == 0 && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR && a->t) {
        Value tmp = {0};
        char what[300];
        snprintf(what, sizeof what, "the value of node %d '%s' (Constant)", im->node_index, str(im->node->name));
        if (!read_tensor(im, a->t, &tmp, what)) {
            free(tmp.f);
            free(tmp.i);
            return false;
        }
        Value *v = def_const(im, 0, tmp.crank, tmp.cdims, tmp.is_int);
        memcpy(v->f, tmp.f, sizeof *v->f * (size_t)v->numel);
        memcpy(v->i, tmp.i, sizeof *v->i * (size_t)v->numel);
        free(tmp.f);
        free(tmp.i);
        return true;
    }
    bool one = strcmp(an, "value_float") == 0 || strcmp(an, "value_int") == 0;
    bool ints = strcmp(an, "value_int") == 0 || strcmp(an, "value_ints") == 0;
    int want = strcmp(an, "value_float") == 0 ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
               : strcmp(an, "value_floats") == 0 ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
               : strcmp(an, "value_int") == 0    ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
               : strcmp(an, "value_ints") == 0   ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                                                 : -1;
    if (want < 0 || t != want) return node_err(im, "attribute '%s' of type %d is not a constant netc reads", an, t);
    int64_t n = one ? 1 : (int64_t)(ints ? a->n_ints : a->n_floats);
    Value *v = def_const(im, 0, one ? 0 : 1, &n, ints);
    for (int64_t k = 0; k < n; k++) {
        if (ints) v->f[k] = (float)(v->i[k] = one ? a->i : a->ints[k]);
        else v->i[k] = (int64_t)(v->f[k] = one ? a->f : a->floats[k]);
    }
    return true;
}

/* Shape of a tensor: a constant, as the graph's sizes are all known. */
static bool emit_shape(Imp *im, const OpEntry *op) {
    (void)op;
    if (!has_in(im, 0) || !in_value(im, 0)) return node_err(im, "input 0 is missing");
    if (!no_extra_outputs(im, 1)) return false;
    if (attr(im, "start") || attr(im, "end")) return node_err(im, "attributes 'start' and 'end' are not supported");
    Value *x = in_value(im, 0);
    int64_t full[MAX_DIMS + 1], n;
    if (x->kind == V_TENSOR) {
        full[0] = im->batch;
        memcpy(full + 1, x->dims, sizeof *x->dims * (size_t)x->rank);
        n = x->rank + 1;
    } else {
        memcpy(full, x->cdims, sizeof *x->cdims * (size_t)x->crank);
        n = x->crank;
    }
    Value *v = def_const(im, 0, 1, &n, true);
    for (int64_t k = 0; k < n; k++) v->f[k] = (float)(v->i[k] = full[k]);
    return true;
}

/* Gather, Unsqueeze, Squeeze and Cast of constants (shape arithmetic). */
static bool emit_const_op(Imp *im, const OpEntry *op) {
    Value *c = in_const(im, 0, "the data");
    if (!c || !no_extra_outputs(im, 1)) return false;
    if (strcmp(op->onnx, "Gather") == 0) {
        Value *ix = in_const(im, 1, "the indices");
        int64_t axis;
        if (!ix || !attr_int(im, "axis", 0, &axis)) return false;
        if (c->crank != 1 || axis != 0 || ix->crank > 1)
            return node_err(im, "a Gather of constants other than 1-D data along axis 0");
        Value *v = def_const(im, 0, ix->crank, ix->cdims, c->is_int);
        for (int64_t k = 0; k < ix->numel; k++) {
            int64_t j = ix->i[k] < 0 ? ix->i[k] + c->numel : ix->i[k];
            if (j < 0 || j >= c->numel) return node_err(im, "index %lld is out of range", (long long)ix->i[k]);
            v->f[k] = c->f[j];
            v->i[k] = c->i[j];
        }
        return true;
    }
    if (strcmp(op->onnx, "Cast") == 0) {
        int64_t to;
        if (!attr_int(im, "to", 0, &to)) return false;
        bool is_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
        if (!is_int && to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && to != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
            return node_err(im, "a Cast to %s", dtype_name((int)to));
        Value *v = def_const(im, 0, c->crank, c->cdims, is_int);
        for (int64_t k = 0; k < c->numel; k++) {
            v->i[k] = c->is_int ? c->i[k] : (int64_t)c->f[k];
            v->f[k] = is_int ? (float)v->i[k] : c->f[k];
        }
        return true;
    }
    /* Unsqueeze and Squeeze: the data unchanged, the shape by the axes */
    int64_t axes[2 * MAX_DIMS];
    int n = 0;
    if (has_in(im, 1)) {
        Value *a = in_const(im, 1, "the axes");
        if (!a) return false;
        if (a->numel > 2 * MAX_DIMS) return node_err(im, "%lld axes", (long long)a->numel);
        n = (int)a->numel;
        memcpy(axes, a->i, sizeof *axes * (size_t)n);
    } else if (!attr_ints(im, "axes", -1, &n, axes))
        return false;
    int64_t dims[MAX_DIMS];
    int r = 0;
    if (strcmp(op->onnx, "Unsqueeze") == 0) {
        int out = c->crank + n, src = 0;
        if (out > MAX_DIMS) return node_err(im, "too many dimensions");
        for (int d = 0; d < out; d++) {
            bool ins = false;
            for (int k = 0; k < n; k++) ins |= (axes[k] < 0 ? axes[k] + out : axes[k]) == d;
            dims[r++] = ins ? 1 : c->cdims[src++];
        }
        if (src != c->crank) return node_err(im, "axes out of range");
    } else {
        for (int d = 0; d < c->crank; d++) {
            bool sq = n == 0 && c->cdims[d] == 1;
            for (int k = 0; k < n; k++) sq |= (axes[k] < 0 ? axes[k] + c->crank : axes[k]) == d;
            if (sq && c->cdims[d] != 1) return node_err(im, "axis %d has size %lld, not 1", d, (long long)c->cdims[d]);
            if (!sq) dims[r++] = c->cdims[d];
        }
    }
    Value *v = def_const(im, 0, r, dims, c->is_int);
    memcpy(v->f, c->f, sizeof *v->f * (size_t)c->numel);
    memcpy(v->i, c->i, sizeof *v->i * (size_t)c->numel);
    return true;
}


/* ---- constant folding: the shape arithmetic PyTorch's exporter writes
 * (F.pad's pads are a ConstantOfShape, Concat, Reshape, Slice with step -1,
 * Transpose and Cast of constants) ---------------------------------------- */

/* Element offsets of a row-major shape's dimensions. */
static void strides_of(int rank, const int64_t *dims, int64_t *st) {
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        st[d] = s;
        s *= dims[d];
    }
}

static bool fold_reshape(Imp *im, Value *c) {
    Value *s = in_const(im, 1, "the shape");
    int64_t allowzero;
    if (!s || !attr_int(im, "allowzero", 0, &allowzero)) return false;
    if (s->crank != 1 || s->numel > MAX_DIMS) return node_err(im, "the shape ('%s') must list at most %d sizes", s->name, MAX_DIMS);
    int64_t dims[MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < s->numel; i++) {
        int64_t v = s->i[i];
        if (v == 0 && !allowzero) {
            if (i >= c->crank) return node_err(im, "size 0 (copy) at position %d, beyond the data's dimensions", i);
            v = c->cdims[i];
        }
        if (v == -1 && infer < 0) {
            infer = i;
            dims[i] = 1;
            continue;
        }
        if (v < 0 || (v && known > MAX_ELEMS / v)) return node_err(im, "a size %lld in the shape", (long long)v);
        dims[i] = v;
        known *= v;
    }
    if (infer >= 0) {
        if (!known || c->numel % known) return node_err(im, "no size -1 makes %lld elements", (long long)c->numel);
        dims[infer] = c->numel / known;
    } else if (known != c->numel)
        return node_err(im, "the shape holds %lld elements, the data %lld", (long long)known, (long long)c->numel);
    Value *v = def_const(im, 0, (int)s->numel, dims, c->is_int);
    memcpy(v->f, c->f, sizeof *v->f * (size_t)c->numel);
    memcpy(v->i, c->i, sizeof *v->i * (size_t)c->numel);
    return true;
}

/* Slice of a constant along any axes, any nonzero steps (ONNX's clamping). */
static bool fold_slice(Imp *im, Value *c, int n, const int64_t *st, const int64_t *en, const int64_t *ax, int na,
                       const int64_t *sp, int ns) {
    int r = c->crank;
    int64_t start[MAX_DIMS], step[MAX_DIMS], cnt[MAX_DIMS];
    for (int d = 0; d < r; d++) {
        start[d] = 0;
        step[d] = 1;
        cnt[d] = c->cdims[d];
    }
    for (int i = 0; i < n; i++) {
        int64_t a = na ? ax[i] : i;
        if (a < 0) a += r;
        if (a < 0 || a >= r) return node_err(im, "axis %lld is out of range", (long long)(na ? ax[i] : i));
        int64_t dim = c->cdims[a], k = ns ? sp[i] : 1, s = st[i], e = en[i];
        if (k == 0) return node_err(im, "a step of 0");
        if (k > dim) k = dim + 1; /* as far as the end: the same slice, without overflow */
        if (k < -dim) k = -dim - 1;
        if (s < 0) s += dim;
        if (e < 0 && e > INT64_MIN / 2) e += dim;
        if (k > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            cnt[a] = e > s ? (e - s + k - 1) / k : 0;
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            cnt[a] = s > e ? (s - e + (-k) - 1) / (-k) : 0;
        }
        start[a] = s;
        step[a] = k;
    }
    Value *v = def_const(im, 0, r, cnt, c->is_int);
    int64_t strd[MAX_DIMS], idx[MAX_DIMS] = {0};
    strides_of(r, c->cdims, strd);
    for (int64_t o = 0; o < v->numel; o++) {
        int64_t src = 0;
        for (int d = 0; d < r; d++) src += (start[d] + idx[d] * step[d]) * strd[d];
        v->f[o] = c->f[src];
        v->i[o] = c->i[src];
        for (int d = r - 1; d >= 0 && ++idx[d] == cnt[d]; d--) idx[d] = 0;
    }
    return true;
}

static bool emit_transpose(Imp *im, const OpEntry *op) {
    (void)op;
    if (!has_in(im, 0) || !in_value(im, 0)) return node_err(im, "input 0 is missing");
    if (in_value(im, 0)->kind != V_CONST)
        return node_err(im, "netc has no transpose of tensors (only of constants, which it folds)");
    Value *c = in_value(im, 0);
    int n, r = c->crank;
    int64_t perm[2 * MAX_DIMS];
    if (!attr_ints(im, "perm", -1, &n, perm) || !no_extra_outputs(im, 1)) return false;
    if (!n)
        for (int d = 0; d < r; d++) perm[d] = r - 1 - d;
    else if (n != r)
        return node_err(im, "perm has %d values for %d dimensions", n, r);
    int64_t dims[MAX_DIMS], strd[MAX_DIMS], idx[MAX_DIMS] = {0};
    bool seen[MAX_DIMS] = {0};
    for (int d = 0; d < r; d++) {
        if (perm[d] < 0 || perm[d] >= r || seen[perm[d]]) return node_err(im, "perm is not a permutation");
        seen[perm[d]] = true;
        dims[d] = c->cdims[perm[d]];
    }
    strides_of(r, c->cdims, strd);
    Value *v = def_const(im, 0, r, dims, c->is_int);
    for (int64_t o = 0; o < v->numel; o++) {
        int64_t src = 0;
        for (int d = 0; d < r; d++) src += idx[d] * strd[perm[d]];
        v->f[o] = c->f[src];
        v->i[o] = c->i[src];
        for (int d = r - 1; d >= 0 && ++idx[d] == dims[d]; d--) idx[d] = 0;
    }
    return true;
}

static bool emit_constant_of_shape(Imp *im, const OpEntry *op) {
    (void)op;
    Value *s = in_const(im, 0, "the shape");
    if (!s || !no_extra_outputs(im, 1)) return false;
    if (s->crank != 1 || s->numel > MAX_DIMS) return node_err(im, "the shape must list at most %d sizes", MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < s->numel; i++) {
        if (s->i[i] < 0 || (s->i[i] && n > MAX_ELEMS / s->i[i])) return node_err(im, "a size %lld", (long long)s->i[i]);
        n *= s->i[i];
    }
    if (n > (1 << 20)) /* shape arithmetic is small; netc has no tensor literals */
        return node_err(im, "a constant of %lld elements: netc folds constants of at most %d", (long long)n, 1 << 20);
    double fill = 0;
    bool is_int = false;
    Onnx__AttributeProto *a = attr(im, "value");
    if (a) {
        if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR || !a->t) return node_err(im, "attribute 'value' must be a tensor");
        Value tmp = {0};
        bool ok = read_tensor(im, a->t, &tmp, "its attribute 'value'") && tmp.numel == 1;
        if (ok) {
            fill = tmp.is_int ? (double)tmp.i[0] : tmp.f[0];
            is_int = tmp.is_int;
        }
        free(tmp.f);
        free(tmp.i);
        if (!ok) return node_err(im, "attribute 'value' must hold one number");
    }
    Value *v = def_const(im, 0, (int)s->numel, s->i, is_int);
    for (int64_t k = 0; k < v->numel; k++) {
        v->f[k] = (float)fill;
        v->i[k] = (int64_t)fill;
    }
    return true;
}

/* One entry per ONNX op type netc imports (docs/interop.md). */
static const OpEntry op_table[] = {
    {"Conv", emit_conv, "kernel_shape strides pads dilations group auto_pad", NULL},
    {"ConvTranspose", emit_deconv, "kernel_shape strides pads dilations group auto_pad output_padding output_shape", NULL},
    {"BatchNormalization", emit_norm, "epsilon momentum training_mode spatial", NULL},
    {"InstanceNormalization", emit_norm, "epsilon", NULL},
    {"Gemm", emit_linear, "alpha beta transA transB", NULL},
    {"MatMul", emit_linear, "", NULL},
    {"Relu", emit_unary, "", "relu"},
    {"Sigmoid", emit_unary, "", "sigmoid"},
    {"Tanh", emit_unary, "", "tanh"},
    {"HardSwish", emit_unary, "", "hardswish"},
    {"Softplus", emit_unary, "", "softplus"},
    {"HardSigmoid", emit_hardsigmoid, "alpha beta", "hardsigmoid"},
    {"LeakyRelu", emit_alpha, "alpha", NULL},
    {"Elu", emit_alpha, "alpha", NULL},
    {"Clip", emit_clip, "min max", NULL},
    {"Softmax", emit_softmax, "axis", "softmax"},
    {"LogSoftmax", emit_softmax, "axis", "log_softmax"},
    {"Dropout", emit_dropout, "ratio seed is_test", NULL},
    {"Identity", emit_identity, "", NULL},
    {"Add", emit_binary, "", "+"},
    {"Mul", emit_binary, "", "*"},
    {"Sub", emit_binary, "", NULL},
    {"Div", emit_binary, "", NULL},
    {"Concat", emit_concat, "axis", NULL},
    {"Split", emit_split, "axis split", NULL},
    {"Slice", emit_slice, "starts ends axes", NULL},
    {"MaxPool", emit_pool, "kernel_shape strides pads dilations auto_pad ceil_mode storage_order", NULL},
    {"AveragePool", emit_pool, "kernel_shape strides pads auto_pad ceil_mode count_include_pad", NULL},
    {"GlobalAveragePool", emit_global_pool, "", "global_avgpool"},
    {"GlobalMaxPool", emit_global_pool, "", "global_maxpool"},
    {"ReduceMean", emit_reduce, "axes keepdims", "global_avgpool"},
    {"ReduceMax", emit_reduce, "axes keepdims", "global_maxpool"},
    {"Flatten", emit_flatten, "axis", NULL},
    {"Reshape", emit_reshape, "allowzero", NULL},
    {"Resize", emit_resize, "mode coordinate_transformation_mode nearest_mode cubic_coeff_a exclude_outside extrapolation_value", NULL},
    {"Pad", emit_pad, "mode pads value", NULL},
    {"LRN", emit_lrn, "size alpha beta bias", NULL},
    {"Constant", emit_constant, "value value_float value_floats value_int value_ints", NULL},
    {"Shape", emit_shape, "start end", NULL},
    {"Gather", emit_const_op, "axis", NULL},
    {"Unsqueeze", emit_const_op, "axes", NULL},
    {"Squeeze", emit_const_op, "axes", NULL},
    {"Cast", emit_const_op, "to", NULL},
    {"Transpose", emit_transpose, "perm", NULL},
    {"ConstantOfShape", emit_constant_of_shape, "value", NULL},
};

static const OpEntry *op_find(const char *type) {
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
        if (strcmp(op_table[i].onnx, type) == 0) return &op_table[i];
    return NULL;
}

/* Every attribute of the node is one the emitter reads. */
static bool attrs_known(Imp *im, const OpEntry *op) {
    for (size_t i = 0; i < im->node->n_attribute; i++) {
        const char *a = str(im->node->attribute[i]->name);
        size_t n = strlen(a);
        const char *p = op->attrs;
        bool found = false;
        while (n && (p = strstr(p, a))) {
            if ((p == op->attrs || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ')) {
                found = true;
                break;
            }
            p += n;
        }
        if (!found) return node_err(im, "attribute '%s' is not one netc knows for %s", a, op->onnx);
    }
    return true;
}

/* ---- PyTorch's local response normalization ------------------------------------
 * PyTorch exports F.local_response_norm (nn.LocalResponseNorm) not as ONNX's
 * LRN but as the arithmetic of its definition: the squares x * x, viewed as
 * [N, 1, C, H, W] (Unsqueeze, Reshape), zero-padded on the channels (Pad),
 * averaged over `size` channels (a 3-D AveragePool with the kernel [size,
 * 1, 1]), viewed back as [N, C, H, W] (Squeeze, Reshape, or an If choosing
 * between a Squeeze and an Identity of the same elements), times alpha, plus
 * k, to the power beta; x is divided by that.  lrn_find recognizes the chain
 * by its structure before any node is imported and marks its nodes consumed
 * (with those computing the If's condition from the pooled shape); lrn_emit,
 * at the Div, when every constant is known, checks that the views, pads,
 * window and scalars are those of local_response_norm and writes netc's lrn.
 * A chain that does not fit is not matched, and its first node netc cannot
 * import gives the error. */

#define LRN_MAX 32

struct LrnChain {
    int n;             /* the nodes from the Mul (x * x) to the Pow */
    int node[LRN_MAX];
};

static bool is_op(const Onnx__NodeProto *n, const char *type) {
    return strcmp(str(n->op_type), type) == 0 && (!str(n->domain)[0] || strcmp(str(n->domain), "ai.onnx") == 0);
}

/* The node whose outputs include name; -1 if none. */
static int producer(Imp *im, const char *name) {
    for (size_t n = 0; n < im->g->n_node; n++)
        for (size_t k = 0; k < im->g->node[n]->n_output; k++)
            if (strcmp(str(im->g->node[n]->output[k]), name) == 0) return (int)n;
    return -1;
}

/* A branch of the If: a Squeeze or Identity of v (and Constant nodes, its
 * axes), whose output is the branch's.  Either keeps the elements' order. */
static bool lrn_branch(const Onnx__AttributeProto *a, const char *v) {
    if (!a || attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH || !a->g) return false;
    const Onnx__GraphProto *b = a->g;
    if (b->n_output != 1) return false;
    int found = 0;
    for (size_t i = 0; i < b->n_node; i++) {
        const Onnx__NodeProto *n = b->node[i];
        if (is_op(n, "Constant")) continue;
        if (!(is_op(n, "Squeeze") || is_op(n, "Identity")) || n->n_input < 1 || n->n_output != 1 ||
            strcmp(str(n->input[0]), v) != 0 || strcmp(str(n->output[0]), str(b->output[0]->name)) != 0)
            return false;
        found++;
    }
    return found == 1;
}

/* The nodes computing the If's condition from the shape of the pooled v
 * (Shape, Gather, Equal, ...), each read only by the next: added to helpers. */
static bool lrn_condition(Imp *im, const char *name, const char *v, int *helpers, int *nh, int depth) {
    int p = producer(im, name);
    if (p < 0 || depth > 8) return false;
    Onnx__NodeProto *n = im->g->node[p];
    if (is_op(n, "Constant")) return true;
    if (n->n_output != 1 || sole_consumer(im, name) < 0 || *nh >= LRN_MAX) return false;
    if (is_op(n, "Shape")) {
        if (n->n_input != 1 || strcmp(str(n->input[0]), v) != 0) return false;
        helpers[(*nh)++] = p;
        return true;
    }
    static const char *const ops[] = {"Gather", "Equal", "Cast", "Squeeze", "Unsqueeze", "Not"};
    bool ok = false;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) ok |= is_op(n, ops[i]);
    if (!ok) return false;
    helpers[(*nh)++] = p;
    for (size_t k = 0; k < n->n_input; k++)
        if (str(n->input[k])[0] && val_find(im, str(n->input[k])) < 0 &&
            !lrn_condition(im, str(n->input[k]), v, helpers, nh, depth + 1))
            return false;
    return true;
}

/* The chain from the Mul node mi (x * x) to a Div of x by it, by op types
 * and links alone; the Div's index, or -1. */
static int lrn_chain(Imp *im, int mi, LrnChain *ch, int *helpers, int *nh) {
    Onnx__GraphProto *g = im->g;
    Onnx__NodeProto *m = g->node[mi];
    *nh = 0;
    if (!is_op(m, "Mul") || m->n_input != 2 || m->n_output != 1 || !str(m->input[0])[0] ||
        strcmp(str(m->input[0]), str(m->input[1])) != 0)
        return -1;
    const char *x = str(m->input[0]), *v = str(m->output[0]);
    ch->n = 0;
    ch->node[ch->n++] = mi;
    bool pooled = false;
    static const char *const data_ops[] = {"Unsqueeze", "Reshape", "Pad", "AveragePool", "Squeeze", "Mul", "Add", "Pow"};
    while (ch->n < LRN_MAX) {
        int c = sole_consumer(im, v);
        Onnx__NodeProto *cn = c >= 0 ? g->node[c] : NULL;
        if (cn && is_op(cn, "Div"))
            return pooled && cn->n_input == 2 && strcmp(str(cn->input[0]), x) == 0 && strcmp(str(cn->input[1]), v) == 0 ? c : -1;
        if (cn && is_op(cn, "Shape") && is_op(g->node[ch->node[ch->n - 1]], "AveragePool")) {
            /* the If between squeezing the pooled view and leaving it: its
             * branches read v, its condition is computed from v's shape */
            int f = -1;
            for (size_t n = 0; n < g->n_node && f < 0; n++) {
                Onnx__NodeProto *in = g->node[n];
                if (!is_op(in, "If") || in->n_input != 1 || in->n_output != 1 || in->n_attribute != 2) continue;
                const Onnx__AttributeProto *t = NULL, *e = NULL;
                for (size_t a = 0; a < 2; a++) {
                    if (strcmp(str(in->attribute[a]->name), "then_branch") == 0) t = in->attribute[a];
                    if (strcmp(str(in->attribute[a]->name), "else_branch") == 0) e = in->attribute[a];
                }
                if (lrn_branch(t, v) && lrn_branch(e, v)) f = (int)n;
            }
            if (f < 0 || !lrn_condition(im, str(g->node[f]->input[0]), v, helpers, nh, 0)) return -1;
            /* nothing but the condition's Shape reads v */
            for (size_t n = 0; n < g->n_node; n++)
                for (size_t k = 0; k < g->node[n]->n_input; k++)
                    if (strcmp(str(g->node[n]->input[k]), v) == 0) {
                        bool helper = false;
                        for (int h = 0; h < *nh; h++) helper |= helpers[h] == (int)n;
                        if (!helper) return -1;
                    }
            ch->node[ch->n++] = f;
            v = str(g->node[f]->output[0]);
            continue;
        }
        bool data = false;
        for (size_t i = 0; cn && i < sizeof data_ops / sizeof data_ops[0]; i++) data |= is_op(cn, data_ops[i]);
        if (!data || cn->n_input < 1 || cn->n_output != 1 || strcmp(str(cn->input[0]), v) != 0) return -1;
        pooled |= is_op(cn, "AveragePool");
        ch->node[ch->n++] = c;
        v = str(cn->output[0]);
    }
    return -1;
}

/* Before the import: every chain found, its nodes (but the Div) consumed,
 * the chain kept for the Div. */
static void lrn_find(Imp *im) {
    int helpers[LRN_MAX], nh;
    LrnChain ch;
    for (size_t n = 0; n < im->g->n_node; n++) {
        if (im->consumed[n]) continue;
        int d = lrn_chain(im, (int)n, &ch, helpers, &nh);
        if (d < 0 || im->lrn[d]) continue;
        im->lrn[d] = memcpy(xrealloc(NULL, sizeof ch), &ch, sizeof ch);
        for (int i = 0; i < ch.n; i++) im->consumed[ch.node[i]] = true;
        for (int i = 0; i < nh; i++) im->consumed[helpers[i]] = true;
    }
}

static void lrn_at(Imp *im, int n) {
    im->node = im->g->node[n];
    im->node_index = n;
}

/* A constant input k of the current node: its value, or NULL after an error. */
static Value *lrn_const(Imp *im, int k, const char *what) {
    Value *v = in_value(im, k);
    if (v && v->kind == V_CONST) return v;
    node_err(im, "in a local response normalization as PyTorch exports it: %s ('%s') must be a constant", what, in_name(im, k));
    return NULL;
}

static bool lrn_scalar(Imp *im, const char *what, double *out) {
    Value *c = lrn_const(im, 1, what);
    if (!c) return false;
    if (c->numel != 1 || c->is_int || !isfinite(c->f[0]))
        return node_err(im, "in a local response normalization as PyTorch exports it: %s must be one float", what);
    *out = c->f[0];
    return true;
}

/* The axes of the current Squeeze or Unsqueeze (an attribute before opset
 * 13, an input from it) into axes[2 * MAX_DIMS]; n = -1 when a Squeeze has
 * none. */
static bool lrn_axes(Imp *im, int64_t *axes, int *n) {
    *n = -1;
    if (has_in(im, 1)) {
        Value *a = lrn_const(im, 1, "the axes");
        if (!a) return false;
        if (a->numel > MAX_DIMS) return node_err(im, "%lld axes", (long long)a->numel);
        *n = (int)a->numel;
        memcpy(axes, a->i, sizeof *axes * (size_t)a->numel);
        return true;
    }
    if (!attr_ints(im, "axes", -1, n, axes)) return false;
    if (*n == 0) *n = -1;
    return true;
}

static bool lrn_emit(Imp *im, const LrnChain *ch) {
    int div = im->node_index;
    Value *x = in_tensor(im, 0);
    if (!x || !no_extra_outputs(im, 1)) return false;
    const char *pfx = "in a local response normalization as PyTorch exports it:";
    if (x->rank != 3) {
        char t[160];
        shape_str(t, sizeof t, x->rank, x->dims);
        return node_err(im, "%s x has the shape %s per sample; netc's lrn needs [C, H, W]", pfx, t);
    }
    const int64_t want5[5] = {im->batch, 1, x->dims[0], x->dims[1], x->dims[2]};
    const int64_t want4[4] = {im->batch, x->dims[0], x->dims[1], x->dims[2]};
    int64_t sh[MAX_DIMS], total = im->batch * x->dims[0] * x->dims[1] * x->dims[2], lo = 0, hi = 0, size = 0;
    int r = 4, stage = 0; /* 0 before the pool, 1 after it, 2, 3, 4 after alpha, k, beta */
    bool known = true, padded = false;
    double alpha = 0, k = 0, beta = 0;
    memcpy(sh, want4, sizeof want4);
    for (int i = 1; i < ch->n; i++) {
        lrn_at(im, ch->node[i]);
        Onnx__NodeProto *nd = im->node;
        const OpEntry *op = op_find(str(nd->op_type));
        if (op && !attrs_known(im, op)) return false;
        if (is_op(nd, "Unsqueeze") || is_op(nd, "Squeeze")) {
            bool un = is_op(nd, "Unsqueeze");
            int64_t axes[2 * MAX_DIMS];
            int n;
            if (!lrn_axes(im, axes, &n)) return false;
            if (!known) return node_err(im, "%s the shape before it is not known", pfx);
            if (un && n < 1) return node_err(im, "%s no axes", pfx);
            int64_t out[MAX_DIMS];
            int ro = un ? r + n : r, src = 0, o = 0;
            if (ro > MAX_DIMS) return node_err(im, "%s more than %d dimensions", pfx, MAX_DIMS);
            for (int d = 0; d < (un ? ro : r); d++) {
                bool hit = n < 0 ? !un && sh[d] == 1 : false;
                for (int a = 0; a < n; a++) hit |= (axes[a] < 0 ? axes[a] + (un ? ro : r) : axes[a]) == d;
                if (un) out[o++] = hit ? 1 : sh[src++];
                else if (hit && sh[d] != 1) return node_err(im, "%s a squeezed axis %d of size %lld", pfx, d, (long long)sh[d]);
                else if (!hit) out[o++] = sh[d];
            }
            if (un && src != r) return node_err(im, "%s axes out of range", pfx);
            r = o;
            memcpy(sh, out, sizeof *sh * (size_t)r);
        } else if (is_op(nd, "Reshape")) {
            Value *s = lrn_const(im, 1, "the shape");
            if (!s) return false;
            if (s->crank != 1 || s->numel < 1 || s->numel > MAX_DIMS) return node_err(im, "%s a shape of %lld sizes", pfx, (long long)s->numel);
            int64_t out[MAX_DIMS], prod = 1;
            int infer = -1;
            for (int d = 0; d < s->numel; d++) {
                int64_t v = s->i[d];
                if (v == 0) {
                    if (!known || d >= r) return node_err(im, "%s a size 0 (copy) where the input's size is not known", pfx);
                    v = sh[d];
                }
                if (v == -1 && infer < 0) {
                    infer = d;
                    out[d] = 1;
                    continue;
                }
                if (v < 1 || v > total) return node_err(im, "%s a size %lld in the shape", pfx, (long long)s->i[d]);
                out[d] = v;
                prod *= v;
                if (prod > total) return node_err(im, "%s the shape holds more elements than its input", pfx);
            }
            if (infer >= 0) {
                if (total % prod) return node_err(im, "%s no size -1 fits", pfx);
                out[infer] = total / prod;
            } else if (prod != total)
                return node_err(im, "%s the shape holds %lld elements, its input %lld", pfx, (long long)prod, (long long)total);
            r = (int)s->numel;
            memcpy(sh, out, sizeof *sh * (size_t)r);
            known = true;
        } else if (is_op(nd, "If")) {
            if (stage != 1) return node_err(im, "%s the If is not after the pool", pfx);
            known = false; /* the squeezed view or the same one: the same elements either way */
        } else if (is_op(nd, "Pad")) {
            char mode[32];
            if (!attr_str(im, "mode", "constant", mode, sizeof mode)) return false;
            if (stage != 0 || !known || r != 5 || memcmp(sh, want5, sizeof want5) != 0 || strcmp(mode, "constant") != 0)
                return node_err(im, "%s netc reads a zero pad of the squares viewed as [N, 1, C, H, W] here", pfx);
            Value *p = lrn_const(im, 1, "the pads");
            if (!p) return false;
            if (p->numel != 10) return node_err(im, "%s the pads ('%s') have %lld values, expected 10", pfx, p->name, (long long)p->numel);
            if (has_in(im, 2)) {
                Value *c = lrn_const(im, 2, "the pad value");
                if (!c) return false;
                if (c->numel != 1 || c->f[0] != 0) return node_err(im, "%s a pad value other than 0", pfx);
            }
            if (has_in(im, 3)) return node_err(im, "%s input 3 (axes) is not supported", pfx);
            for (int d = 0; d < 5; d++)
                if (d != 2 && (p->i[d] || p->i[5 + d]))
                    return node_err(im, "%s pads on axis %d; local_response_norm pads the channels (axis 2) only", pfx, d);
            if (p->i[2] < 0 || p->i[7] < 0 || p->i[2] > 65536 || p->i[7] > 65536)
                return node_err(im, "%s channel pads %lld and %lld", pfx, (long long)p->i[2], (long long)p->i[7]);
            lo += p->i[2];
            hi += p->i[7];
            padded = true;
        } else if (is_op(nd, "AveragePool")) {
            int64_t kern[2 * MAX_DIMS], strides[2 * MAX_DIMS], pads[2 * MAX_DIMS], ceil_mode;
            int nk, ns, np;
            char ap[32];
            if (!attr_ints(im, "kernel_shape", -1, &nk, kern) || !attr_ints(im, "strides", -1, &ns, strides) ||
                !attr_ints(im, "pads", -1, &np, pads) || !attr_int(im, "ceil_mode", 0, &ceil_mode) ||
                !attr_str(im, "auto_pad", "NOTSET", ap, sizeof ap))
                return false;
            if (stage != 0 || !padded) return node_err(im, "%s the pool is not after the pad", pfx);
            bool ok = nk == 3 && kern[0] >= 1 && kern[1] == 1 && kern[2] == 1 && strcmp(ap, "NOTSET") == 0;
            for (int d = 0; ok && d < ns; d++) ok = ns == 3 && strides[d] == 1;
            for (int d = 0; ok && d < np; d++) ok = np == 6 && pads[d] == 0;
            if (!ok) return node_err(im, "%s netc reads a 3-D average over channels here: kernel [size, 1, 1], strides 1, no pads", pfx);
            size = kern[0];
            if (lo != size / 2 || hi != (size - 1) / 2)
                return node_err(im, "%s channel pads %lld and %lld around a window of %lld; local_response_norm's are %lld and %lld", pfx,
                                (long long)lo, (long long)hi, (long long)size, (long long)(size / 2), (long long)((size - 1) / 2));
            (void)ceil_mode; /* a stride of 1 leaves no partial window */
            stage = 1;
        } else if (is_op(nd, "Mul") || is_op(nd, "Add") || is_op(nd, "Pow")) {
            int want = is_op(nd, "Mul") ? 1 : is_op(nd, "Add") ? 2 : 3;
            if (stage != want) return node_err(im, "%s netc reads (k + alpha * mean)^beta: Mul, Add, Pow in this order", pfx);
            if (want == 1 && (!known || r != 4 || memcmp(sh, want4, sizeof want4) != 0))
                return node_err(im, "%s the mean of the squares is not viewed back as [N, C, H, W]", pfx);
            if (!lrn_scalar(im, want == 1 ? "alpha" : want == 2 ? "k" : "beta", want == 1 ? &alpha : want == 2 ? &k : &beta))
                return false;
            stage++;
        } else
            return node_err(im, "%s an unexpected %s", pfx, str(nd->op_type));
    }
    lrn_at(im, div);
    if (stage != 4) return node_err(im, "%s the chain does not end in (k + alpha * mean)^beta", pfx);
    if (size > 65536) return node_err(im, "%s size %lld", pfx, (long long)size);
    if (!(k > 0)) return node_err(im, "%s k %g must be positive", pfx, k);
    return def_lrn(im, x, size, alpha, beta, k);
}

/* ---- the graph -------------------------------------------------------------------- */

static bool read_inputs(Imp *im) {
    int n = 0;
    for (size_t k = 0; k < im->g->n_input; k++) {
        Onnx__ValueInfoProto *in = im->g->input[k];
        const char *name = str(in->name);
        int e = val_find(im, name);
        if (e >= 0 && im->vals[e]->init_name) continue; /* an initializer listed as an input (IR < 4) */
        if (!name[0]) return file_err(im, "graph input %zu has no name", k);
        if (e >= 0) return file_err(im, "graph input '%s' is listed twice", name);
        Onnx__TypeProto *tp = in->type;
        if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
            return file_err(im, "graph input '%s' is not a tensor", name);
        Onnx__TypeProto__Tensor *tt = tp->tensor_type;
        int et = tt->has_elem_type ? tt->elem_type : 0;
        if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return file_err(im, "graph input '%s' has element type %s; netc's inputs are FLOAT", name, dtype_name(et));
        if (!tt->shape) return file_err(im, "graph input '%s' has no shape", name);
        int r = (int)tt->shape->n_dim;
        if (r < 2 || r > 6) return file_err(im, "graph input '%s' has %d dimensions; netc needs [N, C, H, W] or [N, D] (the batch first)", name, r);
        Value *v = val_add(im, name, V_TENSOR);
        v->rank = r - 1;
        int64_t numel = 1;
        for (int d = 0; d < r; d++) {
            Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
            bool known = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            if (d == 0) {
                int b = known && dm->dim_value > 0 && dm->dim_value <= 4096 ? (int)dm->dim_value : known ? -1 : 1;
                if (b < 0) return file_err(im, "graph input '%s' has a batch size of %lld", name, (long long)dm->dim_value);
                if (n && b != im->batch) return file_err(im, "the graph inputs have different batch sizes");
                im->batch = b;
                continue;
            }
            if (!known) return file_err(im, "graph input '%s' has a symbolic size in dimension %d; netc needs every size but the batch", name, d);
            if (dm->dim_value < 1 || dm->dim_value > MAX_ELEMS / numel)
                return file_err(im, "graph input '%s' has a size %lld in dimension %d", name, (long long)dm->dim_value, d);
            numel *= (v->dims[d - 1] = dm->dim_value);
        }
        v->var = make_ident(im, name);
        char t[160];
        shape_str(t, sizeof t, v->rank, v->dims);
        buf_printf(&im->text, "    input %s: %s;\n", v->var, t);
        n++;
    }
    if (!n) return file_err(im, "the graph has no input (besides initializers)");
    return true;
}

/* The nodes in an order where each comes after those it reads from: the
 * file's own when it is already so (ONNX requires it), else Kahn's. */
static bool sort_nodes(Imp *im, int *order) {
    size_t nn = im->g->n_node;
    /* which node makes each value: a table of output names */
    Imp names = {0};
    bool ok = true;
    for (size_t n = 0; n < nn && ok; n++) {
        Onnx__NodeProto *nd = im->g->node[n];
        for (size_t k = 0; k < nd->n_output; k++) {
            const char *o = str(nd->output[k]);
            if (!o[0]) continue;
            if (val_find(im, o) >= 0 || val_find(&names, o) >= 0) {
                im->node = nd;
                im->node_index = (int)n;
                ok = node_err(im, "output '%s' is defined twice", o);
                break;
            }
            val_add(&names, o, V_TENSOR)->rank = (int)n;
        }
    }
    int *pending = ok ? calloc(nn ? nn : 1, sizeof *pending) : NULL;
    int *queue = ok ? calloc(nn ? nn : 1, sizeof *queue) : NULL;
    for (size_t n = 0; n < nn && ok; n++) {
        Onnx__NodeProto *nd = im->g->node[n];
        im->node = nd;
        im->node_index = (int)n;
        for (size_t k = 0; k < nd->n_input; k++) {
            const char *in = str(nd->input[k]);
            if (!in[0] || val_find(im, in) >= 0) continue;
            if (val_find(&names, in) < 0) {
                ok = node_err(im, "input %zu '%s' is not defined (no initializer, graph input or node makes it)", k, in);
                break;
            }
            pending[n]++;
        }
    }
    int head = 0, tail = 0;
    bool sorted = true;
    for (size_t n = 0; n < nn && ok; n++) {
        if (pending[n]) sorted = false;
        if (!pending[n]) queue[tail++] = (int)n;
    }
    if (ok && sorted) { /* no node reads another: keep the file's order */
        for (size_t n = 0; n < nn; n++) order[n] = (int)n;
    } else if (ok) {
        /* Is the file's order already topological? */
        bool in_order = true;
        for (size_t n = 0; n < nn && in_order; n++) {
            Onnx__NodeProto *nd = im->g->node[n];
            for (size_t k = 0; k < nd->n_input; k++) {
                int p = val_find(&names, str(nd->input[k]));
                if (p >= 0 && names.vals[p]->rank >= (int)n) in_order = false;
            }
        }
        if (in_order) {
            for (size_t n = 0; n < nn; n++) order[n] = (int)n;
        } else {
            int done = 0;
            while (head < tail) {
                int n = queue[head++];
                order[done++] = n;
                Onnx__NodeProto *nd = im->g->node[n];
                for (size_t k = 0; k < nd->n_output; k++) {
                    const char *o = str(nd->output[k]);
                    if (!o[0]) continue;
                    for (size_t m = 0; m < nn; m++) {
                        Onnx__NodeProto *md = im->g->node[m];
                        for (size_t j = 0; j < md->n_input; j++)
                            if (strcmp(str(md->input[j]), o) == 0 && --pending[m] == 0) queue[tail++] = (int)m;
                    }
                }
            }
            if (done < (int)nn) {
                for (size_t n = 0; n < nn; n++)
                    if (pending[n]) {
                        im->node = im->g->node[n];
                        im->node_index = (int)n;
                        ok = node_err(im, "the graph has a cycle through this node");
                        break;
                    }
            }
        }
    }
    free(pending);
    free(queue);
    for (int i = 0; i < names.nvals; i++) free(names.vals[i]->name), free(names.vals[i]);
    free(names.vals);
    free(names.slots);
    return ok;
}

static void imp_free(Imp *im) {
    for (int i = 0; i < im->nvals; i++) {
        free(im->vals[i]->name);
        free(im->vals[i]->var);
        free(im->vals[i]->f);
        free(im->vals[i]->i);
        free(im->vals[i]);
    }
    free(im->vals);
    free(im->slots);
    for (int i = 0; i < im->nnames; i++) free(im->names[i]);
    free(im->names);
    free(im->consumed);
    for (size_t n = 0; n < im->nlrn; n++) free(im->lrn[n]);
    free(im->lrn);
    free(im->text.s);
    for (int i = 0; i < im->nparams; i++) {
        free((char *)im->params[i].name);
        free(im->params[i].data);
    }
    free(im->params);
    if (im->model) onnx__model_proto__free_unpacked(im->model, NULL);
}

static bool import_graph(Imp *im, const char *net_name, const char *weights_name) {
    Onnx__ModelProto *m = im->model;
    Onnx__GraphProto *g = im->g = m->graph;
    if (!g) return file_err(im, "the model holds no graph");
    im->opset = 0;
    for (size_t k = 0; k < m->n_opset_import; k++) {
        const char *d = str(m->opset_import[k]->domain);
        if (d[0] == 0 || strcmp(d, "ai.onnx") == 0) im->opset = m->opset_import[k]->has_version ? m->opset_import[k]->version : 0;
    }
    if (im->opset < 1) return file_err(im, "the model imports no version of the ONNX operator set");
    if (g->n_node == 0) return file_err(im, "the graph is empty (no nodes)");
    if (g->n_output == 0) return file_err(im, "the graph has no output");
    if (g->n_sparse_initializer) return file_err(im, "sparse initializers are not supported");
    /* initializers: the constants */
    for (size_t k = 0; k < g->n_initializer; k++) {
        Onnx__TensorProto *t = g->initializer[k];
        const char *name = str(t->name);
        if (!name[0]) return file_err(im, "initializer %zu has no name", k);
        if (val_find(im, name) >= 0) return file_err(im, "initializer '%s' is defined twice", name);
        Value *v = val_add(im, name, V_CONST);
        v->init_name = v->name;
        char what[300];
        snprintf(what, sizeof what, "initializer '%.200s'", name);
        if (!read_tensor(im, t, v, what)) return false;
    }
    Buf head = {0};
    char *nn = make_ident(im, net_name);
    im->text.len = 0;
    if (!read_inputs(im)) return free(nn), false;
    buf_printf(&head,
               "# Imported by netc import from %s (producer: %s%s%s, ONNX operator set %lld).\n"
               "# Weights: %s.  Build with netc build ... --batch %d (the model's batch).\n"
               "net %s {\n",
               strrchr(im->path, '/') ? strrchr(im->path, '/') + 1 : im->path, str(m->producer_name)[0] ? str(m->producer_name) : "unknown", str(m->producer_version)[0] ? " " : "",
               str(m->producer_version), (long long)im->opset,
               weights_name, im->batch, nn);
    free(nn);
    int *order = xrealloc(NULL, sizeof *order * g->n_node);
    im->consumed = calloc(g->n_node, sizeof *im->consumed);
    im->lrn = calloc(g->n_node, sizeof *im->lrn);
    im->nlrn = g->n_node;
    bool ok = sort_nodes(im, order);
    if (ok) lrn_find(im);
    /* Constant nodes first (they read nothing, so any order of them is
     * topological): a pattern such as the channel shuffle's then sees the
     * shapes of the nodes after it. */
    for (size_t k = 0; ok && k < 2 * g->n_node; k++) {
        int n = order[k % g->n_node];
        bool constant = strcmp(str(g->node[n]->op_type), "Constant") == 0 && !str(g->node[n]->domain)[0];
        if (im->consumed[n] || constant != (k < g->n_node)) continue;
        im->node = g->node[n];
        im->node_index = n;
        const char *type = str(im->node->op_type), *dom = str(im->node->domain);
        if (dom[0] && strcmp(dom, "ai.onnx") != 0) {
            ok = node_err(im, "the op is from domain '%s'; netc imports the standard ONNX ops", dom);
            break;
        }
        const OpEntry *op = op_find(type);
        if (!op) {
            ok = node_err(im, "netc has no op for ONNX's %s (docs/interop.md lists those it imports)", type[0] ? type : "(empty op type)");
            break;
        }
        if (im->node->n_output < 1 || !str(im->node->output[0])[0]) {
            ok = node_err(im, "the node has no output");
            break;
        }
        ok = attrs_known(im, op) && op->emit(im, op);
    }
    free(order);
    /* outputs */
    for (size_t o = 0; ok && o < g->n_output; o++) {
        const char *name = str(g->output[o]->name);
        int i = val_find(im, name);
        if (i < 0) ok = file_err(im, "graph output '%s' is not computed by any node", name);
        else if (im->vals[i]->kind != V_TENSOR) ok = file_err(im, "graph output '%s' is a constant; netc's outputs are computed from the input", name);
        else if (!im->vals[i]->out_stmt) { /* an input, or a value renamed by Identity */
            char *id = make_ident(im, name);
            buf_printf(&im->text, "    output %s = %s;\n", id, im->vals[i]->var);
            free(id);
        }
    }
    if (ok) {
        buf_printf(&im->text, "}\n");
        buf_printf(&head, "%s", im->text.s);
        free(im->text.s);
        im->text = head;
    } else
        free(head.s);
    return ok;
}

OnnxNet *onnx_import(const uint8_t *data, size_t size, const char *path, const char *net_name, const char *weights_name) {
    Imp im = {.path = path, .batch = 1};
    im.model = onnx__model_proto__unpack(NULL, size, data);
    if (!im.model) {
        file_err(&im, "not an ONNX model: the protobuf does not parse (truncated or not a ModelProto)");
        return NULL;
    }
    if (!import_graph(&im, net_name, weights_name)) {
        imp_free(&im);
        return NULL;
    }
    OnnxNet *r = calloc(1, sizeof *r);
    r->text = im.text.s;
    im.text.s = NULL;
    r->params = im.params;
    r->nparams = im.nparams;
    im.params = NULL;
    im.nparams = 0;
    r->batch = im.batch;
    imp_free(&im);
    return r;
}

void onnx_net_free(OnnxNet *n) {
    if (!n) return;
    free(n->text);
    for (int i = 0; i < n->nparams; i++) {
        free((char *)n->params[i].name);
        free(n->params[i].data);
    }
    free(n->params);
    free(n);
}
