/* The writers of kernel.h. */
#include "kernel.h"

#include <limits.h>
#include <stdarg.h>
#include <string.h>

void kout(Kernel *k, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(k->f, fmt, ap);
    va_end(ap);
}

/* The signature and the opening brace; with `items`, the two arguments of
 * a kernel's range of work items last. */
static void open_function(Kernel *k, const char *const *in, const char *const *outs, unsigned written, bool items) {
    kout(k, "static void %s(", k->fname);
    const char *sep = "";
    for (int i = 0; i < k->n->nin; i++) {
        if (k->inplace >> i & 1) continue;
        kout(k, "%s%snetc_real *restrict %s", sep, written >> i & 1 ? "" : "const ", in[i]);
        sep = ", ";
    }
    for (int i = 0; i < k->n->nout; i++) {
        kout(k, "%snetc_real *restrict %s", sep, outs[i]);
        sep = ", ";
    }
    kout(k, "%s)\n{\n", items ? ", int64_t t0, int64_t t1" : "");
    for (int i = 0; i < k->n->nin; i++)
        if (k->inplace >> i & 1)
            kout(k, "    /* in place: %s is written over %s, which no later node reads */\n", outs[0], in[i]);
}

void kopen_rw(Kernel *k, const char *const *in, const char *const *outs, unsigned written) {
    open_function(k, in, outs, written, false);
}

void kopen(Kernel *k, const char *const *in, const char *const *outs) { kopen_rw(k, in, outs, 0); }

void kopen_parallel(Kernel *k, const char *const *in, const char *const *outs, unsigned written, int64_t n,
                    int64_t per_sample) {
    open_function(k, in, outs, written, true);
    if (n == 0)
        snprintf(k->items, sizeof k->items, "%lld", (long long)per_sample);
    else if (k->dyn)
        snprintf(k->items, sizeof k->items, "(int64_t)nb_active * %lld", (long long)per_sample);
    else
        snprintf(k->items, sizeof k->items, "%lld", (long long)(n * per_sample));
}

void kclose(Kernel *k) { kout(k, "}\n"); }

void kreal_prelude(FILE *f, bool f64) {
    if (!f64) {
        fputs("/* The element type of every buffer and kernel. */\ntypedef float netc_real;\n\n", f);
        return;
    }
    fputs("/* The element type of every buffer and kernel: double, for netc gradcheck\n"
          " * (the tables' data point at doubles: netrt_model.real_bytes).  The float\n"
          " * functions of netrt_math.h the kernels call, at double precision: */\n"
          "typedef double netc_real;\n"
          "#define netrt_expf exp\n"
          "#define netrt_expm1f expm1\n"
          "#define netrt_tanhf tanh\n"
          "#define netrt_erff erf\n"
          "#define netrt_log1pf log1p\n"
          "#define netrt_sigmoidf(x) (1 / (1 + exp(-(x))))\n"
          "#define netrt_selectf(cond, a, b) ((cond) ? (a) : (b))\n"
          "#define netrt_check_finite netrt_check_finite_f64\n\n",
          f);
}

