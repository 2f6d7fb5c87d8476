/* libnetrt: the minimal runtime that programs emitted by netc link.
 *
 * Aligned allocation, safetensors and .npy reading and writing, an IDX data
 * set reader (gzip through zlib), a seeded RNG, timers, a progress bar, the
 * CPU check, and netrt_main, the command line of an emitted inference program.
 *
 * Error convention: functions that can fail return 0 on success and -1 on
 * failure, with a one-line message naming the file and what is wrong written
 * to err (errlen bytes).  Nothing here prints except the command lines
 * (netrt_main, the trainer, the gradient check), the CPU check and the
 * progress bar, and nothing aborts on bad input.
 */
#ifndef NETRT_H
#define NETRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NETRT_MAX_RANK 8

/* ---- memory -------------------------------------------------------------- */

/* 64-byte aligned, zeroed; NULL on failure.  Free with netrt_free (which is
 * free(), so memory from malloc may be passed to it too). */
void *netrt_alloc(size_t bytes);
void netrt_free(void *p);

/* ---- arrays ------------------------------------------------------------- */

typedef enum {
    NETRT_F32, NETRT_F64, NETRT_F16, NETRT_BF16,
    NETRT_U8, NETRT_I8, NETRT_I16, NETRT_I32, NETRT_I64, NETRT_BOOL,
} netrt_dtype;

const char *netrt_dtype_name(netrt_dtype t); /* "F32", "U8", ... (safetensors spelling) */
size_t netrt_dtype_size(netrt_dtype t);

/* An n-dimensional array read from a file, little-endian data converted to
 * host order.  The array owns data (free with netrt_array_free). */
typedef struct netrt_array {
    netrt_dtype dtype;
    int rank;
    int64_t shape[NETRT_MAX_RANK];
    void *data;
    size_t nbytes;
} netrt_array;

void netrt_array_free(netrt_array *a);
int64_t netrt_numel(int rank, const int64_t *shape);
/* "[1, 28, 28]" into buf; returns buf. */
const char *netrt_shape_str(int rank, const int64_t *shape, char *buf, size_t n);

/* ---- .npy (format versions 1.0, 2.0 and 3.0, C order, little endian) ---- */

int netrt_npy_read(const char *path, netrt_array *out, char *err, size_t errlen);
/* Writes float32 data; goes through a temporary file renamed into place, so
 * a failed write leaves nothing half-written. */
int netrt_npy_write(const char *path, const float *data, int rank, const int64_t *shape, char *err,
                    size_t errlen);

/* ---- IDX (MNIST format), plain or gzip-compressed ------------------------ */

int netrt_idx_read(const char *path, netrt_array *out, char *err, size_t errlen);

/* Reads an array from .npy or IDX (.gz or not), chosen by content. */
int netrt_array_read(const char *path, netrt_array *out, char *err, size_t errlen);

/* ---- images (image.c): PNG and JPEG as model inputs ----------------------- */

struct netrt_tensor;
/* Whether the file starts as a PNG or a JPEG does. */
bool netrt_is_image(const char *path);
/* Reads n image files as one float32 array [n, C, H, W] for input t ([N, C,
 * H, W], C 1 or 3): grey or RGB, resized to H x W and scaled to [0, 1] as
 * torchvision's Resize((H, W)) and ToTensor do on a Pillow image, then (x -
 * mean[c]) / std[c] if mean and std are given (C values each).  The array
 * owns its data. */
int netrt_images_read(const char *const *paths, int n, const struct netrt_tensor *t, const float *mean,
                      const float *std, netrt_array *out, char *err, size_t errlen);

/* ---- safetensors --------------------------------------------------------- */

typedef struct netrt_st_entry {
    const char *name;
    netrt_dtype dtype;
    int rank;
    int64_t shape[NETRT_MAX_RANK];
    const void *data; /* into the file's buffer */
    size_t nbytes;
} netrt_st_entry;

typedef struct netrt_st_file {
    int count;
    netrt_st_entry *entries;
    void *buffer; /* the whole file */
    size_t size;
    int nmeta;
    char **meta; /* the header's __metadata__: key 0, value 0, key 1, ... */
    bool borrowed; /* buffer is the caller's (netrt_st_parse): not freed by netrt_st_close */
} netrt_st_file;

/* Reads and validates a whole file (header length, JSON, dtypes, shapes,
 * offsets in range and not overlapping).  Free with netrt_st_close. */
int netrt_st_open(const char *path, netrt_st_file *out, char *err, size_t errlen);
/* The same checks on safetensors bytes in memory (size bytes at data, named
 * `what` in messages).  The entries point into data, which is not copied:
 * it must stay valid and unchanged until netrt_st_close. */
int netrt_st_parse(const void *data, size_t size, const char *what, netrt_st_file *out, char *err,
                   size_t errlen);
void netrt_st_close(netrt_st_file *f);
const netrt_st_entry *netrt_st_find(const netrt_st_file *f, const char *name);
/* The __metadata__ value of key, or NULL. */
const char *netrt_st_meta(const netrt_st_file *f, const char *key);

