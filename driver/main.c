/* netc: the driver.  Each command is the pipeline read top to bottom:
 *
 *   source_read -> parse_program -> eval_program -> run_pipeline -> emit_c -> cc
 *
 * Exit status: 0 on success (warnings allowed), 1 for an error in the user's
 * input, 2 for an internal error: a bug in netc, reported through
 * DIAG_INTERNAL (support/source.h) with the compiler's own file and line, e.g. a
 * failed IR verification (compiler/verify.c).  exit_status() maps the
 * diagnostics counts to it, whatever the command's own result. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../dsl/ast.h"
#include "../dsl/eval.h"
#include "../compiler/emit.h"
#include "../compiler/init.h"
#include "../compiler/passes.h"
#include "../compiler/stats.h"
#include "../compiler/target.h"
#include "../compiler/train.h"

#ifndef NETC_VERSION
#define NETC_VERSION "0.1"
#endif

static const char usage[] =
    "usage: netc <command> model.net [options]     (netc <command> --help: that command's options)\n"
    "\n"
    "commands:\n"
    "  build   make an inference program        -o prog [--batch N] [-O0|-O2] [--embed w.safetensors] [--cc CC]\n"
    "          or, with --lib, a static library and its header: -o libNAME.a writes NAME.h beside it\n"
    "          or, with --train, a training program (docs/training.md); --freeze PATTERN[,PATTERN]\n"
    "          (repeatable) trains no parameter whose name matches (as the net's freeze statement)\n"
    "          and --mpi makes it train over MPI on many processes (docs/distributed.md)\n"
    "  gradcheck  check the emitted gradients against finite differences, in double precision\n"
    "          [--batch N] [--float] [-- program options]\n"
    "  emit    write the C and its header        -o model.c [--batch N] [--embed w.safetensors] [--main]\n"
    "  init    write initialized parameters      -o w.safetensors [--seed S]\n"
    "  dump    print the IR                      [--after PASS|eval] [--train] [--list-passes]\n"
    "  dot     the graph in Graphviz's DOT       [-o F.dot] [--svg F.svg] [--after PASS|eval] [--train]\n"
    "  params  list parameter names and shapes, as in a PyTorch state_dict; --init: and how each is initialized\n"
    "  stats   per-layer output shapes, parameters and multiply-accumulates, with totals,\n"
    "          and the activation memory with and without the memory plan\n"
    "  import  an ONNX model to a .net file and its weights: netc import model.onnx -o model.net\n"
    "          [--weights w.safetensors] (default: model.safetensors beside the .net; docs/interop.md)\n"
    "\n"
    "common options: --batch N (default 1), --passes P1,P2 (default fold_batchnorm,dce,lower_depthwise,layout,fuse_epilogue,fuse_bottleneck; with --train\n"
    "layout_train,autodiff,fuse_train,fuse_epilogue,dce), --no-verify, --no-plan (build, emit, gradcheck: a buffer per value, no memory plan),\n"
    "--target generic|avx2|avx512|native (build, emit, gradcheck, dump, stats: the CPU to compile for; default\n"
    "native, the best this CPU has; a program exits with a message on a CPU that lacks its target)\n"
    "build uses $CC or clang with the target's -march and $NETC_CFLAGS added, and the runtime that\n"
    "netc --print-runtime shows; the program runs as\n"
    "  prog --weights w.safetensors --input x.npy --output y.npy\n";

/* Each command's own help, for `netc CMD --help` and `netc help CMD`. */
typedef struct {
    const char *name, *text;
} CommandHelp;

