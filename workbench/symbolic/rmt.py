"""Derivations 5 and 6: the Marchenko-Pastur law and the BBP outlier of a spiked Wigner matrix (docs/theory.md#7-random-matrices).

* ``marchenko_pastur`` (Marchenko & Pastur 1967): S = X^T X / m, X of m x p with iid entries of
  variance sigma2, ratio r = p/m. Start from the MP equation for the Stieltjes transform
  m(z) = int rho(l)/(l - z) dl at sigma2 = 1, r z m^2 + (z + r - 1) m + 1 = 0. sympy solves it; the
  edges are the roots of its discriminant, (1 -+ sqrt r)^2; the density is Im m(x + i0)/pi =
  sqrt((l+ - x)(x - l-))/(2 pi r x). Substituting x = 1 + r + 2 sqrt(r) cos t, the mass of the
  continuous part is a contour integral over w = e^{it} that sympy does by residues (1 for r < 1,
  1/r for r > 1) and the first two moments are trigonometric integrals (1 and 1 + r); a general
  sigma2 rescales x -> sigma2 x.
* ``bbp_outlier`` (Baik, Ben Arous & Peche 2005; Benaych-Georges & Nadakuditi 2011): the semicircle's
  Stieltjes transform g(z) = int rho(x)/(z - x) dx solves sigma^2 g^2 - z g + 1 = 0; an eigenvalue z
  of W + theta v v^T outside the bulk solves theta g(z) = 1, which gives z = theta + sigma^2/theta
  on the physical branch only when theta > sigma; the squared overlap is -1/(theta^2 g'(z)) =
  1 - sigma^2/theta^2.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import sympy as sp

from workbench.symbolic.core import MC_SIGMAS, Derivation, Derived, Estimate, Method, Step, eq, fp_floor

R = sp.Symbol("r", positive=True)
SIGMA2 = sp.Symbol("sigma2", positive=True)

#: mean and standard deviation of the GOE Tracy-Widom law TW1 (Tracy & Widom 1996)
TW1_MEAN, TW1_STD = -1.2065335745820, 1.2680340580149

MP_CLOSED = (
    sp.Piecewise((sp.Integer(1), R <= 1), (1 / R, True)),
    SIGMA2,
    SIGMA2 ** 2 * (1 + R),
    SIGMA2 * (1 - sp.sqrt(R)) ** 2,
    SIGMA2 * (1 + sp.sqrt(R)) ** 2,
)


def derive_mp() -> Derived:
    """Stieltjes equation -> edges and density -> mass by residues, moments by integration."""
    z = sp.Symbol("z")
    x = sp.Symbol("x", positive=True)
    mm = sp.Symbol("m")
    mp_eq = R * z * mm ** 2 + (z + R - 1) * mm + 1
    roots = sp.solve(mp_eq, mm)
    disc = sp.expand((z + R - 1) ** 2 - 4 * R * z)
    edges = sorted(sp.solve(disc, z), key=lambda e: float(e.subs(R, sp.Rational(1, 4))))
    # density from the imaginary part of the root on the physical branch: inside the edges disc < 0
    density = sp.sqrt(-disc.subs(z, x)) / (2 * sp.pi * R * x)
    density_check = sp.simplify(density ** 2 - (edges[1] - x) * (x - edges[0]) / (2 * sp.pi * R * x) ** 2)
    # substitution x = 1 + r + 2 sqrt(r) cos t, t from pi to 0; q = sqrt(r)
    q = sp.Symbol("q", positive=True)
    t = sp.Symbol("t", real=True)
    xt = 1 + q ** 2 + 2 * q * sp.cos(t)
    dens_t = sp.simplify(2 * q * sp.sin(t) / (2 * sp.pi * q ** 2 * xt))  # sqrt((l+ - x)(x - l-)) = 2 q sin t
    jac = 2 * q * sp.sin(t)  # |dx/dt|
    integrand = sp.simplify(dens_t * jac)  # on t in (0, pi)
    # mass by residues: the integrand is even in t, so int_0^pi = (1/2) oint over |w| = 1, w = e^{it}
    w = sp.Symbol("w")
    f_w = sp.factor(sp.together(integrand.rewrite(sp.exp).subs(sp.exp(sp.I * t), w).subs(sp.exp(-sp.I * t), 1 / w)
                                / (sp.I * w)))
    inside_small = sp.residue(f_w, w, 0) + sp.residue(f_w, w, -q)      # q < 1: poles 0 and -q inside
    inside_large = sp.residue(f_w, w, 0) + sp.residue(f_w, w, -1 / q)  # q > 1: poles 0 and -1/q inside
    mass_small = sp.simplify(sp.pi * sp.I * inside_small)
    mass_large = sp.simplify((sp.pi * sp.I * inside_large).subs(q, sp.sqrt(R)))
    mass = sp.Piecewise((mass_small, R <= 1), (mass_large, True))
    m1 = sp.simplify(sp.integrate(sp.expand(integrand * xt), (t, 0, sp.pi)).subs(q, sp.sqrt(R)))
    m2 = sp.simplify(sp.integrate(sp.expand(sp.simplify(integrand * xt) * xt), (t, 0, sp.pi)).subs(q, sp.sqrt(R)))
    lo, hi = (sp.factor(e) for e in edges)
    steps = (
        Step("MP equation for the Stieltjes transform m(z) (sigma2 = 1, r = p/m):", eq(mp_eq, 0)),
        Step("Its roots:", sp.Tuple(*roots)),
        Step("Edges of the support = zeros of the discriminant:", eq(disc, 0)),
        Step("Edges:", sp.Tuple(*edges)),
        Step("Density Im m(x + i0)/pi inside the edges (its square minus (l+ - x)(x - l-)/(2 pi r x)^2 "
             "simplifies to 0):", eq(sp.Symbol("rho(x)"), density)),
        Step("Check of the factorization:", density_check),
        Step("Substitute x = 1 + q^2 + 2 q cos t (q = sqrt r): rho(x) |dx/dt| =", integrand),
        Step("Mass as a contour integral over w = e^{it}: integrand", f_w),
        Step("Residues inside |w| = 1 give the mass for r < 1 and r > 1:", sp.Tuple(mass_small, mass_large)),
        Step("First and second moments (x rho and x^2 rho integrated over t):", sp.Tuple(m1, m2)),
        Step("Rescale x -> sigma2 x for entries of variance sigma2: mass, mean, second moment, edges",
             sp.Tuple(mass, SIGMA2 * m1, SIGMA2 ** 2 * m2, SIGMA2 * lo, SIGMA2 * hi)),
    )
    return Derived(steps=steps, result=(mass, SIGMA2 * m1, sp.expand(SIGMA2 ** 2 * m2), SIGMA2 * lo, SIGMA2 * hi))


def _tw_offsets(m: int, p: int) -> tuple[float, float, float, float]:
    """Johnstone (2001) centring/scale of the largest and smallest nonzero eigenvalue of X^T X (sigma2 = 1)."""
    big, small = max(m, p), min(m, p)
    mu_hi = (math.sqrt(big - 1) + math.sqrt(small)) ** 2
    s_hi = (math.sqrt(big - 1) + math.sqrt(small)) * (1 / math.sqrt(big - 1) + 1 / math.sqrt(small)) ** (1 / 3)
    mu_lo = (math.sqrt(big) - math.sqrt(small)) ** 2
    s_lo = (math.sqrt(big) - math.sqrt(small)) * (1 / math.sqrt(small) - 1 / math.sqrt(big)) ** (1 / 3)
    return mu_hi, s_hi, mu_lo, s_lo


def mp_wishart(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """Eigenvalues of sampled S = X^T X/m (JAX eigvalsh), m = ``samples`` rows, p = r m columns, 40 draws (20 fast).

    Tolerances: mass exact (rank count); mean 5 SE; second moment 5 SE + the exact finite-m bias sigma2^2/m
    (E tr S^2 / p = sigma2^2 (1 + r + 1/m)); edges: Johnstone's (2001) finite-size centring offset
    |mu/m - edge| + |E TW1| x scale/m, plus 5 SE over draws.
    """
    m = samples
    draws = 20 if m <= 100 else 40
    rows, tols = [], []
    key = jax.random.PRNGKey(seed)
    for i, (r, s2) in enumerate(points):
        p = int(round(r * m))
        if abs(p / m - r) > 1e-12:
            raise ValueError(f"ratio {r} x m = {m} rows is not an integer number of columns")
        x = jnp.sqrt(s2) * jax.random.normal(jax.random.fold_in(key, i), (draws, m, p))
        s = jnp.einsum("dmi,dmj->dij", x, x) / m
        ev = np.asarray(jnp.linalg.eigvalsh(s), dtype=float)  # (draws, p), ascending
        # zero eigenvalues come out as rounding noise of size ~ eps |S|: count as nonzero only above 10 eps p |S|
        thresh = 10 * float(jnp.finfo(s.dtype).eps) * p * ev[:, -1:]
        nonzero = ev > thresh
        mass = nonzero.mean(axis=1)
        mean = ev.mean(axis=1)
        second = (ev ** 2).mean(axis=1)
        top = ev[:, -1]
        bottom = np.where(nonzero, ev, np.inf).min(axis=1)
        stats = np.stack([mass, mean, second, bottom, top], axis=1)
        val = stats.mean(axis=0)
        se = stats.std(axis=0, ddof=1) / math.sqrt(draws)
        mu_hi, s_hi, mu_lo, s_lo = _tw_offsets(m, p)
        hi_edge, lo_edge = s2 * (1 + math.sqrt(r)) ** 2, s2 * (1 - math.sqrt(r)) ** 2
        tw_hi = abs(s2 * mu_hi / m - hi_edge) + abs(TW1_MEAN) * s2 * s_hi / m
        tw_lo = abs(s2 * mu_lo / m - lo_edge) + abs(TW1_MEAN) * s2 * s_lo / m
        tol = MC_SIGMAS * se + np.array([0.0, 0.0, s2 ** 2 / m, tw_lo, tw_hi])
        rows.append(val)
        tols.append(tol)
    values = np.asarray(rows)
    tol = np.asarray(tols) + fp_floor(values)
    reason = (f"mass: exact rank count; mean: {MC_SIGMAS:g} SE over {draws} draws; second moment: {MC_SIGMAS:g} SE + "
              "exact finite-m bias sigma2^2/m; edges: Tracy-Widom centring offset (Johnstone 2001) + "
              f"{MC_SIGMAS:g} SE (m = {m})")
    return Estimate(values, tol, reason, f"jax on {jax.devices()[0].platform}", info={"m": m, "draws": draws})


def mp_library(points: np.ndarray, **_: Any) -> Estimate:
    """``workbench.rmt``'s density integrated by scipy quad (mass, moments) and its edges."""
    from workbench import rmt

    rows, tols = [], []
    for r, s2 in points:
        lo, hi = rmt.marchenko_pastur_edges(r, s2)
        f = lambda x, k: x ** k * float(rmt.marchenko_pastur_density(np.array([x]), r, s2)[0])  # noqa: E731
        quads = [scipy.integrate.quad(f, lo, hi, args=(k,), epsabs=1e-12, epsrel=1e-12, limit=200) for k in (0, 1, 2)]
        rows.append([quads[0][0], quads[1][0], quads[2][0], lo, hi])
        tols.append([10 * max(q[1], 1e-11 * abs(q[0])) for q in quads] + [0.0, 0.0])
    values = np.asarray(rows)
    return Estimate(values, np.asarray(tols) + fp_floor(values),
                    "10 x QUADPACK's error estimate for the integrals; rounding for the edges", "scipy on the host")


