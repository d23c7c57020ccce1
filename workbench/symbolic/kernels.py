"""Derivations 1 and 2: the relu arc-cosine expectations and the erf kernel (docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net).

(u, v) ~ N(0, [[K11, K12], [K12, K22]]), written through z ~ N(0, I_2) as
u = sqrt(K11) z1, v = sqrt(K22) (cos th z1 + sin th z2), cos th = rho = K12 / sqrt(K11 K22).

* ``relu_arccos`` (Cho & Saul 2009): in polar coordinates z = r (cos a, sin a) both relus are
  positive for a in (th - pi/2, pi/2); the radial integrals are int r^3 e^{-r^2/2} dr = 2 and
  int r e^{-r^2/2} dr = 1, the angular ones sympy does, giving
  E[phi phi] = sqrt(K11 K22)/(2 pi) (sin th + (pi - th) cos th), E[phi' phi'] = (pi - th)/(2 pi).
* ``erf_price`` (Williams 1997) via Price's theorem (Price 1958): the bivariate normal density
  satisfies d p/d K12 = d^2 p/(du dv), so, integrating by parts twice,
  d/dK12 E[phi(u) phi(v)] = E[phi'(u) phi'(v)]. For erf, E[erf' erf'] is a Gaussian integral
  (4/pi) / sqrt((1 + 2K11)(1 + 2K22) - 4 K12^2); at K12 = 0 E[erf erf] = E[erf]^2 = 0 by oddness;
  integrating in K12 from 0 gives (2/pi) arcsin(2 K12 / sqrt((1 + 2K11)(1 + 2K22))).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.special
import sympy as sp

from workbench.symbolic.core import MC_SIGMAS, Derivation, Derived, Estimate, Method, Step, eq, fp_floor
from workbench.symbolic.gaussian import pair_gauss_hermite, pair_monte_carlo

K11, K22 = sp.symbols("K_11 K_22", positive=True)
K12 = sp.Symbol("K_12", real=True)
RHO = sp.Symbol("rho", real=True)
THETA = sp.Symbol("theta", positive=True)

# ----------------------------------------------------------------------------- relu
RELU_CLOSED = (
    sp.sqrt(K11 * K22) / (2 * sp.pi) * (sp.sqrt(1 - RHO ** 2) + (sp.pi - sp.acos(RHO)) * RHO),
    (sp.pi - sp.acos(RHO)) / (2 * sp.pi),
)


def derive_relu() -> Derived:
    """Polar-coordinate integrals for E[relu relu] and E[relu' relu'] (Cho & Saul 2009)."""
    r = sp.Symbol("r", positive=True)
    a = sp.Symbol("a", real=True)
    z1, z2 = sp.symbols("z_1 z_2", real=True)
    u = sp.sqrt(K11) * z1
    v = sp.sqrt(K22) * (sp.cos(THETA) * z1 + sp.sin(THETA) * z2)
    polar = {z1: r * sp.cos(a), z2: r * sp.sin(a)}
    v_polar = sp.simplify(sp.trigsimp(v.subs(polar)))
    radial3 = sp.integrate(r ** 3 * sp.exp(-r ** 2 / 2), (r, 0, sp.oo))
    radial1 = sp.integrate(r * sp.exp(-r ** 2 / 2), (r, 0, sp.oo))
    lo, hi = THETA - sp.pi / 2, sp.pi / 2
    angular_phi = sp.integrate(sp.cos(a) * sp.cos(a - THETA), (a, lo, hi))
    angular_dphi = sp.integrate(sp.Integer(1), (a, lo, hi))
    e_phi_th = sp.simplify(sp.sqrt(K11 * K22) * radial3 * angular_phi / (2 * sp.pi))
    e_dphi_th = sp.simplify(radial1 * angular_dphi / (2 * sp.pi))
    e_phi = sp.simplify(e_phi_th.subs(THETA, sp.acos(RHO)))
    e_dphi = sp.simplify(e_dphi_th.subs(THETA, sp.acos(RHO)))
    E = sp.Function("E")
    steps = (
        Step("Write (u, v) through independent standard normals z1, z2 (cos th = rho):",
             eq(sp.Matrix([sp.Symbol("u"), sp.Symbol("v")]), sp.Matrix([u, v]))),
        Step("In polar coordinates z = r (cos a, sin a), v is proportional to cos(a - th):",
             eq(sp.Symbol("v"), v_polar)),
        Step("Both relus are positive for a in (th - pi/2, pi/2); radial integral of r^3 e^{-r^2/2} "
             "(relu relu) and of r e^{-r^2/2} (step step):",
             eq(sp.Tuple(sp.Integral(r ** 3 * sp.exp(-r ** 2 / 2), (r, 0, sp.oo)),
                            sp.Integral(r * sp.exp(-r ** 2 / 2), (r, 0, sp.oo))), sp.Tuple(radial3, radial1))),
        Step("Angular integrals:",
             eq(sp.Tuple(sp.Integral(sp.cos(a) * sp.cos(a - THETA), (a, lo, hi)), sp.Integral(1, (a, lo, hi))),
                   sp.Tuple(sp.simplify(angular_phi), angular_dphi))),
        Step("With the Gaussian normalization 1/(2 pi):",
             eq(sp.Tuple(E(sp.Symbol("phi(u)") * sp.Symbol("phi(v)")), E(sp.Symbol("phi'(u)") * sp.Symbol("phi'(v)"))),
                   sp.Tuple(e_phi_th, e_dphi_th))),
        Step("In terms of the correlation rho = cos th:", sp.Tuple(e_phi, e_dphi)),
    )
    return Derived(steps=steps, result=(e_phi, e_dphi))


def _relu_cov(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k11, k22, rho = points[:, 0], points[:, 1], points[:, 2]
    return k11, k22, rho * np.sqrt(k11 * k22)


def relu_monte_carlo(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """E[relu(u) relu(v)] and E[step(u) step(v)] by Monte Carlo (JAX), tolerance 5 standard errors."""
    k11, k22, k12 = _relu_cov(points)
    relu = lambda x: jnp.maximum(x, 0.0)  # noqa: E731
    step = lambda x: (x > 0).astype(x.dtype)  # noqa: E731
    m1, s1 = pair_monte_carlo(relu, relu, k11, k22, k12, samples=samples, seed=seed)
    m2, s2 = pair_monte_carlo(step, step, k11, k22, k12, samples=samples, seed=seed + 1)
    values = np.stack([m1, m2], axis=1)
    tol = MC_SIGMAS * np.stack([s1, s2], axis=1) + fp_floor(values)
    return Estimate(values, tol, f"{MC_SIGMAS:g} Monte-Carlo standard errors ({samples} draws, seed {seed})",
                    f"jax on {jax.devices()[0].platform}", info={"samples": samples})


def _relu_quad_one(k11: float, k22: float, k12: float, eps: float) -> tuple[list[float], list[float]]:
    """1-d adaptive quadrature over z1 > 0 (u > 0) of the z2-average in closed 1-d form.

    With u = a z1, v = b z1 + c z2: E_z2[relu(v)] = m Phi(m/c) + c phi(m/c) with m = b z1 (the mean of a
    rectified Gaussian) and P_z2(v > 0) = Phi(m/c); this Cartesian route shares nothing with the polar one.
    """
    a = np.sqrt(k11)
    b = k12 / a
    c = np.sqrt(max(k22 - b * b, 0.0))
    pdf = scipy.special.ndtr
    gauss = lambda z: np.exp(-z * z / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    if c == 0.0:
        relu_mean = lambda z1: max(b * z1, 0.0)  # noqa: E731
        prob = lambda z1: float(b * z1 > 0)  # noqa: E731
    else:
        relu_mean = lambda z1: b * z1 * pdf(b * z1 / c) + c * gauss(b * z1 / c)  # noqa: E731
        prob = lambda z1: pdf(b * z1 / c)  # noqa: E731
    e1, r1 = scipy.integrate.quad(lambda z1: a * z1 * relu_mean(z1) * gauss(z1), 0, np.inf, epsabs=eps, epsrel=eps)
    e2, r2 = scipy.integrate.quad(lambda z1: prob(z1) * gauss(z1), 0, np.inf, epsabs=eps, epsrel=eps)
    return [e1, e2], [r1, r2]


def relu_quadrature(points: np.ndarray, **_: Any) -> Estimate:
    """Adaptive 1-d quadrature (scipy quad, QUADPACK) over u > 0 of the closed-form average over v."""
    eps = 1e-12
    vals, errs = [], []
    for p11, p22, p12 in zip(*_relu_cov(points)):
        v, e = _relu_quad_one(float(p11), float(p22), float(p12), eps)
        vals.append(v)
        errs.append(e)
    values = np.asarray(vals)
    tol = 10 * np.maximum(np.asarray(errs), eps * np.abs(values)) + fp_floor(values)
    return Estimate(values, tol, "10 x QUADPACK's error estimate (requested 1e-12) plus rounding",
                    "scipy on the host (float64)")


def relu_library(points: np.ndarray, **_: Any) -> Estimate:
    """The workbench's own closed form, ``workbench.kernels.analytic.relu_expectations``."""
    from workbench.kernels.analytic import relu_expectations

    k11, k22, k12 = (jnp.asarray(x) for x in _relu_cov(points))
    e_phi, e_dphi = relu_expectations(k11, k22, k12)
    values = np.stack([np.asarray(e_phi), np.asarray(e_dphi)], axis=1).astype(float)
    return Estimate(values, fp_floor(values), f"exact identity: rounding only ({200} ulps)",
                    f"jax on {jax.devices()[0].platform}")


