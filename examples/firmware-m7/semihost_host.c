/* semihost_host.c - semihost.h on a hosted C library, so check.py can build main.c for
 * the host against the very C that moss generated for the Cortex-M7 and compare the
 * two programs' output line for line. Not part of the firmware. */
#include <stdio.h>
#include <stdlib.h>

#include "semihost.h"

void sh_puts(const char *s) { fputs(s, stdout); }

void sh_exit(int status) { exit(status); }
