"""Learning rate versus batch size (docs/theory.md#9-learning-rate-and-batch-size), one concept per module:

* :mod:`~workbench.lr_batch.theory`: closed forms (sampling factor c_B, McCandlish's noise scales and
  steps/examples trade-off, SGD/GD/EoS stability limits, the random-matrix max lr, scaling-law calculators);
* :mod:`~workbench.lr_batch.analysis`: estimates from measurements (two-batch noise-scale estimators, the
  trade-off fit, largest stable and optimal lr of a :class:`SweepResult`, power-law fits);
* :mod:`~workbench.lr_batch.quadratic`: the noisy-quadratic model and its vmapped SGD simulator.

Measurements on a model (gradient-noise and curvature statistics) and the resumable sweep driver run
training, so they live one layer up, in :mod:`workbench.experiments`; their old names here still resolve for
one release, with a DeprecationWarning.
"""

from __future__ import annotations

import importlib
from typing import Any

from workbench._compat import warn_deprecated
from workbench.lr_batch._inputs import ArrayLike, check_batch_sizes, check_lrs, lr_grid
from workbench.lr_batch.analysis import (LrEstimate, PowerLawFit, SweepResult, TradeoffFit, TwoBatchEstimate,
                                         best_loss, final_loss, fit_power_law, fit_steps_examples, max_stable_lr,
                                         noise_scale_estimate, noise_scale_estimators, optimal_lr, steps_to_target,
                                         steps_to_target_per_batch)
from workbench.lr_batch.quadratic import (QUADRATIC_OPTIMIZERS, NoisyQuadratic, noisy_quadratic_expected_loss,
                                          noisy_quadratic_stability_limit, noisy_quadratic_stats,
                                          random_noisy_quadratic, simulate_noisy_quadratic)
from workbench.lr_batch.theory import (EOS_OPTIMIZERS, NoiseScale, critical_batch_size, critical_batch_tradeoff,
                                       eos_threshold, expected_batch_grad_sq_norm, gd_stability_limit,
                                       max_lr_from_sharpness, mccandlish_critical_batch,
                                       kaplan_critical_batch, mccandlish_optimal_lr, noise_scale, rmt_critical_batch,
                                       rmt_max_lr, sampling_factor, scaling_rule, sgd_stability_limit_1d,
                                       simple_noise_scale, step_law)

# names that moved up to workbench.experiments (they run models): resolved on first use, with a
# DeprecationWarning, so that this theory package never imports the layer above it (not in __all__)
_MOVED = {
    "CurvatureStats": "workbench.experiments.curvature",
    "curvature_stats": "workbench.experiments.curvature",
    "batch_grad_sq_norms": "workbench.experiments.gradient_noise",
    "gradient_noise_stats": "workbench.experiments.gradient_noise",
    "two_batch_noise_scale": "workbench.experiments.gradient_noise",
    "SWEEP_OPTIMIZERS": "workbench.experiments.sweep",
    "sweep": "workbench.experiments.sweep",
    "sweep_point_path": "workbench.experiments.sweep",
}

__all__ = ["ArrayLike", "EOS_OPTIMIZERS", "LrEstimate", "NoiseScale", "NoisyQuadratic", "PowerLawFit",
           "QUADRATIC_OPTIMIZERS", "SweepResult", "TradeoffFit", "TwoBatchEstimate", "best_loss", "check_batch_sizes",
           "check_lrs", "critical_batch_size", "critical_batch_tradeoff", "eos_threshold",
           "expected_batch_grad_sq_norm", "final_loss", "fit_power_law", "fit_steps_examples", "gd_stability_limit",
           "kaplan_critical_batch", "lr_grid", "max_lr_from_sharpness", "max_stable_lr", "mccandlish_critical_batch",
           "mccandlish_optimal_lr", "noise_scale", "noise_scale_estimate", "noise_scale_estimators",
           "noisy_quadratic_expected_loss", "noisy_quadratic_stability_limit", "noisy_quadratic_stats", "optimal_lr",
           "random_noisy_quadratic", "rmt_critical_batch", "rmt_max_lr", "sampling_factor", "scaling_rule",
           "sgd_stability_limit_1d", "simple_noise_scale", "simulate_noisy_quadratic", "step_law", "steps_to_target",
           "steps_to_target_per_batch"]


def __getattr__(name: str) -> Any:
    if name in _MOVED:  # deprecated for one release: import from workbench.experiments
        warn_deprecated(f"workbench.lr_batch.{name}", f"workbench.experiments.{name} (defined in {_MOVED[name]})")
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'workbench.lr_batch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MOVED))
