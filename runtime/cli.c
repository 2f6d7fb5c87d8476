/* Command-line parsing shared by the runtime's command lines: netrt_opt_next,
 * which reads one option ("--name", "--name=value", "--name value") against
 * a table, the readers of integer and number values (netrt_opt_int,
 * netrt_opt_double, and --threads: netrt_opt_threads), and netrt_prog_name, the program's name for messages.
 *
 * The trainer (train.c) and the gradient check (gradcheck.c) read their
 * whole command lines with these, netrt_main (model.c) the values of its
 * --repeat and --warmup; what each option means stays with its program.  The
 * file uses nothing of the runtime but netrt_errorf (alloc.c), so none of
 * those programs needs another's file for its command line.
 *
 * The declarations are in netrt.h, in its section of helpers shared by the
 * runtime's own files, like netrt_errorf and netrt_read_file: every internal
 * helper of the runtime is declared there, and a separate header for these
 * four functions would be the only one of its kind.  (Emitted programs see
 * them through netrt.h but do not call them.) */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

int netrt_opt_next(int argc, char **argv, int *i, const netrt_opt *opts, int nopts, int *which,
                   const char **val, char *err, size_t errlen) {
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    if (!strcmp(arg, "-h")) arg = "--help", eq = NULL;
    if (strncmp(arg, "--", 2) != 0)
        return netrt_errorf(err, errlen, "unexpected argument '%s' (see --help)", arg);
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    *which = -1;
    for (int k = 0; k < nopts; k++)
        if (strlen(opts[k].name) == len && strncmp(opts[k].name, arg, len) == 0) *which = k;
    if (*which < 0) return netrt_errorf(err, errlen, "unknown option '%s' (see --help)", arg);
    const netrt_opt *o = &opts[*which];
    *val = eq ? eq + 1 : NULL;
    if (o->takes_value && !*val) {
        if (*i + 1 >= argc) return netrt_errorf(err, errlen, "option %s needs a value", o->name);
        *val = argv[++*i];
    }
    if (!o->takes_value && *val)
        return netrt_errorf(err, errlen, "option %s takes no value", o->name);
    return 0;
}

int netrt_opt_int(const char *flag, const char *val, int64_t min, int64_t *out, char *err,
                  size_t errlen) {
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (end == val || *end || errno || v < min) {
        if (min == 1)
            return netrt_errorf(err, errlen, "%s needs a positive integer, not '%s'", flag, val);
        return netrt_errorf(err, errlen, "%s needs an integer >= %lld, not '%s'", flag,
                            (long long)min, val);
    }
    *out = v;
    return 0;
}

int netrt_opt_double(const char *flag, const char *val, double min, double *out, char *err,
                     size_t errlen) {
    char *end;
    double v = strtod(val, &end);
    if (end == val || *end || !isfinite(v) || v < min)
        return netrt_errorf(err, errlen, "%s needs a number >= %g, not '%s'", flag, min, val);
    *out = v;
    return 0;
}

const char *netrt_prog_name(int argc, char **argv, const char *fallback) {
    if (argc < 1 || !argv[0] || !argv[0][0]) return fallback ? fallback : "netrt";
    const char *slash = strrchr(argv[0], '/');
    return slash && slash[1] ? slash + 1 : argv[0];
}

int netrt_opt_threads(const char *flag, const char *val, char *err, size_t errlen) {
    int64_t n = 0;
    if (netrt_opt_int(flag, val, 1, &n, err, errlen) < 0) return -1;
    if (n > NETRT_MAX_THREADS)
        return netrt_errorf(err, errlen, "%s: at most %d, not %s", flag, NETRT_MAX_THREADS, val);
    netrt_set_threads((int)n);
    return 0;
}
