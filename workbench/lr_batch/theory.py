"""Learning rate versus batch size, closed forms: the sampling factor, McCandlish's noise scales and
steps/examples trade-off, stability limits (Wu, Ma & E 2018; Cohen et al. 2021), the batch-Hessian random-matrix
limit (Granziol et al. 2022) and scaling-law calculators (Kaplan et al. 2020; Step Law 2025).

Conventions (docs/theory.md#9-learning-rate-and-batch-size). The training loss is the *mean* of per-example losses,
L = (1/n) sum_i l_i; G = grad L is the true gradient; Sigma = (1/n) sum_i (g_i - G)(g_i - G)^T is
the per-example gradient covariance (population normalization, 1/n); H = Hessian of L. A batch of
size B has gradient G_B = (1/B) sum_{i in batch} g_i and covariance Cov(G_B) = c_B Sigma, with the
sampling factor

    c_B = (n - B) / (B (n - 1))   for batches drawn without replacement from n examples,
    c_B = 1 / B                   with replacement or from infinite data (``num_data=inf``).

(Finite-population sampling: Var of a batch mean = population variance (n - B)/(B (n - 1)); the one
implementation is :func:`workbench.stats.sampling_factor`, re-exported here.)

Theory (every formula cites its source; learning rates are SGD step sizes eps in theta <- theta - eps G_B):

* McCandlish et al. 2018, "An Empirical Model of Large-Batch Training": eps_opt(B) = eps_max/(1 + B_noise/B),
  eps_max = |G|^2/(G^T H G), B_noise = tr(H Sigma)/(G^T H G), B_simple = tr(Sigma)/|G|^2; steps and
  examples (S/S_min - 1)(E/E_min - 1) = 1, B_crit = E_min/S_min.
* Wu, Ma & E 2018 (linear stability of SGD), one dimension: lr_max(B) = 2a/(a^2 + c_B s^2).
  Wu & Su 2023 extend this to trace-type bounds of SGD's stable minima.
* Cohen et al. 2021 (edge of stability): sharpness thresholds 2/lr (GD), (2 + 2 beta)/lr (heavy ball),
  (2 + 2 beta1)/((1 - beta1) lr) for Adam's preconditioned sharpness.
* Granziol, Zohren & Roberts 2022 (batch-Hessian random-matrix model, :mod:`workbench.rmt`):
  lr_max(B) = 2/lambda'(B), linear in B below B* = P sigma^2/lambda_1^2 and saturating at 2/lambda_1;
  Adam's square-root rule lr proportional to sqrt(B) (mechanism only).
* Kaplan et al. 2020: B_crit(L) = B*/L^(1/alpha_B); Step Law ("Predictable Scale Part I", 2025):
  lr_opt = 1.79 N^-0.713 D^0.307, B_opt = 0.58 D^0.571 tokens.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from workbench import rmt
from workbench._compat import deprecated_alias
from workbench.lr_batch._inputs import ArrayLike, _out
from workbench.stats import sampling_factor
from workbench.validation import check_array, check_choice, check_positive_int, check_real

__all__ = ["EOS_OPTIMIZERS", "NoiseScale", "critical_batch_size", "critical_batch_tradeoff", "eos_threshold",
           "expected_batch_grad_sq_norm", "gd_stability_limit", "kaplan_critical_batch", "max_lr_from_sharpness",
           "mccandlish_critical_batch", "mccandlish_optimal_lr",
           "noise_scale", "rmt_critical_batch", "rmt_max_lr", "sampling_factor", "scaling_rule",
           "sgd_stability_limit_1d", "simple_noise_scale", "step_law"]


# ============================================================================ McCandlish et al. 2018


def mccandlish_optimal_lr(batch_size: ArrayLike, eps_max: float, b_noise: float) -> np.ndarray | float:
    """eps_opt(B) = eps_max / (1 + B_noise / B) (McCandlish et al. 2018, eq. 2.6).

    The step minimizing the second-order expected loss after one SGD step
    E L(theta - eps G_B) = L - eps |G|^2 + eps^2/2 (G^T H G + tr(H Sigma)/B).

    >>> round(mccandlish_optimal_lr(1000, 0.1, 100), 7)
    0.0909091
    """
    b = check_array("batch_size", batch_size, positive=True)
    eps_max = check_real("eps_max", eps_max, positive=True)
    b_noise = check_real("b_noise", b_noise, nonnegative=True)
    return _out(eps_max / (1.0 + b_noise / b))


class NoiseScale(NamedTuple):
    """Gradient-noise statistics at one point and the derived McCandlish quantities.

    g2 = |G|^2, tr_sigma = tr(Sigma), g_h_g = G^T H G, tr_h_sigma = tr(H Sigma) (Sigma with 1/n);
    eps_max = g2/g_h_g, b_noise = tr_h_sigma/g_h_g, b_simple = tr_sigma/g2.
    """

    g2: float
    tr_sigma: float
    g_h_g: float
    tr_h_sigma: float
    eps_max: float
    b_noise: float
    b_simple: float
    num_data: float


def noise_scale(g2: float, tr_sigma: float, g_h_g: float, tr_h_sigma: float,
                num_data: float = math.inf) -> NoiseScale:
    """Bundle the four statistics with eps_max, B_noise and B_simple (McCandlish et al. 2018, sec. 2.2).

    eps_max and B_noise need a positive curvature along the gradient, G^T H G > 0.
    """
    g2 = check_real("g2", g2, positive=True)
    tr_sigma = check_real("tr_sigma", tr_sigma, nonnegative=True)
    g_h_g = check_real("g_h_g", g_h_g)
    tr_h_sigma = check_real("tr_h_sigma", tr_h_sigma)
    if g_h_g <= 0:
        raise ValueError(f"g_h_g = G^T H G must be > 0 for eps_max and B_noise to exist (the loss is not "
                         f"convex along the gradient), got {g_h_g:g}")
    return NoiseScale(g2, tr_sigma, g_h_g, tr_h_sigma, g2 / g_h_g, tr_h_sigma / g_h_g, tr_sigma / g2,
                      float(num_data))


def simple_noise_scale(g2: float, tr_sigma: float) -> float:
    """B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018, eq. 2.8)."""
    g2 = check_real("g2", g2, positive=True)
    tr_sigma = check_real("tr_sigma", tr_sigma, nonnegative=True)
    return tr_sigma / g2


def expected_batch_grad_sq_norm(g2: float, tr_sigma: float, batch_size: ArrayLike,
                                num_data: float = math.inf) -> np.ndarray | float:
    """E|G_B|^2 = |G|^2 + c_B tr(Sigma): tr(Sigma)/B for n = inf (or with replacement), c_B of
    :func:`sampling_factor` for batches drawn without replacement from n examples."""
    g2 = check_real("g2", g2, nonnegative=True)
    tr_sigma = check_real("tr_sigma", tr_sigma, nonnegative=True)
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    c = np.asarray(sampling_factor(batch_size, n))
    return _out(g2 + c * tr_sigma)


def mccandlish_critical_batch(s_min: float, e_min: float) -> float:
    """B_crit = E_min / S_min (McCandlish et al. 2018, eq. 2.12): the batch size of the steps/examples trade-off."""
    s_min = check_real("s_min", s_min, positive=True)
    e_min = check_real("e_min", e_min, positive=True)
    return e_min / s_min


def critical_batch_tradeoff(s_min: float, e_min: float, batch_size: ArrayLike
                            ) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Steps and examples to reach a target at batch size B: S = S_min (1 + B_crit/B), E = E_min (1 + B/B_crit).

    These solve (S/S_min - 1)(E/E_min - 1) = 1 with E = B S (McCandlish et al. 2018, eq. 2.11).
    Worked value: S_min = 1000, E_min = 1e5 give B_crit = 100 and S(100) = 2000.
    """
    b_crit = mccandlish_critical_batch(s_min, e_min)
    b = check_array("batch_size", batch_size, positive=True)
    return _out(s_min * (1.0 + b_crit / b)), _out(e_min * (1.0 + b / b_crit))


