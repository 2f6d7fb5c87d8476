/* Single-core peak float32 throughput of this machine, in GFLOP/s.
 *
 *     cc -O2 -o peak tools/peak.c && ./peak          # the widest ISA the CPU has
 *     ./peak all                                     # every ISA the CPU has
 *     ./peak avx2                                    # one ISA: avx512, avx2 or sse
 *
 * prints one line per ISA measured:
 *
 *     peak_gflops 221.7 avx512
 *
 * The loop keeps many independent multiply-add chains in vector registers
 * (acc[i] = acc[i] * m + a, no loads or stores), so that the FMA units never
 * wait for a result: the number of chains has to be at least the FMA latency
 * times the FMAs issued per cycle (4 cycles x 2 per cycle on current x86
 * cores), and the register file bounds it from above:
 *   avx512  16 zmm chains (of 32 registers), _mm512_fmadd_ps: 32 FLOP each;
 *   avx2    12 ymm chains (of 16), _mm256_fmadd_ps (AVX2 and FMA3): 16 FLOP;
 *   sse     12 xmm chains, mulps then addps (x86-64 has no FMA before FMA3):
 *           8 FLOP per pair.
 * Each ISA's kernel is compiled for it alone (a target attribute), and runs
 * only if __builtin_cpu_supports says the CPU has it, so the program needs no
 * -march and runs on any x86-64.  On CPUs that execute 512-bit operations as
 * two 256-bit halves (AMD Zen 4), avx512 and avx2 come out about the same.
 *
 * Each measurement calibrates the iteration count to about 0.3 s, then runs
 * five times and reports the best (the least disturbed by other processes);
 * on a loaded machine it is still a lower bound.  The chains' sum goes to a
 * volatile, so the compiler cannot drop the work; with m just below 1 the
 * values converge to a / (1 - m) and never overflow or go subnormal.
 *
 * Written for netc's `make bench` (tools/bench.py), which reports the
 * GFLOP/s of netc's programs as a percentage of this number.
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SECONDS 0.3
#define REPEATS 5

static volatile float sink;
/* The chains' starting values come from a volatile too, so that the compiler
 * cannot fold a chain that starts on its fixed point. */
static volatile float start = 0.5f;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each kernel runs n iterations and returns the FLOPs one iteration does. */

#define CHAINS512 16
__attribute__((target("avx512f"), noinline)) static double fma_avx512(uint64_t n)
{
    __m512 acc[CHAINS512];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS512; i++)
        acc[i] = _mm512_set1_ps(start + (float)i);
    for (uint64_t k = 0; k < n; k++)
#pragma GCC unroll 16 /* all chains in registers: gcc -O2 would not unroll */
        for (int i = 0; i < CHAINS512; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS512; i++)
        s = _mm512_add_ps(s, acc[i]);
    sink = _mm512_reduce_add_ps(s);
    return CHAINS512 * 16 * 2;
}

#define CHAINS256 12
__attribute__((target("avx2,fma"), noinline)) static double fma_avx2(uint64_t n)
{
    __m256 acc[CHAINS256];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS256; i++)
        acc[i] = _mm256_set1_ps(start + (float)i);
    for (uint64_t k = 0; k < n; k++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS256; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS256; i++)
        s = _mm256_add_ps(s, acc[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    sink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    return CHAINS256 * 8 * 2;
}

#define CHAINS128 12
__attribute__((noinline)) static double mul_add_sse(uint64_t n)
{
    __m128 acc[CHAINS128];
    const __m128 m = _mm_set1_ps(0.999999f), a = _mm_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS128; i++)
        acc[i] = _mm_set1_ps(start + (float)i);
    for (uint64_t k = 0; k < n; k++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS128; i++)
            acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], m), a);
    __m128 s = acc[0];
    for (int i = 1; i < CHAINS128; i++)
        s = _mm_add_ps(s, acc[i]);
    float v[4];
    _mm_storeu_ps(v, s);
    sink = v[0] + v[1] + v[2] + v[3];
    return CHAINS128 * 4 * 2;
}

struct isa {
    const char *name;
    int (*supported)(void);
    double (*kernel)(uint64_t);
};

static int has_avx512(void) { return __builtin_cpu_supports("avx512f"); }
static int has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
static int has_sse(void) { return 1; } /* SSE2 is part of x86-64 */

/* Widest first. */
static const struct isa isas[] = {
    {"avx512", has_avx512, fma_avx512},
    {"avx2", has_avx2, fma_avx2},
    {"sse", has_sse, mul_add_sse},
};
#define NISA (sizeof isas / sizeof isas[0])

/* GFLOP/s: the best of REPEATS runs of about SECONDS each. */
static double measure(const struct isa *isa)
{
    uint64_t n = 1 << 16;
    double t, flops;
    /* Calibrate: grow n until a run takes a tenth of the target, then scale. */
    for (;;) {
        t = now();
        isa->kernel(n);
        t = now() - t;
        if (t >= SECONDS / 10 || n >= (uint64_t)1 << 40)
            break;
        n *= 4;
    }
    n = (uint64_t)((double)n * SECONDS / (t > 0 ? t : 1e-9)) + 1;
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        t = now();
        flops = isa->kernel(n);
        t = now() - t;
        double g = flops * (double)n / t / 1e9;
        if (g > best)
            best = g;
    }
    return best;
}

int main(int argc, char **argv)
{
    const char *want = argc > 1 ? argv[1] : NULL;
    if (argc > 2 || (want && (!strcmp(want, "-h") || !strcmp(want, "--help")))) {
        fprintf(stderr, "usage: %s [all|avx512|avx2|sse]\n"
                        "prints 'peak_gflops <GFLOP/s> <isa>': single-core float32 peak, by default "
                        "of the widest ISA this CPU has\n", argv[0]);
        return argc > 2 ? 2 : 0;
    }
    __builtin_cpu_init();
    int done = 0;
    for (size_t i = 0; i < NISA; i++) {
        const struct isa *isa = &isas[i];
        if (want && strcmp(want, "all") && strcmp(want, isa->name))
            continue;
        if (!isa->supported()) {
            if (want && strcmp(want, "all")) {
                fprintf(stderr, "peak: this CPU does not have %s\n", isa->name);
                return 1;
            }
            continue;
        }
        printf("peak_gflops %.1f %s\n", measure(isa), isa->name);
        fflush(stdout);
        done = 1;
        if (!want)
            break; /* the widest only */
    }
    if (!done) {
        fprintf(stderr, "peak: unknown ISA '%s' (all, avx512, avx2 or sse)\n", want);
        return 2;
    }
    return 0;
}
