"""Helpers of the papers entries yang_2019_tensor_programs_1 and favero_2021_locality, each against an
independent computation (their fast-mode verdicts cost minutes and run in the slow tier of tests/test_papers.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from workbench import config
from workbench.layers import Dense, Relu, serial
from workbench.papers import favero_2021_locality as fav
from workbench.papers import yang_2019_tensor_programs_1 as tp1


# ----------------------------------------------------------------------------- favero_2021_locality
@pytest.mark.parametrize("s", [1, 2, 3])
def test_local_kernel_is_the_ntk_of_the_conv_net_on_wrapped_inputs(s):
    """The relu-NTK patch's closed form (1/d) sum_i kappa(u_i) against Net.kernels of Conv-Relu-Flatten-Dense."""
    rng = np.random.default_rng(s)
    theta = rng.uniform(0, 2 * np.pi, (5, 7))
    with config.precision("float64"):
        ntk = np.asarray(fav.conv_net(s).kernels(jnp.asarray(fav.embed(theta, s))).ntk)
        # s = d: the fully connected two-layer relu NTK on the flattened (n, 2d) embedding
        fc = serial(Dense(16, w_std=math.sqrt(2), b_std=0.0), Relu(), Dense(1, w_std=math.sqrt(2), b_std=0.0))
        fc_ntk = np.asarray(fc.kernels(jnp.asarray(fav.embed(theta, 1).reshape(5, -1))).ntk)
    # both are float64 evaluations of the same arccos formula; kappa has a sqrt(1 - u) cusp at u = 1, so a round-off
    # of 1e-16 in u becomes up to sqrt(2e-16)/pi ~ 5e-9 on the diagonal: atol 1e-8 (off the diagonal ~1e-15)
    np.testing.assert_allclose(fav.local_kernel(theta, s=s, patch="relu_ntk"), ntk, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fav.local_kernel(theta, s=7, patch="relu_ntk"), fc_ntk, rtol=0, atol=1e-8)
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(fav.local_kernel(theta, s=s, patch="relu_ntk")[off], ntk[off], rtol=1e-11)


@pytest.mark.parametrize("s", [1, 2, 3])
def test_laplace_local_kernel_is_the_mean_laplace_kernel_of_the_patches(s):
    """The Laplace patch against exp(-|x_i - y_i|) of the embedded, wrapped patches (Euclidean norm in R^{2s})."""
    rng = np.random.default_rng(10 + s)
    theta1, theta2 = rng.uniform(0, 2 * np.pi, (4, 7)), rng.uniform(0, 2 * np.pi, (3, 7))
    x1, x2 = fav.embed(theta1, s), fav.embed(theta2, s)  # (n, d + s - 1, 2)
    direct = np.zeros((4, 3))
    for i in range(7):
        diff = x1[:, None, i:i + s, :] - x2[None, :, i:i + s, :]
        direct += np.exp(-np.sqrt(np.sum(diff ** 2, axis=(2, 3))))
    # both float64 evaluations of the same distances (via cosines or via coordinates): round-off of 1e-15 in the
    # squared distance is up to sqrt(1e-15) ~ 3e-8 in the distance of two near-equal patches; these are not near-equal
    np.testing.assert_allclose(fav.local_kernel(theta1, theta2, s=s), direct / 7, rtol=1e-12)
    fc = np.exp(-np.linalg.norm(fav.embed(theta1, 1).reshape(4, 1, -1) - fav.embed(theta2, 1).reshape(1, 3, -1), axis=2))
    np.testing.assert_allclose(fav.local_kernel(theta1, theta2, s=7), fc, rtol=1e-12)
    assert np.allclose(np.diag(fav.local_kernel(theta1, s=s)), 1.0)


@pytest.mark.parametrize("patch", fav.PATCHES)
@pytest.mark.parametrize("s,d", [(1, 5), (2, 5), (2, 8), (3, 6)])
def test_local_spectrum_rebuilds_the_kernel_on_grid_points(s, d, patch):
    """Mercer: K(theta, 0) = sum over modes of lambda cos(n . theta). On the FFT grid the DFT inverts exactly, so the
    eigenvalues, the (s - r + 1)/d weights and the d-fold multiplicity rebuild local_kernel to round-off."""
    grid = 16
    c = fav.patch_coefficients(s, grid, patch)
    eta, mult = fav.local_spectrum(s, d, grid, patch)
    k0 = {"laplace": 1.0, "relu_ntk": 2.0}[patch]  # trace identity: the eigenvalues sum to k(0)
    assert math.isclose(float(np.sum(eta * mult)), k0, rel_tol=1e-12)
    rng = np.random.default_rng(0)
    theta = 2 * np.pi * rng.integers(0, grid, (6, d)) / grid
    idx = np.indices(c.shape).reshape(s, -1).T
    first = idx[:, 0] != 0
    span = s - np.argmax((idx != 0)[:, ::-1], axis=1)
    lam = (s - span + 1) * c.reshape(-1) / d
    rebuilt = np.full(theta.shape[0], c.reshape(-1)[0])
    for i in range(d):  # the window starting at coordinate i
        phase = sum(np.outer(theta[:, (i + j) % d], idx[first, j]) for j in range(s))
        rebuilt += np.cos(phase) @ lam[first]
    direct = fav.local_kernel(theta, np.zeros((1, d)), s=s, patch=patch)[:, 0]
    np.testing.assert_allclose(rebuilt, direct, rtol=0, atol=1e-12)
    assert np.all(eta >= 0) and mult[0] == 1 and np.all(mult[1:] == d)


