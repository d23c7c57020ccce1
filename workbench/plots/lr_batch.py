"""Figures of the learning-rate-versus-batch-size notebook (pure: results in, plotly figures out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from workbench.lr_batch import LrEstimate, PowerLawFit, SweepResult, TradeoffFit, best_loss, final_loss
from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

#: one colour per optimizer (measurements) and per theory curve (dashed lines)
OPTIMIZER_COLORS = {"sgd": MEASURED_COLOR, "momentum": "#2ca02c", "adam": "#9467bd", "gd": "#17becf"}
THEORY_COLORS = (THEORY_COLOR, "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
THEORY_DASHES = ("dash", "dot", "dashdot", "longdash", "solid", "longdashdot", "dash")


def _legend_right(fig: go.Figure) -> go.Figure:
    """Many curves: a vertical legend right of the plot, clear of the title."""
    fig.update_layout(legend=dict(orientation="v", x=1.02, y=1.0, xanchor="left", yanchor="top",
                                  font=dict(size=11)), margin=dict(r=20))
    return fig


def _check_result(result: SweepResult) -> None:
    if not isinstance(result, SweepResult):
        raise TypeError(f"result must be a SweepResult, got {type(result).__name__}")


def loss_heatmap(result: SweepResult, *, which: str = "final", title: str = "") -> go.Figure:
    """log10 of the median-over-seeds final (or best) loss over (batch size, lr); cells where any seed
    diverged are blank and marked with a cross (the fraction of diverged seeds in the hover text)."""
    _check_result(result)
    if which not in ("final", "best"):
        raise ValueError(f"which must be 'final' or 'best', got {which!r}")
    loss = final_loss(result) if which == "final" else best_loss(result)  # (B, L, S)
    with np.errstate(divide="ignore", invalid="ignore"):
        med = np.median(loss, axis=2)
        z = np.where(np.isfinite(med) & (med > 0), np.log10(np.where(med > 0, med, 1.0)), np.nan)
    frac = np.mean(result.diverged, axis=2)  # (B, L)
    xs = [str(int(b)) for b in result.batch_sizes]
    ys = [f"{lr:.3g}" for lr in result.lrs]
    fig = base_figure(title or f"{which} loss ({result.optimizer}), median over {len(result.seeds)} seeds",
                      "batch size B", "learning rate", height=440)
    fig.add_trace(go.Heatmap(x=xs, y=ys, z=z.T, colorscale="Viridis", colorbar=dict(title="log10 loss"),
                             customdata=frac.T, name="loss",
                             hovertemplate="B=%{x}, lr=%{y}<br>log10 loss=%{z:.3f}<br>"
                                           "diverged seeds: %{customdata:.0%}<extra></extra>"))
    bi, li = np.nonzero(frac > 0)
    if bi.size:
        fig.add_trace(go.Scatter(x=[xs[i] for i in bi], y=[ys[j] for j in li], mode="markers", name="diverged",
                                 marker=dict(symbol="x", size=9, color="#d62728"),
                                 hovertemplate="diverged at B=%{x}, lr=%{y}<extra></extra>"))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def lr_vs_batch(measured: Mapping[str, tuple[np.ndarray, LrEstimate]],
                theory: Mapping[str, tuple[np.ndarray, np.ndarray]], *, fits: Mapping[str, PowerLawFit] | None = None,
                markers: Mapping[str, float] | None = None, title: str = "Learning rate vs batch size") -> go.Figure:
    """Measured learning rates (points with seed-spread error bars) and theory curves (dashed lines) on
    log-log axes.

    Args:
      measured: name -> (batch sizes, :class:`~workbench.lr_batch.LrEstimate`); names starting with an
        optimizer key of :data:`OPTIMIZER_COLORS` take its colour; "optimal" in the name draws open markers.
      theory: name -> (batch sizes, lr) curves.
      fits: name -> fitted power law, listed in the legend entry of the matching measured series.
      markers: name -> batch size, drawn as labelled vertical dotted lines (e.g. B_noise, the RMT B*).
    Error bars are drawn where ``lo``/``hi`` differ from ``value``.
    """
    fig = base_figure(title, "batch size B", "learning rate", log_x=True, log_y=True, height=480)
    for i, (name, (b, lr)) in enumerate(theory.items()):
        b = np.asarray(b, dtype=float)
        lr = np.asarray(lr, dtype=float)
        ok = np.isfinite(lr) & (lr > 0)
        fig.add_trace(go.Scatter(x=b[ok], y=lr[ok], mode="lines", name=name,
                                 line=dict(color=THEORY_COLORS[i % len(THEORY_COLORS)],
                                           dash=THEORY_DASHES[i % len(THEORY_DASHES)], width=2)))
    for name, (b, est) in measured.items():
        b = np.asarray(b, dtype=float)
        v = np.asarray(est.value, dtype=float)
        ok = np.isfinite(v) & (v > 0)
        color = next((c for k, c in OPTIMIZER_COLORS.items() if name.startswith(k)), MEASURED_COLOR)
        label = name
        if fits and name in fits:
            f = fits[name]
            label = f"{name}: alpha = {f.exponent:.2f}" + (f" +- {f.exponent_se:.2f}" if np.isfinite(f.exponent_se)
                                                           else "")
        optimal = "optimal" in name
        fig.add_trace(go.Scatter(
            x=b[ok], y=v[ok], mode="markers+lines", name=label,
            line=dict(color=color, width=1, dash="dot" if optimal else "solid"),
            marker=dict(color=color, size=9, symbol="circle-open" if optimal else "circle"),
            error_y=dict(type="data", symmetric=False, array=(np.asarray(est.hi) - v)[ok],
                         arrayminus=(v - np.asarray(est.lo))[ok], color=color, thickness=1)))
    # vertical markers as traces (shapes on log axes would need log10 coordinates)
    ys = [np.asarray(lr, dtype=float) for _, lr in theory.values()]
    ys += [np.asarray(e.value, dtype=float) for _, e in measured.values()]
    finite = np.concatenate([y[np.isfinite(y) & (y > 0)] for y in ys]) if ys else np.array([])
    if finite.size:
        y_lo, y_hi = finite.min() / 1.5, finite.max() * 1.5
        for name, b in (markers or {}).items():
            if np.isfinite(b) and b > 0:
                fig.add_trace(go.Scatter(x=[float(b), float(b)], y=[y_lo, y_hi], mode="lines+text",
                                         text=["", f"{name} = {b:.3g}"], textposition="top center",
                                         line=dict(color="#444", dash="dot", width=1), name=f"{name} = {b:.3g}"))
    return _legend_right(fig)


def tradeoff_plot(batch_sizes: np.ndarray, steps: Mapping[str, np.ndarray], fits: Mapping[str, TradeoffFit | None],
                  *, b_noise: float | None = None, b_simple: float | None = None, target_loss: float | None = None,
                  title: str = "") -> go.Figure:
    """Steps S against examples E = B S to reach the target loss, per optimizer, with McCandlish's
    hyperbola (S/S_min - 1)(E/E_min - 1) = 1 from the fitted S_min, E_min, and (dotted) the hyperbola
    with B_crit set to the noise scale measured at initialization (E_min = S_min * B_noise)."""
    b = np.asarray(batch_sizes, dtype=float)
    ttl = title or ("Steps vs examples to reach the target loss" +
                    (f" {target_loss:.3g}" if target_loss is not None else ""))
    fig = base_figure(ttl, "examples E = B S", "steps S", log_x=True, log_y=True, height=440)
    bb = np.geomspace(max(b.min() / 4, 0.25), b.max() * 4, 200)
    for name, s in steps.items():
        s = np.asarray(s, dtype=float)
        ok = np.isfinite(s)
        color = OPTIMIZER_COLORS.get(name, MEASURED_COLOR)
        fig.add_trace(go.Scatter(x=(b * s)[ok], y=s[ok], mode="markers+text", name=f"{name} measured",
                                 text=[f"B={int(v)}" for v in b[ok]], textposition="top right",
                                 marker=dict(color=color, size=9)))
        fit = fits.get(name)
        if fit is not None and fit.s_min > 0 and fit.e_min > 0:
            s_fit = fit.s_min * (1 + fit.b_crit / bb)
            fig.add_trace(go.Scatter(x=bb * s_fit, y=s_fit, mode="lines", line=dict(color=color, dash="dash"),
                                     name=f"{name} McCandlish fit: B_crit = {fit.b_crit:.3g}"))
            for label, bn, dash in (("B_noise", b_noise, "dot"), ("B_simple", b_simple, "dashdot")):
                if bn is not None and np.isfinite(bn) and bn > 0:
                    s_th = fit.s_min * (1 + bn / bb)
                    fig.add_trace(go.Scatter(x=bb * s_th, y=s_th, mode="lines",
                                             line=dict(color=THEORY_COLOR, dash=dash, width=1),
                                             name=f"{name}: B_crit = {label} at init = {bn:.3g}"))
    return _legend_right(fig)


def kaplan_figure(losses: np.ndarray, b_crit: np.ndarray, *, marker: tuple[float, float] | None = None,
                  title: str = "Kaplan et al. 2020: critical batch size vs loss") -> go.Figure:
    """B_crit(L) in tokens on log axes, with the chosen (L, B_crit) marked."""
    fig = base_figure(title, "loss L (nats/token)", "B_crit (tokens)", log_y=True, height=360)
    fig.add_trace(go.Scatter(x=np.asarray(losses), y=np.asarray(b_crit), mode="lines", name="B*/L^(1/alpha_B)",
                             line=dict(color=THEORY_COLOR)))
    if marker is not None:
        fig.add_trace(go.Scatter(x=[marker[0]], y=[marker[1]], mode="markers+text", name="chosen",
                                 text=[f"{marker[1]:.3g} tokens"], textposition="top right",
                                 marker=dict(color=MEASURED_COLOR, size=10)))
    return fig


def study_figures(study: Any, curves: Any, optimizer: str | None = None) -> dict[str, go.Figure]:
    """The three sweep figures of a :class:`workbench.studies.lr_batch.LrBatchStudy`: ``heatmap`` (of
    ``optimizer``, default the first), ``lr_vs_batch`` (from ``curves`` =
    :func:`workbench.studies.lr_batch.lr_curves` of the study), ``tradeoff``."""
    opts = list(study.sweeps)
    if not opts:
        raise ValueError("the study has no finished sweep points to plot")
    optimizer = opts[0] if optimizer is None or optimizer not in study.sweeps else optimizer
    th = study.theory
    fig_lr = lr_vs_batch(curves.measured, curves.theory, fits=study.fits, markers=curves.markers,
                         title="Largest stable (filled) and optimal (open) learning rate vs B, theory at init")
    b_all = study.sweeps[opts[0]].batch_sizes
    fig_tr = tradeoff_plot(b_all, {o: study.steps_to_target[o] for o in opts if
                                   np.array_equal(study.sweeps[o].batch_sizes, b_all)},
                           study.tradeoff, b_noise=th.b_noise, b_simple=th.b_simple, target_loss=study.target_loss)
    return {"heatmap": loss_heatmap(study.sweeps[optimizer]), "lr_vs_batch": fig_lr, "tradeoff": fig_tr}
