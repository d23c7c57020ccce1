"""Report ``symbolic``: every sympy derivation's closed form against its numerical counterparts.

Runs :func:`workbench.symbolic.check_all` (the function behind ``workbench check`` and the symbolic
notebook) and shows: the worst error / tolerance per check (a check passes when every point's error is
within its stated tolerance, i.e. the ratio is <= 1), and, per derivation, the closed form against the
numerics along the swept parameter.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from workbench.reports import Report, Table, fmt

DESCRIPTION = __doc__.split("\n\n")[1] if __doc__ else ""
#: verification numbers: float64 unless asked otherwise
DEFAULT_PRECISION = "float64"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--names", default=None, metavar="A,B",
                   help="comma-separated derivation names (default: all registered derivations)")
    p.add_argument("--first-method-only", action="store_true",
                   help="one numerical counterpart per derivation instead of all")
    p.add_argument("--device", default=None, help="JAX platform to run on (cpu, gpu); default: the first device")


def run_checks(names: Sequence[str] | None, *, all_methods: bool = True, device: Any = None,
               progress: bool = True):
    """:func:`workbench.symbolic.check_all` over ``names`` (all when None); unknown names raise ValueError."""
    from workbench import symbolic

    if names is not None:
        unknown = [n for n in names if n not in symbolic.REGISTRY]
        if unknown:
            raise ValueError(f"unknown derivation name(s) {unknown}; names are {', '.join(symbolic.names())}")
    return symbolic.check_all(names, all_methods=all_methods, device=device, progress=progress)


def _ratio_figure(table) -> go.Figure:
    from workbench.plots.symbolic import error_ratio_figure

    return error_ratio_figure([f"{r.name} [{r.method}]" for r in table], [r.worst_ratio for r in table],
                              [r.passed for r in table], title="worst error / tolerance per check (pass: <= 1)")


def _derivation_figure(result) -> go.Figure:
    """The notebook's check figure: closed form (dense curve where defined) vs numerics +- tolerance,
    first output, along the swept parameter."""
    from workbench import symbolic
    from workbench.plots.symbolic import check_figure
    from workbench.studies.symbolic import dense_curve

    deriv = symbolic.get(result.name)
    sweep = deriv.sweep[0]
    names = list(getattr(deriv, "point_names", [str(p) for p in deriv.params]))
    col = names.index(sweep) if sweep in names else 0
    n = len(result.points)
    first = (lambda a: np.asarray(a, dtype=float).reshape(n, -1)[:, 0])
    curve = dense_curve(deriv, result)
    if curve is not None:
        curve = (curve[0], np.asarray(curve[1], dtype=float).reshape(len(curve[0]), -1)[:, 0])
    return check_figure(np.asarray(result.points, dtype=float).reshape(n, -1)[:, col], first(result.closed),
                        first(result.numeric), first(result.tolerances), sweep_name=sweep,
                        output_name=result.outputs[0] if result.outputs else "value", curve=curve,
                        title=f"{deriv.title} [{result.method}: {'pass' if result.passed else 'FAIL'}]")


def report_from_table(table, args: argparse.Namespace) -> Report:
    """Figures and the check table of a :class:`workbench.symbolic.CheckTable`, as a :class:`Report`."""
    by_name: dict[str, list] = {}
    for r in table:
        by_name.setdefault(r.name, []).append(r)
    figures = [("error_ratios", _ratio_figure(table))]
    for name, results in by_name.items():
        try:
            figures.append((f"derivation_{name}", _derivation_figure(results[0])))
        except (ValueError, IndexError, KeyError, AttributeError):  # outputs that are not one value per point
            continue
    rows = [[r.name, r.method, r.max_abs_err, r.max_rel_err, r.tolerance, r.worst_ratio, r.passed, r.samples,
             r.device, r.dtype, r.precision, r.seconds] for r in table]
    tables = [Table("checks (closed form vs numerics)",
                    ["derivation", "method", "max abs err", "max rel err", "tolerance", "err/tol", "passed",
                     "samples", "device", "dtype", "matmul", "seconds"], rows),
              Table("why each tolerance", ["derivation", "method", "tolerance"],
                    [[r.name, r.method, r.tolerance_reason] for r in table])]
    n_fail = sum(not r.passed for r in table)
    return Report(
        study="symbolic", title="Symbolic derivations checked against numerical results",
        summary=(f"{len(table)} checks of {len(by_name)} derivations: {len(table) - n_fail} passed, {n_fail} failed. "
                 "Each closed form (sympy, lambdified to JAX) is compared with an independent numerical "
                 "computation at several points; a check passes when every error is within its stated tolerance."),
        figures=figures, tables=tables,
        parameters={"names": ", ".join(by_name), "all methods": not getattr(args, "first_method_only", False),
                    "device": getattr(args, "device", None) or "default", "precision": fmt(args.precision)},
        passed=table.all_passed,
    )


def build(args: argparse.Namespace) -> Report:
    names = [n for n in args.names.replace(" ", "").split(",") if n] if args.names else None
    table = run_checks(names, all_methods=not args.first_method_only, device=args.device, progress=args.progress)
    return report_from_table(table, args)
