#!/usr/bin/python3
"""Makes the recurrent models of tests/e2e/rnn and their reference outputs
from torch (Debian's python3-torch; run with /usr/bin/python3):

  /usr/bin/python3 scripts/make_rnn_models.py tests/e2e/rnn

Two kinds, each CASE.onnx beside CASE.in<k>.npy (inputs, in the graph's
order) and CASE.out<k>.npy (torch's outputs, in the graph's order), and
CASE.shapes (the --input-shape arguments for the symbolic axes):

- exported by torch.onnx.export from torch.nn.LSTM, GRU and RNN modules,
  as users export them (time and batch axes dynamic; several layers,
  bidirectional, batch_first, initial states given);
- written here with onnx.helper from a torch module's weights (gate order
  and bias layout converted to ONNX's), for what torch cannot export:
  sequence_lens as a graph input (a batch of sequences of different
  lengths), layout 1, a reverse-only direction. Their references are torch's
  outputs on packed sequences (pack_padded_sequence), which stop each
  sequence at its own length: Y is zero past it and Y_h holds its last
  step, as ONNX defines.
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

OPSET = 14
torch.manual_seed(16)
np.random.seed(16)


def save(out, name, model, inputs, outputs, shapes):
    onnx.save(model, os.path.join(out, name + ".onnx"))
    for k, a in enumerate(inputs):
        np.save(os.path.join(out, "%s.in%d.npy" % (name, k)), a)
    for k, a in enumerate(outputs):
        np.save(os.path.join(out, "%s.out%d.npy" % (name, k)), a.astype(np.float32))
    with open(os.path.join(out, name + ".shapes"), "w") as f:
        f.write(" ".join(shapes) + "\n")


def exported(out, name, mod, inputs, in_names, out_names, axes):
    mod.eval()
    with torch.no_grad():
        ref = mod(*inputs)
    flat = []
    for r in ref:
        flat += list(r) if isinstance(r, tuple) else [r]
    path = os.path.join(out, name + ".onnx")
    torch.onnx.export(mod, tuple(inputs), path, input_names=in_names, output_names=out_names,
                      dynamic_axes=axes, opset_version=OPSET)
    model = onnx.load(path)
    shapes = ["%s=%s" % (n, "x".join(str(d) for d in t.shape)) for n, t in zip(in_names, inputs)]
    save(out, name, model, [t.numpy() for t in inputs], [t.numpy() for t in flat], shapes)


class Wrap(torch.nn.Module):
    """An LSTM/GRU/RNN called with its initial state, all outputs returned."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, *state):
        if isinstance(self.rnn, torch.nn.LSTM):
            y, (h, c) = self.rnn(x, (state[0], state[1]))
            return y, h, c
        y, h = self.rnn(x, state[0])
        return y, h


class Crnn(torch.nn.Module):
    """A text recognizer's shape: a conv front end over a strip of image,
    columns as time steps, a bidirectional LSTM, a linear layer per step."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d((4, 1))
        self.lstm = torch.nn.LSTM(8 * 2, 12, bidirectional=True)
        self.fc = torch.nn.Linear(24, 10)

    def forward(self, img):  # [B, 1, 8, W]
        f = self.pool(torch.relu(self.conv(img)))  # [B, 8, 2, W]
        b, c, h, w = f.shape
        seq = f.permute(3, 0, 1, 2).reshape(w, b, c * h)  # [W, B, 16]
        y, _ = self.lstm(seq)
        return self.fc(y).log_softmax(-1)


# torch's gate blocks, in ONNX's order: LSTM i f g o -> i o f c; GRU r z n -> z r h
ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def onnx_weights(mod, kind, dirs):
    """W, R, B of ONNX from a one-layer torch module's parameters."""
    G = len(ORDER[kind])
    Hs = mod.hidden_size
    W, R, B = [], [], []
    for d in range(dirs):
        sfx = "_l0" + ("_reverse" if d else "")
        w = getattr(mod, "weight_ih" + sfx).detach().numpy()
        r = getattr(mod, "weight_hh" + sfx).detach().numpy()
        bi = getattr(mod, "bias_ih" + sfx).detach().numpy()
        bh = getattr(mod, "bias_hh" + sfx).detach().numpy()
        blk = lambda a: np.concatenate([a[g * Hs:(g + 1) * Hs] for g in ORDER[kind]])  # noqa: E731
        W.append(blk(w))
        R.append(blk(r))
        B.append(np.concatenate([blk(bi), blk(bh)]))
    assert W[0].shape[0] == G * Hs
    return np.stack(W), np.stack(R), np.stack(B)


