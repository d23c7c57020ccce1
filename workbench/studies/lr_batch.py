"""Learning rate versus batch size on a small model: measured sweeps beside every theory curve.

:func:`run_study` builds an MLP and a data set from a :class:`LrBatchConfig`, then

1. measures at initialization the exact gradient-noise statistics (|G|^2, tr Sigma, G^T H G, tr H Sigma,
   :func:`workbench.lr_batch.gradient_noise_stats`), the two-batch estimates of |G|^2 and tr Sigma, and the
   curvature (top Hessian eigenvalue lambda1, per-example curvatures along its eigenvector, per-example
   Hessian entry variance sigma^2: :func:`workbench.lr_batch.curvature_stats`);
2. evaluates the theory curves of lr against B from those numbers (:func:`theory_curves`);
3. runs the resumable sweep (:func:`workbench.lr_batch.sweep`) over batch sizes, learning rates, seeds and
   optimizers, and extracts the largest stable and optimal lr per B, fitted power-law exponents and the
   steps-to-target for McCandlish's steps/examples trade-off.

Every theory curve is evaluated at the *initial* parameters (the statistics change during training);
the loss is the mean over examples (:func:`workbench.hessian.mlp_loss`), matching docs/theory.md#9-learning-rate-and-batch-size.

:func:`quadratic_study` does the same on the noisy quadratic of :mod:`workbench.lr_batch`, where the
McCandlish step and the mean-square stability limit are exact: a control experiment for the method.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from workbench import config
from workbench import experiments as ex
from workbench import lr_batch as lb
from workbench.data import digits, mlp_teacher
from workbench.hessian import mlp_loss
from workbench.nets import ACTIVATIONS, MLP, PARAMETRIZATIONS
from workbench.stats import fit_loglog
from workbench.studies.partial import Partial, last
from workbench.validation import check_choice, check_positive_int, check_real

DATASETS = ("teacher", "digits")


@dataclasses.dataclass(frozen=True)
class LrBatchConfig:
    """Everything that defines a study. Data: ``"teacher"`` (a random tanh-MLP teacher on the sphere in
    ``dim`` dimensions with label noise ``noise_std``) or ``"digits"`` (scikit-learn digits 0 vs 1, labels
    +-1, dim 64). Loss: mean squared error 1/2 |f - y|^2 averaged over examples.
    ``target_loss=None`` picks the largest of the per-B best losses (so every batch size reaches it);
    ``fit_max_batch=None`` fits power laws on B <= num_data / 8."""

    depth: int = 1
    width: int = 64
    activation: str = "tanh"
    parametrization: str = "standard"
    dataset: str = "teacher"
    num_data: int = 512
    dim: int = 8
    noise_std: float = 0.5
    optimizers: tuple[str, ...] = ("sgd", "momentum", "adam")
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    lr_min: float = 1e-3
    lr_max: float = 30.0
    num_lrs: int = 19
    seeds: int = 3
    num_steps: int = 1000
    record_every: int = 10
    momentum: float = 0.9
    target_loss: float | None = None
    fit_max_batch: int | None = None
    seed: int = 0
    results_dir: str | None = None

    def __post_init__(self) -> None:
        check_positive_int("depth", self.depth, minimum=0)
        check_positive_int("width", self.width)
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("parametrization", self.parametrization, PARAMETRIZATIONS)
        check_choice("dataset", self.dataset, DATASETS)
        check_positive_int("num_data", self.num_data, minimum=2)
        check_positive_int("dim", self.dim, minimum=2)
        check_real("noise_std", self.noise_std, nonnegative=True)
        if not self.optimizers:
            raise ValueError("optimizers must not be empty")
        for opt in self.optimizers:
            check_choice("optimizers", opt, ex.SWEEP_OPTIMIZERS)
        lb.check_batch_sizes(self.batch_sizes, num_data=self.num_data)
        lb.lr_grid(self.lr_min, self.lr_max, self.num_lrs)
        check_positive_int("seeds", self.seeds)
        check_positive_int("num_steps", self.num_steps)
        check_positive_int("record_every", self.record_every)
        m = check_real("momentum", self.momentum, nonnegative=True)
        if m >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {m}")
        if self.target_loss is not None:
            check_real("target_loss", self.target_loss, positive=True)
        if self.fit_max_batch is not None:
            check_positive_int("fit_max_batch", self.fit_max_batch)

    @property
    def lrs(self) -> np.ndarray:
        return lb.lr_grid(self.lr_min, self.lr_max, self.num_lrs)


def default_config(fast: bool | None = None, **overrides: Any) -> LrBatchConfig:
    """The notebook's defaults; ``fast`` (default: :func:`workbench.config.fast_mode`) shrinks every size
    so the sweep runs in well under a minute on 2 CPU cores."""
    fast = config.fast_mode() if fast is None else bool(fast)
    if fast:
        # two batch sizes per optimizer: each (optimizer, batch size) is one compiled training program (~3 s of
        # tracing and compilation on 2 cores), which dominates a fast run
        base = dict(width=16, num_data=128, optimizers=("sgd", "adam"), batch_sizes=(8, 64), num_lrs=9,
                    fit_max_batch=64,
                    lr_min=1e-3, lr_max=30.0, seeds=2, num_steps=100, record_every=10)
    else:
        base = {}
    base.update(overrides)
    return LrBatchConfig(**base)


class Problem(NamedTuple):
    net: MLP
    loss_fn: Any
    init_fn: Any
    x: jax.Array
    y: jax.Array
    params0: Any
    description: str


def build_problem(cfg: LrBatchConfig) -> Problem:
    """The net, the mean-MSE loss, ``init_fn(key)``, the training data and the parameters of seed ``cfg.seed``
    (cached by config: a rerun, or a one-call sweep beside a streamed one, reuses them and their compiled code)."""
    if not isinstance(cfg, LrBatchConfig):
        raise TypeError(f"cfg must be an LrBatchConfig, got {type(cfg).__name__}")
    return _build_problem(cfg, bool(jax.config.jax_enable_x64))  # a change of precision builds anew


@functools.lru_cache(maxsize=16)
def _build_problem(cfg: LrBatchConfig, _x64: bool) -> Problem:
    key = jax.random.PRNGKey(cfg.seed)
    if cfg.dataset == "teacher":
        # jitted: one compilation instead of one per eager op (seconds on a CPU)
        x, y = jax.jit(lambda k: tuple(mlp_teacher(k, cfg.num_data, 1, cfg.dim, noise_std=cfg.noise_std)[:2]))(
            jax.random.fold_in(key, 1))
        data_desc = (f"MLP teacher (data.mlp_teacher default, 1 hidden layer of 256 tanh units), sphere inputs, "
                     f"dim={cfg.dim}, noise_std={cfg.noise_std:g}")
    else:
        ds = digits(jax.random.fold_in(key, 1), cfg.num_data, 1, classes=(0, 1), targets="pm1")
        x, y, data_desc = ds.x_train, ds.y_train, ds.description
    in_dim = int(x.shape[1])
    net = MLP(depth=cfg.depth, width=cfg.width, activation=cfg.activation, w_std=1.5 if cfg.activation == "tanh"
              else math.sqrt(2.0), b_std=0.1, parametrization=cfg.parametrization)
    loss_fn = mlp_loss(net, "mse")

    def init_fn(k: jax.Array) -> Any:
        return net.init(k, in_dim, x.dtype)

    # the seed-0 initialization of the sweep (training.train: PRNGKey(seed) split into init and data keys)
    params0 = jax.jit(init_fn)(jax.random.split(jax.random.PRNGKey(0))[0])
    desc = f"{net.describe()}; {data_desc}; n={cfg.num_data}; loss: mean 1/2|f-y|^2"
    return Problem(net, loss_fn, init_fn, x, y, params0, desc)


class TheoryCurves(NamedTuple):
    """Theory lr(B) curves on ``batch_sizes`` (a log grid), by name, and the scales they imply."""

    batch_sizes: np.ndarray
    curves: dict[str, np.ndarray]
    b_noise: float
    b_simple: float
    b_star_rmt: float
    eps_max: float


def theory_curves(stats: lb.NoiseScale, curv: ex.CurvatureStats, batch_sizes: np.ndarray, *,
                  momentum: float = 0.9) -> TheoryCurves:
    """Every theory curve of lr against B from statistics measured at one point (docs/theory.md#8-the-batch-hessian and docs/theory.md#9-learning-rate-and-batch-size):

    * ``"GD: 2/lambda1"`` and ``"heavy ball: (2+2beta)/lambda1"`` (full-batch stability; the edge-of-stability
      thresholds read as learning rates),
    * ``"SGD 1-d mean-square: 2a/(a^2 + c_B s^2)"`` along the top eigenvector (Wu, Ma & E 2018),
    * ``"RMT: 2/lambda'(B)"`` (Granziol et al. 2022 model, :func:`workbench.lr_batch.rmt_max_lr`),
    * ``"McCandlish eps_opt(B)"`` (McCandlish et al. 2018).
    """
    b = np.asarray(batch_sizes, dtype=np.float64)
    n = curv.num_data
    ones = np.ones_like(b)
    curves = {
        "GD: 2/lambda1": ones * lb.max_lr_from_sharpness(curv.lambda1),
        f"heavy ball: (2+2beta)/lambda1, beta={momentum:g}": ones * lb.max_lr_from_sharpness(curv.lambda1, momentum),
        "SGD 1-d mean-square: 2a/(a^2 + c_B s^2)": np.asarray(
            lb.sgd_stability_limit_1d(b, curv.curv_mean, curv.curv_std, num_data=n)),
        "RMT: 2/lambda'(B)": np.asarray(lb.rmt_max_lr(b, curv.lambda1, curv.num_params, curv.sigma2, num_data=n)),
        "McCandlish eps_opt(B)": np.asarray(lb.mccandlish_optimal_lr(b, stats.eps_max, stats.b_noise)),
    }
    return TheoryCurves(b, curves, stats.b_noise, stats.b_simple,
                        lb.rmt_critical_batch(curv.lambda1, curv.num_params, curv.sigma2), stats.eps_max)


class LrBatchStudy(NamedTuple):
    """Everything :func:`run_study` measured and predicted; ``info`` has the device and timings;
    ``initial_loss`` is the loss at the parameters where the statistics were measured (seed 0's init)."""

    config: LrBatchConfig
    description: str
    stats: lb.NoiseScale
    estimate: lb.TwoBatchEstimate
    curvature: ex.CurvatureStats
    theory: TheoryCurves
    sweeps: dict[str, lb.SweepResult]
    max_stable: dict[str, lb.LrEstimate]
    optimal: dict[str, lb.LrEstimate]
    fits: dict[str, lb.PowerLawFit]
    target_loss: float
    steps_to_target: dict[str, np.ndarray]
    tradeoff: dict[str, lb.TradeoffFit | None]
    seconds: float
    info: str
    initial_loss: float


def _auto_target(sweeps: dict[str, lb.SweepResult]) -> float:
    """The largest over (optimizer, B) of the best loss reached (median over seeds, min over lr, steps)."""
    worst = 0.0
    for res in sweeps.values():
        best = np.min(np.median(lb.best_loss(res), axis=2), axis=1)  # (B,)
        best = best[np.isfinite(best)]
        if best.size:
            worst = max(worst, float(best.max()))
    return worst * 1.05 if worst > 0 else math.inf


def analyze(sweeps: dict[str, lb.SweepResult], *, num_data: int, target_loss: float | None = None,
            fit_max_batch: int | None = None) -> tuple[dict, dict, dict, float, dict, dict]:
    """Max-stable and optimal lr per B, power-law fits (keys ``"<opt> max-stable"``, ``"<opt> optimal"``),
    the target loss, steps-to-target per B and the McCandlish trade-off fit per optimizer."""
    fit_max = num_data / 8 if fit_max_batch is None else fit_max_batch
    max_stable, optimal, fits, steps, tradeoff = {}, {}, {}, {}, {}
    target = _auto_target(sweeps) if target_loss is None else float(target_loss)
    for opt, res in sweeps.items():
        max_stable[opt] = lb.max_stable_lr(res)
        optimal[opt] = lb.optimal_lr(res)
        for kind, est in (("max-stable", max_stable[opt]), ("optimal", optimal[opt])):
            try:
                fits[f"{opt} {kind}"] = fit_loglog(res.batch_sizes, est.value, x_max=fit_max)
            except ValueError:  # fewer than 2 usable points
                pass
        steps[opt] = lb.steps_to_target_per_batch(res, target)
        try:
            tradeoff[opt] = lb.fit_steps_examples(res.batch_sizes, steps[opt])
        except ValueError:
            tradeoff[opt] = None
    return max_stable, optimal, fits, target, steps, tradeoff


def run_study(cfg: LrBatchConfig | None = None, *, progress: bool = True, num_draws: int = 100) -> LrBatchStudy:
    """Measure the statistics, evaluate the theory, run (or resume) the sweep and analyze it; see the module doc.
    The last result of :func:`iter_study`."""
    return last(iter_study(cfg, progress=progress, num_draws=num_draws))


def iter_study(cfg: LrBatchConfig | None = None, *, progress: bool = True,
               num_draws: int = 100) -> Iterator[Partial]:
    """:func:`run_study`, streamed: a :class:`~workbench.studies.partial.Partial` study after every finished
    (optimizer, batch size) point of the sweep (optimizers in order, batch sizes ascending), analyzed on the
    points finished so far (an optimizer's :class:`SweepResult` holds the batch sizes done, ``completed=False``
    until all are). Each point is one :func:`workbench.experiments.sweep` call on that point alone (the same
    training, seeds and resume files as one call over the grid); the last partial is the full study.
    """
    cfg = default_config() if cfg is None else cfg
    if not isinstance(cfg, LrBatchConfig):
        raise TypeError(f"cfg must be an LrBatchConfig, got {type(cfg).__name__}")
    num_draws = check_positive_int("num_draws", num_draws, minimum=2)
    start = time.perf_counter()
    prob = build_problem(cfg)
    data = (prob.x, prob.y)
    stats = ex.gradient_noise_stats(prob.loss_fn, prob.params0, data)
    n = cfg.num_data
    b_small = max(1, min(cfg.batch_sizes))
    b_big = max(b_small + 1, n // 4)
    est = ex.two_batch_noise_scale(prob.loss_fn, prob.params0, data, b_small, b_big, num_draws=num_draws,
                                   key=jax.random.PRNGKey(cfg.seed + 11))
    curv = ex.curvature_stats(prob.loss_fn, prob.params0, data, key=jax.random.PRNGKey(cfg.seed + 12))
    grid = np.unique(np.round(np.geomspace(1, n, 60)))
    theory = theory_curves(stats, curv, grid, momentum=cfg.momentum)
    t_stats = time.perf_counter() - start
    initial_loss = float(prob.loss_fn(prob.params0, data))  # the point where the theory is evaluated
    batch_sizes = [int(b) for b in np.sort(lb.check_batch_sizes(cfg.batch_sizes, num_data=n))]
    points = [(opt, b) for opt in cfg.optimizers for b in batch_sizes]
    done: dict[str, list[lb.SweepResult]] = {}

    def study() -> LrBatchStudy:
        sweeps = {opt: merge_sweeps(parts, completed=len(parts) == len(batch_sizes)) for opt, parts in done.items()}
        max_stable, optimal, fits, target, steps, tradeoff = analyze(
            sweeps, num_data=n, target_loss=cfg.target_loss, fit_max_batch=cfg.fit_max_batch)
        seconds = time.perf_counter() - start
        info = (f"{prob.description}; statistics {t_stats:.1f} s, sweep {seconds - t_stats:.1f} s; "
                f"{config.device_report()}")
        return LrBatchStudy(cfg, prob.description, stats, est, curv, theory, sweeps, max_stable, optimal, fits,
                            target, steps, tradeoff, seconds, info, initial_loss)

    for k, (opt, b) in enumerate(points):
        res = ex.sweep(prob.loss_fn, prob.init_fn, data, batch_sizes=(b,), lrs=cfg.lrs, optimizers=(opt,),
                       seeds=cfg.seeds, num_steps=cfg.num_steps, record_every=cfg.record_every,
                       momentum=cfg.momentum, results_dir=cfg.results_dir, tag=prob.description, progress=progress)
        if opt not in res or not res[opt].completed:  # interrupted (Ctrl-C): keep what is finished
            break
        done.setdefault(opt, []).append(res[opt])
        yield Partial(study(), (k + 1) / len(points), f"{opt}, B = {b}")
    else:
        return
    yield Partial(study(), 1.0, "interrupted")  # the finished points, as the one-call sweep returns them


def merge_sweeps(parts: Sequence[lb.SweepResult], *, completed: bool = True) -> lb.SweepResult:
    """One optimizer's sweep from its results at single batch sizes (or any disjoint sets), batch sizes ascending."""
    if not parts or len({p.optimizer for p in parts}) != 1:
        raise ValueError("parts must be a non-empty list of sweep results of one optimizer")
    order = np.argsort(np.concatenate([p.batch_sizes for p in parts]), kind="stable")

    def cat(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(p, name)) for p in parts])[order]

    first = parts[0]
    return lb.SweepResult(first.optimizer, cat("batch_sizes"), first.lrs, first.seeds, first.steps, cat("train_loss"),
                          cat("diverged"), cat("diverged_step"), cat("seconds"), first.device,
                          completed=completed and all(p.completed for p in parts))


class LrCurves(NamedTuple):
    """What the lr-vs-B figure draws: ``measured`` (name -> (batch sizes, :class:`LrEstimate`)), ``theory``
    (name -> (batch sizes, lr)) with the anchored scaling rules, and the scale ``markers`` inside the plotted range."""

    measured: dict[str, tuple[np.ndarray, lb.LrEstimate]]
    theory: dict[str, tuple[np.ndarray, np.ndarray]]
    markers: dict[str, float]


def lr_curves(study: LrBatchStudy) -> LrCurves:
    """Measured max-stable and optimal lr per optimizer, every theory curve, and the linear (SGD) and
    square-root (Adam) scaling rules anchored at the smallest-B optimal lr (Goyal et al. 2017; Granziol et al. 2022)."""
    measured = {}
    for opt, res in study.sweeps.items():
        measured[f"{opt} max-stable"] = (res.batch_sizes, study.max_stable[opt])
        measured[f"{opt} optimal"] = (res.batch_sizes, study.optimal[opt])
    th = study.theory
    theory = {name: (th.batch_sizes, lr) for name, lr in th.curves.items()}
    for opt, exponent, label in (("sgd", 1.0, "linear rule"), ("adam", 0.5, "square-root rule")):
        if opt in study.optimal:
            v = study.optimal[opt].value
            ok = np.flatnonzero(np.isfinite(v))
            if ok.size:
                b0, v0 = float(study.sweeps[opt].batch_sizes[ok[0]]), float(v[ok[0]])
                theory[f"{label} (B^{exponent:g}) through {opt} optimal at B={b0:g}"] = (
                    th.batch_sizes, np.asarray(lb.scaling_rule(th.batch_sizes, v0, b0, exponent)))
    # scales marked only where they fall inside the plotted range (the summary lists them all)
    markers = {name: v for name, v in (("B_noise", th.b_noise), ("RMT B*", th.b_star_rmt))
               if th.batch_sizes.min() <= v <= th.batch_sizes.max()}
    return LrCurves(measured, theory, markers)


def fit_table(study: LrBatchStudy) -> str:
    """The fitted exponents lr ~ B^alpha as text (expect about 1 for SGD, 1/2 for Adam at small B)."""
    lines = [f"{'fit':28s} {'alpha':>8s} {'+-':>7s} {'points':>6s}"]
    for name, fit in study.fits.items():
        lines.append(f"{name:28s} {fit.exponent:8.3f} {fit.exponent_se:7.3f} {fit.num_points:6d}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- noisy quadratic control


class QuadraticStudy(NamedTuple):
    """Measured vs exact on the noisy quadratic: one-step optimal lr vs eps_opt(B); largest stable lr
    (``num_steps`` steps) vs the mean-square limit, for ``optimizer``."""

    problem: lb.NoisyQuadratic
    stats: lb.NoiseScale
    one_step: lb.SweepResult
    long_run: lb.SweepResult
    measured_optimal: lb.LrEstimate
    measured_max_stable: lb.LrEstimate
    eps_opt: np.ndarray
    stability_limit: np.ndarray
    grid_ratio: float


def quadratic_study(*, dim: int = 16, batch_sizes: Sequence[int] = (1, 4, 16, 64, 256, 1024),
                    num_lrs: int = 33, seeds_one_step: int = 2000, seeds_long: int = 4, num_steps: int = 200,
                    optimizer: str = "sgd", momentum: float = 0.9, noise_std: float = 1.0,
                    curvature_std: float = 0.0, seed: int = 0) -> QuadraticStudy:
    """Run the noisy-quadratic control (random H with eigenvalues in [0.05, 1], Gaussian noise of known Sigma)."""
    prob = lb.random_noisy_quadratic(jax.random.PRNGKey(seed), dim, eig_min=0.05, eig_max=1.0,
                                     noise_std=noise_std, curvature_std=curvature_std)
    stats = lb.noisy_quadratic_stats(prob)
    bs = lb.check_batch_sizes(batch_sizes)
    beta = momentum if optimizer == "momentum" else 0.0
    eps_opt = np.asarray(lb.mccandlish_optimal_lr(bs, stats.eps_max, stats.b_noise))
    limit = np.asarray(lb.noisy_quadratic_stability_limit(prob, bs, momentum=beta)).reshape(bs.shape)
    lo = min(float(eps_opt.min()), float(limit.min())) / 3
    hi = max(float(stats.eps_max), float(limit.max())) * 3
    lrs = lb.lr_grid(lo, hi, num_lrs)
    one = lb.simulate_noisy_quadratic(prob, lrs, bs, num_steps=1, seeds=seeds_one_step)
    long = lb.simulate_noisy_quadratic(prob, lrs, bs, num_steps=num_steps, seeds=seeds_long, optimizer=optimizer,
                                       momentum=momentum)
    return QuadraticStudy(prob, stats, one, long, lb.optimal_lr(one), lb.max_stable_lr(long), eps_opt, limit,
                          float(lrs[1] / lrs[0]))


__all__ = ["DATASETS", "LrBatchConfig", "LrBatchStudy", "Problem", "QuadraticStudy", "TheoryCurves", "analyze",
           "LrCurves", "build_problem", "default_config", "fit_table", "iter_study", "lr_curves", "merge_sweeps",
           "quadratic_study", "run_study", "theory_curves"]

