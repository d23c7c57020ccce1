"""Benchmark: top eigenvalue, trace and spectral density of an MLP Hessian, workbench (JAX) vs PyHessian (PyTorch).

Model: MLP 32-256-256-10, tanh, biases, cross-entropy (mean), 2048 synthetic points (Gaussian inputs,
labels from a random teacher), float32 on the CPU, the same weights in both frameworks.

Both sides are timed *to the same accuracy*:
* top eigenvalue to 1e-4 relative, against a long float64 Lanczos run (300 steps, full reorthogonalization);
* trace to 1% relative standard error (the probe count each estimator needs is found from pilot runs);
* the SLQ density's first two moments (estimates of tr(H)/P, tr(H^2)/P) to 1% relative standard error
  (80 Lanczos steps per probe; both sides run a few probes and the time is scaled to the needed probes).
Compile time of the JAX functions is reported separately (it is paid once per model and batch shape).
The two frameworks run alternately, ``--reps`` times, in one script: PyHessian in a subprocess with its own
venv (``benchmarks/.venvs/pyhessian``: ``pip install torch==2.13.0 pyhessian``), timed inside that process.

PyHessian notes: its ``density`` calls ``torch.eig``, removed from PyTorch; we record the error and, to
compare anyway, run it with ``torch.eig`` replaced by ``torch.linalg.eigh`` (labelled "patched").
Its ``trace`` stops as soon as the running mean changes by < tol, so it runs with ``tol=-inf`` and a fixed
probe count here.

Usage: ``.venv/bin/python benchmarks/hessian.py [--reps 2] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / "benchmarks" / ".venvs" / "pyhessian" / "bin" / "python"
SIZES = (32, 256, 256, 10)
N_POINTS = 2048
DENSITY_STEPS = 80
TARGET_EIG = 1e-4
TARGET_REL_SE = 0.01
MAX_PROBES = 1500
MAX_XTRACE = 200


def make_problem(seed: int = 0, n: int = N_POINTS) -> dict[str, np.ndarray]:
    """Weights (standard parametrization, W: (fan_in, fan_out)) and data, float32."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, (fi, fo) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        out[f"W{i}"] = (rng.normal(size=(fi, fo)) / math.sqrt(fi)).astype(np.float32)
        out[f"b{i}"] = (0.1 * rng.normal(size=fo)).astype(np.float32)
    x = rng.normal(size=(n, SIZES[0])).astype(np.float32)
    teacher = rng.normal(size=(SIZES[0], SIZES[-1]))
    out["x"] = x
    out["labels"] = np.argmax(x @ teacher + rng.normal(size=(n, SIZES[-1])), axis=1).astype(np.int64)
    return out


# ============================================================================= PyHessian worker
def pyhessian_worker(npz: str, tasks: dict) -> dict:
    import torch
    from pyhessian import hessian

    torch.manual_seed(0)
    data = np.load(npz)
    layers = []
    for i in range(len(SIZES) - 1):
        lin = torch.nn.Linear(SIZES[i], SIZES[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(data[f"W{i}"].T.copy()))
            lin.bias.copy_(torch.from_numpy(data[f"b{i}"]))
        layers += [lin, torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers[:-1])
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["labels"])
    crit = torch.nn.CrossEntropyLoss()
    res: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    t = time.perf_counter()
    h = hessian(model, crit, data=(x, y), cuda=False)
    res["setup_s"] = time.perf_counter() - t
    for tol in (1e-3, 1e-6):
        t = time.perf_counter()
        ev, _ = h.eigenvalues(maxIter=tasks["power_max_iter"], tol=tol, top_n=1)
        res[f"power_tol{tol:g}"] = {"time_s": time.perf_counter() - t, "value": float(ev[0])}
        print(json.dumps({"partial": res}), file=sys.stderr, flush=True)
    t = time.perf_counter()
    run = min(tasks["trace_probes"], tasks["trace_probes_run"])
    vals = h.trace(maxIter=run, tol=-math.inf)
    # Hutchinson's cost is linear in the probes: time for the needed count = measured x needed/run.
    res["trace"] = {"time_s": (time.perf_counter() - t) * tasks["trace_probes"] / run, "probes": tasks["trace_probes"],
                    "probes_run": run, "mean": float(np.mean(vals)),
                    "stderr": float(np.std(vals, ddof=1) / math.sqrt(tasks["trace_probes"]))}
    print(json.dumps({"partial": res}), file=sys.stderr, flush=True)
    try:
        h.density(iter=5, n_v=1)
        res["density_unpatched"] = "ran"
    except Exception as exc:  # the removed torch.eig
        res["density_unpatched"] = f"{type(exc).__name__}: {exc}"[:160]

    def eig_patch(a, eigenvectors=True):
        w, v = torch.linalg.eigh(a)
        return torch.stack([w, torch.zeros_like(w)], dim=1), v

    torch.eig = eig_patch
    t = time.perf_counter()
    nodes, weights = h.density(iter=tasks["density_steps"], n_v=tasks["density_probes_run"])
    res["density_patched"] = {"time_s": time.perf_counter() - t, "probes_run": tasks["density_probes_run"],
                              "m1": [float(np.dot(w, n)) for n, w in zip(nodes, weights)],
                              "m2": [float(np.dot(w, np.square(n))) for n, w in zip(nodes, weights)]}
    return res


