/* compare.c - `moss compare MODEL --targets a,b,c [--report FILE.html|.json]`:
 * runs the compile pipeline once per target, stopping after the cost model
 * (no code is emitted), and prints one table ranked by platform-model energy
 * with time and memory columns and the rank by each; --report also writes
 * the ranking as a self-contained HTML page with a bar chart, or as JSON
 * rows for programs (FILE.json). Rows whose
 * figure is partial or not-modeled are marked and rank after the complete
 * ones (docs/report.md). A target that fails does not stop the others: its
 * row says why. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cost/cost.h"
#include "../base/json.h"
#include "driver.h"
#include "progress.h"

#define MAX_TARGETS 64
#define ERR_CAP 600

void moss_diag_capture_sink(void *user, moss_status code, const char *msg) {
  moss_diag_capture *c = user;
  (void)code;
  if (c->n++ == 0) snprintf(c->first, sizeof c->first, "%s", msg);
}

static int is_nm(const moss_cost_figure *f) { return !strcmp(f->label, "not-modeled"); }

/* "1.23 µJ": |v| with an SI prefix; "?" for a not-modeled figure. */
static void si(const moss_cost_figure *f, const char *unit, char *buf, size_t cap) {
  static const char *pre[] = {"p", "n", "\xc2\xb5", "m", "", "k", "M", "G"};
  double v = f->value, a = fabs(v);
  int e = 4;
  if (is_nm(f)) {
    snprintf(buf, cap, "? (not-modeled)");
    return;
  }
  if (v != 0) {
    while (a < 1 && e > 0) a *= 1000, v *= 1000, e--;
    while (a >= 1000 && e < 7) a /= 1000, v /= 1000, e++;
  }
  snprintf(buf, cap, "%.3g %s%s%s", v, v == 0 ? "" : pre[e], unit, f->partial ? " (partial)" : "");
}

/* |s| then spaces up to |width| columns (UTF-8 aware), then one space. */
static void cell(moss_buf *out, const char *s, int width) {
  int cols = 0;
  const char *p;
  for (p = s; *p; p++) cols += ((unsigned char)*p & 0xc0) != 0x80;
  moss_buf_printf(out, "%s%*s ", s, cols < width ? width - cols : 0, "");
}

static double mem_of(const moss_cost_report *r) {
  return (double)r->total.arena_bytes + (double)r->total.weight_bytes;
}

/* The figure targets are ranked by: the platform-model energy (active W x
 * busy time + idle W x the rest, from the estimated time), the one figure
 * that counts the whole device; the op-model energy leaves out what the
 * target does not price, so it favours targets with the fewest figures. */
static const moss_cost_figure *rank_figure(const moss_cost_report *r) {
  return &r->total.platform_j;
}

/* 0: complete; 1: partial (a lower bound); 2: not-modeled. Complete rows
 * rank first, then partial ones (by their lower bound), then not-modeled. */
static int tier(const moss_cost_figure *f) { return is_nm(f) ? 2 : f->partial ? 1 : 0; }

/* Rank |which| (0 energy, 1 time, 2 memory) compares (tier, value). */
static void sort_key(const moss_cost_report *r, int which, int *t, double *v) {
  const moss_cost_figure *f = which == 0 ? rank_figure(r) : which == 1 ? &r->total.time_s : NULL;
  *t = f ? tier(f) : 0;
  *v = f ? (is_nm(f) ? 0 : f->value) : mem_of(r);
}

/* rank[i] = 1 + how many costed targets come before (ties share);
 * tiers[i]: the tier of its figure. */
static void ranks(moss_cost_report *const *reps, int n, int which, int *rank, int *tiers) {
  int i, j;
  for (i = 0; i < n; i++) {
    int ti;
    double vi;
    rank[i] = 0;
    tiers[i] = 0;
    if (!reps[i]) continue;
    sort_key(reps[i], which, &ti, &vi);
    rank[i] = 1;
    tiers[i] = ti;
    for (j = 0; j < n; j++) {
      int tj;
      double vj;
      if (!reps[j] || j == i) continue;
      sort_key(reps[j], which, &tj, &vj);
      rank[i] += tj < ti || (tj == ti && vj < vi);
    }
  }
}

/* "3", "4*" (partial), "5?" (not-modeled). */
static void rank_text(char *buf, size_t cap, int rank, int t) {
  snprintf(buf, cap, "%d%s", rank, t == 2 ? "?" : t == 1 ? "*" : "");
}

