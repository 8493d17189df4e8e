/* vm_ops.c - type-generic instruction semantics used by the VM's slow paths:
 * mixed and floating arithmetic, string and list concatenation, ordering,
 * and indexing of lists, strings and maps. */
#include <string.h>

#include "memory.h"
#include "vm.h"

bool vm_int_divmod(VM *vm, OpCode op, int64_t a, int64_t b, int64_t *out)
{
    if (b == 0) {
        vm_error(vm, "integer %s by zero", op == OP_DIV ? "division" : "modulo");
        return false;
    }
    if (a == INT64_MIN && b == -1) {
        *out = op == OP_DIV ? INT64_MIN : 0; /* wraps, like the other operators */
        return true;
    }
    *out = op == OP_DIV ? a / b : a % b;
    return true;
}

static ObjList *list_join(const ObjList *a, const ObjList *b)
{
    ObjList *l = list_new(a->count + b->count);
    if (a->count)
        memcpy(l->items, a->items, sizeof(Value) * (size_t)a->count);
    if (b->count)
        memcpy(l->items + a->count, b->items, sizeof(Value) * (size_t)b->count);
    l->count = a->count + b->count;
    return l;
}

static const char *op_symbol(OpCode op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_MOD: return "%";
    default: return "?";
    }
}

bool vm_arith(VM *vm, OpCode op, Value a, Value b, Value *out)
{
    if (IS_NUMBER(a) && IS_NUMBER(b)) {
        if (IS_INT(a) && IS_INT(b)) {
            uint64_t x = (uint64_t)AS_INT(a), y = (uint64_t)AS_INT(b);
            int64_t r;
            switch (op) {
            case OP_ADD: *out = INT_VAL((int64_t)(x + y)); return true;
            case OP_SUB: *out = INT_VAL((int64_t)(x - y)); return true;
            case OP_MUL: *out = INT_VAL((int64_t)(x * y)); return true;
            default:
                if (!vm_int_divmod(vm, op, AS_INT(a), AS_INT(b), &r))
                    return false;
                *out = INT_VAL(r);
                return true;
            }
        }
        double x = value_as_double(a), y = value_as_double(b);
        switch (op) {
        case OP_ADD: *out = FLOAT_VAL(x + y); return true;
        case OP_SUB: *out = FLOAT_VAL(x - y); return true;
        case OP_MUL: *out = FLOAT_VAL(x * y); return true;
        case OP_DIV:
            if (y == 0.0) {
                vm_error(vm, "float division by zero");
                return false;
            }
            *out = FLOAT_VAL(x / y);
            return true;
        default:
            vm_error(vm, "operator %% needs integers");
            return false;
        }
    }
    if (op == OP_ADD && IS_STRING(a) && IS_STRING(b)) {
        *out = OBJ_VAL(str_concat(AS_STRING(a), AS_STRING(b)));
        return true;
    }
    if (op == OP_ADD && IS_LIST(a) && IS_LIST(b)) {
        *out = OBJ_VAL(list_join(AS_LIST(a), AS_LIST(b)));
        return true;
    }
    vm_error(vm, "unsupported operand types for %s: %s and %s", op_symbol(op), value_type_name(a),
             value_type_name(b));
    return false;
}

bool vm_negate(VM *vm, Value a, Value *out)
{
    if (IS_FLOAT(a)) {
        *out = FLOAT_VAL(-AS_FLOAT(a));
        return true;
    }
    if (IS_INT(a)) {
        *out = INT_VAL((int64_t)(0u - (uint64_t)AS_INT(a)));
        return true;
    }
    vm_error(vm, "cannot negate a value of type %s", value_type_name(a));
    return false;
}

static int compare_strings(const ObjString *a, const ObjString *b)
{
    int n = a->length < b->length ? a->length : b->length;
    int c = memcmp(a->chars, b->chars, (size_t)n);
    if (c)
        return c;
    return (a->length > b->length) - (a->length < b->length);
}

bool vm_less(VM *vm, Value a, Value b, bool or_equal, bool *out)
{
    if (IS_INT(a) && IS_INT(b)) {
        *out = or_equal ? AS_INT(a) <= AS_INT(b) : AS_INT(a) < AS_INT(b);
        return true;
    }
    if (IS_NUMBER(a) && IS_NUMBER(b)) {
        double x = value_as_double(a), y = value_as_double(b);
        *out = or_equal ? x <= y : x < y;
        return true;
    }
    if (IS_STRING(a) && IS_STRING(b)) {
        int c = compare_strings(AS_STRING(a), AS_STRING(b));
        *out = or_equal ? c <= 0 : c < 0;
        return true;
    }
    vm_error(vm, "cannot order values of types %s and %s", value_type_name(a), value_type_name(b));
    return false;
}

static bool list_index(VM *vm, const ObjList *l, Value index, int64_t *out)
{
    if (!IS_INT(index)) {
        vm_error(vm, "list index must be an int, not %s", value_type_name(index));
        return false;
    }
    int64_t i = AS_INT(index);
    if (i < 0)
        i += l->count; /* negative indexes count from the end */
    if (i < 0 || i >= l->count) {
        vm_error(vm, "list index %lld out of range (length %d)", (long long)AS_INT(index), l->count);
        return false;
    }
    *out = i;
    return true;
}

bool vm_index_get(VM *vm, Value container, Value index, Value *out)
{
    if (IS_LIST(container)) {
        int64_t i;
        if (!list_index(vm, AS_LIST(container), index, &i))
            return false;
        *out = AS_LIST(container)->items[i];
        return true;
    }
    if (IS_MAP(container)) {
        if (!value_hashable(index)) {
            vm_error(vm, "a %s cannot be used as a map key", value_type_name(index));
            return false;
        }
        if (!table_get(&AS_MAP(container)->table, index, out))
            *out = NIL_VAL;
        return true;
    }
    if (IS_STRING(container)) {
        ObjString *s = AS_STRING(container);
        if (!IS_INT(index)) {
            vm_error(vm, "string index must be an int");
            return false;
        }
        int64_t i = AS_INT(index);
        if (i < 0)
            i += s->length;
        if (i < 0 || i >= s->length) {
            vm_error(vm, "string index %lld out of range (length %d)", (long long)AS_INT(index), s->length);
            return false;
        }
        *out = OBJ_VAL(str_copy(s->chars + i, 1));
        return true;
    }
    vm_error(vm, "cannot index a value of type %s", value_type_name(container));
    return false;
}

bool vm_index_set(VM *vm, Value container, Value index, Value v)
{
    if (IS_LIST(container)) {
        int64_t i;
        if (!list_index(vm, AS_LIST(container), index, &i))
            return false;
        AS_LIST(container)->items[i] = v;
        return true;
    }
    if (IS_MAP(container)) {
        if (!value_hashable(index)) {
            vm_error(vm, "a %s cannot be used as a map key", value_type_name(index));
            return false;
        }
        table_set(&AS_MAP(container)->table, index, v);
        return true;
    }
    vm_error(vm, "cannot assign into a value of type %s", value_type_name(container));
    return false;
}
