/* Driving an emitted model: loading its parameters from safetensors, and
 * netrt_main, the command line of an emitted inference program. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netrt.h"

/* ---- parameters ------------------------------------------------------------ */

bool netrt_dtype_is_float(netrt_dtype t) {
    return t == NETRT_F32 || t == NETRT_F64 || t == NETRT_F16 || t == NETRT_BF16;
}

static bool same_shape(int ra, const int64_t *a, int rb, const int64_t *b) {
    if (ra != rb) return false;
    for (int i = 0; i < ra; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static uint64_t load_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static float half_to_float(uint16_t h) {
    unsigned exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), (int)exp - 25);
    return h & 0x8000 ? -v : v;
}

void netrt_st_entry_to_f32(const netrt_st_entry *e, float *dst) {
    const unsigned char *p = e->data;
    size_t n = (size_t)netrt_numel(e->rank, e->shape);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        double d;
        switch (e->dtype) {
        case NETRT_F32:
            u = (uint32_t)load_le(p + 4 * i, 4);
            memcpy(&dst[i], &u, 4);
            break;
        case NETRT_F64: {
            uint64_t b = load_le(p + 8 * i, 8);
            memcpy(&d, &b, 8);
            dst[i] = (float)d;
            break;
        }
        case NETRT_F16: dst[i] = half_to_float((uint16_t)load_le(p + 2 * i, 2)); break;
        case NETRT_BF16:
            u = (uint32_t)load_le(p + 2 * i, 2) << 16;
            memcpy(&dst[i], &u, 4);
            break;
        default: dst[i] = 0; break;
        }
    }
}

static bool is_batch_counter(const netrt_st_entry *e) {
    const char *suffix = "num_batches_tracked";
    size_t n = strlen(e->name), k = strlen(suffix);
    if (netrt_dtype_is_float(e->dtype) || n < k || strcmp(e->name + n - k, suffix) != 0) return false;
    return n == k || e->name[n - k - 1] == '.';
}

static const netrt_tensor *find_param(const netrt_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

/* Checks every parameter and every tensor of the file before changing any
 * parameter, so a failed load leaves the model as it was. */
static int check_params(const netrt_model *m, const netrt_st_file *f, const char *path, char *err,
                        size_t errlen) {
    char want[160], got[160];
    for (int i = 0; i < m->nparams; i++) {
        const netrt_tensor *p = &m->params[i];
        const netrt_st_entry *e = netrt_st_find(f, p->name);
        netrt_shape_str(p->rank, p->shape, want, sizeof want);
        if (!e)
            return netrt_errorf(err, errlen, "%s: missing tensor '%s' (expected shape %s)", path,
                                p->name, want);
        if (!netrt_dtype_is_float(e->dtype))
            return netrt_errorf(err, errlen,
                                "%s: tensor '%s' has dtype %s, expected a float dtype (F32, F64, F16 "
                                "or BF16)",
                                path, p->name, netrt_dtype_name(e->dtype));
        if (!same_shape(e->rank, e->shape, p->rank, p->shape))
            return netrt_errorf(err, errlen, "%s: tensor '%s' has shape %s, expected %s", path,
                                p->name, netrt_shape_str(e->rank, e->shape, got, sizeof got),
                                want);
    }
    for (int i = 0; i < f->count; i++)
        if (!find_param(m, f->entries[i].name) && !is_batch_counter(&f->entries[i]))
            return netrt_errorf(err, errlen,
                                "%s: unexpected tensor '%s' (the model has no such parameter)",
                                path, f->entries[i].name);
    return 0;
}

int netrt_load_params(const netrt_model *m, const char *path, char *err, size_t errlen) {
    netrt_st_file f;
    if (netrt_st_open(path, &f, err, errlen) < 0) return -1;
    int rc = check_params(m, &f, path, err, errlen);
    for (int i = 0; rc == 0 && i < m->nparams; i++) {
        const netrt_tensor *p = &m->params[i];
        netrt_st_entry_to_f32(netrt_st_find(&f, p->name), p->data);
    }
    netrt_st_close(&f);
    return rc;
}

/* ---- --check-numerics ---------------------------------------------------------- */

/* The batch being run (netrt_numerics_batch) and the first failure. */
static struct {
    const char *label;
    const int64_t *index;
    int64_t first, count;
    bool failed;
    char msg[640];
} numerics = {.count = INT64_MAX};

void netrt_numerics_batch(const char *label, const int64_t *index, int64_t first, int64_t count) {
    numerics.label = label;
    numerics.index = index;
    numerics.first = first;
    numerics.count = count;
}

const char *netrt_numerics_error(void) { return numerics.failed ? numerics.msg : NULL; }

void netrt_numerics_reset(void) {
    numerics.failed = false;
    numerics.msg[0] = '\0';
    netrt_numerics_batch(NULL, NULL, 0, INT64_MAX);
}

int netrt_check_finite(const float *p, int64_t n, int64_t per_sample, const char *what, const char *op,
                       const char *name, const char *where) {
    if (numerics.failed) return -1;
    if (per_sample > 0 && n / per_sample > numerics.count) n = numerics.count * per_sample; /* padding */
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(p[i])) continue;
        char *b = numerics.msg;
        size_t len = sizeof numerics.msg;
        int at = snprintf(b, len, "numerics: %s in %s of %s \"%s\" (%s)",
                          isnan(p[i]) ? "NaN" : p[i] > 0 ? "Inf" : "-Inf", what, op, name, where);
        if (at < 0 || (size_t)at >= len) at = 0;
        if (per_sample > 0) {
            int64_t r = i / per_sample;
            int64_t s = numerics.index ? numerics.index[numerics.first + r] : numerics.first + r;
            snprintf(b + at, len - (size_t)at, ", %s %lld, element %lld",
                     numerics.label ? numerics.label : "sample", (long long)s, (long long)(i % per_sample));
        } else {
            snprintf(b + at, len - (size_t)at, ", element %lld", (long long)i);
        }
        numerics.failed = true;
        return -1;
    }
    return 0;
}

