"""GPU check: what the workbench computes on an accelerator, at which precision, and how fast against the host CPU.

Run it on a machine with a GPU build of JAX (``WORKBENCH_CUDA=1 ./run ...`` installs one; docs/scaling.md):

    .venv/bin/python benchmarks/gpu_check.py [--quick] [--json out.json]

It prints, for JAX's default device:

1. ``workbench.device_report()``.
2. Precision: the empirical NTK of a tanh MLP (3 hidden layers of 512, 256 points) in float32 with the default
   matmul precision (TF32 on NVIDIA Ampere and later) and with ``"highest"``, each against the float64 kernel:
   why every verification in the workbench runs under ``config.matmul_precision("highest")``.
3. A few papers entries in fast mode on this device (verdict, device and precision as the entry records them).
4. Timings, this device against the CPU of the same machine (a subprocess with ``JAX_PLATFORMS=cpu``): empirical
   NTK of the MLP (N = 1024 and 4096, symmetric path), analytic NNGP + NTK of the MLP (N = 4096), and the top
   Hessian eigenvalue and a 100-probe Hutchinson trace of an MLP 32-256-256-10 cross-entropy loss on 2048
   points. float32, matmul precision "highest" on both sides. First call (compilation included) and the best
   of three further calls.

The symbolic derivations are checked on the device by their own command:
``python -m workbench.symbolic --device gpu`` (float64) and ``--float32`` (matmul precision highest).

Nothing here asserts a time: it prints a table (the project's rule for speed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _best(fn, repeats: int = 3) -> tuple[float, float]:
    import jax

    t = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return first, best


def _emit(out: dict, name: str, value) -> None:
    out[name] = value
    print(json.dumps({name: value}), flush=True)  # one line per measurement: a timed-out worker keeps what it did


def timings(quick: bool) -> dict:
    """float32, matmul precision highest, on JAX's default device (the caller sets JAX_PLATFORMS)."""
    import jax
    import jax.numpy as jnp

    from workbench import config, hessian as H
    from workbench.kernels.analytic import infinite_kernels
    from workbench.kernels.empirical import empirical_ntk
    from workbench.linalg import krylov as K
    from workbench.nets import MLP

    config.set_precision("float32")
    out = {}
    with config.matmul_precision("highest"):
        _emit(out, "device", config.device_report())
        net = MLP(depth=2, width=256, activation="relu", out_dim=1)
        rng = np.random.default_rng(0)
        for n in ((256,) if quick else (1024, 4096)):
            x = jnp.asarray(rng.normal(size=(n, 32)), jnp.float32)
            params = net.init(jax.random.PRNGKey(0), 32)
            _emit(out, f"empirical_ntk N={n}", _best(lambda: empirical_ntk(net, params, x)))
        n = 512 if quick else 4096
        x = jnp.asarray(rng.normal(size=(n, 32)), jnp.float32)
        _emit(out, f"analytic nngp+ntk N={n}", _best(lambda: infinite_kernels(net, x)))
        mlp = MLP(depth=2, width=256, activation="tanh", b_std=0.1, parametrization="standard", out_dim=10)
        n = 256 if quick else 2048
        xs = jnp.asarray(rng.normal(size=(n, 32)), jnp.float32)
        ys = jax.nn.one_hot(jnp.asarray(rng.integers(0, 10, n)), 10, dtype=jnp.float32)
        p = mlp.init(jax.random.PRNGKey(1), 32)
        op = H.hessian_operator(H.mlp_loss(mlp, "cross_entropy"), p, (xs, ys))
        v = jax.random.normal(jax.random.PRNGKey(4), (op.dim,), jnp.float32)
        _emit(out, "hessian-vector product", _best(lambda: op.matvec(v)))
        _emit(out, "hessian top eigenvalue (rtol 1e-4)", _best(
            lambda: K.top_eigenvalues(op, 1, key=jax.random.PRNGKey(2), rtol=1e-4).eigenvalues))
        _emit(out, "hutchinson trace, 100 probes", _best(
            lambda: jnp.asarray(K.hutchinson_trace(op, 100, key=jax.random.PRNGKey(3), method="hutchinson").trace)))
    return out


