/* Training's end: the losses, their gradients, and the optimizer step.
 *
 * A net names its loss with `loss(...)` on its output, the identity at
 * inference; without one, training uses cross-entropy.  The autodiff pass
 * makes every other node here; no source writes them.  The losses and the
 * step follow PyTorch: F.cross_entropy, F.binary_cross_entropy_with_logits,
 * F.mse_loss (each the mean), and torch.optim's SGD, Adam and AdamW. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../opkit.h"
#include "../train.h"

/* ---- the builtin ---------------------------------------------------------------- */

static const char *const loss_names[] = {
    [LOSS_CROSS_ENTROPY] = "cross_entropy", [LOSS_BCE_WITH_LOGITS] = "bce_with_logits", [LOSS_MSE] = "mse"};

/* loss(x, kind, label_smoothing, weight, ignore_index): kind "cross_entropy"
 * (x [K] or [K, H, W] class scores), "bce_with_logits" or "mse"; the other
 * three are cross-entropy's (weight: one per class). */
static Node *build_loss(BuildCtx *c) {
    Value *x = arg_tensor(c, build_arg(c, 0), build_span(c, 0), "loss's input");
    ArgVal kind = build_arg(c, 1);
    if (kind.k != E_STRING)
        build_fail(c, build_span(c, 1), "loss's kind must be a string, got %s", argval_kind_name(kind.k));
    Attrs a = {0};
    a.loss = loss_attrs_default();
    int k = 0;
    while (k < 3 && strcmp(kind.s, loss_names[k]) != 0) k++;
    if (k == 3)
        build_fail(c, build_span(c, 1), "loss's kind must be \"cross_entropy\", \"bce_with_logits\" or \"mse\", got \"%s\"",
                   kind.s);
    a.loss.kind = k;
    static const char *const option[] = {"label_smoothing", "weight", "ignore_index"};
    for (int i = 2; i < 5; i++)
        if (k != LOSS_CROSS_ENTROPY && build_arg(c, i).k != E_NONE)
            build_fail(c, build_span(c, i), "%s is an option of cross_entropy, not of %s", option[i - 2], kind.s);
    char buf[128];
    if (k == LOSS_CROSS_ENTROPY && x->shape.rank < 2)
        build_fail(c, c->call, "cross_entropy needs class scores ([K], or [K, H, W] per position), got %s",
                   value_sample_str(x, buf, sizeof buf));
    if (build_arg(c, 2).k != E_NONE) {
        double s = arg_number(c, build_arg(c, 2), build_span(c, 2), "loss's label_smoothing");
        if (!(s >= 0 && s <= 1))
            build_fail(c, build_span(c, 2), "loss's label_smoothing must be in [0, 1], got %g", s);
        a.loss.label_smoothing = s;
    }
    ArgVal w = build_arg(c, 3);
    if (w.k != E_NONE) {
        if (w.k != E_LIST || w.depth != 1)
            build_fail(c, build_span(c, 3), "loss's weight must be a list of numbers, one per class");
        if (w.n != x->shape.d[1])
            build_fail(c, build_span(c, 3), "loss's weight has %d values for %" PRId64 " classes", w.n, x->shape.d[1]);
        float *wt = arena_alloc(c->g->arena, sizeof *wt * (size_t)w.n);
        for (int i = 0; i < w.n; i++) {
            double v = arg_number(c, w.items[i], build_span(c, 3), "a class weight");
            if (!(v >= 0) || !isfinite(v))
                build_fail(c, build_span(c, 3), "class weight %d must be finite and not negative, got %g", i, v);
            wt[i] = (float)v;
        }
        a.loss.weight = wt;
        a.loss.nweight = w.n;
    }
    if (build_arg(c, 4).k != E_NONE)
        a.loss.ignore_index = arg_int(c, build_arg(c, 4), build_span(c, 4), "loss's ignore_index");
    const char *inst = build_instance(c, c->builtin->name);
    return build_node(c, OP_LOSS, inst, &x, 1, &a);
}

/* ---- shapes ------------------------------------------------------------------ */

/* logits [N, K, ...] and labels [N, ...] (the logits without K): the loss is
 * [1], its gradient the logits' shape. */
