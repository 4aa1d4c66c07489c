#!/usr/bin/python3
"""The streaming voice-activity example, end to end (run by ctest as
example_vad; examples/vad/README.md):

1. compiles examples/vad/vad.onnx for this machine with the sample rate
   frozen (--constant sr=16000: the model's If keeps its 16 kHz branch)
   and a 512-sample chunk (--input-shape input=1x512, state=2x1x32);
2. runs `moss run --stream --state state=stateN` over the chunks of
   ref_input.npy (a held-out scene the training script cut) and compares
   each chunk's probability, and the state after the last, with torch's
   (ref_prob.npy, ref_state.npy: the model stepped chunk by chunk in
   torch, the state carried), within DESIGN.md's float tolerance;
3. speaks two sentences with espeak-ng, puts them in 22.05 kHz audio at
   known places between stretches of quiet noise, writes a WAV file, and
   runs the example program (vad.c, built against libmossrt) on it: it
   must report speech over each sentence (80% of its voiced span covered)
   and none in the quiet more than 0.3 s away from them.

  check.py --moss build/moss --vad build/tests/vad_example
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
ap.add_argument("--vad", required=True)
A = ap.parse_args()
work = tempfile.mkdtemp(prefix="moss-vad-")
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("FAIL %s: exit %d\n%s" % (" ".join(cmd), p.returncode, p.stderr[-1500:]))
    return p.stdout


# 1. Compile, the sample rate frozen.
np.save(os.path.join(work, "sr.npy"), np.array(16000, np.int64))
bundle = os.path.join(work, "vad.moss")
run([A.moss, "compile", os.path.join(HERE, "vad.onnx"), "--constant", "sr=%s/sr.npy" % work,
     "--input-shape", "input=1x512", "--input-shape", "state=2x1x32", "-o", bundle])
ir = subprocess.run([A.moss, "compile", os.path.join(HERE, "vad.onnx"), "--constant", "sr=%s/sr.npy" % work,
                     "--input-shape", "input=1x512", "--input-shape", "state=2x1x32", "--emit", "c",
                     "-o", os.path.join(work, "c"), "--dump-ir"], capture_output=True, text=True).stdout
if " If(" in ir or "else_branch" in ir or "then_branch" not in ir:
    fail("the compiled model should hold the 16 kHz branch only")

# 2. Streamed against torch.
x = np.load(os.path.join(HERE, "ref_input.npy"))
ref = np.load(os.path.join(HERE, "ref_prob.npy"))
ref_state = np.load(os.path.join(HERE, "ref_state.npy"))
np.save(os.path.join(work, "chunks.npy"), x)
run([A.moss, "run", bundle, "--stream", "--state", "state=stateN", "--input", "input=%s/chunks.npy" % work,
     "-o", os.path.join(work, "out")])
prob = np.load(os.path.join(work, "out", "output_0.npy"))
states = np.load(os.path.join(work, "out", "output_1.npy"))
if prob.shape != ref.shape:
    fail("streamed probabilities have shape %s, torch's %s" % (prob.shape, ref.shape))
else:
    err = float(np.max(np.abs(prob - ref)))
    if np.any(np.abs(prob - ref) > 1e-5 + 1e-4 * np.abs(ref)) or np.any(
            np.abs(states[-1] - ref_state) > 1e-5 + 1e-4 * np.abs(ref_state)):
        fail("streamed outputs differ from torch's by up to %.3g" % err)
    print("moss run --stream: %d chunks, max |moss - torch| %.2g, %d chunks of speech (torch %d)"
          % (len(ref), err, int((prob > 0.5).sum()), int((ref > 0.5).sum())))

# 3. Speech from espeak-ng, between stretches of quiet noise, through the C example.
RATE = 22050


def speak(text, voice):
    path = os.path.join(work, "s.wav")
    run(["espeak-ng", "-v", voice, "-s", "160", "-w", path, text])
    with wave.open(path) as w:
        assert w.getframerate() == RATE
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0


def voiced(a):
    """The first and last sample of |a| above -35 dBFS over 10 ms windows."""
    k = RATE // 100
    e = np.sqrt(np.convolve(a ** 2, np.ones(k) / k, mode="same"))
    on = np.nonzero(e > 10 ** (-35 / 20))[0]
    return int(on[0]), int(on[-1])


parts, spans, t = [], [], 0
for gap, (text, voice) in zip((1.0, 1.5), (("good morning, the meeting is about to start", "en-us"),
                                            ("please turn off the lights in the hall", "en+f3"))):
    g = int(gap * RATE)
    s = speak(text, voice)
    a, b = voiced(s)
    parts += [np.zeros(g, np.float32), s]
    spans.append(((t + g + a) / RATE, (t + g + b) / RATE))
    t += g + len(s)
parts.append(np.zeros(RATE, np.float32))
audio = np.concatenate(parts)
audio += np.random.default_rng(7).normal(0, 10 ** (-55 / 20), len(audio)).astype(np.float32)
wav = os.path.join(work, "speech.wav")
with wave.open(wav, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
out = run([A.vad, bundle, wav])
print(out.strip())
found = [(float(a), float(b)) for a, b in re.findall(r"speech ([0-9.]+) s - ([0-9.]+) s", out)]
if not found:
    fail("the example found no speech")
for a, b in spans:
    covered = sum(max(0.0, min(b, y) - max(a, x)) for x, y in found)
    if covered < 0.8 * (b - a):
        fail("speech at %.2f-%.2f s: %.0f%% of it reported" % (a, b, 100 * covered / (b - a)))
    else:
        print("speech at %.2f-%.2f s (from the audio): %.0f%% reported" % (a, b, 100 * covered / (b - a)))
for x, y in found:  # nothing further than 0.3 s from the sentences (one 32 ms chunk of slack)
    near = sum(max(0.0, min(y, b + 0.3) - max(x, a - 0.3)) for a, b in spans)
    if (y - x) - near > 0.033:
        fail("speech reported at %.2f-%.2f s: %.2f s of it in the quiet" % (x, y, (y - x) - near))
print("vad example: %d failure(s)" % fails)
sys.exit(1 if fails else 0)
