/* main.c - autopass-cc demo: a float stencil, a hash table and a tiny VM. */
#include <stdio.h>
#include <stdlib.h>

#include "demo.h"

int main(int argc, char **argv)
{
    long n = 300;
    if (argc > 1) {
        n = strtol(argv[1], NULL, 10);
        if (n < 1 || n > 100000) {
            fprintf(stderr, "usage: %s [size 1..100000]\n", argv[0]);
            return 2;
        }
    }

    HeatResult h = heat_run(160, (int)n, 42);
    printf("heat   mean=%.6f peak=%.6f probe=%.6f\n", h.mean, h.peak, h.probe);

    uint64_t digest = count_keys((int)n, 7);
    printf("counts digest=%016llx\n", (unsigned long long)digest);

    int64_t v = vm_bench((int64_t)n * 20000);
    printf("vm     result=%lld\n", (long long)v);
    return 0;
}
