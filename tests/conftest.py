"""Test configuration: float64 verification by default, strict rank promotion, seeded keys.

Tolerances by dtype live in :data:`TOL` (one place, as in jax's test_util): an exact
identity in float64 is held to about 1e-10 relative; in float32 to about 1e-5.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

#: Default relative tolerances for exact identities, by dtype.
TOL = {"float64": 1e-10, "float32": 1e-5}


@pytest.fixture
def key() -> jax.Array:
    """A fixed PRNG key; split it in the test rather than writing literal seeds everywhere."""
    return jax.random.PRNGKey(20261123)


#: seconds per test file in the fast tier on 2 cores (``./run test``); refreshed with ``python -m tests.durations``
#: from the per-file times that every run records in ``.cache/test-durations/``
DURATIONS_FILE = Path(__file__).with_name("durations.json")
RECORD_DIR = Path(__file__).resolve().parents[1] / ".cache" / "test-durations"


def _file(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _rank(item: pytest.Item, durations: dict[str, float], default: float) -> tuple[int, float]:
    """Notebooks (nbmake) first, then the real-browser files, then the unit-test files, longest first."""
    path = _file(item)
    if path.endswith(".ipynb"):
        return (0, -durations.get(path, default))
    return (1 if path.startswith("tests/browser/") else 2, -durations.get(path, default))


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist (3.x) reorders the files of --dist loadfile by their number of tests unless told not to, which
    # put the one-test notebook files last; the order below is the one wanted
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run order (pytest-xdist hands out whole files in this order, as they free up): nbmake's notebook runs fill
    JAX's persistent compilation cache (``./run test`` sets it) before the JupyterLab and Voila runs of the same
    notebooks; then the long browser files; then the unit-test files, longest first by :data:`DURATIONS_FILE`
    (longest-processing-time-first keeps the two workers' finishing times close). A file missing from it counts
    as the median file."""
    try:
        durations = {k: float(v) for k, v in json.loads(DURATIONS_FILE.read_text()).items() if not k.startswith("_")}
    except (OSError, ValueError):
        durations = {}
    default = float(statistics.median(durations.values())) if durations else 0.0
    items.sort(key=lambda item: _rank(item, durations, default))
    if os.environ.get("WORKBENCH_SLOW") != "1":
        skip = pytest.mark.skip(reason="slow tier (minutes on 2 cores): run with WORKBENCH_SLOW=1 ./run test")
        for item in items:
            if item.get_closest_marker("slow") is not None:
                item.add_marker(skip)


_times: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add up the seconds of each test file (setup, call and teardown) for :data:`RECORD_DIR`."""
    path = report.nodeid.split("::", 1)[0]
    _times[path] = _times.get(path, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if not _times or (worker == "main" and getattr(session.config.option, "dist", "no") != "no"):
        return  # the xdist controller sees its workers' reports too: the workers record them
    try:
        RECORD_DIR.mkdir(parents=True, exist_ok=True)
        (RECORD_DIR / f"{worker}.json").write_text(json.dumps(_times, indent=0, sort_keys=True))
    except OSError:
        pass  # a read-only checkout records nothing
