/* cbuild.c - the C backend's code section for a bundle (emit_code in the
 * backend table): the C of the CPU segments (cgen.c, segmented form) is
 * written to a temporary folder and built by the system C compiler, a
 * cross compiler where the device's triple names another architecture,
 * into one ELF shared object that libmossrt loads. The bundle writer
 * (compiler/driver/emit_bundle.c) gets the bytes, triple and features. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cbuild.h"
#include "cgen.h"

/* The C compiler and flags for the CPU code of device |d| of |t|; fails for
 * targets a bundle cannot serve here. */
static moss_status cpu_toolchain(moss_ctx *ctx, const moss_target *t, int d, char *cc, size_t cccap,
                                 char flags[2][128], int *nflags, char *triple, size_t tcap,
                                 char *features, size_t fcap) {
  const char *tr = moss_target_device_codegen(t, d, "triple");
  const char *cpu = moss_target_device_codegen(t, d, "cpu");
  const char *feat = moss_target_device_codegen(t, d, "features");
  struct utsname u;
  size_t n = 0, alen;
  const char *p;
  char arch[72] = "";
  *nflags = 0;
  cc[0] = 0;
  if (uname(&u) == 0) snprintf(arch, sizeof arch, "%s", u.machine);
  if (!tr) {
    snprintf(triple, tcap, "%s-unknown-linux-gnu", arch);
    tr = triple;
  } else {
    snprintf(triple, tcap, "%s", tr);
  }
  if (strstr(tr, "-none"))
    return moss_fail(ctx, MOSS_E_TARGET, NULL,
                     "target '%s' is bare metal (%s): libmossrt does not run there, so it gets no "
                     "bundle; use --emit c and link the generated C into the firmware",
                     moss_target_name(t), tr);
  alen = strcspn(tr, "-");
  if (strlen(arch) != alen || strncmp(tr, arch, alen) != 0) {
    /* Cross: <arch>-linux-gnu-gcc, as Debian's cross compilers are named. */
    char cross[128], path[4200];
    const char *envp = getenv("PATH");
    int found = 0;
    snprintf(cross, sizeof cross, "%.*s-linux-gnu-gcc", (int)alen, tr);
    while (envp && *envp && !found) {
      size_t l = strcspn(envp, ":");
      snprintf(path, sizeof path, "%.*s/%s", (int)l, envp, cross);
      found = access(path, X_OK) == 0;
      envp += l + (envp[l] == ':');
    }
    if (!found)
      return moss_fail(ctx, MOSS_E_TARGET, NULL,
                       "target '%s': the CPU code is for %s and needs the cross compiler %s "
                       "(Debian: apt-get install gcc-%.*s-linux-gnu); or use --emit c",
                       moss_target_name(t), tr, cross, (int)alen, tr);
    snprintf(cc, cccap, "%s", cross);
  }
  if (cpu && !strcmp(cpu, "native")) {
    snprintf(flags[(*nflags)++], 128, "-march=native");
  } else if (cpu && (!strncmp(tr, "x86_64", 6) || !strncmp(tr, "i686", 4))) {
    snprintf(flags[(*nflags)++], 128, "-march=%s", cpu);
  } else if (cpu) {
    snprintf(flags[(*nflags)++], 128, "-mcpu=%s", cpu);
  }
  features[0] = 0;
  for (p = feat; p && *p;) {
    size_t l;
    while (*p == ',' || *p == ' ' || *p == '+') p++;
    l = strcspn(p, ", ");
    if (l && n + l + 2 < fcap) {
      n += (size_t)snprintf(features + n, fcap - n, "%s%.*s", n ? "," : "", (int)l, p);
    }
    p += l;
  }
  return MOSS_OK;
}

moss_status moss_c_emit_code(const moss_backend_device *d, moss_graph *g, const char *name,
                             const char *source_hash, const unsigned char *segs, int nseg,
                             const uint8_t *figures, size_t nfigures, int timings,
                             moss_backend_code *out_code) {
  moss_ctx *ctx = d->ctx;
  char dir[4096], src[4200], wsrc[4200], so[4200], cc[160], flags[2][128];
  char map_dir[4200];
  const char *extra[4], *srcs[2];
  const char *tmp = getenv("TMPDIR");
  int nflags = 0, nsrc = 0;
  moss_status st;
  (void)timings; /* nothing here worth timing apart from the C compiler */
  memset(out_code, 0, sizeof *out_code);
  st = cpu_toolchain(ctx, d->target, d->device, cc, sizeof cc, flags, &nflags, out_code->triple,
                     sizeof out_code->triple, out_code->features, sizeof out_code->features);
  if (st != MOSS_OK) return st;
  snprintf(dir, sizeof dir, "%s/moss-bundle-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir))
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot make a temporary folder in %s", dir);
  st = moss_c_emit_segments(ctx, g, name, dir, source_hash, moss_target_name(d->target), segs,
                            nseg, figures, nfigures);
  if (st == MOSS_OK) {
    /* The compiler runs in the temporary folder on names relative to it:
     * what it writes into the code of a source's name (ASan's globals name
     * their module, debug information its file) is then the same from any
     * folder and any temporary name. Debug information also names the
     * working folder, which maps to '.' (gcc 8, clang 10; gcc keeps the
     * option itself out of the command line it records). */
    snprintf(src, sizeof src, "%s.c", name);
    snprintf(wsrc, sizeof wsrc, "%s/%s_weights.c", dir, name);
    snprintf(so, sizeof so, "%s/%s.so", dir, name);
    srcs[nsrc++] = src;
    if (access(wsrc, R_OK) == 0) {
      snprintf(wsrc, sizeof wsrc, "%s_weights.c", name);
      srcs[nsrc++] = wsrc;
    }
    extra[0] = flags[0];
    extra[1] = flags[1];
    snprintf(map_dir, sizeof map_dir, "-ffile-prefix-map=%s=.", dir);
    extra[nflags++] = map_dir;
    moss_progress(ctx, "C compiler", 0, 0);
    st = moss_cc_shared(ctx, cc[0] ? cc : NULL, extra, nflags, dir, srcs, nsrc, so);
  }
  if (st == MOSS_OK) {
    st = moss_file_read(ctx, so, &out_code->bytes, &out_code->size);
    if (st == MOSS_OK) out_code->alloc = out_code->size + 1; /* moss_file_read adds a NUL */
  }
  if (!getenv("MOSS_KEEP_TEMPS")) moss_remove_dir(dir);
  else fprintf(stderr, "moss: kept the bundle's C in %s\n", dir);
  if (st != MOSS_OK) memset(out_code, 0, sizeof *out_code);
  return st;
}