/* A named float32 tensor in memory. */
typedef struct netrt_tensor {
    const char *name;
    int rank;
    int64_t shape[NETRT_MAX_RANK];
    float *data;
} netrt_tensor;

bool netrt_dtype_is_float(netrt_dtype t); /* F32, F64, F16 or BF16 */
/* Converts a float entry (any float dtype, little endian, possibly unaligned)
 * to numel float32 values in dst. */
void netrt_st_entry_to_f32(const netrt_st_entry *e, float *dst);

/* Checks that f holds exactly the tensors ts (any float dtype, their shapes;
 * a PyTorch batchnorm's num_batches_tracked is let through), naming path in
 * the message; reads nothing into ts. */
int netrt_st_check(const netrt_tensor *ts, int n, const netrt_st_file *f, const char *path, char *err,
                   size_t errlen);

/* netrt_st_check, then each tensor of ts converted to float32 into its data
 * (netrt_st_entry_to_f32): on failure nothing has been written. */
int netrt_st_load(const netrt_st_file *f, const char *what, const netrt_tensor *ts, int n, char *err,
                  size_t errlen);

/* Writes float32 tensors (atomically, as netrt_npy_write). */
int netrt_st_write(const char *path, const netrt_tensor *ts, int n, char *err, size_t errlen);
/* The same, with more __metadata__ entries: nmeta key, value pairs in meta_kv. */
int netrt_st_write_meta(const char *path, const netrt_tensor *ts, int n, const char *const *meta_kv, int nmeta,
                        char *err, size_t errlen);

/* ---- random numbers (xoshiro256**, seeded by splitmix64) ------------------ */

typedef struct netrt_rng {
    uint64_t s[4];
} netrt_rng;

void netrt_rng_seed(netrt_rng *r, uint64_t seed);
uint64_t netrt_rng_next(netrt_rng *r);
double netrt_rng_uniform(netrt_rng *r);         /* [0, 1) */
double netrt_rng_normal(netrt_rng *r);          /* N(0, 1) */
uint64_t netrt_rng_below(netrt_rng *r, uint64_t n); /* [0, n), unbiased */

/* ---- timers and progress -------------------------------------------------- */

double netrt_now(void); /* seconds, monotonic */

typedef struct netrt_progress {
    const char *label;
    int64_t total, done;
    double start, last_draw;
    bool tty;
} netrt_progress;

void netrt_progress_start(netrt_progress *p, const char *label, int64_t total);
/* Redraws at most 10 times a second (and at the end); `extra` is appended,
 * e.g. "loss 0.412 acc 87.5%". */
void netrt_progress_update(netrt_progress *p, int64_t done, const char *extra);
void netrt_progress_finish(netrt_progress *p, const char *extra);

/* ---- emitted models ------------------------------------------------------- */

/* What an emitted model exposes to the runtime.  All tensor storage belongs
 * to the emitted code (static or allocated by init). */
typedef struct netrt_model {
    const char *name;   /* the net's name */
    const char *source; /* the .net file it came from */
    int batch;          /* compiled batch size N */
    int nparams;
    netrt_tensor *params;  /* shapes as PyTorch's state_dict */
    int ninputs;
    netrt_tensor *inputs;  /* shapes [N, ...]; data is the model's input buffer */
    int noutputs;
    netrt_tensor *outputs; /* shapes [N, ...]; data is the model's output buffer */
    bool embedded;         /* params already hold their values */
    int (*init)(void);     /* allocates buffers and fills params/inputs/outputs data; 0 on success */
    void (*prepare)(void); /* after params are loaded: computes derived values */
    void (*run)(void);     /* one batch: inputs -> outputs */
    void (*fini)(void);    /* frees what init allocated (may be NULL) */
    /* Loads the parameters from a safetensors file as netrt_load_params does
     * (not calling prepare), where the emitted code keeps them: netrt_main
     * uses it when it is set (emitted programs set it), else netrt_load_params. */
    int (*load)(const char *path, char *err, size_t errlen);
    /* The emitted code's --check-numerics flag, or NULL if it has none: while
     * true, prepare, run and (training) grad and update call
     * netrt_check_finite after each node and return at the first failure. */
    bool *check_numerics;
    /* The instructions the emitted code was compiled for (netc's --target):
     * NULL for generic x86-64, "avx2" (x86-64-v3) or "avx512" (x86-64-v4).
     * netrt_main, the trainer and the gradient check refuse to run on a CPU
     * without them (netrt_cpu_ok). */
    const char *cpu;
    /* The size of the elements the tensors' data point at: 0 (unset) or 4
     * for float; 8 for double, in the build netc gradcheck compiles, whose
     * tables point at doubles through their float * (only
     * netrt_gradcheck_main runs it; netrt_main and the trainer refuse it). */
    int real_bytes;
} netrt_model;

/* Loads every parameter of m from a safetensors file: each must be present
 * with the model's shape and a float dtype (F32, F64, F16 or BF16, converted
 * to float32).  A missing tensor, a wrong shape (both shapes named) or an
 * unexpected float tensor is an error; integer tensors named
 * "*.num_batches_tracked" are ignored.  Does not call prepare. */
