/* compiler.h - bytecode generation from the (optimised) AST. */
#ifndef INTERP_COMPILER_H
#define INTERP_COMPILER_H

#include "ast.h"
#include "error.h"
#include "object.h"

typedef struct {
    int functions;
    int code_bytes;
    int constants;
    int peepholes;
} CompileStats;

/* Returns the top-level script function, or NULL if errors were reported. */
ObjFunction *compile_program(const Node *program, Diag *diag, CompileStats *stats);

#endif
