"""A composable network language with finite-width forward passes and infinite-width kernels.

``serial(Conv(16, (3, 3), w_std=2**0.5), Relu(), GlobalAvgPool(), Dense(1))`` builds a
:class:`Net` with ``init``, ``apply``, ``kernels`` (NNGP and NTK, neural-tangents ``stax`` 0.6.5
conventions: NTK parametrization by default, channels last) and ``describe``. One concept per
module: :mod:`.base` (protocol, kernel state, window sums), :mod:`.dense`, :mod:`.conv`,
:mod:`.pooling`, :mod:`.elementwise`, :mod:`.normalization`, :mod:`.attention`,
:mod:`.combinators` (chains, ``Residual``), :mod:`.net` (``serial``, ``Net``).
See docs/ARCHITECTURE.md and docs/theory.md.
"""

from workbench.layers.attention import SelfAttention
from workbench.layers.base import KernelState, Layer, LayerShapeError
from workbench.layers.combinators import Residual
from workbench.layers.conv import Conv
from workbench.layers.dense import Dense
from workbench.layers.elementwise import Activation, Erf, Gelu, Relu, Tanh
from workbench.layers.net import Net, mlp_params, serial
from workbench.layers.normalization import LayerNorm
from workbench.layers.pooling import AvgPool, Flatten, GlobalAvgPool

__all__ = [
    "Activation", "AvgPool", "Conv", "Dense", "Erf", "Flatten", "Gelu", "GlobalAvgPool", "KernelState", "Layer",
    "LayerNorm", "LayerShapeError", "Net", "Relu", "Residual", "SelfAttention", "Tanh", "mlp_params", "serial",
]
