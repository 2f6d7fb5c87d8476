/* The trainer's debugging views (docs/training.md, "Debugging views"):
 * --monitor (monitor.c), --init-calibrate (calibrate.c), PNG contact sheets
 * for --show-inputs and --worst (png.c), --random-inputs (debugviews.c).
 * Internal to libnetrt: train.c drives them; emitted code never sees this
 * header.  Same conventions as netrt.h: 0 or -1 with a one-line message in
 * err; files are written atomically (a temporary file renamed). */
#ifndef NETRT_DEBUG_H
#define NETRT_DEBUG_H

#include "netrt.h"

/* ---- --monitor DIR [--monitor-every K] (monitor.c) ------------------------------ */

/* Collects, on every K-th step, per tap: the activations' statistics and
 * histogram, ReLUs' zero fraction and dead units; per trained parameter:
 * the gradient's norm and histogram, the weight's norm and the update's.
 * Owns its memory (netrt_monitor_free). */
typedef struct netrt_monitor netrt_monitor;

/* NULL with a message if dir is not a writable directory, or m has no taps. */
netrt_monitor *netrt_monitor_new(const netrt_train_model *m, const char *dir, int64_t every, char *err,
                                 size_t errlen);
/* Before grad() of step `step` (1-based) of epoch `epoch` on nb samples:
 * whether the step is monitored (the taps are then on for this grad()). */
bool netrt_monitor_begin(netrt_monitor *mon, int64_t step, int64_t epoch, int64_t nb);
/* After grad() (before update()) of a monitored step: the gradients, and a
 * copy of the parameters to measure the update. */
void netrt_monitor_after_grad(netrt_monitor *mon);
/* After update() of a monitored step: the update's norms; prints a one-line
 * warning on out for a vanishing or exploding gradient or a layer of mostly
 * dead ReLUs (the first time for each layer and kind). */
void netrt_monitor_after_update(netrt_monitor *mon, FILE *out);
/* Writes DIR/monitor.csv, DIR/monitor_hist.csv and DIR/monitor.html. */
int netrt_monitor_write(netrt_monitor *mon, char *err, size_t errlen);
void netrt_monitor_free(netrt_monitor *mon);

/* ---- PNG contact sheets (png.c, libpng) --------------------------------------- */

/* count images of c channels (1: grey, 3: RGB; any other count shows its
 * first channel) of h x w floats each (C order, channel-major) as a grid
 * of cols columns, each image scaled by `scale` pixels per value and
 * mapped from the min..max over all the images to 0..255; captions[i]
 * (NULL, or NULL entries, for none) drawn under image i in the built-in
 * font.  Writes path atomically. */
int netrt_png_sheet(const char *path, const float *images, int64_t count, int64_t c, int64_t h, int64_t w,
                    const char *const *captions, char *err, size_t errlen);

/* ---- --init-calibrate K (calibrate.c) ------------------------------------------ */

/* Layer-sequential unit-variance initialization (Mishkin and Matas, 2015):
 * for each tap of a conv or linear layer in forward order whose weight is
 * the parameter "<tap>.weight", runs grad() on the K batches that
 * load(ctx, b) puts into the model (b = 0 .. K-1; it returns the active
 * batch), measures the variance
 * of the layer's output over them and scales the weight by 1/sqrt(var),
 * until |var - 1| < 0.1 or 10 rounds; prints each layer's scale on out.  A
 * conv whose ReLU is fused into it (the tap "conv+relu") has its
 * pre-activation variance estimated as 2 E[y^2] of the ReLU's output y.
 * The dropout step counter is restored afterwards. */
int netrt_calibrate(const netrt_train_model *m, int64_t k, int64_t (*load)(void *ctx, int64_t b), void *ctx,
                    FILE *out, char *err, size_t errlen);

#endif
