"""Architecture studies: NTK spectra of MLPs, CNNs, residual CNNs and attention, and their channel convergence.

* :func:`build`: the five architectures of the NTK notebook's choice (``ARCHITECTURES``), as
  :func:`workbench.layers.serial` nets of a given channel count (channels play the role of width):
  ``mlp`` (flatten, ``depth`` hidden dense layers), ``cnn_gap`` (``depth`` convs 3x3, global average
  pool), ``cnn_flatten`` (the same convs, flatten readout: a *local* kernel, a sum over positions
  of patch kernels), ``resnet`` (conv, ``depth - 1`` residual blocks act-conv, global pool) and
  ``attention`` (``depth - 1`` convs 3x3, softmax self-attention over the positions, global pool);
  readout Dense(1). Defaults: depth 2, relu, w_std = sqrt(2), b_std = 0, NTK parametrization.
* :func:`digit_images`: scikit-learn's 8x8 digits as images (n, 8, 8, 1), centred and scaled;
  :func:`image_inputs`: the NTK notebook's data sets (digits, Gaussian or spherical pixels) as such images.
* :func:`spectrum_comparison`: eigenvalues of empirical NTKs of ``build(name, channels)`` (several
  seeds) beside the infinite-width NTK's (the :class:`workbench.studies.ntk.SpectrumResult` of the MLP study).
* :func:`spectra`: eigenvalues of the trace-normalized infinite-width NTK of each architecture on
  the same inputs, with the fitted power-law decay exponent over a rank window. Locality changes the
  decay (Favero, Cagnetta & Wyart 2021, "What can be learnt with wide convolutional neural
  networks?"): the eigenvalues of a local kernel (a sum of kernels on s-dimensional patches) decay
  like k^-(1 + a/s), those of a fully connected one like k^-(1 + a/d), d the input dimension; with
  patches smaller than the image the local CNN's spectrum decays faster (a steeper slope).
* :func:`channel_convergence`: ||Theta_emp - Theta|| / ||Theta|| (Frobenius) against channels,
  mean over seeds, with its log-log slope (-1/2 expected: the empirical NTK fluctuates like
  channels^-1/2 around its limit; Jacot et al. 2018, Yang 2019 "Tensor Programs I" for weight sharing).
  :func:`iter_channel_convergence` and :func:`iter_spectra` give the same results step by step (for the
  notebook panel, which draws each step as it finishes).

Conventions: neural-tangents ``stax`` (docs/theory.md); in the ``standard`` parametrization the
infinite-width NTK grows with the channels, so the reference kernel of ``c`` channels is that of
``build(name, c)`` (as neural-tangents does).
"""

from __future__ import annotations

import functools
import math

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from workbench import config
from workbench.data import digits, gaussian_inputs, sphere_points
from workbench.kernels.empirical import empirical_ntk
from workbench.layers import (
    Activation,
    Conv,
    Dense,
    Erf,
    Flatten,
    Gelu,
    GlobalAvgPool,
    Layer,
    Net,
    Relu,
    Residual,
    SelfAttention,
    Tanh,
    serial,
)
from workbench.stats import fit_loglog
from workbench.studies.ntk import SpectrumResult
from workbench.validation import check_choice, check_finite, check_positive_int, check_real, check_seeds

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "DATASETS", "LABELS", "ChannelConvergence", "Spectra", "build",
           "channel_convergence", "digit_images", "image_inputs", "iter_channel_convergence", "iter_spectra",
           "limit_net", "spectra", "spectrum_comparison"]

ARCHITECTURES = ("mlp", "cnn_gap", "cnn_flatten", "resnet", "attention")
LABELS = {"mlp": "MLP", "cnn_gap": "CNN + global pool", "cnn_flatten": "local CNN (flatten)",
          "resnet": "residual CNN", "attention": "self-attention"}
ACTIVATIONS = ("relu", "erf", "tanh", "gelu", "identity")
DATASETS = ("digits", "gaussian", "sphere")
R2 = 2**0.5