/* The ranking, shared by the table and the HTML page. */
typedef struct ranking {
  int m;
  int re[MAX_TARGETS], rt[MAX_TARGETS], rm[MAX_TARGETS];
  int te[MAX_TARGETS], tt[MAX_TARGETS], tm[MAX_TARGETS];
  int order[MAX_TARGETS];       /* costed targets by energy rank (then name), failed after */
} ranking;

static void rank_all(const char *const *targets, moss_cost_report *const *reps, int n,
                     ranking *k) {
  int i, j;
  k->m = n < MAX_TARGETS ? n : MAX_TARGETS;
  ranks(reps, k->m, 0, k->re, k->te);
  ranks(reps, k->m, 1, k->rt, k->tt);
  ranks(reps, k->m, 2, k->rm, k->tm);
  for (i = 0; i < k->m; i++) k->order[i] = i;
  for (i = 1; i < k->m; i++) {
    int x = k->order[i];
    for (j = i; j > 0; j--) {
      int y = k->order[j - 1], before;
      if (!reps[y]) before = reps[x] != NULL;
      else if (!reps[x]) before = 0;
      else
        before = k->re[x] < k->re[y] ||
                 (k->re[x] == k->re[y] && strcmp(targets[x], targets[y]) < 0);
      if (!before) break;
      k->order[j] = y;
    }
    k->order[j] = x;
  }
}

/* Carbon per million inferences from the ranking figure. */
static moss_cost_figure carbon_million(const moss_cost_report *r) {
  moss_cost_figure c = r->total.platform_carbon_g;
  c.value *= 1e6;
  return c;
}

void moss_compare_table(const char *const *targets, moss_cost_report *const *reps,
                        const char *const *errors, int n, moss_buf *out) {
  ranking k;
  int i, w = 6, partial = 0, starred = 0, nm = 0;
  const moss_cost_report *any = NULL;
  rank_all(targets, reps, n, &k);
  for (i = 0; i < k.m; i++)
    if ((int)strlen(targets[i]) > w) w = (int)strlen(targets[i]);
  moss_buf_printf(out, "%-4s %-*s ", "rank", w, "target");
  cell(out, "energy (platform-model)", 24);
  cell(out, "energy (op-model)", 24);
  cell(out, "time", 18);
  cell(out, "memory (arena+weights)", 26);
  cell(out, "carbon/1e6 inf. (platform)", 26);
  moss_buf_printf(out, "%5s %5s\n", "#time", "#mem");
  for (i = 0; i < k.m; i++) {
    int x = k.order[i];
    const moss_cost_report *r = reps[x];
    char e[64], p[64], t[64], mem[64], c[64], rk[16], rt[16];
    moss_cost_figure cm;
    if (!r) {
      moss_buf_printf(out, "%-4s %-*s failed: %s\n", "-", w, targets[x],
                      errors && errors[x] ? errors[x] : "unknown error");
      continue;
    }
    si(&r->total.energy_j, "J", e, sizeof e);
    si(rank_figure(r), "J", p, sizeof p);
    si(&r->total.time_s, "s", t, sizeof t);
    snprintf(mem, sizeof mem, "%lld B (%lld+%lld)", (long long)mem_of(r),
             (long long)r->total.arena_bytes, (long long)r->total.weight_bytes);
    cm = carbon_million(r);
    si(&cm, "gCO2e", c, sizeof c);
    rank_text(rk, sizeof rk, k.re[x], k.te[x]);
    rank_text(rt, sizeof rt, k.rt[x], k.tt[x]);
    moss_buf_printf(out, "%-4s %-*s ", rk, w, targets[x]);
    cell(out, p, 24);
    cell(out, e, 24);
    cell(out, t, 18);
    cell(out, mem, 26);
    cell(out, c, 26);
    moss_buf_printf(out, "%5s %5d\n", rt, k.rm[x]);
    any = r;
    partial |= r->total.energy_j.partial || rank_figure(r)->partial || r->total.time_s.partial;
    starred |= k.te[x] == 1 || k.tt[x] == 1;
    nm |= k.te[x] == 2 || k.tt[x] == 2;
  }
  if (any)
    moss_buf_printf(out, "ranked by platform-model energy (active and idle power x the estimated "
                         "time); complete figures first\n");
  if (partial)
    moss_buf_printf(out, "(partial): the target lacks some figures (not-modeled); the value covers "
                         "the rest and is a lower bound (see --report)\n");
  if (starred)
    moss_buf_printf(out, "*: ranked on a partial figure (a lower bound), after every complete "
                         "one\n");
  if (nm)
    moss_buf_printf(out, "?: no figure to rank by (not-modeled: no power or no clock); ranked "
                         "last\n");
  if (any)
    moss_buf_printf(out, "grid intensity %g gCO2e/kWh%s\n", any->grid_g_per_kwh,
                    any->grid_fallback ? " (fallback: IEA 2019 world average; give "
                                         "--grid-intensity)"
                                       : "");
}

