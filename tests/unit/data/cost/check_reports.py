# check_reports.py DIR - checks the reports test_cost wrote into DIR:
# the JSON parses and has the documented top-level keys in order, the CSV has
# the documented header and one row per node, transfer, total and baseline,
# and the HTML is well-formed (XML parser, and html.parser tag balance) with
# an inline SVG bar chart and no external resource.
import csv
import json
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

TOP = ["format", "version", "model", "target", "target_description", "run_id", "grid",
       "devices", "nodes", "transfers", "total", "baseline_fp32_dense", "measured"]
CSV = ("project_name,run_id,row,name,op_type,device,device_kind,dtype,macs_dense,macs_effective,"
       "weight_density,ops,activation_bytes,weight_bytes,activation_level,weight_level,arena_bytes,"
       "weight_total_bytes,cycles,duration,duration_lower_bound,time_label,compute_energy_j,"
       "memory_energy_j,static_energy_j,energy_j,compute_label,memory_label,static_label,"
       "energy_label,energy_consumed,energy_consumed_lower_bound,emissions,emissions_lower_bound,"
       "emissions_rate,cpu_energy,gpu_energy,npu_energy,platform_energy_j,platform_label,cpu_model,"
       "gpu_model,grid_intensity,grid_fallback,sparse_format,sparse_cost_dense,sparse_cost_csr,"
       "sparse_cost_block4x1,sparse_cost_block1x4,sparse_cost_2_4,sparse_cost_columns,measured_duration,"
       "measured_energy_consumed,measured_label").split(",")
VOID = {"meta", "br", "hr", "img", "link", "input"}


class Balance(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v and not v.startswith("#"):
                self.errors.append("external resource %s=%s" % (k, v))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("unbalanced </%s> (open: %s)" % (tag, self.stack[-3:]))
        else:
            self.stack.pop()


def check(d, stem, nrows):
    with open("%s/%s.json" % (d, stem), encoding="utf-8") as f:
        j = json.load(f)
    assert list(j) == TOP, list(j)
    assert j["format"] == "moss-cost-report" and j["version"] == 1
    for fig in ("time_s", "energy_j", "platform_j", "carbon_g", "carbon_g_per_million"):
        v = j["total"][fig]
        assert set(v) == {"value", "label", "partial", "source"}, v
        assert v["label"] in ("op-model", "platform-model", "estimate", "not-modeled"), v
        assert (v["value"] is None) == (v["label"] == "not-modeled"), v
    for n in j["nodes"]:
        assert n["macs_effective"] <= n["macs_dense"]

    with open("%s/%s.csv" % (d, stem), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV, rows[0]
    assert len(rows) == 1 + nrows, len(rows)
    assert all(len(r) == len(CSV) for r in rows), [len(r) for r in rows]
    kinds = [r[2] for r in rows[1:]]
    assert kinds[-2:] == ["total", "baseline_fp32_dense"], kinds
    total = dict(zip(CSV, rows[-2]))
    if total["energy_j"]:
        # energy_consumed and emissions hold complete figures only; a partial
        # one goes to the _lower_bound column (docs/report.md "CSV").
        part = j["total"]["energy_j"]["partial"]
        kwh = float(total["energy_j"]) / 3.6e6
        col = "energy_consumed_lower_bound" if part else "energy_consumed"
        assert abs(float(total[col]) - kwh) <= 1e-12 * kwh, total
        assert total["energy_consumed" if part else "energy_consumed_lower_bound"] == "", total
        kg = kwh * float(total["grid_intensity"]) / 1000
        col = "emissions_lower_bound" if part else "emissions"
        assert abs(float(total[col]) - kg) <= 1e-9 * kg, total
    # Every figure of the total row: JSON null <=> an empty CSV cell (never
    # 0); a partial one is labelled so in the CSV too.
    for key, cols, label in (("time_s", ("duration", "duration_lower_bound"), "time_label"),
                             ("compute_j", ("compute_energy_j",), "compute_label"),
                             ("memory_j", ("memory_energy_j",), "memory_label"),
                             ("static_j", ("static_energy_j",), "static_label"),
                             ("energy_j", ("energy_j",), "energy_label"),
                             ("platform_j", ("platform_energy_j",), "platform_label")):
        v = j["total"][key]
        cells = [total[c] for c in cols]
        if v["value"] is None:
            assert cells == [""] * len(cells) and total[label] == "not-modeled", (key, total)
        else:
            assert sum(c != "" for c in cells) == 1, (key, cells)
            assert total[label].endswith("(partial)") == v["partial"], (key, total[label])

    with open("%s/%s.html" % (d, stem), encoding="utf-8") as f:
        text = f.read()
    root = ET.fromstring(text[text.index("<html"):])  # well-formed as XML
    svg = root.findall(".//{http://www.w3.org/2000/svg}svg")
    assert len(svg) == 1, "one inline SVG chart"
    assert len(svg[0].findall("{http://www.w3.org/2000/svg}rect")) >= len(j["nodes"])
    p = Balance()
    p.feed(text)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    assert "script" not in p.tags
    assert text.startswith("<!DOCTYPE html>")


def main():
    d = sys.argv[1]
    check(d, "report", 6)     # 2 nodes, 2 transfers, total, baseline
    check(d, "report-nm", 4)  # 2 nodes, total, baseline
    print("reports ok")


if __name__ == "__main__":
    main()
