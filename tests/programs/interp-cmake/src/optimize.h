/* optimize.h - AST-level constant folding and dead branch removal. */
#ifndef INTERP_OPTIMIZE_H
#define INTERP_OPTIMIZE_H

#include "ast.h"

typedef struct {
    int folded;
    int branches_removed;
} OptStats;

Node *optimize_tree(Node *n, Arena *arena, OptStats *st);

#endif
