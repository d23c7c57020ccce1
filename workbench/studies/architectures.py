"""Architecture studies: NTK spectra of MLPs, CNNs, residual CNNs and attention, and their channel convergence.

* :func:`build`: the five architectures of the NTK notebook's choice (``ARCHITECTURES``), as
  :func:`workbench.layers.serial` nets of a given channel count (channels play the role of width):
  ``mlp`` (flatten, 2 hidden dense relu layers), ``cnn_gap`` (2 convs 3x3 relu, global average
  pool), ``cnn_flatten`` (the same convs, flatten readout: a *local* kernel, a sum over positions
  of patch kernels), ``resnet`` (conv, residual block relu-conv, global pool) and ``attention``
  (conv 3x3, softmax self-attention over the positions, global pool); all relu, w_std = sqrt(2),
  NTK parametrization, readout Dense(1).
* :func:`digit_images`: scikit-learn's 8x8 digits as images (n, 8, 8, 1), centred and scaled.
* :func:`spectra`: eigenvalues of the trace-normalized infinite-width NTK of each architecture on
  the same inputs, with the fitted power-law decay exponent over a rank window. Locality changes the
  decay (Favero, Cagnetta & Wyart 2021, "What can be learnt with wide convolutional neural
  networks?"): the eigenvalues of a local kernel (a sum of kernels on s-dimensional patches) decay
  like k^-(1 + a/s), those of a fully connected one like k^-(1 + a/d), d the input dimension; with
  patches smaller than the image the local CNN's spectrum decays faster (a steeper slope).
* :func:`channel_convergence`: ||Theta_emp - Theta|| / ||Theta|| (Frobenius) against channels,
  mean over seeds, with its log-log slope (-1/2 expected: the empirical NTK fluctuates like
  channels^-1/2 around its limit; Jacot et al. 2018, Yang 2019 "Tensor Programs I" for weight sharing).
"""

from __future__ import annotations

import math

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from workbench import config
from workbench.data import digits
from workbench.kernels.empirical import empirical_ntk
from workbench.layers import (
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    Net,
    Relu,
    Residual,
    SelfAttention,
    serial,
)
from workbench.stats import fit_loglog
from workbench.validation import check_choice, check_finite, check_positive_int

ARCHITECTURES = ("mlp", "cnn_gap", "cnn_flatten", "resnet", "attention")
LABELS = {"mlp": "MLP", "cnn_gap": "CNN + global pool", "cnn_flatten": "local CNN (flatten)",
          "resnet": "residual CNN", "attention": "self-attention"}
R2 = 2**0.5


def build(name: str, channels: int = 64) -> Net:
    """The architecture ``name`` of :data:`ARCHITECTURES` with ``channels`` channels (module docstring)."""
    check_choice("name", name, ARCHITECTURES)
    c = check_positive_int("channels", channels)
    if name == "mlp":
        return serial(Flatten(), Dense(c, R2), Relu(), Dense(c, R2), Relu(), Dense(1, R2))
    if name == "cnn_gap":
        return serial(Conv(c, (3, 3), w_std=R2), Relu(), Conv(c, (3, 3), w_std=R2), Relu(), GlobalAvgPool(),
                      Dense(1, R2))
    if name == "cnn_flatten":
        return serial(Conv(c, (3, 3), w_std=R2), Relu(), Conv(c, (3, 3), w_std=R2), Relu(), Flatten(), Dense(1, R2))
    if name == "resnet":
        return serial(Conv(c, (3, 3), w_std=R2), Residual(Relu(), Conv(c, (3, 3), w_std=R2)), Relu(), GlobalAvgPool(),
                      Dense(1, R2))
    return serial(Conv(c, (3, 3), w_std=R2), Relu(), SelfAttention(4, channels=c), Relu(), GlobalAvgPool(),
                  Dense(1, R2))


def digit_images(n: int, seed: int = 0) -> jax.Array:
    """``n`` digits as (n, 8, 8, 1) images, pixels in [0, 1] minus the mean image, scaled to unit mean square."""
    x = np.asarray(digits(jax.random.PRNGKey(seed), n, 1).x_train).reshape(n, 8, 8, 1)
    return jnp.asarray(x / np.sqrt(np.mean(x * x)), jnp.result_type(float))


