"""Symbolic derivations in sympy, each checked against an independent numerical computation.

Every entry of :data:`REGISTRY` is a :class:`~workbench.symbolic.core.Derivation`: assumptions,
the steps of a real sympy derivation (integrals, ``dsolve``, ``rsolve``, residues, ``solve``), the
closed form lambdified to JAX, and one or more numerical counterparts (Monte Carlo with its
standard error, quadrature, dense linear algebra, ODE solves, simulated or trained networks, and
the workbench's own numeric modules where they exist).

>>> from workbench import symbolic
>>> result = symbolic.check("erf_price")            # doctest: +SKIP
>>> print(symbolic.check_all())                    # doctest: +SKIP

From a shell (e.g. on a GPU machine): ``python -m workbench.symbolic``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from workbench.symbolic.core import CheckResult as CheckResult
from workbench.symbolic.core import CheckTable as CheckTable
from workbench.symbolic.core import Derivation as Derivation
from workbench.symbolic.core import Derived as Derived
from workbench.symbolic.core import Estimate as Estimate
from workbench.symbolic.core import Method as Method
from workbench.symbolic.core import Step as Step
from workbench.symbolic.core import run_check
from workbench.validation import check_choice


def _build_registry() -> dict[str, Derivation]:
    from workbench.symbolic import dynamics, finite_width, kernels, lr, ntk, rmt

    reg: dict[str, Derivation] = {}
    for module in (kernels, ntk, dynamics, rmt, lr, finite_width):
        for d in module.DERIVATIONS:
            if d.name in reg:
                raise RuntimeError(f"duplicate derivation name {d.name!r}")
            reg[d.name] = d
    return reg


#: name -> Derivation, in the order of the issue (kernels, NTK, dynamics, RMT, learning rate, finite width).
REGISTRY: dict[str, Derivation] = _build_registry()


def names() -> list[str]:
    """The registered derivations' names."""
    return list(REGISTRY)


def get(name: str) -> Derivation:
    """The derivation called ``name`` (ValueError listing the names otherwise)."""
    check_choice("name", name, tuple(REGISTRY))
    return REGISTRY[name]


def check(name: str, *, method: str | None = None, device: Any = None, precision: str = "highest",
          samples: int | None = None, num_points: int | None = None, seed: int = 0,
          closed_form: Sequence[Any] | None = None) -> CheckResult:
    """Run derivation ``name``'s closed form and one numerical counterpart and compare them.

    Args:
      name: a key of :data:`REGISTRY`.
      method: which numerical counterpart (default: the derivation's first).
      device: None (``jax.devices()[0]``), a platform name ("cpu", "gpu") or a ``jax.Device``; both
        the lambdified closed form and the JAX numerics run under ``jax.default_device(device)``.
      precision: JAX matmul precision ("highest" disables TF32 on GPUs), recorded in the result.
      samples: the method's size knob (Monte-Carlo draws, quadrature nodes, width...); default per method,
        smaller in fast mode.
      num_points: number of points along the derivation's swept parameter.
      seed: the random seed of the numerics.
      closed_form: replace the closed form (a tuple with one entry per output: a sympy expression, a
        number, or text such as ``"2*asin(K_12)/pi"``, which goes through the safe parser of
        :mod:`workbench.symbolic.expressions`, never ``sympify``), e.g. to show that a wrong formula fails.

    Returns:
      a :class:`CheckResult`: max abs/rel error, tolerance with its reason, pass/fail, device,
      precision, dtype and seconds.
    """
    return run_check(get(name), method=method, device=device, precision=precision, samples=samples,
                     num_points=num_points, seed=seed, closed_form=closed_form)


def check_all(names: Iterable[str] | None = None, *, all_methods: bool = True, device: Any = None,
              precision: str = "highest", samples: dict[str, int] | None = None, progress: bool = True,
              seed: int = 0) -> CheckTable:
    """Run every (derivation, method) pair whose method is available; returns a :class:`CheckTable`.

    ``samples`` maps ``"name"`` or ``"name/method"`` to a size knob overriding the method's default
    (sizes differ in meaning between methods: draws, nodes, widths). ``progress`` shows a ``tqdm.auto`` bar.
    """
    samples = dict(samples or {})
    unknown = [k for k in samples if k.split("/")[0] not in REGISTRY]
    if unknown:
        raise ValueError(f"samples has unknown derivation name(s) {unknown}; names are {tuple(REGISTRY)}")
    selected = [get(n) for n in (names if names is not None else REGISTRY)]
    jobs = [(d, m.name) for d in selected for m in (d.methods if all_methods else d.methods[:1]) if m.available()]
    table = CheckTable()
    iterator = jobs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, desc="symbolic checks")
    for d, method in iterator:
        n = samples.get(f"{d.name}/{method}", samples.get(d.name))
        table.append(run_check(d, method=method, device=device, precision=precision, samples=n, seed=seed))
    return table


__all__ = ["REGISTRY", "CheckResult", "CheckTable", "Derivation", "Derived", "Estimate", "Method", "Step",
           "check", "check_all", "get", "names"]
