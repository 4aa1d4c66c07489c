#!/usr/bin/python3
"""Writes MobileNetV2 as ONNX: torch's architecture (torchvision.models.
mobilenet_v2, width 1.0, 224x224: a 3x3/2 convolution to 32 channels, batch
norm and ReLU6; 17 inverted-residual blocks from the (t, c, n, s) table
below, each an expanding 1x1 convolution with batch norm and ReLU6 (left out
when t = 1), a 3x3 depthwise convolution with batch norm and ReLU6, and a
projecting 1x1 convolution with batch norm and no activation, plus the input
when the block keeps stride 1 and its channel count; a 1x1 convolution to
1280 channels with batch norm and ReLU6; global average pool; a 1000-way
fully connected layer), with random weights (He-normal convolutions,
batch-norm statistics near identity), laid out as torch's exporter lays it
out at opset 13 (Conv, BatchNormalization, Clip with min 0 and max 6 as
inputs for ReLU6, Add, GlobalAveragePool, Flatten, Gemm with transB). Built
with the onnx package alone, so it needs no torch. About 14 MB of float32
weights: made on demand for benchmarks, not committed.

  make_mobilenetv2.py OUT.onnx [--batch 1] [--seed 0]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builder import Builder, parse_args, save_model  # noqa: E402

# expansion t, output channels c, repeats n, first stride s (torchvision)
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]


class MobileNetBuilder(Builder):
    """Every Conv here carries its group attribute, 1 included, as torch's exporter writes it."""

    def __init__(self, seed):
        super().__init__(seed)
        self.clip_min = self.const("clip_min", np.array(0.0))
        self.clip_max = self.const("clip_max", np.array(6.0))

    def relu6(self, x):
        return self.op("Clip", [x, self.clip_min, self.clip_max])

    def conv_bn_relu6(self, x, cin, cout, k, stride, group=1):
        return self.relu6(self.bn(self.conv(x, cin, cout, k, stride, (k - 1) // 2, group), cout))

    def inverted_residual(self, x, cin, cout, stride, t):
        hidden = cin * t
        h = x if t == 1 else self.conv_bn_relu6(x, cin, hidden, 1, 1)
        h = self.conv_bn_relu6(h, hidden, hidden, 3, stride, group=hidden)
        h = self.bn(self.conv(h, hidden, cout, 1, 1, 0, group=1), cout)
        return self.op("Add", [x, h]) if stride == 1 and cin == cout else h


def main():
    a = parse_args()
    b = MobileNetBuilder(a.seed)
    x = b.conv_bn_relu6("input", 3, 32, 3, 2)
    cin = 32
    for t, c, n, s in SETTINGS:
        for i in range(n):
            x = b.inverted_residual(x, cin, c, s if i == 0 else 1, t)
            cin = c
    x = b.conv_bn_relu6(x, cin, 1280, 1, 1)
    y = b.classifier(x, 1280)
    save_model(b, a.out, "mobilenetv2", [("input", [a.batch, 3, 224, 224])], [(y, [a.batch, 1000])], __file__)


if __name__ == "__main__":
    main()
