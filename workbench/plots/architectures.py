"""Figures of :mod:`workbench.studies.architectures`: NTK spectra per architecture, channel convergence."""

from __future__ import annotations

import warnings

import numpy as np
import plotly.graph_objects as go

from workbench.plots import THEORY_COLOR, base_figure
from workbench.studies.architectures import LABELS, ChannelConvergence, Spectra


def spectra_figure(result: Spectra) -> go.Figure:
    """Normalized NTK eigenvalues against rank (log-log), one curve per architecture, decay in the legend."""
    fig = base_figure("NTK spectrum by architecture", "rank", "eigenvalue / trace", log_x=True, log_y=True)
    ranks = np.arange(1, result.eigenvalues.shape[1] + 1)
    for name, ev, d in zip(result.names, result.eigenvalues, result.decay):
        keep = ev > 0
        fig.add_trace(go.Scatter(x=ranks[keep], y=ev[keep], mode="lines+markers", marker=dict(size=4),
                                 name=f"{LABELS[name]} (slope {d:.2f})"))
    lo, hi = result.fit_ranks
    fig.add_vrect(x0=lo, x1=hi, fillcolor="grey", opacity=0.08, line_width=0)
    return fig


def convergence_figure(results: list[ChannelConvergence] | ChannelConvergence) -> go.Figure:
    """Relative distance empirical vs analytic NTK against channels (log-log), seeds as dots, mean as a line,
    and the channels^-1/2 reference through the first mean."""
    results = [results] if isinstance(results, ChannelConvergence) else list(results)
    fig = base_figure("Empirical NTK -> infinite-width NTK", "channels", "||Theta_emp - Theta||_F / ||Theta||_F",
                      log_x=True, log_y=True)
    for r in results:
        with warnings.catch_warnings():  # a partial result: seeds not done yet are NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(r.distance, axis=1)
        fig.add_trace(go.Scatter(x=r.channels, y=mean, mode="lines+markers",
                                 name=f"{LABELS[r.name]} (slope {r.slope:.2f})"))
        xs = np.repeat(r.channels, r.distance.shape[1])
        fig.add_trace(go.Scatter(x=xs, y=r.distance.ravel(), mode="markers", marker=dict(size=4, opacity=0.4),
                                 showlegend=False))
    if results:
        r = results[0]
        ref = np.nanmean(r.distance[0]) * (r.channels / r.channels[0]) ** -0.5
        fig.add_trace(go.Scatter(x=r.channels, y=ref, mode="lines", line=dict(dash="dash", color=THEORY_COLOR),
                                 name="channels^-1/2"))
    return fig


def decay_figure(result: Spectra, *, highlight: str | None = None) -> go.Figure:
    """The fitted eigenvalue decay exponent of each architecture (bars; ``highlight`` drawn in the theory colour).

    A more negative exponent is a faster decay: with patches smaller than the image, the local CNN's spectrum
    decays faster than the MLP's (Favero, Cagnetta & Wyart 2021)."""
    lo, hi = result.fit_ranks
    fig = base_figure(f"Eigenvalue decay exponent (ranks {lo}-{hi})", "architecture", "slope of log eigenvalue")
    colors = [THEORY_COLOR if name == highlight else "#1f77b4" for name in result.names]
    fig.add_trace(go.Bar(x=[LABELS[n] for n in result.names], y=result.decay, marker_color=colors,
                         text=[f"{d:.2f}" for d in result.decay], textposition="outside", name="decay exponent"))
    return fig
