/* peak_fma.c - the fp32 FMA peak of one core of this machine, measured: 12
 * independent chains of fused multiply-adds on the widest vectors the
 * compiler targets (-march=native), enough to cover the FMA latency on two
 * pipes. Prints GMAC/s (one MAC = one lane of one FMA). bench_gemm.py builds
 * and runs it in the same run as the GEMM it compares with the peak,
 * because these shared machines differ (57 and 143 GMAC/s have been seen). */
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
typedef float vec __attribute__((vector_size(LANES * 4)));

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
  vec m, c, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11;
  long i, n = 20000000;
  double best = 0;
  int rep, l;
  for (l = 0; l < LANES; l++) m[l] = 0.9999999f, c[l] = 1e-7f;
  /* Twelve different starting values, so the compiler cannot merge chains. */
  a0 = c, a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
  a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
  for (rep = 0; rep < 5; rep++) {
    double t0 = now(), t;
    for (i = 0; i < n; i++) {
      a0 = a0 * m + c, a1 = a1 * m + c, a2 = a2 * m + c, a3 = a3 * m + c;
      a4 = a4 * m + c, a5 = a5 * m + c, a6 = a6 * m + c, a7 = a7 * m + c;
      a8 = a8 * m + c, a9 = a9 * m + c, a10 = a10 * m + c, a11 = a11 * m + c;
    }
    t = now() - t0;
    if (12.0 * LANES * (double)n / t > best) best = 12.0 * LANES * (double)n / t;
  }
  a0 += a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
  printf("%.2f GMAC/s fp32 FMA peak, one core, %d lanes (checksum %g)\n", best * 1e-9, LANES, (double)a0[0]);
  return 0;
}