# ============================================================================ stability


def sgd_stability_limit_1d(batch_size: ArrayLike, sharpness: float, nonuniformity: float,
                           num_data: float = math.inf) -> np.ndarray | float:
    """Mean-square stability limit of SGD on a 1-d quadratic (Wu, Ma & E 2018):

    per-example curvatures h_i with mean a (``sharpness``) and standard deviation s (``nonuniformity``,
    the population 1/n one for finite n), batches of B drawn without replacement from n:
    E(1 - lr h_B)^2 = (1 - lr a)^2 + lr^2 c_B s^2 <= 1  <=>  lr <= 2a / (a^2 + c_B s^2),
    c_B = (n - B)/(B (n - 1)) (1/B for n = inf). At B = n (or s = 0) it is GD's 2/a.

    Worked value: h_i in {0, 2} equally likely, n = inf: a = s = 1 and lr_max = 2B/(B + 1).
    """
    a = check_real("sharpness", sharpness, positive=True)
    s = check_real("nonuniformity", nonuniformity, nonnegative=True)
    c = np.asarray(sampling_factor(batch_size, num_data))
    return _out(2.0 * a / (a * a + c * s * s))


def max_lr_from_sharpness(sharpness: float, momentum: float = 0.0) -> float:
    """Largest stable step of (heavy-ball) GD on a quadratic of top curvature lambda (the sharpness):
    (2 + 2 beta)/lambda, 2/lambda for plain GD (Cohen et al. 2021; Polyak 1964 for the heavy ball)."""
    lam = check_real("sharpness", sharpness, positive=True)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {beta:g}")
    return (2.0 + 2.0 * beta) / lam


