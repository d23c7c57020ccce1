"""Plot builders: pure functions from results (arrays, NamedTuples) to ``plotly`` figures.

One module per capability (``plots.tour``, ``plots.ntk``, ...); this module holds the
shared look and the export helpers. Builders never compute theory or run experiments:
they only draw what they are given, so tests can call them on small arrays.
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go

TEMPLATE = "plotly_white"
#: Colours used consistently: theory curves vs measurements.
THEORY_COLOR = "#d62728"
MEASURED_COLOR = "#1f77b4"


def base_figure(title: str, xaxis: str, yaxis: str, *, log_x: bool = False, log_y: bool = False,
                height: int = 420) -> go.Figure:
    """An empty figure with the workbench's template, axis titles and log axes as asked."""
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title=dict(text=title, y=0.97, yanchor="top"), height=height,
                      margin=dict(l=60, r=20, t=80, b=50),
                      legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0))
    fig.update_xaxes(title_text=xaxis, type="log" if log_x else "linear")
    fig.update_yaxes(title_text=yaxis, type="log" if log_y else "linear")
    return fig


def save_html(fig: go.Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a standalone HTML file (plotly.js embedded, opens offline) and return its path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"path must end in .html, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
