"""Tests of workbench.linalg.krylov against dense linear algebra (numpy.linalg.eigvalsh, traces)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import hessian as H
from workbench.linalg import krylov as K
from workbench.nets import MLP


def _dense_matvec(v, a):
    return a @ v


def dense_op(a):
    """A dense matrix as an operator whose product is one module-level function: jit caches are shared."""
    return K.LinearOperator(_dense_matvec, (a,), a.shape[0], a.dtype)


@pytest.fixture(scope="module")
def mlp_hessian():
    """A tanh MLP with 2,103 parameters (a few thousand), its Hessian operator and dense spectrum."""
    net = MLP(depth=2, width=40, activation="tanh", b_std=0.1, out_dim=3)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(7), 3)
    params = net.init(k1, 8)
    x = jax.random.normal(k2, (24, 8))
    y = jax.nn.one_hot(jax.random.randint(k3, (24,), 0, 3), 3)
    op = H.hessian_operator(H.mlp_loss(net, "cross_entropy"), params, (x, y))
    dense = np.asarray(op.dense(chunk_size=512))
    return op, dense, np.linalg.eigvalsh(dense)


def test_lanczos_top_and_bottom_match_eigvalsh(mlp_hessian, key):
    op, dense, evals = mlp_hessian
    assert op.dim > 2000
    top = K.top_eigenvalues(op, k=4, key=key)
    want = evals[::-1][:4]
    # Issue requirement: 1e-6 relative in float64. The default rtol (1e-8 in float64) stops when every
    # error bound min(r, r^2/gap) <= 1e-8 |theta|, and each bound holds against the dense spectrum.
    np.testing.assert_allclose(top.eigenvalues, want, rtol=1e-6)
    assert top.converged and np.all(top.error_bounds <= 1e-8 * np.abs(top.eigenvalues))
    assert np.all(np.abs(top.eigenvalues - want) <= top.error_bounds)
    # The cheap residual |beta_m s_m| equals the explicit |A y - theta y| (up to rounding of A y).
    explicit = np.linalg.norm(np.asarray(top.eigenvectors) @ dense - top.eigenvalues[:, None] * np.asarray(top.eigenvectors), axis=1)
    np.testing.assert_allclose(top.residuals, explicit, atol=1e-12 * abs(want[0]))
    bottom = K.bottom_eigenvalues(op, k=2, key=key)
    np.testing.assert_allclose(bottom.eigenvalues, evals[:2], rtol=1e-6)


def test_pair_operator_and_fixed_depth(key):
    lam = np.linspace(1.0, 2.0, 50)
    lam[-1] = 3.0
    a = jnp.diag(jnp.asarray(lam))
    res = K.top_eigenvalues((lambda v: a @ v, 50), k=2, key=key, num_iters=50)  # the (matvec, dim) form
    np.testing.assert_allclose(res.eigenvalues, [3.0, lam[-2]], rtol=1e-12)  # full depth = exact up to rounding
    assert res.num_matvecs == 50 + 2  # 50 Lanczos steps and the 2 extra symmetry probes
    power = K.top_eigenvalues(dense_op(a), method="power", tol=1e-10, key=key)
    # ratio 2/3 per step: 1e-10 relative change reached well within 1000 steps; the value error is
    # bounded by the final residual.
    assert abs(power.eigenvalues[0] - 3.0) <= power.residuals[0] + 1e-9


def test_power_iteration_stops_early_on_clustered_spectrum(key):
    # Top eigenvalues 1.0 and 0.99: PyHessian's stopping rule (relative change < 1e-3) stops far
    # from converged; Lanczos does not. This is the failure the issue describes.
    lam = np.concatenate([np.linspace(0.0, 0.5, 198), [0.99, 1.0]])
    a = jnp.diag(jnp.asarray(lam))
    power = K.top_eigenvalues(dense_op(a), method="power", tol=1e-3, key=key)
    lanczos = K.top_eigenvalues(dense_op(a), key=key)
    assert abs(lanczos.eigenvalues[0] - 1.0) < 1e-10
    assert abs(power.eigenvalues[0] - 1.0) > 10 * abs(lanczos.eigenvalues[0] - 1.0)
    assert not power.converged


def _sym_matrix(key, n, decay):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (n, n)))
    lam = jnp.arange(1, n + 1, dtype=float) ** (-decay)
    return (q * lam[None, :]) @ q.T


@pytest.mark.parametrize("method", K.TRACE_METHODS)
def test_trace_estimators_within_their_standard_error(key, method):
    a = _sym_matrix(key, 120, 1.0)
    true = float(jnp.trace(a))
    est = K.hutchinson_trace(dense_op(a), 60, key=jax.random.fold_in(key, 1), method=method)
    # Fixed seed; 4 standard errors (XTrace's error estimate is conservative, Epperly et al. 2024).
    assert abs(est.trace - true) <= 4 * est.stderr
    assert est.num_matvecs <= 60


def test_hutchinson_stderr_matches_theory(key):
    # Var(z^T A z) = 2 (||A||_F^2 - sum_i A_ii^2) for Rademacher z (Hutchinson 1989).
    a = _sym_matrix(key, 80, 0.5)
    m = 400
    est = K.hutchinson_trace(dense_op(a), m, key=jax.random.fold_in(key, 2), method="hutchinson")
    theory = math.sqrt(2 * (float(jnp.sum(a * a)) - float(jnp.sum(jnp.diag(a) ** 2))) / m)
    # The sample std of m = 400 draws has relative standard error about sqrt((kurt - 1)/(4 m)) ~ 5%;
    # 25% allows 5 of those.
    assert abs(est.stderr / theory - 1) < 0.25


def test_hutchpp_beats_hutchinson_on_fast_decay(key):
    a = _sym_matrix(key, 200, 2.0)  # eigenvalues k^-2: the top few carry most of the trace
    true = float(jnp.trace(a))
    hutch = K.hutchinson_trace(dense_op(a), 60, key=jax.random.fold_in(key, 3), method="hutchinson")
    pp = K.hutchinson_trace(dense_op(a), 60, key=jax.random.fold_in(key, 3), method="hutch++")
    assert pp.stderr < hutch.stderr / 3
    assert abs(pp.trace - true) <= 4 * pp.stderr


def test_slq_moments_match_dense_traces(mlp_hessian, key):
    op, dense, evals = mlp_hessian
    d = K.slq_density(op, 30, 12, key=key, grid=400)
    m1, m2 = np.mean(evals), np.mean(evals ** 2)
    # The first two SLQ moments are Hutchinson estimates of tr(H)/P and tr(H^2)/P (exact Gauss
    # quadrature for degree <= 2m - 1): within 4 of their stated standard errors.
    assert abs(d.moments[0] - m1) <= 4 * d.moment_stderr[0]
    assert abs(d.moments[1] - m2) <= 4 * d.moment_stderr[1]
    np.testing.assert_allclose(d.weights.sum(axis=1), 1.0, atol=1e-12)
    # Broadened density integrates to 1 (grid spans nodes +- 5 sigma: the missing tail is < 1e-6).
    assert abs(np.trapezoid(d.density, d.grid) - 1.0) < 1e-5
    assert d.num_matvecs == 30 * 12


def test_slq_density_of_known_spectrum(key):
    # Two clusters at 1 and 3 with masses 0.25 and 0.75: SLQ mass near each cluster.
    lam = np.concatenate([np.full(50, 1.0), np.full(150, 3.0)]) + np.linspace(0, 0.01, 200)
    a = jnp.diag(jnp.asarray(lam))
    d = K.slq_density(dense_op(a), 10, 40, key=key, grid=np.linspace(0, 4, 801), sigma=0.05)
    left = np.trapezoid(np.where(d.grid < 2, d.density, 0.0), d.grid)
    # Per-probe mass on the first cluster is |z_1|^2/|z|^2 with variance ~ 2 (0.25 * 0.75)/200 / ... ;
    # the 40-probe mean has standard error < 0.01: 0.04 is 4 of those.
    assert abs(left - 0.25) < 0.04


def test_difference_and_squared_norms(key):
    a = _sym_matrix(key, 60, 0.5)
    b = 0.5 * a + jnp.eye(60)
    diff = K.difference(dense_op(a), (lambda v: b @ v, 60))
    v = jnp.ones(60)
    np.testing.assert_allclose(diff.matvec(v), (a - b) @ v, atol=1e-13)
    vals = K.squared_norms(diff, 200, key=key)
    frob = float(jnp.sum((a - b) ** 2))
    assert abs(vals.mean() - frob) <= 4 * vals.std(ddof=1) / math.sqrt(200)


def test_non_finite_products_report_where(key):
    a = jnp.diag(jnp.arange(1.0, 31.0)).at[3, 3].set(jnp.nan)
    pair = dense_op(a)
    with pytest.raises(ValueError, match="non-finite matrix-vector product .* Lanczos step 1 of"):
        K.top_eigenvalues(pair, key=key, num_iters=10)
    with pytest.raises(ValueError, match="power iteration at step 1"):
        K.top_eigenvalues(pair, method="power", key=key)
    with pytest.raises(ValueError, match="non-finite matrix-vector product .* probe 1 of"):
        K.hutchinson_trace(pair, 10, key=key)
    with pytest.raises(ValueError, match="non-finite matrix-vector product .* probe 1 of"):
        K.slq_density(pair, 5, 3, key=key)


def test_bad_inputs(key):
    pair = (lambda v: 2 * v, 10)
    with pytest.raises(ValueError, match="k must be <= the operator dimension 10"):
        K.top_eigenvalues(pair, k=11)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        K.top_eigenvalues(pair, k=0)
    with pytest.raises(ValueError, match="method must be one of"):
        K.top_eigenvalues(pair, method="arnoldi")
    with pytest.raises(ValueError, match="num_iters must be <= the operator dimension"):
        K.top_eigenvalues(pair, num_iters=11)
    with pytest.raises(ValueError, match="only the top eigenvalue"):
        K.top_eigenvalues(pair, k=2, method="power")
    with pytest.raises(TypeError, match="operator must have .matvec"):
        K.top_eigenvalues(np.eye(3))
    with pytest.raises(ValueError, match="method must be one of"):
        K.hutchinson_trace(pair, 10, key=key, method="girard")
    with pytest.raises(ValueError, match="num_steps must be <= the operator dimension"):
        K.slq_density(pair, 11, 3, key=key)
    with pytest.raises(ValueError, match="same dimension"):
        K.difference(pair, (lambda v: v, 9))


# ----------------------------------------------------------------------------- early stopping (issue 19)
def _spectrum_matrix(lam, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(lam), len(lam))))
    a = (q * np.asarray(lam)[None, :]) @ q.T
    return jnp.asarray(0.5 * (a + a.T))


N_SPEC = 120


def test_clustered_top_pair_returns_both_to_tolerance(key):
    # Top pair 2.0 and 2.0 - 2e-4 (relative gap 1e-4) above a bulk in [0, 1]: the gap bound for the pair
    # is weak (gap ~ 2e-4), so Lanczos must go on until the residuals themselves are small.
    lam = np.concatenate([np.linspace(0.0, 1.0, N_SPEC - 2), [2.0 - 2e-4, 2.0]])
    a = _spectrum_matrix(lam, 1)
    res = K.top_eigenvalues(dense_op(a), k=2, key=key, rtol=1e-8)
    assert res.converged
    err = np.abs(res.eigenvalues - np.array([2.0, 2.0 - 2e-4]))
    # rtol 1e-8 relative to ~2, plus the rounding of the QR-built test matrix (~1e-14): 2.1e-8 absolute.
    assert np.all(err <= 2.1e-8), err
    assert np.all(err <= res.error_bounds)


def test_error_bound_holds_across_random_spectra(key):
    # Four kinds of spectra (uniform, power-law decay, a cluster at the top, Gaussian with negative values),
    # three accuracies: |theta_i - lambda_i| <= error_bound_i for every returned eigenvalue, and the
    # bound meets the requested rtol (the definition of converged).
    rng = np.random.default_rng(3)
    spectra = [rng.uniform(0, 1, N_SPEC), np.arange(1, N_SPEC + 1.0) ** -1.0,
               np.concatenate([rng.uniform(0, 1, N_SPEC - 3), [1.5, 1.5 + 1e-3, 2.0]]), rng.normal(size=N_SPEC)]
    for i, lam in enumerate(spectra):
        a = _spectrum_matrix(lam, 10 + i)
        ev = np.sort(np.linalg.eigvalsh(np.asarray(a)))
        for rtol in (1e-4, 1e-8)[i % 2:][:1]:  # alternate the accuracy: 4 runs per direction in all
            for which, want in (("top", ev[::-1][:3]), ("bottom", ev[:3])):
                fn = K.top_eigenvalues if which == "top" else K.bottom_eigenvalues
                res = fn(dense_op(a), k=3, key=jax.random.fold_in(key, i), rtol=rtol)
                assert res.converged
                err = np.abs(res.eigenvalues - want)
                assert np.all(err <= res.error_bounds), (i, rtol, which, err, res.error_bounds)
                assert np.all(res.error_bounds <= np.maximum(rtol * np.abs(res.eigenvalues), 1e-12))


def test_start_direction_saves_steps_near_the_top_and_costs_nothing_away_from_it(key):
    """``start`` mixes a direction into the random start. Near the top eigenvector it saves steps; exactly along
    the second eigenvector (orthogonal to the top one) the random half still finds the top eigenvalue, to the
    same bound; an operator without ``start_direction`` runs the plain random start under ``"auto"``."""
    lam = np.concatenate([np.linspace(0.0, 1.0, N_SPEC - 2), [1.99, 2.0]])
    a = _spectrum_matrix(lam, 5)
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(N_SPEC, N_SPEC)))  # the eigenvectors (columns)
    op = dense_op(a)
    plain = K.top_eigenvalues(op, key=key, rtol=1e-8, start=None)
    noise = 0.1 * np.random.default_rng(0).normal(size=N_SPEC) / math.sqrt(N_SPEC)
    near = K.top_eigenvalues(op, key=key, rtol=1e-8, start=jnp.asarray(q[:, -1] + noise))
    away = K.top_eigenvalues(op, key=key, rtol=1e-8, start=jnp.asarray(q[:, -2]))
    for res in (plain, near, away):
        # rtol 1e-8 of 2, plus the rounding of the QR-built matrix (~1e-14)
        assert res.converged and abs(res.eigenvalues[0] - 2.0) <= max(res.error_bounds[0], 1e-13), res
    assert near.num_matvecs < plain.num_matvecs
    assert away.num_matvecs <= plain.num_matvecs + 2
    auto = K.top_eigenvalues(op, key=key, rtol=1e-8)  # no start_direction: the random start alone
    assert auto.num_matvecs == plain.num_matvecs and auto.eigenvalues[0] == plain.eigenvalues[0]
    bottom = K.bottom_eigenvalues(op, key=key, rtol=1e-8, start=jnp.asarray(q[:, 0] + noise))
    assert abs(bottom.eigenvalues[0]) <= max(bottom.error_bounds[0], 1e-13)
    for bad, err, match in ((jnp.ones(3), ValueError, "shape"), (jnp.full(N_SPEC, jnp.nan), ValueError, "finite"),
                            (jnp.zeros(N_SPEC), ValueError, "nonzero"), (jnp.ones(N_SPEC, int), TypeError, "float"),
                            ("gradient", ValueError, "start")):
        with pytest.raises(err, match=match):
            K.top_eigenvalues(op, key=key, start=bad)


def test_hessian_start_direction_is_the_loss_gradient(mlp_hessian, key):
    """The Hessian operator offers its loss gradient as the start direction; the top eigenvalue from it agrees with
    the random start's and with the dense spectrum (float64, rtol 1e-8 asked; 1e-6 checked as above)."""
    op, _, evals = mlp_hessian
    np.testing.assert_array_equal(np.asarray(op.start_direction()),
                                  np.asarray(H.loss_and_grad(op.loss_fn, op.params, op.batch)[1]))
    auto = K.top_eigenvalues(op, key=key)
    plain = K.top_eigenvalues(op, key=key, start=None)
    np.testing.assert_allclose([auto.eigenvalues[0], plain.eigenvalues[0]], [evals[-1]] * 2, rtol=1e-6)


