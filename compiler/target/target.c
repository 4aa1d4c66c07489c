/* target.c - the target model. Before anything is partitioned, planned or
 * emitted, the driver loads the target the user named (--target, default
 * "host"): this file reads targets/NAME.xml, validates it against
 * targets/moss-target.xsd, resolves inherit= and turns the facts into an
 * immutable moss_target that every later stage reads through target.h. It
 * also implements `moss targets`. It is the only code in moss that includes
 * libxml2; libxml2's own messages are caught by a structured error handler
 * and reported through moss_fail() as "<file>:<line>: <what>", so libxml2
 * never prints anything. Everything the target holds lives in one arena. */
#define _POSIX_C_SOURCE 200809L /* opendir, readdir, stat, sysconf */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#include "target.h"

#ifndef MOSS_TARGETS_DIR
#define MOSS_TARGETS_DIR "targets"
#endif

#define SCHEMA_FILE "moss-target.xsd"
#define MAX_INHERIT 16 /* longest inherit chain */
#define PATH_CAP 4096

/* <codegen> attributes, in the order `targets show` prints them. A new
 * codegen fact is one more key here and one more attribute in the XSD. The
 * keys from CG_FIRST_LIST on are space-separated lists or numbers, kept with
 * their white space folded. */
enum {
  CG_TRIPLE,
  CG_CPU,
  CG_FEATURES,
  CG_OPENCL,
  CG_SPIRV,
  CG_OPENCL_EXT,
  CG_SPIRV_CAPS,
  CG_MAX_WG,
  CG_SUBGROUP,
  CG_LOCAL_MEM,
  CG_COUNT,
  CG_FIRST_LIST = CG_OPENCL_EXT
};
static const char *const cg_keys[CG_COUNT] = {"triple",
                                              "cpu",
                                              "features",
                                              "opencl-version",
                                              "spirv-version",
                                              "opencl-extensions",
                                              "spirv-capabilities",
                                              "max-workgroup-size",
                                              "subgroup-size",
                                              "local-memory-bytes"};

/* The lists below are merged by their first member (a name or a dtype) when a
 * target inherits; merge_list() relies on that layout. */
typedef struct figure { /* a per-dtype number: MACs per cycle, or pJ per MAC */
  const char *dtype;
  double value;
  const char *source; /* NULL for MACs per cycle (the <compute> source covers them) */
} figure;

typedef struct param { /* <params><param name= value=/>: a plugin's own facts */
  const char *name, *value;
} param;

typedef struct op {
  const char *name;
  const char *dtypes; /* space-separated, one space between names */
  const char *file;   /* where the op was written */
  int line;
  int max_kernel, max_rank;  /* 0: no limit */
  int64_t max_channels;      /* 0: no limit */
  const char *kernels;       /* allowed kernel sides, "1 3"; NULL: any */
  const char *strides;       /* allowed strides; NULL: any */
} op;

typedef struct device {
  const char *id, *kind, *backend; /* kind and backend NULL until given */
  const char *file;                /* where the device was last declared */
  int line;
  const char *codegen[CG_COUNT];
  const char *codegen_source; /* set only by host detection */
  const char *plugin;         /* resolved path of plugin=, or NULL */
  const char *plugin_file;    /* where plugin= was given */
  int plugin_line;
  double clock_mhz;
  int units;
  const char *compute_source;
  figure *macs;
  int nmacs;
  double step_ns;             /* <compute step-ns>: time each step of the plan adds; 0 none */
  figure *achieved;           /* <achieved kernel= share=>: keyed by kernel class */
  int nachieved;
  moss_target_level *levels;
  int nlevels;
  figure *mac_pj;
  int nmac_pj;
  int has_power;
  double idle_w, active_w;
  const char *power_source;
  const char *power_shared; /* shared="NAME": one supply for every device naming it */
  const char *power_file;   /* where <power> was last given */
  int power_line;
  param *params;
  int nparams;
  int has_ops;
  const char *ops_file; /* where <ops> was last given */
  int ops_line;
  op *ops;
  int nops;
} device;

struct moss_target {
  moss_arena *arena; /* owns the target and everything it points to */
  const char *name, *vendor, *description, *inherit, *path;
  int line;                    /* of <target> */
  const char *fallback;        /* a device id, or NULL */
  const char *placement;       /* "first" or "cost"; NULL: "first" */
  const char *fallback_file;   /* where fallback= was given */
  int fallback_line;
  device *devices;
  int ndevices;
};

/* What a load needs: the schema, the chain of targets being loaded (to catch
 * inherit cycles), and how libxml2's errors are being reported. */
typedef struct loader {
  moss_ctx *ctx;
  moss_arena *arena;
  const char *dir; /* the targets folder */
  char schema_path[PATH_CAP];
  xmlDocPtr schema_doc;
  xmlSchemaPtr schema;
  xmlSchemaValidCtxtPtr vctxt;
  const char *chain[MAX_INHERIT + 1];
  int depth;
  int oom;          /* an arena allocation failed */
  moss_status st;   /* first failure */
  /* libxml2 error reporting */
  const char *file; /* the file libxml2 is working on */
  const char *what; /* prefix of its messages */
  int first_only;   /* report only the first error (parse errors cascade) */
  int nerr;         /* errors libxml2 reported since reset */
  const void *facet_node;
  int facet_line;
} loader;

/* Reports through the context and remembers the first failure. */
static moss_status fail_at(loader *L, int line, moss_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define fail(L, st, ...) fail_at((L), __LINE__, (st), __VA_ARGS__)

static moss_status fail_at(loader *L, int line, moss_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  moss_diag_vfail_about(L->ctx, __FILE__, line, st, NULL, NULL, fmt, ap);
  va_end(ap);
  if (L->st == MOSS_OK) L->st = st;
  return st;
}

/* ---------------------------------------------------------------------------
 * libxml2 errors */

#if LIBXML_VERSION >= 21200
typedef const xmlError *xml_error_arg;
#else
typedef xmlErrorPtr xml_error_arg;
#endif

static void on_xml_error(void *user, xml_error_arg err) {
  loader *L = user;
  char msg[768];
  char *p, *q;
  xmlNodePtr parent;
  size_t n;
  int line;
  if (!err || err->level == XML_ERR_WARNING || err->level == XML_ERR_NONE) return;
  if (L->first_only && L->nerr > 0) return;
  if (err->code == XML_ERR_NO_MEMORY) { /* libxml2's own allocator failed: not bad XML */
    L->nerr++;
    fail(L, MOSS_E_NOMEM, "%s: no memory (libxml2)", L->file);
    return;
  }
  line = err->line;
  if (line <= 0 && err->node) line = (int)xmlGetLineNo((xmlNodePtr)err->node);
  snprintf(msg, sizeof msg, "%s", err->message ? err->message : "unknown error");
  n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '.')) msg[--n] = 0;
  /* A facet error (pattern, enumeration, range) is followed by a second
   * message about the same value ("... is not a valid value of the atomic
   * type ..."); the first says it better. */
  if (strstr(msg, "is not a valid value of the") && err->node == L->facet_node &&
      line == L->facet_line)
    return;
  if (strstr(msg, "[facet '")) {
    L->facet_node = err->node;
    L->facet_line = line;
  }
  /* The source pattern is long; say what it means instead. */
  if (strstr(msg, "[facet 'pattern']") && strstr(msg, "not-modeled") &&
      (p = strstr(msg, " by the pattern")) != NULL)
    snprintf(msg + (p - msg), sizeof msg - (size_t)(p - msg),
             " as a source: it must start with op-model, platform-model, datasheet, "
             "estimate, not-modeled or measured:<how>");
  /* "[facet 'x'] " is schema jargon. */
  if ((p = strstr(msg, "[facet '")) != NULL && (q = strstr(p, "] ")) != NULL)
    memmove(p, q + 2, strlen(q + 2) + 1);
  /* libxml2 does not say where an unexpected element was found:
   * "Element 'x': ..." becomes "Element 'x' inside <device>: ...". */
  parent = err->node ? ((xmlNodePtr)err->node)->parent : NULL;
  if (strstr(msg, "This element is not expected") && parent && parent->name &&
      parent->type == XML_ELEMENT_NODE && strncmp(msg, "Element '", 9) == 0 &&
      (q = strchr(msg + 9, '\'')) != NULL) {
    char tail[sizeof msg];
    snprintf(tail, sizeof tail, "%s", q + 1);
    snprintf(q + 1, sizeof msg - (size_t)(q + 1 - msg), " inside <%s>%s", parent->name, tail);
  }
  L->nerr++;
  fail(L, MOSS_E_TARGET, "%s:%d: %s%s", L->file, line, L->what, msg);
}

