#!/usr/bin/python3
"""Train two small models on sklearn's digits data and export them to ONNX.

Writes the end-to-end test fixtures in tests/e2e/digits/:

  mlp.onnx, cnn.onnx          the exported models (opset 13, dynamic batch)
  x_test_mlp.npy              float32 [N, 64]      test inputs for the MLP
  x_test_cnn.npy              float32 [N, 1, 8, 8] test inputs for the CNN
  y_test.npy                  int64   [N]          test labels
  mlp_ref.npy, cnn_ref.npy    float32 [N, 10]      torch's logits on the test set
  accuracy.txt                torch's test accuracy of each model

Run with Debian's interpreter (it has torch, sklearn, numpy and onnx):

  /usr/bin/python3 scripts/make_digits_models.py [OUT_DIR]

Everything is seeded and single-threaded, so reruns write the same arrays.
"""

import os
import random
import sys
import warnings

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from torch import nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
OPSET = 13
EPOCHS = 40
BATCH = 32
LR = 1e-3


def seed_everything():
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def load_data():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y)
    return x_train, x_test, y_train, y_test


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 64), nn.ReLU(),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU())
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def train(model, x, y):
    # A fixed generator for the shuffles, so each model's training does not
    # depend on what ran before it.
    gen = torch.Generator().manual_seed(SEED)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()


def logits_of(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy().astype(np.float32)


def export(model, example, path):
    # TrainingMode.PRESERVE with the model in eval mode exports eval-mode
    # semantics but skips the eval peephole pass that folds BatchNorm into the
    # preceding Conv, so BatchNormalization stays in the graph.
    kwargs = dict(
        export_params=True,
        opset_version=OPSET,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.PRESERVE,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    major_minor = tuple(int(p) for p in torch.__version__.split(".")[:2])
    if major_minor >= (2, 5):
        kwargs["dynamo"] = False
    model.eval()
    with warnings.catch_warnings():
        # torch warns about constant folding under PRESERVE without looking
        # at whether the model is in training mode; here it is not.
        warnings.filterwarnings("ignore", message=".*constant folding.*")
        torch.onnx.export(model, example, path, **kwargs)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return m


def run_onnx_numpy(m, x):
    """Evaluate the few ops these graphs use with numpy, as a check that the
    exported model computes what torch computed (no onnxruntime here)."""
    env = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    env[m.graph.input[0].name] = x
    for node in m.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        ins = [env[i] for i in node.input]
        op = node.op_type
        if op == "Gemm":
            A, B = ins[0], ins[1]
            A = A.T if a.get("transA", 0) else A
            B = B.T if a.get("transB", 0) else B
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "BatchNormalization":
            xx, sc, b, mean, var = ins
            r = lambda v: v.reshape(1, -1, 1, 1)
            y = (xx - r(mean)) / np.sqrt(r(var) + a.get("epsilon", 1e-5)) * r(sc) + r(b)
        elif op == "MaxPool":
            assert a["kernel_shape"] == [2, 2] and a["strides"] == [2, 2]
            assert not any(a.get("pads", [0])) and not a.get("ceil_mode", 0)
            n, c, h, w = ins[0].shape
            y = ins[0].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        elif op == "Conv":
            xx, wt = ins[0], ins[1]
            assert a.get("group", 1) == 1 and a.get("strides", [1, 1]) == [1, 1]
            assert a.get("dilations", [1, 1]) == [1, 1]
            kh, kw = wt.shape[2:]
            p = a.get("pads", [0, 0, 0, 0])
            xp = np.pad(xx, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
            n, c, h, w = xp.shape
            oh, ow = h - kh + 1, w - kw + 1
            y = np.zeros((n, wt.shape[0], oh, ow), np.float64)
            for i in range(kh):
                for j in range(kw):
                    y += np.einsum("nchw,oc->nohw", xp[:, :, i:i + oh, j:j + ow],
                                   wt[:, :, i, j])
            if len(ins) > 2:
                y += ins[2].reshape(1, -1, 1, 1)
        else:
            raise NotImplementedError(op)
        env[node.output[0]] = y
    return env[m.graph.output[0].name]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = (sys.argv[1] if len(sys.argv) > 1
               else os.path.join(here, "..", "tests", "e2e", "digits"))
    out_dir = os.path.normpath(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    seed_everything()
    x_train, x_test, y_train, y_test = load_data()
    x_train_cnn = x_train.reshape(-1, 1, 8, 8)
    x_test_cnn = np.ascontiguousarray(x_test.reshape(-1, 1, 8, 8))

    results = {}
    for name, model_cls, xtr, xte in (("mlp", MLP, x_train, x_test),
                                      ("cnn", CNN, x_train_cnn, x_test_cnn)):
        torch.manual_seed(SEED)
        model = model_cls()
        train(model, xtr, y_train)
        ref = logits_of(model, xte)
        acc = float((ref.argmax(axis=1) == y_test).mean())
        m = export(model, torch.from_numpy(xte[:1]),
                   os.path.join(out_dir, name + ".onnx"))
        err = float(np.abs(run_onnx_numpy(m, xte.astype(np.float64)) - ref).max())
        assert err < 1e-4, "%s: ONNX graph differs from torch by %g" % (name, err)
        np.save(os.path.join(out_dir, "x_test_%s.npy" % name), xte)
        np.save(os.path.join(out_dir, "%s_ref.npy" % name), ref)
        results[name] = (acc, [n.op_type for n in m.graph.node], err)

    np.save(os.path.join(out_dir, "y_test.npy"), y_test.astype(np.int64))
    with open(os.path.join(out_dir, "accuracy.txt"), "w") as f:
        for name in ("mlp", "cnn"):
            f.write("%s %.6f\n" % (name, results[name][0]))

    print("torch %s, opset %d, test set N=%d" % (torch.__version__, OPSET,
                                                 len(y_test)))
    for name in ("mlp", "cnn"):
        acc, ops, err = results[name]
        print("%s: accuracy %.6f, ONNX-vs-torch max |diff| %.2e, ops %s"
              % (name, acc, err, " ".join(ops)))
    print("wrote %s" % out_dir)
    for fn in sorted(os.listdir(out_dir)):
        print("  %-16s %8d bytes" % (fn, os.path.getsize(os.path.join(out_dir, fn))))


if __name__ == "__main__":
    main()
