/* lz_decompress.c - bounds-checked decoder for the lz_compress format. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <string.h>

#include "lzpack.h"

#define BAD ((size_t)-1)

static int get_length(const uint8_t **ip, const uint8_t *end, size_t *len)
{
    const uint8_t *p = *ip;
    for (;;) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        *len += b;
        if (b != 255)
            break;
    }
    *ip = p;
    return 0;
}

size_t lz_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    const uint8_t *ip = src, *iend = src + n;
    uint8_t *op = dst, *oend = dst + cap;
    while (ip < iend) {
        uint8_t token = *ip++;
        size_t nlit = token >> 4;
        if (nlit == 15 && get_length(&ip, iend, &nlit) != 0)
            return BAD;
        if ((size_t)(iend - ip) < nlit || (size_t)(oend - op) < nlit)
            return BAD;
        memcpy(op, ip, nlit);
        op += nlit;
        ip += nlit;
        if (ip == iend)
            break; /* last sequence: literals only */
        if (iend - ip < 2)
            return BAD;
        size_t offset = (size_t)ip[0] | (size_t)ip[1] << 8;
        ip += 2;
        size_t mlen = token & 15u;
        if (mlen == 15 && get_length(&ip, iend, &mlen) != 0)
            return BAD;
        mlen += LZ_MIN_MATCH;
        if (offset == 0 || offset > (size_t)(op - dst) || (size_t)(oend - op) < mlen)
            return BAD;
        const uint8_t *from = op - offset;
        if (offset >= mlen) {
            memcpy(op, from, mlen);
            op += mlen;
        } else {
            /* overlapping copy replicates a short period */
            for (size_t i = 0; i < mlen; i++)
                *op++ = from[i];
        }
    }
    return (size_t)(op - dst);
}
