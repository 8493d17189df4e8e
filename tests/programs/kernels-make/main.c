/* main.c - drives the numeric and integer kernels; the argument scales work. */
#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"

int main(int argc, char **argv)
{
    long s = 400;
    if (argc > 1) {
        s = strtol(argv[1], NULL, 10);
        if (s < 8 || s > 20000) {
            fprintf(stderr, "usage: %s [scale 8..20000]\n", argv[0]);
            return 2;
        }
    }
    int n = (int)s;
    uint64_t digest = 0;

    double st2 = stencil2d(n + 16, n / 2 + 4, 11);
    double st3 = stencil3d(n / 5 + 8, n / 8 + 2, 12);
    printf("stencil2d  %.6f\n", st2);
    printf("stencil3d  %.6f\n", st3);
    digest = fold_double(digest, st2, 1e5);
    digest = fold_double(digest, st3, 1e5);

    double mm = matmul_run(n * 3 / 2 + 8, 13);
    double mv = matvec_run(n + 16, 200, 14);
    printf("matmul     %.6f\n", mm);
    printf("powerit    %.6f\n", mv);
    digest = fold_double(digest, mm, 1e5);
    digest = fold_double(digest, mv, 1e5);

    ReduceStats rs = reduce_run((size_t)n * 500, 100, 15);
    printf("reduce     dot=%.6f norm=%.6f min=%.6f max=%.6f prefix=%.6f\n",
           rs.dot, rs.norm, rs.minv, rs.maxv, rs.prefix_tail);
    digest = fold_double(digest, rs.dot, 1e5);
    digest = fold_double(digest, rs.norm, 1e5);

    double ke = nbody_run(n / 2 + 16, 200, 16);
    printf("nbody      %.6f\n", ke);
    digest = fold_double(digest, ke, 1e5);

    uint64_t sv = sieve_count((uint32_t)n * 20000u);
    uint64_t cz = collatz_total((uint32_t)n * 1500u);
    uint64_t cr = crc_run((size_t)n * 256, 64, 17);
    uint64_t bt = bits_run((size_t)n * 2000, 18);
    uint64_t so = sort_run((size_t)n * 1000, 19);
    printf("sieve      %llu\n", (unsigned long long)sv);
    printf("collatz    %llu\n", (unsigned long long)cz);
    printf("crc        %016llx\n", (unsigned long long)cr);
    printf("bits       %016llx\n", (unsigned long long)bt);
    printf("sort       %016llx\n", (unsigned long long)so);
    digest = fold_u64(digest, sv);
    digest = fold_u64(digest, cz);
    digest = fold_u64(digest, cr);
    digest = fold_u64(digest, bt);
    digest = fold_u64(digest, so);

    printf("digest     %016llx\n", (unsigned long long)digest);
    return 0;
}
