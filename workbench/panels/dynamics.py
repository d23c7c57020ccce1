"""Panels of the generalization-dynamics notebook: kernel dynamics vs training, Advani & Saxe, learning curves.

Each panel wires widgets to a study in :mod:`workbench.studies.dynamics` and plot builders in
:mod:`workbench.plots.dynamics`. Sliders that only move along time redraw from stored results (no retraining).
Closed-form curves are drawn at once on every change; training and simulations run in the background
(:meth:`~workbench.panels.base.Panel.experiment`, cached by their settings); ``panel.result`` / ``panel.study``
wait for the running experiment.
"""

from __future__ import annotations

import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from workbench import config
from workbench.panels.background import checkpoint
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure
from workbench.plots import dynamics as P
from workbench.studies.dynamics import (advani_saxe_study, advani_saxe_time, kernel_vs_training,
                                        sphere_learning_curve_study)


def _waiting(title: str) -> go.Figure:
    """An empty figure saying that its experiment is computing."""
    from workbench.plots import base_figure

    fig = base_figure(title, "", "")
    fig.add_annotation(text="computing...", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


class KernelDynamicsPanel(Panel):
    """NTK closed form vs trained nets: widths, depth, activation, learning rate (as a fraction of 2/lambda_max),
    sample size, and a time slider that redraws from stored results."""

    #: while a width trains, its curves so far are drawn at most this often (each draw rebuilds four figures)
    PARTIAL_EVERY_S = 2.0

    def __init__(self) -> None:
        super().__init__()
        widths = config.pick((32, 512), (64, 256, 1024, 4096))
        # 4096 is offered, not selected: from depth 2 its 16.8M hidden-to-hidden weights per layer make the study
        # take minutes on a laptop CPU (measured on 2 cores: 4096 at depth 2 still at GD step 75 of 300 after 80 s,
        # all other widths together 35 s); 64 to 1024 already span the 1/sqrt(width) approach to the NTK prediction
        self.widths = W.SelectMultiple(options=widths, value=config.pick(widths, widths[:-1]), description="widths",
                                       rows=len(widths))
        self.lr_fraction = W.FloatSlider(value=0.5, min=0.05, max=1.2, step=0.05, description="lr / lr_max",
                                         tooltip="learning rate as a fraction of the GD stability limit 2/lambda_max")
        self.n_train = W.IntSlider(value=config.pick(8, 16), min=4, max=40, description="n_train")
        self.depth = W.IntSlider(value=1, min=1, max=3, description="depth")
        self.activation = W.Dropdown(options=("relu", "erf", "tanh"), value="relu", description="activation")
        self.step = W.IntSlider(value=0, min=0, max=1, description="GD step", continuous_update=True)
        self._result = None
        self._titles = {"functions": "Functions: NTK closed form vs trained nets", "losses": "Training and test loss",
                        "modes": "Residuals along NTK eigenvectors", "width_errors": "Distance to the NTK prediction"}
        self.figures = {name: LiveFigure(_waiting(title)) for name, title in self._titles.items()}
        controls = W.HBox([W.VBox([self.widths]), W.VBox([self.depth, self.activation]),
                           W.VBox([self.lr_fraction, self.n_train, self.step])])
        self.layout([controls], list(self.figures.values()))
        self.watch([self.widths, self.lr_fraction, self.n_train, self.depth, self.activation])
        self.watch([self.step], self.redraw_time)
        self.refresh()

    @property
    def result(self):
        """The finished study of the current setting (waits for the background training)."""
        self.wait()
        return self._result

    def settings(self) -> dict:
        return dict(widths=tuple(sorted(self.widths.value)), lr_fraction=self.lr_fraction.value,
                    depth=self.depth.value, activation=self.activation.value, n_train=self.n_train.value,
                    num_steps=config.pick(60, 300), record_every=config.pick(5, 5), num_seeds=config.pick(2, 3),
                    n_test=config.pick(48, 96), progress=False)

    def compute(self):
        return kernel_vs_training(**self.settings())

    def _set_step_range(self) -> None:
        steps = self._result.steps
        self.step.max = int(steps[-1])
        self.step.step = int(steps[1] - steps[0]) if steps.size > 1 else 1
        self.step.value = min(self.step.value, int(steps[-1]))

    def redraw_time(self) -> None:
        """Instant: the snapshot at the time slider's step, from the stored result (no retraining)."""
        with self.runner.draw_lock:  # not interleaved with a background draw of the same figures
            if self._result is None:
                return
            self.figures["functions"].update(P.function_snapshot(self._result, self.step.value))
            self.figures["losses"].update(P.loss_curves(self._result, step=self.step.value))

    def update(self) -> None:
        """Instant: the closed form of the new setting (infinite-ensemble mean and band, expected losses);
        background: the nets, width by width, drawn as they train."""
        if not self.widths.value:
            raise ValueError("select at least one width")
        kw = self.settings()
        theory = kernel_vs_training(**{**kw, "widths": ()})

        def chunks():  # width by width (narrow first): the figures gain a width per chunk, and a wide width's
            # curves grow while it trains (a partial result at most every PARTIAL_EVERY_S)
            merged = None
            n = len(kw["widths"])
            last_draw = [time.perf_counter()]
            for i, width in enumerate(kw["widths"]):
                def note(done: int, i: int = i, width: int = width) -> tuple[str, float]:
                    return (f"width {width} ({i + 1}/{n}), GD step {done}/{kw['num_steps']}",
                            (i + done / kw["num_steps"]) / n)

                def progress(_w: int, done: int) -> None:
                    # a wide net trains for tens of seconds: say how far, and stop there once superseded
                    checkpoint(*note(done))

                def partial(part, width: int = width) -> None:
                    if time.perf_counter() - last_draw[0] < self.PARTIAL_EVERY_S:
                        return
                    checkpoint(*note(part.steps_done[width]),
                               partial=part if merged is None else _merge_widths(merged, part))
                    last_draw[0] = time.perf_counter()

                part = kernel_vs_training(**{**kw, "widths": (width,)}, callback=progress, partial_callback=partial)
                merged = part if merged is None else _merge_widths(merged, part)
                last_draw[0] = time.perf_counter()
                yield merged, (i + 1) / len(kw["widths"]), f"width {width} ({i + 1}/{len(kw['widths'])})"

        def draw(result, _done: bool) -> None:
            self._result = result
            self._set_step_range()
            self.redraw_time()
            self.figures["modes"].update(P.mode_residuals(result))
            self.figures["width_errors"].update(P.width_errors(result))

        # the theory drawn and the request made under the draw lock: a stale experiment's partial cannot land between
        # them (after the request it is stale and no longer drawn)
        with self.runner.draw_lock:
            self._result = theory
            self._set_step_range()
            self.redraw_time()
            for name in ("modes", "width_errors"):  # nothing of the old setting stays on screen
                self.figures[name].update(_waiting(self._titles[name]))
            self.experiment(tuple(sorted(kw.items())), "NTK vs training", chunks, draw)


def _merge_widths(a, b):
    """Two :class:`~workbench.studies.dynamics.KernelDynamicsResult` of the same setting and other widths as one:
    the per-width dicts joined; the closed-form part (data, eigenvalues, ensemble) is the same in both."""
    joined = {f: {**getattr(a, f), **getattr(b, f)} for f in a._fields if isinstance(getattr(a, f), dict)}
    widths = tuple(a.widths) + tuple(b.widths)
    info = a.info.replace("width=" + "/".join(map(str, a.widths)), "width=" + "/".join(map(str, widths)), 1)
    return a._replace(widths=widths, info=info, **joined)


class AdvaniSaxePanel(Panel):
    """E_g against alpha (peak at alpha = 1) and against time at the slider's alpha (early stopping)."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = W.FloatSlider(value=1.2, min=0.1, max=3.0, step=0.05, description="alpha = P/N")
        self.noise_var = W.FloatSlider(value=0.25, min=0.0, max=1.0, step=0.05, description="noise var")
        self.init_var = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.1, description="init var")
        self._study = self.compute(simulate=False)  # theory now, simulation points in the background
        self.figures = {"alpha": LiveFigure(P.advani_saxe_alpha(self._study, alpha=self.alpha.value)),
                        "time": LiveFigure(self._time_figure(sim=None))}
        self.layout([W.HBox([self.alpha, self.noise_var, self.init_var])], list(self.figures.values()))
        self.watch([self.noise_var, self.init_var])
        self.watch([self.alpha], self.redraw_alpha)
        self.status.value = f"<small>{self._study.info}</small>"
        self.refresh()

    @property
    def study(self):
        """The study with its simulation points (waits for the background simulation)."""
        self.wait()
        return self._study

    def _kw(self) -> dict:
        return dict(noise_var=self.noise_var.value, init_var=self.init_var.value, teacher_var=1.0, tau=1.0)

    def compute(self, simulate: bool = True, kw: dict | None = None):
        return advani_saxe_study(num_features=config.pick(60, 200), num_trials=config.pick(4, 10),
                                 alphas=np.linspace(0.1, 3.0, config.pick(41, 117)), simulate=simulate,
                                 **(kw or self._kw()))

    _SIM_TIMES = (0.3, 3.0, 30.0)

    def _time_result(self, alpha: float, kw: dict, simulate: bool):
        return advani_saxe_time(alpha, self._study.t_grid, sim_times=self._SIM_TIMES, simulate=simulate,
                                num_features=config.pick(60, 200), num_trials=config.pick(4, 10), **kw)

    def _time_figure(self, sim) -> go.Figure:
        r = self._time_result(self.alpha.value, self._kw(), simulate=False)
        return P.advani_saxe_time(r.t, r.E_g, r.E_t, alpha=r.alpha, sim_times=r.sim_times, sim=sim, sim_row=0)

    def redraw_alpha(self) -> None:
        """Instant: theory at the new alpha; background: the simulation points there."""
        self.figures["alpha"].update(P.advani_saxe_alpha(self._study, alpha=self.alpha.value))
        self.figures["time"].update(self._time_figure(sim=None))
        a, kw = self.alpha.value, self._kw()

        def chunks():
            yield self._time_result(a, kw, simulate=True).sim, 1.0, f"alpha = {a:.3g}"

        self.experiment((a, *sorted(kw.items())), "simulation at alpha", chunks,
                        lambda sim, _done: self.figures["time"].update(self._time_figure(sim)), kind="time")

    def update(self) -> None:
        """Instant: theory curves of the new noise/init; background: the study's simulation points."""
        self._study = self.compute(simulate=False)
        self.redraw_alpha()
        kw = self._kw()

        def chunks():
            yield self.compute(simulate=True, kw=kw), 1.0, "simulations against alpha"

        def draw(study, _done: bool) -> None:
            self._study = study
            self.figures["alpha"].update(P.advani_saxe_alpha(study, alpha=self.alpha.value))

        self.experiment(tuple(sorted(kw.items())), "Advani & Saxe simulations", chunks, draw)


class LearningCurvePanel(Panel):
    """Spectral learning-curve theory against kernel regression with the relu NTK on the sphere S^2."""

    def __init__(self) -> None:
        super().__init__()
        self.ridge = W.FloatLogSlider(value=1e-3, base=10, min=-6, max=0, description="ridge")
        self.noise = W.FloatLogSlider(value=1e-2, base=10, min=-4, max=0, description="noise var")
        self._study = self.compute(simulate=False)
        self.figures = {"learning_curve": LiveFigure(P.learning_curve(self._study))}
        self.layout([W.HBox([self.ridge, self.noise])], list(self.figures.values()))
        self.watch([self.ridge, self.noise])
        self.status.value = f"<small>{self._study.info}</small>"
        self.refresh()

    @property
    def study(self):
        """The study with its simulation points (waits for the background simulation)."""
        self.wait()
        return self._study

    def compute(self, simulate: bool = True, ridge: float | None = None, noise: float | None = None):
        return sphere_learning_curve_study(ridge=self.ridge.value if ridge is None else ridge,
                                           noise=self.noise.value if noise is None else noise,
                                           sim_p=config.pick((10, 30), (10, 20, 40, 80, 160)),
                                           num_trials=config.pick(4, 20), num_test=config.pick(200, 500),
                                           max_degree=config.pick(40, 60), simulate=simulate)

    def update(self) -> None:
        """Instant: the spectral theory; background: kernel regression simulations."""
        ridge, noise = self.ridge.value, self.noise.value
        self._study = self.compute(simulate=False)
        self.figures["learning_curve"].update(P.learning_curve(self._study))

        def chunks():
            yield self.compute(simulate=True, ridge=ridge, noise=noise), 1.0, "kernel regression"

        def draw(study, _done: bool) -> None:
            self._study = study
            self.figures["learning_curve"].update(P.learning_curve(study))

        self.experiment((ridge, noise), "learning-curve simulation", chunks, draw)