def run_pyhessian(npz: str, tasks: dict) -> dict:
    if not VENV_PY.exists():
        return {"error": f"no venv at {VENV_PY}: python -m venv it and pip install torch==2.13.0 pyhessian"}
    cmd = [str(VENV_PY), __file__, "--worker", npz, json.dumps(tasks)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    if out.returncode != 0:
        return {"error": f"worker exited with {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ============================================================================= JAX side
def jax_setup(problem: dict, dtype: str):
    import jax
    import jax.numpy as jnp

    from workbench import hessian as H
    from workbench.nets import MLP

    net = MLP(depth=2, width=256, activation="tanh", b_std=0.1, parametrization="standard", out_dim=10)
    params = [{"W": jnp.asarray(problem[f"W{i}"], dtype), "b": jnp.asarray(problem[f"b{i}"], dtype)} for i in range(3)]
    x = jnp.asarray(problem["x"], dtype)
    y = jax.nn.one_hot(jnp.asarray(problem["labels"]), 10, dtype=dtype)
    lf = H.mlp_loss(net, "cross_entropy")
    return H, lf, params, (x, y)


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def block(x):
    import jax

    return jax.block_until_ready(x)


def reference(problem: dict) -> dict:
    """float64: top eigenvalue by 300 Lanczos steps; tr(H)/P, tr(H^2)/P by 300 Hutchinson probes."""
    import jax

    from workbench.linalg import krylov as K

    with jax.enable_x64(True):
        H, lf, params, batch = jax_setup(problem, "float64")
        op = H.hessian_operator(lf, params, batch)
        top = K.top_eigenvalues(op, k=2, num_iters=300, key=jax.random.PRNGKey(99))
        vals = K.squared_norms(op, 300, jax.random.PRNGKey(98))
        tr = K.hutchinson_trace(op, 300, jax.random.PRNGKey(98))
    return {"top": float(top.eigenvalues[0]), "second": float(top.eigenvalues[1]), "residual": float(top.residuals[0]),
            "dim": op.dim, "trace": tr.trace, "trace_se": tr.stderr, "m2": float(vals.mean()) / op.dim,
            "m2_se": float(vals.std(ddof=1) / math.sqrt(len(vals))) / op.dim}


def jax_probe_counts(problem: dict) -> dict:
    """Probe counts each estimator needs for 1% relative standard error (pilot runs, float32)."""
    import jax

    from workbench.linalg import krylov as K

    H, lf, params, batch = jax_setup(problem, "float32")
    op = H.hessian_operator(lf, params, batch)
    counts = {}
    for method in K.TRACE_METHODS:
        # Pilot at 60 probes, then m (se/target)^2: exact scaling for Hutchinson, conservative for Hutch++
        # and XTrace (their error falls faster than 1/sqrt(m)). XTrace holds all its probes' products at
        # once (memory), so it is capped at MAX_XTRACE; the table shows the standard error reached.
        est = K.hutchinson_trace(op, 60, jax.random.PRNGKey(5), method=method)
        need = int(math.ceil(60 * (est.stderr / (TARGET_REL_SE * abs(est.trace))) ** 2))
        cap = MAX_XTRACE if method == "xtrace" else MAX_PROBES
        counts[method] = int(min(max(need, 6), cap))
    d = K.slq_density(op, 4, 30, jax.random.PRNGKey(6), grid=8)
    rel = d.moment_stderr * math.sqrt(30) / np.abs(d.moments)  # per-probe relative std
    counts["density"] = int(math.ceil(float(np.max(rel / TARGET_REL_SE)) ** 2))
    return counts


def jax_run(problem: dict, counts: dict, density_probes_run: int, compile_too: bool, probes_run: int = 10 ** 6) -> dict:
    import jax

    from workbench.linalg import krylov as K

    H, lf, params, batch = jax_setup(problem, "float32")
    op = H.hessian_operator(lf, params, batch)
    res = {}
    v = jax.random.normal(jax.random.PRNGKey(0), (op.dim,), "float32")
    if compile_too:
        _, res["compile_hvp_s"] = timed(lambda: block(op.matvec(v)))
        _, res["compile_grad_s"] = timed(lambda: block(H.loss_and_grad(lf, params, batch)))
    reps = 10
    t = time.perf_counter()
    for _ in range(reps):
        block(op.matvec(v))
    res["hvp_s"] = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for _ in range(reps):
        block(H.loss_and_grad(lf, params, batch))
    res["grad_s"] = (time.perf_counter() - t) / reps

    def top():
        return K.top_eigenvalues(op, 1, key=jax.random.PRNGKey(1), tol=TARGET_EIG)

    if compile_too:
        _, res["compile_lanczos_s"] = timed(top)
    r, res["lanczos_s"] = timed(top)
    res["lanczos"] = {"value": float(r.eigenvalues[0]), "matvecs": r.num_matvecs, "residual": float(r.residuals[0])}
    for method in K.TRACE_METHODS:
        # Plain Hutchinson may run fewer probes and scale the time (linear cost), as on the PyHessian side.
        run = min(counts[method], probes_run) if method == "hutchinson" else counts[method]

        def tr(method=method, run=run):
            return K.hutchinson_trace(op, run, jax.random.PRNGKey(2), method=method)

        if compile_too:
            timed(tr)
        est, dt = timed(tr)
        scale = counts[method] / run
        res[f"trace_{method}"] = {"time_s": dt * scale, "probes": counts[method], "probes_run": run,
                                  "mean": est.trace, "stderr": est.stderr / math.sqrt(scale)}

    def dens():
        return K.slq_density(op, DENSITY_STEPS, density_probes_run, jax.random.PRNGKey(3), grid=64)

    if compile_too:
        _, res["compile_slq_s"] = timed(dens)
    d, res["density_s"] = timed(dens)
    res["density_moments"] = d.moments.tolist()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--trace-probes-run", type=int, default=10 ** 6,
                    help="run at most this many plain-Hutchinson probes and scale the time linearly")
    ap.add_argument("--power-max-iter", type=int, default=1000)
    ap.add_argument("--reuse", type=str, default=None,
                    help="JSON file with the 'reference' and 'counts' of an earlier run (skips recomputing them)")
    ap.add_argument("--quick", action="store_true", help="256 points (a smoke run of the script)")
    args = ap.parse_args()
    n = 256 if args.quick else N_POINTS
    problem = make_problem(0, n)
    tmp = tempfile.mkdtemp()
    npz = os.path.join(tmp, "problem.npz")
    np.savez(npz, **problem)

    import jax

    from workbench import config

    print(f"# {config.device_report()}; MLP {'-'.join(map(str, SIZES))} tanh, cross-entropy, N={n}", flush=True)
    saved = json.loads(Path(args.reuse).read_text()) if args.reuse else None
    ref = saved["reference"] if saved else reference(problem)
    ref.setdefault("m2", math.nan)
    ref.setdefault("residual", math.nan)
    print(f"# reference (float64, 300 Lanczos steps): lambda1 = {ref['top']:.6f} (residual {ref['residual']:.1e}), "
          f"lambda2 = {ref['second']:.6f}, P = {ref['dim']}, tr(H) = {ref['trace']:.4f} +- {ref['trace_se']:.4f}",
          flush=True)
    counts = saved["counts"] if saved else jax_probe_counts(problem)
    print(json.dumps({"reference": ref, "counts": counts}), flush=True)
    dens_run = 4
    print(f"# probes for 1% relative stderr: {counts}", flush=True)
    tasks = {"power_max_iter": args.power_max_iter, "trace_probes": counts["hutchinson"],
             "trace_probes_run": args.trace_probes_run, "density_steps": DENSITY_STEPS, "density_probes_run": dens_run}
    jr, pr = [], []
    for rep in range(args.reps):
        jr.append(jax_run(problem, counts, dens_run, compile_too=(rep == 0), probes_run=args.trace_probes_run))
        print(json.dumps({"jax": jr[-1]}), flush=True)
        pr.append(run_pyhessian(npz, tasks))
        print(json.dumps({"pyhessian": pr[-1]}), flush=True)
        print(f"# rep {rep + 1}/{args.reps} done", flush=True)
    if "error" in pr[0]:
        print("PyHessian failed:", pr[0]["error"])
    report(ref, counts, jr, pr, dens_run)
    del jax


def _med(rs, *keys):
    vals = []
    for r in rs:
        for k in keys:
            r = r[k]
        vals.append(r)
    return float(np.median(vals))


def report(ref, counts, jr, pr, dens_run) -> None:
    lam = ref["top"]
    rows = []
    j0, p0 = jr[0], pr[0]
    rel = lambda v: abs(v - lam) / lam  # noqa: E731
    rows.append(("top eigenvalue", "workbench Lanczos (tol 1e-4)", _med(jr, "lanczos_s"),
                 f"{j0['lanczos']['value']:.6f}", f"{rel(j0['lanczos']['value']):.1e}", f"{j0['lanczos']['matvecs']} HVPs"))
    if "error" not in p0:
        for tol in ("0.001", "1e-06"):
            r = p0[f"power_tol{tol}"]
            rows.append(("top eigenvalue", f"PyHessian power (tol {tol})", _med(pr, f"power_tol{tol}", "time_s"),
                         f"{r['value']:.6f}", f"{rel(r['value']):.1e}", ""))
    for method in ("hutchinson", "hutch++", "xtrace"):
        r = j0[f"trace_{method}"]
        rows.append(("trace", f"workbench {method}", _med(jr, f"trace_{method}", "time_s"), f"{r['mean']:.4f}",
                     f"se {r['stderr'] / abs(r['mean']):.2%}", f"{r['probes']} HVPs"))
    if "error" not in p0:
        r = p0["trace"]
        rows.append(("trace", "PyHessian Hutchinson (tol=-inf)", _med(pr, "trace", "time_s"), f"{r['mean']:.4f}",
                     f"se {r['stderr'] / abs(r['mean']):.2%}", f"{r['probes']} HVPs"))
    scale = counts["density"] / dens_run
    rows.append(("density (m1, m2 to 1%)", f"workbench SLQ {DENSITY_STEPS} steps", _med(jr, "density_s") * scale,
                 f"m1 {j0['density_moments'][0]:.3g}", "", f"{counts['density']} probes (time x{scale:.1f} from {dens_run})"))
    if "error" not in p0:
        rows.append(("density (m1, m2 to 1%)", "PyHessian SLQ (patched torch.eig)",
                     _med(pr, "density_patched", "time_s") * scale, f"m1 {np.mean(p0['density_patched']['m1']):.3g}", "",
                     f"{counts['density']} probes (time x{scale:.1f} from {dens_run})"))
    print()
    print("| quantity | method | time (s) | value | accuracy | work |")
    print("|---|---|---|---|---|---|")
    for q, m, t, v, a, w in rows:
        print(f"| {q} | {m} | {t:.2f} | {v} | {a} | {w} |")
    print()
    hvp, grad = _med(jr, "hvp_s"), _med(jr, "grad_s")
    print(f"JAX: one HVP {hvp * 1e3:.1f} ms, one gradient {grad * 1e3:.1f} ms, HVP / (3 gradients) = {hvp / (3 * grad):.2f}")
    print(f"JAX compile (once per model and batch shape): HVP {j0['compile_hvp_s']:.2f} s, gradient "
          f"{j0['compile_grad_s']:.2f} s, adaptive Lanczos {j0['compile_lanczos_s']:.2f} s (incl. its run), "
          f"SLQ {j0['compile_slq_s']:.2f} s (incl. its run)")
    if "error" not in p0:
        print(f"PyHessian: torch {p0['torch']}, {p0['threads']} threads, setup (graph for double backward) "
              f"{p0['setup_s']:.2f} s; unpatched density: {p0['density_unpatched']}")
        m1 = np.array(p0['density_patched']['m1'])
        print(f"PyHessian SLQ moments from {dens_run} probes: m1 = {m1.mean():.4g}; reference tr(H)/P = "
              f"{ref['trace'] / ref['dim']:.4g}, tr(H^2)/P = {ref['m2']:.4g}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(pyhessian_worker(sys.argv[2], json.loads(sys.argv[3]))))
    else:
        main()
