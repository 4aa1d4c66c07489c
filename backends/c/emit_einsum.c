/* emit_einsum.c - C for Einsum: one generic loop nest, the output labels
 * outside (in output order, so the output is written contiguously) and
 * the summed labels inside, accumulating the product of the inputs (double
 * for floats, wrapping uint64_t for integers). The equation parser repeats
 * the one in compiler/ops/einsum.c. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

/* The parsed equation. Labels: 'A'..'Z' are 0..25, 'a'..'z' 26..51 (so
 * ascending ids are the implicit output's alphabetical order), and the
 * dimensions under "..." are 52..59, aligned to the right. */
#define EIN_MAX_IN 8
#define EIN_LABELS 60

typedef struct ein {
  int nin;
  int rank[EIN_MAX_IN];
  int lab[EIN_MAX_IN][MOSS_MAX_RANK];
  int orank;
  int olab[MOSS_MAX_RANK];
  int64_t size[EIN_LABELS]; /* -1: unused */
  int in_out[EIN_LABELS];   /* the label is an output label */
} ein;

static int ein_label(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + c - 'a';
  return -1;
}

/* Parses |eq| for the inputs |ins|; 0 on success, else -1 with a reason in |err|. */
static int ein_parse(const char *eq, int nin, moss_value *const *ins, ein *e, char *err,
                     size_t cap) {
  char s[256];
  const char *arrow, *t;
  int i, k, p, ell[EIN_MAX_IN], nlet[EIN_MAX_IN], big = 0, count[EIN_LABELS];
  size_t l = 0;
  memset(e, 0, sizeof *e);
  memset(count, 0, sizeof count);
  for (t = eq; *t; t++)
    if (*t != ' ' && *t != '\t') {
      if (l + 1 >= sizeof s) return snprintf(err, cap, "equation too long"), -1;
      s[l++] = *t;
    }
  s[l] = 0;
  if (nin > EIN_MAX_IN) return snprintf(err, cap, "more than %d inputs", EIN_MAX_IN), -1;
  e->nin = nin;
  for (k = 0; k < EIN_LABELS; k++) e->size[k] = -1;
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
  if (big > EIN_LABELS - 52)
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

moss_status moss_c_emit_einsum(moss_cgen *cg, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  moss_dtype dt = y->dtype;
  const char *T = moss_dtype_ctype(dt);
  int isf = moss_dtype_is_float(dt), sgn = moss_dtype_is_signed(dt);
  ein e;
  char err[160], prod[2048], oidx[512];
  int i, k, p, depth = 0, sum[EIN_LABELS], nsum = 0;
  size_t lp = 0, lo = 0;
  if (ein_parse(moss_attr_string(n, "equation", ""), n->ninputs, n->inputs, &e, err, sizeof err))
    return moss_fail(cg->ctx, MOSS_E_INVALID_MODEL, n, "equation: %s", err);
  if (moss_value_numel(y) == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  for (k = 0; k < EIN_LABELS; k++)
    if (e.size[k] >= 0 && !e.in_out[k]) sum[nsum++] = k;
  /* The product of the inputs at the current labels. */
  prod[0] = 0;
  for (i = 0; i < e.nin; i++) {
    const moss_value *x = n->inputs[i];
    int64_t stride = 1;
    char idx[512];
    size_t li = 0;
    idx[0] = 0;
    for (p = e.rank[i] - 1; p >= 0; p--) {
      if (x->dims[p] != 1 && li < sizeof idx)
        li += (size_t)snprintf(idx + li, sizeof idx - li, "%se%d * %lld", li ? " + " : "",
                               e.lab[i][p], (long long)stride);
      stride *= x->dims[p];
    }
    if (!idx[0]) snprintf(idx, sizeof idx, "0");
    if (lp < sizeof prod) {
      if (isf)
        lp += (size_t)snprintf(prod + lp, sizeof prod - lp, "%s(double)x%d[%s]", i ? " * " : "", i,
                               idx);
      else
        lp += (size_t)snprintf(prod + lp, sizeof prod - lp, "%s(uint64_t)%sx%d[%s]", i ? " * " : "",
                               sgn ? "(int64_t)" : "", i, idx);
    }
  }
  {
    int64_t stride = 1;
    oidx[0] = 0;
    for (k = e.orank - 1; k >= 0; k--) {
      if (y->dims[k] != 1 && lo < sizeof oidx)
        lo += (size_t)snprintf(oidx + lo, sizeof oidx - lo, "%se%d * %lld", lo ? " + " : "",
                               e.olab[k], (long long)stride);
      stride *= y->dims[k];
    }
    if (!oidx[0]) snprintf(oidx, sizeof oidx, "0");
  }
  for (k = 0; k < e.orank; k++, depth++)
    moss_c_open(cg, "for (long e%d = 0; e%d < %lld; e%d++)", e.olab[k], e.olab[k],
                (long long)y->dims[k], e.olab[k]);
  moss_c_line(cg, "%s acc = 0;", isf ? "double" : "uint64_t");
  for (k = 0; k < nsum; k++)
    moss_c_open(cg, "for (long e%d = 0; e%d < %lld; e%d++)", sum[k], sum[k],
                (long long)e.size[sum[k]], sum[k]);
  moss_c_line(cg, "acc += %s;", prod);
  for (k = 0; k < nsum; k++) moss_c_close(cg);
  moss_c_line(cg, "y0[%s] = (%s)acc;", oidx, T);
  while (depth--) moss_c_close(cg);
  return MOSS_OK;
}
