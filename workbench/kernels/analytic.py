"""Infinite-width NNGP and NTK of a fully connected :class:`~workbench.nets.MLP` (docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net).

Network (NTK parametrization, neural-tangents' ``Dense(W_std, b_std, parameterization="ntk")``):
h^1 = (w_std/sqrt(d)) W^1 x + b_std b^1, h^{l+1} = (w_std/sqrt(n)) W^{l+1} phi(h^l) + b_std b^{l+1},
W, b ~ N(0, 1); ``depth`` hidden layers, output h^{depth+1}. Per output unit:

* K^1(x, x') = w_std^2 x.x'/d + b_std^2,  Theta^1 = K^1;
* K^{l+1} = b_std^2 + w_std^2 E[phi(u) phi(v)],  Theta^{l+1} = K^{l+1} + w_std^2 E[phi'(u) phi'(v)] Theta^l,
  (u, v) ~ N(0, [[K11, K12], [K12, K22]]) from layer l (Jacot et al. 2018; Lee et al. 2018).

``b_std=None`` (no bias parameters) counts as b_std = 0. The returned kernels are those of one
output unit: the NTK of a net with ``out_dim = k`` outputs is ``Theta (x) I_k``, so the empirical
``output="trace"`` kernel tends to ``k * Theta``.

Expectations: relu by the arc-cosine kernels (Cho & Saul 2009) with the angle computed stably as
``arctan2(sqrt(K11 K22 - K12^2), K12)`` (and exact on the diagonal); erf by Williams (1997);
any other activation (tanh, gelu, user functions) by tensor quadrature over the 2-d Gaussian,
with its order chosen adaptively (see ``_choose_order``). Gauss-Hermite is the textbook rule (docs/theory.md#12-gaussian-expectations-and-the-price-theorem); it is
available (``rule="hermite"`` in :func:`gauss_hermite_expectations`), but for tanh at pre-activation
variance ~2-4 it needs 400+ nodes per axis for 1e-8, so the default 1-d rule is the trapezoid rule
on [-9, 9] sd, spectrally accurate for integrands analytic in a strip (~150 nodes there).

Standard parametrization (neural-tangents' ``parameterization="standard"``; W ~ N(0, w_std^2/fan_in),
b ~ N(0, b_std^2), all parameters trained at the same rate): the NNGP is the same; the NTK
picks up the fan-in: Theta_out = fan_in K_in + [1 if bias] + w_std^2 E[phi' phi'] Theta_in with
K_in the layer's input kernel per feature (x.x'/d for the first layer, E[phi(u) phi(v)] after),
so it depends on the finite width (it grows like width).

muP: there is no fixed infinite-width NTK: the output variance at initialization vanishes like
1/width (so the NNGP limit is 0) and, with the muP learning rates, the kernel moves by O(1)
during training (feature learning, Yang & Hu 2021). :func:`infinite_kernels` raises a clear
error; measure finite-width kernels with :func:`workbench.kernels.empirical.empirical_ntk`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from workbench.host_memory import trim_after_compiling
from workbench.nets import MLP, activation_name
from workbench.validation import check_choice, check_finite, check_matrix_rank2, check_positive_int
from workbench.validation import check_number_array, is_concrete

#: activations with closed-form Gaussian expectations
CLOSED_FORMS = ("relu", "erf", "identity")
#: relative agreement between two Gauss-Hermite orders that ends the adaptive doubling
QUADRATURE_RTOL = 1e-10


class Kernels(NamedTuple):
    """Infinite-width kernels of one output unit: ``nngp`` K and ``ntk`` Theta, each (n1, n2)."""

    nngp: jax.Array
    ntk: jax.Array


# ----------------------------------------------------------------------------- Gaussian expectations
def _atan_small(x: jax.Array) -> jax.Array:
    """arctan(x) for |x| <= tan(pi/8) by its Taylor series x sum_k (-x^2)^k/(2k+1) (Horner).

    With x^2 <= 0.1716 the truncation error after m terms is below 0.1716^m/(2m+1): m = 22 gives
    < 1e-18 (float64), m = 10 gives < 1e-9 relative to x (float32). Only multiply-adds, so XLA
    vectorizes it (its own atan2 is a scalar libm call on CPU, ~20x slower).
    """
    m = 22 if x.dtype == jnp.float64 else 10
    z = -x * x
    acc = jnp.full_like(x, 1.0 / (2 * m - 1))
    for k in range(m - 2, -1, -1):
        acc = acc * z + 1.0 / (2 * k + 1)
    return x * acc


def angle(sin_part: jax.Array, cos_part: jax.Array) -> jax.Array:
    """arctan2(sin_part, cos_part) in [0, pi] for sin_part >= 0, vectorized (0 when both are 0).

    Range reduction: r = min/max of (sin_part, |cos_part|) in [0, 1]; arctan r = pi/4 + arctan((r-1)/(r+1))
    when r > tan(pi/8); then pi/2 - . when sin_part > |cos_part| and pi - . when cos_part < 0.
    """
    a, b = sin_part, jnp.abs(cos_part)
    hi, lo = jnp.maximum(a, b), jnp.minimum(a, b)
    r = jnp.where(hi > 0, lo / jnp.where(hi > 0, hi, 1.0), 0.0)
    big = r > 0.41421356237309503  # tan(pi/8)
    t = _atan_small(jnp.where(big, (r - 1) / (r + 1), r)) + jnp.where(big, jnp.pi / 4, 0.0)
    t = jnp.where(a > b, jnp.pi / 2 - t, t)
    return jnp.where(cos_part < 0, jnp.pi - t, t)


def relu_expectations(k11: jax.Array, k22: jax.Array, k12: jax.Array) -> tuple[jax.Array, jax.Array]:
    """E[relu(u) relu(v)] and E[relu'(u) relu'(v)] for (u, v) ~ N(0, [[k11, k12], [k12, k22]]).

    Arc-cosine kernels (Cho & Saul 2009): with th the angle, cos th = k12/sqrt(k11 k22),
    E[phi phi] = sqrt(k11 k22)/(2 pi) (sin th + (pi - th) cos th), E[phi' phi'] = (pi - th)/(2 pi).
    th = arctan2(sqrt(k11 k22 - k12^2), k12) (computed by :func:`angle`) is accurate near th = 0, where the derivative kernel
    behaves like sqrt(1 - cos th); when k12^2 = k11 k22 exactly, th = 0 and E[phi phi] = k11/2.
    """
    # sqrt(k11 k22) sin th = sqrt((g - k12)(g + k12)), g = sqrt(k11 k22): exactly 0 when k12 = k11 = k22
    # (sqrt(fl(k^2)) = k in IEEE arithmetic), even where the compiler fuses multiply-adds
    g = jnp.sqrt(k11 * k22)
    sin_scaled = jnp.sqrt(jnp.maximum((g - k12) * (g + k12), 0.0))
    th = angle(sin_scaled, k12)
    e_phi = (sin_scaled + (jnp.pi - th) * k12) / (2 * jnp.pi)
    e_dphi = (jnp.pi - th) / (2 * jnp.pi)
    return e_phi, e_dphi


def erf_expectations(k11: jax.Array, k22: jax.Array, k12: jax.Array) -> tuple[jax.Array, jax.Array]:
    """E[erf(u) erf(v)] and E[erf'(u) erf'(v)] (Williams 1997).

    E[erf erf] = (2/pi) arcsin(2 k12 / sqrt((1 + 2 k11)(1 + 2 k22))),
    E[erf' erf'] = (4/pi) / sqrt((1 + 2 k11)(1 + 2 k22) - 4 k12^2).
    """
    d = (1 + 2 * k11) * (1 + 2 * k22)
    e_phi = (2 / jnp.pi) * jnp.arcsin(jnp.clip(2 * k12 / jnp.sqrt(d), -1.0, 1.0))
    e_dphi = (4 / jnp.pi) / jnp.sqrt(d - 4 * k12 * k12)
    return e_phi, e_dphi


def identity_expectations(k11: jax.Array, k22: jax.Array, k12: jax.Array) -> tuple[jax.Array, jax.Array]:
    """E[u v] = k12 and E[1 * 1] = 1 (linear network)."""
    return k12, jnp.ones_like(k12)


def _derivative(phi: Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
    """phi' of an elementwise phi, elementwise (forward-mode derivative with a unit tangent)."""
    return lambda x: jax.jvp(phi, (x,), (jnp.ones_like(x),))[1]


