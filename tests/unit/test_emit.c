/* Emitter tests: graphs built by hand are emitted, the C is compiled with
 * clang and gcc (-Wall -Wextra -Werror), run on pseudo-random parameters and
 * inputs, and compared with a naive reference interpreter in double (direct
 * formulas, PyTorch semantics).  Also: embedded weights (exact floats, and the
 * errors for a missing or misshapen tensor), identifiers and the header.
 *
 * Training graphs (built by hand, as the autodiff pass would): the forward
 * kernels on an active batch nb < N, batchnorm's batch statistics and running
 * averages, the loss and SGD against direct formulas, and every gradient
 * kernel against central finite differences of the reference forward pass
 * (in double), through the netrt_train_model descriptor. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, fileno */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "emit.h"
#include "helpers.h"
#include "train.h"

#ifndef NETC_RUNTIME_INCLUDE
#define NETC_RUNTIME_INCLUDE "runtime"
#endif
#ifndef NETC_RUNTIME_LIB
#define NETC_RUNTIME_LIB "build/libnetrt.a"
#endif

/* ---- building graphs ---------------------------------------------------------- */

typedef struct T {
    Graph *g;
    Source *src;
    char dir[64];
    /* training tests without a loss: the objective is sum(fd_y * fd_dy) */
    Value *fd_y, *fd_dy;
} T;

static T t_new(const char *name, int batch) {
    T t;
    diag_reset();
    /* a few lines, so that node comments name different lines */
    t.src = source_from_string("test.net", "net t {\n  a\n  b\n  c\n  d\n  e\n}\n");
    diag_set_source(t.src);
    t.g = graph_new(t.src, name, batch);
    strcpy(t.dir, "/tmp/netc-test-emit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t.dir));
    return t;
}

static void t_free(T *t) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    ck_assert_int_eq(system(cmd), 0);
    graph_free(t->g);
    source_free(t->src);
}

static Shape shp(int rank, ...) {
    va_list ap;
    Shape s = {rank, {0}};
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) s.d[i] = va_arg(ap, int);
    va_end(ap);
    return s;
}

static Span line_span(int line) { return (Span){(uint32_t)(8 + 4 * (line - 2)), (uint32_t)(9 + 4 * (line - 2))}; }

static Value *input(T *t, const char *name, Shape s) { return graph_add_input(t->g, name, s, line_span(2)); }
static Value *param(T *t, const char *name, Shape s) { return graph_add_param(t->g, name, s, INIT_ZERO, line_span(2)); }

static Node *node_n(T *t, Op op, const char *name, Attrs a, int nin, Value **in) {
    Node *n = graph_add_node(t->g, op, name, in, nin, &a, line_span(3 + t->g->nnodes % 4));
    ck_assert_msg(n != NULL, "%s: shape inference failed", name);
    return n;
}
#define NODE(t, op, name, a, ...) \
    node_n(t, op, name, a, sizeof((Value *[]){__VA_ARGS__}) / sizeof(Value *), (Value *[]){__VA_ARGS__})->out[0]

static Attrs conv_attrs(int out, int kh, int kw, int sh, int sw, int pt, int pb, int pl, int pr, int dh, int dw,
                        int groups, bool bias) {
    Attrs a = {0};
    ConvAttrs *c = &a.conv;
    c->out = out;
    c->kernel[0] = kh, c->kernel[1] = kw;
    c->stride[0] = sh, c->stride[1] = sw;
    c->pad[0] = pt, c->pad[1] = pb, c->pad[2] = pl, c->pad[3] = pr;
    c->dilation[0] = dh, c->dilation[1] = dw;
    c->groups = groups;
    c->bias = bias;
    return a;
}

static Attrs pool_attrs(int k, int s, int p, bool ceil_mode, bool count_pad) {
    Attrs a = {0};
    PoolAttrs *q = &a.pool;
    q->kernel[0] = q->kernel[1] = k;
    q->stride[0] = q->stride[1] = s;
    q->pad[0] = q->pad[1] = q->pad[2] = q->pad[3] = p;
    q->ceil = ceil_mode;
    q->count_pad = count_pad;
    return a;
}

static Attrs eps_attrs(double eps) {
    Attrs a = {0};
    a.bn.eps = eps;
    return a;
}

static const Attrs none = {0};
/* cross-entropy's loss nodes: no class weights, PyTorch's ignored label -100 */
static const Attrs xent = {.loss = {.kind = LOSS_CROSS_ENTROPY, .ignore_index = -100}};

/* ---- data and the reference interpreter ------------------------------------------ */

static uint64_t rng_state;
static double uniform(void) { /* [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Test data of a param or input: variances positive. */
static float *make_data(const Value *v) {
    int64_t n = shape_numel(&v->shape);
    float *d = malloc(sizeof *d * (size_t)(n ? n : 1));
    size_t len = strlen(v->name);
    bool var = len >= 3 && strcmp(v->name + len - 3, "var") == 0;
    for (int64_t i = 0; i < n; i++) d[i] = var ? (float)(fabs(uniform()) + 0.5) : (float)uniform();
    return d;
}

#define D4(s, i0, i1, i2, i3) ((((int64_t)(i0) * (s)->d[1] + (i1)) * (s)->d[2] + (i2)) * (s)->d[3] + (i3))

static void ref_node(const Node *n, double **in, double *y) {
    const Shape *xs = &n->in[0]->shape, *ys = &n->out[0]->shape;
    const double *x = in[0];
    const Attrs *a = &n->a;
    int64_t numel = shape_numel(ys);
    switch (n->op) {
    case OP_CONV: {
        const Shape *ws = &n->in[1]->shape;
        int64_t CG = ws->d[1], KG = ys->d[1] / a->conv.groups;
        for (int64_t b = 0; b < ys->d[0]; b++)
            for (int64_t k = 0; k < ys->d[1]; k++)
                for (int64_t oh = 0; oh < ys->d[2]; oh++)
                    for (int64_t ow = 0; ow < ys->d[3]; ow++) {
                        double s = n->nin == 3 ? in[2][k] : 0.0;
                        for (int64_t c = 0; c < CG; c++)
                            for (int64_t kh = 0; kh < ws->d[2]; kh++)
                                for (int64_t kw = 0; kw < ws->d[3]; kw++) {
                                    int64_t ih = oh * a->conv.stride[0] - a->conv.pad[0] + kh * a->conv.dilation[0];
                                    int64_t iw = ow * a->conv.stride[1] - a->conv.pad[2] + kw * a->conv.dilation[1];
                                    if (ih < 0 || ih >= xs->d[2] || iw < 0 || iw >= xs->d[3]) continue;
                                    s += x[D4(xs, b, k / KG * CG + c, ih, iw)] * in[1][D4(ws, k, c, kh, kw)];
                                }
                        y[D4(ys, b, k, oh, ow)] = s;
                    }
        break;
    }
    case OP_LINEAR: {
        int64_t N = xs->d[0], D = xs->d[1], K = ys->d[1];
        for (int64_t b = 0; b < N; b++)
            for (int64_t k = 0; k < K; k++) {
                double s = n->nin == 3 ? in[2][k] : 0.0;
                for (int64_t d = 0; d < D; d++) s += x[b * D + d] * in[1][k * D + d];
                y[b * K + k] = s;
            }
        break;
    }
    case OP_BATCHNORM: {
        int64_t C = xs->d[1], S = numel / xs->d[0] / C;
        for (int64_t i = 0; i < numel; i++) {
            int64_t c = i / S % C;
            y[i] = (x[i] - in[3][c]) / sqrt(in[4][c] + a->bn.eps) * in[1][c] + in[2][c];
        }
        break;
    }
    case OP_RELU:
        for (int64_t i = 0; i < numel; i++) y[i] = x[i] > 0 ? x[i] : 0;
        break;
    case OP_TANH:
        for (int64_t i = 0; i < numel; i++) y[i] = tanh(x[i]);
        break;
    case OP_SIGMOID:
        for (int64_t i = 0; i < numel; i++) y[i] = 1 / (1 + exp(-x[i]));
        break;
    case OP_MAXPOOL:
    case OP_AVGPOOL: {
        int64_t H = xs->d[2], W = xs->d[3];
        for (int64_t b = 0; b < ys->d[0]; b++)
            for (int64_t c = 0; c < ys->d[1]; c++)
                for (int64_t oh = 0; oh < ys->d[2]; oh++)
                    for (int64_t ow = 0; ow < ys->d[3]; ow++) {
                        /* PyTorch's avg_pool2d: the window clipped to the padded input gives
                         * the count_include_pad divisor, clipped to the input the other. */
                        int64_t hs = oh * a->pool.stride[0] - a->pool.pad[0], ws = ow * a->pool.stride[1] - a->pool.pad[2];
                        int64_t he = hs + a->pool.kernel[0], we = ws + a->pool.kernel[1];
                        if (he > H + a->pool.pad[1]) he = H + a->pool.pad[1];
                        if (we > W + a->pool.pad[3]) we = W + a->pool.pad[3];
                        int64_t pool = (he - hs) * (we - ws);
                        if (hs < 0) hs = 0;
                        if (ws < 0) ws = 0;
                        if (he > H) he = H;
                        if (we > W) we = W;
                        double m = -INFINITY, s = 0;
                        for (int64_t ih = hs; ih < he; ih++)
                            for (int64_t iw = ws; iw < we; iw++) {
                                double v = x[D4(xs, b, c, ih, iw)];
                                s += v;
                                if (v > m) m = v;
                            }
                        int64_t div = a->pool.count_pad ? pool : (he - hs) * (we - ws);
                        y[D4(ys, b, c, oh, ow)] = n->op == OP_MAXPOOL ? m : s / (double)div;
                    }
        break;
    }
    case OP_GLOBAL_AVGPOOL: {
        int64_t S = xs->d[2] * xs->d[3];
        for (int64_t i = 0; i < numel; i++) {
            double s = 0;
            for (int64_t j = 0; j < S; j++) s += x[i * S + j];
            y[i] = s / (double)S;
        }
        break;
    }
    case OP_FLATTEN:
        memcpy(y, x, sizeof *y * (size_t)numel);
        break;
    case OP_SOFTMAX: {
        int64_t N = xs->d[0], C = xs->d[1], S = numel / N / C;
        for (int64_t b = 0; b < N; b++)
            for (int64_t s = 0; s < S; s++) {
                double m = -INFINITY, sum = 0;
                for (int64_t c = 0; c < C; c++) m = fmax(m, x[(b * C + c) * S + s]);
                for (int64_t c = 0; c < C; c++) sum += exp(x[(b * C + c) * S + s] - m);
                for (int64_t c = 0; c < C; c++) y[(b * C + c) * S + s] = exp(x[(b * C + c) * S + s] - m) / sum;
            }
        break;
    }
    case OP_ADD:
    case OP_MUL: {
        int64_t N = ys->d[0], C = ys->d[1], S = numel / N / C;
        double v[2];
        for (int64_t i = 0; i < numel; i++) {
            int64_t b = i / (C * S), c = i / S % C;
            for (int j = 0; j < 2; j++) {
                int64_t m = shape_numel(&n->in[j]->shape);
                v[j] = in[j][m == numel ? i : m == N * C ? b * C + c : m == C ? c : 0];
            }
            y[i] = n->op == OP_ADD ? v[0] + v[1] : v[0] * v[1];
        }
        break;
    }
    case OP_BATCHNORM_TRAIN: {
        /* outputs y, mean, invstd, then (for the tests) the biased variance */
        int64_t N = xs->d[0], C = xs->d[1], S = numel / N / C;
        double *mean = y + numel, *invstd = mean + C, *var = invstd + C;
        for (int64_t c = 0; c < C; c++) {
            double s = 0, q = 0;
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < S; i++) s += x[(b * C + c) * S + i];
            mean[c] = s / (double)(N * S);
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < S; i++) q += pow(x[(b * C + c) * S + i] - mean[c], 2);
            var[c] = q / (double)(N * S);
            invstd[c] = 1 / sqrt(var[c] + a->bn.eps);
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < S; i++)
                    y[(b * C + c) * S + i] = (x[(b * C + c) * S + i] - mean[c]) * invstd[c] * in[1][c] + in[2][c];
        }
        break;
    }
    case OP_XENT_LOSS: {
        int64_t N = xs->d[0], K = xs->d[1];
        double total = 0;
        for (int64_t b = 0; b < N; b++) {
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < K; k++) m = fmax(m, x[b * K + k]);
            for (int64_t k = 0; k < K; k++) s += exp(x[b * K + k] - m);
            total += m + log(s) - x[b * K + (int64_t)in[1][b]];
        }
        y[0] = total / (double)N;
        break;
    }
    case OP_BN_FOLD: {
        int o = n->nin == 6; /* the original bias is in[1] */
        const double *g = in[1 + o], *beta = in[2 + o], *mean = in[3 + o], *var = in[4 + o];
        int64_t K = xs->d[0], P = shape_numel(xs) / K;
        double *bf = y + shape_numel(xs);
        for (int64_t k = 0; k < K; k++) {
            double s = g[k] / sqrt(var[k] + a->bn.eps);
            for (int64_t i = 0; i < P; i++) y[k * P + i] = x[k * P + i] * s;
            bf[k] = ((o ? in[1][k] : 0.0) - mean[k]) * s + beta[k];
        }
        break;
    }
    default:
        ck_abort_msg("no reference for op %d", (int)n->op);
    }
}

