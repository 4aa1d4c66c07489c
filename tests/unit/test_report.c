/* test_report.c - what the cost reports show (compiler/cost/report.c) and
 * how `moss compare` ranks (compiler/driver/compare.c): the renderers, on
 * reports of data/cost/matmul_relu.onnx costed through the pipeline. The
 * figures themselves are test_cost.c's business; here the expected cells
 * come from the report's own figures and the documented rules
 * (docs/report.md): which CSV column carries a partial figure, what marks a
 * partial or not-modeled HTML cell, which way the ratio goes, how a long
 * name fits the chart, and the order of the compare table. The measurement
 * beside the estimate (moss_cost_set_measured, hand-chosen times) is shown
 * on a two-node graph built here and costed on cost-two.xml, whose power
 * figures give the measured platform energy by hand.
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
#include "plan/plan.h"

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

/* The report as one of the writers (moss_report_json, _csv, _html) prints
 * it, in a malloc'd string; NULL when the writer fails. */
static char *render(moss_ctx *ctx, const moss_cost_report *r,
                    moss_status (*writer)(moss_ctx *, const moss_cost_report *, moss_buf *)) {
  moss_buf b;
  char *s;
  moss_buf_init(&b, ctx);
  if (writer(ctx, r, &b) != MOSS_OK) {
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
  text = render(&ctx, r, moss_report_csv);
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
  text = render(&ctx, r, moss_report_csv);
  ASSERT_TRUE(text && csv_parse(&c, text));
  t = find_row(&c, "total", NULL);
  ASSERT_TRUE(!*at(&c, t, "duration"));
  ASSERT_TRUE(is_num(at(&c, t, "duration_lower_bound"), r->total.time_s.value));
  ASSERT_TRUE(!strcmp(at(&c, t, "time_label"), "estimate (partial)"));
  free(text);

  /* No time at all (a device without a clock): no cycles either. */
  r->nodes[0].time_s.label = "not-modeled";
  text = render(&ctx, r, moss_report_csv);
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
  text = render(&ctx, r, moss_report_csv);
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
  html = render(&ctx, r, moss_report_html);
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
  html = render(&ctx, r, moss_report_html);
  ASSERT_TRUE(html != NULL);
  ASSERT_STR_CONTAINS(html, ">this build vs fp32 dense</th>");
  snprintf(want, sizeof want, "title=\"fp32 dense / this build = %.4g\">%.3g\xc3\x97 less</td>",
           x, x);
  ASSERT_STR_CONTAINS(html, want);
  free(html);
  /* The same with this build's figure partial: indicative only. */
  r->total.compute_j.partial = 1;
  html = render(&ctx, r, moss_report_html);
  ASSERT_TRUE(html != NULL);
  snprintf(want, sizeof want, "~%.3g\xc3\x97 less</td>", x);
  ASSERT_STR_CONTAINS(html, want);
  ASSERT_STR_CONTAINS(html, "<td class=\"p\" title=\"fp32 dense / this build = ");
  free(html);
  /* More energy than the baseline reads "more". */
  r->total.compute_j.partial = 0;
  r->total.compute_j.value = 2 * r->baseline.compute_j.value;
  html = render(&ctx, r, moss_report_html);
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
  html = render(&ctx, r, moss_report_html);
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
  html = render(&ctx, r, moss_report_html);
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

/* ------------------------------------------------ measured beside estimated */

/* Y = Relu(X[1,8] x W[8,4]), two nodes on the cpu of cost-two.xml, built
 * by hand (the pipeline would fuse the Relu into the MatMul): mm's estimate
 * is 256 ns, relu's 32 ns (test_cost.c works them out). cost-two's power:
 * cpu idle 0.1 W, active 1 W; npu0 idle 0.05 W, active 0.5 W, no node. */
static const float two_w[32] = {1};

static moss_cost_report *two_nodes(moss_ctx *ctx) {
  moss_graph *g;
  moss_target *t;
  moss_value *x, *w, *h, *y;
  moss_node *n;
  moss_cost_report *r = NULL;
  int64_t wd[2] = {8, 4}, arena;
  if (moss_target_load(ctx, DATA "cost-two.xml", &t) != MOSS_OK) return NULL;
  if (moss_graph_create(ctx, &g) != MOSS_OK) {
    moss_target_destroy(ctx, t);
    return NULL;
  }
  g->name = "matmul_relu";
  x = moss_graph_add_value(ctx, g, "X");
  x->dtype = MOSS_DT_F32, x->rank = 2, x->dims[0] = 1, x->dims[1] = 8;
  w = moss_graph_add_constant(ctx, g, "W", MOSS_DT_F32, 2, wd, two_w);
  h = moss_graph_add_value(ctx, g, "H");
  h->dtype = MOSS_DT_F32, h->rank = 2, h->dims[0] = 1, h->dims[1] = 4;
  y = moss_graph_add_value(ctx, g, "Y");
  y->dtype = MOSS_DT_F32, y->rank = 2, y->dims[0] = 1, y->dims[1] = 4;
  g->inputs = moss_graph_alloc(g, sizeof(moss_value *));
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *));
  x->input_index = 0;
  g->inputs[g->ninputs++] = x;
  n = moss_graph_add_node(ctx, g, "MatMul", "mm", 2, 1);
  n->inputs[0] = x, n->inputs[1] = w, n->outputs[0] = h, n->device = 0;
  h->producer = n;
  n = moss_graph_add_node(ctx, g, "Relu", "relu", 1, 1);
  n->inputs[0] = h, n->outputs[0] = y, n->device = 0;
  y->producer = n;
  y->output_index = 0;
  g->outputs[g->noutputs++] = y;
  if (moss_plan_compute(ctx, g, &arena) == MOSS_OK &&
      moss_cost_compute(ctx, g, t, NULL, &r) != MOSS_OK)
    r = NULL;
  moss_graph_destroy(ctx, g);
  moss_target_destroy(ctx, t);
  return r;
}