class Spectra(NamedTuple):
    """Eigenvalues (descending, divided by the trace) per architecture, and the fitted decay exponents
    (slope of log eigenvalue against log rank over ``fit_ranks``, inclusive, 1-based)."""

    names: tuple[str, ...]
    eigenvalues: np.ndarray  # (len(names), n)
    decay: np.ndarray  # (len(names),)
    fit_ranks: tuple[int, int]
    info: str


def spectra(x: jax.Array, names: Sequence[str] = ARCHITECTURES, *, fit_ranks: tuple[int, int] | None = None,
            progress: bool = True) -> Spectra:
    """Normalized NTK eigenvalues of each architecture in ``names`` on the images ``x`` (module docstring)."""
    check_finite("x", x)
    names = tuple(check_choice("name", nm, ARCHITECTURES) for nm in names)
    n = int(x.shape[0])
    lo, hi = fit_ranks if fit_ranks is not None else (2, max(3, n // 2))
    if not 1 <= lo < hi <= n:
        raise ValueError(f"fit_ranks must satisfy 1 <= lo < hi <= n = {n}, got {(lo, hi)}")
    eig = np.zeros((len(names), n))
    decay = np.zeros(len(names))
    ranks = np.arange(1, n + 1)
    for i, nm in enumerate(tqdm(names, desc="NTK spectra", disable=not progress)):
        k = np.asarray(build(nm).kernels(x).ntk, dtype=float)
        ev = np.sort(np.linalg.eigvalsh(0.5 * (k + k.T)))[::-1]
        eig[i] = ev / np.sum(ev)
        sel = slice(lo - 1, hi)
        decay[i] = fit_loglog(ranks[sel], np.maximum(eig[i, sel], 1e-300)).exponent
    return Spectra(names, eig, decay, (lo, hi), f"n={n}, {x.dtype}; {config.device_report()}")


class ChannelConvergence(NamedTuple):
    """Relative Frobenius distances (len(channels), len(seeds)) and the log-log slope of their mean."""

    name: str
    channels: np.ndarray
    distance: np.ndarray
    slope: float
    intercept: float
    info: str


def channel_convergence(name: str, x: jax.Array, channels: Sequence[int], *, seeds: Sequence[int] | int = 3,
                        progress: bool = True) -> ChannelConvergence:
    """||Theta_emp - Theta||_F / ||Theta||_F of ``build(name, c)`` for each c in ``channels`` (module docstring).

    The empirical NTK (one readout unit) is :func:`workbench.kernels.empirical.empirical_ntk` with its
    general ``"jacobian"`` method on ``net.apply``; seed s initializes with ``PRNGKey(s)``.
    """
    check_choice("name", name, ARCHITECTURES)
    check_finite("x", x)
    channels = np.asarray([check_positive_int("channels", int(c)) for c in channels])
    if channels.size < 2:
        raise ValueError(f"channels must hold at least two values to fit a slope, got {channels.tolist()}")
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    ref = np.asarray(build(name).kernels(x).ntk, dtype=float)
    norm = np.linalg.norm(ref)
    dist = np.zeros((len(channels), len(seeds)))
    bar = tqdm(total=dist.size, desc=f"{name} channel convergence", disable=not progress)
    for i, c in enumerate(channels):
        net = build(name, int(c))
        for j, s in enumerate(seeds):
            params = net.init(jax.random.PRNGKey(s), x.shape)
            emp = np.asarray(empirical_ntk(net.apply, params, x, method="jacobian"), dtype=float)
            dist[i, j] = np.linalg.norm(emp - ref) / norm
            bar.update()
    bar.close()
    fit = fit_loglog(channels, dist.mean(axis=1))
    slope, intercept = fit.exponent, math.log(fit.prefactor)
    return ChannelConvergence(name, channels, dist, slope, intercept,
                              f"{LABELS[name]}, n={x.shape[0]}, {len(seeds)} seeds, {x.dtype}; {config.device_report()}")
