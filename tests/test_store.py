"""Atomic, checksummed result files and resumable sweeps over damaged files (issue 20)."""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench.experiments.sweep import sweep
from workbench import store
from workbench.nets import MLP
from workbench.hessian import mlp_loss


def test_save_load_roundtrip_and_no_temp_files_left(tmp_path):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "flag": np.array([True, False]), "device": np.asarray("cpu")}
    path = tmp_path / "r.npz"
    store.save_result(path, arrays)
    got = store.load_result(path)
    assert set(got) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
    assert os.listdir(tmp_path) == ["r.npz"]
    with np.load(path) as f:  # still a plain .npz for other tools
        assert store.CHECKSUM_KEY in f.files
    assert store.load_result(tmp_path / "missing.npz") is None


def _damage(path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(os.urandom(len(raw)))
    elif how == "foreign":  # a valid .npz that store did not write
        with open(path, "wb") as fh:
            np.savez(fh, train_loss=np.zeros(3))
    elif how == "bitflip":  # same length, one byte changed inside the data (zip CRC or our checksum catches it)
        b = bytearray(raw)
        b[len(b) // 3] ^= 0xFF
        path.write_bytes(bytes(b))
    else:  # pragma: no cover
        raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "foreign", "bitflip"])
def test_damaged_file_is_missing_with_one_warning(tmp_path, how):
    path = tmp_path / "r.npz"
    store.save_result(path, {"x": np.linspace(0, 1, 200)})
    _damage(path, how)
    with pytest.warns(store.DamagedResultWarning, match=f"{path.name}.*recomputed") as rec:
        assert store.load_result(path) is None
    assert len(rec) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.load_result(path, warn=False) is None


def test_save_refuses_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="non-empty mapping"):
        store.save_result(tmp_path / "r.npz", {})
    with pytest.raises(TypeError, match=r"arrays\['o'\] has dtype object"):
        store.save_result(tmp_path / "r.npz", {"o": np.array([{}], dtype=object)})
    assert not os.listdir(tmp_path)


@pytest.fixture(scope="module")
def sweep_setup():
    net = MLP(depth=1, width=8, activation="tanh", w_std=1.5, b_std=0.1, parametrization="standard")
    kx, _ = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(kx, (32, 3))
    y = jnp.tanh(x[:, :1] - x[:, 1:2])
    return mlp_loss(net, "mse"), (lambda k: net.init(k, 3)), (x, y), net.describe()


def test_sweep_reruns_damaged_points_to_the_undisturbed_result(sweep_setup, tmp_path):
    loss_fn, init_fn, data, tag = sweep_setup
    kw = dict(batch_sizes=[4, 16], lrs=[0.05, 500.0], seeds=1, num_steps=10, record_every=5,
              optimizers=("sgd",), results_dir=str(tmp_path), tag=tag, progress=False)
    clean = sweep(loss_fn, init_fn, data, **kw)["sgd"]
    files = sorted(tmp_path.glob("sgd_B*.npz"))
    assert len(files) == 2
    for damage in (("truncated", "garbage"), ("empty", "foreign")):
        for f, how in zip(files, damage):
            _damage(f, how)
        with pytest.warns(store.DamagedResultWarning) as rec:
            again = sweep(loss_fn, init_fn, data, **kw)["sgd"]
        assert len(rec) == 2 and {f.name for f in files} == {os.path.basename(str(r.message).split()[2]) for r in rec}
        assert again.completed
        for field in ("batch_sizes", "train_loss", "diverged", "diverged_step", "steps"):
            np.testing.assert_array_equal(getattr(again, field), getattr(clean, field), err_msg=field)
    # the recomputed files are sound again: a third run loads them silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = sweep(loss_fn, init_fn, data, **kw)["sgd"]
    np.testing.assert_array_equal(third.train_loss, clean.train_loss)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f.name for f in files]  # no temp files left
