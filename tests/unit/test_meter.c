/* test_meter.c - the energy counters of `moss bench --profile`
 * (compiler/driver/meter.c). RAPL is tested on fake powercap trees built
 * under a temporary folder (MOSS_POWERCAP_DIR): which domains count (the
 * packages intel-rapl:N; not the subdomains intel-rapl:N:M, nor psys, nor
 * intel-rapl-mmio:N), the joules between two reads worked out by hand, the
 * wrap-around at max_energy_range_uj, a failed read that changes nothing,
 * and trees where no domain is readable (an energy_uj that is a folder,
 * empty, garbage, too big). MOSS_METER forces a choice. On the real machine
 * the test only asks for no crash and a reason that names both counters when
 * neither is there. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "driver/meter.h"
#include "harness.h"

/* ------------------------------------------------ fake powercap trees */

static char g_root[256];

/* Makes an empty temporary folder, the root of a fake tree; NULL on failure. */
static const char *tree_create(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/moss_meter_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  return mkdtemp(g_root);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void tree_destroy(void) {
  if (g_root[0]) nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  g_root[0] = 0;
}

/* Writes |text| to ROOT/|dir|/|file|, making the folder first. */
static int put(const char *dir, const char *file, const char *text) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", g_root, dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/%s/%s", g_root, dir, file);
  if (!(f = fopen(path, "w"))) return 0;
  fputs(text, f);
  return fclose(f) == 0;
}

/* A domain folder with its name, max_energy_range_uj and energy_uj. */
static int domain(const char *dir, const char *name, const char *max, const char *energy) {
  char line[64];
  snprintf(line, sizeof line, "%s\n", name);
  if (!put(dir, "name", line)) return 0;
  snprintf(line, sizeof line, "%s\n", max);
  if (!put(dir, "max_energy_range_uj", line)) return 0;
  snprintf(line, sizeof line, "%s\n", energy);
  return put(dir, "energy_uj", line);
}

static void use_tree(const char *meter) {
  setenv("MOSS_POWERCAP_DIR", g_root, 1);
  if (meter) setenv("MOSS_METER", meter, 1);
  else unsetenv("MOSS_METER");
}

/* ------------------------------------------------------------- tests */

TEST(rapl_two_packages) {
  moss_meter m;
  char why[256];
  double j0, j1, j2, j3;
  ASSERT_TRUE(tree_create());
  /* package-0 close to its wrap at 1000 J; package-1 with the usual range */
  ASSERT_TRUE(domain("intel-rapl:0", "package-0", "1000000000", "999000000"));
  ASSERT_TRUE(domain("intel-rapl:0:0", "core", "1000000000", "5000"));
  ASSERT_TRUE(domain("intel-rapl:0:1", "dram", "1000000000", "7000"));
  ASSERT_TRUE(domain("intel-rapl:1", "package-1", "262143328850", "1000000"));
  ASSERT_TRUE(domain("intel-rapl:2", "psys", "262143328850", "123456"));
  ASSERT_TRUE(domain("intel-rapl-mmio:0", "package-0", "262143328850", "4000"));
  ASSERT_TRUE(put("intel-rapl", "enabled", "1\n")); /* the control type folder */
  use_tree(NULL);

  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 1);
  ASSERT_STR_CONTAINS(moss_meter_label(&m), "measured:rapl");
  ASSERT_STR_CONTAINS(moss_meter_source(&m),
                      "RAPL package energy, 2 domains (intel-rapl:0, intel-rapl:1)");
  ASSERT_EQ(moss_meter_read(&m, &j0), 1);
  ASSERT_NEAR(j0, 0.0, 1e-12); /* nothing changed since init, the origin */

  /* package-0 wraps: 1000000000 - 999000000 + 2500000 = 3500000 uJ; package-1
   * gains 2000000 uJ; the subdomains, psys and mmio change but do not count. */
  ASSERT_TRUE(domain("intel-rapl:0", "package-0", "1000000000", "2500000"));
  ASSERT_TRUE(domain("intel-rapl:1", "package-1", "262143328850", "3000000"));
  ASSERT_TRUE(domain("intel-rapl:0:0", "core", "1000000000", "900000000"));
  ASSERT_TRUE(domain("intel-rapl:0:1", "dram", "1000000000", "800000000"));
  ASSERT_TRUE(domain("intel-rapl:2", "psys", "262143328850", "99123456"));
  ASSERT_TRUE(domain("intel-rapl-mmio:0", "package-0", "262143328850", "77004000"));
  ASSERT_EQ(moss_meter_read(&m, &j1), 1);
  ASSERT_NEAR(j1 - j0, 5.5, 1e-9);

  /* a failed read (package-1 garbled) changes nothing: package-0's +2 J
   * is counted by the next good read */
  ASSERT_TRUE(domain("intel-rapl:0", "package-0", "1000000000", "4500000"));
  ASSERT_TRUE(put("intel-rapl:1", "energy_uj", "garbage\n"));
  j2 = 1;
  ASSERT_EQ(moss_meter_read(&m, &j2), 0);
  ASSERT_NEAR(j2, 0.0, 0);
  ASSERT_TRUE(put("intel-rapl:1", "energy_uj", "3000000\n"));
  ASSERT_EQ(moss_meter_read(&m, &j2), 1);
  ASSERT_NEAR(j2 - j1, 2.0, 1e-9);

  /* above max_energy_range_uj: a failed read too */
  ASSERT_TRUE(put("intel-rapl:1", "energy_uj", "262143328851\n"));
  ASSERT_EQ(moss_meter_read(&m, &j3), 0);
  ASSERT_TRUE(put("intel-rapl:1", "energy_uj", "3000001\n"));
  ASSERT_EQ(moss_meter_read(&m, &j3), 1);
  ASSERT_NEAR(j3 - j2, 1e-6, 1e-12);

  moss_meter_deinit(&m);
  ASSERT_STR_CONTAINS(moss_meter_label(&m), "none");
  ASSERT_EQ(moss_meter_read(&m, &j3), 0);
  tree_destroy();
}

