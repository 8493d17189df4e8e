/* interp.h - public interface of the scripting engine library.
 * The engine keeps its heap in process-wide state, so only one Interp may
 * exist at a time. */
#ifndef INTERP_INTERP_H
#define INTERP_INTERP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Interp Interp;

typedef struct {
    int ast_nodes;
    int folded;
    int functions;
    int code_bytes;
    int peepholes;
    size_t collections;
    size_t objects_freed;
    uint64_t calls;
} InterpStats;

Interp *interp_new(bool stress_gc);
void interp_set_int(Interp *it, const char *name, int64_t value);
void interp_set_disassemble(Interp *it, bool on);
/* 0: success, 1: compile error, 2: runtime error */
int interp_run(Interp *it, const char *name, const char *source);
void interp_stats(const Interp *it, InterpStats *out);
void interp_free(Interp *it);

#endif
