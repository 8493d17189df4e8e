/* Printing: the top words, how far the sketch over-counts them, and a summary line with a
 * checksum that any change in counting would alter. */
#include "config.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "report.h"

void report_top(const tally_table *t, size_t k)
{
    const tally_entry **top = malloc(k * sizeof *top);
    size_t n;
    if (!top)
        return;
    n = tally_top(t, top, k);
    for (size_t i = 0; i < n; i++)
        printf("%2zu. %-16s %10" PRIu64 "\n", i + 1, top[i]->word, top[i]->count);
    free(top);
}

void report_sketch_error(const tally_table *t, const tally_sketch *s, run_stats *st)
{
    for (size_t i = 0; i < t->cap; i++) {
        const tally_entry *e = &t->slots[i];
        if (!e->len)
            continue;
        uint64_t est = tally_sketch_estimate(s, e->hash);
        uint64_t over = est > e->count ? est - e->count : 0;
        st->over_sum += over;
        if (over > st->over_max)
            st->over_max = over;
        st->checked++;
    }
}

void report_summary(const tally_table *t, const run_stats *st)
{
    printf("words %" PRIu64 ", distinct %zu, bytes %" PRIu64 ", windows %" PRIu64 "\n",
           st->words, t->used, st->bytes, st->windows);
    printf("sketch over-count: mean %.3f, max %" PRIu64 "\n",
           st->checked ? (double)st->over_sum / (double)st->checked : 0.0, st->over_max);
    printf("probes per word %.3f\n", st->words ? (double)t->probes / (double)st->words : 0.0);
    printf("checksum %016" PRIx64 "\n", tally_checksum(t));
}