static void on_generic_error(void *user, const char *fmt, ...) {
  (void)user;
  (void)fmt;
}

static void xml_report_to(loader *L, const char *file, const char *what, int first_only) {
  L->file = file;
  L->what = what;
  L->first_only = first_only;
  L->nerr = 0;
  L->facet_node = NULL;
  L->facet_line = 0;
}

/* ---------------------------------------------------------------------------
 * Small helpers */

static char *dup_str(loader *L, const char *s) {
  char *p;
  if (!s) return NULL;
  p = moss_arena_strdup(L->arena, s);
  if (!p) {
    L->oom = 1;
    return (char *)"";
  }
  return p;
}

static void *arena_array(loader *L, int n, size_t size) {
  size_t bytes;
  void *p;
  if (n <= 0) return NULL;
  if (!moss_size_mul((size_t)n, size, &bytes) || !(p = moss_arena_alloc(L->arena, bytes, 16))) {
    L->oom = 1;
    return NULL;
  }
  return p;
}

/* Reads |path| into a NUL-terminated buffer; returns 0, or errno on failure
 * (ENOMEM when the context allocator fails, EFBIG when it is too big). */
static int read_all(moss_ctx *ctx, const char *path, char **out_data, size_t *out_size) {
  struct stat sb;
  FILE *f;
  long len;
  char *p;
  int e;
  *out_data = NULL;
  *out_size = 0;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return EISDIR;
  if (!(f = fopen(path, "rb"))) return errno ? errno : ENOENT;
  if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    e = errno ? errno : EIO;
    fclose(f);
    return e;
  }
  if (len >= INT_MAX) {
    fclose(f);
    return EFBIG;
  }
  if (!(p = moss_alloc(ctx, (size_t)len + 1))) {
    fclose(f);
    return ENOMEM;
  }
  if (len && fread(p, 1, (size_t)len, f) != (size_t)len) {
    fclose(f);
    moss_free(ctx, p, (size_t)len + 1);
    return EIO;
  }
  fclose(f);
  *out_data = p;
  *out_size = (size_t)len;
  return 0;
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fclose(f);
  return 1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *targets_dir(void) {
  const char *d = getenv("MOSS_TARGETS_DIR");
  return d && *d ? d : MOSS_TARGETS_DIR;
}

static int is_element(xmlNodePtr n, const char *name) {
  return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, (const xmlChar *)name);
}

static int count_children(xmlNodePtr n, const char *name) {
  int k = 0;
  for (n = n->children; n; n = n->next) k += is_element(n, name);
  return k;
}

/* Folds runs of white space in |s| into one space and trims both ends. */
static void fold_space(char *s) {
  char *w = s, *start = s;
  int space = 0;
  for (; *s; s++) {
    if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
      space = w != start;
    } else {
      if (space) *w++ = ' ';
      space = 0;
      *w++ = *s;
    }
  }
  *w = 0;
}

/* An attribute copied into the arena, white space folded when |fold|
 * (validation does not rewrite the tree, so an xs:list keeps its spacing);
 * NULL when absent. */
static const char *attr_text(loader *L, xmlNodePtr n, const char *name, int fold) {
  xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
  const char *s;
  if (!v) return NULL;
  if (fold) fold_space((char *)v);
  s = dup_str(L, (const char *)v);
  xmlFree(v);
  return s;
}

static const char *attr(loader *L, xmlNodePtr n, const char *name) {
  return attr_text(L, n, name, 0);
}

/* A numeric attribute; the schema has already checked its form. */
static int num_attr(xmlNodePtr n, const char *name, double *out) {
  xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
  if (!v) return 0;
  *out = strtod((const char *)v, NULL);
  xmlFree(v);
  return 1;
}

/* A size in bytes (xs:unsignedLong: strtod would round above 2^53). */
static int size_attr(xmlNodePtr n, const char *name, uint64_t *out) {
  xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
  if (!v) return 0;
  *out = (uint64_t)strtoull((const char *)v, NULL, 10);
  xmlFree(v);
  return 1;
}

/* An xs:boolean attribute: 1 for "true" or "1"; absent is 0. */
static int bool_attr(xmlNodePtr n, const char *name) {
  xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
  int r;
  if (!v) return 0;
  fold_space((char *)v);
  r = !strcmp((const char *)v, "true") || !strcmp((const char *)v, "1");
  xmlFree(v);
  return r;
}

/* Text content, white space folded. */
static const char *text(loader *L, xmlNodePtr n) {
  xmlChar *v = xmlNodeGetContent(n);
  const char *r;
  if (!v) return dup_str(L, "");
  fold_space((char *)v);
  r = dup_str(L, (const char *)v);
  xmlFree(v);
  return r;
}

