/* --monitor DIR [--monitor-every K]: per-layer views of training
 * (netrt_debug.h; the columns and thresholds in docs/training.md,
 * "Debugging views").
 *
 * On a monitored step the taps are on for that grad(): each layer's output
 * comes to tap_stats while its buffer is valid (the memory plan reuses it
 * later in the step), which reduces it to a record: mean, standard
 * deviation, range, a histogram, and for ReLU outputs the fraction of zeros
 * and the dead units (channels zero at every sample and position of the
 * batch).  After grad() the parameters' gradients are still in m->grads
 * (the update reads them); their norms and histograms go into a record with
 * a copy of the weights, and after update() the norm of the change gives
 * the update-to-weight ratio.  Everything stays in memory; monitor_write
 * writes the two CSV files and the HTML report (inline SVG, no script). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netrt_debug.h"

#define HBINS 32

/* Warning thresholds (docs/training.md): a gradient vanishes below
 * VANISH * max(1, |w|), explodes above EXPLODE * max(1, |w|) or above GROW
 * times its first monitored norm; a layer's ReLUs are mostly dead when at
 * least DEAD of its units are. */
#define VANISH 1e-7
#define EXPLODE 1e2
#define GROW 1e3
#define DEAD 0.9

typedef struct {
    double mean, sd, min, max, zero; /* zero: fraction of exact zeros */
    int64_t dead, units;             /* channels zero everywhere, of units */
    int64_t hist[HBINS];             /* over [min, max] */
} act_rec;

typedef struct {
    double gnorm, wnorm, unorm, gmin, gmax;
    int64_t hist[HBINS]; /* of the gradient, over [gmin, gmax] */
} par_rec;

struct netrt_monitor {
    const netrt_train_model *m;
    char *dir;
    int64_t every;
    int ntaps, np;   /* taps; trained parameters */
    int *pidx;       /* the trained parameters' indices in m->infer->params */
    int nrec, cap;   /* monitored steps */
    int64_t *steps, *epochs;
    act_rec *acts;   /* [nrec][ntaps] */
    par_rec *pars;   /* [nrec][np] */
    int64_t nb;      /* the current step's active batch */
    float *sample;   /* one tap sample in logical order */
    bool *nonzero;   /* per channel of the current tap */
    float **before;  /* per trained parameter: its value before the update */
    double *first;   /* per trained parameter: its first monitored gradient norm */
    unsigned char *warned; /* per tap and per parameter: the warnings given (bits) */
};

static void tap_stats(void *ctx, int k, const float *data);

netrt_monitor *netrt_monitor_new(const netrt_train_model *m, const char *dir, int64_t every, char *err,
                                 size_t errlen) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        netrt_errorf(err, errlen, "--monitor %s: %s", dir, stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
        return NULL;
    }
    if (access(dir, W_OK) != 0) {
        netrt_errorf(err, errlen, "--monitor %s: %s", dir, strerror(errno));
        return NULL;
    }
    if (!m->tap_on || m->ntaps < 1) {
        netrt_errorf(err, errlen, "--monitor: this program has no taps (rebuild it with this netc)");
        return NULL;
    }
    netrt_monitor *mon = calloc(1, sizeof *mon);
    if (!mon) goto oom;
    const netrt_model *in = m->infer;
    mon->m = m;
    mon->every = every;
    mon->ntaps = m->ntaps;
    int64_t maxper = 1, maxc = 1;
    for (int k = 0; k < m->ntaps; k++) {
        int64_t per = netrt_tap_per(&m->taps[k]), c = netrt_tap_channels(&m->taps[k]);
        if (per > maxper) maxper = per;
        if (c > maxc) maxc = c;
    }
    mon->dir = malloc(strlen(dir) + 1);
    mon->pidx = calloc((size_t)in->nparams + 1, sizeof *mon->pidx);
    mon->before = calloc((size_t)in->nparams + 1, sizeof *mon->before);
    mon->first = calloc((size_t)in->nparams + 1, sizeof *mon->first);
    mon->warned = calloc((size_t)(m->ntaps + in->nparams) + 1, 1);
    mon->sample = malloc((size_t)maxper * sizeof(float));
    mon->nonzero = malloc((size_t)maxc);
    if (!mon->dir || !mon->pidx || !mon->before || !mon->first || !mon->warned || !mon->sample || !mon->nonzero)
        goto oom;
    strcpy(mon->dir, dir);
    for (int i = 0; i < in->nparams; i++) {
        if (!m->grads[i].data) continue;
        if (!(mon->before[mon->np] = malloc((size_t)netrt_numel(in->params[i].rank, in->params[i].shape) * sizeof(float))))
            goto oom;
        mon->pidx[mon->np++] = i;
    }
    return mon;
