"""A small Flax NNX convolutional network for 8x8 digits (or any (H, W, C) images): copy and edit.

    workbench report hessian --model examples.flax_cnn:make --data digits --n 256 --out r.html

``make()`` returns the module; the workbench turns it into ``apply_fn(params, x)`` with
:func:`workbench.models.functional` (``nnx.split`` / ``nnx.merge``; BatchNorm statistics, if you add any,
are held fixed in inference mode).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx


class SmallCNN(nnx.Module):
    """conv 3x3 (channels) -> relu -> conv 3x3 -> relu -> global average pool -> dense (num_classes)."""

    def __init__(self, *, in_channels: int = 1, channels: int = 8, num_classes: int = 10, seed: int = 0,
                 param_dtype=jnp.float32) -> None:
        rngs = nnx.Rngs(seed)
        self.conv1 = nnx.Conv(in_channels, channels, (3, 3), rngs=rngs, param_dtype=param_dtype)
        self.conv2 = nnx.Conv(channels, channels, (3, 3), rngs=rngs, param_dtype=param_dtype)
        self.head = nnx.Linear(channels, num_classes, rngs=rngs, param_dtype=param_dtype)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        h = nnx.relu(self.conv1(x))
        h = nnx.relu(self.conv2(h))
        return self.head(jnp.mean(h, axis=(1, 2)))  # (n, H, W, C) -> (n, num_classes)


def make(*, in_channels: int = 1, channels: int = 8, num_classes: int = 10, seed: int = 0) -> SmallCNN:
    """The CNN for 8x8 digits (1 channel, 10 classes); use ``in_channels=3`` for CIFAR-10."""
    return SmallCNN(in_channels=in_channels, channels=channels, num_classes=num_classes, seed=seed)
