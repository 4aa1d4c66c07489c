/* oom.h - allocation failure for the unit harness (STYLE.md section 8):
 * a counting allocator that fails the Nth allocation, and a loop that runs
 * a test body with N = 1, 2, ... until a run has no Nth allocation to fail.
 *
 *   TEST(chain) {
 *     OOM_LOOP {
 *       moss_ctx ctx;
 *       oom_ctx_init(&ctx);                 (the counting allocator)
 *       ... build the input ...             (not armed: never fails)
 *       st = OOM_CALL(&ctx, moss_plan_compute(&ctx, g, &arena));
 *       if (OOM_STOPPED()) goto done;       (the Nth allocation failed)
 *       ASSERT_EQ(st, MOSS_OK);             (the run without a failure)
 *       ...
 *     done:
 *       moss_graph_destroy(&ctx, g);
 *     }
 *   }
 *
 * Only allocations made inside OOM_CALL count and can fail, so the code
 * under test is what meets the failure, not the test's own scaffolding.
 * When the failure was injected during a call, the call must return
 * MOSS_E_NOMEM, and every diagnostic it reported from the failure on must
 * be an out-of-memory message in the DESIGN.md shape
 * ("<file>: [node '<name>' (<Op>): ]out-of-memory: <reason> [<src>.c:<line>]").
 * After each run (at the next turn of OOM_LOOP) every byte allocated through
 * the counting allocator must have been freed, each with the size it was
 * allocated with. Inside the loop MOSS_ARENA_BLOCK=1 gives each arena
 * allocation a block of its own, so those can fail too. MOSS_OOM_VERBOSE=1
 * in the environment prints how many allocations each loop failed. */
#ifndef MOSS_TEST_OOM_H
#define MOSS_TEST_OOM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "harness.h"

#define OOM_MAX_RUNS 200000L

typedef struct oom_state {
  long fail_at;         /* the allocation to fail in this run (1-based) */
  long calls;           /* allocations counted (armed) in this run */
  int armed;            /* inside OOM_CALL */
  int injected;         /* the failure was returned during the current call */
  long long live;       /* bytes outstanding */
  long blocks;          /* blocks outstanding */
  int bad_free;         /* a free or realloc gave a size the block does not have */
  size_t bad_size, bad_real;
  /* the current call's diagnostics */
  moss_diag_fn sink;
  void *sink_user;
  int msgs_after;       /* diagnostics reported since the failure */
  int oom_msgs;         /* ... of which out-of-memory ones in the right shape */
  char wrong[1024];     /* the first diagnostic since the failure that is not */
  /* the verdict of the last OOM_CALL */
  enum { OOM_CLEAN, OOM_HIT, OOM_WRONG } verdict;
  char why[1400];
  /* the whole test program */
  long total_runs;
} oom_state;

static oom_state g_oom;

/* Each block carries its size in front, so frees can be checked. */
#define OOM_HDR 16

static void *oom_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
  oom_state *s = user;
  unsigned char *base = ptr ? (unsigned char *)ptr - OOM_HDR : NULL;
  size_t real = 0;
  if (base) {
    memcpy(&real, base, sizeof real);
    /* moss_alloc and moss_realloc round a size of 0 up to 1 */
    if (real != old_size && !(real == 1 && old_size == 0) && !s->bad_free) {
      s->bad_free = 1;
      s->bad_size = old_size;
      s->bad_real = real;
    }
  }
  if (new_size == 0) {
    if (base) {
      s->live -= (long long)real;
      s->blocks--;
      free(base);
    }
    return NULL;
  }
  if (s->armed && ++s->calls == s->fail_at) {
    s->injected = 1;
    return NULL;
  }
  if (new_size > (size_t)-1 - OOM_HDR) return NULL;
  base = realloc(base, new_size + OOM_HDR);
  if (!base) return NULL;
  memcpy(base, &new_size, sizeof new_size);
  s->live += (long long)new_size - (long long)real;
  if (!ptr) s->blocks++;
  return base + OOM_HDR;
}

