/* matmul.c - blocked dense matrix multiply and repeated matrix-vector product. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define BLOCK 32

static void fill(double *m, size_t count, Prng *p)
{
    for (size_t i = 0; i < count; i++)
        m[i] = prng_double(p) - 0.5;
}

static void gemm_blocked(int n, const double *restrict a, const double *restrict b, double *restrict c)
{
    memset(c, 0, (size_t)n * n * sizeof *c);
    for (int ii = 0; ii < n; ii += BLOCK) {
        int imax = ii + BLOCK < n ? ii + BLOCK : n;
        for (int kk = 0; kk < n; kk += BLOCK) {
            int kmax = kk + BLOCK < n ? kk + BLOCK : n;
            for (int jj = 0; jj < n; jj += BLOCK) {
                int jmax = jj + BLOCK < n ? jj + BLOCK : n;
                for (int i = ii; i < imax; i++) {
                    for (int k = kk; k < kmax; k++) {
                        double aik = a[(size_t)i * n + k];
                        const double *brow = b + (size_t)k * n;
                        double *crow = c + (size_t)i * n;
                        for (int j = jj; j < jmax; j++)
                            crow[j] += aik * brow[j];
                    }
                }
            }
        }
    }
}

double matmul_run(int n, uint64_t seed)
{
    size_t count = (size_t)n * n;
    double *a = xmalloc(count * sizeof *a);
    double *b = xmalloc(count * sizeof *b);
    double *c = xmalloc(count * sizeof *c);
    Prng p;
    prng_init(&p, seed);
    fill(a, count, &p);
    fill(b, count, &p);
    gemm_blocked(n, a, b, c);
    /* trace and a Frobenius-like sum give a robust summary */
    double trace = 0.0, sq = 0.0;
    for (int i = 0; i < n; i++)
        trace += c[(size_t)i * n + i];
    for (size_t i = 0; i < count; i++)
        sq += c[i] * c[i];
    free(a);
    free(b);
    free(c);
    return sq / (double)count + trace / (double)n;
}

static double row_dot(const double *restrict row, const double *restrict v, int n)
{
    double s = 0.0;
    for (int j = 0; j < n; j++)
        s += row[j] * v[j];
    return s;
}

double matvec_run(int n, int reps, uint64_t seed)
{
    double *m = xmalloc((size_t)n * n * sizeof *m);
    double *v = xmalloc((size_t)n * sizeof *v);
    double *w = xmalloc((size_t)n * sizeof *w);
    Prng p;
    prng_init(&p, seed);
    /* symmetric, positive entries: a well separated dominant eigenvalue */
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++)
            m[(size_t)i * n + j] = m[(size_t)j * n + i] = prng_double(&p);
    for (int i = 0; i < n; i++)
        v[i] = 1.0;
    double norm = 0.0;
    /* power iteration: converges to the dominant eigenvalue magnitude */
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++)
            w[i] = row_dot(m + (size_t)i * n, v, n);
        norm = 0.0;
        for (int i = 0; i < n; i++)
            norm += w[i] * w[i];
        norm = sqrt(norm);
        for (int i = 0; i < n; i++)
            v[i] = w[i] / norm;
    }
    free(m);
    free(v);
    free(w);
    return norm / (double)n;
}
