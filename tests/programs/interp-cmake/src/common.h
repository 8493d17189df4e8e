/* common.h - basic includes and limits shared by every module. */
#ifndef INTERP_COMMON_H
#define INTERP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_LOCALS 256
#define MAX_FRAMES 256
#define STACK_SLOTS (MAX_FRAMES * MAX_LOCALS)
#define MAX_PARAMS 32

#endif
