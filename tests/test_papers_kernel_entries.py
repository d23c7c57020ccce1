"""The math helpers of three paper entries against independent computations (their verdicts, numbers and wrong
predictions are tested in tests/test_papers.py): the permutation ensemble against dense linear algebra and
explicit finite ensembles, the Student-t / F laws of the scale mixture against Monte Carlo of the mixture, and
the exact random-feature test error against test points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from workbench import config
from workbench.generalization import kernel_learning_curve
from workbench.nets import MLP
from workbench.papers import giapitzakis_2025_permutations as perm
from workbench.papers import scale_mixtures_nngp as mix
from workbench.papers import simon_2023_more_is_better as rf


@pytest.fixture(scope="module")
def kernels():
    with config.precision("float64"):
        return perm.permutation_kernels([4, 5, 6, 7])  # the entry's fast-mode call: one compile shared with it


def _relu_kernels_one_hidden_layer(z: np.ndarray, w_std: float, b_std: float) -> tuple[np.ndarray, np.ndarray]:
    """NNGP and NTK of a one-hidden-layer relu net in NTK parametrization, arc-cosine closed form in numpy
    (Cho & Saul 2009; Jacot et al. 2018): K1 = w^2 x.x'/d + b^2, K2 = b^2 + w^2 E[relu relu], Theta2 = K2 +
    w^2 E[relu' relu'] K1."""
    k1 = w_std ** 2 * (z @ z.T) / z.shape[1] + b_std ** 2
    norm = np.sqrt(np.outer(np.diag(k1), np.diag(k1)))
    theta = np.arccos(np.clip(k1 / norm, -1.0, 1.0))
    nngp = b_std ** 2 + w_std ** 2 * norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    return nngp, nngp + w_std ** 2 * (np.pi - theta) / (2 * np.pi) * k1


# ----------------------------------------------------------------------------- permutations
def test_padded_kernels_equal_the_k_input_network(kernels):
    # the padding trick (one compile for every k) against the k-input network's kernels in closed form
    for k in (4, 7):
        z = np.concatenate([np.eye(k), perm.binary_inputs(k)])
        nngp, ntk = _relu_kernels_one_hidden_layer(z, perm.NET.w_std, perm.NET.b_std)
        np.testing.assert_allclose(kernels[k].ntk, ntk, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(kernels[k].nngp, nngp, rtol=1e-10, atol=1e-12)
        # the padding coordinate: a unit vector orthogonal to every input
        pad = np.zeros((1, k + 1))
        pad[0, -1] = 1.0
        zz = np.concatenate([np.hstack([z, np.zeros((z.shape[0], 1))]), pad]) * math.sqrt((k + 1) / k)
        np.testing.assert_allclose(kernels[k].ntk_pad, _relu_kernels_one_hidden_layer(zz, 1.0, 1.0)[1][:-1, -1],
                                   rtol=1e-10, atol=1e-12)


def test_ensemble_mean_and_covariance_against_a_dense_solve(kernels):
    k = 5
    kern = kernels[k]
    p = np.array([2, 0, 4, 1, 3])
    ens = perm.infinite_ensemble(kern, p)
    test = perm.binary_inputs(k)
    np.testing.assert_array_equal(ens.truth, test[:, p])
    a = np.linalg.solve(kern.ntk[:k, :k], kern.ntk[k:, :k].T).T  # Theta(x, X) Theta_XX^{-1}
    np.testing.assert_allclose(ens.mean, a @ np.eye(k)[p].T, atol=1e-12)  # targets P e_i: rows of P^T
    kxx, kxs, kss = kern.nngp[:k, :k], kern.nngp[k:, :k], kern.nngp[k:, k:]
    cov = kss + a @ kxx @ a.T - a @ kxs.T - kxs @ a.T  # Lee et al. 2019 eq. 16 at t = inf
    np.testing.assert_allclose(ens.cov, cov, atol=1e-10)
    # readout constants: the padding formula for u0 equals the off-support weight, u1 the on-support one
    on = test > 0
    for i in range(test.shape[0]):
        np.testing.assert_allclose(a[i][on[i]], ens.u1[i], atol=1e-12)
        if not on[i].all():
            np.testing.assert_allclose(a[i][~on[i]], ens.u0[i], atol=1e-12)
    assert np.all(ens.u0 < ens.u1)
    np.testing.assert_array_equal(perm.readout(ens.mean, ens.u0, ens.u1), ens.truth)
    with pytest.raises(ValueError, match="perm must be a permutation"):
        perm.infinite_ensemble(kern, [0, 0, 1, 2, 3])
    with pytest.raises(ValueError, match="k must be"):
        perm.binary_inputs(0)


def test_sampled_ensemble_size_against_explicit_ensembles(kernels):
    ens = perm.infinite_ensemble(kernels[4], np.array([1, 3, 0, 2]))
    rng = np.random.default_rng(0)
    r2 = perm.ensemble_size_samples(ens, 4000, rng)
    for q in (0.5, 0.9):
        m = int(math.ceil(np.quantile(r2, q)))
        predicted = float(np.mean(r2 < m))  # P(exact at M) = P(R^2 < M), from the same samples
        trials = 400
        got = perm.explicit_ensemble_success(ens, m, trials, rng)
        # binomial noise of the explicit estimate (3 se) plus the sampling noise of `predicted` (4000 draws)
        assert abs(got - predicted) <= 3 * math.sqrt(predicted * (1 - predicted) / trials) + 0.02, (q, m, got, predicted)
    # an explicit midpoint threshold is the default; a threshold above u1 misreads the mean itself: no size suffices
    mid = 0.5 * (ens.u0 + ens.u1)
    np.testing.assert_array_equal(perm.ensemble_size_samples(ens, 50, np.random.default_rng(1)),
                                  perm.ensemble_size_samples(ens, 50, np.random.default_rng(1), threshold=mid))
    assert np.all(np.isinf(perm.ensemble_size_samples(ens, 5, rng, threshold=ens.u1 + 1.0)))
    # the closed-form single-input size: at that M, one input's k outputs are all within the half gap w.p. 1 - delta
    sizes = perm.single_input_sizes(ens, 0.1)
    i = int(np.argmax(sizes))
    sigma = math.sqrt(ens.cov[i, i])
    z = rng.standard_normal((200_000, 4)) * sigma / math.sqrt(sizes[i])
    sign = np.where(ens.truth[i] > 0, -1.0, 1.0)  # an entry is misread only when its noise crosses the threshold
    frac = float(np.mean(np.all(sign * z < 0.5 * (ens.u1[i] - ens.u0[i]), axis=1)))
    assert abs(frac - 0.9) < 4 * math.sqrt(0.09 / 200_000)


# ----------------------------------------------------------------------------- scale mixtures
def test_student_t_marginal_and_f_law_against_monte_carlo_of_the_mixture():
    rng = np.random.default_rng(1)
    alpha, beta, n = 1.5, 2.0, 20_000
    kernel = np.array([[1.3, 0.4, 0.2], [0.4, 0.9, 0.1], [0.2, 0.1, 1.1]])
    var = scipy.stats.invgamma(alpha, scale=beta).rvs(n, random_state=rng)
    f = np.sqrt(var)[:, None] * (rng.standard_normal((n, 3)) @ np.linalg.cholesky(kernel).T)
    crit = mix.ks_threshold(n)  # the 99% quantile of the KS statistic: the MC draws are exact, nothing else to allow
    assert scipy.stats.kstest(f[:, 1], mix.student_t_marginal(kernel[1, 1], alpha, beta).cdf).statistic < crit
    q = mix.quadratic_form(f, kernel)
    assert scipy.stats.kstest(q, mix.quadratic_form_law(3, alpha, beta).cdf).statistic < crit
    g = rng.standard_normal((n, 3)) @ np.linalg.cholesky(kernel).T
    assert scipy.stats.kstest(mix.quadratic_form(g, kernel), mix.quadratic_form_law(3).cdf).statistic < crit
    # and the test has power: the mixture's quadratic form is far from chi^2 / m
    assert scipy.stats.kstest(q, mix.quadratic_form_law(3).cdf).statistic > 5 * crit
    with pytest.raises(ValueError, match="alpha"):
        mix.student_t_marginal(1.0, -1.0, 1.0)


def test_finite_width_allowance_constants():
    # sup_x |E Phi(x / sqrt q) - Phi(x)| for q with mean 1 and small relative variance v is ~ 0.069 v
    v = 0.02
    q = scipy.stats.gamma(1 / v, scale=v)  # mean 1, variance v
    x = np.linspace(-4, 4, 801)
    qs = q.ppf((np.arange(4000) + 0.5) / 4000)  # quantile quadrature of E over q
    cdf = scipy.stats.norm.cdf(x[:, None] / np.sqrt(qs[None, :])).mean(axis=1)
    gap = float(np.max(np.abs(cdf - scipy.stats.norm.cdf(x))))
    assert abs(gap - mix.MIXTURE_CDF_CONSTANT * v) < 0.1 * mix.MIXTURE_CDF_CONSTANT * v, gap
    # Var(relu^2) / E[relu^2]^2 = 5 for a Gaussian pre-activation (Monte Carlo, 1% at 2e6 draws)
    h = np.maximum(np.random.default_rng(2).standard_normal(2_000_000), 0.0) ** 2
    assert abs(h.var() / h.mean() ** 2 - mix.RELU_FOURTH_RATIO) < 0.15


def test_network_draws_have_the_nngp_variance_and_bad_nets_are_refused():
    net = MLP(depth=1, width=512, activation="relu", w_std=math.sqrt(2.0), b_std=0.1)  # the entry's net and shapes
    x = np.array([[0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.8, 0.0, 0.6], [1.0, 0.0, 0.0]])
    kernel = _relu_kernels_one_hidden_layer(x, math.sqrt(2.0), 0.1)[0]
    with config.precision("float64"):
        f = mix.sample_outputs(net, x, 2000, key=3)
    cov = np.cov(f.T)
    # 4 standard errors of a sample covariance (sqrt((K_ii K_jj + K_ij^2) / n)); the finite-width bias is zero
    # (E q = K exactly for one hidden layer), the O(1/width) kurtosis only widens the scatter: 1.2x allowance
    se = np.sqrt((np.outer(np.diag(kernel), np.diag(kernel)) + kernel ** 2) / f.shape[0])
    assert np.all(np.abs(cov - kernel) < 4 * 1.2 * se)
    with pytest.raises(ValueError, match="ntk"):
        mix.sample_outputs(MLP(depth=1, width=8, parametrization="standard"), x, 10, key=0)


# ----------------------------------------------------------------------------- random features
def test_exact_random_feature_error_against_test_points():
    # the closed-form |c - v|^2 against the mean squared error on fresh test points of the same trial
    eta, v2 = rf.power_law_task(200, 1.5, 2.0)
    v = np.sqrt(v2)
    rng = np.random.default_rng(4)
    n, nf, ridge = 24, 60, 1e-3
    phi = rng.standard_normal((n, eta.size))
    h = rng.standard_normal((nf, eta.size)) * np.sqrt(eta)
    g = phi @ h.T
    alpha = np.linalg.solve(g @ g.T / nf + ridge * np.eye(n), phi @ v)
    c = h.T @ g.T @ alpha / nf
    exact = float(np.sum((c - v) ** 2))
    test = rng.standard_normal((50_000, eta.size))
    err = (test @ c - test @ v) ** 2
    assert abs(err.mean() - exact) < 4 * err.std() / math.sqrt(err.size)
    # and the helper computes the same exact error for this draw's structure (statistically: 3 se over trials)
    res = rf.random_feature_errors(eta, v2, [n], [nf, 2000], np.array([ridge]), 20, 5)
    theory = kernel_learning_curve(eta, v2, n, ridge=ridge).E_g
    kern = res.kernel[:, 0, 0]
    assert abs(kern.mean() - theory) < 3 * kern.std(ddof=1) / math.sqrt(kern.size) + 0.05 * theory
    many = res.rf[:, 0, 1, 0]  # N = 2000 features on the same samples as kernel regression: the finite-feature
    # excess is O(n / N) ~ 1% on average (single trials scatter by up to ~15%), so the trial means agree to 5%
    assert abs(many.mean() - kern.mean()) < 0.05 * kern.mean()
    assert many.mean() > kern.mean()  # finite features only add variance at this tiny ridge
    with pytest.raises(ValueError, match="ridges"):
        rf.random_feature_errors(eta, v2, [n], [nf], np.array([0.0]), 2, 0)


def test_tuning_and_monotonicity_helpers():
    errors = np.array([[[3.0, 1.0, 2.0], [2.0, 0.5, 0.6]], [[3.2, 1.2, 2.0], [2.1, 0.7, 0.4]]])  # (trials, size, ridge)
    best, mean, per_trial = rf.tuned(errors)
    np.testing.assert_array_equal(best, [1, 2])  # trial means [3.1, 1.1, 2.0] and [2.05, 0.6, 0.5]
    np.testing.assert_allclose(mean, [1.1, 0.5])
    worst, ratio = rf.max_increase_in_se(per_trial, axis=0)
    assert worst < 0 and ratio.shape == (1,)
