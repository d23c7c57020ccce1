"""Empirical NTK: every method against a dense jax.jacobian reference, blocking, sharding, bad inputs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench.kernels.empirical import KernelMemoryError, empirical_ntk, estimate_memory
from workbench.nets import MLP

# float64 contractions of a few hundred terms: agreement to 1e-10 relative (the bar) with ample margin
RTOL = 1e-10


def reference_ntk(apply_fn, params, x1, x2):
    """Dense reference: jax.jacobian of the batched outputs, contracted over every parameter, (n1, n2, k, k)."""
    jac = jax.jit(jax.jacobian(apply_fn))
    j1 = jax.tree_util.tree_leaves(jac(params, x1))
    j2 = jax.tree_util.tree_leaves(jac(params, x2))
    n1, n2 = x1.shape[0], x2.shape[0]
    return sum(jnp.einsum("aip,bjp->abij", a.reshape(n1, a.shape[1], -1), b.reshape(n2, b.shape[1], -1))
               for a, b in zip(j1, j2))


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=rtol * float(np.max(np.abs(b))))


@pytest.fixture
def data(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (5, 4)), jax.random.normal(k2, (3, 4))


@pytest.mark.parametrize("method", ["jacobian", "ntvp", "structured"])
def test_methods_match_dense_reference(key, data, method):
    x1, x2 = data
    net = MLP(depth=2, width=6, activation="tanh", w_std=1.3, b_std=0.4, out_dim=2)
    params = net.init(key, 4)
    ref = reference_ntk(net.apply, params, x1, x2)
    _close(empirical_ntk(net, params, x1, x2, method=method, output="full"), ref)
    _close(empirical_ntk(net, params, x1, x2, method=method), jnp.trace(ref, axis1=2, axis2=3))


@pytest.mark.parametrize("parametrization,b_std", [("standard", 0.2), ("mup", None), ("ntk", None)])
def test_structured_all_parametrizations(key, data, parametrization, b_std):
    x1, x2 = data
    net = MLP(depth=2, width=5, activation="relu", w_std=1.4, b_std=b_std, parametrization=parametrization, out_dim=2)
    params = net.init(key, 4)
    ref = reference_ntk(net.apply, params, x1, x2)
    _close(empirical_ntk(net.apply, params, x1, x2, method="structured", output="full"), ref)


def test_general_pytree_apply_fn(key, data):
    # a model that is not an MLP: dict params, a residual tanh block, a 2-d output
    x1, x2 = data
    ka, kb, kc = jax.random.split(key, 3)
    params = {"embed": jax.random.normal(ka, (4, 6)) / 2, "block": {"w": jax.random.normal(kb, (6, 6)) / 3},
              "head": jax.random.normal(kc, (6, 2)) / 3}

    def apply_fn(p, x):
        h = x @ p["embed"]
        h = h + jnp.tanh(h @ p["block"]["w"])
        return jnp.sin(h) @ p["head"]

    ref = reference_ntk(apply_fn, params, x1, x2)
    for method in ("jacobian", "ntvp", "auto"):
        _close(empirical_ntk(apply_fn, params, x1, x2, method=method, output="full"), ref)


@pytest.mark.parametrize("method", ["jacobian", "structured"])
def test_jit_and_eager_agree(key, data, method):
    x1, _ = data
    net = MLP(depth=1, width=5, activation="erf", w_std=1.2, b_std=0.1)
    params = net.init(key, 4)
    jitted = jax.jit(lambda p, x: empirical_ntk(net, p, x, method=method))(params, x1)
    with jax.disable_jit():
        eager = empirical_ntk(net, params, x1, method=method)
    _close(jitted, eager)


def test_blocked_equals_unblocked(key):
    net = MLP(depth=2, width=5, activation="relu", w_std=1.4, b_std=0.1, out_dim=2)
    params = net.init(key, 3)
    x1 = jax.random.normal(jax.random.PRNGKey(3), (7, 3))
    x2 = jax.random.normal(jax.random.PRNGKey(4), (4, 3))
    full = empirical_ntk(net, params, x1, output="full")
    # ragged blocks: 7 = 4 + 3; x2=None fills the lower triangle of blocks by symmetry
    _close(empirical_ntk(net, params, x1, output="full", block_size=4), full)
    _close(empirical_ntk(net, params, x1, block_size=4), jnp.trace(full, axis1=2, axis2=3))
    _close(empirical_ntk(net, params, x1, x2, block_size=4), empirical_ntk(net, params, x1, x2))


def test_memory_estimate_and_error(key):
    net = MLP(depth=1, width=32)
    params = net.init(key, 8)
    x = jnp.ones((4000, 8))
    small = estimate_memory(net, params, x, block_size=250)
    large = estimate_memory(net, params, x)
    assert small < large
    # a budget between the two: refused unblocked, with a block size that the estimate says fits
    budget = (small + large) // 2
    with pytest.raises(KernelMemoryError, match=r"block_size=(\d+) would fit") as info:
        empirical_ntk(net, params, x, memory_limit=budget)
    suggested = int(info.value.args[0].split("block_size=")[-1].split()[0])
    assert estimate_memory(net, params, x, block_size=suggested) <= budget
    # the kernel itself (4000^2 float64 = 128 MB) cannot fit 1 MB
    with pytest.raises(ValueError, match="no block size fits"):
        empirical_ntk(net, params, x, memory_limit=2**20, block_size=10)


def test_bad_inputs(key, data):
    x1, x2 = data
    net = MLP(depth=1, width=4)
    params = net.init(key, 4)
    with pytest.raises(ValueError, match="same feature shape"):
        empirical_ntk(net, params, x1, jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        empirical_ntk(net, params, x1.at[1, 2].set(jnp.inf))
    with pytest.raises(ValueError, match="non-finite"):
        empirical_ntk(net, params, x1, x2.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="block_size must be an integer >= 1"):
        empirical_ntk(net, params, x1, block_size=0)
    with pytest.raises(ValueError, match="rank 1, expected 2"):
        empirical_ntk(lambda p, x: net.apply(p, x)[:, 0], params, x1)
    with pytest.raises(ValueError, match="method must be one of"):
        empirical_ntk(net, params, x1, method="fast")
    with pytest.raises(ValueError, match="output must be one of"):
        empirical_ntk(net, params, x1, output="diag")
    with pytest.raises(ValueError, match="needs the layer structure"):
        empirical_ntk(lambda p, x: net.apply(p, x), params, x1, method="structured")


SHARDING_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from workbench.kernels.empirical import empirical_ntk
    from workbench.nets import MLP
    assert jax.device_count() == 4, jax.devices()
    net = MLP(depth=2, width=8, activation="tanh", w_std=1.3, b_std=0.2)
    params = net.init(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (10, 3))
    one = empirical_ntk(net, params, x, devices=jax.devices()[:1])
    sharded = empirical_ntk(net, params, x)
    assert len(sharded.sharding.device_set) == 4, sharded.sharding
    blocked = empirical_ntk(net, params, x, block_size=3, method="ntvp")
    scale = float(np.max(np.abs(one)))
    print(float(np.max(np.abs(sharded - one))) / scale, float(np.max(np.abs(blocked - one))) / scale)
""")


