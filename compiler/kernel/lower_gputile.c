/* lower_gputile.c - a float matrix product as GPU work-group tiles
 * (lower.h, moss_gtile): the fast path of Gemm, MatMul and Conv on a GPU
 * whose work-group limits the target gives (moss_kernel_cpu.group_max,
 * group_bytes).
 *
 * Each work-group computes a BM x BN block of Y with T = LM x LN lanes,
 * each lane TM x TN outputs held in variables (registers). The K axis is
 * walked in steps of BK: the lanes copy A's BM x BK and B's BK x BN
 * blocks into SHARED memory together (each lane a few elements, with
 * consecutive lanes on the operand's contiguous axis, so the reads of a
 * warp are coalesced; outside the matrices the copy is 0), meet at a
 * barrier, then each lane multiplies-and-adds from SHARED memory, and they
 * meet again before the next copy. A lane's outputs are the rows
 * tm + r LM and the columns tn + c LN of the block (r < TM, c < TN), so
 * consecutive lanes read consecutive SHARED words (no bank conflicts; the
 * blocks' rows are padded by one word for the copy) and store consecutive
 * columns of Y. Each output sums its products in k order, from its
 * initial value (0, or a Conv's bias), with one fused multiply-add per
 * product (float32), or an int32 multiply and add (the int8 products,
 * their operands widened and centered on their zero points as they are
 * copied: integer sums wrap, so any order gives the CPU's bits); then the
 * caller's epilogue stores it. On a GPU with a packed byte dot product
 * (cpu.gpu_dot4) an int8 product whose operands shift into signed bytes
 * (moss_gtile.dot4) copies four k's a word and sums with DOT4S, four
 * products an instruction, then takes the shifts' terms off.
 *
 * The block shape comes from the target: T is the largest power of two
 * of at most 256 lanes within max-workgroup-size (LN = 16 lanes along N:
 * 64 bytes of Y per row of lanes), BM and BN the candidates whose padding
 * and copies cost least for the product's M and N, BK = 16 (8 where
 * local-memory-bytes is small). */
#include <stdio.h>
#include <string.h>

#include "lower.h"

#define LN 16 /* lanes along N */

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The block shape for |t| on |cpu|; 0 when the GPU's limits leave none. */
static int shape(const moss_kernel_cpu *cpu, const moss_gtile *t, int *bm, int *bn, int *bk, int *lanes) {
  int T = 256, lm, i, j, best = 0;
  double cost = 0;
  if (cpu->group_max < 64 || cpu->group_bytes <= 0) return 0;
  while (T > cpu->group_max) T /= 2;
  lm = T / LN;
  for (i = 0; i < 3; i++)
    for (j = 0; j < 2; j++) {
      int m = lm << (2 - i), n = 64 >> j, k = 16;
      double c;
      while (k >= 8 && (int64_t)k * (m + 1 + n + 1) * 4 > cpu->group_bytes) k /= 2;
      if (k < 8) continue;
      /* the padded work, and the copies per product: (1/BM + 1/BN) */
      c = (double)(cdiv(t->M, m) * m) * (double)(cdiv(t->N, n) * n) * (1.0 + 16.0 / m + 16.0 / n);
      if (!best || c < cost) {
        best = 1;
        cost = c;
        *bm = m;
        *bn = n;
        *bk = k;
      }
    }
  *lanes = T;
  return best;
}

int moss_gtile_takes(const moss_kernel_cpu *cpu, const moss_gtile *t) {
  int bm, bn, bk, T;
  /* Small products gain nothing from the copies: one work-item per output does. */
  return cpu->gpu && (t->dt == MOSS_DT_F32 || t->dt == MOSS_DT_I32) && t->M * t->N * t->K >= ((int64_t)1 << 18) &&
         t->K >= 16 &&
         t->M * t->N >= 4096 && shape(cpu, t, &bm, &bn, &bk, &T);
}

/* The lanes' copy of one operand block into SHARED |sbuf|: |rows| (k) x
 * |cols| words (m of A, n of B), each row padded by one word. Lane t
 * copies the elements e = l T + t; with |across| consecutive e walk the
 * columns, else the rows (the operand's contiguous axis). */
/* Four k's of one operand from k = 4 |r| on, shifted by |off| into signed
 * bytes, packed low k first into an int32 word (through uint32: the bytes'
 * shifts are bit operations). */