/* ------------------------------------------------------- the HTML page */

static void hstr(moss_buf *b, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': moss_buf_put(b, "&amp;", 5); break;
    case '<': moss_buf_put(b, "&lt;", 4); break;
    case '>': moss_buf_put(b, "&gt;", 4); break;
    case '"': moss_buf_put(b, "&quot;", 6); break;
    case '\'': moss_buf_put(b, "&#39;", 5); break;
    default: moss_buf_put(b, s, 1);
    }
  }
}

static void hput(moss_buf *b, const char *s) { moss_buf_put(b, s, strlen(s)); }

/* A figure's cell, as in the cost report's HTML (compiler/cost/report.c):
 * "≥" on an amber cell when partial, "n/m" on a red one when not-modeled,
 * the label and source in the title. */
static void hfig(moss_buf *b, const moss_cost_figure *f, const char *unit) {
  char t[64];
  moss_cost_figure g = *f;
  g.partial = 0;
  moss_buf_printf(b, "<td%s title=\"",
                  is_nm(f) ? " class=\"nm\"" : f->partial ? " class=\"p\"" : "");
  hstr(b, is_nm(f) ? "not-modeled" : f->label);
  if (f->partial) hput(b, ", partial (a lower bound)");
  if (f->source && *f->source) {
    hput(b, ": ");
    hstr(b, f->source);
  }
  hput(b, "\">");
  if (is_nm(f)) hput(b, "n/m");
  else {
    si(&g, unit, t, sizeof t);
    moss_buf_printf(b, "%s%s", f->partial ? "\xe2\x89\xa5" : "", t);
  }
  hput(b, "</td>");
}

/* The page: the ranking drawn as bars of the ranking figure, then the
 * table. Self-contained (no script, nothing external) and well-formed XML,
 * like the cost report. */

/* The trade-off: one point per target with both a platform-model energy
 * and a time (log-log axes when they span more than a factor of 10), so
 * the faster-but-hungrier and the slower-but-frugal designs show apart;
 * nothing when fewer than two targets have both. */
static void trade_off(moss_buf *b, const char *const *targets, moss_cost_report *const *reps,
                      const ranking *k) {
  enum { W = 560, H = 300, L = 70, R = 20, T = 16, B = 40 };
  double emin = 0, emax = 0, tmin = 0, tmax = 0;
  int i, n = 0, le, lt;
  for (i = 0; i < k->m; i++) {
    const moss_cost_report *r = reps[i];
    double e, t;
    if (!r || is_nm(rank_figure(r)) || is_nm(&r->total.time_s)) continue;
    e = rank_figure(r)->value;
    t = r->total.time_s.value;
    if (!(e > 0) || !(t > 0)) continue;
    if (n == 0 || e < emin) emin = e;
    if (n == 0 || e > emax) emax = e;
    if (n == 0 || t < tmin) tmin = t;
    if (n == 0 || t > tmax) tmax = t;
    n++;
  }
  if (n < 2) return;
  le = emax > 10 * emin;
  lt = tmax > 10 * tmin;
#define AX(v, lo, hi, lg) ((lg) ? (log(v) - log(lo)) / (log(hi) - log(lo) + 1e-300) \
                                : ((hi) > (lo) ? ((v) - (lo)) / ((hi) - (lo)) : 0.5))
  moss_buf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"energy against time\" "
                  "font-family=\"sans-serif\" font-size=\"11\">\n"
                  "<title>Energy (platform-model) against time per inference, one point per "
                  "target</title>\n"
                  "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n"
                  "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n"
                  "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time per inference%s "
                  "(left: faster)</text>\n"
                  "<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" "
                  "text-anchor=\"middle\">platform energy%s (down: less)</text>\n",
                  W, H, W, H, L, H - B, W - R, H - B, L, T, L, H - B, (L + W - R) / 2, H - 8,
                  lt ? ", log scale" : "", (T + H - B) / 2, (T + H - B) / 2,
                  le ? ", log scale" : "");
  for (i = 0; i < k->m; i++) {
    const moss_cost_report *r = reps[i];
    moss_cost_figure fe, ft;
    char es[64], ts[64];
    double e, t, x, y;
    if (!r || is_nm(rank_figure(r)) || is_nm(&r->total.time_s)) continue;
    e = rank_figure(r)->value;
    t = r->total.time_s.value;
    if (!(e > 0) || !(t > 0)) continue;
    x = L + 12 + AX(t, tmin, tmax, lt) * (W - L - R - 24);
    y = H - B - 12 - AX(e, emin, emax, le) * (H - B - T - 24);
    fe = *rank_figure(r);
    ft = r->total.time_s;
    fe.partial = ft.partial = 0;
    si(&fe, "J", es, sizeof es);
    si(&ft, "s", ts, sizeof ts);
    moss_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"><title>", x, y,
                    rank_figure(r)->partial || r->total.time_s.partial ? "#f2c45a" : "#4e79a7");
    hstr(b, targets[i]);
    /* the label on the side with room: left of a point in the right half */
    moss_buf_printf(b, ": %s, %s</title></circle>\n<text x=\"%.1f\" y=\"%.1f\"%s>", es, ts,
                    x > (L + W - R) / 2 ? x - 8 : x + 8, y - 6,
                    x > (L + W - R) / 2 ? " text-anchor=\"end\"" : "");
    hstr(b, targets[i]);
    moss_buf_printf(b, " (%s, %s)</text>\n", es, ts);
  }
