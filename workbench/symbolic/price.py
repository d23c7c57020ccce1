"""Price's theorem for any user-typed activation: d/dK12 E[phi(u) phi(v)] = E[phi'(u) phi'(v)] (Price 1958).

The activation is parsed safely (:mod:`workbench.symbolic.expressions`: bounded numbers and exponents),
differentiated by sympy and lambdified to JAX under a wall-clock limit, so no typed text can freeze the kernel.
Both phi and phi' must be finite real numbers on the whole real line (the Gaussian puts mass everywhere): they
are evaluated at every quadrature abscissa and on a grid, and an activation such as ``log(x)`` is refused with
the first point where it is undefined instead of reporting NaN. The left side differentiates a Gauss-Hermite quadrature of E[phi phi]
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
from workbench.symbolic.expressions import TIME_LIMIT, ExpressionError, parse_expression, run_with_time_limit
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


def _check_defined(name: str, fn, expr: sp.Expr, points: np.ndarray, activation: str) -> None:
    """Refuse ``fn`` (the lambdified ``expr``) if it is NaN, infinite or complex at any of ``points``."""
    with np.errstate(all="ignore"):
        vals = np.asarray(fn(jnp.asarray(points)))
    bad = ~np.isfinite(vals) if np.isrealobj(vals) else ~(np.isfinite(vals) & (np.imag(vals) == 0))
    if np.any(bad):
        i = int(np.argmax(bad))
        x0, v = float(points[i]), vals[i]
        what = ("is infinite (overflows " + str(vals.dtype) + "; try float64 or a smaller exponent)"
                if np.isrealobj(vals) and np.isinf(v) and not np.isinf(x0) else "is undefined (value " + str(v) + ")")
        raise ExpressionError(
            f"activation {activation!r}: {name} = {expr} {what} at x = {x0:.4g}; Price's identity needs phi "
            "defined and finite on the whole real line, where the Gaussian puts mass")


def _check_no_poles(name: str, expr: sp.Expr, lo: float, hi: float, activation: str, time_limit: float) -> None:
    """Refuse ``expr`` if it is unbounded near a real singularity in [lo, hi] (1/x, tan(x)): there the
    Gaussian expectations diverge, yet no quadrature node need land on the pole. A bounded singular point
    passes. The singularities and the values at distances 1e-4 and 1e-7 on both sides come from sympy
    (under ``time_limit``), before any numerical work."""
    from sympy.calculus.util import singularities

    def poles() -> list[float]:
        try:
            found = sp.Intersection(singularities(expr, X, sp.S.Reals), sp.Interval(lo, hi))
        except (NotImplementedError, ValueError, TypeError):  # sympy cannot say: the node checks remain
            return []
        if not isinstance(found, sp.FiniteSet):
            return []
        out = []
        for s0 in list(found)[:64]:
            v = [abs(complex(expr.subs(X, s0 + d).evalf(15))) for d in (-1e-4, 1e-4, -1e-7, 1e-7)]
            if not all(np.isfinite(v)) or (max(v[2:]) > 1e3 and max(v[2:]) > 100 * max(v[:2])):
                out.append(float(s0))
        return out

    found = run_with_time_limit(poles, time_limit, f"the singularities of {activation!r}")
    if found:
        raise ExpressionError(
            f"activation {activation!r}: {name} = {expr} is unbounded near x = {found[0]:.4g}; Price's identity "
            "needs phi and phi' finite on the whole real line, where the Gaussian puts mass")


MAX_NODES = 500  # Gauss-Hermite nodes per axis: the tensor rule of 2 * nodes holds (2 * nodes)^2 points per K12


def price_check(activation: str, *, k11: float = 1.0, k22: float = 1.0, num: int = 9,
                nodes: int = 60, time_limit: float = TIME_LIMIT) -> PriceCheck:
    """Check d/dK12 E[phi phi] = E[phi' phi'] for ``activation`` (text, e.g. "tanh(x)") on a K12 grid.

    K12 runs over +-0.9 sqrt(K11 K22). Tolerance per point: the two sides' quadrature error estimates
    |Q(nodes) - Q(2 nodes)| plus rounding. A kinked activation (relu) converges slowly under Gauss-Hermite,
    so its estimates, and tolerances, are larger. The sympy side (parse, derivative, lambdify) runs under
    ``time_limit`` seconds each (see :func:`~workbench.symbolic.expressions.run_with_time_limit`).

    Raises:
      ExpressionError: text the safe parser refuses, sympy work beyond ``time_limit``, or an activation
        (or its derivative) that is undefined or infinite somewhere on the real line.
    """
    k11 = check_real("k11", k11, positive=True)
    k22 = check_real("k22", k22, positive=True)
    num = check_positive_int("num", num, minimum=2)
    nodes = check_positive_int("nodes", nodes, minimum=4)
    if nodes > MAX_NODES:
        raise ValueError(f"nodes must be an integer in [4, {MAX_NODES}] (Gauss-Hermite nodes per axis), got {nodes}")
    time_limit = check_real("time_limit", time_limit, positive=True)
    if not isinstance(activation, str):
        raise TypeError(f"activation must be text such as 'tanh(x)', got {type(activation).__name__}")
    phi = parse_expression(activation, {"x": X}, time_limit=time_limit)
    dphi = run_with_time_limit(lambda: sp.diff(phi, X), time_limit, f"the derivative of {activation!r}")
    f, df = run_with_time_limit(lambda: (sp.lambdify(X, phi, modules=JAX_MODULES),
                                         sp.lambdify(X, dphi, modules=JAX_MODULES)),
                                time_limit, f"compiling {activation!r}")
    fv = lambda t: jnp.broadcast_to(jnp.asarray(f(t), dtype=t.dtype), t.shape)  # noqa: E731  (constants broadcast)
    dfv = lambda t: jnp.broadcast_to(jnp.asarray(df(t), dtype=t.dtype), t.shape)  # noqa: E731
    # where the quadrature evaluates phi and phi': every abscissa of both rules times the largest scale, and a
    # grid in between (a function undefined on an interval, such as log or sqrt, is caught there)
    scale = float(np.sqrt(max(k11, k22)))
    xs = np.concatenate([np.polynomial.hermite_e.hermegauss(n)[0] for n in (nodes, 2 * nodes)])
    probe = np.concatenate([xs * scale, xs * np.sqrt(min(k11, k22)), np.linspace(xs.min(), xs.max(), 201) * scale])
    # where phi or phi' is undefined (log, sqrt), or unbounded near a pole that no node hits (1/x, tan)
    for name, fn, expr in (("phi", fv, phi), ("phi'", dfv, dphi)):
        _check_defined(name, fn, expr, probe, activation)
        _check_no_poles(name, expr, float(probe.min()), float(probe.max()), activation, time_limit)
    k12 = np.linspace(-0.9, 0.9, num) * np.sqrt(k11 * k22)
    lhs, rhs = [], []
    for n in (nodes, 2 * nodes):
        # jitted: one compilation per side and rule (eager vmap compiled ~30 small programs each: 6 s in all)
        grad = jax.jit(jax.vmap(jax.grad(lambda s, n=n: _pair_expectation(fv, fv, k11, k22, s, n))))
        lhs.append(np.asarray(grad(jnp.asarray(k12)), dtype=float))
        expect = jax.jit(jax.vmap(lambda s, n=n: _pair_expectation(dfv, dfv, k11, k22, s, n)))
        rhs.append(np.asarray(expect(jnp.asarray(k12)), dtype=float))
    tol = np.abs(lhs[1] - lhs[0]) + np.abs(rhs[1] - rhs[0]) + fp_floor(rhs[1])
    passed = bool(np.all(np.abs(lhs[1] - rhs[1]) <= tol))
    smooth = not (phi.has(sp.Max, sp.Min, sp.Abs) or dphi.has(sp.Heaviside, sp.DiracDelta))
    return PriceCheck(activation, phi, dphi, k12, lhs[1], rhs[1], tol, passed, smooth)
