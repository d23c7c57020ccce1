"""Tests of workbench.hessian_diagonal: the exact MLP Hessian / GGN diagonal against the dense operator."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from workbench import hessian as H
from workbench.hessian_diagonal import exact_trace, hessian_diagonal
from workbench.nets import MLP

# Both sides are exact in float64 (the dense side: jax.hessian through the same loss); they differ by
# rounding of sums of a few hundred terms: ~1e-15 relative, so 1e-11 of the largest diagonal entry.
EXACT = 1e-11

# depth 0: a linear model; depth 1-2: the residual part stays diagonal; depth 3-4: full residual blocks.
# The default tier runs the two deep cases (every code path: diagonal and full residual blocks, both
# parametrization branches, bias and no bias); the slow tier adds the rest.
CASES = [
    pytest.param((0, "tanh", "ntk", 0.3, "mse"), marks=pytest.mark.slow, id="depth0-tanh-ntk-mse"),
    pytest.param((2, "erf", "ntk", 0.5, "cross_entropy"), id="depth2-erf-ntk-cross_entropy"),
    pytest.param((3, "tanh", "mup", 0.2, "mse"), marks=pytest.mark.slow, id="depth3-tanh-mup-mse"),
    pytest.param((4, "gelu", "standard", None, "cross_entropy"), id="depth4-gelu-standard-cross_entropy"),
]


def _problem(depth, act, par, b_std, loss, n=11):
    net = MLP(depth=depth, width=5, activation=act, w_std=1.3, b_std=b_std, parametrization=par, out_dim=3)
    params = net.init(jax.random.PRNGKey(depth), 4)
    x = jax.random.normal(jax.random.PRNGKey(7), (n, 4))
    if loss == "cross_entropy":
        y = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(8), (n, 3)))
    else:
        y = jax.random.normal(jax.random.PRNGKey(8), (n, 3))
    return net, params, (x, y), H.mlp_loss(net, loss)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["hessian", pytest.param("ggn", marks=pytest.mark.slow)])
def test_diagonal_equals_dense_operator(case, kind):
    with jax.enable_x64(True):
        net, params, batch, lf = _problem(*case)
        dense = np.asarray(H.hessian_operator(lf, params, batch, kind=kind).dense())
        # chunk 4 does not divide the 11 examples: exercises the masked padding of the last chunk
        diag = hessian_diagonal(lf, params, batch, kind=kind, chunk_size=4)
        flat = np.asarray(H.flatten_params(diag))
        scale = np.max(np.abs(np.diag(dense)))
        np.testing.assert_allclose(flat, np.diag(dense), rtol=0, atol=EXACT * scale)
        assert jax.tree_util.tree_structure(diag) == jax.tree_util.tree_structure(params)
        tr = exact_trace(lf, params, batch, kind=kind, chunk_size=4)  # the same compiled program
        assert tr.stderr == 0.0 and tr.num_matvecs == 0 and tr.method == "exact_diagonal"
        assert abs(tr.trace - np.trace(dense)) <= EXACT * scale * dense.shape[0]


def test_hessian_and_ggn_differ_by_the_residual_term():
    """The two kinds must not coincide where the residual (phi'' and loss-gradient) term is non-zero: a wrong
    implementation that dropped it in ``kind="hessian"`` would pass the GGN comparison only."""
    with jax.enable_x64(True):
        net, params, batch, lf = _problem(2, "tanh", "standard", 0.1, "cross_entropy")
        h = np.asarray(H.flatten_params(hessian_diagonal(lf, params, batch)))
        g = np.asarray(H.flatten_params(hessian_diagonal(lf, params, batch, kind="ggn")))
        assert np.max(np.abs(h - g)) > 1e-3 * np.max(np.abs(g))


def test_bad_inputs_are_refused_with_clear_errors():
    net, params, (x, y), lf = _problem(1, "tanh", "ntk", 0.1, "mse")
    with pytest.raises(TypeError, match="ComposedLoss of a workbench MLP"):
        hessian_diagonal(lambda p, b: 0.0, params, (x, y))
    with pytest.raises(ValueError, match="kind"):
        hessian_diagonal(lf, params, (x, y), kind="fisher")
    with pytest.raises(ValueError, match=r"y must have shape \(n, 3\)"):
        hessian_diagonal(lf, params, (x, y[:, :2]))
    with pytest.raises(ValueError, match="chunk_size"):
        hessian_diagonal(lf, params, (x, y), chunk_size=0)
    with pytest.raises(ValueError, match="finite"):
        hessian_diagonal(lf, params, (x.at[0, 0].set(np.nan), y))
