#!/usr/bin/python3
"""Makes examples/vad/vad.onnx: a small voice-activity detector shaped like
the ones products ship (a convolution front end over raw audio, an LSTM
whose state the caller carries from chunk to chunk, an If on the sample
rate), trained here on speech synthesized by espeak-ng over noise, and
exported by torch with dynamic axes. Run with Debian's /usr/bin/python3
(python3-torch, python3-numpy; espeak-ng):

  /usr/bin/python3 scripts/make_vad_model.py examples/vad

(about 4 minutes on 2 cores; with MOSS_VAD_CHECKPOINT=FILE the weights are
kept in FILE, and a later run with it exports them without training.)

The model: inputs `input` [batch, samples] (a chunk of audio in [-1, 1]:
512 samples at 16 kHz, 256 at 8 kHz), `state` [2, batch, 32] (the LSTM's
h and c) and `sr` (the sample rate, an int64 scalar); outputs `prob`
[batch, 1] (the chance that the chunk is speech) and `stateN` (the state
for the next chunk). The sample-rate check is an If: a 16 kHz front end
(a 64-tap, stride-32 convolution) or an 8 kHz one (32 taps, stride 16), so
both see 4 ms hops. Compiled with `--constant sr=...` the condition is
known and moss keeps one branch.

Training data: sentences spoken by espeak-ng in several voices, speeds and
pitches, resampled to 16 kHz (and 8 kHz for the other branch), placed
between stretches of noise and silence; a chunk is labelled speech when
the clean speech in it is louder than -35 dBFS (RMS). It also writes
examples/vad/train.txt: the frame accuracy on held-out sentences.
"""
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np
import torch

SENTENCES = [
    "the quick brown fox jumps over the lazy dog", "please call me back when you get this message",
    "turn on the lights in the kitchen", "what is the weather like tomorrow morning",
    "set a timer for ten minutes", "I would like a cup of coffee with milk",
    "the meeting starts at half past nine", "open the window it is warm in here",
    "she sells sea shells by the sea shore", "how many kilometers is it to the station",
    "remind me to buy bread and eggs", "play some quiet music in the living room",
    "the train to the airport leaves every twenty minutes", "can you read this page aloud",
    "my phone number ends with four five six", "the children are playing in the garden",
    "stop the recording now", "send the report to the whole team before noon",
    "a small energy efficient chip listens all day", "wake up the speaker and ask a question",
]
HELD_OUT = ["good evening how was your day", "the battery is almost empty please charge it",
            "seven eight nine ten", "close the door behind you"]
VOICES = [("en", 150, 50), ("en-us", 175, 40), ("en+f3", 160, 60), ("en+m3", 130, 35), ("en-gb", 190, 55),
          ("en+f2", 140, 70)]
RATE = 16000
CHUNK = {16000: 512, 8000: 256}