int netrt_load_params(const netrt_model *m, const char *path, char *err, size_t errlen);

/* ---- --check-numerics ------------------------------------------------------ */

/* Called by emitted code after a node, when its check_numerics flag is on:
 * checks the n floats at p that the node wrote for NaN and Inf.  per_sample
 * > 0 means p holds samples of per_sample values each, the rows of the
 * current batch (netrt_numerics_batch); 0, a value of the whole batch or
 * none (a weight, a gradient, the loss).  `what` is "the output", "output 2"
 * or "the updated 'bn.running_var'", op the op's name, name the node's
 * instance name and where its "model.net:12".  Returns 0 if all are finite;
 * else records the first failure,
 *   numerics: NaN in the output of conv "layer1.0.conv1" (model.net:12), sample 3, element 1234
 * (kept until netrt_numerics_reset) and returns -1, as it does for every
 * call once a failure is recorded. */
int netrt_check_finite(const float *p, int64_t n, int64_t per_sample, const char *what, const char *op,
                       const char *name, const char *where);
/* The same for a value stored blocked, NCHW[V]c: n samples of c channels of
 * hw pixels, in ceil(c / v) blocks of v channels (the padding channels not
 * checked); the element named is the logical one, (channel * hw + pixel). */
/* The same for a double build's buffers (netc gradcheck). */
int netrt_check_finite_f64(const double *p, int64_t n, int64_t per_sample, const char *what, const char *op,
                           const char *name, const char *where);
int netrt_check_finite_blocked(const float *p, int64_t n, int64_t c, int64_t hw, int v, const char *what,
                               const char *op, const char *name, const char *where);
/* Describes the rows of the batch about to run, for the messages: row r is
 * "<label> <index[first + r]>" (index NULL: first + r), e.g. "test sample 12";
 * rows from count on are padding and are not checked.  By default row r is
 * "sample r" and every row is checked. */
void netrt_numerics_batch(const char *label, const int64_t *index, int64_t first, int64_t count);
/* The recorded failure's message, or NULL; and forgetting it (which also
 * restores the default batch). */
const char *netrt_numerics_error(void);
void netrt_numerics_reset(void);
/* Resets the numerics state and sets m's flag (the command lines'
 * --check-numerics); an error if on and m has no flag. */
int netrt_set_check_numerics(const netrt_model *m, bool on, char *err, size_t errlen);

/* The command line of an emitted inference program (which first checks the
 * CPU: netrt_cpu_ok with m->cpu, exit status 1 if it fails):
 *   prog [--weights w.safetensors] --input [name=]x.npy ... --output [name=]y.npy ...
 *        [--limit N] [--labels labels] [--print] [--check-numerics] [--repeat R [--warmup W]]
 * Inputs are float32 [S, ...] .npy arrays, or uint8 arrays (.npy or IDX,
 * gzip or not) scaled to [0, 1]; an IDX image file [S, H, W] feeds a
 * [1, H, W] input.  S samples run in batches of N (the last one padded).
 * --print (implied by --labels) prints each sample's arg-max class, and with
 * --labels the true label and the accuracy.  --check-numerics stops at the
 * first node that computes a NaN or an Inf, naming it (netrt_check_finite).
 * --repeat R times the inference: each batch runs W (--warmup, default 1)
 * untimed and then R timed times, each on a fresh copy of its input, the
 * outputs written from the last; only run() is timed (netrt_now), and one
 * line on stderr gives the median, min and mean milliseconds per batch:
 *   prog: timing: batch=8 batches=1 warmup=1 runs=5 median_ms=812.345 min_ms=805.001 mean_ms=815.870
 * Returns the exit status. */
int netrt_main(int argc, char **argv, const netrt_model *m);

/* ---- threads (threads.c) --------------------------------------------------- */

/* The most threads a job uses. */
#define NETRT_MAX_THREADS 256
/* A kernel's work: items [lo, hi) of its independent work items. */
typedef void (*netrt_task)(void *ctx, int64_t lo, int64_t hi);
/* Runs fn over the items [0, n), split into one contiguous part per thread
 * (part i of T: [n * i / T, n * (i + 1) / T)), the caller running part 0, and
 * returns when all are done.  Each item must write its own outputs only, so
 * the results are the same bits at any thread count.  Any number of threads
 * may call it at once: the pool runs one caller's job at a time, and a caller
 * that finds it busy runs all its items itself (the same bits). */
void netrt_parallel(netrt_task fn, void *ctx, int64_t n);
/* The calling thread's workspace of at least `bytes` bytes, 64-byte aligned,
 * for a kernel's piece of work that needs buffers of its own (the fused
 * bottleneck's band rows): kept and reused for the thread's next calls,
 * grown when a call asks for more, freed when the thread ends (or the
 * program, for the main thread).  Out of memory, it prints a message and
 * ends the process with status 1. */
void *netrt_scratch(size_t bytes);
/* The thread count jobs use from now on (n < 1: all cores, the default);
 * process-wide, shared by every instance of every model.  Waits for a job
 * running on the pool to end. */
