/* hashes.c - a few classic checksums plus a word-at-a-time mixing hash. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <string.h>

#include "lzpack.h"

uint64_t hash_fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint32_t hash_adler32(const uint8_t *p, size_t n)
{
    const uint32_t mod = 65521u;
    uint32_t a = 1, b = 0;
    while (n > 0) {
        /* 5552 is the largest block that cannot overflow 32 bits */
        size_t chunk = n < 5552 ? n : 5552;
        n -= chunk;
        while (chunk--) {
            a += *p++;
            b += a;
        }
        a %= mod;
        b %= mod;
    }
    return (b << 16) | a;
}

static uint32_t crc_tab[256];
static int crc_ready;

static void crc_setup(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        crc_tab[i] = c;
    }
    crc_ready = 1;
}

uint32_t hash_crc32(const uint8_t *p, size_t n)
{
    if (!crc_ready)
        crc_setup();
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = crc_tab[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint64_t load64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t rotl(uint64_t v, unsigned r)
{
    return (v << r) | (v >> (64 - r));
}

uint64_t hash_wide64(const uint8_t *p, size_t n, uint64_t seed)
{
    const uint64_t k1 = 0x87c37b91114253d5ULL, k2 = 0x4cf5ad432745937fULL;
    uint64_t h = seed ^ (n * k1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = load64le(p + i) * k1;
        h ^= rotl(w, 31) * k2;
        h = rotl(h, 27) * 5 + 0x52dce729;
    }
    uint64_t tail = 0;
    for (size_t j = n; j > i; j--)
        tail = (tail << 8) | p[j - 1];
    h ^= rotl(tail * k2, 33) * k1;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}
