/* lexer.c - hand-written scanner producing tokens on demand. */
#include <string.h>

#include "lexer.h"

void lexer_init(Lexer *lx, const char *source)
{
    lx->start = source;
    lx->cur = source;
    lx->line = 1;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static Token make(const Lexer *lx, TokKind k)
{
    Token t;
    t.kind = k;
    t.start = lx->start;
    t.length = (int)(lx->cur - lx->start);
    t.line = lx->line;
    return t;
}

static Token error_token(const Lexer *lx, const char *msg)
{
    Token t;
    t.kind = T_ERROR;
    t.start = msg;
    t.length = (int)strlen(msg);
    t.line = lx->line;
    return t;
}

static void skip_space(Lexer *lx)
{
    for (;;) {
        char c = *lx->cur;
        switch (c) {
        case ' ':
        case '\t':
        case '\r':
            lx->cur++;
            break;
        case '\n':
            lx->line++;
            lx->cur++;
            break;
        case '/':
            if (lx->cur[1] == '/') {
                while (*lx->cur && *lx->cur != '\n')
                    lx->cur++;
                break;
            }
            return;
        case '#':
            while (*lx->cur && *lx->cur != '\n')
                lx->cur++;
            break;
        default:
            return;
        }
    }
}

static TokKind keyword(const char *s, int n)
{
#define KW(word, kind) \
    if (n == (int)sizeof(word) - 1 && memcmp(s, word, sizeof(word) - 1) == 0) \
        return kind
    switch (s[0]) {
    case 'b': KW("break", T_BREAK); break;
    case 'c': KW("continue", T_CONTINUE); break;
    case 'e': KW("else", T_ELSE); break;
    case 'f':
        KW("fn", T_FN);
        KW("false", T_FALSE);
        break;
    case 'i': KW("if", T_IF); break;
    case 'l': KW("let", T_LET); break;
    case 'n': KW("nil", T_NIL); break;
    case 'r': KW("return", T_RETURN); break;
    case 't': KW("true", T_TRUE); break;
    case 'w': KW("while", T_WHILE); break;
    default: break;
    }
#undef KW
    return T_IDENT;
}

static Token number(Lexer *lx)
{
    bool is_float = false;
    while (is_digit(*lx->cur))
        lx->cur++;
    if (*lx->cur == '.' && is_digit(lx->cur[1])) {
        is_float = true;
        lx->cur++;
        while (is_digit(*lx->cur))
            lx->cur++;
    }
    if (*lx->cur == 'e' || *lx->cur == 'E') {
        const char *p = lx->cur + 1;
        if (*p == '+' || *p == '-')
            p++;
        if (is_digit(*p)) {
            is_float = true;
            lx->cur = p;
            while (is_digit(*lx->cur))
                lx->cur++;
        }
    }
    return make(lx, is_float ? T_FLOAT : T_INT);
}

static Token string(Lexer *lx)
{
    while (*lx->cur && *lx->cur != '"') {
        if (*lx->cur == '\n')
            lx->line++;
        if (*lx->cur == '\\' && lx->cur[1])
            lx->cur++;
        lx->cur++;
    }
    if (!*lx->cur)
        return error_token(lx, "unterminated string");
    lx->cur++;
    return make(lx, T_STRING);
}

Token lexer_next(Lexer *lx)
{
    skip_space(lx);
    lx->start = lx->cur;
    char c = *lx->cur;
    if (c == '\0')
        return make(lx, T_EOF);
    lx->cur++;
    if (is_alpha(c)) {
        while (is_alpha(*lx->cur) || is_digit(*lx->cur))
            lx->cur++;
        return make(lx, keyword(lx->start, (int)(lx->cur - lx->start)));
    }
    if (is_digit(c))
        return number(lx);
    switch (c) {
    case '(': return make(lx, T_LPAREN);
    case ')': return make(lx, T_RPAREN);
    case '{': return make(lx, T_LBRACE);
    case '}': return make(lx, T_RBRACE);
    case '[': return make(lx, T_LBRACKET);
    case ']': return make(lx, T_RBRACKET);
    case ',': return make(lx, T_COMMA);
    case ';': return make(lx, T_SEMI);
    case ':': return make(lx, T_COLON);
    case '+': return make(lx, T_PLUS);
    case '-': return make(lx, T_MINUS);
    case '*': return make(lx, T_STAR);
    case '/': return make(lx, T_SLASH);
    case '%': return make(lx, T_PERCENT);
    case '!':
        if (*lx->cur == '=') { lx->cur++; return make(lx, T_BANG_EQ); }
        return make(lx, T_BANG);
    case '=':
        if (*lx->cur == '=') { lx->cur++; return make(lx, T_EQ_EQ); }
        return make(lx, T_ASSIGN);
    case '<':
        if (*lx->cur == '=') { lx->cur++; return make(lx, T_LE); }
        return make(lx, T_LT);
    case '>':
        if (*lx->cur == '=') { lx->cur++; return make(lx, T_GE); }
        return make(lx, T_GT);
    case '&':
        if (*lx->cur == '&') { lx->cur++; return make(lx, T_AND_AND); }
        break;
    case '|':
        if (*lx->cur == '|') { lx->cur++; return make(lx, T_OR_OR); }
        break;
    case '"':
        return string(lx);
    default:
        break;
    }
    return error_token(lx, "unexpected character");
}

const char *token_kind_name(TokKind k)
{
    switch (k) {
    case T_LPAREN: return "'('";
    case T_RPAREN: return "')'";
    case T_LBRACE: return "'{'";
    case T_RBRACE: return "'}'";
    case T_LBRACKET: return "'['";
    case T_RBRACKET: return "']'";
    case T_COMMA: return "','";
    case T_SEMI: return "';'";
    case T_COLON: return "':'";
    case T_ASSIGN: return "'='";
    case T_IDENT: return "identifier";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    case T_STRING: return "string";
    case T_EOF: return "end of input";
    default: return "operator or keyword";
    }
}
