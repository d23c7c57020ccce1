"""The your-own-model panel: pick a model (built-in MLP or CNN, or ``module:factory``), a data set and a sample
size, press Run, and see the four studies side by side: NTK (linearized vs real training, spectrum, drift),
batch Hessian (random-matrix model), gradient noise scale, learning rate vs batch size.

The studies are those of :mod:`workbench.studies.model` (the command line runs the same); the model text is
resolved by :func:`workbench.models.resolve_factory` (imported, never evaluated). Model, data and sample
size take effect through the Run button (the studies train networks), which runs them in the background (one
chunk per study, each figure drawn as its study finishes, a newer Run superseding an older one between studies,
results cached by their settings); the view selectors redraw at once from the finished results.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from workbench import config
from workbench.datasets import NAMES, load
from workbench.models import builtin_model, prepare, resolve_factory
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure, side_by_side
from workbench.plots.hessian import density_figure, lr_max_figure, top_eigenvalue_figure
from workbench.plots.lr_batch import loss_heatmap
from workbench.plots.model import kernel_drift, linearized_vs_real, message, noise_scale, ntk_spectrum
from workbench.studies import model as S

MODEL_CHOICES = (("built-in MLP (workbench)", "mlp"), ("built-in CNN (Flax NNX)", "cnn"),
                 ("your own: module:factory", "factory"))
NTK_VIEWS = ("linearized vs real", "spectrum", "drift")
HESSIAN_VIEWS = ("top eigenvalue", "lr max", "densities")


class ModelPanel(Panel):
    """Widgets: model, module:factory text, data set, sample size, loss (applied by Run); NTK and Hessian views."""

    def __init__(self, *, run: bool = True) -> None:
        super().__init__()
        style = {"description_width": "110px"}
        self.model = W.Dropdown(options=MODEL_CHOICES, value="mlp", description="model", style=style)
        self.factory = W.Text(value="examples.flax_cnn:make", description="module:factory", style=style,
                              placeholder="mypackage.models:make")
        self.dataset = W.Dropdown(options=NAMES, value="digits", description="data set", style=style)
        self.n = W.IntSlider(value=config.pick(32, 256), min=16, max=config.pick(128, 2048), step=16,
                             description="sample size", style=style)
        self.loss = W.Dropdown(options=("cross_entropy", "mse"), value="cross_entropy", description="loss",
                               style=style)
        self.run_button = W.Button(description="Run studies", icon="play", button_style="primary")
        self.run_button.on_click(lambda _b: self.refresh())
        self.ntk_view = W.Dropdown(options=NTK_VIEWS, value=NTK_VIEWS[0], description="NTK view", style=style)
        self.hessian_view = W.Dropdown(options=HESSIAN_VIEWS, value=HESSIAN_VIEWS[0], description="Hessian view",
                                       style=style)
        self.summary = W.HTML()
        self.results: dict[str, Any] = {}
        self._runs = 0  # Run presses: a module:factory model's cache key, so each press recomputes it
        for name, title in (("ntk", "NTK"), ("hessian", "Batch Hessian"), ("noise", "Gradient noise"),
                            ("lr_batch", "Learning rate vs batch size")):
            self.figures[name] = LiveFigure(message(title, "press Run studies"))
        controls = [W.HBox([W.VBox([self.model, self.factory, self.dataset]), W.VBox([self.n, self.loss]),
                            W.VBox([self.ntk_view, self.hessian_view])]),
                    self.run_button]
        body = [side_by_side(self.figures["ntk"], self.figures["hessian"]),
                side_by_side(self.figures["noise"], self.figures["lr_batch"]), self.summary]
        self.layout(controls, body)
        self.defer([self.model, self.factory, self.dataset, self.n, self.loss], self.run_button)
        self.watch([self.ntk_view, self.hessian_view], self.redraw)
        self.status.value = f"<small>{html.escape(config.device_report())}</small>"
        if run:
            self.refresh()

    # ------------------------------------------------------------------ model and data
    def model_and_data(self):
        """(Model, x, y, test (x, y), data description) from the widgets (clear errors for bad input)."""
        n = self.n.value
        train = load(self.dataset.value, "train", n=n)
        test = load(self.dataset.value, "test", n=max(8, n // 4))
        if self.model.value == "factory":
            obj = resolve_factory(self.factory.value)
        else:
            width = config.pick(16, 64)
            obj = (builtin_model("cnn", tuple(train.x.shape[1:]), train.num_classes) if self.model.value == "cnn"
                   else builtin_model("mlp", tuple(train.x.shape[1:]), train.num_classes, width=width))
        model, x = prepare(obj, train.x, train.y, self.loss.value)
        xt = test.x.reshape((test.x.shape[0],) + tuple(x.shape[1:]))
        return model, x, train.y, (xt, test.y), train.description

    # ------------------------------------------------------------------ recomputation
    def update(self) -> None:
        """Run the four studies in the background, one chunk each (the NTK spectrum at initialization first, in a
        chunk of its own); each figure is drawn as its study finishes.

        Model and data are built here (synchronously, so a bad module:factory or sample size is reported at
        once). Runs of the built-in models are cached by (model, data set, sample size, loss); a module:factory
        model is recomputed on every Run (its code may have changed since the last one)."""
        model, x, y, test, desc = self.model_and_data()
        n = int(x.shape[0])
        loss = self.loss.value
        steps = config.pick(10, 100)
        self._runs += 1
        key = (self.model.value, (self.factory.value, self._runs) if self.model.value == "factory" else None,
               self.dataset.value, self.n.value, loss)
        self.results = {}
        for name, title in (("ntk", "NTK"), ("hessian", "Batch Hessian"), ("noise", "Gradient noise"),
                            ("lr_batch", "Learning rate vs batch size")):
            self.figures[name].update(message(title, "computing..."))

        def chunks():
            done: dict[str, Any] = {}
            # first the NTK spectrum at initialization (one kernel, about a second): a figure while the rest runs
            done["ntk_init"] = S.ntk_spectrum_at_init(model, (x, y))
            yield dict(done), 0.05, "NTK spectrum at initialization"
            done["ntk"] = S.ntk_study(model, (x, y), test, num_steps=steps, record_every=max(1, steps // 10),
                                      num_drift=2, progress=False)
            yield dict(done), 0.25, "NTK study"
            done["hessian"] = S.hessian_study(model, (x, y),
                                              config.pick([max(2, n // 4)], sorted({max(2, n // 8), n // 2})),
                                              loss=loss, top_k=1, num_batches=config.pick(1, 3),
                                              slq_steps=config.pick(10, 30), progress=False)
            yield dict(done), 0.5, "batch Hessian"
            done["noise"] = S.noise_study(model, (x, y), loss=loss,
                                          batch_sizes=sorted({max(1, n // 16), max(2, n // 2)}),
                                          num_draws=config.pick(8, 32), curvature=not config.fast_mode())
            yield dict(done), 0.75, "gradient noise scale"
            done["lr_batch"] = S.lr_batch_study(
                model, (x, y), loss=loss,
                batch_sizes=config.pick([max(1, n // 4)], sorted({max(1, n // 8), max(2, n // 2)})),
                lrs=config.pick((0.03, 0.3, 3.0), (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)), seeds=1,
                num_steps=config.pick(10, 100), record_every=config.pick(5, 10), sharpness=False, progress=False)
            yield dict(done), 1.0, "learning rate vs batch size"

        def draw(results: dict[str, Any], _done: bool) -> None:
            self.results = results
            self.redraw()
            if "ntk" in results and "noise" in results:
                noise = results["noise"]
                self.summary.value = (f"<small>{html.escape(model.describe)}; {html.escape(desc)}. B_simple = "
                                      f"{noise.b_simple:.4g} (exact), {noise.two_batch.b_simple:.4g} +- "
                                      f"{noise.two_batch.b_simple_se:.2g} (two batch sizes); NTK lambda_max = "
                                      f"{results['ntk'].eigenvalues[0]:.4g}</small>")

        self.experiment(key, "model studies", chunks, draw)

    def redraw(self) -> None:
        """Redraw the figures of the finished studies (the view selectors call this; nothing is recomputed)."""
        with self.runner.draw_lock:  # not interleaved with a background draw of the same figures
            self._redraw_views()

    def _redraw_views(self) -> None:
        r = self.results
        if "ntk" in r:
            self.figures["ntk"].update({"linearized vs real": linearized_vs_real, "spectrum": ntk_spectrum,
                                        "drift": kernel_drift}[self.ntk_view.value](r["ntk"]))
        elif "ntk_init" in r:  # the study's first part, whatever the view: training and drift follow
            self.figures["ntk"].update(ntk_spectrum(r["ntk_init"], title="Empirical NTK spectrum at initialization "
                                                                         "(training running...)"))
        if "hessian" in r:
            self.figures["hessian"].update({"top eigenvalue": top_eigenvalue_figure, "lr max": lr_max_figure,
                                            "densities": density_figure}[self.hessian_view.value](r["hessian"]))
        if "noise" in r:
            self.figures["noise"].update(noise_scale(r["noise"]))
        if "lr_batch" in r:
            self.figures["lr_batch"].update(loss_heatmap(next(iter(r["lr_batch"].sweeps.values()))))

    @property
    def studies(self) -> dict[str, Any]:
        """The four finished studies of the current run (waits for the background computation)."""
        self.wait()
        return self.results


__all__ = ["ModelPanel"]
