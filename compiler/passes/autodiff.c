/* autodiff: reverse-mode automatic differentiation; an inference graph
 * becomes a training graph.
 *
 * Requires: a verified inference graph whose single output is [N, K] logits,
 *           with no batchnorm folded (fold_batchnorm must not run before it).
 * Does:     keeps the inference nodes as they are (PHASE_RUN: the eval-mode
 *           forward the trainer tests with), then adds, in PHASE_GRAD,
 *             - a copy of the forward in training mode (BATCHNORM becomes
 *               BATCHNORM_TRAIN: batch statistics, running averages updated),
 *             - the loss: softmax cross-entropy of the copied logits against
 *               g->labels (a new [N] value), averaged over the batch,
 *             - the backward: for each copied node, last to first, the
 *               gradient rule of its op (a table indexed by op) adds the nodes
 *               computing its inputs' gradients from its outputs'; a value
 *               used several times sums its gradients with ADD;
 *           and in PHASE_UPDATE an SGD_UPDATE per trainable parameter, with
 *           a velocity (V_STATE) for momentum.  Sets g->train, g->labels,
 *           g->loss, g->train_logits, and each parameter's ->grad and ->state
 *           (each input's ->grad too when g->want_input_grads).
 * Keeps:    the inference nodes and outputs; parameter names.
 * Breaks:   nothing; leaves gradients nobody needs (of the first layer's
 *           input, say) for dce.  A net using an op without a gradient rule
 *           is rejected, naming the op and its line.
 */
#include <stdlib.h>
#include <string.h>

#include "../passes.h"

typedef struct AD {
    Graph *g;
    Value **fwd;  /* by value id: the training-mode copy of an inference value */
    Value **grad; /* by value id: d loss / d value, summed so far */
    int nvalues;  /* size of both arrays (ids of values made before the pass) */
    bool ok;
} AD;

static bool needs_grad(AD *ad, const Value *v) {
    switch (v->kind) {
    case V_ACT: return true;
    case V_PARAM: return !v->frozen;
    case V_INPUT: return ad->g->want_input_grads && v != ad->g->labels;
    default: return false;
    }
}

/* Grows the per-value arrays for values made during the pass. */
static void fit(AD *ad) {
    int n = ad->g->nvalues;
    if (n <= ad->nvalues) return;
    ad->fwd = realloc(ad->fwd, sizeof *ad->fwd * (size_t)n);
    ad->grad = realloc(ad->grad, sizeof *ad->grad * (size_t)n);
    memset(ad->fwd + ad->nvalues, 0, sizeof *ad->fwd * (size_t)(n - ad->nvalues));
    memset(ad->grad + ad->nvalues, 0, sizeof *ad->grad * (size_t)(n - ad->nvalues));
    ad->nvalues = n;
}

