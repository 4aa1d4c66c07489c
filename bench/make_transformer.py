#!/usr/bin/python3
"""Writes a small transformer encoder as ONNX: two layers of torch's
nn.TransformerEncoderLayer (d_model 128, 4 heads of 32, feed-forward 512,
ReLU, post-norm: norm_first=False, eval mode so no dropout) over an input
that is already embedded, [batch, 128, 128] (sequence 128), with random
weights (normal with variance 1/fan-in, small biases, layer-norm scales near
1), laid out as torch's exporter lays it out at opset 13:

  self-attention: Q, K and V each MatMul + Add (bias), Reshape to
    [batch, 128, 4, 32] and Transpose to [batch, 4, 128, 32] (K straight to
    [batch, 4, 32, 128]); scores MatMul(Q, K^T), Mul by 1/sqrt(32),
    Softmax(axis -1); MatMul with V; Transpose back, Reshape to
    [batch, 128, 128]; the output projection MatMul + Add;
  residual Add, then LayerNorm;
  feed-forward MatMul + Add, Relu, MatMul + Add; residual Add, LayerNorm.

LayerNormalization only arrived in opset 17, so at opset 13 it is
decomposed as torch decomposes it: ReduceMean, Sub, Pow 2, ReduceMean,
Add eps, Sqrt, Div, Mul gamma, Add beta. The Reshape shapes are int64
initializers. Built with the onnx package alone, so it needs no torch.
About 1.6 MB of float32 weights.

  make_transformer.py OUT.onnx [--batch 1] [--seed 0]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builder import Builder, parse_args, save_model  # noqa: E402

LAYERS, D, HEADS, FF, SEQ = 2, 128, 4, 512, 128


class TransformerBuilder(Builder):
    def linear(self, x, din, dout):
        """nn.Linear on a 3-D input: MatMul by the transposed weight [din, dout], then Add."""
        w = self.rng.normal(0, np.sqrt(1.0 / din), (din, dout))
        return self.op("Add", [self.op("MatMul", [x, self.const("w", w)]),
                               self.const("b", self.rng.normal(0, 0.02, dout))])

    def layer_norm(self, x, d, eps=1e-5):
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        xc = self.op("Sub", [x, mean])
        var = self.op("ReduceMean", [self.op("Pow", [xc, self.const("two", np.array(2.0))])], axes=[-1], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, self.const("eps", np.array(eps))])])
        y = self.op("Mul", [self.op("Div", [xc, std]), self.const("gamma", self.rng.uniform(0.8, 1.2, d))])
        return self.op("Add", [y, self.const("beta", self.rng.normal(0, 0.05, d))])

    def attention(self, x, batch):
        dh = D // HEADS
        split = self.const("shape", [batch, SEQ, HEADS, dh], np.int64)
        q = self.op("Transpose", [self.op("Reshape", [self.linear(x, D, D), split])], perm=[0, 2, 1, 3])
        k = self.op("Transpose", [self.op("Reshape", [self.linear(x, D, D), split])], perm=[0, 2, 3, 1])
        v = self.op("Transpose", [self.op("Reshape", [self.linear(x, D, D), split])], perm=[0, 2, 1, 3])
        s = self.op("Mul", [self.op("MatMul", [q, k]), self.const("scale", np.array(1.0 / np.sqrt(dh)))])
        h = self.op("MatMul", [self.op("Softmax", [s], axis=-1), v])
        h = self.op("Reshape", [self.op("Transpose", [h], perm=[0, 2, 1, 3]),
                                self.const("shape", [batch, SEQ, D], np.int64)])
        return self.linear(h, D, D)

    def encoder_layer(self, x, batch):
        x = self.layer_norm(self.op("Add", [x, self.attention(x, batch)]), D)
        h = self.linear(self.op("Relu", [self.linear(x, D, FF)]), FF, D)
        return self.layer_norm(self.op("Add", [x, h]), D)


def main():
    a = parse_args()
    b = TransformerBuilder(a.seed)
    x = "input"
    for _ in range(LAYERS):
        x = b.encoder_layer(x, a.batch)
    y = "output"
    b.nodes[-1].output[0] = y  # the last LayerNorm's Add writes the graph output
    save_model(b, a.out, "transformer", [("input", [a.batch, SEQ, D])], [(y, [a.batch, SEQ, D])], __file__)


if __name__ == "__main__":
    main()