#: Gaussian quadrature rules: "trapezoid" (default) or "hermite"
RULES = ("trapezoid", "hermite")
#: half-width of the trapezoid rule in standard deviations: the N(0, 1) density is 2.6e-18 there
TRAPEZOID_HALF_WIDTH = 9.0


def gaussian_rule(order: int, rule: str = "trapezoid") -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w with sum_i w_i f(z_i) ~ E[f(z)], z ~ N(0, 1).

    ``"hermite"``: Gauss-Hermite (probabilists', ``scipy.special.roots_hermitenorm``, weights / sqrt(2 pi)).
    ``"trapezoid"``: the trapezoid rule on [-9, 9] with ``order`` equispaced nodes times the density.
    For f analytic in the strip |Im z| < a (tanh(s z): a = pi/(2 s)) its error falls like
    exp(-2 pi a / h) (h the spacing): at s ~ 2, 1e-10 takes ~150 nodes where Gauss-Hermite needs
    more than 400, so it is the default; for entire functions (erf, gelu) both converge fast.
    """
    order = check_positive_int("order", order, minimum=2)
    check_choice("rule", rule, RULES)
    if rule == "hermite":
        z, w = scipy.special.roots_hermitenorm(order)
        return z, w / math.sqrt(2 * math.pi)
    z = np.linspace(-TRAPEZOID_HALF_WIDTH, TRAPEZOID_HALF_WIDTH, order)
    return z, (z[1] - z[0]) * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def gauss_hermite_expectations(phi: Callable[[jax.Array], jax.Array], k11: jax.Array, k22: jax.Array,
                               k12: jax.Array, order: int, rule: str = "trapezoid") -> tuple[jax.Array, jax.Array]:
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] by an ``order`` x ``order`` tensor quadrature.

    With z1, z2 iid N(0, 1): u = sqrt(k11) z1, v = sqrt(k22) (c z1 + sqrt(1 - c^2) z2),
    c = k12/sqrt(k11 k22); the 1-d rule is :func:`gaussian_rule` (``rule="hermite"``: Gauss-Hermite,
    see docs/theory.md#12-gaussian-expectations-and-the-price-theorem; default ``"trapezoid"``, faster for tanh-like activations). Inputs broadcast;
    zero variances are allowed.
    """
    z, w = gaussian_rule(order, rule)
    dt = jnp.result_type(k11, k22, k12)
    z = jnp.asarray(z, dt)
    w = jnp.asarray(w, dt)
    dphi = _derivative(phi)
    k11, k22, k12 = jnp.broadcast_arrays(k11, k22, k12)
    shape = k11.shape
    a = jnp.sqrt(k11).reshape(-1)
    b = jnp.sqrt(k22).reshape(-1)
    denom = a * b
    c = jnp.where(denom > 0, k12.reshape(-1) / jnp.where(denom > 0, denom, 1.0), 0.0)
    c = jnp.clip(c, -1.0, 1.0)
    s = jnp.sqrt(1 - c * c)

    def one(args):
        ai, bi, ci, si = args
        u = ai * z[:, None]  # (q, 1)
        v = bi * (ci * z[:, None] + si * z[None, :])  # (q, q)
        ww = w[:, None] * w[None, :]
        return jnp.sum(ww * phi(u) * phi(v)), jnp.sum(ww * dphi(u) * dphi(v))

    e_phi, e_dphi = jax.lax.map(one, (a, b, c, s), batch_size=min(256, max(a.shape[0], 1)))
    return e_phi.reshape(shape), e_dphi.reshape(shape)


def _expectations(net: MLP, k11, k22, k12, order: int):
    name = net.activation if isinstance(net.activation, str) else None
    if name == "relu":
        return relu_expectations(k11, k22, k12)
    if name == "erf":
        return erf_expectations(k11, k22, k12)
    if name == "identity":
        return identity_expectations(k11, k22, k12)
    return gauss_hermite_expectations(net.phi, k11, k22, k12, order)


def has_closed_form(net: MLP) -> bool:
    """True if ``net``'s activation has closed-form Gaussian expectations (no quadrature)."""
    return isinstance(net.activation, str) and net.activation in CLOSED_FORMS


# ----------------------------------------------------------------------------- recursion
def _check_net(net: MLP) -> None:
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a workbench.nets.MLP, got {type(net).__name__}")
    if net.parametrization == "mup":
        raise ValueError(
            "the infinite-width NTK of a muP network is degenerate: its output variance at initialization "
            "vanishes like 1/width (the NNGP limit is 0) and with muP learning rates the kernel moves by O(1) "
            "during training (feature learning, Yang & Hu 2021), so no fixed kernel describes it; use "
            "parametrization='ntk' or 'standard' here, or measure finite widths with kernels.empirical.empirical_ntk"
        )


def _diagonal_expectations(net: MLP, k: jax.Array, order: int) -> tuple[jax.Array, jax.Array]:
    """E[phi(u)^2] and E[phi'(u)^2] for u ~ N(0, k): closed form, or the 1-d rule of ``order`` nodes."""
    if has_closed_form(net):
        return _expectations(net, k, k, k, order)
    z, w = gaussian_rule(order)
    z = jnp.asarray(z, k.dtype)
    w = jnp.asarray(w, k.dtype)
    lead = (1,) * k.ndim
    z, w = z.reshape(lead + z.shape), w.reshape(lead + w.shape)
    u = jnp.sqrt(k)[..., None] * z
    return jnp.sum(w * net.phi(u) ** 2, axis=-1), jnp.sum(w * _derivative(net.phi)(u) ** 2, axis=-1)


def _split(net: MLP) -> tuple[MLP, tuple[float, float, float]]:
    """(the net with width, w_std and b_std set to placeholders, (w_std^2, b_std^2, width)): the first is the
    static key of the compiled recursion, the second its traced values, so that a new w_std, b_std or width
    reuses the compiled program (one per depth, activation, parametrization, bias or not and shapes)."""
    hyper = (float(net.w_std) ** 2, float(net.b_std) ** 2 if net.b_std is not None else 0.0, float(net.width))
    return dataclasses.replace(net, width=1, w_std=1.0, b_std=None if net.b_std is None else 1.0), hyper


@partial(jax.jit, static_argnames=("net", "in_dim", "order", "diagonal"))
def _recursion(net: MLP, dot11, dot22, dot12, in_dim: int, order: int, diagonal: bool, hyper) -> Kernels:
    """``net`` gives the structure; ``hyper`` = (w_std^2, b_std^2, width), traced (:func:`_split`)."""
    w2, b2, width = hyper
    bias_ntk = 1.0 if net.has_bias else 0.0
    standard = net.parametrization == "standard"
    # dot11, dot22 keep their own (broadcastable) shapes, e.g. (n1, 1) and (1, n2): the diagonal
    # recursions then cost O(n), not O(n1 n2); only the cross terms are full-size
    dot12 = jnp.broadcast_to(dot12, jnp.broadcast_shapes(dot11.shape, dot22.shape, dot12.shape))
    # layer 1: per-feature input kernels x.x'/d
    kin11, kin22, kin12 = dot11 / in_dim, dot22 / in_dim, dot12 / in_dim
    k11, k22, k12 = w2 * kin11 + b2, w2 * kin22 + b2, w2 * kin12 + b2
    theta = in_dim * kin12 + bias_ntk if standard else k12

    def hidden_to_next(_, state):
        # nonlinearity phi(h^l), then the affine layer of fan_in = width
        k11, k22, k12, theta = state
        kin11, _ = _diagonal_expectations(net, k11, order)
        kin22 = kin11 if diagonal else _diagonal_expectations(net, k22, order)[0]
        if diagonal:
            kin12, e_dphi = _diagonal_expectations(net, k11, order)
        else:
            kin12, e_dphi = _expectations(net, k11, k22, k12, order)
        n11, n22, n12 = w2 * kin11 + b2, w2 * kin22 + b2, w2 * kin12 + b2
        direct = width * kin12 + bias_ntk if standard else n12
        return n11, n22, n12, direct + w2 * e_dphi * theta

    _, _, k12, theta = jax.lax.fori_loop(0, net.depth, hidden_to_next, (k11, k22, k12, theta))
    return Kernels(k12, theta)


#: quadrature orders tried for activations without closed form (about x1.4 apart)
QUADRATURE_ORDERS = (33, 49, 65, 97, 129, 161, 193, 257, 321, 385)


def _variances(net: MLP, sq: np.ndarray, in_dim: int) -> np.ndarray:
    """Pre-activation variances K^l(x, x) of all layers for squared norms ``sq`` (1-d quadrature, top order)."""
    z, w = gaussian_rule(QUADRATURE_ORDERS[-1])
    w2 = float(net.w_std) ** 2
    b2 = float(net.b_std) ** 2 if net.b_std is not None else 0.0
    k = w2 * np.asarray(sq, float) / in_dim + b2
    out = [k]
    for _ in range(net.depth):
        k = b2 + w2 * np.sum(w * np.asarray(net.phi(jnp.asarray(np.sqrt(k)[:, None] * z))) ** 2, axis=1)
        out.append(k)
    return np.concatenate(out)


def _choose_order(net: MLP, sq: np.ndarray, in_dim: int) -> int:
    """The quadrature order for ``net``'s activation on inputs with squared norms ``sq``.

    The largest pre-activation variance s^2 over layers and inputs sets the scale (in the 2-d
    integrand, each variable's analyticity strip is at least that of phi(s z)): the order is the
    first of :data:`QUADRATURE_ORDERS` at which the 1-d expectations E[phi(u)^2], E[phi'(u)^2],
    E[phi(u)]^2 + E[z phi(u)]^2 at u = s z agree with the next order's to QUADRATURE_RTOL / 10
    relative. A heuristic, checked in the tests against adaptive 2-d quadrature (scipy) to 1e-8.
    """
    s = float(np.sqrt(np.max(_variances(net, sq, in_dim))))
    dphi = _derivative(net.phi)
    nodes = [gaussian_rule(q) for q in QUADRATURE_ORDERS]
    allz = jnp.asarray(np.concatenate([z for z, _ in nodes]) * s)
    f, df = np.asarray(net.phi(allz)), np.asarray(dphi(allz))
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(df))):
        raise ValueError(f"activation {activation_name(net.activation)!r} is not finite on Gaussian nodes up to "
                         f"|u| = {float(np.max(np.abs(allz))):.3g}")
    vals, start = [], 0
    for z, w in nodes:
        fz, dz = f[start:start + len(z)], df[start:start + len(z)]
        start += len(z)
        vals.append(np.array([w @ fz**2, w @ dz**2, (w @ fz) ** 2 + (w @ (z * fz)) ** 2]))
    for q, a, b in zip(QUADRATURE_ORDERS, vals[:-1], vals[1:]):
        if np.max(np.abs(a - b)) <= 0.1 * QUADRATURE_RTOL * max(float(np.max(np.abs(b))), 1e-300):
            return q
    warnings.warn(
        f"Gaussian quadrature for activation {activation_name(net.activation)!r} did not converge to "
        f"{QUADRATURE_RTOL:g} by order {QUADRATURE_ORDERS[-1]} (is it smooth?); using that order",
        RuntimeWarning, stacklevel=3)
    return QUADRATURE_ORDERS[-1]


