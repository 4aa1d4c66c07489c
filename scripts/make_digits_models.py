#!/usr/bin/python3
"""Train two small models on sklearn's digits data and export them to ONNX.

Writes the end-to-end test fixtures in tests/e2e/digits/:

  mlp.onnx, cnn.onnx          the exported models (opset 13, dynamic batch)
  x_test_mlp.npy              float32 [N, 64]      test inputs for the MLP
  x_test_cnn.npy              float32 [N, 1, 8, 8] test inputs for the CNN
  y_test.npy                  int64   [N]          test labels
  mlp_ref.npy, cnn_ref.npy    float32 [N, 10]      torch's logits on the test set
  accuracy.txt                torch's test accuracy of each model
  x_calib_mlp.npy             float32 [256, 64]    calibration inputs (the first
  x_calib_cnn.npy             float32 [256,1,8,8]  256 training rows)
  cnn_qdq.onnx, mlp_qdq.onnx  torch post-training static int8 models (qnnpack,
                              per-tensor weights) exported as QDQ graphs
  cnn_qdq_pc.onnx             the CNN with per-channel weights
  <q>_ref.npy                 float32 [N, 10] the quantized model's dequantized
                              logits, for each QDQ model <q>
  <q>_ref_q.npy               uint8   [N, 10] the same logits as integers
  <q>_qparams.txt             their scale and zero point
  mlp_pruned90.onnx           the MLP with 90 % of its Linear weights pruned
                              (global magnitude) and fine-tuned with the masks
  mlp_pruned90_ref.npy        float32 [N, 10] its torch logits

Run with Debian's interpreter (it has torch, sklearn, numpy and onnx):

  /usr/bin/python3 scripts/make_digits_models.py [OUT_DIR]

Everything is seeded and single-threaded, so reruns write the same arrays.
"""

import copy
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
from torch.nn.utils import prune
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
OPSET = 13
EPOCHS = 40
BATCH = 32
LR = 1e-3
CALIB_ROWS = 256
PRUNE_AMOUNT = 0.9
FINETUNE_EPOCHS = 30
# Seeds of the generators used after the float models are trained, apart from
# SEED so that adding outputs never changes the ones written before.
FINETUNE_SEED = 1


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


def train(model, x, y, epochs=EPOCHS, seed=SEED):
    # A fixed generator for the shuffles, so each model's training does not
    # depend on what ran before it.
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
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


def per_axis(v, x, axis):
    """A QuantizeLinear / DequantizeLinear scale or zero point shaped to
    broadcast against |x|: a scalar or one-element tensor is per tensor."""
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * x.ndim
    shape[axis] = v.size
    return v.reshape(shape)


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
        elif op == "QuantizeLinear":
            # uint8 or int8 by the zero point's type; round half to even.
            xx, sc = ins[0], ins[1]
            zp = ins[2] if len(ins) > 2 else np.uint8(0)
            info = np.iinfo(zp.dtype)
            axis = a.get("axis", 1)
            sc, zp = per_axis(sc, xx, axis), per_axis(zp, xx, axis)
            y = np.clip(np.rint(xx / sc) + zp.astype(np.float64), info.min,
                        info.max).astype(ins[2].dtype if len(ins) > 2 else np.uint8)
        elif op == "DequantizeLinear":
            xx, sc = ins[0], ins[1]
            zp = ins[2] if len(ins) > 2 else np.zeros((), xx.dtype)
            axis = a.get("axis", 1)
            sc, zp = per_axis(sc, xx, axis), per_axis(zp, xx, axis)
            y = (xx.astype(np.float64) - zp.astype(np.float64)) * sc
        elif op == "Cast":
            y = ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])
        elif op == "Constant":
            y = onnx.numpy_helper.to_array(a["value"])
        elif op == "ConstantOfShape":
            v = a.get("value")
            v = onnx.numpy_helper.to_array(v) if v is not None else np.zeros(1, np.float32)
            y = np.full(tuple(ins[0]), v.reshape(())[()], v.dtype)
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


# --- Post-training static quantization (torch eager mode, qnnpack) ---------

class QuantMLP(MLP):
    """The MLP with quantization stubs; same parameter names as MLP."""

    def __init__(self):
        super().__init__()
        self.quant = torch.quantization.QuantStub()
        self.dequant = torch.quantization.DeQuantStub()

    def forward_q(self, x):
        return self.net(self.quant(x))

    def forward(self, x):
        return self.dequant(self.forward_q(x))

    def fuse(self):
        torch.quantization.fuse_modules(
            self, [["net.0", "net.1"], ["net.2", "net.3"]], inplace=True)


class QuantCNN(CNN):
    """The CNN with quantization stubs; same parameter names as CNN."""

    def __init__(self):
        super().__init__()
        self.quant = torch.quantization.QuantStub()
        self.dequant = torch.quantization.DeQuantStub()

    def forward_q(self, x):
        return self.fc(torch.flatten(self.features(self.quant(x)), 1))

    def forward(self, x):
        return self.dequant(self.forward_q(x))

    def fuse(self):
        torch.quantization.fuse_modules(
            self, [["features.0", "features.1", "features.2"],
                   ["features.4", "features.5"]], inplace=True)


