"""Synthetic data and one small real data set, all seeded, all float arrays.

Shapes: inputs are (n, dim), targets are (n, out_dim) (out_dim = 1 for scalar teachers).
Every function takes an explicit ``jax.random`` key; the same key gives the same data.

* :func:`sphere_points`: uniform on the unit sphere S^{dim-1} (normalized Gaussians).
* :func:`great_circle`: points cos(t) e1 + sin(t) e2, a 1-d slice of the sphere for plots.
* :func:`gaussian_inputs`: x ~ N(0, scale^2 I_dim).
* :func:`linear_teacher`, :func:`mlp_teacher`: Gaussian (or sphere) inputs labelled by a random
  teacher plus Gaussian label noise of standard deviation ``noise_std``.
* :func:`load`: real image data sets (digits, MNIST, Fashion-MNIST, CIFAR-10) with a disk cache, from
  :mod:`workbench.datasets`.
* :func:`digits`: the 8x8 handwritten digits shipped inside scikit-learn (1797 images, 10
  classes; a copy of the UCI ML optical recognition test set, distributed by scikit-learn
  under its BSD-3-Clause licence), pixels scaled to [0, 1] and optionally centred.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench.nets import MLP
from workbench.validation import check_choice, check_positive_int, check_real
from workbench.validation import check_allocation, check_int_tuple

__all__ = ["Dataset", "digits", "gaussian_inputs", "great_circle", "linear_teacher", "mlp_teacher", "sphere_points"]


class Dataset(NamedTuple):
    """Train and test split: x_* of shape (n, dim), y_* of shape (n, out_dim)."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    description: str


def _dtype():
    return jnp.result_type(float)


def _check_inputs_size(n: int, dim: int) -> None:
    """Refuse an (n, dim) input array (and its temporaries, x3) that cannot fit in memory, before drawing it."""
    check_allocation("n/dim", 3.0 * n * dim * jnp.dtype(_dtype()).itemsize, f"{n:,} x {dim:,} inputs")


def sphere_points(key: jax.Array, n: int, dim: int) -> jax.Array:
    """n points uniform on S^{dim-1} in R^dim (|x| = 1), shape (n, dim)."""
    check_positive_int("n", n)
    check_positive_int("dim", dim, minimum=2)
    _check_inputs_size(n, dim)
    g = jax.random.normal(key, (n, dim), _dtype())
    return g / jnp.linalg.norm(g, axis=1, keepdims=True)


def great_circle(n: int, dim: int, *, num_angles_pi: float = 2.0) -> tuple[jax.Array, jax.Array]:
    """Angles t in [0, num_angles_pi * pi) and points cos(t) e1 + sin(t) e2 on S^{dim-1}, shapes (n,), (n, dim)."""
    check_positive_int("n", n)
    check_positive_int("dim", dim, minimum=2)
    _check_inputs_size(n, dim)
    t = jnp.linspace(0.0, num_angles_pi * jnp.pi, n, endpoint=False, dtype=_dtype())
    x = jnp.zeros((n, dim), _dtype()).at[:, 0].set(jnp.cos(t)).at[:, 1].set(jnp.sin(t))
    return t, x


def gaussian_inputs(key: jax.Array, n: int, dim: int, *, scale: float = 1.0) -> jax.Array:
    """x ~ N(0, scale^2 I_dim), shape (n, dim)."""
    check_positive_int("n", n)
    check_positive_int("dim", dim)
    scale = check_real("scale", scale, positive=True)
    _check_inputs_size(n, dim)
    return scale * jax.random.normal(key, (n, dim), _dtype())


def _inputs(key: jax.Array, n: int, dim: int, inputs: str) -> jax.Array:
    check_choice("inputs", inputs, ("gaussian", "sphere"))
    return sphere_points(key, n, dim) if inputs == "sphere" else gaussian_inputs(key, n, dim)


def linear_teacher(key: jax.Array, n_train: int, n_test: int, dim: int, *, noise_std: float = 0.0,
                   inputs: str = "gaussian") -> Dataset:
    """y = w* . x / sqrt(dim) + noise_std * eps, w* ~ N(0, I), eps ~ N(0, 1) (train labels only noisy).

    Test labels are noiseless, so the test error measures the distance to the teacher.
    """
    check_positive_int("n_train", n_train)
    check_positive_int("n_test", n_test)
    dim = check_positive_int("dim", dim)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    kw, kx, kt, kn = jax.random.split(key, 4)
    w = jax.random.normal(kw, (dim, 1), _dtype())
    x_train = _inputs(kx, n_train, dim, inputs)
    x_test = _inputs(kt, n_test, dim, inputs)
    f = lambda x: x @ w / jnp.sqrt(dim)  # noqa: E731
    y_train = f(x_train) + noise_std * jax.random.normal(kn, (n_train, 1), _dtype())
    return Dataset(x_train, y_train, x_test, f(x_test),
                   f"linear teacher, {inputs} inputs, dim={dim}, noise_std={noise_std:g}")


