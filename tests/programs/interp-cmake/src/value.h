/* value.h - the dynamically typed value representation. */
#ifndef INTERP_VALUE_H
#define INTERP_VALUE_H

#include "common.h"

typedef struct Obj Obj;
typedef struct ObjString ObjString;
struct StrBuf;

typedef enum {
    VAL_NIL,
    VAL_BOOL,
    VAL_INT,
    VAL_FLOAT,
    VAL_OBJ
} ValueType;

typedef struct {
    ValueType type;
    union {
        bool boolean;
        int64_t integer;
        double number;
        Obj *obj;
    } as;
} Value;

#define NIL_VAL ((Value){VAL_NIL, {.integer = 0}})
#define BOOL_VAL(b) ((Value){VAL_BOOL, {.boolean = (b)}})
#define INT_VAL(v) ((Value){VAL_INT, {.integer = (v)}})
#define FLOAT_VAL(v) ((Value){VAL_FLOAT, {.number = (v)}})
#define OBJ_VAL(o) ((Value){VAL_OBJ, {.obj = (Obj *)(o)}})

#define IS_NIL(v) ((v).type == VAL_NIL)
#define IS_BOOL(v) ((v).type == VAL_BOOL)
#define IS_INT(v) ((v).type == VAL_INT)
#define IS_FLOAT(v) ((v).type == VAL_FLOAT)
#define IS_NUMBER(v) ((v).type == VAL_INT || (v).type == VAL_FLOAT)
#define IS_OBJ(v) ((v).type == VAL_OBJ)

#define AS_BOOL(v) ((v).as.boolean)
#define AS_INT(v) ((v).as.integer)
#define AS_FLOAT(v) ((v).as.number)
#define AS_OBJ(v) ((v).as.obj)

static inline bool value_truthy(Value v)
{
    return !(v.type == VAL_NIL || (v.type == VAL_BOOL && !v.as.boolean));
}

static inline double value_as_double(Value v)
{
    return v.type == VAL_INT ? (double)v.as.integer : v.as.number;
}

typedef struct {
    int count;
    int capacity;
    Value *values;
} ValueArray;

void valarray_init(ValueArray *a);
int valarray_push(ValueArray *a, Value v);
void valarray_free(ValueArray *a);

bool values_equal(Value a, Value b);
bool value_hashable(Value v);
uint32_t value_hash(Value v);
const char *value_type_name(Value v);
/* Append a printable form; nested strings are quoted when quote is set. */
void value_format(struct StrBuf *sb, Value v, bool quote);

#endif