void netrt_set_threads(int n);
int netrt_threads(void);
/* The cores this process may run on (its CPU affinity). */
int netrt_cores(void);

/* ---- the CPU check (cpu.c) ------------------------------------------------- */

/* The best of "generic", "avx2" (the whole x86-64-v3 level: AVX2, FMA, BMI1/2,
 * F16C, LZCNT, MOVBE) and "avx512" (x86-64-v4: AVX-512 F, BW, CD, DQ, VL) that
 * this CPU and its operating system support, capped by the environment
 * variable NETRT_CPU_LIMIT=generic|avx2|avx512 (a test hook).  Executes only
 * cpuid and xgetbv. */
const char *netrt_cpu_best(void);
/* Whether the CPU has `feature` (a netrt_model's cpu: NULL or "" for generic,
 * "avx2", "avx512").  If not, prints one line on stderr,
 *   prog: error: this program was built for avx512 (netc build --target avx512) and this CPU does not
 *   have it; rebuild it with --target native or --target generic
 * and returns false (also for an unknown feature or NETRT_CPU_LIMIT value).
 * netrt_main, the trainer and the gradient check call it before anything
 * else; libnetrt is compiled for the baseline x86-64, so the check runs on
 * any x86-64 CPU. */
bool netrt_cpu_ok(const char *feature, const char *prog);
/* The same check for library code: prints nothing; 0 if the CPU has
 * `feature`, else -1 with a message naming `who` in err. */
int netrt_cpu_check(const char *feature, const char *who, char *err, size_t errlen);

/* An emitted program's main() runs before the check, so it is declared with
 * this: compiled for the baseline x86-64 whatever -march the program is
 * built with (the C compiler may otherwise use AVX-512 stores in main's
 * prologue).  Empty where the attribute does not exist. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NETRT_BASELINE_ISA __attribute__((target("arch=x86-64")))
#else
#define NETRT_BASELINE_ISA
#endif

/* ---- parameter initialization (shared by `netc init` and the trainer) ------ */

typedef enum {
    NETRT_INIT_NONE, NETRT_INIT_ZERO, NETRT_INIT_ONE,
    NETRT_INIT_XAVIER, /* Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
    NETRT_INIT_HE,     /* He (Kaiming) normal, fan_in mode: N(0, 2 / fan_in) */
    /* Initialization (issue 12): torch.nn.init's schemes, with their
     * arguments in netrt_param_init's a and b (runtime/init.c). */
    NETRT_INIT_CONSTANT,        /* a */
    NETRT_INIT_UNIFORM,         /* U(a, b) */
    NETRT_INIT_NORMAL,          /* N(a, b^2): mean a, std b */
    NETRT_INIT_XAVIER_UNIFORM,  /* gain a: U(-g sqrt(6 / (fan_in + fan_out)), +...) */
    NETRT_INIT_XAVIER_NORMAL,   /* gain a: N(0, g^2 * 2 / (fan_in + fan_out)) */
    NETRT_INIT_KAIMING_UNIFORM, /* gain a, fan b (0 fan_in, 1 fan_out): U(-g sqrt(3 / fan), +...) */
    NETRT_INIT_KAIMING_NORMAL,  /* gain a, fan b: N(0, g^2 / fan) */
    NETRT_INIT_LECUN_NORMAL,    /* N(0, 1 / fan_in) */
    NETRT_INIT_ORTHOGONAL,      /* gain a: rows x (n / rows), orthonormal rows or columns */
} netrt_init_scheme;

/* Fills n floats of one parameter, drawing from r. */
void netrt_init_fill(netrt_init_scheme scheme, double fan_in, double fan_out, netrt_rng *r, float *data,
                     int64_t n);

/* ---- emitted training programs ------------------------------------------ */

typedef struct netrt_param_init {
    netrt_init_scheme scheme;
    double fan_in, fan_out; /* PyTorch's: dim 1 and dim 0 times the receptive field */
    /* Initialization (issue 12): the scheme's arguments (see
     * netrt_init_scheme) and the parameter's dim 0 (orthogonal's rows). */
    double a, b;
    int64_t rows;
} netrt_param_init;

/* Fills the n floats of one parameter as pi says, drawing from r (the
 * trainer, the gradient check and `netc init` share it). */
void netrt_init_param(const netrt_param_init *pi, netrt_rng *r, float *data, int64_t n);
/* A short description of pi ("kaiming_normal(fan_out, gain 1.41421)") in
 * buf; returns buf. */
const char *netrt_init_describe(const netrt_param_init *pi, char *buf, size_t size);

/* The loss a training program computes (the net's `loss(...)`, else
 * cross-entropy): its labels are class indices ([N] for [N, K] logits, [N,
 * H, W] for [N, K, H, W]), or for the other two, targets shaped like the
 * output. */
typedef enum {
    NETRT_LOSS_CROSS_ENTROPY, /* F.cross_entropy (class weights, ignore_index, label smoothing) */
    NETRT_LOSS_BCE_WITH_LOGITS, /* F.binary_cross_entropy_with_logits, mean over elements */
    NETRT_LOSS_MSE,           /* F.mse_loss, mean over elements */
} netrt_loss_kind;

