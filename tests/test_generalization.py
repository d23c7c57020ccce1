"""Tests of workbench.generalization: worked values of the issue, independent quadrature and closed forms,
and simulations within a few standard errors (fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from workbench.generalization import (
    advani_saxe_errors,
    extend_sphere_spectrum,
    kernel_learning_curve,
    marchenko_pastur_xtx,
    simulate_advani_saxe,
    simulate_kernel_regression,
    simulate_sphere_kernel_regression,
)
from workbench.kernels.sphere import relu_ntk_two_layer, sphere_eigenvalues


# ----------------------------------------------------------------------------- Advani & Saxe
def test_advani_saxe_worked_values():
    # Issue values (independent); adaptive quadrature at epsrel 1e-11: compare to 1e-9 relative.
    e_g, e_t = advani_saxe_errors(2.0, 1.0, noise_var=0.25)
    assert e_g == pytest.approx(0.4607605375, rel=1e-9) and e_t == pytest.approx(0.1803894704, rel=1e-9)
    e_g, e_t = advani_saxe_errors(2.0, np.inf, noise_var=0.25)
    assert e_g == pytest.approx(0.5, rel=1e-10) and e_t == pytest.approx(0.125, rel=1e-10)
    e_g, _ = advani_saxe_errors(0.5, 10.0, noise_var=0.25)
    assert e_g == pytest.approx(0.9575487600, rel=1e-9)


def test_advani_saxe_against_direct_quadrature_and_closed_forms():
    # scipy.quad directly over l with the MP density (no substitution), a different integration route: 1e-8.
    s, noise, tau = 1.3, 0.4, 2.0
    for alpha, t in ((0.5, 0.7), (1.0, 3.0), (3.0, 0.2)):
        lo, hi, rho = marchenko_pastur_xtx(alpha)
        eg_int = quad(lambda l: rho(l) * (s * np.exp(-2 * l * t / tau) + noise / l * (1 - np.exp(-l * t / tau)) ** 2),
                      lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        et_int = quad(lambda l: rho(l) * np.exp(-2 * l * t / tau) * (l * s + noise), lo, hi,
                      epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        e_g, e_t = advani_saxe_errors(alpha, t, teacher_var=1.0, init_var=0.3, noise_var=noise, tau=tau)
        assert e_g == pytest.approx(eg_int + s * max(1 - alpha, 0) + noise, rel=1e-8)
        assert e_t == pytest.approx(et_int / alpha + noise * max(1 - 1 / alpha, 0), rel=1e-8)
    # t = 0: nothing learned, E_g = E_t = s + noise; t = inf: E[1/l] = 1/(alpha - 1) or alpha/(1 - alpha)
    e_g, e_t = advani_saxe_errors(np.array([0.3, 2.5]), 0.0, teacher_var=1.0, init_var=0.3, noise_var=noise)
    np.testing.assert_allclose(e_g, s + noise, rtol=1e-10)
    np.testing.assert_allclose(e_t, s + noise, rtol=1e-10)
    e_g, _ = advani_saxe_errors(np.array([0.3, 2.5]), np.inf, teacher_var=1.0, init_var=0.3, noise_var=noise)
    np.testing.assert_allclose(e_g, [s * 0.7 + noise * (1 + 0.3 / 0.7), noise * (1 + 1 / 1.5)], rtol=1e-9)
    assert np.isinf(advani_saxe_errors(1.0, np.inf, noise_var=0.1)[0])  # the peak at alpha = 1
    # the t = inf closed form (int rho / l) against scipy.quad of the MP density over l, near the peak too (1e-8)
    for alpha in (0.3, 0.9, 0.98, 1.02, 1.1, 2.5):
        lo, hi, rho = marchenko_pastur_xtx(alpha)
        inv_mean = quad(lambda l: rho(l) / l, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=400)[0]
        e_g, e_t = advani_saxe_errors(alpha, np.inf, teacher_var=1.0, init_var=0.3, noise_var=noise)
        assert e_g == pytest.approx(noise * inv_mean + s * max(1 - alpha, 0) + noise, rel=1e-8), alpha
        assert e_t == pytest.approx(noise * max(1 - 1 / alpha, 0), abs=1e-15)


def test_advani_saxe_broadcasting_and_early_stopping():
    alpha = np.linspace(0.6, 1.6, 6)[:, None]
    t = np.array([1.0, 5.0, np.inf])
    e_g, e_t = advani_saxe_errors(alpha, t, noise_var=0.25)
    assert e_g.shape == e_t.shape == (6, 3)
    # near alpha = 1, stopping early beats training to convergence
    near = np.argmin(np.abs(alpha[:, 0] - 1.0))
    assert np.min(e_g[near, :2]) < e_g[near, 2]


def test_advani_saxe_simulation_within_three_standard_errors():
    # N = 300 features, 24 trials: finite-size bias O(1/N) is well inside 3 standard errors (about 2-3%).
    alpha = np.array([0.5, 2.0])
    t = np.array([1.0, 10.0, np.inf])
    sim = simulate_advani_saxe(alpha, t, num_features=300, num_trials=24, noise_var=0.25, seed=1)
    e_g, e_t = advani_saxe_errors(alpha[:, None], t[None, :], noise_var=0.25)
    assert np.all(np.abs(sim.E_g - e_g) < 3 * sim.E_g_sem), (sim.E_g, e_g, sim.E_g_sem)
    ok = np.abs(sim.E_t - e_t) < 3 * sim.E_t_sem + 1e-12  # E_t(inf) = 0 exactly for alpha < 1
    assert np.all(ok), (sim.E_t, e_t, sim.E_t_sem)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: advani_saxe_errors(0.0, 1.0), "alpha = P/N"),
        (lambda: advani_saxe_errors(-1.0, 1.0), "alpha = P/N"),
        (lambda: advani_saxe_errors(1.0, -1.0), "t must be >= 0"),
        (lambda: advani_saxe_errors(np.ones(3), np.ones(2)), "must broadcast"),
        (lambda: advani_saxe_errors(1.0, 1.0, tau=0.0), "tau must be > 0"),
        (lambda: advani_saxe_errors(1.0, 1.0, noise_var=-1.0), "noise_var must be >= 0"),
        (lambda: simulate_advani_saxe(0.0, 1.0), "alpha = P/N"),
    ],
)
def test_advani_saxe_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- learning curves
K = np.arange(1, 2001, dtype=float)


def test_learning_curve_worked_values():
    # Issue values (independent); kappa solved by Brent to ~1e-15: compare to 1e-9 relative.
    lc = kernel_learning_curve(K ** -2, K ** -2, 50, ridge=1e-3, noise=0.01)
    assert type(lc.kappa) is float and lc.mode_errors.shape == K.shape  # scalar p: floats (docs/conventions.md)
    assert lc.kappa == pytest.approx(4.9361132773e-2, rel=1e-9)
    assert lc.gamma == pytest.approx(0.4899327392, rel=1e-9)
    assert lc.E_g == pytest.approx(5.7005864539e-2, rel=1e-9)
    # the self-consistent equation and the mode decomposition hold
    kap = lc.kappa
    assert kap == pytest.approx(1e-3 + kap * np.sum(K ** -2 / (50 * K ** -2 + kap)), rel=1e-12)
    assert lc.E_g == pytest.approx(lc.mode_errors.sum() + 0.01 * lc.gamma / (1 - lc.gamma), rel=1e-12)


def test_degeneracies_equal_repeated_eigenvalues():
    eta, v2, g = np.array([1.0, 0.3, 0.05]), np.array([0.2, 0.1, 0.4]), np.array([1, 3, 5])
    a = kernel_learning_curve(eta, v2, [2, 7, 20], ridge=1e-2, noise=0.1, degeneracies=g)
    b = kernel_learning_curve(np.repeat(eta, g), np.repeat(v2, g), [2, 7, 20], ridge=1e-2, noise=0.1)
    np.testing.assert_allclose(a.E_g, b.E_g, rtol=1e-12)
    np.testing.assert_allclose(a.kappa, b.kappa, rtol=1e-12)


def test_ridgeless_interpolation_regimes():
    # 5 modes, ridge 0: p < 5 has kappa > 0 with sum eta/(p eta + kappa) = 1; p > 5 interpolates (kappa = 0,
    # gamma = 5/p, E_g = noise gamma / (1 - gamma)).
    eta = np.array([1.0, 0.5, 0.2, 0.1, 0.05])
    lc = kernel_learning_curve(eta, np.ones(5), [3, 10], noise=0.2)
    assert lc.kappa[0] > 0 and np.sum(eta / (3 * eta + lc.kappa[0])) == pytest.approx(1.0, rel=1e-12)
    assert lc.kappa[1] == 0.0 and lc.gamma[1] == pytest.approx(0.5)
    assert lc.E_g[1] == pytest.approx(0.2 * 0.5 / 0.5)


def test_learning_curve_matches_gaussian_feature_simulation():
    # The case at p = 50, 60 trials (seeded): within 3 standard errors.
    sim = simulate_kernel_regression(K ** -2, K ** -2, [50], ridge=1e-3, noise=0.01, num_trials=60, seed=2)
    lc = kernel_learning_curve(K ** -2, K ** -2, 50, ridge=1e-3, noise=0.01)
    assert abs(sim.E_g[0] - lc.E_g) < 3 * sim.E_g_sem[0], (sim.E_g, sim.E_g_sem, lc.E_g)


def test_sphere_relu_ntk_learning_curve_matches_simulation():
    # Real kernel regression with the two-layer relu NTK on S^2, target of degrees 0-2; the theory uses the
    # Funk-Hecke spectrum to degree 60 with a fitted k^-3 tail. At small p the deterministic equivalent holds
    # within 3 standard errors; the tail exponent must come out near -d = -3 (Bietti & Mairal 2019).
    mu = sphere_eigenvalues(relu_ntk_two_layer, 3, np.arange(61))
    eta, deg = extend_sphere_spectrum(mu, 3, max_degree=20000)
    tail = eta[-2:]
    assert np.log(tail[1] / tail[0]) / np.log(20000 / 19998) == pytest.approx(-3.0, abs=0.05)
    c = np.array([0.5, 1.0, 0.7])
    v2 = np.zeros_like(eta)
    v2[:3] = c ** 2 / deg[:3] ** 2
    lc = kernel_learning_curve(eta, v2, [15, 30], ridge=1e-3, noise=0.01, degeneracies=deg)
    sim = simulate_sphere_kernel_regression(relu_ntk_two_layer, c, 3, [15, 30], ridge=1e-3, noise=0.01,
                                            num_trials=30, num_test=400, seed=0)
    assert np.all(np.abs(sim.E_g - lc.E_g) < 3 * sim.E_g_sem), (sim.E_g, sim.E_g_sem, lc.E_g)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: kernel_learning_curve(np.array([1.0, -0.5]), np.ones(2), 5), "eigenvalues must be >= 0"),
        (lambda: kernel_learning_curve(np.ones(3), np.ones(2), 5), "target_powers must have the shape"),
        (lambda: kernel_learning_curve(np.ones(3), np.ones(3), 0), "p .* must be > 0"),
        (lambda: kernel_learning_curve(np.ones(3), np.ones(3), 5, ridge=-1.0), "ridge must be >= 0"),
        (lambda: kernel_learning_curve(np.ones(3), np.ones(3), 5, degeneracies=[1, 2]), "degeneracies must have"),
        (lambda: kernel_learning_curve(np.array([1.0, np.inf]), np.ones(2), 5), "non-finite"),
        (lambda: simulate_kernel_regression(np.ones(3), np.ones(3), [2.5]), "p must be positive integers"),
    ],
)
def test_learning_curve_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