def test_sharded_over_four_host_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SHARDING_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    errors = [float(v) for v in out.stdout.split()]
    assert max(errors) < RTOL


def test_symmetric_row_blocks_match_general_path(key):
    # n >= SYMMETRIC_MIN_ROWS with x2=None takes the upper-triangle-of-blocks path; an x2 that differs from x
    # in its last row takes the general path (x2 equal to x would be detected and take the symmetric one)
    from workbench.kernels.empirical import SYMMETRIC_MIN_ROWS

    net = MLP(depth=1, width=3, activation="tanh", w_std=1.2, b_std=0.3, out_dim=2)
    params = net.init(key, 2)
    x = jax.random.normal(jax.random.PRNGKey(5), (SYMMETRIC_MIN_ROWS + 3, 2))
    x2 = x.at[-1].add(1.0)
    _close(empirical_ntk(net, params, x)[:, :-1], empirical_ntk(net, params, x, x2)[:, :-1])
    # x2 is x, or an equal copy: the symmetric path, bit for bit (its lower blocks are exact transposes)
    sym = np.asarray(empirical_ntk(net, params, x))
    assert np.array_equal(sym, sym.T)
    for same in (x, jnp.array(np.asarray(x))):
        assert np.array_equal(np.asarray(empirical_ntk(net, params, x, same)), sym)



def test_structured_program_is_reused_across_w_std_and_b_std(key, data):
    """A slider on w_std or b_std must not recompile the structured kernel (issue 12: each move of the NTK panel's
    convergence study recompiled every width); each kernel still equals the dense reference. (A new width changes
    the parameters' shapes, so it compiles once per width.)"""
    from workbench.kernels.empirical import _block_jit

    x1, x2 = data
    base = MLP(depth=2, width=6, activation="tanh", w_std=1.3, b_std=0.4, out_dim=2)
    empirical_ntk(base, base.init(key, 4), x1, x2)  # compiles once
    size = _block_jit._cache_size()
    for w_std, b_std, width in ((0.7, 0.4, 6), (1.9, 0.05, 6), (1.3, 1.2, 6)):
        net = MLP(depth=2, width=width, activation="tanh", w_std=w_std, b_std=b_std, out_dim=2)
        params = net.init(key, 4)
        got = empirical_ntk(net, params, x1, x2)
        _close(got, jnp.trace(reference_ntk(net.apply, params, x1, x2), axis1=2, axis2=3))
    assert _block_jit._cache_size() == size
    for parametrization in ("standard", "mup"):  # s = c = 1 there: w_std and b_std only enter the initialization
        net = MLP(depth=2, width=6, activation="tanh", w_std=0.8, b_std=0.3, parametrization=parametrization, out_dim=2)
        params = net.init(key, 4)
        _close(empirical_ntk(net, params, x1, x2), jnp.trace(reference_ntk(net.apply, params, x1, x2), axis1=2, axis2=3))
