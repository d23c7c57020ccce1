"""Figures of the paper reproductions (:mod:`workbench.papers`): pure functions from a Reproduction to figures.

:func:`figures` returns ``[(name, figure), ...]`` for any entry (the entry's own figures, then the verdict
chart); :func:`verdict_chart` draws every check as its deviation from the prediction in units of its tolerance
(inside the band |x| <= 1 passes for an "equal" check). Each entry's figures read only ``rep.data``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure
from workbench.plots.papers_optimization import BUILDERS as OPTIMIZATION_BUILDERS

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def verdict_chart(rep) -> go.Figure:
    """Each verdict check's (measured - predicted) / tolerance; the band [-1, 1] is the tolerance."""
    names, vals, colors, text = [], [], [], []
    for c in rep.checks:
        tol = c.tolerance if c.tolerance > 0 else max(abs(c.predicted), 1e-12) * 1e-3
        names.append(c.name if len(c.name) < 60 else c.name[:57] + "...")
        vals.append(float(np.clip(c.deviation / tol, -10, 10)))
        colors.append("#999999" if not c.in_verdict else ("#2ca02c" if c.passed else "#d62728"))
        text.append(f"{c.measured:.4g} vs {c.predicted:.4g} (tol {c.tolerance:.3g})")
    fig = base_figure(f"{rep.name}: {'passed' if rep.passed else 'FAILED'} — deviation / tolerance "
                      "(grey: reported)", "(measured - predicted) / tolerance (clipped to +-10)", "",
                      height=max(300, 40 * len(names) + 120))
    fig.add_trace(go.Bar(x=vals, y=names, orientation="h", marker_color=colors, text=text, textposition="auto",
                         name="checks", showlegend=False))
    fig.add_vrect(x0=-1, x1=1, fillcolor="#2ca02c", opacity=0.08, line_width=0)
    fig.update_yaxes(autorange="reversed")
    return fig


def _loglog_seeds(fig: go.Figure, x, values, name: str, color: str, slope: float | None = None) -> None:
    v = np.asarray(values, float)
    mean = v.mean(axis=1) if v.ndim == 2 else v
    err = v.std(axis=1, ddof=1) / np.sqrt(v.shape[1]) if v.ndim == 2 and v.shape[1] > 1 else None
    fig.add_trace(go.Scatter(x=x, y=mean, mode="markers+lines", name=name, line=dict(color=color),
                             error_y=dict(type="data", array=err) if err is not None else None))
    if slope is not None:
        x = np.asarray(x, float)
        ref = mean[0] * (x / x[0]) ** slope
        fig.add_trace(go.Scatter(x=x, y=ref, mode="lines", name=f"{name}: slope {slope:+g}",
                                 line=dict(color=color, dash="dot")))


def _mup(rep) -> list[tuple[str, go.Figure]]:
    d = rep.data
    fu = d["feature_update"]
    f1 = base_figure("Feature update after one SGD step against width", "width", "RMS change of h^L",
                     log_x=True, log_y=True)
    for i, par in enumerate(("standard", "ntk", "mup")):
        _loglog_seeds(f1, fu["widths"], fu[par], par, COLORS[i], fu["predicted_slopes"][par])
    dr = d["drift"]
    f2 = base_figure("NTK drift during full-batch GD against width", "width", "||Theta_T - Theta_0|| / ||Theta_0||",
                     log_x=True, log_y=True)
    for i, (par, sl) in enumerate((("ntk", -0.5), ("mup", 0.0))):
        _loglog_seeds(f2, dr["widths"], dr[par], par, COLORS[i + 1], sl)
    tr = d["transfer"]
    f3 = base_figure("muTransfer: Adam's final training loss against learning rate", "learning rate",
                     "training loss", log_x=True, log_y=True)
    for j, par in enumerate(("standard", "mup")):
        for i, w in enumerate(tr["widths"]):
            loss = np.where(np.isfinite(tr[par]["loss"][i]), tr[par]["loss"][i], np.nan)
            f3.add_trace(go.Scatter(x=tr["lrs"], y=loss, mode="lines+markers", name=f"{par} width {w}",
                                    line=dict(color=COLORS[i], dash="solid" if par == "mup" else "dash")))
    return [("feature_update", f1), ("ntk_drift", f2), ("transfer", f3)]