/* Whether a space-separated |list| holds |word|. */
static int list_has(const char *list, const char *word) {
  size_t n = strlen(word);
  const char *p = list;
  if (!n) return 0;
  while ((p = strstr(p, word)) != NULL) {
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    p += n;
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * XML -> structs, one file at a time */

/* The |elem| children of |parent|: each keyed by its attribute |key| (the
 * figure's dtype field), valued by |value_attr|. */
static void parse_figures(loader *L, xmlNodePtr parent, const char *elem, const char *key,
                          const char *value_attr, int with_source, figure **out, int *out_n) {
  xmlNodePtr c;
  int k = 0, n = count_children(parent, elem);
  figure *f = arena_array(L, n, sizeof *f);
  *out = f;
  *out_n = f ? n : 0;
  if (!f) return;
  for (c = parent->children; c; c = c->next) {
    if (!is_element(c, elem)) continue;
    f[k].dtype = attr(L, c, key);
    num_attr(c, value_attr, &f[k].value);
    f[k].source = with_source ? attr(L, c, "source") : NULL;
    k++;
  }
}

static void parse_levels(loader *L, xmlNodePtr mem, device *d) {
  xmlNodePtr c;
  int k = 0, n = count_children(mem, "level");
  moss_target_level *lv = arena_array(L, n, sizeof *lv);
  d->levels = lv;
  d->nlevels = lv ? n : 0;
  if (!lv) return;
  for (c = mem->children; c; c = c->next) {
    if (!is_element(c, "level")) continue;
    lv[k].name = attr(L, c, "name");
    size_attr(c, "size-bytes", &lv[k].size_bytes);
    lv[k].read_only = bool_attr(c, "read-only");
    num_attr(c, "bandwidth-gbps", &lv[k].bandwidth_gbps);
    num_attr(c, "latency-ns", &lv[k].latency_ns);
    lv[k].has_energy = num_attr(c, "energy-pj-per-byte", &lv[k].pj_per_byte);
    lv[k].source = attr(L, c, "source");
    lv[k].perf_source = attr(L, c, "perf-source");
    /* The schema cannot tie the figure to its label; say which one is wrong. */
    if (lv[k].source && !L->oom) {
      int none = strncmp(lv[k].source, "not-modeled", 11) == 0;
      if (none && lv[k].has_energy)
        fail(L, MOSS_E_TARGET,
             "%s:%ld: memory level '%s': energy-pj-per-byte is given but its source "
             "says not-modeled",
             L->file, xmlGetLineNo(c), lv[k].name);
      else if (!none && !lv[k].has_energy)
        fail(L, MOSS_E_TARGET,
             "%s:%ld: memory level '%s': energy-pj-per-byte is missing (use "
             "source=\"not-modeled\" when there is no figure)",
             L->file, xmlGetLineNo(c), lv[k].name);
    }
    k++;
  }
}

static void parse_ops(loader *L, xmlNodePtr ops, const char *file, device *d) {
  xmlNodePtr c;
  xmlChar *v;
  double x;
  int k = 0, n = count_children(ops, "op");
  op *o = arena_array(L, n, sizeof *o);
  d->has_ops = 1;
  d->ops_file = file;
  d->ops_line = (int)xmlGetLineNo(ops);
  d->ops = o;
  d->nops = o ? n : 0;
  if (!o) return;
  for (c = ops->children; c; c = c->next) {
    if (!is_element(c, "op")) continue;
    memset(&o[k], 0, sizeof o[k]);
    o[k].name = attr(L, c, "name");
    o[k].dtypes = attr_text(L, c, "dtypes", 1);
    o[k].file = file;
    o[k].line = (int)xmlGetLineNo(c);
    if (num_attr(c, "max-kernel", &x)) o[k].max_kernel = (int)x; /* xs:int */
    if (num_attr(c, "max-rank", &x)) o[k].max_rank = (int)x;
    if ((v = xmlGetProp(c, (const xmlChar *)"max-channels")) != NULL) {
      o[k].max_channels = (int64_t)strtoll((const char *)v, NULL, 10); /* xs:long */
      xmlFree(v);
    }
    o[k].kernels = attr_text(L, c, "kernels", 1);
    o[k].strides = attr_text(L, c, "strides", 1);
    k++;
  }
}

/* |rel| taken relative to the folder of |file| unless it is absolute. */
static const char *resolve_path(loader *L, const char *file, int line, const char *rel) {
  char path[PATH_CAP];
  const char *slash = strrchr(file, '/');
  int dl = slash ? (int)(slash - file) : 1;
  if (rel[0] == '/') return dup_str(L, rel);
  if ((size_t)snprintf(path, sizeof path, "%.*s/%s", dl, slash ? file : ".", rel) >= sizeof path) {
    fail(L, MOSS_E_TARGET, "%s:%d: plugin: path too long", file, line);
    return NULL;
  }
  return dup_str(L, path);
}

static void parse_device(loader *L, xmlNodePtr n, const char *file, device *d) {
  xmlNodePtr c;
  double v;
  int i;
  d->id = attr(L, n, "id");
  d->kind = attr(L, n, "kind");
  d->backend = attr(L, n, "backend");
  d->file = file;
  d->line = (int)xmlGetLineNo(n);
  if ((d->plugin = attr(L, n, "plugin")) != NULL && !L->oom) {
    d->plugin_file = file;
    d->plugin_line = d->line;
    d->plugin = resolve_path(L, file, d->line, d->plugin);
  }
  for (c = n->children; c; c = c->next) {
    if (is_element(c, "codegen")) {
      for (i = 0; i < CG_COUNT; i++)
        d->codegen[i] = attr_text(L, c, cg_keys[i], i >= CG_FIRST_LIST);
    } else if (is_element(c, "compute")) {
      num_attr(c, "clock-mhz", &d->clock_mhz);
      if (num_attr(c, "units", &v)) d->units = (int)v; /* xs:int, so it fits */
      d->compute_source = attr(L, c, "source");
      num_attr(c, "step-ns", &d->step_ns);
      parse_figures(L, c, "macs", "dtype", "per-cycle", 0, &d->macs, &d->nmacs);
      parse_figures(L, c, "achieved", "kernel", "share", 1, &d->achieved, &d->nachieved);
    } else if (is_element(c, "memory")) {
      parse_levels(L, c, d);
    } else if (is_element(c, "params")) {
      xmlNodePtr p;
      int k = 0, np = count_children(c, "param");
      d->params = arena_array(L, np, sizeof *d->params);
      d->nparams = d->params ? np : 0;
      for (p = c->children; p && d->params; p = p->next) {
        if (!is_element(p, "param")) continue;
        d->params[k].name = attr(L, p, "name");
        d->params[k++].value = attr(L, p, "value");
      }
    } else if (is_element(c, "energy")) {
      xmlNodePtr p;
      parse_figures(L, c, "mac", "dtype", "pj", 1, &d->mac_pj, &d->nmac_pj);
      for (p = c->children; p; p = p->next) {
        if (!is_element(p, "power")) continue;
        d->has_power = 1;
        num_attr(p, "idle-w", &d->idle_w);
        num_attr(p, "active-w", &d->active_w);
        d->power_source = attr(L, p, "source");
        d->power_shared = attr(L, p, "shared");
        d->power_file = file;
        d->power_line = (int)xmlGetLineNo(p);
      }
    } else if (is_element(c, "ops")) {
      parse_ops(L, c, file, d);
    }
  }
}

static void parse_target(loader *L, xmlNodePtr root, const char *file, moss_target *t) {
  xmlNodePtr c;
  int k = 0;
  t->name = attr(L, root, "name");
  t->vendor = attr(L, root, "vendor");
  t->inherit = attr(L, root, "inherit");
  t->fallback = attr(L, root, "fallback");
  t->placement = attr(L, root, "placement");
  t->path = file;
  t->line = (int)xmlGetLineNo(root);
  if (t->fallback) {
    t->fallback_file = file;
    t->fallback_line = t->line;
  }
  t->ndevices = count_children(root, "device");
  t->devices = arena_array(L, t->ndevices, sizeof *t->devices);
  if (!t->devices) t->ndevices = 0;
  for (c = root->children; c; c = c->next) {
    if (is_element(c, "description"))
      t->description = text(L, c);
    else if (is_element(c, "device") && k < t->ndevices)
      parse_device(L, c, file, &t->devices[k++]);
  }
}

/* ---------------------------------------------------------------------------
 * Inheritance: the parent's facts, then the child's on top */

static void *merge_list(loader *L, const void *parent, int np, const void *child, int nc,
                        size_t size, int *out_n) {
  char *r = arena_array(L, np + nc, size);
  int n = 0, i, k;
  *out_n = 0;
  if (!r) return NULL;
  if (np) memcpy(r, parent, (size_t)np * size);
  n = np;
  for (i = 0; i < nc; i++) {
    const char *item = (const char *)child + (size_t)i * size, *key, *other;
    memcpy(&key, item, sizeof key);
    for (k = 0; k < n; k++) {
      memcpy(&other, r + (size_t)k * size, sizeof other);
      if (strcmp(other, key) == 0) break;
    }
    memcpy(r + (size_t)k * size, item, size);
    if (k == n) n++;
  }
  *out_n = n;
  return r;
}

static void merge_device(loader *L, device *d, const device *c) {
  int i;
  if (c->kind) d->kind = c->kind;
  if (c->backend) d->backend = c->backend;
  d->file = c->file;
  d->line = c->line;
  if (c->plugin) {
    d->plugin = c->plugin;
    d->plugin_file = c->plugin_file;
    d->plugin_line = c->plugin_line;
  }
  for (i = 0; i < CG_COUNT; i++)
    if (c->codegen[i]) d->codegen[i] = c->codegen[i];
  if (c->clock_mhz > 0) d->clock_mhz = c->clock_mhz;
  if (c->units > 0) d->units = c->units;
  if (c->compute_source) d->compute_source = c->compute_source;
  d->macs = merge_list(L, d->macs, d->nmacs, c->macs, c->nmacs, sizeof *d->macs, &d->nmacs);
  if (c->step_ns > 0) d->step_ns = c->step_ns;
  d->achieved = merge_list(L, d->achieved, d->nachieved, c->achieved, c->nachieved,
                           sizeof *d->achieved, &d->nachieved);
  d->levels =
      merge_list(L, d->levels, d->nlevels, c->levels, c->nlevels, sizeof *d->levels, &d->nlevels);
  d->params =
      merge_list(L, d->params, d->nparams, c->params, c->nparams, sizeof *d->params, &d->nparams);
  d->mac_pj =
      merge_list(L, d->mac_pj, d->nmac_pj, c->mac_pj, c->nmac_pj, sizeof *d->mac_pj, &d->nmac_pj);
  if (c->has_power) {
    d->has_power = 1;
    d->idle_w = c->idle_w;
    d->active_w = c->active_w;
    d->power_source = c->power_source;
    d->power_shared = c->power_shared;
    d->power_file = c->power_file;
    d->power_line = c->power_line;
  }
  if (c->has_ops) {
    d->has_ops = 1;
    d->ops_file = c->ops_file;
    d->ops_line = c->ops_line;
    d->ops = merge_list(L, d->ops, d->nops, c->ops, c->nops, sizeof *d->ops, &d->nops);
  }
}

/* Applies |child| on top of |parent|, in place in |child|. */
static void merge_target(loader *L, const moss_target *parent, moss_target *child) {
  device *r = arena_array(L, parent->ndevices + child->ndevices, sizeof *r);
  int n = parent->ndevices, i, k;
  if (!r) return;
  if (n) memcpy(r, parent->devices, (size_t)n * sizeof *r);
  for (i = 0; i < child->ndevices; i++) {
    const device *c = &child->devices[i];
    for (k = 0; k < n; k++)
      if (strcmp(r[k].id, c->id) == 0) break;
    if (k == n) {
      r[n++] = *c;
    } else {
      merge_device(L, &r[k], c);
    }
  }
  child->devices = r;
  child->ndevices = n;
  if (!child->placement) child->placement = parent->placement;
  if (!child->fallback) {
    child->fallback = parent->fallback;
    child->fallback_file = parent->fallback_file;
    child->fallback_line = parent->fallback_line;
  }
}

/* ---------------------------------------------------------------------------
 * Loading */

static moss_status load_schema(loader *L) {
  char *path = L->schema_path;
  char *data;
  size_t size;
  int e;
  xmlSchemaParserCtxtPtr pctxt;
  if ((size_t)snprintf(path, PATH_CAP, "%s/%s", L->dir, SCHEMA_FILE) >= PATH_CAP)
    return fail(L, MOSS_E_TARGET, "%s: path too long", L->dir);
  if ((e = read_all(L->ctx, path, &data, &size)) != 0) {
    if (e == ENOMEM) return fail(L, MOSS_E_NOMEM, "%s: no memory to read it", path);
    return fail(L, MOSS_E_TARGET, "%s: cannot read the target schema: %s (is MOSS_TARGETS_DIR "
                "right?)", path, strerror(e));
  }
  if (moss_file_note_input(L->ctx, path) != MOSS_OK) { /* the cache key hashes it */
    moss_free(L->ctx, data, size + 1);
    return fail(L, MOSS_E_NOMEM, "%s: no memory", path);
  }
  xml_report_to(L, path, "malformed XML: ", 1);
  L->schema_doc = xmlReadMemory(data, (int)size, path, NULL, XML_PARSE_NONET | XML_PARSE_BIG_LINES);
  moss_free(L->ctx, data, size + 1);
  if (!L->schema_doc) {
    if (!L->nerr) fail(L, MOSS_E_TARGET, "%s:1: malformed XML", path);
    return L->st;
  }
  xml_report_to(L, path, "bad schema: ", 0);
  if (!(pctxt = xmlSchemaNewDocParserCtxt(L->schema_doc)))
    return fail(L, MOSS_E_NOMEM, "%s: no memory for the schema parser", path);
  xmlSchemaSetParserStructuredErrors(pctxt, on_xml_error, L);
  L->schema = xmlSchemaParse(pctxt);
  xmlSchemaFreeParserCtxt(pctxt);
  if (!L->schema) {
    if (!L->nerr) fail(L, MOSS_E_TARGET, "%s:1: bad schema", path);
    return L->st;
  }
  if (!(L->vctxt = xmlSchemaNewValidCtxt(L->schema)))
    return fail(L, MOSS_E_NOMEM, "%s: no memory for the schema validator", path);
  xmlSchemaSetValidStructuredErrors(L->vctxt, on_xml_error, L);
  return MOSS_OK;
}

static moss_status load_file(loader *L, const char *path, const char *want_name,
                             moss_target **out);

/* Finds the parent named |name| of the target in |child_path|: next to it,
 * then in the targets folder. */
static moss_status load_parent(loader *L, const moss_target *child, moss_target **out) {
  char dir[PATH_CAP], path[PATH_CAP], chain[1024];
  const char *slash = strrchr(child->path, '/');
  size_t dl = slash ? (size_t)(slash - child->path) : 1;
  size_t cl = 0;
  int i;
  *out = NULL;
  for (i = 0; i < L->depth; i++) {
    if (strcmp(L->chain[i], child->inherit) != 0) continue;
    for (; i < L->depth && cl < sizeof chain; i++)
      cl += (size_t)snprintf(chain + cl, sizeof chain - cl, "%s -> ", L->chain[i]);
    if (cl < sizeof chain) snprintf(chain + cl, sizeof chain - cl, "%s", child->inherit);
    return fail(L, MOSS_E_TARGET, "%s:%d: inherit cycle: %s", child->path, child->line, chain);
  }
  if (L->depth >= MAX_INHERIT)
    return fail(L, MOSS_E_TARGET, "%s:%d: inherit chain longer than %d targets", child->path,
                child->line, MAX_INHERIT);
  if (dl >= sizeof dir) dl = sizeof dir - 1;
  memcpy(dir, slash ? child->path : ".", dl);
  dir[dl] = 0;
  if ((size_t)snprintf(path, sizeof path, "%s/%s.xml", dir, child->inherit) < sizeof path &&
      file_exists(path))
    return load_file(L, path, child->inherit, out);
  if ((size_t)snprintf(path, sizeof path, "%s/%s.xml", L->dir, child->inherit) < sizeof path &&
      file_exists(path))
    return load_file(L, path, child->inherit, out);
  return fail(L, MOSS_E_TARGET, "%s:%d: inherit: unknown target '%s' (no %s.xml in %s%s%s)",
              child->path, child->line, child->inherit, child->inherit, dir,
              strcmp(dir, L->dir) ? " or " : "", strcmp(dir, L->dir) ? L->dir : "");
}

/* Reads, validates and parses one file, then its parents. |want_name| is the
 * name it was looked up by (NULL when given as a path). */
static moss_status load_file(loader *L, const char *path, const char *want_name,
                             moss_target **out) {
  moss_target *t, *parent = NULL;
  const char *file;
  char *data;
  size_t size;
  xmlDocPtr doc;
  int e, rc;
  *out = NULL;
  if (!(file = dup_str(L, path)) || L->oom) return fail(L, MOSS_E_NOMEM, "%s: no memory", path);
  if ((e = read_all(L->ctx, path, &data, &size)) != 0) {
    if (e == ENOMEM) return fail(L, MOSS_E_NOMEM, "%s: no memory to read it", path);
    if (want_name && e == ENOENT && L->depth == 0)
      return fail(L, MOSS_E_TARGET, "%s: unknown target '%s' (`moss targets list` shows them)",
                  path, want_name);
    return fail(L, MOSS_E_TARGET, "%s: cannot read target file: %s", path, strerror(e));
  }
  if (moss_file_note_input(L->ctx, path) != MOSS_OK) { /* no output may replace it */
    moss_free(L->ctx, data, size + 1);
    return fail(L, MOSS_E_NOMEM, "%s: no memory", path);
  }
  if (size == 0) {
    moss_free(L->ctx, data, 1);
    return fail(L, MOSS_E_TARGET, "%s:1: malformed XML: the file is empty", path);
  }
  xml_report_to(L, file, "malformed XML: ", 1);
  doc = xmlReadMemory(data, (int)size, file, NULL, XML_PARSE_NONET | XML_PARSE_BIG_LINES);
  moss_free(L->ctx, data, size + 1);
  if (!doc) {
    if (!L->nerr) fail(L, MOSS_E_TARGET, "%s:1: malformed XML", file);
    return L->st;
  }
  xml_report_to(L, file, "", 0);
  rc = xmlSchemaValidateDoc(L->vctxt, doc);
  if (rc != 0) {
    if (!L->nerr) fail(L, MOSS_E_TARGET, "%s:1: does not match %s", file, SCHEMA_FILE);
    xmlFreeDoc(doc);
    return L->st;
  }
  if (!(t = moss_arena_alloc(L->arena, sizeof *t, 16))) {
    xmlFreeDoc(doc);
    return fail(L, MOSS_E_NOMEM, "%s: no memory", file);
  }
  parse_target(L, xmlDocGetRootElement(doc), file, t);
  xmlFreeDoc(doc);
  if (L->oom) return fail(L, MOSS_E_NOMEM, "%s: no memory for the target", file);
  if (L->st != MOSS_OK) return L->st;
  if (want_name && strcmp(t->name, want_name) != 0)
    return fail(L, MOSS_E_TARGET, "%s:%d: target name '%s' does not match its file name '%s.xml'",
                file, t->line, t->name, want_name);
  if (t->inherit) {
    L->chain[L->depth++] = t->name;
    load_parent(L, t, &parent);
    L->depth--;
    if (!parent) return L->st;
    merge_target(L, parent, t);
    if (L->oom) return fail(L, MOSS_E_NOMEM, "%s: no memory for the target", file);
  }
  *out = t;
  return MOSS_OK;
}

/* What XSD 1.0 cannot say, checked once inheritance is resolved. */
static moss_status check_target(loader *L, const moss_target *t) {
  int i;
  if (t->ndevices == 0)
    fail(L, MOSS_E_TARGET, "%s:%d: target '%s' has no device (give a <device> or inherit=)",
         t->path, t->line, t->name);
  for (i = 0; i < t->ndevices; i++) {
    const device *d = &t->devices[i];
    if (!d->kind)
      fail(L, MOSS_E_TARGET, "%s:%d: device '%s' has no kind (cpu, gpu or npu)", d->file,
           d->line, d->id);
    if (!d->backend)
      fail(L, MOSS_E_TARGET, "%s:%d: device '%s' has no backend (c, llvm, opencl, ptx, vulkan or "
           "plugin:NAME)", d->file, d->line, d->id);
    else if (d->plugin && strncmp(d->backend, "plugin:", 7) != 0)
      fail(L, MOSS_E_TARGET, "%s:%d: device '%s': plugin= is given but its backend is '%s' "
           "(plugin= is for backend=\"plugin:NAME\")", d->plugin_file, d->plugin_line, d->id,
           d->backend);
  }
  if (t->fallback && moss_target_device_find(t, t->fallback) < 0)
    fail(L, MOSS_E_TARGET, "%s:%d: fallback device '%s' is not a device of target '%s'",
         t->fallback_file, t->fallback_line, t->fallback, t->name);
  /* A shared supply is one figure: every device that names it gives the same. */
  for (i = 0; i < t->ndevices; i++) {
    const device *d = &t->devices[i];
    int k;
    if (!d->has_power || !d->power_shared) continue;
    for (k = 0; k < i; k++) {
      const device *e = &t->devices[k];
      if (!e->has_power || !e->power_shared || strcmp(e->power_shared, d->power_shared) != 0)
        continue;
      if (e->idle_w != d->idle_w || e->active_w != d->active_w)
        fail(L, MOSS_E_TARGET, "%s:%d: device '%s': power shared=\"%s\" is idle %g W, active "
             "%g W, but device '%s' gives %g W, %g W for the same supply (%s:%d); a shared "
             "supply is one figure", d->power_file, d->power_line, d->id, d->power_shared,
             d->idle_w, d->active_w, e->id, e->idle_w, e->active_w, e->power_file,
             e->power_line);
      break;
    }
  }
  return L->st;
}

/* ---------------------------------------------------------------------------
 * Host detection: targets/host.xml holds estimates for a typical machine; when
 * the target is "host", what the running machine can tell about itself
 * replaces them, each figure relabelled measured:<how>. Nothing here may fail
 * for want of a file (containers often lack /sys or parts of /proc): what is
 * not found keeps host.xml's estimate. */

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define HAVE_CPU_SUPPORTS 1
#endif

/* printf into the arena; NULL (and L->oom) when out of memory. */
static const char *arena_printf(loader *L, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static const char *arena_printf(loader *L, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return dup_str(L, buf);
}

/* The value of the first "|key| : value" line of /proc/cpuinfo, trimmed. */
static int cpuinfo_field(const char *key, char *out, size_t cap) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  size_t n = strlen(key);
  int found = 0;
  out[0] = 0;
  if (!f) return 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *p = line, *e;
    if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\t' && line[n] != ':'))
      continue;
    if (!(p = strchr(line, ':'))) continue;
    for (p++; *p == ' ' || *p == '\t'; p++) {
    }
    e = p + strlen(p);
    while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    snprintf(out, cap, "%s", p);
    found = *out != 0;
  }
  fclose(f);
  return found;
}

/* Reads a small text file into |out|, trailing white space removed. */
static int read_line(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n;
  out[0] = 0;
  if (!f) return 0;
  if (!fgets(out, (int)cap, f)) out[0] = 0;
  fclose(f);
  n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
  return n > 0;
}

/* Size in bytes of the level-|level| data (or unified) cache of cpu0, and
 * how it was found (|how|); 0 when unknown. sysconf first, then sysfs. */
static uint64_t cache_size(int level, char *how, size_t cap) {
  static const int names[3] = {_SC_LEVEL1_DCACHE_SIZE, _SC_LEVEL2_CACHE_SIZE,
                               _SC_LEVEL3_CACHE_SIZE};
  static const char *const labels[3] = {"_SC_LEVEL1_DCACHE_SIZE", "_SC_LEVEL2_CACHE_SIZE",
                                        "_SC_LEVEL3_CACHE_SIZE"};
  char path[128], text[64];
  long v = sysconf(names[level - 1]);
  int k;
  if (v > 0) {
    snprintf(how, cap, "measured:sysconf (%s = %ld bytes)", labels[level - 1], v);
    return (uint64_t)v;
  }
  for (k = 0; k < 16; k++) {
    char *end;
    unsigned long long size;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", k);
    if (!read_line(path, text, sizeof text)) break;
    if (atoi(text) != level) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", k);
    if (!read_line(path, text, sizeof text) || strcmp(text, "Instruction") == 0) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", k);
    if (!read_line(path, text, sizeof text)) continue;
    size = strtoull(text, &end, 10);
    if (*end == 'K') size *= 1024;
    else if (*end == 'M') size *= 1024 * 1024;
    if (!size) continue;
    snprintf(how, cap, "measured:sysfs (%s = %s)", path, text);
    return (uint64_t)size;
  }
  return 0;
}

/* The figure |lv| now has a measured size; its bandwidth and latency keep
 * host.xml's source. */
static void set_level_size(loader *L, moss_target_level *lv, uint64_t size, const char *how) {
  lv->size_bytes = size;
  if (lv->perf_source)
    lv->perf_source =
        arena_printf(L, "%s; bandwidth and latency from host.xml: %s", how, lv->perf_source);
  else
    lv->perf_source = dup_str(L, how);
}

static void detect_levels(loader *L, device *d) {
  static const char *const names[3] = {"l1", "l2", "l3"};
  moss_target_level *lv = arena_array(L, d->nlevels + 1, sizeof *lv);
  char how[512];
  long pages, page;
  int n = d->nlevels, level, k;
  if (!lv) return;
  if (n) memcpy(lv, d->levels, (size_t)n * sizeof *lv);
  for (level = 1; level <= 3; level++) {
    uint64_t size = cache_size(level, how, sizeof how);
    if (!size) continue;
    for (k = 0; k < n; k++)
      if (strcmp(lv[k].name, names[level - 1]) == 0) break;
    if (k == n && level == 3) { /* host.xml has no l3: add one before dram */
      int at = n, l2 = -1, j;
      for (j = 0; j < n; j++) {
        if (strcmp(lv[j].name, "dram") == 0 && at == n) at = j;
        if (strcmp(lv[j].name, "l2") == 0) l2 = j;
      }
      memmove(&lv[at + 1], &lv[at], (size_t)(n - at) * sizeof *lv);
      memset(&lv[at], 0, sizeof lv[at]);
      lv[at].name = "l3";
      if (l2 >= 0 && lv[l2 < at ? l2 : l2 + 1].has_energy) {
        const moss_target_level *src = &lv[l2 < at ? l2 : l2 + 1];
        lv[at].has_energy = 1;
        lv[at].pj_per_byte = src->pj_per_byte;
        lv[at].source = src->source;
      } else {
        lv[at].source = "not-modeled";
      }
      n++;
      k = at;
    }
    if (k < n) set_level_size(L, &lv[k], size, how);
  }
  pages = sysconf(_SC_PHYS_PAGES);
  page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    for (k = 0; k < n; k++)
      if (strcmp(lv[k].name, "dram") == 0) break;
    snprintf(how, sizeof how, "measured:sysconf (_SC_PHYS_PAGES %ld x _SC_PAGESIZE %ld)", pages,
             page);
    if (k < n) set_level_size(L, &lv[k], (uint64_t)pages * (uint64_t)page, how);
  }
  d->levels = lv;
  d->nlevels = n;
}

