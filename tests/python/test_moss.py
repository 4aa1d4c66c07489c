"""The moss Python package (python/) on the digits models (tests/e2e/digits).

Expected values come from elsewhere: torch's logits (cnn_ref.npy,
mlp_ref.npy) within DESIGN.md's float32 tolerance |a-b| <= 1e-5 + 1e-4|b|,
torch's accuracy (accuracy.txt, six decimals), `moss eval`'s accuracy, each
target's own `moss compile --report` and the bundles `moss compile` writes
when run by hand. Also: errors carry moss's diagnostics, bad arrays are
refused before anything runs, `pip install --no-index ./python` works
offline into a fresh venv, and examples/python/digits_targets.py runs.

    MOSS_EXECUTABLE=build/moss MOSS_LIBRARY=build/runtime/libmossrt.so \\
      MOSS_TARGETS_DIR=targets python3 -m pytest -q tests/python
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import python_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import moss  # noqa: E402

DIGITS = os.path.join(ROOT, "tests", "e2e", "digits")
SHAPES = {"mlp": (1, 64), "cnn": (1, 1, 8, 8)}


def data(name):
    return np.load(os.path.join(DIGITS, name))


def torch_accuracy(model):
    with open(os.path.join(DIGITS, "accuracy.txt")) as f:
        return dict((l.split()[0], float(l.split()[1])) for l in f if l.strip())[model]


def close(a, b):
    """DESIGN.md's float32 tolerance; the worst excess over it."""
    return np.max(np.abs(a - b) - (1e-5 + 1e-4 * np.abs(b)))