/* The number after "|key|": {"value": ' at or after |from| in |json|;
 * NAN when absent or null. */
static double jvalue(const char *from, const char *key) {
  char k[96];
  const char *p;
  snprintf(k, sizeof k, "\"%s\": {\"value\": ", key);
  p = from ? strstr(from, k) : NULL;
  if (!p || !strncmp(p + strlen(k), "null", 4)) return NAN;
  return strtod(p + strlen(k), NULL);
}

/* Within a relative 1e-12. */
static int near(double a, double b) { return fabs(a - b) <= 1e-12 * fabs(b) + 1e-300; }

static const char how[] = "100 runs on zeros, CLOCK_MONOTONIC, test machine";

/* mm and relu in steps of their own, 3 µs and 1 µs; a run 5 µs; no
 * counter. The measured platform energy is the platform model fed with
 * those times, from each device's own power figures. */
TEST(json_measured_beside_estimated) {
  moss_ctx ctx;
  moss_cost_report *r;
  const int steps[2] = {0, 1};
  const double step_s[2] = {3e-6, 1e-6};
  const moss_cost_device *cpu, *npu;
  char *json;
  const char *m, *mm, *relu, *dev;
  double want_cpu, want_npu;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = two_nodes(&ctx);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(r->nnodes, 2);
  ASSERT_EQ(r->ndevices, 2);
  ASSERT_TRUE(!strcmp(r->nodes[0].name, "mm") && !strcmp(r->nodes[1].name, "relu"));
  cpu = &r->devices[0], npu = &r->devices[1];
  ASSERT_TRUE(cpu->has_power && npu->has_power && cpu->supply == 0 && npu->supply == 1);

  /* Without a measurement: "measured": null, no measured key anywhere. */
  json = render(&ctx, r, moss_report_json);
  ASSERT_TRUE(json != NULL);
  ASSERT_STR_CONTAINS(json, "\"measured\": null}\n");
  ASSERT_TRUE(strstr(json, "measured_time_s") == NULL);
  ASSERT_TRUE(strstr(json, "measured_busy_s") == NULL);
  ASSERT_TRUE(strstr(json, "measured_platform_j") == NULL);
  free(json);

  ASSERT_EQ(moss_cost_set_measured(&ctx, r, steps, step_s, 2, 5e-6, 100, how, NULL), MOSS_OK);
  ASSERT_EQ(r->measured, 1);
  json = render(&ctx, r, moss_report_json);
  ASSERT_TRUE(json != NULL);
  ASSERT_TRUE(strstr(json, "\"measured\": null") == NULL);
  m = strstr(json, "\"measured\": {\"runs\": 100, \"how\": \"100 runs on zeros, CLOCK_MONOTONIC, "
                   "test machine\", \"time_s\": {\"value\": 5e-06, \"label\": \"measured:clock\", "
                   "\"partial\": false, ");
  ASSERT_TRUE(m != NULL);
  ASSERT_STR_CONTAINS(m, "\"energy_j\": {\"value\": null, \"label\": \"not-modeled\", "
                         "\"partial\": false, \"source\": \"no energy counter was read\"}}}\n");
  /* The nodes: their own step's time, measured:clock. */
  mm = strstr(json, "{\"name\": \"mm\", ");
  relu = strstr(json, "{\"name\": \"relu\", ");
  ASSERT_TRUE(mm && relu && mm < relu && relu < m);
  ASSERT_STR_CONTAINS(mm, "\"measured_time_s\": {\"value\": 3e-06, \"label\": "
                          "\"measured:clock\", \"partial\": false, ");
  ASSERT_STR_CONTAINS(relu, "\"measured_time_s\": {\"value\": 1e-06, \"label\": "
                            "\"measured:clock\", \"partial\": false, ");
  ASSERT_TRUE(strstr(mm, "measured_time_s") < relu);
  /* The devices: busy = the cpu's nodes, 4 µs; the npu ran nothing, 0.
   * Platform: active W x busy + idle W x (5 µs - busy). */
  want_cpu = cpu->active_w * 4e-6 + cpu->idle_w * (5e-6 - 4e-6);
  want_npu = npu->active_w * 0 + npu->idle_w * 5e-6;
  ASSERT_TRUE(near(want_cpu, 1 * 4e-6 + 0.1 * 1e-6)); /* cost-two.xml's figures */
  ASSERT_TRUE(near(want_npu, 0.05 * 5e-6));
  dev = strstr(json, "{\"index\": 0, \"id\": \"cpu\"");
  ASSERT_TRUE(dev != NULL);
  ASSERT_TRUE(near(jvalue(dev, "measured_busy_s"), 4e-6));
  ASSERT_TRUE(near(jvalue(dev, "measured_platform_j"), want_cpu));
  dev = strstr(json, "{\"index\": 1, \"id\": \"npu0\"");
  ASSERT_TRUE(dev != NULL);
  ASSERT_TRUE(jvalue(dev, "measured_busy_s") == 0);
  ASSERT_TRUE(near(jvalue(dev, "measured_platform_j"), want_npu));
  ASSERT_STR_CONTAINS(dev, "\"measured_platform_j\": {\"value\": 2.5e-07, \"label\": "
                           "\"measured:clock\"");
  ASSERT_TRUE(near(jvalue(m, "platform_j"), want_cpu + want_npu));
  ASSERT_TRUE(near(r->measured_platform_j.value, want_cpu + want_npu));
  ASSERT_STR_CONTAINS(m, "\"platform_j\": {\"value\": ");
  ASSERT_STR_CONTAINS(m, ", \"label\": \"measured:clock\", \"partial\": false, ");
  /* Carbon from it at the 475 fallback. */
  ASSERT_TRUE(near(jvalue(m, "platform_carbon_g"), (want_cpu + want_npu) / 3.6e6 * 475));
  /* The estimates are still there, untouched. */
  ASSERT_TRUE(near(jvalue(mm, "time_s"), 256e-9));
  free(json);

  /* An energy counter: its figure and label as given. */
  {
    moss_cost_figure c = {2e-3, "measured:rapl", "RAPL package-0, the whole package", 0};
    ASSERT_EQ(moss_cost_set_measured(&ctx, r, steps, step_s, 2, 5e-6, 100, how, &c), MOSS_OK);
  }
  json = render(&ctx, r, moss_report_json);
  ASSERT_TRUE(json != NULL);
  ASSERT_STR_CONTAINS(json, "\"energy_j\": {\"value\": 0.002, \"label\": \"measured:rapl\", "
                            "\"partial\": false, \"source\": \"RAPL package-0, the whole "
                            "package\"}}}\n");
  free(json);
  moss_cost_destroy(&ctx, r);
}