#undef AX
  hput(b, "</svg>\n");
}

static void compare_html(const char *model, const char *const *targets,
                         moss_cost_report *const *reps, const char *const *errors, int n,
                         moss_buf *b) {
  enum { LEFT = 230, BARS = 520, VALUE = 230, ROW = 24 };
  ranking k;
  int i, y;
  double most = 0;
  const moss_cost_report *any = NULL;
  rank_all(targets, reps, n, &k);
  for (i = 0; i < k.m; i++)
    if (reps[i] && !is_nm(rank_figure(reps[i])) && rank_figure(reps[i])->value > most)
      most = rank_figure(reps[i])->value;
  hput(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
          "<title>moss compare: ");
  hstr(b, model);
  hput(b, "</title>\n<style>\n"
          "body{font-family:sans-serif;margin:16px;color:#222}\n"
          "h1{font-size:1.6em;margin:0.3em 0}\n"
          "table{border-collapse:collapse;margin:0.4em 0 1em}\n"
          "th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:12px;"
          "white-space:nowrap}\n"
          "th{background:#f3f3f3}\n"
          "td.l,th.l{text-align:left}\n"
          "td.err{text-align:left;white-space:normal;overflow-wrap:anywhere;color:#b00;"
          "max-width:40em}\n"
          ".p{background:#fff0c2}\n"
          ".nm{color:#b00;background:#fde4e4;font-style:italic}\n"
          ".legend{font-size:13px}\n"
          ".legend span{padding:0 4px;border:1px solid #ccc}\n"
          "svg{max-width:100%;height:auto}\n"
          "</style>\n</head>\n<body>\n<h1>");
  hstr(b, model);
  hput(b, ": targets ranked by energy</h1>\n<p>Ranked by platform-model energy per inference "
          "(active power \xc3\x97 busy time + idle power for the rest, from the estimated "
          "time). Complete figures rank first; a <span class=\"p\">partial</span> figure is a "
          "lower bound and ranks after them; a <span class=\"nm\">not-modeled</span> one "
          "ranks last; failed targets are listed at the end.</p>\n"
          "<p class=\"legend\"><span class=\"p\">\xe2\x89\xa5" "1.2 \xc2\xb5J</span> partial: a "
          "lower bound, some of its parts are not-modeled &#160; <span class=\"nm\">n/m</span> "
          "not-modeled: the target gives no figure (not a zero) &#160; rank <b>4*</b>: ranked "
          "on a partial figure, <b>5?</b>: on none</p>\n");

  /* The chart: one bar per costed target, in rank order. */
  moss_buf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"targets ranked by energy\" "
                  "font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<title>Platform-model energy per inference, by target</title>\n",
                  LEFT + BARS + VALUE, ROW * (k.m ? k.m : 1) + 12, LEFT + BARS + VALUE,
                  ROW * (k.m ? k.m : 1) + 12);
  y = 6;
  for (i = 0; i < k.m; i++) {
    int x = k.order[i];
    const moss_cost_report *r = reps[x];
    char rk[16], t[64], name[48];
    snprintf(name, sizeof name, "%.30s%s", targets[x], strlen(targets[x]) > 30 ? "..." : "");
    if (r) rank_text(rk, sizeof rk, k.re[x], k.te[x]);
    else snprintf(rk, sizeof rk, "-");
    moss_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\"><title>", LEFT - 8, y + 14);
    hstr(b, targets[x]);
    moss_buf_printf(b, "</title>%s ", rk);
    hstr(b, name);
    hput(b, "</text>\n");
    if (!r) {
      moss_buf_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"#b00\">failed (see the table)</text>\n",
                      LEFT, y + 14);
    } else if (is_nm(rank_figure(r))) {
      moss_buf_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"#b00\">n/m (not-modeled)</text>\n",
                      LEFT, y + 14);
    } else {
      const moss_cost_figure *f = rank_figure(r);
      moss_cost_figure g = *f;
      double wd = most > 0 ? f->value / most * BARS : 0;
      g.partial = 0;
      si(&g, "J", t, sizeof t);
      if (wd > 0)
        moss_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.2f\" height=\"16\" fill=\"%s\"%s>"
                        "<title>%s%s</title></rect>\n", LEFT, y + 3, wd,
                        f->partial ? "#f2c45a" : "#4e79a7",
                        f->partial ? " stroke=\"#8a5a00\" stroke-dasharray=\"4 2\"" : "",
                        f->partial ? "at least " : "", t);
      moss_buf_printf(b, "<text x=\"%.2f\" y=\"%d\"%s>%s%s%s</text>\n", LEFT + wd + 6, y + 14,
                      f->partial ? " fill=\"#8a5a00\"" : "", f->partial ? "\xe2\x89\xa5" : "", t,
                      f->partial ? " (partial: a lower bound)" : "");
    }
    y += ROW;
  }
  hput(b, "</svg>\n");
  trade_off(b, targets, reps, &k);

  hput(b, "<table>\n<tr><th>rank</th><th class=\"l\">target</th>"
          "<th title=\"platform-model energy per inference: the ranking figure\">platform "
          "energy</th><th title=\"op-model energy per inference: MACs, bytes and idle power "
          "as the target prices them\">op-model energy</th><th>time</th>"
          "<th title=\"arena + weights\">memory</th>"
          "<th title=\"gCO2e per million inferences, from the platform-model energy\">carbon "
          "/ 10<sup>6</sup> inf.</th><th title=\"rank by time\">#time</th>"
          "<th title=\"rank by memory\">#mem</th></tr>\n");
  for (i = 0; i < k.m; i++) {
    int x = k.order[i];
    const moss_cost_report *r = reps[x];
    char rk[16], rt[16];
    moss_cost_figure cm;
    if (!r) {
      hput(b, "<tr><td>-</td><td class=\"l\">");
      hstr(b, targets[x]);
      hput(b, "</td><td class=\"err\" colspan=\"7\">failed: ");
      hstr(b, errors && errors[x] ? errors[x] : "unknown error");
      hput(b, "</td></tr>\n");
      continue;
    }
    any = r;
    rank_text(rk, sizeof rk, k.re[x], k.te[x]);
    rank_text(rt, sizeof rt, k.rt[x], k.tt[x]);
    moss_buf_printf(b, "<tr><td%s>%s</td><td class=\"l\">",
                    k.te[x] == 2 ? " class=\"nm\"" : k.te[x] == 1 ? " class=\"p\"" : "", rk);
    hstr(b, targets[x]);
    hput(b, "</td>");
    hfig(b, rank_figure(r), "J");
    hfig(b, &r->total.energy_j, "J");
    hfig(b, &r->total.time_s, "s");
    moss_buf_printf(b, "<td>%lld B (%lld + %lld)</td>", (long long)mem_of(r),
                    (long long)r->total.arena_bytes, (long long)r->total.weight_bytes);
    cm = carbon_million(r);
    hfig(b, &cm, "gCO2e");
    moss_buf_printf(b, "<td%s>%s</td><td>%d</td></tr>\n",
                    k.tt[x] == 2 ? " class=\"nm\"" : k.tt[x] == 1 ? " class=\"p\"" : "", rt,
                    k.rm[x]);
  }
  hput(b, "</table>\n");
  if (any)
    moss_buf_printf(b, "<p>Grid intensity %g gCO2e/kWh%s. Each target's own report "
                       "(<code>moss compile --report FILE.html</code>) shows the figures per "
                       "layer. Generated by moss.</p>\n",
                    any->grid_g_per_kwh,
                    any->grid_fallback ? " (fallback: IEA 2019 world average; give "
                                         "--grid-intensity)"
                                       : "");
  hput(b, "</body>\n</html>\n");
}