oom:
    netrt_monitor_free(mon);
    netrt_errorf(err, errlen, "out of memory");
    return NULL;
}

void netrt_monitor_free(netrt_monitor *mon) {
    if (!mon) return;
    netrt_tap_set(mon->m, NULL, NULL);
    for (int j = 0; mon->before && j < mon->m->infer->nparams; j++) free(mon->before[j]);
    free(mon->before);
    free(mon->dir);
    free(mon->pidx);
    free(mon->first);
    free(mon->warned);
    free(mon->sample);
    free(mon->nonzero);
    free(mon->steps);
    free(mon->epochs);
    free(mon->acts);
    free(mon->pars);
    free(mon);
}

bool netrt_monitor_begin(netrt_monitor *mon, int64_t step, int64_t epoch, int64_t nb) {
    if ((step - 1) % mon->every != 0) return false;
    if (mon->nrec == mon->cap) {
        int cap = mon->cap ? 2 * mon->cap : 64;
        int64_t *s = realloc(mon->steps, (size_t)cap * sizeof *s), *e = realloc(mon->epochs, (size_t)cap * sizeof *e);
        if (s) mon->steps = s;
        if (e) mon->epochs = e;
        act_rec *a = realloc(mon->acts, (size_t)cap * (size_t)mon->ntaps * sizeof *a);
        if (a) mon->acts = a;
        par_rec *p = realloc(mon->pars, (size_t)cap * (size_t)(mon->np ? mon->np : 1) * sizeof *p);
        if (p) mon->pars = p;
        if (!s || !e || !a || !p) return false; /* out of memory: this step goes unmonitored */
        mon->cap = cap;
    }
    mon->steps[mon->nrec] = step;
    mon->epochs[mon->nrec] = epoch;
    memset(mon->acts + (size_t)mon->nrec * (size_t)mon->ntaps, 0, (size_t)mon->ntaps * sizeof *mon->acts);
    memset(mon->pars + (size_t)mon->nrec * (size_t)mon->np, 0, (size_t)mon->np * sizeof *mon->pars);
    mon->nb = nb;
    netrt_tap_set(mon->m, tap_stats, mon);
    return true;
}

static int bin_of(double x, double lo, double hi) {
    if (!(hi > lo)) return HBINS / 2;
    int b = (int)((x - lo) / (hi - lo) * HBINS);
    return b < 0 ? 0 : b >= HBINS ? HBINS - 1 : b;
}

/* Tap k's buffer, valid now: the record of the layer at this step. */
static void tap_stats(void *ctx, int k, const float *data) {
    netrt_monitor *mon = ctx;
    const netrt_tap_info *t = &mon->m->taps[k];
    act_rec *r = &mon->acts[(size_t)mon->nrec * (size_t)mon->ntaps + (size_t)k];
    int64_t per = netrt_tap_per(t), c = netrt_tap_channels(t), hw = per / c;
    double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
    int64_t zeros = 0;
    memset(mon->nonzero, 0, (size_t)c);
    for (int64_t s = 0; s < mon->nb; s++) {
        netrt_tap_sample(t, data, s, mon->sample);
        for (int64_t i = 0; i < per; i++) {
            double x = mon->sample[i];
            sum += x;
            sq += x * x;
            if (x < lo) lo = x;
            if (x > hi) hi = x;
            if (x == 0)
                zeros++;
            else
                mon->nonzero[i / hw] = 1;
        }
    }
    double n = (double)(mon->nb * per);
    r->mean = sum / n;
    r->sd = sqrt(fmax(sq / n - r->mean * r->mean, 0.0));
    r->min = lo;
    r->max = hi;
    r->zero = (double)zeros / n;
    r->units = c;
    for (int64_t ch = 0; ch < c; ch++) r->dead += !mon->nonzero[ch];
    for (int64_t s = 0; s < mon->nb; s++) {
        netrt_tap_sample(t, data, s, mon->sample);
        for (int64_t i = 0; i < per; i++) r->hist[bin_of(mon->sample[i], lo, hi)]++;
    }
}

