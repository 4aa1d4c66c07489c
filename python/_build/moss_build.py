"""A minimal PEP 517 build backend for the moss package, standard library only.

Why: pip builds a package in an isolated environment into which it installs
the backend named in pyproject.toml; with setuptools that means a download,
and `pip install ./python` must work offline. This backend needs nothing:
it zips the files of moss/ into a wheel (PEP 427: the package files, then
<name>-<version>.dist-info/METADATA, WHEEL and RECORD) or tars them with
pyproject.toml and this folder into an sdist. The name, version, summary and
dependencies are read from pyproject.toml's [project] table (tomllib, or a
few regular expressions on Python < 3.11), so they are written once.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "moss"
TAG = "py3-none-any"


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        raw = f.read()
    try:
        import tomllib
        return tomllib.loads(raw.decode())["project"]
    except ImportError:  # Python < 3.11: the few keys this file uses
        text = raw.decode().split("[project]", 1)[1]
        p = {k: v for k, v in re.findall(r'^(\w[\w-]*)\s*=\s*"([^"]*)"', text, re.M)}
        deps = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.M | re.S)
        p["dependencies"] = re.findall(r'"([^"]+)"', deps.group(1)) if deps else []
        return p


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"],
             "Summary: " + p.get("description", "")]
    if p.get("requires-python"):
        lines.append("Requires-Python: " + p["requires-python"])
    lines += ["Requires-Dist: " + d for d in p.get("dependencies", [])]
    readme = os.path.join(ROOT, p.get("readme", "README.md"))
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return p, ("\n".join(lines) + "\n" + body).encode("utf-8")


def _package_files():
    """(path in the archive, path on disk) for every .py file of the package."""
    out = []
    for d, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py") or f == "py.typed":
                full = os.path.join(d, f)
                out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _dist(p):
    return "%s-%s" % (re.sub(r"[-_.]+", "_", p["name"]).lower(), p["version"])


def _dist_info_files(p, meta):
    wheel = "Wheel-Version: 1.0\nGenerator: moss_build\nRoot-Is-Purelib: true\nTag: %s\n" % TAG
    return {"METADATA": meta, "WHEEL": wheel.encode()}


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (name, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    p, meta = _project(), _metadata()[1]
    info = _dist(p) + ".dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    for name, data in _dist_info_files(p, meta).items():
        with open(os.path.join(metadata_directory, info, name), "wb") as f:
            f.write(data)
    return info


def _write_wheel(wheel_directory, entries):
    """entries: [(archive name, bytes)]; RECORD is added last, as PEP 427 wants."""
    p, meta = _metadata()
    info = _dist(p) + ".dist-info"
    entries = list(entries) + [(info + "/" + k, v) for k, v in _dist_info_files(p, meta).items()]
    record = [_record_line(n, d) for n, d in entries] + [info + "/RECORD,,"]
    name = "%s-%s.whl" % (_dist(p), TAG)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in entries:
            z.writestr(zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0)), d)  # reproducible
        z.writestr(zipfile.ZipInfo(info + "/RECORD", (1980, 1, 1, 0, 0, 0)),
                   "\n".join(record) + "\n")
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = []
    for arc, full in _package_files():
        with open(full, "rb") as f:
            entries.append((arc, f.read()))
    return _write_wheel(wheel_directory, entries)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel holding one .pth file that puts this folder on sys.path."""
    return _write_wheel(wheel_directory, [("moss_editable.pth", (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    p, meta = _metadata()
    base = _dist(p)
    name = base + ".tar.gz"
    files = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
             ("README.md", os.path.join(ROOT, "README.md")),
             ("_build/moss_build.py", os.path.abspath(__file__))] + _package_files()
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for arc, full in files:
            if os.path.exists(full):
                t.add(full, arcname=base + "/" + arc)
        info = tarfile.TarInfo(base + "/PKG-INFO")
        info.size = len(meta)
        t.addfile(info, io.BytesIO(meta))
    return name
