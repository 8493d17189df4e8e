/* parser.c - precedence-climbing recursive-descent parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

typedef struct {
    Lexer lx;
    Token cur;
    Token prev;
    Arena *arena;
    Diag *diag;
    bool panic;
    int depth;
} Parser;

#define MAX_NESTING 200

static void error_at(Parser *p, const Token *t, const char *msg)
{
    if (p->panic)
        return;
    p->panic = true;
    if (t->kind == T_EOF)
        diag_error(p->diag, t->line, "%s at end of input", msg);
    else if (t->kind == T_ERROR)
        diag_error(p->diag, t->line, "%.*s", t->length, t->start);
    else
        diag_error(p->diag, t->line, "%s at '%.*s'", msg, t->length, t->start);
}

static void advance(Parser *p)
{
    p->prev = p->cur;
    for (;;) {
        p->cur = lexer_next(&p->lx);
        if (p->cur.kind != T_ERROR)
            break;
        error_at(p, &p->cur, "");
    }
}

static bool check(const Parser *p, TokKind k)
{
    return p->cur.kind == k;
}

static bool match(Parser *p, TokKind k)
{
    if (!check(p, k))
        return false;
    advance(p);
    return true;
}

static void expect(Parser *p, TokKind k, const char *what)
{
    if (check(p, k)) {
        advance(p);
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "expected %s %s", token_kind_name(k), what);
    error_at(p, &p->cur, msg);
}

static void synchronize(Parser *p)
{
    p->panic = false;
    while (!check(p, T_EOF)) {
        if (p->prev.kind == T_SEMI)
            return;
        switch (p->cur.kind) {
        case T_FN:
        case T_LET:
        case T_IF:
        case T_WHILE:
        case T_RETURN:
            return;
        default:
            advance(p);
        }
    }
}

static Node *expression(Parser *p);
static Node *declaration(Parser *p);
static Node *block(Parser *p);

static Node *node(Parser *p, NodeKind k)
{
    return ast_new(p->arena, k, p->prev.line);
}

static Node *int_literal(Parser *p)
{
    Node *n = node(p, N_INT);
    int64_t v = 0;
    for (int i = 0; i < p->prev.length; i++) {
        int d = p->prev.start[i] - '0';
        if (v > (INT64_MAX - d) / 10) {
            error_at(p, &p->prev, "integer literal too large");
            break;
        }
        v = v * 10 + d;
    }
    n->ival = v;
    return n;
}

static Node *float_literal(Parser *p)
{
    Node *n = node(p, N_FLOAT);
    char buf[64];
    int len = p->prev.length < 63 ? p->prev.length : 63;
    memcpy(buf, p->prev.start, (size_t)len);
    buf[len] = '\0';
    n->fval = strtod(buf, NULL);
    return n;
}

static Node *string_literal(Parser *p)
{
    Node *n = node(p, N_STRING);
    const char *s = p->prev.start + 1;
    int len = p->prev.length - 2;
    char *out = arena_alloc(p->arena, (size_t)len + 1);
    int o = 0;
    for (int i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < len) {
            char e = s[++i];
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '0': c = '\0'; break;
            default: c = e; break; /* \" \\ and anything else */
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    n->text = out;
    n->text_len = o;
    return n;
}

static Node *list_literal(Parser *p)
{
    Node *n = node(p, N_LIST);
    NodeVec v = {NULL, 0, 0};
    if (!check(p, T_RBRACKET)) {
        do {
            if (check(p, T_RBRACKET))
                break; /* trailing comma */
            nodevec_push(&v, expression(p));
        } while (match(p, T_COMMA));
    }
    expect(p, T_RBRACKET, "after list elements");
    n->list = nodevec_finish(p->arena, &v);
    return n;
}

static Node *map_literal(Parser *p)
{
    Node *n = node(p, N_MAP);
    NodeVec v = {NULL, 0, 0};
    if (!check(p, T_RBRACE)) {
        do {
            if (check(p, T_RBRACE))
                break;
            nodevec_push(&v, expression(p));
            expect(p, T_COLON, "between map key and value");
            nodevec_push(&v, expression(p));
        } while (match(p, T_COMMA));
    }
    expect(p, T_RBRACE, "after map entries");
    n->list = nodevec_finish(p->arena, &v);
    return n;
}