/* ---- compiling and running ------------------------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* Emits t->g into t->dir/model.c and model.h; returns emit_c's result. */
static bool emit(T *t, const EmitOptions *opts) {
    char cp[128], hp[128];
    snprintf(cp, sizeof cp, "%s/model.c", t->dir);
    snprintf(hp, sizeof hp, "%s/model.h", t->dir);
    FILE *c = fopen(cp, "w"), *h = fopen(hp, "w");
    ck_assert(c && h);
    EmitOptions o = opts ? *opts : (EmitOptions){0};
    o.header_name = "model.h";
    bool ok = emit_c(t->g, &o, c, h);
    fclose(c);
    fclose(h);
    return ok;
}

/* The generic driver: reads params (unless embedded) then inputs from argv[1];
 * writes outputs then params to argv[2]. */
static const char driver_src[] =
    "#include \"model.h\"\n"
    "#include <stdio.h>\n"
    "int main(int argc, char **argv) {\n"
    "    const netrt_model *m = &MODEL;\n"
    "    if (argc != 3 || m->init() != 0 || m->init() != 0) return 2;\n"
    "    FILE *in = fopen(argv[1], \"rb\"), *out = fopen(argv[2], \"wb\");\n"
    "    if (!in || !out) return 2;\n"
    "    for (int i = 0; i < m->nparams && !m->embedded; i++) {\n"
    "        size_t n = (size_t)netrt_numel(m->params[i].rank, m->params[i].shape);\n"
    "        if (fread(m->params[i].data, sizeof(float), n, in) != n) return 3;\n"
    "    }\n"
    "    m->prepare();\n"
    "    for (int i = 0; i < m->ninputs; i++) {\n"
    "        size_t n = (size_t)netrt_numel(m->inputs[i].rank, m->inputs[i].shape);\n"
    "        if (fread(m->inputs[i].data, sizeof(float), n, in) != n) return 3;\n"
    "    }\n"
    "    m->run();\n"
    "    for (int i = 0; i < m->noutputs; i++)\n"
    "        fwrite(m->outputs[i].data, sizeof(float), (size_t)netrt_numel(m->outputs[i].rank, m->outputs[i].shape), out);\n"
    "    for (int i = 0; i < m->nparams; i++)\n"
    "        fwrite(m->params[i].data, sizeof(float), (size_t)netrt_numel(m->params[i].rank, m->params[i].shape), out);\n"
    "    return fclose(out) == 0 ? 0 : 4;\n"
    "}\n";

/* Compiles model.c warning-free with gcc and clang, links `driver` (C text)
 * with it into t->dir/prog. */
static void build(T *t, const char *driver) {
    char path[128];
    snprintf(path, sizeof path, "%s/driver.c", t->dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(driver, f);
    fclose(f);
    const char *warn = "-std=c11 -Wall -Wextra -Werror -I" NETC_RUNTIME_INCLUDE;
    ck_assert_msg(sh("gcc %s -O2 -c '%s/model.c' -o '%s/model_gcc.o'", warn, t->dir, t->dir) == 0,
                  "gcc rejected %s/model.c", t->dir);
    ck_assert_msg(sh("clang %s -O0 -c '%s/model.c' -o '%s/model_O0.o'", warn, t->dir, t->dir) == 0,
                  "clang -O0 rejected %s/model.c", t->dir);
    ck_assert_msg(sh("clang %s -O2 $NETC_CFLAGS -DMODEL=%s_model -DTRAIN=%s_train '%s/model.c' '%s/driver.c' '%s' -ljansson -lpng -ljpeg -lz -lpthread -lm -o '%s/prog'",
                     warn, emit_prefix(t->g), emit_prefix(t->g), t->dir, t->dir, NETC_RUNTIME_LIB, t->dir) == 0,
                  "clang rejected %s", t->dir);
}

static void write_floats(FILE *f, const float *d, int64_t n) {
    ck_assert_int_eq(fwrite(d, sizeof *d, (size_t)n, f), (size_t)n);
}

/* Runs the compiled graph on random data and checks every output against the
 * reference; with `embedded` the params are not fed (data holds the values
 * the embed file has) and are checked bit for bit after the outputs. */
static void check_run(T *t, float **data, bool embedded) {
    Graph *g = t->g;
    char inp[128], outp[128];
    snprintf(inp, sizeof inp, "%s/in.bin", t->dir);
    snprintf(outp, sizeof outp, "%s/out.bin", t->dir);
    FILE *f = fopen(inp, "wb");
    for (int i = 0; i < g->nvalues && !embedded; i++)
        if (g->values[i]->kind == V_PARAM) write_floats(f, data[i], shape_numel(&g->values[i]->shape));
    for (int i = 0; i < g->ninputs; i++) write_floats(f, data[g->inputs[i]->id], shape_numel(&g->inputs[i]->shape));
    fclose(f);
    ck_assert_msg(sh("'%s/prog' '%s' '%s'", t->dir, inp, outp) == 0, "the program failed");

    /* reference */
    double **ref = calloc((size_t)g->nvalues, sizeof *ref);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind == V_PARAM || v->kind == V_INPUT) {
            int64_t n = shape_numel(&v->shape);
            ref[i] = malloc(sizeof(double) * (size_t)(n ? n : 1));
            for (int64_t j = 0; j < n; j++) ref[i][j] = data[i][j];
        }
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        double *in[IR_MAX_IN];
        for (int j = 0; j < n->nin; j++) in[j] = ref[n->in[j]->id];
        int64_t total = 0;
        for (int j = 0; j < n->nout; j++) total += shape_numel(&n->out[j]->shape);
        double *y = malloc(sizeof *y * (size_t)total);
        ref_node(n, in, y);
        for (int j = 0, off = 0; j < n->nout; j++) {
            ref[n->out[j]->id] = y + off;
            off += (int)shape_numel(&n->out[j]->shape);
        }
    }

    char *got = slurp(outp);
    const float *p = (const float *)got;
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = g->outputs[i].v;
        int64_t n = shape_numel(&v->shape);
        for (int64_t j = 0; j < n; j++, p++) {
            double want = ref[v->id][j];
            ck_assert_msg(fabs(*p - want) <= 1e-5 + 1e-5 * fabs(want), "output %s[%lld] = %.9g, expected %.9g",
                          g->outputs[i].name, (long long)j, (double)*p, want);
        }
    }
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_PARAM) continue;
        int64_t n = shape_numel(&v->shape);
        ck_assert_msg(memcmp(p, data[i], sizeof(float) * (size_t)n) == 0, "param %s differs", v->name);
        p += n;
    }
    free(got);
    /* Each node's outputs share one block, starting at its first output. */
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind == V_PARAM || v->kind == V_INPUT || (v->def && !v->def->dead && v->out_index == 0)) free(ref[i]);
        free(data[i]);
    }
    free(ref);
    free(data);
}

static float **make_all(T *t) {
    rng_state = 12345;
    float **data = calloc((size_t)t->g->nvalues, sizeof *data);
    for (int i = 0; i < t->g->nvalues; i++)
        if (t->g->values[i]->kind == V_PARAM || t->g->values[i]->kind == V_INPUT) data[i] = make_data(t->g->values[i]);
    return data;
}

/* Emits, builds with the generic driver, runs and checks. */
static void check_graph(T *t) {
    ck_assert(graph_verify(t->g, "test"));
    ck_assert(emit(t, NULL));
    build(t, driver_src);
    check_run(t, make_all(t), false);
}

/* ---- the tests ----------------------------------------------------------------------- */

static const struct ConvCase {
    int n, c, h, w, k, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, groups;
    bool bias;
} conv_cases[] = {
    {2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true},
    {1, 3, 9, 11, 6, 3, 2, 2, 1, 1, 2, 0, 1, 2, 1, 1, true}, /* asymmetric everything */
    {2, 4, 7, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2, false},
    {1, 4, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, true}, /* depthwise */
    {1, 2, 10, 9, 3, 3, 3, 3, 3, 0, 0, 0, 0, 2, 2, 1, true}, /* dilation with stride */
    {1, 3, 6, 6, 5, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, false}, /* 1x1 stride 2 */
    {1, 2, 4, 4, 2, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, true},  /* kernel wider than half the input */
    {1, 1, 3, 3, 2, 3, 3, 1, 1, 4, 4, 4, 4, 1, 1, 1, true},  /* taps entirely in the pad */
};

START_TEST(conv_variants) {
    const struct ConvCase *k = &conv_cases[_i];
    T t = t_new("convs", k->n);
    Value *x = input(&t, "x", shp(4, k->n, k->c, k->h, k->w));
    Value *w = param(&t, "conv.weight", shp(4, k->k, k->c / k->groups, k->kh, k->kw));
    Attrs a = conv_attrs(k->k, k->kh, k->kw, k->sh, k->sw, k->pt, k->pb, k->pl, k->pr, k->dh, k->dw, k->groups,
                         k->bias);
    Value *y = k->bias ? NODE(&t, OP_CONV, "conv", a, x, w, param(&t, "conv.bias", shp(1, k->k)))
                       : NODE(&t, OP_CONV, "conv", a, x, w);
    graph_add_output(t.g, "y", y, line_span(2));
    check_graph(&t);
    t_free(&t);
}
END_TEST

static const struct PoolCase {
    Op op;
    int h, w, k, s, p;
    bool ceil_mode, count_pad;
} pool_cases[] = {
    {OP_MAXPOOL, 8, 8, 2, 2, 0, false, false},  {OP_MAXPOOL, 9, 7, 3, 2, 1, false, false},
    {OP_MAXPOOL, 9, 8, 3, 2, 1, true, false},   {OP_MAXPOOL, 10, 10, 2, 3, 0, true, false},
    {OP_AVGPOOL, 8, 8, 2, 2, 0, false, true},   {OP_AVGPOOL, 7, 9, 3, 2, 1, false, true},
    {OP_AVGPOOL, 7, 9, 3, 2, 1, false, false},  {OP_AVGPOOL, 8, 9, 3, 2, 1, true, true},
    {OP_AVGPOOL, 8, 9, 3, 2, 1, true, false},   {OP_AVGPOOL, 10, 10, 2, 3, 0, true, true},
    {OP_AVGPOOL, 5, 5, 5, 1, 2, false, false},
};

