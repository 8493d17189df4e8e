/* heat.c - five-point stencil relaxation of a heated plate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static void relax(const double *restrict src, double *restrict dst, int n, double k)
{
    for (int y = 1; y < n - 1; y++) {
        const double *c = src + (size_t)y * (size_t)n;
        double *o = dst + (size_t)y * (size_t)n;
        for (int x = 1; x < n - 1; x++) {
            double lap = c[x - 1] + c[x + 1] + c[x - n] + c[x + n] - 4.0 * c[x];
            o[x] = c[x] + k * lap;
        }
    }
}

static void place_sources(double *g, int n, Rng *r)
{
    for (int i = 0; i < 12; i++) {
        int x = 1 + (int)rng_below(r, (uint32_t)(n - 2));
        int y = 1 + (int)rng_below(r, (uint32_t)(n - 2));
        g[(size_t)y * (size_t)n + (size_t)x] = 50.0 + 50.0 * rng_unit(r);
    }
}

HeatResult heat_run(int size, int steps, uint64_t seed)
{
    size_t cells = (size_t)size * (size_t)size;
    double *a = calloc(cells, sizeof *a);
    double *b = calloc(cells, sizeof *b);
    HeatResult res = {0.0, 0.0, 0.0};
    if (!a || !b) {
        fprintf(stderr, "heat: out of memory\n");
        exit(1);
    }
    Rng r;
    rng_seed(&r, seed);
    /* hot left edge, cold everywhere else */
    for (int y = 0; y < size; y++) {
        a[(size_t)y * (size_t)size] = 100.0;
        b[(size_t)y * (size_t)size] = 100.0;
    }
    for (int s = 0; s < steps; s++) {
        if (s % 64 == 0)
            place_sources(a, size, &r);
        relax(a, b, size, 0.2);
        double *t = a;
        a = b;
        b = t;
    }
    double sum = 0.0, peak = 0.0;
    for (size_t i = 0; i < cells; i++) {
        sum += a[i];
        if (a[i] > peak)
            peak = a[i];
    }
    res.mean = sum / (double)cells;
    res.peak = peak;
    res.probe = a[(size_t)(size / 2) * (size_t)size + (size_t)(size / 3)];
    free(a);
    free(b);
    return res;
}
