"""The result type of a paper reproduction: checks (measured vs predicted, with a derived tolerance) and a verdict.

A :class:`Check` compares one measured number with the paper's prediction. Its ``kind`` says how:

* ``"equal"``: passes when |measured - predicted| <= tolerance;
* ``"at_most"``: passes when measured <= predicted + tolerance (an upper bound such as tr H <= 2/eta);
* ``"at_least"``: passes when measured >= predicted - tolerance.

Every tolerance carries ``reason``, the sentence that derives its size (standard errors over seeds, grid
spacing, quadrature error). With a ``stderr`` the check also needs ``SIGMAS * stderr <= resolution`` (default:
the tolerance itself): a measurement too noisy to tell the prediction from its competitors is reported as
*unresolved* and does not pass.
Checks with ``in_verdict=False`` are reported quantities (shown, never part of the verdict).

:meth:`Reproduction.with_predictions` re-evaluates the checks against other predicted values (a
deliberately wrong prediction must make the entry fail); this needs no recomputation because a check is a
pure comparison of the stored measurement with the prediction.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

#: standard errors a statistical tolerance spans (about a 99.7% two-sided band for a Gaussian estimate)
SIGMAS = 3.0
KINDS = ("equal", "at_most", "at_least")


@dataclasses.dataclass(frozen=True)
class Check:
    """One measured quantity against its prediction, with the tolerance and why it is that size."""

    name: str
    measured: float
    predicted: float
    tolerance: float
    reason: str
    kind: str = "equal"
    stderr: float | None = None
    in_verdict: bool = True
    resolution: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not (self.tolerance >= 0):
            raise ValueError(f"check {self.name!r}: tolerance must be >= 0, got {self.tolerance}")

    @property
    def deviation(self) -> float:
        """measured - predicted."""
        return float(self.measured) - float(self.predicted)

    @property
    def resolved(self) -> bool:
        """False when the measurement's own noise (SIGMAS standard errors) is wider than the tolerance."""
        limit = self.tolerance if self.resolution is None else self.resolution
        return self.stderr is None or (math.isfinite(self.stderr) and SIGMAS * self.stderr <= limit * (1 + 1e-9))

    @property
    def passed(self) -> bool:
        m, p, t = float(self.measured), float(self.predicted), float(self.tolerance)
        if not (math.isfinite(m) and math.isfinite(p)):
            return False
        if self.kind == "equal":
            ok = abs(m - p) <= t
        elif self.kind == "at_most":
            ok = m <= p + t
        else:
            ok = m >= p - t
        return bool(ok and self.resolved)

    def relation(self) -> str:
        sym = {"equal": "=", "at_most": "<=", "at_least": ">="}[self.kind]
        return f"{sym} {self.predicted:.4g} +- {self.tolerance:.3g}" if self.kind == "equal" else \
            f"{sym} {self.predicted:.4g} (+ {self.tolerance:.3g})"

    def line(self) -> str:
        se = f" (se {self.stderr:.2g})" if self.stderr is not None else ""
        word = "pass" if self.passed else ("UNRESOLVED" if not self.resolved else "FAIL")
        if not self.in_verdict:
            word = "reported"
        return f"{self.name}: {self.measured:.4g}{se} {self.relation()} -> {word}"


