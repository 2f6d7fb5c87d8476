/* Source files and clang-style diagnostics. */
#include "source.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "netc: internal error: out of memory\n");
        exit(2);
    }
    return p;
}

/* The Source and a copy of its path in one allocation; the text apart. */
static Source *source_new(const char *path, char *text, size_t len) {
    size_t plen = strlen(path);
    Source *s = xmalloc(sizeof *s + plen + 1);
    char *p = (char *)(s + 1);
    memcpy(p, path, plen + 1);
    s->path = p;
    s->text = text;
    s->len = len;
    return s;
}

Source *source_read(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_plain_error("cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *text = xmalloc(cap);
    for (;;) {
        if (cap - len < 2) {
            cap *= 2;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                diag_plain_error("cannot read '%s': %s", path, strerror(ENOMEM));
                return NULL;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        int e = errno ? errno : EIO;
        free(text);
        fclose(f);
        diag_plain_error("cannot read '%s': %s", path, strerror(e));
        return NULL;
    }
    fclose(f);
    if (len > UINT32_MAX - 1) {
        free(text);
        diag_plain_error("cannot read '%s': the file is too large", path);
        return NULL;
    }
    text[len] = 0;
    return source_new(path, text, len);
}

Source *source_from_string(const char *path, const char *text) {
    size_t len = strlen(text);
    char *t = xmalloc(len + 1);
    memcpy(t, text, len + 1);
    return source_new(path, t, len);
}

void source_free(Source *s) {
    if (!s) return;
    free((char *)s->text);
    free(s);
}

void source_line_col(const Source *s, uint32_t off, int *line, int *col) {
    if (off > s->len) off = (uint32_t)s->len;
    int l = 1;
    uint32_t start = 0;
    for (uint32_t i = 0; i < off; i++) {
        if (s->text[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = (int)(off - start) + 1;
}

/* ---- diagnostics ---------------------------------------------------------- */

static const Source *cur_src;
static int n_errors, n_internal, n_warnings;

void diag_set_source(const Source *s) { cur_src = s; }
const Source *diag_source(void) { return cur_src; }
int diag_error_count(void) { return n_errors; }
int diag_internal_count(void) { return n_internal; }
int diag_warning_count(void) { return n_warnings; }
void diag_reset(void) { n_errors = n_internal = n_warnings = 0; }

static bool utf8_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

static void report(const char *kind, Span sp, const char *fmt, va_list ap) {
    const Source *s = cur_src;
    if (!s) {
        fprintf(stderr, "netc: %s: ", kind);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        return;
    }
    uint32_t len = (uint32_t)s->len;
    uint32_t b = sp.begin < len ? sp.begin : len;
    uint32_t e = sp.end < b ? b : sp.end > len ? len : sp.end;
    int line, col;
    source_line_col(s, b, &line, &col);
    fprintf(stderr, "%s:%d:%d: %s: ", s->path, line, col, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);

    /* The line as is, then the caret line: tabs kept, one column per character. */
    const char *t = s->text;
    uint32_t ls = b;
    while (ls > 0 && t[ls - 1] != '\n') ls--;
    uint32_t le = b;
    while (le < len && t[le] != '\n') le++;
    uint32_t shown = le;
    if (shown > ls && t[shown - 1] == '\r') shown--;
    fwrite(t + ls, 1, shown - ls, stderr);
    fputc('\n', stderr);
    for (uint32_t i = ls; i < b; i++) {
        if (t[i] == '\t') fputc('\t', stderr);
        else if (!utf8_cont(t[i])) fputc(' ', stderr);
    }
    fputc('^', stderr);
    if (e > shown) e = shown;
    for (uint32_t i = b + 1; i < e; i++)
        if (!utf8_cont(t[i])) fputc('~', stderr);
    fputc('\n', stderr);
}

void diag_verror(Span sp, const char *fmt, va_list ap) {
    n_errors++;
    report("error", sp, fmt, ap);
}

void diag_error(Span sp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror(sp, fmt, ap);
    va_end(ap);
}

void diag_warning(Span sp, const char *fmt, ...) {
    va_list ap;
    n_warnings++;
    va_start(ap, fmt);
    report("warning", sp, fmt, ap);
    va_end(ap);
}

void diag_note(Span sp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report("note", sp, fmt, ap);
    va_end(ap);
}

void diag_file_error(const char *fmt, ...) {
    n_errors++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", cur_src ? cur_src->path : "netc");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void diag_file_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: note: ", cur_src ? cur_src->path : "netc");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void diag_plain_error(const char *fmt, ...) {
    n_errors++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netc: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* __FILE__ from the project root on: "compiler/verify.c", not the build's absolute path. */
static const char *project_path(const char *file) {
    static const char *const dirs[] = {"/compiler/", "/dsl/", "/runtime/"};
    const char *best = NULL;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        const char *p = strstr(file, dirs[i]);
        while (p) {
            best = !best || p > best ? p : best;
            p = strstr(p + 1, dirs[i]);
        }
    }
    return best ? best + 1 : file;
}

void diag_internal_error(const char *file, int line, const char *fmt, ...) {
    n_errors++;
    n_internal++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netc: internal error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (at %s:%d; please report this bug)\n", project_path(file), line);
    va_end(ap);
}
