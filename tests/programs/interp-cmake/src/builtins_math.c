/* builtins_math.c - numeric helpers: sqrt, floor, abs, min, max, ipow, lcg. */
#include <math.h>

#include "builtins.h"

static bool nat_sqrt(VM *vm, int argc, Value *args, Value *result)
{
    double d;
    (void)argc;
    if (!arg_number(vm, "sqrt", args, 0, &d))
        return false;
    if (d < 0) {
        vm_error(vm, "sqrt of a negative number");
        return false;
    }
    *result = FLOAT_VAL(sqrt(d));
    return true;
}

static bool nat_floor(VM *vm, int argc, Value *args, Value *result)
{
    double d;
    (void)argc;
    if (IS_INT(args[0])) {
        *result = args[0];
        return true;
    }
    if (!arg_number(vm, "floor", args, 0, &d))
        return false;
    d = floor(d);
    if (!(d > -9.2e18 && d < 9.2e18)) {
        vm_error(vm, "floor: result out of integer range");
        return false;
    }
    *result = INT_VAL((int64_t)d);
    return true;
}

static bool nat_abs(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    if (IS_INT(args[0])) {
        int64_t v = AS_INT(args[0]);
        *result = INT_VAL(v < 0 ? (int64_t)(0u - (uint64_t)v) : v);
        return true;
    }
    double d;
    if (!arg_number(vm, "abs", args, 0, &d))
        return false;
    *result = FLOAT_VAL(fabs(d));
    return true;
}

static bool pick(VM *vm, const char *name, Value *args, bool want_max, Value *result)
{
    double a, b;
    if (IS_INT(args[0]) && IS_INT(args[1])) {
        bool first = want_max ? AS_INT(args[0]) >= AS_INT(args[1]) : AS_INT(args[0]) <= AS_INT(args[1]);
        *result = first ? args[0] : args[1];
        return true;
    }
    if (!arg_number(vm, name, args, 0, &a) || !arg_number(vm, name, args, 1, &b))
        return false;
    bool first = want_max ? a >= b : a <= b;
    *result = first ? args[0] : args[1];
    return true;
}

static bool nat_min(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    return pick(vm, "min", args, false, result);
}

static bool nat_max(VM *vm, int argc, Value *args, Value *result)
{
    (void)argc;
    return pick(vm, "max", args, true, result);
}

/* integer power by squaring, wrapping on overflow */
static bool nat_ipow(VM *vm, int argc, Value *args, Value *result)
{
    int64_t base, e;
    (void)argc;
    if (!arg_int(vm, "ipow", args, 0, &base) || !arg_int(vm, "ipow", args, 1, &e))
        return false;
    if (e < 0) {
        vm_error(vm, "ipow: negative exponent");
        return false;
    }
    uint64_t r = 1, b = (uint64_t)base;
    while (e) {
        if (e & 1)
            r *= b;
        b *= b;
        e >>= 1;
    }
    *result = INT_VAL((int64_t)r);
    return true;
}

/* one step of a 31-bit linear congruential generator */
static bool nat_lcg(VM *vm, int argc, Value *args, Value *result)
{
    int64_t x;
    (void)argc;
    if (!arg_int(vm, "lcg", args, 0, &x))
        return false;
    uint64_t next = ((uint64_t)x * 1103515245u + 12345u) & 0x7fffffffu;
    *result = INT_VAL((int64_t)next);
    return true;
}

void builtins_register_math(VM *vm)
{
    vm_define_native(vm, "sqrt", nat_sqrt, 1);
    vm_define_native(vm, "floor", nat_floor, 1);
    vm_define_native(vm, "abs", nat_abs, 1);
    vm_define_native(vm, "min", nat_min, 2);
    vm_define_native(vm, "max", nat_max, 2);
    vm_define_native(vm, "ipow", nat_ipow, 2);
    vm_define_native(vm, "lcg", nat_lcg, 1);
}
