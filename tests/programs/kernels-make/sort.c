/* sort.c - comparison sort (hand-written quicksort), qsort with a callback,
 * and LSD radix sort over the same keys; all must agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static void insertion(uint32_t *a, long lo, long hi)
{
    for (long i = lo + 1; i <= hi; i++) {
        uint32_t v = a[i];
        long j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static uint32_t median3(uint32_t a, uint32_t b, uint32_t c)
{
    if (a < b) {
        if (b < c) return b;
        return a < c ? c : a;
    }
    if (a < c) return a;
    return b < c ? c : b;
}

static void quick(uint32_t *a, long lo, long hi)
{
    while (hi - lo > 24) {
        uint32_t pivot = median3(a[lo], a[lo + (hi - lo) / 2], a[hi]);
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                uint32_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        /* recurse into the smaller half, loop on the larger */
        if (j - lo < hi - i) {
            quick(a, lo, j);
            lo = i;
        } else {
            quick(a, i, hi);
            hi = j;
        }
    }
    insertion(a, lo, hi);
}

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

static void radix(uint32_t *a, uint32_t *tmp, size_t n)
{
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257];
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[((a[i] >> shift) & 0xffu) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i] >> shift) & 0xffu]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

uint64_t sort_run(size_t len, uint64_t seed)
{
    uint32_t *orig = xmalloc(len * sizeof *orig);
    uint32_t *a = xmalloc(len * sizeof *a);
    uint32_t *b = xmalloc(len * sizeof *b);
    uint32_t *c = xmalloc(len * sizeof *c);
    uint32_t *tmp = xmalloc(len * sizeof *tmp);
    Prng p;
    prng_init(&p, seed);
    for (size_t i = 0; i < len; i++)
        orig[i] = (uint32_t)(prng_u64(&p) >> 32) % (uint32_t)(len * 4);
    memcpy(a, orig, len * sizeof *a);
    memcpy(b, orig, len * sizeof *b);
    memcpy(c, orig, len * sizeof *c);
    quick(a, 0, (long)len - 1);
    qsort(b, len, sizeof *b, cmp_u32);
    radix(c, tmp, len);
    if (memcmp(a, b, len * sizeof *a) != 0 || memcmp(a, c, len * sizeof *a) != 0) {
        fprintf(stderr, "sort: results disagree\n");
        exit(1);
    }
    uint64_t acc = 0;
    size_t dups = 0;
    for (size_t i = 0; i < len; i++) {
        acc = fold_u64(acc, (uint64_t)a[i] * (i + 1));
        if (i && a[i] == a[i - 1])
            dups++;
    }
    free(orig);
    free(a);
    free(b);
    free(c);
    free(tmp);
    return acc ^ dups;
}
