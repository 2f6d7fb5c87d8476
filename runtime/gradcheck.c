/* The gradient check (netc gradcheck): the gradients that the emitted
 * backward code computes, compared with central finite differences of the
 * loss along random directions, per parameter tensor and for the input.
 *
 * For a tensor t with gradient g and a random gaussian direction u (scaled
 * to an RMS of 1, so that g . u is about |g|), the analytic derivative along
 * u is g . u, accumulated in double over the steps actually taken (t + s u
 * rounded to the element type), and the numeric one is the central
 * difference (L(t + s u) - L(t - s u)) / 2s, each element moving by about
 * s = eps * RMS(t) (eps alone for a tensor of zeros).
 *
 * Precision.  netc gradcheck compiles the program in double precision
 * (netrt_model.real_bytes 8), as finite differences need: there the loss
 * carries rounding errors of about 1e-16 of itself, so a step of eps = 1e-6
 * leaves both the rounding error (~1e-16 / 1e-6) and the truncation error
 * (~eps^2) far below 1e-6 of the gradient.  The default threshold is 1e-5:
 * over the tests' nets (every op's, LeNet-5, the BN + ReLU residual and VGG
 * nets, the kink net; batch 2 and 3, seeds 1 to 10: 680 runs) the error
 * beyond the noise allowance was at most 2.8e-10 and the raw error at most
 * 3.6e-7 (a batchnorm over 2 samples, whose gradient is nearly zero; the
 * kink net's tensors before its batchnorm, whose gradients are 1e-8 of the
 * others, sit within their noise allowance at up to 1e-4); the float
 * literals a double build keeps (gelu's 1/sqrt(2) as 0.70710678f) are off by
 * about 1e-8.  A wrong rule (a sign, a missing term) is off by 1e-2 to 1.
 * A float32 program (gradcheck --float, or a model whose real_bytes is
 * 0 or 4) is checked as before this existed: eps 1e-3, threshold 1e-2, and
 * three steps h, h/4 and h/16 of which the best counts.  Either way the
 * loss's rounding noise is measured (the RMS change of the loss when every
 * element moves by one ulp, beyond what the gradient predicts) and an error
 * within 4 times that noise / s is not counted, so that a gradient that is
 * zero in exact arithmetic (the bias of a conv followed by batchnorm) is no
 * false alarm.  The relative error divides by max(|numeric|, |analytic|,
 * |g|): by the gradient's norm, not by g . u alone, which a random
 * direction can make arbitrarily small.
 *
 * Kinks.  Relu and maxpool are not differentiable where a relu input is 0
 * or two pooled inputs tie.  A step that carries one across makes the
 * central difference disagree with the gradient however right it is: the
 * loss along u is then two lines meeting inside [-s, s], and the central
 * difference is off by half the change of slope.  Two signs tell such a
 * step from a wrong gradient, which shows neither: the central differences
 * at s and s/2 disagree (the kink lies between the two steps), or the
 * one-sided slopes, right (L(t + s u) - L0) / s and left (L0 - L(t - s u))
 * / s with L0 = L(t), differ by enough to explain half the error or more
 * (a kink nearer t than both steps; where the loss is smooth they differ
 * by s times the curvature only).  An error above the threshold with either
 * sign is a kink: the same direction is tried with steps 16 and 256 times
 * shorter (a kink at distance x is not crossed by a step shorter than x),
 * and if those cross kinks too, another direction is drawn, at most
 * KINK_REDRAWS times per tensor.  The report's kinks column counts the
 * steps that crossed a kink; a tensor left with no direction that crossed
 * none is reported apart (status "kink"), not as a failure.  What this
 * cannot handle: a net whose relu inputs sit within the shortest step of
 * zero by the dozen (tests/gradcheck/kinks.net with its batchnorm weight at
 * 1e-12), where a step crosses many kinks whose effects can hide each
 * other; such tensors mostly show as "kink", and a wrong gradient there may
 * too.
 *
 * Batchnorm in training mode makes the loss depend on the whole batch; that
 * is what is differentiated.  Per tensor the worst direction is reported:
 * the raw relative error, the noise allowance and the error beyond it
 * (which decides), and the steps that crossed kinks; the exit status is 1 if one
 * tensor's error is above the threshold. */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

