/* cachekey.c - what a compile depends on, for build tools: `moss compile
 * --cache-key` prints a SHA-256 over everything that decides the output,
 * and --depfile writes a Make rule naming every file the compile read. Both
 * come from one list, ctx->files, which the loaders fill as they open files
 * (moss_file_read, moss_file_note_input); moss_compile calls
 * moss_compile_inputs_done once the inputs are all read.
 *
 * The key is the SHA-256 of a text: moss's version and the build IDs of the
 * code running (the moss binary and every library it loaded, so a rebuilt
 * moss gives new keys even at the same version), the options that change
 * the output (never -o, -q, -v, nor any path), the resolved target's
 * description (for "host", what this machine said about itself), the
 * environment variables the compiler reads (MOSS_WINOGRAD, MOSS_SPARSE and,
 * where the system C compiler builds code, CC, MOSS_CFLAGS and that
 * compiler's --version), and the SHA-256 of each file read, in the order
 * read. No path, time or user goes in, so two build trees that hold the
 * same files get the same key. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../target/target.h"
#include "driver.h"

/* dl_iterate_phdr's callback: the GNU build ID of each loaded object but the
 * vDSO (the kernel's, which differs between machines running the same moss). */
static int add_build_id(struct dl_phdr_info *info, size_t size, void *user) {
  moss_buf *b = user;
  int i;
  (void)size;
  if (info->dlpi_name && strstr(info->dlpi_name, "vdso")) return 0;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    const unsigned char *p, *end;
    if (ph->p_type != PT_NOTE) continue;
    p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
    end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const void *)p;
      const unsigned char *name = p + sizeof *nh;
      const unsigned char *desc = name + ((nh->n_namesz + 3u) & ~3u);
      if (desc + nh->n_descsz > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
        uint32_t k;
        moss_buf_printf(b, " ");
        for (k = 0; k < nh->n_descsz; k++) moss_buf_printf(b, "%02x", desc[k]);
      }
      p = desc + ((nh->n_descsz + 3u) & ~3u);
    }
  }
  return 0;
}

/* Appends the standard output of `|cc| --version` (the compiler's identity). */
static void add_cc_version(moss_buf *b, const char *cc) {
  int fd[2], status;
  pid_t pid;
  char buf[512];
  ssize_t k;
  if (pipe(fd) != 0) return;
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    close(fd[0]);
    close(fd[1]);
    return;
  }
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execlp(cc, cc, "--version", (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  while ((k = read(fd[0], buf, sizeof buf)) > 0) moss_buf_put(b, buf, (size_t)k);
  close(fd[0]);
  waitpid(pid, &status, 0);
  moss_buf_printf(b, "\nexit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Notes the calibration files as calibrate.c reads them: DATA, or the .npy
 * files of the folder DATA in name order (readdir's order is the folder's). */
static moss_status note_calibration(moss_ctx *ctx, const char *data) {
  struct stat sb;
  DIR *d;
  struct dirent *e;
  char **names = NULL, path[4400];
  size_t n = 0, cap = 0, i;
  moss_status st = MOSS_OK;
  if (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode)) return moss_file_note_input(ctx, data);
  if (!(d = opendir(data))) return MOSS_OK; /* the calibration step says why */
  while ((e = readdir(d)) != NULL && st == MOSS_OK) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".npy")) continue;
    if (n == cap) {
      size_t nc = cap ? 2 * cap : 16;
      char **p = moss_realloc(ctx, names, cap * sizeof *names, nc * sizeof *names);
      if (!p) {
        st = MOSS_E_NOMEM;
        break;
      }
      names = p;
      cap = nc;
    }
    if (!(names[n] = moss_alloc(ctx, len + 1))) st = MOSS_E_NOMEM;
    else memcpy(names[n++], e->d_name, len + 1);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, cmp_str);
  for (i = 0; i < n && st == MOSS_OK; i++) {
    snprintf(path, sizeof path, "%s/%s", data, names[i]);
    st = moss_file_note_input(ctx, path);
  }
  for (i = 0; i < n; i++) moss_free(ctx, names[i], strlen(names[i]) + 1);
  moss_free(ctx, names, cap * sizeof *names);
  return st == MOSS_OK ? MOSS_OK : moss_fail(ctx, MOSS_E_NOMEM, NULL, "the calibration files");
}

