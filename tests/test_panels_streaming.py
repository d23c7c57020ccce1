"""Streaming studies and panels: partial results per chunk, the last equal to the one-shot result, and a newer
setting superseding a long experiment (the last value wins)."""

from __future__ import annotations

import threading

import jax
import numpy as np
import pytest

from workbench.nets import MLP
from workbench.studies import hessian as S


def same(a, b, skip=("seconds", "elapsed_s", "info", "device")) -> None:
    """Equal field by field (NamedTuples, dicts, arrays); timings and device lines skipped."""
    if hasattr(a, "_fields"):
        assert type(a) is type(b)
        for name in a._fields:
            if name not in skip:
                same(getattr(a, name), getattr(b, name), skip)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k], skip)
    elif isinstance(a, (np.ndarray, jax.Array)) or isinstance(b, (np.ndarray, jax.Array)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


#: the study settings of both tests here, small: the cost is compiling the net's curvature products
TINY_HESSIAN = dict(num_batches=2, top_k=1, slq_steps=6, slq_probes=2, noise_probes=2, grid_size=40)


@pytest.fixture(scope="module")
def hessian_problem():
    """The batch-Hessian panel's default net on 64 of its data points (compiled once for both tests)."""
    from workbench.studies.hessian import make_data

    net = MLP(depth=1, width=16, activation="tanh", w_std=1.0, b_std=0.1, out_dim=1)
    x, y, _ = make_data("synthetic", "mse", 64)
    return net, x, y


def test_iter_batch_hessian_study_yields_a_study_per_draw(hessian_problem):
    net, x, y = hessian_problem
    kw = dict(TINY_HESSIAN, key=jax.random.PRNGKey(0), progress=False)
    partials = list(S.iter_batch_hessian_study(net, x, y, [4, 16], **kw))
    assert [list(p.result.batch_sizes) for p in partials] == [[4], [4], [4, 16], [4, 16]]
    assert [p.fraction for p in partials] == [0.25, 0.5, 0.75, 1.0]
    assert [p.note for p in partials[:3]] == ["batch size 4, draw 1/2", "batch size 4", "batch size 16, draw 1/2"]
    assert [p.result.batch_density.shape[0] for p in partials] == [1, 1, 2, 2]  # a density per B begun
    # a partial after the last draw of a B is the one-shot study of the batch sizes done (the draws of a B do not
    # depend on the later ones); the one-shot function returns the last partial, with no NaN
    same(partials[1].result, S.batch_hessian_study(net, x, y, [4], **kw))
    assert partials[-1].result.fit.batch_size.tolist() == [4, 16]
    for name in ("batch_top", "frob_sq", "frob_sq_stderr", "noise_top"):
        assert np.all(np.isfinite(getattr(partials[-1].result, name)))
    # mid-B: the draws done are the final ones, the draw to come NaN; the fit uses the mean over draws done
    mid, full = partials[2].result, partials[-1].result
    np.testing.assert_array_equal(mid.batch_top[:, 0], full.batch_top[:, 0])
    np.testing.assert_array_equal(mid.batch_top[0], full.batch_top[0])
    assert np.all(np.isnan(mid.batch_top[1, 1])) and np.isnan(mid.frob_sq[1, 1])
    np.testing.assert_allclose(mid.noise_var, [full.frob_sq[0].mean() / full.num_params ** 2,
                                               full.frob_sq[1, 0] / full.num_params ** 2], rtol=1e-12)
    # the figures take a partial study: the measured mean and error bar over the draws done
    from workbench.plots.hessian import _mean_std, top_eigenvalue_figure

    fig = top_eigenvalue_figure(mid)
    (measured,) = [t for t in fig.data if t.name == "measured lambda_max(H_B)"]
    np.testing.assert_allclose(np.asarray(measured.y, float), np.nanmean(mid.batch_top[:, :, 0], axis=1), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(measured.error_y.array, float),
                               [np.nanstd(mid.batch_top[0, :, 0], ddof=1), 0.0], rtol=1e-12)
    a = np.array([[1.0, 2.0, 4.0], [3.0, np.nan, np.nan], [np.nan] * 3])
    m, sd = _mean_std(a)
    np.testing.assert_allclose(m[:2], [7 / 3, 3.0])
    assert np.isnan(m[2])
    np.testing.assert_allclose(sd, [np.std([1.0, 2.0, 4.0], ddof=1), 0.0, 0.0])


def test_hessian_panel_two_quick_moves_during_a_long_experiment_end_in_the_last_value(monkeypatch):
    """A control moved twice quickly while a study computes: only the last value is computed to its end (the
    running one is stopped at its next batch size, the middle one never runs), and the figures end in its state."""
    from workbench.panels import base
    from workbench.panels.hessian import BatchHessianPanel

    monkeypatch.setattr(base, "_in_kernel", lambda: True)  # background experiments, as in a kernel
    import workbench.panels.hessian as panel_module

    make_data, study = panel_module._make_data, panel_module.iter_batch_hessian_study
    # 64 of the panel's points and fewer probes and draws: the same steps, less arithmetic
    monkeypatch.setattr(panel_module, "_make_data", lambda dataset, loss, n: make_data(dataset, loss, 64))
    monkeypatch.setattr(panel_module, "iter_batch_hessian_study", lambda *a, **k: study(*a, **{**k, **TINY_HESSIAN}))
    started: list[tuple] = []
    real = BatchHessianPanel.partials

    def slow_partials(self, s):  # a long experiment: every batch size takes a while
        started.append(s)
        for p in real(self, s):
            threading.Event().wait(0.3)
            yield p

    monkeypatch.setattr(BatchHessianPanel, "partials", slow_partials)
    panel = BatchHessianPanel()
    panel.runner.debounce_s = 0.0
    for _ in range(500):  # wait until the default setting's study really runs
        if started:
            break
        threading.Event().wait(0.01)
    first = panel.settings()
    panel.batch_sizes.value = (2, 32)
    middle = panel.settings()
    panel.batch_sizes.value = (8,)  # the net is the same: its compiled products are reused (a cheap last value)
    final = panel.settings()
    assert panel.wait(timeout=120)
    runs = [(key[2], how) for kind, key, how in panel.runner.history]
    assert runs[-1] == (final, "done")
    assert (first, "done") not in runs and (middle, "done") not in runs
    assert (first, "superseded") in runs  # stopped between batch sizes
    assert middle not in started  # superseded before it started: no queue of obsolete work
    assert list(panel.study.batch_sizes) == [8] and panel.study is panel._cache[final]
    # the figures show the last value's study
    (measured,) = [t for t in panel.figures["top"].figure.data if t.name == "measured lambda_max(H_B)"]
    np.testing.assert_allclose(np.asarray(measured.y, float), panel.study.batch_top[:, :, 0].mean(axis=1), rtol=1e-12)


def test_a_checkpoint_inside_a_long_chunk_stops_a_stale_experiment_there():
    """An experiment whose one chunk is long work (a training run) calls ``checkpoint`` as it goes: a newer
    request stops it at the next checkpoint (not at the end of the chunk), nothing of it is cached or drawn, and
    the newer one runs to its end; the checkpoint's note reaches the status line."""
    import time

    from workbench.panels.background import Experiment, Runner, checkpoint

    statuses, drawn, steps_done = [], [], []
    started = threading.Event()
    runner = Runner(lambda text, frac, state: statuses.append((text, state)), threaded=True, debounce_s=0.0)

    def long_chunk(name):
        def chunks():
            for step in range(200):  # 200 x 20 ms: 4 s if never stopped
                started.set()
                checkpoint(f"step {step}", step / 200)
                steps_done.append((name, step))
                time.sleep(0.02)
            yield name, 1.0, "done"
        return chunks

    def exp(name):
        return Experiment(key=name, label=name, chunks=long_chunk(name), draw=lambda r, done: drawn.append((r, done)))

    runner.submit(exp("old"))
    assert started.wait(10)
    time.sleep(0.1)
    runner.submit(exp("new"))
    assert runner.wait(30)
    old_steps = [s for n, s in steps_done if n == "old"]
    assert 0 < len(old_steps) < 100, len(old_steps)  # stopped within a checkpoint or two, far from its end
    assert ("experiment", "old", "superseded") in runner.history and ("experiment", "new", "done") in runner.history
    assert {r for r, _ in drawn} == {"new"} and drawn[-1] == ("new", True)  # nothing of the stale one drawn
    assert ("experiment", "old") not in runner.cache
    assert any("computing old: step 1 (" in text for text, state in statuses if state == "running")
    checkpoint("outside any experiment")  # a no-op there


def test_a_checkpoint_with_a_partial_draws_it_and_a_stale_one_is_not_drawn():
    """``checkpoint(partial=...)`` inside a chunk draws the partial as a yielded chunk would (``done=False``);
    once a newer request arrived the stale partial is not drawn and the experiment stops there."""
    from workbench.panels.background import Experiment, Runner, checkpoint

    drawn = []
    runner = Runner(lambda *a: None, threaded=False)

    def chunks():
        for step in range(3):
            checkpoint(f"step {step}", step / 3, partial=("part", step))
        yield "final", 1.0, "done"

    runner.submit(Experiment(key="a", label="a", chunks=chunks, draw=lambda r, done: drawn.append((r, done))))
    assert drawn == [(("part", 0), False), (("part", 1), False), (("part", 2), False), ("final", False),
                     ("final", True)]  # the last chunk is drawn as a partial, then as the result

    drawn.clear()
    runner = Runner(lambda *a: None, threaded=True, debounce_s=0.0)
    first_drawn, newer_sent = threading.Event(), threading.Event()

    def stale_chunks():
        checkpoint(partial="first")
        first_drawn.set()
        assert newer_sent.wait(10)
        checkpoint(partial="stale")  # a newer request exists: not drawn, the experiment ends here
        yield "never", 1.0, ""

    def draw(r, done):
        drawn.append((r, done))

    runner.submit(Experiment(key="b", label="b", chunks=stale_chunks, draw=draw))
    assert first_drawn.wait(10)
    runner.submit(Experiment(key="b2", label="b2", chunks=lambda: iter([("new", 1.0, "")]), draw=draw))
    newer_sent.set()
    assert runner.wait(30)
    assert drawn == [("first", False), ("new", False), ("new", True)]
    assert ("experiment", "b", "superseded") in runner.history


def test_kernel_vs_training_reports_training_progress_and_stops_on_a_raising_callback():
    from workbench.studies.dynamics import kernel_vs_training

    kw = dict(widths=(16, 32), num_steps=20, record_every=5, n_train=4, n_test=4, num_seeds=1, progress=False)
    calls = []
    kernel_vs_training(**kw, callback=lambda width, done: calls.append((width, done)))
    assert calls and calls[-1] == (32, 20) and [w for w, _ in calls] == sorted(w for w, _ in calls)
    assert all(b > a for (wa, a), (wb, b) in zip(calls, calls[1:]) if wa == wb)

    class Stop(Exception):
        pass

    def stop(width, done):
        raise Stop(width)

    with pytest.raises(Stop):
        kernel_vs_training(**kw, callback=stop)


def test_the_worker_starts_once_the_panel_is_shown_or_after_its_timeout():
    """A runner given a ``shown`` event starts its first experiment only once it is set (the panel's view was sent),
    or after ``shown_timeout_s`` for a panel never displayed."""
    import time

    from workbench.panels.background import Experiment, Runner

    started = []

    def exp(name):
        def chunks():
            started.append((name, time.monotonic()))
            yield name, 1.0, ""
        return Experiment(key=name, label=name, chunks=chunks, draw=lambda r, done: None)

    shown = threading.Event()
    runner = Runner(lambda *a: None, threaded=True, debounce_s=0.0, shown=shown, shown_timeout_s=30.0)
    runner.submit(exp("a"))
    time.sleep(0.5)
    assert started == []  # not shown yet: waiting
    t_set = time.monotonic()
    shown.set()
    assert runner.wait(10) and started[0][0] == "a" and started[0][1] >= t_set
    never = Runner(lambda *a: None, threaded=True, debounce_s=0.0, shown=threading.Event(), shown_timeout_s=0.2)
    t0 = time.monotonic()
    never.submit(exp("b"))
    assert never.wait(10) and started[-1][0] == "b" and started[-1][1] - t0 >= 0.2
