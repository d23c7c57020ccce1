"""Derivation 3: the NTK layer recursion from the chain rule (Jacot et al. 2018; docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net).

One layer of the NTK-parametrized network on top of pre-activations h_j(x), j = 1..n:
f(x) = (w/sqrt n) sum_j W_j phi(h_j(x)) + b beta, W_j, beta ~ N(0, 1). The NTK sums gradient products over
all parameters: the layer's own (W_j, beta) give (w^2/n) sum_j phi(h_j) phi(h'_j) + b^2, and the
parameters below, through the chain rule, give sum_{j,k} df/dh_j df'/dh'_k <grad h_j, grad h'_k>. In the
infinite-width limit the lower gradients of different units are orthogonal, <grad h_j, grad h'_k> =
delta_jk Theta^l (induction hypothesis), W_j^2 averages to E W^2 = 1, and the unit averages become
Gaussian expectations: Theta^{l+1} = b^2 + w^2 E[phi phi] + w^2 E[phi' phi'] Theta^l = K^{l+1} + w^2 E[phi' phi'] Theta^l.

sympy does the chain rule on an explicit layer of 3 units; the limit steps (E W^2 = 1 and the law of large
numbers over units) are substitutions stated in the steps. The check iterates the recursion with the
relu closed forms of :mod:`workbench.symbolic.kernels` and compares it with the empirical NTK of wide
networks (``workbench.kernels.empirical.empirical_ntk``, averaged over initializations) and with the
library's ``workbench.kernels.analytic.infinite_kernels``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from workbench.symbolic.core import MC_SIGMAS, Derivation, Derived, Estimate, Method, Step, eq, fp_floor
from workbench.symbolic.kernels import RELU_CLOSED, K11, K22, RHO

K_NEXT = sp.Symbol("K^{l+1}", real=True)
E_DD = sp.Symbol("E[phi' phi']", nonnegative=True)
THETA_L = sp.Symbol("Theta^l", real=True)
W2 = sp.Symbol("w^2", positive=True)
NTK_CLOSED = (K_NEXT + W2 * E_DD * THETA_L,)

#: The two inputs of the worked values in docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net.
INPUTS = np.array([[1.0, 0.0], [0.6, 0.8]])


def derive_ntk_step(units: int = 3) -> Derived:
    """Chain rule on an explicit layer of ``units`` units, then the infinite-width substitutions."""
    w, b = sp.symbols("w b", positive=True)
    beta = sp.Symbol("beta", real=True)
    ws = sp.symbols(f"W_1:{units + 1}", real=True)
    h = sp.symbols(f"h_1:{units + 1}", real=True)
    hp = sp.symbols(f"h'_1:{units + 1}", real=True)
    phi = sp.Function("phi")
    n = units
    f = w / sp.sqrt(n) * sum(wj * phi(hj) for wj, hj in zip(ws, h)) + b * beta
    fp = f.subs(dict(zip(h, hp)), simultaneous=True)
    own = sp.expand(sum(sp.diff(f, p) * sp.diff(fp, p) for p in (*ws, beta)))
    theta_l = sp.Symbol("Theta^l", real=True)
    lower_ip = {(j, k): (theta_l if j == k else 0) for j in range(n) for k in range(n)}  # <grad h_j, grad h'_k>
    chain = sp.expand(sum(sp.diff(f, h[j]) * sp.diff(fp, hp[k]) * lower_ip[(j, k)] for j in range(n) for k in range(n)))
    ntk_finite = own + chain
    # infinite width: W_j^2 -> E W^2 = 1; unit averages (1/n) sum_j g(h_j, h'_j) -> E g(u, v)
    e_pp = sp.Symbol("E[phi phi]", real=True)
    subs_units = {}
    for j in range(n):
        subs_units[ws[j] ** 2] = 1
    limit = ntk_finite.subs(subs_units)
    # replace each unit's product by its expectation (all units identically distributed)
    for j in range(n):
        limit = limit.subs(phi(h[j]) * phi(hp[j]), e_pp)
        dj = sp.diff(phi(h[j]), h[j])
        djp = sp.diff(phi(hp[j]), hp[j])
        limit = limit.subs(dj * djp, E_DD)
    limit = sp.simplify(limit)
    k_next_def = b ** 2 + w ** 2 * e_pp
    derived = sp.simplify(limit.subs(e_pp, (K_NEXT - b ** 2) / w ** 2).subs(theta_l, THETA_L).subs(w, sp.sqrt(W2)))
    steps = (
        Step(f"One layer on top of pre-activations h_j ({units} units shown), NTK parametrization:",
             eq(sp.Symbol("f(x)"), f)),
        Step("Gradient products over the layer's own parameters (W_j, beta):", own),
        Step("Chain rule through h_j with <grad h_j, grad h'_k> = delta_jk Theta^l:", chain),
        Step("Infinite width: W_j^2 -> E W^2 = 1 and (1/n) sum_j phi(h_j) phi(h'_j) -> E[phi phi], "
             "(1/n) sum_j phi'(h_j) phi'(h'_j) -> E[phi' phi']:", eq(sp.Symbol("Theta^{l+1}"), limit)),
        Step("With K^{l+1} = b^2 + w^2 E[phi phi]:", eq(K_NEXT, k_next_def)),
        Step("Recursion:", eq(sp.Symbol("Theta^{l+1}"), derived)),
    )
    return Derived(steps=steps, result=(derived,))


def relu_kernels(depth: int, w2: float, b2: float, step_fn: Any, x: np.ndarray = INPUTS) -> np.ndarray:
    """Iterate K and Theta through ``depth`` relu hidden layers with the lambdified closed forms.

    ``step_fn(K_next, E_dd, Theta, w2)`` is the (lambdified) NTK step; relu expectations come from
    :data:`workbench.symbolic.kernels.RELU_CLOSED`. Returns [Theta(x1, x2), Theta(x1, x1), K(x1, x2)]
    of the output h^{depth+1}.
    """
    relu_fn = sp.lambdify((K11, K22, RHO), list(RELU_CLOSED), modules="jax")
    x = jnp.asarray(x)
    d = x.shape[1]
    dots = x @ x.T / d
    k = w2 * dots + b2
    theta = k
    for _ in range(depth):
        k11, k22, k12 = k[0, 0], k[1, 1], k[0, 1]
        rho = jnp.clip(k12 / jnp.sqrt(k11 * k22), -1.0, 1.0)
        e12, d12 = relu_fn(k11, k22, rho)
        e11, d11 = relu_fn(k11, k11, jnp.asarray(1.0, dtype=k.dtype))
        e22, d22 = relu_fn(k22, k22, jnp.asarray(1.0, dtype=k.dtype))
        e = jnp.array([[e11, e12], [e12, e22]])
        dd = jnp.array([[d11, d12], [d12, d22]])
        k = b2 + w2 * e
        theta = jnp.asarray(step_fn(k, dd, theta, w2)[0])
    return np.array([float(theta[0, 1]), float(theta[0, 0]), float(k[0, 1])])


def evaluate_ntk(fn: Any, points: np.ndarray, **_: Any) -> np.ndarray:
    return np.stack([relu_kernels(int(round(p[0])), p[1], p[2], fn) for p in points])


def ntk_empirical(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """Mean empirical NTK of ``seeds`` wide relu MLPs (width ``samples``), NTK parametrization, and its SE.

    Tolerance: 5 standard errors over initializations + a finite-width allowance (depth/width) |value| for
    the O(depth/width) bias of the mean NTK (Hanin & Nica 2019).
    """
    from workbench.kernels.empirical import empirical_ntk
    from workbench.nets import MLP

    width = samples
    seeds = 8 if width <= 512 else 16
    x = jnp.asarray(INPUTS)
    rows, tols = [], []
    for depth_f, w2, b2 in points:
        depth = int(round(depth_f))
        net = MLP(depth=depth, width=width, activation="relu", w_std=math.sqrt(w2), b_std=math.sqrt(b2))
        kers = []
        for s in range(seeds):
            params = net.init(jax.random.PRNGKey(1000 * seed + s), in_dim=2)
            kers.append(np.asarray(empirical_ntk(net, params, x), dtype=float))
        kers = np.stack(kers)
        vals = np.array([kers[:, 0, 1], kers[:, 0, 0]])
        mean = vals.mean(axis=1)
        se = vals.std(axis=1, ddof=1) / math.sqrt(seeds)
        rows.append(mean)
        tols.append(MC_SIGMAS * se + depth / width * np.abs(mean))
    values = np.asarray(rows)
    return Estimate(values, np.asarray(tols) + fp_floor(values),
                    f"{MC_SIGMAS:g} SE over {seeds} initializations + (depth/width) |Theta| finite-width allowance "
                    f"(width {width})", f"jax on {jax.devices()[0].platform}", info={"width": width, "seeds": seeds})


def ntk_library(points: np.ndarray, **_: Any) -> Estimate:
    """``workbench.kernels.analytic.infinite_kernels`` at the same inputs (exact identity)."""
    from workbench.kernels.analytic import infinite_kernels
    from workbench.nets import MLP

    rows = []
    for depth_f, w2, b2 in points:
        net = MLP(depth=int(round(depth_f)), width=1, activation="relu", w_std=math.sqrt(w2), b_std=math.sqrt(b2))
        k = infinite_kernels(net, jnp.asarray(INPUTS))
        rows.append([float(k.ntk[0, 1]), float(k.ntk[0, 0])])
    values = np.asarray(rows)
    return Estimate(values, fp_floor(values), "exact identity: rounding only (200 ulps)",
                    f"jax on {jax.devices()[0].platform}")


def _evaluate_two(fn: Any, points: np.ndarray, **kw: Any) -> np.ndarray:
    return evaluate_ntk(fn, points, **kw)[:, :2]


NTK_RECURSION = Derivation(
    name="ntk_recursion",
    title="NTK layer recursion from the chain rule",
    references="Jacot, Gabriel & Hongler 2018; Arora et al. 2019; Lee et al. 2019",
    summary="Theta^{l+1} = K^{l+1} + w^2 E[phi' phi'] Theta^l; relu net on x1 = (1, 0), x2 = (0.6, 0.8), swept over depth.",
    assumptions=((K_NEXT, "NNGP of layer l+1"), (E_DD, "E[phi'(u) phi'(v)] at layer l"), (THETA_L, "NTK of layer l"),
                 (W2, "weight variance w_std^2, > 0")),
    params=(K_NEXT, E_DD, THETA_L, W2),
    outputs=("Theta(x1, x2)", "Theta(x1, x1)"),
    closed_form=NTK_CLOSED,
    derive=derive_ntk_step,
    methods=(
        Method("empirical_ntk", ntk_empirical, "mean empirical NTK of wide relu nets (workbench.kernels.empirical)",
               (256, 2048)),
        Method("workbench.kernels.analytic", ntk_library, "workbench.kernels.analytic.infinite_kernels", (0, 0)),
    ),
    defaults={"depth": 1.0, "w2": 2.0, "b2": 0.1},
    sweep=("depth", 1.0, 4.0),
    sweep_decimals=0,
    evaluate=_evaluate_two,
    point_params=("depth", "w2", "b2"),
)

DERIVATIONS = (NTK_RECURSION,)