/* Nodes that share a step (a plugin's blob) split its time by their
 * estimates: 4 µs over mm 256 ns and relu 32 ns; a node in no step is
 * not-modeled, never 0. */
TEST(measured_shared_step_splits_by_estimate) {
  moss_ctx ctx;
  moss_cost_report *r;
  const int shared[2] = {0, 0}, alone[2] = {0, -1};
  const double step_s[1] = {4e-6};
  double mm_est, relu_est;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = two_nodes(&ctx);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  mm_est = r->nodes[0].time_s.value, relu_est = r->nodes[1].time_s.value;
  ASSERT_TRUE(near(mm_est, 256e-9) && near(relu_est, 32e-9));
  ASSERT_EQ(moss_cost_set_measured(&ctx, r, shared, step_s, 1, 5e-6, 100, how, NULL), MOSS_OK);
  ASSERT_TRUE(near(r->nodes[0].measured_s.value, 4e-6 * 256 / 288));
  ASSERT_TRUE(near(r->nodes[1].measured_s.value, 4e-6 * 32 / 288));
  ASSERT_TRUE(!strcmp(r->nodes[0].measured_s.label, "measured:clock"));
  ASSERT_TRUE(!r->nodes[0].measured_s.partial);
  ASSERT_STR_CONTAINS(r->nodes[0].measured_s.source, "split by their estimated times");
  ASSERT_TRUE(near(r->devices[0].measured_busy_s.value, 4e-6));
  {
    char *json = render(&ctx, r, moss_report_json);
    const char *mm = json ? strstr(json, "{\"name\": \"mm\", ") : NULL;
    ASSERT_TRUE(mm != NULL);
    ASSERT_TRUE(near(jvalue(mm, "measured_time_s"), 4e-6 * 256 / 288));
    ASSERT_STR_CONTAINS(mm, "split by their estimated times");
    free(json);
  }

  ASSERT_EQ(moss_cost_set_measured(&ctx, r, alone, step_s, 1, 5e-6, 100, how, NULL), MOSS_OK);
  ASSERT_TRUE(near(r->nodes[0].measured_s.value, 4e-6));
  ASSERT_TRUE(!strcmp(r->nodes[1].measured_s.label, "not-modeled"));
  {
    char *json = render(&ctx, r, moss_report_json), *text;
    const char *relu = json ? strstr(json, "{\"name\": \"relu\", ") : NULL;
    csv c;
    int row;
    ASSERT_TRUE(relu != NULL);
    ASSERT_STR_CONTAINS(relu, "\"measured_time_s\": {\"value\": null, \"label\": "
                              "\"not-modeled\"");
    free(json);
    text = render(&ctx, r, moss_report_csv);
    ASSERT_TRUE(text && csv_parse(&c, text));
    row = find_row(&c, "node", "relu");
    ASSERT_TRUE(row > 0);
    ASSERT_TRUE(!*at(&c, row, "measured_duration")); /* empty, never 0 */
    ASSERT_TRUE(!strcmp(at(&c, row, "measured_label"), "not-modeled"));
    free(text);
  }
  moss_cost_destroy(&ctx, r);
}