def _activation(name: str) -> Layer:
    if name == "relu":
        return Relu()
    if name == "erf":
        return Erf()
    if name == "tanh":
        return Tanh()
    if name == "gelu":
        return Gelu()
    return Activation("identity")  # a Gaussian expectation of a polynomial: the quadrature is exact


def build(name: str, channels: int = 64, *, depth: int = 2, activation: str = "relu", w_std: float = R2,
          b_std: float = 0.0, parametrization: str = "ntk") -> Net:
    """The architecture ``name`` of :data:`ARCHITECTURES` with ``channels`` channels (module docstring).

    ``depth`` counts the hidden weight layers (dense layers of the MLP; convs of the CNNs; the first conv and
    the residual blocks of the residual CNN; the convs and the attention layer of the attention net). Every conv
    and dense layer has ``w_std``, ``b_std`` and ``parametrization`` ("ntk" or "standard"); the attention layer
    has neural-tangents' defaults (unit standard deviations, linear scaling, 4 heads).

    The same arguments give the same (immutable) :class:`Net` object, so ``net.apply`` is the same function and
    jitted computations on it (the empirical NTK) compile once per setting, not once per call.
    """
    check_choice("name", name, ARCHITECTURES)
    c = check_positive_int("channels", channels)
    depth = check_positive_int("depth", depth)
    check_choice("activation", activation, ACTIVATIONS)
    w_std = check_real("w_std", w_std, positive=True)
    b_std = check_real("b_std", b_std, nonnegative=True)
    check_choice("parametrization", parametrization, ("ntk", "standard"))
    return _build(name, c, depth, activation, w_std, b_std, parametrization)


@functools.lru_cache(maxsize=256)
def _build(name: str, c: int, depth: int, activation: str, w_std: float, b_std: float, parametrization: str) -> Net:
    aff = dict(w_std=w_std, b_std=b_std, parametrization=parametrization)

    def conv() -> Conv:
        return Conv(c, (3, 3), **aff)

    def act() -> Layer:
        return _activation(activation)

    readout = Dense(1, **aff)
    if name == "mlp":
        return serial(Flatten(), *[layer for _ in range(depth) for layer in (Dense(c, **aff), act())], readout)
    if name in ("cnn_gap", "cnn_flatten"):
        head = GlobalAvgPool() if name == "cnn_gap" else Flatten()
        return serial(*[layer for _ in range(depth) for layer in (conv(), act())], head, readout)
    if name == "resnet":
        return serial(conv(), *[Residual(act(), conv()) for _ in range(depth - 1)], act(), GlobalAvgPool(), readout)
    return serial(*[layer for _ in range(depth - 1) for layer in (conv(), act())], SelfAttention(4, channels=c),
                  act(), GlobalAvgPool(), readout)


def limit_net(name: str, channels: int, **options: Any) -> Net:
    """The net whose analytic kernels are the infinite-width limit of ``build(name, channels, **options)``.

    In the NTK parametrization the limit does not depend on the channels: ``build(name, **options)`` (default
    channels), one net, so every study of the same setting reuses its compiled kernel. In the standard
    parametrization the NTK grows with the channels: ``build(name, channels, **options)``."""
    standard = options.get("parametrization", "ntk") == "standard"
    return build(name, channels, **options) if standard else build(name, **options)


def digit_images(n: int, seed: int = 0) -> jax.Array:
    """``n`` digits as (n, 8, 8, 1) images, pixels in [0, 1] minus the mean image, scaled to unit mean square."""
    x = np.asarray(digits(jax.random.PRNGKey(seed), n, 1).x_train).reshape(n, 8, 8, 1)
    return jnp.asarray(x / np.sqrt(np.mean(x * x)), jnp.result_type(float))


