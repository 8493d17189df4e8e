/* counts.c - count skewed pseudo-random keys in an open-addressing table. */
#include <stdio.h>
#include <stdlib.h>

#include "demo.h"

#define TABLE_BITS 15
#define TABLE_SIZE (1u << TABLE_BITS)

typedef struct {
    uint64_t key;   /* 0 means empty */
    uint32_t count;
} Slot;

static uint32_t slot_of(uint64_t key)
{
    return (uint32_t)(mix64(key) >> (64 - TABLE_BITS));
}

static Slot *find(Slot *tab, uint64_t key)
{
    uint32_t i = slot_of(key);
    for (;;) {
        Slot *s = &tab[i];
        if (s->key == key || s->key == 0)
            return s;
        i = (i + 1) & (TABLE_SIZE - 1);
    }
}

static uint64_t draw_key(Rng *r)
{
    /* Mostly small keys with a long tail, so counts are uneven. */
    uint64_t v = rng_next(r);
    unsigned shift = (unsigned)(v & 7u) + 6u;
    return ((v >> 8) & ((1ull << shift) - 1ull)) + 1ull;
}

uint64_t count_keys(int rounds, uint64_t seed)
{
    Slot *tab = malloc(sizeof(Slot) * TABLE_SIZE);
    if (!tab) {
        fprintf(stderr, "counts: out of memory\n");
        exit(1);
    }
    Rng r;
    rng_seed(&r, seed);
    uint64_t digest = 1469598103934665603ULL;
    for (int round = 0; round < rounds; round++) {
        for (uint32_t i = 0; i < TABLE_SIZE; i++) {
            tab[i].key = 0;
            tab[i].count = 0;
        }
        uint32_t distinct = 0;
        for (int i = 0; i < 9000; i++) {
            uint64_t k = draw_key(&r);
            Slot *s = find(tab, k);
            if (s->key == 0) {
                s->key = k;
                distinct++;
            }
            s->count++;
        }
        /* probe the table with fresh keys, most of which are present */
        uint64_t hits = 0;
        for (int i = 0; i < 3000; i++) {
            Slot *s = find(tab, draw_key(&r));
            if (s->key != 0)
                hits += s->count;
        }
        uint32_t maxc = 0;
        for (uint32_t i = 0; i < TABLE_SIZE; i++) {
            if (tab[i].key && tab[i].count > maxc)
                maxc = tab[i].count;
        }
        digest = (digest ^ distinct) * 1099511628211ULL;
        digest = (digest ^ hits) * 1099511628211ULL;
        digest = (digest ^ maxc) * 1099511628211ULL;
    }
    free(tab);
    return digest;
}
