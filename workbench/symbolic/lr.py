"""Derivation 8: the optimal learning rate under gradient noise (McCandlish et al. 2018; docs/theory.md#9-learning-rate-and-batch-size).

A step theta -> theta - eps G_B with an unbiased batch gradient, E G_B = G and Cov G_B = Sigma/B
(B independent per-example gradients). For the quadratic model L(theta - eps G_B) = L - eps G^T G_B
+ eps^2/2 G_B^T H G_B (exact for a quadratic loss), E[G_B^T H G_B] = G^T H G + tr(H Sigma)/B, so
E dL(eps) = -eps |G|^2 + eps^2/2 (G^T H G + tr(H Sigma)/B). Minimizing in eps:
eps_opt(B) = eps_max/(1 + B_noise/B), eps_max = |G|^2/(G^T H G), B_noise = tr(H Sigma)/(G^T H G).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from workbench.symbolic.core import MC_SIGMAS, Derivation, Derived, Estimate, Method, Step, eq, fp_floor

EPS = sp.Symbol("epsilon", positive=True)
B = sp.Symbol("B", positive=True)
G2 = sp.Symbol("G2", positive=True)     # |G|^2
GHG = sp.Symbol("GHG", positive=True)   # G^T H G
TRHS = sp.Symbol("trHSigma", positive=True)  # tr(H Sigma)

MCCANDLISH_CLOSED = ((G2 / GHG) / (1 + (TRHS / GHG) / B),)


class NoisyQuadratic(NamedTuple):
    """L(theta) = theta^T H theta / 2 at theta0; per-example gradients G + A z, z ~ N(0, I), Sigma = A A^T."""

    hessian: np.ndarray
    theta0: np.ndarray
    noise_factor: np.ndarray

    @property
    def gradient(self) -> np.ndarray:
        return self.hessian @ self.theta0

    def stats(self) -> dict[str, float]:
        g = self.gradient
        sigma = self.noise_factor @ self.noise_factor.T
        return {"G2": float(g @ g), "GHG": float(g @ self.hessian @ g), "trHSigma": float(np.trace(self.hessian @ sigma))}


@functools.lru_cache(maxsize=4)
def default_problem(dim: int = 6, seed: int = 7) -> NoisyQuadratic:
    """A fixed noisy quadratic: eigenvalues log-spaced in [0.1, 1], theta0 ~ N(0, I), A ~ N(0, 1/dim)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    h = q @ np.diag(np.geomspace(0.1, 1.0, dim)) @ q.T
    return NoisyQuadratic(h, rng.standard_normal(dim), rng.standard_normal((dim, dim)) / math.sqrt(dim))


def derive_mccandlish() -> Derived:
    """Expected loss change of the quadratic model, its minimizer in eps, and the (eps_max, B_noise) form."""
    # E[G_B^T H G_B] in 2-d with explicit symbols: G_B = G + xi, E xi = 0, E xi xi^T = Sigma/B
    g1, g2, x1, x2 = sp.symbols("g_1 g_2 xi_1 xi_2", real=True)
    h11, h12, h22, s11, s12, s22 = sp.symbols("h_11 h_12 h_22 s_11 s_12 s_22", real=True)
    H = sp.Matrix([[h11, h12], [h12, h22]])
    S = sp.Matrix([[s11, s12], [s12, s22]])
    G = sp.Matrix([g1, g2])
    GB = G + sp.Matrix([x1, x2])
    quad = sp.expand((GB.T * H * GB)[0])
    moments = {x1 ** 2: s11 / B, x2 ** 2: s22 / B, x1 * x2: s12 / B, x1: 0, x2: 0}
    poly = sp.Poly(quad, x1, x2)
    expectation = sum(coef * moments.get(x1 ** i * x2 ** j, 1 if (i, j) == (0, 0) else None)
                      for (i, j), coef in poly.terms())
    identity = sp.simplify(expectation - ((G.T * H * G)[0] + (H * S).trace() / B))
    # expected loss change and its minimizer
    dl = -EPS * G2 + EPS ** 2 / 2 * (GHG + TRHS / B)
    stationary = sp.solve(sp.diff(dl, EPS), EPS)
    eps_star = stationary[0]
    curvature = sp.diff(dl, EPS, 2)
    eps_max = sp.Symbol("epsilon_max", positive=True)
    b_noise = sp.Symbol("B_noise", positive=True)
    form = eps_max / (1 + b_noise / B)
    form_sub = form.subs({eps_max: G2 / GHG, b_noise: TRHS / GHG})
    steps = (
        Step("For G_B = G + xi with E xi = 0, E xi xi^T = Sigma/B, in 2-d: E[G_B^T H G_B] - (G^T H G + tr(H Sigma)/B) =",
             identity),
        Step("Expected loss change of the quadratic model (|G|^2 = G2, G^T H G = GHG, tr(H Sigma) = trHSigma):",
             eq(sp.Symbol("E dL"), dl)),
        Step("Stationary point d E dL / d eps = 0:", eq(EPS, eps_star)),
        Step("It is a minimum: the second derivative is", curvature),
        Step("With eps_max = G2/GHG and B_noise = trHSigma/GHG:", eq(sp.Symbol("epsilon_opt"), form)),
        Step("which equals the stationary point: difference", sp.simplify(eps_star - form_sub)),
    )
    return Derived(steps=steps, result=(eps_star,))


