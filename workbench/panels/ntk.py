"""The NTK spectra panel: network and data widgets driving four figures.

Figures and what each depends on (a change of a widget recomputes only the studies whose cache
key holds it; everything else is served from the panel's cache):

* spectrum (finite vs infinite width): every network widget, data set, sample size;
* width convergence: every network widget but the width (widths are swept), data set, sample size;
* sphere eigenvalues on S^2: network widgets (the width only for the standard parametrization);
* kernel drift (NTK vs muP, GD): depth, activation, w_std, b_std, data set, sample size.

For ``parametrization="mup"`` there is no fixed infinite-width NTK: the spectrum shows the empirical
kernels only and the convergence and sphere figures say so.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import jax.numpy as jnp
import plotly.graph_objects as go

from workbench import config
from workbench.nets import MLP
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure, side_by_side
from workbench.plots import base_figure
from workbench.plots.ntk import convergence, drift, sphere, spectrum
from workbench.studies.ntk import (
    DATASETS,
    SpectrumResult,
    kernel_drift,
    make_inputs,
    spectrum_comparison,
    sphere_spectrum,
    width_convergence,
)

WIDTHS = (16, 64, 256, 1024, 4096)
ACTIVATIONS = ("relu", "erf", "tanh", "gelu", "identity")


def _message_figure(title: str, message: str) -> go.Figure:
    fig = base_figure(title, "", "")
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


class NTKPanel(Panel):
    """Widgets: depth, width, activation, w_std, b_std, parametrization, data set, sample size."""

    def __init__(self, *, sphere_dim: int = 3) -> None:
        super().__init__()
        self.sphere_dim = sphere_dim
        style = dict(description_width="110px")
        self.depth = W.IntSlider(value=2, min=1, max=6, description="depth", style=style)
        self.width = W.SelectionSlider(options=config.pick(WIDTHS[:3], WIDTHS), value=256, description="width",
                                       style=style)
        self.activation = W.Dropdown(options=ACTIVATIONS, value="relu", description="activation", style=style)
        self.w_std = W.FloatSlider(value=1.4, min=0.5, max=2.5, step=0.05, description="w_std", style=style)
        self.b_std = W.FloatSlider(value=0.1, min=0.0, max=1.0, step=0.05, description="b_std", style=style)
        self.parametrization = W.Dropdown(options=("ntk", "standard", "mup"), value="ntk",
                                          description="parametrization", style=style)
        self.dataset = W.Dropdown(options=DATASETS, value="sphere", description="data set", style=style)
        self.n = W.IntSlider(value=config.pick(24, 100), min=8, max=config.pick(64, 400), step=8,
                             description="sample size", style=style)
        self.widths = config.pick((64, 128, 256), (64, 128, 256, 512, 1024, 2048))
        self.seeds = config.pick(2, 4)
        self.drift_widths = config.pick((32, 256), (64, 256, 1024))
        self.drift_steps = config.pick(10, 100)
        self.max_degree = config.pick(20, 60)
        self.gram_points = config.pick(100, 400)
        self._cache: dict[tuple, Any] = {}
        self.computed: list[str] = []  # which studies the last update recomputed (not served from cache)
        for name, title in (("spectrum", "NTK spectrum"), ("convergence", "Width convergence"),
                            ("sphere", "Sphere eigenvalues"), ("drift", "Kernel drift")):
            self.figures[name] = LiveFigure(base_figure(title, "", ""))
        self.update()
        controls = W.HBox([W.VBox([self.depth, self.width, self.activation, self.w_std]),
                           W.VBox([self.b_std, self.parametrization, self.dataset, self.n])])
        body = [side_by_side(self.figures["spectrum"], self.figures["convergence"]),
                side_by_side(self.figures["sphere"], self.figures["drift"])]
        self.layout([controls], body)
        self.watch([self.depth, self.width, self.activation, self.w_std, self.b_std, self.parametrization,
                    self.dataset, self.n])
        self.status.value = f"<small>{html.escape(config.device_report())}</small>"

    # ------------------------------------------------------------------ model
    def net(self, width: int | None = None, parametrization: str | None = None) -> MLP:
        return MLP(depth=self.depth.value, width=width or self.width.value, activation=self.activation.value,
                   w_std=self.w_std.value, b_std=self.b_std.value,
                   parametrization=parametrization or self.parametrization.value)

    def inputs(self) -> jnp.ndarray:
        return self._cached(("inputs", self.dataset.value, self.n.value),
                            lambda: make_inputs(self.dataset.value, self.n.value, 3 if self.dataset.value != "digits"
                                                else 64), record=False)

    def _net_key(self) -> tuple:
        return (self.depth.value, self.activation.value, self.w_std.value, self.b_std.value)

    def _cached(self, key: tuple, compute: Callable[[], Any], *, record: bool = True) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
            if record:
                self.computed.append(key[0])
        return self._cache[key]

    # ------------------------------------------------------------------ studies
    def spectrum_result(self) -> SpectrumResult | None:
        if self.parametrization.value == "mup":
            return None
        key = ("spectrum", *self._net_key(), self.width.value, self.parametrization.value, self.dataset.value,
               self.n.value)
        return self._cached(key, lambda: spectrum_comparison(self.net(), self.inputs(), seeds=self.seeds,
                                                             progress=True))

    def convergence_result(self):
        if self.parametrization.value == "mup":
            return None
        key = ("convergence", *self._net_key(), self.parametrization.value, self.dataset.value, self.n.value)
        return self._cached(key, lambda: width_convergence(self.net(), self.inputs(), self.widths, seeds=self.seeds))

    def sphere_result(self):
        if self.parametrization.value == "mup":
            return None
        width = self.width.value if self.parametrization.value == "standard" else 0
        key = ("sphere", *self._net_key(), self.parametrization.value, width)
        return self._cached(key, lambda: sphere_spectrum(self.net(), self.sphere_dim, self.max_degree,
                                                         num_points=self.gram_points))

    def drift_result(self):
        key = ("drift", *self._net_key(), self.dataset.value, self.n.value)

        def compute():
            x = self.inputs()
            y = jnp.sin(3 * x[:, :1]) + 0.5 * x[:, 1:2]  # a smooth target: the same for every parametrization
            return kernel_drift(self.net(), x, y, self.drift_widths, num_steps=self.drift_steps,
                                seeds=1, progress=True)

        return self._cached(key, compute)

    # ------------------------------------------------------------------ redraw
    def update(self) -> None:
        self.computed = []
        mup_note = "muP has no fixed infinite-width NTK (see kernels.analytic): pick ntk or standard"
        res = self.spectrum_result()
        self.figures["spectrum"].update(spectrum(res) if res is not None
                        else _message_figure("NTK spectrum", mup_note))
        res = self.convergence_result()
        self.figures["convergence"].update(convergence(res) if res is not None
                        else _message_figure("Width convergence", mup_note))
        res = self.sphere_result()
        self.figures["sphere"].update(sphere(res) if res is not None
                        else _message_figure("Sphere eigenvalues", mup_note))
        self.figures["drift"].update(drift(self.drift_result()))
