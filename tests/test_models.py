"""Your own model through every study: a Flax NNX CNN, a Flax Linen MLP with batch norm (inference mode) and an
Equinox MLP, each checked against dense float64 references computed here with plain JAX and optax."""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from workbench.kernels.empirical import empirical_ntk
from workbench.lr_batch import final_loss
from workbench.models import Model, functional, make_loss, with_dtype
from workbench.nets import MLP
from workbench.studies import model as S

N, K = 24, 3  # examples and classes: tiny models, so dense Jacobians and Hessians are cheap


class _CNN(nnx.Module):
    def __init__(self):
        rngs = nnx.Rngs(0)
        self.conv = nnx.Conv(1, 2, (3, 3), rngs=rngs, param_dtype=jnp.float64)
        self.head = nnx.Linear(2 * 4 * 4, K, rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x):
        h = jnp.tanh(self.conv(x))
        return self.head(h.reshape(h.shape[0], -1))


class _LinenBN(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.Dense(6, param_dtype=jnp.float64)(x)
        h = nn.BatchNorm(use_running_average=True, param_dtype=jnp.float64)(h)
        return nn.Dense(K, param_dtype=jnp.float64)(jnp.tanh(h))


def _nnx_cnn():
    x = jax.random.normal(jax.random.PRNGKey(1), (N, 4, 4, 1))
    return functional(_CNN(), example_input=x), x


def _linen_bn():
    x = jax.random.normal(jax.random.PRNGKey(2), (N, 5))
    module = _LinenBN()
    variables = module.init(jax.random.PRNGKey(0), x)
    # non-trivial running statistics: the checks below only pass if they are used, and held fixed
    stats = jax.tree_util.tree_map(lambda a: a + 0.3, variables["batch_stats"])
    return functional((module, {"params": variables["params"], "batch_stats": stats}), example_input=x), x


def _equinox_mlp():
    x = jax.random.normal(jax.random.PRNGKey(3), (N, 5))
    mlp = eqx.nn.MLP(5, K, 6, 1, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    return functional(mlp, example_input=x), x


BUILDERS = {"nnx_cnn": _nnx_cnn, "linen_batchnorm_mlp": _linen_bn, "equinox_mlp": _equinox_mlp}


@pytest.fixture(scope="module", params=list(BUILDERS))
def case(request):
    model, x = BUILDERS[request.param]()
    y = jax.random.randint(jax.random.PRNGKey(5), (N,), 0, K)
    return request.param, model, x, y


def _flat_apply(model: Model, x):
    _, unravel = ravel_pytree(model.params)
    return lambda flat: model.apply_fn(unravel(flat), x)


def _ce_by_hand(f, y):
    """Mean softmax cross-entropy with integer labels, written out: logsumexp(f_i) - f_i[y_i]."""
    return jnp.mean(jax.scipy.special.logsumexp(f, axis=1) - jnp.take_along_axis(f, y[:, None], axis=1)[:, 0])


def test_functional_describes_what_it_holds(case):
    name, model, x, _ = case
    assert isinstance(model, Model)
    assert model.apply_fn(model.params, x).shape == (N, K)
    assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(model.params))
    if name == "linen_batchnorm_mlp":
        assert "batch_stats" in model.describe and "held fixed" in model.describe
        assert set(model.params) == {"Dense_0", "BatchNorm_0", "Dense_1"}  # scale/bias trained, stats not
    if name == "equinox_mlp":
        assert "vmapped" in model.describe


def test_empirical_ntk_matches_dense_jacobian(case):
    _, model, x, _ = case
    flat, _ = ravel_pytree(model.params)
    jac = jax.jit(jax.jacobian(_flat_apply(model, x)))(flat).reshape(N * K, -1)  # (n k, P)
    dense = (jac @ jac.T).reshape(N, K, N, K).transpose(0, 2, 1, 3)
    full = empirical_ntk(model.apply_fn, model.params, x, output="full")
    # float64, exact identity up to summation order: 1e-10 relative to the largest entry
    np.testing.assert_allclose(full, dense, rtol=0, atol=1e-10 * float(jnp.max(jnp.abs(dense))))
    trace = empirical_ntk(model.apply_fn, model.params, x)
    np.testing.assert_allclose(trace, jnp.trace(dense, axis1=2, axis2=3), rtol=0,
                               atol=1e-10 * float(jnp.max(jnp.abs(trace))))


def test_lanczos_top3_hessian_matches_dense(case):
    _, model, x, y = case
    flat, _ = ravel_pytree(model.params)
    f = _flat_apply(model, x)
    dense = np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(lambda p: _ce_by_hand(f(p), y)))(flat)))[::-1][:3]
    eig = S.top_eigenvalues(model, (x, y), loss="cross_entropy", k=3)
    # Lanczos to Ritz residual 1e-9 |theta| (float64): the eigenvalues agree far below the 1e-6 asked for
    np.testing.assert_allclose(eig.eigenvalues, dense, rtol=1e-6)


