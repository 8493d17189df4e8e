/* symtab.c - slot assignment for locals; slot 0 holds the running function. */
#include <string.h>

#include "symtab.h"

void scope_init(Scope *s)
{
    s->count = 1;
    s->depth = 0;
    s->vars[0].name = "";
    s->vars[0].length = 0;
    s->vars[0].depth = 0;
}

void scope_enter(Scope *s)
{
    s->depth++;
}

int scope_leave(Scope *s)
{
    int removed = 0;
    while (s->count > 1 && s->vars[s->count - 1].depth >= s->depth) {
        s->count--;
        removed++;
    }
    s->depth--;
    return removed;
}

static bool same_name(const LocalVar *v, const char *name, int length)
{
    return v->length == length && memcmp(v->name, name, (size_t)length) == 0;
}

int scope_declare(Scope *s, const char *name, int length)
{
    for (int i = s->count - 1; i >= 1 && s->vars[i].depth == s->depth; i--) {
        if (same_name(&s->vars[i], name, length))
            return SCOPE_DUPLICATE;
    }
    if (s->count >= MAX_LOCALS)
        return SCOPE_FULL;
    LocalVar *v = &s->vars[s->count];
    v->name = name;
    v->length = length;
    v->depth = s->depth;
    return s->count++;
}

int scope_resolve(const Scope *s, const char *name, int length)
{
    for (int i = s->count - 1; i >= 1; i--) {
        if (same_name(&s->vars[i], name, length))
            return i;
    }
    return -1;
}

int scope_count_deeper(const Scope *s, int depth)
{
    int n = 0;
    for (int i = s->count - 1; i >= 1 && s->vars[i].depth > depth; i--)
        n++;
    return n;
}
