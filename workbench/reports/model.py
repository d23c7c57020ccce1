"""Reports on your own model: ``workbench report ntk|hessian|noise|lr-batch --model module:factory --data NAME``.

``--model module:factory`` names a Python function that returns a model (a Flax NNX module, ``(linen_module,
variables)``, an Equinox module, a workbench net, or ``(apply_fn, params)``; see :mod:`workbench.models`). The
module is imported with the current folder first on ``sys.path`` (``examples.flax_cnn:make`` from the
repository root); the text is never evaluated. Without ``--model`` a small workbench MLP is used. ``--data``
picks a data set of :mod:`workbench.datasets` and ``--n`` the number of training examples. An unknown
module or factory, a factory that raises, or a model whose outputs do not fit the labels is a one-line error
(exit status 2) and no file is written.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from workbench import config
from workbench.models import builtin_model, prepare, resolve_factory
from workbench.reports import Report, Table, int_list, positive_int

DESCRIPTION = __doc__.split("\n\n")[1]
STUDIES = ("ntk", "hessian", "noise", "lr-batch")
#: options of the built-in MLP set-ups that a --model run does not use (left out of the report's parameters)
_MLP_ONLY = frozenset({"dataset", "num_points", "dim", "depth", "width", "activation", "parametrization", "w_std",
                       "widths", "max_degree", "drift_lr", "num_data", "train_steps", "lr", "noise_std", "momentum",
                       "target_loss"})


# ----------------------------------------------------------------------------- command line
def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--data``, ``--n`` (and ``--loss`` where the study has none) on a study's sub-parser."""
    from workbench.datasets import NAMES

    p.add_argument("--model", default=None, metavar="MODULE:FACTORY",
                   help="your model: a function returning a Flax/Equinox/workbench model (e.g. examples.flax_cnn:make); "
                        "with it the study runs on --data instead of its built-in MLP set-up")
    p.add_argument("--data", choices=NAMES, default="digits", help="data set for --model (workbench.datasets)")
    p.add_argument("--n", type=positive_int, default=config.pick(128, 512), metavar="N",
                   help="training examples for --model")
    if "--loss" not in p._option_string_actions:
        p.add_argument("--loss", choices=("mse", "cross_entropy"), default="cross_entropy",
                       help="loss for --model (mean over the batch)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``workbench report noise`` (the model options come from :func:`add_model_arguments`)."""
    p.add_argument("--batch-sizes", type=int_list, default=None, metavar="B1,B2,...",
                   help="batch sizes of the |G_B|^2 measurements (default: N/32, N/8, N/2)")
    p.add_argument("--num-draws", type=positive_int, default=config.pick(16, 64), help="random batches per size")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _setup(args: argparse.Namespace):
    from workbench.datasets import load

    train = load(args.data, "train", n=min(args.n, _split_size(args.data, "train")), seed=int(getattr(args, "seed", 0) or 0))
    if args.model:
        obj = resolve_factory(args.model)
    else:
        obj = builtin_model("mlp", tuple(train.x.shape[1:]), train.num_classes)
    model, x = prepare(obj, train.x, train.y, getattr(args, "loss", "mse"))
    return model, x, train


def _split_size(name: str, split: str) -> int:
    from workbench.datasets import SPECS

    spec = SPECS[name]
    return spec.num_train if split == "train" else spec.num_total - spec.num_train


def build(args: argparse.Namespace) -> Report:
    """Run the study named by ``args.study`` on the model and data of ``args``."""
    from workbench.studies import model as S

    model, x, train = _setup(args)
    y = train.y
    params = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in vars(args).items()
              if k not in ("command", "study", "out", "progress", "fast") and k not in _MLP_ONLY}
    head = f"{model.describe}; {train.description}."
    seed = int(getattr(args, "seed", 0) or 0)
    if args.study == "ntk":
        from workbench.datasets import load
        from workbench.plots.model import kernel_drift, linearized_vs_real, ntk_spectrum

        test = load(args.data, "test", n=min(max(8, args.n // 4), _split_size(args.data, "test")), seed=seed)
        xt = test.x.reshape((test.x.shape[0],) + x.shape[1:])
        steps = getattr(args, "drift_steps", 0) or config.pick(20, 100)
        s = S.ntk_study(model, (x, y), (xt, test.y), num_steps=steps, record_every=max(1, steps // 20),
                        progress=args.progress)
        figs = [("ntk_spectrum", ntk_spectrum(s)), ("linearized", linearized_vs_real(s)), ("drift", kernel_drift(s))]
        rows = [["largest NTK eigenvalue", s.eigenvalues[0]], ["learning rate", s.lr],
                ["linearized GD limit 2n/lambda_max", s.lr_max], ["final train loss (network)", s.measured_train_loss[-1]],
                ["final train loss (linearized)", s.predicted_train_loss[-1]],
                ["final test loss (network)", s.measured_test_loss[-1]],
                ["final test loss (linearized)", s.predicted_test_loss[-1]],
                ["final kernel drift", s.drift[-1] if s.drift.size else None],
                ["diverged at step", s.diverged_step if s.diverged_step >= 0 else None]]
        tables = [Table("NTK and linearized dynamics", ["quantity", "value"], rows)]
        title, refs = "Your model: NTK spectrum, kernel drift, linearized vs real training", [
            "Jacot, Gabriel, Hongler 2018, Neural Tangent Kernel", "Lee et al. 2019, Wide neural networks of any depth "
            "evolve as linear models under gradient descent"]
    elif args.study == "hessian":
        from workbench.plots.hessian import density_figure, lr_max_figure, top_eigenvalue_figure

        bs = [b for b in args.batch_sizes if b <= x.shape[0]] or [x.shape[0]]
        s = S.hessian_study(model, (x, y), bs, loss=args.loss, kind=args.kind, num_batches=args.num_batches,
                            top_k=args.top_k, key=jax.random.PRNGKey(seed), progress=args.progress)
        figs = [("top_eigenvalue", top_eigenvalue_figure(s)), ("lr_max", lr_max_figure(s)),
                ("densities", density_figure(s))]
        top = np.asarray(s.batch_top)[..., 0]
        tables = [Table("top eigenvalue of H_B: measured vs predicted",
                        ["B", "measured top (mean)", "predicted top", "noise s^2"],
                        [[int(b), top[i].mean(), s.prediction.top[i], s.noise_var[i]]
                         for i, b in enumerate(s.batch_sizes)]),
                  Table("full-data curvature", ["quantity", "value"],
                        [["top eigenvalues", ", ".join(f"{v:.4g}" for v in np.asarray(s.full_top))],
                         ["fitted sigma^2", s.fit.sigma2], ["parameters P", s.num_params]])]
        title, refs = "Your model: batch-Hessian spectra vs random-matrix bounds", [
            "Granziol et al. 2022, Learning rates as a function of batch size: a random matrix theory approach"]
    elif args.study == "noise":
        from workbench.plots.model import noise_scale

        s = S.noise_study(model, (x, y), loss=args.loss, batch_sizes=args.batch_sizes, num_draws=args.num_draws,
                          key=jax.random.PRNGKey(seed))
        figs = [("noise_scale", noise_scale(s))]
        rows = [["|G|^2", s.g2], ["tr(Sigma)", s.tr_sigma], ["B_simple (exact)", s.b_simple],
                ["B_simple (two-batch)", f"{s.two_batch.b_simple:.4g} +- {s.two_batch.b_simple_se:.2g}"],
                ["B_noise", s.stats.b_noise if s.stats else None], ["eps_max", s.stats.eps_max if s.stats else None]]
        tables = [Table("gradient noise scale", ["quantity", "value"], rows)]
        title, refs = "Your model: gradient noise scale", ["McCandlish et al. 2018, An Empirical Model of "
                                                           "Large-Batch Training"]
    elif args.study == "lr-batch":
        from workbench.lr_batch import lr_grid
        from workbench.plots.lr_batch import loss_heatmap, lr_vs_batch

        n = int(x.shape[0])
        bs = args.batch_sizes or sorted({max(1, n // 32), max(2, n // 8), max(4, n // 2)})
        lo, hi = (args.lr_range or [0.01, 1.0])[:2]
        lrs = lr_grid(lo, hi, args.num_lrs or config.pick(3, 6))
        opts = tuple((args.optimizers or "sgd").split(","))
        s = S.lr_batch_study(model, (x, y), loss=args.loss, batch_sizes=bs, lrs=lrs, seeds=args.seeds or 1,
                             optimizers=opts, num_steps=args.num_steps or config.pick(20, 200),
                             record_every=max(1, (args.num_steps or config.pick(20, 200)) // 10),
                             progress=args.progress)
        figs = [(f"heatmap_{o}", loss_heatmap(r)) for o, r in s.sweeps.items()]
        measured = {f"{o} max-stable": (r.batch_sizes, s.max_stable[o]) for o, r in s.sweeps.items()}
        theory = {"GD limit 2/lambda_max": (np.asarray(bs, float), np.full(len(bs), s.gd_limit))}
        figs.append(("lr_vs_batch", lr_vs_batch(measured, theory, fits=s.fits)))
        tables = [Table("largest stable learning rate", ["optimizer", "B", "lr max-stable", "lr optimal"],
                        [[o, int(b), s.max_stable[o].value[i], s.optimal[o].value[i]]
                         for o, r in s.sweeps.items() for i, b in enumerate(r.batch_sizes)])]
        title, refs = "Your model: learning rate vs batch size", ["McCandlish et al. 2018", "Cohen et al. 2021"]
    else:  # pragma: no cover - the parser only offers STUDIES
        raise ValueError(f"--model is not available for study {args.study!r}; use one of {', '.join(STUDIES)}")
    return Report(study=args.study, title=title, summary=head, figures=figs, tables=tables, parameters=params,
                  references=refs)


__all__ = ["STUDIES", "add_arguments", "add_model_arguments", "build"]