static double norm_of(const float *p, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)p[i] * p[i];
    return sqrt(s);
}

void netrt_monitor_after_grad(netrt_monitor *mon) {
    netrt_tap_set(mon->m, NULL, NULL);
    const netrt_model *in = mon->m->infer;
    for (int j = 0; j < mon->np; j++) {
        int i = mon->pidx[j];
        int64_t n = netrt_numel(in->params[i].rank, in->params[i].shape);
        const float *g = mon->m->grads[i].data;
        par_rec *r = &mon->pars[(size_t)mon->nrec * (size_t)mon->np + (size_t)j];
        r->gnorm = norm_of(g, n);
        r->wnorm = norm_of(in->params[i].data, n);
        r->gmin = INFINITY;
        r->gmax = -INFINITY;
        for (int64_t k = 0; k < n; k++) {
            if (g[k] < r->gmin) r->gmin = g[k];
            if (g[k] > r->gmax) r->gmax = g[k];
        }
        for (int64_t k = 0; k < n; k++) r->hist[bin_of(g[k], r->gmin, r->gmax)]++;
        memcpy(mon->before[j], in->params[i].data, (size_t)n * sizeof(float));
    }
}

/* A warning of kind bit for layer slot w, the first time only. */
static bool warn_once(netrt_monitor *mon, int w, unsigned bit) {
    if (mon->warned[w] & bit) return false;
    mon->warned[w] |= (unsigned char)bit;
    return true;
}

void netrt_monitor_after_update(netrt_monitor *mon, FILE *out) {
    const netrt_model *in = mon->m->infer;
    int64_t step = mon->steps[mon->nrec];
    for (int j = 0; j < mon->np; j++) {
        int i = mon->pidx[j];
        int64_t n = netrt_numel(in->params[i].rank, in->params[i].shape);
        const float *p = in->params[i].data;
        double s = 0;
        for (int64_t k = 0; k < n; k++) {
            double d = (double)p[k] - mon->before[j][k];
            s += d * d;
        }
        par_rec *r = &mon->pars[(size_t)mon->nrec * (size_t)mon->np + (size_t)j];
        r->unorm = sqrt(s);
        double scale = fmax(1.0, r->wnorm);
        if (mon->nrec == 0) mon->first[j] = r->gnorm;
        const char *name = in->params[i].name;
        int w = mon->ntaps + j;
        if (r->gnorm < VANISH * scale && warn_once(mon, w, 1))
            fprintf(out, "monitor: warning: step %lld: the gradient of '%s' vanishes (norm %.3g, weight norm %.3g)\n",
                    (long long)step, name, r->gnorm, r->wnorm);
        if ((!isfinite(r->gnorm) || r->gnorm > EXPLODE * scale || (mon->first[j] > 0 && r->gnorm > GROW * mon->first[j])) &&
            warn_once(mon, w, 2))
            fprintf(out, "monitor: warning: step %lld: the gradient of '%s' explodes (norm %.3g, weight norm %.3g, first %.3g)\n",
                    (long long)step, name, r->gnorm, r->wnorm, mon->first[j]);
    }
    for (int k = 0; k < mon->ntaps; k++) {
        const netrt_tap_info *t = &mon->m->taps[k];
        const act_rec *r = &mon->acts[(size_t)mon->nrec * (size_t)mon->ntaps + (size_t)k];
        if (t->relu && r->units > 0 && (double)r->dead >= DEAD * (double)r->units && warn_once(mon, k, 4))
            fprintf(out, "monitor: warning: step %lld: %lld of the %lld units of '%s' (%s) are dead ReLUs (zero for "
                    "the whole batch)\n", (long long)step, (long long)r->dead, (long long)r->units, t->name, t->kind);
    }
    fflush(out);
    mon->nrec++;
}

