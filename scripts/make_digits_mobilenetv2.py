#!/usr/bin/python3
"""Train a MobileNetV2 on sklearn's digits data and export it to ONNX.

The architecture is torchvision's mobilenet_v2 (inverted residual blocks
from the (t, c, n, s) table below, ReLU6, batch norm, a 1x1 convolution to
1280 channels, global average pool, dropout 0.2 and a linear classifier),
written out here because Debian has no torchvision, at width 0.35 with one
input channel and 10 classes, and, as the CIFAR versions do for small
images, stride 1 in the first convolution and the second block row. The
8x8 digits are enlarged 2x (nearest) to 16x16 inside the model, by a Resize
node (the last blocks work on 2x2), so the model reads the CNN's
inputs (x_test_cnn.npy, [N, 1, 8, 8]) and the fixtures need no new data.

Writes tests/e2e/digits/mnv2.onnx (opset 13, dynamic batch), torch's
logits on the test set (mnv2_ref.npy) and its test accuracy
(mnv2_accuracy.txt). Same split and seed as scripts/make_digits_models.py
(whose load_data it uses); 60 epochs of Adam with cosine decay and one-pixel
shifts take about 3 minutes on 2 cores.

  /usr/bin/python3 scripts/make_digits_mobilenetv2.py [OUT_DIR]
"""

import os
import random
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_digits_models import OPSET, SEED, load_data  # noqa: E402  (the same split)

torch.set_num_threads(2)
EPOCHS = 60
BATCH = 64
LR = 2e-3
WIDTH = 0.35
# expansion t, output channels c, repeats n, first stride s (torchvision's,
# but for the second row's stride 1, as CIFAR versions do for small images)
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]


def divisible(v, d=8):
    """torchvision's _make_divisible: the nearest multiple of d, not below 90 % of v."""
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def conv_bn(cin, cout, k, stride, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6())
    return layers


class Block(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else conv_bn(cin, hidden, 1, 1)
        layers += conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += conv_bn(hidden, cout, 1, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        cin = divisible(32 * WIDTH)
        layers = conv_bn(1, cin, 3, 1)  # stride 1 on small images, as CIFAR versions
        for t, c, n, s in SETTINGS:
            cout = divisible(c * WIDTH)
            for i in range(n):
                layers.append(Block(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers += conv_bn(cin, 1280, 1, 1)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 10))

    def forward(self, x):
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "e2e",
                                                            "digits")
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    x_train, x_test, y_train, y_test = load_data()
    x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    model = MobileNetV2()
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    g = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt) - BATCH + 1, BATCH):  # whole batches: batch norm
            idx = perm[i:i + BATCH]
            xb = xt[idx]
            # one-pixel shifts: the training split is small
            dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = nn.functional.cross_entropy(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        print("epoch %d loss %.4f test %.4f" % (epoch, loss.item(), acc), flush=True)
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x_test)).numpy()
    acc = float((ref.argmax(1) == y_test).mean())
    path = os.path.join(out, "mnv2.onnx")
    torch.onnx.export(model, torch.from_numpy(x_test[:1]), path, opset_version=OPSET, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    np.save(os.path.join(out, "mnv2_ref.npy"), ref.astype(np.float32))
    with open(os.path.join(out, "mnv2_accuracy.txt"), "w") as f:
        f.write("mnv2 %.6f\n" % acc)
    print("mnv2 test accuracy %.6f -> %s" % (acc, path))


if __name__ == "__main__":
    main()
