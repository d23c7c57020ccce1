"""Tests of the command line (workbench.cli): help, one-line errors with exit status 2, no partial report,
a real (small) report and check run, and the ``python -m workbench`` entry point."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from workbench import cli, reports


def _run(argv, capsys):
    """main(argv) -> (exit status, stdout, stderr); argparse's SystemExit is turned into its status."""
    try:
        rc = cli.main(argv)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error, got:\n{err}"
    assert lines[0].startswith("workbench: error: ")
    return lines[0]


@pytest.mark.parametrize("argv", [["--help"], ["report", "--help"], ["check", "--help"],
                                  *[["report", s, "--help"] for s in reports.STUDIES]])
def test_help_is_complete(argv, capsys):
    rc, out, _ = _run(argv, capsys)
    assert rc == 0
    assert "usage: workbench" in out
    if argv[0] == "report" and len(argv) == 3:
        # every study documents its output, precision and fast switches
        assert "--out PATH.html" in out and "--precision" in out and "--fast" in out
    if argv == ["report", "--help"]:
        assert all(s in out for s in reports.STUDIES)


def test_hessian_help_lists_its_options(capsys):
    _, out, _ = _run(["report", "hessian", "--help"], capsys)
    for option in ("--batch-sizes", "--num-data", "--width", "--kind", "--train-steps"):
        assert option in out


