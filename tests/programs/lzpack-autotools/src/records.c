/* records.c - split data into newline-terminated records, sort them by a
 * hash of their contents with a bottom-up merge sort, and summarise. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdlib.h>
#include <string.h>

#include "lzpack.h"

typedef struct {
    uint64_t key;
    uint32_t offset;
    uint32_t length;
} Record;

static int record_before(const Record *a, const Record *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    return a->offset < b->offset;
}

static void merge(const Record *src, Record *dst, size_t lo, size_t mid, size_t hi)
{
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi)
        dst[k++] = record_before(&src[j], &src[i]) ? src[j++] : src[i++];
    while (i < mid)
        dst[k++] = src[i++];
    while (j < hi)
        dst[k++] = src[j++];
}

static Record *merge_sort(Record *a, Record *tmp, size_t n)
{
    Record *from = a, *to = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            merge(from, to, lo, mid, hi);
        }
        Record *t = from;
        from = to;
        to = t;
    }
    return from;
}

RecordSummary records_summarise(const uint8_t *data, size_t n)
{
    RecordSummary s = {0, 0, 0, 0};
    size_t cap = 1024, count = 0;
    Record *recs = xalloc(cap * sizeof *recs);
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && data[i] != '\n')
            continue;
        if (i > start) {
            if (count == cap) {
                cap *= 2;
                Record *nr = realloc(recs, cap * sizeof *recs);
                if (!nr) {
                    free(recs);
                    return s;
                }
                recs = nr;
            }
            size_t len = i - start;
            /* hash only the leading 24 bytes so that duplicates appear */
            size_t keylen = len < 24 ? len : 24;
            recs[count].key = hash_fnv1a64(data + start, keylen);
            recs[count].offset = (uint32_t)start;
            recs[count].length = (uint32_t)len;
            count++;
            if (len > s.longest)
                s.longest = len;
        }
        start = i + 1;
    }
    Record *tmp = xalloc((count ? count : 1) * sizeof *tmp);
    Record *sorted = merge_sort(recs, tmp, count);
    uint64_t digest = 0x243f6a8885a308d3ULL;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || sorted[i].key != sorted[i - 1].key)
            s.distinct++;
        digest ^= sorted[i].key + (uint64_t)sorted[i].length * 0x9e3779b97f4a7c15ULL;
        digest = (digest << 7 | digest >> 57) * 0x100000001b3ULL;
        digest ^= (uint64_t)i;
    }
    s.count = count;
    s.digest = digest;
    free(recs);
    free(tmp);
    return s;
}
