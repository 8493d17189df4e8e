/* optimize.c - folds operators applied to literals and drops branches whose
 * condition is known at compile time.  The folding follows the VM's
 * arithmetic exactly (wrapping integers, no folding of division by zero). */
#include <string.h>

#include "optimize.h"

static bool literal_truthy(const Node *n)
{
    return !(n->kind == N_NIL || n->kind == N_FALSE);
}

static bool is_number(const Node *n)
{
    return n->kind == N_INT || n->kind == N_FLOAT;
}

static double num_of(const Node *n)
{
    return n->kind == N_INT ? (double)n->ival : n->fval;
}

static Node *make_bool(Arena *arena, bool v, int line)
{
    return ast_new(arena, v ? N_TRUE : N_FALSE, line);
}

static Node *make_int(Arena *arena, int64_t v, int line)
{
    Node *n = ast_new(arena, N_INT, line);
    n->ival = v;
    return n;
}

static Node *make_float(Arena *arena, double v, int line)
{
    Node *n = ast_new(arena, N_FLOAT, line);
    n->fval = v;
    return n;
}

static Node *fold_int(Arena *arena, TokKind op, int64_t x, int64_t y, int line)
{
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (op) {
    case T_PLUS: return make_int(arena, (int64_t)(ux + uy), line);
    case T_MINUS: return make_int(arena, (int64_t)(ux - uy), line);
    case T_STAR: return make_int(arena, (int64_t)(ux * uy), line);
    case T_SLASH:
        if (y == 0 || (x == INT64_MIN && y == -1))
            return NULL;
        return make_int(arena, x / y, line);
    case T_PERCENT:
        if (y == 0 || (x == INT64_MIN && y == -1))
            return NULL;
        return make_int(arena, x % y, line);
    case T_LT: return make_bool(arena, x < y, line);
    case T_LE: return make_bool(arena, x <= y, line);
    case T_GT: return make_bool(arena, x > y, line);
    case T_GE: return make_bool(arena, x >= y, line);
    case T_EQ_EQ: return make_bool(arena, x == y, line);
    case T_BANG_EQ: return make_bool(arena, x != y, line);
    default: return NULL;
    }
}

static Node *fold_float(Arena *arena, TokKind op, double x, double y, int line)
{
    switch (op) {
    case T_PLUS: return make_float(arena, x + y, line);
    case T_MINUS: return make_float(arena, x - y, line);
    case T_STAR: return make_float(arena, x * y, line);
    case T_SLASH:
        if (y == 0.0)
            return NULL;
        return make_float(arena, x / y, line);
    case T_LT: return make_bool(arena, x < y, line);
    case T_LE: return make_bool(arena, x <= y, line);
    case T_GT: return make_bool(arena, x > y, line);
    case T_GE: return make_bool(arena, x >= y, line);
    case T_EQ_EQ: return make_bool(arena, x == y, line);
    case T_BANG_EQ: return make_bool(arena, x != y, line);
    default: return NULL;
    }
}

static Node *fold_binary(Node *n, Arena *arena)
{
    Node *l = n->a, *r = n->b;
    if (l->kind == N_INT && r->kind == N_INT)
        return fold_int(arena, n->op, l->ival, r->ival, n->line);
    if (is_number(l) && is_number(r))
        return fold_float(arena, n->op, num_of(l), num_of(r), n->line);
    if (l->kind == N_STRING && r->kind == N_STRING && n->op == T_PLUS) {
        Node *s = ast_new(arena, N_STRING, n->line);
        char *buf = arena_alloc(arena, (size_t)l->text_len + (size_t)r->text_len + 1);
        memcpy(buf, l->text, (size_t)l->text_len);
        memcpy(buf + l->text_len, r->text, (size_t)r->text_len);
        buf[l->text_len + r->text_len] = '\0';
        s->text = buf;
        s->text_len = l->text_len + r->text_len;
        return s;
    }
    return NULL;
}

static Node *fold_unary(Node *n, Arena *arena)
{
    Node *x = n->a;
    if (n->op == T_BANG && ast_is_constant(x))
        return make_bool(arena, !literal_truthy(x), n->line);
    if (n->op == T_MINUS && x->kind == N_INT)
        return make_int(arena, (int64_t)(0u - (uint64_t)x->ival), n->line);
    if (n->op == T_MINUS && x->kind == N_FLOAT)
        return make_float(arena, -x->fval, n->line);
    return NULL;
}

static Node *empty_block(Arena *arena, int line)
{
    return ast_new(arena, N_BLOCK, line);
}

Node *optimize_tree(Node *n, Arena *arena, OptStats *st)
{
    if (!n)
        return NULL;
    n->a = optimize_tree(n->a, arena, st);
    n->b = optimize_tree(n->b, arena, st);
    n->c = optimize_tree(n->c, arena, st);
    for (int i = 0; i < n->list.count; i++)
        n->list.items[i] = optimize_tree(n->list.items[i], arena, st);

    Node *repl = NULL;
    switch (n->kind) {
    case N_BINARY:
        repl = fold_binary(n, arena);
        break;
    case N_UNARY:
        repl = fold_unary(n, arena);
        break;
    case N_AND:
        if (ast_is_constant(n->a))
            repl = literal_truthy(n->a) ? n->b : n->a;
        break;
    case N_OR:
        if (ast_is_constant(n->a))
            repl = literal_truthy(n->a) ? n->a : n->b;
        break;
    case N_IF:
        if (ast_is_constant(n->a)) {
            repl = literal_truthy(n->a) ? n->b : (n->c ? n->c : empty_block(arena, n->line));
            st->branches_removed++;
            return repl;
        }
        break;
    case N_WHILE:
        if (ast_is_constant(n->a) && !literal_truthy(n->a)) {
            st->branches_removed++;
            return empty_block(arena, n->line);
        }
        break;
    default:
        break;
    }
    if (repl) {
        st->folded++;
        return repl;
    }
    return n;
}
