/* imports.h - the symbols native code may import (imports.c). */
#ifndef MOSSRT_IMPORTS_H
#define MOSSRT_IMPORTS_H

#include "elf.h"

/* The table, with its length in |*out_count|. Static, thread-safe. */
const mossrt_elf_import *mossrt_cpu_imports(size_t *out_count);

#endif
