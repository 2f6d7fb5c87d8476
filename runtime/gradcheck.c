/* The gradient check (netc gradcheck): the gradients that the emitted
 * backward code computes, compared with central finite differences of the
 * loss along random directions, per parameter tensor and for the input.
 *
 * For a tensor t with gradient g and a random gaussian direction u (scaled
 * to an RMS of 1, so that g . u is about |g|), the analytic derivative along
 * u is g . u, accumulated in double over the float32 steps actually taken,
 * and the numeric one is (L(t + s u) - L(t - s u)) / 2s.
 *
 * The emitted forward pass runs in float32, which limits what the check can
 * resolve, hence its choices:
 * - The loss carries a rounding error, which the difference divides by s.
 *   It is measured (the RMS change of the loss when every element moves by
 *   one ulp, beyond what the gradient predicts), and an error within 4 times
 *   that noise / s is not counted, so that a gradient that is zero in exact
 *   arithmetic (the bias of a conv followed by batchnorm) is no false alarm.
 * - Relu and maxpool have kinks: a step that carries some unit across 0
 *   changes the difference by as much as a wrong gradient would, and in
 *   float32 the step cannot be small enough to make that rare.  So each
 *   direction is tried with three steps, s = h, h/4 and h/16 where each
 *   element moves by about h = eps * RMS(t) (eps = 1e-3; eps alone for a
 *   tensor of zeros), and the smallest error counts: a kink is rarely
 *   crossed at all three, while a wrong gradient disagrees at every step.
 * - The relative error divides by max(|numeric|, |analytic|, |g|): by the
 *   gradient's norm, not by g . u alone, which a random direction can make
 *   arbitrarily small.
 * - The default threshold is 1e-2 rather than the 1e-6 of a float64 check;
 *   wrong gradients (a sign, a missing term, a wrong index) are off by far
 *   more.
 * Batchnorm in training mode makes the loss depend on the whole batch; that
 * is what is differentiated.  Per tensor the worst direction is reported:
 * the raw relative error, the noise allowance and the error beyond it
 * (which decides); the exit status is 1 if one is above the threshold. */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

enum { O_SEED, O_EPS, O_THRESHOLD, O_BATCH, O_DIRECTIONS, O_CHECK_NUMERICS, O_THREADS, O_HELP, O_COUNT };

static const netrt_opt gc_opts[O_COUNT] = {
    [O_SEED] = {"--seed", true},           [O_EPS] = {"--eps", true},
    [O_THRESHOLD] = {"--threshold", true}, [O_BATCH] = {"--batch-size", true},
    [O_DIRECTIONS] = {"--directions", true}, [O_CHECK_NUMERICS] = {"--check-numerics", false},
    [O_THREADS] = {"--threads", true},       [O_HELP] = {"--help", false},
};

/* One checked tensor: a parameter, or the active rows of an input. */
typedef struct {
    char name[160];
    int rank;
    int64_t shape[NETRT_MAX_RANK];
    float *data; /* the model's */
    int64_t n;
    float *g;    /* a copy of its gradient */
    float *orig; /* a copy of its values */
    double gnorm, worst; /* worst: the error beyond the noise allowance, which decides */
    double raw, noise;   /* at the worst direction: the raw relative error and the allowance */
} item;

typedef struct {
    const netrt_train_model *m;
    const netrt_model *in;
    const char *prog;
    int64_t seed, batch, directions;
    double eps, threshold, loss0, noise;
    bool help, check_numerics;
    item *items;
    int nitems;
    double *dir; /* one direction */
    char err[1024];
} gcheck;

static void usage(const gcheck *c, FILE *out) {
    fprintf(out,
            "usage: %s [--seed S] [--eps E] [--threshold T] [--batch-size N] [--directions K]\n"
            "          [--check-numerics] [--threads N]\n\n"
            "Checks the gradients of the network '%s' (compiled from %s, batch %d) against\n"
            "central finite differences of the loss along K random directions per tensor, on\n"
            "random inputs in [0, 1) and random labels, with parameters initialized from S.\n\n"
            "  --seed S          initialization, data and directions (default 1)\n"
            "  --eps E           the largest step moves each element by about E times the\n"
            "                    tensor's RMS (default 0.001); E/4 and E/16 are tried too\n"
            "  --threshold T     the largest relative error that passes (default 0.01)\n"
            "  --batch-size N    the active batch, 1 to %d (default %d)\n"
            "  --directions K    random directions per tensor (default 3)\n"
            "  --check-numerics  stop at the first op that computes a NaN or an Inf\n"
            "  --threads N       threads the kernels split their work across (default: all cores)\n"
            "  --help            this message\n",
            c->prog, c->in->name ? c->in->name : "?", c->in->source ? c->in->source : "?",
            c->in->batch, c->in->batch, c->in->batch);
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
    return (double)c->m->loss->data[0];
}

