"""Figures of the generalization-dynamics notebook: pure functions from study results to plotly figures."""

from __future__ import annotations

import warnings

import numpy as np
import plotly.graph_objects as go

from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

#: colours for several widths / modes (measured side), theory stays THEORY_COLOR or dashed
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _seed_mean(a: np.ndarray) -> np.ndarray:
    """Mean over seeds (axis 0) ignoring NaN; NaN (no warning) where no seed has a value: a diverged run, or the
    steps a partial result has not trained yet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=0)


def _in_training(result, width: int) -> str:
    """" (trained to step k)" for a width still in training in a partial result, else ""."""
    done = result.steps_done[width]
    return "" if done >= result.steps[-1] else f", trained to step {done}"


def _index_of(steps: np.ndarray, step: int) -> int:
    steps = np.asarray(steps)
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError(f"steps must be a non-empty 1-d array, got shape {steps.shape}")
    return int(np.argmin(np.abs(steps - step)))


def function_snapshot(result, step: int, *, seed: int = 0) -> go.Figure:
    """Functions on the circle at the recorded step nearest ``step``: ensemble mean +- 2 std (theory), each
    width's network (seed ``seed``) and its own closed-form prediction, the target and the training points."""
    i = _index_of(result.steps, step)
    d = result.data
    ang = d.angles_test
    fig = base_figure(f"f(x) on the circle at step {int(result.steps[i])} (t = lr * step = {result.times[i]:.3g})",
                      "angle (radians)", "f(x)")
    mean, sd = result.ensemble_mean[i], result.ensemble_std[i]
    fig.add_trace(go.Scatter(x=np.concatenate([ang, ang[::-1]]), y=np.concatenate([mean + 2 * sd, (mean - 2 * sd)[::-1]]),
                             fill="toself", fillcolor="rgba(214,39,40,0.12)", line=dict(width=0),
                             name="infinite ensemble +- 2 sd", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=ang, y=mean, mode="lines", line=dict(color=THEORY_COLOR, width=2),
                             name="infinite-ensemble mean (NTK theory)"))
    fig.add_trace(go.Scatter(x=ang, y=d.y_test[:, 0], mode="lines", line=dict(color="black", dash="dot", width=1),
                             name="target"))
    for c, w in zip(PALETTE, result.widths):
        fig.add_trace(go.Scatter(x=ang, y=result.measured_test[w][seed, i], mode="lines", line=dict(color=c, width=2),
                                 name=f"net width {w} (seed {seed}{_in_training(result, w)})"))
        fig.add_trace(go.Scatter(x=ang, y=result.predicted_test[w][seed, i], mode="lines",
                                 line=dict(color=c, width=1, dash="dash"), name=f"closed form from its f_0 (width {w})"))
    fig.add_trace(go.Scatter(x=d.angles_train, y=d.y_train[:, 0], mode="markers",
                             marker=dict(color="black", size=8, symbol="x"), name="training points"))
    return fig


def loss_curves(result, *, step: int | None = None) -> go.Figure:
    """Train loss (1/2 sum (f - y)^2) and test MSE against GD steps: measured (mean over seeds), each width's
    closed form from its own f_0, and the expectation over the infinite ensemble (theory alone, no net needed)."""
    fig = base_figure("Train loss and test error over training", "GD step", "loss", log_y=True)
    s = np.asarray(result.steps)
    for c, w in zip(PALETTE, result.widths):
        for key, meas, pred, dash in (("train loss", result.measured_train_loss, result.predicted_train_loss, None),
                                      ("test MSE", result.measured_test_mse, result.predicted_test_mse, "dot")):
            fig.add_trace(go.Scatter(x=s, y=_seed_mean(meas[w]), mode="markers+lines",
                                     marker=dict(color=c, size=5), line=dict(color=c, width=1, dash=dash),
                                     name=f"{key}, width {w} (measured{_in_training(result, w)})"))
            fig.add_trace(go.Scatter(x=s, y=_seed_mean(pred[w]), mode="lines",
                                     line=dict(color=THEORY_COLOR, width=1, dash=dash),
                                     name=f"{key}, width {w} (closed form)", showlegend=w == result.widths[0]))
    for key, y, dash in (("train loss", result.ensemble_train_loss, None), ("test MSE", result.ensemble_test_mse, "dot")):
        fig.add_trace(go.Scatter(x=s, y=y, mode="lines", line=dict(color="black", width=2, dash=dash),
                                 name=f"{key}, infinite-ensemble mean (NTK theory)"))
    if step is not None:
        fig.add_vline(x=float(step), line=dict(color="grey", dash="dash"))
    return fig


