"""Report ``lr-batch``: learning rate against batch size, measured sweeps beside every theory curve.

Runs :func:`workbench.studies.lr_batch.run_study` (the function behind the learning-rate notebook) with
the notebook's defaults (:func:`workbench.studies.lr_batch.default_config`, smaller in fast mode) and the
options below, and draws the notebook's figures (:func:`workbench.plots.lr_batch.study_figures`): the
loss heat map over (B, lr), the largest stable and optimal learning rates against B with the theory curves
(GD 2/lambda1, 1-d mean-square SGD, the random-matrix 2/lambda'(B), McCandlish's eps_opt(B)) and fitted
exponents, and the steps/examples trade-off.
"""

from __future__ import annotations

import argparse

import numpy as np

from workbench.reports import (Report, Table, float_list, int_list, nonnegative_int, positive_float, positive_int,
                               real_number, seed)

DESCRIPTION = __doc__.split("\n\n")[1]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-sizes", type=int_list, default=None, metavar="B1,B2,...",
                   help="batch sizes (default: the notebook's, 8,64 in fast mode)")
    p.add_argument("--optimizers", default=None, metavar="sgd,adam",
                   help="comma-separated optimizers among sgd, momentum, adam (default: the notebook's)")
    p.add_argument("--lr-range", type=float_list, default=None, metavar="MIN,MAX",
                   help="learning-rate grid end points (log grid)")
    p.add_argument("--num-lrs", type=positive_int, default=None, help="number of learning rates on the grid")
    p.add_argument("--num-steps", type=positive_int, default=None, help="training steps per run")
    p.add_argument("--seeds", type=positive_int, default=None, help="seeds per (B, lr)")
    p.add_argument("--num-data", type=positive_int, default=None, metavar="N", help="data set size")
    p.add_argument("--width", type=positive_int, default=None, help="hidden width")
    p.add_argument("--depth", type=nonnegative_int, default=None, help="hidden layers")
    p.add_argument("--dataset", choices=("teacher", "digits"), default=None, help="data set")
    p.add_argument("--momentum", type=real_number, default=None, help="momentum of the momentum optimizer, in [0, 1)")
    p.add_argument("--target-loss", type=positive_float, default=None,
                   help="loss that defines steps-to-target (default: reached by every batch size)")
    p.add_argument("--seed", type=seed, default=None, help="random seed")


def _overrides(args: argparse.Namespace) -> dict:
    o: dict = {}
    for name in ("num_lrs", "num_steps", "seeds", "num_data", "width", "depth", "dataset", "momentum",
                 "target_loss", "seed"):
        value = getattr(args, name)
        if value is not None:
            o[name] = value
    if args.batch_sizes is not None:
        o["batch_sizes"] = tuple(args.batch_sizes)
    if args.optimizers is not None:
        o["optimizers"] = tuple(s for s in args.optimizers.replace(" ", "").split(",") if s)
    if args.lr_range is not None:
        if len(args.lr_range) != 2 or not args.lr_range[0] < args.lr_range[1]:
            raise ValueError(f"--lr-range must be MIN,MAX with MIN < MAX, got {args.lr_range}")
        o["lr_min"], o["lr_max"] = args.lr_range
    return o


def build(args: argparse.Namespace) -> Report:
    import dataclasses

    from workbench.plots.lr_batch import study_figures
    from workbench.studies.lr_batch import default_config, lr_curves, run_study

    cfg = default_config(**_overrides(args))
    study = run_study(cfg, progress=args.progress)
    figures = list(study_figures(study, lr_curves(study)).items())

    th = study.theory
    scales = Table("noise and curvature scales at initialization", ["quantity", "value"], [
        ["B_noise = tr(H Sigma) / G^T H G (McCandlish)", th.b_noise],
        ["B_simple = tr(Sigma) / |G|^2", th.b_simple],
        ["RMT critical batch B*", th.b_star_rmt],
        ["eps_max = |G|^2 / G^T H G", th.eps_max],
        ["top Hessian eigenvalue lambda1", study.curvature.lambda1],
        ["GD stability limit 2/lambda1", 2.0 / study.curvature.lambda1],
        ["per-entry Hessian noise sigma^2", study.curvature.sigma2],
        ["parameters P", study.curvature.num_params],
        ["target loss (steps-to-target)", study.target_loss],
    ])
    rows = []
    for opt, res in study.sweeps.items():
        for i, b in enumerate(res.batch_sizes):
            rows.append([opt, int(b), study.max_stable[opt].value[i], study.optimal[opt].value[i],
                         study.steps_to_target[opt][i]])
    per_b = Table("measured learning rates per batch size", ["optimizer", "B", "largest stable lr", "optimal lr",
                                                               "steps to target"], rows)
    theory_rows = []
    for i in np.unique(np.linspace(0, len(th.batch_sizes) - 1, 8).astype(int)):
        theory_rows.append([th.batch_sizes[i], *[np.asarray(c)[i] for c in th.curves.values()]])
    theory = Table("theory curves (learning rate) at selected B", ["B", *th.curves], theory_rows)
    fits = Table("fitted exponents lr ~ B^alpha", ["fit", "alpha", "+-", "points"],
                 [[name, f.exponent, f.exponent_se, f.num_points] for name, f in study.fits.items()])
    return Report(
        study="lr-batch", title="Learning rate versus batch size: theory curves against measured sweeps",
        summary=(f"{study.description}. Sweeps over batch sizes, learning rates and seeds for "
                 f"{', '.join(study.sweeps)}; the theory curves are evaluated from statistics measured at "
                 f"initialization. {study.info}"),
        figures=figures, tables=[scales, per_b, fits, theory],
        parameters={k: (", ".join(map(str, v)) if isinstance(v, tuple) else v)
                    for k, v in dataclasses.asdict(cfg).items()} | {"precision": args.precision},
        references=["McCandlish et al. 2018, An empirical model of large-batch training",
                    "Goyal et al. 2017 (linear scaling rule); Malladi et al. 2022 (square-root rule for Adam)",
                    "Wu, Ma & E 2018 (SGD linear stability)",
                    "Granziol et al. 2022, Learning rates as a function of batch size (JMLR)"],
    )