def test_exact_b_simple_matches_per_example_loop(case):
    _, model, x, y = case
    flat, unravel = ravel_pytree(model.params)
    grad_one = jax.jit(jax.grad(lambda p, xi, yi: _ce_by_hand(model.apply_fn(unravel(p), xi), yi)))
    grads = []
    for i in range(N):  # one example at a time, no vmap: an independent computation
        grads.append(np.asarray(grad_one(flat, x[i:i + 1], y[i:i + 1])))
    grads = np.stack(grads)
    big_g = grads.mean(axis=0)
    b_simple = np.sum((grads - big_g) ** 2) / N / (big_g @ big_g)
    g2, tr_sigma, got = S.exact_noise_scale(model, (x, y), loss="cross_entropy")
    np.testing.assert_allclose([g2, got], [big_g @ big_g, b_simple], rtol=1e-10)


@pytest.mark.slow  # three 2x3x2 sweeps and their reference loops compile many programs: slow tier
def test_sweep_matches_hand_written_optax_loop(case, tmp_path):
    _, model, x, y = case
    batch_sizes, lrs, seeds, steps = (4, 12), (0.05, 0.1, 0.2), (0, 1), 6
    study = S.lr_batch_study(model, (x, y), loss="cross_entropy", batch_sizes=batch_sizes, lrs=lrs, seeds=seeds,
                             num_steps=steps, record_every=steps, results_dir=str(tmp_path), sharpness=False)
    got = final_loss(study.sweeps["sgd"])  # (B, lr, seed)

    def loss(p, xb, yb):
        return _ce_by_hand(model.apply_fn(p, xb), yb)

    def run(lr, seed_key, b_idx):
        # the workbench's minibatches: seed -> (init key, data key); step t draws B distinct indices with
        # jax.random.choice(fold_in(data_key, t)) (workbench.training, sampling="iid")
        opt = optax.sgd(lr)

        def step(t, carry):
            p, s = carry
            idx = jax.random.choice(jax.random.fold_in(seed_key, t), N, (b_idx,), replace=False)
            u, s = opt.update(jax.grad(loss)(p, x[idx], y[idx]), s, p)
            return optax.apply_updates(p, u), s

        p, _ = jax.lax.fori_loop(0, steps, step, (model.params, opt.init(model.params)))
        return loss(p, x, y)

    run = jax.jit(run, static_argnums=2)
    want = np.zeros_like(got)
    for i, b in enumerate(batch_sizes):
        for j, lr in enumerate(lrs):
            for s, seed in enumerate(seeds):
                data_key = jax.random.split(jax.random.PRNGKey(seed), 2)[1]
                want[i, j, s] = run(lr, data_key, b)
    # same arithmetic in float64 (lr * update vs optax's scaled update): equal to rounding, 1e-6 asked
    np.testing.assert_allclose(got, want, rtol=1e-6)
    again = S.lr_batch_study(model, (x, y), loss="cross_entropy", batch_sizes=batch_sizes, lrs=lrs, seeds=seeds,
                             num_steps=steps, record_every=steps, results_dir=str(tmp_path), sharpness=False)
    np.testing.assert_array_equal(final_loss(again.sweeps["sgd"]), got)  # resumed from the files