/* The counting allocator, for moss_ctx_init or moss_arena_create. */
static inline moss_allocator oom_allocator(void) {
  moss_allocator a = {oom_realloc, &g_oom};
  return a;
}

/* A context on the counting allocator; its diagnostics go nowhere but
 * ctx->last unless the test sets a sink. */
static inline void oom_ctx_init(moss_ctx *ctx) { moss_ctx_init(ctx, oom_allocator()); }

/* Is |msg| "<file>: [node '<n>' (<Op>): ]out-of-memory: <reason> [<src>.c:<line>]"? */
static int oom_msg_shape_ok(const char *msg) {
  const char *cat = strstr(msg, ": out-of-memory: "), *src, *p;
  size_t n = strlen(msg);
  if (!cat || cat == msg) return 0;
  if (strstr(msg, ": node '") && strstr(msg, ": node '") < cat &&
      (cat[-1] != ')' || !strstr(msg, "' (")))
    return 0;
  p = cat + strlen(": out-of-memory: ");
  src = strrchr(msg, '[');
  if (!src || src <= p + 1 || src[-1] != ' ' || n < 2 || msg[n - 1] != ']') return 0;
  src++;
  while (*src && *src != ':' && *src != ']') src++;
  if (*src != ':' || src - 2 < msg || strncmp(src - 2, ".c", 2) != 0) return 0;
  for (src++; *src != ']'; src++)
    if (*src < '0' || *src > '9') return 0;
  return 1;
}

static void oom_sink(void *user, moss_status code, const char *msg) {
  oom_state *s = user;
  if (s->injected) {
    s->msgs_after++;
    if (code == MOSS_E_NOMEM && oom_msg_shape_ok(msg)) s->oom_msgs++;
    else if (!s->wrong[0]) snprintf(s->wrong, sizeof s->wrong, "%s", msg);
  }
  if (s->sink) s->sink(s->sink_user, code, msg);
}

static inline void oom_call_begin(moss_ctx *ctx) {
  g_oom.sink = ctx->sink;
  g_oom.sink_user = ctx->sink_user;
  ctx->sink = oom_sink;
  ctx->sink_user = &g_oom;
  g_oom.injected = 0;
  g_oom.msgs_after = 0;
  g_oom.oom_msgs = 0;
  g_oom.wrong[0] = 0;
  g_oom.armed = 1;
}

static inline moss_status oom_call_end(moss_ctx *ctx, moss_status st) {
  g_oom.armed = 0;
  ctx->sink = g_oom.sink;
  ctx->sink_user = g_oom.sink_user;
  g_oom.verdict = OOM_CLEAN;
  if (!g_oom.injected) return st;
  g_oom.verdict = OOM_HIT;
  if (st != MOSS_E_NOMEM) {
    g_oom.verdict = OOM_WRONG;
    snprintf(g_oom.why, sizeof g_oom.why,
             "allocation %ld failed, but the call returned %s (%s)%s%s", g_oom.fail_at,
             moss_status_category(st),
             st == MOSS_OK ? "the failure was ignored" : "not out-of-memory",
             g_oom.wrong[0] ? "; message: " : "", g_oom.wrong);
  } else if (g_oom.wrong[0]) {
    g_oom.verdict = OOM_WRONG;
    snprintf(g_oom.why, sizeof g_oom.why,
             "allocation %ld failed, and the call reported a message that is not out-of-memory "
             "in the diagnostic shape: %s",
             g_oom.fail_at, g_oom.wrong);
  } else if (g_oom.oom_msgs == 0) {
    g_oom.verdict = OOM_WRONG;
    snprintf(g_oom.why, sizeof g_oom.why,
             "allocation %ld failed: out-of-memory returned without a message", g_oom.fail_at);
  }
  return st;
}

/* Evaluates the moss_status expression |expr| with allocation failure
 * armed and yields its value; |ctx| is the context it reports to. */
