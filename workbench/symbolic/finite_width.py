"""Derivation 9: the finite-width kurtosis of a deep relu net at criticality (Roberts & Yaida; docs/theory.md#10-finite-width-corrections).

Network without biases, Gaussian weights W ~ N(0, C_W/n), z^{l+1}_i = sum_j W_ij relu(z^l_j), layer 1 Gaussian
(fixed input). Conditionally on layer l, z^{l+1}_i ~ N(0, G_{l+1}) with G_{l+1} = (C_W/n) sum_j relu(z^l_j)^2.
With P_l = E G_l = E z^2 and Q_l = E G_l^2 = E z^4 / 3, the Gaussian integrals E relu(z)^2 = G/2 and
E relu(z)^4 = 3 G^2/2, and, for j != k, E[relu(z_j)^2 relu(z_k)^2] = E[(G/2)^2] (independent given the
previous layer), give P_{l+1} = (C_W/2) P_l (critical iff C_W = 2) and
Q_{l+1} = (C_W/n)^2 (n (3/2) Q_l + n(n - 1) Q_l / 4) = (1 + 5/n) Q_l at C_W = 2.
With Q_1 = P_1^2 (layer 1 is Gaussian), rsolve gives E z^4 / (3 (E z^2)^2) = Q_L/P_L^2 = (1 + 5/n)^(L - 1),
exact at every width n (no large-n expansion).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from workbench.symbolic.core import MC_SIGMAS, Derivation, Derived, Estimate, Method, Step, eq, fp_floor

N = sp.Symbol("n", positive=True, integer=True)
L = sp.Symbol("L", positive=True, integer=True)
KURTOSIS_CLOSED = ((1 + 5 / N) ** (L - 1),)


def derive_kurtosis() -> Derived:
    g = sp.Symbol("G", positive=True)
    cw = sp.Symbol("C_W", positive=True)
    z = sp.Symbol("z", real=True)
    dens = sp.exp(-z ** 2 / (2 * g)) / sp.sqrt(2 * sp.pi * g)
    e_relu2 = sp.simplify(sp.integrate(z ** 2 * dens, (z, 0, sp.oo)))
    e_relu4 = sp.simplify(sp.integrate(z ** 4 * dens, (z, 0, sp.oo)))
    e_z4 = sp.simplify(sp.integrate(z ** 4 * dens, (z, -sp.oo, sp.oo)))
    # moments of the conditional variance: G is linear (P) or quadratic (Q) in the previous layer's G
    p_l, q_l = sp.symbols("P_l Q_l", positive=True)
    p_next = sp.expand(cw / N * N * e_relu2.subs(g, 1) * p_l)  # E relu^2 = G/2 is linear in G
    critical = sp.solve(sp.Eq(p_next, p_l), cw)
    # E[G^2] of the next layer: n diagonal terms E relu^4 (= (3/2) Q), n(n-1) pairs E[(G/2)^2] = Q/4
    q_next = sp.simplify((cw / N) ** 2 * (N * e_relu4.subs(g, 1) * q_l + N * (N - 1) * (e_relu2.subs(g, 1)) ** 2 * q_l))
    factor = sp.simplify(q_next.subs(cw, critical[0]) / q_l)
    l = sp.Symbol("l", integer=True, positive=True)
    qf = sp.Function("Q")
    p1 = sp.Symbol("P", positive=True)
    sol = sp.rsolve(qf(l + 1) - factor * qf(l), qf(l), {qf(1): p1 ** 2})
    ratio = sp.simplify(e_z4.subs(g, 1) * sol.subs(l, L) / (3 * p1 ** 2))
    steps = (
        Step("Gaussian integrals for z ~ N(0, G): E relu(z)^2, E relu(z)^4, E z^4 =", sp.Tuple(e_relu2, e_relu4, e_z4)),
        Step("Mean conditional variance P_{l+1} = C_W E relu(z)^2:", eq(sp.Symbol("P_{l+1}"), p_next)),
        Step("Criticality (P constant across layers):", eq(cw, critical[0])),
        Step("Second moment of the conditional variance, Q_{l+1} = (C_W/n)^2 [n E relu^4 + n(n-1) E relu^2 relu^2]:",
             eq(sp.Symbol("Q_{l+1}"), q_next)),
        Step("At C_W = 2 the recursion factor is", factor),
        Step("rsolve with Q_1 = P^2 (layer 1 is Gaussian):", eq(qf(l), sol)),
        Step("E z^4 / (3 (E z^2)^2) = 3 Q_L / (3 P^2) at depth L:", ratio),
    )
    return Derived(steps=steps, result=(ratio,))


def _simulate(width: int, depth: int, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw averages over units of z^2 and z^4 at each layer 1..depth, shapes (depth, draws)."""
    key = jax.random.PRNGKey(seed)
    x = jnp.ones((width,))  # input dimension = width; any fixed input gives a Gaussian layer 1

    def one(k: jax.Array) -> tuple[jax.Array, jax.Array]:
        keys = jax.random.split(k, depth)
        z = jnp.sqrt(2.0 / width) * (jax.random.normal(keys[0], (width, width)) @ x)
        m2, m4 = [jnp.mean(z ** 2)], [jnp.mean(z ** 4)]
        for layer in range(1, depth):
            z = jnp.sqrt(2.0 / width) * (jax.random.normal(keys[layer], (width, width)) @ jnp.maximum(z, 0.0))
            m2.append(jnp.mean(z ** 2))
            m4.append(jnp.mean(z ** 4))
        return jnp.stack(m2), jnp.stack(m4)

    m2, m4 = jax.jit(jax.vmap(one))(jax.random.split(key, draws))
    return np.asarray(m2, dtype=float).T, np.asarray(m4, dtype=float).T


