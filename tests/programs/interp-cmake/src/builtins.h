/* builtins.h - native functions available to scripts. */
#ifndef INTERP_BUILTINS_H
#define INTERP_BUILTINS_H

#include "vm.h"

void builtins_register_all(VM *vm);

void builtins_register_core(VM *vm);
void builtins_register_math(VM *vm);
void builtins_register_str(VM *vm);
void builtins_register_coll(VM *vm);

/* argument checking helpers shared by the builtin modules */
bool arg_int(VM *vm, const char *fn, Value *args, int i, int64_t *out);
bool arg_number(VM *vm, const char *fn, Value *args, int i, double *out);
bool arg_string(VM *vm, const char *fn, Value *args, int i, ObjString **out);
bool arg_list(VM *vm, const char *fn, Value *args, int i, ObjList **out);
bool arg_map(VM *vm, const char *fn, Value *args, int i, ObjMap **out);

#endif
