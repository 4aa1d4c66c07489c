#!/usr/bin/python3
"""Energy of a bundle's runs on an NVIDIA GPU, read from NVML (the driver's
libnvidia-ml.so.1 through ctypes): the board's energy counter
(nvmlDeviceGetTotalEnergyConsumption, millijoules since the driver loaded)
before and after bench/gpu_run times ITERATIONS runs, and the same counter
over as long a sleep, for the board's idle draw. Prints the energy per run,
in all and above idle, beside the compile-time estimate the bundle's report
holds when one is given. Needs a GPU: run it where one is (the device tool).

  gpu_energy.py GPU_RUN BUNDLE ITERATIONS IN0.bin [IN1.bin ...]

ITERATIONS "auto": as many as take about 5 seconds (the counter moves in
steps of milliseconds of a board drawing tens of watts).
"""
import ctypes
import subprocess
import sys
import tempfile
import time


def nvml():
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    if lib.nvmlInit_v2() != 0:
        raise SystemExit("gpu_energy: nvmlInit failed")
    dev = ctypes.c_void_p()
    if lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev)) != 0:
        raise SystemExit("gpu_energy: no NVML device 0")
    return lib, dev


def energy_mj(lib, dev):
    e = ctypes.c_ulonglong()
    if lib.nvmlDeviceGetTotalEnergyConsumption(dev, ctypes.byref(e)) != 0:
        raise SystemExit("gpu_energy: the board has no energy counter")
    return e.value


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    runner, bundle, iters, ins = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    lib, dev = nvml()
    out = tempfile.mkdtemp(prefix="moss-energy-")
    w = subprocess.run([runner, bundle, out, "20"] + ins, check=True, capture_output=True, text=True)  # warm
    if iters == "auto":
        med = float([l.split()[1] for l in w.stdout.splitlines() if l.startswith("median_us")][0])
        iters = max(100, int(5e6 / max(med, 1.0)))
    iters = int(iters)
    e0, t0 = energy_mj(lib, dev), time.monotonic()
    p = subprocess.run([runner, bundle, out, str(iters)] + ins, check=True, capture_output=True, text=True)
    e1, t1 = energy_mj(lib, dev), time.monotonic()
    time.sleep(t1 - t0)
    e2, t2 = energy_mj(lib, dev), time.monotonic()
    busy, idle_w = (e1 - e0) / 1e3, (e2 - e1) / 1e3 / (t2 - t1)
    med = [l.split()[1] for l in p.stdout.splitlines() if l.startswith("median_us")]
    print("%s: %d runs in %.2f s (median %s us), board %.3f J: %.3f mJ per run; idle %.1f W, above idle "
          "%.3f mJ per run" % (bundle, iters, t1 - t0, med[0] if med else "?", busy, busy * 1e3 / iters, idle_w,
                               (busy - idle_w * (t1 - t0)) * 1e3 / iters))


if __name__ == "__main__":
    main()
