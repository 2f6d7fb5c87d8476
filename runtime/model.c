/* netrt_main, the command line of an emitted inference program: it checks
 * that the CPU has what the program was built for (cpu.c), parses
 * the options (the values of --repeat and --warmup through cli.c), reads and
 * checks the inputs and labels (inputs.c), loads the weights (params.c), runs
 * the batches under --check-numerics if asked (numerics.c), writes the
 * outputs and prints the predictions. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netrt.h"

/* ---- the command line -------------------------------------------------------- */

typedef struct {
    const netrt_model *m;
    const char *prog;
    const char *weights, *labels_path;
    const char *classes;                /* "name0,name1,..." or NULL */
    const char **in_files, **out_files; /* per model input / output, or NULL */
    const char ***in_more;              /* per input: more image files after the first (a batch), or NULL */
    int *n_more;
    bool images;                        /* input 0 was read from image files (--print names them) */
    int last_input;                     /* the input the latest --input bound (-1: none) */
    float norm[6];                      /* --normalize: C means then C standard deviations (C <= 3) */
    int nnorm;
    const char *norm_text;
    char *class_text;                   /* --classes FILE, read: names separated by newlines */
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
    if (j->in_more)
        for (int i = 0; i < j->m->ninputs; i++) free(j->in_more[i]);
    free(j->in_more);
    free(j->n_more);
    free(j->class_text);
}

static int64_t per_sample(const netrt_tensor *t) { return netrt_numel(t->rank - 1, t->shape + 1); }

static void usage(const job *j, FILE *out) {
    const netrt_model *m = j->m;
    char sh[160];
    fprintf(out,
            "usage: %s%s --input [NAME=]FILE ... [--output [NAME=]FILE ...]\n"
            "       [--limit N] [--labels FILE] [--print] [--classes A,B,...|FILE] [--normalize M,S]\n"
            "       [--check-numerics]\n"
            "       [--repeat R [--warmup W]] [--threads N]\n\n"
            "Runs the network '%s' (compiled from %s, batch %d) on the samples of the input\n"
            "arrays: float32 .npy [S, ...], or uint8 (.npy or IDX, gzip or not) scaled to [0, 1];\n"
            "or on PNG and JPEG images: grey or RGB as the input's channels say, resized to its\n"
            "height and width (bilinear, as torchvision's Resize), scaled to [0, 1].\n\n"
            "  --weights FILE         safetensors parameters%s\n"
            "  --input [NAME=]FILE    an input array (NAME may be left out with one input), or\n"
            "                         images: --input a.png b.jpg ... runs them as one batch\n"
            "  --normalize M,S        images: (x - M) / S after scaling, for every channel; or\n"
            "                         M1,M2,M3,S1,S2,S3 per channel (torchvision's Normalize)\n"
            "  --output [NAME=]FILE   write an output as float32 .npy\n"
            "  --limit N              run only the first N samples\n"
            "  --labels FILE          integer labels (.npy or IDX): print predictions and accuracy\n"
            "  --print                print each sample's top 5 classes with their probabilities\n"
            "                         (the softmax of the output, unless it already is one)\n"
            "  --classes A,B,...      class names to print beside the class numbers, or a file of\n"
            "                         them, one per line\n"
            "  --check-numerics       stop at the first op that computes a NaN or an Inf\n"
            "  --repeat R             time the inference: run each batch W + R times, time the\n"
            "                         last R, print the median and min ms per batch on stderr\n"
            "  --warmup W             untimed runs of each batch before the R timed ones (default 1)\n"
            "  --threads N            threads the kernels split their work across (default: all\n"
            "                         cores); any N computes the same bits\n"
            "  --help                 this message\n\n",
            j->prog, m->embedded ? " [--weights FILE]" : " --weights FILE", m->name ? m->name : "?",
            m->source ? m->source : "?", m->batch,
            m->embedded ? " (default: the embedded ones)" : "");
    for (int i = 0; i < m->ninputs; i++)
        fprintf(out, "input  %s: %s\n", m->inputs[i].name,
                netrt_batch_shape_str(&m->inputs[i], sh, sizeof sh));
    for (int i = 0; i < m->noutputs; i++)
        fprintf(out, "output %s: %s\n", m->outputs[i].name,
                netrt_batch_shape_str(&m->outputs[i], sh, sizeof sh));
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
    return idx;
}

