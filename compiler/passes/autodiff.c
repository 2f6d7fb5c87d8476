/* autodiff: reverse-mode automatic differentiation; an inference graph
 * becomes a training graph.
 *
 * Requires: a verified inference graph with a single output, with no
 *           batchnorm folded (fold_batchnorm must not run before it).  The
 *           output may end in `loss(...)` (a LOSS node), which says which
 *           loss to train with; else the loss is cross-entropy, and the output
 *           must be class scores [N, K] (or [N, K, H, W], per position).
 * Does:     keeps the inference nodes as they are (PHASE_RUN: the eval-mode
 *           forward the trainer tests with), then adds, in PHASE_GRAD,
 *             - a copy of the forward in training mode (BATCHNORM becomes
 *               BATCHNORM_TRAIN: batch statistics, running averages updated);
 *               the LOSS node's copy is left for dce,
 *             - the loss of the copied output (LOSS's input) against the
 *               labels (a new value: class indices, or targets shaped like
 *               the output): xent_loss, bce_loss or mse_loss, and its gradient,
 *             - the backward: for each copied node, last to first, the
 *               gradient rule of its op (its registry entry's grad) adds the nodes
 *               computing its inputs' gradients from its outputs'; a value
 *               used several times sums its gradients with ADD;
 *           and in PHASE_UPDATE an OPTIM_UPDATE per trainable parameter, with
 *           two moments (V_STATE).  Fills the graph's training record
 *           (train.h; the request's, if one was made): labels, loss and its
 *           kind, training logits, and for each trained parameter its
 *           gradient and moments (and each input's gradient when the request
 *           asks for input_grads).  Frozen parameters (the request's) get none,
 *           and the backward is pruned below the lowest trainable one: a
 *           value of the training copy needs a gradient only if something
 *           trainable (a parameter not frozen, an input gradcheck asks for)
 *           reaches it.  A batchnorm whose weight and bias are both frozen
 *           stays in eval mode in the copy (running statistics, not updated;
 *           PyTorch's .eval() for that layer); its input's gradient is
 *           batchnorm_eval_grad (dy times weight / sqrt(running_var + eps)).
 * Keeps:    the inference nodes and outputs; parameter names.
 * Breaks:   nothing; leaves gradients nobody needs (of the first layer's
 *           input, say) for dce.  A net using an op without a gradient rule
 *           is rejected, naming the op and its line; so is a loss(...)
 *           anywhere but at the end of the output.
 */
#include <stdlib.h>
#include <string.h>

#include "../opkit.h"
#include "../passes.h"
#include "../train.h"

/* The gradient rules' context (opkit.h). */
struct GradCtx {
    Graph *g;
    const Training *t; /* the request: frozen parameters, input gradients; the labels */
    Value **fwd;  /* by value id: the training-mode copy of an inference value */
    Value **grad; /* by value id: d loss / d value, summed so far */
    bool *live;   /* by value id: something trainable reaches the value (its gradient is needed) */
    int nvalues;  /* size of the arrays (ids of values made before the pass) */
    bool ok;
};
typedef struct GradCtx AD;

static bool needs_grad(AD *ad, const Value *v) {
    switch (v->kind) {
    case V_ACT: return ad->live[v->id];
    case V_PARAM: return !train_frozen(ad->g, v);
    case V_INPUT: return ad->t->input_grads && v != ad->t->labels;
    default: return false;
    }
}

/* Grows the per-value arrays for values made during the pass. */
static void fit(AD *ad) {
    int n = ad->g->nvalues;
    if (n <= ad->nvalues) return;
    ad->fwd = realloc(ad->fwd, sizeof *ad->fwd * (size_t)n);
    ad->grad = realloc(ad->grad, sizeof *ad->grad * (size_t)n);
    ad->live = realloc(ad->live, sizeof *ad->live * (size_t)n);
    memset(ad->fwd + ad->nvalues, 0, sizeof *ad->fwd * (size_t)(n - ad->nvalues));
    memset(ad->grad + ad->nvalues, 0, sizeof *ad->grad * (size_t)(n - ad->nvalues));
    memset(ad->live + ad->nvalues, 0, sizeof *ad->live * (size_t)(n - ad->nvalues));
    ad->nvalues = n;
}

/* A node named, placed and with the attributes of `like`.  An output is
 * stored blocked as an input of its shape is (the gradient of a value has
 * the value's layout: relu_grad's dy and y, maxpool_grad's x), else plain,
 * and plain where a parameter has its shape (a weight's gradient); a rule
 * that needs another layout sets it. */