def mode_residuals(result, *, width: int | None = None, num_modes: int = 4, seed: int = 0) -> go.Figure:
    """|v_k^T (f_t(X) - y)| for the top NTK eigenmodes: closed form (lines) and the trained net (markers)."""
    width = result.widths[-1] if width is None else width
    if width not in result.measured_modes:
        raise ValueError(f"width must be one of {result.widths}, got {width}")
    fig = base_figure(f"Residual along NTK eigenvectors (width {width}{_in_training(result, width)}, seed {seed}): "
                      "top modes converge first",
                      "GD step", "|v_k . (f_t(X) - y)|", log_y=True)
    s = np.asarray(result.steps)
    for k in range(min(num_modes, result.eigenvalues.size)):
        c = PALETTE[k % len(PALETTE)]
        lab = f"mode {k + 1} (lambda = {result.eigenvalues[k]:.3g})"
        fig.add_trace(go.Scatter(x=s, y=np.abs(result.predicted_modes[width][seed, :, k]), mode="lines",
                                 line=dict(color=c), name=f"{lab} theory"))
        fig.add_trace(go.Scatter(x=s, y=np.abs(result.measured_modes[width][seed, :, k]), mode="markers",
                                 marker=dict(color=c, size=6), name=f"{lab} measured"))
    return fig


def width_errors(result) -> go.Figure:
    """Largest relative error of the test predictions over the run against width, with a width^-1/2 guide.
    Only widths whose training has finished are shown (a partial run's error so far would understate it)."""
    widths = result.finished_widths
    fig = base_figure("Finite-width error of the closed-form prediction", "width", "max_t |f_net - f_NTK| / |f_NTK|",
                      log_x=True, log_y=True)
    if not widths:
        fig.add_annotation(text="the first width is training...", showarrow=False, x=0.5, y=0.5, xref="paper",
                           yref="paper")
        return fig
    w = np.asarray(widths, dtype=float)
    err = np.array([result.rel_error[x] for x in widths])  # (W, S)
    for j in range(err.shape[1]):
        fig.add_trace(go.Scatter(x=w, y=err[:, j], mode="markers", marker=dict(color=MEASURED_COLOR, size=6, opacity=0.5),
                                 name="seeds", showlegend=j == 0))
    mean = _seed_mean(err.T)
    fig.add_trace(go.Scatter(x=w, y=mean, mode="lines+markers", line=dict(color=MEASURED_COLOR), name="mean over seeds"))
    if np.isfinite(mean[0]) and mean[0] > 0:
        fig.add_trace(go.Scatter(x=w, y=mean[0] * np.sqrt(w[0] / w), mode="lines",
                                 line=dict(color=THEORY_COLOR, dash="dash"), name="width^-1/2"))
    return fig


