"""The NTK spectra panel: architecture, network and data widgets driving four figures.

The architecture dropdown picks the MLP (:class:`workbench.nets.MLP`, the default, with the four figures below)
or a :mod:`workbench.layers` net of :func:`workbench.studies.architectures.build` on 8x8 images (CNN with global
pooling, local CNN with flatten readout, residual CNN, self-attention), where the channels play the role of the
width and the figures are: the spectrum at the chosen channel count against infinite width, the channel
convergence (theory: slope -1/2), and the locality study (Favero, Cagnetta & Wyart 2021): the normalized NTK
spectra of all five architectures on the same images and their fitted eigenvalue decay exponents. The depth,
activation, w_std, b_std and parametrization widgets apply to every architecture (muP only to the MLP).

MLP figures and what each depends on (a change of a widget recomputes only the studies whose cache
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
from collections.abc import Callable, Iterator, Sequence
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
from workbench.plots.architectures import convergence_figure, decay_figure, spectra_figure
from workbench.plots.ntk import convergence, drift, sphere, spectrum
from workbench.studies import architectures as arch
from workbench.studies.ntk import (DATASETS, SpectrumResult, iter_kernel_drift, iter_width_convergence, kernel_drift,
                                   make_inputs, spectrum_comparison, sphere_spectrum, width_convergence)
from workbench.validation import check_choice, check_positive_int

WIDTHS = (16, 64, 256, 1024, 4096)
#: channel counts of the image architectures (the empirical NTK of a 3x3 conv of c channels has 9 c^2 parameters)
CHANNELS = (16, 32, 64, 128, 256)
ACTIVATIONS = ("relu", "erf", "tanh", "gelu", "identity")
#: the architecture dropdown: the MLP of workbench.nets, then the image nets of workbench.studies.architectures
ARCHITECTURE_CHOICES = (("MLP", "mlp"), ("CNN + global pool", "cnn_gap"), ("CNN + flatten (local)", "cnn_flatten"),
                        ("residual CNN", "resnet"), ("self-attention", "attention"))


def _message_figure(title: str, message: str) -> go.Figure:
    fig = base_figure(title, "", "")
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


class NTKPanel(Panel):
    """Widgets: depth, width (channels for the image nets), activation, w_std, b_std, parametrization, data set,
    sample size, architecture (module docstring)."""

    def __init__(self, *, sphere_dim: int = 3, seeds: int | None = None, channel_sweep: Sequence[int] | None = None,
                 locality_names: Sequence[str] | None = None, threaded: bool | None = None, **values: Any) -> None:
        """``values``: initial widget values by :class:`Params` field (e.g. ``architecture="cnn_gap", n=48``);
        ``seeds``, ``channel_sweep``, ``locality_names``: the attributes of those names (default: fast or full
        mode's); ``threaded``: run experiments on a worker thread (None: in a kernel only)."""
        super().__init__()
        self.runner.threaded = threaded
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
        # every default on its slider's grid (min + k step): the browser's slider snaps an off-grid value on the
        # first touch and sends it back, a second, unasked recomputation (100 became 104 with step 8)
        self.n = W.IntSlider(value=config.pick(24, 100), min=8, max=config.pick(64, 400), step=4,
                             description="sample size", style=style)
        self.architecture = W.Dropdown(options=ARCHITECTURE_CHOICES, value="mlp", description="architecture",
                                       style=style)
        self.arch_note = W.HTML(layout=W.Layout(width="330px"))
        #: channel counts of the channel-convergence sweep of the image architectures
        self.channel_sweep: tuple[int, ...] = config.pick((16, 32, 64), (32, 64, 128, 256))
        #: the architectures of the locality study (NTK spectra and decay exponents side by side)
        self.locality_names: tuple[str, ...] = arch.ARCHITECTURES
        self._last_width = {"mlp": self.width.value, "image": 64}
        self._switching = False
        self.widths = config.pick((64, 128, 256), (64, 128, 256, 512, 1024, 2048))
        self.seeds = config.pick(2, 4) if seeds is None else check_positive_int("seeds", seeds)
        if channel_sweep is not None:
            self.channel_sweep = tuple(check_positive_int("channel_sweep", int(c)) for c in channel_sweep)
        if locality_names is not None:
            self.locality_names = tuple(check_choice("locality_names", nm, arch.ARCHITECTURES)
                                        for nm in locality_names)
        self.drift_widths = config.pick((32, 256), (64, 256, 1024))
        self.drift_steps = config.pick(10, 100)
        self.max_degree = config.pick(20, 60)
        self.gram_points = config.pick(100, 400)
        self._cache: dict[tuple, Any] = {}
        self.computed: list[str] = []  # which studies the last update recomputed (not served from cache)
        #: the four figure slots (the MLP's names); :attr:`figures` names them for the architecture shown
        self.slots = {name: LiveFigure(_message_figure(title, "computing..."))
                      for name, title in (("spectrum", "NTK spectrum"), ("convergence", "Width convergence"),
                                          ("sphere", "Sphere eigenvalues"), ("drift", "Kernel drift"))}
        self._set_initial(values)
        self._name_figures()
        self._describe_architecture()
        self.update()
        # the architecture sits last in page order: the browser check changes the first control (depth)
        controls = W.HBox([W.VBox([self.depth, self.width, self.activation, self.w_std]),
                           W.VBox([self.b_std, self.parametrization, self.dataset, self.n]),
                           W.VBox([self.architecture, self.arch_note])])
        body = [side_by_side(self.slots["spectrum"], self.slots["convergence"]),
                side_by_side(self.slots["sphere"], self.slots["drift"])]
        self.layout([controls], body)
        self.watch([self.depth, self.width, self.activation, self.w_std, self.b_std, self.parametrization,
                    self.dataset, self.n], self._update_unless_switching)
        self.watch([self.architecture], self._switch_architecture)
        self.status.value = f"<small>{html.escape(config.device_report())}</small>"

    # ------------------------------------------------------------------ architecture choice
    def _name_figures(self) -> None:
        """``figures`` (what the export writes) named for what the slots show now."""
        names = (("spectrum", "convergence", "sphere", "drift") if self.architecture.value == "mlp"
                 else ("spectrum", "channel_convergence", "locality_spectra", "locality_decay"))
        self.figures = dict(zip(names, self.slots.values()))

    def _describe_architecture(self) -> None:
        name = self.architecture.value
        if name == "mlp":
            text = ("MLP on the chosen data set; width = hidden units. Figures: spectrum, width convergence, "
                    "sphere eigenvalues, kernel drift.")
        else:
            text = (f"{html.escape(arch.LABELS[name])} on 8x8 images of the chosen data set (digits; Gaussian or "
                    "spherical pixels); <b>channels</b> play the role of width. Figures: spectrum, channel "
                    "convergence, and the locality study: NTK spectra of all five architectures, decay exponents.")
        self.arch_note.value = f"<small>{text}</small>"

    def _update_unless_switching(self) -> None:
        if not self._switching:  # the width slider's options change with the architecture: one update, not two
            self.update()

    def _set_initial(self, values: dict[str, Any]) -> None:
        bad = sorted(set(values) - set(Params._fields))
        if bad:
            raise TypeError(f"NTKPanel got unknown widget values {bad}; allowed: {Params._fields}")
        if "architecture" in values:
            self.architecture.value = check_choice("architecture", values["architecture"],
                                                   [v for _, v in ARCHITECTURE_CHOICES])
            self._apply_architecture(None)
        for name, value in values.items():
            widget = getattr(self, name)
            if name != "architecture":
                try:
                    widget.value = value
                except Exception as exc:  # a traitlets error: say which widget and what it allows
                    allowed = getattr(widget, "options", None) or (widget.min, widget.max)
                    raise ValueError(f"NTKPanel {name} must be within {allowed}, got {value!r}") from exc

    def _apply_architecture(self, previous: str | None) -> None:
        """Width slider: widths (MLP) or channels (image nets), each remembering its last value; figure names."""
        image = self.architecture.value != "mlp"
        if previous is not None:
            self._last_width["mlp" if previous == "mlp" else "image"] = self.width.value
        options = config.pick(CHANNELS[::2], CHANNELS) if image else config.pick(WIDTHS[:3], WIDTHS)
        want = self._last_width["image" if image else "mlp"]
        self._switching = True
        try:
            if tuple(self.width.options) != tuple(options):
                self.width.options = options
            self.width.value = want if want in options else min(options, key=lambda c: abs(c - want))
        finally:
            self._switching = False
        self.width.description = "channels" if image else "width"
        self._name_figures()
        self._describe_architecture()

    def _switch_architecture(self) -> None:
        """Swap the width slider between widths (MLP) and channels (image nets), rename the figures, update."""
        self._apply_architecture(self._shown_architecture)
        self.update()

    # ------------------------------------------------------------------ model
    def params(self) -> Params:
        """The widget values now (a snapshot: the background worker reads this, never the widgets)."""
        return Params(self.depth.value, self.width.value, self.activation.value, self.w_std.value, self.b_std.value,
                      self.parametrization.value, self.dataset.value, self.n.value, self.architecture.value)

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

    def _convergence_key(self, p: Params) -> tuple:
        return ("convergence", *p.net_key(), p.parametrization, p.dataset, p.n, self.widths, self.seeds)

    def convergence_result(self, p: Params | None = None):
        p = p or self.params()
        if p.parametrization == "mup":
            return None
        return self._cached(self._convergence_key(p), lambda: width_convergence(
            self.net(p=p), self.inputs(p), self.widths, seeds=self.seeds, progress=False))

    def _convergence_steps(self, p: Params) -> Iterator[tuple[Any, int]]:
        """(partial result, number of widths) after each width; a setting computed before comes in one step."""
        if p.parametrization == "mup":
            yield None, 1
            return
        yield from self._steps("convergence", self._convergence_key(p), lambda: iter_width_convergence(
            self.net(p=p), self.inputs(p), self.widths, seeds=self.seeds), len(self.widths))

    def sphere_result(self, p: Params | None = None):
        p = p or self.params()
        if p.parametrization == "mup":
            return None
        width = p.width if p.parametrization == "standard" else 0
        key = ("sphere", *p.net_key(), p.parametrization, width)
        return self._cached(key, lambda: sphere_spectrum(self.net(p=p), self.sphere_dim, self.max_degree,
                                                         num_points=self.gram_points))

    def _drift_key(self, p: Params) -> tuple:
        return ("drift", *p.net_key(), p.dataset, p.n, self.drift_widths, self.drift_steps)

    def _drift_data(self, p: Params) -> tuple[jnp.ndarray, jnp.ndarray]:
        x = self.inputs(p)
        return x, jnp.sin(3 * x[:, :1]) + 0.5 * x[:, 1:2]  # a smooth target: the same for every parametrization

    def drift_result(self, p: Params | None = None):
        p = p or self.params()
        return self._cached(self._drift_key(p), lambda: kernel_drift(
            self.net(p=p), *self._drift_data(p), self.drift_widths, num_steps=self.drift_steps, seeds=1,
            progress=False))

    def _drift_steps(self, p: Params) -> Iterator[tuple[Any, int]]:
        """(partial result, number of runs) after each training run (width x parametrization)."""
        yield from self._steps("drift", self._drift_key(p), lambda: iter_kernel_drift(
            self.net(p=p), *self._drift_data(p), self.drift_widths, num_steps=self.drift_steps, seeds=1),
            2 * len(self.drift_widths))

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
        self._shown_architecture = p.architecture
        if p.architecture != "mlp":
            self._update_image_net(p)
            return
        theory = self.theory_spectrum(p)
        if theory is not None and ("spectrum", *p) not in self._cache:
            self.slots["spectrum"].update(spectrum(theory, title=f"NTK spectrum: infinite width (width {p.width}: "
                                                                   "computing...)"))
        # the convergence figure gains a width per chunk, the drift figure a training run per chunk
        jobs = [("spectrum", lambda q: iter([(self.spectrum_result(q), 1)])), ("convergence", self._convergence_steps),
                ("sphere", lambda q: iter([(self.sphere_result(q), 1)])), ("drift", self._drift_steps)]

        def show(name: str, res: Any, _results: dict[str, Any]) -> None:
            self.slots[name].update(_message_figure(_TITLES[name], _MUP_NOTE) if res is None
                                    else _BUILDERS[name](res))

        self.experiment(tuple(p), "NTK studies", _chunks(jobs, p), _changed_only(show))

    # ------------------------------------------------------------------ image architectures
    def images(self, p: Params | None = None) -> jnp.ndarray:
        """The (n, 8, 8, 1) images of the data set (:func:`workbench.studies.architectures.image_inputs`)."""
        p = p or self.params()
        return self._cached(("images", p.dataset, p.n), lambda: arch.image_inputs(p.dataset, p.n), record=False)

    def arch_theory(self, p: Params | None = None) -> SpectrumResult:
        """The infinite-width NTK eigenvalues of the image net alone (analytic; cached by parameters).

        The analytic kernel of a :mod:`workbench.layers` net is compiled per input shape and per setting (seconds
        on a CPU), so the panel computes it as the first background chunk, not in the widget callback."""
        p = p or self.params()

        def compute() -> SpectrumResult:
            k = np.asarray(self._theory_net(p).kernels(self.images(p)).ntk, float)
            inf = np.sort(np.linalg.eigvalsh(0.5 * (k + k.T)))[::-1]
            return SpectrumResult(np.zeros((0, inf.shape[0])), inf, p.width, (), "infinite width only")

        return self._cached(("arch_theory", *self._theory_key(p)), compute, record=False)

    @staticmethod
    def _theory_key(p: Params) -> tuple:
        # in the NTK parametrization the limit does not depend on the channels: one kernel for every channel count
        return (*p._replace(width=64), ) if p.parametrization == "ntk" else tuple(p)

    @staticmethod
    def _theory_net(p: Params):
        # the net the spectrum, channel-convergence and locality studies take as the limit: one compiled kernel
        return arch.limit_net(p.architecture, p.width, **p.options())

    def _arch_spectrum(self, p: Params) -> Iterator[tuple[Any, int]]:
        yield self._cached(("arch_spectrum", *p), lambda: arch.spectrum_comparison(
            p.architecture, self.images(p), p.width, seeds=self.seeds, **p.options())), 1

    def _steps(self, name: str, key: tuple, steps: Callable[[], Iterator[Any]],
                    of: int) -> Iterator[tuple[Any, int]]:
        """(partial, of) per step of ``steps()``; a key computed before comes in one step from the cache."""
        if key in self._cache:
            yield self._cache[key], 1
            return
        result = None
        for result in steps():
            yield result, of
        self._cache[key] = result
        self.computed.append(name)

    def _arch_convergence(self, p: Params) -> Iterator[tuple[Any, int]]:
        key = ("arch_convergence", p.architecture, *p.net_key(), p.parametrization, p.dataset, p.n, self.channel_sweep)
        yield from self._steps("arch_convergence", key, lambda: arch.iter_channel_convergence(
            p.architecture, self.images(p), self.channel_sweep, seeds=self.seeds, every_seed=True, **p.options()),
            len(self.channel_sweep) * self.seeds)  # a wide count's seeds drawn one by one

    def _locality(self, p: Params) -> Iterator[tuple[Any, int]]:
        """The NTK spectra of :attr:`locality_names` (the same for every architecture choice: computed once)."""
        names = self.locality_names
        key = ("locality", *p.net_key(), p.parametrization, p.dataset, p.n, names)
        yield from self._steps("locality", key, lambda: arch.iter_spectra(self.images(p), names, **p.options()),
                                    len(names))

    def _update_image_net(self, p: Params) -> None:
        """Background, chunk by chunk: the infinite-width spectrum of the image net, the empirical spectrum at the
        chosen channels, the channel convergence channel by channel, the locality spectra architecture by
        architecture. Instant: whatever of it is cached; the rest says it is computing."""
        label = arch.LABELS[p.architecture]
        if p.parametrization == "mup":
            for name, slot in self.figures.items():
                slot.update(_message_figure(_ARCH_TITLES[name], "muP has no fixed infinite-width NTK for these "
                                                                 "nets (workbench.layers): pick ntk or standard"))
            # an empty experiment: it supersedes whatever ran before, so nothing stale draws over the notes
            self.experiment(tuple(p), f"{label} studies", lambda: iter(()), lambda _r, _d: None)
            return
        theory_key = ("arch_theory", *self._theory_key(p))
        if theory_key in self._cache and ("arch_spectrum", *p) not in self._cache:
            self.slots["spectrum"].update(spectrum(self._cache[theory_key], title=f"{label} NTK spectrum: infinite "
                                                   f"width ({p.width} channels: computing...)"))
        elif theory_key not in self._cache:
            self.slots["spectrum"].update(_message_figure(f"{label} NTK spectrum", "computing the infinite-width "
                                                          "NTK (compiled once per shape and setting)..."))
        jobs = [("theory", lambda q: iter([(self.arch_theory(q), 1)])), ("spectrum", self._arch_spectrum),
                ("channel_convergence", self._arch_convergence), ("locality", self._locality)]

        def show(name: str, res: Any, results: dict[str, Any]) -> None:
            if name == "theory" and "spectrum" not in results:
                self.slots["spectrum"].update(spectrum(res, title=f"{label} NTK spectrum: infinite width "
                                                                  f"({p.width} channels: computing...)"))
            elif name == "spectrum":
                self.slots["spectrum"].update(spectrum(res, title=f"{label} NTK spectrum: {p.width} channels "
                                                                  "vs infinite width"))
            elif name == "channel_convergence":
                self.slots["convergence"].update(convergence_figure(res))
            elif name == "locality":
                self.slots["sphere"].update(spectra_figure(res))
                self.slots["drift"].update(decay_figure(res, highlight=p.architecture))

        self.experiment(tuple(p), f"{label} studies", _chunks(jobs, p), _changed_only(show))


Job = tuple[str, Callable[["Params"], Iterator[tuple[Any, int]]]]


def _chunks(jobs: Sequence[Job], p: Params) -> Callable[[], Iterator[tuple[dict[str, Any], float, str]]]:
    """The panel's experiment: each job's steps in turn, every step a chunk holding all results so far."""
    def chunks():
        done: dict[str, Any] = {}
        for i, (name, job) in enumerate(jobs):
            for j, (partial, of) in enumerate(job(p)):
                done = {**done, name: partial}
                yield done, (i + (j + 1) / of) / len(jobs), f"{name} {j + 1}/{of}"
    return chunks


def _changed_only(show: Callable[[str, Any, dict[str, Any]], None]) -> Callable[[dict[str, Any], bool], None]:
    """A ``draw(results, done)`` that calls ``show(name, result, results)`` only for the results that changed
    since the last draw (a chunk redraws the figure it added to, not the others)."""
    shown: dict[str, Any] = {}

    def draw(results: dict[str, Any], _done: bool) -> None:
        for name, res in results.items():
            if name in shown and shown[name] is res:
                continue
            shown[name] = res
            show(name, res, results)
    return draw


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
    architecture: str = "mlp"

    def net_key(self) -> tuple:
        return (self.depth, self.activation, self.w_std, self.b_std)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`workbench.studies.architectures.build` (all but the channels)."""
        return dict(depth=self.depth, activation=self.activation, w_std=self.w_std, b_std=self.b_std,
                    parametrization=self.parametrization)


_MUP_NOTE = "muP has no fixed infinite-width NTK (see kernels.analytic): pick ntk or standard"
_TITLES = {"spectrum": "NTK spectrum", "convergence": "Width convergence", "sphere": "Sphere eigenvalues",
           "drift": "Kernel drift"}
_ARCH_TITLES = {"spectrum": "NTK spectrum", "channel_convergence": "Channel convergence",
                "locality_spectra": "NTK spectrum by architecture", "locality_decay": "Eigenvalue decay exponent"}
_BUILDERS = {"spectrum": spectrum, "convergence": convergence, "sphere": sphere, "drift": drift}
