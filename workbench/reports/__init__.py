"""Headless reports: run a study with the same functions the panels call, write one standalone HTML file.

A report is a :class:`Report` (figures, tables of the numbers, the parameters, the device report) written
by :func:`write_report`, which embeds plotly.js once (the file opens offline, in any browser) and writes
atomically: a temporary file in the target directory renamed at the end, so a failed run leaves no partial
report behind.

One module per study (``workbench.reports.ntk``, ``.dynamics``, ``.hessian``, ``.lr_batch``, ``.symbolic``)
defines ``add_arguments(parser)`` (its command-line options, with defaults that follow fast mode) and
``build(args) -> Report``. :data:`STUDIES` maps the command-line name to the module; the command line
(:mod:`workbench.cli`) imports a module only when its study is asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import html
import importlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from workbench import config

#: command-line name -> (module, one-line description)
STUDIES: dict[str, tuple[str, str]] = {
    "ntk": ("workbench.reports.ntk", "NTK eigenspectra: empirical vs infinite-width kernels across widths"),
    "dynamics": ("workbench.reports.dynamics", "generalization dynamics: linearized (kernel) vs real training"),
    "hessian": ("workbench.reports.hessian", "batch-Hessian spectra across batch sizes vs random-matrix bounds"),
    "lr-batch": ("workbench.reports.lr_batch", "learning rate vs batch size: theory curves vs measured sweeps"),
    "noise": ("workbench.reports.model", "gradient noise scale (exact and two-batch) of your model (--model) on a data set"),
    "symbolic": ("workbench.reports.symbolic", "symbolic derivations checked against numerical results"),
}


@dataclasses.dataclass
class Table:
    """A table of numbers: a title, column names and rows (already formatted or plain numbers)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: row {i} has {len(row)} cells, expected "
                                 f"{len(self.columns)} (columns {list(self.columns)})")


@dataclasses.dataclass
class Report:
    """Everything one report shows. ``figures`` are (name, figure) pairs; ``parameters`` are the study's inputs."""

    study: str
    title: str
    summary: str
    figures: list[tuple[str, go.Figure]]
    tables: list[Table]
    parameters: dict[str, Any]
    device: str = dataclasses.field(default_factory=config.device_report)
    elapsed_s: float | None = None
    references: list[str] = dataclasses.field(default_factory=list)
    command: str | None = None
    passed: bool | None = None


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` significant digits, None as a dash, everything else as str."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        import numpy as np

        if isinstance(value, (float, np.floating)):
            return f"{float(value):.{digits}g}"
        if isinstance(value, np.integer):
            return str(int(value))
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    return str(value)


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.verdict-pass { color: #070; font-weight: bold; } .verdict-fail { color: #b00; font-weight: bold; }
.figure { margin: 1em 0; }
"""


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in table.rows)
    return (f"<h3>{html.escape(table.title)}</h3>\n<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def render_html(report: Report) -> str:
    """The report as one standalone HTML page (plotly.js embedded once, before the first figure)."""
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f"<p class='meta'>workbench report <code>{html.escape(report.study)}</code> &middot; "
        f"{html.escape(_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))} &middot; "
        f"{html.escape(report.device)}"
        + (f" &middot; {report.elapsed_s:.1f} s" if report.elapsed_s is not None else "") + "</p>",
    ]
    if report.command:
        parts.append(f"<p class='meta'>command: <code>{html.escape(report.command)}</code></p>")
    if report.passed is not None:
        cls, word = ("verdict-pass", "all checks passed") if report.passed else ("verdict-fail", "some checks FAILED")
        parts.append(f"<p class='{cls}'>{word}</p>")
    parts.append(f"<p>{html.escape(report.summary)}</p>")
    for i, (name, fig) in enumerate(report.figures):
        div = fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"figure-{name}",
                          config={"displaylogo": False, "toImageButtonOptions": {"format": "svg", "filename": name}})
        parts.append(f"<div class='figure' id='wrap-{html.escape(name)}'>{div}</div>")
    if report.tables:
        parts.append("<h2>Numbers</h2>")
        parts.extend(_table_html(t) for t in report.tables)
    parts.append("<h2>Parameters</h2>")
    parts.append(_table_html(Table("", ["parameter", "value"], [[k, v] for k, v in report.parameters.items()])))
    parts.append(f"<h2>Device</h2><p>{html.escape(report.device)}</p>")
    if report.references:
        parts.append("<h2>References</h2><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in report.references)
                     + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Validate a report path before any computation: ends in .html, its folder exists and is writable."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--out must end in .html, got {str(path)!r}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--out folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out folder {str(parent)!r} is not writable")
    if path.is_dir():
        raise ValueError(f"--out {str(path)!r} is a folder, not a file")
    return path


def write_report(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``path`` atomically (temporary file in the same folder, renamed at the end)."""
    path = check_output_path(path)
    text = render_html(report)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_study(name: str):
    """The report module of study ``name`` (a key of :data:`STUDIES`)."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name][0])


# ----------------------------------------------------------------------------- argparse types
#: largest integer any command-line size accepts (sizes beyond it could only overflow a JAX int32 index)
MAX_CLI_INT = 2 ** 31 - 1
#: seeds are unsigned 32-bit integers (``jax.random.PRNGKey``)
MAX_SEED = 2 ** 32 - 1


def _integer(text: str, *, minimum: int, maximum: int, what: str) -> int:
    """The one path every integer option takes: digits only, then the bounds, each with a sentence."""
    t = str(text).strip()
    digits = t[1:] if t[:1] in "+-" else t
    if not digits.isdigit() or not digits.isascii():
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if len(digits) > 20:  # no giant int() conversions; far beyond every maximum below
        raise argparse.ArgumentTypeError(f"expected {what} <= {maximum}, got a {len(digits)}-digit number")
    value = int(t)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    if value > maximum:
        raise argparse.ArgumentTypeError(f"expected {what} <= {maximum}, got {value}")
    return value


def _real(text: str, *, what: str, positive: bool = False, nonnegative: bool = False) -> float:
    """The one path every real-number option takes: a finite float of the requested sign."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")) or (positive and not value > 0) or (
            nonnegative and not value >= 0):  # every ``what`` says "finite"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer in [1, MAX_CLI_INT]."""
    return _integer(text, minimum=1, maximum=MAX_CLI_INT, what="a positive integer")


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    return _real(text, what="a positive finite number", positive=True)


def real_number(text: str) -> float:
    """argparse type: a finite float (any sign; the study checks its range)."""
    return _real(text, what="a finite number")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer in [0, MAX_CLI_INT]."""
    return _integer(text, minimum=0, maximum=MAX_CLI_INT, what="a non-negative integer")


def seed(text: str) -> int:
    """argparse type: a random seed, an integer in [0, 2**32 - 1]."""
    return _integer(text, minimum=0, maximum=MAX_SEED, what="a seed (an integer)")


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers, e.g. ``16,64,256``."""
    items = [t for t in text.replace(" ", "").split(",") if t]
    if not items:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return [positive_int(t) for t in items]


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated positive numbers, e.g. ``0.01,0.1,1``."""
    items = [t for t in text.replace(" ", "").split(",") if t]
    if not items:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive numbers, got {text!r}")
    return [positive_float(t) for t in items]


__all__ = ["MAX_CLI_INT", "MAX_SEED", "STUDIES", "Report", "Table", "check_output_path", "float_list", "fmt",
           "int_list", "load_study", "nonnegative_int", "positive_float", "positive_int", "real_number",
           "render_html", "seed", "write_report"]