def image_inputs(dataset: str, n: int, seed: int = 0) -> jax.Array:
    """``n`` images (n, 8, 8, 1) with unit mean square pixel: ``"digits"`` (:func:`digit_images`), ``"gaussian"``
    (i.i.d. N(0, 1) pixels) or ``"sphere"`` (uniform on the sphere of radius 8 in R^64: every image has norm 8)."""
    check_choice("dataset", dataset, DATASETS)
    n = check_positive_int("n", n)
    if dataset == "digits":
        return digit_images(n, seed)
    key = jax.random.PRNGKey(seed)
    x = gaussian_inputs(key, n, 64) if dataset == "gaussian" else 8.0 * sphere_points(key, n, 64)
    return jnp.asarray(x, jnp.result_type(float)).reshape(n, 8, 8, 1)


def spectrum_comparison(name: str, x: jax.Array, channels: int, *, seeds: Sequence[int] | int = 2,
                        **options: Any) -> SpectrumResult:
    """Eigenvalues (descending) of the empirical NTK of ``build(name, channels, **options)`` for each seed
    (``PRNGKey(seed)``, one readout unit, :func:`~workbench.kernels.empirical.empirical_ntk`) and of its
    infinite-width NTK, on the images ``x``."""
    check_finite("x", x)
    net = build(name, channels, **options)
    seeds = check_seeds(seeds).tolist()
    inf = np.sort(np.linalg.eigvalsh(np.asarray(limit_net(name, channels, **options).kernels(x).ntk, float)))[::-1]
    emp = []
    for s in seeds:
        params = net.init(jax.random.PRNGKey(s), x.shape)
        k = np.asarray(empirical_ntk(net.apply, params, x), dtype=float)
        emp.append(np.sort(np.linalg.eigvalsh(0.5 * (k + k.T)))[::-1])
    return SpectrumResult(np.stack(emp), inf, channels, tuple(seeds),
                          f"{LABELS[name]}, {channels} channels, n={x.shape[0]}, {x.dtype}; {config.device_report()}")


class Spectra(NamedTuple):
    """Eigenvalues (descending, divided by the trace) per architecture, and the fitted decay exponents
    (slope of log eigenvalue against log rank over ``fit_ranks``, inclusive, 1-based)."""

    names: tuple[str, ...]
    eigenvalues: np.ndarray  # (len(names), n)
    decay: np.ndarray  # (len(names),)
    fit_ranks: tuple[int, int]
    info: str


def spectra(x: jax.Array, names: Sequence[str] = ARCHITECTURES, *, fit_ranks: tuple[int, int] | None = None,
            progress: bool = True, **options: Any) -> Spectra:
    """Normalized NTK eigenvalues of each architecture in ``names`` on the images ``x`` (module docstring);
    ``options`` go to :func:`build` (depth, activation, w_std, b_std, parametrization)."""
    result = None
    for result in iter_spectra(x, names, fit_ranks=fit_ranks, progress=progress, **options):
        pass
    return result