/* ---- the command line -------------------------------------------------------- */

typedef struct {
    const netrt_model *m;
    const char *prog;
    const char *weights, *labels_path;
    const char *classes;                /* "name0,name1,..." or NULL */
    const char **in_files, **out_files; /* per model input / output, or NULL */
    int64_t limit;                      /* 0: all samples */
    int64_t repeat, warmup;             /* --repeat R (0: not timed), --warmup W */
    bool print, help, check_numerics;
    netrt_array *in; /* per input, as read */
    netrt_array labels;
    int64_t S; /* samples to run */
    float **out; /* per output, [S, ...] */
    char err[1024];
} job;

static void job_free(job *j) {
    if (j->in)
        for (int i = 0; i < j->m->ninputs; i++) netrt_array_free(&j->in[i]);
    if (j->out)
        for (int i = 0; i < j->m->noutputs; i++) free(j->out[i]);
    netrt_array_free(&j->labels);
    free(j->in);
    free(j->out);
    free(j->in_files);
    free(j->out_files);
}

static int64_t per_sample(const netrt_tensor *t) { return netrt_numel(t->rank - 1, t->shape + 1); }

/* "[S, 1, 28, 28]" for a tensor [N, 1, 28, 28]. */
static const char *batch_shape_str(const netrt_tensor *t, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n, "[S");
    for (int d = 1; d < t->rank && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, ", %lld", (long long)t->shape[d]);
    if (len < n) snprintf(buf + len, n - len, "]");
    return buf;
}