RELU = Derivation(
    name="relu_arccos",
    title="relu arc-cosine expectations by the polar integral",
    references="Cho & Saul 2009, Kernel methods for deep learning",
    summary="E[relu(u) relu(v)] and E[relu'(u) relu'(v)] for a bivariate Gaussian, swept over the correlation rho.",
    assumptions=((K11, "variance of u, > 0"), (K22, "variance of v, > 0"), (RHO, "correlation, in [-1, 1]"),
                 (THETA, "angle, cos(theta) = rho, in [0, pi]")),
    params=(K11, K22, RHO),
    outputs=("E[phi(u) phi(v)]", "E[phi'(u) phi'(v)]"),
    closed_form=RELU_CLOSED,
    derive=derive_relu,
    methods=(
        Method("monte_carlo", relu_monte_carlo, "Monte Carlo over (u, v), JAX", (100_000, 1_000_000)),
        Method("quadrature", relu_quadrature, "scipy quad over u > 0 of the rectified-Gaussian mean", (0, 0)),
        Method("workbench.kernels.analytic", relu_library, "the library's relu_expectations", (0, 0)),
    ),
    defaults={"K_11": 1.3, "K_22": 0.7, "rho": 0.0},
    sweep=("rho", -0.95, 0.95),
)

# ----------------------------------------------------------------------------- erf via Price's theorem
ERF_A = (1 + 2 * K11) * (1 + 2 * K22)
ERF_CLOSED = (
    (2 / sp.pi) * sp.asin(2 * K12 / sp.sqrt(ERF_A)),
    (4 / sp.pi) / sp.sqrt(ERF_A - 4 * K12 ** 2),
)


