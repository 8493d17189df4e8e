/* vm.c - the interpreter loop: switch dispatch over a byte stream, with the
 * instruction pointer and stack pointer cached in locals. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "vm.h"

VM *vm_new(void)
{
    VM *vm = malloc(sizeof *vm);
    if (!vm) {
        fprintf(stderr, "interp: out of memory\n");
        exit(70);
    }
    size_t slots = (size_t)STACK_SLOTS + STACK_HEADROOM;
    vm->stack = malloc(sizeof(Value) * slots);
    if (!vm->stack) {
        fprintf(stderr, "interp: out of memory\n");
        exit(70);
    }
    vm->sp = vm->stack;
    vm->stack_end = vm->stack + slots;
    vm->frame_count = 0;
    table_init(&vm->globals);
    vm->extra_root_count = 0;
    vm->failed = false;
    vm->error[0] = '\0';
    vm->calls = 0;
    return vm;
}

void vm_free(VM *vm)
{
    table_free(&vm->globals);
    free(vm->stack);
    free(vm);
}

void vm_error(VM *vm, const char *fmt, ...)
{
    if (vm->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vm->error, sizeof vm->error, fmt, ap);
    va_end(ap);
    vm->failed = true;
}

void vm_set_global(VM *vm, const char *name, Value v)
{
    ObjString *s = str_copy(name, (int)strlen(name));
    table_set(&vm->globals, OBJ_VAL(s), v);
}

void vm_define_native(VM *vm, const char *name, NativeFn fn, int arity)
{
    vm_set_global(vm, name, OBJ_VAL(native_new(fn, name, arity)));
}

static void report_error(VM *vm)
{
    fprintf(stderr, "runtime error: %s\n", vm->error);
    for (int i = vm->frame_count - 1; i >= 0; i--) {
        const CallFrame *f = &vm->frames[i];
        int shown = vm->frame_count - 1 - i;
        if (shown == 8 && i > 2) {
            fprintf(stderr, "  ... %d more frames ...\n", i - 2);
            i = 2;
            f = &vm->frames[i];
        }
        const Chunk *c = &f->fn->chunk;
        long at = (long)(f->ip - c->code) - 1;
        int line = at >= 0 && at < c->count ? c->lines[at] : 0;
        fprintf(stderr, "  at line %d in %s\n", line, f->fn->name ? f->fn->name->chars : "script");
    }
}

/* Sets up a call of the value below the arguments; sp is vm->sp. */
static bool call_value(VM *vm, Value callee, int argc)
{
    if (IS_FUNCTION(callee)) {
        ObjFunction *fn = AS_FUNCTION(callee);
        if (argc != fn->arity) {
            vm_error(vm, "%s expects %d argument%s, got %d", fn->name ? fn->name->chars : "script",
                     fn->arity, fn->arity == 1 ? "" : "s", argc);
            return false;
        }
        if (vm->frame_count == MAX_FRAMES || vm->sp + STACK_HEADROOM > vm->stack_end) {
            vm_error(vm, "stack overflow");
            return false;
        }
        CallFrame *f = &vm->frames[vm->frame_count++];
        f->fn = fn;
        f->ip = fn->chunk.code;
        f->slots = vm->sp - argc - 1;
        vm->calls++;
        return true;
    }
    if (IS_NATIVE(callee)) {
        ObjNative *nat = AS_NATIVE(callee);
        if (nat->arity >= 0 && argc != nat->arity) {
            vm_error(vm, "%s expects %d argument%s, got %d", nat->name, nat->arity,
                     nat->arity == 1 ? "" : "s", argc);
            return false;
        }
        Value result = NIL_VAL;
        if (!nat->fn(vm, argc, vm->sp - argc, &result)) {
            if (!vm->failed)
                vm_error(vm, "%s failed", nat->name);
            return false;
        }
        vm->sp -= argc + 1;
        *vm->sp++ = result;
        return true;
    }
    vm_error(vm, "cannot call a value of type %s", value_type_name(callee));
    return false;
}

