"""The NTK spectra panel: network and data widgets driving four figures.

Figures and what each depends on (a change of a widget recomputes only the studies whose cache
key holds it; everything else is served from the panel's cache):

* spectrum (finite vs infinite width): every network widget, data set, sample size;
* width convergence: every network widget but the width (widths are swept), data set, sample size;
* sphere eigenvalues on S^2: network widgets (the width only for the standard parametrization);
* kernel drift (NTK vs muP, GD): depth, activation, w_std, b_std, data set, sample size.

For ``parametrization="mup"`` there is no fixed infinite-width NTK: the spectrum shows the empirical
kernels only and the convergence and sphere figures say so.

Responsiveness: the infinite-width spectrum (closed form) is drawn at once on every change; the experiments
(empirical NTKs seed by seed, then width convergence, sphere Gram check and kernel drift) run in the background
and each figure is redrawn as its study finishes (:meth:`~workbench.panels.base.Panel.experiment`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import ipywidgets as W
import jax.numpy as jnp
import numpy as np
import plotly.graph_objects as go

from workbench import config
from workbench.kernels.analytic import infinite_kernels
from workbench.nets import MLP
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure, side_by_side
from workbench.plots import base_figure
from workbench.plots.ntk import convergence, drift, sphere, spectrum
from workbench.studies.ntk import (DATASETS, SpectrumResult, iter_width_convergence, kernel_drift, make_inputs,
                                   spectrum_comparison, sphere_spectrum, width_convergence)

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
            self.figures[name] = LiveFigure(_message_figure(title, "computing..."))
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
    def params(self) -> Params:
        """The widget values now (a snapshot: the background worker reads this, never the widgets)."""
        return Params(self.depth.value, self.width.value, self.activation.value, self.w_std.value, self.b_std.value,
                      self.parametrization.value, self.dataset.value, self.n.value)

    def net(self, width: int | None = None, parametrization: str | None = None, p: Params | None = None) -> MLP:
        p = p or self.params()
        return MLP(depth=p.depth, width=width or p.width, activation=p.activation, w_std=p.w_std, b_std=p.b_std,
                   parametrization=parametrization or p.parametrization)

    def inputs(self, p: Params | None = None) -> jnp.ndarray:
        p = p or self.params()
        return self._cached(("inputs", p.dataset, p.n),
                            lambda: make_inputs(p.dataset, p.n, 3 if p.dataset != "digits" else 64), record=False)

    def _cached(self, key: tuple, compute: Callable[[], Any], *, record: bool = True) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
            if record:
                self.computed.append(key[0])
        return self._cache[key]

    # ------------------------------------------------------------------ studies
    def spectrum_result(self, p: Params | None = None) -> SpectrumResult | None:
        p = p or self.params()
        if p.parametrization == "mup":
            return None
        return self._cached(("spectrum", *p), lambda: spectrum_comparison(self.net(p=p), self.inputs(p),
                                                                          seeds=self.seeds))

    def convergence_result(self, p: Params | None = None):
        p = p or self.params()
        if p.parametrization == "mup":
            return None
        key = ("convergence", *p.net_key(), p.parametrization, p.dataset, p.n)
        return self._cached(key, lambda: width_convergence(self.net(p=p), self.inputs(p), self.widths,
                                                           seeds=self.seeds, progress=False))

    def _convergence_steps(self, p: Params) -> Iterator[tuple[Any, int]]:
        """(partial result, number of widths) after each width; a setting computed before comes in one step."""
        key = ("convergence", *p.net_key(), p.parametrization, p.dataset, p.n)
        if p.parametrization == "mup" or key in self._cache:
            yield self.convergence_result(p), 1
            return
        result = None
        for result in iter_width_convergence(self.net(p=p), self.inputs(p), self.widths, seeds=self.seeds):
            yield result, len(self.widths)
        self._cache[key] = result
        self.computed.append("convergence")

    def sphere_result(self, p: Params | None = None):
        p = p or self.params()
        if p.parametrization == "mup":
            return None
        width = p.width if p.parametrization == "standard" else 0
        key = ("sphere", *p.net_key(), p.parametrization, width)
        return self._cached(key, lambda: sphere_spectrum(self.net(p=p), self.sphere_dim, self.max_degree,
                                                         num_points=self.gram_points))

    def drift_result(self, p: Params | None = None):
        p = p or self.params()
        key = ("drift", *p.net_key(), p.dataset, p.n)

        def compute():
            x = self.inputs(p)
            y = jnp.sin(3 * x[:, :1]) + 0.5 * x[:, 1:2]  # a smooth target: the same for every parametrization
            return kernel_drift(self.net(p=p), x, y, self.drift_widths, num_steps=self.drift_steps,
                                seeds=1, progress=False)

        return self._cached(key, compute)

    # ------------------------------------------------------------------ redraw
    def theory_spectrum(self, p: Params | None = None) -> SpectrumResult | None:
        """The infinite-width NTK eigenvalues alone (closed form, instant): a SpectrumResult with no seeds."""
        p = p or self.params()
        if p.parametrization == "mup":
            return None
        net, x = self.net(p=p), self.inputs(p)

        def compute() -> SpectrumResult:
            inf = np.linalg.eigvalsh(net.out_dim * np.asarray(infinite_kernels(net, x).ntk))[::-1]
            return SpectrumResult(np.zeros((0, inf.shape[0])), inf, net.width, (), "infinite width only")

        return self._cached(("theory", *p), compute, record=False)

    def update(self) -> None:
        """Instant: the infinite-width spectrum; background: the four studies, each figure as it finishes."""
        self.computed = []
        p = self.params()
        theory = self.theory_spectrum(p)
        if theory is not None and ("spectrum", *p) not in self._cache:
            self.figures["spectrum"].update(spectrum(theory, title=f"NTK spectrum: infinite width (width {p.width}: "
                                                                   "computing...)"))
        jobs = [("spectrum", self.spectrum_result), ("convergence", self._convergence_steps),
                ("sphere", self.sphere_result), ("drift", self.drift_result)]

        def chunks():
            done: dict[str, Any] = {}
            for i, (name, job) in enumerate(jobs):
                if name == "convergence":  # width by width: the figure gains a width per chunk
                    for j, (partial, of) in enumerate(job(p)):
                        done = {**done, name: partial}
                        yield done, (i + (j + 1) / of) / len(jobs), f"{name}: width {j + 1}/{of}"
                    continue
                done = {**done, name: job(p)}
                yield done, (i + 1) / len(jobs), f"{name} ({i + 1}/{len(jobs)})"

        shown: dict[str, Any] = {}

        def draw(results: dict[str, Any], _done: bool) -> None:
            for name, res in results.items():
                if name in shown and shown[name] is res:
                    continue
                shown[name] = res
                if res is None:
                    self.figures[name].update(_message_figure(_TITLES[name], _MUP_NOTE))
                else:
                    self.figures[name].update(_BUILDERS[name](res))

        self.experiment(tuple(p), "NTK studies", chunks, draw)


class Params(NamedTuple):
    """The NTK panel's widget values."""

    depth: int
    width: int
    activation: str
    w_std: float
    b_std: float
    parametrization: str
    dataset: str
    n: int

    def net_key(self) -> tuple:
        return (self.depth, self.activation, self.w_std, self.b_std)


_MUP_NOTE = "muP has no fixed infinite-width NTK (see kernels.analytic): pick ntk or standard"
_TITLES = {"spectrum": "NTK spectrum", "convergence": "Width convergence", "sphere": "Sphere eigenvalues",
           "drift": "Kernel drift"}
_BUILDERS = {"spectrum": spectrum, "convergence": convergence, "sphere": sphere, "drift": drift}
