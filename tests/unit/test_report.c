/* test_report.c - what the cost reports show (compiler/cost/report.c) and
 * how `moss compare` ranks (compiler/driver/compare.c): the renderers, on
 * reports of data/cost/matmul_relu.onnx costed through the pipeline. The
 * figures themselves are test_cost.c's business; here the expected cells
 * come from the report's own figures and the documented rules
 * (docs/report.md): which CSV column carries a partial figure, what marks a
 * partial or not-modeled HTML cell, which way the ratio goes, how a long
 * name fits the chart, and the order of the compare table.
 *
 * The fixtures: cost-cpu.xml (every figure given: complete totals) and
 * cost-no-mac.xml (no f32 MAC energy, no power, a level without energy: the
 * op-model energy is partial, the static and platform energy not-modeled). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cost/cost.h"
#include "driver/driver.h"
#include "harness.h"

#define DATA MOSS_TEST_DATA_DIR "/cost/"
#define OUT MOSS_TEST_OUT_DIR "/"
#define GE "\xe2\x89\xa5"

static moss_cost_report *report(moss_ctx *ctx, const char *target, double grid) {
  moss_compile_opts o;
  moss_cost_report *r = NULL;
  memset(&o, 0, sizeof o);
  o.model = DATA "matmul_relu.onnx";
  o.target = target;
  o.grid_intensity = grid;
  o.no_emit = 1;
  o.cost_out = &r;
  if (moss_compile(ctx, &o) != MOSS_OK) return NULL;
  return r;
}

/* ------------------------------------------------ a CSV reader for the test */

#define MAX_ROWS 16
#define MAX_COLS 64
typedef struct csv {
  char *text;
  int nrows, ncols;
  char *cell[MAX_ROWS][MAX_COLS];
} csv;

/* Splits |text| (modified in place) into rows and cells; "..." quoting with
 * "" inside. Returns 0 when a row has another number of cells than the header. */
static int csv_parse(csv *c, char *text) {
  char *p = text, *w;
  memset(c, 0, sizeof *c);
  c->text = text;
  while (*p && c->nrows < MAX_ROWS) {
    int col = 0;
    for (;;) {
      int quoted = *p == '"';
      if (quoted) p++;
      c->cell[c->nrows][col] = w = p;
      while (*p) {
        if (quoted && *p == '"' && p[1] == '"') *w++ = '"', p += 2;
        else if (quoted && *p == '"') quoted = 0, p++;
        else if (!quoted && (*p == ',' || *p == '\n')) break;
        else *w++ = *p++;
      }
      if (col < MAX_COLS - 1) col++;
      if (*p == ',') {
        *w = 0, p++;
        continue;
      }
      if (*p == '\n') *w = 0, p++;
      else *w = 0;
      break;
    }
    if (c->nrows == 0) c->ncols = col;
    else if (col != c->ncols) return 0;
    c->nrows++;
  }
  return 1;
}

/* The cell of column |name| in row |row| (0: the header); NULL: no such column. */
static const char *at(const csv *c, int row, const char *name) {
  int k;
  for (k = 0; k < c->ncols; k++)
    if (!strcmp(c->cell[0][k], name)) return c->cell[row][k];
  return NULL;
}

/* The first row whose column "row" is |kind| and "name" is |name| (NULL: any). */
static int find_row(const csv *c, const char *kind, const char *name) {
  int i;
  for (i = 1; i < c->nrows; i++)
    if (!strcmp(at(c, i, "row"), kind) && (!name || !strcmp(at(c, i, "name"), name))) return i;
  return -1;
}

/* |s| is a number within a relative 1e-12 of |v|. */
static int is_num(const char *s, double v) {
  char *end;
  double x;
  if (!s || !*s) return 0;
  x = strtod(s, &end);
  return !*end && fabs(x - v) <= 1e-12 * fabs(v) + 1e-300;
}

static char *render_csv(moss_ctx *ctx, const moss_cost_report *r) {
  moss_buf b;
  char *s;
  moss_buf_init(&b, ctx);
  if (moss_report_csv(ctx, r, &b) != MOSS_OK) {
    moss_buf_deinit(&b);
    return NULL;
  }
  s = malloc(b.len + 1);
  if (s) memcpy(s, b.data, b.len + 1);
  moss_buf_deinit(&b);
  return s;
}

