/* harness.h - the tiny in-tree unit test harness. A test file defines
 * TEST(name) { ... } blocks and ends with TEST_MAIN(). ASSERT_* print both
 * values and the line, then fail the current test. */
#ifndef MOSS_TEST_HARNESS_H
#define MOSS_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(int *failed);
typedef struct test_case { const char *name; test_fn fn; } test_case;

#define MAX_TESTS 256
static test_case g_tests[MAX_TESTS];
static int g_ntests;

#define TEST(name)                                                        \
  static void test_##name(int *failed_);                                  \
  __attribute__((constructor)) static void reg_##name(void) {             \
    if (g_ntests < MAX_TESTS) g_tests[g_ntests++] = (test_case){#name, test_##name}; \
  }                                                                       \
  static void test_##name(int *failed_)

#define FAIL_(...)                                        \
  do {                                                    \
    fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);     \
    fprintf(stderr, __VA_ARGS__);                         \
    fprintf(stderr, "\n");                                \
    *failed_ = 1;                                         \
    return;                                               \
  } while (0)

#define ASSERT_TRUE(c) \
  do { if (!(c)) FAIL_("expected true: %s", #c); } while (0)
#define ASSERT_EQ(a, b)                                                              \
  do {                                                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);                              \
    if (a_ != b_) FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                  \
  } while (0)
#define ASSERT_STR_CONTAINS(hay, needle)                                             \
  do {                                                                               \
    const char *h_ = (hay), *n_ = (needle);                                          \
    if (!h_ || !strstr(h_, n_)) FAIL_("'%s' does not contain '%s'", h_ ? h_ : "(null)", n_); \
  } while (0)
#define ASSERT_NEAR(a, b, tol)                                                       \
  do {                                                                               \
    double a_ = (a), b_ = (b);                                                       \
    if (!(a_ - b_ <= (tol) && b_ - a_ <= (tol))) FAIL_("%s ~ %s: %.9g != %.9g", #a, #b, a_, b_); \
  } while (0)

#define TEST_MAIN()                                                         \
  int main(void) {                                                          \
    int i, nfail = 0;                                                       \
    for (i = 0; i < g_ntests; i++) {                                        \
      int failed = 0;                                                       \
      g_tests[i].fn(&failed);                                               \
      printf("%s %s\n", failed ? "FAIL" : "ok  ", g_tests[i].name);         \
      nfail += failed;                                                      \
    }                                                                       \
    printf("%d passed, %d failed\n", g_ntests - nfail, nfail);              \
    return nfail ? 1 : 0;                                                   \
  }

#endif
