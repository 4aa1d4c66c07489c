/* einsum.c - Einsum: parses the equation (explicit "->" output or the
 * implicit one: ellipsis dims, then the labels used once, in alphabetical
 * order; "..." broadcast dims; repeated labels in a term take a diagonal)
 * and infers the output shape. The parser is shared with
 * backends/c/emit_einsum.c, which needs the labels again. */
#include <stdio.h>
#include <string.h>

#include "ops.h"

static int ein_label(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + c - 'a';
  return -1;
}

int moss_einsum_compute(const char *eq, int nin, moss_value *const *ins, char *err, size_t cap,
                        moss_einsum *out_e) {
  moss_einsum *e = out_e;
  char s[256];
  const char *arrow, *t;
  int i, k, p, ell[MOSS_EINSUM_MAX_IN], nlet[MOSS_EINSUM_MAX_IN], big = 0;
  int count[MOSS_EINSUM_LABELS];
  size_t l = 0;
  memset(e, 0, sizeof *e);
  memset(count, 0, sizeof count);
  for (t = eq; *t; t++)
    if (*t != ' ' && *t != '\t') {
      if (l + 1 >= sizeof s) return snprintf(err, cap, "equation too long"), -1;
      s[l++] = *t;
    }
  s[l] = 0;
  if (nin > MOSS_EINSUM_MAX_IN)
    return snprintf(err, cap, "more than %d inputs", MOSS_EINSUM_MAX_IN), -1;
  e->nin = nin;
  for (k = 0; k < MOSS_EINSUM_LABELS; k++) e->size[k] = -1;
  arrow = strstr(s, "->");
  /* First pass: letters and ellipsis per term. */
  t = s;
  for (i = 0; i < nin; i++) {
    ell[i] = -1;
    nlet[i] = 0;
    for (; *t && *t != ',' && !(t[0] == '-' && t[1] == '>'); t++) {
      if (t[0] == '.') {
        if (t[1] != '.' || t[2] != '.' || ell[i] >= 0)
          return snprintf(err, cap, "bad ellipsis in term %d", i), -1;
        ell[i] = nlet[i];
        t += 2;
      } else if (ein_label(*t) < 0) {
        return snprintf(err, cap, "bad character '%c' in the equation", *t), -1;
      } else {
        nlet[i]++;
      }
    }
    if (i + 1 < nin) {
      if (*t != ',')
        return snprintf(err, cap, "the equation has fewer terms than the %d inputs", nin), -1;
      t++;
    } else if (*t == ',') {
      return snprintf(err, cap, "the equation has more terms than the %d inputs", nin), -1;
    }
    if (!ins[i] || ins[i]->rank < 0)
      return snprintf(err, cap, "input %d has no known shape", i), -1;
    if (ell[i] < 0 && nlet[i] != ins[i]->rank)
      return snprintf(err, cap, "term %d has %d labels for rank %d", i, nlet[i], ins[i]->rank), -1;
    if (ell[i] >= 0 && nlet[i] > ins[i]->rank)
      return snprintf(err, cap, "term %d has %d labels for rank %d", i, nlet[i], ins[i]->rank), -1;
    if (ell[i] >= 0 && ins[i]->rank - nlet[i] > big) big = ins[i]->rank - nlet[i];
    e->rank[i] = ins[i]->rank;
  }
  if (big > MOSS_EINSUM_LABELS - 52)
    return snprintf(err, cap, "too many dimensions under the ellipsis"), -1;
  /* Second pass: labels per dimension and their sizes. */
  t = s;
  for (i = 0; i < nin; i++) {
    int ne = ell[i] >= 0 ? ins[i]->rank - nlet[i] : 0;
    p = 0;
    for (; *t && *t != ',' && !(t[0] == '-' && t[1] == '>'); t++) {
      if (t[0] == '.') {
        for (k = 0; k < ne; k++) e->lab[i][p++] = 52 + big - ne + k;
        t += 2;
      } else {
        e->lab[i][p++] = ein_label(*t);
      }
    }
    if (*t == ',') t++;
    for (p = 0; p < e->rank[i]; p++) {
      int lb = e->lab[i][p];
      int64_t d = ins[i]->dims[p];
      count[lb]++;
      if (e->size[lb] < 0 || e->size[lb] == 1)
        e->size[lb] = d;
      else if (d != 1 && d != e->size[lb])
        return snprintf(err, cap, "label '%c' has sizes %lld and %lld",
                        lb < 26   ? 'A' + lb
                        : lb < 52 ? 'a' + lb - 26
                                  : '.',
                        (long long)e->size[lb], (long long)d),
               -1;
    }
  }
  /* The output. */
  if (arrow) {
    int seen_ell = 0;
    for (t = arrow + 2; *t; t++) {
      int lb;
      if (t[0] == '.') {
        if (t[1] != '.' || t[2] != '.' || seen_ell)
          return snprintf(err, cap, "bad ellipsis in the output"), -1;
        seen_ell = 1;
        for (k = 0; k < big; k++) {
          if (e->orank >= MOSS_MAX_RANK)
            return snprintf(err, cap, "output rank above %d", MOSS_MAX_RANK), -1;
          e->olab[e->orank++] = 52 + k;
        }
        t += 2;
        continue;
      }
      lb = ein_label(*t);
      if (lb < 0) return snprintf(err, cap, "bad character '%c' in the output", *t), -1;
      if (!count[lb]) return snprintf(err, cap, "output label '%c' is in no input", *t), -1;
      if (e->in_out[lb]) return snprintf(err, cap, "output label '%c' repeated", *t), -1;
      if (e->orank >= MOSS_MAX_RANK)
        return snprintf(err, cap, "output rank above %d", MOSS_MAX_RANK), -1;
      e->olab[e->orank++] = lb;
      e->in_out[lb] = 1;
    }
  } else {
    for (k = 0; k < big; k++) e->olab[e->orank++] = 52 + k;
    for (k = 0; k < 52; k++)
      if (count[k] == 1) {
        if (e->orank >= MOSS_MAX_RANK)
          return snprintf(err, cap, "output rank above %d", MOSS_MAX_RANK), -1;
        e->olab[e->orank++] = k;
      }
  }
  for (k = 0; k < e->orank; k++) e->in_out[e->olab[k]] = 1;
  return 0;
}

moss_status moss_infer_einsum(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_einsum e;
  char err[160];
  int64_t dims[MOSS_MAX_RANK];
  int i;
  moss_dtype dt = n->inputs[0] ? n->inputs[0]->dtype : MOSS_DT_UNDEF;
  (void)g;
  for (i = 0; i < n->ninputs; i++) {
    MOSS_TRY(moss_need_input(ctx, n, i));
    if (n->inputs[i]->dtype != dt)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input types differ: %s and %s",
                       moss_dtype_name(dt), moss_dtype_name(n->inputs[i]->dtype));
  }
  if (!moss_arith_type(dt))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "element type %s", moss_dtype_name(dt));
  if (!moss_node_find_attr(n, "equation"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the equation attribute is missing");
  if (moss_einsum_compute(moss_attr_string(n, "equation", ""), n->ninputs, n->inputs, err,
                          sizeof err, &e))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "equation '%s': %s",
                     moss_attr_string(n, "equation", ""), err);
  for (i = 0; i < e.orank; i++) dims[i] = e.size[e.olab[i]];
  moss_set_output(n, 0, dt, e.orank, dims);
  return MOSS_OK;
}

moss_status moss_eval_einsum(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
