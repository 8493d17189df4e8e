/* disasm.c - human-readable listing of compiled bytecode. */
#include <stdio.h>

#include "memory.h"

static int u16_at(const Chunk *c, int offset)
{
    return (int)(c->code[offset] << 8 | c->code[offset + 1]);
}

int disasm_instruction(const Chunk *c, int offset)
{
    OpCode op = (OpCode)c->code[offset];
    printf("%04d %4d %-14s", offset, c->lines[offset], opcode_name(op));
    switch (op) {
    case OP_CONST:
    case OP_GET_GLOBAL:
    case OP_SET_GLOBAL:
    case OP_DEF_GLOBAL: {
        int k = u16_at(c, offset + 1);
        StrBuf sb;
        sb_init(&sb);
        value_format(&sb, c->constants.values[k], true);
        printf(" #%d %s", k, sb.data ? sb.data : "");
        sb_free(&sb);
        break;
    }
    case OP_JUMP:
    case OP_JUMP_IF_FALSE:
    case OP_AND:
    case OP_OR:
        printf(" -> %04d", offset + 3 + u16_at(c, offset + 1));
        break;
    case OP_LOOP:
        printf(" -> %04d", offset + 3 - u16_at(c, offset + 1));
        break;
    case OP_LIST:
    case OP_MAP:
        printf(" %d", u16_at(c, offset + 1));
        break;
    case OP_INC_LOCAL:
        printf(" slot %d by %d", c->code[offset + 1], (int)(int8_t)c->code[offset + 2]);
        break;
    case OP_SMALL_INT:
        printf(" %d", (int)(int8_t)c->code[offset + 1]);
        break;
    case OP_POPN:
    case OP_GET_LOCAL:
    case OP_SET_LOCAL:
    case OP_CALL:
        printf(" %d", c->code[offset + 1]);
        break;
    default:
        break;
    }
    putchar('\n');
    return offset + 1 + opcode_operand_bytes(op);
}

void disasm_chunk(const Chunk *c, const char *name)
{
    printf("== %s (%d bytes, %d constants) ==\n", name, c->count, c->constants.count);
    for (int off = 0; off < c->count;)
        off = disasm_instruction(c, off);
    for (int i = 0; i < c->constants.count; i++) {
        Value k = c->constants.values[i];
        if (IS_FUNCTION(k)) {
            ObjFunction *f = AS_FUNCTION(k);
            disasm_chunk(&f->chunk, f->name ? f->name->chars : "?");
        }
    }
}
