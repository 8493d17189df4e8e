/* chunk.h - bytecode containers and the instruction set. */
#ifndef INTERP_CHUNK_H
#define INTERP_CHUNK_H

#include "value.h"

typedef enum {
    OP_CONST,        /* u16 constant index */
    OP_NIL,
    OP_TRUE,
    OP_FALSE,
    OP_SMALL_INT,    /* s8 immediate */
    OP_POP,
    OP_POPN,         /* u8 count */
    OP_GET_LOCAL,    /* u8 slot */
    OP_SET_LOCAL,    /* u8 slot */
    OP_INC_LOCAL,    /* u8 slot, s8 delta: local += delta (ints) */
    OP_GET_GLOBAL,   /* u16 name constant */
    OP_SET_GLOBAL,   /* u16 name constant */
    OP_DEF_GLOBAL,   /* u16 name constant */
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_NEG,
    OP_NOT,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_JUMP,         /* u16 forward offset */
    OP_JUMP_IF_FALSE,/* u16, pops the condition */
    OP_AND,          /* u16: if top is falsy jump (keep), else pop */
    OP_OR,           /* u16: if top is truthy jump (keep), else pop */
    OP_LOOP,         /* u16 backward offset */
    OP_CALL,         /* u8 argument count */
    OP_RETURN,
    OP_LIST,         /* u16 element count */
    OP_MAP,          /* u16 pair count */
    OP_INDEX_GET,
    OP_INDEX_SET,
    OP_COUNT_
} OpCode;

typedef struct {
    int count;
    int capacity;
    uint8_t *code;
    int *lines;
    ValueArray constants;
} Chunk;

void chunk_init(Chunk *c);
void chunk_free(Chunk *c);
void chunk_write(Chunk *c, uint8_t byte, int line);
int chunk_add_constant(Chunk *c, Value v);
const char *opcode_name(OpCode op);
int opcode_operand_bytes(OpCode op);

/* disasm.c */
void disasm_chunk(const Chunk *c, const char *name);
int disasm_instruction(const Chunk *c, int offset);

#endif