static void detect_features(loader *L, device *d) {
#ifdef HAVE_CPU_SUPPORTS
  char list[256];
  size_t n = 0;
#define PROBE(name)                                                                      \
  if (__builtin_cpu_supports(name))                                                       \
    n += (size_t)snprintf(list + n, sizeof list - n, "%s+%s", n ? "," : "", name);
  __builtin_cpu_init();
  list[0] = 0;
  PROBE("sse4.2")
  PROBE("avx")
  PROBE("avx2")
  PROBE("fma")
  PROBE("avx512f")
  PROBE("avx512bw")
  PROBE("avx512vl")
  PROBE("avx512vnni")
#undef PROBE
  d->codegen[CG_FEATURES] = dup_str(L, list);
  d->codegen_source = "features measured:cpuid (__builtin_cpu_supports: sse4.2 avx avx2 fma "
                      "avx512f avx512bw avx512vl avx512vnni probed)";
#else
  (void)L;
  (void)d;
#endif
}

/* Overrides host.xml's cpu device with what this machine says. */
static void detect_host(loader *L, moss_target *t) {
  char model[256], mhz[64], units[96] = "", clock[160] = "";
  device *d;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  int i;
  for (i = 0; i < t->ndevices; i++)
    if (strcmp(t->devices[i].kind, "cpu") == 0) break;
  if (i == t->ndevices) return;
  d = &t->devices[i];
  if (n > 0 && n <= INT_MAX) {
    d->units = (int)n;
    snprintf(units, sizeof units, "units measured:sysconf (_SC_NPROCESSORS_ONLN = %ld); ", n);
  }
  if (cpuinfo_field("cpu MHz", mhz, sizeof mhz) && strtod(mhz, NULL) > 0) {
    d->clock_mhz = strtod(mhz, NULL);
    snprintf(clock, sizeof clock, "clock measured:/proc/cpuinfo (cpu MHz %s, the current "
             "frequency); ", mhz);
  }
  if (*units || *clock)
    d->compute_source = arena_printf(L, "%s%sthe rest from host.xml: %s", units, clock,
                                     d->compute_source ? d->compute_source : "not given");
  if (cpuinfo_field("model name", model, sizeof model))
    t->description = arena_printf(L, "%s; CPU '%s' (measured:/proc/cpuinfo model name)",
                                  t->description, model);
  detect_levels(L, d);
  detect_features(L, d);
}

