/* Data augmentation of training batches (--augment crop=P,flip), as
 * torchvision's RandomCrop(size, padding=P) followed by
 * RandomHorizontalFlip(0.5), on NCHW samples of any channel count.
 *
 * The random choices of a sample are a counter-based hash of (seed, epoch,
 * sample index in the file), not a stream: they do not depend on the
 * threads, the order batches are gathered in, or on whether the run was
 * resumed from a checkpoint.  Owned by runtime/augment.c. */
#ifndef NETRT_AUGMENT_H
#define NETRT_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct netrt_augment {
    bool on;      /* any augmentation */
    int64_t crop; /* zero padding P of the random crop; 0: no crop */
    bool flip;    /* horizontal flip with probability 1/2 */
} netrt_augment;

/* One sample's choices: the crop window's top-left corner (dy, dx) in the
 * padded image, each in [0, 2P], and whether to flip. */
typedef struct netrt_augment_choice {
    int64_t dy, dx;
    bool flip;
} netrt_augment_choice;

/* Parses "crop=P,flip" (either item, in any order; P an integer >= 0) into
 * a.  -1 with a one-line message in err for a bad spec. */
int netrt_augment_parse(const char *spec, netrt_augment *a, char *err, size_t errlen);

/* The choices for sample `sample` (its index in the training file) in epoch
 * `epoch` of a run seeded with `seed`. */
netrt_augment_choice netrt_augment_choose(const netrt_augment *a, uint64_t seed, int64_t epoch, int64_t sample);

/* dst (c * h * w floats) = src cropped (from the zero-padded image, window
 * at ch->dy, ch->dx) and then flipped, as ch says.  src and dst must not
 * overlap. */
void netrt_augment_apply(const netrt_augment_choice *ch, int64_t pad, int64_t c, int64_t h, int64_t w,
                         const float *src, float *dst);

#endif
