/* Count-min sketch (Cormode and Muthukrishnan, 2005): depth rows, each indexed by a different
 * mix of the word's hash; the estimate is the minimum over rows and never undercounts. */
#include "config.h"
#include <stdlib.h>
#include "tally.h"

static inline uint32_t row_index(uint32_t hash, unsigned row, unsigned width)
{
    uint32_t h = hash ^ (0x9E3779B9u * (row + 1));
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    return h % width;
}

int tally_sketch_init(tally_sketch *s, unsigned depth, unsigned width)
{
    s->rows = calloc((size_t)depth * width, sizeof *s->rows);
    s->depth = depth;
    s->width = width;
    return s->rows ? 0 : -1;
}

void tally_sketch_free(tally_sketch *s)
{
    free(s->rows);
    s->rows = NULL;
}

void tally_sketch_add(tally_sketch *s, uint32_t hash)
{
    for (unsigned r = 0; r < s->depth; r++)
        s->rows[(size_t)r * s->width + row_index(hash, r, s->width)]++;
}

uint32_t tally_sketch_estimate(const tally_sketch *s, uint32_t hash)
{
    uint32_t best = UINT32_MAX;
    for (unsigned r = 0; r < s->depth; r++) {
        uint32_t v = s->rows[(size_t)r * s->width + row_index(hash, r, s->width)];
        if (v < best)
            best = v;
    }
    return best;
}

uint64_t tally_sketch_total(const tally_sketch *s)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < s->width; i++)
        total += s->rows[i];
    return total;
}

/* Age the counters: halve (shift) every cell, as streaming top-k trackers do between windows. */
void tally_sketch_decay(tally_sketch *s, unsigned shift)
{
    size_t n = (size_t)s->depth * s->width;
    for (size_t i = 0; i < n; i++)
        s->rows[i] = s->rows[i] >> shift;
}