def mlp_teacher(key: jax.Array, n_train: int, n_test: int, dim: int, *, teacher: MLP | None = None,
                noise_std: float = 0.0, inputs: str = "sphere") -> Dataset:
    """Labels from a randomly initialized ``teacher`` MLP (default: 1 hidden layer of 256 tanh units).

    Train labels get Gaussian noise of standard deviation ``noise_std``; test labels are clean.
    """
    check_positive_int("n_train", n_train)
    check_positive_int("n_test", n_test)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    if teacher is None:
        teacher = MLP(depth=1, width=256, activation="tanh", w_std=1.5, b_std=0.1)
    if not isinstance(teacher, MLP):
        raise TypeError(f"teacher must be an MLP, got {type(teacher).__name__}")
    kw, kx, kt, kn = jax.random.split(key, 4)
    params = teacher.init(kw, dim)
    x_train = _inputs(kx, n_train, dim, inputs)
    x_test = _inputs(kt, n_test, dim, inputs)
    y_train = teacher.apply(params, x_train)
    y_train = y_train + noise_std * jax.random.normal(kn, y_train.shape, _dtype())
    return Dataset(x_train, y_train, x_test, teacher.apply(params, x_test),
                   f"MLP teacher {teacher.describe()}, {inputs} inputs, dim={dim}, noise_std={noise_std:g}")


def digits(key: jax.Array, n_train: int, n_test: int, *, classes: tuple[int, ...] = tuple(range(10)),
           targets: str = "onehot", center: bool = True) -> Dataset:
    """scikit-learn's 8x8 digits (dim 64), shuffled by ``key`` and split without overlap.

    ``targets``: ``"onehot"`` (n, len(classes)) with entries in {0, 1} (minus 1/C when centred),
    ``"label"`` (n, 1) integer class indices stored as floats, or ``"pm1"`` (n, 1) with +1 for the
    first class and -1 otherwise (binary tasks). Pixels are scaled to [0, 1]; ``center`` subtracts
    the training mean pixel vector.
    """
    from workbench.datasets import digits_raw  # scikit-learn's data file, read without importing scikit-learn (~4 s)

    check_positive_int("n_train", n_train)
    check_positive_int("n_test", n_test)
    check_choice("targets", targets, ("onehot", "label", "pm1"))
    classes = check_int_tuple("classes", classes, minimum=0, maximum=9, distinct=True, min_length=2)
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(0 <= c <= 9 for c in classes):
        raise ValueError(f"classes must be at least two distinct digits in 0..9, got {classes!r}")
    data, target = digits_raw()
    mask = np.isin(target, classes)
    x_all = data[mask] / 16.0
    lab_all = np.searchsorted(np.asarray(sorted(classes)), target[mask])
    if n_train + n_test > len(x_all):
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {len(x_all)} digits of classes {classes}")
    perm = np.asarray(jax.random.permutation(key, len(x_all)))
    tr, te = perm[:n_train], perm[n_train:n_train + n_test]
    x_tr, x_te = x_all[tr], x_all[te]
    if center:
        mu = x_tr.mean(axis=0)
        x_tr, x_te = x_tr - mu, x_te - mu
    c = len(classes)

    def encode(lab: np.ndarray) -> np.ndarray:
        if targets == "label":
            return lab[:, None].astype(float)
        if targets == "pm1":
            return np.where(lab == 0, 1.0, -1.0)[:, None]
        y = np.eye(c)[lab]
        return y - 1.0 / c if center else y

    dt = _dtype()
    return Dataset(jnp.asarray(x_tr, dt), jnp.asarray(encode(lab_all[tr]), dt), jnp.asarray(x_te, dt),
                   jnp.asarray(encode(lab_all[te]), dt), f"sklearn digits, classes {classes}, targets {targets}")


from workbench.datasets import load as load  # noqa: E402  real data sets (digits, MNIST, ...): workbench.datasets
