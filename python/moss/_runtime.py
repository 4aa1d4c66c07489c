"""libmossrt through ctypes (runtime/include/mossrt.h): open a bundle, check
the caller's arrays against its inputs, run a session, give everything back.

A batched bundle (a model whose one open dimension is its batch axis,
compiled without --input-shape: planned for 1, checked batch-independent by
the compiler) runs a batch of N along that axis through mossrt_run_batch:
the inputs and outputs hold the N samples one after the other. Any other
bundle runs the shapes it was planned for.
"""
import ctypes
import json
import threading

import numpy as np

from ._errors import MossError, MossInputError
from ._locate import find_library

# ONNX TensorProto.DataType codes -> numpy (strings and bfloat16 have none).
ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
               7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
               13: np.uint64}


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("dims", ctypes.POINTER(ctypes.c_int64)), ("nbytes", ctypes.c_uint64)]


class _Error(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("text", ctypes.c_char * 512)]


_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_ERR = ctypes.POINTER(_Error)
_SIGS = {
    "mossrt_open_file": (ctypes.c_int, [ctypes.c_char_p, _PP, _ERR]),
    "mossrt_close": (None, [_P]),
    "mossrt_target": (ctypes.c_char_p, [_P]),
    "mossrt_input_count": (ctypes.c_uint32, [_P]),
    "mossrt_output_count": (ctypes.c_uint32, [_P]),
    "mossrt_input_info": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.POINTER(_TensorInfo)]),
    "mossrt_output_info": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.POINTER(_TensorInfo)]),
    "mossrt_report_json": (ctypes.c_void_p, [_P, ctypes.POINTER(ctypes.c_size_t)]),
    "mossrt_session_create": (ctypes.c_int, [_P, _P, ctypes.c_size_t, _PP, _ERR]),
    "mossrt_session_destroy": (None, [_P]),
    "mossrt_session_set_threads": (ctypes.c_int, [_P, ctypes.c_uint32, _ERR]),
    "mossrt_run": (ctypes.c_int, [_P, _PP, _PP, _ERR]),
    "mossrt_output_bound_axis": (ctypes.c_int32, [_P, ctypes.c_uint32]),
    "mossrt_output_dims": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int64),
                                          _ERR]),
    "mossrt_run_batch": (ctypes.c_int, [_P, ctypes.c_uint64, _PP, _PP, _ERR]),
    "mossrt_bundle_batched": (ctypes.c_int, [_P]),
}

_libs = {}
_lock = threading.Lock()


def load_library(path=None):
    """The libmossrt CDLL at |path| (default: find_library()), typed once."""
    path = path or find_library()
    with _lock:
        if path not in _libs:
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                raise MossError("moss: cannot load libmossrt from %s: %s" % (path, e))
            for name, (res, args) in _SIGS.items():
                try:
                    fn = getattr(lib, name)
                except AttributeError:
                    raise MossError("moss: %s lacks %s(): not a libmossrt this package knows"
                                    % (path, name))
                fn.restype, fn.argtypes = res, args
            _libs[path] = lib
        return _libs[path]


def _fail(what, err):
    text = err.text.decode("utf-8", "replace")
    return MossError("moss: %s failed (status %d)" % (what, err.status), [text])


class TensorInfo:
    """A graph input or output: name, dtype (numpy), shape, onnx_dtype."""

    def __init__(self, c):
        self.name = c.name.decode("utf-8", "replace")
        self.onnx_dtype = c.dtype
        self.dtype = np.dtype(ONNX_DTYPES[c.dtype]) if c.dtype in ONNX_DTYPES else None
        self.shape = tuple(int(c.dims[i]) for i in range(c.rank))
        self.nbytes = int(c.nbytes)

    def __repr__(self):
        return "TensorInfo(%r, %s, %s)" % (self.name, self.dtype, self.shape)


