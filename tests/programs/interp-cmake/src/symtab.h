/* symtab.h - lexical scopes of local variables inside one function. */
#ifndef INTERP_SYMTAB_H
#define INTERP_SYMTAB_H

#include "common.h"

typedef struct {
    const char *name;
    int length;
    int depth;
} LocalVar;

typedef struct {
    LocalVar vars[MAX_LOCALS];
    int count;
    int depth;
} Scope;

#define SCOPE_FULL (-1)
#define SCOPE_DUPLICATE (-2)

void scope_init(Scope *s);
void scope_enter(Scope *s);
int scope_leave(Scope *s);                 /* returns how many locals went out of scope */
int scope_declare(Scope *s, const char *name, int length);
int scope_resolve(const Scope *s, const char *name, int length);
int scope_count_deeper(const Scope *s, int depth);

#endif
