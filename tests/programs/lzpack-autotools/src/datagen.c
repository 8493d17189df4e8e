/* datagen.c - builds compressible pseudo-text from a generated vocabulary. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <string.h>

#include "lzpack.h"

#define VOCAB 600
#define MAX_WORD 12

static char vocab[VOCAB][MAX_WORD + 1];
static uint8_t vocab_len[VOCAB];
static int vocab_ready;

void gen_seed(Gen *g, uint64_t seed)
{
    g->s0 = seed * 0xbf58476d1ce4e5b9ULL + 0x94d049bb133111ebULL;
    g->s1 = (seed << 17) ^ 0x2545f4914f6cdd1dULL;
    if ((g->s0 | g->s1) == 0)
        g->s1 = 1;
}

uint32_t gen_u32(Gen *g)
{
    /* xorshift128+ variant */
    uint64_t a = g->s0, b = g->s1;
    g->s0 = b;
    a ^= a << 23;
    a ^= a >> 18;
    a ^= b ^ (b >> 5);
    g->s1 = a;
    return (uint32_t)((a + b) >> 32);
}

uint32_t gen_below(Gen *g, uint32_t bound)
{
    return (uint32_t)(((uint64_t)gen_u32(g) * bound) >> 32);
}

static void build_vocab(void)
{
    static const char cons[] = "bcdfghklmnprstvwz";
    static const char vows[] = "aeiouy";
    Gen g;
    gen_seed(&g, 2024);
    for (int w = 0; w < VOCAB; w++) {
        int len = 2 + (int)gen_below(&g, MAX_WORD - 2);
        for (int i = 0; i < len; i++) {
            if (i % 2 == 0)
                vocab[w][i] = cons[gen_below(&g, sizeof cons - 1)];
            else
                vocab[w][i] = vows[gen_below(&g, sizeof vows - 1)];
        }
        vocab[w][len] = '\0';
        vocab_len[w] = (uint8_t)len;
    }
    vocab_ready = 1;
}

/* Skewed word choice: small indices are much more frequent. */
static int pick_word(Gen *g)
{
    uint32_t r = gen_u32(g);
    uint32_t bucket = r & 7u;
    uint32_t span = bucket < 4 ? 24u : bucket < 6 ? 120u : VOCAB;
    return (int)gen_below(g, span);
}

static size_t put(uint8_t *out, size_t pos, size_t len, const char *s, size_t n)
{
    if (pos + n > len)
        n = len - pos;
    memcpy(out + pos, s, n);
    return pos + n;
}

size_t gen_fill_text(Gen *g, uint8_t *out, size_t len)
{
    if (!vocab_ready)
        build_vocab();
    size_t pos = 0;
    unsigned line_words = 0;
    while (pos < len) {
        uint32_t kind = gen_below(g, 100);
        if (kind < 88) {
            int w = pick_word(g);
            pos = put(out, pos, len, vocab[w], vocab_len[w]);
        } else if (kind < 95) {
            char num[16];
            uint32_t v = gen_below(g, 100000);
            int k = 0;
            do {
                num[k++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            for (int i = k - 1; i >= 0 && pos < len; i--)
                out[pos++] = (uint8_t)num[i];
        } else {
            /* a short burst of noise keeps the data from being too easy */
            uint32_t n = 1 + gen_below(g, 6);
            for (uint32_t i = 0; i < n && pos < len; i++)
                out[pos++] = (uint8_t)(33 + gen_below(g, 90));
        }
        if (pos >= len)
            break;
        line_words++;
        if (line_words > 6 && gen_below(g, 8) == 0) {
            out[pos++] = '\n';
            line_words = 0;
            /* sometimes quote an earlier stretch verbatim: long matches */
            if (pos > 4096 && gen_below(g, 5) == 0) {
                size_t back = 64 + gen_below(g, (uint32_t)(pos < 60000 ? pos - 64 : 60000));
                size_t n = 16 + gen_below(g, 240);
                if (n > back)
                    n = back;
                for (size_t i = 0; i < n && pos < len; i++, pos++)
                    out[pos] = out[pos - back];
            }
        } else {
            out[pos++] = gen_below(g, 10) == 0 ? ',' : ' ';
        }
    }
    return pos;
}
