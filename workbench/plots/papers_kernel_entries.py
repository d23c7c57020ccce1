"""Figures of three paper entries (:mod:`workbench.papers`): random-feature ridge regression
(``simon_2023_more_is_better``), Student-t outputs of scale mixtures (``scale_mixtures_nngp``) and permutations
learned by NTK ensembles (``giapitzakis_2025_permutations``). Pure functions of ``rep.data``; registered in
:data:`workbench.plots.papers.BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def more_is_better(rep) -> list[tuple[str, go.Figure]]:
    """Tuned test error against the number of features per sample size (N = inf at the right, theory dotted),
    and the test error against the ridge at the largest sample size."""
    c = rep.data["curves"]
    nfs = np.asarray(c["num_features"], float)
    x_inf = nfs[-1] * 4  # where N = inf is drawn
    f1 = base_figure("Random-feature ridge regression, ridge tuned per size (right-most point: N = inf)",
                     "number of features N", "test error", log_x=True, log_y=True)
    for i, n in enumerate(c["ns"]):
        col = _COLORS[i % len(_COLORS)]
        f1.add_trace(go.Scatter(x=np.append(nfs, x_inf), y=c["tuned"][i], mode="markers+lines", name=f"n = {n}",
                                line=dict(color=col), error_y=dict(type="data", array=2 * c["tuned_se"][i])))
        f1.add_trace(go.Scatter(x=[nfs[0], x_inf], y=[c["theory"][i]] * 2, mode="lines", showlegend=i == 0,
                                name="kernel theory (N = inf)", line=dict(color=col, dash="dot")))
    f2 = base_figure(f"Test error against ridge at n = {c['ns'][-1]} (noiseless power-law task)", "ridge",
                     "test error", log_x=True, log_y=True)
    labels = [f"N = {int(n)}" for n in nfs] + ["N = inf"]
    for j, lab in enumerate(labels):
        f2.add_trace(go.Scatter(x=c["ridges"], y=c["ridge_curve"][j], mode="lines", name=lab,
                                line=dict(color=_COLORS[j % len(_COLORS)])))
    f2.add_trace(go.Scatter(x=c["ridges"], y=c["theory_curve"], mode="lines", name="kernel theory",
                            line=dict(color=THEORY_COLOR, dash="dot")))
    return [("tuned_error", f1), ("ridge", f2)]


def scale_mixture(rep) -> list[tuple[str, go.Figure]]:
    """Histograms (log density) of the output at one input with and without the inverse-gamma prior, beside
    the Student-t and the Gaussian NNGP densities."""
    d = rep.data["marginal"]
    fig = base_figure(f"Output at one input: prior network vs Student-t (nu = {d['nu']:g}), plain vs Gaussian",
                      "f(x)", "density", log_y=True)
    edges = np.asarray(d["grid"])[::8]
    for name, draws, col in (("with prior (draws)", d["mixed"], MEASURED_COLOR), ("plain (draws)", d["plain"], "#2ca02c")):
        hist, _ = np.histogram(draws, bins=edges, density=True)
        fig.add_trace(go.Scatter(x=0.5 * (edges[1:] + edges[:-1]), y=np.where(hist > 0, hist, np.nan), mode="markers",
                                 name=name, marker=dict(color=col)))
    fig.add_trace(go.Scatter(x=d["grid"], y=d["t_pdf"], name="Student-t prediction", line=dict(color=THEORY_COLOR)))
    fig.add_trace(go.Scatter(x=d["grid"], y=d["gauss_pdf"], name="Gaussian NNGP", line=dict(color="black", dash="dot")))
    return [("marginal", fig)]


def permutations(rep) -> list[tuple[str, go.Figure]]:
    """Ensemble size needed against k (with the paper's k^2 and k log k forms through the first point), and the
    two values of the infinite-ensemble mean against the input's weight."""
    e = rep.data["ensemble_size"]
    k = np.asarray(e["k"], float)
    f1 = base_figure(f"Ensemble size for exact recovery with probability {1 - e['delta']:g}", "k", "members",
                     log_x=True, log_y=True)
    f1.add_trace(go.Scatter(x=k, y=e["all_inputs"], mode="markers+lines", name=f"all inputs (slope {e['slope_all']:.2f})",
                            marker=dict(color=MEASURED_COLOR)))
    f1.add_trace(go.Scatter(x=k, y=e["single_input"], mode="markers+lines",
                            name=f"worst single input (slope {e['slope_single']:.2f})", marker=dict(color="#2ca02c")))
    f1.add_trace(go.Scatter(x=k, y=e["all_inputs"][0] * (k / k[0]) ** 2, name="k^2 (paper, all inputs)",
                            line=dict(color=THEORY_COLOR, dash="dot")))
    f1.add_trace(go.Scatter(x=k, y=e["single_input"][0] * k * np.log(k) / (k[0] * np.log(k[0])),
                            name="k log k (paper, one input)", line=dict(color=THEORY_COLOR, dash="dash")))
    m = rep.data["mean"]
    w = np.asarray(m["weight"])
    ws = np.unique(w)
    pick = [int(np.flatnonzero(w == s)[0]) for s in ws]
    f2 = base_figure(f"Infinite-ensemble mean at k = {m['k']} where (Px)_j = 1 and 0 (bars: one member's sd)",
                     "number of ones in the input", "mean output")
    for name, key, col in (("(Px)_j = 1: u1", "u1", MEASURED_COLOR), ("(Px)_j = 0: u0", "u0", "#ff7f0e")):
        vals = np.asarray(m[key])[pick]
        f2.add_trace(go.Scatter(x=ws, y=vals, mode="markers+lines", name=name, marker=dict(color=col),
                                error_y=dict(type="data", array=np.asarray(m["sigma"])[pick])))
    f2.add_trace(go.Scatter(x=ws, y=0.5 * (np.asarray(m["u0"]) + np.asarray(m["u1"]))[pick], name="readout threshold",
                            line=dict(color="black", dash="dot")))
    return [("ensemble_size", f1), ("mean", f2)]


BUILDERS: dict[str, Callable] = {"simon_2023_more_is_better": more_is_better, "scale_mixtures_nngp": scale_mixture,
                                 "giapitzakis_2025_permutations": permutations}

__all__ = ["BUILDERS", "more_is_better", "permutations", "scale_mixture"]
