/* netc import model.onnx -o model.net [--weights w.safetensors]: the driver's
 * side of import/onnx_import.c.  The .net text it makes is compiled here,
 * in memory, before anything is written: so a written .net file always
 * builds, and its parameters are exactly those of the weights file.  Both
 * files are written to temporary names and renamed into place, the weights
 * first: an error leaves neither. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../dsl/ast.h"
#include "../dsl/eval.h"
#include "../import/onnx_import.h"

int cmd_import(const char *in, const char *out, const char *weights);

/* Reads a whole file; caller frees. */
static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_plain_error("cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > ((size_t)1 << 34)) {
                diag_plain_error("cannot read '%s': the file is too large", path);
                free(b);
                fclose(f);
                return NULL;
            }
            cap *= 2;
            b = realloc(b, cap);
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        diag_plain_error("cannot read '%s': %s", path, strerror(EIO));
        free(b);
        return NULL;
    }
    *size = n;
    return b;
}

/* The net's name: the model file's name without directory and extension. */
static char *stem(const char *path) {
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    char *t = strdup(s);
    char *dot = strchr(t, '.');
    if (dot && dot != t) *dot = 0;
    return t;
}

/* The parameters of the compiled net are the importer's, name for name and
 * shape for shape. */
static bool same_params(Graph *g, const OnnxNet *net) {
    Value **ps;
    int n = graph_params(g, &ps);
    bool ok = n == net->nparams;
    for (int i = 0; ok && i < n; i++) {
        const netrt_tensor *t = NULL;
        for (int j = 0; j < net->nparams && !t; j++)
            if (strcmp(net->params[j].name, ps[i]->name) == 0) t = &net->params[j];
        ok = t && t->rank == ps[i]->shape.rank &&
             memcmp(t->shape, ps[i]->shape.d, sizeof *t->shape * (size_t)t->rank) == 0;
    }
    return ok;
}

int cmd_import(const char *in, const char *out, const char *weights) {
    size_t size = 0;
    uint8_t *data = read_all(in, &size);
    if (!data) return 1;
    char *wpath = NULL;
    if (!weights) { /* model.net -> model.safetensors */
        const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
        size_t base = dot && (!slash || dot > slash) ? (size_t)(dot - out) : strlen(out);
        wpath = malloc(base + 13);
        memcpy(wpath, out, base);
        strcpy(wpath + base, ".safetensors");
        weights = wpath;
    }
    const char *wbase = strrchr(weights, '/') ? strrchr(weights, '/') + 1 : weights;
    char *name = stem(in);
    OnnxNet *net = onnx_import(data, size, in, name, wbase);
    free(name);
    free(data);
    int rc = 1;
    if (net) {
        /* compile what was made, as netc build would */
        Source *src = source_from_string(out, net->text);
        diag_set_source(src);
        AstProgram *ast = parse_program(src);
        Graph *g = ast ? eval_program(ast, net->batch) : NULL;
        if (ast) ast_free(ast);
        if (!g)
            fprintf(stderr, "netc: error: %s: the net imported from it does not compile (above); please report this bug\n", in);
        else if (!same_params(g, net))
            fprintf(stderr, "netc: error: %s: the imported net's parameters differ from its weights; please report this bug\n", in);
        else
            rc = 0;
        if (g) graph_free(g);
        diag_set_source(NULL);
        source_free(src);
    }
    if (rc == 0) {
        /* the .net to a temporary file first (netrt_atomic_open: a directory
         * that cannot be written shows here), then the weights (netrt_st_write
         * goes through its own temporary file), then the .net renamed into
         * place; the weights are removed again if that fails */
        char err[512];
        char *ntmp = NULL;
        FILE *f = netrt_atomic_open(out, &ntmp, err, sizeof err);
        if (!f) {
            diag_plain_error("%s", err);
            rc = 1;
        } else {
            bool ok = fputs(net->text, f) >= 0 && fflush(f) == 0;
            if (!ok) snprintf(err, sizeof err, "cannot write '%s': %s", out, strerror(errno));
            else if (netrt_st_write(weights, net->params, net->nparams, err, sizeof err) != 0) ok = false;
            bool weights_written = ok;
            char cerr[512];
            if (netrt_atomic_close(f, ntmp, out, ok, cerr, sizeof cerr) != 0) {
                if (ok) snprintf(err, sizeof err, "%s", cerr);
                if (weights_written) unlink(weights);
                ok = false;
            }
            if (!ok) diag_plain_error("%s", err);
            rc = ok ? 0 : 1;
        }
    }
    onnx_net_free(net);
    free(wpath);
    return rc;
}
