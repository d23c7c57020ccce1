"""Figures for the batch-Hessian study (pure functions: :class:`BatchHessianStudy` -> plotly figure).

* :func:`density_figure`: SLQ spectral densities per batch size and for the full data (log y), with the
  random-matrix bulk of the noise (semicircle of radius 2 s sqrt(P), or Marchenko-Pastur for the GGN) that the
  study computed (``bulk_x``, ``bulk_density``).
* :func:`top_eigenvalue_figure`: top batch eigenvalue against B with the model's prediction, the full-data
  value, the measured noise top and the Wigner edge, and a plain statement of how far the noise exceeds it.
* :func:`lr_max_figure`: the implied largest stable SGD step 2/lambda'(B), measured and predicted.
"""

from __future__ import annotations

import warnings

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

DENSITY_FLOOR = 1e-6  # densities below this (relative to the peak) are not drawn on the log axis


def _colors(n: int) -> list[str]:
    return plotly.colors.sample_colorscale("Viridis", [i / max(n - 1, 1) for i in range(n)])


def _label(study) -> str:
    return "GGN" if study.kind == "ggn" else "Hessian"


def density_figure(study, *, show_rmt: bool = True) -> go.Figure:
    """SLQ densities of the batch curvature for each B (and the full data), log scale, with the RMT noise bulk."""
    fig = base_figure(f"Spectral density of the batch {_label(study)} (SLQ)", "eigenvalue", "density", log_y=True)
    peak = max(float(np.max(study.full_density)), float(np.max(study.batch_density)))
    floor = DENSITY_FLOOR * peak
    colors = _colors(len(study.batch_sizes))
    bulk = "Wigner bulk of the noise" if study.kind == "hessian" else "Marchenko-Pastur bulk"
    for i, (b, dens, c) in enumerate(zip(study.batch_sizes, study.batch_density, colors)):
        fig.add_trace(go.Scatter(x=study.grid, y=np.where(dens > floor, dens, np.nan), mode="lines",
                                 line=dict(color=c), name=f"B = {b}", legendgroup=f"B{b}"))
        # the bulk is a field of the study (studies.hessian.noise_bulks): NaN where there is none
        keep = np.isfinite(study.bulk_x[i]) if show_rmt and study.bulk_x is not None else np.zeros(1, bool)
        if keep.any():
            y = study.bulk_density[i][keep]
            fig.add_trace(go.Scatter(x=study.bulk_x[i][keep], y=np.where(y > floor, y, np.nan), mode="lines",
                                     line=dict(color=c, dash="dot"), name=f"{bulk}, B = {b}", legendgroup=f"B{b}",
                                     showlegend=False))
    fig.add_trace(go.Scatter(x=study.grid, y=np.where(study.full_density > floor, study.full_density, np.nan),
                             mode="lines", line=dict(color="black", width=3), name=f"full data (N = {study.num_data})"))
    fig.add_annotation(text="dotted: random-matrix bulk of the noise with the measured s^2", showarrow=False,
                       xref="paper", yref="paper", x=1, y=1.0, xanchor="right", yanchor="bottom", font=dict(size=11))
    return fig


def _mean_std(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation per row over the finite entries (a partial study's draws to come are
    NaN); the deviation is 0 for a row with one draw done."""
    a = np.asarray(a, dtype=float)
    count = np.isfinite(a).sum(axis=1)
    with warnings.catch_warnings():  # rows with no draw (mean NaN) or one (no spread): handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(a, axis=1), np.nanstd(a, axis=1, ddof=1)
    return mean, np.where(count > 1, std, 0.0)


def noise_excess(study) -> np.ndarray:
    """Measured top eigenvalue of H_B - H divided by the Wigner edge 2 s sqrt(P), per B < N (mean over the draws
    done)."""
    keep = study.batch_sizes < study.num_data
    return _mean_std(study.noise_top)[0][keep] / study.wigner_edge[keep]


def top_eigenvalue_figure(study) -> go.Figure:
    """Top eigenvalue of the batch curvature against B: measured, predicted, full data, noise top vs Wigner edge."""
    fig = base_figure(f"Top eigenvalue of the batch {_label(study)}", "batch size B", "eigenvalue",
                      log_x=True, log_y=True)
    b = study.batch_sizes
    m, sd = _mean_std(study.batch_top[:, :, 0])
    fig.add_trace(go.Scatter(x=b, y=m, error_y=dict(type="data", array=sd), mode="markers+lines",
                             marker=dict(color=MEASURED_COLOR, size=9), line=dict(color=MEASURED_COLOR),
                             name="measured lambda_max(H_B)"))
    fig.add_trace(go.Scatter(x=study.curve.batch_size, y=study.curve.top, mode="lines",
                             line=dict(color=THEORY_COLOR), name="random-matrix prediction"))
    fig.add_trace(go.Scatter(x=[1, study.num_data], y=[study.full_top[0]] * 2, mode="lines",
                             line=dict(color="black", dash="dash"), name="full-data lambda_max(H)"))
    keep = b < study.num_data
    nm, nsd = _mean_std(study.noise_top[keep])
    fig.add_trace(go.Scatter(x=b[keep], y=nm, error_y=dict(type="data", array=nsd), mode="markers",
                             marker=dict(color="#ff7f0e", symbol="diamond", size=8),
                             name="measured lambda_max(H_B - H)"))
    fig.add_trace(go.Scatter(x=b[keep], y=study.wigner_edge[keep], mode="lines+markers",
                             line=dict(color="#ff7f0e", dash="dot"), marker=dict(symbol="x"),
                             name="Wigner edge 2 s sqrt(P) (measured s)"))
    ratio = noise_excess(study)
    if ratio.size:
        verdict = ("the Wigner model underestimates the noise" if ratio.max() > 1.2 else
                   "the Wigner edge matches the noise")
        fig.add_annotation(
            text=(f"measured noise top / Wigner edge = {ratio.min():.2f} to {ratio.max():.2f}: {verdict}"),
            showarrow=False, xref="paper", yref="paper", x=0.01, y=0.02, xanchor="left", yanchor="bottom",
            font=dict(size=12, color="#b00" if ratio.max() > 1.2 else "#070"), bgcolor="rgba(255,255,255,0.8)")
    return fig


def lr_max_figure(study) -> go.Figure:
    """Largest stable SGD step 2/lambda_max(H_B) against B: measured (from the batch top) and predicted."""
    fig = base_figure("Implied largest stable SGD learning rate", "batch size B", "2 / lambda_max",
                      log_x=True, log_y=True)
    m, _ = _mean_std(study.batch_top[:, :, 0])
    fig.add_trace(go.Scatter(x=study.batch_sizes, y=2 / m, mode="markers+lines", marker=dict(color=MEASURED_COLOR, size=9),
                             line=dict(color=MEASURED_COLOR), name="measured 2/lambda_max(H_B)"))
    fig.add_trace(go.Scatter(x=study.curve.batch_size, y=study.curve.lr_max, mode="lines",
                             line=dict(color=THEORY_COLOR), name="prediction 2/lambda'(B)"))
    fig.add_trace(go.Scatter(x=[1, study.num_data], y=[2 / study.full_top[0]] * 2, mode="lines",
                             line=dict(color="black", dash="dash"), name="2/lambda_max(H) (full batch)"))
    return fig
