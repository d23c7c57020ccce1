"""Plot builders: pure functions from results (arrays, NamedTuples) to ``plotly`` figures.

One module per capability (``plots.tour``, ``plots.ntk``, ...); this module holds the
shared look and the export helpers. Builders never compute theory or run experiments:
they only draw what they are given, so tests can call them on small arrays.
"""

from __future__ import annotations

import os
import warnings
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


#: plotly's default renderer string before :func:`use_static_renderer` changed it (restored by ``fmt=None``)
_PLOTLY_DEFAULT_RENDERER: list[str] = []


def static_image(fig: go.Figure, fmt: str = "png") -> bytes:
    """``fig`` as PNG or SVG bytes, through kaleido and a Chromium (``pip install -e '.[export]'``).

    Width 900 px (the panels' usual width), the figure's own height; PNG at scale 2 for sharp text.
    """
    from workbench.config import STATIC_FORMATS

    if fmt not in STATIC_FORMATS:
        raise ValueError(f"fmt must be one of {STATIC_FORMATS}, got {fmt!r}")
    import kaleido
    import plotly.io as pio

    kaleido.start_sync_server(silence_warnings=True)  # one Chromium kept for every render (no-op when running)
    with warnings.catch_warnings():
        # plotly passes per-call browser options, which the kept server has already fixed: expected, not a problem
        warnings.filterwarnings("ignore", message="The kopts argument is ignored if using a server")
        return pio.to_image(fig, format=fmt, width=900, height=fig.layout.height or 450,
                            scale=2 if fmt == "png" else 1)


def use_static_renderer(fmt: str | None = "png") -> str:
    """Make displayed figures show outside a live kernel too: on GitHub and in nbconvert HTML.

    With ``fmt`` = ``"png"`` or ``"svg"``: plotly's default renderer becomes ``"plotly_mimetype+<fmt>"`` (interactive
    in JupyterLab, VS Code and Voila; an image where no JavaScript runs), each panel figure carries the same image
    next to its plotly JSON, and a displayed panel carries an HTML fallback with every figure as an image (what
    GitHub and nbconvert show for a notebook saved without widget state, JupyterLab's default). Rendering goes
    through kaleido, whose Chromium is kept running; each figure update then costs a render (~0.1-0.5 s), so turn
    it on to save or export a notebook, not while exploring. ``fmt=None`` turns it off and restores plotly's
    default. Returns the renderer string now in use. Raises RuntimeError when kaleido cannot render here.
    """
    import plotly.io as pio

    from workbench import config

    if fmt is not None and fmt not in config.STATIC_FORMATS:
        raise ValueError(f"fmt must be one of {config.STATIC_FORMATS} or None, got {fmt!r}")
    if not _PLOTLY_DEFAULT_RENDERER:
        _PLOTLY_DEFAULT_RENDERER.append(pio.renderers.default)
    if fmt is None:
        config.set_static_figures(None)
        pio.renderers.default = _PLOTLY_DEFAULT_RENDERER[0]
        return pio.renderers.default
    try:
        static_image(go.Figure(), fmt)
    except Exception as exc:  # no kaleido, no Chromium: say what to install
        raise RuntimeError(f"static {fmt} figures need kaleido and a Chromium (pip install -e '.[export]'; "
                           f"Debian: apt-get install chromium): {type(exc).__name__}: {exc}") from exc
    config.set_static_figures(fmt)
    pio.renderers.default = f"plotly_mimetype+{fmt}"
    return pio.renderers.default

__all__ = ["MEASURED_COLOR", "TEMPLATE", "THEORY_COLOR", "base_figure", "save_html", "static_image", "use_static_renderer"]