static void usage(const job *j, FILE *out) {
    const netrt_model *m = j->m;
    char sh[160];
    fprintf(out,
            "usage: %s%s --input [NAME=]FILE ... [--output [NAME=]FILE ...]\n"
            "       [--limit N] [--labels FILE] [--print] [--classes A,B,...] [--check-numerics]\n"
            "       [--repeat R [--warmup W]]\n\n"
            "Runs the network '%s' (compiled from %s, batch %d) on the samples of the input\n"
            "arrays: float32 .npy [S, ...], or uint8 (.npy or IDX, gzip or not) scaled to [0, 1].\n\n"
            "  --weights FILE         safetensors parameters%s\n"
            "  --input [NAME=]FILE    an input array (NAME may be left out with one input)\n"
            "  --output [NAME=]FILE   write an output as float32 .npy\n"
            "  --limit N              run only the first N samples\n"
            "  --labels FILE          integer labels (.npy or IDX): print predictions and accuracy\n"
            "  --print                print each sample's arg-max class\n"
            "  --classes A,B,...      class names to print beside the class numbers\n"
            "  --check-numerics       stop at the first op that computes a NaN or an Inf\n"
            "  --repeat R             time the inference: run each batch W + R times, time the\n"
            "                         last R, print the median and min ms per batch on stderr\n"
            "  --warmup W             untimed runs of each batch before the R timed ones (default 1)\n"
            "  --help                 this message\n\n",
            j->prog, m->embedded ? " [--weights FILE]" : " --weights FILE", m->name ? m->name : "?",
            m->source ? m->source : "?", m->batch,
            m->embedded ? " (default: the embedded ones)" : "");
    for (int i = 0; i < m->ninputs; i++)
        fprintf(out, "input  %s: %s\n", m->inputs[i].name,
                batch_shape_str(&m->inputs[i], sh, sizeof sh));
    for (int i = 0; i < m->noutputs; i++)
        fprintf(out, "output %s: %s\n", m->outputs[i].name,
                batch_shape_str(&m->outputs[i], sh, sizeof sh));
}

/* Binds "--input [name=]file" (or --output) to a tensor's slot in files. */
static int bind(job *j, const char *spec, const char *kind, const netrt_tensor *ts, int n,
                const char **files) {
    const char *eq = strchr(spec, '='), *file = spec;
    int idx = -1;
    if (eq && memchr(spec, '/', (size_t)(eq - spec)) == NULL) {
        size_t len = (size_t)(eq - spec);
        for (int i = 0; i < n; i++)
            if (strlen(ts[i].name) == len && strncmp(ts[i].name, spec, len) == 0) idx = i;
        if (idx < 0) {
            size_t at = (size_t)snprintf(j->err, sizeof j->err, "no %s named '%.*s' (the model's %ss:",
                                         kind, (int)len, spec, kind);
            for (int i = 0; i < n && at < sizeof j->err; i++)
                at += (size_t)snprintf(j->err + at, sizeof j->err - at, " %s", ts[i].name);
            if (at < sizeof j->err) snprintf(j->err + at, sizeof j->err - at, ")");
            return -1;
        }
        file = eq + 1;
    } else if (n == 1) {
        idx = 0;
    } else {
        return netrt_errorf(j->err, sizeof j->err,
                            "the model has %d %ss: use --%s NAME=FILE", n, kind, kind);
    }
    if (!file[0]) return netrt_errorf(j->err, sizeof j->err, "--%s %s: empty file name", kind, spec);
    if (files[idx])
        return netrt_errorf(j->err, sizeof j->err, "%s '%s' given twice", kind, ts[idx].name);
    files[idx] = file;
    return 0;
}

