/* Deterministic pseudo-text: words built from syllables, chosen with a skewed distribution so a
 * few words are very frequent and most are rare, as in natural text. */
#include "config.h"
#include "tally.h"

static const char *const syllables[] = {
    "ka", "lo", "mi", "ter", "an", "sul", "ve", "dor", "pi", "qua", "ne", "ri",
    "sto", "ba", "gel", "un", "fi", "mar", "to", "che", "el", "wa", "zu", "or",
};
#define NSYL (sizeof syllables / sizeof syllables[0])

static uint64_t next(tally_corpus *c)
{
    uint64_t x = c->state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void tally_corpus_init(tally_corpus *c, uint64_t seed, unsigned vocab)
{
    c->state = seed ? seed : 0x9E3779B97F4A7C15ULL;
    c->vocab = vocab ? vocab : 1;
}

/* Word number n spelled from its digits in base NSYL. */
static size_t spell(unsigned n, char *out, int capital)
{
    size_t len = 0;
    do {
        const char *s = syllables[n % NSYL];
        while (*s)
            out[len++] = *s++;
        n /= NSYL;
    } while (n && len < TALLY_MAX_WORD - 4);
    if (capital && out[0] >= 'a' && out[0] <= 'z')
        out[0] = (char)(out[0] - 'a' + 'A');
    return len;
}

size_t tally_corpus_fill(tally_corpus *c, char *buf, size_t len)
{
    size_t pos = 0;
    int sentence_start = 1;
    while (pos + TALLY_MAX_WORD + 2 < len) {
        uint64_t r = next(c);
        /* Skew: the minimum of two uniform draws favours small word numbers. */
        unsigned a = (unsigned)(r % c->vocab), b = (unsigned)((r >> 32) % c->vocab);
        unsigned w = a < b ? a : b;
        if ((r >> 20 & 7) == 0)
            w = w / 16;
        pos += spell(w, buf + pos, sentence_start);
        sentence_start = 0;
        switch (r >> 60) {
        case 0: buf[pos++] = '.'; sentence_start = 1; break;
        case 1: buf[pos++] = ','; break;
        case 2: buf[pos++] = '-'; break;
        default: break;
        }
        buf[pos++] = (r >> 56 & 15) == 3 ? '\n' : ' ';
    }
    while (pos < len)
        buf[pos++] = ' ';
    return pos;
}
