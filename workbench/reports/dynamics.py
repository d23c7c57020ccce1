"""Report ``dynamics``: closed-form kernel (linearized) training against real training, and learning curves.

Runs the functions behind the generalization-dynamics notebook (:mod:`workbench.studies.dynamics`):
NTK-parametrized MLPs of several widths trained by full-batch GD on the circle beside the closed-form
discrete GD of the infinite-width NTK started from each net's own f_0 (:func:`kernel_vs_training`); the
Advani & Saxe generalization and training errors against alpha = P/N and time, with simulation points
(:func:`advani_saxe_study`); and the spectral learning curve of kernel regression on the sphere beside
simulated kernel regression (:func:`sphere_learning_curve_study`). Figures are the notebook's
(:mod:`workbench.plots.dynamics`).
"""

from __future__ import annotations

import argparse

import numpy as np

from workbench.nets import ACTIVATIONS
from workbench import config
from workbench.reports import Report, Table, int_list, positive_float, positive_int, real_number

DESCRIPTION = __doc__.split("\n\n")[1]
#: the spectral learning-curve theory needs float64 (in float32 it comes out flat): float64 unless asked
DEFAULT_PRECISION = "float64"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--widths", type=int_list, default=config.pick([64, 512], [64, 256, 1024, 4096]),
                   metavar="W1,W2,...", help="widths of the trained networks")
    p.add_argument("--depth", type=positive_int, default=1, help="hidden layers")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="activation")
    p.add_argument("--lr-fraction", type=positive_float, default=0.5,
                   help="learning rate as a fraction of the GD stability limit 2/lambda_max of the NTK")
    p.add_argument("--num-steps", type=positive_int, default=config.pick(60, 400), help="GD steps")
    p.add_argument("--n-train", type=positive_int, default=config.pick(8, 12), help="training points on the circle")
    p.add_argument("--num-seeds", type=positive_int, default=config.pick(2, 3), help="networks per width")
    p.add_argument("--noise-std", type=real_number, default=0.0, help="label noise standard deviation (>= 0)")
    p.add_argument("--advani-noise-var", type=positive_float, default=0.25,
                   help="label-noise variance of the Advani & Saxe student-teacher")
    p.add_argument("--sim-trials", type=positive_int, default=config.pick(3, 20),
                   help="trials per simulated point (Advani & Saxe, learning curve)")
    p.add_argument("--no-simulation", dest="simulate", action="store_false",
                   help="theory curves only (skip the simulated points)")


def build(args: argparse.Namespace) -> Report:
    from workbench.plots import dynamics as plots
    from workbench.studies import dynamics as study

    if args.noise_std < 0:
        raise ValueError(f"--noise-std must be >= 0, got {args.noise_std}")
    kd = study.kernel_vs_training(widths=tuple(args.widths), depth=args.depth, activation=args.activation,
                                  lr_fraction=args.lr_fraction, num_steps=args.num_steps,
                                  record_every=max(1, args.num_steps // 40), n_train=args.n_train,
                                  num_seeds=args.num_seeds, noise_std=args.noise_std, progress=args.progress)
    adv = study.advani_saxe_study(noise_var=args.advani_noise_var, num_features=config.pick(60, 200),
                                  num_trials=args.sim_trials, simulate=args.simulate)
    lc = study.sphere_learning_curve_study(num_trials=args.sim_trials, simulate=args.simulate,
                                           num_test=config.pick(200, 500))
    last = int(kd.steps[-1])
    figures = [("functions", plots.function_snapshot(kd, last)), ("losses", plots.loss_curves(kd)),
               ("modes", plots.mode_residuals(kd)), ("width_errors", plots.width_errors(kd)),
               ("advani_saxe", plots.advani_saxe_alpha(adv)), ("learning_curve", plots.learning_curve(lc))]
    rows = []
    for w in kd.widths:
        rows.append([int(w), np.mean(kd.rel_error[w]), np.mean(kd.measured_train_loss[w][:, -1]),
                     np.mean(kd.predicted_train_loss[w][:, -1]), np.mean(kd.measured_test_mse[w][:, -1]),
                     np.mean(kd.predicted_test_mse[w][:, -1]), int(np.sum(kd.diverged[w]))])
    kernel_table = Table(f"trained nets vs closed-form NTK dynamics after {last} steps (mean over seeds)",
                         ["width", "max relative error", "train loss (net)", "train loss (NTK)",
                          "test MSE (net)", "test MSE (NTK)", "diverged runs"], rows)
    lr_table = Table("learning rate", ["quantity", "value"],
                     [["lr", kd.lr], ["GD stability limit 2/lambda_max", kd.lr_max],
                      ["top NTK eigenvalues", ", ".join(f"{v:.4g}" for v in kd.eigenvalues[:5])]])
    adv_rows = [[a, *adv.E_g_time[i][[0, len(adv.t_grid) // 2, -1]], adv.best_time[i]]
                for i, a in enumerate(adv.sim_alphas)]
    adv_table = Table("Advani & Saxe: E_g at early, middle and late times; early-stopping time",
                      ["alpha", f"E_g(t={adv.t_grid[0]:.3g})", f"E_g(t={adv.t_grid[len(adv.t_grid) // 2]:.3g})",
                       f"E_g(t={adv.t_grid[-1]:.3g})", "best time"], adv_rows)
    tables = [kernel_table, lr_table, adv_table]
    if lc.sim is not None:
        theory_at = np.interp(lc.sim_p, lc.p_grid, lc.E_g_theory)
        tables.append(Table("learning curve on the sphere: theory vs kernel-regression simulation",
                            ["samples p", "E_g theory", "E_g simulated", "standard error"],
                            [[int(p), theory_at[i], lc.sim.E_g[i], lc.sim.E_g_sem[i]]
                             for i, p in enumerate(lc.sim_p)]))
    params = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in vars(args).items()
              if k not in ("command", "study", "out", "progress", "fast")}
    return Report(
        study="dynamics", title="Generalization dynamics: kernel (linearized) training vs real training",
        summary=(f"Wide networks follow the closed-form NTK dynamics: the largest relative error of the test "
                 f"predictions falls with width ({', '.join(f'{w}: {np.mean(kd.rel_error[w]):.3g}' for w in kd.widths)}). "
                 f"{kd.info}"),
        figures=figures, tables=tables, parameters=params,
        references=["Jacot, Gabriel, Hongler 2018; Lee et al. 2019 (linearized training)",
                    "Advani & Saxe 2017, High-dimensional dynamics of generalization error in neural networks",
                    "Bordelon, Canatar, Pehlevan 2020, Spectrum dependent learning curves in kernel regression"],
    )
