"""Tests of workbench.studies.dynamics, its plot builders and the cheap panels (small sizes)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from workbench.plots import dynamics as P
from workbench.studies.dynamics import (
    advani_saxe_study,
    circle_data,
    kernel_vs_training,
    sphere_learning_curve_study,
)


@pytest.fixture(scope="module")
def kd():
    return kernel_vs_training(widths=(32, 512), num_steps=40, record_every=10, n_train=8, n_test=24, num_seeds=2,
                              progress=False)


def test_kernel_vs_training_consistency(kd):
    assert list(kd.steps) == [0, 10, 20, 30, 40]
    np.testing.assert_allclose(kd.times, kd.lr * kd.steps)
    assert kd.lr == pytest.approx(0.5 * kd.lr_max)
    for w in kd.widths:
        assert kd.measured_test[w].shape == kd.predicted_test[w].shape == (2, 5, 24)
        # the closed form starts from the net's own f_0: identical at step 0 (float64)
        np.testing.assert_allclose(kd.predicted_test[w][:, 0], kd.measured_test[w][:, 0], atol=1e-12)
        np.testing.assert_allclose(kd.predicted_train_loss[w][:, 0], kd.measured_train_loss[w][:, 0], rtol=1e-10)
        assert not kd.diverged[w].any()
        # the training loss falls, in theory and in practice
        assert np.all(kd.measured_train_loss[w][:, -1] < 0.5 * kd.measured_train_loss[w][:, 0])
    # wider nets follow the closed form more closely (2 seeds only: the size of the gain is tested with 6 seeds
    # in test_dynamics.py::test_wide_network_follows_the_closed_form; measured here 0.109 -> 0.071)
    assert kd.rel_error[512].mean() < kd.rel_error[32].mean()
    # the ensemble mean starts at 0 with the NNGP standard deviation (unit-norm inputs: K(x, x) = 1 at w_std^2 = 2)
    np.testing.assert_allclose(kd.ensemble_mean[0], 0.0, atol=1e-14)
    np.testing.assert_allclose(kd.ensemble_std[0], 1.0, rtol=1e-10)
    # top eigenmode decays fastest in theory
    ratio = np.abs(kd.predicted_modes[512][0, -1] / kd.predicted_modes[512][0, 0])
    assert ratio[0] < ratio[-1]


def test_theory_only_study_and_its_expected_losses_against_monte_carlo(kd):
    """``widths=()`` gives the closed-form part of the study alone, equal to a trained study's; its expected losses
    over the infinite ensemble agree with a Monte Carlo of f_0 ~ GP(0, NNGP) pushed through the GD recursion
    f_{t+1}(X) = f_t(X) - lr Theta (f_t(X) - y), f_{t+1}(x*) = f_t(x*) - lr Theta(x*, X) (f_t(X) - y) step by step
    (independent of the spectral closed form)."""
    from workbench.kernels.analytic import infinite_kernels
    from workbench.nets import MLP

    th = kernel_vs_training(widths=(), num_steps=40, record_every=10, n_train=8, n_test=24, num_seeds=2,
                            progress=False)
    assert th.widths == () and th.measured_test == {} and th.finished_widths == ()
    for f in ("steps", "eigenvalues", "ensemble_mean", "ensemble_std", "ensemble_train_loss", "ensemble_test_mse"):
        np.testing.assert_array_equal(getattr(th, f), getattr(kd, f))
    assert th.lr == kd.lr
    for fig in (P.function_snapshot(th, 10), P.loss_curves(th)):  # theory alone draws
        assert len(fig.data) >= 2
    d = th.data
    x = np.concatenate([d.x_train, d.x_test])
    k = infinite_kernels(MLP(depth=1, width=1, activation="relu", w_std=2 ** 0.5), x)
    nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
    n, draws = 8, 20000
    rng = np.random.default_rng(0)
    f = np.linalg.cholesky(nngp + 1e-10 * np.eye(len(x))) @ rng.standard_normal((len(x), draws))  # (n + m, draws)
    y, ys = d.y_train[:, :1], d.y_test[:, :1]
    train_loss, test_mse = [], []
    for step in range(41):
        if step % 10 == 0:
            train_loss.append(0.5 * np.sum((f[:n] - y) ** 2, axis=0))
            test_mse.append(np.mean((f[n:] - ys) ** 2, axis=0))
        f = f - th.lr * ntk[:, :n] @ (f[:n] - y)
    for mc, theory in ((np.array(train_loss), th.ensemble_train_loss), (np.array(test_mse), th.ensemble_test_mse)):
        se = mc.std(axis=1) / np.sqrt(draws)
        # Monte Carlo: within 5 standard errors (a false alarm has probability ~6e-7 per point)
        assert np.all(np.abs(mc.mean(axis=1) - theory) < 5 * se + 1e-12), (mc.mean(axis=1), theory, se)
    assert th.ensemble_train_loss[-1] < 0.2 * th.ensemble_train_loss[0]  # it learns


def test_circle_data_and_bad_input():
    d = circle_data(5, 7, seed=1)
    assert d.x_train.shape == (5, 2) and d.y_test.shape == (7, 1)
    np.testing.assert_allclose(np.linalg.norm(d.x_test, axis=1), 1.0)
    with pytest.raises(ValueError, match="n_train must be an integer >= 1"):
        circle_data(0)
    with pytest.raises(ValueError, match="widths must be distinct"):
        kernel_vs_training(widths=(8, 8))
    with pytest.raises(ValueError, match="width must be"):
        kernel_vs_training(widths=(0,))


def test_advani_saxe_study_peak_and_early_stopping():
    st = advani_saxe_study(alphas=np.linspace(0.2, 2.0, 37), num_features=50, num_trials=3)
    inf_col = list(np.isinf(st.times)).index(True)
    assert st.alphas[np.argmax(st.E_g_alpha[:, inf_col])] == pytest.approx(1.0, abs=0.06)
    # the simulation points against the theory (finite entries; alpha = 1, t = inf is the divergent peak): with
    # N = 50 and 3 trials the deterministic limit sits within a few standard errors (measured: at most 2.2)
    from workbench.generalization import advani_saxe_errors

    theory = advani_saxe_errors(st.sim_alphas[:, None], st.sim_times[None, :], noise_var=0.25)[0]
    finite = np.isfinite(theory)
    assert finite.sum() == 8
    assert np.all(np.abs(st.sim.E_g - theory)[finite] < 4 * st.sim.E_g_sem[finite])
    # at alpha = 1 the best stopping time is finite and beats t = inf
    row = list(st.sim_alphas).index(1.0)
    assert np.min(st.E_g_time[row]) < st.E_g_time[row, -1]


def test_sphere_learning_curve_study_is_decreasing():
    st = sphere_learning_curve_study(sim_p=(10,), num_trials=3, num_test=100, max_degree=40,
                                     p_grid=np.array([5.0, 20.0, 80.0]))
    assert np.all(np.diff(st.E_g_theory) < 0)
    assert st.sim.E_g.shape == (1,)
    with pytest.raises(ValueError, match="target degree 3 has a zero kernel eigenvalue"):
        sphere_learning_curve_study(target_coeffs=(0.0, 0.0, 0.0, 1.0), simulate=False, max_degree=40)


def test_plot_builders(kd):
    st = advani_saxe_study(alphas=np.linspace(0.2, 2.0, 10), num_features=30, num_trials=2)
    figs = [P.function_snapshot(kd, 20), P.loss_curves(kd, step=20), P.mode_residuals(kd, num_modes=3),
            P.width_errors(kd), P.advani_saxe_alpha(st, alpha=1.2),
            P.advani_saxe_time(st.t_grid, st.E_g_time[0], st.E_t_time[0], alpha=0.5, sim_times=st.sim_times,
                               sim=st.sim, sim_row=0)]
    assert all(isinstance(f, go.Figure) for f in figs)
    # snapshot: band, mean, target, 2 traces per width, training points
    assert len(figs[0].data) == 3 + 2 * len(kd.widths) + 1
    assert len(figs[2].data) == 6
    np.testing.assert_allclose(figs[0].data[1].y, kd.ensemble_mean[2])
    with pytest.raises(ValueError, match="width must be one of"):
        P.mode_residuals(kd, width=7)
    with pytest.raises(ValueError, match="equal shapes"):
        P.advani_saxe_time(np.ones(3), np.ones(2), np.ones(3), alpha=1.0)


def test_cheap_panels_build_and_update(monkeypatch):
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    from workbench.panels.dynamics import AdvaniSaxePanel, LearningCurvePanel

    a = AdvaniSaxePanel()
    before = a.figures["time"].figure.data[0].y
    a.alpha.value = 0.6
    assert "error" not in a.status.value
    assert not np.allclose(a.figures["time"].figure.data[0].y, before)
    lc = LearningCurvePanel()
    old = lc.figures["learning_curve"].figure.data[0].y
    lc.noise.value = 0.5
    assert "error" not in lc.status.value
    assert np.all(np.asarray(lc.figures["learning_curve"].figure.data[0].y) > np.asarray(old))  # more noise, more error


def test_advani_saxe_time_is_theory_plus_simulation():
    from workbench.generalization import advani_saxe_errors
    from workbench.studies.dynamics import advani_saxe_time

    t = np.array([0.5, 5.0])
    r = advani_saxe_time(0.7, t, sim_times=(1.0,), num_features=20, num_trials=2, noise_var=0.25)
    e_g, e_t = advani_saxe_errors(0.7, t, noise_var=0.25)
    np.testing.assert_array_equal(r.E_g, e_g)  # the study passes the theory through unchanged
    np.testing.assert_array_equal(r.E_t, e_t)
    assert r.sim.E_g.shape == (1, 1) and np.isfinite(r.sim.E_g).all()


def test_kernel_dynamics_panel_draws_a_width_while_it_trains(monkeypatch):
    """The panel draws the curves of the width in training as they grow (partials of
    ``kernel_vs_training(partial_callback=)``, drawn here after every training chunk), and ends with the finished
    study. Each partial is on the full step grid: the width in training measured up to its step (NaN after, equal
    to the final result there), its closed form complete."""
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    import workbench.panels.dynamics as D
    from workbench.panels.figure import LiveFigure

    names, error_notes, parts = [], [], []
    update = LiveFigure.update

    def record(self, fig):
        title = fig.layout.title.text or ""
        if title.startswith("Train loss"):
            names.append(tuple(t.name for t in fig.data))
        if title.startswith("Finite-width error") and not fig.data:
            error_notes.append(fig.layout.annotations[0].text)
        return update(self, fig)

    study = D.kernel_vs_training

    def spy(**kw):
        cb = kw.get("partial_callback")
        if cb is not None:
            kw["partial_callback"] = lambda r: (parts.append(r), cb(r))
        return study(**kw)

    monkeypatch.setattr(LiveFigure, "update", record)
    monkeypatch.setattr(D, "kernel_vs_training", spy)
    monkeypatch.setattr(D.KernelDynamicsPanel, "PARTIAL_EVERY_S", 0.0)
    panel = D.KernelDynamicsPanel()
    final = panel.result
    assert "error" not in panel.status.value and final.finished_widths == final.widths == (32, 512)
    assert final.steps_done == {32: 60, 512: 60}
    assert {p.widths for p in parts} == {(32,), (512,)}
    for p in parts:
        (w,) = p.widths
        k = p.steps_done[w]
        assert 0 < k < 60 and p.finished_widths == () and p.steps.tolist() == final.steps.tolist()
        i = int(np.searchsorted(p.steps, k))  # the last step trained
        assert np.isnan(p.measured_test[w][:, i + 1:]).all() and np.isfinite(p.measured_test[w][:, : i + 1]).all()
        np.testing.assert_array_equal(p.measured_test[w][:, : i + 1], final.measured_test[w][:, : i + 1])
        np.testing.assert_array_equal(p.predicted_test[w], final.predicted_test[w])  # from f_0: complete at once
    in_training = [n for n in names if any("trained to step" in x for x in n)]
    # both widths were drawn while training (the second beside the finished first), then the final figure
    assert any("width 32 (measured, trained to step" in " ".join(n) for n in in_training)
    assert any("width 512 (measured, trained to step" in " ".join(n) and "train loss, width 32 (measured)" in n
               for n in in_training)
    assert not any("trained to step" in x for x in names[-1])
    # while the first width trained, the width-error figure said so (no error "so far" drawn)
    assert error_notes and all("training" in t for t in error_notes)