@dataclasses.dataclass
class Reproduction:
    """A paper's claim reproduced on a small setting.

    Attributes:
      name: the registry name; reference: the paper (authors, year, title, venue).
      claim: the claim in one sentence; setting: what is measured here and how far it is from the paper.
      checks: the verdict checks and the reported quantities (``in_verdict=False``).
      notes: plain statements, e.g. where the toy setting does not show the claim.
      data: the arrays each figure needs (a dict of dicts, one per figure; see :mod:`workbench.plots.papers`).
      device, precision: what produced the numbers; fast: whether the small sizes of fast mode were used.
      key: the seed; elapsed_s: wall time of the computation; parameters: the sizes used.
    """

    name: str
    reference: str
    claim: str
    setting: str
    checks: list[Check]
    data: dict[str, Any]
    device: str
    precision: str
    fast: bool
    key: int
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    elapsed_s: float | None = None

    @property
    def verdict_checks(self) -> list[Check]:
        return [c for c in self.checks if c.in_verdict]

    @property
    def reported(self) -> list[Check]:
        return [c for c in self.checks if not c.in_verdict]

    @property
    def passed(self) -> bool:
        """True when every verdict check passes (and there is at least one)."""
        v = self.verdict_checks
        return bool(v) and all(c.passed for c in v)

    def check(self, name: str) -> Check:
        """The check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no check {name!r}; checks: {[c.name for c in self.checks]}")

    def with_predictions(self, predicted: Mapping[str, float]) -> Reproduction:
        """A copy whose checks use other predicted values (keys: check names). A reported quantity given a
        prediction here joins the verdict (you asked to test that prediction)."""
        names = {c.name for c in self.checks}
        bad = sorted(set(predicted) - names)
        if bad:
            raise ValueError(f"predicted names {bad} are not checks of {self.name}; choose from {sorted(names)}")
        checks = [dataclasses.replace(c, predicted=float(predicted[c.name]), in_verdict=True)
                  if c.name in predicted else c for c in self.checks]
        return dataclasses.replace(self, checks=checks)

    def summary(self) -> str:
        """A few lines: the verdict, the claim and each check."""
        head = f"{self.name}: {'PASSED' if self.passed else 'FAILED'} ({self.device}, {self.precision}" \
               f"{', fast' if self.fast else ''})"
        lines = [head, f"  claim: {self.claim}"] + ["  " + c.line() for c in self.checks]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:  # notebooks show the verdict as a table
        rows = ["| check | measured | prediction | tolerance (why) | result |", "|---|---|---|---|---|"]
        for c in self.checks:
            se = f" ± {c.stderr:.2g}" if c.stderr is not None else ""
            res = "reported" if not c.in_verdict else ("pass" if c.passed else
                                                        ("unresolved" if not c.resolved else "**FAIL**"))
            rows.append(f"| {c.name} | {c.measured:.4g}{se} | {c.relation()} | {c.tolerance:.3g} ({c.reason}) "
                        f"| {res} |")
        verdict = "**passed**" if self.passed else "**FAILED**"
        notes = "".join(f"\n- {n}" for n in self.notes)
        return (f"**{self.name}** — verdict {verdict} ({self.device}, {self.precision}"
                f"{', fast mode' if self.fast else ''})\n\n{self.claim}\n\n" + "\n".join(rows) + notes)


def slope_with_stderr(x: Any, values: Any) -> tuple[float, float]:
    """Log-log slope of the seed mean of ``values`` (shape (len(x), seeds)) against ``x``, and its standard error.

    The standard error propagates each point's seed scatter (delta method, Var log m ~ s^2/(S m^2)) through
    the least-squares weights, and adds the residual scatter about the line when there are > 2 points
    (whichever is larger), so neither seed noise nor curvature of the log-log curve is hidden.
    """
    import numpy as np

    x = np.log(np.asarray(x, float))
    v = np.asarray(values, float)
    if v.ndim == 1:
        v = v[:, None]
    mean = v.mean(axis=1)
    if np.any(mean <= 0) or not np.all(np.isfinite(mean)):
        return math.nan, math.nan
    y = np.log(mean)
    slope, intercept = np.polyfit(x, y, 1)
    w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    s = v.shape[1]
    var_y = (v.std(axis=1, ddof=1) ** 2 / (s * mean ** 2)) if s > 1 else np.zeros_like(mean)
    se_seed = math.sqrt(float(np.sum(w ** 2 * var_y)))
    se_fit = 0.0
    if x.size > 2:
        resid = y - (slope * x + intercept)
        se_fit = math.sqrt(float(resid @ resid) / (x.size - 2) / float(np.sum((x - x.mean()) ** 2)))
    return float(slope), max(se_seed, se_fit)


#: finite-width allowance on a fitted log-log slope (the issue's band), and the resolution a slope needs: half the
#: spacing 1/2 between the competing predictions (SP +1/2, muP 0, NTK -1/2), so SIGMAS se <= 0.25 tells them apart
SLOPE_BAND = 0.15
SLOPE_RESOLUTION = 0.25


def slope_check(name: str, measured: float, stderr: float, predicted: float, context: str, **kw: Any) -> Check:
    """A log-log slope against its prediction: tolerance max(SLOPE_BAND, SIGMAS se), resolved when SIGMAS se <=
    SLOPE_RESOLUTION. ``context`` says what the slope was fitted over."""
    tol = max(SLOPE_BAND, SIGMAS * stderr) if math.isfinite(stderr) else SLOPE_BAND
    reason = (f"max of the finite-width band {SLOPE_BAND} and {SIGMAS:g} standard errors (se {stderr:.2g}: seed "
              f"scatter and fit residuals) over {context}; resolved when {SIGMAS:g} se <= {SLOPE_RESOLUTION} (half "
              f"the 1/2 spacing between competing predicted slopes)")
    return Check(name, measured, predicted, tol, reason, stderr=stderr, resolution=SLOPE_RESOLUTION, **kw)


__all__ = ["KINDS", "SIGMAS", "SLOPE_BAND", "SLOPE_RESOLUTION", "Check", "Reproduction", "slope_check",
           "slope_with_stderr"]
