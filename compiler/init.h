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

/* Sets INIT_HE on the weights of conv and linear layers followed by a ReLU
 * (each step the only use of the previous one). */
void init_choose_schemes(Graph *g);

/* PyTorch's fans of a parameter: dim 1 (fan in) and dim 0 (fan out), times
 * the receptive field (the product of the dims after the first two). */
void param_fans(const Shape *s, double *fan_in, double *fan_out);

/* Fills every parameter from a RNG seeded with `seed` (in graph order) and
 * writes them to a safetensors file.  Returns false after a message. */
bool init_write(Graph *g, uint64_t seed, const char *path);

#endif