#define OOM_CALL(ctx, expr) oom_call_end((ctx), (oom_call_begin(ctx), (expr)))

static inline int oom_stopped(int *failed_, const char *file, int line) {
  if (g_oom.verdict == OOM_WRONG) {
    fprintf(stderr, "  %s:%d: %s\n", file, line, g_oom.why);
    *failed_ = 1;
  }
  return g_oom.verdict != OOM_CLEAN;
}

/* After an OOM_CALL: true when the Nth allocation failed during it (the run
 * stops there and goes to its cleanup); fails the test when that call did
 * not report out-of-memory as it should. */
#define OOM_STOPPED() oom_stopped(failed_, __FILE__, __LINE__)

/* st = OOM_CALL(ctx, expr); stops the run at |label| when the allocation
 * failed there; otherwise the status must be |want|. */
#define OOM_CHECK(ctx, expr, want, label)    \
  do {                                       \
    moss_status ost_ = OOM_CALL(ctx, expr);  \
    if (OOM_STOPPED()) goto label;           \
    ASSERT_EQ(ost_, want);                   \
  } while (0)

static inline int oom_loop_begin(int *failed_) {
  long runs = g_oom.total_runs;
  if (*failed_) return 0; /* an earlier part of the test failed: do not run */
  memset(&g_oom, 0, sizeof g_oom);
  g_oom.total_runs = runs;
  /* Arenas made in the loop take a block per allocation, so each arena
   * allocation is an allocator call that can fail (compiler/base/memory.c). */
  setenv("MOSS_ARENA_BLOCK", "1", 1);
  return 1;
}

static inline int oom_loop_end(void) {
  unsetenv("MOSS_ARENA_BLOCK");
  return 0;
}

/* The check after each run, and the start of the next one. */
static inline int oom_loop_next(int *failed_, const char *file, int line) {
  if (g_oom.fail_at > 0) { /* a run has ended */
    long n = g_oom.fail_at;
    char run[64];
    if (g_oom.calls < n) snprintf(run, sizeof run, "the run without a failure");
    else snprintf(run, sizeof run, "the run with allocation %ld failing", n);
    g_oom.total_runs++;
    if (*failed_) {
      fprintf(stderr, "  %s:%d: (in %s)\n", file, line, run);
      return oom_loop_end();
    }
    if (g_oom.bad_free) {
      fprintf(stderr, "  %s:%d: %s: a block of %zu bytes was freed or resized as %zu bytes\n",
              file, line, run, g_oom.bad_real, g_oom.bad_size);
      *failed_ = 1;
      return oom_loop_end();
    }
    if (g_oom.live != 0 || g_oom.blocks != 0) {
      fprintf(stderr, "  %s:%d: %s: %lld bytes in %ld blocks leaked\n", file, line, run,
              g_oom.live, g_oom.blocks);
      *failed_ = 1;
      return oom_loop_end();
    }
    if (g_oom.calls < n) { /* nothing left to fail: that was the clean run */
      if (getenv("MOSS_OOM_VERBOSE"))
        fprintf(stderr, "  %s:%d: %ld allocations, each failed once\n", file, line, n - 1);
      return oom_loop_end();
    }
    if (n >= OOM_MAX_RUNS) {
      fprintf(stderr, "  %s:%d: still allocating after %ld runs\n", file, line, n);
      *failed_ = 1;
      return oom_loop_end();
    }
  }
  g_oom.fail_at++;
  g_oom.calls = 0;
  g_oom.injected = 0;
  g_oom.verdict = OOM_CLEAN;
  return 1;
}

/* Runs the statement after it with allocation N failing, N = 1, 2, ...
 * until a run completes without reaching an Nth allocation; that last run
 * is the one whose results the test checks. */
#define OOM_LOOP                                     \
  for (int oom_go_ = oom_loop_begin(failed_); oom_go_ && \
       oom_loop_next(failed_, __FILE__, __LINE__);)

#endif