static Node *add(AD *ad, Op op, const Node *like, Value **in, int nin) {
    Node *n = graph_add_node(ad->g, op, like->name, in, nin, &like->a, like->span);
    if (!n) {
        ad->ok = false;
        return NULL;
    }
    for (int j = 0; j < n->nout; j++) {
        int cb = 0;
        bool param = false;
        for (int i = 0; i < nin; i++)
            if (shape_eq(&in[i]->shape, &n->out[j]->shape)) {
                param |= in[i]->kind == V_PARAM;
                if (in[i]->cblock) cb = in[i]->cblock;
            }
        n->out[j]->cblock = param ? 0 : cb;
    }
    fit(ad);
    return n;
}

/* Adds gv to the gradient of v. */
static void accum(AD *ad, Value *v, Value *gv) {
    if (!gv || !needs_grad(ad, v)) return;
    Value *old = ad->grad[v->id];
    if (!old) {
        ad->grad[v->id] = gv;
        return;
    }
    Node *sum = add(ad, OP_ADD, gv->def, (Value *[]){old, gv}, 2);
    if (sum) ad->grad[v->id] = sum->out[0];
}

/* ---- the gradient rules' API (opkit.h) ---------------------------------------------- */

bool grad_needed(GradCtx *c, const Value *v) { return needs_grad(c, v); }
Node *grad_node(GradCtx *c, Op op, const Node *like, Value **in, int nin) { return add(c, op, like, in, nin); }
void grad_accum(GradCtx *c, Value *v, Value *gv) { accum(c, v, gv); }
void grad_fail(GradCtx *c) { c->ok = false; }

Value *grad_unbroadcast(GradCtx *c, Node *n, Value *g, Value *v) {
    if (!g || shape_eq(&g->shape, &v->shape)) return g;
    return grad_out0(add(c, OP_REDUCE_LIKE, n, (Value *[]){g, v}, 2));
}

/* The op a training build's forward copy of n uses: a batchnorm whose weight
 * and bias are both frozen stays in eval mode (transfer learning). */
static Op train_op(const AD *ad, const Node *n) {
    if (n->op == OP_BATCHNORM && train_frozen(ad->g, n->in[1]) && train_frozen(ad->g, n->in[2])) return OP_BATCHNORM;
    Op t = (Op)op_rules(n->op)->train_as;
    return t != OP_NONE ? t : n->op;
}

/* ---- the pass ---------------------------------------------------------------------- */

/* The training-mode copy of v, or v itself when no node computes it (an
 * input, a parameter). */
static Value *forward_of(const AD *ad, Value *v) { return ad->fwd[v->id] ? ad->fwd[v->id] : v; }

/* Copies the inference forward in training mode; returns false on error. */
static bool copy_forward(AD *ad, int nforward) {
    Graph *g = ad->g;
    for (int i = 0; i < nforward; i++) {
        Node *n = g->nodes[i];
        if (n->dead) continue;
        if (op_has(n->op, F_INIT)) { /* packed weights: live where their parameters are */
            bool live = false;
            for (int j = 0; j < n->nin; j++) live |= ad->live[n->in[j]->id] || needs_grad(ad, n->in[j]);
            for (int j = 0; j < n->nout; j++) ad->live[n->out[j]->id] = live;
            continue;
        }
        Op op = train_op(ad, n);
        if (!op_rules(op)->grad) {
            const char *why = op_rules(op)->no_grad;
            if (why && strcmp(why, NO_GRAD_YET) != 0) /* a reason, not a gap */
                diag_error(n->span, "training: the op '%s' has no gradient (%s)", op_name(n->op), why);
            else
                diag_error(n->span, "training: the op '%s' has no gradient rule yet", op_name(n->op));
            return false;
        }
        Value *in[IR_MAX_IN];
        bool live = false; /* whether anything trainable reaches the copy's outputs */
        for (int j = 0; j < n->nin; j++) {
            in[j] = forward_of(ad, n->in[j]);
            live |= ad->live[in[j]->id] || needs_grad(ad, in[j]);
        }
        Node *c = add(ad, op, n, in, n->nin);
        if (!c) return false;
        for (int j = 0; j < n->nout; j++) {
            c->out[j]->cblock = n->out[j]->cblock; /* stored as the inference value (layout_train) */
            ad->fwd[n->out[j]->id] = c->out[j];
            ad->live[c->out[j]->id] = live;
        }
    }
    return true;
}

/* The loss the net asks for: the attributes of the LOSS node that makes its
 * output, or cross-entropy's defaults.  Reports a LOSS elsewhere, and an
 * output cross-entropy cannot take. */
static bool choose_loss(Graph *g, LossAttrs *a, Value **scores) {
    Value *out = g->outputs[0].v;
    Node *end = out->def && out->def->op == OP_LOSS ? out->def : NULL;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (!n->dead && n->op == OP_LOSS && n != end) {
            diag_error(n->span, "loss(...) must be the last call of the net's output");
            return false;
        }
    }
    *a = end ? end->a.loss : loss_attrs_default();
    *scores = end ? end->in[0] : out;
    if (a->kind == LOSS_CROSS_ENTROPY && (*scores)->shape.rank != 2 && (*scores)->shape.rank != 4) {
        char b[128];
        diag_error(g->outputs[0].span,
                   "training with cross-entropy needs the net's output to be class scores [K] or [K, H, W], got %s",
                   value_sample_str(*scores, b, sizeof b));
        return false;
    }
    return true;
}