static moss_status load(moss_ctx *ctx, const char *name_or_path, int as_path,
                        moss_target **out_target) {
  loader L;
  char path[PATH_CAP];
  const char *want = NULL;
  moss_target *t = NULL;
  xmlStructuredErrorFunc old_serror = xmlStructuredError;
  void *old_sctx = xmlStructuredErrorContext;
  xmlGenericErrorFunc old_gerror = xmlGenericError;
  void *old_gctx = xmlGenericErrorContext;

  *out_target = NULL;
  memset(&L, 0, sizeof L);
  L.ctx = ctx;
  L.dir = targets_dir();
  if (!name_or_path) name_or_path = "host";
  if (as_path || strchr(name_or_path, '/') || ends_with(name_or_path, ".xml")) {
    if ((size_t)snprintf(path, sizeof path, "%s", name_or_path) >= sizeof path)
      return moss_fail(ctx, MOSS_E_TARGET, NULL, "%.64s...: path too long", name_or_path);
  } else {
    want = name_or_path;
    if ((size_t)snprintf(path, sizeof path, "%s/%s.xml", L.dir, want) >= sizeof path)
      return moss_fail(ctx, MOSS_E_TARGET, NULL, "%.64s...: target name too long", want);
  }
  if (moss_arena_create(ctx->alloc, 4096, &L.arena) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "%s: no memory for the target", path);

  xmlInitParser();
  xmlSetStructuredErrorFunc(&L, on_xml_error);
  xmlSetGenericErrorFunc(NULL, on_generic_error);
  if (load_schema(&L) == MOSS_OK && load_file(&L, path, want, &t) == MOSS_OK &&
      check_target(&L, t) == MOSS_OK && want && strcmp(want, "host") == 0) {
    detect_host(&L, t);
    if (L.oom) fail(&L, MOSS_E_NOMEM, "%s: no memory for the detected host figures", path);
  }
  if (L.vctxt) xmlSchemaFreeValidCtxt(L.vctxt);
  if (L.schema) xmlSchemaFree(L.schema);
  if (L.schema_doc) xmlFreeDoc(L.schema_doc);
  xmlSetStructuredErrorFunc(old_sctx, old_serror);
  xmlSetGenericErrorFunc(old_gctx, old_gerror);

  if (L.st == MOSS_OK && !t)
    fail(&L, MOSS_E_INTERNAL, "%s: loading failed without a message", path);
  if (L.st != MOSS_OK) {
    moss_arena_destroy(L.arena);
    return L.st;
  }
  t->arena = L.arena;
  *out_target = t;
  return MOSS_OK;
}