/* ------------------------------------------------------- the JSON rows */


/* "key": value, "key_partial": bool; the value null when not-modeled (a
 * missing figure, not a zero) or not finite. */
static void jfig(moss_buf *b, const char *key, const moss_cost_figure *f) {
  if (is_nm(f) || !isfinite(f->value)) moss_buf_printf(b, ", \"%s\": null", key);
  else moss_buf_printf(b, ", \"%s\": %.15g", key, f->value);
  moss_buf_printf(b, ", \"%s_partial\": %s", key, f->partial ? "true" : "false");
}

/* The ranking as JSON for programs (the Python package's moss.compare):
 * {"model", "ranked_by", "grid_g_per_kwh", "grid_fallback", "rows": [...]},
 * one row per target in rank order, failed targets last with "error".
 * A rank is null for a failed target; rank_text is the table's ("4*"). */
static void compare_json(const char *model, const char *const *targets,
                         moss_cost_report *const *reps, const char *const *errors, int n,
                         moss_buf *b) {
  ranking k;
  int i;
  const moss_cost_report *any = NULL;
  rank_all(targets, reps, n, &k);
  for (i = 0; i < k.m && !any; i++) any = reps[i];
  hput(b, "{\"model\": ");
  moss_json_put_str(b, model);
  hput(b, ", \"ranked_by\": \"energy_j\"");
  if (any)
    moss_buf_printf(b, ", \"grid_g_per_kwh\": %.15g, \"grid_fallback\": %s", any->grid_g_per_kwh,
                    any->grid_fallback ? "true" : "false");
  hput(b, ", \"rows\": [");
  for (i = 0; i < k.m; i++) {
    int x = k.order[i];
    const moss_cost_report *r = reps[x];
    char rk[16];
    moss_cost_figure cm;
    hput(b, i ? ",\n  {\"target\": " : "\n  {\"target\": ");
    moss_json_put_str(b, targets[x]);
    if (!r) {
      hput(b, ", \"rank\": null, \"error\": ");
      moss_json_put_str(b, errors && errors[x] ? errors[x] : "unknown error");
      hput(b, "}");
      continue;
    }
    rank_text(rk, sizeof rk, k.re[x], k.te[x]);
    moss_buf_printf(b, ", \"rank\": %d, \"rank_text\": \"%s\", \"rank_time\": %d, "
                       "\"rank_memory\": %d", k.re[x], rk, k.rt[x], k.rm[x]);
    jfig(b, "energy_j", rank_figure(r));
    jfig(b, "op_energy_j", &r->total.energy_j);
    jfig(b, "time_s", &r->total.time_s);
    moss_buf_printf(b, ", \"memory_bytes\": %lld, \"arena_bytes\": %lld, \"weight_bytes\": %lld",
                    (long long)mem_of(r), (long long)r->total.arena_bytes,
                    (long long)r->total.weight_bytes);
    cm = carbon_million(r);
    jfig(b, "carbon_g_per_million", &cm);
    hput(b, ", \"error\": null}");
  }
  hput(b, "\n]}\n");
}