static bool shape_xent(Graph *g, Node *n) {
    (void)g;
    const Shape *z = &n->in[0]->shape, *l = &n->in[1]->shape;
    bool ok = z->rank >= 2 && l->rank == z->rank - 1 && l->d[0] == z->d[0];
    for (int i = 2; ok && i < z->rank; i++) ok = l->d[i - 1] == z->d[i];
    if (!ok) {
        char b1[128], b2[128];
        diag_error(n->span, "cross-entropy needs logits [N, K, ...] and labels [N, ...], got %s and %s",
                   shape_str(z, b1, sizeof b1), shape_str(l, b2, sizeof b2));
        return false;
    }
    if (n->op == OP_XENT_GRAD) return shape_like(n, 0, 0);
    shape_set_out(n, 0, 1, (int64_t[]){1});
    return true;
}

/* output and targets of one shape: the loss is [1], its gradient that shape. */
static bool shape_elementwise_loss(Graph *g, Node *n) {
    (void)g;
    if (!shape_eq(&n->in[0]->shape, &n->in[1]->shape)) {
        char b1[128], b2[128];
        diag_error(n->span, "the loss needs an output and targets of one shape, got %s and %s",
                   shape_str(&n->in[0]->shape, b1, sizeof b1), shape_str(&n->in[1]->shape, b2, sizeof b2));
        return false;
    }
    if (n->op == OP_BCE_GRAD || n->op == OP_MSE_GRAD) return shape_like(n, 0, 0);
    shape_set_out(n, 0, 1, (int64_t[]){1});
    return true;
}

/* The optimizer step has no outputs. */
static bool shape_none(Graph *g, Node *n) {
    (void)g;
    (void)n;
    return true;
}

/* ---- emission checks ------------------------------------------------------------ */

static const char *check_xent(const Graph *g, const Node *n) {
    (void)g;
    const Shape *z = &n->in[0]->shape;
    if (z->rank < 2 || z->d[1] < 1 || n->in[1]->shape.rank != z->rank - 1) return "needs logits [N, K, ...] and labels [N, ...]";
    if (n->a.loss.nweight && n->a.loss.nweight != z->d[1]) return "has a class weight count unlike its logits'";
    return NULL;
}

static const char *check_elementwise_loss(const Graph *g, const Node *n) {
    (void)g;
    return shape_eq(&n->in[0]->shape, &n->in[1]->shape) ? NULL : "needs an output and targets of one shape";
}

static const char *check_optim_update(const Graph *g, const Node *n) {
    const Shape *p = &n->in[0]->shape;
    if (!train_of(g)) return "the optimizer step needs a training graph";
    for (int i = 1; i < 4; i++)
        if (shape_numel(p) != shape_numel(&n->in[i]->shape)) return "parameter, gradient and moments differ in size";
    return NULL;
}

/* ---- kernels ------------------------------------------------------------------- */

/* The class weights as a constant array W[K], if the loss has them; the
 * expressions of weight c, of weight k and (wsum not NULL) of their sum. */
static void put_class_weights(Kernel *k, const char **wc, const char **wk, const char **wsum) {
    const LossAttrs *a = &k->n->a.loss;
    if (!a->nweight) {
        *wc = "1.0";
        *wk = "1.0";
        if (wsum) *wsum = "(double)K";
        return;
    }
    kout(k, "    static const netc_real W[K] = {");
    double sum = 0;
    char buf[64];
    for (int i = 0; i < a->nweight; i++) {
        kout(k, "%s%s", i ? ", " : "", float_literal(buf, sizeof buf, a->weight[i]));
        sum += a->weight[i];
    }
    kout(k, "}; /* the class weights */\n");
    *wc = "(double)W[c]";
    *wk = "(double)W[k]";
    if (!wsum) return;
    *wsum = "WSUM";
    kout(k, "    const double WSUM = %s; /* their sum */\n", double_literal(buf, sizeof buf, sum));
}

/* The constants of a cross-entropy kernel: N, K and S, the positions per
 * sample (1 for [N, K] logits, H * W for [N, K, H, W]); class k of position
 * s of sample n is logits[(n * K + k) * S + s], its label labels[n * S + s]. */
static void put_xent_shape(Kernel *k) {
    const Shape *z = &k->n->in[0]->shape;
    int64_t S = 1;
    for (int i = 2; i < z->rank; i++) S *= z->d[i];
    KENUM(k, {"N", z->d[0]}, {"K", z->d[1]}, {"S", S});
    kout(k, "    const netc_real IGNORE = %" PRId64 ".0f; /* ignore_index */\n", k->n->a.loss.ignore_index);
}

/* F.cross_entropy(logits, labels, weight, ignore_index, label_smoothing =
 * eps), the mean: with w the class weights (1 without), L the log-softmax
 * over the classes and c a position's label,
 *   ((1 - eps) * sum w[c] * -L[c] + eps / K * sum_k w[k] * -L[k]) / sum w[c]
 * summed over the positions whose label is not ignored, in double.  A label
 * outside [0, K) (and not ignored) makes the loss NaN. */
