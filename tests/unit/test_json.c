/* test_json.c - the strict JSON reader (compiler/base/json.c) that
 * `moss bench --profile` uses on the cost report a bundle carries: every
 * kind of value, nesting, escapes to UTF-8, numbers, a report shaped like
 * moss's own; and, since that text may be forged, malformed inputs each
 * refused once with invalid-model and the byte offset of the fault, every
 * truncation of a document, random mutations, nesting past the limit,
 * 100,000-element containers, and each allocation failing in turn.
 *
 * Inputs go through a heap copy of exactly their length, so that a read
 * past the end shows under AddressSanitizer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "diag_sink.h"
#include "harness.h"
#include "oom.h"

/* One arena for the program (reset by each parse) so that a failed
 * assertion leaks nothing. */
static moss_arena *g_arena;
static moss_ctx g_ctx;
static sink_buf g_sink;

static void cleanup(void) { moss_arena_destroy(g_arena); }

/* Parses the |len| bytes of |text| from an exact-size heap copy into the
 * reset arena, with diagnostics in g_sink. */
static moss_status parse_n(const char *text, size_t len, const moss_json **out_root) {
  char *copy = malloc(len ? len : 1);
  moss_status st;
  if (!g_arena) {
    if (moss_arena_create(moss_allocator_libc(), 1 << 16, &g_arena) != MOSS_OK) abort();
    atexit(cleanup);
  }
  moss_arena_reset(g_arena);
  ctx_with_sink(&g_ctx, &g_sink);
  if (!copy) abort();
  if (len) memcpy(copy, text, len);
  st = moss_json_parse(&g_ctx, g_arena, copy, len, out_root);
  free(copy);
  return st;
}

static moss_status parse(const char *text, const moss_json **out_root) {
  return parse_n(text, strlen(text), out_root);
}

static double num(const moss_json *v) {
  double d;
  return moss_json_num(v, &d) ? d : -12345.0;
}

/* ------------------------------------------------------------- values */

TEST(every_kind) {
  const moss_json *v;
  double d;
  int b;
  ASSERT_EQ(parse("null", &v), MOSS_OK);
  ASSERT_TRUE(v != NULL);
  ASSERT_EQ(moss_json_type(v), MOSS_JSON_NULL);
  ASSERT_EQ(parse(" true ", &v), MOSS_OK);
  ASSERT_EQ(moss_json_type(v), MOSS_JSON_BOOL);
  ASSERT_EQ(moss_json_bool(v, &b), 1);
  ASSERT_EQ(b, 1);
  ASSERT_EQ(parse("\tfalse\r\n", &v), MOSS_OK);
  ASSERT_EQ(moss_json_bool(v, &b), 1);
  ASSERT_EQ(b, 0);
  ASSERT_EQ(parse("42", &v), MOSS_OK);
  ASSERT_EQ(moss_json_type(v), MOSS_JSON_NUMBER);
  ASSERT_EQ(moss_json_num(v, &d), 1);
  ASSERT_TRUE(d == 42.0);
  ASSERT_EQ(parse("\"hi\"", &v), MOSS_OK);
  ASSERT_EQ(moss_json_type(v), MOSS_JSON_STRING);
  ASSERT_TRUE(!strcmp(moss_json_str(v), "hi"));
  ASSERT_EQ(parse("[]", &v), MOSS_OK);
  ASSERT_EQ(moss_json_type(v), MOSS_JSON_ARRAY);
  ASSERT_EQ(moss_json_len(v), 0);
  ASSERT_TRUE(moss_json_at(v, 0) == NULL);
  ASSERT_EQ(parse("{ }", &v), MOSS_OK);
  ASSERT_EQ(moss_json_type(v), MOSS_JSON_OBJECT);
  ASSERT_EQ(moss_json_len(v), 0);
  ASSERT_TRUE(moss_json_find(v, "a") == NULL);
  ASSERT_EQ(parse("\"\"", &v), MOSS_OK);
  ASSERT_TRUE(!strcmp(moss_json_str(v), ""));
  ASSERT_EQ(g_sink.count, 0);
}

