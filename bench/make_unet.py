#!/usr/bin/python3
"""Writes a small UNet-style encoder-decoder as ONNX, at [batch, 3, 128, 128]:
the usual torch UNet (as in milesial/Pytorch-UNet) made smaller:

  encoder, 3 levels of 16, 32 and 64 channels: each two 3x3 convolutions
    (pads 1, no bias) with batch norm and ReLU; a 2x2/2 max pool between
    levels and before the bottleneck;
  bottleneck: two 3x3 convolutions with batch norm and ReLU at 128 channels,
    16x16;
  decoder, 3 levels of 64, 32 and 16 channels: each a 2x2/2 transposed
    convolution (with bias) halving the channels and doubling the size,
    Concat with the encoder level's output on the channel axis (skip first),
    then two 3x3 convolutions with batch norm and ReLU;
  a 1x1 convolution (with bias) to 2 classes: output [batch, 2, 128, 128].

Random weights (He-normal convolutions, batch-norm statistics near
identity), laid out as torch's exporter lays it out at opset 13 (Conv,
BatchNormalization, Relu, MaxPool, ConvTranspose, Concat). Built with the
onnx package alone, so it needs no torch. About 1.9 MB of float32 weights.

  make_unet.py OUT.onnx [--batch 1] [--seed 0]
"""
import os
import sys

import numpy as np
from onnx import helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builder import Builder, parse_args, save_model  # noqa: E402

SIZE, LEVELS, BOTTLENECK, CLASSES = 128, (16, 32, 64), 128, 2


class UNetBuilder(Builder):
    def conv(self, x, cin, cout, k, pad, bias=False, out=None):
        """A stride-1 convolution writing out (or a new name), named after its weights, unlike Builder.conv."""
        ins = [x] + self.conv_weights(cin, cout, k, bias=bias)
        return self.conv_node(ins, out or self.name("conv"), k, 1, pad)

    def up(self, x, cin, cout):
        """nn.ConvTranspose2d(cin, cout, 2, stride=2): weight [cin, cout, 2, 2], with bias."""
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * 4)), (cin, cout, 2, 2))
        y = self.name("up")
        self.nodes.append(helper.make_node("ConvTranspose", [x, self.const("w", w),
                                                             self.const("b", self.rng.normal(0, 0.02, cout))],
                                           [y], kernel_shape=[2, 2], strides=[2, 2], name=y))
        return y

    def double_conv(self, x, cin, cout):
        x = self.op("Relu", [self.bn(self.conv(x, cin, cout, 3, 1), cout)])
        return self.op("Relu", [self.bn(self.conv(x, cout, cout, 3, 1), cout)])

    def pool(self, x):
        return self.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])


def main():
    a = parse_args()
    b = UNetBuilder(a.seed)
    x, cin, skips = "input", 3, []
    for c in LEVELS:
        x = b.double_conv(x, cin, c)
        skips.append(x)
        x, cin = b.pool(x), c
    x, cin = b.double_conv(x, cin, BOTTLENECK), BOTTLENECK
    for c, skip in zip(reversed(LEVELS), reversed(skips)):
        x = b.op("Concat", [skip, b.up(x, cin, c)], axis=1)
        x, cin = b.double_conv(x, 2 * c, c), c
    y = b.conv(x, cin, CLASSES, 1, 0, bias=True, out="output")
    save_model(b, a.out, "unet", [("input", [a.batch, 3, SIZE, SIZE])], [(y, [a.batch, CLASSES, SIZE, SIZE])],
               __file__)


if __name__ == "__main__":
    main()