def quantize_ptq(float_model, qcls, qconfig, x_calib):
    """Eager-mode static quantization of a copy of |float_model|: fuse,
    observe |x_calib| in one batch, convert."""
    model = qcls()
    model.load_state_dict(float_model.state_dict())
    model.eval()
    model.fuse()
    model.qconfig = qconfig
    torch.quantization.prepare(model, inplace=True)
    with torch.no_grad():
        model(torch.from_numpy(x_calib))
    torch.quantization.convert(model, inplace=True)
    return model


def exportable(model):
    """torch 1.13 cannot export quantized::linear_relu (the fused Linear+ReLU
    module). With an output zero point of 0 (a ReLU-observed range starts at
    0) the quantized Linear alone already clamps negatives to 0, so a copy
    with each fused module replaced by its quantized Linear and a ReLU on the
    quantized tensor computes the same integers and exports. The callers
    check that the integers are the same."""
    import torch.nn.intrinsic.quantized as nniq
    import torch.nn.quantized as nnq
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for key, child in list(parent.named_children()):
            if not isinstance(child, nniq.LinearReLU):
                continue
            assert child.zero_point == 0, "fused Linear+ReLU with zero point %d" % child.zero_point
            lin = nnq.Linear(child.in_features, child.out_features)
            lin.set_weight_bias(child.weight(), child.bias())
            lin.scale, lin.zero_point = child.scale, child.zero_point
            setattr(parent, key, nn.Sequential(lin, nn.ReLU()))
    return model


