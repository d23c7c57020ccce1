"""Command line under bad input (issue 20): one validated parse path, one line and exit 2 for every failure."""

from __future__ import annotations

import re

import pytest

from workbench import cli, reports
from tests.test_cli import _one_line_error, _run  # the one copy of the CLI test helpers


@pytest.mark.parametrize(("argv", "match"), [
    (["report", "hessian", "--seed", "99999999999999999999999"], r"--seed: expected a seed .* <= 4294967295"),
    (["report", "hessian", "--seed", "4294967296"], r"--seed: expected a seed .* <= 4294967295"),
    (["report", "hessian", "--seed", "-1"], r"--seed: expected a seed"),
    (["report", "hessian", "--seed", "1.5"], r"--seed: expected a seed"),
    (["report", "lr-batch", "--seed", "1e3"], r"--seed: expected a seed"),
    (["report", "hessian", "--width", "3000000000"], r"--width: expected a positive integer <= 2147483647"),
    (["report", "hessian", "--width", "9" * 40], r"--width: expected a positive integer <= 2147483647"),
    (["report", "hessian", "--width", "１２"], r"--width: expected a positive integer"),  # full-width digits
    (["report", "hessian", "--lr", "nan"], r"--lr: expected a positive finite number"),
    (["report", "hessian", "--lr", "inf"], r"--lr: expected a positive finite number"),
    (["report", "dynamics", "--noise-std", "nan"], r"--noise-std: expected a finite number"),
    (["report", "lr-batch", "--momentum", "inf"], r"--momentum: expected a finite number"),
    (["report", "ntk", "--widths", "4,1e9"], r"--widths: expected a positive integer"),
])
def test_every_option_goes_through_one_validated_path(argv, match, tmp_path, capsys):
    rc, _, err = _run([*argv, "--out", str(tmp_path / "r.html")], capsys)
    assert rc == 2
    assert re.search(match, _one_line_error(err)), err
    assert list(tmp_path.iterdir()) == []


def test_unexpected_study_failure_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("something deep\nin the study")

    monkeypatch.setattr(reports.load_study("hessian"), "build", broken)
    rc, _, err = _run(["report", "hessian", "--out", str(tmp_path / "r.html")], capsys)
    assert rc == 2
    assert "RuntimeError: something deep in the study" in _one_line_error(err)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("WORKBENCH_DEBUG", "1")
    with pytest.raises(RuntimeError, match="something deep"):
        cli.main(["report", "hessian", "--out", str(tmp_path / "r.html")])


def test_diverged_pretraining_is_reported_as_divergence_not_lanczos(tmp_path, capsys):
    rc, _, err = _run(["report", "hessian", "--fast", "--lr", "1e6", "--no-progress", "--num-data", "16",
                       "--batch-sizes", "4", "--width", "4", "--depth", "1", "--train-steps", "6", "--top-k", "1",
                       "--num-batches", "1",
                       "--out", str(tmp_path / "r.html")], capsys)
    line = _one_line_error(err)
    assert rc == 2
    assert re.search(r"pre-training diverged at step \d+ .*lr = 1e\+06.*lower the learning rate", line), line
    assert "Lanczos" not in line
    assert list(tmp_path.iterdir()) == []
