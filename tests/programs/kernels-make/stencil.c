/* stencil.c - 2-D nine-point and 3-D seven-point Jacobi sweeps in float. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static void sweep9(const float *restrict in, float *restrict out, int n)
{
    const float wc = 0.4f, we = 0.1f, wd = 0.05f;
    for (int y = 1; y < n - 1; y++) {
        const float *up = in + (size_t)(y - 1) * n;
        const float *mid = in + (size_t)y * n;
        const float *dn = in + (size_t)(y + 1) * n;
        float *o = out + (size_t)y * n;
        for (int x = 1; x < n - 1; x++) {
            float edge = up[x] + dn[x] + mid[x - 1] + mid[x + 1];
            float diag = up[x - 1] + up[x + 1] + dn[x - 1] + dn[x + 1];
            o[x] = wc * mid[x] + we * edge + wd * diag;
        }
    }
}

double stencil2d(int n, int iters, uint64_t seed)
{
    size_t cells = (size_t)n * n;
    float *a = xmalloc(cells * sizeof *a);
    float *b = xmalloc(cells * sizeof *b);
    Prng p;
    prng_init(&p, seed);
    for (size_t i = 0; i < cells; i++)
        a[i] = prng_float(&p);
    memcpy(b, a, cells * sizeof *a);
    for (int it = 0; it < iters; it++) {
        sweep9(a, b, n);
        float *t = a;
        a = b;
        b = t;
    }
    double sum = 0.0;
    for (size_t i = 0; i < cells; i++)
        sum += a[i];
    free(a);
    free(b);
    return sum / (double)cells;
}

static inline size_t idx3(int n, int z, int y, int x)
{
    return ((size_t)z * n + (size_t)y) * n + (size_t)x;
}

double stencil3d(int n, int iters, uint64_t seed)
{
    size_t cells = (size_t)n * n * n;
    float *a = xmalloc(cells * sizeof *a);
    float *b = xmalloc(cells * sizeof *b);
    Prng p;
    prng_init(&p, seed);
    for (size_t i = 0; i < cells; i++)
        a[i] = prng_float(&p) * 2.0f - 1.0f;
    memcpy(b, a, cells * sizeof *a);
    const ptrdiff_t sy = n, sz = (ptrdiff_t)n * n;
    for (int it = 0; it < iters; it++) {
        for (int z = 1; z < n - 1; z++) {
            for (int y = 1; y < n - 1; y++) {
                const float *c = a + idx3(n, z, y, 0);
                float *o = b + idx3(n, z, y, 0);
                for (int x = 1; x < n - 1; x++) {
                    float s = c[x - 1] + c[x + 1] + c[x - sy] + c[x + sy] + c[x - sz] + c[x + sz];
                    o[x] = 0.25f * c[x] + 0.125f * s;
                }
            }
        }
        float *t = a;
        a = b;
        b = t;
    }
    double energy = 0.0;
    for (size_t i = 0; i < cells; i++)
        energy += (double)a[i] * (double)a[i];
    free(a);
    free(b);
    return energy / (double)cells;
}
