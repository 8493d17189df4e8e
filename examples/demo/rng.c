/* rng.c - splitmix-style generator and helpers. */
#include "demo.h"

void rng_seed(Rng *r, uint64_t seed)
{
    r->state = seed ^ 0x6a09e667f3bcc909ULL;
}

uint64_t mix64(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}

uint64_t rng_next(Rng *r)
{
    r->state += 0x9e3779b97f4a7c15ULL;
    return mix64(r->state);
}

uint32_t rng_below(Rng *r, uint32_t bound)
{
    /* multiply-shift range reduction: unbiased enough for a demo */
    uint64_t v = rng_next(r) >> 32;
    return (uint32_t)((v * bound) >> 32);
}

double rng_unit(Rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
