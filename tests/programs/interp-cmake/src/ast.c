/* ast.c - node construction and small tree utilities. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

Node *ast_new(Arena *arena, NodeKind kind, int line)
{
    Node *n = arena_alloc(arena, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

void nodevec_push(NodeVec *v, Node *n)
{
    if (v->count == v->capacity) {
        int nc = v->capacity < 8 ? 8 : v->capacity * 2;
        Node **ni = realloc(v->items, sizeof(Node *) * (size_t)nc);
        if (!ni) {
            fprintf(stderr, "interp: out of memory\n");
            exit(70);
        }
        v->items = ni;
        v->capacity = nc;
    }
    v->items[v->count++] = n;
}

NodeList nodevec_finish(Arena *arena, NodeVec *v)
{
    NodeList l;
    l.count = v->count;
    l.items = NULL;
    if (v->count) {
        l.items = arena_alloc(arena, sizeof(Node *) * (size_t)v->count);
        memcpy(l.items, v->items, sizeof(Node *) * (size_t)v->count);
    }
    free(v->items);
    v->items = NULL;
    v->count = v->capacity = 0;
    return l;
}

bool ast_is_constant(const Node *n)
{
    switch (n->kind) {
    case N_INT:
    case N_FLOAT:
    case N_STRING:
    case N_TRUE:
    case N_FALSE:
    case N_NIL:
        return true;
    default:
        return false;
    }
}

const char *ast_kind_name(NodeKind k)
{
    static const char *const names[] = {
        "int", "float", "string", "true", "false", "nil", "name",
        "unary", "binary", "and", "or", "call", "index", "list", "map",
        "assign", "index-assign",
        "let", "expr", "if", "while", "break", "continue", "return", "block", "fn",
        "program",
    };
    if ((size_t)k < sizeof names / sizeof names[0])
        return names[k];
    return "?";
}

int ast_count_nodes(const Node *n)
{
    if (!n)
        return 0;
    int total = 1 + ast_count_nodes(n->a) + ast_count_nodes(n->b) + ast_count_nodes(n->c);
    for (int i = 0; i < n->list.count; i++)
        total += ast_count_nodes(n->list.items[i]);
    return total;
}
