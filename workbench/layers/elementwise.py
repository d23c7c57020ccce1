"""Elementwise nonlinearities: ``Relu``, ``Erf``, ``Tanh``, ``Gelu`` and ``Activation(fn)``.

Kernel rule, for every pair of positions (p of x1, q of x2) with (u, v) ~ N(0, [[K11, K12], [K12, K22]]),
K11 = K(x1, x1)(p, p), K22 = K(x2, x2)(q, q), K12 = K(x1, x2)(p, q):
K' = E[phi(u) phi(v)], Theta' = E[phi'(u) phi'(v)] Theta (Jacot et al. 2018; Lee et al. 2018).

Expectations: relu by the arc-cosine kernels (Cho & Saul 2009), erf by Williams (1997), both in
closed form from :mod:`workbench.kernels.analytic`; tanh, gelu (exact, x Phi(x), as neural-tangents'
``Gelu(approximate=False)``) and any user function by the tensor quadrature of
:func:`workbench.kernels.analytic.gauss_hermite_expectations` (the MLP's rule; ``quadrature_order``
nodes per axis, default :data:`DEFAULT_QUADRATURE_ORDER`, ``rule="hermite"`` for Gauss-Hermite).
Same-input variances use the 1-d rule (``u = v``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from workbench.kernels.analytic import (
    RULES,
    _derivative,
    erf_expectations,
    gauss_hermite_expectations,
    gaussian_rule,
    relu_expectations,
)
from workbench.layers.base import KernelState, Layer, Shape, pair_broadcast, self_broadcast
from workbench.nets import ACTIVATIONS, activation_name
from workbench.validation import check_choice, check_positive_int

#: quadrature nodes per axis for activations without a closed form (trapezoid rule on [-9, 9] sd):
#: for tanh at pre-activation variance up to ~4 the expectations are then accurate to ~1e-9
DEFAULT_QUADRATURE_ORDER = 161


def _expectations_1d(phi, k: jax.Array, order: int, rule: str) -> tuple[jax.Array, jax.Array]:
    """E[phi(u)^2], E[phi'(u)^2] for u ~ N(0, k) (k any shape) by the 1-d rule."""
    z, w = gaussian_rule(order, rule)
    lead = (1,) * k.ndim
    z, w = jnp.asarray(z, k.dtype).reshape(lead + (-1,)), jnp.asarray(w, k.dtype).reshape(lead + (-1,))
    u = jnp.sqrt(k)[..., None] * z
    return jnp.sum(w * phi(u) ** 2, axis=-1), jnp.sum(w * _derivative(phi)(u) ** 2, axis=-1)


class _Elementwise(Layer):
    """Shared kernel plumbing: subclasses define ``phi`` and ``expectations(k11, k22, k12)``."""

    def expectations(self, k11, k22, k12):  # pragma: no cover - overridden
        raise NotImplementedError

    def self_expectation(self, k: jax.Array) -> jax.Array:
        return self.expectations(k, k, k)[0]

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) < 2:
            raise self.error(in_shape, "it needs inputs of rank >= 2 (n, ..., channels)")
        return in_shape

    def apply(self, params, x: jax.Array) -> jax.Array:
        return self.phi(x)

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        d1, d2 = state.position_variances()
        nngp = ntk = var1 = var2 = None
        if state.nngp is not None:
            k11, k22 = pair_broadcast(d1, d2, state.full)
            k12 = state.nngp
            if state.same is not None:  # the same input at the same position: K12 = K11 exactly
                at_p = state.same.reshape(state.same.shape + (1,) * (k12.ndim - state.same.ndim))
                if state.full:
                    s = (k12.ndim - 2) // 2
                    size = math.prod(k12.shape[2:2 + s])
                    at_p = at_p & jnp.eye(size, dtype=bool).reshape((1, 1) + k12.shape[2:])
                k12 = jnp.where(at_p, k11, k12)
            nngp, dphi = self.expectations(k11, k22, k12)
            ntk = dphi * state.ntk
        if state.var1 is not None:
            var1 = self._self_rule(state.var1, d1, state.full)
        if state.var2 is not None:
            var2 = self._self_rule(state.var2, d2, state.full)
        return KernelState(nngp, ntk, var1, var2, state.full, state.tape, state.same)

    def _self_rule(self, var: jax.Array, d: jax.Array, full: bool) -> jax.Array:
        if full:
            return self.expectations(*self_broadcast(d), var)[0]
        return self.self_expectation(var)


@dataclasses.dataclass(frozen=True)
class Relu(_Elementwise):
    """phi(x) = max(x, 0); arc-cosine kernel expectations (Cho & Saul 2009)."""

    def describe(self) -> str:
        return "Relu()"

    @property
    def phi(self) -> Callable[[jax.Array], jax.Array]:
        return ACTIVATIONS["relu"]

    def expectations(self, k11, k22, k12):
        return relu_expectations(k11, k22, k12)


@dataclasses.dataclass(frozen=True)
class Erf(_Elementwise):
    """phi(x) = erf(x); Williams (1997) expectations (neural-tangents' ``Erf(a=1, b=1, c=0)``)."""

    def describe(self) -> str:
        return "Erf()"

    @property
    def phi(self) -> Callable[[jax.Array], jax.Array]:
        return ACTIVATIONS["erf"]

    def expectations(self, k11, k22, k12):
        return erf_expectations(k11, k22, k12)


@dataclasses.dataclass(frozen=True)
class Activation(_Elementwise):
    """Any elementwise JAX function ``fn`` (or a name of :data:`workbench.nets.ACTIVATIONS`), by quadrature.

    ``quadrature_order`` nodes per axis of the 2-d rule (``rule``: "trapezoid" or "hermite", see
    :func:`workbench.kernels.analytic.gaussian_rule`). The function must be finite on Gaussian nodes
    out to 9 standard deviations of the pre-activations.
    """

    fn: Callable[[jax.Array], jax.Array] | str
    quadrature_order: int = DEFAULT_QUADRATURE_ORDER
    rule: str = "trapezoid"

    def __post_init__(self) -> None:
        if isinstance(self.fn, str):
            check_choice("Activation fn", self.fn, tuple(ACTIVATIONS))
        elif not callable(self.fn):
            raise TypeError(f"Activation fn must be an elementwise JAX function or a name in {tuple(ACTIVATIONS)}, "
                            f"got {self.fn!r}")
        check_positive_int("Activation quadrature_order", self.quadrature_order, minimum=2)
        check_choice("Activation rule", self.rule, RULES)

    def describe(self) -> str:
        return f"Activation({activation_name(self.fn)}, quadrature_order={self.quadrature_order})"

    @property
    def phi(self) -> Callable[[jax.Array], jax.Array]:
        return ACTIVATIONS[self.fn] if isinstance(self.fn, str) else self.fn

    def expectations(self, k11, k22, k12):
        return gauss_hermite_expectations(self.phi, k11, k22, k12, self.quadrature_order, self.rule)

    def self_expectation(self, k: jax.Array) -> jax.Array:
        return _expectations_1d(self.phi, k, self.quadrature_order, self.rule)[0]


def Tanh(quadrature_order: int = DEFAULT_QUADRATURE_ORDER) -> Activation:  # noqa: N802 - a layer constructor
    """phi = tanh, by quadrature (no closed form)."""
    return Activation("tanh", quadrature_order)


def Gelu(quadrature_order: int = DEFAULT_QUADRATURE_ORDER) -> Activation:  # noqa: N802 - a layer constructor
    """phi(x) = x Phi(x) (exact GELU), by quadrature."""
    return Activation("gelu", quadrature_order)
