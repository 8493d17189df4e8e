/* error.c - reporting of syntax and compile errors with a report limit. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

void diag_init(Diag *d, const char *source_name)
{
    d->source_name = source_name;
    d->count = 0;
    d->limit = 20;
}

void diag_error(Diag *d, int line, const char *fmt, ...)
{
    d->count++;
    if (d->count > d->limit)
        return;
    fprintf(stderr, "%s:%d: error: ", d->source_name, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (d->count == d->limit)
        fprintf(stderr, "%s: too many errors, giving up on reporting\n", d->source_name);
}