static void emit_xent_loss(Kernel *k) {
    kopen(k, (const char *const[]){"logits", "labels"}, (const char *const[]){"loss"});
    put_xent_shape(k);
    const char *wc, *wk;
    put_class_weights(k, &wc, &wk, NULL);
    kout(k, "    const double eps = hp.label_smoothing;\n"
            "    double nll = 0.0, smooth = 0.0, count = 0.0;\n"
            "    for (int n = 0; n < N; n++)\n"
            "        for (int s = 0; s < S; s++) {\n"
            "            const netc_real *restrict z = logits + (size_t)n * K * S + s; /* class k at z[k * S] */\n"
            "            const netc_real lf = labels[(size_t)n * S + s];\n"
            "            if (lf == IGNORE) continue;\n"
            "            if (!(lf >= 0.0f && lf < (netc_real)K)) {\n"
            "                loss[0] = NAN;\n"
            "                return;\n"
            "            }\n"
            "            const int c = (int)lf;\n"
            "            double m = z[0];\n"
            "            for (int k = 1; k < K; k++) m = z[k * S] > m ? z[k * S] : m;\n"
            "            double se = 0.0;\n"
            "            for (int k = 0; k < K; k++) se += exp(z[k * S] - m);\n"
            "            const double lse = m + log(se);\n"
            "            nll += %s * (lse - z[c * S]);\n"
            "            count += %s;\n"
            "            if (eps > 0.0)\n"
            "                for (int k = 0; k < K; k++) smooth += %s * (lse - z[k * S]);\n"
            "        }\n"
            "    loss[0] = (netc_real)(((1.0 - eps) * nll + eps / K * smooth) / count);\n",
         wc, wc, wk);
    kclose(k);
}

/* The gradient of that mean: at a counted position with label c and
 * softmax p, (1 - eps) * w[c] * (p[k] - [k == c]) + eps / K * (sum(w) * p[k]
 * - w[k]), over the count sum w[c]; 0 at ignored positions (and at labels
 * out of range, where the loss is NaN). */
static void emit_xent_grad(Kernel *k) {
    kopen(k, (const char *const[]){"logits", "labels"}, (const char *const[]){"dlogits"});
    put_xent_shape(k);
    const char *wc, *wk, *wsum;
    put_class_weights(k, &wc, &wk, &wsum);
    kout(k, "    const double eps = hp.label_smoothing;\n"
            "    double count = 0.0;\n"
            "    for (size_t i = 0; i < (size_t)N * S; i++) {\n"
            "        const netc_real lf = labels[i];\n"
            "        if (lf != IGNORE && lf >= 0.0f && lf < (netc_real)K) count += %s;\n"
            "    }\n"
            "    const double inv = 1.0 / count;\n"
            "    for (int n = 0; n < N; n++)\n"
            "        for (int s = 0; s < S; s++) {\n"
            "            const netc_real *restrict z = logits + (size_t)n * K * S + s; /* class k at z[k * S] */\n"
            "            netc_real *restrict dz = dlogits + (size_t)n * K * S + s;\n"
            "            const netc_real lf = labels[(size_t)n * S + s];\n"
            "            if (lf == IGNORE || !(lf >= 0.0f && lf < (netc_real)K)) {\n"
            "                for (int k = 0; k < K; k++) dz[k * S] = 0.0f;\n"
            "                continue;\n"
            "            }\n"
            "            const int c = (int)lf;\n"
            "            double m = z[0];\n"
            "            for (int k = 1; k < K; k++) m = z[k * S] > m ? z[k * S] : m;\n"
            "            double se = 0.0;\n"
            "            for (int k = 0; k < K; k++) se += exp(z[k * S] - m);\n"
            "            const double hard = (1.0 - eps) * %s, soft = eps / K;\n"
            "            for (int k = 0; k < K; k++) {\n"
            "                const double p = exp(z[k * S] - m) / se;\n"
            "                dz[k * S] = (netc_real)((hard * (p - (k == c ? 1.0 : 0.0)) + soft * (%s * p - %s)) * inv);\n"
            "            }\n"
            "        }\n",
         k->n->a.loss.nweight ? "(double)W[(int)lf]" : "1.0", wc, wsum, wk);
    kclose(k);
}