def _problem_defaults() -> dict[str, float]:
    return default_problem().stats()


def mccandlish_simulated(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """Simulated noisy quadratic: mean loss after one step at 3 step sizes, argmin of the fitted parabola.

    The loss is exactly quadratic in eps for every draw, so 3 step sizes determine the parabola; the draws
    (``samples``) are split into 20 groups and the tolerance is 5 standard errors of the group argmins.
    """
    prob = default_problem()
    h = jnp.asarray(prob.hessian)
    theta0 = jnp.asarray(prob.theta0)
    a = jnp.asarray(prob.noise_factor)
    g = h @ theta0
    eps_grid = jnp.asarray([0.0, 1.0, 2.0]) / float(np.trace(prob.hessian))
    groups = 20
    per_group = max(samples // groups, 2)
    key = jax.random.PRNGKey(seed)
    rows, tols = [], []
    for i, (b, *_rest) in enumerate(points):
        batch = int(round(b))
        z = jax.random.normal(jax.random.fold_in(key, i), (groups, per_group, batch, a.shape[1]))
        gb = g[None, None, :] + jnp.einsum("gdbk,jk->gdj", z, a) / batch  # mean of `batch` per-example gradients
        theta = theta0[None, None, None, :] - eps_grid[:, None, None, None] * gb[None]  # (3, groups, per_group, dim)
        loss = 0.5 * jnp.einsum("egdi,ij,egdj->egd", theta, h, theta)
        mean_loss = np.asarray(loss.mean(axis=2), dtype=float)  # (3, groups)
        e = np.asarray(eps_grid)

        def argmin(y: np.ndarray) -> float:
            c2, c1, _c0 = np.polyfit(e, y, 2)
            return -c1 / (2 * c2)

        per = np.array([argmin(mean_loss[:, k]) for k in range(groups)])
        rows.append([argmin(mean_loss.mean(axis=1))])
        tols.append([MC_SIGMAS * per.std(ddof=1) / math.sqrt(groups)])
    values = np.asarray(rows)
    return Estimate(values, np.asarray(tols) + fp_floor(values),
                    f"{MC_SIGMAS:g} SE of the argmin over {groups} groups of {per_group} draws",
                    f"jax on {jax.devices()[0].platform}", info={"draws": groups * per_group})


def mccandlish_library(points: np.ndarray, **_: Any) -> Estimate:
    """``workbench.lr_batch.mccandlish_optimal_lr`` with eps_max and B_noise of the same problem."""
    from workbench.lr_batch import mccandlish_optimal_lr

    # point columns: (B, |G|^2, G^T H G, tr(H Sigma)) of the default problem
    vals = np.array([[float(mccandlish_optimal_lr(p[0], p[1] / p[2], p[3] / p[2]))] for p in points])
    return Estimate(vals, fp_floor(vals), "exact identity: rounding only (200 ulps)", "numpy on the host")


MCCANDLISH = Derivation(
    name="mccandlish_lr",
    title="Optimal learning rate under gradient noise",
    references="McCandlish, Kaplan, Amodei et al. 2018, An empirical model of large-batch training",
    summary="eps_opt(B) = eps_max/(1 + B_noise/B) on a fixed noisy quadratic (dim 6), swept over the batch size B.",
    assumptions=((EPS, "step size, > 0"), (B, "batch size, > 0"), (G2, "|G|^2, > 0"), (GHG, "G^T H G, > 0"),
                 (TRHS, "tr(H Sigma), > 0")),
    params=(B, G2, GHG, TRHS),
    outputs=("eps_opt",),
    closed_form=MCCANDLISH_CLOSED,
    derive=derive_mccandlish,
    methods=(
        Method("noisy_quadratic", mccandlish_simulated, "simulated SGD step on a noisy quadratic, JAX",
               (20_000, 200_000)),
        Method("workbench.lr_batch", mccandlish_library, "workbench.lr_batch.mccandlish_optimal_lr", (0, 0)),
    ),
    defaults=_problem_defaults(),
    sweep=("B", 1.0, 32.0),
    sweep_decimals=0,
)

DERIVATIONS = (MCCANDLISH,)