def kernel_recursion(net: MLP, dot11: jax.Array, dot22: jax.Array, dot12: jax.Array, in_dim: int, *,
                     quadrature_order: int | None = None, diagonal: bool = False) -> Kernels:
    """Run the layer recursion from unnormalized input inner products dotIJ = x_I . x_J (broadcast together).

    ``dot11`` and ``dot22`` are squared norms, ``dot12`` the cross inner products; ``in_dim`` is d
    (K^1 = w_std^2 dot/d + b_std^2). ``diagonal=True`` declares that the entries are the pairs
    (x, x), so the exact diagonal expectations are used. Returns the kernels of the output
    h^{depth+1} (one output unit), shaped like the broadcast inputs. The whole recursion is jitted;
    for activations without closed form the Gauss-Hermite order is ``quadrature_order`` or, if
    None, chosen by :func:`_choose_order` (which needs concrete inputs).
    """
    _check_net(net)
    in_dim = check_positive_int("in_dim", in_dim)
    if has_closed_form(net):
        order = 0
    elif quadrature_order is not None:
        order = check_positive_int("quadrature_order", quadrature_order)
    else:
        sq = np.concatenate([np.ravel(np.asarray(dot11)), np.ravel(np.asarray(dot22))])
        order = _choose_order(net, sq, in_dim)
    shape_net, hyper = _split(net)
    return _recursion(shape_net, dot11, dot22, dot12, in_dim, order, bool(diagonal), hyper)


