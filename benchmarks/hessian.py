"""Benchmark: top eigenvalue, trace and spectral density of an MLP Hessian, workbench (JAX) vs PyHessian (PyTorch).

Model: MLP 32-256-256-10, tanh, biases, cross-entropy (mean), 2048 synthetic points (Gaussian inputs,
labels from a random teacher), float32 on the CPU, the same weights in both frameworks.

Rows (issue 19), both sides timed to the same accuracy:
* top eigenvalue to 1e-4 relative: workbench ``top_eigenvalues(rtol=1e-4)`` (early-stopping Lanczos) vs
  PyHessian ``eigenvalues(maxIter=100, tol=1e-3, top_n=1)``; the same for the top 5 (``top_n=5``). Errors
  against ``scipy.sparse.linalg.eigsh`` (tol 1e-8) on the float64 version of the same operator. Also the
  fixed-depth matfree ``tridiag_sym`` at 40 steps (the depth the previous doubling schedule started at),
  the reason for the hand-written resumable loop;
* trace to 1% relative standard error: workbench ``hutchinson_trace(method="auto", target_rel_stderr=0.01)``
  (Hutch++ chosen when the spectrum decays, probes batched through vmap) vs PyHessian's Hutchinson with
  the probe count that reaches the same standard error (from a pilot; its time scaled linearly from
  ``--trace-probes-run`` probes when that is smaller);
* the exact trace: workbench ``exact_trace`` (the MLP's Hessian diagonal by second-order backpropagation,
  :mod:`workbench.hessian_diagonal`; standard error 0), its time against PyHessian's time to 1%;
* with ``--density``: the SLQ density's first two moments to 1% (80 Lanczos steps per probe).
Compile time of the JAX functions is reported separately (it is paid once per model and batch shape).
The two frameworks run alternately (the order flips every rep), ``--reps`` times, in one script; the
table shows medians. PyHessian runs in a subprocess with its own venv (``benchmarks/.venvs/pyhessian``:
``pip install torch==2.13.0 pyhessian``), timed inside that process.

PyHessian notes: its ``density`` calls ``torch.eig``, removed from PyTorch; we record the error and, to
compare anyway, run it with ``torch.eig`` replaced by ``torch.linalg.eigh`` (labelled "patched").
Its ``trace`` stops as soon as the running mean changes by < tol, so it runs with ``tol=-inf`` and a fixed
probe count here.

Usage: ``.venv/bin/python benchmarks/hessian.py [--reps 3] [--quick] [--density]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
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
    cuda = bool(tasks.get("cuda"))
    if cuda:  # PyHessian moves the data itself (cuda=True); the model is the caller's to move
        model = model.cuda()
    res: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                 "device": torch.cuda.get_device_name() if cuda else "cpu",
                 "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32)}

    t = time.perf_counter()
    h = hessian(model, crit, data=(x, y), cuda=cuda)
    res["setup_s"] = time.perf_counter() - t
    for top_n in (1, 5):
        t = time.perf_counter()
        ev, _ = h.eigenvalues(maxIter=100, tol=1e-3, top_n=top_n)
        res[f"top{top_n}"] = {"time_s": time.perf_counter() - t, "values": [float(v) for v in ev]}
        print(json.dumps({"partial": res}), file=sys.stderr, flush=True)
    if not tasks.get("trace", True):
        return res
    t = time.perf_counter()
    run = min(tasks["trace_probes"], tasks["trace_probes_run"])
    vals = h.trace(maxIter=run, tol=-math.inf)
    # Hutchinson's cost is linear in the probes: time for the needed count = measured x needed/run.
    res["trace"] = {"time_s": (time.perf_counter() - t) * tasks["trace_probes"] / run, "probes": tasks["trace_probes"],
                    "probes_run": run, "mean": float(np.mean(vals)),
                    "stderr": float(np.std(vals, ddof=1) / math.sqrt(tasks["trace_probes"]))}
    print(json.dumps({"partial": res}), file=sys.stderr, flush=True)
    if tasks.get("density"):
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
                                  "m1": [float(np.dot(w, n)) for n, w in zip(nodes, weights)]}
    return res


def run_pyhessian(npz: str, tasks: dict) -> dict:
    python = Path(os.environ.get("PYHESSIAN_PYTHON", VENV_PY))  # e.g. a CUDA machine's own torch python
    if not python.exists() and os.sep not in str(python):
        python = Path(shutil.which(str(python)) or python)
    if not python.exists():
        return {"error": f"no venv at {python}: python -m venv it and pip install torch==2.13.0 pyhessian"}
    cmd = [str(python), __file__, "--worker", npz, json.dumps(tasks)]
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


def reference(problem: dict, trace: bool = True) -> dict:
    """float64: the top 6 eigenvalues by scipy eigsh (ARPACK, tol 1e-8); tr(H) by 300 Hutchinson probes."""
    import jax
    import scipy.sparse.linalg as sla

    from workbench.linalg import krylov as K

    with jax.enable_x64(True):
        H, lf, params, batch = jax_setup(problem, "float64")
        op = H.hessian_operator(lf, params, batch)
        mv = jax.jit(op.pure_matvec)
        count = [0]

        def matvec(v):
            count[0] += 1
            return np.asarray(mv(jax.numpy.asarray(np.ravel(v)), *op.operands))

        lin = sla.LinearOperator((op.dim, op.dim), matvec=matvec, dtype=np.float64)
        t = time.perf_counter()
        vals = np.sort(sla.eigsh(lin, k=6, which="LA", tol=1e-8, return_eigenvectors=False))[::-1]
        eigsh_s = time.perf_counter() - t
        out = {"top": vals.tolist(), "eigsh_matvecs": count[0], "eigsh_s": eigsh_s, "dim": op.dim}
        if trace:
            tr = K.hutchinson_trace(op, 300, key=jax.random.PRNGKey(98), method="hutchinson")
            out.update(trace=tr.trace, trace_se=tr.stderr, trace_var=tr.stderr ** 2 * 300)
            from workbench.hessian_diagonal import exact_trace

            out.update(trace_exact=exact_trace(lf, params, batch).trace)
    return out


def jax_run(problem: dict, compile_too: bool, max_probes: int, density: bool, trace: bool = True) -> dict:
    import jax
    from matfree import decomp

    from workbench.linalg import krylov as K

    H, lf, params, batch = jax_setup(problem, "float32")
    op = H.hessian_operator(lf, params, batch)
    res: dict = {}
    v = jax.random.normal(jax.random.PRNGKey(0), (op.dim,), "float32")
    if compile_too:
        _, res["compile_hvp_s"] = timed(lambda: block(op.matvec(v)))
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        block(op.matvec(v))
    res["hvp_s"] = (time.perf_counter() - t) / reps

    for k in (1, 5):
        def top(k=k):
            r = K.top_eigenvalues(op, k, key=jax.random.PRNGKey(1), rtol=TARGET_EIG)
            block(r.eigenvectors)
            return r

        if compile_too:
            _, res[f"compile_top{k}_s"] = timed(top)
        r, dt = timed(top)
        res[f"top{k}"] = {"time_s": dt, "values": r.eigenvalues.tolist(), "matvecs": r.num_matvecs,
                          "bounds": r.error_bounds.tolist()}

    # the fixed-depth matfree loop of the previous implementation (its doubling schedule started at 40 steps)
    algo = decomp.tridiag_sym(40, reortho="full", materialize=True, custom_vjp=False)
    mf = jax.jit(lambda v0, *a: algo(op.pure_matvec, v0, *a).J_small)
    v0 = v / jax.numpy.linalg.norm(v)
    if compile_too:
        timed(lambda: block(mf(v0, *op.operands)))
    t_small, dt = timed(lambda: block(mf(v0, *op.operands)))
    res["matfree40"] = {"time_s": dt, "value": float(np.max(np.linalg.eigvalsh(np.asarray(t_small, np.float64))))}

    if not trace:
        return res

    def tr():
        return K.hutchinson_trace(op, max_probes, key=jax.random.PRNGKey(2), method="auto",
                                  target_rel_stderr=TARGET_REL_SE)

    if compile_too:
        timed(tr)
    est, dt = timed(tr)
    res["trace"] = {"time_s": dt, "mean": est.trace, "stderr": est.stderr, "matvecs": est.num_matvecs,
                    "method": est.method, "tail_fraction": est.tail_fraction, "converged": est.converged}

    from workbench.hessian_diagonal import exact_trace

    def exact():
        return exact_trace(lf, params, batch)

    if compile_too:
        timed(exact)
    ex, dt = timed(exact)
    res["trace_exact"] = {"time_s": dt, "mean": ex.trace}
    if density:
        def dens():
            return K.slq_density(op, DENSITY_STEPS, 4, key=jax.random.PRNGKey(3), grid=64)

        if compile_too:
            timed(dens)
        d, res["density_s"] = timed(dens)
        res["density_m1"] = float(d.moments[0])
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--trace-probes-run", type=int, default=10 ** 6,
                    help="run at most this many PyHessian trace probes and scale the time linearly")
    ap.add_argument("--reuse", type=str, default=None,
                    help="JSON file with the 'reference' of an earlier run (skips recomputing it)")
    ap.add_argument("--quick", action="store_true", help="256 points (a smoke run of the script)")
    ap.add_argument("--density", action="store_true", help="also the SLQ density rows")
    ap.add_argument("--no-trace", action="store_true", help="skip the trace rows (PyHessian's can take many minutes)")
    ap.add_argument("--cuda", action="store_true",
                    help="PyHessian on the GPU (cuda=True) too; the JAX side runs on JAX's default device either way. "
                         "PYHESSIAN_PYTHON names the python with torch + pyhessian (default the benchmark venv)")
    ap.add_argument("--matmul-precision", default="highest", choices=("default", "high", "highest"),
                    help="JAX matmul precision of the timed float32 runs (default highest: no TF32 on GPUs, "
                         "matching PyTorch's default for float32 matmuls)")
    args = ap.parse_args()
    n = 256 if args.quick else N_POINTS
    problem = make_problem(0, n)
    tmp = tempfile.mkdtemp()
    npz = os.path.join(tmp, "problem.npz")
    np.savez(npz, **problem)

    from workbench import config

    print(f"# {config.device_report()}; MLP {'-'.join(map(str, SIZES))} tanh, cross-entropy, N={n}", flush=True)
    ref = json.loads(Path(args.reuse).read_text())["reference"] if args.reuse else reference(problem, not args.no_trace)
    print(json.dumps({"reference": ref}), flush=True)
    # PyHessian's Hutchinson (Rademacher, like ours) needs m = Var / (0.01 tr)^2 probes for 1% relative stderr
    need = int(math.ceil(ref["trace_var"] / (TARGET_REL_SE * ref["trace"]) ** 2)) if "trace" in ref else 0
    print(f"# reference: eigsh top 6 = {ref['top']} ({ref['eigsh_matvecs']} products, {ref['eigsh_s']:.1f} s); "
          f"P = {ref['dim']}" + (f"; tr(H) = {ref['trace']:.4f} +- {ref['trace_se']:.4f}; Hutchinson probes for 1%: "
                                 f"{need}" if need else ""), flush=True)
    load_before = os.getloadavg()
    tasks = {"trace_probes": need, "trace_probes_run": args.trace_probes_run, "density": args.density,
             "density_steps": DENSITY_STEPS, "density_probes_run": 4, "cuda": args.cuda, "trace": not args.no_trace}
    jr, pr = [], []
    for rep in range(args.reps):
        order = ("jax", "pyhessian") if rep % 2 == 0 else ("pyhessian", "jax")
        for side in order:
            if side == "jax":
                with config.matmul_precision(args.matmul_precision):
                    jr.append(jax_run(problem, rep == 0, MAX_PROBES, args.density, not args.no_trace))
                print(json.dumps({"jax": jr[-1]}), flush=True)
            else:
                pr.append(run_pyhessian(npz, tasks))
                print(json.dumps({"pyhessian": pr[-1]}), flush=True)
        print(f"# rep {rep + 1}/{args.reps} done", flush=True)
    report(ref, jr, pr, args.density)
    print(f"load average (1, 5, 15 min) before the timed runs {tuple(round(x, 2) for x in load_before)}, after "
          f"{tuple(round(x, 2) for x in os.getloadavg())} on {os.cpu_count()} cores (a shared machine: other jobs "
          "ran beside these timings)")


def _med(rs, *keys):
    vals = []
    for r in rs:
        for k in keys:
            r = r[k]
        vals.append(r)
    return float(np.median(vals))


def report(ref, jr, pr, density) -> None:
    top = np.asarray(ref["top"])
    j0 = jr[0]
    ok = [p for p in pr if "error" not in p]
    p0 = ok[0] if ok else None

    def err(vals):
        vals = np.asarray(vals)
        return float(np.max(np.abs(vals - top[: len(vals)]) / np.abs(top[: len(vals)])))

    rows = []
    for k in (1, 5):
        r = j0[f"top{k}"]
        tj = _med(jr, f"top{k}", "time_s")
        rows.append((f"top {k} eigenvalue(s)", f"workbench Lanczos (rtol 1e-4)", tj, f"{r['values'][0]:.6f}",
                     f"{err(r['values']):.1e} (bound {max(b / abs(v) for b, v in zip(r['bounds'], r['values'])):.0e})",
                     f"{r['matvecs']} HVPs", None))
        if p0:
            tp = _med(ok, f"top{k}", "time_s")
            rows.append((f"top {k} eigenvalue(s)", f"PyHessian power (maxIter=100, tol=1e-3, top_n={k})", tp,
                         f"{p0[f'top{k}']['values'][0]:.6f}", f"{err(p0[f'top{k}']['values']):.1e}", "",
                         tj / tp))
    rows.append(("top eigenvalue", "matfree tridiag_sym, fixed 40 steps (previous start depth)",
                 _med(jr, "matfree40", "time_s"), f"{j0['matfree40']['value']:.6f}",
                 f"{err([j0['matfree40']['value']]):.1e}", "40 HVPs", None))
    r = j0.get("trace")
    if r:
        tj = _med(jr, "trace", "time_s")
        rows.append(("trace to 1% stderr", f"workbench auto -> {r['method']} (target_rel_stderr 0.01)", tj,
                     f"{r['mean']:.4f}", f"se {r['stderr'] / abs(r['mean']):.2%}", f"{r['matvecs']} HVPs", None))
    if r and p0:
        q = p0["trace"]
        tp = _med(ok, "trace", "time_s")
        rows.append(("trace to 1% stderr", "PyHessian Hutchinson (tol=-inf)", tp, f"{q['mean']:.4f}",
                     f"se {q['stderr'] / abs(q['mean']):.2%}",
                     f"{q['probes']} HVPs" + (f" (time x{q['probes'] / q['probes_run']:.1f} from {q['probes_run']})"
                                              if q['probes_run'] < q['probes'] else ""), tj / tp))
    ex = j0.get("trace_exact")
    if ex:
        te = _med(jr, "trace_exact", "time_s")
        rows.append(("trace (exact)", "workbench exact_trace (MLP Hessian diagonal, second-order backprop)", te,
                     f"{ex['mean']:.4f}", f"se 0 (float64 reference {ref['trace_exact']:.4f})"
                     if "trace_exact" in ref else "se 0", "0 HVPs",
                     te / _med(ok, "trace", "time_s") if (r and p0) else None))
    if density:
        rows.append(("SLQ 4 probes x 80 steps", "workbench", _med(jr, "density_s"), f"m1 {j0['density_m1']:.3g}", "",
                     "", None))
        if p0 and "density_patched" in p0:
            rows.append(("SLQ 4 probes x 80 steps", "PyHessian (patched torch.eig)", _med(ok, "density_patched", "time_s"),
                         f"m1 {np.mean(p0['density_patched']['m1']):.3g}", "", "", None))
    print()
    print(f"medians of {len(jr)} workbench and {len(ok)} PyHessian runs, alternating (order flipped every rep)")
    print("| quantity | method | time (s) | value | rel. error vs eigsh / stderr | work | workbench / PyHessian |")
    print("|---|---|---|---|---|---|---|")
    for q, m, t, v, a, w, ratio in rows:
        print(f"| {q} | {m} | {t:.2f} | {v} | {a} | {w} | {'' if ratio is None else f'{ratio:.2f}'} |")
    print()
    print(f"JAX: one HVP {_med(jr, 'hvp_s') * 1e3:.1f} ms; compile (once per model and batch shape): HVP "
          f"{j0['compile_hvp_s']:.2f} s, top-1 {j0['compile_top1_s']:.2f} s and top-5 {j0['compile_top5_s']:.2f} s "
          "(incl. their runs)")
    if p0:
        print(f"PyHessian: torch {p0['torch']}, {p0['threads']} threads, setup {p0['setup_s']:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(pyhessian_worker(sys.argv[2], json.loads(sys.argv[3]))))
    else:
        main()
