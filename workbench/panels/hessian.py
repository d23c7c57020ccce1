"""Panel: batch-Hessian spectra at several batch sizes against the random-matrix model (notebook 03).

Widgets choose the architecture, the loss, the data set, the batch sizes, Hessian or GGN, and the training
step at which to look; :func:`workbench.studies.hessian.batch_hessian_study` does the work and the three
figures of :mod:`workbench.plots.hessian` show it. Results are cached per setting, and compiled code is
shared across batch sizes and draws (one weighted loss per net), so revisiting a setting is instant.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import ipywidgets as W
import jax
import numpy as np

from workbench import config
from workbench.nets import MLP
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure, side_by_side
from workbench.plots.hessian import density_figure, lr_max_figure, noise_excess, top_eigenvalue_figure
from workbench._compat import deprecated_alias
from workbench.studies.hessian import DATASETS, BatchHessianStudy, iter_batch_hessian_study
from workbench.studies.partial import Partial, last
from workbench.studies.hessian import make_data as _make_data

BATCH_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _waiting(title: str):
    from workbench.plots import base_figure

    fig = base_figure(title, "", "")
    fig.add_annotation(text="computing...", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


class BatchHessianPanel(Panel):
    """Spectral densities, top eigenvalue and max learning rate of the batch Hessian/GGN against B."""

    def __init__(self) -> None:
        super().__init__()
        self.num_data = config.pick(256, 1024)
        style = {"description_width": "110px"}
        self.depth = W.IntSlider(value=1, min=1, max=4, description="depth", style=style)
        self.width = W.SelectionSlider(options=config.pick((8, 16, 32), (16, 32, 64, 128)), value=16,
                                       description="width", style=style)
        self.activation = W.Dropdown(options=("tanh", "relu", "erf", "gelu"), value="tanh", description="activation",
                                     style=style)
        self.loss = W.Dropdown(options=(("MSE", "mse"), ("cross-entropy", "cross_entropy")), value="mse",
                               description="loss", style=style)
        self.dataset = W.Dropdown(options=DATASETS, value="synthetic", description="data set", style=style)
        self.kind = W.ToggleButtons(options=(("Hessian", "hessian"), ("Gauss-Newton", "ggn")), value="hessian",
                                    description="matrix", style=style)
        choices = [b for b in BATCH_CHOICES if b <= self.num_data]
        self.batch_sizes = W.SelectMultiple(options=choices, value=config.pick((2, 8, 32), (2, 8, 32, 128)),
                                            description="batch sizes", rows=5, style=style)
        self.train_steps = W.Dropdown(options=(("init", 0), ("after 10 GD steps", 10), ("after 100 GD steps", 100)),
                                      value=0, description="look at", style=style)
        self.summary = W.HTML()
        self._cache: dict[tuple, BatchHessianStudy] = {}
        self._study: BatchHessianStudy | None = None
        for name, title in (("density", "Spectral density of the batch Hessian"), ("top", "Top eigenvalue vs B"),
                            ("lr", "Largest stable learning rate vs B")):
            self.figures[name] = LiveFigure(_waiting(title))
        controls = W.HBox([W.VBox([self.depth, self.width, self.activation, self.loss]),
                           W.VBox([self.dataset, self.kind, self.train_steps]), self.batch_sizes])
        self.layout([controls, self.summary],
                    [self.figures["density"], side_by_side(self.figures["top"], self.figures["lr"])])
        self.watch([self.depth, self.width, self.activation, self.loss, self.dataset, self.kind, self.batch_sizes,
                    self.train_steps])
        self.status.value = f"<small>{html.escape(config.device_report())}</small>"
        self.refresh()

    @property
    def study(self) -> BatchHessianStudy:
        """The study of the current setting (waits for the background computation)."""
        self.wait()
        return self._study

    def settings(self) -> tuple:
        return (self.depth.value, self.width.value, self.activation.value, self.loss.value, self.dataset.value,
                self.kind.value, tuple(sorted(self.batch_sizes.value)) or (8,), self.train_steps.value)

    def compute(self, s: tuple | None = None) -> BatchHessianStudy:
        """The study of setting ``s`` (default: the widgets'), cached."""
        s = self.settings() if s is None else s
        if s not in self._cache:
            self._cache[s] = last(self.partials(s))
        return self._cache[s]

    def partials(self, s: tuple) -> Iterator[Partial]:
        """The study of setting ``s``, one partial study per draw (the last is the full one)."""
        depth, width, activation, loss, dataset, kind, bs, steps = s
        x, y, _ = _make_data(dataset, loss, self.num_data)
        w_std = 2 ** 0.5 if activation == "relu" else 1.0
        net = MLP(depth=depth, width=width, activation=activation, w_std=w_std, b_std=0.1, out_dim=int(y.shape[1]))
        return iter_batch_hessian_study(
            net, x, y, list(bs), loss=loss, kind=kind, num_batches=config.pick(3, 6), top_k=config.pick(1, 3),
            key=jax.random.PRNGKey(0), train_steps=steps, lr=config.pick(0.5, 0.5), slq_steps=config.pick(16, 60),
            slq_probes=config.pick(2, 4), noise_probes=config.pick(4, 16), grid_size=config.pick(200, 500),
            progress=False)

    def _summarize(self) -> None:
        st = self._study
        ratio = noise_excess(st)
        rows = [f"P = {st.num_params} parameters, N = {st.num_data} points, {st.kind}, {st.loss}",
                f"fitted sigma^2 = {st.fit.sigma2:.3g} (s^2 ~ B^{st.fit.exponent:.2f} for B << N; model: -1)",
                f"full-data lambda_max = {st.full_top[0]:.4g}"]
        if ratio.size:
            rows.append(f"measured noise top / Wigner edge: {ratio.min():.2f} to {ratio.max():.2f}")
        if st.diverged_at is not None:
            rows.append(f"<span style='color:#b00'>training diverged at step {st.diverged_at}: showing the last finite "
                        "parameters</span>")
        self.summary.value = "<small>" + " &middot; ".join(rows) + "</small>"

    def update(self) -> None:
        """Background: the study of the current setting (cached), drawn after every draw (the SLQ densities appear
        batch size by batch size and sharpen draw by draw); a newer setting supersedes it between draws."""
        s = self.settings()

        def chunks():
            if s in self._cache:
                yield self._cache[s], 1.0, "cached"
                return
            study = None
            for study, fraction, note in self.partials(s):
                yield study, fraction, f"{note} done"
            self._cache[s] = study

        def draw(study: BatchHessianStudy, _done: bool) -> None:
            self._study = study
            for name, builder in (("density", density_figure), ("top", top_eigenvalue_figure), ("lr", lr_max_figure)):
                self.figures[name].update(builder(study))
            self._summarize()

        self.experiment(s, "batch Hessians", chunks, draw)

    def numbers(self) -> dict[str, np.ndarray | float]:
        """The measured and predicted top eigenvalues per batch size, for printing in the notebook."""
        st = self.study
        return {"batch_size": st.batch_sizes, "measured_top": st.batch_top[:, :, 0].mean(axis=1),
                "predicted_top": st.prediction.top, "full_top": float(st.full_top[0]),
                "noise_top": st.noise_top.mean(axis=1), "wigner_edge": st.wigner_edge}

#: moved to the studies layer (presentation holds no data code); this name goes in the next release
make_data = deprecated_alias(_make_data, "workbench.panels.hessian.make_data", "workbench.studies.hessian.make_data")
