"""Tests of workbench.hessian: operators against jax.hessian / explicit Jacobians / closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from workbench import hessian as H
from workbench.nets import MLP

# Both sides are exact autodiff of the same function in float64: they differ by rounding only,
# a few ulps of the largest entry times the number of accumulated terms (~1e-13 relative here).
EXACT = 1e-11


@pytest.fixture(scope="module")
def setup():
    net = MLP(depth=2, width=12, activation="tanh", b_std=0.1, out_dim=3)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
    params = net.init(k1, 4)
    x = jax.random.normal(k2, (10, 4))
    y = jax.nn.one_hot(jax.random.randint(k3, (10,), 0, 3), 3)
    return net, params, x, y


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_dense_hessian_matches_jax_hessian(setup, loss):
    net, params, x, y = setup
    lf = H.mlp_loss(net, loss)
    op = H.hessian_operator(lf, params, (x, y))
    flat, unravel = ravel_pytree(params)
    ref = jax.jit(jax.hessian(lambda p: lf(unravel(p), (x, y))))(flat)  # jit: one program, not per-op eager
    dense = op.dense(chunk_size=50)  # 50 does not divide dim: exercises the padded last chunk
    assert op.dim == flat.size == H.num_params(params)
    np.testing.assert_allclose(dense, ref, atol=EXACT * float(jnp.max(jnp.abs(ref))))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_ggn_matches_explicit_jacobian_product_and_is_psd(setup, loss):
    net, params, x, y = setup
    lf = H.mlp_loss(net, loss)
    g = np.asarray(H.hessian_operator(lf, params, (x, y), kind="ggn").dense())
    flat, unravel = ravel_pytree(params)
    jac = jax.jit(jax.jacfwd(lambda p: net.apply(unravel(p), x)))(flat)  # (n, out, P)
    f = net.apply(params, x)
    h_out = jax.jit(jax.hessian(lambda z: lf.output_loss(z, y)))(f)  # (n, out, n, out)
    ref = np.einsum("aip,aibj,bjq->pq", jac, h_out, jac)
    scale = float(np.max(np.abs(ref)))
    np.testing.assert_allclose(g, ref, atol=EXACT * scale)
    # PSD up to rounding: eigenvalues of a symmetric matrix move by at most ||E||_2 <= P eps max|G|.
    assert np.linalg.eigvalsh(g)[0] >= -g.shape[0] * 1e-15 * scale


def test_linear_model_mse_hessian_closed_form(key):
    # depth 0, no bias, "standard": f = x W, loss (1/n) sum 1/2 |f - y|^2, so H = GGN = (X^T X / n) kron I_out.
    net = MLP(depth=0, width=1, activation="identity", b_std=None, parametrization="standard", out_dim=2)
    kx, kp = jax.random.split(key)
    x = jax.random.normal(kx, (7, 3))
    y = jnp.zeros((7, 2))
    params = net.init(kp, 3)
    lf = H.mlp_loss(net, "mse")
    closed = np.kron(np.asarray(x.T @ x) / 7, np.eye(2))  # W flattened row-major: index (i, k) -> 2 i + k
    for kind in H.KINDS:
        np.testing.assert_allclose(H.hessian_operator(lf, params, (x, y), kind=kind).dense(), closed, atol=1e-13)


def test_per_example_grads(setup):
    net, params, x, y = setup
    lf = H.mlp_loss(net, "cross_entropy")
    pe = H.per_example_grads(lf, params, (x, y))
    assert pe.shape == (10, H.num_params(params))
    _, g = H.loss_and_grad(lf, params, (x, y))
    np.testing.assert_allclose(pe.mean(axis=0), g, atol=EXACT * float(jnp.max(jnp.abs(g))))
    flat, unravel = ravel_pytree(params)
    g3 = jax.grad(lambda p: lf(unravel(p), (x[3:4], y[3:4])))(flat)
    np.testing.assert_allclose(pe[3], g3, atol=1e-14)


def test_matmat_matvec_and_jit_vs_eager(setup, key):
    net, params, x, y = setup
    lf = H.mlp_loss(net, "mse")
    op = H.hessian_operator(lf, params, (x, y))
    vs = jax.random.normal(key, (3, op.dim))
    rows = op.matmat(vs)
    flat, unravel = ravel_pytree(params)
    with jax.disable_jit():
        eager = jax.jvp(jax.grad(lambda p: lf(unravel(p), (x, y))), (flat,), (vs[1],))[1]
    np.testing.assert_allclose(op.matvec(vs[1]), eager, atol=1e-14)
    np.testing.assert_allclose(rows[1], op.matvec(vs[1]), atol=1e-14)


def test_compiled_product_reused_for_new_params_and_batch(setup, key):
    # Params and data are jit arguments, not closure constants: a new point of the same shapes
    # must not compile again.
    net, params, x, y = setup
    lf = H.mlp_loss(net, "mse")
    v = jnp.ones(H.num_params(params))
    H.hessian_operator(lf, params, (x, y)).matvec(v)
    before = H.hvp._cache_size()
    params2 = net.init(key, 4)
    out = H.hessian_operator(lf, params2, (x + 1.0, y), kind="hessian").matvec(v)
    assert H.hvp._cache_size() == before
    assert np.all(np.isfinite(out))


def test_flatten_roundtrip(setup):
    _, params, _, _ = setup
    flat = H.flatten_params(params)
    back = H.unflatten_like(params, flat * 2)
    np.testing.assert_allclose(H.flatten_params(back), flat * 2)
    with pytest.raises(ValueError, match="flat must have shape"):
        H.unflatten_like(params, flat[:-1])


def test_bad_inputs(setup):
    net, params, x, y = setup
    lf = H.mlp_loss(net, "mse")
    with pytest.raises(ValueError, match="must return a scalar"):
        H.hessian_operator(lambda p, b: net.apply(p, b[0]), params, (x, y))
    with pytest.raises(ValueError, match="equal leading sizes"):
        H.hessian_operator(lf, params, (x, y[:5]))
    with pytest.raises(ValueError, match="kind must be one of"):
        H.hessian_operator(lf, params, (x, y), kind="fisher")
    with pytest.raises(TypeError, match="ComposedLoss"):
        H.hessian_operator(lambda p, b: lf(p, b), params, (x, y), kind="ggn")
    with pytest.raises(ValueError, match="non-finite"):
        H.hessian_operator(lf, params, (x.at[2, 1].set(jnp.nan), y))
    with pytest.raises(TypeError, match="batch must be a non-empty tuple"):
        H.hessian_operator(lf, params, x)
    with pytest.raises(ValueError, match="loss must be one of"):
        H.mlp_loss(net, "hinge")
    op = H.hessian_operator(lf, params, (x, y))
    with pytest.raises(ValueError, match="v must have shape"):
        op.matvec(jnp.ones(op.dim + 1))
    with pytest.raises(ValueError, match="equal leading sizes"):
        H.per_example_grads(lf, params, (x, y[:3]))
