/* progress.c - the progress line of the moss command (progress.h): a
 * stack of levels of work (compare > compile > its step), drawn as one line
 * on standard error with "\r" and erased with "\r\033[K". Only the driver
 * draws it; the layers below report through moss_ctx.progress. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define MAXDEPTH 6

typedef struct level {
  const char *stage, *unit, *item;
  int64_t done, total;
} level;

static struct {
  int on;
  int depth;             /* may exceed MAXDEPTH: the levels past it are not shown */
  level lv[MAXDEPTH];
  double t0;             /* when the outermost level began */
  double last;           /* when the line was last drawn */
  double delay, every;   /* draw after |delay| s, at most once per |every| s */
  int shown;             /* the line is on the terminal now */
} P;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void moss_progress_enable(int on) {
  const char *d = getenv("MOSS_PROGRESS_DELAY");
  char *end;
  moss_progress_clear();
  P.on = on;
  P.delay = 0.3;
  P.every = 0.1;
  if (d && *d) {
    double v = strtod(d, &end);
    if (!*end && v >= 0 && v < 1e6) P.delay = v;
    if (P.delay == 0) P.every = 0; /* the tests: every update drawn */
  }
}

/* The line: "moss: " and each shown level, then the seconds so far; cut at
 * the terminal's width, since a line that wraps cannot be redrawn with \r. */
static void draw(void) {
  char line[512];
  size_t n, cap = sizeof line;
  struct winsize ws;
  double t;
  int i;
  if (!P.on || P.depth == 0) return;
  t = now_s();
  if (t - P.t0 < P.delay || (P.shown && t - P.last < P.every)) return;
  n = (size_t)snprintf(line, cap, "moss: ");
  for (i = 0; i < P.depth && i < MAXDEPTH && n < cap; i++) {
    const level *l = &P.lv[i];
    n += (size_t)snprintf(line + n, cap - n, "%s%s", i ? ": " : "", l->stage ? l->stage : "");
    if (n < cap && l->total > 0)
      n += (size_t)snprintf(line + n, cap - n, " %lld/%lld", (long long)l->done,
                            (long long)l->total);
    if (n < cap && l->unit) n += (size_t)snprintf(line + n, cap - n, " %s", l->unit);
    if (n < cap && l->item) n += (size_t)snprintf(line + n, cap - n, ", %s", l->item);
  }
  if (n < cap) n += (size_t)snprintf(line + n, cap - n, "  %.1f s", t - P.t0);
  if (n >= cap) n = cap - 1;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && n >= ws.ws_col) {
    n = (size_t)ws.ws_col - 1;
    while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80) n--; /* not inside a UTF-8 char */
  }
  line[n] = 0;
  fprintf(stderr, "\r%s\033[K", line);
  fflush(stderr);
  P.shown = 1;
  P.last = t;
}

void moss_progress_begin(const char *stage, int64_t total, const char *unit) {
  if (P.depth == 0) {
    P.t0 = now_s();
    P.shown = 0;
  }
  if (P.depth < MAXDEPTH) {
    level *l = &P.lv[P.depth];
    l->stage = stage;
    l->unit = unit;
    l->item = NULL;
    l->done = 0;
    l->total = total;
  }
  P.depth++;
  draw();
}

/* The innermost level, when it is one shown; else NULL. */
static level *top(void) {
  return P.depth > 0 && P.depth <= MAXDEPTH ? &P.lv[P.depth - 1] : NULL;
}

void moss_progress_step(int64_t done) {
  level *l = top();
  if (!l) return;
  l->done = done;
  draw();
}

void moss_progress_stage(const char *stage, int64_t done, int64_t total, const char *unit) {
  level *l = top();
  if (!l) return;
  l->stage = stage;
  l->done = done;
  l->total = total;
  l->unit = unit;
  draw();
}

void moss_progress_item(const char *item) {
  level *l = top();
  if (!l) return;
  l->item = item;
  draw();
}

void moss_progress_end(void) {
  if (P.depth == 0) return;
  if (--P.depth == 0) moss_progress_clear();
  else draw();
}

void moss_progress_clear(void) {
  if (!P.shown) return;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
  P.shown = 0;
}

void moss_progress_report(void *user, const char *what, int64_t done, int64_t total) {
  (void)user;
  moss_progress_stage(what, done, total, NULL);
}