@pytest.mark.parametrize(("argv", "match"), [
    (["report", "nope", "--out", "{tmp}/r.html"], r"invalid choice: 'nope'"),
    (["report"], r"required: .*study|the following arguments are required"),
    (["report", "hessian", "--width", "-3", "--out", "{tmp}/r.html"], r"--width: expected a positive integer, got -3"),
    (["report", "hessian", "--batch-sizes", "4,-8", "--out", "{tmp}/r.html"], r"positive integer, got -8"),
    (["report", "hessian", "--num-data", "0", "--out", "{tmp}/r.html"], r"--num-data: expected a positive integer"),
    (["report", "hessian"], r"required: --out"),
    (["report", "hessian", "--out", "{tmp}/no/such/dir/r.html"], r"--out folder .* does not exist"),
    (["report", "hessian", "--out", "{tmp}/r.txt"], r"--out must end in \.html"),
    (["report", "hessian", "--batch-sizes", "4,64", "--num-data", "16", "--out", "{tmp}/r.html"],
     r"--batch-sizes must be <= --num-data=16"),
    (["report", "hessian", "--activation", "nope", "--out", "{tmp}/r.html"], r"activation"),
    (["report", "symbolic", "--names", "no_such_derivation", "--out", "{tmp}/r.html"], r"unknown derivation name"),
    (["check", "no_such_derivation"], r"unknown derivation name"),
    (["frobnicate"], r"invalid choice: 'frobnicate'"),
])
def test_bad_input_one_line_error_exit_2_no_file(argv, match, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, _, err = _run(argv, capsys)
    assert rc == 2
    assert re.search(match, _one_line_error(err)), err
    assert list(tmp_path.iterdir()) == []  # no report, no partial or temporary file


def test_unwritable_output_path_fails_before_computing(tmp_path, capsys, monkeypatch):
    """A folder that cannot be written (simulated: root may write anywhere) fails at once, with no study run."""
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    called = []
    monkeypatch.setattr(reports.load_study("hessian"), "build", lambda args: called.append(args))
    rc, _, err = _run(["report", "hessian", "--out", str(tmp_path / "r.html")], capsys)
    assert rc == 2 and "is not writable" in _one_line_error(err)
    assert called == [] and list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    import os

    def broken_replace(src, dst):
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    rc, _, err = _run(["report", "symbolic", "--names", "erf_price", "--first-method-only", "--no-progress",
                       "--out", str(tmp_path / "r.html")], capsys)
    assert rc == 2 and "No space left on device" in _one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_symbolic_report_and_check_run(tmp_path, capsys):
    """A real run: one fast derivation (quadrature), as a report and as the check table."""
    out = tmp_path / "sym.html"
    rc, stdout, _ = _run(["report", "symbolic", "--names", "erf_price", "--first-method-only", "--no-progress",
                          "--out", str(out)], capsys)
    assert rc == 0 and f"wrote {out}" in stdout
    text = out.read_text()
    assert "erf_price" in text and 'id="figure-error_ratios"' in text and "all checks passed" in text
    assert "float64" in text  # the verification default precision is recorded with the device report

    rc, stdout, _ = _run(["check", "erf_price", "--first-method-only", "--no-progress"], capsys)
    assert rc == 0
    assert "erf_price" in stdout and "1 checks, 1 passed, 0 failed" in stdout


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "workbench", "report", "nope", "--out", "x.html"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "invalid choice: 'nope'" in proc.stderr


def test_main_restores_precision_and_fast_mode(tmp_path, capsys, monkeypatch):
    """main() may run inside a larger process: it must not leave float32 or fast mode switched on."""
    import jax

    monkeypatch.delenv("WORKBENCH_FAST", raising=False)
    assert jax.config.read("jax_enable_x64")  # tests run in float64 (conftest)
    rc, _, _ = _run(["report", "hessian", "--fast", "--precision", "float32", "--activation", "nope",
                     "--out", str(tmp_path / "r.html")], capsys)
    assert rc == 2
    assert jax.config.read("jax_enable_x64")
    import os

    assert "WORKBENCH_FAST" not in os.environ


def test_fast_flag_sets_the_defaults(capsys, monkeypatch):
    monkeypatch.delenv("WORKBENCH_FAST", raising=False)
    _, full, _ = _run(["report", "hessian", "--help"], capsys)
    _, fast, _ = _run(["report", "hessian", "--fast", "--help"], capsys)
    assert "(default: 2048)" in full and "(default: 128)" in fast  # --num-data: full vs fast size


#: tiny sizes per study: the point is that each report runs the study end to end and writes every figure
TINY = {
    "hessian": ["--num-data", "32", "--batch-sizes", "4,32", "--width", "8", "--train-steps", "0",
                "--num-batches", "2", "--top-k", "1"],
    "ntk": ["--num-points", "6", "--widths", "8,16", "--width", "16", "--seeds", "1", "--max-degree", "4",
            "--drift-steps", "0"],
    "dynamics": ["--widths", "8,16", "--num-steps", "4", "--n-train", "4", "--num-seeds", "1", "--sim-trials", "2"],
    "lr-batch": ["--batch-sizes", "4,16", "--num-data", "16", "--num-lrs", "3", "--num-steps", "4", "--seeds", "1",
                 "--width", "4", "--optimizers", "sgd"],
}
#: figures each report must hold (the notebook's figures for that study)
FIGURES = {"hessian": ["top_eigenvalue", "lr_max", "densities"], "ntk": ["spectrum", "convergence", "sphere"],
           "dynamics": ["functions", "losses", "modes", "width_errors", "advani_saxe", "learning_curve"],
           "lr-batch": ["heatmap", "lr_vs_batch", "tradeoff"]}


# the slow tier (20-35 s each on 2 cores): every ./run test still writes the ntk report from the command line and
# opens it in Chromium (tests/browser/test_exports_in_browser.py), and the notebooks run the studies themselves
@pytest.mark.slow
@pytest.mark.parametrize("study", list(TINY))
def test_study_report_runs_end_to_end(study, tmp_path, capsys):
    out = tmp_path / f"{study}.html"
    rc, stdout, err = _run(["report", study, "--fast", "--no-progress", *TINY[study], "--out", str(out)], capsys)
    assert rc == 0, err
    text = out.read_text()
    for name in FIGURES[study]:
        assert f'id="figure-{name}"' in text, name
    assert text.count('class="plotly-graph-div"') == len(FIGURES[study])
    assert "<h2>Numbers</h2>" in text and "<h2>Parameters</h2>" in text and "<h2>Device</h2>" in text
    assert f"{len(FIGURES[study])} figure(s)" in stdout
