"""References computed with numpy for the e2e tests (and bench/winograd_error.py):
imported, not run.

conv_ref: the ONNX Conv (2-D, any stride, dilation, padding and group),
tap by tap on a zero-padded float64 copy; returns the sums and the sums of
|products| (for a rounding bound). Exact for integer inputs of int8 size.

half_layers_model, half_layers_f16, half_layers_f32: a Conv (3x3, pads 1,
Relu) and a Gemm for --float16, and what they give computed in float16
(each product and sum rounded, in a kernel's order) and in float32 between
the float16 roundings.
"""
import numpy as np


def conv_ref(x, w, bias=None, strides=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0), group=1):
    """Conv computed here tap by tap on a zero-padded float64 copy (the ONNX
    definition, 2-D): the sum and the sum of |products| for the bound."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]))
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    oh = (xp.shape[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (xp.shape[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    y = np.zeros((n, m, oh, ow))
    bd = np.zeros((n, m, oh, ow))
    mg = m // group
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                win = xp[:, g * cg:(g + 1) * cg, i * dil[0]:i * dil[0] + (oh - 1) * strides[0] + 1:strides[0],
                         j * dil[1]:j * dil[1] + (ow - 1) * strides[1] + 1:strides[1]]
                wt = w[g * mg:(g + 1) * mg, :, i, j].astype(np.float64)
                y[:, g * mg:(g + 1) * mg] += np.einsum("mc,nchw->nmhw", wt, win)
                bd[:, g * mg:(g + 1) * mg] += np.einsum("mc,nchw->nmhw", np.abs(wt), np.abs(win))
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
        bd = bd + np.abs(bias.reshape(1, -1, 1, 1)) / (2 * cg * kh * kw)
    return y, bd


def half_layers_model(path, seed, cin, size, cout, nfc):
    """Saves at |path| a model x[1,cin,size,size] -> Conv 'conv' (3x3, pads
    1, cout channels, bias) -> Relu -> Flatten -> Gemm 'fc' (transB, bias)
    -> y[1,nfc], with random weights from |seed|; returns x (float32) and
    x, w, b, w2, b2 rounded to float16."""
    import onnx
    from onnx import TensorProto as TP, helper as H, numpy_helper as NH
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, cin, size, size)).astype(np.float32)
    w = (rng.standard_normal((cout, cin, 3, 3)) * 0.5).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((nfc, cout * size * size)) * 0.2).astype(np.float32)
    b2 = (rng.standard_normal(nfc) * 0.1).astype(np.float32)
    nodes = [H.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             H.make_node("Relu", ["c"], ["r"]), H.make_node("Flatten", ["r"], ["f"]),
             H.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc")]
    g = H.make_graph(nodes, "half_layers", [H.make_tensor_value_info("x", TP.FLOAT, [1, cin, size, size])],
                     [H.make_tensor_value_info("y", TP.FLOAT, [1, nfc])],
                     [NH.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (w2, "w2"), (b2, "b2"))])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return x, tuple(a.astype(np.float16) for a in (x, w, b, w2, b2))


def half_layers_f16(p16, row_sums):
    """half_layers_model's y in float16, each product and sum rounded: the
    Conv from its bias, input channel by channel, row by row of the window,
    the taps outside the image skipped; with |row_sums| (the CPU's direct
    loops) a row whose three taps are inside the image summed first and
    then added, else (and at the border) tap by tap; the Gemm from 0 along
    k, then its bias."""
    h = np.float16
    x16, w16, b16, w216, b216 = p16
    cout, cin, size = w16.shape[0], w16.shape[1], x16.shape[2]
    c = np.zeros((cout, size, size), h)
    for m in range(cout):
        for oy in range(size):
            for ox in range(size):
                acc = b16[m]
                for ci in range(cin):
                    for ky in range(3):
                        iy = oy + ky - 1
                        if not 0 <= iy < size:
                            continue
                        t = [h(x16[0, ci, iy, ox + kx - 1] * w16[m, ci, ky, kx]) for kx in range(3)
                             if 0 <= ox + kx - 1 < size]
                        if row_sums and len(t) == 3:
                            acc = h(acc + h(h(t[0] + t[1]) + t[2]))
                        else:
                            for v in t:
                                acc = h(acc + v)
                c[m, oy, ox] = max(acc, h(0))
    f = c.reshape(-1)
    y = np.zeros(len(b216), h)
    for j in range(len(b216)):
        acc = h(0)
        for k in range(len(f)):
            acc = h(acc + h(f[k] * w216[j, k]))
        y[j] = h(acc + b216[j])
    return y.astype(np.float32).reshape(1, -1)


def half_layers_f32(p16):
    """half_layers_model's y with float16 inputs and weights, each layer
    summed exactly (float64 here, for float32) and its result rounded to
    float16."""
    x16, w16, b16, w216, b216 = (a.astype(np.float64) for a in p16)
    c, _ = conv_ref(x16, w16, b16, pads=(1, 1, 1, 1))
    c = np.maximum(c, 0).astype(np.float16).astype(np.float64)
    return (c.reshape(1, -1) @ w216.T + b216).astype(np.float16).astype(np.float32)
