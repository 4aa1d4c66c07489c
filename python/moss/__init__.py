"""moss from Python: compile ONNX models for a target, run and evaluate them
through libmossrt, rank targets by energy.

    import moss
    art = moss.compile("cnn.onnx", target="host", input_shape={"input": (1, 1, 8, 8)},
                       prune="magnitude:0.5", quantize="int8", calibration=x_calib)
    logits = art.run(x_test)          # numpy in, numpy out; a batch along axis 0
    print(art.eval(x_test, y_test), art.report["total"]["platform_j"])
    rows = moss.compare("cnn.onnx", targets=["host", "rpi4", "cortex-m7"],
                        input_shape={"input": (1, 1, 8, 8)})

See python/README.md.
"""
from ._api import Artifact, compare, compile, load, run_cli
from ._errors import MossError, MossInputError
from ._locate import find_executable, find_library
from ._runtime import Bundle, TensorInfo

__all__ = ["Artifact", "Bundle", "MossError", "MossInputError", "TensorInfo", "compare",
           "compile", "find_executable", "find_library", "load", "run_cli"]
__version__ = "0.1.0"