static int parse_args(job *j, int argc, char **argv) {
    const netrt_model *m = j->m;
    bool warmup_given = false;
    j->warmup = 1;
    for (int i = 1; i < argc; i++) {
        char flag[32];
        const char *arg = argv[i], *val = NULL, *eq = strchr(arg, '=');
        if (!strcmp(arg, "-h")) arg = "--help";
        if (strncmp(arg, "--", 2) != 0)
            return netrt_errorf(j->err, sizeof j->err, "unexpected argument '%s' (see --help)", arg);
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof flag)
            return netrt_errorf(j->err, sizeof j->err, "unknown option '%s' (see --help)", arg);
        memcpy(flag, arg, len);
        flag[len] = '\0';
        if (eq) val = eq + 1;
        bool takes = !strcmp(flag, "--weights") || !strcmp(flag, "--input") ||
                     !strcmp(flag, "--output") || !strcmp(flag, "--limit") ||
                     !strcmp(flag, "--labels") || !strcmp(flag, "--classes") ||
                     !strcmp(flag, "--repeat") || !strcmp(flag, "--warmup");
        if (takes && !val) {
            if (i + 1 >= argc)
                return netrt_errorf(j->err, sizeof j->err, "option %s needs a value", flag);
            val = argv[++i];
        }
        if (!takes && val)
            return netrt_errorf(j->err, sizeof j->err, "option %s takes no value", flag);

        if (!strcmp(flag, "--weights")) {
            j->weights = val;
        } else if (!strcmp(flag, "--labels")) {
            j->labels_path = val;
        } else if (!strcmp(flag, "--input")) {
            if (bind(j, val, "input", m->inputs, m->ninputs, j->in_files) < 0) return -1;
        } else if (!strcmp(flag, "--output")) {
            if (bind(j, val, "output", m->outputs, m->noutputs, j->out_files) < 0) return -1;
        } else if (!strcmp(flag, "--limit")) {
            char *end;
            long long v = strtoll(val, &end, 10);
            if (end == val || *end || v <= 0)
                return netrt_errorf(j->err, sizeof j->err,
                                    "--limit needs a positive integer, not '%s'", val);
            j->limit = v;
        } else if (!strcmp(flag, "--repeat")) {
            if (netrt_opt_int(flag, val, 1, &j->repeat, j->err, sizeof j->err) < 0) return -1;
            if (j->repeat > 1000000)
                return netrt_errorf(j->err, sizeof j->err, "--repeat: at most 1000000, not %s", val);
        } else if (!strcmp(flag, "--warmup")) {
            if (netrt_opt_int(flag, val, 0, &j->warmup, j->err, sizeof j->err) < 0) return -1;
            if (j->warmup > 1000000)
                return netrt_errorf(j->err, sizeof j->err, "--warmup: at most 1000000, not %s", val);
            warmup_given = true;
        } else if (!strcmp(flag, "--classes")) {
            j->classes = val;
            j->print = true;
        } else if (!strcmp(flag, "--print")) {
            j->print = true;
        } else if (!strcmp(flag, "--check-numerics")) {
            j->check_numerics = true;
        } else if (!strcmp(flag, "--help")) {
            j->help = true;
        } else {
            return netrt_errorf(j->err, sizeof j->err, "unknown option '%s' (see --help)", arg);
        }
    }
    if (j->help) return 0;
    if (warmup_given && !j->repeat)
        return netrt_errorf(j->err, sizeof j->err, "--warmup needs --repeat R");
    if (!j->weights && !m->embedded)
        return netrt_errorf(j->err, sizeof j->err,
                            "missing --weights FILE (the model has no embedded weights)");
    for (int i = 0; i < m->ninputs; i++)
        if (!j->in_files[i]) {
            if (m->ninputs == 1)
                return netrt_errorf(j->err, sizeof j->err, "missing --input FILE");
            return netrt_errorf(j->err, sizeof j->err, "missing --input %s=FILE",
                                m->inputs[i].name);
        }
    if (j->labels_path) j->print = true;
    return 0;
}

int netrt_check_input(const netrt_tensor *t, const netrt_array *a, const char *path, char *err,
                      size_t errlen) {
    char want[200], per[160], got[160];
    if (a->dtype != NETRT_F32 && a->dtype != NETRT_F64 && a->dtype != NETRT_U8)
        return netrt_errorf(err, errlen,
                            "%s: input '%s' has dtype %s, expected F32, F64 or U8 (uint8, scaled to "
                            "[0, 1])",
                            path, t->name, netrt_dtype_name(a->dtype));
    bool ok = a->rank >= 1 && same_shape(a->rank - 1, a->shape + 1, t->rank - 1, t->shape + 1);
    /* An [S, H, W] array (IDX images) feeds a [1, H, W] input. */
    bool grey = t->rank == 4 && t->shape[1] == 1;
    if (a->rank == 3 && grey && same_shape(2, a->shape + 1, 2, t->shape + 2)) ok = true;
    if (!ok) {
        batch_shape_str(t, want, sizeof want);
        if (grey)
            snprintf(want + strlen(want), sizeof want - strlen(want), " or [S, %lld, %lld]",
                     (long long)t->shape[2], (long long)t->shape[3]);
        return netrt_errorf(err, errlen, "%s: input '%s' has shape %s, expected %s (S samples of %s)",
                            path, t->name, netrt_shape_str(a->rank, a->shape, got, sizeof got), want,
                            netrt_shape_str(t->rank - 1, t->shape + 1, per, sizeof per));
    }
    return 0;
}