static const CommandHelp command_help[] = {
    {"build",
     "usage: netc build model.net -o PROG [options]\n"
     "       netc build --lib model.net -o libNAME.a [--header FILE.h] [options]\n\n"
     "Compiles the net into a standalone program: inference by default, training with --train\n"
     "(docs/training.md).  The program's --help lists its own options.  With --lib, into a\n"
     "static library of the inference code and its header, a C API of independent instances\n"
     "(create, load weights from a file or memory, run, free; docs/library.md); link it with\n"
     "libnetrt (pkg-config --libs netrt, or CMake's netrt::netrt).\n\n"
     "  -o PROG              the program to write (required); with --lib, the library (.a)\n"
     "  --lib                a static library instead of a program (not with --train)\n"
     "  --header FILE.h      with --lib: where the header goes (default: beside the library,\n"
     "                       NAME.h for libNAME.a)\n"
     "  --batch N            the batch it is compiled for (default 1)\n"
     "  -O0 | -O2            the C compiler's optimization (default -O2)\n"
     "  --embed W            weights (safetensors) compiled in as constants\n"
     "  --train              a training program\n"
     "  --freeze P[,P]       with --train: parameters matching a pattern get no gradient and no update\n"
     "  --mpi                with --train: data-parallel training over MPI, run with mpirun or srun\n"
     "                       (docs/distributed.md); linked against Open MPI (pkg-config ompi-c)\n"
     "  --target T           generic, avx2, avx512 or native (default: the best this CPU has)\n"
     "  --cc CC              the C compiler (default $CC, else clang); $NETC_CFLAGS adds flags\n"
     "  --passes P1,P2       the pass pipeline (netc dump --list-passes)\n"
     "  --no-plan            a buffer per value (no memory plan)\n"
     "  --no-verify          skip the IR verifier after each pass\n"},
    {"emit",
     "usage: netc emit model.net -o model.c [options]\n\n"
     "Writes the C of the net and its header (model.h), to build yourself or link into a program\n"
     "(docs/installation.md shows how, with pkg-config or CMake).\n\n"
     "  -o FILE.c            the C file; the header goes beside it (required)\n"
     "  --main               with a main(): the same command line as netc build's program\n"
     "  --double             with --train: in double precision, generic target (what netc gradcheck\n"
     "                       compiles; --main: the gradient check's main)\n"
     "  --mpi                with --train: the data-parallel program's C (build it with mpicc, and\n"
     "                       link libnetrt_mpi before libnetrt)\n"
     "  --batch N, --embed W, --train, --freeze P, --target T, --passes P1,P2, --no-plan, --no-verify\n"
     "                       as for netc build\n"},
    {"gradcheck",
     "usage: netc gradcheck model.net [options] [-- program options]\n\n"
     "Builds the training program in double precision (generic target) and compares the\n"
     "gradients it computes with central finite differences of its loss, along random\n"
     "directions, for every parameter and the input; exit status 1 if any is beyond the\n"
     "threshold.\n\n"
     "  --float              check the float32 program of --target T instead (looser thresholds)\n"
     "  --batch N, --freeze P, --target T   as for netc build\n"
     "  after --: the check's own options: --seed S, --eps E, --threshold T, --directions K,\n"
     "  --batch-size N, --check-numerics\n"},
    {"init",
     "usage: netc init model.net -o w.safetensors [--seed S]\n\n"
     "Writes the net's parameters initialized as the net says (its init statements, else Xavier\n"
     "uniform, He normal before a ReLU, zero biases), from a random stream seeded with S (default 0).\n"},
    {"dump",
     "usage: netc dump model.net [options]\n\n"
     "Prints the graph IR: inputs, parameters and one line per node, after the whole pipeline.\n\n"
     "  --after PASS         after that pass instead (eval: as the evaluator built it)\n"
     "  --list-passes        the passes and what each does\n"
     "  --train              the training pipeline (forward, loss, backward, updates)\n"
     "  --batch N, --freeze P, --target T, --passes P1,P2   as for netc build\n"},
    {"dot",
     "usage: netc dot model.net [options]\n\n"
     "The graph in Graphviz's DOT language: a box per node with its attributes, parameters and\n"
     "line, shapes and layouts on the edges, fused ops as clusters.\n\n"
     "  -o FILE.dot          write it there (default: standard output)\n"
     "  --svg FILE.svg       also render it with Graphviz's dot\n"
     "  --after PASS         after that pass (eval: as the evaluator built it)\n"
     "  --train, --batch N, --freeze P, --target T, --passes P1,P2   as for netc dump\n"},
    {"params",
     "usage: netc params model.net [--init]\n\n"
     "Lists the parameters' names and shapes, as in a PyTorch state_dict, in order.\n\n"
     "  --init               and each one's initialization scheme\n"},
    {"import",
     "usage: netc import model.onnx -o model.net [--weights w.safetensors]\n\n"
     "Turns an ONNX model (as torch.onnx.export writes it) into a readable .net file, one statement\n"
     "per layer with the initializers' names, and its weights as safetensors (docs/interop.md).\n\n"
     "  -o FILE.net          the .net file to write (required)\n"
     "  --weights FILE       the weights (default: the .net's name with .safetensors)\n"},
    {"stats",
     "usage: netc stats model.net [--batch N] [--target T]\n\n"
     "Per layer: output shape, parameters and multiply-accumulates, with totals; then the\n"
     "activation memory of the program as emitted, with and without the memory plan.\n"},
};

/* The help of command cmd, or NULL. */
static const char *help_of(const char *cmd) {
    for (size_t i = 0; i < sizeof command_help / sizeof *command_help; i++)
        if (strcmp(command_help[i].name, cmd) == 0) return command_help[i].text;
    return NULL;
}

typedef struct Options {
    const char *cmd, *input, *output, *embed, *after, *passes, *cc, *opt;
    const char *svg; /* dot: the picture, rendered by Graphviz's dot */
    const char *weights; /* import: the weights file to write */
    const Target *target; /* --target, resolved ("native": the host's) */
    int batch;
    unsigned long long seed;
    bool verify, with_main, list_passes, train, no_plan, help;
    bool lib;            /* build --lib: a static library and its header */
    const char *header;  /* build --lib --header F */
    bool show_init; /* params --init (initialization, issue 12) */
    bool f64;       /* emit --train --double, and gradcheck unless --float: a double-precision build */
    bool f32_check; /* gradcheck --float */
    bool target_given;
    bool mpi;       /* build/emit --train --mpi: data-parallel training over MPI */
    char **rest; /* after "--": passed to the program gradcheck runs */
    int nrest;
    /* transfer learning: --freeze patterns as given (each may hold several, comma-separated) */
    const char *freeze[64];
    int nfreeze;
} Options;

