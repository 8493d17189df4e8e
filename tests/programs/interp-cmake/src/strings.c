/* strings.c - interned string objects and a growable byte buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

static ObjString *alloc_string(const char *a, int alen, const char *b, int blen, uint32_t hash)
{
    size_t total = (size_t)alen + (size_t)blen;
    ObjString *s = (ObjString *)obj_alloc(sizeof(ObjString) + total + 1, OBJ_STRING);
    s->length = (int)total;
    s->hash = hash;
    memcpy(s->chars, a, (size_t)alen);
    if (blen)
        memcpy(s->chars + alen, b, (size_t)blen);
    s->chars[total] = '\0';
    table_set(&heap.strings, OBJ_VAL(s), NIL_VAL);
    return s;
}

ObjString *str_copy(const char *chars, int length)
{
    uint32_t h = hash_bytes(chars, (size_t)length);
    ObjString *found = table_find_string(&heap.strings, chars, length, h);
    if (found)
        return found;
    return alloc_string(chars, length, NULL, 0, h);
}

ObjString *str_concat(const ObjString *a, const ObjString *b)
{
    if (b->length == 0)
        return (ObjString *)a;
    if (a->length == 0)
        return (ObjString *)b;
    /* Build the joined bytes once to hash and look them up. */
    size_t total = (size_t)a->length + (size_t)b->length;
    char small[256];
    char *tmp = total <= sizeof small ? small : malloc(total);
    if (!tmp) {
        fprintf(stderr, "interp: out of memory\n");
        exit(70);
    }
    memcpy(tmp, a->chars, (size_t)a->length);
    memcpy(tmp + a->length, b->chars, (size_t)b->length);
    uint32_t h = hash_bytes(tmp, total);
    ObjString *found = table_find_string(&heap.strings, tmp, (int)total, h);
    if (!found)
        found = alloc_string(a->chars, a->length, b->chars, b->length, h);
    if (tmp != small)
        free(tmp);
    return found;
}

ObjString *str_from_int(int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    return str_copy(buf, n);
}

void sb_init(StrBuf *sb)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void sb_free(StrBuf *sb)
{
    free(sb->data);
    sb_init(sb);
}

static void sb_reserve(StrBuf *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap)
        return;
    size_t nc = sb->cap ? sb->cap : 64;
    while (nc < sb->len + extra + 1)
        nc *= 2;
    char *nd = realloc(sb->data, nc);
    if (!nd) {
        fprintf(stderr, "interp: out of memory\n");
        exit(70);
    }
    sb->data = nd;
    sb->cap = nc;
}

void sb_append(StrBuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_putc(StrBuf *sb, char c)
{
    sb_append(sb, &c, 1);
}

void sb_puts(StrBuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void sb_printf(StrBuf *sb, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof buf) {
        sb_append(sb, buf, (size_t)n);
        return;
    }
    sb_reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

ObjString *sb_to_string(const StrBuf *sb)
{
    return str_copy(sb->data ? sb->data : "", (int)sb->len);
}