enum { O_SEED, O_SEEDS, O_EPS, O_THRESHOLD, O_BATCH, O_DIRECTIONS, O_CHECK_NUMERICS, O_THREADS, O_HELP, O_COUNT };

static const netrt_opt gc_opts[O_COUNT] = {
    [O_SEED] = {"--seed", true},           [O_SEEDS] = {"--seeds", true},
    [O_EPS] = {"--eps", true},
    [O_THRESHOLD] = {"--threshold", true}, [O_BATCH] = {"--batch-size", true},
    [O_DIRECTIONS] = {"--directions", true}, [O_CHECK_NUMERICS] = {"--check-numerics", false},
    [O_THREADS] = {"--threads", true},       [O_HELP] = {"--help", false},
};

/* Directions redrawn per tensor, at most, because they crossed a kink. */
enum { KINK_REDRAWS = 12 };

/* One checked tensor: a parameter, or the active rows of an input. */
typedef struct {
    char name[160];
    int rank;
    int64_t shape[NETRT_MAX_RANK];
    void *data; /* the model's: floats, or doubles in a double build */
    int64_t n;
    double *g;    /* a copy of its gradient */
    double *orig; /* a copy of its values */
    double gnorm, worst; /* worst: the error beyond the noise allowance, which decides */
    double raw, noise;   /* at the worst direction: the raw relative error and the allowance */
    int kinks;           /* steps that crossed a kink (then shorter, or another direction) */
    int redraws;         /* directions drawn again because every step crossed a kink */
    int smooth;          /* directions that counted */
} item;

typedef struct {
    const netrt_train_model *m;
    const netrt_model *in;
    const char *prog;
    bool f64; /* the model's buffers hold doubles (netrt_model.real_bytes) */
    int64_t seed, seeds, batch, directions;
    double eps, threshold, loss0, noise;
    bool help, check_numerics;
    item *items;
    int nitems;
    double *dir; /* one direction */
    char err[1024];
} gcheck;

/* Element k of a buffer of the model's element type. */
static double get(const gcheck *c, const void *p, int64_t k) {
    return c->f64 ? ((const double *)p)[k] : (double)((const float *)p)[k];
}

/* Stores v rounded to the element type; returns what was stored. */
static double set(const gcheck *c, void *p, int64_t k, double v) {
    if (c->f64) return ((double *)p)[k] = v;
    return ((float *)p)[k] = (float)v;
}

static void restore(const gcheck *c, item *it) {
    for (int64_t k = 0; k < it->n; k++) set(c, it->data, k, it->orig[k]);
}

static void usage(const gcheck *c, FILE *out) {
    fprintf(out,
            "usage: %s [--seed S] [--seeds N] [--eps E] [--threshold T] [--batch-size N] [--directions K]\n"
            "          [--check-numerics] [--threads N]\n\n"
            "Checks the gradients of the network '%s' (compiled from %s, batch %d, in %s)\n"
            "against central finite differences of the loss along K random directions per tensor,\n"
            "on random inputs in [0, 1) and random labels, with parameters initialized from S.\n"
            "A direction whose step crosses a kink (relu, maxpool) is drawn again.\n\n"
            "  --seed S          initialization, data and directions (default 1)\n"
            "  --seeds N         check N times, with seeds S to S + N - 1 (default 1)\n"
            "  --eps E           a step moves each element by about E times the tensor's RMS\n"
            "                    (default %g%s)\n"
            "  --threshold T     the largest relative error that passes (default %g)\n"
            "  --batch-size N    the active batch, 1 to %d (default %d)\n"
            "  --directions K    random directions per tensor (default 3)\n"
            "  --check-numerics  stop at the first op that computes a NaN or an Inf\n"
            "  --threads N       threads the kernels split their work across (default: all cores)\n"
            "  --help            this message\n",
            c->prog, c->in->name ? c->in->name : "?", c->in->source ? c->in->source : "?", c->in->batch,
            c->f64 ? "double precision" : "float32", c->f64 ? 1e-6 : 1e-3, c->f64 ? "" : "; E/4 and E/16 are tried too",
            c->f64 ? 1e-5 : 1e-2, c->in->batch, c->in->batch);
}

