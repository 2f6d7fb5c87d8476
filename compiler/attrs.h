/* Per-op attributes: a struct of named fields for each kind of op, so that a
 * field means one thing.  A node's attributes are the union Attrs, and its
 * op says which member holds them (the comment on each struct lists the ops;
 * an op missing from every list has no attributes).  Gradient ops read the
 * attributes of the forward op they undo, which autodiff copies to them. */
#ifndef NETC_ATTRS_H
#define NETC_ATTRS_H

#include <stdbool.h>
#include <stdint.h>

#define IR_MAX_RANK 6
#define IR_MAX_ANCHORS 16 /* yolo_decode: anchors of one detection head */

/* conv (dwconv is a conv with groups = C), deconv, conv_grad_input,
 * conv_grad_weight. */
typedef struct ConvAttrs {
    int64_t out;       /* output channels */
    int kernel[2];     /* kh, kw */
    int stride[2];     /* sh, sw */
    int pad[4];        /* top, bottom, left, right */
    int dilation[2];   /* dh, dw */
    int groups;
    bool bias;         /* has a bias input */
    int output_pad[2]; /* deconv: extra rows and columns at the bottom and right (0 for conv) */
    int act;           /* conv_blocked: the activation its store applies (fuse_epilogue), EPILOGUE_* */
    double act_k;      /* and that activation's constant (leaky_relu's slope) */
} ConvAttrs;

/* The activations fuse_epilogue folds into a conv_blocked's store: relu and
 * relu6 on the accumulators, the others over each finished output row with
 * the standalone kernel's expression (activation_expr). */
enum {
    EPILOGUE_NONE, EPILOGUE_RELU, EPILOGUE_RELU6, EPILOGUE_SILU, EPILOGUE_SIGMOID, EPILOGUE_HARDSWISH, EPILOGUE_TANH,
    EPILOGUE_LEAKY_RELU
};

/* linear, linear_grad_input, linear_grad_weight. */
typedef struct LinearAttrs {
    int64_t out; /* output features */
    bool bias;   /* has a bias input */
} LinearAttrs;

/* batchnorm, batchnorm_train, batchnorm_grad, bn_fold. */
typedef struct BatchnormAttrs {
    double eps;
    double momentum; /* the running averages' update (training) */
    bool relu;       /* fuse_train: batchnorm_train's output is relu'd; batchnorm_grad's dy
                      * counts where its sixth input (the relu's output) is positive */
} BatchnormAttrs;

/* layernorm, instancenorm. */
typedef struct NormAttrs {
    double eps;
    bool affine; /* has weight and bias inputs */
} NormAttrs;

/* lrn: x / (k + alpha / size * sum of squares over size channels)^beta. */
typedef struct LrnAttrs {
    int size;
    double alpha, beta, k;
} LrnAttrs;

/* maxpool, avgpool, maxpool_idx, maxpool_grad, avgpool_grad. */
typedef struct PoolAttrs {
    int kernel[2];  /* kh, kw */
    int stride[2];  /* sh, sw */
    int pad[4];     /* top, bottom, left, right */
    bool ceil;      /* PyTorch's ceil_mode for the output size */
    bool count_pad; /* avgpool: padding counts in the divisor (count_include_pad) */
} PoolAttrs;

/* adaptive_avgpool. */
typedef struct AdaptivePoolAttrs {
    int64_t size[2]; /* output height and width */
} AdaptivePoolAttrs;

enum { UPSAMPLE_NEAREST, UPSAMPLE_BILINEAR };

/* upsample. */
typedef struct UpsampleAttrs {
    int64_t size[2]; /* output height and width */
    double scale[2]; /* input size / output size per axis, as PyTorch maps coordinates */
    int mode;        /* UPSAMPLE_NEAREST or UPSAMPLE_BILINEAR */
} UpsampleAttrs;

/* slice: channels [start, end). */
typedef struct SliceAttrs {
    int64_t start, end;
} SliceAttrs;

