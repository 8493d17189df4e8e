/* gc.c - a tri-colour mark and sweep collector.  It runs only at VM safe
 * points (loop back-edges and calls), where every live value is reachable
 * from the VM stack, the call frames or the globals. */
#include <stdio.h>
#include <stdlib.h>

#include "memory.h"
#include "vm.h"

static void mark_object(Obj *o)
{
    if (o == NULL || o->marked)
        return;
    o->marked = true;
    if (o->type == OBJ_STRING || o->type == OBJ_NATIVE)
        return; /* no outgoing references: no need to grey */
    if (heap.gray_count == heap.gray_capacity) {
        heap.gray_capacity = GROW_CAPACITY(heap.gray_capacity);
        /* plain realloc: the grey stack must not count as heap growth */
        Obj **g = realloc(heap.gray, sizeof(Obj *) * (size_t)heap.gray_capacity);
        if (!g) {
            fprintf(stderr, "interp: out of memory in collector\n");
            exit(70);
        }
        heap.gray = g;
    }
    heap.gray[heap.gray_count++] = o;
}

static void mark_value(Value v)
{
    if (IS_OBJ(v))
        mark_object(AS_OBJ(v));
}

static void mark_table(const Table *t)
{
    for (int i = table_next(t, -1); i >= 0; i = table_next(t, i)) {
        mark_value(t->entries[i].key);
        mark_value(t->entries[i].value);
    }
}

static void blacken(Obj *o)
{
    switch (o->type) {
    case OBJ_LIST: {
        ObjList *l = (ObjList *)o;
        for (int i = 0; i < l->count; i++)
            mark_value(l->items[i]);
        break;
    }
    case OBJ_MAP:
        mark_table(&((ObjMap *)o)->table);
        break;
    case OBJ_FUNCTION: {
        ObjFunction *f = (ObjFunction *)o;
        mark_object((Obj *)f->name);
        for (int i = 0; i < f->chunk.constants.count; i++)
            mark_value(f->chunk.constants.values[i]);
        break;
    }
    case OBJ_STRING:
    case OBJ_NATIVE:
        break;
    }
}

static void mark_roots(VM *vm)
{
    for (Value *v = vm->stack; v < vm->sp; v++)
        mark_value(*v);
    for (int i = 0; i < vm->frame_count; i++)
        mark_object((Obj *)vm->frames[i].fn);
    mark_table(&vm->globals);
    for (int i = 0; i < vm->extra_root_count; i++)
        mark_value(vm->extra_roots[i]);
}

static void trace(void)
{
    while (heap.gray_count > 0)
        blacken(heap.gray[--heap.gray_count]);
}

static void sweep(void)
{
    Obj **link = &heap.objects;
    while (*link) {
        Obj *o = *link;
        if (o->marked) {
            o->marked = false;
            link = &o->next;
        } else {
            *link = o->next;
            obj_free(o);
            heap.objects_freed++;
        }
    }
}

void gc_collect(VM *vm)
{
    mark_roots(vm);
    trace();
    table_remove_unmarked_keys(&heap.strings);
    sweep();
    heap.collections++;
    heap.next_gc = heap.bytes_allocated * 2;
    if (heap.next_gc < heap.min_gc)
        heap.next_gc = heap.min_gc;
}
