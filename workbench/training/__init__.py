"""Training: :mod:`~workbench.training.loop` (GD / SGD / momentum / Adam for any model, vmapped over learning
rates and seeds, divergence as a result) and :mod:`~workbench.training.mlp` (:func:`train_mlp`, the
convenience wrapper for :class:`~workbench.nets.MLP` with its losses, muP multipliers and NTK snapshots)."""

from workbench.training.loop import OPTIMIZERS, SAMPLINGS, Batch, Params, TrainResult, train
from workbench.training.mlp import LOSSES, REDUCTIONS, train_mlp

__all__ = ["LOSSES", "OPTIMIZERS", "REDUCTIONS", "SAMPLINGS", "Batch", "Params", "TrainResult", "train", "train_mlp"]