const char *kmath(const Kernel *k, const char *fn) {
    static const char *const names[][2] = {{"exp", "expf"}, {"sqrt", "sqrtf"}, {"log", "logf"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(fn, names[i][0]) == 0) return names[i][k->f64 ? 0 : 1];
    return fn;
}

void kphase_open(Kernel *k, const char *phase, const char *const *in, const char *const *outs, unsigned written) {
    kout(k, "static void %s_%s(void *ctx, int64_t t0, int64_t t1)\n{\n"
            "    void *const *args = ctx; /* the kernel's buffers */\n",
         k->fname, phase);
    int j = 0; /* the buffer's place in args: kphase_args leaves out inputs written over (Kernel.inplace) */
    for (int i = 0; i < k->n->nin; i++) {
        if (k->inplace >> i & 1) continue;
        if (in[i]) kout(k, "    %snetc_real *restrict %s = args[%d];\n", written >> i & 1 ? "" : "const ", in[i], j);
        j++;
    }
    for (int i = 0; i < k->n->nout; i++, j++)
        if (outs[i]) kout(k, "    netc_real *restrict %s = args[%d];\n", outs[i], j);
}

void kphase_args(Kernel *k, const char *const *in, const char *const *outs) {
    kout(k, "    void *const args[] = {");
    const char *sep = "";
    for (int i = 0; i < k->n->nin; i++) {
        if (k->inplace >> i & 1) continue;
        kout(k, "%s(void *)%s", sep, in[i]);
        sep = ", ";
    }
    for (int i = 0; i < k->n->nout; i++) {
        kout(k, "%s%s", sep, outs[i]);
        sep = ", ";
    }
    kout(k, "};\n");
}

void kphase_run(Kernel *k, const char *phase, const char *items) {
    kout(k, "    netrt_parallel(%s_%s, (void *)args, %s);\n", k->fname, phase, items);
}

const char *kopen_elementwise(Kernel *k, const char *const *in, const char *const *outs, unsigned written,
                              const Value *v) {
    int64_t numel = value_numel(v);
    if (k->dyn && kbatched(k, v) && v->shape.rank > 0 && v->shape.d[0] > 0 && numel >= 2 * KCHUNK) {
        /* over the active batch: items of at most KCHUNK floats, P per sample */
        int64_t sample = numel / v->shape.d[0], per = (sample + KCHUNK - 1) / KCHUNK;
        kopen_parallel(k, in, outs, written, v->shape.d[0], per);
        kcount(k, "SAMPLE", sample);
        kout(k, "    enum { CHUNK = %d, P = %lld }; /* floats per work item; items per sample */\n"
                "    const size_t i0 = (size_t)(t0 / P) * SAMPLE + (size_t)(t0 %% P) * CHUNK;\n"
                "    const size_t e1 = (size_t)((t1 - 1) / P) * SAMPLE + (size_t)((t1 - 1) %% P) * CHUNK + CHUNK;\n"
                "    const size_t i1 = e1 < (size_t)((t1 - 1) / P + 1) * SAMPLE ? e1 : (size_t)((t1 - 1) / P + 1) * SAMPLE;\n",
             KCHUNK, (long long)per);
        return "for (size_t i = i0; i < i1; i++)";
    }
    if (k->dyn || numel < 2 * KCHUNK) {
        kopen_rw(k, in, outs, written);
        knumel(k, v);
        return "for (size_t i = 0; i < NUMEL; i++)";
    }
    kopen_parallel(k, in, outs, written, 0, (numel + KCHUNK - 1) / KCHUNK);
    kcount(k, "NUMEL", numel);
    kout(k, "    enum { CHUNK = %d }; /* floats per work item */\n"
            "    const size_t i0 = (size_t)t0 * CHUNK, i1 = (size_t)t1 * CHUNK < NUMEL ? (size_t)t1 * CHUNK : NUMEL;\n",
         KCHUNK);
    return "for (size_t i = i0; i < i1; i++)";
}

void kactive_batch(Kernel *k) { kout(k, "    const int N = nb_active; /* the active batch, at most NMAX */\n"); }

void kenum(Kernel *k, const KConst *c, size_t n) {
    bool active = false;
    kout(k, "    enum { ");
    for (size_t i = 0, first = 1; i < n; i++) {
        if (k->dyn && strcmp(c[i].name, "N") == 0) {
            active = true;
            continue;
        }
        kout(k, "%s%s = %lld", first ? "" : ", ", c[i].name, (long long)c[i].v);
        first = 0;
    }
    kout(k, " };\n");
    if (active) kactive_batch(k);
}

void kcount(Kernel *k, const char *name, int64_t v) {
    if (v <= INT_MAX)
        kout(k, "    enum { %s = %lld };\n", name, (long long)v);
    else
        kout(k, "    const size_t %s = %lluu;\n", name, (unsigned long long)v);
}

bool kbatched(const Kernel *k, const Value *v) { return k->batched && k->batched[v->id]; }

void knumel(Kernel *k, const Value *v) {
    const Shape *s = &v->shape;
    if (!kbatched(k, v) || s->rank == 0 || s->d[0] == 0) {
        kcount(k, "NUMEL", value_numel(v)); /* a blocked value's padded blocks too */
        return;
    }
    kcount(k, "SAMPLE", value_numel(v) / s->d[0]); /* a blocked value's padded blocks too */
    kactive_batch(k);
    kout(k, "    const size_t NUMEL = (size_t)N * SAMPLE;\n");
}

const char *double_literal(char *buf, size_t n, double v) {
    snprintf(buf, n - 2, "%.17g", v);
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    return buf;
}

const char *float_literal(char *buf, size_t n, double v) {
    snprintf(buf, n - 3, "%.9g", v);
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    strcat(buf, "f");
    return buf;
}

void kdouble(Kernel *k, const char *name, double v) {
    char buf[64];
    kout(k, "    const double %s = %s;\n", name, double_literal(buf, sizeof buf, v));
}

int64_t shape_spatial(const Shape *s) {
    int64_t p = 1;
    for (int i = 2; i < s->rank; i++) p *= s->d[i];
    return p;
}

/* ---- sliding windows ---------------------------------------------------------- */

static void indent(Kernel *k, int depth) { kout(k, "%*s", 4 * depth, ""); }

/* Each line of text (lines end in "\n") at `depth`; preprocessor lines
 * (#pragma) stay at the left margin. */
void klines(Kernel *k, int depth, const char *text) {
    while (*text) {
        const char *end = strchr(text, '\n');
        size_t len = end ? (size_t)(end - text) : strlen(text);
        if (*text != '#') indent(k, depth);
        kout(k, "%.*s\n", (int)len, text);
        text += len + (end != NULL);
    }
}

void kcol_range(Kernel *k, int depth, const char *tap) {
    indent(k, depth);
    kout(k, "const int off = %s - PL;\n", tap);
    klines(k, depth,
          "const int lo = off < 0 ? (SW - 1 - off) / SW : 0;\n"
          "const int end = (W - off + SW - 1) / SW;\n"
          "const int hi = end < OW ? end : OW;\n");
}

void kwindow_row(Kernel *k, int depth) {
    klines(k, depth,
          "const int ih = oh * SH - PT + kh * DH;\n"
          "if (ih < 0 || ih >= H) continue;\n");
}

void kwindow_taps(Kernel *k, int depth, const char *row, const char *body) {
    klines(k, depth, "for (int kh = 0; kh < KH; kh++) {\n");
    kwindow_row(k, depth + 1);
    klines(k, depth + 1, row);
    klines(k, depth + 1, "for (int kw = 0; kw < KW; kw++) {\n");
    kcol_range(k, depth + 2, "kw * DW");
    klines(k, depth + 2, body);
    klines(k, depth, "    }\n"
                    "}\n");
}

void kconv_output_rows(Kernel *k) {
    klines(k, 1,
          "for (int n = 0; n < N; n++) {\n"
          "    for (int g = 0; g < G; g++) {\n"
          "        for (int k = g * KG; k < (g + 1) * KG; k++) {\n"
          "            for (int oh = 0; oh < OH; oh++) {\n");
}

void kclose_blocks(Kernel *k, int depth, int count) {
    for (int i = 0; i < count; i++) klines(k, depth - i, "}\n");
}

void kwindow_rows(Kernel *k, int depth) {
    klines(k, depth, "const int hs = oh * SH - PT, h0 = hs > 0 ? hs : 0, h1 = hs + KH < H ? hs + KH : H;\n");
}

void kwindow_cols(Kernel *k, int depth) {
    klines(k, depth, "const int ws = ow * SW - PL, w0 = ws > 0 ? ws : 0, w1 = ws + KW < W ? ws + KW : W;\n");
}
