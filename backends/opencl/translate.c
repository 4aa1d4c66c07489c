/* translate.c - the OpenCL backend's SPIR-V form: the spir64 bitcode that
 * the LLVM backend builds for a segment (moss_llvm_emit_gpu) translated to
 * a SPIR-V 1.0 module by Khronos' translator, llvm-spirv-15 (Debian's
 * llvm-spirv-15; LLVM 19 has no SPIR-V target), then validated against
 * OpenCL 1.2's environment with SPIRV-Tools (backends/gpu/spirv.h).
 *
 * The translator runs as a child process (posix_spawnp, no shell) on files
 * in a private temporary folder (mkdtemp, mode 0700) that is removed
 * afterwards; its messages go to a file there and into the diagnostic when
 * it fails. MOSS_LLVM_SPIRV names another translator binary (tests use it
 * to check the message when there is none). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../gpu/spirv.h"
#include "opencl.h"

extern char **environ;

#define SPIRV_MAGIC 0x07230203u

/* Writes |n| bytes of |data| to the new file |path|; 0 on failure. */
static int write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  int ok;
  if (!f) return 0;
  ok = fwrite(data, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

/* The file at |path| in memory (moss_alloc'd, |*out_n| bytes, one more
 * allocated); NULL when it cannot be read. */
static char *read_file(moss_ctx *ctx, const char *path, size_t *out_n) {
  FILE *f = fopen(path, "rb");
  char *data = NULL;
  long n;
  *out_n = 0;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (data = moss_alloc(ctx, (size_t)n + 1)) != NULL) {
    if (fread(data, 1, (size_t)n, f) != (size_t)n) {
      moss_free(ctx, data, (size_t)n + 1);
      data = NULL;
    } else {
      data[n] = 0;
      *out_n = (size_t)n;
    }
  }
  fclose(f);
  return data;
}

/* Runs |argv| with standard output and error into |log|; its exit status
 * (0 .. 255), or -1 with |*spawn_err| set when it could not be started. */
static int run_tool(char *const *argv, const char *log, int *spawn_err) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int rc, status = 0;
  *spawn_err = 0;
  if (posix_spawn_file_actions_init(&fa) != 0) return *spawn_err = ENOMEM, -1;
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  fflush(NULL);
  rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return *spawn_err = rc, -1;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return *spawn_err = errno, -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

moss_status moss_opencl_spirv(moss_ctx *ctx, const char *bitcode, size_t n, const moss_node *at,
                              uint32_t **out_words, size_t *out_nwords) {
  const char *tool = getenv("MOSS_LLVM_SPIRV"), *tmp = getenv("TMPDIR");
  char dir[512], in[600], out[600], log[600];
  char *argv[6], *spv = NULL, *msg = NULL;
  size_t nspv = 0, nmsg = 0;
  int rc, why = 0;
  moss_status st = MOSS_OK;
  *out_words = NULL;
  *out_nwords = 0;
  if (!tool || !*tool) tool = "llvm-spirv-15";
  if (!tmp || !*tmp || strlen(tmp) > 400) tmp = "/tmp";
  snprintf(dir, sizeof dir, "%s/moss-spirv-XXXXXX", tmp);
  if (!mkdtemp(dir)) return moss_fail(ctx, MOSS_E_IO, at, "OpenCL backend: cannot make a folder in %s: %s", tmp,
                                      strerror(errno));
  snprintf(in, sizeof in, "%s/k.bc", dir);
  snprintf(out, sizeof out, "%s/k.spv", dir);
  snprintf(log, sizeof log, "%s/log.txt", dir);
  if (!write_file(in, bitcode, n)) {
    st = moss_fail(ctx, MOSS_E_IO, at, "OpenCL backend: cannot write %s: %s", in, strerror(errno));
    goto done;
  }
  argv[0] = (char *)tool;
  argv[1] = "--spirv-max-version=1.0";
  argv[2] = in;
  argv[3] = "-o";
  argv[4] = out;
  argv[5] = NULL;
  rc = run_tool(argv, log, &why);
  if (rc < 0 && why == ENOENT) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, at, "%s not found: install Debian's llvm-spirv-15 (the OpenCL backend's "
                   "SPIR-V form)", tool);
    goto done;
  }
  if (rc < 0) {
    st = moss_fail(ctx, MOSS_E_IO, at, "OpenCL backend: cannot run %s: %s", tool, strerror(why));
    goto done;
  }
  if (rc != 0) {
    msg = read_file(ctx, log, &nmsg);
    st = moss_fail(ctx, MOSS_E_INTERNAL, at, "OpenCL backend: %s refused the spir64 module (exit %d): %.600s", tool,
                   rc, msg && nmsg ? msg : "no message");
    goto done;
  }
  spv = read_file(ctx, out, &nspv);
  if (!spv || nspv < 20 || nspv % 4) {
    st = moss_fail(ctx, MOSS_E_INTERNAL, at, "OpenCL backend: %s wrote no SPIR-V module (%zu bytes)", tool, nspv);
    goto done;
  }
  {
    uint32_t magic, *words;
    memcpy(&magic, spv, 4);
    if (magic != SPIRV_MAGIC) {
      st = moss_fail(ctx, MOSS_E_INTERNAL, at, "OpenCL backend: %s wrote no SPIR-V module (magic %08x)", tool,
                     (unsigned)magic);
      goto done;
    }
    if (!(words = moss_alloc(ctx, nspv))) {
      st = moss_fail(ctx, MOSS_E_NOMEM, at, "OpenCL backend: SPIR-V");
      goto done;
    }
    memcpy(words, spv, nspv);
    st = moss_spirv_validate(ctx, words, nspv / 4, MOSS_SPIRV_OPENCL_1_2, at, "OpenCL backend");
    if (st != MOSS_OK) {
      moss_free(ctx, words, nspv);
      goto done;
    }
    *out_words = words;
    *out_nwords = nspv / 4;
  }
done:
  if (spv) moss_free(ctx, spv, nspv + 1);
  if (msg) moss_free(ctx, msg, nmsg + 1);
  if (getenv("MOSS_SPIRV_KEEP")) return st; /* the folder left for a look at the module */
  unlink(in);
  unlink(out);
  unlink(log);
  rmdir(dir);
  return st;
}