static int bad_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "netc: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 1;
}

static bool parse_long(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Returns 0, or the exit status for a usage error. */
static int parse_options(int argc, char **argv, Options *o) {
    *o = (Options){.batch = 1, .passes = NULL, .opt = "-O2", .verify = true};
#ifndef NETC_VERIFY
    o->verify = false;
#endif
    if (argc < 2) return bad_usage("%s", "no command given");
    o->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                           \
    do {                                                                  \
        if (!next) return bad_usage("option %s needs a value", a);        \
        i++;                                                              \
    } while (0)
        long long v;
        if (strcmp(a, "-o") == 0) { VALUE(); o->output = next; }
        else if (strcmp(a, "--batch") == 0) {
            VALUE();
            if (!parse_long(next, 1, 1 << 20, &v)) return bad_usage("--batch needs a positive integer, got '%s'", next);
            o->batch = (int)v;
        } else if (strcmp(a, "--seed") == 0) {
            VALUE();
            if (!parse_long(next, 0, LLONG_MAX, &v)) return bad_usage("--seed needs a non-negative integer, got '%s'", next);
            o->seed = (unsigned long long)v;
        } else if (strcmp(a, "--embed") == 0) { VALUE(); o->embed = next; }
        else if (strcmp(a, "--after") == 0) { VALUE(); o->after = next; }
        else if (strcmp(a, "--svg") == 0) { VALUE(); o->svg = next; }
        else if (strcmp(a, "--weights") == 0) { VALUE(); o->weights = next; }
        else if (strcmp(a, "--passes") == 0) { VALUE(); o->passes = next; }
        else if (strcmp(a, "--cc") == 0) { VALUE(); o->cc = next; }
        else if (strcmp(a, "--header") == 0) { VALUE(); o->header = next; }
        else if (strcmp(a, "--lib") == 0) o->lib = true;
        else if (strcmp(a, "--freeze") == 0) {
            VALUE();
            if (o->nfreeze == (int)(sizeof o->freeze / sizeof *o->freeze)) return bad_usage("too many %s options", a);
            o->freeze[o->nfreeze++] = next;
        }
        else if (strcmp(a, "--target") == 0) {
            VALUE();
            o->target_given = true;
            if (!(o->target = target_find(next))) {
                fprintf(stderr, "netc: error: unknown target '%s' (the targets: generic, avx2, avx512, native)\n", next);
                return 1;
            }
        }
        else if (strcmp(a, "-O0") == 0 || strcmp(a, "-O1") == 0 || strcmp(a, "-O2") == 0 || strcmp(a, "-O3") == 0) o->opt = a;
        else if (strcmp(a, "--no-verify") == 0) o->verify = false;
        else if (strcmp(a, "--verify") == 0) o->verify = true;
        else if (strcmp(a, "--main") == 0) o->with_main = true;
        else if (strcmp(a, "--list-passes") == 0) o->list_passes = true;
        else if (strcmp(a, "--train") == 0) o->train = true;
        else if (strcmp(a, "--mpi") == 0) o->mpi = true;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) o->help = true;
        else if (strcmp(a, "--no-plan") == 0) o->no_plan = true;
        else if (strcmp(a, "--init") == 0) o->show_init = true;
        else if (strcmp(a, "--double") == 0) o->f64 = true;
        else if (strcmp(a, "--float") == 0) o->f32_check = true;
        else if (strcmp(a, "--") == 0) {
            o->rest = argv + i + 1;
            o->nrest = argc - i - 1;
            break;
        }
        else if (a[0] == '-' && a[1]) return bad_usage("unknown option '%s'", a);
        else if (o->input) return bad_usage("more than one model file given ('%s')", a);
        else o->input = a;
#undef VALUE
    }
    if (strcmp(o->cmd, "gradcheck") == 0) {
        o->train = true;
        o->f64 = !o->f32_check;
    } else if (o->f32_check) {
        return bad_usage("%s is for netc gradcheck", "--float");
    } else if (o->f64 && (strcmp(o->cmd, "emit") != 0 || !o->train)) {
        return bad_usage("%s is for training code (emit --train)", "--double");
    }
    /* a double build has the scalar kernels only (kernel.h) */
    if (o->f64 && o->target_given && o->target->kind != TARGET_GENERIC) {
        fprintf(stderr, "netc: error: a double-precision build is for the generic target, not %s%s\n", o->target->name,
                strcmp(o->cmd, "gradcheck") == 0 ? " (gradcheck --float checks the float32 program of a target)" : "");
        return 1;
    }
    if (o->f64) o->target = target_generic();
    if ((o->lib || o->header) && strcmp(o->cmd, "build") != 0)
        return bad_usage("%s is an option of netc build", o->lib ? "--lib" : "--header");
    if (o->header && !o->lib) return bad_usage("%s goes with --lib", "--header");
    if (o->lib && o->train) {
        fprintf(stderr, "netc: error: --lib builds inference libraries only: a training graph keeps its state in "
                        "file-scope variables, so it cannot have independent instances (leave out --train)\n");
        return 1;
    }
    if (o->mpi && (!o->train || o->f64 || (strcmp(o->cmd, "build") != 0 && strcmp(o->cmd, "emit") != 0)))
        return bad_usage("%s is for training programs (netc build --train --mpi, or emit --train --mpi)", "--mpi");
    if (o->nfreeze && !o->train) return bad_usage("%s is for training builds (build --train, dump --train, gradcheck)", "--freeze");
    if (!o->target) o->target = target_host();
    if (!o->passes) o->passes = o->train ? train_pipeline : default_pipeline;
    return 0;
}

