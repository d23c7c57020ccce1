"""Mok et al. 2022: NTK metrics at initialization vs label-gradient alignment after a little training.

Training-free architecture search ranks candidate networks by metrics of their empirical NTK Theta at
initialization: its condition number lambda_max/lambda_min (TE-NAS, Chen et al. 2021: smaller is better) or its
trace (NASI, Shu et al. 2022: larger is better). Mok et al. find these rank poorly because modern networks are far
from their linearization, and propose the label-gradient alignment, the Pearson correlation of the entries of the
NTK with those of the label kernel,

    LGA(Theta, y) = <Theta - mean(Theta), L - mean(L)>_F / (||Theta - mean(Theta)||_F ||L - mean(L)||_F),
    L_ij = +1 if y_i = y_j else -1,

computed after a few training steps (the means are over all n^2 entries; centring makes L = 2 * 1[y_i = y_j] - 1
and the plain indicator equivalent). Here Theta is the plain J J^T traced over the 10 logits. The claim measured:
on a family of small networks trained briefly, the Kendall rank correlation (tau-b, ``scipy.stats.kendalltau``)
of the final test accuracy with LGA after k steps beats that of the at-initialization metrics; the intervals come
from a paired bootstrap over the networks (the family is resampled, each network keeps all its numbers).

This is not the paper's setting: Mok et al. rank thousands of cells of NAS-Bench-101/201 (CIFAR-10/100,
ImageNet16-120); here a family of 30 (fast mode) or 90 MLPs drawn from depth x width x activation x
parametrization (:func:`family`), on 8x8 digits, all trained by the same Adam recipe (the accuracy is after a short
training, so it measures trainability more than a NAS benchmark's converged accuracy does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from tqdm.auto import tqdm

from workbench import config
from workbench.linalg import condition_number
from workbench.nets import MLP
from workbench.papers.base import SIGMAS, Check, Reproduction
from workbench.validation import check_positive_int

REFERENCE = ("Mok, Na, Kim, Han & Yoon 2022, Demystifying the Neural Tangent Kernel from a Practical Perspective: "
             "Can it be trusted for Neural Architecture Search without training?, CVPR")
CLAIM = ("The label-gradient alignment of the NTK after a few training steps ranks networks by their final test "
         "accuracy better (higher Kendall tau) than NTK metrics at initialization (condition number, trace).")

#: the family's axes; :func:`family` draws distinct combinations of them
DEPTHS = (1, 2, 3, 4, 6)
WIDTHS = (16, 32, 64, 128, 256)
ACTIVATIONS = ("relu", "tanh", "gelu", "erf", "sigmoid")
PARAMETRIZATIONS = ("standard", "ntk", "mup")
#: the one training recipe every network gets (as a NAS benchmark trains every cell the same way): Adam, whose
#: per-coordinate step makes the recipe fair across parametrizations (plain GD at one learning rate trains an
#: NTK-parametrized net ~width times slower than a standard one, so the accuracy would rank the learning rate's fit)
OPTIMIZER, LR = "adam", 3e-3
#: networks in the family (fast, full mode)
FAST_SIZE, FULL_SIZE = 30, 90


def family(size: int, seed: int = 0) -> tuple[tuple[int, int, str, float, str], ...]:
    """``size`` distinct (depth, width, activation, w_std, parametrization), drawn uniformly without replacement
    from the product of the axes above with a fixed ``seed`` (the family is part of the benchmark, not of the
    run's key); w_std = sqrt 2 for relu and gelu, 1 otherwise."""
    size = check_positive_int("size", size, minimum=3)
    grid = [(d, w, a, p) for d in DEPTHS for w in WIDTHS for a in ACTIVATIONS for p in PARAMETRIZATIONS]
    if size > len(grid):
        raise ValueError(f"size must be <= {len(grid)} (the product of the axes), got {size}")
    pick = np.random.default_rng(seed).choice(len(grid), size, replace=False)
    return tuple((d, w, a, 2 ** 0.5 if a in ("relu", "gelu") else 1.0, p) for d, w, a, p in (grid[i] for i in pick))


def label_gradient_alignment(ntk: np.ndarray, labels: np.ndarray) -> float:
    """LGA: Pearson correlation of the entries of the NTK (n, n) with those of L_ij = +1 (same label) / -1
    (Mok et al. 2022)."""
    k = np.asarray(ntk, float)
    lab = np.asarray(labels).reshape(-1)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] != lab.size:
        raise ValueError(f"ntk must be (n, n) with n = len(labels) = {lab.size}, got shape {k.shape}")
    if np.unique(lab).size < 2:
        raise ValueError("labels must contain at least two classes (the label kernel is constant otherwise)")
    lk = np.where(lab[:, None] == lab[None, :], 1.0, -1.0)
    kc, lc = k - k.mean(), lk - lk.mean()
    denom = np.linalg.norm(kc) * np.linalg.norm(lc)
    if not np.isfinite(denom) or denom == 0:
        return float("nan")
    return float(np.sum(kc * lc) / denom)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties handled) of two paired samples, from ``scipy.stats.kendalltau``; NaN if undefined.

    Pairs with a NaN are dropped; +-inf are kept and rank last/first (an infinite condition number, i.e. a
    float32-singular NTK, is the worst score TE-NAS can give, not a missing one)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"x and y must be 1-d of the same length >= 2, got {x.shape} and {y.shape}")
    ok = ~np.isnan(x) & ~np.isnan(y)
    x, y = np.where(np.isinf(x), np.sign(x) * np.finfo(float).max, x), np.where(np.isinf(y), np.sign(y) *
                                                                                  np.finfo(float).max, y)
    if ok.sum() < 2:
        return float("nan")
    return float(scipy.stats.kendalltau(x[ok], y[ok]).statistic)


