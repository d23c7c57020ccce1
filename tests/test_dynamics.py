"""Tests of workbench.dynamics: closed forms against the issue's worked case, an ODE solve, explicit GD
iteration, matrix exponentials, Monte Carlo over initializations, and real wide-network training."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import solve_ivp

from workbench.dynamics import (
    UnstableLearningRateWarning,
    gradient_descent,
    gradient_flow,
    max_lr_from_ntk,
)

X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
XS = np.array([[0.8, 0.6]])
Y = np.array([1.0, -0.5, 0.3])


def relu_ntk_1hidden(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Infinite-width NTK of a 1-hidden-layer relu net, w_std^2 = 2, b_std = 0, unit-norm inputs in R^2.

    Independent closed form (docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net with K^1 = x.x' = cos th): Theta = (sin th + 2 (pi - th) cos th) / pi.
    """
    u = np.clip(a @ b.T, -1.0, 1.0)
    th = np.arccos(u)
    return (np.sin(th) + 2 * (np.pi - th) * u) / np.pi


def relu_nngp_1hidden(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    u = np.clip(a @ b.T, -1.0, 1.0)
    th = np.arccos(u)
    return (np.sin(th) + (np.pi - th) * u) / np.pi


@pytest.fixture
def worked():
    return relu_ntk_1hidden(X, X), relu_ntk_1hidden(XS, X)


def test_worked_case_of_the_issue(worked):
    # Values from the issue (independent check); float64 closed form: 1e-10 absolute.
    k, ks = worked
    predict = gradient_flow(k, Y, lr=1.0, loss="sum")
    f_train, f_test = predict(0.5, ntk_test_train=ks)
    np.testing.assert_allclose(f_train, [0.467566583250, 0.058416564272, 0.001187211562], atol=1e-10)
    np.testing.assert_allclose(f_test, [0.182860338256], atol=1e-10)
    np.testing.assert_allclose(predict.train_loss(0.5), 0.342301742530, atol=1e-10)
    _, f_inf = predict(np.inf, ntk_test_train=ks)
    np.testing.assert_allclose(f_inf, [-0.16792656378], atol=1e-10)


def test_matches_ode_solve_with_init_ridge_and_both_losses(worked, key):
    # solve_ivp (DOP853, rtol 1e-10, atol 1e-12) integrates df/dt = -lr' (Theta + ridge)(f - y),
    # df*/dt = -lr' Theta*X (f - y) directly: agreement to ~1e-9 is the ODE solver's accuracy.
    k, ks = worked
    rng = np.random.default_rng(0)
    y2 = rng.standard_normal((3, 2))  # two outputs share the kernel
    f0 = rng.standard_normal((3, 2))
    f0s = rng.standard_normal((1, 2))
    for loss, ridge, lr in (("sum", 0.0, 0.7), ("mean", 0.05, 3.0)):
        scale = lr * (1.0 if loss == "sum" else 1.0 / y2.size)
        kr = k + ridge * np.eye(3)

        def rhs(_t, z):
            f = z[:6].reshape(3, 2)
            r = f - y2
            return np.concatenate([(-scale * kr @ r).ravel(), (-scale * ks @ r).ravel()])

        times = np.array([0.0, 0.3, 1.0, 4.0])
        sol = solve_ivp(rhs, (0, times[-1]), np.concatenate([f0.ravel(), f0s.ravel()]), t_eval=times,
                        method="DOP853", rtol=1e-10, atol=1e-12)
        predict = gradient_flow(k, y2, lr=lr, ridge=ridge, loss=loss, ntk_test_train=ks)
        f_train, f_test = predict(times, f0_train=f0, f0_test=f0s)
        np.testing.assert_allclose(f_train.reshape(4, 6), sol.y[:6].T, atol=1e-9, rtol=1e-9)
        np.testing.assert_allclose(f_test.reshape(4, 2), sol.y[6:].T, atol=1e-9, rtol=1e-9)


def test_mean_loss_is_sum_loss_at_rescaled_time(worked):
    # neural-tangents' convention: time t under "mean" equals t / (n k) under "sum" (exact algebra).
    k, ks = worked
    y2 = np.stack([Y, -Y], axis=1)
    s = gradient_flow(k, y2, ntk_test_train=ks)
    m = gradient_flow(k, y2, loss="mean", ntk_test_train=ks)
    np.testing.assert_allclose(m(6.0)[1], s(1.0)[1], rtol=1e-12)


def test_gradient_descent_matches_explicit_iteration_and_expm(worked):
    # The loop f <- f - lr Theta (f - y) is the definition; 1e-12: only rounding differs.
    k, ks = worked
    lr = 0.2
    gd = gradient_descent(k, Y, lr=lr, ntk_test_train=ks)
    f, fs = np.zeros(3), np.zeros(1)
    out = []
    for j in range(31):
        out.append((f.copy(), fs.copy()))
        r = f - Y
        f, fs = f - lr * k @ r, fs - lr * ks @ r
    ft, fst = gd(np.arange(31))
    np.testing.assert_allclose(ft, np.array([o[0] for o in out]), atol=1e-12)
    np.testing.assert_allclose(fst, np.array([o[1] for o in out]), atol=1e-12)
    # t = inf for stable GD is the same fixed point as gradient flow
    np.testing.assert_allclose(gd(np.inf)[1], gradient_flow(k, Y, ntk_test_train=ks)(np.inf)[1], atol=1e-12)
    # and the flow equals y + expm(-lr Theta t)(f0 - y) computed with scipy's expm (Pade, independent of eigh)
    f_flow, _ = gradient_flow(k, Y, lr=0.5)(2.0)
    np.testing.assert_allclose(f_flow, Y - scipy.linalg.expm(-0.5 * 2.0 * k) @ Y, atol=1e-12)


def test_unstable_gradient_descent_is_reported(worked):
    k, _ = worked
    lam_max = np.linalg.eigvalsh(k)[-1]
    assert max_lr_from_ntk(k) == pytest.approx(2 / lam_max, rel=1e-12)
    assert max_lr_from_ntk(k, loss="mean") == pytest.approx(2 * 3 / lam_max, rel=1e-12)
    with pytest.warns(UnstableLearningRateWarning, match="stability limit"):
        gd = gradient_descent(k, Y, lr=1.1 * 2 / lam_max)
    assert not gd.stable and gd.lr_max == pytest.approx(2 / lam_max)
    losses = gd.train_loss(np.array([0, 50, 100]))
    assert losses[2] > losses[1] > losses[0]  # the unstable top mode grows like 1.2^steps
    assert gradient_descent(k, Y, lr=0.9 * 2 / lam_max).stable


def test_mode_residuals_decay_at_their_own_rates(worked):
    # Project the ODE-free matrix-exponential solution onto the eigenvectors: exp(-lr lambda_k t) per mode,
    # so the top mode is the fastest.
    k, _ = worked
    predict = gradient_flow(k, Y, lr=0.8)
    lam, vec = np.linalg.eigh(k)
    lam, vec = lam[::-1], vec[:, ::-1]
    t = np.array([0.0, 0.5, 2.0])
    res = predict.mode_residuals(t)
    direct = np.stack([vec.T @ (scipy.linalg.expm(-0.8 * k * tt) @ (-Y)) for tt in t])
    np.testing.assert_allclose(np.abs(res), np.abs(direct), atol=1e-12)  # eigenvector signs are arbitrary
    ratio = np.abs(res[2] / res[0])
    np.testing.assert_allclose(ratio, np.exp(-0.8 * lam * 2.0), rtol=1e-10)
    assert ratio[0] < ratio[1] < ratio[2]
    np.testing.assert_allclose(predict.train_loss(t), 0.5 * np.sum(direct ** 2, axis=1), rtol=1e-12)


def test_singular_kernel_uses_the_pseudo_inverse():
    # rank-1 kernel of a linear model on 3 collinear inputs: null modes never move and add nothing at x*.
    xs = np.array([[1.0], [2.0], [-1.0]])
    k = xs @ xs.T
    kst = np.array([[0.5]]) @ xs.T
    y = np.array([1.0, 0.0, 2.0])
    _, f = gradient_flow(k, y, ntk_test_train=kst)(np.inf)
    np.testing.assert_allclose(f, kst @ np.linalg.pinv(k) @ y, atol=1e-12)
    _, f5 = gradient_flow(k, y, ntk_test_train=kst)(5.0)
    assert np.all(np.isfinite(f5))


def test_ensemble_mean_and_covariance(worked):
    # (a) against the explicit linear map f_t(x*) = A y + f0(x*) - A f0(X), A from scipy expm and solve;
    # (b) against Monte Carlo over f0 ~ GP(0, K): 4000 draws, means within 4 standard errors.
    k, ks = worked
    kk = relu_nngp_1hidden(X, X)
    kxs = relu_nngp_1hidden(XS, X)
    kss = relu_nngp_1hidden(XS, XS)
    predict = gradient_flow(k, Y, lr=1.0, ntk_test_train=ks)
    t = 0.7
    ens = predict.ensemble(t, kk, nngp_test_train=kxs, nngp_test_test=kss)
    a = ks @ np.linalg.solve(k, np.eye(3) - scipy.linalg.expm(-k * t))
    lin = np.concatenate([-a, np.eye(1)], axis=1)
    joint = np.block([[kk, kxs.T], [kxs, kss]])
    np.testing.assert_allclose(ens.mean_test, a @ Y, atol=1e-12)
    np.testing.assert_allclose(ens.cov_test, lin @ joint @ lin.T, atol=1e-12)
    e = scipy.linalg.expm(-k * t)
    np.testing.assert_allclose(ens.cov_train, e @ kk @ e, atol=1e-12)

    rng = np.random.default_rng(1)
    draws = rng.multivariate_normal(np.zeros(4), joint, size=4000)
    samples = np.array([predict(t, f0_train=d[:3], f0_test=d[3:])[1][0] for d in draws])
    se = samples.std() / np.sqrt(len(samples))
    assert abs(samples.mean() - ens.mean_test[0]) < 4 * se
    # variance of a Gaussian sample: relative standard error sqrt(2 / n) = 2.2%; allow 4 of them
    assert samples.var() == pytest.approx(ens.cov_test[0, 0], rel=4 * np.sqrt(2 / len(samples)))
    # t = inf: training covariance vanishes (the net interpolates), test covariance stays
    ens_inf = predict.ensemble(np.inf, kk, nngp_test_train=kxs, nngp_test_test=kss)
    np.testing.assert_allclose(ens_inf.cov_train, 0.0, atol=1e-12)
    assert ens_inf.cov_test[0, 0] > 0


def test_time_array_shapes(worked):
    k, ks = worked
    f_train, f_test = gradient_flow(k, Y, ntk_test_train=ks)(np.array([0.0, 1.0, np.inf]))
    assert f_train.shape == (3, 3) and f_test.shape == (3, 1)
    np.testing.assert_allclose(f_train[0], 0.0, atol=1e-14)
    np.testing.assert_allclose(f_train[2], Y, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ntk_train=np.array([[1.0, 0.2], [0.3, 1.0]]), y_train=np.ones(2)), "not symmetric"),
        (dict(ntk_train=np.array([[1.0, np.nan], [np.nan, 1.0]]), y_train=np.ones(2)), "non-finite"),
        (dict(ntk_train=np.array([[1.0, 2.0], [2.0, 1.0]]), y_train=np.ones(2)), "positive semi-definite"),
        (dict(ntk_train=np.eye(2), y_train=np.ones(3)), "shape"),
        (dict(ntk_train=np.eye(2), y_train=np.ones(2), lr=-1.0), "lr must be > 0"),
        (dict(ntk_train=np.eye(2), y_train=np.ones(2), ridge=-1.0), "ridge must be >= 0"),
        (dict(ntk_train=np.eye(2), y_train=np.ones(2), loss="max"), "loss must be one of"),
        (dict(ntk_train=np.ones((2, 3)), y_train=np.ones(2)), "square"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradient_flow(**kwargs)


def test_bad_calls(worked):
    k, ks = worked
    predict = gradient_flow(k, Y)
    with pytest.raises(ValueError, match="t must be >= 0"):
        predict(-1.0)
    with pytest.raises(ValueError, match="NaN"):
        predict(np.nan)
    with pytest.raises(ValueError, match=r"ntk_test_train must have shape \(m, 3\)"):
        predict(1.0, ntk_test_train=np.ones((1, 2)))
    with pytest.raises(ValueError, match="f0_train must have shape"):
        predict(1.0, f0_train=np.ones(2))
    with pytest.raises(ValueError, match="f0_test needs ntk_test_train"):
        predict(1.0, f0_test=np.ones(1))
    with pytest.raises(ValueError, match="steps must be non-negative integers"):
        gradient_descent(k, Y, lr=0.1)(1.5)
    with pytest.raises(ValueError, match="nngp_test_train"):
        predict.ensemble(1.0, k, ntk_test_train=ks)


def test_wide_network_follows_the_closed_form(key):
    # Real full-batch GD on NTK-parametrized 1-hidden-layer relu nets against the closed-form *discrete* GD of
    # the infinite-width NTK (independent closed form above), started from each net's own f_0. The gap is
    # the finite-width error, O(1/sqrt(width)), and it varies from seed to seed (measured: 2-6% at width
    # 2048), so the statistic is the mean over 6 seeds of the largest relative error over the run
    # (measured 0.038 at width 2048, 0.08 at 256): below 5% (the issue's bar) and shrinking with width.
    from workbench.nets import MLP
    from workbench.training import train_mlp

    angles = np.linspace(0.1, 2 * np.pi, 8, endpoint=False)
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    xt = np.stack([np.cos(angles + 0.3), np.sin(angles + 0.3)], axis=1)
    y = np.sin(2 * angles)[:, None]
    k, kst = relu_ntk_1hidden(x, x), relu_ntk_1hidden(xt, x)
    lr, steps = 0.05, 120  # lr well below 2 / lambda_max = 0.27
    gd = gradient_descent(k, y, lr=lr, ntk_test_train=kst)
    errors = {}
    for width in (256, 2048):
        net = MLP(depth=1, width=width, activation="relu", w_std=2 ** 0.5, b_std=None)
        res = train_mlp(net, (x, y), lrs=lr, seeds=tuple(range(6)), num_steps=steps, record_every=20,
                        x_eval=np.concatenate([x, xt]), progress=False)
        out = res.evals[0]  # (seeds, R, 16, 1)
        rel = []
        for s in range(6):
            f0 = out[s, 0]
            _, pred = gd(res.steps, f0_train=f0[:8], f0_test=f0[8:])
            meas = out[s, :, 8:]
            rel.append(np.max(np.linalg.norm(meas - pred, axis=(1, 2)) / np.linalg.norm(pred, axis=(1, 2))))
        errors[width] = float(np.mean(rel))
    assert errors[2048] < 0.05, errors
    assert errors[2048] < 0.6 * errors[256], errors
