/* object.c - construction and destruction of heap objects. */
#include <string.h>

#include "memory.h"

Obj *obj_alloc(size_t size, ObjType type)
{
    Obj *o = mem_realloc(NULL, 0, size);
    o->type = type;
    o->marked = false;
    o->next = heap.objects;
    heap.objects = o;
    return o;
}

ObjList *list_new(int capacity)
{
    ObjList *l = (ObjList *)obj_alloc(sizeof(ObjList), OBJ_LIST);
    l->count = 0;
    l->capacity = 0;
    l->items = NULL;
    if (capacity > 0) {
        l->items = GROW_ARRAY(Value, NULL, 0, capacity);
        l->capacity = capacity;
    }
    return l;
}

void list_append(ObjList *l, Value v)
{
    if (l->count == l->capacity) {
        int nc = GROW_CAPACITY(l->capacity);
        l->items = GROW_ARRAY(Value, l->items, l->capacity, nc);
        l->capacity = nc;
    }
    l->items[l->count++] = v;
}

ObjMap *map_new(void)
{
    ObjMap *m = (ObjMap *)obj_alloc(sizeof(ObjMap), OBJ_MAP);
    table_init(&m->table);
    return m;
}

ObjFunction *function_new(ObjString *name)
{
    ObjFunction *f = (ObjFunction *)obj_alloc(sizeof(ObjFunction), OBJ_FUNCTION);
    f->arity = 0;
    f->name = name;
    chunk_init(&f->chunk);
    return f;
}

ObjNative *native_new(NativeFn fn, const char *name, int arity)
{
    ObjNative *n = (ObjNative *)obj_alloc(sizeof(ObjNative), OBJ_NATIVE);
    n->fn = fn;
    n->name = name;
    n->arity = arity;
    return n;
}

void obj_free(Obj *o)
{
    switch (o->type) {
    case OBJ_STRING: {
        ObjString *s = (ObjString *)o;
        mem_realloc(s, sizeof(ObjString) + (size_t)s->length + 1, 0);
        break;
    }
    case OBJ_LIST: {
        ObjList *l = (ObjList *)o;
        FREE_ARRAY(Value, l->items, l->capacity);
        mem_realloc(l, sizeof *l, 0);
        break;
    }
    case OBJ_MAP: {
        ObjMap *m = (ObjMap *)o;
        table_free(&m->table);
        mem_realloc(m, sizeof *m, 0);
        break;
    }
    case OBJ_FUNCTION: {
        ObjFunction *f = (ObjFunction *)o;
        chunk_free(&f->chunk);
        mem_realloc(f, sizeof *f, 0);
        break;
    }
    case OBJ_NATIVE:
        mem_realloc(o, sizeof(ObjNative), 0);
        break;
    }
}

const char *obj_type_name(ObjType t)
{
    switch (t) {
    case OBJ_STRING: return "string";
    case OBJ_LIST: return "list";
    case OBJ_MAP: return "map";
    case OBJ_FUNCTION: return "function";
    case OBJ_NATIVE: return "native";
    }
    return "?";
}
