"""Roberts, Yaida & Hanin: finite-width effects scale with depth over width, and tanh is critical at K* = 0.

(a) NTK fluctuations: the relative variance Var[Theta(x, x)] / E[Theta(x, x)]^2 of the empirical NTK across
initializations of critical relu MLPs (NTK parametrization, sigma_w^2 = 2, no biases) for widths n and depths L
collapses onto one power of L/n (the book's ch. 8-9: the NTK's variance is O(L/n) at leading order); fitted
log-log slope against L/n (predicted 1) with its standard error and the fit's R^2.
(b) Output kurtosis: E z^4 / (3 (E z^2)^2) - 1 against (L - 1)/n collapses onto the line predicted by the exact
(1 + 5/n)^(L-1) - 1 (ch. 5): least-squares coefficients of the measured and the exact values onto (L - 1)/n.
(c) Criticality: the single-input kernel K^l of tanh at sigma_w = 1, sigma_b = 0 (the K* = 0 class) decays like
1/l (log-log slope -1; the book's K^l ~ 1/(2 l)), while relu at sigma_w^2 = 2 keeps K^l constant (slope 0).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from workbench.nets import MLP
from workbench.papers._common import verification
from workbench.papers.base import SIGMAS, Check, Reproduction, slope_check
from workbench.symbolic.finite_width import _simulate

REFERENCE = "Roberts, Yaida & Hanin 2022, The Principles of Deep Learning Theory, Cambridge University Press, ch. 5, 8-9"
CLAIM = ("Finite-width corrections to a deep network at criticality (NTK fluctuations, output non-Gaussianity) "
         "are controlled by the ratio depth/width, and tanh's critical point is K* = 0 while relu's kernel stays "
         "fixed.")


@functools.lru_cache(maxsize=64)
def _ntk_diag_fn(net: MLP, in_dim: int):
    def one(key, x):
        params = net.init(key, in_dim)
        g = jax.grad(lambda p: net.apply(p, x[None, :])[0, 0])(params)
        return sum(jnp.sum(v ** 2) for v in jax.tree_util.tree_leaves(g))

    return jax.jit(lambda keys, x: jax.lax.map(lambda k: one(k, x), keys))


def _fit_line(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float, float]:
    """Slope, its standard error and R^2 of the least-squares line y = a + b x."""
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    se = float(np.sqrt(resid @ resid / max(len(x) - 2, 1) / np.sum((x - x.mean()) ** 2)))
    r2 = 1 - float(resid @ resid) / float(np.sum((y - y.mean()) ** 2))
    return float(b), se, r2


def _kernel_depth(activation: str, w_var: float, depth: int, k1: float = 1.0) -> np.ndarray:
    """K^l for l = 1..depth of a single input: K^{l+1} = w_var E[phi(z)^2], z ~ N(0, K^l) (Gauss-Hermite, 120 nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    weights = weights / weights.sum()
    phi = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0.0))
    ks = [k1]
    for _ in range(depth - 1):
        ks.append(w_var * float(weights @ phi(np.sqrt(ks[-1]) * nodes) ** 2))
    return np.asarray(ks)


