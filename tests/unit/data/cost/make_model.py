# make_model.py - writes matmul_relu.onnx, the two-node model of test_cost.c:
# Y = Relu(X[1,8] x W[8,4]), W f32 with its first column zero (8 of 32
# weights are zero, so the effective MACs are 3/4 of the dense ones).
# Run once with Debian's /usr/bin/python3 (python3-onnx); the output is committed.
import onnx
from onnx import TensorProto, helper

w = [0.0 if k % 4 == 0 else 0.5 * (k + 1) for k in range(32)]
graph = helper.make_graph(
    [helper.make_node("MatMul", ["X", "W"], ["H"], name="mm"),
     helper.make_node("Relu", ["H"], ["Y"], name="relu")],
    "matmul_relu",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 8])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor("W", TensorProto.FLOAT, [8, 4], w)])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="moss-tests")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "matmul_relu.onnx")
