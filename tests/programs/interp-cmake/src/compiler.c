/* compiler.c - walks the AST and emits stack-machine bytecode.
 *
 * Stack discipline: every expression leaves exactly one value; statements
 * leave the stack as they found it, except that a local declaration leaves
 * its initial value behind, which then *is* the local's slot. */
#include <string.h>

#include "compiler.h"
#include "memory.h"
#include "symtab.h"

#define MAX_BREAKS 64

typedef struct Loop {
    int start;
    int depth;
    int breaks[MAX_BREAKS];
    int nbreaks;
    struct Loop *outer;
} Loop;

typedef struct {
    ObjFunction *fn;
    Scope scope;
    Loop *loop;
    bool is_script;
    Diag *diag;
    CompileStats *stats;
} FnState;

static void compile_stmt(FnState *fs, const Node *n);
static void compile_expr(FnState *fs, const Node *n);

static Chunk *chunk_of(FnState *fs)
{
    return &fs->fn->chunk;
}

static void emit(FnState *fs, uint8_t byte, int line)
{
    chunk_write(chunk_of(fs), byte, line);
}

static void emit_op(FnState *fs, OpCode op, int line)
{
    emit(fs, (uint8_t)op, line);
}

static void emit_u16(FnState *fs, int v, int line)
{
    emit(fs, (uint8_t)((v >> 8) & 0xff), line);
    emit(fs, (uint8_t)(v & 0xff), line);
}

static int make_constant(FnState *fs, Value v, int line)
{
    int k = chunk_add_constant(chunk_of(fs), v);
    if (k > 0xffff) {
        diag_error(fs->diag, line, "too many constants in one function");
        return 0;
    }
    return k;
}

static int name_constant(FnState *fs, const char *text, int len, int line)
{
    return make_constant(fs, OBJ_VAL(str_copy(text, len)), line);
}

static void emit_constant(FnState *fs, Value v, int line)
{
    emit_op(fs, OP_CONST, line);
    emit_u16(fs, make_constant(fs, v, line), line);
}

static int emit_jump(FnState *fs, OpCode op, int line)
{
    emit_op(fs, op, line);
    emit_u16(fs, 0xffff, line);
    return chunk_of(fs)->count - 2;
}

static void patch_jump(FnState *fs, int at, int line)
{
    int dist = chunk_of(fs)->count - at - 2;
    if (dist > 0xffff) {
        diag_error(fs->diag, line, "jump too long");
        return;
    }
    chunk_of(fs)->code[at] = (uint8_t)(dist >> 8);
    chunk_of(fs)->code[at + 1] = (uint8_t)(dist & 0xff);
}

static void emit_loop(FnState *fs, int start, int line)
{
    emit_op(fs, OP_LOOP, line);
    int dist = chunk_of(fs)->count - start + 2;
    if (dist > 0xffff)
        diag_error(fs->diag, line, "loop body too long");
    emit_u16(fs, dist, line);
}

static void emit_pops(FnState *fs, int n, int line)
{
    while (n > 0) {
        int k = n > 255 ? 255 : n;
        if (k == 1) {
            emit_op(fs, OP_POP, line);
        } else {
            emit_op(fs, OP_POPN, line);
            emit(fs, (uint8_t)k, line);
        }
        n -= k;
    }
}

static OpCode binary_opcode(TokKind op)
{
    switch (op) {
    case T_PLUS: return OP_ADD;
    case T_MINUS: return OP_SUB;
    case T_STAR: return OP_MUL;
    case T_SLASH: return OP_DIV;
    case T_PERCENT: return OP_MOD;
    case T_EQ_EQ: return OP_EQ;
    case T_BANG_EQ: return OP_NE;
    case T_LT: return OP_LT;
    case T_LE: return OP_LE;
    case T_GT: return OP_GT;
    case T_GE: return OP_GE;
    default: return OP_COUNT_;
    }
}

static void compile_name_get(FnState *fs, const char *name, int len, int line)
{
    int slot = scope_resolve(&fs->scope, name, len);
    if (slot >= 0) {
        emit_op(fs, OP_GET_LOCAL, line);
        emit(fs, (uint8_t)slot, line);
    } else {
        emit_op(fs, OP_GET_GLOBAL, line);
        emit_u16(fs, name_constant(fs, name, len, line), line);
    }
}

