"""Tests of workbench.lr_batch: worked values, independent checks of every formula, the noisy
quadratic against McCandlish and the mean-square stability limit, estimators on a small MLP, sweeps."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.optimize import minimize_scalar

from workbench import experiments as ex
from workbench import lr_batch as lb
from workbench.experiments.sweep import _run_point
from workbench.hessian import mlp_loss
from workbench.stats import fit_loglog
from workbench.nets import MLP

# ----------------------------------------------------------------------------- worked values (the issue's)


def test_worked_values_mccandlish():
    assert lb.mccandlish_optimal_lr(100, 0.1, 100) == pytest.approx(0.05, rel=1e-12)
    assert lb.mccandlish_optimal_lr(1000, 0.1, 100) == pytest.approx(0.0909091, abs=5e-8)
    assert lb.simple_noise_scale(1.0, 100.0) == pytest.approx(100.0, rel=1e-12)
    g2, tr = lb.noise_scale_estimators(11.0, 1.1, 10, 1000)
    assert g2 == pytest.approx(1.0, rel=1e-12) and tr == pytest.approx(100.0, rel=1e-12)
    steps, examples = lb.critical_batch_tradeoff(1000, 1e5, 100)
    assert lb.mccandlish_critical_batch(1000, 1e5) == pytest.approx(100.0, rel=1e-12)
    assert steps == pytest.approx(2000.0, rel=1e-12) and examples == pytest.approx(2e5, rel=1e-12)


def test_worked_values_stability_and_scaling_laws():
    b = np.array([1, 2, 5, 100, 10_000])
    # h_i in {0, 2} equally likely: a = 1, s = 1 (population std), n = inf
    np.testing.assert_allclose(lb.sgd_stability_limit_1d(b, 1.0, 1.0), 2 * b / (b + 1), rtol=1e-12)
    lr, batch = lb.step_law(1e9, 1e11)
    assert round(lr, 7) == pytest.approx(1.6325e-3, abs=1e-10)  # 4 significant digits
    assert round(batch / 1e3) * 1e3 == pytest.approx(1.108e6)
    assert lb.kaplan_critical_batch(3.0) == pytest.approx(1.07e6, rel=5e-3)  # "about 1.07e6"


# ----------------------------------------------------------------------------- formulas vs independent computations


def test_eps_opt_minimizes_second_order_loss():
    """eps_opt(B) against a numerical minimizer of L - eps|G|^2 + eps^2/2 (G^T H G + tr(H Sigma)/B)."""
    g2, ghg, thsig = 0.7, 2.3, 41.0
    st = lb.noise_scale(g2, 5.0, ghg, thsig)
    for b in (1, 7, 100, 4096):
        f = lambda e: -e * g2 + 0.5 * e * e * (ghg + thsig / b)  # noqa: E731
        num = minimize_scalar(f, bounds=(0, 10), method="bounded", options={"xatol": 1e-12}).x
        # bounded Brent converges to ~1e-9 relative on this smooth parabola
        assert lb.mccandlish_optimal_lr(b, st.eps_max, st.b_noise) == pytest.approx(num, rel=1e-7)


def test_tradeoff_hyperbola_and_fit():
    b = np.geomspace(1, 1e4, 9)
    s, e = lb.critical_batch_tradeoff(300.0, 6e4, b)
    np.testing.assert_allclose((s / 300 - 1) * (e / 6e4 - 1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(e, b * s, rtol=1e-12)
    fit = lb.fit_steps_examples(b, s)  # exact data: least squares recovers S_min and E_min
    assert fit.s_min == pytest.approx(300.0, rel=1e-9) and fit.e_min == pytest.approx(6e4, rel=1e-9)
    assert fit.b_crit == pytest.approx(200.0, rel=1e-9)


def test_expected_batch_norm_exact_enumeration():
    """E|G_B|^2 = |G|^2 + c_B tr(Sigma) checked by enumerating every batch drawn without replacement."""
    rng = np.random.default_rng(0)
    n, p = 7, 3
    g = rng.normal(size=(n, p)) + 0.5
    mean = g.mean(0)
    tr_sigma = float(np.mean(np.sum((g - mean) ** 2, axis=1)))  # population (1/n) covariance
    for b in (1, 2, 3, 6, 7):
        exact = np.mean([np.sum(g[list(c)].mean(0) ** 2) for c in itertools.combinations(range(n), b)])
        model = lb.expected_batch_grad_sq_norm(float(mean @ mean), tr_sigma, b, num_data=n)
        assert model == pytest.approx(exact, rel=1e-12)
        if b < n:  # the estimators invert it exactly (means as inputs)
            big = lb.expected_batch_grad_sq_norm(float(mean @ mean), tr_sigma, n, num_data=n)
            g2_hat, tr_hat = lb.noise_scale_estimators(model, big, b, n, num_data=n)
            assert g2_hat == pytest.approx(float(mean @ mean), rel=1e-10)
            assert tr_hat == pytest.approx(tr_sigma, rel=1e-10)


def test_stability_limit_1d_exact_enumeration():
    """At lr_max(B), E(1 - lr h_B)^2 = 1 over every batch drawn without replacement from n curvatures."""
    h = np.array([0.1, 0.5, 0.7, 1.3, 2.0, 2.9, 3.1, 0.4])
    n = h.size
    a, s = h.mean(), h.std()  # population std, as the docstring says
    for b in (1, 2, 3, 5, 8):
        lr = lb.sgd_stability_limit_1d(b, a, s, num_data=n)
        hb = np.array([h[list(c)].mean() for c in itertools.combinations(range(n), b)])
        assert np.mean((1 - lr * hb) ** 2) == pytest.approx(1.0, rel=1e-12)
    assert lb.sgd_stability_limit_1d(n, a, s, num_data=n) == pytest.approx(2 / a, rel=1e-12)  # full batch = GD


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_eos_thresholds_are_spectral_radius_one(beta):
    """Heavy ball and Adam-style EMA momentum on a quadratic of curvature lam: the iteration matrix has
    spectral radius 1 exactly at the threshold, < 1 just below, > 1 just above."""
    lr = 0.03

    def radius_heavy_ball(lam):
        return max(abs(np.linalg.eigvals(np.array([[1 + beta - lr * lam, -beta], [1.0, 0.0]]))))

    def radius_ema(lam):  # m <- beta m + (1 - beta) lam theta ; theta <- theta - lr m  (fixed preconditioner)
        m_row = [beta, (1 - beta) * lam]
        return max(abs(np.linalg.eigvals(np.array([m_row, [-lr * beta, 1 - lr * (1 - beta) * lam]]))))

    for fn, opt in ((radius_heavy_ball, "momentum"), (radius_ema, "adam")):
        if opt == "adam" and beta == 0.0:
            continue
        thr = lb.eos_threshold(lr, opt, momentum=beta)
        assert fn(thr) == pytest.approx(1.0, abs=1e-9)
        assert fn(thr * 0.99) < 1 < fn(thr * 1.01)
    assert lb.eos_threshold(lr, "gd") == pytest.approx(2 / lr)
    assert lb.max_lr_from_sharpness(4.0, beta) == pytest.approx((2 + 2 * beta) / 4.0)


def test_power_law_fit_recovers_exponent():
    b = np.array([2.0, 4, 8, 16, 32, 64, 512])
    y = 0.01 * b ** 0.5
    y[-1] = 1.0  # saturated point, excluded by x_max
    fit = fit_loglog(b, y, x_max=64)
    assert fit.exponent == pytest.approx(0.5, abs=1e-12) and fit.prefactor == pytest.approx(0.01, rel=1e-12)
    assert fit.num_points == 6


def test_rmt_max_lr_limits():
    lam, p, s2 = 2.0, 400, 0.05
    b_star = lb.rmt_critical_batch(lam, p, s2)  # P sigma^2 / lambda^2 = 5
    b = np.array([200, 1000, 10_000])  # all above the BBP threshold s sqrt(P) < lambda
    np.testing.assert_allclose(lb.rmt_max_lr(b, lam, p, s2), (2 / lam) / (1 + b_star / b), rtol=1e-10)


# ----------------------------------------------------------------------------- noisy quadratic


@pytest.fixture(scope="module")
def quadratic():
    return lb.random_noisy_quadratic(jax.random.PRNGKey(0), 12, eig_min=0.05, eig_max=1.0, noise_std=1.0)


def test_quadratic_expected_loss_one_step_is_mccandlish(quadratic):
    """The exact second-moment recursion after one step equals McCandlish's expansion (computed in the
    original basis from G, H, Sigma): exact on a quadratic."""
    st = lb.noisy_quadratic_stats(quadratic)
    lam, q = np.asarray(quadratic.eigvals), np.asarray(quadratic.basis)
    theta = np.asarray(quadratic.theta0)
    l0 = 0.5 * theta @ (q * lam) @ q.T @ theta
    eps = np.geomspace(0.01, 3, 7)
    for b in (1, 10, 1000):
        got = lb.noisy_quadratic_expected_loss(quadratic, eps, b, 1)[:, 1]
        want = l0 - eps * st.g2 + 0.5 * eps ** 2 * (st.g_h_g + st.tr_h_sigma / b)
        np.testing.assert_allclose(got, want, rtol=1e-11)


def test_quadratic_measured_optimal_lr_matches_mccandlish(quadratic):
    """Measured one-step optimal lr (argmin over the grid of the mean loss over seeds) vs eps_opt(B)."""
    st = lb.noisy_quadratic_stats(quadratic)
    bs = np.array([2, 8, 32, 128, 1024])
    theory = lb.mccandlish_optimal_lr(bs, st.eps_max, st.b_noise)
    lrs = lb.lr_grid(theory.min() / 3, st.eps_max * 3, 30)
    ratio = lrs[1] / lrs[0]
    res = lb.simulate_noisy_quadratic(quadratic, lrs, bs, num_steps=1, seeds=3000)
    measured = lb.optimal_lr(res).value
    # grid resolution: the argmin can be at most one grid step from the true optimum (common random
    # numbers across lrs keep the seed-mean curve smooth; 3000 seeds make its noise small vs the grid)
    assert np.all(np.abs(np.log(measured / theory)) <= np.log(ratio) + 1e-12), (measured, theory)


@pytest.mark.parametrize("optimizer,beta", [("sgd", 0.0), ("momentum", 0.6)])
def test_quadratic_measured_max_stable_lr(quadratic, optimizer, beta):
    """Largest stable lr of SGD / heavy ball with additive noise vs the mean-square limit (2 + 2 beta)/lambda_max."""
    bs = np.array([1, 16, 256])
    limit = lb.noisy_quadratic_stability_limit(quadratic, bs, momentum=beta)
    lrs = lb.lr_grid(0.2, 20.0, 41)  # ratio 1.12
    res = lb.simulate_noisy_quadratic(quadratic, lrs, bs, num_steps=300, seeds=4, optimizer=optimizer,
                                      momentum=beta)
    got = lb.max_stable_lr(res).value
    assert not np.any(res.diverged[:, lrs <= limit[0] * 0.999])  # no false alarm below the limit
    # within one grid step: the largest stable grid point lies in (limit / ratio, limit]
    ratio = lrs[1] / lrs[0]
    assert np.all((got <= limit * (1 + 1e-12)) & (got > limit / ratio)), (got, limit)


def test_quadratic_multiplicative_noise_second_moment(key):
    """With per-example curvature noise the simulated mean loss after 3 steps matches the exact
    recursion ((1 - lr a)^2 + lr^2 s^2 / B per direction) within 4 standard errors (Monte Carlo)."""
    prob = lb.random_noisy_quadratic(key, 4, eig_min=0.3, eig_max=1.0, noise_std=0.5, curvature_std=2.0)
    lrs = np.array([0.2, 0.5, 0.9])
    res = lb.simulate_noisy_quadratic(prob, lrs, [1, 4], num_steps=3, seeds=20000, divergence_factor=1e30)
    for i, b in enumerate((1, 4)):
        exact = lb.noisy_quadratic_expected_loss(prob, lrs, b, 3)[:, -1]
        loss = res.train_loss[i, :, :, -1]
        se = loss.std(axis=1, ddof=1) / math.sqrt(loss.shape[1])
        assert np.all(np.abs(loss.mean(axis=1) - exact) < 4 * se), (loss.mean(axis=1), exact, se)
    # the mean-square limit is min_k 2 lam_k / (lam_k^2 + s^2 / B): below GD's 2 / lam_max for small B
    lim = lb.noisy_quadratic_stability_limit(prob, np.array([1, 10 ** 6]))
    assert lim[0] < 0.5 * lim[1] and lim[1] == pytest.approx(2.0, rel=1e-5)


# ----------------------------------------------------------------------------- measurements on a small MLP


@pytest.fixture(scope="module")
def mlp_problem():
    net = MLP(depth=1, width=6, activation="tanh", w_std=1.5, b_std=0.1)
    kx, ky, kp = jax.random.split(jax.random.PRNGKey(7), 3)
    x = jax.random.normal(kx, (40, 3))
    y = jnp.sin(x[:, :1]) + 0.3 * jax.random.normal(ky, (40, 1))
    return net, net.init(kp, 3), (x, y), mlp_loss(net, "mse")


def test_gradient_noise_stats_against_dense(mlp_problem):
    """Exact statistics vs an independent dense computation: jax.hessian of the full loss and a
    reverse-mode Jacobian of the vector of per-example losses (float64: agreement to ~1e-10 relative)."""
    net, params, (x, y), loss_fn = mlp_problem
    st = ex.gradient_noise_stats(loss_fn, params, (x, y), chunk_size=16)  # 40 = 2 chunks + padding
    flat, unravel = ravel_pytree(params)
    h = jax.jit(jax.hessian(lambda p: loss_fn(unravel(p), (x, y))))(flat)

    def losses(p):  # the vector of per-example losses; its Jacobian holds the per-example gradients
        return jnp.stack([loss_fn(unravel(p), (x[i:i + 1], y[i:i + 1])) for i in range(x.shape[0])])

    grads = np.asarray(jax.jit(jax.jacrev(losses))(flat))
    g = grads.mean(0)
    sigma = (grads - g).T @ (grads - g) / grads.shape[0]
    h = np.asarray(h)
    for got, want in ((st.g2, g @ g), (st.tr_sigma, np.trace(sigma)), (st.g_h_g, g @ h @ g),
                      (st.tr_h_sigma, np.sum(h * sigma))):
        assert got == pytest.approx(float(want), rel=1e-9)
    assert st.b_noise == pytest.approx(float(np.sum(h * sigma) / (g @ h @ g)), rel=1e-9)


def test_curvature_stats_against_dense(mlp_problem, key):
    """lambda1 and the per-example curvatures along its eigenvector against dense per-example Hessians
    (jax.hessian, vmapped): exact up to rounding; sigma^2 (Hutchinson, 64 probes) within 4 standard errors."""
    _, params, (x, y), loss_fn = mlp_problem
    cs = ex.curvature_stats(loss_fn, params, (x, y), num_probes=64, key=key)
    flat, unravel = ravel_pytree(params)
    hs = jax.jit(jax.vmap(lambda xi, yi: jax.hessian(lambda p: loss_fn(unravel(p), (xi[None], yi[None])))(flat)))(x, y)
    hs = np.asarray(hs)
    h = hs.mean(0)
    w, v = np.linalg.eigh(h)
    assert cs.lambda1 == pytest.approx(w[-1], rel=1e-10)
    assert abs(float(cs.direction @ v[:, -1])) == pytest.approx(1.0, abs=1e-8)
    along = np.einsum("p,ipq,q->i", cs.direction, hs, cs.direction)
    assert cs.curv_mean == pytest.approx(along.mean(), rel=1e-9)
    assert cs.curv_std == pytest.approx(along.std(), rel=1e-9)
    sigma2 = np.mean(np.sum((hs - h) ** 2, axis=(1, 2))) / h.shape[0] ** 2
    assert abs(cs.sigma2 - sigma2) < 4 * cs.sigma2_se


@pytest.mark.parametrize("replace", [False, True])
def test_two_batch_estimators_agree_with_exact(mlp_problem, key, replace):
    """Two-batch estimates over repeated draws within 3 standard errors of the exact statistics."""
    _, params, data, loss_fn = mlp_problem
    st = ex.gradient_noise_stats(loss_fn, params, data)
    est = ex.two_batch_noise_scale(loss_fn, params, data, 2, 20, num_draws=300, key=key, replace=replace)
    assert abs(est.g2 - st.g2) < 3 * est.g2_se
    assert abs(est.tr_sigma - st.tr_sigma) < 3 * est.tr_sigma_se
    assert abs(est.b_simple - st.b_simple) < 3 * est.b_simple_se
    assert est.tr_sigma_se < 0.2 * st.tr_sigma  # the check has power: the errors are small


# ----------------------------------------------------------------------------- sweep analysis and sweeps


def _fake_result():
    lrs = np.array([0.1, 0.2, 0.4, 0.8])
    steps = np.array([0, 10, 20])
    loss = np.ones((2, 4, 2, 3))
    loss[..., 1] = [[[0.5, 0.6], [0.4, 0.3], [0.2, 0.25], [np.nan, np.nan]],
                    [[0.5, 0.5], [0.45, 0.4], [0.3, 0.35], [0.1, 5.0]]]
    loss[..., 2] = loss[..., 1] / 2
    div = np.zeros((2, 4, 2), bool)
    div[0, 3, :] = True
    div[1, 3, 1] = True
    div_step = np.where(div, 5, -1)
    loss[div] = np.nan
    return lb.SweepResult("sgd", np.array([4, 16]), lrs, np.array([0, 1]), steps, loss, div, div_step,
                          np.zeros(2), "test")


def test_sweep_analysis_on_handmade_result():
    res = _fake_result()
    ms = lb.max_stable_lr(res)
    np.testing.assert_allclose(ms.value, [0.4, 0.4])
    np.testing.assert_allclose(ms.per_seed, [[0.4, 0.4], [0.8, 0.4]])
    opt = lb.optimal_lr(res)
    np.testing.assert_allclose(opt.value, [0.4, 0.4])  # B=16: lr 0.8 has a diverged seed -> mean inf
    np.testing.assert_allclose(opt.per_seed, [[0.4, 0.4], [0.8, 0.4]])
    assert np.all(opt.lo <= opt.value) and np.all(opt.hi >= opt.value)
    s = lb.steps_to_target(res, 0.2)
    assert s[0, 2, 0] == 10 and s[0, 1, 1] == 20 and np.isinf(s[0, 0, 0]) and np.isinf(s[0, 3, 0])
    # per B: min over lr of the median over seeds (B=4: lr 0.4 has seeds at 10 and 20 -> 15)
    np.testing.assert_allclose(lb.steps_to_target_per_batch(res, 0.2), [15, 20])
    assert np.all(np.isinf(lb.final_loss(res)[0, 3]))


@pytest.fixture(scope="module")
def tiny_sweep_setup():
    net = MLP(depth=1, width=8, activation="tanh", w_std=1.5, b_std=0.1, parametrization="standard")
    kx, kp = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(kx, (32, 3))
    y = jnp.tanh(x[:, :1] - x[:, 1:2])
    return mlp_loss(net, "mse"), (lambda k: net.init(k, 3)), (x, y), net.describe()


def test_sweep_divergence_resume_and_interrupt(tiny_sweep_setup, tmp_path, monkeypatch):
    loss_fn, init_fn, data, tag = tiny_sweep_setup
    kw = dict(batch_sizes=[4, 16], lrs=[0.05, 0.5, 500.0], seeds=2, num_steps=30, record_every=10,
              optimizers=("sgd",), results_dir=str(tmp_path), tag=tag, progress=False)
    # interrupt during the second batch size: the first is kept on disk and returned
    calls = {"n": 0}
    import workbench.training as training

    real_train = training.train

    def interrupting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            def cb(_steps):
                raise KeyboardInterrupt
            k["callback"] = cb
        return real_train(*a, **k)

    monkeypatch.setattr(training, "train", interrupting)
    part = ex.sweep(loss_fn, init_fn, data, **kw)
    assert not part["sgd"].completed and part["sgd"].batch_sizes.tolist() == [4]
    assert len(list(tmp_path.glob("sgd_B4_*.npz"))) == 1 and not list(tmp_path.glob("sgd_B16_*"))
    monkeypatch.setattr(training, "train", real_train)
    full = ex.sweep(loss_fn, init_fn, data, **kw)  # resumes: trains only B = 16
    r = full["sgd"]
    assert r.completed and r.batch_sizes.tolist() == [4, 16] and r.train_loss.shape == (2, 3, 2, 4)
    np.testing.assert_array_equal(r.train_loss[0], part["sgd"].train_loss[0])
    assert np.all(r.diverged[:, 2]) and not np.any(r.diverged[:, 0])  # lr = 500 diverges, no crash
    assert np.all(np.isfinite(r.train_loss[:, 0]))

    def no_training(*a, **k):
        raise AssertionError("a finished point was retrained")

    monkeypatch.setattr(training, "train", no_training)
    again = ex.sweep(loss_fn, init_fn, data, **kw)  # everything loads from disk
    np.testing.assert_array_equal(again["sgd"].train_loss, r.train_loss)
    # a changed configuration does not reuse the files
    with pytest.raises(AssertionError, match="retrained"):
        ex.sweep(loss_fn, init_fn, data, **{**kw, "num_steps": 20})


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs(tiny_sweep_setup, quadratic):
    loss_fn, init_fn, data, _ = tiny_sweep_setup
    base = dict(lrs=[0.1], num_steps=5, progress=False)
    with pytest.raises(ValueError, match="batch_sizes must not be empty"):
        ex.sweep(loss_fn, init_fn, data, batch_sizes=[], **base)
    with pytest.raises(ValueError, match="batch_sizes must be integers >= 1"):
        ex.sweep(loss_fn, init_fn, data, batch_sizes=[0, 4], **base)
    with pytest.raises(ValueError, match="must not exceed the number of training examples"):
        ex.sweep(loss_fn, init_fn, data, batch_sizes=[64], **base)
    with pytest.raises(ValueError, match="lrs must be > 0"):
        ex.sweep(loss_fn, init_fn, data, batch_sizes=[4], lrs=[0.1, -1.0], num_steps=5)
    with pytest.raises(ValueError, match="optimizers must be one of"):
        ex.sweep(loss_fn, init_fn, data, batch_sizes=[4], optimizers=("lbfgs",), **base)
    with pytest.raises(TypeError, match="batch_sizes must be integers"):
        lb.check_batch_sizes([2.5])
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        lb.mccandlish_optimal_lr(0, 0.1, 10)
    with pytest.raises(ValueError, match="eps_max must be > 0"):
        lb.mccandlish_optimal_lr(4, -0.1, 10)
    with pytest.raises(ValueError, match="b_big must be larger than b_small"):
        lb.noise_scale_estimators(1.0, 1.0, 10, 10)
    with pytest.raises(ValueError, match="g_h_g"):
        lb.noise_scale(1.0, 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="batch_size must not exceed num_data"):
        lb.sgd_stability_limit_1d(20, 1.0, 1.0, num_data=10)
    with pytest.raises(ValueError, match="sharpness must be > 0"):
        lb.sgd_stability_limit_1d(2, 0.0, 1.0)
    with pytest.raises(ValueError, match="loss must be finite"):
        lb.kaplan_critical_batch(np.nan)
    with pytest.raises(ValueError, match="num_tokens must be > 0"):
        lb.step_law(1e9, 0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        lb.eos_threshold(0.1, "rmsprop")
    with pytest.raises(ValueError, match="momentum must be in"):
        lb.simulate_noisy_quadratic(quadratic, [0.1], [1], num_steps=2, optimizer="momentum", momentum=1.0)
    with pytest.raises(ValueError, match="need at least 2 batch sizes"):
        lb.fit_steps_examples([1, 2, 3], [np.inf, np.inf, 5.0])
    with pytest.raises(ValueError, match="lr_max must be > lr_min"):
        lb.lr_grid(1.0, 0.5, 4)
    with pytest.raises(TypeError, match="result must be a SweepResult"):
        lb.max_stable_lr({"lrs": 1})


def test_lr_grid_sharding_over_devices_reassembles_in_order():
    """With several devices the lr grid is split into contiguous chunks (one thread each) and the results
    are concatenated back in grid order (a fake train records which lrs each call got)."""
    from types import SimpleNamespace

    calls = []

    def fake_train(loss_fn, init_fn, data, *, lrs, progress, **kw):
        calls.append(np.asarray(lrs).tolist())
        lrs = np.asarray(lrs)
        loss = np.broadcast_to(lrs[:, None, None], (lrs.size, 2, 3)).copy()
        return SimpleNamespace(train_loss=loss, diverged=lrs[:, None] > 1.0 + np.zeros((1, 2)),
                               diverged_step=np.full((lrs.size, 2), -1), steps=np.array([0, 1, 2]), completed=True)

    lrs = np.array([0.1, 0.3, 1.0, 3.0, 10.0])
    dev = jax.devices()[0]
    row = _run_point(fake_train, [dev, dev], None, None, jnp.zeros((4, 1)), jnp.zeros((4, 1)), lrs,
                        progress=False)
    assert sorted(calls) == [[0.1, 0.3, 1.0], [3.0, 10.0]]
    np.testing.assert_array_equal(row["train_loss"][:, 0, 0], lrs)
    np.testing.assert_array_equal(row["diverged"][:, 0], lrs > 1.0)