def moss_cli(*args):
    p = subprocess.run([moss.find_executable()] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def bundles():
    # The batch axis left open: planned for 1, batches of any N.
    arts = {m: moss.compile(os.path.join(DIGITS, m + ".onnx")) for m in SHAPES}
    yield arts
    for a in arts.values():
        a.close()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_run_matches_torch(bundles, model):
    art, x, ref = bundles[model], data("x_test_%s.npy" % model), data(model + "_ref.npy")
    assert [(t.name, t.dtype, t.shape) for t in art.inputs] == [
        ("input", np.float32, SHAPES[model])]
    assert [(t.name, t.shape) for t in art.outputs] == [("logits", (1, 10))]
    out = art.run(x)  # a batch of 450 on a bundle planned for 1 (mossrt_run_batch)
    assert out.shape == (450, 10) and out.dtype == np.float32
    assert close(out, ref) <= 0
    one = art.run(x[7:8])
    assert one.shape == (1, 10) and np.array_equal(one, out[7:8])
    assert np.array_equal(art.run(input=x[:5]), out[:5])  # by name


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_eval_equals_moss_eval_and_torch(bundles, model, tmp_path):
    art = bundles[model]
    acc = art.eval(data("x_test_%s.npy" % model), data("y_test.npy"))
    text = moss_cli("eval", art.path, os.path.join(DIGITS, "x_test_%s.npy" % model),
                    os.path.join(DIGITS, "y_test.npy"))
    right, n = text.split("(")[1].split(")")[0].split("/")
    assert acc == int(right) / int(n)
    assert abs(acc - torch_accuracy(model)) < 1e-6


def test_report(bundles, tmp_path):
    rep = bundles["cnn"].report
    for key in ("format", "model", "target", "devices", "nodes", "total"):
        assert key in rep
    for key in ("time_s", "energy_j", "platform_j", "arena_bytes", "weight_bytes"):
        assert key in rep["total"]
    assert rep["target"] == "host" and bundles["cnn"].target == "host"
    # The same as the compiler's own --report and as libmossrt's copy in the bundle.
    own = tmp_path / "own.json"
    moss_cli("compile", os.path.join(DIGITS, "cnn.onnx"), "--input-shape", "input=1x1x8x8",
             "-q", "-o", tmp_path / "own.moss", "--report", own)
    with open(own) as f:
        want = json.load(f)
    assert rep["total"] == want["total"]
    with moss.load(bundles["cnn"].path) as again:
        assert again.report == rep


def test_prune_quantize(tmp_path):
    x, y, calib = data("x_test_cnn.npy"), data("y_test.npy"), data("x_calib_cnn.npy")
    opts = dict(prune="magnitude:0.5", quantize="int8")
    with moss.compile(os.path.join(DIGITS, "cnn.onnx"), calibration=calib, **opts) as q:
        acc = q.eval(x, y)
        out = q.run(x)
        nodes = q.report["nodes"]
    # No retraining: near torch's float accuracy, not equal to it by necessity.
    assert abs(acc - torch_accuracy("cnn")) <= 0.03, acc
    # The report says what was done: int8 Conv/Gemm layers, about half their weights zero.
    macs = [n for n in nodes if n["op_type"] in ("QLinearConv", "MossQGemm")]
    assert len(macs) == 3 and all(n["dtype"] == "i8" for n in macs), nodes
    assert min(n["weight_density"] for n in macs) < 0.7
    # The array became the same calibration as the file, flags passed as the CLI's.
    ref = tmp_path / "q.moss"
    moss_cli("compile", os.path.join(DIGITS, "cnn.onnx"), "-q",
             "--prune", "magnitude:0.5", "--quantize", "int8", "--calibration",
             os.path.join(DIGITS, "x_calib_cnn.npy"), "-o", ref)
    with moss.load(ref) as cli:
        assert np.array_equal(cli.run(x), out)
        assert cli.eval(x, y) == acc


@pytest.mark.parametrize("emit", ["c", "obj"])
def test_c_and_obj(emit):
    x, ref = data("x_test_cnn.npy")[:3], data("cnn_ref.npy")[:3]
    with moss.compile(os.path.join(DIGITS, "cnn.onnx"), emit=emit) as art:
        assert art.emit == emit and os.path.isdir(art.path)
        assert [t.shape for t in art.inputs] == [(1, 1, 8, 8)]
        assert close(art.run(x), ref) <= 0
    with moss.compile(os.path.join(DIGITS, "cnn.onnx"), target="cortex-m7",
                      input_shape={"input": (1, 1, 8, 8)}) as m7:
        assert m7.emit == "c"  # moss's choice for a bare-metal target
        assert m7.report["target"] == "cortex-m7"


def test_compare_ranks_rows():
    targets = ["host", "rpi4", "cortex-m7"]
    rows = moss.compare(os.path.join(DIGITS, "cnn.onnx"), targets=targets,
                        input_shape={"input": (1, 1, 8, 8)})
    assert sorted(r["target"] for r in rows) == sorted(targets)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    energies = [r["energy_j"] for r in rows]
    assert energies == sorted(energies) and all(e > 0 for e in energies)
    for r in rows:  # each figure is the target's own compile report's
        with moss.compile(os.path.join(DIGITS, "cnn.onnx"), target=r["target"],
                          input_shape={"input": (1, 1, 8, 8)}) as art:
            tot = art.report["total"]
        assert r["energy_j"] == pytest.approx(tot["platform_j"]["value"], rel=1e-9)
        assert r["time_s"] == pytest.approx(tot["time_s"]["value"], rel=1e-9)
        assert r["memory_bytes"] == tot["arena_bytes"] + tot["weight_bytes"]
        assert r["error"] is None
    rows = moss.compare(os.path.join(DIGITS, "cnn.onnx"), targets=["host", "no-such-target"],
                        input_shape={"input": (1, 1, 8, 8)})
    assert rows[-1]["target"] == "no-such-target" and rows[-1]["rank"] is None
    assert "unknown target 'no-such-target'" in rows[-1]["error"]


def test_errors_carry_diagnostics(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(moss.MossError) as e:
        moss.compile(bad, input_shape={"input": (1, 64)})
    assert e.value.returncode == 1
    assert any(d.startswith(str(bad) + ": invalid-model: ") for d in e.value.diagnostics), \
        e.value.diagnostics
    assert str(bad) in str(e.value)
    with pytest.raises(moss.MossError) as e:
        moss.compile(os.path.join(DIGITS, "cnn.onnx"), input_shape={"input": (1, 8, 8)})
    assert any(d.startswith(os.path.join(DIGITS, "cnn.onnx") + ": invalid-model: ") and
               "has rank 3, the input has rank 4" in d for d in e.value.diagnostics)
    with pytest.raises(moss.MossError) as e:
        moss.compile(os.path.join(DIGITS, "cnn.onnx"), input_shape={"input": (1, 1, 8, 8)},
                     extra=["--no-such-flag"])
    assert e.value.returncode != 0 and "unknown option '--no-such-flag'" in str(e.value)
    assert not any(l.startswith("usage") for l in e.value.diagnostics)
    with pytest.raises(moss.MossError) as e:
        moss.compare(os.path.join(DIGITS, "cnn.onnx"), targets=["nope-a", "nope-b"],
                     input_shape={"input": (1, 1, 8, 8)})
    assert "every target failed" in str(e.value)


def test_bad_arrays_are_refused(bundles):
    art = bundles["cnn"]
    x = data("x_test_cnn.npy")
    bad = [((x.astype(np.float64),), "float64"), ((x[:, :, :4],), "got shape [450, 1, 4, 8]"),
           ((x.reshape(450, 64),), "got shape [450, 64]"), ((x[0],), "got shape [1, 8, 8]"),
           ((x, x), "takes 1 input"), ((), "takes 1 input"), ((x[:0],), "empty batch")]
    for args, msg in bad:
        with pytest.raises(moss.MossInputError) as e:
            art.run(*args)
        assert msg in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(moss.MossInputError, match="no input 'image'"):
        art.run(image=x)
    with pytest.raises(moss.MossInputError, match="labels"):
        art.eval(x, data("y_test.npy")[:10])
    assert art.run(x[:2]).shape == (2, 10)  # still fine after the refusals


def test_close_and_lookup(monkeypatch, tmp_path):
    art = moss.compile(os.path.join(DIGITS, "mlp.onnx"), input_shape={"input": (1, 64)})
    folder = os.path.dirname(art.path)
    art.run(data("x_test_mlp.npy")[:1])
    art.close()
    art.close()  # twice is fine
    assert not os.path.exists(folder)
    with pytest.raises(moss.MossError, match="does not exist"):
        art.run(data("x_test_mlp.npy")[:1])
    with moss.compile(os.path.join(DIGITS, "mlp.onnx"), input_shape={"input": (1, 64)},
                      out=tmp_path / "kept.moss") as kept:
        assert kept.path == str(tmp_path / "kept.moss")
    assert (tmp_path / "kept.moss").is_file()  # a caller's out is the caller's
    monkeypatch.setenv("MOSS_EXECUTABLE", str(tmp_path / "no-moss"))
    with pytest.raises(moss.MossError, match="MOSS_EXECUTABLE"):
        moss.find_executable()
    monkeypatch.setenv("MOSS_LIBRARY", str(tmp_path / "no-lib.so"))
    with pytest.raises(moss.MossError, match="MOSS_LIBRARY"):
        moss.find_library()
    monkeypatch.delenv("MOSS_EXECUTABLE")
    monkeypatch.delenv("MOSS_LIBRARY")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(moss.MossError) as e:
        moss.find_library()
    assert "MOSS_LIBRARY" in str(e.value) and "find_library" in str(e.value)


def test_model_proto_and_threads():
    onnx = pytest.importorskip("onnx")
    x, ref = data("x_test_mlp.npy")[:20], data("mlp_ref.npy")[:20]
    proto = onnx.load(os.path.join(DIGITS, "mlp.onnx"))
    with moss.compile(proto, threads=1) as one:
        with moss.compile(proto.SerializeToString(), threads=2) as two:
            out = one.run(x)
            assert close(out, ref) <= 0
            assert np.array_equal(two.run(x), out)  # the same bits on any number of threads


def test_batch_needs_a_batched_bundle():
    """Bound with input_shape, the bundle was not checked batch-independent:
    a batch is refused, not sliced behind the model's back."""
    x = data("x_test_mlp.npy")
    with moss.compile(os.path.join(DIGITS, "mlp.onnx"), input_shape={"input": (1, 64)}) as art:
        assert np.array_equal(art.run(x[3:4]), data("mlp_ref.npy")[3:4]) or \
            close(art.run(x[3:4]), data("mlp_ref.npy")[3:4]) <= 0
        with pytest.raises(moss.MossInputError) as e:
            art.run(x[:4])
        assert "not batched" in str(e.value)


def test_bundle_for_another_cpu_says_why():
    with moss.compile(os.path.join(DIGITS, "cnn.onnx"), target="rpi4",
                      input_shape={"input": (1, 1, 8, 8)}) as art:
        assert art.report["target"] == "rpi4"  # costed without running
        with pytest.raises(moss.MossError) as e:
            art.run(data("x_test_cnn.npy")[:1])
        assert any(": target: bundle is for aarch64" in d for d in e.value.diagnostics)


def test_pip_install_offline(tmp_path):
    """`pip install --no-index ./python` into a fresh venv, then use it from there."""
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    py = str(venv / "bin" / "python")
    p = subprocess.run([py, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                        os.path.join(ROOT, "python")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    code = ("import moss, numpy as np, sys; "
            "assert moss.__file__.startswith(sys.prefix), moss.__file__; "
            "a = moss.compile(sys.argv[1]); "
            "print(a.run(np.load(sys.argv[2])).argmax(1)[:5].tolist())")
    p = subprocess.run([py, "-c", code, os.path.join(DIGITS, "mlp.onnx"),
                        os.path.join(DIGITS, "x_test_mlp.npy")], capture_output=True, text=True,
                       env=python_env(env), cwd=str(tmp_path), timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == data("mlp_ref.npy")[:5].argmax(1).tolist()


def test_example_runs():
    targets = ["host", "rpi4", "cortex-m7"]
    env = python_env(dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python")))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python",
                                                     "digits_targets.py"),
                        "--targets", ",".join(targets)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = [l.split() for l in p.stdout.splitlines() if l.split()[:1] in [[t] for t in targets]]
    assert [r[0] for r in rows] == targets, p.stdout
    assert rows[0][1] == "%.4f" % float(p.stdout.split("int8 on this machine: accuracy ")[1]
                                        .split()[0])
    for r in rows:
        assert r[2] != "n/m" and r[3][-1] == "J"