moss_status moss_target_load(moss_ctx *ctx, const char *name_or_path, moss_target **out_target) {
  return load(ctx, name_or_path, 0, out_target);
}

void moss_target_destroy(moss_ctx *ctx, moss_target *t) {
  (void)ctx;
  if (t) moss_arena_destroy(t->arena);
}

/* ---------------------------------------------------------------------------
 * Accessors */

const char *moss_target_name(const moss_target *t) { return t->name; }
const char *moss_target_vendor(const moss_target *t) { return t->vendor; }
const char *moss_target_description(const moss_target *t) { return t->description; }
const char *moss_target_path(const moss_target *t) { return t->path; }
const char *moss_target_inherit(const moss_target *t) { return t->inherit; }
int moss_target_fallback(const moss_target *t) {
  return t->fallback ? moss_target_device_find(t, t->fallback) : -1;
}

int moss_target_placement_cost(const moss_target *t) {
  return t->placement && !strcmp(t->placement, "cost");
}

int moss_target_host_device(const moss_target *t) {
  int fb = moss_target_fallback(t), i;
  if (fb >= 0) return fb;
  for (i = 0; i < t->ndevices; i++)
    if (!strcmp(t->devices[i].kind, "cpu")) return i;
  return 0;
}

int moss_target_device_count(const moss_target *t) { return t->ndevices; }
const char *moss_target_device_id(const moss_target *t, int i) { return t->devices[i].id; }
const char *moss_target_device_kind(const moss_target *t, int i) { return t->devices[i].kind; }
const char *moss_target_device_backend(const moss_target *t, int i) {
  return t->devices[i].backend;
}

int moss_target_device_find(const moss_target *t, const char *id) {
  int i;
  for (i = 0; i < t->ndevices; i++)
    if (strcmp(t->devices[i].id, id) == 0) return i;
  return -1;
}

int moss_target_device_param_count(const moss_target *t, int i) {
  return t->devices[i].nparams;
}

void moss_target_device_param(const moss_target *t, int i, int k, const char **out_name,
                              const char **out_value) {
  *out_name = t->devices[i].params[k].name;
  *out_value = t->devices[i].params[k].value;
}

const char *moss_target_device_codegen(const moss_target *t, int i, const char *key) {
  int k;
  for (k = 0; k < CG_COUNT; k++)
    if (strcmp(cg_keys[k], key) == 0) return t->devices[i].codegen[k];
  return NULL;
}

const char *moss_target_device_plugin(const moss_target *t, int i) {
  return t->devices[i].plugin;
}

/* A numeric <codegen> attribute; the schema has checked it is a positive
 * integer that fits its type. */
static uint64_t codegen_number(const moss_target *t, int i, int key) {
  const char *v = t->devices[i].codegen[key];
  return v ? (uint64_t)strtoull(v, NULL, 10) : 0;
}

