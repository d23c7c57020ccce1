"""Test configuration: float64 verification by default, strict rank promotion, seeded keys.

Tolerances by dtype live in :data:`TOL` (one place, as in jax's test_util): an exact
identity in float64 is held to about 1e-10 relative; in float32 to about 1e-5.
"""

from __future__ import annotations

import os

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


def _order(item: pytest.Item) -> int:
    """Notebooks (nbmake) first, then the real-browser tests, then the rest (a stable sort keeps file order)."""
    path = str(item.path)
    if path.endswith(".ipynb"):
        return 0
    return 1 if "/tests/browser/" in path.replace("\\", "/") else 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run order (pytest-xdist hands out whole files in this order): nbmake's notebook runs fill JAX's persistent
    compilation cache (``./run test`` sets it) before the JupyterLab and Voila runs of the same notebooks, and the
    long browser files start early so the short unit-test files even out the two workers at the end."""
    items.sort(key=_order)
    if os.environ.get("WORKBENCH_SLOW") != "1":
        skip = pytest.mark.skip(reason="slow tier (minutes on 2 cores): run with WORKBENCH_SLOW=1 ./run test")
        for item in items:
            if item.get_closest_marker("slow") is not None:
                item.add_marker(skip)
