/* tally N: generate N windows of pseudo-text, count every word exactly and in a count-min sketch,
 * and print the most frequent words and the sketch's error. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include "tally.h"
#include "report.h"

#define WINDOW (64 * 1024)

struct sinks {
    tally_table *table;
    tally_sketch *sketch;
    int failed;
};

static void on_word(const char *word, size_t len, uint32_t hash, void *arg)
{
    struct sinks *s = arg;
    if (tally_table_add(s->table, word, len, hash) != 0)
        s->failed = 1;
    tally_sketch_add(s->sketch, hash);
}

int main(int argc, char **argv)
{
    long windows = argc > 1 ? strtol(argv[1], NULL, 10) : 8;
    tally_corpus corpus;
    tally_table table;
    tally_sketch sketch, recent;
    run_stats st = {0};
    char *buf = malloc(WINDOW);
    struct sinks sinks = {&table, &sketch, 0};

    if (windows < 1 || !buf || tally_table_init(&table, 1024) != 0 ||
        tally_sketch_init(&sketch, 4, 1 << 14) != 0 || tally_sketch_init(&recent, 4, 1 << 12) != 0) {
        fprintf(stderr, "tally: bad argument or out of memory\n");
        return 2;
    }
    tally_corpus_init(&corpus, 20261121, 6000);
    for (long w = 0; w < windows; w++) {
        size_t n = tally_corpus_fill(&corpus, buf, WINDOW);
        struct sinks r = {&table, &recent, 0};
        st.bytes += n;
        st.words += tally_tokenize(buf, n, on_word, &sinks);
        /* A second, smaller sketch of the latest windows only, aged every window. */
        tally_table scratch;
        if (tally_table_init(&scratch, 256) != 0)
            return 2;
        r.table = &scratch;
        tally_tokenize(buf, n / 4, on_word, &r);
        tally_table_free(&scratch);
        tally_sketch_decay(&recent, 1);
        st.windows++;
        if (sinks.failed || r.failed) {
            fprintf(stderr, "tally: out of memory\n");
            return 2;
        }
    }
    report_top(&table, 12);
    report_sketch_error(&table, &sketch, &st);
    report_summary(&table, &st);
    printf("recent total %llu\n", (unsigned long long)tally_sketch_total(&recent));
    tally_sketch_free(&recent);
    tally_sketch_free(&sketch);
    tally_table_free(&table);
    free(buf);
    return 0;
}
