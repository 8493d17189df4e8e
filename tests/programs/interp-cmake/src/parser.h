/* parser.h - recursive-descent parser from source text to an AST. */
#ifndef INTERP_PARSER_H
#define INTERP_PARSER_H

#include "ast.h"
#include "error.h"

/* Returns the PROGRAM node; check diag->count for errors. */
Node *parse_program(const char *source, Arena *arena, Diag *diag);

#endif
