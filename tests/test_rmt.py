"""Tests of workbench.rmt: worked values, quadrature identities, and sampled random matrices.

Tolerances for sampled matrices come from the known size of finite-n fluctuations:
* a linear statistic of n eigenvalues (a fraction in an interval, a normalized moment) fluctuates by
  O(sqrt(log n)/n) for Wigner/Wishart matrices (eigenvalue rigidity; Erdos, Yau & Yin 2012), with an
  O(1/n) bias: we allow (6 sqrt(log n) + 4)/n;
* an extreme eigenvalue sits within O(n^{-2/3}) of the edge (Tracy-Widom; GOE mean -1.21, std 1.27 in
  units of sigma n^{-2/3}): we allow 6 n^{-2/3} (edge scale);
* an outlier above the BBP threshold fluctuates by O(n^{-1/2}) (Gaussian; Paul 2007, Capitaine et al.
  2009) with std below 2/sqrt(n) (edge scale) here: averaged over r draws we allow 5 * 2/sqrt(n r) + 2/n.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from workbench import rmt


def _wigner(rng, n, sigma=1.0):
    """Symmetric n x n with off-diagonal variance sigma^2/n (diagonal 2 sigma^2/n: GOE)."""
    g = rng.normal(size=(n, n)) * sigma / math.sqrt(n)
    return (g + g.T) / math.sqrt(2)


def _linear_tol(n):
    return (6 * math.sqrt(math.log(n)) + 4) / n


# ----------------------------------------------------------------------------- worked values
def test_worked_values_from_the_issue():
    mass = quad(rmt.semicircle_density, -1, 1, epsabs=1e-13)[0]
    assert abs(mass - (1 / 3 + math.sqrt(3) / (2 * math.pi))) < 1e-10
    cdf_mass = float(rmt.semicircle_cdf(1.0) - rmt.semicircle_cdf(-1.0))
    assert abs(cdf_mass - (1 / 3 + math.sqrt(3) / (2 * math.pi))) < 1e-14
    np.testing.assert_allclose(rmt.marchenko_pastur_edges(0.25), (0.25, 2.25), rtol=1e-14)
    pred = rmt.batch_hessian_top(5.0, 10 ** 4, 0.01, [1, 4, 16, 100])
    np.testing.assert_allclose(pred.top, [20, 10, 6.25, 5.2], rtol=1e-12)
    np.testing.assert_allclose(pred.lr_max, 2 / np.array([20, 10, 6.25, 5.2]), rtol=1e-12)


def test_lr_max_closed_form_above_threshold():
    # 2/lambda'(B) = (2/lambda1)/(1 + B*/B), B* = P sigma^2/lambda1^2 (docs/theory.md#8-the-batch-hessian).
    b = np.array([16.0, 100.0, 1000.0])
    pred = rmt.batch_hessian_top(5.0, 10 ** 4, 0.01, b)
    bstar = rmt.hessian_noise_critical_batch(5.0, 10 ** 4, 0.01)
    np.testing.assert_allclose(pred.lr_max, (2 / 5) / (1 + bstar / b), rtol=1e-12)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_semicircle_normalization_and_moments(sigma):
    for k in range(0, 7):
        integral = quad(lambda x: x ** k * rmt.semicircle_density(x, sigma), -2 * sigma, 2 * sigma,
                        epsabs=1e-11, epsrel=1e-11, limit=200)[0]
        assert abs(integral - rmt.semicircle_moment(k, sigma)) < 1e-8 * max(1.0, sigma ** k)


@pytest.mark.parametrize("ratio", [0.25, 0.7, 2.0])
def test_marchenko_pastur_mass_and_moments(ratio):
    lo, hi = rmt.marchenko_pastur_edges(ratio, 1.5)
    f = lambda x, k: x ** k * rmt.marchenko_pastur_density(x, ratio, 1.5)  # noqa: E731
    mass = quad(f, lo, hi, args=(0,), epsabs=1e-11, epsrel=1e-11, limit=200)[0] + rmt.marchenko_pastur_atom(ratio)
    assert abs(mass - 1) < 1e-8
    for k in (1, 2, 3):
        assert abs(quad(f, lo, hi, args=(k,), epsabs=1e-11, epsrel=1e-11, limit=200)[0] - rmt.marchenko_pastur_moment(k, ratio, 1.5)) < 1e-7


def test_spiked_formulas_are_continuous_at_threshold():
    assert float(rmt.spiked_wigner_outlier(1.0)) == pytest.approx(2.0)
    assert float(rmt.spiked_wigner_outlier(1.0 + 1e-9)) == pytest.approx(2.0, abs=1e-8)
    r = 0.36
    assert float(rmt.spiked_covariance_outlier(math.sqrt(r) + 1e-9, r)) == pytest.approx((1 + math.sqrt(r)) ** 2, abs=1e-8)
    # Hessian model continuous at lambda = s sqrt(P): lambda + P s^2/lambda = 2 s sqrt(P).
    p, s2, b = 10 ** 4, 0.01, 4.0
    lam = math.sqrt(s2 / b * p)
    np.testing.assert_allclose(rmt.batch_hessian_top(lam * (1 + 1e-9), p, s2, b).top,
                               rmt.batch_hessian_top(lam * (1 - 1e-9), p, s2, b).top, rtol=1e-8)


# ----------------------------------------------------------------------------- sampled matrices
def test_sampled_wigner(key):
    rng = np.random.default_rng(11)
    n, sigma = 800, 1.3
    ev = np.linalg.eigvalsh(_wigner(rng, n, sigma))
    frac = np.mean(np.abs(ev) <= sigma)
    assert abs(frac - (1 / 3 + math.sqrt(3) / (2 * math.pi))) < _linear_tol(n)
    assert abs(np.mean(ev ** 2) - rmt.semicircle_moment(2, sigma)) < _linear_tol(n) * sigma ** 2 * 4
    assert abs(ev[-1] - rmt.wigner_edge(sigma)) < 6 * sigma * n ** (-2 / 3)


def test_sampled_marchenko_pastur():
    rng = np.random.default_rng(12)
    m, p, s2 = 1600, 400, 2.0
    x = rng.normal(size=(m, p)) * math.sqrt(s2)
    ev = np.linalg.eigvalsh(x.T @ x / m)
    lo, hi = rmt.marchenko_pastur_edges(p / m, s2)
    # edge scale for the Wishart extreme eigenvalues: sigma2 (1 + sqrt(r))^{4/3} r^{-1/6} p^{-2/3} (Johnstone 2001)
    edge_scale = s2 * (1 + math.sqrt(p / m)) ** (4 / 3) * (p / m) ** (-1 / 6) * p ** (-2 / 3)
    assert abs(ev[-1] - hi) < 6 * edge_scale
    assert abs(ev[0] - lo) < 6 * edge_scale
    for k in (1, 2):
        assert abs(np.mean(ev ** k) / rmt.marchenko_pastur_moment(k, p / m, s2) - 1) < 4 * _linear_tol(p)


def test_sampled_spiked_wigner():
    rng = np.random.default_rng(13)
    n, r, theta = 600, 4, 2.0
    v = np.ones(n) / math.sqrt(n)
    tops, overlaps = [], []
    for _ in range(r):
        ev, vec = np.linalg.eigh(_wigner(rng, n) + theta * np.outer(v, v))
        tops.append(ev[-1])
        overlaps.append((vec[:, -1] @ v) ** 2)
    tol = 5 * 2 / math.sqrt(n * r) + 2 / n
    assert abs(np.mean(tops) - float(rmt.spiked_wigner_outlier(theta))) < tol
    assert abs(np.mean(overlaps) - float(rmt.spiked_wigner_overlap(theta))) < tol


def test_sampled_spiked_covariance():
    rng = np.random.default_rng(14)
    p, m, ell, r = 300, 1200, 2.0, 4
    ratio = p / m
    tops = []
    for _ in range(r):
        x = rng.normal(size=(m, p))
        x[:, 0] *= math.sqrt(1 + ell)
        tops.append(np.linalg.eigvalsh(x.T @ x / m)[-1])
    pred = float(rmt.spiked_covariance_outlier(ell, ratio))
    assert abs(np.mean(tops) - pred) < (5 * 2 / math.sqrt(p * r) + 2 / p) * pred


@pytest.mark.parametrize("batch_size", [2.0, 50.0])
def test_batch_hessian_model_against_sampled_matrices(batch_size):
    # H = diag(lambda_1, lambda_2, 0, ...) + Wigner noise of entry variance s^2 = sigma2/B: the top eigenvalue
    # is the outlier (B = 50) or the noise edge (B = 2); tolerances as for the spiked Wigner test,
    # in units of the Wigner sigma s sqrt(P).
    rng = np.random.default_rng(15)
    p, sigma2, lam = 500, 0.02, np.array([3.0, 1.0])
    pred = rmt.batch_hessian_top(lam, p, sigma2, batch_size)
    s = math.sqrt(float(pred.noise_var[0]))
    tops = []
    for _ in range(3):
        h = np.diag(np.concatenate([lam, np.zeros(p - 2)]))
        tops.append(np.linalg.eigvalsh(h + _wigner(rng, p, s * math.sqrt(p)))[-1])
    unit = s * math.sqrt(p)
    tol = (5 * 2 / math.sqrt(p * 3) + 6 * p ** (-2 / 3)) * unit
    assert abs(np.mean(tops) - float(pred.top[0])) < tol


def test_batch_ggn_model_against_sampled_matrices():
    # G_B = (1/B) sum_i g_i g_i^T with g_i ~ N(0, sigma_b^2 (I + ell e1 e1^T)): spiked covariance, ratio = P/B.
    rng = np.random.default_rng(16)
    p, b, sb2, ell = 200, 800, 0.5, 1.5
    lam1 = sb2 * (1 + ell)
    pred = rmt.batch_hessian_top(lam1, p, sb2, b, kind="ggn")
    tops = []
    for _ in range(3):
        g = rng.normal(size=(b, p)) * math.sqrt(sb2)
        g[:, 0] *= math.sqrt(1 + ell)
        tops.append(np.linalg.eigvalsh(g.T @ g / b)[-1])
    assert abs(np.mean(tops) - float(pred.top[0])) < (5 * 2 / math.sqrt(p * 3) + 2 / p) * float(pred.top[0])


def test_noise_fit_recovers_sigma2_and_exponent():
    b = np.array([2, 8, 32, 128, 1024])
    n, p, sigma2 = 2048, 300, 0.7
    frob = rmt.batch_noise_variance(sigma2, b, n) * p ** 2
    fit = rmt.fit_noise_variance(b, frob, p, n)
    assert fit.sigma2 == pytest.approx(sigma2, rel=1e-12)
    # exponent of (1/B - 1/N) against B over B <= N/10, exactly computable: not exactly -1 at finite N.
    c = (1 / b[:4] - 1 / n)
    expected = np.polyfit(np.log(b[:4]), np.log(c), 1)[0]
    assert fit.exponent == pytest.approx(expected, rel=1e-10)
    assert abs(fit.exponent + 1) < 0.1
    assert float(rmt.batch_noise_variance(1.0, n, n)) == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="sigma must be > 0"):
        rmt.semicircle_density(0.0, sigma=0.0)
    with pytest.raises(ValueError, match="ratio must be > 0"):
        rmt.marchenko_pastur_edges(-1.0)
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        rmt.marchenko_pastur_density([1.0, np.nan], 0.5)
    with pytest.raises(ValueError, match="batch_size must be in"):
        rmt.batch_hessian_top(1.0, 100, 0.1, [0.5])
    with pytest.raises(ValueError, match="batch_size must be in"):
        rmt.batch_hessian_top(1.0, 100, 0.1, [200], num_data=100)
    with pytest.raises(ValueError, match="lambda1 must be positive"):
        rmt.batch_hessian_top(-1.0, 100, 0.1, 4)
    with pytest.raises(ValueError, match="kind must be one of"):
        rmt.batch_hessian_top(1.0, 100, 0.1, 4, kind="fisher")
    with pytest.raises(ValueError, match="ell must be >= 0"):
        rmt.spiked_covariance_outlier(-0.5, 0.3)
    with pytest.raises(ValueError, match="same shape"):
        rmt.fit_noise_variance([1, 2], [1.0], 10)