def by_hand(out, name, kind, mod, T, Bn, lens, layout, lens_input, want_c, reverse_only=False):
    """An ONNX node of |kind| with |mod|'s weights, sequence_lens |lens| (a
    graph input when |lens_input|, else an initializer), initial states as
    inputs; reference: |mod| on the packed sequences. |reverse_only|: |mod|
    is bidirectional and the model is its backward half alone."""
    bidir = mod.bidirectional and not reverse_only
    D = 2 if bidir else 1
    Hs, I = mod.hidden_size, mod.input_size
    W, R, B = onnx_weights(mod, kind, 2 if mod.bidirectional else 1)
    if reverse_only:
        W, R, B = W[1:], R[1:], B[1:]
    x = np.random.uniform(-1, 1, (T, Bn, I)).astype(np.float32)
    h0 = np.random.uniform(-0.5, 0.5, (2 if mod.bidirectional else 1, Bn, Hs)).astype(np.float32)
    c0 = np.random.uniform(-0.5, 0.5, h0.shape).astype(np.float32)
    with torch.no_grad():
        packed = pack_padded_sequence(torch.from_numpy(x), torch.tensor(lens), enforce_sorted=False)
        state = (torch.from_numpy(h0), torch.from_numpy(c0)) if kind == "LSTM" else torch.from_numpy(h0)
        y, st = mod(packed, state)
        y, _ = pad_packed_sequence(y, total_length=T)
    y = y.numpy().reshape(T, Bn, 2 if mod.bidirectional else 1, Hs).transpose(0, 2, 1, 3)  # [T, D, B, H]
    hn = (st[0] if kind == "LSTM" else st).numpy()
    cn = st[1].numpy() if kind == "LSTM" else None
    if reverse_only:
        y, hn, h0, c0 = y[:, 1:], hn[1:], h0[1:], c0[1:]
        cn = cn[1:] if cn is not None else None
    # the model's own tensors, in its layout
    xm, h0m, c0m = x, h0, c0
    ym, hnm, cnm = y, hn, cn
    if layout:
        xm = x.transpose(1, 0, 2)
        h0m, c0m = h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
        ym = y.transpose(2, 0, 1, 3)
        hnm = hn.transpose(1, 0, 2)
        cnm = cn.transpose(1, 0, 2) if cn is not None else None
    lens_a = np.array(lens, np.int32)
    ins = [("X", xm), ("sequence_lens", lens_a), ("initial_h", h0m)]
    if kind == "LSTM":
        ins.append(("initial_c", c0m))
    inits = [NH.from_array(W, "W"), NH.from_array(R, "R"), NH.from_array(B, "B")]
    if not lens_input:
        inits.append(NH.from_array(lens_a, "sequence_lens"))
        ins = [p for p in ins if p[0] != "sequence_lens"]
    node_in = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c"] if kind == "LSTM" else [])
    outs = [("Y", ym), ("Y_h", hnm)] + ([("Y_c", cnm)] if want_c else [])
    attrs = dict(hidden_size=Hs, direction="bidirectional" if bidir else "reverse" if reverse_only else "forward")
    if layout:
        attrs["layout"] = 1
    if kind == "GRU":
        attrs["linear_before_reset"] = 1  # torch's GRU
    if kind == "RNN":
        attrs["activations"] = ["Relu" if mod.nonlinearity == "relu" else "Tanh"] * D
    node = H.make_node(kind, node_in, [o for o, _ in outs], name=kind.lower() + "0", **attrs)
    vi = lambda n, a: H.make_tensor_value_info(n, TP.INT32 if a.dtype == np.int32 else TP.FLOAT, a.shape)  # noqa
    g = H.make_graph([node], name, [vi(n, a) for n, a in ins], [vi(n, a) for n, a in outs], inits)
    model = H.make_model(g, opset_imports=[H.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    save(out, name, model, [a for _, a in ins], [a for _, a in outs], [])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    T, Bn = 7, 3
    r = lambda *s: torch.rand(*s) * 2 - 1  # noqa: E731
    # exported: 2-layer LSTM, time first, states given
    m = Wrap(torch.nn.LSTM(10, 16, num_layers=2))
    exported(out, "lstm_2layer", m, [r(T, Bn, 10), r(2, Bn, 16), r(2, Bn, 16)], ["x", "h0", "c0"],
             ["y", "hn", "cn"], {"x": {0: "time", 1: "batch"}, "h0": {1: "batch"}, "c0": {1: "batch"}})
    # exported: bidirectional LSTM, batch first
    m = Wrap(torch.nn.LSTM(10, 12, bidirectional=True, batch_first=True))
    exported(out, "lstm_bidir_batch_first", m, [r(Bn, 9, 10), r(2, Bn, 12), r(2, Bn, 12)], ["x", "h0", "c0"],
             ["y", "hn", "cn"], {"x": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "c0": {1: "batch"}})
    # exported: 2-layer bidirectional GRU, time first
    m = Wrap(torch.nn.GRU(6, 8, num_layers=2, bidirectional=True))
    exported(out, "gru_2layer_bidir", m, [r(T, Bn, 6), r(4, Bn, 8)], ["x", "h0"], ["y", "hn"],
             {"x": {0: "time", 1: "batch"}, "h0": {1: "batch"}})
    # exported: GRU, batch first
    m = Wrap(torch.nn.GRU(5, 11, batch_first=True))
    exported(out, "gru_batch_first", m, [r(2, 12, 5), r(1, 2, 11)], ["x", "h0"], ["y", "hn"],
             {"x": {0: "batch", 1: "time"}, "h0": {1: "batch"}})
    # exported: bidirectional ReLU RNN
    m = Wrap(torch.nn.RNN(4, 6, nonlinearity="relu", bidirectional=True))
    exported(out, "rnn_relu_bidir", m, [r(T, Bn, 4), r(2, Bn, 6)], ["x", "h0"], ["y", "hn"],
             {"x": {0: "time", 1: "batch"}, "h0": {1: "batch"}})
    # exported: a CRNN text recognizer (conv, bidirectional LSTM, linear per column)
    m = Crnn()
    m.eval()
    img = torch.rand(2, 1, 8, 20)
    with torch.no_grad():
        ref = m(img)
    path = os.path.join(out, "crnn.onnx")
    torch.onnx.export(m, (img,), path, input_names=["img"], output_names=["logp"],
                      dynamic_axes={"img": {0: "batch", 3: "width"}}, opset_version=OPSET)
    save(out, "crnn", onnx.load(path), [img.numpy()], [ref.numpy()], ["img=2x1x8x20"])
    # by hand: sequence_lens as an input, bidirectional LSTM, layout 0
    by_hand(out, "lstm_lens_bidir", "LSTM", torch.nn.LSTM(5, 6, bidirectional=True), T, 4, [7, 3, 1, 5],
            layout=0, lens_input=True, want_c=True)
    # by hand: sequence_lens as an input, bidirectional GRU, layout 1
    by_hand(out, "gru_lens_layout1", "GRU", torch.nn.GRU(5, 6, bidirectional=True), T, 3, [2, 7, 4],
            layout=1, lens_input=True, want_c=False)
    # by hand: constant sequence_lens, a reverse-only tanh RNN
    by_hand(out, "rnn_reverse_const_lens", "RNN", torch.nn.RNN(3, 5, bidirectional=True), T, 3, [6, 7, 2],
            layout=0, lens_input=False, want_c=False, reverse_only=True)
    # by hand: LSTM, layout 1, sequence_lens an input, forward
    by_hand(out, "lstm_lens_layout1", "LSTM", torch.nn.LSTM(4, 5), T, 2, [4, 7], layout=1, lens_input=True,
            want_c=True)


if __name__ == "__main__":
    main()
