/* Open-addressing hash table with linear probing; grows at 70% load. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "tally.h"

int tally_table_init(tally_table *t, size_t cap)
{
    size_t c = 16;
    while (c < cap)
        c <<= 1;
    t->slots = calloc(c, sizeof *t->slots);
    t->cap = c;
    t->used = 0;
    t->probes = 0;
    return t->slots ? 0 : -1;
}

void tally_table_free(tally_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}

static tally_entry *slot_for(tally_entry *slots, size_t cap, const char *word, size_t len,
                             uint32_t hash, uint64_t *probes)
{
    size_t mask = cap - 1, i = hash & mask;
    for (;;) {
        tally_entry *e = &slots[i];
        ++*probes;
        if (!e->len)
            return e;
        if (e->hash == hash && e->len == len && memcmp(e->word, word, len) == 0)
            return e;
        i = (i + 1) & mask;
    }
}

static int grow(tally_table *t)
{
    size_t cap = t->cap * 2;
    tally_entry *slots = calloc(cap, sizeof *slots);
    uint64_t dummy = 0;
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        tally_entry *e = &t->slots[i];
        if (e->len)
            *slot_for(slots, cap, e->word, e->len, e->hash, &dummy) = *e;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

int tally_table_add(tally_table *t, const char *word, size_t len, uint32_t hash)
{
    tally_entry *e;
    if (len >= TALLY_MAX_WORD)
        len = TALLY_MAX_WORD - 1;
    if ((t->used + 1) * 10 > t->cap * 7 && grow(t) != 0)
        return -1;
    e = slot_for(t->slots, t->cap, word, len, hash, &t->probes);
    if (!e->len) {
        memcpy(e->word, word, len);
        e->word[len] = '\0';
        e->len = (uint32_t)len;
        e->hash = hash;
        t->used++;
    }
    e->count++;
    return 0;
}

const tally_entry *tally_table_find(const tally_table *t, const char *word, size_t len, uint32_t hash)
{
    uint64_t probes = 0;
    const tally_entry *e = slot_for(t->slots, t->cap, word, len, hash, &probes);
    return e->len ? e : NULL;
}
