"""workbench: an interactive theory workbench for deep learning on JAX.

Layers (see ARCHITECTURE.md): ``config`` -> building blocks (``nets``, ``data``,
``kernels``, ``linalg``, ``hessian``, ``training``) -> theories (``dynamics``,
``generalization``, ``rmt``, ``lr_batch``) -> ``symbolic`` -> presentation
(``plots``, ``panels``, ``cli``). Import submodules explicitly, e.g.
``from workbench.nets import MLP``; the names below are the most used ones.
"""

from workbench.config import device_report as device_report
from workbench.config import fast_mode as fast_mode
from workbench.config import set_precision as set_precision
from workbench.nets import MLP as MLP

__version__ = "0.1.0"

__all__ = ["MLP", "device_report", "fast_mode", "set_precision"]
