/* proc.c - what moss runs or removes outside itself: the system C compiler
 * on generated C (`moss run` on an --emit c folder, the C backend's bundle
 * code) and the temporary folders of those builds and of calibration. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"

moss_status moss_cc_shared(moss_ctx *ctx, const char *cc, const char *const *extra, int nextra,
                           const char *dir, const char *const *srcs, int nsrcs,
                           const char *out_so) {
  char tmp[4300], flags[1024]; /* |out_so| (< 4200) + ".<pid>.tmp" */
  const char *cf = getenv("MOSS_CFLAGS");
  char *argv[96];
  int argc = 0, status = 0, i;
  pid_t pid;
  char *tok, *save;
  if (!cc || !*cc) cc = getenv("CC");
  if (!cc || !*cc) cc = "cc";
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", out_so, (long)getpid());
  snprintf(flags, sizeof flags, "%s", cf && *cf ? cf : "-O3");
  argv[argc++] = (char *)cc;
  for (tok = strtok_r(flags, " ", &save); tok && argc < 48; tok = strtok_r(NULL, " ", &save))
    argv[argc++] = tok;
  for (i = 0; i < nextra && argc < 64; i++) argv[argc++] = (char *)extra[i];
  argv[argc++] = "-std=c99";
  argv[argc++] = "-fPIC";
  argv[argc++] = "-shared";
  argv[argc++] = "-o";
  argv[argc++] = tmp;
  for (i = 0; i < nsrcs && argc < 90; i++) argv[argc++] = (char *)srcs[i];
  argv[argc++] = "-lm";
  argv[argc] = NULL;
  fflush(NULL);
  pid = fork();
  if (pid < 0) return moss_fail(ctx, MOSS_E_IO, NULL, "fork: %s", strerror(errno));
  if (pid == 0) {
    if (dir && chdir(dir) != 0) _exit(126);
    execvp(argv[0], argv);
    _exit(127);
  }
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    unlink(tmp);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      return moss_fail(ctx, MOSS_E_IO, NULL, "cannot run the C compiler '%s' (set $CC)", cc);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
      return moss_fail(ctx, MOSS_E_IO, NULL, "cannot enter the folder '%s' to build in", dir);
    return moss_fail(ctx, MOSS_E_IO, NULL, "building '%s' with %s failed (exit %d)", srcs[0], cc,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  if (moss_file_check_output(ctx, out_so) != MOSS_OK) { /* never over an input or a device */
    unlink(tmp);
    return MOSS_E_IO;
  }
  if (rename(tmp, out_so) != 0) {
    unlink(tmp);
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot write '%s'", out_so);
  }
  return MOSS_OK;
}

void moss_remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4400];
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}
