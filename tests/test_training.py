"""Tests of workbench.training against hand-written numpy loops of the same algorithms.

Loss and init functions are module-level so that tests sharing shapes reuse one compiled program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench.nets import MLP
from workbench.training import TrainResult, train, train_mlp

N, D = 12, 4


def quad_loss(w, batch):
    """Linear least squares, 'sum' convention: 1/2 |x w - y|^2."""
    x, y = batch
    r = x @ w - y
    return 0.5 * jnp.sum(r * r)


def quad_init(key):
    return 0.3 * jax.random.normal(key, (D,))


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)) / np.sqrt(D)
    y = x @ rng.standard_normal(D) + 0.1 * rng.standard_normal(N)
    return jnp.asarray(x), jnp.asarray(y)


def test_gd_matches_numpy_loop_for_every_lr_and_seed(linear_data):
    # Full-batch GD on least squares: w <- w - lr x^T (x w - y). Same arithmetic in float64: 1e-12.
    x, y = linear_data
    lrs = [0.05, 0.2]
    res = train(quad_loss, quad_init, (x, y), lrs=lrs, seeds=[3, 7], num_steps=25, record_every=5,
                progress=False, snapshot_steps=(10,))
    assert isinstance(res, TrainResult)
    assert res.train_loss.shape == (2, 2, 6) and list(res.steps) == [0, 5, 10, 15, 20, 25]
    xn, yn = np.asarray(x), np.asarray(y)
    for i, lr in enumerate(lrs):
        for j, seed in enumerate([3, 7]):
            w = np.asarray(quad_init(jax.random.split(jax.random.PRNGKey(seed), 2)[0]))
            losses = []
            for step in range(26):
                if step % 5 == 0:
                    losses.append(0.5 * np.sum((xn @ w - yn) ** 2))
                if step == 10:
                    np.testing.assert_allclose(res.snapshots[10][i, j], w, atol=1e-12)
                w = w - lr * xn.T @ (xn @ w - yn) if step < 25 else w
            np.testing.assert_allclose(res.train_loss[i, j], losses, rtol=1e-12)
            np.testing.assert_allclose(res.params[i, j], w, atol=1e-12)
    assert not res.diverged.any() and (res.diverged_step == -1).all()
    assert "float64" in res.info


def test_momentum_and_adam_match_hand_written_updates(linear_data):
    # Heavy ball v <- g + beta v, w <- w - lr v; Adam (Kingma & Ba) with bias correction, eps outside the sqrt.
    x, y = linear_data
    xn, yn = np.asarray(x), np.asarray(y)
    lr, beta, b1, b2, eps = 0.1, 0.8, 0.9, 0.99, 1e-8
    w0 = np.asarray(quad_init(jax.random.split(jax.random.PRNGKey(0), 2)[0]))
    res_m = train(quad_loss, quad_init, (x, y), optimizer="momentum", momentum=beta, lrs=lr, num_steps=15,
                  progress=False)
    res_a = train(quad_loss, quad_init, (x, y), optimizer="adam", adam_b1=b1, adam_b2=b2, adam_eps=eps, lrs=lr,
                  num_steps=15, progress=False)
    w, v = w0.copy(), np.zeros(D)
    for _ in range(15):
        g = xn.T @ (xn @ w - yn)
        v = g + beta * v
        w = w - lr * v
    np.testing.assert_allclose(res_m.params[0, 0], w, atol=1e-12)
    w, m, s = w0.copy(), np.zeros(D), np.zeros(D)
    for k in range(1, 16):
        g = xn.T @ (xn @ w - yn)
        m, s = b1 * m + (1 - b1) * g, b2 * s + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** k)) / (np.sqrt(s / (1 - b2 ** k)) + eps)
    np.testing.assert_allclose(res_a.params[0, 0], w, atol=1e-12)


def count_loss(c, batch):
    """Gradient = minus the indicator of the examples in the batch (x is the identity): SGD with lr 1 counts visits."""
    x, _ = batch
    return -jnp.sum(x @ c)


def count_init(_key):
    return jnp.zeros(N)


def test_minibatch_sampling_visits_examples_as_documented():
    x, y = jnp.eye(N), jnp.zeros(N)
    # shuffle: every example exactly once per epoch (N / B = 3 steps per epoch, 2 epochs)
    res = train(count_loss, count_init, (x, y), optimizer="sgd", batch_size=4, lrs=1.0, seeds=[0, 1], num_steps=6,
                record_every=3, snapshot_steps=(3,), progress=False)
    np.testing.assert_array_equal(np.asarray(res.snapshots[3])[0], np.ones((2, N)))
    np.testing.assert_array_equal(np.asarray(res.params)[0], 2 * np.ones((2, N)))
    # iid: each step draws B distinct examples, independently across steps and seeds
    res = train(count_loss, count_init, (x, y), optimizer="sgd", batch_size=4, sampling="iid", lrs=1.0, seeds=[0, 1],
                num_steps=1, progress=False)
    p = np.asarray(res.params)[0]
    assert p.sum(axis=1).tolist() == [4.0, 4.0] and p.max() == 1.0
    res = train(count_loss, count_init, (x, y), optimizer="sgd", batch_size=4, sampling="iid", lrs=1.0,
                seeds=[0, 1], num_steps=20, progress=False)
    p = np.asarray(res.params)[0]
    assert p.sum() == 2 * 20 * 4 and p.max() < 20  # not always the same batch
    assert not np.array_equal(p[0], p[1])  # seeds give different batch orders


def test_divergence_freezes_only_the_bad_runs(linear_data):
    # lr above 2 / lambda_max(x^T x) diverges geometrically: the first step whose loss exceeds 1e4 L_0 is
    # predicted by the numpy loop; the stable run is identical to a run trained alone.
    x, y = linear_data
    xn, yn = np.asarray(x), np.asarray(y)
    lam_max = np.linalg.eigvalsh(xn.T @ xn)[-1]
    lrs = [0.5 / lam_max, 2.5 / lam_max]
    res = train(quad_loss, quad_init, (x, y), lrs=lrs, num_steps=60, progress=False)
    alone = train(quad_loss, quad_init, (x, y), lrs=lrs[:1], num_steps=60, progress=False)
    np.testing.assert_allclose(res.train_loss[0], alone.train_loss[0], rtol=1e-13)
    w = np.asarray(quad_init(jax.random.split(jax.random.PRNGKey(0), 2)[0]))
    l0 = 0.5 * np.sum((xn @ w - yn) ** 2)
    k = 0
    while 0.5 * np.sum((xn @ w - yn) ** 2) <= 1e4 * l0:
        w = w - lrs[1] * xn.T @ (xn @ w - yn)
        k += 1
    assert res.diverged.tolist() == [[False], [True]]
    assert res.diverged_step[1, 0] == k
    # the record at step k shows the offending loss (finite here, above the bound); later records are NaN
    assert np.all(np.isfinite(res.train_loss[1, 0, :k + 1])) and np.all(np.isnan(res.train_loss[1, 0, k + 1:]))
    assert res.train_loss[1, 0, k] > 1e4 * l0
    assert np.all(np.isfinite(np.asarray(res.params)))
    assert "diverged 1/2" in res.info


def nan_loss(w, batch):
    """NaN once w[0] passes 1 (sqrt of a negative number)."""
    return jnp.sqrt(1.0 - w[0]) + 0.0 * jnp.sum(batch[0])


def nan_init(_key):
    return jnp.zeros(2)


def test_nan_loss_is_a_divergence_not_a_crash():
    x, y = jnp.ones((3, 1)), jnp.ones(3)
    res = train(nan_loss, nan_init, (x, y), lrs=[0.1, 1.5], num_steps=10, progress=False)
    # gradient 1 / (2 sqrt(1 - w)) pushes w[0] up; with lr 1.5 the first step jumps to 0.75, the second past 1
    assert res.diverged.tolist() == [[False], [True]]
    assert res.diverged_step[1, 0] == 2
    assert np.all(np.isfinite(np.asarray(res.params)))


def test_keyboard_interrupt_returns_the_finished_chunks(linear_data):
    x, y = linear_data

    def stop(steps_done):
        if steps_done >= 20:
            raise KeyboardInterrupt

    res = train(quad_loss, quad_init, (x, y), lrs=[0.05, 0.2], num_steps=50, record_every=5, num_chunks=10,
                callback=stop, progress=False)
    full = train(quad_loss, quad_init, (x, y), lrs=[0.05, 0.2], num_steps=50, record_every=5, num_chunks=10,
                 progress=False)
    assert not res.completed and res.num_steps_done == 20 and "interrupted" in res.info
    assert list(res.steps) == [0, 5, 10, 15, 20]
    np.testing.assert_allclose(res.train_loss, full.train_loss[:, :, :5], rtol=1e-13)
    assert full.completed and full.num_steps_done == 50


def test_partial_callback_streams_prefixes_of_the_final_result(linear_data):
    """After every chunk but the last, ``partial_callback`` gets the result so far: its recorded steps are a prefix
    of the final ones, its records equal the final records there, and it says it is in progress."""
    x, y = linear_data
    parts = []
    res = train(quad_loss, quad_init, (x, y), lrs=[0.05, 0.2], num_steps=50, record_every=5, num_chunks=5,
                partial_callback=parts.append, progress=False)
    assert [p.num_steps_done for p in parts] == [10, 20, 30, 40]  # 5 chunks of 2 records; none after the last
    for p in parts:
        k = p.steps.size
        assert not p.completed and "in progress" in p.info
        np.testing.assert_array_equal(p.steps, res.steps[:k])
        np.testing.assert_array_equal(p.train_loss, res.train_loss[:, :, :k])
    assert res.completed and "in progress" not in res.info
    with pytest.raises(TypeError, match="partial_callback must be callable"):
        train(quad_loss, quad_init, (x, y), lrs=0.1, num_steps=5, partial_callback=3, progress=False)


def test_train_mlp_losses_outputs_ntk_and_mup_multipliers(key):
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (6, 3))
    y = jax.random.normal(ky, (6, 2))
    net = MLP(depth=1, width=16, activation="tanh", w_std=1.5, b_std=0.1, out_dim=2)
    res_s = train_mlp(net, (x, y), reduction="sum", lrs=0.01, num_steps=1, x_eval=x[:2], ntk_steps=(0, 1),
                      progress=False)
    res_m = train_mlp(net, (x, y), reduction="mean", lrs=0.01 * y.size, num_steps=1, progress=False)
    # "mean" = "sum" / (n k); with lr scaled by n k the trajectories coincide
    np.testing.assert_allclose(res_m.train_loss * y.size, res_s.train_loss, rtol=1e-12)
    params0 = net.init(jax.random.split(jax.random.PRNGKey(0), 2)[0], 3)
    np.testing.assert_allclose(res_s.evals[0, 0, 0], net.apply(params0, x[:2]), rtol=1e-12)
    # NTK traced over outputs, from a dense Jacobian computed here
    jac = jax.jit(jax.jacobian(net.apply))(params0, x)
    flat = jnp.concatenate([j.reshape(6, 2, -1) for j in jax.tree_util.tree_leaves(jac)], axis=-1)
    np.testing.assert_allclose(res_s.ntk[0, 0, 0], jnp.einsum("ikp,jkp->ij", flat, flat), rtol=1e-10)
    assert res_s.ntk.shape == (1, 1, 2, 6, 6) and res_s.ntk_steps == (0, 1)
    # muP: one SGD step uses the per-parameter multipliers of the net
    mup = MLP(depth=1, width=16, activation="tanh", w_std=1.5, b_std=0.1, out_dim=2, parametrization="mup")
    res = train_mlp(mup, (x, y), optimizer="sgd", lrs=0.01, num_steps=1, progress=False)
    p0 = mup.init(jax.random.split(jax.random.PRNGKey(0), 2)[0], 3)
    grads = jax.grad(lambda p: 0.5 * jnp.sum((mup.apply(p, x) - y) ** 2))(p0)
    mults = mup.lr_multipliers(3, "sgd")
    expect = jax.tree_util.tree_map(lambda p, g, m: p - 0.01 * m * g, p0, grads, mults)
    for a, b in zip(jax.tree_util.tree_leaves(res.params), jax.tree_util.tree_leaves(expect)):
        np.testing.assert_allclose(a[0, 0], b, rtol=1e-12, atol=1e-14)


def test_cross_entropy_label_formats_agree(key):
    x = jax.random.normal(key, (8, 3))
    labels = jnp.asarray([0, 1, 2, 0, 1, 2, 1, 0], dtype=float)
    net = MLP(depth=1, width=8, activation="relu", w_std=1.4, out_dim=3)
    a = train_mlp(net, (x, labels[:, None]), loss="cross_entropy", reduction="mean", lrs=0.1, num_steps=3,
                  progress=False)
    b = train_mlp(net, (x, jax.nn.one_hot(labels.astype(int), 3)), loss="cross_entropy", reduction="mean",
                  lrs=0.1, num_steps=3, progress=False)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-12)
    # at step 0: -mean log softmax, computed by hand
    logits = np.asarray(net.apply(net.init(jax.random.split(jax.random.PRNGKey(0), 2)[0], 3), x))
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    np.testing.assert_allclose(a.train_loss[0, 0, 0], -np.mean(logp[np.arange(8), labels.astype(int)]), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(lrs=[-0.1]), ValueError, "lrs must be > 0"),
        (dict(lrs=[0.1], seeds=[1, 1]), ValueError, "seeds must be distinct"),
        (dict(lrs=[0.1], batch_size=100), ValueError, "batch_size must be <="),
        (dict(lrs=[0.1], optimizer="rmsprop"), ValueError, "optimizer must be one of"),
        (dict(lrs=[0.1], num_steps=10, record_every=5, snapshot_steps=(3,)), ValueError, "snapshot_steps must be recorded"),
        (dict(lrs=[0.1], divergence_threshold=0.5), ValueError, "divergence_threshold must be > 1"),
        (dict(lrs=[0.1], momentum=1.5, optimizer="momentum"), ValueError, r"momentum must be in \[0, 1\)"),
        (dict(lrs=[0.1], num_steps=0), ValueError, "num_steps must be an integer >= 1"),
        (dict(lrs=[0.1], sampling="stratified"), ValueError, "sampling must be one of"),
    ],
)
def test_bad_arguments(linear_data, kwargs, err, match):
    x, y = linear_data
    kwargs = {"num_steps": 3, **kwargs}
    with pytest.raises(err, match=match):
        train(quad_loss, quad_init, (x, y), progress=False, **kwargs)


def test_bad_data(linear_data):
    x, y = linear_data
    with pytest.raises(ValueError, match="equal leading sizes"):
        train(quad_loss, quad_init, (x, y[:5]), lrs=0.1, num_steps=2, progress=False)
    with pytest.raises(ValueError, match="non-finite"):
        train(quad_loss, quad_init, (x.at[0, 0].set(jnp.nan), y), lrs=0.1, num_steps=2, progress=False)
    with pytest.raises(TypeError, match="train_data must be a pair"):
        train(quad_loss, quad_init, x, lrs=0.1, num_steps=2, progress=False)
    net = MLP(depth=1, width=4)
    with pytest.raises(ValueError, match="x_eval must have shape"):
        train_mlp(net, (x, y[:, None]), lrs=0.1, num_steps=1, x_eval=jnp.ones((2, 7)), progress=False)
    with pytest.raises(ValueError, match=r"targets must have shape \(n, 1\)"):
        train_mlp(net, (x, y), lrs=0.1, num_steps=1, progress=False)
    with pytest.raises(ValueError, match="must be \\+-1"):
        train_mlp(net, (x, y[:, None]), loss="cross_entropy", lrs=0.1, num_steps=1, progress=False)
    with pytest.raises(TypeError, match="net must be a workbench.nets.MLP"):
        train_mlp("mlp", (x, y[:, None]), lrs=0.1, num_steps=1)