/* --freeze: marks the parameters each pattern names (an error if one names
 * none), then, for a training build, asks autodiff not to train the marked
 * ones (those of the net's freeze statements too). */
static bool apply_freeze(const Options *o, Graph *g) {
    for (int i = 0; i < o->nfreeze; i++) {
        const char *s = o->freeze[i];
        while (true) {
            size_t n = strcspn(s, ",");
            char pat[512];
            if (n == 0 || n >= sizeof pat) {
                fprintf(stderr, "netc: error: --freeze: %s pattern in '%s'\n", n ? "a too long" : "an empty", o->freeze[i]);
                return false;
            }
            memcpy(pat, s, n);
            pat[n] = 0;
            if (freeze_mark(g, pat) == 0) {
                fprintf(stderr, "netc: error: --freeze: the pattern '%s' matches no parameter (netc params lists them)\n",
                        pat);
                return false;
            }
            if (!s[n]) break;
            s += n + 1;
        }
    }
    if (o->train) freeze_request(g);
    return true;
}

/* The front half every command shares: .net file -> verified graph.  The
 * returned graph borrows *src, which the caller frees after the graph. */
static Graph *compile_graph(const Options *o, Source **src, bool run_passes) {
    *src = source_read(o->input);
    if (!*src) return NULL;
    diag_set_source(*src);
    AstProgram *ast = parse_program(*src);
    if (!ast) return NULL;
    Graph *g = eval_program(ast, o->batch);
    ast_free(ast);
    if (!g) return NULL;
    g->target = o->target; /* before the passes, which may choose by it */
    if (!apply_freeze(o, g)) {
        graph_free(g);
        return NULL;
    }
    init_choose_schemes(g);
    /* the gradient check also checks the input's gradient: ask autodiff for it */
    if (strcmp(o->cmd, "gradcheck") == 0) train_request(g)->input_grads = true;
    if (run_passes && !run_pipeline(g, o->passes, o->verify, NULL, NULL)) {
        graph_free(g);
        return NULL;
    }
    return g;
}

/* Path with its extension replaced (or appended). Caller frees. */
static char *with_ext(const char *path, const char *ext) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t base = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
    char *s = malloc(base + strlen(ext) + 1);
    memcpy(s, path, base);
    strcpy(s + base, ext);
    return s;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Emits g as C into c_path and h_path (written whole or not at all). */
static bool write_c(Graph *g, const Options *o, const char *c_path, const char *h_path, EmitMain main_kind) {
    netrt_st_file st = {0};
    char err[512];
    if (o->embed && netrt_st_open(o->embed, &st, err, sizeof err) != 0) {
        diag_plain_error("%s", err);
        return false;
    }
    char *c_tmp = malloc(strlen(c_path) + 16), *h_tmp = malloc(strlen(h_path) + 16);
    sprintf(c_tmp, "%s.tmp%d", c_path, (int)getpid());
    sprintf(h_tmp, "%s.tmp%d", h_path, (int)getpid());
    FILE *c = fopen(c_tmp, "w"), *h = fopen(h_tmp, "w");
    bool ok = c && h;
    if (!ok) diag_plain_error("cannot write '%s': %s", c ? h_path : c_path, strerror(errno));
    if (ok) {
        EmitOptions eo = {.header_name = base_name(h_path), .embed = o->embed ? &st : NULL, .embed_path = o->embed,
                          .main = main_kind, .no_plan = o->no_plan, .f64 = o->f64, .mpi = o->mpi};
        ok = emit_c(g, &eo, c, h);
    }
    if (c && fclose(c) != 0) ok = false;
    if (h && fclose(h) != 0) ok = false;
    if (ok && (rename(c_tmp, c_path) != 0 || rename(h_tmp, h_path) != 0)) {
        diag_plain_error("cannot write '%s': %s", c_path, strerror(errno));
        ok = false;
    }
    if (!ok) {
        unlink(c_tmp);
        unlink(h_tmp);
    }
    free(c_tmp);
    free(h_tmp);
    if (o->embed) netrt_st_close(&st);
    return ok;
}

static int run_command(char *const argv[]) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "netc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Where the runtime is: $NETC_RUNTIME_INCLUDE and $NETC_RUNTIME_LIB if set;
 * else, for an installed netc, beside it (<prefix>/bin/netc with
 * <prefix>/include/netrt/netrt.h and <prefix>/lib/libnetrt.a, found from
 * /proc/self/exe, so that an installed tree can move); else the source and
 * build trees netc was built in. */
typedef struct {
    char include[PATH_MAX + 32], lib[PATH_MAX + 32], mpi_lib[PATH_MAX + 32];
} RuntimePaths;