/* The losses over every element, in double, z the output and t the target:
 * each element's term and its derivative by z (the mean's gradient is that
 * over the count).  F.binary_cross_entropy_with_logits's term in its stable
 * form; F.mse_loss's. */
static const struct {
    Op loss, grad;
    const char *term, *dterm;
} elementwise_losses[] = {
    {OP_BCE_LOSS, OP_BCE_GRAD, "(z > 0.0 ? z : 0.0) - z * t + log1p(exp(-fabs(z)))", "1.0 / (1.0 + exp(-z)) - t"},
    {OP_MSE_LOSS, OP_MSE_GRAD, "(z - t) * (z - t)", "2.0 * (z - t)"},
};

/* The mean of the loss's term over the N samples' (the active batch) PER
 * elements; or, for the gradient op, each element's derivative over the
 * count. */
static void emit_elementwise_loss(Kernel *k) {
    const Shape *z = &k->n->in[0]->shape;
    size_t i = 0;
    while (elementwise_losses[i].loss != k->n->op && elementwise_losses[i].grad != k->n->op) i++;
    bool grad = elementwise_losses[i].grad == k->n->op;
    kopen(k, (const char *const[]){"out", "targets"}, (const char *const[]){grad ? "dout" : "loss"});
    KENUM(k, {"N", z->d[0]}, {"PER", shape_numel(z) / (z->d[0] ? z->d[0] : 1)});
    if (grad)
        kout(k, "    const double inv = 1.0 / ((double)N * PER);\n"
                "    for (size_t i = 0; i < (size_t)N * PER; i++) {\n"
                "        const double z = out[i], t = targets[i];\n"
                "        dout[i] = (netc_real)((%s) * inv);\n"
                "    }\n",
             elementwise_losses[i].dterm);
    else
        kout(k, "    double total = 0.0;\n"
                "    for (size_t i = 0; i < (size_t)N * PER; i++) {\n"
                "        const double z = out[i], t = targets[i];\n"
                "        total += %s;\n"
                "    }\n"
                "    loss[0] = (netc_real)(total / ((double)N * PER));\n",
             elementwise_losses[i].term);
    kclose(k);
}

/* One optimizer step on one parameter, in place (torch.optim's single-tensor
 * formulas; the optimizer and its hyperparameters are the emitted file's
 * `hp`, set by the trainer).  g is the gradient times hp.grad_scale (the
 * global-norm clipping factor), plus weight_decay * p for SGD and Adam;
 * AdamW decays p itself.  A 1-d parameter (a bias, a norm's weight) has no
 * decay under hp.no_bias_decay.  The rate is hp.lr times lr_group, the
 * parameter's group's multiple (the trainer's --lr-for), set before the call.
 *   SGD:   m = momentum * m + (1 - dampening) * g (m = g at the first step),
 *          p -= lr * (nesterov ? g + momentum * m : m)
 *   Adam:  m = beta1 * m + (1 - beta1) * g, v = beta2 * v + (1 - beta2) * g^2,
 *          p -= lr / bias1 * m / (sqrt(v) / bias2_sqrt + eps) */
static void emit_optim_update(Kernel *k) {
    const Value *p = k->n->in[0];
    const char *loop = kopen_elementwise(k, (const char *const[]){"p", "grad", "m", "v"}, NULL,
                                         op_rules(OP_OPTIM_UPDATE)->written_inputs, p);
    kout(k, "    const netc_real lr = hp.lr * lr_group, scale = hp.grad_scale; /* lr_group: --lr-for */\n");
    if (p->shape.rank <= 1)
        kout(k, "    const netc_real wd = hp.no_bias_decay ? 0.0f : hp.weight_decay; /* a 1-d parameter */\n");
    else
        kout(k, "    const netc_real wd = hp.weight_decay;\n");
    kout(k, "    if (hp.optimizer == NETRT_SGD) {\n"
            "        const netc_real mu = hp.momentum, keep = hp.first_step ? 1.0f : 1.0f - hp.dampening;\n"
            "        if (hp.nesterov)\n"
            "            %s {\n"
            "                const netc_real g = scale * grad[i] + wd * p[i];\n"
            "                m[i] = mu * m[i] + keep * g;\n"
            "                p[i] -= lr * (g + mu * m[i]);\n"
            "            }\n"
            "        else\n"
            "            %s {\n"
            "                m[i] = mu * m[i] + keep * (scale * grad[i] + wd * p[i]);\n"
            "                p[i] -= lr * m[i];\n"
            "            }\n"
            "        return;\n"
            "    }\n"
            "    const netc_real b1 = hp.beta1, b2 = hp.beta2, eps = hp.eps, c2 = hp.bias2_sqrt;\n"
            "    const netc_real step = lr / hp.bias1;\n"
            "    const netc_real l2 = hp.optimizer == NETRT_ADAMW ? 0.0f : wd; /* Adam: decay in the gradient */\n"
            "    const netc_real shrink = hp.optimizer == NETRT_ADAMW ? 1.0f - lr * wd : 1.0f; /* AdamW: of p */\n"
            "    %s {\n"
            "        const netc_real g = scale * grad[i] + l2 * p[i];\n"
            "        m[i] = b1 * m[i] + (1.0f - b1) * g;\n"
            "        v[i] = b2 * v[i] + (1.0f - b2) * g * g;\n"
            "        p[i] = p[i] * shrink - step * m[i] / (%s(v[i]) / c2 + eps);\n"
            "    }\n",
         loop, loop, loop, kmath(k, "sqrt"));
    kclose(k);
}

