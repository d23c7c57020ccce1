"""Small statistics shared by the theories: the sampling factor of a batch mean and least-squares power-law
(log-log) fits. One home each, so every module means the same thing by them.

* :func:`sampling_factor`: c_B = (n - B)/(B (n - 1)) = (1/B - 1/n) n/(n - 1), the variance of the mean of B
  draws without replacement from n values per unit of their population (1/n) variance (Cochran 1977,
  "Sampling Techniques", eq. 2.8); 1/B for n = inf or with replacement. Used by the gradient-noise model
  (McCandlish et al. 2018; docs/theory.md#9-learning-rate-and-batch-size) and the batch-Hessian model
  (Granziol et al. 2022; docs/theory.md#8-the-batch-hessian).
* :func:`fit_loglog`: y = prefactor * x^exponent by least squares on (log x, log y), with the slope's
  standard error (docs/theory.md#16-sweeps-and-fits).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from workbench.validation import check_array, check_number_array, check_real

__all__ = ["PowerLawFit", "fit_loglog", "sampling_factor"]


def sampling_factor(batch_size: Any, num_data: float = math.inf) -> np.ndarray | float:
    """c_B = (n - B)/(B (n - 1)): variance of a without-replacement batch mean per unit of the
    population (1/n) per-example variance; 1/B for n = inf (or sampling with replacement).

    Scalar ``batch_size`` gives a Python float, an array gives an array of its shape.

    >>> sampling_factor(10, 101)
    0.091
    """
    b = check_array("batch_size", batch_size, positive=True)
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    if math.isinf(n):
        out = 1.0 / b
    else:
        if n < 2:
            raise ValueError(f"num_data must be >= 2 (or inf), got {n:g}")
        if np.any(b > n):
            raise ValueError(f"batch_size must not exceed num_data={n:g}, got {batch_size!r}")
        out = (n - b) / (b * (n - 1.0))
    return float(out) if np.ndim(out) == 0 else out


class PowerLawFit(NamedTuple):
    """y = prefactor * x^exponent fitted by least squares in log-log, with the slope's standard error."""

    exponent: float
    exponent_se: float
    prefactor: float
    num_points: int


def fit_loglog(x: Any, y: Any, *, x_max: float = math.inf) -> PowerLawFit:
    """Least-squares line log y = exponent log x + log prefactor through the points with x <= ``x_max``
    and finite positive y (the others are dropped; at least 2 must remain). ``x`` must be positive.

    The standard error of the exponent is the usual OLS one, sqrt(RSS/(k - 2) / sum (log x - mean)^2)
    (NaN with k = 2 points).

    >>> round(fit_loglog([1, 2, 4], [3, 12, 48]).exponent, 12)
    2.0
    """
    xa = check_array("x", x, positive=True).ravel()
    ya = check_number_array("y", y, finite=False).ravel()  # NaN/inf and y <= 0 are dropped below
    if ya.shape != xa.shape:
        raise ValueError(f"y must have the same length as x ({xa.size}), got shape {ya.shape}")
    x_max = check_real("x_max", x_max, positive=True, allow_inf=True)
    with np.errstate(invalid="ignore"):
        ok = (xa <= x_max) & np.isfinite(ya) & (ya > 0)
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 points with x <= x_max and finite positive y, got {int(ok.sum())}")
    lx, ly = np.log(xa[ok]), np.log(ya[ok])
    coef = np.polyfit(lx, ly, 1)
    slope, intercept = float(coef[0]), float(coef[1])
    k = int(ok.sum())
    if k > 2:
        resid = ly - (slope * lx + intercept)
        se = math.sqrt(float(resid @ resid) / (k - 2) / float(np.sum((lx - lx.mean()) ** 2)))
    else:
        se = math.nan
    return PowerLawFit(slope, se, math.exp(intercept), k)
