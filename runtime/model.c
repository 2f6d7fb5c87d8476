/* netrt_main, the command line of an emitted inference program: it checks
 * that the CPU has what the program was built for (cpu.c), parses
 * the options (the values of --repeat and --warmup through cli.c), reads and
 * checks the inputs and labels (inputs.c), loads the weights (params.c), runs
 * the batches under --check-numerics if asked (numerics.c), writes the
 * outputs and prints the predictions. */
#define _POSIX_C_SOURCE 200809L

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

static void usage(const job *j, FILE *out) {
    const netrt_model *m = j->m;
    char sh[160];
    fprintf(out,
            "usage: %s%s --input [NAME=]FILE ... [--output [NAME=]FILE ...]\n"
            "       [--limit N] [--labels FILE] [--print] [--classes A,B,...] [--check-numerics]\n"
            "       [--repeat R [--warmup W]] [--threads N]\n\n"
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
                     !strcmp(flag, "--repeat") || !strcmp(flag, "--warmup") ||
                     !strcmp(flag, "--threads");
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
        } else if (!strcmp(flag, "--threads")) {
            if (netrt_opt_threads(flag, val, j->err, sizeof j->err) < 0) return -1;
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

/* Reads input i and checks its dtype and per-sample shape. */
static int read_input(job *j, int i) {
    const char *path = j->in_files[i];
    if (netrt_array_read(path, &j->in[i], j->err, sizeof j->err) < 0) return -1;
    return netrt_check_input(&j->m->inputs[i], &j->in[i], path, j->err, sizeof j->err);
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

int netrt_main(int argc, char **argv, const netrt_model *m) {
    job j = {.m = m};
    const char *slash = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
    j.prog = slash ? slash + 1 : argc > 0 && argv[0] ? argv[0] : m->name ? m->name : "netrt";
    /* first: the emitted code may use instructions this CPU lacks */
    if (!netrt_cpu_ok(m->cpu, j.prog)) return 1;
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
