/* demo.h - shared declarations for the autopass-cc demo program. */
#ifndef DEMO_H
#define DEMO_H

#include <stddef.h>
#include <stdint.h>

/* rng.c: small deterministic generator used by every part */
typedef struct {
    uint64_t state;
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
uint32_t rng_below(Rng *r, uint32_t bound);
double rng_unit(Rng *r);
uint64_t mix64(uint64_t x);

/* heat.c: explicit 2-D heat diffusion on a square grid */
typedef struct {
    double mean;
    double peak;
    double probe;
} HeatResult;

HeatResult heat_run(int size, int steps, uint64_t seed);

/* counts.c: open-addressing hash table counting pseudo-random keys */
uint64_t count_keys(int rounds, uint64_t seed);

/* vm.c: a tiny stack machine running a fixed bytecode program */
int64_t vm_bench(int64_t iterations);

#endif