/* Whether the system C compiler builds part of this compile's output: the
 * C backend's code in a bundle (backends/c/cbuild.c). */
static int uses_cc(const moss_target *t, const char *emit) {
  int d;
  if (strcmp(emit, "bundle")) return 0;
  for (d = 0; d < moss_target_device_count(t); d++)
    if (!strcmp(moss_target_device_backend(t, d), "c")) return 1;
  return 0;
}

/* The text the key hashes (the file comment says what goes in). */
static moss_status key_text(moss_ctx *ctx, const moss_compile_opts *o, const moss_target *t,
                            const moss_target *host, const char *emit, const char *name,
                            const moss_compile_inputs *in, moss_buf *b) {
  const char *env[] = {"MOSS_WINOGRAD", "MOSS_SPARSE"}, *base;
  size_t i;
  int k;
  moss_buf_printf(b, "moss cache key 1\nversion %s\ncode", MOSS_VERSION);
  dl_iterate_phdr(add_build_id, b);
  base = strrchr(o->model, '/'); /* the header names the model file */
  moss_buf_printf(b, "\nemit %s\nname %s\nmodel %s\n", emit, name, base ? base + 1 : o->model);
  for (k = 0; k < o->nbindings; k++) /* a --constant's file comes with the files below */
    moss_buf_printf(b, "%s %s%s%s\n", o->bindings[k].file ? "--constant" : "--input-shape",
                    o->bindings[k].name, o->bindings[k].file ? "" : "=",
                    o->bindings[k].file ? "" : o->bindings[k].shape);
  if (o->prune) moss_buf_printf(b, "--prune %s\n", o->prune);
  if (o->float16) moss_buf_printf(b, "--float16 %s\n", o->float16);
  if (o->quantize) {
    struct stat sb;
    int dir = stat(o->calibration, &sb) == 0 && S_ISDIR(sb.st_mode);
    moss_buf_printf(b, "--quantize %s\n--calibration %s\n--calibration-method %s\n"
                    "--keep-float %s\n", o->quantize, dir ? "folder" : "file",
                    o->calib_method ? o->calib_method : "minmax",
                    o->keep_float ? o->keep_float : "");
  }
  if (o->grid_intensity > 0) moss_buf_printf(b, "--grid-intensity %.17g\n", o->grid_intensity);
  if (o->report) { /* the report's form follows the file's extension */
    const char *dot = strrchr(o->report, '.');
    moss_buf_printf(b, "--report %s\n", dot && !strchr(dot, '/') ? dot : "");
  }
  if (o->max_trip_count) moss_buf_printf(b, "--max-trip-count %d\n", o->max_trip_count);
  if (o->max_length) moss_buf_printf(b, "--max-length %d\n", o->max_length);
  if (o->profile) moss_buf_printf(b, "--profile\n");
  if (o->sign_key) moss_buf_printf(b, "--sign\n");
  for (k = 0; k < (int)(sizeof env / sizeof env[0]); k++)
    moss_buf_printf(b, "env %s=%s\n", env[k], getenv(env[k]) ? getenv(env[k]) : "(unset)");
  moss_buf_printf(b, "target\n");
  moss_target_describe(t, b);
  if (host) { /* --quantize calibrates by running the float model here */
    moss_buf_printf(b, "calibration host\n");
    moss_target_describe(host, b);
  }
  if (uses_cc(t, emit) || host) {
    const char *cc = getenv("CC"), *cf = getenv("MOSS_CFLAGS");
    cc = cc && *cc ? cc : "cc";
    moss_buf_printf(b, "cc %s\nMOSS_CFLAGS %s\n", cc, cf && *cf ? cf : "-O3");
    add_cc_version(b, cc);
  }
  for (i = in->first; i < in->first + in->n; i++) {
    const char *path = moss_file_set_read_path(ctx->files, i);
    uint8_t *data;
    size_t size;
    char hex[65];
    if (!path) continue;
    MOSS_TRY(moss_file_read(ctx, path, &data, &size));
    moss_sha256_hex(data, size, hex);
    moss_free(ctx, data, size + 1);
    moss_buf_printf(b, "file %s %zu\n", hex, size);
  }
  return b->failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "the cache key") : MOSS_OK;
}

