"""Learning rate vs batch size: worked values, the noisy-quadratic control, estimator accuracy, and timings.

Usage:
    python benchmarks/lr_batch.py                 # fast-mode study (seconds to a minute on a CPU)
    python benchmarks/lr_batch.py --full          # also the notebook's full default sweep (minutes)
    python benchmarks/lr_batch.py --full --results-dir runs/lr_batch   # resumable: rerun to continue

Prints tables; asserts nothing (tests live in tests/test_lr_batch.py).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from workbench import config
from workbench import experiments as ex
from workbench import lr_batch as lb
from workbench.studies.lr_batch import build_problem, default_config, fit_table, quadratic_study, run_study


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n## {title}")
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))


def worked_values() -> None:
    g2, tr = lb.noise_scale_estimators(11.0, 1.1, 10, 1000)
    s, _ = lb.critical_batch_tradeoff(1000, 1e5, 100)
    lr, b = lb.step_law(1e9, 1e11)
    rows = [
        ["eps_opt(100), eps_max=0.1, B_noise=100", f"{lb.mccandlish_optimal_lr(100, 0.1, 100):.7g}", "0.05"],
        ["eps_opt(1000)", f"{lb.mccandlish_optimal_lr(1000, 0.1, 100):.7g}", "0.0909091"],
        ["B_simple (|G|^2=1, tr Sigma=100)", f"{lb.simple_noise_scale(1, 100):.6g}", "100"],
        ["two-batch |G|^2 (11 at B=10, 1.1 at B=1000)", f"{g2:.6g}", "1.0"],
        ["two-batch tr(Sigma)", f"{tr:.6g}", "100"],
        ["B_crit (S_min=1000, E_min=1e5)", f"{lb.mccandlish_critical_batch(1000, 1e5):.6g}", "100"],
        ["S at B=100", f"{s:.6g}", "2000"],
        ["1-d SGD limit, h in {0,2}, B=1,3,10", str(np.round(lb.sgd_stability_limit_1d([1, 3, 10], 1, 1), 6)),
         "2B/(B+1)"],
        ["Step Law lr (N=1e9, D=1e11)", f"{lr:.5g}", "1.6325e-3"],
        ["Step Law B tokens", f"{b:.4g}", "1.108e6"],
        ["Kaplan B_crit(L=3) tokens", f"{lb.kaplan_critical_batch(3.0):.4g}", "about 1.07e6"],
    ]
    table("Worked values", ["quantity", "computed", "expected"], rows)


def quadratic_control() -> None:
    start = time.perf_counter()
    q = quadratic_study(dim=16, batch_sizes=(1, 4, 16, 64, 256, 1024), num_lrs=33, seeds_one_step=2000)
    secs = time.perf_counter() - start
    rows = []
    for i, b in enumerate(q.one_step.batch_sizes):
        rows.append([int(b), f"{q.eps_opt[i]:.4g}", f"{q.measured_optimal.value[i]:.4g}",
                     f"{q.measured_optimal.value[i] / q.eps_opt[i]:.3f}", f"{q.stability_limit[i]:.4g}",
                     f"{q.measured_max_stable.value[i]:.4g}",
                     f"{q.measured_max_stable.value[i] / q.stability_limit[i]:.3f}"])
    table(f"Noisy quadratic (dim 16, B_noise = {q.stats.b_noise:.3g}; grid ratio {q.grid_ratio:.3f}; {secs:.1f} s)",
          ["B", "eps_opt", "measured opt", "ratio", "ms limit", "measured max", "ratio"], rows)


def estimators(cfg) -> None:
    prob = build_problem(cfg)
    data = (prob.x, prob.y)
    t0 = time.perf_counter()
    st = ex.gradient_noise_stats(prob.loss_fn, prob.params0, data)
    t1 = time.perf_counter()
    rows = []
    for b_small, b_big in ((1, 32), (4, cfg.num_data // 2)):
        est = ex.two_batch_noise_scale(prob.loss_fn, prob.params0, data, b_small, b_big, num_draws=400,
                                       key=jax.random.PRNGKey(b_small))
        for name, exact, got, se in (("|G|^2", st.g2, est.g2, est.g2_se), ("tr(Sigma)", st.tr_sigma, est.tr_sigma,
                                                                          est.tr_sigma_se),
                                     ("B_simple", st.b_simple, est.b_simple, est.b_simple_se)):
            rows.append([f"{b_small}/{b_big}", name, f"{exact:.4g}", f"{got:.4g}", f"{se:.2g}",
                         f"{(got - exact) / se:+.2f}"])
    t2 = time.perf_counter()
    c = ex.curvature_stats(prob.loss_fn, prob.params0, data)
    t3 = time.perf_counter()
    table(f"Two-batch estimators vs exact at init ({prob.description}; 400 draws per size)",
          ["B small/big", "quantity", "exact", "estimate", "stderr", "z"], rows)
    table("Statistics timings", ["step", "seconds"],
          [["exact |G|^2, tr Sigma, G^T H G, tr H Sigma", f"{t1 - t0:.2f}"],
           ["two-batch estimates (2 x 2 x 400 draws)", f"{t2 - t1:.2f}"],
           [f"curvature (lambda1={c.lambda1:.3g}, a={c.curv_mean:.3g}, s={c.curv_std:.3g}, sigma2={c.sigma2:.3g})",
            f"{t3 - t2:.2f}"]])


def study(cfg, label: str) -> None:
    start, cpu0 = time.perf_counter(), time.process_time()
    s = run_study(cfg, progress=False)
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu0
    rows = []
    for opt, res in s.sweeps.items():
        for i, b in enumerate(res.batch_sizes):
            rows.append([opt, int(b), f"{s.max_stable[opt].value[i]:.3g}", f"{s.optimal[opt].value[i]:.3g}",
                         f"{s.steps_to_target[opt][i]:.0f}", f"{res.seconds[i]:.2f}"])
    n_points = sum(r.batch_sizes.size for r in s.sweeps.values())
    table(f"{label}: {len(cfg.optimizers)} optimizers x {len(cfg.batch_sizes)} B x {cfg.num_lrs} lr x {cfg.seeds} seeds "
          f"x {cfg.num_steps} steps (target loss {s.target_loss:.3g})",
          ["optimizer", "B", "max stable lr", "optimal lr", "steps to target", "seconds"], rows)
    print(fit_table(s))
    print(f"{label}: TOTAL {secs:.1f} s wall, {cpu:.1f} s CPU (all threads) for {n_points} (optimizer, B) points "
          f"({s.info})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also run the notebook's full default sweep")
    parser.add_argument("--results-dir", default=None, help="resume files for the full sweep")
    args = parser.parse_args()
    print(config.device_report())
    worked_values()
    quadratic_control()
    fast = default_config(fast=True)
    estimators(fast)
    study(fast, "fast-mode sweep")
    if args.full:
        full = default_config(fast=False, results_dir=args.results_dir)
        study(full, "full default sweep")


if __name__ == "__main__":
    main()