static Node *primary(Parser *p)
{
    if (match(p, T_INT))
        return int_literal(p);
    if (match(p, T_FLOAT))
        return float_literal(p);
    if (match(p, T_STRING))
        return string_literal(p);
    if (match(p, T_TRUE))
        return node(p, N_TRUE);
    if (match(p, T_FALSE))
        return node(p, N_FALSE);
    if (match(p, T_NIL))
        return node(p, N_NIL);
    if (match(p, T_IDENT)) {
        Node *n = node(p, N_NAME);
        n->text = arena_strndup(p->arena, p->prev.start, (size_t)p->prev.length);
        n->text_len = p->prev.length;
        return n;
    }
    if (match(p, T_LPAREN)) {
        Node *e = expression(p);
        expect(p, T_RPAREN, "after expression");
        return e;
    }
    if (match(p, T_LBRACKET))
        return list_literal(p);
    if (match(p, T_LBRACE))
        return map_literal(p);
    error_at(p, &p->cur, "expected expression");
    advance(p);
    return node(p, N_NIL);
}

static Node *postfix(Parser *p)
{
    Node *e = primary(p);
    for (;;) {
        if (match(p, T_LPAREN)) {
            Node *call = node(p, N_CALL);
            NodeVec args = {NULL, 0, 0};
            if (!check(p, T_RPAREN)) {
                do {
                    if (args.count >= 255)
                        error_at(p, &p->cur, "too many arguments");
                    nodevec_push(&args, expression(p));
                } while (match(p, T_COMMA));
            }
            expect(p, T_RPAREN, "after arguments");
            call->a = e;
            call->list = nodevec_finish(p->arena, &args);
            e = call;
        } else if (match(p, T_LBRACKET)) {
            Node *ix = node(p, N_INDEX);
            ix->a = e;
            ix->b = expression(p);
            expect(p, T_RBRACKET, "after index");
            e = ix;
        } else {
            return e;
        }
    }
}

static Node *unary(Parser *p)
{
    if (match(p, T_BANG) || match(p, T_MINUS)) {
        Node *n = node(p, N_UNARY);
        n->op = p->prev.kind;
        if (++p->depth > MAX_NESTING)
            error_at(p, &p->prev, "expression nested too deeply");
        n->a = unary(p);
        p->depth--;
        return n;
    }
    return postfix(p);
}

/* binding power of binary operators; 0 = not a binary operator */
static int precedence(TokKind k)
{
    switch (k) {
    case T_OR_OR: return 1;
    case T_AND_AND: return 2;
    case T_EQ_EQ:
    case T_BANG_EQ: return 3;
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE: return 4;
    case T_PLUS:
    case T_MINUS: return 5;
    case T_STAR:
    case T_SLASH:
    case T_PERCENT: return 6;
    default: return 0;
    }
}

static Node *binary(Parser *p, int min_prec)
{
    Node *left = unary(p);
    for (;;) {
        int prec = precedence(p->cur.kind);
        if (prec == 0 || prec < min_prec)
            return left;
        advance(p);
        TokKind op = p->prev.kind;
        int line = p->prev.line;
        if (++p->depth > MAX_NESTING)
            error_at(p, &p->prev, "expression nested too deeply");
        Node *right = binary(p, prec + 1); /* all binary operators are left-associative */
        p->depth--;
        NodeKind kind = op == T_AND_AND ? N_AND : op == T_OR_OR ? N_OR : N_BINARY;
        Node *n = ast_new(p->arena, kind, line);
        n->op = op;
        n->a = left;
        n->b = right;
        left = n;
    }
}

static Node *assignment(Parser *p)
{
    Node *target = binary(p, 1);
    if (!match(p, T_ASSIGN))
        return target;
    int line = p->prev.line;
    Node *value = assignment(p);
    if (target->kind == N_NAME) {
        Node *n = ast_new(p->arena, N_ASSIGN, line);
        n->text = target->text;
        n->text_len = target->text_len;
        n->a = value;
        return n;
    }
    if (target->kind == N_INDEX) {
        Node *n = ast_new(p->arena, N_INDEX_ASSIGN, line);
        n->a = target->a;
        n->b = target->b;
        n->c = value;
        return n;
    }
    error_at(p, &p->prev, "invalid assignment target");
    return value;
}

