"""Report ``ntk``: empirical NTK spectra against the infinite-width kernel, across widths.

Runs the functions behind the NTK notebook (:mod:`workbench.studies.ntk`): the eigenvalues of empirical
NTKs (several seeds) beside the infinite-width NTK's (:func:`spectrum_comparison`); the relative distance
||Theta_emp - Theta_inf|| / ||Theta_inf|| against width with its fitted log-log slope (expected -1/2,
Jacot et al. 2018; :func:`width_convergence`); the Funk-Hecke eigenvalues of the kernel on the sphere with
the Gram-matrix eigenvalues as the matching experiment (:func:`sphere_spectrum`); and, with ``--drift-steps`` > 0,
the kernel drift during training for NTK vs muP parametrizations (:func:`kernel_drift`). Figures are the
notebook's (:mod:`workbench.plots.ntk`).
"""

from __future__ import annotations

import argparse

import numpy as np

from workbench.nets import ACTIVATIONS
from workbench import config
from workbench.reports import Report, Table, int_list, nonnegative_int, positive_float, positive_int

DESCRIPTION = __doc__.split("\n\n")[1]
#: kernel spectra span many decades: float64 unless asked otherwise
DEFAULT_PRECISION = "float64"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=("sphere", "gaussian", "digits"), default="sphere", help="inputs")
    p.add_argument("--num-points", type=positive_int, default=config.pick(16, 64), metavar="N",
                   help="number of inputs (the kernels are N x N)")
    p.add_argument("--dim", type=positive_int, default=3, help="input dimension (digits: always 64)")
    p.add_argument("--depth", type=positive_int, default=2, help="hidden layers")
    p.add_argument("--width", type=positive_int, default=config.pick(256, 1024), help="width of the spectrum panel")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="activation")
    p.add_argument("--parametrization", choices=("ntk", "standard"), default="ntk", help="parametrization")
    p.add_argument("--w-std", type=positive_float, default=2 ** 0.5, help="weight standard deviation sigma_w")
    p.add_argument("--widths", type=int_list, default=config.pick([32, 128, 512], [64, 128, 256, 512, 1024, 2048]),
                   metavar="W1,W2,...", help="widths of the convergence study (at least two)")
    p.add_argument("--seeds", type=positive_int, default=config.pick(2, 4), help="random nets per width")
    p.add_argument("--max-degree", type=positive_int, default=config.pick(8, 20),
                   help="largest spherical-harmonic degree of the sphere spectrum (>= 2)")
    p.add_argument("--drift-steps", type=nonnegative_int, default=config.pick(0, 100),
                   help="gradient-descent steps of the kernel-drift study (0: skip it)")
    p.add_argument("--drift-lr", type=positive_float, default=0.5, help="learning rate of the drift study")


def build(args: argparse.Namespace) -> Report:
    import jax.numpy as jnp

    from workbench.nets import MLP
    from workbench.plots import ntk as plots
    from workbench.studies import ntk as study

    if len(args.widths) < 2:
        raise ValueError(f"--widths needs at least two widths to fit a slope, got {args.widths}")
    if args.max_degree < 2:
        raise ValueError(f"--max-degree must be >= 2, got {args.max_degree}")
    net = MLP(depth=args.depth, width=args.width, activation=args.activation, w_std=args.w_std, b_std=0.0,
              parametrization=args.parametrization)
    x = study.make_inputs(args.dataset, args.num_points, args.dim, seed=0)
    seeds = list(range(args.seeds))
    spec = study.spectrum_comparison(net, x, seeds=seeds, progress=args.progress)
    conv = study.width_convergence(net, x, args.widths, seeds=seeds, progress=args.progress)
    sph = study.sphere_spectrum(net, max(args.dim, 2), args.max_degree, num_points=args.num_points)
    figures = [("spectrum", plots.spectrum(spec)), ("convergence", plots.convergence(conv)),
               ("sphere", plots.sphere(sph))]
    tables = []
    k = min(8, spec.infinite.size)
    emp = np.asarray(spec.empirical)
    tables.append(Table(f"top {k} NTK eigenvalues: infinite width vs width {spec.width} (mean +- std over seeds)",
                        ["index", "infinite width", "empirical mean", "empirical std", "relative difference"],
                        [[i + 1, spec.infinite[i], emp[:, i].mean(), emp[:, i].std(),
                          (emp[:, i].mean() - spec.infinite[i]) / spec.infinite[i]] for i in range(k)]))
    tables.append(Table("distance to the infinite-width NTK vs width (mean over seeds)",
                        ["width", "Frobenius (relative)", "spectral (relative)"],
                        [[int(w), conv.frobenius[i].mean(), conv.spectral[i].mean()]
                         for i, w in enumerate(conv.widths)]
                        + [["fitted slope (theory -0.5)", conv.slope_frobenius, conv.slope_spectral]]))
    tables.append(Table(f"Mercer eigenvalues on S^{sph.dim - 1} (decay exponent {sph.decay:.3g}; "
                        f"relu NTK theory: -{sph.dim})", ["degree k", "mu_k", "multiplicity"],
                        [[int(d), sph.mu[i], int(sph.multiplicities[i])] for i, d in enumerate(sph.degrees)]))
    if args.drift_steps > 0:
        y = jnp.sin(3.0 * x[:, :1])
        drift = study.kernel_drift(net, x, y, args.widths, lr=args.drift_lr, num_steps=args.drift_steps,
                                   seeds=seeds, progress=args.progress)
        figures.append(("drift", plots.drift(drift)))
        tables.append(Table("kernel drift ||Theta_T - Theta_0|| / ||Theta_0|| after training (mean over seeds)",
                            ["parametrization", *[f"width {int(w)}" for w in drift.widths], "slope vs width"],
                            [[par, *np.nanmean(drift.drift[a, :, :, -1], axis=1), drift.slopes[a]]
                             for a, par in enumerate(drift.parametrizations)]))
    params = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in vars(args).items()
              if k not in ("command", "study", "out", "progress", "fast")}
    return Report(
        study="ntk", title="NTK eigenspectra: empirical vs infinite-width kernels",
        summary=(f"{args.num_points} {args.dataset} inputs. The empirical NTK concentrates "
                 f"around its infinite-width limit: the fitted slope of the relative Frobenius distance against "
                 f"width is {conv.slope_frobenius:.3f} (theory: -0.5). {spec.info}"),
        figures=figures, tables=tables, parameters=params,
        references=["Jacot, Gabriel, Hongler 2018, Neural Tangent Kernel", "Lee et al. 2019, Wide neural networks "
                    "of any depth evolve as linear models", "Bietti & Mairal 2019, On the inductive bias of NTKs",
                    "Yang & Hu 2021, Feature learning in infinite-width networks (muP)"],
    )
