/* The targets of target.h. */
#include "target.h"

#include <string.h>

static const Target targets[] = {
    {TARGET_GENERIC, "generic", 0, 16, "x86-64", NULL, NULL},
    {TARGET_AVX2, "avx2", 8, 16, "x86-64-v3", NULL, "avx2"}, /* AVX2 + FMA: 16 ymm */
    {TARGET_AVX512, "avx512", 16, 32, "x86-64-v4", "-mprefer-vector-width=512", "avx512"}, /* F, BW, DQ, VL: 32 zmm */
};

const Target *target_generic(void) { return &targets[0]; }

const Target *target_host(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return &targets[2];
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &targets[1];
#endif
    return &targets[0];
}

const Target *target_find(const char *name) {
    if (strcmp(name, "native") == 0) return target_host();
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (strcmp(targets[i].name, name) == 0) return &targets[i];
    return NULL;
}
