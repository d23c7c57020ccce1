"""Figures of three paper entries on training and architecture (:mod:`workbench.papers`): Mok et al. 2022 (NTK
metrics vs label-gradient alignment), Li et al. 2018 (intrinsic dimension) and Rosenfeld & Risteski 2023 (opposing
signals at the edge of stability). Pure functions from a Reproduction's ``data`` to plotly figures; registered in
:data:`workbench.plots.papers.BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def _mok(rep) -> list[tuple[str, go.Figure]]:
    r = rep.data["ranking"]
    names = list(r["scores"])
    f1 = base_figure("Kendall tau of each metric with the final test accuracy (95% bootstrap interval)",
                     "metric", "Kendall tau-b")
    tau = np.array([r["tau"][m] for m in names])
    lo = np.array([r["tau_ci"][m][0] for m in names])
    hi = np.array([r["tau_ci"][m][1] for m in names])
    f1.add_trace(go.Bar(x=names, y=tau, marker_color=[COLORS[i % len(COLORS)] for i in range(len(names))],
                        error_y=dict(type="data", symmetric=False, array=hi - tau, arrayminus=tau - lo),
                        showlegend=False))
    f1.add_hline(y=0, line_dash="dot")
    figs = [("kendall_tau", f1)]
    for i, m in enumerate(names):
        f = base_figure(f"{m} against the final test accuracy (tau {r['tau'][m]:.2f})", m, "test accuracy")
        f.add_trace(go.Scatter(x=r["scores"][m], y=r["accuracy"], mode="markers", text=r["labels"],
                               marker=dict(size=10, color=COLORS[i % len(COLORS)]), name=m))
        figs.append((f"scatter_{i}", f))
    return figs


def _li(rep) -> list[tuple[str, go.Figure]]:
    c = rep.data["curves"]
    fig = base_figure("Test accuracy after training in a random d-dimensional subspace", "subspace dimension d",
                      "test accuracy", log_x=True)
    for i, w in enumerate(c["widths"]):
        acc = np.asarray(c["accuracy"][w], float)
        err = acc.std(axis=0, ddof=1) / np.sqrt(acc.shape[0]) if acc.shape[0] > 1 else None
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(x=c["dims"], y=acc.mean(axis=0), mode="markers+lines",
                                 name=f"width {w} (D = {c['num_params'][w]})", line=dict(color=color),
                                 error_y=dict(type="data", array=err) if err is not None else None))
        fig.add_hline(y=c["fraction"] * float(np.mean(c["full"][w])), line=dict(color=color, dash="dot"))
        if np.isfinite(c["d90"][w]):
            fig.add_vline(x=c["d90"][w], line=dict(color=color, dash="dash"))
    f2 = base_figure("Intrinsic dimension d_90 against the number of parameters", "parameters D", "d_90",
                     log_x=True, log_y=True)
    d_params = [c["num_params"][w] for w in c["widths"]]
    f2.add_trace(go.Scatter(x=d_params, y=[c["d90"][w] for w in c["widths"]], mode="markers+lines",
                            name="measured d_90", marker=dict(color=MEASURED_COLOR, size=10)))
    d90 = [c["d90"][w] for w in c["widths"] if np.isfinite(c["d90"][w])]
    if d90:
        mid = float(np.exp(np.mean(np.log(d90))))
        f2.add_trace(go.Scatter(x=d_params, y=[mid] * len(d_params), mode="lines", name="width-independent",
                                line=dict(color=THEORY_COLOR, dash="dot")))
        f2.add_trace(go.Scatter(x=d_params + d_params[::-1], y=[mid * 2 ** 0.5] * len(d_params)
                                + [mid / 2 ** 0.5] * len(d_params), fill="toself", line=dict(width=0),
                                fillcolor="rgba(214,39,40,0.1)", name="one doubling"))
    return [("accuracy_vs_d", fig), ("d90_vs_params", f2)]


def _rosenfeld(rep) -> list[tuple[str, go.Figure]]:
    d = rep.data["dynamics"]
    eta = d["eta"]
    steps = np.arange(1, np.shape(d["loss_a"])[1] + 1)
    f1 = base_figure(f"Group losses under GD at eta = {eta:g} (seed 0)", "step", "mean squared error / 2",
                     log_y=True)
    f1.add_trace(go.Scatter(x=steps, y=d["loss_a"][0], name="group A (+1)", line=dict(color=COLORS[0])))
    f1.add_trace(go.Scatter(x=steps, y=d["loss_b"][0], name="group B (-1)", line=dict(color=COLORS[1])))
    f1.add_trace(go.Scatter(x=steps, y=d["loss"][0], name="all data", line=dict(color="black")))
    st = d["stable"]
    f1.add_trace(go.Scatter(x=steps, y=st["loss_a"], name=f"group A, eta = {st['eta']:g}",
                            line=dict(color=COLORS[0], dash="dot")))
    f1.add_trace(go.Scatter(x=steps, y=st["loss_b"], name=f"group B, eta = {st['eta']:g}",
                            line=dict(color=COLORS[1], dash="dot")))
    f2 = base_figure("Sharpness lambda_max(H) during training", "step", "lambda_max")
    for i, s in enumerate(d["sharpness"]):
        f2.add_trace(go.Scatter(x=steps, y=s, name=f"seed {i}", line=dict(color=COLORS[i % len(COLORS)])))
    f2.add_trace(go.Scatter(x=steps, y=st["sharpness"], name=f"eta = {st['eta']:g}", line=dict(color="grey")))
    f2.add_hline(y=2 / eta, line=dict(color=THEORY_COLOR, dash="dot"), annotation_text="2/eta")
    f2.add_hrect(y0=0.9 * 2 / eta, y1=1.1 * 2 / eta, fillcolor=THEORY_COLOR, opacity=0.08, line_width=0)
    settle, window = d.get("window", (0, len(steps)))
    t0 = d["t_star"][0] if d["t_star"] and d["t_star"][0] is not None else 0
    win = slice(t0 + settle, t0 + settle + window)
    f3 = base_figure("Per-step loss changes of the two groups in the analysed window (seed 0)", "Delta L_A",
                     "Delta L_B")
    f3.add_trace(go.Scatter(x=np.diff(d["loss_a"][0][win]), y=np.diff(d["loss_b"][0][win]), mode="markers",
                            marker=dict(color=MEASURED_COLOR, size=4), name=f"eta = {eta:g}"))
    return [("group_losses", f1), ("sharpness", f2), ("loss_changes", f3)]


BUILDERS: dict[str, Callable] = {"mok_2022_lga": _mok, "li_2018_intrinsic_dimension": _li,
                                 "rosenfeld_2023_opposing_signals": _rosenfeld}

__all__ = ["BUILDERS"]