START_TEST(pool_variants) {
    const struct PoolCase *k = &pool_cases[_i];
    T t = t_new("pools", 2);
    Value *x = input(&t, "x", shp(4, 2, 3, k->h, k->w));
    Value *y = NODE(&t, k->op, "pool", pool_attrs(k->k, k->s, k->p, k->ceil_mode, k->count_pad), x);
    graph_add_output(t.g, "y", y, line_span(2));
    check_graph(&t);
    t_free(&t);
}
END_TEST

/* Every other op, and broadcasting operands on either side. */
START_TEST(other_ops) {
    T t = t_new("ops", 2);
    Value *x = input(&t, "x", shp(4, 2, 3, 5, 4));
    Value *bn = NODE(&t, OP_BATCHNORM, "bn", eps_attrs(1e-3), x, param(&t, "bn.weight", shp(1, 3)),
                     param(&t, "bn.bias", shp(1, 3)), param(&t, "bn.running_mean", shp(1, 3)),
                     param(&t, "bn.running_var", shp(1, 3)));
    Value *r = NODE(&t, OP_RELU, "relu", none, bn);
    graph_add_output(t.g, "sm4", NODE(&t, OP_SOFTMAX, "sm4", none, r), line_span(2));
    Value *gp = NODE(&t, OP_GLOBAL_AVGPOOL, "gap", none, x);             /* [2, 3, 1, 1] */
    Value *gate = NODE(&t, OP_SIGMOID, "gate", none, gp);
    graph_add_output(t.g, "mul_b", NODE(&t, OP_MUL, "mul_b", none, x, gate), line_span(2));
    graph_add_output(t.g, "add_a", NODE(&t, OP_ADD, "add_a", none, gate, r), line_span(2));
    Value *fl = NODE(&t, OP_FLATTEN, "flat", none, gp);                 /* [2, 3] */
    graph_add_output(t.g, "add_flat", NODE(&t, OP_ADD, "add_flat", none, x, fl), line_span(2));
    graph_add_output(t.g, "mul_same", NODE(&t, OP_MUL, "mul_same", none, x, r), line_span(2));
    Value *fx = NODE(&t, OP_FLATTEN, "flatx", none, x);                 /* [2, 60] */
    Attrs la = {0};
    la.linear.out = 7;
    la.linear.bias = true;
    Value *l1 = NODE(&t, OP_LINEAR, "fc1", la, fx, param(&t, "fc1.weight", shp(2, 7, 60)), param(&t, "fc1.bias", shp(1, 7)));
    la.linear.bias = false;
    la.linear.out = 5;
    Value *l2 = NODE(&t, OP_LINEAR, "fc2", la, NODE(&t, OP_TANH, "tanh", none, l1), param(&t, "fc2.weight", shp(2, 5, 7)));
    Value *bn2 = NODE(&t, OP_BATCHNORM, "bn2", eps_attrs(1e-5), l2, param(&t, "bn2.weight", shp(1, 5)),
                      param(&t, "bn2.bias", shp(1, 5)), param(&t, "bn2.running_mean", shp(1, 5)),
                      param(&t, "bn2.running_var", shp(1, 5)));
    graph_add_output(t.g, "probs", NODE(&t, OP_SOFTMAX, "sm2", none, bn2), line_span(2));
    check_graph(&t);
    t_free(&t);
}
END_TEST

/* Folded weights computed by prepare and read by conv and linear. */
START_TEST(bn_fold) {
    T t = t_new("fold", 2);
    Value *x = input(&t, "x", shp(4, 2, 3, 6, 6));
    Value *bnp[4], *bnq[4];
    const char *names[] = {"weight", "bias", "running_mean", "running_var"};
    char buf[64];
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "bn.%s", names[i]);
        bnp[i] = param(&t, buf, shp(1, 4));
        snprintf(buf, sizeof buf, "bn2.%s", names[i]);
        bnq[i] = param(&t, buf, shp(1, 5));
    }
    Attrs fa = eps_attrs(1e-5);
    Value *cw = param(&t, "conv.weight", shp(4, 4, 3, 3, 3)), *cb = param(&t, "conv.bias", shp(1, 4));
    Node *f1 = node_n(&t, OP_BN_FOLD, "bn", fa, 6, (Value *[]){cw, cb, bnp[0], bnp[1], bnp[2], bnp[3]});
    Value *c = NODE(&t, OP_CONV, "conv", conv_attrs(4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true), x, f1->out[0],
                    f1->out[1]);
    graph_add_output(t.g, "conv", c, line_span(2));
    Value *fl = NODE(&t, OP_FLATTEN, "flat", none, c);
    Value *lw = param(&t, "fc.weight", shp(2, 5, 144));
    fa.bn.eps = 0.25;
    Node *f2 = node_n(&t, OP_BN_FOLD, "bn2", fa, 5, (Value *[]){lw, bnq[0], bnq[1], bnq[2], bnq[3]});
    Attrs la = {0};
    la.linear.out = 5;
    la.linear.bias = true;
    graph_add_output(t.g, "fc", NODE(&t, OP_LINEAR, "fc", la, fl, f2->out[0], f2->out[1]), line_span(2));
    check_graph(&t);
    char path[128];
    snprintf(path, sizeof path, "%s/model.c", t.dir);
    char *text = slurp(path);
    /* the folds run in prepare, not per inference */
    char *prep = strstr(text, "static void fold_prepare(struct fold *self)"),
         *run = strstr(text, "static void fold_forward(struct fold *self)");
    ck_assert(prep && run);
    ck_assert(strstr(prep, "bn_fold_bn(") < run && strstr(prep, "bn_fold_bn2(") < run);
    ck_assert_ptr_null(strstr(run, "bn_fold"));
    free(text);
    t_free(&t);
}
END_TEST

/* An input that is directly an output, an output used further, one value
 * output twice, two inputs. */
START_TEST(outputs_and_inputs) {
    T t = t_new("io", 3);
    Value *a = input(&t, "a", shp(2, 3, 4)), *b = input(&t, "b", shp(2, 3, 4));
    graph_add_output(t.g, "a_again", a, line_span(2));
    Value *s = NODE(&t, OP_ADD, "sum", none, a, b);
    graph_add_output(t.g, "sum", s, line_span(2));
    Value *r = NODE(&t, OP_RELU, "relu", none, s);
    graph_add_output(t.g, "r1", r, line_span(2));
    graph_add_output(t.g, "r2", r, line_span(2));
    graph_add_output(t.g, "prod", NODE(&t, OP_MUL, "prod", none, r, b), line_span(2));
    check_graph(&t);
    t_free(&t);
}
END_TEST

/* ---- embedded weights ------------------------------------------------------------------- */

typedef struct Embed {
    netrt_st_file f;
    netrt_st_entry e[8];
    unsigned char data[8][512];
} Embed;

static void embed_add(Embed *m, const char *name, netrt_dtype dt, Shape s, const float *v) {
    netrt_st_entry *e = &m->e[m->f.count];
    e->name = name;
    e->dtype = dt;
    e->rank = s.rank;
    for (int i = 0; i < s.rank; i++) e->shape[i] = s.d[i];
    int64_t n = shape_numel(&s);
    e->nbytes = (size_t)n * netrt_dtype_size(dt);
    ck_assert_uint_le(e->nbytes, sizeof m->data[0]);
    for (int64_t i = 0; i < n; i++) {
        if (dt == NETRT_F64) {
            double d = v[i];
            memcpy(m->data[m->f.count] + 8 * i, &d, 8);
        } else {
            memcpy(m->data[m->f.count] + 4 * i, &v[i], 4);
        }
    }
    e->data = m->data[m->f.count];
    m->f.entries = m->e;
    m->f.count++;
}

static T embed_graph(void) {
    T t = t_new("emb", 2);
    Value *x = input(&t, "x", shp(2, 2, 6));
    Attrs la = {0};
    la.linear.out = 4;
    la.linear.bias = true;
    Value *y = NODE(&t, OP_LINEAR, "fc", la, x, param(&t, "fc.weight", shp(2, 4, 6)), param(&t, "fc.bias", shp(1, 4)));
    graph_add_output(t.g, "y", y, line_span(2));
    return t;
}

/* Values that are hard to print exactly. */
static void tricky(float *w, int n) {
    static const float special[] = {1.0f, -0.0f, 0.1f, 1e-39f, 3.0e30f, -2.5f, 16777217.0f, 1e10f, 100.0f,
                                    1.17549435e-38f, 0.33333334f, -7.0f};
    for (int i = 0; i < n; i++) w[i] = i < (int)(sizeof special / sizeof *special) ? special[i] : (float)uniform();
}

START_TEST(embed_exact) {
    T t = embed_graph();
    Embed m = {0};
    float w[24], b[4];
    rng_state = 7;
    tricky(w, 24);
    for (int i = 0; i < 4; i++) b[i] = (float)uniform();
    b[2] = 3.4028235e38f; /* FLT_MAX, where no large weight meets it */
    embed_add(&m, "fc.weight", NETRT_F32, shp(2, 4, 6), w);
    embed_add(&m, "fc.bias", NETRT_F64, shp(1, 4), b); /* converted */
    EmitOptions o = {.embed = &m.f, .embed_path = "w.safetensors"};
    ck_assert(emit(&t, &o));
    build(&t, driver_src);
    float **data = make_all(&t);
    memcpy(data[1], w, sizeof w);
    memcpy(data[2], b, sizeof b);
    check_run(&t, data, true);

    char path[128];
    snprintf(path, sizeof path, "%s/model.c", t.dir);
    char *text = slurp(path);
    ck_assert_ptr_nonnull(strstr(text, "/* fc.weight [4, 6] */\n    [0] =\n    1.f, -0.f, 0.100000001f,"));
    ck_assert_ptr_nonnull(strstr(text, ".embedded = true"));
    free(text);
    t_free(&t);
}
END_TEST

/* The public API on embedded weights: load(NULL), then infer. */
START_TEST(load_and_infer) {
    T t = embed_graph();
    Embed m = {0};
    float w[24], b[4] = {0.5f, -1, 2, 0};
    for (int i = 0; i < 24; i++) w[i] = (float)(i % 7) - 3;
    embed_add(&m, "fc.weight", NETRT_F32, shp(2, 4, 6), w);
    embed_add(&m, "fc.bias", NETRT_F32, shp(1, 4), b);
    EmitOptions o = {.embed = &m.f, .embed_path = "w.safetensors"};
    ck_assert(emit(&t, &o));
    build(&t, "#include \"model.h\"\n"
              "#include <stdio.h>\n"
              "int main(void) {\n"
              "    float x[EMB_X_SIZE], y[EMB_Y_SIZE];\n"
              "    for (int i = 0; i < EMB_X_SIZE; i++) x[i] = (float)i;\n"
              "    if (EMB_BATCH != 2 || EMB_Y_SIZE != 8 || emb_load(NULL) != 0 || emb_load(NULL) != 0) return 1;\n"
              "    emb_infer(x, y);\n"
              "    for (int i = 0; i < EMB_Y_SIZE; i++) printf(\"%g\\n\", y[i]);\n"
              "    return 0;\n"
              "}\n");
    char outp[128];
    snprintf(outp, sizeof outp, "%s/out.txt", t.dir);
    ck_assert_int_eq(sh("'%s/prog' > '%s'", t.dir, outp), 0);
    char *got = slurp(outp), *p = got;
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 4; k++) {
            double want = b[k];
            for (int d = 0; d < 6; d++) want += (n * 6 + d) * (double)w[k * 6 + d];
            double v = strtod(p, &p);
            ck_assert_msg(fabs(v - want) < 1e-4, "y[%d][%d] = %g, expected %g", n, k, v, want);
        }
    free(got);
    t_free(&t);
}
END_TEST

