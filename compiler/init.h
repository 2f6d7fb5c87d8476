/* Parameter initialization, as `netc init` does it (and, later, the trainer).
 *
 * Schemes (ir.h ParamInit): conv and linear weights Xavier/Glorot uniform,
 * or He normal (fan_in) where the layer is followed by a ReLU, directly or
 * through a batchnorm or a residual add; biases zero; batchnorm weight and running_var one,
 * bias and running_mean zero. */
#ifndef NETC_INIT_H
#define NETC_INIT_H

#include <stdint.h>

#include "ir.h"
#include "../runtime/netrt.h"

/* Sets INIT_HE on the weights of conv and linear layers followed by a ReLU
 * (each step the only use of the previous one), unless the .net chose
 * their scheme (Value.init_given). */
void init_choose_schemes(Graph *g);

/* PyTorch's fans of a parameter: dim 1 (fan in) and dim 0 (fan out), times
 * the receptive field (the product of the dims after the first two). */
void param_fans(const Shape *s, double *fan_in, double *fan_out);

/* Fills every parameter from a RNG seeded with `seed` (in graph order) and
 * writes them to a safetensors file.  Returns false after a message. */
bool init_write(Graph *g, uint64_t seed, const char *path);

/* ---- initialization in the language (issue 12) ---------------------------- */

/* A scheme with its arguments resolved (a nonlinearity into its gain, a
 * mode into fan_in 0 / fan_out 1), as netrt_init_scheme reads them. */
typedef struct InitChoice {
    ParamInit scheme;
    double a, b;
    bool set; /* chosen (a default not given is unset) */
} InitChoice;

/* What a net-wide `init key = scheme, ...;` statement names. */
typedef enum {
    INIT_KEY_CONV,      /* conv and dwconv weights */
    INIT_KEY_DECONV,    /* deconv weights */
    INIT_KEY_LINEAR,    /* linear weights */
    INIT_KEY_WEIGHT,    /* every conv, dwconv, deconv and linear weight not named above */
    INIT_KEY_BIAS,      /* every conv, dwconv, deconv and linear bias */
    INIT_KEY_RELU_BIAS, /* the bias of such a layer followed by a ReLU (as He's rule: through batchnorm, +) */
    INIT_KEY_GATE_BIAS, /* the bias of such a layer followed by a sigmoid whose output a `*` multiplies */
    INIT_KEY_COUNT
} InitKey;

/* The statement's keys by InitKey ("conv", ..., "gate_bias"). */
extern const char *const init_key_names[INIT_KEY_COUNT];

/* Whether the scheme needs a parameter of 2 or more dimensions (its fans,
 * or orthogonal's matrix), as torch.nn.init's do. */
bool init_needs_fans(ParamInit scheme);

/* Sets p's scheme as chosen (init_given). */
void init_set(Value *p, const InitChoice *c);

/* Applies a net's defaults (indexed by InitKey) to the parameters whose
 * scheme the .net did not choose per layer; after evaluation, before
 * init_choose_schemes. */
void init_apply_defaults(Graph *g, const InitChoice defaults[INIT_KEY_COUNT]);

/* The runtime's description of parameter p: scheme, arguments, fans, rows. */
netrt_param_init init_param_desc(const Value *p);

/* The classifier's output bias: the [K] bias of the layer that makes the
 * logits (through the loss, flatten, reshape, dropout and global average
 * pooling, which keep softmax(bias) as it is), by its name (the graph's), or
 * NULL.  For the trainer's --output-bias frequencies. */
const char *init_output_bias(const Value *logits);

#endif
