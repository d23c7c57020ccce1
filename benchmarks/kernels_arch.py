"""Benchmark: analytic NNGP + NTK of a Myrtle-5-style CNN, workbench.layers vs neural-tangents 0.6.5.

Network (both libraries; Shankar et al. 2020 "Neural kernels without tangents", the Myrtle family):
Conv(3x3, SAME) relu, Conv relu, AvgPool(2x2, stride 2), Conv relu, AvgPool(2x2, stride 2), Conv relu,
GlobalAvgPool, Dense(1); w_std = sqrt(2), b_std = 0, NTK parametrization. Inputs: N random images
32 x 32 x 3 in float32; the kernel of the N images with themselves (N x N NNGP and NTK). Pooling needs
the full position-by-position covariance: 1024^2 entries per pair of images in the first layers.

Both libraries compute in blocks of ``--block`` images per side (neural-tangents: ``nt.batch`` with
``batch_size=block``, which jits its kernel function once per block shape and loops over all blocks;
workbench: ``Net.kernels(block_size=block)``, which loops over the upper triangle of blocks and, inside
a block, holds only as many pairs as its ``memory_limit`` allows). Each (library, N) runs in its own
subprocess, the two measured the same way:

* baseline: after the imports, building the network, creating the inputs on the device and one tiny
  jitted function (so XLA's one-off start is in the baseline on both sides);
* before each measured call: ``gc.collect()``, glibc ``malloc_trim(0)`` (memory freed earlier and
  kept by the allocator would hide new use), then the kernel's peak-RSS counter VmHWM is reset
  (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0);
* peak 1st = VmHWM during the first call minus the RSS before it: computation AND XLA compilation
  (the compiled programs stay resident, so this is also what the process keeps);
* peak steady = the same for a second call (compiled programs cached): the computation's own memory;
* wall = wall-clock seconds, cpu = process CPU seconds (all threads): on a shared machine the wall
  time depends on the load (printed), the CPU time much less.

Peaks are resident memory (RSS, MB) of the whole process, read from /proc/self/status; where
clear_refs cannot be written they fall back to ru_maxrss minus the baseline (an upper bound, flagged).
Agreement: each worker saves its N x N NTK; "max rel diff" is max |Theta_wb - Theta_nt| / max |Theta_nt| over
all entries (float32 in both: differences of a few 1e-5 at 8 x 8 images, N = 64).

neural-tangents runs from its venv ``benchmarks/.venvs/nt`` (see benchmarks/ntk.py for its install line;
``--nt-python`` points elsewhere). ``--json OUT`` writes the table's rows (with machine, device, image size,
block) to OUT, so a run on a quiet machine or a GPU can be compared later.
Usage: ``.venv/bin/python benchmarks/kernels_arch.py [--sizes 64 256] [--image 32] [--block 8] [--repeats 1]
[--no-nt] [--nt-max N] [--timeout S] [--json rows.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NT_PYTHON = ROOT / "benchmarks" / ".venvs" / "nt" / "bin" / "python"
W_STD, B_STD = 2**0.5, 0.0
IMAGE = (32, 32, 3)  # --image S replaces it by (S, S, 3) (quick runs on a loaded machine)


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _mark() -> tuple[float, bool]:
    """Free what the allocator holds, reset the peak-RSS counter; (current RSS in MB, reset worked)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        ok = True
    except OSError:
        ok = False
    return _status_mb("VmRSS"), ok


def _peak_since(base: float, ok: bool) -> float:
    peak = _status_mb("VmHWM") if ok else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return peak - base


def _images(n: int):
    import numpy as np

    return np.random.default_rng(1).normal(size=(n,) + IMAGE).astype(np.float32)


