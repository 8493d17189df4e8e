/* arena.c - chunked bump allocation.  Everything is released at once when
 * compilation finishes, or back to a saved mark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ARENA_ALIGN 16u
#define ALIGN_UP(n) (((n) + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1))

struct ArenaBlock {
    ArenaBlock *prev;
    size_t used;
    size_t size;
};

static unsigned char *block_data(ArenaBlock *b)
{
    return (unsigned char *)b + ALIGN_UP(sizeof(ArenaBlock));
}

void arena_init(Arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size < 1024 ? 1024 : block_size;
    a->bytes_used = 0;
    a->blocks = 0;
}

static ArenaBlock *new_block(Arena *a, size_t at_least)
{
    size_t size = a->block_size;
    while (size < at_least)
        size *= 2;
    ArenaBlock *b = malloc(ALIGN_UP(sizeof(ArenaBlock)) + size);
    if (!b) {
        fprintf(stderr, "interp: arena out of memory\n");
        exit(70);
    }
    b->prev = a->head;
    b->used = 0;
    b->size = size;
    a->head = b;
    a->blocks++;
    return b;
}

void *arena_alloc(Arena *a, size_t size)
{
    size = ALIGN_UP(size ? size : 1);
    ArenaBlock *b = a->head;
    if (!b || b->size - b->used < size)
        b = new_block(a, size);
    void *p = block_data(b) + b->used;
    b->used += size;
    a->bytes_used += size;
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

ArenaMark arena_mark(const Arena *a)
{
    ArenaMark m;
    m.block = a->head;
    m.used = a->head ? a->head->used : 0;
    return m;
}

void arena_release(Arena *a, ArenaMark m)
{
    while (a->head && a->head != m.block) {
        ArenaBlock *prev = a->head->prev;
        a->bytes_used -= a->head->used;
        free(a->head);
        a->blocks--;
        a->head = prev;
    }
    if (a->head) {
        a->bytes_used -= a->head->used - m.used;
        a->head->used = m.used;
    }
}

void arena_free(Arena *a)
{
    ArenaMark empty = {NULL, 0};
    arena_release(a, empty);
    a->bytes_used = 0;
}
