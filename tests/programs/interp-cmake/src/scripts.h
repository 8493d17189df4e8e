/* scripts.h - benchmark programs embedded in the executable. */
#ifndef INTERP_SCRIPTS_H
#define INTERP_SCRIPTS_H

typedef struct {
    const char *name;
    const char *source;
} Script;

extern const Script bench_scripts[];
extern const int bench_script_count;

#endif
