/* builtins_core.c - print, len, type, conversions, assert, hash, range. */
#include <stdio.h>
#include <string.h>

#include "builtins.h"
#include "memory.h"

static bool nat_print(VM *vm, int argc, Value *args, Value *result)
{
    (void)vm;
    StrBuf sb;
    sb_init(&sb);
    for (int i = 0; i < argc; i++) {
        if (i)
            sb_putc(&sb, ' ');
        value_format(&sb, args[i], false);
    }
    sb_putc(&sb, '\n');
    fwrite(sb.data, 1, sb.len, stdout);
    sb_free(&sb);
    *result = NIL_VAL;
    return true;
}

static bool nat_len(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    Value v = args[0];
    if (IS_STRING(v))
        *result = INT_VAL(AS_STRING(v)->length);
    else if (IS_LIST(v))
        *result = INT_VAL(AS_LIST(v)->count);
    else if (IS_MAP(v))
        *result = INT_VAL(AS_MAP(v)->table.live);
    else {
        vm_error(vm, "len: a %s has no length", value_type_name(v));
        return false;
    }
    return true;
}

static bool nat_type(VM *vm, int argc, Value *args, Value *result)
{
    (void)vm;
    (void)argc;
    const char *name = value_type_name(args[0]);
    *result = OBJ_VAL(str_copy(name, (int)strlen(name)));
    return true;
}

static bool nat_str(VM *vm, int argc, Value *args, Value *result)
{
    (void)vm;
    (void)argc;
    if (IS_STRING(args[0])) {
        *result = args[0];
        return true;
    }
    if (IS_INT(args[0])) {
        *result = OBJ_VAL(str_from_int(AS_INT(args[0])));
        return true;
    }
    StrBuf sb;
    sb_init(&sb);
    value_format(&sb, args[0], false);
    *result = OBJ_VAL(sb_to_string(&sb));
    sb_free(&sb);
    return true;
}

static bool nat_int(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    Value v = args[0];
    if (IS_INT(v)) {
        *result = v;
        return true;
    }
    if (IS_FLOAT(v)) {
        double d = AS_FLOAT(v);
        if (!(d > -9.2e18 && d < 9.2e18)) {
            vm_error(vm, "int: %f is out of range", d);
            return false;
        }
        *result = INT_VAL((int64_t)d);
        return true;
    }
    if (IS_BOOL(v)) {
        *result = INT_VAL(AS_BOOL(v) ? 1 : 0);
        return true;
    }
    if (IS_STRING(v)) {
        ObjString *s = AS_STRING(v);
        int64_t acc = 0;
        int i = 0;
        bool neg = false;
        if (s->length > 0 && s->chars[0] == '-') {
            neg = true;
            i = 1;
        }
        if (i >= s->length) {
            vm_error(vm, "int: '%s' is not a number", s->chars);
            return false;
        }
        for (; i < s->length; i++) {
            char c = s->chars[i];
            if (c < '0' || c > '9' || acc > (INT64_MAX - 9) / 10) {
                vm_error(vm, "int: '%s' is not a number", s->chars);
                return false;
            }
            acc = acc * 10 + (c - '0');
        }
        *result = INT_VAL(neg ? -acc : acc);
        return true;
    }
    vm_error(vm, "int: cannot convert %s", value_type_name(v));
    return false;
}

static bool nat_float(VM *vm, int argc, Value *args, Value *result)
{
    double d;
    (void)argc;
    if (!arg_number(vm, "float", args, 0, &d))
        return false;
    *result = FLOAT_VAL(d);
    return true;
}

static bool nat_assert(VM *vm, int argc, Value *args, Value *result)
{
    if (argc < 1 || argc > 2) {
        vm_error(vm, "assert expects 1 or 2 arguments");
        return false;
    }
    if (!value_truthy(args[0])) {
        if (argc == 2 && IS_STRING(args[1]))
            vm_error(vm, "assertion failed: %s", AS_CSTRING(args[1]));
        else
            vm_error(vm, "assertion failed");
        return false;
    }
    *result = NIL_VAL;
    return true;
}

static bool nat_hash(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    if (!value_hashable(args[0])) {
        vm_error(vm, "hash: a %s is not hashable", value_type_name(args[0]));
        return false;
    }
    *result = INT_VAL((int64_t)value_hash(args[0]));
    return true;
}

static bool nat_range(VM *vm, int argc, Value *args, Value *result)
{
    int64_t lo = 0, hi;
    if (argc == 1) {
        if (!arg_int(vm, "range", args, 0, &hi))
            return false;
    } else if (argc == 2) {
        if (!arg_int(vm, "range", args, 0, &lo) || !arg_int(vm, "range", args, 1, &hi))
            return false;
    } else {
        vm_error(vm, "range expects 1 or 2 arguments");
        return false;
    }
    if (hi > lo && (uint64_t)hi - (uint64_t)lo > 50000000u) {
        vm_error(vm, "range: too many elements");
        return false;
    }
    ObjList *l = list_new(hi > lo ? (int)(hi - lo) : 0);
    for (int64_t i = lo; i < hi; i++)
        l->items[l->count++] = INT_VAL(i);
    *result = OBJ_VAL(l);
    return true;
}

void builtins_register_core(VM *vm)
{
    vm_define_native(vm, "print", nat_print, -1);
    vm_define_native(vm, "len", nat_len, 1);
    vm_define_native(vm, "type", nat_type, 1);
    vm_define_native(vm, "str", nat_str, 1);
    vm_define_native(vm, "int", nat_int, 1);
    vm_define_native(vm, "float", nat_float, 1);
    vm_define_native(vm, "assert", nat_assert, -1);
    vm_define_native(vm, "hash", nat_hash, 1);
    vm_define_native(vm, "range", nat_range, -1);
}
