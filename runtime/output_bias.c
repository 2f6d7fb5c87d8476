/* --output-bias frequencies (initialization, issue 12): the classifier's
 * output bias set so that the softmax of the bias alone is the class
 * frequencies of the training labels, b_k = log(c_k / N): at the start a
 * net whose other inputs to the logits are small predicts the prior, and
 * the first steps need not learn it (Karpathy's "init well" for an
 * unbalanced data set).
 *
 * A class with no label at all would get log 0 = -infinity; it counts as
 * half a label instead (c_k = 0.5, and N grows by the same), so its bias is
 * finite and below every class that occurs, and softmax(b) is exactly the
 * frequencies with that floor. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "netrt.h"

int netrt_output_bias_frequencies(const netrt_train_model *m, const double *counts, int64_t k, const char *prog,
                                  char *err, size_t errlen) {
    const netrt_model *in = m->infer;
    if (!m->output_bias)
        return netrt_errorf(err, errlen,
                            "--output-bias: the net has no output bias (the conv or linear that makes its "
                            "logits has none)");
    const netrt_tensor *b = NULL;
    for (int i = 0; i < in->nparams; i++)
        if (strcmp(in->params[i].name, m->output_bias) == 0) b = &in->params[i];
    if (!b || netrt_numel(b->rank, b->shape) != k)
        return netrt_errorf(err, errlen, "--output-bias: the output bias %s does not have one value per class",
                            m->output_bias);
    double total = 0, labels = 0;
    for (int64_t c = 0; c < k; c++) {
        total += counts[c] > 0 ? counts[c] : 0.5;
        labels += counts[c];
    }
    printf("%s: output bias %s = log of the class frequencies of %.0f labels:", prog, m->output_bias, labels);
    for (int64_t c = 0; c < k; c++) {
        double f = (counts[c] > 0 ? counts[c] : 0.5) / total;
        b->data[c] = (float)log(f);
        printf(" %.4g", f);
    }
    printf("\n");
    if (in->prepare) in->prepare();
    return 0;
}
