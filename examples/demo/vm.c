/* vm.c - a small stack machine with switch dispatch. */
#include <stdio.h>
#include <stdlib.h>

#include "demo.h"

enum {
    OP_PUSH,  /* push immediate operand */
    OP_LOAD,  /* push register */
    OP_STORE, /* pop into register */
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_MOD,
    OP_XOR,
    OP_SHR,
    OP_LT,
    OP_JZ,    /* pop; jump to operand if zero */
    OP_JMP,
    OP_ODD,   /* replace top with (top & 1) */
    OP_HALT
};

typedef struct {
    int op;
    int64_t arg;
} Insn;

/*
 * r0 = i, r1 = acc, r2 = limit, r3 = odd counter
 * while (i < limit) {
 *     acc = (acc * 31 + (i ^ (i >> 3))) % 1000003;
 *     if (acc & 1) r3 = r3 + 1; else r3 = r3 ^ 5;
 *     i = i + 1;
 * }
 * return acc * 7 + r3;
 */
static const Insn program[] = {
    /*  0 */ {OP_LOAD, 0}, {OP_LOAD, 2}, {OP_LT, 0}, {OP_JZ, 32},
    /*  4 */ {OP_LOAD, 1}, {OP_PUSH, 31}, {OP_MUL, 0},
    /*  7 */ {OP_LOAD, 0}, {OP_LOAD, 0}, {OP_PUSH, 3}, {OP_SHR, 0}, {OP_XOR, 0},
    /* 12 */ {OP_ADD, 0}, {OP_PUSH, 1000003}, {OP_MOD, 0}, {OP_STORE, 1},
    /* 16 */ {OP_LOAD, 1}, {OP_ODD, 0}, {OP_JZ, 23},
    /* 19 */ {OP_LOAD, 3}, {OP_PUSH, 1}, {OP_ADD, 0}, {OP_JMP, 26},
    /* 23 */ {OP_LOAD, 3}, {OP_PUSH, 5}, {OP_XOR, 0},
    /* 26 */ {OP_STORE, 3}, {OP_LOAD, 0}, {OP_PUSH, 1}, {OP_ADD, 0},
    /* 30 */ {OP_STORE, 0}, {OP_JMP, 0},
    /* 32 */ {OP_LOAD, 1}, {OP_PUSH, 7}, {OP_MUL, 0}, {OP_LOAD, 3}, {OP_ADD, 0},
    /* 37 */ {OP_HALT, 0},
};

static int64_t execute(const Insn *code, int64_t *regs)
{
    int64_t stack[32];
    int sp = 0;
    int pc = 0;
    for (;;) {
        const Insn *in = &code[pc++];
        switch (in->op) {
        case OP_PUSH: stack[sp++] = in->arg; break;
        case OP_LOAD: stack[sp++] = regs[in->arg]; break;
        case OP_STORE: regs[in->arg] = stack[--sp]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case OP_XOR: sp--; stack[sp - 1] ^= stack[sp]; break;
        case OP_SHR: sp--; stack[sp - 1] >>= stack[sp]; break;
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_JZ: if (stack[--sp] == 0) pc = (int)in->arg; break;
        case OP_JMP: pc = (int)in->arg; break;
        case OP_ODD: stack[sp - 1] &= 1; break;
        case OP_HALT: return sp > 0 ? stack[sp - 1] : 0;
        default:
            fprintf(stderr, "vm: bad opcode %d\n", in->op);
            exit(1);
        }
    }
}

int64_t vm_bench(int64_t iterations)
{
    int64_t regs[4] = {0, 1, iterations, 0};
    return execute(program, regs);
}