static int parse_args(gcheck *c, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int o, rc = 0;
        const char *val;
        if (netrt_opt_next(argc, argv, &i, gc_opts, O_COUNT, &o, &val, c->err, sizeof c->err) < 0)
            return -1;
        const char *flag = gc_opts[o].name;
        switch (o) {
        case O_SEED: rc = netrt_opt_int(flag, val, 0, &c->seed, c->err, sizeof c->err); break;
        case O_SEEDS: rc = netrt_opt_int(flag, val, 1, &c->seeds, c->err, sizeof c->err); break;
        case O_EPS: rc = netrt_opt_double(flag, val, 0, &c->eps, c->err, sizeof c->err); break;
        case O_THRESHOLD:
            rc = netrt_opt_double(flag, val, 0, &c->threshold, c->err, sizeof c->err);
            break;
        case O_BATCH: rc = netrt_opt_int(flag, val, 1, &c->batch, c->err, sizeof c->err); break;
        case O_DIRECTIONS:
            rc = netrt_opt_int(flag, val, 1, &c->directions, c->err, sizeof c->err);
            break;
        case O_CHECK_NUMERICS: c->check_numerics = true; break;
        case O_THREADS: rc = netrt_opt_threads(flag, val, c->err, sizeof c->err); break;
        case O_HELP: c->help = true; break;
        }
        if (rc < 0) return -1;
    }
    if (c->eps <= 0) return netrt_errorf(c->err, sizeof c->err, "--eps must be positive");
    if (c->batch > c->in->batch)
        return netrt_errorf(c->err, sizeof c->err,
                            "--batch-size %lld is larger than the compiled batch %d",
                            (long long)c->batch, c->in->batch);
    return 0;
}

/* grad() with the masks of step 1 (dropout) every time. */
static void grad_fixed(const gcheck *c) {
    if (c->m->step) *c->m->step = 0;
    c->m->grad();
}

static double loss_now(const gcheck *c) {
    grad_fixed(c);
    return get(c, c->m->loss->data, 0);
}

/* Parameters from the seed (as the trainer and `netc init`, in float32,
 * widened in a double build), random inputs in [0, 1) and labels in
 * [0, K), then grad() and a copy of every gradient. */
