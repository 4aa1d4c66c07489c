"""compile(), compare(), load() and Artifact: the moss CLI for compiling and
costing, libmossrt (through _runtime) for running bundles."""
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np

from ._errors import MossError, MossInputError
from ._locate import find_executable
from ._runtime import ONNX_DTYPES, Bundle, Closing, TensorInfo, check_inputs


def _diagnostics(stderr):
    """moss's diagnostic lines, without the usage text it adds to a CLI mistake."""
    out = []
    for line in stderr.splitlines():
        if line.strip() == "usage:":
            break
        if line.strip():
            out.append(line.rstrip())
    return out


def run_cli(args, what=None, timeout=None):
    """Runs `moss ARGS...`; returns its standard output. A non-zero exit
    raises MossError with moss's diagnostics and exit status."""
    cmd = [find_executable()] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except OSError as e:
        raise MossError("moss: cannot run %s: %s" % (cmd[0], e), command=cmd)
    if p.returncode != 0:
        diags = _diagnostics(p.stderr)
        if p.returncode < 0:
            diags.append("(killed by signal %d)" % -p.returncode)
        raise MossError("moss %s failed (exit status %d)" % (what or args[0], p.returncode),
                        diags, p.returncode, cmd)
    return p.stdout


class _Scratch:
    """A temporary folder for files made from arrays (calibration data,
    constants, a model given as bytes)."""

    def __init__(self, d):
        self.dir = d
        self.n = 0

    def path_of(self, value, stem, ext=".npy"):
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
        self.n += 1
        p = os.path.join(self.dir, "%s_%d%s" % (stem, self.n, ext))
        if ext == ".npy":
            np.save(p, np.asarray(value))
        else:
            with open(p, "wb") as f:
                f.write(value)
        return p


def _model_path(model, scratch):
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if hasattr(model, "SerializeToString"):  # an onnx.ModelProto
        model = model.SerializeToString()
    if isinstance(model, (bytes, bytearray)):
        return scratch.path_of(bytes(model), "model", ".onnx")
    raise TypeError("model: a path to an .onnx file, its bytes or an onnx.ModelProto, not %s"
                    % type(model).__name__)


def _shape_args(input_shape):
    if input_shape is None:
        return []
    if isinstance(input_shape, str):
        input_shape = [input_shape]
    if isinstance(input_shape, dict):
        input_shape = ["%s=%s" % (k, v if isinstance(v, str) else "x".join(map(str, v)))
                       for k, v in input_shape.items()]
    out = []
    for s in input_shape:
        out += ["--input-shape", s]
    return out


def _constant_args(constants, scratch):
    out = []
    for k, v in (constants or {}).items():
        out += ["--constant", "%s=%s" % (k, scratch.path_of(v, "constant_" + k))]
    return out


def _name_of(model_path, name):
    if name:
        return name
    base = os.path.basename(model_path)
    return base[:-5] if base.endswith(".onnx") else base or "model"


def compile(model, target=None, *, prune=None, quantize=None, calibration=None,
            calibration_method=None, keep_float=None, input_shape=None, constants=None,
            emit=None, out=None, name=None, grid_intensity=None, extra=(), threads=None):
    """Compiles |model| (a path, ONNX bytes or an onnx.ModelProto) with
    `moss compile` and returns an Artifact.

    target: a target name or XML file (default: host). prune: a --prune spec
    ("magnitude:0.5"). quantize: "int8" (or True). calibration: a .npy path,
    a folder or an array [N, ...] (saved to a temporary .npy).
    input_shape: {"input": (1, 1, 8, 8)} binds symbolic dimensions.
    constants: {name: path or array} freezes inputs. emit: "bundle", "c" or
    "obj" (default: moss's choice for the target: a bundle, or C for a bare-metal
    target such as cortex-m7). out: where the artifact goes (default: a temporary folder the
    Artifact owns and removes on close()). extra: more moss flags.
    Raises MossError with moss's diagnostics when the compile fails.
    """
    if emit not in (None, "bundle", "c", "obj"):
        raise MossInputError("moss: emit must be 'bundle', 'c' or 'obj', not %r" % (emit,))
    tmp = tempfile.mkdtemp(prefix="moss-")
    try:
        scratch = _Scratch(tmp)
        mpath = _model_path(model, scratch)
        nm = _name_of(mpath, name)
        named = out is None
        if named:
            out = os.path.join(tmp, nm + {"bundle": ".moss", None: ""}.get(emit, ".moss.d"))
        out = os.fspath(out)
        report = os.path.join(tmp, "report.json")
        args = ["compile", mpath, "-q", "-o", out, "--report", report]
        if emit:
            args += ["--emit", emit]
        if name:
            args += ["--name", name]
        if target:
            args += ["--target", os.fspath(target)]
        args += _shape_args(input_shape) + _constant_args(constants, scratch)
        if prune:
            args += ["--prune", prune]
        if quantize:
            args += ["--quantize", "int8" if quantize is True else quantize]
        if calibration is not None:
            args += ["--calibration", scratch.path_of(calibration, "calibration")]
        if calibration_method:
            args += ["--calibration-method", calibration_method]
        if keep_float:
            args += ["--keep-float",
                     keep_float if isinstance(keep_float, str) else ",".join(keep_float)]
        if grid_intensity is not None:
            args += ["--grid-intensity", repr(float(grid_intensity))]
        args += [str(a) for a in extra]
        log = run_cli(args, "compile")
        if emit is None:  # what moss chose: a bundle is a file, C and obj a folder
            emit = "bundle" if os.path.isfile(out) else _folder_kind(out)
            if named:  # the names moss itself gives them
                os.rename(out, out + (".moss" if emit == "bundle" else ".moss.d"))
                out += ".moss" if emit == "bundle" else ".moss.d"
        return Artifact(out, emit=emit, report_path=report, owned_dir=tmp, log=log,
                        threads=threads)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _folder_kind(path):
    if not os.path.isdir(path):
        raise MossError("moss: %s is neither a bundle nor a C/obj artifact folder" % path)
    return "obj" if any(f.endswith(".o") for f in os.listdir(path)) else "c"