/* channel_shuffle. */
typedef struct ShuffleAttrs {
    int groups;
} ShuffleAttrs;

/* reshape: the per-sample sizes. */
typedef struct ReshapeAttrs {
    int ndims;
    int64_t dims[IR_MAX_RANK];
} ReshapeAttrs;

/* pad: zeros around H and W. */
typedef struct PadAttrs {
    int pad[4]; /* top, bottom, left, right */
} PadAttrs;

/* leaky_relu. */
typedef struct LeakyReluAttrs {
    double slope;
} LeakyReluAttrs;

/* elu. */
typedef struct EluAttrs {
    double alpha;
} EluAttrs;

/* act_grad: the activation it differentiates, and its constant (leaky_relu's
 * slope, elu's alpha). */
typedef struct ActGradAttrs {
    int of; /* an Op */
    double k;
} ActGradAttrs;

/* dropout (the identity at inference; p kept for the record). */
typedef struct DropoutAttrs {
    double p;
} DropoutAttrs;

/* loss (the identity at inference: it names the training loss of the net's
 * output), xent_loss, xent_grad, bce_loss, bce_grad, mse_loss, mse_grad. */
enum { LOSS_CROSS_ENTROPY, LOSS_BCE_WITH_LOGITS, LOSS_MSE };
typedef struct LossAttrs {
    int kind;               /* LOSS_* */
    double label_smoothing; /* cross_entropy: the default of the trainer's --label-smoothing */
    int64_t ignore_index;   /* cross_entropy: a label that counts for nothing (PyTorch's -100) */
    int nweight;            /* cross_entropy: K class weights, or 0 for none */
    const float *weight;    /* the graph arena's */
} LossAttrs;

/* PyTorch's ignore_index default (a label no class has). */
enum { LOSS_IGNORE_NONE = -100 };
/* The loss of a net without loss(...): cross-entropy with PyTorch's defaults. */
static inline LossAttrs loss_attrs_default(void) {
    return (LossAttrs){.kind = LOSS_CROSS_ENTROPY, .ignore_index = LOSS_IGNORE_NONE};
}

/* yolo_decode. */
typedef struct YoloAttrs {
    int64_t classes;
    int stride; /* pixels per grid cell */
    int nanchors;
    double anchors[IR_MAX_ANCHORS][2]; /* (width, height) in pixels */
} YoloAttrs;

/* nms. */
typedef struct NmsAttrs {
    double iou;    /* a box overlapping a kept one of its class by more is dropped */
    double score;  /* boxes scoring at most this are not candidates */
    int64_t max;   /* boxes kept per sample */
} NmsAttrs;

/* bottleneck (fuse_bottleneck): the three blocked convs it runs band by band,
 * each with the attributes it had as a node: the 1x1 expansion, the middle
 * conv (depthwise when its groups equal its channels) and the 1x1 projection. */
typedef struct BottleneckAttrs {
    ConvAttrs conv[3];
} BottleneckAttrs;

/* pack_conv: the vector width it packs for. */
typedef struct PackAttrs {
    int vec;
    int groups; /* a grouped conv's groups (conv_blocked_span); 0 or 1 for one group or a depthwise conv */
    bool transpose; /* the transposed, flipped weight of the input gradient (one group) */
} PackAttrs;

typedef union Attrs {
    ConvAttrs conv;
    LinearAttrs linear;
    BatchnormAttrs bn;
    NormAttrs norm;
    LrnAttrs lrn;
    PoolAttrs pool;
    AdaptivePoolAttrs adaptive;
    UpsampleAttrs upsample;
    SliceAttrs slice;
    ShuffleAttrs shuffle;
    ReshapeAttrs reshape;
    PadAttrs pad;
    LeakyReluAttrs leaky;
    EluAttrs elu;
    DropoutAttrs dropout;
    LossAttrs loss;
    ActGradAttrs actgrad;
    YoloAttrs yolo;
    NmsAttrs nms;
    PackAttrs pack;
    BottleneckAttrs bottleneck;
} Attrs;

#endif
