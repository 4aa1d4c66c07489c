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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builder import Builder, parse_args, save_model  # noqa: E402


class ResNetBuilder(Builder):
    def block(self, x, cin, cout, stride):
        h = self.op("Relu", [self.bn(self.conv(x, cin, cout, 3, stride, 1), cout)])
        h = self.bn(self.conv(h, cout, cout, 3, 1, 1), cout)
        sc = x if stride == 1 and cin == cout else self.bn(self.conv(x, cin, cout, 1, stride, 0), cout)
        return self.op("Relu", [self.op("Add", [h, sc])])


def main():
    a = parse_args()
    b = ResNetBuilder(a.seed)
    x = b.op("Relu", [b.bn(b.conv("input", 3, 64, 7, 2, 3), 64)])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = b.block(x, cin, cout, stride)
        x = b.block(x, cout, cout, 1)
        cin = cout
    y = b.classifier(x, cin)
    save_model(b, a.out, "resnet18", [("input", [a.batch, 3, 224, 224])], [(y, [a.batch, 1000])], __file__)


if __name__ == "__main__":
    main()
