#ifndef REPORT_H
#define REPORT_H
#include "tally.h"

typedef struct {
    uint64_t words, bytes, windows;
    uint64_t over_sum, over_max, checked;
} run_stats;

void report_top(const tally_table *t, size_t k);
void report_sketch_error(const tally_table *t, const tally_sketch *s, run_stats *st);
void report_summary(const tally_table *t, const run_stats *st);
#endif
