"""Benchmark: empirical and infinite-width NTK, workbench vs neural-tangents 0.6.5.

Model (both libraries): input 32, three hidden layers of width 512, relu, one output, NTK
parametrization with w_std = sqrt(2), b_std = 0.1, float32; the kernel of N inputs with themselves
(trace over the single output). Each (library, method, N) runs in its own subprocess, alternating
workbench and neural-tangents, and reports:

* compile: first call minus steady time (tracing + XLA compilation), seconds;
* steady: the best of ``--repeats`` further calls (``block_until_ready``), seconds;
* peak MB: the subprocess's peak resident memory (VmHWM, reset just before) above its resident memory
  before the first call (compilation included); steady peak MB: the same over the later calls.

neural-tangents runs from its own venv (``benchmarks/.venvs/nt``; it needs jax 0.4.25, numpy < 2):

    python3.11 -m venv benchmarks/.venvs/nt
    benchmarks/.venvs/nt/bin/pip install neural-tangents==0.6.5 jax==0.4.25 jaxlib==0.4.25 "numpy<2" \\
        tensorflow==2.16.2 tf2jax==0.3.6

Usage: ``.venv/bin/python benchmarks/ntk.py [--sizes 256 1024 4096] [--repeats 3] [--no-nt]``.
The general methods (jacobian, ntvp) are run for N <= ``--general-max`` (default 1024): at N = 4096
their Jacobians alone would take ~9 GB and minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NT_PYTHON = ROOT / "benchmarks" / ".venvs" / "nt" / "bin" / "python"
DEPTH, WIDTH, IN_DIM = 3, 512, 32
W_STD, B_STD = 2**0.5, 0.1


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS (Linux >= 4.0: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    """Return freed heap memory to the OS (glibc malloc_trim), so that RSS measures what is in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _time(fn, repeats: int) -> dict:
    """Times and memory of ``fn``. Peaks are VmHWM (reset just before, after returning freed heap memory to the
    OS) minus the RSS then: ``peak_mb`` for the first call (compilation included), ``steady_peak_mb`` for a
    later call (output and temporaries). ru_maxrss would hide a call whose peak stays under an earlier one
    (e.g. while importing tensorflow)."""
    import jax

    _trim()
    _reset_peak()
    base = _status_mb("VmRSS")
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    peak_first = _status_mb("VmHWM") - base
    del out
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    _trim()
    _reset_peak()
    base2 = _status_mb("VmRSS")
    out = jax.block_until_ready(fn())
    steady_peak = _status_mb("VmHWM") - base2
    del out
    return {"compile": max(first - best, 0.0), "steady": best, "peak_mb": peak_first, "steady_peak_mb": steady_peak}


def worker_ours(method: str, n: int, repeats: int) -> dict:
    import jax

    jax.config.update("jax_enable_x64", False)
    import jax.numpy as jnp

    from workbench.kernels.analytic import infinite_kernels
    from workbench.kernels.empirical import empirical_ntk
    from workbench.nets import MLP

    net = MLP(depth=DEPTH, width=WIDTH, activation="relu", w_std=W_STD, b_std=B_STD)
    x = jax.random.normal(jax.random.PRNGKey(1), (n, IN_DIM), jnp.float32)
    if method == "analytic":  # the NTK only, as neural-tangents' get="ntk"
        return _time(lambda: infinite_kernels(net, x, get="ntk").ntk, repeats)
    if method == "analytic_both":
        return _time(lambda: infinite_kernels(net, x), repeats)
    params = net.init(jax.random.PRNGKey(0), IN_DIM, dtype=jnp.float32)
    if method == "structured_xx":  # the same array passed twice: detected, symmetric path
        return _time(lambda: empirical_ntk(net, params, x, x), repeats)
    apply_fn = net if method == "structured" else (lambda p, xx: net.apply(p, xx))  # general methods: any callable
    return _time(lambda: empirical_ntk(apply_fn, params, x, method=method), repeats)


def worker_nt(method: str, n: int, repeats: int) -> dict:
    import jax

    jax.config.update("jax_enable_x64", False)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    layers = []
    for _ in range(DEPTH):
        layers += [stax.Dense(WIDTH, W_std=W_STD, b_std=B_STD), stax.Relu()]
    init_fn, apply_fn, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=W_STD, b_std=B_STD))
    x = jax.random.normal(jax.random.PRNGKey(1), (n, IN_DIM), jnp.float32)
    if method in ("analytic", "analytic_both"):
        kfn = jax.jit(kernel_fn, static_argnames="get")
        get = "ntk" if method == "analytic" else ("nngp", "ntk")
        return _time(lambda: kfn(x, None, get=get), repeats)
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    impl = {"structured": nt.NtkImplementation.STRUCTURED_DERIVATIVES,
            "structured_xx": nt.NtkImplementation.STRUCTURED_DERIVATIVES,
            "jacobian": nt.NtkImplementation.JACOBIAN_CONTRACTION,
            "ntvp": nt.NtkImplementation.NTK_VECTOR_PRODUCTS}[method]
    fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=impl))
    if method == "structured_xx":
        return _time(lambda: fn(x, x, params), repeats)
    return _time(lambda: fn(x, None, params), repeats)


