/* A bump allocator: one per AST and one per graph, freed once.
 *
 * Everything allocated from an arena lives until arena_free; nothing is
 * freed alone.  Allocation failure aborts (netc exits with status 2). */
#ifndef NETC_ARENA_H
#define NETC_ARENA_H

#include <stddef.h>

typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
/* Zeroed memory, aligned for any type. */
void *arena_alloc(Arena *a, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Grows an array allocated from the arena (the old copy stays until arena_free). */
void *arena_grow(Arena *a, void *old, size_t old_bytes, size_t new_bytes);

/* Appends item to the arena-owned array arr of n elements and capacity cap,
 * doubling it (from 16) when full. */
#define ARENA_PUSH(arena, arr, n, cap, item)                                                 \
    do {                                                                                     \
        if ((n) == (cap)) {                                                                  \
            int nc_ = (cap) ? 2 * (cap) : 16;                                                \
            (arr) = arena_grow((arena), (arr), sizeof *(arr) * (size_t)(cap),                \
                               sizeof *(arr) * (size_t)nc_);                                 \
            (cap) = nc_;                                                                     \
        }                                                                                    \
        (arr)[(n)++] = (item);                                                               \
    } while (0)

#endif