def precision_check(quick: bool) -> list[tuple[str, float]]:
    """Relative Frobenius error of the float32 empirical NTK against float64, per matmul precision."""
    import jax
    import jax.numpy as jnp

    from workbench import config
    from workbench.kernels.empirical import empirical_ntk
    from workbench.nets import MLP

    net = MLP(depth=3, width=128 if quick else 512, activation="tanh", out_dim=1)
    x = np.random.default_rng(0).normal(size=(64 if quick else 256, 32))
    with config.precision("float64"):
        p64 = net.init(jax.random.PRNGKey(0), 32)
        ref = np.asarray(empirical_ntk(net, p64, jnp.asarray(x)))
    rows = []
    with config.precision("float32"):
        p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p64)
        for prec in ("default", "highest"):
            with config.matmul_precision(prec):
                k = np.asarray(empirical_ntk(net, p32, jnp.asarray(x, jnp.float32)), np.float64)
            rows.append((prec, float(np.linalg.norm(k - ref) / np.linalg.norm(ref))))
    return rows


def papers_check(names: list[str]) -> list[str]:
    from workbench import papers

    lines = []
    for name in names:
        t = time.perf_counter()
        r = papers.reproduce(name, fast=True)
        lines.append(f"{name}: {'passed' if r.passed else 'FAILED'} in {time.perf_counter() - t:.1f} s; "
                     f"device {r.device}; {r.precision}")
    return lines


def _worker(args, env: dict, timeout: float) -> dict:
    """Run :func:`timings` in a subprocess; keep every measurement it printed, also when it times out."""
    env = dict(os.environ, **env, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, __file__, "--worker-timings"] + (["--quick"] if args.quick else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        text, err = proc.stdout, (proc.stderr[-400:] if proc.returncode else None)
    except subprocess.TimeoutExpired as exc:
        text = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = f"timed out after {timeout:.0f} s"
    out: dict = {}
    for line in text.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    if err:
        out["error"] = err
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run of the script)")
    ap.add_argument("--json", default=None, help="write every number to this file")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU baseline subprocess")
    ap.add_argument("--papers", nargs="*", default=["jacot_2018_ntk", "advani_saxe_2017", "roberts_yaida_kurtosis"])
    ap.add_argument("--worker-timeout", type=float, default=600, help="seconds for each timing subprocess")
    ap.add_argument("--worker-timings", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_timings:
        timings(args.quick)
        return

    from workbench import config

    result: dict = {"device_report": config.device_report()}
    print("# " + result["device_report"], flush=True)

    rows = precision_check(args.quick)
    result["precision"] = rows
    print("\n## float32 empirical NTK against float64 (relative Frobenius error)")
    for prec, err in rows:
        print(f"  matmul precision {prec:8s}: {err:.2e}")

    result["papers"] = papers_check(args.papers)
    print("\n## papers, fast mode\n" + "\n".join("  " + s for s in result["papers"]), flush=True)

    dev = _worker(args, {}, args.worker_timeout)
    cpu = {"error": "skipped"} if args.no_cpu else _worker(args, {"JAX_PLATFORMS": "cpu"}, args.worker_timeout)
    result["timings"] = {"device": dev, "cpu": cpu}
    print("\n## timings (s): first call (compile included) / best of 3; float32, matmul precision highest")
    print(f"  device: {dev.get('device')} {dev.get('error') or ''}\n  cpu:    {cpu.get('device')} {cpu.get('error') or ''}")
    print(f"  {'work':40s} {'device first':>12s} {'device best':>12s} {'cpu first':>10s} {'cpu best':>10s} "
          f"{'speed-up':>9s}")
    for k, v in dev.items():
        if k == "device" or not isinstance(v, list):
            continue
        c = cpu.get(k)
        cs = f"{c[0]:10.3f} {c[1]:10.4f} {c[1] / v[1]:9.1f}" if isinstance(c, list) else f"{'-':>10s} {'-':>10s} {'-':>9s}"
        print(f"  {k:40s} {v[0]:12.3f} {v[1]:12.4f} {cs}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
