"""Streaming studies and panels: partial results per chunk, the last equal to the one-shot result, and a newer
setting superseding a long experiment (the last value wins)."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import experiments as ex
from workbench.nets import MLP
from workbench.studies import hessian as S
from workbench.studies.lr_batch import LrBatchConfig, build_problem, iter_study, merge_sweeps
from workbench.studies.partial import last

#: two batch sizes of one optimizer, a few steps: two compiled training programs (the cost of this file)
SWEEP = dict(width=8, num_data=32, dim=3, optimizers=("sgd",), batch_sizes=(32, 4), lr_min=1e-2, lr_max=10.0,
             num_lrs=4, seeds=2, num_steps=20, record_every=10, fit_max_batch=32)


def _same(a, b, skip=("seconds", "elapsed_s", "info", "device")) -> None:
    """Equal field by field (NamedTuples, dicts, arrays); timings and device lines skipped."""
    if hasattr(a, "_fields"):
        assert type(a) is type(b)
        for name in a._fields:
            if name not in skip:
                _same(getattr(a, name), getattr(b, name), skip)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k], skip)
    elif isinstance(a, (np.ndarray, jax.Array)) or isinstance(b, (np.ndarray, jax.Array)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_iter_study_streams_points_and_ends_with_the_one_call_sweep():
    cfg = LrBatchConfig(**SWEEP)
    partials = list(iter_study(cfg, progress=False))
    assert [note for _, _, note in partials] == ["sgd, B = 4", "sgd, B = 32"]  # ascending B
    assert [f for _, f, _ in partials] == [0.5, 1.0]
    first, final = partials[0].result, partials[-1].result
    assert list(first.sweeps["sgd"].batch_sizes) == [4] and not first.sweeps["sgd"].completed
    assert first.max_stable["sgd"].value.shape == (1,)  # analyzed on what is done
    # the streamed sweep is the sweep of one call over the whole grid (same training, seeds, keys)
    prob = build_problem(cfg)
    whole = ex.sweep(prob.loss_fn, prob.init_fn, (prob.x, prob.y), batch_sizes=cfg.batch_sizes, lrs=cfg.lrs,
                     optimizers=cfg.optimizers, seeds=cfg.seeds, num_steps=cfg.num_steps,
                     record_every=cfg.record_every, momentum=cfg.momentum, tag=prob.description, progress=False)
    _same(final.sweeps, whole)
    assert final.sweeps["sgd"].completed
    _same(first.sweeps["sgd"], merge_sweeps([whole["sgd"]._replace(
        batch_sizes=whole["sgd"].batch_sizes[:1], train_loss=whole["sgd"].train_loss[:1],
        diverged=whole["sgd"].diverged[:1], diverged_step=whole["sgd"].diverged_step[:1],
        seconds=whole["sgd"].seconds[:1])], completed=False))
    with pytest.raises(ValueError, match="one optimizer"):
        merge_sweeps([whole["sgd"], whole["sgd"]._replace(optimizer="adam")])


@pytest.fixture(scope="module")
def hessian_problem():
    net = MLP(depth=1, width=6, activation="tanh", b_std=0.1, out_dim=1)
    kx, kp = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(kx, (64, 3))
    return net, x, jnp.sin(x[:, :1]), net.init(kp, 3)


def test_iter_batch_hessian_study_yields_per_batch_size_and_ends_with_the_full_study(hessian_problem):
    net, x, y, params = hessian_problem
    kw = dict(num_batches=2, top_k=1, params=params, slq_steps=8, slq_probes=2, noise_probes=4, grid_size=50,
              progress=False)
    partials = list(S.iter_batch_hessian_study(net, x, y, [4, 16, 64], **kw))
    assert [list(p.result.batch_sizes) for p in partials] == [[4], [4, 16], [4, 16, 64]]
    assert [p.fraction for p in partials] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert [p.result.batch_density.shape[0] for p in partials] == [1, 2, 3]  # a density per finished B
    _same(partials[-1].result, S.batch_hessian_study(net, x, y, [4, 16, 64], **kw))
    # a partial is the study of the batch sizes done (the draws of a B do not depend on the later ones)
    _same(partials[1].result, last(S.iter_batch_hessian_study(net, x, y, [4, 16], **kw)))


def test_hessian_panel_two_quick_moves_during_a_long_experiment_end_in_the_last_value(monkeypatch):
    """A control moved twice quickly while a study computes: only the last value is computed to its end (the
    running one is stopped at its next batch size, the middle one never runs), and the figures end in its state."""
    from workbench.panels import base
    from workbench.panels.hessian import BatchHessianPanel

    monkeypatch.setattr(base, "_in_kernel", lambda: True)  # background experiments, as in a kernel
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
    panel.train_steps.value = 10
    middle = panel.settings()
    panel.train_steps.value = 100
    final = panel.settings()
    assert panel.wait(timeout=120)
    runs = [(key[2], how) for kind, key, how in panel.runner.history]
    assert runs[-1] == (final, "done")
    assert (first, "done") not in runs and (middle, "done") not in runs
    assert (first, "superseded") in runs  # stopped between batch sizes
    assert middle not in started  # superseded before it started: no queue of obsolete work
    assert panel.study.train_steps == 100 and panel.study is panel._cache[final]
    # the figures show the last value's study
    (measured,) = [t for t in panel.figures["top"].figure.data if t.name == "measured lambda_max(H_B)"]
    np.testing.assert_allclose(np.asarray(measured.y, float), panel.study.batch_top[:, :, 0].mean(axis=1), rtol=1e-12)
