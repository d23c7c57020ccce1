"""An Equinox MLP classifier for flattened images: copy and edit.

    workbench report noise --model examples.equinox_mlp:make --data digits --n 256 --out r.html

``eqx.nn.MLP`` acts on one example; :func:`workbench.models.functional` vmaps it over the batch and trains
every floating-point array (``eqx.partition(module, eqx.is_inexact_array)``). It expects flat inputs: the
command line and the panel flatten images for it (a module that takes (H, W, C) images can do its own
reshaping instead).
"""

from __future__ import annotations

import equinox as eqx
import jax


def make(*, in_size: int = 64, width: int = 64, depth: int = 2, num_classes: int = 10, seed: int = 0) -> eqx.nn.MLP:
    """An MLP ``in_size -> width x depth (tanh) -> num_classes`` (64 inputs: 8x8 digits)."""
    return eqx.nn.MLP(in_size, num_classes, width, depth, activation=jax.nn.tanh, key=jax.random.PRNGKey(seed))
