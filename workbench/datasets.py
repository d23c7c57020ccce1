"""Real image data sets for the studies: digits, MNIST, Fashion-MNIST, CIFAR-10, cached on disk.

:func:`load` returns a :class:`LabeledData`: images ``x`` of shape (n, H, W, C) (or (n, H*W*C) with
``flatten=True``) in the current float width, integer labels ``y`` of shape (n,) in [0, num_classes).

Sources:

* ``"digits"``: scikit-learn's 8x8 digits (shipped with scikit-learn, no download; 1797 images). It has no
  official split: a fixed permutation (seed 0) gives 1437 training and 360 test images.
* ``"mnist"`` (OpenML ``mnist_784``, id 554), ``"fashion_mnist"`` (``Fashion-MNIST``, id 40996), ``"cifar10"``
  (``CIFAR_10``, id 40927), downloaded once through scikit-learn's :func:`sklearn.datasets.fetch_openml`. The
  standard splits are the OpenML row order: the first 60,000 (MNIST, Fashion-MNIST) or 50,000 (CIFAR-10) rows
  are the training set, the rest the test set. CIFAR-10's rows hold the three 32x32 colour planes one after
  the other (R, G, B); they are turned into (32, 32, 3) images.

Cache: ``$WORKBENCH_DATA`` if set, else ``$XDG_CACHE_HOME/workbench/data`` (default ``~/.cache/workbench/data``).
Each split is one compressed file ``<name>_<split>.npz`` with ``x`` (uint8, (N, H, W, C)) and ``y``
(uint8 labels, (N,)); :func:`save_cache` writes one (e.g. from data you obtained elsewhere), and a loaded
file is checked for shapes, dtypes and label ranges. OpenML's own download cache lives in ``openml/`` beside
the files. Offline with no cached file, :func:`load` fails at once with :class:`DatasetUnavailableError`,
whose one-line message names the file it looked for.

Normalization (``normalize=True``): pixels scaled to [0, 1], then each channel standardized with the mean and
standard deviation of the *training* split (the same statistics for the test split). ``normalize=False``:
pixels in [0, 1].
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from workbench.validation import check_choice, check_positive_int


class _Spec(NamedTuple):
    shape: tuple[int, int, int]
    num_classes: int
    max_pixel: float
    openml_id: int | None
    openml_name: str
    num_train: int
    num_total: int


SPECS: dict[str, _Spec] = {
    "digits": _Spec((8, 8, 1), 10, 16.0, None, "", 1437, 1797),
    "mnist": _Spec((28, 28, 1), 10, 255.0, 554, "mnist_784", 60000, 70000),
    "fashion_mnist": _Spec((28, 28, 1), 10, 255.0, 40996, "Fashion-MNIST", 60000, 70000),
    "cifar10": _Spec((32, 32, 3), 10, 255.0, 40927, "CIFAR_10", 50000, 60000),
}
NAMES = tuple(SPECS)
SPLITS = ("train", "test")


class DatasetUnavailableError(OSError):
    """A data set that is neither cached nor downloadable (offline); the message names the cache file."""


class LabeledData(NamedTuple):
    """Images ``x`` (n, H, W, C) or (n, H*W*C), integer labels ``y`` (n,), and what they are."""

    x: Any
    y: Any
    num_classes: int
    name: str
    split: str
    description: str


def cache_dir() -> Path:
    """Where data sets are cached: ``$WORKBENCH_DATA``, else ``$XDG_CACHE_HOME/workbench/data`` (``~/.cache/...``)."""
    env = os.environ.get("WORKBENCH_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "workbench" / "data"


def cache_path(name: str, split: str) -> Path:
    """The cache file of one split: ``<cache_dir()>/<name>_<split>.npz``."""
    check_choice("name", name, NAMES)
    check_choice("split", split, SPLITS)
    return cache_dir() / f"{name}_{split}.npz"


def _check_arrays(name: str, x: np.ndarray, y: np.ndarray, where: str) -> None:
    spec = SPECS[name]
    if x.ndim != 4 or tuple(x.shape[1:]) != spec.shape:
        raise ValueError(f"{where}: images must have shape (N, {', '.join(map(str, spec.shape))}), got {x.shape}")
    if x.dtype != np.uint8:
        raise ValueError(f"{where}: images must be uint8 pixels, got dtype {x.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: labels must have shape ({x.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= spec.num_classes):
        raise ValueError(f"{where}: labels must lie in [0, {spec.num_classes}), got [{int(y.min())}, {int(y.max())}]")
    if int(x.max(initial=0)) > spec.max_pixel:
        raise ValueError(f"{where}: pixels must lie in [0, {spec.max_pixel:g}], got max {int(x.max())}")


def save_cache(name: str, split: str, x: Any, y: Any) -> Path:
    """Write one split to its cache file (checked first; written atomically). Returns the path."""
    path = cache_path(name, split)
    x, y = np.asarray(x), np.asarray(y)
    _check_arrays(name, x, y, f"{name} {split}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, x=x, y=y.astype(np.uint8))
    os.replace(tmp, path)
    return path


def _read_cache(name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cache file {path} is unreadable ({type(exc).__name__}: {exc}); delete it to download "
                         "again") from exc
    _check_arrays(name, x, y, f"cache file {path}")
    return x, y


def _digits_file() -> Path | None:
    """scikit-learn's copy of the digits (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the label per row),
    found without importing scikit-learn (its import takes ~4 s, longer than everything else a panel does)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=1)
def digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as ``load_digits()`` gives them: ``data`` (1797, 64) float64 pixels 0..16 and
    ``target`` (1797,) labels, read from its data file without importing scikit-learn (read-only arrays)."""
    path = _digits_file()
    if path is not None:  # the data load_digits reads, read directly
        raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
        data, target = raw[:, :-1], raw[:, -1].astype(np.int64)
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        data, target = np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64)
    data.setflags(write=False)
    target.setflags(write=False)
    return data, target


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data, target = digits_raw()
    x = data.reshape(-1, 8, 8).astype(np.uint8)[..., None]  # (1797, 8, 8, 1), pixels 0..16
    y = target.astype(np.uint8)
    perm = np.random.default_rng(0).permutation(len(x))
    tr, te = perm[:SPECS["digits"].num_train], perm[SPECS["digits"].num_train:]
    return x[tr], y[tr], x[te], y[te]


def _fetch_openml(**kwargs: Any) -> Any:
    """scikit-learn's fetch_openml (a module-level name, so tests can replace it and never touch the network)."""
    from sklearn.datasets import fetch_openml

    return fetch_openml(**kwargs)


def _download(name: str) -> None:
    """Fetch a data set from OpenML and write both splits to the cache (fails fast when offline)."""
    spec = SPECS[name]
    wanted = cache_path(name, "train")
    try:
        bunch = _fetch_openml(data_id=spec.openml_id, data_home=str(cache_dir() / "openml"), as_frame=False,
                              parser="liac-arff", n_retries=1, delay=0.0)
    except Exception as exc:  # URLError, socket timeouts, HTTP errors, ...: one line naming the cache file
        reason = " ".join(str(exc).split())[:160]
        raise DatasetUnavailableError(
            f"data set {name!r} is not cached at {wanted} and could not be downloaded from OpenML "
            f"(id {spec.openml_id}; {type(exc).__name__}: {reason}); connect once to download it, or put the "
            f"file there (workbench.datasets.save_cache; set WORKBENCH_DATA to choose the folder)") from None
    x = np.asarray(bunch.data)
    y = np.asarray(bunch.target).astype(np.int64)
    h, w, c = spec.shape
    if x.shape != (spec.num_total, h * w * c):
        raise ValueError(f"OpenML returned {name} of shape {x.shape}, expected ({spec.num_total}, {h * w * c})")
    x = np.rint(x).astype(np.uint8)
    x = x.reshape(-1, c, h, w).transpose(0, 2, 3, 1) if c > 1 else x.reshape(-1, h, w, 1)
    save_cache(name, "train", x[:spec.num_train], y[:spec.num_train])
    save_cache(name, "test", x[spec.num_train:], y[spec.num_train:])


def raw_split(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W, C) and labels (N,) of one split: from the cache, downloading once if needed."""
    check_choice("name", name, NAMES)
    check_choice("split", split, SPLITS)
    if name == "digits":
        x_tr, y_tr, x_te, y_te = _digits()  # cached: copies, so callers may modify them
        return (x_tr.copy(), y_tr.copy()) if split == "train" else (x_te.copy(), y_te.copy())
    path = cache_path(name, split)
    if not path.exists():
        _download(name)
    return _read_cache(name, path)


def load(name: str, split: str = "train", n: int | None = None, normalize: bool = True, *, seed: int = 0,
         flatten: bool = False, dtype: Any = None) -> LabeledData:
    """``n`` labelled images of data set ``name`` (``"digits"``, ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``).

    Args:
      name: the data set (module docstring for sources and the cache).
      split: ``"train"`` or ``"test"``.
      n: how many examples: a random subset drawn without replacement with ``seed`` (None: the whole split).
      normalize: standardize each channel with the training split's statistics (else pixels in [0, 1]).
      seed: seed of the subset.
      flatten: images as rows (n, H*W*C) (for MLPs) instead of (n, H, W, C).
      dtype: float dtype of ``x`` (default: the current float width, float32 unless float64 is on).

    Raises:
      DatasetUnavailableError: not cached and not downloadable (a one-line message naming the cache file).
      ValueError: bad arguments, ``n`` larger than the split, or a cache file with wrong shapes/dtypes/labels.
    """
    check_choice("name", name, NAMES)
    check_choice("split", split, SPLITS)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        dt = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    except TypeError:  # numpy's "data type 'float7' not understood" does not say which argument
        raise TypeError(f"dtype must be a float dtype such as 'float32' or 'float64', got {dtype!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"dtype must be a float dtype, got {dt}")
    x, y = raw_split(name, split)
    total = int(x.shape[0])
    if n is not None:
        n = check_positive_int("n", n)
        if n > total:
            raise ValueError(f"n must be at most the {total} examples of {name} {split}, got {n}")
        idx = np.sort(np.random.default_rng(int(seed)).choice(total, n, replace=False))
        x, y = x[idx], y[idx]
    spec = SPECS[name]
    xf = x.astype(np.float64) / spec.max_pixel
    if normalize:
        x_train = raw_split(name, "train")[0] if split != "train" or n is not None else x
        ref = x_train.astype(np.float64) / spec.max_pixel
        mean = ref.mean(axis=(0, 1, 2))
        std = ref.std(axis=(0, 1, 2))
        xf = (xf - mean) / np.where(std > 0, std, 1.0)
    if flatten:
        xf = xf.reshape(xf.shape[0], -1)
    desc = (f"{name} {split}, n={xf.shape[0]} of {total}{' (seed ' + str(seed) + ')' if n is not None else ''}, "
            f"{'standardized per channel' if normalize else 'pixels in [0, 1]'}, "
            f"{'flattened ' if flatten else ''}shape {tuple(xf.shape[1:])}, {spec.num_classes} classes")
    return LabeledData(jnp.asarray(xf, dt), jnp.asarray(y.astype(np.int32)), spec.num_classes, name, split, desc)


__all__ = ["NAMES", "SPECS", "SPLITS", "DatasetUnavailableError", "LabeledData", "cache_dir", "cache_path",
           "digits_raw", "load", "raw_split", "save_cache"]
