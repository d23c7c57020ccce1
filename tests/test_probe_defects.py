"""One test per defect the bad-input probes (tests/probe_api.py, issue 20) found; each was a silent wrong
result, an error that did not name its argument, or an exception type that is no sentence."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import layers as L
from workbench.dynamics import max_lr_from_ntk
from workbench.hessian import ggn_vp, hvp, mlp_loss, num_params
from workbench.linalg import condition_number
from workbench.nets import MLP
from workbench.rmt import marchenko_pastur_moment
from workbench.validation import check_array, check_lrs

_NET = MLP(depth=1, width=3, activation="tanh")
_PARAMS = _NET.init(jax.random.PRNGKey(0), 2)


def test_text_is_not_a_learning_rate():
    # np.asarray("0.1", dtype=float) parses text: train(lrs="0.1") used to run a training
    with pytest.raises(TypeError, match="lrs must be .* got the text '0.1'"):
        check_lrs("0.1")
    with pytest.raises(TypeError, match="t must be"):
        check_array("t", np.array(["1", "2"]))
    np.testing.assert_array_equal(check_lrs([0.1, 0.2]), [0.1, 0.2])


def test_layer_net_apply_names_a_non_finite_parameter():
    net = L.serial(L.Dense(3), L.Relu(), L.Dense(1))
    params = net.init(jax.random.PRNGKey(0), (2, 2))
    leaves, tree = jax.tree_util.tree_flatten(params)
    leaves[0] = leaves[0].at[(0,) * leaves[0].ndim].set(jnp.nan)
    bad = jax.tree_util.tree_unflatten(tree, leaves)
    with pytest.raises(ValueError, match=r"params: layer 0 .*non-finite"):
        net.apply(bad, np.ones((2, 2)))
    assert np.isnan(np.asarray(net.apply(bad, np.ones((2, 2)), check=False))).all()  # opt-out: NaN propagates


def test_huge_mlp_init_is_refused_before_allocating():
    net = MLP(depth=1, width=10 ** 7)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"width/in_dim: the .* parameters .* needs about \d.* GiB"):
        net.init(jax.random.PRNGKey(0), 10 ** 5)  # 1e12 parameters, 4 TB
    assert time.perf_counter() - start < 1.0  # an estimate, no allocation attempt


def test_hvp_and_ggn_vp_check_the_vector():
    loss = mlp_loss(_NET, "mse")
    batch = (jnp.ones((4, 2)), jnp.ones((4, 1)))
    p = num_params(_PARAMS)
    for fn in (hvp, ggn_vp):
        with pytest.raises(ValueError, match=rf"v must be a flat vector of shape \({p},\)"):
            fn(loss, _PARAMS, batch, jnp.ones(p + 1))
        with pytest.raises(ValueError, match="v contains 1 non-finite value"):
            fn(loss, _PARAMS, batch, jnp.ones(p).at[2].set(jnp.nan))
    # still the Hessian product: against a dense Hessian by jax.hessian of the flat loss (float32 round-off)
    flat, unravel = jax.flatten_util.ravel_pytree(_PARAMS)
    dense = jax.hessian(lambda f: loss(unravel(f), batch))(flat)
    v = jnp.arange(p, dtype=flat.dtype) / p
    np.testing.assert_allclose(hvp(loss, _PARAMS, batch, v), dense @ v, rtol=1e-4, atol=1e-5)


def test_max_lr_from_ntk_checks_num_outputs():
    k = np.array([[2.0, 0.5], [0.5, 1.0]])
    with pytest.raises(ValueError, match="num_outputs must be an integer >= 1"):
        max_lr_from_ntk(k, loss="mean", num_outputs=0)
    with pytest.raises(TypeError, match="num_outputs"):
        max_lr_from_ntk(k, loss="mean", num_outputs=1.5)
    lam = np.linalg.eigvalsh(k)[-1]
    assert max_lr_from_ntk(k, loss="mean", num_outputs=3) == pytest.approx(2.0 * 2 * 3 / lam, rel=1e-12)


def test_marchenko_pastur_moment_large_k_is_a_number_or_a_sentence():
    with pytest.raises(ValueError, match="k must be an integer <= 100000"):
        marchenko_pastur_moment(10 ** 6, 0.5)  # was OverflowError: int too large to convert to float
    with pytest.raises(ValueError, match="beyond the float64 range"):
        marchenko_pastur_moment(3000, 4.0)  # (1 + 2)^6000: about 10^2863
    # k = 600, ratio 1/4: the terms overflow a float (the log-space path), the moment (<= 1.5^1200) does not;
    # against the exact rational sum. Tolerance 1e-9: lgamma carries ~1e-13 relative error per term and the
    # exponent (~480 in natural log) amplifies an absolute log error of ~1e-13 * 480 ~ 5e-11.
    k = 600
    exact = sum(Fraction(1, 4) ** r / (r + 1) * math.comb(k, r) * math.comb(k - 1, r) for r in range(k))
    assert marchenko_pastur_moment(k, 0.25) == pytest.approx(float(exact), rel=1e-9)
    assert marchenko_pastur_moment(2, 0.5) == pytest.approx(1.5, rel=1e-15)  # m2 = 1 + ratio, exact path


def test_condition_number_of_an_empty_matrix_names_k():
    with pytest.raises(ValueError, match=r"k must be a non-empty square matrix, got shape \(0, 0\)"):
        condition_number(np.zeros((0, 0)))
    assert condition_number(np.diag([4.0, 2.0])) == pytest.approx(2.0)