/* The CSV's measured columns come last, after every estimate column: the
 * node's and the run's measured seconds, the run's measured platform
 * energy in kWh, the label; empty without a measurement. */
TEST(csv_measured_columns) {
  static const char tail[] =
      ",sparse_cost_2_4,sparse_cost_columns,measured_duration,measured_energy_consumed,measured_label\n";
  moss_ctx ctx;
  moss_cost_report *r;
  const int steps[2] = {0, 1};
  const double step_s[2] = {3e-6, 1e-6};
  char *text, *nl;
  csv c;
  int i, mm, relu, t, base;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = two_nodes(&ctx);
  if (!r) FAIL_("cost failed: %s", ctx.last);

  text = render(&ctx, r, moss_report_csv);
  ASSERT_TRUE(text != NULL);
  nl = strchr(text, '\n');
  ASSERT_TRUE(nl && nl + 1 - text > (long)strlen(tail));
  ASSERT_TRUE(!strncmp(nl + 1 - strlen(tail), tail, strlen(tail)));
  ASSERT_TRUE(!strncmp(text, "project_name,run_id,row,name,", 29));
  ASSERT_TRUE(csv_parse(&c, text));
  for (i = 1; i < c.nrows; i++) {
    ASSERT_TRUE(!*at(&c, i, "measured_duration"));
    ASSERT_TRUE(!*at(&c, i, "measured_energy_consumed"));
    ASSERT_TRUE(!*at(&c, i, "measured_label"));
  }
  free(text);

  ASSERT_EQ(moss_cost_set_measured(&ctx, r, steps, step_s, 2, 5e-6, 100, how, NULL), MOSS_OK);
  text = render(&ctx, r, moss_report_csv);
  ASSERT_TRUE(text && csv_parse(&c, text));
  mm = find_row(&c, "node", "mm");
  relu = find_row(&c, "node", "relu");
  t = find_row(&c, "total", NULL);
  base = find_row(&c, "baseline_fp32_dense", NULL);
  ASSERT_TRUE(mm > 0 && relu > 0 && t > 0 && base > 0);
  ASSERT_TRUE(!strcmp(at(&c, mm, "measured_duration"), "3e-06"));
  ASSERT_TRUE(!strcmp(at(&c, relu, "measured_duration"), "1e-06"));
  ASSERT_TRUE(!strcmp(at(&c, mm, "measured_label"), "measured:clock"));
  ASSERT_TRUE(!*at(&c, mm, "measured_energy_consumed")); /* per node: none */
  ASSERT_TRUE(!strcmp(at(&c, t, "measured_duration"), "5e-06"));
  ASSERT_TRUE(is_num(at(&c, t, "measured_energy_consumed"),
                     r->measured_platform_j.value / 3.6e6));
  ASSERT_TRUE(is_num(at(&c, t, "measured_energy_consumed"),
                     (1 * 4e-6 + 0.1 * 1e-6 + 0.05 * 5e-6) / 3.6e6));
  ASSERT_TRUE(!strcmp(at(&c, t, "measured_label"), "measured:clock"));
  /* The estimate columns are as before. */
  ASSERT_TRUE(is_num(at(&c, mm, "duration"), r->nodes[0].time_s.value));
  /* The baseline is not run: nothing measured. */
  ASSERT_TRUE(!*at(&c, base, "measured_duration") && !*at(&c, base, "measured_label") &&
              !*at(&c, base, "measured_energy_consumed"));
  free(text);
  moss_cost_destroy(&ctx, r);
}