/* The labels' shape: the class index of each sample ([N]) or position ([N,
 * H, W]) for cross-entropy, else the output's. */
static Shape labels_shape(const LossAttrs *a, const Value *scores) {
    if (a->kind != LOSS_CROSS_ENTROPY) return scores->shape;
    Shape s = scores->shape;
    s.rank--;
    for (int i = 1; i < s.rank; i++) s.d[i] = scores->shape.d[i + 1];
    return s;
}

static const Op loss_ops[][2] = {
    [LOSS_CROSS_ENTROPY] = {OP_XENT_LOSS, OP_XENT_GRAD},
    [LOSS_BCE_WITH_LOGITS] = {OP_BCE_LOSS, OP_BCE_GRAD},
    [LOSS_MSE] = {OP_MSE_LOSS, OP_MSE_GRAD},
};

PassResult pass_autodiff(Graph *g) {
    if (train_of(g)) return PASS_UNCHANGED;
    if (g->noutputs != 1) {
        diag_error(g->noutputs ? g->outputs[1].span : (Span){0, 0},
                   "training needs a net with one output (the one the loss is of), got %d", g->noutputs);
        return PASS_FAILED;
    }
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead && g->nodes[i]->op == OP_BN_FOLD) {
            diag_error(g->nodes[i]->span, "training: batchnorm folding must not run before autodiff");
            return PASS_FAILED;
        }
    LossAttrs lossa;
    Value *scores;
    if (!choose_loss(g, &lossa, &scores)) return PASS_FAILED;
    Training *t = train_begin(g);
    AD ad = {.g = g, .t = t, .ok = true};
    fit(&ad);
    int nforward = g->nnodes;
    Span out_span = g->outputs[0].span;

    graph_set_phase(g, PHASE_GRAD);
    t->lossa = lossa;
    t->labels = graph_add_value(g, V_INPUT, lossa.kind == LOSS_CROSS_ENTROPY ? "labels" : "targets",
                                labels_shape(&lossa, scores), out_span);
    fit(&ad);
    bool ok = copy_forward(&ad, nforward);
    if (ok) {
        Value *logits = forward_of(&ad, scores); /* may be an input itself */
        t->logits = logits;
        Node loss_site = {.name = "loss", .span = out_span, .a.loss = lossa};
        const Op *ops = loss_ops[lossa.kind];
        Node *loss = add(&ad, ops[0], &loss_site, (Value *[]){logits, t->labels}, 2);
        Node *dlogits = add(&ad, ops[1], &loss_site, (Value *[]){logits, t->labels}, 2);
        ok = loss && dlogits;
        if (ok) {
            t->loss = loss->out[0];
            ad.grad[logits->id] = dlogits->out[0];
        }
        /* Backward over the training-mode copies, last to first. */
        for (int i = g->nnodes - 1; ok && i >= nforward; i--) {
            Node *n = g->nodes[i];
            Value *dy = ad.grad[n->out[0]->id];
            if (dy && op_rules(n->op)->grad) op_rules(n->op)->grad(&ad, n, dy);
            ok = ad.ok;
        }
    }
    if (ok) {
        graph_set_phase(g, PHASE_UPDATE);
        int nvalues = g->nvalues, ntrained = 0;
        for (int i = 0; i < nvalues && ok; i++) {
            Value *v = g->values[i], *dv = ad.grad[v->id];
            if (!dv) continue;
            if (v->kind == V_INPUT && v != t->labels && t->input_grads) train_set_grad(g, v, dv);
            if (v->kind != V_PARAM || train_frozen(g, v)) continue;
            ntrained++;
            Value *m1 = graph_add_value(g, V_STATE, arena_printf(g->arena, "%s.moment1", v->name), v->shape, v->span);
            Value *m2 = graph_add_value(g, V_STATE, arena_printf(g->arena, "%s.moment2", v->name), v->shape, v->span);
            train_set_grad(g, v, dv);
            train_set_moments(g, v, m1, m2);
            Node site = {.name = v->name, .span = v->span};
            ok = add(&ad, OP_OPTIM_UPDATE, &site, (Value *[]){v, dv, m1, m2}, 4) != NULL;
        }
        /* A gradient check of input gradients needs no parameter; training does. */
        if (ok && ntrained == 0 && !t->input_grads) {
            diag_error(out_span, "training: the net has no parameter to train (none reaches the output, or all are frozen)");
            ok = false;
        }
    }
    graph_set_phase(g, PHASE_RUN);
    free(ad.fwd);
    free(ad.grad);
    free(ad.live);
    return ok ? PASS_CHANGED : PASS_FAILED;
}