class Closing:
    """What holds moss's resources: close() frees them, and so do `with`
    and the garbage collector."""

    def close(self):
        raise NotImplementedError

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Bundle(Closing):
    """An open .moss bundle and one session on it. close() (or a with block,
    or garbage collection) destroys the session and closes the bundle."""

    def __init__(self, path, library=None, threads=None):
        self.path = str(path)
        self._lib = load_library(library)
        self._b = ctypes.c_void_p()
        self._s = ctypes.c_void_p()
        err = _Error()
        if self._lib.mossrt_open_file(self.path.encode(), ctypes.byref(self._b),
                                      ctypes.byref(err)):
            self._b = None
            raise _fail("opening the bundle", err)
        try:
            self.inputs = self._infos(self._lib.mossrt_input_count, self._lib.mossrt_input_info)
            self.outputs = self._infos(self._lib.mossrt_output_count,
                                       self._lib.mossrt_output_info)
            for t in self.inputs + self.outputs:
                if t.dtype is None:
                    raise MossError("moss: %s: '%s' has ONNX element type %d, which numpy "
                                    "cannot hold" % (self.path, t.name, t.onnx_dtype))
            self._bound = [self._lib.mossrt_output_bound_axis(self._b, i)
                           for i in range(len(self.outputs))]
            if self._lib.mossrt_session_create(self._b, None, 0, ctypes.byref(self._s),
                                               ctypes.byref(err)):
                self._s = None
                raise _fail("creating a session", err)
            if threads is not None and self._lib.mossrt_session_set_threads(
                    self._s, int(threads), ctypes.byref(err)):
                raise _fail("setting %d threads" % threads, err)
        except BaseException:
            self.close()
            raise
        self.target = self._lib.mossrt_target(self._b).decode("utf-8", "replace")
        # Only a bundle moss compiled batched (the model's one open
        # dimension its batch axis, checked batch-independent) takes N rows;
        # slicing any other bundle's input could mix what the model mixes.
        self._batched = bool(self._lib.mossrt_bundle_batched(self._b))

    def _infos(self, count, info):
        out = []
        for i in range(count(self._b)):
            c = _TensorInfo()
            if info(self._b, i, ctypes.byref(c)):
                raise MossError("moss: %s: cannot read tensor info %d" % (self.path, i))
            out.append(TensorInfo(c))
        return out

    def report(self):
        """The compiler's report as a dict, or None when the bundle has none."""
        self._check_open()
        n = ctypes.c_size_t()
        p = self._lib.mossrt_report_json(self._b, ctypes.byref(n))
        return json.loads(ctypes.string_at(p, n.value).decode("utf-8")) if p else None

    def close(self):
        if getattr(self, "_s", None):
            self._lib.mossrt_session_destroy(self._s)
        self._s = None
        if getattr(self, "_b", None):
            self._lib.mossrt_close(self._b)
        self._b = None


    def _check_open(self):
        if not self._b or not self._s:
            raise MossError("moss: %s is closed" % self.path)

    def run(self, arrays):
        """Runs on |arrays| (one per input, in order); returns a list of
        output arrays. Each array has the input's shape, or, on a batched
        bundle (compiled with its batch axis open), (N, *shape[1:]): the
        outputs then hold N along their first axis."""
        self._check_open()
        xs, n = check_inputs(self.path, self.inputs, arrays)
        if n is None:
            return self._run_one(xs)
        if not self._batched:
            raise MossInputError(
                "moss: %s: a batch of %d, but the bundle is planned for %s and not batched: "
                "compile the model with its batch axis open (no input_shape for it) to run "
                "batches, or run one sample at a time" % (
                    self.path, n, ", ".join("'%s' %s" % (t.name, list(t.shape))
                                            for t in self.inputs)))
        outs = [np.empty((n,) + o.shape[1:], o.dtype) for o in self.outputs]
        err = _Error()
        if self._lib.mossrt_run_batch(self._s, n, _ptrs(xs), _ptrs(outs), ctypes.byref(err)):
            raise _fail("running a batch of %d" % n, err)
        return outs

    def _run_raw(self, ins, outs):
        err = _Error()
        if self._lib.mossrt_run(self._s, _ptrs(ins), _ptrs(outs), ctypes.byref(err)):
            raise _fail("running", err)

    def _run_one(self, xs):
        outs = [np.empty(o.shape, o.dtype) for o in self.outputs]
        self._run_raw(xs, outs)
        for i, axis in enumerate(self._bound):
            if axis < 0:
                continue
            dims = (ctypes.c_int64 * max(1, len(self.outputs[i].shape)))()
            err = _Error()
            if self._lib.mossrt_output_dims(self._s, i, dims, ctypes.byref(err)):
                raise _fail("reading output %d's shape" % i, err)
            shape = tuple(dims[k] for k in range(len(self.outputs[i].shape)))
            outs[i] = outs[i].reshape(-1)[:int(np.prod(shape))].reshape(shape).copy()
        return outs


def _ptrs(arrays):
    return (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])


def check_inputs(who, infos, arrays):
    """(contiguous arrays, N or None): N when the arrays are a batch along a
    leading dimension that the inputs have as 1. Refuses, before anything
    runs, a wrong count, dtype or shape, naming the input."""
    if len(arrays) != len(infos):
        raise MossInputError("moss: %s takes %d input%s (%s), got %d" % (
            who, len(infos), "" if len(infos) == 1 else "s",
            ", ".join("'%s' %s%s" % (t.name, t.dtype, list(t.shape)) for t in infos),
            len(arrays)))
    xs, batch = [], set()
    for t, a in zip(infos, arrays):
        a = np.asarray(a)
        if a.dtype != t.dtype:
            raise MossInputError("moss: %s: input '%s' is %s%s, got %s%s (convert it with "
                                 ".astype(np.%s))" % (who, t.name, t.dtype, list(t.shape),
                                                      a.dtype, list(a.shape), t.dtype))
        if a.shape == t.shape:
            batch.add(None)
        elif t.shape[:1] == (1,) and a.ndim == len(t.shape) and a.shape[1:] == t.shape[1:]:
            batch.add(a.shape[0])
        else:
            want = list(t.shape) if t.shape[:1] != (1,) else \
                "%s or [N, %s]" % (list(t.shape), ", ".join(map(str, t.shape[1:])))
            raise MossInputError("moss: %s: input '%s' is %s %s, got shape %s" % (
                who, t.name, t.dtype, want, list(a.shape)))
        xs.append(np.ascontiguousarray(a))
    sizes = sorted(b for b in batch if b is not None)
    if len(sizes) > 1:
        raise MossInputError("moss: %s: the inputs' batch sizes differ (%s)" % (who, sizes))
    n = sizes[0] if sizes else None
    if n == 0:
        raise MossInputError("moss: %s: an empty batch" % who)
    if n is not None and any(x.shape[:1] != (n,) for x in xs):
        raise MossInputError("moss: %s: a batch of %d in one input: every input must hold it "
                             "along its leading axis" % (who, n))
    return xs, n
