"""The tour's study (notebook 00): random NTK-parametrized MLPs drawn on a great circle of the sphere.

As the width grows the draws stay O(1) and become smoother samples of the NNGP (Neal 1996; Lee et al. 2018).
"""

from __future__ import annotations

import jax
import numpy as np

from workbench.data import great_circle
from workbench.nets import MLP, sample_functions
from workbench.validation import check_positive_int

__all__ = ["WIDTHS", "tour_draws"]

WIDTHS = (4, 16, 64, 256, 1024, 4096)


def tour_draws(width: int, depth: int, activation: str, num_draws: int, *, dim: int = 3,
               num_points: int = 200, w_std: float = 2 ** 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Angles (num_points,) and outputs (num_draws, num_points) of random NTK-parametrized MLPs on a great circle."""
    num_draws = check_positive_int("num_draws", num_draws)
    net = MLP(depth=depth, width=width, activation=activation, w_std=w_std, b_std=0.0)
    t, x = great_circle(num_points, dim)
    out = sample_functions(net, x, num_draws, key=jax.random.PRNGKey(seed))[..., 0]
    return np.asarray(t), np.asarray(out)