#: what :func:`infinite_kernels` may return
GETS = ("both", "nngp", "ntk")
#: target size (elements) of one row block of the cross kernel: b rows x n2 columns, at least MIN_BLOCK_ROWS rows.
#: At n = 4096 (NTK only, float32) XLA's temporaries are 0.45 MiB with 4-row blocks (2^14 entries), 1.6 MiB with
#: 16 (2^16) and 6.1 MiB with 64 (``memory_analysis`` of the compiled program), at the same speed within noise
#: (0.26-0.33 s; 2-row blocks are slower, 0.42 s)
BLOCK_ELEMENTS = 2 ** 14
MIN_BLOCK_ROWS = 4


def infinite_kernels(net: MLP, x1: jax.Array, x2: jax.Array | None = None, *,
                     quadrature_order: int | None = None, get: str = "both",
                     block_rows: int | None = None) -> Kernels:
    """Infinite-width NNGP K(x1, x2) and NTK Theta(x1, x2) of ``net``'s output, each (n1, n2).

    Follows ``docs/theory.md`` section 1 (neural-tangents' conventions for ``"ntk"`` and ``"standard"``).
    With ``x2=None`` the kernel of ``x1`` with itself, with an exact diagonal. ``quadrature_order``
    fixes the Gauss-Hermite order for activations without closed form (default: adaptive).
    ``get="ntk"`` (or ``"nngp"``) returns only that kernel (the other field is None): half the memory.
    Raises ``ValueError`` for a muP ``net`` (no fixed infinite-width NTK; see the module docstring).

    Memory: the recursion runs over blocks of ``block_rows`` rows (default: about 2^14 entries per block)
    inside one compiled loop that writes each block into the output in place, so the peak is the
    output plus a few block-sized temporaries (not the ~6 n1 x n2 temporaries of the whole-matrix
    recursion); the values are those of the whole-matrix recursion (same formulas, entry by entry). A call
    that compiles hands the compiler's freed working memory back to the OS before it runs
    (``workbench.host_memory``), so that its peak is not the compiler's plus the output's.

    Example (worked value of ``docs/theory.md``):
      >>> import jax.numpy as jnp
      >>> from workbench.nets import MLP
      >>> net = MLP(depth=3, width=1, activation="relu", w_std=2**0.5, b_std=0.1**0.5)
      >>> k = infinite_kernels(net, jnp.array([[1.0, 0.0], [0.6, 0.8]]))
      >>> round(float(k.ntk[0, 1]), 6)
      2.799274
    """
    _check_net(net)
    # text, booleans, empty (0, d) inputs, NaN / inf: named errors (without a float64 copy of the inputs)
    check_number_array("x1", x1, ndim=2, as_float64=False)
    check_choice("get", get, GETS)
    check_matrix_rank2("x1", x1)
    x1 = jnp.asarray(x1, dtype=jnp.result_type(x1, float))
    d = x1.shape[1]
    if quadrature_order is not None:
        check_positive_int("quadrature_order", quadrature_order)
    if x2 is not None:
        check_number_array("x2", x2, ndim=2, as_float64=False)
        check_matrix_rank2("x2", x2, features=d)
        x2 = jnp.asarray(x2, dtype=x1.dtype)
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    if block_rows is None:
        block_rows = max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // max(n2, 1))
    block_rows = min(check_positive_int("block_rows", block_rows), x1.shape[0])
    if has_closed_form(net):
        order = 0
    elif quadrature_order is not None:
        order = quadrature_order
    else:
        sq = [jnp.sum(x * x, axis=1) for x in (x1, x2) if x is not None]
        order = _choose_order(net, np.concatenate([np.asarray(v) for v in sq]), d)
    shape_net, hyper = _split(net)  # width, w_std and b_std traced: a slider on them does not recompile
    with trim_after_compiling():  # the compiler's freed memory goes back before the outputs are allocated
        out, finite = _infinite_jit(shape_net, x1, x2, order, get, block_rows, hyper)
    if is_concrete(finite) and not bool(finite):
        # finite inputs whose kernel overflows (huge norms, e.g. 1e200) would otherwise be a silent inf/NaN
        scale = float(jnp.max(jnp.abs(x1))) if x2 is None else float(max(jnp.max(jnp.abs(x1)), jnp.max(jnp.abs(x2))))
        raise ValueError(f"infinite_kernels: the kernel of inputs with entries up to {scale:.3g} overflows "
                         f"{x1.dtype} (non-finite entries); rescale x1/x2")
    return out