/* Copies of the NAME part of NAME=VALUE arguments, freed together. */
typedef struct args {
  moss_onnx_binding b[256];
  char *names[256];
  int nb;
  char *tlist;                  /* a copy of the --targets value, split in place */
  size_t tlen;
  const char *targets[MAX_TARGETS];
  int nt;
  const char *report;           /* --report FILE.html|.json: the ranking as a page or as
                                 * JSON rows; or NULL */
} args;

static moss_status add_binding(moss_ctx *ctx, args *a, const char *arg, int is_file) {
  const char *eq = strchr(arg, '=');
  char *name;
  int i;
  if (!eq || eq == arg)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "compare: %s: expected NAME=%s, got '%s'",
                     is_file ? "--constant" : "--input-shape", is_file ? "FILE" : "SHAPE", arg);
  for (i = 0; i < a->nb; i++) /* one binding per input: a second would be ignored */
    if (strlen(a->b[i].name) == (size_t)(eq - arg) &&
        !strncmp(a->b[i].name, arg, (size_t)(eq - arg)))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "compare: %s %s: input '%s' is already bound by %s %s=%s",
                       is_file ? "--constant" : "--input-shape", arg, a->b[i].name,
                       a->b[i].file ? "--constant" : "--input-shape", a->b[i].name,
                       a->b[i].file ? a->b[i].file : a->b[i].shape);
  if (a->nb == (int)(sizeof a->b / sizeof a->b[0]))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "compare: too many bindings");
  name = moss_alloc(ctx, (size_t)(eq - arg) + 1);
  if (!name) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "arguments");
  memcpy(name, arg, (size_t)(eq - arg));
  a->names[a->nb] = name;
  a->b[a->nb].name = name;
  a->b[a->nb].shape = is_file ? NULL : eq + 1;
  a->b[a->nb].file = is_file ? eq + 1 : NULL;
  a->nb++;
  return MOSS_OK;
}