TEST(rapl_domain_order_and_skips) {
  moss_meter m;
  char why[256];
  double j;
  ASSERT_TRUE(tree_create());
  /* listed by index, not by name: 2 before 10; an unreadable package and
   * malformed folder names skipped */
  ASSERT_TRUE(domain("intel-rapl:10", "package-10", "1000", "10"));
  ASSERT_TRUE(domain("intel-rapl:2", "package-2", "1000", "20"));
  ASSERT_TRUE(domain("intel-rapl:3", "package-3", "1000", ""));
  ASSERT_TRUE(domain("intel-rapl:x", "package-x", "1000", "30"));
  ASSERT_TRUE(domain("intel-rapl:", "package-y", "1000", "30"));
  /* a subdomain is left out by its folder name alone, whatever its name says */
  ASSERT_TRUE(domain("intel-rapl:2:0", "package-2", "1000", "40"));
  use_tree("rapl");
  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 1);
  ASSERT_STR_CONTAINS(moss_meter_source(&m), "2 domains (intel-rapl:2, intel-rapl:10)");
  ASSERT_TRUE(domain("intel-rapl:10", "package-10", "1000", "5"));  /* wraps: 990 + 5 */
  ASSERT_TRUE(domain("intel-rapl:2", "package-2", "1000", "1000")); /* the maximum: +980 */
  ASSERT_TRUE(domain("intel-rapl:2:0", "package-2", "1000", "400"));
  ASSERT_EQ(moss_meter_read(&m, &j), 1);
  ASSERT_NEAR(j, 1975e-6, 1e-12);
  moss_meter_deinit(&m);
  tree_destroy();
}

