#!/usr/bin/python3
"""Writes ResNet-18 as ONNX: torch's architecture (torchvision.models.resnet18:
a 7x7/2 convolution, batch norm, ReLU and a 3x3/2 max pool; four stages of
two basic blocks with 64, 128, 256 and 512 channels, the first block of
stages 2-4 striding by 2 with a 1x1 projection; global average pool; a
1000-way fully connected layer), with random weights (He-normal
convolutions, batch-norm statistics near identity), laid out as torch's
exporter lays it out at opset 13 (Conv, BatchNormalization, Relu, Add,
MaxPool, GlobalAveragePool, Flatten, Gemm). Built with the onnx package
alone, so it needs no torch. About 45 MB of float32 weights: made on demand
for benchmarks, not committed.

  make_resnet18.py OUT.onnx [--batch 1] [--seed 0]
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return "%s_%d" % (base, self.n)

    def const(self, base, arr):
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), nm))
        return nm

    def conv(self, x, cin, cout, k, stride, pad):
        fan_in = cin * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin, k, k))
        y = self.name("conv")
        self.nodes.append(helper.make_node("Conv", [x, self.const("w", w)], [y], kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[pad] * 4, name=y))
        return y

    def bn(self, x, c):
        y = self.name("bn")
        ins = [x, self.const("gamma", self.rng.uniform(0.8, 1.2, c)), self.const("beta", self.rng.normal(0, 0.05, c)),
               self.const("mean", self.rng.normal(0, 0.05, c)), self.const("var", self.rng.uniform(0.8, 1.2, c))]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [y], epsilon=1e-5, name=y))
        return y

    def op(self, kind, ins, **attrs):
        y = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, ins, [y], name=y, **attrs))
        return y

    def block(self, x, cin, cout, stride):
        h = self.op("Relu", [self.bn(self.conv(x, cin, cout, 3, stride, 1), cout)])
        h = self.bn(self.conv(h, cout, cout, 3, 1, 1), cout)
        sc = x if stride == 1 and cin == cout else self.bn(self.conv(x, cin, cout, 1, stride, 0), cout)
        return self.op("Relu", [self.op("Add", [h, sc])])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    b = Builder(a.seed)
    x = b.op("Relu", [b.bn(b.conv("input", 3, 64, 7, 2, 3), 64)])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = b.block(x, cin, cout, stride)
        x = b.block(x, cout, cout, 1)
        cin = cout
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    w = b.rng.normal(0, np.sqrt(1.0 / 512), (1000, 512))
    y = "output"
    b.nodes.append(helper.make_node("Gemm", [x, b.const("fc_w", w), b.const("fc_b", np.zeros(1000))], [y],
                                    transB=1, name="fc"))
    g = helper.make_graph(b.nodes, "resnet18",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [a.batch, 3, 224, 224])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, [a.batch, 1000])], b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="moss bench/make_resnet18.py")
    onnx.checker.check_model(m)
    onnx.save(m, a.out)
    print("%s: %d nodes, %.1f MB of weights" % (a.out, len(b.nodes),
                                                sum(np.prod(i.dims) for i in b.inits) * 4 / 1e6))


if __name__ == "__main__":
    main()