def test_well_separated_top_stops_early(key):
    # lambda_1 = 3 over a bulk in [0, 1]: the Ritz value converges geometrically (ratio ~ 1/(1 + 2 sqrt(g)))
    # and the quadratic bound r^2/gap reaches 1e-8 long before the residual would; far below dim (120).
    lam = np.concatenate([np.linspace(0.0, 1.0, N_SPEC - 1), [3.0]])
    a = _spectrum_matrix(lam, 2)
    res = K.top_eigenvalues(dense_op(a), key=key, rtol=1e-8)
    assert res.converged and abs(res.eigenvalues[0] - 3.0) <= res.error_bounds[0]
    assert res.num_matvecs <= 25 < N_SPEC
    assert res.error_bounds[0] < res.residuals[0]  # the gap bound, not the residual, stopped it
    loose = K.top_eigenvalues(dense_op(a), key=key, rtol=1e-3)
    assert loose.num_matvecs <= res.num_matvecs


def test_non_symmetric_operator_is_refused(key):
    a = _spectrum_matrix(np.linspace(1.0, 2.0, 40), 4)
    skew = jnp.triu(jnp.ones((40, 40)), 1) * 0.05
    for fn in (lambda op: K.top_eigenvalues(op, key=key), lambda op: K.bottom_eigenvalues(op, key=key),
               lambda op: K.top_eigenvalues(op, key=key, method="power"),
               lambda op: K.slq_density(op, 5, 3, key=key)):
        with pytest.raises(ValueError, match="not symmetric"):
            fn(dense_op(a + skew))
    # symmetric up to rounding (float64 products of a symmetrized matrix) passes
    assert K.top_eigenvalues(dense_op(a), key=key).converged