def export_quantized(model, example, path):
    # The TorchScript exporter writes each quantized module as
    # DequantizeLinear -> float op -> QuantizeLinear (QDQ).
    kwargs = dict(
        export_params=True,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    major_minor = tuple(int(p) for p in torch.__version__.split(".")[:2])
    if major_minor >= (2, 5):
        kwargs["dynamo"] = False
    with warnings.catch_warnings():
        # A harmless note about the shape of prim::TupleConstruct (the packed
        # parameters of the quantized modules).
        warnings.filterwarnings("ignore", message=".*TupleConstruct.*")
        torch.onnx.export(model, example, path, **kwargs)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return m


def quantized_outputs(model, x):
    """The quantized model's final output: dequantized logits, the integers,
    and their scale and zero point."""
    with torch.no_grad():
        q = model.forward_q(torch.from_numpy(x))
        return (q.dequantize().numpy().astype(np.float32),
                q.int_repr().numpy().astype(np.uint8),
                float(q.q_scale()), int(q.q_zero_point()))


def make_qdq_models(out_dir, floats, data, y_test):
    """Writes the QDQ models and their references; returns
    {name: (accuracy, op list)} and the per-channel outcome (None or why it
    was skipped)."""
    from torch.ao.quantization import QConfig, default_per_channel_weight_observer
    torch.backends.quantized.engine = "qnnpack"
    per_tensor = torch.quantization.get_default_qconfig("qnnpack")
    per_channel = QConfig(activation=per_tensor.activation,
                          weight=default_per_channel_weight_observer)
    jobs = (("cnn_qdq", "cnn", QuantCNN, per_tensor),
            ("mlp_qdq", "mlp", QuantMLP, per_tensor),
            ("cnn_qdq_pc", "cnn", QuantCNN, per_channel))
    results = {}
    skipped = None
    for name, base, qcls, qconfig in jobs:
        xtr, xte = data[base]
        path = os.path.join(out_dir, name + ".onnx")
        try:
            model = quantize_ptq(floats[base], qcls, qconfig, xtr)
            ref, ref_q, scale, zp = quantized_outputs(model, xte)
            exported = exportable(model)
            same_q = quantized_outputs(exported, xte)[1]
            assert np.array_equal(same_q, ref_q), name + ": unfused copy differs"
            m = export_quantized(exported, torch.from_numpy(xte[:1]), path)
        except Exception as e:  # only the per-channel variant may fail
            if name != "cnn_qdq_pc":
                raise
            skipped = "%s: %s" % (type(e).__name__, e)
            if os.path.exists(path):
                os.remove(path)
            continue
        err = qdq_check(m, xte, ref_q, scale, zp)
        np.save(os.path.join(out_dir, name + "_ref.npy"), ref)
        np.save(os.path.join(out_dir, name + "_ref_q.npy"), ref_q)
        with open(os.path.join(out_dir, name + "_qparams.txt"), "w") as f:
            f.write("scale %r\nzero_point %d\n" % (scale, zp))
        acc = float((ref.argmax(axis=1) == y_test).mean())
        ops = [n.op_type for n in m.graph.node if n.op_type != "Constant"]
        results[name] = (acc, ops, err)
    return results, skipped


def qdq_check(m, x, ref_q, scale, zp):
    """Evaluates the QDQ graph with numpy (ONNX's float QuantizeLinear /
    DequantizeLinear semantics) and returns the share of its output integers
    within 1 of torch's integer output; asserts it is at least 99 %."""
    out = run_onnx_numpy(m, x.astype(np.float64))
    got_q = np.clip(np.rint(out / scale) + zp, 0, 255)
    diff = np.abs(got_q - ref_q.astype(np.float64))
    share = float((diff <= 1).mean())
    assert share >= 0.99, "ONNX QDQ graph vs torch: %.4f within 1 LSB" % share
    return share


# --- Pruning with fine-tuning ------------------------------------------------

def prune_and_finetune(float_model, x, y, x_test, y_test):
    """Global magnitude pruning of the MLP's three Linear weights, then
    fine-tuning with the masks in place. Returns the pruned model and the
    test accuracy right after pruning (before fine-tuning)."""
    model = MLP()
    model.load_state_dict(float_model.state_dict())
    linears = [(mod, "weight") for mod in model.net if isinstance(mod, nn.Linear)]
    prune.global_unstructured(linears, pruning_method=prune.L1Unstructured,
                              amount=PRUNE_AMOUNT)
    model.eval()
    acc_pruned = float((logits_of(model, x_test).argmax(axis=1) == y_test).mean())
    train(model, x, y, epochs=FINETUNE_EPOCHS, seed=FINETUNE_SEED)
    for mod, pname in linears:
        prune.remove(mod, pname)
    zeros = sum(int((mod.weight == 0).sum()) for mod, _ in linears)
    total = sum(mod.weight.numel() for mod, _ in linears)
    assert zeros >= PRUNE_AMOUNT * total, "only %d/%d zeros" % (zeros, total)
    return model, acc_pruned, zeros / total


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
    floats = {}
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
        floats[name] = model

    np.save(os.path.join(out_dir, "y_test.npy"), y_test.astype(np.int64))

    # Calibration inputs for moss's --quantize: the first training rows.
    x_calib = np.ascontiguousarray(x_train[:CALIB_ROWS])
    np.save(os.path.join(out_dir, "x_calib_mlp.npy"), x_calib)
    np.save(os.path.join(out_dir, "x_calib_cnn.npy"),
            np.ascontiguousarray(x_calib.reshape(-1, 1, 8, 8)))

    # Post-training quantization of the trained float models, calibrated on
    # the whole training set.
    data = {"mlp": (x_train, x_test),
            "cnn": (np.ascontiguousarray(x_train_cnn), x_test_cnn)}
    qresults, pc_skipped = make_qdq_models(out_dir, floats, data, y_test)

    # The MLP pruned to 90 % zeros and fine-tuned.
    pruned, acc_before, sparsity = prune_and_finetune(
        floats["mlp"], x_train, y_train, x_test, y_test)
    ref = logits_of(pruned, x_test)
    acc_pruned = float((ref.argmax(axis=1) == y_test).mean())
    m = export(pruned, torch.from_numpy(x_test[:1]),
               os.path.join(out_dir, "mlp_pruned90.onnx"))
    err = float(np.abs(run_onnx_numpy(m, x_test.astype(np.float64)) - ref).max())
    assert err < 1e-4, "mlp_pruned90: ONNX graph differs from torch by %g" % err
    np.save(os.path.join(out_dir, "mlp_pruned90_ref.npy"), ref)

    with open(os.path.join(out_dir, "accuracy.txt"), "w") as f:
        for name in ("mlp", "cnn"):
            f.write("%s %.6f\n" % (name, results[name][0]))
        for name in ("cnn_qdq", "mlp_qdq", "cnn_qdq_pc"):
            if name in qresults:
                f.write("%s %.6f\n" % (name, qresults[name][0]))
        f.write("mlp_pruned90 %.6f\n" % acc_pruned)

    print("torch %s, opset %d, test set N=%d" % (torch.__version__, OPSET,
                                                 len(y_test)))
    for name in ("mlp", "cnn"):
        acc, ops, err = results[name]
        print("%s: accuracy %.6f, ONNX-vs-torch max |diff| %.2e, ops %s"
              % (name, acc, err, " ".join(ops)))
    for name, (acc, ops, share) in qresults.items():
        print("%s: accuracy %.6f, ONNX (numpy) within 1 LSB of torch on %.4f, "
              "ops (without Constant) %s" % (name, acc, share, " ".join(ops)))
    if pc_skipped:
        print("cnn_qdq_pc skipped: %s" % pc_skipped)
    print("mlp_pruned90: %.4f zeros in the Linear weights, accuracy %.6f after "
          "pruning, %.6f after %d epochs of fine-tuning, ONNX-vs-torch max "
          "|diff| %.2e" % (sparsity, acc_before, acc_pruned, FINETUNE_EPOCHS, err))
    print("wrote %s" % out_dir)
    for fn in sorted(os.listdir(out_dir)):
        print("  %-24s %8d bytes" % (fn, os.path.getsize(os.path.join(out_dir, fn))))


if __name__ == "__main__":
    main()