def derive_erf() -> Derived:
    """Price's theorem, the Gaussian integral of erf' erf', and the K12 integral from 0 (see module docstring)."""
    u, v = sp.symbols("u v", real=True)
    K = sp.Matrix([[K11, K12], [K12, K22]])
    x = sp.Matrix([u, v])
    density = sp.exp(-(x.T * K.inv() * x)[0] / 2) / (2 * sp.pi * sp.sqrt(K.det()))
    heat = sp.simplify((sp.diff(density, K12) - sp.diff(density, u, v)) / density)
    # erf'
    z = sp.Symbol("z", real=True)
    derf = sp.diff(sp.erf(z), z)
    # Gaussian lemma: E_z[exp(-(alpha + beta z)^2)]
    al = sp.Symbol("alpha", real=True)
    be = sp.Symbol("beta", positive=True)
    gauss = lambda t: sp.exp(-t ** 2 / 2) / sp.sqrt(2 * sp.pi)  # noqa: E731
    lemma = sp.simplify(sp.integrate(sp.exp(-(al + be * z) ** 2) * gauss(z), (z, -sp.oo, sp.oo), conds="none"))
    # Cholesky u = a z1, v = b z1 + d z2
    a, d = sp.symbols("a d", positive=True)
    b = sp.Symbol("b", real=True)
    z1 = sp.Symbol("z_1", real=True)
    inner = lemma.subs({al: b * z1, be: d})  # E over z2 of exp(-v^2)
    c_coef = sp.simplify(a ** 2 - sp.expand_log(sp.log(inner * sp.sqrt(1 + 2 * d ** 2)), force=True) / z1 ** 2)
    outer = lemma.subs({al: 0, be: sp.sqrt(c_coef)}) / sp.sqrt(1 + 2 * d ** 2)  # E over z1 of exp(-u^2) * inner
    chol = {a: sp.sqrt(K11), b: K12 / sp.sqrt(K11), d: sp.sqrt(K22 - K12 ** 2 / K11)}
    # outer = 1/(sqrt(P) sqrt(Q)) with P, Q > 0: combine into 1/sqrt(P Q) and simplify the polynomial P Q
    det = sp.factor(sp.expand(sp.simplify(1 / outer ** 2).subs(chol)))
    e_exp = 1 / sp.sqrt(det)
    e_dphi = sp.simplify((2 / sp.sqrt(sp.pi)) ** 2 * e_exp)
    # boundary value at K12 = 0: odd integrand
    odd = sp.simplify(sp.erf(-z) * gauss(-z) + sp.erf(z) * gauss(z))
    # integrate d/dK12 E[phi phi] = E[phi' phi'] from 0 to K12, with c = sqrt(A) > 0
    s = sp.Symbol("s", real=True)
    cpos = sp.Symbol("c", positive=True)
    integral_c = sp.integrate((4 / sp.pi) / sp.sqrt(cpos ** 2 - 4 * s ** 2), (s, 0, K12))
    e_phi = integral_c.subs(cpos, sp.sqrt(ERF_A))
    E = sp.Function("E")
    steps = (
        Step("Heat-equation identity of the bivariate normal density p(u, v; K): dp/dK12 - d^2p/(du dv) = 0 "
             "(sympy simplifies the ratio below to 0); integrating by parts twice gives Price's theorem "
             "d/dK12 E[phi(u) phi(v)] = E[phi'(u) phi'(v)]:",
             eq(sp.Symbol("(dp/dK12 - d2p/dudv)/p"), heat)),
        Step("Derivative of erf:", eq(sp.Derivative(sp.erf(z), z), derf)),
        Step("Gaussian lemma, z ~ N(0, 1):",
             eq(E(sp.exp(-(al + be * z) ** 2)), lemma)),
        Step("With u = a z1, v = b z1 + d z2 (Cholesky), the z2 average leaves exp(-c z1^2), c =", c_coef),
        Step("Back in terms of K (a = sqrt(K11), b = K12/a, d^2 = K22 - b^2): E[exp(-u^2 - v^2)] =", e_exp),
        Step("So E[erf'(u) erf'(v)] =", e_dphi),
        Step("At K12 = 0, u and v are independent and erf is odd: erf(-z) p(-z) + erf(z) p(z) =", odd),
        Step("Integrate Price's identity from K12 = 0 (c = sqrt((1 + 2 K11)(1 + 2 K22))):",
             eq(sp.Integral((4 / sp.pi) / sp.sqrt(cpos ** 2 - 4 * s ** 2), (s, 0, K12)), integral_c)),
        Step("E[erf(u) erf(v)] =", e_phi),
    )
    return Derived(steps=steps, result=(e_phi, e_dphi))