def test_matvec_of_wrong_shape_names_operator_and_shape(key):
    def bad_matvec(v):
        return jnp.concatenate([v, v])

    with pytest.raises(ValueError, match=r"matvec 'test_matvec_of_wrong_shape.*bad_matvec'.*returned shape .*\(20,\).*"
                                         r"expected shape \(10,\)"):
        K.top_eigenvalues((bad_matvec, 10), key=key)
    with pytest.raises(ValueError, match=r"LinearOperator.*expected shape \(10,\)"):
        K.hutchinson_trace(K.LinearOperator(lambda v: v[:5], (), 10, jnp.float64), 8, key=key)


# ----------------------------------------------------------------------------- trace estimation (issue 19)
def test_target_stderr_stops_and_is_honest(key):
    a = _sym_matrix(key, 150, 0.5)
    true = float(jnp.trace(a))
    est = K.hutchinson_trace(dense_op(a), 2000, key=jax.random.fold_in(key, 4), method="hutchinson",
                             target_stderr=0.2, batch_size=16)
    assert est.converged and est.stderr <= 0.2 and est.num_matvecs < 2000
    assert est.num_matvecs % 16 == 0  # whole batches
    # 4 reported standard errors (fixed seed; a 4-sigma miss has probability 6e-5)
    assert abs(est.trace - true) <= 4 * est.stderr
    rel = K.hutchinson_trace(dense_op(a), 2000, key=jax.random.fold_in(key, 5), target_rel_stderr=0.01)
    assert rel.converged and rel.stderr <= 0.01 * abs(rel.trace) and abs(rel.trace - true) <= 4 * rel.stderr