static const struct EmbedError {
    const char *name;
    netrt_dtype dtype;
    int rank, d0, d1;
    const char *message;
} embed_errors[] = {
    {"fc.bias_", NETRT_F32, 1, 4, 0, "netc: error: w.safetensors: missing tensor 'fc.bias' (expected shape [4])"},
    {"fc.bias", NETRT_F32, 2, 4, 1, "netc: error: w.safetensors: tensor 'fc.bias' has shape [4, 1], expected [4]"},
    {"fc.bias", NETRT_F32, 1, 5, 0, "netc: error: w.safetensors: tensor 'fc.bias' has shape [5], expected [4]"},
    {"fc.bias", NETRT_I32, 1, 4, 0, "tensor 'fc.bias' has dtype I32"},
};

/* A missing or misshapen tensor: an error naming it, and nothing written. */
START_TEST(embed_error) {
    const struct EmbedError *k = &embed_errors[_i];
    T t = embed_graph();
    Embed m = {0};
    float w[24] = {0}, b[5] = {0};
    embed_add(&m, "fc.weight", NETRT_F32, shp(2, 4, 6), w);
    embed_add(&m, k->name, k->dtype, k->rank == 1 ? shp(1, k->d0) : shp(2, k->d0, k->d1), b);
    EmitOptions o = {.embed = &m.f, .embed_path = "w.safetensors"};
    capture_begin();
    bool ok = emit(&t, &o);
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_msg(strstr(msg, k->message) != NULL, "got: %s", msg);
    struct stat st;
    char path[128];
    snprintf(path, sizeof path, "%s/model.c", t.dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    snprintf(path, sizeof path, "%s/model.h", t.dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    t_free(&t);
}
END_TEST

/* ---- identifiers, comments, the header ------------------------------------------------- */

START_TEST(identifiers) {
    T t = t_new("my-net 2", 1);
    ck_assert_str_eq(emit_prefix(t.g), "my_net_2");
    Value *x = input(&t, "int", shp(2, 1, 3));
    Value *p1 = param(&t, "a.b", shp(2, 1, 3)), *p2 = param(&t, "a_b", shp(2, 1, 3));
    Value *s = NODE(&t, OP_ADD, "x */ y /* ?\?= \"q\"\\", none, x, NODE(&t, OP_MUL, "m", none, p1, p2));
    graph_add_output(t.g, "memcpy", s, line_span(2));
    graph_add_output(t.g, "out", x, line_span(2));
    ck_assert(graph_verify(t.g, "test"));
    EmitOptions o = {.main = EMIT_MAIN_INFER};
    ck_assert(emit(&t, &o));
    char path[128];
    snprintf(path, sizeof path, "%s/model.c", t.dir);
    char *c = slurp(path);
    snprintf(path, sizeof path, "%s/model.h", t.dir);
    char *h = slurp(path);
    ck_assert_ptr_nonnull(strstr(c, "/* Generated by netc from test.net"));
    /* parameters are offsets in the param block: they need no identifiers */
    ck_assert_ptr_nonnull(strstr(c, "static const netrt_tensor my_net_2_params[2]"));
    ck_assert_ptr_nonnull(strstr(c, "/* test.net:3: mul \"m\"  [1, 3], [1, 3] -> [1, 3] */"));
    ck_assert_ptr_nonnull(strstr(c, "static void n0_mul_m(const netc_real *restrict a, const netc_real *restrict b, netc_real *restrict y)"));
    ck_assert_ptr_nonnull(strstr(c, "int main(int argc, char **argv) { return netrt_main(argc, argv, &my_net_2_model); }"));
    ck_assert_ptr_nonnull(strstr(h, "#define MY_NET_2_BATCH 1\n"));
    ck_assert_ptr_nonnull(strstr(h, "#define MY_NET_2_INT_SIZE 3 "));
    ck_assert_ptr_nonnull(strstr(h, "void my_net_2_infer(const float *int_, float *memcpy_, float *out);"));
    ck_assert_ptr_nonnull(strstr(h, "int my_net_2_load(const char *weights_path);"));
    ck_assert_ptr_nonnull(strstr(h, "extern const netrt_model my_net_2_model;"));
    free(c);
    free(h);
    /* it compiles cleanly; main comes from the driver here, so drop ours */
    ck_assert_int_eq(sh("sed -i '/^int main/d' '%s/model.c'", t.dir), 0);
    build(&t, driver_src);
    check_run(&t, make_all(&t), false);
    t_free(&t);
}
END_TEST

/* --check-numerics: each node's call is followed by one check of its output,
 * off by default; on, the first node whose output holds a NaN is reported
 * (its op, name, line, sample and element) and run returns at once. */
START_TEST(check_numerics) {
    T t = t_new("cn", 2);
    Value *x = input(&t, "x", shp(2, 2, 3));
    Value *w = param(&t, "w", shp(2, 2, 3));
    Value *r = NODE(&t, OP_RELU, "r", none, x);               /* line 3 */
    Value *y = NODE(&t, OP_TANH, "t \"q\"", none, r);         /* line 4 */
    Value *z = NODE(&t, OP_TANH, "pw", none, w);              /* line 5: not per sample */
    graph_add_output(t.g, "y", y, line_span(2));
    graph_add_output(t.g, "z", z, line_span(2));
    ck_assert(graph_verify(t.g, "test"));
    ck_assert(emit(&t, NULL));
    char path[128];
    snprintf(path, sizeof path, "%s/model.c", t.dir);
    char *c = slurp(path);
    ck_assert_ptr_nonnull(strstr(c, "    const bool check_numerics = self->check_numerics;\n"));
    ck_assert_ptr_nonnull(strstr(c, "    .check_numerics = &program.check_numerics,\n"));
    ck_assert_ptr_nonnull(strstr(c, ", 6, 3, \"the output\", \"relu\", \"r\", \"test.net:3\")) return;\n"));
    ck_assert_ptr_nonnull(strstr(c, ", 6, 3, \"the output\", \"tanh\", \"t \\\"q\\\"\", \"test.net:4\")) return;\n"));
    ck_assert_ptr_nonnull(strstr(c, ", 6, 0, \"the output\", \"tanh\", \"pw\", \"test.net:5\")) return;\n"));
    int calls = 0;
    for (const char *p = c; (p = strstr(p, "    if (check_numerics && netrt_check_finite(")) != NULL; p++) calls++;
    ck_assert_int_eq(calls, 3);
    free(c);
    build(&t, "#include \"model.h\"\n"
              "#include <math.h>\n"
              "#include <stdio.h>\n"
              "int main(void) {\n"
              "    const netrt_model *m = &MODEL;\n"
              "    if (m->init() != 0 || !m->check_numerics || *m->check_numerics) return 2;\n"
              "    for (int i = 0; i < 6; i++) m->params[0].data[i] = m->inputs[0].data[i] = (float)i;\n"
              "    m->inputs[0].data[5] = NAN;\n"
              "    m->prepare();\n"
              "    m->run(); /* off: nothing is checked */\n"
              "    if (netrt_numerics_error() || !isnan(m->outputs[0].data[5])) return 3;\n"
              "    *m->check_numerics = true;\n"
              "    m->outputs[0].data[1] = 42;\n"
              "    m->run();\n"
              "    /* tanh did not run: y[1] holds 42, or relu's 1 where tanh runs in place (the memory plan) */\n"
              "    if (!netrt_numerics_error() || fabsf(m->outputs[0].data[1] - tanhf(1.0f)) < 1e-3f) return 4;\n"
              "    puts(netrt_numerics_error());\n"
              "    return 0;\n"
              "}\n");
    char outp[128];
    snprintf(outp, sizeof outp, "%s/out.txt", t.dir);
    ck_assert_int_eq(sh("'%s/prog' > '%s'", t.dir, outp), 0);
    char *got = slurp(outp);
    ck_assert_str_eq(got, "numerics: NaN in the output of relu \"r\" (test.net:3), sample 1, element 2\n");
    free(got);
    t_free(&t);
}
END_TEST

/* The example from the issue, end to end through the front end. */
START_TEST(lenet5_text) {
    Source *src;
    Graph *g = compile_text("net lenet5 {\n"
                            "    input image: [1, 28, 28];\n"
                            "    x = conv(image, 6, 5, pad = 2) |> tanh |> avgpool(2);\n"
                            "    x = conv(x, 16, 5) |> tanh |> avgpool(2);\n"
                            "    x = conv(x, 120, 5) |> tanh |> flatten;\n"
                            "    x = linear(x, 84) |> tanh;\n"
                            "    output logits = linear(x, 10);\n"
                            "}\n",
                            2, &src);
    ck_assert_ptr_nonnull(g);
    T t = {g, src, "/tmp/netc-test-emit-XXXXXX", NULL, NULL};
    ck_assert_ptr_nonnull(mkdtemp(t.dir));
    check_graph(&t);
    t_free(&t);
}
END_TEST

/* ---- training graphs ---------------------------------------------------------------------- */

/* A training graph (train_begin: an empty training record), new nodes in `phase`. */
static T t_train(const char *name, int batch, Phase phase) {
    T t = t_new(name, batch);
    train_begin(t.g);
    graph_set_phase(t.g, phase);
    return t;
}

static Value *state(T *t, const char *name, Shape s) { return graph_add_value(t->g, V_STATE, name, s, line_span(2)); }

/* The labels input (outside g->inputs, as the autodiff pass makes it). */
static Value *labels(T *t) {
    Training *tr = train_of(t->g);
    tr->labels = graph_add_value(t->g, V_INPUT, "labels", shp(1, t->g->batch), line_span(2));
    return tr->labels;
}

/* Class indices in [0, k) for the labels. */
static void fill_labels(T *t, float **data, int k) {
    for (int64_t i = 0; i < t->g->batch; i++) data[train_of(t->g)->labels->id][i] = (float)((i * 7 + 3) % k);
}

/* Which values have the batch as their first dimension (ops.def): inputs (the
 * labels too); weight, bias and batchnorm-parameter gradients, the batch
 * statistics and the loss do not; add and mul if an operand does;
 * reduce_like as its second operand; everything else as its first input. */
static bool *ref_batched(Graph *g) {
    bool *b = calloc((size_t)g->nvalues, 1);
    for (int i = 0; i < g->nvalues; i++) b[i] = g->values[i]->kind == V_INPUT;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int j = 0; j < n->nout; j++) {
            bool v;
            switch (n->op) {
            case OP_CONV_GRAD_WEIGHT: case OP_LINEAR_GRAD_WEIGHT: case OP_BIAS_GRAD: case OP_XENT_LOSS: case OP_BN_FOLD:
                v = false;
                break;
            case OP_BATCHNORM_TRAIN: case OP_BATCHNORM_GRAD: v = j == 0; break;
            case OP_ADD: case OP_MUL: v = b[n->in[0]->id] || b[n->in[1]->id]; break;
            case OP_REDUCE_LIKE: v = b[n->in[1]->id]; break;
            default: v = b[n->in[0]->id]; break;
            }
            b[n->out[j]->id] = v;
        }
    }
    return b;
}

