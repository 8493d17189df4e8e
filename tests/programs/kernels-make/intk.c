/* intk.c - integer kernels: prime sieve, Collatz lengths, CRC-32, bit counting. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

uint64_t sieve_count(uint32_t limit)
{
    uint8_t *composite = xmalloc((size_t)limit + 1);
    memset(composite, 0, (size_t)limit + 1);
    uint64_t count = 0, weighted = 0;
    for (uint32_t i = 2; i <= limit; i++) {
        if (composite[i])
            continue;
        count++;
        weighted += (uint64_t)i * (count & 15);
        for (uint64_t j = (uint64_t)i * i; j <= limit; j += i)
            composite[j] = 1;
    }
    free(composite);
    return count * 1000003ULL ^ weighted;
}

static uint32_t collatz_len(uint64_t n)
{
    uint32_t steps = 0;
    while (n != 1) {
        if (n & 1)
            n = 3 * n + 1;
        else
            n >>= 1;
        steps++;
    }
    return steps;
}

uint64_t collatz_total(uint32_t upto)
{
    uint64_t total = 0;
    uint32_t best = 0, best_at = 1;
    for (uint32_t i = 1; i <= upto; i++) {
        uint32_t len = collatz_len(i);
        total += len;
        if (len > best) {
            best = len;
            best_at = i;
        }
    }
    return total ^ ((uint64_t)best << 40) ^ ((uint64_t)best_at << 20);
}

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_buf(uint32_t crc, const uint8_t *buf, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ buf[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

uint64_t crc_run(size_t len, int reps, uint64_t seed)
{
    uint8_t *buf = xmalloc(len);
    Prng p;
    prng_init(&p, seed);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(prng_u64(&p) >> 56);
    crc_init();
    uint64_t acc = 0;
    uint32_t crc = 0;
    for (int r = 0; r < reps; r++) {
        crc = crc32_buf(crc, buf, len);
        buf[(size_t)r % len] ^= (uint8_t)crc;
        acc = fold_u64(acc, crc);
    }
    free(buf);
    return acc;
}

static unsigned popcount64(uint64_t v)
{
    unsigned c = 0;
    while (v) {
        v &= v - 1;
        c++;
    }
    return c;
}

static uint64_t reverse_bits(uint64_t v)
{
    uint64_t r = 0;
    for (int i = 0; i < 64; i++) {
        r = (r << 1) | (v & 1);
        v >>= 1;
    }
    return r;
}

uint64_t bits_run(size_t len, uint64_t seed)
{
    Prng p;
    prng_init(&p, seed);
    uint64_t acc = 0, ones = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t v = prng_u64(&p);
        ones += popcount64(v);
        acc = fold_u64(acc, reverse_bits(v) ^ (v >> (ones & 31)));
    }
    return acc ^ (ones << 1);
}
