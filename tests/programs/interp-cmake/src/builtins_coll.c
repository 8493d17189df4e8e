/* builtins_coll.c - list and map functions: push, pop, keys, values, has,
 * del, sort, slice, reverse, sum. */
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "memory.h"

static bool nat_push(VM *vm, int argc, Value *args, Value *result)
{
    ObjList *l;
    (void)argc;
    if (!arg_list(vm, "push", args, 0, &l))
        return false;
    list_append(l, args[1]);
    *result = INT_VAL(l->count);
    return true;
}

static bool nat_pop(VM *vm, int argc, Value *args, Value *result)
{
    ObjList *l;
    (void)argc;
    if (!arg_list(vm, "pop", args, 0, &l))
        return false;
    if (l->count == 0) {
        vm_error(vm, "pop from an empty list");
        return false;
    }
    *result = l->items[--l->count];
    return true;
}

static bool collect(VM *vm, const char *name, Value *args, bool want_keys, Value *result)
{
    ObjMap *m;
    if (!arg_map(vm, name, args, 0, &m))
        return false;
    ObjList *l = list_new(m->table.live);
    const Table *t = &m->table;
    for (int i = table_next(t, -1); i >= 0; i = table_next(t, i))
        l->items[l->count++] = want_keys ? t->entries[i].key : t->entries[i].value;
    *result = OBJ_VAL(l);
    return true;
}

static bool nat_keys(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    return collect(vm, "keys", args, true, result);
}

static bool nat_values(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    return collect(vm, "values", args, false, result);
}

static bool nat_has(VM *vm, int argc, Value *args, Value *result)
{
    ObjMap *m;
    Value dummy;
    (void)argc;
    if (!arg_map(vm, "has", args, 0, &m))
        return false;
    *result = BOOL_VAL(value_hashable(args[1]) && table_get(&m->table, args[1], &dummy));
    return true;
}

static bool nat_del(VM *vm, int argc, Value *args, Value *result)
{
    ObjMap *m;
    (void)argc;
    if (!arg_map(vm, "del", args, 0, &m))
        return false;
    *result = BOOL_VAL(value_hashable(args[1]) && table_delete(&m->table, args[1]));
    return true;
}

/* ordering used by sort(): numbers before strings, each in natural order */
static int order(Value a, Value b)
{
    bool na = IS_NUMBER(a), nb = IS_NUMBER(b);
    if (na && nb) {
        if (IS_INT(a) && IS_INT(b))
            return (AS_INT(a) > AS_INT(b)) - (AS_INT(a) < AS_INT(b));
        double x = value_as_double(a), y = value_as_double(b);
        return (x > y) - (x < y);
    }
    if (na != nb)
        return na ? -1 : 1;
    const ObjString *s = AS_STRING(a), *t = AS_STRING(b);
    int n = s->length < t->length ? s->length : t->length;
    int c = memcmp(s->chars, t->chars, (size_t)n);
    if (c)
        return c < 0 ? -1 : 1;
    return (s->length > t->length) - (s->length < t->length);
}

/* stable top-down merge sort */
static void merge_sort(Value *a, Value *tmp, int n)
{
    if (n < 2)
        return;
    if (n <= 12) {
        for (int i = 1; i < n; i++) {
            Value v = a[i];
            int j = i - 1;
            while (j >= 0 && order(a[j], v) > 0) {
                a[j + 1] = a[j];
                j--;
            }
            a[j + 1] = v;
        }
        return;
    }
    int mid = n / 2;
    merge_sort(a, tmp, mid);
    merge_sort(a + mid, tmp, n - mid);
    int i = 0, j = mid, k = 0;
    while (i < mid && j < n)
        tmp[k++] = order(a[j], a[i]) < 0 ? a[j++] : a[i++];
    while (i < mid)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, sizeof(Value) * (size_t)n);
}

static bool nat_sort(VM *vm, int argc, Value *args, Value *result)
{
    ObjList *l;
    (void)argc;
    if (!arg_list(vm, "sort", args, 0, &l))
        return false;
    for (int i = 0; i < l->count; i++) {
        if (!IS_NUMBER(l->items[i]) && !IS_STRING(l->items[i])) {
            vm_error(vm, "sort: cannot order a %s", value_type_name(l->items[i]));
            return false;
        }
    }
    Value *tmp = malloc(sizeof(Value) * (size_t)(l->count ? l->count : 1));
    if (!tmp) {
        vm_error(vm, "sort: out of memory");
        return false;
    }
    merge_sort(l->items, tmp, l->count);
    free(tmp);
    *result = args[0];
    return true;
}

static bool nat_slice(VM *vm, int argc, Value *args, Value *result)
{
    ObjList *l;
    int64_t lo, hi;
    (void)argc;
    if (!arg_list(vm, "slice", args, 0, &l) || !arg_int(vm, "slice", args, 1, &lo) ||
        !arg_int(vm, "slice", args, 2, &hi))
        return false;
    if (lo < 0)
        lo = 0;
    if (hi > l->count)
        hi = l->count;
    ObjList *out = list_new(hi > lo ? (int)(hi - lo) : 0);
    for (int64_t i = lo; i < hi; i++)
        out->items[out->count++] = l->items[i];
    *result = OBJ_VAL(out);
    return true;
}

static bool nat_reverse(VM *vm, int argc, Value *args, Value *result)
{
    ObjList *l;
    (void)argc;
    if (!arg_list(vm, "reverse", args, 0, &l))
        return false;
    for (int i = 0, j = l->count - 1; i < j; i++, j--) {
        Value t = l->items[i];
        l->items[i] = l->items[j];
        l->items[j] = t;
    }
    *result = args[0];
    return true;
}

static bool nat_sum(VM *vm, int argc, Value *args, Value *result)
{
    ObjList *l;
    (void)argc;
    if (!arg_list(vm, "sum", args, 0, &l))
        return false;
    uint64_t isum = 0;
    double fsum = 0.0;
    bool any_float = false;
    for (int i = 0; i < l->count; i++) {
        Value v = l->items[i];
        if (IS_INT(v)) {
            isum += (uint64_t)AS_INT(v);
        } else if (IS_FLOAT(v)) {
            fsum += AS_FLOAT(v);
            any_float = true;
        } else {
            vm_error(vm, "sum: element %d is a %s", i, value_type_name(v));
            return false;
        }
    }
    *result = any_float ? FLOAT_VAL(fsum + (double)(int64_t)isum) : INT_VAL((int64_t)isum);
    return true;
}

void builtins_register_coll(VM *vm)
{
    vm_define_native(vm, "push", nat_push, 2);
    vm_define_native(vm, "pop", nat_pop, 1);
    vm_define_native(vm, "keys", nat_keys, 1);
    vm_define_native(vm, "values", nat_values, 1);
    vm_define_native(vm, "has", nat_has, 2);
    vm_define_native(vm, "del", nat_del, 2);
    vm_define_native(vm, "sort", nat_sort, 1);
    vm_define_native(vm, "slice", nat_slice, 3);
    vm_define_native(vm, "reverse", nat_reverse, 1);
    vm_define_native(vm, "sum", nat_sum, 1);
}