typedef enum { NETRT_SGD, NETRT_ADAM, NETRT_ADAMW } netrt_optimizer;
/* "sgd", "adam", "adamw": the trainer's --optimizer names (checkpoint.c). */
const char *netrt_optimizer_name(netrt_optimizer o);

/* What an emitted training program's update() and loss read, set by the
 * trainer before each step (PyTorch's torch.optim semantics). */
typedef struct netrt_hparams {
    netrt_optimizer optimizer;
    float lr, weight_decay;                 /* every optimizer */
    bool no_bias_decay;                     /* no weight decay for 1-d parameters (biases, norms' weights) */
    float momentum, dampening;              /* SGD */
    bool nesterov;                          /* SGD */
    bool first_step;                        /* SGD: the momentum buffer starts as the first gradient */
    float beta1, beta2, eps;                /* Adam, AdamW */
    float bias1, bias2_sqrt;                /* Adam, AdamW: 1 - beta1^t and sqrt(1 - beta2^t) at step t */
    float grad_scale;                       /* every gradient times this (clipping by global norm; 1: none) */
    float label_smoothing;                  /* cross-entropy */
} netrt_hparams;

/* What an emitted training program exposes (netc build --train).  `infer` is
 * the inference side (eval-mode batchnorm; its params are the ones trained);
 * its run() also works on the active batch.  Arrays run parallel to
 * infer->params. */
typedef struct netrt_train_model {
    const netrt_model *infer;
    netrt_tensor *grads;            /* per param: its gradient, same shape (NULL data if frozen) */
    const netrt_param_init *inits;  /* per param: how to initialize it */
    netrt_tensor *input_grads;      /* per input: d loss / d input, or NULL data if not computed */
    netrt_tensor *labels;           /* [N]: class indices as floats, filled by the runtime */
    netrt_tensor *loss;             /* [1]: mean loss over the active batch, after grad() */
    netrt_tensor *train_logits;     /* [N, K]: the net's output in training mode, after grad() */
    void (*set_batch)(int nb);      /* the active batch, 1 <= nb <= infer->batch; for grad() and infer->run() */
    void (*grad)(void);             /* forward in training mode, loss and backward: fills loss, logits, grads */
    void (*update)(void);           /* one SGD step from the gradients */
    void (*reset_state)(void);      /* zeroes the optimizer's state (every moment) */
    netrt_hparams *hp;              /* read by update() and grad()'s loss */
    netrt_tensor *moment1, *moment2; /* per param: SGD's momentum buffer or Adam's first moment, and
                                        Adam's second (NULL data if frozen) */
    netrt_loss_kind loss_kind;
    int64_t ignore_index;           /* cross-entropy: a label that counts for nothing */
    const float *class_weights;     /* cross-entropy: K weights, or NULL */
    /* Dropout's masks (netrt_dropout_mask): those of grad() call number
     * *step (grad() adds 1 first) under *seed, the trainer's --seed.  The
     * gradient check holds *step, so every call draws the same masks. */
    uint64_t *seed, *step;
    bool *no_dropout; /* --no-dropout: dropout is the identity in training too */
    /* Taps (debugging views: --monitor, --init-calibrate; netc's
     * compiler/taps.c chooses them): while *tap_on, grad() calls
     * netrt_tap(k, value) right after the kernel that writes tap k, a layer's
     * output in the training forward.  Zero cost when off: one predictable
     * branch per tap.  tap_on NULL: the program has no taps. */
    int ntaps;
    const struct netrt_tap_info *taps;
    bool *tap_on;
    /* Initialization (issue 12): the classifier's output bias, the bias of
     * the last conv or linear before the loss (--output-bias frequencies),
     * by its parameter name, or NULL if the net has none. */
    const char *output_bias;
    /* Transfer learning (transfer.c): per param, whether the net froze it (its
     * `freeze` statement, netc build --freeze: no gradient, no update), and
     * its learning rate as a multiple of hp->lr, read by update() (the
     * trainer's --lr-for groups; 1 otherwise). */
    const bool *frozen;
    float *lr_mult;
} netrt_train_model;

/* ---- taps (tap.c): per-layer values of a training step ---------------------- */

/* One tap: the output of a node of the training forward, read by
 * netrt_tap_at in its layout (a blocked value is not converted by the
 * emitted code). */
typedef struct netrt_tap_info {
    const char *name;   /* the node's .net instance name: "conv0", "layer1.0.relu" */
    const char *kind;   /* "conv", "conv+relu" (fused: post-activation), "linear", "batchnorm", "relu", ... */
    bool relu;          /* the values are a ReLU's output (fused or not) */
    bool preact;        /* a conv or linear output before any activation (--init-calibrate) */
    int rank;
    int64_t shape[NETRT_MAX_RANK]; /* logical [N, C, ...], N the compiled batch */
    int cblock;         /* 0: plain C order; V: NCHW[V]c (rank 4: ceil(C / V) blocks of V channels) */
} netrt_tap_info;

/* What the runtime does with a tap: k indexes m->taps, data its buffer,
 * valid until the kernel after it runs. */