/* Parameters from the seed (as the trainer and `netc init`), random inputs
 * in [0, 1) and labels in [0, K), then grad() and a copy of every gradient. */
static int setup(gcheck *c) {
    const netrt_train_model *m = c->m;
    const netrt_model *in = c->in;
    const netrt_tensor *lg = m->train_logits;
    int64_t K = lg->shape[lg->rank - 1], nb = c->batch;
    netrt_rng rng;
    netrt_rng_seed(&rng, (uint64_t)c->seed);
    for (int i = 0; i < in->nparams; i++) {
        const netrt_tensor *p = &in->params[i];
        netrt_init_param(&m->inits[i], &rng, p->data, netrt_numel(p->rank, p->shape));
    }
    if (in->prepare) in->prepare();
    if (m->reset_state) m->reset_state();
    netrt_rng_seed(&rng, (uint64_t)c->seed + 1);
    for (int j = 0; j < in->ninputs; j++) {
        const netrt_tensor *x = &in->inputs[j];
        int64_t per = netrt_numel(x->rank - 1, x->shape + 1), N = x->shape[0];
        for (int64_t k = 0; k < N * per; k++)
            x->data[k] = k < nb * per ? (float)netrt_rng_uniform(&rng) : 0.0f;
    }
    for (int64_t r = 0; r < in->batch; r++)
        m->labels->data[r] = r < nb ? (float)netrt_rng_below(&rng, (uint64_t)K) : 0.0f;
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
        if (!(it->g = malloc((size_t)it->n * sizeof(float) + 1)))
            return netrt_errorf(c->err, sizeof c->err, "out of memory");
        memcpy(it->g, g->data, (size_t)it->n * sizeof(float));
        if (!(it->orig = malloc((size_t)it->n * sizeof(float) + 1)))
            return netrt_errorf(c->err, sizeof c->err, "out of memory");
        memcpy(it->orig, v->data, (size_t)it->n * sizeof(float));
        double s = 0;
        for (int64_t k = 0; k < it->n; k++) s += (double)it->g[k] * it->g[k];
        it->gnorm = sqrt(s);
        if (it->n > largest) largest = it->n;
    }
    if (!(c->dir = malloc((size_t)largest * sizeof *c->dir)))
        return netrt_errorf(c->err, sizeof c->err, "out of memory");
    return 0;
}

/* The rounding noise of the float32 loss: the RMS, over a few tries, of the
 * change of the loss when every element of every checked tensor moves by one
 * ulp (random signs), less the change the gradient predicts.  At least half
 * an ulp of the loss. */
static double loss_noise(gcheck *c, netrt_rng *rng) {
    enum { TRIES = 8 };
    double sum = 0;
    for (int k = 0; k < TRIES; k++) {
        double pred = 0;
        for (int i = 0; i < c->nitems; i++) {
            item *it = &c->items[i];
            for (int64_t j = 0; j < it->n; j++) {
                float v = it->data[j];
                float w = nextafterf(v, netrt_rng_next(rng) >> 63 ? INFINITY : -INFINITY);
                pred += (double)it->g[j] * ((double)w - v);
                it->data[j] = w;
            }
        }
        double d = loss_now(c) - c->loss0 - pred;
        sum += d * d;
        for (int i = 0; i < c->nitems; i++)
            memcpy(c->items[i].data, c->items[i].orig, (size_t)c->items[i].n * sizeof(float));
    }
    float l0 = (float)c->loss0;
    double half_ulp = ((double)nextafterf(fabsf(l0), INFINITY) - fabsf(l0)) / 2;
    return fmax(sqrt(sum / TRIES), half_ulp);
}

/* The central difference of the loss along dir with step s (t restored);
 * *ana gets the analytic derivative over the same float32 steps. */
static double central(gcheck *c, item *it, double s, double *ana) {
    float *t = it->data;
    double a = 0;
    for (int64_t k = 0; k < it->n; k++) {
        t[k] = (float)(it->orig[k] + s * c->dir[k]);
        a += (double)it->g[k] * ((double)t[k] - it->orig[k]);
    }
    double lp = loss_now(c);
    for (int64_t k = 0; k < it->n; k++) {
        t[k] = (float)(it->orig[k] - s * c->dir[k]);
        a -= (double)it->g[k] * ((double)t[k] - it->orig[k]);
    }
    double lm = loss_now(c);
    memcpy(t, it->orig, (size_t)it->n * sizeof(float));
    *ana = a / (2 * s);
    return (lp - lm) / (2 * s);
}

