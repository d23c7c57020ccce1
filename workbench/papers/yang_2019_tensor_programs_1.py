"""Yang 2019 (Tensor Programs I): networks with weight sharing (convolutions, attention) are Gaussian processes
at infinite width, with the NNGP and NTK computed by the same layer rules as for MLPs.

Two architectures of :mod:`workbench.layers`, NTK parametrization, inputs (n, L, C_in):

* ``conv``: ``serial(Conv(C, 3, w_std=sqrt 2, b_std=0.1), Relu(), Conv(C, 3, ...), Relu(), GlobalAvgPool(), Dense(1))``;
* ``attention``: ``serial(Dense(C, w_std=sqrt 2, b_std=0.1), Relu(), SelfAttention(1, channels=C), Relu(),
  GlobalAvgPool(), Dense(1))`` (linear logit scaling, Hron et al. 2020, the limit with a closed form).

For each channel count C, ``draws`` initializations are drawn by one jitted program (``lax.map`` over chunks of a
``vmap`` over keys). Per draw, with g(x) the C readout features, the readout Dense(1) (w_std = 1, no bias) makes
the output conditionally Gaussian with covariance

    K_C(x, x') = g(x) . g(x') / C      (the "empirical NNGP" of that draw, Yang 2019 Fig. 2),

and the output over all initializations has covariance E[K_C]. Measured, against the analytic NNGP K (``Net.kernels``):

* kernel fluctuation: ||K_C - K||_F / ||K||_F per draw, averaged over draws; its log-log slope against C is
  predicted -1/2 (the features are C exchangeable coordinates: a law of large numbers with CLT fluctuations,
  Yang 2019 Thm. 5.4 and Fig. 2);
* output covariance over the draws: mean_draws K_C (the output covariance with the readout's Gaussian average done
  exactly: the same expectation as the sample covariance of the outputs, with a far smaller Monte-Carlo error),
  relative Frobenius error against K: at most 5% at the largest C. Its bias is O(1/C) (finite-width
  corrections, Yaida 2020) and its Monte-Carlo standard error is reported;
* the raw sample covariance of the outputs f over the draws, beside its Monte-Carlo floor: for D Gaussian draws
  with covariance K, E||S - K||_F^2 = ((tr K)^2 + ||K||_F^2) / D, i.e. a relative error of about sqrt(2 / D) for a
  nearly constant kernel (reported: at D = 2,000 the floor is ~3%, so this estimator alone cannot resolve an
  O(C^-1/2) slope, which is why the slope is measured on the per-draw kernels);
* normality: the standardized outputs f(x_0) / sqrt(K(x_0, x_0)) at the largest C against the predicted N(0, 1)
  (fully specified, no fitted parameters) by the Kolmogorov-Smirnov test: the statistic must stay below the
  exact 1% critical value of the KS distribution for D draws (``scipy.stats.kstwo``);
* NTK: the empirical NTK J J^T (J the Jacobian of the outputs in all parameters; computed in the same jitted
  program, and checked against :func:`workbench.kernels.empirical.empirical_ntk` in the tests) of ``ntk_draws``
  draws against the analytic NTK, relative Frobenius error, log-log slope against C predicted -1/2 (Yang 2020,
  Tensor Programs II).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from workbench.layers import Conv, Dense, GlobalAvgPool, Relu, SelfAttention, serial
from workbench.layers.net import Net
from workbench.papers._common import verification
from workbench.papers.base import SIGMAS, Check, Reproduction, slope_check, slope_with_stderr
from workbench.validation import check_positive_int

REFERENCE = ("Yang 2019, Wide Feedforward or Recurrent Neural Networks of Any Architecture are Gaussian Processes "
             "(Tensor Programs I), NeurIPS; Yang 2020, Tensor Programs II: Neural Tangent Kernel for Any "
             "Architecture; Novak et al. 2019 (convolutions), Hron et al. 2020 (attention)")
CLAIM = ("Randomly initialized networks with weight sharing (convolutions, self-attention) converge to Gaussian "
         "processes with the NNGP kernel of their architecture, the per-network kernel fluctuating like "
         "channels^-1/2, and their empirical NTK converges to the analytic NTK.")
ARCHITECTURES = ("conv", "attention")
#: the issue's bound on the relative error of the output covariance at the largest channel count
COVARIANCE_BOUND = 0.05
#: significance level of the Kolmogorov-Smirnov normality test
KS_LEVEL = 0.01
#: bytes of parameters one lax.map chunk of the vmapped draws may hold
_CHUNK_BYTES = 2 ** 26


def architecture(name: str, channels: int) -> Net:
    """The ``conv`` or ``attention`` network of the module docstring with ``channels`` hidden channels."""
    check_positive_int("channels", channels)
    if name == "conv":
        return serial(Conv(channels, (3,), w_std=math.sqrt(2), b_std=0.1), Relu(),
                      Conv(channels, (3,), w_std=math.sqrt(2), b_std=0.1), Relu(), GlobalAvgPool(),
                      Dense(1, w_std=1.0, b_std=None))
    if name == "attention":
        return serial(Dense(channels, w_std=math.sqrt(2), b_std=0.1), Relu(), SelfAttention(1, channels=channels),
                      Relu(), GlobalAvgPool(), Dense(1, w_std=1.0, b_std=None))
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {name!r}")


@functools.lru_cache(maxsize=16)
def draws_fn(name: str, channels: int, input_shape: tuple[int, ...], chunk: int, ntk_chunk: int):
    """jit: (keys (D, 2), ntk_keys (m, 2), x) -> (outputs f (D, n), empirical NNGPs K_C (D, n, n), empirical NTKs
    (m, n, n)). One compiled program per channel count; draws in chunks (``lax.map`` of a ``vmap``)."""
    net = architecture(name, channels)
    body = Net(net.layers[:-1])
    readout = net.layers[-1]

    def one(key, x):
        params = net.init(key, input_shape)
        g = body.apply(params[:-1], x)
        f = readout.apply(params[-1], g)[:, 0]
        return f, g @ g.T / g.shape[-1]

    def ntk(key, x):  # Theta = J J^T, J the Jacobian of the n outputs in every parameter (Jacot et al. 2018)
        params = net.init(key, input_shape)
        jac = jax.jacrev(lambda p: net.apply(p, x)[:, 0])(params)
        return sum(j.reshape(j.shape[0], -1) @ j.reshape(j.shape[0], -1).T for j in jax.tree_util.tree_leaves(jac))

    def run(keys, ntk_keys, x):
        f, k = jax.lax.map(lambda key: one(key, x), keys, batch_size=chunk)
        return f, k, jax.lax.map(lambda key: ntk(key, x), ntk_keys, batch_size=ntk_chunk)

    return jax.jit(run)


def _divisor_at_most(total: int, limit: int) -> int:
    """The largest divisor of ``total`` that is <= max(limit, 1): ``lax.map`` then needs no remainder batch (a
    second compiled body)."""
    limit = max(1, min(total, int(limit)))
    return next(b for b in range(limit, 0, -1) if total % b == 0) if total else 1


def sample(name: str, channels: int, x: jax.Array, keys: jax.Array, ntk_keys: jax.Array
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(outputs (D, n), per-draw empirical NNGPs (D, n, n), empirical NTKs (m, n, n)) of the draws of ``keys``
    (D of them) and ``ntk_keys`` (m)."""
    per_draw = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(
        jax.eval_shape(lambda k: architecture(name, channels).init(k, tuple(x.shape)), keys[0])))
    chunk = _divisor_at_most(len(keys), _CHUNK_BYTES // (8 * per_draw))
    ntk_chunk = _divisor_at_most(len(ntk_keys), _CHUNK_BYTES // (8 * per_draw * (x.shape[0] + 2)))
    f, k, t = draws_fn(name, channels, tuple(x.shape), chunk, ntk_chunk)(keys, ntk_keys, x)
    return np.asarray(f), np.asarray(k), np.asarray(t)


def relative_error(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """||a - ref||_F / ||ref||_F over the last two axes."""
    return np.linalg.norm(a - ref, axis=(-2, -1)) / np.linalg.norm(ref)


def mc_floor(kernel: np.ndarray, draws: int) -> float:
    """Expected relative Frobenius error of the sample covariance of ``draws`` N(0, kernel) vectors (known mean 0):
    sqrt(((tr K)^2 + ||K||_F^2) / draws) / ||K||_F (E (S_ij - K_ij)^2 = (K_ii K_jj + K_ij^2) / D)."""
    k = np.asarray(kernel, float)
    return float(math.sqrt((np.trace(k) ** 2 + np.sum(k ** 2)) / draws) / np.linalg.norm(k))


def ks_critical(draws: int, level: float = KS_LEVEL) -> float:
    """The exact (1 - level) quantile of the one-sample Kolmogorov-Smirnov statistic for ``draws`` samples."""
    return float(scipy.stats.kstwo.ppf(1 - level, draws))


def run(*, fast: bool, key: int) -> Reproduction:
    channels = [16, 64, 256] if fast else [64, 256, 1024]
    draws = 200 if fast else 2000
    ntk_draws = 32 if fast else 64
    n, length, c_in = 6, 8, 4
    with verification() as (device, precision):
        kx, kd = jax.random.split(jax.random.PRNGKey(key + 7))
        x = jax.random.normal(kx, (n, length, c_in))
        res = {}
        for name in ARCHITECTURES:
            kern = architecture(name, channels[0]).kernels(x)
            nngp, ntk = np.asarray(kern.nngp), np.asarray(kern.ntk)
            per = {"nngp": nngp, "ntk": ntk, "fluct": [], "cov_err": [], "cov_se": [], "raw_err": [], "floor": [],
                   "ks": [], "ntk_err": []}
            for i, c in enumerate(channels):
                keys = jax.random.split(jax.random.fold_in(kd, 1000 * ARCHITECTURES.index(name) + i), draws)
                nkeys = jax.random.split(jax.random.fold_in(kd, 1000 * ARCHITECTURES.index(name) + i + 500), ntk_draws)
                f, kc, tc = sample(name, c, x, keys, nkeys)
                per["fluct"].append(relative_error(kc, nngp))
                mean_k = kc.mean(axis=0)
                per["cov_err"].append(float(relative_error(mean_k, nngp)))
                per["cov_se"].append(float(np.sqrt(np.sum(kc.var(axis=0, ddof=1)) / draws) / np.linalg.norm(nngp)))
                per["raw_err"].append(float(relative_error(f.T @ f / draws, nngp)))
                per["floor"].append(mc_floor(nngp, draws))
                z = f[:, 0] / math.sqrt(nngp[0, 0])
                per["ks"].append(float(scipy.stats.kstest(z, "norm").statistic))
                if i == len(channels) - 1:
                    per["z"] = z
                per["ntk_err"].append(relative_error(tc, ntk))
            res[name] = per
    crit = ks_critical(draws)
    checks = []
    cmax = channels[-1]
    for name in ARCHITECTURES:
        r = res[name]
        sl, se = slope_with_stderr(channels, np.stack(r["fluct"]))
        checks.append(slope_check(f"{name}: per-draw NNGP error slope", sl, se, -0.5,
                                  f"C = {channels[0]}-{cmax}, {draws} draws each"))
        cov_tol_reason = (f"the issue's bound {COVARIANCE_BOUND:.0%} at the largest C; the estimate's Monte-Carlo se "
                          f"({r['cov_se'][-1]:.2g}, from the draws' scatter) must be resolved: {SIGMAS:g} se <= "
                          "the bound")
        checks.append(Check(f"{name}: output covariance rel. error at C={cmax}", r["cov_err"][-1], COVARIANCE_BOUND,
                            0.0,
                            cov_tol_reason, kind="at_most", stderr=r["cov_se"][-1], resolution=COVARIANCE_BOUND))
        checks.append(Check(f"{name}: KS statistic of f(x0)/sqrt(K) vs N(0,1) at C={cmax}", r["ks"][-1], crit, 0.0,
                            f"the exact {1 - KS_LEVEL:.0%} quantile of the one-sample KS statistic for {draws} draws "
                            f"(a Gaussian output exceeds it with probability {KS_LEVEL:g})", kind="at_most"))
        sl, se = slope_with_stderr(channels, np.stack(r["ntk_err"]))
        checks.append(slope_check(f"{name}: empirical NTK error slope", sl, se, -0.5,
                                  f"C = {channels[0]}-{cmax}, {ntk_draws} draws each"))
        checks.append(Check(f"{name}: raw output sample covariance rel. error at C={cmax}", r["raw_err"][-1],
                            r["floor"][-1], r["floor"][-1],
                            f"reported: the Monte-Carlo floor sqrt(((tr K)^2 + ||K||^2)/D)/||K|| of {draws} Gaussian "
                            "draws (predicted value) with a band of the same size (the error's own spread)",
                            in_verdict=False))
    notes = []
    for c in checks:
        if c.in_verdict and not c.resolved:
            notes.append(f"'{c.name}' is not resolved by the draws used: its verdict is 'unresolved', not a pass.")
    notes.append(f"The raw sample covariance of the outputs has a Monte-Carlo floor of about "
                 f"{res['conv']['floor'][-1]:.1%} at {draws} draws, comparable with the finite-width fluctuations "
                 f"at C = {cmax}; the convergence rate is therefore measured on each draw's own kernel g.g'/C "
                 "(the output covariance given the hidden layers), which has no such floor.")
    setting = (f"{n} Gaussian inputs of {length} positions x {c_in} channels; a 2-layer relu 1-d CNN with global "
               f"average pooling and a Dense-relu-attention-relu network with global pooling, NTK parametrization, "
               f"C = {', '.join(map(str, channels))} channels, {draws} initializations each ({ntk_draws} for the "
               "empirical NTK). Yang 2019 states the limit for any architecture and shows the C^-1/2 convergence of "
               "the kernel for RNNs, GRUs, transformers and batchnorm at widths up to ~2^13.")
    data = {"channels": np.array(channels), "draws": draws, "ks_critical": crit,
            **{name: {k: (np.stack(v) if k in ("fluct", "ntk_err") else np.asarray(v)) for k, v in res[name].items()}
               for name in ARCHITECTURES}}
    return Reproduction("yang_2019_tensor_programs_1", REFERENCE, CLAIM, setting, checks, data, device, precision,
                        fast, key, {"channels": channels, "draws": draws, "ntk_draws": ntk_draws,
                                    "inputs": [n, length, c_in]}, notes)