static moss_kx *packed(moss_kb *b, const moss_gtile *t, moss_kx *k0, moss_kx *r, moss_kx *gc, int a_operand) {
  moss_kx *w = NULL;
  int j;
  for (j = 0; j < 4; j++) {
    moss_kx *gk = moss_k_add(b, k0, moss_k_addc(b, moss_k_mulc(b, r, 4), j)), *v, *byte;
    int64_t off = a_operand ? t->a_off : t->b_off;
    v = a_operand ? t->load_a(b, t->arg, gc, gk) : t->load_b(b, t->arg, gk, gc);
    if (off) v = moss_k_bin(b, MOSS_KX_ADD, v, moss_k_int(b, MOSS_DT_I32, off));
    byte = moss_k_cast(b, MOSS_DT_U32, moss_k_bin(b, MOSS_KX_BAND, v, moss_k_int(b, MOSS_DT_I32, 255)));
    if (j) byte = moss_k_bin(b, MOSS_KX_SHL, byte, moss_k_int(b, MOSS_DT_U32, 8 * j));
    w = w ? moss_k_bin(b, MOSS_KX_BOR, w, byte) : byte;
  }
  return moss_k_cast(b, MOSS_DT_I32, w);
}

static void copy_block(moss_kb *b, const moss_gtile *t, int sbuf, int rows, int cols, int T, int across,
                       moss_kx *lane, moss_kx *k0, moss_kx *c0, int a_operand) {
  int64_t total = (int64_t)rows * cols;
  int l;
  for (l = 0; (int64_t)l * T < total; l++) {
    moss_kx *e = moss_k_addc(b, lane, (int64_t)l * T), *r, *c, *gk, *gc, *v;
    int guard = (int64_t)(l + 1) * T > total;
    if (guard) moss_k_if(b, moss_k_bin(b, MOSS_KX_LT, e, moss_k_idx(b, total)));
    if (across) {
      r = moss_k_bin(b, MOSS_KX_DIV, e, moss_k_idx(b, cols));
      c = moss_k_bin(b, MOSS_KX_REM, e, moss_k_idx(b, cols));
    } else {
      c = moss_k_bin(b, MOSS_KX_DIV, e, moss_k_idx(b, rows));
      r = moss_k_bin(b, MOSS_KX_REM, e, moss_k_idx(b, rows));
    }
    gc = moss_k_add(b, c0, c);
    if (t->dot4) { /* row r holds k = 4r .. 4r + 3 */
      v = packed(b, t, k0, r, gc, a_operand);
    } else {
      gk = moss_k_add(b, k0, r);
      v = a_operand ? t->load_a(b, t->arg, gc, gk) : t->load_b(b, t->arg, gk, gc);
    }
    moss_k_store(b, sbuf, moss_k_add(b, moss_k_mulc(b, r, cols + 1), c), v);
    if (guard) moss_k_end(b);
  }
}

void moss_gtile_set(moss_gtile *t, moss_dtype dt, int64_t M, int64_t N, int64_t K,
                    moss_kx *(*load_a)(moss_kb *, const void *, moss_kx *, moss_kx *),
                    moss_kx *(*load_b)(moss_kb *, const void *, moss_kx *, moss_kx *),
                    void (*store)(moss_kb *, const void *, moss_kx *, moss_kx *, moss_kx *), const void *arg) {
  memset(t, 0, sizeof *t);
  t->dt = dt;
  t->M = M;
  t->N = N;
  t->K = K;
  t->a_k_contig = 1;
  t->b_n_contig = 1;
  t->load_a = load_a;
  t->load_b = load_b;
  t->store = store;
  t->arg = arg;
}

int moss_gtile_dot4_off(const moss_node *n, int raw, int zp, int64_t *out_off) {
  const moss_value *x = moss_node_input(n, raw), *z = moss_node_input(n, zp);
  int64_t v = 0, i, cnt;
  *out_off = 0;
  if (!x || (x->dtype != MOSS_DT_I8 && x->dtype != MOSS_DT_U8)) return 0;
  if (z) {
    if (!z->data || (cnt = moss_value_numel(z)) < 1) return 0;
    v = moss_value_get_i64(z, 0);
    for (i = 1; i < cnt; i++)
      if (moss_value_get_i64(z, i) != v) return 0;
  }
  *out_off = x->dtype == MOSS_DT_U8 ? v - 128 : v;
  return 1;
}

static moss_kx *below(moss_kb *b, moss_kx *v, int64_t hi) { return moss_k_bin(b, MOSS_KX_LT, v, moss_k_idx(b, hi)); }

