"""Figures of the your-own-model studies (:mod:`workbench.studies.model`): pure, results in, figures out.

The batch-Hessian figures are those of :mod:`workbench.plots.hessian` and the sweep heatmap that of
:mod:`workbench.plots.lr_batch`; this module adds the NTK, linearized-dynamics, drift and noise-scale figures.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure


def ntk_spectrum(study, *, title: str = "") -> go.Figure:
    """Eigenvalues of the empirical NTK at initialization (trace over outputs), by rank, log scale."""
    lam = np.asarray(study.eigenvalues, float)
    ok = lam > 0
    fig = base_figure(title or "Empirical NTK spectrum at initialization", "rank", "eigenvalue", log_x=True,
                      log_y=True)
    rank = np.arange(1, lam.size + 1)
    fig.add_trace(go.Scatter(x=rank[ok], y=lam[ok], mode="markers+lines", name="empirical NTK",
                             marker=dict(color=MEASURED_COLOR, size=5)))
    return fig


def linearized_vs_real(study, *, title: str = "") -> go.Figure:
    """Train and test loss of the network (solid) and of its linearization (dashed) during full-batch GD."""
    s = np.asarray(study.steps)
    fig = base_figure(title or f"Real vs linearized GD (lr = {study.lr:.3g})", "step", "MSE loss", log_y=True)
    for name, meas, pred, dash in (("train", study.measured_train_loss, study.predicted_train_loss, "solid"),
                                   ("test", study.measured_test_loss, study.predicted_test_loss, "dot")):
        fig.add_trace(go.Scatter(x=s, y=np.asarray(meas), mode="lines+markers", name=f"network {name}",
                                 line=dict(color=MEASURED_COLOR, dash=dash)))
        fig.add_trace(go.Scatter(x=s, y=np.asarray(pred), mode="lines", name=f"linearized {name}",
                                 line=dict(color=THEORY_COLOR, dash="dash" if dash == "solid" else "dashdot")))
    if study.diverged_step >= 0:
        fig.add_annotation(text=f"network diverged at step {study.diverged_step}", showarrow=False, x=0.5, y=0.95,
                           xref="paper", yref="paper")
    return fig


def kernel_drift(study, *, title: str = "") -> go.Figure:
    """||Theta_t - Theta_0||_F / ||Theta_0||_F at the snapshots, and |f_net - f_lin| / |f_lin| on the test inputs."""
    fig = base_figure(title or "Kernel drift and distance to the linearization", "step", "relative change")
    fig.add_trace(go.Scatter(x=np.asarray(study.drift_steps), y=np.asarray(study.drift), mode="markers+lines",
                             name="NTK drift", marker=dict(color=MEASURED_COLOR, size=8)))
    fig.add_trace(go.Scatter(x=np.asarray(study.steps), y=np.asarray(study.rel_error), mode="lines",
                             name="|f_net - f_lin| / |f_lin| (test)", line=dict(color=THEORY_COLOR, dash="dash")))
    return fig


def noise_scale(study, *, title: str = "") -> go.Figure:
    """Measured |G_B|^2 (mean and spread over draws) against |G|^2 + c_B tr(Sigma), with B_simple marked."""
    b = np.asarray(study.batch_sizes, float)
    sq = np.asarray(study.sq_norms, float)
    fig = base_figure(title or f"Gradient noise: B_simple = {study.b_simple:.3g}", "batch size B", "|G_B|^2",
                      log_x=True, log_y=True)
    n = float(study.num_data)
    grid = np.unique(np.concatenate([np.geomspace(1, max(b.max(), 2), 50), b]))
    grid = grid[grid <= n]
    c = np.where(np.isfinite(n), (n - grid) / (grid * (n - 1)), 1 / grid)
    fig.add_trace(go.Scatter(x=grid, y=study.g2 + c * study.tr_sigma, mode="lines", name="|G|^2 + c_B tr(Sigma)",
                             line=dict(color=THEORY_COLOR, dash="dash")))
    fig.add_trace(go.Scatter(x=b, y=sq.mean(axis=1), mode="markers", name="measured (mean over draws)",
                             error_y=dict(type="data", array=sq.std(axis=1, ddof=1) / np.sqrt(sq.shape[1])),
                             marker=dict(color=MEASURED_COLOR, size=9)))
    if np.isfinite(study.b_simple) and study.b_simple > 0:
        lo, hi = float(np.min(sq.mean(axis=1))) / 1.5, float(np.max(sq.mean(axis=1))) * 1.5
        fig.add_trace(go.Scatter(x=[study.b_simple] * 2, y=[lo, hi], mode="lines", name="B_simple (exact)",
                                 line=dict(color="#444", dash="dot")))
    return fig


def message(title: str, text: str) -> go.Figure:
    """An empty figure with a message (a study not run yet, or one that failed)."""
    fig = base_figure(title, "", "")
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


__all__ = ["kernel_drift", "linearized_vs_real", "message", "noise_scale", "ntk_spectrum"]