def test_auto_picks_hutchpp_for_fast_decay_and_hutchinson_for_flat(key):
    fast = _sym_matrix(key, 200, 2.0)  # eigenvalues k^-2: the top few carry nearly all Frobenius mass
    flat = _sym_matrix(jax.random.fold_in(key, 1), 200, 0.0) + 0.0  # identity-like: nothing to deflate
    flat = flat + 0.3 * _sym_matrix(jax.random.fold_in(key, 2), 200, 0.1)
    for a, want in ((fast, "hutch++"), (flat, "hutchinson")):
        true = float(jnp.trace(a))
        est = K.hutchinson_trace(dense_op(a), 96, key=jax.random.fold_in(key, 6), method="auto", batch_size=8)
        assert est.method == want, (want, est.tail_fraction)
        assert est.num_matvecs <= 96 and abs(est.trace - true) <= 4 * est.stderr
    pp = K.hutchinson_trace(dense_op(fast), 400, key=jax.random.fold_in(key, 7), method="auto", batch_size=8,
                            target_rel_stderr=1e-3)
    assert pp.method == "hutch++" and pp.converged and abs(pp.trace - float(jnp.trace(fast))) <= 4 * pp.stderr


# ----------------------------------------------------------------------------- adaptive SLQ depth (issue 19)
def test_slq_adaptive_depth_stops_early_where_the_spectrum_allows(key):
    # A diagonal A probed by Rademacher z has the per-probe spectral measure sum_i (z_i^2/|z|^2) delta(lambda_i)
    # = (1/P) sum_i delta(lambda_i) exactly: every probe sees the true density, so the broadened SLQ density
    # can be compared with the closed-form one (no probe noise) and the first two moments with tr(A)/P and
    # tr(A^2)/P (the Gauss rule is exact for degree <= 2m - 1: equal to rounding, 1e-10 relative, TOL float64).
    # 6 probes in batches of 4: the last batch is padded (its repeats dropped).
    from workbench.linalg.slq import gaussian_broadening

    p, rtol, max_steps = 240, 1e-3, 40
    rng = np.random.default_rng(0)
    clusters = np.concatenate([1 + 1e-3 * rng.uniform(size=60), 2 + 1e-3 * rng.uniform(size=120),
                               5 + 1e-3 * rng.uniform(size=60)])
    spread = np.linspace(0.0, 1.0, p)
    depths = {}
    for name, lam, sigma in (("clusters", clusters, None), ("spread", spread, 0.05)):
        d = K.slq_density(dense_op(jnp.diag(jnp.asarray(lam))), max_steps, 6, key=key, grid=400, sigma=sigma,
                          rtol=rtol)
        assert d.converged and d.depth_change <= rtol and d.nodes.shape == (6, int(d.depths.max()))
        np.testing.assert_allclose(d.moments, [np.mean(lam), np.mean(lam ** 2)], rtol=1e-10)
        exact = gaussian_broadening(d.grid, lam[None, :], np.full((1, p), 1.0 / p), d.sigma)
        # Gauss quadrature of the analytic Gaussian test functions converges geometrically in the depth, so once
        # successive depths differ by <= rtol in total variation the distance to the exact density is below it
        # (measured: 1e-10 for the clusters, 3e-6 for the spread spectrum).
        assert 0.5 * np.trapezoid(np.abs(d.density - exact), d.grid) <= rtol
        assert d.num_matvecs == 8 * int(d.depths.max())  # two batches of 4 probes (the second padded)
        depths[name] = int(d.depths.max())
    # three tight clusters are resolved by a handful of nodes; a spread spectrum at sigma = 5% of its width needs
    # depth ~ width / sigma; both well under the fixed depth
    assert depths["clusters"] <= 12 < depths["spread"] < max_steps, depths
    # a budget too small for the asked accuracy (sigma = 0.5% of the width needs depth ~ 200) says so instead of
    # claiming convergence (same shapes as above: the compiled programs are reused)
    short = K.slq_density(dense_op(jnp.diag(jnp.asarray(spread))), max_steps, 6, key=key, sigma=0.005, rtol=rtol)
    assert not short.converged and short.depth_change > rtol and short.depths.max() == max_steps


