"""``workbench report ... --model module:factory --data NAME``: a report from your own model, and one-line errors
(exit status 2, no file) for an unknown module or factory, a factory that raises, a model whose outputs do not fit
the labels, and a data set that is offline and not cached."""

from __future__ import annotations

import sys
import textwrap
import urllib.error
from pathlib import Path

import pytest

from workbench import cli, datasets

ROOT = Path(__file__).resolve().parents[1]

FACTORIES = textwrap.dedent("""
    import equinox as eqx
    import jax

    def mlp():
        return eqx.nn.MLP(64, 10, 8, 1, activation=jax.nn.tanh, key=jax.random.PRNGKey(0))

    def three_outputs():
        return eqx.nn.MLP(64, 3, 8, 1, key=jax.random.PRNGKey(0))

    def broken():
        raise RuntimeError("no weights file here")
""")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """The current folder holds ``my_models_cli.py``; sys.path and sys.modules are restored afterwards."""
    (tmp_path / "my_models_cli.py").write_text(FACTORIES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_models_cli", raising=False)
    return tmp_path


def _run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("spec, match", [
    ("no_such_module:make", "cannot import 'no_such_module'"),
    ("my_models_cli:missing", "has no function 'missing'"),
    ("my_models_cli:broken", "the factory raised RuntimeError: no weights file here"),
    ("my_models_cli:three_outputs", "labels lie in \\[0, 9\\] but the model has 3 output"),
    ("os.system('ls'):x", "must look like module:factory"),
])
def test_bad_model_is_a_one_line_error_and_no_file(in_tmp, capsys, spec, match):
    import re

    out = in_tmp / "r.html"
    rc, _, err = _run(["report", "noise", "--model", spec, "--data", "digits", "--n", "32", "--fast",
                       "--no-progress", "--out", str(out)], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("workbench: error: ")
    assert re.search(match, lines[0]), lines[0]
    assert not out.exists() and not list(in_tmp.glob("*.part"))


def test_offline_data_set_is_a_one_line_error(in_tmp, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA", str(in_tmp / "empty"))

    def fail(**kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(datasets, "_fetch_openml", fail)
    out = in_tmp / "r.html"
    rc, _, err = _run(["report", "hessian", "--model", "my_models_cli:mlp", "--data", "mnist", "--n", "32",
                       "--fast", "--out", str(out)], capsys)
    assert rc == 2 and "mnist_train.npz" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow  # 17 s on 2 cores; tests/test_models.py checks Equinox models through every study function
def test_report_from_your_own_equinox_model(in_tmp, capsys):
    """An Equinox MLP from a file in the current folder (noise report)."""
    out = in_tmp / "noise.html"
    rc, stdout, err = _run(["report", "noise", "--model", "my_models_cli:mlp", "--data", "digits", "--n", "32",
                            "--batch-sizes", "4,16", "--num-draws", "4", "--fast", "--no-progress", "--out", str(out)],
                           capsys)
    assert rc == 0, err
    text = out.read_text()
    assert "Equinox MLP" in text and "B_simple (exact)" in text and "wrote" in stdout


@pytest.mark.slow  # the Flax CNN's batch Hessians (notebook 06 runs the same model's in the fast tier)
def test_report_from_the_shipped_flax_cnn(in_tmp, capsys, monkeypatch):
    """The shipped Flax CNN example, given as module:factory (hessian report)."""
    monkeypatch.chdir(ROOT)  # examples/ lives in the repository root
    out = in_tmp / "hessian.html"
    rc, _, err = _run(["report", "hessian", "--model", "examples.flax_cnn:make", "--data", "digits", "--n", "32",
                       "--batch-sizes", "8,32", "--num-batches", "1", "--top-k", "1", "--fast", "--no-progress",
                       "--out", str(out)], capsys)
    assert rc == 0, err
    assert "Flax NNX SmallCNN" in out.read_text()
