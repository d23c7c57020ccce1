"""workbench.datasets / data.load: digits, the disk cache, the offline error. The network is never touched:
the OpenML fetch is replaced by a stub in every test that could reach it."""

from __future__ import annotations

import time
import types
import urllib.error

import numpy as np
import pytest

from workbench import data, datasets


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache folder and a fetch that fails at once (as with no network); records whether it was called."""
    calls = []

    def fail(**kwargs):
        calls.append(kwargs)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "_fetch_openml", fail)
    return tmp_path / "cache", calls


def test_digits_shapes_dtypes_labels_and_normalization():
    d = data.load("digits", split="train")
    assert d.x.shape == (1437, 8, 8, 1) and str(d.x.dtype) == "float64"  # the tests run in float64
    assert str(d.y.dtype) == "int32" and int(d.y.min()) == 0 and int(d.y.max()) == 9 and d.num_classes == 10
    # standardized with the training split's own statistics: mean 0, std 1 over all pixels
    assert abs(float(np.mean(d.x))) < 1e-12 and abs(float(np.std(d.x)) - 1) < 1e-12
    raw = data.load("digits", split="test", n=50, normalize=False, flatten=True, seed=3)
    assert raw.x.shape == (50, 64) and float(raw.x.min()) >= 0 and float(raw.x.max()) <= 1
    again = data.load("digits", split="test", n=50, normalize=False, flatten=True, seed=3)
    np.testing.assert_array_equal(raw.y, again.y)
    train_raw, _ = datasets.raw_split("digits", "train")
    test_raw, _ = datasets.raw_split("digits", "test")
    assert len(train_raw) + len(test_raw) == 1797


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split must be one of"):
        data.load("digits", split="validation")
    with pytest.raises(ValueError, match="at most the 360 examples"):
        data.load("digits", split="test", n=361)
    with pytest.raises(TypeError, match="normalize"):
        data.load("digits", normalize="yes")


def test_offline_without_cache_fails_fast_naming_the_cache_file(offline):
    cache, calls = offline
    start = time.perf_counter()
    with pytest.raises(datasets.DatasetUnavailableError) as err:
        data.load("mnist", n=10)
    assert time.perf_counter() - start < 5.0
    message = str(err.value)
    assert "\n" not in message and str(cache / "mnist_train.npz") in message and "URLError" in message
    assert len(calls) == 1 and calls[0]["data_id"] == 554 and calls[0]["n_retries"] == 1


def test_cached_file_loads_without_network(offline):
    cache, calls = offline
    cache.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, 12).astype(np.uint8)
    np.savez_compressed(cache / "fashion_mnist_train.npz", x=x, y=y)  # the cache format, written here
    d = data.load("fashion_mnist", n=5, normalize=False, seed=1)
    idx = np.sort(np.random.default_rng(1).choice(12, 5, replace=False))
    np.testing.assert_allclose(d.x, x[idx] / 255.0, rtol=1e-15)
    np.testing.assert_array_equal(d.y, y[idx])
    full = data.load("fashion_mnist")
    assert full.x.shape == (12, 28, 28, 1) and abs(float(np.mean(full.x))) < 1e-12
    assert calls == []


@pytest.mark.parametrize("bad, match", [
    (dict(x=np.zeros((3, 28, 28), np.uint8), y=np.zeros(3, np.uint8)), r"shape \(N, 28, 28, 1\)"),
    (dict(x=np.zeros((3, 28, 28, 1), np.float32), y=np.zeros(3, np.uint8)), "uint8"),
    (dict(x=np.zeros((3, 28, 28, 1), np.uint8), y=np.array([0, 3, 10], np.uint8)), r"labels must lie in \[0, 10\)"),
    (dict(x=np.zeros((3, 28, 28, 1), np.uint8), y=np.zeros(4, np.uint8)), r"labels must have shape \(3,\)"),
])
def test_bad_cache_file_is_named(offline, bad, match):
    cache, _ = offline
    cache.mkdir(parents=True)
    np.savez_compressed(cache / "mnist_test.npz", **bad)
    with pytest.raises(ValueError, match=match) as err:
        data.load("mnist", split="test", normalize=False)
    assert "mnist_test.npz" in str(err.value)


def test_download_converts_openml_rows_and_caches_both_splits(tmp_path, monkeypatch):
    """A stub in OpenML's layout (CIFAR rows: the R, G, B planes one after the other) with 4 + 2 rows."""
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    monkeypatch.setitem(datasets.SPECS, "cifar10", datasets.SPECS["cifar10"]._replace(num_train=4, num_total=6))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    rows = images.transpose(0, 3, 1, 2).reshape(6, -1).astype(np.float64)  # channel planes, as OpenML stores them
    labels = np.array(["3", "0", "9", "1", "2", "2"], dtype=object)
    monkeypatch.setattr(datasets, "_fetch_openml", lambda **kw: types.SimpleNamespace(data=rows, target=labels))
    d = data.load("cifar10", split="test", normalize=False)
    np.testing.assert_allclose(d.x, images[4:] / 255.0, rtol=1e-15)
    np.testing.assert_array_equal(d.y, [2, 2])
    assert (tmp_path / "cifar10_train.npz").exists() and (tmp_path / "cifar10_test.npz").exists()
    x_train, y_train = datasets.raw_split("cifar10", "train")
    np.testing.assert_array_equal(x_train, images[:4])
    np.testing.assert_array_equal(y_train, [3, 0, 9, 1])


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path / "d"))
    assert datasets.cache_path("mnist", "test") == tmp_path / "d" / "mnist_test.npz"
    monkeypatch.delenv("WORKBENCH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "workbench" / "data"


def test_digits_read_without_sklearn_equal_load_digits():
    """The digits are read from scikit-learn's data file without importing scikit-learn (~4 s): the same images
    and labels as ``sklearn.datasets.load_digits``."""
    from sklearn.datasets import load_digits

    from workbench import datasets as D

    assert D._digits_file() is not None
    raw = load_digits()
    x_tr, y_tr, x_te, y_te = D._digits()
    x = np.concatenate([x_tr, x_te])[..., 0].astype(np.float64)
    y = np.concatenate([y_tr, y_te]).astype(np.int64)
    order = np.random.default_rng(0).permutation(len(raw.images))  # the module's split
    np.testing.assert_array_equal(x, raw.images[order])
    np.testing.assert_array_equal(y, raw.target[order])
    data, target = D.digits_raw()  # what workbench.data.digits reads
    np.testing.assert_array_equal(data, raw.data)
    np.testing.assert_array_equal(target, raw.target)