static moss_status split_targets(moss_ctx *ctx, args *a, const char *list) {
  char *p;
  const char *c;
  for (c = list;; c++) /* "a,,b", ",a", "a,": a name left out */
    if ((*c == ',' || !*c) && (c == list || c[-1] == ',')) {
      return moss_fail(ctx, MOSS_E_TARGET, NULL,
                       "compare: --targets '%s': an empty target name at character %d; give "
                       "names or XML files separated by single commas", list, (int)(c - list) + 1);
    } else if (!*c) break;
  a->tlen = strlen(list) + 1;
  a->tlist = moss_alloc(ctx, a->tlen);
  if (!a->tlist) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "arguments");
  memcpy(a->tlist, list, a->tlen);
  for (p = strtok(a->tlist, ","); p; p = strtok(NULL, ",")) {
    if (a->nt == MAX_TARGETS)
      return moss_fail(ctx, MOSS_E_TARGET, NULL, "compare: more than %d targets", MAX_TARGETS);
    a->targets[a->nt++] = p;
  }
  if (a->nt == 0) return moss_fail(ctx, MOSS_E_TARGET, NULL, "compare: --targets is empty");
  return MOSS_OK;
}

static moss_status parse(moss_ctx *ctx, int argc, char **argv, args *a, const char **model,
                         double *grid) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *s = argv[i];
    int has = i + 1 < argc;
    if ((!strcmp(s, "--targets") || !strcmp(s, "--input-shape") || !strcmp(s, "--constant") ||
         !strcmp(s, "--grid-intensity") || !strcmp(s, "--report")) && !has)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "compare: %s needs a value", s);
    if (!strcmp(s, "--targets")) {
      if (a->tlist)
        return moss_fail(ctx, MOSS_E_TARGET, NULL, "compare: --targets given twice");
      MOSS_TRY(split_targets(ctx, a, argv[++i]));
    } else if (!strcmp(s, "--input-shape")) MOSS_TRY(add_binding(ctx, a, argv[++i], 0));
    else if (!strcmp(s, "--constant")) MOSS_TRY(add_binding(ctx, a, argv[++i], 1));
    else if (!strcmp(s, "--grid-intensity")) {
      char *end;
      *grid = strtod(argv[++i], &end);
      if (*end || end == argv[i] || !(*grid > 0) || *grid > 1e5)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                         "compare: --grid-intensity wants gCO2e/kWh, a number above 0 and at "
                         "most 1e5, got '%s'", argv[i]);
    } else if (!strcmp(s, "--report")) {
      const char *dot = strrchr(argv[++i], '.');
      if (a->report) return moss_fail(ctx, MOSS_E_IO, NULL, "compare: --report given twice");
      if (!dot || (strcmp(dot, ".html") && strcmp(dot, ".json")))
        return moss_fail(ctx, MOSS_E_IO, NULL,
                         "compare: --report %s: the file name must end in .html (the ranking "
                         "as a page) or .json (as rows); each target's own report comes from "
                         "moss compile --report", argv[i]);
      a->report = argv[i];
    } else if (!strcmp(s, "-q")) moss_progress_enable(0); /* the table alone */
    else if (s[0] == '-')
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "compare: unknown option '%s'", s);
    else if (*model)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "compare: more than one model given ('%s', '%s')", *model, s);
    else *model = s;
  }
  if (!*model) return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "compare: no model given");
  if (!a->tlist) return moss_fail(ctx, MOSS_E_TARGET, NULL, "compare: no --targets a,b,c given");
  return MOSS_OK;
}