def _jacot(rep) -> list[tuple[str, go.Figure]]:
    c = rep.data["convergence"]
    f1 = base_figure("Empirical NTK vs its infinite-width limit", "width", "relative Frobenius distance",
                     log_x=True, log_y=True)
    _loglog_seeds(f1, c["widths"], c["frobenius"], "measured", MEASURED_COLOR, -0.5)
    lin = rep.data["linearization"]
    f2 = base_figure("Trained network vs closed-form NTK dynamics", "width", "max relative distance over training",
                     log_x=True, log_y=True)
    _loglog_seeds(f2, lin["widths"], lin["rel_error"], "measured", MEASURED_COLOR, -0.5)
    f3 = base_figure("Test outputs at the end of training (seed 0)", "angle", "f(x)")
    order = np.argsort(lin["angles"])
    f3.add_trace(go.Scatter(x=lin["angles"][order], y=lin["target"][order], name="target", line=dict(color="black")))
    for i, w in enumerate(lin["widths"]):
        f3.add_trace(go.Scatter(x=lin["angles"][order], y=lin["measured"][w][order], name=f"net width {w}",
                                line=dict(color=COLORS[i])))
        f3.add_trace(go.Scatter(x=lin["angles"][order], y=lin["predicted"][w][order], name=f"closed form {w}",
                                line=dict(color=COLORS[i], dash="dot")))
    return [("ntk_convergence", f1), ("linearization", f2), ("functions", f3)]


def _advani(rep) -> list[tuple[str, go.Figure]]:
    a = rep.data["alpha_curves"]
    f1 = base_figure("Advani & Saxe: E_g against alpha = P/N", "alpha", "E_g", log_y=True)
    for j, t in enumerate(a["times"]):
        f1.add_trace(go.Scatter(x=a["alphas"], y=a["E_g"][:, j], name=f"theory t = {t:g}", line=dict(color=COLORS[j])))
        f1.add_trace(go.Scatter(x=a["sim_alphas"], y=a["sim_E_g"][:, j], mode="markers", name=f"simulated t = {t:g}",
                                marker=dict(color=COLORS[j]), error_y=dict(type="data", array=3 * a["sim_E_g_sem"][:, j])))
    t = rep.data["time_curve"]
    f2 = base_figure(f"E_g against training time at alpha = {t['alpha']}", "t", "E_g", log_x=True)
    f2.add_trace(go.Scatter(x=t["t"], y=t["E_g"], name="theory", line=dict(color=THEORY_COLOR)))
    f2.add_hline(y=t["E_g_inf"], line_dash="dot", annotation_text="t = inf")
    return [("alpha", f1), ("time", f2)]


def _kurtosis(rep) -> list[tuple[str, go.Figure]]:
    k = rep.data["kurtosis"]
    fig = base_figure(f"Kurtosis ratio at width {k['width']} against depth", "depth L", "E z^4 / (3 (E z^2)^2)")
    fig.add_trace(go.Scatter(x=k["depths"], y=k["predicted"], name="(1 + 5/n)^(L-1)", line=dict(color=THEORY_COLOR)))
    fig.add_trace(go.Scatter(x=k["depths"], y=k["measured"], mode="markers", name="simulated",
                             marker=dict(color=MEASURED_COLOR), error_y=dict(type="data", array=k["tolerance"])))
    return [("kurtosis", fig)]


def _finite_width(rep) -> list[tuple[str, go.Figure]]:
    c = rep.data["ntk_collapse"]
    f1 = base_figure("NTK relative variance against depth/width", "L / n", "Var Theta / E[Theta]^2",
                     log_x=True, log_y=True)
    for i, d in enumerate(np.unique(c["depths"])):
        m = c["depths"] == d
        f1.add_trace(go.Scatter(x=c["ratio"][m], y=c["relvar"][m], mode="markers", name=f"L = {d}",
                                marker=dict(color=COLORS[i % len(COLORS)], size=9),
                                error_y=dict(type="data", array=c["relvar_se"][m])))
    k = rep.data["kurtosis_collapse"]
    f2 = base_figure("Excess kurtosis ratio against (L - 1)/n", "(L - 1) / n", "E z^4 / (3 (E z^2)^2) - 1")
    f2.add_trace(go.Scatter(x=k["ratio"], y=k["excess"], mode="markers", name="simulated",
                            error_y=dict(type="data", array=3 * k["excess_se"]), marker=dict(color=MEASURED_COLOR)))
    o = np.argsort(k["ratio"])
    f2.add_trace(go.Scatter(x=k["ratio"][o], y=k["exact"][o], mode="markers", name="exact (1 + 5/n)^(L-1) - 1",
                            marker=dict(color=THEORY_COLOR, symbol="x")))
    cr = rep.data["criticality"]
    f3 = base_figure("Kernel K^l of a single input against depth", "layer l", "K^l", log_x=True, log_y=True)
    f3.add_trace(go.Scatter(x=cr["depth"], y=cr["tanh"], name="tanh, sigma_w = 1 (K* = 0)"))
    f3.add_trace(go.Scatter(x=cr["depth"], y=cr["relu"], name="relu, sigma_w^2 = 2"))
    f3.add_trace(go.Scatter(x=cr["depth"], y=1 / (2 * cr["depth"]), name="1 / (2 l)", line=dict(dash="dot")))
    return [("ntk_collapse", f1), ("kurtosis_collapse", f2), ("criticality", f3)]