static int setup(gcheck *c) {
    const netrt_train_model *m = c->m;
    const netrt_model *in = c->in;
    const netrt_tensor *lg = m->train_logits;
    int64_t K = lg->shape[lg->rank - 1], nb = c->batch;
    netrt_rng rng;
    netrt_rng_seed(&rng, (uint64_t)c->seed);
    for (int i = 0; i < in->nparams; i++) {
        const netrt_tensor *p = &in->params[i];
        int64_t n = netrt_numel(p->rank, p->shape);
        if (!c->f64) {
            netrt_init_param(&m->inits[i], &rng, p->data, n);
            continue;
        }
        float *tmp = malloc((size_t)n * sizeof *tmp + 1);
        if (!tmp) return netrt_errorf(c->err, sizeof c->err, "out of memory");
        netrt_init_param(&m->inits[i], &rng, tmp, n);
        for (int64_t k = 0; k < n; k++) set(c, p->data, k, tmp[k]);
        free(tmp);
    }
    if (in->prepare) in->prepare();
    if (m->reset_state) m->reset_state();
    netrt_rng_seed(&rng, (uint64_t)c->seed + 1);
    for (int j = 0; j < in->ninputs; j++) {
        const netrt_tensor *x = &in->inputs[j];
        int64_t per = netrt_numel(x->rank - 1, x->shape + 1), N = x->shape[0];
        for (int64_t k = 0; k < N * per; k++)
            set(c, x->data, k, k < nb * per ? (double)(float)netrt_rng_uniform(&rng) : 0.0);
    }
    for (int64_t r = 0; r < in->batch; r++)
        set(c, m->labels->data, r, r < nb ? (double)netrt_rng_below(&rng, (uint64_t)K) : 0.0);
    m->set_batch((int)nb);
    netrt_numerics_batch("sample", NULL, 0, nb);
    double loss = c->loss0 = loss_now(c);
    if (netrt_numerics_error()) return netrt_errorf(c->err, sizeof c->err, "%s", netrt_numerics_error());
    if (!isfinite(loss))
        return netrt_errorf(c->err, sizeof c->err, "the loss of the random batch is %g", loss);

    c->items = calloc((size_t)(in->nparams + in->ninputs) + 1, sizeof *c->items);
    if (!c->items) return netrt_errorf(c->err, sizeof c->err, "out of memory");
    int64_t largest = 1;
    for (int i = 0; i < in->nparams + in->ninputs; i++) {
        bool is_param = i < in->nparams;
        const netrt_tensor *v = is_param ? &in->params[i] : &in->inputs[i - in->nparams];
        const netrt_tensor *g = is_param         ? &m->grads[i]
                                : m->input_grads ? &m->input_grads[i - in->nparams]
                                                 : NULL;
        if (!g || !g->data || !v->data) continue;
        item *it = &c->items[c->nitems++];
        snprintf(it->name, sizeof it->name, "%s%s", v->name, is_param ? "" : " (input)");
        it->rank = v->rank;
        memcpy(it->shape, v->shape, sizeof it->shape);
        if (!is_param) it->shape[0] = nb; /* only the active rows */
        it->n = netrt_numel(it->rank, it->shape);
        it->data = v->data;
        it->g = malloc((size_t)it->n * sizeof *it->g + 1);
        it->orig = malloc((size_t)it->n * sizeof *it->orig + 1);
        if (!it->g || !it->orig) return netrt_errorf(c->err, sizeof c->err, "out of memory");
        double s = 0;
        for (int64_t k = 0; k < it->n; k++) {
            it->g[k] = get(c, g->data, k);
            it->orig[k] = get(c, v->data, k);
            s += it->g[k] * it->g[k];
        }
        it->gnorm = sqrt(s);
        if (it->n > largest) largest = it->n;
    }
    if (!(c->dir = malloc((size_t)largest * sizeof *c->dir)))
        return netrt_errorf(c->err, sizeof c->err, "out of memory");
    return 0;
}

/* The rounding noise of the loss: the RMS, over a few tries, of the change
 * of the loss when every element of every checked tensor moves by one ulp
 * of the element type (random signs), less the change the gradient
 * predicts.  At least half an ulp of the loss. */
static double loss_noise(gcheck *c, netrt_rng *rng) {
    enum { TRIES = 8 };
    double sum = 0;
    for (int k = 0; k < TRIES; k++) {
        double pred = 0;
        for (int i = 0; i < c->nitems; i++) {
            item *it = &c->items[i];
            for (int64_t j = 0; j < it->n; j++) {
                double v = it->orig[j], to = netrt_rng_next(rng) >> 63 ? INFINITY : -INFINITY;
                double w = c->f64 ? nextafter(v, to) : (double)nextafterf((float)v, (float)to);
                pred += it->g[j] * (set(c, it->data, j, w) - v);
            }
        }
        double d = loss_now(c) - c->loss0 - pred;
        sum += d * d;
        for (int i = 0; i < c->nitems; i++) restore(c, &c->items[i]);
    }
    double l0 = fabs(c->loss0);
    double half_ulp = (c->f64 ? nextafter(l0, INFINITY) - l0 : (double)nextafterf((float)l0, INFINITY) - (float)l0) / 2;
    return fmax(sqrt(sum / TRIES), half_ulp);
}