/* ---- the files ------------------------------------------------------------------- */

static char *path_in(const netrt_monitor *mon, const char *name) {
    size_t n = strlen(mon->dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", mon->dir, name);
    return p;
}

static void put_shape(FILE *f, const netrt_tap_info *t) {
    fputc('[', f);
    for (int d = 1; d < t->rank; d++) fprintf(f, "%s%lld", d > 1 ? " " : "", (long long)t->shape[d]);
    fputc(']', f);
}

static void write_csv(const netrt_monitor *mon, FILE *f) {
    const netrt_model *in = mon->m->infer;
    fputs("step,epoch,kind,name,layer,shape,mean,std,min,max,zero_fraction,dead_units,units,grad_norm,weight_norm,"
          "update_norm,update_ratio\n", f);
    for (int s = 0; s < mon->nrec; s++) {
        for (int k = 0; k < mon->ntaps; k++) {
            const netrt_tap_info *t = &mon->m->taps[k];
            const act_rec *r = &mon->acts[(size_t)s * (size_t)mon->ntaps + (size_t)k];
            fprintf(f, "%lld,%lld,activation,%s,%s,", (long long)mon->steps[s], (long long)mon->epochs[s], t->name, t->kind);
            put_shape(f, t);
            fprintf(f, ",%.9g,%.9g,%.9g,%.9g,", r->mean, r->sd, r->min, r->max);
            if (t->relu)
                fprintf(f, "%.9g,%lld,%lld,,,,\n", r->zero, (long long)r->dead, (long long)r->units);
            else
                fprintf(f, ",,%lld,,,,\n", (long long)r->units);
        }
        for (int j = 0; j < mon->np; j++) {
            const netrt_tensor *p = &in->params[mon->pidx[j]];
            const par_rec *r = &mon->pars[(size_t)s * (size_t)mon->np + (size_t)j];
            fprintf(f, "%lld,%lld,param,%s,param,[", (long long)mon->steps[s], (long long)mon->epochs[s], p->name);
            for (int d = 0; d < p->rank; d++) fprintf(f, "%s%lld", d ? " " : "", (long long)p->shape[d]);
            fprintf(f, "],,,%.9g,%.9g,,,,%.9g,%.9g,%.9g,%.9g\n", r->gmin, r->gmax, r->gnorm, r->wnorm, r->unorm,
                    r->wnorm > 0 ? r->unorm / r->wnorm : 0.0);
        }
    }
}

static void write_hist_csv(const netrt_monitor *mon, FILE *f) {
    const netrt_model *in = mon->m->infer;
    fputs("step,kind,name,lo,hi", f);
    for (int b = 0; b < HBINS; b++) fprintf(f, ",b%d", b);
    fputc('\n', f);
    for (int s = 0; s < mon->nrec; s++) {
        for (int k = 0; k < mon->ntaps; k++) {
            const act_rec *r = &mon->acts[(size_t)s * (size_t)mon->ntaps + (size_t)k];
            fprintf(f, "%lld,activation,%s,%.9g,%.9g", (long long)mon->steps[s], mon->m->taps[k].name, r->min, r->max);
            for (int b = 0; b < HBINS; b++) fprintf(f, ",%lld", (long long)r->hist[b]);
            fputc('\n', f);
        }
        for (int j = 0; j < mon->np; j++) {
            const par_rec *r = &mon->pars[(size_t)s * (size_t)mon->np + (size_t)j];
            fprintf(f, "%lld,gradient,%s,%.9g,%.9g", (long long)mon->steps[s], in->params[mon->pidx[j]].name, r->gmin,
                    r->gmax);
            for (int b = 0; b < HBINS; b++) fprintf(f, ",%lld", (long long)r->hist[b]);
            fputc('\n', f);
        }
    }
}

/* Text for XML: &, < and > escaped (names are the .net's identifiers and dots, but be safe). */
static void put_xml(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

#define SVG_W 360
#define SVG_H 140
#define PAD 30

/* A histogram as bars, with its range under it. */
static void svg_hist(FILE *f, const int64_t *hist, double lo, double hi, const char *title) {
    int64_t top = 1;
    for (int b = 0; b < HBINS; b++)
        if (hist[b] > top) top = hist[b];
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n", SVG_W, SVG_H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n", SVG_W, SVG_H);
    fputs("<text x=\"6\" y=\"14\" font-size=\"11\">", f);
    put_xml(f, title);
    fputs("</text>\n", f);
    double bw = (double)(SVG_W - 2 * PAD) / HBINS, ph = SVG_H - 2 * PAD;
    for (int b = 0; b < HBINS; b++) {
        double h = ph * (double)hist[b] / (double)top;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4a7ab5\"/>\n", PAD + b * bw,
                SVG_H - PAD - h, bw - 1, h);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\">%.3g</text>\n", PAD, SVG_H - PAD + 14, lo);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.3g</text>\n", SVG_W - PAD,
            SVG_H - PAD + 14, hi);
    /* the tallest bar's count, at the top right (left of the plot it ran off the picture) */
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">tallest bar %lld</text>\n</svg>\n",
            SVG_W - PAD, PAD + 4, (long long)top);
}