@partial(jax.jit, static_argnames=("net", "order", "get", "block"))
def _infinite_jit(net: MLP, x1: jax.Array, x2: jax.Array | None, order: int, get: str, block: int,
                  hyper) -> tuple[Kernels, jax.Array]:
    """Row blocks of the cross recursion written in place into the outputs; for x2=None the exact diagonal.
    Also whether every entry is finite, tested block by block inside the program (a test of the whole output
    makes an n1 x n2 boolean temporary: 16 MB at n = 4096, a quarter of a float32 kernel)."""
    n1, d = x1.shape
    xr = x1 if x2 is None else x2
    n2 = xr.shape[0]
    sq1 = jnp.sum(x1 * x1, axis=1)
    sq2 = sq1 if x2 is None else jnp.sum(xr * xr, axis=1)
    diag = _recursion(net, sq1, sq1, sq1, d, order, True, hyper) if x2 is None else None
    wanted = ("nngp", "ntk") if get == "both" else (get,)
    cols = jnp.arange(n2)

    def rows(start, size):
        xb = jax.lax.dynamic_slice_in_dim(x1, start, size)
        sqb = jax.lax.dynamic_slice_in_dim(sq1, start, size)
        k = _recursion(net, sqb[:, None], sq2[None, :], xb @ xr.T, d, order, False, hyper)
        out = [getattr(k, name) for name in wanted]
        if diag is not None:
            idx = start + jnp.arange(size)
            on_diag = idx[:, None] == cols[None, :]
            out = [jnp.where(on_diag, jax.lax.dynamic_slice_in_dim(getattr(diag, name), start, size)[:, None], o)
                   for name, o in zip(wanted, out)]
        return out

    def put(bufs, finite, start, blocks):
        # finiteness is tested on each block as it is written: a test of the whole output afterwards made XLA
        # materialize an n1 x n2 temporary in some runs (16 MB at n = 4096)
        finite = finite & jnp.all(jnp.asarray([jnp.all(jnp.isfinite(o)) for o in blocks]))
        return tuple(jax.lax.dynamic_update_slice_in_dim(buf, o, start, axis=0) for buf, o in zip(bufs, blocks)), finite

    def body(i, state):
        return put(*state, i * block, rows(i * block, block))

    state = (tuple(jnp.zeros((n1, n2), x1.dtype) for _ in wanted), jnp.asarray(True))
    full = n1 // block
    state = jax.lax.fori_loop(0, full, body, state)
    if full * block < n1:  # the last, shorter block (static shape)
        start = full * block
        state = put(*state, start, rows(start, n1 - start))
    bufs, finite = state
    got = dict(zip(wanted, bufs))
    return Kernels(got.get("nngp"), got.get("ntk")), finite


def dot_product_kernel(net: MLP, t: jax.Array, dim: int, *, which: str = "ntk",
                       quadrature_order: int | None = None) -> jax.Array:
    """``net``'s infinite-width kernel between unit vectors of R^dim with cosine ``t`` (any shape).

    On the sphere S^{dim-1} the NNGP/NTK depend only on t = x.x' (the first layer sees
    w_std^2 t/dim + b_std^2): this is the function kappa(t) whose Mercer eigenvalues
    :mod:`workbench.kernels.sphere` computes. ``which`` is ``"ntk"`` or ``"nngp"``.
    """
    _check_net(net)
    check_choice("which", which, ("ntk", "nngp"))
    dim = check_positive_int("dim", dim, minimum=2)
    t = jnp.asarray(t, dtype=jnp.result_type(t, float))
    check_finite("t", t)
    ones = jnp.ones_like(t)
    k = kernel_recursion(net, ones, ones, t, dim, quadrature_order=quadrature_order)
    return k.ntk if which == "ntk" else k.nngp
