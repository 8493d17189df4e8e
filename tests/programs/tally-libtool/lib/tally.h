/* libtally: count words in generated text, exactly (hash table) and approximately
 * (count-min sketch).  Public interface of the libtool library. */
#ifndef TALLY_H
#define TALLY_H

#include <stddef.h>
#include <stdint.h>

#define TALLY_MAX_WORD 32

/* corpus.c: deterministic pseudo-text; fills buf with len bytes of words, spaces and punctuation. */
typedef struct { uint64_t state; unsigned vocab; } tally_corpus;
void tally_corpus_init(tally_corpus *c, uint64_t seed, unsigned vocab);
size_t tally_corpus_fill(tally_corpus *c, char *buf, size_t len);

/* tokenize.c: calls fn(word, length, hash, arg) for each lower-cased word of text. */
typedef void (*tally_word_fn)(const char *word, size_t len, uint32_t hash, void *arg);
size_t tally_tokenize(const char *text, size_t len, tally_word_fn fn, void *arg);
uint32_t tally_hash(const char *word, size_t len);

/* table.c: open-addressing table of word -> count. */
typedef struct {
    char word[TALLY_MAX_WORD];
    uint32_t hash;
    uint32_t len;
    uint64_t count;
} tally_entry;
typedef struct {
    tally_entry *slots;
    size_t cap, used;
    uint64_t probes;
} tally_table;
int tally_table_init(tally_table *t, size_t cap);
void tally_table_free(tally_table *t);
int tally_table_add(tally_table *t, const char *word, size_t len, uint32_t hash);
const tally_entry *tally_table_find(const tally_table *t, const char *word, size_t len, uint32_t hash);

/* sketch.c: count-min sketch, depth rows of width counters. */
typedef struct {
    uint32_t *rows;
    unsigned depth, width;
} tally_sketch;
int tally_sketch_init(tally_sketch *s, unsigned depth, unsigned width);
void tally_sketch_free(tally_sketch *s);
void tally_sketch_add(tally_sketch *s, uint32_t hash);
uint32_t tally_sketch_estimate(const tally_sketch *s, uint32_t hash);
uint64_t tally_sketch_total(const tally_sketch *s);
void tally_sketch_decay(tally_sketch *s, unsigned shift);

/* rank.c: the k most frequent entries, most frequent first (ties by word). */
size_t tally_top(const tally_table *t, const tally_entry **out, size_t k);
uint64_t tally_checksum(const tally_table *t);

#endif