def bootstrap(statistic: Callable[[np.ndarray], float], n: int, *, resamples: int = 2000,
              seed: int = 0) -> np.ndarray:
    """``statistic(idx)`` over ``resamples`` paired bootstrap draws idx of range(n) with replacement (NaNs, from
    degenerate draws such as a single distinct network, are dropped)."""
    n = check_positive_int("n", n, minimum=2)
    resamples = check_positive_int("resamples", resamples)
    rng = np.random.default_rng(seed)
    vals = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    return vals[np.isfinite(vals)]


def _net(spec) -> MLP:
    depth, width, act, w_std, par = spec
    return MLP(depth=depth, width=width, activation=act, w_std=w_std, b_std=0.0, parametrization=par, out_dim=10)


def run(*, fast: bool, key: int) -> Reproduction:
    from workbench.data import digits
    from workbench.training import train_mlp

    with config.precision("float32"):
        device, precision = config.device_report(), "float32"
        n_train, n_test, n_ntk = (256, 256, 64) if fast else (800, 500, 128)
        steps, k_lga = (100, 10) if fast else (400, 20)
        seeds = (0,) if fast else (0, 1)
        nets = family(FAST_SIZE if fast else FULL_SIZE)
        lr = LR
        data = digits(jax.random.PRNGKey(key + 3), n_train, n_test, targets="label")
        x_ntk, y_ntk = data.x_train[:n_ntk], np.asarray(data.y_train[:n_ntk, 0])
        lte = np.asarray(data.y_test[:, 0])
        rows = []
        for spec in tqdm(nets, desc="mok_2022_lga: networks trained", leave=False):  # minutes: 5-8 s each
            net = _net(spec)
            res = train_mlp(net, (data.x_train, data.y_train), loss="cross_entropy", reduction="mean",
                            optimizer=OPTIMIZER, lrs=[lr], seeds=tuple(s + 100 * key for s in seeds), num_steps=steps,
                            record_every=k_lga, ntk_steps=(0, k_lga), x_ntk=x_ntk, x_eval=data.x_test,
                            progress=False)
            logits = np.asarray(res.evals)[0, :, -1]  # (S, m, 10) at the last step
            acc = np.where(np.asarray(res.diverged)[0], 1.0 / 10, (logits.argmax(-1) == lte[None]).mean(-1))
            ntk = np.asarray(res.ntk)[0]  # (S, 2, n, n)
            cond = [condition_number(0.5 * (k + k.T)) if np.all(np.isfinite(k)) else np.inf for k in ntk[:, 0]]
            rows.append({"spec": spec, "params": net.num_params(64), "accuracy": float(acc.mean()),
                         "diverged": int(np.asarray(res.diverged).sum()),
                         "log_cond0": float(np.mean(np.log10(cond))),
                         "log_trace0": float(np.mean([np.log10(np.trace(k)) for k in ntk[:, 0]])),
                         "lga0": float(np.mean([label_gradient_alignment(k, y_ntk) for k in ntk[:, 0]])),
                         "lga_k": float(np.mean([label_gradient_alignment(k, y_ntk) for k in ntk[:, 1]]))})

    acc = np.array([r["accuracy"] for r in rows])
    # each metric in the direction its method ranks by (larger score = predicted better)
    scores = {"-log cond(Theta_0) (TE-NAS)": -np.array([r["log_cond0"] for r in rows]),
              "log tr(Theta_0) (NASI)": np.array([r["log_trace0"] for r in rows]),
              "LGA at init": np.array([r["lga0"] for r in rows]),
              f"LGA after {k_lga} steps": np.array([r["lga_k"] for r in rows])}
    lga_name = f"LGA after {k_lga} steps"
    init_names = ["-log cond(Theta_0) (TE-NAS)", "log tr(Theta_0) (NASI)"]
    tau = {m: kendall_tau(s, acc) for m, s in scores.items()}
    n = len(rows)

    def taus(idx):
        return {m: kendall_tau(s[idx], acc[idx]) for m, s in scores.items()}

    boot = bootstrap(lambda idx: _diff(taus(idx), lga_name, init_names), n, seed=key)
    boot_tau = {m: bootstrap(lambda idx, m=m: kendall_tau(scores[m][idx], acc[idx]), n, seed=key) for m in scores}
    diff = _diff(tau, lga_name, init_names)
    se_diff = float(np.std(boot, ddof=1))
    se = {m: float(np.std(v, ddof=1)) for m, v in boot_tau.items()}
    ci = {m: np.percentile(v, [2.5, 97.5]) for m, v in boot_tau.items()}
    checks = [
        Check(f"tau({lga_name}) - max tau(init metrics)", diff, 0.0, 0.0,
              f"the claim is a strict improvement; se {se_diff:.2g} from a paired bootstrap over the {n} networks "
              f"(2000 draws); resolved when {SIGMAS:g} se <= |difference|, i.e. the improvement (or its absence) is "
              f"told apart from a tie", kind="at_least", stderr=se_diff, resolution=abs(diff)),
        Check(f"tau({lga_name}, test accuracy)", tau[lga_name], 0.0, 0.0,
              f"LGA must rank meaningfully: tau above 0 by more than {SIGMAS:g} bootstrap se (se "
              f"{se[lga_name]:.2g} over the {n} networks)", kind="at_least", stderr=se[lga_name],
              resolution=abs(tau[lga_name])),
    ]
    for m in scores:
        if m != lga_name:
            checks.append(Check(f"tau({m}, test accuracy)", tau[m], 0.0, 0.0,
                                f"reported: Kendall tau-b over {n} networks, bootstrap 95% interval "
                                f"[{ci[m][0]:.2f}, {ci[m][1]:.2f}]", kind="at_least", stderr=se[m],
                                in_verdict=False))
    notes = []
    best_init = max(init_names, key=lambda m: tau[m])
    if not checks[0].passed:
        how = ("ranks worse than" if diff < 0 else "does not rank better than") + " the best at-initialization metric"
        told = ("beyond the bootstrap noise" if checks[0].resolved else
                f"though not beyond the bootstrap noise ({SIGMAS:g} se = {SIGMAS * se_diff:.2f} > |difference|)")
        notes.append(f"In this family LGA after {k_lga} steps {how}, {best_init} (tau {tau[lga_name]:.2f} against "
                     f"{tau[best_init]:.2f}, difference {diff:.2f} +- {se_diff:.2f}), {told}: the claim is not shown "
                     f"here.")
    notes.append(f"Kendall tau with the test accuracy over the {n} networks (bootstrap 95% intervals): "
                 + "; ".join(f"{m} {tau[m]:.2f} [{ci[m][0]:.2f}, {ci[m][1]:.2f}]" for m in scores) + ".")
    if any(r["diverged"] for r in rows):
        notes.append("Diverged runs count with chance accuracy (0.1): "
                     + ", ".join(f"{r['spec']}" for r in rows if r["diverged"]) + ".")
    setting = (f"{n} MLPs drawn without replacement from depth {DEPTHS} x width {WIDTHS} x activation "
               f"{'/'.join(ACTIVATIONS)} x {'/'.join(PARAMETRIZATIONS)} parametrization (w_std sqrt 2 for relu and "
               f"gelu, 1 otherwise; no bias), each trained by the same recipe: full-batch {OPTIMIZER} (lr {lr}, muP "
               f"multipliers where muP) on the softmax cross entropy of {n_train} 8x8 digits for {steps} steps, "
               f"{len(seeds)} seed(s); test accuracy on {n_test}; NTK metrics on {n_ntk} training inputs (traced "
               f"over the 10 logits) at step 0 and after {k_lga} steps. Not the paper's NAS-Bench-101/201 "
               f"benchmark of thousands of CNN cells trained to convergence on CIFAR and ImageNet16-120: a few dozen "
               f"small fully connected networks after a short training, so the accuracy mostly measures "
               f"trainability and the bootstrap intervals are wide.")
    data_out = {"ranking": {"accuracy": acc, "scores": scores, "tau": tau, "tau_ci": ci,
                            "labels": [f"L{r['spec'][0]} w{r['spec'][1]} {r['spec'][2]} {r['spec'][4]}"
                                       for r in rows]},
                "rows": rows}
    return Reproduction("mok_2022_lga", REFERENCE, CLAIM, setting, checks, data_out, device, precision, fast, key,
                        {"family": [list(s) for s in nets], "steps": steps, "k_lga": k_lga, "lr": lr,
                         "seeds": list(seeds), "n_train": n_train, "n_ntk": n_ntk}, notes)


def _diff(tau: dict[str, float], lga_name: str, init_names: list[str]) -> float:
    """tau(LGA after k steps) - max over the at-initialization metrics."""
    return float(tau[lga_name] - max(tau[m] for m in init_names))


__all__ = ["ACTIVATIONS", "CLAIM", "DEPTHS", "PARAMETRIZATIONS", "REFERENCE", "WIDTHS", "bootstrap", "family", "kendall_tau",
           "label_gradient_alignment", "run"]
