"""The learning-rate-versus-batch-size panel: model/data/sweep widgets, a Run button, the loss heatmap,
lr-vs-B with every theory curve, the steps/examples trade-off, the noisy-quadratic control, and the
scaling-law calculators (Kaplan's critical batch, the Step Law), which update live."""

from __future__ import annotations

import html
import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from workbench import config
from workbench import lr_batch as lb
from workbench.experiments import SWEEP_OPTIMIZERS
from workbench.nets import ACTIVATIONS, PARAMETRIZATIONS
from workbench.panels.background import checkpoint
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure
from workbench.plots.lr_batch import kaplan_figure, loss_heatmap, lr_vs_batch
from workbench.plots.lr_batch import study_figures as plot_study_figures
from workbench.studies.lr_batch import (DATASETS, LrBatchConfig, LrBatchStudy, QuadraticStudy, default_config,
                                        fit_table, iter_study, lr_curves, quadratic_study, run_study)


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"4, 16, 64"`` -> (4, 16, 64); a clear ValueError for anything else."""
    if not isinstance(text, str):
        raise TypeError(f"batch sizes must be a comma-separated string, got {type(text).__name__}")
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("batch sizes must not be empty: write e.g. '4, 16, 64'")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"batch sizes must be integers separated by commas, got {text!r}") from None
    return tuple(int(b) for b in lb.check_batch_sizes(values))


def study_figures(study: LrBatchStudy, optimizer: str | None = None) -> dict[str, go.Figure]:
    """The three sweep figures of a study: ``heatmap`` (of ``optimizer``, default the first), ``lr_vs_batch``, ``tradeoff``."""
    return plot_study_figures(study, lr_curves(study), optimizer)


def quadratic_figure(q: QuadraticStudy) -> go.Figure:
    """The noisy-quadratic control: measured one-step optimal and long-run largest stable lr vs exact theory."""
    b = q.one_step.batch_sizes
    # the one-step optimum is the argmin of the seed-mean loss; the spread of single-seed argmins is not its
    # uncertainty (the grid step is), so no error bars there
    opt = q.measured_optimal._replace(lo=q.measured_optimal.value, hi=q.measured_optimal.value)
    return lr_vs_batch({f"sgd optimal (1 step, mean of {q.one_step.seeds.size} seeds)": (b, opt),
                        f"{q.long_run.optimizer} max-stable": (b, q.measured_max_stable)},
                       {"McCandlish eps_opt(B)": (b, q.eps_opt), "mean-square stability limit": (b, q.stability_limit)},
                       markers={"B_noise": q.stats.b_noise},
                       title=f"Noisy quadratic (exact theory), grid ratio {q.grid_ratio:.3f}")


def calculators_text(loss: float, b_star: float, inv_alpha_b: float, num_params: float, num_tokens: float) -> str:
    """HTML lines with Kaplan's B_crit(L) and the Step Law's lr and batch size."""
    b_crit = lb.kaplan_critical_batch(loss, b_star, inv_alpha_b)
    lr, batch = lb.step_law(num_params, num_tokens)
    return (f"<b>Kaplan et al. 2020</b>: B_crit(L = {loss:.3g}) = B*/L^(1/alpha_B) = {b_crit:.4g} tokens "
            f"(B* = {b_star:.3g}, 1/alpha_B = {inv_alpha_b:.3g})<br>"
            f"<b>Step Law</b> (Predictable Scale Part I, 2025; AdamW): N = {num_params:.3g}, D = {num_tokens:.3g} "
            f"tokens: lr_opt = 1.79 N^-0.713 D^0.307 = {lr:.4g}; B_opt = 0.58 D^0.571 = {batch:.4g} tokens")


class LrBatchPanel(Panel):
    """Set the model, data and sweep, press Run: the sweep runs (finished points are kept on disk when a
    results folder is given, so a rerun resumes), then every figure is redrawn. The calculators update live."""

    #: while the sweep runs, its figures are redrawn at most this often (a point of a small batch size takes well
    #: under a second, and each redraw sends three figures to the browser, which renders them on the same cores)
    PARTIAL_EVERY_S = 2.0

    def __init__(self, cfg: LrBatchConfig | None = None, *, run: bool = True,
                 quadratic_kwargs: dict | None = None) -> None:
        super().__init__()
        cfg = default_config() if cfg is None else cfg
        if not isinstance(cfg, LrBatchConfig):
            raise TypeError(f"cfg must be an LrBatchConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self._num_records = max(1, cfg.num_steps // cfg.record_every)  # kept when the steps widget changes
        #: arguments of :func:`workbench.studies.lr_batch.quadratic_study` for the control figure
        self.quadratic_kwargs = quadratic_kwargs if quadratic_kwargs is not None else dict(
            batch_sizes=config.pick((1, 8, 64, 512), (1, 4, 16, 64, 256, 1024)),
            seeds_one_step=config.pick(500, 2000), num_lrs=config.pick(17, 33), num_steps=config.pick(100, 200))
        style = {"description_width": "110px"}
        self.depth = W.IntSlider(value=cfg.depth, min=1, max=4, description="depth", style=style)
        self.width = W.IntSlider(value=cfg.width, min=4, max=512, step=4, description="width", style=style)
        self.activation = W.Dropdown(options=sorted(ACTIVATIONS), value=cfg.activation, description="activation",
                                     style=style)
        self.parametrization = W.Dropdown(options=PARAMETRIZATIONS, value=cfg.parametrization,
                                          description="parametrization", style=style)
        self.dataset = W.Dropdown(options=DATASETS, value=cfg.dataset, description="data", style=style)
        self.num_data = W.IntText(value=cfg.num_data, description="examples n", style=style)
        self.noise_std = W.FloatText(value=cfg.noise_std, description="label noise", style=style)
        self.optimizers = W.SelectMultiple(options=SWEEP_OPTIMIZERS, value=cfg.optimizers, description="optimizers",
                                           rows=3, style=style)
        self.batch_sizes = W.Text(value=", ".join(str(b) for b in cfg.batch_sizes), description="batch sizes",
                                  style=style)
        self.lr_range = W.FloatRangeSlider(value=(float(np.log10(cfg.lr_min)), float(np.log10(cfg.lr_max))),
                                           min=-5, max=3, step=0.25, description="log10 lr range", style=style)
        self.num_lrs = W.IntSlider(value=cfg.num_lrs, min=3, max=41, description="lr grid points", style=style)
        self.seeds = W.IntSlider(value=cfg.seeds, min=1, max=8, description="seeds", style=style)
        self.num_steps = W.IntText(value=cfg.num_steps, description="steps", style=style)
        self.target = W.FloatText(value=cfg.target_loss or 0.0, description="target loss (0=auto)", style=style)
        self.results_dir = W.Text(value=cfg.results_dir or "", description="results folder",
                                  placeholder="(empty: no resume files)", style=style)
        self.run_button = W.Button(description="Run sweep", icon="play", button_style="primary")
        self.run_button.on_click(lambda _b: self.refresh())
        self.heatmap_opt = W.Dropdown(options=cfg.optimizers, value=cfg.optimizers[0], description="heatmap of")
        self.heatmap_opt.observe(lambda _c: self._redraw_heatmap(), names="value")
        self.summary = W.HTML()
        # calculators
        self.calc_loss = W.FloatSlider(value=3.0, min=1.5, max=6.0, step=0.05, description="loss L", style=style)
        self.calc_bstar = W.FloatLogSlider(value=2e8, base=10, min=6, max=10, description="B* (tokens)", style=style)
        self.calc_alpha = W.FloatText(value=4.76, description="1/alpha_B", style=style)
        self.calc_n = W.FloatLogSlider(value=1e9, base=10, min=6, max=12, description="N params", style=style)
        self.calc_d = W.FloatLogSlider(value=1e11, base=10, min=8, max=14, description="D tokens", style=style)
        self.calc_out = W.HTML()

        self._study: LrBatchStudy | None = None
        self._quadratic: QuadraticStudy | None = None
        for name in ("heatmap", "lr_vs_batch", "tradeoff", "quadratic", "kaplan"):
            self.figures[name] = LiveFigure()
        controls = [
            W.HBox([W.VBox([self.depth, self.width, self.activation, self.parametrization]),
                    W.VBox([self.dataset, self.num_data, self.noise_std, self.optimizers]),
                    W.VBox([self.batch_sizes, self.lr_range, self.num_lrs, self.seeds, self.num_steps, self.target,
                            self.results_dir])]),
            W.HBox([self.run_button, self.heatmap_opt]),
        ]
        calculators = W.VBox([W.HTML("<h4>Scaling-law calculators</h4>"),
                              W.HBox([W.VBox([self.calc_loss, self.calc_bstar, self.calc_alpha]),
                                      W.VBox([self.calc_n, self.calc_d])]), self.calc_out, self.figures["kaplan"]])
        body = [self.figures["heatmap"], self.figures["lr_vs_batch"], self.summary, self.figures["tradeoff"],
                W.HTML("<h4>Control: noisy quadratic, where the theory is exact</h4>"), self.figures["quadratic"],
                calculators]
        self.layout(controls, body)
        self.defer([self.depth, self.width, self.activation, self.parametrization, self.dataset, self.num_data,
                    self.noise_std, self.optimizers, self.batch_sizes, self.lr_range, self.num_lrs, self.seeds,
                    self.num_steps, self.target, self.results_dir], self.run_button)
        self.watch([self.calc_loss, self.calc_bstar, self.calc_alpha, self.calc_n, self.calc_d], self.update_calculators)
        self.update_calculators()
        self.status.value = f"<small>{html.escape(config.device_report())}</small>"
        if run:
            self.refresh()

    @property
    def study(self) -> LrBatchStudy | None:
        """The last finished sweep (waits for a sweep running in the background)."""
        self.wait()
        return self._study

    @property
    def quadratic(self) -> QuadraticStudy | None:
        """The noisy-quadratic control (waits for a computation running in the background)."""
        self.wait()
        return self._quadratic

    # ---------------------------------------------------------------- reading widgets
    def current_config(self) -> LrBatchConfig:
        """The :class:`LrBatchConfig` the widgets describe (raises a clear error on bad values)."""
        lo, hi = self.lr_range.value
        return LrBatchConfig(
            depth=self.depth.value, width=self.width.value, activation=self.activation.value,
            parametrization=self.parametrization.value, dataset=self.dataset.value, num_data=self.num_data.value,
            noise_std=self.noise_std.value, optimizers=tuple(self.optimizers.value),
            batch_sizes=parse_batch_sizes(self.batch_sizes.value), lr_min=10.0 ** lo, lr_max=10.0 ** hi,
            num_lrs=self.num_lrs.value, seeds=self.seeds.value, num_steps=self.num_steps.value,
            record_every=max(1, self.num_steps.value // self._num_records), momentum=self.cfg.momentum,
            target_loss=self.target.value if self.target.value > 0 else None, dim=self.cfg.dim, seed=self.cfg.seed,
            fit_max_batch=self.cfg.fit_max_batch,
            results_dir=self.results_dir.value.strip() or None)

    # ---------------------------------------------------------------- recomputation
    def update(self) -> None:
        """Run the sweep of the widgets' config in the background (the kernel stays responsive; a newer Run
        supersedes it between its parts; a config run before is drawn from the cache)."""
        cfg = self.current_config()
        self.cfg = cfg
        known_quad = self._quadratic

        def chunks():
            quad = known_quad if known_quad is not None else quadratic_study(**self.quadratic_kwargs)
            yield (None, quad), 0.1, "noisy-quadratic control"
            last_draw = time.perf_counter()
            for study, fraction, note in iter_study(cfg, progress=False):  # a partial per (optimizer, B) point
                done = 0.1 + 0.9 * fraction
                if fraction < 1.0 and time.perf_counter() - last_draw < self.PARTIAL_EVERY_S:
                    checkpoint(f"sweep point {note}", done)  # the status line; stops here once superseded
                    continue
                yield (study, quad), done, f"sweep point {note}"
                last_draw = time.perf_counter()

        def draw(result, _done: bool) -> None:
            study, quad = result
            if study is None:
                self._quadratic = quad
                self.figures["quadratic"].update(quadratic_figure(quad))
            else:  # the quadratic control is drawn once (a cached result brings its own)
                self.show(study, quad if quad is not self._quadratic else None)

        self.experiment(repr(cfg), "lr x batch sweep", chunks, draw)

    def show(self, study: LrBatchStudy, quadratic: QuadraticStudy | None = None) -> None:
        """Draw a finished study (and the noisy-quadratic control) into the panel's figures."""
        if not isinstance(study, LrBatchStudy):
            raise TypeError(f"study must be an LrBatchStudy, got {type(study).__name__}")
        self._study = study
        if quadratic is not None:
            self._quadratic = quadratic
            self.figures["quadratic"].update(quadratic_figure(quadratic))
        opts = list(self._study.sweeps)
        if tuple(self.heatmap_opt.options) != tuple(opts):  # a new options list redraws the heatmap on its own
            self.heatmap_opt.options = opts
        if self.heatmap_opt.value not in opts:
            self.heatmap_opt.value = opts[0]
        figs = study_figures(self._study, self.heatmap_opt.value)
        figs["heatmap"] = self._heatmap_of(self.heatmap_opt.value)
        for name, fig in figs.items():
            self.figures[name].update(fig)
        self.summary.value = self.summary_html()

    def _heatmap_of(self, optimizer: str) -> go.Figure:
        """The loss heatmap of ``optimizer``; while the sweep streams, every configured batch size has its column
        (empty until its point is done) and the title says how many are done."""
        res = self._study.sweeps[optimizer]
        fig = loss_heatmap(res)
        every = sorted(int(b) for b in self._study.config.batch_sizes)
        fig.update_xaxes(categoryorder="array", categoryarray=[str(b) for b in every], range=[-0.5, len(every) - 0.5])
        if len(res.batch_sizes) < len(every):
            fig.update_layout(title_text=f"{fig.layout.title.text} (computing: {len(res.batch_sizes)} of "
                                         f"{len(every)} batch sizes)")
        return fig

    def summary_html(self) -> str:
        s = self._study
        if s is None:
            return ""
        st, est = s.stats, s.estimate
        rows = [
            f"<b>Noise scale at init</b> (exact): |G|^2 = {st.g2:.4g}, tr(Sigma) = {st.tr_sigma:.4g}, "
            f"B_simple = {st.b_simple:.4g}, B_noise = {st.b_noise:.4g}, eps_max = {st.eps_max:.4g}",
            f"<b>Two-batch estimate</b> ({est.num_draws} draws): |G|^2 = {est.g2:.4g} +- {est.g2_se:.2g}, "
            f"tr(Sigma) = {est.tr_sigma:.4g} +- {est.tr_sigma_se:.2g}, B_simple = {est.b_simple:.4g} +- {est.b_simple_se:.2g}",
            f"<b>Curvature at init</b>: lambda1 = {s.curvature.lambda1:.4g}, per-example curvature along its "
            f"eigenvector a = {s.curvature.curv_mean:.4g}, s = {s.curvature.curv_std:.4g}; sigma^2 = "
            f"{s.curvature.sigma2:.3g} +- {s.curvature.sigma2_se:.2g}, RMT B* = {s.theory.b_star_rmt:.3g}",
            "<b>Fitted exponents</b> lr ~ B^alpha (B <= n/8; expect about 1 for SGD, 1/2 for Adam at small B):"
            f"<pre>{html.escape(fit_table(s))}</pre>",
            f"<small>{html.escape(s.info)}; {s.seconds:.1f} s in all</small>",
        ]
        return "<br>".join(rows)

    def _redraw_heatmap(self) -> None:
        if self._study is not None and self.heatmap_opt.value in self._study.sweeps:
            self.figures["heatmap"].update(self._heatmap_of(self.heatmap_opt.value))

    def update_calculators(self) -> None:
        loss, bstar, alpha = self.calc_loss.value, self.calc_bstar.value, self.calc_alpha.value
        self.calc_out.value = calculators_text(loss, bstar, alpha, self.calc_n.value, self.calc_d.value)
        grid = np.linspace(1.5, 6.0, 100)
        fig = kaplan_figure(grid, np.asarray(lb.kaplan_critical_batch(grid, bstar, alpha)),
                            marker=(loss, float(lb.kaplan_critical_batch(loss, bstar, alpha))))
        self.figures["kaplan"].update(fig)

