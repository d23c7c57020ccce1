"""Experiments: measurements and sweeps that run a model (training, per-example gradients, Hessian products)
and return the statistics the theories predict. Above the theories (they fill the theories' result types),
below the studies (which combine them per notebook topic).

* :mod:`~workbench.experiments.gradient_noise`: exact gradient-noise statistics and two-batch estimates;
* :mod:`~workbench.experiments.curvature`: top Hessian eigenpair, per-example curvatures, Hessian variance;
* :mod:`~workbench.experiments.sweep`: the resumable, device-sharded learning-rate x batch-size sweep.
"""

from workbench.experiments.curvature import CurvatureStats, curvature_stats
from workbench.experiments.gradient_noise import batch_grad_sq_norms, gradient_noise_stats, two_batch_noise_scale
from workbench.experiments.sweep import SWEEP_OPTIMIZERS, sweep, sweep_point_path

__all__ = ["SWEEP_OPTIMIZERS", "CurvatureStats", "batch_grad_sq_norms", "curvature_stats", "gradient_noise_stats",
           "sweep", "sweep_point_path", "two_batch_noise_scale"]
