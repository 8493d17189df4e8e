/* memory.c - the single allocation funnel; it keeps the byte count the
 * collector uses to decide when a collection is due. */
#include <stdio.h>
#include <stdlib.h>

#include "memory.h"

Heap heap;

void *mem_realloc(void *p, size_t old_size, size_t new_size)
{
    heap.bytes_allocated += new_size;
    heap.bytes_allocated -= old_size;
    if (new_size == 0) {
        free(p);
        return NULL;
    }
    void *np = realloc(p, new_size);
    if (!np) {
        fprintf(stderr, "interp: out of memory\n");
        exit(70);
    }
    return np;
}

void heap_init(void)
{
    heap.objects = NULL;
    heap.bytes_allocated = 0;
    heap.min_gc = 256u * 1024u;
    heap.next_gc = heap.min_gc;
    table_init(&heap.strings);
    heap.gray = NULL;
    heap.gray_count = 0;
    heap.gray_capacity = 0;
    heap.collections = 0;
    heap.objects_freed = 0;
    heap.stress = false;
}

void heap_free_all(void)
{
    Obj *o = heap.objects;
    while (o) {
        Obj *next = o->next;
        obj_free(o);
        o = next;
    }
    heap.objects = NULL;
    table_free(&heap.strings);
    free(heap.gray);
    heap.gray = NULL;
    heap.gray_count = heap.gray_capacity = 0;
}