def _time(fn, x, repeats: int, save: str) -> dict:
    import jax
    import numpy as np

    jax.block_until_ready(x)
    jax.block_until_ready(jax.jit(lambda v: v * 2 + 1)(x[:1]))  # XLA's one-off start, on both sides
    base, ok = _mark()
    t0, c0 = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn())
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_first = _peak_since(base, ok)
    ntk = np.asarray(out[1], dtype=np.float64)
    del out
    best = best_cpu = peak_steady = float("nan")
    for _ in range(repeats):
        base, ok = _mark()
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        t, c = time.perf_counter() - t0, time.process_time() - c0
        peak_steady = max(_peak_since(base, ok), peak_steady) if peak_steady == peak_steady else _peak_since(base, ok)
        if not best <= t:
            best, best_cpu = t, c
    if save:
        np.save(save, ntk)
    return {"total": total, "total_cpu": cpu, "steady": best, "steady_cpu": best_cpu, "peak_mb": peak_first,
            "peak_steady_mb": peak_steady, "peak_method": "VmHWM reset" if ok else "ru_maxrss (upper bound)",
            "ntk00": float(ntk[0, 0]), "ntk01": float(ntk[0, 1]), "device": str(jax.devices()[0].platform)}


def worker_ours(n: int, block: int, repeats: int, save: str = "") -> dict:
    import jax

    jax.config.update("jax_enable_x64", False)
    from workbench.layers import AvgPool, Conv, Dense, GlobalAvgPool, Relu, serial

    def conv():
        return Conv(1, (3, 3), padding="SAME", w_std=W_STD, b_std=B_STD)

    net = serial(conv(), Relu(), conv(), Relu(), AvgPool((2, 2), strides=(2, 2)), conv(), Relu(),
                 AvgPool((2, 2), strides=(2, 2)), conv(), Relu(), GlobalAvgPool(), Dense(1, W_STD, B_STD))
    x = jax.numpy.asarray(_images(n))
    return _time(lambda: net.kernels(x, block_size=block), x, repeats, save)


def worker_nt(n: int, block: int, repeats: int, save: str = "") -> dict:
    import jax

    jax.config.update("jax_enable_x64", False)
    import neural_tangents as nt
    from neural_tangents import stax

    def conv():
        return stax.Conv(1, (3, 3), padding="SAME", W_std=W_STD, b_std=B_STD)

    _, _, kernel_fn = stax.serial(conv(), stax.Relu(), conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)),
                                  conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)), conv(), stax.Relu(),
                                  stax.GlobalAvgPool(), stax.Dense(1, W_STD, B_STD))
    kfn = nt.batch(kernel_fn, batch_size=block, store_on_device=False)
    x = jax.numpy.asarray(_images(n))
    return _time(lambda: tuple(kfn(x, None, ("nngp", "ntk"))), x, repeats, save)