typedef void (*netrt_tap_fn)(void *ctx, int k, const float *data);
/* Called by emitted code (behind tap_on): passes the tap to the function set
 * by netrt_tap_set; nothing if none. */
void netrt_tap(int k, const float *data);
/* Sets the function (NULL: none) and turns m's taps on (fn) or off. */
void netrt_tap_set(const netrt_train_model *m, netrt_tap_fn fn, void *ctx);
/* Values per sample, channels (dimension 1) and positions per channel of a tap. */
int64_t netrt_tap_per(const netrt_tap_info *t);
int64_t netrt_tap_channels(const netrt_tap_info *t);
/* Copies sample s of tap t (at data) into dst in logical C order (channel-
 * major), converting a blocked layout. */
void netrt_tap_sample(const netrt_tap_info *t, const float *data, int64_t s, float *dst);

/* Dropout in training: 0 with probability p (drop_below = p * 2^32), else
 * scale = 1 / (1 - p), for element i of the tensor whose masks of this step
 * have key `key` (netrt_dropout_key).  A counter-based hash (splitmix64's
 * finalizer) of the key and i rather than a stream, so that the mask does
 * not depend on the order or the threads that compute it. */
static inline uint64_t netrt_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline uint64_t netrt_dropout_key(uint64_t seed, uint64_t step, uint64_t node) {
    return netrt_mix64(netrt_mix64(seed * 0x9e3779b97f4a7c15ULL + step) + node);
}
static inline float netrt_dropout_mask(uint64_t key, uint64_t i, uint32_t drop_below, float scale) {
    return (uint32_t)(netrt_mix64(key + (i + 1) * 0x9e3779b97f4a7c15ULL) >> 32) < drop_below ? 0.0f : scale;
}

/* The command line of an emitted training program (docs/training.md):
 *   trainer [--data DIR | --train-images F --train-labels F [--test-images F --test-labels F]]
 *           [--epochs E] [--lr LR] [--momentum M] [--weight-decay WD] [--seed S] [--limit N]
 *           [--test-limit N] [--no-shuffle] [--load w.safetensors] [--save w.safetensors]
 *           [--grads-out g.safetensors] [--quiet] [--check-numerics]
 * Checks the CPU first (netrt_cpu_ok with m->infer->cpu).  Returns the exit
 * status. */
int netrt_train_main(int argc, char **argv, const netrt_train_model *m);

/* ---- data-parallel training (dist.c; netc build --train --mpi) -------------
 *
 * What the trainer needs of the processes (ranks) that train one model
 * together, as operations on buffers.  libnetrt itself never calls MPI: the
 * MPI layer (mpi.c, in libnetrt_mpi, which an --mpi program links) fills
 * one of these, and docs/distributed.md describes the training it drives.
 * Collectives are called by every rank in the same order. */
typedef struct netrt_comm {
    int rank, size;
    void *ctx; /* the layer's own state */
    /* Starts summing n floats in place over every rank (non-blocking: the
     * buffer is the layer's until wait_all). */
    void (*sum_start)(struct netrt_comm *c, float *buf, int64_t n);
    void (*progress)(struct netrt_comm *c); /* lets the started sums advance */
    void (*wait_all)(struct netrt_comm *c); /* finishes every started sum */
    void (*sum_f64)(struct netrt_comm *c, double *buf, int n); /* sums in place, blocking */
    void (*bcast)(struct netrt_comm *c, void *buf, int64_t bytes); /* rank 0's bytes to every rank */
    /* every rank's n values, rank r's at all[r * n] */
    void (*gather_u64)(struct netrt_comm *c, const uint64_t *mine, int n, uint64_t *all);
    void (*abort)(struct netrt_comm *c, int status); /* ends every rank's process; does not return */
} netrt_comm;

/* netrt_train_main over the ranks of comm (the MPI layer's main calls it;
 * comm NULL is netrt_train_main).  Adds the options --sync-batchnorm,
 * --verify-replicas K and --bucket-mb M. */
int netrt_train_main_comm(int argc, char **argv, const netrt_train_model *m, netrt_comm *comm);
/* The main of an --mpi training program (libnetrt_mpi, mpi.c): MPI_Init,
 * netrt_train_main_comm over MPI_COMM_WORLD, MPI_Finalize. */
int netrt_mpi_train_main(int argc, char **argv, const netrt_train_model *m);

/* Called by the grad() of an --mpi program right after the kernel that
 * finishes parameter k's gradient: packs it into the gradient buckets and
 * starts summing a bucket once full.  Nothing unless a data-parallel
 * trainer of more than one rank runs. */
void netrt_dist_grad_ready(int k);
/* Called by an --mpi program's batchnorm kernels with their per-channel
 * sums (n of them) and, for the first, the count of values per channel:
 * under --sync-batchnorm, replaces both by their totals over every rank
 * (SyncBatchNorm's statistics); else nothing. */
void netrt_dist_sync_sums(double *sums, int n, double *count);

/* --output-bias frequencies (initialization, issue 12; output_bias.c): sets
 * m->output_bias to the log of the class frequencies, counts[k] labels of
 * class k (a class with none counts as half a label), prints them in one
 * line on stdout and reruns prepare.  Returns 0, or -1 with a message. */