static void compile_expr(FnState *fs, const Node *n)
{
    int line = n->line;
    switch (n->kind) {
    case N_INT:
        if (n->ival >= -128 && n->ival <= 127) {
            emit_op(fs, OP_SMALL_INT, line);
            emit(fs, (uint8_t)(int8_t)n->ival, line);
        } else {
            emit_constant(fs, INT_VAL(n->ival), line);
        }
        break;
    case N_FLOAT:
        emit_constant(fs, FLOAT_VAL(n->fval), line);
        break;
    case N_STRING:
        emit_constant(fs, OBJ_VAL(str_copy(n->text, n->text_len)), line);
        break;
    case N_TRUE: emit_op(fs, OP_TRUE, line); break;
    case N_FALSE: emit_op(fs, OP_FALSE, line); break;
    case N_NIL: emit_op(fs, OP_NIL, line); break;
    case N_NAME:
        compile_name_get(fs, n->text, n->text_len, line);
        break;
    case N_UNARY:
        compile_expr(fs, n->a);
        emit_op(fs, n->op == T_MINUS ? OP_NEG : OP_NOT, line);
        break;
    case N_BINARY: {
        OpCode op = binary_opcode(n->op);
        compile_expr(fs, n->a);
        compile_expr(fs, n->b);
        if (op == OP_COUNT_)
            diag_error(fs->diag, line, "unknown binary operator");
        else
            emit_op(fs, op, line);
        break;
    }
    case N_AND:
    case N_OR: {
        compile_expr(fs, n->a);
        int j = emit_jump(fs, n->kind == N_AND ? OP_AND : OP_OR, line);
        compile_expr(fs, n->b);
        patch_jump(fs, j, line);
        break;
    }
    case N_CALL:
        compile_expr(fs, n->a);
        for (int i = 0; i < n->list.count; i++)
            compile_expr(fs, n->list.items[i]);
        emit_op(fs, OP_CALL, line);
        emit(fs, (uint8_t)n->list.count, line);
        break;
    case N_INDEX:
        compile_expr(fs, n->a);
        compile_expr(fs, n->b);
        emit_op(fs, OP_INDEX_GET, line);
        break;
    case N_LIST:
        if (n->list.count > 1024) {
            diag_error(fs->diag, line, "list literal too long");
            break;
        }
        for (int i = 0; i < n->list.count; i++)
            compile_expr(fs, n->list.items[i]);
        emit_op(fs, OP_LIST, line);
        emit_u16(fs, n->list.count, line);
        break;
    case N_MAP:
        if (n->list.count > 1024) {
            diag_error(fs->diag, line, "map literal too long");
            break;
        }
        for (int i = 0; i < n->list.count; i++)
            compile_expr(fs, n->list.items[i]);
        emit_op(fs, OP_MAP, line);
        emit_u16(fs, n->list.count / 2, line);
        break;
    case N_ASSIGN: {
        compile_expr(fs, n->a);
        int slot = scope_resolve(&fs->scope, n->text, n->text_len);
        if (slot >= 0) {
            emit_op(fs, OP_SET_LOCAL, line);
            emit(fs, (uint8_t)slot, line);
        } else {
            emit_op(fs, OP_SET_GLOBAL, line);
            emit_u16(fs, name_constant(fs, n->text, n->text_len, line), line);
        }
        break;
    }
    case N_INDEX_ASSIGN:
        compile_expr(fs, n->a);
        compile_expr(fs, n->b);
        compile_expr(fs, n->c);
        emit_op(fs, OP_INDEX_SET, line);
        break;
    default:
        diag_error(fs->diag, line, "expected an expression, found %s", ast_kind_name(n->kind));
        emit_op(fs, OP_NIL, line);
        break;
    }
}

/* x = x + k  or  x = x - k  on a local, with small k: one instruction */
static bool try_increment(FnState *fs, const Node *assign)
{
    const Node *v = assign->a;
    if (v->kind != N_BINARY || (v->op != T_PLUS && v->op != T_MINUS))
        return false;
    if (v->a->kind != N_NAME || v->b->kind != N_INT)
        return false;
    if (v->a->text_len != assign->text_len || memcmp(v->a->text, assign->text, (size_t)assign->text_len) != 0)
        return false;
    int64_t delta = v->op == T_PLUS ? v->b->ival : -v->b->ival;
    if (delta < -128 || delta > 127)
        return false;
    int slot = scope_resolve(&fs->scope, assign->text, assign->text_len);
    if (slot < 0)
        return false;
    emit_op(fs, OP_INC_LOCAL, assign->line);
    emit(fs, (uint8_t)slot, assign->line);
    emit(fs, (uint8_t)(int8_t)delta, assign->line);
    fs->stats->peepholes++;
    return true;
}

static void compile_block_body(FnState *fs, const Node *block)
{
    for (int i = 0; i < block->list.count; i++)
        compile_stmt(fs, block->list.items[i]);
}

static void compile_block(FnState *fs, const Node *block)
{
    scope_enter(&fs->scope);
    compile_block_body(fs, block);
    emit_pops(fs, scope_leave(&fs->scope), block->line);
}

static void compile_function(FnState *outer, const Node *n)
{
    FnState fs;
    memset(&fs, 0, sizeof fs);
    fs.fn = function_new(str_copy(n->text, n->text_len));
    fs.fn->arity = n->list.count;
    fs.diag = outer->diag;
    fs.stats = outer->stats;
    scope_init(&fs.scope);
    scope_enter(&fs.scope);
    for (int i = 0; i < n->list.count; i++) {
        const Node *p = n->list.items[i];
        int slot = scope_declare(&fs.scope, p->text, p->text_len);
        if (slot == SCOPE_DUPLICATE)
            diag_error(fs.diag, p->line, "duplicate parameter '%s'", p->text);
        else if (slot == SCOPE_FULL)
            diag_error(fs.diag, p->line, "too many parameters");
    }
    compile_block_body(&fs, n->a);
    emit_op(&fs, OP_NIL, n->line);
    emit_op(&fs, OP_RETURN, n->line);
    fs.stats->functions++;
    fs.stats->code_bytes += fs.fn->chunk.count;
    fs.stats->constants += fs.fn->chunk.constants.count;

    emit_constant(outer, OBJ_VAL(fs.fn), n->line);
    emit_op(outer, OP_DEF_GLOBAL, n->line);
    emit_u16(outer, name_constant(outer, n->text, n->text_len, n->line), n->line);
}

