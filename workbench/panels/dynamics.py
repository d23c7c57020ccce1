"""Panels of the generalization-dynamics notebook: kernel dynamics vs training, Advani & Saxe, learning curves.

Each panel wires widgets to a study in :mod:`workbench.studies.dynamics` and plot builders in
:mod:`workbench.plots.dynamics`. Sliders that only move along time redraw from stored results (no retraining).
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from workbench import config
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure
from workbench.plots import dynamics as P
from workbench.studies.dynamics import (advani_saxe_study, advani_saxe_time, kernel_vs_training,
                                        sphere_learning_curve_study)


class KernelDynamicsPanel(Panel):
    """NTK closed form vs trained nets: widths, depth, activation, learning rate (as a fraction of 2/lambda_max),
    sample size, and a time slider that redraws from stored results."""

    def __init__(self) -> None:
        super().__init__()
        widths = config.pick((32, 512), (64, 256, 1024, 4096))
        self.widths = W.SelectMultiple(options=widths, value=widths, description="widths", rows=len(widths))
        self.lr_fraction = W.FloatSlider(value=0.5, min=0.05, max=1.2, step=0.05, description="lr / lr_max",
                                         tooltip="learning rate as a fraction of the GD stability limit 2/lambda_max")
        self.n_train = W.IntSlider(value=config.pick(8, 16), min=4, max=40, description="n_train")
        self.depth = W.IntSlider(value=1, min=1, max=3, description="depth")
        self.activation = W.Dropdown(options=("relu", "erf", "tanh"), value="relu", description="activation")
        self.step = W.IntSlider(value=0, min=0, max=1, description="GD step", continuous_update=True)
        self.result = self.compute()
        self.figures = {
            "functions": LiveFigure(P.function_snapshot(self.result, self.step.value)),
            "losses": LiveFigure(P.loss_curves(self.result, step=self.step.value)),
            "modes": LiveFigure(P.mode_residuals(self.result)),
            "width_errors": LiveFigure(P.width_errors(self.result)),
        }
        self._set_step_range()
        controls = W.HBox([W.VBox([self.widths]), W.VBox([self.depth, self.activation]),
                           W.VBox([self.lr_fraction, self.n_train, self.step])])
        self.layout([controls], list(self.figures.values()))
        self.watch([self.widths, self.lr_fraction, self.n_train, self.depth, self.activation])
        self.watch([self.step], self.redraw_time)
        self.status.value = f"<small>{self.result.info}</small>"

    def compute(self):
        return kernel_vs_training(widths=tuple(sorted(self.widths.value)), lr_fraction=self.lr_fraction.value,
                                  depth=self.depth.value, activation=self.activation.value,
                                  n_train=self.n_train.value, num_steps=config.pick(60, 300),
                                  record_every=config.pick(5, 5), num_seeds=config.pick(2, 3),
                                  n_test=config.pick(48, 96))

    def _set_step_range(self) -> None:
        steps = self.result.steps
        self.step.max = int(steps[-1])
        self.step.step = int(steps[1] - steps[0]) if steps.size > 1 else 1
        self.step.value = min(self.step.value, int(steps[-1]))

    def redraw_time(self) -> None:
        self.figures["functions"].update(P.function_snapshot(self.result, self.step.value))
        self.figures["losses"].update(P.loss_curves(self.result, step=self.step.value))

    def update(self) -> None:
        if not self.widths.value:
            raise ValueError("select at least one width")
        self.result = self.compute()
        self._set_step_range()
        self.redraw_time()
        self.figures["modes"].update(P.mode_residuals(self.result))
        self.figures["width_errors"].update(P.width_errors(self.result))


class AdvaniSaxePanel(Panel):
    """E_g against alpha (peak at alpha = 1) and against time at the slider's alpha (early stopping)."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = W.FloatSlider(value=1.2, min=0.1, max=3.0, step=0.05, description="alpha = P/N")
        self.noise_var = W.FloatSlider(value=0.25, min=0.0, max=1.0, step=0.05, description="noise var")
        self.init_var = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.1, description="init var")
        self.study = self.compute()
        self.figures = {"alpha": LiveFigure(P.advani_saxe_alpha(self.study, alpha=self.alpha.value)),
                        "time": LiveFigure(self._time_figure())}
        self.layout([W.HBox([self.alpha, self.noise_var, self.init_var])], list(self.figures.values()))
        self.watch([self.noise_var, self.init_var])
        self.watch([self.alpha], self.redraw_alpha)
        self.status.value = f"<small>{self.study.info}</small>"

    def _kw(self) -> dict:
        return dict(noise_var=self.noise_var.value, init_var=self.init_var.value, teacher_var=1.0, tau=1.0)

    def compute(self):
        return advani_saxe_study(num_features=config.pick(60, 200), num_trials=config.pick(4, 10),
                                 alphas=np.linspace(0.1, 3.0, config.pick(41, 117)), **self._kw())

    def _time_figure(self) -> go.Figure:
        r = advani_saxe_time(self.alpha.value, self.study.t_grid, num_features=config.pick(60, 200),
                             num_trials=config.pick(4, 10), **self._kw())
        return P.advani_saxe_time(r.t, r.E_g, r.E_t, alpha=r.alpha, sim_times=r.sim_times, sim=r.sim, sim_row=0)

    def redraw_alpha(self) -> None:
        self.figures["alpha"].update(P.advani_saxe_alpha(self.study, alpha=self.alpha.value))
        self.figures["time"].update(self._time_figure())

    def update(self) -> None:
        self.study = self.compute()
        self.redraw_alpha()


class LearningCurvePanel(Panel):
    """Spectral learning-curve theory against kernel regression with the relu NTK on the sphere S^2."""

    def __init__(self) -> None:
        super().__init__()
        self.ridge = W.FloatLogSlider(value=1e-3, base=10, min=-6, max=0, description="ridge")
        self.noise = W.FloatLogSlider(value=1e-2, base=10, min=-4, max=0, description="noise var")
        self.study = self.compute()
        self.figures = {"learning_curve": LiveFigure(P.learning_curve(self.study))}
        self.layout([W.HBox([self.ridge, self.noise])], list(self.figures.values()))
        self.watch([self.ridge, self.noise])
        self.status.value = f"<small>{self.study.info}</small>"

    def compute(self):
        return sphere_learning_curve_study(ridge=self.ridge.value, noise=self.noise.value,
                                           sim_p=config.pick((10, 30), (10, 20, 40, 80, 160)),
                                           num_trials=config.pick(4, 20), num_test=config.pick(200, 500),
                                           max_degree=config.pick(40, 60))

    def update(self) -> None:
        self.study = self.compute()
        self.figures["learning_curve"].update(P.learning_curve(self.study))