def load(path, threads=None):
    """An Artifact for an existing bundle (.moss) or C/obj output folder."""
    path = os.fspath(path)
    emit = "bundle" if os.path.isfile(path) else _folder_kind(path)
    return Artifact(path, emit=emit, threads=threads)


def compare(model, targets, *, input_shape=None, constants=None, grid_intensity=None,
            extra=()):
    """Costs |model| on each target (`moss compare --report FILE.json`) and
    returns the ranking as a list of dicts in rank order: target, rank,
    energy_j (platform-model, what ranks), op_energy_j, time_s,
    memory_bytes, arena_bytes, weight_bytes, carbon_g_per_million,
    rank_time, rank_memory, error (a failed target's first diagnostic; its
    rank is None). A figure a target does not model is None. Raises
    MossError when every target fails."""
    if isinstance(targets, str):
        targets = [targets]
    targets = [os.fspath(t) for t in targets]
    with tempfile.TemporaryDirectory(prefix="moss-") as tmp:
        scratch = _Scratch(tmp)
        mpath = _model_path(model, scratch)
        rj = os.path.join(tmp, "compare.json")
        args = ["compare", mpath, "--targets", ",".join(targets), "--report", rj]
        args += _shape_args(input_shape) + _constant_args(constants, scratch)
        if grid_intensity is not None:
            args += ["--grid-intensity", repr(float(grid_intensity))]
        run_cli(args + [str(a) for a in extra], "compare")
        with open(rj) as f:
            return json.load(f)["rows"]


def _manifest_infos(folder):
    """Inputs and outputs of a C/obj artifact from its <name>.manifest
    (`input <i> <onnx dtype> <rank> <dims...> <name>`)."""
    mans = [f for f in sorted(os.listdir(folder)) if f.endswith(".manifest")]
    if len(mans) != 1:
        raise MossError("moss: %s: expected one .manifest, found %d" % (folder, len(mans)))
    ins, outs = [], []
    with open(os.path.join(folder, mans[0])) as f:
        for line in f:
            w = line.split()
            if len(w) >= 4 and w[0] in ("input", "output"):
                rank = int(w[3])
                t = TensorInfo.__new__(TensorInfo)
                t.onnx_dtype = int(w[2])
                t.dtype = np.dtype(ONNX_DTYPES[t.onnx_dtype]) \
                    if t.onnx_dtype in ONNX_DTYPES else None
                t.shape = tuple(int(d) for d in w[4:4 + rank])
                t.name = " ".join(w[4 + rank:])
                t.nbytes = int(np.prod(t.shape)) * (t.dtype.itemsize if t.dtype else 0)
                (ins if w[0] == "input" else outs).append(t)
    return ins, outs