/* Reads input i and checks its dtype and per-sample shape. */
static int read_input(job *j, int i) {
    const char *path = j->in_files[i];
    if (netrt_array_read(path, &j->in[i], j->err, sizeof j->err) < 0) return -1;
    return netrt_check_input(&j->m->inputs[i], &j->in[i], path, j->err, sizeof j->err);
}

bool netrt_dtype_is_int(netrt_dtype t) {
    return t == NETRT_U8 || t == NETRT_I8 || t == NETRT_I16 || t == NETRT_I32 || t == NETRT_I64;
}

int64_t netrt_array_int_at(const netrt_array *a, int64_t i) {
    switch (a->dtype) {
    case NETRT_U8: return ((const uint8_t *)a->data)[i];
    case NETRT_I8: return ((const int8_t *)a->data)[i];
    case NETRT_I16: return ((const int16_t *)a->data)[i];
    case NETRT_I32: return ((const int32_t *)a->data)[i];
    case NETRT_I64: return ((const int64_t *)a->data)[i];
    default: return -1;
    }
}

/* Reads and checks every input and the labels; sets S. */
static int read_data(job *j) {
    const netrt_model *m = j->m;
    int64_t total = -1;
    for (int i = 0; i < m->ninputs; i++) {
        if (read_input(j, i) < 0) return -1;
        int64_t s = j->in[i].shape[0];
        if (total >= 0 && s != total)
            return netrt_errorf(j->err, sizeof j->err,
                                "input '%s' has %lld samples but input '%s' has %lld",
                                m->inputs[i].name, (long long)s, m->inputs[0].name,
                                (long long)total);
        total = s;
    }
    if (total <= 0) {
        char sh[160];
        if (m->ninputs == 0) return netrt_errorf(j->err, sizeof j->err, "the model has no inputs");
        return netrt_errorf(j->err, sizeof j->err, "%s: no samples (shape %s)", j->in_files[0],
                            netrt_shape_str(j->in[0].rank, j->in[0].shape, sh, sizeof sh));
    }
    if (j->labels_path) {
        netrt_array *l = &j->labels;
        if (netrt_array_read(j->labels_path, l, j->err, sizeof j->err) < 0) return -1;
        if (!netrt_dtype_is_int(l->dtype) || l->rank != 1) {
            char sh[160];
            return netrt_errorf(j->err, sizeof j->err,
                                "%s: labels must be a 1-d integer array, got %s of shape %s",
                                j->labels_path, netrt_dtype_name(l->dtype),
                                netrt_shape_str(l->rank, l->shape, sh, sizeof sh));
        }
        if (l->shape[0] != total)
            return netrt_errorf(j->err, sizeof j->err, "%s: %lld labels for %lld samples in %s",
                                j->labels_path, (long long)l->shape[0], (long long)total,
                                j->in_files[0]);
    }
    j->S = j->limit > 0 && j->limit < total ? j->limit : total;
    return 0;
}