# ----------------------------------------------------------------------------- conversions and errors
def test_mlp_keeps_structured_ntk_and_pair_form():
    net = MLP(depth=1, width=8, activation="tanh", out_dim=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 3))
    m = functional(net, example_input=x)
    assert m.apply_fn == net.apply  # bound method: empirical_ntk picks the structured method
    pair = functional((lambda p, xb: net.apply(p, xb), m.params), example_input=x)
    np.testing.assert_allclose(empirical_ntk(m.apply_fn, m.params, x),
                               empirical_ntk(pair.apply_fn, pair.params, x, method="jacobian"), rtol=1e-10)
    imgs = x.reshape(6, 3, 1, 1)
    flat = functional((net, m.params), example_input=imgs)
    np.testing.assert_allclose(flat.apply_fn(flat.params, imgs), net.apply(m.params, x), rtol=1e-12)


def test_nnx_module_is_put_in_eval_mode_on_a_copy():
    class BN(nnx.Module):
        def __init__(self):
            self.lin = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
            self.bn = nnx.BatchNorm(2, rngs=nnx.Rngs(0))

        def __call__(self, x):
            return self.bn(self.lin(x))

    module = BN()
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    m = functional(module, example_input=x)
    assert "BatchStat" in m.describe and "inference mode" in m.describe
    assert module.bn.use_running_average is False  # the user's module is untouched
    # inference mode: outputs of one example do not depend on the rest of the batch
    np.testing.assert_allclose(m.apply_fn(m.params, x)[:1], m.apply_fn(m.params, x[:1]), rtol=1e-6)


def test_errors_are_clear():
    x = jnp.ones((4, 3))
    with pytest.raises(TypeError, match="model must be"):
        functional(object())
    with pytest.raises(ValueError, match=r"shape \(n, k\)"):
        functional((lambda p, xb: xb.sum(axis=1) * p, jnp.ones(())), example_input=x)
    train_mode = nn.BatchNorm(use_running_average=False)
    variables = train_mode.init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="inference mode"):
        functional((train_mode, variables), example_input=x)
    with pytest.raises(ValueError, match="needs its variables"):
        functional(nn.Dense(2))
    m = functional((lambda p, xb: xb @ p, jnp.ones((3, 2))), example_input=x)
    with pytest.raises(ValueError, match="needs 5 outputs"):
        S.noise_study(m, (x, jnp.array([0, 1, 4, 2])))
    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss(m, "hinge")


def test_model_studies_run_end_to_end():
    """The NTK (drift, linearized vs real GD) and noise studies on one small Equinox MLP."""
    model, x = _equinox_mlp()
    y = jax.random.randint(jax.random.PRNGKey(5), (N,), 0, K)
    nt = S.ntk_study(model, (x[:16], y[:16]), (x[16:], y[16:]), num_steps=20, record_every=5, num_drift=2)
    assert nt.eigenvalues.shape == (16,) and np.all(np.diff(nt.eigenvalues) <= 0)
    # the panel's first chunk: the same spectrum without the training
    np.testing.assert_allclose(S.ntk_spectrum_at_init(model, (x[:16], y[:16])).eigenvalues, nt.eigenvalues,
                               rtol=1e-12, atol=1e-12 * nt.eigenvalues[0])
    # at lr = lr_max / 2 the net stays close to its linearization over 20 steps (small model, but short run)
    assert nt.diverged_step == -1 and nt.rel_error[0] < 1e-12 and np.all(nt.rel_error < 0.5)
    np.testing.assert_allclose(nt.measured_train_loss[0], nt.predicted_train_loss[0], rtol=1e-10)
    assert nt.drift[0] == 0 and nt.drift[-1] > 0
    # hessian_study (the batch-Hessian study through FlatInputNet) runs in tests/test_cli_model.py on the Flax CNN
    ns = S.noise_study(model, (x, y), batch_sizes=[2, 12], num_draws=8, curvature=False)  # B_noise: test_cli_model
    assert ns.sq_norms.shape == (2, 8) and ns.b_simple > 0
    assert with_dtype(model, jnp.float32).params is not model.params