/* One step s along dir (t restored after): the central difference, and in
 * *ana the analytic derivative over the steps actually taken, in *kink the
 * difference of the right and the left slope (L0 the unperturbed loss). */
static double central(gcheck *c, item *it, double s, double *ana, double *kink) {
    double a = 0;
    for (int64_t k = 0; k < it->n; k++)
        a += it->g[k] * (set(c, it->data, k, it->orig[k] + s * c->dir[k]) - it->orig[k]);
    double lp = loss_now(c);
    for (int64_t k = 0; k < it->n; k++)
        a -= it->g[k] * (set(c, it->data, k, it->orig[k] - s * c->dir[k]) - it->orig[k]);
    double lm = loss_now(c);
    restore(c, it);
    *ana = a / (2 * s);
    *kink = ((lp - c->loss0) - (c->loss0 - lm)) / s;
    return (lp - lm) / (2 * s);
}

/* A random gaussian direction, scaled to an RMS of 1. */
static void draw_direction(gcheck *c, int64_t n, netrt_rng *rng) {
    double norm = 0;
    for (int64_t k = 0; k < n; k++) {
        c->dir[k] = netrt_rng_normal(rng);
        norm += c->dir[k] * c->dir[k];
    }
    norm = sqrt(norm / (double)n);
    for (int64_t k = 0; k < n; k++) c->dir[k] /= norm;
}

/* One step's comparison, in relative terms: the raw error, the part of it
 * that the loss's rounding noise can explain, and the error beyond that. */
typedef struct {
    double num, ana, kink; /* central difference, analytic, right minus left slope */
    double raw, noise, rel;
} step;

static step take_step(gcheck *c, item *it, double s) {
    step t;
    t.num = central(c, it, s, &t.ana, &t.kink);
    double scale = fmax(fmax(fmax(fabs(t.num), fabs(t.ana)), it->gnorm), DBL_MIN);
    t.raw = fabs(t.num - t.ana) / scale;
    t.noise = 4 * c->noise / s / scale;
    if (isnan(t.raw)) t.raw = INFINITY;
    t.rel = fmax(0.0, t.raw - t.noise);
    return t;
}

/* One direction of a float32 program: the steps h, h/4 and h/16, the one
 * with the least error beyond the noise deciding (a kink is rarely crossed
 * at all three, while a wrong gradient disagrees at every step). */
static step direction_f32(gcheck *c, item *it, double h) {
    step best = {.rel = INFINITY};
    for (int k = 0; k < 3; k++, h /= 4) {
        step t = take_step(c, it, h);
        if (t.rel < best.rel || k == 0) best = t;
    }
    return best;
}

/* One direction of a double program at step h: the steps h and h/2, the
 * worse deciding; *kinked when an error above the threshold comes from a
 * kink: the two central differences disagree (the step crossed what the
 * half step did not, or more of it), or half the difference of the
 * one-sided slopes explains at least half the error (a kink very near t,
 * crossed by both: it explains all of it, less what curvature and other
 * kinks add; a wrong gradient leaves the slopes alone). */
static step pair_f64(gcheck *c, item *it, double h, bool *kinked) {
    step a = take_step(c, it, h), b = take_step(c, it, h / 2);
    step w = b.rel > a.rel ? b : a;
    *kinked = false;
    if (w.rel > c->threshold) {
        double scale = fmax(fmax(fmax(fabs(a.num), fabs(b.num)), fmax(fabs(a.ana), fabs(b.ana))), it->gnorm);
        double disagree = fabs(a.num - b.num) / fmax(scale, DBL_MIN) - a.noise - b.noise;
        double slopes = fabs(a.kink) / fmax(scale, DBL_MIN) / 2 + a.noise;
        *kinked = disagree > c->threshold || slopes >= a.rel / 2;
    }
    return w;
}