int moss_target_device_max_workgroup_size(const moss_target *t, int i) {
  return (int)codegen_number(t, i, CG_MAX_WG);
}
int moss_target_device_subgroup_size(const moss_target *t, int i) {
  return (int)codegen_number(t, i, CG_SUBGROUP);
}
uint64_t moss_target_device_local_memory_bytes(const moss_target *t, int i) {
  return codegen_number(t, i, CG_LOCAL_MEM);
}

double moss_target_device_clock_mhz(const moss_target *t, int i) {
  return t->devices[i].clock_mhz;
}
int moss_target_device_units(const moss_target *t, int i) { return t->devices[i].units; }

static const figure *find_figure(const figure *f, int n, const char *dtype) {
  int k;
  for (k = 0; k < n; k++)
    if (strcmp(f[k].dtype, dtype) == 0) return &f[k];
  return NULL;
}

double moss_target_device_macs_per_cycle(const moss_target *t, int i, const char *dtype) {
  const figure *f = find_figure(t->devices[i].macs, t->devices[i].nmacs, dtype);
  return f ? f->value : 0;
}

double moss_target_device_mac_rate(const moss_target *t, int i, const char *dtype,
                                   const char **out_as) {
  static const char *const twin[][2] = {{"u8", "i8"}, {"u16", "i16"}, {"u32", "i32"},
                                        {"u64", "i64"}};
  double r = moss_target_device_macs_per_cycle(t, i, dtype);
  size_t k;
  *out_as = dtype;
  if (r > 0) return r;
  for (k = 0; k < sizeof twin / sizeof twin[0]; k++)
    if (!strcmp(dtype, twin[k][0])) {
      *out_as = twin[k][1];
      return moss_target_device_macs_per_cycle(t, i, twin[k][1]);
    }
  return 0;
}

double moss_target_device_achieved(const moss_target *t, int i, const char *kernel,
                                   const char **out_source) {
  const figure *f = find_figure(t->devices[i].achieved, t->devices[i].nachieved, kernel);
  *out_source = f ? f->source : NULL;
  return f ? f->value : 1;
}

double moss_target_device_step_ns(const moss_target *t, int i) { return t->devices[i].step_ns; }

int moss_target_device_mac_pj(const moss_target *t, int i, const char *dtype, double *out_pj,
                              const char **out_source) {
  const figure *f = find_figure(t->devices[i].mac_pj, t->devices[i].nmac_pj, dtype);
  *out_pj = f ? f->value : 0;
  *out_source = f ? f->source : NULL;
  return f != NULL;
}

int moss_target_device_power(const moss_target *t, int i, double *out_idle_w,
                             double *out_active_w, const char **out_source) {
  const device *d = &t->devices[i];
  *out_idle_w = d->has_power ? d->idle_w : 0;
  *out_active_w = d->has_power ? d->active_w : 0;
  *out_source = d->has_power ? d->power_source : NULL;
  return d->has_power;
}

const char *moss_target_device_power_shared(const moss_target *t, int i) {
  return t->devices[i].has_power ? t->devices[i].power_shared : NULL;
}

int moss_target_device_level_count(const moss_target *t, int i) { return t->devices[i].nlevels; }

void moss_target_device_level(const moss_target *t, int i, int k, moss_target_level *out_level) {
  *out_level = t->devices[i].levels[k];
}

int moss_target_device_supports(const moss_target *t, int i, const char *op_type,
                                const char *dtype) {
  const device *d = &t->devices[i];
  int k;
  if (!d->has_ops) return -1;
  for (k = 0; k < d->nops; k++)
    if (strcmp(d->ops[k].name, op_type) == 0) return list_has(d->ops[k].dtypes, dtype);
  return 0;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Writes the reason into |why| (when there is room) and returns 0. */
static int refuse(char *why, size_t whycap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int refuse(char *why, size_t whycap, const char *fmt, ...) {
  va_list ap;
  if (!why || !whycap) return 0;
  va_start(ap, fmt);
  vsnprintf(why, whycap, fmt, ap);
  va_end(ap);
  return 0;
}

/* Whether the space-separated integer |list| holds |v|. */
static int int_list_has(const char *list, long v) {
  const char *p = list;
  char *end;
  while (*p) {
    long x = strtol(p, &end, 10);
    if (end == p) break;
    if (x == v) return 1;
    for (p = end; *p == ' '; p++) {
    }
  }
  return 0;
}

int moss_target_device_accepts(const moss_target *t, int i, const moss_target_node_facts *f,
                               char *why, size_t whycap) {
  const device *d = &t->devices[i];
  const op *o = NULL;
  const char *file;
  int k;
  if (why && whycap) why[0] = 0;
  if (!d->has_ops) return -1;
  if (!f || !f->op_type) return refuse(why, whycap, "the node has no op_type");
  for (k = 0; k < d->nops && !o; k++)
    if (strcmp(d->ops[k].name, f->op_type) == 0) o = &d->ops[k];
  if (!o)
    return refuse(why, whycap, "no %s%s%s in its <ops> (%s:%d)", f->op_type,
                  f->dtype ? " for " : "", f->dtype ? f->dtype : "", base_name(d->ops_file),
                  d->ops_line);
  file = base_name(o->file);
  if (f->dtype && !list_has(o->dtypes, f->dtype))
    return refuse(why, whycap, "no %s for %s in its <ops>, only %s (%s:%d)", f->op_type, f->dtype,
                  o->dtypes, file, o->line);
  for (k = 0; k < 2; k++) {
    int side = f->kernel[k];
    if (side <= 0) continue;
    if (o->max_kernel && side > o->max_kernel)
      return refuse(why, whycap, "%s kernel %d > max-kernel %d (%s:%d)", f->op_type, side,
                    o->max_kernel, file, o->line);
    if (o->kernels && !int_list_has(o->kernels, side))
      return refuse(why, whycap, "%s kernel %d not in kernels %s (%s:%d)", f->op_type, side,
                    o->kernels, file, o->line);
  }
  for (k = 0; k < 2; k++)
    if (f->stride[k] > 0 && o->strides && !int_list_has(o->strides, f->stride[k]))
      return refuse(why, whycap, "%s stride %d not in strides %s (%s:%d)", f->op_type,
                    f->stride[k], o->strides, file, o->line);
  if (o->max_channels && f->in_channels > o->max_channels)
    return refuse(why, whycap, "%s in_channels %lld > max-channels %lld (%s:%d)", f->op_type,
                  (long long)f->in_channels, (long long)o->max_channels, file, o->line);
  if (o->max_channels && f->out_channels > o->max_channels)
    return refuse(why, whycap, "%s out_channels %lld > max-channels %lld (%s:%d)", f->op_type,
                  (long long)f->out_channels, (long long)o->max_channels, file, o->line);
  if (o->max_rank && f->rank > o->max_rank)
    return refuse(why, whycap, "%s rank %d > max-rank %d (%s:%d)", f->op_type, f->rank,
                  o->max_rank, file, o->line);
  return 1;
}

/* ---------------------------------------------------------------------------
 * `moss targets` */

/* One line: name, vendor, the kinds of its devices ("cpu+gpu"), description. */
static void print_list_line(const moss_target *t) {
  char kinds[64];
  size_t n = 0;
  int i, j;
  kinds[0] = 0;
  for (i = 0; i < t->ndevices; i++) {
    const char *k = t->devices[i].kind;
    for (j = 0; j < i; j++)
      if (strcmp(t->devices[j].kind, k) == 0) break;
    if (j < i) continue;
    if (n + strlen(k) + 2 >= sizeof kinds) break;
    n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s%s", n ? "+" : "", k);
  }
  printf("%-16s %-12s %-12s %s\n", t->name, t->vendor, kinds, t->description);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static moss_status cli_list(moss_ctx *ctx) {
  const char *dir = targets_dir();
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0, i;
  moss_status st = MOSS_OK;
  if (!d) return moss_fail(ctx, MOSS_E_TARGET, NULL, "%s: cannot list targets: %s", dir,
                           strerror(errno));
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    char *s;
    if (len <= 4 || !ends_with(e->d_name, ".xml") || e->d_name[0] == '.') continue;
    if (n == cap) {
      size_t ncap = cap ? 2 * cap : 16;
      char **p = moss_realloc(ctx, names, cap * sizeof *names, ncap * sizeof *names);
      if (!p) {
        st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "%s: no memory to list targets", dir);
        break;
      }
      names = p;
      cap = ncap;
    }
    if (!(s = moss_alloc(ctx, len - 3))) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "%s: no memory to list targets", dir);
      break;
    }
    memcpy(s, e->d_name, len - 4); /* the name without ".xml" */
    names[n++] = s;
  }
  closedir(d);
  if (st == MOSS_OK) {
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (i = 0; i < n; i++) {
      moss_target *t;
      moss_status s = moss_target_load(ctx, names[i], &t);
      if (s != MOSS_OK) {
        if (st == MOSS_OK) st = s;
        continue;
      }
      print_list_line(t);
      moss_target_destroy(ctx, t);
    }
  }
  for (i = 0; i < n; i++) moss_free(ctx, names[i], strlen(names[i]) + 1);
  moss_free(ctx, names, cap * sizeof *names);
  return st;
}

