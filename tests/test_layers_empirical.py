"""The empirical NTK (kernels.empirical.empirical_ntk, general methods) of workbench.layers nets
equals a dense jax.jacobian reference J J^T to 1e-10 in float64, for every architecture (on a CPU; for the
convolutional nets on a GPU see :data:`GPU_CONV_RTOL`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import TOL
from workbench.kernels.empirical import empirical_ntk
from workbench.layers import (
    AvgPool,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    Relu,
    Residual,
    SelfAttention,
    Tanh,
    serial,
)

ARCHS = {
    "mlp": ((3, 5), serial(Dense(6, b_std=0.1), Relu(), Dense(6), LayerNorm(), Tanh(), Dense(2))),
    "cnn_gap": ((3, 4, 4, 2), serial(Conv(4, (3, 3), b_std=0.1), Relu(), AvgPool((2, 2)), Conv(4, (2, 2)), Relu(),
                                     GlobalAvgPool(), Dense(2))),
    "cnn_flatten": ((3, 5, 5, 2), serial(Conv(4, (3, 3), strides=(2, 2), padding="VALID", parametrization="standard"),
                                         Relu(), Flatten(), Dense(2, parametrization="standard"))),
    "residual_cnn": ((3, 7, 2), serial(Conv(4, 3), Residual(Relu(), Conv(4, 3)), Relu(), GlobalAvgPool(), Dense(2))),
    "attention": ((3, 5, 2), serial(Dense(4), SelfAttention(2, channels=4, linear_scaling=False), Relu(), Flatten(),
                                    Dense(2))),
}


#: float64 convolutions on a GPU run through cuDNN algorithms that XLA's autotuner picks by speed (its correctness
#: check admits far more than float64 rounding), so the two sides of this identity, which convolve in different
#: orders (forward and transposed), are not both exact there. Measured on an H200 (jax 0.11.2, 2026-11-26): the
#: dense Jacobian of the conv nets differed from the CPU's by up to 3.6e-8 relative and the NTK by up to 4.8e-8 of
#: its largest entry, while the forward pass agreed to 6e-16, the unpadded strided conv net's NTK to 5e-16, and
#: the MLP and attention nets (no convolution) passed at 1e-10. The conv nets on a GPU are held to 2e-7 (4x the
#: measured deviation); the CPU run (CI) keeps 1e-10.
GPU_CONV_RTOL = 2e-7
CONV_NETS = {"cnn_gap", "cnn_flatten", "residual_cnn"}


@pytest.mark.parametrize("name", list(ARCHS))
def test_empirical_ntk_equals_dense_jacobian(name):
    shape, net = ARCHS[name]
    x = jax.random.normal(jax.random.PRNGKey(5), shape)
    params = net.init(jax.random.PRNGKey(6), shape)
    jac = jax.jit(jax.jacobian(lambda p: net.apply(p, x)))(params)  # leaves (n, k, *param shape); jit: one program
    j = jnp.concatenate([leaf.reshape(shape[0], 2, -1) for leaf in jax.tree_util.tree_leaves(jac)], axis=-1)
    ref = np.asarray(jnp.einsum("aip,bip->ab", j, j, precision="highest"))
    rtol = GPU_CONV_RTOL if name in CONV_NETS and jax.default_backend() != "cpu" else TOL["float64"]
    for method in ("jacobian", "ntvp"):
        got = np.asarray(empirical_ntk(net.apply, params, x, method=method))
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.abs(ref).max(), err_msg=method)
