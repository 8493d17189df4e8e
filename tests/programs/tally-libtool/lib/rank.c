/* Ranking: a bounded min-heap keeps the k most frequent entries in one pass over the table. */
#include "config.h"
#include <string.h>
#include "tally.h"

static int before(const tally_entry *a, const tally_entry *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    return strcmp(a->word, b->word) < 0;
}

static void sift_down(const tally_entry **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(h[m], h[l]))
            m = l;
        if (r < n && before(h[m], h[r]))
            m = r;
        if (m == i)
            return;
        const tally_entry *tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static void sift_up(const tally_entry **h, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if (!before(h[p], h[i]))
            return;
        const tally_entry *tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

size_t tally_top(const tally_table *t, const tally_entry **out, size_t k)
{
    size_t n = 0;
    /* out[0..n) is a heap whose root is the *least* frequent kept entry. */
    for (size_t i = 0; i < t->cap && k; i++) {
        const tally_entry *e = &t->slots[i];
        if (!e->len)
            continue;
        if (n < k) {
            out[n] = e;
            sift_up(out, n++);
        } else if (before(e, out[0])) {
            out[0] = e;
            sift_down(out, n, 0);
        }
    }
    /* Heap sort into most-frequent-first order. */
    for (size_t m = n; m > 1; m--) {
        const tally_entry *tmp = out[0];
        out[0] = out[m - 1];
        out[m - 1] = tmp;
        sift_down(out, m - 1, 0);
    }
    return n;
}

uint64_t tally_checksum(const tally_table *t)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < t->cap; i++) {
        const tally_entry *e = &t->slots[i];
        if (e->len)
            sum += (uint64_t)e->hash * e->count + e->len;
    }
    return sum;
}