def advani_saxe_alpha(study, *, alpha: float | None = None) -> go.Figure:
    """E_g against alpha = P/N for several training times (theory) with simulation points; the peak at alpha = 1."""
    fig = base_figure("Advani & Saxe: generalization error against examples per parameter", "alpha = P/N", "E_g",
                      log_y=True)
    for j, t in enumerate(study.times):
        c = PALETTE[j % len(PALETTE)]
        label = "t = inf" if np.isinf(t) else f"t = {t:g}"
        fig.add_trace(go.Scatter(x=study.alphas, y=study.E_g_alpha[:, j], mode="lines", line=dict(color=c),
                                 name=f"theory, {label}"))
        if study.sim is not None:
            h = np.nonzero(study.sim_times == t)[0]
            if h.size:
                fig.add_trace(go.Scatter(x=study.sim_alphas, y=study.sim.E_g[:, h[0]], mode="markers",
                                         error_y=dict(array=3 * study.sim.E_g_sem[:, h[0]]),
                                         marker=dict(color=c, size=8, symbol="circle-open"),
                                         name=f"simulation +- 3 sem, {label}"))
    fig.add_vline(x=1.0, line=dict(color="grey", dash="dot"))
    if alpha is not None:
        fig.add_vline(x=float(alpha), line=dict(color="black", dash="dash"))
    return fig


def advani_saxe_time(times: np.ndarray, e_g: np.ndarray, e_t: np.ndarray, *, alpha: float,
                     sim_times: np.ndarray | None = None, sim=None, sim_row: int | None = None) -> go.Figure:
    """E_g(t) and E_t(t) at one alpha (theory), the early-stopping time marked, and simulation points if given."""
    times, e_g, e_t = np.asarray(times), np.asarray(e_g), np.asarray(e_t)
    if not (times.shape == e_g.shape == e_t.shape):
        raise ValueError(f"times, e_g and e_t must have equal shapes, got {times.shape}, {e_g.shape}, {e_t.shape}")
    fig = base_figure(f"Advani & Saxe at alpha = {alpha:.3g}: training time and early stopping", "t / tau", "error",
                      log_x=True, log_y=True)
    fig.add_trace(go.Scatter(x=times, y=e_g, mode="lines", line=dict(color=THEORY_COLOR), name="E_g theory"))
    fig.add_trace(go.Scatter(x=times, y=e_t, mode="lines", line=dict(color=THEORY_COLOR, dash="dash"), name="E_t theory"))
    best = int(np.argmin(e_g))
    fig.add_trace(go.Scatter(x=[times[best]], y=[e_g[best]], mode="markers", marker=dict(color="black", size=10,
                             symbol="star"), name=f"early stopping t = {times[best]:.3g}"))
    if sim is not None and sim_row is not None and sim_times is not None:
        finite = np.isfinite(sim_times)
        fig.add_trace(go.Scatter(x=np.asarray(sim_times)[finite], y=sim.E_g[sim_row][finite], mode="markers",
                                 error_y=dict(array=3 * sim.E_g_sem[sim_row][finite]),
                                 marker=dict(color=MEASURED_COLOR, size=8), name="E_g simulation +- 3 sem"))
        fig.add_trace(go.Scatter(x=np.asarray(sim_times)[finite], y=sim.E_t[sim_row][finite], mode="markers",
                                 error_y=dict(array=3 * sim.E_t_sem[sim_row][finite]),
                                 marker=dict(color=MEASURED_COLOR, size=8, symbol="square-open"),
                                 name="E_t simulation +- 3 sem"))
    return fig


def learning_curve(study) -> go.Figure:
    """E_g against the number of samples p: spectral theory (line) and kernel-regression simulation (+- 3 sem)."""
    fig = base_figure("Kernel regression learning curve on the sphere (NTK spectrum)", "samples p", "E_g",
                      log_x=True, log_y=True)
    fig.add_trace(go.Scatter(x=study.p_grid, y=study.E_g_theory, mode="lines", line=dict(color=THEORY_COLOR),
                             name="theory (Bordelon, Canatar & Pehlevan)"))
    if study.sim is not None:
        fig.add_trace(go.Scatter(x=study.sim_p, y=study.sim.E_g, mode="markers", error_y=dict(array=3 * study.sim.E_g_sem),
                                 marker=dict(color=MEASURED_COLOR, size=8), name="kernel regression +- 3 sem"))
    return fig
