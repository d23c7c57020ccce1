"""Learning rate versus batch size, analysis of measurements: McCandlish's two-batch-size noise-scale
estimators, the steps/examples trade-off fit, and estimates from sweep results (final/best loss, steps to a
target, largest stable and optimal learning rate per batch size, power-law fits of lr*(B)).

Conventions as in :mod:`workbench.lr_batch.theory` (docs/theory.md#9-learning-rate-and-batch-size).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from workbench.lr_batch._inputs import ArrayLike
from workbench.lr_batch.theory import sampling_factor
from workbench._compat import warn_deprecated
from workbench.stats import PowerLawFit, fit_loglog
from workbench.validation import check_array, check_choice, check_positive_int, check_real

__all__ = ["LrEstimate", "PowerLawFit", "SweepResult", "TradeoffFit", "TwoBatchEstimate", "best_loss",
           "final_loss", "fit_power_law", "fit_steps_examples", "max_stable_lr", "noise_scale_estimate",
           "noise_scale_estimators", "optimal_lr", "steps_to_target", "steps_to_target_per_batch"]


def noise_scale_estimators(sq_norm_small: ArrayLike, sq_norm_big: ArrayLike, b_small: int, b_big: int,
                           num_data: float = math.inf) -> tuple[float, float]:
    """Unbiased two-batch-size estimators of |G|^2 and tr(Sigma) (McCandlish et al. 2018, app. A.1).

    From E|G_B|^2 = |G|^2 + tr(Sigma)/B:
      |G|^2    ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small),
      tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big).
    ``sq_norm_small``/``sq_norm_big`` may be arrays of repeated draws: each is averaged first
    (ratio of means), which keeps both estimators unbiased; B_simple is then tr_sigma / g2.
    With finite ``num_data`` (batches drawn without replacement) 1/B becomes c_B; Sigma is always
    the population covariance (1/n) sum (g_i - G)(g_i - G)^T.

    Worked value: mean |G_10|^2 = 11, mean |G_1000|^2 = 1.1 give (1.0, 100.0).
    """
    small = check_array("sq_norm_small", sq_norm_small, nonnegative=True)
    big = check_array("sq_norm_big", sq_norm_big, nonnegative=True)
    b_small = check_positive_int("b_small", b_small)
    b_big = check_positive_int("b_big", b_big)
    if b_big <= b_small:
        raise ValueError(f"b_big must be larger than b_small, got b_small={b_small}, b_big={b_big}")
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    c_small = float(sampling_factor(b_small, n))
    c_big = float(sampling_factor(b_big, n))
    m_small, m_big = float(np.mean(small)), float(np.mean(big))
    tr_sigma = (m_small - m_big) / (c_small - c_big)
    g2 = (c_small * m_big - c_big * m_small) / (c_small - c_big)
    return g2, tr_sigma


class TwoBatchEstimate(NamedTuple):
    """Two-batch estimates with standard errors over the draws (delta method for the ratio)."""

    g2: float
    g2_se: float
    tr_sigma: float
    tr_sigma_se: float
    b_simple: float
    b_simple_se: float
    num_draws: int


def noise_scale_estimate(sq_norm_small: ArrayLike, sq_norm_big: ArrayLike, b_small: int, b_big: int,
                         num_data: float = math.inf) -> TwoBatchEstimate:
    """:func:`noise_scale_estimators` plus standard errors from the spread of independent draws.

    Both estimators are linear in the two means, so their variance is a^2 var(small)/k_small +
    b^2 var(big)/k_big; B_simple's standard error comes from the delta method.
    """
    small = check_array("sq_norm_small", sq_norm_small, nonnegative=True).ravel()
    big = check_array("sq_norm_big", sq_norm_big, nonnegative=True).ravel()
    if small.size < 2 or big.size < 2:
        raise ValueError(f"standard errors need >= 2 draws of each size, got {small.size} and {big.size}")
    g2, tr_sigma = noise_scale_estimators(small, big, b_small, b_big, num_data)
    n = float(num_data)
    c_small = float(sampling_factor(b_small, n))
    c_big = float(sampling_factor(b_big, n))
    d = c_small - c_big
    # d(tr)/d(m_small) = 1/d, d(tr)/d(m_big) = -1/d; d(g2)/d(m_small) = -c_big/d, d(g2)/d(m_big) = c_small/d
    v_small = np.var(small, ddof=1) / small.size
    v_big = np.var(big, ddof=1) / big.size
    tr_se = math.sqrt((1.0 / d) ** 2 * (v_small + v_big))
    g2_se = math.sqrt((c_big / d) ** 2 * v_small + (c_small / d) ** 2 * v_big)
    b_simple = tr_sigma / g2
    grad_small = (1.0 / d) / g2 + tr_sigma * (c_big / d) / g2 ** 2
    grad_big = (-1.0 / d) / g2 - tr_sigma * (c_small / d) / g2 ** 2
    b_se = math.sqrt(grad_small ** 2 * v_small + grad_big ** 2 * v_big)
    return TwoBatchEstimate(g2, g2_se, tr_sigma, tr_se, b_simple, b_se, int(min(small.size, big.size)))


class TradeoffFit(NamedTuple):
    """S(B) = S_min + E_min / B fitted to measured steps-to-target; b_crit = E_min / S_min."""

    s_min: float
    e_min: float
    b_crit: float
    s_min_se: float
    e_min_se: float


def fit_steps_examples(batch_sizes: ArrayLike, steps: ArrayLike) -> TradeoffFit:
    """Least-squares fit of McCandlish's S = S_min (1 + B_crit/B) = S_min + E_min/B (linear in 1/B).

    Entries with non-finite steps (target never reached) are dropped; at least 2 must remain.
    """
    b = check_array("batch_sizes", batch_sizes, positive=True).ravel()
    s = np.asarray(steps, dtype=np.float64).ravel()
    if s.shape != b.shape:
        raise ValueError(f"steps must have the same length as batch_sizes ({b.size}), got shape {s.shape}")
    ok = np.isfinite(s)
    if np.any(s[ok] <= 0):
        raise ValueError(f"steps must be > 0, got {s.tolist()}")
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 batch sizes that reached the target, got {int(ok.sum())}")
    x = np.stack([np.ones(ok.sum()), 1.0 / b[ok]], axis=1)
    coef, *_ = np.linalg.lstsq(x, s[ok], rcond=None)
    resid = s[ok] - x @ coef
    dof = max(int(ok.sum()) - 2, 1)
    cov = np.linalg.pinv(x.T @ x) * float(resid @ resid) / dof
    s_min, e_min = float(coef[0]), float(coef[1])
    b_crit = e_min / s_min if s_min > 0 else math.inf
    return TradeoffFit(s_min, e_min, b_crit, float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1])))


# ============================================================================ sweep results and their analysis


class SweepResult(NamedTuple):
    """Training losses over a (batch size, learning rate, seed) grid for one optimizer.

    train_loss has shape (num_batch_sizes, num_lrs, num_seeds, num_records) at the steps in ``steps``;
    diverged (same leading shape, bool) and diverged_step (-1 where not diverged) say which runs blew up
    and when. Losses after divergence are +inf. ``seconds`` is the wall time per batch size and
    ``device`` the :func:`workbench.config.device_report` line of the run.
    """

    optimizer: str
    batch_sizes: np.ndarray
    lrs: np.ndarray
    seeds: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    seconds: np.ndarray
    device: str
    completed: bool = True


def _check_sweep(result: SweepResult) -> None:
    if not isinstance(result, SweepResult):
        raise TypeError(f"result must be a SweepResult, got {type(result).__name__}")


def _clean_losses(result: SweepResult) -> np.ndarray:
    loss = np.array(result.train_loss, dtype=np.float64)
    loss[~np.isfinite(loss)] = np.inf
    loss[np.broadcast_to(result.diverged[..., None], loss.shape)
         & (np.asarray(result.steps)[None, None, None, :] >= result.diverged_step[..., None])] = np.inf
    return loss


def final_loss(result: SweepResult) -> np.ndarray:
    """Loss at the last recorded step, shape (num_batch_sizes, num_lrs, num_seeds); +inf if diverged."""
    _check_sweep(result)
    out = _clean_losses(result)[..., -1]
    out[result.diverged] = np.inf
    return out


def best_loss(result: SweepResult) -> np.ndarray:
    """Smallest recorded loss of each run, shape (num_batch_sizes, num_lrs, num_seeds)."""
    _check_sweep(result)
    return np.min(_clean_losses(result), axis=-1)


def steps_to_target(result: SweepResult, target_loss: float) -> np.ndarray:
    """First recorded step at which the loss is <= ``target_loss`` (+inf if never), per run."""
    _check_sweep(result)
    target_loss = check_real("target_loss", target_loss)
    hit = _clean_losses(result) <= target_loss
    first = np.argmax(hit, axis=-1)
    out = np.asarray(result.steps, dtype=np.float64)[first]
    out[~np.any(hit, axis=-1)] = np.inf
    return out


class LrEstimate(NamedTuple):
    """A learning rate per batch size: ``value`` (from all seeds together), ``lo``/``hi`` (the geometric
    mean of per-seed values times/divided by their geometric spread, over seeds), ``per_seed``."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    per_seed: np.ndarray


