"""Sphere eigenvalues: Bietti & Mairal's relu NTK values, a Bessel closed form, trace identity, MLP route."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special

from workbench.kernels.sphere import relu_ntk_two_layer, sphere_eigenvalues, sphere_multiplicities
from workbench.nets import MLP


def test_relu_ntk_values_on_s2():
    mu = sphere_eigenvalues(relu_ntk_two_layer, 3, [0, 1, 2, 3, 4, 6])
    exact = np.array([1 / 2, 1 / 3, 5 / 64, 0.0, 1 / 192, 23 / 16384])
    # 1e-10 relative: the bar (tanh-sinh reaches ~1e-14 here); mu_3 = 0 checked absolutely
    np.testing.assert_allclose(mu[[0, 1, 2, 4, 5]], exact[[0, 1, 2, 4, 5]], rtol=1e-10)
    assert abs(mu[3]) < 1e-13


def test_exponential_kernel_closed_form():
    # e^t = sum_k (2k + 1) i_k(1) P_k(t) on S^2: mu_k = i_k(1), the modified spherical Bessel function
    deg = np.arange(12)
    mu = sphere_eigenvalues(np.exp, 3, deg)
    # 1e-10 relative, plus 1e-14 absolute: round-off in the oscillating integrand is ~1e-16 * max|kappa|
    np.testing.assert_allclose(mu, scipy.special.spherical_in(deg, 1.0), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dim", [3, 5])
def test_trace_identity_to_truncation_error(dim):
    # kappa(1) = sum_k N(d, k) mu_k. The relu NTK has mu_k ~ C k^-d for even k (odd k >= 3 vanish), so the
    # tail beyond K is about sum_{even k > K} N(d, k) C k^-d; C is fitted from the last even eigenvalue.
    deg = np.arange(0, 201)
    mu = sphere_eigenvalues(relu_ntk_two_layer, dim, deg)
    n = sphere_multiplicities(dim, deg)
    partial = float(np.sum(n * mu))
    c = mu[200] * 200.0**dim
    tail_deg = np.arange(202, 200_000, 2)
    tail = float(np.sum(sphere_multiplicities(dim, tail_deg) * c * tail_deg ** (-float(dim))))
    assert abs(partial - 2.0) > 0.5 * tail  # the truncation error is really there
    # the fitted tail explains the gap to within 5% of the tail itself (the k^-d law holds only asymptotically)
    assert abs(2.0 - partial - tail) < 0.05 * tail
    assert np.all(np.abs(mu[3::2]) < 1e-13)


def test_mlp_route_matches_normalized_kernel():
    # two-layer relu NTK (NTK param., no bias, w_std^2 = 2) between unit vectors of R^3:
    # Theta(t) = w^4 / (2 d) kappa(t) = (2/3) kappa(t)
    net = MLP(depth=1, width=8, activation="relu", w_std=math.sqrt(2), b_std=None)
    deg = [0, 1, 2, 4]
    np.testing.assert_allclose(sphere_eigenvalues(net, 3, deg), (2 / 3) * sphere_eigenvalues(relu_ntk_two_layer, 3, deg),
                               rtol=1e-10)
    # the NNGP: K(t) = (w^4/(2d)) kappa1(t) ... its mu_0 is the mean of K over the sphere, checked by quadrature
    mu0 = sphere_eigenvalues(net, 3, [0], which="nngp")[0]
    k1 = lambda t: (t * (np.pi - np.arccos(t)) + np.sqrt(1 - t * t)) / np.pi  # noqa: E731
    ref = scipy.integrate.quad(lambda t: (2 / 3) * k1(t) / 2, -1, 1, epsabs=1e-14)[0]  # d = 3: mu_0 = (1/2) int
    np.testing.assert_allclose(mu0, ref, rtol=1e-10)


def test_multiplicities():
    deg = np.arange(8)
    np.testing.assert_array_equal(sphere_multiplicities(3, deg), 2 * deg + 1)
    np.testing.assert_array_equal(sphere_multiplicities(2, deg), [1] + [2] * 7)
    # independent count: harmonic polynomials of degree k in d variables = C(k+d-1, d-1) - C(k+d-3, d-1)
    for d in (4, 6):
        count = [math.comb(k + d - 1, d - 1) - (math.comb(k + d - 3, d - 1) if k >= 2 else 0) for k in deg]
        np.testing.assert_array_equal(sphere_multiplicities(d, deg), count)


def test_bad_inputs():
    with pytest.raises(ValueError, match="degrees"):
        sphere_eigenvalues(np.exp, 3, [-1, 2])
    with pytest.raises(ValueError, match="dim"):
        sphere_eigenvalues(np.exp, 1, [0])
    with pytest.raises(ValueError, match="vectorized"):
        sphere_eigenvalues(lambda t: 1.0, 3, [0])
    with pytest.raises(ValueError, match="not finite"):
        sphere_eigenvalues(lambda t: np.where(t > 0.5, np.nan, t), 3, [0])
    with pytest.raises(TypeError, match="kernel"):
        sphere_eigenvalues("relu", 3, [0])


def test_mlp_eigenvalues_are_float64_in_a_float32_session():
    """The Mercer eigenvalues of an MLP kernel do not depend on the session's precision (float32 round-off of
    kappa(t) would otherwise swamp mu_k past the first degrees); 1e-12 relative to mu_0 is float64 round-off."""
    from workbench import config

    net = MLP(depth=1, width=1, activation="relu", w_std=2**0.5, b_std=None)
    ref = sphere_eigenvalues(net, 3, np.arange(30))
    with config.precision("float32"):
        low = sphere_eigenvalues(net, 3, np.arange(30))
    assert np.max(np.abs(low - ref)) < 1e-12 * ref[0]