/* The HTML: a measured time column right after the estimated one, the
 * measured rows in the totals table and how it was measured; none of it
 * without a measurement. Node table columns with a measurement: ...,
 * cycles 9, time est. 10, time meas. 11, comp. 12. */
TEST(html_measured_column_and_rows) {
  moss_ctx ctx;
  moss_cost_report *r;
  const int steps[2] = {0, 1};
  const double step_s[2] = {3e-6, 1e-6};
  char *html, cellbuf[1024];
  const char *cell, *est, *meas;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = two_nodes(&ctx);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  html = render(&ctx, r, moss_report_html);
  ASSERT_TRUE(html != NULL);
  ASSERT_TRUE(strstr(html, "time meas.") == NULL && strstr(html, "time est.") == NULL);
  ASSERT_TRUE(strstr(html, "measured time") == NULL);
  ASSERT_TRUE(strstr(html, "measured:clock") == NULL);
  ASSERT_STR_CONTAINS(html, "<th><abbr title=\"estimated time\">time</abbr></th>");
  free(html);

  ASSERT_EQ(moss_cost_set_measured(&ctx, r, steps, step_s, 2, 5e-6, 100, how, NULL), MOSS_OK);
  html = render(&ctx, r, moss_report_html);
  ASSERT_TRUE(html != NULL);
  est = strstr(html, "<th><abbr title=\"estimated time\">time est.</abbr></th>");
  meas = strstr(html, ">time meas.</abbr></th>");
  ASSERT_TRUE(est && meas && est < meas);
  ASSERT_TRUE(strstr(est, "</th>") + 5 == strstr(est, "<th><abbr title=\"measured time"));
  cell = node_cell(html, "mm", 10, cellbuf, sizeof cellbuf);
  ASSERT_TRUE(cell != NULL);
  ASSERT_STR_CONTAINS(cell, "title=\"estimate; ");
  ASSERT_STR_CONTAINS(cell, ">256 ns");
  cell = node_cell(html, "mm", 11, cellbuf, sizeof cellbuf);
  ASSERT_TRUE(cell != NULL);
  ASSERT_STR_CONTAINS(cell, "<td title=\"measured:clock; 3e-06: median of 100 runs");
  ASSERT_STR_CONTAINS(cell, ">3 \xc2\xb5s</td>");
  /* The totals: measured time, the platform energy from it, the counter. */
  ASSERT_STR_CONTAINS(html, "<tr><th class=\"l\">measured time</th><td title=\"measured:clock; "
                            "5e-06");
  ASSERT_STR_CONTAINS(html, ">5 \xc2\xb5s <span class=\"lb\">measured:clock</span></td>");
  ASSERT_STR_CONTAINS(html, "<tr><th class=\"l\">platform energy (measured time)</th>"
                            "<td title=\"measured:clock; ");
  ASSERT_STR_CONTAINS(html, "<tr><th class=\"l\">energy counter</th><td class=\"note nm\" "
                            "colspan=\"3\">not-modeled: no energy counter was read</td>");
  ASSERT_STR_CONTAINS(html, "<p class=\"how\">Measured: 100 runs on zeros, CLOCK_MONOTONIC, "
                            "test machine</p>");
  free(html);

  /* With a counter: its value and label, what it covers beside it. */
  {
    moss_cost_figure c = {2e-3, "measured:rapl", "RAPL package-0, the whole package", 0};
    ASSERT_EQ(moss_cost_set_measured(&ctx, r, steps, step_s, 2, 5e-6, 100, how, &c), MOSS_OK);
  }
  html = render(&ctx, r, moss_report_html);
  ASSERT_TRUE(html != NULL);
  ASSERT_STR_CONTAINS(html, "<tr><th class=\"l\">energy counter</th><td title=\"measured:rapl; "
                            "0.002: RAPL package-0, the whole package\">2 mJ <span "
                            "class=\"lb\">measured:rapl</span></td><td class=\"note\" "
                            "colspan=\"2\">RAPL package-0, the whole package</td></tr>");
  free(html);
  moss_cost_destroy(&ctx, r);
}