static const RuntimePaths *runtime_paths(void) {
    static RuntimePaths p;
    static bool done;
    if (done) return &p;
    done = true;
    snprintf(p.include, sizeof p.include, "%s", NETC_RUNTIME_INCLUDE);
    snprintf(p.lib, sizeof p.lib, "%s", NETC_RUNTIME_LIB);
#ifdef NETC_RUNTIME_MPI_LIB
    snprintf(p.mpi_lib, sizeof p.mpi_lib, "%s", NETC_RUNTIME_MPI_LIB);
#endif
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0; /* <prefix>/bin */
            char inc[PATH_MAX + 32], lib[PATH_MAX + 32], hdr[PATH_MAX + 48];
            snprintf(inc, sizeof inc, "%s/../include/netrt", exe);
            snprintf(lib, sizeof lib, "%s/../lib/libnetrt.a", exe);
            snprintf(hdr, sizeof hdr, "%s/netrt.h", inc);
            if (access(hdr, R_OK) == 0 && access(lib, R_OK) == 0) {
                if (!realpath(inc, p.include)) snprintf(p.include, sizeof p.include, "%s", inc);
                if (!realpath(lib, p.lib)) snprintf(p.lib, sizeof p.lib, "%s", lib);
                char mpi[PATH_MAX + 32];
                snprintf(mpi, sizeof mpi, "%s/../lib/libnetrt_mpi.a", exe);
                if (access(mpi, R_OK) != 0 || !realpath(mpi, p.mpi_lib)) p.mpi_lib[0] = 0;
            }
        }
    }
    return &p;
}

static const char *runtime_include(void) {
    const char *d = getenv("NETC_RUNTIME_INCLUDE");
    return d ? d : runtime_paths()->include;
}

static const char *runtime_lib(void) {
    const char *l = getenv("NETC_RUNTIME_LIB");
    return l ? l : runtime_paths()->lib;
}

/* libnetrt_mpi.a (--mpi): $NETC_RUNTIME_MPI_LIB, else as runtime_lib; "" if
 * this netc was built without it. */
static const char *runtime_mpi_lib(void) {
    const char *l = getenv("NETC_RUNTIME_MPI_LIB");
    return l ? l : runtime_paths()->mpi_lib;
}

/* --mpi: MPI's compile and link flags, from pkg-config (package ompi-c,
 * Debian's Open MPI; $NETC_MPI_PKG names another, such as mpich), as one
 * malloc'd string; NULL after reporting why not. */
static char *mpi_flags(void) {
    const char *pkg = getenv("NETC_MPI_PKG") ? getenv("NETC_MPI_PKG") : "ompi-c";
    if (!runtime_mpi_lib()[0]) {
        diag_plain_error("--mpi: this netc was built without MPI (configure it with Open MPI installed: "
                         "apt-get install libopenmpi-dev)");
        return NULL;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "pkg-config --cflags --libs '%s' 2>/dev/null", pkg);
    FILE *p = popen(cmd, "r");
    char *flags = calloc(1, 4096);
    size_t n = p && flags ? fread(flags, 1, 4095, p) : 0;
    int status = p ? pclose(p) : -1;
    if (status != 0 || n == 0) {
        diag_plain_error("--mpi: pkg-config knows no MPI package '%s' (Debian: apt-get install libopenmpi-dev "
                         "openmpi-bin; or set $NETC_MPI_PKG)",
                         pkg);
        free(flags);
        return NULL;
    }
    flags[strcspn(flags, "\n")] = 0;
    return flags;
}

/* Moves a finished file into place (rename, or copy across file systems). */
static bool move_file(const char *from, const char *to) {
    if (rename(from, to) == 0) return true;
    FILE *in = fopen(from, "rb");
    char *tmp = malloc(strlen(to) + 16);
    sprintf(tmp, "%s.tmp%d", to, (int)getpid());
    FILE *out = in ? fopen(tmp, "wb") : NULL;
    bool ok = in && out;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = false;
    ok = ok && chmod(tmp, 0755) == 0 && rename(tmp, to) == 0;
    if (!ok) {
        unlink(tmp);
        diag_plain_error("cannot write '%s': %s", to, strerror(errno));
    }
    free(tmp);
    return ok;
}