def run(*, fast: bool, key: int) -> Reproduction:
    with verification() as (device, precision):
        widths = [64, 128, 256] if fast else [64, 128, 256, 512]
        depths = [1, 2, 4] if fast else [1, 2, 4, 8]
        draws = 150 if fast else 600
        d = 8
        x = jnp.ones((d,)) / np.sqrt(d)
        rel, rel_se, ratio = [], [], []
        for n in widths:
            for depth in depths:
                net = MLP(depth=depth, width=n, activation="relu", w_std=2 ** 0.5, b_std=None)
                ks = jax.random.split(jax.random.PRNGKey(key * 7919 + n * 31 + depth), draws)
                th = np.asarray(_ntk_diag_fn(net, d)(ks, x))
                m, v = th.mean(), th.var(ddof=1)
                rel.append(v / m ** 2)
                # delta method on (mean, second moment): se of the relative variance from the sample fourth moment
                c = th - m
                se_v = np.sqrt(max(np.mean(c ** 4) - v ** 2, 0.0) / draws)
                rel_se.append(np.sqrt((se_v / m ** 2) ** 2 + (2 * v / m ** 3) ** 2 * v / draws))
                ratio.append(depth / n)
        rel, rel_se, ratio = map(np.asarray, (rel, rel_se, ratio))
        # (b) kurtosis of the preactivation at layer L (C_W = 2, relu), widths and depths as the book
        kw = [16, 32, 64]
        kd = 5 if fast else 8
        samples = 4000 if fast else 20000
        kurt, kurt_se, kratio, kexact = [], [], [], []
        for n in kw:
            m2, m4 = _simulate(n, kd, samples, key + n)
            for layer in range(2, kd + 1):
                a, b = m4[layer - 1], m2[layer - 1]
                r = a.mean() / (3 * b.mean() ** 2)
                grad = np.array([1 / (3 * b.mean() ** 2), -2 * a.mean() / (3 * b.mean() ** 3)])
                se = float(np.sqrt(max(grad @ np.cov(np.stack([a, b])) @ grad, 0.0) / samples))
                kurt.append(r - 1)
                kurt_se.append(se)
                kratio.append((layer - 1) / n)
                kexact.append((1 + 5 / n) ** (layer - 1) - 1)
        kurt, kurt_se, kratio, kexact = map(np.asarray, (kurt, kurt_se, kratio, kexact))
    # (a) collapse: slope of log rel var against log(L/n)
    sl, se_fit, r2 = _fit_line(np.log(ratio), np.log(rel))
    lw = rel_se / rel
    wts = (np.log(ratio) - np.log(ratio).mean()) / np.sum((np.log(ratio) - np.log(ratio).mean()) ** 2)
    se_seed = float(np.sqrt(np.sum(wts ** 2 * lw ** 2)))
    se = max(se_fit, se_seed)
    checks = [slope_check("ntk_relvar_slope_in_L_over_n", sl, se, 1.0,
                          f"{len(rel)} (n, L) pairs, {draws} networks each (se: the larger of the draw-noise se "
                          f"{se_seed:.2g} and the fit-residual se {se_fit:.2g}, so scatter off the collapse widens it)"),
              Check("ntk_collapse_r2", r2, 0.9, 0.0,
                    "R^2 of the one-line fit in log(L/n): a collapse must explain at least 90% of the log-variance "
                    "spread (a fixed quality bar, stated, not derived)", kind="at_least")]
    # (b) kurtosis coefficient onto (L - 1)/n, measured vs exact, weighted by the Monte Carlo errors
    wk = 1 / kurt_se ** 2
    coef = float(np.sum(wk * kratio * kurt) / np.sum(wk * kratio ** 2))
    coef_exact = float(np.sum(wk * kratio * kexact) / np.sum(wk * kratio ** 2))
    coef_se = float(1 / np.sqrt(np.sum(wk * kratio ** 2)))
    checks.append(Check("kurtosis_coefficient_in_(L-1)/n", coef, coef_exact, SIGMAS * coef_se,
                        f"{SIGMAS:g} standard errors of the weighted least-squares coefficient ({samples} networks per "
                        f"width; the prediction is the same fit to the exact (1 + 5/n)^(L-1) - 1, so its O((L/n)^2) "
                        f"curvature cancels)", stderr=coef_se))
    # (c) criticality from the kernel recursion (quadrature error ~ 1e-12, far below the band)
    ls = np.arange(1, 513)
    k_tanh = _kernel_depth("tanh", 1.0, len(ls))
    k_relu = _kernel_depth("relu", 2.0, len(ls))
    fit = (ls >= 64)
    s_tanh = float(np.polyfit(np.log(ls[fit]), np.log(k_tanh[fit]), 1)[0])
    s_relu = float(np.polyfit(np.log(ls[fit]), np.log(k_relu[fit]), 1)[0])
    checks.append(Check("tanh_kernel_decay_slope", s_tanh, -1.0, 0.05,
                        "the book's K^l = 1/(2 l) + O(log l / l^2): over l = 64-512 the subleading term moves the "
                        "fitted slope by about log(l)/l < 0.05 (quadrature error ~1e-12)"))
    checks.append(Check("relu_kernel_slope", s_relu, 0.0, 1e-9,
                        "relu at sigma_w^2 = 2 maps K to K exactly; 1e-9 covers quadrature round-off"))
    checks.append(Check("tanh_l_times_K_at_l=512", float(ls[-1] * k_tanh[-1]), 0.5, 0.05,
                        "the book's asymptote l K^l -> 1/2, with the O(log l / l) correction at l = 512 about 0.03",
                        in_verdict=False))
    setting = (f"Relu MLPs without biases at sigma_w^2 = 2, widths {widths}, depths {depths}, {draws} networks per "
               f"pair, one input in {d} dimensions (NTK diagonal Theta(x, x)); kurtosis at widths {kw}, depths 2-{kd}, "
               f"{samples} networks; criticality from the kernel recursion to depth 512. The book's statements are "
               f"leading orders in L/n; at L/n up to {max(depths) / min(widths):.2g} higher orders are small but present.")
    data = {"ntk_collapse": {"ratio": ratio, "relvar": rel, "relvar_se": rel_se,
                             "widths": np.repeat(widths, len(depths)), "depths": np.tile(depths, len(widths))},
            "kurtosis_collapse": {"ratio": kratio, "excess": kurt, "excess_se": kurt_se, "exact": kexact},
            "criticality": {"depth": ls, "tanh": k_tanh, "relu": k_relu}}
    return Reproduction("roberts_yaida_finite_width", REFERENCE, CLAIM, setting, checks, data, device, precision,
                        fast, key, {"widths": widths, "depths": depths, "draws": draws, "kurtosis_widths": kw,
                                    "kurtosis_samples": samples})
