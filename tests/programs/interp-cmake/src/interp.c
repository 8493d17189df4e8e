/* interp.c - ties the pipeline together: parse, optimise, compile, run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "compiler.h"
#include "interp.h"
#include "memory.h"
#include "optimize.h"
#include "parser.h"
#include "vm.h"

struct Interp {
    VM *vm;
    bool disassemble;
    InterpStats stats;
};

Interp *interp_new(bool stress_gc)
{
    Interp *it = malloc(sizeof *it);
    if (!it) {
        fprintf(stderr, "interp: out of memory\n");
        exit(70);
    }
    memset(it, 0, sizeof *it);
    heap_init();
    heap.stress = stress_gc;
    it->vm = vm_new();
    builtins_register_all(it->vm);
    return it;
}

void interp_set_int(Interp *it, const char *name, int64_t value)
{
    vm_set_global(it->vm, name, INT_VAL(value));
}

void interp_set_disassemble(Interp *it, bool on)
{
    it->disassemble = on;
}

int interp_run(Interp *it, const char *name, const char *source)
{
    Arena arena;
    Diag diag;
    arena_init(&arena, 32 * 1024);
    diag_init(&diag, name);

    Node *program = parse_program(source, &arena, &diag);
    if (diag.count) {
        arena_free(&arena);
        return 1;
    }
    OptStats opt = {0, 0};
    program = optimize_tree(program, &arena, &opt);
    it->stats.ast_nodes += ast_count_nodes(program);
    it->stats.folded += opt.folded;

    CompileStats cs;
    ObjFunction *script = compile_program(program, &diag, &cs);
    arena_free(&arena);
    if (!script)
        return 1;
    it->stats.functions += cs.functions;
    it->stats.code_bytes += cs.code_bytes;
    it->stats.peepholes += cs.peepholes;
    if (it->disassemble)
        disasm_chunk(&script->chunk, name);

    RunResult r = vm_execute(it->vm, script);
    fflush(stdout);
    it->stats.calls = it->vm->calls;
    return r == RUN_OK ? 0 : 2;
}

void interp_stats(const Interp *it, InterpStats *out)
{
    *out = it->stats;
    out->collections = heap.collections;
    out->objects_freed = heap.objects_freed;
}

void interp_free(Interp *it)
{
    vm_free(it->vm);
    heap_free_all();
    free(it);
}
