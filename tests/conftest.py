"""Test configuration: float64 verification by default, strict rank promotion, seeded keys.

Tolerances by dtype live in :data:`TOL` (one place, as in jax's test_util): an exact
identity in float64 is held to about 1e-10 relative; in float32 to about 1e-5.
"""

from __future__ import annotations

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
