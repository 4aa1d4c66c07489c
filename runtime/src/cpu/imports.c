/* imports.c - what native code from the LLVM backend may call outside
 * itself: the C library's math functions (calls LLVM keeps for exp, log,
 * tanh, erf, ... and for floor or sqrt on CPUs without the instruction) and
 * memcpy/memset/memmove (which LLVM emits for block copies). The ELF loader
 * (elf.c) resolves an object's undefined symbols against this table only;
 * an object that needs anything else is refused, by name. */
#include <math.h>
#include <string.h>

#include "imports.h"

#define F(name) {#name, (void *)&name}, {#name "f", (void *)&name##f},
static const mossrt_elf_import table[] = {
    F(exp) F(exp2) F(expm1) F(log) F(log2) F(log10) F(log1p) F(pow) F(sqrt) F(cbrt)
    F(sin) F(cos) F(tan) F(asin) F(acos) F(atan) F(atan2) F(sinh) F(cosh) F(tanh)
    F(asinh) F(acosh) F(atanh) F(erf) F(erfc) F(floor) F(ceil) F(rint) F(nearbyint)
    F(round) F(trunc) F(fabs) F(fmod) F(fmin) F(fmax) F(fma) F(ldexp) F(frexp)
    {"memcpy", (void *)&memcpy}, {"memset", (void *)&memset}, {"memmove", (void *)&memmove}};
#undef F

const mossrt_elf_import *mossrt_cpu_imports(size_t *out_count) {
  *out_count = sizeof table / sizeof table[0];
  return table;
}
