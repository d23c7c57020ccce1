"""Tests of the lr-vs-batch study, its plot builders and its panel (small sizes: one tiny study is shared)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from workbench import experiments as ex
from workbench import lr_batch as lb
from workbench.panels.lr_batch import LrBatchPanel, calculators_text, parse_batch_sizes, quadratic_figure, study_figures
from workbench.plots.lr_batch import kaplan_figure, loss_heatmap, lr_vs_batch, tradeoff_plot
from workbench.studies.lr_batch import (LrBatchConfig, build_problem, default_config, fit_table, quadratic_study,
                                        theory_curves)

TINY = dict(width=8, num_data=48, dim=3, optimizers=("sgd", "adam"), batch_sizes=(4, 48), lr_min=1e-3,
            lr_max=100.0, num_lrs=6, seeds=2, num_steps=40, record_every=10, fit_max_batch=48)
QUAD = dict(dim=6, batch_sizes=(1, 16, 256), num_lrs=17, seeds_one_step=600, seeds_long=2, num_steps=100)


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """One panel that ran one tiny study through its widgets (with a results folder)."""
    results = tmp_path_factory.mktemp("lr_batch_results")
    p = LrBatchPanel(LrBatchConfig(**TINY, results_dir=str(results)), run=False, quadratic_kwargs=QUAD)
    p.PARTIAL_EVERY_S = 0.0  # every streamed point drawn (the panel's default draws at most every 2 s)
    p.heatmap_titles = []  # every heatmap drawn while the sweep streams
    draw = p.figures["heatmap"].update
    p.figures["heatmap"].update = lambda fig: (p.heatmap_titles.append(fig.layout.title.text), draw(fig))
    p.refresh()
    return p


def test_study_structure_and_theory(panel):
    s = panel.study
    assert s is not None and "error" not in panel.status.value
    assert set(s.sweeps) == {"sgd", "adam"}
    for opt, res in s.sweeps.items():
        assert res.train_loss.shape == (2, 6, 2, 5) and res.completed
        assert s.max_stable[opt].value.shape == (2,)
        assert np.all(res.diverged[:, -1])  # lr = 100 diverges for every B: recorded, not raised
    # theory curves are the package formulas evaluated at the measured statistics
    th, c = s.theory, s.curvature
    np.testing.assert_allclose(th.curves["GD: 2/lambda1"], 2 / c.lambda1, rtol=1e-12)
    np.testing.assert_allclose(th.curves["RMT: 2/lambda'(B)"],
                               lb.rmt_max_lr(th.batch_sizes, c.lambda1, c.num_params, c.sigma2, num_data=48), rtol=1e-12)
    eps = th.curves["McCandlish eps_opt(B)"]
    assert eps[-1] < s.stats.eps_max and np.all(np.diff(eps) > 0)
    # the 1-d mean-square limit reaches GD's 2/a at full batch (c_B = 0 at B = n)
    assert th.curves["SGD 1-d mean-square: 2a/(a^2 + c_B s^2)"][-1] == pytest.approx(2 / c.curv_mean, rel=1e-9)
    assert c.curv_mean == pytest.approx(c.lambda1, rel=1e-4)  # v^T H v = lambda1 (float32 run)
    assert "sgd optimal" in fit_table(s) and np.isfinite(s.target_loss)
    # the statistics were measured at the sweep's seed-0 initialization (its recorded step-0 loss)
    assert s.sweeps["sgd"].train_loss[0, 0, 0, 0] == pytest.approx(s.initial_loss, rel=1e-6)


def test_sweep_streams_point_by_point_and_ends_with_the_one_call_sweep(panel):
    """The heatmap was drawn after each (optimizer, B) point, its columns filling in; the streamed sweep (one
    experiments.sweep call per point) wrote the very points one call over the whole grid resumes from, and equals
    what that call returns."""
    from tests.test_panels_streaming import same
    from workbench.studies.lr_batch import merge_sweeps

    assert [t for t in panel.heatmap_titles if "computing" in t] == [
        "final loss (sgd), median over 2 seeds (computing: 1 of 2 batch sizes)"]  # adam's first point: sgd shown
    assert "computing" not in panel.heatmap_titles[-1]
    cfg = panel.study.config
    prob = build_problem(cfg)
    import workbench.training as training

    def no_training(*a, **k):
        raise AssertionError("a point the streamed sweep finished was not found by the one-call sweep")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "train", no_training)
        whole = ex.sweep(prob.loss_fn, prob.init_fn, (prob.x, prob.y), batch_sizes=cfg.batch_sizes, lrs=cfg.lrs,
                         optimizers=cfg.optimizers, seeds=cfg.seeds, num_steps=cfg.num_steps,
                         record_every=cfg.record_every, momentum=cfg.momentum, results_dir=cfg.results_dir,
                         tag=prob.description, progress=False)
    same(panel.study.sweeps, whole)
    with pytest.raises(ValueError, match="one optimizer"):
        merge_sweeps([whole["sgd"], whole["adam"]])


def test_sweep_redraws_are_throttled_and_the_quadratic_drawn_once(panel):
    """With PARTIAL_EVERY_S longer than the sweep, no partial sweep is drawn (the points still pass the status
    line), the figures end in the full study, and the noisy-quadratic control is sent once, not per point (the
    runner draws the last partial and then the final result: the same figures, sent once)."""
    from tests.test_panels_streaming import same
    import workbench.training as training

    p = LrBatchPanel(panel.study.config, run=False, quadratic_kwargs=QUAD)
    p.PARTIAL_EVERY_S = 1e9
    sent = {"heatmap": [], "quadratic": []}  # the figures sent to the front end (an unchanged one is not sent)
    for name, log in sent.items():
        p.figures[name].observe(lambda c, log=log: log.append(c["new"][0]["data"]), names="outputs")
    statuses = []
    p.status.observe(lambda c: statuses.append(c["new"]), names="value")
    with pytest.MonkeyPatch.context() as mp:  # every point loads from the results folder of the fixture's run
        mp.setattr(training, "train", lambda *a, **k: pytest.fail("a finished point was trained again"))
        p.refresh()
        assert p.wait(timeout=120)
    assert len(sent["heatmap"]) == 1 and "computing" not in p.figures["heatmap"].figure.layout.title.text
    assert len(sent["quadratic"]) == 1
    assert any("sweep point sgd, B = 4" in v for v in statuses)  # a skipped draw still says where the sweep is
    same(p.study.sweeps, panel.study.sweeps)


def test_study_theory_curves_direct():
    """theory_curves on hand-made statistics: each entry equals its formula."""
    stats = lb.noise_scale(1.0, 50.0, 2.0, 80.0)
    curv = ex.CurvatureStats(4.0, np.zeros(3), 4.0, 2.0, 0.01, 0.001, 1000, 100)
    b = np.array([1.0, 10.0, 100.0])
    th = theory_curves(stats, curv, b, momentum=0.5)
    np.testing.assert_allclose(th.curves["heavy ball: (2+2beta)/lambda1, beta=0.5"], 3 / 4.0)
    np.testing.assert_allclose(th.curves["McCandlish eps_opt(B)"], 0.5 / (1 + 40 / b))
    c_b = (100 - b) / (b * 99)
    np.testing.assert_allclose(th.curves["SGD 1-d mean-square: 2a/(a^2 + c_B s^2)"], 8 / (16 + 4 * c_b))
    assert th.b_star_rmt == pytest.approx(1000 * 0.01 / 16)


def test_panel_figures_resume_and_widgets(panel, monkeypatch):
    for name in ("heatmap", "lr_vs_batch", "tradeoff", "quadratic", "kaplan"):
        assert len(panel.figures[name].figure.data) > 0, name
    assert "B_noise" in panel.summary.value and "two-batch" in panel.summary.value.lower()
    panel.heatmap_opt.value = "adam"
    assert "adam" in panel.figures["heatmap"].figure.layout.title.text
    # rerun with the same widgets: every point loads from the results folder, nothing trains
    import workbench.training as training

    def no_training(*a, **k):
        raise AssertionError("retrained a finished point")

    monkeypatch.setattr(training, "train", no_training)
    old = panel.study.sweeps["sgd"].train_loss
    panel.runner.cache.clear()  # not the panel's in-memory cache: the resume files on disk
    panel.refresh()
    assert "error" not in panel.status.value
    np.testing.assert_array_equal(panel.study.sweeps["sgd"].train_loss, old)
    # a bad widget value shows an error in the status line instead of crashing the notebook
    panel.batch_sizes.value = "4, 0"
    panel.refresh()
    assert "error" in panel.status.value and "batch_sizes" in panel.status.value
    panel.batch_sizes.value = "4, 48"
    # calculators update live
    panel.calc_loss.value = 3.0
    assert "1.071e+06" in panel.calc_out.value


def test_quadratic_control_matches_theory(panel):
    q = panel.quadratic
    tol = np.log(q.grid_ratio) + 1e-12  # one grid step
    assert np.all(np.abs(np.log(q.measured_optimal.value / q.eps_opt)) <= tol)
    assert np.all(np.abs(np.log(q.measured_max_stable.value / q.stability_limit)) <= tol)
    fig = quadratic_figure(q)
    assert len(fig.data) == 5  # 2 theory curves, 2 measured series, the B_noise marker


def test_plot_builders_on_handmade_data():
    lrs = np.array([0.1, 0.2, 0.4])
    loss = np.full((2, 3, 2, 3), 0.5)
    div = np.zeros((2, 3, 2), bool)
    div[:, 2, 0] = True
    res = lb.SweepResult("sgd", np.array([4, 8]), lrs, np.array([0, 1]), np.array([0, 5, 10]), loss, div,
                         np.where(div, 3, -1), np.zeros(2), "test")
    fig = loss_heatmap(res)
    assert isinstance(fig, go.Figure) and len(fig.data) == 2  # heatmap + diverged crosses
    assert len(fig.data[1].x) == 2  # one cross per (B, lr) cell with a diverged seed
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.all(np.isnan(z[2])) and np.allclose(z[:2], np.log10(0.5))
    est = lb.LrEstimate(np.array([0.2, 0.4]), np.array([0.1, 0.3]), np.array([0.3, 0.5]), np.zeros((2, 2)))
    fit = lb.PowerLawFit(1.0, 0.1, 0.05, 2)
    fig = lr_vs_batch({"sgd max-stable": (res.batch_sizes, est)}, {"theory": (np.array([1, 10]), np.array([1, 2]))},
                      fits={"sgd max-stable": fit}, markers={"B_noise": 5.0})
    assert len(fig.data) == 3 and "alpha = 1.00" in fig.data[1].name  # theory, measured, marker
    assert fig.data[2].x == (5.0, 5.0) and "B_noise" in fig.data[2].name
    tr = lb.TradeoffFit(100.0, 1000.0, 10.0, 1.0, 1.0)
    fig = tradeoff_plot(np.array([1, 10, 100]), {"sgd": np.array([1100.0, 200.0, 110.0])}, {"sgd": tr}, b_noise=12.0)
    assert len(fig.data) == 3
    assert len(kaplan_figure(np.array([2.0, 3.0]), np.array([1e7, 1e6]), marker=(3.0, 1e6)).data) == 2
    with pytest.raises(ValueError, match="which must be"):
        loss_heatmap(res, which="median")
    with pytest.raises(TypeError, match="result must be a SweepResult"):
        loss_heatmap({"a": 1})


def test_config_and_parsing_errors():
    assert parse_batch_sizes("16, 4;64") == (4, 16, 64)
    with pytest.raises(ValueError, match="must not be empty"):
        parse_batch_sizes(" , ")
    with pytest.raises(ValueError, match="integers separated by commas"):
        parse_batch_sizes("4, sixteen")
    with pytest.raises(ValueError, match="must not exceed the number of training examples"):
        LrBatchConfig(num_data=32, batch_sizes=(4, 64))
    with pytest.raises(ValueError, match="lr_max must be > lr_min"):
        LrBatchConfig(lr_min=1.0, lr_max=0.1)
    with pytest.raises(ValueError, match="optimizers must be one of"):
        LrBatchConfig(optimizers=("sgd", "lion"))
    with pytest.raises(ValueError, match="dataset must be one of"):
        LrBatchConfig(dataset="cifar")
    with pytest.raises(TypeError, match="cfg must be an LrBatchConfig"):
        build_problem({"width": 3})
    assert default_config(fast=True).num_steps < default_config(fast=False).num_steps
    text = calculators_text(3.0, 2e8, 4.76, 1e9, 1e11)
    assert "1.071e+06" in text and "0.001632" in text and "1.108e+06" in text


def test_study_figures_and_quadratic_bad_input(panel):
    figs = study_figures(panel.study, "adam")
    assert set(figs) == {"heatmap", "lr_vs_batch", "tradeoff"}
    names = [t.name for t in figs["lr_vs_batch"].data]
    assert any("square-root rule" in n for n in names) and any("linear rule" in n for n in names)
    with pytest.raises(ValueError, match="batch_sizes must not be empty"):
        quadratic_study(batch_sizes=())
