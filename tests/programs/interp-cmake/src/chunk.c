/* chunk.c - growable bytecode arrays with line information. */
#include "memory.h"

void chunk_init(Chunk *c)
{
    c->count = 0;
    c->capacity = 0;
    c->code = NULL;
    c->lines = NULL;
    valarray_init(&c->constants);
}

void chunk_free(Chunk *c)
{
    FREE_ARRAY(uint8_t, c->code, c->capacity);
    FREE_ARRAY(int, c->lines, c->capacity);
    valarray_free(&c->constants);
    chunk_init(c);
}

void chunk_write(Chunk *c, uint8_t byte, int line)
{
    if (c->count == c->capacity) {
        int nc = GROW_CAPACITY(c->capacity);
        c->code = GROW_ARRAY(uint8_t, c->code, c->capacity, nc);
        c->lines = GROW_ARRAY(int, c->lines, c->capacity, nc);
        c->capacity = nc;
    }
    c->code[c->count] = byte;
    c->lines[c->count] = line;
    c->count++;
}

int chunk_add_constant(Chunk *c, Value v)
{
    /* reuse an identical constant where possible (strings are interned) */
    for (int i = 0; i < c->constants.count; i++) {
        Value k = c->constants.values[i];
        if (k.type == v.type && values_equal(k, v))
            return i;
    }
    return valarray_push(&c->constants, v);
}

const char *opcode_name(OpCode op)
{
    static const char *const names[OP_COUNT_] = {
        [OP_CONST] = "CONST", [OP_NIL] = "NIL", [OP_TRUE] = "TRUE", [OP_FALSE] = "FALSE",
        [OP_SMALL_INT] = "SMALL_INT", [OP_POP] = "POP", [OP_POPN] = "POPN",
        [OP_GET_LOCAL] = "GET_LOCAL", [OP_SET_LOCAL] = "SET_LOCAL", [OP_INC_LOCAL] = "INC_LOCAL",
        [OP_GET_GLOBAL] = "GET_GLOBAL", [OP_SET_GLOBAL] = "SET_GLOBAL",
        [OP_DEF_GLOBAL] = "DEF_GLOBAL", [OP_ADD] = "ADD", [OP_SUB] = "SUB", [OP_MUL] = "MUL",
        [OP_DIV] = "DIV", [OP_MOD] = "MOD", [OP_NEG] = "NEG", [OP_NOT] = "NOT", [OP_EQ] = "EQ",
        [OP_NE] = "NE", [OP_LT] = "LT", [OP_LE] = "LE", [OP_GT] = "GT", [OP_GE] = "GE",
        [OP_JUMP] = "JUMP", [OP_JUMP_IF_FALSE] = "JUMP_IF_FALSE", [OP_AND] = "AND",
        [OP_OR] = "OR", [OP_LOOP] = "LOOP", [OP_CALL] = "CALL", [OP_RETURN] = "RETURN",
        [OP_LIST] = "LIST", [OP_MAP] = "MAP", [OP_INDEX_GET] = "INDEX_GET",
        [OP_INDEX_SET] = "INDEX_SET",
    };
    if ((int)op < 0 || op >= OP_COUNT_ || !names[op])
        return "???";
    return names[op];
}

int opcode_operand_bytes(OpCode op)
{
    switch (op) {
    case OP_CONST:
    case OP_GET_GLOBAL:
    case OP_SET_GLOBAL:
    case OP_DEF_GLOBAL:
    case OP_JUMP:
    case OP_JUMP_IF_FALSE:
    case OP_AND:
    case OP_OR:
    case OP_LOOP:
    case OP_LIST:
    case OP_MAP:
    case OP_INC_LOCAL:
        return 2;
    case OP_SMALL_INT:
    case OP_POPN:
    case OP_GET_LOCAL:
    case OP_SET_LOCAL:
    case OP_CALL:
        return 1;
    default:
        return 0;
    }
}