def _erf_cov(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return points[:, 0], points[:, 1], points[:, 2]


def erf_quadrature(points: np.ndarray, *, samples: int, **_: Any) -> Estimate:
    """Tensor Gauss-Hermite quadrature with ``samples`` and 2 x ``samples`` nodes per axis (numpy, float64)."""
    k11, k22, k12 = _erf_cov(points)
    derf = lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x)  # noqa: E731
    m1, e1 = pair_gauss_hermite(scipy.special.erf, scipy.special.erf, k11, k22, k12, nodes=samples)
    m2, e2 = pair_gauss_hermite(derf, derf, k11, k22, k12, nodes=samples)
    values = np.stack([m1, m2], axis=1)
    tol = np.stack([e1, e2], axis=1) + fp_floor(values)
    return Estimate(values, tol, f"Gauss-Hermite error estimate |Q({samples}) - Q({2 * samples})| plus rounding",
                    "numpy on the host (float64)", info={"nodes": samples})


def erf_monte_carlo(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """Monte Carlo (JAX) of E[erf erf] and E[erf' erf'], tolerance 5 standard errors."""
    k11, k22, k12 = _erf_cov(points)
    erf = jax.scipy.special.erf
    derf = lambda x: 2 / jnp.sqrt(jnp.pi) * jnp.exp(-x * x)  # noqa: E731
    m1, s1 = pair_monte_carlo(erf, erf, k11, k22, k12, samples=samples, seed=seed)
    m2, s2 = pair_monte_carlo(derf, derf, k11, k22, k12, samples=samples, seed=seed + 1)
    values = np.stack([m1, m2], axis=1)
    tol = MC_SIGMAS * np.stack([s1, s2], axis=1) + fp_floor(values)
    return Estimate(values, tol, f"{MC_SIGMAS:g} Monte-Carlo standard errors ({samples} draws, seed {seed})",
                    f"jax on {jax.devices()[0].platform}", info={"samples": samples})


def erf_library(points: np.ndarray, **_: Any) -> Estimate:
    """The workbench's own closed form, ``workbench.kernels.analytic.erf_expectations``."""
    from workbench.kernels.analytic import erf_expectations

    k11, k22, k12 = (jnp.asarray(x) for x in _erf_cov(points))
    e_phi, e_dphi = erf_expectations(k11, k22, k12)
    values = np.stack([np.asarray(e_phi), np.asarray(e_dphi)], axis=1).astype(float)
    return Estimate(values, fp_floor(values), "exact identity: rounding only (200 ulps)",
                    f"jax on {jax.devices()[0].platform}")


ERF = Derivation(
    name="erf_price",
    title="erf kernel through Price's theorem",
    references="Williams 1997, Computing with infinite networks; Price 1958",
    summary="E[erf(u) erf(v)] = (2/pi) arcsin(2 K12 / sqrt((1 + 2 K11)(1 + 2 K22))) and E[erf' erf'], swept over K12.",
    assumptions=((K11, "variance of u, > 0"), (K22, "variance of v, > 0"), (K12, "covariance, K12^2 <= K11 K22")),
    params=(K11, K22, K12),
    outputs=("E[erf(u) erf(v)]", "E[erf'(u) erf'(v)]"),
    closed_form=ERF_CLOSED,
    derive=derive_erf,
    methods=(
        Method("quadrature", erf_quadrature, "tensor Gauss-Hermite quadrature, numpy", (40, 60)),
        Method("monte_carlo", erf_monte_carlo, "Monte Carlo over (u, v), JAX", (100_000, 1_000_000)),
        Method("workbench.kernels.analytic", erf_library, "the library's erf_expectations", (0, 0)),
    ),
    defaults={"K_11": 1.0, "K_22": 0.5, "K_12": 0.0},
    sweep=("K_12", -0.65, 0.65),
)

DERIVATIONS = (RELU, ERF)
