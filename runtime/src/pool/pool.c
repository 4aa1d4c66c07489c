/* pool.c - a session's threads: the fixed pool that runs the parts of the
 * CPU code's parallel loops (moss_bundle.h, moss_bundle_par), outside the
 * measured core (runtime/README.md "Threads").
 *
 * The pool is the calling thread and |nthreads| - 1 workers, started when
 * the thread count is set and stopped when it changes or the session ends.
 * A run of parts (pool_run) publishes the job (function, context, number
 * of parts) under the lock and bumps the generation; every thread then
 * takes part numbers from one atomic counter until none are left, so a
 * part runs exactly once, on whichever thread takes it. The caller returns
 * when all parts are done. Workers spin a little on the generation before
 * they sleep on a condition variable: the parts of one layer follow those
 * of the last within microseconds. Nothing allocates while a job runs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "../core/mossrt_internal.h"

#define MAX_THREADS 1024
#define SPINS 4096 /* pause loops (about 100 us) before a worker sleeps */

struct mossrt_pool {
  moss_bundle_par api; /* first: the code calls api.run(&api, ...) */
  mossrt_allocator alloc;
  uint32_t nthreads;   /* the caller and the workers */
  uint32_t nworkers;   /* workers started */
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  int stop;            /* under mu */
  uint32_t sleepers;   /* under mu */
  /* The job, written under mu while no worker is in one. */
  moss_bundle_part_fn fn;
  void *ctx;
  uint32_t nparts;
  atomic_ullong gen;   /* bumped for each job */
  atomic_uint next;    /* the next part to take */
  atomic_uint done;    /* parts finished */
  atomic_uint active;  /* workers inside a job */
};

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static void take_parts(struct mossrt_pool *p, moss_bundle_part_fn fn, void *ctx, uint32_t n) {
  uint32_t i;
  while ((i = atomic_fetch_add(&p->next, 1)) < n) {
    fn(ctx, i);
    atomic_fetch_add(&p->done, 1);
  }
}

static void *worker(void *arg) {
  struct mossrt_pool *p = arg;
  unsigned long long seen = 0;
  for (;;) {
    moss_bundle_part_fn fn;
    void *ctx;
    uint32_t n, i;
    for (i = 0; i < SPINS && atomic_load(&p->gen) == seen; i++) relax();
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->gen) == seen && !p->stop) {
      p->sleepers++;
      pthread_cond_wait(&p->wake, &p->mu);
      p->sleepers--;
    }
    if (p->stop) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    seen = atomic_load(&p->gen);
    fn = p->fn;
    ctx = p->ctx;
    n = p->nparts;
    atomic_fetch_add(&p->active, 1);
    pthread_mutex_unlock(&p->mu);
    take_parts(p, fn, ctx, n);
    atomic_fetch_sub(&p->active, 1);
  }
}

static void pool_run(const moss_bundle_par *par, moss_bundle_part_fn fn, void *ctx, uint32_t nparts) {
  struct mossrt_pool *p = (struct mossrt_pool *)(uintptr_t)par;
  uint32_t spins = 0;
  if (nparts < 2 || p->nworkers == 0) {
    uint32_t i;
    for (i = 0; i < nparts; i++) fn(ctx, i);
    return;
  }
  pthread_mutex_lock(&p->mu);
  /* A worker that woke late may still hold the last job (it finds no part
   * left); the job is rewritten only once none does. */
  while (atomic_load(&p->active) != 0) {
    pthread_mutex_unlock(&p->mu);
    relax();
    pthread_mutex_lock(&p->mu);
  }
  p->fn = fn;
  p->ctx = ctx;
  p->nparts = nparts;
  atomic_store(&p->next, 0);
  atomic_store(&p->done, 0);
  atomic_fetch_add(&p->gen, 1);
  if (p->sleepers) pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  take_parts(p, fn, ctx, nparts);
  while (atomic_load(&p->done) < nparts)
    if (++spins < SPINS) relax();
    else sched_yield(); /* a worker was descheduled: let it run */
}

/* Stops and joins the workers, frees the pool. */
static void pool_free(struct mossrt_pool *p) {
  uint32_t i;
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (i = 0; i < p->nworkers; i++) pthread_join(p->workers[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mu);
  if (p->workers) mossrt_mem_free(&p->alloc, p->workers, sizeof *p->workers * (p->nthreads - 1));
  mossrt_mem_free(&p->alloc, p, sizeof *p);
}

/* The cores this process may run on (at least 1). */
static uint32_t cores(void) {
  cpu_set_t set;
  int n;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  n = CPU_COUNT(&set);
  return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (uint32_t)n;
}

mossrt_status mossrt_session_set_threads(mossrt_session *s, uint32_t threads, mossrt_error *err) {
  struct mossrt_pool *p;
  const mossrt_allocator *a;
  if (!s) return mossrt_fail(err, NULL, MOSSRT_E_ARG, "mossrt_session_set_threads: NULL session");
  if (threads > MAX_THREADS)
    return mossrt_fail(err, s->b->name, MOSSRT_E_ARG, "%u threads: at most %d", threads, MAX_THREADS);
  if (threads == 0) threads = cores();
  if (!s->b->cpu_code) threads = 1; /* no CPU code: nothing to run on threads */
  if (threads == mossrt_session_threads(s)) return MOSSRT_OK;
  if (threads == 1) {
    pool_free(s->pool);
    s->pool = NULL;
    s->par = NULL;
    return MOSSRT_OK;
  }
  a = &s->b->alloc;
  p = mossrt_mem_alloc(a, sizeof *p);
  if (!p) return mossrt_fail(err, s->b->name, MOSSRT_E_NOMEM, "cannot allocate a pool of %u threads", threads);
  memset(p, 0, sizeof *p);
  p->api.run = pool_run;
  p->alloc = *a;
  p->nthreads = threads;
  p->workers = mossrt_mem_alloc(a, sizeof *p->workers * (threads - 1));
  if (!p->workers || pthread_mutex_init(&p->mu, NULL) != 0) {
    if (p->workers) mossrt_mem_free(a, p->workers, sizeof *p->workers * (threads - 1));
    mossrt_mem_free(a, p, sizeof *p);
    return mossrt_fail(err, s->b->name, MOSSRT_E_NOMEM, "cannot allocate a pool of %u threads", threads);
  }
  if (pthread_cond_init(&p->wake, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    mossrt_mem_free(a, p->workers, sizeof *p->workers * (threads - 1));
    mossrt_mem_free(a, p, sizeof *p);
    return mossrt_fail(err, s->b->name, MOSSRT_E_NOMEM, "cannot allocate a pool of %u threads", threads);
  }
  for (; p->nworkers < threads - 1; p->nworkers++)
    if (pthread_create(&p->workers[p->nworkers], NULL, worker, p) != 0) {
      uint32_t started = p->nworkers;
      pool_free(p);
      return mossrt_fail(err, s->b->name, MOSSRT_E_NOMEM,
                         "cannot start a thread (%u workers of %u started)", started, threads - 1);
    }
  pool_free(s->pool);
  s->pool = p;
  s->par = &p->api;
  return MOSSRT_OK;
}

uint32_t mossrt_session_threads(const mossrt_session *s) {
  return s && s->pool ? s->pool->nthreads : 1;
}

mossrt_status mossrt_pool_session_open(mossrt_session *s, mossrt_error *err) {
  s->pool = NULL;
  s->par = NULL;
  return mossrt_session_set_threads(s, 0, err);
}

void mossrt_pool_session_close(mossrt_session *s) {
  pool_free(s->pool);
  s->pool = NULL;
  s->par = NULL;
}
