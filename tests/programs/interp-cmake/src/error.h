/* error.h - compile-time diagnostics. */
#ifndef INTERP_ERROR_H
#define INTERP_ERROR_H

typedef struct {
    const char *source_name;
    int count;
    int limit;
} Diag;

void diag_init(Diag *d, const char *source_name);
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
void diag_error(Diag *d, int line, const char *fmt, ...);

#endif