def _wu_su(rep) -> list[tuple[str, go.Figure]]:
    fig = base_figure("Minima reached: eta tr(H)/2 against eta lambda_max/2", "eta lambda_max / 2", "eta tr(H) / 2",
                      log_y=True)
    for i, (name, rows) in enumerate(rep.data["runs"].items()):
        fig.add_trace(go.Scatter(x=[r["eta"] * r["lambda_max"] / 2 for r in rows],
                                 y=[r["eta"] * r["trace"] / 2 for r in rows], mode="markers", name=name,
                                 marker=dict(size=10, color=COLORS[i])))
    fig.add_hline(y=1, line_dash="dot", annotation_text="tr H = 2/eta")
    fig.add_vline(x=1, line_dash="dot", annotation_text="lambda_max = 2/eta")
    f2 = base_figure("Hessian spectra at the minima (first run of each)", "index", "eigenvalue", log_y=True)
    for i, (name, eig) in enumerate(rep.data["spectra"].items()):
        e = np.sort(np.asarray(eig))[::-1]
        f2.add_trace(go.Scatter(y=e[e > 1e-10], mode="markers", name=name, marker=dict(color=COLORS[i])))
    return [("trace_vs_sharpness", fig), ("spectra", f2)]


def _granziol(rep) -> list[tuple[str, go.Figure]]:
    q = rep.data["quadratic"]
    f1 = base_figure(f"Noisy quadratic: largest stable SGD lr (B* = {q['b_crit']:g})", "batch size", "learning rate",
                     log_x=True, log_y=True)
    f1.add_trace(go.Scatter(x=q["batch_sizes"], y=q["exact"], name="exact mean-square limit",
                            line=dict(color=THEORY_COLOR)))
    f1.add_trace(go.Scatter(x=q["batch_sizes"], y=q["measured"], mode="markers", name="measured",
                            marker=dict(color=MEASURED_COLOR),
                            error_y=dict(type="data", symmetric=False, array=q["hi"] - q["measured"],
                                         arrayminus=q["measured"] - q["lo"])))
    ys = np.concatenate([np.asarray(q["exact"], float), np.asarray(q["measured"], float)])
    ys = ys[np.isfinite(ys) & (ys > 0)]
    _vertical(f1, q["b_crit"], (float(ys.min()), float(ys.max())), "B*", "black")
    n = rep.data["net"]
    f2 = base_figure("Small network: largest stable lr against batch size", "batch size", "learning rate",
                     log_x=True, log_y=True)
    for i, opt in enumerate(o for o in ("sgd", "adam") if o in n):
        v = n[opt]
        f2.add_trace(go.Scatter(x=n["batch_sizes"], y=v["value"], mode="markers+lines", name=opt,
                                marker=dict(color=COLORS[i]),
                                error_y=dict(type="data", symmetric=False, array=v["hi"] - v["value"],
                                             arrayminus=v["value"] - v["lo"])))
    out = [("quadratic", f1), ("network", f2)]
    if "batch_hessian" in rep.data:  # results cached before the batch-Hessian part existed have no such data
        out.append(("batch_hessian", _granziol_batch_hessian(rep.data["batch_hessian"])))
    return out


def _vertical(fig: go.Figure, x: float, y: tuple[float, float], name: str, color: str) -> None:
    """A dotted vertical line at ``x`` as a trace (named in the legend): a shape's annotation on a log axis would need
    log10 coordinates."""
    fig.add_trace(go.Scatter(x=[x, x], y=list(y), mode="lines", name=name, line=dict(color=color, dash="dot", width=1)))


