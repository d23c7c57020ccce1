"""Price's theorem for any user-typed activation: d/dK12 E[phi(u) phi(v)] = E[phi'(u) phi'(v)] (Price 1958).

The activation is parsed safely (:mod:`workbench.symbolic.expressions`), differentiated by sympy, and both
phi and phi' are lambdified to JAX. The left side differentiates a Gauss-Hermite quadrature of E[phi phi]
with respect to K12 by JAX autodiff; the right side is the quadrature of E[phi' phi']. Each side's error is
estimated by the same rule at twice the nodes; the identity holds within the sum of the two estimates.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from workbench.symbolic.core import JAX_MODULES, fp_floor
from workbench.symbolic.expressions import parse_expression
from workbench.validation import check_positive_int, check_real

X = sp.Symbol("x", real=True)


class PriceCheck(NamedTuple):
    """Both sides of Price's identity along K12, with error estimates and the verdict."""

    activation: str
    phi: sp.Expr
    dphi: sp.Expr
    k12: np.ndarray
    lhs: np.ndarray
    rhs: np.ndarray
    tolerance: np.ndarray
    passed: bool
    smooth: bool

    def message(self) -> str:
        verdict = "holds" if self.passed else "FAILS"
        err = float(np.max(np.abs(self.lhs - self.rhs)))
        note = "" if self.smooth else (" (kinked activation: Gauss-Hermite converges slowly and its error estimate "
                                       "is not reliable here)")
        return f"Price's identity {verdict} for phi = {self.phi}: max |lhs - rhs| = {err:.2e}{note}"


def _gh(nodes: int) -> tuple[jax.Array, jax.Array]:
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return jnp.asarray(x), jnp.asarray(w / np.sqrt(2 * np.pi))


def _pair_expectation(f, g, k11: float, k22: float, k12: jax.Array, nodes: int) -> jax.Array:
    """E[f(u) g(v)] by a tensor Gauss-Hermite rule, differentiable in k12 (JAX)."""
    x, w = _gh(nodes)
    a = jnp.sqrt(k11)
    b = k12 / a
    c = jnp.sqrt(jnp.maximum(k22 - b * b, 0.0))
    vals = f(a * x)[:, None] * g(b * x[:, None] + c * x[None, :])
    return w @ vals @ w


def price_check(activation: str, *, k11: float = 1.0, k22: float = 1.0, num: int = 9,
                nodes: int = 60) -> PriceCheck:
    """Check d/dK12 E[phi phi] = E[phi' phi'] for ``activation`` (text, e.g. "tanh(x)") on a K12 grid.

    K12 runs over +-0.9 sqrt(K11 K22). Tolerance per point: the two sides' quadrature error estimates
    |Q(nodes) - Q(2 nodes)| plus rounding. A kinked activation (relu) converges slowly under Gauss-Hermite,
    so its estimates, and tolerances, are larger.
    """
    k11 = check_real("k11", k11, positive=True)
    k22 = check_real("k22", k22, positive=True)
    num = check_positive_int("num", num, minimum=2)
    nodes = check_positive_int("nodes", nodes, minimum=4)
    phi = parse_expression(activation, ("x",))
    phi = phi.subs(sp.Symbol("x", real=True), X)
    dphi = sp.diff(phi, X)
    f = sp.lambdify(X, phi, modules=JAX_MODULES)
    df = sp.lambdify(X, dphi, modules=JAX_MODULES)
    fv = lambda t: jnp.broadcast_to(jnp.asarray(f(t), dtype=t.dtype), t.shape)  # noqa: E731  (constants broadcast)
    dfv = lambda t: jnp.broadcast_to(jnp.asarray(df(t), dtype=t.dtype), t.shape)  # noqa: E731
    k12 = np.linspace(-0.9, 0.9, num) * np.sqrt(k11 * k22)
    lhs, rhs = [], []
    for n in (nodes, 2 * nodes):
        grad = jax.vmap(jax.grad(lambda s, n=n: _pair_expectation(fv, fv, k11, k22, s, n)))
        lhs.append(np.asarray(grad(jnp.asarray(k12)), dtype=float))
        rhs.append(np.asarray(jax.vmap(lambda s, n=n: _pair_expectation(dfv, dfv, k11, k22, s, n))(jnp.asarray(k12)),
                              dtype=float))
    tol = np.abs(lhs[1] - lhs[0]) + np.abs(rhs[1] - rhs[0]) + fp_floor(rhs[1])
    passed = bool(np.all(np.abs(lhs[1] - rhs[1]) <= tol))
    smooth = not (phi.has(sp.Max, sp.Min, sp.Abs) or dphi.has(sp.Heaviside, sp.DiracDelta))
    return PriceCheck(activation, phi, dphi, k12, lhs[1], rhs[1], tol, passed, smooth)