/* Series over the monitored steps on a log scale (values <= 0 left out). */
static void svg_log_series(FILE *f, const netrt_monitor *mon, int j, const char *title) {
    const char *colors[2] = {"#c0392b", "#27ae60"};
    const char *names[2] = {"gradient norm", "update / weight"};
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < mon->nrec; s++) {
        const par_rec *r = &mon->pars[(size_t)s * (size_t)mon->np + (size_t)j];
        double v[2] = {r->gnorm, r->wnorm > 0 ? r->unorm / r->wnorm : 0};
        for (int q = 0; q < 2; q++)
            if (v[q] > 0 && isfinite(v[q])) {
                lo = fmin(lo, log10(v[q]));
                hi = fmax(hi, log10(v[q]));
            }
    }
    if (!(hi >= lo)) lo = hi = 0;
    lo = floor(lo);
    hi = ceil(hi);
    if (hi <= lo) hi = lo + 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n", SVG_W, SVG_H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n", SVG_W, SVG_H);
    fputs("<text x=\"6\" y=\"14\" font-size=\"11\">", f);
    put_xml(f, title);
    fputs("</text>\n", f);
    double pw = SVG_W - 2 * PAD, ph = SVG_H - 2 * PAD;
    for (double d = lo; d <= hi; d++) { /* a line per decade */
        double y = SVG_H - PAD - ph * (d - lo) / (hi - lo);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%d\" y=\"%.1f\" font-size=\"9\" text-anchor=\"end\">1e%g</text>\n",
                PAD, y, SVG_W - PAD, y, PAD - 2, y + 3, d);
    }
    for (int q = 0; q < 2; q++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colors[q]);
        for (int s = 0; s < mon->nrec; s++) {
            const par_rec *r = &mon->pars[(size_t)s * (size_t)mon->np + (size_t)j];
            double v = q == 0 ? r->gnorm : r->wnorm > 0 ? r->unorm / r->wnorm : 0;
            if (!(v > 0) || !isfinite(v)) continue;
            double x = PAD + (mon->nrec > 1 ? pw * s / (mon->nrec - 1) : pw / 2);
            fprintf(f, "%.1f,%.1f ", x, SVG_H - PAD - ph * (log10(v) - lo) / (hi - lo));
        }
        fprintf(f, "\"/>\n<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\">%s</text>\n", PAD + 150 * q,
                SVG_H - 8, colors[q], names[q]);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"9\" text-anchor=\"end\">step %lld</text>\n</svg>\n",
            SVG_W - PAD, SVG_H - PAD + 12, mon->nrec ? (long long)mon->steps[mon->nrec - 1] : 0LL);
}