def test_batched_products_sequential_and_vmapped_agree_with_the_dense_hessian(mlp_hessian, key):
    """Trace probes and SLQ run the products of a batch one after another on CPUs and vmapped elsewhere: both paths
    must give the rows Z A of the dense Hessian (CI has no GPU, so the vmapped path is checked here explicitly).
    float32 products of ~2,000-term sums: 1e-5 of the largest entry."""
    from workbench.linalg.operators import _probe_jit, as_operator, sequential_products

    op, dense, _ = mlp_hessian
    o = as_operator(op)
    z = jax.random.normal(key, (5, o.dim), o.dtype)
    want = np.asarray(z, np.float64) @ dense
    scale = float(np.max(np.abs(want)))
    # one after another exactly when the operands live on a CPU (on a GPU this test checks the vmapped path
    # as the default and the sequential one explicitly)
    assert sequential_products(o.args) == (jax.default_backend() == "cpu")
    for sequential in (True, False):
        got = np.asarray(_probe_jit(o.fn, o.name, sequential, z, *o.args), np.float64)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)


def test_operators_symmetric_by_construction_skip_the_probes_and_keep_the_run(mlp_hessian, key):
    """The Hessian operator (forward-over-reverse products of a scalar loss) is not probed by default: the same
    Lanczos run (same start vector, same Ritz value) with the 2 probe products fewer (3 when the start mixes in the
    gradient); an explicit True probes."""
    op = mlp_hessian[0]
    assert op.symmetric_by_construction
    for start, probes in ((None, 2), ("auto", 3)):  # with the gradient mixed in, no probe doubles as step 0
        auto = K.top_eigenvalues(op, key=key, start=start)
        probed = K.top_eigenvalues(op, key=key, check_symmetry=True, start=start)
        assert auto.num_matvecs == probed.num_matvecs - probes
        np.testing.assert_allclose(auto.eigenvalues, probed.eigenvalues, rtol=1e-10)
    # a plain (matvec, dim) pair is never trusted: a non-symmetric one is still refused by default
    a = jnp.triu(jnp.ones((12, 12)))
    with pytest.raises(ValueError, match="not symmetric"):
        K.top_eigenvalues((lambda v: a @ v, 12), key=key)
    with pytest.raises(TypeError, match="check_symmetry"):
        K.top_eigenvalues(op, key=key, check_symmetry="yes")


