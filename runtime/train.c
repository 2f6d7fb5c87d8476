/* Training (parameter initialization: init.c): netrt_train_main, the command line of a training program emitted by
 * `netc build --train` (its options read through cli.c).
 *
 * The emitted code owns the forward and backward passes, the loss and the
 * optimizer's step (grad() and update()); this file only drives them: it
 * reads the data, initializes or loads the parameters, cuts the (shuffled)
 * training set into batches, sets the step's hyperparameters (the rate's
 * schedule, Adam's bias corrections, the clipping factor of the gradients'
 * global norm), reports progress, evaluates on the test set after each
 * epoch (metrics.c), and writes the parameters or the gradients of one
 * batch. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "augment.h"
#include "dist.h"
#include "holdout.h"
#include "netrt_debug.h"

/* ---- the trainer ------------------------------------------------------------------ */

enum {
    O_DATA, O_TRAIN_IMAGES, O_TRAIN_LABELS, O_TEST_IMAGES, O_TEST_LABELS, O_EPOCHS, O_LR,
    O_MOMENTUM, O_WEIGHT_DECAY, O_SEED, O_LIMIT, O_TEST_LIMIT, O_NO_SHUFFLE, O_LOAD, O_SAVE,
    O_GRADS_OUT, O_QUIET, O_CHECK_NUMERICS, O_THREADS, O_NO_DROPOUT, O_SCHEDULE, O_WARMUP, O_OPTIMIZER,
    O_DAMPENING, O_NESTEROV, O_BETAS, O_EPS, O_NO_BIAS_DECAY, O_CLIP, O_LABEL_SMOOTHING, O_CONFUSION,
    O_CHECKPOINT, O_RESUME,
    O_MONITOR, O_MONITOR_EVERY, O_OVERFIT, O_RANDOM_INPUTS, O_SHOW_INPUTS, O_WORST, O_INIT_CALIBRATE, /* debugging views */
    O_OUTPUT_BIAS, /* initialization */
    O_PARTIAL, O_LR_FOR, O_CLASSES, O_PER_CLASS, /* transfer learning (transfer.c) */
    O_AUGMENT, O_VAL_SPLIT, O_EARLY_STOP, /* data: augmentation, validation, early stopping */
    O_SYNC_BN, O_VERIFY_REPLICAS, O_BUCKET_MB, /* data-parallel training (--mpi programs) */
    O_HELP, O_COUNT
};

static const netrt_opt train_opts[O_COUNT] = {
    [O_DATA] = {"--data", true},
    [O_TRAIN_IMAGES] = {"--train-images", true},
    [O_TRAIN_LABELS] = {"--train-labels", true},
    [O_TEST_IMAGES] = {"--test-images", true},
    [O_TEST_LABELS] = {"--test-labels", true},
    [O_EPOCHS] = {"--epochs", true},
    [O_LR] = {"--lr", true},
    [O_MOMENTUM] = {"--momentum", true},
    [O_WEIGHT_DECAY] = {"--weight-decay", true},
    [O_SEED] = {"--seed", true},
    [O_LIMIT] = {"--limit", true},
    [O_TEST_LIMIT] = {"--test-limit", true},
    [O_NO_SHUFFLE] = {"--no-shuffle", false},
    [O_LOAD] = {"--load", true},
    [O_SAVE] = {"--save", true},
    [O_GRADS_OUT] = {"--grads-out", true},
    [O_QUIET] = {"--quiet", false},
    [O_CHECK_NUMERICS] = {"--check-numerics", false},
    [O_THREADS] = {"--threads", true},
    [O_NO_DROPOUT] = {"--no-dropout", false},
    [O_SCHEDULE] = {"--schedule", true},
    [O_WARMUP] = {"--warmup", true},
    [O_OPTIMIZER] = {"--optimizer", true},
    [O_DAMPENING] = {"--dampening", true},
    [O_NESTEROV] = {"--nesterov", false},
    [O_BETAS] = {"--betas", true},
    [O_EPS] = {"--eps", true},
    [O_NO_BIAS_DECAY] = {"--no-bias-decay", false},
    [O_CLIP] = {"--clip-grad-norm", true},
    [O_LABEL_SMOOTHING] = {"--label-smoothing", true},
    [O_CONFUSION] = {"--confusion", false},
    [O_OUTPUT_BIAS] = {"--output-bias", true},
    [O_CHECKPOINT] = {"--checkpoint", true},
    [O_RESUME] = {"--resume", true},
    [O_MONITOR] = {"--monitor", true},
    [O_MONITOR_EVERY] = {"--monitor-every", true},
    [O_OVERFIT] = {"--overfit", true},
    [O_RANDOM_INPUTS] = {"--random-inputs", false},
    [O_SHOW_INPUTS] = {"--show-inputs", true},
    [O_WORST] = {"--worst", true},
    [O_INIT_CALIBRATE] = {"--init-calibrate", true},
    [O_HELP] = {"--help", false},
    [O_PARTIAL] = {"--partial", false},
    [O_LR_FOR] = {"--lr-for", true},
    [O_CLASSES] = {"--classes", true},
    [O_PER_CLASS] = {"--per-class", true},
    [O_AUGMENT] = {"--augment", true},
    [O_VAL_SPLIT] = {"--val-split", true},
    [O_EARLY_STOP] = {"--early-stop", true},
    [O_SYNC_BN] = {"--sync-batchnorm", false},
    [O_VERIFY_REPLICAS] = {"--verify-replicas", true},
    [O_BUCKET_MB] = {"--bucket-mb", true},
};

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* A labelled set of images: labels are class indices (one per sample, or
 * per position for per-position logits) or targets shaped like the output. */
typedef struct {
    char *images_path, *labels_path; /* owned */
    netrt_array images, labels;
    int64_t count; /* samples used (after --limit) */
} dataset;

/* Samples idx[first .. first + nb) of d (idx NULL: first .. first + nb), as
 * floats into x (per values each) and y (the labels, lper each; NULL for
 * none). */
typedef struct batch_job {
    const dataset *d;
    const int64_t *idx;
    int64_t first, nb, per, lper;
    float *x, *y;
    /* --augment (training batches only; NULL: none): the choices of sample
     * s are netrt_augment_choose(aug, seed, epoch, s); scratch holds one
     * sample before its crop */
    const netrt_augment *aug;
    uint64_t seed;
    int64_t epoch, h, w;
    float *scratch;
} batch_job;

typedef struct {
    const netrt_train_model *m;
    const netrt_model *in; /* m->infer */
    const char *prog;
    /* options */
    const char *data_dir, *load, *save, *grads_out, *checkpoint, *resume;
    const char *schedule_text, *warmup_text; /* --schedule and --warmup as given (checkpoints keep them) */
    const char *files[4]; /* --train-images, --train-labels, --test-images, --test-labels */
    int64_t epochs, limit, test_limit;
    bool no_test; /* --test-limit 0 */
    double lr, momentum, weight_decay, dampening, beta1, beta2, eps, clip, label_smoothing;
    netrt_optimizer optimizer;
    bool lr_given, wd_given, nesterov, no_bias_decay, confusion, smoothing_given;
    /* --schedule: the learning rate of each epoch (PyTorch's schedulers,
     * stepped once per epoch), and --warmup: a linear ramp over the first
     * steps (LinearLR stepped per batch), the two multiplied (as
     * ChainedScheduler does) */
    enum { SCHED_NONE, SCHED_STEP, SCHED_MULTISTEP, SCHED_COSINE, SCHED_ONECYCLE } sched;
    double gamma, eta_min;
    double max_lr, pct_start; /* one-cycle (OneCycleLR stepped per batch): the peak, the rising part */
    int64_t total_steps;      /* one-cycle: epochs times batches per epoch */
    int64_t step_size, t_max, milestones[16];
    int nmilestones;
    int64_t warmup;
    double warmup_start;
    uint64_t seed;
    bool shuffle, quiet, help, check_numerics, seed_given;
    bool output_bias; /* --output-bias frequencies (initialization) */
    netrt_train_state resumed; /* --resume: where the run stood (epoch 0, step 0 otherwise) */
    /* data and model facts */
    dataset train, test;
    bool has_test;
    int64_t per;     /* values per input sample */
    netrt_loss_kind loss;
    int64_t classes; /* cross-entropy: K, dimension 1 of the logits (0 for the other losses) */
    int64_t lper;    /* label values per sample: positions per sample (cross-entropy), or the output's size */
    /* transfer learning (transfer.c): --partial, --lr-for groups, --classes LO-HI and --per-class N */
    bool partial;
    netrt_lr_group lr_groups[16];
    int nlr_groups, lr_group_tensors[16]; /* the parameter tensors each group got */
    int64_t class_lo, class_hi, per_class; /* class_hi < 0: no --classes */
    int64_t *order;  /* the epoch's permutation of the training samples */
    netrt_bg *bg;    /* the thread gathering the next training batch (NULL: none) */
    batch_job job;   /* the batch it gathers */
    float *stage_x, *stage_y; /* where: a batch of inputs and of labels */
    char err[1024];
    /* debugging views (netrt_debug.h, docs/training.md) */
    const char *monitor_dir, *show_dir, *worst_dir;
    int64_t monitor_every, overfit, show_k, worst_k, calibrate_k;
    bool random_inputs, epochs_given;
    netrt_monitor *mon;
    float *shown;     /* --show-inputs: the first show_k samples fed, per values each */
    int64_t nshown;
    int64_t overfit_epoch; /* --overfit: the epoch that reached 100% (0: not yet) */
    double overfit_best;
    /* data: --augment */
    netrt_augment augment;
    float *aug_scratch;
    int64_t epoch; /* the epoch being trained (1-based): the augmentation's choices */
    /* data: --val-split F holds out val_ids (nval samples of the training
     * file) and trains on train_ids (ntrain); without it, train_ids is NULL
     * and ntrain the training set's count.  --early-stop P. */
    double val_split;
    int64_t *train_ids, *val_ids, ntrain, nval;
    netrt_early_stop early;
    /* data-parallel training (dist.h; comm NULL: one process, no --mpi).
     * Every rank reads the same data and takes its shard of each epoch's
     * order: `shard` (nshard samples; the order itself for one rank). */
    netrt_comm *comm;
    int rank, ranks;
    netrt_dist *dist; /* NULL for one rank */
    bool sync_bn;
    int64_t verify_every; /* --verify-replicas K (0: never) */
    double bucket_mb;     /* --bucket-mb (default 25, as DDP's bucket_cap_mb) */
    bool bucket_given;
    int64_t *shard, nshard;
    /* an error every rank meets alike (a bad option, diverged replicas):
     * rank 0 reports it and every rank ends normally, without MPI_Abort */
    bool collective;
} trainer;

/* The debugging views' parts of the trainer, defined at the end of the file. */
static int parse_debug_opt(trainer *t, int o, const char *flag, const char *val, int argc, char **argv, int *i);
static int check_debug_opts(trainer *t);
static void show_inputs_add(trainer *t, int64_t nb);
static int debug_before_training(trainer *t);
static int debug_epoch_end(trainer *t, int64_t e);
static int debug_after_training(trainer *t);

