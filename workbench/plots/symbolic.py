"""Figures of the symbolic-checks notebook: closed form vs numerics, the check_all error table, Price's identity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure


def check_figure(sweep: np.ndarray, closed: np.ndarray, numeric: np.ndarray, tolerance: np.ndarray, *,
                 sweep_name: str, output_name: str, curve: tuple[np.ndarray, np.ndarray] | None = None,
                 title: str = "") -> go.Figure:
    """Closed form (line, or markers at the check points) and numerical values with +- tolerance bars.

    Args:
      sweep: (points,) the swept parameter at the check points.
      closed: (points,) closed-form values of one output.
      numeric: (points,) numerical values of that output.
      tolerance: (points,) allowed |closed - numeric|.
      curve: optional dense (x, y) of the closed form along the sweep.
    """
    sweep, closed, numeric, tolerance = (np.asarray(a, dtype=float).reshape(-1) for a in
                                         (sweep, closed, numeric, tolerance))
    if not (sweep.shape == closed.shape == numeric.shape == tolerance.shape):
        raise ValueError(f"sweep, closed, numeric and tolerance must have one shape, got "
                         f"{sweep.shape}, {closed.shape}, {numeric.shape}, {tolerance.shape}")
    fig = base_figure(title or f"{output_name}: closed form vs numerics", sweep_name, output_name)
    if curve is not None:
        fig.add_trace(go.Scatter(x=np.asarray(curve[0]), y=np.asarray(curve[1]), mode="lines",
                                 name="closed form (sympy -> JAX)", line=dict(color=THEORY_COLOR, width=2)))
    fig.add_trace(go.Scatter(x=sweep, y=closed, mode="markers", name="closed form at check points",
                             marker=dict(color=THEORY_COLOR, symbol="x", size=9)))
    fig.add_trace(go.Scatter(x=sweep, y=numeric, mode="markers", name="numerics +- tolerance",
                             marker=dict(color=MEASURED_COLOR, size=8),
                             error_y=dict(type="data", array=tolerance, visible=True, color=MEASURED_COLOR)))
    return fig


def error_ratio_figure(labels: Sequence[str], ratios: Sequence[float], passed: Sequence[bool], *,
                       title: str = "") -> go.Figure:
    """One bar per check: worst |closed - numeric| / tolerance (log scale); a check passes below 1."""
    ratios = np.asarray(ratios, dtype=float)
    if len(labels) != ratios.size or len(passed) != ratios.size:
        raise ValueError(f"labels, ratios and passed must have one length, got {len(labels)}, {ratios.size}, {len(passed)}")
    floor = 1e-6
    shown = np.clip(np.where(np.isfinite(ratios), ratios, 1e6), floor, None)
    fig = base_figure(title or "Worst error / tolerance per check (pass < 1)", "check", "error / tolerance", log_y=True,
                      height=460)
    fig.add_trace(go.Bar(x=list(labels), y=shown, name="error / tolerance",
                         marker_color=[MEASURED_COLOR if p else THEORY_COLOR for p in passed]))
    fig.add_hline(y=1.0, line=dict(color="black", dash="dash"), annotation_text="tolerance")
    fig.update_xaxes(tickangle=-35)
    return fig


def price_figure(k12: np.ndarray, lhs: np.ndarray, rhs: np.ndarray, tolerance: np.ndarray, *,
                 activation: str) -> go.Figure:
    """Both sides of Price's identity d/dK12 E[phi phi] = E[phi' phi'] along K12."""
    k12, lhs, rhs, tolerance = (np.asarray(a, dtype=float).reshape(-1) for a in (k12, lhs, rhs, tolerance))
    if not (k12.shape == lhs.shape == rhs.shape == tolerance.shape):
        raise ValueError("k12, lhs, rhs and tolerance must have one shape")
    fig = base_figure(f"Price's theorem for phi(x) = {activation}", "K12", "value")
    fig.add_trace(go.Scatter(x=k12, y=rhs, mode="lines", name="E[phi'(u) phi'(v)] (quadrature)",
                             line=dict(color=THEORY_COLOR, width=2)))
    fig.add_trace(go.Scatter(x=k12, y=lhs, mode="markers", name="d/dK12 E[phi(u) phi(v)] (autodiff of quadrature)",
                             marker=dict(color=MEASURED_COLOR, size=8),
                             error_y=dict(type="data", array=tolerance, visible=True)))
    return fig
