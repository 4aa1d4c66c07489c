/* json.c - the strict JSON reader of json.h. It sits beside the pipeline:
 * `moss bench --profile` reads the cost report a bundle carries with it,
 * and a bundle may be forged, so every byte is checked against the bounds
 * of the text and the grammar before it is used.
 *
 * The parser is a loop over an explicit stack of open containers (at most
 * MOSS_JSON_MAX_DEPTH), not a recursion, so no input can exhaust the C
 * stack. Elements are chained in a list while their container is open and
 * copied into an array when it closes: linear time, constant-time access.
 * A string is read twice by the same function, first to check it and
 * count the bytes of its value, then to write them into an allocation of
 * exactly that size; the second reading cannot fail. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "json.h"

struct moss_json {
  moss_json_kind kind;
  union {
    int b;             /* MOSS_JSON_BOOL */
    double num;        /* MOSS_JSON_NUMBER */
    const char *str;   /* MOSS_JSON_STRING */
    moss_json **items; /* a container's values, |n| of them */
  } u;
  size_t n;         /* elements or members of a container */
  const char *key;  /* the member name, when the value is in an object */
  moss_json *next;  /* the next value while its container is open */
};

typedef struct frame {
  moss_json *node;        /* the open array or object */
  moss_json *head, *tail; /* its values so far */
  const char *key;        /* an object's key waiting for its value */
} frame;

typedef struct parser {
  moss_ctx *ctx;
  moss_arena *arena;
  const unsigned char *s;
  size_t len, pos;
} parser;

/* ------------------------------------------------------------- errors */

/* |what| followed by a description of the byte at |at|. */
static moss_status bad(parser *p, size_t at, const char *what) {
  char found[32];
  if (at >= p->len) strcpy(found, "the end of the text");
  else if (p->s[at] == 0) strcpy(found, "a NUL byte");
  else if (p->s[at] >= 0x20 && p->s[at] < 0x7f && p->s[at] != '\'') {
    found[0] = '\'', found[1] = (char)p->s[at], found[2] = '\'', found[3] = 0;
  } else {
    static const char hex[] = "0123456789abcdef";
    strcpy(found, "byte 0x00");
    found[7] = hex[p->s[at] >> 4];
    found[8] = hex[p->s[at] & 15];
  }
  return moss_fail(p->ctx, MOSS_E_INVALID_MODEL, NULL, "JSON: byte %zu: %s, found %s", at, what,
                   found);
}

/* An error whose message needs no "found": the bytes at |at| are named. */
static moss_status bad_at(parser *p, size_t at, const char *what) {
  return moss_fail(p->ctx, MOSS_E_INVALID_MODEL, NULL, "JSON: byte %zu: %s", at, what);
}

static void *alloc(parser *p, size_t size) {
  void *m = moss_arena_alloc(p->arena, size, sizeof(double));
  if (!m) moss_fail(p->ctx, MOSS_E_NOMEM, NULL, "JSON: %zu bytes for the values", size);
  return m;
}

