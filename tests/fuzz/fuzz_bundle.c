/* fuzz_bundle.c - libFuzzer target for the bundle loader (runtime/src/core/bundle.c):
 * any bytes given to mossrt_open_memory_ex() must give MOSSRT_OK or an error with
 * a message, never a crash, a leak or undefined behaviour. The bundle is only
 * verified (MOSSRT_OPEN_VERIFY_ONLY): a fuzzer that learns to fix the checksums
 * would otherwise hand corrupt ELF files to the system's dynamic loader, whose
 * robustness is not ours to test. The checksums would stop almost every
 * mutation at the first check, so the custom mutator below recomputes them
 * after three mutations in four (the fourth keeps the raw damage, which the
 * checksums must catch): mutations reach the checks behind them, and what
 * the fuzzer keeps in its corpus are bundles with valid checksums. Build and
 * run: tests/fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moss_bundle.h"
#include "mossrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

/* Recomputes the section checksums and then the header checksum, where the
 * header and table can be located. */
static void fix_crcs(uint8_t *b, size_t n) {
  moss_bundle_header h;
  uint64_t tab, count, i;
  if (n < sizeof h) return;
  memcpy(&h, b, sizeof h);
  tab = h.section_table_offset;
  count = h.section_count;
  if (tab > n || count > (n - tab) / sizeof(moss_bundle_section)) return;
  for (i = 0; i < count; i++) {
    moss_bundle_section s;
    memcpy(&s, b + tab + i * sizeof s, sizeof s);
    if (s.offset <= n && s.size <= n - s.offset) {
      s.crc = moss_bundle_crc32(0, b + s.offset, (size_t)s.size);
      memcpy(b + tab + i * sizeof s, &s, sizeof s);
    }
  }
  h.header_crc = 0;
  h.header_crc = moss_bundle_crc32(moss_bundle_crc32(0, &h, sizeof h), b + tab,
                                   (size_t)count * sizeof(moss_bundle_section));
  memcpy(b, &h, sizeof h);
}

static void one(const uint8_t *data, size_t size) {
  mossrt_options o;
  mossrt_bundle *b = NULL;
  mossrt_error err;
  mossrt_status st;
  memset(&o, 0, sizeof o);
  o.flags = MOSSRT_OPEN_VERIFY_ONLY;
  st = mossrt_open_memory_ex(data, size, &o, &b, &err);
  if (st == MOSSRT_OK) {
    uint32_t i;
    mossrt_tensor_info ti;
    size_t len;
    const char *rep = mossrt_report_json(b, &len);
    if (rep && strlen(rep) != len) __builtin_trap();
    for (i = 0; i < mossrt_input_count(b); i++)
      if (mossrt_input_info(b, i, &ti) != MOSSRT_OK || strlen(ti.name) > size) __builtin_trap();
    for (i = 0; i < mossrt_output_count(b); i++)
      if (mossrt_output_info(b, i, &ti) != MOSSRT_OK || ti.rank > 8 ||
          mossrt_output_bound_axis(b, i) >= ti.rank)
        __builtin_trap();
    (void)mossrt_target(b);
    mossrt_close(b);
  } else if (b != NULL || err.status != st || err.text[0] == 0) {
    __builtin_trap();
  }
}

/* libFuzzer's own mutations, then the checksums repaired (but one time in four). */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  if (seed % 4 != 0) fix_crcs(data, size);
  return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size);
  return 0;
}
