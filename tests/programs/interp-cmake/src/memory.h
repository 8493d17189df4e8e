/* memory.h - tracked allocation and the heap shared by the runtime. */
#ifndef INTERP_MEMORY_H
#define INTERP_MEMORY_H

#include "object.h"

typedef struct {
    Obj *objects;
    size_t bytes_allocated;
    size_t next_gc;
    size_t min_gc;
    Table strings; /* intern set; weak references */
    Obj **gray;
    int gray_count;
    int gray_capacity;
    size_t collections;
    size_t objects_freed;
    bool stress; /* collect at every safe point */
} Heap;

extern Heap heap;

void *mem_realloc(void *p, size_t old_size, size_t new_size);
void heap_init(void);
void heap_free_all(void);

#define GROW_CAPACITY(c) ((c) < 8 ? 8 : (c) * 2)
#define GROW_ARRAY(type, p, oldc, newc) \
    ((type *)mem_realloc((p), sizeof(type) * (size_t)(oldc), sizeof(type) * (size_t)(newc)))
#define FREE_ARRAY(type, p, n) mem_realloc((p), sizeof(type) * (size_t)(n), 0)

/* gc.c: collection only happens at VM safe points */
static inline bool gc_wanted(void)
{
    return heap.stress || heap.bytes_allocated > heap.next_gc;
}
void gc_collect(VM *vm);

#endif