moss_status moss_compare_cli(moss_ctx *ctx, int argc, char **argv) {
  args *a = moss_alloc(ctx, sizeof *a);
  moss_cost_report *reps[MAX_TARGETS] = {0};
  char *errs[MAX_TARGETS] = {0};
  const char *model = NULL, *file = ctx->file;
  double grid = 0;
  moss_status st, first = MOSS_OK;
  int i, ok = 0;
  moss_buf out;

  if (!a) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "arguments");
  ctx->file = NULL; /* "moss: <category>: compare: ..." */
  st = parse(ctx, argc, argv, a, &model, &grid);
  ctx->file = file;
  if (st == MOSS_OK) moss_progress_begin("comparing", a->nt, "targets");
  for (i = 0; st == MOSS_OK && i < a->nt; i++) {
    moss_compile_opts o;
    moss_diag_capture cap;
    moss_diag_fn sink = ctx->sink;
    void *user = ctx->sink_user;
    moss_status ts;
    memset(&o, 0, sizeof o);
    memset(&cap, 0, sizeof cap);
    o.model = model;
    o.target = a->targets[i];
    o.bindings = a->b;
    o.nbindings = a->nb;
    o.grid_intensity = grid;
    o.no_emit = 1;
    o.cost_out = &reps[i];
    ctx->sink = moss_diag_capture_sink;
    ctx->sink_user = &cap;
    moss_progress_item(a->targets[i]);
    ts = moss_compile(ctx, &o);
    moss_progress_step(i + 1);
    ctx->sink = sink;
    ctx->sink_user = user;
    ctx->file = file;
    if (ts == MOSS_OK && !reps[i]) {
      ts = MOSS_E_INTERNAL;
      snprintf(cap.first, sizeof cap.first, "the pipeline returned no cost report");
    }
    if (ts != MOSS_OK) {
      if (reps[i]) moss_cost_destroy(ctx, reps[i]);
      reps[i] = NULL;
      errs[i] = moss_alloc(ctx, ERR_CAP);
      if (errs[i]) {
        if (cap.n > 1) snprintf(errs[i], ERR_CAP, "%s (+%d more)", cap.first, cap.n - 1);
        else snprintf(errs[i], ERR_CAP, "%s", cap.first[0] ? cap.first : "failed");
      }
      if (first == MOSS_OK) first = ts;
    } else ok++;
  }
  if (st == MOSS_OK) {
    moss_progress_end(); /* the line is cleared before the table */
    moss_buf_init(&out, ctx);
    moss_compare_table(a->targets, reps, (const char *const *)errs, a->nt, &out);
    if (out.failed) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "compare table");
    else fputs(out.data ? out.data : "", stdout);
    moss_buf_deinit(&out);
    if (st == MOSS_OK && a->report) { /* the page and the rows show failed targets too */
      const char *base = strrchr(model, '/');
      moss_buf_init(&out, ctx);
      if (!strcmp(strrchr(a->report, '.'), ".json"))
        compare_json(base ? base + 1 : model, a->targets, reps, (const char *const *)errs, a->nt,
                     &out);
      else
        compare_html(base ? base + 1 : model, a->targets, reps, (const char *const *)errs,
                     a->nt, &out);
      if (out.failed) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "compare page");
      else st = moss_file_write(ctx, a->report, out.data, out.len);
      moss_buf_deinit(&out);
    }
    if (st == MOSS_OK && !ok) { /* the failure is the command's: say why on standard error too */
      fflush(stdout);
      for (i = 0; i < a->nt; i++)
        if (errs[i] && ctx->sink) ctx->sink(ctx->sink_user, first, errs[i]);
      ctx->file = model;
      st = moss_fail(ctx, first, NULL, "compare: every target failed (%d of %d)", a->nt, a->nt);
      ctx->file = file;
    }
  }
  for (i = 0; i < a->nt; i++) {
    moss_cost_destroy(ctx, reps[i]);
    if (errs[i]) moss_free(ctx, errs[i], ERR_CAP);
  }
  for (i = 0; i < a->nb; i++) moss_free(ctx, a->names[i], strlen(a->names[i]) + 1);
  if (a->tlist) moss_free(ctx, a->tlist, a->tlen);
  moss_free(ctx, a, sizeof *a);
  return st;
}
