/* alloc_libc.c - the one place in the compiler library that calls libc's
 * allocator. Everything else allocates through a moss_allocator. */
#include <stdlib.h>

#include "base.h"

static void *libc_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
  (void)user;
  (void)old_size;
  if (new_size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, new_size);
}

moss_allocator moss_allocator_libc(void) {
  moss_allocator a = {libc_realloc, NULL};
  return a;
}
