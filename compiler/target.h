/* The CPU an emitted program is built for.
 *
 * A target fixes what the kernels may assume: the vector width (floats per
 * register) and the number of vector registers, from which blocking factors
 * are chosen (never fixed in a template: a block that fits 32 zmm registers
 * spills on 16 ymm ones), the C compiler's -march, and the feature the
 * emitted program checks for at start.  `generic` has no vector kernels
 * (plain NCHW loops that the C compiler may vectorize for SSE2). */
#ifndef NETC_TARGET_H
#define NETC_TARGET_H

#include <stdbool.h>

typedef enum { TARGET_GENERIC, TARGET_AVX2, TARGET_AVX512 } TargetKind;

typedef struct Target {
    TargetKind kind;
    const char *name;  /* as --target spells it */
    int vec;           /* floats per vector register; 0 for generic */
    int regs;          /* vector registers */
    const char *march; /* the C compiler's -march */
    /* Another flag the C compiler needs, or NULL: for avx512, clang and gcc
     * otherwise split 512-bit vectors into pairs of 256-bit ones (their
     * default for x86-64-v4), halving the kernels' width. */
    const char *cflag;
    const char *cpu;   /* the runtime's name of the feature the program needs (netrt_cpu_*), NULL for generic */
} Target;

/* "generic", "avx2", "avx512", or "native" (the host's best); NULL if unknown. */
const Target *target_find(const char *name);
/* The best target the CPU netc runs on supports. */
const Target *target_host(void);
/* The target every graph has until told otherwise. */
const Target *target_generic(void);

#endif