def _geo_band(per_seed: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logs = np.log(per_seed)
    with np.errstate(invalid="ignore"):
        spread = np.nanstd(np.where(np.isfinite(logs), logs, np.nan), axis=-1) if logs.shape[-1] > 1 else \
            np.zeros(logs.shape[:-1])
    spread = np.nan_to_num(spread)
    return value * np.exp(-spread), value * np.exp(spread)


def _largest_stable(lrs: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Largest grid lr below the first diverged one (along the last axis); nan if the smallest diverges."""
    first = np.where(np.any(diverged, axis=-1), np.argmax(diverged, axis=-1), diverged.shape[-1])
    out = np.where(first > 0, lrs[np.maximum(first - 1, 0)], np.nan)
    return out


def max_stable_lr(result: SweepResult) -> LrEstimate:
    """Largest stable learning rate per batch size: the largest grid value below the smallest lr at
    which a run diverged. ``value`` needs every seed stable; ``per_seed`` is each seed's own limit.
    NaN where even the smallest lr diverged."""
    _check_sweep(result)
    lrs = np.asarray(result.lrs)
    div = np.asarray(result.diverged)  # (B, L, S)
    per_seed = _largest_stable(lrs, np.moveaxis(div, 1, -1))  # (B, S)
    value = _largest_stable(lrs, np.any(div, axis=2))  # (B,)
    lo, hi = _geo_band(per_seed, value)
    return LrEstimate(value, lo, hi, per_seed)


def optimal_lr(result: SweepResult, *, by: str = "final") -> LrEstimate:
    """Learning rate of the smallest loss per batch size (grid argmin; ``by`` = "final" or "best" loss).

    ``value`` minimizes the loss averaged over seeds (diverged runs count as +inf); ``per_seed`` is each
    seed's own argmin, whose geometric spread gives ``lo``/``hi``. NaN where every lr diverged.
    """
    _check_sweep(result)
    check_choice("by", by, ("final", "best"))
    loss = final_loss(result) if by == "final" else best_loss(result)  # (B, L, S)
    lrs = np.asarray(result.lrs)
    mean = np.mean(loss, axis=2)
    value = np.where(np.all(~np.isfinite(mean), axis=1), np.nan, lrs[np.argmin(mean, axis=1)])
    per_seed = np.where(np.all(~np.isfinite(loss), axis=1), np.nan, lrs[np.argmin(loss, axis=1)])
    lo, hi = _geo_band(per_seed, value)
    return LrEstimate(value, lo, hi, per_seed)


def fit_power_law(x: ArrayLike, y: ArrayLike, *, x_max: float = math.inf) -> PowerLawFit:
    """Deprecated alias of :func:`workbench.stats.fit_loglog` (the one log-log fit).

    Used for lr*(B) ~ B^alpha: expect alpha about 1 for SGD and 1/2 for Adam in the small-B regime.
    """
    warn_deprecated("workbench.lr_batch.fit_power_law", "workbench.stats.fit_loglog")
    return fit_loglog(x, y, x_max=x_max)


def steps_to_target_per_batch(result: SweepResult, target_loss: float) -> np.ndarray:
    """Fewest steps to reach ``target_loss`` at each batch size, over the lr grid, of the median over
    seeds (+inf where no lr reaches it): the S(B) of McCandlish's steps/examples trade-off."""
    s = steps_to_target(result, target_loss)  # (B, L, S)
    return np.min(np.median(s, axis=2), axis=1)