int netrt_output_bias_frequencies(const netrt_train_model *m, const double *counts, int64_t k, const char *prog,
                                  char *err, size_t errlen);
/* Transfer learning in the trainer (transfer.c).
 * netrt_load_partial: --load F --partial: loads each parameter of m whose
 * name and shape the file has (loaded[i] set), leaves the others as they are
 * (the caller initialized them), and prints to out the lists loaded,
 * initialized (not in the file), skipped (shapes differ, both shown) and the
 * file's tensors the net does not have. */
int netrt_load_partial(const netrt_model *m, const char *path, bool *loaded, FILE *out, char *err, size_t errlen);
/* --lr-for PATTERN=RATE: a glob over parameter names and its rate. */
typedef struct netrt_lr_group {
    char pattern[256];
    double rate;
} netrt_lr_group;
int netrt_lr_group_parse(const char *val, netrt_lr_group *g, char *err, size_t errlen);
/* group_of[i]: the first group whose pattern matches parameter i, or -1; a
 * pattern that matches no parameter is an error. */
int netrt_lr_groups_assign(const netrt_model *m, const netrt_lr_group *groups, int ngroups, int *group_of, char *err,
                           size_t errlen);
/* --classes LO-HI (or one class). */
int netrt_class_range_parse(const char *val, int64_t *lo, int64_t *hi, char *err, size_t errlen);
/* Keeps, in order, the samples whose label is in [lo, hi] (at most per_class
 * of each class if per_class > 0), relabelled c - lo (I64); compacts images
 * in place.  Returns the count kept, -1 after an error (none kept, labels not
 * [S] integers). */
int64_t netrt_filter_classes(netrt_array *images, netrt_array *labels, int64_t lo, int64_t hi, int64_t per_class,
                             const char *path, char *err, size_t errlen);
/* "frozen: T parameter tensors, V values (...)" if the net froze any. */
void netrt_print_frozen(const netrt_train_model *m, FILE *out);

/* The gradient check (netc gradcheck): compares the gradients grad() computes
 * with central finite differences of the loss along random directions, for
 * every parameter tensor and every input; prints the worst relative error per
 * tensor; exit status 1 if any is above the threshold.
 *   prog [--seed S] [--eps E] [--threshold T] [--batch-size N] [--directions K]
 *        [--check-numerics]
 * Checks the CPU first (netrt_cpu_ok with m->infer->cpu). */
int netrt_gradcheck_main(int argc, char **argv, const netrt_train_model *m);

/* ---- helpers shared by the runtime's own files ---------------------------- */

/* A background thread running one job at a time (background.c): post
 * returns at once (after waiting for the previous job), wait returns when
 * the job is done; free waits for it and stops the thread.  NULL from new if
 * no thread could be started. */
typedef struct netrt_bg netrt_bg;
netrt_bg *netrt_bg_new(void);
void netrt_bg_post(netrt_bg *b, void (*fn)(void *), void *arg);
void netrt_bg_wait(netrt_bg *b);
void netrt_bg_free(netrt_bg *b);

/* Where a training run is, for --checkpoint and --resume (checkpoint.c, the
 * format described there). */
typedef struct netrt_train_state {
    int64_t epoch;         /* epochs done */
    int64_t step;          /* optimizer steps done */
    uint64_t grad_calls;   /* grad() calls (m->step): dropout's masks */
    uint64_t seed;         /* the run's --seed */
    netrt_rng shuffle;     /* the shuffling generator after `epoch` epochs */
    netrt_optimizer optimizer;
    int64_t epochs;        /* the run's --epochs (its total) */
    char schedule[96], warmup[32]; /* the run's --schedule and --warmup ("" for none) */
    int64_t batch;         /* images a step over every rank (0: not recorded, an older checkpoint) */
    int64_t ranks;         /* the processes of the run (data-parallel; 0: not recorded) */
} netrt_train_state;
/* Writes m's parameters, its optimizer's moments and s (atomically). */
int netrt_checkpoint_write(const char *path, const netrt_train_model *m, const netrt_train_state *s, char *err,
                           size_t errlen);
/* Reads them back into m and s; checks everything first, so that a bad file
 * changes nothing. */
int netrt_checkpoint_read(const char *path, const netrt_train_model *m, netrt_train_state *s, char *err,
                          size_t errlen);

/* The trainer's metrics (metrics.c) of outputs against labels, summed over a
 * set: the loss (in double, as the emitted loss: its class weights, ignored
 * label and label smoothing), the accuracy (of the arg-max class at each
 * labelled position; for bce_with_logits, of each element's sign against the
 * target's side of 0.5; none for mse), and with a confusion matrix, the
 * per-class accuracy and IoU. */
