"""References computed with numpy for the e2e tests (and bench/winograd_error.py):
imported, not run.

conv_ref: the ONNX Conv (2-D, any stride, dilation, padding and group),
tap by tap on a zero-padded float64 copy; returns the sums and the sums of
|products| (for a rounding bound). Exact for integer inputs of int8 size.
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