static void dataset_free(dataset *d) {
    free(d->images_path);
    free(d->labels_path);
    netrt_array_free(&d->images);
    netrt_array_free(&d->labels);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* A number from text up to `end` (or the string's end), into v. */
static bool sched_number(const char *p, const char *end, double *v) {
    char buf[64];
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    char *e;
    *v = strtod(buf, &e);
    return *e == 0 && isfinite(*v);
}

/* A whole number from 1 up (epochs, steps), from text up to `end`, into n. */
static bool sched_count(const char *p, const char *end, int64_t *n) {
    double v;
    if (!sched_number(p, end, &v) || v < 1 || v > 1e15 || v != floor(v)) return false;
    *n = (int64_t)v;
    return true;
}

/* --schedule step:N[:GAMMA] | multistep:M1,M2,...[:GAMMA] | cosine[:T_MAX[:ETA_MIN]]
 * (PyTorch's StepLR, MultiStepLR and CosineAnnealingLR, stepped per epoch;
 * gamma 0.1, T_max the epochs and eta_min 0 by default) | onecycle:MAX_LR
 * [:PCT_START] (OneCycleLR, stepped per batch, with its defaults otherwise:
 * pct_start 0.3, cosine annealing, div_factor 25, final_div_factor 1e4, the
 * momentum (SGD's, Adam's beta1) cycled between 0.95 and 0.85). */
static int parse_schedule(trainer *t, const char *val) {
    const char *colon = strchr(val, ':');
    size_t kind = colon ? (size_t)(colon - val) : strlen(val);
    const char *rest = colon ? colon + 1 : NULL;
    t->gamma = 0.1;
    if (kind == 4 && !strncmp(val, "step", 4) && rest) {
        const char *c2 = strchr(rest, ':');
        if (!sched_count(rest, c2, &t->step_size)) goto bad;
        if (c2 && !sched_number(c2 + 1, NULL, &t->gamma)) goto bad;
        t->sched = SCHED_STEP;
        return 0;
    }
    if (kind == 9 && !strncmp(val, "multistep", 9) && rest) {
        const char *c2 = strchr(rest, ':');
        const char *end = c2 ? c2 : rest + strlen(rest);
        for (const char *p = rest; p < end;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *stop = comma ? comma : end;
            int64_t m;
            if (t->nmilestones == 16 || !sched_count(p, stop, &m) ||
                (t->nmilestones && m <= t->milestones[t->nmilestones - 1]))
                goto bad;
            t->milestones[t->nmilestones++] = m;
            p = comma ? comma + 1 : end;
        }
        if (c2 && !sched_number(c2 + 1, NULL, &t->gamma)) goto bad;
        t->sched = SCHED_MULTISTEP;
        return 0;
    }
    if (kind == 8 && !strncmp(val, "onecycle", 8) && rest) {
        const char *c2 = strchr(rest, ':');
        t->pct_start = 0.3;
        if (!sched_number(rest, c2, &t->max_lr) || !(t->max_lr > 0)) goto bad;
        if (c2 && (!sched_number(c2 + 1, NULL, &t->pct_start) || !(t->pct_start > 0 && t->pct_start < 1))) goto bad;
        t->sched = SCHED_ONECYCLE;
        return 0;
    }
    if (kind == 6 && !strncmp(val, "cosine", 6)) {
        if (rest) {
            const char *c2 = strchr(rest, ':');
            if (!sched_count(rest, c2, &t->t_max)) goto bad;
            if (c2 && (!sched_number(c2 + 1, NULL, &t->eta_min) || t->eta_min < 0)) goto bad;
        }
        t->sched = SCHED_COSINE;
        return 0;
    }
bad:
    return netrt_errorf(t->err, sizeof t->err,
                        "--schedule: expected step:N[:GAMMA], multistep:M1,M2,...[:GAMMA] (increasing), "
                        "cosine[:T_MAX[:ETA_MIN]] or onecycle:MAX_LR[:PCT_START], not '%s'", val);
}

/* --warmup N[:START]: the rate ramps linearly from START (default 0.1) times
 * itself at the first step to itself at step N (LinearLR). */
static int parse_warmup(trainer *t, const char *val) {
    const char *colon = strchr(val, ':');
    t->warmup_start = 0.1;
    if (!sched_count(val, colon, &t->warmup) ||
        (colon && (!sched_number(colon + 1, NULL, &t->warmup_start) || t->warmup_start <= 0 || t->warmup_start > 1)))
        return netrt_errorf(t->err, sizeof t->err, "--warmup: expected N[:START], N steps >= 1 and 0 < START <= 1, not '%s'", val);
    return 0;
}

/* --optimizer sgd|adam|adamw. */
static int parse_optimizer(trainer *t, const char *val) {
    for (int k = 0; k < 3; k++)
        if (!strcmp(val, netrt_optimizer_name((netrt_optimizer)k))) {
            t->optimizer = (netrt_optimizer)k;
            return 0;
        }
    return netrt_errorf(t->err, sizeof t->err, "--optimizer: expected sgd, adam or adamw, not '%s'", val);
}

/* --betas B1,B2: Adam's averaging coefficients, each in [0, 1). */
static int parse_betas(trainer *t, const char *val) {
    const char *comma = strchr(val, ',');
    if (!comma || !sched_number(val, comma, &t->beta1) || !sched_number(comma + 1, NULL, &t->beta2) ||
        !(t->beta1 >= 0 && t->beta1 < 1) || !(t->beta2 >= 0 && t->beta2 < 1))
        return netrt_errorf(t->err, sizeof t->err, "--betas: expected B1,B2, each in [0, 1), not '%s'", val);
    return 0;
}

/* OneCycleLR's value at step `step` (0-based) between the phase values:
 * from a at the start to b (the peak) at the end of the first phase, then to
 * c at the last step, by cosine annealing. */
static double onecycle_at(const trainer *t, int64_t step, double a, double b, double c) {
    double end1 = t->pct_start * (double)t->total_steps - 1, end2 = (double)t->total_steps - 1, pct, from, to;
    if ((double)step <= end1) {
        pct = (double)step / end1;
        from = a;
        to = b;
    } else {
        pct = ((double)step - end1) / (end2 - end1);
        from = b;
        to = c;
    }
    return to + (from - to) / 2.0 * (cos(3.14159265358979323846 * pct) + 1.0);
}

/* The momentum (SGD's, or Adam's beta1) at step `step`: cycled by one-cycle. */
static double momentum_at(const trainer *t, int64_t step) {
    if (t->sched != SCHED_ONECYCLE) return t->optimizer == NETRT_SGD ? t->momentum : t->beta1;
    return onecycle_at(t, step, 0.95, 0.85, 0.95);
}

/* The learning rate of epoch e (0-based, PyTorch's last_epoch) at step
 * `step` (0-based, counted over the whole run). */
static double lr_at(const trainer *t, int64_t e, int64_t step) {
    double lr = t->lr;
    switch (t->sched) {
    case SCHED_NONE: break;
    case SCHED_ONECYCLE: {
        double initial = t->max_lr / 25.0;
        lr = onecycle_at(t, step, initial, t->max_lr, initial / 1e4);
        break;
    }
    case SCHED_STEP: lr *= pow(t->gamma, (double)(e / t->step_size)); break;
    case SCHED_MULTISTEP: {
        int k = 0;
        while (k < t->nmilestones && t->milestones[k] <= e) k++;
        lr *= pow(t->gamma, k);
        break;
    }
    case SCHED_COSINE: {
        int64_t tmax = t->t_max ? t->t_max : t->epochs;
        lr = t->eta_min + (t->lr - t->eta_min) * (1.0 + cos(3.14159265358979323846 * (double)e / (double)tmax)) / 2.0;
        break;
    }
    }
    if (t->warmup) {
        int64_t i = step < t->warmup ? step : t->warmup;
        lr *= t->warmup_start + (1.0 - t->warmup_start) * (double)i / (double)t->warmup;
    }
    return lr;
}

static const char *loss_name(netrt_loss_kind k) {
    return k == NETRT_LOSS_MSE ? "mse" : k == NETRT_LOSS_BCE_WITH_LOGITS ? "bce_with_logits" : "cross_entropy";
}

static void usage(const trainer *t, FILE *out) {
    const netrt_model *in = t->in;
    char sh[160];
    fprintf(out,
            "usage: %s [--data DIR | --train-images F --train-labels F\n"
            "          [--test-images F --test-labels F]] [--epochs E] [--lr LR] [--momentum M]\n"
            "          [--weight-decay WD] [--seed S] [--limit N] [--test-limit N] [--no-shuffle]\n"
            "          [--load FILE] [--save FILE] [--grads-out FILE] [--quiet] [--check-numerics]\n"
            "          [--threads N] [--schedule S] [--warmup N[:START]] [--no-dropout]\n"
            "          [--optimizer sgd|adam|adamw] [--dampening D] [--nesterov] [--betas B1,B2]\n"
            "          [--eps E] [--no-bias-decay] [--clip-grad-norm MAX] [--label-smoothing S]\n"
            "          [--confusion] [--checkpoint FILE] [--resume FILE]\n"
            "          [--monitor DIR [--monitor-every K]] [--overfit N] [--random-inputs]\n"
            "          [--show-inputs DIR K] [--worst DIR K] [--init-calibrate K]\n          [--output-bias frequencies]\n"
            "          [--partial] [--lr-for PATTERN=LR] [--classes LO-HI] [--per-class N]\n"
            "          [--augment SPEC] [--val-split F] [--early-stop P]\n"
            "          [--sync-batchnorm] [--verify-replicas K] [--bucket-mb M]\n\n"
            "Trains the network '%s' (compiled from %s, batch %d) with its loss (%s)\n"
            "and an optimizer of torch.optim's (SGD with momentum by default), then tests it.\n\n"
            "  --data DIR             IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
            "                         t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may be\n"
            "                         .gz); default " DEFAULT_DATA "\n"
            "  --train-images FILE    training images (.npy or IDX): float32 [S, ...] or uint8,\n"
            "                         scaled to [0, 1]\n"
            "  --train-labels FILE    their class indices (any integer dtype; [S] or, for per-position\n"
            "                         scores, label maps [S, H, W]), or the targets (bce_with_logits,\n"
            "                         mse: [S, ...] shaped like the output)\n"
            "  --test-images FILE     test images and labels, evaluated after each epoch\n"
            "  --test-labels FILE\n"
            "  --epochs E             passes over the training set (default 1)\n"
            "  --lr LR                learning rate (default 0.01; Adam and AdamW 0.001)\n"
            "  --optimizer O          sgd (default), adam or adamw (torch.optim's)\n"
            "  --momentum M           SGD momentum (default 0.9)\n"
            "  --dampening D          SGD dampening (default 0)\n"
            "  --nesterov             SGD with Nesterov momentum\n"
            "  --betas B1,B2          Adam's and AdamW's betas (default 0.9,0.999)\n"
            "  --eps E                Adam's and AdamW's eps (default 1e-8)\n"
            "  --weight-decay WD      weight decay (default 0; AdamW 0.01): added to the gradient\n"
            "                         (SGD, Adam) or decoupled (AdamW)\n"
            "  --no-bias-decay        no weight decay for 1-d parameters (biases, norms' weights)\n"
            "  --clip-grad-norm MAX   scale the gradients so that their global norm is at most MAX\n"
            "                         (clip_grad_norm_)\n"
            "  --label-smoothing S    cross-entropy's label smoothing (default: the net's, else 0)\n"
            "  --confusion            after training, per-class accuracy and the confusion matrix\n"
            "                         (and per-class IoU for per-position scores) on the test set\n"
            "  --output-bias frequencies  the output layer's bias set to the log of the training\n"
            "                         labels' class frequencies (after initializing or --load)\n"
            "  --seed S               seeds the initialization, the shuffling and dropout (default 1)\n"
            "  --limit N              train on the first N training images only\n"
            "  --test-limit N         test on the first N test images only (0: no test)\n"
            "  --no-shuffle           keep the training images in file order\n"
            "  --load FILE            start from these safetensors parameters\n"
            "  --partial              with --load: load the parameters the file has with the net's\n"
            "                         shape, initialize the others from the seed, list both\n"
            "  --lr-for PATTERN=LR    the learning rate of the parameters whose names match the glob\n"
            "                         (repeatable; the first match wins; schedules scale it as --lr)\n"
            "  --classes LO-HI        use only the samples of classes LO to HI, relabelled 0 to HI-LO\n"
            "  --per-class N          and at most the first N training samples of each class\n"
            "  --save FILE            write the trained parameters (safetensors)\n"
            "  --grads-out FILE       write the gradients of the first batch and exit\n"
            "  --quiet                no progress bar: a line per epoch, and a line a minute during a\n"
            "                         long epoch (as when the output is not a terminal)\n"
            "  --check-numerics       stop at the first op that computes a NaN or an Inf\n"
            "  --threads N            threads the kernels split their work across (default: all\n"
            "                         cores); any N computes the same bits\n"
            "  --schedule S           the learning rate per epoch, as PyTorch's schedulers: step:N[:GAMMA]\n"
            "                         (StepLR), multistep:M1,M2,...[:GAMMA] (MultiStepLR), cosine[:T_MAX\n"
            "                         [:ETA_MIN]] (CosineAnnealingLR; T_MAX the epochs); GAMMA 0.1;\n"
            "                         onecycle:MAX_LR[:PCT] (OneCycleLR per batch, PCT 0.3; it also\n"
            "                         cycles the momentum, or Adam's beta1, from 0.95 to 0.85 and back)\n"
            "  --warmup N[:START]     times a linear ramp from START (0.1) to 1 over the first N steps\n"
            "                         (LinearLR); the rate shows in the progress and epoch lines\n"
            "  --no-dropout           dropout off in training too (to compare gradients with a\n"
            "                         framework's, or to fit a tiny set)\n"
            "  --checkpoint FILE      after each epoch, write the parameters, the optimizer's state,\n"
            "                         the epoch, the step and the random state (safetensors)\n"
            "  --resume FILE          continue the run a checkpoint stopped (same options; --epochs is\n"
            "                         the total): the result is the one of an uninterrupted run\n"
            "  --monitor DIR          every K-th step (--monitor-every, default 10), per layer: the\n"
            "                         activations' and gradients' statistics and histograms, dead\n"
            "                         ReLUs, gradient norms and update/weight ratios, into\n"
            "                         DIR/monitor.csv, monitor_hist.csv and monitor.html; warns of\n"
            "                         vanishing or exploding gradients and dead ReLUs\n"
            "  --overfit N            train on the first N images (no shuffling) until they are\n"
            "                         all classified right (eval mode), for --epochs (default 100)\n"
            "  --random-inputs        before training, the mean prediction on Gaussian noise against\n"
            "                         the training labels' class frequencies\n"
            "  --show-inputs DIR K    the first K training images as fed to the net, DIR/inputs.png\n"
            "  --worst DIR K          after training, the K test images of highest loss with their\n"
            "                         true and predicted classes: DIR/worst.png and DIR/worst.csv\n"
            "  --init-calibrate K     before training, scale each conv and linear weight so that its\n"
            "                         output has unit variance on the first K batches (LSUV)\n"
            "  --augment SPEC         augment the training batches: crop=P (a random crop of the\n"
            "                         image zero-padded by P, RandomCrop) and/or flip (horizontal,\n"
            "                         probability 1/2), e.g. crop=2,flip; seeded per (seed, epoch, sample)\n"
            "  --val-split F          hold out the fraction F of the training images (the last F of a\n"
            "                         permutation seeded by --seed) for validation after each epoch\n"
            "  --early-stop P         stop after P epochs without a lower validation loss (needs\n"
            "                         --val-split) and keep the best epoch's parameters\n"
            "  --sync-batchnorm       (--mpi programs) batchnorm statistics over every rank's samples\n"
            "                         (SyncBatchNorm) rather than each rank's own (the default, as\n"
            "                         DistributedDataParallel)\n"
            "  --verify-replicas K    (--mpi programs) every K steps, check that every rank holds the\n"
            "                         same parameters and optimizer state\n"
            "  --bucket-mb M          (--mpi programs) the gradients are summed over the ranks in\n"
            "                         buckets of M megabytes, each started as soon as its gradients\n"
            "                         are done (default 25)\n"
            "  --help                 this message\n\n",
            t->prog, in->name ? in->name : "?", in->source ? in->source : "?", in->batch, loss_name(t->loss));
    for (int i = 0; i < in->ninputs; i++)
        fprintf(out, "input  %s: %s per sample\n", in->inputs[i].name,
                netrt_shape_str(in->inputs[i].rank - 1, in->inputs[i].shape + 1, sh, sizeof sh));
    if (t->classes) fprintf(out, "classes: %lld\n", (long long)t->classes);
}

/* The data-parallel options are an --mpi program's; with more than one rank,
 * the options that look at one process's batches (the debugging views, one
 * batch's gradients) are refused rather than run on rank 0's shard. */
static int check_dist_opts(trainer *t) {
    if (!t->comm && (t->sync_bn || t->verify_every || t->bucket_given))
        return netrt_errorf(t->err, sizeof t->err,
                            "--sync-batchnorm, --verify-replicas and --bucket-mb are for a program built with "
                            "netc build --train --mpi");
    if (t->ranks < 2) return 0;
    const char *flag = t->grads_out ? "--grads-out" : t->monitor_dir ? "--monitor" : t->overfit ? "--overfit"
                       : t->random_inputs ? "--random-inputs" : t->show_dir ? "--show-inputs"
                       : t->worst_dir ? "--worst" : t->calibrate_k ? "--init-calibrate" : NULL;
    if (flag)
        return netrt_errorf(t->err, sizeof t->err, "%s works on one process: run it without mpirun (or with -np 1)",
                            flag);
    return 0;
}

static int parse_args(trainer *t, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int o;
        const char *val;
        if (netrt_opt_next(argc, argv, &i, train_opts, O_COUNT, &o, &val, t->err, sizeof t->err))
            return -1;
        const char *flag = train_opts[o].name;
        if (val && !val[0])
            return netrt_errorf(t->err, sizeof t->err, "option %s needs a non-empty value", flag);
        int64_t n = 0;
        int rc = 0;
        switch (o) {
        case O_DATA: t->data_dir = val; break;
        case O_TRAIN_IMAGES: case O_TRAIN_LABELS: case O_TEST_IMAGES: case O_TEST_LABELS:
            t->files[o - O_TRAIN_IMAGES] = val;
            break;
        case O_EPOCHS:
            rc = netrt_opt_int(flag, val, 0, &t->epochs, t->err, sizeof t->err);
            t->epochs_given = true;
            break;
        case O_LR:
            rc = netrt_opt_double(flag, val, 0, &t->lr, t->err, sizeof t->err);
            t->lr_given = true;
            break;
        case O_MOMENTUM:
            rc = netrt_opt_double(flag, val, 0, &t->momentum, t->err, sizeof t->err);
            break;
        case O_WEIGHT_DECAY:
            rc = netrt_opt_double(flag, val, 0, &t->weight_decay, t->err, sizeof t->err);
            t->wd_given = true;
            break;
        case O_OPTIMIZER: rc = parse_optimizer(t, val); break;
        case O_DAMPENING: rc = netrt_opt_double(flag, val, 0, &t->dampening, t->err, sizeof t->err); break;
        case O_NESTEROV: t->nesterov = true; break;
        case O_BETAS: rc = parse_betas(t, val); break;
        case O_EPS: rc = netrt_opt_double(flag, val, 0, &t->eps, t->err, sizeof t->err); break;
        case O_NO_BIAS_DECAY: t->no_bias_decay = true; break;
        case O_CLIP:
            rc = netrt_opt_double(flag, val, 0, &t->clip, t->err, sizeof t->err);
            if (rc == 0 && !(t->clip > 0)) rc = netrt_errorf(t->err, sizeof t->err, "--clip-grad-norm must be positive");
            break;
        case O_LABEL_SMOOTHING:
            rc = netrt_opt_double(flag, val, 0, &t->label_smoothing, t->err, sizeof t->err);
            if (rc == 0 && t->label_smoothing > 1)
                rc = netrt_errorf(t->err, sizeof t->err, "--label-smoothing must be in [0, 1], got %g", t->label_smoothing);
            t->smoothing_given = true;
            break;
        case O_CONFUSION: t->confusion = true; break;
        case O_CHECKPOINT: t->checkpoint = val; break;
        case O_OUTPUT_BIAS:
            if (strcmp(val, "frequencies") != 0)
                return netrt_errorf(t->err, sizeof t->err, "--output-bias: unknown value '%s' (the only one is frequencies)", val);
            t->output_bias = true;
            break;
        case O_RESUME: t->resume = val; break;
        case O_SEED:
            rc = netrt_opt_int(flag, val, 0, &n, t->err, sizeof t->err);
            t->seed = (uint64_t)n;
            t->seed_given = true;
            break;
        case O_LIMIT: rc = netrt_opt_int(flag, val, 1, &t->limit, t->err, sizeof t->err); break;
        case O_TEST_LIMIT: /* 0: no evaluation at all */
            rc = netrt_opt_int(flag, val, 0, &t->test_limit, t->err, sizeof t->err);
            if (rc == 0 && t->test_limit == 0) t->no_test = true;
            break;
        case O_NO_SHUFFLE: t->shuffle = false; break;
        case O_LOAD: t->load = val; break;
        case O_SAVE: t->save = val; break;
        case O_GRADS_OUT: t->grads_out = val; break;
        case O_QUIET: t->quiet = true; break;
        case O_CHECK_NUMERICS: t->check_numerics = true; break;
        case O_THREADS: rc = netrt_opt_threads(flag, val, t->err, sizeof t->err); break;
        case O_SCHEDULE:
            if (strlen(val) >= sizeof t->resumed.schedule)
                return netrt_errorf(t->err, sizeof t->err, "--schedule: '%.40s...' is too long", val);
            rc = parse_schedule(t, val);
            t->schedule_text = val;
            break;
        case O_WARMUP:
            if (strlen(val) >= sizeof t->resumed.warmup)
                return netrt_errorf(t->err, sizeof t->err, "--warmup: '%.20s...' is too long", val);
            rc = parse_warmup(t, val);
            t->warmup_text = val;
            break;
        case O_NO_DROPOUT:
            if (!t->m->no_dropout) return netrt_errorf(t->err, sizeof t->err, "--no-dropout: this program has no dropout switch");
            *t->m->no_dropout = true;
            break;
        case O_HELP: t->help = true; break;
        case O_MONITOR: case O_MONITOR_EVERY: case O_OVERFIT: case O_RANDOM_INPUTS: case O_SHOW_INPUTS: case O_WORST:
        case O_INIT_CALIBRATE:
            rc = parse_debug_opt(t, o, flag, val, argc, argv, &i);
            break;
        case O_PARTIAL: t->partial = true; break;
        case O_LR_FOR:
            if (t->nlr_groups == (int)(sizeof t->lr_groups / sizeof *t->lr_groups))
                return netrt_errorf(t->err, sizeof t->err, "--lr-for: at most %d groups",
                                    (int)(sizeof t->lr_groups / sizeof *t->lr_groups));
            rc = netrt_lr_group_parse(val, &t->lr_groups[t->nlr_groups++], t->err, sizeof t->err);
            break;
        case O_CLASSES: rc = netrt_class_range_parse(val, &t->class_lo, &t->class_hi, t->err, sizeof t->err); break;
        case O_PER_CLASS: rc = netrt_opt_int(flag, val, 1, &t->per_class, t->err, sizeof t->err); break;
        case O_AUGMENT: rc = netrt_augment_parse(val, &t->augment, t->err, sizeof t->err); break;
        case O_VAL_SPLIT:
            rc = netrt_opt_double(flag, val, 0, &t->val_split, t->err, sizeof t->err);
            if (rc == 0 && !(t->val_split > 0 && t->val_split < 1))
                rc = netrt_errorf(t->err, sizeof t->err, "--val-split must be between 0 and 1 (exclusive), got %s", val);
            break;
        case O_EARLY_STOP: rc = netrt_opt_int(flag, val, 1, &t->early.patience, t->err, sizeof t->err); break;
        case O_SYNC_BN: t->sync_bn = true; break;
        case O_VERIFY_REPLICAS: rc = netrt_opt_int(flag, val, 1, &t->verify_every, t->err, sizeof t->err); break;
        case O_BUCKET_MB:
            rc = netrt_opt_double(flag, val, 0, &t->bucket_mb, t->err, sizeof t->err);
            if (rc == 0 && !(t->bucket_mb > 0)) rc = netrt_errorf(t->err, sizeof t->err, "--bucket-mb must be positive");
            t->bucket_given = true;
            break;
        }
        if (rc < 0) return -1;
    }
    if (t->help) return 0;
    if (t->optimizer == NETRT_SGD && t->nesterov && (t->momentum <= 0 || t->dampening != 0))
        return netrt_errorf(t->err, sizeof t->err, "--nesterov needs a momentum above 0 and no dampening (as PyTorch's SGD)");
    if (t->optimizer != NETRT_SGD && (t->nesterov || t->dampening != 0))
        return netrt_errorf(t->err, sizeof t->err, "--nesterov and --dampening are SGD's options, not %s's",
                            t->optimizer == NETRT_ADAM ? "Adam" : "AdamW");
    if (t->smoothing_given && t->loss != NETRT_LOSS_CROSS_ENTROPY)
        return netrt_errorf(t->err, sizeof t->err, "--label-smoothing is for cross-entropy; this net's loss is %s",
                            t->loss == NETRT_LOSS_MSE ? "mse" : "bce_with_logits");
    if (t->confusion && t->loss != NETRT_LOSS_CROSS_ENTROPY)
        return netrt_errorf(t->err, sizeof t->err, "--confusion needs class scores (a cross-entropy loss)");
    if (t->output_bias && t->loss != NETRT_LOSS_CROSS_ENTROPY)
        return netrt_errorf(t->err, sizeof t->err, "--output-bias frequencies needs class scores (a cross-entropy loss)");
    if (t->output_bias && t->resume)
        return netrt_errorf(t->err, sizeof t->err, "--output-bias sets the starting bias; --resume continues a run");
    if (t->smoothing_given)
        t->m->hp->label_smoothing = (float)t->label_smoothing;
    else
        t->label_smoothing = t->m->hp->label_smoothing; /* the net's loss(..., label_smoothing = S) */
    /* PyTorch's defaults where the optimizer changes them */
    if (!t->lr_given && t->optimizer != NETRT_SGD) t->lr = 0.001;
    if (!t->wd_given && t->optimizer == NETRT_ADAMW) t->weight_decay = 0.01;
    const char **f = t->files;
    if (t->data_dir && (f[0] || f[1] || f[2] || f[3]))
        return netrt_errorf(t->err, sizeof t->err,
                            "--data cannot be combined with --train-images, --train-labels, "
                            "--test-images or --test-labels");
    static const char *names[4] = {"--train-images", "--train-labels", "--test-images",
                                   "--test-labels"};
    for (int k = 0; k < 4; k++)
        if (f[k] && !f[k ^ 1])
            return netrt_errorf(t->err, sizeof t->err, "%s needs %s", names[k], names[k ^ 1]);
    if (f[2] && !f[0])
        return netrt_errorf(t->err, sizeof t->err,
                            "--test-images needs --train-images (or use --data DIR)");
    if (t->partial && !t->load) return netrt_errorf(t->err, sizeof t->err, "--partial needs --load FILE");
    if (t->per_class && t->class_hi < 0)
        return netrt_errorf(t->err, sizeof t->err, "--per-class needs --classes LO-HI");
    if (t->nlr_groups && !(t->lr > 0))
        return netrt_errorf(t->err, sizeof t->err, "--lr-for needs a positive --lr (the groups' rates are its multiples)");
    if (t->nlr_groups) {
        int group_of[t->in->nparams + 1];
        if (netrt_lr_groups_assign(t->in, t->lr_groups, t->nlr_groups, group_of, t->err, sizeof t->err) < 0) return -1;
        for (int i = 0; i < t->in->nparams && t->m->lr_mult; i++) {
            t->m->lr_mult[i] = group_of[i] < 0 ? 1.0f : (float)(t->lr_groups[group_of[i]].rate / t->lr);
            if (group_of[i] >= 0) t->lr_group_tensors[group_of[i]]++;
        }
    }
    if (t->early.patience && !t->val_split)
        return netrt_errorf(t->err, sizeof t->err, "--early-stop needs a validation set (--val-split F)");
    if (t->early.patience && t->resume)
        return netrt_errorf(t->err, sizeof t->err,
                            "--early-stop cannot be combined with --resume (a checkpoint does not keep the best epoch's parameters)");
    if (t->resume && t->load)
        return netrt_errorf(t->err, sizeof t->err, "--resume cannot be combined with --load (the checkpoint has the parameters)");
    if (t->grads_out && (t->checkpoint || t->resume))
        return netrt_errorf(t->err, sizeof t->err, "--grads-out cannot be combined with --checkpoint or --resume");
    if (check_debug_opts(t) < 0) return -1;
    if (check_dist_opts(t) < 0) return -1;
    if (t->grads_out && t->save)
        return netrt_errorf(t->err, sizeof t->err,
                            "--grads-out cannot be combined with --save (it writes the "
                            "gradients of one batch and trains nothing)");
    return 0;
}

/* The path of an IDX file in the data directory: dir/name, or dir/name.gz if
 * only that exists (malloc'd, NULL after an error). */
static char *data_file(trainer *t, const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 8;
    char *p = malloc(n);
    if (!p) {
        netrt_errorf(t->err, sizeof t->err, "out of memory");
        return NULL;
    }
    snprintf(p, n, "%s/%s", dir, name);
    if (access(p, F_OK) == 0) return p;
    snprintf(p, n, "%s/%s.gz", dir, name);
    if (access(p, F_OK) == 0) return p;
    snprintf(p, n, "%s/%s", dir, name);
    netrt_errorf(t->err, sizeof t->err, "%s: no such file (nor %s.gz)", p, name);
    free(p);
    return NULL;
}

/* Values s * per .. (s + 1) * per of labels or targets a, as floats. */
static void labels_to_f32(const netrt_array *a, int64_t per, int64_t s, float *dst) {
    if (netrt_dtype_is_int(a->dtype))
        for (int64_t i = 0; i < per; i++) dst[i] = (float)netrt_array_int_at(a, s * per + i);
    else
        netrt_array_to_f32(a, per, s, 1, dst);
}

/* Checks labels l (read from lp) against the model, for S images: class
 * indices, an integer array [S] (or [S, H, W] label maps for per-position
 * scores) in [0, K) or the ignored label; or targets, a number array shaped
 * [S, ...] as the output (in [0, 1] for bce_with_logits). */
static int check_labels(trainer *t, const netrt_array *l, const char *lp, int64_t S, const char *images) {
    const netrt_tensor *want = t->m->labels;
    char sh[160], wsh[160];
    bool ce = t->loss == NETRT_LOSS_CROSS_ENTROPY;
    bool shape_ok = l->rank == want->rank && l->shape[0] == S;
    for (int i = 1; shape_ok && i < want->rank; i++) shape_ok = l->shape[i] == want->shape[i];
    if ((ce && !netrt_dtype_is_int(l->dtype)) || !shape_ok) {
        if (l->rank == want->rank && l->shape[0] != S && (!ce || netrt_dtype_is_int(l->dtype)))
            return netrt_errorf(t->err, sizeof t->err, "%s: %lld labels for %lld images in %s", lp,
                                (long long)l->shape[0], (long long)S, images);
        netrt_batch_shape_str(want, wsh, sizeof wsh);
        return netrt_errorf(t->err, sizeof t->err, "%s: %s must be %s array %s, got %s of shape %s", lp,
                            ce ? "labels" : "targets", ce ? "an integer" : "a number", wsh, netrt_dtype_name(l->dtype),
                            netrt_shape_str(l->rank, l->shape, sh, sizeof sh));
    }
    int64_t n = S * t->lper;
    for (int64_t i = 0; i < n; i++) {
        if (ce) {
            int64_t c = netrt_array_int_at(l, i);
            if ((c < 0 || c >= t->classes) && c != t->m->ignore_index)
                return netrt_errorf(t->err, sizeof t->err,
                                    "%s: label %lld of sample %lld is out of range (the model has %lld classes, 0 to "
                                    "%lld%s)",
                                    lp, (long long)c, (long long)(i / t->lper), (long long)t->classes,
                                    (long long)t->classes - 1, t->m->ignore_index != -100 ? ", or the ignored label" : "");
        } else {
            float v;
            labels_to_f32(l, 1, i, &v);
            if (!isfinite(v) || (t->loss == NETRT_LOSS_BCE_WITH_LOGITS && !(v >= 0 && v <= 1)))
                return netrt_errorf(t->err, sizeof t->err, "%s: target %lld of sample %lld is %g (%s)", lp,
                                    (long long)(i % t->lper), (long long)(i / t->lper), (double)v,
                                    t->loss == NETRT_LOSS_MSE ? "not finite" : "bce_with_logits needs [0, 1]");
        }
    }
    return 0;
}

/* Reads a data set's images and labels and checks them against the model. */
static int read_set(trainer *t, dataset *d, const char *what, int64_t limit) {
    const netrt_tensor *x = &t->in->inputs[0];
    if (netrt_array_read(d->images_path, &d->images, t->err, sizeof t->err) < 0 ||
        netrt_check_input(x, &d->images, d->images_path, t->err, sizeof t->err) < 0)
        return -1;
    int64_t S = d->images.shape[0];
    if (S <= 0)
        return netrt_errorf(t->err, sizeof t->err, "%s: no %s images", d->images_path, what);
    if (netrt_array_read(d->labels_path, &d->labels, t->err, sizeof t->err) < 0) return -1;
    if (t->class_hi >= 0) { /* --classes, --per-class (the test set: every sample of the classes) */
        S = netrt_filter_classes(&d->images, &d->labels, t->class_lo, t->class_hi, d == &t->train ? t->per_class : 0,
                                 d->labels_path, t->err, sizeof t->err);
        if (S < 0) return -1;
    }
    if (check_labels(t, &d->labels, d->labels_path, S, d->images_path) < 0) return -1;
    d->count = limit > 0 && limit < S ? limit : S;
    return 0;
}

static int read_data(trainer *t) {
    static const char *idx_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char **slots[4] = {&t->train.images_path, &t->train.labels_path, &t->test.images_path,
                       &t->test.labels_path};
    bool from_dir = !t->files[0];
    const char *dir = t->data_dir ? t->data_dir : DEFAULT_DATA;
    if (from_dir) {
        struct stat st;
        if (stat(dir, &st) != 0 && !t->data_dir)
            return netrt_errorf(t->err, sizeof t->err,
                                "no data: %s: %s (Debian's dataset-fashion-mnist; or use --data "
                                "DIR, or --train-images F --train-labels F)",
                                dir, strerror(errno));
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return netrt_errorf(t->err, sizeof t->err, "--data %s: %s", dir,
                                stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
    }
    /* --grads-out needs no test set. */
    int nfiles = t->grads_out || t->overfit ? 2 : 4; /* --overfit: the training images are the test */
    for (int k = 0; k < nfiles; k++) {
        if (from_dir) {
            if (!(*slots[k] = data_file(t, dir, idx_names[k]))) return -1;
        } else if (t->files[k]) {
            if (!(*slots[k] = dup_str(t->files[k])))
                return netrt_errorf(t->err, sizeof t->err, "out of memory");
        }
    }
    if (read_set(t, &t->train, "training", t->limit) < 0) return -1;
    t->ntrain = t->train.count;
    if (t->val_split > 0 && !t->grads_out &&
        netrt_holdout_split(t->train.count, t->val_split, t->seed, &t->train_ids, &t->ntrain, &t->val_ids, &t->nval,
                            t->err, sizeof t->err) < 0)
        return -1;
    t->has_test = t->test.images_path != NULL && !t->no_test;
    if (t->has_test && read_set(t, &t->test, "test", t->test_limit) < 0) return -1;
    return 0;
}

/* Checks what the runtime relies on in the emitted model. */
static int check_model(trainer *t) {
    const netrt_train_model *m = t->m;
    const netrt_model *in = t->in;
    if (in->ninputs != 1)
        return netrt_errorf(t->err, sizeof t->err,
                            "the model has %d inputs; training needs exactly one", in->ninputs);
    if (in->batch < 1 || in->noutputs < 1 || !m->train_logits || m->train_logits->rank < 1 ||
        !m->grad || !m->update || !m->set_batch || !m->grads || !m->inits || !m->labels ||
        !m->labels->rank || !m->loss || !m->hp || !m->moment1 || !m->moment2)
        return netrt_errorf(t->err, sizeof t->err, "the model is not a training program");
    const netrt_tensor *lg = m->train_logits;
    t->loss = m->loss_kind;
    t->classes = t->loss == NETRT_LOSS_CROSS_ENTROPY && lg->rank >= 2 ? lg->shape[1] : 0;
    t->lper = netrt_numel(m->labels->rank - 1, m->labels->shape + 1);
    t->per = netrt_numel(in->inputs[0].rank - 1, in->inputs[0].shape + 1);
    int64_t out_per = netrt_numel(in->outputs[0].rank - 1, in->outputs[0].shape + 1);
    int64_t want = t->classes ? t->classes * t->lper : t->lper;
    if (out_per != want || want < 1 || out_per != netrt_numel(lg->rank - 1, lg->shape + 1))
        return netrt_errorf(t->err, sizeof t->err,
                            "the model's output '%s' has %lld values per sample, its training logits and labels "
                            "make %lld", in->outputs[0].name, (long long)out_per, (long long)want);
    return 0;
}

static void gather(void *arg) {
    const batch_job *j = arg;
    for (int64_t r = 0; r < j->nb; r++) {
        int64_t s = j->idx ? j->idx[j->first + r] : j->first + r;
        if (j->aug) { /* the sample into scratch, then cropped and flipped into the batch */
            netrt_augment_choice ch = netrt_augment_choose(j->aug, j->seed, j->epoch, s);
            netrt_array_to_f32(&j->d->images, j->per, s, 1, j->scratch);
            netrt_augment_apply(&ch, j->aug->crop, j->per / (j->h * j->w), j->h, j->w, j->scratch, j->x + r * j->per);
        } else {
            netrt_array_to_f32(&j->d->images, j->per, s, 1, j->x + r * j->per);
        }
        if (j->y) labels_to_f32(&j->d->labels, j->lper, s, j->y + r * j->lper);
    }
}

/* After the model's input and labels hold nb samples: zeroes the rest of the
 * batch and makes nb the active batch. */
static void commit_batch(trainer *t, const dataset *d, const int64_t *idx, int64_t first, int64_t nb, bool labels) {
    int64_t N = t->in->batch, per = t->per, lper = t->lper;
    memset(t->in->inputs[0].data + nb * per, 0, (size_t)((N - nb) * per) * sizeof(float));
    if (labels) memset(t->m->labels->data + nb * lper, 0, (size_t)((N - nb) * lper) * sizeof(float));
    t->m->set_batch((int)nb);
    netrt_numerics_batch(d == &t->test ? "test sample" : "training sample", idx, first, nb);
}

/* Puts samples idx[0 .. nb) of d into the model's input and labels, zeroing
 * the rest of the batch, and makes nb the active batch.  idx NULL means
 * samples first .. first + nb. */
static void load_batch(trainer *t, const dataset *d, const int64_t *idx, int64_t first, int64_t nb,
                       bool labels) {
    batch_job j = {d, idx, first, nb, t->per, t->lper, t->in->inputs[0].data, labels ? t->m->labels->data : NULL,
                 NULL, 0, 0, 0, 0, NULL}; /* not augmented */
    gather(&j);
    commit_batch(t, d, idx, first, nb, labels);
}

/* The training batches, prepared ahead: while the model computes on one
 * batch, the background thread gathers the next into the staging buffers
 * (without a thread, each batch is gathered when it is needed). */
static void prefetch_post(trainer *t, int64_t first) {
    int64_t S = t->nshard, N = t->in->batch;
    t->job = (batch_job){&t->train, t->shard, first, S - first < N ? S - first : N, t->per, t->lper, t->stage_x, t->stage_y,
                         NULL, 0, 0, 0, 0, NULL};
    if (t->augment.on) { /* the input is [N, C, H, W] (checked in train) */
        const netrt_tensor *x = &t->in->inputs[0];
        t->job.aug = &t->augment;
        t->job.seed = t->seed;
        t->job.epoch = t->epoch;
        t->job.h = x->shape[2];
        t->job.w = x->shape[3];
        t->job.scratch = t->aug_scratch;
    }
    if (t->bg) netrt_bg_post(t->bg, gather, &t->job);
}

/* Batch `first` (posted before) into the model, and the next one posted. */
static void prefetch_take(trainer *t, int64_t first) {
    batch_job *j = &t->job;
    if (t->bg)
        netrt_bg_wait(t->bg);
    else
        gather(j);
    memcpy(t->in->inputs[0].data, j->x, (size_t)(j->nb * t->per) * sizeof(float));
    memcpy(t->m->labels->data, j->y, (size_t)(j->nb * t->lper) * sizeof(float));
    commit_batch(t, &t->train, t->shard, first, j->nb, true);
    if (t->show_dir) show_inputs_add(t, j->nb); /* the batch as the net sees it */
    if (first + j->nb < t->nshard) prefetch_post(t, first + j->nb);
}

/* After a call into the model: the --check-numerics failure, if any. */
static int numerics_failed(trainer *t) {
    const char *msg = netrt_numerics_error();
    return msg ? netrt_errorf(t->err, sizeof t->err, "%s", msg) : 0;
}

static int64_t param_count(const trainer *t) {
    int64_t n = 0;
    for (int i = 0; i < t->in->nparams; i++)
        if (t->m->grads[i].data) n += netrt_numel(t->in->params[i].rank, t->in->params[i].shape);
    return n;
}

/* --resume: the parameters, the optimizer's moments and where the run
 * stood, from the checkpoint (which must be of a run with this optimizer and
 * seed). */
static int resume_run(trainer *t) {
    netrt_train_state *r = &t->resumed;
    if (netrt_checkpoint_read(t->resume, t->m, r, t->err, sizeof t->err) < 0) return -1;
    if (r->optimizer != t->optimizer)
        return netrt_errorf(t->err, sizeof t->err, "%s: the checkpoint is of a run with --optimizer %s, not %s",
                            t->resume, netrt_optimizer_name(r->optimizer), netrt_optimizer_name(t->optimizer));
    if (t->seed_given && r->seed != t->seed)
        return netrt_errorf(t->err, sizeof t->err, "%s: the checkpoint is of a run with --seed %llu, not %llu",
                            t->resume, (unsigned long long)r->seed, (unsigned long long)t->seed);
    if (r->epoch > t->epochs)
        return netrt_errorf(t->err, sizeof t->err, "%s: the checkpoint is after epoch %lld, past --epochs %lld",
                            t->resume, (long long)r->epoch, (long long)t->epochs);
    /* the rate must continue the same curve */
    const char *sched = t->schedule_text ? t->schedule_text : "", *warm = t->warmup_text ? t->warmup_text : "";
    if (strcmp(r->schedule, sched) != 0 || strcmp(r->warmup, warm) != 0)
        return netrt_errorf(t->err, sizeof t->err,
                            "%s: the checkpoint is of a run with --schedule '%s' --warmup '%s', not '%s' '%s' (resume "
                            "with the same options)",
                            t->resume, r->schedule, r->warmup, sched, warm);
    bool by_total = t->sched == SCHED_ONECYCLE || (t->sched == SCHED_COSINE && t->t_max == 0);
    if (by_total && r->epochs != t->epochs)
        return netrt_errorf(t->err, sizeof t->err,
                            "%s: the checkpoint is of a run of --epochs %lld, whose --schedule '%s' spans them all; "
                            "resume with --epochs %lld",
                            t->resume, (long long)r->epochs, sched, (long long)r->epochs);
    int64_t batch = (int64_t)t->in->batch * t->ranks;
    if (r->batch && r->batch != batch && t->rank == 0) /* the same net goes on, but not the same run */
        fprintf(stderr,
                "%s: warning: %s is of a run of %lld images a step (%lld rank%s), this run takes %lld (%d rank%s): "
                "its epochs have another number of steps, so the result is not the one of an uninterrupted run\n",
                t->prog, t->resume, (long long)r->batch, (long long)r->ranks, r->ranks == 1 ? "" : "s",
                (long long)batch, t->ranks, t->ranks == 1 ? "" : "s");
    t->seed = r->seed;
    if (t->m->step) *t->m->step = r->grad_calls;
    return 0;
}

/* Parameters: resumed (--resume), loaded (--load) or initialized from the
 * seed as `netc init` does: one random stream across the parameters, in
 * order. */
static int init_params(trainer *t) {
    const netrt_model *in = t->in;
    if (t->resume) {
        if (resume_run(t) < 0) return -1;
    } else if (t->load && !t->partial) {
        if (netrt_load_params(in, t->load, t->err, sizeof t->err) < 0) return -1;
    } else { /* --partial: the initialization of every parameter, then those the file has */
        netrt_rng rng;
        netrt_rng_seed(&rng, t->seed);
        for (int i = 0; i < in->nparams; i++) {
            const netrt_tensor *p = &in->params[i];
            const netrt_param_init *pi = &t->m->inits[i];
            netrt_init_param(pi, &rng, p->data, netrt_numel(p->rank, p->shape));
        }
        bool loaded[in->nparams + 1];
        if (t->partial && netrt_load_partial(in, t->load, loaded, stdout, t->err, sizeof t->err) < 0) return -1;
    }
    if (t->m->seed) *t->m->seed = t->seed; /* dropout's masks too */
    if (in->prepare) in->prepare();
    return numerics_failed(t);
}

/* --grads-out: one grad() on the first batch in file order; every gradient
 * is written under its parameter's name. */
static int write_grads(trainer *t) {
    const netrt_train_model *m = t->m;
    const netrt_model *in = t->in;
    int64_t nb = t->train.count < in->batch ? t->train.count : in->batch;
    load_batch(t, &t->train, NULL, 0, nb, true);
    m->grad();
    if (numerics_failed(t) < 0) return -1;
    netrt_tensor *gs = calloc((size_t)in->nparams + 1, sizeof *gs);
    if (!gs) return netrt_errorf(t->err, sizeof t->err, "out of memory");
    int n = 0;
    for (int i = 0; i < in->nparams; i++) {
        if (!m->grads[i].data) continue;
        gs[n] = m->grads[i];
        gs[n].name = in->params[i].name;
        gs[n].rank = in->params[i].rank;
        memcpy(gs[n].shape, in->params[i].shape, sizeof gs[n].shape);
        n++;
    }
    int rc = netrt_st_write(t->grads_out, gs, n, t->err, sizeof t->err);
    free(gs);
    if (rc < 0) return -1;
    printf("wrote the gradients of %d parameter tensors for the first batch (%lld images, loss "
           "%.6g) to %s\n",
           n, (long long)nb, (double)m->loss->data[0], t->grads_out);
    fflush(stdout);
    return 0;
}

/* The loss and metrics of the inference program (eval mode) on the test
 * set, into mt (initialized here; the caller frees it).  -1 after a
 * --check-numerics failure. */
static int eval_pass(trainer *t, netrt_metrics *mt, bool confusion, const dataset *d, const int64_t *idx,
                     int64_t count);
static int test_pass(trainer *t, netrt_metrics *mt, bool confusion) {
    return eval_pass(t, mt, confusion, &t->test, NULL, t->test.count);
}

/* The same on samples idx[0 .. count) of d (idx NULL: the first count). */
static int eval_pass(trainer *t, netrt_metrics *mt, bool confusion, const dataset *d, const int64_t *idx,
                     int64_t count) {
    const netrt_model *in = t->in;
    int64_t N = in->batch;
    if (netrt_metrics_init(mt, t->m, confusion || t->lper > 1) < 0)
        return netrt_errorf(t->err, sizeof t->err, "out of memory");
    if (in->prepare) in->prepare(); /* derived values of the updated parameters */
    if (numerics_failed(t) < 0) return -1;
    for (int64_t s0 = 0; s0 < count; s0 += N) {
        int64_t nb = count - s0 < N ? count - s0 : N;
        load_batch(t, d, idx, s0, nb, true);
        in->run();
        if (numerics_failed(t) < 0) return -1;
        netrt_metrics_add(mt, in->outputs[0].data, t->m->labels->data, nb, true);
    }
    return 0;
}

/* "; test loss L, test accuracy A% (mean IoU M%) (n images)" */
static void print_test(const trainer *t, const netrt_metrics *mt, const char *sep) {
    printf("%stest loss %.4f", sep, netrt_metrics_loss(mt));
    if (netrt_metrics_has_accuracy(mt)) printf(", test accuracy %.2f%%", netrt_metrics_accuracy(mt));
    if (t->lper > 1 && mt->confusion) printf(", mean IoU %.2f%%", netrt_metrics_miou(mt));
    printf(" (%lld images)", (long long)t->test.count);
}

static void print_header(const trainer *t) {
    const netrt_model *in = t->in;
    char sh[160];
    printf("training %s (%s): %lld parameters, batch %d", in->name ? in->name : "?", in->source ? in->source : "?",
           (long long)param_count(t), in->batch);
    if (t->ranks > 1) /* data-parallel */
        printf(" on each of %d ranks (%lld in all)%s, gradients (%.3g MB a step) summed in buckets of %g MB",
               t->ranks, (long long)in->batch * t->ranks,
               !netrt_dist_has_batchnorm(t->dist) ? "" : t->sync_bn ? ", batchnorm statistics over every rank"
                                                                   : ", batchnorm statistics per rank",
               (double)netrt_dist_grad_floats(t->dist) * sizeof(float) / (1024.0 * 1024.0), t->bucket_mb);
    printf("; %lld training images %s", (long long)t->ntrain,
           netrt_shape_str(in->inputs[0].rank - 1, in->inputs[0].shape + 1, sh, sizeof sh));
    if (t->has_test) printf(", %lld test images", (long long)t->test.count);
    printf("; %lld epoch%s, loss %s", (long long)t->epochs, t->epochs == 1 ? "" : "s", loss_name(t->loss));
    if (t->label_smoothing > 0) printf(" (label smoothing %g)", t->label_smoothing);
    char lr[64]; /* one-cycle ignores --lr: its peak rate says it */
    if (t->sched == SCHED_ONECYCLE) snprintf(lr, sizeof lr, "lr one-cycle to %g", t->max_lr);
    else snprintf(lr, sizeof lr, "lr %g", t->lr);
    if (t->optimizer == NETRT_SGD) {
        printf(", SGD %s, momentum %g", lr, t->momentum);
        if (t->dampening > 0) printf(", dampening %g", t->dampening);
        if (t->nesterov) printf(", Nesterov");
    } else {
        printf(", %s %s, betas %g,%g, eps %g", t->optimizer == NETRT_ADAM ? "Adam" : "AdamW", lr, t->beta1,
               t->beta2, t->eps);
    }
    printf(", weight decay %g%s", t->weight_decay, t->no_bias_decay ? " (not of biases and norms)" : "");
    if (t->clip > 0) printf(", gradients clipped to norm %g", t->clip);
    printf(", seed %llu%s; ", (unsigned long long)t->seed, t->shuffle ? "" : ", no shuffling");
    if (t->augment.on) { /* data: augmentation, validation */
        printf("augmented by");
        if (t->augment.crop) printf(" random crops (padding %lld)%s", (long long)t->augment.crop, t->augment.flip ? " and" : "");
        if (t->augment.flip) printf(" horizontal flips");
        printf("; ");
    }
    if (t->val_split > 0)
        printf("%lld images held out for validation (--val-split %g)%s; ", (long long)t->nval, t->val_split,
               t->early.patience ? ", early stopping on the validation loss" : "");
    if (t->load)
        printf("weights from %s%s\n", t->load, t->partial ? " (partial: the rest initialized from the seed)" : "");
    else
        printf("weights initialized from the seed\n");
    netrt_print_frozen(t->m, stdout); /* transfer learning */
    for (int k = 0; k < t->nlr_groups; k++) {
        int n = t->lr_group_tensors[k];
        printf("--lr-for %s: lr %g (%d parameter tensor%s)\n", t->lr_groups[k].pattern, t->lr_groups[k].rate, n,
               n == 1 ? "" : "s");
    }
    fflush(stdout);
}

/* The global L2 norm of the trained parameters' gradients, in double. */
static double grad_norm(const trainer *t) {
    double sum = 0;
    for (int i = 0; i < t->in->nparams; i++) {
        const float *g = t->m->grads[i].data;
        if (!g) continue;
        int64_t n = netrt_numel(t->in->params[i].rank, t->in->params[i].shape);
        for (int64_t k = 0; k < n; k++) sum += (double)g[k] * g[k];
    }
    return sqrt(sum);
}

/* Seconds between the heartbeat lines of an epoch without a progress bar
 * (--quiet, or stderr not a terminal): 60, or NETRT_HEARTBEAT_SECONDS (a
 * positive number; the tests make it short). */
static double heartbeat_interval(void) {
    const char *v = getenv("NETRT_HEARTBEAT_SECONDS");
    if (v && *v) {
        char *end;
        double d = strtod(v, &end);
        if (*end == '\0' && d > 0 && isfinite(d)) return d;
    }
    return 60.0;
}

/* The hyperparameters of optimizer step `step` (1-based, counted over the
 * run) at rate lr, and the clipping factor of this step's gradients. */
static void set_step(trainer *t, int64_t step, double lr) {
    netrt_hparams *hp = t->m->hp;
    double mu = momentum_at(t, step - 1);
    hp->lr = (float)lr;
    hp->first_step = step == 1;
    if (t->optimizer == NETRT_SGD)
        hp->momentum = (float)mu;
    else
        hp->beta1 = (float)mu;
    hp->bias1 = (float)(1.0 - pow(mu, (double)step));
    hp->bias2_sqrt = (float)sqrt(1.0 - pow(t->beta2, (double)step));
    hp->grad_scale = 1.0f;
    if (t->clip > 0) {
        double c = t->clip / (grad_norm(t) + 1e-6); /* clip_grad_norm_'s */
        if (c < 1) hp->grad_scale = (float)c;
    }
}

/* A test switch (tests/dist/faults.sh): the rank NETRT_TEST_DIVERGE_RANK
 * names nudges its first trained parameter after step 3, which
 * --verify-replicas must report. */
static void test_diverge(trainer *t) {
    const char *v = getenv("NETRT_TEST_DIVERGE_RANK");
    if (!v || atoi(v) != t->rank) return;
    for (int i = 0; i < t->in->nparams; i++)
        if (t->m->grads[i].data) {
            t->in->params[i].data[0] += 1e-3f;
            return;
        }
}

static int train(trainer *t) {
    const netrt_train_model *m = t->m;
    const netrt_model *in = t->in;
    /* Rank r of P trains on positions r, r + P, r + 2P, ... of each epoch's
     * order, padded to a multiple of P from its start (DistributedSampler),
     * so that P ranks at batch N see the batches of one process at batch
     * P * N, and every rank takes as many steps. */
    int64_t S = t->ntrain, N = in->batch, P = t->ranks, Sr = (S + P - 1) / P;
    netrt_hparams *hp = m->hp;
    hp->optimizer = t->optimizer;
    hp->momentum = (float)t->momentum;
    hp->dampening = (float)t->dampening;
    hp->nesterov = t->nesterov;
    hp->weight_decay = (float)t->weight_decay;
    hp->no_bias_decay = t->no_bias_decay;
    hp->beta1 = (float)t->beta1;
    hp->beta2 = (float)t->beta2;
    hp->eps = (float)t->eps;
    t->stage_x = malloc((size_t)(N * t->per) * sizeof(float));
    t->stage_y = malloc((size_t)(N * t->lper) * sizeof(float));
    if (!(t->order = malloc((size_t)S * sizeof *t->order)) || !t->stage_x || !t->stage_y ||
        (P > 1 && !(t->shard = malloc((size_t)Sr * sizeof *t->shard))))
        return netrt_errorf(t->err, sizeof t->err, "out of memory");
    if (P == 1) t->shard = t->order; /* the whole order (not freed twice: see netrt_train_main_comm) */
    t->nshard = Sr;
    if (t->augment.on) {
        if (t->in->inputs[0].rank != 4)
            return netrt_errorf(t->err, sizeof t->err, "--augment needs images [C, H, W] as the net's input, not %d-d samples",
                                t->in->inputs[0].rank - 1);
        if (!(t->aug_scratch = malloc((size_t)t->per * sizeof(float))))
            return netrt_errorf(t->err, sizeof t->err, "out of memory");
    }
    t->bg = netrt_bg_new(); /* NULL: the batches are gathered in turn */
    netrt_rng shuffle_rng;
    netrt_rng_seed(&shuffle_rng, t->seed + 1); /* a stream apart from the initialization's */
    bool show = !t->quiet && isatty(fileno(stderr)) && t->rank == 0;
    double beat = heartbeat_interval();
    t->total_steps = t->epochs * ((Sr + N - 1) / N);
    print_header(t);
    int64_t step = 0; /* optimizer steps so far: the warm-up's position */
    if (t->resume) {
        shuffle_rng = t->resumed.shuffle;
        step = t->resumed.step;
        printf("resumed from %s after epoch %lld (%lld steps)\n", t->resume, (long long)t->resumed.epoch,
               (long long)step);
    }
    netrt_metrics tm = {0};
    int early_stopped = 0; /* --early-stop: 1 when it stops the run */
    int64_t last_epoch = t->resumed.epoch;
    for (int64_t e = t->resumed.epoch + 1; e <= t->epochs && !early_stopped; e++) {
        last_epoch = e;
        double start = netrt_now(), waited0 = t->dist ? netrt_dist_waited(t->dist) : 0.0;
        t->epoch = e;
        for (int64_t s = 0; s < S; s++) t->order[s] = t->train_ids ? t->train_ids[s] : s;
        if (t->shuffle)
            for (int64_t s = S - 1; s > 0; s--) {
                int64_t j = (int64_t)netrt_rng_below(&shuffle_rng, (uint64_t)s + 1);
                int64_t tmp = t->order[s];
                t->order[s] = t->order[j];
                t->order[j] = tmp;
            }
        if (P > 1)
            for (int64_t i = 0; i < Sr; i++) t->shard[i] = t->order[(t->rank + i * P) % S];
        char label[64], extra[64];
        netrt_progress bar;
        snprintf(label, sizeof label, "epoch %lld/%lld", (long long)e, (long long)t->epochs);
        if (show) netrt_progress_start(&bar, label, Sr);
        double loss_sum = 0, lr = t->lr, lr_first = lr_at(t, e - 1, step);
        double last_line = start; /* the last line printed: the previous epoch's, or a heartbeat */
        int64_t batches = (Sr + N - 1) / N;
        int64_t batch = 0;
        netrt_metrics train_m;
        if (netrt_metrics_init(&train_m, m, false) < 0) return netrt_errorf(t->err, sizeof t->err, "out of memory");
        prefetch_post(t, 0);
        for (int64_t s0 = 0; s0 < Sr; s0 += N) {
            int64_t nb = Sr - s0 < N ? Sr - s0 : N;
            batch++;
            lr = lr_at(t, e - 1, step++);
            prefetch_take(t, s0);
            bool watched = t->mon && netrt_monitor_begin(t->mon, step, e, nb);
            if (t->dist) netrt_dist_begin_step(t->dist);
            m->grad();
            if (numerics_failed(t) < 0) {
                if (show) fputc('\n', stderr);
                return -1;
            }
            if (t->dist) netrt_dist_end_step(t->dist); /* every rank: the mean gradient */
            if (watched) netrt_monitor_after_grad(t->mon);
            float loss = m->loss->data[0];
            if (!isfinite(loss)) {
                if (show) fputc('\n', stderr);
                return netrt_errorf(t->err, sizeof t->err,
                                    "the loss is %s at epoch %lld, batch %lld (try a smaller --lr, or "
                                    "--check-numerics to find the op that made it)",
                                    isnan(loss) ? "NaN" : "infinite", (long long)e,
                                    (long long)batch);
            }
            set_step(t, step, lr);
            m->update();
            if (numerics_failed(t) < 0) {
                if (show) fputc('\n', stderr);
                return -1;
            }
            if (watched) netrt_monitor_after_update(t->mon, stdout);
            if (t->dist && step == 3) test_diverge(t);
            if (t->dist && t->verify_every && step % t->verify_every == 0 &&
                netrt_dist_verify(t->dist, step, t->err, sizeof t->err) < 0) {
                if (show) fputc('\n', stderr);
                t->collective = true;
                return -1;
            }
            loss_sum += (double)loss * (double)nb;
            netrt_metrics_add(&train_m, m->train_logits->data, m->labels->data, nb, false);
            if (show) {
                int k = snprintf(extra, sizeof extra, "loss %.3f", loss_sum / (double)(s0 + nb));
                if (netrt_metrics_has_accuracy(&train_m))
                    k += snprintf(extra + k, sizeof extra - (size_t)k, " acc %.1f%%", netrt_metrics_accuracy(&train_m));
                snprintf(extra + k, sizeof extra - (size_t)k, " lr %.3g", lr);
                netrt_progress_update(&bar, s0 + nb, extra);
            } else if (s0 + nb < Sr) {
                double now = netrt_now();
                if (now - last_line >= beat) { /* no bar to watch: a sign of life in a long epoch */
                    double r = (double)(s0 + nb) / (now - start);
                    printf("epoch %lld/%lld, step %lld/%lld: loss %.4f so far, %.*f images/s\n", (long long)e,
                           (long long)t->epochs, (long long)batch, (long long)batches, loss_sum / (double)(s0 + nb),
                           r < 10 ? 2 : r < 100 ? 1 : 0, r);
                    fflush(stdout);
                    last_line = now;
                }
            }
        }
        if (t->dist) { /* the epoch's loss and accuracy over every rank's shard */
            double sums[5] = {loss_sum, train_m.loss_num, train_m.loss_den, (double)train_m.correct,
                              (double)train_m.counted};
            netrt_dist_sum(t->dist, sums, 5);
            loss_sum = sums[0], train_m.loss_num = sums[1], train_m.loss_den = sums[2];
            train_m.correct = (int64_t)sums[3], train_m.counted = (int64_t)sums[4];
        }
        double secs = netrt_now() - start;
        if (show) netrt_progress_finish(&bar, extra);
        double rate = secs > 0 ? (double)(Sr * P) / secs : 0.0;
        printf("epoch %lld/%lld: train loss %.4f", (long long)e, (long long)t->epochs, loss_sum / (double)(Sr * P));
        if (netrt_metrics_has_accuracy(&train_m)) printf(", train accuracy %.2f%%", netrt_metrics_accuracy(&train_m));
        netrt_metrics_free(&train_m);
        printf(", %.*f images/s", rate < 10 ? 2 : rate < 100 ? 1 : 0, rate);
        if (t->dist) /* a step's gradient sums (--bucket-mb tunes them), and the time they were not hidden */
            printf(" on %d ranks (%d bucket%s a step, %.1f%% of the time waiting for them)", t->ranks,
                   netrt_dist_buckets(t->dist), netrt_dist_buckets(t->dist) == 1 ? "" : "s",
                   secs > 0 ? 100.0 * (netrt_dist_waited(t->dist) - waited0) / secs : 0.0);
        if (t->sched != SCHED_NONE || t->warmup) { /* the rate of the epoch's first and last steps */
            char a[32], b[32];
            snprintf(a, sizeof a, "%.6g", lr_first);
            snprintf(b, sizeof b, "%.6g", lr);
            printf(strcmp(a, b) ? ", lr %s to %s" : ", lr %s", a, b);
        }
        if (t->val_ids && t->rank == 0) { /* data: the validation set, and early stopping (rank 0 evaluates) */
            netrt_metrics vm = {0};
            int vrc = eval_pass(t, &vm, false, &t->train, t->val_ids, t->nval);
            if (vrc == 0) {
                printf("; val loss %.4f", netrt_metrics_loss(&vm));
                if (netrt_metrics_has_accuracy(&vm)) printf(", val accuracy %.2f%%", netrt_metrics_accuracy(&vm));
                if (t->early.patience) early_stopped = netrt_early_stop_update(&t->early, in, e, netrt_metrics_loss(&vm));
            }
            netrt_metrics_free(&vm);
            if (vrc < 0 || early_stopped < 0) {
                printf("\n");
                netrt_metrics_free(&tm);
                return vrc < 0 ? -1 : netrt_errorf(t->err, sizeof t->err, "out of memory");
            }
        }
        if (t->has_test && t->rank == 0) {
            bool last = e == t->epochs;
            netrt_metrics_free(&tm);
            if (test_pass(t, &tm, last && t->confusion) < 0) {
                printf("\n");
                netrt_metrics_free(&tm);
                return -1;
            }
            print_test(t, &tm, "; ");
        }
        printf("\n");
        fflush(stdout);
        if (t->checkpoint && t->rank == 0) {
            netrt_train_state st = {.epoch = e, .step = step, .grad_calls = m->step ? *m->step : 0,
                                    .seed = t->seed, .shuffle = shuffle_rng, .optimizer = t->optimizer,
                                    .epochs = t->epochs, .batch = N * P, .ranks = P};
            snprintf(st.schedule, sizeof st.schedule, "%s", t->schedule_text ? t->schedule_text : "");
            snprintf(st.warmup, sizeof st.warmup, "%s", t->warmup_text ? t->warmup_text : "");
            if (netrt_checkpoint_write(t->checkpoint, m, &st, t->err, sizeof t->err) < 0) {
                netrt_metrics_free(&tm);
                return -1;
            }
        }
        if (t->dist) early_stopped = netrt_dist_bcast_int(t->dist, early_stopped); /* rank 0's decision */
        if (early_stopped)
            printf("early stop: the validation loss has not improved for %lld epoch%s\n", (long long)t->early.patience,
                   t->early.patience == 1 ? "" : "s");
        int stop = debug_epoch_end(t, e);
        if (stop < 0) {
            netrt_metrics_free(&tm);
            return -1;
        }
        if (stop > 0) break;
    }
    if (t->early.patience && t->early.best_epoch) { /* data: the best epoch's parameters */
        printf("best epoch %lld: val loss %.4f", (long long)t->early.best_epoch, t->early.best_loss);
        if (t->early.best_epoch != last_epoch) {
            netrt_early_stop_restore(&t->early, in);
            printf("; its parameters restored");
        }
        printf("\n");
        if (t->has_test && (t->early.best_epoch != last_epoch || (t->confusion && last_epoch != t->epochs))) {
            netrt_metrics_free(&tm);
            if (test_pass(t, &tm, t->confusion) < 0) {
                netrt_metrics_free(&tm);
                return -1;
            }
            print_test(t, &tm, "best epoch's ");
            printf("\n");
        }
    }
    if (t->resumed.epoch >= t->epochs && t->has_test && t->rank == 0) {
        if (test_pass(t, &tm, t->confusion) < 0) {
            netrt_metrics_free(&tm);
            return -1;
        }
        print_test(t, &tm, "");
        printf("\n");
    }
    if (t->confusion && t->has_test && t->rank == 0) netrt_metrics_print_confusion(&tm, stdout, t->lper > 1);
    netrt_metrics_free(&tm);
    if (debug_after_training(t) < 0) return -1;
    if (t->save && t->rank == 0) {
        if (netrt_st_write(t->save, in->params, in->nparams, t->err, sizeof t->err) < 0) return -1;
        printf("saved %d parameter tensors to %s\n", in->nparams, t->save);
    }
    fflush(stdout);
    return 0;
}

/* Fails now rather than after training if path cannot be written (its
 * directory is missing, say); leaves nothing behind. */
static int check_writable(trainer *t, const char *path) {
    char *tmp;
    FILE *f = netrt_atomic_open(path, &tmp, t->err, sizeof t->err);
    if (!f) return -1;
    netrt_atomic_close(f, tmp, path, false, NULL, 0);
    return 0;
}

/* --output-bias frequencies: the training labels counted per class (those
 * equal to ignore_index not at all), then output_bias.c. */
static int output_bias(trainer *t) {
    const netrt_array *l = &t->train.labels;
    int64_t k = t->classes, n = netrt_numel(l->rank, l->shape);
    double *counts = calloc((size_t)k + 1, sizeof *counts);
    if (!counts) return netrt_errorf(t->err, sizeof t->err, "out of memory");
    for (int64_t i = 0; i < n && i < t->train.count * t->lper; i++) {
        float v;
        labels_to_f32(l, 1, i, &v);
        if ((int64_t)v != t->m->ignore_index && v >= 0 && (int64_t)v < k) counts[(int64_t)v] += 1;
    }
    int rc = netrt_output_bias_frequencies(t->m, counts, k, t->prog, t->err, sizeof t->err);
    free(counts);
    return rc;
}

/* Data-parallel training: the ranks start from rank 0's parameters (and
 * optimizer state), whatever each initialized, loaded or resumed; dropout
 * draws other masks on every rank (rank 0 those of one process). */
static int dist_start(trainer *t) {
    if (t->ranks < 2) return 0;
    if (!(t->dist = netrt_dist_new(t->comm, t->m, t->bucket_mb, t->sync_bn, t->err, sizeof t->err)))
        return -1;
    netrt_dist_bcast_params(t->dist);
    if (t->m->seed && t->rank > 0) *t->m->seed = netrt_mix64(t->seed + (uint64_t)t->rank * 0x9e3779b97f4a7c15ULL);
    if (t->in->prepare) t->in->prepare();
    return numerics_failed(t);
}

static int run_trainer(trainer *t, int argc, char **argv) {
    t->collective = true; /* the same on every rank */
    if (check_model(t) < 0 || parse_args(t, argc, argv) < 0) return -1;
    t->collective = false;
    if (t->help) {
        usage(t, stdout);
        return 0;
    }
    if (read_data(t) < 0) return -1;
    if (t->confusion && !t->has_test && !t->grads_out)
        return netrt_errorf(t->err, sizeof t->err, "--confusion needs a test set (--data, or --test-images and --test-labels)");
    if (t->rank == 0 && /* only rank 0 writes */
        ((t->save && check_writable(t, t->save) < 0) || (t->checkpoint && check_writable(t, t->checkpoint) < 0) ||
         (t->grads_out && check_writable(t, t->grads_out) < 0)))
        return -1;
    if (netrt_set_check_numerics(t->in, t->check_numerics, t->err, sizeof t->err) < 0) return -1;
    if (t->m->reset_state) t->m->reset_state();
    if (init_params(t) < 0) return -1;
    if (t->output_bias && output_bias(t) < 0) return -1;
    if (dist_start(t) < 0) return -1;
    if (t->grads_out) return write_grads(t);
    if (debug_before_training(t) < 0) return -1;
    return train(t);
}

int netrt_train_main(int argc, char **argv, const netrt_train_model *m) {
    return netrt_train_main_comm(argc, argv, m, NULL);
}

int netrt_train_main_comm(int argc, char **argv, const netrt_train_model *m, netrt_comm *comm) {
    trainer t = {
        .m = m, .in = m->infer, .epochs = 1, .lr = 0.01, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999,
        .eps = 1e-8, .seed = 1, .shuffle = true, .class_hi = -1,
        .comm = comm, .rank = comm ? comm->rank : 0, .ranks = comm ? comm->size : 1, .bucket_mb = 25,
    };
    t.prog = netrt_prog_name(argc, argv, m->infer->name);
    /* one voice: only rank 0 prints (errors go to stderr from any rank) */
    if (t.rank > 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "%s: rank %d: error: cannot silence stdout\n", t.prog, t.rank);
        return 1;
    }
    /* first: the emitted code may use instructions this CPU lacks */
    if (!netrt_cpu_ok(m->infer->cpu, t.prog)) return 1;
    if (m->infer->real_bytes && m->infer->real_bytes != (int)sizeof(float)) {
        fprintf(stderr,
                "%s: error: this program was compiled in double precision, which only the gradient check "
                "runs\n",
                t.prog);
        return 1;
    }
    if (m->infer->init && m->infer->init() != 0) {
        fprintf(stderr, "%s: error: cannot initialize the model (out of memory?)\n", t.prog);
        return 1;
    }
    int rc = run_trainer(&t, argc, argv);
    if (rc < 0) {
        fflush(stdout);
        if (t.ranks < 2) {
            fprintf(stderr, "%s: error: %s\n", t.prog, t.err);
        } else if (t.collective) { /* every rank ends alike: one message */
            if (t.rank == 0) fprintf(stderr, "%s: error: %s\n", t.prog, t.err);
        } else { /* this rank alone: the others may be waiting for it in a collective */
            fprintf(stderr, "%s: rank %d of %d: error: %s\n", t.prog, t.rank, t.ranks, t.err);
            comm->abort(comm, 1);
        }
    }
    netrt_dist_free(t.dist);
    if (t.shard != t.order) free(t.shard);
    netrt_bg_free(t.bg); /* first: it may be gathering from the data */
    dataset_free(&t.train);
    dataset_free(&t.test);
    free(t.order);
    free(t.stage_x);
    free(t.stage_y);
    free(t.aug_scratch);
    free(t.train_ids);
    free(t.val_ids);
    netrt_early_stop_free(&t.early);
    netrt_monitor_free(t.mon);
    free(t.shown);
    if (m->infer->fini) m->infer->fini();
    return rc < 0 ? 1 : 0;
}

/* ---- debugging views (netrt_debug.h; docs/training.md, "Debugging views") ---------- */

/* A directory for a view's files: made if missing (not its parents). */
static int want_dir(trainer *t, const char *flag, const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT && mkdir(dir, 0777) != 0)
        return netrt_errorf(t->err, sizeof t->err, "%s %s: cannot make the directory: %s", flag, dir, strerror(errno));
    if (stat(dir, &st) != 0) return netrt_errorf(t->err, sizeof t->err, "%s %s: %s", flag, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return netrt_errorf(t->err, sizeof t->err, "%s %s: not a directory", flag, dir);
    return 0;
}

static int parse_debug_opt(trainer *t, int o, const char *flag, const char *val, int argc, char **argv, int *i) {
    switch (o) {
    case O_MONITOR: t->monitor_dir = val; return 0;
    case O_MONITOR_EVERY: return netrt_opt_int(flag, val, 1, &t->monitor_every, t->err, sizeof t->err);
    case O_OVERFIT: return netrt_opt_int(flag, val, 1, &t->overfit, t->err, sizeof t->err);
    case O_RANDOM_INPUTS: t->random_inputs = true; return 0;
    case O_INIT_CALIBRATE: return netrt_opt_int(flag, val, 1, &t->calibrate_k, t->err, sizeof t->err);
    case O_SHOW_INPUTS: case O_WORST: { /* DIR K: the count is the next argument */
        if (*i + 1 >= argc || argv[*i + 1][0] == '-')
            return netrt_errorf(t->err, sizeof t->err, "%s needs a directory and a count: %s DIR K", flag, flag);
        int64_t *k = o == O_SHOW_INPUTS ? &t->show_k : &t->worst_k;
        if (o == O_SHOW_INPUTS)
            t->show_dir = val;
        else
            t->worst_dir = val;
        return netrt_opt_int(flag, argv[++*i], 1, k, t->err, sizeof t->err);
    }
    }
    return 0;
}

/* The per-sample image shape of the input: c, h, w; false if it is not an image. */
static bool input_image(const trainer *t, int64_t *c, int64_t *h, int64_t *w) {
    const netrt_tensor *x = &t->in->inputs[0];
    if (x->rank == 4) {
        *c = x->shape[1], *h = x->shape[2], *w = x->shape[3];
        return true;
    }
    if (x->rank == 3) {
        *c = 1, *h = x->shape[1], *w = x->shape[2];
        return true;
    }
    return false;
}

static int check_debug_opts(trainer *t) {
    int64_t c, h, w;
    if (t->monitor_every && !t->monitor_dir)
        return netrt_errorf(t->err, sizeof t->err, "--monitor-every needs --monitor DIR");
    if (!t->monitor_every) t->monitor_every = 10;
    if ((t->monitor_dir && want_dir(t, "--monitor", t->monitor_dir) < 0) ||
        (t->show_dir && want_dir(t, "--show-inputs", t->show_dir) < 0) ||
        (t->worst_dir && want_dir(t, "--worst", t->worst_dir) < 0))
        return -1;
    if ((t->show_dir || t->worst_dir) && !input_image(t, &c, &h, &w))
        return netrt_errorf(t->err, sizeof t->err, "%s needs an image input [C, H, W] or [H, W]; '%s' is not one",
                            t->show_dir ? "--show-inputs" : "--worst", t->in->inputs[0].name);
    bool classes = t->loss == NETRT_LOSS_CROSS_ENTROPY && t->lper == 1;
    if ((t->worst_dir || t->random_inputs) && !classes)
        return netrt_errorf(t->err, sizeof t->err, "%s needs class scores per sample (a cross-entropy loss)",
                            t->worst_dir ? "--worst" : "--random-inputs");
    if (t->grads_out && (t->monitor_dir || t->overfit || t->show_dir || t->worst_dir || t->calibrate_k || t->random_inputs))
        return netrt_errorf(t->err, sizeof t->err, "--grads-out cannot be combined with the debugging views");
    if (t->overfit) {
        if (t->limit || t->resume || t->worst_dir || t->augment.on || t->val_split > 0)
            return netrt_errorf(t->err, sizeof t->err, "--overfit N chooses the images itself: drop %s",
                                t->limit ? "--limit" : t->resume ? "--resume" : t->worst_dir ? "--worst (there is no test set)"
                                : t->augment.on ? "--augment (the N images must stay fixed)" : "--val-split");
        t->limit = t->overfit;
        t->shuffle = false;
        if (!t->epochs_given) t->epochs = 100;
    }
    return 0;
}

/* --show-inputs: the first show_k samples of the batches fed to grad(),
 * taken from the model's input once the batch is complete. */
static void show_inputs_add(trainer *t, int64_t nb) {
    if (t->nshown >= t->show_k) return;
    if (!t->shown && !(t->shown = malloc((size_t)(t->show_k * t->per) * sizeof(float)))) return;
    int64_t n = t->show_k - t->nshown < nb ? t->show_k - t->nshown : nb;
    memcpy(t->shown + t->nshown * t->per, t->in->inputs[0].data, (size_t)(n * t->per) * sizeof(float));
    t->nshown += n;
}

static char *join_path(trainer *t, const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) netrt_errorf(t->err, sizeof t->err, "out of memory");
    else snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int show_inputs_write(trainer *t) {
    int64_t c = 1, h = 1, w = 1; /* check_debug_opts made sure the input is an image */
    input_image(t, &c, &h, &w);
    if (t->nshown == 0) return netrt_errorf(t->err, sizeof t->err, "--show-inputs: no training batch was fed");
    char *path = join_path(t, t->show_dir, "inputs.png");
    if (!path) return -1;
    float lo = t->shown[0], hi = t->shown[0];
    for (int64_t i = 0; i < t->nshown * t->per; i++) {
        lo = t->shown[i] < lo ? t->shown[i] : lo;
        hi = t->shown[i] > hi ? t->shown[i] : hi;
    }
    int rc = netrt_png_sheet(path, t->shown, t->nshown, c, h, w, NULL, t->err, sizeof t->err);
    if (rc == 0)
        printf("show-inputs: wrote the first %lld training images as the net sees them to %s (values %g to %g "
               "as 0 to 255)\n", (long long)t->nshown, path, (double)lo, (double)hi);
    free(path);
    t->nshown = t->show_k + 1; /* written */
    return rc;
}

/* --init-calibrate: batch b of the first K batches in file order. */
static int64_t calibrate_load(void *ctx, int64_t b) {
    trainer *t = ctx;
    int64_t N = t->in->batch, S = t->train.count, first = (b * N) % S;
    int64_t nb = S - first < N ? S - first : N;
    load_batch(t, &t->train, NULL, first, nb, true);
    return nb;
}

/* The softmax of n scores, in double, into p. */
static void softmax_d(const float *z, int64_t n, double *p) {
    double mx = z[0], sum = 0;
    for (int64_t k = 1; k < n; k++) mx = z[k] > mx ? z[k] : mx;
    for (int64_t k = 0; k < n; k++) sum += p[k] = exp((double)z[k] - mx);
    for (int64_t k = 0; k < n; k++) p[k] /= sum;
}

/* --random-inputs: R images of Gaussian noise with the training images'
 * mean and standard deviation through the eval-mode net; the mean softmax
 * against the training labels' class frequencies. */
#define RANDOM_INPUTS 1024
static int random_inputs(trainer *t) {
    const netrt_model *in = t->in;
    int64_t K = t->classes, N = in->batch, S = t->train.count;
    double sum = 0, sq = 0, *p = calloc((size_t)K, sizeof *p), *mean = calloc((size_t)K, sizeof *mean),
           *freq = calloc((size_t)K, sizeof *freq);
    float *row = malloc((size_t)t->per * sizeof *row);
    if (!p || !mean || !freq || !row) {
        free(p), free(mean), free(freq), free(row);
        return netrt_errorf(t->err, sizeof t->err, "out of memory");
    }
    for (int64_t s = 0; s < S; s++) {
        netrt_array_to_f32(&t->train.images, t->per, s, 1, row);
        for (int64_t i = 0; i < t->per; i++) sum += row[i], sq += (double)row[i] * row[i];
        float y;
        labels_to_f32(&t->train.labels, 1, s, &y);
        if (y >= 0 && y < K) freq[(int64_t)y] += 1.0 / (double)S;
    }
    double mu = sum / ((double)S * t->per), sd = sqrt(fmax(sq / ((double)S * t->per) - mu * mu, 0));
    netrt_rng rng;
    netrt_rng_seed(&rng, t->seed + 2); /* apart from the initialization's and the shuffling's */
    if (in->prepare) in->prepare();
    for (int64_t s0 = 0; s0 < RANDOM_INPUTS; s0 += N) {
        int64_t nb = RANDOM_INPUTS - s0 < N ? RANDOM_INPUTS - s0 : N;
        for (int64_t i = 0; i < nb * t->per; i++) in->inputs[0].data[i] = (float)(mu + sd * netrt_rng_normal(&rng));
        t->m->set_batch((int)nb);
        in->run();
        for (int64_t r = 0; r < nb; r++) {
            softmax_d(in->outputs[0].data + r * K, K, p);
            for (int64_t k = 0; k < K; k++) mean[k] += p[k] / RANDOM_INPUTS;
        }
    }
    printf("random-inputs: %d images of Gaussian noise (the training images' mean %.4g and std %.4g), eval mode\n"
           "random-inputs: class  mean softmax on noise  training label frequency\n", RANDOM_INPUTS, mu, sd);
    double tv = 0;
    for (int64_t k = 0; k < K; k++) {
        printf("random-inputs: %5lld  %20.4f  %24.4f\n", (long long)k, mean[k], freq[k]);
        tv += 0.5 * fabs(mean[k] - freq[k]);
    }
    printf("random-inputs: total variation distance %.4f: %s\n", tv,
           tv < 0.1 ? "on noise the net predicts about the class frequencies (as it should at the start)"
                    : "on noise the net does NOT predict the class frequencies (its output biases do not reflect them)");
    fflush(stdout);
    free(p), free(mean), free(freq), free(row);
    return numerics_failed(t);
}

static int debug_before_training(trainer *t) {
    if (t->worst_dir && !t->has_test)
        return netrt_errorf(t->err, sizeof t->err, "--worst needs a test set (--data, or --test-images and --test-labels)");
    if (t->calibrate_k) {
        if (netrt_calibrate(t->m, t->calibrate_k, calibrate_load, t, stdout, t->err, sizeof t->err) < 0) return -1;
        if (numerics_failed(t) < 0) return -1;
    }
    if (t->random_inputs && random_inputs(t) < 0) return -1;
    if (t->monitor_dir && !(t->mon = netrt_monitor_new(t->m, t->monitor_dir, t->monitor_every, t->err, sizeof t->err)))
        return -1;
    return 0;
}

/* --overfit: the loss and accuracy of the eval-mode net on the N images. */
static int overfit_check(trainer *t, int64_t e) {
    const netrt_model *in = t->in;
    netrt_metrics mt;
    if (netrt_metrics_init(&mt, t->m, false) < 0) return netrt_errorf(t->err, sizeof t->err, "out of memory");
    if (in->prepare) in->prepare();
    for (int64_t s0 = 0; s0 < t->train.count; s0 += in->batch) {
        int64_t nb = t->train.count - s0 < in->batch ? t->train.count - s0 : in->batch;
        load_batch(t, &t->train, NULL, s0, nb, true);
        in->run();
        netrt_metrics_add(&mt, in->outputs[0].data, t->m->labels->data, nb, true);
    }
    double acc = netrt_metrics_accuracy(&mt);
    bool all = mt.correct == mt.counted;
    printf("overfit: epoch %lld: loss %.4f, accuracy %.2f%% on the %lld training images (eval mode)\n", (long long)e,
           netrt_metrics_loss(&mt), acc, (long long)t->train.count);
    netrt_metrics_free(&mt);
    if (acc > t->overfit_best) t->overfit_best = acc;
    if (numerics_failed(t) < 0) return -1;
    if (!all) return 0;
    t->overfit_epoch = e;
    return 1;
}

/* After epoch e: the views' files; 1 to stop training (--overfit reached 100%). */
static int debug_epoch_end(trainer *t, int64_t e) {
    if (t->show_dir && t->nshown <= t->show_k && show_inputs_write(t) < 0) return -1;
    if (t->mon && netrt_monitor_write(t->mon, t->err, sizeof t->err) < 0) return -1;
    return t->overfit ? overfit_check(t, e) : 0;
}

typedef struct {
    int64_t index, label, pred;
    double loss, p_pred;
} worst_row;

/* --worst: the K test images of highest loss (eval mode), as a sheet
 * captioned "T<true> P<predicted> <probability>%" and a CSV beside it. */
static int worst_write(trainer *t) {
    const netrt_model *in = t->in;
    const dataset *d = &t->test;
    int64_t K = t->classes, N = in->batch, W = t->worst_k < d->count ? t->worst_k : d->count;
    worst_row *rows = calloc((size_t)W, sizeof *rows);
    double *p = malloc((size_t)K * sizeof *p);
    float *imgs = malloc((size_t)(W * t->per) * sizeof *imgs);
    char **caps = calloc((size_t)W, sizeof *caps);
    char *png = join_path(t, t->worst_dir, "worst.png"), *csv = join_path(t, t->worst_dir, "worst.csv"), *tmp;
    int rc = -1, n = 0;
    if (!rows || !p || !imgs || !caps || !png || !csv) {
        netrt_errorf(t->err, sizeof t->err, "out of memory");
        goto done;
    }
    if (in->prepare) in->prepare();
    for (int64_t s0 = 0; s0 < d->count; s0 += N) {
        int64_t nb = d->count - s0 < N ? d->count - s0 : N;
        load_batch(t, d, NULL, s0, nb, true);
        in->run();
        if (numerics_failed(t) < 0) goto done;
        for (int64_t r = 0; r < nb; r++) {
            softmax_d(in->outputs[0].data + r * K, K, p);
            int64_t y = (int64_t)t->m->labels->data[r], pred = 0;
            for (int64_t k = 1; k < K; k++) pred = p[k] > p[pred] ? k : pred;
            if (y < 0 || y >= K) continue; /* the ignored label */
            worst_row w = {s0 + r, y, pred, -log(fmax(p[y], 1e-300)), p[pred]};
            /* insertion into the rows kept, highest loss first (ties: the earlier image) */
            int at = n;
            while (at > 0 && rows[at - 1].loss < w.loss) at--;
            if (at >= W) continue;
            int last = n < W ? n : (int)W - 1;
            memmove(rows + at + 1, rows + at, (size_t)(last - at) * sizeof *rows);
            rows[at] = w;
            if (n < W) n++;
        }
    }
    for (int j = 0; j < n; j++) {
        netrt_array_to_f32(&d->images, t->per, rows[j].index, 1, imgs + j * t->per);
        if (!(caps[j] = malloc(32))) goto done;
        snprintf(caps[j], 32, "T%lld P%lld %d%%", (long long)rows[j].label, (long long)rows[j].pred,
                 (int)lround(100 * rows[j].p_pred));
    }
    int64_t c = 1, h = 1, w = 1; /* check_debug_opts made sure the input is an image */
    input_image(t, &c, &h, &w);
    if (netrt_png_sheet(png, imgs, n, c, h, w, (const char *const *)caps, t->err, sizeof t->err) < 0) goto done;
    FILE *f = netrt_atomic_open(csv, &tmp, t->err, sizeof t->err);
    if (!f) goto done;
    fputs("rank,test_index,true,predicted,p_predicted,loss\n", f);
    for (int j = 0; j < n; j++)
        fprintf(f, "%d,%lld,%lld,%lld,%.6f,%.6f\n", j + 1, (long long)rows[j].index, (long long)rows[j].label,
                (long long)rows[j].pred, rows[j].p_pred, rows[j].loss);
    if (netrt_atomic_close(f, tmp, csv, !ferror(f), t->err, sizeof t->err) < 0) goto done;
    printf("worst: the %d test images of highest loss to %s (captions: T true class, P predicted, its "
           "probability) and %s\n", n, png, csv);
    for (int j = 0; j < n && j < 5; j++)
        printf("worst: %d. test image %lld: true %lld, predicted %lld with p %.3f, loss %.3f\n", j + 1,
               (long long)rows[j].index, (long long)rows[j].label, (long long)rows[j].pred, rows[j].p_pred, rows[j].loss);
    rc = 0;
done:
    for (int j = 0; caps && j < W; j++) free(caps[j]);
    free(caps), free(rows), free(p), free(imgs), free(png), free(csv);
    return rc;
}

static int debug_after_training(trainer *t) {
    if (t->overfit) {
        if (t->overfit_epoch)
            printf("overfit: PASSED: 100%% training accuracy on %lld images after %lld epoch%s\n",
                   (long long)t->train.count, (long long)t->overfit_epoch, t->overfit_epoch == 1 ? "" : "s");
        else
            printf("overfit: FAILED: %lld images not fitted in %lld epochs (best accuracy %.2f%%): look for a bug in "
                   "the model, the data or the optimizer, or change --lr\n",
                   (long long)t->train.count, (long long)t->epochs, t->overfit_best);
    }
    if (t->mon) {
        if (netrt_monitor_write(t->mon, t->err, sizeof t->err) < 0) return -1;
        printf("monitor: wrote %s/monitor.csv, monitor_hist.csv and monitor.html\n", t->monitor_dir);
    }
    if (t->show_dir && t->nshown <= t->show_k && show_inputs_write(t) < 0) return -1;
    if (t->worst_dir && worst_write(t) < 0) return -1;
    fflush(stdout);
    return 0;
}