EOS_OPTIMIZERS = ("gd", "momentum", "adam")


def eos_threshold(lr: ArrayLike, optimizer: str = "gd", momentum: float = 0.9) -> np.ndarray | float:
    """Edge-of-stability sharpness threshold (Cohen et al. 2021; Cohen et al. 2022 for Adam).

    ``"gd"``: 2/lr; ``"momentum"`` (heavy ball, beta = ``momentum``): (2 + 2 beta)/lr;
    ``"adam"`` (beta1 = ``momentum``): the preconditioned sharpness hovers near (2 + 2 beta1)/((1 - beta1) lr).
    """
    check_choice("optimizer", optimizer, EOS_OPTIMIZERS)
    eta = check_array("lr", lr, positive=True)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {beta:g}")
    if optimizer == "gd":
        return _out(2.0 / eta)
    if optimizer == "momentum":
        return _out((2.0 + 2.0 * beta) / eta)
    return _out((2.0 + 2.0 * beta) / ((1.0 - beta) * eta))


# ============================================================================ random-matrix model


def rmt_max_lr(batch_size: ArrayLike, lambda1: float, num_params: int, sigma2: float,
               num_data: float = math.inf) -> np.ndarray | float:
    """Largest stable SGD step 2/lambda'(B) from the batch-Hessian random-matrix model
    (Granziol, Zohren & Roberts 2022, as reconstructed in docs/theory.md#8-the-batch-hessian): lambda'(B) is
    :func:`workbench.rmt.batch_hessian_top` (lambda1 + P s^2/lambda1 above the BBP threshold, the
    Wigner edge 2 s sqrt(P) below it; s^2 = sigma2 (1/B - 1/N) N/(N - 1)).
    """

    b = check_array("batch_size", batch_size, positive=True)
    lam = check_real("lambda1", lambda1, positive=True)
    p = check_positive_int("num_params", num_params)
    s2 = check_real("sigma2", sigma2, nonnegative=True)
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    pred = rmt.batch_hessian_top(lam, p, s2, b.ravel(), num_data=n)
    return _out(np.asarray(pred.lr_max, dtype=np.float64).reshape(b.shape))