TEST(accessors_on_the_wrong_kind) {
  const moss_json *v, *s;
  const char *key = "x";
  double d = 1;
  int b = 1;
  ASSERT_EQ(parse("[\"s\", 1, {\"k\": 2}]", &v), MOSS_OK);
  s = moss_json_at(v, 0);
  ASSERT_EQ(moss_json_type(NULL), MOSS_JSON_NULL);
  ASSERT_EQ(moss_json_len(NULL), 0);
  ASSERT_EQ(moss_json_len(s), 0);
  ASSERT_TRUE(moss_json_at(NULL, 0) == NULL);
  ASSERT_TRUE(moss_json_at(s, 0) == NULL);
  ASSERT_TRUE(moss_json_at(v, 3) == NULL);
  ASSERT_TRUE(moss_json_at(v, (size_t)-1) == NULL);
  ASSERT_TRUE(moss_json_at(moss_json_at(v, 2), 0) == NULL); /* an object is not an array */
  ASSERT_TRUE(moss_json_find(NULL, "k") == NULL);
  ASSERT_TRUE(moss_json_find(v, "k") == NULL); /* an array is not an object */
  ASSERT_TRUE(moss_json_find(moss_json_at(v, 2), NULL) == NULL);
  ASSERT_TRUE(moss_json_member(v, 0, &key) == NULL);
  ASSERT_TRUE(key == NULL);
  ASSERT_TRUE(moss_json_str(NULL) == NULL);
  ASSERT_TRUE(moss_json_str(moss_json_at(v, 1)) == NULL);
  ASSERT_EQ(moss_json_num(s, &d), 0);
  ASSERT_TRUE(d == 0);
  ASSERT_EQ(moss_json_num(NULL, &d), 0);
  ASSERT_EQ(moss_json_bool(s, &b), 0);
  ASSERT_EQ(b, 0);
}

TEST(nested) {
  const moss_json *v, *a, *o, *m;
  const char *key;
  ASSERT_EQ(parse("{\"a\": [1, {\"b\": [true, null, []]}, [[2]]], \"c\": {}, \"a\": 7,"
                  " \"d\": {\"e\": {\"f\": \"g\"}}}",
                  &v),
            MOSS_OK);
  ASSERT_EQ(moss_json_len(v), 4);
  a = moss_json_find(v, "a"); /* the first of the two */
  ASSERT_EQ(moss_json_type(a), MOSS_JSON_ARRAY);
  ASSERT_EQ(moss_json_len(a), 3);
  ASSERT_TRUE(num(moss_json_at(a, 0)) == 1);
  o = moss_json_at(a, 1);
  ASSERT_EQ(moss_json_type(o), MOSS_JSON_OBJECT);
  m = moss_json_find(o, "b");
  ASSERT_EQ(moss_json_len(m), 3);
  ASSERT_EQ(moss_json_type(moss_json_at(m, 0)), MOSS_JSON_BOOL);
  ASSERT_EQ(moss_json_type(moss_json_at(m, 1)), MOSS_JSON_NULL);
  ASSERT_TRUE(moss_json_at(m, 1) != NULL);
  ASSERT_EQ(moss_json_type(moss_json_at(m, 2)), MOSS_JSON_ARRAY);
  ASSERT_TRUE(num(moss_json_at(moss_json_at(moss_json_at(a, 2), 0), 0)) == 2);
  ASSERT_EQ(moss_json_type(moss_json_find(v, "c")), MOSS_JSON_OBJECT);
  ASSERT_EQ(moss_json_len(moss_json_find(v, "c")), 0);
  ASSERT_TRUE(
      !strcmp(moss_json_str(moss_json_find(moss_json_find(moss_json_find(v, "d"), "e"), "f")),
              "g"));
  ASSERT_TRUE(moss_json_find(v, "z") == NULL);
  ASSERT_TRUE(moss_json_find(v, "") == NULL);
  /* members in document order, duplicates included */
  ASSERT_TRUE(moss_json_member(v, 2, &key) != NULL);
  ASSERT_TRUE(!strcmp(key, "a"));
  ASSERT_TRUE(num(moss_json_member(v, 2, &key)) == 7);
  ASSERT_TRUE(moss_json_member(v, 3, &key) == moss_json_find(v, "d"));
  ASSERT_TRUE(!strcmp(key, "d"));
  ASSERT_TRUE(moss_json_member(v, 4, &key) == NULL);
  ASSERT_TRUE(key == NULL);
}