static char *render_html(moss_ctx *ctx, const moss_cost_report *r) {
  moss_buf b;
  char *s;
  moss_buf_init(&b, ctx);
  if (moss_report_html(ctx, r, &b) != MOSS_OK) {
    moss_buf_deinit(&b);
    return NULL;
  }
  s = malloc(b.len + 1);
  if (s) memcpy(s, b.data, b.len + 1);
  moss_buf_deinit(&b);
  return s;
}

/* The CodeCarbon columns (energy_consumed, emissions, emissions_rate,
 * duration, cpu/gpu/npu_energy) carry complete figures only: a partial one
 * is empty there and its value is in the _lower_bound column beside it; a
 * not-modeled one is empty everywhere, never 0. */
TEST(csv_partial_figures_are_not_totals) {
  moss_ctx ctx;
  moss_cost_report *r;
  csv c;
  char *text;
  int t, mm;
  double kwh;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = report(&ctx, DATA "cost-no-mac.xml", 30);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  /* The fixture's premises. */
  ASSERT_TRUE(strcmp(r->total.energy_j.label, "not-modeled") && r->total.energy_j.partial);
  ASSERT_TRUE(!strcmp(r->total.platform_j.label, "not-modeled"));
  ASSERT_TRUE(!strcmp(r->total.static_j.label, "not-modeled"));
  ASSERT_TRUE(!strcmp(r->nodes[0].compute_j.label, "not-modeled"));
  text = render_csv(&ctx, r);
  ASSERT_TRUE(text && csv_parse(&c, text));
  t = find_row(&c, "total", NULL);
  mm = find_row(&c, "node", "mm");
  ASSERT_TRUE(t > 0 && mm > 0);
  kwh = r->total.energy_j.value / 3.6e6;
  ASSERT_TRUE(at(&c, t, "energy_consumed") && !*at(&c, t, "energy_consumed"));
  ASSERT_TRUE(is_num(at(&c, t, "energy_consumed_lower_bound"), kwh));
  ASSERT_TRUE(!*at(&c, t, "emissions"));
  ASSERT_TRUE(is_num(at(&c, t, "emissions_lower_bound"), kwh * 30 / 1000));
  ASSERT_TRUE(!*at(&c, t, "emissions_rate"));
  ASSERT_TRUE(!strcmp(at(&c, t, "energy_label"), "op-model (partial)"));
  ASSERT_TRUE(!*at(&c, t, "cpu_energy")); /* the cpu's energy is partial */
  ASSERT_TRUE(is_num(at(&c, t, "gpu_energy"), 0)); /* no gpu: exactly 0 */
  ASSERT_TRUE(!*at(&c, t, "platform_energy_j"));
  ASSERT_TRUE(!strcmp(at(&c, t, "platform_label"), "not-modeled"));
  ASSERT_TRUE(!*at(&c, t, "static_energy_j"));
  ASSERT_TRUE(!strcmp(at(&c, t, "static_label"), "not-modeled"));
  ASSERT_TRUE(!*at(&c, mm, "compute_energy_j"));
  ASSERT_TRUE(!strcmp(at(&c, mm, "compute_label"), "not-modeled"));
  ASSERT_TRUE(!*at(&c, mm, "cpu_energy"));
  ASSERT_TRUE(is_num(at(&c, mm, "gpu_energy"), 0));
  ASSERT_TRUE(!*at(&c, mm, "energy_consumed"));
  ASSERT_TRUE(is_num(at(&c, mm, "energy_consumed_lower_bound"),
                     r->nodes[0].energy_j.value / 3.6e6));
  free(text);

  /* A partial time: duration empty, its lower bound beside it, no rate. */
  r->total.time_s.partial = 1;
  text = render_csv(&ctx, r);
  ASSERT_TRUE(text && csv_parse(&c, text));
  t = find_row(&c, "total", NULL);
  ASSERT_TRUE(!*at(&c, t, "duration"));
  ASSERT_TRUE(is_num(at(&c, t, "duration_lower_bound"), r->total.time_s.value));
  ASSERT_TRUE(!strcmp(at(&c, t, "time_label"), "estimate (partial)"));
  free(text);

  /* No time at all (a device without a clock): no cycles either. */
  r->nodes[0].time_s.label = "not-modeled";
  text = render_csv(&ctx, r);
  ASSERT_TRUE(text && csv_parse(&c, text));
  mm = find_row(&c, "node", "mm");
  ASSERT_TRUE(!*at(&c, mm, "cycles") && !*at(&c, mm, "duration") &&
              !*at(&c, mm, "duration_lower_bound"));
  ASSERT_TRUE(!strcmp(at(&c, mm, "time_label"), "not-modeled"));
  free(text);
  moss_cost_destroy(&ctx, r);

  /* Complete figures go in CodeCarbon's columns, and no lower bound. */
  r = report(&ctx, DATA "cost-cpu.xml", 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_TRUE(!r->total.energy_j.partial && !r->total.time_s.partial);
  text = render_csv(&ctx, r);
  ASSERT_TRUE(text && csv_parse(&c, text));
  t = find_row(&c, "total", NULL);
  kwh = r->total.energy_j.value / 3.6e6;
  ASSERT_TRUE(is_num(at(&c, t, "energy_consumed"), kwh));
  ASSERT_TRUE(!*at(&c, t, "energy_consumed_lower_bound"));
  ASSERT_TRUE(is_num(at(&c, t, "emissions"), kwh * 475 / 1000));
  ASSERT_TRUE(!*at(&c, t, "emissions_lower_bound"));
  ASSERT_TRUE(is_num(at(&c, t, "emissions_rate"), kwh * 475 / 1000 / r->total.time_s.value));
  ASSERT_TRUE(is_num(at(&c, t, "duration"), r->total.time_s.value));
  ASSERT_TRUE(!*at(&c, t, "duration_lower_bound"));
  ASSERT_TRUE(is_num(at(&c, t, "cpu_energy"), r->devices[0].energy_j.value / 3.6e6));
  ASSERT_TRUE(is_num(at(&c, t, "platform_energy_j"), r->total.platform_j.value));
  ASSERT_TRUE(!strcmp(at(&c, t, "platform_label"), "platform-model"));
  free(text);
  moss_cost_destroy(&ctx, r);
}

/* The <td ...>...</td> of the |k|th cell (0-based) of the node table row
 * whose first cell starts with |name|, copied into |buf|. */
static const char *node_cell(const char *html, const char *name, int k, char *buf, size_t cap) {
  char key[128];
  const char *p, *end;
  snprintf(key, sizeof key, "<tr><td class=\"name\">%s</td>", name);
  p = strstr(html, key);
  if (!p) return NULL;
  while (k-- >= 0) {
    p = strstr(p + 1, "<td");
    if (!p) return NULL;
  }
  end = strstr(p, "</td>");
  if (!end || (size_t)(end - p) + 6 > cap) return NULL;
  memcpy(buf, p, (size_t)(end - p) + 5);
  buf[end - p + 5] = 0;
  return buf;
}

/* Columns of the node table: name 0, op, dev, dtype, MACs, eff., ops,
 * act. B, wt. B, cycles 9, time 10, comp. 11, mem. 12, static 13, energy 14. */
TEST(html_marks_partial_and_not_modeled_cells) {
  moss_ctx ctx;
  moss_cost_report *r;
  char *html, cellbuf[512];
  const char *cell;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = report(&ctx, DATA "cost-no-mac.xml", 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  html = render_html(&ctx, r);
  ASSERT_TRUE(html != NULL);
  ASSERT_STR_CONTAINS(html, "partial: a lower bound");
  ASSERT_STR_CONTAINS(html, "not-modeled: the target gives no figure (not a zero)");
  /* mm's compute energy is not-modeled: "n/m" on a red cell, the reason in the title. */
  ASSERT_TRUE(!strcmp(r->nodes[0].compute_j.label, "not-modeled"));
  cell = node_cell(html, "mm", 11, cellbuf, sizeof cellbuf);
  ASSERT_TRUE(cell != NULL);
  ASSERT_STR_CONTAINS(cell, "<td class=\"nm\" title=\"not-modeled: ");
  ASSERT_STR_CONTAINS(cell, "no MAC energy for f32");
  ASSERT_STR_CONTAINS(cell, ">n/m</td>");
  /* Its energy is partial: "≥" on an amber cell, "partial" in the title. */
  ASSERT_TRUE(r->nodes[0].energy_j.partial);
  cell = node_cell(html, "mm", 14, cellbuf, sizeof cellbuf);
  ASSERT_TRUE(cell != NULL);
  ASSERT_STR_CONTAINS(cell, "<td class=\"p\" title=\"op-model, partial (a lower bound");
  ASSERT_STR_CONTAINS(cell, "\">" GE);
  /* Static energy: not-modeled in every node's cell, never "0 J". */
  ASSERT_TRUE(!strcmp(r->nodes[0].static_j.label, "not-modeled"));
  cell = node_cell(html, "mm", 13, cellbuf, sizeof cellbuf);
  ASSERT_TRUE(cell != NULL);
  ASSERT_STR_CONTAINS(cell, ">n/m</td>");
  /* The totals: the platform energy not-modeled, spelled out. */
  ASSERT_STR_CONTAINS(html, "<tr><th class=\"l\">energy (platform-model)</th><td class=\"nm\"");
  free(html);
  moss_cost_destroy(&ctx, r);
}

/* The ratio column says which way it goes: fp32 dense / this build, written
 * "N× less" (or "N× more"), and "~" on an amber cell when a side is partial. */
TEST(html_ratio_says_which_way) {
  moss_ctx ctx;
  moss_cost_report *r;
  char *html, want[160];
  double x;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = report(&ctx, DATA "cost-cpu.xml", 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  /* As if 24 effective MACs at 4 pJ met the baseline's 32 dense ones. */
  r->total.compute_j.value = 96e-12;
  r->baseline.compute_j.value = 128e-12;
  x = 128.0 / 96;
  html = render_html(&ctx, r);
  ASSERT_TRUE(html != NULL);
  ASSERT_STR_CONTAINS(html, ">this build vs fp32 dense</th>");
  snprintf(want, sizeof want, "title=\"fp32 dense / this build = %.4g\">%.3g\xc3\x97 less</td>",
           x, x);
  ASSERT_STR_CONTAINS(html, want);
  free(html);
  /* The same with this build's figure partial: indicative only. */
  r->total.compute_j.partial = 1;
  html = render_html(&ctx, r);
  ASSERT_TRUE(html != NULL);
  snprintf(want, sizeof want, "~%.3g\xc3\x97 less</td>", x);
  ASSERT_STR_CONTAINS(html, want);
  ASSERT_STR_CONTAINS(html, "<td class=\"p\" title=\"fp32 dense / this build = ");
  free(html);
  /* More energy than the baseline reads "more". */
  r->total.compute_j.partial = 0;
  r->total.compute_j.value = 2 * r->baseline.compute_j.value;
  html = render_html(&ctx, r);
  ASSERT_TRUE(html != NULL);
  ASSERT_STR_CONTAINS(html, ">2\xc3\x97 more</td>");
  free(html);
  moss_cost_destroy(&ctx, r);
}

/* A long node name wraps onto more lines in the chart (at most 40
 * characters each) instead of running off the SVG's left edge; the full
 * name stays in the label's tooltip. In the table it gets break points.
 * (The pipeline fuses the Relu into the MatMul: one node, renamed twice.) */
static void chart_labels(int *failed_, const char *html, int min_lines) {
  const char *svg = strstr(html, "<svg"), *end = svg ? strstr(svg, "</svg>") : NULL, *p;
  int texts = 0;
  if (!svg || !end) {
    FAIL_("no chart");
  }
  for (p = strstr(svg, "text-anchor=\"end\">"); p && p < end;
       p = strstr(p + 1, "text-anchor=\"end\">")) {
    const char *close = strstr(p, "</text>"), *t;
    int lines = 0;
    texts++;
    if (strncmp(p + 18, "<title>", 7)) FAIL_("a chart label without its full name as a tooltip");
    for (t = strstr(p, "<tspan"); t && t < close; t = strstr(t + 1, "<tspan")) {
      const char *a = strchr(t, '>') + 1, *b = strstr(a, "</tspan>");
      lines++;
      if (b - a > 40) FAIL_("a chart label line of %d characters: %.*s", (int)(b - a),
                            (int)(b - a), a);
    }
    if (lines < min_lines) FAIL_("a long chart label on %d lines", lines);
  }
  if (texts != 1) FAIL_("%d node labels in the chart, expected 1", texts);
}

TEST(html_chart_wraps_long_names) {
  static const char longname[] =
      "/encoder/layers.11/attention/output/dense_projection_with_a_very_long_name/MatMul";
  char unbroken[121];
  moss_ctx ctx;
  moss_cost_report *r;
  char *html;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = report(&ctx, DATA "cost-cpu.xml", 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(r->nnodes, 1);
  r->nodes[0].name = longname;
  html = render_html(&ctx, r);
  ASSERT_TRUE(html != NULL);
  chart_labels(failed_, html, 3); /* 81 characters and " (MatMul)": 3 lines */
  if (*failed_) return;
  ASSERT_STR_CONTAINS(html, "<title>/encoder/layers.11/attention/output/"
                            "dense_projection_with_a_very_long_name/MatMul (MatMul)</title>");
  ASSERT_STR_CONTAINS(html, "<td class=\"name\">/<wbr/>encoder/<wbr/>layers.<wbr/>11/<wbr/>");
  free(html);
  memset(unbroken, 'x', 120); /* no separator at all: cut every 40 characters */
  unbroken[120] = 0;
  r->nodes[0].name = unbroken;
  html = render_html(&ctx, r);
  ASSERT_TRUE(html != NULL);
  chart_labels(failed_, html, 4);
  free(html);
  moss_cost_destroy(&ctx, r);
}

/* moss compare ranks by the platform-model energy, complete figures first,
 * then partial ones (marked "*"), then not-modeled ones ("?"), then the
 * failed targets. The figures mirror the finding: a cortex-m7-like target
 * whose partial op-model energy is the smallest and whose partial platform
 * energy is the largest must not come first. */
TEST(compare_ranks_complete_figures_first) {
  moss_ctx ctx;
  moss_cost_report *reps[5];
  const char *names[5] = {"m7", "npu", "rpi", "host", "broken"};
  const char *errs[5] = {NULL, NULL, NULL, NULL, "no such target"};
  moss_buf b;
  const char *host, *rpi, *m7, *npu, *broken;
  int i;
  moss_ctx_init(&ctx, moss_allocator_libc());
  for (i = 0; i < 4; i++) {
    reps[i] = report(&ctx, DATA "cost-cpu.xml", 0);
    if (!reps[i]) FAIL_("cost failed: %s", ctx.last);
  }
  reps[4] = NULL;
  /* m7: op-model 735 nJ partial, platform 22.4 µJ partial, time partial. */
  reps[0]->total.energy_j.value = 735e-9, reps[0]->total.energy_j.partial = 1;
  reps[0]->total.platform_j.value = 22.4e-6, reps[0]->total.platform_j.partial = 1;
  reps[0]->total.time_s.partial = 1;
  /* npu: op-model 3.76 µJ partial, no platform figure, no time. */
  reps[1]->total.energy_j.value = 3.76e-6, reps[1]->total.energy_j.partial = 1;
  reps[1]->total.platform_j.label = "not-modeled";
  reps[1]->total.time_s.label = "not-modeled";
  /* rpi: 3.09 µJ / 6.9 µJ; host: 856 nJ / 3.41 µJ, both complete. */
  reps[2]->total.energy_j.value = 3.09e-6, reps[2]->total.platform_j.value = 6.9e-6;
  reps[3]->total.energy_j.value = 856e-9, reps[3]->total.platform_j.value = 3.41e-6;
  moss_buf_init(&b, &ctx);
  moss_compare_table(names, reps, errs, 5, &b);
  ASSERT_TRUE(b.data != NULL);
  host = strstr(b.data, "\n1    host ");
  rpi = strstr(b.data, "\n2    rpi ");
  m7 = strstr(b.data, "\n3*   m7 ");
  npu = strstr(b.data, "\n4?   npu ");
  broken = strstr(b.data, "\n-    broken ");
  if (!(host && rpi && m7 && npu && broken && host < rpi && rpi < m7 && m7 < npu &&
        npu < broken))
    FAIL_("wrong order or marks:\n%s", b.data);
  /* The ranking figure comes first, then the op-model one. */
  ASSERT_STR_CONTAINS(b.data, "rank target energy (platform-model)  energy (op-model)");
  ASSERT_STR_CONTAINS(m7, "22.4 \xc2\xb5J (partial)");
  ASSERT_STR_CONTAINS(b.data, "ranked by platform-model energy");
  ASSERT_STR_CONTAINS(b.data, "\n(partial): the target lacks some figures");
  ASSERT_STR_CONTAINS(b.data, "\n*: ranked on a partial figure");
  ASSERT_STR_CONTAINS(b.data, "\n?: no figure to rank by");
  moss_buf_deinit(&b);
  for (i = 0; i < 4; i++) moss_cost_destroy(&ctx, reps[i]);
}

/* --report FILE.html writes the ranking as a page; another extension is an
 * io error before anything is costed. */
TEST(compare_report_page) {
  moss_ctx ctx;
  char *ok[] = {"compare", DATA "matmul_relu.onnx", "--targets",
                DATA "cost-no-mac.xml," DATA "cost-cpu.xml," DATA "no-such.xml", "--report",
                OUT "compare.html"};
  char *bad[] = {"compare", DATA "matmul_relu.onnx", "--targets", DATA "cost-cpu.xml",
                 "--report", OUT "compare.csv"};
  uint8_t *data;
  size_t n;
  const char *cpu, *nomac, *fail;
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_compare_cli(&ctx, 6, ok), MOSS_OK);
  ASSERT_EQ(moss_file_read(&ctx, OUT "compare.html", &data, &n), MOSS_OK);
  ASSERT_TRUE(!strncmp((const char *)data, "<!DOCTYPE html>", 15));
  ASSERT_TRUE(strstr((const char *)data, "<script") == NULL);
  ASSERT_STR_CONTAINS((const char *)data, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
  /* cost-cpu (complete) first, cost-no-mac (no platform figure) second, marked. */
  cpu = strstr((const char *)data, "<tr><td>1</td><td class=\"l\">" DATA "cost-cpu.xml</td>");
  nomac = strstr((const char *)data,
                 "<tr><td class=\"nm\">2?</td><td class=\"l\">" DATA "cost-no-mac.xml</td>");
  fail = strstr((const char *)data, "<tr><td>-</td><td class=\"l\">" DATA "no-such.xml</td>");
  ASSERT_TRUE(cpu && nomac && fail && cpu < nomac && nomac < fail);
  moss_free(&ctx, data, n + 1);
  ASSERT_EQ(moss_compare_cli(&ctx, 6, bad), MOSS_E_IO);
  ASSERT_STR_CONTAINS(ctx.last, "compare.csv: the file name must end in .html");
}

/* Each allocation of the renderers failing in turn: MOSS_E_NOMEM or a
 * finished text, never a crash or a leak (the ASan build checks). */
static int fail_at, calls;
static void *failing(void *user, void *p, size_t old, size_t sz) {
  (void)user;
  if (sz && ++calls == fail_at) return NULL;
  return moss_allocator_libc().fn(NULL, p, old, sz);
}

TEST(renderers_under_allocation_failures) {
  moss_ctx ctx, fctx;
  moss_cost_report *r;
  moss_allocator fa = {failing, NULL};
  int which;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = report(&ctx, DATA "cost-no-mac.xml", 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  for (which = 0; which < 3; which++) {
    moss_status st = MOSS_E_NOMEM;
    for (fail_at = 1; fail_at < 1000 && st != MOSS_OK; fail_at++) {
      moss_buf b;
      calls = 0;
      moss_ctx_init(&fctx, fa);
      moss_buf_init(&b, &fctx);
      st = which == 0 ? moss_report_csv(&fctx, r, &b)
           : which == 1 ? moss_report_html(&fctx, r, &b) : moss_report_json(&fctx, r, &b);
      moss_buf_deinit(&b);
      if (st != MOSS_OK) ASSERT_EQ(st, MOSS_E_NOMEM);
    }
    ASSERT_EQ(st, MOSS_OK);
  }
  moss_cost_destroy(&ctx, r);
}

TEST_MAIN()