/* The worst relative error of one tensor over the random directions. */
static void check_item(gcheck *c, item *it, netrt_rng *rng) {
    int64_t n = it->n;
    double ss = 0;
    for (int64_t k = 0; k < n; k++) ss += (double)it->orig[k] * it->orig[k];
    double rms = sqrt(ss / (double)n);
    double h = c->eps * (rms > 0 ? rms : 1.0);
    it->worst = 0;
    for (int64_t d = 0; d < c->directions; d++) {
        double norm = 0;
        for (int64_t k = 0; k < n; k++) {
            c->dir[k] = netrt_rng_normal(rng);
            norm += c->dir[k] * c->dir[k];
        }
        norm = sqrt(norm / (double)n);
        for (int64_t k = 0; k < n; k++) c->dir[k] /= norm;
        /* Each step: the raw relative error, and the part of it that the
         * loss's rounding noise can explain; the step with the least error
         * beyond that decides, and its two parts are reported. */
        double best = INFINITY, best_raw = 0, best_noise = 0, s = h;
        for (int k = 0; k < 3; k++, s /= 4) {
            double ana, num = central(c, it, s, &ana);
            double scale = fmax(fmax(fmax(fabs(num), fabs(ana)), it->gnorm), DBL_MIN);
            double raw = fabs(num - ana) / scale, noise = 4 * c->noise / s / scale;
            if (isnan(raw)) raw = INFINITY;
            double rel = fmax(0.0, raw - noise);
            if (rel < best) {
                best = rel;
                best_raw = raw;
                best_noise = noise;
            }
        }
        if (best > it->worst || d == 0) {
            it->raw = best_raw;
            it->noise = best_noise;
        }
        if (best > it->worst) it->worst = best;
    }
}

static int report(const gcheck *c) {
    int w = (int)strlen("tensor"), fails = 0;
    for (int i = 0; i < c->nitems; i++)
        if ((int)strlen(c->items[i].name) > w) w = (int)strlen(c->items[i].name);
    printf("%-*s  %-18s  %-10s  %-10s  %-10s  %-10s\n", w, "tensor", "shape", "|grad|", "rel. error", "noise",
           "beyond");
    for (int i = 0; i < c->nitems; i++) {
        const item *it = &c->items[i];
        char sh[160];
        bool ok = it->worst <= c->threshold;
        fails += !ok;
        printf("%-*s  %-18s  %-10.3e  %-10.2e  %-10.2e  %-10.2e  %s\n", w, it->name,
               netrt_shape_str(it->rank, it->shape, sh, sizeof sh), it->gnorm, it->raw, it->noise, it->worst,
               ok ? "ok" : "FAIL");
    }
    if (fails)
        printf("FAIL: %d of %d tensors above the threshold %g\n", fails, c->nitems, c->threshold);
    else
        printf("ok: %d tensors within the threshold %g\n", c->nitems, c->threshold);
    fflush(stdout);
    return fails ? 1 : 0;
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
    if (setup(c) < 0) return -1;
    netrt_rng rng;
    netrt_rng_seed(&rng, (uint64_t)c->seed + 2);
    c->noise = loss_noise(c, &rng);
    printf("gradcheck %s (%s): batch %lld, seed %lld, loss %.6g (float32 rounding noise %.1e); "
           "%lld random directions per tensor, steps %g, %g and %g x RMS\n",
           c->in->name ? c->in->name : "?", c->in->source ? c->in->source : "?",
           (long long)c->batch, (long long)c->seed, c->loss0, c->noise, (long long)c->directions,
           c->eps, c->eps / 4, c->eps / 16);
    fflush(stdout);
    for (int i = 0; i < c->nitems; i++) check_item(c, &c->items[i], &rng);
    /* a step can make an op overflow where the unperturbed batch did not */
    if (netrt_numerics_error()) return netrt_errorf(c->err, sizeof c->err, "%s", netrt_numerics_error());
    return report(c);
}

int netrt_gradcheck_main(int argc, char **argv, const netrt_train_model *m) {
    gcheck c = {.m = m, .in = m->infer, .seed = 1, .directions = 3, .eps = 1e-3, .threshold = 1e-2};
    c.prog = netrt_prog_name(argc, argv, m->infer->name);
    /* first: the emitted code may use instructions this CPU lacks */
    if (!netrt_cpu_ok(m->infer->cpu, c.prog)) return 1;
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
    if (c.items)
        for (int i = 0; i < c.nitems; i++) {
            free(c.items[i].g);
            free(c.items[i].orig);
        }
    free(c.items);
    free(c.dir);
    if (m->infer->fini) m->infer->fini();
    return rc;
}