/* One direction of a double program: the pair of steps at h, and where it
 * crossed a kink at h/16 and h/256 (a kink at distance x from t is not
 * crossed by a step shorter than x, and a step crosses several kinks, which
 * can hide each other from the tests above, far more rarely when short);
 * *kinked if all three did. */
static step direction_f64(gcheck *c, item *it, double h, bool *kinked) {
    step t = {0};
    for (int k = 0; k < 3; k++, h /= 16) {
        t = pair_f64(c, it, h, kinked);
        if (!*kinked) break;
        it->kinks++;
    }
    return t;
}

/* The worst relative error of one tensor over the random directions. */
static void check_item(gcheck *c, item *it, netrt_rng *rng) {
    int64_t n = it->n;
    double ss = 0;
    for (int64_t k = 0; k < n; k++) ss += it->orig[k] * it->orig[k];
    double rms = sqrt(ss / (double)n);
    double h = c->eps * (rms > 0 ? rms : 1.0);
    it->worst = 0;
    for (int64_t d = 0; d < c->directions; d++) {
        draw_direction(c, n, rng);
        bool kinked = false;
        step t = c->f64 ? direction_f64(c, it, h, &kinked) : direction_f32(c, it, h);
        if (kinked) { /* another direction, a bounded number of times */
            if (it->redraws++ < KINK_REDRAWS) d--;
            continue;
        }
        if (t.rel > it->worst || it->smooth == 0) {
            it->raw = t.raw;
            it->noise = t.noise;
        }
        it->smooth++;
        if (t.rel > it->worst) it->worst = t.rel;
    }
}

static int report(const gcheck *c) {
    int w = (int)strlen("tensor"), fails = 0, kinked = 0;
    for (int i = 0; i < c->nitems; i++)
        if ((int)strlen(c->items[i].name) > w) w = (int)strlen(c->items[i].name);
    printf("%-*s  %-18s  %-10s  %-10s  %-10s  %-10s  %-5s\n", w, "tensor", "shape", "|grad|", "rel. error", "noise",
           "beyond", "kinks");
    for (int i = 0; i < c->nitems; i++) {
        const item *it = &c->items[i];
        char sh[160];
        bool smooth = it->smooth > 0, ok = it->worst <= c->threshold;
        fails += !ok;
        kinked += !smooth;
        if (smooth)
            printf("%-*s  %-18s  %-10.3e  %-10.2e  %-10.2e  %-10.2e  %-5d  %s\n", w, it->name,
                   netrt_shape_str(it->rank, it->shape, sh, sizeof sh), it->gnorm, it->raw, it->noise, it->worst,
                   it->kinks, ok ? "ok" : "FAIL");
        else /* no direction crossed no kink: nothing to compare */
            printf("%-*s  %-18s  %-10.3e  %-10s  %-10s  %-10s  %-5d  %s\n", w, it->name,
                   netrt_shape_str(it->rank, it->shape, sh, sizeof sh), it->gnorm, "-", "-", "-", it->kinks, "kink");
    }
    if (kinked)
        printf("%d of %d tensors not checked: every direction tried crossed a kink (relu, maxpool); "
               "another --seed or a smaller --eps checks them\n",
               kinked, c->nitems);
    if (fails)
        printf("FAIL: %d of %d tensors above the threshold %g\n", fails, c->nitems, c->threshold);
    else
        printf("ok: %d tensors within the threshold %g\n", c->nitems - kinked, c->threshold);
    fflush(stdout);
    return fails ? 1 : 0;
}

