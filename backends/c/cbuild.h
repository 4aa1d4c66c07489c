/* cbuild.h - the C backend's code section for bundles: the segments'
 * C (cgen.c) built by the system C compiler into one ELF shared object for
 * the device's CPU (cbuild.c). The backend table (backends/backend.c)
 * holds it as the "c" entry's emit_code. */
#ifndef MOSS_CBUILD_H
#define MOSS_CBUILD_H

#include "../backend.h"

/* moss_backend.emit_code of the C backend (backend.h has the contract).
 * The compiler is $CC (else cc) for the machine moss runs on, and
 * <arch>-linux-gnu-gcc from $PATH for another architecture; $MOSS_CFLAGS
 * replaces -O3; -march= / -mcpu= follow the device's <codegen cpu>. The C
 * goes to a temporary folder under $TMPDIR (else /tmp), removed afterwards
 * unless $MOSS_KEEP_TEMPS is set (then its path goes to stderr). Errors:
 * target (a bare-metal triple: no libmossrt there; no cross compiler), io
 * (the folder, running or the failure of the C compiler), and those of
 * moss_c_emit_segments. |timings| is unused. */
moss_status moss_c_emit_code(const moss_backend_device *d, moss_graph *g, const char *name,
                             const char *source_hash, const unsigned char *segs, int nseg,
                             const uint8_t *figures, size_t nfigures, int timings,
                             moss_backend_code *out_code);

#endif
