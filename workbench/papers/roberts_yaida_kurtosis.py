"""Roberts, Yaida & Hanin: the finite-width kurtosis of a deep relu network at criticality.

Moved here from the symbolic check ``finite_width_kurtosis`` (:mod:`workbench.symbolic.finite_width`, whose
tests stay): E z^4 / (3 (E z^2)^2) = (1 + 5/n)^(L - 1) at depth L for relu at C_W = 2 without biases, exact
at every width, against simulated random networks.
"""

from __future__ import annotations

import numpy as np

from workbench import config
from workbench.papers.base import Check, Reproduction
from workbench.symbolic.core import MC_SIGMAS
from workbench.symbolic.finite_width import kurtosis_simulated

REFERENCE = "Roberts, Yaida & Hanin 2022, The Principles of Deep Learning Theory, Cambridge University Press, ch. 5"
CLAIM = ("At criticality a deep relu network's preactivation has E z^4 / (3 (E z^2)^2) = (1 + 5/n)^(L-1): "
         "non-Gaussianity grows with depth over width.")


def run(*, fast: bool, key: int) -> Reproduction:
    width = 16
    depths = np.arange(1, 6)
    samples = 5_000 if fast else 200_000
    with config.precision("float64"):
        device = config.device_report()
        est = kurtosis_simulated(np.stack([depths, np.full_like(depths, width)], 1).astype(float), samples=samples,
                                 seed=key)
    pred = (1 + 5 / width) ** (depths - 1)
    checks = [Check(f"kurtosis ratio L={d}", float(est.values[i, 0]), float(pred[i]), float(est.tolerance[i, 0]),
                    f"{MC_SIGMAS:g} delta-method standard errors over {samples} simulated networks (the symbolic "
                    f"checks' Monte Carlo band) plus a float64 round-off floor")
              for i, d in enumerate(depths)]
    setting = (f"Width n = {width}, depths 1-5, relu, C_W = 2, no biases, fixed input: the book's setting exactly, "
               f"{samples} random networks.")
    data = {"kurtosis": {"depths": depths, "measured": est.values[:, 0], "tolerance": est.tolerance[:, 0],
                         "predicted": pred, "width": width}}
    return Reproduction("roberts_yaida_kurtosis", REFERENCE, CLAIM, setting, checks, data, device, "float64", fast,
                        key, {"width": width, "depths": depths.tolist(), "samples": samples})