def _granziol_batch_hessian(h) -> go.Figure:
    """Measured top eigenvalue of the batch Hessian (seed mean +- 3 se, every draw faint) against the random-matrix
    prediction, the full-data lambda_1 (no 1/B term) and the Wigner edge 2 s sqrt(P)."""
    fig = base_figure(f"Batch Hessian: top eigenvalue against batch size (B* = {h['b_crit']:.3g})", "batch size B",
                      "top eigenvalue of H_B", log_x=True, log_y=True, height=460)
    lo, hi = 0.8 * h["lambda1"], 1.2 * float(np.max(h["draws"]))
    edge = np.asarray(h["edge"])
    shown = edge >= lo  # the edge falls to 0 at B = N (no noise left): drawn down to the bottom of the plot
    fig.add_trace(go.Scatter(x=h["curve_b"], y=h["curve"], name="prediction lambda'(B)",
                             line=dict(color=THEORY_COLOR)))
    fig.add_trace(go.Scatter(x=np.asarray(h["curve_b"])[shown], y=edge[shown], name="edge 2 s sqrt(P)",
                             line=dict(color=THEORY_COLOR, dash="dot")))
    fig.add_trace(go.Scatter(x=[h["curve_b"][0], h["curve_b"][-1]], y=[h["lambda1"]] * 2,
                             name="lambda_1 (no 1/B term)", mode="lines", line=dict(color="gray", dash="dash")))
    draws = np.asarray(h["draws"])
    fig.add_trace(go.Scatter(x=np.repeat(h["batch_sizes"], draws.shape[1]), y=draws.ravel(), mode="markers",
                             name="draws", marker=dict(color=MEASURED_COLOR, size=4, opacity=0.3)))
    fig.add_trace(go.Scatter(x=h["batch_sizes"], y=h["measured"], mode="markers", name="mean +- 3 se",
                             marker=dict(color=MEASURED_COLOR, size=9),
                             error_y=dict(type="data", array=3 * np.asarray(h["stderr"]))))
    _vertical(fig, h["b_crit"], (lo, hi), "B*", "black")
    _vertical(fig, h["fit_from"], (lo, hi), "fit from 4 B*", "gray")
    fig.update_yaxes(range=[np.log10(lo), np.log10(hi)])
    return fig


def _step_law(rep) -> list[tuple[str, go.Figure]]:
    d = rep.data
    f1 = base_figure("Small sweep: best Adam learning rate", "parameters N", "best lr", log_x=True, log_y=True)
    for j, t in enumerate(d["budgets"]):
        f1.add_trace(go.Scatter(x=d["num_params"], y=d["best_lr"][:, j], mode="markers+lines",
                                name=f"{t} steps (D = {t * d['batch']})", marker=dict(color=COLORS[j % 6])))
    from workbench import lr_batch as lb

    f2 = base_figure("Step Law calculator: lr_opt = 1.79 N^-0.713 D^0.307", "N", "lr_opt", log_x=True, log_y=True)
    for j, dd in enumerate(d["step_law"]["D"]):
        f2.add_trace(go.Scatter(x=d["step_law"]["N"], y=lb.step_law(d["step_law"]["N"], dd)[0], name=f"D = {dd:.0e}",
                                line=dict(color=COLORS[j])))
    return [("sweep", f1), ("step_law", f2)]


BUILDERS: dict[str, Callable] = {
    "yang_hu_2021_mup": _mup, "jacot_2018_ntk": _jacot, "advani_saxe_2017": _advani,
    "roberts_yaida_kurtosis": _kurtosis, "roberts_yaida_finite_width": _finite_width,
    "wu_su_2023_stability": _wu_su, "granziol_2022_lr_batch": _granziol, "step_law_2025": _step_law,
}
# entries with their own figure module (imported here, after BUILDERS, as some of them use this module's builders)
from workbench.plots.papers_architecture_entries import BUILDERS as _ARCHITECTURE_ENTRIES  # noqa: E402
from workbench.plots.papers_kernel_entries import BUILDERS as _KERNEL_ENTRIES  # noqa: E402

BUILDERS.update(_ARCHITECTURE_ENTRIES)  # yang_2019_tensor_programs_1, favero_2021_locality
BUILDERS.update(_KERNEL_ENTRIES)  # giapitzakis_2025_permutations, scale_mixtures_nngp, simon_2023_more_is_better
BUILDERS.update(OPTIMIZATION_BUILDERS)  # mok_2022_lga, li_2018_intrinsic_dimension, rosenfeld_2023_opposing_signals


def figures(rep) -> list[tuple[str, go.Figure]]:
    """The entry's figures (if it has builders here) followed by the verdict chart."""
    if not hasattr(rep, "checks") or not hasattr(rep, "data"):
        raise TypeError(f"rep must be a workbench.papers.Reproduction, got {type(rep).__name__}")
    own = BUILDERS.get(rep.name)
    return (own(rep) if own else []) + [("verdict", verdict_chart(rep))]


__all__ = ["BUILDERS", "figures", "verdict_chart"]
