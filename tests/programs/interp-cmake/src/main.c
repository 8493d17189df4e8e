/* main.c - runs the embedded benchmark scripts (or a script file).
 *
 *   interp [N] [--stress-gc] [--disasm] [--stats] [--only NAME] [--file PATH]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "scripts.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int run_one(const char *name, const char *source, long n, bool stress, bool disasm, bool stats)
{
    Interp *it = interp_new(stress);
    interp_set_int(it, "N", n);
    interp_set_disassemble(it, disasm);
    int rc = interp_run(it, name, source);
    if (stats) {
        InterpStats st;
        interp_stats(it, &st);
        fprintf(stderr, "[%s] nodes=%d folded=%d functions=%d code=%d peepholes=%d calls=%llu gcs=%zu freed=%zu\n",
                name, st.ast_nodes, st.folded, st.functions, st.code_bytes, st.peepholes,
                (unsigned long long)st.calls, st.collections, st.objects_freed);
    }
    interp_free(it);
    return rc;
}

int main(int argc, char **argv)
{
    long n = 25;
    bool stress = false, disasm = false, stats = false;
    const char *only = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stress-gc") == 0) {
            stress = true;
        } else if (strcmp(argv[i], "--disasm") == 0) {
            disasm = true;
        } else if (strcmp(argv[i], "--stats") == 0) {
            stats = true;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else {
            char *end;
            n = strtol(argv[i], &end, 10);
            if (*end != '\0' || n < 1 || n > 100000) {
                fprintf(stderr, "usage: %s [N] [--stress-gc] [--disasm] [--stats] [--only NAME] [--file PATH]\n",
                        argv[0]);
                return 64;
            }
        }
    }

    if (file) {
        char *src = slurp(file);
        if (!src) {
            fprintf(stderr, "interp: cannot read %s\n", file);
            return 66;
        }
        int rc = run_one(file, src, n, stress, disasm, stats);
        free(src);
        return rc == 0 ? 0 : 65 + rc;
    }

    int failures = 0, ran = 0;
    for (int i = 0; i < bench_script_count; i++) {
        const Script *s = &bench_scripts[i];
        if (only && strcmp(only, s->name) != 0)
            continue;
        ran++;
        if (run_one(s->name, s->source, n, stress, disasm, stats) != 0) {
            fprintf(stderr, "script %s failed\n", s->name);
            failures++;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "interp: no script named %s\n", only ? only : "?");
        return 64;
    }
    printf("scripts run=%d failed=%d\n", ran, failures);
    return failures ? 1 : 0;
}
