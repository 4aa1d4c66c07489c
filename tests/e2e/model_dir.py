"""A test case's folder, for the e2e tests: imported, not run.

save_model_dir(work, name, nodes, inputs, inits, outputs, fmt) writes
WORK/NAME/model.onnx (opset 13, IR version 8) from ONNX |nodes|, the graph
inputs |inputs| ({name: numpy array}: their types and shapes are the
arrays'; ELEM maps numpy's types to ONNX's), the initializers |inits| ({name: array}) and the graph outputs
|outputs| ([value_info]), then each input beside it as NAME.npy (|fmt|
"npy") or as an ONNX TensorProto NAME.pb ("pb"); returns the folder.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

ELEM = {np.dtype(np.float32): TP.FLOAT, np.dtype(np.float64): TP.DOUBLE, np.dtype(np.int32): TP.INT32,
        np.dtype(np.int64): TP.INT64, np.dtype(np.int8): TP.INT8, np.dtype(np.uint8): TP.UINT8,
        np.dtype(np.bool_): TP.BOOL}


def save_model_dir(work, name, nodes, inputs, inits, outputs, fmt="npy"):
    vi = [H.make_tensor_value_info(k, ELEM[v.dtype], v.shape) for k, v in inputs.items()]
    g = H.make_graph(nodes, name, vi, outputs, [NH.from_array(v, k) for k, v in inits.items()])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, d + "/model.onnx")
    for k, v in inputs.items():
        if fmt == "npy":
            np.save("%s/%s.npy" % (d, k), v)
        else:
            onnx.save_tensor(NH.from_array(v, k), "%s/%s.pb" % (d, k))
    return d