static Node *expression(Parser *p)
{
    return assignment(p);
}

static Node *if_statement(Parser *p)
{
    Node *n = node(p, N_IF);
    expect(p, T_LPAREN, "after 'if'");
    n->a = expression(p);
    expect(p, T_RPAREN, "after condition");
    n->b = block(p);
    if (match(p, T_ELSE)) {
        if (match(p, T_IF))
            n->c = if_statement(p);
        else
            n->c = block(p);
    }
    return n;
}

static Node *statement(Parser *p)
{
    if (match(p, T_LET)) {
        Node *n = node(p, N_LET);
        expect(p, T_IDENT, "after 'let'");
        n->text = arena_strndup(p->arena, p->prev.start, (size_t)p->prev.length);
        n->text_len = p->prev.length;
        if (match(p, T_ASSIGN))
            n->a = expression(p);
        else
            n->a = node(p, N_NIL);
        expect(p, T_SEMI, "after variable declaration");
        return n;
    }
    if (match(p, T_IF))
        return if_statement(p);
    if (match(p, T_WHILE)) {
        Node *n = node(p, N_WHILE);
        expect(p, T_LPAREN, "after 'while'");
        n->a = expression(p);
        expect(p, T_RPAREN, "after condition");
        n->b = block(p);
        return n;
    }
    if (match(p, T_RETURN)) {
        Node *n = node(p, N_RETURN);
        if (!check(p, T_SEMI))
            n->a = expression(p);
        expect(p, T_SEMI, "after return value");
        return n;
    }
    if (match(p, T_BREAK)) {
        Node *n = node(p, N_BREAK);
        expect(p, T_SEMI, "after 'break'");
        return n;
    }
    if (match(p, T_CONTINUE)) {
        Node *n = node(p, N_CONTINUE);
        expect(p, T_SEMI, "after 'continue'");
        return n;
    }
    if (check(p, T_LBRACE))
        return block(p);
    Node *n = node(p, N_EXPR);
    n->a = expression(p);
    n->line = n->a->line;
    expect(p, T_SEMI, "after expression");
    return n;
}

static Node *block(Parser *p)
{
    expect(p, T_LBRACE, "to start a block");
    Node *n = node(p, N_BLOCK);
    NodeVec v = {NULL, 0, 0};
    if (++p->depth > MAX_NESTING)
        error_at(p, &p->prev, "blocks nested too deeply");
    while (!check(p, T_RBRACE) && !check(p, T_EOF))
        nodevec_push(&v, declaration(p));
    p->depth--;
    expect(p, T_RBRACE, "to close the block");
    n->list = nodevec_finish(p->arena, &v);
    return n;
}

static Node *function(Parser *p)
{
    Node *n = node(p, N_FN);
    expect(p, T_IDENT, "as function name");
    n->text = arena_strndup(p->arena, p->prev.start, (size_t)p->prev.length);
    n->text_len = p->prev.length;
    expect(p, T_LPAREN, "after function name");
    NodeVec params = {NULL, 0, 0};
    if (!check(p, T_RPAREN)) {
        do {
            expect(p, T_IDENT, "as parameter name");
            Node *param = node(p, N_NAME);
            param->text = arena_strndup(p->arena, p->prev.start, (size_t)p->prev.length);
            param->text_len = p->prev.length;
            if (params.count >= MAX_PARAMS)
                error_at(p, &p->prev, "too many parameters");
            nodevec_push(&params, param);
        } while (match(p, T_COMMA));
    }
    expect(p, T_RPAREN, "after parameters");
    n->list = nodevec_finish(p->arena, &params);
    n->a = block(p);
    return n;
}

static Node *declaration(Parser *p)
{
    Node *n = match(p, T_FN) ? function(p) : statement(p);
    if (p->panic)
        synchronize(p);
    return n;
}

Node *parse_program(const char *source, Arena *arena, Diag *diag)
{
    Parser p;
    memset(&p, 0, sizeof p);
    lexer_init(&p.lx, source);
    p.arena = arena;
    p.diag = diag;
    advance(&p);
    Node *prog = ast_new(arena, N_PROGRAM, 1);
    NodeVec v = {NULL, 0, 0};
    while (!check(&p, T_EOF))
        nodevec_push(&v, declaration(&p));
    prog->list = nodevec_finish(arena, &v);
    return prog;
}