TEST(escapes) {
  const moss_json *v;
  const char *want = "\"\\/\b\f\n\r\t" "\xc3\xa9" "\xf0\x9f\x98\x80" "A" "\xe2\x82\xac";
  ASSERT_EQ(parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0041\\u20AC\"", &v),
            MOSS_OK);
  ASSERT_TRUE(!strcmp(moss_json_str(v), want));
  /* a surrogate pair alone, in upper case */
  ASSERT_EQ(parse("\"\\uD83D\\uDE00\"", &v), MOSS_OK);
  ASSERT_TRUE(!strcmp(moss_json_str(v), "\xf0\x9f\x98\x80"));
  /* the highest code point, and U+FFFF, U+0080, U+07FF, U+0800 */
  ASSERT_EQ(parse("\"\\udbff\\udfff\\uffff\\u0080\\u07ff\\u0800\"", &v), MOSS_OK);
  ASSERT_TRUE(
      !strcmp(moss_json_str(v), "\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80\xdf\xbf\xe0\xa0\x80"));
  /* raw UTF-8 passes through unchanged */
  ASSERT_EQ(parse("\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"", &v), MOSS_OK);
  ASSERT_TRUE(!strcmp(moss_json_str(v), "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac"));
  /* escapes in keys too */
  ASSERT_EQ(parse("{\"a\\nb\\u00e9\": 1}", &v), MOSS_OK);
  ASSERT_TRUE(num(moss_json_find(v, "a\nb\xc3\xa9")) == 1);
}

TEST(numbers) {
  static const struct {
    const char *text;
    double want;
  } cases[] = {
      {"0", 0},
      {"-0.5", -0.5},
      {"1e-7", 1e-7},
      {"1.25E+3", 1250},
      {"-0", -0.0},
      {"123456789", 123456789},
      {"1E2", 100},
      {"2e+0", 2},
      {"-1.5e-3", -1.5e-3},
      {"0.1", 0.1},
      {"1.2e-07", 1.2e-07},
      {"1.7976931348623157e308", 1.7976931348623157e308},
      {"4.9e-324", 4.9e-324},
      {"1e-400", 0}, /* too small: 0, not an error */
      /* longer than the reader's small buffer */
      {"0.1000000000000000055511151231257827021181583404541015625000000000000000001", 0.1},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const moss_json *v;
    double d = -1;
    if (parse(cases[i].text, &v) != MOSS_OK) FAIL_("'%s': %s", cases[i].text, g_ctx.last);
    ASSERT_EQ(moss_json_type(v), MOSS_JSON_NUMBER);
    ASSERT_EQ(moss_json_num(v, &d), 1);
    if (d != cases[i].want) FAIL_("'%s' read as %.17g, not %.17g", cases[i].text, d, cases[i].want);
  }
  {
    const moss_json *v;
    double d;
    ASSERT_EQ(parse("[-0, 0]", &v), MOSS_OK);
    ASSERT_EQ(moss_json_num(moss_json_at(v, 0), &d), 1);
    ASSERT_TRUE(d == 0 && 1 / d < 0); /* -0 keeps its sign */
    ASSERT_EQ(moss_json_num(moss_json_at(v, 1), &d), 1);
    ASSERT_TRUE(d == 0 && 1 / d > 0);
  }
}

/* A number token of a million digits: linear, and correct. */
TEST(long_number) {
  size_t n = 1000000, i;
  char *t = malloc(n + 3);
  const moss_json *v;
  moss_status st;
  ASSERT_TRUE(t != NULL);
  t[0] = '0', t[1] = '.';
  for (i = 0; i < n; i++) t[2 + i] = '5';
  st = parse_n(t, n + 2, &v);
  free(t);
  ASSERT_EQ(st, MOSS_OK);
  ASSERT_NEAR(num(v), 5.0 / 9.0, 1e-15);
}

/* The shape of the JSON cost report moss writes (compiler/cost/report.c). */
TEST(report_shaped) {
  static const char text[] =
      "{\"nodes\": [{\"name\": \"/conv/Conv\", \"op_type\": \"Conv\", \"device\": \"cpu\",\n"
      "  \"time_s\": {\"value\": 1.2e-07, \"label\": \"estimate\", \"partial\": false,"
      " \"source\": null}},\n"
      " {\"name\": \"/fc/Gemm\", \"op_type\": \"Gemm\", \"device\": \"gpu0\",\n"
      "  \"time_s\": {\"value\": null, \"label\": \"not-modeled\", \"partial\": true,"
      " \"source\": \"targets/x.xml\"}}]}\n";
  const moss_json *r, *nodes, *n0, *t0, *t1;
  double d;
  int b;
  ASSERT_EQ(parse(text, &r), MOSS_OK);
  nodes = moss_json_find(r, "nodes");
  ASSERT_EQ(moss_json_type(nodes), MOSS_JSON_ARRAY);
  ASSERT_EQ(moss_json_len(nodes), 2);
  n0 = moss_json_at(nodes, 0);
  ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(n0, "name")), "/conv/Conv"));
  ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(n0, "op_type")), "Conv"));
  ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(n0, "device")), "cpu"));
  t0 = moss_json_find(n0, "time_s");
  ASSERT_EQ(moss_json_num(moss_json_find(t0, "value"), &d), 1);
  ASSERT_TRUE(d == 1.2e-07);
  ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(t0, "label")), "estimate"));
  ASSERT_EQ(moss_json_bool(moss_json_find(t0, "partial"), &b), 1);
  ASSERT_EQ(b, 0);
  t1 = moss_json_find(moss_json_at(nodes, 1), "time_s");
  ASSERT_EQ(moss_json_type(moss_json_find(t1, "value")), MOSS_JSON_NULL);
  ASSERT_EQ(moss_json_num(moss_json_find(t1, "value"), &d), 0);
  ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(t1, "source")), "targets/x.xml"));
}

