/* What the trainer reports about a model's outputs against labels (train.c):
 * the loss (the same formulas as the emitted loss kernels, compiler/ops/
 * loss.c, summed over a whole set in double), the accuracy, and for class
 * scores the confusion matrix, per-class accuracy and IoU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

int netrt_metrics_init(netrt_metrics *mt, const netrt_train_model *m, bool confusion) {
    const netrt_tensor *lg = m->train_logits, *lb = m->labels;
    memset(mt, 0, sizeof *mt);
    mt->kind = m->loss_kind;
    mt->ignore_index = m->ignore_index;
    mt->weights = m->class_weights;
    mt->label_smoothing = m->hp->label_smoothing;
    mt->per = netrt_numel(lb->rank - 1, lb->shape + 1);
    if (mt->kind == NETRT_LOSS_CROSS_ENTROPY) {
        mt->classes = lg->shape[1];
        if (confusion && !(mt->confusion = calloc((size_t)(mt->classes * mt->classes), sizeof *mt->confusion)))
            return -1;
    }
    return 0;
}

void netrt_metrics_free(netrt_metrics *mt) {
    free(mt->confusion);
    mt->confusion = NULL;
}

/* Cross-entropy at one position: class k's score is z[k * S]. */
static void add_position(netrt_metrics *mt, const float *z, int64_t S, float label, bool loss) {
    int64_t K = mt->classes;
    if (label == (float)mt->ignore_index) return;
    int64_t c = (int64_t)label, best = 0;
    for (int64_t k = 1; k < K; k++)
        if (z[k * S] > z[best * S]) best = k;
    mt->correct += best == c;
    mt->counted++;
    if (mt->confusion) mt->confusion[c * K + best]++;
    if (!loss) return;
    double mx = z[0], se = 0;
    for (int64_t k = 1; k < K; k++) mx = z[k * S] > mx ? z[k * S] : mx;
    for (int64_t k = 0; k < K; k++) se += exp((double)z[k * S] - mx);
    double lse = mx + log(se), wc = mt->weights ? mt->weights[c] : 1.0, eps = mt->label_smoothing, smooth = 0;
    if (eps > 0)
        for (int64_t k = 0; k < K; k++) smooth += (mt->weights ? mt->weights[k] : 1.0) * (lse - z[k * S]);
    mt->loss_num += (1.0 - eps) * wc * (lse - z[c * S]) + eps / (double)K * smooth;
    mt->loss_den += wc;
}

void netrt_metrics_add(netrt_metrics *mt, const float *out, const float *labels, int64_t nb, bool loss) {
    int64_t per = mt->per;
    for (int64_t r = 0; r < nb; r++) {
        const float *t = labels + r * per;
        if (mt->kind == NETRT_LOSS_CROSS_ENTROPY) {
            const float *z = out + r * mt->classes * per;
            for (int64_t s = 0; s < per; s++) add_position(mt, z + s, per, t[s], loss);
            continue;
        }
        const float *y = out + r * per;
        for (int64_t i = 0; i < per; i++) {
            double z = y[i], v = t[i];
            if (mt->kind == NETRT_LOSS_BCE_WITH_LOGITS) {
                mt->correct += (z > 0) == (v >= 0.5);
                mt->counted++;
                if (loss) mt->loss_num += (z > 0 ? z : 0) - z * v + log1p(exp(-fabs(z)));
            } else if (loss) {
                mt->loss_num += (z - v) * (z - v);
            }
        }
        if (loss && mt->kind != NETRT_LOSS_CROSS_ENTROPY) mt->loss_den += (double)per;
    }
}

double netrt_metrics_loss(const netrt_metrics *mt) { return mt->loss_num / mt->loss_den; }

bool netrt_metrics_has_accuracy(const netrt_metrics *mt) { return mt->kind != NETRT_LOSS_MSE; }

double netrt_metrics_accuracy(const netrt_metrics *mt) {
    return mt->counted ? 100.0 * (double)mt->correct / (double)mt->counted : 0.0;
}

/* IoU of class k: true positives over true positives, false positives and
 * false negatives; NaN for a class neither labelled nor predicted. */
static double class_iou(const netrt_metrics *mt, int64_t k) {
    int64_t K = mt->classes, tp = mt->confusion[k * K + k], row = 0, col = 0;
    for (int64_t j = 0; j < K; j++) {
        row += mt->confusion[k * K + j];
        col += mt->confusion[j * K + k];
    }
    return row + col - tp > 0 ? (double)tp / (double)(row + col - tp) : NAN;
}

double netrt_metrics_miou(const netrt_metrics *mt) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t k = 0; mt->confusion && k < mt->classes; k++) {
        double iou = class_iou(mt, k);
        if (!isnan(iou)) {
            sum += iou;
            n++;
        }
    }
    return n ? 100.0 * sum / (double)n : NAN;
}

void netrt_metrics_print_confusion(const netrt_metrics *mt, FILE *f, bool iou) {
    int64_t K = mt->classes;
    if (!mt->confusion) return;
    fprintf(f, "confusion matrix (rows: true class, columns: predicted class):\n      ");
    for (int64_t j = 0; j < K; j++) fprintf(f, " %7lld", (long long)j);
    fputc('\n', f);
    for (int64_t k = 0; k < K; k++) {
        fprintf(f, "%5lld ", (long long)k);
        for (int64_t j = 0; j < K; j++) fprintf(f, " %7lld", (long long)mt->confusion[k * K + j]);
        fputc('\n', f);
    }
    fprintf(f, "per class:  class  accuracy%s   count\n", iou ? "       IoU" : "");
    for (int64_t k = 0; k < K; k++) {
        int64_t row = 0;
        for (int64_t j = 0; j < K; j++) row += mt->confusion[k * K + j];
        fprintf(f, "           %6lld  ", (long long)k);
        if (row)
            fprintf(f, "%7.2f%%", 100.0 * (double)mt->confusion[k * K + k] / (double)row);
        else
            fprintf(f, "%8s", "-");
        if (iou) {
            double v = class_iou(mt, k);
            if (isnan(v))
                fprintf(f, "  %8s", "-");
            else
                fprintf(f, "  %7.2f%%", 100.0 * v);
        }
        fprintf(f, "  %6lld\n", (long long)row);
    }
}
