/* ast.h - syntax tree produced by the parser. */
#ifndef INTERP_AST_H
#define INTERP_AST_H

#include "arena.h"
#include "lexer.h"

typedef enum {
    /* expressions */
    N_INT, N_FLOAT, N_STRING, N_TRUE, N_FALSE, N_NIL, N_NAME,
    N_UNARY, N_BINARY, N_AND, N_OR, N_CALL, N_INDEX, N_LIST, N_MAP,
    N_ASSIGN, N_INDEX_ASSIGN,
    /* statements */
    N_LET, N_EXPR, N_IF, N_WHILE, N_BREAK, N_CONTINUE, N_RETURN, N_BLOCK, N_FN,
    N_PROGRAM
} NodeKind;

typedef struct Node Node;

typedef struct {
    Node **items;
    int count;
} NodeList;

/*
 * Child usage by kind:
 *   UNARY a            BINARY a op b        AND/OR a b
 *   CALL a(list)       INDEX a[b]           LIST list     MAP list = k,v,k,v...
 *   ASSIGN text = a    INDEX_ASSIGN a[b] = c
 *   LET text = a       EXPR a               IF a then b else c (c may be NULL)
 *   WHILE a body b     RETURN a (may be NULL)
 *   BLOCK list         FN text(list of NAME) body a   PROGRAM list
 */
struct Node {
    NodeKind kind;
    TokKind op;
    int line;
    Node *a, *b, *c;
    NodeList list;
    int64_t ival;
    double fval;
    const char *text;
    int text_len;
};

/* growable temporary vector used while parsing lists */
typedef struct {
    Node **items;
    int count;
    int capacity;
} NodeVec;

Node *ast_new(Arena *arena, NodeKind kind, int line);
void nodevec_push(NodeVec *v, Node *n);
NodeList nodevec_finish(Arena *arena, NodeVec *v);
bool ast_is_constant(const Node *n);
const char *ast_kind_name(NodeKind k);
int ast_count_nodes(const Node *n);

#endif
