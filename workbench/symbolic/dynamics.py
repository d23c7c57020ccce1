"""Derivations 4 and 7: linearized gradient flow and gradient-descent stability (docs/theory.md#2-linearized-kernel-training-dynamics and docs/theory.md#9-learning-rate-and-batch-size).

* ``linearized_flow`` (Jacot et al. 2018; Lee et al. 2019): for the loss 1/2 ||f - y||^2, gradient flow
  of the linearized model is df/dt = -lr Theta (f - y). On an eigenmode g = v_k^T f (eigenvalue lambda)
  it is the scalar ODE g' = -lr lambda (g - y_k), which sympy's ``dsolve`` solves:
  g(t) = y_k + (g(0) - y_k) exp(-lr lambda t); recombining the modes, f_t = y + exp(-lr Theta t)(f_0 - y).
  Checked against scipy's ODE solver and against a wide network trained by gradient flow (RK4 on its
  parameters), whose own empirical NTK at initialization enters the closed form.
* ``gd_stability`` (docs/theory.md#2-linearized-kernel-training-dynamics): gradient descent on a quadratic with curvature lambda
  maps a mode as x_{k+1} = (1 - eta lambda) x_k; ``rsolve`` gives x_k = x_0 (1 - eta lambda)^k, which
  decays iff |1 - eta lambda| < 1, i.e. 0 < eta < 2/lambda; the contraction |1 - eta lambda| vanishes
  at eta = 1/lambda (convergence in one step). For a matrix the largest eigenvalue sets eta_max = 2/lambda_max.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.optimize
import sympy as sp

from workbench.symbolic.core import Derivation, Derived, Estimate, Method, Step, eq, fp_floor

T = sp.Symbol("t", nonnegative=True)
LAM = sp.Symbol("lambda", positive=True)
LR = sp.Symbol("eta", positive=True)
G0 = sp.Symbol("g_0", real=True)
Y = sp.Symbol("y", real=True)
FLOW_CLOSED = (Y + (G0 - Y) * sp.exp(-LR * LAM * T),)

#: number of training points of the fixed problem
NUM_TRAIN = 4


def derive_flow() -> Derived:
    g = sp.Function("g")
    ode = sp.Eq(g(T).diff(T), -LR * LAM * (g(T) - Y))
    sol = sp.dsolve(ode, g(T), ics={g(0): G0})
    residual = sp.simplify(sol.rhs.diff(T) + LR * LAM * (sol.rhs - Y))
    steps = (
        Step("Gradient flow of the linearized model, loss 1/2 ||f - y||^2:",
             eq(sp.Symbol("df/dt"), -LR * sp.Symbol("Theta") * (sp.Symbol("f") - sp.Symbol("y")))),
        Step("Projected on an eigenvector v_k of Theta (eigenvalue lambda), g = v_k^T f, y = v_k^T y:", ode),
        Step("dsolve with g(0) = g_0:", sol),
        Step("Check: g' + eta lambda (g - y) =", residual),
        Step("Recombining the modes: f_t = y + V exp(-eta Lambda t) V^T (f_0 - y) = y + exp(-eta Theta t)(f_0 - y)",
             sp.Symbol("f_t")),
    )
    return Derived(steps=steps, result=(sp.expand(sol.rhs),))


@functools.lru_cache(maxsize=2)
def default_flow_problem(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed PSD kernel (eigenvalues 0.2..3), initial outputs f0 and targets y on 4 points."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((NUM_TRAIN, NUM_TRAIN)))
    theta = q @ np.diag(np.geomspace(0.2, 3.0, NUM_TRAIN)) @ q.T
    return theta, rng.standard_normal(NUM_TRAIN), rng.standard_normal(NUM_TRAIN)


def evaluate_flow(fn: Any, points: np.ndarray, *, theta: np.ndarray | None = None, f0: np.ndarray | None = None,
                  y: np.ndarray | None = None) -> np.ndarray:
    """f_t at the training points for each (t, eta) row: eigendecompose Theta, apply the mode solution, recombine."""
    if theta is None:
        theta, f0, y = default_flow_problem()
    lam, vec = jnp.linalg.eigh(jnp.asarray(theta))
    g0 = vec.T @ jnp.asarray(f0)
    yk = vec.T @ jnp.asarray(y)
    rows = []
    for t, lr in points:
        g = fn(jnp.asarray(t), lam, jnp.asarray(lr), g0, yk)[0]
        rows.append(np.asarray(vec @ g, dtype=float))
    return np.stack(rows)


def flow_ode(points: np.ndarray, **_: Any) -> Estimate:
    """scipy's DOP853 on df/dt = -eta Theta (f - y) at rtol 1e-8 and 1e-12; tolerance = their difference + rounding."""
    theta, f0, y = default_flow_problem()
    rows, tols = [], []
    for t, lr in points:
        if t == 0:
            rows.append(f0)
            tols.append(np.zeros_like(f0))
            continue
        rhs = lambda _t, f: -lr * theta @ (f - y)  # noqa: E731
        fine = scipy.integrate.solve_ivp(rhs, (0, t), f0, method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
        coarse = scipy.integrate.solve_ivp(rhs, (0, t), f0, method="DOP853", rtol=1e-8, atol=1e-10).y[:, -1]
        rows.append(fine)
        tols.append(np.abs(fine - coarse))
    values = np.asarray(rows)
    return Estimate(values, np.asarray(tols) + fp_floor(values),
                    "|DOP853(rtol 1e-12) - DOP853(rtol 1e-8)| (bounds the fine solve's error) plus rounding",
                    "scipy on the host (float64)")


def flow_library(points: np.ndarray, **_: Any) -> Estimate:
    """``workbench.dynamics.gradient_flow`` on the same kernel, f0 and targets (exact identity)."""
    from workbench.dynamics import gradient_flow

    theta, f0, y = default_flow_problem()
    rows = []
    for t, lr in points:
        pred = gradient_flow(theta, y, lr=float(lr))
        rows.append(np.asarray(pred(float(t), f0_train=f0)[0], dtype=float).reshape(-1))
    values = np.asarray(rows)
    return Estimate(values, fp_floor(values), "exact identity: rounding only (200 ulps)", "numpy on the host")


def _train_wide_net(width: int, times: np.ndarray, lr: float, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """RK4 gradient flow of a depth-1 relu MLP (NTK param.) on 4 circle points; outputs at ``times``."""
    from workbench.kernels.empirical import empirical_ntk
    from workbench.nets import MLP

    angles = np.linspace(0.0, 1.5 * np.pi, NUM_TRAIN, endpoint=False)
    x = jnp.asarray(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    y = jnp.asarray(np.sin(2 * angles) + 0.5)
    net = MLP(depth=1, width=width, activation="relu", w_std=math.sqrt(2.0), b_std=0.1)
    params = net.init(jax.random.PRNGKey(seed), in_dim=2)
    f0 = net.apply(params, x)[:, 0]
    ntk = empirical_ntk(net, params, x)

    def loss(p: Any) -> jax.Array:
        return 0.5 * jnp.sum((net.apply(p, x)[:, 0] - y) ** 2)

    grad = jax.grad(loss)

    @jax.jit
    def rk4(p: Any, dt: jax.Array) -> Any:
        def field(q: Any) -> Any:
            return jax.tree_util.tree_map(lambda g: -lr * g, grad(q))

        def axpy(a: float, u: Any, v: Any) -> Any:
            return jax.tree_util.tree_map(lambda s, w: s + a * w, u, v)

        k1 = field(p)
        k2 = field(axpy(dt / 2, p, k1))
        k3 = field(axpy(dt / 2, p, k2))
        k4 = field(axpy(dt, p, k3))
        return jax.tree_util.tree_map(lambda s, a, b, c, d: s + dt / 6 * (a + 2 * b + 2 * c + d), p, k1, k2, k3, k4)

    outs, t_now = [], 0.0
    dt_max = 0.02 / lr
    for t in times:
        span = float(t) - t_now
        steps = max(int(math.ceil(span / dt_max)), 0)
        for _ in range(steps):
            params = rk4(params, jnp.asarray(span / steps))
        t_now = float(t)
        outs.append(np.asarray(net.apply(params, x)[:, 0], dtype=float))
    return np.stack(outs), {"theta": np.asarray(ntk, dtype=float), "f0": np.asarray(f0, dtype=float),
                            "y": np.asarray(y, dtype=float)}


def flow_wide_net(points: np.ndarray, *, samples: int, seed: int, closed: Any, **_: Any) -> Estimate:
    """A wide net trained by gradient flow vs the closed form with its own NTK and outputs at init.

    The distance between a trained net and its linearization is O(width^{-1/2}) (Lee et al. 2019, Thm 2.1).
    Tolerance: the same distance measured at width/16, scaled by (1/16)^{1/2}, times a safety factor 2 for
    the seed-to-seed spread of one net's distance; a wrong closed form does not shrink with width and fails.
    """
    times = points[:, 0]
    lrs = np.unique(points[:, 1])
    if lrs.size != 1:
        raise ValueError(f"wide-net check needs one learning rate across points, got {lrs}")
    lr = float(lrs[0])
    width = samples
    small = max(width // 16, 1)
    small_out, small_inputs = _train_wide_net(small, times, lr, seed)
    small_closed = evaluate_flow(closed, points, **small_inputs)
    dev_small = float(np.max(np.abs(small_out - small_closed)))
    out, inputs = _train_wide_net(width, times, lr, seed)
    tol = np.full(out.shape, 2.0 * math.sqrt(small / width) * dev_small)
    return Estimate(out, tol + fp_floor(out),
                    f"2 x ({small}/{width})^(1/2) x max deviation at width {small} ({dev_small:.2e}): the O(width^-1/2) "
                    f"linearization error extrapolated to width {width}",
                    f"jax on {jax.devices()[0].platform}", closed_inputs=inputs,
                    info={"width": width, "deviation_small_width": dev_small})


LINEARIZED_FLOW = Derivation(
    name="linearized_flow",
    title="Linearized gradient flow f_t = y + exp(-lr Theta t)(f_0 - y)",
    references="Jacot, Gabriel & Hongler 2018; Lee et al. 2019, Wide neural networks evolve as linear models",
    summary="Mode equation solved by dsolve; f_t at 4 training points swept over time t.",
    assumptions=((T, "time, >= 0"), (LAM, "kernel eigenvalue, > 0"), (LR, "learning rate, > 0"),
                 (G0, "initial mode output"), (Y, "mode target")),
    params=(T, LAM, LR, G0, Y),
    outputs=tuple(f"f_t(x{i + 1})" for i in range(NUM_TRAIN)),
    closed_form=FLOW_CLOSED,
    derive=derive_flow,
    methods=(
        Method("ode", flow_ode, "scipy solve_ivp (DOP853) on a fixed kernel", (0, 0)),
        Method("wide_net", flow_wide_net, "relu net trained by RK4 gradient flow vs its linearization", (512, 4096)),
        Method("workbench.dynamics", flow_library, "workbench.dynamics.gradient_flow", (0, 0)),
    ),
    defaults={"t": 0.0, "eta": 1.0},
    sweep=("t", 0.0, 1.5),
    evaluate=evaluate_flow,
    point_params=("t", "eta"),
)

# ----------------------------------------------------------------------------- GD stability
ETA_CLOSED = (2 / LAM, 1 / LAM)
#: relative spectrum of the quadratic: the top eigenvalue is lambda itself
SPECTRUM = np.array([1.0, 0.7, 0.5, 0.3, 0.2, 0.15, 0.12, 0.1])


def derive_gd() -> Derived:
    k = sp.Symbol("k", integer=True, nonnegative=True)
    x = sp.Function("x")
    x0 = sp.Symbol("x_0", real=True)
    rec = x(k + 1) - (1 - LR * LAM) * x(k)
    sol = sp.rsolve(rec, x(k), {x(0): x0})
    eta = sp.Symbol("eta", real=True)
    factor = sp.Abs(1 - eta * LAM)
    stable = sp.solve_univariate_inequality(factor < 1, eta, relational=False)
    eta_max = stable.sup
    eta_opt = sp.solve(1 - eta * LAM, eta)[0]
    steps = (
        Step("GD on L = lambda x^2/2 maps a mode as", eq(rec, 0)),
        Step("rsolve:", eq(x(k), sol)),
        Step("x_k -> 0 iff the contraction |1 - eta lambda| < 1, i.e. eta in", stable),
        Step("Largest stable step (for a matrix: lambda = lambda_max):", eq(sp.Symbol("eta_max"), eta_max)),
        Step("The contraction |1 - eta lambda| >= 0 vanishes (one-step convergence) at", eq(sp.Symbol("eta_opt"), eta_opt)),
    )
    return Derived(steps=steps, result=(eta_max, eta_opt))


def _quadratic(lam: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((SPECTRUM.size, SPECTRUM.size)))
    return q @ np.diag(lam * SPECTRUM) @ q.T


@functools.partial(jax.jit, static_argnames="steps")
def _growth(h: jax.Array, x0: jax.Array, eta: jax.Array, steps: int) -> jax.Array:
    """Per-step growth ||x_k|| / ||x_{k-1}|| of GD x <- x - eta H x after ``steps`` steps (renormalized)."""

    def body(_i: int, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        x, _ = carry
        nxt = x - eta * (h @ x)
        norm = jnp.linalg.norm(nxt)
        return nxt / norm, norm

    _, rate = jax.lax.fori_loop(0, steps, body, (x0 / jnp.linalg.norm(x0), jnp.asarray(1.0, x0.dtype)))
    return rate


def gd_iteration(points: np.ndarray, *, samples: int, seed: int, **_: Any) -> Estimate:
    """eta_max: root of (growth rate of iterated GD) = 1 by brentq, with ``samples`` and 2 x ``samples`` steps;
    eta_opt: the step minimizing the loss after one GD step on the mode lambda x^2/2 (scipy bounded Brent).

    Tolerances: |root(K) - root(2K)| + brentq's xtol for eta_max; 10 sqrt(machine eps) eta for eta_opt (a
    minimum located from function values is known only to about sqrt(eps) relative).
    """
    rows, tols = [], []
    for (lam,) in points:
        h = _quadratic(float(lam), seed)
        hj = jnp.asarray(h)
        x0 = jax.random.normal(jax.random.PRNGKey(seed), (h.shape[0],), dtype=hj.dtype)
        lo, hi = 2.0 / np.linalg.norm(h), 4.0 * h.shape[0] / np.trace(h)  # stable / unstable, from H's entries only

        def root(steps: int) -> float:
            f = lambda eta: float(_growth(hj, x0, jnp.asarray(eta, hj.dtype), steps)) - 1.0  # noqa: E731
            return scipy.optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14)

        r1, r2 = root(samples), root(2 * samples)
        one_step = lambda eta: 0.5 * lam * ((1 - eta * lam) * 1.0) ** 2  # noqa: E731
        opt = scipy.optimize.minimize_scalar(one_step, bounds=(0.0, r2), method="bounded",
                                             options={"xatol": 1e-14}).x
        rows.append([r2, opt])
        tols.append([abs(r1 - r2) + 4e-14 * r2, 10 * math.sqrt(np.finfo(float).eps) * opt])
    values = np.asarray(rows)
    return Estimate(values, np.asarray(tols) + fp_floor(values),
                    "eta_max: |brentq root with K steps - with 2K steps| + xtol; eta_opt: 10 sqrt(eps) eta "
                    "(Brent minimization)", f"jax on {jax.devices()[0].platform} (GD iterations), scipy root finding",
                    info={"steps": samples})


GD_STABILITY = Derivation(
    name="gd_stability",
    title="Gradient-descent stability on a quadratic: eta_max = 2/lambda_max, eta_opt = 1/lambda",
    references="Textbook (e.g. Nesterov 2004, ch. 1); Cohen et al. 2021 for the edge of stability",
    summary="Largest stable step of GD on an 8-d quadratic with top curvature lambda, and the one-step optimum "
            "for a mode; swept over lambda.",
    assumptions=((LAM, "curvature (top Hessian eigenvalue), > 0"), (LR, "step size")),
    params=(LAM,),
    outputs=("eta_max", "eta_opt"),
    closed_form=ETA_CLOSED,
    derive=derive_gd,
    methods=(Method("gd_iteration", gd_iteration, "iterated GD (JAX) + brentq on the growth rate", (200, 400)),),
    defaults={"lambda": 1.0},
    sweep=("lambda", 0.5, 4.0),
)

DERIVATIONS = (LINEARIZED_FLOW, GD_STABILITY)
