"""Benchmark: analytic NNGP + NTK of a Myrtle-5-style CNN, workbench.layers vs neural-tangents 0.6.5.

Network (both libraries; Shankar et al. 2020 "Neural kernels without tangents", the Myrtle family):
Conv(3x3, SAME) relu, Conv relu, AvgPool(2x2, stride 2), Conv relu, AvgPool(2x2, stride 2), Conv relu,
GlobalAvgPool, Dense(1); w_std = sqrt(2), b_std = 0, NTK parametrization. Inputs: N random images
32 x 32 x 3 in float32; the kernel of the N images with themselves (N x N NNGP and NTK). Pooling needs
the full position-by-position covariance: 1024^2 entries per pair of images in the first layers.

Both libraries compute in blocks of ``--block`` images per side (neural-tangents: ``nt.batch`` with
``batch_size=block``; workbench: ``Net.kernels(block_size=block)``). Each (library, N) runs in its
own subprocess and reports: total = the first call (compilation + all blocks), steady = the best of
``--repeats`` further calls (skipped with --repeats 0), peak MB = peak resident memory above the
resident memory before the first call.

Agreement: each worker saves its N x N NTK; "max rel diff" is max |Theta_wb - Theta_nt| / max |Theta_nt| over
all entries (float32 in both: differences of a few 1e-5 at 8 x 8 images, N = 64).

neural-tangents runs from its venv ``benchmarks/.venvs/nt`` (see benchmarks/ntk.py for its install line;
``--nt-python`` points elsewhere). ``--json OUT`` writes the table's rows (with machine, device, image size,
block) to OUT, so a run on a quiet machine or a GPU can be compared later.
Usage: ``.venv/bin/python benchmarks/kernels_arch.py [--sizes 64 256] [--image 32] [--block 8] [--repeats 1]
[--no-nt] [--json rows.json]``.
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


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _images(n: int):
    import numpy as np

    return np.random.default_rng(1).normal(size=(n,) + IMAGE).astype(np.float32)


def _time(fn, repeats: int, save: str) -> dict:
    import jax
    import numpy as np

    base = _current_rss_mb()
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    total = time.perf_counter() - t0
    best = float("nan")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0) if best == best else time.perf_counter() - t0
    ntk = np.asarray(out[1], dtype=np.float64)
    if save:
        np.save(save, ntk)
    return {"total": total, "steady": best, "peak_mb": _rss_mb() - base, "ntk00": float(ntk[0, 0]),
            "ntk01": float(ntk[0, 1]), "device": str(jax.devices()[0].platform)}


def worker_ours(n: int, block: int, repeats: int, save: str = "") -> dict:
    import jax

    jax.config.update("jax_enable_x64", False)
    from workbench.layers import AvgPool, Conv, Dense, GlobalAvgPool, Relu, serial

    def conv():
        return Conv(1, (3, 3), padding="SAME", w_std=W_STD, b_std=B_STD)

    net = serial(conv(), Relu(), conv(), Relu(), AvgPool((2, 2), strides=(2, 2)), conv(), Relu(),
                 AvgPool((2, 2), strides=(2, 2)), conv(), Relu(), GlobalAvgPool(), Dense(1, W_STD, B_STD))
    x = jax.numpy.asarray(_images(n))
    return _time(lambda: net.kernels(x, block_size=block), repeats, save)


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
    return _time(lambda: tuple(kfn(x, None, ("nngp", "ntk"))), repeats, save)


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
                row[lib] = run_one(lib, n, args.block, args.repeats, args.timeout, saved[lib])
                print(f"  {lib:9s} N={n:5d}: {row[lib]}", file=sys.stderr, flush=True)
            row["max_rel_diff"] = _max_rel_diff(saved) if have_nt else float("nan")
            rows.append(row)

    def cell(r: dict) -> str:
        if "error" in r:
            return f"{'error: ' + r['error'][:30]:>30s}"
        return f"{r['total']:8.2f} {r['steady']:8.2f} {r['peak_mb']:9.0f}   "

    print(f"\nMyrtle-5 analytic NNGP+NTK, {IMAGE[0]}x{IMAGE[1]}x3 images, float32, kernel of N images with themselves, "
          f"blocks of {args.block}")
    print(f"machine: {os.cpu_count()} CPUs, device {rows[0]['workbench'].get('device', '?') if rows else '?'}; "
          "total = first call incl. compile (s); steady = best further call (s); peak = max RSS above baseline (MB)")
    head = f"{'N':>5s} | {'workbench: total  steady  peak MB':>30s}"
    if have_nt:
        head += f" | {'neural-tangents: total steady peak':>30s} | {'speedup':>7s} | {'max rel diff':>12s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['n']:5d} | {cell(r['workbench'])}"
        if have_nt:
            ok = "total" in r["nt"] and "total" in r["workbench"]
            key = "steady" if ok and r["nt"]["steady"] == r["nt"]["steady"] else "total"
            sp = f"{r['nt'][key] / r['workbench'][key]:7.2f}x" if ok else "      -"
            r["speedup"] = r["nt"][key] / r["workbench"][key] if ok else float("nan")
            line += f" | {cell(r['nt'])} | {sp} | {r['max_rel_diff']:12.1e}"
        print(line)
    if have_nt:
        print("(speedup = neural-tangents time / workbench time, steady if measured else total; "
              "max rel diff = max |NTK_wb - NTK_nt| / max |NTK_nt| over all N x N entries)")
    if args.json is not None:
        meta = {"benchmark": "kernels_arch (Myrtle-5 analytic NNGP+NTK)", "image": list(IMAGE), "block": args.block,
                "repeats": args.repeats, "dtype": "float32", "cpus": os.cpu_count(), "machine": platform.node(),
                "processor": platform.processor() or platform.machine(), "load_avg": os.getloadavg(),
                "device": rows[0]["workbench"].get("device", "?") if rows else "?",
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
