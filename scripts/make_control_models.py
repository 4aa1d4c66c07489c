#!/usr/bin/python3
"""Makes tests/e2e/control: loops as torch exports them from scripted
code (torch.jit.script, then torch.onnx.export), with torch's outputs:

  /usr/bin/python3 scripts/make_control_models.py tests/e2e/control

- loop_range.onnx: `for i in range(x.size(0)): acc = acc * 0.5 + x[i]`
  over x [T, 4] with T a dynamic axis: a Loop whose trip count is
  Gather(Shape(x), 0) and whose body's condition is Identity of the
  graph's constant true (what torch writes);
- loop_while.onnx: `while total < limit` with a step counter: a body that
  computes its condition (compiled with --max-trip-count).
Each NAME.onnx has NAME.x.npy (the input) and NAME.ref.npy (torch's output).
"""
import os
import sys

import numpy as np
import torch


class Range(torch.nn.Module):
    def forward(self, x):
        acc = torch.zeros(x.size(1))
        for i in range(x.size(0)):
            acc = acc * 0.5 + x[i]
        return acc


class While(torch.nn.Module):
    def forward(self, x):
        total = torch.zeros(1)
        steps = torch.zeros(1)
        while bool(total.sum() < 10.0):
            total = total + x.abs().sum() * 0.25
            steps = steps + 1.0
        return total, steps


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(3)
    for name, mod, x, axes in (("loop_range", Range(), torch.rand(6, 4) - 0.5, {"x": {0: "t"}}),
                               ("loop_while", While(), torch.rand(3) + 0.2, None)):
        m = torch.jit.script(mod)
        with torch.no_grad():
            ref = m(x)
        ref = ref if isinstance(ref, tuple) else (ref,)
        torch.onnx.export(m, (x,), os.path.join(out, name + ".onnx"), input_names=["x"],
                          output_names=["y%d" % k for k in range(len(ref))], opset_version=14, dynamic_axes=axes)
        np.save(os.path.join(out, name + ".x.npy"), x.numpy())
        for k, r in enumerate(ref):
            np.save(os.path.join(out, "%s.ref%d.npy" % (name, k)), r.numpy())


if __name__ == "__main__":
    main()