static RunResult run(VM *vm)
{
    CallFrame *frame = &vm->frames[vm->frame_count - 1];
    uint8_t *ip = frame->ip;
    Value *sp = vm->sp;
    Value *consts = frame->fn->chunk.constants.values;

#define READ_BYTE() (*ip++)
#define READ_U16() (ip += 2, (uint16_t)((ip[-2] << 8) | ip[-1]))
#define PUSH(v) (*sp++ = (v))
#define POP() (*--sp)
#define PEEK(d) (sp[-1 - (d)])
#define SAVE() (frame->ip = ip, vm->sp = sp)
#define LOAD()                                      \
    do {                                            \
        frame = &vm->frames[vm->frame_count - 1];   \
        ip = frame->ip;                             \
        sp = vm->sp;                                \
        consts = frame->fn->chunk.constants.values; \
    } while (0)
#define FAIL()             \
    do {                   \
        SAVE();            \
        goto runtime_fail; \
    } while (0)

    for (;;) {
        uint8_t op = READ_BYTE();
        switch ((OpCode)op) {
        case OP_CONST:
            PUSH(consts[READ_U16()]);
            break;
        case OP_NIL:
            PUSH(NIL_VAL);
            break;
        case OP_TRUE:
            PUSH(BOOL_VAL(true));
            break;
        case OP_FALSE:
            PUSH(BOOL_VAL(false));
            break;
        case OP_SMALL_INT:
            PUSH(INT_VAL((int8_t)READ_BYTE()));
            break;
        case OP_POP:
            sp--;
            break;
        case OP_POPN:
            sp -= READ_BYTE();
            break;
        case OP_GET_LOCAL:
            PUSH(frame->slots[READ_BYTE()]);
            break;
        case OP_SET_LOCAL:
            frame->slots[READ_BYTE()] = PEEK(0);
            break;
        case OP_INC_LOCAL: {
            Value *slot = &frame->slots[READ_BYTE()];
            int delta = (int8_t)READ_BYTE();
            if (IS_INT(*slot)) {
                slot->as.integer = (int64_t)((uint64_t)slot->as.integer + (uint64_t)(int64_t)delta);
            } else if (IS_FLOAT(*slot)) {
                slot->as.number += delta;
            } else {
                vm_error(vm, "cannot add a number to a value of type %s", value_type_name(*slot));
                FAIL();
            }
            break;
        }
        case OP_GET_GLOBAL: {
            Value name = consts[READ_U16()];
            Value v;
            if (!table_get(&vm->globals, name, &v)) {
                vm_error(vm, "undefined variable '%s'", AS_CSTRING(name));
                FAIL();
            }
            PUSH(v);
            break;
        }
        case OP_SET_GLOBAL: {
            Value name = consts[READ_U16()];
            if (table_set(&vm->globals, name, PEEK(0))) {
                table_delete(&vm->globals, name);
                vm_error(vm, "assignment to undeclared variable '%s'", AS_CSTRING(name));
                FAIL();
            }
            break;
        }
        case OP_DEF_GLOBAL: {
            Value name = consts[READ_U16()];
            table_set(&vm->globals, name, PEEK(0));
            sp--;
            break;
        }
        case OP_ADD:
        case OP_SUB:
        case OP_MUL: {
            Value b = PEEK(0), a = PEEK(1);
            if (IS_INT(a) && IS_INT(b)) {
                uint64_t x = (uint64_t)AS_INT(a), y = (uint64_t)AS_INT(b);
                uint64_t r = op == OP_ADD ? x + y : op == OP_SUB ? x - y : x * y;
                sp[-2] = INT_VAL((int64_t)r);
            } else if (IS_FLOAT(a) && IS_FLOAT(b)) {
                double x = AS_FLOAT(a), y = AS_FLOAT(b);
                sp[-2] = FLOAT_VAL(op == OP_ADD ? x + y : op == OP_SUB ? x - y : x * y);
            } else {
                SAVE();
                if (!vm_arith(vm, (OpCode)op, a, b, &sp[-2]))
                    goto runtime_fail;
            }
            sp--;
            break;
        }
        case OP_DIV:
        case OP_MOD: {
            Value b = PEEK(0), a = PEEK(1);
            if (IS_INT(a) && IS_INT(b)) {
                int64_t r;
                if (!vm_int_divmod(vm, (OpCode)op, AS_INT(a), AS_INT(b), &r))
                    FAIL();
                sp[-2] = INT_VAL(r);
            } else {
                SAVE();
                if (!vm_arith(vm, (OpCode)op, a, b, &sp[-2]))
                    goto runtime_fail;
            }
            sp--;
            break;
        }
        case OP_NEG: {
            Value a = PEEK(0);
            if (IS_INT(a)) {
                sp[-1] = INT_VAL((int64_t)(0u - (uint64_t)AS_INT(a)));
            } else if (!vm_negate(vm, a, &sp[-1])) {
                FAIL();
            }
            break;
        }
        case OP_NOT:
            sp[-1] = BOOL_VAL(!value_truthy(sp[-1]));
            break;
        case OP_EQ:
        case OP_NE: {
            Value b = POP();
            bool eq = values_equal(PEEK(0), b);
            sp[-1] = BOOL_VAL(op == OP_EQ ? eq : !eq);
            break;
        }
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE: {
            Value b = PEEK(0), a = PEEK(1);
            bool r;
            if (IS_INT(a) && IS_INT(b)) {
                int64_t x = AS_INT(a), y = AS_INT(b);
                switch ((OpCode)op) {
                case OP_LT: r = x < y; break;
                case OP_LE: r = x <= y; break;
                case OP_GT: r = x > y; break;
                default: r = x >= y; break;
                }
            } else {
                bool swap = op == OP_GT || op == OP_GE;
                bool or_equal = op == OP_LE || op == OP_GE;
                SAVE();
                if (!vm_less(vm, swap ? b : a, swap ? a : b, or_equal, &r))
                    goto runtime_fail;
            }
            sp[-2] = BOOL_VAL(r);
            sp--;
            break;
        }
        case OP_JUMP: {
            uint16_t off = READ_U16();
            ip += off;
            break;
        }
        case OP_JUMP_IF_FALSE: {
            uint16_t off = READ_U16();
            if (!value_truthy(POP()))
                ip += off;
            break;
        }
        case OP_AND: {
            uint16_t off = READ_U16();
            if (!value_truthy(PEEK(0)))
                ip += off;
            else
                sp--;
            break;
        }
        case OP_OR: {
            uint16_t off = READ_U16();
            if (value_truthy(PEEK(0)))
                ip += off;
            else
                sp--;
            break;
        }
        case OP_LOOP: {
            uint16_t off = READ_U16();
            ip -= off;
            if (gc_wanted()) {
                SAVE();
                gc_collect(vm);
            }
            break;
        }
        case OP_CALL: {
            int argc = READ_BYTE();
            SAVE();
            if (gc_wanted())
                gc_collect(vm);
            if (!call_value(vm, PEEK(argc), argc))
                goto runtime_fail;
            LOAD();
            break;
        }
        case OP_RETURN: {
            Value result = POP();
            Value *base = frame->slots;
            vm->frame_count--;
            if (vm->frame_count == 0) {
                vm->sp = base;
                return RUN_OK;
            }
            sp = base;
            PUSH(result);
            vm->sp = sp;
            LOAD();
            break;
        }
        case OP_LIST: {
            int count = READ_U16();
            ObjList *l = list_new(count);
            for (int i = 0; i < count; i++)
                l->items[i] = sp[i - count];
            l->count = count;
            sp -= count;
            PUSH(OBJ_VAL(l));
            break;
        }
        case OP_MAP: {
            int pairs = READ_U16();
            ObjMap *m = map_new();
            Value *kv = sp - 2 * pairs;
            for (int i = 0; i < pairs; i++) {
                if (!value_hashable(kv[2 * i])) {
                    vm_error(vm, "a %s cannot be used as a map key", value_type_name(kv[2 * i]));
                    FAIL();
                }
                table_set(&m->table, kv[2 * i], kv[2 * i + 1]);
            }
            sp = kv;
            PUSH(OBJ_VAL(m));
            break;
        }
        case OP_INDEX_GET: {
            Value idx = PEEK(0), obj = PEEK(1);
            if (IS_LIST(obj) && IS_INT(idx) && AS_INT(idx) >= 0 && AS_INT(idx) < AS_LIST(obj)->count) {
                sp[-2] = AS_LIST(obj)->items[AS_INT(idx)];
            } else {
                SAVE();
                if (!vm_index_get(vm, obj, idx, &sp[-2]))
                    goto runtime_fail;
            }
            sp--;
            break;
        }
        case OP_INDEX_SET: {
            Value v = PEEK(0), idx = PEEK(1), obj = PEEK(2);
            if (IS_LIST(obj) && IS_INT(idx) && AS_INT(idx) >= 0 && AS_INT(idx) < AS_LIST(obj)->count) {
                AS_LIST(obj)->items[AS_INT(idx)] = v;
            } else {
                SAVE();
                if (!vm_index_set(vm, obj, idx, v))
                    goto runtime_fail;
            }
            sp -= 2;
            sp[-1] = v;
            break;
        }
        case OP_COUNT_:
        default:
            vm_error(vm, "corrupt bytecode: opcode %d", op);
            FAIL();
        }
    }

runtime_fail:
    report_error(vm);
    vm->frame_count = 0;
    vm->sp = vm->stack;
    return RUN_RUNTIME_ERROR;

#undef READ_BYTE
#undef READ_U16
#undef PUSH
#undef POP
#undef PEEK
#undef SAVE
#undef LOAD
#undef FAIL
}

RunResult vm_execute(VM *vm, ObjFunction *script)
{
    vm->failed = false;
    vm->sp = vm->stack;
    *vm->sp++ = OBJ_VAL(script);
    if (!call_value(vm, OBJ_VAL(script), 0)) {
        report_error(vm);
        return RUN_RUNTIME_ERROR;
    }
    return run(vm);
}