@pytest.mark.parametrize("i", [0, 7, 8, 12])
def test_gram_schmidt_over_used_rows_equals_the_full_pass(i):
    """The Lanczos loop's Gram-Schmidt reads only the blocks of rows built so far (13 rows: the last block of 8
    overlaps the one before and is masked); it must give the full pass's numbers (rows past i are zero)."""
    from workbench.linalg.lanczos import _orth, _orth_used

    with jax.enable_x64(True):
        rng = np.random.default_rng(i)
        q = np.linalg.qr(rng.normal(size=(50, 13)))[0].T  # 13 orthonormal rows
        q[i + 1:] = 0.0
        w = rng.normal(size=50)
        full = _orth(jnp.asarray(q), i, jnp.asarray(w))
        used = jax.jit(_orth_used)(jnp.asarray(q), i, jnp.asarray(w))
        for a, b in zip(full, used):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-12)


@pytest.mark.slow  # 7 s of compilation; the host's float64 test guards every result in the fast tier anyway
def test_device_stopping_test_on_the_smallest_block_equals_the_whole_one():
    """The loop's stopping test diagonalizes the smallest of 16, 32, ... that holds the m steps; it must decide as the
    test on the whole padded (cap, cap) matrix does, at every m (the padding sits below the spectrum)."""
    from workbench.linalg.lanczos import _device_done, _device_done_sized

    rng = np.random.default_rng(5)
    cap = 80
    alpha = jnp.asarray(np.sort(rng.uniform(0.0, 1.0, cap))[::-1].copy())
    for beta_scale in (1.0, 1e-1, 1e-3):  # far from, near and past convergence (both answers occur)
        beta = jnp.asarray(beta_scale * rng.uniform(0.5, 1.0, cap))
        for m in (1, 5, 16, 17, 31, 32, 33, 64, 65, 80):
            for k, sign in ((1, 1.0), (3, -1.0)):
                tiered = bool(jax.jit(_device_done, static_argnums=3)(alpha, beta, m, k, sign, 1e-4, 2.2e-16))
                whole = bool(_device_done_sized(alpha, beta, m, k, sign, 1e-4, 2.2e-16))
                assert tiered == whole, (beta_scale, m, k, sign)
