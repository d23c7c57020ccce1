"""Fixtures of the real-browser suite: one Chromium, one JupyterLab and one Voila server per test module.

* Chromium is Debian's (``/usr/bin/chromium``, or ``$WORKBENCH_CHROMIUM``), driven by Playwright. If it or
  Playwright is missing, the browser tests are skipped with the reason, except with ``CI=true``, where a
  missing one is a failure. ``WORKBENCH_BROWSER=0`` leaves the suite out.
* The servers serve a temporary copy of ``notebooks/`` (autosave never dirties the repository) plus the
  generated fixture notebooks (a deliberately broken callback), in fast mode (``WORKBENCH_FAST=1``, which the
  kernels inherit). Each server is stopped by its own process id in a ``finally``.
* Screenshots go to ``artifacts/screenshots/`` (gitignored; ``$WORKBENCH_SCREENSHOTS`` overrides), and the
  timings of each check to ``artifacts/browser/timings-<worker>.txt``, which ``./run test`` prints at the end.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

# The real-browser suite runs with the rest of the suite (./run test, and so CI). WORKBENCH_BROWSER=0 leaves it out
# (e.g. for a quick run on a machine without Chromium, where it would be skipped anyway).
collect_ignore_glob = ["test_*.py"] if os.environ.get("WORKBENCH_BROWSER", "").strip() == "0" else []

from tests.browser import harness
from tests.browser.fixture_notebooks import write_fixture_notebooks

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def notebook_names() -> list[str]:
    """Every notebook in ``notebooks/``, sorted: new notebooks are picked up with no per-notebook code."""
    return sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Chromium's path; skip (outside CI) or fail (in CI) with the reason if it or Playwright is missing."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "Playwright is not installed (pip install -e '.[test]')"
    path = harness.find_chromium()
    if problem is None and path is None:
        problem = ("Chromium not found at /usr/bin/chromium (install Debian's package: "
                   "apt-get update && apt-get install -y chromium; or set WORKBENCH_CHROMIUM)")
    if problem:
        if in_ci():
            pytest.fail(f"browser tests need a browser in CI: {problem}")
        pytest.skip(f"browser tests skipped: {problem}")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path):
    """One headless Chromium per test module.

    Module, not session scope: while Playwright's sync API is open it keeps an asyncio loop "running" in this
    thread, so a panel test that the same pytest worker runs later would find a running loop and defer its
    update to a timer that never fires. Closing the browser after each browser module ends that loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=harness.CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def served_root(tmp_path_factory) -> Path:
    """A temporary copy of notebooks/ plus the fixture notebooks (``fixture_*.ipynb``)."""
    root = tmp_path_factory.mktemp("served")
    for name in notebook_names():
        shutil.copy2(NOTEBOOKS / name, root / name)
    write_fixture_notebooks(root)
    return root


@pytest.fixture(scope="module")
def lab_server(browser, served_root, tmp_path_factory):
    with harness.running_server("lab", served_root, tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def voila_server(browser, served_root, tmp_path_factory):
    with harness.running_server("voila", served_root, tmp_path_factory.mktemp("voila")) as server:
        yield server


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = Path(os.environ.get("WORKBENCH_SCREENSHOTS", REPO / "artifacts" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


class Timings:
    """Per-check timings of this worker's browser tests, printed (or written) at the end of the session."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.rows: list[str] = []

    def add(self, what: str, result: harness.NotebookResult | None = None, seconds: float | None = None) -> None:
        if result is not None:
            phases = ", ".join(f"{k} {v:.1f}" for k, v in result.phases.items())
            self.rows.append(f"{what:<45} {result.seconds:6.1f} s  ({phases}; changed by {result.changed_by})")
        else:
            self.rows.append(f"{what:<45} {seconds or 0.0:6.1f} s")


@pytest.fixture(scope="session")
def timings(request):
    t = Timings()
    yield t
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    text = "\n".join([f"browser suite ({worker}): {time.monotonic() - t.start:.1f} s wall, {len(t.rows)} check(s)",
                      *("  " + r for r in t.rows)])
    out = REPO / "artifacts" / "browser"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"timings-{worker}.txt").write_text(text + "\n")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and worker == "main":
        reporter.write_line("")
        for line in text.splitlines():
            reporter.write_line(line)