TEST(rapl_none_readable) {
  moss_meter m;
  char why[512], path[512];
  ASSERT_TRUE(tree_create());
  /* chmod 000 does not stop root: unreadable means not a number, or a folder */
  ASSERT_TRUE(domain("intel-rapl:0", "package-0", "262143328850", "x"));
  snprintf(path, sizeof path, "%s/intel-rapl:0/energy_uj", g_root);
  ASSERT_EQ(remove(path), 0);
  ASSERT_EQ(mkdir(path, 0755), 0);
  ASSERT_TRUE(domain("intel-rapl:1", "package-1", "262143328850", "garbage"));
  ASSERT_TRUE(domain("intel-rapl:2", "package-2", "262143328850", ""));
  ASSERT_TRUE(domain("intel-rapl:3", "package-3", "262143328850", "99999999999999999999999"));
  ASSERT_TRUE(domain("intel-rapl:4", "package-4", "18446744073709551616", "1"));
  ASSERT_TRUE(domain("intel-rapl:5", "package-5", "1000", "1001"));
  ASSERT_TRUE(domain("intel-rapl:6", "package-6", "1000", "12 34"));
  ASSERT_TRUE(domain("intel-rapl:7", "package-7", "1000", "-5"));
  ASSERT_TRUE(domain("intel-rapl:8", "package-8", "0", "0"));
  ASSERT_TRUE(domain("intel-rapl:9", "package-9", "1000",
                     "1234567890123456789012345678901234567890"));
  ASSERT_TRUE(domain("intel-rapl:0:0", "core", "1000", "5")); /* readable, but a subdomain */
  use_tree("rapl");
  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "MOSS_METER=rapl: no RAPL (");
  ASSERT_STR_CONTAINS(why, "has no readable intel-rapl package energy_uj");
  ASSERT_STR_CONTAINS(why, "intel-rapl:0/energy_uj: Is a directory");
  ASSERT_STR_CONTAINS(moss_meter_label(&m), "none");
  ASSERT_STR_CONTAINS(moss_meter_source(&m), "none");
  moss_meter_deinit(&m); /* harmless after a failed init */

  /* no folder at all */
  tree_destroy();
  setenv("MOSS_POWERCAP_DIR", "/nonexistent/powercap", 1);
  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "no RAPL (/nonexistent/powercap: No such file or directory)");

  /* only psys: not a package */
  ASSERT_TRUE(tree_create());
  ASSERT_TRUE(domain("intel-rapl:0", "psys", "1000", "5"));
  use_tree("rapl");
  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "intel-rapl:0 is 'psys', not a package");
  tree_destroy();
}

TEST(meter_forced_none) {
  moss_meter m;
  char why[256], tiny[8];
  ASSERT_TRUE(tree_create());
  ASSERT_TRUE(domain("intel-rapl:0", "package-0", "1000", "5"));
  use_tree("none");
  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "MOSS_METER=none");
  ASSERT_EQ(strlen(why), strlen("MOSS_METER=none"));
  ASSERT_EQ(moss_meter_init(&m, NULL, 0), 0);
  ASSERT_EQ(moss_meter_init(&m, tiny, sizeof tiny), 0); /* truncated, terminated */
  ASSERT_EQ(strlen(tiny), sizeof tiny - 1);
  setenv("MOSS_METER", "bogus", 1);
  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "MOSS_METER=bogus: not none, rapl or nvml");
  setenv("MOSS_METER", "", 1); /* empty: as unset */
  ASSERT_EQ(moss_meter_init(&m, why, sizeof why), 1);
  ASSERT_STR_CONTAINS(moss_meter_label(&m), "measured:rapl");
  moss_meter_deinit(&m);
  tree_destroy();
  unsetenv("MOSS_METER");
}

TEST(meter_forced_nvml_skips_rapl) {
  moss_meter m;
  char why[512];
  ASSERT_TRUE(tree_create());
  ASSERT_TRUE(domain("intel-rapl:0", "package-0", "1000", "5"));
  use_tree("nvml");
  if (moss_meter_init(&m, why, sizeof why)) {
    ASSERT_STR_CONTAINS(moss_meter_label(&m), "measured:nvml"); /* a machine with a GPU */
    moss_meter_deinit(&m);
  } else {
    ASSERT_STR_CONTAINS(why, "MOSS_METER=nvml: no NVML (");
  }
  unsetenv("MOSS_METER");
  tree_destroy();
}

/* Whatever this machine has: no crash, sane readings or a reason naming both. */
TEST(meter_real_machine) {
  moss_meter m;
  char why[512];
  double j0, j1;
  struct timespec pause = {0, 20000000};
  unsetenv("MOSS_POWERCAP_DIR");
  unsetenv("MOSS_METER");
  if (moss_meter_init(&m, why, sizeof why)) {
    printf("  this machine: %s, %s\n", moss_meter_label(&m), moss_meter_source(&m));
    ASSERT_STR_CONTAINS(moss_meter_label(&m), "measured:");
    ASSERT_EQ(moss_meter_read(&m, &j0), 1);
    nanosleep(&pause, NULL);
    ASSERT_EQ(moss_meter_read(&m, &j1), 1);
    ASSERT_TRUE(j0 >= 0 && j1 >= j0);
    moss_meter_deinit(&m);
  } else {
    printf("  this machine: %s\n", why);
    ASSERT_STR_CONTAINS(why, "no RAPL (");
    ASSERT_STR_CONTAINS(why, ") and no NVML (");
  }
}

TEST_MAIN()
