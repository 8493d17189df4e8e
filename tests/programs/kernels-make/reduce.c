/* reduce.c - dot products, norms, extrema and prefix sums over long vectors. */
#include <math.h>
#include <stdlib.h>

#include "kernels.h"

static double dot(const double *restrict x, const double *restrict y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void extrema(const double *x, size_t n, double *lo, double *hi)
{
    double a = x[0], b = x[0];
    for (size_t i = 1; i < n; i++) {
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *lo = a;
    *hi = b;
}

static void axpy(double alpha, const double *restrict x, double *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = alpha * x[i] + y[i];
}

static double prefix_sum(const double *x, double *out, size_t n)
{
    double run = 0.0;
    for (size_t i = 0; i < n; i++) {
        run += x[i];
        out[i] = run;
    }
    return run;
}

ReduceStats reduce_run(size_t len, int reps, uint64_t seed)
{
    double *x = xmalloc(len * sizeof *x);
    double *y = xmalloc(len * sizeof *y);
    double *t = xmalloc(len * sizeof *t);
    Prng p;
    prng_init(&p, seed);
    for (size_t i = 0; i < len; i++) {
        x[i] = prng_double(&p) * 2.0 - 1.0;
        y[i] = prng_double(&p);
    }
    ReduceStats st = {0.0, 0.0, 0.0, 0.0, 0.0};
    for (int r = 0; r < reps; r++) {
        double d = dot(x, y, len);
        st.dot += d / (double)len;
        axpy(-0.001, x, y, len);
    }
    st.norm = sqrt(dot(y, y, len) / (double)len);
    extrema(y, len, &st.minv, &st.maxv);
    st.prefix_tail = prefix_sum(x, t, len) / (double)len + t[len / 2] / (double)len;
    free(x);
    free(y);
    free(t);
    return st;
}