void netrt_array_to_f32(const netrt_array *a, int64_t per, int64_t s0, int64_t n, float *dst) {
    size_t first = (size_t)(s0 * per), count = (size_t)(n * per);
    switch (a->dtype) {
    case NETRT_F32: memcpy(dst, (const float *)a->data + first, count * sizeof(float)); break;
    case NETRT_F64:
        for (size_t k = 0; k < count; k++) dst[k] = (float)((const double *)a->data)[first + k];
        break;
    case NETRT_U8:
        for (size_t k = 0; k < count; k++) dst[k] = ((const uint8_t *)a->data)[first + k] / 255.0f;
        break;
    default: break;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --repeat: one line on stderr, in a fixed format that tools/bench.py parses,
 *   prog: timing: batch=8 batches=1 warmup=1 runs=5 median_ms=812.345 min_ms=805.001 mean_ms=815.870
 * with the statistics over every timed run of every batch (times: n seconds,
 * sorted here), in milliseconds per batch of the compiled size. */
static void print_timing(const job *j, double *times, int64_t n, int64_t batches) {
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    double median = n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2, sum = 0;
    for (int64_t k = 0; k < n; k++) sum += times[k];
    fprintf(stderr,
            "%s: timing: batch=%d batches=%lld warmup=%lld runs=%lld median_ms=%.3f min_ms=%.3f "
            "mean_ms=%.3f\n",
            j->prog, j->m->batch, (long long)batches, (long long)j->warmup, (long long)j->repeat,
            1e3 * median, 1e3 * times[0], 1e3 * sum / (double)n);
    fflush(stderr);
}

/* Copies samples [s0, s0 + n) of every input into the model's input buffers,
 * zeroing the padding rows of a last, partial batch. */
static void load_batch(job *j, int64_t s0, int64_t n) {
    const netrt_model *m = j->m;
    for (int i = 0; i < m->ninputs; i++) {
        int64_t per = per_sample(&m->inputs[i]);
        netrt_array_to_f32(&j->in[i], per, s0, n, m->inputs[i].data);
        memset(m->inputs[i].data + n * per, 0, (size_t)((m->batch - n) * per) * sizeof(float));
    }
}

static int run_batches(job *j) {
    const netrt_model *m = j->m;
    int64_t N = m->batch, S = j->S;
    if (N < 1) return netrt_errorf(j->err, sizeof j->err, "the model has batch size %lld", (long long)N);
    for (int o = 0; o < m->noutputs; o++) {
        int64_t per = per_sample(&m->outputs[o]);
        if (per < 0 || (per > 0 && (uint64_t)S > SIZE_MAX / sizeof(float) / (uint64_t)per) ||
            !(j->out[o] = malloc((size_t)(S * per) * sizeof(float) + 1)))
            return netrt_errorf(j->err, sizeof j->err, "out of memory for output '%s'",
                                m->outputs[o].name);
    }
    /* Without --repeat each batch runs once; with it, W + R times, each run
     * on a fresh copy of the input (so that an op writing into its input
     * buffer could not change later runs), only run() itself timed, and the
     * outputs taken from the last run. */
    int64_t batches = (S + N - 1) / N, runs = j->repeat ? j->warmup + j->repeat : 1, ntimes = 0;
    double *times = NULL;
    if (j->repeat && !(times = malloc((size_t)(batches * j->repeat) * sizeof *times)))
        return netrt_errorf(j->err, sizeof j->err, "out of memory for --repeat %lld",
                            (long long)j->repeat);
    netrt_progress bar;
    bool show = isatty(fileno(stderr)) != 0;
    if (show) netrt_progress_start(&bar, m->name, S);
    for (int64_t s0 = 0; s0 < S; s0 += N) {
        int64_t n = S - s0 < N ? S - s0 : N;
        netrt_numerics_batch("sample", NULL, s0, n);
        for (int64_t r = 0; r < runs; r++) {
            load_batch(j, s0, n);
            double t0 = netrt_now();
            m->run();
            double t = netrt_now() - t0;
            if (j->repeat && r >= j->warmup) times[ntimes++] = t;
            if (netrt_numerics_error()) {
                if (show) fputc('\n', stderr);
                free(times);
                return netrt_errorf(j->err, sizeof j->err, "%s", netrt_numerics_error());
            }
        }
        for (int o = 0; o < m->noutputs; o++) {
            int64_t per = per_sample(&m->outputs[o]);
            memcpy(j->out[o] + s0 * per, m->outputs[o].data, (size_t)(n * per) * sizeof(float));
        }
        if (show) netrt_progress_update(&bar, s0 + n, NULL);
    }
    if (show) netrt_progress_finish(&bar, NULL);
    if (j->repeat) print_timing(j, times, ntimes, batches);
    free(times);
    return 0;
}

static int write_outputs(job *j) {
    const netrt_model *m = j->m;
    for (int o = 0; o < m->noutputs; o++) {
        if (!j->out_files[o]) continue;
        int64_t shape[NETRT_MAX_RANK];
        const netrt_tensor *t = &m->outputs[o];
        shape[0] = j->S;
        for (int d = 1; d < t->rank; d++) shape[d] = t->shape[d];
        if (netrt_npy_write(j->out_files[o], j->out[o], t->rank, shape, j->err, sizeof j->err) < 0)
            return -1;
    }
    return 0;
}

/* The name of class c in the --classes list, or "" (into buf). */
static const char *class_name(const job *j, int64_t c, char *buf, size_t n) {
    buf[0] = '\0';
    if (!j->classes) return buf;
    const char *p = j->classes;
    for (int64_t k = 0; k < c && p; k++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (!p) return buf;
    size_t len = strcspn(p, ",");
    snprintf(buf, n, " (%.*s)", (int)len, p);
    return buf;
}

static void print_predictions(job *j) {
    const netrt_model *m = j->m;
    if (m->noutputs < 1) return;
    int64_t per = per_sample(&m->outputs[0]), correct = 0;
    if (per < 1) return;
    for (int64_t s = 0; s < j->S; s++) {
        const float *row = j->out[0] + s * per;
        int64_t c = 0;
        for (int64_t k = 1; k < per; k++)
            if (row[k] > row[c]) c = k;
        if (j->labels_path) {
            int64_t t = netrt_array_int_at(&j->labels, s);
            correct += t == c;
            char cn[96], tn[96];
            printf("sample %4lld: predicted %lld%s, true %lld%s%s\n", (long long)s, (long long)c,
                   class_name(j, c, cn, sizeof cn), (long long)t, class_name(j, t, tn, sizeof tn),
                   t == c ? "" : "  <- wrong");
        } else {
            char cn[96];
            printf("sample %lld: class %lld%s (%.4f)\n", (long long)s, (long long)c,
                   class_name(j, c, cn, sizeof cn), row[c]);
        }
    }
    if (j->labels_path)
        printf("accuracy: %lld/%lld = %.1f%%\n", (long long)correct, (long long)j->S,
               100.0 * (double)correct / (double)j->S);
    fflush(stdout);
}

static int run_job(job *j, int argc, char **argv) {
    const netrt_model *m = j->m;
    j->in_files = calloc((size_t)m->ninputs + 1, sizeof *j->in_files);
    j->out_files = calloc((size_t)m->noutputs + 1, sizeof *j->out_files);
    j->in = calloc((size_t)m->ninputs + 1, sizeof *j->in);
    j->out = calloc((size_t)m->noutputs + 1, sizeof *j->out);
    if (!j->in_files || !j->out_files || !j->in || !j->out)
        return netrt_errorf(j->err, sizeof j->err, "out of memory");
    if (parse_args(j, argc, argv) < 0) return -1;
    if (j->help) {
        usage(j, stdout);
        return 0;
    }
    if (netrt_set_check_numerics(m, j->check_numerics, j->err, sizeof j->err) < 0) return -1;
    if (read_data(j) < 0) return -1;
    if (j->weights && netrt_load_params(m, j->weights, j->err, sizeof j->err) < 0) return -1;
    if (m->prepare) m->prepare();
    if (netrt_numerics_error()) return netrt_errorf(j->err, sizeof j->err, "%s", netrt_numerics_error());
    if (run_batches(j) < 0 || write_outputs(j) < 0) return -1;
    if (j->print) print_predictions(j);
    return 0;
}

int netrt_set_check_numerics(const netrt_model *m, bool on, char *err, size_t errlen) {
    netrt_numerics_reset();
    if (on && !m->check_numerics)
        return netrt_errorf(err, errlen,
                            "--check-numerics: this program was built without numerics checks");
    if (m->check_numerics) *m->check_numerics = on;
    return 0;
}

int netrt_main(int argc, char **argv, const netrt_model *m) {
    job j = {.m = m};
    const char *slash = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
    j.prog = slash ? slash + 1 : argc > 0 && argv[0] ? argv[0] : m->name ? m->name : "netrt";
    if (m->init && m->init() != 0) {
        fprintf(stderr, "%s: error: cannot initialize the model (out of memory?)\n", j.prog);
        return 1;
    }
    int rc = run_job(&j, argc, argv);
    if (rc < 0) fprintf(stderr, "%s: error: %s\n", j.prog, j.err);
    job_free(&j);
    if (m->fini) m->fini();
    return rc < 0 ? 1 : 0;
}