typedef struct netrt_metrics {
    netrt_loss_kind kind;
    int64_t classes, per; /* K (cross-entropy); label values per sample */
    int64_t ignore_index;
    const float *weights;
    double label_smoothing;
    double loss_num, loss_den;
    int64_t correct, counted;
    int64_t *confusion; /* [K][K] by true, predicted class, or NULL */
} netrt_metrics;
/* Empty metrics for m's loss (and a K x K confusion matrix if asked); -1 if out of memory. */
int netrt_metrics_init(netrt_metrics *mt, const netrt_train_model *m, bool confusion);
void netrt_metrics_free(netrt_metrics *mt);
/* Adds nb samples: out the model's output, labels as m->labels holds them;
 * the loss only if `loss`. */
void netrt_metrics_add(netrt_metrics *mt, const float *out, const float *labels, int64_t nb, bool loss);
double netrt_metrics_loss(const netrt_metrics *mt);
bool netrt_metrics_has_accuracy(const netrt_metrics *mt);
double netrt_metrics_accuracy(const netrt_metrics *mt); /* percent */
double netrt_metrics_miou(const netrt_metrics *mt);     /* percent, over the classes seen; NaN without a matrix */
void netrt_metrics_print_confusion(const netrt_metrics *mt, FILE *f, bool iou);

#if defined(__GNUC__) || defined(__clang__)
#define NETRT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NETRT_PRINTF(f, a)
#endif

/* snprintf into err (which may be NULL or errlen 0); returns -1. */
int netrt_errorf(char *err, size_t errlen, const char *fmt, ...) NETRT_PRINTF(3, 4);
/* Bytes of an array of this dtype and shape; false if a dimension is negative
 * or the size overflows. */
bool netrt_nbytes(netrt_dtype t, int rank, const int64_t *shape, size_t *out);
bool netrt_host_is_le(void);
/* Reverses the bytes of each of n elements of `size` bytes (2, 4 or 8). */
void netrt_bswap(void *data, size_t n, size_t size);
/* n bytes as hex, "93 4e 55 4d" ("(none)" if n is 0), into buf; returns buf. */
const char *netrt_bytes_str(const void *bytes, size_t n, char *buf, size_t len);
/* Reads a whole file into a malloc'd buffer (free with free). */
int netrt_read_file(const char *path, void **buf, size_t *size, char *err, size_t errlen);
/* Atomic writes: netrt_atomic_open creates a temporary file next to path and
 * returns it with its name in *tmp; netrt_atomic_close closes it and, if ok
 * and every write succeeded, renames it to path, else removes it.  Either way
 * it frees *tmp. */
FILE *netrt_atomic_open(const char *path, char **tmp, char *err, size_t errlen);
int netrt_atomic_close(FILE *f, char *tmp, const char *path, bool ok, char *err, size_t errlen);
/* Writes n floats little-endian; false on a write error. */
bool netrt_write_f32le(FILE *f, const float *data, size_t n);

/* Whether two shapes are equal (rank and every dimension). */
bool netrt_same_shape(int ra, const int64_t *a, int rb, const int64_t *b);

/* Model inputs from arrays (inputs.c; netrt_main and the trainer): checks that
 * a (read from path) can feed input t: dtype F32, F64 or U8, and t's
 * per-sample shape (an [S, H, W] array feeds a [1, H, W] input); the message
 * names the file and both shapes. */
int netrt_check_input(const netrt_tensor *t, const netrt_array *a, const char *path, char *err,
                      size_t errlen);
/* Copies samples [s0, s0 + n) of a (per values each) into dst as float32;
 * U8 is scaled to [0, 1]. */
void netrt_array_to_f32(const netrt_array *a, int64_t per, int64_t s0, int64_t n, float *dst);
bool netrt_dtype_is_int(netrt_dtype t); /* U8, I8, I16, I32 or I64 */
int64_t netrt_array_int_at(const netrt_array *a, int64_t i); /* element i of an integer array */
/* "[S, 1, 28, 28]" for a model tensor [N, 1, 28, 28], into buf; returns buf. */
const char *netrt_batch_shape_str(const netrt_tensor *t, char *buf, size_t n);

/* Command-line parsing for the runtime's command lines (cli.c): the trainer
 * and the gradient check, and netrt_main for --repeat and --warmup.
 * netrt_opt_next reads the option at argv[*i] ("--name", "--name=value", or
 * "--name value" if it takes a value, advancing *i past it; "-h" is
 * "--help"): *which is its index in opts, *val its value or NULL. */
typedef struct netrt_opt {
    const char *name; /* "--epochs" */
    bool takes_value;
} netrt_opt;
int netrt_opt_next(int argc, char **argv, int *i, const netrt_opt *opts, int nopts, int *which,
                   const char **val, char *err, size_t errlen);
/* Parse an option's value: an integer >= min, a finite number >= min. */
int netrt_opt_int(const char *flag, const char *val, int64_t min, int64_t *out, char *err,
                  size_t errlen);
int netrt_opt_double(const char *flag, const char *val, double min, double *out, char *err,
                     size_t errlen);
/* The program's name for messages: argv[0]'s last component, else fallback. */
const char *netrt_prog_name(int argc, char **argv, const char *fallback);
/* --threads N: N from 1 to NETRT_MAX_THREADS, set with netrt_set_threads. */
int netrt_opt_threads(const char *flag, const char *val, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