def iter_spectra(x: jax.Array, names: Sequence[str] = ARCHITECTURES, *, fit_ranks: tuple[int, int] | None = None,
                 progress: bool = False, **options: Any) -> Iterator[Spectra]:
    """:func:`spectra` one architecture at a time: after each, the :class:`Spectra` of the names done so far."""
    check_finite("x", x)
    names = tuple(check_choice("name", nm, ARCHITECTURES) for nm in names)
    if not names:
        raise ValueError("names must hold at least one architecture")
    n = int(x.shape[0])
    lo, hi = fit_ranks if fit_ranks is not None else (2, max(3, n // 2))
    if not 1 <= lo < hi <= n:
        raise ValueError(f"fit_ranks must satisfy 1 <= lo < hi <= n = {n}, got {(lo, hi)}")
    eig = np.zeros((len(names), n))
    decay = np.zeros(len(names))
    ranks = np.arange(1, n + 1)
    info = f"n={n}, {x.dtype}; {config.device_report()}"
    for i, nm in enumerate(tqdm(names, desc="NTK spectra", disable=not progress)):
        k = np.asarray(build(nm, **options).kernels(x).ntk, dtype=float)
        ev = np.sort(np.linalg.eigvalsh(0.5 * (k + k.T)))[::-1]
        eig[i] = ev / np.sum(ev)
        sel = slice(lo - 1, hi)
        decay[i] = fit_loglog(ranks[sel], np.maximum(eig[i, sel], 1e-300)).exponent
        yield Spectra(names[:i + 1], eig[:i + 1].copy(), decay[:i + 1].copy(), (lo, hi), info)


class ChannelConvergence(NamedTuple):
    """Relative Frobenius distances (len(channels), len(seeds)) and the log-log slope of their mean."""

    name: str
    channels: np.ndarray
    distance: np.ndarray
    slope: float
    intercept: float
    info: str


def channel_convergence(name: str, x: jax.Array, channels: Sequence[int], *, seeds: Sequence[int] | int = 3,
                        progress: bool = True, **options: Any) -> ChannelConvergence:
    """||Theta_emp - Theta||_F / ||Theta||_F of ``build(name, c, **options)`` for each c in ``channels``
    (module docstring).

    The empirical NTK (one readout unit) is :func:`workbench.kernels.empirical.empirical_ntk` with its
    general ``"jacobian"`` method on ``net.apply``; seed s initializes with ``PRNGKey(s)``.
    """
    result = None
    for result in iter_channel_convergence(name, x, channels, seeds=seeds, progress=progress, **options):
        pass
    return result


def iter_channel_convergence(name: str, x: jax.Array, channels: Sequence[int], *, seeds: Sequence[int] | int = 3,
                             progress: bool = False, every_seed: bool = False,
                             **options: Any) -> Iterator[ChannelConvergence]:
    """:func:`channel_convergence` one channel count at a time: after each, the result over the counts done so
    far (slope and intercept NaN until two are done); the last one is :func:`channel_convergence`'s.
    ``every_seed``: also after each seed of a count (its row NaN for the seeds not done yet; the fit over the
    finished counts only), so that a wide count's seeds appear one by one."""
    check_choice("name", name, ARCHITECTURES)
    check_finite("x", x)
    channels = np.asarray([check_positive_int("channels", int(c)) for c in channels])
    if channels.size < 2:
        raise ValueError(f"channels must hold at least two values to fit a slope, got {channels.tolist()}")
    seeds = check_seeds(seeds).tolist()
    standard = options.get("parametrization", "ntk") == "standard"
    ref = None if standard else np.asarray(limit_net(name, 64, **options).kernels(x).ntk, dtype=float)
    dist = np.zeros((len(channels), len(seeds)))
    info = f"{LABELS[name]}, n={x.shape[0]}, {len(seeds)} seeds, {x.dtype}; {config.device_report()}"
    bar = tqdm(total=dist.size, desc=f"{name} channel convergence", disable=not progress)
    slope = intercept = float("nan")
    try:
        for i, c in enumerate(channels):
            net = build(name, int(c), **options)
            k_inf = np.asarray(limit_net(name, int(c), **options).kernels(x).ntk, dtype=float) if standard else ref
            norm = np.linalg.norm(k_inf)
            for j, s in enumerate(seeds):
                params = net.init(jax.random.PRNGKey(s), x.shape)
                emp = np.asarray(empirical_ntk(net.apply, params, x, method="jacobian"), dtype=float)
                dist[i, j] = np.linalg.norm(emp - k_inf) / norm
                bar.update()
                if every_seed and j < len(seeds) - 1:
                    part = dist[: i + 1].copy()
                    part[i, j + 1:] = np.nan
                    yield ChannelConvergence(name, channels[: i + 1].copy(), part, slope, intercept, info)
            done = slice(0, i + 1)
            if i >= 1:
                fit = fit_loglog(channels[done], dist[done].mean(axis=1))
                slope, intercept = fit.exponent, math.log(fit.prefactor)
            yield ChannelConvergence(name, channels[done].copy(), dist[done].copy(), slope, intercept, info)
    finally:
        bar.close()
