"""workbench.layers against closed forms (float64): the MLP, 1x1 convolutions, constant images.

Each check compares two independent computations of the same kernel; identities that hold exactly
in exact arithmetic are held to TOL["float64"] = 1e-10 relative (rounding of a few dozen flops).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import TOL
from workbench.kernels.analytic import Kernels, infinite_kernels
from workbench.layers import (
    Activation,
    AvgPool,
    Conv,
    Dense,
    Erf,
    Flatten,
    GlobalAvgPool,
    Relu,
    mlp_params,
    serial,
)
from workbench.nets import MLP

R2 = 2**0.5


def _close(a: Kernels, b: Kernels, tol: float = TOL["float64"]) -> None:
    for name in ("nngp", "ntk"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol * np.abs(y).max(), err_msg=name)


def _upper(k: Kernels) -> Kernels:
    return Kernels(jnp.triu(k.nngp), jnp.triu(k.ntk))


def _act(name: str, order: int):
    return {"relu": Relu(), "erf": Erf()}.get(name) or Activation(name, quadrature_order=order)


@pytest.mark.parametrize("activation,parametrization,b_std", [
    ("relu", "ntk", 0.3), ("erf", "standard", 0.2), ("gelu", "ntk", None), ("tanh", "standard", None)])
def test_serial_of_dense_equals_mlp(key, activation, parametrization, b_std):
    """MLP == serial(Dense, act, Dense, act, Dense): same kernels, and the same outputs for the same key."""
    order = 65
    mlp = MLP(depth=2, width=6, activation=activation, w_std=1.4, b_std=b_std, parametrization=parametrization)
    net = serial(Dense(6, 1.4, b_std, parametrization), _act(activation, order),
                 Dense(6, 1.4, b_std, parametrization), _act(activation, order),
                 Dense(1, 1.4, b_std, parametrization))
    x = jax.random.normal(key, (5, 4))
    # Net.kernels(x) evaluates the pairs i <= j and mirrors them; a quadrature rule is symmetric in (u, v) only to
    # its own error (~1e-7 at order 65), so compare the triangle where both evaluate E[phi(u_i) phi(u_j)], i <= j
    _close(_upper(net.kernels(x)), _upper(infinite_kernels(mlp, x, quadrature_order=order)))
    # same key -> same parameters (serial draws keys exactly as MLP.init) -> same outputs
    pm = mlp.init(jax.random.PRNGKey(3), 4)
    ps = net.init(jax.random.PRNGKey(3), x.shape)
    assert jax.tree_util.tree_structure(ps) == jax.tree_util.tree_structure(mlp_params(pm))
    np.testing.assert_array_equal(np.asarray(net.apply(ps, x)), np.asarray(mlp.apply(pm, x)))


def test_one_by_one_conv_over_one_position_is_dense(key):
    x = jax.random.normal(key, (4, 5))
    dense = serial(Dense(7, R2, 0.1), Relu(), Dense(7, R2, 0.1), Erf(), Dense(1, R2, 0.1))
    for conv_net, shape in (
        (serial(Conv(7, (1, 1), w_std=R2, b_std=0.1), Relu(), Conv(7, (1, 1), w_std=R2, b_std=0.1), Erf(),
                Flatten(), Dense(1, R2, 0.1)), (4, 1, 1, 5)),
        (serial(Conv(7, 1, w_std=R2, b_std=0.1), Relu(), Conv(7, 1, w_std=R2, b_std=0.1), Erf(),
                GlobalAvgPool(), Dense(1, R2, 0.1)), (4, 1, 5)),
    ):
        _close(conv_net.kernels(x.reshape(shape)), dense.kernels(x))


@pytest.mark.parametrize("parametrization", ["ntk", "standard"])
def test_global_pooling_of_a_constant_image_is_the_mlp_kernel(key, parametrization):
    """A constant image under VALID convs stays constant: every position pair carries the MLP kernel of v.

    Conv(k x k, VALID) sees the patch (v, ..., v): its per-channel input kernel is v.v'/C, as a dense
    layer; AvgPool and GlobalAvgPool average equal entries. Standard parametrization: the NNGP is the
    MLP's, but the NTK's fan-in term is k^2 times the dense one (fan_in = C k^2), so only the NNGP is compared.
    """
    v = jax.random.normal(key, (4, 3))
    image = jnp.broadcast_to(v[:, None, None, :], (4, 6, 6, 3))
    p = parametrization
    net = serial(Conv(5, (3, 3), padding="VALID", w_std=R2, b_std=0.2, parametrization=p), Relu(),
                 AvgPool((2, 2)), Conv(5, (2, 2), padding="VALID", w_std=R2, b_std=0.2, parametrization=p), Relu(),
                 GlobalAvgPool(), Dense(1, R2, 0.2, parametrization=p))
    mlp = MLP(depth=2, width=5, activation="relu", w_std=R2, b_std=0.2, parametrization=p)
    ours, ref = net.kernels(image), infinite_kernels(mlp, v)
    np.testing.assert_allclose(np.asarray(ours.nngp), np.asarray(ref.nngp), rtol=TOL["float64"])
    if p == "ntk":
        np.testing.assert_allclose(np.asarray(ours.ntk), np.asarray(ref.ntk), rtol=TOL["float64"])


def test_one_d_conv_is_a_two_d_conv_over_one_row(key):
    x = jax.random.normal(key, (3, 7, 2))
    one = serial(Conv(4, 3, w_std=R2, b_std=0.1), Relu(), Conv(4, 2, strides=2, padding="VALID"), Relu(),
                 AvgPool(2), GlobalAvgPool(), Dense(1))
    two = serial(Conv(4, (1, 3), w_std=R2, b_std=0.1), Relu(), Conv(4, (1, 2), strides=(1, 2), padding="VALID"),
                 Relu(), AvgPool((1, 2)), GlobalAvgPool(), Dense(1))
    _close(one.kernels(x), two.kernels(x[:, None]))
    p = one.init(jax.random.PRNGKey(1), x.shape)
    # conv filters (k, C, out) -> (1, k, C, out); the dense readout keeps its (C, 1)
    p2 = tuple({k: (v[None] if k == "W" and v.ndim == 3 else v) for k, v in q.items()} if isinstance(q, dict) else q for q in p)
    np.testing.assert_allclose(np.asarray(one.apply(p, x)), np.asarray(two.apply(p2, x[:, None])), rtol=1e-12)


def test_blocks_cross_kernels_and_dtype(key):
    """Blocked (host-assembled, upper triangle), one pair at a time == one block; K(x1, x2) is the off-diagonal block of K(x)."""
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (7, 4, 4, 2))
    net = serial(Conv(3, (3, 3), w_std=R2), Relu(), AvgPool((2, 2), strides=(2, 2)), Conv(3, (2, 2)), Relu(),
                 Flatten(), Dense(1))
    whole = net.kernels(x)
    assert whole.ntk.dtype == jnp.float64
    # blocks of 3 (a ragged last block) and memory_limit=1: one pair in flight at a time (the pair loop's chunking)
    _close(net.kernels(x, block_size=3, memory_limit=1), whole)
    cross = net.kernels(x[:3], x[3:], block_size=2)
    _close(cross, Kernels(whole.nngp[:3, 3:], whole.ntk[:3, 3:]))
    np.testing.assert_allclose(np.asarray(whole.ntk), np.asarray(whole.ntk).T, rtol=1e-13)
    assert np.linalg.eigvalsh(np.asarray(whole.ntk)).min() > 0
    assert "AvgPool((2, 2), strides=(2, 2), VALID)" in net.describe()