def run_one(lib: str, n: int, block: int, repeats: int, timeout: int, save: str = "") -> dict:
    python = sys.executable if lib == "workbench" else str(NT_PYTHON)
    cmd = [python, str(Path(__file__).resolve()), "--worker", lib, str(n), str(block), str(repeats), str(IMAGE[0]),
           save]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    global IMAGE, NT_PYTHON
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--block", type=int, default=8)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=int, default=3600)
    p.add_argument("--image", type=int, default=32, help="image side (default 32, the CIFAR size)")
    p.add_argument("--no-nt", action="store_true")
    p.add_argument("--nt-max", type=int, default=None, metavar="N",
                   help="run neural-tangents only for sizes <= N (it needs ~3 CPU-minutes per 8x8 block at 32x32)")
    p.add_argument("--nt-python", type=Path, default=None, help=f"python of the neural-tangents venv ({NT_PYTHON})")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the rows as JSON to OUT")
    args = p.parse_args()
    NT_PYTHON = args.nt_python or NT_PYTHON
    have_nt = NT_PYTHON.exists() and not args.no_nt
    if not have_nt and not args.no_nt:
        print(f"neural-tangents venv not found at {NT_PYTHON}: printing the workbench column only")
    IMAGE = (args.image, args.image, 3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            row = {"n": n}
            saved = {}
            for lib in (("workbench", "nt") if have_nt else ("workbench",)):
                saved[lib] = os.path.join(tmp, f"{lib}-{n}.npy")
                if lib == "nt" and args.nt_max is not None and n > args.nt_max:
                    row[lib] = {"error": f"skipped (--nt-max {args.nt_max})"}
                    continue
                row[lib] = run_one(lib, n, args.block, args.repeats, args.timeout, saved[lib])
                print(f"  {lib:9s} N={n:5d}: {row[lib]}", file=sys.stderr, flush=True)
            row["max_rel_diff"] = _max_rel_diff(saved) if have_nt else float("nan")
            rows.append(row)

    def cell(r: dict) -> str:
        if "error" in r:
            return f"{'error: ' + r['error'][:40]:>43s}"
        return (f"{r['total']:7.1f} {r['total_cpu']:6.1f} {r['steady']:7.2f} {r['steady_cpu']:6.2f} "
                f"{r['peak_mb']:6.0f} {r['peak_steady_mb']:6.0f}")

    load = os.getloadavg()
    print(f"\nMyrtle-5 analytic NNGP+NTK, {IMAGE[0]}x{IMAGE[1]}x3 images, float32, kernel of N images with themselves, "
          f"blocks of {args.block}")
    print(f"machine: {os.cpu_count()} CPUs, device {rows[0]['workbench'].get('device', '?') if rows else '?'}, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min) at the end of the run")
    print("1st = first call (XLA compile + all blocks), steady = a further call; wall / cpu seconds; peak = max RSS "
          "above the RSS before the call (MB; see the docstring)")
    sub = "1st wall  cpu  steady   cpu  pk1st pkstdy"
    head = f"{'N':>5s} | {'workbench: ' + sub:>43s}"
    if have_nt:
        head += f" | {'neural-tangents: ' + sub:>43s} | {'speedup':>7s} | {'mem ratio':>9s} | {'max rel diff':>12s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['n']:5d} | {cell(r['workbench'])}"
        if have_nt:
            ok = "total" in r["nt"] and "total" in r["workbench"]
            key = "steady_cpu" if ok and r["nt"]["steady"] == r["nt"]["steady"] else "total_cpu"
            r["speedup"] = r["nt"][key] / r["workbench"][key] if ok else float("nan")
            r["memory_ratio"] = r["workbench"]["peak_mb"] / r["nt"]["peak_mb"] if ok else float("nan")
            sp = f"{r['speedup']:7.1f}x" if ok else "      -"
            mr = f"{r['memory_ratio']:9.2f}" if ok else "        -"
            line += f" | {cell(r['nt'])} | {sp} | {mr} | {r['max_rel_diff']:12.1e}"
        print(line)
    if have_nt:
        print("(speedup = neural-tangents CPU time / workbench CPU time, steady calls if measured else first calls; "
              "mem ratio = workbench peak 1st / neural-tangents peak 1st; max rel diff = max |NTK_wb - NTK_nt| / "
              "max |NTK_nt| over all N x N entries)")
    if args.json is not None:
        meta = {"benchmark": "kernels_arch (Myrtle-5 analytic NNGP+NTK)", "image": list(IMAGE), "block": args.block,
                "repeats": args.repeats, "dtype": "float32", "cpus": os.cpu_count(), "machine": platform.node(),
                "processor": platform.processor() or platform.machine(), "load_avg": os.getloadavg(),
                "device": rows[0]["workbench"].get("device", "?") if rows else "?",
                "memory": "peak RSS above the RSS before the call, VmHWM reset (see docstring)",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, allow_nan=True) + "\n")
        print(f"rows written to {args.json}")


def _max_rel_diff(saved: dict[str, str]) -> float:
    """max |Theta_wb - Theta_nt| / max |Theta_nt| over all entries (NaN if either worker saved nothing)."""
    import numpy as np

    try:
        wb, ref = np.load(saved["workbench"]), np.load(saved["nt"])
    except (OSError, KeyError):
        return float("nan")
    return float(np.max(np.abs(wb - ref)) / np.max(np.abs(ref)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        lib, n, block, repeats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        IMAGE = (int(sys.argv[6]), int(sys.argv[6]), 3)
        save = sys.argv[7] if len(sys.argv) > 7 else ""
        print(json.dumps((worker_ours if lib == "workbench" else worker_nt)(n, block, repeats, save)))
    else:
        main()
