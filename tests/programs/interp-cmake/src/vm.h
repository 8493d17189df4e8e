/* vm.h - the bytecode virtual machine. */
#ifndef INTERP_VM_H
#define INTERP_VM_H

#include "object.h"
#include "table.h"

typedef struct {
    ObjFunction *fn;
    uint8_t *ip;
    Value *slots; /* slots[0] is the callee, then arguments and locals */
} CallFrame;

#define STACK_HEADROOM 2048
#define MAX_EXTRA_ROOTS 8

struct VM {
    CallFrame frames[MAX_FRAMES];
    int frame_count;
    Value *stack;
    Value *sp;
    Value *stack_end;
    Table globals;
    Value extra_roots[MAX_EXTRA_ROOTS];
    int extra_root_count;
    bool failed;
    char error[256];
    uint64_t calls;
};

typedef enum {
    RUN_OK,
    RUN_COMPILE_ERROR,
    RUN_RUNTIME_ERROR
} RunResult;

VM *vm_new(void);
void vm_free(VM *vm);
RunResult vm_execute(VM *vm, ObjFunction *script);
void vm_define_native(VM *vm, const char *name, NativeFn fn, int arity);
void vm_set_global(VM *vm, const char *name, Value v);

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
void vm_error(VM *vm, const char *fmt, ...);

/* vm_ops.c: the slower, type-generic parts of instruction semantics */
bool vm_arith(VM *vm, OpCode op, Value a, Value b, Value *out);
bool vm_less(VM *vm, Value a, Value b, bool or_equal, bool *out);
bool vm_index_get(VM *vm, Value container, Value index, Value *out);
bool vm_index_set(VM *vm, Value container, Value index, Value v);
bool vm_negate(VM *vm, Value a, Value *out);
bool vm_int_divmod(VM *vm, OpCode op, int64_t a, int64_t b, int64_t *out);

#endif
