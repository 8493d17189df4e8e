/* Tokenizer: a word is a run of letters (ASCII, folded to lower case); hyphens join words. */
#include "config.h"
#include <string.h>
#include "tally.h"

enum { OTHER = 0, LETTER = 1, UPPER = 2, JOIN = 4 };

static unsigned char cls[256];
static int cls_ready;

static void init_classes(void)
{
    for (int ch = 'a'; ch <= 'z'; ch++)
        cls[ch] = LETTER;
    for (int ch = 'A'; ch <= 'Z'; ch++)
        cls[ch] = LETTER | UPPER;
    cls['-'] = JOIN;
    cls_ready = 1;
}

uint32_t tally_hash(const char *word, size_t len)
{
    /* Multiply-xorshift over 4-byte blocks, then the tail. */
    uint32_t h = 0x811C9DC5u ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k;
        memcpy(&k, word + i, 4);
        k *= 0xCC9E2D51u;
        k = (k << 15) | (k >> 17);
        h ^= k * 0x1B873593u;
        h = ((h << 13) | (h >> 19)) * 5u + 0xE6546B64u;
    }
    for (; i < len; i++)
        h = (h ^ (unsigned char)word[i]) * 0x01000193u;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    return h;
}

size_t tally_tokenize(const char *text, size_t len, tally_word_fn fn, void *arg)
{
    char word[TALLY_MAX_WORD];
    size_t n = 0, words = 0;
    if (!cls_ready)
        init_classes();
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = i < len ? (unsigned char)text[i] : ' ';
        unsigned c = cls[ch];
        if (c & LETTER) {
            if (n < TALLY_MAX_WORD - 1)
                word[n++] = (char)((c & UPPER) ? ch - 'A' + 'a' : ch);
        } else if ((c & JOIN) && n && i + 1 < len && (cls[(unsigned char)text[i + 1]] & LETTER)) {
            if (n < TALLY_MAX_WORD - 1)
                word[n++] = '-';
        } else if (n) {
            fn(word, n, tally_hash(word, n), arg);
            words++;
            n = 0;
        }
    }
    return words;
}
