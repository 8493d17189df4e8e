/* value.c - equality, hashing and formatting of values. */
#include <string.h>

#include "memory.h"

void valarray_init(ValueArray *a)
{
    a->count = 0;
    a->capacity = 0;
    a->values = NULL;
}

int valarray_push(ValueArray *a, Value v)
{
    if (a->count == a->capacity) {
        int nc = GROW_CAPACITY(a->capacity);
        a->values = GROW_ARRAY(Value, a->values, a->capacity, nc);
        a->capacity = nc;
    }
    a->values[a->count] = v;
    return a->count++;
}

void valarray_free(ValueArray *a)
{
    FREE_ARRAY(Value, a->values, a->capacity);
    valarray_init(a);
}

bool values_equal(Value a, Value b)
{
    if (a.type != b.type) {
        if (IS_NUMBER(a) && IS_NUMBER(b))
            return value_as_double(a) == value_as_double(b);
        return false;
    }
    switch (a.type) {
    case VAL_NIL: return true;
    case VAL_BOOL: return AS_BOOL(a) == AS_BOOL(b);
    case VAL_INT: return AS_INT(a) == AS_INT(b);
    case VAL_FLOAT: return AS_FLOAT(a) == AS_FLOAT(b);
    case VAL_OBJ: return AS_OBJ(a) == AS_OBJ(b); /* strings are interned */
    }
    return false;
}

/* Keys whose hash does not depend on addresses, so iteration order of maps
 * is reproducible from run to run. */
bool value_hashable(Value v)
{
    return IS_BOOL(v) || IS_INT(v) || IS_STRING(v);
}

uint32_t value_hash(Value v)
{
    switch (v.type) {
    case VAL_BOOL: return AS_BOOL(v) ? 0x51ed27u : 0x2b3c11u;
    case VAL_INT: return hash_u64((uint64_t)AS_INT(v));
    case VAL_OBJ:
        if (OBJ_TYPE(v) == OBJ_STRING)
            return AS_STRING(v)->hash;
        return hash_u64((uint64_t)(uintptr_t)AS_OBJ(v));
    case VAL_FLOAT: {
        uint64_t bits;
        double d = AS_FLOAT(v);
        memcpy(&bits, &d, sizeof bits);
        return hash_u64(bits);
    }
    case VAL_NIL: return 0;
    }
    return 0;
}

const char *value_type_name(Value v)
{
    switch (v.type) {
    case VAL_NIL: return "nil";
    case VAL_BOOL: return "bool";
    case VAL_INT: return "int";
    case VAL_FLOAT: return "float";
    case VAL_OBJ: return obj_type_name(OBJ_TYPE(v));
    }
    return "?";
}

static void format_depth(StrBuf *sb, Value v, bool quote, int depth)
{
    switch (v.type) {
    case VAL_NIL: sb_puts(sb, "nil"); return;
    case VAL_BOOL: sb_puts(sb, AS_BOOL(v) ? "true" : "false"); return;
    case VAL_INT: sb_printf(sb, "%lld", (long long)AS_INT(v)); return;
    case VAL_FLOAT: sb_printf(sb, "%.6f", AS_FLOAT(v)); return;
    case VAL_OBJ: break;
    }
    if (depth > 6) {
        sb_puts(sb, "...");
        return;
    }
    switch (OBJ_TYPE(v)) {
    case OBJ_STRING:
        if (quote)
            sb_putc(sb, '"');
        sb_append(sb, AS_CSTRING(v), (size_t)AS_STRING(v)->length);
        if (quote)
            sb_putc(sb, '"');
        break;
    case OBJ_LIST: {
        ObjList *l = AS_LIST(v);
        sb_putc(sb, '[');
        for (int i = 0; i < l->count; i++) {
            if (i)
                sb_puts(sb, ", ");
            format_depth(sb, l->items[i], true, depth + 1);
        }
        sb_putc(sb, ']');
        break;
    }
    case OBJ_MAP: {
        const Table *t = &AS_MAP(v)->table;
        bool first = true;
        sb_putc(sb, '{');
        for (int i = table_next(t, -1); i >= 0; i = table_next(t, i)) {
            if (!first)
                sb_puts(sb, ", ");
            first = false;
            format_depth(sb, t->entries[i].key, true, depth + 1);
            sb_puts(sb, ": ");
            format_depth(sb, t->entries[i].value, true, depth + 1);
        }
        sb_putc(sb, '}');
        break;
    }
    case OBJ_FUNCTION: {
        ObjFunction *f = AS_FUNCTION(v);
        sb_printf(sb, "<fn %s>", f->name ? f->name->chars : "script");
        break;
    }
    case OBJ_NATIVE:
        sb_printf(sb, "<native %s>", AS_NATIVE(v)->name);
        break;
    }
}

void value_format(StrBuf *sb, Value v, bool quote)
{
    format_depth(sb, v, quote, 0);
}