/* Elements of v that the active batch nb covers. */
static int64_t active_numel(const Value *v, int nb, const bool *bat) {
    int64_t n = shape_numel(&v->shape);
    return bat[v->id] && v->shape.d[0] ? n / v->shape.d[0] * nb : n;
}

static bool ref_evaluates(Op op) {
    switch (op) {
    case OP_CONV: case OP_LINEAR: case OP_BATCHNORM: case OP_RELU: case OP_TANH: case OP_SIGMOID: case OP_MAXPOOL:
    case OP_AVGPOOL: case OP_GLOBAL_AVGPOOL: case OP_FLATTEN: case OP_SOFTMAX: case OP_ADD: case OP_MUL: case OP_BN_FOLD:
    case OP_BATCHNORM_TRAIN: case OP_XENT_LOSS:
        return true;
    default:
        return false;
    }
}

/* The reference forward pass on the first nb samples, with element pj of
 * value pv (a param or input) moved by delta: every value the forward ops
 * (and the loss) compute, by value id; gradient ops are not evaluated (their
 * values stay NULL).  Parameters are not updated.  Free with ref_free. */
static double **ref_eval(T *t, float **data, int nb, const bool *bat, int pv, int64_t pj, double delta) {
    Graph *g = t->g;
    double **r = calloc((size_t)g->nvalues, sizeof *r);
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind != V_PARAM && v->kind != V_INPUT) continue;
        int64_t n = shape_numel(&v->shape);
        r[i] = malloc(sizeof(double) * (size_t)(n ? n : 1));
        for (int64_t j = 0; j < n; j++) r[i][j] = data[i][j];
        if (i == pv) r[i][pj] += delta;
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->dead || !ref_evaluates(n->op)) continue;
        bool ready = true;
        for (int j = 0; j < n->nin; j++) ready = ready && r[n->in[j]->id];
        if (!ready) continue;
        /* a copy of the node whose batched values have nb samples */
        Node c = *n;
        Value vin[IR_MAX_IN], vout[IR_MAX_OUT];
        double *in[IR_MAX_IN];
        for (int j = 0; j < n->nin; j++) {
            vin[j] = *n->in[j];
            if (bat[vin[j].id]) vin[j].shape.d[0] = nb;
            c.in[j] = &vin[j];
            in[j] = r[n->in[j]->id];
        }
        int64_t total = 0;
        for (int j = 0; j < n->nout; j++) {
            vout[j] = *n->out[j];
            if (bat[vout[j].id]) vout[j].shape.d[0] = nb;
            c.out[j] = &vout[j];
            total += shape_numel(&vout[j].shape);
        }
        int64_t extra = n->op == OP_BATCHNORM_TRAIN ? n->in[0]->shape.d[1] : 0;
        double *y = malloc(sizeof *y * (size_t)(total + extra + 1));
        ref_node(&c, in, y);
        for (int j = 0, off = 0; j < n->nout; j++) {
            r[n->out[j]->id] = y + off;
            off += (int)shape_numel(&vout[j].shape);
        }
    }
    return r;
}

static void ref_free(T *t, double **r) {
    Graph *g = t->g;
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind == V_PARAM || v->kind == V_INPUT || (v->def && v->out_index == 0)) free(r[i]);
    }
    free(r);
}

/* The scalar the gradients are of: the loss, or sum(fd_y * fd_dy). */
static double ref_objective(T *t, float **data, int nb, const bool *bat, int pv, int64_t pj, double delta) {
    double **r = ref_eval(t, data, nb, bat, pv, pj, delta);
    double L = 0;
    const Training *tr = train_of(t->g);
    if (tr && tr->loss) {
        L = r[tr->loss->id][0];
    } else {
        int64_t n = active_numel(t->fd_y, nb, bat);
        for (int64_t j = 0; j < n; j++) L += r[t->fd_y->id][j] * data[t->fd_dy->id][j];
    }
    ref_free(t, r);
    return L;
}

/* got (the emitted gradient of param or input v) against central differences
 * of the reference objective, within 1e-4 of the largest magnitude. */
static void check_fd(T *t, float **data, int nb, const bool *bat, Value *v, const float *got) {
    const double h = 1e-6;
    int64_t n = active_numel(v, nb, bat);
    double *fd = malloc(sizeof *fd * (size_t)n), scale = 0;
    for (int64_t j = 0; j < n; j++) {
        fd[j] = (ref_objective(t, data, nb, bat, v->id, j, h) - ref_objective(t, data, nb, bat, v->id, j, -h)) / (2 * h);
        scale = fmax(scale, fabs(fd[j]));
    }
    for (int64_t j = 0; j < n; j++)
        ck_assert_msg(fabs(got[j] - fd[j]) <= 1e-4 * scale + 1e-6,
                      "d/d %s[%lld] = %.7g, finite differences %.7g (scale %.3g, nb %d)", v->name, (long long)j,
                      (double)got[j], fd[j], scale, nb);
    free(fd);
}

/* Runs the training driver: params, the model's inputs and the labels in;
 * set_batch(nb), run(), then `steps` times grad() and update(); out come the
 * outputs, the params, every gradient the descriptor has, the loss, the
 * training logits, and the outputs again after reset_state. */
static const char train_driver_src[] =
    "#include \"model.h\"\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "static int rd(FILE *f, const netrt_tensor *t) {\n"
    "    size_t n = (size_t)netrt_numel(t->rank, t->shape);\n"
    "    return fread(t->data, sizeof(float), n, f) == n;\n"
    "}\n"
    "static void wr(FILE *f, const netrt_tensor *t) {\n"
    "    fwrite(t->data, sizeof(float), (size_t)netrt_numel(t->rank, t->shape), f);\n"
    "}\n"
    "int main(int argc, char **argv) {\n"
    "    const netrt_train_model *t = &TRAIN;\n"
    "    const netrt_model *m = t->infer;\n"
    "    if (argc != 8 || m->init() != 0 || m->init() != 0) return 2;\n"
    "    FILE *in = fopen(argv[1], \"rb\"), *out = fopen(argv[2], \"wb\");\n"
    "    if (!in || !out) return 2;\n"
    "    for (int i = 0; i < m->nparams; i++) if (!rd(in, &m->params[i])) return 3;\n"
    "    m->prepare();\n"
    "    for (int i = 0; i < m->ninputs; i++) if (!rd(in, &m->inputs[i])) return 3;\n"
    "    if (t->labels && !rd(in, t->labels)) return 3;\n"
    "    t->set_batch(atoi(argv[3]));\n"
    "    t->hp->lr = strtof(argv[5], NULL);\n"
    "    t->hp->momentum = strtof(argv[6], NULL);\n"
    "    t->hp->weight_decay = strtof(argv[7], NULL);\n"
    "    m->run();\n"
    "    for (int s = atoi(argv[4]); s > 0; s--) {\n"
    "        t->grad();\n"
    "        t->update();\n"
    "    }\n"
    "    for (int i = 0; i < m->noutputs; i++) wr(out, &m->outputs[i]);\n"
    "    for (int i = 0; i < m->nparams; i++) wr(out, &m->params[i]);\n"
    "    for (int i = 0; i < m->nparams; i++) if (t->grads[i].data) wr(out, &t->grads[i]);\n"
    "    for (int i = 0; i < m->ninputs; i++) if (t->input_grads[i].data) wr(out, &t->input_grads[i]);\n"
    "    if (t->loss) wr(out, t->loss);\n"
    "    if (t->train_logits) wr(out, t->train_logits);\n"
    "    t->reset_state();\n"
    "    for (int i = 0; i < m->noutputs; i++) wr(out, &m->outputs[i]);\n"
    "    return fclose(out) == 0 ? 0 : 4;\n"
    "}\n";

typedef struct Got {
    char *buf;
    const float **out, **out_reset; /* by output index */
    const float **val;              /* by value id: params after the steps, gradients by their param or input */
    const float **grad;             /* by value id of the param or input */
    const float *loss, *logits;
} Got;

typedef struct Hyper {
    float lr, momentum, wd;
} Hyper;

static Got run_train(T *t, float **data, int nb, int steps, Hyper hp) {
    Graph *g = t->g;
    const Training *tr = train_of(g);
    char inp[128], outp[128];
    snprintf(inp, sizeof inp, "%s/in.bin", t->dir);
    snprintf(outp, sizeof outp, "%s/out.bin", t->dir);
    FILE *f = fopen(inp, "wb");
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->kind == V_PARAM) write_floats(f, data[i], shape_numel(&g->values[i]->shape));
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] != tr->labels) write_floats(f, data[g->inputs[i]->id], shape_numel(&g->inputs[i]->shape));
    if (tr->labels) write_floats(f, data[tr->labels->id], shape_numel(&tr->labels->shape));
    fclose(f);
    ck_assert_msg(sh("'%s/prog' '%s' '%s' %d %d %.9g %.9g %.9g", t->dir, inp, outp, nb, steps, (double)hp.lr,
                     (double)hp.momentum, (double)hp.wd) == 0,
                  "the training program failed");
    Got r = {0};
    r.buf = slurp(outp);
    r.out = calloc((size_t)g->noutputs + 1, sizeof *r.out);
    r.out_reset = calloc((size_t)g->noutputs + 1, sizeof *r.out_reset);
    r.val = calloc((size_t)g->nvalues, sizeof *r.val);
    r.grad = calloc((size_t)g->nvalues, sizeof *r.grad);
    const float *p = (const float *)r.buf;
    for (int i = 0; i < g->noutputs; i++, p += shape_numel(&g->outputs[i - 1].v->shape)) r.out[i] = p;
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->kind == V_PARAM) {
            r.val[i] = p;
            p += shape_numel(&g->values[i]->shape);
        }
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if (v->kind == V_PARAM && train_grad(g, v)) {
            r.grad[i] = p;
            p += shape_numel(&v->shape);
        }
    }
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] != tr->labels && train_grad(g, g->inputs[i])) {
            r.grad[g->inputs[i]->id] = p;
            p += shape_numel(&g->inputs[i]->shape);
        }
    if (tr->loss) r.loss = p++;
    if (tr->logits) {
        r.logits = p;
        p += shape_numel(&tr->logits->shape);
    }
    for (int i = 0; i < g->noutputs; i++, p += shape_numel(&g->outputs[i - 1].v->shape)) r.out_reset[i] = p;
    return r;
}

static void got_free(Got *r) {
    free(r->buf);
    free(r->out);
    free(r->out_reset);
    free(r->val);
    free(r->grad);
}

static void expect_close(const char *what, int64_t j, double got, double want, double tol) {
    ck_assert_msg(fabs(got - want) <= tol + tol * fabs(want), "%s[%lld] = %.9g, expected %.9g", what, (long long)j,
                  got, want);
}

/* Every graph output whose reference the forward pass computes, on the first
 * nb samples; with rest_zero, the samples past nb were never written. */
static void check_outputs(T *t, const Got *r, double **ref, int nb, const bool *bat, bool rest_zero) {
    Graph *g = t->g;
    for (int i = 0; i < g->noutputs; i++) {
        const Value *v = g->outputs[i].v;
        if (!ref[v->id]) continue;
        int64_t n = active_numel(v, nb, bat);
        for (int64_t j = 0; j < n; j++) expect_close(g->outputs[i].name, j, r->out[i][j], ref[v->id][j], 1e-5);
        for (int64_t j = n; rest_zero && j < shape_numel(&v->shape); j++)
            ck_assert_msg(r->out[i][j] == 0.0f, "%s[%lld] past the active batch was written", g->outputs[i].name,
                          (long long)j);
    }
}

