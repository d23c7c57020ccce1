"""Tests of workbench.studies.hessian: the batch-Hessian study on a small tanh MLP."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import hessian as H
from workbench.nets import MLP
from workbench.studies import hessian as S


@pytest.fixture(scope="module")
def problem():
    net = MLP(depth=1, width=24, activation="tanh", b_std=0.1, out_dim=1)
    kx, kp = jax.random.split(jax.random.PRNGKey(4))
    x = jax.random.normal(kx, (2048, 6))
    y = jnp.sin(2 * x[:, :1]) + 0.1 * x[:, 1:2]
    return net, x, y, net.init(kp, 6)


@pytest.fixture(scope="module")
def study(problem):
    net, x, y, params = problem
    # 10 batches per B: ||H_B - H||_F^2 varies a lot between small batches (heavy-tailed per-example
    # Hessians); with 10 the fitted exponent moved by < 0.05 across seeds.
    return S.batch_hessian_study(net, x, y, [2, 8, 32, 128, 2048], num_batches=10, top_k=1, params=params,
                                 slq_steps=10, slq_probes=2, noise_probes=8, progress=False)


def test_weighted_loss_matches_mean_loss_hessian(problem):
    net, x, y, params = problem
    xs, ys = x[:40], y[:40]
    plain = H.hessian_operator(H.mlp_loss(net, "mse"), params, (xs, ys)).dense()
    w = jnp.full((40,), 1 / 40)
    weighted = H.hessian_operator(S.weighted_mlp_loss(net, "mse"), params, (xs, S.with_weights(ys, w))).dense()
    np.testing.assert_allclose(weighted, plain, atol=1e-12 * float(jnp.max(jnp.abs(plain))))


def test_noise_frobenius_matches_dense(problem, key):
    # ||H_B - H||_F^2 by Hutchinson on (H_B - H)^2 against the dense difference, within 4 stderr.
    net, x, y, params = problem
    xs, ys = x[:40], y[:40]  # same shapes as the test above: compiled products are reused
    lf = S.weighted_mlp_loss(net, "mse")
    uniform = jnp.full((40,), 1 / 40)
    w = S._batch_weights(key, 40, 8, x.dtype)
    op_b = H.hessian_operator(lf, params, (xs, S.with_weights(ys, w)))
    op_full = H.hessian_operator(lf, params, (xs, S.with_weights(ys, uniform)))
    dense = float(jnp.sum((op_b.dense() - op_full.dense()) ** 2))
    from workbench import rmt

    est, se = rmt.noise_frobenius_sq(op_b, op_full, 64, key=key)
    assert abs(est - dense) <= 4 * se


def test_study_batch_top_above_full_and_decreasing(study):
    top = study.batch_top[:, :, 0].mean(axis=1)
    full = study.full_top[0]
    # B < N: the batch top exceeds the full top (the noise pushes it up) and falls with B.
    assert np.all(top[:-1] > full)
    assert np.all(np.diff(top[:-1]) < 0)
    # B = N is the full data: the same matrix, so the same eigenvalues up to the Lanczos tolerance (1e-6).
    np.testing.assert_allclose(study.batch_top[-1, :, 0], full, rtol=1e-5)
    assert study.noise_var[-1] < 1e-20


def test_study_noise_scales_as_inverse_batch(study):
    # Issue: fitted exponent of s^2 against B within 0.1 of -1 in the B << N range.
    assert abs(study.fit.exponent + 1) < 0.1
    assert study.fit.sigma2 > 0
    # Prediction built from the measured full spectrum and the fitted sigma^2, same batch sizes.
    np.testing.assert_array_equal(study.prediction.batch_size, study.batch_sizes)
    assert study.prediction.top.shape == (5,)
    assert np.all(np.isfinite(study.noise_top)) and np.all(study.wigner_edge[:-1] > 0)


def test_study_densities_normalized(study):
    for dens in [study.full_density, *study.batch_density]:
        assert abs(np.trapezoid(dens, study.grid) - 1) < 1e-3  # grid spans nodes +- 5 sigma
    assert study.moments.shape == (6, 2)


def test_ggn_study_runs_and_is_psd(problem):
    net, x, y, params = problem
    r = S.batch_hessian_study(net, x[:128], y[:128], [4, 32], kind="ggn", num_batches=1, top_k=1, params=params,
                              slq_steps=10, slq_probes=2, noise_probes=4, progress=False)
    assert r.kind == "ggn" and r.prediction.kind == "ggn"
    assert np.all(r.batch_top > 0) and r.full_top[0] > 0
    assert r.grid[0] > -1e-6 * r.grid[-1] - 5 * r.sigma  # PSD: no nodes well below zero


def test_training_divergence_is_a_result(problem):
    net, x, y, params = problem
    # A linear model under GD with lr * lambda_max >> 2 grows by ~lr lambda per step: inf within ~100 steps.
    lin = MLP(depth=0, width=1, activation="identity", b_std=0.1, out_dim=1)
    lin_params = lin.init(jax.random.PRNGKey(0), 6)
    t = S.train_full_batch(lin, lin_params, x[:64], y[:64], "mse", 300, 1e4)
    assert t.diverged_at is not None and t.steps_done == t.diverged_at < 300
    assert np.all(np.isfinite(H.flatten_params(t.params)))
    ok = S.train_full_batch(net, params, x[:64], y[:64], "mse", 5, 0.1)
    assert ok.diverged_at is None and ok.losses[-1] < ok.losses[0]


def test_bad_inputs(problem):
    net, x, y, params = problem
    with pytest.raises(ValueError, match="batch_sizes must be a non-empty list of integers in"):
        S.batch_hessian_study(net, x, y, [4096], params=params)
    with pytest.raises(ValueError, match="equal leading sizes"):
        S.batch_hessian_study(net, x, y[:10], [4], params=params)
    with pytest.raises(ValueError, match="kind must be one of"):
        S.batch_hessian_study(net, x, y, [4], kind="fisher", params=params)


def test_noise_bulks_are_the_random_matrix_densities():
    # the bulks the density figure draws are study fields; each is a probability density on its support:
    # the 200-point trapezoid rule on a square-root edge is accurate to ~1e-3 (error O(h^1.5), h = 1/50)
    xs, ys = S.noise_bulks("hessian", np.array([4, 1000]), np.array([0.01, 0.0]), 100, 1000, 0.1)
    assert np.all(np.isnan(xs[1])) and np.all(np.isnan(ys[1]))  # B = N: no noise, no bulk
    assert np.trapezoid(ys[0], xs[0]) == pytest.approx(1.0, abs=2e-3)
    assert xs[0, -1] == pytest.approx(2 * np.sqrt(0.01 * 100), rel=1e-12)  # Wigner edge 2 s sqrt(P)
    xg, yg = S.noise_bulks("ggn", np.array([8]), np.array([1e-4]), 100, 10 ** 6, 0.04)
    ok = np.isfinite(xg[0])
    assert ok.sum() == S.BULK_POINTS - 2  # strictly inside the Marchenko-Pastur edges
    # ratio P s^2 / sigma2 = 0.25 < 1: no atom, the continuous part has mass 1; the two edge cells left out
    # hold O(h^1.5) each, and 2e-2 leaves room for that and the trapezoid error
    assert np.trapezoid(yg[0][ok], xg[0][ok]) == pytest.approx(1.0, abs=2e-2)
