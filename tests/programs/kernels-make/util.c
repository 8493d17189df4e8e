/* util.c - random numbers, checksum folding and allocation helpers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"

void prng_init(Prng *p, uint64_t seed)
{
    p->a = seed * 0x9e3779b97f4a7c15ULL + 1;
    p->b = (seed ^ 0xdeadbeefcafef00dULL) | 1;
    for (int i = 0; i < 8; i++)
        (void)prng_u64(p);
}

/* xorshift128+ */
uint64_t prng_u64(Prng *p)
{
    uint64_t s1 = p->a;
    const uint64_t s0 = p->b;
    p->a = s0;
    s1 ^= s1 << 23;
    p->b = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return p->b + s0;
}

double prng_double(Prng *p)
{
    return (double)(prng_u64(p) >> 11) * 0x1.0p-53;
}

float prng_float(Prng *p)
{
    return (float)(prng_u64(p) >> 40) * 0x1.0p-24f;
}

uint64_t fold_u64(uint64_t acc, uint64_t v)
{
    acc ^= v + 0x9e3779b97f4a7c15ULL + (acc << 6) + (acc >> 2);
    return acc;
}

/* Fold a floating value into an integer digest after coarse rounding,
 * so that last-bit differences do not change the digest. */
uint64_t fold_double(uint64_t acc, double v, double scale)
{
    double q = floor(v * scale + 0.5);
    return fold_u64(acc, (uint64_t)(int64_t)q);
}

void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

double round_to(double v, double step)
{
    return floor(v / step + 0.5) * step;
}