MARCHENKO_PASTUR = Derivation(
    name="marchenko_pastur",
    title="Marchenko-Pastur: normalization, first two moments and edges",
    references="Marchenko & Pastur 1967; Bai & Silverstein 2010, ch. 3",
    summary="S = X^T X/m, X m x p with iid N(0, sigma2) entries, r = p/m; swept over r.",
    assumptions=((R, "aspect ratio p/m, > 0"), (SIGMA2, "entry variance, > 0")),
    params=(R, SIGMA2),
    outputs=("mass of the continuous part", "mean", "second moment", "lower edge", "upper edge"),
    closed_form=MP_CLOSED,
    derive=derive_mp,
    methods=(
        Method("wishart", mp_wishart, "eigenvalues of sampled Wishart matrices, JAX", (50, 400)),
        Method("workbench.rmt", mp_library, "workbench.rmt.marchenko_pastur_density integrated by quad", (0, 0)),
    ),
    defaults={"r": 0.5, "sigma2": 1.5},
    sweep=("r", 0.25, 2.0),
    sweep_decimals=1,
)

# ----------------------------------------------------------------------------- BBP
THETA = sp.Symbol("theta", positive=True)
SIGMA = sp.Symbol("sigma", positive=True)
BBP_CLOSED = (THETA + SIGMA ** 2 / THETA, 1 - SIGMA ** 2 / THETA ** 2)