static void write_html(const netrt_monitor *mon, FILE *f) {
    const netrt_model *in = mon->m->infer;
    int last = mon->nrec - 1;
    fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>", f);
    put_xml(f, in->name ? in->name : "net");
    fputs(": training monitor</title>\n<style>body{font-family:sans-serif;margin:1em}"
          "div.layer{display:inline-block;vertical-align:top;margin:6px;border:1px solid #eee;padding:4px}"
          "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}</style>\n</head>\n<body>\n<h1>", f);
    put_xml(f, in->name ? in->name : "net");
    fprintf(f, ": training monitor</h1>\n<p>%d monitored steps (every %lld), last step %lld. "
               "Activations: histogram of each layer's output at the last monitored step (training mode); "
               "ReLU outputs: the fraction of zeros and the dead units (channels zero for the whole batch). "
               "Parameters: gradient norm and update-to-weight ratio (|w after - w before| / |w before|) "
               "over the steps, log scale, and the gradient's histogram at the last step.</p>\n",
            mon->nrec, (long long)mon->every, last >= 0 ? (long long)mon->steps[last] : 0LL);
    if (last < 0) {
        fputs("<p>No step was monitored.</p>\n</body>\n</html>\n", f);
        return;
    }
    fputs("<h2>Activations</h2>\n", f);
    char title[256];
    for (int k = 0; k < mon->ntaps; k++) {
        const netrt_tap_info *t = &mon->m->taps[k];
        const act_rec *r = &mon->acts[(size_t)last * (size_t)mon->ntaps + (size_t)k];
        fputs("<div class=\"layer\"><b>", f);
        put_xml(f, t->name);
        fputs("</b> (", f);
        put_xml(f, t->kind);
        fprintf(f, ") mean %.3g, std %.3g", r->mean, r->sd);
        if (t->relu)
            fprintf(f, ", zeros %.1f%%, dead %lld of %lld", 100 * r->zero, (long long)r->dead, (long long)r->units);
        fputs("<br/>\n", f);
        snprintf(title, sizeof title, "%s at step %lld", t->name, (long long)mon->steps[last]);
        svg_hist(f, r->hist, r->min, r->max, title);
        fputs("</div>\n", f);
    }
    fputs("<h2>Parameters</h2>\n", f);
    for (int j = 0; j < mon->np; j++) {
        const netrt_tensor *p = &in->params[mon->pidx[j]];
        const par_rec *r = &mon->pars[(size_t)last * (size_t)mon->np + (size_t)j];
        fputs("<div class=\"layer\"><b>", f);
        put_xml(f, p->name);
        fprintf(f, "</b> gradient norm %.3g, update/weight %.3g<br/>\n", r->gnorm, r->wnorm > 0 ? r->unorm / r->wnorm : 0.0);
        snprintf(title, sizeof title, "%s: gradient norm and update ratio", p->name);
        svg_log_series(f, mon, j, title);
        snprintf(title, sizeof title, "%s: gradient at step %lld", p->name, (long long)mon->steps[last]);
        svg_hist(f, r->hist, r->gmin, r->gmax, title);
        fputs("</div>\n", f);
    }
    fputs("</body>\n</html>\n", f);
}

static int write_one(const netrt_monitor *mon, const char *name, void (*fn)(const netrt_monitor *, FILE *), char *err,
                     size_t errlen) {
    char *path = path_in(mon, name), *tmp;
    if (!path) return netrt_errorf(err, errlen, "out of memory");
    FILE *f = netrt_atomic_open(path, &tmp, err, errlen);
    if (!f) {
        free(path);
        return -1;
    }
    fn(mon, f);
    bool ok = !ferror(f);
    if (!ok) netrt_errorf(err, errlen, "%s: write error", path);
    int rc = netrt_atomic_close(f, tmp, path, ok, err, errlen);
    free(path);
    return rc;
}

int netrt_monitor_write(netrt_monitor *mon, char *err, size_t errlen) {
    if (write_one(mon, "monitor.csv", write_csv, err, errlen) < 0 ||
        write_one(mon, "monitor_hist.csv", write_hist_csv, err, errlen) < 0 ||
        write_one(mon, "monitor.html", write_html, err, errlen) < 0)
        return -1;
    return 0;
}
