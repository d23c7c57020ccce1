"""Report ``hessian``: batch-Hessian spectra at several batch sizes against the random-matrix model.

Runs :func:`workbench.studies.hessian.batch_hessian_study` (the function behind the batch-Hessian notebook)
on an MLP fitted to a teacher (the notebook's data), and shows the measured top eigenvalues of the batch curvature H_B
against the random-matrix prediction (spiked Wigner / Marchenko-Pastur from the fitted noise level,
docs/theory.md#8-the-batch-hessian), the noise level ||H_B - H||_F^2 / P^2 against 1/B - 1/N, and the SLQ spectral densities.
"""

from __future__ import annotations

import argparse

import numpy as np
import plotly.graph_objects as go

from workbench.nets import ACTIVATIONS
from workbench import config
from workbench.reports import Report, Table, int_list, nonnegative_int, positive_float, positive_int, seed

DESCRIPTION = __doc__.split("\n\n")[1]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-sizes", type=int_list, default=config.pick([4, 16, 64], [4, 16, 64, 256, 1024]),
                   metavar="B1,B2,...", help="batch sizes B, each in [1, N]")
    p.add_argument("--num-data", type=positive_int, default=config.pick(128, 2048), metavar="N",
                   help="data set size N")
    p.add_argument("--dataset", choices=("synthetic", "digits"), default="synthetic",
                   help="the notebook's data sets: Gaussian inputs with a teacher, or scikit-learn digits")
    p.add_argument("--width", type=positive_int, default=config.pick(16, 64), help="hidden width")
    p.add_argument("--depth", type=positive_int, default=2, help="number of hidden layers")
    p.add_argument("--activation", choices=ACTIVATIONS, default="tanh", help="activation")
    p.add_argument("--kind", choices=("hessian", "ggn"), default="hessian", help="curvature matrix")
    p.add_argument("--loss", choices=("mse", "cross_entropy"), default="mse", help="loss (mean over the batch)")
    p.add_argument("--num-batches", type=positive_int, default=config.pick(2, 5), help="batches drawn per B")
    p.add_argument("--top-k", type=positive_int, default=3, help="top eigenvalues kept per batch")
    p.add_argument("--train-steps", type=nonnegative_int, default=config.pick(20, 200),
                   help="full-batch GD steps before measuring (0: at initialization)")
    p.add_argument("--lr", type=positive_float, default=0.1, help="learning rate of those steps")
    p.add_argument("--seed", type=seed, default=0, help="random seed")


def _figures(s) -> list[tuple[str, go.Figure]]:
    """The notebook's figures (:mod:`workbench.plots.hessian`)."""
    from workbench.plots.hessian import density_figure, lr_max_figure, top_eigenvalue_figure

    return [("top_eigenvalue", top_eigenvalue_figure(s)), ("lr_max", lr_max_figure(s)),
            ("densities", density_figure(s))]


def build(args: argparse.Namespace) -> Report:
    import jax

    from workbench.nets import MLP
    from workbench.studies.hessian import batch_hessian_study, make_data

    if max(args.batch_sizes) > args.num_data:
        raise ValueError(f"--batch-sizes must be <= --num-data={args.num_data}, got {args.batch_sizes}")
    x, y, data_description = make_data(args.dataset, args.loss, args.num_data, seed=args.seed)
    w_std = 2 ** 0.5 if args.activation == "relu" else 1.0  # as the notebook's panel
    net = MLP(depth=args.depth, width=args.width, activation=args.activation, w_std=w_std, b_std=0.1,
              out_dim=int(y.shape[1]))
    k_study = jax.random.PRNGKey(args.seed)
    s = batch_hessian_study(net, x, y, args.batch_sizes, loss=args.loss, kind=args.kind,
                            num_batches=args.num_batches, top_k=args.top_k, key=k_study,
                            train_steps=args.train_steps, lr=args.lr, progress=args.progress)
    top = np.asarray(s.batch_top)[..., 0]
    rows = [[int(b), top[i].mean(), top[i].std(), s.prediction.top[i], s.prediction.edge[i], s.noise_var[i],
             s.wigner_edge[i], np.asarray(s.noise_top)[i].mean(), 2.0 / top[i].mean()]
            for i, b in enumerate(s.batch_sizes)]
    table = Table("top eigenvalue of H_B: measured vs predicted",
                  ["B", "measured top (mean)", "std over batches", "predicted top", "predicted bulk edge",
                   "noise s^2", "Wigner edge 2 sqrt(s^2 P)", "measured top of H_B - H", "2 / top (lr max)"], rows)
    full = Table("full-data curvature", ["quantity", "value"],
                 [["top eigenvalues", ", ".join(f"{v:.4g}" for v in np.asarray(s.full_top))],
                  ["Ritz residuals", ", ".join(f"{v:.2g}" for v in np.asarray(s.full_residuals))],
                  ["fitted sigma^2", f"{s.fit.sigma2:.4g} +- {s.fit.sigma2_stderr:.2g}"],
                  ["noise exponent (s^2 ~ B^e, B <= N/10)", s.fit.exponent],
                  ["parameters P", s.num_params], ["training steps done", s.train_steps],
                  ["diverged at step", s.diverged_at], ["study seconds", s.elapsed_s]])
    return Report(
        study="hessian", title="Batch-Hessian spectra across batch sizes vs random-matrix bounds",
        summary=(f"{data_description}; {net.describe()}. Measured top eigenvalues of the batch curvature (Lanczos) against the random-matrix model: "
                 "H_B = H + E_B with a noise level fitted from ||H_B - H||_F^2; the table gives, per batch size, "
                 "the measurement, the prediction and the implied largest stable learning rate 2/lambda_max."),
        figures=_figures(s), tables=[table, full],
        parameters={k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in vars(args).items()
                    if k not in ("command", "study", "out", "progress", "fast")},
        device=s.device,
        references=["Sagun et al. 2017, Empirical analysis of the Hessian of over-parametrized neural networks",
                    "Granziol et al. 2022, Learning rates as a function of batch size: a random matrix theory "
                    "approach (JMLR)", "Baik, Ben Arous, Peche 2005 (BBP transition)"],
    )
