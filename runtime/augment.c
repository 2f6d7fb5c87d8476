/* Data augmentation of training batches: --augment crop=P,flip
 * (runtime/augment.h).  The trainer's batch gathering (train.c, on the
 * background thread) calls it for each training sample, so the staged batch
 * is exactly what the net sees; test and validation batches are never
 * augmented. */
#include "augment.h"

#include <stdlib.h>
#include <string.h>

#include "netrt.h"

int netrt_augment_parse(const char *spec, netrt_augment *a, char *err, size_t errlen) {
    *a = (netrt_augment){0};
    const char *p = spec;
    bool crop_given = false;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 4 && !strncmp(p, "flip", 4)) {
            if (a->flip) return netrt_errorf(err, errlen, "--augment: 'flip' is given twice in '%s'", spec);
            a->flip = true;
        } else if (n > 5 && !strncmp(p, "crop=", 5)) {
            char buf[32];
            if (crop_given) return netrt_errorf(err, errlen, "--augment: 'crop' is given twice in '%s'", spec);
            if (n - 5 >= sizeof buf) goto bad_crop;
            memcpy(buf, p + 5, n - 5);
            buf[n - 5] = 0;
            char *e;
            long long v = strtoll(buf, &e, 10);
            if (*e || buf[0] == '-' || buf[0] == '+' || v < 0 || v > 1000) goto bad_crop;
            a->crop = v;
            crop_given = true;
        } else {
            return netrt_errorf(err, errlen,
                                "--augment: unknown item '%.*s' in '%s' (expected crop=P and/or flip, "
                                "separated by commas)",
                                (int)(n > 40 ? 40 : n), p, spec);
        }
        if (!comma) break;
        p = comma + 1;
        if (!*p) return netrt_errorf(err, errlen, "--augment: '%s' ends in a comma", spec);
    }
    a->on = a->flip || a->crop > 0;
    return 0;
bad_crop:
    return netrt_errorf(err, errlen, "--augment: crop=P needs a padding P from 0 to 1000, in '%s'", spec);
}

/* A number in [0, n) from 32 random bits, by multiplication (no modulo bias
 * worth the name for n this small). */
static int64_t below(uint32_t bits, int64_t n) {
    return (int64_t)(((uint64_t)bits * (uint64_t)n) >> 32);
}

netrt_augment_choice netrt_augment_choose(const netrt_augment *a, uint64_t seed, int64_t epoch, int64_t sample) {
    /* a key per (seed, epoch), apart from dropout's keys by the constant,
     * then splitmix64's finalizer of the key and the sample index */
    uint64_t key = netrt_mix64(netrt_mix64(seed * 0x9e3779b97f4a7c15ULL + 0x61756720ULL) + (uint64_t)epoch);
    uint64_t h = netrt_mix64(key + ((uint64_t)sample + 1) * 0x9e3779b97f4a7c15ULL);
    uint64_t h2 = netrt_mix64(h);
    netrt_augment_choice ch = {0, 0, false};
    if (a->crop > 0) {
        ch.dy = below((uint32_t)h, 2 * a->crop + 1);
        ch.dx = below((uint32_t)(h >> 32), 2 * a->crop + 1);
    } else {
        ch.dy = ch.dx = 0;
    }
    ch.flip = a->flip && (h2 >> 63);
    return ch;
}

void netrt_augment_apply(const netrt_augment_choice *ch, int64_t pad, int64_t c, int64_t h, int64_t w,
                         const float *src, float *dst) {
    /* output (i, j) reads the padded image at (i + dy, j + dx), the source
     * at (i + dy - pad, j' + dx - pad) with j' = j or, flipped, w - 1 - j;
     * outside the source: the padding's zero */
    int64_t oy = ch->dy - pad, ox = ch->dx - pad;
    for (int64_t k = 0; k < c; k++) {
        const float *s = src + k * h * w;
        float *d = dst + k * h * w;
        for (int64_t i = 0; i < h; i++) {
            int64_t si = i + oy;
            float *row = d + i * w;
            if (si < 0 || si >= h) {
                memset(row, 0, (size_t)w * sizeof *row);
                continue;
            }
            for (int64_t j = 0; j < w; j++) {
                int64_t sj = (ch->flip ? w - 1 - j : j) + ox;
                row[j] = sj >= 0 && sj < w ? s[si * w + sj] : 0.0f;
            }
        }
    }
}
