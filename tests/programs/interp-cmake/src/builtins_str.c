/* builtins_str.c - string functions: ord, chr, substr, join, split, upper,
 * find, repeat. */
#include <string.h>

#include "builtins.h"
#include "memory.h"

static bool nat_ord(VM *vm, int argc, Value *args, Value *result)
{
    ObjString *s;
    int64_t i = 0;
    if (argc < 1 || argc > 2) {
        vm_error(vm, "ord expects 1 or 2 arguments");
        return false;
    }
    if (!arg_string(vm, "ord", args, 0, &s))
        return false;
    if (argc == 2 && !arg_int(vm, "ord", args, 1, &i))
        return false;
    if (i < 0 || i >= s->length) {
        vm_error(vm, "ord: index %lld out of range", (long long)i);
        return false;
    }
    *result = INT_VAL((uint8_t)s->chars[i]);
    return true;
}

static bool nat_chr(VM *vm, int argc, Value *args, Value *result)
{
    int64_t c;
    (void)argc;
    if (!arg_int(vm, "chr", args, 0, &c))
        return false;
    if (c < 0 || c > 255) {
        vm_error(vm, "chr: %lld is not a byte", (long long)c);
        return false;
    }
    char ch = (char)c;
    *result = OBJ_VAL(str_copy(&ch, 1));
    return true;
}

static bool nat_substr(VM *vm, int argc, Value *args, Value *result)
{
    ObjString *s;
    int64_t start, len;
    (void)argc;
    if (!arg_string(vm, "substr", args, 0, &s) || !arg_int(vm, "substr", args, 1, &start) ||
        !arg_int(vm, "substr", args, 2, &len))
        return false;
    if (start < 0)
        start = 0;
    if (start > s->length)
        start = s->length;
    if (len < 0)
        len = 0;
    if (len > s->length - start)
        len = s->length - start;
    *result = OBJ_VAL(str_copy(s->chars + start, (int)len));
    return true;
}

static bool nat_join(VM *vm, int argc, Value *args, Value *result)
{
    ObjList *l;
    ObjString *sep;
    (void)argc;
    if (!arg_list(vm, "join", args, 0, &l) || !arg_string(vm, "join", args, 1, &sep))
        return false;
    StrBuf sb;
    sb_init(&sb);
    for (int i = 0; i < l->count; i++) {
        if (i)
            sb_append(&sb, sep->chars, (size_t)sep->length);
        value_format(&sb, l->items[i], false);
    }
    *result = OBJ_VAL(sb_to_string(&sb));
    sb_free(&sb);
    return true;
}

static bool nat_split(VM *vm, int argc, Value *args, Value *result)
{
    ObjString *s, *sep;
    (void)argc;
    if (!arg_string(vm, "split", args, 0, &s) || !arg_string(vm, "split", args, 1, &sep))
        return false;
    if (sep->length == 0) {
        vm_error(vm, "split: empty separator");
        return false;
    }
    ObjList *l = list_new(0);
    int start = 0;
    for (int i = 0; i + sep->length <= s->length;) {
        if (memcmp(s->chars + i, sep->chars, (size_t)sep->length) == 0) {
            list_append(l, OBJ_VAL(str_copy(s->chars + start, i - start)));
            i += sep->length;
            start = i;
        } else {
            i++;
        }
    }
    list_append(l, OBJ_VAL(str_copy(s->chars + start, s->length - start)));
    *result = OBJ_VAL(l);
    return true;
}

static bool nat_upper(VM *vm, int argc, Value *args, Value *result)
{
    ObjString *s;
    (void)argc;
    if (!arg_string(vm, "upper", args, 0, &s))
        return false;
    StrBuf sb;
    sb_init(&sb);
    for (int i = 0; i < s->length; i++) {
        char c = s->chars[i];
        sb_putc(&sb, (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c);
    }
    *result = OBJ_VAL(sb_to_string(&sb));
    sb_free(&sb);
    return true;
}

static bool nat_find(VM *vm, int argc, Value *args, Value *result)
{
    ObjString *s, *sub;
    (void)argc;
    if (!arg_string(vm, "find", args, 0, &s) || !arg_string(vm, "find", args, 1, &sub))
        return false;
    *result = INT_VAL(-1);
    for (int i = 0; i + sub->length <= s->length; i++) {
        if (memcmp(s->chars + i, sub->chars, (size_t)sub->length) == 0) {
            *result = INT_VAL(i);
            break;
        }
    }
    return true;
}

static bool nat_repeat(VM *vm, int argc, Value *args, Value *result)
{
    ObjString *s;
    int64_t n;
    (void)argc;
    if (!arg_string(vm, "repeat", args, 0, &s) || !arg_int(vm, "repeat", args, 1, &n))
        return false;
    if (n < 0 || (int64_t)s->length * n > 100000000) {
        vm_error(vm, "repeat: bad count %lld", (long long)n);
        return false;
    }
    StrBuf sb;
    sb_init(&sb);
    for (int64_t i = 0; i < n; i++)
        sb_append(&sb, s->chars, (size_t)s->length);
    *result = OBJ_VAL(sb_to_string(&sb));
    sb_free(&sb);
    return true;
}

void builtins_register_str(VM *vm)
{
    vm_define_native(vm, "ord", nat_ord, -1);
    vm_define_native(vm, "chr", nat_chr, 1);
    vm_define_native(vm, "substr", nat_substr, 3);
    vm_define_native(vm, "join", nat_join, 2);
    vm_define_native(vm, "split", nat_split, 2);
    vm_define_native(vm, "upper", nat_upper, 1);
    vm_define_native(vm, "find", nat_find, 2);
    vm_define_native(vm, "repeat", nat_repeat, 2);
}
