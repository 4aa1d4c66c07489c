"""What the bench/make_*.py model writers share: a Builder that appends ONNX
nodes and random float32 initializers under numbered names (base_N, N
counting every name given out), the command line (OUT.onnx [--batch 1]
[--seed 0]), and the tail that wraps the nodes in a graph and a model at
opset 13 with ir_version 8, checks it, saves it and prints one summary line.
Uses numpy and the onnx package alone, no torch. Each script keeps its own
architecture, as a Builder subclass or functions over a Builder.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET, IR_VERSION = 13, 8


class Builder:
    """Nodes and initializers of one graph, drawn from one seeded generator.

    The names and the order of the random draws make the model: for the same
    seed the same calls give the same bytes.
    """

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return "%s_%d" % (base, self.n)

    def const(self, base, arr, dtype=np.float32):
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr).astype(dtype), nm))
        return nm

    def conv_weights(self, cin, cout, k, group=None, bias=False):
        """A He-normal weight [cout, cin/group, k, k] and, with bias, a bias drawn from N(0, 0.02): their names."""
        g = group or 1
        w = self.rng.normal(0, np.sqrt(2.0 / (cin // g * k * k)), (cout, cin // g, k, k))
        ins = [self.const("w", w)]
        if bias:
            ins.append(self.const("b", self.rng.normal(0, 0.02, cout)))
        return ins

    def conv_node(self, ins, y, k, stride, pad, group=None):
        """A Conv node writing y; group None leaves the attribute out."""
        self.nodes.append(helper.make_node("Conv", ins, [y], kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[pad] * 4, group=group, name=y))
        return y

    def conv(self, x, cin, cout, k, stride=1, pad=0, group=None, bias=False):
        """A k x k convolution with He-normal weights (and a bias when asked); group None writes no group."""
        y = self.name("conv")
        return self.conv_node([x] + self.conv_weights(cin, cout, k, group, bias), y, k, stride, pad, group)

    def bn(self, x, c):
        """BatchNormalization with statistics near identity."""
        y = self.name("bn")
        ins = [x, self.const("gamma", self.rng.uniform(0.8, 1.2, c)), self.const("beta", self.rng.normal(0, 0.05, c)),
               self.const("mean", self.rng.normal(0, 0.05, c)), self.const("var", self.rng.uniform(0.8, 1.2, c))]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [y], epsilon=1e-5, name=y))
        return y

    def op(self, kind, ins, **attrs):
        y = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, ins, [y], name=y, **attrs))
        return y

    def classifier(self, x, cin, classes=1000, y="output"):
        """torch's head: GlobalAveragePool, Flatten, then a fully connected layer as Gemm with transB, writing y."""
        x = self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1)
        w = self.rng.normal(0, np.sqrt(1.0 / cin), (classes, cin))
        self.nodes.append(helper.make_node("Gemm", [x, self.const("fc_w", w), self.const("fc_b", np.zeros(classes))],
                                           [y], transB=1, name="fc"))
        return y


def parse_args():
    """The command line every make_*.py takes: OUT.onnx [--batch 1] [--seed 0]."""
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def save_model(b, out, graph_name, inputs, outputs, script):
    """Wraps b's nodes and initializers in a graph and a model (opset 13, ir_version 8, the producer named after
    script), checks it, writes it to out and prints "OUT: N nodes, X MB of weights". inputs and outputs are
    (name, shape) pairs of float tensors.
    """
    g = helper.make_graph(b.nodes, graph_name,
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                          producer_name="moss bench/" + os.path.basename(script))
    onnx.checker.check_model(m)
    onnx.save(m, out)
    print("%s: %d nodes, %.1f MB of weights" % (out, len(b.nodes), sum(np.prod(i.dims) for i in b.inits) * 4 / 1e6))
