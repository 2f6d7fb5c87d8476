/* The CPU check of emitted programs: netrt_main, the trainer and the gradient
 * check call netrt_cpu_ok first, so a program built for instructions this CPU
 * lacks (netc build --target avx2|avx512) says so in one line and exits
 * instead of dying of an illegal instruction.
 *
 * This file, like all of libnetrt, is compiled for the baseline x86-64
 * (no -march): the check itself executes nothing but cpuid and xgetbv.  A
 * feature counts only if the operating system also saves its registers
 * (XCR0), and each target's feature is the whole x86-64 psABI level that its
 * -march names, since the C compiler may use any instruction of the level
 * (BMI2's shifts, MOVBE, LZCNT, not only the vector ones):
 *   avx2    x86-64-v3: v2 (SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CMPXCHG16B,
 *           LAHF/SAHF) + AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE,
 *           XSAVE enabled by the OS for the SSE and AVX state
 *   avx512  x86-64-v4: v3 + AVX-512 F, BW, CD, DQ, VL, and the OS saving the
 *           opmask and ZMM state
 *
 * Test hook: NETRT_CPU_LIMIT=generic|avx2|avx512 makes the check believe the
 * CPU has at most that (docs/testing.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define NETRT_X86_64 1
#endif

/* The levels, weakest first: what netrt_model.cpu names. */
static const char *const levels[] = {"generic", "avx2", "avx512"};
enum { LEVEL_GENERIC, LEVEL_AVX2, LEVEL_AVX512, NLEVELS };

static int level_of(const char *name) {
    for (int i = 0; i < NLEVELS; i++)
        if (strcmp(levels[i], name) == 0) return i;
    return -1;
}

#ifdef NETRT_X86_64
/* XCR0: which register states the OS saves.  Only called once cpuid says
 * OSXSAVE, when xgetbv exists; written as asm so that this file needs no
 * -mxsave. */
static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

#define HAS(reg, bit) (((reg) >> (bit)) & 1u)

static int hardware_level(void) {
    unsigned a, b, c1, d, b7 = 0, cx = 0;
    if (!__get_cpuid(1, &a, &b, &c1, &d)) return LEVEL_GENERIC;
    if ((unsigned)__get_cpuid_max(0, NULL) >= 7u) {
        unsigned c;
        __cpuid_count(7, 0, a, b7, c, d);
    }
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000001u) __cpuid(0x80000001u, a, b, cx, d);
    /* x86-64-v2 */
    bool v2 = HAS(c1, 0) && HAS(c1, 9) && HAS(c1, 13) && HAS(c1, 19) && HAS(c1, 20) && HAS(c1, 23) && HAS(cx, 0);
    if (!v2 || !HAS(c1, 27)) return LEVEL_GENERIC; /* OSXSAVE: xgetbv is there */
    unsigned long long x = xcr0();
    /* x86-64-v3: AVX (ECX 28), F16C (29), FMA (12), MOVBE (22); AVX2 (EBX7 5),
     * BMI1 (3), BMI2 (8); LZCNT (0x80000001 ECX 5); SSE and AVX state saved */
    bool v3 = HAS(c1, 28) && HAS(c1, 29) && HAS(c1, 12) && HAS(c1, 22) && HAS(b7, 5) && HAS(b7, 3) &&
              HAS(b7, 8) && HAS(cx, 5) && (x & 0x6) == 0x6;
    if (!v3) return LEVEL_GENERIC;
    /* x86-64-v4: AVX-512 F (EBX7 16), DQ (17), CD (28), BW (30), VL (31);
     * opmask, ZMM_Hi256 and Hi16_ZMM state saved (XCR0 bits 5, 6, 7) */
    bool v4 = HAS(b7, 16) && HAS(b7, 17) && HAS(b7, 28) && HAS(b7, 30) && HAS(b7, 31) && (x & 0xe0) == 0xe0;
    return v4 ? LEVEL_AVX512 : LEVEL_AVX2;
}
#else
static int hardware_level(void) { return LEVEL_GENERIC; }
#endif

const char *netrt_cpu_best(void) {
    int level = hardware_level();
    const char *limit = getenv("NETRT_CPU_LIMIT");
    int cap = limit && *limit ? level_of(limit) : -1;
    if (cap >= 0 && cap < level) level = cap;
    return levels[level];
}

bool netrt_cpu_ok(const char *feature, const char *prog) {
    if (!prog) prog = "netrt";
    const char *limit = getenv("NETRT_CPU_LIMIT");
    if (limit && *limit && level_of(limit) < 0) {
        fprintf(stderr, "%s: error: NETRT_CPU_LIMIT is '%s'; it must be generic, avx2 or avx512\n", prog, limit);
        return false;
    }
    if (!feature || !*feature) return true;
    int need = level_of(feature);
    if (need < 0) {
        fprintf(stderr, "%s: error: this program was built for '%s', which this libnetrt does not know\n", prog,
                feature);
        return false;
    }
    if (level_of(netrt_cpu_best()) >= need) return true;
    char why[64] = "";
    if (limit && *limit) snprintf(why, sizeof why, " (NETRT_CPU_LIMIT=%s)", limit);
    fprintf(stderr,
            "%s: error: this program was built for %s (netc build --target %s) and this CPU does not have it%s; "
            "rebuild it with --target native or --target generic\n",
            prog, feature, feature, why);
    return false;
}

int netrt_cpu_check(const char *feature, const char *who, char *err, size_t errlen) {
    if (!feature || !*feature) return 0;
    int need = level_of(feature);
    if (need < 0)
        return netrt_errorf(err, errlen, "%s: built for '%s', which this libnetrt does not know", who, feature);
    if (level_of(netrt_cpu_best()) < need)
        return netrt_errorf(err, errlen,
                            "%s: built for %s (netc --target %s) and this CPU does not have it; rebuild it with "
                            "--target native or --target generic",
                            who, feature, feature);
    return 0;
}
