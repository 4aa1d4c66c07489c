"""What the GPU backends' end-to-end tests share (test_vulkan.py): the
digits models compiled for a target and run through `moss run`, checked
against torch's logits (float models: DESIGN.md's float tolerance and
torch's accuracy) and against the CPU backends' bits (int8 models: the same
bits as host and c99, DESIGN.md "Numerics", and torch's integers within one
step)."""
import os
import subprocess

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DIG = os.path.join(HERE, "digits")
FLOAT_MODELS = ("mlp", "cnn", "mlp_pruned90")
INT8_MODELS = ("mlp_qdq", "cnn_qdq", "cnn_qdq_pc")


class Digits:
    def __init__(self, moss, work, env, fail, name):
        self.moss, self.work, self.env, self.fail, self.name = moss, work, env, fail, name
        self.y_test = np.load(os.path.join(DIG, "y_test.npy"))
        self.acc_torch = dict(l.split() for l in open(os.path.join(DIG, "accuracy.txt")) if l.strip())
        self.xs = {k: np.load(os.path.join(DIG, "x_test_%s.npy" % k)) for k in ("mlp", "cnn")}

    def x_of(self, model):
        return self.xs[model.split("_")[0]]

    def compile(self, model, target, x, tag, extra=()):
        art = os.path.join(self.work, tag + ".moss")
        shape = "input=" + "x".join(str(d) for d in x.shape)
        subprocess.run([self.moss, "compile", os.path.join(DIG, model + ".onnx"), "--input-shape", shape,
                        "--target", target, "-o", art, "-q"] + list(extra), check=True, env=self.env)
        return art

    def run(self, art, x, tag, env=None, ok=True):
        xp = os.path.join(self.work, tag + "_x.npy")
        np.save(xp, x)
        out = os.path.join(self.work, tag + "_out")
        p = subprocess.run([self.moss, "run", art, xp, "-o", out], capture_output=True, text=True,
                           env=env or self.env)
        if not ok:
            return p
        if p.returncode != 0:
            self.fail("%s: moss run failed: %s" % (tag, p.stderr.strip()[:400]))
            return None
        return np.load(os.path.join(out, "output_0.npy"))

    def compile_run(self, model, target, x, tag, env=None, ok=True):
        return self.run(self.compile(model, target, x, tag), x, tag, env=env, ok=ok)

    def check_float(self, target):
        """The float models on |target| against torch's logits and accuracy."""
        for m in FLOAT_MODELS:
            y = self.compile_run(m, target, self.x_of(m), m)
            if y is None:
                continue
            ref = np.load(os.path.join(DIG, m + "_ref.npy"))
            err = np.abs(y.astype(np.float64) - ref)
            if not np.all(err <= 1e-5 + 1e-4 * np.abs(ref)):
                self.fail("%s: logits differ from torch's by up to %g" % (m, err.max()))
            acc = float(np.mean(np.argmax(y, axis=1) == self.y_test))
            if m in self.acc_torch and abs(acc - float(self.acc_torch[m])) > 1e-6:
                self.fail("%s: accuracy %.6f, torch %.6f" % (m, acc, float(self.acc_torch[m])))
            print("%s on %s: max |moss - torch| %.3g, accuracy %.6f" % (m, self.name, err.max(), acc))

    def check_int8(self, target):
        """The int8 QDQ models on |target|: the CPU backends' bits, torch's
        integers within one step."""
        for m in INT8_MODELS:
            x = self.x_of(m)
            y = self.compile_run(m, target, x, m)
            if y is None:
                continue
            same = True
            for cpu in ("host", "c99"):
                yc = self.compile_run(m, cpu, x, m + "_" + cpu)
                if yc is None or y.tobytes() != yc.tobytes():
                    same = False
                    self.fail("%s: %s and %s differ" % (m, self.name, cpu))
            scale, zp = [float(l.split()[1]) for l in open(os.path.join(DIG, m + "_qparams.txt"))]
            q = np.round(y / scale + zp)
            dq = np.abs(q - np.load(os.path.join(DIG, m + "_ref_q.npy")).astype(np.float64))
            if dq.max() > 1:
                self.fail("%s: %d logits more than one integer step from torch's" % (m, int((dq > 1).sum())))
            print("%s on %s: %s bits as host and c99; max %d steps from torch"
                  % (m, self.name, "the same" if same else "NOT the same", int(dq.max())))
