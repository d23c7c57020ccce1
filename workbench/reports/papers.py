"""Report ``reproduce``: paper reproductions (:mod:`workbench.papers`) as one standalone HTML file.

Used by ``workbench reproduce NAME --out r.html`` (and ``--all --out``): the claim, what is measured and how
far the toy setting is from the paper, every check (measured, predicted, tolerance and why), the verdict,
the figures of :mod:`workbench.plots.papers`, the sizes used and the device and precision.
"""

from __future__ import annotations

from collections.abc import Sequence

from workbench.reports import Report, Table


def checks_table(rep) -> Table:
    """One row per check: name, measured, standard error, predicted, relation, tolerance, result, why."""
    rows = []
    for c in rep.checks:
        result = "reported" if not c.in_verdict else ("pass" if c.passed else
                                                      ("unresolved" if not c.resolved else "FAIL"))
        rows.append([c.name, c.measured, c.stderr, c.predicted, c.kind, c.tolerance, result, c.reason])
    return Table(f"{rep.name}: checks ({'passed' if rep.passed else 'FAILED'})",
                 ["check", "measured", "std. error", "predicted", "kind", "tolerance", "result", "why this tolerance"],
                 rows)


def build_report(reps: Sequence) -> Report:
    """A :class:`~workbench.reports.Report` of one or several reproductions."""
    from workbench.plots.papers import figures

    reps = list(reps)
    if not reps:
        raise ValueError("build_report needs at least one Reproduction")
    figs, tables, params, refs, summary = [], [], {}, [], []
    for rep in reps:
        prefix = f"{rep.name}-" if len(reps) > 1 else ""
        figs += [(prefix + name, fig) for name, fig in figures(rep)]
        tables.append(checks_table(rep))
        for k, v in rep.parameters.items():
            params[prefix + k] = v
        params[prefix + "fast"] = rep.fast
        params[prefix + "key"] = rep.key
        params[prefix + "precision"] = rep.precision
        refs.append(rep.reference)
        summary.append(f"{rep.name}: {rep.claim} Setting: {rep.setting} " + " ".join(rep.notes))
    if len(reps) > 1:
        tables.insert(0, Table("verdicts", ["entry", "verdict", "seconds"],
                               [[r.name, "passed" if r.passed else "FAILED", r.elapsed_s] for r in reps]))
    title = f"Reproduction: {reps[0].name}" if len(reps) == 1 else f"Reproductions ({len(reps)} entries)"
    return Report("reproduce", title, " ".join(summary), figs, tables, params, device=reps[0].device,
                  references=refs, passed=all(r.passed for r in reps))


__all__ = ["build_report", "checks_table"]
