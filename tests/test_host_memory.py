"""``workbench.host_memory``: freed compiler memory handed back after each compilation inside the context."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import host_memory
from workbench.kernels.analytic import infinite_kernels
from workbench.nets import MLP


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """glibc's malloc_trim replaced by a recorder (the test counts calls, it does not measure memory)."""
    calls: list[int] = []
    monkeypatch.setattr(host_memory, "_malloc_trim", lambda pad: calls.append(pad) or 1)
    return calls


@pytest.fixture
def compiles() -> list[str]:
    """The backend-compilation events jax reports while the test runs (so a test knows a compilation happened)."""
    seen: list[str] = []

    def listen(event: str, duration: float, **kwargs) -> None:
        if event == host_memory.BACKEND_COMPILE_EVENT:
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    yield seen
    jax.monitoring.unregister_event_duration_listener(listen)


def _fresh_program() -> jax.Array:
    """A program no cache holds: its constant is new in each call (compiles in milliseconds: never stored)."""
    c = float(time.perf_counter_ns() % 1_000_003)
    return jax.jit(lambda v: v * c + 1.0)(jnp.ones(3))


def test_a_compilation_inside_the_context_is_followed_by_one_trim(trims, compiles) -> None:
    with host_memory.trim_after_compiling():
        _fresh_program()
    # jax still reports its backend compilations under this name (a renamed event would silently stop the trims)
    assert len(compiles) >= 1
    assert trims == [0] * len(compiles)


def test_no_trim_outside_the_context_nor_when_nothing_compiles(trims, compiles) -> None:
    _fresh_program()
    assert len(compiles) >= 1 and trims == []
    f = jax.jit(lambda v: v + 1.0)
    f(jnp.ones(2))
    trims.clear()
    compiles.clear()
    with host_memory.trim_after_compiling(), host_memory.trim_after_compiling():  # nested: still one per compile
        f(jnp.ones(2))  # compiled already
    assert compiles == [] and trims == []
    assert host_memory._active == 0


def test_the_context_closes_on_an_error(trims) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with host_memory.trim_after_compiling():
            raise RuntimeError("boom")
    assert host_memory._active == 0
    _fresh_program()
    assert trims == []


def test_infinite_kernels_trims_after_compiling_and_returns_the_same_kernel(trims, compiles) -> None:
    # an input width no earlier call used, so that this call compiles (a persistent-cache hit would not)
    d = 1000 + time.perf_counter_ns() % 20_000
    x = jax.random.normal(jax.random.PRNGKey(0), (5, d)) / np.sqrt(d)
    net = MLP(depth=2, width=1, activation="relu", w_std=2**0.5, b_std=0.1)
    k = infinite_kernels(net, x, get="ntk").ntk
    # the kernel's program compiled inside the context (the input checks' small eager programs compile outside it)
    assert 1 <= len(trims) <= len(compiles)
    trims.clear()
    compiles.clear()
    again = infinite_kernels(net, x, get="ntk").ntk  # compiled already: nothing to hand back
    assert trims == []
    np.testing.assert_array_equal(np.asarray(k), np.asarray(again))


def test_trim_available_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert host_memory.trim_available()
