/* table.c - linear-probing hash table with tombstones, keyed by Value. */
#include <string.h>

#include "memory.h"

#define MAX_LOAD_NUM 3
#define MAX_LOAD_DEN 4

void table_init(Table *t)
{
    t->used = 0;
    t->live = 0;
    t->capacity = 0;
    t->entries = NULL;
}

void table_free(Table *t)
{
    FREE_ARRAY(Entry, t->entries, t->capacity);
    table_init(t);
}

static bool is_tombstone(const Entry *e)
{
    return IS_NIL(e->key) && IS_BOOL(e->value);
}

/* Finds the slot holding key, or the slot where it should be inserted
 * (preferring the first tombstone seen on the probe path). */
static Entry *find_slot(Entry *entries, int capacity, Value key)
{
    uint32_t mask = (uint32_t)capacity - 1;
    uint32_t i = value_hash(key) & mask;
    Entry *tomb = NULL;
    for (;;) {
        Entry *e = &entries[i];
        if (IS_NIL(e->key)) {
            if (!is_tombstone(e))
                return tomb ? tomb : e;
            if (!tomb)
                tomb = e;
        } else if (values_equal(e->key, key) && e->key.type == key.type) {
            return e;
        }
        i = (i + 1) & mask;
    }
}

static void resize(Table *t, int capacity)
{
    Entry *entries = GROW_ARRAY(Entry, NULL, 0, capacity);
    for (int i = 0; i < capacity; i++) {
        entries[i].key = NIL_VAL;
        entries[i].value = NIL_VAL;
    }
    t->used = 0;
    for (int i = 0; i < t->capacity; i++) {
        Entry *src = &t->entries[i];
        if (IS_NIL(src->key))
            continue;
        Entry *dst = find_slot(entries, capacity, src->key);
        *dst = *src;
        t->used++;
    }
    FREE_ARRAY(Entry, t->entries, t->capacity);
    t->entries = entries;
    t->capacity = capacity;
}

bool table_get(const Table *t, Value key, Value *out)
{
    if (t->live == 0)
        return false;
    Entry *e = find_slot(t->entries, t->capacity, key);
    if (IS_NIL(e->key))
        return false;
    *out = e->value;
    return true;
}

bool table_set(Table *t, Value key, Value value)
{
    if ((t->used + 1) * MAX_LOAD_DEN > t->capacity * MAX_LOAD_NUM) {
        /* grow only if live entries need it; otherwise just purge tombstones */
        int cap = t->capacity;
        if ((t->live + 1) * MAX_LOAD_DEN * 2 > cap * MAX_LOAD_NUM)
            cap = GROW_CAPACITY(cap);
        resize(t, cap);
    }
    Entry *e = find_slot(t->entries, t->capacity, key);
    bool fresh = IS_NIL(e->key);
    if (fresh) {
        if (!is_tombstone(e))
            t->used++;
        t->live++;
    }
    e->key = key;
    e->value = value;
    return fresh;
}

bool table_delete(Table *t, Value key)
{
    if (t->live == 0)
        return false;
    Entry *e = find_slot(t->entries, t->capacity, key);
    if (IS_NIL(e->key))
        return false;
    e->key = NIL_VAL;
    e->value = BOOL_VAL(true);
    t->live--;
    return true;
}

void table_copy_all(const Table *from, Table *to)
{
    for (int i = table_next(from, -1); i >= 0; i = table_next(from, i))
        table_set(to, from->entries[i].key, from->entries[i].value);
}

ObjString *table_find_string(const Table *t, const char *chars, int length, uint32_t hash)
{
    if (t->live == 0)
        return NULL;
    uint32_t mask = (uint32_t)t->capacity - 1;
    uint32_t i = hash & mask;
    for (;;) {
        const Entry *e = &t->entries[i];
        if (IS_NIL(e->key)) {
            if (!is_tombstone(e))
                return NULL;
        } else {
            ObjString *s = AS_STRING(e->key);
            if (s->hash == hash && s->length == length && memcmp(s->chars, chars, (size_t)length) == 0)
                return s;
        }
        i = (i + 1) & mask;
    }
}

void table_remove_unmarked_keys(Table *t)
{
    for (int i = 0; i < t->capacity; i++) {
        Entry *e = &t->entries[i];
        if (IS_OBJ(e->key) && !AS_OBJ(e->key)->marked) {
            e->key = NIL_VAL;
            e->value = BOOL_VAL(true);
            t->live--;
        }
    }
}

int table_next(const Table *t, int i)
{
    for (i++; i < t->capacity; i++) {
        if (!IS_NIL(t->entries[i].key))
            return i;
    }
    return -1;
}