/* ---- the loss builtin's other rules ------------------------------------------------ */

/* The identity at inference: a copy, or a view (OpRules.view). */
static void emit_loss(Kernel *k) {
    kopen(k, (const char *const[]){"x"}, (const char *const[]){"y"});
    knumel(k, k->n->out[0]);
    kout(k, "    memcpy(y, x, NUMEL * sizeof *y);\n");
    kclose(k);
}

/* Autodiff takes the loss from it and drops it; were it differentiated, it
 * passes dy on. */
static void grad_loss(GradCtx *c, Node *n, Value *dy) { grad_accum(c, n->in[0], dy); }

static void dump_loss(const Node *n, FILE *f) {
    const LossAttrs *a = &n->a.loss;
    fprintf(f, " %s", loss_names[a->kind]);
    if (a->kind != LOSS_CROSS_ENTROPY) return;
    if (a->label_smoothing > 0) fprintf(f, " label_smoothing=%g", a->label_smoothing);
    if (a->ignore_index != LOSS_IGNORE_NONE) fprintf(f, " ignore_index=%" PRId64, a->ignore_index);
    if (a->nweight) {
        fputs(" weight=[", f);
        for (int i = 0; i < a->nweight; i++) fprintf(f, "%s%g", i ? "," : "", (double)a->weight[i]);
        fputc(']', f);
    }
}

/* ---- the entries ---------------------------------------------------------------------- */

#define MADE_BY_AUTODIFF "autodiff makes it"
#define NO_ATTRS "no attributes"
#define NO_MACS "training op: not counted"
#define GRAD_OP "the end of the backward pass: not differentiated"

const OpRules op_rules_LOSS = {
    .builtins = (const Builtin[]){{"loss",
                                   {REQUIRED("x"), REQUIRED("kind"), DEFAULT_NONE("label_smoothing"),
                                    DEFAULT_NONE("weight"), DEFAULT_NONE("ignore_index")},
                                   false, build_loss},
                                  {0}},
    .shape = shape_same, .no_check = "the identity", .emit = emit_loss, .batched = op_batched_like_input0,
    .dump = dump_loss, .no_macs = "the identity: no arithmetic", .grad = grad_loss, .view = true,
};

const OpRules op_rules_XENT_LOSS = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_xent, .check = check_xent, .emit = emit_xent_loss, .batched = op_batched_never,
    .dump = dump_loss, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_XENT_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_xent, .check = check_xent, .emit = emit_xent_grad, .batched = op_batched_like_input0,
    .dump = dump_loss, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_BCE_LOSS = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_elementwise_loss, .check = check_elementwise_loss, .emit = emit_elementwise_loss,
    .batched = op_batched_never, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_BCE_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_elementwise_loss, .check = check_elementwise_loss, .emit = emit_elementwise_loss,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_MSE_LOSS = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_elementwise_loss, .check = check_elementwise_loss, .emit = emit_elementwise_loss,
    .batched = op_batched_never, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_MSE_GRAD = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_elementwise_loss, .check = check_elementwise_loss, .emit = emit_elementwise_loss,
    .batched = op_batched_like_input0, .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};

const OpRules op_rules_OPTIM_UPDATE = {
    .no_build = MADE_BY_AUTODIFF,
    .shape = shape_none, .check = check_optim_update, .emit = emit_optim_update, .batched = op_batched_never,
    .written_inputs = 1u << 0 | 1u << 2 | 1u << 3, /* the parameter and its moments */
    .no_dump = NO_ATTRS, .no_macs = NO_MACS, .no_grad = GRAD_OP,
};
