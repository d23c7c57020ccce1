"""Bad input to workbench.layers: clear errors that name the layer and the shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from workbench.layers import (
    AvgPool,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    LayerShapeError,
    Relu,
    Residual,
    SelfAttention,
    serial,
)


def test_wrong_rank_names_layer_and_shape():
    net = serial(Conv(4, (3, 3)), Relu(), Flatten(), Dense(1))
    with pytest.raises(LayerShapeError, match=r"Conv\(4, \(3, 3\).*shape \(n, 6, 2\).*rank 4"):
        net.kernels(jnp.ones((2, 6, 2)))
    with pytest.raises(LayerShapeError, match=r"Conv\(4, \(3,\)"):
        serial(Conv(4, 3)).init(jax.random.PRNGKey(0), (2, 6, 6, 2))


def test_valid_window_larger_than_input():
    with pytest.raises(LayerShapeError, match=r"Conv\(2, \(5, 5\).*\(n, 4, 4, 1\).*larger than the input"):
        serial(Conv(2, (5, 5), padding="VALID")).init(jax.random.PRNGKey(0), (1, 4, 4, 1))
    with pytest.raises(LayerShapeError, match=r"AvgPool\(\(3, 3\).*\(n, 2, 2, 2\).*larger than the input"):
        serial(Conv(2, (1, 1)), AvgPool((3, 3)), GlobalAvgPool(), Dense(1)).kernels(jnp.ones((1, 2, 2, 1)))


@pytest.mark.parametrize("make", [lambda: Conv(0, (3, 3)), lambda: Dense(-2), lambda: SelfAttention(2, channels=0),
                                  lambda: SelfAttention(0), lambda: Conv(4, (0, 3))])
def test_non_positive_channels(make):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        make()


def test_attention_needs_a_position_axis():
    with pytest.raises(LayerShapeError, match=r"SelfAttention\(heads=2.*\(n, 4\).*position axis"):
        serial(Dense(4), SelfAttention(2), Dense(1)).kernels(jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="linear_scaling=True"):
        serial(SelfAttention(2, linear_scaling=False), GlobalAvgPool(), Dense(1)).kernels(jnp.ones((2, 3, 4)))


def test_layer_norm_over_an_axis_of_size_one():
    with pytest.raises(LayerShapeError, match=r"LayerNorm\(axis=-1\).*\(n, 1\).*size 1"):
        serial(Dense(1), LayerNorm(), Dense(1)).kernels(jnp.ones((3, 4)))
    with pytest.raises(LayerShapeError, match=r"LayerNorm\(axis=\(1, -1\)\).*\(n, 1, 4\).*size 1"):
        serial(LayerNorm(axis=(1, -1))).apply(((),), jnp.ones((2, 1, 4)))
    with pytest.raises(LayerShapeError, match="must include the channel axis"):
        serial(Conv(3, 3), LayerNorm(axis=1)).init(jax.random.PRNGKey(0), (1, 5, 2))


def test_other_bad_input():
    with pytest.raises(LayerShapeError, match=r"Residual.*same shape"):
        serial(Residual(Conv(3, 3))).init(jax.random.PRNGKey(0), (1, 5, 2))
    with pytest.raises(ValueError, match="weighted layer"):
        Residual(Relu())
    with pytest.raises(TypeError, match="entry 1 must be a layer"):
        serial(Dense(2), "relu")
    with pytest.raises(ValueError, match="non-finite"):
        serial(Dense(1)).kernels(jnp.array([[1.0, jnp.nan]]))
    with pytest.raises(ValueError, match="padding must be one of"):
        Conv(2, 3, padding="FULL")
    with pytest.raises(ValueError, match="feature shape"):
        serial(Dense(1)).kernels(jnp.ones((2, 3)), jnp.ones((2, 4)))
