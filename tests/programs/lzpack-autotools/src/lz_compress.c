/* lz_compress.c - LZ77 compressor with hash chains and one-step lazy matching.
 *
 * Stream format (one sequence after another):
 *   token      : high nibble = literal count, low nibble = match length - 4
 *                (15 in either nibble means "more length bytes follow")
 *   [lit ext]  : bytes of 255 continuing, terminated by a byte < 255
 *   literals
 *   offset     : 2 bytes, little endian, 1..65535   (absent in the last sequence)
 *   [match ext]
 * The final sequence carries only literals and ends the stream.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdlib.h>
#include <string.h>

#include "lzpack.h"

#define HASH_BITS 15
#define HASH_SIZE (1u << HASH_BITS)
#define WIN_SIZE 65536u
#define WIN_MASK (WIN_SIZE - 1u)

typedef struct {
    int32_t head[HASH_SIZE];
    int32_t prev[WIN_SIZE];
    int max_chain;
    size_t nice_len;
} Matcher;

static uint32_t read32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t hash4(const uint8_t *p)
{
    return (read32(p) * 2654435761u) >> (32 - HASH_BITS);
}

static void insert(Matcher *m, const uint8_t *src, size_t pos)
{
    uint32_t h = hash4(src + pos);
    m->prev[pos & WIN_MASK] = m->head[h];
    m->head[h] = (int32_t)pos;
}

static size_t common_length(const uint8_t *a, const uint8_t *b, size_t limit)
{
    size_t n = 0;
    while (n + 8 <= limit) {
        uint64_t x, y;
        memcpy(&x, a + n, 8);
        memcpy(&y, b + n, 8);
        if (x != y)
            break;
        n += 8;
    }
    while (n < limit && a[n] == b[n])
        n++;
    return n;
}

/* Longest match for position pos, considering positions already inserted. */
static size_t find_match(const Matcher *m, const uint8_t *src, size_t n, size_t pos, size_t *offset)
{
    size_t best = 0;
    size_t limit = n - pos;
    int32_t cand = m->head[hash4(src + pos)];
    int chain = m->max_chain;
    while (cand >= 0 && chain-- > 0) {
        size_t c = (size_t)cand;
        size_t dist = pos - c;
        if (dist > LZ_MAX_OFFSET)
            break;
        if (best < limit && src[c + best] == src[pos + best]) {
            size_t len = common_length(src + c, src + pos, limit);
            if (len > best) {
                best = len;
                *offset = dist;
                if (len >= m->nice_len)
                    break;
            }
        }
        cand = m->prev[c & WIN_MASK];
    }
    return best;
}

static uint8_t *put_length(uint8_t *out, size_t len)
{
    while (len >= 255) {
        *out++ = 255;
        len -= 255;
    }
    *out++ = (uint8_t)len;
    return out;
}

static uint8_t *emit(uint8_t *out, const uint8_t *lit, size_t nlit, size_t offset, size_t mlen)
{
    uint8_t *token = out++;
    size_t mcode = mlen ? mlen - LZ_MIN_MATCH : 0;
    *token = (uint8_t)(((nlit < 15 ? nlit : 15) << 4) | (mcode < 15 ? mcode : 15));
    if (nlit >= 15)
        out = put_length(out, nlit - 15);
    memcpy(out, lit, nlit);
    out += nlit;
    if (mlen) {
        *out++ = (uint8_t)(offset & 0xff);
        *out++ = (uint8_t)(offset >> 8);
        if (mcode >= 15)
            out = put_length(out, mcode - 15);
    }
    return out;
}

size_t lz_bound(size_t n)
{
    return n + n / 255 + 16;
}

size_t lz_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, int level, LzStats *st)
{
    if (cap < lz_bound(n))
        return 0;
    Matcher *m = xalloc(sizeof *m);
    for (size_t i = 0; i < HASH_SIZE; i++)
        m->head[i] = -1;
    m->max_chain = level <= 1 ? 4 : level * 12;
    m->nice_len = level <= 1 ? 32 : 128;
    memset(st, 0, sizeof *st);

    uint8_t *out = dst;
    size_t anchor = 0, pos = 0;
    while (pos + LZ_MIN_MATCH <= n) {
        size_t off = 0;
        size_t len = find_match(m, src, n, pos, &off);
        insert(m, src, pos);
        if (len < LZ_MIN_MATCH) {
            pos++;
            continue;
        }
        /* lazy step: prefer a clearly longer match starting one byte later */
        if (level > 1 && pos + 1 + LZ_MIN_MATCH <= n && len < m->nice_len) {
            size_t off2 = 0;
            size_t len2 = find_match(m, src, n, pos + 1, &off2);
            if (len2 > len + 1) {
                insert(m, src, pos + 1);
                pos++;
                len = len2;
                off = off2;
            }
        }
        out = emit(out, src + anchor, pos - anchor, off, len);
        st->sequences++;
        st->literal_bytes += pos - anchor;
        st->match_bytes += len;
        if (len > st->longest_match)
            st->longest_match = len;
        size_t end = pos + len;
        for (size_t k = pos + 1; k < end && k + LZ_MIN_MATCH <= n; k++)
            insert(m, src, k);
        pos = anchor = end;
    }
    out = emit(out, src + anchor, n - anchor, 0, 0);
    st->sequences++;
    st->literal_bytes += n - anchor;
    free(m);
    return (size_t)(out - dst);
}
