/* nbody.c - softened gravitational n-body integration (leapfrog). */
#include <math.h>
#include <stdlib.h>

#include "kernels.h"

typedef struct {
    double *x, *y, *z;
    double *vx, *vy, *vz;
    double *m;
    int n;
} Bodies;

static double *column(int n)
{
    return xmalloc((size_t)n * sizeof(double));
}

static void accelerate(const Bodies *b, double *ax, double *ay, double *az)
{
    const double soft = 0.01;
    for (int i = 0; i < b->n; i++) {
        double fx = 0.0, fy = 0.0, fz = 0.0;
        double xi = b->x[i], yi = b->y[i], zi = b->z[i];
        for (int j = 0; j < b->n; j++) {
            double dx = b->x[j] - xi;
            double dy = b->y[j] - yi;
            double dz = b->z[j] - zi;
            double r2 = dx * dx + dy * dy + dz * dz + soft;
            double inv = 1.0 / sqrt(r2);
            double s = b->m[j] * inv * inv * inv;
            fx += dx * s;
            fy += dy * s;
            fz += dz * s;
        }
        ax[i] = fx;
        ay[i] = fy;
        az[i] = fz;
    }
}

static double kinetic(const Bodies *b)
{
    double e = 0.0;
    for (int i = 0; i < b->n; i++)
        e += 0.5 * b->m[i] * (b->vx[i] * b->vx[i] + b->vy[i] * b->vy[i] + b->vz[i] * b->vz[i]);
    return e;
}

double nbody_run(int bodies, int steps, uint64_t seed)
{
    Bodies b;
    b.n = bodies;
    b.x = column(bodies); b.y = column(bodies); b.z = column(bodies);
    b.vx = column(bodies); b.vy = column(bodies); b.vz = column(bodies);
    b.m = column(bodies);
    double *ax = column(bodies), *ay = column(bodies), *az = column(bodies);
    Prng p;
    prng_init(&p, seed);
    for (int i = 0; i < bodies; i++) {
        b.x[i] = prng_double(&p) * 2.0 - 1.0;
        b.y[i] = prng_double(&p) * 2.0 - 1.0;
        b.z[i] = prng_double(&p) * 2.0 - 1.0;
        b.vx[i] = b.vy[i] = b.vz[i] = 0.0;
        b.m[i] = (0.5 + prng_double(&p)) / bodies;
    }
    const double dt = 0.001;
    for (int s = 0; s < steps; s++) {
        accelerate(&b, ax, ay, az);
        for (int i = 0; i < bodies; i++) {
            b.vx[i] += dt * ax[i];
            b.vy[i] += dt * ay[i];
            b.vz[i] += dt * az[i];
        }
        for (int i = 0; i < bodies; i++) {
            b.x[i] += dt * b.vx[i];
            b.y[i] += dt * b.vy[i];
            b.z[i] += dt * b.vz[i];
        }
    }
    double e = kinetic(&b);
    free(b.x); free(b.y); free(b.z);
    free(b.vx); free(b.vy); free(b.vz);
    free(b.m);
    free(ax); free(ay); free(az);
    return e;
}