/* Emits g with the given main(), compiles it, and moves the program to out. */
static int build_program(const Options *o, Graph *g, EmitMain kind, const char *out) {
    char dir[] = "/tmp/netc-build-XXXXXX";
    if (!mkdtemp(dir)) {
        diag_plain_error("cannot make a temporary directory: %s", strerror(errno));
        return 1;
    }
    const char *prefix = emit_prefix(g);
    char c_path[PATH_MAX], h_path[PATH_MAX], exe[PATH_MAX], inc[PATH_MAX];
    snprintf(c_path, sizeof c_path, "%s/%s.c", dir, prefix);
    snprintf(h_path, sizeof h_path, "%s/%s.h", dir, prefix);
    snprintf(exe, sizeof exe, "%s/prog", dir);
    snprintf(inc, sizeof inc, "-I%s", runtime_include());
    int status = 1;
    char *mpi = NULL;
    if (o->mpi && !(mpi = mpi_flags())) {
        rmdir(dir);
        return 1;
    }
    if (write_c(g, o, c_path, h_path, kind)) {
        const char *cc = o->cc ? o->cc : getenv("CC") ? getenv("CC") : "clang";
        /* $NETC_CFLAGS adds flags, split at spaces (a sanitizer build of
         * libnetrt needs the same -fsanitize= in the programs that link it). */
        char *extra = strdup(getenv("NETC_CFLAGS") ? getenv("NETC_CFLAGS") : "");
        char march[64]; /* the target's instructions; before $NETC_CFLAGS, which may override it */
        snprintf(march, sizeof march, "-march=%s", g->target->march);
        char *argv[96] = {(char *)cc, "-std=c11", (char *)o->opt, march, inc};
        int argc = 5;
        if (g->target->cflag) argv[argc++] = (char *)g->target->cflag;
        for (char *save = NULL, *f = strtok_r(extra, " ", &save); f && argc < 50; f = strtok_r(NULL, " ", &save))
            argv[argc++] = f;
        argv[argc++] = c_path;
        if (mpi) { /* libnetrt_mpi, then libnetrt, then MPI's own */
            argv[argc++] = (char *)runtime_mpi_lib();
            argv[argc++] = (char *)runtime_lib();
            for (char *save = NULL, *f = strtok_r(mpi, " ", &save); f && argc < 80; f = strtok_r(NULL, " ", &save))
                argv[argc++] = f;
        } else {
            argv[argc++] = (char *)runtime_lib();
        }
        const char *tail[] = {"-ljansson", "-lpng", "-ljpeg", "-lz", "-lpthread", "-lm", "-o", exe, NULL};
        for (int i = 0; tail[i]; i++) argv[argc++] = (char *)tail[i];
        argv[argc] = NULL;
        int rc = run_command(argv);
        free(extra);
        if (rc != 0)
            diag_plain_error("the C compiler '%s' failed on the emitted code (status %d); netc emit shows the C", cc, rc);
        else if (move_file(exe, out))
            status = 0;
    }
    free(mpi);
    unlink(c_path);
    unlink(h_path);
    unlink(exe);
    rmdir(dir);
    return status;
}

/* Where build --lib puts the header: --header, else beside the library,
 * named after it (libNAME.a: NAME.h; NAME.a or NAME: NAME.h).  Caller frees. */
static char *lib_header_path(const Options *o, const char *prefix) {
    if (o->header) return strdup(o->header);
    const char *base = base_name(o->output);
    size_t dir = (size_t)(base - o->output), n = strlen(base);
    if (n > 2 && strcmp(base + n - 2, ".a") == 0) n -= 2;
    if (n > 3 && strncmp(base, "lib", 3) == 0) base += 3, n -= 3;
    if (n == 0) base = prefix, n = strlen(prefix);
    char *h = malloc(dir + n + 3);
    memcpy(h, o->output, dir);
    memcpy(h + dir, base, n);
    strcpy(h + dir + n, ".h");
    return h;
}

/* build --lib: emits g's C with its header, compiles it into an object and
 * archives it (ar) into the library o->output, with the header beside it
 * (lib_header_path); both are written whole or not at all. */
static int build_library(const Options *o, Graph *g) {
    const char *prefix = emit_prefix(g);
    char *header = lib_header_path(o, prefix);
    if (strcmp(header, o->output) == 0) {
        diag_plain_error("the header and the library would both be '%s' (--header names another file)", header);
        free(header);
        return 1;
    }
    char dir[] = "/tmp/netc-lib-XXXXXX";
    if (!mkdtemp(dir)) {
        diag_plain_error("cannot make a temporary directory: %s", strerror(errno));
        free(header);
        return 1;
    }
    char c_path[PATH_MAX], h_path[PATH_MAX], obj[PATH_MAX], lib[PATH_MAX], inc[PATH_MAX], here[PATH_MAX + 2];
    snprintf(c_path, sizeof c_path, "%s/%s.c", dir, prefix);
    snprintf(h_path, sizeof h_path, "%s/%s", dir, base_name(header)); /* the name the C includes */
    snprintf(obj, sizeof obj, "%s/%s.o", dir, prefix);
    snprintf(lib, sizeof lib, "%s/lib.a", dir);
    snprintf(inc, sizeof inc, "-I%s", runtime_include());
    snprintf(here, sizeof here, "-I%s", dir);
    int status = 1;
    if (write_c(g, o, c_path, h_path, EMIT_MAIN_NONE)) {
        const char *cc = o->cc ? o->cc : getenv("CC") ? getenv("CC") : "clang";
        char *extra = strdup(getenv("NETC_CFLAGS") ? getenv("NETC_CFLAGS") : "");
        char march[64];
        snprintf(march, sizeof march, "-march=%s", g->target->march);
        char *argv[64] = {(char *)cc, "-std=c11", (char *)o->opt, march, "-fPIC", here, inc};
        int argc = 7;
        if (g->target->cflag) argv[argc++] = (char *)g->target->cflag;
        for (char *save = NULL, *f = strtok_r(extra, " ", &save); f && argc < 55; f = strtok_r(NULL, " ", &save))
            argv[argc++] = f;
        const char *tail[] = {"-c", c_path, "-o", obj, NULL};
        for (int i = 0; tail[i]; i++) argv[argc++] = (char *)tail[i];
        argv[argc] = NULL;
        int rc = run_command(argv);
        free(extra);
        const char *ar = getenv("AR") ? getenv("AR") : "ar";
        if (rc != 0) {
            diag_plain_error("the C compiler '%s' failed on the emitted code (status %d); netc emit shows the C", cc, rc);
        } else if ((rc = run_command((char *[]){(char *)ar, "rcs", lib, obj, NULL})) != 0) {
            diag_plain_error("the archiver '%s' failed (status %d)", ar, rc);
        } else if (move_file(lib, o->output)) {
            if (move_file(h_path, header) && chmod(header, 0644) == 0 && chmod(o->output, 0644) == 0)
                status = 0;
            else
                unlink(o->output); /* the library without its header: neither */
        }
    }
    unlink(c_path);
    unlink(h_path);
    unlink(obj);
    unlink(lib);
    rmdir(dir);
    free(header);
    return status;
}

