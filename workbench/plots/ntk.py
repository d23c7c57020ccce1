"""Figures of the NTK notebook: spectra, width convergence, sphere eigenvalues, kernel drift.

Pure functions from the NamedTuples of :mod:`workbench.studies.ntk` to plotly figures; theory in
:data:`~workbench.plots.THEORY_COLOR`, measurements in :data:`~workbench.plots.MEASURED_COLOR`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def spectrum(result, *, title: str = "") -> go.Figure:
    """Eigenvalues against rank (log y): each seed's empirical NTK and the infinite-width NTK."""
    emp, inf = np.asarray(result.empirical), np.asarray(result.infinite)
    if emp.ndim != 2 or emp.shape[1] != inf.shape[0]:
        raise ValueError(f"empirical must have shape (seeds, {inf.shape[0]}), got {emp.shape}")
    rank = np.arange(1, inf.shape[0] + 1)
    fig = base_figure(title or f"NTK spectrum: width {result.width} vs infinite width", "rank i", "eigenvalue lambda_i",
                      log_x=True, log_y=True)
    floor = 1e-12 * max(float(np.max(np.abs(inf))), 1e-300)
    for i, row in enumerate(emp):
        fig.add_trace(go.Scatter(x=rank, y=np.maximum(row, floor), mode="markers", name=f"width {result.width}, seed {i}",
                                 marker=dict(color=MEASURED_COLOR, size=5, opacity=0.6), showlegend=i == 0,
                                 legendgroup="emp"))
    fig.add_trace(go.Scatter(x=rank, y=np.maximum(inf, floor), mode="lines", name="infinite width",
                             line=dict(color=THEORY_COLOR, width=2)))
    return fig


def convergence(result, *, title: str = "") -> go.Figure:
    """Relative distance to the infinite-width NTK against width (log-log), seed means with spread, fitted lines."""
    w = np.asarray(result.widths, float)
    fig = base_figure(title or "Empirical NTK -> infinite-width NTK", "width", "relative distance", log_x=True, log_y=True)
    for name, vals, slope, icpt, color in (
            ("Frobenius", result.frobenius, result.slope_frobenius, result.intercept_frobenius, MEASURED_COLOR),
            ("spectral", result.spectral, result.slope_spectral, result.intercept_spectral, "#2ca02c")):
        vals = np.asarray(vals)
        mean, sd = vals.mean(axis=1), vals.std(axis=1)
        fig.add_trace(go.Scatter(x=w, y=mean, mode="markers+lines", name=f"{name} (mean of {vals.shape[1]} seeds)",
                                 error_y=dict(type="data", array=sd, visible=True), line=dict(color=color)))
        if np.isfinite(slope):  # a partial result of one width has no fit yet
            fig.add_trace(go.Scatter(x=w, y=np.exp(icpt) * w**slope, mode="lines",
                                     name=f"{name} fit: slope {slope:.3f}", line=dict(color=color, dash="dot")))
    anchor = float(np.asarray(result.frobenius).mean(axis=1)[0])
    fig.add_trace(go.Scatter(x=w, y=anchor * (w / w[0]) ** -0.5, mode="lines", name="theory: width^-1/2",
                             line=dict(color=THEORY_COLOR, dash="dash")))
    return fig


def sphere(result, *, title: str = "") -> go.Figure:
    """Mercer eigenvalues mu_k against degree k (log-log), the k^-d line, and Gram eigenvalues / n by harmonic index."""
    deg, mu = np.asarray(result.degrees), np.asarray(result.mu)
    scale = float(np.max(np.abs(mu)))
    keep = (deg >= 1) & (mu > 1e-12 * scale)
    fig = base_figure(title or f"Sphere eigenvalues on S^{result.dim - 1} (fitted decay k^{result.decay:.2f})",
                      "degree k", "mu_k", log_x=True, log_y=True)
    fig.add_trace(go.Scatter(x=deg[keep], y=mu[keep], mode="markers", name="mu_k (Funk-Hecke)",
                             marker=dict(color=THEORY_COLOR, size=7)))
    even = keep & (deg >= 2) & (deg % 2 == 0)
    if np.any(even):
        k0 = deg[even][0]
        ref = mu[deg == k0][0] * (deg[even] / k0) ** (-float(result.dim))
        fig.add_trace(go.Scatter(x=deg[even], y=ref, mode="lines", name=f"k^-{result.dim} (d = {result.dim})",
                                 line=dict(color="gray", dash="dash")))
    if result.gram is not None:
        # Gram eigenvalue number j belongs to degree k with N(d,0) + ... + N(d,k-1) <= j < ... + N(d,k)
        mult = np.asarray(result.multiplicities)
        edges = np.cumsum(mult)
        g = np.asarray(result.gram)
        j = np.arange(g.shape[0])
        kdeg = np.searchsorted(edges, j, side="right")
        ok = (kdeg >= 1) & (kdeg <= deg[-1]) & (g > 1e-12 * scale)
        jitter = 1 + 0.15 * ((j - edges[np.maximum(kdeg - 1, 0)]) / np.maximum(mult[np.minimum(kdeg, deg[-1])], 1) - 0.5)
        fig.add_trace(go.Scatter(x=(kdeg * jitter)[ok], y=g[ok], mode="markers",
                                 name=f"Gram eigenvalues / n (n = {g.shape[0]})",
                                 marker=dict(color=MEASURED_COLOR, size=4, opacity=0.6)))
    return fig


def drift(result, *, title: str = "") -> go.Figure:
    """Final kernel drift ||Theta_T - Theta_0|| / ||Theta_0|| against width, one line per parametrization."""
    w = np.asarray(result.widths, float)
    fig = base_figure(title or f"Kernel drift after {int(result.steps[-1])} GD steps", "width",
                      "||Theta_T - Theta_0||_F / ||Theta_0||_F", log_x=True, log_y=True)
    for a, par in enumerate(result.parametrizations):
        d = np.asarray(result.drift)[a, :, :, -1]
        ok = np.isfinite(d).any(axis=1)
        mean = np.where(ok, np.nanmean(np.where(np.isfinite(d), d, 0.0), axis=1) * d.shape[1]
                        / np.maximum(np.isfinite(d).sum(axis=1), 1), np.nan)
        slope = result.slopes[a]
        label = f"{par}" + (f" (slope {slope:.2f})" if np.isfinite(slope) else "")
        fig.add_trace(go.Scatter(x=w[ok], y=mean[ok], mode="markers+lines", name=label,
                                 line=dict(color=_PALETTE[a % len(_PALETTE)])))
        if np.any(np.asarray(result.diverged)[a]):
            bad = np.asarray(result.diverged)[a].any(axis=1)
            fig.add_trace(go.Scatter(x=w[bad], y=np.full(int(bad.sum()), np.nanmax(mean) if np.any(ok) else 1.0),
                                     mode="markers", marker=dict(symbol="x", size=10, color="black"),
                                     name=f"{par}: diverged"))
    ok_ntk = [a for a, p in enumerate(result.parametrizations) if p == "ntk"]
    if ok_ntk:
        d0 = np.nanmean(np.asarray(result.drift)[ok_ntk[0], 0, :, -1])
        if np.isfinite(d0) and d0 > 0:
            fig.add_trace(go.Scatter(x=w, y=d0 * (w / w[0]) ** -0.5, mode="lines", name="lazy theory: width^-1/2",
                                     line=dict(color=THEORY_COLOR, dash="dash")))
    return fig