def speak(text, voice, speed, pitch, work):
    path = os.path.join(work, "s.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, text], check=True)
    with wave.open(path) as w:
        sr = w.getframerate()
        a = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    return resample(a, sr, RATE)


def resample(a, sr, to):
    n = int(round(len(a) * to / sr))
    return np.interp(np.arange(n) * sr / to, np.arange(len(a)), a).astype(np.float32)


def scene(rng, utterances):
    """Noise and silence around 1-3 utterances: (audio, clean speech) at 16 kHz."""
    parts, clean = [], []
    for k in range(rng.integers(1, 4)):
        gap = np.zeros(int(rng.uniform(0.2, 1.2) * RATE), np.float32)
        u = utterances[rng.integers(len(utterances))] * rng.uniform(0.3, 1.0)
        parts += [gap, u]
        clean += [gap, u]
    tail = np.zeros(int(rng.uniform(0.2, 1.0) * RATE), np.float32)
    parts.append(tail)
    clean.append(tail)
    s = np.concatenate(parts)
    c = np.concatenate(clean)
    noise = rng.normal(0, 1, len(s)).astype(np.float32)
    if rng.random() < 0.5:  # brown-ish noise (hum, wind) as well as white
        noise = np.cumsum(noise) / 50.0
        noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    noise *= 10 ** rng.uniform(-3.5, -2.0) / (np.std(noise) + 1e-9)
    return np.clip(s + noise, -1, 1), c


def labels(clean, chunk):
    n = len(clean) // chunk
    c = clean[:n * chunk].reshape(n, chunk)
    return (np.sqrt((c ** 2).mean(1)) > 10 ** (-35 / 20)).astype(np.float32)


class Front(torch.nn.Module):
    """The sample-rate check, scripted so that it exports as an If."""

    def __init__(self):
        super().__init__()
        self.c16 = torch.nn.Conv1d(1, 16, 64, stride=32)
        self.c8 = torch.nn.Conv1d(1, 16, 32, stride=16)

    def forward(self, x, sr):
        if bool(sr == 16000):
            f = self.c16(x.unsqueeze(1))
        else:
            f = self.c8(x.unsqueeze(1))
        return torch.log1p(torch.relu(f)).mean(-1)


class Vad(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.front = torch.jit.script(Front())
        self.lstm = torch.nn.LSTM(16, 32)
        self.out = torch.nn.Linear(32, 1)

    def forward(self, x, state, sr):
        f = self.front(x, sr)
        y, (h, c) = self.lstm(f.unsqueeze(0), (state[0:1], state[1:2]))
        return torch.sigmoid(self.out(y[0])), torch.cat([h, c], 0)

    def sequence(self, chunks, sr):
        """Logits for [batch, n, chunk] audio, the state carried through."""
        b, n, k = chunks.shape
        f = self.front(chunks.reshape(b * n, k), sr).reshape(b, n, 16).transpose(0, 1)
        y, _ = self.lstm(f)
        return self.out(y).squeeze(-1).transpose(0, 1)


def batch(rng, utt, sr, size, secs=5.0):
    k = CHUNK[sr]
    n = int(secs * RATE) // CHUNK[16000]
    xs, ys = [], []
    for _ in range(size):
        s, c = scene(rng, utt)
        if sr != RATE:
            s, c = resample(s, RATE, sr), resample(c, RATE, sr)
        s = np.pad(s, (0, max(0, n * k - len(s))))[:n * k]
        c = np.pad(c, (0, max(0, n * k - len(c))))[:n * k]
        xs.append(s.reshape(n, k))
        ys.append(labels(c, k))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as work:
        utt = [speak(t, *VOICES[i % len(VOICES)], work) for i, t in enumerate(SENTENCES)]
        held = [speak(t, *VOICES[(i + 3) % len(VOICES)], work) for i, t in enumerate(HELD_OUT)]
    m = Vad()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    lossf = torch.nn.BCEWithLogitsLoss()
    ckpt = os.environ.get("MOSS_VAD_CHECKPOINT")  # a file: the weights kept from a run before, no training
    if ckpt and os.path.exists(ckpt):
        m.load_state_dict(torch.load(ckpt))
    for it in range(0 if ckpt and os.path.exists(ckpt) else 400):
        sr = 16000 if it % 4 else 8000
        x, y = batch(rng, utt, sr, 16)
        loss = lossf(m.sequence(x, torch.tensor(sr)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 50 == 0:
            print("iteration %d loss %.4f" % (it, float(loss)))
    if ckpt:
        torch.save(m.state_dict(), ckpt)
    m.eval()
    lines = []
    with torch.no_grad():
        for sr in (16000, 8000):
            x, y = batch(np.random.default_rng(1), held, sr, 32)
            acc = float(((m.sequence(x, torch.tensor(sr)) > 0).float() == y).float().mean())
            lines.append("held-out frame accuracy at %d Hz: %.4f" % (sr, acc))
            print(lines[-1])
    with open(os.path.join(out, "train.txt"), "w") as f:
        f.write("scripts/make_vad_model.py, torch %s, 400 iterations of 16 scenes of 5 s\n" % torch.__version__)
        f.write("\n".join(lines) + "\n")
    with torch.no_grad():
        # a reference for moss: a held-out scene at 16 kHz, chunk by chunk
        # through forward() with the state carried, as a caller runs it
        x, _ = batch(np.random.default_rng(2), held, 16000, 1, secs=2.0)
        state = torch.zeros(2, 1, 32)
        probs = []
        for k in range(x.shape[1]):
            p, state = m(x[:, k], state, torch.tensor(16000))
            probs.append(p.numpy())
        np.save(os.path.join(out, "ref_input.npy"), x[0].numpy()[:, None, :])  # [chunks, 1, 512]
        np.save(os.path.join(out, "ref_prob.npy"), np.stack(probs))  # [chunks, 1, 1]
        np.save(os.path.join(out, "ref_state.npy"), state.numpy())  # after the last chunk
    x = torch.zeros(1, 512)
    state = torch.zeros(2, 1, 32)
    sr = torch.tensor(16000)
    # scripted whole, as torch exports control flow (a trace would only see one branch)
    torch.onnx.export(torch.jit.script(m), (x, state, sr), os.path.join(out, "vad.onnx"), input_names=["input", "state", "sr"],
                      output_names=["prob", "stateN"], opset_version=16,
                      dynamic_axes={"input": {0: "batch", 1: "samples"}, "state": {1: "batch"},
                                    "prob": {0: "batch"}, "stateN": {1: "batch"}})


if __name__ == "__main__":
    main()