moss_kx *moss_gtile_patch(moss_kb *b, const moss_gtile_conv *c, moss_kx *img, moss_kx *k, moss_kx *pos,
                          moss_kx **in) {
  int64_t taps = 1, outs = 1, ins = 1, ko = 1, oo = 1, io = 1;
  int d, pointwise = 1;
  moss_kx *at, *q;
  for (d = 0; d < c->nsp; d++) {
    taps *= c->k[d];
    outs *= c->out[d];
    ins *= c->in[d];
    if (c->k[d] != 1 || c->s[d] != 1 || c->p[d] != 0 || c->in[d] != c->out[d]) pointwise = 0;
  }
  *in = moss_k_bin(b, MOSS_KX_LAND, below(b, k, c->C * taps), below(b, pos, outs));
  at = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, img, c->C),
                                 taps > 1 ? moss_k_bin(b, MOSS_KX_DIV, k, moss_k_idx(b, taps)) : k), ins);
  if (pointwise) return moss_k_add(b, at, pos);
  q = moss_k_bin(b, MOSS_KX_REM, k, moss_k_idx(b, taps));
  for (d = c->nsp - 1; d >= 0; d--) { /* innermost dimension first */
    moss_kx *o = moss_k_bin(b, MOSS_KX_REM, moss_k_bin(b, MOSS_KX_DIV, pos, moss_k_idx(b, oo)), moss_k_idx(b, c->out[d]));
    moss_kx *kd = moss_k_bin(b, MOSS_KX_REM, moss_k_bin(b, MOSS_KX_DIV, q, moss_k_idx(b, ko)), moss_k_idx(b, c->k[d]));
    moss_kx *i = moss_k_addc(b, moss_k_add(b, moss_k_mulc(b, o, c->s[d]), moss_k_mulc(b, kd, c->d[d])), -c->p[d]);
    *in = moss_k_bin(b, MOSS_KX_LAND, *in,
                     moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GE, i, moss_k_idx(b, 0)), below(b, i, c->in[d])));
    at = moss_k_add(b, at, moss_k_mulc(b, i, io));
    ko *= c->k[d];
    oo *= c->out[d];
    io *= c->in[d];
  }
  return at;
}

/* v - s c, in int32. */
static moss_kx *minus_times(moss_kb *b, moss_kx *v, moss_kx *s, int64_t c) {
  return moss_k_bin(b, MOSS_KX_SUB, v, moss_k_bin(b, MOSS_KX_MUL, s, moss_k_int(b, MOSS_DT_I32, c)));
}