/* ------------------------------------------------------------- errors */

#define BAD(s, at) {s, sizeof s - 1, at}

TEST(malformed) {
  static const struct {
    const char *text;
    size_t len, at;
  } cases[] = {
      BAD("", 0),                                 /* empty */
      BAD("   \n", 4),                            /* only whitespace */
      BAD("[1,2,]", 5),                           /* trailing comma */
      BAD("{\"a\":1,}", 7),                       /* trailing comma in an object */
      BAD("[,1]", 1),
      BAD("{\"a\" 1}", 5),                        /* missing colon */
      BAD("{\"a\"", 4),
      BAD("{\"a\":", 5),
      BAD("{1:2}", 1),                            /* a key that is not a string */
      BAD("{'a':1}", 1),
      BAD("[1 2]", 3),                            /* missing comma */
      BAD("{\"a\":1 \"b\":2}", 7),
      BAD("[", 1),
      BAD("{", 1),
      BAD("[1}", 2),                              /* mismatched close */
      BAD("{\"a\":1]", 6),
      BAD("]", 0),
      BAD("\"abc", 4),                            /* unterminated string */
      BAD("\"\\", 2),
      BAD("\"a\\x\"", 2),                         /* bad escape */
      BAD("\"\\U0041\"", 1),
      BAD("\"\\u12\"", 1),
      BAD("\"\\u12g4\"", 1),
      BAD("\"\\ud83d\"", 1),                      /* lone high surrogate */
      BAD("\"\\ud83dx\"", 1),
      BAD("\"\\ud83d\\u0041\"", 1),
      BAD("\"\\ud83d\\ud83d\"", 1),
      BAD("\"ab\\ude00\"", 3),                    /* lone low surrogate */
      BAD("\"\\u0000\"", 1),                      /* would cut the string short */
      BAD("01", 1),                               /* leading zero */
      BAD("-01", 2),
      BAD("[00]", 2),
      BAD("1.", 2),
      BAD(".5", 0),
      BAD("+1", 0),
      BAD("1e", 2),
      BAD("1e+", 3),
      BAD("-", 1),
      BAD("-a", 1),
      BAD("0x10", 1),
      BAD("1e999", 0),                            /* too large for a double */
      BAD("-1e999", 0),
      BAD("inf", 0),
      BAD("nan", 0),
      BAD("NaN", 0),
      BAD("-Infinity", 1),
      BAD("hello", 0),                            /* bare word */
      BAD("[tru]", 1),
      BAD("True", 0),
      BAD("nul", 0),
      BAD("truex", 4),
      BAD("\"a\nb\"", 2),                         /* control characters in a string */
      BAD("\"a\tb\"", 2),
      BAD("\"\x1f\"", 1),
      BAD("{} x", 3),                             /* trailing garbage */
      BAD("[1] 2", 4),
      BAD("\"a\"\"b\"", 3),
      BAD("/* c */ 1", 0),                        /* no comments */
      BAD("[1]//", 3),
      BAD("\xef\xbb\xbf{}", 0),                   /* no byte order mark */
      BAD("\"\xc3\x28\"", 1),                     /* invalid UTF-8 */
      BAD("\"\xc0\xaf\"", 1),                     /* overlong */
      BAD("\"\xe0\x80\xaf\"", 1),
      BAD("\"\xed\xa0\x80\"", 1),                 /* a surrogate in UTF-8 */
      BAD("\"\xf4\x90\x80\x80\"", 1),             /* above U+10FFFF */
      BAD("\"\xe2\x82\"", 1),                     /* cut short */
      BAD("\"\x80\"", 1),
      BAD("\"\xff\"", 1),
      BAD("\"\xe2\x82", 1),
      BAD("[1,\0]", 3),                           /* NUL bytes */
      BAD("\"a\0b\"", 2),
      BAD("1\0", 1),
      BAD("\0", 0),
      BAD("\x01", 0),
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const moss_json *v = (const moss_json *)&i;
    char want[64];
    moss_status st = parse_n(cases[i].text, cases[i].len, &v);
    snprintf(want, sizeof want, "invalid-model: JSON: byte %zu: ", cases[i].at);
    if (st != MOSS_E_INVALID_MODEL)
      FAIL_("case %zu: status %s, message '%s'", i, moss_status_category(st), g_ctx.last);
    if (v != NULL) FAIL_("case %zu: a root after a failure", i);
    if (g_sink.count != 1) FAIL_("case %zu: %d messages:\n%s", i, g_sink.count, g_sink.text);
    if (!strstr(g_ctx.last, want)) FAIL_("case %zu: '%s' lacks '%s'", i, g_ctx.last, want);
  }
}

