/* main.c - lzpack: generate data, compress, decompress, verify, hash, sort.
 *
 *   lzpack [BLOCKS]        synthetic data of BLOCKS x 64 KiB (default 160)
 *   lzpack --file PATH     round-trip the contents of a file
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lzpack.h"

#define BLOCK_SIZE 65536u

static int roundtrip(const char *label, const uint8_t *data, size_t n, int level)
{
    size_t cap = lz_bound(n);
    uint8_t *packed = xalloc(cap);
    uint8_t *back = xalloc(n);
    LzStats st;
    size_t plen = lz_compress(data, n, packed, cap, level, &st);
    size_t blen = lz_decompress(packed, plen, back, n);
    int ok = blen == n && memcmp(back, data, n) == 0;
    unsigned long permille = n ? (unsigned long)((plen * 1000u) / n) : 0;
    printf("%s level=%d in=%zu out=%zu permille=%lu sequences=%zu literals=%zu matched=%zu longest=%zu\n",
           label, level, n, plen, permille, st.sequences, st.literal_bytes, st.match_bytes,
           st.longest_match);
    printf("%s packed-fnv1a64=%016llx packed-crc32=%08lx\n", label,
           (unsigned long long)hash_fnv1a64(packed, plen), (unsigned long)hash_crc32(packed, plen));
    printf("%s roundtrip: %s\n", label, ok ? "ok" : "FAILED");
    free(packed);
    free(back);
    return ok;
}

static void summarise(const uint8_t *data, size_t n)
{
    printf("data fnv1a64=%016llx adler32=%08lx crc32=%08lx wide64=%016llx\n",
           (unsigned long long)hash_fnv1a64(data, n), (unsigned long)hash_adler32(data, n),
           (unsigned long)hash_crc32(data, n), (unsigned long long)hash_wide64(data, n, 99));
    RecordSummary rs = records_summarise(data, n);
    printf("records count=%zu distinct=%zu longest=%zu digest=%016llx\n", rs.count, rs.distinct,
           rs.longest, (unsigned long long)rs.digest);
}

static int run_file(const char *path)
{
    uint8_t *data;
    size_t n;
    if (read_whole_file(path, &data, &n) != 0) {
        fprintf(stderr, "lzpack: cannot read %s\n", path);
        return 2;
    }
    summarise(data, n);
    int ok = roundtrip("file", data, n, 1) && roundtrip("file", data, n, 4);
    free(data);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--file") == 0)
        return run_file(argv[2]);

    long blocks = 160;
    if (argc > 1) {
        char *end;
        blocks = strtol(argv[1], &end, 10);
        if (*end != '\0' || blocks < 1 || blocks > 4096) {
            fprintf(stderr, "usage: %s [BLOCKS 1..4096] | --file PATH\n", argv[0]);
            return 2;
        }
    }
    size_t n = (size_t)blocks * BLOCK_SIZE;
    uint8_t *data = xalloc(n);
    Gen g;
    gen_seed(&g, 7);
    size_t filled = gen_fill_text(&g, data, n);
    summarise(data, filled);
    int ok = roundtrip("fast", data, filled, 1);
    ok = roundtrip("best", data, filled, 4) && ok;
    free(data);
    puts(ok ? "status: ok" : "status: FAILED");
    return ok ? 0 : 1;
}
