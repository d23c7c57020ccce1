"""Binder: install from binder/ the way repo2docker does, and import the package there.

repo2docker (the builder behind mybinder.org) ignores the root pyproject.toml once binder/ exists; it picks the
Python version from binder/runtime.txt and runs ``pip install -r binder/requirements.txt`` in the repository root.
Docker does not run on the CI machine, so these tests repeat those steps: the runtime and requirements lines are checked
in every run; pip resolves binder/requirements.txt from scratch (``--dry-run --ignore-installed``, 20 s) and a
throwaway venv installs it and imports the package (a minute or more), both in the slow tier. A broken binder/ setup (a missing ``-e .``, a wrong
runtime line, a missing anywidget or Voila, an unsatisfiable pin) fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_runtime_and_requirements_files():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    reqs = [line.split("#")[0].strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    assert "-e ." in reqs, "binder/requirements.txt must install the package itself"
    assert any(r.startswith("anywidget") for r in reqs), "plotly's FigureWidget needs anywidget"
    assert not (ROOT / "binder" / "environment.yml").exists(), "environment.yml would silently disable requirements.txt"


def _tracked_copy(tmp_path: Path) -> Path:
    """A copy of the tracked files only (no .venv, no caches), as repo2docker sees a clone."""
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for f in files:
        src = ROOT / f
        if src.is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / f)
    return repo


@pytest.mark.slow  # 20 s of pip resolution on 2 cores; test_runtime_and_requirements_files checks the files in the fast tier
def test_binder_requirements_resolve_from_scratch(tmp_path):
    """pip resolves binder/requirements.txt as on a fresh image (nothing installed counts) and would install the
    package, JupyterLab, the widgets, Voila and anywidget."""
    import json

    repo = _tracked_copy(tmp_path)
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                           "--report", str(report), "-r", "binder/requirements.txt"], cwd=repo,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    missing = {"workbench", "jax", "jupyterlab", "ipywidgets", "plotly", "anywidget", "voila"} - names
    assert not missing, f"binder/requirements.txt would not install {sorted(missing)}"


def _python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        pytest.skip("python3.11 (binder/runtime.txt) is not installed here")
    return found


@pytest.mark.slow
def test_fresh_venv_from_binder_files(tmp_path):
    repo = _tracked_copy(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([_python311(), "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-compile", "-r", "binder/requirements.txt"], cwd=repo,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = (
        "import workbench, plotly.graph_objects as go, ipywidgets, jupyterlab, anywidget\n"
        "from workbench.panels.tour import TourPanel\n"
        "fig = go.FigureWidget()\n"
        "print(workbench.device_report())\n"
    )
    proc = subprocess.run([str(py), "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cpu" in proc.stdout