/* Every recorded gradient of a param or input against finite differences. */
static void check_all_grads(T *t, const Got *r, float **data, int nb, const bool *bat) {
    Graph *g = t->g;
    int checked = 0;
    for (int i = 0; i < g->nvalues; i++) {
        Value *v = g->values[i];
        if ((v->kind != V_PARAM && v->kind != V_INPUT) || !train_grad(g, v)) continue;
        ck_assert_msg(r->grad[i] != NULL, "no gradient for %s in the descriptor", v->name);
        check_fd(t, data, nb, bat, v, r->grad[i]);
        checked++;
    }
    ck_assert_int_gt(checked, 0);
}

static void emit_build_train(T *t) {
    ck_assert(graph_verify(t->g, "test"));
    ck_assert(emit(t, NULL));
    build(t, train_driver_src);
}

static void free_data(T *t, float **data) {
    for (int i = 0; i < t->g->nvalues; i++) free(data[i]);
    free(data);
}

/* Forward ops in a training graph run on the active batch only; set_batch
 * clamps to [1, N]. */
START_TEST(train_forward_active_batch) {
    T t = t_train("fwd", 3, PHASE_RUN);
    Value *x = input(&t, "x", shp(4, 3, 2, 6, 6));
    Value *c = NODE(&t, OP_CONV, "conv", conv_attrs(4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true), x,
                    param(&t, "conv.weight", shp(4, 4, 2, 3, 3)), param(&t, "conv.bias", shp(1, 4)));
    Value *bn = NODE(&t, OP_BATCHNORM, "bn", eps_attrs(1e-5), c, param(&t, "bn.weight", shp(1, 4)),
                     param(&t, "bn.bias", shp(1, 4)), param(&t, "bn.running_mean", shp(1, 4)),
                     param(&t, "bn.running_var", shp(1, 4)));
    Value *r = NODE(&t, OP_RELU, "relu", none, bn);
    Value *mp = NODE(&t, OP_MAXPOOL, "mp", pool_attrs(3, 2, 1, false, false), r);
    Value *ap = NODE(&t, OP_AVGPOOL, "ap", pool_attrs(2, 2, 0, false, true), r);
    Value *gate = NODE(&t, OP_SIGMOID, "gate", none, NODE(&t, OP_GLOBAL_AVGPOOL, "gap", none, ap));
    Value *gated = NODE(&t, OP_MUL, "gated", none, ap, gate);
    Value *sum = NODE(&t, OP_ADD, "sum", none, gated, NODE(&t, OP_FLATTEN, "gflat", none, gate));
    Attrs la = {0};
    la.linear.out = 5;
    la.linear.bias = true;
    Value *fc = NODE(&t, OP_LINEAR, "fc", la, NODE(&t, OP_FLATTEN, "flat", none, sum),
                     param(&t, "fc.weight", shp(2, 5, 36)), param(&t, "fc.bias", shp(1, 5)));
    graph_add_output(t.g, "probs", NODE(&t, OP_SOFTMAX, "sm", none, NODE(&t, OP_TANH, "tanh", none, fc)), line_span(2));
    graph_add_output(t.g, "mp", mp, line_span(2));
    graph_add_output(t.g, "sm4", NODE(&t, OP_SOFTMAX, "sm4", none, mp), line_span(2));
    emit_build_train(&t);
    float **data = make_all(&t);
    bool *bat = ref_batched(t.g);
    const int nbs[] = {2, 1, 99}; /* 99: clamped to N */
    for (int k = 0; k < 3; k++) {
        int nb = nbs[k] > 3 ? 3 : nbs[k];
        Got got = run_train(&t, data, nbs[k], 0, (Hyper){0});
        double **ref = ref_eval(&t, data, nb, bat, -1, 0, 0);
        check_outputs(&t, &got, ref, nb, bat, true);
        ref_free(&t, ref);
        got_free(&got);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/model.c", t.dir);
    char *text = slurp(path);
    ck_assert_ptr_nonnull(strstr(text, "enum { NMAX = 3 };\nstatic int nb_active = NMAX;"));
    ck_assert_ptr_nonnull(strstr(text, "    const int N = nb_active; /* the active batch, at most NMAX */\n"));
    ck_assert_ptr_null(strstr(text, "enum { N = 3"));
    free(text);
    free(bat);
    free_data(&t, data);
    t_free(&t);
}
END_TEST

static const struct BnCase {
    int rank, n, c, h, w, nb, steps;
    double momentum;
} bn_cases[] = {
    {4, 4, 3, 2, 3, 4, 1, 0.1},
    {4, 4, 3, 2, 3, 2, 2, 0.3}, /* active batch, two steps of running averages */
    {2, 3, 5, 0, 0, 3, 1, 0.1},
    {2, 3, 5, 0, 0, 2, 1, 0.1},
    {2, 3, 5, 0, 0, 1, 1, 0.1}, /* one value per channel: the running variance gets the biased 0 */
    {4, 3, 2, 1, 1, 1, 1, 0.1},
};

/* batchnorm_train against its formulas (batch statistics, running averages
 * with the unbiased variance), batchnorm_grad against finite differences. */
START_TEST(batchnorm_train) {
    const struct BnCase *k = &bn_cases[_i];
    T t = t_train("bnt", k->n, PHASE_GRAD);
    Shape xs = k->rank == 4 ? shp(4, k->n, k->c, k->h, k->w) : shp(2, k->n, k->c);
    Value *x = input(&t, "x", xs), *dy = input(&t, "dy", xs);
    Value *gamma = param(&t, "bn.weight", shp(1, k->c)), *beta = param(&t, "bn.bias", shp(1, k->c));
    Value *rm = param(&t, "bn.running_mean", shp(1, k->c)), *rv = param(&t, "bn.running_var", shp(1, k->c));
    train_freeze(t.g, rm);
    train_freeze(t.g, rv);
    Attrs a = eps_attrs(1e-3);
    a.bn.momentum = k->momentum;
    Node *f = node_n(&t, OP_BATCHNORM_TRAIN, "bn", a, 5, (Value *[]){x, gamma, beta, rm, rv});
    Node *b = node_n(&t, OP_BATCHNORM_GRAD, "bn", a, 5, (Value *[]){dy, x, gamma, f->out[1], f->out[2]});
    train_set_grad(t.g, x, b->out[0]);
    train_set_grad(t.g, gamma, b->out[1]);
    train_set_grad(t.g, beta, b->out[2]);
    graph_add_output(t.g, "y", f->out[0], line_span(2));
    graph_add_output(t.g, "mean", f->out[1], line_span(2));
    graph_add_output(t.g, "invstd", f->out[2], line_span(2));
    t.fd_y = f->out[0];
    t.fd_dy = dy;
    emit_build_train(&t);
    float **data = make_all(&t);
    bool *bat = ref_batched(t.g);
    Got got = run_train(&t, data, k->nb, k->steps, (Hyper){0});
    double **ref = ref_eval(&t, data, k->nb, bat, -1, 0, 0);
    check_outputs(&t, &got, ref, k->nb, bat, false);
    const double *mean = ref[f->out[1]->id], *var = ref[f->out[2]->id] + k->c;
    double cnt = (double)k->nb * (k->rank == 4 ? k->h * k->w : 1);
    for (int c = 0; c < k->c; c++) {
        double m = data[rm->id][c], v = data[rv->id][c];
        double unbiased = cnt > 1 ? var[c] * cnt / (cnt - 1) : var[c];
        for (int s = 0; s < k->steps; s++) {
            m = (1 - k->momentum) * m + k->momentum * mean[c];
            v = (1 - k->momentum) * v + k->momentum * unbiased;
        }
        expect_close("running_mean", c, got.val[rm->id][c], m, 1e-6);
        expect_close("running_var", c, got.val[rv->id][c], v, 1e-6);
        ck_assert(got.val[gamma->id][c] == data[gamma->id][c] && got.val[beta->id][c] == data[beta->id][c]);
    }
    check_all_grads(&t, &got, data, k->nb, bat);
    ref_free(&t, ref);
    got_free(&got);
    free(bat);
    free_data(&t, data);
    t_free(&t);
}
END_TEST

/* The gradient kernels of conv (input, weight, bias) for every conv variant,
 * on an active batch one smaller than the compiled one. */
START_TEST(conv_grads) {
    const struct ConvCase *k = &conv_cases[_i];
    int N = k->n + 1, nb = k->n;
    T t = t_train("convg", N, PHASE_GRAD);
    Value *x = input(&t, "x", shp(4, N, k->c, k->h, k->w));
    Value *w = param(&t, "conv.weight", shp(4, k->k, k->c / k->groups, k->kh, k->kw));
    Value *bias = k->bias ? param(&t, "conv.bias", shp(1, k->k)) : NULL;
    Attrs a = conv_attrs(k->k, k->kh, k->kw, k->sh, k->sw, k->pt, k->pb, k->pl, k->pr, k->dh, k->dw, k->groups,
                         k->bias);
    Value *y = bias ? NODE(&t, OP_CONV, "conv", a, x, w, bias) : NODE(&t, OP_CONV, "conv", a, x, w);
    Value *dy = input(&t, "dy", y->shape);
    train_set_grad(t.g, x, NODE(&t, OP_CONV_GRAD_INPUT, "conv", a, dy, w, x));
    train_set_grad(t.g, w, NODE(&t, OP_CONV_GRAD_WEIGHT, "conv", a, dy, x, w));
    if (bias) train_set_grad(t.g, bias, NODE(&t, OP_BIAS_GRAD, "conv", a, dy));
    graph_add_output(t.g, "y", y, line_span(2));
    t.fd_y = y;
    t.fd_dy = dy;
    emit_build_train(&t);
    float **data = make_all(&t);
    bool *bat = ref_batched(t.g);
    Got got = run_train(&t, data, nb, 2, (Hyper){0}); /* twice: nothing accumulates across calls */
    double **ref = ref_eval(&t, data, nb, bat, -1, 0, 0);
    check_outputs(&t, &got, ref, nb, bat, true);
    check_all_grads(&t, &got, data, nb, bat);
    ref_free(&t, ref);
    got_free(&got);
    free(bat);
    free_data(&t, data);
    t_free(&t);
}
END_TEST

/* maxpool_grad and avgpool_grad for every pooling variant, nb = 2 of 3. */
START_TEST(pool_grads) {
    const struct PoolCase *k = &pool_cases[_i];
    T t = t_train("poolg", 3, PHASE_GRAD);
    Value *x = input(&t, "x", shp(4, 3, 2, k->h, k->w));
    Attrs a = pool_attrs(k->k, k->s, k->p, k->ceil_mode, k->count_pad);
    Value *y = NODE(&t, k->op, "pool", a, x);
    Value *dy = input(&t, "dy", y->shape);
    train_set_grad(t.g, x, NODE(&t, k->op == OP_MAXPOOL ? OP_MAXPOOL_GRAD : OP_AVGPOOL_GRAD, "pool", a, dy, x));
    t.fd_y = y;
    t.fd_dy = dy;
    emit_build_train(&t);
    float **data = make_all(&t);
    bool *bat = ref_batched(t.g);
    Got got = run_train(&t, data, 2, 2, (Hyper){0});
    check_all_grads(&t, &got, data, 2, bat);
    got_free(&got);
    free(bat);
    free_data(&t, data);
    t_free(&t);
}
END_TEST

/* The other gradient kernels, one small graph each. */
enum { G_LINEAR, G_RELU, G_TANH, G_SIGMOID, G_SOFTMAX2, G_SOFTMAX4, G_GAP, G_FLATTEN, G_ADD_NC11, G_ADD_NC,
       G_MUL, G_MUL_GATE, G_XENT, G_COUNT };

START_TEST(other_grads) {
    int N = 4, nb = _i % 2 ? 4 : 3;
    T t = t_train("g", N, PHASE_GRAD);
    Value *x4 = NULL, *y = NULL;
    if (_i != G_LINEAR && _i != G_SOFTMAX2 && _i != G_XENT) x4 = input(&t, "x", shp(4, N, 3, 4, 5));
    Value *dy = NULL;
#define DY(v) (dy = input(&t, "dy", (v)->shape))
    switch (_i) {
    case G_LINEAR: {
        Value *x = input(&t, "x", shp(2, N, 70)); /* dw in two column blocks */
        Value *w = param(&t, "fc.weight", shp(2, 5, 70)), *b = param(&t, "fc.bias", shp(1, 5));
        Attrs la = {0};
        la.linear.out = 5;
        la.linear.bias = true;
        y = NODE(&t, OP_LINEAR, "fc", la, x, w, b);
        DY(y);
        train_set_grad(t.g, x, NODE(&t, OP_LINEAR_GRAD_INPUT, "fc", la, dy, w));
        train_set_grad(t.g, w, NODE(&t, OP_LINEAR_GRAD_WEIGHT, "fc", la, dy, x));
        train_set_grad(t.g, b, NODE(&t, OP_BIAS_GRAD, "fc", la, dy));
        break;
    }
    case G_RELU:
    case G_TANH:
    case G_SIGMOID: {
        static const Op fwd[] = {[G_RELU] = OP_RELU, [G_TANH] = OP_TANH, [G_SIGMOID] = OP_SIGMOID};
        static const Op bwd[] = {[G_RELU] = OP_RELU_GRAD, [G_TANH] = OP_TANH_GRAD, [G_SIGMOID] = OP_SIGMOID_GRAD};
        y = NODE(&t, fwd[_i], "act", none, x4);
        DY(y);
        train_set_grad(t.g, x4, NODE(&t, bwd[_i], "act", none, dy, y));
        break;
    }
    case G_SOFTMAX2: {
        Value *x = input(&t, "x", shp(2, N, 6));
        y = NODE(&t, OP_SOFTMAX, "sm", none, x);
        DY(y);
        train_set_grad(t.g, x, NODE(&t, OP_SOFTMAX_GRAD, "sm", none, dy, y));
        break;
    }
    case G_SOFTMAX4:
        y = NODE(&t, OP_SOFTMAX, "sm", none, x4);
        DY(y);
        train_set_grad(t.g, x4, NODE(&t, OP_SOFTMAX_GRAD, "sm", none, dy, y));
        break;
    case G_GAP:
        y = NODE(&t, OP_GLOBAL_AVGPOOL, "gap", none, x4);
        DY(y);
        train_set_grad(t.g, x4, NODE(&t, OP_GLOBAL_AVGPOOL_GRAD, "gap", none, dy, x4));
        break;
    case G_FLATTEN:
        y = NODE(&t, OP_FLATTEN, "flat", none, x4);
        DY(y);
        train_set_grad(t.g, x4, NODE(&t, OP_RESHAPE_GRAD, "flat", none, dy, x4));
        break;
    case G_ADD_NC11:
    case G_ADD_NC: {
        Value *b = input(&t, "b", _i == G_ADD_NC ? shp(2, N, 3) : shp(4, N, 3, 1, 1));
        y = NODE(&t, OP_ADD, "add", none, b, x4);
        DY(y);
        train_set_grad(t.g, x4, NODE(&t, OP_REDUCE_LIKE, "add", none, dy, x4)); /* same shape: a copy */
        train_set_grad(t.g, b, NODE(&t, OP_REDUCE_LIKE, "add", none, dy, b));
        break;
    }
    case G_MUL: {
        Value *b = input(&t, "b", x4->shape);
        y = NODE(&t, OP_MUL, "mul", none, x4, b);
        DY(y);
        train_set_grad(t.g, x4, NODE(&t, OP_MUL, "mul_dx", none, dy, b));
        train_set_grad(t.g, b, NODE(&t, OP_MUL, "mul_db", none, dy, x4));
        break;
    }
    case G_MUL_GATE: {
        Value *gate = input(&t, "gate", shp(4, N, 3, 1, 1));
        y = NODE(&t, OP_MUL, "mul", none, x4, gate);
        DY(y);
        train_set_grad(t.g, x4, NODE(&t, OP_MUL, "mul_dx", none, dy, gate));
        train_set_grad(t.g, gate,
                       NODE(&t, OP_REDUCE_LIKE, "mul_dg", none, NODE(&t, OP_MUL, "mul_dg", none, dy, x4), gate));
        break;
    }
    case G_XENT: {
        Value *z = input(&t, "logits", shp(2, N, 5));
        Value *l = labels(&t);
        Training *tr = train_of(t.g);
        tr->loss = NODE(&t, OP_XENT_LOSS, "loss", xent, z, l);
        tr->logits = z;
        train_set_grad(t.g, z, NODE(&t, OP_XENT_GRAD, "loss", xent, z, l));
        graph_add_output(t.g, "loss", tr->loss, line_span(2));
        break;
    }
    }
#undef DY
    if (y) {
        graph_add_output(t.g, "y", y, line_span(2));
        t.fd_y = y;
        t.fd_dy = dy;
    }
    emit_build_train(&t);
    float **data = make_all(&t);
    if (train_of(t.g)->labels) fill_labels(&t, data, 5);
    bool *bat = ref_batched(t.g);
    Got got = run_train(&t, data, nb, 2, (Hyper){0}); /* twice: nothing accumulates across calls */
    double **ref = ref_eval(&t, data, nb, bat, -1, 0, 0);
    check_outputs(&t, &got, ref, nb, bat, true);
    if (train_of(t.g)->loss) expect_close("loss", 0, *got.loss, ref[train_of(t.g)->loss->id][0], 1e-6);
    check_all_grads(&t, &got, data, nb, bat);
    ref_free(&t, ref);
    got_free(&got);
    free(bat);
    free_data(&t, data);
    t_free(&t);
}
END_TEST

static const Hyper sgd_cases[] = {{0.1f, 0.9f, 0.01f}, {0.05f, 0.0f, 0.0f}, {0.2f, 0.5f, 0.0f}};

/* SGD: three steps from fixed gradients against PyTorch's formulas; the
 * velocities persist between steps and reset_state zeroes them. */
START_TEST(sgd_update) {
    const Hyper hp = sgd_cases[_i];
    T t = t_train("sgd", 2, PHASE_UPDATE);
    Value *p[2] = {param(&t, "w", shp(2, 3, 4)), param(&t, "b", shp(1, 5))};
    Value *gr[2] = {input(&t, "gw", shp(2, 3, 4)), input(&t, "gb", shp(1, 5))};
    Value *vel[2];
    for (int i = 0; i < 2; i++) {
        vel[i] = state(&t, i ? "b.velocity" : "w.velocity", p[i]->shape);
        Value *m2 = state(&t, i ? "b.moment2" : "w.moment2", p[i]->shape);
        train_set_moments(t.g, p[i], vel[i], m2);
        node_n(&t, OP_OPTIM_UPDATE, p[i]->name, none, 4, (Value *[]){p[i], gr[i], vel[i], m2});
        graph_add_output(t.g, vel[i]->name, vel[i], line_span(2));
    }
    emit_build_train(&t);
    float **data = make_all(&t);
    Got got = run_train(&t, data, 2, 3, hp);
    for (int i = 0; i < 2; i++)
        for (int64_t j = 0; j < shape_numel(&p[i]->shape); j++) {
            float w = data[p[i]->id][j], v = 0, g = data[gr[i]->id][j];
            for (int s = 0; s < 3; s++) {
                float d = g + hp.wd * w;
                v = hp.momentum * v + d;
                w -= hp.lr * v;
            }
            expect_close(p[i]->name, j, got.val[p[i]->id][j], w, 1e-6);
            expect_close(vel[i]->name, j, got.out[i][j], v, 1e-6);
            ck_assert(got.out_reset[i][j] == 0.0f);
        }
    got_free(&got);
    free_data(&t, data);
    t_free(&t);
}
END_TEST

/* A whole training graph as the autodiff pass makes it, by hand: the eval
 * forward (PHASE_RUN); conv, batchnorm, relu, maxpool, flatten, linear and the
 * loss in training mode with their backward (PHASE_GRAD); SGD (PHASE_UPDATE).
 * Every gradient against finite differences of the loss, the update, the
 * running statistics and the descriptor's tables. */
START_TEST(small_net) {
    T t = t_train("small", 3, PHASE_RUN);
    Graph *g = t.g;
    Value *x = input(&t, "x", shp(4, 3, 2, 6, 6));
    Attrs ca = conv_attrs(3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true);
    Value *cw = param(&t, "conv.weight", shp(4, 3, 2, 3, 3)), *cb = param(&t, "conv.bias", shp(1, 3));
    Value *bw = param(&t, "bn.weight", shp(1, 3)), *bb = param(&t, "bn.bias", shp(1, 3));
    Value *rm = param(&t, "bn.running_mean", shp(1, 3)), *rv = param(&t, "bn.running_var", shp(1, 3));
    Value *fw = param(&t, "fc.weight", shp(2, 4, 27)), *fb = param(&t, "fc.bias", shp(1, 4));
    train_freeze(t.g, rm);
    train_freeze(t.g, rv);
    cw->init = INIT_HE;
    fw->init = INIT_XAVIER;
    bw->init = rv->init = INIT_ONE;
    Attrs ba = eps_attrs(1e-5);
    ba.bn.momentum = 0.1;
    Attrs pa = pool_attrs(2, 2, 0, false, false);
    Attrs la = {0};
    la.linear.out = 4;
    la.linear.bias = true;
    /* eval forward */
    Value *e = NODE(&t, OP_CONV, "conv", ca, x, cw, cb);
    e = NODE(&t, OP_BATCHNORM, "bn", ba, e, bw, bb, rm, rv);
    e = NODE(&t, OP_FLATTEN, "flat", none, NODE(&t, OP_MAXPOOL, "pool", pa, NODE(&t, OP_RELU, "relu", none, e)));
    graph_add_output(g, "logits", NODE(&t, OP_LINEAR, "fc", la, e, fw, fb), line_span(2));
    /* training forward, loss, backward */
    graph_set_phase(g, PHASE_GRAD);
    Value *c = NODE(&t, OP_CONV, "conv", ca, x, cw, cb);
    Node *bn = node_n(&t, OP_BATCHNORM_TRAIN, "bn", ba, 5, (Value *[]){c, bw, bb, rm, rv});
    Value *r = NODE(&t, OP_RELU, "relu", none, bn->out[0]);
    Value *mp = NODE(&t, OP_MAXPOOL, "pool", pa, r);
    Value *fl = NODE(&t, OP_FLATTEN, "flat", none, mp);
    Value *z = NODE(&t, OP_LINEAR, "fc", la, fl, fw, fb);
    Value *l = labels(&t);
    Training *tr = train_of(g);
    tr->loss = NODE(&t, OP_XENT_LOSS, "loss", xent, z, l);
    tr->logits = z;
    Value *dz = NODE(&t, OP_XENT_GRAD, "loss", xent, z, l);
    train_set_grad(t.g, fw, NODE(&t, OP_LINEAR_GRAD_WEIGHT, "fc", la, dz, fl));
    train_set_grad(t.g, fb, NODE(&t, OP_BIAS_GRAD, "fc", la, dz));
    Value *dfl = NODE(&t, OP_LINEAR_GRAD_INPUT, "fc", la, dz, fw);
    Value *dmp = NODE(&t, OP_RESHAPE_GRAD, "flat", none, dfl, mp);
    Value *dr = NODE(&t, OP_MAXPOOL_GRAD, "pool", pa, dmp, r);
    Value *dbn = NODE(&t, OP_RELU_GRAD, "relu", none, dr, r);
    Node *bg = node_n(&t, OP_BATCHNORM_GRAD, "bn", ba, 5, (Value *[]){dbn, c, bw, bn->out[1], bn->out[2]});
    train_set_grad(t.g, bw, bg->out[1]);
    train_set_grad(t.g, bb, bg->out[2]);
    train_set_grad(t.g, x, NODE(&t, OP_CONV_GRAD_INPUT, "conv", ca, bg->out[0], cw, x));
    train_set_grad(t.g, cw, NODE(&t, OP_CONV_GRAD_WEIGHT, "conv", ca, bg->out[0], x, cw));
    train_set_grad(t.g, cb, NODE(&t, OP_BIAS_GRAD, "conv", ca, bg->out[0]));
    /* SGD */
    graph_set_phase(g, PHASE_UPDATE);
    Value *trained[] = {cw, cb, bw, bb, fw, fb};
    for (int i = 0; i < 6; i++) {
        Value *v = state(&t, arena_printf(g->arena, "%s.velocity", trained[i]->name), trained[i]->shape);
        Value *v2 = state(&t, arena_printf(g->arena, "%s.moment2", trained[i]->name), trained[i]->shape);
        train_set_moments(g, trained[i], v, v2);
        node_n(&t, OP_OPTIM_UPDATE, trained[i]->name, none, 4,
               (Value *[]){trained[i], train_grad(g, trained[i]), v, v2});
    }
    graph_add_output(g, "conv.weight.velocity", train_moment(g, cw, 1), line_span(2));
    graph_set_phase(g, PHASE_RUN);

    emit_build_train(&t);
    float **data = make_all(&t);
    fill_labels(&t, data, 4);
    bool *bat = ref_batched(g);
    const Hyper hp = {0.1f, 0.9f, 0.01f};
    for (int nb = 2; nb <= 3; nb++) {
        Got got = run_train(&t, data, nb, 1, hp);
        double **ref = ref_eval(&t, data, nb, bat, -1, 0, 0);
        check_outputs(&t, &got, ref, nb, bat, true); /* the eval forward, with the parameters before the step */
        expect_close("loss", 0, *got.loss, ref[tr->loss->id][0], 1e-5);
        for (int64_t j = 0; j < nb * 4; j++) expect_close("train_logits", j, got.logits[j], ref[z->id][j], 1e-5);
        check_all_grads(&t, &got, data, nb, bat);
        /* one step from zero velocity: v = g + wd * p, p -= lr * v */
        for (int i = 0; i < 6; i++) {
            Value *p = trained[i];
            for (int64_t j = 0; j < shape_numel(&p->shape); j++) {
                float v = got.grad[p->id][j] + hp.wd * data[p->id][j];
                expect_close(p->name, j, got.val[p->id][j], data[p->id][j] - hp.lr * v, 1e-6);
                if (p == cw) expect_close("conv.weight.velocity", j, got.out[1][j], v, 1e-6);
            }
        }
        for (int64_t j = 0; j < shape_numel(&cw->shape); j++) ck_assert(got.out_reset[1][j] == 0.0f);
        const double *mean = ref[bn->out[1]->id], *var = ref[bn->out[2]->id] + 3;
        double cnt = nb * 36.0;
        for (int ch = 0; ch < 3; ch++) {
            expect_close("running_mean", ch, got.val[rm->id][ch], 0.9 * data[rm->id][ch] + 0.1 * mean[ch], 1e-6);
            expect_close("running_var", ch, got.val[rv->id][ch], 0.9 * data[rv->id][ch] + 0.1 * var[ch] * cnt / (cnt - 1),
                         1e-6);
        }
        ref_free(&t, ref);
        got_free(&got);
    }
    free(bat);
    free_data(&t, data);

    /* the descriptor */
    char path[128];
    snprintf(path, sizeof path, "%s/model.c", t.dir);
    char *text = slurp(path);
    snprintf(path, sizeof path, "%s/model.h", t.dir);
    char *h = slurp(path);
    ck_assert_ptr_nonnull(strstr(text, "    {NETRT_INIT_HE, 18, 27, 0, 0, 3}, /* conv.weight: kaiming_normal(fan_in, gain 1.41421) */\n"));
    ck_assert_ptr_nonnull(strstr(text, "    {NETRT_INIT_ZERO, 3, 3, 0, 0, 3}, /* conv.bias: zeros */\n"));
    ck_assert_ptr_nonnull(strstr(text, "    {NETRT_INIT_ONE, 3, 3, 0, 0, 3}, /* bn.running_var: ones */\n"));
    ck_assert_ptr_nonnull(strstr(text, "    {NETRT_INIT_XAVIER, 27, 4, 0, 0, 4}, /* fc.weight: xavier_uniform(gain 1) */\n"));
    ck_assert_ptr_nonnull(strstr(text, "small_grads[3].data = arena + "));
    ck_assert_ptr_null(strstr(text, "small_grads[4].data")); /* bn.running_mean: frozen */
    ck_assert_ptr_null(strstr(text, "small_grads[5].data"));
    ck_assert_ptr_nonnull(strstr(text, "static netrt_tensor small_labels = {\"labels\", 1, {3}, NULL};"));
    ck_assert_ptr_nonnull(strstr(text, "static netrt_tensor small_loss = {\"loss\", 1, {1}, NULL};"));
    ck_assert_ptr_nonnull(strstr(text, "static netrt_tensor small_train_logits = {\"logits\", 2, {3, 4}, NULL};"));
    ck_assert_ptr_nonnull(strstr(text, "    .ninputs = 1,\n"));
    ck_assert_ptr_nonnull(strstr(text, "    .hp = &hp,\n"));
    ck_assert_ptr_nonnull(strstr(text, "static void n0_conv_conv(const netc_real *restrict x,"));
    ck_assert_ptr_nonnull(strstr(text, "netc_real *restrict running_mean, netc_real *restrict running_var, netc_real *restrict y,"));
    ck_assert_ptr_nonnull(strstr(text, "(netc_real *restrict p, const netc_real *restrict grad, netc_real *restrict m, netc_real *restrict v)\n"));
    ck_assert_ptr_nonnull(strstr(h, "void small_infer(const float *x, float *logits, float *conv_weight_velocity);"));
    ck_assert_ptr_nonnull(strstr(h, "extern const netrt_train_model small_train;"));
    /* run, grad and update call their phases' nodes */
    char *run = strstr(text, "static void small_forward(struct small *self)"), *grad = strstr(text, "static void small_grad(void)");
    char *update = strstr(text, "static void small_update(void)"), *end = strstr(text, "small_set_batch(int nb)");
    ck_assert(run && grad && update && end && run < grad && grad < update && update < end);
    ck_assert(strstr(run, "_batchnorm_bn(") < grad && strstr(run, "_batchnorm_train_bn(") > grad);
    ck_assert(strstr(grad, "_xent_grad_loss(") < update && strstr(grad, "_optim_update_") > update);
    free(text);
    free(h);
    t_free(&t);
}
END_TEST

/* main() for the trainer and the gradient check; what needs a training graph. */
START_TEST(train_mains) {
    T t = t_train("tm", 2, PHASE_GRAD);
    Value *z = input(&t, "z", shp(2, 2, 3));
    Value *l = labels(&t);
    Attrs la = {0};
    la.linear.out = 3;
    Value *w = param(&t, "fc.weight", shp(2, 3, 3));
    Value *y = NODE(&t, OP_LINEAR, "fc", la, z, w);
    train_of(t.g)->loss = NODE(&t, OP_XENT_LOSS, "loss", xent, y, l);
    train_of(t.g)->logits = y;
    train_set_grad(t.g, w, NODE(&t, OP_LINEAR_GRAD_WEIGHT, "fc", la, NODE(&t, OP_XENT_GRAD, "loss", xent, y, l), z));
    graph_add_output(t.g, "y", y, line_span(2));
    static const struct {
        EmitMain kind;
        const char *line;
    } mains[] = {
        {EMIT_MAIN_TRAIN, "int main(int argc, char **argv) { return netrt_train_main(argc, argv, &tm_train); }"},
        {EMIT_MAIN_GRADCHECK, "int main(int argc, char **argv) { return netrt_gradcheck_main(argc, argv, &tm_train); }"},
        {EMIT_MAIN_INFER, "int main(int argc, char **argv) { return netrt_main(argc, argv, &tm_model); }"},
    };
    for (int i = 0; i < 3; i++) {
        EmitOptions o = {.main = mains[i].kind};
        ck_assert(emit(&t, &o));
        char path[128];
        snprintf(path, sizeof path, "%s/model.c", t.dir);
        char *text = slurp(path);
        ck_assert_ptr_nonnull(strstr(text, mains[i].line));
        free(text);
        const char *warn = "-std=c11 -Wall -Wextra -Werror -I" NETC_RUNTIME_INCLUDE;
        ck_assert_int_eq(sh("gcc %s -O2 -c '%s/model.c' -o '%s/m.o'", warn, t.dir, t.dir), 0);
        ck_assert_int_eq(sh("clang %s -O2 -c '%s/model.c' -o '%s/m.o'", warn, t.dir, t.dir), 0);
    }
    t_free(&t);

    /* an inference graph has no training main, nor an optimizer step */
    T u = t_new("inf", 2);
    Value *x = input(&u, "x", shp(2, 2, 3));
    graph_add_output(u.g, "y", NODE(&u, OP_RELU, "relu", none, x), line_span(2));
    EmitOptions o = {.main = EMIT_MAIN_TRAIN};
    capture_begin();
    bool ok = emit(&u, &o);
    const char *msg = capture_end();
    ck_assert(!ok);
    ck_assert_ptr_nonnull(strstr(msg, "a training program needs a training graph"));
    Value *p = param(&u, "p", shp(1, 3));
    node_n(&u, OP_OPTIM_UPDATE, "p", none, 4, (Value *[]){p, p, p, p});
    capture_begin();
    ok = emit(&u, NULL);
    msg = capture_end();
    ck_assert(!ok);
    ck_assert_ptr_nonnull(strstr(msg, "the optimizer step needs a training graph"));
    t_free(&u);
}
END_TEST

int main(void) {
    Suite *s = suite_create("emit");
    TCase *tc = tcase_create("emit");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, conv_variants, 0, (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_loop_test(tc, pool_variants, 0, (int)(sizeof pool_cases / sizeof pool_cases[0]));
    tcase_add_test(tc, other_ops);
    tcase_add_test(tc, bn_fold);
    tcase_add_test(tc, outputs_and_inputs);
    tcase_add_test(tc, embed_exact);
    tcase_add_test(tc, load_and_infer);
    tcase_add_loop_test(tc, embed_error, 0, (int)(sizeof embed_errors / sizeof embed_errors[0]));
    tcase_add_test(tc, identifiers);
    tcase_add_test(tc, lenet5_text);
    tcase_add_test(tc, check_numerics);
    tcase_add_test(tc, train_forward_active_batch);
    tcase_add_loop_test(tc, batchnorm_train, 0, (int)(sizeof bn_cases / sizeof bn_cases[0]));
    tcase_add_loop_test(tc, conv_grads, 0, (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_loop_test(tc, pool_grads, 0, (int)(sizeof pool_cases / sizeof pool_cases[0]));
    tcase_add_loop_test(tc, other_grads, 0, G_COUNT);
    tcase_add_loop_test(tc, sgd_update, 0, (int)(sizeof sgd_cases / sizeof sgd_cases[0]));
    tcase_add_test(tc, small_net);
    tcase_add_test(tc, train_mains);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
