/* lzpack.h - shared declarations for the lzpack test program. */
#ifndef LZPACK_H
#define LZPACK_H

#include <stddef.h>
#include <stdint.h>

/* datagen.c: deterministic, compressible, text-like data */
typedef struct {
    uint64_t s0, s1;
} Gen;

void gen_seed(Gen *g, uint64_t seed);
uint32_t gen_u32(Gen *g);
uint32_t gen_below(Gen *g, uint32_t bound);
size_t gen_fill_text(Gen *g, uint8_t *out, size_t len);

/* lz_compress.c / lz_decompress.c: LZ77 with a nibble token format */
#define LZ_MIN_MATCH 4
#define LZ_MAX_OFFSET 65535u

typedef struct {
    size_t sequences;
    size_t literal_bytes;
    size_t match_bytes;
    size_t longest_match;
} LzStats;

size_t lz_bound(size_t n);
size_t lz_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, int level, LzStats *st);
/* Returns the decoded size, or (size_t)-1 if the input is malformed. */
size_t lz_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

/* hashes.c */
uint64_t hash_fnv1a64(const uint8_t *p, size_t n);
uint32_t hash_adler32(const uint8_t *p, size_t n);
uint32_t hash_crc32(const uint8_t *p, size_t n);
uint64_t hash_wide64(const uint8_t *p, size_t n, uint64_t seed);

/* records.c: split data into lines, sort them by hash and summarise */
typedef struct {
    size_t count;
    size_t distinct;
    size_t longest;
    uint64_t digest;
} RecordSummary;

RecordSummary records_summarise(const uint8_t *data, size_t n);

/* util.c */
void *xalloc(size_t bytes);
int read_whole_file(const char *path, uint8_t **data, size_t *len);

#endif