moss_status moss_compile_inputs_done(moss_ctx *ctx, const moss_compile_opts *opts,
                                     const moss_target *target, const char *emit,
                                     const char *name, size_t first, moss_compile_inputs *in) {
  moss_target *host = NULL;
  moss_status st = MOSS_OK;
  if (!ctx->files)
    return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "the files a compile reads are not kept");
  if (opts->calibration) MOSS_TRY(note_calibration(ctx, opts->calibration));
  if (opts->plan_file && moss_file_note_input(ctx, opts->plan_file) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "the list of files read");
  if (opts->quantize) { /* calibrate.c builds the float model for the host: its files count */
    const char *file = ctx->file;
    st = moss_target_load(ctx, NULL, &host);
    ctx->file = file;
    if (st != MOSS_OK) return st;
  }
  in->first = first;
  in->n = ctx->files->n - first;
  if (in->only) {
    moss_buf b;
    moss_buf_init(&b, ctx);
    st = key_text(ctx, opts, target, host, emit, name, in, &b);
    if (st == MOSS_OK) moss_sha256_hex(b.data, b.len, in->key);
    if (getenv("MOSS_CACHE_KEY_TEXT")) fputs(b.data ? b.data : "", stderr); /* what went in */
    moss_buf_deinit(&b);
  }
  moss_target_destroy(ctx, host);
  return st;
}

/* |path| into |b| as GNU make and Ninja read a depfile: a space or '#'
 * after a backslash, '$' doubled. */
static void put_escaped(moss_buf *b, const char *path) {
  for (; *path; path++) {
    if (*path == ' ' || *path == '#') moss_buf_put(b, "\\", 1);
    if (*path == '$') moss_buf_put(b, "$", 1);
    moss_buf_put(b, path, 1);
  }
}

moss_status moss_depfile_write(moss_ctx *ctx, const char *depfile, const char *emit,
                               const char *out, const char *ident, const moss_compile_inputs *in) {
  moss_buf b;
  char cwd[4096];
  size_t i;
  moss_status st;
  if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
  moss_buf_init(&b, ctx);
  put_escaped(&b, out); /* the main output as the command line named it: the build tool's name */
  if (strcmp(emit, "bundle")) { /* a folder: its code file (backends' emit_standalone) */
    moss_buf_printf(&b, "/");
    put_escaped(&b, ident);
    moss_buf_printf(&b, ".%s", strcmp(emit, "obj") ? "c" : "o");
  }
  moss_buf_printf(&b, ":");
  for (i = in->first; i < in->first + in->n; i++) {
    const char *path = moss_file_set_read_path(ctx->files, i);
    if (!path) continue;
    if (strchr(path, '\n')) {
      moss_buf_deinit(&b);
      return moss_fail(ctx, MOSS_E_IO, NULL, "--depfile: '%s' has a newline in its name, which a "
                       "depfile cannot hold", path);
    }
    moss_buf_printf(&b, " \\\n  ");
    while (path[0] == '.' && path[1] == '/') path += 2; /* "./x.xml" (inherit= beside) */
    if (path[0] != '/' && cwd[0]) { /* absolute: the build tool may run elsewhere */
      put_escaped(&b, cwd);
      moss_buf_printf(&b, "/");
    }
    put_escaped(&b, path);
  }
  moss_buf_printf(&b, "\n");
  st = b.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "--depfile %s", depfile)
                : moss_file_write(ctx, depfile, b.data, b.len);
  moss_buf_deinit(&b);
  return st;
}
