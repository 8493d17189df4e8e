/* object.h - heap objects: strings, lists, maps, functions and natives. */
#ifndef INTERP_OBJECT_H
#define INTERP_OBJECT_H

#include "chunk.h"
#include "table.h"
#include "value.h"

typedef enum {
    OBJ_STRING,
    OBJ_LIST,
    OBJ_MAP,
    OBJ_FUNCTION,
    OBJ_NATIVE
} ObjType;

struct Obj {
    ObjType type;
    bool marked;
    struct Obj *next;
};

struct ObjString {
    Obj obj;
    int length;
    uint32_t hash;
    char chars[];
};

typedef struct {
    Obj obj;
    int count;
    int capacity;
    Value *items;
} ObjList;

typedef struct {
    Obj obj;
    Table table;
} ObjMap;

typedef struct {
    Obj obj;
    int arity;
    Chunk chunk;
    ObjString *name;
} ObjFunction;

typedef struct VM VM;
typedef bool (*NativeFn)(VM *vm, int argc, Value *args, Value *result);

typedef struct {
    Obj obj;
    NativeFn fn;
    const char *name;
    int arity; /* -1: any number of arguments */
} ObjNative;

#define OBJ_TYPE(v) (AS_OBJ(v)->type)
#define IS_STRING(v) (IS_OBJ(v) && OBJ_TYPE(v) == OBJ_STRING)
#define IS_LIST(v) (IS_OBJ(v) && OBJ_TYPE(v) == OBJ_LIST)
#define IS_MAP(v) (IS_OBJ(v) && OBJ_TYPE(v) == OBJ_MAP)
#define IS_FUNCTION(v) (IS_OBJ(v) && OBJ_TYPE(v) == OBJ_FUNCTION)
#define IS_NATIVE(v) (IS_OBJ(v) && OBJ_TYPE(v) == OBJ_NATIVE)

#define AS_STRING(v) ((ObjString *)AS_OBJ(v))
#define AS_CSTRING(v) (((ObjString *)AS_OBJ(v))->chars)
#define AS_LIST(v) ((ObjList *)AS_OBJ(v))
#define AS_MAP(v) ((ObjMap *)AS_OBJ(v))
#define AS_FUNCTION(v) ((ObjFunction *)AS_OBJ(v))
#define AS_NATIVE(v) ((ObjNative *)AS_OBJ(v))

/* object.c */
Obj *obj_alloc(size_t size, ObjType type);
ObjList *list_new(int capacity);
void list_append(ObjList *list, Value v);
ObjMap *map_new(void);
ObjFunction *function_new(ObjString *name);
ObjNative *native_new(NativeFn fn, const char *name, int arity);
void obj_free(Obj *o);
const char *obj_type_name(ObjType t);

/* strings.c: all strings are interned, so equal strings share one object */
ObjString *str_copy(const char *chars, int length);
ObjString *str_concat(const ObjString *a, const ObjString *b);
ObjString *str_from_int(int64_t v);

typedef struct StrBuf {
    char *data;
    size_t len;
    size_t cap;
} StrBuf;

void sb_init(StrBuf *sb);
void sb_free(StrBuf *sb);
void sb_putc(StrBuf *sb, char c);
void sb_append(StrBuf *sb, const char *s, size_t n);
void sb_puts(StrBuf *sb, const char *s);
void sb_printf(StrBuf *sb, const char *fmt, ...);
ObjString *sb_to_string(const StrBuf *sb);

/* hashfn.c */
uint32_t hash_bytes(const char *p, size_t n);
uint32_t hash_u64(uint64_t v);

#endif
