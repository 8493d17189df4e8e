/* builtins.c - registration and argument validation for native functions. */
#include "builtins.h"
#include "memory.h"

void builtins_register_all(VM *vm)
{
    builtins_register_core(vm);
    builtins_register_math(vm);
    builtins_register_str(vm);
    builtins_register_coll(vm);
}

static bool wrong_type(VM *vm, const char *fn, int i, const char *want, Value got)
{
    vm_error(vm, "%s: argument %d must be %s, not %s", fn, i + 1, want, value_type_name(got));
    return false;
}

bool arg_int(VM *vm, const char *fn, Value *args, int i, int64_t *out)
{
    if (!IS_INT(args[i]))
        return wrong_type(vm, fn, i, "an int", args[i]);
    *out = AS_INT(args[i]);
    return true;
}

bool arg_number(VM *vm, const char *fn, Value *args, int i, double *out)
{
    if (!IS_NUMBER(args[i]))
        return wrong_type(vm, fn, i, "a number", args[i]);
    *out = value_as_double(args[i]);
    return true;
}

bool arg_string(VM *vm, const char *fn, Value *args, int i, ObjString **out)
{
    if (!IS_STRING(args[i]))
        return wrong_type(vm, fn, i, "a string", args[i]);
    *out = AS_STRING(args[i]);
    return true;
}

bool arg_list(VM *vm, const char *fn, Value *args, int i, ObjList **out)
{
    if (!IS_LIST(args[i]))
        return wrong_type(vm, fn, i, "a list", args[i]);
    *out = AS_LIST(args[i]);
    return true;
}

bool arg_map(VM *vm, const char *fn, Value *args, int i, ObjMap **out)
{
    if (!IS_MAP(args[i]))
        return wrong_type(vm, fn, i, "a map", args[i]);
    *out = AS_MAP(args[i]);
    return true;
}