def rmt_critical_batch(lambda1: float, num_params: int, sigma2: float) -> float:
    """B* = P sigma^2 / lambda1^2: below it the random-matrix max lr grows linearly in B (docs/theory.md#8-the-batch-hessian;
    :func:`workbench.rmt.hessian_noise_critical_batch`)."""

    return rmt.hessian_noise_critical_batch(lambda1, num_params, sigma2)


def scaling_rule(batch_size: ArrayLike, lr_ref: float, b_ref: float, exponent: float = 1.0
                 ) -> np.ndarray | float:
    """lr(B) = lr_ref (B / b_ref)^exponent: exponent 1 is the linear rule for SGD (Goyal et al. 2017;
    Granziol et al. 2022 in the noise-dominated regime), 1/2 the square-root rule for Adam."""
    b = check_array("batch_size", batch_size, positive=True)
    lr_ref = check_real("lr_ref", lr_ref, positive=True)
    b_ref = check_real("b_ref", b_ref, positive=True)
    exponent = check_real("exponent", exponent)
    return _out(lr_ref * (b / b_ref) ** exponent)


# ============================================================================ scaling-law calculators


def kaplan_critical_batch(loss: ArrayLike, b_star: float = 2e8, inv_alpha_b: float = 4.76
                          ) -> np.ndarray | float:
    """Kaplan et al. 2020 (eq. 5.3): B_crit(L) = B* / L^(1/alpha_B) tokens, L in nats per token.

    Defaults B* = 2e8 tokens, 1/alpha_B = 4.76 are the paper's fitted values (editable).
    Worked value: L = 3 gives about 1.07e6 tokens.
    """
    loss_arr = check_array("loss", loss, positive=True)
    b_star = check_real("b_star", b_star, positive=True)
    inv_alpha_b = check_real("inv_alpha_b", inv_alpha_b, positive=True)
    return _out(b_star / loss_arr ** inv_alpha_b)


def step_law(num_params: ArrayLike, num_tokens: ArrayLike, *, lr_coef: float = 1.79, lr_n_exp: float = -0.713,
             lr_d_exp: float = 0.307, b_coef: float = 0.58, b_d_exp: float = 0.571
             ) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Step Law ("Predictable Scale Part I", 2025): lr_opt = 1.79 N^-0.713 D^0.307 and
    B_opt = 0.58 D^0.571 tokens, N non-embedding parameters, D training tokens (AdamW).

    Worked value: N = 1e9, D = 1e11 give lr = 1.6325e-3 and B = 1.108e6 tokens.
    """
    n = check_array("num_params", num_params, positive=True)
    d = check_array("num_tokens", num_tokens, positive=True)
    n, d = np.broadcast_arrays(n, d)  # both results have the broadcast shape of (N, D)
    for name, v in (("lr_coef", lr_coef), ("b_coef", b_coef)):
        check_real(name, v, positive=True)
    for name, v in (("lr_n_exp", lr_n_exp), ("lr_d_exp", lr_d_exp), ("b_d_exp", b_d_exp)):
        check_real(name, v)
    return _out(lr_coef * n ** lr_n_exp * d ** lr_d_exp), _out(b_coef * d ** b_d_exp)


# deprecated names (one release): each said less than the new one what it computes
critical_batch_size = deprecated_alias(mccandlish_critical_batch, "workbench.lr_batch.critical_batch_size",
                                       "workbench.lr_batch.mccandlish_critical_batch")
gd_stability_limit = deprecated_alias(max_lr_from_sharpness, "workbench.lr_batch.gd_stability_limit",
                                      "workbench.lr_batch.max_lr_from_sharpness")