@pytest.mark.parametrize("student", ["teacher", "fc"])
def test_regression_error_is_the_teacher_averaged_error(student):
    """E_g given X (closed form: the posterior variance when student = teacher, the mismatched formula for the FC
    student of a local teacher) against Monte Carlo over 4,000 GP teachers: draw f, regress, average the error."""
    rng = np.random.default_rng(1)
    p, m, draws = 12, 8, 4000
    theta = rng.uniform(0, 2 * np.pi, (p + m, 6))
    kt = fav.local_kernel(theta, s=2)
    ks = kt if student == "teacher" else fav.local_kernel(theta, s=6)
    exact = fav.regression_errors(ks, kt, [p], m, jitter=0.0)[0]
    chol = np.linalg.cholesky(kt + 1e-12 * np.eye(p + m))
    f = chol @ rng.standard_normal((p + m, draws))
    pred = ks[p:, :p] @ np.linalg.solve(ks[:p, :p], f[:p])
    err = np.mean((pred - f[p:]) ** 2, axis=0)
    # the Monte-Carlo mean's own standard error sets the band: 4 se (a 1-in-15,000 false alarm)
    assert abs(err.mean() - exact) <= 4 * err.std(ddof=1) / math.sqrt(draws)
    if student == "fc":  # the mismatched formula is not the student's own posterior variance
        assert abs(exact - fav.regression_errors(ks, ks, [p], m, jitter=0.0)[0]) > 8 * err.std(ddof=1) / math.sqrt(draws)


def test_locality_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="filter size s"):
        fav.local_kernel(np.zeros((2, 4)), s=5)
    with pytest.raises(ValueError, match="theta1"):
        fav.local_kernel(np.zeros(4), s=2)
    with pytest.raises(ValueError, match="d must be >= 2 s - 1"):
        fav.local_spectrum(3, 4, 8)
    with pytest.raises(ValueError, match="max\\(ps\\) \\+ num_test"):
        fav.regression_errors(np.eye(10), np.eye(10), [8], 4)
    with pytest.raises(ValueError, match="at least one"):
        fav.regression_errors(np.eye(10), np.eye(10), [], 4)
    with pytest.raises(ValueError, match="P must be an integer >= 1"):
        fav.regression_errors(np.eye(10), np.eye(10), [0], 4)
    with pytest.raises(ValueError, match="same shape"):
        fav.regression_errors(np.eye(10), np.eye(9), [4], 4)
    with pytest.raises(ValueError, match="patch"):
        fav.local_kernel(np.zeros((2, 4)), s=2, patch="gaussian")
    with pytest.raises(ValueError, match="s must be an integer >= 1"):
        fav.patch_kernel(np.zeros(3), 0)


# ----------------------------------------------------------------------------- yang_2019_tensor_programs_1
def test_mc_floor_matches_monte_carlo():
    """sqrt(((tr K)^2 + ||K||^2)/D)/||K|| against the rms error of 400 sample covariances of D Gaussian draws."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    kern = a @ a.T + np.eye(4)
    draws, reps = 50, 400
    chol = np.linalg.cholesky(kern)
    z = chol @ rng.standard_normal((reps, 4, draws))
    s = np.einsum("rid,rjd->rij", z, z) / draws
    sq = np.sum((s - kern) ** 2, axis=(1, 2)) / np.sum(kern ** 2)
    rms, se = math.sqrt(sq.mean()), sq.std(ddof=1) / math.sqrt(reps) / (2 * math.sqrt(sq.mean()))
    assert abs(rms - tp1.mc_floor(kern, draws)) <= 4 * se  # delta-method se of the rms; 4 se band


def test_ks_critical_value_has_its_level():
    """The exact 99% quantile (scipy kstwo) beside Kolmogorov's asymptotic 1.628/sqrt(D), and its false-alarm rate
    under the null by Monte Carlo (1,000 normal samples of D = 200)."""
    assert math.isclose(tp1.ks_critical(2000), 1.6276 / math.sqrt(2000), rel_tol=0.01)
    rng = np.random.default_rng(0)
    stats = np.array([scipy.stats.kstest(rng.standard_normal(200), "norm").statistic for _ in range(1000)])
    rate = float(np.mean(stats > tp1.ks_critical(200)))
    assert abs(rate - 0.01) <= 4 * math.sqrt(0.01 * 0.99 / 1000)  # binomial se of the rate, 4 se band


@pytest.mark.slow  # two compiled draws programs plus empirical_ntk: ~45-80 s each on a loaded 2-core machine
@pytest.mark.parametrize("name", tp1.ARCHITECTURES)
def test_draws_program_matches_the_network_and_the_empirical_ntk(name):
    """One jitted draws program: outputs equal Net.apply at Net.init(key), the per-draw kernel is g.g'/C of the readout
    features, and J J^T equals workbench.kernels.empirical.empirical_ntk (float64, round-off agreement)."""
    from workbench.kernels.empirical import empirical_ntk
    from workbench.layers.net import Net

    with config.precision("float64"), config.matmul_precision("highest"):
        x = jax.random.normal(jax.random.PRNGKey(3), (3, 4, 2))
        keys = jax.random.split(jax.random.PRNGKey(4), 3)
        f, kc, ntk = tp1.sample(name, 8, x, keys, keys[:2])
        net = tp1.architecture(name, 8)
        for i in range(2):
            params = net.init(keys[i], tuple(x.shape))
            np.testing.assert_allclose(f[i], np.asarray(net.apply(params, x))[:, 0], rtol=1e-10, atol=1e-12)
            g = np.asarray(Net(net.layers[:-1]).apply(params[:-1], x))
            np.testing.assert_allclose(kc[i], g @ g.T / 8, rtol=1e-10, atol=1e-12)
            ref = np.asarray(empirical_ntk(net.apply, params, x, method="jacobian"))
            np.testing.assert_allclose(ntk[i], ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="architecture must be one of"):
        tp1.architecture("mlp", 8)
