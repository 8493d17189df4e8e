/* kernels.h - shared declarations for the kernels benchmark program. */
#ifndef KERNELS_H
#define KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* util.c */
typedef struct {
    uint64_t a, b;
} Prng;

void prng_init(Prng *p, uint64_t seed);
uint64_t prng_u64(Prng *p);
double prng_double(Prng *p);          /* in [0, 1) */
float prng_float(Prng *p);            /* in [0, 1) */
uint64_t fold_u64(uint64_t acc, uint64_t v);
uint64_t fold_double(uint64_t acc, double v, double scale);
void *xmalloc(size_t bytes);
double round_to(double v, double step);

/* stencil.c */
double stencil2d(int n, int iters, uint64_t seed);
double stencil3d(int n, int iters, uint64_t seed);

/* matmul.c */
double matmul_run(int n, uint64_t seed);
double matvec_run(int n, int reps, uint64_t seed);

/* reduce.c */
typedef struct {
    double dot;
    double norm;
    double minv;
    double maxv;
    double prefix_tail;
} ReduceStats;

ReduceStats reduce_run(size_t len, int reps, uint64_t seed);

/* nbody.c */
double nbody_run(int bodies, int steps, uint64_t seed);

/* intk.c */
uint64_t sieve_count(uint32_t limit);
uint64_t collatz_total(uint32_t upto);
uint64_t crc_run(size_t len, int reps, uint64_t seed);
uint64_t bits_run(size_t len, uint64_t seed);

/* sort.c */
uint64_t sort_run(size_t len, uint64_t seed);

#endif