TEST(message_text) {
  const moss_json *v;
  ASSERT_EQ(parse("{\"a\" 1}", &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last,
                      "moss: invalid-model: JSON: byte 5: expected ':' after an object key, "
                      "found '1' [json.c:");
  ASSERT_EQ(parse("[1,2,]", &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 5: expected a value, found ']'");
  ASSERT_EQ(parse_n("\"a\0\"", 4, &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 2: control character in a string (escape it), found a "
                                  "NUL byte");
  ASSERT_EQ(parse("\"\xff\"", &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 1: invalid UTF-8 in a string, found byte 0xff");
  ASSERT_EQ(parse("\"abc", &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 4: unterminated string, found the end of the text");
  ASSERT_EQ(parse("\"\\ud83d\"", &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 1: lone high surrogate");
  ASSERT_EQ(parse("\"a\\x\"", &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 2: invalid escape '\\x' in a string [");
  ASSERT_EQ(parse_n("\"\\\n\"", 4, &v), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 2: invalid escape in a string, found byte 0x0a");
}

static char *nest(const char *open, const char *close, int depth, size_t *out_len) {
  size_t lo = strlen(open), lc = strlen(close), n = (lo + lc) * (size_t)depth + 1, i, k = 0;
  char *t = malloc(n + 1);
  if (!t) abort();
  for (i = 0; i < (size_t)depth; i++) memcpy(t + k, open, lo), k += lo;
  t[k++] = '1';
  for (i = 0; i < (size_t)depth; i++) memcpy(t + k, close, lc), k += lc;
  t[k] = 0;
  *out_len = k;
  return t;
}

TEST(nesting_limit) {
  const moss_json *v;
  size_t len;
  char *t;
  moss_status st;
  int d;
  t = nest("[", "]", 64, &len);
  st = parse_n(t, len, &v);
  free(t);
  ASSERT_EQ(st, MOSS_OK);
  for (d = 0; d < 63; d++) v = moss_json_at(v, 0);
  ASSERT_TRUE(num(moss_json_at(v, 0)) == 1);
  t = nest("[", "]", 65, &len);
  st = parse_n(t, len, &v);
  free(t);
  ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 64: arrays and objects nested more than 64 deep");
  /* objects and arrays count together */
  t = nest("{\"a\":[", "]}", 32, &len);
  st = parse_n(t, len, &v);
  free(t);
  ASSERT_EQ(st, MOSS_OK);
  t = nest("{\"a\":[", "]}", 33, &len);
  st = parse_n(t, len, &v);
  free(t);
  ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 192: arrays and objects nested");
  /* a million open brackets: refused at the limit, no recursion */
  t = nest("[", "]", 1000000, &len);
  st = parse_n(t, len, &v);
  free(t);
  ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_ctx.last, "byte 64: ");
}

static const char k_doc[] =
    "{\"model\": \"cnn\", \"nodes\": [{\"name\": \"/conv/Conv\", \"ok\": true, \"skip\": false,"
    " \"x\": null, \"time_s\": {\"value\": 1.2e-07, \"label\": \"estimate\"}},"
    " {\"name\": \"caf\\u00e9 \\ud83d\\ude00\", \"n\": [0, -0.5, 12, 1.25E+3, []]}],"
    " \"esc\": \"a\\\"b\\\\c\\/\\n\", \"e\": {}}";

/* Every proper prefix of a document is refused cleanly; the whole passes. */
TEST(every_prefix) {
  size_t len = sizeof k_doc - 1, k;
  const moss_json *v;
  ASSERT_TRUE(len >= 200);
  for (k = 0; k < len; k++) {
    moss_status st = parse_n(k_doc, k, &v);
    if (st != MOSS_E_INVALID_MODEL || v != NULL || g_sink.count != 1)
      FAIL_("prefix of %zu bytes: %s (%d messages): %s", k, moss_status_category(st), g_sink.count,
            g_ctx.last);
    ASSERT_STR_CONTAINS(g_ctx.last, "JSON: byte ");
  }
  ASSERT_EQ(parse_n(k_doc, len, &v), MOSS_OK);
  ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(moss_json_at(moss_json_find(v, "nodes"), 1),
                                                   "name")),
                      "caf\xc3\xa9 \xf0\x9f\x98\x80"));
  ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(v, "esc")), "a\"b\\c/\n"));
}

/* Random edits of the document: each is parsed or refused, never more. */
TEST(mutations) {
  static const char alphabet[] = "{}[]\",:\\u0123456789eE+-. tfnl\x00\x01\x7f\x80\xbf\xc3\xed\xff";
  size_t len = sizeof k_doc - 1;
  char buf[sizeof k_doc + 8];
  uint32_t seed = 12345;
  int i, ok = 0;
  for (i = 0; i < 20000; i++) {
    size_t n = len, pos, e;
    const moss_json *v;
    moss_status st;
    memcpy(buf, k_doc, len);
    for (e = 0; e < (size_t)(1 + i % 3); e++) {
      seed = seed * 1103515245u + 12345u;
      pos = (seed >> 8) % n;
      seed = seed * 1103515245u + 12345u;
      switch ((seed >> 16) % 3) {
      case 0: buf[pos] = alphabet[(seed >> 20) % (sizeof alphabet - 1)]; break;
      case 1: memmove(buf + pos, buf + pos + 1, n - pos - 1), n--; break;
      default:
        if (n < sizeof buf) {
          memmove(buf + pos + 1, buf + pos, n - pos), n++;
          buf[pos] = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
        }
      }
    }
    st = parse_n(buf, n, &v);
    if (st == MOSS_OK) ok++;
    else if (st != MOSS_E_INVALID_MODEL || v != NULL || g_sink.count != 1)
      FAIL_("mutation %d: %s: %s", i, moss_status_category(st), g_ctx.last);
  }
  ASSERT_TRUE(ok > 0 && ok < 20000);
}

/* 100,000 elements, and 100,000 members, each read back. */
TEST(large_containers) {
  size_t n = 100000, cap = n * 24 + 16, k = 0, i;
  char *t = malloc(cap);
  const moss_json *v;
  moss_status st;
  ASSERT_TRUE(t != NULL);
  t[k++] = '[';
  for (i = 0; i < n; i++) k += (size_t)snprintf(t + k, cap - k, "%s%zu", i ? "," : "", i);
  t[k++] = ']';
  st = parse_n(t, k, &v);
  if (st != MOSS_OK) free(t);
  ASSERT_EQ(st, MOSS_OK);
  ASSERT_EQ(moss_json_len(v), n);
  for (i = 0; i < n; i++)
    if (num(moss_json_at(v, i)) != (double)i) {
      free(t);
      FAIL_("element %zu reads %g", i, num(moss_json_at(v, i)));
    }
  k = 0;
  t[k++] = '{';
  for (i = 0; i < n; i++)
    k += (size_t)snprintf(t + k, cap - k, "%s\"k%zu\": %zu", i ? "," : "", i, i);
  t[k++] = '}';
  st = parse_n(t, k, &v);
  free(t);
  ASSERT_EQ(st, MOSS_OK);
  ASSERT_EQ(moss_json_len(v), n);
  ASSERT_TRUE(num(moss_json_find(v, "k0")) == 0);
  ASSERT_TRUE(num(moss_json_find(v, "k99999")) == 99999);
  ASSERT_TRUE(moss_json_find(v, "k100000") == NULL);
}

/* Each allocation of a parse fails in turn: out-of-memory, nothing leaked. */
TEST(allocation_failure) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_arena *ar = NULL;
    const moss_json *v = NULL;
    oom_ctx_init(&ctx);
    if (moss_arena_create(oom_allocator(), 1024, &ar) != MOSS_OK) FAIL_("arena");
    OOM_CHECK(&ctx, moss_json_parse(&ctx, ar, k_doc, sizeof k_doc - 1, &v), MOSS_OK, done);
    ASSERT_TRUE(!strcmp(moss_json_str(moss_json_find(v, "model")), "cnn"));
  done:
    moss_arena_destroy(ar);
    if (g_oom.verdict != OOM_CLEAN && v != NULL) FAIL_("a root after a failure");
  }
}

TEST_MAIN()