class Artifact(Closing):
    """What compile() made, or load() found: a bundle run through libmossrt,
    or C/obj code run through `moss run`.

    .run(x, ...) or .run(name=x): the outputs (one array, or a list when the
    model has several). .eval(X, y): the accuracy of argmax over output 0.
    .report: the compiler's JSON report as a dict. .inputs/.outputs: their
    names, dtypes and shapes. close() (or a with block) frees the session
    and the bundle and removes a temporary folder the artifact owns."""

    def __init__(self, path, emit="bundle", report_path=None, owned_dir=None, log="",
                 threads=None):
        self.path = path
        self.emit = emit
        self.log = log
        self._report_path = report_path
        self._owned = owned_dir
        self._threads = threads
        self._bundle = None
        self._report = None
        self._infos = None

    # -- life cycle
    def close(self):
        if getattr(self, "_bundle", None):
            self._bundle.close()
        self._bundle = None
        if getattr(self, "_owned", None):
            shutil.rmtree(self._owned, ignore_errors=True)
        self._owned = None

    def __repr__(self):
        return "<moss.Artifact %s %s>" % (self.emit, self.path)

    # -- what it is
    def _open(self):
        if self.emit != "bundle":
            raise MossError("moss: %s is %s code, not a bundle" % (self.path, self.emit))
        if self._bundle is None:
            if not os.path.exists(self.path):
                raise MossError("moss: %s does not exist (closed?)" % self.path)
            self._bundle = Bundle(self.path, threads=self._threads)
        return self._bundle

    def _io(self):
        if self._infos is None:
            if self.emit == "bundle":
                b = self._open()
                self._infos = (b.inputs, b.outputs)
            else:
                self._infos = _manifest_infos(self.path)
        return self._infos

    @property
    def inputs(self):
        return self._io()[0]

    @property
    def outputs(self):
        return self._io()[1]

    @property
    def report(self):
        """The compiler's report as a dict (docs/report.md)."""
        if self._report is None:
            if self._report_path and os.path.exists(self._report_path):
                with open(self._report_path) as f:
                    self._report = json.load(f)
            elif self.emit == "bundle":
                self._report = self._open().report()
            if self._report is None:
                raise MossError("moss: %s has no report" % self.path)
        return self._report

    @property
    def target(self):
        return self.report.get("target")

    # -- running
    def _arrays(self, arrays, named):
        ins = self.inputs
        if named:
            if arrays:
                raise MossInputError("moss: give the inputs by position or by name, not both")
            unknown = sorted(set(named) - {t.name for t in ins})
            if unknown:
                raise MossInputError("moss: %s has no input %s (it has %s)" % (
                    self.path, ", ".join(map(repr, unknown)),
                    ", ".join(repr(t.name) for t in ins)))
            missing = [t.name for t in ins if t.name not in named]
            if missing:
                raise MossInputError("moss: %s: input %s not given" % (
                    self.path, ", ".join(map(repr, missing))))
            return [named[t.name] for t in ins]
        return list(arrays)

    def run_all(self, *arrays, **named):
        """As run(), always a list of outputs."""
        xs = self._arrays(arrays, named)
        if self.emit == "bundle":
            return self._open().run(xs)
        return self._run_cli(xs)

    def run(self, *arrays, **named):
        """Runs the model. Each input has its shape, or, on a batched artifact
        (see batched), [N, ...]: the outputs then get N first. Returns the
        output array, or a list of them when there are several."""
        outs = self.run_all(*arrays, **named)
        return outs[0] if len(outs) == 1 else outs

    @property
    def batched(self):
        """Whether the artifact takes a batch of any N along axis 0 (compiled
        with the batch axis open: planned for 1, checked batch-independent)."""
        if self.emit == "bundle":
            return self._open()._batched
        mans = [f for f in sorted(os.listdir(self.path)) if f.endswith(".manifest")]
        with open(os.path.join(self.path, mans[0])) as f:
            return any(line.split()[:1] == ["batch"] for line in f)

    def _run_cli(self, arrays):
        # moss run takes a batch on a batched artifact and refuses it on others.
        xs, _ = check_inputs(self.path, self.inputs, arrays)
        with tempfile.TemporaryDirectory(prefix="moss-run-") as tmp:
            files = []
            for i, x in enumerate(xs):
                files.append(os.path.join(tmp, "in%d.npy" % i))
                np.save(files[-1], x)
            run_cli(["run", self.path] + files + ["-o", tmp], "run")
            return [np.load(os.path.join(tmp, "output_%d.npy" % i))
                    for i in range(len(self.outputs))]

    def eval(self, X, y):
        """The accuracy (0..1) of argmax over the last axis of output 0 on the
        samples X against the labels y, as `moss eval` computes it."""
        y = np.asarray(y).reshape(-1)
        if self.batched:
            out = self.run_all(X)[0]
        else:  # each row of X a sample of the planned shape, as moss eval takes them
            X = np.asarray(X)
            out = np.concatenate([self.run_all(X[i:i + 1])[0] for i in range(X.shape[0])])
        pred = out.reshape(out.shape[0], -1).argmax(axis=1) if out.ndim > 1 else out
        if pred.shape[0] != y.shape[0]:
            raise MossInputError("moss: %d predictions for %d labels" % (pred.shape[0],
                                                                        y.shape[0]))
        return float(np.mean(pred == y))