void moss_gtile_product(moss_kb *b, const moss_gtile *t) {
  int BM = 0, BN = 0, BK = 0, T = 0, LM, TM, TN, r, c, KR, dot4 = t->dot4 && b->cpu.gpu_dot4 && t->dt == MOSS_DT_I32;
  int64_t GN;
  int sa, sb;
  moss_kx *g, *m0, *n0, *lane, *tm, *tn, *k0, *kk, *acc[16], *av[4], *bv[4], *sum_a[4], *sum_b[4], *ones = NULL;
  char name[24];
  if (!shape(&b->cpu, t, &BM, &BN, &BK, &T)) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "GPU tile: no block shape within the work-group limits");
    return;
  }
  LM = T / LN;
  TM = BM / LM;
  TN = BN / LN;
  GN = cdiv(t->N, BN);
  KR = dot4 ? BK / 4 : BK; /* shared rows: k's, or words of four k's */
  moss_k_comment(b, "work-group tiles of %dx%d outputs, %d lanes of %dx%d, k in steps of %d through shared memory%s",
                 BM, BN, T, TM, TN, BK, dot4 ? ", four signed bytes a word (DOT4S)" : "");
  /* A's block transposed: sa[k][m] (KR rows of BM + 1), B's: sb[k][n] (KR rows of BN + 1). */
  sa = moss_k_shared(b, "sa", t->dt, (int64_t)KR * (BM + 1));
  sb = moss_k_shared(b, "sb", t->dt, (int64_t)KR * (BN + 1));
  g = moss_k_range(b, "g", cdiv(t->M, BM) * GN, MOSS_KL_PARALLEL);
  m0 = moss_k_let(b, "m0", moss_k_mulc(b, moss_k_bin(b, MOSS_KX_DIV, g, moss_k_idx(b, GN)), BM));
  n0 = moss_k_let(b, "n0", moss_k_mulc(b, moss_k_bin(b, MOSS_KX_REM, g, moss_k_idx(b, GN)), BN));
  lane = moss_k_range(b, "t", T, MOSS_KL_GROUP);
  tm = moss_k_let(b, "tm", moss_k_bin(b, MOSS_KX_DIV, lane, moss_k_idx(b, LN)));
  tn = moss_k_let(b, "tn", moss_k_bin(b, MOSS_KX_REM, lane, moss_k_idx(b, LN)));
  for (r = 0; r < TM; r++) {
    moss_kx *init = t->init ? t->init(b, t->arg, moss_k_add(b, m0, moss_k_addc(b, tm, (int64_t)r * LM)))
                  : t->dt == MOSS_DT_F32 ? moss_k_flt(b, t->dt, 0.0) : moss_k_int(b, t->dt, 0);
    for (c = 0; c < TN; c++) {
      snprintf(name, sizeof name, "acc%d_%d", r, c);
      acc[r * TN + c] = moss_k_let(b, name, init);
    }
  }
  if (dot4) { /* the sums of each lane's shifted A rows and B columns, for the shifts' terms */
    ones = moss_k_int(b, MOSS_DT_I32, 0x01010101);
    for (r = 0; r < TM && t->b_off; r++) {
      snprintf(name, sizeof name, "sa%d", r);
      sum_a[r] = moss_k_let(b, name, moss_k_int(b, MOSS_DT_I32, 0));
    }
    for (c = 0; c < TN && t->a_off; c++) {
      snprintf(name, sizeof name, "sb%d", c);
      sum_b[c] = moss_k_let(b, name, moss_k_int(b, MOSS_DT_I32, 0));
    }
  }
  k0 = moss_k_for(b, "k0", moss_k_idx(b, 0), moss_k_idx(b, t->K), BK, MOSS_KL_SERIAL, 0);
  /* sa[k][m] = A(m0 + m, k0 + k), sb[k][n] = B(k0 + k, n0 + n) */
  copy_block(b, t, sa, KR, BM, T, !t->a_k_contig, lane, k0, m0, 1);
  copy_block(b, t, sb, KR, BN, T, t->b_n_contig, lane, k0, n0, 0);
  moss_k_barrier(b);
  kk = moss_k_range(b, "kk", KR, MOSS_KL_SERIAL);
  for (r = 0; r < TM; r++) {
    snprintf(name, sizeof name, "a%d", r);
    av[r] = moss_k_let(b, name, moss_k_load(b, sa, moss_k_add(b, moss_k_mulc(b, kk, BM + 1),
                                                              moss_k_addc(b, tm, (int64_t)r * LM))));
  }
  for (c = 0; c < TN; c++) {
    snprintf(name, sizeof name, "b%d", c);
    bv[c] = moss_k_let(b, name, moss_k_load(b, sb, moss_k_add(b, moss_k_mulc(b, kk, BN + 1),
                                                              moss_k_addc(b, tn, (int64_t)c * LN))));
  }
  for (r = 0; r < TM; r++)
    for (c = 0; c < TN; c++)
      moss_k_set(b, acc[r * TN + c],
                 dot4 ? moss_k_call(b, MOSS_KFN_DOT4S, acc[r * TN + c], bv[c], av[r])
                 : t->dt == MOSS_DT_F32
                     ? moss_k_call(b, MOSS_KFN_FMA, av[r], bv[c], acc[r * TN + c])
                     : moss_k_bin(b, MOSS_KX_ADD, acc[r * TN + c], moss_k_bin(b, MOSS_KX_MUL, av[r], bv[c])));
  for (r = 0; dot4 && t->b_off && r < TM; r++)
    moss_k_set(b, sum_a[r], moss_k_call(b, MOSS_KFN_DOT4S, sum_a[r], ones, av[r]));
  for (c = 0; dot4 && t->a_off && c < TN; c++)
    moss_k_set(b, sum_b[c], moss_k_call(b, MOSS_KFN_DOT4S, sum_b[c], bv[c], ones));
  moss_k_end(b); /* kk */
  moss_k_barrier(b);
  moss_k_end(b); /* k0 */
  for (r = 0; r < TM; r++)
    for (c = 0; c < TN; c++) {
      moss_kx *m = moss_k_add(b, m0, moss_k_addc(b, tm, (int64_t)r * LM));
      moss_kx *n = moss_k_add(b, n0, moss_k_addc(b, tn, (int64_t)c * LN));
      moss_kx *v = acc[r * TN + c];
      moss_k_if(b, moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_LT, m, moss_k_idx(b, t->M)),
                              moss_k_bin(b, MOSS_KX_LT, n, moss_k_idx(b, t->N))));
      if (dot4) { /* sum AB = sum A'B' - b_off sum A' - a_off sum B' + Kp a_off b_off, over Kp k's */
        int64_t kp = cdiv(t->K, BK) * BK;
        if (t->b_off) v = minus_times(b, v, sum_a[r], t->b_off);
        if (t->a_off) v = minus_times(b, v, sum_b[c], t->a_off);
        if (t->a_off && t->b_off)
          v = moss_k_bin(b, MOSS_KX_ADD, v, moss_k_int(b, MOSS_DT_I32, (int32_t)(kp * t->a_off * t->b_off)));
      }
      t->store(b, t->arg, m, n, v);
      moss_k_end(b);
    }
  moss_k_end(b); /* t */
  moss_k_end(b); /* g */
}
