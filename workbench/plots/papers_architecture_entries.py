"""Figures of the papers entries ``yang_2019_tensor_programs_1`` and ``favero_2021_locality`` (pure functions of
``rep.data``; :func:`workbench.plots.papers.figures` picks them up through :data:`BUILDERS`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import scipy.stats

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def _mean_se(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(v, float)
    return v.mean(axis=1), v.std(axis=1, ddof=1) / np.sqrt(v.shape[1])


def yang_figures(rep) -> list[tuple[str, go.Figure]]:
    """Kernel and NTK errors against channels (with the C^-1/2 reference), and the output histogram against N(0, 1)."""
    d = rep.data
    c = np.asarray(d["channels"], float)
    f1 = base_figure("Distance to the analytic kernels against channels", "channels C", "relative Frobenius error",
                     log_x=True, log_y=True)
    for i, name in enumerate(("conv", "attention")):
        for what, label, dash in (("fluct", "per-draw NNGP g.g'/C", None), ("ntk_err", "empirical NTK", "dash")):
            m, se = _mean_se(d[name][what])
            f1.add_trace(go.Scatter(x=c, y=m, mode="markers+lines", name=f"{name}: {label}",
                                    line=dict(color=_COLORS[i], dash=dash), error_y=dict(type="data", array=3 * se)))
        f1.add_trace(go.Scatter(x=c, y=d[name]["cov_err"], mode="markers", name=f"{name}: output covariance "
                                f"({d['draws']} draws)", marker=dict(color=_COLORS[i], symbol="diamond", size=10)))
        f1.add_trace(go.Scatter(x=c, y=d[name]["floor"], mode="lines", name=f"{name}: MC floor of the raw sample "
                                "covariance", line=dict(color=_COLORS[i], dash="dot")))
    m0 = np.asarray(d["conv"]["fluct"], float).mean(axis=1)[0]
    f1.add_trace(go.Scatter(x=c, y=m0 * (c / c[0]) ** -0.5, mode="lines", name="C^-1/2",
                            line=dict(color=THEORY_COLOR, dash="longdash")))
    f2 = base_figure(f"Standardized outputs f(x0)/sqrt(K(x0, x0)) at C = {int(c[-1])}", "z", "density")
    grid = np.linspace(-4, 4, 201)
    for i, name in enumerate(("conv", "attention")):
        f2.add_trace(go.Histogram(x=d[name]["z"], histnorm="probability density", name=name, opacity=0.5,
                                  marker_color=_COLORS[i], nbinsx=40))
    f2.add_trace(go.Scatter(x=grid, y=scipy.stats.norm.pdf(grid), name="N(0, 1) (NNGP)",
                            line=dict(color=THEORY_COLOR)))
    f2.update_layout(barmode="overlay")
    return [("kernel_convergence", f1), ("output_distribution", f2)]


def favero_figures(rep) -> list[tuple[str, go.Figure]]:
    """Learning curves (measured with 3-se bars, spectral theory as lines) and the fitted exponents."""
    cv = rep.data["curves"]
    p = np.asarray(cv["p"], float)
    f1 = base_figure(f"Learning curves of a local GP teacher (filter size t = {cv['s']})", "training points P",
                     "E_g (averaged over teachers)", log_x=True, log_y=True)
    for i, d in enumerate(cv["dims"]):
        for kind, label, symbol in (("local", f"local student s={cv['s']}", "circle"), ("fc", "FC student", "square")):
            m, se = _mean_se(cv[f"{kind}_{d}"])
            f1.add_trace(go.Scatter(x=p, y=m, mode="markers", name=f"d={d}: {label}", marker=dict(
                color=_COLORS[i], symbol=symbol, size=9), error_y=dict(type="data", array=3 * se)))
        f1.add_trace(go.Scatter(x=p, y=cv[f"theory_local_{d}"], mode="lines", name=f"d={d}: spectral theory (local)",
                                line=dict(color=_COLORS[i])))
    ex = rep.data["exponents"]
    dims = [f"d={d}" for d in ex["dims"]]
    f2 = base_figure("Learning-curve exponents beta (E_g ~ P^-beta)", "input dimension", "beta")
    f2.add_trace(go.Bar(x=dims, y=ex["local"], name="local: measured", marker_color=MEASURED_COLOR,
                        error_y=dict(type="data", array=3 * np.asarray(ex["local_se"]))))
    f2.add_trace(go.Bar(x=dims, y=ex["theory_local"], name="local: spectral theory (same P)",
                        marker_color=THEORY_COLOR))
    f2.add_trace(go.Bar(x=dims, y=ex["fc"], name="FC: measured", marker_color="#999999",
                        error_y=dict(type="data", array=3 * np.asarray(ex["fc_se"]))))
    f2.add_trace(go.Scatter(x=dims, y=[ex["asymptotic_local"]] * len(dims), mode="markers", name="alpha/s (asymptotic)",
                            marker=dict(symbol="line-ew-open", size=40, color=THEORY_COLOR)))
    f2.add_trace(go.Scatter(x=dims, y=ex["asymptotic_fc"], mode="markers", name="alpha/d (asymptotic, FC)",
                            marker=dict(symbol="line-ew-open", size=40, color="#555555")))
    f2.update_layout(barmode="group")
    return [("learning_curves", f1), ("exponents", f2)]


BUILDERS: dict[str, Callable] = {"yang_2019_tensor_programs_1": yang_figures, "favero_2021_locality": favero_figures}

__all__ = ["BUILDERS", "favero_figures", "yang_figures"]
