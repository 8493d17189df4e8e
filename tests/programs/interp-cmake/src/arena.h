/* arena.h - bump allocator for compile-time data (tokens, AST). */
#ifndef INTERP_ARENA_H
#define INTERP_ARENA_H

#include "common.h"

typedef struct ArenaBlock ArenaBlock;

typedef struct {
    ArenaBlock *head;
    size_t block_size;
    size_t bytes_used;
    size_t blocks;
} Arena;

typedef struct {
    ArenaBlock *block;
    size_t used;
} ArenaMark;

void arena_init(Arena *a, size_t block_size);
void *arena_alloc(Arena *a, size_t size);
char *arena_strndup(Arena *a, const char *s, size_t n);
ArenaMark arena_mark(const Arena *a);
void arena_release(Arena *a, ArenaMark m); /* free everything allocated after m */
void arena_free(Arena *a);

#endif
