/* table.h - open-addressing hash table keyed by values. */
#ifndef INTERP_TABLE_H
#define INTERP_TABLE_H

#include "value.h"

typedef struct {
    Value key;   /* VAL_NIL key: empty (value nil) or tombstone (value true) */
    Value value;
} Entry;

typedef struct {
    int used;     /* live entries plus tombstones */
    int live;     /* live entries only */
    int capacity; /* zero or a power of two */
    Entry *entries;
} Table;

void table_init(Table *t);
void table_free(Table *t);
bool table_get(const Table *t, Value key, Value *out);
bool table_set(Table *t, Value key, Value value); /* true when key was new */
bool table_delete(Table *t, Value key);
void table_copy_all(const Table *from, Table *to);
ObjString *table_find_string(const Table *t, const char *chars, int length, uint32_t hash);
void table_remove_unmarked_keys(Table *t);
/* Iteration: returns the next occupied index after i (start with -1), or -1. */
int table_next(const Table *t, int i);

#endif