/* ------------------------------------------------------------- tokens */

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int peek(const parser *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

static int hex4(const unsigned char *s, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    unsigned c = s[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    v = v << 4 | d;
  }
  *out = v;
  return 1;
}

/* The length of the well-formed UTF-8 sequence at |s| (|avail| bytes
 * there, the first one 0x80 or above), or 0: no overlong forms, no
 * surrogates, nothing above U+10FFFF (RFC 3629, table 3-7 of Unicode). */
static size_t utf8_len(const unsigned char *s, size_t avail) {
  unsigned c = s[0], lo = 0x80, hi = 0xbf;
  size_t n, i;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) n = 3;
  else if (c >= 0xf0 && c <= 0xf4) n = 4;
  else return 0;
  if (c == 0xe0) lo = 0xa0;
  else if (c == 0xed) hi = 0x9f;
  else if (c == 0xf0) lo = 0x90;
  else if (c == 0xf4) hi = 0x8f;
  if (avail < n || s[1] < lo || s[1] > hi) return 0;
  for (i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return n;
}

static size_t put_utf8(char *dst, unsigned cp) {
  if (cp < 0x80) {
    if (dst) dst[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    if (dst) dst[0] = (char)(0xc0 | cp >> 6), dst[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    if (dst) {
      dst[0] = (char)(0xe0 | cp >> 12);
      dst[1] = (char)(0x80 | (cp >> 6 & 0x3f));
      dst[2] = (char)(0x80 | (cp & 0x3f));
    }
    return 3;
  }
  if (dst) {
    dst[0] = (char)(0xf0 | cp >> 18);
    dst[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    dst[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
  }
  return 4;
}

/* Reads the string whose opening quote is at p->pos and leaves p->pos
 * after its closing quote. With |dst| NULL it checks the string (reporting
 * the first fault) and counts the bytes of its value into *|out_n|; with
 * |dst| it writes them, which cannot fail once a check has passed. */
static moss_status scan_string(parser *p, char *dst, size_t *out_n) {
  const unsigned char *s = p->s;
  size_t i = p->pos + 1, n = 0;
  for (;;) {
    unsigned c;
    if (i >= p->len) return bad(p, i, "unterminated string");
    c = s[i];
    if (c == '"') break;
    if (c < 0x20) return bad(p, i, "control character in a string (escape it)");
    if (c >= 0x80) {
      size_t k = utf8_len(s + i, p->len - i);
      if (k == 0) return bad(p, i, "invalid UTF-8 in a string");
      if (dst) memcpy(dst + n, s + i, k);
      n += k, i += k;
      continue;
    }
    if (c != '\\') {
      if (dst) dst[n] = (char)c;
      n++, i++;
      continue;
    }
    if (i + 1 >= p->len) return bad(p, i + 1, "unterminated escape in a string");
    switch (s[i + 1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': c = 'u'; break;
    default:
      if (s[i + 1] > 0x20 && s[i + 1] < 0x7f)
        return moss_fail(p->ctx, MOSS_E_INVALID_MODEL, NULL,
                         "JSON: byte %zu: invalid escape '\\%c' in a string", i, s[i + 1]);
      return bad(p, i + 1, "invalid escape in a string");
    }
    if (c != 'u') {
      if (dst) dst[n] = (char)c;
      n++, i += 2;
      continue;
    }
    /* \uXXXX, or a surrogate pair \uD8xx\uDCxx for a code point above U+FFFF */
    if (p->len - i < 6 || !hex4(s + i + 2, &c))
      return bad_at(p, i, "\\u must be followed by four hexadecimal digits");
    if (c == 0) return bad_at(p, i, "\\u0000 is not allowed in a string");
    if (c >= 0xdc00 && c <= 0xdfff)
      return bad_at(p, i, "lone low surrogate in a string (no high surrogate before it)");
    if (c >= 0xd800 && c <= 0xdbff) {
      unsigned lo;
      if (p->len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' || !hex4(s + i + 8, &lo) ||
          lo < 0xdc00 || lo > 0xdfff)
        return bad_at(p, i, "lone high surrogate in a string (no low surrogate after it)");
      c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
      i += 6;
    }
    n += put_utf8(dst ? dst + n : NULL, c);
    i += 6;
  }
  p->pos = i + 1;
  *out_n = n;
  return MOSS_OK;
}

static moss_status read_string(parser *p, const char **out_str) {
  size_t start = p->pos, n = 0;
  char *dst;
  *out_str = NULL;
  MOSS_TRY(scan_string(p, NULL, &n));
  /* the value is never longer than its escaped form, so n + 1 <= len */
  if (!(dst = alloc(p, n + 1))) return MOSS_E_NOMEM;
  p->pos = start;
  if (scan_string(p, dst, &n) != MOSS_OK)
    return moss_fail(p->ctx, MOSS_E_INTERNAL, NULL, "JSON: byte %zu: a string read twice differs",
                     start);
  dst[n] = 0;
  *out_str = dst;
  return MOSS_OK;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* A number by the grammar of RFC 8259 section 6, then strtod on a copy
 * of the token (the text need not be NUL-terminated). */
static moss_status read_number(parser *p, double *out_num) {
  const unsigned char *s = p->s;
  size_t start = p->pos, i = p->pos, n;
  char small[64], *tok = small, *end;
  double v;
  *out_num = 0;
  if (i < p->len && s[i] == '-') i++;
  if (i < p->len && s[i] == '0') {
    i++;
    if (i < p->len && is_digit(s[i])) return bad_at(p, i, "leading zero in a number");
  } else if (i < p->len && is_digit(s[i])) {
    while (i < p->len && is_digit(s[i])) i++;
  } else {
    return bad(p, i, "expected a digit in a number");
  }
  if (i < p->len && s[i] == '.') {
    i++;
    if (i >= p->len || !is_digit(s[i])) return bad(p, i, "expected a digit after '.'");
    while (i < p->len && is_digit(s[i])) i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= p->len || !is_digit(s[i])) return bad(p, i, "expected a digit in an exponent");
    while (i < p->len && is_digit(s[i])) i++;
  }
  n = i - start;
  if (n >= sizeof small && !(tok = alloc(p, n + 1))) return MOSS_E_NOMEM;
  memcpy(tok, s + start, n);
  tok[n] = 0;
  v = strtod(tok, &end);
  /* a locale whose decimal point is not '.' would stop strtod early */
  if (end != tok + n) return bad_at(p, start, "number not readable in this locale");
  if (isinf(v)) return bad_at(p, start, "number too large for a double");
  p->pos = i;
  *out_num = v;
  return MOSS_OK;
}

static int literal(parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return 0;
  p->pos += n;
  return 1;
}

/* A scalar at p->pos into |v|; containers are the caller's business. */
static moss_status read_scalar(parser *p, moss_json *v) {
  int c = peek(p);
  if (c == '"') {
    v->kind = MOSS_JSON_STRING;
    return read_string(p, &v->u.str);
  }
  if (c == '-' || is_digit(c)) {
    v->kind = MOSS_JSON_NUMBER;
    return read_number(p, &v->u.num);
  }
  if (c == 't' || c == 'f' || c == 'n') {
    if (literal(p, "true")) v->kind = MOSS_JSON_BOOL, v->u.b = 1;
    else if (literal(p, "false")) v->kind = MOSS_JSON_BOOL, v->u.b = 0;
    else if (literal(p, "null")) v->kind = MOSS_JSON_NULL;
    else return bad_at(p, p->pos, "invalid word (expected true, false or null)");
    return MOSS_OK;
  }
  return bad(p, p->pos, "expected a value");
}

/* An object key and the ':' after it; p->pos then is at the value. */
static moss_status read_key(parser *p, const char **out_key) {
  *out_key = NULL;
  skip_ws(p);
  if (peek(p) != '"') return bad(p, p->pos, "expected a string as an object key");
  MOSS_TRY(read_string(p, out_key));
  skip_ws(p);
  if (peek(p) != ':') return bad(p, p->pos, "expected ':' after an object key");
  p->pos++;
  return MOSS_OK;
}

/* Moves the values of the container |f| into its array. */
static moss_status close_frame(parser *p, frame *f) {
  moss_json *v, **items;
  size_t i = 0, bytes;
  if (f->node->n == 0) return MOSS_OK;
  if (!moss_size_mul(f->node->n, sizeof *items, &bytes))
    return moss_fail(p->ctx, MOSS_E_NOMEM, NULL, "JSON: %zu values", f->node->n);
  if (!(items = alloc(p, bytes))) return MOSS_E_NOMEM;
  for (v = f->head; v; v = v->next) items[i++] = v;
  f->node->u.items = items;
  return MOSS_OK;
}

moss_status moss_json_parse(moss_ctx *ctx, moss_arena *arena, const char *text, size_t len,
                            const moss_json **out_root) {
  frame stack[MOSS_JSON_MAX_DEPTH];
  int depth = 0;
  parser p;
  moss_json *v;
  *out_root = NULL;
  p.ctx = ctx;
  p.arena = arena;
  p.s = (const unsigned char *)text;
  p.len = text ? len : 0;
  p.pos = 0;
  for (;;) {
    /* a value starts here: open a container, or read a scalar */
    int c;
    skip_ws(&p);
    c = peek(&p);
    if (!(v = alloc(&p, sizeof *v))) return MOSS_E_NOMEM;
    if (c == '[' || c == '{') {
      frame *f;
      if (depth == MOSS_JSON_MAX_DEPTH)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                         "JSON: byte %zu: arrays and objects nested more than %d deep", p.pos,
                         MOSS_JSON_MAX_DEPTH);
      f = &stack[depth++];
      memset(f, 0, sizeof *f);
      f->node = v;
      v->kind = c == '[' ? MOSS_JSON_ARRAY : MOSS_JSON_OBJECT;
      p.pos++;
      skip_ws(&p);
      if (peek(&p) != (c == '[' ? ']' : '}')) {
        if (c == '{') MOSS_TRY(read_key(&p, &f->key));
        continue; /* to the first value */
      }
      p.pos++;
      depth--; /* empty: complete already */
    } else {
      MOSS_TRY(read_scalar(&p, v));
    }
    /* |v| is complete: add it to the open container, closing those that end */
    for (;;) {
      frame *f;
      int is_obj, close;
      if (depth == 0) {
        skip_ws(&p);
        if (p.pos < p.len) return bad(&p, p.pos, "expected the end of the text after the value");
        *out_root = v;
        return MOSS_OK;
      }
      f = &stack[depth - 1];
      v->key = f->key;
      f->key = NULL;
      if (f->tail) f->tail->next = v;
      else f->head = v;
      f->tail = v;
      f->node->n++;
      is_obj = f->node->kind == MOSS_JSON_OBJECT;
      close = is_obj ? '}' : ']';
      skip_ws(&p);
      if (peek(&p) == ',') {
        p.pos++;
        if (is_obj) MOSS_TRY(read_key(&p, &f->key));
        break; /* to the next value */
      }
      if (peek(&p) != close)
        return bad(&p, p.pos, is_obj ? "expected ',' or '}' after an object member"
                                     : "expected ',' or ']' after an array element");
      p.pos++;
      MOSS_TRY(close_frame(&p, f));
      v = f->node;
      depth--;
    }
  }
}

/* ------------------------------------------------------------- access */

moss_json_kind moss_json_type(const moss_json *v) { return v ? v->kind : MOSS_JSON_NULL; }

const moss_json *moss_json_find(const moss_json *obj, const char *key) {
  size_t i;
  if (!obj || obj->kind != MOSS_JSON_OBJECT || !key) return NULL;
  for (i = 0; i < obj->n; i++)
    if (strcmp(obj->u.items[i]->key, key) == 0) return obj->u.items[i];
  return NULL;
}

size_t moss_json_len(const moss_json *v) {
  return v && (v->kind == MOSS_JSON_ARRAY || v->kind == MOSS_JSON_OBJECT) ? v->n : 0;
}

const moss_json *moss_json_at(const moss_json *arr, size_t i) {
  if (!arr || arr->kind != MOSS_JSON_ARRAY || i >= arr->n) return NULL;
  return arr->u.items[i];
}

const moss_json *moss_json_member(const moss_json *obj, size_t i, const char **out_key) {
  *out_key = NULL;
  if (!obj || obj->kind != MOSS_JSON_OBJECT || i >= obj->n) return NULL;
  *out_key = obj->u.items[i]->key;
  return obj->u.items[i];
}

const char *moss_json_str(const moss_json *v) {
  return v && v->kind == MOSS_JSON_STRING ? v->u.str : NULL;
}

int moss_json_num(const moss_json *v, double *out_num) {
  *out_num = 0;
  if (!v || v->kind != MOSS_JSON_NUMBER) return 0;
  *out_num = v->u.num;
  return 1;
}

int moss_json_bool(const moss_json *v, int *out_bool) {
  *out_bool = 0;
  if (!v || v->kind != MOSS_JSON_BOOL) return 0;
  *out_bool = v->u.b;
  return 1;
}

void moss_json_put_str(moss_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  moss_buf_put(b, "\"", 1);
  for (; *p; p++) {
    if (*p == '"' || *p == '\\') moss_buf_printf(b, "\\%c", *p);
    else if (*p == '\n') moss_buf_put(b, "\\n", 2);
    else if (*p < 0x20) moss_buf_printf(b, "\\u%04x", *p);
    else moss_buf_put(b, p, 1);
  }
  moss_buf_put(b, "\"", 1);
}