/* --normalize M,S (every channel) or M1,...,MC,S1,...,SC: 2 or 6 numbers,
 * the standard deviations positive; checked against the input's channels
 * when the images are read. */
static int parse_normalize(job *j, const char *val) {
    j->norm_text = val;
    j->nnorm = 0;
    for (const char *p = val;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || j->nnorm == 6 || !(v > -1e30 && v < 1e30))
            return netrt_errorf(j->err, sizeof j->err,
                                "--normalize: expected MEAN,STD or one mean per channel then one standard "
                                "deviation per channel (M1,M2,M3,S1,S2,S3), not '%s'",
                                val);
        j->norm[j->nnorm++] = (float)v;
        if (*end == '\0') break;
        if (*end != ',') return netrt_errorf(j->err, sizeof j->err, "--normalize: unexpected '%s' in '%s'", end, val);
        p = end + 1;
    }
    if (j->nnorm != 2 && j->nnorm != 6)
        return netrt_errorf(j->err, sizeof j->err, "--normalize: expected 2 or 6 numbers, got %d in '%s'", j->nnorm,
                            val);
    for (int k = j->nnorm / 2; k < j->nnorm; k++)
        if (!(j->norm[k] > 0))
            return netrt_errorf(j->err, sizeof j->err, "--normalize: a standard deviation must be positive, got %g",
                                (double)j->norm[k]);
    return 0;
}