def derive_bbp() -> Derived:
    z = sp.Symbol("z")
    g = sp.Symbol("g")
    x = sp.Symbol("x", real=True)
    sc_eq = SIGMA ** 2 * g ** 2 - z * g + 1
    roots = sp.solve(sc_eq, g)
    # the physical branch decays like 1/z at infinity
    decaying = [rt for rt in roots if sp.limit(rt.subs(z, sp.Symbol("Z", positive=True)) * sp.Symbol("Z", positive=True),
                                               sp.Symbol("Z", positive=True), sp.oo) == 1]
    g_phys = decaying[0]
    # density -Im g(x + i0)/pi inside the bulk: sqrt(z^2 - 4 sigma^2) -> i s with s = sqrt(4 sigma^2 - x^2) > 0
    s = sp.Symbol("s", positive=True)
    density = sp.simplify(-sp.im((x - sp.I * s) / (2 * SIGMA ** 2)) / sp.pi).subs(s, sp.sqrt(4 * SIGMA ** 2 - x ** 2))
    outlier_eq = sc_eq.subs(g, 1 / THETA)  # theta g(z) = 1
    z_star = sp.solve(outlier_eq, z)[0]
    # the branch's largest value on the real axis beyond the bulk is g(2 sigma) = 1/sigma: need 1/theta < 1/sigma
    g_edge = sp.simplify(g_phys.subs(z, 2 * SIGMA))
    threshold = sp.solve_univariate_inequality(1 / THETA < g_edge, THETA, relational=False).intersect(
        sp.Interval.open(0, sp.oo))
    # overlap^2 = -1/(theta^2 g'(z*)), g' by implicit differentiation of the self-consistent equation
    gprime = sp.solve(sp.diff(sc_eq.subs(g, sp.Function("g")(z)), z), sp.Derivative(sp.Function("g")(z), z))[0]
    gprime_star = sp.simplify(gprime.subs(sp.Function("g")(z), 1 / THETA).subs(z, z_star))
    overlap = sp.simplify(-1 / (THETA ** 2 * gprime_star))
    steps = (
        Step("Self-consistent equation of the semicircle's Stieltjes transform g(z) = int rho(x)/(z - x) dx:",
             eq(sc_eq, 0)),
        Step("Roots; the physical branch behaves like 1/z at infinity:", eq(sp.Symbol("g(z)"), g_phys)),
        Step("Density -Im g(x + i0)/pi inside the bulk (the semicircle):", eq(sp.Symbol("rho(x)"), density)),
        Step("An eigenvalue z of W + theta v v^T outside the bulk solves theta g(z) = 1; with g = 1/theta:",
             eq(outlier_eq, 0)),
        Step("Solution:", eq(sp.Symbol("z^*"), z_star)),
        Step("g decreases from g(2 sigma) =", g_edge),
        Step("so the outlier exists iff 1/theta < g(2 sigma), i.e. theta in", threshold),
        Step("g'(z*) by implicit differentiation:", eq(sp.Symbol("g'(z^*)"), gprime_star)),
        Step("Squared overlap -1/(theta^2 g'(z*)):", overlap),
    )
    return Derived(steps=steps, result=(sp.expand(z_star), sp.expand(overlap)))