static void compile_while(FnState *fs, const Node *n)
{
    Loop loop;
    loop.start = chunk_of(fs)->count;
    loop.depth = fs->scope.depth;
    loop.nbreaks = 0;
    loop.outer = fs->loop;
    int exit_jump = -1;
    bool forever = ast_is_constant(n->a); /* a false constant was removed earlier */
    if (!forever) {
        compile_expr(fs, n->a);
        exit_jump = emit_jump(fs, OP_JUMP_IF_FALSE, n->line);
    }
    fs->loop = &loop;
    compile_block(fs, n->b);
    fs->loop = loop.outer;
    emit_loop(fs, loop.start, n->line);
    if (exit_jump >= 0)
        patch_jump(fs, exit_jump, n->line);
    for (int i = 0; i < loop.nbreaks; i++)
        patch_jump(fs, loop.breaks[i], n->line);
}

static void compile_stmt(FnState *fs, const Node *n)
{
    int line = n->line;
    switch (n->kind) {
    case N_LET:
        compile_expr(fs, n->a);
        if (fs->is_script && fs->scope.depth == 0) {
            emit_op(fs, OP_DEF_GLOBAL, line);
            emit_u16(fs, name_constant(fs, n->text, n->text_len, line), line);
        } else {
            int slot = scope_declare(&fs->scope, n->text, n->text_len);
            if (slot == SCOPE_DUPLICATE)
                diag_error(fs->diag, line, "'%s' is already declared in this scope", n->text);
            else if (slot == SCOPE_FULL)
                diag_error(fs->diag, line, "too many local variables");
        }
        break;
    case N_EXPR:
        if (n->a->kind == N_ASSIGN && try_increment(fs, n->a))
            break;
        compile_expr(fs, n->a);
        emit_op(fs, OP_POP, line);
        break;
    case N_IF: {
        compile_expr(fs, n->a);
        int skip_then = emit_jump(fs, OP_JUMP_IF_FALSE, line);
        compile_block(fs, n->b);
        if (n->c) {
            int skip_else = emit_jump(fs, OP_JUMP, line);
            patch_jump(fs, skip_then, line);
            if (n->c->kind == N_IF)
                compile_stmt(fs, n->c);
            else
                compile_block(fs, n->c);
            patch_jump(fs, skip_else, line);
        } else {
            patch_jump(fs, skip_then, line);
        }
        break;
    }
    case N_WHILE:
        compile_while(fs, n);
        break;
    case N_BREAK:
    case N_CONTINUE: {
        Loop *loop = fs->loop;
        if (!loop) {
            diag_error(fs->diag, line, "'%s' outside of a loop", n->kind == N_BREAK ? "break" : "continue");
            break;
        }
        emit_pops(fs, scope_count_deeper(&fs->scope, loop->depth), line);
        if (n->kind == N_CONTINUE) {
            emit_loop(fs, loop->start, line);
        } else if (loop->nbreaks == MAX_BREAKS) {
            diag_error(fs->diag, line, "too many 'break' statements in one loop");
        } else {
            loop->breaks[loop->nbreaks++] = emit_jump(fs, OP_JUMP, line);
        }
        break;
    }
    case N_RETURN:
        if (n->a)
            compile_expr(fs, n->a);
        else
            emit_op(fs, OP_NIL, line);
        emit_op(fs, OP_RETURN, line);
        break;
    case N_BLOCK:
        compile_block(fs, n);
        break;
    case N_FN:
        if (!fs->is_script || fs->scope.depth != 0)
            diag_error(fs->diag, line, "functions may only be declared at top level");
        else
            compile_function(fs, n);
        break;
    default:
        diag_error(fs->diag, line, "expected a statement, found %s", ast_kind_name(n->kind));
        break;
    }
}

ObjFunction *compile_program(const Node *program, Diag *diag, CompileStats *stats)
{
    FnState fs;
    memset(&fs, 0, sizeof fs);
    memset(stats, 0, sizeof *stats);
    fs.fn = function_new(NULL);
    fs.is_script = true;
    fs.diag = diag;
    fs.stats = stats;
    scope_init(&fs.scope);
    for (int i = 0; i < program->list.count; i++)
        compile_stmt(&fs, program->list.items[i]);
    emit_op(&fs, OP_NIL, program->line);
    emit_op(&fs, OP_RETURN, program->line);
    stats->functions++;
    stats->code_bytes += fs.fn->chunk.count;
    stats->constants += fs.fn->chunk.constants.count;
    return diag->count ? NULL : fs.fn;
}