static Node *add(AD *ad, Op op, const Node *like, Value **in, int nin) {
    Node *n = graph_add_node(ad->g, op, like->name, in, nin, &like->a, like->span);
    if (!n) {
        ad->ok = false;
        return NULL;
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

/* One output of a new node, or NULL if it could not be made. */
static Value *out0(Node *n) { return n ? n->out[0] : NULL; }

/* ---- gradient rules: n is the training-mode node, dy its output's gradient ---- */

typedef void (*GradRule)(AD *ad, Node *n, Value *dy);

static void grad_conv(AD *ad, Node *n, Value *dy) {
    Value *x = n->in[0], *w = n->in[1];
    if (needs_grad(ad, x)) accum(ad, x, out0(add(ad, OP_CONV_GRAD_INPUT, n, (Value *[]){dy, w, x}, 3)));
    if (needs_grad(ad, w)) accum(ad, w, out0(add(ad, OP_CONV_GRAD_WEIGHT, n, (Value *[]){dy, x, w}, 3)));
    if (n->nin == 3 && needs_grad(ad, n->in[2])) accum(ad, n->in[2], out0(add(ad, OP_BIAS_GRAD, n, &dy, 1)));
}

static void grad_linear(AD *ad, Node *n, Value *dy) {
    Value *x = n->in[0], *w = n->in[1];
    if (needs_grad(ad, x)) accum(ad, x, out0(add(ad, OP_LINEAR_GRAD_INPUT, n, (Value *[]){dy, w}, 2)));
    if (needs_grad(ad, w)) accum(ad, w, out0(add(ad, OP_LINEAR_GRAD_WEIGHT, n, (Value *[]){dy, x}, 2)));
    if (n->nin == 3 && needs_grad(ad, n->in[2])) accum(ad, n->in[2], out0(add(ad, OP_BIAS_GRAD, n, &dy, 1)));
}

static void grad_batchnorm(AD *ad, Node *n, Value *dy) {
    Node *b = add(ad, OP_BATCHNORM_GRAD, n, (Value *[]){dy, n->in[0], n->in[1], n->out[1], n->out[2]}, 5);
    if (!b) return;
    accum(ad, n->in[0], b->out[0]);
    accum(ad, n->in[1], b->out[1]);
    accum(ad, n->in[2], b->out[2]);
}

/* Elementwise ops whose gradient reads their output. */
static void grad_from_output(AD *ad, Node *n, Value *dy) {
    static const Op grad_op[OP_COUNT] = {
        [OP_RELU] = OP_RELU_GRAD, [OP_TANH] = OP_TANH_GRAD,
        [OP_SIGMOID] = OP_SIGMOID_GRAD, [OP_SOFTMAX] = OP_SOFTMAX_GRAD,
    };
    accum(ad, n->in[0], out0(add(ad, grad_op[n->op], n, (Value *[]){dy, n->out[0]}, 2)));
}

/* Ops whose gradient reads the input (or only its shape). */
static void grad_from_input(AD *ad, Node *n, Value *dy) {
    static const Op grad_op[OP_COUNT] = {
        [OP_MAXPOOL] = OP_MAXPOOL_GRAD, [OP_AVGPOOL] = OP_AVGPOOL_GRAD,
        [OP_GLOBAL_AVGPOOL] = OP_GLOBAL_AVGPOOL_GRAD, [OP_FLATTEN] = OP_RESHAPE_GRAD,
    };
    accum(ad, n->in[0], out0(add(ad, grad_op[n->op], n, (Value *[]){dy, n->in[0]}, 2)));
}

/* g, summed down to v's shape where v was broadcast per channel. */
static Value *unbroadcast(AD *ad, Node *n, Value *g, Value *v) {
    if (!g || shape_eq(&g->shape, &v->shape)) return g;
    return out0(add(ad, OP_REDUCE_LIKE, n, (Value *[]){g, v}, 2));
}

static void grad_add(AD *ad, Node *n, Value *dy) {
    for (int i = 0; i < 2; i++)
        if (needs_grad(ad, n->in[i])) accum(ad, n->in[i], unbroadcast(ad, n, dy, n->in[i]));
}

static void grad_mul(AD *ad, Node *n, Value *dy) {
    for (int i = 0; i < 2; i++) {
        Value *v = n->in[i], *other = n->in[1 - i];
        if (!needs_grad(ad, v)) continue;
        Value *g = out0(add(ad, OP_MUL, n, (Value *[]){dy, other}, 2));
        accum(ad, v, unbroadcast(ad, n, g, v));
    }
}

static const GradRule grad_rule[OP_COUNT] = {
    [OP_CONV] = grad_conv,
    [OP_LINEAR] = grad_linear,
    [OP_BATCHNORM_TRAIN] = grad_batchnorm,
    [OP_RELU] = grad_from_output,
    [OP_TANH] = grad_from_output,
    [OP_SIGMOID] = grad_from_output,
    [OP_SOFTMAX] = grad_from_output,
    [OP_MAXPOOL] = grad_from_input,
    [OP_AVGPOOL] = grad_from_input,
    [OP_GLOBAL_AVGPOOL] = grad_from_input,
    [OP_FLATTEN] = grad_from_input,
    [OP_ADD] = grad_add,
    [OP_MUL] = grad_mul,
};

/* ---- the pass ---------------------------------------------------------------------- */

/* The training-mode copy of v, or v itself when no node computes it (an
 * input, a parameter). */
static Value *forward_of(const AD *ad, Value *v) { return ad->fwd[v->id] ? ad->fwd[v->id] : v; }

/* Copies the inference forward in training mode; returns false on error. */
static bool copy_forward(AD *ad, int nforward) {
    Graph *g = ad->g;
    for (int i = 0; i < nforward; i++) {
        Node *n = g->nodes[i];
        if (n->dead || op_has(n->op, F_INIT)) continue;
        if (!grad_rule[n->op == OP_BATCHNORM ? OP_BATCHNORM_TRAIN : n->op]) {
            diag_error(n->span, "training: the op '%s' has no gradient rule yet", op_name(n->op));
            return false;
        }
        Value *in[IR_MAX_IN];
        for (int j = 0; j < n->nin; j++) in[j] = forward_of(ad, n->in[j]);
        Node *c = add(ad, n->op == OP_BATCHNORM ? OP_BATCHNORM_TRAIN : n->op, n, in, n->nin);
        if (!c) return false;
        for (int j = 0; j < n->nout; j++) ad->fwd[n->out[j]->id] = c->out[j];
    }
    return true;
}

bool pass_autodiff(Graph *g) {
    if (g->train) return false;
    if (g->noutputs != 1 || g->outputs[0].v->shape.rank != 2) {
        char b[128];
        diag_error(g->noutputs ? g->outputs[0].span : (Span){0, 0},
                   "training needs the net's one output to be the class scores [K], got %s",
                   g->noutputs == 1 ? value_sample_str(g->outputs[0].v, b, sizeof b) : "several outputs");
        return false;
    }
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i]->dead && g->nodes[i]->op == OP_BN_FOLD) {
            diag_error(g->nodes[i]->span, "training: batchnorm folding must not run before autodiff");
            return false;
        }
    AD ad = {.g = g, .ok = true};
    fit(&ad);
    int nforward = g->nnodes;
    Span out_span = g->outputs[0].span;

    graph_set_phase(g, PHASE_GRAD);
    g->train = true;
    g->labels = graph_add_value(g, V_INPUT, "labels", shape_make(1, (int64_t[]){g->batch}), out_span);
    fit(&ad);
    bool ok = copy_forward(&ad, nforward);
    if (ok) {
        Value *logits = forward_of(&ad, g->outputs[0].v); /* may be an input itself */
        g->train_logits = logits;
        Node loss_site = {.name = "loss", .span = out_span};
        Node *loss = add(&ad, OP_XENT_LOSS, &loss_site, (Value *[]){logits, g->labels}, 2);
        Node *dlogits = add(&ad, OP_XENT_GRAD, &loss_site, (Value *[]){logits, g->labels}, 2);
        ok = loss && dlogits;
        if (ok) {
            g->loss = loss->out[0];
            ad.grad[logits->id] = dlogits->out[0];
        }
        /* Backward over the training-mode copies, last to first. */
        for (int i = g->nnodes - 1; ok && i >= nforward; i--) {
            Node *n = g->nodes[i];
            if (n->op == OP_XENT_LOSS || n->op == OP_XENT_GRAD) continue;
            Value *dy = ad.grad[n->out[0]->id];
            if (dy && grad_rule[n->op]) grad_rule[n->op](&ad, n, dy);
            ok = ad.ok;
        }
    }
    if (ok) {
        graph_set_phase(g, PHASE_UPDATE);
        int nvalues = g->nvalues, ntrained = 0;
        for (int i = 0; i < nvalues && ok; i++) {
            Value *v = g->values[i];
            if (v->kind == V_INPUT && v != g->labels && g->want_input_grads) v->grad = ad.grad[v->id];
            if (v->kind != V_PARAM || v->frozen || !ad.grad[v->id]) continue;
            v->grad = ad.grad[v->id];
            ntrained++;
            v->state = graph_add_value(g, V_STATE, arena_printf(g->arena, "%s.velocity", v->name), v->shape, v->span);
            Node site = {.name = v->name, .span = v->span};
            ok = add(&ad, OP_SGD_UPDATE, &site, (Value *[]){v, v->grad, v->state}, 3) != NULL;
        }
        /* A gradient check of input gradients needs no parameter; training does. */
        if (ok && ntrained == 0 && !g->want_input_grads) {
            diag_error(out_span, "training: the net has no parameter to train (none reaches the output, or all are frozen)");
            ok = false;
        }
    }
    graph_set_phase(g, PHASE_RUN);
    free(ad.fwd);
    free(ad.grad);
    return ok;
}
