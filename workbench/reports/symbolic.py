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
    from workbench.plots import MEASURED_COLOR, THEORY_COLOR, base_figure

    fig = base_figure("worst error / tolerance per check (pass: <= 1)", "check", "error / tolerance", log_y=True)
    labels = [f"{r.name} [{r.method}]" for r in table]
    ratios = [max(r.worst_ratio, 1e-16) for r in table]
    colors = [MEASURED_COLOR if r.passed else THEORY_COLOR for r in table]
    fig.add_trace(go.Bar(x=labels, y=ratios, marker_color=colors, name="error / tolerance"))
    fig.add_hline(y=1.0, line_dash="dash", line_color=THEORY_COLOR, annotation_text="tolerance")
    fig.update_layout(height=460, xaxis_tickangle=-40, showlegend=False)
    return fig


def _derivation_figure(results) -> go.Figure:
    """Closed form (line) vs each method's numerics (markers with tolerance bars), first output."""
    from workbench import symbolic
    from workbench.plots import THEORY_COLOR, base_figure

    first = results[0]
    deriv = symbolic.get(first.name)
    sweep = deriv.sweep[0]
    names = [str(s) for s in deriv.params]
    col = names.index(sweep) if sweep in names else 0
    fig = base_figure(f"{deriv.title}", sweep, first.outputs[0] if first.outputs else "value")
    pts = np.asarray(first.points, dtype=float).reshape(len(first.points), -1)[:, col]
    closed = np.asarray(first.closed, dtype=float).reshape(len(pts), -1)[:, 0]
    fig.add_trace(go.Scatter(x=pts, y=closed, mode="lines", name="closed form (sympy)", line_color=THEORY_COLOR))
    for r in results:
        num = np.asarray(r.numeric, dtype=float).reshape(len(pts), -1)[:, 0]
        tol = np.asarray(r.tolerances, dtype=float).reshape(len(pts), -1)[:, 0]
        fig.add_trace(go.Scatter(x=pts, y=num, mode="markers", name=f"{r.method} ({'pass' if r.passed else 'FAIL'})",
                                 error_y=dict(type="data", array=tol, visible=True)))
    fig.update_layout(height=360)
    return fig


def report_from_table(table, args: argparse.Namespace) -> Report:
    """Figures and the check table of a :class:`workbench.symbolic.CheckTable`, as a :class:`Report`."""
    by_name: dict[str, list] = {}
    for r in table:
        by_name.setdefault(r.name, []).append(r)
    figures = [("error_ratios", _ratio_figure(table))]
    for name, results in by_name.items():
        try:
            figures.append((f"derivation_{name}", _derivation_figure(results)))
        except (ValueError, IndexError, KeyError):  # an output that does not reshape to one value per point
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
