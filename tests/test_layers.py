"""The layer order of docs/ARCHITECTURE.md holds by tooling: `lint-imports` checks the contracts of
pyproject.toml: the `layers` contract (every module of the package named, exhaustive) and a `forbidden` one
that keeps ipywidgets out of everything the headless command line loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([*cmd, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_layers_contract_is_kept():
    res = _lint_imports()
    # two contracts: the layers, and no ipywidgets under the headless command line (cli, reports, plots, studies)
    assert res.returncode == 0 and "2 kept, 0 broken" in res.stdout, res.stdout + res.stderr
