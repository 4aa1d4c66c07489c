/* json.h - a small, strict JSON reader (RFC 8259) for text moss did not
 * write itself, such as the cost report a .moss bundle carries, which may
 * be forged. It reads a whole document into immutable values in an arena;
 * there is no writer and no streaming.
 *
 * Strict: no comments, no trailing commas, no leading '+', no leading
 * zeros, no "inf"/"nan"/hex numbers, no byte order mark, whitespace only
 * between tokens; strings must be valid UTF-8 with no raw control
 * characters, and "\u0000" is refused, so every string is NUL-terminated
 * and holds no NUL. Containers nest at most MOSS_JSON_MAX_DEPTH deep. The
 * reader does not recurse and runs in time linear in the input. */
#ifndef MOSS_JSON_H
#define MOSS_JSON_H

#include <stddef.h>

#include "base.h"

/* Arrays and objects, counted together: "[[1]]" is 2 deep. */
#define MOSS_JSON_MAX_DEPTH 64

typedef enum moss_json_kind {
  MOSS_JSON_NULL,
  MOSS_JSON_BOOL,
  MOSS_JSON_NUMBER,
  MOSS_JSON_STRING,
  MOSS_JSON_ARRAY,
  MOSS_JSON_OBJECT
} moss_json_kind;

/* A parsed value. Immutable once moss_json_parse has returned, so values
 * may be read from several threads at once. */
typedef struct moss_json moss_json;

/* Parses the |len| bytes of |text| (need not be NUL-terminated; NULL only
 * when |len| is 0) as one JSON value. A NUL byte anywhere in them is an
 * error. The values are allocated from |arena| and live until it is reset
 * or destroyed; on failure what was allocated stays in |arena| too. On
 * success *|out_root| is the top-level value; it is NULL on entry and
 * after a failure.
 *
 * Errors, each reported through |ctx| once:
 *   MOSS_E_INVALID_MODEL  the text is not JSON in the subset above; the
 *                         message names the byte offset (from 0) and what
 *                         was wrong: "JSON: byte 123: expected ':' after
 *                         an object key". The caller names the file
 *                         (ctx->file) or adds context of its own.
 *   MOSS_E_NOMEM          |arena| could not allocate.
 * Not thread-safe with respect to |ctx| and |arena|. */
moss_status moss_json_parse(moss_ctx *ctx, moss_arena *arena, const char *text, size_t len,
                            const moss_json **out_root);

/* The kind of |v|; MOSS_JSON_NULL when |v| is NULL, so a missing member
 * reads like a null one (check moss_json_find for NULL to tell them apart). */
moss_json_kind moss_json_type(const moss_json *v);

/* The value of the first member of the object |obj| called |key| (compared
 * byte for byte after unescaping), in time linear in the members; NULL
 * when there is none or |obj| is not an object. */
const moss_json *moss_json_find(const moss_json *obj, const char *key);

/* The elements of an array or members of an object; 0 for anything else. */
size_t moss_json_len(const moss_json *v);

/* Element |i| of the array |arr|, in constant time; NULL when |arr| is not
 * an array or |i| is out of range. */
const moss_json *moss_json_at(const moss_json *arr, size_t i);

/* The member at |i| of the object |obj|, in document order, with its key
 * in *|out_key|; NULL (and *|out_key| NULL) when |obj| is not an object or
 * |i| is out of range. For walking every member, duplicates included. */
const moss_json *moss_json_member(const moss_json *obj, size_t i, const char **out_key);

/* The unescaped UTF-8 text of the string |v|, NUL-terminated, owned by
 * the arena; NULL when |v| is not a string. */
const char *moss_json_str(const moss_json *v);

/* 1 and the number in *|out_num| when |v| is a number (always finite: a
 * number too large for a double is a parse error, one too small reads as
 * 0 or a subnormal); otherwise 0 and *|out_num| is 0. */
int moss_json_num(const moss_json *v, double *out_num);

/* 1 and the value in *|out_bool| (0 or 1) when |v| is true or false;
 * otherwise 0 and *|out_bool| is 0. */
int moss_json_bool(const moss_json *v, int *out_bool);

/* Appends |s| (NULL: "") to |b| as a JSON string: quoted, with '"', '\\'
 * and control characters escaped. For the reports moss writes. */
void moss_json_put_str(moss_buf *b, const char *s);

#endif