static void print_device(const moss_target *t, int i, int paths, moss_buf *b) {
  const device *d = &t->devices[i];
  int k, any = 0;
  const char *base = d->plugin ? strrchr(d->plugin, '/') : NULL;
  moss_buf_printf(b, "device %s: kind %s, backend %s%s", d->id, d->kind, d->backend,
                  i == moss_target_fallback(t) ? ", fallback" : "");
  if (paths) moss_buf_printf(b, "  [%s:%d]", d->file, d->line);
  moss_buf_printf(b, "\n");
  if (d->plugin && paths)
    moss_buf_printf(b, "  plugin: %s  [%s:%d]\n", d->plugin, d->plugin_file, d->plugin_line);
  else if (d->plugin) /* the library's bytes are in the cache key, its folder is not */
    moss_buf_printf(b, "  plugin: %s\n", base ? base + 1 : d->plugin);
  for (k = 0; k < d->nparams; k++)
    moss_buf_printf(b, "%s%s=%s%s", k ? ", " : "  params: ", d->params[k].name,
                    d->params[k].value, k + 1 == d->nparams ? "\n" : "");
  for (k = 0; k < CG_COUNT; k++) {
    if (!d->codegen[k]) continue;
    moss_buf_printf(b, "%s%s %s", any ? ", " : "  codegen: ", cg_keys[k],
                    *d->codegen[k] ? d->codegen[k] : "(empty)");
    any = 1;
  }
  if (any) moss_buf_printf(b, "\n");
  if (d->codegen_source) moss_buf_printf(b, "    source: %s\n", d->codegen_source);
  if (d->clock_mhz > 0 || d->units > 0 || d->nmacs) {
    moss_buf_printf(b, "  compute:");
    if (d->units > 0) moss_buf_printf(b, " %d unit%s", d->units, d->units == 1 ? "" : "s");
    if (d->clock_mhz > 0) moss_buf_printf(b, " at %g MHz", d->clock_mhz);
    for (k = 0; k < d->nmacs; k++)
      moss_buf_printf(b, "%s %s %g", k ? "," : "; MACs/cycle/unit:", d->macs[k].dtype,
                      d->macs[k].value);
    moss_buf_printf(b, "\n");
    if (d->compute_source) moss_buf_printf(b, "    source: %s\n", d->compute_source);
  }
  for (k = 0; k < d->nlevels; k++) {
    const moss_target_level *lv = &d->levels[k];
    int nf = 0;
    moss_buf_printf(b, "  memory %s:", lv->name);
    if (lv->size_bytes)
      moss_buf_printf(b, "%s %llu bytes", nf++ ? "," : "", (unsigned long long)lv->size_bytes);
    if (lv->bandwidth_gbps > 0)
      moss_buf_printf(b, "%s %g GB/s", nf++ ? "," : "", lv->bandwidth_gbps);
    if (lv->latency_ns > 0) moss_buf_printf(b, "%s %g ns", nf++ ? "," : "", lv->latency_ns);
    if (lv->has_energy) moss_buf_printf(b, "%s %g pJ/byte", nf++ ? "," : "", lv->pj_per_byte);
    if (lv->read_only) moss_buf_printf(b, "%s read-only", nf++ ? "," : "");
    moss_buf_printf(b, "%s\n    energy source: %s\n", nf ? "" : " no figures", lv->source);
    if (lv->perf_source) moss_buf_printf(b, "    size/speed source: %s\n", lv->perf_source);
  }
  for (k = 0; k < d->nmac_pj; k++)
    moss_buf_printf(b, "  energy per %s MAC: %g pJ\n    source: %s\n", d->mac_pj[k].dtype,
                    d->mac_pj[k].value, d->mac_pj[k].source);
  if (d->has_power)
    moss_buf_printf(b, "  power: idle %g W, active %g W%s%s%s\n    source: %s\n", d->idle_w,
                    d->active_w, d->power_shared ? ", shared supply '" : "",
                    d->power_shared ? d->power_shared : "",
                    d->power_shared ? "' (counted once)" : "", d->power_source);
  if (!d->has_ops) {
    moss_buf_printf(b, "  ops: not listed (the backend decides)\n");
  } else {
    moss_buf_printf(b, "  ops:%s\n", d->nops ? "" : " none");
    for (k = 0; k < d->nops; k++) {
      const op *o = &d->ops[k];
      moss_buf_printf(b, "    %s: %s", o->name, o->dtypes);
      if (o->max_kernel) moss_buf_printf(b, "; max-kernel %d", o->max_kernel);
      if (o->kernels) moss_buf_printf(b, "; kernels %s", o->kernels);
      if (o->strides) moss_buf_printf(b, "; strides %s", o->strides);
      if (o->max_channels) moss_buf_printf(b, "; max-channels %lld", (long long)o->max_channels);
      if (o->max_rank) moss_buf_printf(b, "; max-rank %d", o->max_rank);
      moss_buf_printf(b, "\n");
    }
  }
}

static void print_target(const moss_target *t, int paths, moss_buf *b) {
  int i;
  moss_buf_printf(b, "target %s", t->name);
  if (paths) moss_buf_printf(b, "  [%s]", t->path);
  moss_buf_printf(b, "\n");
  moss_buf_printf(b, "  vendor: %s\n", t->vendor);
  moss_buf_printf(b, "  description: %s\n", t->description);
  if (t->inherit) moss_buf_printf(b, "  inherits: %s\n", t->inherit);
  if (t->fallback) moss_buf_printf(b, "  fallback device: %s\n", t->fallback);
  moss_buf_printf(b, "  placement: %s\n", moss_target_placement_cost(t)
                                                ? "cost (the cheapest device that takes a node)"
                                                : "first (the first device that takes a node)");
  for (i = 0; i < t->ndevices; i++) print_device(t, i, paths, b);
}

void moss_target_describe(const moss_target *t, moss_buf *b) { print_target(t, 0, b); }

moss_status moss_targets_cli(moss_ctx *ctx, int argc, char **argv) {
  const char *usage = "usage: moss targets [list | show NAME | validate FILE.xml]";
  moss_target *t;
  moss_status st;
  const char *cmd = argc > 1 ? argv[1] : "list";
  if (strcmp(cmd, "list") == 0 && argc <= 2) return cli_list(ctx);
  if (strcmp(cmd, "show") == 0 && argc == 3) {
    moss_buf b;
    if ((st = moss_target_load(ctx, argv[2], &t)) != MOSS_OK) return st;
    moss_buf_init(&b, ctx);
    print_target(t, 1, &b);
    moss_target_destroy(ctx, t);
    if (b.failed) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "%s: no memory to show it", argv[2]);
    else fputs(b.data ? b.data : "", stdout);
    moss_buf_deinit(&b);
    return st;
  }
  if (strcmp(cmd, "validate") == 0 && argc == 3) {
    if ((st = load(ctx, argv[2], 1, &t)) != MOSS_OK) return st;
    printf("%s: valid\n", argv[2]);
    moss_target_destroy(ctx, t);
    return MOSS_OK;
  }
  return moss_fail(ctx, MOSS_E_TARGET, NULL, "%s", usage);
}
