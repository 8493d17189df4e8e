/* lexer.h - tokens of the scripting language. */
#ifndef INTERP_LEXER_H
#define INTERP_LEXER_H

#include "common.h"

typedef enum {
    T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACKET, T_RBRACKET,
    T_COMMA, T_SEMI, T_COLON,
    T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PERCENT,
    T_BANG, T_BANG_EQ, T_ASSIGN, T_EQ_EQ, T_LT, T_LE, T_GT, T_GE,
    T_AND_AND, T_OR_OR,
    T_IDENT, T_INT, T_FLOAT, T_STRING,
    T_LET, T_FN, T_IF, T_ELSE, T_WHILE, T_RETURN, T_BREAK, T_CONTINUE,
    T_TRUE, T_FALSE, T_NIL,
    T_EOF, T_ERROR
} TokKind;

typedef struct {
    TokKind kind;
    const char *start;
    int length;
    int line;
} Token;

typedef struct {
    const char *start;
    const char *cur;
    int line;
} Lexer;

void lexer_init(Lexer *lx, const char *source);
Token lexer_next(Lexer *lx);
const char *token_kind_name(TokKind k);

#endif
