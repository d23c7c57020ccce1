"""Numbers the symbolic checks are drawn with: the closed form of a derivation on a dense grid of its swept
parameter (the check itself, closed form against numerics, is :func:`workbench.symbolic.check`)."""

from __future__ import annotations

import numpy as np

from workbench.symbolic.core import CheckResult, Derivation
from workbench.validation import check_positive_int

__all__ = ["dense_curve"]


def dense_curve(deriv: Derivation, result: CheckResult, num: int = 60) -> tuple[np.ndarray, np.ndarray] | None:
    """The closed form on a dense grid of the swept parameter (None for integer sweeps, or where the
    closed form is only defined at the check points)."""
    num = check_positive_int("num", num, minimum=2)
    if deriv.sweep_decimals == 0:
        return None
    name, lo, hi = deriv.sweep
    pts = deriv.points(num) if deriv.sweep_decimals is None else np.unique(deriv.points(num), axis=0)
    col = deriv.point_names.index(name)
    base = result.points[0]
    pts = np.repeat(base[None, :], pts.shape[0], axis=0)
    pts[:, col] = np.linspace(lo, hi, num)
    try:
        vals = deriv.closed_values(pts, **result.closed_inputs)
    except Exception:  # a closed form only defined at the check points (e.g. integer sizes): markers only
        return None
    return pts[:, col], vals