static int parse_args(job *j, int argc, char **argv) {
    const netrt_model *m = j->m;
    bool warmup_given = false;
    j->warmup = 1;
    j->last_input = -1;
    for (int i = 1; i < argc; i++) {
        char flag[32];
        const char *arg = argv[i], *val = NULL, *eq = strchr(arg, '=');
        if (!strcmp(arg, "-h")) arg = "--help";
        if (strncmp(arg, "--", 2) != 0 && j->last_input >= 0) { /* --input a.png b.png ...: one batch */
            int k = j->last_input;
            const char **more = realloc(j->in_more[k], sizeof *more * (size_t)(j->n_more[k] + 1));
            if (!more) return netrt_errorf(j->err, sizeof j->err, "out of memory");
            more[j->n_more[k]++] = arg;
            j->in_more[k] = more;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return netrt_errorf(j->err, sizeof j->err, "unexpected argument '%s' (see --help)", arg);
        j->last_input = -1;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof flag)
            return netrt_errorf(j->err, sizeof j->err, "unknown option '%s' (see --help)", arg);
        memcpy(flag, arg, len);
        flag[len] = '\0';
        if (eq) val = eq + 1;
        bool takes = !strcmp(flag, "--weights") || !strcmp(flag, "--input") ||
                     !strcmp(flag, "--output") || !strcmp(flag, "--limit") ||
                     !strcmp(flag, "--labels") || !strcmp(flag, "--classes") ||
                     !strcmp(flag, "--repeat") || !strcmp(flag, "--warmup") ||
                     !strcmp(flag, "--threads") || !strcmp(flag, "--normalize");
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
            if ((j->last_input = bind(j, val, "input", m->inputs, m->ninputs, j->in_files)) < 0) return -1;
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
        } else if (!strcmp(flag, "--threads")) {
            if (netrt_opt_threads(flag, val, j->err, sizeof j->err) < 0) return -1;
        } else if (!strcmp(flag, "--classes")) {
            j->classes = val;
            j->print = true;
        } else if (!strcmp(flag, "--normalize")) {
            if (parse_normalize(j, val) < 0) return -1;
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
    if (!j->weights && !m->embedded && m->nparams > 0)
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

/* Reads input i and checks its dtype and per-sample shape. */
static int read_input(job *j, int i) {
    const char *path = j->in_files[i];
    const netrt_tensor *t = &j->m->inputs[i];
    if (netrt_is_image(path)) { /* PNG or JPEG: with the files after it, one batch */
        if (i == 0) j->images = true;
        int n = 1 + j->n_more[i];
        const char **paths = malloc(sizeof *paths * (size_t)n);
        if (!paths) return netrt_errorf(j->err, sizeof j->err, "out of memory");
        paths[0] = path;
        for (int k = 1; k < n; k++) paths[k] = j->in_more[i][k - 1];
        const float *mean = NULL, *std = NULL;
        float buf[6];
        if (j->nnorm) {
            int64_t C = t->rank == 4 ? t->shape[1] : 0;
            if (j->nnorm == 6 && C != 3) {
                free(paths);
                return netrt_errorf(j->err, sizeof j->err,
                                    "--normalize %s: 3 means and 3 standard deviations, but input '%s' has %lld "
                                    "channel(s)",
                                    j->norm_text, t->name, (long long)C);
            }
            for (int c = 0; c < 3; c++) {
                buf[c] = j->nnorm == 2 ? j->norm[0] : j->norm[c];
                buf[3 + c] = j->nnorm == 2 ? j->norm[1] : j->norm[3 + c];
            }
            mean = buf, std = buf + 3;
        }
        int rc = netrt_images_read(paths, n, t, mean, std, &j->in[i], j->err, sizeof j->err);
        free(paths);
        return rc;
    }
    if (j->n_more[i] > 0)
        return netrt_errorf(j->err, sizeof j->err,
                            "unexpected argument '%s' after --input %s (several files make one batch only when "
                            "they are PNG or JPEG images)",
                            j->in_more[i][0], path);
    if (j->nnorm)
        return netrt_errorf(j->err, sizeof j->err, "--normalize applies to PNG and JPEG inputs; %s is an array",
                            path);
    if (netrt_array_read(path, &j->in[i], j->err, sizeof j->err) < 0) return -1;
    return netrt_check_input(t, &j->in[i], path, j->err, sizeof j->err);
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

/* The name of class c in the --classes list (names separated by commas,
 * or by newlines when read from a file), or "" (into buf). */
static const char *class_name(const job *j, int64_t c, char *buf, size_t n) {
    buf[0] = '\0';
    const char *p = j->class_text ? j->class_text : j->classes;
    if (!p) return buf;
    const char *sep = j->class_text ? "\n" : ",";
    for (int64_t k = 0; k < c && p; k++) {
        p = strchr(p, sep[0]);
        if (p) p++;
    }
    if (!p) return buf;
    size_t len = strcspn(p, j->class_text ? "\r\n" : ",");
    if (len == 0) return buf;
    snprintf(buf, n, " (%.*s)", (int)len, p);
    return buf;
}

/* --classes FILE: a file of class names, one per line (else the value is
 * the comma-separated list itself). */
static int read_classes(job *j) {
    if (!j->classes) return 0;
    FILE *f = fopen(j->classes, "rb");
    if (!f) {
        if (strchr(j->classes, '/') || strstr(j->classes, ".txt"))
            return netrt_errorf(j->err, sizeof j->err, "--classes %s: cannot open: %s", j->classes, strerror(errno));
        return 0; /* a list of names */
    }
    size_t cap = 4096, len = 0;
    char *t = malloc(cap);
    for (size_t r; t && (r = fread(t + len, 1, cap - len - 1, f)) > 0;) {
        len += r;
        if (len + 1 == cap) {
            char *u = cap < ((size_t)1 << 24) ? realloc(t, cap *= 2) : NULL;
            if (!u) {
                free(t);
                t = NULL;
            }
            t = u;
        }
    }
    fclose(f);
    if (!t) return netrt_errorf(j->err, sizeof j->err, "--classes %s: too large or out of memory", j->classes);
    t[len] = '\0';
    j->class_text = t;
    return 0;
}

/* The row's class probabilities into p: the row itself if it already is a
 * distribution (a softmax ends the net), else its softmax. */
static void row_probabilities(const float *row, int64_t k, double *p) {
    double sum = 0, mx = row[0];
    bool dist = true;
    for (int64_t i = 0; i < k; i++) {
        dist = dist && row[i] >= 0 && row[i] <= 1;
        sum += row[i];
        if (row[i] > mx) mx = row[i];
    }
    if (dist && fabs(sum - 1.0) < 1e-3) {
        for (int64_t i = 0; i < k; i++) p[i] = row[i];
        return;
    }
    sum = 0;
    for (int64_t i = 0; i < k; i++) sum += p[i] = exp((double)row[i] - mx);
    for (int64_t i = 0; i < k; i++) p[i] /= sum;
}

static void print_predictions(job *j) {
    const netrt_model *m = j->m;
    if (m->noutputs < 1) return;
    int64_t per = per_sample(&m->outputs[0]), correct = 0;
    if (per < 1) return;
    double *prob = malloc(sizeof *prob * (size_t)per);
    if (!prob) return;
    enum { TOP = 5 };
    bool images = m->ninputs == 1 && j->images;
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
            continue;
        }
        /* the top classes by probability, highest first (ties: the lower class) */
        row_probabilities(row, per, prob);
        int64_t top[TOP];
        int ntop = 0;
        for (; ntop < TOP && ntop < per; ntop++) {
            int64_t best = -1;
            for (int64_t k = 0; k < per; k++) {
                bool taken = false;
                for (int q = 0; q < ntop; q++) taken = taken || top[q] == k;
                if (!taken && (best < 0 || prob[k] > prob[best])) best = k;
            }
            top[ntop] = best;
        }
        const char *file = !images ? NULL : s == 0 ? j->in_files[0] : j->in_more[0][s - 1];
        printf("sample %lld%s%s%s:", (long long)s, file ? " (" : "", file ? file : "", file ? ")" : "");
        for (int q = 0; q < ntop; q++) {
            char cn[96];
            printf("%s %lld%s %.2f%%", q ? "," : "", (long long)top[q], class_name(j, top[q], cn, sizeof cn),
                   100.0 * prob[top[q]]);
        }
        printf("\n");
    }
    free(prob);
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
    j->in_more = calloc((size_t)m->ninputs + 1, sizeof *j->in_more);
    j->n_more = calloc((size_t)m->ninputs + 1, sizeof *j->n_more);
    if (!j->in_files || !j->out_files || !j->in || !j->out || !j->in_more || !j->n_more)
        return netrt_errorf(j->err, sizeof j->err, "out of memory");
    if (parse_args(j, argc, argv) < 0) return -1;
    if (j->help) {
        usage(j, stdout);
        return 0;
    }
    if (netrt_set_check_numerics(m, j->check_numerics, j->err, sizeof j->err) < 0) return -1;
    if (read_classes(j) < 0 || read_data(j) < 0) return -1;
    if (j->weights && (m->load ? m->load(j->weights, j->err, sizeof j->err)
                              : netrt_load_params(m, j->weights, j->err, sizeof j->err)) < 0)
        return -1;
    if (m->prepare) m->prepare();
    if (netrt_numerics_error()) return netrt_errorf(j->err, sizeof j->err, "%s", netrt_numerics_error());
    if (run_batches(j) < 0 || write_outputs(j) < 0) return -1;
    if (j->print) print_predictions(j);
    return 0;
}

int netrt_main(int argc, char **argv, const netrt_model *m) {
    job j = {.m = m};
    const char *slash = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
    j.prog = slash ? slash + 1 : argc > 0 && argv[0] ? argv[0] : m->name ? m->name : "netrt";
    /* first: the emitted code may use instructions this CPU lacks */
    if (!netrt_cpu_ok(m->cpu, j.prog)) return 1;
    if (m->real_bytes && m->real_bytes != (int)sizeof(float)) {
        fprintf(stderr,
                "%s: error: this program was compiled in double precision, which only the gradient check "
                "runs\n",
                j.prog);
        return 1;
    }
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