def bbp_sampled(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """Top eigenpair of W + theta e1 e1^T, W GOE-like (off-diagonal variance sigma^2/n), n = ``samples``, 40 draws."""
    n = samples
    draws = 40
    key = jax.random.PRNGKey(seed)
    rows, tols = [], []
    for i, (theta, sigma) in enumerate(points):
        a = jax.random.normal(jax.random.fold_in(key, i), (draws, n, n))
        w = sigma * (a + jnp.swapaxes(a, 1, 2)) / jnp.sqrt(2.0 * n)
        w = w.at[:, 0, 0].add(theta)
        ev, vec = jnp.linalg.eigh(w)
        top = np.asarray(ev[:, -1], dtype=float)
        ov = np.asarray(vec[:, 0, -1] ** 2, dtype=float)
        stats = np.stack([top, ov], axis=1)
        val = stats.mean(axis=0)
        se = stats.std(axis=0, ddof=1) / math.sqrt(draws)
        rows.append(val)
        tols.append(MC_SIGMAS * se + np.abs(val) / n)
    values = np.asarray(rows)
    return Estimate(values, np.asarray(tols) + fp_floor(values),
                    f"{MC_SIGMAS:g} SE over {draws} draws + an O(1/n) finite-size allowance |value|/n (n = {n})",
                    f"jax on {jax.devices()[0].platform}", info={"n": n, "draws": draws})


def bbp_library(points: np.ndarray, **_: Any) -> Estimate:
    """``workbench.rmt.spiked_wigner_outlier`` and ``spiked_wigner_overlap``."""
    from workbench import rmt

    vals = np.array([[float(rmt.spiked_wigner_outlier(t, s)), float(rmt.spiked_wigner_overlap(t, s))]
                     for t, s in points])
    return Estimate(vals, fp_floor(vals), "exact identity: rounding only (200 ulps)", "numpy on the host")


BBP = Derivation(
    name="bbp_outlier",
    title="BBP outlier of a rank-one spiked Wigner matrix from the Stieltjes transform",
    references="Baik, Ben Arous & Peche 2005; Benaych-Georges & Nadakuditi 2011",
    summary="Top eigenvalue theta + sigma^2/theta and overlap^2 1 - sigma^2/theta^2 of W + theta v v^T, theta > sigma.",
    assumptions=((THETA, "spike strength, > sigma"), (SIGMA, "Wigner scale (off-diagonal variance sigma^2/n), > 0")),
    params=(THETA, SIGMA),
    outputs=("top eigenvalue", "overlap^2"),
    closed_form=BBP_CLOSED,
    derive=derive_bbp,
    methods=(
        Method("sampled", bbp_sampled, "eigh of sampled spiked Wigner matrices, JAX", (64, 500)),
        Method("workbench.rmt", bbp_library, "workbench.rmt.spiked_wigner_outlier / overlap", (0, 0)),
    ),
    defaults={"theta": 2.0, "sigma": 1.0},
    sweep=("theta", 1.5, 4.0),
)

DERIVATIONS = (MARCHENKO_PASTUR, BBP)