static int cmd_build(const Options *o, Graph *g) {
    if (o->lib) return build_library(o, g);
    return build_program(o, g, o->train ? EMIT_MAIN_TRAIN : EMIT_MAIN_INFER, o->output);
}

/* Builds the gradient-check program in a temporary directory and runs it
 * with the options after "--"; its exit status is ours. */
static int cmd_gradcheck(const Options *o, Graph *g) {
    const char *flip = getenv("NETC_TEST_FLIP_RELU_GRAD");
    if (flip && strcmp(flip, "1") == 0)
        fprintf(stderr, "netc: warning: NETC_TEST_FLIP_RELU_GRAD=1: relu's gradient is deliberately wrong (a test)\n");
    char dir[] = "/tmp/netc-gradcheck-XXXXXX";
    if (!mkdtemp(dir)) {
        diag_plain_error("cannot make a temporary directory: %s", strerror(errno));
        return 1;
    }
    char prog[PATH_MAX];
    snprintf(prog, sizeof prog, "%s/gradcheck", dir);
    int status = build_program(o, g, EMIT_MAIN_GRADCHECK, prog);
    if (status == 0) {
        char **argv = calloc((size_t)o->nrest + 2, sizeof *argv);
        argv[0] = prog;
        for (int i = 0; i < o->nrest; i++) argv[i + 1] = o->rest[i];
        fflush(stdout);
        status = run_command(argv);
        if (status < 0) status = 2;
        free(argv);
    }
    unlink(prog);
    rmdir(dir);
    return status;
}

/* Writes len bytes to path whole or not at all (a temporary file, renamed). */
static bool write_whole(const char *path, const char *data, size_t len) {
    char *tmp, err[512];
    FILE *f = netrt_atomic_open(path, &tmp, err, sizeof err);
    if (!f) {
        diag_plain_error("%s", err);
        return false;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    int saved = errno;
    if (netrt_atomic_close(f, tmp, path, ok, err, sizeof err) == 0) return true;
    if (ok) diag_plain_error("%s", err);
    else diag_plain_error("cannot write '%s': %s", path, strerror(saved));
    return false;
}

/* netc dot: the graph after the pipeline, or after --after PASS ("eval": as
 * the evaluator built it), in DOT to -o FILE or standard output; --svg F
 * also renders it with Graphviz's dot (not a dependency of netc's own: the
 * message says how to install it). */
static int cmd_dot(const Options *o, Graph *g) {
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m) return 1;
    bool ok;
    if (o->after && strcmp(o->after, "eval") == 0) {
        ok = !o->verify || graph_verify(g, "building the graph");
        if (ok) graph_dot(g, m);
    } else if (o->after) {
        ok = run_pipeline_writing(g, o->passes, o->verify, o->after, graph_dot, m);
    } else {
        ok = run_pipeline(g, o->passes, o->verify, NULL, NULL);
        if (ok) graph_dot(g, m);
    }
    fclose(m);
    if (ok && o->output) ok = write_whole(o->output, text, len);
    else if (ok && !o->svg) fwrite(text, 1, len, stdout);
    if (ok && o->svg) {
        char dir[] = "/tmp/netc-dot-XXXXXX";
        if (!mkdtemp(dir)) {
            diag_plain_error("cannot make a temporary directory: %s", strerror(errno));
            free(text);
            return 1;
        }
        char in[PATH_MAX], out[PATH_MAX];
        snprintf(in, sizeof in, "%s/graph.dot", dir);
        snprintf(out, sizeof out, "%s/graph.svg", dir);
        ok = write_whole(in, text, len);
        if (ok) {
            char *argv[] = {"dot", "-Tsvg", in, "-o", out, NULL};
            int rc = run_command(argv);
            if (rc == 127)
                diag_plain_error("--svg needs Graphviz's dot, which is not installed (Debian: apt-get install graphviz)");
            else if (rc != 0)
                diag_plain_error("Graphviz's dot failed on the graph (status %d)", rc);
            ok = rc == 0 && move_file(out, o->svg);
        }
        unlink(in);
        unlink(out);
        rmdir(dir);
    }
    free(text);
    return ok ? 0 : 1;
}