def kurtosis_simulated(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """Simulated relu nets at C_W = 2: ratio of means E z^4 / (3 (E z^2)^2), delta-method standard error.

    Each draw averages over the n units of a layer (exchangeable), so draws are iid; SE of the ratio
    A/(3 B^2) by the delta method with the sample covariance of (z^4, z^2) averages over draws.
    """
    rows, tols = [], []
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for depth_f, width_f in points:
        depth, width = int(round(depth_f)), int(round(width_f))
        max_depth = int(round(points[:, 0].max()))
        if (width, max_depth) not in cache:
            cache[(width, max_depth)] = _simulate(width, max_depth, samples, seed)
        m2_all, m4_all = cache[(width, max_depth)]
        m2, m4 = m2_all[depth - 1], m4_all[depth - 1]
        a, b = m4.mean(), m2.mean()
        ratio = a / (3 * b * b)
        grad = np.array([1 / (3 * b * b), -2 * a / (3 * b ** 3)])
        cov = np.cov(np.stack([m4, m2]))
        se = math.sqrt(max(grad @ cov @ grad, 0.0) / samples)
        rows.append([ratio])
        tols.append([MC_SIGMAS * se])
    values = np.asarray(rows)
    return Estimate(values, np.asarray(tols) + fp_floor(values),
                    f"{MC_SIGMAS:g} delta-method standard errors over {samples} simulated networks (seed {seed})",
                    f"jax on {jax.devices()[0].platform}", info={"draws": samples})


KURTOSIS = Derivation(
    name="finite_width_kurtosis",
    title="Finite-width kurtosis of a critical relu net",
    references="Roberts, Yaida & Hanin 2022, The Principles of Deep Learning Theory, ch. 5",
    summary="E z^4 / (3 (E z^2)^2) = (1 + 5/n)^(L-1) at depth L for relu at C_W = 2, no bias; width 16, swept over L.",
    assumptions=((N, "width, positive integer"), (L, "depth of the measured layer, positive integer")),
    params=(L, N),
    outputs=("E z^4 / (3 (E z^2)^2)",),
    closed_form=KURTOSIS_CLOSED,
    derive=derive_kurtosis,
    methods=(Method("simulated", kurtosis_simulated, "simulated random relu networks, JAX", (20_000, 200_000)),),
    defaults={"L": 1.0, "n": 16.0},
    sweep=("L", 1.0, 5.0),
    sweep_decimals=0,
)

DERIVATIONS = (KURTOSIS,)
