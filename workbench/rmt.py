"""Random-matrix formulas (docs/theory.md#7-random-matrices and docs/theory.md#8-the-batch-hessian) and the batch-Hessian model.

Conventions (docs/theory.md#7-random-matrices):

* Wigner: symmetric n x n, off-diagonal entries of variance sigma^2/n; the eigenvalue density
  tends to the semicircle rho(x) = sqrt(4 sigma^2 - x^2)/(2 pi sigma^2) on [-2 sigma, 2 sigma]
  (Wigner 1955).
* Marchenko-Pastur (1967): X of m x p with iid entries of variance sigma2, S = X^T X/m (p x p),
  ratio = p/m: edges sigma2 (1 -+ sqrt(ratio))^2, continuous density
  sqrt((l+ - l)(l - l-))/(2 pi sigma2 ratio l), plus an atom of mass 1 - 1/ratio at 0 if ratio > 1.
* Spiked Wigner W + theta v v^T (Baik-Ben Arous-Peche 2005; Peche 2006; Benaych-Georges &
  Nadakuditi 2011): top eigenvalue -> theta + sigma^2/theta and overlap^2 -> 1 - sigma^2/theta^2 if
  theta > sigma, else the edge 2 sigma.
* Spiked covariance I + ell v v^T, ratio = p/m: top sample eigenvalue -> (1 + ell)(1 + ratio/ell)
  if ell > sqrt(ratio), else (1 + sqrt(ratio))^2 (Baik & Silverstein 2006).

Outputs follow docs/conventions.md: a scalar input gives a Python float, arrays broadcast like numpy.

Batch Hessian (docs/theory.md#8-the-batch-hessian; after Granziol, Zohren & Roberts, JMLR 2022; the constants are
reconstructed from the standard results above, not read in the paper): H_B = H + E_B with E_B a Wigner
matrix of entry variance s^2 = sigma^2 (1/B - 1/N) N/(N - 1) (sampling B of N points without
replacement), so the noise bulk edge is 2 s sqrt(P) (P parameters: the Wigner sigma above is s sqrt(P)).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import numpy as np
from scipy.special import comb

from workbench._compat import deprecated_alias, keyword_only_since
from workbench.linalg.krylov import difference, squared_norms
from workbench.stats import fit_loglog, sampling_factor
from workbench.validation import check_choice, check_finite, check_positive_int, check_real, scalar_or_array

__all__ = ["batch_hessian_top", "batch_noise_variance", "BatchTopPrediction", "critical_batch_size",
           "fit_noise_variance", "hessian_noise_critical_batch", "marchenko_pastur_atom", "marchenko_pastur_density",
           "marchenko_pastur_edges", "marchenko_pastur_moment", "noise_frobenius_sq", "NoiseFit", "semicircle_cdf",
           "semicircle_density", "semicircle_moment", "spiked_covariance_outlier", "spiked_wigner_outlier",
           "spiked_wigner_overlap", "wigner_edge"]
from workbench.validation import check_number_array


def _array(name: str, x: Any) -> np.ndarray:
    arr = check_number_array(name, x, allow_empty=True, finite=False)
    check_finite(name, arr)
    return arr


# ----------------------------------------------------------------------------- Wigner
def semicircle_density(x: Any, sigma: float = 1.0) -> float | np.ndarray:
    """Wigner semicircle sqrt(4 sigma^2 - x^2)/(2 pi sigma^2) on [-2 sigma, 2 sigma], 0 outside.

    Limit of the eigenvalue density of a Wigner matrix with off-diagonal variance sigma^2/n.
    """
    sigma = check_real("sigma", sigma, positive=True)
    x = _array("x", x)
    return scalar_or_array(np.sqrt(np.clip(4 * sigma ** 2 - x ** 2, 0.0, None)) / (2 * np.pi * sigma ** 2))


def semicircle_cdf(x: Any, sigma: float = 1.0) -> float | np.ndarray:
    """Cumulative distribution of the semicircle: 1/2 + (u sqrt(4 - u^2))/(4 pi) + arcsin(u/2)/pi, u = x/sigma."""
    sigma = check_real("sigma", sigma, positive=True)
    u = np.clip(_array("x", x) / sigma, -2.0, 2.0)
    return scalar_or_array(0.5 + u * np.sqrt(4 - u ** 2) / (4 * np.pi) + np.arcsin(u / 2) / np.pi)


def semicircle_moment(k: int, sigma: float = 1.0) -> float:
    """k-th moment of the semicircle: sigma^k Catalan(k/2) for even k, 0 for odd k."""
    k = check_positive_int("k", k, minimum=0)
    sigma = check_real("sigma", sigma, positive=True)
    if k % 2:
        return 0.0
    j = k // 2
    catalan = comb(2 * j, j, exact=True) // (j + 1)  # exact integer
    log10_value = math.log10(catalan) + k * math.log10(sigma)  # math.log10 takes big ints exactly
    if log10_value > math.log10(np.finfo(float).max):
        raise ValueError(f"semicircle_moment: sigma^k Catalan(k/2) for k = {k}, sigma = {sigma:g} is about "
                         f"10^{log10_value:.1f}, beyond the float64 range (1.8e308); use a smaller k or sigma")
    if catalan.bit_length() < 1000 and math.isfinite(sigma ** k):
        return float(catalan) * sigma ** k
    return math.exp(log10_value * math.log(10))  # a huge Catalan number times a tiny sigma^k


def wigner_edge(sigma: float = 1.0) -> float:
    """Right edge 2 sigma of the semicircle."""
    return 2.0 * check_real("sigma", sigma, positive=True)


def spiked_wigner_outlier(theta: Any, sigma: float = 1.0) -> float | np.ndarray:
    """Limit of the top eigenvalue of W + theta v v^T: theta + sigma^2/theta if theta > sigma, else 2 sigma."""
    sigma = check_real("sigma", sigma, positive=True)
    theta = _array("theta", theta)
    safe = np.where(theta > sigma, theta, 1.0)
    return scalar_or_array(np.where(theta > sigma, safe + sigma ** 2 / safe, 2 * sigma))


def spiked_wigner_overlap(theta: Any, sigma: float = 1.0) -> float | np.ndarray:
    """Limit of <v, top eigenvector>^2: 1 - sigma^2/theta^2 if theta > sigma, else 0."""
    sigma = check_real("sigma", sigma, positive=True)
    theta = _array("theta", theta)
    safe = np.where(theta > sigma, theta, 1.0)
    return scalar_or_array(np.where(theta > sigma, 1 - sigma ** 2 / safe ** 2, 0.0))


# ----------------------------------------------------------------------------- Marchenko-Pastur
def marchenko_pastur_edges(ratio: float, sigma2: float = 1.0) -> tuple[float, float]:
    """Edges sigma2 (1 - sqrt(ratio))^2 and sigma2 (1 + sqrt(ratio))^2 of the MP law (ratio = p/m)."""
    ratio = check_real("ratio", ratio, positive=True)
    sigma2 = check_real("sigma2", sigma2, positive=True)
    r = math.sqrt(ratio)
    return sigma2 * (1 - r) ** 2, sigma2 * (1 + r) ** 2


def marchenko_pastur_density(x: Any, ratio: float, sigma2: float = 1.0) -> float | np.ndarray:
    """Continuous part sqrt((l+ - x)(x - l-))/(2 pi sigma2 ratio x) of the MP law of S = X^T X/m, ratio = p/m.

    Integrates to min(1, 1/ratio); for ratio > 1 the rest is the atom :func:`marchenko_pastur_atom` at 0.
    """
    lo, hi = marchenko_pastur_edges(ratio, sigma2)
    x = _array("x", x)
    inside = (x > lo) & (x < hi)
    xs = np.where(inside, x, 1.0)
    val = np.sqrt(np.clip((hi - xs) * (xs - lo), 0.0, None)) / (2 * np.pi * sigma2 * ratio * xs)
    return scalar_or_array(np.where(inside, val, 0.0))


def marchenko_pastur_atom(ratio: float) -> float:
    """Mass of the atom at 0: 1 - 1/ratio if ratio > 1, else 0."""
    ratio = check_real("ratio", ratio, positive=True)
    return max(0.0, 1.0 - 1.0 / ratio)


MAX_MOMENT_ORDER = 100_000  # the largest k of marchenko_pastur_moment (a sum of k terms)


def marchenko_pastur_moment(k: int, ratio: float, sigma2: float = 1.0) -> float:
    """k-th moment (1/p) E tr S^k = sigma2^k sum_{r=0}^{k-1} ratio^r/(r+1) C(k, r) C(k-1, r) (Narayana).

    Includes the atom; m1 = sigma2, m2 = sigma2^2 (1 + ratio).
    """
    k = check_positive_int("k", k, minimum=0)
    ratio = check_real("ratio", ratio, positive=True)
    sigma2 = check_real("sigma2", sigma2, positive=True)
    if k > MAX_MOMENT_ORDER:  # the Narayana sum has k terms: refuse before a loop that never ends
        raise ValueError(f"k must be an integer <= {MAX_MOMENT_ORDER} (the moment's sum has k terms), got {k}")
    if k == 0:
        return 1.0
    try:
        value = float(sigma2 ** k * sum(ratio ** r / (r + 1) * comb(k, r, exact=True) * comb(k - 1, r, exact=True)
                                        for r in range(k)))
    except OverflowError:
        value = math.inf
    if math.isfinite(value):
        return value
    # in logarithms (lgamma): the exact sum overflowed a float somewhere; say so if the moment itself does
    lcomb = lambda n, r: math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)  # noqa: E731
    logs = [r * math.log(ratio) - math.log(r + 1) + lcomb(k, r) + lcomb(k - 1, r) for r in range(k)]
    top = max(logs)
    log_value = k * math.log(sigma2) + top + math.log(sum(math.exp(v - top) for v in logs))
    if log_value > math.log(np.finfo(float).max):
        raise ValueError(f"marchenko_pastur_moment: the k = {k} moment for ratio = {ratio:g}, sigma2 = {sigma2:g} is "
                         f"about 10^{log_value / math.log(10):.1f}, beyond the float64 range; use a smaller k")
    return math.exp(log_value)


def spiked_covariance_outlier(ell: Any, ratio: float) -> float | np.ndarray:
    """Limit of the top sample eigenvalue for population covariance I + ell v v^T:
    (1 + ell)(1 + ratio/ell) if ell > sqrt(ratio), else the MP edge (1 + sqrt(ratio))^2."""
    ratio = check_real("ratio", ratio, positive=True)
    ell = _array("ell", ell)
    if np.any(ell < 0):
        raise ValueError(f"ell must be >= 0 (a covariance spike), got min {float(ell.min())}")
    above = ell > math.sqrt(ratio)
    safe = np.where(above, ell, 1.0)
    return scalar_or_array(np.where(above, (1 + safe) * (1 + ratio / safe), (1 + math.sqrt(ratio)) ** 2))


# ----------------------------------------------------------------------------- batch Hessian
def batch_noise_variance(sigma2: float, batch_size: Any, num_data: float = math.inf) -> float | np.ndarray:
    """Entry variance s^2 = sigma2 (1/B - 1/N) N/(N - 1) of the batch noise E_B = H_B - H (sigma2/B if N = inf).

    The factor is the variance of a mean of B draws without replacement from N (Cochran 1977):
    :func:`workbench.stats.sampling_factor`.
    """
    sigma2 = check_real("sigma2", sigma2, nonnegative=True)
    b = _array("batch_size", batch_size)
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    if np.any(b < 1) or np.any(b > n):
        raise ValueError(f"batch_size must be in [1, num_data={n:g}], got {b}")
    if not math.isinf(n) and n <= 1:
        raise ValueError(f"num_data must be > 1, got {n}")
    return scalar_or_array(sigma2 * np.asarray(sampling_factor(b, n)))


class BatchTopPrediction(NamedTuple):
    """Predicted extremal eigenvalues of the batch curvature: ``eigenvalues`` (one per full-data eigenvalue
    and batch size, shape (len(B), k)), ``top`` (len(B),), the noise-bulk ``edge`` (len(B),), the BBP
    ``threshold`` (len(B),), ``lr_max`` = 2/top, and ``noise_var`` s^2 (len(B),)."""

    batch_size: np.ndarray
    eigenvalues: np.ndarray
    top: np.ndarray
    edge: np.ndarray
    threshold: np.ndarray
    lr_max: np.ndarray
    noise_var: np.ndarray
    kind: str


def batch_hessian_top(lambda1: Any, num_params: int, sigma2: float, batch_size: Any,
                      num_data: float = math.inf, kind: str = "hessian") -> BatchTopPrediction:
    """Extremal eigenvalue of the batch curvature at batch size B, from the full-data top eigenvalues.

    ``kind="hessian"`` (Wigner noise, docs/theory.md#8-the-batch-hessian): s^2 = :func:`batch_noise_variance`,
    Wigner sigma = s sqrt(P); each lambda_i > s sqrt(P) moves to lambda_i + P s^2/lambda_i, and the
    top is max(those, edge 2 s sqrt(P)). Largest stable SGD step 2/lambda'(B).

    ``kind="ggn"`` (Marchenko-Pastur; a reconstruction): G_B = (1/B) sum_i J_i^T H_i J_i is modelled as
    the sample second-moment matrix of B draws whose population matrix is sigma2 (I + sum_i ell_i v_i v_i^T),
    with ell_i = lambda_i/sigma2 - 1 and the effective aspect ratio P s^2/sigma2 (= P/B for N = inf):
    spiked covariance, lambda_i -> sigma2 (1 + ell)(1 + ratio/ell) above ell > sqrt(ratio), edge
    sigma2 (1 + sqrt(ratio))^2. Here ``sigma2`` is the isotropic bulk level of the per-example GGN.

    Worked example (Hessian): P = 1e4, sigma2 = 0.01, lambda1 = 5, N = inf gives 20, 10, 6.25, 5.2 at
    B = 1, 4, 16, 100.
    """
    check_choice("kind", kind, ("hessian", "ggn"))
    lam = np.atleast_1d(_array("lambda1", lambda1))
    if lam.ndim != 1 or np.any(lam <= 0):
        raise ValueError(f"lambda1 must be positive full-data top eigenvalue(s), got {lam}")
    p = check_positive_int("num_params", num_params)
    b = np.atleast_1d(_array("batch_size", batch_size))
    s2 = np.atleast_1d(batch_noise_variance(sigma2, b, num_data))
    if kind == "hessian":
        wig = np.sqrt(s2 * p)  # the Wigner sigma of E_B
        edge = 2 * wig
        threshold = wig
        # spiked Wigner per batch size; no noise (B = N) leaves the eigenvalues where they are
        moved = np.stack([spiked_wigner_outlier(lam, w) if w > 0 else lam for w in wig])
    else:
        sigma2 = check_real("sigma2", sigma2, positive=True)
        ratio = p * s2 / sigma2
        edge = sigma2 * (1 + np.sqrt(ratio)) ** 2
        threshold = sigma2 * (1 + np.sqrt(ratio))  # lambda at which ell = sqrt(ratio)
        ell = np.maximum(lam / sigma2 - 1, 0.0)
        # spiked covariance per batch size; at ratio 0 (B = N) the sample matrix is the population one
        moved = np.stack([sigma2 * (spiked_covariance_outlier(ell, r) if r > 0 else 1 + ell) for r in ratio])
    top = np.maximum(moved.max(axis=1), edge)
    return BatchTopPrediction(b, moved, top, edge, threshold, 2 / top, s2, kind)


def hessian_noise_critical_batch(lambda1: float, num_params: int, sigma2: float) -> float:
    """B* = P sigma2/lambda1^2, the batch size at which the batch-Hessian noise moves the top eigenvalue by a
    factor 2: lr_max(B) = (2/lambda1)/(1 + B*/B) above threshold (N = inf, Hessian model)."""
    lam = check_real("lambda1", lambda1, positive=True)
    p = check_positive_int("num_params", num_params)
    return p * check_real("sigma2", sigma2, nonnegative=True) / lam ** 2


critical_batch_size = deprecated_alias(hessian_noise_critical_batch, "workbench.rmt.critical_batch_size",
                                       "workbench.rmt.hessian_noise_critical_batch")


# ----------------------------------------------------------------------------- fitting sigma^2
class NoiseFit(NamedTuple):
    """``sigma2`` with its standard error, from measured s^2 = ||H_B - H||_F^2/P^2 at each batch size;
    ``exponent`` of s^2 ~ B^exponent (log-log least squares on B <= N/10, NaN with < 2 such points)."""

    sigma2: float
    sigma2_stderr: float
    exponent: float
    batch_size: np.ndarray
    noise_var: np.ndarray


@keyword_only_since("key")
def noise_frobenius_sq(op_batch: Any, op_full: Any, num_probes: int, *, key: jax.Array) -> tuple[float, float]:
    """Hutchinson estimate of ||A - C||_F^2 = tr((A - C)^2) as the mean of |(A - C) z|^2, Rademacher z.

    Returns (estimate, standard error). Uses ``num_probes`` products with each operator.
    """
    vals = squared_norms(difference(op_batch, op_full), num_probes, key=key)
    return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(len(vals)))


def fit_noise_variance(batch_size: Any, frob_sq: Any, num_params: int, num_data: float = math.inf) -> NoiseFit:
    """Fit sigma2 in s^2(B) = sigma2 (1/B - 1/N) N/(N-1), with s^2(B) = ||H_B - H||_F^2/P^2 measured.

    ``frob_sq``: measured ||H_B - H||_F^2 per batch size (averaged over batches). sigma2 is the least-squares
    slope through the origin of s^2 against c_B = (1/B - 1/N) N/(N - 1); the exponent is the log-log slope
    of s^2 against B over B <= N/10 (the B << N range where s^2 ~ 1/B).
    """
    b = np.atleast_1d(_array("batch_size", batch_size))
    f = np.atleast_1d(_array("frob_sq", frob_sq))
    if b.shape != f.shape:
        raise ValueError(f"batch_size and frob_sq must have the same shape, got {b.shape} and {f.shape}")
    p = check_positive_int("num_params", num_params)
    s2 = f / p ** 2
    c = np.atleast_1d(batch_noise_variance(1.0, b, num_data))
    keep = c > 0
    if not keep.any():
        raise ValueError("need at least one batch size below num_data to fit sigma2")
    sigma2 = float(np.sum(c[keep] * s2[keep]) / np.sum(c[keep] ** 2))
    resid = s2[keep] - sigma2 * c[keep]
    dof = max(int(keep.sum()) - 1, 1)
    stderr = float(math.sqrt(np.sum(resid ** 2) / dof / np.sum(c[keep] ** 2))) if keep.sum() > 1 else math.nan
    small = (b <= num_data / 10) & (s2 > 0)
    exponent = fit_loglog(b[small], s2[small]).exponent if small.sum() >= 2 else math.nan
    return NoiseFit(sigma2, stderr, exponent, b, s2)