/* Each allocation of the three renderers failing in turn on |r|: every
 * call gives MOSS_E_NOMEM or a finished text, never a crash or a leak (the
 * ASan build checks). Returns 1 when each renderer finished in the end. */
static int fail_at, calls;

static void *failing(void *user, void *p, size_t old, size_t sz) {
  (void)user;
  if (sz && ++calls == fail_at) return NULL;
  return moss_allocator_libc().fn(NULL, p, old, sz);
}

static int renders_under_failures(const moss_cost_report *r) {
  moss_allocator fa = {failing, NULL};
  int which;
  for (which = 0; which < 3; which++) {
    moss_status st = MOSS_E_NOMEM;
    for (fail_at = 1; fail_at < 1000 && st != MOSS_OK; fail_at++) {
      moss_ctx fctx;
      moss_buf b;
      calls = 0;
      moss_ctx_init(&fctx, fa);
      moss_buf_init(&b, &fctx);
      st = which == 0 ? moss_report_csv(&fctx, r, &b)
           : which == 1 ? moss_report_html(&fctx, r, &b) : moss_report_json(&fctx, r, &b);
      moss_buf_deinit(&b);
      if (st != MOSS_OK && st != MOSS_E_NOMEM) return 0;
    }
    if (st != MOSS_OK) return 0;
  }
  return 1;
}

/* A measured report's rows and columns under allocation failures. */
TEST(measured_renderers_under_allocation_failures) {
  moss_ctx ctx;
  moss_cost_report *r;
  const int steps[2] = {0, 1};
  const double step_s[2] = {3e-6, 1e-6};
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = two_nodes(&ctx);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(moss_cost_set_measured(&ctx, r, steps, step_s, 2, 5e-6, 100, "how", NULL), MOSS_OK);
  ASSERT_TRUE(renders_under_failures(r));
  moss_cost_destroy(&ctx, r);
}

TEST(renderers_under_allocation_failures) {
  moss_ctx ctx;
  moss_cost_report *r;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = report(&ctx, DATA "cost-no-mac.xml", 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_TRUE(renders_under_failures(r));
  moss_cost_destroy(&ctx, r);
}

TEST_MAIN()
