/* Seeded random numbers: xoshiro256** (Blackman and Vigna), its state filled
 * by splitmix64 so that any seed, 0 included, gives a good state. */
#include <math.h>

#include "netrt.h"

/* splitmix64: a Weyl sequence through its finalizer (netrt_mix64, netrt.h). */
static uint64_t splitmix64(uint64_t *x) { return netrt_mix64(*x += 0x9e3779b97f4a7c15ULL); }

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void netrt_rng_seed(netrt_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t netrt_rng_next(netrt_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double netrt_rng_uniform(netrt_rng *r) {
    /* The top 53 bits fill a double's mantissa exactly. */
    return (double)(netrt_rng_next(r) >> 11) * 0x1.0p-53;
}

double netrt_rng_normal(netrt_rng *r) {
    /* Box-Muller; u1 is in (0, 1] so the log is finite.  The second value of
     * the pair is dropped to keep the state a plain xoshiro state. */
    double u1 = 1.0 - netrt_rng_uniform(r);
    double u2 = netrt_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

uint64_t netrt_rng_below(netrt_rng *r, uint64_t n) {
    if (n == 0) return 0;
    /* Reject the lowest (2^64 mod n) values so every residue is equally
     * likely. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = netrt_rng_next(r);
        if (x >= threshold) return x % n;
    }
}