/* The check with seed c->seed: 1 if a tensor failed. */
static int check_seed(gcheck *c) {
    if (setup(c) < 0) return -1;
    netrt_rng rng;
    netrt_rng_seed(&rng, (uint64_t)c->seed + 2);
    c->noise = loss_noise(c, &rng);
    printf("gradcheck %s (%s): %s, batch %lld, seed %lld, loss %.6g (rounding noise %.1e); "
           "%lld random directions per tensor, ",
           c->in->name ? c->in->name : "?", c->in->source ? c->in->source : "?", c->f64 ? "double" : "float32",
           (long long)c->batch, (long long)c->seed, c->loss0, c->noise, (long long)c->directions);
    if (c->f64)
        printf("step %g x RMS\n", c->eps);
    else
        printf("steps %g, %g and %g x RMS\n", c->eps, c->eps / 4, c->eps / 16);
    fflush(stdout);
    for (int i = 0; i < c->nitems; i++) check_item(c, &c->items[i], &rng);
    /* a step can make an op overflow where the unperturbed batch did not */
    if (netrt_numerics_error()) return netrt_errorf(c->err, sizeof c->err, "%s", netrt_numerics_error());
    return report(c);
}

static void free_items(gcheck *c) {
    for (int i = 0; c->items && i < c->nitems; i++) {
        free(c->items[i].g);
        free(c->items[i].orig);
    }
    free(c->items);
    free(c->dir);
    c->items = NULL;
    c->dir = NULL;
    c->nitems = 0;
}

static int run_check(gcheck *c, int argc, char **argv) {
    const netrt_train_model *m = c->m;
    if (c->in->batch < 1 || !m->grad || !m->set_batch || !m->grads || !m->inits || !m->labels ||
        !m->loss || !m->train_logits || m->train_logits->rank < 1)
        return netrt_errorf(c->err, sizeof c->err, "the model is not a training program");
    c->batch = c->in->batch;
    if (parse_args(c, argc, argv) < 0) return -1;
    if (c->help) {
        usage(c, stdout);
        return 0;
    }
    if (netrt_set_check_numerics(c->in, c->check_numerics, c->err, sizeof c->err) < 0) return -1;
    int failed = 0;
    for (int64_t k = 0; k < c->seeds; k++) {
        if (k) {
            free_items(c);
            c->seed++;
            putchar('\n');
        }
        int rc = check_seed(c);
        if (rc < 0) return -1;
        failed += rc;
    }
    if (c->seeds > 1) {
        printf("\n%s: %d of %lld seeds (%lld to %lld) failed\n", failed ? "FAIL" : "ok", failed, (long long)c->seeds,
               (long long)(c->seed - c->seeds + 1), (long long)c->seed);
        fflush(stdout);
    }
    return failed ? 1 : 0;
}

int netrt_gradcheck_main(int argc, char **argv, const netrt_train_model *m) {
    bool f64 = m->infer->real_bytes == (int)sizeof(double);
    gcheck c = {.m = m, .in = m->infer, .f64 = f64, .seed = 1, .seeds = 1, .directions = 3, .eps = f64 ? 1e-6 : 1e-3,
                .threshold = f64 ? 1e-5 : 1e-2};
    c.prog = netrt_prog_name(argc, argv, m->infer->name);
    /* first: the emitted code may use instructions this CPU lacks */
    if (!netrt_cpu_ok(m->infer->cpu, c.prog)) return 1;
    if (m->infer->real_bytes && m->infer->real_bytes != (int)sizeof(float) && !f64) {
        fprintf(stderr, "%s: error: the model's elements are of %d bytes, neither float nor double\n", c.prog,
                m->infer->real_bytes);
        return 1;
    }
    if (m->infer->init && m->infer->init() != 0) {
        fprintf(stderr, "%s: error: cannot initialize the model (out of memory?)\n", c.prog);
        return 1;
    }
    int rc = run_check(&c, argc, argv);
    if (rc < 0) {
        fflush(stdout);
        fprintf(stderr, "%s: error: %s\n", c.prog, c.err);
        rc = 1;
    }
    free_items(&c);
    if (m->infer->fini) m->infer->fini();
    return rc;
}