static int cmd_emit(const Options *o, Graph *g) {
    char *h_path = with_ext(o->output, ".h");
    EmitMain kind = !o->with_main ? EMIT_MAIN_NONE
                    : o->f64      ? EMIT_MAIN_GRADCHECK
                    : o->train    ? EMIT_MAIN_TRAIN
                                  : EMIT_MAIN_INFER;
    int status = write_c(g, o, o->output, h_path, kind) ? 0 : 1;
    free(h_path);
    return status;
}

static int cmd_params(Graph *g, bool show_init) {
    Value **ps;
    int n = graph_params(g, &ps);
    char b[160], d[96];
    for (int i = 0; i < n; i++) {
        netrt_param_init pi = init_param_desc(ps[i]);
        printf("%s %s%s%s\n", ps[i]->name, shape_str(&ps[i]->shape, b, sizeof b), show_init ? " " : "",
               show_init ? netrt_init_describe(&pi, d, sizeof d) : "");
    }
    return 0;
}

int cmd_import(const char *in, const char *out, const char *weights); /* driver/import.c */

/* An internal error anywhere wins over the command's own status. */
static int exit_status(int rc) {
    if (diag_internal_count() > 0) return 2;
    if (rc == 0 && diag_error_count() > 0) return 1;
    return rc;
}

int main(int argc, char **argv) {
    Options o;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0)) {
        const char *h = argc >= 3 && strcmp(argv[1], "help") == 0 ? help_of(argv[2]) : NULL;
        if (argc >= 3 && strcmp(argv[1], "help") == 0 && !h) return bad_usage("unknown command '%s'", argv[2]);
        fputs(h ? h : usage, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--print-runtime") == 0) { /* where build looks (the install test) */
        printf("include %s\nlib %s\n", runtime_include(), runtime_lib());
        if (runtime_mpi_lib()[0]) printf("mpi_lib %s\n", runtime_mpi_lib()); /* build --mpi */
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("netc %s\n", NETC_VERSION);
        return 0;
    }
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc;
    if (o.help) { /* netc CMD --help */
        const char *h = help_of(o.cmd);
        if (!h) return bad_usage("unknown command '%s'", o.cmd);
        fputs(h, stdout);
        return 0;
    }
    bool is_build = strcmp(o.cmd, "build") == 0, is_emit = strcmp(o.cmd, "emit") == 0,
         is_init = strcmp(o.cmd, "init") == 0, is_dump = strcmp(o.cmd, "dump") == 0,
         is_params = strcmp(o.cmd, "params") == 0, is_gradcheck = strcmp(o.cmd, "gradcheck") == 0,
         is_stats = strcmp(o.cmd, "stats") == 0, is_dot = strcmp(o.cmd, "dot") == 0;
    if (!(is_build || is_emit || is_init || is_dump || is_params || is_gradcheck || is_stats || is_dot ||
          strcmp(o.cmd, "import") == 0))
        return bad_usage("unknown command '%s'", o.cmd);
    if (is_dump && o.list_passes) {
        for (int i = 0; i < pass_count; i++) printf("%-16s %s\n", pass_table[i].name, pass_table[i].summary);
        return 0;
    }
    if (strcmp(o.cmd, "import") == 0) { /* ONNX in, .net and safetensors out: driver/import.c */
        if (!o.input) return bad_usage("%s needs an .onnx file", o.cmd);
        if (!o.output) return bad_usage("%s needs -o FILE", o.cmd);
        return exit_status(cmd_import(o.input, o.output, o.weights));
    }
    if (!o.input) return bad_usage("%s needs a .net file", o.cmd);
    if ((is_build || is_emit || is_init) && !o.output) return bad_usage("%s needs -o FILE", o.cmd);

    Source *src = NULL;
    /* init and params describe the parameters as written: no passes. */
    Graph *g = compile_graph(&o, &src, !(is_dump || is_init || is_params || is_stats || is_dot));
    if (!g) {
        source_free(src);
        return exit_status(1);
    }
    if (is_build) rc = cmd_build(&o, g);
    else if (is_gradcheck) rc = cmd_gradcheck(&o, g);
    else if (is_emit) rc = cmd_emit(&o, g);
    else if (is_init) rc = init_write(g, o.seed, o.output) ? 0 : 1;
    else if (is_params) rc = cmd_params(g, o.show_init);
    else if (is_dot) rc = cmd_dot(&o, g);
    else if (is_stats) {
        /* the table as the net declares it; the memory of the graph as emitted */
        stats_print(g, stdout);
        if (run_pipeline(g, o.passes, o.verify, NULL, NULL))
            stats_print_memory(g, o.passes, stdout);
        else
            rc = 1;
    }
    else {
        const char *after = o.after ? o.after : NULL;
        if (after && strcmp(after, "eval") == 0) {
            if (o.verify && !graph_verify(g, "building the graph")) rc = 2;
            else graph_dump(g, stdout);
        } else if (!run_pipeline(g, o.passes, o.verify, after, stdout)) {
            rc = 1;
        } else if (!after) {
            graph_dump(g, stdout);
        }
    }
    graph_free(g);
    source_free(src);
    return exit_status(rc);
}