def run_one(lib: str, method: str, n: int, repeats: int, timeout: int) -> dict:
    python = sys.executable if lib == "workbench" else str(NT_PYTHON)
    cmd = [python, str(Path(__file__).resolve()), "--worker", lib, method, str(n), str(repeats)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--analytic-sizes", type=int, nargs="*", default=[1024, 4096])
    p.add_argument("--xx-sizes", type=int, nargs="*", default=[1024],
                   help="sizes for empirical_ntk(net, params, x, x) (the same array twice) beside (x)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every (method, N) this many times, alternating the libraries; the table shows medians")
    p.add_argument("--only", nargs="*", default=None, help="run only these methods (e.g. analytic structured_xx)")
    p.add_argument("--methods", nargs="+", default=["structured", "jacobian", "ntvp"])
    p.add_argument("--general-max", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--no-nt", action="store_true")
    args = p.parse_args()
    have_nt = NT_PYTHON.exists() and not args.no_nt
    if not have_nt and not args.no_nt:
        print(f"neural-tangents venv not found at {NT_PYTHON}: printing the workbench column only (see the docstring)")
    jobs = [(m, n) for n in args.sizes for m in args.methods if m == "structured" or n <= args.general_max]
    jobs += [("structured_xx", n) for n in args.xx_sizes]
    jobs += [(m, n) for n in args.analytic_sizes for m in ("analytic", "analytic_both")]
    if args.only:
        jobs = [(m, n) for m, n in jobs if m in args.only]
    rows = []
    for method, n in jobs:
        row = {"method": method, "n": n}
        runs: dict[str, list] = {"workbench": [], "nt": []}
        libs = ("workbench", "nt") if have_nt else ("workbench",)
        for r in range(args.rounds):
            for lib in (libs if r % 2 == 0 else libs[::-1]):  # alternate the libraries and their order
                runs[lib].append(run_one(lib, method, n, args.repeats, args.timeout))
                print(f"  {lib:9s} {method:13s} N={n:5d}: {runs[lib][-1]}", file=sys.stderr, flush=True)
        for lib in libs:
            ok = [x for x in runs[lib] if "error" not in x]
            row[lib] = ({k: float(np.median([x[k] for x in ok])) for k in ok[0]} if ok else runs[lib][0])
        rows.append(row)

    def cell(r: dict) -> str:
        if "error" in r:
            return f"{'error: ' + r['error'][:30]:>34s}"
        return f"{r['steady']:9.4f} {r['compile']:8.2f} {r['peak_mb']:6.0f} {r.get('steady_peak_mb', float('nan')):6.0f}"

    print(f"\nNTK benchmark: MLP {IN_DIM}-{WIDTH}x{DEPTH}-1 relu, float32, kernel of N inputs with themselves")
    print(f"machine: {os.cpu_count()} CPUs; steady = best of {args.repeats} calls (s); compile = first - steady (s); "
          "peak = max RSS above the RSS before the first call, compile included (MB); steadypk = the same for the "
          "later calls")
    head = f"{'method':13s}{'N':>6s} | {'workbench: steady compile peak steadypk':>34s}"
    if have_nt:
        head += f" | {'nt: steady compile peak steadypk':>34s} | {'speedup':>7s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['method']:13s}{r['n']:6d} | {cell(r['workbench'])}"
        if have_nt:
            sp = (f"{r['nt']['steady'] / r['workbench']['steady']:7.1f}x"
                  if "steady" in r["nt"] and "steady" in r["workbench"] else "      -")
            line += f" | {cell(r['nt'])} | {sp}"
        print(line)
    print("(nt structured = NtkImplementation.STRUCTURED_DERIVATIVES, jacobian = JACOBIAN_CONTRACTION, "
          "ntvp = NTK_VECTOR_PRODUCTS; structured_xx = the same array passed as x1 and x2 (nt: fn(x, x, params)); "
          "analytic = kernel_fn(get='ntk') vs infinite_kernels(get='ntk'); analytic_both = both kernels)")
    if args.rounds > 1:
        print(f"(medians of {args.rounds} rounds; each round alternates which library runs first)")
    xx = {r["n"]: r for r in rows if r["method"] == "structured_xx"}
    for r in rows:
        if r["method"] == "structured" and r["n"] in xx and "steady" in r["workbench"] and "steady" in xx[r["n"]]["workbench"]:
            ratio = xx[r["n"]]["workbench"]["steady"] / r["workbench"]["steady"]
            print(f"workbench empirical_ntk(x, x) / empirical_ntk(x) at N={r['n']}: {ratio:.2f}x (issue: <= 1.1x)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        lib, method, n, repeats = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        result = (worker_ours if lib == "workbench" else worker_nt)(method, n, repeats)
        print(json.dumps(result))
    else:
        main()
