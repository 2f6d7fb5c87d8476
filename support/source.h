/* Source text and diagnostics.
 *
 * Locations are byte offsets into one source file (a Span); they become
 * line and column only when a message is printed.  Messages follow clang:
 *
 *     file:line:col: error: message
 *         x = conv(image, 6, 5, pad = 2);
 *             ^~~~
 *
 * The diagnostic state is global to one compilation: netc compiles one
 * .net file per run.
 */
#ifndef NETC_SOURCE_H
#define NETC_SOURCE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Source {
    const char *path; /* as given on the command line; owned by the caller */
    const char *text; /* NUL-terminated contents; owned by the Source */
    size_t len;
} Source;

typedef struct Span {
    uint32_t begin, end; /* byte offsets, end exclusive */
} Span;

static inline Span span_join(Span a, Span b) {
    Span s = {a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end};
    return s;
}

/* Reads a whole file; returns NULL and prints "netc: cannot read ..." on failure.
 * The caller owns the result and frees it with source_free. */
Source *source_read(const char *path);
/* Wraps a string (copied) as a source named `path`. */
Source *source_from_string(const char *path, const char *text);
void source_free(Source *s);

/* 1-based line and column of a byte offset. */
void source_line_col(const Source *s, uint32_t off, int *line, int *col);

/* Diagnostics. diag_set_source must be called before the others. */
void diag_set_source(const Source *s);
const Source *diag_source(void);
void diag_error(Span sp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_warning(Span sp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_note(Span sp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error or a note about the file as a whole, without a line: "file: error: ..." */
void diag_file_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void diag_file_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void diag_verror(Span sp, const char *fmt, va_list ap);
/* An error with no location: "netc: error: ..." */
void diag_plain_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A bug in netc, not in the user's input: "netc: internal error: ... (at
 * compiler/verify.c:42)", naming the compiler's own file and line.  The
 * driver exits with status 2 when any was reported.  Use DIAG_INTERNAL. */
void diag_internal_error(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define DIAG_INTERNAL(...) diag_internal_error(__FILE__, __LINE__, __VA_ARGS__)
int diag_error_count(void);
int diag_internal_count(void);
int diag_warning_count(void);
void diag_reset(void);

#endif
